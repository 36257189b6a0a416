"""The building blocks of every validated shape: strict models, bounded text, numbers, dates.

Request bodies and the values events carry are built from these (``domain.terms``,
``domain.directives``, ``domain.organisations``, ``domain.subscriptions``), so a
bound is declared once.  Unknown fields are refused everywhere (``Strict``).
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator

SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ORG_ID = r"^[a-z0-9-]{2,64}$"
SUBJECT = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


def _iso_date(value: Any) -> Any:
    """Accept dates only as ISO 8601 strings (or date objects from Python callers)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date written as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]

MAX_VALUE_DEPTH = 32
# The event store's JSON transcoder decodes any object of exactly these two keys as a
# typed value; stored inside a directive it would make the contract unreadable.
RESERVED_KEYS = frozenset({"_type_", "_data_"})


def _storable_json(value: Any, depth: int = 0) -> Any:
    """A directive's free ``value``: plain JSON that stores, hashes and reads back unchanged."""
    if depth > MAX_VALUE_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, dict):
        if set(value) == RESERVED_KEYS:
            raise ValueError("an object with exactly the keys _type_ and _data_ is reserved")
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            _storable_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable_json(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError("must be a JSON value")
    return value


JsonValue = Annotated[Any, BeforeValidator(_storable_json)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def integral(value: Any) -> Any:
    """``14.0`` is an integer in JSON Schema's sense, so the document promises to accept it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[StrictInt, BeforeValidator(integral)]
"""An integer, also written as ``14.0``; never a string, a bool or ``1.5``."""
Text = Annotated[str, Field(min_length=1, max_length=500)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
Citation = Annotated[str, Field(min_length=1, max_length=200)]
"""What a basis rests on (SPEC §3): the law and article, or the contract clause."""
OrgId = Annotated[str, Field(pattern=ORG_ID)]
Slug = Annotated[str, Field(pattern=SLUG)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Change(Strict):
    """A body that changes some fields: it names at least one (else ``empty`` is the error),
    and gives none of ``not_clearable`` as ``null``."""

    not_clearable: ClassVar[frozenset[str]] = frozenset()
    empty: ClassVar[str] = "a change must name at least one field"

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError(self.empty)
        for name in self.model_fields_set & self.not_clearable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, as JSON-ready values."""
        dumped = self.model_dump(mode="json", by_alias=True)
        return {name: dumped[name] for name in self.model_fields_set}


class EmptyBody(Strict):
    """Lifecycle commands take an empty body or ``{}``."""


def unique(field: str, keys: list[str]) -> None:
    """Refuse a list that names the same key twice (``field: 'x' appears more than once``)."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{field}: {key!r} appears more than once")
        seen.add(key)
