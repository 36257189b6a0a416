"""``needle projections``: how far the read models in Redis have got, and rebuilding them."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table

from cli.terminal import JsonOption, console, fail, print_json, progress
from domain.errors import DomainError
from workflows.bootstrap import Services, bootstrap
from workflows.projection_control import (
    chosen_partitions,
    projection_statuses,
    request_rebuild,
)
from workflows.settings import Settings

projections_app = typer.Typer(help="The read models kept in Redis.", no_args_is_help=True)


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
