"""The GPU checks, as one script for a lent GPU machine: every path that CPU CI cannot run for real.

    python tools/gpu_check.py [--steps 300] [--out DIR]

Runs through the real `tui-trainer` command: `single` in every precision on `synthetic-large`, `ddp`
with one process (nccl), `model-parallel` with both stages on GPU 0, `dp` when 2+ GPUs exist, and
`tui-trainer gpus --json` against `nvidia-smi` while a run holds memory. Prints a Markdown report
(paste it into docs/gpu-validation.md with the date and the device) and writes it to OUT/report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRECISIONS = ("fp32", "tf32", "bf16-mixed", "fp16-mixed", "bf16-true")


def tui(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_trainer", *args], capture_output=True, text=True,
                          timeout=timeout)


def run_case(label: str, runs_dir: Path, preset: str, overrides: list[str]) -> dict:
    """One headless run; its summary figures (or its error)."""
    case_dir = runs_dir / label.replace(" ", "_")
    started = time.perf_counter()
    result = tui("run", preset, "--headless", "--runs-dir", str(case_dir),
                 *[item for o in overrides for item in ("--set", o)])
    wall = time.perf_counter() - started
    runs = sorted(case_dir.glob("*/summary.json"))
    summary = json.loads(runs[-1].read_text()) if runs else {}
    return {"case": label, "exit": result.returncode, "status": summary.get("status", "-"),
            "samples_per_s": summary.get("samples_per_s", 0.0), "peak_mib": summary.get("peak_memory_mib"),
            "final_loss": summary.get("final_loss"), "skipped": summary.get("skipped_steps", 0),
            "wall_s": wall, "error": summary.get("error") or (result.stderr.strip().splitlines() or [""])[-1]}


def compare_with_nvidia_smi(runs_dir: Path, steps: int) -> list[str]:
    """`tui-trainer gpus --json` next to nvidia-smi, sampled while a run holds GPU memory."""
    run = subprocess.Popen([sys.executable, "-m", "tui_trainer", "run", "synthetic-large", "--headless",
                            "--runs-dir", str(runs_dir / "held"), "--set", f"train.max_steps={steps * 4}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = []
    try:
        time.sleep(25)  # past start-up: the run now holds its memory
        ours = tui("gpus", "--json", timeout=60).stdout
        smi = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.used,memory.total,utilization.gpu,"
                              "temperature.gpu,power.draw", "--format=csv"], capture_output=True, text=True).stdout
        lines += ["### tui-trainer gpus --json", "```json", ours.strip(), "```",
                  "### nvidia-smi (sampled right after)", "```", smi.strip(), "```"]
    finally:
        run.terminate()
        run.wait(60)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per case")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: nothing to check here")
        return 1
    gpus = torch.cuda.device_count()
    runs_dir = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    steps = [f"train.max_steps={args.steps}", "train.eval_every=0", "train.checkpoint_every=0"]
    cases = []
    for precision in PRECISIONS:
        cases.append(run_case(f"single {precision}", runs_dir, "synthetic-large", [*steps, f"train.precision={precision}"]))
        print(cases[-1], flush=True)
    cases.append(run_case("single tiny diabetes bf16", runs_dir, "single-gpu-bf16", []))
    cases.append(run_case("cpu tiny diabetes fp32", runs_dir, "cpu-quick", []))
    cases.append(run_case("ddp 1 process nccl bf16", runs_dir, "synthetic-large",
                          [*steps, "strategy.name=ddp", "strategy.devices=1"]))
    cases.append(run_case("model-parallel 2 stages on GPU 0", runs_dir, "model-parallel-2gpu",
                          [*steps, "strategy.devices=[0, 0]"]))
    if gpus >= 2:
        cases.append(run_case("dp GPUs 0,1 fp16", runs_dir, "dp-fp16", steps))
        cases.append(run_case("ddp 2 processes", runs_dir, "ddp-bf16-accum4", steps))
    fp32 = next(c["samples_per_s"] for c in cases if c["case"] == "single fp32") or 1.0
    report = [f"## GPU check: {torch.cuda.get_device_name(0)} x{gpus}, torch {torch.__version__}, "
              f"{time.strftime('%Y-%m-%d')}", "",
              "| case | status | samples/s | vs fp32 | peak MiB | skipped | final loss | error |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for c in cases:
        peak = "-" if c["peak_mib"] is None else f"{c['peak_mib']:,.0f}"
        loss = "-" if c["final_loss"] is None else f"{c['final_loss']:.4g}"
        report.append(f"| {c['case']} | {c['status']} | {c['samples_per_s']:,.0f} | "
                      f"{c['samples_per_s'] / fp32:.2f}x | {peak} | {c['skipped']} | {loss} | {c['error'][:80]} |")
    report += ["", *compare_with_nvidia_smi(runs_dir, args.steps)]
    text = "\n".join(report)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n")
    return 0 if all(c["status"] == "completed" for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
