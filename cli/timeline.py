"""The replay timeline as a person reads it: one entry per event, what it did and what it moved.

Each entry says who did what (the actor's organisation, the event, a one-line
summary in the language it was written in), how the open conflicts changed
(``+`` opened, ``~`` its members changed, ``−`` dissolved, ``✓`` resolved,
``↑`` escalated) and how the
top of the ranking changed (or ``unchanged``).

Two layouts: a table with a column each (``timeline_table``) for terminals of
``TABLE_MIN_WIDTH`` columns or more, and a list (``timeline_list``), one block
per event with its parts on indented lines, for narrower terminals and pipes
(a pipe is 80 columns), where seven columns would leave each a few characters.
Times are Asia/Shanghai unless asked for in UTC; ``timeline_json`` is the same
timeline as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from domain.shanghai_calendar import SHANGHAI
from workflows.replay import Step, Timeline

WIDTH = 90
TABLE_MIN_WIDTH = 140
"""Below this many columns the timeline is a list: the table's seven columns would fold."""


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
    lines += [f"~{conflict_label(c)} members changed" for c in moved.get("updated", ())]
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


def shown_time(moment: datetime, utc: bool = False) -> str:
    """``2008-06-12 17:00:05`` in Asia/Shanghai (or UTC)."""
    return moment.astimezone(UTC if utc else SHANGHAI).isoformat()[:19].replace("T", " ")


def zone_label(utc: bool) -> str:
    return "UTC" if utc else "Asia/Shanghai"


def timeline_table(timeline: Timeline, utc: bool = False) -> Table:
    contract = timeline.contract
    table = Table(title=f"{contract.code} · {contract.terms['title']}", title_justify="left")
    table.add_column("v", justify="right")
    table.add_column(f"time ({zone_label(utc)})", no_wrap=True)
    table.add_column("actor", max_width=20, no_wrap=True, overflow="ellipsis")
    table.add_column("event", no_wrap=True)
    # fold: Chinese text has no spaces to wrap at, and must not be cut short
    table.add_column("summary", ratio=3, overflow="fold")
    table.add_column("open conflicts", ratio=2, overflow="fold")
    table.add_column(f"top 3 ({timeline.profile})", ratio=2, overflow="fold")
    for step in timeline.steps:
        table.add_row(
            str(step.version), shown_time(step.recorded_at, utc),
            step.actor.get("org", ""), short_type(step.type),
            summarise(step.type, dict(step.data), width=160),
            conflict_moves(step), ranking_moves(step),
        )
    return table


def timeline_list(timeline: Timeline, utc: bool = False) -> Group:
    """The narrow layout: a heading line per event, its parts indented under it."""
    contract = timeline.contract
    parts: list[RenderableType] = [
        Text(f"{contract.code} · {contract.terms['title']}", style="bold"),
        Text(f"times in {zone_label(utc)}; top 3 under {timeline.profile}", style="dim"),
    ]
    for step in timeline.steps:
        parts.append(Text.assemble(
            (f"v{step.version}", "bold"), "  ", shown_time(step.recorded_at, utc), "  ",
            (step.actor.get("org", ""), "cyan"), "  ", (short_type(step.type), "bold")))
        parts.extend(Padding(part, (0, 0, 0, 4), expand=False) for part in _step_lines(step))
    return Group(*parts)


def _step_lines(step: Step) -> Iterator[Text]:
    summary = summarise(step.type, dict(step.data), width=160)
    if summary:
        yield Text(summary, overflow="fold")
    moves = conflict_moves(step)
    if moves:
        *moved, count = moves.split("\n")
        yield Text(f"conflicts: {'; '.join(moved)} {count}", overflow="fold")
    if step.top_changed:
        yield Text("top 3: " + ("; ".join(entry_label(e) for e in step.top_after)
                                or "(nothing ranked)"), overflow="fold")
        if step.top_before:
            yield Text("was: " + "; ".join(f"{e['rank']} {e['subject']}"
                                           for e in step.top_before),
                       style="dim", overflow="fold")
    else:
        yield Text("top 3: unchanged", style="dim")


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    """The timeline as data (``needle replay --json``): times in UTC, ISO 8601."""
    contract = timeline.contract
    return {
        "contract_id": str(contract.id), "code": contract.code,
        "title": contract.terms.get("title"), "profile": timeline.profile,
        "what_if": timeline.what_if, "version": contract.version,
        "steps": [{
            "version": step.version, "recorded_at": step.recorded_at.astimezone(UTC).isoformat(),
            "type": step.type, "actor": dict(step.actor), "data": dict(step.data),
            "summary": summarise(step.type, dict(step.data), width=400),
            "conflicts": {kind: list(items) for kind, items in step.conflicts.items()},
            "open_conflicts": step.open_conflicts, "top_before": step.top_before,
            "top_after": step.top_after, "top_changed": step.top_changed,
        } for step in timeline.steps],
    }
