"""Givens for the conflict and priority tests: plain contract terms and directive dicts.

The detectors and the ranking take the contract's ``terms`` dict and directive
dicts exactly as a ``ServiceContract`` holds them, so these givens build
those dicts directly, with every field filled the way the aggregate fills it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from domain.terms import CONFIDENTIALITY_RULE

from .givens import HAIZHU_YOUTH, directive_id

DEMO = Path(__file__).resolve().parents[2] / "cli" / "demo_data" / "guangzhou-demo.json"


def contract_terms(**overrides: Any) -> dict[str, Any]:
    """The Haizhu youth contract's terms as the aggregate stores them (JSON-native).

    14 social workers × 40 h = 560 h a week; 400 h committed; 160 h free.
    Period 2008-03-03 (Monday of 2008-W10) to 2009-03-01 (Sunday of 2009-W09).
    """
    terms = json.loads(json.dumps(HAIZHU_YOUTH))
    terms["rules"] = [CONFIDENTIALITY_RULE.model_dump(mode="json")]
    terms.update(overrides)
    return terms


_issued = iter(range(2, 1_000_000))


def directive(name: str, issuer: str, **fields: Any) -> dict[str, Any]:
    """An active directive named ``name`` (its id is ``uuid5`` of the name), issued in order."""
    period = HAIZHU_YOUTH["period"]
    return {
        "id": str(directive_id(name)),
        "issuer": issuer,
        "subject": "reporting.weekly",
        "value": None,
        "summary": name,
        "basis": "purchaser_request",
        "hours_per_week": 0,
        "window": {"from": period["start"], "to": period["end"]},
        "due": None,
        "people_affected": 0,
        "vulnerability": 0,
        "target_groups": [],
        "locations": [],
        "indicator": None,
        "tags": [],
        "status": "active",
        "issued_version": next(_issued),
        "issued_at": "2008-06-02T09:00:00+08:00",
        **fields,
    }


def demo_contract(code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A demo contract's terms and directives, numbered d1, d2, … in the scenario's order."""
    scenario = json.loads(DEMO.read_text(encoding="utf-8"))
    spec = next(c for c in scenario["contracts"] if c["code"] == code)
    terms = {key: value for key, value in spec.items() if key != "directives"}
    terms["rules"] = [CONFIDENTIALITY_RULE.model_dump(mode="json"), *terms.get("rules", [])]
    period = terms["period"]
    directives = []
    for number, body in enumerate(spec["directives"], start=1):
        directives.append({
            "id": f"d{number}",
            "value": None,
            "hours_per_week": 0,
            "window": {"from": period["start"], "to": period["end"]},
            "due": None,
            "people_affected": 0,
            "vulnerability": 0,
            "target_groups": [],
            "locations": [],
            "indicator": None,
            "tags": [],
            **body,
            "status": "active",
            "issued_version": number + 1,
        })
    return terms, directives
