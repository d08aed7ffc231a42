"""`tui-trainer runs`: each run listed with its settings (table, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import cli, strict_json


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


def test_a_runs_figures_that_are_not_numbers_are_null_in_summary_json_and_runs_json(tmp_path):
    result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.max_steps=3",
                 "--set", "model.name=tests.user_parts:nan_when_evaluated")
    assert result.returncode == 0, result.stderr
    assert "val loss (last evaluation) nan" in result.stdout  # the terminal still says what happened
    (run_dir,) = tmp_path.iterdir()
    summary = strict_json((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final_loss"] > 0
    assert summary["final_val_loss"] is None and summary["best_val_loss"] is None and summary["metric"] is None
    (row,) = strict_json(cli("runs", "--json", "--runs-dir", str(tmp_path)).stdout)
    assert row["final_val_loss"] is None and row["final_loss"] == summary["final_loss"]


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


def test_runs_rm_deletes_after_confirmation_by_id_status_and_age_and_never_a_live_run(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    runs = tmp_path / "runs"
    for _ in range(3):
        assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(runs), "--set", "train.max_steps=2").returncode == 0
    old, kept, by_status = sorted(d.name for d in runs.iterdir())
    summary = json.loads((runs / old / "summary.json").read_text())
    (runs / old / "summary.json").write_text(json.dumps({**summary, "started_at": "2020-01-01T00:00:00"}))
    summary = json.loads((runs / by_status / "summary.json").read_text())
    (runs / by_status / "summary.json").write_text(json.dumps({**summary, "status": "stopped"}))
    live = subprocess.Popen([sys.executable, "-m", "tui_trainer", "run", "cpu-quick", "--headless", "--runs-dir",
                             str(runs), "--set", "train.epochs=100000"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        deadline = time.monotonic() + 120
        while True:
            started = [d for d in runs.iterdir() if d.name not in (old, kept, by_status)]
            if started and '"running"' in _text_of(started[0] / "summary.json"):
                break
            assert time.monotonic() < deadline, "the live run never started"
            time.sleep(0.2)
        live_id = started[0].name

        refused = subprocess.run([sys.executable, "-m", "tui_trainer", "runs", "rm", live_id, "--yes", "--runs-dir",
                                  str(runs)], cwd=ROOT, capture_output=True, text=True)
        assert refused.returncode == 1 and f"kept: {live_id} is still running" in refused.stdout
        assert (runs / live_id).exists()

        asked = subprocess.run([sys.executable, "-m", "tui_trainer", "runs", "rm", kept, "--runs-dir", str(runs)],
                               cwd=ROOT, capture_output=True, text=True, input="n\n")
        assert asked.returncode == 1 and "delete 1 run? [y/N]" in asked.stdout and "nothing deleted" in asked.stdout
        assert (runs / kept).exists()

        by_age = cli("runs", "rm", "--older-than", "30", "--yes", "--runs-dir", str(runs))
        assert by_age.returncode == 0 and "deleted 1 run" in by_age.stdout
        assert not (runs / old).exists() and (runs / kept).exists() and (runs / live_id).exists()

        by_state = cli("runs", "rm", "--status", "stopped", "--yes", "--runs-dir", str(runs))
        assert by_state.returncode == 0 and not (runs / by_status).exists() and (runs / kept).exists()

        confirmed = subprocess.run([sys.executable, "-m", "tui_trainer", "runs", "rm", kept, "--runs-dir", str(runs)],
                                   cwd=ROOT, capture_output=True, text=True, input="y\n")
        assert confirmed.returncode == 0 and not (runs / kept).exists()
        assert [d.name for d in runs.iterdir()] == [live_id]

        unknown = cli("runs", "rm", "no-such-run", "--yes", "--runs-dir", str(runs))
        assert unknown.returncode == 2 and "no run no-such-run" in unknown.stderr
        assert cli("runs", "rm", "--runs-dir", str(runs)).returncode == 2, "rm with nothing named deletes nothing"
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(60)


def _text_of(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_export_writes_a_runs_curves_for_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tui_trainer.runs import read_curves

    runs = tmp_path / "runs"
    assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(runs), "--set", "train.max_steps=30").returncode == 0
    (run_dir,) = runs.iterdir()
    result = cli("export", run_dir.name, "--runs-dir", str(runs), "--tensorboard", str(tmp_path / "tb"))
    assert result.returncode == 0, result.stderr
    assert f"{run_dir.name}: 30 train losses, 3 evaluations" in result.stdout
    events = EventAccumulator(str(tmp_path / "tb" / run_dir.name))
    events.Reload()
    curves = read_curves(run_dir / "metrics.jsonl")
    train = events.Scalars("loss/train")
    assert [e.step for e in train] == list(range(1, 31))
    assert all(abs(e.value - v) <= 1e-3 * abs(v) for e, v in zip(train, curves.losses))  # stored as float32
    assert [e.step for e in events.Scalars("loss/val")] == [12, 24, 30]
    assert len(events.Scalars("metric/r2")) == 3

    missing = cli("export", "no-such-run", "--runs-dir", str(runs), "--tensorboard", str(tmp_path / "tb2"))
    assert missing.returncode == 2 and "no-such-run" in missing.stderr and not (tmp_path / "tb2").exists()


def test_a_live_run_lists_its_age_and_no_rate_until_it_ends(tmp_path):
    from datetime import datetime, timedelta

    from tui_trainer.runs.liveness import RunLock, write_heartbeat

    result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.max_steps=4")
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())  # as another process's run looks while it trains
    started = (datetime.now() - timedelta(seconds=3725)).isoformat(timespec="seconds")
    summary.update(status="running", samples_per_s=0.0, wall_s=0.0, started_at=started)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lock = RunLock.acquire(run_dir)
    write_heartbeat(run_dir)
    try:
        (header, row) = cli("runs", "--runs-dir", str(tmp_path)).stdout.splitlines()[:2]
    finally:
        lock.release()
    assert row.split()[1] == "running"
    assert row.split()[-2:] == ["-", "1h02m"], row
