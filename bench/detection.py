"""Detection, incremental folding and replay of a large contract (SPEC §11 detection, replay).

Long (~480 lines) because its three measurements, and the replay's floor, share one
generator of contracts and one report.

Three measurements, each the median of many runs, all in one process:

(a) full detection and ranking of a contract with 5,000 active directives
    (``find_conflicts`` and ``priority_view_of`` sharing one ``ContractState``),
    beside the baseline of only building that ``ContractState``; the SPEC bar
    is 100 ms;
(b) issuing one more directive into that contract through the aggregate:
    the command, its event and the incremental conflict fold (well under 1 ms);
(c) a 10,000-event contract as of a random version from an in-memory
    ``eventsourcing`` application that snapshots every 100 events, sealed and
    their seal checked on load as the ledger's are: its state and conflicts
    (loaded: a snapshot and the events after it) and its priorities (ranked
    with its conflict view) (≤ 50 ms); beside it, the floor of a load of the
    last versions: decoding and freeing the last snapshot, indexing it for the
    conflict fold, and ranking its active directives, each alone.

Replay is measured twice over the same stored events and snapshots: with the
application's transcoders (``workflows.transcoding``) and, as the baseline, with
``eventsourcing``'s own ``JSONTranscoder``.  Writes its
section of ``docs/benchmarks.md`` between marker comments.

    .venv/bin/python bench/detection.py [--quick] [--out docs/benchmarks.md]
    .venv/bin/python bench/detection.py --profile     # cProfile of (a)
    .venv/bin/python bench/detection.py --only-detection [--repeat N]   # (a), printed only
    .venv/bin/python bench/detection.py --profile-replay [--events N]   # cProfile of (c)
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Transcoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import write_section

from domain.conflict_tracker import ConflictTracker
from domain.conflicts import find_conflicts
from domain.contract import ServiceContract
from domain.contract_state import ContractState
from domain.directives import DirectiveFields, DirectivePatch
from domain.priorities import priority_view_of
from domain.terms import ContractTerms
from workflows import anchoring
from workflows.collector import collection_paused
from workflows.contracts import applied
from workflows.transcoding import FastJSONTranscoder

ROOT = Path(__file__).resolve().parent.parent

GUANGZHOU = timezone(timedelta(hours=8))
ADMIN = {"org": "threadneedle", "principal": "bench"}
PERIOD_START = date(2008, 3, 3)
PERIOD_DAYS = 363
REFERENCE = date(2008, 6, 1)
ISSUERS = ["haichuang-street", "chigang-street", "haizhu-civil-affairs", "haizhu-youth-league",
           "gz-swa", "haichuang-residents"]
BASES = ["statute", "contract", "professional_standard", "supervisor_request",
         "purchaser_request", "petition", "individual_request"]
AREA = ["海幢街", "赤岗街", "华洲街", "赤岗中学", "绿翠中学"]

TERMS: dict[str, Any] = {
    "code": "BENCH-5000",
    "title": "基准测试合同",
    "purchaser": "haizhu-gov",
    "provider": "qichuang",
    "budget": {"amount": "2000000.00", "currency": "CNY"},
    "period": {"start": "2008-03-03", "end": "2009-03-01"},
    "service_area": AREA,
    "target_groups": ["youth"],
    "capacity": {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400},
    "indicators": [{"key": "cases", "target": 40, "unit": "case"},
                   {"key": "groups", "target": 12, "unit": "group"}],
    "stakeholders": [{"org": org, "standing": "party"} for org in ISSUERS[:-1]]
    + [{"org": ISSUERS[-1], "standing": "non_party"}],
    "escalation_chain": ["qichuang", "haizhu-youth-league"],
    "resolution_sla_hours": 72,
    "policy": {"profile": "contract_first"},
}


def day(offset: int) -> str:
    return (PERIOD_START + timedelta(days=offset)).isoformat()


def directive_body(rng: random.Random, subject: str) -> dict[str, Any]:
    """A realistic directive: mostly no hours, a few long ones, windows of weeks to months."""
    first = rng.randrange(0, PERIOD_DAYS - 7)
    length = rng.choice([7, 14, 28, 30, 60, 90, 180])
    hours = rng.choices([0, 0.5, 1, 2, 4], weights=[70, 10, 10, 6, 4])[0]
    basis = rng.choice(BASES)
    return {
        "subject": subject,
        "value": rng.choice(["weekly", "monthly", {"format": "表格"}, {"format": "street"}]),
        "summary": "基准指令",
        "basis": basis,
        "citation": "服务合同 第三条（示例）" if basis in ("statute", "contract") else None,
        "hours_per_week": hours,
        "window": {"from": day(first), "to": day(min(PERIOD_DAYS, first + length))},
        "due": day(rng.randrange(0, PERIOD_DAYS)) if rng.random() < 0.5 else None,
        "people_affected": rng.randrange(0, 200),
        "vulnerability": rng.choice([0, 0.3, 0.5, 0.8, 1]),
        "target_groups": ["elderly"] if rng.random() < 0.01 else ["youth"],
        "locations": ["逢源街"] if rng.random() < 0.01 else [rng.choice(AREA)],
        "indicator": rng.choice([None, None, "cases", "groups"]),
        "tags": ["personal_data_disclosure"] if rng.random() < 0.01 else [],
    }


def subjects(count: int) -> list[str]:
    """Many subjects with one to three directives each: about ``count`` directives in all."""
    rng = random.Random(7)
    names: list[str] = []
    number = 0
    while len(names) < count:
        names += [f"area.subject_{number}"] * rng.choice([1, 1, 2, 2, 3])
        number += 1
    return names[:count]


def at(step: int) -> datetime:
    return datetime(2008, 3, 3, 9, tzinfo=GUANGZHOU) + timedelta(seconds=30 * step)


def drafted() -> ServiceContract:
    contract = ServiceContract.draft(
        contract_id=uuid.uuid5(uuid.NAMESPACE_URL, "bench"),
        terms=ContractTerms.model_validate(TERMS), actor=ADMIN, at=at(0))
    contract.transition("activate", actor=ADMIN, at=at(1))
    return contract


def contract_with(count: int, seed: int = 1) -> ServiceContract:
    rng = random.Random(seed)
    contract = drafted()
    for number, subject in enumerate(subjects(count)):
        issue(contract, rng, subject, number, at(number + 2))
    return contract


def issue(contract: ServiceContract, rng: random.Random, subject: str, number: int,
          moment: datetime) -> str:
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-directive-{number}")
    issuer = rng.choice(ISSUERS)
    contract.issue_directive(DirectiveFields.model_validate(directive_body(rng, subject)),
                             directive_id=key, issuer=issuer, actor={"org": issuer,
                                                                     "principal": "k"},
                             at=moment)
    return str(key)


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


# --- (a) full detection and ranking --------------------------------------------


def detection_and_ranking(contract: ServiceContract) -> tuple[int, int]:
    state = ContractState(contract.terms, contract.directives.values())
    found = find_conflicts(state)
    view = priority_view_of(state, REFERENCE, conflicts=[
        {"kind": conflict.kind, "members": conflict.members} for conflict in found])
    return len(found), len(view["priorities"])


def prepared(terms: dict[str, Any], directives: list[dict[str, Any]]) -> ContractState:
    """A ``ContractState`` with the facts both views read worked out (it works each out when
    first asked for): weeks and hours, scope and rules, the id order."""
    state = ContractState(terms, directives)
    _ = state.asking, state.outside
    return state


def measure_detection(repeat: int) -> dict[str, Any]:
    contract = contract_with(5000)
    directives = list(contract.directives.values())
    conflicts, ranked = detection_and_ranking(contract)
    kinds: dict[str, int] = {}
    for found in find_conflicts(ContractState(contract.terms, directives)):
        kinds[found.kind] = kinds.get(found.kind, 0) + 1
    baseline = median_ms(lambda: prepared(contract.terms, directives), repeat)
    full = median_ms(lambda: detection_and_ranking(contract), repeat)
    print(f"(a) detection + ranking, {ranked} active directives, {conflicts} conflicts {kinds}")
    print(f"    median {full:.1f} ms (bar 100 ms); baseline ContractState alone "
          f"{baseline:.2f} ms; ratio {full / baseline:.1f} x", flush=True)
    return {"full": full, "baseline": baseline, "ranked": ranked, "conflicts": conflicts}


def profile_detection() -> None:
    contract = contract_with(5000)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        detection_and_ranking(contract)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)



# --- (b) one more directive through the aggregate -------------------------------


def measure_issue(repeat: int) -> dict[str, Any]:
    contract = contract_with(5000)
    rng = random.Random(11)
    bodies = [DirectiveFields.model_validate(directive_body(rng, f"area.subject_{n}"))
              for n in range(repeat)]
    times = []
    for number, fields in enumerate(bodies):
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-more-{number}")
        moment = at(contract.version + 1)
        started = time.perf_counter()
        contract.issue_directive(fields, directive_id=key, issuer="haichuang-street",
                                 actor=ADMIN, at=moment)
        times.append(time.perf_counter() - started)
    fresh = contract_with(200)
    fields = bodies[0]
    empty = median_ms(lambda: fresh.issue_directive(
        fields, directive_id=uuid.uuid4(), issuer="haichuang-street", actor=ADMIN,
        at=at(fresh.version + 1)), repeat)
    print(f"(b) issue one more directive into a 5,000-directive contract: median "
          f"{statistics.median(times) * 1000:.3f} ms, p90 "
          f"{sorted(times)[int(len(times) * 0.9)] * 1000:.3f} ms "
          f"(same command on a 200-directive contract: {empty:.3f} ms)", flush=True)
    return {"median": statistics.median(times) * 1000, "small": empty}


# --- (c) a 10,000-event contract as of a random version ------------------------------


class Bench(Application):
    is_snapshotting_enabled = True
    snapshotting_intervals = {ServiceContract: 100}  # noqa: RUF012

    def construct_transcoder(self) -> Transcoder:  # as ``workflows.ledger.Ledger`` does
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_snapshot_store(self) -> Any:  # as the ledger's: sealed, checked on load
        return anchoring.SealedSnapshotStore(
            mapper=anchoring.SnapshotMapper(self.mapper, b"bench-snapshot-key"),
            recorder=self.factory.aggregate_recorder(purpose="snapshots"))


def ten_thousand_events(app: Bench, events: int = 10_000) -> ServiceContract:
    rng = random.Random(3)
    contract = drafted()
    names = subjects(events)
    active: list[str] = []
    number = 0
    while contract.version < events:
        move = rng.random()
        if move < 0.7 or len(active) < 100:
            active.append(issue(contract, rng, names[number], number, at(contract.version)))
            number += 1
        elif move < 0.9:
            target = rng.choice(active)
            contract.amend_directive(target, DirectivePatch.model_validate(
                {"hours_per_week": rng.choice([0, 1, 2]), "value": rng.choice(["a", "b"])}),
                actor=ADMIN, at=at(contract.version))
        else:
            target = active.pop(rng.randrange(len(active)))
            contract.withdraw_directive(target, actor=ADMIN, at=at(contract.version))
        if contract.version % 50 == 0:
            app.save(contract)
    app.save(contract)
    return contract


def load_as_of(app: Bench, contract_id: Any, version: int) -> int:
    """(c)'s unit of work: the contract as of ``version`` (a snapshot and the events after
    it, conflicts folded) and its priorities, as ``workflows.history.state_at`` replays
    them: the events applied as ``workflows.contracts.read_contract`` does, and the
    garbage collector paused until the replayed state is dropped.  Its version is returned."""
    with collection_paused():
        loaded: Any = app.repository.get(contract_id, version=version, projector_func=applied)
        loaded.priority_view(REFERENCE)
        replayed: int = loaded.version
        del loaded  # freed here, as the API frees it before answering
    return replayed


def profile_replay(events: int) -> None:
    """cProfile of 30 loads of (c), by own time: where a load as of a version goes."""
    app = Bench(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    contract = ten_thousand_events(app, events)
    rng = random.Random(5)
    versions = [rng.randrange(2, contract.version + 1) for _ in range(30)]
    profiler = cProfile.Profile()
    profiler.enable()
    for version in versions:
        load_as_of(app, contract.id, version)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def measure_replay(repeat: int, events: int) -> dict[str, Any]:
    app = Bench(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    began = time.perf_counter()
    contract = ten_thousand_events(app, events)
    built = time.perf_counter() - began
    rng = random.Random(5)
    versions = [rng.randrange(2, contract.version + 1) for _ in range(repeat)]
    fast = app.mapper.transcoder
    plain = JSONTranscoder()
    app.register_transcodings(plain)
    assert app.snapshots is not None
    snapshot_mapper = app.snapshots.mapper
    snapshot_transcoder = snapshot_mapper.transcoder
    medians = {}
    for name, transcoder in (("fast", fast), ("baseline", plain)):
        app.mapper.transcoder = transcoder  # the events'
        snapshot_mapper.transcoder = snapshot_transcoder if name == "fast" else plain
        times, cpu = [], []
        for version in versions:
            started, started_cpu = time.perf_counter(), time.process_time()
            replayed = load_as_of(app, contract.id, version)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            assert replayed == version
        medians[name] = statistics.median(times) * 1000
        medians[f"{name}_cpu"] = statistics.median(cpu) * 1000  # steadier on a shared machine
        slowest = max(range(len(versions)), key=times.__getitem__)
        medians[f"{name}_slowest"] = times[slowest] * 1000
        medians[f"{name}_slowest_version"] = versions[slowest]
    app.mapper.transcoder, snapshot_mapper.transcoder = fast, snapshot_transcoder
    last: Any = app.repository.get(contract.id)
    assert last.conflicts == contract.conflicts
    snapshot = next(iter(app.snapshots.get(contract.id, desc=True, limit=1)))  # sealed
    assert snapshot.originator_version > contract.version - 100, "the seal check failed"
    stored = next(iter(app.snapshots.recorder.select_events(contract.id, desc=True, limit=1)))
    size = len(stored.state)  # as stored: sealed
    active = len(contract.active_directives())
    medians.update(floor(snapshot_transcoder, bytes(stored.state), last, repeat))
    print(f"(c) load a {contract.version}-event contract ({active} active directives at the "
          f"end, {len(contract.conflicts)} conflicts, last snapshot {size / 1e6:.1f} MB; built "
          f"in {built:.0f} s) as of a random version, snapshots every 100: median "
          f"{medians['fast']:.1f} ms (bar 50 ms; CPU {medians['fast_cpu']:.1f} ms); stdlib "
          f"JSONTranscoder {medians['baseline']:.1f} ms (CPU {medians['baseline_cpu']:.1f} ms)",
          flush=True)
    print(f"    floor: decoding the last snapshot and freeing it {medians['decode']:.1f} ms; "
          f"indexing it for the fold {medians['index']:.1f} ms; ranking its {active} active "
          f"directives {medians['rank']:.1f} ms", flush=True)
    return {**medians, "events": contract.version, "active": active,
            "conflicts": len(contract.conflicts), "snapshot_mb": size / 1e6}


def floor(transcoder: Transcoder, stored: bytes, last: ServiceContract,
          repeat: int) -> dict[str, float]:
    """Three parts a load of the last versions pays whatever else it does, each alone:
    decoding the last snapshot's bytes into Python objects and freeing them (nothing applied,
    nothing indexed); indexing its directives and conflicts for the conflict fold (the
    tracker's build, which the first event applied after a snapshot pays); and ranking the
    contract's active directives."""
    def decode_and_free() -> None:
        with collection_paused():
            state = transcoder.decode(stored)
            del state

    def index() -> None:
        with collection_paused():
            tracker = ConflictTracker(str(last.id), last.terms, last.directives.values(),
                                      last.conflicts)
            del tracker

    last.weekly_load()  # (builds its tracker: the ranking reads its active directives)
    return {"decode": median_ms(decode_and_free, repeat), "index": median_ms(index, repeat),
            "rank": median_ms(lambda: last.priority_view(REFERENCE), repeat)}


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "domain", "workflows", "bench"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    state = " (with uncommitted changes)" if dirty else ""
    return (f"Machine: {os.cpu_count()} cores, `{' '.join(platform.uname())}`, Python "
            f"{platform.python_version()}, commit `{commit}{state}`.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="profile (a) and stop")
    parser.add_argument("--only-detection", action="store_true",
                        help="measure (a) only, print it and stop (writes nothing)")
    parser.add_argument("--profile-replay", action="store_true",
                        help="profile (c), 30 loads of a 10,000-event contract, and stop")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and a 3,000-event contract for (c)")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--events", type=int, help="events of the replayed contract")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    if args.profile:
        profile_detection()
        return
    if args.profile_replay:
        profile_replay(args.events or 10_000)
        return
    repeat = args.repeat or (7 if args.quick else 21)
    if args.only_detection:
        measure_detection(repeat)
        return
    events = args.events or (3_000 if args.quick else 10_000)
    detected = measure_detection(repeat)
    issued = measure_issue(repeat * 10)
    replayed = measure_replay(repeat * 2, events)
    verdict = lambda ok: "meets" if ok else "MISSES"  # noqa: E731
    rows = [
        (f"detection + ranking, {detected['ranked']:,} active directives "
         f"({detected['conflicts']} conflicts)", f"{detected['full']:.1f} ms", "≤ 100 ms",
         verdict(detected["full"] <= 100)),
        ("baseline: building the `ContractState` alone", f"{detected['baseline']:.1f} ms", "",
         f"{detected['full'] / detected['baseline']:.1f} × the baseline"),
        ("one more directive into the 5,000-directive contract (command + fold)",
         f"{issued['median']:.2f} ms", "", f"{issued['small']:.2f} ms on 200 directives"),
        (f"state, conflicts and priorities of a {replayed['events']:,}-event contract as of a "
         f"random version (snapshots every 100)",
         f"{replayed['fast']:.1f} ms", "", ""),
        (f"the slowest of those versions ({replayed['fast_slowest_version']:,}: the bar is "
         f"for any version)", f"{replayed['fast_slowest']:.1f} ms", "≤ 50 ms (10,000 events)",
         verdict(replayed["fast_slowest"] <= 50) if replayed["events"] >= 10_000
         else "not the bar's size"),
        (f"that contract's last snapshot ({replayed['active']:,} active directives, "
         f"{replayed['conflicts']:,} conflicts)", f"{replayed['snapshot_mb']:.2f} MB",
         "≤ 5 MB", verdict(replayed["snapshot_mb"] <= 5) if replayed["events"] >= 10_000
         else "not the bar's size"),
        ("floor, part 1: decoding that snapshot into Python objects and freeing them, "
         "alone", f"{replayed['decode']:.1f} ms", "", ""),
        ("floor, part 2: indexing its directives and conflicts for the conflict fold "
         "(the tracker's build), alone", f"{replayed['index']:.1f} ms", "", ""),
        (f"floor, part 3: ranking its {replayed['active']:,} active directives, alone",
         f"{replayed['rank']:.1f} ms", "",
         f"parts 1-3: {replayed['decode'] + replayed['index'] + replayed['rank']:.1f} ms"),
        ("baseline: the same loads with `eventsourcing`'s `JSONTranscoder` (events and "
         "snapshots)", f"{replayed['baseline']:.1f} ms", "",
         f"{replayed['baseline'] / replayed['fast']:.1f} × slower"),
    ]
    table = "\n".join(["| measure | median | bar | |", "|---|---|---|---|",
                       *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)])
    text = f"""## Detection and replay (`bench/detection.py{' --quick' if args.quick else ''}`)

{machine()}  Medians of {repeat} runs for detection, {repeat * 10} for the command,
{repeat * 2} random versions for replay, in one process.

{table}
"""
    write_section(args.out, "detection", text)
    if args.json:  # for bench/suite.py
        args.json.write_text(json.dumps({"rows": rows}, ensure_ascii=False), "utf-8")


if __name__ == "__main__":
    main()
