"""The real `tui-trainer` command: headless runs, exit codes, Ctrl-C, listings, import hygiene."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PRESETS, ROOT, cli
from tui_trainer.training.checkpoint import load_checkpoint


def test_headless_default_run_completes_with_plain_lines_and_a_summary(tmp_path):
    result = cli("run", str(PRESETS / "cpu-quick.toml"), "--headless", "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout, "logs never get carriage-return progress bars"
    (run_dir,) = tmp_path.iterdir()
    assert f"run directory: {run_dir}" in result.stdout
    assert "completed: cpu-quick at step 1200/1200" in result.stdout
    assert "r2 " in result.stdout and "samples/s" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["metric"] > 0.25, "the default learns the diabetes task"


def test_bad_preset_exits_2_with_one_line_per_problem_and_starts_nothing(tmp_path):
    preset = tmp_path / "typo.toml"
    preset.write_text('[train]\nprecision = "fp17"\nepochz = 3\n')
    result = cli("run", str(preset), "--headless", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert sorted(lines) == [
        f'error: {preset}: train.epochz = 3: unknown key in [train]; did you mean "epochs"? '
        '(allowed: epochs, max_steps, seed, precision, accumulate, grad_clip, eval_every, checkpoint_every, '
        'checkpoint_minutes, threads, max_skipped_in_row, compile)',
        f'error: {preset}: train.precision = "fp17": expected one of fp32, tf32, fp16-mixed, bf16-mixed, bf16-true',
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists(), "no run directory is made for bad input"


def test_gpu_preset_on_a_cpu_machine_says_what_to_choose(tmp_path):
    result = cli("run", "single-gpu-bf16", "--headless", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert 'strategy.name = "single"' in result.stderr and 'choose "cpu"' in result.stderr


def test_set_overrides_apply_to_the_run(tmp_path):
    result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.max_steps=30",
                 "--set", "model.hidden=[8]", "--set", "train.precision=bf16-mixed")
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    config = (run_dir / "config.toml").read_text()
    assert "max_steps = 30" in config
    assert "hidden = [\n    8,\n]" in config or "hidden = [8]" in config
    assert 'precision = "bf16-mixed"' in config


# Runs that a test interrupts are planned far longer than any machine can finish before the signal
# (1.2 million steps): the Ctrl-C cannot lose the race, however busy the cores are.
LONG_RUN = "train.epochs=100000"
LONG_RUN_STEPS = 1_200_000


def start_long_headless_run(runs_dir: Path, **popen) -> subprocess.Popen:
    """`tui-trainer run cpu-quick --headless` planned for 1.2 million steps; returns once it prints progress."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_trainer", "run", "cpu-quick", "--headless", "--runs-dir", str(runs_dir),
         "--set", LONG_RUN, "--progress-every", "0.2"],
        cwd=ROOT, stdout=subprocess.PIPE, **popen)
    deadline = time.monotonic() + 300  # generous: start-up on a loaded machine
    for line in process.stdout:  # a progress line is printed only once optimizer steps are being taken
        if (line if isinstance(line, str) else line.decode()).startswith("step "):
            return process
        assert time.monotonic() < deadline, "no progress line within 300 s"
    process.kill()
    raise AssertionError(f"the run ended before training: exit {process.wait()}")


def shorten_plan(run_dir: Path, steps: int) -> None:
    """Cap a stopped run's planned steps in its config.toml (what `resume` reads), so that it finishes soon."""
    config = run_dir / "config.toml"
    text = config.read_text()
    assert "max_steps = 0\n" in text
    config.write_text(text.replace("max_steps = 0\n", f"max_steps = {steps}\n"))


def test_ctrl_c_stops_cleanly_with_exit_130_and_resume_finishes_the_run(tmp_path):
    process = start_long_headless_run(tmp_path, stderr=subprocess.PIPE, text=True)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped"
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["step"] == summary["step"] > 0
    assert summary["step"] < LONG_RUN_STEPS, "the run was stopped, not completed"
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) <= summary["step"]

    end = summary["step"] + 600  # 50 more epochs of 12 steps
    shorten_plan(run_dir, end)
    resumed = cli("resume", str(run_dir), "--headless", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {summary['step']}" in resumed.stdout
    final = json.loads((run_dir / "summary.json").read_text())
    assert final["status"] == "completed" and final["step"] == end
    again = cli("resume", str(run_dir), "--headless")
    assert again.returncode == 2 and "already completed" in again.stderr


def test_ctrl_c_with_the_output_pipe_closed_still_stops_cleanly_with_a_checkpoint(tmp_path):
    # `tui-trainer run ... | tee log` then Ctrl-C: the terminal's SIGINT kills tee too, so the
    # "stopping" line meets a closed pipe; the run must still stop, checkpoint and exit 130.
    process = start_long_headless_run(tmp_path, stderr=subprocess.STDOUT)
    process.stdout.close()  # the reader is gone
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["step"] < LONG_RUN_STEPS
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == summary["step"] > 0
    # resumed by its id as `tui-trainer runs` lists it, with --runs-dir after the command
    shorten_plan(run_dir, summary["step"] + 120)
    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), "--headless", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_presets_json_lists_name_description_and_validity():
    result = cli("presets", "--json")
    assert result.returncode == 0
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert entries["cpu-quick"]["valid"] and entries["cpu-quick"]["description"]
    assert entries["digits-classify"]["valid"]
    # This machine has no GPU: the GPU presets are listed, marked invalid, with the reason.
    assert not entries["dp-fp16"]["valid"]
    assert any("no usable GPU" in e for e in entries["dp-fp16"]["errors"])


def test_a_built_wheel_carries_the_presets_and_they_are_found_from_any_directory(tmp_path):
    import importlib.util
    import shutil
    import zipfile

    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT / "presets", source / "presets")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "tui_trainer", source / "tui_trainer", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w",
                            str(tmp_path / "wheel"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("tui_trainer-*.whl")
    shipped = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if n.startswith("tui_trainer/presets/")}
    assert shipped == {p.name for p in PRESETS.glob("*.toml")}
    # with no ./presets where it runs, the command finds the presets shipped with the package by name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = cli("presets", "--json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert {e["name"] for e in json.loads(listed.stdout)} == {p.stem for p in PRESETS.glob("*.toml")}


def test_runs_lists_status_loss_and_speed(tmp_path):
    assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.epochs=2").returncode == 0
    listing = json.loads(cli("runs", "--json", "--runs-dir", str(tmp_path)).stdout)
    assert len(listing) == 1 and listing[0]["status"] == "completed" and listing[0]["samples_per_s"] > 0
    table = cli("runs", "--runs-dir", str(tmp_path)).stdout
    assert "completed" in table and listing[0]["run_id"] in table


def test_help_and_the_package_do_not_import_torch_or_textual():
    code = ("import sys, tui_trainer, tui_trainer.config, tui_trainer.runs, tui_trainer.cli.main\n"
            "tui_trainer.cli.main.build_parser()\n"
            "heavy = [m for m in ('torch', 'sklearn', 'textual', 'rich') if m in sys.modules]\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_headless_run_never_imports_torch_compile_machinery(tmp_path):
    # torch's optimizers import torch._dynamo (as slow as importing torch) at their first call unless
    # built as tui-trainer builds them: a run pays only for what it uses.
    code = ("import sys\nfrom tui_trainer.cli.main import main\n"
            f"code = main(['run', 'cpu-quick', '--headless', '--runs-dir', {str(tmp_path)!r}, '--set', "
            "'train.max_steps=30', '--set', 'train.checkpoint_every=10'])\n"
            "print('exit', code, 'dynamo', 'torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "exit 0 dynamo False" in result.stdout, result.stdout + result.stderr
