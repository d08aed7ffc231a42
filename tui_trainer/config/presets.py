"""Presets: TOML files that describe a run. Read, override, validate, list and save them."""

from __future__ import annotations

import difflib
import math
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from tui_trainer.config.choices import is_multi_process, lists_ids
from tui_trainer.config.errors import _MISSING, ConfigError, ConfigProblem
from tui_trainer.config.machine import Machine
from tui_trainer.config.schema import (
    BUILTIN_DATASETS,
    MAX_DEVICES,
    MAX_LIST,
    SECTIONS,
    RunConfig,
    as_written,
    device_count,
    to_dict,
    train_samples,
)
from tui_trainer.config.validate import validate_for_machine

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
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(source, "", None, f"cannot read file: {exc.strerror or exc}")]) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a byte-order mark: an editor saved it as UTF-16 or UTF-32
        raise ConfigError([ConfigProblem(source, "", None, "saved as UTF-16 (it starts with a byte-order mark): "
                                         "a preset is a TOML file saved as UTF-8")])
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # a UTF-8 byte-order mark is harmless
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([ConfigProblem(source, "", None, f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
                                         f"{line}, offset {exc.start}): a preset is a TOML file saved as UTF-8")]) from None
    return parse_toml(text, source)


def parse_toml(text: str, source: str, key: str = "") -> dict:
    """Parse TOML text; every way it can be refused becomes one ConfigError line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        why = f"invalid TOML: {exc}"
        if str(exc).startswith("Invalid value"):
            why += "; a string needs quotes, e.g. precision = \"bf16-mixed\""
    except RecursionError:
        why = "invalid TOML: nested too deeply"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        why = f"invalid TOML: {str(exc).split(';')[0]}"
    raise ConfigError([ConfigProblem(source, key, text if key else None, why)]) from None


def parse_override(text: str) -> tuple[str, object]:
    """Split `section.key=value`; the value is read as TOML, else taken as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise ConfigError([ConfigProblem("--set", key or text, _MISSING,
                                         "expected section.key=value, e.g. --set train.precision=bf16-mixed")])
    raw = raw.strip()
    try:
        parsed = tomllib.loads(f"v = {raw}")
        value = parsed["v"] if len(parsed) == 1 else raw  # "1\nx = 2" is one string, not two keys
    except tomllib.TOMLDecodeError:
        value = raw
    except (RecursionError, ValueError):  # deep nesting, a 5,000-digit integer
        raise ConfigError([ConfigProblem("--set", key, raw, "cannot read this value as TOML (nested too deeply "
                                         "or a number too long)")]) from None
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
            typed = [dotted for dotted in origins if dotted.partition(".")[0] == key]
            if typed:  # `--set optim.lr=...`: the mistake is on the command line, not in the preset
                section, _, name = typed[0].partition(".")
                problems.append(ConfigProblem(origins[typed[0]], typed[0], raw[section][name],
                                              _unknown(key, list(SECTIONS), "section")))
            else:
                problems.append(ConfigProblem(source, key, raw[key], _unknown(key, [*SECTIONS, *TOP_LEVEL_KEYS],
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
            quoted = ", written without quotes" if isinstance(value, str) and _is_number_text(value) else ""
            return value, f"expected {'an integer' if kind == 'int' else 'a number'}{_bounds(meta)}{quoted}"
        if kind == "float":
            try:
                value = float(value)
            except OverflowError:  # an integer too large for a float
                return value, "expected a finite number" + _bounds(meta)
            if not math.isfinite(value):
                return value, "expected a finite number" + _bounds(meta)
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
        if len(value) > MAX_LIST:
            return value, f"expected at most {MAX_LIST} entries"
        if any(v < meta["min"] or v > meta["max"] for v in value):
            return value, f"expected every entry >= {meta['min']} and <= {meta['max']}"
        return tuple(value), None
    if kind == "devices":
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DEVICES:
            return value, None
        if (isinstance(value, list) and 0 < len(value) <= MAX_DEVICES
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_DEVICES for v in value)):
            return tuple(value), None
        return value, (f"expected a count from 1 to {MAX_DEVICES} or a non-empty list of GPU ids, "
                       "e.g. 2 or [0, 1]")
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
        out.append(("strategy.devices", as_written(s.devices), "strategy \"dp\" needs at least 2 GPUs; "
                    "for one GPU choose \"single\", without a GPU \"cpu\""))
    if lists_ids(s.devices) and len(set(s.devices)) != len(s.devices) and s.name != "model-parallel":
        out.append(("strategy.devices", list(s.devices), "expected distinct GPU ids (only model-parallel may "
                    "put two stages on one GPU)"))
    if s.nodes > 1 and not is_multi_process(s.name):
        out.append(("strategy.nodes", s.nodes, "several nodes need strategy.name = \"ddp\" (or \"hybrid\")"))
    if s.name == "hybrid" and device_count(s.devices) % s.stages:
        out.append(("strategy.devices", as_written(s.devices), f"hybrid needs a multiple of strategy.stages = {s.stages} "
                    "devices: each replica holds one model cut into that many stages"))
    if s.nodes > 1 and not _is_endpoint(s.rdzv_endpoint):
        out.append(("strategy.rdzv_endpoint", s.rdzv_endpoint,
                    "multi-node ddp needs the rendezvous address as \"host:port\", e.g. \"10.0.0.1:29500\""))
    if s.rdzv_endpoint and not _is_endpoint(s.rdzv_endpoint):
        out.append(("strategy.rdzv_endpoint", s.rdzv_endpoint, "expected \"host:port\", e.g. \"10.0.0.1:29500\""))
    if s.split and s.name not in ("model-parallel", "hybrid"):
        out.append(("strategy.split", list(s.split), "only used by strategy.name = \"model-parallel\" or \"hybrid\""))
    train = train_samples(config.data)
    if train is not None and config.effective_batch > train:
        out.append(("data.batch_size", config.data.batch_size,
                    f"the effective batch {config.effective_batch} (batch_size x accumulate x processes) is larger "
                    f"than the {train} training samples of {config.data.dataset}; lower data.batch_size"
                    + (" or train.accumulate" if config.train.accumulate > 1 else "")))
    if config.data.loader == "device" and config.data.num_workers:
        out.append(("data.num_workers", config.data.num_workers,
                    "the device loader uses no workers; set data.loader = \"dataloader\" or num_workers = 0"))
    return out


def discover_presets(directory: str | Path, machine: Machine) -> list[PresetEntry]:
    """Every `*.toml` in a directory, sorted by name, validated against `machine`; invalid presets are
    kept with their errors."""
    return [read_preset(path, machine) for path in preset_paths(directory)]


def preset_paths(directory: str | Path) -> list[Path]:
    """The `*.toml` files of a presets directory, sorted by name (a-b after a)."""
    return sorted(Path(directory).glob("*.toml"), key=lambda p: (p.stem, p.name))


def read_preset(path: Path, machine: Machine) -> PresetEntry:
    """One preset file as listed: its config and description, or its errors (kept, not raised)."""
    description, config, errors = "", None, ()
    try:
        config = load_config(path)
        description = config.description
        errors = tuple(str(p) for p in validate_for_machine(config, machine))
    except ConfigError as exc:
        errors = tuple(str(p) for p in exc.problems)
        try:
            raw = read_toml(path)
            description = raw.get("description", "") if isinstance(raw.get("description"), str) else ""
        except ConfigError:
            pass
    return PresetEntry(path.stem, path, description, config, errors)


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


def _unknown(key: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) if len(key) < 100 else []
    hint = f"; did you mean \"{close[0]}\"?" if close else ""
    return f"unknown {what}{hint} (allowed: {', '.join(known)})"


def _one_of(value: object, choices) -> str:
    text = value if isinstance(value, str) and len(value) < 100 else ""
    close = difflib.get_close_matches(text, list(choices), n=1, cutoff=0.6) if text else []
    hint = f" (did you mean \"{close[0]}\"?)" if close else ""
    return f"expected one of {', '.join(choices)}{hint}"


def _bounds(meta) -> str:
    parts = []
    if meta["min"] is not None:
        parts.append(f">= {_number(meta['min'])}")
    if meta["above"] is not None:
        parts.append(f"> {_number(meta['above'])}")
    if meta["max"] is not None:
        parts.append(f"<= {_number(meta['max'])}")
    return (" " + " and ".join(parts)) if parts else ""


def _number(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _bound_error(meta, value) -> str | None:
    low, above, high = meta["min"], meta["above"], meta["max"]
    if (low is not None and value < low) or (above is not None and value <= above) or (
            high is not None and value > high):
        return "expected a value" + _bounds(meta)
    return None


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_import_path(text: str) -> bool:
    module, sep, attr = text.partition(":")
    return bool(sep and module and attr and all(p.isidentifier() for p in module.split("."))
                and attr.isidentifier())


def _is_endpoint(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    # isascii: "²".isdigit() is true, but int("²") fails
    return bool(sep and _HOST.fullmatch(host) and port.isascii() and port.isdigit() and 0 < int(port) < 65536)


_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]{1,253}")  # a name, an IPv4 or a bracketed IPv6 address
