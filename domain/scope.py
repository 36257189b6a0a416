"""What a contract lets a directive ask for: its scope and its rules.

Both the conflict detectors (``out_of_scope``, ``rule_violation``) and the
ranking (tier 5: shown, never scheduled) ask these questions, so they are
answered once, here.
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


def outside_scope(terms: Mapping[str, Any], directive: Mapping[str, Any]) -> Outside:
    """Which of the directive's target groups and locations the contract does not cover."""
    groups = set(terms.get("target_groups") or ())
    area = set(terms.get("service_area") or ())
    return Outside(
        target_groups=_unique(g for g in directive.get("target_groups") or () if g not in groups),
        locations=_unique(p for p in directive.get("locations") or () if p not in area),
    )


def rule_applies(rule: Mapping[str, Any], directive: Mapping[str, Any]) -> bool:
    """A rule matches a directive tagged with all its ``when_tags`` and none of its
    ``unless_tags`` whose basis is not one of its ``unless_basis``."""
    tags = set(directive.get("tags") or ())
    return (
        set(rule.get("when_tags") or ()) <= tags
        and not tags.intersection(rule.get("unless_tags") or ())
        and directive.get("basis") not in set(rule.get("unless_basis") or ())
    )


def rules_broken(terms: Mapping[str, Any], directive: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The contract's rules that block this directive, in the contract's order."""
    return [rule for rule in terms.get("rules") or () if rule_applies(rule, directive)]


def is_blocked_or_out_of_scope(terms: Mapping[str, Any], directive: Mapping[str, Any]) -> bool:
    return bool(outside_scope(terms, directive)) or bool(rules_broken(terms, directive))


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
