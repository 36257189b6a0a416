"""Organisations, and the principals (API keys) that act for them.

An organisation's ``kind`` is data: any slug is accepted, and the known kinds
only carry labels.  A key is shown once; only its SHA-256 is stored (keys are
long random strings, so a fast hash is enough).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field

from domain.chain import ChainedAggregate
from domain.errors import AlreadyExists, NotFound
from domain.primitives import ORG_ID, SLUG, Strict

Actor = Mapping[str, str]
"""Who recorded an event, as every event carries it: ``{"org", "principal"}`` (``Caller.actor``)."""

KNOWN_KINDS: dict[str, str] = {
    "street_office": "街道办事处 street office",
    "civil_affairs_bureau": "民政局 civil affairs bureau",
    "social_work_association": "社会工作协会 social work association",
    "residents": "居民 residents",
    "provider": "社工机构 contracted social-work organisation",
    "district_government": "区政府 district government",
    "youth_league": "共青团 Youth League",
    "residents_committee": "居委会 residents' committee",
    "evaluator": "第三方评估 evaluator",
    "school": "学校 school",
    "other": "其他 other",
}


class Role(StrEnum):
    ADMIN = "admin"
    STAKEHOLDER = "stakeholder"
    RESOLVER = "resolver"
    SUPERVISOR = "supervisor"


class OrganisationSpec(Strict):
    id: str = Field(pattern=ORG_ID)
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(pattern=SLUG)


class KeySpec(Strict):
    org: str = Field(pattern=ORG_ID)
    role: Role


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_matches(raw_key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_key(raw_key), key_hash)


class Directory(ChainedAggregate):
    """The one list of every organisation and contract a deployment knows."""

    def __init__(self) -> None:
        self.organisations: dict[str, dict[str, str]] = {}
        self.contracts: dict[str, str] = {}  # contract id -> code, in drafting order

    class Opened(ChainedAggregate.Created):
        pass

    class OrganisationRegistered(ChainedAggregate.Event):
        def apply(self, directory: Directory) -> None:
            directory.organisations[self.data["id"]] = dict(self.data)

    class ContractListed(ChainedAggregate.Event):
        def apply(self, directory: Directory) -> None:
            directory.contracts[self.data["id"]] = self.data["code"]

    @classmethod
    def open(cls, *, directory_id: UUID, actor: Actor, at: datetime) -> Directory:
        directory: Directory = cls._start(cls.Opened, id=directory_id, actor=actor, at=at, data={})
        return directory

    def register(self, spec: OrganisationSpec, *, actor: Actor, at: datetime) -> None:
        if spec.id in self.organisations:
            raise AlreadyExists(f"organisation {spec.id} is already registered")
        self._record(self.OrganisationRegistered, actor=actor, at=at, data=spec.model_dump())

    def list_contract(self, contract_id: UUID, code: str, *, actor: Actor, at: datetime) -> None:
        self._record(
            self.ContractListed, actor=actor, at=at, data={"id": str(contract_id), "code": code}
        )

    def require_organisations(self, *org_ids: str) -> None:
        missing = sorted({org for org in org_ids if org not in self.organisations})
        if missing:
            raise NotFound(f"unknown organisation(s): {', '.join(missing)}")


class Principal(ChainedAggregate):
    """An API key: one organisation, one role, revocable."""

    if TYPE_CHECKING:  # set by the Issued event
        org: str
        role: Role
        key_hash: str

    def __init__(self) -> None:
        self.revoked = False

    class Issued(ChainedAggregate.Created):
        def apply(self, principal: Principal) -> None:
            principal.org = self.data["org"]
            principal.role = Role(self.data["role"])
            principal.key_hash = self.data["key_hash"]

    class Revoked(ChainedAggregate.Event):
        def apply(self, principal: Principal) -> None:
            principal.revoked = True

    @classmethod
    def issue(
        cls, *, principal_id: UUID, spec: KeySpec, raw_key: str, actor: Actor, at: datetime
    ) -> Principal:
        data = {"org": spec.org, "role": spec.role.value, "key_hash": hash_key(raw_key)}
        principal: Principal = cls._start(
            cls.Issued, id=principal_id, actor=actor, at=at, data=data
        )
        return principal

    def revoke(self, *, actor: Actor, at: datetime) -> None:
        if not self.revoked:
            self._record(self.Revoked, actor=actor, at=at, data={})

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "org": self.org, "role": self.role.value,
                "revoked": self.revoked}


@dataclass(frozen=True)
class Caller:
    """Who is calling: the authenticated principal, as the access rules see it."""

    principal_id: str
    org: str
    role: Role

    @property
    def actor(self) -> dict[str, str]:
        return {"org": self.org, "principal": self.principal_id}
