"""Which texts the stored views were written with: a fingerprint of the explanations.

The projection stores each conflict's ``explanations`` in Redis (SPEC §12), so a
release that changes how a conflict is explained (a catalogue entry, a writer in
``workflows/explanations.py``, a word of ``workflows/vocabulary.py`` or a kind of
work's label) leaves the stored views saying the old sentences until each
contract happens to be projected again.  ``texts_fingerprint`` explains a fixed
set of conflicts, one of each kind and every variant a writer has (every basis,
field, kind of work, target group, tag and rule with a word, directives with and
without summaries, merges and
precedents), in every language, and hashes
the sentences: it changes exactly when what a reader would see changes, and not
for a comment or a refactoring.  ``projection_control.rebuild_if_texts_changed``
compares it with the one stored beside the views and rebuilds them on a change.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from domain.directives import Basis, DirectiveFields
from domain.work_kinds import WORK_KINDS
from workflows import vocabulary
from workflows.explanations import explanations

NAMES = {"org-a": "海幢街道办事处", "org-b": "Haizhu Civil Affairs Bureau"}
WINDOW = {"from": "2008-03-03", "to": "2008-06-29"}
KINDS_OF_WORK = sorted(WORK_KINDS)


def _samples() -> list[dict[str, Any]]:
    """One conflict of each kind, and of each variant its writer has."""
    subject = {"subject": "reporting.weekly"}
    details: list[tuple[str, dict[str, Any]]] = [
        ("contradiction", {**subject, "window": WINDOW, "sides": [
            {"value": "17:30", "issuers": ["org-a"], "summaries": ["按合同17:30闭馆"]},
            {"value": {"format": "表格"}, "issuers": ["org-b", "org-c"]}]}),
        ("duplicate", {**subject, "window": WINDOW, "issuers": ["org-a", "org-b"],
                       "values": [{"format": "street"}], "summaries": ["每周报送", "weekly"]}),
        ("over_capacity", {"weeks": ["2008-W10", "2008-W11"], "heaviest": [
            {"issuer": "org-a", "subject": "s.one", "summary": "抽调社工", "hours": 80.5},
            {"issuer": "org-b", "subject": "s.two", "hours": 12}],
            "committed_hours_per_week": 400, "weekly_capacity_hours": 560,
            "excess_hours": 38.25, "peak_week": "2008-W11"}),
        ("out_of_scope", {**subject, "summary": "“旧改”拆迁谈判", "issuer": "org-a",
                          "outside_target_groups": [*sorted(vocabulary.TARGET_GROUPS), "other"],
                          "outside_locations": ["赤岗街"], "outside_task_types": KINDS_OF_WORK}),
        ("not_admitted", {**subject, "issuer": "org-a"}),
        ("disputed", {**subject, "disputed_by": "org-a", "issuer": "org-b", "reason": "不足60户",
                      "fields": list(DirectiveFields.model_fields)}),
        ("unregistered", {**subject}),
    ]
    details += [("rule_violation", {**subject, "rule": rule, "issuer": "org-a",
                                    "when_tags": [*sorted(vocabulary.TAGS), "other"],
                                    "basis": None}) for rule in [*vocabulary.RULES, "other"]]
    details += [("rule_violation", {**subject, "rule": "confidentiality", "issuer": "org-a",
                                    "when_tags": ["personal_data_disclosure"],
                                    "unless_tags": ["consent_obtained", "anonymised"],
                                    "basis": basis, "citation": "广州市社会工作服务条例 第四条"})
                for basis in [*Basis, None]]
    details += [("not_admitted", {**subject, "issuer": "org-a", "task_type": kind,
                                  "admitted_task_types": KINDS_OF_WORK[:2]})
                for kind in KINDS_OF_WORK]
    records: list[dict[str, Any]] = [
        {"kind": kind, "members": ["d1", "d2"], "status": "open", "details": found}
        for kind, found in details]
    records.append({**records[0], "details": {**records[0]["details"], "merged_into": "c-1",
                                              "precedents": [{"conflict_id": "c-0"}]}})
    return records


@cache
def texts_fingerprint() -> str:
    """A hash of the sample conflicts' explanations in every language (hex, 16 digits)."""
    digest = hashlib.sha256()
    for record in _samples():
        for language, text in sorted(explanations(record, NAMES).items()):
            digest.update(f"{language}\x1f{text}\x1e".encode())
    return digest.hexdigest()[:16]
