"""Names a user gives (saved presets, run ids): they name a file in one directory and cannot leave it."""

from __future__ import annotations

import re
from pathlib import Path

PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PRESET_NAME_RULE = "a name of letters, digits, '.', '_' or '-' (at most 100), e.g. cpu-quick-bf16"


def is_preset_name(text: str) -> bool:
    """A name to save a preset under: no separators, no "..", nothing hidden, one line."""
    return bool(PRESET_NAME.fullmatch(text)) and ".." not in text


def is_plain_name(text: str) -> bool:
    """A run id as listed: one path component that stays in its directory (not ".", "..", nor hidden)."""
    return (bool(text) and not text.startswith(".") and "/" not in text and "\\" not in text
            and "\0" not in text and text.isprintable())


def inside(directory: str | Path, name: str, suffix: str = "") -> Path:
    """`directory/name+suffix`, refusing (ValueError) any name that would resolve outside `directory`."""
    directory = Path(directory)
    path = directory / f"{name}{suffix}"
    if not is_plain_name(name) or path.resolve().parent != directory.resolve():
        raise ValueError(f"{name!r} is not a plain name inside {directory}")
    return path
