"""The Guangzhou demo's conflicts and rankings, as the demo promises them.

Directives are numbered d1, d2, … in the order the scenario file lists them.
"""

from __future__ import annotations

from datetime import date

import pytest

from domain.conflicts import detect_conflicts
from domain.priorities import priority_view
from workflows.explanations import explanations

from .directive_givens import demo_contract


def test_haizhu_youth_reporting_contradiction_duplicate_and_june_overload() -> None:
    # Given HZ-YOUTH-2008:
    #   d1 社工协会 ethics training 28 h, 2–15 June          (W23–W24)
    #   d2 民政局 low-income visits 45 h, 2–29 June          (W23–W26)
    #   d3 residents' evening sessions 25 h, 2 June–31 Aug   (W23–W35)
    #   d4 海幢街道 inspection support 80 h, 9–22 June        (W24–W25)
    #   d5 海幢街道 weekly report, street template, 20 h, all year
    #   d6 民政局 weekly report, bureau form, 12 h, all year
    #   d7 赤岗街道 weekly report, street template, 20 h, all year
    terms, directives = demo_contract("HZ-YOUTH-2008")

    # When the detectors run
    found = {(c.kind, c.members): c for c in detect_conflicts(terms, directives)}

    # Then the reporting contradiction (street template vs bureau form) …
    contradiction = found.pop(("contradiction", ("d5", "d6", "d7")))
    assert contradiction.details["subject"] == "reporting.weekly"
    assert contradiction.details["values"] == [
        {"format": "bureau-statistics-form"}, {"format": "street-template-v2"},
    ]
    # … the two street offices demanding the same template …
    duplicate = found.pop(("duplicate", ("d5", "d7")))
    assert duplicate.details["issuers"] == ["chigang-street", "haichuang-street"]
    # … and June over capacity, 160 h free a week.  Only one weekly report can be
    # written (the open contradiction d5/d6/d7), so the largest of them, 20 h, counts:
    #   W23: 28 + 45 + 25 + 20           = 118  fine
    #   W24: 28 + 45 + 25 + 80 + 20      = 198  38 h over
    #   W25:      45 + 25 + 80 + 20      = 170  10 h over
    #   W26:      45 + 25 + 20           =  90  fine
    overload = found.pop(("over_capacity", ("d1", "d2", "d3", "d4", "d5", "d6", "d7")))
    assert overload.details["weeks"] == ["2008-W24", "2008-W25"]
    assert overload.details["excess_hours"] == 38.0
    record = {"kind": overload.kind, "members": overload.members, "details": overload.details}
    assert "38 h" in explanations(record, {})["en"]
    assert "38小时" in explanations(record, {})["zh"]
    # … and nothing else
    assert found == {}


def test_jiangnanzhong_closing_time_contradiction() -> None:
    # Given 120 elders ask 20:00 (d1); the street office keeps the contract's 17:30 (d2)
    terms, directives = demo_contract("HZ-JNZ-ELDER-2012")

    # When / Then the only conflict is the closing-time contradiction
    [conflict] = detect_conflicts(terms, directives)
    assert (conflict.kind, conflict.members) == ("contradiction", ("d1", "d2"))
    assert conflict.details["values"] == ["17:30", "20:00"]
    names = {"jiangnanzhong-residents": "江南中街居民", "jiangnanzhong-street": "江南中街道办事处"}
    record = {"kind": conflict.kind, "members": conflict.members, "details": conflict.details}
    for text in explanations(record, names).values():
        assert "江南中街居民" in text
        assert "江南中街道办事处" in text


def test_jiangnanzhong_ranking_flips_between_profiles() -> None:
    # Given the same contract: 8 × 40 = 320 h, 250 committed, 70 h free
    terms, directives = demo_contract("HZ-JNZ-ELDER-2012")
    reference = date(2012, 3, 1)

    # When ranked under contract_first (the contract's own policy)
    by_contract = priority_view(terms, directives, reference)["priorities"]

    # Then the street office's contract basis (tier 2) outranks the petition (tier 4):
    #   d2: 100 × (0.35×0 + 0.25×0.3 + 0.20×0 + 0.10×0.9 + 0.10×1)          = 26.5
    #   d1: 100 × (0.35×0.8 + 0.25×0.3 + 0.20×0 + 0.10×0.5 + 0.10×(1−13/70)) ≈ 48.642857
    #       (need 0.5×0.6 + 0.5×min(1, 120/100) = 0.8)
    assert [(e["directive_id"], e["tier"]) for e in by_contract] == [("d2", 2), ("d1", 4)]
    assert by_contract[0]["score"] == pytest.approx(26.5)
    assert by_contract[1]["score"] == pytest.approx(48.642857, abs=1e-6)

    # When ranked under client_first
    by_client = priority_view(terms, directives, reference, profile="client_first")

    # Then tiers 2–4 merge and the elders come first on score:
    #   d1: 100 × (0.45×0.8 + 0.25×0.3 + 0.10×0 + 0.10×0.5 + 0.10×(1−13/70)) ≈ 56.642857
    #   d2: 100 × (0.45×0 + 0.25×0.3 + 0.10×0 + 0.10×0.9 + 0.10×1)          = 26.5
    entries = by_client["priorities"]
    assert [(e["directive_id"], e["tier"]) for e in entries] == [("d1", 2), ("d2", 2)]
    assert entries[0]["score"] == pytest.approx(56.642857, abs=1e-6)
    assert entries[1]["score"] == pytest.approx(26.5)
    assert by_client["profile"] == "client_first"


def test_liwan_demolition_work_is_out_of_scope_and_client_mix_contradicts() -> None:
    # Given LW-PILOT-2008 (10 × 40 = 400 h, 300 committed, 100 h free):
    #   d1 金花街道 elderly share ≥ 70 %, 30 h
    #   d2 荔湾区民政局 low-income share ≥ 50 %, 30 h
    #   d3 逢源街道 staff for demolition negotiations, 72 h, for "residents affected by
    #      redevelopment" — a group the contract does not serve (逢源街 itself is in its area)
    terms, directives = demo_contract("LW-PILOT-2008")

    # When the detectors run
    found = {c.kind: c for c in detect_conflicts(terms, directives)}

    # Then
    assert found["contradiction"].members == ("d1", "d2")
    assert found["contradiction"].details["subject"] == "focus.client_mix"
    assert found["out_of_scope"].members == ("d3",)
    assert found["out_of_scope"].details["outside"] == ["residents_affected_by_redevelopment"]
    # and no over capacity: the blocked demolition work adds no load, and only one side
    # of the client-mix contradiction counts, so 30 h of the 100 free hours are used
    assert set(found) == {"contradiction", "out_of_scope"}


def test_liwan_demolition_work_is_shown_but_never_scheduled() -> None:
    terms, directives = demo_contract("LW-PILOT-2008")
    entries = priority_view(terms, directives, date(2008, 9, 1))["priorities"]
    last = entries[-1]
    assert (last["directive_id"], last["tier"], last["schedule"]) == (
        "d3", 5, {"outcome": "blocked", "hours_granted": 0.0})
    # Of the two contradicting client mixes only the better-ranked is given hours
    assert [e["schedule"] for e in entries[:2]] == [
        {"outcome": "scheduled", "hours_granted": 30.0},
        {"outcome": "contested", "hours_granted": 0.0},
    ]
