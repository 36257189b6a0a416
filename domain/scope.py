"""What a contract lets a directive ask for: its scope and its rules.

Both the conflict detectors (``out_of_scope``, ``rule_violation``) and the
ranking (tier 5: shown, never scheduled) ask these questions; ``ContractState``
answers them once per directive with these definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Outside:
    """The target groups and places a directive names that its contract does not cover."""

    target_groups: tuple[str, ...]
    locations: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.target_groups or self.locations)

    @property
    def listed(self) -> list[str]:
        return [*self.target_groups, *self.locations]


def rule_applies(rule: Mapping[str, Any], directive: Mapping[str, Any]) -> bool:
    """A rule matches a directive tagged with all its ``when_tags`` and none of its
    ``unless_tags`` whose basis is not one of its ``unless_basis``."""
    tags = set(directive.get("tags") or ())
    return (
        set(rule.get("when_tags") or ()) <= tags
        and not tags.intersection(rule.get("unless_tags") or ())
        and directive.get("basis") not in set(rule.get("unless_basis") or ())
    )


class ContractScope:
    """One contract's scope and rules, asked about one directive at a time."""

    def __init__(self, terms: Mapping[str, Any]) -> None:
        self.target_groups = frozenset(terms.get("target_groups") or ())
        self.service_area = frozenset(terms.get("service_area") or ())
        self.rules = list(terms.get("rules") or ())
        self.untagged_match = [
            rule for rule in self.rules if rule_applies(rule, {"tags": [], "basis": None})
        ]

    def outside(self, directive: Mapping[str, Any]) -> Outside | None:
        """What the directive names that the contract does not cover, or ``None``."""
        named_groups = directive.get("target_groups") or ()
        named_places = directive.get("locations") or ()
        groups, area = self.target_groups, self.service_area
        if groups.issuperset(named_groups) and area.issuperset(named_places):
            return None
        return Outside(
            target_groups=tuple(dict.fromkeys(g for g in named_groups if g not in groups)),
            locations=tuple(dict.fromkeys(p for p in named_places if p not in area)),
        )

    def broken_rules(self, directive: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The contract's rules that block the directive, in the contract's order."""
        if not directive.get("tags") and not self.untagged_match:
            return []  # every rule needs a tag this directive lacks
        return [rule for rule in self.rules if rule_applies(rule, directive)]
