"""The sweep screen's axes as plain data: the values each axis offers for a preset, and the grid picked.

Precision and strategy offer every name of `config.choices`; accumulation and batch size offer values
around the preset's own (more can be typed); compile offers off and on. Each value carries the reason
this machine cannot run it (judged as the options pane judges it, with the preset's other values), so
the screen can say why a picked value will be listed `skipped`. The picked values become `--grid`
texts for `runs.sweep.parse_grid`, exactly as the command line writes them. No Textual here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tui_trainer.config import Machine, RunConfig
from tui_trainer.session import options

# preset key -> (label, the options pane's key: its values and its validation)
AXES = {
    "train.precision": ("precision", "precision"),
    "strategy.name": ("strategy", "strategy"),
    "train.accumulate": ("accumulate", "accumulate"),
    "data.batch_size": ("batch size", "batch_size"),
    "train.compile": ("compile", "compile"),
}
SHOWN = {"false": "off", "true": "on"}  # how compile's values read on screen
TYPED = ("train.accumulate", "data.batch_size")  # axes that take more values typed as whole numbers


@dataclass(frozen=True, slots=True)
class AxisOffer:
    """One axis: its preset key, the values offered (each with why this machine cannot run it), the preset's value.

    Attributes:
        key: the preset key, e.g. `train.precision`.
        label: the axis's name on screen.
        choices: the values offered, as `--grid` writes them (`fp32`, `4`, `true`), each with its reason.
        preset: the preset's own value, written the same way (picked at first).
        typed: whether more values may be typed (positive whole numbers).
    """

    key: str
    label: str
    choices: tuple[options.Choice, ...]
    preset: str
    typed: bool = False

    def with_choice(self, choice: options.Choice) -> AxisOffer:
        """This axis with one more value (a typed one), numbers kept in order; a value offered already stays once."""
        if any(c.value == choice.value for c in self.choices):
            return self
        choices = sorted((*self.choices, choice), key=lambda c: int(c.value) if c.value.isdigit() else 0)
        return replace(self, choices=tuple(choices))


@dataclass(frozen=True, slots=True)
class SweepPick:
    """The values picked: the `--grid` texts, and what they make.

    Attributes:
        grid: `KEY=V1,V2` for each key whose picked values differ from just the preset's.
        axes: how many keys vary (two values or more).
        runs: the number of combinations.
        flagged: combinations holding a value marked ✗ (this machine cannot run it): listed `skipped`.
        fixed: `key=value` for a key given one value that is not the preset's (every run gets it).
        unpicked: labels of the axes with no value picked (they keep the preset's value).
    """

    grid: tuple[str, ...]
    axes: int
    runs: int
    flagged: int
    fixed: tuple[str, ...]
    unpicked: tuple[str, ...]

    def summary(self, steps: str) -> str:
        """`2 axes, 4 runs of 100 steps` and what else the user should know before starting."""
        steps = steps.strip() or "?"
        text = (f"{self.axes} axis" if self.axes == 1 else f"{self.axes} axes") + ", "
        text += f"{self.runs} run{'s' if self.runs != 1 else ''} of {steps} steps"
        if self.flagged:
            text += f" ({self.flagged} with a ✗ value: skipped)"
        if self.fixed:
            text += "; every run: " + " ".join(self.fixed)
        if self.unpicked:
            text += "; none picked (the preset's kept): " + ", ".join(self.unpicked)
        return text


def accumulate_values(preset: int) -> tuple[int, ...]:
    """1, 2, 4, 8 and the preset's own accumulation."""
    return tuple(sorted({1, 2, 4, 8, preset}))


def batch_values(preset: int) -> tuple[int, ...]:
    """Powers of two from an eighth of the preset's batch size to eight times it, and the preset's own."""
    low = max(1, preset // 8)
    powers = [2 ** n for n in range(0, int(math.log2(preset * 8)) + 1) if low <= 2 ** n <= preset * 8]
    return tuple(sorted({*powers, preset}))


def offer_axes(config: RunConfig, machine: Machine) -> tuple[AxisOffer, ...]:
    """Every axis the sweep screen offers for a preset, each value marked with why this machine cannot run it."""
    values = options.values_of(config)
    offered = {"train.accumulate": accumulate_values(config.train.accumulate),
               "data.batch_size": batch_values(config.data.batch_size)}
    out = []
    for key, (label, option) in AXES.items():
        candidates = tuple(map(str, offered[key])) if key in offered else None
        choices = options.mark_choices(config, values, option, machine, candidates)
        out.append(AxisOffer(key, label, tuple(choices), values[option], key in TYPED))
    return tuple(out)


def typed_value(offer: AxisOffer, text: str, config: RunConfig, machine: Machine) -> options.Choice:
    """A value typed for an axis, with the reason this machine cannot run it.

    Raises ValueError (one line naming the axis) when the text is not a positive whole number.
    """
    text = text.strip()
    if not offer.typed:
        raise ValueError(f"{offer.label}: pick from the list")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{offer.label}: expected a positive whole number, got {text!r}")
    value = str(int(text))
    option = AXES[offer.key][1]
    return options.mark_choices(config, options.values_of(config), option, machine, (value,))[0]


def pick(offers: tuple[AxisOffer, ...], picked: dict[str, tuple[str, ...]]) -> SweepPick:
    """The grid the picked values make (key -> values picked, in the order shown).

    A key given only the preset's value, or nothing, is no axis: the preset's value stays.
    """
    grid, fixed, unpicked = [], [], []
    runs, runnable, axes = 1, 1, 0
    for offer in offers:
        values = tuple(dict.fromkeys(picked.get(offer.key, ())))
        if not values:
            unpicked.append(offer.label)
            continue
        if values == (offer.preset,):
            continue
        grid.append(f"{offer.key}={','.join(values)}")
        if len(values) == 1:
            fixed.append(f"{offer.key}={values[0]}")
        else:
            axes += 1
        reasons = {c.value: c.reason for c in offer.choices}
        runs *= len(values)
        runnable *= sum(1 for v in values if not reasons.get(v))
    return SweepPick(tuple(grid), axes, runs, runs - runnable, tuple(fixed), tuple(unpicked))
