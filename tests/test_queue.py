"""`tui-trainer run A B C --headless`: a queue of presets, one run after another."""

from __future__ import annotations

import json

from tests.conftest import PRESETS, ROOT, cli


def broken_preset(tmp_path):
    preset = tmp_path / "broken.toml"
    preset.write_text((PRESETS / "cpu-quick.toml").read_text().replace(
        "[model]\n", '[model]\nname = "tests.user_parts:broken_model"\n'))
    return preset


def test_a_queue_runs_every_preset_in_order_and_a_failure_does_not_stop_it(tmp_path):
    runs = tmp_path / "runs"
    result = cli("run", "cpu-quick", str(broken_preset(tmp_path)), "digits-classify", "--headless",
                 "--runs-dir", str(runs), "--set", "train.max_steps=5", cwd=ROOT)
    assert result.returncode == 1, "the exit code is the worst of the runs'"
    out = result.stdout
    assert out.index("queue [1/3]: cpu-quick") < out.index("queue [2/3]: broken") < out.index("queue [3/3]: digits")
    assert "failed: broken" in out and "this model cannot be built" in out
    summaries = {json.loads((d / "summary.json").read_text())["name"]: json.loads((d / "summary.json").read_text())
                 for d in runs.iterdir()}
    assert {name: s["status"] for name, s in summaries.items()} == \
        {"cpu-quick": "completed", "broken": "failed", "digits-classify": "completed"}
    assert out.strip().splitlines()[-3:] == [
        f"queue: cpu-quick: completed ({summaries['cpu-quick']['run_id']})",
        f"queue: broken: failed ({summaries['broken']['run_id']})",
        f"queue: digits-classify: completed ({summaries['digits-classify']['run_id']})"]


def test_stop_on_failure_ends_the_queue_at_the_failed_run(tmp_path):
    runs = tmp_path / "runs"
    result = cli("run", str(broken_preset(tmp_path)), "cpu-quick", "--headless", "--stop-on-failure",
                 "--runs-dir", str(runs), "--set", "train.max_steps=5", cwd=ROOT)
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "queue: cpu-quick: not started"
    assert len(list(runs.iterdir())) == 1


def test_a_queue_with_one_bad_preset_starts_nothing(tmp_path):
    result = cli("run", "cpu-quick", "single-gpu-bf16", "--headless", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and 'strategy.name = "single"' in result.stderr
    assert not (tmp_path / "runs").exists()


def test_all_completed_queue_exits_0(tmp_path):
    result = cli("run", "cpu-quick", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set",
                 "train.max_steps=3")
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.iterdir())) == 2
