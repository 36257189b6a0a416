"""Structured logs: one JSON line per record, Chinese kept as text, the bound request id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from workflows import logs


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.configure_logging("INFO", "json")
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level
        structlog.reset_defaults()
        logs.clear()


def test_a_standard_library_record_is_one_json_line_with_time_level_and_request_id(
    captured: io.StringIO,
) -> None:
    # given a request id bound, as the API binds it for a request
    logs.bind_request_id("req-42")

    # when a module logs through the standard library, in Chinese, with extra fields
    logging.getLogger("workers.tasks").info("已投影 projected", extra={"partition": 2})

    # then the line is JSON with a UTC timestamp, the level, the logger and the id
    (line,) = captured.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "已投影 projected" and "已投影" in line  # not \\u-escaped
    assert record["level"] == "info" and record["logger"] == "workers.tasks"
    assert record["timestamp"].endswith("Z") and record["request_id"] == "req-42"
    assert record["partition"] == 2


def test_info_is_kept_and_debug_dropped_at_the_default_level(captured: io.StringIO) -> None:
    logging.getLogger("celery.worker").debug("noise")
    logging.getLogger("celery.worker").info("ready")
    assert [json.loads(line)["event"] for line in captured.getvalue().splitlines()] == ["ready"]


@pytest.mark.parametrize("given", [None, "", "has space", "中文", "x" * 129, "a\nb"])
def test_a_missing_or_unplain_request_id_is_replaced_by_a_fresh_one(given: str | None) -> None:
    made = logs.request_id_from(given)
    assert made != given and len(made) == 32 and made != logs.request_id_from(given)


def test_a_plain_request_id_is_kept() -> None:
    assert logs.request_id_from("trace-01.ABC:9_z") == "trace-01.ABC:9_z"
