"""The terms of a service contract, as the purchaser sets them (SPEC §3, §13).

``ContractTerms`` is the body of ``POST /v1/contracts``; its parts (money,
period, capacity, indicators, stakeholders, policy and weights, rules, the
service area, the admission list) are validated here, each once.  The
confidentiality rule every contract carries is ``CONFIDENTIALITY_RULE``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from domain.directives import Basis
from domain.primitives import (
    IsoDate,
    Label,
    Number,
    OrgId,
    Slug,
    Strict,
    Text,
    WholeNumber,
    unique,
)
from domain.work_kinds import AdmittedKind, WorkKind


class Standing(StrEnum):
    PARTY = "party"
    NON_PARTY = "non_party"


class Profile(StrEnum):
    CONTRACT_FIRST = "contract_first"
    CLIENT_FIRST = "client_first"


AMOUNT = r"^\d{1,15}(\.\d{1,2})?$"


class Money(Strict):
    # The API's document states AMOUNT as the pattern (api/openapi_bodies.py); the validator
    # keeps its own, clearer message.
    amount: str = Field(description='Decimal string, e.g. "2000000.00"', max_length=32)
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
    # Illustrative, and marked so: no regulation in force at every contract's dates is
    # cited for it here (docs/decisions.md, "Citations").
    citation="示例引用：社会工作专业伦理中的知情同意与保密原则",
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
    unique("admission", [entry.org for entry in entries])


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
        unique("indicators", [i.key for i in self.indicators])
        unique("stakeholders", [s.org for s in self.stakeholders])
        unique("escalation_chain", self.escalation_chain)
        unique("rules", [CONFIDENTIALITY_RULE.id, *(r.id for r in self.rules)])
        unique("service_types", self.service_types)
        _unique_admission(self.admission)
        unique("joint_decision", self.joint_decision)
        chain = self.escalation_chain or [self.provider, self.purchaser]  # draft's default
        readers = {*(s.org for s in self.stakeholders), *chain}
        strangers = [org for org in self.joint_decision if org not in readers]
        if strangers:
            raise ValueError(
                f"joint_decision: {', '.join(strangers)} must be a stakeholder, "
                "in the escalation chain, or both (its keys must be able to read "
                "the contract)"
            )
        return self
