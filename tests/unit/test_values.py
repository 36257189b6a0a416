"""Values: money as decimal strings, policies whose weights sum to 1, capacity arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.terms import Capacity, Money, Policy, Profile, Weights

CONTRACT_FIRST = {"need": 0.35, "urgency": 0.25, "indicator": 0.20,
                  "legitimacy": 0.10, "efficiency": 0.10}


@pytest.mark.parametrize(
    "amount", ["2000000.00", "1000000", "10", "0.5", "0", "123456789012345.99"]
)
def test_money_is_a_decimal_string(amount: str) -> None:
    assert Money.model_validate({"amount": amount, "currency": "CNY"}).amount == amount


@pytest.mark.parametrize(
    "amount",
    [2000000.0, 2000000, "2,000,000.00", "2e6", "-10.00", "10.005", "两百万", "", " 10", "NaN",
     "1234567890123456"],
)
def test_money_that_is_not_a_plain_decimal_string_is_refused(amount: Any) -> None:
    with pytest.raises(ValidationError, match="amount"):
        Money.model_validate({"amount": amount, "currency": "CNY"})


def test_currency_defaults_to_yuan_and_must_be_iso_4217_shaped() -> None:
    assert Money.model_validate({"amount": "10.00"}).currency == "CNY"
    for currency in ("cny", "RMB¥", "元", "CN"):
        with pytest.raises(ValidationError):
            Money.model_validate({"amount": "10.00", "currency": currency})


def test_the_default_policy_is_contract_first_without_custom_weights() -> None:
    policy = Policy.model_validate({})
    assert policy.profile == Profile.CONTRACT_FIRST
    assert policy.weights is None


def test_custom_weights_that_sum_to_one_are_accepted() -> None:
    # given the client_first weights written out by hand, then they are valid
    policy = Policy.model_validate({"profile": "client_first", "weights": {
        "need": 0.45, "urgency": 0.25, "indicator": 0.10, "legitimacy": 0.10, "efficiency": 0.10,
    }})
    assert policy.weights is not None and policy.weights.need == 0.45
    assert Weights.model_validate(CONTRACT_FIRST).urgency == 0.25


@pytest.mark.parametrize(
    "weights",
    [
        {**CONTRACT_FIRST, "need": 0.36},  # sums to 1.01
        {**CONTRACT_FIRST, "efficiency": 0.0},  # sums to 0.9
        {"need": 1.0, "urgency": 0, "indicator": 0, "legitimacy": 0},  # one missing
        {**CONTRACT_FIRST, "need": 1.35, "urgency": -0.75},
        {**CONTRACT_FIRST, "need": "0.35"},
        {**CONTRACT_FIRST, "fairness": 0.0},
    ],
)
def test_weights_must_be_all_five_and_sum_to_one(weights: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate({"profile": "contract_first", "weights": weights})


def test_the_sum_error_says_what_the_weights_add_up_to() -> None:
    with pytest.raises(ValidationError, match=r"sum to 1 \(they sum to 1.01\)"):
        Weights.model_validate({**CONTRACT_FIRST, "need": 0.36})


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate({"profile": "residents_first"})


def test_weekly_and_free_capacity() -> None:
    # given 14 social workers at 40 hours a week, 400 hours already committed
    capacity = Capacity.model_validate(
        {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400}
    )
    # then the week holds 560 hours, of which 160 are free
    assert capacity.weekly == 560
    assert capacity.free == 160
