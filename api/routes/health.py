"""Liveness, readiness and metrics: no key needed.

``/readyz`` says which check failed but never why in detail: the store's and
Redis's own errors can name hosts, users and paths, so they go to the log and
the answer carries a generic reason.  A projection further behind than
``NEEDLE_READINESS_MAX_LAG_EVENTS`` makes the API not ready, with its lag named.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.problems import problem_response, problem_responses
from api.responses import Health, Readiness
from workflows.bootstrap import Services
from workflows.projection_control import projection_statuses

router = APIRouter(tags=["health"])
log = logging.getLogger("threadneedle.api.health")


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={200: {"model": Readiness}, **problem_responses(503)})
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, dict[str, Any]] = {}
    try:
        checks["event_store"] = {"status": "ok", "head": services.ledger.head_position()}
    except Exception as error:  # any failure means "not ready"; say which, log why
        log.warning("readiness: the event store failed: %s", str(error)[:500])
        checks["event_store"] = {"status": "failed",
                                 "reason": "the event store cannot be reached"}
    if services.redis is None:
        checks["redis"] = {"status": "not_configured"}
    else:
        try:
            services.redis.ping()
            checks["redis"] = {"status": "ok"}
        except Exception as error:
            log.warning("readiness: Redis failed: %s", str(error)[:500])
            checks["redis"] = {"status": "failed", "reason": "Redis cannot be reached"}
    if all(check["status"] == "ok" for check in checks.values()):
        checks["projections"] = _projection_lag(services)
    failed = sorted(name for name, check in checks.items()
                    if check["status"] in ("failed", "lagging"))
    if failed:
        reasons = [checks[name].get("reason", f"{name} failed") for name in failed]
        return problem_response(503, "not_ready", "not ready: " + "; ".join(reasons),
                                title="Not ready", headers={"Retry-After": "5"},
                                extra={"checks": checks})
    return JSONResponse({"status": "ready", "checks": checks})


def _projection_lag(services: Services) -> dict[str, Any]:
    threshold = services.settings.readiness_max_lag_events
    try:
        statuses = projection_statuses(services)
    except Exception as error:
        log.warning("readiness: the projections' status failed: %s", str(error)[:500])
        return {"status": "failed", "reason": "the projections' status cannot be read"}
    behind = [s for s in statuses if threshold and s["lag_events"] > threshold]
    check: dict[str, Any] = {
        "status": "lagging" if behind else "ok", "max_lag_events": threshold,
        "lag": {s["name"]: {"events": s["lag_events"], "seconds": s["lag_seconds"]}
                for s in statuses},
    }
    if behind:
        check["reason"] = "; ".join(
            f"projection {s['name']} is {s['lag_events']} events ({s['lag_seconds']:g} s) "
            f"behind, over the {threshold} allowed" for s in behind)
    return check


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
