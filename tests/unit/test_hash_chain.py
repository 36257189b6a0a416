"""The hash chain: a supervisor can prove that a contract's history was not altered."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.domain import Snapshot

from domain.chain import GENESIS, ChainedAggregate, canonical_json, record_hash, verify_chain
from domain.contract import ServiceContract
from domain.directives import DirectivePatch
from domain.terms import Policy, StakeholderSpec

from .givens import ADMIN_ACTOR, LOW_INCOME_VISITS, WEEKLY_REPORT, actor_of, moment

Events = list[ChainedAggregate.Event]


@pytest.fixture
def history(active_contract: ServiceContract, issue: Callable[..., str]) -> Events:
    """A contract's whole history: drafted, activated, stakeholder, policy, three directives."""
    active_contract.add_stakeholder(
        StakeholderSpec(org="huazhou-street"), actor=ADMIN_ACTOR, at=moment("2008-03-10")
    )
    active_contract.change_policy(
        Policy.model_validate({"profile": "client_first"}),
        actor=ADMIN_ACTOR, at=moment("2008-03-11"),
    )
    report = issue(active_contract, "haichuang-street", WEEKLY_REPORT, name="report")
    visits = issue(active_contract, "haizhu-civil-affairs", LOW_INCOME_VISITS, name="visits")
    active_contract.amend_directive(
        visits, DirectivePatch.model_validate({"hours_per_week": 30}),
        actor=actor_of("haizhu-civil-affairs"), at=moment("2008-06-05"),
    )
    active_contract.withdraw_directive(
        report, actor=actor_of("haichuang-street"), at=moment("2008-06-06")
    )
    events: Events = active_contract.collect_events()
    return events


def tampered(event: ChainedAggregate.Event, **changes: Any) -> ChainedAggregate.Event:
    """The same event with some of its stored fields changed (what an attacker could do)."""
    return dataclasses.replace(event, **changes)


def replay(events: Events) -> ServiceContract:
    contract = None
    for event in events:
        contract = event.mutate(contract)
    assert isinstance(contract, ServiceContract)
    return contract


def test_every_event_carries_its_actor_and_the_previous_hash(history: Events) -> None:
    # given a history of eight events, then each names who acted and links to the one before
    assert len(history) == 8
    assert history[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(history):
        assert after.prev_hash == before.hash
    for event in history:
        assert set(event.actor) == {"org", "principal"}
        assert event.hash == event.expected_hash()
    assert [e.actor["org"] for e in history[-3:]] == [
        "haizhu-civil-affairs", "haizhu-civil-affairs", "haichuang-street",
    ]


def test_an_untouched_history_verifies(history: Events) -> None:
    # when the chain is verified, then it holds and its head is the last event's hash
    report = verify_chain(history)
    assert report.verified
    assert report.events == 8
    assert report.head == history[-1].hash
    assert report.first_broken_version is None


def test_a_history_whose_data_was_altered_fails(history: Events) -> None:
    # given the bureau's directive rewritten after the fact to demand 4.5 hours, not 45
    issued = history[5]
    assert issued.type_name() == "ServiceContract.DirectiveIssued"
    forged = tampered(issued, data={**issued.data, "hours_per_week": 4.5})

    # when the chain is verified, then it fails at that version, saying why
    report = verify_chain([*history[:5], forged, *history[6:]])
    assert not report.verified
    assert report.first_broken_version == issued.originator_version
    assert report.reason is not None and "content" in report.reason


@pytest.mark.parametrize(
    "change",
    [
        {"actor": {"org": "haizhu-gov", "principal": "someone-else"}},
        {"timestamp": moment("2008-06-01")},
        {"originator_version": 99},
    ],
)
def test_altering_who_when_or_where_also_fails(history: Events, change: dict[str, Any]) -> None:
    forged = tampered(history[3], **change)
    assert not verify_chain([*history[:3], forged, *history[4:]]).verified


def test_rehashing_an_altered_event_breaks_the_link_from_the_next(history: Events) -> None:
    # given an altered event whose own hash the forger recomputed
    original = history[4]
    data = {**original.data, "value": {"format": "forged"}}
    forged = tampered(original, data=data, hash=record_hash(
        type_name=original.type_name(), aggregate_id=original.originator_id,
        version=original.originator_version, at=original.timestamp,
        actor=original.actor, data=data, prev_hash=original.prev_hash,
    ))

    # when verified, then the event after it no longer links to it
    report = verify_chain([*history[:4], forged, *history[5:]])
    assert not report.verified
    assert report.first_broken_version == history[5].originator_version
    assert report.reason is not None and "prev_hash" in report.reason


def test_a_removed_event_breaks_the_chain(history: Events) -> None:
    report = verify_chain([*history[:3], *history[4:]])
    assert not report.verified
    assert report.first_broken_version == history[4].originator_version


def test_a_broken_link_fails_even_if_the_hash_is_recomputed(history: Events) -> None:
    assert not verify_chain([tampered(history[0], prev_hash="f" * 64), *history[1:]]).verified


def test_the_hash_is_the_sha256_of_the_canonical_record(history: Events) -> None:
    # the recipe, spelled out, so that an outside auditor can recompute it by hand
    event = history[1]
    record = {
        "type": "ServiceContract.Activated",
        "aggregate_id": str(event.originator_id),
        "version": 2,
        "at": "2008-03-03T09:00:00+08:00",
        "actor": ADMIN_ACTOR,
        "data": {},
        "prev_hash": history[0].hash,
    }
    assert event.hash == hashlib.sha256(canonical_json(record).encode()).hexdigest()


def test_canonical_json_sorts_keys_and_keeps_chinese_as_written() -> None:
    assert canonical_json({"b": 1, "a": "海珠"}) == '{"a":"海珠","b":1}'


def test_replay_without_snapshots_reaches_the_same_head_and_state(
    active_contract: ServiceContract, history: Events
) -> None:
    # when the history is replayed event by event from nothing
    replayed = replay(history)

    # then the replayed contract has the same head hash, version and state
    assert replayed.head_hash == active_contract.head_hash == history[-1].hash
    assert replayed.version == active_contract.version
    assert replayed.as_dict() == active_contract.as_dict()


def test_replay_to_a_past_version_shows_the_past(history: Events) -> None:
    # when only the first six events are replayed (before the amendment and withdrawal)
    past = replay(history[:6])

    # then both directives are active, the visits still at 45 hours
    assert past.version == 6
    assert [d["hours_per_week"] for d in past.active_directives()] == [20, 45]
    assert past.head_hash == history[5].hash


def test_a_snapshot_restores_the_head_hash(
    active_contract: ServiceContract, history: Events
) -> None:
    # given a snapshot of the contract, when it is restored
    restored = Snapshot.take(active_contract).mutate(None)

    # then the next event still chains onto the right hash
    assert restored.head_hash == history[-1].hash
    restored.transition("suspend", actor=ADMIN_ACTOR, at=moment("2008-07-01"))
    (suspended,) = restored.collect_events()
    assert suspended.prev_hash == history[-1].hash
    assert verify_chain([*history, suspended]).verified


def test_an_empty_history_verifies_as_nothing() -> None:
    report = verify_chain([])
    assert (report.verified, report.events, report.head) == (True, 0, GENESIS)


def test_a_snapshot_stores_records_once_and_restores_them_exactly(
    active_contract: ServiceContract, history: Events
) -> None:
    # given a contract with two directives, when a snapshot of it is taken
    snapshot = ServiceContract.Snapshot.take(active_contract)

    # then its directive records are listed in order, each holding its id once
    stored = snapshot.state["directives"]
    assert [record["id"] for record in stored] == list(active_contract.directives)

    # and the restored contract holds the same records, fields in the same order
    restored = snapshot.mutate(None)
    assert restored.directives == active_contract.directives
    assert restored.conflicts == active_contract.conflicts
    for key, record in active_contract.directives.items():
        assert list(restored.directives[key]) == list(record)
    assert restored.head_hash == history[-1].hash


def test_a_snapshot_keeps_whole_a_record_whose_id_is_not_its_first_field(
    active_contract: ServiceContract, history: Events
) -> None:
    # given a record stored with its id elsewhere than first (as no applier writes it)
    key, record = next(iter(active_contract.directives.items()))
    active_contract.directives[key] = {**{k: v for k, v in record.items() if k != "id"}, "id": key}

    # when a snapshot is taken and restored, then that record comes back unchanged
    snapshot = ServiceContract.Snapshot.take(active_contract)
    assert snapshot.mutate(None).directives[key] == active_contract.directives[key]
    assert list(snapshot.mutate(None).directives[key]) == list(active_contract.directives[key])


def test_a_snapshot_stored_keyed_by_id_still_loads(
    active_contract: ServiceContract, history: Events
) -> None:
    # given a snapshot as they were stored before: records keyed by id, without their ids
    snapshot = ServiceContract.Snapshot.take(active_contract)
    for name in ("directives", "conflicts"):
        snapshot.state[name] = {record["id"]: {k: v for k, v in record.items() if k != "id"}
                                for record in snapshot.state[name]}

    # when it is restored, then it holds the same records, fields in the same order
    restored = snapshot.mutate(None)
    assert restored.directives == active_contract.directives
    assert restored.conflicts == active_contract.conflicts
    for key, record in active_contract.directives.items():
        assert list(restored.directives[key]) == list(record)
