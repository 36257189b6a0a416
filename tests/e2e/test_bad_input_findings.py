"""Issue 11's bad-input findings: each once answered 5xx, each must be a 4xx problem.

SPEC §11, bad input: never a 5xx, nothing recorded.  Every case here was found
by hand or by fuzzing and checks both the answer and the ledger.
"""

from __future__ import annotations

import pytest

from .client import Needle, World, directive
from .ledger import assert_problem, ledger_state

INT64_OVERFLOW = 2**63


def test_a_non_ascii_bearer_key_is_401_while_an_admin_key_is_set(world: World) -> None:
    before = ledger_state(world)
    anonymous = world.admin.as_key(None)
    # When the bearer key holds bytes that are not ASCII (the admin key is set in these tests)
    for raw in (b"Bearer \xff", b"Bearer \xe9\x95\xbf\xe9\x92\xa5", b"Bearer k\x80y"):
        response = anonymous.get("/v1/contracts", headers={"Authorization": raw})
        # Then it is refused as an unknown key
        assert_problem(response, 401, "unauthenticated")
    assert ledger_state(world) == before


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\udc00b", "\\ud83d"])
def test_lone_surrogates_in_a_body_are_422(world: World, escape: str) -> None:
    street = world.as_("street")
    before = ledger_state(world)
    # When a directive's value (or its summary) holds a lone UTF-16 surrogate
    for field in ("value", "summary"):
        body = directive(**{field: "__here__"})
        raw = street.http.build_request("POST", "/", json=body).content.decode()
        raw = raw.replace("__here__", f"街{escape}")
        response = street.post(f"{world.path}/directives", content=raw.encode(),
                               headers={"Content-Type": "application/json"})
        # Then it is refused, naming the field
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["field"] == field, problem
    # But a surrogate pair (an emoji) is fine
    response = street.post(f"{world.path}/directives", content=raw.replace(
        escape, "\\ud83d\\ude00").encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert ledger_state(world).version == before.version + 1


def test_extreme_dates_are_422(world: World) -> None:
    before = ledger_state(world)
    # When as_of is a valid ISO time that cannot be expressed in UTC
    for as_of in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                  "9999-12-31T23:59:59.999999-00:01"):
        for suffix in ("", "/conflicts", "/priorities"):
            response = world.admin.get(world.path + suffix, params={"as_of": as_of})
            # Then it is refused, naming as_of
            problem = assert_problem(response, 422, "validation_failed")
            assert problem["errors"][0]["field"].endswith("as_of"), problem
    assert ledger_state(world) == before


def test_integers_beyond_64_bits_are_422(world: World) -> None:
    before = ledger_state(world)
    admin = world.admin
    # When an integer query parameter does not fit the store's 64-bit integers
    for path, name in ((f"{world.path}/history", "after_version"),
                       (world.path, "version"),
                       (f"{world.path}/conflicts", "version"),
                       (f"{world.path}/priorities", "version"),
                       (f"{world.path}/conflicts", "min_position"),
                       ("/v1/conflicts", "min_position")):
        response = admin.get(path, params={name: INT64_OVERFLOW, "wait": 0})
        # Then it is refused, naming the parameter
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["field"].endswith(name), problem
    response = admin.get(f"{world.path}/diff",
                         params={"from_version": 1, "to_version": INT64_OVERFLOW})
    assert_problem(response, 422, "validation_failed")
    assert ledger_state(world) == before


def test_revoking_a_revoked_key_is_409(world: World) -> None:
    key = world.admin.ok("POST", "/v1/keys", 201, json={"org": world.street, "role": "resolver"})
    world.admin.ok("DELETE", f"/v1/keys/{key['id']}")
    before = ledger_state(world)
    # When the key is revoked again
    response = world.admin.delete(f"/v1/keys/{key['id']}")
    # Then it is a conflict with its state, and nothing is recorded
    assert_problem(response, 409)
    assert ledger_state(world) == before
    # And the key stays refused
    assert_problem(world.admin.as_key(key["key"]).get("/v1/contracts"), 401)


@pytest.mark.parametrize("wait", ["1.7e-207", "5e-324", "0", "1e-9"])
def test_tiny_waits_answer_the_live_views(world: World, wait: str) -> None:
    admin = world.admin
    # When a live view is asked with a vanishingly small wait (and no position to wait for)
    for path in (f"{world.path}/conflicts", f"{world.path}/priorities", "/v1/conflicts"):
        response = admin.get(path, params={"wait": wait})
        # Then it answers the view as it is
        assert response.status_code == 200, (path, response.text)
        assert "x-projection-position" in response.headers
    # And with a position it cannot have reached yet, the honest 503 with Retry-After
    response = admin.get(f"{world.path}/conflicts",
                         params={"wait": wait, "min_position": 10**15})
    assert_problem(response, 503, "projection_lagging")
    assert response.headers["retry-after"]


def test_huge_and_non_finite_waits_are_422(admin: Needle) -> None:
    for wait in ("1e308", "inf", "nan", "-0.1", "31"):
        response = admin.get("/v1/conflicts", params={"wait": wait})
        assert_problem(response, 422, "validation_failed")
