"""Conflict detectors (SPEC §4), one kind at a time, with numbers worked by hand.

The contract is Haizhu's youth contract: 14 × 40 = 560 h a week, 400 h
committed, so 160 h a week are free.  June 2008 weeks: W23 is 2–8 June, W24
9–15, W25 16–22, W26 23–29.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.conflicts import DIRECTIVE, KINDS, Detection, conflict_kind, detect_conflicts
from domain.contract import ServiceContract
from domain.terms import CONFIDENTIALITY_RULE
from workflows.explanations import explanations

from .directive_givens import contract_terms, directive
from .givens import WEEKLY_REPORT


def window(start: str, end: str) -> dict[str, str]:
    return {"from": start, "to": end}


def english(found: Detection) -> str:
    """The English explanation of a detection (organisations by id: no names given)."""
    record = {"kind": found.kind, "members": list(found.members), "details": found.details}
    return explanations(record, {})["en"]


def of_kind(kind: str, found: list[Detection]) -> list[Detection]:
    return [conflict for conflict in found if conflict.kind == kind]


# --- contradiction ------------------------------------------------------------


def test_two_offices_asking_different_report_formats_contradict() -> None:
    # Given 海幢街道 wants the street template and 民政局 its statistics form, all year
    street = directive("street", "haichuang-street", value={"format": "street-template-v2"})
    bureau = directive("bureau", "haizhu-civil-affairs", value={"format": "bureau-statistics-form"})

    # When the detectors run
    found = of_kind("contradiction", detect_conflicts(contract_terms(), [street, bureau]))

    # Then there is one contradiction between the two, naming subject, values and issuers
    assert len(found) == 1
    conflict = found[0]
    assert conflict.members == tuple(sorted([street["id"], bureau["id"]]))
    assert conflict.details["subject"] == "reporting.weekly"
    assert conflict.details["values"] == [
        {"format": "bureau-statistics-form"}, {"format": "street-template-v2"},
    ]
    for words in ("reporting.weekly", "street-template-v2", "bureau-statistics-form",
                  "haichuang-street", "haizhu-civil-affairs"):
        assert words in english(conflict)


def test_null_never_contradicts() -> None:
    # Given one office asks a closing time and another has "no particular value"
    asks = directive("asks", "jiangnanzhong-street", subject="center.closing", value="17:30")
    indifferent = directive("indifferent", "gz-swa", subject="center.closing", value=None)

    # When / Then nothing contradicts
    assert of_kind("contradiction", detect_conflicts(contract_terms(), [asks, indifferent])) == []


def test_windows_must_overlap_and_a_shared_day_is_enough() -> None:
    # Given 17:30 in June, 20:00 in July, and 19:00 from 30 June (shares a day with June)
    june = directive("june", "street", subject="center.closing", value="17:30",
                     window=window("2008-06-01", "2008-06-30"))
    july = directive("july", "residents", subject="center.closing", value="20:00",
                     window=window("2008-07-01", "2008-07-31"))

    # When only June and July are issued, Then they do not contradict
    assert of_kind("contradiction", detect_conflicts(contract_terms(), [june, july])) == []

    # When 19:00 from 30 June is added, Then it joins June and July into one contradiction
    bridge = directive("bridge", "bureau", subject="center.closing", value="19:00",
                       window=window("2008-06-30", "2008-07-05"))
    found = of_kind("contradiction", detect_conflicts(contract_terms(), [june, july, bridge]))
    assert [c.members for c in found] == [tuple(sorted([june["id"], july["id"], bridge["id"]]))]


def test_values_are_compared_as_canonical_json() -> None:
    # Given the same value written with keys in another order and 2 written as 2.0
    one = directive("one", "haichuang-street", value={"format": "表格", "copies": 2})
    two = directive("two", "chigang-street", value={"copies": 2.0, "format": "表格"})

    # When the detectors run
    found = detect_conflicts(contract_terms(), [one, two])

    # Then they agree (no contradiction) and are the same demand twice
    assert of_kind("contradiction", found) == []
    assert len(of_kind("duplicate", found)) == 1


def test_chained_windows_form_one_group_and_a_gap_splits_groups() -> None:
    # Given A (X, Jan–Mar) overlaps B (Y, Mar–May), B overlaps C (X, May–Jul), A not C;
    # and, after a gap, D (X) and E (Y) overlapping in the autumn
    def on(name: str, value: str, start: str, end: str) -> dict[str, Any]:
        return directive(name, f"org-{name}", subject="focus.client_mix", value=value,
                         window=window(start, end))

    a = on("a", "X", "2008-03-03", "2008-03-31")
    b = on("b", "Y", "2008-03-31", "2008-05-05")
    c = on("c", "X", "2008-05-05", "2008-07-07")
    d = on("d", "X", "2008-09-01", "2008-09-30")
    e = on("e", "Y", "2008-09-15", "2008-10-15")

    # When the detectors run
    found = of_kind("contradiction", detect_conflicts(contract_terms(), [e, c, a, d, b]))

    # Then the chain A–B–C is one contradiction, D–E another
    assert sorted(c.members for c in found) == sorted([
        tuple(sorted([a["id"], b["id"], c["id"]])), tuple(sorted([d["id"], e["id"]])),
    ])


# --- duplicate ----------------------------------------------------------------


def test_two_street_offices_demanding_the_same_report_is_a_duplicate() -> None:
    # Given 海幢街道 and 赤岗街道 both demand the street template
    haichuang = directive("haichuang", "haichuang-street", value={"format": "street-template-v2"})
    chigang = directive("chigang", "chigang-street", value={"format": "street-template-v2"})

    # When the detectors run
    found = detect_conflicts(contract_terms(), [haichuang, chigang])

    # Then there is one duplicate and no contradiction
    assert of_kind("contradiction", found) == []
    [duplicate] = of_kind("duplicate", found)
    assert duplicate.members == tuple(sorted([haichuang["id"], chigang["id"]]))
    assert duplicate.details["values"] == [{"format": "street-template-v2"}]
    assert duplicate.details["issuers"] == ["chigang-street", "haichuang-street"]
    assert "chigang-street" in english(duplicate)
    assert "haichuang-street" in english(duplicate)


def test_one_issuer_repeating_itself_or_null_values_are_not_duplicates() -> None:
    # Given one office says the same thing twice, and two offices both say null
    first = directive("first", "haichuang-street", value="weekly")
    again = directive("again", "haichuang-street", value="weekly")
    null_a = directive("null-a", "a", subject="x.y", value=None)
    null_b = directive("null-b", "b", subject="x.y", value=None)

    # When / Then no duplicate is found
    found = detect_conflicts(contract_terms(), [first, again, null_a, null_b])
    assert of_kind("duplicate", found) == []


def test_duplicates_need_overlapping_windows() -> None:
    # Given the same demand in March and in May, by two offices
    march = directive("march", "haichuang-street", value="v", window=window("2008-03-03",
                                                                              "2008-03-31"))
    may = directive("may", "chigang-street", value="v", window=window("2008-05-01", "2008-05-31"))

    # When / Then they are not a duplicate
    assert of_kind("duplicate", detect_conflicts(contract_terms(), [march, may])) == []


# --- over_capacity ------------------------------------------------------------


def test_over_capacity_reports_each_run_of_weeks_with_its_largest_excess() -> None:
    # Given (160 h free a week)
    #   a: 100 h in W23–W24 (2–15 June)
    #   b:  80 h in W24 and W26 … its window is 9–29 June: W24, W25, W26
    #   c:  90 h on Sunday 29 June only (W26)
    a = directive("a", "gz-swa", subject="training.ethics", hours_per_week=100,
                  window=window("2008-06-02", "2008-06-15"))
    b = directive("b", "haichuang-street", subject="campaign.inspection", hours_per_week=80,
                  window=window("2008-06-09", "2008-06-29"))
    c = directive("c", "haizhu-civil-affairs", subject="outreach.visits", hours_per_week=90,
                  window=window("2008-06-29", "2008-06-29"))

    # When the detectors run
    found = of_kind("over_capacity", detect_conflicts(contract_terms(), [a, b, c]))

    # Then  W23: 100 ≤ 160            fine
    #       W24: 100 + 80 = 180       20 h over
    #       W25: 80                   fine
    #       W26: 80 + 90 = 170        10 h over
    # so two runs: W24 (a, b) and W26 (b, c)
    assert [(c.details["weeks"], c.details["excess_hours"], c.members) for c in found] == [
        (["2008-W24"], 20.0, tuple(sorted([a["id"], b["id"]]))),
        (["2008-W26"], 10.0, tuple(sorted([b["id"], c["id"]]))),
    ]
    assert "9 Jun 2008 – 15 Jun 2008" in english(found[0])
    assert "20 h" in english(found[0])
    assert "gz-swa" in english(found[0])


def test_a_run_spans_the_year_end_and_reports_the_peak() -> None:
    # Given 170 h from 15 Dec 2008 to 4 Jan 2009 and 20 h more in the week of Christmas
    long = directive("long", "haizhu-gov", subject="campaign.winter", hours_per_week=170,
                     window=window("2008-12-15", "2009-01-04"))
    peak = directive("peak", "youth-league", subject="campaign.christmas", hours_per_week=20,
                     window=window("2008-12-22", "2008-12-28"))

    # When the detectors run
    [conflict] = of_kind("over_capacity", detect_conflicts(contract_terms(), [long, peak]))

    # Then one run W51, W52, 2009-W01 (ISO 2009 starts on Monday 29 Dec 2008);
    # excess 170 − 160 = 10 h, and 170 + 20 − 160 = 30 h in W52
    assert conflict.details["weeks"] == ["2008-W51", "2008-W52", "2009-W01"]
    assert conflict.details["excess_hours"] == 30.0
    assert conflict.details["peak_week"] == "2008-W52"
    assert conflict.details["excess_by_week"] == {
        "2008-W51": 10.0, "2008-W52": 30.0, "2009-W01": 10.0,
    }


def test_directives_asking_no_hours_are_not_members_of_an_over_capacity() -> None:
    # Given 200 h all year and a rule on report formats that asks no hours
    heavy = directive("heavy", "haizhu-gov", subject="campaign.all_year", hours_per_week=200)
    free = directive("free", "gz-swa", subject="style.forms", hours_per_week=0)

    # When the detectors run
    [conflict] = of_kind("over_capacity", detect_conflicts(contract_terms(), [heavy, free]))

    # Then only the heavy one is a member; the run is the whole period, 2008-W10 to 2009-W09
    assert conflict.members == (heavy["id"],)
    assert conflict.details["weeks"][0] == "2008-W10"
    assert conflict.details["weeks"][-1] == "2009-W09"
    assert len(conflict.details["weeks"]) == 52
    assert conflict.details["excess_hours"] == 40.0  # 200 − 160


def test_fractional_hours_add_up_exactly() -> None:
    # Given 1,600 directives of 0.1 h each: exactly 160 h, the free capacity
    tiny = [directive(f"tiny-{n}", "residents", subject=f"ask.n{n}", hours_per_week=0.1)
            for n in range(1600)]

    # When / Then nothing is over capacity (no float residue)
    assert of_kind("over_capacity", detect_conflicts(contract_terms(), tiny)) == []


# --- out_of_scope -------------------------------------------------------------


def test_a_target_group_or_place_outside_the_contract_is_out_of_scope() -> None:
    # Given the youth contract, a directive about the elderly in 逢源街 (a Liwan street)
    elderly = directive("elderly", "haizhu-gov", subject="campaign.elder_visits",
                        target_groups=["youth", "elderly"], locations=["海幢街", "逢源街"])
    in_scope = directive("youth", "haichuang-street", subject="youth_zone.sessions",
                         target_groups=["youth"], locations=["海幢街"])

    # When the detectors run
    found = of_kind("out_of_scope", detect_conflicts(contract_terms(), [elderly, in_scope]))

    # Then only the first is out of scope, and `outside` lists the group and the place
    [conflict] = found
    assert conflict.members == (elderly["id"],)
    assert conflict.details["outside"] == ["elderly", "逢源街"]
    assert conflict.details["outside_target_groups"] == ["elderly"]
    assert conflict.details["outside_locations"] == ["逢源街"]
    assert "elderly" in english(conflict)
    assert "逢源街" in english(conflict)


# --- rule_violation -----------------------------------------------------------


def test_disclosing_personal_data_without_consent_breaks_the_confidentiality_rule() -> None:
    # Given a street office asking for case files of named youths
    disclose = directive("disclose", "haichuang-street", subject="cases.share_files",
                         tags=["personal_data_disclosure"])

    # When the detectors run
    [conflict] = of_kind("rule_violation", detect_conflicts(contract_terms(), [disclose]))

    # Then the confidentiality rule blocks it, citing the regulation
    assert conflict.members == (disclose["id"],)
    assert conflict.details["rule"] == "confidentiality"
    assert conflict.details["citation"] == CONFIDENTIALITY_RULE.citation
    assert english(conflict).startswith("The confidentiality rule blocks")
    assert "\"consent obtained\"" in english(conflict)


@pytest.mark.parametrize(("tags", "basis"), [
    (["personal_data_disclosure", "consent_obtained"], "purchaser_request"),  # consent
    (["personal_data_disclosure"], "statute"),  # the law itself demands it
    (["consent_obtained"], "purchaser_request"),  # nothing disclosed
])
def test_consent_or_a_statute_lifts_the_confidentiality_rule(tags: list[str], basis: str) -> None:
    # Given a disclosure with consent, or one a statute requires, or no disclosure
    asked = directive("asked", "haichuang-street", tags=tags, basis=basis)

    # When / Then no rule is broken
    assert of_kind("rule_violation", detect_conflicts(contract_terms(), [asked])) == []


def test_a_rule_needs_every_one_of_its_when_tags() -> None:
    # Given a contract rule on demolition work that is also paid campaign work
    rule = {"id": "no-demolition", "when_tags": ["demolition", "campaign"], "unless_tags": [],
            "unless_basis": [], "verdict": "blocked", "citation": "合同 第七条"}
    terms = contract_terms(rules=[rule])
    both = directive("both", "fengyuan-street", tags=["campaign", "demolition"])
    one = directive("one", "fengyuan-street", tags=["demolition"])

    # When the detectors run
    [conflict] = of_kind("rule_violation", detect_conflicts(terms, [both, one]))

    # Then only the directive with both tags breaks it
    assert conflict.members == (both["id"],)
    assert conflict.details == {"subject": "reporting.weekly", "summary": "both",
                                "rule": "no-demolition",
                                "citation": "合同 第七条", "verdict": "blocked",
                                "issuer": "fengyuan-street", "basis": "purchaser_request",
                                "when_tags": ["demolition", "campaign"], "unless_tags": []}


# --- ids, the registry, and what counts ---------------------------------------


def test_a_new_kind_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a registry with one more kind: every directive with no summary is "unexplained"
    monkeypatch.setattr("domain.conflicts.KINDS", dict(KINDS))

    @conflict_kind("unexplained", locality=DIRECTIVE, blocks=True)
    def unexplained(facts: Any, d: Any) -> list[Detection]:
        return [Detection("unexplained", (d["id"],), {}, (d["id"], ""))] if not d["summary"] \
            else []

    # When the detectors run
    found = detect_conflicts(contract_terms(), [directive("quiet", "x", summary="")])

    # Then the new kind is found by the same entry point
    assert [c.kind for c in found] == ["unexplained"]


def test_only_active_directives_count() -> None:
    # Given a contradiction whose second party has withdrawn
    street = directive("street", "haichuang-street", value="A")
    bureau = directive("bureau", "haizhu-civil-affairs", value="B", status="withdrawn")

    # When / Then nothing is detected
    assert detect_conflicts(contract_terms(), [street, bureau]) == []


def test_detectors_read_a_service_contract_as_it_is(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given the aggregate with the street template and, from 民政局, the bureau form
    street = issue(active_contract, "haichuang-street", WEEKLY_REPORT, name="street")
    bureau = issue(active_contract, "haizhu-civil-affairs",
                   {**WEEKLY_REPORT, "value": {"format": "bureau-statistics-form"}}, name="bureau")

    # When the detectors read its terms and active directives
    found = detect_conflicts(active_contract.terms, active_contract.active_directives())

    # Then the contradiction is there
    assert [(c.kind, c.members) for c in found] == [
        ("contradiction", tuple(sorted([street, bureau]))),
    ]
