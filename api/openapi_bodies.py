"""What the OpenAPI document says about request bodies beyond what their fields declare.

The bodies are the domain's models (``domain.terms``, ``domain.directives``,
``domain.subscriptions``); their validators keep their own, clearer messages.
The document states what those validators check, so that generated clients and
fuzzers send what the API accepts: an amendment, a correction or a change to a
subscription names at least one field and cannot clear the fields the domain
refuses to clear; amounts match ``AMOUNT``; event types are the §8 types,
``"*"`` or a group glob; contracts are UUIDs; URLs are http(s); lists of
names name each one once; a new directive with a ``statute`` or ``contract``
basis gives its citation; a classification sets ``task_type`` or adds a tag.  Whether a
URL's host is allowed (SSRF guard) and whether the caller may read a contract
depend on the deployment and the store, not on the shape.

``document_request_bodies(app)`` edits the app's document once, when it is first built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from domain.contract import CITED_BASES
from domain.directives import CORRECTION_NOT_CLEARABLE, NOT_CLEARABLE
from domain.subscriptions import NOT_NULL_IN_A_CHANGE
from domain.terms import AMOUNT
from domain.webhooks import EVENT_TYPES, EVERY_TYPE, GROUPS

Schema = dict[str, Any]


def _not_nullable(schema: Schema, names: Iterable[str]) -> None:
    """At least one property, and ``null`` dropped from the documented types of ``names``
    (each keeps its constraints: pattern, bounds)."""
    schema["minProperties"] = 1
    for name in names:
        field = schema["properties"][name]
        options = [option for option in field.pop("anyOf") if option != {"type": "null"}]
        field.update(options[0])


def _money(schema: Schema) -> None:
    schema["properties"]["amount"]["pattern"] = AMOUNT


def _directive_patch(schema: Schema) -> None:
    _not_nullable(schema, NOT_CLEARABLE)


def _correction(schema: Schema) -> None:
    _not_nullable(schema, CORRECTION_NOT_CLEARABLE)


def _subscription(schema: Schema) -> None:
    properties = schema["properties"]
    if "enabled" in properties:  # a change (SubscriptionPatch)
        _not_nullable(schema, NOT_NULL_IN_A_CHANGE)
    patterns = [EVERY_TYPE, *(f"{group}.*" for group in sorted(GROUPS)), *EVENT_TYPES]
    properties["event_types"]["items"]["enum"] = patterns
    properties["url"]["pattern"] = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\s]+"
    for option in properties["contracts"].get("anyOf", []):
        if option.get("type") == "array":
            option["items"]["format"] = "uuid"


def _contract_terms(schema: Schema) -> None:
    """The lists of names that name each one once (``domain.primitives.unique``; the lists
    of objects unique by a key — admission, indicators, stakeholders, rules — cannot say so
    in JSON Schema)."""
    for name in ("escalation_chain", "service_types", "joint_decision"):
        schema["properties"][name]["uniqueItems"] = True


def _directive_fields(schema: Schema) -> None:
    """A ``statute`` or ``contract`` basis names its citation (SPEC §3)."""
    schema["if"] = {"required": ["basis"],
                    "properties": {"basis": {"enum": sorted(CITED_BASES)}}}
    schema["then"] = {"required": ["citation"],
                      "properties": {"citation": {"type": "string", "pattern": r"\S"}}}


def _classification(schema: Schema) -> None:
    """A classification sets ``task_type`` or adds at least one tag (SPEC §13)."""
    schema["anyOf"] = [
        {"required": ["task_type"], "properties": {"task_type": {"not": {"type": "null"}}}},
        {"required": ["add_tags"], "properties": {"add_tags": {"minItems": 1}}},
    ]


def _dispute(schema: Schema) -> None:
    schema["properties"]["fields"]["uniqueItems"] = True


NOTES: dict[str, Callable[[Schema], None]] = {
    "ContractTerms": _contract_terms,
    "DirectiveFields": _directive_fields,
    "Classification": _classification,
    "Dispute": _dispute,
    "Money": _money,
    "DirectivePatch": _directive_patch,
    "Correction": _correction,
    "SubscriptionSpec": _subscription,
    "SubscriptionPatch": _subscription,
}
"""Each body's component name in the document, and what to add to its schema."""


def document_body_schemas(schemas: dict[str, Schema]) -> None:
    """Add the notes to the components of a document (``-Input``/``-Output`` variants too)."""
    for name, schema in schemas.items():
        note = NOTES.get(name.removesuffix("-Input").removesuffix("-Output"))
        if note is not None:
            note(schema)


def document_request_bodies(app: FastAPI) -> None:
    """Make ``app.openapi()`` add the notes to the document it builds (and caches)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document_body_schemas(document.get("components", {}).get("schemas", {}))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
