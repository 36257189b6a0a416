"""Givens for the unit tests: the Haizhu youth contract, built in memory.

Nothing here touches a store, a clock, a network or a file.  Times are fixed
moments in Guangzhou (UTC+8), passed to the domain as arguments; directive ids
are uuid5 values named after what the test calls them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid5

from domain.organisations import Caller, Role
from domain.terms import ContractTerms

GUANGZHOU = timezone(timedelta(hours=8))
TEST_NAMESPACE = UUID("0e8f6a4c-2d3b-4c5e-9f1a-7b6c5d4e3f21")
ADMIN_ACTOR = {"org": "threadneedle", "principal": "admin-key-1"}


def moment(day: str, hour: int = 9, minute: int = 0) -> datetime:
    """A fixed moment on a Guangzhou working day, e.g. ``moment("2008-06-02")``."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=GUANGZHOU)


def directive_id(name: str) -> UUID:
    return uuid5(TEST_NAMESPACE, name)


def actor_of(org: str) -> dict[str, str]:
    return {"org": org, "principal": f"{org}-key"}


def caller(org: str, role: Role) -> Caller:
    return Caller(principal_id=f"{org}-{role.value}-key", org=org, role=role)


# 海珠区“青年地带”: 2,000,000 yuan, 3 streets and 2 schools, 14 social workers.
HAIZHU_YOUTH: dict[str, Any] = {
    "code": "HZ-YOUTH-2008",
    "title": "海珠区“青年地带”青少年社会工作服务",
    "purchaser": "haizhu-gov",
    "provider": "qichuang",
    "budget": {"amount": "2000000.00", "currency": "CNY"},
    "period": {"start": "2008-03-03", "end": "2009-03-01"},
    "service_area": ["海幢街", "赤岗街", "华洲街", "赤岗中学", "绿翠中学"],
    "target_groups": ["youth"],
    "capacity": {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400},
    "indicators": [
        {"key": "cases", "target": 40, "unit": "case"},
        {"key": "groups", "target": 12, "unit": "group"},
        {"key": "community_activities", "target": 40, "unit": "activity"},
    ],
    "stakeholders": [
        {"org": "haizhu-youth-league", "standing": "party"},
        {"org": "haizhu-civil-affairs", "standing": "party"},
        {"org": "gz-swa", "standing": "party"},
        {"org": "haichuang-street", "standing": "party"},
        {"org": "chigang-street", "standing": "party"},
        {"org": "haichuang-residents", "standing": "non_party"},
    ],
    "escalation_chain": ["qichuang", "haizhu-youth-league", "haizhu-civil-affairs"],
    "resolution_sla_hours": 72,
    "policy": {"profile": "contract_first"},
}

# 海幢街道办事处: report every week on the street's own template.
WEEKLY_REPORT: dict[str, Any] = {
    "subject": "reporting.weekly",
    "value": {"format": "street-template-v2"},
    "summary": "每周按街道模板报送工作数据",
    "basis": "purchaser_request",
    "hours_per_week": 20,
    "people_affected": 0,
}

# 海珠区民政局: visit 30 low-income households with teenagers in June.
LOW_INCOME_VISITS: dict[str, Any] = {
    "subject": "outreach.low_income_youth_visits",
    "value": {"households": 30},
    "summary": "走访30户低保家庭青少年",
    "basis": "supervisor_request",
    "hours_per_week": 45,
    "window": {"from": "2008-06-02", "to": "2008-06-29"},
    "due": "2008-06-29",
    "people_affected": 30,
    "vulnerability": 0.8,
    "target_groups": ["youth"],
    "indicator": "cases",
}


def terms(**overrides: Any) -> ContractTerms:
    return ContractTerms.model_validate({**HAIZHU_YOUTH, **overrides})
