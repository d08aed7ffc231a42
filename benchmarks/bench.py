"""tui-trainer's benchmark: the runner against the loops a user would write, and the app's own costs.

    python benchmarks/bench.py [--quick] [--json PATH] [--only SECTION ...]

Sections (all by default): throughput (the tiny and the compute-bound CPU jobs against a seed-style
loop, the best hand-written loop and PyTorch Lightning), gpu (synthetic-large in every precision, when
torch sees a GPU), ui (the app attached vs headless), startup (`--help`, the first frame), process
(`tui-trainer run --headless` from exec to its first step and to exit, against the imports and the
same job written by hand as one script),
accumulation, ddp (gloo on the CPU), scale (memory over 10^6 steps, 1,000 runs listed, a 10^6-line
metrics file plotted), overhead (the runner's per-step cost and memory against the best loop over model
size 10^3..10^7, batch 8..4,096 and ddp 1 or 2 processes). `--only tiny` or `--only compute` runs one
throughput job alone. Prints Markdown tables and the targets met or missed; writes every figure to
JSON (default benchmarks/results/latest.json, or latest-quick.json with --quick).

`--quick` (under a minute) proves that the script works; its figures are not to be judged.
Lightning is the optional `bench` extra (`pip install -e ".[bench]"`); without it that column is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jobs as J  # noqa: E402
import process  # noqa: E402
import scaling  # noqa: E402
import throughput  # noqa: E402
import ui  # noqa: E402
from common import BENCH_DIR, QUIET, ROOT, Section, share_workers, machine_info, machine_line, markdown_table, verdict  # noqa: E402

SECTIONS = ("throughput", "gpu", "ui", "startup", "process", "accumulation", "ddp", "scale", "overhead")
PARTS = {"tiny": "throughput", "compute": "throughput"}  # one job of a section, alone: --only tiny


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small jobs, one repeat: proves the script works (< 1 min)")
    p.add_argument("--json", type=Path, default=None, help="where to write the figures (default benchmarks/results/)")
    p.add_argument("--only", nargs="+", choices=(*SECTIONS, *PARTS), default=None, metavar="SECTION",
                   help=f"run only these sections ({', '.join(SECTIONS)}), or one throughput job "
                        f"({', '.join(PARTS)})")
    p.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 3, 5 for the tiny job)")
    p.add_argument("--steps", type=int, default=None, help="scale: the long run's optimizer steps (default 10^6)")
    p.add_argument("--runs", type=int, default=None, help="scale: runs in the listed store (default 1,000)")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU dense bf16 peak for the MFU, if unknown")
    p.add_argument("--gpu-on-cpu", action="store_true", help=argparse.SUPPRESS)  # exercise the GPU section's code
    return p.parse_args(argv)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    wanted = set(args.only or SECTIONS)
    quick = args.quick
    # Every command and worker started from here runs this checkout's code, whatever else is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    if quick:  # proving the script works: no waiting for a quiet machine, no second takes
        QUIET.update(max_wait=0.0, retries=0)
        # Sections overlap in quick mode; one OpenMP thread per process keeps their spin-waits from
        # starving each other (inherited by every worker and command started from here).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    command = "python benchmarks/bench.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                   else sys.argv[1:]))
    info = machine_info()
    log(f"tui-trainer benchmark, {info['date']}, {machine_line(info)}")
    sections: list[Section] = []
    have_lightning = importlib.util.find_spec("lightning") is not None

    def repeats(job: J.Job) -> J.Job:
        from dataclasses import replace

        return replace(job, repeats=args.repeats) if args.repeats else job

    def contestants(job: J.Job) -> list[str]:
        names = list(job.contestants)
        return names if have_lightning else [n for n in names if n != "lightning"]

    planned: list[tuple[str, object]] = []

    def run_section(name: str, fn) -> None:
        planned.append((name, fn))

    def execute(name: str, fn) -> list[Section]:
        log(f"== {name}")
        t = time.perf_counter()
        try:
            sec = fn()
        except Exception as exc:  # a broken section is reported; the others still run
            import traceback

            sec = Section(name, name, status="error", notes=[f"{type(exc).__name__}: {exc}"])
            log(traceback.format_exc())
        secs = sec if isinstance(sec, list) else [sec]
        for s in secs:
            s.data.setdefault("section_s", time.perf_counter() - t)
        return secs

    header = [f"# tui-trainer benchmark ({'quick: proves the script works, figures not judged' if quick else 'full'})",
              f"- date: {info['date']}",
              f"- machine: {machine_line(info)}",
              f"- command: `{command.strip()}`"]
    print("\n".join(header) + "\n", flush=True)

    tiny, compute = repeats(J.tiny(quick)), repeats(J.compute(quick))
    cpu_jobs = [job for job in (tiny, compute) if "throughput" in wanted or job.key in wanted]
    if cpu_jobs:
        def cpu_throughput():
            out = []
            for job in cpu_jobs:
                pool = throughput.Pool()  # fresh processes per job: nothing carries over between jobs
                try:
                    sec = throughput.section(job, pool, log, contestants(job))
                finally:
                    pool.close()
                if not have_lightning:
                    sec.notes.append("PyTorch Lightning is not installed (pip install -e \".[bench]\"): its row "
                                     "is skipped")
                out.append(sec)
            return out

        run_section("throughput", cpu_throughput)

    if "gpu" in wanted:
        def gpu():
            device = "cpu" if args.gpu_on_cpu else "cuda"
            if not (info.get("gpu") or args.gpu_on_cpu):
                return Section("gpu", "GPU: synthetic-large in every precision", status="skipped",
                               notes=["no GPU: torch.cuda.is_available() is False on this machine"])
            precisions = ("fp32", "bf16-mixed") if quick else J.PRECISIONS
            if args.gpu_on_cpu:
                precisions = ("fp32", "bf16-mixed", "bf16-true")
            by_precision, job_of, out = {}, {}, []
            for precision in precisions:
                job = repeats(J.gpu(precision, quick or args.gpu_on_cpu, device))
                names = ["tui-trainer", "best"] + (["seed", "lightning"] if precision == "bf16-mixed" else [])
                names = [n for n in names if have_lightning or n != "lightning"]
                pool = throughput.Pool()
                try:
                    sec = throughput.section(job, pool, log, names, gpu=device == "cuda")
                finally:
                    pool.close()
                by_precision[precision], job_of[precision] = sec, job
                out.append(sec)
            out.insert(0, throughput.gpu_summary(by_precision, job_of, info.get("gpu") or "CPU (code check only)",
                                                 args.peak_tflops))
            return out

        run_section("gpu", gpu)

    if "ui" in wanted:
        def ui_section():
            epochs = 10 if quick else 400
            fast = J.Job("tiny-ui", f"tiny (diabetes, batch 32), {epochs} epochs: ~1,000+ steps/s",
                         tiny.preset, (f"train.epochs={epochs}",), warmup_steps=36, repeats=1 if quick else 3)
            jobs = [fast]
            if not quick:
                jobs.append(J.Job("compute-ui", "compute-bound (200k x 64, MLP 512-512, batch 1024), 3 epochs: "
                                                "~60 steps/s", compute.preset, ("train.epochs=3",), warmup_steps=5,
                                  repeats=5))
            return ui.ui_overhead(jobs, 1 if quick else args.repeats, log, pty=True, quick=quick)

        run_section("ui", ui_section)

    if "startup" in wanted:
        run_section("startup", lambda: ui.startup(2 if quick else 5, log))

    if "process" in wanted:
        run_section("process", lambda: process.process(quick, log))

    if "accumulation" in wanted:
        run_section("accumulation", lambda: scaling.accumulation(compute, log))

    if "ddp" in wanted:
        def ddp_section():
            job = compute if not quick else J.Job("ddp-quick", "tiny", tiny.preset, ("train.max_steps=30",))
            if not quick:
                job = job.with_overrides("train.epochs=1")
            return scaling.ddp(job, 1 if quick else (args.repeats or 3), log)

        run_section("ddp", ddp_section)

    if "scale" in wanted:
        def scale_section():
            last = args.steps or (3_000 if quick else 1_000_000)
            marks = [m for m in (1_000, 10_000, 100_000, 1_000_000) if m < last][-2 if quick else -2:] + [last]
            marks = [m for m in marks if m >= (1_000 if quick else 10_000)]
            # A 10-8-1 MLP on diabetes with plain SGD: ~2,000+ steps/s here, so 10^6 steps take minutes; the
            # loss of every step is logged (logging.every = 1) and the val split evaluated every epoch.
            job = J.Job("scale", "tiny model, many steps", tiny.preset,
                        ("model.hidden=[8]", "optimizer.name=sgd", "optimizer.momentum=0.0", "optimizer.lr=0.0001",
                         "logging.every=1"))
            return scaling.scale(job, marks, args.runs or (200 if quick else 1_000), log)

        run_section("scale", scale_section)

    if "overhead" in wanted and (args.only or not quick):  # --quick runs it only when named: --only overhead
        run_section("overhead", lambda: scaling.overhead(quick, log))

    if quick:
        # Quick mode proves the script works, so its sections may overlap (and share worker processes).
        from concurrent.futures import ThreadPoolExecutor

        share_workers(True)
        try:
            first = {"ui": 0, "throughput": 1, "ddp": 2}  # the longest first
            order = sorted(range(len(planned)), key=lambda i: first.get(planned[i][0], 9))
            with ThreadPoolExecutor(max_workers=3) as pool:
                futures = {i: pool.submit(execute, *planned[i]) for i in order}
                futures = [futures[i] for i in range(len(planned))]
                done = [f.result() for f in futures]
        finally:
            share_workers(False)
        for secs in done:
            for s in secs:
                sections.append(s)
                print(s.render() + "\n", flush=True)
    else:
        for name, fn in planned:
            for s in execute(name, fn):
                sections.append(s)
                print(s.render() + "\n", flush=True)

    targets = evaluate_targets(sections, quick)
    tsec = Section("targets", "Targets" + (" (quick mode: shown, not judged)" if quick else ""),
                   ["target", "measured", "verdict"], targets)
    print(tsec.render(), flush=True)
    total = time.perf_counter() - started
    print(f"\n(benchmark took {total:.0f} s)")
    out_path = args.json or (BENCH_DIR / "results" / ("latest-quick.json" if quick else "latest.json"))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({
        "command": command.strip(), "quick": quick, "machine": info, "seconds": total,
        "sections": {s.key: s.as_json() for s in sections}, "targets": targets}, indent=1, default=str) + "\n")
    log(f"figures written to {out_path}")
    return 0


def evaluate_targets(sections: list[Section], quick: bool) -> list[list[str]]:
    """The issue's targets, each with the figure measured in this run and met / MISSED."""
    by = {s.key: s for s in sections}
    rows = []

    def fig(key: str, name: str) -> dict:
        s = by.get(f"throughput-{key}")
        return s.data.get("figures", {}).get(name, {}) if s else {}

    for key, floor, band in (("compute", 1.00, 0.97), ("tiny", 1.00, None)):
        tui = fig(key, "tui-trainer")
        if not tui.get("vs_best"):
            continue
        v = tui["vs_best"]
        ok = v >= floor or (band is not None and v >= band)
        note = " (in the noise band)" if band is not None and band <= v < floor else ""
        rows.append([f"{key}: tui-trainer >= {floor:.2f}x the best hand-written loop"
                     + (f" (noise band {band:.2f}x)" if band else ""), f"{v:.2f}x{note}", verdict(ok)])
        for other, label in (("lightning", "Lightning"), ("seed", "the seed-style loop")):
            o = fig(key, other)
            if o.get("samples_per_s"):
                rows.append([f"{key}: faster than {label}", f"{tui['samples_per_s'] / o['samples_per_s']:.2f}x",
                             verdict(tui["samples_per_s"] > o["samples_per_s"])])
    s = by.get("ui")
    if s and s.status == "ok":
        for key, f in s.data.items():
            # Judged on the real commands: the app trains in a worker process, as the terminal rows measure.
            if not key.endswith("-terminal"):
                continue
            if isinstance(f, dict) and f.get("ratio") is not None:
                rows.append([f"UI attached >= 0.95x headless ({key})", f"{f['ratio']:.3f}x", verdict(f["ratio"] >= 0.95)])
            if isinstance(f, dict) and f.get("frames_per_s") is not None:
                rows.append([f"UI draws at most ~10 times a second ({key})", f"{f['frames_per_s']:.1f}/s",
                             verdict(f["frames_per_s"] <= 11)])
    elif s:
        rows.append(["UI attached >= 0.95x headless", s.status, "-"])
    s = by.get("startup")
    if s:
        if s.data.get("help_s") is not None:
            rows.append(["`tui-trainer --help` under 0.3 s", f"{s.data['help_s']:.3f} s", verdict(s.data["help_s"] < 0.3)])
        if s.data.get("first_frame_s") is not None:
            ok = s.data["first_frame_s"] < 1.0 and not s.data.get("torch_loaded_at_first_frame")
            rows.append(["first frame under 1.0 s, torch not yet imported", f"{s.data['first_frame_s']:.3f} s"
                         + (", torch imported" if s.data.get("torch_loaded_at_first_frame") else ""), verdict(ok)])
        elif s.data.get("first_frame"):
            rows.append(["first frame under 1.0 s", s.data["first_frame"], "-"])
    s = by.get("process")
    if s and s.status == "ok":
        first, script = s.data.get("first_step_s"), s.data.get("script_first_step_s")
        if first and script:
            ours, theirs = sorted(first)[len(first) // 2], sorted(script)[len(script) // 2]
            rows.append(["whole process: exec to the first optimizer step no later than the hand-written script's",
                         f"{ours:.2f} s against {theirs:.2f} s", verdict(ours <= theirs)])
        for key in sorted((k for k in s.data if k.startswith("epochs-")), key=lambda k: int(k.split("-")[1])):
            ratio = s.data[key].get("ratio")
            if ratio:
                rows.append([f"whole process, default job {key.split('-')[1]} epochs: tui-trainer >= 1.00x the "
                             "hand-written script", f"{ratio:.2f}x", verdict(ratio >= 1.0)])
    s = by.get("scale")
    if s:
        if s.data.get("memory_growth_mib") is not None:
            m = s.data["memory"]
            marks = sorted(int(k) for k in m["rss_at"])
            rows.append([f"memory flat: RSS growth {marks[0]:,} -> {marks[-1]:,} steps within 20 MiB",
                         f"{s.data['memory_growth_mib']:+.1f} MiB", verdict(abs(s.data["memory_growth_mib"]) <= 20)])
        if s.data.get("list_runs_s") is not None:
            rows.append(["listing 1,000 runs under 1 s" if not quick else "listing the runs under 1 s",
                         f"{s.data['list_runs_s']:.3f} s", verdict(s.data["list_runs_s"] < 1.0)])
        if s.data.get("plot_s") is not None:
            lines = s.data["plot"]["lines"]
            rows.append([f"a {lines:,}-line metrics file plotted in under 2 s", f"{s.data['plot_s']:.3f} s",
                         verdict(s.data["plot_s"] < 2.0)])
    s = by.get("gpu-summary")
    if s:
        bf = s.data.get("bf16-mixed", {})
        if bf.get("vs_fp32"):
            rows.append(["GPU: bf16-mixed >= 2.5x fp32 throughput", f"{bf['vs_fp32']:.2f}x", verdict(bf["vs_fp32"] >= 2.5)])
        if bf.get("mfu"):
            rows.append(["GPU: bf16-mixed MFU >= 40%", f"{100 * bf['mfu']:.1f}%", verdict(bf["mfu"] >= 0.40)])
    elif by.get("gpu"):
        rows.append(["GPU targets", by["gpu"].status + ": " + "; ".join(by["gpu"].notes), "-"])
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
