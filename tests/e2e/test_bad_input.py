"""Bad input, on every command endpoint: a 4xx problem document, and nothing recorded.

SPEC §11's last row: malformed JSON, wrong types, unknown fields, oversized
bodies and strings, foreign contract ids and keys.  Each case checks that the
store's head position, the contract's version and its history are unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .client import Needle, World, contract_terms, directive, unique
from .ledger import assert_problem, ledger_state

LIMIT = 64 * 1024


@dataclass
class Endpoint:
    method: str
    path: str
    client: Needle
    body: dict[str, Any]
    long_string: str  # a string field with a length limit
    wrong_types: dict[str, Any]  # fields given a value of the wrong JSON type


def organizations(world: World) -> Endpoint:
    return Endpoint("POST", "/v1/organizations", world.admin,
                    {"id": unique("org"), "name": "某机构", "kind": "other"},
                    "name", {"kind": 7})


def keys(world: World) -> Endpoint:
    return Endpoint("POST", "/v1/keys", world.admin, {"org": world.street, "role": "stakeholder"},
                    "org", {"role": ["admin"]})


def contracts(world: World) -> Endpoint:
    terms = contract_terms(unique("C").upper(), world.street, world.provider)
    return Endpoint("POST", "/v1/contracts", world.admin, terms, "title",
                    {"capacity": {"staff": "14", "hours_per_staff_week": 40,
                                  "committed_hours_per_week": 0}})


def stakeholders(world: World) -> Endpoint:
    return Endpoint("POST", f"{world.path}/stakeholders", world.admin,
                    {"org": world.outsider, "standing": "party"}, "org", {"standing": True})


def lifecycle(world: World) -> Endpoint:
    return Endpoint("POST", f"{world.path}/suspend", world.admin, {}, "reason", {})


def policy(world: World) -> Endpoint:
    return Endpoint("PUT", f"{world.path}/policy", world.admin, {"profile": "client_first"},
                    "profile", {"weights": "heavy"})


def issue(world: World) -> Endpoint:
    return Endpoint("POST", f"{world.path}/directives", world.as_("street"), directive(),
                    "summary", {"hours_per_week": "ten", "people_affected": 1.5})


def amend(world: World) -> Endpoint:
    issued = world.as_("street").ok("POST", f"{world.path}/directives", 201, json=directive())
    return Endpoint("PATCH", f"{world.path}/directives/{issued['id']}", world.as_("street"),
                    {"summary": "改为每周六开放"}, "summary", {"vulnerability": "high"})


ENDPOINTS: list[Callable[[World], Endpoint]] = [
    organizations, keys, contracts, stakeholders, lifecycle, policy, issue, amend,
]


@pytest.fixture(params=ENDPOINTS, ids=lambda make: make.__name__)
def endpoint(request: pytest.FixtureRequest, world: World) -> tuple[World, Endpoint]:
    return world, request.param(world)


def send(endpoint: Endpoint, content: bytes | Iterator[bytes]) -> Any:
    return endpoint.client.request(endpoint.method, endpoint.path, content=content,
                                   headers={"Content-Type": "application/json"})


def test_malformed_json_is_422(endpoint: tuple[World, Endpoint]) -> None:
    world, target = endpoint
    before = ledger_state(world)
    for body in (b'{"summary": "unterminated', b"{'single': 'quotes'}", b"\xff\xfe\x00",
                 b'{"a": 1} trailing'):
        # When the body is not JSON at all
        response = send(target, body)
        # Then it is a 422 problem naming the body, and nothing is recorded
        problem = assert_problem(response, 422, "malformed_json")
        assert problem["errors"][0]["field"] == "body"
    assert ledger_state(world) == before


def test_wrong_types_are_422_naming_the_field(endpoint: tuple[World, Endpoint]) -> None:
    world, target = endpoint
    before = ledger_state(world)
    # When the whole body is the wrong type
    for body in ([target.body], "a string", 42):
        assert_problem(target.client.request(target.method, target.path, json=body), 422)
    # When fields have the wrong types
    if target.wrong_types:
        response = target.client.request(target.method, target.path,
                                          json={**target.body, **target.wrong_types})
        problem = assert_problem(response, 422, "validation_failed")
        fields = {error["field"].split(".")[0] for error in problem["errors"]}
        assert fields >= set(target.wrong_types), problem
    # Then nothing is recorded
    assert ledger_state(world) == before


def test_unknown_fields_are_422(endpoint: tuple[World, Endpoint]) -> None:
    world, target = endpoint
    before = ledger_state(world)
    # When the body carries a field the API does not know (even the server-assigned issuer)
    for extra in ({"unexpected": 1}, {"issuer": world.outsider}, {"version": 99}):
        response = target.client.request(target.method, target.path,
                                          json={**target.body, **extra})
        # Then it is refused with the field named
        problem = assert_problem(response, 422, "validation_failed")
        assert any(error["field"].endswith(next(iter(extra))) for error in problem["errors"])
    assert ledger_state(world) == before


def test_oversized_bodies_are_413(endpoint: tuple[World, Endpoint]) -> None:
    world, target = endpoint
    before = ledger_state(world)
    padding = "x" * (LIMIT + 1)
    # When the body is over 64 KiB and says so in Content-Length
    big = {**target.body, target.long_string: padding}
    response = target.client.request(target.method, target.path, json=big)
    assert_problem(response, 413, "payload_too_large")

    # When the body is over 64 KiB but streamed in chunks with no Content-Length
    def chunks() -> Iterator[bytes]:
        yield b'{"' + target.long_string.encode() + b'": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    response = send(target, chunks())
    assert_problem(response, 413, "payload_too_large")
    # Then nothing is recorded
    assert ledger_state(world) == before


def test_oversized_strings_are_422(endpoint: tuple[World, Endpoint]) -> None:
    world, target = endpoint
    before = ledger_state(world)
    # When a string field is far longer than allowed (but the body is under 64 KiB),
    # in Chinese too: limits count characters, not bytes
    for long_text in ("长" * 2001, "a" * 20_000):
        response = target.client.request(target.method, target.path,
                                          json={**target.body, target.long_string: long_text})
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["field"].startswith(target.long_string)
    assert ledger_state(world) == before


def test_summary_limit_is_500_characters_of_any_language(world: World) -> None:
    street = world.as_("street")
    before = ledger_state(world)
    # When a summary has 501 Chinese characters, then it is refused
    response = street.issue(world.contract_id, summary="街" * 501)
    assert_problem(response, 422, "validation_failed")
    assert ledger_state(world) == before
    # When it has exactly 500, then it is accepted and round-trips
    issued = street.ok("POST", f"{world.path}/directives", 201, json=directive(summary="街" * 500))
    (shown,) = street.contract(world.contract_id)["directives"]
    assert shown["id"] == issued["id"] and shown["summary"] == "街" * 500


FOREIGN_IDS: list[Callable[[World], str]] = [
    lambda w: str(uuid.uuid4()),
    lambda w: w.code,  # a contract's code is not its id
    lambda w: "not-a-uuid",
    lambda w: "00000000-0000-0000-0000-000000000000",
]


@pytest.mark.parametrize("foreign", FOREIGN_IDS, ids=["random", "code", "garbage", "nil"])
def test_foreign_contract_ids_are_404_everywhere(world: World, foreign: Callable[[World], str]
                                                 ) -> None:
    contract_id = foreign(world)
    path = f"/v1/contracts/{contract_id}"
    before = ledger_state(world)
    admin, street = world.admin, world.as_("street")
    # When any endpoint is given a contract id that is not one
    for client, method, suffix, body in (
        (admin, "GET", "", None),
        (admin, "GET", "/history", None),
        (admin, "GET", "/audit", None),
        (admin, "GET", "/export", None),
        (admin, "POST", "/activate", {}),
        (admin, "PUT", "/policy", {"profile": "client_first"}),
        (admin, "POST", "/stakeholders", {"org": world.outsider}),
        (street, "POST", "/directives", directive()),
        (street, "PATCH", f"/directives/{uuid.uuid4()}", {"summary": "x"}),
        (street, "DELETE", f"/directives/{uuid.uuid4()}", None),
    ):
        response = client.request(method, path + suffix, json=body)
        # Then it is a 404 problem
        assert_problem(response, 404, "not_found")
    assert ledger_state(world) == before


def test_ids_of_other_kinds_of_thing_are_not_contracts(world: World) -> None:
    # Given the id of a key (an aggregate in the same store, but not a contract)
    key = world.admin.ok("POST", "/v1/keys", 201, json={"org": world.street, "role": "supervisor"})
    before = ledger_state(world)
    # When it is used as a contract id, or a contract id is used as a key id
    assert_problem(world.admin.get(f"/v1/contracts/{key['id']}"), 404)
    assert_problem(world.admin.delete(f"/v1/keys/{world.contract_id}"), 404)
    assert_problem(world.admin.delete(f"/v1/keys/{uuid.uuid4()}"), 404)
    # And a directive id that belongs to no directive of the contract
    street = world.as_("street")
    assert_problem(street.patch(f"{world.path}/directives/{world.contract_id}",
                                json={"summary": "x"}), 404)
    # Then nothing is recorded
    assert ledger_state(world) == before


def test_unknown_organisations_in_bodies_are_refused(world: World) -> None:
    before = ledger_state(world)
    ghost = unique("ghost")
    # When a key, a stakeholder or a contract names an organisation nobody registered
    assert_problem(world.admin.post("/v1/keys", json={"org": ghost, "role": "stakeholder"}), 404)
    assert_problem(world.admin.post(f"{world.path}/stakeholders", json={"org": ghost}), 404)
    terms = contract_terms(unique("G").upper(), ghost, world.provider)
    assert_problem(world.admin.post("/v1/contracts", json=terms), 404)
    # Then nothing is recorded
    assert ledger_state(world) == before


def test_bad_query_and_header_values_are_422(world: World) -> None:
    before = ledger_state(world)
    admin = world.admin
    # When query parameters have the wrong type or range
    for params in ({"version": "two"}, {"version": 0}, {"as_of": "yesterday"},
                   {"version": 1, "as_of": "2008-06-01T00:00:00Z"}):
        assert_problem(admin.get(world.path, params=params), 422, "validation_failed")
    for params in ({"limit": 0}, {"limit": 100_000}, {"after_version": -1}):
        assert_problem(admin.get(f"{world.path}/history", params=params), 422)
    # When If-Match or Idempotency-Key is malformed
    street = world.as_("street")
    assert_problem(street.post(f"{world.path}/directives", json=directive(),
                               headers={"If-Match": "five"}), 422)
    assert_problem(street.post(f"{world.path}/directives", json=directive(),
                               headers={"Idempotency-Key": "k" * 300}), 422)
    # Then nothing is recorded
    assert ledger_state(world) == before


def test_a_body_that_is_not_json_content_is_refused(world: World) -> None:
    before = ledger_state(world)
    # When a directive is sent as form data or plain text
    street = world.as_("street")
    for headers in ({"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        response = street.post(f"{world.path}/directives", content=b'{"subject": "a"}',
                               headers=headers)
        # Then it is a 4xx problem, and nothing is recorded
        assert 400 <= response.status_code < 500
        assert_problem(response, response.status_code)
    assert ledger_state(world) == before


def test_unknown_routes_and_methods_are_problems(admin: Needle) -> None:
    assert_problem(admin.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(admin.request("PATCH", "/v1/organizations"), 405, "method_not_allowed")
