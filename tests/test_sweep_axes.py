"""The sweep screen's axes without an app: values offered for a preset, marked for this machine; the grid picked."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tui_trainer.config import Machine, load_config
from tui_trainer.config.choices import PRECISION_NAMES, STRATEGY_NAMES
from tui_trainer.runs.sweep import parse_grid, plan_sweep
from tui_trainer.session import sweep_axes

CPU_ONLY = Machine((), 2, "no NVIDIA GPU detected")
PRESET = ROOT / "presets" / "cpu-quick.toml"


def offers() -> dict[str, sweep_axes.AxisOffer]:
    return {o.key: o for o in sweep_axes.offer_axes(load_config(PRESET), CPU_ONLY)}


def test_precision_and_strategy_offer_every_name_marked_with_why_a_cpu_machine_cannot_run_it():
    axes = offers()
    precision, strategy = axes["train.precision"], axes["strategy.name"]
    assert tuple(c.value for c in precision.choices) == PRECISION_NAMES
    assert tuple(c.value for c in strategy.choices) == STRATEGY_NAMES
    reasons = {c.value: c.reason for c in (*precision.choices, *strategy.choices)}
    assert reasons["fp32"] == reasons["bf16-mixed"] == reasons["cpu"] == reasons["ddp"] == ""
    assert "needs a CUDA GPU" in reasons["fp16-mixed"]
    assert "no usable GPU" in reasons["single"] and "2 GPUs" in reasons["dp"]
    assert (precision.preset, strategy.preset) == ("fp32", "cpu")


def test_accumulate_and_batch_size_offer_values_around_the_preset_and_take_typed_ones():
    axes = offers()
    accumulate, batch = axes["train.accumulate"], axes["data.batch_size"]
    assert [c.value for c in accumulate.choices] == ["1", "2", "4", "8"] and accumulate.preset == "1"
    assert [c.value for c in batch.choices] == ["4", "8", "16", "32", "64", "128", "256"] and batch.preset == "32"
    assert accumulate.typed and batch.typed and not axes["train.precision"].typed
    assert sweep_axes.batch_values(100) == (16, 32, 64, 100, 128, 256, 512)
    assert sweep_axes.batch_values(1) == (1, 2, 4, 8)

    config = load_config(PRESET)
    typed = sweep_axes.typed_value(batch, " 48 ", config, CPU_ONLY)
    assert typed.value == "48" and typed.reason == ""
    assert [c.value for c in batch.with_choice(typed).choices][4:6] == ["48", "64"], "numbers stay in order"
    too_big = sweep_axes.typed_value(batch, "1024", config, CPU_ONLY)
    assert "larger than the 353 training samples" in too_big.reason
    for text in ("0", "", "-2", "2.5", "two"):
        with pytest.raises(ValueError, match=r"^batch size: expected a positive whole number, got "):
            sweep_axes.typed_value(batch, text, config, CPU_ONLY)


def test_untouched_axes_are_no_axes_and_the_picked_values_count_the_runs():
    axes = offers()
    untouched = sweep_axes.pick(tuple(axes.values()), {k: (o.preset,) for k, o in axes.items()})
    assert (untouched.grid, untouched.axes, untouched.runs) == ((), 0, 1)
    assert untouched.summary("100") == "0 axes, 1 run of 100 steps"

    picked = {"train.precision": ("fp32", "bf16-mixed"), "train.accumulate": ("1", "2"),
              "strategy.name": ("cpu", "single"), "data.batch_size": ("32",), "train.compile": ("false", "true")}
    chosen = sweep_axes.pick(tuple(axes.values()), picked)
    assert chosen.grid == ("train.precision=fp32,bf16-mixed", "strategy.name=cpu,single", "train.accumulate=1,2",
                           "train.compile=false,true")
    assert (chosen.axes, chosen.runs, chosen.flagged) == (4, 16, 8)
    assert chosen.summary("100") == "4 axes, 16 runs of 100 steps (8 with a ✗ value: skipped)"

    one = sweep_axes.pick(tuple(axes.values()), {"train.precision": ("bf16-mixed",), "train.accumulate": ()})
    assert one.grid == ("train.precision=bf16-mixed",) and (one.axes, one.runs) == (0, 1)
    assert one.fixed == ("train.precision=bf16-mixed",) and "accumulate" in one.unpicked


def test_the_picked_grid_plans_as_the_command_line_does_compile_included():
    axes = offers()
    chosen = sweep_axes.pick(tuple(axes.values()), {"train.compile": ("false", "true"),
                                                    "strategy.name": ("cpu", "single")})
    plan = plan_sweep(PRESET, parse_grid(list(chosen.grid)), CPU_ONLY, steps=5)
    assert len(plan.rows) == chosen.runs == 4
    assert [dict(r.values)["train.compile"] for r in plan.rows] == [False, True, False, True]
    assert [r.config.train.compile for r in plan.rows if r.status == "planned"] == [False, True]
    skipped = [r for r in plan.rows if r.status == "skipped"]
    assert len(skipped) == chosen.flagged == 2 and all("no usable GPU" in r.reason for r in skipped)
