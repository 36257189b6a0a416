"""What a contract lets a directive ask for: its scope, its rules and its admission list.

The conflict detectors (``out_of_scope``, ``rule_violation``, ``not_admitted``)
and the ranking (tier 5: shown, never scheduled) ask these questions;
``ContractState`` and the tracker answer them with these definitions.

What a directive says is read through its classification and its disputes
(SPEC §13): its kind of work is the provider's classification if there is one,
else the issuer's ``task_type``; its tags are the issuer's plus those the
provider added; a rule exemption resting on a tag does not hold while the
directive's ``tags`` are under an open dispute.

Places are compared as a Guangzhou user writes them (``place_key``): Unicode
NFKC, no spaces, and a street office named by its 街道 / 街道办 / 街道办事处
form is the same place as its 街; a ``service_area`` entry may also be
``{"name", "aliases"}`` for any other name the place goes by.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.work_kinds import ANY_KIND

OPEN_DISPUTE = "open"
_STREET = re.compile(r"街道(办事处|办)?$")


@dataclass(frozen=True, slots=True)
class Outside:
    """The target groups, places and kinds of work a directive names that its contract does
    not cover."""

    target_groups: tuple[str, ...]
    locations: tuple[str, ...]
    task_types: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.target_groups or self.locations or self.task_types)

    @property
    def listed(self) -> list[str]:
        return [*self.target_groups, *self.locations, *self.task_types]


def place_key(name: str) -> str:
    """The form two spellings of one place share: ``华洲街道`` and ``华洲街`` give ``华洲街``."""
    text = "".join(unicodedata.normalize("NFKC", name).split())
    return _STREET.sub("街", text)


def place_names(entry: str | Mapping[str, Any]) -> tuple[str, list[str]]:
    """A ``service_area`` entry's name and every name it goes by (itself included)."""
    if isinstance(entry, str):
        return entry, [entry]
    return str(entry["name"]), [str(entry["name"]), *(entry.get("aliases") or ())]


def task_type_of(directive: Mapping[str, Any]) -> str | None:
    """The directive's kind of work: the provider's classification, else the issuer's."""
    classified = (directive.get("classification") or {}).get("task_type")
    return classified or directive.get("task_type")


def tags_of(directive: Mapping[str, Any]) -> tuple[str, ...]:
    """The issuer's tags, then those the provider's classification added."""
    added = (directive.get("classification") or {}).get("tags") or ()
    tags = directive.get("tags") or ()
    return tuple(dict.fromkeys([*tags, *added])) if added else tuple(tags)


def disputed_fields(directive: Mapping[str, Any]) -> frozenset[str]:
    """The fields of the directive under an open dispute."""
    return frozenset(field for dispute in directive.get("disputes") or ()
                     if dispute.get("status") == OPEN_DISPUTE for field in dispute["fields"])


def rule_applies(rule: Mapping[str, Any], directive: Mapping[str, Any]) -> bool:
    """A rule matches a directive tagged with all its ``when_tags`` and none of its
    ``unless_tags`` whose basis is not one of its ``unless_basis``; the ``unless_tags``
    exemption does not hold while the directive's tags are disputed."""
    tags = set(tags_of(directive))
    exempt_by_tag = (tags.intersection(rule.get("unless_tags") or ())
                     and "tags" not in disputed_fields(directive))
    return (
        set(rule.get("when_tags") or ()) <= tags
        and not exempt_by_tag
        and directive.get("basis") not in set(rule.get("unless_basis") or ())
    )


class ContractScope:
    """One contract's scope, rules and admission list, asked about one directive at a time."""

    def __init__(self, terms: Mapping[str, Any]) -> None:
        self.target_groups = frozenset(terms.get("target_groups") or ())
        self.places: dict[str, str] = {}
        """Every spelling's ``place_key`` → the entry's name."""
        for entry in terms.get("service_area") or ():
            name, names = place_names(entry)
            for spelling in names:
                self.places.setdefault(place_key(spelling), name)
        self._known_places: dict[str, bool] = {}
        self.service_types = frozenset(terms.get("service_types") or ())
        self.admission: dict[str, frozenset[str]] = {
            entry["org"]: frozenset(entry["task_types"]) for entry in terms.get("admission") or ()
        }
        self.rules = list(terms.get("rules") or ())
        self.untagged_match = [
            rule for rule in self.rules if rule_applies(rule, {"tags": [], "basis": None})
        ]

    def covers(self, target_groups: Iterable[str], locations: Iterable[str],
               task_type: str | None) -> bool:
        """Whether the contract covers all of these (``outside`` would answer ``None``): a
        quick answer for the many directives that name only what their contract covers."""
        if task_type and self.service_types and task_type not in self.service_types:
            return False
        if not self.target_groups.issuperset(target_groups):
            return False
        known = self._known_places
        for name in locations:
            found = known.get(name)
            if found is None:
                found = known[name] = place_key(name) in self.places
            if not found:
                return False
        return True

    def outside(self, directive: Mapping[str, Any]) -> Outside | None:
        """What the directive names that the contract does not cover, or ``None``."""
        named_groups = directive.get("target_groups") or ()
        named_places = directive.get("locations") or ()
        kind = task_type_of(directive)
        groups = self.target_groups
        found = Outside(
            target_groups=tuple(dict.fromkeys(g for g in named_groups if g not in groups)),
            locations=tuple(dict.fromkeys(
                p for p in named_places if place_key(p) not in self.places)),
            task_types=(kind,) if kind and self.service_types
            and kind not in self.service_types else (),
        )
        return found if found else None

    def unadmitted(self, directive: Mapping[str, Any]) -> list[str] | None:
        """When the list is non-empty and does not admit the issuer for the directive's kind
        of work, the kinds it admits the issuer for (maybe none); else ``None``."""
        if not self.admission:
            return None
        admitted = self.admission.get(directive["issuer"], frozenset())
        kind = task_type_of(directive)
        if ANY_KIND in admitted or (kind is not None and kind in admitted):
            return None
        return sorted(admitted)

    def broken_rules(self, directive: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The contract's rules that block the directive, in the contract's order."""
        if not tags_of(directive) and not self.untagged_match:
            return []  # every rule needs a tag this directive lacks
        return [rule for rule in self.rules if rule_applies(rule, directive)]
