"""`tui-trainer runs`: each run listed with its settings (table, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import cli


def test_runs_list_shows_each_runs_strategy_precision_accumulation_effective_batch_and_lr(tmp_path):
    for overrides in (("train.precision=fp32", "train.accumulate=1", "optimizer.lr=0.01"),
                      ("train.precision=bf16-mixed", "train.accumulate=2", "optimizer.lr=0.003")):
        sets = [arg for o in overrides for arg in ("--set", o)]
        result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.max_steps=4", *sets)
        assert result.returncode == 0, result.stderr
    listing = {r["precision"]: r for r in json.loads(cli("runs", "--json", "--runs-dir", str(tmp_path)).stdout)}
    assert set(listing) == {"fp32", "bf16-mixed"}
    fp32, bf16 = listing["fp32"], listing["bf16-mixed"]
    assert (fp32["strategy"], fp32["devices"], fp32["accumulate"], fp32["effective_batch"], fp32["lr"]) == \
        ("cpu", "1", 1, 32, 0.01)
    assert (bf16["accumulate"], bf16["effective_batch"], bf16["lr"]) == (2, 64, 0.003)

    rows = list(csv.DictReader(io.StringIO(cli("runs", "--csv", "--runs-dir", str(tmp_path)).stdout)))
    assert {(r["run_id"], r["precision"], r["accumulate"], r["effective_batch"]) for r in rows} == \
        {(fp32["run_id"], "fp32", "1", "32"), (bf16["run_id"], "bf16-mixed", "2", "64")}
    assert float(next(r for r in rows if r["precision"] == "fp32")["final_loss"]) == fp32["final_loss"]

    table = cli("runs", "--runs-dir", str(tmp_path)).stdout.splitlines()
    assert table[0].split()[:4] == ["run", "status", "steps", "train"]
    for column in ("strategy", "devices", "precision", "accum", "eff.batch", "lr"):
        assert column in table[0]
    bf16_line = next(line for line in table if bf16["run_id"] in line)
    assert "bf16-mixed" in bf16_line and " 64 " in bf16_line and "0.003" in bf16_line


def test_runs_list_survives_a_run_whose_config_is_missing(tmp_path):
    assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.max_steps=2").returncode == 0
    (run_dir,) = tmp_path.iterdir()
    (run_dir / "config.toml").unlink()
    listing = json.loads(cli("runs", "--json", "--runs-dir", str(tmp_path)).stdout)
    assert listing[0]["status"] == "completed" and listing[0]["strategy"] is None
    assert cli("runs", "--runs-dir", str(tmp_path)).returncode == 0


def test_settings_of_a_multi_device_run_count_every_replica_in_the_effective_batch(tmp_path):
    from tests.conftest import make_config
    from tui_trainer.config import save_preset
    from tui_trainer.runs.settings import read_settings

    config = make_config(data={"batch_size": 16}, train={"accumulate": 4, "precision": "fp16-mixed"},
                         strategy={"name": "dp", "devices": [0, 1]})
    save_preset(config, tmp_path / "config.toml")  # as the run store writes it (arrays over several lines)
    settings = read_settings(tmp_path)
    assert (settings.strategy, settings.devices, settings.precision, settings.accumulate) == ("dp", "0,1", "fp16-mixed", 4)
    assert settings.effective_batch == config.effective_batch == 128
