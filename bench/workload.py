"""Synthetic contract histories for the projection benchmarks and fault tests.

Everything goes through the ledger and its use cases (``workflows/contracts.py``...) for
histories that must look like real use, and, for volume, the aggregate's own
command methods with many events saved per ``app.save`` (the same events,
recorded in fewer transactions).  Randomness comes from the caller's seeded
``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from domain.contract import ServiceContract
from domain.directives import DirectiveFields, DirectivePatch
from domain.organisations import Caller, OrganisationSpec, Role
from domain.terms import ContractTerms
from workflows import contracts, directives, directory
from workflows.identities import BOOTSTRAP_ADMIN, contract_id_for
from workflows.ledger import Ledger

PERIOD_START = date(2024, 1, 1)
PERIOD_WEEKS = 52
ISSUERS = ("street-a", "street-b", "bureau", "residents")
SUBJECTS = tuple(f"topic.{name}" for name in (
    "reporting", "hours", "outreach", "visits", "training", "closing_time", "focus", "events",
))
GROUPS = ("youth", "elderly", "disabled", "migrants")


@dataclass
class ContractHandle:
    id: str
    callers: dict[str, Caller]
    active: list[str] = field(default_factory=list)


def register_organisations(app: Ledger) -> None:
    known = {org["id"] for org in directory.list_organisations(app, BOOTSTRAP_ADMIN)}
    for slug in ("purchaser", "provider", *ISSUERS):
        if slug not in known:
            directory.register_organisation(app, BOOTSTRAP_ADMIN, OrganisationSpec(
                id=slug, name=f"{slug} 组织", kind="other"))


def open_contract(app: Ledger, code: str) -> ContractHandle:
    terms = ContractTerms.model_validate({
        "code": code, "title": f"合同 {code}", "purchaser": "purchaser", "provider": "provider",
        "budget": {"amount": "1000000.00", "currency": "CNY"},
        "period": {"start": PERIOD_START.isoformat(),
                   "end": (PERIOD_START + timedelta(weeks=PERIOD_WEEKS, days=-1)).isoformat()},
        "service_area": ["north", "south"], "target_groups": ["youth", "elderly"],
        "capacity": {"staff": 10, "hours_per_staff_week": 40, "committed_hours_per_week": 300},
        "indicators": [{"key": "cases", "target": 40, "unit": "case"}],
        "stakeholders": [{"org": org, "standing": "party"} for org in ISSUERS],
        "escalation_chain": ["provider", "purchaser"],
    })
    contracts.draft_contract(app, BOOTSTRAP_ADMIN, terms)
    contract_id = str(contract_id_for(code))
    contracts.transition(app, BOOTSTRAP_ADMIN, contract_id, "activate")
    callers = {org: Caller(principal_id=f"principal-{org}", org=org, role=Role.STAKEHOLDER)
               for org in ISSUERS}
    return ContractHandle(contract_id, callers)


def open_contracts(app: Ledger, count: int, prefix: str = "SYN") -> list[ContractHandle]:
    register_organisations(app)
    return [open_contract(app, f"{prefix}-{number:04d}") for number in range(count)]


HOURS = (0, 2, 5, 10, 20, 40)
SPARSE_SUBJECTS = tuple(f"topic.item_{number}" for number in range(400))
"""A wide pool: most directives then stand alone, as in real contracts (bench volume)."""
LIGHT_HOURS = (0, 0, 0, 1, 2)


def random_fields(
    rng: random.Random, subjects: tuple[str, ...] = SUBJECTS, hours: tuple[float, ...] = HOURS,
) -> DirectiveFields:
    start = rng.randrange(PERIOD_WEEKS - 1)
    weeks = rng.randint(1, 8)
    end = min(PERIOD_WEEKS, start + weeks)
    data: dict[str, Any] = {
        "subject": rng.choice(subjects),
        "value": rng.choice([None, "a", "b", {"format": "x"}, {"format": "y"}, 1, 2]),
        "summary": f"要求 {rng.randrange(10_000)}",
        "basis": rng.choice(["statute", "contract", "professional_standard",
                             "supervisor_request", "purchaser_request", "petition"]),
        "hours_per_week": rng.choice(hours),
        "window": {"from": (PERIOD_START + timedelta(weeks=start)).isoformat(),
                   "to": (PERIOD_START + timedelta(weeks=end, days=-1)).isoformat()},
        "people_affected": rng.randrange(0, 200),
        "vulnerability": rng.choice([0, 0.3, 0.8]),
        "target_groups": rng.sample(GROUPS, rng.randint(0, 2)),
    }
    if data["basis"] in ("statute", "contract"):
        data["citation"] = ("《中华人民共和国未成年人保护法》第四十四条"
                            if data["basis"] == "statute" else "服务合同 第三条（示例）")
    if rng.random() < 0.3:
        data["due"] = (PERIOD_START + timedelta(days=rng.randrange(7 * PERIOD_WEEKS))).isoformat()
    if rng.random() < 0.3:
        data["indicator"] = "cases"
    return DirectiveFields.model_validate(data)


def random_patch(rng: random.Random) -> DirectivePatch:
    fields = random_fields(rng).model_dump(mode="json", by_alias=True)
    chosen = rng.sample(["value", "hours_per_week", "window", "subject", "target_groups"],
                        rng.randint(1, 2))
    return DirectivePatch.model_validate({name: fields[name] for name in chosen})


def random_command(app: Ledger, handle: ContractHandle, rng: random.Random) -> int:
    """Issue, amend or withdraw one directive through the application; answers the position."""
    roll = rng.random()
    if handle.active and roll < 0.2:
        directive_id = rng.choice(handle.active)
        handle.active.remove(directive_id)
        issuer = contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                         handle.id).directives[directive_id]["issuer"]
        return directives.withdraw_directive(app, handle.callers[issuer], handle.id,
                                             directive_id).position
    if handle.active and roll < 0.45:
        directive_id = rng.choice(handle.active)
        issuer = contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                         handle.id).directives[directive_id]["issuer"]
        return directives.amend_directive(app, handle.callers[issuer], handle.id, directive_id,
                                   random_patch(rng)).position
    caller = handle.callers[rng.choice(ISSUERS)]
    result = directives.issue_directive(app, caller, handle.id, random_fields(rng))
    handle.active.append(result.id)
    return result.position


def issue_in_bulk(
    app: Ledger, handle: ContractHandle, count: int, rng: random.Random,
    subjects: tuple[str, ...] = SUBJECTS, hours: tuple[float, ...] = HOURS,
) -> None:
    """``count`` directive events (mostly issues, some withdrawals) saved in one transaction."""
    contract: Any = app.repository.get(UUID(handle.id))
    assert isinstance(contract, ServiceContract)
    at = app.clock()
    for _ in range(count):
        if handle.active and rng.random() < 0.3:
            directive_id = handle.active.pop(rng.randrange(len(handle.active)))
            issuer = contract.directives[directive_id]["issuer"]
            contract.withdraw_directive(directive_id, actor=handle.callers[issuer].actor, at=at)
            continue
        caller = handle.callers[rng.choice(ISSUERS)]
        new_id = app.new_id()
        contract.issue_directive(random_fields(rng, subjects, hours), directive_id=new_id,
                                 issuer=caller.org, actor=caller.actor, at=at)
        handle.active.append(str(new_id))
    app.save(contract)
