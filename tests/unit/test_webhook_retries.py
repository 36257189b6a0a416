"""What an attempt's outcome means, and when the next attempt is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.settings import Settings
from workflows.webhooks.retries import (
    MAX_RETRY_AFTER,
    Outcome,
    classify,
    failing_too_long,
    next_attempt_at,
    parse_retry_after,
    parse_schedule,
)

FAILED_AT = datetime(2008, 6, 2, 1, 0, tzinfo=UTC)
DEFAULT = parse_schedule("5,300,1800,7200,18000,36000,36000")


def middle() -> float:
    return 0.5  # no jitter: exactly the scheduled wait


def test_the_default_schedule_is_the_specification_s() -> None:
    # Given the settings as shipped
    settings = Settings()

    # Then the schedule parses to seven waits (eight attempts in all)
    assert parse_schedule(settings.webhook_retry_schedule) == tuple(settings.retry_schedule)
    assert DEFAULT == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_a_compressed_schedule_for_tests_parses_with_spaces_and_fractions() -> None:
    assert parse_schedule(" 0.1, 0.2 ,0.5,") == (0.1, 0.2, 0.5)
    assert parse_schedule("") == ()


@pytest.mark.parametrize("text", ["5,soon", "5,-1", "nan", "5,inf"])
def test_a_schedule_with_a_wait_that_is_not_a_number_of_seconds_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="retry schedule"):
        parse_schedule(text)


def test_each_attempt_waits_its_step_of_the_schedule() -> None:
    # Given the default schedule and no jitter
    # Then after the first failure the wait is 5 s, after the second 300 s, after the 7th 10 h
    assert next_attempt_at(1, FAILED_AT, DEFAULT, random=middle) == FAILED_AT + timedelta(
        seconds=5)
    assert next_attempt_at(2, FAILED_AT, DEFAULT, random=middle) == FAILED_AT + timedelta(
        seconds=300)
    assert next_attempt_at(7, FAILED_AT, DEFAULT, random=middle) == FAILED_AT + timedelta(
        hours=10)


def test_after_the_last_wait_the_message_has_failed() -> None:
    # Given seven waits: eight attempts in all
    # When the eighth attempt fails
    # Then there is no next attempt
    assert next_attempt_at(8, FAILED_AT, DEFAULT, random=middle) is None
    assert next_attempt_at(1, FAILED_AT, (), random=middle) is None


def test_jitter_spreads_the_wait_by_a_fifth_either_way() -> None:
    # Given the random source at its lowest and its highest
    lowest = next_attempt_at(2, FAILED_AT, DEFAULT, random=lambda: 0.0)
    highest = next_attempt_at(2, FAILED_AT, DEFAULT, random=lambda: 0.999999)

    # Then the 300 s wait becomes 240 s to (almost) 360 s
    assert lowest == FAILED_AT + timedelta(seconds=240)
    assert highest is not None
    assert timedelta(seconds=359) < highest - FAILED_AT < timedelta(seconds=360)


def test_retry_after_is_the_least_wait() -> None:
    # Given a 429 asking for two minutes, where the schedule would wait 5 s
    # Then the next attempt waits the two minutes
    assert next_attempt_at(1, FAILED_AT, DEFAULT, random=middle, retry_after=120) == (
        FAILED_AT + timedelta(seconds=120))

    # And where the schedule waits longer than asked, the schedule wins
    assert next_attempt_at(2, FAILED_AT, DEFAULT, random=middle, retry_after=120) == (
        FAILED_AT + timedelta(seconds=300))


def test_a_retry_after_beyond_a_day_is_held_to_a_day() -> None:
    wait = next_attempt_at(1, FAILED_AT, DEFAULT, random=middle, retry_after=10**9)
    assert wait == FAILED_AT + timedelta(seconds=MAX_RETRY_AFTER)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    # Given "now" at 01:00 GMT
    assert parse_retry_after("120", FAILED_AT) == 120
    assert parse_retry_after("Mon, 02 Jun 2008 01:02:30 GMT", FAILED_AT) == 150

    # And a date in the past means now; nothing readable means no advice
    assert parse_retry_after("Mon, 02 Jun 2008 00:00:00 GMT", FAILED_AT) == 0
    assert parse_retry_after("soon", FAILED_AT) is None
    assert parse_retry_after("-5", FAILED_AT) is None
    assert parse_retry_after(None, FAILED_AT) is None
    assert parse_retry_after("", FAILED_AT) is None


@pytest.mark.parametrize(("status", "outcome", "honours"), [
    (200, Outcome.DELIVERED, False),
    (204, Outcome.DELIVERED, False),
    (410, Outcome.DISABLE, False),
    (301, Outcome.RETRY, False),
    (302, Outcome.RETRY, False),
    (400, Outcome.RETRY, False),
    (429, Outcome.RETRY, True),
    (500, Outcome.RETRY, False),
    (503, Outcome.RETRY, True),
    (101, Outcome.RETRY, False),
])
def test_outcomes_by_status(status: int, outcome: Outcome, honours: bool) -> None:
    verdict = classify(status)
    assert verdict.outcome is outcome
    assert verdict.honours_retry_after is honours


def test_a_redirect_is_a_failure_that_says_it_was_not_followed() -> None:
    assert classify(302).reason == "redirect 302 not followed"


def test_a_timeout_or_a_refused_connection_is_retried() -> None:
    assert classify(None, "timeout").outcome is Outcome.RETRY
    assert classify(None, "timeout").reason == "timeout"
    assert classify(None, "ConnectError: [Errno 111] Connection refused").outcome is Outcome.RETRY
    assert classify(None).reason == "no response"


def test_an_endpoint_failing_past_the_limit_is_to_be_disabled() -> None:
    limit = timedelta(days=5)
    assert not failing_too_long(None, FAILED_AT, limit)
    assert not failing_too_long(FAILED_AT, FAILED_AT + timedelta(days=4), limit)
    assert failing_too_long(FAILED_AT, FAILED_AT + timedelta(days=5), limit)


def test_next_attempt_is_asked_only_after_an_attempt() -> None:
    with pytest.raises(ValueError):
        next_attempt_at(0, FAILED_AT, DEFAULT, random=middle)
