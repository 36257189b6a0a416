"""The replay timeline as a person reads it: one row per event, what it did and what it moved.

Each row says who did what (the actor's organisation, the event, a one-line
summary in the language it was written in), how the open conflicts changed
(``+`` opened, ``−`` dissolved, ``✓`` resolved, ``↑`` escalated) and how the
top of the ranking changed (or ``unchanged``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from rich.table import Table
from rich.text import Text

from workflows.replay import Step, Timeline

WIDTH = 90


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


# --- what each event did ---------------------------------------------------------------


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


def _resolved(data: dict[str, Any]) -> str:
    overridden = len(data.get("overridden") or ())
    return (f"{data.get('outcome')} by {data.get('resolver')} (level "
            f"{data.get('resolver_level')}), {overridden} overridden: {data.get('rationale')}")


def _escalated(data: dict[str, Any]) -> str:
    return f"level {data.get('from_level')} → {data.get('to_level')}: {data.get('reason')}"


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ServiceContract.Drafted": _drafted,
    "ServiceContract.DirectiveIssued": _issued,
    "ServiceContract.DirectiveAmended": _amended,
    "ServiceContract.DirectiveWithdrawn": lambda d: f"{str(d.get('id'))[:8]} withdrawn",
    "ServiceContract.StakeholderAdded": lambda d: f"{d.get('org')} ({d.get('standing')})",
    "ServiceContract.PolicyChanged": lambda d: _short(d, WIDTH),
    "ServiceContract.ConflictResolved": _resolved,
    "ServiceContract.ConflictEscalated": _escalated,
}


def summarise(event_type: str, data: dict[str, Any], width: int = WIDTH) -> str:
    """A person-readable line for an event; unknown types show their data, shortened."""
    summary = SUMMARIES.get(event_type)
    text = summary(data) if summary else (_short(data, width) if data else "")
    return _short(text, width)


def short_type(event_type: str) -> str:
    return event_type.rsplit(".", 1)[-1]


# --- what each event moved ---------------------------------------------------------------


def conflict_label(conflict: Mapping[str, Any]) -> str:
    """``kind subject`` (or ``over_capacity`` and its weeks), ``×n`` for n > 1 directives."""
    details = conflict.get("details") or {}
    weeks = details.get("weeks")
    if weeks:
        first, last = weeks[0], weeks[-1]
        where = first if first == last else (
            f"{first}…{last[5:]}" if first[:5] == last[:5] else f"{first}…{last}")
    else:
        where = details.get("subject", "")
    members = len(conflict.get("members") or ())
    return f"{conflict['kind']} {where}" + (f" ×{members}" if members > 1 else "")


def conflict_moves(step: Step) -> str:
    """One line per conflict the event moved, then how many are open; empty if none moved."""
    moved = step.conflicts
    lines = [f"✓{conflict_label(c)} {(c.get('resolution') or {}).get('outcome', 'resolved')}"
             for c in moved["resolved"]]
    lines += [f"↑{conflict_label(c)} level {c['from_level']}→{c['to_level']}"
              for c in moved["escalated"]]
    lines += [f"−{conflict_label(c)} dissolved" for c in moved["dissolved"]]
    lines += [f"+{conflict_label(c)}" for c in moved["opened"] if c["status"] == "open"]
    if not lines:
        return ""
    return "\n".join([*lines, f"({step.open_conflicts} open)"])


def entry_label(entry: Mapping[str, Any]) -> str:
    return f"{entry['rank']} {entry['subject']} · {entry['issuer']}"


def ranking_moves(step: Step) -> Text:
    """The top of the ranking after the event, and before it if it changed."""
    if not step.top_changed:
        return Text("unchanged", style="dim")
    text = Text("\n".join(entry_label(e) for e in step.top_after) or "(nothing ranked)")
    if step.top_before:
        was = ", ".join(f"{e['rank']} {e['subject']}" for e in step.top_before)
        text.append(f"\nwas: {was}", style="dim")
    return text


def timeline_table(timeline: Timeline) -> Table:
    contract = timeline.contract
    table = Table(title=f"{contract.code} · {contract.terms['title']}", title_justify="left")
    table.add_column("v", justify="right")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("actor", max_width=20, no_wrap=True, overflow="ellipsis")
    table.add_column("event", no_wrap=True)
    # fold: Chinese text has no spaces to wrap at, and must not be cut short
    table.add_column("summary", ratio=3, overflow="fold")
    table.add_column("open conflicts", ratio=2, overflow="fold")
    table.add_column(f"top 3 ({timeline.profile})", ratio=2, overflow="fold")
    for step in timeline.steps:
        table.add_row(
            str(step.version), step.recorded_at.astimezone(UTC).isoformat()[:19].replace("T", " "),
            step.actor.get("org", ""), short_type(step.type),
            summarise(step.type, dict(step.data), width=160),
            conflict_moves(step), ranking_moves(step),
        )
    return table
