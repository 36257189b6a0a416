"""Fuzzing the API with schemathesis, against its own ``/openapi.json``, over real HTTP.

Every operation of the document is called with generated requests — valid ones
and deliberately invalid ones — once with an admin key and once with a
stakeholder key, on a world seeded through the API (organisations with Chinese
names, an active contract, directives and the conflict between them).  Every
answer must be no 5xx, conform to the documented status codes, media types,
headers and schemas, enforce authentication, and every error must be a problem
document (SPEC §9).

Bounded and repeatable: the explicit-examples and fuzzing phases only (the
coverage phase alone takes minutes), ``MAX_EXAMPLES`` per operation, no
shrinking, a fixed seed and derandomized Hypothesis, and live views never wait
long for a position they cannot reach (no Celery worker runs here).  Running
the module again sends exactly the same requests.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from conftest import ADMIN_KEY
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.deps import IDEMPOTENCY_KEY

from .client import Needle, World, directive
from .conftest import LiveServer

SEED = 20080601
MAX_EXAMPLES = 6
PHASES = ["examples", "fuzzing"]
MAX_WAIT = 0.1
PROBLEM_FIELDS = ("type", "title", "status", "detail")
CALLS = itertools.count()
KEYS = itertools.count()

EXTREMES = {
    "integer": (str(2**63 - 1), str(2**63), str(-(2**63) - 1), "1" + "0" * 40, "1e3", "-0"),
    "number": ("5e-324", "1.7e-207", "1e-9", "-0.0", "1e308", "-1e308", "inf", "nan"),
    "date-time": ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                  "9999-12-31T23:59:59.999999-00:01", "10000-01-01T00:00:00Z",
                  "0000-00-00T00:00:00Z", "2008-06-01", "2008-06-01T12:00:00"),
    "string": ("", "长者饭堂", "%00", "街" * 300),
}
"""Query values found to break APIs — tiny and huge floats, integers past 64 bits, dates at
and past the ends of time — by the parameter's type: the fuzzing phase puts one into two
queries in three."""
EXTREME_VALUES = frozenset(value for values in EXTREMES.values() for value in values)


def extremes_for(definition: dict[str, Any]) -> tuple[str, ...]:
    text = str(definition.get("schema", definition))
    for kind in ("date-time", "integer", "number"):
        if f"'{kind}'" in text:
            return EXTREMES[kind] + EXTREMES["string"][:2]
    return EXTREMES["string"] + EXTREMES["integer"][:2]


CROSS_FIELD_RULES = re.compile("|".join((
    r"give either version or as_of, not both",
    r"must not be after to_version",
    r"end must not be before start",
    r"'to' must not be before 'from'",
    r"must lie within the contract period",
    r"weights must sum to 1",
    r"basis needs a citation",  # an amendment's basis, against the directive's own citation
    # lists of objects unique by a key (lists of names say uniqueItems in the document)
    r"(admission|indicators|stakeholders|rules): '.*' appears more than once",
    r"unresolvable_host",
    r"forbidden_address",
    r"must be a stakeholder, in the escalation chain",  # joint_decision (SPEC §13)
    r"corrected outcome gives|a correction overrides nothing",
)))
"""Refusals of schema-valid requests that JSON Schema cannot express: rules between
fields, or facts outside the request (the contract's period, DNS, the SSRF allow-list)."""

@dataclass(frozen=True)
class Seeded:
    """A key to call with, and real ids so that paths reach real resources."""

    key: str
    path_parameters: dict[str, str]


def seed_world(server: LiveServer, role: str) -> Seeded:
    """A contract with a contradiction between two stakeholders' directives."""
    admin = Needle(server.base_url, ADMIN_KEY)
    world = World.build(admin)
    street, provider = world.as_("street"), world.as_("provider")
    first = street.ok("POST", f"{world.path}/directives", 201, json=directive(
        subject="elderly_center.closing_time", value="20:00",
        summary="长者饭堂晚上八点关门 close the elderly canteen at eight"))
    provider.ok("POST", f"{world.path}/directives", 201, json=directive(
        subject="elderly_center.closing_time", value="18:00", basis="contract",
        citation="服务合同 第五条 opening hours clause",
        summary="合同约定六点关门 the contract says six"))
    replayed = admin.ok("GET", f"{world.path}/conflicts", params={"version": world.version()})
    assert replayed["conflicts"], "the seeded contradiction must be detected"
    return Seeded(
        key=ADMIN_KEY if role == "admin" else world.keys["street"],
        path_parameters={
            "contract_id": world.contract_id,
            "directive_id": first["id"],
            "conflict_id": replayed["conflicts"][0]["id"],
        },
    )


def prefer_real_ids(case: schemathesis.Case, seeded: Seeded) -> None:
    """Point three in four generated path ids at seeded resources.

    A counter decides which, so a run is repeatable; the rest keep their generated
    value, so unknown and hostile ids stay exercised, as do deliberately invalid ones.
    """
    if next(CALLS) % 4 == 0 or (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        return
    for name, real in seeded.path_parameters.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = real


def a_key_of_its_own(case: schemathesis.Case) -> None:
    """Each generated request is a new one, as a client's would be: a valid generated
    ``Idempotency-Key`` is made unique (generated keys repeat, with other bodies: 422)."""
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and re.fullmatch(IDEMPOTENCY_KEY, key):
        case.headers["Idempotency-Key"] = f"{next(KEYS)}.{key}"[:255]


def bound_waiting(case: schemathesis.Case) -> None:
    """A live view asked for an unreachable ``min_position`` waits ``wait`` seconds: cap it.

    Nothing projects here, so every such request would wait in full (5 s by default).
    """
    if not case.query or "min_position" not in case.query:
        return
    try:
        too_long = float(case.query.get("wait", MAX_WAIT + 1)) > MAX_WAIT
    except (TypeError, ValueError):
        return  # not a number: the API refuses it without waiting
    if too_long:
        case.query["wait"] = MAX_WAIT


@pytest.fixture(params=["admin", "stakeholder"])
def seeded(request: pytest.FixtureRequest, live_server: LiveServer) -> Seeded:
    return seed_world(live_server, request.param)


@pytest.fixture
def api_schema(seeded: Seeded, live_server: LiveServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")
    schema.config.update(base_url=live_server.base_url)
    schema.config.seed = SEED
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True,
                                    no_shrink=True)
    schema.config.phases.update(phases=PHASES)
    schema.hook("flatmap_query")(with_extreme_values)
    return schema


def with_extreme_values(context: schemathesis.HookContext, query: dict[str, Any] | None
                        ) -> st.SearchStrategy[dict[str, Any] | None]:
    """``flatmap_query``: the generated query, or it with one parameter made extreme."""
    parameters = list(context.operation.query) if context.operation else []
    if not parameters:
        return st.just(query)
    extreme = st.sampled_from(parameters).flatmap(lambda parameter: st.sampled_from(
        extremes_for(parameter.definition)).map(
            lambda value: {**(query or {}), parameter.name: value}))
    return st.one_of(st.just(query), extreme, extreme)


# --- checks beyond schemathesis' defaults -------------------------------------------


def media_type(response: schemathesis.Response) -> str:
    return (response.headers.get("content-type") or [""])[0].split(";")[0].strip()


def problem_document(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                     case: schemathesis.Case) -> bool | None:
    """SPEC §9: every error is ``application/problem+json`` with type, title, status, detail."""
    if response.status_code < 400:
        return None
    assert media_type(response) == "application/problem+json", (
        f"{response.status_code} answered as {media_type(response)!r}, not a problem document")
    document = response.json()
    missing = [field for field in PROBLEM_FIELDS if field not in document]
    assert not missing, f"the problem document lacks {missing}: {document}"
    assert document["status"] == response.status_code, document
    return True


def no_server_error(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                    case: schemathesis.Case) -> bool | None:
    """No 5xx, except the documented 503 of a live view that lags (SPEC §9).

    Nothing projects in this module, so a live view asked for ``min_position``
    honestly answers ``projection_lagging`` with ``Retry-After``.
    """
    if response.status_code < 500:
        return None
    document = response.json() if media_type(response).endswith("json") else {}
    lagging = (response.status_code == 503 and document.get("code") == "projection_lagging"
               and "retry-after" in response.headers and "min_position" in (case.query or {}))
    assert lagging, f"server error {response.status_code}: {response.text[:500]}"
    return True


def schema_valid_accepted(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                          case: schemathesis.Case) -> bool | None:
    """A request the document calls valid is not refused as invalid (400/422).

    Like schemathesis' ``positive_data_acceptance``, but a 422 naming one of the
    ``CROSS_FIELD_RULES`` is allowed: any other refusal means the document promises
    what the API refuses.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if any(str(value) in EXTREME_VALUES for value in (case.query or {}).values()):
        return None  # made extreme after generation: no longer the document's valid data
    if response.status_code not in (400, 422):
        return None
    document = response.json()
    tolerated = CROSS_FIELD_RULES.pattern
    messages = [error["message"] for error in document.get("errors") or []]
    assert messages and all(re.search(tolerated, m) for m in messages), (
        f"a schema-valid request was refused: {response.text[:500]}")
    return True


def call_as_seeded(case: schemathesis.Case, seeded: Seeded, **checks: Any) -> None:
    """Send a case as every schemathesis test here does: real ids where it names one,
    bounded waits, an ``Idempotency-Key`` of its own, the seeded key; then check it."""
    prefer_real_ids(case, seeded)
    bound_waiting(case)
    a_key_of_its_own(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {seeded.key}"}, **checks)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_the_api_answers_every_generated_request_by_its_contract(
    case: schemathesis.Case, seeded: Seeded
) -> None:
    # Credentials passed here, not in the schema's config, count as explicit: schemathesis'
    # ``ignored_auth`` check then probes the same request without a key and with a wrong one.
    call_as_seeded(case, seeded,
                   additional_checks=[problem_document, no_server_error, schema_valid_accepted],
                   excluded_checks=[not_a_server_error, positive_data_acceptance])
