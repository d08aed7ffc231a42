"""The app's cost: throughput with the app attached vs headless, `--help`, and the first frame."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH_DIR, ROOT, Pty, Section, alternating, get_worker, release, fmt, median, quiet_call, quiet_run
from jobs import Job


def app_available() -> str | None:
    """None when the app can be imported, else why not (for "not available yet: ...")."""
    out = subprocess.run([sys.executable, "-c", "from tui_trainer.ui.app import TrainerApp, run_app"],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode == 0:
        return None
    lines = [l for l in out.stderr.strip().splitlines() if l.strip()]
    return f"tui_trainer.ui.app does not import ({lines[-1] if lines else 'exit ' + str(out.returncode)})"


def tui_command() -> list[str]:
    """How a user starts tui-trainer: the console script when installed, else `python -m tui_trainer`."""
    script = shutil.which("tui-trainer")
    return [script] if script else [sys.executable, "-m", "tui_trainer"]


# ------------------------------------------------------------------------------------------ UI overhead
def ui_overhead(jobs: list[Job], repeats: int | None, log, pty: bool = True, quick: bool = False) -> Section:
    """Each job's run with the app and without; `repeats` (else each job's own) alternating pairs."""
    sec = Section("ui", "UI overhead: the app attached vs headless (the run's own samples/s)",
                  ["job", "how", "headless samples/s", "app samples/s", "app / headless", "frames/s drawn"])
    why = app_available()
    if why:
        sec.status, sec.notes = "not available yet", [why]
        return sec
    for job in jobs:
        figures = _in_process(job, repeats or job.repeats, log, quick)
        sec.data[f"{job.key}-in-process"] = figures
        sec.rows.append([job.title, "in-process: 10 Hz drain vs App.run_test()", fmt(figures.get("drain")),
                         fmt(figures.get("app")), fmt(figures.get("ratio"), ".3f"),
                         fmt(figures.get("frames_per_s"), ".1f")])
        if pty:
            figures = _terminal(job, repeats or job.repeats, log)
            sec.data[f"{job.key}-terminal"] = figures
            sec.rows.append([job.title, "terminal: `run --headless` vs the app in a pty", fmt(figures.get("drain")),
                             fmt(figures.get("app")), fmt(figures.get("ratio"), ".3f"),
                             fmt(figures.get("frames_per_s"), ".1f")])
    sec.notes += [
        "in-process (not judged; not how the app runs): the same Runner thread in one process each way, drained "
        "at 10 Hz by an otherwise idle main thread, or followed by the Textual app under App.run_test() "
        "(headless: the app composes each frame but writes it nowhere); samples/s from RunStarted to "
        "RunFinished. It shows what drawing costs a loop that shares the app's GIL, which is why the app "
        "trains in a worker process",
        "terminal: the real command, `tui-trainer run PRESET --headless` against `tui-trainer run PRESET` with "
        "the app in a 100x32 pseudo-terminal (frames counted from the synchronized-output sequences Textual "
        "writes); samples/s from the run's summary.json. The targets are judged on these rows",
        "median of " + ", ".join(f"{j.repeats if not repeats else repeats} ({j.key})" for j in jobs) +
        " alternating repeats; ratio = median of the per-repeat ratios (every pair is in the JSON: a compute-"
        "bound run that uses both cores of this machine swings by +-15% between identical repeats)",
    ]
    return sec


def _ratio_of_pairs(a: list[float], b: list[float]) -> float | None:
    pairs = [x / y for x, y in zip(a, b) if x and y]
    return median(pairs)


def _in_process(job: Job, repeats: int, log, quick: bool = False) -> dict:
    workers = {"drain": get_worker("ui-drain"), "app": get_worker("ui-app")}
    rates: dict[str, list[float]] = {"drain": [], "app": []}
    frames = []
    errors = {}
    try:
        for r in range(repeats):
            for mode in alternating(["drain", "app"], r):
                out = quiet_call(workers[mode], dict(op="ui", mode=mode, job=job.as_json(), warmup=r == 0 and not quick,
                                                     settle_s=0.5 if quick else 1.5), log)
                if "error" in out:
                    errors[mode] = out["error"]
                    log(f"  ui {mode}: error: {out['error']}")
                    continue
                rates[mode].append(out["samples"] / out["seconds"])
                if mode == "app" and out.get("frames_per_s") is not None:
                    frames.append(out["frames_per_s"])
                log(f"  ui in-process {job.key} {mode:<5} {rates[mode][-1]:>10,.0f} samples/s  "
                    f"(other load {out['busy']:.0%})")
    finally:
        for w in workers.values():
            release(w)
    return {"drain": median(rates["drain"]), "app": median(rates["app"]),
            "ratio": _ratio_of_pairs(rates["app"], rates["drain"]) if len(rates["app"]) == len(rates["drain"])
            else None, "frames_per_s": median(frames), "all": rates, "errors": errors}


def _cli_args(job: Job, runs_dir: Path) -> list[str]:
    args = ["run", job.preset, "--runs-dir", str(runs_dir)]
    for o in job.overrides:
        args += ["--set", o]
    return args


def _summary(runs_dir: Path) -> dict:
    found = sorted(runs_dir.glob("*/summary.json"))
    if not found:
        return {}
    try:
        return json.loads(found[-1].read_text())
    except ValueError:
        return {}


def headless_run(job: Job, runs_dir: Path, timeout: float = 600) -> dict:
    """`tui-trainer run PRESET --headless`; the run's summary figures."""
    started = time.perf_counter()
    out = subprocess.run([*tui_command(), *_cli_args(job, runs_dir), "--headless"], capture_output=True, text=True,
                         cwd=ROOT, timeout=timeout)
    summary = _summary(runs_dir)
    if out.returncode != 0 or summary.get("status") != "completed":
        lines = [l for l in (out.stderr + out.stdout).strip().splitlines() if l.strip()]
        return {"error": summary.get("error") or (lines[-1] if lines else f"exit {out.returncode}")}
    return {"samples_per_s": summary["samples_per_s"], "wall_s": time.perf_counter() - started,
            "summary": summary}


def app_run(job: Job, runs_dir: Path, timeout: float = 600) -> dict:
    """`tui-trainer run PRESET` with the app in a pty: wait for the run to end, press q, read the summary."""
    term = Pty([*tui_command(), *_cli_args(job, runs_dir)])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = _summary(runs_dir).get("status")
            if status not in (None, "running"):
                break
            if term.proc.poll() is not None:
                break
            time.sleep(0.2)
        frames = term.frames
        time.sleep(1.0)  # the app reads the run's last events (a q before that asks "stop the run?")
        term.send("q")
        if term.wait(5) is None:
            term.send("y")  # the quit question, if it came
            term.wait(10)
    finally:
        term.close()
    summary = _summary(runs_dir)
    if summary.get("status") != "completed":
        return {"error": summary.get("error") or f"the app run did not complete: {term.screen_text()}"}
    wall = summary.get("wall_s") or 0
    return {"samples_per_s": summary["samples_per_s"], "frames": frames,
            "frames_per_s": frames / wall if wall else None, "summary": summary}


def _terminal(job: Job, repeats: int, log) -> dict:
    rates: dict[str, list[float]] = {"drain": [], "app": []}
    frames = []
    errors = {}
    scratch = Path(tempfile.mkdtemp(prefix="tui-bench-ui-"))
    try:
        for r in range(repeats):
            for mode in alternating(["drain", "app"], r):
                runs_dir = scratch / f"{mode}-{r}"
                fn = (lambda: headless_run(job, runs_dir)) if mode == "drain" else (lambda: app_run(job, runs_dir))

                def fresh(fn=fn, runs_dir=runs_dir):
                    shutil.rmtree(runs_dir, ignore_errors=True)
                    return fn()

                out = quiet_run(fresh, log)
                if "error" in out:
                    errors[mode] = out["error"]
                    log(f"  ui terminal {mode}: error: {out['error']}")
                    continue
                rates[mode].append(out["samples_per_s"])
                if out.get("frames_per_s") is not None:
                    frames.append(out["frames_per_s"])
                log(f"  ui terminal {job.key} {mode:<5} {out['samples_per_s']:>10,.0f} samples/s  "
                    f"(other load {out['busy']:.0%})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"drain": median(rates["drain"]), "app": median(rates["app"]),
            "ratio": _ratio_of_pairs(rates["app"], rates["drain"]) if len(rates["app"]) == len(rates["drain"])
            else None, "frames_per_s": median(frames), "all": rates, "errors": errors}


# --------------------------------------------------------------------------------------------- start-up
def startup(repeats: int, log) -> Section:
    sec = Section("startup", "Start-up", ["what", "median s", "all s", "notes"])
    help_times = []
    subprocess.run([*tui_command(), "--help"], capture_output=True, cwd=ROOT)  # warm the file cache
    for _ in range(repeats):
        out = quiet_run(lambda: timed_command([*tui_command(), "--help"]), log)
        help_times.append(out["seconds"])
    sec.rows.append(["`tui-trainer --help`", fmt(median(help_times), ".3f"),
                     " ".join(f"{t:.3f}" for t in help_times), "whole process, interpreter start included"])
    sec.data["help_s"] = median(help_times)
    sec.data["help_all"] = help_times
    why = app_available()
    if why:
        sec.rows.append(["first frame of the app", "-", "-", f"not available yet: {why}"])
        sec.data["first_frame"] = f"not available yet: {why}"
        return sec
    frames, torch_loaded, errors = [], [], []
    for i in range(repeats + 1):
        out = quiet_run(first_frame, log)
        if "error" in out:
            errors.append(out["error"])
            continue
        if i:  # the first launch warms the file cache
            frames.append(out["first_frame_s"])
            torch_loaded.append(out["torch_loaded_at_first_frame"])
    sec.data["first_frame_s"] = median(frames)
    sec.data["first_frame_all"] = frames
    sec.data["torch_loaded_at_first_frame"] = any(torch_loaded) if torch_loaded else None
    note = ("torch not yet imported at the first frame" if torch_loaded and not any(torch_loaded)
            else "torch WAS imported before the first frame" if torch_loaded else f"error: {errors[:1]}")
    sec.rows.append(["first frame of the app (`tui-trainer`, 100x32 pty)", fmt(median(frames), ".3f"),
                     " ".join(f"{t:.3f}" for t in frames), note])
    sec.notes.append("first frame: from spawning the process to the app's first-frame hook (call_after_refresh "
                     "of its first screen), in a real pseudo-terminal; the first launch is not counted (file cache)")
    return sec


def timed_command(argv: list[str]) -> dict:
    """Run a command from the repository root; its wall time and exit code."""
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, cwd=ROOT)
    return {"seconds": time.perf_counter() - started, "code": out.returncode}


def first_frame(timeout: float = 30) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="tui-bench-ff-"))
    out_path = scratch / "first-frame.json"
    env = {"BENCH_T0": repr(time.time())}
    term = Pty([sys.executable, str(BENCH_DIR / "first_frame.py"), str(out_path), "--runs-dir", str(scratch / "runs")],
               env=env)
    try:
        code = term.wait(timeout)
        if code is None:
            term.send("q")
            term.wait(5)
    finally:
        term.close()
    try:
        return json.loads(out_path.read_text())
    except (OSError, ValueError):
        return {"error": f"no first frame within {timeout:.0f} s: {term.screen_text()}"}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
