"""`tui-trainer sweep`: every combination a real run, measured alike; skipped and failed rows explained."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from tests.conftest import ROOT, cli, strict_json
from tui_trainer.training.checkpoint import load_checkpoint


def sweep_files(result, sweeps: Path) -> tuple[Path, dict, list[dict]]:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("sweep directory: "), result.stdout
    directory = Path(last.removeprefix("sweep directory: "))
    assert directory.parent == sweeps
    data = strict_json((directory / "sweep.json").read_text())  # scripts in any language read it
    with open(directory / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return directory, data, rows


def test_precision_by_accumulation_sweep_measures_four_rows_and_skips_the_gpu_only_ones(tmp_path):
    runs, sweeps = tmp_path / "runs", tmp_path / "sweeps"
    result = cli("sweep", "cpu-quick", "--grid", "train.precision=fp32,bf16-mixed", "--grid", "train.accumulate=1,2",
                 "--grid", "strategy.name=cpu,single", "--steps", "30", "--runs-dir", str(runs),
                 "--sweeps-dir", str(sweeps), "--headless", timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    directory, data, csv_rows = sweep_files(result, sweeps)
    rows = data["rows"]
    assert len(rows) == len(csv_rows) == 8
    completed = [r for r in rows if r["status"] == "completed"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert {(r["values"]["train.precision"], r["values"]["train.accumulate"]) for r in completed} == \
        {("fp32", 1), ("fp32", 2), ("bf16-mixed", 1), ("bf16-mixed", 2)}
    assert all(r["values"]["strategy.name"] == "cpu" for r in completed)
    for r in completed:
        assert r["samples_per_s"] > 0 and r["step_ms"] > 0 and r["peak_memory_mib"] > 0, r
        assert r["final_loss"] > 0 and r["metric"] is not None and r["reason"] == ""
        summary = json.loads((runs / r["run_id"] / "summary.json").read_text())  # a real run in the store
        assert summary["status"] == "completed" and summary["step"] == 30
        assert summary["final_loss"] == r["final_loss"]
    assert len(skipped) == 4 and all(r["values"]["strategy.name"] == "single" for r in skipped)
    assert all("no usable GPU" in r["reason"] and r["run_id"] == "" for r in skipped)
    assert len(list(runs.iterdir())) == 4, "skipped combinations never start"

    fastest = max(completed, key=lambda r: r["samples_per_s"])
    lowest = min(completed, key=lambda r: r["peak_memory_mib"])
    assert [r["fastest"] for r in rows] == [r is fastest for r in rows]
    assert [r["lowest_memory"] for r in rows] == [r is lowest for r in rows]
    assert completed[0]["relative_speed"] == 1.0
    assert abs(fastest["relative_speed"] - fastest["samples_per_s"] / completed[0]["samples_per_s"]) < 1e-9

    by_run = {r["run_id"]: r for r in csv_rows if r["run_id"]}
    for r in completed:
        line = by_run[r["run_id"]]
        assert float(line["samples_per_s"]) == r["samples_per_s"] and float(line["final_loss"]) == r["final_loss"]
        assert line["train.precision"] == r["values"]["train.precision"]
        assert line["fastest"] == ("true" if r["fastest"] else "false")
    assert "fastest" in result.stdout and "lowest memory" in result.stdout

    listed = cli("sweeps", "--sweeps-dir", str(sweeps))
    assert str(directory) in listed.stdout and "4 completed, 4 skipped, 0 failed" in listed.stdout


def test_effective_batch_mode_derives_accumulation_and_its_runs_equal_runs_started_by_hand(tmp_path):
    runs, sweeps = tmp_path / "runs", tmp_path / "sweeps"
    result = cli("sweep", "cpu-quick", "--grid", "data.batch_size=8,16,24,32", "--effective-batch", "32",
                 "--steps", "12", "--runs-dir", str(runs), "--sweeps-dir", str(sweeps), timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    _, data, _ = sweep_files(result, sweeps)
    rows = {r["values"]["data.batch_size"]: r for r in data["rows"]}
    assert rows[24]["status"] == "skipped" and "not a multiple" in rows[24]["reason"]
    for batch, accumulate in ((8, 4), (16, 2), (32, 1)):
        row = rows[batch]
        assert row["status"] == "completed" and row["values"]["train.accumulate"] == accumulate
        hand = tmp_path / f"hand-{batch}"
        by_hand = cli("run", "cpu-quick", "--headless", "--runs-dir", str(hand), "--set", f"data.batch_size={batch}",
                      "--set", f"train.accumulate={accumulate}", "--set", "train.max_steps=12")
        assert by_hand.returncode == 0, by_hand.stderr
        (hand_dir,) = hand.iterdir()
        swept = load_checkpoint(runs / row["run_id"] / "checkpoint.pt")["model"]
        manual = load_checkpoint(hand_dir / "checkpoint.pt")["model"]
        for name, tensor in manual.items():
            assert torch.allclose(swept[name], tensor, atol=1e-6, rtol=0), name
        assert abs(json.loads((hand_dir / "summary.json").read_text())["final_loss"] - row["final_loss"]) < 1e-6


def test_a_failing_combination_is_recorded_and_the_sweep_goes_on(tmp_path):
    runs, sweeps = tmp_path / "runs", tmp_path / "sweeps"
    result = cli("sweep", "cpu-quick", "--grid", "model.name=tests.user_parts:broken_model,mlp",
                 "--grid", "optimizer.lr=0.001,1e9", "--steps", "5",
                 "--runs-dir", str(runs), "--sweeps-dir", str(sweeps), cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    _, data, _ = sweep_files(result, sweeps)
    broken, broken_too, mlp, diverging = data["rows"]
    assert broken["status"] == broken_too["status"] == "failed" and "this model cannot be built" in broken["reason"]
    assert mlp["status"] == "completed" and mlp["fastest"] and mlp["relative_speed"] == 1.0
    assert diverging["status"] == "failed" and "loss became" in diverging["reason"]
    assert diverging["metric"] is None


def test_a_typo_in_an_axis_is_bad_input_and_starts_nothing(tmp_path):
    result = cli("sweep", "cpu-quick", "--grid", "train.precision=fp32,fp17", "--runs-dir", str(tmp_path / "runs"),
                 "--sweeps-dir", str(tmp_path / "sweeps"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: --grid: train.precision = "fp17": expected one of fp32, tf32, fp16-mixed, bf16-mixed, bf16-true']
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_a_combination_that_contradicts_itself_is_skipped_not_refused():
    from tests.conftest import PRESETS
    from tui_trainer.config import Machine
    from tui_trainer.runs.sweep import parse_grid, plan_sweep

    axes = parse_grid(["strategy.name=cpu,ddp", "strategy.devices=1,2", "model.hidden=[8,8],[16]"])
    assert axes[2].values == ([8, 8], [16]), "a list value with commas is one value"
    plan = plan_sweep(PRESETS / "cpu-quick.toml", axes, Machine((), 2, "no GPU"), steps=5,
                      overrides=("strategy.accelerator=cpu",))
    status = {(dict(r.values)["strategy.name"], dict(r.values)["strategy.devices"]): r for r in plan.rows}
    assert len(plan.rows) == 8
    assert status["cpu", 2].status == "skipped" and 'strategy "cpu" uses one process' in status["cpu", 2].reason
    assert all(status[k].status == "planned" for k in (("cpu", 1), ("ddp", 1), ("ddp", 2)))
    assert status["ddp", 2].config.train.max_steps == 5
