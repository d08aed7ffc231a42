"""The one exception type for bad input, carrying every problem found at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a preset: where it is, what was given, and what is allowed."""

    source: str
    key: str
    value: object
    allowed: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.source}: {self.key} = {format_value(self.value)}: {self.allowed}"
        return f"{self.source}: {self.allowed}"


class ConfigError(Exception):
    """Bad input: a preset or override that cannot run. Holds every problem, one line each."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_MISSING = object()


def format_value(value: object) -> str:
    """Render a value the way it would be written in TOML, for error messages."""
    if value is _MISSING:
        return "(missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return repr(value)
