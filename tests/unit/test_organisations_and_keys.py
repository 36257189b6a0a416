"""Organisations, principals and keys: kinds are data, keys are kept only as hashes."""

from __future__ import annotations

from uuid import UUID

import pytest
from pydantic import ValidationError

from domain.chain import verify_chain
from domain.errors import AlreadyExists, NotFound
from domain.organisations import (
    KNOWN_KINDS,
    Caller,
    Directory,
    KeySpec,
    OrganisationSpec,
    Principal,
    Role,
    hash_key,
    key_matches,
)

from .givens import ADMIN_ACTOR, moment

DIRECTORY_ID = UUID("7d0f0b9e-1c55-4c1b-8f43-3f6a0c6d2a10")
PRINCIPAL_ID = UUID("a3c1f6e2-7b0d-4e3a-9c85-1d2e3f4a5b6c")
RAW_KEY = "ndl_a3c1f6e27b0d4e3a9c851d2e3f4a5b6c_the-secret-part"


def directory() -> Directory:
    return Directory.open(directory_id=DIRECTORY_ID, actor=ADMIN_ACTOR, at=moment("2008-01-02"))


def test_an_organisation_is_registered_with_a_chinese_name() -> None:
    # given an empty directory, when 海幢街道办事处 is registered
    book = directory()
    book.register(
        OrganisationSpec(id="haichuang-street", name="海幢街道办事处", kind="street_office"),
        actor=ADMIN_ACTOR, at=moment("2008-01-03"),
    )

    # then it is listed as given, and the directory's own history is chained
    assert book.organisations["haichuang-street"] == {
        "id": "haichuang-street", "name": "海幢街道办事处", "kind": "street_office",
    }
    assert verify_chain(book.collect_events()).verified


def test_an_organisation_cannot_be_registered_twice() -> None:
    book = directory()
    spec = OrganisationSpec(id="gz-swa", name="广州市社会工作协会", kind="social_work_association")
    book.register(spec, actor=ADMIN_ACTOR, at=moment("2008-01-03"))
    with pytest.raises(AlreadyExists):
        book.register(spec, actor=ADMIN_ACTOR, at=moment("2008-01-04"))


def test_a_kind_the_system_has_no_label_for_is_still_accepted() -> None:
    # kinds are data, not code paths: 业主委员会 (owners' committee) needs no code change
    assert "owners_committee" not in KNOWN_KINDS
    spec = OrganisationSpec(id="owners-1", name="业主委员会", kind="owners_committee")
    assert spec.kind == "owners_committee"


def test_every_kind_the_spec_lists_has_a_label() -> None:
    assert set(KNOWN_KINDS) == {
        "street_office", "civil_affairs_bureau", "social_work_association", "residents",
        "provider", "district_government", "youth_league", "residents_committee",
        "evaluator", "school", "other",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"id": "a", "name": "太短", "kind": "other"},
        {"id": "Haizhu_Gov", "name": "海珠区人民政府", "kind": "district_government"},
        {"id": "x" * 65, "name": "太长", "kind": "other"},
        {"id": "haizhu-gov", "name": "", "kind": "district_government"},
        {"id": "haizhu-gov", "name": "海珠区人民政府", "kind": "District Government"},
        {"id": "haizhu-gov", "name": "海珠区人民政府", "kind": "other", "level": "district"},
    ],
)
def test_malformed_organisations_are_refused(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        OrganisationSpec.model_validate(body)


def test_contracts_may_name_only_registered_organisations() -> None:
    book = directory()
    book.register(OrganisationSpec(id="qichuang", name="启创", kind="provider"),
                  actor=ADMIN_ACTOR, at=moment("2008-01-03"))
    book.require_organisations("qichuang")
    with pytest.raises(NotFound, match="haizhu-gov, zz-unknown"):
        book.require_organisations("qichuang", "zz-unknown", "haizhu-gov")


def test_a_key_is_stored_only_as_its_hash() -> None:
    # given a stakeholder key for 海珠区民政局, when it is issued
    principal = Principal.issue(
        principal_id=PRINCIPAL_ID,
        spec=KeySpec(org="haizhu-civil-affairs", role=Role.STAKEHOLDER),
        raw_key=RAW_KEY, actor=ADMIN_ACTOR, at=moment("2008-03-01"),
    )

    # then neither the principal nor its event holds the raw key
    (issued,) = principal.collect_events()
    assert RAW_KEY not in repr(issued.data)
    assert issued.data == {
        "org": "haizhu-civil-affairs", "role": "stakeholder", "key_hash": hash_key(RAW_KEY),
    }
    assert principal.as_dict() == {
        "id": str(PRINCIPAL_ID), "org": "haizhu-civil-affairs", "role": "stakeholder",
        "revoked": False,
    }


def test_key_matches_only_the_key_it_was_made_from() -> None:
    stored = hash_key(RAW_KEY)
    assert len(stored) == 64 and stored != RAW_KEY
    assert key_matches(RAW_KEY, stored)
    assert not key_matches(RAW_KEY + "x", stored)
    assert not key_matches(RAW_KEY.upper(), stored)
    assert not key_matches("", stored)
    assert not key_matches(RAW_KEY, stored.upper())


def test_a_revoked_key_stays_revoked_and_revoking_twice_records_once() -> None:
    principal = Principal.issue(
        principal_id=PRINCIPAL_ID, spec=KeySpec(org="gz-swa", role=Role.RESOLVER),
        raw_key=RAW_KEY, actor=ADMIN_ACTOR, at=moment("2008-03-01"),
    )
    principal.revoke(actor=ADMIN_ACTOR, at=moment("2008-04-01"))
    principal.revoke(actor=ADMIN_ACTOR, at=moment("2008-04-02"))
    events = principal.collect_events()
    assert principal.revoked
    assert [e.type_name() for e in events] == ["Principal.Issued", "Principal.Revoked"]
    assert verify_chain(events).verified


@pytest.mark.parametrize("role", ["admin", "stakeholder", "resolver", "supervisor"])
def test_the_four_roles(role: str) -> None:
    assert KeySpec.model_validate({"org": "gz-swa", "role": role}).role == role


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValidationError):
        KeySpec.model_validate({"org": "gz-swa", "role": "mother_in_law"})


def test_a_caller_acts_as_its_organisation_and_key() -> None:
    who = Caller(principal_id="key-7", org="gz-swa", role=Role.STAKEHOLDER)
    assert who.actor == {"org": "gz-swa", "principal": "key-7"}
