"""What operators and tools read without a key: health, readiness, metrics, the API's docs."""

from __future__ import annotations

from .client import Needle, World, directive


def test_healthz_and_readyz(anonymous: Needle) -> None:
    assert anonymous.ok("GET", "/healthz") == {"status": "ok"}
    ready = anonymous.ok("GET", "/readyz")
    # Then the store answered with its head position, and Redis with a ping
    assert ready["status"] == "ready"
    assert ready["checks"]["event_store"]["status"] == "ok"
    assert ready["checks"]["redis"]["status"] == "ok"


def test_metrics_count_requests_by_route_template_and_commands(world: World,
                                                               anonymous: Needle) -> None:
    # Given some traffic: a directive issued, and one refused
    world.as_("street").ok("POST", f"{world.path}/directives", 201, json=directive())
    world.as_("street").post(f"{world.path}/directives", json={"nonsense": True})
    # When Prometheus scrapes /metrics
    response = anonymous.get("/metrics")
    text = response.text
    # Then requests are labelled by route template, never by a contract's id
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'route="/v1/contracts/{contract_id}/directives"' in text
    assert world.contract_id not in text
    assert "needle_http_request_duration_seconds_bucket" in text
    assert 'needle_commands_total{command="issue_directive",outcome="accepted"}' in text
    assert 'needle_commands_total{command="issue_directive",outcome="refused"}' in text


def test_openapi_and_docs_describe_the_api(anonymous: Needle) -> None:
    spec = anonymous.ok("GET", "/openapi.json")
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for path in ("/v1/organizations", "/v1/keys", "/v1/keys/{key_id}", "/v1/contracts",
                 "/v1/contracts/{contract_id}", "/v1/contracts/{contract_id}/stakeholders",
                 "/v1/contracts/{contract_id}/activate", "/v1/contracts/{contract_id}/policy",
                 "/v1/contracts/{contract_id}/directives",
                 "/v1/contracts/{contract_id}/directives/{directive_id}",
                 "/v1/contracts/{contract_id}/history", "/v1/contracts/{contract_id}/audit",
                 "/v1/contracts/{contract_id}/export", "/healthz", "/readyz", "/metrics"):
        assert path in paths, path
    # The directive body is the domain's own model, unknown fields refused
    schema = spec["components"]["schemas"]["DirectiveFields"]
    assert schema.get("additionalProperties") is False
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
