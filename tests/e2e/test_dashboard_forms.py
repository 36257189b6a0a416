"""The dashboard's forms of SPEC §13 over real HTTP (no browser): the provider classifies,
a party disputes and the resolver corrects, joint-decision organisations approve or
reject, the admin edits the admission list; strangers and finished contracts are refused.
"""

from __future__ import annotations

from conftest import ADMIN_KEY

from .client import Needle, World
from .conftest import LiveServer
from .dashboard_client import form_token, signed_in


def _census(world: World) -> str:
    body = world.as_("street").ok("POST", f"{world.path}/directives", 201, json={
        "subject": "census.youth", "value": "street-form", "summary": "青少年人口普查入户",
        "basis": "purchaser_request", "hours_per_week": 12, "people_affected": 800,
        "task_type": "census"})
    return str(body["id"])


def _directive_of(world: World, directive_id: str) -> dict[str, object]:
    return next(d for d in world.admin.contract(world.contract_id)["directives"]
                if d["id"] == directive_id)


def test_the_provider_classifies_a_directive_from_the_contract_page(
    live_server: LiveServer, world: World,
) -> None:
    census = _census(world)
    page = f"/ui/contracts/{world.contract_id}"
    action = f"{page}/directives/{census}/classify"
    body = {"task_type": "outreach", "add_tags": "door-to-door, youth", "note": "实为外展探访"}

    # the street (the issuer, not the provider) sees no classify form, and is refused
    street = signed_in(live_server, world.keys["street"])
    assert f"{census}/classify" not in street.get(page).text
    version = world.version()
    refused = street.post(action, data={**body, "csrf": form_token(street, page)})
    assert refused.status_code == 403 and world.version() == version

    # the provider sees the form; without its token the post is refused
    provider = signed_in(live_server, world.keys["provider"])
    shown = provider.get(page).text
    assert f"{census}/classify" in shown and "普查统计" in shown
    assert provider.post(action, data=body).status_code == 403
    bad = provider.post(action, data={"task_type": "拆迁", "note": "x",
                                      "csrf": form_token(provider, page)})
    assert bad.status_code == 422 and world.version() == version

    done = provider.post(action, data={**body, "csrf": form_token(provider, page)})
    assert done.status_code == 303, done.text
    classification = _directive_of(world, census)["classification"]
    assert isinstance(classification, dict)
    assert classification["task_type"] == "outreach" and "door-to-door" in classification["tags"]
    shown = provider.get(page).text
    assert "承接机构认定：外展探访" in shown and "实为外展探访" in shown


def test_a_party_disputes_and_the_resolver_corrects_from_the_dashboard(
    live_server: LiveServer, world: World,
) -> None:
    census = _census(world)
    page = f"/ui/contracts/{world.contract_id}"
    action = f"{page}/directives/{census}/dispute"
    body = {"fields": ["people_affected", "hours_per_week"],
            "reason": "江南中街青少年实际不足两百人"}

    # the non-party residents see no dispute form and are refused; no token is refused
    residents = signed_in(live_server, world.keys["residents"])
    assert f"{census}/dispute" not in residents.get(page).text
    version = world.version()
    assert residents.post(action, data={**body, "csrf": form_token(residents, page)}
                          ).status_code == 403
    provider = signed_in(live_server, world.keys["provider"])
    assert f"{census}/dispute" in provider.get(page).text
    assert provider.post(action, data=body).status_code == 403
    assert world.version() == version

    opened = provider.post(action, data={**body, "csrf": form_token(provider, page)})
    assert opened.status_code == 303, opened.text
    conflict_page = opened.headers["location"]
    assert "江南中街青少年实际不足两百人" in provider.get(page).text

    # the resolver's decide form offers `corrected` with inputs for the disputed fields only
    resolver = signed_in(live_server, world.keys["resolver"])
    shown = resolver.get(conflict_page).text
    assert 'value="corrected"' in shown
    assert 'name="correct-people_affected"' in shown and 'name="correct-hours_per_week"' in shown
    assert 'name="correct-basis"' not in shown
    resolve = conflict_page + "/resolve"
    decided = {"outcome": "corrected", "correct-people_affected": "180",
               "rationale": "经民政局核实，江南中街青少年为180人"}
    # a correction of a field nobody disputed is refused (422) and records nothing
    version = world.version()
    wrong = resolver.post(resolve, data={**decided, "correct-basis": "statute",
                                         "csrf": form_token(resolver, conflict_page)})
    assert wrong.status_code == 422 and world.version() == version
    assert resolver.post(resolve, data=decided).status_code == 403
    done = resolver.post(resolve, data={**decided, "csrf": form_token(resolver, conflict_page)})
    assert done.status_code == 303, done.text
    assert _directive_of(world, census)["people_affected"] == 180
    assert "已更正" in resolver.get(conflict_page).text


def test_joint_decision_organisations_approve_or_reject_on_the_conflict_page(
    live_server: LiveServer, admin: Needle,
) -> None:
    from .test_who_may_ask import joint_contract

    world, disputed = joint_contract(admin)
    [census] = [d["id"] for d in admin.contract(world.contract_id)["directives"]]
    world.as_("resolver").ok("POST", f"{world.path}/conflicts/{disputed}/resolution", json={
        "outcome": "upheld", "upheld": [census], "rationale": "按街道数字执行"})
    page = f"/ui/contracts/{world.contract_id}/conflicts/{disputed}"
    action = f"{page}/answer"

    # the provider is not listed: no buttons, and its answer is refused
    provider = signed_in(live_server, world.keys["provider"])
    shown = provider.get(page).text
    assert "按街道数字执行" in shown and action not in shown
    version = world.version()
    assert provider.post(action, data={"approve": "yes", "note": "同意",
                                       "csrf": form_token(provider, page)}).status_code == 403
    street = signed_in(live_server, world.keys["street"])
    assert action in street.get(page).text
    assert street.post(action, data={"approve": "yes", "note": "同意"}).status_code == 403
    # a note is required
    assert street.post(action, data={"approve": "yes", "note": " ",
                                     "csrf": form_token(street, page)}).status_code == 422
    assert world.version() == version

    done = street.post(action, data={"approve": "yes", "note": "街道同意",
                                     "csrf": form_token(street, page)})
    assert done.status_code == 303, done.text
    committee = signed_in(live_server, world.keys["committee"])
    rejected = committee.post(action, data={"approve": "no", "note": "居委会不同意",
                                            "csrf": form_token(committee, page)})
    assert rejected.status_code == 303, rejected.text
    shown = committee.get(page).text
    assert "街道同意" in shown and "居委会不同意" in shown and "已否决" in shown
    assert action not in shown  # nothing pending any more


def test_the_admin_edits_the_admission_list_on_the_contract_page(
    live_server: LiveServer, world: World,
) -> None:
    page = f"/ui/contracts/{world.contract_id}"
    action = f"{page}/admission"
    body = {"org-0": world.street, "kinds-0": ["casework", "community_activity"],
            "org-1": world.provider, "kinds-1": ["*"]}
    street = signed_in(live_server, world.keys["street"])
    assert action not in street.get(page).text
    version = world.version()
    assert street.post(action, data={**body, "csrf": form_token(street, page)}
                       ).status_code == 403
    admin = signed_in(live_server, ADMIN_KEY)
    assert action in admin.get(page).text
    assert admin.post(action, data=body).status_code == 403
    assert world.version() == version
    done = admin.post(action, data={**body, "csrf": form_token(admin, page)})
    assert done.status_code == 303, done.text
    assert world.admin.contract(world.contract_id)["admission"] == [
        {"org": world.street, "task_types": ["casework", "community_activity"]},
        {"org": world.provider, "task_types": ["*"]}]
    assert "个案服务、社区活动" in admin.get(page).text
    english = admin.get(page, headers={"Accept-Language": "en"}).text
    assert "casework, community activities" in english and "any kind of work" in english


def test_section_13_forms_refuse_strangers_with_404_and_a_finished_contract_with_409(
    live_server: LiveServer, world: World,
) -> None:
    census = _census(world)
    page = f"/ui/contracts/{world.contract_id}"
    body = {"fields": ["due"], "reason": "合同已终止"}
    outsider = signed_in(live_server, world.keys["outsider"])
    stranger = outsider.post(f"{page}/directives/{census}/dispute",
                             data={**body, "csrf": form_token(outsider, "/ui/")})
    assert stranger.status_code == 404
    provider = signed_in(live_server, world.keys["provider"])
    token = form_token(provider, page)
    world.admin.ok("POST", f"{world.path}/terminate")
    version = world.version()
    finished = provider.post(f"{page}/directives/{census}/dispute", data={**body, "csrf": token})
    assert finished.status_code == 409 and "合同已终止" not in finished.text
    assert f"{census}/dispute" not in provider.get(page).text
    assert world.version() == version
