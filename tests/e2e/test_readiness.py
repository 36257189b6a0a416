"""``/readyz`` and start-up: generic reasons, the projection lag, no key ever printed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import ADMIN_KEY, fresh_store, redis_url_for_tests

from workflows.bootstrap import bootstrap
from workflows.settings import Settings

from .client import Needle, World
from .ledger import assert_problem
from .serving import free_port, serve_api


@contextmanager
def api_with(tmp_path: Path, **overrides: object) -> Iterator[tuple[str, Callable[..., None]]]:
    fields: dict[str, object] = {"var_dir": tmp_path / "var", "admin_key": ADMIN_KEY,
                                 "redis_url": redis_url_for_tests(12), **fresh_store(tmp_path)}
    fields.update(overrides)
    services = bootstrap(Settings(**fields))  # type: ignore[arg-type]

    def break_store(message: str) -> None:
        def head_position() -> int:
            raise RuntimeError(message)
        services.ledger.head_position = head_position  # type: ignore[method-assign]

    try:
        with serve_api(services, name="readiness-uvicorn") as base_url:
            yield base_url, break_store
    finally:
        services.close()


def test_failures_name_the_check_but_not_its_error(tmp_path: Path) -> None:
    # Given Redis at an address where nothing listens, and a store whose error names secrets
    with api_with(tmp_path, redis_url=f"redis://:hunter2@127.0.0.1:{free_port()}/0") as (
            base_url, break_store):
        break_store("connection to server at 10.1.2.3 user=needle password=s3cret failed")
        response = httpx.get(f"{base_url}/readyz", timeout=30)
    # Then it is not ready, naming both checks with generic reasons
    problem = assert_problem(response, 503, "not_ready")
    assert problem["checks"]["event_store"] == {
        "status": "failed", "reason": "the event store cannot be reached"}
    assert problem["checks"]["redis"] == {"status": "failed", "reason": "Redis cannot be reached"}
    # And nothing of the underlying errors reaches an anonymous caller
    for secret in ("10.1.2.3", "s3cret", "hunter2", "Error", "refused", "127.0.0.1"):
        assert secret not in response.text, response.text


def test_requests_are_not_refused_when_the_rate_counters_are_gone(tmp_path: Path) -> None:
    # Given an API whose Redis (where requests are counted) cannot be reached
    with api_with(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                  rate_limit="1/minute") as (base_url, _):
        admin = Needle(base_url, ADMIN_KEY)
        # Then requests that need no Redis are still served, uncounted
        for _ in range(3):
            admin.ok("POST", "/v1/organizations", 201, json={
                "id": f"street-{free_port()}", "name": "江南中街街道办事处",
                "kind": "street_office"})


def test_a_projection_behind_the_threshold_is_not_ready(tmp_path: Path) -> None:
    # Given an API whose projection may lag 5 events, and no worker projecting
    with api_with(tmp_path, readiness_max_lag_events=5) as (base_url, _):
        admin = Needle(base_url, ADMIN_KEY)
        ready = admin.ok("GET", "/readyz")
        assert ready["checks"]["projections"]["status"] == "ok"
        # When more events than that are recorded
        World.build(admin)
        response = admin.get("/readyz")
    # Then it is not ready, and says which projection lags and by how much
    problem = assert_problem(response, 503, "not_ready")
    lag = problem["checks"]["projections"]
    assert lag["status"] == "lagging" and lag["max_lag_events"] == 5
    assert lag["lag"]["contracts"]["events"] > 5
    assert "projection contracts is" in problem["detail"] and "events" in problem["detail"]


def test_a_lag_threshold_of_zero_only_reports(tmp_path: Path) -> None:
    with api_with(tmp_path, readiness_max_lag_events=0) as (base_url, _):
        admin = Needle(base_url, ADMIN_KEY)
        World.build(admin)
        ready = admin.ok("GET", "/readyz")
    assert ready["checks"]["projections"]["status"] == "ok"
    assert ready["checks"]["projections"]["lag"]["contracts"]["events"] > 0


def test_a_refused_admin_key_is_never_printed(tmp_path: Path) -> None:
    # When the API starts with an admin key too short to accept
    refused_key = "short-secret-9"
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
         "--port", str(free_port())],
        env={"PATH": "/usr/bin:/bin", "NEEDLE_ADMIN_KEY": refused_key,
             "NEEDLE_VAR_DIR": str(tmp_path / "var")},
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    # Then it refuses to start, naming the setting but not the key
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "NEEDLE_ADMIN_KEY must be at least 16 characters" in output, output
    assert refused_key not in output, output
