"""A small HTTP client for the end-to-end tests: one key, plain httpx, no app internals.

``Needle`` speaks to the live server; ``World`` sets up what most tests need —
uniquely named organisations, a contract with its stakeholders, and a key per
role — through the API itself, so every test has a ledger of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx


class Needle:
    def __init__(self, base_url: str, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.base_url = base_url
        self.key = key
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def as_key(self, key: str | None) -> Needle:
        return Needle(self.base_url, key)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    # --- the calls most tests make, checked ------------------------------------

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def register(self, org_id: str, name: str, kind: str) -> None:
        self.ok("POST", "/v1/organizations", 201, json={"id": org_id, "name": name, "kind": kind})

    def new_key(self, org: str, role: str) -> str:
        body = self.ok("POST", "/v1/keys", 201, json={"org": org, "role": role})
        return str(body["key"])

    def contract(self, contract_id: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.ok("GET", f"/v1/contracts/{contract_id}", params=params)
        return body

    def history(self, contract_id: str) -> list[dict[str, Any]]:
        body = self.ok("GET", f"/v1/contracts/{contract_id}/history", params={"limit": 1000})
        return list(body["events"])

    def issue(self, contract_id: str, **fields: Any) -> httpx.Response:
        return self.post(f"/v1/contracts/{contract_id}/directives", json=directive(**fields))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def contract_terms(code: str, purchaser: str, provider: str, **overrides: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "code": code,
        "title": "海珠区青少年服务 Haizhu youth services",
        "purchaser": purchaser,
        "provider": provider,
        "budget": {"amount": "2000000.00", "currency": "CNY"},
        "period": {"start": "2008-06-01", "end": "2009-05-31"},
        "service_area": ["江南中街", "素社街"],
        "target_groups": ["youth"],
        "capacity": {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400},
        "indicators": [{"key": "casework", "target": 120, "unit": "cases"}],
    }
    terms.update(overrides)
    return terms


def directive(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "youth_zone.opening_hours",
        "value": "09:00-21:00",
        "summary": "青少年地带晚上开放 keep the youth zone open in the evening",
        "basis": "purchaser_request",
        "hours_per_week": 10,
        "people_affected": 60,
        "vulnerability": 0.4,
    }
    body.update(fields)
    return body


@dataclass
class World:
    """One contract and its cast, all uniquely named, reachable only through HTTP."""

    admin: Needle
    street: str  # purchaser and party stakeholder
    provider: str
    bureau: str  # resolver: in the escalation chain
    residents: str  # non-party stakeholder
    outsider: str  # registered, but nothing to do with this contract
    contract_id: str
    code: str
    keys: dict[str, str] = field(default_factory=dict)

    def as_(self, who: str) -> Needle:
        return self.admin.as_key(self.keys[who])

    @classmethod
    def build(cls, admin: Needle, *, activate: bool = True) -> World:
        street, provider, bureau = unique("street"), unique("provider"), unique("bureau")
        residents, outsider = unique("residents"), unique("outsider")
        admin.register(street, "江南中街街道办事处", "street_office")
        admin.register(provider, "启智社会工作服务中心", "provider")
        admin.register(bureau, "海珠区民政局", "civil_affairs_bureau")
        admin.register(residents, "江南中街居民", "residents")
        admin.register(outsider, "荔湾区某街道", "street_office")
        evaluator = unique("evaluator")
        admin.register(evaluator, "第三方评估机构", "evaluator")
        code = unique("HZ-YOUTH").upper()
        terms = contract_terms(
            code, street, provider,
            stakeholders=[{"org": street, "standing": "party"},
                          {"org": provider, "standing": "party"},
                          {"org": residents, "standing": "non_party"}],
            escalation_chain=[provider, bureau],
        )
        contract_id = admin.ok("POST", "/v1/contracts", 201, json=terms)["id"]
        if activate:
            admin.ok("POST", f"/v1/contracts/{contract_id}/activate")
        world = cls(admin, street, provider, bureau, residents, outsider, contract_id, code)
        world.keys = {
            "street": admin.new_key(street, "stakeholder"),
            "provider": admin.new_key(provider, "stakeholder"),
            "residents": admin.new_key(residents, "stakeholder"),
            "outsider": admin.new_key(outsider, "stakeholder"),
            "resolver": admin.new_key(bureau, "resolver"),
            "outside_resolver": admin.new_key(outsider, "resolver"),
            "supervisor": admin.new_key(evaluator, "supervisor"),
        }
        return world

    @property
    def path(self) -> str:
        return f"/v1/contracts/{self.contract_id}"

    def version(self) -> int:
        return int(self.admin.contract(self.contract_id)["version"])
