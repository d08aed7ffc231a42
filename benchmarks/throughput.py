"""Throughput: the same job trained by every contestant, in alternating order, median of the repeats."""

from __future__ import annotations

from common import Section, alternating, get_worker, release, fmt, median, quiet_call, ratio
from jobs import Job

LABELS = {"tui-trainer": "tui-trainer", "best": "best hand-written loop", "seed": "seed-style loop",
          "lightning": "PyTorch Lightning", "best-unfused": "best loop, unfused optimizer",
          "best-default-threads": "best loop, torch's default threads"}


class Pool:
    """One worker process per contestant, kept across jobs (imports paid once; RSS is per contestant)."""

    def __init__(self):
        self.workers: dict[str, Worker] = {}

    def get(self, name: str) -> Worker:
        if name not in self.workers:
            self.workers[name] = get_worker(name)
        return self.workers[name]

    def close(self) -> None:
        for w in self.workers.values():
            release(w)
        self.workers.clear()


def measure(job: Job, pool: Pool, contestants: list[str], log) -> dict[str, list[dict]]:
    """Every contestant's results over `job.repeats` rounds; the first call of each also warms it up."""
    results: dict[str, list[dict]] = {name: [] for name in contestants}
    # Start every contestant's process at once and wait until all have imported: no start-up runs
    # beside a measurement.
    for name in contestants:
        pool.get(name)
    for name in contestants:
        pool.get(name).call(op="ping", lightning=name == "lightning")
    for r in range(job.repeats):
        for name in alternating(contestants, r):
            worker = pool.get(name)
            out = quiet_call(worker, dict(op="run", contestant=name, job=job.as_json()), log)
            results[name].append(out)
            if "error" in out:
                log(f"  {name}: error: {out['error']}")
            else:
                log(f"  {job.key} repeat {r + 1}/{job.repeats} {name:<12} {out['samples'] / out['seconds']:>12,.0f} "
                    f"samples/s  ({out['seconds']:.2f} s, other load {out['busy']:.0%})")
    return results


def summarise(job: Job, results: dict[str, list[dict]], memory: str = "rss") -> tuple[list[list[str]], dict]:
    """Table rows (median figures and the ratio to the best loop) and the JSON figures."""
    figures = {}
    for name, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            figures[name] = {"error": runs[0].get("error") if runs else "not run"}
            continue
        rates = [r["samples"] / r["seconds"] for r in ok]
        step_ms = [1000 * r["seconds"] / r["steps"] for r in ok]
        mem_key = "gpu_peak_mib" if memory == "gpu" else "rss_mib"
        figures[name] = {
            "samples_per_s": median(rates), "ms_per_step": median(step_ms), "runs": len(ok),
            "samples_per_s_all": rates, "steps": ok[0]["steps"], "samples": ok[0]["samples"],
            "peak_mib": max(r.get(mem_key) or 0 for r in ok) or None, "final_loss": median([r["final_loss"] for r in ok]),
            "busy_max": max(r["busy"] for r in ok),
            "engine_samples_per_s": median([r.get("engine_samples_per_s") for r in ok]),
            "threads": ok[-1].get("threads"),
        }
    best = figures.get("best", {}).get("samples_per_s")
    best_runs = results.get("best", [])
    for name, f in figures.items():
        if "error" in f or not best:
            continue
        # The median of the per-repeat ratios: each pair ran back to back, so slow drifts cancel.
        pairs = [a["samples"] / a["seconds"] / (b["samples"] / b["seconds"])
                 for a, b in zip(results[name], best_runs) if "error" not in a and "error" not in b]
        f["vs_best"] = median(pairs) if pairs else f["samples_per_s"] / best
        f["vs_best_all"] = pairs
    rows = []
    for name in results:
        f = figures[name]
        if "error" in f:
            rows.append([LABELS[name], "-", "-", "-", "-", "-", "-", "-", f"error: {f['error'][:60]}"])
            continue
        rows.append([LABELS[name], fmt(f["samples_per_s"]), fmt(f["ms_per_step"], ".3f"), fmt(f["peak_mib"]),
                     f"{f['vs_best']:.2f}x" if f.get("vs_best") else "-", f"{f['steps']:,}", fmt(f["final_loss"], ".4g"),
                     fmt(f.get("threads"), "d"), f"{f['busy_max']:.0%}"])
    steps = {f["steps"] for f in figures.values() if "steps" in f}
    if len(steps) > 1:
        rows.append(["(warning: contestants took different numbers of steps)", *[""] * 8])
    return rows, figures


COLUMNS = ["contestant", "samples/s", "ms/step", "peak RSS MiB", "vs best", "steps", "final loss", "threads",
           "other load"]


def section(job: Job, pool: Pool, log, contestants: list[str] | None = None, gpu: bool = False) -> Section:
    names = list(contestants or job.contestants)
    results = measure(job, pool, names, log)
    rows, figures = summarise(job, results, memory="gpu" if gpu else "rss")
    columns = list(COLUMNS)
    if gpu:
        columns[3] = "peak GPU MiB"
    sec = Section(f"throughput-{job.key}", f"Throughput, {job.title}", columns, rows,
                  data={"job": job.as_json(), "figures": figures})
    sec.notes.append(f"median of {job.repeats} repeat(s) in alternating order, after an untimed warm-up run of "
                     f"{job.warmup_steps} steps in the same process; \"vs best\" is the median of the per-repeat "
                     "ratios to the best hand-written loop")
    sec.notes.append("tui-trainer does more: it evaluates the validation split at each epoch end (and at "
                     "eval_every), writes metrics.jsonl and writes checkpoint.pt and summary.json at the end; its "
                     "clock runs from RunStarted to RunFinished, so all of that is in its figure")
    if "lightning" in names:
        sec.notes.append("Lightning validates each epoch too (no logger, progress bar or checkpoint callback), "
                         "timed from on_train_start to on_train_end plus one save_checkpoint")
    sec.notes.append("the best hand-written loop builds its optimizer with fused=True where torch has a fused "
                     "kernel for the device (as tui-trainer does), so tui-trainer's own cost shows against it")
    if "best-unfused" in names:
        sec.notes.append("\"best loop, unfused optimizer\" is the same loop with torch's default optimizer: what "
                         "fusing gains any loop")
    sec.notes.append("final loss: the mean training loss over the last epoch (each contestant shuffles with its "
                     "own generator, so the trajectories differ)")
    sec.notes.append(f"threads: torch's intra-op threads during the run. The best hand-written loop (and its unfused "
                     f"variant) uses what a PyTorch expert picks for this job: {job.best_threads_why}. "
                     "tui-trainer decides itself (train.threads = 0: 1 thread when parameters x batch is under 10^6, "
                     "torch's default above 10^8, measured in between); the seed-style loop, Lightning and "
                     "\"best loop, torch's default threads\" keep torch's default")
    sec.notes.append("other load: the share of the machine's CPU used by other processes during the repeat "
                     "(figures taken above ~10% are noisy)")
    return sec


# ------------------------------------------------------------------------------------------------- GPU
# Dense (no sparsity) tensor-core peaks in TFLOP/s for bf16/fp16, from the vendors' data sheets.
PEAK_TFLOPS = [("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("GH200", 989.4),
               ("H20", 148.0), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
               ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0),
               ("V100", 125.0), ("T4", 65.0)]


def peak_tflops(gpu_name: str | None) -> float | None:
    """The bf16 dense peak of a GPU, by its name (None when unknown)."""
    if not gpu_name:
        return None
    for key, value in PEAK_TFLOPS:
        if key.lower() in gpu_name.lower():
            return value
    return None


def train_flops_per_sample(job: Job) -> float:
    """Matmul FLOPs of one training sample of the job's MLP: 2 forward + 4 backward per weight."""
    import sys

    from common import ROOT

    sys.path.insert(0, str(ROOT))
    from tui_trainer.config import load_config

    cfg = load_config(job.preset, list(job.overrides))
    widths = [cfg.data.features, *cfg.model.hidden, 1]
    return 6.0 * sum(a * b for a, b in zip(widths, widths[1:]))


def gpu_summary(sections: dict[str, Section], jobs: dict[str, Job], gpu_name: str | None,
                peak_override: float | None = None) -> Section:
    """Per precision: tui-trainer's samples/s, peak GPU memory, speed against fp32, against the best loop, MFU."""
    peak = peak_override or peak_tflops(gpu_name)
    sec = Section("gpu-summary", f"GPU precisions on synthetic-large ({gpu_name or 'no GPU'})",
                  ["precision", "samples/s", "ms/step", "peak GPU MiB", "vs fp32", "vs best loop", "TFLOP/s", "MFU"])
    fp32 = sections.get("fp32")
    base = fp32.data["figures"].get("tui-trainer", {}).get("samples_per_s") if fp32 else None
    for precision, s in sections.items():
        f = s.data["figures"].get("tui-trainer", {})
        if "samples_per_s" not in f:
            sec.rows.append([precision, "-", "-", "-", "-", "-", "-", f"error: {f.get('error', '?')[:50]}"])
            continue
        flops = train_flops_per_sample(jobs[precision]) * f["samples_per_s"]
        mfu = flops / (peak * 1e12) if peak else None
        sec.rows.append([precision, fmt(f["samples_per_s"]), fmt(f["ms_per_step"], ".3f"), fmt(f["peak_mib"]),
                         ratio(f["samples_per_s"], base), f"{f['vs_best']:.2f}x" if f.get("vs_best") else "-",
                         fmt(flops / 1e12, ".1f"), fmt(100 * mfu if mfu else None, ".1f") + ("%" if mfu else "")])
        sec.data[precision] = {"samples_per_s": f["samples_per_s"], "tflops": flops / 1e12, "mfu": mfu,
                               "vs_fp32": f["samples_per_s"] / base if base else None, "peak_mib": f["peak_mib"]}
    sec.notes.append(f"MFU: model FLOPs (6 x multiply-adds of the MLP's weights per sample) per second over the "
                     f"device's dense bf16 peak ({peak or '?'} TFLOP/s; unknown devices: --peak-tflops); every "
                     f"precision is measured against that same bf16 peak")
    return sec
