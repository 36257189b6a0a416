"""Signing in to the dashboard over plain HTTP, and reading a page's form token (the e2e
tests of the dashboard: ``test_dashboard_http.py`` and ``test_dashboard_forms.py``)."""

from __future__ import annotations

import re

import httpx

from .conftest import LiveServer

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def browser(server: LiveServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False,
                        headers=headers)


def signed_in(server: LiveServer, key: str, **headers: str) -> httpx.Client:
    client = browser(server, **headers)
    token = TOKEN.search(client.get("/ui/login").text)
    assert token is not None
    answer = client.post("/ui/login", data={"key": key, "csrf": token.group(1), "next": "/ui/"})
    assert answer.status_code == 303, answer.text
    return client


def form_token(client: httpx.Client, path: str) -> str:
    found = TOKEN.search(client.get(path).text)
    assert found is not None
    return found.group(1)
