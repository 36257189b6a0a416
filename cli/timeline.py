"""One-line summaries of contract events, for the replay timeline."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

WIDTH = 90


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _drafted(data: dict[str, Any]) -> str:
    budget = data.get("budget") or {}
    period = data.get("period") or {}
    return (f"{data.get('code')} {data.get('title')} · {budget.get('amount')} "
            f"{budget.get('currency')} · {period.get('start')}–{period.get('end')}")


def _issued(data: dict[str, Any]) -> str:
    return (f"{data.get('subject')} = {_short(data.get('value'))} · {data.get('summary')} "
            f"({data.get('basis')}, {data.get('hours_per_week'):g} h/wk)")


def _amended(data: dict[str, Any]) -> str:
    changes = data.get("changes") or {}
    fields = ", ".join(f"{k}={_short(v, 24)}" for k, v in changes.items())
    return f"{str(data.get('id'))[:8]}: {fields}"


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ServiceContract.Drafted": _drafted,
    "ServiceContract.DirectiveIssued": _issued,
    "ServiceContract.DirectiveAmended": _amended,
    "ServiceContract.DirectiveWithdrawn": lambda d: f"{str(d.get('id'))[:8]} withdrawn",
    "ServiceContract.StakeholderAdded": lambda d: f"{d.get('org')} ({d.get('standing')})",
    "ServiceContract.PolicyChanged": lambda d: _short(d, WIDTH),
}


def summarise(event_type: str, data: dict[str, Any]) -> str:
    """A person-readable line for an event; unknown types show their data, shortened."""
    summary = SUMMARIES.get(event_type)
    text = summary(data) if summary else (_short(data, WIDTH) if data else "")
    return _short(text, WIDTH)


def short_type(event_type: str) -> str:
    return event_type.rsplit(".", 1)[-1]
