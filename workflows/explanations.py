"""Conflict explanations in Chinese and English, written from a conflict's ``details``.

The domain records what a conflict is (``details``: the subject and values, the
weeks and excess, the rule and its citation, what lies outside the contract);
this module writes the sentence a person reads, in each language of
``workflows.i18n`` (catalogue domain ``explanations``), with organisations by
name and weeks as the dates they span (SPEC §12).  It is deterministic: the
same record and names give the same text, live and in replay.

``explained(record, names)`` adds ``explanations`` (``{"zh", "en"}``) and
``explanation`` (English) to a record; ``in_language`` picks the
``explanation`` an ``Accept-Language`` header prefers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from domain import work_kinds
from domain.conflict_records import shown
from workflows import vocabulary
from workflows.i18n import (
    LANGUAGES,
    PUNCTUATION,
    gettext,
    ngettext,
    show_date,
    show_hours,
    show_weeks,
)

Names = Mapping[str, str]
_INNER_QUOTES = str.maketrans("“”", "‘’")
DOMAIN = "explanations"
MENTIONED_AT_MOST = 6


def explanations(record: Mapping[str, Any], names: Names) -> dict[str, str]:
    """The record's explanation in every language: ``{"zh": ..., "en": ...}``."""
    return {language: explain(record, names, language) for language in LANGUAGES}


def explained(record: Mapping[str, Any], names: Names) -> dict[str, Any]:
    """The record with ``explanations`` and its English ``explanation``."""
    texts = explanations(record, names)
    return {**shown(record), "explanation": texts["en"], "explanations": texts}


def in_language(record: dict[str, Any], language: str) -> dict[str, Any]:
    """The record whose ``explanation`` is the one in ``language`` (when it has one)."""
    texts = record.get("explanations")
    if texts and language in texts:
        return {**record, "explanation": texts[language]}
    return record


def explain(record: Mapping[str, Any], names: Names, language: str) -> str:
    writer = WRITERS.get(record["kind"])
    t = _Words(language, names)
    text = writer(record["details"], t) if writer else t(
        "A %(kind)s conflict among %(count)s directives.",
        kind=record["kind"], count=len(record["members"]))
    merged = record["details"].get("merged_into")
    if merged:
        text += t.marks.gap + t("Merged into conflict %(id)s.", id=merged)
    precedents = record["details"].get("precedents") or []
    if precedents and record.get("status") == "open":
        text += t.marks.gap + t("Earlier decisions on these directives or this subject: %(count)s.",
                            count=len(precedents))
    return text


class _Words:
    """Translation, names, lists and values in one language."""

    def __init__(self, language: str, names: Names) -> None:
        self.language = language
        self.names = names
        self.marks = PUNCTUATION[language]

    def __call__(self, message: str, **values: object) -> str:
        return gettext(self.language, message, DOMAIN, **values)

    def plural(self, singular: str, plural: str, count: int, **values: object) -> str:
        return ngettext(self.language, singular, plural, count, DOMAIN, **values)

    def org(self, org_id: str) -> str:
        return self.names.get(org_id) or org_id

    def orgs(self, org_ids: Iterable[str]) -> str:
        return self.join([self.org(org) for org in org_ids])

    def join(self, items: list[str], word: str = "and") -> str:
        if len(items) <= 1:
            return "".join(items)
        head = self.marks.enum.join(items[:-1])
        if self.language == "zh":
            return head + ("和" if word == "and" else "或") + items[-1]
        return f"{head} {word} {items[-1]}"

    def value(self, value: Any) -> str:
        """A value as a sentence quotes it: a string in quotes (in Chinese, quotes it holds
        become the inner ones, ‘…’); a map of plain values as its fields, ``format：表格，
        copies：2`` (a reader sees no braces); anything else as JSON."""
        if isinstance(value, str):
            return f"“{value.translate(_INNER_QUOTES)}”" if self.language == "zh" \
                else f'"{value}"'
        if isinstance(value, Mapping) and value and all(
                isinstance(item, str | int | float | bool) for item in value.values()):
            marks = self.marks
            return marks.comma.join(
                f"{key}{marks.colon}{item if isinstance(item, str) else _json(item)}"
                for key, item in sorted(value.items()))
        return _json(value)

    def asked(self, value: Any, summaries: Iterable[str] | None) -> str:
        """What the directives of one side (or of a duplicate) ask for: their summaries, as
        their issuers wrote them, then the value they share in brackets; the value alone
        when none has a summary."""
        quoted = [self.value(summary) for summary in summaries or ()]
        if not quoted:
            return self.value(value)
        return self.marks.enum.join(quoted) + self.marks.paren(self.value(value))

    def directive(self, details: Mapping[str, Any]) -> str:
        """A directive as a person names it: by its summary, where it has one (the English
        text keeps the subject beside it, for a reader of the summary's language or not)."""
        subject, summary = details["subject"], details.get("summary")
        if not summary:
            return str(subject)
        return self.value(summary) if self.language == "zh" \
            else f"{subject} ({self.value(summary)})"

    def window(self, window: Mapping[str, str] | None) -> str:
        if not window:
            return ""
        return self("%(start)s to %(end)s", start=show_date(window["from"], self.language),
                    end=show_date(window["to"], self.language))

    def hours(self, hours: float) -> str:
        return show_hours(hours)

    def basis(self, basis: str | None) -> str:
        return vocabulary.basis(basis, self.language)

    def field(self, name: str) -> str:
        return vocabulary.field(name, self.language)

    def group(self, slug: str) -> str:
        return vocabulary.target_group(slug, self.language)

    def tags(self, slugs: Iterable[str], word: str = "and") -> str:
        """Tags by their words, each quoted (a tag is a label, not a phrase of the sentence)."""
        return self.join([self.value(vocabulary.tag(slug, self.language)) for slug in slugs],
                         word)

    def kind(self, kind: str) -> str:
        """A kind of work by its label (``domain.work_kinds``)."""
        return work_kinds.label(kind, self.language)


def _contradiction(details: Mapping[str, Any], t: _Words) -> str:
    sides = [
        t.plural("%(issuers)s asks for %(value)s", "%(issuers)s ask for %(value)s",
                 len(side["issuers"]), issuers=t.orgs(side["issuers"]),
                 value=t.asked(side["value"], side.get("summaries")))
        for side in details.get("sides", [])
    ]
    return t("Contradictory directives on %(subject)s over overlapping windows "
             "(%(window)s): %(sides)s.", subject=t.directive(details),
             window=t.window(details.get("window")), sides="；".join(sides)
             if t.language == "zh" else "; ".join(sides))


def _duplicate(details: Mapping[str, Any], t: _Words) -> str:
    return t("Duplicate directives on %(subject)s: %(issuers)s each ask for %(value)s "
             "(%(window)s), so the same work is demanded %(count)s times.",
             subject=t.directive(details), issuers=t.orgs(details.get("issuers", [])),
             value=t.asked((details.get("values") or [None])[0], details.get("summaries")),
             window=t.window(details.get("window")), count=len(details.get("issuers", [])))


def _over_capacity(details: Mapping[str, Any], t: _Words) -> str:
    weeks = details["weeks"]
    heaviest = details.get("heaviest") or []
    named = [t("%(org)s on %(subject)s (%(hours)s h)", org=t.org(item["issuer"]),
               subject=t.directive(item), hours=t.hours(item["hours"])) for item in heaviest]
    text = t.join(named)
    return t("Over capacity in %(dates)s (%(count)s weeks): %(committed)s committed hours "
             "a week plus the directives of %(named)s exceed the weekly capacity of "
             "%(capacity)s h by up to %(excess)s h (in the week of %(peak)s).",
             dates=show_weeks(weeks[0], weeks[-1], t.language), count=len(weeks),
             committed=t.hours(details["committed_hours_per_week"]), named=text,
             capacity=t.hours(details["weekly_capacity_hours"]),
             excess=t.hours(details["excess_hours"]),
             peak=show_weeks(details["peak_week"], None, t.language))


def _out_of_scope(details: Mapping[str, Any], t: _Words) -> str:
    outside = [*(t.group(group) for group in details.get("outside_target_groups", [])),
               *details.get("outside_locations", []),
               *(t.kind(kind) for kind in details.get("outside_task_types", []))]
    return t("Out of scope: %(org)s's directive on %(subject)s names %(outside)s, which the "
             "contract does not cover.", org=t.org(details.get("issuer", "")),
             subject=t.directive(details), outside=t.join(outside or details.get("outside", [])))


def _rule_violation(details: Mapping[str, Any], t: _Words) -> str:
    unless = details.get("unless_tags") or []
    without = t(" without %(tags)s", tags=t.tags(unless, "or")) if unless else ""
    return t("The %(rule)s rule blocks %(org)s's directive on %(subject)s: it is tagged %(tags)s"
             "%(without)s, and its basis (%(basis)s) is not exempt (%(citation)s).",
             rule=vocabulary.rule(details["rule"], t.language),
             org=t.org(details.get("issuer", "")),
             subject=t.directive(details), tags=t.tags(details.get("when_tags") or []),
             without=without, basis=t.basis(details.get("basis")),
             citation=details.get("citation") or "")


def _not_admitted(details: Mapping[str, Any], t: _Words) -> str:
    kind = details.get("task_type")
    asked = t.kind(kind) if kind else t("no named kind of work")
    admitted = details.get("admitted_task_types") or []
    allowed = (t("it is admitted only for %(kinds)s", kinds=t.join([t.kind(k) for k in admitted]))
               if admitted else t("it is not on the admission list"))
    return t("Not admitted: %(org)s's directive on %(subject)s asks for %(kind)s, but %(allowed)s;"
             " it waits for an endorsement or an override.", org=t.org(details.get("issuer", "")),
             subject=t.directive(details), kind=asked, allowed=allowed)


def _disputed(details: Mapping[str, Any], t: _Words) -> str:
    return t("Disputed: %(by)s disputes the %(fields)s of %(org)s's directive on %(subject)s "
             "(%(reason)s).", by=t.org(details.get("disputed_by", "")),
             fields=t.join([t.field(field) for field in details.get("fields") or []]),
             org=t.org(details.get("issuer", "")), subject=t.directive(details),
             reason=(details.get("reason") or "").rstrip("。. "))  # (the brackets end it)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


WRITERS: dict[str, Callable[[Mapping[str, Any], _Words], str]] = {
    "contradiction": _contradiction,
    "duplicate": _duplicate,
    "over_capacity": _over_capacity,
    "out_of_scope": _out_of_scope,
    "rule_violation": _rule_violation,
    "not_admitted": _not_admitted,
    "disputed": _disputed,
}
