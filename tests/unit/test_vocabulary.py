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


@pytest.mark.parametrize(("words", "slug"), [
    *(("target group", slug) for slug in vocabulary.TARGET_GROUPS),
    *(("tag", slug) for slug in vocabulary.TAGS),
    *(("rule", slug) for slug in vocabulary.RULES)])
def test_every_well_known_group_tag_and_rule_has_a_word_in_each_language(
    words: str, slug: str,
) -> None:
    say = {"target group": vocabulary.target_group, "tag": vocabulary.tag,
           "rule": vocabulary.rule}[words]
    assert "_" not in say(slug, "en"), say(slug, "en")
    assert HAN.search(say(slug, "zh")), f"{slug}: no Chinese word ({say(slug, 'zh')!r})"


def test_a_rule_violation_and_what_is_out_of_scope_read_in_words() -> None:
    # Given a street office's census that discloses personal data, for residents affected
    # by redevelopment (a group the youth contract does not serve)
    asked = directive("census", "haichuang-street", subject="census.households",
                      tags=["personal_data_disclosure"],
                      target_groups=["residents_affected_by_redevelopment"])
    found = {c.kind: c for c in detect_conflicts(contract_terms(), [asked])}

    # When both conflicts are explained in Chinese
    rule, scope = (explanations({"kind": kind, "members": list(found[kind].members),
                                 "details": found[kind].details}, NAMES)["zh"]
                   for kind in ("rule_violation", "out_of_scope"))

    # Then the rule, its tags and the group are named in words, never by their slugs
    assert rule.startswith("保密规则阻止了海幢街道办事处")
    assert "带有“披露个人信息”标签且没有“已获知情同意”" in rule
    assert "涉及旧城改造受影响居民" in scope
    for slug in ("personal_data_disclosure", "consent_obtained",  # (the citation is the
                 "residents_affected_by_redevelopment"):  # regulation's, words and all)
        assert slug not in rule + scope


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
        "reason": "在册低保家庭只有60户。"}}

    # When it is explained
    texts = explanations(record, NAMES)

    # Then the fields are named as a person says them
    assert "disputes the people affected and hours a week of 海珠区民政局's" in texts["en"]
    assert "受影响人数和每周工时提出异议" in texts["zh"]
    # and the reason, in brackets, ends where they do (its own full stop dropped)
    assert texts["zh"].endswith("（在册低保家庭只有60户）。")
