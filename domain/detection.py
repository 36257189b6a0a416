"""A ``Detection``: a conflict as a locality function finds it (``domain.conflicts``).

Its own module so that the weekly load (``domain.weekly_load``), which the
detectors use, can name it without importing the detectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Detection:
    """A conflict as a locality function finds it, before the fold gives it an identity."""

    kind: str
    members: tuple[str, ...]
    details: dict[str, Any] = field(hash=False)
    key: tuple[Any, ...] = ()
    """The locality: ``(subject,)``, ``(directive id, rule id or "")`` or ``(first week, last
    week)`` as week numbers."""
