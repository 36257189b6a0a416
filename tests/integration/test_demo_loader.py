"""The Guangzhou demo loader on a real event store (SQLite, or PostgreSQL in make test-postgres)."""

from __future__ import annotations

import stat
from collections.abc import Callable

from cli.demo import KEYS_FILE, demo_data, load_demo, read_demo_keys
from domain.organisations import Role
from workflows import contracts, directory, history
from workflows.identities import BOOTSTRAP_ADMIN, contract_id_for
from workflows.ledger import Ledger
from workflows.settings import Settings

CODES = ["HZ-YOUTH-2008", "HZ-JNZ-ELDER-2012", "LW-PILOT-2008"]


def test_the_demo_loads_three_active_contracts_with_every_directive(
    make_settings: Callable[..., Settings],
) -> None:
    # given an empty store
    settings = make_settings()
    app = Ledger(settings)

    # when the demo is loaded
    loaded = load_demo(app, settings.var_dir)
    app.close()

    # then a fresh application reading the store sees the three contracts, active,
    # each with the directives of the scenario file, titles and summaries intact
    reader = Ledger(settings)
    scenario = {c["code"]: c for c in demo_data()["contracts"]}
    assert [c.code for c in loaded.contracts] == CODES
    for code in CODES:
        contract = contracts.read_contract(reader, BOOTSTRAP_ADMIN, str(contract_id_for(code)))
        assert contract.status == "active"
        assert contract.terms["title"] == scenario[code]["title"]
        issued = sorted((d["issuer"], d["subject"], d["summary"])
                        for d in contract.directives.values())
        expected = sorted((d["issuer"], d["subject"], d["summary"])
                          for d in scenario[code]["directives"])
        assert issued == expected
    youth = contracts.read_contract(reader, BOOTSTRAP_ADMIN, str(contract_id_for("HZ-YOUTH-2008")))
    assert youth.terms["title"] == "海珠区“青年地带”青少年社会工作服务"
    assert "全体社工参加职业伦理培训，每人每周2小时" in {
        d["summary"] for d in youth.directives.values()}
    reader.close()


def test_each_directive_is_issued_by_its_own_organisations_stakeholder_key(
    make_settings: Callable[..., Settings],
) -> None:
    # given the loaded demo
    settings = make_settings()
    app = Ledger(settings)
    loaded = load_demo(app, settings.var_dir)
    stakeholder_keys = {k.org: k.id for k in loaded.keys if k.role == Role.STAKEHOLDER}

    # when the youth contract's history is read
    events = history.history(app, BOOTSTRAP_ADMIN, str(contract_id_for("HZ-YOUTH-2008")))["events"]

    # then every directive's issuer and actor is the stakeholder key of the issuing org
    issued = [e for e in events if e["type"] == "ServiceContract.DirectiveIssued"]
    assert len(issued) == 7
    for event in issued:
        issuer = event["data"]["issuer"]
        assert event["actor"] == {"org": issuer, "principal": stakeholder_keys[issuer]}
    app.close()


def test_loading_twice_records_nothing_new_and_keeps_the_keys(
    make_settings: Callable[..., Settings],
) -> None:
    # given the demo loaded once
    settings = make_settings()
    app = Ledger(settings)
    first = load_demo(app, settings.var_dir)
    head = app.head_position()

    # when it is loaded again, by a new process's application
    app.close()
    again = Ledger(settings)
    second = load_demo(again, settings.var_dir)

    # then nothing was recorded and the same keys come back
    assert second.recorded == 0
    assert again.head_position() == head
    assert second.keys == first.keys
    assert [(c.code, c.version) for c in second.contracts] == [
        (c.code, c.version) for c in first.contracts]
    again.close()


def test_demo_keys_cover_every_role_authenticate_and_are_kept_private(
    make_settings: Callable[..., Settings],
) -> None:
    # given the loaded demo
    settings = make_settings()
    app = Ledger(settings)
    loaded = load_demo(app, settings.var_dir)

    # then there is an admin, a supervisor, a stakeholder key per stakeholder org and a
    # resolver key per escalation-chain org; each authenticates as what it claims
    data = demo_data()["contracts"]
    stakeholders = {s["org"] for c in data for s in c["stakeholders"]}
    resolvers = {org for c in data for org in c["escalation_chain"]}
    by_role: dict[str, set[str]] = {}
    for key in loaded.keys:
        by_role.setdefault(key.role, set()).add(key.org)
        caller = directory.authenticate(app, key.key)
        assert caller is not None and (caller.org, caller.role.value) == (key.org, key.role)
    assert by_role == {"admin": {"threadneedle"}, "supervisor": {"gz-swa"},
                       "stakeholder": stakeholders, "resolver": resolvers}

    # and the keys file is readable by its owner only
    path = settings.var_dir / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_demo_keys(path) == loaded.keys
    app.close()


def test_keys_kept_from_another_store_are_replaced(
    make_settings: Callable[..., Settings],
) -> None:
    # given a var dir whose keys file was written for another event store
    old = make_settings()
    first_app = Ledger(old)
    first = load_demo(first_app, old.var_dir)
    first_app.close()
    new = make_settings(var_dir=old.var_dir)  # same var dir, fresh store

    # when the demo is loaded into the fresh store
    app = Ledger(new)
    second = load_demo(app, new.var_dir)

    # then every key is new, works, and replaced the old ones in the file
    assert {k.key for k in second.keys}.isdisjoint({k.key for k in first.keys})
    assert all(directory.authenticate(app, k.key) is not None for k in second.keys)
    assert read_demo_keys(new.var_dir / KEYS_FILE) == second.keys
    app.close()


def test_the_youth_contracts_story_merges_the_duplicate_report_and_escalates_the_rest(
    make_settings: Callable[..., Settings],
) -> None:
    # given the loaded demo
    settings = make_settings()
    app = Ledger(settings)
    loaded = load_demo(app, settings.var_dir)
    qichuang = next(k.id for k in loaded.keys if (k.org, k.role) == ("qichuang", "resolver"))
    youth = contracts.read_contract(app, BOOTSTRAP_ADMIN, str(contract_id_for("HZ-YOUTH-2008")))

    # then after the seven directives, qichuang's resolver key (level 0) merged the two
    # streets' identical weekly reports, overriding chigang's, with a Chinese rationale
    events = history.history(app, BOOTSTRAP_ADMIN, str(youth.id))["events"]
    assert [e["type"].rsplit(".", 1)[-1] for e in events[-2:]] == [
        "ConflictResolved", "ConflictEscalated"]
    decided, escalated = events[-2:]
    assert decided["actor"] == escalated["actor"] == {"org": "qichuang", "principal": qichuang}
    by_kind = {(c["kind"], c["status"]): c for c in youth.conflicts.values()
               if c["details"].get("subject") == "reporting.weekly"}
    duplicate = by_kind[("duplicate", "resolved")]
    assert duplicate["resolution"]["outcome"] == "merged"
    assert "合并为一份" in duplicate["resolution"]["rationale"]
    [overridden] = duplicate["resolution"]["overridden"]
    assert youth.directives[overridden]["issuer"] == "chigang-street"
    assert youth.directives[overridden]["status"] == "overridden"

    # and the contradiction left between the street's template and the bureau's form was
    # escalated by hand from qichuang to the Youth League (level 1), with a reason
    contradiction = by_kind[("contradiction", "open")]
    assert contradiction["level"] == 1
    assert youth.terms["escalation_chain"][1] == "haizhu-youth-league"
    assert escalated["data"]["conflict_id"] == contradiction["id"]
    assert "提请团区委协调" in escalated["data"]["reason"]
    assert {youth.directives[m]["issuer"] for m in contradiction["members"]} == {
        "haichuang-street", "haizhu-civil-affairs"}
    app.close()
