"""Signing in and out, the language switch, an organisation's directives, webhooks, operations.

Webhook pages call what ``api/routes/webhooks.py`` calls (``subscription`` for
the ownership rule, the outbox for deliveries and redelivery); operations call
``workflows.projection_control`` as ``api/routes/admin.py`` does, with the same
role checks (``api.deps.get_overseer`` / ``get_admin``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import get_admin, get_overseer
from api.projected_reads import Freshness, ProjectedReads
from api.ui.common import SessionDep, checked_form, text_field, threaded, ui_router
from api.ui.pages import contract_labels
from api.ui.render import organisation_names, page, services_of
from api.ui.session import (
    COOKIE,
    LANG_COOKIE,
    SESSION_SECONDS,
    Session,
    login_token,
    login_token_valid,
    sign_in,
    sign_out,
)
from domain.errors import NotFound
from domain.organisations import Role
from domain.webhooks import Message
from workflows import contracts, subscriptions
from workflows.bootstrap import Services
from workflows.i18n import LANGUAGES
from workflows.projection_control import projection_statuses, request_rebuild, wake_webhooks

router = ui_router()

TEST_MESSAGE_TYPE = "webhook.test"
TEST_LANE = "00000000-0000-0000-0000-000000000000"
"""Test messages travel in a lane of their own, so they never take a contract's sequence."""
DELIVERY_PAGE = 100
ORGANISATION_PAGE = 20
"""Contracts on one page of an organisation's directives."""
DELIVERY_SCAN_PAGES = 20
"""At most this many pages of 1,000 messages are read to find a subscription's newest ones."""


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard: never another site (no open redirect)."""
    if not target or not target.startswith("/ui/") or target.startswith("//"):
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/ui/"
    return target


@router.get("/", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui", include_in_schema=False)
async def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/login", response_class=HTMLResponse)
async def login_page(request: Request,
                     next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    services = services_of(request)
    token = await threaded(login_token, services)
    return page(request, "login.html", None, login_token=token, next=_safe_next(next),
                failed=False, names={})


@router.post("/ui/login", response_class=HTMLResponse)
async def login(request: Request, key: Annotated[str, Form(max_length=300)] = "",
                csrf: Annotated[str, Form(max_length=300)] = "",
                next: Annotated[str, Form(max_length=500)] = "/ui/") -> Response:
    services = services_of(request)
    if not await threaded(login_token_valid, services, csrf):
        token = await threaded(login_token, services)
        return page(request, "login.html", None, status_code=403, login_token=token,
                    next=_safe_next(next), failed="csrf", names={})
    signed = await threaded(sign_in, services, key.strip())
    if signed is None:
        token = await threaded(login_token, services)
        return page(request, "login.html", None, status_code=401, login_token=token,
                    next=_safe_next(next), failed="key", names={})
    cookie, _session = signed
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/ui/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    await checked_form(request, session)
    await threaded(sign_out, services_of(request), session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/ui/lang/{language}")
async def switch_language(request: Request, language: str,
                          next: Annotated[str | None, Query(max_length=500)] = None
                          ) -> Response:
    """Remember the language (a preference, not a secret) and go back where the person was."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(LANG_COOKIE, language, max_age=365 * 24 * 3600, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


# --- an organisation's directives -----------------------------------------------------


def _organisation(services: Services, session: Session, org: str, page: int
                  ) -> dict[str, Any]:
    caller = session.caller
    if caller.role not in (Role.ADMIN, Role.SUPERVISOR):
        org = caller.org
    listed: list[dict[str, Any]] = []
    for contract_id in contracts.readable_contract_ids(services.ledger, caller):
        contract = contracts.read_contract(services.ledger, caller, contract_id)
        delivers = contract.terms.get("provider") == org  # what lands on its team: all
        mine = [d for d in contract.directives.values() if delivers or d["issuer"] == org]
        if mine:
            summary = {"id": contract_id, "code": contract.code,
                       "title": contract.terms.get("title", ""), "delivers": delivers}
            listed.append({"summary": summary, "directives": mine})
    listed.sort(key=lambda entry: entry["summary"]["code"])
    pages = max(1, -(-len(listed) // ORGANISATION_PAGE))
    number = min(page, pages)
    shown = listed[(number - 1) * ORGANISATION_PAGE: number * ORGANISATION_PAGE]
    for entry in shown:  # copies: the page adds its rank and conflicts to each
        entry["directives"] = [dict(d) for d in entry["directives"]]
    return {"org": org, "contracts": shown, "page": number, "pages": pages,
            "names": organisation_names(services)}


@router.get("/ui/organisation", response_class=HTMLResponse)
async def organisation_page(request: Request, session: SessionDep,
                            org: Annotated[str | None, Query(max_length=64)] = None,
                            number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1
                            ) -> Response:
    services = services_of(request)
    context = await threaded(_organisation, services, session, org or session.caller.org,
                             number)
    live = ProjectedReads(services.redis)
    for entry in context["contracts"]:
        contract_id = entry["summary"]["id"]
        _, ranking = await live.priorities(contract_id, Freshness())
        _, conflicts = await live.conflicts(contract_id, None, Freshness())  # open, resolved
        ranks = {p["directive_id"]: p for p in ranking["priorities"]}
        for directive in entry["directives"]:
            directive["ranked"] = ranks.get(directive["id"])
            mine = [c for c in conflicts["conflicts"] if directive["id"] in c["members"]]
            directive["in_conflicts"] = [c for c in mine if c["status"] == "open"]
            directive["decisions"] = [c for c in mine if c["status"] == "resolved"]
        if entry["summary"]["delivers"]:  # a provider triages in the ranking's order
            entry["directives"].sort(key=_in_rank_order)
    return page(request, "organisation.html", session, **context)


def _in_rank_order(directive: dict[str, Any]) -> tuple[int, int]:
    """Ranked directives by rank, then the others (withdrawn, or not yet projected)."""
    ranked = directive.get("ranked")
    return (0, ranked["rank"]) if ranked else (1, 0)


# --- webhooks ---------------------------------------------------------------------------


@router.get("/ui/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, session: SessionDep) -> Response:
    services = services_of(request)
    items = await threaded(subscriptions.list_subscriptions, services.ledger, session.caller)
    names = await threaded(organisation_names, services)
    return page(request, "webhooks.html", session, items=items, names=names)


def _webhook(services: Services, session: Session, webhook_id: str) -> dict[str, Any]:
    subscription = subscriptions.read_subscription(services.ledger, session.caller, webhook_id)
    outbox = services.outbox
    kept: list[dict[str, Any]] = []
    after = None
    for _ in range(DELIVERY_SCAN_PAGES):  # the log is oldest first: keep its newest page
        page_of = outbox.log.deliveries(str(subscription.id), limit=1000, after=after)
        kept = (kept + page_of)[-DELIVERY_PAGE:]
        if len(page_of) < 1000:
            break
        after = page_of[-1]["id"]
    shown = subscription.as_dict()
    readable = contracts.readable_contract_ids(services.ledger, session.caller)
    named = frozenset(shown.get("contracts") or ()) & readable
    codes = {c["id"]: c["code"] for c in contract_labels(services, session, named)}
    return {"webhook": shown, "deliveries": kept[::-1], "codes": codes,
            "names": organisation_names(services)}


@router.get("/ui/webhooks/{webhook_id}", response_class=HTMLResponse)
async def webhook_page(request: Request, session: SessionDep, webhook_id: str,
                       done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    context = await threaded(_webhook, services_of(request), session, webhook_id[:64])
    return page(request, "webhook.html", session, **context, done=done)


def _redeliver(services: Services, session: Session, webhook_id: str, message_id: str) -> None:
    subscription = subscriptions.read_subscription(services.ledger, session.caller, webhook_id)
    if not services.outbox.log.redeliver(str(subscription.id), message_id,
                                         services.ledger.clock()):
        raise NotFound(f"no message {message_id} of webhook {webhook_id}")
    wake_webhooks(services)


@router.post("/ui/webhooks/{webhook_id}/redeliver")
async def redeliver(request: Request, session: SessionDep, webhook_id: str) -> Response:
    form = await checked_form(request, session)
    await threaded(_redeliver, services_of(request), session, webhook_id[:64],
                   text_field(form, "message_id", 128))
    return RedirectResponse(f"/ui/webhooks/{webhook_id}?done=redelivered", status_code=303)


def _send_test(services: Services, session: Session, webhook_id: str) -> None:
    """Queue a ``webhook.test`` message for the subscription; the sweeper sends it as usual."""
    from workflows.webhooks.outbox.records import Entry

    subscription = subscriptions.read_subscription(services.ledger, session.caller, webhook_id)
    now = services.ledger.clock()
    message = Message(TEST_MESSAGE_TYPE, {
        "contract_id": TEST_LANE, "subscription_id": str(subscription.id),
        "note": "A test message from the Threadneedle dashboard 测试消息",
        "sent_by": session.caller.org,
    })
    entry = Entry(subscription_id=str(subscription.id), message=message, position=0,
                  index=secrets.randbits(31), timestamp=now.astimezone(UTC))
    services.outbox.dispatch.append([entry], now)
    wake_webhooks(services)


@router.post("/ui/webhooks/{webhook_id}/test")
async def send_test(request: Request, session: SessionDep, webhook_id: str) -> Response:
    await checked_form(request, session)
    await threaded(_send_test, services_of(request), session, webhook_id[:64])
    return RedirectResponse(f"/ui/webhooks/{webhook_id}?done=test", status_code=303)


# --- operations -----------------------------------------------------------------------


@router.get("/ui/operations", response_class=HTMLResponse)
async def operations_page(request: Request, session: SessionDep,
                          done: Annotated[str | None, Query(max_length=20)] = None
                          ) -> Response:
    get_overseer(session.caller)
    services = services_of(request)
    items = await threaded(projection_statuses, services)
    names = await threaded(organisation_names, services)  # (the header names the caller's)
    return page(request, "operations.html", session, items=items, done=done,
                now=datetime.now(UTC), names=names)


@router.post("/ui/operations/{name}/rebuild")
async def rebuild(request: Request, session: SessionDep, name: str) -> Response:
    await checked_form(request, session)
    get_admin(session.caller)
    await threaded(request_rebuild, services_of(request), name[:64])
    return RedirectResponse("/ui/operations?done=rebuild", status_code=303)
