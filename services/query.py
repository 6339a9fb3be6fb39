"""Query parameters, each declared once.

A route's `Query` says everything about its parameters (name, type, range, choices, default, what
blank means, which combinations are allowed). The handler parses the request with it and the
OpenAPI document (services/ops/openapi.py) is built from the same objects, so the two cannot
disagree. As the README ("API") says: blank (`?limit=`) is the same as leaving an optional
parameter out, and a missing required one; a parameter sent twice is refused, not guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.errors import InvalidRequest

_DIGITS_MAX = 9  # longer numbers are refused before int() sees them


@dataclass(frozen=True)
class Param:
    """One query parameter. `type` is "string" or "integer"; `pattern` is a regular expression that
    Python and JavaScript read alike, matched against the whole value."""

    name: str
    description: str
    type: str = "string"
    required: bool = False
    default: str | int | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_hint: str = ""  # what to send instead, for the error message of a value off the pattern
    strip: bool = False  # surrounding white space is dropped, so white space alone is blank
    missing_message: str = ""  # instead of "Missing required parameters: <name>"

    def parse(self, value: str) -> str | int:
        """A non-blank value as sent -> its typed value; InvalidRequest naming what is wrong."""
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidRequest(f"Invalid {self.name} parameter: too long, at most {self.max_length} characters")
        if self.type == "integer":
            return self._parse_integer(value)
        if self.choices and value not in self.choices:
            raise InvalidRequest(
                f"Invalid {self.name} parameter {value[:50]!r}: must be one of {', '.join(self.choices)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):  # re caches the compiled pattern
            raise InvalidRequest(f"Invalid {self.name} parameter {value[:50]!r}: {self.pattern_hint}")
        return value.strip() if self.strip else value

    def _parse_integer(self, value: str) -> int:
        if not value.isascii() or not value.isdigit() or len(value) > _DIGITS_MAX:
            raise InvalidRequest(f"Invalid {self.name} parameter {value[:50]!r}: must be a whole number")
        number = int(value)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise InvalidRequest(
                f"Invalid {self.name} parameter {value!r}: must be between {self.minimum} and {self.maximum}")
        return number

    def is_blank(self, value: str) -> bool:
        return value == "" or (self.strip and not value.strip())


@dataclass(frozen=True)
class Requires:
    """`param`, when given, is valid only together with these exact values of other parameters.

    `group` names the object the OpenAPI document describes them as: a parameter alone cannot
    say that it depends on another, a JSON Schema object of the parameters can."""

    param: str
    values: Mapping[str, str]
    group: str

    def explanation(self) -> str:
        together = "&".join(f"{name}={value}" for name, value in self.values.items())
        return f"{self.param} is only valid with {together}"


@dataclass(frozen=True)
class Query:
    """The parameters of one route and the rules between them."""

    params: tuple[Param, ...]
    rules: tuple[Requires, ...] = ()

    def parse(self, arguments: Mapping[str, list[bytes]]) -> dict[str, Any]:
        """Every declared parameter -> its value (its default when absent or blank).

        `arguments` is the query as sent, name -> raw values (Tornado's `query_arguments`): its
        own getters would turn control characters into spaces, so "%00" would pass for blank."""
        raw = {p.name: _single(p.name, arguments.get(p.name)) for p in self.params}
        blank = {p.name for p in self.params if raw[p.name] is None or p.is_blank(raw[p.name])}
        missing = [p for p in self.params if p.required and p.name in blank]
        if missing:
            special = next((p.missing_message for p in missing if p.missing_message), "")
            raise InvalidRequest(special or f"Missing required parameters: {', '.join(p.name for p in missing)}")
        values = {p.name: p.default if p.name in blank else p.parse(raw[p.name]) for p in self.params}
        for rule in self.rules:
            if rule.param not in blank and any(values[n] != v for n, v in rule.values.items()):
                raise InvalidRequest(f"Invalid {rule.param} parameter: {rule.explanation()}")
        return values


def _single(name: str, values: list[bytes] | None) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"Invalid {name} parameter: sent {len(values)} times, send it once")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"Invalid {name} parameter: not UTF-8 text") from None
