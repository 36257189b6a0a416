"""Priority views (live, replayed, what-if) and the projections' admin endpoints, over HTTP.

The stack — the API and a real Celery worker process on a Redis db of their
own — is the one ``test_views`` builds (a fresh one for this module).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from domain.shanghai_calendar import SHANGHAI

from .client import Needle, World, unique
from .test_views import (  # the module's stack and its fixtures
    POSITION,
    add_contract,
    admin,
    anonymous,
    conflicts,
    contradiction,
    issue,
    live,
    views_stack,
)

pytestmark = pytest.mark.stack
__all__ = ["admin", "anonymous", "views_stack"]  # fixtures, used by name

COMPONENTS = {"need", "urgency", "indicator", "legitimacy", "efficiency"}
CLOSING = "elderly_center.weekday_closing_time"


def shanghai_today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def jiangnanzhong(world: World) -> tuple[str, str, str, dict[str, Any]]:
    """HZ-JNZ-ELDER-2012 in small: 8 × 40 = 320 h, 250 committed, 70 h free a week.

    d1: 120 elders petition to close at 20:00 (13 h a week); d2: the street office
    keeps the contract's 17:30.  Answers (contract id, d1, d2, the last command's result).
    """
    contract_id = add_contract(
        world,
        code=unique("HZ-JNZ-ELDER").upper(),
        period={"start": "2012-01-02", "end": "2012-12-30"},
        service_area=["江南中街"], target_groups=["elderly"],
        capacity={"staff": 8, "hours_per_staff_week": 40, "committed_hours_per_week": 250},
        indicators=[{"key": "day_care_user_days", "target": 9000, "unit": "user-day"}],
        stakeholders=[{"org": world.street, "standing": "party"},
                      {"org": world.provider, "standing": "party"},
                      {"org": world.residents, "standing": "party"}],
    )
    d1 = issue(world.as_("residents"), contract_id, subject=CLOSING, value="20:00",
               basis="petition", hours_per_week=13, people_affected=120, vulnerability=0.6,
               target_groups=["elderly"], locations=["江南中街"])
    d2 = issue(world.as_("street"), contract_id, subject=CLOSING, value="17:30",
               basis="contract", citation="服务合同 第三条", hours_per_week=0, people_affected=0,
               vulnerability=0)
    return contract_id, d1["id"], d2["id"], d2


def order(view: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(e["directive_id"], e["rank"], e["tier"]) for e in view["priorities"]]


# --- priorities -------------------------------------------------------------------------


def test_the_live_priority_view_ranks_from_1_with_every_component_shown(world: World) -> None:
    # given the closing-time contract under its own policy, contract_first
    contract_id, d1, d2, last = jiangnanzhong(world)

    # when its live priority view is read
    response = live(world.as_("street"), f"/v1/contracts/{contract_id}/priorities",
                    last["position"])
    view = response.json()

    # then the shape is the fixed one, computed against today in Asia/Shanghai
    assert view["contract_id"] == contract_id
    assert view["profile"] == "contract_first"
    assert view["position"] == int(response.headers[POSITION])
    assert view["version"] == last["version"]
    assert view["reference_date"] in {shanghai_today(), datetime.now().date().isoformat()}
    # the street office's contract basis (tier 2) comes before the petition (tier 4)
    assert order(view) == [(d2, 1, 2), (d1, 2, 4)]
    first, second = view["priorities"]
    #   d2: 100 × (0.35×0 + 0.25×0.3 + 0.20×0 + 0.10×0.9 + 0.10×1)           = 26.5
    #   d1: 100 × (0.35×0.8 + 0.25×0.3 + 0.20×0 + 0.10×0.5 + 0.10×(1−13/70)) ≈ 48.642857
    assert first["score"] == pytest.approx(26.5)
    assert second["score"] == pytest.approx(48.642857, abs=1e-6)
    for entry in view["priorities"]:
        assert set(entry["components"]) == COMPONENTS
        for part in entry["components"].values():
            assert set(part) >= {"value", "weight", "contribution"}
            assert part["contribution"] == pytest.approx(part["weight"] * part["value"])
        total = sum(part["contribution"] for part in entry["components"].values())
        assert entry["score"] == pytest.approx(100 * total)
    assert second["components"]["need"]["value"] == pytest.approx(0.8)
    # they contradict (17:30 against 20:00), so only the better-ranked one is carried out:
    # the elders' 13 h are contested, left free, until the conflict is decided
    assert first["schedule"] == {"outcome": "scheduled", "hours_granted": 0.0}
    assert second["schedule"] == {"outcome": "contested", "hours_granted": 0.0}


def test_the_ranking_flips_between_contract_first_and_client_first(world: World) -> None:
    contract_id, d1, d2, last = jiangnanzhong(world)
    path = f"/v1/contracts/{contract_id}/priorities"
    street = world.as_("street")

    # when the what-if asks for client_first on the current state
    what_if = street.get(path, params={"profile": "client_first"})

    # then tiers 2–4 merge and the elders come first on score — computed by replay
    assert what_if.status_code == 200, what_if.text
    assert POSITION not in what_if.headers
    view = what_if.json()
    assert view["profile"] == "client_first" and view["version"] == last["version"]
    assert view["reference_date"] in {shanghai_today(), datetime.now().date().isoformat()}
    assert order(view) == [(d1, 1, 2), (d2, 2, 2)]
    #   d1: 100 × (0.45×0.8 + 0.25×0.3 + 0.10×0 + 0.10×0.5 + 0.10×(1−13/70)) ≈ 56.642857
    assert view["priorities"][0]["score"] == pytest.approx(56.642857, abs=1e-6)
    assert view["priorities"][1]["score"] == pytest.approx(26.5)

    # and the live view, which keeps the contract's own policy, still ranks the street first
    assert order(live(street, path, last["position"]).json()) == [(d2, 1, 2), (d1, 2, 4)]

    # when the admin switches the contract's policy to client_first
    changed = world.admin.ok("PUT", f"/v1/contracts/{contract_id}/policy",
                             json={"profile": "client_first"})

    # then the live view flips, and a contract_first what-if flips it back
    assert order(live(street, path, changed["position"]).json()) == [(d1, 1, 2), (d2, 2, 2)]
    back = street.ok("GET", path, params={"profile": "contract_first"})
    assert order(back) == [(d2, 1, 2), (d1, 2, 4)]

    # and an unknown profile is refused
    refused = street.get(path, params={"profile": "residents_first"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "profile"


def test_replayed_priorities_use_the_date_of_the_replayed_time(world: World) -> None:
    # given the contract, and a directive due 5 July 2099
    contract_id, d1, d2, _ = jiangnanzhong(world)
    due = issue(world.as_("street"), contract_id, subject="reporting.annual", value="report",
                basis="contract", citation="服务合同 第三条", hours_per_week=1, due="2099-07-05")
    path = f"/v1/contracts/{contract_id}/priorities"
    street = world.as_("street")

    def urgency(view: dict[str, Any]) -> float:
        [entry] = [e for e in view["priorities"] if e["directive_id"] == due["id"]]
        return float(entry["components"]["urgency"]["value"])

    # when replayed as of 16:30 UTC on 27 June 2099: already the 28th in Shanghai
    late = street.ok("GET", path, params={"as_of": "2099-06-27T16:30:00Z"})

    # then the reference date is the Shanghai date, 7 days before due: urgency 1.0
    assert late["reference_date"] == "2099-06-28"
    assert late["version"] == due["version"]
    assert urgency(late) == 1.0
    # while 15:30 UTC the same day is still the 27th there: 8 days, urgency 0.6
    early = street.ok("GET", path, params={"as_of": "2099-06-27T15:30:00Z"})
    assert early["reference_date"] == "2099-06-27"
    assert urgency(early) == 0.6

    # when only a version is given, the date is that of the last replayed event, in Shanghai
    history = world.admin.ok("GET", f"/v1/contracts/{contract_id}/history")["events"]
    before_due = due["version"] - 1
    replayed = street.ok("GET", path, params={"version": before_due})
    recorded = datetime.fromisoformat(history[before_due - 1]["recorded_at"])
    assert replayed["reference_date"] == recorded.astimezone(SHANGHAI).date().isoformat()
    assert replayed["version"] == before_due
    assert {e["directive_id"] for e in replayed["priorities"]} == {d1, d2}

    # and a replay may be a what-if too
    what_if = street.ok("GET", path, params={"version": before_due, "profile": "client_first"})
    assert order(what_if) == [(d1, 1, 2), (d2, 2, 2)]


def test_withdrawn_directives_leave_the_ranking(world: World) -> None:
    contract_id, d1, d2, _ = jiangnanzhong(world)
    withdrawn = world.as_("residents").ok("DELETE",
                                          f"/v1/contracts/{contract_id}/directives/{d1}")
    view = live(world.as_("street"), f"/v1/contracts/{contract_id}/priorities",
                withdrawn["position"]).json()
    assert order(view) == [(d2, 1, 2)]


# --- the projections' admin endpoints --------------------------------------------------------


def test_admins_and_supervisors_see_each_projections_position_and_lag(world: World) -> None:
    # given a command the views have caught up with
    _, _, position = contradiction(world)
    live(world.as_("street"), f"{world.path}/conflicts", position)

    for who in (world.admin, world.as_("supervisor")):
        # when the projections are listed
        items = who.ok("GET", "/v1/admin/projections")["items"]

        # then each has its position, the head of the log and the lag: ``contracts``
        # (every partition: the lowest position) and then each partition
        entry, *parts = items
        assert entry["name"] == "contracts"
        assert [part["name"] for part in parts] == entry["partitions"]
        assert [part["name"] for part in parts] == [f"contracts.p{i}" for i in range(4)]
        for item in items:
            assert {"name", "position", "head", "lag_events", "lag_seconds",
                    "status"} <= set(item)
            assert item["head"] >= item["position"] >= position
            assert item["lag_events"] == item["head"] - item["position"]
            assert item["lag_seconds"] >= 0
            assert item["status"] in {"live", "catching_up", "rebuilding"}
        assert entry["position"] == min(part["position"] for part in parts)


def test_only_admins_and_supervisors_see_projections_and_only_admins_rebuild(
    world: World, anonymous: Needle,
) -> None:
    for who in ("street", "residents", "resolver"):
        assert world.as_(who).get("/v1/admin/projections").status_code == 403, who
        assert world.as_(who).post("/v1/admin/projections/contracts/rebuild").status_code == 403
    assert world.as_("supervisor").post(
        "/v1/admin/projections/contracts/rebuild").status_code == 403
    assert anonymous.get("/v1/admin/projections").status_code == 401
    assert anonymous.post("/v1/admin/projections/contracts/rebuild").status_code == 401
    for name in ("webhooks", "contracts.p4", "contracts.p", "contracts.px"):
        unknown = world.admin.post(f"/v1/admin/projections/{name}/rebuild")
        assert unknown.status_code == 404, unknown.text
        assert unknown.json()["code"] == "not_found"


def test_one_partition_rebuilds_by_the_name_the_list_gives_it(world: World) -> None:
    # given the listed partitions
    _, _, position = contradiction(world)
    live(world.as_("street"), f"{world.path}/conflicts", position)
    before = {item["name"]: item for item in world.admin.ok("GET", "/v1/admin/projections")[
        "items"]}

    # when the admin rebuilds one of them by its listed name
    started = world.admin.ok("POST", "/v1/admin/projections/contracts.p2/rebuild", 202)

    # then that partition alone switches to a fresh generation
    assert started["name"] == "contracts.p2" and "," not in started["generation"]
    deadline = time.monotonic() + 60
    while True:
        after = {item["name"]: item for item in world.admin.ok(
            "GET", "/v1/admin/projections")["items"]}
        if after["contracts.p2"]["generation"] == started["generation"]:
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.05)
    assert after["contracts.p2"]["generation"] != before["contracts.p2"]["generation"]
    for other in ("contracts.p0", "contracts.p1", "contracts.p3"):
        assert after[other]["generation"] == before[other]["generation"]


def test_a_rebuild_switches_to_a_fresh_generation_while_reads_keep_working(
    world: World,
) -> None:
    # given a contract with an open conflict, read live
    street = world.as_("street")
    _, _, position = contradiction(world)
    path = f"{world.path}/conflicts"
    before = conflicts(street, world.contract_id, position)
    assert before

    # when the admin asks for a rebuild
    started = world.admin.ok("POST", "/v1/admin/projections/contracts/rebuild", 202)
    assert started["name"] == "contracts" and started["status"] == "rebuilding"

    # then reads keep answering the same view, the position never going back,
    # until the rebuilt generation is the live one
    seen = position
    deadline = time.monotonic() + 60
    while True:
        response = street.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["conflicts"] == before
        assert int(response.headers[POSITION]) >= seen
        seen = int(response.headers[POSITION])
        entry, *_ = world.admin.ok("GET", "/v1/admin/projections")["items"]
        if entry["status"] != "rebuilding" and entry.get("generation") == started["generation"]:
            break
        assert time.monotonic() < deadline, entry
        time.sleep(0.05)

    # and the rebuilt views go on projecting new commands
    b = issue(world.as_("residents"), world.contract_id, value="10:00-22:00")
    after = conflicts(street, world.contract_id, b["position"])
    assert [c["id"] for c in after] == [c["id"] for c in before]  # the same episode, joined
    assert b["id"] in after[0]["members"]
    assert after[0]["member_changes"][-1]["joined"] == [b["id"]]
