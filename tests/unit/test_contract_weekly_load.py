"""A contract's load per week (``ServiceContract.weekly_load``), as SPEC §4 counts it and the
dashboard's chart draws it: the committed hours, one side of an open contradiction, nothing
of a blocked directive."""

from __future__ import annotations

from collections.abc import Callable

from domain.contract import ServiceContract

from .givens import moment

JUNE = {"from": "2008-06-02", "to": "2008-06-29"}  # 2008-W23 … 2008-W26
BODY = {"subject": "reporting.weekly", "basis": "purchaser_request", "people_affected": 0,
        "window": JUNE}


def test_the_load_counts_one_side_of_a_contradiction_and_nothing_blocked(
    active_contract: ServiceContract, issue: Callable[..., str],
) -> None:
    # Given the Haizhu youth contract (400 h a week committed, 560 h of capacity), two
    # offices asking 30 h and 50 h of weekly reports in two formats in June, and a street's
    # 72 h of home visits that disclose personal data (blocked by the confidentiality rule)
    issue(active_contract, "haichuang-street",
          {**BODY, "value": {"format": "street"}, "summary": "按街道模板报送",
           "hours_per_week": 30},
          name="street")
    bureau = issue(active_contract, "haizhu-civil-affairs",
                   {**BODY, "value": {"format": "bureau"}, "summary": "按民政报表报送",
                    "hours_per_week": 50}, name="bureau")
    issue(active_contract, "haichuang-street",
          {**BODY, "subject": "census.households", "summary": "入户登记家庭信息",
           "hours_per_week": 72, "tags": ["personal_data_disclosure"]}, name="census")
    kinds = {r["kind"] for r in active_contract.conflicts.values() if r["status"] == "open"}
    assert kinds == {"contradiction", "rule_violation"}

    # When its load is asked for
    load = active_contract.weekly_load()

    # Then June's weeks carry the committed hours and the larger side only, and the other
    # weeks the committed hours
    assert [load[week] for week in ("2008-W22", "2008-W23", "2008-W26", "2008-W27")] == \
        [400.0, 450.0, 450.0, 400.0]
    weeks = list(load)
    assert (weeks[0], weeks[-1], len(weeks)) == ("2008-W10", "2009-W09", 52)

    # and once the bureau withdraws, the street's 30 h count
    active_contract.withdraw_directive(bureau, actor={"org": "haizhu-civil-affairs",
                                                      "principal": "p"},
                                       at=moment("2008-06-03"))
    assert active_contract.weekly_load()["2008-W24"] == 430.0
