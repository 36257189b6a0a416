"""The domain's own words as people read them: a directive's fields and its bases.

The API speaks in field names and enum values (``people_affected``,
``purchaser_request``); a person reads "people affected", 购买方要求.  These
are the words the conflict explanations and the dashboard share, written in
English here and translated in the ``explanations`` catalogue
(``workflows/locale/<lang>/LC_MESSAGES/explanations.po``), so a field or a
basis has one name in each language wherever it is shown.  A value with no
word (a field added later, an unknown basis) is shown as it is.
"""

from __future__ import annotations

from domain.directives import Basis
from workflows.i18n import gettext

DOMAIN = "explanations"

FIELDS: dict[str, str] = {
    "summary": "summary",
    "subject": "subject",
    "value": "value",
    "basis": "basis",
    "citation": "citation",
    "hours_per_week": "hours a week",
    "window": "window",
    "due": "due date",
    "people_affected": "people affected",
    "vulnerability": "vulnerability",
    "target_groups": "target groups",
    "locations": "places",
    "indicator": "indicator",
    "tags": "tags",
    "task_type": "kind of work",
}
"""A directive's fields (``DirectiveFields``), as a sentence names them."""

BASES: dict[str, str] = {
    Basis.STATUTE: "statute",
    Basis.CONTRACT: "contract",
    Basis.PROFESSIONAL_STANDARD: "professional standard",
    Basis.SUPERVISOR_REQUEST: "supervisor's request",
    Basis.PURCHASER_REQUEST: "purchaser's request",
    Basis.PETITION: "residents' petition",
    Basis.INDIVIDUAL_REQUEST: "individual's request",
    Basis.NON_PARTY: "non-party's request",
}
"""A directive's bases (SPEC §3), as a sentence names them."""

def field(name: str, language: str) -> str:
    """A directive field's name in ``language``, as a sentence says it."""
    word = FIELDS.get(name)
    return gettext(language, word, DOMAIN) if word else name


def basis(value: str | None, language: str) -> str:
    """A basis in ``language``, as a sentence says it (``none`` without one)."""
    if not value:
        return gettext(language, "none", DOMAIN)
    word = BASES.get(value)
    return gettext(language, word, DOMAIN) if word else value


def as_label(text: str) -> str:
    """A word as a label starts (a table cell, an option): English capitalised."""
    return text[:1].upper() + text[1:]
