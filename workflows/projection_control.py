"""What the API, the CLI and the tasks do to the projections: wake, rebuild, report.

``wake_projections`` is what every successful command calls after its commit:
``SET tn:wake:{contracts.p<i>} 1 NX EX 5`` and, only when that set the flag, one
``threadneedle.project`` task sent by name (names, keys and senders:
``workflows/messaging.py``).  The consumer deletes the flag
before it reads the log, so a burst of commits costs one task, and a commit
that lands while the consumer runs is seen by that same run.  The webhook
dispatcher is woken the same way (``tn:wake:{webhooks}``,
``threadneedle.webhooks.dispatch`` on the ``<celery_queue>.webhooks`` queue).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from kombu.exceptions import OperationalError as BrokerUnavailable

from domain.errors import NotFound
from workflows import messaging, view_store
from workflows.ledger import utc_now
from workflows.projections import NAME, ContractViews, RunReport, SharedBatch
from workflows.texts_version import texts_fingerprint
from workflows.view_store import ViewStore

if TYPE_CHECKING:  # the composition root builds the views with this module
    from workflows.bootstrap import Services

log = logging.getLogger(__name__)

def contract_views(services: Services, partition: int | None = None) -> PartitionedViews:
    """Every partition's projector (``partition``: that one alone, still in the wrapper)."""
    if services.redis is None:
        raise RuntimeError("the projections need Redis: set NEEDLE_REDIS_URL")
    settings = services.settings
    count = settings.projection_partitions
    view_store.configure_partitions(count)
    chosen = range(count) if partition is None else [partition]
    texts = texts_fingerprint()
    return PartitionedViews([
        ContractViews(
            app=services.ledger,
            store=ViewStore(services.redis, view_store.partition_name(index), texts=texts),
            clock=utc_now, batch_size=settings.projection_batch_size,
            lock_seconds=settings.projection_lock_seconds,
            partition=index, partitions=count,
        ) for index in chosen
    ])


def wake_projections(services: Services) -> bool:
    """After a commit: wake every partition whose wake is not already pending.  Never raises.

    One pipeline sets each partition's flag (``SET NX EX``); when any was set,
    one task (``threadneedle.project`` naming the first such partition) is sent:
    a task serves every partition it can lease and comes back to any woken
    again, and the next commit after a pass deleted a flag sends the next task,
    which another worker takes (a partition being served is left to its holder).
    A lost wake (Redis or the broker down) only delays the views until beat's
    periodic run: the log is the truth.  Every commit may concern a webhook
    too, so this wakes the webhook dispatcher as well (``wake_webhooks``).
    """
    wake_webhooks(services)
    if services.redis is None:
        return False
    names = view_store.partition_names(services.settings.projection_partitions)
    try:
        pipe = services.redis.pipeline(transaction=False)
        for name in names:
            pipe.set(messaging.wake_key(name), 1, nx=True, ex=messaging.WAKE_SECONDS)
        woken = [index for index, was_set in enumerate(pipe.execute()) if was_set]
    except redis.RedisError as error:
        log.warning("projection wake skipped: %s", error)
        return False
    if not woken:
        return False
    try:  # one task: it serves every partition it can lease (``PartitionedViews.run``)
        messaging.send_project(services.celery, services.settings, woken[0])
    except (BrokerUnavailable, redis.RedisError, OSError) as error:
        log.warning("projection wake not sent: %s", error)
        with contextlib.suppress(redis.RedisError):
            services.redis.delete(*(messaging.wake_key(names[index]) for index in woken))
        return False
    return True


def hand_on(services: Services, partition: int) -> bool:
    """After a run that stopped with work left (its time budget spent): send the next
    ``project`` task whatever the wake flags say.  Never raises.

    ``wake_projections`` sends a task only when its ``SET NX`` sets a flag.  A flag a
    commit set while this run held the partition was left to this run (the commit's task,
    taken by another worker, found the lease held and left); set still, it made
    ``wake_projections`` send nothing, and the views waited behind the log until the flag
    expired and a later commit came, or beat's periodic run.
    """
    try:
        messaging.send_project(services.celery, services.settings, partition)
    except (BrokerUnavailable, redis.RedisError, OSError) as error:
        log.warning("projection hand-on not sent: %s", error)
        return False
    return True


def wake_webhooks(services: Services) -> bool:
    """After a commit: wake the webhook dispatcher (``tn:wake:{webhooks}``).  Never raises.

    A lost wake only delays messages until the sweeper's next run (every
    ``NEEDLE_WEBHOOK_SWEEP_SECONDS``): the outbox position is the truth.
    """
    if services.redis is None:
        return False
    name = messaging.WEBHOOKS
    key = messaging.wake_key(name)
    try:
        if not services.redis.set(key, 1, nx=True, ex=messaging.WAKE_SECONDS):
            return False
    except redis.RedisError as error:
        log.warning("%s wake skipped: %s", name, error)
        return False
    try:
        messaging.send_webhook_dispatch(services.celery, services.settings)
    except (BrokerUnavailable, redis.RedisError, OSError) as error:
        log.warning("%s wake not sent: %s", name, error)
        with contextlib.suppress(redis.RedisError):
            services.redis.delete(key)  # let the next commit try again
        return False
    return True


def projection_names(services: Services) -> list[str]:
    """What ``GET /v1/admin/projections`` lists and ``rebuild`` takes: ``contracts`` (every
    partition) and each partition's own name."""
    return [NAME, *view_store.partition_names(services.settings.projection_partitions)]


def require_projection(name: str, services: Services | None = None) -> None:
    names = projection_names(services) if services is not None else None
    if names is None:
        known = name == NAME or (name.startswith(f"{NAME}.p") and name[len(NAME) + 2:].isdigit())
    else:
        known = name in names
    if not known:
        raise NotFound(f"no projection named {name!r}")


def chosen_partitions(services: Services, name: str) -> list[int]:
    """The partition indexes a projection name means (``contracts``: all of them)."""
    require_projection(name, services)
    if name == NAME:
        return list(range(services.settings.projection_partitions))
    return [int(name[len(NAME) + 2:])]


def request_rebuild(services: Services, name: str = NAME) -> str:
    """Open a generation beside each chosen partition's live one and have workers fill and
    switch them (one task per partition); answers the generations, comma-joined."""
    indexes = chosen_partitions(services, name)
    generations = services.contract_views.start_rebuild(indexes)
    for index in indexes:
        messaging.send_rebuild(services.celery, services.settings, view_store.partition_name(index))
    return generations


def rebuild_if_texts_changed(services: Services) -> str | None:
    """Rebuild each partition whose live views were made by a release that explained
    conflicts with other texts (``workflows/texts_version.py``): sent by each worker as it
    starts.  A generation records the fingerprint of the texts it is made with; a live one
    with another (or none: a release before fingerprints) and views in it is rebuilt, by
    the ordinary online rebuild (workers starting together open the same one).  Answers
    the rebuild's generations, or ``None``."""
    parts = services.contract_views.parts
    stale = [part.partition for part in parts  # (each store knows this release's texts)
             if part.store.position(live := part.store.current())
             and part.store.texts_of(live) != part.store.texts]
    if not stale:
        return None
    log.warning("views made with other texts: rebuilding them", extra={
        "partitions": stale, "texts": parts[0].store.texts})
    names = [NAME] if len(stale) == len(parts) else [view_store.partition_name(index)
                                                     for index in stale]
    return ",".join(request_rebuild(services, name) for name in names)


def projection_statuses(services: Services) -> list[dict[str, Any]]:
    """``GET /v1/admin/projections`` items: ``contracts`` (every partition together: the
    lowest position, the largest lag) then each partition: name, position, head, lag, status."""
    projector = services.contract_views
    parts = [part.status() for part in projector.parts]
    return [projector.summary(parts), *parts]


def woken_partitions(parts: list[ContractViews]) -> list[ContractViews]:
    """The partitions whose wake flag a commit has set since their last pass (one round
    trip: the partitions share one Redis)."""
    if not parts:
        return []
    pipe = parts[0].store.client.pipeline(transaction=False)
    for part in parts:
        pipe.exists(messaging.wake_key(part.name))
    return [part for part, flag in zip(parts, pipe.execute(), strict=True) if flag]


@dataclass
class PartitionedViews:
    """The partitions' projectors, driven together (a worker runs those it can lease)."""

    parts: list[ContractViews]
    shared: SharedBatch = field(init=False)
    """What the partitions read once for all of them (the log's batch, a round's head)."""

    def __post_init__(self) -> None:
        self.shared = SharedBatch()
        for part in self.parts:
            part.shared = self.shared

    @property
    def clock(self) -> Any:
        return self.parts[0].clock

    def run(self, budget_seconds: float | None = None,
            partition: int | None = None) -> RunReport:
        """Serve every partition this process can lease, a pass of each in turn, starting
        from ``partition`` (the one whose wake sent the task) or a random one, until none
        it served was woken again.  A partition whose lease another worker holds is left
        to it (the holder looks at its wake flag before and after it lets go), so two
        workers share the partitions, and one worker alone keeps all of them fresh: a
        steady stream of commits to one partition cannot starve the others (after each
        round, a partition left out because it had nothing to do joins the next one if a
        commit has woken it since: else it waited for the busy one to pause, and the
        lowest position, which the board reads, with it)."""
        try:
            return self._run(budget_seconds, partition)
        finally:
            self.shared.batches.clear()  # (keyed by this run's heads: a later run reads anew)

    def _run(self, budget_seconds: float | None, partition: int | None) -> RunReport:
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        start = partition if partition is not None else random.randrange(len(self.parts))
        offset = next((n for n, part in enumerate(self.parts) if part.partition == start), 0)
        order = self.parts[offset:] + self.parts[:offset]
        pending = order
        processed = 0
        elsewhere: set[int] = set()
        """Partitions whose lease another worker held: theirs until this run ends."""
        while pending:
            again = set()
            self.shared.head = self.parts[0].app.head_position()  # the round's (``SharedBatch``)
            try:
                for part in pending:
                    done, held, more = part.run_pass(deadline)
                    processed += done
                    if not held:
                        elsewhere.add(part.partition)
                    elif more:
                        again.add(part.partition)
            finally:
                self.shared.head = None
            # every other partition served here, this round or not, if woken since its pass
            left = [part for part in order
                    if part.partition not in again and part.partition not in elsewhere]
            again.update(part.partition for part in woken_partitions(left))
            if again and deadline is not None and time.monotonic() >= deadline:
                return RunReport(processed, complete=False)
            pending = [part for part in order if part.partition in again]
        return RunReport(processed, complete=True)

    def refresh(self) -> int:
        return sum(part.refresh() for part in self.parts)

    def start_rebuild(self, indexes: list[int]) -> str:
        """Open a rebuild in each chosen partition; their generations, comma-joined."""
        return ",".join(self.parts[index].store.start_rebuild() for index in indexes)

    def rebuilding(self, indexes: list[int]) -> bool:
        return any(self.parts[index].store.building() for index in indexes)

    def current(self, indexes: list[int]) -> str:
        """The chosen partitions' live generations, comma-joined (as ``start_rebuild``)."""
        return ",".join(self.parts[index].store.current() for index in indexes)

    def catch_up_fresh(self) -> tuple[dict[str, str], int]:
        """Fill a new generation of every partition from the whole log (lease not taken):
        for tests and benchmarks.  Answers the generations by partition and events read."""
        generations = {part.name: part.store.new_generation() for part in self.parts}
        processed, going = 0, list(self.parts)
        while going:  # a batch of each in turn: the log is read once (``SharedBatch``)
            for part in list(going):  # held batches are written when each reaches the head
                if part.project_batch(generations[part.name], hold=True) is None:
                    going.remove(part)
        processed = max(part.store.position(generations[part.name]) for part in self.parts)
        self.shared.batches.clear()
        return generations, processed

    def caught_up(self) -> bool:
        """Every partition's live position at the head, and no rebuild open."""
        head = self.parts[0].app.head_position()
        return all(part.store.position(part.store.current()) >= head
                   and part.store.building() is None for part in self.parts)

    def position(self) -> int:
        return min(part.store.position(part.store.current()) for part in self.parts)

    def dump(self, generations: dict[str, str] | None = None) -> dict[str, Any]:
        """Every partition's views (the live generations, or ``generations``), by partition."""
        return {
            part.name: part.store.dump((generations or {}).get(part.name)
                                       or part.store.current())
            for part in self.parts
        }

    def drop(self, generations: dict[str, str]) -> None:
        for part in self.parts:
            if part.name in generations:
                part.store.drop(generations[part.name])

    def status(self) -> dict[str, Any]:
        return self.summary([part.status() for part in self.parts])

    @staticmethod
    def summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": NAME,
            "position": min(p["position"] for p in parts),
            "head": max(p["head"] for p in parts),
            "lag_events": max(p["lag_events"] for p in parts),
            "lag_seconds": max(p["lag_seconds"] for p in parts),
            "status": "live",
            "generation": ",".join(p["generation"] for p in parts),
            "partitions": [p["name"] for p in parts],
        }
        if any(p["status"] == "catching_up" for p in parts):
            entry["status"] = "catching_up"
        rebuilds = [p for p in parts if "rebuild" in p]
        if rebuilds:
            entry["status"] = "rebuilding"
            entry["rebuild"] = {
                "generation": ",".join(p["rebuild"]["generation"] for p in rebuilds),
                "position": min(p["rebuild"]["position"] for p in rebuilds),
                "head": entry["head"],
                "lag_events": max(p["rebuild"]["lag_events"] for p in rebuilds),
                "lag_seconds": max(p["rebuild"]["lag_seconds"] for p in rebuilds),
                "status": "catching_up",
                "partitions": [p["name"] for p in rebuilds],
            }
        return entry
