"""SPEC §13 on the dashboard: classifying and disputing a directive, answering a proposed
decision, and the admin's admission list.

Every form is CSRF-checked (``checked_form``) and calls the use cases the
API routes call (``classify_directive``, ``dispute_directive``, ``answer_proposal``,
``change_admission``) with the signed-in caller, so the same rules refuse the same
requests; a refusal is the error page with the status the API would give (403, 404,
409, 422).  A success redirects back to the page the form was on.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from api.ui.common import SessionDep, checked_form, text_field, threaded, ui_router
from api.ui.render import error_page, services_of
from domain.directives import Classification, Dispute
from domain.resolution import Approval
from domain.terms import Admission
from workflows import directives, resolution

router = ui_router()


def _words(text: str) -> list[str]:
    """Tags typed into one box, separated by spaces or commas (either width)."""
    return [word for word in text.replace("，", " ").replace(",", " ").split() if word][:50]


def _valid(model: type[BaseModel], request: Request, body: dict[str, Any]) -> Any:
    """The body as ``model``, or ``None`` after the 422 page names what is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as invalid:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                           for e in invalid.errors())
        raise _Invalid(error_page(request, 422, "validation_failed", detail)) from None


class _Invalid(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _back(contract_id: str, anchor: str = "") -> Response:
    return RedirectResponse(f"/ui/contracts/{contract_id}{anchor}", status_code=303)


@router.post("/ui/contracts/{contract_id}/directives/{directive_id}/classify",
             response_class=HTMLResponse)
async def classify(request: Request, session: SessionDep, contract_id: str,
                   directive_id: str) -> Response:
    posted = await checked_form(request, session)
    body: dict[str, Any] = {"add_tags": _words(text_field(posted, "add_tags", 2000)),
                            "note": text_field(posted, "note", 600)}
    if task_type := text_field(posted, "task_type", 60):
        body["task_type"] = task_type
    try:
        classification = _valid(Classification, request, body)
    except _Invalid as refused:
        return refused.response
    await threaded(directives.classify_directive, services_of(request).ledger, session.caller,
                   contract_id[:64], directive_id[:128], classification)
    return _back(contract_id[:64], f"#d-{directive_id[:128]}")


@router.post("/ui/contracts/{contract_id}/directives/{directive_id}/dispute",
             response_class=HTMLResponse)
async def dispute(request: Request, session: SessionDep, contract_id: str,
                  directive_id: str) -> Response:
    posted = await checked_form(request, session)
    body = {"fields": [v for v in posted.getlist("fields") if isinstance(v, str)][:10],
            "reason": text_field(posted, "reason", 600)}
    try:
        disputed = _valid(Dispute, request, body)
    except _Invalid as refused:
        return refused.response
    result = await threaded(directives.dispute_directive, services_of(request).ledger,
                            session.caller, contract_id[:64], directive_id[:128], disputed)
    return RedirectResponse(f"/ui/contracts/{contract_id[:64]}/conflicts/{result.id}",
                            status_code=303)


@router.post("/ui/contracts/{contract_id}/conflicts/{conflict_id}/answer",
             response_class=HTMLResponse)
async def answer(request: Request, session: SessionDep, contract_id: str,
                 conflict_id: str) -> Response:
    """Approve or reject the pending proposal; the dashboard asks for a note either way."""
    posted = await checked_form(request, session)
    choice, note = text_field(posted, "approve", 10), text_field(posted, "note", 2000)
    if choice not in ("yes", "no") or not note.strip():
        return error_page(request, 422, "validation_failed",
                          "approve: choose approve or reject; note: say why")
    approval = Approval(approve=choice == "yes", note=note)
    await threaded(resolution.answer_proposal, services_of(request).ledger, session.caller,
                   contract_id[:64], conflict_id[:128], approval)
    return RedirectResponse(
        f"/ui/contracts/{contract_id[:64]}/conflicts/{conflict_id[:128]}?done=answer",
        status_code=303)


@router.post("/ui/contracts/{contract_id}/admission", response_class=HTMLResponse)
async def admission(request: Request, session: SessionDep, contract_id: str) -> Response:
    """The whole admission list from the editor: one line per organisation, ``org`` then
    the kinds it may assign (checkboxes, ``*`` for any); a line without kinds is left out."""
    posted = await checked_form(request, session)
    entries = []
    for index in range(200):
        org = text_field(posted, f"org-{index}", 200).strip()
        if not org and f"org-{index}" not in posted:
            break
        kinds = [v for v in posted.getlist(f"kinds-{index}") if isinstance(v, str)][:60]
        if org and kinds:
            entries.append({"org": org, "task_types": kinds})
    try:
        admitted = _valid(Admission, request, {"admission": entries})
    except _Invalid as refused:
        return refused.response
    await threaded(directives.change_admission, services_of(request).ledger, session.caller,
                   contract_id[:64], admitted)
    return _back(contract_id[:64], "#h-admission")
