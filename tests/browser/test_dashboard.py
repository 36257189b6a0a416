"""The dashboard in a real browser (Debian's Chromium) against a real ``needle up --demo``.

What the pages show is checked against what the API answers for the same key,
so a test fails when a page shows something else than the application says.
The test that decides a conflict runs last: it changes the demo's state.

Long (~420 lines) because its tests share the one demo stack and the order that keeps the
deciding test last; the rest of the dashboard in a browser lives beside it
(``test_contract_history.py``, ``test_who_may_ask.py``).

A contract's past (history, diff, what-if) is ``test_contract_history.py``.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from domain.directives import Basis
from workflows.i18n import show_weeks

from .conftest import (
    JNZ,
    NARROW,
    WIDE,
    YOUTH,
    Contexts,
    DemoStack,
    assert_accessible_basics,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.stack

BUREAU = "海珠区民政局"  # haizhu-civil-affairs, level 2 of the youth contract's chain


def open_board_conflicts(stack: DemoStack, role: str, org: str) -> list[dict[str, object]]:
    with stack.api(role, org) as client:
        items: list[dict[str, object]] = client.get("/v1/conflicts").json()["items"]
    return items


@pytest.mark.parametrize(("role", "org"), [
    ("supervisor", "gz-swa"),
    ("resolver", "qichuang"),
    ("stakeholder", "haizhu-civil-affairs"),
    ("admin", "threadneedle"),
])
def test_each_role_sees_its_open_conflicts_in_chinese_then_in_english(
    demo_stack: DemoStack, contexts: Contexts, role: str, org: str,
) -> None:
    # given the open conflicts this key may read, as the API lists them
    expected = open_board_conflicts(demo_stack, role, org)
    assert expected

    # when the person signs in (a Chinese browser) and looks at the board
    page = sign_in(contexts(), demo_stack.key(role, org))

    # then the board lists exactly those conflicts, labelled in Chinese
    rows = page.locator("#board-live tbody tr")
    expect(rows).to_have_count(len(expected))
    expect(page.locator("h1")).to_have_text("未决冲突")
    shown_codes = sorted(rows.locator("td:first-child").all_inner_texts())
    assert shown_codes == sorted(str(item["contract_code"]) for item in expected)
    if any(item["kind"] == "contradiction" for item in expected):
        expect(page.locator("#board-live")).to_contain_text("要求矛盾")
    assert_accessible_basics(page)
    if role == "supervisor":
        # and the explanations name directives as their issuers wrote them, not by key
        board = page.locator("#board-live")
        expect(board).to_contain_text("海幢街道办事处的“抽调社工配合创文迎检工作”（80小时）")
        expect(board).not_to_contain_text("campaign.city_inspection_support")
        screenshot(page, "board-zh")
        # and the kind filter keeps exactly the contradictions
        page.get_by_label("类型").select_option("contradiction")
        page.get_by_role("button", name="筛选").click()
        contradictions = [i for i in expected if i["kind"] == "contradiction"]
        expect(rows).to_have_count(len(contradictions))
        assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.kind)")) == {"contradiction"}
        page.get_by_label("类型").select_option("")
        page.get_by_label("层级").select_option("1")
        page.get_by_role("button", name="筛选").click()
        expect(rows).to_have_count(len([i for i in expected if i["level"] == 1]))
        page.goto("/ui/")

    # and the language switch turns the same board into English
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Open conflicts")
    expect(page.locator("#board-live tbody tr")).to_have_count(len(expected))
    if any(item["kind"] == "contradiction" for item in expected):
        expect(page.locator("#board-live")).to_contain_text("Contradiction")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_an_english_browser_gets_english_and_a_narrow_screen_gets_a_usable_board(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given a phone-sized browser that prefers English
    context = contexts(viewport=NARROW, locale="en-GB")

    # when its user signs in with the keyboard only
    page = context.new_page()
    page.goto("/ui/")
    page.keyboard.press("Tab")  # the skip link first
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "key":
            break
    page.keyboard.type(demo_stack.key("supervisor", "gz-swa"))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/ui/login" not in url)

    # then the board is in English, fits 390 px and keeps every control labelled
    expect(page.locator("h1")).to_have_text("Open conflicts")
    expect(page.locator("#board-live tbody tr").first).to_be_visible()
    assert_accessible_basics(page)
    screenshot(page, "board-390-en")


def test_a_street_office_sees_who_overrode_its_request_and_why(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given the decision that merged the two streets' weekly reports, as the API tells it
    with demo_stack.api("stakeholder", "chigang-street") as client:
        [decided] = [c for c in client.get(f"/v1/contracts/{YOUTH}/conflicts",
                                           params={"status": "resolved"}).json()["conflicts"]
                     if c["kind"] == "duplicate"]
        mine = {d["id"] for d in client.get(f"/v1/contracts/{YOUTH}").json()["directives"]
                if d["issuer"] == "chigang-street"}
    [overridden] = mine & set(decided["resolution"]["overridden"])

    # when Chigang street's office opens its directives
    page = sign_in(contexts(), demo_stack.key("stakeholder", "chigang-street"),
                   "/ui/organisation")

    # then its directive reads as overridden, by whom, how and why, linked to the conflict
    expect(page.get_by_role("heading", level=1)).to_have_text("赤岗街道办事处的指令")
    row = page.locator(f"tr[data-directive='{overridden}']")
    expect(row).to_contain_text("推翻")
    decision = row.locator(f".decision[data-conflict='{decided['id']}']")
    expect(decision).to_contain_text("重复要求 · 由启创社会工作发展协会决定：合并")
    expect(decision).to_contain_text("本指令被推翻")
    expect(decision).to_contain_text(decided["resolution"]["rationale"])
    assert_accessible_basics(page)
    screenshot(page, "organisation-decided-zh")


def test_the_provider_sees_every_directive_on_its_contracts_in_the_rankings_order(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given the youth zone's ranking and directives, as the API tells them to its provider
    with demo_stack.api("resolver", "qichuang") as client:
        ranked = [p["directive_id"] for p in client.get(
            f"/v1/contracts/{YOUTH}/priorities").json()["priorities"]]
        directives = client.get(f"/v1/contracts/{YOUTH}").json()["directives"]
    assert len(ranked) > 3 and {d["issuer"] for d in directives} != {"qichuang"}

    # when qichuang's director opens 指令 (before, it said "no directives": qichuang issues none)
    page = sign_in(contexts(), demo_stack.key("resolver", "qichuang"), "/ui/organisation")

    # then the youth contract lists every directive placed on it, the ranked ones first in
    # the ranking's order, each with the organisation that issued it
    section = page.locator(f"section[aria-labelledby='h-{YOUTH}']")
    expect(section).to_contain_text("启创社会工作发展协会承接本合同")
    rows = section.locator("tbody tr")
    expect(rows).to_have_count(len(directives))
    shown = rows.evaluate_all("rs => rs.map(r => r.dataset.directive)")
    assert shown[:len(ranked)] == ranked
    expect(rows.first.locator("td").nth(3)).to_have_text("1")  # issuer, directive, status, rank
    expect(section).to_contain_text("海幢街道办事处")
    assert_accessible_basics(page)
    screenshot(page, "organisation-provider-zh")


def test_an_admin_redelivers_a_webhook_message_and_sends_a_test_message(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given the demo's subscription (the printing receiver) and a delivered message of it
    page = sign_in(contexts(), demo_stack.key("admin", "threadneedle"), "/ui/webhooks")
    page.locator("table a").first.click()
    delivered = page.locator("tr[data-status=delivered]").first
    expect(delivered).to_be_visible(timeout=30_000)
    message_id = delivered.get_attribute("data-message")
    attempts_before = page.locator(f"tr[data-message='{message_id}'] ol.attempts li").count()

    # when the admin redelivers it
    page.locator(f"tr[data-message='{message_id}']").get_by_role("button").click()

    # then the page says so, and the message is sent again: one more attempt in the log
    expect(page.get_by_role("status")).to_contain_text("重新发送")
    deadline = time.monotonic() + 45
    while True:
        attempts = page.locator(f"tr[data-message='{message_id}'] ol.attempts li").count()
        status = page.locator(f"tr[data-message='{message_id}']").get_attribute("data-status")
        if attempts > attempts_before and status == "delivered":
            break
        assert time.monotonic() < deadline, "the redelivered message was never sent again"
        time.sleep(1)
        page.reload()
    assert_accessible_basics(page)
    screenshot(page, "webhook-log-zh")

    # and a test message goes out through the same outbox
    page.get_by_role("button", name="发送测试消息").click()
    expect(page.get_by_role("status")).to_contain_text("测试消息")
    test_row = page.locator("tr", has_text="webhook.test").first
    expect(test_row).to_be_visible()
    deadline = time.monotonic() + 45
    while page.locator("tr", has_text="webhook.test").first.get_attribute(
            "data-status") != "delivered":
        assert time.monotonic() < deadline, "the test message was never delivered"
        time.sleep(1)
        page.reload()


def test_security_basics_hold(demo_stack: DemoStack, contexts: Contexts) -> None:
    # given a Liwan street's stakeholder key, which may not read the Haizhu contract
    context = contexts()
    page = sign_in(context, demo_stack.key("stakeholder", "jinhua-street"))

    # then the session cookie is HttpOnly and SameSite=Strict
    cookie = next(c for c in context.cookies() if c["name"] == "needle_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"

    # and a page about the contract it may not read is a 404, as in the API
    answer = page.goto(f"/ui/contracts/{YOUTH}")
    assert answer is not None and answer.status == 404
    answer = page.goto(f"/ui/contracts/{YOUTH}/history")
    assert answer is not None and answer.status == 404

    # and, signed in as the right resolver, a decision posted without its CSRF token is
    # refused and records nothing
    resolver = contexts()
    page = sign_in(resolver, demo_stack.key("resolver", "haizhu-youth-league"))
    with demo_stack.api("supervisor", "gz-swa") as client:
        version = client.get(f"/v1/contracts/{YOUTH}").json()["version"]
        conflict = next(c for c in client.get(f"/v1/contracts/{YOUTH}/conflicts").json()[
            "conflicts"] if c["status"] == "open")
        refused = page.request.post(
            f"/ui/contracts/{YOUTH}/conflicts/{conflict['id']}/resolve",
            form={"outcome": "deferred", "rationale": "没有令牌"}, max_redirects=0)
        assert refused.status == 403
        assert client.get(f"/v1/contracts/{YOUTH}").json()["version"] == version

    # and signing out ends the session: the board asks for a key again
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(lambda url: "/ui/login" in url)
    page.goto("/ui/")
    assert "/ui/login" in page.url


def test_the_contract_page_draws_the_weekly_load_with_its_over_capacity_run(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given the youth contract's open over-capacity run, as the API tells it, and the
    # directives it leaves only part of their hours
    with demo_stack.api("supervisor", "gz-swa") as client:
        runs = [c["details"]["weeks"] for c in client.get(
            f"/v1/contracts/{YOUTH}/conflicts").json()["conflicts"]
            if c["kind"] == "over_capacity" and c["status"] == "open"]
        partial = [p for p in client.get(f"/v1/contracts/{YOUTH}/priorities").json()[
            "priorities"] if p["schedule"]["outcome"] == "partial"]
        asked = {d["id"]: d["hours_per_week"]
                 for d in client.get(f"/v1/contracts/{YOUTH}").json()["directives"]}
    assert runs and partial

    # when the supervisor opens the contract
    page = sign_in(contexts(), demo_stack.key("supervisor", "gz-swa"), f"/ui/contracts/{YOUTH}")

    # then ECharts (served by the server) draws the chart, and the run is named by its dates
    expect(page.locator("#load-chart svg")).to_be_visible()
    load = page.locator("section[aria-labelledby=h-load]")
    for weeks in runs:
        expect(load).to_contain_text(show_weeks(weeks[0], weeks[-1], "zh"))
    # and it draws the load as the domain counts it: over capacity in the run's weeks only
    drawn = json.loads(page.locator("#load-data").text_content() or "{}")
    assert drawn["over"] == [week for weeks in runs for week in weeks]
    # and a partial grant reads against what was asked, as its leanest week's (a bare "0.0"
    # read as nothing granted at all)
    for entry in partial:
        row = f"table.ranking tr[data-directive='{entry['directive_id']}']"
        cell = page.locator(f"{row} td.granted")
        expect(cell).to_have_text(f"{entry['schedule']['hours_granted']:g} / "
                                  f"{asked[entry['directive_id']]:g}（最少的一周）")
    # and the directives' bases are named in Chinese words, not by their API values
    listed = page.locator("section[aria-labelledby=h-directives]")
    expect(listed).to_contain_text("购买方要求")
    assert not {basis.value for basis in Basis} & set(listed.inner_text().split())
    # and a conflict's precedent reads in Chinese punctuation: who decided, at which version
    expect(page.locator("ul.conflicts .precedents").first).to_contain_text(
        "先例：合并（启创社会工作发展协会，第 10 版）")
    assert_accessible_basics(page)
    page.locator("section[aria-labelledby=h-load]").scroll_into_view_if_needed()
    screenshot(page, "contract-load-zh")

    # and a directive resting on the contract shows its citation beside its basis
    page.goto(f"/ui/contracts/{JNZ}")
    cited = page.locator("section[aria-labelledby=h-directives] tr", has_text="合同条款")
    expect(cited.locator(".citation")).to_contain_text("江南中街长者日间服务中心购买服务合同》第五条")

    # and Liwan's chart counts nothing of the blocked demolition and census work, so no
    # week of it is over capacity (before, every week was drawn red above the line)
    page.goto("/ui/contracts/LW-PILOT-2008")
    drawn = json.loads(page.locator("#load-data").text_content() or "{}")
    assert drawn["over"] == [] and max(drawn["load"]) <= drawn["capacity"]
    expect(page.locator("section[aria-labelledby=h-load]")).to_contain_text(
        "小时。没有未决的超负荷时段")  # (no space after a Chinese full stop)
    # and the provider's classification of the census names its tag in words
    expect(page.locator(".classification")).to_contain_text("普查统计 · 披露个人信息")


def test_the_board_updates_by_itself_when_a_conflict_opens(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given a supervisor looking at the board
    page = sign_in(contexts(), demo_stack.key("supervisor", "gz-swa"))
    rows = page.locator("#board-live tbody tr")
    before = rows.count()
    page.evaluate("window.stillTheSamePage = true")

    # when two street offices ask for different closing times of the youth zone
    for street, time_asked in (("haichuang-street", "21:00"), ("chigang-street", "22:00")):
        with demo_stack.api("stakeholder", street) as client:
            answer = client.post(f"/v1/contracts/{YOUTH}/directives", json={
                "subject": "youth_zone.closing_time", "value": time_asked,
                "summary": f"青年地带{time_asked}关门", "basis": "purchaser_request",
                "hours_per_week": 0, "people_affected": 40, "vulnerability": 0.2})
            assert answer.status_code == 201, answer.text

    # then the new contradiction appears on the board without the page being reloaded
    expect(rows).to_have_count(before + 1, timeout=30_000)
    expect(page.locator("#board-live")).to_contain_text("21:00")
    assert page.evaluate("window.stillTheSamePage") is True


def test_the_right_resolver_decides_and_the_wrong_one_is_refused(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given the youth contract's contradiction, escalated to level 1 (the Youth League)
    with demo_stack.api("supervisor", "gz-swa") as client:
        conflict = next(c for c in client.get(f"/v1/contracts/{YOUTH}/conflicts").json()[
            "conflicts"] if c["kind"] == "contradiction" and c["status"] == "open"
            and c["details"].get("subject") == "reporting.weekly")
        version = client.get(f"/v1/contracts/{YOUTH}").json()["version"]
    assert conflict["level"] == 1
    url = f"/ui/contracts/{YOUTH}/conflicts/{conflict['id']}"

    # when the provider (level 0) tries to decide it from the conflict's page
    page = sign_in(contexts(), demo_stack.key("resolver", "qichuang"), url)
    expect(page.locator(".decide .warning")).to_be_visible()
    page.get_by_label("结果", exact=True).select_option("deferred")
    page.get_by_label("理由", exact=True).fill("先暂缓，等团区委协调")
    with page.expect_response(lambda r: r.url.endswith("/resolve")) as posted:
        page.get_by_role("button", name="记录决定").click()

    # then it is refused (403), in words, and nothing is recorded
    assert posted.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("你的单位或角色无权执行此操作。")
    with demo_stack.api("supervisor", "gz-swa") as client:
        assert client.get(f"/v1/contracts/{YOUTH}").json()["version"] == version

    # when the Youth League opens it: the page shows beforehand whom it may override
    page = sign_in(contexts(), demo_stack.key("resolver", "haizhu-youth-league"), url)
    bureau = page.locator("table.authority tr[data-issuer=haizhu-civil-affairs]")
    expect(bureau.locator("td.no")).to_have_text("不能推翻")
    street = page.locator("table.authority tr[data-issuer=haichuang-street]")
    expect(street.locator("td.yes")).to_have_text("可以推翻")
    expect(page.locator("form.resolve label", has_text="海珠区民政局").locator(
        "strong.no")).to_have_text("（本单位无权推翻）")
    # and who joined and left the conflict, version by version, by their summaries
    with demo_stack.api("admin", "threadneedle") as client:
        names = {o["id"]: o["name"] for o in client.get("/v1/organizations").json()["items"]}
        summary = {d["id"]: f"{names[d['issuer']]}的“{d['summary']}”" for d in client.get(
            f"/v1/contracts/{YOUTH}").json()["directives"]}
    changes = page.locator("section[aria-labelledby=h-changes] li")
    expect(changes).to_have_count(len(conflict["member_changes"]))
    for shown, change in zip(changes.all(), conflict["member_changes"], strict=True):
        moved = [f"{word}：{'、'.join(summary[key] for key in change[part])}"
                 for part, word in (("joined", "加入"), ("left", "退出")) if change[part]]
        expect(shown).to_have_text(f"第 {change['version']} 版 · {'；'.join(moved)}")
    assert_accessible_basics(page)
    screenshot(page, "decide-zh")
    page.set_viewport_size(NARROW)  # the decide form works on a phone too
    assert_accessible_basics(page)
    page.set_viewport_size(WIDE)

    # and it overrides the bureau's directive anyway: refused for lack of authority
    decide = page.locator("form.resolve")
    decide.get_by_label("结果", exact=True).select_option("upheld")
    decide.get_by_role("group", name="维持").get_by_label(re.compile("海幢街道办事处")).check()
    decide.get_by_role("group", name="推翻").get_by_label(re.compile(BUREAU)).check()
    decide.get_by_label("理由", exact=True).fill("按街道模板报送")
    with page.expect_response(lambda r: r.url.endswith("/resolve")) as posted:
        decide.get_by_role("button", name="记录决定").click()
    assert posted.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text(
        f"该指令由{BUREAU}发出，其位于上报链第2级：只有第2级或更高层级的决定才能推翻它。")
    screenshot(page, "decide-refused-zh")

    # and when it upholds the bureau and overrides the street's template, it is recorded
    page.goto(url)
    decide = page.locator("form.resolve")
    decide.get_by_label("结果", exact=True).select_option("upheld")
    decide.get_by_role("group", name="维持").get_by_label(re.compile(BUREAU)).check()
    decide.get_by_role("group", name="推翻").get_by_label(re.compile("海幢街道办事处")).check()
    decide.get_by_label("理由", exact=True).fill("统一使用民政统计报表，街道模板数据另行抄送。")
    decide.get_by_role("button", name="记录决定").click()
    expect(page.get_by_role("status")).to_have_text("决定已记录。")
    with demo_stack.api("supervisor", "gz-swa") as client:
        after = client.get(f"/v1/contracts/{YOUTH}/conflicts",
                           params={"version": version + 1, "status": "all"}).json()
    decided = next(c for c in after["conflicts"] if c["id"] == conflict["id"])
    assert decided["status"] == "resolved"
    assert decided["resolution"]["resolver"] == "haizhu-youth-league"
