"""What every `needle` command shares: the terminal, JSON for scripts, a contract's
reference, errors as exit codes, and the services of one command."""

from __future__ import annotations

import json
import sys
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from domain.errors import DomainError
from workflows.bootstrap import Services, bootstrap
from workflows.identities import contract_id_for
from workflows.ledger import Ledger
from workflows.settings import Settings


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
