"""``needle up``: the whole stack on embedded defaults, with the demo loaded if asked;
what it prints once everything is ready."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from cli.demo import KEYS_FILE, DemoKey, DemoLoad, load_demo, open_conflicts
from cli.stack import (
    Interrupted,
    Stack,
    StackError,
    demo_allowed_cidrs,
    ignore_signals,
    raise_if_signalled,
    raise_on_signals,
    redacted,
)
from cli.terminal import console, fail
from domain.errors import DomainError
from workflows.bootstrap import Services, bootstrap
from workflows.projection_control import wake_projections
from workflows.settings import Settings


def up(
    demo: Annotated[bool, typer.Option("--demo", help="Load the Guangzhou demo first.")] = False,
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8000,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 90.0,
) -> None:
    """Start Redis (unless NEEDLE_REDIS_URL is set), a worker, beat and the API.

    Ctrl-C (or SIGTERM) stops every process it started and exits 0.
    """
    settings = Settings()
    restore = raise_on_signals()
    stack = Stack(settings, host=host, port=port, demo=demo)
    failure: Exception | None = None
    try:
        stack.check_port()
        loaded = None
        if demo:  # the printing receiver first: the demo subscribes its URL
            receiver = stack.start_printing_receiver()
            loaded = _load_demo(settings.model_copy(update={
                "webhook_allowed_cidrs": demo_allowed_cidrs(settings)}), receiver)
        if not settings.redis_url:
            url = stack.start_redis()
            console().print(f"[green]✓[/] Redis (embedded, password-protected) at {redacted(url)}"
                            f"; full URL in {settings.var_dir / 'redis' / 'url'}", highlight=False)
        stack.start_processes()
        stack.wait_until_ready(timeout)
        _print_ready(stack, loaded)
        if loaded is not None:
            _print_demo_conflicts(settings, stack.redis_url, loaded)
        stack.supervise()
    except Interrupted as signal_name:
        console().print(f"\n{signal_name} received: stopping", highlight=False)
    except (StackError, DomainError) as error:
        failure = error
    finally:
        ignore_signals()
        stack.stop(console().print)
        restore()
    if failure is not None:
        raise fail(str(failure))
    console().print("[green]✓[/] every process stopped")


def _load_demo(settings: Settings, webhook_url: str | None = None) -> DemoLoad:
    services = bootstrap(settings)
    try:
        loaded = load_demo(services.ledger, settings.var_dir, webhook_url=webhook_url)
    finally:
        services.close()
    news = f"{loaded.recorded} commands recorded" if loaded.recorded else "already loaded"
    console().print(f"[green]✓[/] demo: {len(loaded.contracts)} contracts ({news})")
    return loaded


def _print_ready(stack: Stack, loaded: DemoLoad | None) -> None:
    processes = Table(title="Processes", title_justify="left")
    processes.add_column("process")
    processes.add_column("pid", justify="right")
    processes.add_column("log")
    for child in stack.children:
        processes.add_row(child.name, str(child.pid), str(child.log))
    console().print(processes)
    if loaded is not None:
        contracts = Table(title="Demo contracts", title_justify="left")
        for column in ("code", "id", "title", "version", "directives"):
            contracts.add_column(column)
        for c in loaded.contracts:
            contracts.add_row(c.code, c.id, c.title, str(c.version), str(c.directives))
        console().print(contracts)
        keys = Table(title=f"Demo keys (kept in {stack.var_dir / KEYS_FILE})",
                     title_justify="left")
        for column in ("role", "org", "key"):
            keys.add_column(column, no_wrap=True)
        for k in loaded.keys:
            keys.add_row(k.role, k.org, k.key)
        console().print(keys, soft_wrap=True)
        first: dict[str, DemoKey] = {}  # one demo key per role, to sign in to the dashboard
        for k in loaded.keys:
            first.setdefault(k.role, k)
        console().print(f"[bold]Dashboard:[/] {stack.base_url}/ui/  sign in with a key, e.g. "
                        + "; ".join(f"{role} ({k.org}): {k.key}" for role, k in first.items()),
                        highlight=False, soft_wrap=True)
    console().print(f"[bold green]Threadneedle is ready:[/] {stack.base_url}/docs  "
                  f"(API {stack.base_url}/v1, dashboard {stack.base_url}/ui/, Ctrl-C to stop)",
                  highlight=False, soft_wrap=True)


def _print_demo_conflicts(settings: Settings, redis_url: str, loaded: DemoLoad) -> None:
    """Once the worker has projected the demo, show each contract's open conflicts."""
    services = bootstrap(settings.model_copy(update={"redis_url": redis_url}))
    try:
        wake_projections(services)
        if not wait_projected(services, timeout=30.0):
            console().print("[yellow]the conflict views are not caught up yet: "
                            "see `needle projections status`[/]")
            return
        assert services.redis is not None
        conflicts = open_conflicts(services.redis, loaded.contracts)
    finally:
        services.close()
    table = Table(title="Demo conflicts (open)", title_justify="left")
    table.add_column("contract", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("explanation", ratio=1)
    for conflict in conflicts:
        table.add_row(conflict.code, conflict.kind, conflict.explanation)
    console().print(table)


def wait_projected(services: Services, timeout: float) -> bool:
    """Wait until the live views have reached the head of the log."""
    views = services.contract_views
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raise_if_signalled()
        status = views.status()
        if status["position"] >= status["head"] and status["status"] == "live":
            return True
        time.sleep(0.2)
    return False
