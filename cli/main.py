"""``needle``: what an operator does at a terminal.

The commands work in-process on the event store, built through the same
composition root as the API; the operator acts as the bootstrap admin.

Long because every `needle` command is a thin Typer wrapper over a use case; splitting
the commands by module is part of issue 12.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from itertools import chain
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.demo import KEYS_FILE, DemoKey, DemoLoad, load_demo, open_conflicts
from cli.stack import (
    Interrupted,
    Stack,
    StackError,
    demo_allowed_cidrs,
    ignore_signals,
    raise_on_signals,
    redacted,
)
from cli.timeline import TABLE_MIN_WIDTH, timeline_json, timeline_list, timeline_table
from domain.chain import ChainReport
from domain.errors import DomainError
from domain.organisations import KeySpec, Role
from domain.terms import Profile
from workflows import contracts, directory, history
from workflows.audit import audit_aggregate, every_contract
from workflows.bootstrap import Services, bootstrap
from workflows.identities import BOOTSTRAP_ADMIN, DIRECTORY_ID, contract_id_for
from workflows.ledger import Ledger
from workflows.projection_control import (
    chosen_partitions,
    projection_statuses,
    request_rebuild,
    wake_projections,
)
from workflows.replay import timeline
from workflows.settings import Settings

app = typer.Typer(
    name="needle",
    help="Threadneedle: the multi-stakeholder contract ledger (上面千条线，下面一根针).",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
projections_app = typer.Typer(help="The read models kept in Redis.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")



def console() -> Console:
    """The terminal, measured when used (so COLUMNS and redirections are seen)."""
    return Console()


ContractArg = Annotated[str, typer.Argument(help="A contract code (HZ-YOUTH-2008) or its UUID.")]


def contract_ref(reference: str) -> str:
    """A contract's id from its UUID or its code."""
    try:
        return str(UUID(reference))
    except ValueError:
        return str(contract_id_for(reference))


UtcOption = Annotated[bool, typer.Option("--utc", help="Show times in UTC, not Asia/Shanghai.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the data as JSON instead.")]


def print_json(data: object) -> None:
    """Data for scripts: JSON on stdout, Chinese kept as it is."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def progress() -> Progress:
    """A progress bar on stderr (stdout may be data), drawn only on a terminal."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


class Session:
    """The services for one command, closed when it ends; domain errors become exit 1."""

    def __enter__(self) -> Ledger:
        self.services: Services = bootstrap(Settings())
        return self.services.ledger

    def __exit__(self, kind: object, error: BaseException | None, _tb: object) -> None:
        self.services.close()
        if isinstance(error, DomainError):
            raise fail(error.detail) from error


# --- up -----------------------------------------------------------------------------


@app.command()
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
        status = views.status()
        if status["position"] >= status["head"] and status["status"] == "live":
            return True
        time.sleep(0.2)
    return False


# --- projections ----------------------------------------------------------------


class ProjectionSession:
    """Services with Redis, for the projection commands."""

    def __enter__(self) -> Services:
        settings = Settings()
        if not settings.redis_url:
            raise fail("set NEEDLE_REDIS_URL to the Redis the workers use "
                       "(`needle up` prints it)", 2)
        self.services = bootstrap(settings)
        return self.services

    def __exit__(self, kind: object, error: BaseException | None, _tb: object) -> None:
        self.services.close()
        if isinstance(error, DomainError):
            raise fail(error.detail) from error


@projections_app.command("status")
def projections_status(as_json: JsonOption = False) -> None:
    """Each projection: position, head of the log, lag in events and seconds, status."""
    with ProjectionSession() as services:
        items = projection_statuses(services)
    if as_json:
        print_json(items)
        return
    table = Table(title="Projections", title_justify="left")
    for column in ("name", "position", "head", "lag events", "lag seconds", "status",
                   "generation"):
        table.add_column(column, justify="right" if column.startswith(("pos", "head", "lag"))
                         else "left")
    for item in items:
        table.add_row(item["name"], str(item["position"]), str(item["head"]),
                      str(item["lag_events"]), f"{item['lag_seconds']:.3f}", item["status"],
                      item["generation"])
        if "rebuild" in item:
            rebuild = item["rebuild"]
            table.add_row(f"{item['name']} (rebuild)", str(rebuild["position"]),
                          str(rebuild["head"]), str(rebuild["lag_events"]),
                          f"{rebuild['lag_seconds']:.3f}", rebuild["status"],
                          rebuild["generation"])
    console().print(table)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="The projection to rebuild.")] = "contracts",
    wait: Annotated[float, typer.Option(
        help="Seconds to wait for the switch (0: just start it).", min=0)] = 120.0,
    here: Annotated[bool, typer.Option(
        "--here", help="Rebuild in this process instead of asking a worker.")] = False,
) -> None:
    """Rebuild a projection beside the live one; reads go on until it switches."""
    with ProjectionSession() as services:
        if here:
            views, indexes = services.contract_views, chosen_partitions(services, name)
            generation = views.start_rebuild(indexes)
            with progress() as bar:
                task = bar.add_task(f"rebuild {name}", total=None)
                while views.rebuilding(indexes):
                    views.run()
                    _show_rebuild(bar, task, services)
            console().print(f"[green]✓[/] {name}: switched to {generation}", highlight=False)
            return
        generation = request_rebuild(services, name)
        console().print(f"{name}: rebuilding into {generation}", highlight=False)
        if not wait:
            return
        views, indexes = services.contract_views, chosen_partitions(services, name)
        deadline = time.monotonic() + wait
        with progress() as bar:
            task = bar.add_task(f"rebuild {name}", total=None)
            while time.monotonic() < deadline:
                if views.current(indexes) == generation:
                    bar.update(task, completed=bar.tasks[0].total or 0)
                    break
                _show_rebuild(bar, task, services)
                time.sleep(0.5)
        if views.current(indexes) == generation:
            console().print(f"[green]✓[/] {name}: switched to {generation}", highlight=False)
            return
    raise fail(f"{name}: not switched within {wait:g}s (is a worker running?)")


def _show_rebuild(bar: Progress, task: TaskID, services: Services) -> None:
    """Move the bar to the rebuilding generation's position out of the log's head."""
    for item in projection_statuses(services):
        rebuild = item.get("rebuild")
        if rebuild:
            bar.update(task, total=max(1, int(rebuild["head"])),
                       completed=int(rebuild["position"]))


# --- keys -----------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="The organisation the key acts for.")],
    role: Annotated[Role, typer.Option(help="admin, stakeholder, resolver or supervisor.")],
    as_json: JsonOption = False,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    with Session() as needle:
        result = directory.create_key(needle, BOOTSTRAP_ADMIN, KeySpec(org=org, role=role))
    assert result.extra is not None
    if as_json:
        print_json({"id": result.id, "org": org, "role": role.value,
                    "key": result.extra["key"]})
        return
    console().print(f"key id: {result.id}  org: {org}  role: {role.value}", highlight=False)
    console().print("[yellow]Store this key now; it will not be shown again:[/]")
    console().print(result.extra["key"], highlight=False, soft_wrap=True)


# --- replay, verify, export -----------------------------------------------------------


@app.command()
def replay(
    contract: ContractArg,
    to_version: Annotated[int | None, typer.Option(help="Stop at this version.", min=1)] = None,
    as_of: Annotated[str | None, typer.Option(
        help="Stop at the last event recorded at or before this ISO 8601 time (UTC if no zone).",
    )] = None,
    what_if: Annotated[Profile | None, typer.Option(
        "--what-if", help="Rank the whole past under this profile instead of the policy.",
    )] = None,
    utc: UtcOption = False,
    as_json: JsonOption = False,
    layout: Annotated[str, typer.Option(
        help="table, list, or auto: a table on terminals of 140 columns or more, "
             "else a list (pipes are 80 columns).")] = "auto",
) -> None:
    """A timeline of a contract's events: who did what, and how the open conflicts and
    the top of the ranking changed; then its state at the end of it."""
    if to_version is not None and as_of is not None:
        raise fail("give --to-version or --as-of, not both", 2)
    if layout not in ("auto", "table", "list"):
        raise fail(f"--layout: {layout!r} is not one of auto, table, list", 2)
    moment = _iso_time(as_of) if as_of is not None else None
    with Session() as needle:
        story = timeline(needle, BOOTSTRAP_ADMIN, contract_ref(contract), version=to_version,
                         as_of=moment, profile=what_if.value if what_if else None)
    if as_json:
        print_json(timeline_json(story))
        return
    out = console()
    wide = layout == "table" or (layout == "auto" and out.width >= TABLE_MIN_WIDTH)
    out.print(timeline_table(story, utc) if wide else timeline_list(story, utc))
    state = story.contract
    active = len(state.active_directives())
    open_now = sum(1 for c in state.conflicts.values() if c["status"] == "open")
    console().print(f"state at version {state.version}: {state.status}, "
                    f"{len(state.directives)} directives ({active} active), "
                    f"{open_now} open conflicts", highlight=False)
    if story.what_if:
        policy = (state.terms.get("policy") or {}).get("profile", "contract_first")
        console().print(f"what-if: every step ranked under {story.profile} "
                        f"(the contract's policy is {policy})", highlight=False)


def _iso_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--as-of: {text!r} is not an ISO 8601 time", 2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def verify(
    contract: Annotated[str | None, typer.Argument(
        help="A contract code (HZ-YOUTH-2008) or its UUID.", show_default=False)] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Verify every contract (and the directory), with a progress bar.")] = False,
) -> None:
    """Verify a contract's hash chain, anchor and snapshots; exit 1 when any check fails."""
    if every == (contract is not None):
        raise fail("name one contract, or pass --all", 2)
    if every:
        _verify_all()
        return
    assert contract is not None
    with Session() as needle:
        report = history.audit(needle, BOOTSTRAP_ADMIN, contract_ref(contract))
    if report.verified:
        console().print(f"[green]✓ verified[/]: {report.events} events, head {report.head}",
                        highlight=False)
        return
    raise fail(f"{_broken(report)} ({report.events} events read)")


def _broken(report: ChainReport) -> str:
    where = f" at version {report.first_broken_version}" if report.first_broken_version else ""
    return f"chain broken{where}: {report.reason}"


def _verify_all() -> None:
    """Every contract the directory lists, then the directory itself (``workflows/audit.py``)."""
    out = console()
    failures: list[str] = []
    with Session() as needle:
        targets = [*every_contract(needle), (DIRECTORY_ID, "directory")]
        with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=out, transient=True) as progress:
            task = progress.add_task("", total=len(targets))
            for aggregate_id, name in targets:
                progress.update(task, description=name)
                report = audit_aggregate(needle, aggregate_id)
                if not report.verified:
                    failures.append(f"{name} ({aggregate_id}): {_broken(report)}")
                    out.print(f"[red]✗[/] {failures[-1]}", highlight=False)
                progress.advance(task)
    if failures:
        raise fail(f"{len(failures)} of {len(targets)} failed verification")
    out.print(f"[green]✓ verified[/]: {len(targets) - 1} contracts and the directory",
              highlight=False)


@app.command()
def export(contract: ContractArg) -> None:
    """The contract's whole history as JSON Lines on stdout (progress on stderr)."""
    with Session() as needle:
        reference = contract_ref(contract)
        records = history.export(needle, BOOTSTRAP_ADMIN, reference)
        first = next(records, None)  # the access check runs before the bar is drawn
        total = contracts.read_contract(needle, BOOTSTRAP_ADMIN, reference).version
        with progress() as bar:
            task = bar.add_task(f"export {contract}", total=total)
            if first is not None:
                for record in chain([first], records):
                    sys.stdout.write(json.dumps(record, ensure_ascii=False, sort_keys=True)
                                     + "\n")
                    bar.advance(task)
    sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    app()
