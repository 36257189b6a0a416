"""Errors as RFC 9457 problem documents: the one place where failures become HTTP.

Every refusal the API gives — a domain error, a body that does not validate, a
missing key, a route that does not exist, an oversized body — leaves here as
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``,
a stable ``code`` and, for validation failures, ``errors`` naming each field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from domain.errors import DomainError, ValidationFailed
from workflows.store import STORE_OUTAGES

log = logging.getLogger("threadneedle.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 1
"""What a 503 asks a client to wait: contention and lagging views both clear in moments."""
STORE_RETRY_AFTER_SECONDS = 2
"""What a 503 ``store_unavailable`` asks a client to wait: a database restart takes seconds."""
REDIS_OUTAGES: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
"""Redis unreachable: the live views are gone for now (replay from the store still answers)."""

# Domain error code -> (status, title).  A new domain error gets one line here.
DOMAIN_ERRORS: dict[str, tuple[int, str]] = {
    "validation_failed": (422, "Validation failed"),
    "not_found": (404, "Not found"),
    "forbidden": (403, "Forbidden"),
    "insufficient_authority": (403, "Insufficient authority"),
    "already_exists": (409, "Already exists"),
    "illegal_transition": (409, "Illegal transition"),
    "contract_not_active": (409, "Contract not active"),
    "contract_finished": (409, "Contract finished"),
    "directive_not_active": (409, "Directive not active"),
    "conflict_not_open": (409, "Conflict not open"),
    "level_mismatch": (409, "Conflict not at that level"),
    "no_higher_level": (409, "No higher level"),
    "not_lapsed": (409, "Conflict not lapsed"),
    "proposal_pending": (409, "Decision awaiting joint approval"),
    "no_pending_proposal": (409, "No decision awaiting approval"),
    "version_mismatch": (412, "Version mismatch"),
    "idempotency_key_reused": (422, "Idempotency key reused"),
    "contention": (503, "Too much contention"),
    "projection_lagging": (503, "Projection lagging"),
    "views_unavailable": (503, "Views unavailable"),
}

# HTTP status -> (code, title) for refusals raised by the framework or the edge.
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Unauthenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    412: ("version_mismatch", "Version mismatch"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    408: ("request_timeout", "Request timeout"),
    422: ("validation_failed", "Validation failed"),
    429: ("rate_limited", "Too many requests"),
    431: ("headers_too_large", "Request header fields too large"),
    503: ("unavailable", "Service unavailable"),
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}
"""Errors are sent as ``application/problem+json``: that media type must carry the schema."""


def problem_type(code: str) -> str:
    return f"urn:threadneedle:problem:{code}"


def problem_document(status: int, code: str, detail: str, *, title: str | None = None,
                     errors: Iterable[tuple[str, str]] | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or HTTP_ERRORS.get(status, (code, code.replace("_", " ").capitalize()))[1],
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        document["errors"] = [{"field": field, "message": message} for field, message in errors]
    if extra:
        document.update(extra)
    return document


def problem_response(status: int, code: str, detail: str, *, title: str | None = None,
                     errors: Iterable[tuple[str, str]] | None = None,
                     headers: Mapping[str, str] | None = None,
                     extra: Mapping[str, Any] | None = None) -> JSONResponse:
    document = problem_document(status, code, detail, title=title, errors=errors, extra=extra)
    return JSONResponse(document, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_bytes(status: int, code: str, detail: str,
                  errors: Iterable[tuple[str, str]] | None = None) -> bytes:
    """The same document as bytes, for the pure ASGI middleware that answers before FastAPI."""
    return json.dumps(problem_document(status, code, detail, errors=errors),
                      ensure_ascii=False).encode()


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "budget", "amount")`` -> ``budget.amount``; query and header keep their kind."""
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _on_domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    if error.code not in DOMAIN_ERRORS:
        return _on_unexpected(request, error)
    status, title = DOMAIN_ERRORS[error.code]
    errors = error.errors if isinstance(error, ValidationFailed) else None
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return problem_response(status, error.code, error.detail, title=title, errors=errors,
                            headers=headers, extra=error.extra)


def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = list(error.errors())
    malformed = [p for p in problems if p.get("type") == "json_invalid"]
    if malformed:
        reason = (malformed[0].get("ctx") or {}).get("error", "invalid JSON")
        position = malformed[0]["loc"][-1]
        return problem_response(
            422, "malformed_json",
            f"the body is not valid JSON: {reason} (at character {position})",
            title="Malformed JSON", errors=[("body", str(reason))],
        )
    errors = [(_field(p["loc"]), str(p["msg"])) for p in problems]
    detail = "; ".join(f"{field}: {message}" for field, message in errors[:5])
    if len(errors) > 5:
        detail += f"; and {len(errors) - 5} more"
    return problem_response(422, "validation_failed", detail, title="Validation failed",
                            errors=errors)


def _on_http_exception(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and error.detail == "There was an error parsing the body":
        # FastAPI answers 400 for a body that is not even UTF-8; for us that is malformed JSON.
        return problem_response(422, "malformed_json", "the body is not valid UTF-8 JSON",
                                title="Malformed JSON", errors=[("body", "not valid UTF-8 JSON")])
    code, title = HTTP_ERRORS.get(error.status_code, ("http_error", "HTTP error"))
    detail = error.detail if isinstance(error.detail, str) else title
    headers = getattr(error, "headers", None)
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem_response(error.status_code, code, detail, title=title, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path.

    Starlette's 405 lists only the methods of the first route whose path matched,
    so ``OPTIONS /v1/organizations`` claimed ``Allow: POST`` although GET is served too.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def store_outage(error: BaseException | None) -> BaseException | None:
    """The store outage behind ``error``, following its causes (wrappers keep them)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, STORE_OUTAGES):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _on_store_outage(request: Request, error: Exception) -> JSONResponse:
    log.warning("event store unavailable on %s %s: %s", request.method, request.url.path,
                str(error)[:300])
    return problem_response(
        503, "store_unavailable", "the event store cannot be reached just now; try again shortly "
        "(a retry with the same Idempotency-Key is never recorded twice)",
        title="Store unavailable", headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
    )


def _on_redis_outage(request: Request, error: Exception) -> JSONResponse:
    log.warning("redis unavailable on %s %s: %s", request.method, request.url.path,
                str(error)[:300])
    return problem_response(
        503, "views_unavailable", "the live views cannot be read just now; try again shortly, "
        "or ask for a replay with ?version= or ?as_of=",
        title="Views unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    if store_outage(error) is not None:  # wrapped by some layer: still an outage
        return _on_store_outage(request, error)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem_response(500, "internal_error", "an unexpected error occurred; it was logged",
                            title="Internal server error")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    for outage in STORE_OUTAGES:
        app.add_exception_handler(outage, _on_store_outage)
    for outage in REDIS_OUTAGES:
        app.add_exception_handler(outage, _on_redis_outage)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route may answer with."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA_REF}},
                 "description": HTTP_ERRORS.get(status, ("", "Error"))[1]}
        for status in statuses
    }
