"""Accumulation, DDP on CPU, and scale: memory over 10^6 steps, 1,000 runs listed, 10^6 metric lines plotted."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import ROOT, Section, alternating, get_worker, release, fmt, median, quiet_call, quiet_run
from jobs import Job
from ui import headless_run, timed_command, tui_command


def _pairs(a: list[float], b: list[float]) -> float | None:
    return median([x / y for x, y in zip(a, b) if x and y])


# -------------------------------------------------------------------------------------------- accumulation
def accumulation(base: Job, log) -> Section:
    """accumulate = 4 at micro-batch 256 against batch 1024 with no accumulation (same effective batch, steps)."""
    variants = {
        "batch 1024, accumulate 1": base,
        "batch 256, accumulate 4": base.with_overrides("data.batch_size=256", "train.accumulate=4",
                                                       key=f"{base.key}-accum4"),
    }
    sec = Section("accumulation", "Gradient accumulation (tui-trainer, compute-bound job)",
                  ["setting", "samples/s", "ms/step", "vs no accumulation", "steps", "final loss"])
    workers = {name: get_worker(f"accum-{i}") for i, name in enumerate(variants)}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    try:
        for r in range(base.repeats):
            for name in alternating(list(variants), r):
                out = quiet_call(workers[name], dict(op="run", contestant="tui-trainer",
                                                     job=variants[name].as_json()), log)
                results[name].append(out)
                if "error" in out:
                    log(f"  accumulation {name}: error: {out['error']}")
                else:
                    log(f"  accumulation {name:<26} {out['samples'] / out['seconds']:>10,.0f} samples/s "
                        f"(other load {out['busy']:.0%})")
    finally:
        for w in workers.values():
            release(w)
    rates = {n: [o["samples"] / o["seconds"] for o in rs if "error" not in o] for n, rs in results.items()}
    first = list(variants)[0]
    for name, runs in results.items():
        ok = [o for o in runs if "error" not in o]
        if not ok:
            sec.rows.append([name, "-", "-", "-", "-", f"error: {runs[0]['error'][:60]}"])
            continue
        rel = _pairs(rates[name], rates[first]) if len(rates[name]) == len(rates[first]) else None
        sec.rows.append([name, fmt(median(rates[name])), fmt(median([1000 * o["seconds"] / o["steps"] for o in ok]),
                                                            ".2f"),
                         fmt(rel, ".3f"), f"{ok[0]['steps']:,}", fmt(median([o["final_loss"] for o in ok]), ".4g")])
        sec.data[name] = {"samples_per_s": median(rates[name]), "relative": rel, "all": rates[name]}
    sec.notes.append("same effective batch (1,024) and the same optimizer steps; accumulation runs 4 forward and "
                     "backward passes of 256 per step, the loss of each weighted by its share of the step")
    return sec


# --------------------------------------------------------------------------------------------------- DDP
def ddp(base: Job, repeats: int, log) -> Section:
    """DDP with gloo on the CPU, 2 processes x 1 thread, against 1 process x 2 threads, through the CLI."""
    half = max(1, _batch(base) // 2)
    variants = {
        "1 process x 2 threads (cpu)": base.with_overrides("train.threads=2", key="ddp-1x2"),
        "2 processes x 1 thread (ddp, gloo)": base.with_overrides(
            "strategy.name=ddp", "strategy.devices=2", "strategy.accelerator=cpu", "train.threads=1",
            f"data.batch_size={half}", key="ddp-2x1"),
    }
    sec = Section("ddp", "DDP on the CPU (gloo), through `tui-trainer run --headless`",
                  ["setting", "samples/s", "vs 1 process", "steps", "final loss"])
    scratch = Path(tempfile.mkdtemp(prefix="tui-bench-ddp-"))
    rates: dict[str, list[float]] = {n: [] for n in variants}
    last: dict[str, dict] = {}
    try:
        for r in range(repeats):
            for name in alternating(list(variants), r):
                runs_dir = scratch / f"{variants[name].key}-{r}"
                out = quiet_run(lambda job=variants[name], d=runs_dir: (shutil.rmtree(d, ignore_errors=True),
                                                                         headless_run(job, d))[1], log)
                if "error" in out:
                    log(f"  ddp {name}: error: {out['error']}")
                    last[name] = out
                    continue
                rates[name].append(out["samples_per_s"])
                last[name] = out
                log(f"  ddp {name:<36} {out['samples_per_s']:>10,.0f} samples/s (other load {out['busy']:.0%})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ddp_name = list(variants)[1]
    if not rates[ddp_name]:
        sec.status = "not available yet"
        sec.notes.append("`tui-trainer run ... --set strategy.name=ddp --set strategy.devices=2 --set "
                         f"strategy.accelerator=cpu` failed: {last.get(ddp_name, {}).get('error', '?')}")
        return sec
    first = list(variants)[0]
    for name in variants:
        if not rates[name]:
            sec.rows.append([name, "-", "-", "-", f"error: {last.get(name, {}).get('error', '?')[:60]}"])
            continue
        summary = last[name].get("summary", {})
        rel = _pairs(rates[name], rates[first]) if len(rates[name]) == len(rates[first]) else None
        sec.rows.append([name, fmt(median(rates[name])), fmt(rel, ".3f"), f"{summary.get('step', 0):,}",
                         fmt(summary.get("final_loss"), ".4g")])
        sec.data[name] = {"samples_per_s": median(rates[name]), "relative": rel, "all": rates[name]}
    sec.notes.append(f"same global batch ({_batch(base)}: 2 x {half} under ddp) and steps; samples/s from each run's "
                     "summary.json (training loop only; the torchrun start-up is not in it)")
    return sec


def _batch(job: Job) -> int:
    for o in reversed(job.overrides):
        if o.startswith("data.batch_size="):
            return int(o.split("=", 1)[1])
    import tomllib

    return int(tomllib.loads(Path(job.preset).read_text()).get("data", {}).get("batch_size", 32))


# ------------------------------------------------------------------------------------------------- scale
def scale(memory_job: Job, marks: list[int], runs: int, log) -> Section:
    sec = Section("scale", "Scale", ["what", "figure", "target"])
    scratch = Path(tempfile.mkdtemp(prefix="tui-bench-scale-"))
    try:
        # 1. memory over 10^4 ... 10^6 optimizer steps of a tiny model, in one process
        worker = get_worker("scale")
        try:
            log(f"  scale: training {marks[-1]:,} steps of a tiny model (RSS at {', '.join(f'{m:,}' for m in marks)})")
            mem = worker.call(op="scale-memory", job=memory_job.as_json(), marks=marks, runs_dir=str(scratch / "mem"))
        finally:
            release(worker)
        sec.data["memory"] = mem
        if "error" in mem:
            sec.rows.append(["RSS over steps", f"error: {mem['error'][:80]}", "flat"])
            run_dir = None
        else:
            rss = mem["rss_at"]
            growth = rss[str(marks[-1])] - rss[str(marks[0])]
            sec.data["memory_growth_mib"] = growth
            for m in marks:
                sec.rows.append([f"RSS after {m:,} steps", f"{rss[str(m)]:,.1f} MiB", ""])
            sec.rows.append([f"growth {marks[0]:,} -> {marks[-1]:,} steps", f"{growth:+.1f} MiB", "<= 20 MiB"])
            sec.rows.append(["that run", f"{mem['samples'] / mem['seconds']:,.0f} samples/s, "
                                          f"{mem['steps'] / mem['seconds']:,.0f} steps/s, "
                                          f"metrics.jsonl {mem.get('metrics_lines', 0):,} lines "
                                          f"({mem.get('metrics_mib', 0):.0f} MiB)", ""])
            run_dir = Path(mem["run_dir"])
        # 2. `tui-trainer runs` over a store of N runs
        store = scratch / "store"
        _make_store(store, run_dir, runs)
        subprocess.run([*tui_command(), "runs", "--runs-dir", str(store)], capture_output=True, cwd=ROOT)
        times = []
        for _ in range(3):
            out = quiet_run(lambda: timed_command([*tui_command(), "runs", "--runs-dir", str(store)]), log)
            times.append(out["seconds"])
            if out["code"] != 0:
                sec.notes.append(f"`tui-trainer runs` exited {out['code']}")
        sec.data["list_runs_s"] = median(times)
        sec.data["list_runs_all"] = times
        sec.rows.append([f"`tui-trainer runs` over {runs:,} runs", f"{median(times):.3f} s", "< 1 s"])
        # 3. the big metrics file into the compare plot
        if run_dir is None or not (run_dir / "metrics.jsonl").exists():
            run_dir = scratch / "synthetic-run"
            _synthetic_metrics(run_dir, marks[-1])
        small = scratch / "small-run"  # the other side of the compare screen: a default-sized run
        _synthetic_metrics(small, 1_200)
        worker = get_worker("plot")
        try:
            plot = quiet_call(worker, dict(op="plot", run_dir=str(run_dir), other_dir=str(small)), log)
        finally:
            release(worker)
        sec.data["plot"] = plot
        if "error" in plot:
            sec.rows.append(["metrics.jsonl into the compare plot", f"error: {plot['error'][:80]}", "< 2 s"])
        else:
            sec.data["plot_s"] = plot.get("compare_screen_s") or plot["read_downsample_s"]
            sec.rows.append([f"read + downsample a {plot['lines']:,}-line run's curves (read_curves: "
                             "losses.bin + the val lines of metrics.jsonl)", f"{plot['read_downsample_s']:.3f} s", "< 2 s"])
            if plot.get("read_jsonl_only_s") is not None:
                agrees = "same curves" if plot.get("jsonl_only_agrees") else "DIFFERENT curves"
                sec.rows.append(["the same from metrics.jsonl alone (a run without losses.bin)",
                                 f"{plot['read_jsonl_only_s']:.3f} s ({agrees})", ""])
            if plot.get("compare_screen_s") is not None:
                sec.rows.append([f"the app's compare screen, that run against a {plot['other_lines']:,}-step run, "
                                 "until drawn",
                                 f"{plot['compare_screen_s']:.3f} s", "< 2 s"])
            elif plot.get("app"):
                sec.rows.append(["the app's compare screen", plot["app"], "< 2 s"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sec.notes.append("RSS: resident memory of the one process that runs the Runner, sampled when the run reports "
                     "that step (the queue drained at 10 Hz and the events dropped, as the headless printer does)")
    sec.notes.append("runs: the whole `tui-trainer runs` process, interpreter start included, over a store of copies "
                     "of a real run's config.toml and summary.json")
    return sec


def _make_store(store: Path, template: Path | None, count: int) -> None:
    """`count` completed runs: copies of a real run's config.toml and summary.json (or a made-up one)."""
    store.mkdir(parents=True)
    config = (template / "config.toml").read_text() if template and (template / "config.toml").exists() else \
        (ROOT / "presets" / "cpu-quick.toml").read_text()
    summary = json.loads((template / "summary.json").read_text()) if template and (template / "summary.json").exists() \
        else {"name": "cpu-quick", "status": "completed", "step": 1200, "total_steps": 1200, "final_loss": 2089.0,
              "final_val_loss": 3420.0, "samples_per_s": 35000.0, "wall_s": 3.2}
    for i in range(count):
        run_id = f"20261127-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-bench-{i:04d}"
        d = store / run_id
        d.mkdir()
        (d / "config.toml").write_text(config)
        (d / "summary.json").write_text(json.dumps({**summary, "run_id": run_id,
                                                    "started_at": f"2026-11-27T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                                                                  f"{i % 60:02d}", "pid": None}, indent=2))


def _synthetic_metrics(run_dir: Path, lines: int) -> None:
    """A metrics.jsonl written by the engine's own MetricsLog from made-up progress events."""
    import sys

    code = f"""
import math, sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from tui_trainer.runs.metrics import MetricsLog
from tui_trainer.training.events import RunStarted, TrainProgress, EvalResult
d = Path({str(run_dir)!r}); d.mkdir(parents=True, exist_ok=True)
log = MetricsLog(d / "metrics.jsonl")
log.record(RunStarted("x", str(d), "cpu", {lines}, 12, 0, 32, 1, 753, 353))
step = 0
while step < {lines}:
    steps = tuple(range(step + 1, min(step + 1001, {lines} + 1)))
    log.record(TrainProgress(steps[-1], 0, steps, tuple(3000 * math.exp(-s / 1e5) for s in steps), 0.01, 1e4, 1, 1))
    log.record(EvalResult(steps[-1], 0, 3400.0, "r2", 0.33))
    step = steps[-1]
log.close()
(d / "summary.json").write_text('{{"run_id": "synthetic", "name": "synthetic", "status": "completed"}}')
(d / "config.toml").write_text(open({str(ROOT / 'presets' / 'cpu-quick.toml')!r}).read())
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ------------------------------------------------------------------------------------- overhead table
def _hidden_for(params: int, features: int = 64) -> int:
    """The width h of an MLP features-h-h-1 with about `params` parameters (h^2 + (features + 3)h + 1)."""
    b = features + 3
    return max(2, round((-b + (b * b + 4 * (params - 1)) ** 0.5) / 2))


def _point_job(params: int, batch: int, quick: bool) -> Job:
    """Synthetic regression (64 features) on an MLP of ~`params` parameters, batch `batch`: ~3 s of training
    (at least 30 steps), so that a run's fixed costs (its first step, the final checkpoint) do not pass
    for a per-step cost."""
    h = _hidden_for(params)
    real = h * h + 67 * h + 1
    # about 6 x params x batch FLOPs a step at ~40 GFLOP/s (2 cores), plus ~0.2 ms of a loop's own cost
    step_s = 6 * real * batch / 4e10 + 2e-4
    steps = 20 if quick else max(30, min(10_000, int(3.0 / step_s)))
    samples = max(batch * 50, 2_000)  # 40 steps an epoch: an evaluation every 40 steps, as every run does
    return Job(f"overhead-{params}-{batch}", f"MLP 64-{h}-{h}-1 ({real:,} parameters), batch {batch}",
               str(ROOT / "benchmarks" / "presets" / "bench-compute.toml"),
               (f"data.samples={samples}", f"data.batch_size={batch}", f"model.hidden=[{h}, {h}]",
                f"train.max_steps={steps}", "train.epochs=1000"),
               warmup_steps=3 if quick else 5, repeats=1 if quick else 3, contestants=("tui-trainer", "best"),
               best_threads=1 if real * batch < 1_000_000 else 0)


def _split_run_end(runs: list[dict]) -> tuple[float | None, float | None]:
    """tui-trainer's ms a step over its steps alone (the run's own samples/s: from the first step to the
    last, its evaluations included) and the seconds after them (the final checkpoint and summary.json),
    medians over the repeats."""
    steps_ms, end_s = [], []
    for r in runs:
        rate = r.get("engine_samples_per_s")
        if "error" in r or not rate:
            continue
        trained = r["samples"] / rate
        steps_ms.append(1000 * trained / r["steps"])
        end_s.append(max(0.0, r["seconds"] - trained))
    return median(steps_ms), median(end_s)


def overhead_points(quick: bool) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(parameters, batch) points of the table, and those also run with ddp on 1 and 2 CPU processes."""
    if quick:
        return [(1_000, 64), (100_000, 64)], [(100_000, 256)]
    points = [(p, 64) for p in (1_000, 10_000, 100_000, 1_000_000, 10_000_000)]
    points += [(100_000, b) for b in (8, 256, 1_024, 4_096)]
    points += [(1_000, 4_096), (1_000_000, 1_024)]
    return points, [(10_000, 256), (100_000, 256), (1_000_000, 1_024)]


def overhead(quick: bool, log) -> Section:
    """Per-step overhead and peak memory of the engine against the best loop, over model size, batch and ddp.

    Run it alone: python benchmarks/bench.py --only overhead [--quick]
    """
    from throughput import Pool, measure, summarise

    sec = Section("overhead", "The runner's own cost over model size, batch and processes (CPU)",
                  ["model", "batch", "best loop ms/step", "tui-trainer ms/step", "overhead ms/step", "vs best",
                   "tui-trainer steps only ms/step", "tui-trainer run's end s", "best peak RSS MiB",
                   "tui-trainer peak RSS MiB"])
    points, ddp_points = overhead_points(quick)
    for params, batch in points:
        job = _point_job(params, batch, quick)
        pool = Pool()  # fresh processes per point: each peak RSS is that point's
        try:
            results = measure(job, pool, ["tui-trainer", "best"], log)
        finally:
            pool.close()
        _, figures = summarise(job, results)
        tui, best = figures.get("tui-trainer", {}), figures.get("best", {})
        sec.data[job.key] = {"params": params, "batch": batch, "figures": figures}
        if "error" in tui or "error" in best:
            sec.rows.append([job.title, str(batch), "-", "-", "-", "-", "-", "-", "-",
                             f"error: {(tui.get('error') or best.get('error'))[:60]}"])
            continue
        extra = tui["ms_per_step"] - best["ms_per_step"]
        steps_only, end_s = _split_run_end(results["tui-trainer"])
        sec.data[job.key].update(steps_only_ms=steps_only, run_end_s=end_s)
        sec.rows.append([job.title.split(", batch")[0], f"{batch:,}", fmt(best["ms_per_step"], ".3f"),
                         fmt(tui["ms_per_step"], ".3f"), fmt(extra, "+.3f"), fmt(tui.get("vs_best"), ".2f") + "x",
                         fmt(steps_only, ".3f"), fmt(end_s, ".3f"), fmt(best["peak_mib"]), fmt(tui["peak_mib"])])
    for params, batch in ddp_points:
        job = _point_job(params, batch, quick)
        half = max(1, batch // 2)
        # The reference: the best hand-written loop in one process at the same global batch.
        pool = Pool()
        try:
            best = summarise(job, measure(job, pool, ["best"], log))[1].get("best", {})
        finally:
            pool.close()
        best_ms = best.get("ms_per_step") if "error" not in best else None
        variants = {"ddp, 1 process": job.with_overrides("strategy.name=ddp", "strategy.devices=1",
                                                         "strategy.accelerator=cpu"),
                    "ddp, 2 processes x 1 thread": job.with_overrides(
                        "strategy.name=ddp", "strategy.devices=2", "strategy.accelerator=cpu", "train.threads=1",
                        f"data.batch_size={half}")}
        scratch = Path(tempfile.mkdtemp(prefix="tui-bench-overhead-"))
        try:
            for name, variant in variants.items():
                rates = []
                for r in range(job.repeats):
                    runs_dir = scratch / f"{r}-{len(rates)}-{name[:5]}"
                    out = quiet_run(lambda v=variant, d=runs_dir: headless_run(v, d), log)
                    if "error" in out:
                        log(f"  overhead {name}: error: {out['error']}")
                        break
                    rates.append(out["samples_per_s"])
                sec.data[f"{job.key}-{name}"] = rates
                ms = 1000 * batch / median(rates) if rates else None  # same global batch each way
                sec.rows.append([f"{job.title.split(', batch')[0]}: {name}", f"{batch:,}", fmt(best_ms, ".3f"),
                                 fmt(ms, ".3f"), fmt(ms - best_ms, "+.3f") if ms and best_ms else "-",
                                 f"{best_ms / ms:.2f}x" if ms and best_ms else "-", "-", "-",
                                 fmt(best.get("peak_mib")), "-" if rates else "error"])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    sec.notes += [
        "each point: synthetic regression, 64 features, an MLP 64-h-h-1 sized to the parameter count; the same "
        "steps for both contestants (about 3 s of training, at least 30), median of the repeats in alternating order",
        "overhead ms/step: tui-trainer's time per step minus the best loop's; tui-trainer's includes its "
        "evaluation every 40 steps (one epoch), metrics.jsonl and the final checkpoint",
        "steps only / run's end: tui-trainer's time split into its steps (from the first step to the last, "
        "evaluations included: the run's own samples/s) and what follows them once per run (the final "
        "checkpoint, written and fsync'd, and summary.json); the best loop writes no checkpoint",
        "the best loop takes 1 thread below 10^6 parameters x batch and torch's default above; tui-trainer "
        "decides itself (train.threads = 0)",
        "peak RSS: the whole worker process (torch, the data, the model, the optimizer state)",
        "ddp rows: `tui-trainer run --headless` with strategy ddp on the CPU (gloo), the same global batch split "
        "over the processes; ms/step from the run's own samples/s (the torchrun start-up is not in it), against "
        "the best hand-written loop in one process at the same global batch (its threads as above); the ddp "
        "processes' RSS is not measured (several processes)",
    ]
    return sec
