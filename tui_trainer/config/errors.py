"""The one exception type for bad input, carrying every problem found at once."""

from __future__ import annotations

from dataclasses import dataclass

# How much of a value (or key) an error message shows: enough to recognise it, never a flood.
SHOWN_CHARS = 60
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a preset: where it is, what was given, and what is allowed."""

    source: str
    key: str
    value: object
    allowed: str

    def __str__(self) -> str:
        source = escape(str(self.source))
        if self.key:
            return f"{source}: {format_key(self.key)} = {format_value(self.value)}: {escape(self.allowed)}"
        return f"{source}: {escape(self.allowed)}"


class ConfigError(Exception):
    """Bad input: a preset or override that cannot run. Holds every problem, one line each."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_MISSING = object()


def format_value(value: object, limit: int = SHOWN_CHARS) -> str:
    """Render a value the way it would be written in TOML, quoted, escaped and cut to about `limit` chars.

    A message stays one short line whatever the value holds: newlines and control characters are
    escaped, and a long string, list or number is cut with an ellipsis.
    """
    if value is _MISSING:
        return "(missing)"
    text = _render(value, limit, 0)
    return text if isinstance(value, str) else _shorten(text, limit)  # a string is cut inside its quotes


def format_key(key: str, limit: int = SHOWN_CHARS) -> str:
    """A dotted key as typed; escaped and cut when it holds odd characters or is very long."""
    text = escape(key[:limit + 1])
    return _shorten(text, limit)


def escape(text: str) -> str:
    """Escape what would break a one-line message (newlines, control and unprintable characters)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _render(value: object, limit: int, depth: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        cut = value[:limit]
        body = "".join(ch if ch.isprintable() and ch not in '"\\' else _escape_char(ch) for ch in cut)
        return '"' + body + ('"' if len(cut) == len(value) else ELLIPSIS)
    if isinstance(value, int):
        if value.bit_length() > 4 * limit:  # str() of a huge int is slow, and past 4,300 digits refused
            return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
        return str(value)
    if isinstance(value, float):
        return repr(value)  # nan, inf, -inf are also how TOML spells them
    if isinstance(value, (list, tuple)):
        if depth >= 3:
            return "[...]"
        parts, length = [], 0
        for item in value:
            part = _render(item, limit, depth + 1)
            if length + len(part) > limit - 6:  # room for ", ...]"
                parts.append("...")
                break
            parts.append(part)
            length += len(part) + 2
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        return "{...}"
    return _shorten(escape(repr(value)[:limit + 1]), limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def _escape_char(ch: str) -> str:
    special = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
    if ch in special:
        return special[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
