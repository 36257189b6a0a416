"""``needle``: what an operator does at a terminal.

The commands work in-process on the event store, built through the same
composition root as the API; the operator acts as the bootstrap admin.  ``needle up``
is in ``cli/up.py``, ``needle projections`` in ``cli/projections.py``, what they share
in ``cli/terminal.py``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from itertools import chain
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from cli.projections import projections_app
from cli.terminal import (
    ContractArg,
    JsonOption,
    Session,
    UtcOption,
    console,
    contract_ref,
    fail,
    print_json,
    progress,
)
from cli.timeline import TABLE_MIN_WIDTH, timeline_json, timeline_list, timeline_table
from cli.up import up
from domain.chain import ChainReport
from domain.organisations import KeySpec, Role
from domain.terms import Profile
from workflows import contracts, directory, history
from workflows.audit import audit_aggregate, every_contract
from workflows.identities import BOOTSTRAP_ADMIN, DIRECTORY_ID
from workflows.replay import timeline

app = typer.Typer(
    name="needle",
    help="Threadneedle: the multi-stakeholder contract ledger (上面千条线，下面一根针).",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(projections_app, name="projections")
app.command()(up)


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
