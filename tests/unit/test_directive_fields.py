"""What a directive may say: every field of the SPEC's directive table and its validation.

These are the request bodies of ``POST`` and ``PATCH`` on directives; anything
refused here never reaches the contract.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from domain.directives import Basis, DirectiveFields, DirectivePatch

from .givens import LOW_INCOME_VISITS, WEEKLY_REPORT


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def fields(**changes: Any) -> dict[str, Any]:
    return {**WEEKLY_REPORT, **changes}


def test_a_minimal_directive_gets_the_documented_defaults() -> None:
    # given only a subject, a summary and a basis, when validated
    directive = DirectiveFields.model_validate(
        {"subject": "youth_zone.opening_hours", "summary": "青年地带周末开放", "basis": "petition"}
    )

    # then value is "no particular value", and the rest default to nothing named
    assert directive.value is None
    assert directive.hours_per_week == 0
    assert directive.window is None  # the contract fills in its period
    assert directive.due is None
    assert directive.people_affected == 0
    assert directive.vulnerability == 0
    assert directive.target_groups == directive.locations == directive.tags == []
    assert directive.indicator is None


def test_every_field_of_the_table_is_accepted() -> None:
    # given the bureau's low-income visits with tags as well, when validated
    directive = DirectiveFields.model_validate({**LOW_INCOME_VISITS, "tags": ["home_visit"]})

    # then each field reads back as sent, dates as dates
    dumped = directive.model_dump(mode="json", by_alias=True)
    assert dumped == {**LOW_INCOME_VISITS, "hours_per_week": 45.0, "tags": ["home_visit"],
                      "locations": [], "citation": None, "task_type": None}
    assert directive.due == date(2008, 6, 29)


@pytest.mark.parametrize("basis", [b.value for b in Basis])
def test_each_basis_of_the_table_is_accepted(basis: str) -> None:
    assert DirectiveFields.model_validate(fields(basis=basis)).basis == basis


@pytest.mark.parametrize(
    "value",
    [None, 0, 1.5, "晚上九点", True, ["海幢街", "赤岗街"], {"evenings_per_week": 3, "nested": [1]}],
)
def test_value_may_be_any_json_value(value: Any) -> None:
    assert DirectiveFields.model_validate(fields(value=value)).value == value


@pytest.mark.parametrize(
    "subject",
    ["elderly_center.closing_time", "reporting", "a.b.c", "training_2008.ethics_v2"],
)
def test_subjects_are_dotted_lowercase_keys(subject: str) -> None:
    assert DirectiveFields.model_validate(fields(subject=subject)).subject == subject


@pytest.mark.parametrize(
    "subject",
    ["", "Reporting.weekly", "reporting..weekly", ".reporting", "reporting.", "报告.每周",
     "reporting weekly", "reporting-weekly", "a" * 201],
)
def test_subjects_outside_the_pattern_are_refused(subject: str) -> None:
    with pytest.raises(ValidationError, match="subject"):
        DirectiveFields.model_validate(fields(subject=subject))


def test_a_summary_of_500_chinese_characters_is_the_limit() -> None:
    # given a summary of exactly 500 characters, then it is accepted; one more is refused
    assert len(DirectiveFields.model_validate(fields(summary="居" * 500)).summary) == 500
    with pytest.raises(ValidationError, match="summary"):
        DirectiveFields.model_validate(fields(summary="居" * 501))
    with pytest.raises(ValidationError, match="summary"):
        DirectiveFields.model_validate(fields(summary=""))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hours_per_week", -1),
        ("hours_per_week", -0.5),
        ("people_affected", -1),
        ("vulnerability", -0.1),
        ("vulnerability", 1.01),
    ],
)
def test_numbers_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        DirectiveFields.model_validate(fields(**{field: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("hours_per_week", 0), ("hours_per_week", 12.5), ("people_affected", 0),
     ("vulnerability", 0), ("vulnerability", 1), ("vulnerability", 0.35)],
)
def test_numbers_at_and_within_their_bounds_are_accepted(field: str, value: float) -> None:
    assert getattr(DirectiveFields.model_validate(fields(**{field: value})), field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", 42),
        ("summary", ["每周报送"]),
        ("basis", "mother_in_law"),
        ("hours_per_week", "20"),
        ("hours_per_week", True),
        ("people_affected", 12.5),  # 12.0 is an integer in JSON Schema: accepted
        ("people_affected", "30"),
        ("people_affected", False),
        ("vulnerability", "0.8"),
        ("target_groups", "youth"),
        ("target_groups", ["Youth Groups"]),
        ("locations", "海幢街"),
        ("tags", [1]),
        ("indicator", 3),
        ("window", "2008-06-02/2008-06-29"),
    ],
)
def test_wrong_types_are_refused_not_coerced(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        DirectiveFields.model_validate(fields(**{field: value}))


@pytest.mark.parametrize(
    "day",
    ["2008/06/29", "2008-6-29", "29-06-2008", "20080629", "2008-06-29T00:00:00",
     "2008-06-29T00:00:00+08:00", "2008-02-30", "下周五", 20080629, 1214697600.0],
)
def test_dates_are_accepted_only_as_yyyy_mm_dd_strings(day: Any) -> None:
    with pytest.raises(ValidationError, match="due"):
        DirectiveFields.model_validate(fields(due=day))
    with pytest.raises(ValidationError, match="window"):
        DirectiveFields.model_validate(fields(window={"from": day, "to": "2008-06-30"}))


def test_a_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="'to' must not be before 'from'"):
        DirectiveFields.model_validate(fields(window={"from": "2008-06-29", "to": "2008-06-02"}))


def test_a_one_day_window_is_allowed() -> None:
    window = {"from": "2008-06-09", "to": "2008-06-09"}
    assert DirectiveFields.model_validate(fields(window=window)).window is not None


@pytest.mark.parametrize(
    "body",
    [
        fields(issuer="haizhu-gov"),  # the issuer comes from the key, never from the body
        fields(status="overridden"),
        fields(id="d-1"),
        fields(priority=1),
        fields(window={"from": "2008-06-02", "to": "2008-06-29", "weekdays": [1, 2]}),
        fields(window={"from_": "2008-06-02", "to": "2008-06-29"}),
    ],
)
def test_unknown_fields_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DirectiveFields.model_validate(body)


@pytest.mark.parametrize(
    "value",
    [
        {"_type_": "uuid_hex", "_data_": "0" * 32},  # the event store would decode it as a UUID
        [{"_type_": "decimal_str", "_data_": "1"}],
        float("nan"),
        float("inf"),
        nested(40),
    ],
)
def test_values_the_store_could_not_keep_unchanged_are_refused(value: Any) -> None:
    # (a domain fix: an object {"_type_", "_data_"} inside a value used to be stored as
    # given and decoded as a typed object on load, making the whole contract unreadable)
    with pytest.raises(ValidationError, match="value"):
        DirectiveFields.model_validate(fields(value=value))
    with pytest.raises(ValidationError, match="value"):
        DirectivePatch.model_validate({"value": value})


def test_values_may_nest_32_levels_deep() -> None:
    assert DirectiveFields.model_validate(fields(value=nested(32))).value == nested(32)
    with pytest.raises(ValidationError, match="deeper than 32"):
        DirectiveFields.model_validate(fields(value=nested(33)))


def test_an_object_that_merely_mentions_type_is_an_ordinary_value() -> None:
    value = {"_type_": "form", "_data_": "民政统计报表", "version": 2}
    assert DirectiveFields.model_validate(fields(value=value)).value == value


# --- amendments --------------------------------------------------------------


def test_an_amendment_lists_only_the_fields_it_sets() -> None:
    patch = DirectivePatch.model_validate({"hours_per_week": 10, "due": None, "value": None})
    assert patch.changes() == {"hours_per_week": 10.0, "due": None, "value": None}


def test_an_empty_amendment_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one field"):
        DirectivePatch.model_validate({})


@pytest.mark.parametrize(
    "field",
    ["subject", "summary", "basis", "hours_per_week", "people_affected", "vulnerability",
     "target_groups", "locations", "tags"],
)
def test_an_amendment_cannot_clear_a_required_field(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} cannot be null"):
        DirectivePatch.model_validate({field: None})


@pytest.mark.parametrize(
    "body",
    [{"subject": "Bad Subject"}, {"summary": "长" * 501}, {"hours_per_week": -1},
     {"vulnerability": 2}, {"due": "2008/06/30"}, {"people_affected": "many"},
     {"issuer": "haizhu-gov"}, {"status": "withdrawn"}],
)
def test_an_amendment_is_validated_like_an_issue(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DirectivePatch.model_validate(body)
