"""What a stakeholder states in a directive, and the bodies of the commands that change one.

``DirectiveFields`` is a new directive, ``DirectivePatch`` an amendment,
``Classification`` the provider's kind of work and tags, ``Dispute`` the claims
disputed and ``Correction`` a ``corrected`` decision's new values.  How the
HTTP documentation describes them beyond their fields is ``api/openapi_bodies.py``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, StrictInt, model_validator

from domain.primitives import (
    SUBJECT,
    Change,
    Citation,
    IsoDate,
    JsonValue,
    Label,
    Number,
    Slug,
    Strict,
    Text,
    WholeNumber,
    integral,
    unique,
)
from domain.work_kinds import WorkKind

PeopleCount = Annotated[StrictInt, Field(ge=0, le=1_000_000_000), BeforeValidator(integral)]
"""A changed ``people_affected``; bounds before the validator, so pydantic documents them
(``minimum``, not ``ge``)."""


class Basis(StrEnum):
    STATUTE = "statute"
    CONTRACT = "contract"
    PROFESSIONAL_STANDARD = "professional_standard"
    SUPERVISOR_REQUEST = "supervisor_request"
    PURCHASER_REQUEST = "purchaser_request"
    PETITION = "petition"
    INDIVIDUAL_REQUEST = "individual_request"
    NON_PARTY = "non_party"


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


NOT_CLEARABLE = (
    "subject",
    "summary",
    "basis",
    "hours_per_week",
    "people_affected",
    "vulnerability",
    "target_groups",
    "locations",
    "tags",
)


class DirectivePatch(Change):
    """The body of an amendment: any directive field; ``null`` clears an optional one."""

    not_clearable = frozenset(NOT_CLEARABLE)
    empty = "an amendment must change at least one field"

    subject: str | None = Field(default=None, pattern=SUBJECT, max_length=200)
    value: JsonValue = None
    summary: Text | None = None
    basis: Basis | None = None
    citation: Citation | None = None
    hours_per_week: Number | None = Field(default=None, ge=0, le=100_000)
    window: Window | None = None
    due: IsoDate | None = None
    people_affected: PeopleCount | None = None
    vulnerability: Number | None = Field(default=None, ge=0, le=1)
    target_groups: list[Slug] | None = Field(default=None, max_length=50)
    locations: list[Label] | None = Field(default=None, max_length=50)
    indicator: Slug | None = None
    tags: list[Slug] | None = Field(default=None, max_length=50)
    task_type: WorkKind | None = None



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
        unique("fields", list(self.fields))
        return self


CORRECTION_NOT_CLEARABLE = frozenset(
    {"basis", "hours_per_week", "people_affected", "vulnerability", "tags"}
)


class Correction(Change):
    """A ``corrected`` decision's new values: disputable fields only, at least one (the
    contract checks that each was disputed)."""

    not_clearable = CORRECTION_NOT_CLEARABLE
    empty = "a correction changes at least one field"

    basis: Basis | None = None
    citation: Citation | None = None
    hours_per_week: Number | None = Field(default=None, ge=0, le=100_000)
    due: IsoDate | None = None
    people_affected: PeopleCount | None = None
    vulnerability: Number | None = Field(default=None, ge=0, le=1)
    tags: list[Slug] | None = Field(default=None, max_length=50)

