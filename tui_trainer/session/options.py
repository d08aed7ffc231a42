"""The launch screen's editable options as plain data: values in, a validated config and problems out.

The options pane shows these; this module decides what they mean, through the config package's own
`with_overrides` and `validate_for_machine`, so the UI and the command line (`--set`) agree exactly.
No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from tui_trainer.config import ConfigError, Machine, RunConfig, validate_for_machine, with_overrides
from tui_trainer.config.choices import PRECISION_NAMES, STRATEGY_NAMES, lists_ids
from tui_trainer.config.schema import StrategyConfig

ACCELERATORS = next(f for f in fields(StrategyConfig) if f.name == "accelerator").metadata["choices"]

# key in the options pane -> the preset field it overrides
FIELDS = {
    "strategy": "strategy.name",
    "accelerator": "strategy.accelerator",
    "precision": "train.precision",
    "accumulate": "train.accumulate",
    "devices": "strategy.devices",
    "batch_size": "data.batch_size",
    "max_steps": "train.max_steps",
    "epochs": "train.epochs",
    "compile": "train.compile",
    "tensorboard": "logging.tensorboard",
}
CHOICES = {"strategy": STRATEGY_NAMES, "accelerator": ACCELERATORS,  # config.choices: one list of names
           "precision": PRECISION_NAMES, "compile": ("false", "true"), "tensorboard": ("false", "true")}
EMPTY = '""'  # an emptied field: the schema then says what is expected


@dataclass(frozen=True, slots=True)
class Choice:
    """One value of a choice option, and why this machine cannot run it ("" when it can)."""

    value: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Evaluated:
    """The options applied to a preset: the config (None when it does not parse) and every problem."""

    config: RunConfig | None
    problems: tuple[str, ...]
    keys: frozenset[str]

    @property
    def runnable(self) -> bool:
        return self.config is not None and not self.problems


def values_of(config: RunConfig) -> dict[str, str]:
    """The options' values as the pane shows them, from a config."""
    s = config.strategy
    devices = s.devices
    return {
        "strategy": s.name,
        "accelerator": s.accelerator,
        "precision": config.train.precision,
        "accumulate": str(config.train.accumulate),
        "devices": ids_text(devices) if lists_ids(devices) else str(devices),
        "batch_size": str(config.data.batch_size),
        "max_steps": str(config.train.max_steps),
        "epochs": str(config.train.epochs),
        "compile": "true" if config.train.compile else "false",
        "tensorboard": "true" if config.logging.tensorboard else "false",
    }


def ids_text(ids) -> str:
    """GPU ids as the devices field shows them: `[0, 1]` (a bare `1` would be a count)."""
    return "[" + ", ".join(map(str, ids)) + "]"


def overrides(values: dict[str, str]) -> list[str]:
    """`section.key=value` overrides for the values given (the same syntax as `--set`)."""
    out = []
    for key, text in values.items():
        text = text.strip()
        if key == "devices" and ("," in text or text.startswith("[")):
            text = "[" + text.strip("[]") + "]"  # GPU ids: "0,1" -> [0, 1]
        out.append(f"{FIELDS[key]}={text or EMPTY}")
    return out


def evaluate(base: RunConfig, values: dict[str, str], machine: Machine) -> Evaluated:
    """Apply the values to a preset's config and validate, machine checks included.

    Problems read `key = value: what is allowed` (no file name: the pane is the source).
    """
    try:
        config = with_overrides(base, overrides(values))
    except ConfigError as exc:
        return Evaluated(None, _lines(exc.problems), _keys(exc.problems))
    problems = validate_for_machine(config, machine)
    return Evaluated(config, _lines(problems), _keys(problems))


def mark_choices(base: RunConfig, values: dict[str, str], key: str, machine: Machine,
                 candidates: tuple[str, ...] | None = None) -> list[Choice]:
    """Every value of a choice option (or the `candidates` given), each with the reason this machine cannot run it.

    A value is judged with the other options as they are now. Its reason is a problem of that option
    itself, else a problem that choosing it brings (dp with one device); problems the current options
    already have are not blamed on it.
    """
    before = set(evaluate(base, values, machine).problems)
    out = []
    for value in CHOICES[key] if candidates is None else candidates:
        problems = [p for p in evaluate(base, {**values, key: value}, machine).problems if p not in before]
        own = [p for p in problems if p.startswith(f"{FIELDS[key]} = ")]
        reasons = own or problems
        out.append(Choice(value, _short(reasons[0]) if reasons else ""))
    return out


def _lines(problems) -> tuple[str, ...]:
    return tuple(str(p).removeprefix(f"{p.source}: ") for p in problems)


def _keys(problems) -> frozenset[str]:
    return frozenset(_option_key(p.key) for p in problems)


def _option_key(field: str) -> str:
    for key, dotted in FIELDS.items():
        if dotted == field:
            return key
    return ""


def _short(problem: str) -> str:
    """The reason part of a problem line: after `key = value: `, up to the first `;`."""
    reason = problem.split(": ", 1)[-1]
    return reason.split(";")[0].strip()
