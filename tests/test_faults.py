"""Faults during a run, injected for real: each ends in a recorded state, loses nothing, leaves no process."""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, cli, make_config, run_to_end
from tui_trainer.runs import Runner, RunStore, create_runner, read_curves, resume_runner
from tui_trainer.training.checkpoint import load_checkpoint, save_checkpoint
from tui_trainer.training.events import TrainProgress


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def stop_after_progress(runner: Runner, beyond: int = 0, timeout: float = 120):
    """Stop a running Runner once it reports a step past `beyond`; return its summary."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = runner.events.get(timeout=timeout)
        if isinstance(event, TrainProgress) and event.step > beyond:
            break
        if type(event).__name__ == "RunFinished":
            return event.summary
    runner.stop()
    return runner.wait(timeout)


def assert_every_step_once(run_dir: Path, last: int) -> None:
    """metrics.jsonl and losses.bin hold steps 1..last exactly once, in order, with the same losses."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train] == list(range(1, last + 1)), "a step is missing or repeated in metrics.jsonl"
    val_steps = [r["step"] for r in rows if "val_loss" in r]
    assert val_steps == sorted(set(val_steps)), "a validation line is repeated"
    data = (run_dir / "losses.bin").read_bytes()
    pairs = list(struct.iter_unpack("=qd", data))
    assert [s for s, _ in pairs] == list(range(1, last + 1)), "a step is missing or repeated in losses.bin"
    assert [loss for _, loss in pairs] == [r["loss"] for r in train]


# ------------------------------------------------------------------ training dies outside the loop
@pytest.mark.parametrize("dataset", ["exiting_dataset", "interrupting_dataset"])
def test_a_user_dataset_raising_systemexit_or_keyboardinterrupt_ends_the_run_failed_and_the_process_exits(
        tmp_path, dataset):
    result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path),
                 "--set", f"data.dataset=tests.user_parts:{dataset}", timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    (run_dir,) = tmp_path.iterdir()
    summary = summary_of(run_dir)
    names = ("SystemExit", "3") if dataset == "exiting_dataset" else ("KeyboardInterrupt",)
    assert summary["status"] == "failed" and all(name in summary["error"] for name in names), summary["error"]
    assert "failed: cpu-quick" in result.stdout and names[0] in result.stdout


def test_resume_with_a_damaged_wall_time_in_the_summary_runs_and_records_its_end(tmp_path):
    assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.epochs=2").returncode == 0
    (run_dir,) = tmp_path.iterdir()
    damaged = {**summary_of(run_dir), "status": "stopped", "wall_s": "abc"}
    (run_dir / "summary.json").write_text(json.dumps(damaged))
    result = cli("resume", str(run_dir), "--headless", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = summary_of(run_dir)
    assert summary["status"] == "completed" and isinstance(summary["wall_s"], float)


def test_the_end_state_is_written_in_place_when_no_new_file_can_be_made(tmp_path):
    # A full disk or a read-only directory refuses the temporary summary.json.PID.tmp; here a directory stands
    # in its way. The resume runs in this process (the real CLI entry point), so its pid is known.
    from tui_trainer.cli.main import main

    assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.epochs=2").returncode == 0
    (run_dir,) = tmp_path.iterdir()
    (run_dir / "summary.json").write_text(json.dumps({**summary_of(run_dir), "status": "stopped"}))
    (run_dir / f"summary.json.{os.getpid()}.tmp").mkdir()
    assert main(["resume", str(run_dir), "--headless"]) == 0
    assert summary_of(run_dir)["status"] == "completed"


def test_the_recorded_end_stands_when_the_run_directory_will_not_let_go_of_its_heartbeat(runs_dir):
    # A run directory made read-only during the run (chmod 555) cannot lose its heartbeat file at the end;
    # a heartbeat that is a directory refuses the same way here (the tests run as root, where chmod
    # does not bite). The end must stay the one recorded, not become "failed at step 0".
    runner = Runner(make_config(data={"dataset": "diabetes"}, train={"epochs": 100000}), RunStore(runs_dir))
    run_dir = runner.start()
    deadline = time.monotonic() + 120
    while not isinstance(runner.events.get(timeout=120), TrainProgress):
        assert time.monotonic() < deadline
    heartbeat = run_dir / "heartbeat"
    heartbeat.unlink()
    (heartbeat / "kept").mkdir(parents=True)
    runner.stop()
    summary = runner.wait(120)
    assert summary.status == "stopped" and summary.step > 0, summary
    assert summary_of(run_dir)["status"] == "stopped" and summary_of(run_dir)["step"] == summary.step


def test_a_run_directory_that_refuses_a_write_is_one_error_line_not_a_traceback(tmp_path):
    # As a run directory made read-only (chmod 555) refuses `resume` its fresh events.jsonl; here the
    # file is a directory (the tests run as root, where chmod does not bite).
    assert cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.epochs=2").returncode == 0
    (run_dir,) = tmp_path.iterdir()
    (run_dir / "summary.json").write_text(json.dumps({**summary_of(run_dir), "status": "stopped"}))
    (run_dir / "events.jsonl").unlink()
    (run_dir / "events.jsonl" / "kept").mkdir(parents=True)
    result = cli("resume", str(run_dir), "--headless")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {run_dir / 'events.jsonl'}: Is a directory"]
    assert summary_of(run_dir)["status"] == "stopped", "the run's record is untouched"


def test_a_stop_at_the_end_of_an_epoch_still_validates_that_epoch(runs_dir):
    # One step an epoch (the whole diabetes training split in one batch): every stop is at an epoch's end.
    # The resume starts the next epoch, so the stopped one must be validated before the run stops.
    config = make_config(data={"dataset": "diabetes", "batch_size": 353}, train={"epochs": 100000})
    runner = Runner(config, RunStore(runs_dir))
    run_dir = runner.start()
    summary = stop_after_progress(runner, beyond=5)
    assert summary.status == "stopped"
    curves = read_curves(run_dir / "metrics.jsonl")
    assert curves.val_steps[-1] == summary.step, "the stopped epoch's validation is recorded"
    assert list(curves.val_steps) == list(range(1, summary.step + 1)), "one validation each epoch, none missing"


# ------------------------------------------------------------------ out of memory
@pytest.mark.parametrize("model, where", [("gpu_oom_at_step_3", "GPU"), ("host_oom_at_step_3", "host")])
def test_out_of_memory_ends_failed_with_the_batch_settings_and_the_fix_and_the_next_run_starts(
        runs_dir, model, where):
    config = make_config(data={"dataset": "diabetes", "batch_size": 32}, model={"name": f"tests.user_parts:{model}"},
                         train={"epochs": 5, "accumulate": 2, "precision": "bf16-mixed"})
    summary, run_dir, _ = run_to_end(config, runs_dir)
    assert summary.status == "failed" and summary.step == 1  # two micro-batches a step: the 3rd forward is step 2
    assert summary.error.startswith(f"out of {where} memory at micro-batch 32 (bf16-mixed, accumulate 2): "
                                    "try data.batch_size = 16 and train.accumulate = 4 (same effective batch 64)")
    assert summary_of(run_dir)["status"] == "failed"
    after, _, _ = run_to_end(make_config(data={"dataset": "diabetes"}, train={"epochs": 1}), runs_dir)
    assert after.status == "completed"


# ------------------------------------------------------------------ divergence
def test_divergence_stops_the_run_and_never_overwrites_the_last_good_checkpoint(runs_dir):
    config = make_config(data={"dataset": "diabetes"}, optimizer={"lr": 1e7},
                         train={"epochs": 100, "checkpoint_every": 5})
    summary, run_dir, _ = run_to_end(config, runs_dir)
    assert summary.status == "diverged", summary
    diverged_at = int(re.search(r"(?:at|by) step (\d+)", summary.error).group(1))
    assert summary.step <= diverged_at + 5, "the run stops within one report (here: one checkpoint) of diverging"
    assert summary.samples_per_s > 0, "a diverged run still reports its speed"
    if (run_dir / "checkpoint.pt").exists():
        state = load_checkpoint(run_dir / "checkpoint.pt")
        assert state["step"] < diverged_at
        assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert all(math.isfinite(loss) for loss in read_curves(run_dir / "metrics.jsonl").losses)


def test_fp16_skipped_steps_are_not_divergence_until_max_skipped_in_row(runs_dir, tmp_path):
    # fp16 with a GradScaler on the CPU (the launcher refuses it; the Runner itself does not check the machine).
    sometimes = make_config(data={"dataset": "diabetes"}, model={"name": "tests.user_parts:sometimes_overflowing_net"},
                            train={"epochs": 3, "precision": "fp16-mixed", "max_skipped_in_row": 2})
    summary, _, _ = run_to_end(sometimes, runs_dir)
    assert summary.status == "completed" and summary.skipped_steps >= 10
    always = make_config(data={"dataset": "diabetes"}, model={"name": "tests.user_parts:always_overflowing_net"},
                         train={"epochs": 100000, "precision": "fp16-mixed", "max_skipped_in_row": 5})
    summary, run_dir, _ = run_to_end(always, tmp_path / "always")
    assert summary.status == "diverged" and summary.step < summary.total_steps
    assert "train.max_skipped_in_row = 5" in summary.error
    assert int(summary.error.split("skipped ")[1].split(" steps in a row")[0]) >= 5
    assert not (run_dir / "checkpoint.pt").exists()


# ------------------------------------------------------------------ a resume that fails keeps the record
def stopped_run(runs_dir: Path, model: dict | None = None, **train) -> tuple[Path, dict]:
    config = make_config(data={"dataset": "diabetes"}, model=model or {},
                         train={"epochs": 100000, "checkpoint_every": 50, **train})
    runner = Runner(config, RunStore(runs_dir))
    run_dir = runner.start()
    summary = stop_after_progress(runner)
    assert summary.status == "stopped" and summary.step > 0
    return run_dir, summary_of(run_dir)


def test_a_resume_that_fails_before_training_keeps_the_runs_record_and_says_why(runs_dir):
    run_dir, before = stopped_run(runs_dir)
    good = load_checkpoint(run_dir / "checkpoint.pt")
    total = before["total_steps"]
    cases = [({**good, "step": -5}, "step -5 is outside this run's plan of 0..%d steps" % total),
             ({**good, "step": 10**6 * total}, "is outside this run's plan"),
             ({**good, "step": good["step"] + 1}, "steps per epoch; the checkpoint does not belong to it"),
             (None, "checkpoint.pt")]
    for state, message in cases:
        if state is None:
            (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
        else:
            save_checkpoint(run_dir / "checkpoint.pt", state)
        runner = resume_runner(run_dir)
        runner.start()
        attempt = runner.wait(120)
        assert attempt.status == "failed" and attempt.error.startswith("resume failed: ") and message in attempt.error
        assert attempt.step == before["step"]
        after = summary_of(run_dir)
        assert after["status"] == "stopped" and after["step"] == before["step"], "the run's record is kept"
        assert message in after["error"] and after["error"].count("resume failed") == 1
        assert {k: v for k, v in after.items() if k not in ("error", "pid")} == \
            {k: v for k, v in before.items() if k not in ("error", "pid")}
    save_checkpoint(run_dir / "checkpoint.pt", good)
    final = stop_after_progress(_started(resume_runner(run_dir)), beyond=good["step"])
    assert final.status == "stopped"
    assert_every_step_once(run_dir, final.step)


def test_a_failed_resume_in_a_worker_process_keeps_the_runs_record_too(runs_dir):
    run_dir, before = stopped_run(runs_dir)
    save_checkpoint(run_dir / "checkpoint.pt", {**load_checkpoint(run_dir / "checkpoint.pt"), "step": -5})
    runner = resume_runner(run_dir, isolated=True)  # as the app resumes: one worker process
    assert type(runner).__name__ == "DetachedRunner"
    runner.start()
    attempt = runner.wait(120)
    assert attempt.status == "failed" and attempt.error.startswith("resume failed: ") and "step -5" in attempt.error
    after = summary_of(run_dir)
    assert (after["status"], after["step"]) == ("stopped", before["step"]) and "step -5" in after["error"]


def _started(runner: Runner) -> Runner:
    runner.start()
    return runner


# ------------------------------------------------------------------ disk full
def file_size_limit(limit: int):
    """A preexec_fn: the child may write no file larger than `limit` bytes (ulimit -f), and gets EFBIG
    instead of being killed by SIGXFSZ: a disk that fills up under one run's files."""
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def run_limited(args: list[str], limit: int, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_trainer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=file_size_limit(limit))


def test_a_full_disk_while_writing_metrics_ends_failed_naming_the_file_and_loses_nothing(tmp_path):
    result = run_limited(["run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.epochs=100000",
                          "--set", "train.checkpoint_every=50"], limit=64 * 1024)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (run_dir,) = tmp_path.iterdir()
    summary = summary_of(run_dir)
    assert summary["status"] == "failed" and "File too large" in summary["error"]
    assert str(run_dir / "metrics.jsonl") in summary["error"] or str(run_dir / "losses.bin") in summary["error"]
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert 0 < state["step"] <= summary["step"] and state["step"] % 50 == 0
    resumed = _started(resume_runner(run_dir))
    final = stop_after_progress(resumed, beyond=summary["step"])
    assert final.status == "stopped"
    assert_every_step_once(run_dir, final.step)


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_last_good_one_and_no_partial_file(tmp_path):
    # A model whose checkpoint (about 830 kB with Adam's state) cannot be written under a 400 kB limit.
    run_dir, _ = stopped_run(tmp_path, model={"hidden": [256, 256]}, checkpoint_every=20)
    good = load_checkpoint(run_dir / "checkpoint.pt")
    assert (run_dir / "checkpoint.pt").stat().st_size > 400 * 1024
    result = run_limited(["resume", str(run_dir), "--headless"], limit=400 * 1024)
    assert result.returncode == 1, result.stdout + result.stderr
    summary = summary_of(run_dir)
    assert summary["status"] == "failed" and "checkpoint not written" in summary["error"]
    assert str(run_dir / "checkpoint.pt.tmp") in summary["error"]
    assert not (run_dir / "checkpoint.pt.tmp").exists(), "no partial checkpoint is left to look valid"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == good["step"], "the last good checkpoint stays"
    final = stop_after_progress(_started(resume_runner(run_dir)), beyond=summary["step"])
    assert final.status == "stopped"
    assert_every_step_once(run_dir, final.step)


# ------------------------------------------------------------------ kill -9 at any moment
def last_step(path: Path) -> int:
    """The step of the last complete line of metrics.jsonl (0 when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read()
    except OSError:
        return 0
    lines = tail[:tail.rfind(b"\n") + 1].splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return 0


# Starts training processes quickly on a busy machine: torch and the package are imported once, then each
# training process is a fork running the real worker (`tui_trainer.runs.worker`), killed for real.
FORK_SERVER = """
import os, sys
import torch, torch._dynamo, sklearn.datasets, sklearn.model_selection, sklearn.preprocessing
from tui_trainer.runs import worker
import tui_trainer.runs.runner, tui_trainer.training.loop
for line in sys.stdin:
    command, *args = line.split()
    if command == "start":
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = worker.main(args)
            finally:
                os._exit(code)
        print(pid, flush=True)
    elif command == "reap":
        print(os.waitpid(int(args[0]), 0)[1], flush=True)
"""


def test_kill_9_at_random_moments_loses_no_step_and_each_resume_continues_from_the_last_checkpoint(tmp_path):
    config = make_config(name="kill", data={"dataset": "diabetes"}, train={"epochs": 100000, "checkpoint_every": 3})
    run_dir = RunStore(tmp_path).create(config)
    metrics, checkpoint, events = run_dir / "metrics.jsonl", run_dir / "checkpoint.pt", run_dir / "events.jsonl"
    server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    rng = random.Random(13)
    checkpoint_step, kills, during_checkpoint = 0, 0, 0
    try:
        while kills < 22:
            inode = metrics.stat().st_ino if metrics.exists() else None
            server.stdin.write(f"start {run_dir}{' --resume' if kills else ''}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            try:
                # This process's own progress: on resume metrics.jsonl is first cut back to the checkpoint.
                wait_for(lambda: metrics.exists() and metrics.stat().st_ino != inode, 90, "the worker to start")
                wait_for(lambda: last_step(metrics) > checkpoint_step + rng.randint(1, 30), 90, "progress")
                if kills % 3 == 1:  # aim at a checkpoint being written
                    deadline = time.monotonic() + 3
                    while not (run_dir / "checkpoint.pt.tmp").exists() and time.monotonic() < deadline:
                        pass
                    during_checkpoint += (run_dir / "checkpoint.pt.tmp").exists()
                else:
                    time.sleep(rng.random() * 0.2)
            finally:
                os.kill(pid, signal.SIGKILL)
                server.stdin.write(f"reap {pid}\n")
                server.stdin.flush()
                assert int(server.stdout.readline()) == signal.SIGKILL, "the worker was killed, not ended"
            kills += 1
            state = load_checkpoint(checkpoint)  # always loadable: never half-written
            assert state["step"] >= checkpoint_step, "a checkpoint went back in time"
            if kills > 1 and checkpoint_step:
                assert f'"resumed from step {checkpoint_step}"' in events.read_text(), "resume from the last checkpoint"
            checkpoint_step = state["step"]
    finally:
        server.stdin.close()
        server.wait(30)
    resumed = _started(resume_runner(run_dir))
    final = stop_after_progress(resumed, beyond=checkpoint_step)
    assert final.status == "stopped" and final.step > checkpoint_step
    assert_every_step_once(run_dir, final.step)
    print(f"{kills} kills, {during_checkpoint} while a checkpoint was being written, {final.step} steps")


# ------------------------------------------------------------------ a dead worker process
def test_a_killed_worker_process_fails_the_run_and_the_app_side_carries_on(tmp_path):
    runner = create_runner(make_config(data={"dataset": "diabetes"}, train={"epochs": 100000}),
                           RunStore(tmp_path), isolated=True)
    run_dir = runner.start()
    wait_for(lambda: last_step(run_dir / "metrics.jsonl") > 0, 90, "training to start")
    os.kill(runner.process.pid, signal.SIGKILL)
    summary = runner.wait(60)
    assert summary is not None and summary.status == "failed" and "signal 9" in summary.error
    assert summary_of(run_dir)["status"] == "failed"
    assert not runner.is_running() and runner.process.poll() is not None
    after, _, _ = run_to_end(make_config(data={"dataset": "diabetes"}, train={"epochs": 1}), tmp_path / "next")
    assert after.status == "completed"


def test_out_of_memory_in_an_app_launched_worker_process_gives_the_same_message(tmp_path):
    config = make_config(data={"dataset": "diabetes"}, model={"name": "tests.user_parts:host_oom_at_step_3"},
                         train={"epochs": 5})
    runner = create_runner(config, RunStore(tmp_path), isolated=True)
    runner.start()
    summary = runner.wait(120)
    assert summary.status == "failed" and summary.error.startswith("out of host memory at micro-batch 32 (fp32, ")
    assert not runner.is_running() and runner.process.poll() is not None
