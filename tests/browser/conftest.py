"""One real ``needle up --demo`` stack for every browser test, and Chromium from Debian.

The stack (embedded Redis, Celery worker and beat, the API, the printing
webhook receiver) starts once for this package's tests on a fresh store and
stops when they are done, so it takes no CPU from the rest of the suite.  Each
test gets a fresh browser context (no cookies) and signs in with a demo key
read from ``var/demo-keys.json``.  Every request any page makes is recorded, and a test
fails if one went anywhere but the stack (no CDN, no external font).

Chromium is Debian's (``apt-get install chromium fonts-noto-cjk``), launched
by path: ``playwright install`` cannot download browsers here.  Screenshots go
to ``$NEEDLE_SCREENSHOTS`` (default ``var/screenshots``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN_KEY, fresh_store
from integration.processes import settings_env, stop_tree
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from cli.demo import KEYS_FILE, read_demo_keys
from cli.stack import free_port
from workflows.identities import contract_id_for
from workflows.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
NEEDLE = str(Path(sys.executable).with_name("needle"))
READY = "Threadneedle is ready"
SCREENSHOTS = Path(os.environ.get("NEEDLE_SCREENSHOTS", "var/screenshots"))
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}

YOUTH = str(contract_id_for("HZ-YOUTH-2008"))
JNZ = str(contract_id_for("HZ-JNZ-ELDER-2012"))
Contexts = Callable[..., BrowserContext]

UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden' && !el.hidden)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""


def assert_accessible_basics(page: Page) -> None:
    """Every control has a label (or a name of its own) and the page does not scroll sideways."""
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    width = page.viewport_size["width"] if page.viewport_size else 1280
    # after a viewport change the chart resizes on its own next frames: let layout settle
    # (polled from here: ``wait_for_function`` evaluates a string, which the page's
    # content security policy refuses, now and then before the timeout)
    deadline = time.monotonic() + 5
    while page.evaluate("document.documentElement.scrollWidth") > width + 1 \
            and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it (.ci/run)
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)


@dataclass
class DemoStack:
    base_url: str
    keys: dict[tuple[str, str], str]
    requests: list[str] = field(default_factory=list)

    def key(self, role: str, org: str) -> str:
        return self.keys[(role, org)]

    def api(self, role: str, org: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30,
                            headers={"Authorization": f"Bearer {self.key(role, org)}"})


def _wait_ready(process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while READY not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"needle up did not get ready:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def _wait_projected(stack: DemoStack, timeout: float) -> None:
    """Until the board shows the demo's open conflicts (the worker projected the demo)."""
    deadline = time.monotonic() + timeout
    with stack.api("supervisor", "gz-swa") as client:
        while time.monotonic() < deadline:
            answer = client.get("/v1/conflicts")
            if answer.status_code == 200 and answer.json()["items"]:
                return
            time.sleep(0.3)
    pytest.fail("the demo's conflicts never reached the live views")


@pytest.fixture(scope="package")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    folder = tmp_path_factory.mktemp("browser")
    settings = Settings(var_dir=folder / "var", admin_key=ADMIN_KEY, redis_url=None,
                        **fresh_store(folder))
    port = free_port()
    log = folder / "needle-up.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [NEEDLE, "up", "--demo", "--port", str(port)],
            env=settings_env(settings, COLUMNS="200"), stdout=output,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_ready(process, log, timeout=150)
        keys = {(k.role, k.org): k.key for k in read_demo_keys(settings.var_dir / KEYS_FILE)}
        stack = DemoStack(f"http://127.0.0.1:{port}", keys)
        _wait_projected(stack, timeout=60)
        yield stack
    finally:
        stop_tree(process, grace=15)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def contexts(chromium: Browser, demo_stack: DemoStack) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts (Chinese by default) that record every request; closed after."""
    made: list[BrowserContext] = []

    def make(viewport: dict[str, int] | None = None, locale: str = "zh-CN") -> BrowserContext:
        context = chromium.new_context(
            viewport=viewport or WIDE, locale=locale, base_url=demo_stack.base_url)
        context.set_default_timeout(30_000)
        context.on("request", lambda request: demo_stack.requests.append(request.url))
        made.append(context)
        return context

    yield make
    for context in made:
        with contextlib.suppress(Exception):
            context.close()
    outside = [url for url in demo_stack.requests
               if not (url.startswith(demo_stack.base_url + "/") or url.startswith("data:"))]
    assert not outside, f"pages requested URLs outside the server: {outside}"


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def sign_in(context: BrowserContext, key: str, path: str = "/ui/") -> Page:
    """A page signed in with ``key`` (typed into the form and sent with Enter), showing ``path``."""
    page = context.new_page()
    page.goto(path)
    page.get_by_label("API 密钥").or_(page.get_by_label("API key")).fill(key)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/ui/login" not in url)
    return page
