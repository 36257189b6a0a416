"""The values a contract is made of, as validated models.

These models are the single description of each shape: the application
builds events from them and the API uses them as request bodies, so a field
is declared once.  Unknown fields are refused everywhere.

Long because the request bodies and terms of every command validate here; moving the
bodies beside their aggregates is part of issue 12.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from domain.work_kinds import AdmittedKind, WorkKind

SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ORG_ID = r"^[a-z0-9-]{2,64}$"
SUBJECT = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


def _iso_date(value: Any) -> Any:
    """Accept dates only as ISO 8601 strings (or date objects from Python callers)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date written as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]

MAX_VALUE_DEPTH = 32
# The event store's JSON transcoder decodes any object of exactly these two keys as a
# typed value; stored inside a directive it would make the contract unreadable.
RESERVED_KEYS = frozenset({"_type_", "_data_"})


def _storable_json(value: Any, depth: int = 0) -> Any:
    """A directive's free ``value``: plain JSON that stores, hashes and reads back unchanged."""
    if depth > MAX_VALUE_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, dict):
        if set(value) == RESERVED_KEYS:
            raise ValueError("an object with exactly the keys _type_ and _data_ is reserved")
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            _storable_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable_json(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError("must be a JSON value")
    return value


JsonValue = Annotated[Any, BeforeValidator(_storable_json)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _integral(value: Any) -> Any:
    """``14.0`` is an integer in JSON Schema's sense, so the document promises to accept it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[StrictInt, BeforeValidator(_integral)]
"""An integer, also written as ``14.0``; never a string, a bool or ``1.5``."""
Text = Annotated[str, Field(min_length=1, max_length=500)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
Citation = Annotated[str, Field(min_length=1, max_length=200)]
"""What a basis rests on (SPEC §3): the law and article, or the contract clause."""
OrgId = Annotated[str, Field(pattern=ORG_ID)]
Slug = Annotated[str, Field(pattern=SLUG)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Basis(StrEnum):
    STATUTE = "statute"
    CONTRACT = "contract"
    PROFESSIONAL_STANDARD = "professional_standard"
    SUPERVISOR_REQUEST = "supervisor_request"
    PURCHASER_REQUEST = "purchaser_request"
    PETITION = "petition"
    INDIVIDUAL_REQUEST = "individual_request"
    NON_PARTY = "non_party"


class Standing(StrEnum):
    PARTY = "party"
    NON_PARTY = "non_party"


class Profile(StrEnum):
    CONTRACT_FIRST = "contract_first"
    CLIENT_FIRST = "client_first"


AMOUNT = r"^\d{1,15}(\.\d{1,2})?$"


class Money(Strict):
    # The pattern is documented (json_schema_extra) so generated clients and fuzzers send
    # what the validator accepts; the validator keeps its own, clearer message.
    amount: str = Field(description='Decimal string, e.g. "2000000.00"', max_length=32,
                        json_schema_extra={"pattern": AMOUNT})
    currency: str = Field(pattern=r"^[A-Z]{3}$", default="CNY")

    @field_validator("amount")
    @classmethod
    def _decimal(cls, amount: str) -> str:
        if not re.fullmatch(AMOUNT, amount):
            raise ValueError("must be a non-negative decimal string with at most 2 decimals")
        try:
            Decimal(amount)
        except InvalidOperation as error:  # pragma: no cover - the pattern already rules it out
            raise ValueError("not a decimal") from error
        return amount


class Period(Strict):
    start: IsoDate
    end: IsoDate

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Window(Strict):
    from_: IsoDate = Field(alias="from")
    to: IsoDate

    # Only the spelling clients use, "from", is accepted: "from_" is not a field of the API.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=False)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.to < self.from_:
            raise ValueError("'to' must not be before 'from'")
        return self


class Capacity(Strict):
    staff: WholeNumber = Field(ge=0, le=100_000)
    hours_per_staff_week: Number = Field(ge=0, le=168)
    committed_hours_per_week: Number = Field(ge=0, le=10_000_000)

    @property
    def weekly(self) -> float:
        return self.staff * self.hours_per_staff_week

    @property
    def free(self) -> float:
        return self.weekly - self.committed_hours_per_week


class Indicator(Strict):
    key: Slug
    target: Number = Field(ge=0)
    unit: Label


class StakeholderSpec(Strict):
    org: OrgId
    standing: Standing = Standing.PARTY


class Weights(Strict):
    need: Number = Field(ge=0, le=1)
    urgency: Number = Field(ge=0, le=1)
    indicator: Number = Field(ge=0, le=1)
    legitimacy: Number = Field(ge=0, le=1)
    efficiency: Number = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = self.need + self.urgency + self.indicator + self.legitimacy + self.efficiency
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"weights must sum to 1 (they sum to {total:g})")
        return self


class Policy(Strict):
    profile: Profile = Profile.CONTRACT_FIRST
    weights: Weights | None = None


class Rule(Strict):
    id: Slug
    when_tags: list[Slug] = Field(min_length=1, max_length=50)
    unless_tags: list[Slug] = Field(default_factory=list, max_length=50)
    unless_basis: list[Basis] = Field(default_factory=list)
    verdict: Literal["blocked"] = "blocked"
    citation: Text


CONFIDENTIALITY_RULE = Rule(
    id="confidentiality",
    when_tags=["personal_data_disclosure"],
    unless_tags=["consent_obtained"],
    unless_basis=[Basis.STATUTE],
    verdict="blocked",
    citation="广州市社会工作服务条例 第四条 (informed consent, confidentiality)",
)


class ServicePlace(Strict):
    """A ``service_area`` entry that goes by other names too (SPEC §13): 海幢街 / 海幢街道."""

    name: Label
    aliases: list[Label] = Field(default_factory=list, max_length=20)


class AdmissionEntry(Strict):
    """One line of the admission list (准入): an organisation and the kinds of work it may
    assign to the provider (``["*"]`` for any)."""

    org: OrgId
    task_types: list[AdmittedKind] = Field(min_length=1, max_length=50)


AdmissionList = Annotated[list[AdmissionEntry], Field(max_length=200)]


def _unique_admission(entries: list[AdmissionEntry]) -> None:
    _unique("admission", [entry.org for entry in entries])


class Admission(Strict):
    """The body of ``PUT /v1/contracts/{id}/admission``: the whole new list."""

    admission: AdmissionList

    @model_validator(mode="after")
    def _consistent(self) -> Admission:
        _unique_admission(self.admission)
        return self


class ContractTerms(Strict):
    """The body of ``POST /v1/contracts``: every field of a contract a purchaser sets."""

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    title: Text
    purchaser: OrgId
    provider: OrgId
    budget: Money
    period: Period
    service_area: list[Label | ServicePlace] = Field(default_factory=list, max_length=200)
    target_groups: list[Slug] = Field(default_factory=list, max_length=50)
    capacity: Capacity
    indicators: list[Indicator] = Field(default_factory=list, max_length=100)
    stakeholders: list[StakeholderSpec] = Field(default_factory=list, max_length=200)
    escalation_chain: list[OrgId] = Field(default_factory=list, max_length=20)
    resolution_sla_hours: Number = Field(default=72, gt=0, le=24 * 365)
    policy: Policy = Field(default_factory=Policy)
    rules: list[Rule] = Field(default_factory=list, max_length=100)
    service_types: list[WorkKind] = Field(default_factory=list, max_length=50)
    admission: AdmissionList = Field(default_factory=list)
    joint_decision: list[OrgId] = Field(default_factory=list, max_length=20)
    notes: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> ContractTerms:
        _unique("indicators", [i.key for i in self.indicators])
        _unique("stakeholders", [s.org for s in self.stakeholders])
        _unique("escalation_chain", self.escalation_chain)
        _unique("rules", [CONFIDENTIALITY_RULE.id, *(r.id for r in self.rules)])
        _unique("service_types", self.service_types)
        _unique_admission(self.admission)
        _unique("joint_decision", self.joint_decision)
        chain = self.escalation_chain or [self.provider, self.purchaser]  # draft's default
        readers = {*(s.org for s in self.stakeholders), *chain}
        strangers = [org for org in self.joint_decision if org not in readers]
        if strangers:
            raise ValueError(f"joint_decision: {', '.join(strangers)} must be a stakeholder, "
                             "in the escalation chain, or both (its keys must be able to read "
                             "the contract)")
        return self


def _unique(field: str, keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{field}: {key!r} appears more than once")
        seen.add(key)


class DirectiveFields(Strict):
    """What a stakeholder states in a directive (the issuer comes from its key)."""

    subject: str = Field(pattern=SUBJECT, max_length=200)
    value: JsonValue = None
    summary: Text
    basis: Basis
    citation: Citation | None = None
    hours_per_week: Number = Field(default=0, ge=0, le=100_000)
    window: Window | None = None
    due: IsoDate | None = None
    people_affected: WholeNumber = Field(default=0, ge=0, le=1_000_000_000)
    vulnerability: Number = Field(default=0, ge=0, le=1)
    target_groups: list[Slug] = Field(default_factory=list, max_length=50)
    locations: list[Label] = Field(default_factory=list, max_length=50)
    indicator: Slug | None = None
    tags: list[Slug] = Field(default_factory=list, max_length=50)
    task_type: WorkKind | None = None


NOT_CLEARABLE = ("subject", "summary", "basis", "hours_per_week", "people_affected",
                 "vulnerability", "target_groups", "locations", "tags")


def _document_not_nullable(schema: dict[str, Any]) -> None:
    """Drop ``null`` from the documented types of the fields an amendment cannot clear.

    Validation is unchanged (``_not_empty`` refuses their ``null``); the document
    now says so, and each keeps its constraints (pattern, bounds).
    """
    schema["minProperties"] = 1
    for name in NOT_CLEARABLE:
        field = schema["properties"][name]
        options = [option for option in field.pop("anyOf") if option != {"type": "null"}]
        field.update(options[0])


class DirectivePatch(Strict):
    """The body of an amendment: any directive field; ``null`` clears an optional one."""

    model_config = ConfigDict(json_schema_extra=_document_not_nullable)

    subject: str | None = Field(default=None, pattern=SUBJECT, max_length=200)
    value: JsonValue = None
    summary: Text | None = None
    basis: Basis | None = None
    citation: Citation | None = None
    hours_per_week: Number | None = Field(default=None, ge=0, le=100_000)
    window: Window | None = None
    due: IsoDate | None = None
    # Bounds before the validator: pydantic documents them then (``minimum``, not ``ge``).
    people_affected: Annotated[StrictInt, Field(ge=0, le=1_000_000_000),
                               BeforeValidator(_integral)] | None = None
    vulnerability: Number | None = Field(default=None, ge=0, le=1)
    target_groups: list[Slug] | None = Field(default=None, max_length=50)
    locations: list[Label] | None = Field(default=None, max_length=50)
    indicator: Slug | None = None
    tags: list[Slug] | None = Field(default=None, max_length=50)
    task_type: WorkKind | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> DirectivePatch:
        if not self.model_fields_set:
            raise ValueError("an amendment must change at least one field")
        for name in self.model_fields_set & set(NOT_CLEARABLE):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, as JSON-ready values."""
        dumped = self.model_dump(mode="json", by_alias=True)
        return {name: dumped[name] for name in self.model_fields_set}


class Classification(Strict):
    """``POST …/directives/{did}/classification``: the provider sets the kind of work and
    adds tags the issuer left out (never removes any), and says why."""

    task_type: WorkKind | None = None
    add_tags: list[Slug] = Field(default_factory=list, max_length=50)
    note: Text

    @model_validator(mode="after")
    def _says_something(self) -> Classification:
        if self.task_type is None and not self.add_tags:
            raise ValueError("a classification sets task_type or adds tags")
        return self


class DisputedField(StrEnum):
    BASIS = "basis"
    CITATION = "citation"
    PEOPLE_AFFECTED = "people_affected"
    VULNERABILITY = "vulnerability"
    HOURS_PER_WEEK = "hours_per_week"
    DUE = "due"
    TAGS = "tags"


class Dispute(Strict):
    """``POST …/directives/{did}/disputes``: which of the directive's claims are disputed."""

    fields: list[DisputedField] = Field(min_length=1, max_length=7)
    reason: Text

    @model_validator(mode="after")
    def _once_each(self) -> Dispute:
        _unique("fields", list(self.fields))
        return self


class Correction(Strict):
    """A ``corrected`` decision's new values: disputable fields only, at least one (the
    contract checks that each was disputed)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _document_correction(schema))

    basis: Basis | None = None
    citation: Citation | None = None
    hours_per_week: Number | None = Field(default=None, ge=0, le=100_000)
    due: IsoDate | None = None
    people_affected: Annotated[StrictInt, Field(ge=0, le=1_000_000_000),
                               BeforeValidator(_integral)] | None = None
    vulnerability: Number | None = Field(default=None, ge=0, le=1)
    tags: list[Slug] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _not_empty(self) -> Correction:
        if not self.model_fields_set:
            raise ValueError("a correction changes at least one field")
        for name in self.model_fields_set & CORRECTION_NOT_CLEARABLE:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        dumped = self.model_dump(mode="json", by_alias=True)
        return {name: dumped[name] for name in self.model_fields_set}


CORRECTION_NOT_CLEARABLE = frozenset(
    {"basis", "hours_per_week", "people_affected", "vulnerability", "tags"})


def _document_correction(schema: dict[str, Any]) -> None:
    schema["minProperties"] = 1
    for name in CORRECTION_NOT_CLEARABLE:
        field = schema["properties"][name]
        options = [option for option in field.pop("anyOf") if option != {"type": "null"}]
        field.update(options[0])


class EmptyBody(Strict):
    """Lifecycle commands take an empty body or ``{}``."""


# --- webhook subscriptions -----------------------------------------------------------

WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048)]
EventTypePattern = Annotated[str, Field(min_length=1, max_length=64)]
ContractRef = Annotated[str, Field(min_length=1, max_length=64)]
Description = Annotated[str, Field(max_length=500)]
NOT_NULL_IN_A_CHANGE = ("url", "event_types", "enabled")


def _document_subscription(schema: dict[str, Any]) -> None:
    """Document what the domain checks, so generated clients and fuzzers send what it accepts.

    Event types are the §8 types, ``"*"`` or a group glob (validation stays the
    domain's ``check_event_types``, with its clearer message); contracts are
    UUIDs; URLs are http(s).  In a change, ``url``, ``event_types`` and
    ``enabled`` cannot be ``null`` and at least one field is given.  Whether a
    URL's host is allowed (SSRF guard) and whether the caller may read a
    contract depend on the deployment and the store, not on the shape.
    """
    from domain.webhooks import EVENT_TYPES, EVERY_TYPE, GROUPS  # imports the contract

    properties = schema["properties"]
    if "enabled" in properties:
        schema["minProperties"] = 1
        for name in NOT_NULL_IN_A_CHANGE:
            field = properties[name]
            options = [option for option in field.pop("anyOf") if option != {"type": "null"}]
            field.update(options[0])
    patterns = [EVERY_TYPE, *(f"{group}.*" for group in sorted(GROUPS)), *EVENT_TYPES]
    properties["event_types"]["items"]["enum"] = patterns
    properties["url"]["pattern"] = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\s]+"
    for option in properties["contracts"].get("anyOf", []):
        if option.get("type") == "array":
            option["items"]["format"] = "uuid"


class SubscriptionSpec(Strict):
    """``POST /v1/webhooks``: where to send which messages (SPEC §9).

    ``event_types`` are checked against the §8 types by the domain
    (``check_event_types``); ``contracts`` omitted or ``null`` means every
    contract the organisation may read.  The URL is checked by the SSRF guard.
    """

    model_config = ConfigDict(json_schema_extra=_document_subscription)

    url: WebhookUrl
    event_types: list[EventTypePattern] = Field(min_length=1, max_length=50)
    contracts: list[ContractRef] | None = Field(default=None, max_length=200)
    description: Description = ""


class SubscriptionPatch(Strict):
    """``PATCH /v1/webhooks/{id}``: any of the spec's fields, and ``enabled`` to switch it.

    ``{"enabled": true}`` re-enables a subscription that was disabled (by its
    owner, after a 410 or after failing too long); ``contracts: null`` widens
    it to every readable contract.
    """

    model_config = ConfigDict(json_schema_extra=_document_subscription)

    url: WebhookUrl | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, min_length=1, max_length=50)
    contracts: list[ContractRef] | None = Field(default=None, max_length=200)
    description: Description | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> SubscriptionPatch:
        if not self.model_fields_set:
            raise ValueError("a change must name at least one field")
        for name in self.model_fields_set & set(NOT_NULL_IN_A_CHANGE):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


__all__ = [
    "CONFIDENTIALITY_RULE",
    "Admission",
    "AdmissionEntry",
    "Basis",
    "Capacity",
    "Classification",
    "ContractTerms",
    "Correction",
    "DirectiveFields",
    "DirectivePatch",
    "Dispute",
    "DisputedField",
    "EmptyBody",
    "Indicator",
    "Money",
    "Period",
    "Policy",
    "Profile",
    "Rule",
    "ServicePlace",
    "StakeholderSpec",
    "Standing",
    "SubscriptionPatch",
    "SubscriptionSpec",
    "Weights",
    "Window",
]
