"""A contract's recorded history: paged events, the hash-chain audit, the JSON Lines export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import MAX_INTEGER, CallerDep, ContractId, LedgerDep, ReplaysDep
from api.problems import problem_responses
from api.responses import ChainAudit, History, documented
from workflows import history

router = APIRouter(prefix="/v1/contracts/{contract_id}", tags=["history"],
                   responses=problem_responses(401, 403, 404, 422))


@router.get("/history", **documented(History))
def read_history(
    contract_id: ContractId,
    caller: CallerDep,
    ledger: LedgerDep,
    after_version: Annotated[int, Query(
        ge=0, le=MAX_INTEGER, description="Events after this version")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return history.history(ledger, caller, contract_id, after_version=after_version, limit=limit)


@router.get("/audit", response_model=ChainAudit)
async def audit_history(contract_id: ContractId, caller: CallerDep, ledger: LedgerDep,
                        replays: ReplaysDep) -> Any:
    report = await replays.run(caller, history.audit, ledger, caller, contract_id)
    return {
        "verified": report.verified,
        "events": report.events,
        "head": report.head,
        "first_broken_version": report.first_broken_version,
        "reason": report.reason,
    }


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}},
                             "description": "One JSON event record per line"}})
def export_history(
    contract_id: ContractId, caller: CallerDep, ledger: LedgerDep
) -> StreamingResponse:
    records = history.export(ledger, caller, contract_id)
    first = next(records, None)  # runs the access check now, so a refusal is a problem, not a 200
    lines = _json_lines(chain([first], records) if first is not None else iter(()))
    return StreamingResponse(
        lines, media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{contract_id}.jsonl"'},
    )


def _json_lines(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
