"""Liveness, readiness and metrics: no key needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.problems import problem_response, problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, dict[str, Any]] = {}
    try:
        checks["event_store"] = {"status": "ok", "head": services.app.head_position()}
    except Exception as error:  # any failure means "not ready"; say which
        checks["event_store"] = {"status": "failed", "error": str(error)[:300]}
    if services.redis is None:
        checks["redis"] = {"status": "not_configured"}
    else:
        try:
            services.redis.ping()
            checks["redis"] = {"status": "ok"}
        except Exception as error:
            checks["redis"] = {"status": "failed", "error": str(error)[:300]}
    failed = sorted(name for name, check in checks.items() if check["status"] == "failed")
    if failed:
        return problem_response(503, "not_ready", f"not ready: {', '.join(failed)} failed",
                                title="Not ready", headers={"Retry-After": "5"},
                                extra={"checks": checks})
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
