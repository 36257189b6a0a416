"""Deciding and escalating conflicts over real HTTP, with a real Celery worker and beat.

This module runs its own stack: the API (uvicorn, in a thread), one Celery
worker process with two pool processes, and two beat processes — two timers
sending the deadline sweep every second at once — on a fresh event store and
a Redis database of their own (db 13)
and a queue of their own.  A contract whose SLA is 0.0005 hours (1.8 s)
lets a conflict lapse and climb its chain on its own within seconds.

Long because one module-scoped stack (API, worker, two beats) serves the whole
resolution story, authority and episode tests; a second module would start a second
stack.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from conftest import ADMIN_KEY, fresh_store, redis_url_for_tests
from integration.processes import descendants, stop_tree, wait_gone
from pydantic import SecretStr

from workflows.bootstrap import Services, bootstrap
from workflows.settings import Settings

from .client import Needle, World, contract_terms, directive, unique
from .serving import serve_api, start_celery

RESOLUTION_REDIS_URL = redis_url_for_tests(13)
POSITION = "X-Projection-Position"
SLA_HOURS = 0.0005  # 1.8 seconds
TIMER_SECONDS = 1.0

pytestmark = pytest.mark.stack


@dataclass
class Stack:
    base_url: str
    services: Services
    processes: list[subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API, a worker of two processes and two beats, on one fresh store."""
    folder = tmp_path_factory.mktemp("resolution")
    redis.Redis.from_url(RESOLUTION_REDIS_URL).flushdb()
    settings = Settings(var_dir=folder / "var", admin_key=SecretStr(ADMIN_KEY),
                        redis_url=RESOLUTION_REDIS_URL,
                        celery_queue=f"e2e-resolution-{uuid.uuid4().hex[:10]}",
                        timer_interval_seconds=TIMER_SECONDS, projection_interval_seconds=1.0,
                        **fresh_store(folder))
    queue = settings.celery_queue
    timers = {"NEEDLE_TIMER_INTERVAL_SECONDS": str(TIMER_SECONDS),
              "NEEDLE_PROJECTION_INTERVAL_SECONDS": "1"}
    logs = [folder / "worker.log", folder / "beat-1.log", folder / "beat-2.log"]
    processes = [start_celery(settings, logs[0], "worker", "--queues", queue,
                              "--concurrency", "2", "--hostname", f"{queue}@%h",
                              "--without-mingle", "--without-gossip", **timers)]
    processes += [start_celery(settings, log, "beat", "--schedule", str(folder / f"{log.stem}.db"),
                               "--max-interval", "1", **timers) for log in logs[1:]]
    services = bootstrap(settings)
    tree: set[int] = set()
    try:
        with serve_api(services, "e2e-resolution-uvicorn") as base_url:
            services.celery.send_task("threadneedle.ping", queue=queue).get(timeout=60)
            for process in processes:
                tree |= descendants(process.pid) | {process.pid}
            yield Stack(base_url, services, processes)
    except Exception:
        for log in logs:
            print(log.read_text(errors="replace"))
        raise
    finally:
        for process in processes:
            stop_tree(process)
        services.close()
        redis.Redis.from_url(RESOLUTION_REDIS_URL).flushdb()
    assert wait_gone(tree) == set(), "the worker or a beat left processes behind"


@pytest.fixture
def admin(stack: Stack) -> Needle:
    return Needle(stack.base_url, ADMIN_KEY)


# --- helpers -----------------------------------------------------------------------


def issue(who: Needle, contract_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = who.ok("POST", f"/v1/contracts/{contract_id}/directives", 201,
                                  json=directive(**fields))
    return body


def live_conflicts(who: Needle, contract_id: str, position: int = 0) -> dict[str, Any]:
    response = who.get(f"/v1/contracts/{contract_id}/conflicts",
                       params={"min_position": position, "wait": 20, "status": "all"})
    assert response.status_code == 200, response.text
    return {c["id"]: c for c in response.json()["conflicts"]}


def until(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``probe`` until it answers something true."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)
    return found


def disagreement(world: World, contract_id: str) -> dict[str, str]:
    """The street wants the youth zone open till 21:00 (100 h a week), the provider till
    17:30 (10 h), and casework takes 70 h: a contradiction (only its larger side, 100 h,
    counts as load), and 170 h over 160 h free."""
    late = issue(world.as_("street"), contract_id, value="09:00-21:00", hours_per_week=100)
    early = issue(world.as_("provider"), contract_id, value="09:00-17:30", basis="contract",
                  citation="服务合同 第三条", hours_per_week=10)
    casework = issue(world.as_("provider"), contract_id, subject="casework.home_visits",
                     value={"cases": 40}, basis="contract", citation="服务合同 第三条",
                     hours_per_week=70, summary="个案家访 home visits")
    view = live_conflicts(world.as_("street"), contract_id, casework["position"])
    by_kind = {c["kind"]: c["id"] for c in view.values() if c["status"] == "open"}
    return {"late": late["id"], "early": early["id"], "casework": casework["id"],
            "contradiction": by_kind["contradiction"], "over_capacity": by_kind["over_capacity"],
            "position": str(casework["position"])}


def decide(who: Needle, contract_id: str, conflict_id: str, **body: Any) -> Any:
    return who.post(f"/v1/contracts/{contract_id}/conflicts/{conflict_id}/resolution",
                    json=body)


def escalate(who: Needle, contract_id: str, conflict_id: str, **body: Any) -> Any:
    return who.post(f"/v1/contracts/{contract_id}/conflicts/{conflict_id}/escalation",
                    json=body)


def problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["code"])


# --- the whole story, on its own -------------------------------------------------------


def test_a_lapsed_conflict_climbs_the_chain_on_its_own_and_is_decided_at_the_top(
    admin: Needle,
) -> None:
    # Given a contract whose conflicts are due 1.8 s after they open or escalate, with a
    # three-level chain: the provider, the street office, the bureau
    world = World.build(admin, activate=False)
    for who, org in (("provider_resolver", world.provider), ("street_resolver", world.street)):
        world.keys[who] = admin.new_key(org, "resolver")
    terms = contract_terms(
        unique("HZ-SLA").upper(), world.street, world.provider,
        stakeholders=[{"org": world.street, "standing": "party"},
                      {"org": world.provider, "standing": "party"}],
        escalation_chain=[world.provider, world.street, world.bureau],
        resolution_sla_hours=SLA_HOURS,
    )
    contract_id = admin.ok("POST", "/v1/contracts", 201, json=terms)["id"]
    admin.ok("POST", f"/v1/contracts/{contract_id}/activate")

    # When the street office and the provider disagree, and nobody decides
    conflicts = disagreement(world, contract_id)
    key = conflicts["contradiction"]
    bureau = world.as_("resolver")

    # Then the contradiction escalates by itself, level by level, to the bureau
    top = until(lambda: (c := live_conflicts(bureau, contract_id)[key])["level"] == 2 and c)
    assert [(s["from_level"], s["to_level"], s["reason"]) for s in top["escalations"]] == [
        (0, 1, "sla_expired"), (1, 2, "sla_expired")]
    # And each level was due 1.8 s after the escalation that reached it
    step = datetime.fromisoformat(top["escalations"][-1]["at"])
    assert datetime.fromisoformat(top["due"]) - step == timedelta(hours=SLA_HOURS)

    # And at the last level it stays, overdue, on the board — escalated exactly once per
    # level, though two timers fired every second
    time.sleep(4 * TIMER_SECONDS)
    board = bureau.ok("GET", "/v1/conflicts")["items"]
    [item] = [i for i in board if i["id"] == key]
    assert item["contract_id"] == contract_id and item["level"] == 2
    assert item["overdue_seconds"] > 0 and item["due"] == top["due"]
    escalations = [e for e in admin.history(contract_id)
                   if e["type"] == "ServiceContract.ConflictEscalated"
                   and e["data"]["conflict_id"] == key]
    assert [e["data"]["from_level"] for e in escalations] == [0, 1]
    assert {e["actor"]["org"] for e in escalations} == {"threadneedle"}

    # When the refusals are tried: the provider's resolver (level 0, below), a stakeholder,
    # a resolver of an organisation outside the chain, no rationale, the wrong level,
    # and past the last level
    decision = {"outcome": "upheld", "upheld": [conflicts["early"]],
                "overridden": [conflicts["late"]],
                "rationale": "区民政局裁定：青年地带五点半关门，晚间服务另行安排"}
    below = decide(world.as_("provider_resolver"), contract_id, key, **decision)
    stakeholder = decide(world.as_("street"), contract_id, key, **decision)
    outsider = decide(world.as_("outside_resolver"), contract_id, key, **decision)
    silent = decide(bureau, contract_id, key, **{**decision, "rationale": None})
    wrong_level = escalate(bureau, contract_id, key, from_level=1, reason="再议")
    past_last = escalate(bureau, contract_id, key, from_level=2, reason="再议")

    # Then each is refused as the contract says
    assert problem(below, 403) == "forbidden"
    assert problem(stakeholder, 403) == "forbidden"
    assert problem(outsider, 404) == "not_found"
    assert problem(silent, 422) == "validation_failed"
    assert problem(wrong_level, 409) == "level_mismatch"
    assert problem(past_last, 409) == "no_higher_level"

    # When the bureau, at the conflict's level, decides for 17:30
    decided = decide(bureau, contract_id, key, **decision)

    # Then the decision is recorded
    assert decided.status_code == 200, decided.text
    result = decided.json()
    assert set(result) == {"id", "version", "position"} and result["id"] == key
    view = live_conflicts(bureau, contract_id, result["position"])
    assert view[key]["status"] == "resolved"
    assert view[key]["resolution"]["outcome"] == "upheld"
    assert view[key]["resolution"]["resolver"] == world.bureau
    # And the overridden directive no longer counts: the over-capacity it fed dissolved
    assert view[conflicts["over_capacity"]]["status"] == "dissolved"
    contract = admin.contract(contract_id)
    statuses = {d["id"]: d["status"] for d in contract["directives"]}
    assert statuses[conflicts["late"]] == "overridden"
    priorities = bureau.ok("GET", f"/v1/contracts/{contract_id}/priorities",
                           params={"min_position": result["position"], "wait": 20})
    assert conflicts["late"] not in {p["directive_id"] for p in priorities["priorities"]}
    # And the board no longer lists either conflict
    board = bureau.ok("GET", "/v1/conflicts",
                      params={"min_position": result["position"], "wait": 20})["items"]
    assert not {key, conflicts["over_capacity"]} & {i["id"] for i in board}
    # And a second decision on it is refused
    assert problem(decide(bureau, contract_id, key, **decision), 409) == "conflict_not_open"
    # And replay at that version shows the same conflicts as the live view
    replayed = bureau.ok("GET", f"/v1/contracts/{contract_id}/conflicts",
                         params={"version": result["version"], "status": "all"})
    assert {c["id"]: c for c in replayed["conflicts"]} == view


# --- by hand, on a contract with a three-day SLA ------------------------------------------


@pytest.fixture
def world(admin: Needle) -> World:
    world = World.build(admin)  # chain: the provider (level 0), then the bureau (level 1)
    world.keys["provider_resolver"] = admin.new_key(world.provider, "resolver")
    return world


def test_a_resolver_escalates_by_hand_from_the_level_it_names(world: World) -> None:
    # Given an open contradiction at level 0
    conflicts = disagreement(world, world.contract_id)
    key = conflicts["contradiction"]
    provider = world.as_("provider_resolver")

    # When the provider's resolver escalates it, with an Idempotency-Key, twice
    headers = {"Idempotency-Key": f"escalate-{key[:8]}"}
    body = {"from_level": 0, "reason": "需要区民政局协调 the bureau must arbitrate"}
    first = provider.ok("POST", f"{world.path}/conflicts/{key}/escalation", json=body,
                        headers=headers)
    repeat = provider.ok("POST", f"{world.path}/conflicts/{key}/escalation", json=body,
                         headers=headers)

    # Then it was escalated once, and the repeat answered the first result
    assert repeat == first
    view = live_conflicts(provider, world.contract_id, first["position"])
    assert view[key]["level"] == 1
    escalation = view[key]["escalations"][-1]
    assert escalation == {**escalation, "from_level": 0, "to_level": 1, "by": world.provider}
    # And it is due 72 hours after its escalation
    assert (datetime.fromisoformat(view[key]["due"])
            - datetime.fromisoformat(escalation["at"])) == timedelta(hours=72)

    # And escalating again from level 0, or past the bureau, is refused
    again = escalate(world.as_("resolver"), world.contract_id, key, **body)
    past = escalate(world.as_("resolver"), world.contract_id, key, from_level=1, reason="再议")
    assert problem(again, 409) == "level_mismatch"
    assert problem(past, 409) == "no_higher_level"
    # And the provider, now below the conflict, may neither decide nor escalate
    decision = {"outcome": "deferred", "rationale": "下季度再议"}
    assert problem(decide(provider, world.contract_id, key, **decision), 403) == "forbidden"
    assert problem(escalate(provider, world.contract_id, key, from_level=1, reason="再议"),
                   403) == "forbidden"


def test_decisions_that_do_not_fit_the_conflict_are_refused(world: World) -> None:
    # Given an open contradiction, and the bureau's resolver
    conflicts = disagreement(world, world.contract_id)
    key = conflicts["contradiction"]
    bureau = world.as_("resolver")
    good = {"outcome": "upheld", "upheld": [conflicts["early"]],
            "overridden": [conflicts["late"]], "rationale": "以合同约定为准"}

    # Then a directive outside the conflict, an unknown field, an unknown outcome,
    # an unknown conflict, a stale If-Match and an admin key are refused
    outside = decide(bureau, world.contract_id, key,
                     **{**good, "overridden": [conflicts["casework"]]})
    unknown_field = decide(bureau, world.contract_id, key, **{**good, "winner": "street"})
    unknown_outcome = decide(bureau, world.contract_id, key, **{**good, "outcome": "split"})
    unknown_conflict = decide(bureau, world.contract_id, "no-such-conflict", **good)
    stale = bureau.post(f"{world.path}/conflicts/{key}/resolution", json=good,
                        headers={"If-Match": '"1"'})
    by_admin = decide(world.admin, world.contract_id, key, **good)
    assert problem(outside, 422) == "validation_failed"
    assert any(e["field"] == "overridden" for e in outside.json()["errors"])
    assert problem(unknown_field, 422) == "validation_failed"
    assert problem(unknown_outcome, 422) == "validation_failed"
    assert problem(unknown_conflict, 404) == "not_found"
    assert problem(stale, 412) == "version_mismatch"
    assert problem(by_admin, 403) == "forbidden"
    # And nothing was recorded by any of them
    assert live_conflicts(bureau, world.contract_id)[key]["status"] == "open"

    # When the bureau decides with If-Match naming the current version
    decided = bureau.post(f"{world.path}/conflicts/{key}/resolution", json=good,
                          headers={"If-Match": f'"{world.version()}"'})

    # Then it is accepted
    assert decided.status_code == 200, decided.text


# --- episodes and authority (SPEC §4, §6) -------------------------------------------


def three_level_world(admin: Needle) -> tuple[World, str]:
    """The chain provider → street → bureau, every one of them a party that may ask."""
    world = World.build(admin, activate=False)
    for who, org, role in (("provider_resolver", world.provider, "resolver"),
                           ("street_resolver", world.street, "resolver"),
                           ("bureau", world.bureau, "stakeholder")):
        world.keys[who] = admin.new_key(org, role)
    terms = contract_terms(
        unique("HZ-EPISODE").upper(), world.street, world.provider,
        stakeholders=[{"org": world.street, "standing": "party"},
                      {"org": world.provider, "standing": "party"},
                      {"org": world.bureau, "standing": "party"},
                      {"org": world.residents, "standing": "non_party"}],
        escalation_chain=[world.provider, world.street, world.bureau],
    )
    contract_id = admin.ok("POST", "/v1/contracts", 201, json=terms)["id"]
    admin.ok("POST", f"/v1/contracts/{contract_id}/activate")
    return world, contract_id


def test_adding_a_directive_never_resets_an_escalated_conflict(admin: Needle) -> None:
    # Given the street and the provider disagree on opening hours, and the provider's
    # resolver escalated the contradiction to the street office (level 1)
    world, contract_id = three_level_world(admin)
    conflicts = disagreement(world, contract_id)
    key, overload = conflicts["contradiction"], conflicts["over_capacity"]
    escalated = escalate(world.as_("provider_resolver"), contract_id, key,
                         from_level=0, reason="无法协商一致，提交街道")
    assert escalated.status_code == 200, escalated.text
    before = live_conflicts(admin, contract_id, escalated.json()["position"])[key]
    assert before["level"] == 1

    # When a stakeholder adds one more directive to that contradiction (and to the
    # over-capacity it feeds)
    joined = issue(world.as_("street"), contract_id, value="09:00-23:00", hours_per_week=5)

    # Then it is the same conflict: same id, level and due, the newcomer among its members
    after = live_conflicts(admin, contract_id, joined["position"])
    now = after[key]
    assert (now["status"], now["level"], now["due"]) == ("open", 1, before["due"])
    assert now["opened_version"] == before["opened_version"]
    assert joined["id"] in now["members"] and len(now["members"]) == 3
    assert now["member_changes"][-1] == {"version": joined["version"],
                                         "joined": [joined["id"]], "left": []}
    assert after[overload]["status"] == "open"
    assert joined["id"] in after[overload]["members"]
    # And nothing new opened at level 0 in its place
    assert [c["id"] for c in after.values() if c["kind"] == "contradiction"] == [key]


def test_a_decision_may_not_overrule_an_issuer_above_the_decider(admin: Needle) -> None:
    # Given the bureau (level 2) and the provider (level 0) ask for different report forms
    world, contract_id = three_level_world(admin)
    form = issue(world.as_("bureau"), contract_id, subject="reporting.weekly",
                 value={"format": "民政统计报表"}, basis="supervisor_request")
    template = issue(world.as_("provider"), contract_id, subject="reporting.weekly",
                     value={"format": "机构模板"})
    key = next(c["id"] for c in live_conflicts(admin, contract_id, template["position"]).values()
               if c["kind"] == "contradiction")
    overrule = {"outcome": "upheld", "upheld": [template["id"]], "overridden": [form["id"]],
                "rationale": "机构模板更省时"}

    # When the provider's resolver tries to overrule the bureau
    refused = decide(world.as_("provider_resolver"), contract_id, key, **overrule)

    # Then it is refused, naming the directive and the level its override needs
    assert problem(refused, 403) == "insufficient_authority"
    assert refused.json()["directive_id"] == form["id"]
    assert refused.json()["level_needed"] == 2
    # and a hand escalation may not claim the timer's reason
    assert problem(escalate(world.as_("provider_resolver"), contract_id, key, from_level=0,
                            reason="sla_expired"), 422) == "validation_failed"

    # When it escalates instead, and the street office (level 1) tries the same
    assert escalate(world.as_("provider_resolver"), contract_id, key, from_level=0,
                    reason="须由上级裁定").status_code == 200
    assert problem(decide(world.as_("street_resolver"), contract_id, key, **overrule),
                   403) == "insufficient_authority"
    assert escalate(world.as_("street_resolver"), contract_id, key, from_level=1,
                    reason="须由民政局裁定").status_code == 200

    # Then the bureau decides, and may overrule anyone below it
    decided = decide(world.as_("resolver"), contract_id, key, outcome="upheld",
                     upheld=[form["id"]], overridden=[template["id"]],
                     rationale="统一使用民政统计报表")
    assert decided.status_code == 200, decided.text
    # While the provider may always concede: overriding its own directive needs no one above
    world2, contract2 = three_level_world(admin)
    mine = issue(world2.as_("provider"), contract2, subject="reporting.weekly",
                 value={"format": "机构模板"})
    theirs = issue(world2.as_("bureau"), contract2, subject="reporting.weekly",
                   value={"format": "民政统计报表"}, basis="supervisor_request")
    key2 = next(c["id"] for c in live_conflicts(admin, contract2, theirs["position"]).values()
                if c["kind"] == "contradiction")
    conceded = decide(world2.as_("provider_resolver"), contract2, key2, outcome="upheld",
                      upheld=[theirs["id"]], overridden=[mine["id"]], rationale="服从民政局要求")
    assert conceded.status_code == 200, conceded.text
