"""Per-key rate limits counted in batches (``api/rate_limits.py``), on the real Redis.

Two ``RateLimits`` on one Redis stand for two API processes: together they let
a key through no more than its limit (a few more at most, when they race), each
refuses beyond it with the seconds left in the window, another key is not
affected, and most requests cost no Redis round trip.
"""

from __future__ import annotations

import asyncio
import uuid

from conftest import redis_url_for_tests

from api.rate_limits import RateLimits
from workflows.settings import Settings


def limits(queue: str, rate: str, workers: int = 2) -> RateLimits:
    settings = Settings(redis_url=redis_url_for_tests(12), rate_limit=rate,
                        rate_limit_anonymous="", celery_queue=queue, api_processes=workers)
    found = RateLimits.of(settings)
    assert found is not None
    return found


def test_processes_share_one_limit_per_key() -> None:
    async def scenario() -> None:
        queue = f"rate-{uuid.uuid4().hex[:8]}"
        first, second = limits(queue, "200/minute"), limits(queue, "200/minute")
        calls = 0
        for process in (first, second):
            incr = process.storage.incr

            async def counted(*args: object, _incr: object = incr, **kwargs: object) -> int:
                nonlocal calls
                calls += 1
                return await _incr(*args, **kwargs)  # type: ignore[operator, no-any-return]

            process.storage.incr = counted  # type: ignore[method-assign]
        # When one key sends 600 requests through both processes, in turn
        answers = [await (first if n % 2 else second).retry_after("key:busy", True)
                   for n in range(600)]
        allowed = answers.count(None)
        # Then about its limit went through, and the rest were told to wait
        assert 200 <= allowed <= 204, allowed
        assert all(1 <= wait <= 60 for wait in answers if wait is not None)
        assert answers[-1] is not None
        # And most requests were counted without a round trip of their own
        assert calls < 300, calls
        # And another key is not affected
        assert await first.retry_after("key:other", True) is None
        assert await second.retry_after("key:other", True) is None

    asyncio.run(scenario())


def test_a_new_window_lets_the_key_through_again() -> None:
    async def scenario() -> None:
        process = limits(f"rate-{uuid.uuid4().hex[:8]}", "3/second", workers=1)
        answers = [await process.retry_after("key:k", True) for _ in range(5)]
        assert answers[:3] == [None, None, None] and answers[3] == answers[4] == 1
        await asyncio.sleep(2.1)
        assert await process.retry_after("key:k", True) is None

    asyncio.run(scenario())


def test_an_unreachable_redis_lets_requests_through() -> None:
    async def scenario() -> None:
        settings = Settings(redis_url="redis://127.0.0.1:1/0", rate_limit="1/minute",
                            rate_limit_anonymous="")
        process = RateLimits.of(settings)
        assert process is not None
        assert [await process.retry_after("key:k", True) for _ in range(3)] == [None] * 3

    asyncio.run(scenario())
