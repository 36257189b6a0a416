"""The ranking (SPEC §5): every component, tier, profile, tie-break and the weekly schedule.

Reference date 2008-06-01.  The Haizhu youth contract has 160 h free a week
(14 × 40 − 400).  June 2008: W23 is 2–8 June, W24 9–15, W25 16–22.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pydantic
import pytest

from domain.errors import ValidationFailed
from domain.priorities import (
    efficiency,
    indicator,
    legitimacy,
    need,
    priority_view,
    rank_directives,
    urgency,
)

from .directive_givens import contract_terms, directive
from .givens import LOW_INCOME_VISITS

REFERENCE = date(2008, 6, 1)


def visits(**fields: Any) -> dict[str, Any]:
    """民政局: visit 30 low-income households with teenagers, 45 h a week in June."""
    return directive("visits", "haizhu-civil-affairs", **{**LOW_INCOME_VISITS, **fields})


def entry(entries: list[dict[str, Any]], directive_id: str) -> dict[str, Any]:
    return next(e for e in entries if e["directive_id"] == directive_id)


# --- components ---------------------------------------------------------------


def test_need_weighs_vulnerability_and_people_affected() -> None:
    # 0.5 × 0.8 + 0.5 × min(1, 30 / 100) = 0.40 + 0.15 = 0.55
    assert need(visits()) == pytest.approx(0.55)
    # 0.5 × 0.6 + 0.5 × min(1, 120 / 100) = 0.30 + 0.50 = 0.80 (people capped at 100)
    assert need(visits(vulnerability=0.6, people_affected=120)) == pytest.approx(0.80)
    # nobody named, nobody vulnerable
    assert need(visits(vulnerability=0, people_affected=0)) == 0


@pytest.mark.parametrize(("due", "expected"), [
    ("2008-05-20", 1.0),  # overdue by 12 days
    ("2008-06-01", 1.0),  # due today
    ("2008-06-08", 1.0),  # 7 days
    ("2008-06-09", 0.6),  # 8 days
    ("2008-07-01", 0.6),  # 30 days
    ("2008-07-02", 0.3),  # 31 days
    (None, 0.3),  # no due date
])
def test_urgency_counts_days_to_due(due: str | None, expected: float) -> None:
    assert urgency(visits(due=due), REFERENCE) == expected


def test_indicator_counts_only_the_contracts_own_indicators() -> None:
    keys = frozenset({"cases", "groups", "community_activities"})
    assert indicator(visits(indicator="cases"), keys) == 1.0
    assert indicator(visits(indicator="home_care_visits"), keys) == 0.0  # Liwan's, not ours
    assert indicator(visits(indicator=None), keys) == 0.0


@pytest.mark.parametrize(("basis", "expected"), [
    ("statute", 1.0), ("contract", 0.9), ("professional_standard", 0.7),
    ("supervisor_request", 0.7), ("purchaser_request", 0.5), ("petition", 0.5),
    ("individual_request", 0.3), ("non_party", 0.1),
])
def test_legitimacy_by_basis(basis: str, expected: float) -> None:
    assert legitimacy(visits(basis=basis)) == expected


def test_efficiency_is_the_share_of_free_capacity_left() -> None:
    # 1 − 40 / 160 = 0.75;  1 − 45 / 160 = 0.71875
    assert efficiency(visits(hours_per_week=40), 160) == 0.75
    assert efficiency(visits(hours_per_week=45), 160) == 0.71875
    # more than all of it: max(0, 1 − 200 / 160) = 0
    assert efficiency(visits(hours_per_week=200), 160) == 0
    # no free capacity at all: 0 whatever is asked
    assert efficiency(visits(hours_per_week=0), 0) == 0
    assert efficiency(visits(hours_per_week=5), -10) == 0


# --- score, tiers and profiles ------------------------------------------------


def test_score_is_a_hundred_times_the_sum_of_contributions() -> None:
    # Given the visits directive under contract_first, on 1 June (due 29 June: 28 days)
    [ranked] = rank_directives(contract_terms(), [visits()], REFERENCE)

    # Then every component shows value, weight and contribution = weight × value:
    #   need        0.55    × 0.35 = 0.1925
    #   urgency     0.6     × 0.25 = 0.15
    #   indicator   1.0     × 0.20 = 0.20
    #   legitimacy  0.7     × 0.10 = 0.07
    #   efficiency  0.71875 × 0.10 = 0.071875
    #   score = 100 × 0.684375 = 68.4375
    expected = {
        "need": (0.55, 0.35), "urgency": (0.6, 0.25), "indicator": (1.0, 0.20),
        "legitimacy": (0.7, 0.10), "efficiency": (0.71875, 0.10),
    }
    for name, (value, weight) in expected.items():
        component = ranked["components"][name]
        assert component["value"] == pytest.approx(value)
        assert component["weight"] == weight
        assert component["contribution"] == component["weight"] * component["value"]
    assert ranked["score"] == pytest.approx(68.4375)
    assert ranked["score"] == 100 * sum(c["contribution"] for c in ranked["components"].values())
    assert (ranked["rank"], ranked["tier"]) == (1, 4)  # supervisor_request: tier 4


def test_entry_shape_is_the_one_clients_rely_on() -> None:
    [ranked] = rank_directives(contract_terms(), [visits()], REFERENCE)
    assert {"directive_id", "rank", "tier", "score", "components", "schedule"} <= set(ranked)
    assert set(ranked["components"]) == {"need", "urgency", "indicator", "legitimacy",
                                         "efficiency"}
    assert set(ranked["schedule"]) == {"outcome", "hours_granted"}


@pytest.mark.parametrize(("basis", "fields", "contract_tier", "client_tier"), [
    ("statute", {}, 1, 1),
    ("contract", {}, 2, 2),
    ("professional_standard", {}, 3, 2),
    ("purchaser_request", {}, 4, 2),
    ("non_party", {}, 4, 2),
    ("contract", {"target_groups": ["elderly"]}, 5, 5),  # out of scope
    ("contract", {"tags": ["personal_data_disclosure"]}, 5, 5),  # blocked by confidentiality
])
def test_tiers_by_basis_scope_and_rules(
    basis: str, fields: dict[str, Any], contract_tier: int, client_tier: int,
) -> None:
    # Given one directive of this basis
    asked = directive("asked", "haichuang-street", basis=basis, **fields)

    # When ranked under each profile
    [by_contract] = rank_directives(contract_terms(), [asked], REFERENCE,
                                    profile="contract_first")
    [by_client] = rank_directives(contract_terms(), [asked], REFERENCE, profile="client_first")

    # Then client_first merges tiers 2–4 and reports them as tier 2
    assert (by_contract["tier"], by_client["tier"]) == (contract_tier, client_tier)


def test_contract_weights_override_the_profile_but_a_what_if_profile_brings_its_own() -> None:
    # Given a contract whose policy weighs all five components equally
    equal = {"need": 0.2, "urgency": 0.2, "indicator": 0.2, "legitimacy": 0.2, "efficiency": 0.2}
    terms = contract_terms(policy={"profile": "contract_first", "weights": equal})

    # When ranked as it is: 100 × 0.2 × (0.55 + 0.6 + 1 + 0.7 + 0.71875) = 71.375
    [as_is] = rank_directives(terms, [visits()], REFERENCE)
    assert as_is["score"] == pytest.approx(71.375)

    # When ranked as a what-if under client_first: its own weights
    #   100 × (0.45×0.55 + 0.25×0.6 + 0.10×1 + 0.10×0.7 + 0.10×0.71875) = 63.9375
    [what_if] = rank_directives(terms, [visits()], REFERENCE, profile="client_first")
    assert what_if["score"] == pytest.approx(63.9375)

    # When weights are given as a what-if too: they win, and the profile still sets tiers
    #   100 × (1.0 × 0.7) = 70
    only_legitimacy = {"need": 0, "urgency": 0, "indicator": 0, "legitimacy": 1,
                       "efficiency": 0}
    view = priority_view(terms, [visits()], REFERENCE, profile="client_first",
                         weights=only_legitimacy)
    assert view["priorities"][0]["score"] == pytest.approx(70)
    assert view["priorities"][0]["tier"] == 2
    assert (view["profile"], view["reference_date"]) == ("client_first", "2008-06-01")


def test_bad_what_ifs_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        priority_view(contract_terms(), [visits()], REFERENCE, profile="residents_only")
    with pytest.raises(pydantic.ValidationError):
        priority_view(contract_terms(), [visits()], REFERENCE,
                      weights={"need": 0.5, "urgency": 0.5, "indicator": 0.5,
                               "legitimacy": 0, "efficiency": 0})


def test_order_is_tier_then_score_then_issue_order_then_id() -> None:
    # Given two equal petitions issued at versions 8 and 3, a statute, and a higher petition
    later = directive("later", "residents", basis="petition", issued_version=8)
    earlier = directive("earlier", "residents", basis="petition", issued_version=3)
    law = directive("law", "haizhu-civil-affairs", basis="statute", issued_version=9)
    needy = directive("needy", "residents", basis="petition", people_affected=100,
                      issued_version=10)

    # When ranked
    ranked = rank_directives(contract_terms(), [later, earlier, law, needy], REFERENCE)

    # Then: the statute (tier 1) first, then by score, then the earlier-issued twin
    assert [e["directive_id"] for e in ranked] == [law["id"], needy["id"], earlier["id"],
                                                  later["id"]]
    assert [e["rank"] for e in ranked] == [1, 2, 3, 4]


def test_equal_twins_issued_together_fall_back_to_id() -> None:
    twins = [directive(name, "residents", basis="petition", issued_version=4)
             for name in ("twin-a", "twin-b")]
    ranked = rank_directives(contract_terms(), list(reversed(twins)), REFERENCE)
    assert [e["directive_id"] for e in ranked] == sorted(t["id"] for t in twins)


def test_only_active_directives_are_ranked() -> None:
    withdrawn = directive("gone", "residents", status="withdrawn")
    overridden = directive("lost", "residents", status="overridden")
    ranked = rank_directives(contract_terms(), [visits(), withdrawn, overridden], REFERENCE)
    assert [e["directive_id"] for e in ranked] == [visits()["id"]]


# --- schedule -----------------------------------------------------------------


def test_the_schedule_hands_out_each_weeks_free_hours_in_ranking_order() -> None:
    # Given (160 h free a week)
    a = directive("a", "street", basis="contract", hours_per_week=100,
                  window={"from": "2008-06-02", "to": "2008-06-15"})  # W23–W24, tier 2
    b = directive("b", "swa", basis="professional_standard", hours_per_week=80,
                  window={"from": "2008-06-02", "to": "2008-06-22"})  # W23–W25, tier 3
    # three petitions (tier 4); score = 7.5 + 5 + 10 × (1 − hours / 160)
    c = directive("c", "residents", basis="petition", hours_per_week=30,
                  window={"from": "2008-06-09", "to": "2008-06-15"})  # W24; 20.625
    d = directive("d", "residents", basis="petition", hours_per_week=10,
                  window={"from": "2008-06-16", "to": "2008-06-22"})  # W25; 21.875
    f = directive("f", "residents", basis="petition", hours_per_week=100,
                  window={"from": "2008-06-09", "to": "2008-06-22"})  # W24–W25; 16.25
    e = directive("e", "street", basis="contract", hours_per_week=5,
                  target_groups=["elderly"])  # out of scope: tier 5

    # When ranked
    ranked = rank_directives(contract_terms(), [e, f, d, c, b, a], REFERENCE)

    # Then, walking a, b, d, c, f, e:
    #   a: W23 160→60, W24 160→60                       scheduled, 100 h
    #   b: W23 60 of 80, W24 60 of 80, W25 80 (160→80)  partial, min 60 h
    #   d: W25 10 (80→70)                               scheduled, 10 h
    #   c: W24 0                                        deferred, 0 h
    #   f: W24 0, W25 70 (70→0)                         partial, min 0 h
    #   e: out of scope                                 blocked, 0 h
    assert [(x["directive_id"], x["schedule"]["outcome"], x["schedule"]["hours_granted"])
            for x in ranked] == [
        (a["id"], "scheduled", 100.0),
        (b["id"], "partial", 60.0),
        (d["id"], "scheduled", 10.0),
        (c["id"], "deferred", 0.0),
        (f["id"], "partial", 0.0),
        (e["id"], "blocked", 0.0),
    ]
    assert entry(ranked, d["id"])["score"] == pytest.approx(21.875)
    assert entry(ranked, f["id"])["score"] == pytest.approx(16.25)
    assert entry(ranked, c["id"])["score"] == pytest.approx(20.625)


def test_asking_no_hours_is_always_scheduled() -> None:
    # Given a contract with nothing free and a directive asking no hours
    terms = contract_terms(capacity={"staff": 14, "hours_per_staff_week": 40,
                                     "committed_hours_per_week": 560})
    [ranked] = rank_directives(terms, [directive("form", "bureau", hours_per_week=0)], REFERENCE)
    assert ranked["schedule"] == {"outcome": "scheduled", "hours_granted": 0.0}
    assert ranked["components"]["efficiency"]["value"] == 0
