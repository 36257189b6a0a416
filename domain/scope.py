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
