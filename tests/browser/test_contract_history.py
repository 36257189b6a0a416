"""A contract's past in a real browser: the version slider, the diff of two versions and the
ranking under another profile, each checked against what the API replays for the same key.
These run before ``test_dashboard.py``'s last test, which decides a conflict."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import JNZ, YOUTH, Contexts, DemoStack, assert_accessible_basics, screenshot, sign_in

pytestmark = pytest.mark.stack


def test_the_version_slider_shows_the_conflicts_of_that_version(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given a version of the youth contract whose conflicts differ from the latest's
    with demo_stack.api("supervisor", "gz-swa") as client:
        latest = client.get(f"/v1/contracts/{YOUTH}").json()["version"]

        def conflicts_at(version: int) -> set[str]:
            answer = client.get(f"/v1/contracts/{YOUTH}/conflicts",
                                params={"version": version, "status": "all"})
            return {c["id"] for c in answer.json()["conflicts"]}

        now = conflicts_at(latest)
        earlier = next(v for v in range(latest - 1, 0, -1) if conflicts_at(v) != now)
        wanted = conflicts_at(earlier)

    # when a supervisor opens its history and moves the slider there with the keyboard
    page = sign_in(contexts(), demo_stack.key("supervisor", "gz-swa"),
                   f"/ui/contracts/{YOUTH}/history")
    expect(page.locator("#at-version")).to_have_attribute("data-version", str(latest))
    slider = page.get_by_role("slider", name=re.compile("版本"))
    slider.focus()
    for _ in range(latest - earlier):
        page.keyboard.press("ArrowLeft")

    # then the panel shows that version and exactly its conflicts
    expect(page.locator("#at-version")).to_have_attribute("data-version", str(earlier),
                                                          timeout=15_000)
    shown = set(page.locator("#at-version [data-conflict]").evaluate_all(
        "els => els.map(e => e.dataset.conflict)"))
    assert shown == wanted
    expect(page.locator("#version-shown")).to_have_text(str(earlier))
    # and the timeline names its events in Chinese: the first is the drafting
    timeline = page.locator("section[aria-labelledby=h-timeline]")
    expect(timeline.locator("[data-event=Drafted]")).to_have_text("起草合同")
    expect(timeline.locator("[data-event=DirectiveIssued]").first).to_have_text("发出指令")
    assert_accessible_basics(page)
    screenshot(page, "history-slider-zh")


def test_a_diff_of_two_versions_lists_what_the_api_lists(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given what the API says changed between version 1 and the latest
    with demo_stack.api("supervisor", "gz-swa") as client:
        latest = client.get(f"/v1/contracts/{YOUTH}").json()["version"]
        diff = client.get(f"/v1/contracts/{YOUTH}/diff",
                          params={"from_version": 1, "to_version": latest}).json()

    # when the supervisor asks the history page for that diff
    page = sign_in(contexts(), demo_stack.key("supervisor", "gz-swa"),
                   f"/ui/contracts/{YOUTH}/history")
    page.get_by_label("起始版本").fill("1")
    page.get_by_label("结束版本").fill(str(latest))
    page.get_by_role("button", name="显示对比").click()

    # then the diff page lists as many added directives and opened conflicts as the API
    expect(page.locator("h1")).to_contain_text(f"从第 1 版到第 {latest} 版的变化")
    expect(page.locator("#diff .diff-added li")).to_have_count(
        len(diff["directives"].get("added", [])))
    expect(page.locator("#diff .diff-opened li")).to_have_count(
        len(diff["conflicts"].get("opened", [])))
    # and each opened conflict reads as its Chinese explanation, the terms in words
    for item, conflict in zip(page.locator("#diff .diff-opened li").all(),
                              diff["conflicts"]["opened"], strict=True):
        expect(item).to_contain_text(conflict["explanations"]["zh"])
    expect(page.locator("#diff .diff-terms")).to_contain_text("状态：草稿 → 有效")
    assert_accessible_basics(page)
    screenshot(page, "diff-zh")


def test_flipping_the_profile_changes_the_jiangnanzhong_ranking(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given the Jiangnanzhong ranking under the contract's policy and under client_first
    with demo_stack.api("supervisor", "gz-swa") as client:
        policy = client.get(f"/v1/contracts/{JNZ}/priorities").json()
        what_if = client.get(f"/v1/contracts/{JNZ}/priorities",
                             params={"profile": "client_first"}).json()
    first, flipped = policy["priorities"][0]["issuer"], what_if["priorities"][0]["issuer"]
    assert first != flipped  # the demo's point: the residents come first under client_first

    # when the supervisor opens the history and picks 服务对象优先 (client first)
    page = sign_in(contexts(), demo_stack.key("supervisor", "gz-swa"),
                   f"/ui/contracts/{JNZ}/history")
    ranking = page.locator("#at-version table.ranking tbody tr")
    expect(ranking.first).to_have_attribute("data-issuer", first)
    page.get_by_label(re.compile("服务对象优先")).check()

    # then the first-ranked directive is now the residents' one, shown as a what-if
    expect(page.locator("#at-version")).to_have_attribute("data-profile", "client_first")
    expect(ranking.first).to_have_attribute("data-issuer", flipped)
    expect(page.locator("#at-version")).to_contain_text("假设推演")
    screenshot(page, "what-if-zh")
