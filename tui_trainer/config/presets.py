"""Presets: TOML files that describe a run. Read, override, validate, list and save them."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from tui_trainer.config.choices import is_multi_process, lists_ids
from tui_trainer.config.errors import _MISSING, ConfigError, ConfigProblem
from tui_trainer.config.schema import BUILTIN_DATASETS, SECTIONS, RunConfig, device_count, to_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

TOP_LEVEL_KEYS = ("description",)


@dataclass(frozen=True, slots=True)
class PresetEntry:
    """A preset file as listed to the user: its name, description, and whether it can run."""

    name: str
    path: Path
    description: str
    config: RunConfig | None
    errors: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.errors


def read_toml(path: Path) -> dict:
    """Parse a TOML file; a syntax error becomes a ConfigError naming the line and column."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(source, "", None, f"cannot read file: {exc.strerror or exc}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(source, "", None, f"invalid TOML: {exc}")]) from None


def parse_override(text: str) -> tuple[str, object]:
    """Split `section.key=value`; the value is read as TOML, else taken as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise ConfigError([ConfigProblem("--set", key or text, _MISSING,
                                         "expected section.key=value, e.g. --set train.precision=bf16-mixed")])
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a preset, apply `--set` overrides, and validate the result (machine-independent checks)."""
    path = Path(path)
    raw = read_toml(path)
    origins: dict[str, str] = {}
    for text in overrides:
        key, value = parse_override(text)
        section, _, name = key.partition(".")
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError([ConfigProblem("--set", key, value, f"{section} is not a section")])
        target[name] = value
        origins[key] = "--set"
    return parse_config(raw, source=str(path), name=path.stem, origins=origins)


def parse_config(raw: dict, *, source: str, name: str, origins: dict[str, str] | None = None) -> RunConfig:
    """Turn parsed TOML into a RunConfig, or raise ConfigError listing every problem."""
    origins = origins or {}
    problems: list[ConfigProblem] = []
    sections: dict[str, object] = {}

    for key in raw:
        if key not in SECTIONS and key not in TOP_LEVEL_KEYS:
            problems.append(ConfigProblem(source, key, _MISSING, _unknown(key, [*SECTIONS, *TOP_LEVEL_KEYS],
                                                                          "section or key")))
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(ConfigProblem(source, "description", description, "expected a string"))
        description = ""

    for section_name, section_type in SECTIONS.items():
        table = raw.get(section_name, {})
        if not isinstance(table, dict):
            problems.append(ConfigProblem(source, section_name, table, f"expected a [{section_name}] table"))
            table = {}
        known = {f.name: f for f in fields(section_type)}
        values = {}
        for key, value in table.items():
            dotted = f"{section_name}.{key}"
            where = origins.get(dotted, source)
            if key not in known:
                problems.append(ConfigProblem(where, dotted, value, _unknown(key, list(known), f"key in [{section_name}]")))
                continue
            converted, error = check_value(known[key].metadata, value)
            if error:
                problems.append(ConfigProblem(where, dotted, value, error))
            else:
                values[key] = converted
        sections[section_name] = section_type(**values)

    config = RunConfig(name=name, description=description, source=source, **sections)
    problems.extend(ConfigProblem(origins.get(key, source), key, value, why)
                    for key, value, why in cross_field_problems(config))
    if problems:
        raise ConfigError(problems)
    return config


def check_value(meta, value: object) -> tuple[object, str | None]:
    """Check one value against its field's metadata; return (converted value, error or None)."""
    kind = meta["kind"]
    if kind == "int" or kind == "float":
        ok_types = (int,) if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            return value, f"expected {'an integer' if kind == 'int' else 'a number'}{_bounds(meta)}"
        value = float(value) if kind == "float" else value
        return value, _bound_error(meta, value)
    if kind == "bool":
        return value, None if isinstance(value, bool) else "expected true or false"
    if kind == "str":
        if not isinstance(value, str):
            return value, "expected a string" + (f": one of {', '.join(meta['choices'])}" if meta["choices"] else "")
        if meta["choices"] and value not in meta["choices"]:
            return value, _one_of(value, meta["choices"])
        return value, None
    if kind == "dataset":
        if isinstance(value, str) and (value in BUILTIN_DATASETS or _is_import_path(value)):
            return value, None
        return value, _one_of(value, BUILTIN_DATASETS) + ", or \"package.module:callable\""
    if kind == "model":
        if isinstance(value, str) and (value == "mlp" or _is_import_path(value)):
            return value, None
        return value, "expected \"mlp\" or \"package.module:callable\""
    if kind == "int_list":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return value, "expected a list of integers, e.g. [64, 64]"
        if any(v < meta["min"] for v in value):
            return value, f"expected every entry >= {meta['min']}"
        return tuple(value), None
    if kind == "devices":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value, None
        if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                     for v in value):
            return tuple(value), None
        return value, "expected a count >= 1 or a non-empty list of GPU ids, e.g. 2 or [0, 1]"
    if kind == "pin":
        if isinstance(value, bool) or value == "auto":
            return value, None
        return value, "expected true, false or \"auto\""
    raise AssertionError(f"unknown field kind {kind}")


def cross_field_problems(config: RunConfig) -> list[tuple[str, object, str]]:
    """Problems that involve two fields at once and do not depend on the machine."""
    out = []
    s = config.strategy
    if s.name == "cpu" and s.devices != 1:
        out.append(("strategy.devices", s.devices, "strategy \"cpu\" uses one process; "
                    "for several CPU processes choose strategy.name = \"ddp\""))
    if s.name == "single" and not lists_ids(s.devices) and s.devices != 1:
        out.append(("strategy.devices", s.devices, "strategy \"single\" uses one GPU: give 1 or a list of one id, "
                    "e.g. [0]; for several choose \"ddp\" or \"dp\""))
    if s.name == "single" and lists_ids(s.devices) and len(s.devices) != 1:
        out.append(("strategy.devices", list(s.devices), "strategy \"single\" uses one GPU id, e.g. [0]"))
    if s.name == "dp" and device_count(s.devices) < 2:
        out.append(("strategy.devices", _plain(s.devices), "strategy \"dp\" needs at least 2 GPUs; "
                    "for one GPU choose \"single\""))
    if lists_ids(s.devices) and len(set(s.devices)) != len(s.devices) and s.name != "model-parallel":
        out.append(("strategy.devices", list(s.devices), "expected distinct GPU ids (only model-parallel may "
                    "put two stages on one GPU)"))
    if s.nodes > 1 and not is_multi_process(s.name):
        out.append(("strategy.nodes", s.nodes, "several nodes need strategy.name = \"ddp\" (or \"hybrid\")"))
    if s.name == "hybrid" and device_count(s.devices) % s.stages:
        out.append(("strategy.devices", _plain(s.devices), f"hybrid needs a multiple of strategy.stages = {s.stages} "
                    "devices: each replica holds one model cut into that many stages"))
    if s.nodes > 1 and not _is_endpoint(s.rdzv_endpoint):
        out.append(("strategy.rdzv_endpoint", s.rdzv_endpoint,
                    "multi-node ddp needs the rendezvous address as \"host:port\", e.g. \"10.0.0.1:29500\""))
    if s.rdzv_endpoint and not _is_endpoint(s.rdzv_endpoint):
        out.append(("strategy.rdzv_endpoint", s.rdzv_endpoint, "expected \"host:port\", e.g. \"10.0.0.1:29500\""))
    if s.split and s.name not in ("model-parallel", "hybrid"):
        out.append(("strategy.split", list(s.split), "only used by strategy.name = \"model-parallel\" or \"hybrid\""))
    if config.data.loader == "device" and config.data.num_workers:
        out.append(("data.num_workers", config.data.num_workers,
                    "the device loader uses no workers; set data.loader = \"dataloader\" or num_workers = 0"))
    return out


def discover_presets(directory: str | Path) -> list[PresetEntry]:
    """Every `*.toml` in a directory, sorted by name; invalid presets are kept with their errors."""
    from tui_trainer.config.validate import validate_for_machine

    entries = []
    for path in sorted(Path(directory).glob("*.toml")):
        description, config, errors = "", None, ()
        try:
            config = load_config(path)
            description = config.description
            errors = tuple(str(p) for p in validate_for_machine(config))
        except ConfigError as exc:
            errors = tuple(str(p) for p in exc.problems)
            try:
                raw = read_toml(path)
                description = raw.get("description", "") if isinstance(raw.get("description"), str) else ""
            except ConfigError:
                pass
        entries.append(PresetEntry(path.stem, path, description, config, errors))
    return entries


def save_preset(config: RunConfig, path: str | Path) -> Path:
    """Write a config as a preset TOML file (every field spelled out)."""
    import tomli_w

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(to_dict(config)), encoding="utf-8")
    return path


def with_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `section.key=value` overrides to an existing config, with the same validation."""
    raw = to_dict(config)
    origins = {}
    for text in overrides:
        key, value = parse_override(text)
        section, _, name = key.partition(".")
        raw.setdefault(section, {})
        if isinstance(raw[section], dict):
            raw[section][name] = value
        else:
            raw[section] = value
        origins[key] = "--set"
    return parse_config(raw, source=config.source, name=config.name, origins=origins)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _unknown(key: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean \"{close[0]}\"?" if close else ""
    return f"unknown {what}{hint} (allowed: {', '.join(known)})"


def _one_of(value: object, choices) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    hint = f" (did you mean \"{close[0]}\"?)" if close else ""
    return f"expected one of {', '.join(choices)}{hint}"


def _bounds(meta) -> str:
    parts = []
    if meta["min"] is not None:
        parts.append(f">= {meta['min']}")
    if meta["above"] is not None:
        parts.append(f"> {meta['above']}")
    if meta["max"] is not None:
        parts.append(f"<= {meta['max']}")
    return (" " + " and ".join(parts)) if parts else ""


def _bound_error(meta, value) -> str | None:
    low, above, high = meta["min"], meta["above"], meta["max"]
    if (low is not None and value < low) or (above is not None and value <= above) or (
            high is not None and value > high):
        return "expected a value" + _bounds(meta)
    return None


def _is_import_path(text: str) -> bool:
    module, sep, attr = text.partition(":")
    return bool(sep and module and attr and all(p.isidentifier() for p in module.split("."))
                and attr.isidentifier())


def _is_endpoint(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
