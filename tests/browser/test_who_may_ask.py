"""SPEC §13 in a real browser: a party disputes another organisation's directive from the
contract page and lands on the ``disputed`` conflict it opened, as the API lists it.

It runs after ``test_dashboard.py`` (file order) so the screenshots there see the demo as
it was seeded.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from workflows.identities import contract_id_for

from .conftest import NARROW, WIDE, Contexts, DemoStack, assert_accessible_basics, sign_in

pytestmark = pytest.mark.stack

LIWAN = str(contract_id_for("LW-PILOT-2008"))
DEMOLITION = "抽调社工参与旧城改造拆迁谈判"
REASON = "逢源街拆迁谈判每周实际占用远超72小时，且未经居民同意"


def test_a_party_disputes_a_directive_and_sees_the_disputed_conflict(
    demo_stack: DemoStack, contexts: Contexts,
) -> None:
    # given Jinhua's residents, a party of the Liwan pilot, on its contract page
    page = sign_in(contexts(), demo_stack.key("stakeholder", "jinhua-residents"),
                   f"/ui/contracts/{LIWAN}")
    row = page.locator("tbody tr", has_text=DEMOLITION)
    expect(row.locator(".task-type")).to_have_text("中心工作")
    assert_accessible_basics(page)
    page.set_viewport_size(NARROW)  # the forms work on a phone too
    assert_accessible_basics(page)
    page.set_viewport_size(WIDE)

    # when they dispute the street's demolition work: its hours a week
    row.get_by_text("提出异议", exact=True).click()
    row.get_by_label("每周工时").check()
    row.get_by_label("理由").fill(REASON)
    row.get_by_role("button", name="对此指令提出异议").click()

    # then the page is the disputed conflict the API lists, with their reason
    expect(page.locator("h1")).to_contain_text("有争议")
    expect(page.locator(".explanation")).to_contain_text(REASON)
    with demo_stack.api("supervisor", "gz-swa") as client:
        disputed = [c for c in client.get(f"/v1/contracts/{LIWAN}/conflicts").json()[
            "conflicts"] if c["kind"] == "disputed" and REASON in c["explanation"]]
    assert len(disputed) == 1 and page.url.endswith(f"/conflicts/{disputed[0]['id']}")
    assert disputed[0]["details"]["fields"] == ["hours_per_week"]
