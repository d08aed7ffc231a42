"""Runs outlive their terminal: signals stop headless runs cleanly, `--detach`, `stop`, `attach`, the
run's lock, its heartbeat, interrupted runs, and checkpoints by time. Real processes, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import PRESETS, ROOT, cli
from tui_trainer.training.checkpoint import load_checkpoint

LONG = ["--set", "train.epochs=100000"]  # a run an interrupt cannot miss


def wait_for(predicate, what: str, timeout: float = 120.0):
    """Poll `predicate` until it returns something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.1)


def summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def metrics_step(run_dir: Path) -> int:
    from tui_trainer.runs.metrics import last_step

    return last_step(run_dir)


def processes_of(runs_dir: Path) -> list[int]:
    """Live (not zombie) processes whose command line names this runs directory."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if str(runs_dir) in " ".join(process.info["cmdline"] or ()) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process.pid)
    return found


def headless(runs_dir: Path, *extra: str) -> subprocess.Popen:
    """`tui-trainer run cpu-quick --headless` in the foreground of a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui_trainer", "run", "cpu-quick", "--headless", "--runs-dir", str(runs_dir),
         "--progress-every", "0.2", *LONG, *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def only_run(runs_dir: Path) -> Path:
    return wait_for(lambda: next((p for p in runs_dir.iterdir() if p.is_dir()), None) if runs_dir.exists() else None,
                    "the run directory")


def end_at(run_dir: Path, steps: int) -> None:
    """Give a long run a planned end (the constant learning rate makes the weights independent of it)."""
    path = run_dir / "config.toml"
    text, n = re.subn(r"max_steps = \d+", f"max_steps = {steps}", path.read_text())
    assert n == 1
    path.write_text(text)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_headless_run_cleanly_and_resume_reaches_the_same_weights(tmp_path, sig):
    runs_dir = tmp_path / "runs"
    process = headless(runs_dir)
    for line in process.stdout:
        if line.startswith("step "):
            break
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + sig, (out, err)
    assert "Traceback" not in err
    run_dir = only_run(runs_dir)
    stopped = summary(run_dir)
    assert stopped["status"] == "stopped"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == stopped["step"] > 0
    assert metrics_step(run_dir) == stopped["step"], "metrics are flushed up to the checkpoint"
    listed = json.loads(cli("runs", "--json", "--runs-dir", str(runs_dir)).stdout)
    assert listed[0]["status"] == "stopped"

    end = stopped["step"] + 40
    end_at(run_dir, end)
    resumed = cli("resume", run_dir.name, "--runs-dir", str(runs_dir), "--headless", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from step {stopped['step']}" in resumed.stdout
    assert summary(run_dir)["status"] == "completed" and summary(run_dir)["step"] == end

    whole = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path / "whole"), *LONG,
                "--set", f"train.max_steps={end}", timeout=300)
    assert whole.returncode == 0, whole.stderr
    a = load_checkpoint(run_dir / "checkpoint.pt")["model"]
    b = load_checkpoint(only_run(tmp_path / "whole") / "checkpoint.pt")["model"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=0), key


def signalled_twice(runs_dir: Path, sig: int, serving: str) -> tuple[int, str, str]:
    """A headless run sent `sig` once it trains, and again while the first is served (the stop's
    checkpoint takes 3 s to gather); its exit code, stdout and stderr."""
    process = headless(runs_dir, "--set", "model.name=tests.user_parts:slow_to_save")
    for line in process.stdout:
        if line.startswith("step "):
            break
    process.send_signal(sig)
    for line in process.stdout:
        if line.startswith(serving):
            break
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_a_closed_terminal_hanging_up_twice_still_stops_with_a_checkpoint(tmp_path):
    # Closing a terminal can deliver SIGHUP twice (the kernel to the foreground job, the shell to its
    # jobs): the second is no one asking to leave at once, so the run still stops cleanly.
    code, out, err = signalled_twice(tmp_path / "runs", signal.SIGHUP, "SIGHUP: stopping")
    assert code == 129, (out, err)
    assert "leaving now" not in out and "terminate called" not in err and "Traceback" not in err
    run_dir = only_run(tmp_path / "runs")
    assert summary(run_dir)["status"] == "stopped"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == summary(run_dir)["step"] > 0


def test_a_second_ctrl_c_leaves_at_once_saying_what_is_left_to_resume(tmp_path):
    code, out, err = signalled_twice(tmp_path / "runs", signal.SIGINT, "Ctrl-C: stopping")
    assert code == 130, (out, err)
    assert "terminate called" not in err and "Traceback" not in err, "an exit at once, not a crash"
    assert "second Ctrl-C: leaving now (no checkpoint was written yet: this run cannot be resumed)" in out
    assert not (only_run(tmp_path / "runs") / "checkpoint.pt").exists()


def test_the_exit_code_is_the_runs_unless_a_signal_stopped_it():
    from tui_trainer.cli.headless import exit_code

    assert exit_code(0, 0) == 0 and exit_code(1, 0) == 1 and exit_code(130, 0) == 130  # stopped from elsewhere
    assert exit_code(130, signal.SIGTERM) == 143 and exit_code(130, signal.SIGHUP) == 129
    assert exit_code(1, signal.SIGINT) == 1, "a run that failed while stopping exits 1, as the README says"
    assert exit_code(0, signal.SIGINT) == 0, "it completed before the signal could stop it"


def test_detach_returns_at_once_and_stop_stops_the_live_run(tmp_path):
    runs_dir = tmp_path / "runs"
    started = time.monotonic()
    result = cli("run", "cpu-quick", "--detach", "--runs-dir", str(runs_dir), *LONG)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert took < 2.0, f"--detach took {took:.2f}s"
    run_dir = only_run(runs_dir)
    assert f"tui-trainer attach {run_dir.name}" in result.stdout
    assert f"tui-trainer stop {run_dir.name}" in result.stdout
    try:
        wait_for(lambda: metrics_step(run_dir) > 0, "the detached run to train")
        listed = json.loads(cli("runs", "--json", "--runs-dir", str(runs_dir)).stdout)
        assert listed[0]["status"] == "running" and listed[0]["name"] == "cpu-quick"
        stopped = cli("stop", run_dir.name, "--runs-dir", str(runs_dir), timeout=180)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "stopped: cpu-quick at step" in stopped.stdout
        final = summary(run_dir)
        assert final["status"] == "stopped"
        assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == final["step"] > 0
        again = cli("stop", run_dir.name, "--runs-dir", str(runs_dir))
        assert again.returncode == 2 and "not running (status stopped)" in again.stderr
    finally:
        (run_dir / "stop.request").touch()
    wait_for(lambda: not processes_of(runs_dir), "no process of the run left", 60)


def test_a_second_writer_is_refused_naming_the_live_process(tmp_path):
    from tui_trainer.runs import RunBusy
    from tui_trainer.runs.liveness import RunLock, read_heartbeat

    runs_dir = tmp_path / "runs"
    assert cli("run", "cpu-quick", "--detach", "--runs-dir", str(runs_dir), *LONG).returncode == 0
    run_dir = only_run(runs_dir)
    try:
        wait_for(lambda: metrics_step(run_dir) > 0, "the detached run to train")
        owner = read_heartbeat(run_dir).pid
        refused = cli("resume", run_dir.name, "--runs-dir", str(runs_dir), "--headless")
        assert refused.returncode == 2
        assert f"pid {owner}" in refused.stderr and "tui-trainer stop" in refused.stderr
        with pytest.raises(RunBusy, match=f"pid {owner}"):  # the lock itself, whatever asks
            RunLock.acquire(run_dir)
    finally:
        assert cli("stop", run_dir.name, "--runs-dir", str(runs_dir), timeout=180).returncode == 0
    assert summary(run_dir)["status"] == "stopped"


def test_a_killed_run_is_listed_interrupted_at_its_last_step_and_resumes_over_its_stale_lock(tmp_path):
    runs_dir = tmp_path / "runs"
    # checkpoint_minutes = 0.001 (60 ms): checkpoints come by the clock during training, with no step count set
    process = headless(runs_dir, "--set", "train.checkpoint_minutes=0.001")
    run_dir = only_run(runs_dir)

    def checkpoint_events() -> list[int]:
        try:
            lines = (run_dir / "events.jsonl").read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line)["step"] for line in lines if line.startswith('{"type": "CheckpointSaved"')]

    wait_for(lambda: len(checkpoint_events()) >= 2, "checkpoints written by time during training")
    process.kill()  # SIGKILL: no chance to record anything
    process.communicate(timeout=60)
    assert summary(run_dir)["status"] == "running", "the killed process recorded nothing"
    listed = json.loads(cli("runs", "--json", "--runs-dir", str(runs_dir)).stdout)[0]
    assert listed["status"] == "interrupted"
    assert listed["step"] == metrics_step(run_dir) > 0 and listed["total_steps"] == 1_200_000
    assert json.loads((run_dir / "lock").read_text())["pid"] == process.pid  # left behind by the dead process

    checkpointed = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert checkpointed > 0
    end_at(run_dir, metrics_step(run_dir) + 30)
    resumed = cli("resume", run_dir.name, "--runs-dir", str(runs_dir), "--headless", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from step {checkpointed}" in resumed.stdout
    assert summary(run_dir)["status"] == "completed"
    assert json.loads((run_dir / "lock").read_text())["pid"] != process.pid


def test_an_interrupted_run_lists_the_figures_of_its_last_recorded_step_and_dashes_for_what_was_never_measured(
        tmp_path):
    from tui_trainer.runs import read_curves
    from tui_trainer.runs.store import read_record
    from tui_trainer.session import format as fmt
    from tui_trainer.session.format import seconds
    from tui_trainer.ui.widgets.runs_table import RunsTable

    runs_dir = tmp_path / "runs"
    # a: killed (kill -9) before it recorded anything: no checkpoint, a summary that still says running
    process = headless(runs_dir)
    never = only_run(runs_dir)
    wait_for(lambda: metrics_step(never) > 30, "the first run to train past a few evaluations")
    process.kill()
    process.communicate(timeout=60)
    assert summary(never)["samples_per_s"] == 0 and not (never / "checkpoint.pt").exists()

    # b: stopped (its summary has that stop's figures), resumed, then killed further on (a second Ctrl-C)
    process = headless(tmp_path / "second")
    for line in process.stdout:
        if line.startswith("step "):
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    (resumed,) = (tmp_path / "second").iterdir()
    resumed = resumed.rename(runs_dir / resumed.name)
    stop = summary(resumed)
    assert stop["status"] == "stopped" and stop["samples_per_s"] > 0
    process = subprocess.Popen([sys.executable, "-m", "tui_trainer", "resume", resumed.name, "--headless",
                                "--runs-dir", str(runs_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for(lambda: metrics_step(resumed) > stop["step"] + 30, "the resumed run to train past its stop")
    process.kill()
    process.communicate(timeout=60)

    listed = {r["run_id"]: r for r in json.loads(cli("runs", "--json", "--runs-dir", str(runs_dir)).stdout)}
    table = {line.split()[0]: line.split() for line in cli("runs", "--runs-dir", str(runs_dir)).stdout.splitlines()}
    csv_rows = {line.split(",")[0]: line.split(",") for line in
                cli("runs", "--csv", "--runs-dir", str(runs_dir)).stdout.splitlines()}
    header = csv_rows.pop("run_id")
    for run_dir in (never, resumed):
        row, curves = listed[run_dir.name], read_curves(run_dir / "metrics.jsonl")
        # one source, metrics.jsonl: its last step (an evaluation's line may come after the last logged
        # losses), the train loss of its last logged steps, its last evaluation and time mark
        assert row["status"] == "interrupted" and row["step"] == metrics_step(run_dir) >= curves.steps[-1] > 0
        recent = curves.losses[-12:]  # cpu-quick's window: the last 12 logged steps, or as many as were logged
        assert row["final_loss"] == pytest.approx(sum(recent) / len(recent))
        assert row["final_val_loss"] == curves.val_losses[-1]
        assert row["wall_s"] == curves.times[-1] > 0  # the run's clock at that step: it did train
        assert row["samples_per_s"] is None, "the run's samples/s over its training was never measured"
        assert table[run_dir.name][-2:] == ["-", seconds(curves.times[-1])]
        assert csv_rows[run_dir.name][header.index("samples_per_s")] == ""
        cells = [str(cell) for cell in RunsTable().cells(read_record(run_dir))]  # the app's Runs table
        assert cells[3:7] == [f"{row['step']}/1200000", fmt.number(row["final_loss"]), "-", seconds(row["wall_s"])]
    assert listed[resumed.name]["final_loss"] != stop["final_loss"], "not the earlier stop's figure"


def test_stop_reaches_every_rank_of_a_detached_ddp_run_and_leaves_no_process(tmp_path):
    runs_dir = tmp_path / "runs"
    result = cli("run", "cpu-quick", "--detach", "--runs-dir", str(runs_dir), *LONG, "--set", "strategy.name=ddp",
                 "--set", "strategy.devices=2", "--set", "strategy.accelerator=cpu")
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs_dir)
    try:
        wait_for(lambda: metrics_step(run_dir) > 0, "the ddp run to train", 180)
    finally:
        stopped = cli("stop", run_dir.name, "--runs-dir", str(runs_dir), timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    final = summary(run_dir)
    assert final["status"] == "stopped"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == final["step"] > 0
    states = {json.loads(p.read_text())["state"] for p in (run_dir / "ranks").glob("rank-*.json")}
    assert states == {"stopped"}, "every rank stopped at the same step"
    wait_for(lambda: not processes_of(runs_dir), "no worker process left", 60)


def test_the_app_leaves_no_zombie_process_behind_a_finished_run(tmp_path):
    import psutil

    from tests.conftest import make_config
    from tui_trainer.runs import RunStore
    from tui_trainer.session.live_run import LiveRun

    store = RunStore(tmp_path / "runs")
    pids = []
    for _ in range(2):  # as the app starts runs: a detached process each, followed and pumped, never waited on
        run = LiveRun.new(make_config(data={"dataset": "diabetes"}, train={"epochs": 1}), store)
        run.start()
        pids.append(run.runner.process.pid)
        wait_for(lambda: not run.pump() and not run.active, "the run to end", 120)
        assert run.state.status == "completed"

    def collected() -> bool:  # a reaped child is no child at all; an unreaped one stays <defunct> forever
        return not {child.pid for child in psutil.Process().children()} & set(pids)

    wait_for(collected, "the runs' ended processes to be collected, not left as zombies", 60)
    assert not [child for child in psutil.Process().children() if child.status() == psutil.STATUS_ZOMBIE]


async def test_attach_shows_a_headless_run_started_elsewhere_live_in_runs_and_x_stops_it(tmp_path):
    from tests.test_ui import CPU_MACHINE, no_gpu_sampler
    from tests.test_ui import wait_for as wait_in_app
    from tui_trainer.ui.app import TrainerApp
    from tui_trainer.ui.screens.run_dashboard import RunDashboard
    from tui_trainer.ui.screens.runs import RunsScreen
    from tui_trainer.ui.widgets.runs_table import RunsTable

    runs_dir = tmp_path / "runs"
    process = headless(runs_dir)  # another process, in the foreground of its own terminal
    run_dir = only_run(runs_dir)
    try:
        wait_for(lambda: metrics_step(run_dir) > 0, "the headless run to train")
        app = TrainerApp(PRESETS, runs_dir, machine=CPU_MACHINE, sampler=no_gpu_sampler())
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("r")
            await wait_in_app(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs")
            table = app.screen.query_one(RunsTable)
            assert str(table.get_cell(run_dir.name, "status")) == "running"
            seen = {str(table.get_cell(run_dir.name, "steps"))}
            await wait_in_app(pilot, lambda: seen.add(str(table.get_cell(run_dir.name, "steps"))) or len(seen) >= 3,
                              "the live row's step to move")
            await pilot.press("enter")  # its live dashboard, attached
            await wait_in_app(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
            live = app.screen.live
            await wait_in_app(pilot, lambda: live.state.step > 0, "the attached run's progress")
            first = live.state.step
            await wait_in_app(pilot, lambda: live.state.step > first, "the step advancing")
            assert live.state.train_loss.count >= first // 2, "the earlier curve, read from its metrics"
            assert "running" in str(app.screen.query_one("#progress").render())
            await pilot.press("x")
            await wait_in_app(pilot, lambda: live.state.status == "stopped", "stopped", 120)
            assert "stopped" in str(app.screen.query_one("#progress").render())
            await pilot.press("q")  # nothing training any more: quits at once
        assert app.return_code == 0
    finally:
        (run_dir / "stop.request").touch()
        out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err  # stopped, by a request from another process
    assert summary(run_dir)["status"] == "stopped"


async def test_quit_with_l_leaves_the_run_training_and_stop_on_exit_asks_y_n_instead(tmp_path):
    from tests.test_ui import CPU_MACHINE, no_gpu_sampler
    from tests.test_ui import wait_for as wait_in_app
    from tui_trainer.runs import live_owner
    from tui_trainer.ui.app import TrainerApp
    from tui_trainer.ui.screens.confirm_quit import ConfirmQuitScreen
    from tui_trainer.ui.screens.run_dashboard import RunDashboard

    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "long.toml").write_text('description = "long"\n[train]\nepochs = 100000\n')
    runs_dir = tmp_path / "runs"
    app = TrainerApp(presets, runs_dir, machine=CPU_MACHINE, sampler=no_gpu_sampler())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_in_app(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        await wait_in_app(pilot, lambda: live.state.step > 0, "training")
        await pilot.press("q")
        await wait_in_app(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the question")
        await pilot.press("l")
        await wait_in_app(pilot, lambda: app.return_code is not None, "the app to exit")
    run_dir = live.run_dir
    try:
        at_exit = metrics_step(run_dir)
        wait_for(lambda: metrics_step(run_dir) > at_exit + 10, "the run to keep training after the app left")
        assert live_owner(run_dir) is not None and summary(run_dir)["status"] == "running"

        # --stop-on-exit: the old question; y stops the run (an attached one too) cleanly, then quits
        app = TrainerApp(presets, runs_dir, machine=CPU_MACHINE, sampler=no_gpu_sampler(), attach=run_dir,
                         stop_on_exit=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_in_app(pilot, lambda: isinstance(app.screen, RunDashboard), "the attached dashboard")
            attached = app.screen.live
            await wait_in_app(pilot, lambda: attached.state.step > at_exit, "the attached run's progress")
            await pilot.press("q")
            await wait_in_app(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the question")
            assert "y/n" in str(app.screen.query_one("#question").render())
            await pilot.press("y")
            await wait_in_app(pilot, lambda: app.return_code is not None, "the app to exit", 120)
        assert summary(run_dir)["status"] == "stopped"
    finally:
        (run_dir / "stop.request").touch()
    wait_for(lambda: not processes_of(runs_dir), "no process of the run left", 60)


def test_a_heartbeat_from_another_host_is_judged_by_its_age_and_a_local_one_by_its_process(tmp_path):
    from tui_trainer.runs.liveness import HEARTBEAT_FILE, STALE_SECONDS, live_owner, process_start_time, run_status

    def beat(host: str, pid: int, started: float, age: float) -> None:
        (tmp_path / HEARTBEAT_FILE).write_text(json.dumps(
            {"host": host, "pid": pid, "started": started, "beat": time.time() - age, "step": 7, "total_steps": 9}))

    beat("another-host.example", 1, 0.0, 1.0)  # pid 1 there is not ours to ask about
    assert live_owner(tmp_path) is not None and run_status(tmp_path, "running") == "running"
    beat("another-host.example", 1, 0.0, STALE_SECONDS + 5)
    assert live_owner(tmp_path) is None and run_status(tmp_path, "running") == "interrupted"

    from tui_trainer.runs.liveness import HOST

    me = os.getpid()
    beat(HOST, me, process_start_time(me), 3600)  # an old beat, but its process lives: it is running
    assert live_owner(tmp_path).step == 7
    beat(HOST, me, process_start_time(me) - 100, 0)  # a fresh beat from a pid now reused by another process
    assert live_owner(tmp_path) is None
    assert run_status(tmp_path, "stopped") == "stopped"
