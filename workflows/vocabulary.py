"""The domain's own words as people read them: a directive's fields and bases, and the
well-known target groups, tags and rules.

The API speaks in field names and enum values (``people_affected``,
``purchaser_request``); a person reads "people affected", 购买方要求.  These
are the words the conflict explanations and the dashboard share, written in
English here and translated in the ``explanations`` catalogue
(``workflows/locale/<lang>/LC_MESSAGES/explanations.po``), so a field or a
basis has one name in each language wherever it is shown.  A value with no
word (a field added later, an unknown basis, a target group or tag a contract
made up) is shown as it is.
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

TARGET_GROUPS: dict[str, str] = {
    "youth": "young people",
    "children": "children",
    "elderly": "older people",
    "disabled": "people with disabilities",
    "low_income": "low-income households",
    "families": "families",
    "migrants": "migrant workers",
    "residents_affected_by_redevelopment": "residents affected by redevelopment",
}
"""Target groups a Guangzhou service contract commonly names (slugs are free: others are
shown as they are)."""

TAGS: dict[str, str] = {
    "personal_data_disclosure": "disclosure of personal data",
    "consent_obtained": "consent obtained",
    "anonymised": "anonymised",
    "demolition": "demolition",
    "campaign": "campaign work",
}
"""Tags the contract rules commonly test (``CONFIDENTIALITY_RULE`` and the demo's)."""

RULES: dict[str, str] = {
    "confidentiality": "confidentiality",
}
"""The rules every contract carries, by id."""


def field(name: str, language: str) -> str:
    """A directive field's name in ``language``, as a sentence says it."""
    return _word(FIELDS, name, language)


def basis(value: str | None, language: str) -> str:
    """A basis in ``language``, as a sentence says it (``none`` without one)."""
    if not value:
        return gettext(language, "none", DOMAIN)
    return _word(BASES, value, language)


def target_group(slug: str, language: str) -> str:
    """A target group in ``language`` (a slug with no word is shown as it is)."""
    return _word(TARGET_GROUPS, slug, language)


def tag(slug: str, language: str) -> str:
    """A tag in ``language`` (a slug with no word is shown as it is)."""
    return _word(TAGS, slug, language)


def rule(rule_id: str, language: str) -> str:
    """A contract rule by its name in ``language`` (an id with no word is shown as it is)."""
    return _word(RULES, rule_id, language)


def _word(words: dict[str, str], key: str, language: str) -> str:
    word = words.get(key)
    return gettext(language, word, DOMAIN) if word else key


def as_label(text: str) -> str:
    """A word as a label starts (a table cell, an option): English capitalised."""
    return text[:1].upper() + text[1:]
