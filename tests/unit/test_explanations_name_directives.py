"""Explanations name a directive as its issuer wrote it: by its summary, not its subject key.

A director reading Chinese reads 海幢街道办事处的“抽调社工配合创文迎检工作”（80小时）,
not ``campaign.city_inspection_support``; the English text keeps the subject beside the
summary.  The summaries are in the conflict's ``details`` (so that a replay explains it
as the live view did), and a summary amended later is what the conflict then says.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.conflicts import Detection, detect_conflicts
from domain.contract import ServiceContract
from domain.directives import DirectivePatch
from workflows.explanations import explanations

from .directive_givens import contract_terms, directive
from .givens import actor_of, moment

NAMES = {"haichuang-street": "海幢街道办事处", "haizhu-civil-affairs": "海珠区民政局",
         "chigang-street": "赤岗街道办事处", "fengyuan-street": "逢源街道办事处"}
INSPECTION = "抽调社工配合创文迎检工作"


def explained(found: Detection) -> dict[str, str]:
    return explanations({"kind": found.kind, "members": list(found.members),
                         "details": found.details}, NAMES)


def test_an_over_capacity_names_its_heaviest_directives_by_their_summaries() -> None:
    # Given the street office's 80 h of inspection support on top of 100 h of visits,
    # against 160 h free a week
    inspection = directive("inspection", "haichuang-street", summary=INSPECTION,
                           subject="campaign.city_inspection_support", hours_per_week=80)
    visits = directive("visits", "haizhu-civil-affairs", summary="走访低保家庭青少年",
                       subject="outreach.low_income_youth_visits", hours_per_week=100)

    # When the conflict is found and explained
    [found] = [c for c in detect_conflicts(contract_terms(), [inspection, visits])
               if c.kind == "over_capacity"]
    texts = explained(found)

    # Then the Chinese text names each directive by its summary, never by its subject key
    assert f"海幢街道办事处的“{INSPECTION}”（80小时）" in texts["zh"]
    assert "海珠区民政局的“走访低保家庭青少年”（100小时）" in texts["zh"]
    assert "campaign.city_inspection_support" not in texts["zh"]
    # and the English one gives the subject with the summary beside it
    assert f'campaign.city_inspection_support ("{INSPECTION}") (80 h)' in texts["en"]


def test_a_directive_of_its_own_conflict_is_named_by_its_summary() -> None:
    # Given a street office's demolition support for residents the contract does not serve
    demolition = directive("demolition", "fengyuan-street", summary="抽调社工参与旧城改造拆迁谈判",
                           subject="campaign.demolition_negotiation_support",
                           target_groups=["residents_affected_by_redevelopment"])

    # When the conflict is found and explained
    [found] = [c for c in detect_conflicts(contract_terms(), [demolition])
               if c.kind == "out_of_scope"]
    texts = explained(found)

    # Then it reads as the office wrote it
    assert "逢源街道办事处关于“抽调社工参与旧城改造拆迁谈判”的指令" in texts["zh"]
    assert "campaign.demolition_negotiation_support" not in texts["zh"]
    assert ('directive on campaign.demolition_negotiation_support ("抽调社工参与旧城改造拆迁谈判")'
            in texts["en"])


def test_each_side_of_a_contradiction_shows_what_its_directives_say() -> None:
    # Given the street office's and the bureau's weekly reports in two formats
    street = directive("street", "haichuang-street", summary="每周按街道模板报送工作数据",
                       value={"format": "street-template-v2"})
    bureau = directive("bureau", "haizhu-civil-affairs", summary="每周按民政统计报表报送",
                       value={"format": "bureau-statistics-form"})

    # When the contradiction is found and explained
    [found] = [c for c in detect_conflicts(contract_terms(), [street, bureau])
               if c.kind == "contradiction"]
    texts = explained(found)

    # Then it says what the directives share as a reference, not as the text's subject
    assert texts["zh"].startswith("同一事项（reporting.weekly）的指令在重叠的时段")
    # and each side says what its directives ask for, as written, with the value in words
    assert ("海珠区民政局要求“每周按民政统计报表报送”"
            "（format：bureau-statistics-form）") in texts["zh"]
    assert ("海幢街道办事处要求“每周按街道模板报送工作数据”"
            "（format：street-template-v2）") in texts["zh"]
    assert '海珠区民政局 asks for "每周按民政统计报表报送" (format: bureau-statistics-form)' \
        in texts["en"]
    assert "{" not in texts["zh"] + texts["en"]


def test_a_duplicate_names_what_its_issuers_ask_for_and_refers_to_its_subject() -> None:
    # Given two street offices asking for the same weekly report
    value = {"format": "street-template-v2"}
    street = directive("street", "haichuang-street", summary="按街道模板报送", value=value)
    chigang = directive("chigang", "chigang-street", summary="按街道模板报送", value=value)

    # When the duplicate is found and explained
    [found] = [c for c in detect_conflicts(contract_terms(), [street, chigang])
               if c.kind == "duplicate"]
    texts = explained(found)

    # Then the subject is a reference in brackets, and the issuers say what they ask for
    assert texts["zh"].startswith("同一事项（reporting.weekly）的指令重复：")
    assert "都要求“按街道模板报送”（format：street-template-v2）" in texts["zh"]
    assert texts["en"].startswith("Duplicate directives on reporting.weekly: ")


def test_a_side_of_several_issuers_asks_in_the_plural_and_values_read_as_fields() -> None:
    # Given two street offices asking one format, with two fields, and the bureau another
    value = {"format": "street-template-v2", "copies": 2}
    street = directive("street", "haichuang-street", summary="按街道模板报送", value=value)
    chigang = directive("chigang", "chigang-street", summary="按街道模板报送", value=value)
    bureau = directive("bureau", "haizhu-civil-affairs", summary="",
                       value={"format": "统计报表", "copies": 1})

    # When the contradiction is found and explained
    [found] = [c for c in detect_conflicts(contract_terms(), [street, chigang, bureau])
               if c.kind == "contradiction"]
    texts = explained(found)

    # Then the two offices "ask" (one summary for both), and a side without a summary
    # shows its value's fields, in order, in each language's punctuation
    assert ('赤岗街道办事处 and 海幢街道办事处 ask for "按街道模板报送" '
            "(copies: 2, format: street-template-v2)") in texts["en"]
    assert "海珠区民政局 asks for copies: 1, format: 统计报表" in texts["en"]
    assert ("赤岗街道办事处和海幢街道办事处要求“按街道模板报送”"
            "（copies：2，format：street-template-v2）") in texts["zh"]
    assert "海珠区民政局要求copies：1，format：统计报表" in texts["zh"]


def test_an_amended_summary_is_what_the_open_conflict_then_says(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given an over-capacity run the street office's inspection support is part of
    body = {"subject": "campaign.city_inspection_support", "basis": "purchaser_request",
            "people_affected": 0}
    inspection = issue(active_contract, "haichuang-street",
                       {**body, "summary": "配合检查（旧说法）", "hours_per_week": 120},
                       name="inspection")
    issue(active_contract, "haizhu-civil-affairs",
          {**body, "subject": "outreach.visits", "summary": "走访低保家庭青少年",
           "hours_per_week": 100}, name="visits")
    [run] = [r for r in active_contract.conflicts.values() if r["kind"] == "over_capacity"]
    assert "配合检查（旧说法）" in explanations(run, NAMES)["zh"]

    # When the office amends only the summary of its directive
    active_contract.amend_directive(inspection, DirectivePatch.model_validate(
        {"summary": INSPECTION}), actor=actor_of("haichuang-street"), at=moment("2008-06-03"))

    # Then the same conflict names it by its new summary, and no longer by the old one
    text = explanations(active_contract.conflicts[run["id"]], NAMES)["zh"]
    assert f"海幢街道办事处的“{INSPECTION}”（120小时）" in text
    assert "旧说法" not in text


def test_quotes_in_a_summary_become_the_inner_quotes_of_the_chinese_text() -> None:
    # Given a census the street office named as the community activity it claims to be
    census = directive("census", "fengyuan-street",
                       summary="“青少年社区活动”：入户登记青少年信息",
                       target_groups=["residents_affected_by_redevelopment"])

    # When its out-of-scope conflict is explained
    [found] = [c for c in detect_conflicts(contract_terms(), [census])
               if c.kind == "out_of_scope"]

    # Then the Chinese text quotes it once, with its own quotes inside as ‘…’
    assert "关于“‘青少年社区活动’：入户登记青少年信息”的指令" in explained(found)["zh"]
