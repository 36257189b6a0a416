"""The views' documents as the projection writes them: a contract's conflicts (their JSON
kept per conflict, ``ConflictTexts``), its priorities (each entry's JSON kept,
``RankingTexts``), and the board's items, encoded once.

SPEC §9 fixes their shapes; ``workflows/projections.py`` decides when they are written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import orjson

from domain.conflict_tracker import Cursor
from domain.contract import ServiceContract
from domain.priorities import RankMemo
from workflows.explanations import Names, explained


class ConflictTexts:
    """Each conflict's explained record (``workflows.explanations.explained``) and its JSON,
    kept by conflict id while the record is the same object (records are replaced, never
    changed in place) and the organisations' names are the same: a contract's conflicts are
    stored one hash field each (``view_store.conflicts_key``), so a batch explains, encodes
    and writes only the conflicts it changed.  ``ContractViews.view_ops`` reads ``known`` in
    its walk over a contract's conflicts (one lookup each) and asks ``made`` for the
    others."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[Mapping[str, Any], int, dict[str, Any], bytes]] = {}
        """Conflict id → (its record, the names' key, the record explained, its JSON)."""
        self.names: Names = {}
        self.names_key = 0

    def use_names(self, names: Names) -> None:
        self.names = names
        self.names_key = hash(frozenset(names.items()))

    def made(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The record explained and encoded now, and kept."""
        shown = explained(record, self.names)
        text = encoded_json(shown)
        self.known[record["id"]] = (record, self.names_key, shown, text)
        return shown, text

    def forget(self, conflict_ids: Iterable[str]) -> None:
        """Drop these conflicts (their contract left the projector's cache)."""
        for conflict_id in conflict_ids:
            self.known.pop(conflict_id, None)


def priority_document(
    contract: ServiceContract, reference_date: date, position: int,
    memo: RankMemo | None = None,
) -> dict[str, Any]:
    """The contract's ranking (with ``memo``, the contract's last ranking's: ``RankMemo``)."""
    view = contract.priority_view(reference_date, memo=memo)
    return {"contract_id": str(contract.id), "position": position,
            "version": contract.version, **view}


class RankingTexts:
    """A contract's priority document as the projection writes it, once per batch: ranked
    with the contract's ``RankMemo`` (which hands back each unchanged directive's entry, the
    same object, with only its rank and schedule filled in again), and encoded from each
    entry's JSON kept in three pieces around its rank and schedule, by directive id while
    the entry is the same object.  The bytes are those of ``encoded_json`` of the whole
    document (a test compares them); a batch encodes only the entries it changed, where
    encoding the whole ranking of 5,000 directives was ~a fifth of a batch's CPU."""

    def __init__(self) -> None:
        self.memo = RankMemo()
        self.cursor: Cursor | None = None
        """Where the contract's log of conflict writes stood at the last ranking: the memo
        counts again only the conflicts written since (``RankMemo.written``)."""
        self.known: dict[str, tuple[dict[str, Any], bytes, bytes, bytes]] = {}
        """Directive id → (its entry, the JSON before its rank, between its rank and its
        schedule, and after its schedule)."""

    def document(self, contract: ServiceContract, reference_date: date, position: int) -> bytes:
        self.memo.written, self.cursor = contract.conflicts_written(self.cursor)
        document = priority_document(contract, reference_date, position, self.memo)
        ranked = document.pop("priorities")  # (the last key: the rest is the head, in order)
        head = encoded_json(document)
        if len(self.known) > 2 * len(ranked) + 100:  # withdrawn directives dropped
            self.known = {}
        known = self.known
        schedules: dict[int, bytes] = {}
        parts = [head[:-1], b',"priorities":[']
        for entry in ranked:
            pieces = known.get(entry["directive_id"])
            if pieces is None or pieces[0] is not entry:
                pieces = self._pieces(entry)
            schedule = entry["schedule"]
            text = schedules.get(id(schedule))  # (few distinct schedules, shared)
            if text is None:
                text = schedules[id(schedule)] = encoded_json(schedule)
            parts += (pieces[1], b"%d" % entry["rank"], pieces[2], text, pieces[3], b",")
        if ranked:
            parts.pop()
        parts.append(b"]}")
        return b"".join(parts)

    def _pieces(self, entry: dict[str, Any]) -> tuple[dict[str, Any], bytes, bytes, bytes]:
        # Inside a JSON string every quote is escaped: `,"rank":` is the entry's own key.
        text = encoded_json({**entry, "rank": 0, "schedule": None})
        before, _, rest = text.partition(b',"rank":0,')
        between, _, after = rest.partition(b',"schedule":null')
        pieces = (entry, before + b',"rank":', b"," + between + b',"schedule":', after)
        self.known[entry["directive_id"]] = pieces
        return pieces


def board_item(contract: ServiceContract, conflict: dict[str, Any]) -> dict[str, Any]:
    return {**conflict, "contract_id": str(contract.id), "contract_code": contract.code}


def board_item_text(contract: ServiceContract, conflict: dict[str, Any], text: bytes) -> bytes:
    """``encoded_json(board_item(contract, conflict))`` made from ``text``, the conflict's
    own JSON: the item is the conflict with the contract's id and code after its last key,
    so the two are joined in before its closing brace (encoding a large conflict again,
    an over-capacity run of thousands of members, was ~2 % of a hot batch)."""
    if not conflict or "contract_id" in conflict or "contract_code" in conflict:
        return encoded_json(board_item(contract, conflict))
    tail = encoded_json({"contract_id": str(contract.id), "contract_code": contract.code})
    return text[:-1] + b"," + tail[1:]


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
