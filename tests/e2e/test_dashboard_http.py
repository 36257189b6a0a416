"""The dashboard's sign-in, session, CSRF and access rules over real HTTP (no browser).

The browser tests (``tests/browser``) show the pages work; these pin the
security rules one request at a time, on the e2e live server.  The forms of
SPEC §13 (classify, dispute, correct, approve, admit) are ``test_dashboard_forms.py``.
"""

from __future__ import annotations

import re
from uuid import UUID

import pytest
from conftest import ADMIN_KEY

from .client import Needle, World, directive
from .conftest import LiveServer
from .dashboard_client import browser, form_token, signed_in


def test_signing_in_sets_a_strict_http_only_cookie_and_refuses_bad_keys(
    live_server: LiveServer, world: World,
) -> None:
    client = browser(live_server)
    # the root and the bare /ui send the browser to the dashboard, which asks for a key
    assert client.get("/").headers["location"] == "/ui/"
    to_login = client.get("/ui/contracts/x?version=2")
    assert to_login.status_code == 303
    assert to_login.headers["location"].startswith("/ui/login?next=")

    token = form_token(client, "/ui/login")
    # a wrong key: 401, no cookie
    refused = client.post("/ui/login", data={"key": "ndl_nope", "csrf": token})
    assert refused.status_code == 401 and "needle_session" not in refused.headers.get(
        "set-cookie", "")
    # no sign-in token: 403, even with a good key
    refused = client.post("/ui/login", data={"key": world.keys["street"]})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    # a good key: the cookie is HttpOnly and SameSite=Strict, and next= never leaves the site
    answer = client.post("/ui/login", data={"key": world.keys["street"], "csrf": token,
                                            "next": "https://evil.example/ui/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    cookie = answer.headers["set-cookie"]
    assert "needle_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert world.keys["street"] not in cookie
    page = client.get("/ui/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_tampered_cookie_a_revoked_key_and_signing_out_all_end_the_session(
    live_server: LiveServer, world: World, admin: Needle,
) -> None:
    client = signed_in(live_server, world.keys["residents"])
    cookie = client.cookies["needle_session"]

    # a cookie whose signature does not match is no session
    forged = browser(live_server)
    forged.cookies.set("needle_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert forged.get("/ui/").status_code == 303

    # signing out (with the form's token) ends it; the old cookie no longer works
    token = form_token(client, "/ui/")
    assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
    replay = browser(live_server)
    replay.cookies.set("needle_session", cookie)
    assert replay.get("/ui/").status_code == 303

    # revoking the key ends its sessions at once
    client = signed_in(live_server, world.keys["street"])
    assert client.get("/ui/").status_code == 200
    key_id = str(UUID(hex=world.keys["street"].split("_")[1]))
    admin.ok("DELETE", f"/v1/keys/{key_id}")
    assert client.get("/ui/").status_code == 303


def test_pages_about_a_contract_the_key_may_not_read_are_404(
    live_server: LiveServer, world: World,
) -> None:
    client = signed_in(live_server, world.keys["outsider"])
    base = f"/ui/contracts/{world.contract_id}"
    for path in (base, f"{base}/live", f"{base}/history", f"{base}/at?version=1",
                 f"{base}/diff?from_version=1&to_version=2", f"{base}/conflicts/anything"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "找不到该内容，或你的密钥无权查看。" in answer.text, path  # said in words
        assert 'class="who"' in answer.text, path  # still signed in, with the menu
    # and naming it by its code only redirects to the same 404
    by_code = client.get(f"/ui/contracts/{world.code}")
    assert by_code.status_code == 303 and by_code.headers["location"] == base
    # while a party of the contract sees it, by its code too
    party = signed_in(live_server, world.keys["street"])
    assert party.get(base).status_code == 200
    assert party.get(f"/ui/contracts/{world.code}", follow_redirects=True).status_code == 200
    assert party.get(f"{base}/history").status_code == 200


def test_a_form_without_its_csrf_token_is_refused_and_records_nothing(
    live_server: LiveServer, world: World,
) -> None:
    # given an open conflict: two parties contradict each other
    for issuer in ("street", "residents"):
        world.as_(issuer).ok("POST", f"{world.path}/directives", 201, json=directive(
            subject="centre.closing_time", value={"time": f"1{len(issuer)}:00"}))
    version = world.version()
    conflicts = world.as_("supervisor").ok("GET", f"{world.path}/conflicts",
                                           params={"version": version})["conflicts"]
    conflict = next(c for c in conflicts if c["status"] == "open")
    action = f"/ui/contracts/{world.contract_id}/conflicts/{conflict['id']}/escalate"

    # when the chain's resolver posts the escalation without a token, or with another's
    resolver = signed_in(live_server, world.keys["resolver"])
    missing = resolver.post(action, data={"from_level": "0", "reason": "提请上级"})
    other = signed_in(live_server, world.keys["supervisor"])
    wrong = resolver.post(action, data={"from_level": "0", "reason": "提请上级",
                                        "csrf": form_token(other, "/ui/")})

    # then both are refused and the contract did not move
    assert missing.status_code == 403 and wrong.status_code == 403
    assert world.version() == version
    assert "表单已过期，请刷新页面后再试。" in missing.text  # what a person reads

    # and with its own token the same form is recorded
    token = form_token(resolver, f"/ui/contracts/{world.contract_id}/conflicts/{conflict['id']}")
    done = resolver.post(action, data={"from_level": "0", "reason": "提请上级", "csrf": token})
    assert done.status_code == 303, done.text
    assert world.version() == version + 1


@pytest.mark.parametrize(("headers", "cookie", "heading"), [
    ({}, None, "未决冲突"),
    ({"Accept-Language": "en-GB,en;q=0.9"}, None, "Open conflicts"),
    ({"Accept-Language": "en-GB"}, "zh", "未决冲突"),
    ({}, "en", "Open conflicts"),
])
def test_the_language_follows_the_switch_then_accept_language_then_chinese(
    live_server: LiveServer, world: World, headers: dict[str, str], cookie: str | None,
    heading: str,
) -> None:
    client = signed_in(live_server, world.keys["supervisor"], **headers)
    if cookie is not None:
        switched = client.get(f"/ui/lang/{cookie}", params={"next": "/ui/"})
        assert switched.status_code == 303 and switched.headers["location"] == "/ui/"
    assert f"<h1>{heading}</h1>" in client.get("/ui/").text


def test_a_label_takes_the_colon_of_the_page_s_language(
    live_server: LiveServer, world: World,
) -> None:
    client = signed_in(live_server, world.keys["supervisor"])
    page = f"/ui/contracts/{world.contract_id}"
    assert "第 0 级：" in client.get(page).text and "级: " not in client.get(page).text
    assert client.get("/ui/lang/en", params={"next": "/ui/"}).status_code == 303
    assert "level 0: " in client.get(page).text


def test_a_diff_to_a_version_not_there_yet_is_a_404_page_that_names_the_latest(
    live_server: LiveServer, world: World,
) -> None:
    client = signed_in(live_server, world.keys["supervisor"])
    base = f"/ui/contracts/{world.contract_id}"
    latest = world.version()
    answer = client.get(f"{base}/diff?from_version=1&to_version={latest + 5}")
    assert answer.status_code == 404
    assert f"该合同还没有第{latest + 5}版：最新的是第{latest}版。" in answer.text
    # while the slider's panel, asked past the end, shows the latest version
    panel = client.get(f"{base}/at?version={latest + 5}")
    assert panel.status_code == 200 and f"第 {latest} 版" in panel.text


def test_bad_query_input_is_a_422_page(live_server: LiveServer, world: World) -> None:
    client = signed_in(live_server, world.keys["supervisor"])
    base = f"/ui/contracts/{world.contract_id}"
    assert client.get(f"{base}/history", params={"version": "abc"}).status_code == 422
    assert client.get(f"{base}/history", params={"profile": "bogus"}).status_code == 422
    assert client.get(f"{base}/diff", params={"from_version": "0"}).status_code == 422
    assert client.get("/ui/board/rows", params={"seen": "-1"}).status_code == 422
    assert client.get("/ui/board/rows", params={"seen": "1" * 500}).status_code == 422


def test_the_board_redraws_only_when_the_views_have_moved(
    live_server: LiveServer, world: World,
) -> None:
    client = signed_in(live_server, world.keys["supervisor"])
    board = client.get("/ui/").text
    token = re.search(r'data-token="([0-9.]+)"', board)
    assert token is not None
    unchanged = client.get("/ui/board/rows", params={"seen": token.group(1)})
    assert unchanged.status_code == 204
    moved = client.get("/ui/board/rows", params={"seen": token.group(1) + "9"})
    assert moved.status_code == 200 and 'id="board-live"' in moved.text
    # and so does a contract's live part, by its own partition's position
    contract = client.get(f"/ui/contracts/{world.contract_id}").text
    mine = re.search(r'id="contract-live"[^>]*data-token="([0-9.]+)"', contract)
    assert mine is not None
    path = f"/ui/contracts/{world.contract_id}/live"
    assert client.get(path, params={"seen": mine.group(1)}).status_code == 204
    assert client.get(path, params={"seen": "0.0"}).status_code == 200


def test_operations_are_for_admins_and_supervisors_and_only_admins_rebuild(
    live_server: LiveServer, world: World,
) -> None:
    supervisor = signed_in(live_server, world.keys["supervisor"])
    page = supervisor.get("/ui/operations")
    assert page.status_code == 200 and "contracts" in page.text
    assert "/rebuild" not in page.text
    assert "第三方评估机构 · " in page.text  # the header names the caller's organisation
    # each projection's status reads in Chinese, not as the API's value
    assert re.search(r"<td>(已同步|追赶中|重建中)</td>", page.text)
    assert not re.search(r"<td>(live|catching_up|rebuilding)</td>", page.text)
    # a supervisor's rebuild is refused like the API's (403), before anything starts
    token = form_token(supervisor, "/ui/operations")
    assert supervisor.post("/ui/operations/contracts/rebuild",
                           data={"csrf": token}).status_code == 403
    assert signed_in(live_server, world.keys["street"]).get(
        "/ui/operations").status_code == 403
    admin = signed_in(live_server, ADMIN_KEY)
    assert "/ui/operations/contracts/rebuild" in admin.get("/ui/operations").text


# --- SPEC §13 on the dashboard -----------------------------------------------------------
