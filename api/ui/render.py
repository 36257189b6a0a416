"""Rendering dashboard pages: the Jinja2 environment, labels in both languages, errors as pages.

Every page is rendered with ``page(request, template, ...)``: it adds the
language (``needle_lang`` cookie, else ``Accept-Language``, else Chinese), the
translation function ``_``, the signed-in caller and its CSRF token, and the
formatting helpers (times in Asia/Shanghai, ISO weeks as dates, organisations
by name).  Labels are English in the code and translated through the Babel
catalogue ``messages`` (``workflows/i18n.py``).

``UiRoute`` turns what a page raises into a page rather than a problem
document: no session → the sign-in page (303), a domain error → an error
page with the status the API would give (404 for a contract the caller may
not read), a bad query → 422.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.problems import DOMAIN_ERRORS, HTTP_ERRORS
from api.ui import refusals
from api.ui.session import LANG_COOKIE, Session
from domain import work_kinds
from domain.directives import Basis, DisputedField
from domain.errors import DomainError
from workflows import directory, i18n, vocabulary
from workflows.bootstrap import Services

TEMPLATES = Path(__file__).with_name("templates")

KIND_LABELS = {
    "contradiction": "Contradiction",
    "duplicate": "Duplicate",
    "over_capacity": "Over capacity",
    "out_of_scope": "Out of scope",
    "rule_violation": "Rule violation",
    "not_admitted": "Not admitted",
    "disputed": "Disputed",
}
STATUS_LABELS = {
    "open": "Open", "resolved": "Resolved", "dissolved": "Dissolved",
    "active": "Active", "withdrawn": "Withdrawn", "overridden": "Overridden",
    "draft": "Draft", "suspended": "Suspended", "terminated": "Terminated", "closed": "Closed",
    "pending": "Pending", "delivered": "Delivered", "failed": "Failed",
    "approved": "Approved", "rejected": "Rejected", "decided": "Decided",
    # projections (``GET /v1/admin/projections``)
    "live": "Live", "catching_up": "Catching up", "rebuilding": "Rebuilding",
}
OUTCOME_LABELS = {
    # decisions (SPEC §6)
    "upheld": "Upheld", "merged": "Merged", "deferred": "Deferred",
    "rejected_all": "All rejected", "corrected": "Corrected",
    # schedule outcomes of the priority view (SPEC §5)
    "scheduled": "Scheduled", "partial": "Partly scheduled", "blocked": "Blocked",
    "contested": "Contested", "covered": "Covered",
}
DISPUTABLE = tuple(field.value for field in DisputedField)
"""The fields a dispute may name and a correction may change (SPEC §13); their labels are
``Labels.field``'s."""
TERM_LABELS = {"status": "Status", "policy": "Policy", "stakeholders": "Stakeholders",
               "escalation_chain": "Escalation chain",
               "resolution_sla_hours": "Hours to decide a conflict", "rules": "Rules"}
"""The terms a diff compares (``domain.diff``: the status and ``COMPARED_TERMS``)."""
EVENT_LABELS = {
    "Drafted": "Contract drafted",
    "StakeholderAdded": "Stakeholder added",
    "PolicyChanged": "Ranking policy changed",
    "Activated": "Contract activated",
    "Suspended": "Contract suspended",
    "Terminated": "Contract terminated",
    "Closed": "Contract closed",
    "DirectiveIssued": "Directive issued",
    "DirectiveAmended": "Directive amended",
    "DirectiveWithdrawn": "Directive withdrawn",
    "AdmissionChanged": "Admission list changed",
    "DirectiveClassified": "Directive classified",
    "DirectiveDisputed": "Directive disputed",
    "DirectiveCorrected": "Directive corrected",
    "DecisionProposed": "Decision proposed",
    "DecisionApproved": "Decision approved",
    "DecisionRejected": "Decision rejected",
    "ConflictResolved": "Conflict decided",
    "ConflictEscalated": "Conflict escalated",
}
"""The contract's events (``domain.contract``), as the history's timeline names them."""
ROLE_LABELS = {"admin": "Admin", "supervisor": "Supervisor", "stakeholder": "Stakeholder",
               "resolver": "Resolver"}
PROFILE_LABELS = {"contract_first": "Contract first", "client_first": "Client first"}
COMPONENT_LABELS = {"need": "Need", "urgency": "Urgency", "indicator": "Indicator",
                    "legitimacy": "Legitimacy", "efficiency": "Efficiency"}


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters["tojson_attr"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


ENV = _environment()


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LANGUAGES:
        return str(chosen)
    return i18n.negotiate(request.headers.get("accept-language"))


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


WHOSE_DIRECTIVE = '%(org)s\'s "%(summary)s"'


class Labels:
    """Everything a template needs to say things in one language."""

    def __init__(self, language: str, names: Mapping[str, str]) -> None:
        self.lang = language
        self.names = names
        marks = i18n.PUNCTUATION[language]
        self.colon, self.semi, self.comma = marks.colon, marks.semi, marks.comma
        self.enum, self.gap, self.brackets = marks.enum, marks.gap, marks.brackets
        self.paren = marks.paren
        """Punctuation as the language takes it (``workflows.i18n.Punctuation``)."""

    def summaries(self, directive_ids: Any, directives_by_id: Mapping[str, Any]) -> str:
        """Directives named by their issuers and summaries (two issuers may write the same
        summary), listed; an unknown one by its id's start."""
        def named(key: Any) -> str:
            directive = directives_by_id.get(key)
            if not directive or not directive.get("summary"):
                return str(key)[:8]
            return self._(WHOSE_DIRECTIVE, org=self.org(directive.get("issuer")),
                          summary=directive["summary"])
        return self.enum.join(named(key) for key in directive_ids or ())

    def _(self, message: str, **values: object) -> str:
        text = i18n.gettext(self.lang, message)
        return text % values if values else text

    def label(self, table: Mapping[str, str], value: Any) -> str:
        if value is None:
            return ""
        text = table.get(str(value))
        return self._(text) if text else str(value)

    def kind(self, value: Any) -> str:
        return self.label(KIND_LABELS, value)

    def status(self, value: Any) -> str:
        return self.label(STATUS_LABELS, value)

    def outcome(self, value: Any) -> str:
        return self.label(OUTCOME_LABELS, value)

    def basis(self, value: Any) -> str:
        """A directive's basis (``workflows.vocabulary``), as a label."""
        return vocabulary.as_label(vocabulary.basis(value, self.lang))

    def tags(self, slugs: Any) -> str:
        """Tags by their words where they have one (``workflows.vocabulary``), comma-joined."""
        return self.enum.join(vocabulary.tag(str(slug), self.lang) for slug in slugs or ())

    def refusal(self, code: str, extra: Mapping[str, Any] | None = None) -> str:
        """Why a form or a page was refused, as a sentence (``api/ui/refusals.py``)."""
        return refusals.refusal(self, code, extra)

    def field(self, name: str) -> str:
        """A directive field's name (``workflows.vocabulary``), as a label."""
        return vocabulary.as_label(vocabulary.field(name, self.lang))

    def event(self, event_type: str) -> str:
        """An event's type (``ServiceContract.DirectiveIssued``), as the timeline names it."""
        return self.label(EVENT_LABELS, event_type.rsplit(".", 1)[-1])

    def work(self, value: Any) -> str:
        """A kind of work (SPEC §13) by its label; ``*`` is any kind."""
        if value == work_kinds.ANY_KIND:
            return self._("any kind of work")
        return work_kinds.label(str(value), self.lang) if value else ""

    def role(self, value: Any) -> str:
        return self.label(ROLE_LABELS, getattr(value, "value", value))

    def profile(self, value: Any) -> str:
        return self.label(PROFILE_LABELS, value)

    def component(self, value: Any) -> str:
        return self.label(COMPONENT_LABELS, value)

    def granted(self, schedule: Mapping[str, Any] | None, asked: Any) -> str:
        """Hours a week granted against those asked, ``0 / 12``.  A partial grant's figure is
        its leanest week's (SPEC §5), and the cell says so: "0" alone read as nothing at all."""
        if not schedule:
            return ""
        text = i18n.show_hours(schedule.get("hours_granted"), places=2)
        if asked is not None:
            text += f" / {i18n.show_hours(asked, places=2)}"
        if schedule.get("outcome") == "partial":
            text += self._(" (its leanest week)")
        return text

    def org(self, org_id: Any) -> str:
        return self.names.get(str(org_id), str(org_id))

    def orgs(self, org_ids: Any) -> str:
        return self.enum.join(self.org(o) for o in org_ids or [])

    def when(self, moment: Any) -> str:
        return i18n.show_time(moment, self.lang) if moment else ""

    def day(self, value: Any) -> str:
        return i18n.show_date(value, self.lang) if value else ""

    def weeks(self, first: str, last: str | None = None) -> str:
        try:
            return i18n.show_weeks(first, last, self.lang)
        except ValueError:
            return first

    def term_change(self, change: Mapping[str, Any]) -> str:
        """One changed term of a diff (``domain.diff.term_changes``), as a person reads it."""
        name, before, after = change.get("field"), change.get("from"), change.get("to")
        shown = {
            "status": self.status,
            "policy": lambda policy: self.profile((policy or {}).get("profile")),
            "stakeholders": lambda specs: self.orgs([spec["org"] for spec in specs or []]),
            "escalation_chain": lambda chain: " → ".join(self.org(org) for org in chain or []),
            "rules": lambda rules: ", ".join(rule["id"] for rule in rules or []) or "—",
        }.get(str(name), lambda value: "—" if value is None else str(value))
        return self._("%(term)s: %(before)s → %(after)s", term=self._(TERM_LABELS.get(
            str(name), str(name))), before=shown(before), after=shown(after))

    def rank_change(self, before: int | None, after: int | None) -> str:
        """A directive's move in the ranking between two versions (``None``: not ranked)."""
        if before is None:
            return self._("newly ranked %(rank)s", rank=after)
        if after is None:
            return self._("was ranked %(rank)s, no longer ranked", rank=before)
        return self._("rank %(before)s → %(after)s", before=before, after=after)

    def explanation(self, conflict: Mapping[str, Any]) -> str:
        explanations = conflict.get("explanations") or {}
        return str(explanations.get(self.lang) or conflict.get("explanation") or "")

    def overdue(self, seconds: float) -> str:
        hours = int(seconds // 3600)
        if hours >= 48:
            return self._("%(days)s days overdue", days=hours // 24)
        if hours >= 1:
            return self._("%(hours)s hours overdue", hours=hours)
        return self._("overdue")


def organisation_names(services: Services) -> dict[str, str]:
    """Organisation id → name, for showing organisations by name.

    Names are directory data every signed-in person sees in explanations
    anyway (SPEC §12), so they are read as the operator, not per caller.
    """
    from workflows.identities import BOOTSTRAP_ADMIN

    organisations = directory.list_organisations(services.ledger, BOOTSTRAP_ADMIN)
    return {org["id"]: org["name"] for org in organisations}


def page(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    *,
    names: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    language = language_of(request)
    if names is None:
        names = organisation_names(services_of(request))
    labels = Labels(language, names)
    html = ENV.get_template(template).render(
        request=request, session=session, caller=session.caller if session else None,
        csrf=session.csrf if session else "", lang=language, t=labels, _=labels._,
        path=request.url.path, full_path=_full_path(request), Markup=Markup,
        work_kinds=list(work_kinds.WORK_KINDS), any_kind=work_kinds.ANY_KIND,
        disputable=DISPUTABLE, bases=[basis.value for basis in Basis], **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _full_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


SECURITY_HEADERS = {
    # Everything comes from this server: scripts only from its own files.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInNeeded(Exception):
    """No live session: send the browser to the sign-in page."""


class CsrfRefused(Exception):
    """A form came without its session's CSRF token."""


class UiRoute(APIRoute):
    """A dashboard route: its refusals are pages, not problem documents."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                target = "/ui/login"
                if request.method == "GET" and request.url.path != "/ui/login":
                    target += "?next=" + quote(_full_path(request), safe="")
                if request.headers.get("hx-request"):
                    return Response(status_code=204, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except CsrfRefused:
                return error_page(request, 403, "form_expired",
                                  "The form's security token is missing or wrong; "
                                  "reload the page and try again.")
            except HTTPException as error:  # (429: a key's replays under way, ``api/replays.py``)
                code, _title = HTTP_ERRORS.get(error.status_code, ("http_error", ""))
                return error_page(request, error.status_code, code, str(error.detail),
                                  headers=error.headers)
            except DomainError as error:
                return error_page(request, **refused(error))
            except RequestValidationError as error:
                fields = "; ".join(
                    ".".join(str(p) for p in e.get("loc", ())[1:]) + ": " + str(e.get("msg"))
                    for e in error.errors())
                return error_page(request, 422, "validation_failed", fields)

        return handle


def refused(error: DomainError) -> dict[str, Any]:
    """A refusal of the domain as a page shows it: the API's HTTP status for it, its code,
    detail and fields (``error_page``; the conflict page's form)."""
    return {"status": DOMAIN_ERRORS.get(error.code, (400, ""))[0], "code": error.code,
            "detail": error.detail, "extra": error.extra}


def error_page(request: Request, status: int, code: str, detail: str,
               extra: Mapping[str, Any] | None = None,
               headers: Mapping[str, str] | None = None) -> HTMLResponse:
    answer = page(request, "error.html", getattr(request.state, "session", None),
                  status_code=status, error_status=status,
                  error={"code": code, "detail": detail, "extra": extra})
    answer.headers.update(headers or {})
    return answer
