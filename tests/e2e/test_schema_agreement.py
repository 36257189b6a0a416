"""The OpenAPI document and the API agree: schemathesis' own checks, strict, on every operation.

``test_fuzz`` asks whether the API survives what it is sent; this module asks
whether ``/openapi.json`` tells the truth about it, with schemathesis' three
checks and no others:

- ``positive_data_acceptance``: a request the document calls valid is not refused;
- ``negative_data_rejection``: a request the document calls invalid is refused;
- ``response_schema_conformance``: every answer matches its documented model.

The coverage phase walks the edges of every constraint of every operation (each
bound, pattern, enum, required field and header, on both sides), plus the
documented examples; with the admin key, one request per case (``test_fuzz``
probes the keys), so the whole document takes about half a minute.

What the document cannot say is named here, never tolerated wholesale:

- state, not shape: a generated ``If-Match`` names another version (412); a
  generated ``Idempotency-Key`` would repeat with another body, so every
  request gets a key of its own (as a client would);
- rules JSON Schema cannot state (between fields, the contract's period, DNS and
  the SSRF allow-list): a 422 each of whose errors names one of
  ``test_fuzz.CROSS_FIELD_RULES`` is not a disagreement.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
)

from .conftest import LiveServer
from .test_fuzz import (
    CROSS_FIELD_RULES,
    SEED,
    Seeded,
    call_as_seeded,
    seed_world,
)

MAX_EXAMPLES = 1


@pytest.fixture(scope="module")
def agreed(live_server: LiveServer) -> Seeded:
    return seed_world(live_server, "admin")


@pytest.fixture
def documented_api(agreed: Seeded, live_server: LiveServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")
    schema.config.update(base_url=live_server.base_url)
    schema.config.seed = SEED
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, no_shrink=True)
    schema.config.phases.update(phases=["examples", "coverage"])
    schema.config.phases.coverage.unexpected_methods = set()  # for a check not run here
    return schema


def valid_data_accepted(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """``positive_data_acceptance``, less the refusals that depend on more than the shape."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 412:
        return None  # If-Match named a version the contract is not at: state
    if positive and response.status_code == 422:
        errors = response.json().get("errors") or []
        if errors and all(re.search(CROSS_FIELD_RULES, error["message"]) for error in errors):
            return None
    return positive_data_acceptance(ctx, response, case)


schema = schemathesis.pytest.from_fixture("documented_api")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit],
    suppress_health_check=list(HealthCheck),
)
def test_the_document_says_what_the_api_accepts_and_answers(
    case: schemathesis.Case, agreed: Seeded
) -> None:
    call_as_seeded(case, agreed, checks=[valid_data_accepted, negative_data_rejection,
                                         response_schema_conformance])
