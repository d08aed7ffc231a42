"""The GPU check: one command that proves tui-trainer's GPU paths on a GPU machine, in under 8 minutes.

    python tools/gpu_check.py [--out DIR] [--budget SECONDS]
    python tools/gpu_check.py --dry-run [--quick]      # no GPU: every case through its CPU stand-in

Every case runs the real `tui-trainer` command. A training case starts a run with far more steps than
it will take, waits for the run's first progress record (a loss line in metrics.jsonl), and then,
while the run trains: samples NVML (`tui-trainer gpus --json`) and `nvidia-smi` side by side, checks
that the run's process is in both process lists, measures throughput after a warm-up from the run's
own per-window rates, and stops the run with Ctrl-C (which checkpoints). Each case has its own time
bound; a case that fails or hangs is recorded and the check goes on. The report is written as it goes
(OUT/report.md, one line per case as soon as the case ends), so one hang never loses the other results.
Paste the report into docs/gpu-validation.md with the date and the device.

`--dry-run` runs every case through a CPU stand-in (strategy cpu or gloo processes, a small model) with
the same bounds: it proves the script itself, not the GPU. tests/test_gpu_check.py runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "tf32", "bf16-mixed", "fp16-mixed", "bf16-true")
LONG = ["train.max_steps=10000000", "train.eval_every=10000000", "train.checkpoint_every=0"]
SMALL = ["data.samples=4000", "model.hidden=[64, 64]", "data.batch_size=256"]  # CPU stand-ins: seconds
# On the CPU only fp32, bf16-mixed and bf16-true run; the stand-in for the others is fp32.
CPU_PRECISION = {"tf32": "fp32", "fp16-mixed": "fp32"}


@dataclass
class Case:
    """One check. `overrides` on a GPU; `cpu` is the stand-in's overrides (None: no CPU stand-in)."""

    label: str
    preset: str
    overrides: list[str]
    cpu: list[str] | None
    kind: str = "long"  # long: stopped while training; complete: runs to its end; resume: resumes a case;
    # sweep: `tui-trainer sweep` over `overrides` (its arguments), its table copied into the report
    gpus: int = 1
    note: str = ""
    compare: bool = False  # sample NVML beside nvidia-smi while it trains
    resumes: str = ""  # kind "resume": the label of the case whose stopped run it resumes


def cases() -> list[Case]:
    out = []
    for precision in PRECISIONS:
        cpu_precision = CPU_PRECISION.get(precision, precision)
        out.append(Case(f"single {precision}", "synthetic-large", [*LONG, f"train.precision={precision}"],
                        [*LONG, *SMALL, "strategy.name=cpu", "strategy.devices=1", f"train.precision={cpu_precision}"],
                        compare=precision == "bf16-mixed",
                        note="" if cpu_precision == precision else f"CPU stand-in: {cpu_precision}"))
    out += [
        Case("resume single bf16-mixed", "", [], [], kind="resume", resumes="single bf16-mixed",
             note="resumes the stopped bf16-mixed run: model, optimizer, RNG states of the run's own GPU"),
        Case("single tiny diabetes bf16", "single-gpu-bf16", ["train.max_steps=600"],
             ["strategy.name=cpu", "strategy.devices=1", "train.max_steps=100"], kind="complete",
             note="tiny data: a GPU may be slower than the CPU (per-step launch overhead)"),
        Case("cpu tiny diabetes fp32", "cpu-quick", ["train.max_steps=600"], ["train.max_steps=100"],
             kind="complete"),
        Case("ddp 1 process nccl bf16", "synthetic-large", [*LONG, "strategy.name=ddp", "strategy.devices=1"],
             [*LONG, *SMALL, "strategy.name=ddp", "strategy.devices=1", "strategy.accelerator=cpu",
              "train.precision=fp32"],
             note="one process: torchrun, nccl init and DDP's hooks run, but no cross-rank all-reduce "
                  "(no gradient crosses a GPU); that needs the 2-process case (2+ GPUs)"),
        Case("model-parallel 2 stages on GPU 0", "model-parallel-2gpu", [*LONG, "strategy.devices=[0, 0]"],
             [*LONG, *SMALL, "strategy.devices=[0, 0]", "strategy.accelerator=cpu", "train.precision=fp32"],
             note="both stages on GPU 0: the activation copy between GPUs is not exercised (needs 2+ GPUs)"),
        Case("dp GPUs 0,1 fp16", "dp-fp16", LONG, None, gpus=2,
             note="DataParallel: replica threads, autocast entered in each replica"),
        Case("dp GPUs 0,1 bf16-mixed", "dp-fp16", [*LONG, "train.precision=bf16-mixed"], None, gpus=2,
             note="bf16 in DataParallel's replica threads (issue 16, item 1)"),
        Case("ddp 2 processes", "ddp-bf16-accum4", LONG,
             [*LONG, *SMALL, "strategy.devices=2", "strategy.accelerator=cpu", "train.precision=fp32"], gpus=2,
             note="the cross-rank all-reduce (nccl on GPUs, gloo in the CPU stand-in)"),
        Case("sweep precision x accumulate x batch", "synthetic-large",
             ["--grid", "train.precision=fp32,bf16-mixed", "--grid", "train.accumulate=1,4",
              "--grid", "data.batch_size=1024,4096", "--steps", "200"],
             ["--grid", "train.precision=fp32,bf16-mixed", "--grid", "train.accumulate=1,2",
              "--grid", "data.batch_size=128,256", "--steps", "20", *[a for o in SMALL for a in ("--set", o)],
              "--set", "strategy.name=cpu", "--set", "strategy.devices=1"],
             kind="sweep", note="issue 14's GPU sweep: each row a real run of 200 steps (the first 20 untimed)"),
    ]
    return out


@dataclass
class Bounds:
    """Seconds: how long each phase may take (GPU defaults; --quick shrinks the waits for the dry run)."""

    first_record: float = 120.0  # start-up to the first progress record (imports, data, CUDA, torchrun)
    warmup: float = 6.0  # after the first record, before throughput is measured
    measure: float = 12.0  # throughput window: thousands of steps of synthetic-large on a current GPU
    stop: float = 60.0  # Ctrl-C to exit
    complete: float = 120.0  # a run that must end on its own
    budget: float = 480.0  # the whole check (8 minutes)


@dataclass
class Result:
    case: str
    status: str = "not run"
    samples_per_s: float | None = None
    windows: int = 0
    peak_mib: float | None = None
    skipped: int | None = None
    checks: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    note: str = ""


class Report:
    """The report, appended to OUT/report.md as each case ends (and printed)."""

    def __init__(self, path: Path, title: str):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(title + "\n\n")

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text + "\n")


def tui(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_trainer", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def read_lines(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written
            pass
    return out


def wait_for(predicate, timeout: float, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return None


class Run:
    """One `tui-trainer run` (or `resume`) process, in its own session so a hang can be killed whole."""

    def __init__(self, args: list[str], case_dir: Path, run_dir: Path | None = None):
        case_dir.mkdir(parents=True, exist_ok=True)
        self.case_dir = case_dir
        self.fixed = run_dir  # resume: the run's directory is known, and its earlier records are not new
        self.before = len(self.progress()) if run_dir else 0
        self.log = open(case_dir / "cli.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "tui_trainer", *args], stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def run_dir(self) -> Path | None:
        if self.fixed is not None:
            return self.fixed
        found = sorted(p.parent for p in self.case_dir.glob("runs/*/config.toml"))
        return found[-1] if found else None

    def progress(self) -> list[dict]:
        """The run's progress records (loss lines), those written by this process only."""
        run_dir = self.run_dir()
        lines = [r for r in read_lines(run_dir / "metrics.jsonl") if "loss" in r] if run_dir else []
        return lines[getattr(self, "before", 0):]

    def stop(self, timeout: float) -> int | None:
        """Ctrl-C (the run checkpoints and exits 130); kill the whole session if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self.log.close()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(10)

    def pids(self) -> set[int]:
        """The CLI's pid and its descendants' (ddp ranks run under torchrun, in their own session)."""
        pids = {self.process.pid}
        try:
            import psutil

            pids |= {c.pid for c in psutil.Process(self.process.pid).children(recursive=True)}
        except Exception:  # psutil missing or the process gone: the CLI's own pid is still checked
            pass
        return pids

    def summary(self) -> dict:
        run_dir = self.run_dir()
        try:
            return json.loads((run_dir / "summary.json").read_text()) if run_dir else {}
        except (OSError, ValueError):
            return {}


def sample_gpus(pids: set[int], gpu: bool) -> list[str]:
    """NVML through `tui-trainer gpus --json`, then nvidia-smi, while the run trains; one line per finding."""
    checks = []
    try:
        ours = json.loads(tui("gpus", "--json").stdout)
    except Exception as exc:
        return [f"FAIL tui-trainer gpus --json: {type(exc).__name__}: {exc}"]
    if not ours.get("available"):
        checks.append(f"{'FAIL' if gpu else 'ok (CPU stand-in)'} NVML: {ours.get('reason')}")
    ours_pids = {p["pid"] for g in ours.get("gpus", []) for p in g.get("processes") or ()}
    busy = [(g["index"], g.get("utilization_gpu_percent"), g.get("memory_used_mib")) for g in ours.get("gpus", [])]
    if busy:
        checks.append("NVML: " + "; ".join(f"GPU {i} util {u}% used {m} MiB" for i, u, m in busy))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        checks.append(f"{'FAIL' if gpu else 'ok (CPU stand-in)'} nvidia-smi: not found")
        smi_rows, smi_pids = [], set()
    else:
        query = subprocess.run([smi, "--query-gpu=uuid,memory.used,memory.total,utilization.gpu",
                                "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30).stdout
        apps = subprocess.run([smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=30).stdout
        smi_rows = [[c.strip() for c in line.split(",")] for line in query.strip().splitlines()
                    if len(line.split(",")) == 4]
        smi_pids = {_number(line.split(",")[0]) for line in apps.strip().splitlines() if line.strip()}
        by_uuid = {g.get("uuid"): g for g in ours.get("gpus", [])}
        for uuid, used, total, util in smi_rows:
            g = by_uuid.get(uuid)
            if g is None:  # a MIG instance has its own UUID; nvidia-smi's --query-gpu lists the boards
                continue
            if g.get("memory_used_mib") is None or _number(used) is None:
                checks.append(f"FAIL memory used: NVML {g.get('memory_used_mib')}, nvidia-smi {used}")
                continue
            diff = abs(int(g["memory_used_mib"]) - _number(used))
            checks.append(f"{'ok' if diff <= 64 else 'FAIL'} memory used: NVML {g['memory_used_mib']} MiB, "
                          f"nvidia-smi {used} MiB (differ by {diff}; sampled a moment apart)")
            if g.get("memory_total_mib") != _number(total):
                checks.append(f"FAIL memory total: NVML {g.get('memory_total_mib')}, nvidia-smi {total}")
            checks.append(f"{'ok' if (_number(util) or 0) > 0 else 'FAIL'} nvidia-smi utilisation {util}% "
                          "(the GPU is busy while the run trains)")
    if gpu:
        checks.append(f"{'ok' if pids & ours_pids else 'FAIL'} run's pid(s) {sorted(pids)} in NVML's process list "
                      f"{sorted(ours_pids)}")
        if smi is not None:
            checks.append(f"{'ok' if pids & smi_pids else 'FAIL'} run's pid(s) in nvidia-smi's {sorted(smi_pids)} "
                          "(a container's PID namespace shows other numbers: then compare by memory)")
    else:
        alive = all(_alive(p) for p in pids)
        checks.append(f"{'ok' if alive else 'FAIL'} run's pid(s) {sorted(pids)} alive (CPU stand-in: no GPU list)")
    return checks


def _number(text: str) -> int | None:
    """An integer nvidia-smi printed, or None for "[N/A]", "[Not Supported]" and the like."""
    try:
        return int(float(text.strip()))
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def long_case(case: Case, args_: list[str], case_dir: Path, bounds: Bounds, gpu: bool,
              run_dir: Path | None = None) -> Result:
    """Start a long run, wait for its first record, sample while it trains, measure, stop it."""
    result = Result(case.label, note=case.note)
    run = Run(args_, case_dir, run_dir)
    try:
        first = wait_for(lambda: run.progress() or run.process.poll() is not None, bounds.first_record)
        if not first or run.process.poll() is not None:
            result.status = "failed"
            result.error = "no progress record within {:.0f} s{}".format(
                bounds.first_record, "" if run.process.poll() is None else f" (exit {run.process.returncode})")
            return result
        if case.compare:
            result.checks += sample_gpus(run.pids(), gpu)
        elif gpu:  # every GPU case: at least its pid in NVML's list
            result.checks += [c for c in sample_gpus(run.pids(), gpu) if "pid" in c]
        else:
            alive = all(_alive(p) for p in run.pids())
            result.checks.append(f"{'ok' if alive else 'FAIL'} run's pid(s) alive (CPU stand-in: no GPU list)")
        time.sleep(bounds.warmup)
        seen = {r["step"] for r in run.progress()}
        time.sleep(bounds.measure)
        rates = [r["samples_per_s"] for r in run.progress() if r["step"] not in seen and r.get("samples_per_s")]
        if rates:
            result.samples_per_s = statistics.median(rates)
            result.windows = len(rates)
        if run.process.poll() is not None:
            result.status = "failed"
            result.error = f"the run ended while measured (exit {run.process.returncode})"
            return result
        code = run.stop(bounds.stop)
        summary = run.summary()
        result.peak_mib, result.skipped = summary.get("peak_memory_mib"), summary.get("skipped_steps")
        result.status = summary.get("status", "?") if code == 130 else f"stop failed (exit {code})"
        if summary.get("error"):
            result.error = summary["error"]
        return result
    finally:
        if run.process.poll() is None:
            run.kill()


def complete_case(case: Case, args_: list[str], case_dir: Path, bounds: Bounds) -> Result:
    result = Result(case.label, note=case.note)
    run = Run(args_, case_dir)
    try:
        code = run.process.wait(bounds.complete)
    except subprocess.TimeoutExpired:
        run.kill()
        result.status, result.error = "failed", f"did not end within {bounds.complete:.0f} s"
        return result
    summary = run.summary()
    result.status = summary.get("status", f"exit {code}")
    result.samples_per_s, result.peak_mib = summary.get("samples_per_s"), summary.get("peak_memory_mib")
    result.skipped, result.error = summary.get("skipped_steps"), summary.get("error") or ""
    return result


def sweep_case(case: Case, args_: list[str], case_dir: Path, bounds: Bounds, timeout: float) -> Result:
    """`tui-trainer sweep` to its end; every row of its sweep.json becomes a check line of the report."""
    result = Result(case.label, note=case.note)
    argv = ["sweep", case.preset, *args_, "--headless", "--runs-dir", str(case_dir / "runs"),
            "--sweeps-dir", str(case_dir / "sweeps")]
    run = Run(argv, case_dir)
    try:
        code = run.process.wait(timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        code = None
    found = sorted(case_dir.glob("sweeps/*/sweep.json"))
    rows = json.loads(found[-1].read_text()).get("rows", []) if found else []
    for row in rows:
        values = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in row.get("values", {}).items())
        rate = f"{row['samples_per_s']:,.0f} samples/s" if row.get("samples_per_s") else "-"
        step = f"{row['step_ms']:.2f} ms/step" if row.get("step_ms") else "-"
        peak = row.get("peak_memory_mib")
        peak = ", ".join(f"{v:,.0f}" for v in peak.values()) if isinstance(peak, dict) else (
            f"{peak:,.0f}" if isinstance(peak, (int, float)) else "-")
        marks = " ".join(m for m, on in (("fastest", row.get("fastest")), ("lowest memory", row.get("lowest_memory")))
                         if on)
        result.checks.append(f"{'ok' if row.get('status') == 'completed' else 'FAIL'} {values}: {row.get('status')} "
                             f"{rate}, {step}, peak {peak} MiB, loss {row.get('final_loss')} {marks}"
                             + (f" ({row['reason']})" if row.get("reason") else ""))
    if code is None:
        result.status, result.error = "failed", f"did not end within {timeout:.0f} s"
    elif code != 0 or not rows:
        result.status, result.error = "failed", f"exit {code}, {len(rows)} rows"
    else:
        result.status = "completed"
        fastest = next((r for r in rows if r.get("fastest")), None)
        result.samples_per_s = fastest.get("samples_per_s") if fastest else None
    return result


def run_case(case: Case, work: Path, bounds: Bounds, gpu: bool, done: dict[str, Path],
             left: float = 300.0) -> Result:
    case_dir = work / case.label.replace(" ", "_").replace(",", "")
    overrides = case.overrides if gpu else case.cpu
    if case.kind == "sweep":
        return sweep_case(case, overrides, case_dir, bounds, max(30.0, left - 10))
    if case.kind == "resume":
        previous = done.get(case.resumes)
        if previous is None:
            return Result(case.label, "not run", error=f"needs a stopped run of \"{case.resumes}\"", note=case.note)
        stopped_at = json.loads((previous / "summary.json").read_text()).get("step", 0)
        result = long_case(case, ["resume", str(previous), "--headless", "--progress-every", "1"], case_dir,
                           bounds, gpu, run_dir=previous)
        log = (case_dir / "cli.log").read_text(errors="replace") if (case_dir / "cli.log").exists() else ""
        steps = [r["step"] for r in read_lines(previous / "metrics.jsonl") if "loss" in r]
        resumed = f"resumed from step {stopped_at}" in log and steps.count(stopped_at + 1) == 1
        result.checks.append(f"{'ok' if resumed else 'FAIL'} resumed from its checkpoint at step {stopped_at} "
                             "and continued at the next step")
        return result
    args_ = ["run", case.preset, "--headless", "--runs-dir", str(case_dir / "runs"), "--progress-every", "1",
             *[item for o in overrides for item in ("--set", o)]]
    if case.kind == "complete":
        return complete_case(case, args_, case_dir, bounds)
    return long_case(case, args_, case_dir, bounds, gpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")), help="where report.md goes")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check (default 480)")
    parser.add_argument("--dry-run", action="store_true", help="no GPU needed: every case's CPU stand-in")
    parser.add_argument("--quick", action="store_true", help="short waits (with --dry-run: about a minute)")
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    bounds = Bounds(budget=args.budget)
    if args.quick:
        bounds = Bounds(first_record=120.0, warmup=0.5, measure=1.5, stop=60.0, complete=120.0, budget=args.budget)
    import torch

    gpu = not args.dry_run
    if gpu and not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: nothing to check here (python tools/gpu_check.py --dry-run walks "
              "the cases on the CPU)")
        return 1
    gpus = torch.cuda.device_count() if gpu else 0
    device = f"{torch.cuda.get_device_name(0)} x{gpus}" if gpu else "CPU stand-ins (dry run: proves the script)"
    report = Report(args.out / "report.md", f"## GPU check: {device}, torch {torch.__version__}, "
                                            f"{time.strftime('%Y-%m-%d %H:%M')}")
    inventory = tui("gpus", "--json")
    try:
        inv = json.loads(inventory.stdout)
        report.line(f"- inventory: {len(inv.get('gpus', []))} GPU(s) visible; driver {inv.get('driver_version')}, "
                    f"CUDA {inv.get('cuda_version')}; {inv.get('reason') or 'ok'}; "
                    f"MIG: {[g['index'] for g in inv.get('gpus', []) if g.get('mig')] or 'none'}")
    except ValueError:
        report.line(f"- inventory: FAIL tui-trainer gpus --json: {inventory.stderr.strip()[-200:]}")
    report.line(f"- bounds: first record {bounds.first_record:.0f} s, warm-up {bounds.warmup:g} s, throughput "
                f"window {bounds.measure:g} s, stop {bounds.stop:.0f} s, whole check {bounds.budget:.0f} s")
    report.line("")
    report.line("| case | status | samples/s (median of the run's windows after warm-up) | windows | peak MiB | "
                "skipped | seconds | note / error |")
    report.line("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    started = time.monotonic()
    results: list[Result] = []
    done: dict[str, Path] = {}
    seen_stand_ins: dict[tuple, str] = {}
    for case in cases():
        clock = time.monotonic()
        left = bounds.budget - (clock - started)
        if not gpu and case.cpu is None:
            result = Result(case.label, "no CPU stand-in", note=f"needs {case.gpus} GPUs; {case.note}")
        elif gpu and case.gpus > gpus:
            result = Result(case.label, "skipped", note=f"needs {case.gpus} GPUs, this machine has {gpus}; {case.note}")
        elif left < bounds.warmup + bounds.measure + 10:
            result = Result(case.label, "not run", error=f"out of the {bounds.budget:.0f} s budget", note=case.note)
        elif not gpu and args.quick and case.kind != "resume" and (case.preset, *case.cpu) in seen_stand_ins:
            result = Result(case.label, "same stand-in",
                            note=f"its CPU stand-in is the \"{seen_stand_ins[(case.preset, *case.cpu)]}\" case's")
        else:
            if not gpu and case.cpu is not None:
                seen_stand_ins[(case.preset, *case.cpu)] = case.label
            try:
                result = run_case(case, work, bounds, gpu, done, left)
            except Exception as exc:  # one broken case never stops the check
                result = Result(case.label, "failed", error=f"{type(exc).__name__}: {exc}", note=case.note)
        result.seconds = time.monotonic() - clock
        if result.status == "stopped":
            run_dirs = sorted((work / case.label.replace(" ", "_").replace(",", "")).glob("runs/*/config.toml"))
            if run_dirs:
                done[case.label] = run_dirs[-1].parent
        results.append(result)
        rate = "-" if result.samples_per_s is None else f"{result.samples_per_s:,.0f}"
        peak = "-" if result.peak_mib is None else f"{result.peak_mib:,.0f}"
        text = "; ".join(t for t in (result.note, result.error) if t).replace("|", "/")
        report.line(f"| {case.label} | {result.status} | {rate} | {result.windows or '-'} | {peak} | "
                    f"{'-' if result.skipped is None else result.skipped} | {result.seconds:.0f} | {text} |")
        for check in result.checks:
            report.line(f"|  | {check.replace('|', '/')} | | | | | | |")
    report.line("")
    fp32 = next((r.samples_per_s for r in results if r.case == "single fp32"), None)
    if fp32:
        ratios = [f"{r.case.split()[-1]} {r.samples_per_s / fp32:.2f}x" for r in results
                  if r.case.startswith("single ") and r.samples_per_s and "tiny" not in r.case]
        report.line(f"- throughput against fp32 (single, synthetic-large, after warm-up): {', '.join(ratios)}")
    report.line("- not exercised by a 1-process ddp case: the cross-rank all-reduce; by model-parallel on "
                "[0, 0]: the copy of activations between GPUs (both need 2+ GPUs)")
    report.line(f"- whole check: {time.monotonic() - started:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
    bad = [r for r in results if r.status in ("failed", "not run") or r.status.startswith("stop failed")
           or any(c.startswith("FAIL") for c in r.checks)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
