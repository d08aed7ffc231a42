"""Worker-side measurements other than the contestants: the app attached, memory over 10^6 steps, plots.

Each op takes a JSON command and returns a JSON-able dict; `worker.py` dispatches to `OPS`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import contestants as c
from common import ROOT


def _runner(config, runs_dir: Path):
    from tui_trainer.runs import Runner, RunStore

    runner = Runner(config, RunStore(runs_dir))
    runner.events = c.StampedQueue()
    return runner


def _result(runner, config, extra: dict | None = None) -> dict:
    summary, stamps, started = runner.summary, runner.events.stamps, runner.events.started
    if summary is None or summary.status != "completed" or started is None:
        return {"error": f"run ended {summary.status if summary else '?'}: {summary.error if summary else ''}"}
    seconds = stamps["RunFinished"] - stamps["RunStarted"]
    steps = summary.step - started.start_step
    samples = c._samples(started.train_samples, config.data.batch_size * config.train.accumulate, steps)
    return {"seconds": seconds, "steps": steps, "samples": samples, "final_loss": summary.final_loss,
            "engine_samples_per_s": summary.samples_per_s, "rss_mib": c.peak_rss_mib(), **(extra or {})}


# ------------------------------------------------------------------------------------------ UI overhead
def ui_run(command: dict, scratch: Path) -> dict:
    """One run of a job with the queue drained at 10 Hz ("drain") or with the Textual app attached ("app")."""
    config = c.load_job(command["job"])
    if command.get("warmup"):
        ui_run({**command, "warmup": False, "job": {**command["job"], "overrides": [
            *command["job"]["overrides"], f"train.max_steps={command['job']['warmup_steps']}"]}}, scratch)
    runs_dir = Path(command.get("runs_dir") or scratch / "ui-runs")
    if command["mode"] == "drain":
        runner = _runner(config, runs_dir)
        runner.start()
        while runner.is_running():
            time.sleep(0.1)
            runner.drain()
        runner.wait()
        runner.drain()
        return _result(runner, config)
    from tui_trainer.ui.app import TrainerApp

    # The app opens on the run's dashboard as `tui-trainer run PRESET` does, but the training thread
    # starts only once the app has settled (first frames drawn, launch screen loaded): this measures
    # what following a run costs, not the app's start-up (the start-up section times that).
    runner = _runner(config, runs_dir)
    runner.run_dir = runner.store.create(config)
    requested = []
    runner.start = lambda: (requested.append(True), runner.run_dir)[1]
    app = TrainerApp(ROOT / "presets", runs_dir, runner)
    frames = _count_frames(app)
    main_cpu = {}

    async def drive() -> None:
        # Plain sleeps, not pilot.pause(): a pause makes every widget process a message and forces a
        # screen update, work that the app on a terminal does not do.
        async with app.run_test(size=(100, 32)):
            await asyncio.sleep(command.get("settle_s", 1.5))
            if not requested:
                raise RuntimeError("the app did not start the run it was given")
            frames[0] = 0
            main_cpu["before"] = _main_thread_cpu()
            type(runner).start(runner)
            while runner.is_running():
                await asyncio.sleep(0.1)
            main_cpu["after"] = _main_thread_cpu()
            await asyncio.sleep(0.3)  # the final events drawn
            app.exit(0)

    asyncio.run(drive())
    stamps = runner.events.stamps
    seconds = stamps.get("RunFinished", 0) - stamps.get("RunStarted", 0)
    ui_cpu = main_cpu.get("after", 0) - main_cpu.get("before", 0)
    return _result(runner, config, {"frames": frames[0], "frames_per_s": frames[0] / seconds if seconds else None,
                                    "ui_thread_cpu_share": ui_cpu / seconds if seconds else None})


def _main_thread_cpu() -> float:
    """CPU seconds used so far by this process's main thread (the app's event loop)."""
    import os

    import psutil

    for t in psutil.Process().threads():
        if t.id == os.getpid():
            return t.user_time + t.system_time
    return 0.0


def _count_frames(app) -> list[int]:
    """Count the app's screen updates (Textual's `App._display` is called once per frame drawn)."""
    count = [0]
    original = getattr(app, "_display", None)
    if original is None:
        return count

    def counted(screen, renderable):
        if renderable is not None:
            count[0] += 1
        return original(screen, renderable)

    app._display = counted
    return count


# ------------------------------------------------------------------------------------------------ scale
def scale_memory(command: dict, scratch: Path) -> dict:
    """RSS of a process training a tiny model, after each of `marks` optimizer steps (10^4 ... 10^6)."""
    import psutil

    from tui_trainer.training.events import TrainProgress

    marks = sorted(int(m) for m in command["marks"])
    job = command["job"]
    config = c.load_job({**job, "overrides": [*job["overrides"], f"train.max_steps={marks[-1]}"]})
    runner = _runner(config, Path(command["runs_dir"]))
    proc = psutil.Process()
    rss_at: dict[str, float] = {}
    peak = 0.0
    pending = list(marks)
    runner.start()
    started = time.perf_counter()
    while runner.is_running() or not runner.events.empty():
        time.sleep(0.1)
        rss = proc.memory_info().rss / 2**20
        peak = max(peak, rss)
        for event in runner.drain():
            if isinstance(event, TrainProgress):
                while pending and event.step >= pending[0]:
                    rss_at[str(pending.pop(0))] = rss
    runner.wait()
    runner.drain()
    rss_at.setdefault(str(marks[-1]), proc.memory_info().rss / 2**20)
    out = _result(runner, config, {"rss_at": rss_at, "peak_rss_sampled_mib": peak,
                                   "wall_s": time.perf_counter() - started, "run_dir": str(runner.run_dir)})
    metrics = Path(runner.run_dir) / "metrics.jsonl"
    if metrics.exists():
        with open(metrics, "rb") as f:
            out["metrics_lines"] = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        out["metrics_mib"] = metrics.stat().st_size / 2**20
    return out


def plot(command: dict, scratch: Path) -> dict:
    """A big metrics.jsonl into the compare plot: read, downsample, and (when the app exists) drawn."""
    from tui_trainer.runs import downsample, read_curves, read_record

    run_dir = Path(command["run_dir"])
    started = time.perf_counter()
    curves = read_curves(run_dir / "metrics.jsonl")
    read_s = time.perf_counter() - started
    drawn = downsample(curves.losses, 400)
    out = {"lines": len(curves.steps) + len(curves.val_steps), "read_s": read_s,
           "read_downsample_s": time.perf_counter() - started, "points_drawn": len(drawn)}
    # The same curves from metrics.jsonl alone (a run written without losses.bin): the slow path.
    import shutil

    alone = scratch / "jsonl-only"
    alone.mkdir(exist_ok=True)
    shutil.copyfile(run_dir / "metrics.jsonl", alone / "metrics.jsonl")
    started = time.perf_counter()
    same = read_curves(alone / "metrics.jsonl")
    out["read_jsonl_only_s"] = time.perf_counter() - started
    out["jsonl_only_agrees"] = same == curves
    shutil.rmtree(alone, ignore_errors=True)
    try:
        from tui_trainer.ui.app import TrainerApp
        from tui_trainer.ui.screens.compare import CompareScreen
    except ImportError as exc:
        out["app"] = f"not available yet: {exc}"
        return out
    record = read_record(run_dir)
    other = read_record(Path(command["other_dir"])) if command.get("other_dir") else record
    app = TrainerApp(ROOT / "presets", run_dir.parent)
    shown = {}

    async def drive() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause(0.2)
            screen = CompareScreen(record, other)
            t0 = time.perf_counter()
            await app.push_screen(screen)
            while screen.curves is None and time.perf_counter() - t0 < 60:
                await pilot.pause(0.01)
            await pilot.pause()  # the curves drawn
            shown["s"] = time.perf_counter() - t0
            app.exit(0)

    asyncio.run(drive())
    out["compare_screen_s"] = shown.get("s")
    out["other_lines"] = len(read_curves(Path(command["other_dir"]) / "metrics.jsonl").steps) \
        if command.get("other_dir") else out["lines"]
    return out


OPS = {"ui": ui_run, "scale-memory": scale_memory, "plot": plot}
