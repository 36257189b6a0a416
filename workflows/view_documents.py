"""The views' documents as the projection writes them: a contract's conflicts (their JSON
kept per conflict, ``Encoded``), its priorities, and the board's items, encoded once.

SPEC §9 fixes their shapes; ``workflows/projections.py`` decides when they are written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import orjson

from domain.contract import ServiceContract
from domain.priorities import RankMemo, priority_view


class Encoded:
    """The JSON of explained conflicts, kept by conflict id while the explained record is the
    same object (``Explainer`` answers the same object until the record or the names change):
    a contract's conflict document is its records' texts joined, so a batch encodes only the
    conflicts it changed.  ``conflict_json`` is the contract id, position, version and every
    explained conflict, as one JSON object."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[dict[str, Any], bytes]] = {}

    def __call__(self, explained: dict[str, Any]) -> bytes:
        known = self._texts.get(explained["id"])
        if known is not None and known[0] is explained:
            return known[1]
        text = encoded_json(explained)
        self._texts[explained["id"]] = (explained, text)
        return text

    def forget(self, conflict_ids: Iterable[str]) -> None:
        for conflict_id in conflict_ids:
            self._texts.pop(conflict_id, None)

    def conflict_json(self, contract: ServiceContract, position: int,
                      texts: list[bytes]) -> bytes:
        """The conflict document, given its conflicts' JSON in order (``self`` of each
        explained record: ``ContractViews.view_ops`` takes them in its walk over them)."""
        head = encoded_json({"contract_id": str(contract.id), "position": position,
                             "version": contract.version})
        return head[:-1] + b',"conflicts":[' + b",".join(texts) + b"]}"


def priority_document(
    contract: ServiceContract, reference_date: date, position: int,
    memo: RankMemo | None = None,
) -> dict[str, Any]:
    """The contract's ranking (with ``memo``, the contract's last ranking's: ``RankMemo``)."""
    # every directive: the ranking's state keeps the active ones (one pass, not two)
    view = priority_view(contract.terms, contract.directives.values(), reference_date,
                         conflicts=contract.conflicts, memo=memo)
    return {"contract_id": str(contract.id), "position": position,
            "version": contract.version, **view}


def board_item(contract: ServiceContract, conflict: dict[str, Any]) -> dict[str, Any]:
    return {**conflict, "contract_id": str(contract.id), "contract_code": contract.code}


def due_epoch(conflict: dict[str, Any]) -> float:
    return datetime.fromisoformat(conflict["due"]).timestamp()


def encoded_json(document: Any) -> bytes:
    """A view's JSON, UTF-8: orjson (~9 × faster than ``json`` on a 5,000-entry ranking, and
    the same bytes but for floats under 1e-4, written ``0.00001`` rather than ``1e-05``:
    the same numbers to every reader); ``json`` for what orjson refuses (integers past 64
    bits), so nothing a view held before fails now."""
    try:
        return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
