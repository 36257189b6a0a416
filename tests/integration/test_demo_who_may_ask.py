"""The demo's SPEC §13 story on a real event store: Liwan's admission list, the provider's
classification of a census dressed as a community activity, the residents' dispute, and
the Jiangnanzhong contract's joint decisions."""

from __future__ import annotations

from collections.abc import Callable

from cli.demo import load_demo
from workflows import contracts
from workflows.identities import BOOTSTRAP_ADMIN, contract_id_for
from workflows.ledger import Ledger
from workflows.settings import Settings


def test_the_demo_tells_who_may_ask_and_who_decides(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    app = Ledger(settings)
    load_demo(app, settings.var_dir)
    liwan = contracts.read_contract(app, BOOTSTRAP_ADMIN, str(contract_id_for("LW-PILOT-2008")))
    by_subject = {d["subject"]: d for d in liwan.directives.values()}
    open_kinds = {(c["kind"], c["details"]["subject"]) for c in liwan.conflicts.values()
                  if c["status"] == "open"}

    # the street offices are admitted for casework and community activities only
    assert {e["org"]: e["task_types"] for e in liwan.terms["admission"]}["fengyuan-street"] == [
        "casework", "community_activity"]
    assert ("not_admitted", "campaign.demolition_negotiation_support") in open_kinds
    assert ("not_admitted", "focus.client_mix") not in open_kinds

    # the census the street called a community activity is classified as a census by the
    # provider: no longer admitted, and the personal data it collects breaks the rule
    census = by_subject["census.youth_population"]
    assert census["task_type"] == "community_activity"
    assert census["classification"]["task_type"] == "census"
    assert census["classification"]["by"] == "datong"
    assert {("not_admitted", "census.youth_population"),
            ("rule_violation", "census.youth_population")} <= open_kinds
    assert ("out_of_scope", "census.youth_population") not in open_kinds  # 金花街道 is 金花街

    # the residents dispute the bureau's head count
    [disputed] = [c for c in liwan.conflicts.values() if c["kind"] == "disputed"]
    assert disputed["status"] == "open" and disputed["level"] == 0
    assert disputed["details"]["disputed_by"] == "jinhua-residents"
    assert liwan.directives[disputed["members"][0]]["issuer"] == "liwan-civil-affairs"
    assert disputed["details"]["fields"] == ["people_affected"]

    # decisions on the Jiangnanzhong contract need the League's and the committee's approval
    elderly = contracts.read_contract(app, BOOTSTRAP_ADMIN,
                                      str(contract_id_for("HZ-JNZ-ELDER-2012")))
    assert elderly.joint_deciders == ["haizhu-youth-league", "jiangnanzhong-rc"]
    assert elderly.version == 4  # terms only: the contract's story is the reader's to tell

    # and loading again records nothing
    assert load_demo(app, settings.var_dir).recorded == 0
    app.close()
