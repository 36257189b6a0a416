"""A property over every GET route's query parameters: no value makes the API fail.

The routes and their parameters come from the API's own ``/openapi.json``, so a
route added later is covered without touching this test.  Each example draws,
for every route and each of its query parameters, nothing or a hostile value
of the parameter's kind (its very edges often) or of any other kind: integers
far past 64 bits, floats from 5e-324 to 1e308 and ``inf``/``nan``, ISO times at
and past the ends of time with every offset, Chinese and control characters.  Whatever it draws, the
answer is a 2xx JSON document or a 4xx problem document — never a 5xx, except
the documented 503 ``projection_lagging`` of a live view asked to wait for a
position nothing projects here.  Deterministic (derandomized, no database).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from conftest import ADMIN_KEY
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .client import Needle, World, directive
from .conftest import LiveServer

EXAMPLES = 80
MAX_WAIT = 0.05

HUGE_INTEGERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**40, 0, -1]),
).map(str)
EXTREME_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["5e-324", "1.7e-207", "1e308", "-1e308", "inf", "-inf", "nan", "-0.0",
                     "1e-400", "1e400", "0x10", "1_000"]),
)
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
EXTREME_TIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                 timezones=st.one_of(st.none(), OFFSETS)).map(datetime.isoformat),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                     "9999-12-31T23:59:59.999999-00:01", "10000-01-01T00:00:00Z",
                     "2008-02-30T00:00:00Z", "2008-06-01T24:00:00Z", "2008-06-01",
                     "2008-W24", "1e10", "-1"]),
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


EDGES = {
    "integer": st.sampled_from(["9223372036854775807", "9223372036854775808",
                                "-9223372036854775809", "1" + "0" * 40, "0", "-1"]),
    "number": st.sampled_from(["5e-324", "1.7e-207", "1e308", "inf", "nan", "-0.0"]),
    "date-time": st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                  "9999-12-31T23:59:59.999999-00:01",
                                  "0001-01-01T00:00:00.5+00:01"]),
}
"""The values at the very edges, drawn as often as everything else of the kind together."""
GENERAL = {"integer": HUGE_INTEGERS, "number": EXTREME_FLOATS, "date-time": EXTREME_TIMES}


def value_for(parameter: dict[str, Any], reachable_ids: list[str]) -> st.SearchStrategy[str]:
    """Hostile values, weighted to the parameter's declared kind and its edges."""
    schema = str(parameter.get("schema", {}))
    declared = [kind for kind in ("date-time", "integer", "number") if f"'{kind}'" in schema]
    kinds: list[st.SearchStrategy[str]] = []
    for kind in declared[:1]:
        kinds += [EDGES[kind], EDGES[kind], GENERAL[kind]]
    enum = parameter.get("schema", {}).get("enum")
    if enum:
        kinds.append(st.sampled_from([str(v) for v in enum]))
    kinds += [HUGE_INTEGERS, EXTREME_FLOATS, EXTREME_TIMES, TEXT]
    if reachable_ids:
        kinds.append(st.sampled_from(reachable_ids))
    return st.one_of(*kinds)


@pytest.fixture(scope="module")
def routes(live_server: LiveServer) -> list[tuple[str, list[dict[str, Any]]]]:
    document = httpx.get(f"{live_server.base_url}/openapi.json", timeout=30).json()
    found = [(path, [p for p in operation.get("parameters", []) if p["in"] == "query"])
             for path, item in document["paths"].items()
             for method, operation in item.items() if method == "get"]
    assert any(params for _, params in found), "no GET route has query parameters?"
    return found


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> dict[str, str]:
    """Real ids for path parameters: a contract with a conflict, and a webhook."""
    admin = Needle(live_server.base_url, ADMIN_KEY)
    world = World.build(admin)
    street, provider = world.as_("street"), world.as_("provider")
    first = street.ok("POST", f"{world.path}/directives", 201, json=directive(
        subject="elderly_center.closing_time", value="20:00", summary="长者饭堂晚上八点关门"))
    provider.ok("POST", f"{world.path}/directives", 201, json=directive(
        subject="elderly_center.closing_time", value="18:00", summary="合同约定六点关门"))
    conflicts = admin.ok("GET", f"{world.path}/conflicts", params={"version": world.version()})
    return {"contract_id": world.contract_id, "directive_id": first["id"],
            "conflict_id": conflicts["conflicts"][0]["id"] if conflicts["conflicts"] else "x",
            "name": "contracts"}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure names its query
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_query_makes_a_get_route_fail(
    data: st.DataObject, live_server: LiveServer, routes: list[tuple[str, list[dict[str, Any]]]],
    seeded: dict[str, str],
) -> None:
    # Each example sends one drawn query to every GET route that takes query parameters
    with httpx.Client(base_url=live_server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        for path, parameters in routes:
            if parameters:
                check_one(client, data, path, parameters, seeded)


def check_one(client: httpx.Client, data: st.DataObject, path: str,
              parameters: list[dict[str, Any]], seeded: dict[str, str]) -> None:
    url = path
    for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
        url = url.replace(f"{{{name}}}", seeded.get(name, "00000000-0000-0000-0000-000000000000"))
    query: dict[str, str] = {}
    for parameter in parameters:
        if data.draw(st.booleans(), label=f"{path} gives {parameter['name']}"):
            query[parameter["name"]] = data.draw(
                value_for(parameter, [seeded["contract_id"]]), label=parameter["name"])
    if "min_position" in query:  # nothing projects here: never wait long for it
        query["wait"] = str(MAX_WAIT)
    response = client.get(url, params=query)
    kind = response.headers.get("content-type", "").split(";")[0]
    context = (path, query, response.status_code, response.text[:300])
    if response.status_code >= 500:
        assert response.status_code == 503 and "min_position" in query, context
        assert response.json()["code"] == "projection_lagging", context
        assert response.headers["retry-after"], context
    elif response.status_code >= 400:
        assert kind == "application/problem+json", context
        assert response.json()["status"] == response.status_code, context
    else:
        assert response.status_code < 300, context


def test_the_property_covers_every_get_route_with_query_parameters(
    routes: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    names = {p["name"] for _, params in routes for p in params}
    # The parameters the issue found failing are among those generated
    assert {"as_of", "after_version", "wait", "min_position", "version"} <= names, names
