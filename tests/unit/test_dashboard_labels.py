"""Every event, conflict kind and compared term the domain can produce has a dashboard label,
and the Chinese catalogue translates it (``api/ui/render.py``): a page in Chinese shows no
API value where a person expects a word."""

from __future__ import annotations

import re

import pytest

from api.problems import DOMAIN_ERRORS
from api.ui.refusals import REFUSALS
from api.ui.render import EVENT_LABELS, KIND_LABELS, TERM_LABELS, Labels
from domain import errors
from domain.chain import ChainedAggregate
from domain.conflicts import KINDS
from domain.contract import ServiceContract
from domain.diff import COMPARED_TERMS

HAN = re.compile(r"[\u4e00-\u9fff]")
EVENTS = sorted(name for name, value in vars(ServiceContract).items()
                if isinstance(value, type) and issubclass(value, ChainedAggregate.Event)
                and any("apply" in vars(cls) for cls in value.__mro__
                        if cls.__module__ == ServiceContract.__module__))
"""The events a contract records (each applies itself; the bases ``eventsourcing`` makes
for the class, ``Event`` and ``Created``, are never recorded)."""


def chinese(table: dict[str, str], value: str) -> str:
    assert value in table, f"{value} has no label"
    return Labels("zh", {}).label(table, value)


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_of_a_contract_has_a_chinese_label(event: str) -> None:
    assert HAN.search(chinese(EVENT_LABELS, event))
    assert Labels("zh", {}).event(f"ServiceContract.{event}") == chinese(EVENT_LABELS, event)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_conflict_kind_has_a_chinese_label(kind: str) -> None:
    assert HAN.search(chinese(KIND_LABELS, kind))


@pytest.mark.parametrize("term", ["status", *COMPARED_TERMS])
def test_every_term_a_diff_compares_has_a_chinese_label(term: str) -> None:
    assert HAN.search(chinese(TERM_LABELS, term))


def test_a_term_change_reads_in_words() -> None:
    labels = Labels("zh", {"haizhu-youth-league": "共青团海珠区委"})
    assert labels.term_change({"field": "status", "from": "draft", "to": "active"}) == \
        "状态：草稿 → 有效"
    assert labels.term_change({"field": "escalation_chain", "from": ["qichuang"],
                               "to": ["qichuang", "haizhu-youth-league"]}) == \
        "上报链：qichuang → qichuang → 共青团海珠区委"


def test_tags_read_as_words_in_each_language_and_unknown_ones_as_they_are() -> None:
    tags = ["personal_data_disclosure", "made_up_tag"]
    assert Labels("zh", {}).tags(tags) == "披露个人信息、made_up_tag"
    assert Labels("en", {}).tags(tags) == "disclosure of personal data, made_up_tag"
    assert Labels("zh", {}).tags(None) == ""


ERROR_CODES = sorted({*DOMAIN_ERRORS, *(error.code for error in vars(errors).values()
                                      if isinstance(error, type)
                                      and issubclass(error, errors.DomainError)
                                      and error is not errors.DomainError)})


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_refusal_a_page_can_show_reads_as_a_sentence_in_chinese(code: str) -> None:
    assert code in REFUSALS, f"{code} has no sentence"
    assert HAN.search(Labels("zh", {}).refusal(code))


def test_a_refused_override_names_the_issuer_and_the_level_it_needs() -> None:
    extra = {"directive_id": "d1", "level_needed": 2, "org_needed": "haizhu-civil-affairs"}
    zh = Labels("zh", {"haizhu-civil-affairs": "海珠区民政局"}).refusal(
        "insufficient_authority", extra)
    assert zh.startswith("该指令由海珠区民政局发出，其位于上报链第2级：只有第2级或更高层级的决定")
    en = Labels("en", {"haizhu-civil-affairs": "Haizhu Civil Affairs"}).refusal(
        "insufficient_authority", extra)
    assert "issued by Haizhu Civil Affairs, at level 2" in en


def test_a_version_not_there_yet_names_the_latest_and_a_time_before_the_draft_says_so() -> None:
    assert Labels("zh", {}).refusal("not_found", {"version": 40, "latest": 31}) == \
        "该合同还没有第40版：最新的是第31版。"
    assert Labels("en", {}).refusal("not_found", {"version": 40, "latest": 31}) == \
        "The contract has no version 40 yet: its latest is version 31."
    early = Labels("zh", {}).refusal("not_found", {"as_of": "2008-03-01T09:00:00+08:00"})
    assert early.endswith("时该合同尚未起草。") and "2008" in early
    assert Labels("zh", {}).refusal("not_found") == "找不到该内容，或你的密钥无权查看。"


def test_punctuation_between_labels_follows_the_language() -> None:
    zh, en = Labels("zh", {}), Labels("en", {})
    assert (zh.colon, zh.semi, zh.comma, zh.enum, zh.gap, zh.paren("第 10 版")) == (
        "：", "；", "，", "、", "", "（第 10 版）")
    assert (en.colon, en.semi, en.comma, en.enum, en.gap, en.paren("version 10")) == (
        ": ", "; ", ", ", ", ", " ", " (version 10)")
    known = {"d1": {"summary": "每周按街道模板报送工作数据", "issuer": "chigang-street"},
             "d2": {"summary": "走访30户", "issuer": "haizhu-civil-affairs"}}
    names = {"chigang-street": "赤岗街道办事处", "haizhu-civil-affairs": "海珠区民政局"}
    assert Labels("zh", names).summaries(["d1", "d2", "0123456789"], known) == \
        "赤岗街道办事处的“每周按街道模板报送工作数据”、海珠区民政局的“走访30户”、01234567"
    assert Labels("en", names).summaries(["d1", "d2"], known) == \
        '赤岗街道办事处\'s "每周按街道模板报送工作数据", 海珠区民政局\'s "走访30户"'


def test_hours_granted_read_against_those_asked_and_a_partial_grant_says_whose_week() -> None:
    assert Labels("zh", {}).granted({"outcome": "partial", "hours_granted": 0.0}, 12) == \
        "0 / 12（最少的一周）"
    assert Labels("en", {}).granted({"outcome": "partial", "hours_granted": 2.5}, 12.0) == \
        "2.5 / 12 (its leanest week)"
    assert Labels("zh", {}).granted({"outcome": "scheduled", "hours_granted": 28.0}, 28) == \
        "28 / 28"
    assert Labels("zh", {}).granted(None, 28) == ""
