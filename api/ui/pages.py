"""The triage pages: the board, a contract, a conflict and its decide form.

Every read and command goes through the use cases (``workflows/contracts.py``...) with the
signed-in caller, exactly as the API routes call them (``contracts.read_contract``,
``conflict_view_at``, ``resolve_conflict``…; the live views through
``api.projected_reads.ProjectedReads``), so the same role and object-level rules apply:
a contract the caller may not read is a 404 page.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID
from weakref import WeakKeyDictionary

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.projected_reads import Freshness, ProjectedReads
from api.ui.common import (
    SessionDep,
    checked_form,
    projection_position,
    replayed,
    text_field,
    threaded,
    ui_router,
    views_token,
)
from api.ui.render import (
    DISPUTABLE,
    KIND_LABELS,
    Labels,
    language_of,
    organisation_names,
    page,
    refused,
    services_of,
)
from api.ui.session import Session
from api.ui.shown import authority, weekly_load
from domain import access
from domain.errors import DomainError, NotFound
from domain.resolution import Decision, Escalation
from workflows import contracts, history, resolution
from workflows.bootstrap import Services
from workflows.identities import contract_id_for

router = ui_router()

ContractFilter = Annotated[str | None, Query(max_length=64)]
KindFilter = Annotated[str | None, Query(max_length=40)]
LevelFilter = Annotated[str | None, Query(max_length=3)]
Seen = Annotated[str | None, Query(max_length=400, pattern=r"^[0-9.]+$")]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]
BOARD_PAGE = 100
"""Rows of the board on one page: the most overdue first, the rest on the next pages."""


# --- the board --------------------------------------------------------------------


_CONTRACT_LABELS: WeakKeyDictionary[Any, dict[str, tuple[str, str]]] = WeakKeyDictionary()
"""Per application: contract id → (code, title), which never change once drafted."""


def contract_labels(services: Services, session: Session,
                    readable: frozenset[str]) -> list[dict[str, str]]:
    """The readable contracts' codes and titles (for the board's filter), sorted by code."""
    known = _CONTRACT_LABELS.setdefault(services.ledger, {})
    for contract_id in readable - known.keys():
        contract = contracts.read_contract(services.ledger, session.caller, contract_id)
        known[contract_id] = (contract.code, str(contract.terms.get("title", "")))
    return sorted(({"id": contract_id, "code": known[contract_id][0],
                    "title": known[contract_id][1]} for contract_id in readable),
                  key=lambda label: label["code"])


def _board_context(services: Services, session: Session) -> dict[str, Any]:
    readable = contracts.readable_contract_ids(services.ledger, session.caller)
    return {"readable": readable, "contracts": contract_labels(services, session, readable),
            "names": organisation_names(services)}


def _overdue(conflict: dict[str, Any], now: float) -> float:
    due = conflict.get("due")
    return max(0.0, now - datetime.fromisoformat(due).timestamp()) if due else 0.0


async def _board(request: Request, session: Session, contract: str | None, kind: str | None,
                 level: str | None, wanted_page: int) -> dict[str, Any]:
    """One page of the board.  Unfiltered, a reader of every contract gets the board's ranks
    of that page straight from the view; a filter by contract reads that contract's view; any
    other filter (or a key that reads only some contracts) filters the whole board."""
    services = services_of(request)
    token = await views_token(request)  # before the read: a later move redraws the board
    context = {**await threaded(_board_context, services, session), "token": token}
    live, now = ProjectedReads(services.redis), services.ledger.clock()
    wanted_level = int(level) if level and level.isdigit() else None
    first = (wanted_page - 1) * BOARD_PAGE
    total: int | None
    if contract:
        labels = {c["id"]: c["code"] for c in context["contracts"]}
        if contract in context["readable"]:
            position, view = await live.conflicts(contract, "open", Freshness())
            items = [{**c, "contract_id": contract, "contract_code": labels.get(contract, ""),
                      "overdue_seconds": _overdue(c, now.timestamp())}
                     for c in view["conflicts"]]
            items.sort(key=lambda item: item.get("due") or "")
        else:
            position, items = await projection_position(request), []
    elif session.caller.role in access.EVERYTHING and not kind and wanted_level is None:
        position, board = await live.board(context["readable"], now, Freshness(),
                                           first, first + BOARD_PAGE)
        items = board["items"]
        total = None if len(items) > BOARD_PAGE or wanted_page > 1 else len(items)
        return _board_page(context, items[:BOARD_PAGE], wanted_page,
                           len(items) > BOARD_PAGE, total, position, contract, kind, level)
    else:
        position, items = await _whole_board(services, token, now)
        readable = context["readable"]
        items = [item for item in items if item["contract_id"] in readable]
    items = [item for item in items
             if (not kind or item["kind"] == kind)
             and (wanted_level is None or item["level"] == wanted_level)]
    total = len(items)
    shown = [{**item, "overdue_seconds": _overdue(item, now.timestamp())}
             for item in items[first:first + BOARD_PAGE]]
    return _board_page(context, shown, wanted_page, total > first + BOARD_PAGE, total,
                       position, contract, kind, level)


class _Every(Collection[str]):
    """Every contract: the whole board is read once per views token, then filtered per key."""

    def __contains__(self, item: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_WHOLE_BOARDS: WeakKeyDictionary[Any, tuple[str, int, list[dict[str, Any]]]] = \
    WeakKeyDictionary()
"""Per application: the last whole board read, with the views token it was read at.  The
board at one set of partition positions does not change, so a filtered board reads Redis
only when the views have moved."""


async def _whole_board(services: Services, token: str, now: datetime
                       ) -> tuple[int, list[dict[str, Any]]]:
    cached = _WHOLE_BOARDS.get(services.ledger)
    if cached is not None and cached[0] == token:
        return cached[1], cached[2]
    position, board = await ProjectedReads(services.redis).board(_Every(), now, Freshness())
    _WHOLE_BOARDS[services.ledger] = (token, position, board["items"])
    return position, board["items"]


def _board_page(context: dict[str, Any], items: list[dict[str, Any]], number: int,
                more: bool, total: int | None, position: int, contract: str | None,
                kind: str | None, level: str | None) -> dict[str, Any]:
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in
                     (("contract", contract), ("kind", kind), ("level", level)) if value)
    return {**context, "items": items, "total": total, "page": number, "more": more,
            "position": position, "query": query,
            "filters": {"contract": contract or "", "kind": kind or "", "level": level or ""},
            "kinds": list(KIND_LABELS)}


@router.get("/ui/", response_class=HTMLResponse)
async def board_page(request: Request, session: SessionDep, contract: ContractFilter = None,
                     kind: KindFilter = None, level: LevelFilter = None,
                     number: PageNumber = 1) -> Response:
    context = await _board(request, session, contract, kind, level, number)
    return page(request, "board.html", session, **context)


@router.get("/ui/board/rows", response_class=HTMLResponse)
async def board_rows(request: Request, session: SessionDep, contract: ContractFilter = None,
                     kind: KindFilter = None, level: LevelFilter = None,
                     number: PageNumber = 1, seen: Seen = None) -> Response:
    """The board's table again, when the views have moved since ``seen`` (204 otherwise)."""
    if seen is not None and await views_token(request) == seen:
        return Response(status_code=204)
    context = await _board(request, session, contract, kind, level, number)
    return page(request, "_board_rows.html", session, **context)


# --- a contract ---------------------------------------------------------------------


def _contract_context(services: Services, session: Session, contract_id: str,
                      with_load: bool = False) -> dict[str, Any]:
    """The contract as a page shows it; ``with_load``: and its load per week (``loads``)."""
    contract = contracts.read_contract(services.ledger, session.caller, contract_id)
    return {"contract": contract.as_dict(), "chain": contract.escalation_chain,
            "names": organisation_names(services),
            **({"loads": contract.weekly_load()} if with_load else {})}


async def _live(request: Request, contract_id: str) -> dict[str, Any]:
    token = await views_token(request, contract_id)
    live = ProjectedReads(services_of(request).redis)
    position, conflicts = await live.conflicts(contract_id, "all", Freshness())
    _, priorities = await live.priorities(contract_id, Freshness())
    return {"position": position, "token": token, "conflicts": conflicts["conflicts"],
            "priorities": priorities}


def _directive_index(contract: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in contract["directives"]}


@router.get("/ui/contracts/{contract_id}", response_class=HTMLResponse)
async def contract_page(request: Request, session: SessionDep, contract_id: str) -> Response:
    """A contract by its UUID; ``/ui/contracts/HZ-YOUTH-2008`` (its code) redirects there."""
    try:
        UUID(contract_id[:64])
    except ValueError:
        return RedirectResponse(f"/ui/contracts/{contract_id_for(contract_id[:64])}",
                                status_code=303)
    context = await threaded(_contract_context, services_of(request), session, contract_id[:64],
                             with_load=True)
    live = await _live(request, str(context["contract"]["id"]))
    contract = context["contract"]
    load = weekly_load(contract, context.pop("loads"), live["conflicts"])
    labels = Labels(language_of(request), {})
    load["ranges"] = [labels.weeks(week) for week in load["weeks"]]  # weeks as dates
    return page(request, "contract.html", session, **context, **live,
                directives_by_id=_directive_index(contract), load=load,
                load_json=json.dumps(load, ensure_ascii=False).replace("<", "\\u003c"))


@router.get("/ui/contracts/{contract_id}/live", response_class=HTMLResponse)
async def contract_live(request: Request, session: SessionDep, contract_id: str,
                        seen: Seen = None) -> Response:
    """The contract's conflicts and ranking again, when its views have moved since ``seen``."""
    context = await threaded(_contract_context, services_of(request), session, contract_id[:64])
    if seen is not None and await views_token(request, str(context["contract"]["id"])) == seen:
        return Response(status_code=204)
    live = await _live(request, str(context["contract"]["id"]))
    return page(request, "_contract_live.html", session, **context, **live,
                directives_by_id=_directive_index(context["contract"]))


# --- a conflict, and deciding it ---------------------------------------------------------


def _conflict_context(services: Services, session: Session, contract_id: str,
                      conflict_id: str) -> dict[str, Any]:
    caller = session.caller
    contract = contracts.read_contract(services.ledger, caller, contract_id)
    view = history.conflict_view_at(services.ledger, caller, contract_id, status="all")
    conflict = next((c for c in view["conflicts"] if c["id"] == conflict_id), None)
    if conflict is None:
        raise NotFound(f"contract {contract.code} has no conflict {conflict_id}")
    shown = contract.as_dict()
    directives = _directive_index(shown)
    precedents = (conflict.get("details") or {}).get("precedents") or []
    return {
        "contract": shown, "conflict": conflict, "directives_by_id": directives,
        "chain": contract.escalation_chain, "precedents": precedents,
        "authority": authority(contract.escalation_chain, conflict, directives, caller),
        "names": organisation_names(services),
    }


@router.get("/ui/contracts/{contract_id}/conflicts/{conflict_id}", response_class=HTMLResponse)
async def conflict_page(request: Request, session: SessionDep, contract_id: str,
                        conflict_id: str, done: Annotated[str | None, Query(max_length=20)]
                        = None) -> Response:
    context = await replayed(request, session, _conflict_context, services_of(request),
                             session, contract_id[:64], conflict_id[:128])
    return page(request, "conflict.html", session, **context, done=done, error=None,
                form={})


async def _decided(request: Request, session: Session, contract_id: str, conflict_id: str,
                   command: str, form: dict[str, Any]) -> Response:
    services = services_of(request)
    try:
        if command == "resolve":
            decision = Decision.model_validate_json(json.dumps({
                "outcome": form["outcome"], "upheld": form["upheld"],
                "overridden": form["overridden"], "rationale": form["rationale"],
                **({"corrections": form["corrections"]} if form.get("corrections") else {})}))
            await threaded(resolution.resolve_conflict, services.ledger, session.caller,
                           contract_id,
                           conflict_id, decision)
        else:
            escalation = Escalation.model_validate_json(json.dumps({
                "from_level": form["from_level"], "reason": form["reason"]}))
            await threaded(resolution.escalate_conflict, services.ledger, session.caller,
                           contract_id,
                           conflict_id, escalation)
    except ValidationError as invalid:
        error: dict[str, Any] = {"status": 422, "code": "validation_failed", "detail": "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in invalid.errors())}
    except DomainError as refusal:
        if isinstance(refusal, NotFound):
            raise
        error = refused(refusal)
    else:
        return RedirectResponse(
            f"/ui/contracts/{contract_id}/conflicts/{conflict_id}?done={command}",
            status_code=303)
    context = await replayed(request, session, _conflict_context, services, session,
                             contract_id, conflict_id)
    return page(request, "conflict.html", session, status_code=int(error["status"]), **context,
                done=None, error=error, form=form)


def _typed(name: str, text: str) -> Any:
    """A typed correction as JSON would carry it: numbers as numbers, tags as a list (a value
    that does not parse stays text, so the decision's validation names it: 422)."""
    if name == "tags":
        return [tag for tag in text.replace("，", " ").replace(",", " ").split() if tag][:50]
    if name in ("hours_per_week", "vulnerability", "people_affected"):
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if name == "people_affected" and number.is_integer() else number
    return text


def corrections(posted: Any) -> dict[str, Any]:
    """The ``correct-<field>`` inputs of the decide form that were filled in."""
    return {name: _typed(name, value.strip()) for name in DISPUTABLE
            if isinstance(value := posted.get(f"correct-{name}"), str) and value.strip()}


@router.post("/ui/contracts/{contract_id}/conflicts/{conflict_id}/resolve",
             response_class=HTMLResponse)
async def resolve(request: Request, session: SessionDep, contract_id: str,
                  conflict_id: str) -> Response:
    posted = await checked_form(request, session)
    form: dict[str, Any] = {
        "outcome": text_field(posted, "outcome", 40),
        "upheld": [v for v in posted.getlist("upheld") if isinstance(v, str)][:100],
        "overridden": [v for v in posted.getlist("overridden") if isinstance(v, str)][:100],
        "rationale": text_field(posted, "rationale"),
    }
    if form["outcome"] == "corrected":
        form["corrections"] = corrections(posted)
    return await _decided(request, session, contract_id[:64], conflict_id[:128], "resolve",
                          form)


@router.post("/ui/contracts/{contract_id}/conflicts/{conflict_id}/escalate",
             response_class=HTMLResponse)
async def escalate(request: Request, session: SessionDep, contract_id: str,
                   conflict_id: str) -> Response:
    posted = await checked_form(request, session)
    level = text_field(posted, "from_level", 4)
    form = {"from_level": int(level) if level.isdigit() else level,
            "reason": text_field(posted, "reason", 500)}
    return await _decided(request, session, contract_id[:64], conflict_id[:128], "escalate",
                          form)
