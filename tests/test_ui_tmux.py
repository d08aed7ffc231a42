"""The real `tui-trainer` command in a real terminal (tmux, 80x24), driven by keys as over SSH.

Each test runs its own tmux server (`tmux -L NAME`), killed in a `finally`, so nothing outlives it.
tmux must be installed (.ci/run installs it); without it the tests fail and say so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

BARS = "▁▂▃▄▅▆▇█"
STEP = re.compile(r"step ([\d,]+)/1,200")


def tmux_binary() -> str:
    """tmux's path; the test fails, saying how to install it, where it is missing (.ci/run installs it)."""
    found = shutil.which("tmux")
    if not found:
        pytest.fail("tmux is not installed: these tests drive the real app in tmux "
                    "(`apt-get install tmux`, as .ci/run does, or `brew install tmux`)", pytrace=False)
    return found


class Terminal:
    """A tmux server of our own with one 80x24 session running a command."""

    def __init__(self, name: str, command: str, width: int = 80, height: int = 24):
        self.tmux = tmux_binary()
        self.name = name
        self.started = time.monotonic()
        self._run("new-session", "-d", "-x", str(width), "-y", str(height), "-s", name, command)
        self.socket = self._run("display-message", "-p", "#{socket_path}").strip()

    def _run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.name, *args], capture_output=True, text=True,
                              timeout=10).stdout

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", self.name, *keys)

    def wait_for(self, condition, what: str, timeout: float = 120.0, every: float = 0.02) -> str:
        """Poll the screen until `condition(text)` holds; return that screen."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")
            time.sleep(every)

    def close(self) -> None:
        """Kill our tmux server (and so the app, with SIGHUP) and remove its socket file."""
        subprocess.run([self.tmux, "-L", self.name, "kill-server"], capture_output=True, timeout=10)
        if self.socket:
            Path(self.socket).unlink(missing_ok=True)


def app_command(runs_dir: Path, exit_file: Path, env: str) -> str:
    """The shell line a user types (plus recording the exit code)."""
    binary = shutil.which("tui-trainer")
    launcher = binary if binary else f"{sys.executable} -m tui_trainer"
    return f"cd {ROOT} && env LANG=C.UTF-8 {env} {launcher} --runs-dir {runs_dir}; echo $? > {exit_file}"


def no_process_left(runs_dir: Path, timeout: float = 60.0) -> bool:
    """Whether every process started for this runs directory is gone."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if str(runs_dir) in " ".join(p.info["cmdline"] or ()):
                    alive.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        if not alive:
            return True
        time.sleep(0.1)
    return False


def launch_screen_shown(text: str) -> bool:
    return "cpu-quick" in text and ("no NVIDIA GPU detected" in text or "GPU 0" in text) and "Quit" in text


def test_default_preset_in_tmux_80x24_shows_sparklines_and_quits(tmp_path):
    runs_dir, exit_file = tmp_path / "runs", tmp_path / "exit-code"
    term = Terminal(f"tui-trainer-test-{os.getpid()}",
                    app_command(runs_dir, exit_file, "TERM=xterm-256color"))
    try:
        term.wait_for(launch_screen_shown, "the launch screen")
        first_frame = time.monotonic() - term.started
        print(f"launch screen visible {first_frame:.2f}s after the command started")

        term.keys("Enter")  # the default preset is highlighted: enter alone starts it
        steps: list[int] = []

        def sparkline_and_growing_steps(text: str) -> bool:
            match = STEP.search(text)
            if match:
                step = int(match.group(1).replace(",", ""))
                if not steps or step != steps[-1]:
                    steps.append(step)
            # The default job may train in under a second: then the finished run's screen is what shows.
            growing = len(steps) >= 3 and steps[-1] > steps[0]
            finished = "completed" in text and steps and steps[-1] == 1200
            return any(bar in text for bar in BARS) and (growing or finished)

        screen = term.wait_for(sparkline_and_growing_steps, "sparkline characters and a growing step count "
                                                           "(or the finished run)")
        assert "train loss" in screen and "CPU" in screen
        assert steps == sorted(steps), steps

        term.keys("q")
        text = term.wait_for(lambda t: "quit and" in t or exit_file.exists(), "the quit question or the exit")
        if "quit and" in text and not exit_file.exists():  # the run was still going: s stops it cleanly
            term.keys("s")
        deadline = time.monotonic() + 60
        while not exit_file.exists() or not exit_file.read_text().strip():
            assert time.monotonic() < deadline, "the app did not exit"
            time.sleep(0.05)
        assert exit_file.read_text().strip() == "0"
    finally:
        term.close()
    assert no_process_left(runs_dir), "a process of the test outlived it"
    run_dirs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] in ("completed", "stopped"), summary
    assert summary["step"] >= steps[-1] - 1
    assert (run_dir / "checkpoint.pt").exists() and (run_dir / "config.toml").exists()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows and max(r["step"] for r in rows) == summary["step"]


@pytest.mark.parametrize("env", ["TERM=linux NO_COLOR=1", "TERM=linux"])
def test_launch_screen_in_a_16_colour_terminal_and_without_colour(tmp_path, env):
    runs_dir, exit_file = tmp_path / "runs", tmp_path / "exit-code"
    term = Terminal(f"tui-trainer-test-{os.getpid()}-{len(env)}", app_command(runs_dir, exit_file, env))
    try:
        screen = term.wait_for(launch_screen_shown, f"the launch screen with {env}")
        assert "effective batch 32" in screen
        term.keys("?")
        term.wait_for(lambda t: "tui-trainer keys" in t and "Everywhere" in t, "the help")
        term.keys("Escape")
        term.wait_for(lambda t: "tui-trainer keys" not in t and "cpu-quick" in t, "the help closed")
        term.keys("q")
        deadline = time.monotonic() + 30
        while not exit_file.exists() or not exit_file.read_text().strip():
            assert time.monotonic() < deadline, "the app did not exit"
            time.sleep(0.05)
        assert exit_file.read_text().strip() == "0"
    finally:
        term.close()
    assert no_process_left(runs_dir)


LONG_PRESETS = {
    "cpu": 'description = "cpu-quick, but long"\n[train]\nmax_steps = 1000000\n',
    "ddp": 'description = "ddp on 2 CPU processes, long"\n[train]\nmax_steps = 1000000\n'
           '[strategy]\nname = "ddp"\ndevices = 2\naccelerator = "cpu"\n',
}


def last_metrics_step(run_dir: Path) -> int:
    from tui_trainer.runs.metrics import last_step

    return last_step(run_dir)


@pytest.mark.parametrize("kind", ["cpu", "ddp"])
def test_a_run_outlives_its_terminal_and_a_new_session_attaches_and_stops_it(tmp_path, kind):
    """Start a run in the app, lose the terminal (SIGHUP, as when SSH drops): the run keeps training. A new
    terminal's `tui-trainer` lists it live; enter opens its dashboard, x stops it; resume finishes it."""
    runs_dir, exit_file, presets = tmp_path / "runs", tmp_path / "exit-code", tmp_path / "presets"
    presets.mkdir()
    (presets / "long.toml").write_text(LONG_PRESETS[kind])
    command = app_command(runs_dir, exit_file, "TERM=xterm-256color").replace(
        f"--runs-dir {runs_dir}", f"--runs-dir {runs_dir} --presets-dir {presets}")
    term = Terminal(f"tui-trainer-test-{os.getpid()}-hup-{kind}", command)
    try:
        term.wait_for(lambda t: "long" in t and "Quit" in t, "the launch screen")
        term.keys("Enter")
        term.wait_for(lambda t: re.search(r"step [1-9][\d,]*/1,000,000", t) is not None, "training", 180)
    finally:
        term.close()  # the terminal goes away under the running app
    run_dir = next(runs_dir.iterdir())
    try:
        before = last_metrics_step(run_dir)
        deadline = time.monotonic() + 120
        while last_metrics_step(run_dir) <= before + 10:  # it keeps training, with no terminal
            assert time.monotonic() < deadline, "the run stopped training when its terminal went away"
            time.sleep(0.2)
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"

        exit_file = tmp_path / "exit-code-2"
        again = Terminal(f"tui-trainer-test-{os.getpid()}-again-{kind}", command.replace("exit-code", "exit-code-2"))
        try:
            again.wait_for(lambda t: "long" in t and "Quit" in t, "the launch screen")
            again.keys("r")
            again.wait_for(lambda t: run_dir.name[:20] in t and "running" in t, "the run live in Runs")
            again.keys("Enter")
            again.wait_for(lambda t: re.search(r"running\s+step [1-9][\d,]*/1,000,000", t) is not None,
                           "its live dashboard")
            again.keys("x")
            again.wait_for(lambda t: re.search(r"stopped\s+step [1-9]", t) is not None, "stopped", 120)
            again.keys("q")
            deadline = time.monotonic() + 30
            while not exit_file.exists() or not exit_file.read_text().strip():
                assert time.monotonic() < deadline, "the app did not exit"
                time.sleep(0.05)
        finally:
            again.close()
    finally:
        (run_dir / "stop.request").touch()  # whatever happened above, the run ends with the test
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped", summary
    assert (run_dir / "checkpoint.pt").exists()
    assert no_process_left(runs_dir), "a worker process outlived the stop"

    config = run_dir / "config.toml"  # a planned end in reach, so that resume completes it
    config.write_text(re.sub(r"max_steps = \d+", f"max_steps = {summary['step'] + 30}", config.read_text()))
    resumed = subprocess.run([sys.executable, "-m", "tui_trainer", "resume", str(run_dir), "--headless"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert no_process_left(runs_dir)


def test_attach_in_a_terminal_opens_the_only_live_run_and_x_stops_it(tmp_path):
    """`tui-trainer run --detach`, then `tui-trainer attach` in another terminal: the live dashboard; x stops."""
    runs_dir, exit_file = tmp_path / "runs", tmp_path / "exit-code"
    started = subprocess.run([sys.executable, "-m", "tui_trainer", "run", "cpu-quick", "--detach", "--runs-dir",
                              str(runs_dir), "--set", "train.epochs=100000"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    run_dir = next(runs_dir.iterdir())
    command = app_command(runs_dir, exit_file, "TERM=xterm-256color").replace(
        f"--runs-dir {runs_dir}", f"attach --runs-dir {runs_dir}")
    term = Terminal(f"tui-trainer-test-{os.getpid()}-attach", command)
    try:
        term.wait_for(lambda t: re.search(r"running\s+step [1-9][\d,]*/1,200,000", t) is not None,
                      "the live dashboard of the detached run", 120)
        assert run_dir.name in term.screen()
        term.keys("x")
        term.wait_for(lambda t: re.search(r"stopped\s+step [1-9]", t) is not None, "stopped", 120)
        term.keys("q")
        deadline = time.monotonic() + 30
        while not exit_file.exists() or not exit_file.read_text().strip():
            assert time.monotonic() < deadline, "the app did not exit"
            time.sleep(0.05)
        assert exit_file.read_text().strip() == "0"
    finally:
        term.close()
        (run_dir / "stop.request").touch()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
    assert no_process_left(runs_dir)
