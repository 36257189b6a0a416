"""Optional OpenTelemetry tracing (``NEEDLE_TRACING=true``; the ``tracing`` extra).

Spans come from the instrumentation packages, not from hand-written code:
FastAPI (each request), Celery (publish on the API side, run on the worker's,
linked through the message headers), Redis (every command and Lua script) and
the event store (psycopg on PostgreSQL, sqlite3 on SQLite).  Spans are sent by
OTLP over HTTP in batches (``NEEDLE_TRACING_ENDPOINT``, else the exporter's own
``OTEL_EXPORTER_OTLP_*`` settings); with tracing off none of this is imported.
"""

from __future__ import annotations

import threading
from typing import Any

from workflows.settings import Settings

_lock = threading.Lock()
_started: Any = None


def start_tracing(settings: Settings, service: str, exporter: Any = None) -> Any:
    """Install a tracer provider and instrument Celery, Redis and the store (once a process).
    ``exporter``: where spans go (tests pass an in-memory one); else OTLP/HTTP."""
    global _started
    with _lock:
        if _started is not None:
            return _started
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.tracing_endpoint or None)
            provider.add_span_processor(BatchSpanProcessor(exporter))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        CeleryInstrumentor().instrument(tracer_provider=provider)
        RedisInstrumentor().instrument(tracer_provider=provider)
        if settings.uses_postgres:
            PsycopgInstrumentor().instrument(tracer_provider=provider)
        else:
            SQLite3Instrumentor().instrument(tracer_provider=provider)
        _started = provider
        return provider


def instrument_app(app: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_started)


def stop_tracing() -> None:
    """Undo ``start_tracing`` (tests: the instrumentation is process-wide)."""
    global _started
    with _lock:
        if _started is None:
            return
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        for instrumentor in (CeleryInstrumentor(), RedisInstrumentor(), PsycopgInstrumentor(),
                             SQLite3Instrumentor()):
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        _started.shutdown()
        _started = None
