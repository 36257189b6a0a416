"""The supervisor's pages: a contract's history with a version slider, what-if, and diffs.

The state at a version, its conflicts and its ranking (under the contract's
policy, or another profile as a what-if) are replayed from the event store by
the use cases (``history.state_at``: all three from one replay; ``replay.diff``),
as ``GET /v1/contracts/{id}?version=``,
``/conflicts?version=``, ``/priorities?profile=`` and ``/diff`` replay them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import MAX_INTEGER
from api.ui.common import SessionDep, replayed, ui_router
from api.ui.render import organisation_names, page, services_of
from api.ui.session import Session
from domain.errors import ValidationFailed
from domain.terms import Profile
from workflows import contracts, history, replay
from workflows.bootstrap import Services

router = ui_router()

HISTORY_LIMIT = 1000
Version = Annotated[int | None, Query(ge=1, le=MAX_INTEGER)]
ProfileQuery = Annotated[str | None, Query(max_length=40)]
PROFILES = [profile.value for profile in Profile]


def _profile(profile: str | None) -> str | None:
    if profile in (None, ""):
        return None
    if profile not in PROFILES:
        raise ValidationFailed([("profile", f"must be one of {', '.join(PROFILES)}")])
    return profile


def _at_version(services: Services, session: Session, contract_id: str, version: int | None,
                profile: str | None) -> dict[str, Any]:
    app, caller = services.ledger, session.caller
    current = contracts.read_contract(app, caller, contract_id)
    version = min(version or current.version, current.version)
    state = history.state_at(app, caller, contract_id, version=version, profile=profile)
    shown, conflicts, ranking = state["contract"], state["conflicts"], state["priorities"]
    return {
        "contract": current.as_dict() | {"version": current.version},
        "past": shown, "version": version, "latest": current.version,
        "conflicts": conflicts["conflicts"], "priorities": ranking,
        "directives_by_id": {d["id"]: d for d in shown["directives"]},
        "profile": profile or ranking.get("profile"), "profiles": PROFILES,
        "policy_profile": (current.terms.get("policy") or {}).get("profile"),
        "names": organisation_names(services),
    }


def _history(services: Services, session: Session, contract_id: str, version: int | None,
             profile: str | None) -> dict[str, Any]:
    context = _at_version(services, session, contract_id, version, profile)
    events = history.history(services.ledger, session.caller, contract_id,
                             limit=HISTORY_LIMIT)["events"]
    return {**context, "events": events}


@router.get("/ui/contracts/{contract_id}/history", response_class=HTMLResponse)
async def history_page(request: Request, session: SessionDep, contract_id: str,
                       version: Version = None, profile: ProfileQuery = None) -> Response:
    context = await replayed(request, session, _history, services_of(request), session,
                             contract_id[:64], version, _profile(profile))
    return page(request, "history.html", session, **context)


@router.get("/ui/contracts/{contract_id}/at", response_class=HTMLResponse)
async def at_version(request: Request, session: SessionDep, contract_id: str,
                     version: Version = None, profile: ProfileQuery = None) -> Response:
    """The slider's panel: the contract, its conflicts and ranking at one version."""
    context = await replayed(request, session, _at_version, services_of(request), session,
                             contract_id[:64], version, _profile(profile))
    return page(request, "_at_version.html", session, **context)


def _diff(services: Services, session: Session, contract_id: str, from_version: int | None,
          to_version: int | None) -> dict[str, Any]:
    current = contracts.read_contract(services.ledger, session.caller, contract_id)
    latest = current.version
    to_version = to_version or latest
    from_version = from_version or max(1, to_version - 1)
    diff = replay.diff(services.ledger, session.caller, contract_id, from_version=from_version,
                             to_version=to_version)
    past = contracts.read_contract(services.ledger, session.caller, contract_id,
                                   version=to_version).as_dict()
    before = contracts.read_contract(services.ledger, session.caller, contract_id,
                                   version=min(from_version, latest)).as_dict()
    directives = {d["id"]: d for d in before["directives"]} | {
        d["id"]: d for d in past["directives"]}
    return {"contract": current.as_dict(), "diff": diff, "latest": latest,
            "from_version": from_version, "to_version": to_version,
            "directives_by_id": directives, "names": organisation_names(services)}


@router.get("/ui/contracts/{contract_id}/diff", response_class=HTMLResponse)
async def diff_page(request: Request, session: SessionDep, contract_id: str,
                    from_version: Version = None, to_version: Version = None) -> Response:
    context = await replayed(request, session, _diff, services_of(request), session,
                             contract_id[:64], from_version, to_version)
    return page(request, "diff.html", session, **context)
