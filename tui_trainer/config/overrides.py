"""The `--set` overrides that turn a preset file into a given config (to repeat a run on another machine)."""

from __future__ import annotations

from tui_trainer.config.errors import ConfigError
from tui_trainer.config.schema import SECTIONS, RunConfig, to_dict


def overrides_from_preset(config: RunConfig, skip: tuple[str, ...] = ()) -> list[str]:
    """`section.key=value` for every field where `config` differs from its preset file as it reads now.

    The values are TOML, as `--set` reads them. When the preset can no longer be read, the overrides are
    taken against the defaults, so that the line still describes the whole run.
    """
    from tui_trainer.config.presets import load_config

    try:
        base = to_dict(load_config(config.source))
    except (ConfigError, OSError):
        base = to_dict(RunConfig())
    wanted = to_dict(config)
    out = []
    for section in SECTIONS:
        for key, value in wanted[section].items():
            dotted = f"{section}.{key}"
            if dotted not in skip and base[section].get(key) != value:
                out.append(f"{dotted}={toml_value(value)}")
    return out


def toml_value(value: object) -> str:
    """One value as TOML source on one line (what `--set section.key=...` reads back to the same value)."""
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # ints, floats, and strings with JSON's escapes, which TOML shares
