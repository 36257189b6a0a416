"""What every dashboard route shares: the session dependency, checked forms, the router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.deps import wake_after_commands
from api.replays import replay_turns
from api.ui.render import CsrfRefused, SignInNeeded, UiRoute, services_of
from api.ui.session import COOKIE, Session, csrf_matches, session_of
from workflows import view_store

MAX_FORM_FIELDS = 200


def ui_router() -> APIRouter:
    """A router of dashboard routes: refusals are pages, and commands wake the projections
    as the API's do (``wake_after_commands``)."""
    return APIRouter(route_class=UiRoute, include_in_schema=False,
                     dependencies=[Depends(wake_after_commands, scope="function")])


def current_session(request: Request) -> Session:
    session = session_of(services_of(request), request.cookies.get(COOKIE))
    if session is None:
        raise SignInNeeded
    request.state.session = session  # (a refusal's page keeps the signed-in header)
    return session


SessionDep = Annotated[Session, Depends(current_session)]


async def checked_form(request: Request, session: Session) -> FormData:
    """The posted form, once it carries the session's CSRF token (403 page otherwise)."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    token = form.get("csrf")
    if not isinstance(token, str) or not csrf_matches(session, token):
        raise CsrfRefused
    return form


def text_field(form: FormData, name: str, limit: int = 4000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def projection_position(request: Request) -> int:
    client = services_of(request).redis
    if client is None:
        return 0
    return await run_in_threadpool(view_store.read_position, client)


async def views_token(request: Request, contract_id: str | None = None) -> str:
    """Where the views are: every partition's position (``"12.9.30.4"``), or only the
    partition of ``contract_id``.  A page part drawn at one token is drawn again only when
    the token has changed (one partition may move while the lowest position stays put)."""
    client = services_of(request).redis
    if client is None:
        return "0"

    def read() -> str:
        names = ([view_store.contract_partition(contract_id)] if contract_id
                 else view_store.partition_names())
        return ".".join(str(view_store.read_position(client, name)) for name in names)

    return await run_in_threadpool(read)


def threaded(function: Any, *args: Any, **kwargs: Any) -> Any:
    """``run_in_threadpool`` spelled short, for the application's blocking reads."""
    return run_in_threadpool(function, *args, **kwargs)


def replayed(request: Request, session: Session, function: Any, *args: Any,
             **kwargs: Any) -> Any:
    """``threaded`` for a page that replays a contract: its turn on the replay threads
    (``api/replays.py``), counted against the signed-in key."""
    return replay_turns(request.app.state).run(session.caller, function, *args, **kwargs)
