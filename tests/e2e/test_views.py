"""Conflict views over real HTTP, projected by a real Celery worker process.

This module runs its own stack: the API (uvicorn, in a thread) and a Celery
worker process on the same fresh event store, both on a Redis database of
their own (db 14 — the integration
tests flush db 15) and a queue of their own.  Commands wake the worker; the
tests read the views with ``min_position`` set to the position a command
answered, so every read sees its own writes.

Long because the live views' tests share one stack and one set of helpers (issue, live,
conflicts).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import ADMIN_KEY, fresh_store, redis_url_for_tests
from integration.processes import descendants, stop_tree, wait_gone

from workflows.bootstrap import Services, bootstrap
from workflows.settings import Settings

from .client import Needle, World, contract_terms, directive, unique
from .serving import serve_api, start_celery

VIEWS_REDIS_URL = redis_url_for_tests(14)
CONFLICT_FIELDS = {"id", "kind", "members", "explanation", "status", "level",
                   "opened_version", "opened_at", "due", "details"}
POSITION = "X-Projection-Position"

pytestmark = pytest.mark.stack


@dataclass
class ViewsStack:
    base_url: str
    services: Services
    worker: subprocess.Popen[bytes]
    worker_log: Path


@pytest.fixture(scope="module")
def views_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewsStack]:
    """The API and one Celery worker process, on one fresh store and an emptied Redis db."""
    folder = tmp_path_factory.mktemp("views")
    redis.Redis.from_url(VIEWS_REDIS_URL).flushdb()
    settings = Settings(var_dir=folder / "var", admin_key=ADMIN_KEY, redis_url=VIEWS_REDIS_URL,
                        celery_queue=f"e2e-views-{uuid.uuid4().hex[:10]}",
                        projection_interval_seconds=1.0, **fresh_store(folder))
    log = folder / "worker.log"
    queue = settings.celery_queue
    worker = start_celery(settings, log, "worker", "--queues", queue, "--concurrency", "1",
                          "--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip")
    services = bootstrap(settings)
    tree: set[int] = set()
    try:
        with serve_api(services, "e2e-views-uvicorn") as base_url:
            # the worker is ready when it answers a ping through Redis
            services.celery.send_task("threadneedle.ping", queue=queue).get(timeout=60)
            tree = descendants(worker.pid) | {worker.pid}
            yield ViewsStack(base_url, services, worker, log)
    except Exception:
        print(log.read_text(errors="replace"))
        raise
    finally:
        stop_tree(worker)
        services.close()
        redis.Redis.from_url(VIEWS_REDIS_URL).flushdb()
    assert wait_gone(tree) == set(), "the worker left processes behind"


@pytest.fixture
def admin(views_stack: ViewsStack) -> Needle:
    return Needle(views_stack.base_url, ADMIN_KEY)


@pytest.fixture
def anonymous(views_stack: ViewsStack) -> Needle:
    return Needle(views_stack.base_url, None)


# --- helpers -------------------------------------------------------------------


def add_contract(world: World, **overrides: Any) -> str:
    """Another active contract with the world's cast (its keys work on it too)."""
    fields: dict[str, Any] = {
        "stakeholders": [{"org": world.street, "standing": "party"},
                         {"org": world.provider, "standing": "party"},
                         {"org": world.residents, "standing": "non_party"}],
        "escalation_chain": [world.provider, world.bureau],
        **overrides,
    }
    code = fields.pop("code", None) or unique("HZ-VIEWS").upper()
    terms = contract_terms(code, world.street, world.provider, **fields)
    contract_id = str(world.admin.ok("POST", "/v1/contracts", 201, json=terms)["id"])
    world.admin.ok("POST", f"/v1/contracts/{contract_id}/activate")
    return contract_id


def issue(who: Needle, contract_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = who.ok("POST", f"/v1/contracts/{contract_id}/directives", 201,
                                  json=directive(**fields))
    return body


def live(who: Needle, path: str, position: int, **params: Any) -> httpx.Response:
    """A live view that includes the event at ``position`` (read-your-writes)."""
    response = who.get(path, params={"min_position": position, "wait": 20, **params})
    assert response.status_code == 200, response.text
    assert int(response.headers[POSITION]) >= position
    return response


def conflicts(who: Needle, contract_id: str, position: int, **params: Any) -> list[Any]:
    body = live(who, f"/v1/contracts/{contract_id}/conflicts", position, **params).json()
    return list(body["conflicts"])


def contradiction(world: World, contract_id: str | None = None) -> tuple[str, str, int]:
    """The street office and the provider set different opening hours: (a, b, position)."""
    contract_id = contract_id or world.contract_id
    a = issue(world.as_("street"), contract_id, value="09:00-21:00")
    b = issue(world.as_("provider"), contract_id, value="09:00-17:30", basis="contract",
              citation="服务合同 第三条")
    return a["id"], b["id"], b["position"]


# --- read your writes ------------------------------------------------------------


def test_a_directive_is_in_the_conflict_view_read_with_its_position(world: World) -> None:
    # given a contradiction between two stakeholders
    a, b, position = contradiction(world)

    # when the conflict view is read with min_position = the second directive's position
    response = live(world.as_("street"), f"{world.path}/conflicts", position)

    # then it shows the contradiction, with the fixed shape
    view = response.json()
    assert view["contract_id"] == world.contract_id
    assert view["version"] == world.version()
    assert view["position"] == int(response.headers[POSITION])
    [conflict] = view["conflicts"]
    assert set(conflict) >= CONFLICT_FIELDS
    assert conflict["kind"] == "contradiction"
    assert sorted(conflict["members"]) == sorted([a, b])
    assert conflict["status"] == "open" and conflict["level"] == 0
    assert conflict["details"]["subject"] == "youth_zone.opening_hours"
    assert sorted(conflict["details"]["values"]) == ["09:00-17:30", "09:00-21:00"]
    assert world.street in conflict["explanation"] or "09:00-21:00" in conflict["explanation"]


def test_a_view_that_cannot_reach_min_position_in_time_is_projection_lagging(
    world: World,
) -> None:
    # given the head of the log
    head = issue(world.as_("street"), world.contract_id)["position"]

    # when a view is asked for a position far beyond it, with a short wait
    started = time.monotonic()
    response = world.as_("street").get(f"{world.path}/conflicts",
                                       params={"min_position": head + 10_000, "wait": 0.3})

    # then it answers 503 projection_lagging after about the wait, and says when to retry
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "projection_lagging"
    assert int(response.headers["Retry-After"]) >= 1
    assert 0.25 <= time.monotonic() - started < 5

    # and the wait is bounded: more than 30 seconds is refused
    too_long = world.as_("street").get(f"{world.path}/conflicts",
                                       params={"min_position": 1, "wait": 31})
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "query.wait"


def test_every_live_view_carries_the_projection_position_and_replays_do_not(
    world: World,
) -> None:
    _, _, position = contradiction(world)
    street = world.as_("street")
    for path in (f"{world.path}/conflicts", f"{world.path}/priorities", "/v1/conflicts"):
        assert int(live(street, path, position).headers[POSITION]) >= position
    for path, params in ((f"{world.path}/conflicts", {"version": 2}),
                         (f"{world.path}/priorities", {"version": 2}),
                         (f"{world.path}/priorities", {"profile": "client_first"})):
        replayed = street.get(path, params=params)
        assert replayed.status_code == 200, replayed.text
        assert POSITION not in replayed.headers
        assert "version" in replayed.json()


def test_a_contract_not_yet_projected_answers_an_empty_view_with_the_position(
    world: World,
) -> None:
    # given a contract just drafted (no min_position: the view may not exist yet)
    contract_id = add_contract(world)

    # when its conflict view is read at once
    response = world.as_("street").get(f"/v1/contracts/{contract_id}/conflicts")

    # then it answers 200: no conflicts, and the projection's position
    assert response.status_code == 200, response.text
    assert response.json()["conflicts"] == []
    assert int(response.headers[POSITION]) >= 0


# --- the demo's kinds of conflict ---------------------------------------------------


def test_reporting_contradiction_duplicate_and_june_overload_appear(world: World) -> None:
    # given, on a contract with 14 × 40 − 400 = 160 free hours a week:
    #   street and residents: weekly report on the street template, 20 h each, all year
    #   provider: weekly report on the bureau form, 12 h, all year
    #   provider: training, 45 h, 2–29 June (W23–W26)
    #   street: inspection support, 100 h, 9–22 June (W24–W25)
    street, provider, residents = (world.as_(w) for w in ("street", "provider", "residents"))
    template, form = {"format": "street-template-v2"}, {"format": "bureau-statistics-form"}
    d1 = issue(street, world.contract_id, subject="reporting.weekly", value=template,
               hours_per_week=20)["id"]
    d2 = issue(provider, world.contract_id, subject="reporting.weekly", value=form,
               hours_per_week=12)["id"]
    d3 = issue(residents, world.contract_id, subject="reporting.weekly", value=template,
               hours_per_week=20)["id"]
    d4 = issue(provider, world.contract_id, subject="training.ethics", value={"hours": 2},
               hours_per_week=45, window={"from": "2008-06-02", "to": "2008-06-29"})["id"]
    last = issue(street, world.contract_id, subject="campaign.inspection", value={"staff": 2},
                 hours_per_week=100, window={"from": "2008-06-09", "to": "2008-06-22"})
    d5 = last["id"]

    # when the conflict view is read
    found = {c["kind"]: c for c in conflicts(street, world.contract_id, last["position"])}

    # then the reporting contradiction names all three, with both values …
    assert set(found) == {"contradiction", "duplicate", "over_capacity"}
    assert sorted(found["contradiction"]["members"]) == sorted([d1, d2, d3])
    assert found["contradiction"]["details"]["subject"] == "reporting.weekly"
    assert sorted(found["contradiction"]["details"]["values"], key=str) == sorted(
        [form, template], key=str)
    # … the same template demanded twice is a duplicate of the street and the residents …
    assert sorted(found["duplicate"]["members"]) == sorted([d1, d3])
    # … and June is over capacity.  Only one weekly report can be written while the
    # contradiction is open, so the largest (20 h) counts: W24 and W25 carry
    # 20 + 45 + 100 = 165 h, 5 over
    overload = found["over_capacity"]
    assert set(overload["members"]) == {d1, d2, d3, d4, d5}
    assert overload["details"]["weeks"] == ["2008-W24", "2008-W25"]
    assert overload["details"]["excess_hours"] == 5.0
    assert "5 h" in overload["explanation"]
    assert "5小时" in overload["explanations"]["zh"]
    assert "9 Jun 2008 – 22 Jun 2008" in overload["explanations"]["en"]
    for conflict in found.values():
        assert set(conflict) >= CONFLICT_FIELDS
        assert conflict["status"] == "open"
        assert conflict["explanation"]


def test_out_of_scope_work_is_a_conflict(world: World) -> None:
    # given a directive for a group the contract does not serve
    work = issue(world.as_("street"), world.contract_id, subject="campaign.demolition",
                 target_groups=["residents_affected_by_redevelopment"], hours_per_week=5)

    # then the view shows it out of scope, naming the group
    [conflict] = conflicts(world.as_("street"), world.contract_id, work["position"])
    assert conflict["kind"] == "out_of_scope"
    assert conflict["members"] == [work["id"]]
    assert conflict["details"]["outside"] == ["residents_affected_by_redevelopment"]


# --- status filters, dissolving, replay ------------------------------------------------


def test_a_withdrawal_dissolves_a_conflict_and_status_filters_the_view(world: World) -> None:
    # given an open contradiction
    street = world.as_("street")
    _a, b, position = contradiction(world)
    [opened] = conflicts(street, world.contract_id, position)

    # when the provider withdraws its directive
    withdrawn = world.as_("provider").ok("DELETE", f"{world.path}/directives/{b}")

    # then by default the view lists nothing (dissolved conflicts are not listed) …
    assert conflicts(street, world.contract_id, withdrawn["position"]) == []
    # … ?status=dissolved shows it, dissolved at the withdrawal's version …
    [dissolved] = conflicts(street, world.contract_id, withdrawn["position"], status="dissolved")
    assert dissolved["id"] == opened["id"]
    assert dissolved["status"] == "dissolved"
    assert dissolved["dissolved_version"] == withdrawn["version"]
    # … ?status=all shows it, ?status=open and ?status=resolved do not
    assert [c["id"] for c in conflicts(street, world.contract_id, withdrawn["position"],
                                       status="all")] == [opened["id"]]
    for status in ("open", "resolved"):
        assert conflicts(street, world.contract_id, withdrawn["position"], status=status) == []
    # … and the filters work the same in replay
    replay = street.ok("GET", f"{world.path}/conflicts",
                       params={"version": withdrawn["version"], "status": "dissolved"})
    assert [c["id"] for c in replay["conflicts"]] == [opened["id"]]

    # and an unknown status is refused, live and in replay
    for params in ({"status": "closed"}, {"status": "closed", "version": 1}):
        refused = street.get(f"{world.path}/conflicts", params=params)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "status"


def test_replay_at_each_version_equals_what_the_live_view_showed_then(world: World) -> None:
    # given a history of issues, an amendment and a withdrawal, with the live view
    # read right after each command
    street, provider = world.as_("street"), world.as_("provider")
    shown: dict[int, dict[str, Any]] = {}

    def record(result: dict[str, Any]) -> None:
        view = live(street, f"{world.path}/conflicts", result["position"],
                    status="all").json()
        assert view["version"] == result["version"]
        shown[result["version"]] = view

    a = issue(street, world.contract_id, value="08:00-20:00")
    record(a)
    b = issue(provider, world.contract_id, value="09:00-17:30")
    record(b)
    c = issue(world.as_("residents"), world.contract_id, value="08:00-20:00")
    record(c)
    record(provider.ok("PATCH", f"{world.path}/directives/{b['id']}",
                       json={"value": "08:00-20:00"}))
    record(street.ok("DELETE", f"{world.path}/directives/{a['id']}"))
    record(issue(provider, world.contract_id, subject="reporting.weekly", value="form-a"))
    record(issue(street, world.contract_id, subject="reporting.weekly", value="form-b"))

    # when each version is replayed from the event store
    for version, view in shown.items():
        replayed = street.ok("GET", f"{world.path}/conflicts",
                             params={"version": version, "status": "all"})

        # then it equals what the live view showed at that version
        assert replayed["version"] == version
        assert replayed["conflicts"] == view["conflicts"], version
    assert any(view["conflicts"] for view in shown.values())


def test_replay_as_of_a_time_and_its_refusals(world: World) -> None:
    street = world.as_("street")
    _, b, _position = contradiction(world)
    before = datetime.now(UTC)
    time.sleep(0.05)
    withdrawn = world.as_("provider").ok("DELETE", f"{world.path}/directives/{b}")

    # as of a time before the withdrawal the conflict is open; as of now it is not listed
    then = street.ok("GET", f"{world.path}/conflicts", params={"as_of": before.isoformat()})
    assert then["version"] == withdrawn["version"] - 1
    assert [c["status"] for c in then["conflicts"]] == ["open"]
    now = street.ok("GET", f"{world.path}/conflicts",
                    params={"as_of": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()})
    assert now["version"] == withdrawn["version"] and now["conflicts"] == []

    # a version not yet recorded is 404; a time before the contract is 404; both at once 422
    assert street.get(f"{world.path}/conflicts", params={"version": 10_000}).status_code == 404
    assert street.get(f"{world.path}/conflicts",
                      params={"as_of": "2001-01-01T00:00:00Z"}).status_code == 404
    both = street.get(f"{world.path}/conflicts",
                      params={"version": 1, "as_of": before.isoformat()})
    assert both.status_code == 422


# --- the cross-contract board ----------------------------------------------------------


def test_the_board_lists_open_conflicts_most_overdue_first_to_those_who_may_read_them(
    world: World, admin: Needle,
) -> None:
    # given a contract whose conflicts fall due almost at once, and one with 72 hours
    hasty = add_contract(world, resolution_sla_hours=0.0002)  # 0.72 s
    patient = world.contract_id
    contradiction(world, hasty)
    contradiction(world, patient)
    # and a contract of other organisations, with a conflict of its own
    others = World.build(admin)
    _, _, position = contradiction(others)
    time.sleep(1.0)

    # when the supervisor reads the board
    board = live(world.as_("supervisor"), "/v1/conflicts", position).json()["items"]

    # then it is ordered by due time, most overdue first, with how overdue each is
    dues = [datetime.fromisoformat(item["due"]) for item in board]
    assert dues == sorted(dues)
    overdue = [item["overdue_seconds"] for item in board]
    assert overdue == sorted(overdue, reverse=True)
    mine = [item for item in board if item["contract_id"] in (hasty, patient)]
    assert [item["contract_id"] for item in mine] == [hasty, patient]
    assert mine[0]["overdue_seconds"] > 0 and mine[1]["overdue_seconds"] == 0
    for item in mine:
        assert set(item) >= CONFLICT_FIELDS and item["status"] == "open"
    assert others.contract_id in {item["contract_id"] for item in board}

    # and a stakeholder sees only its own contracts' conflicts
    street_board = live(world.as_("street"), "/v1/conflicts", position).json()["items"]
    assert {item["contract_id"] for item in street_board} == {hasty, patient}
    other_board = live(others.as_("street"), "/v1/conflicts", position).json()["items"]
    assert {item["contract_id"] for item in other_board} == {others.contract_id}
    assert live(world.as_("outsider"), "/v1/conflicts", position).json()["items"] == []


def test_a_resolved_or_dissolved_conflict_leaves_the_board(world: World) -> None:
    street = world.as_("street")
    _, b, position = contradiction(world)
    on_board = live(street, "/v1/conflicts", position).json()["items"]
    assert [item["contract_id"] for item in on_board] == [world.contract_id]

    withdrawn = world.as_("provider").ok("DELETE", f"{world.path}/directives/{b}")
    assert live(street, "/v1/conflicts", withdrawn["position"]).json()["items"] == []


# --- who may read --------------------------------------------------------------------------


def test_readers_see_the_views_others_get_404_and_no_key_401(
    world: World, anonymous: Needle,
) -> None:
    _, _, position = contradiction(world)
    paths = [(f"{world.path}/conflicts", {}), (f"{world.path}/priorities", {}),
             (f"{world.path}/conflicts", {"version": 2}),
             (f"{world.path}/priorities", {"profile": "client_first"})]
    readers = ("street", "provider", "residents", "resolver", "supervisor")
    for who in readers:
        for path, params in paths:
            response = world.as_(who).get(path, params={"min_position": position, **params})
            assert response.status_code == 200, (who, path, params, response.text)
    for who in ("outsider", "outside_resolver"):
        for path, params in paths:
            response = world.as_(who).get(path, params=params)
            assert response.status_code == 404, (who, path, params, response.text)
    for path, params in [*paths, ("/v1/conflicts", {})]:
        assert anonymous.get(path, params=params).status_code == 401
    assert world.as_("street").get(
        "/v1/contracts/00000000-0000-0000-0000-000000000000/conflicts").status_code == 404


def test_explanations_name_organisations_in_chinese_and_english(world: World) -> None:
    # Given the street office and the provider set different opening hours
    _, _, position = contradiction(world)
    path = f"{world.path}/conflicts"

    # When the conflict view is read in English (the default) and in Chinese
    english = live(world.as_("street"), path, position).json()["conflicts"][0]
    chinese = world.as_("street").get(path, params={"min_position": position, "wait": 20},
                                      headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    [zh] = chinese.json()["conflicts"]

    # Then both carry both explanations, and `explanation` follows Accept-Language
    assert english["explanation"] == english["explanations"]["en"]
    assert zh["explanation"] == zh["explanations"]["zh"] == english["explanations"]["zh"]
    assert "相互矛盾" in zh["explanation"] and "Contradictory" in english["explanation"]
    # with organisations by name, never by their ids
    for text in english["explanations"].values():
        assert "江南中街街道办事处" in text and "启智社会工作服务中心" in text
        assert world.street not in text and world.provider not in text
    # and the same explanations are what replay shows
    replayed = world.as_("street").ok("GET", path, params={"version": world.version()})
    assert replayed["conflicts"][0]["explanations"] == english["explanations"]
