"""Every answer the API documents has a shape (issue 12): no JSON success answer is a bare
object, every reference resolves, and no response model shares a request body's name."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.openapi_bodies import document_request_bodies
from api.routes import api_router


def the_document() -> dict[str, Any]:
    app = FastAPI()
    app.include_router(api_router)
    document_request_bodies(app)
    return app.openapi()


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def test_every_json_success_answer_names_its_model() -> None:
    shapeless = []
    for path, operations in the_document()["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                json = answer.get("content", {}).get("application/json")
                if status.startswith("2") and json is not None and "$ref" not in json["schema"]:
                    shapeless.append(f"{method.upper()} {path} {status}")
    assert shapeless == []


def test_every_reference_resolves_to_a_plainly_named_component() -> None:
    document = the_document()
    components = document["components"]["schemas"]
    missing = {
        ref
        for ref in references(document)
        if ref.removeprefix("#/components/schemas/") not in components
    }
    assert missing == set()
    # FastAPI spells two models of one name by their modules: a response shadowing a body
    assert [name for name in components if "__" in name] == []
