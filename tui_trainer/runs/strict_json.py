"""strict_json: the JSON text of the files and listings scripts read (summary.json, sweep.json, --json)."""

from __future__ import annotations

import json
import math


def strict_json(data: object, indent: int | None = 2) -> str:
    """`data` as JSON that every parser reads (jq, JavaScript, Go, not only Python's json).

    A number that is not finite (a diverged run's val loss, NaN) has no JSON spelling: it is written as
    null, as a figure that does not exist. Python's `json` would write `NaN`, which strict parsers refuse.
    """
    return json.dumps(_finite(data), indent=indent, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
