"""The FastAPI application, built from the composition root's ``Services``.

``create_app()`` is also a uvicorn factory: ``uvicorn --factory api.main:create_app``
bootstraps from the ``NEEDLE_*`` environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from api.directive_fast_path import DirectiveFastPath, Raised
from api.gate import Gate
from api.metrics import Metrics
from api.observability import install_observability
from api.openapi_bodies import document_request_bodies
from api.problems import install_problem_handlers
from api.rate_limits import RateLimits
from api.replays import ReplayTurns
from api.routes import api_router, directives
from api.ui import install_dashboard
from workflows.bootstrap import Services, bootstrap
from workflows.collector import settle_collector
from workflows.settings import Settings

DESCRIPTION = """\
上面千条线，下面一根针 — every office above sends its own directives down to the
one team that carries them out.  Threadneedle records every stakeholder's
directive on the service contract it concerns, as an immutable, hash-chained
event.

Authenticate with `Authorization: Bearer <key>`.  Errors are RFC 9457
`application/problem+json`.  Commands answer with the contract's new `version`
and the global `position` of the event they recorded; `POST` commands accept
`Idempotency-Key`, and commands on a contract accept `If-Match: "<version>"`.
"""


THREADS = 128
"""Worker threads for sync routes: enough for every waiting command of a busy batch."""


def create_app(services: Services | None = None, *, fast_path: bool = True) -> FastAPI:
    """The app on these services (else bootstrapped from the environment); ``fast_path=False``
    leaves every directive to the documented route (the fast path's differential test)."""
    owned = services is None
    services = services or bootstrap(Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool (40 threads by default); a command
        # waiting for its group commit holds one, so allow more to wait together.
        to_thread.current_default_thread_limiter().total_tokens = THREADS
        if owned:
            settle_collector()
        yield
        if owned:
            services.close()

    app = FastAPI(
        title="Threadneedle",
        version="1",
        summary="An event-sourced ledger of the directives many stakeholders place on one "
                "service contract.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry only when tracing is on (``install_observability``):
        # off, its per-request check of the global providers was 6 % of a directive's time.
        telemetry={"tracing": services.settings.tracing, "metrics": False, "logs": False},
    )
    app.state.services = services
    services.vault  # noqa: B018  # built now (the outbox too), not in a request
    app.state.metrics = Metrics()
    app.state.replay_turns = ReplayTurns.of(services.settings)
    install_problem_handlers(app)
    app.include_router(api_router)
    issue = directives.issue_route()
    # First of the routes: what a command of the directive fast path raised (see module).
    app.router.routes.insert(0, Raised(issue))
    document_request_bodies(app)  # what the bodies' validators check, in the document
    install_dashboard(app)  # the web dashboard under /ui/ (api/ui)
    install_observability(app, services.settings, configure=owned)  # logs, traces
    # In front of every route: request ids, metrics (of every answer, including the 429s
    # and 413s), rate limits (before the body is read), the body limit, the fast path.
    app.add_middleware(Gate, metrics=app.state.metrics,
                       rate_limits=RateLimits.of(services.settings),
                       max_body_bytes=services.settings.max_body_bytes,
                       fast_path=DirectiveFastPath(issue) if fast_path else None)
    return app
