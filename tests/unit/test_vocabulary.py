"""The domain's words as people read them (``workflows/vocabulary.py``): every basis and
every directive field has a name in Chinese and in English, and the explanations use it."""

from __future__ import annotations

import re

import pytest

from domain.conflicts import detect_conflicts
from domain.directives import Basis, DirectiveFields, DisputedField
from workflows import vocabulary
from workflows.explanations import explanations

from .directive_givens import contract_terms, directive

HAN = re.compile(r"[\u4e00-\u9fff]")
NAMES = {"haichuang-street": "海幢街道办事处", "haizhu-civil-affairs": "海珠区民政局"}


@pytest.mark.parametrize("basis", list(Basis))
def test_every_basis_has_a_word_in_each_language(basis: Basis) -> None:
    english, chinese = vocabulary.basis(basis, "en"), vocabulary.basis(basis, "zh")
    assert "_" not in english, english
    assert HAN.search(chinese), f"{basis}: no Chinese word ({chinese!r})"


@pytest.mark.parametrize("field", [*DirectiveFields.model_fields, *DisputedField])
def test_every_directive_field_has_a_word_in_each_language(field: str) -> None:
    english, chinese = vocabulary.field(field, "en"), vocabulary.field(field, "zh")
    assert "_" not in english, english
    assert HAN.search(chinese), f"{field}: no Chinese word ({chinese!r})"


def test_a_rule_violation_names_the_basis_in_words() -> None:
    # Given a street office's request for case files, which the confidentiality rule blocks
    asked = directive("disclose", "haichuang-street", subject="cases.share_files",
                      tags=["personal_data_disclosure"], basis="purchaser_request")
    [found] = [c for c in detect_conflicts(contract_terms(), [asked])
               if c.kind == "rule_violation"]

    # When it is explained
    texts = explanations({"kind": found.kind, "members": list(found.members),
                          "details": found.details}, NAMES)

    # Then each language names the basis in its own words, never by its API value
    assert "(purchaser's request)" in texts["en"]
    assert "（购买方要求）" in texts["zh"]
    assert "purchaser_request" not in texts["en"] + texts["zh"]


def test_a_dispute_names_the_fields_in_words() -> None:
    # Given residents disputing the people affected and hours of the bureau's directive
    record = {"kind": "disputed", "members": ["d1"], "details": {
        "disputed_by": "haichuang-street", "issuer": "haizhu-civil-affairs",
        "subject": "outreach.visits", "fields": ["people_affected", "hours_per_week"],
        "reason": "只有60户"}}

    # When it is explained
    texts = explanations(record, NAMES)

    # Then the fields are named as a person says them
    assert "disputes the people affected and hours a week of 海珠区民政局's" in texts["en"]
    assert "受影响人数和每周工时提出异议" in texts["zh"]
