"""Kinds of work a contract buys and a directive asks for (SPEC §13), kept as data.

Each kind has a key (what ``service_types``, ``task_type`` and admission lists
name) and a label in Chinese and English.  A new kind is one more entry here:
no detector, ranking or route names a kind.  ``*`` in an admission list means
any kind.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

ANY_KIND = "*"

WORK_KINDS: dict[str, dict[str, str]] = {
    "casework": {"zh": "个案服务", "en": "casework"},
    "group_work": {"zh": "小组工作", "en": "group work"},
    "community_activity": {"zh": "社区活动", "en": "community activities"},
    "outreach": {"zh": "外展探访", "en": "outreach visits"},
    "assessment": {"zh": "需求评估", "en": "needs assessment"},
    "reporting": {"zh": "报表统计", "en": "reporting and statistics"},
    "training": {"zh": "培训督导", "en": "training and supervision"},
    "administrative_support": {"zh": "行政事务", "en": "administrative support"},
    "campaign_support": {"zh": "中心工作", "en": "campaign support (中心工作)"},
    "stability_maintenance": {"zh": "维稳", "en": "stability maintenance (维稳)"},
    "census": {"zh": "普查统计", "en": "census taking"},
}


def label(kind: str, language: str) -> str:
    """The kind's label in ``language`` (``zh`` or ``en``); an unknown key is shown as is."""
    return WORK_KINDS.get(kind, {}).get(language, kind)


def _known(kind: str) -> str:
    if kind not in WORK_KINDS:
        raise ValueError(f"unknown kind of work {kind!r}: use one of {', '.join(WORK_KINDS)}")
    return kind


def _known_or_any(kind: str) -> str:
    return kind if kind == ANY_KIND else _known(kind)


WorkKind = Annotated[str, AfterValidator(_known),
                     WithJsonSchema({"type": "string", "enum": list(WORK_KINDS)})]
"""A known kind of work (422 for any other)."""
AdmittedKind = Annotated[str, AfterValidator(_known_or_any),
                         WithJsonSchema({"type": "string", "enum": [*WORK_KINDS, ANY_KIND]})]
"""A known kind of work, or ``*`` for any."""
