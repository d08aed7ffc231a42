"""What every benchmark section shares: the machine's description, fair timing, workers, tables.

Fair timing on a noisy machine: every figure is a median of repeats taken in alternating order,
compared as a ratio measured in the same run. Before each timed repeat we wait (a bounded time)
for the rest of the machine to go quiet, and we record how busy it was during the repeat, so a
figure taken while another process ate a core is visible as such instead of silently wrong.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]  # the repository
BENCH_DIR = Path(__file__).resolve().parent
RESULT_PREFIX = "BENCH-RESULT "  # a worker's answer line; anything else a library prints is passed over


# --------------------------------------------------------------------------------------------- machine
def machine_info() -> dict:
    """Where the figures come from: CPU, cores, memory, torch, GPU, date."""
    info = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }
    out = subprocess.run([sys.executable, "-c", _VERSIONS], capture_output=True, text=True, cwd=ROOT)
    try:
        info.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        info["torch"] = "?"
    return info


_VERSIONS = """
import json, torch
try:
    import lightning; lv = lightning.__version__
except ImportError:
    lv = None
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
print(json.dumps({"torch": torch.__version__, "lightning": lv, "gpu": gpu, "threads": torch.get_num_threads()}))
"""


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if info.get("gpu") else ", no GPU"
    return (f"{info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, torch {info.get('torch')}"
            f"{gpu}, Python {info['python']}, lightning {info.get('lightning') or 'not installed'}")


# ------------------------------------------------------------------------------------------ quietness
class Busy:
    """How much CPU the rest of the machine used while we measured (0.0 = idle, 1.0 = every core)."""

    def __init__(self, *own: psutil.Process):
        self.own = own
        self.cores = psutil.cpu_count(logical=True) or 1

    def _own_cpu(self) -> float:
        total = 0.0
        for proc in self.own:
            try:
                procs = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system + getattr(t, "children_user", 0) + getattr(t, "children_system", 0)
                except psutil.Error:
                    pass
        return total

    def __enter__(self) -> "Busy":
        self._t = time.perf_counter()
        self._sys = _busy_seconds()
        self._mine = self._own_cpu()
        return self

    def __exit__(self, *exc) -> None:
        wall = max(time.perf_counter() - self._t, 1e-6)
        others = (_busy_seconds() - self._sys) - (self._own_cpu() - self._mine)
        self.others = max(0.0, others / (wall * self.cores))


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


# How hard to look for a quiet machine: --quick sets both to 0 (its figures are not judged).
QUIET = {"max_wait": 20.0, "retries": 2}


def wait_for_quiet(threshold: float = 0.10, max_wait: float | None = None, window: float = 0.5) -> float:
    """Wait (at most `max_wait` s) until other processes use under `threshold` of the CPU; return that share."""
    max_wait = QUIET["max_wait"] if max_wait is None else max_wait
    if max_wait <= 0:
        return 0.0
    deadline = time.monotonic() + max_wait
    me = psutil.Process()
    while True:
        with Busy(me) as busy:
            time.sleep(window)
        if busy.others < threshold or time.monotonic() > deadline:
            return busy.others


# --------------------------------------------------------------------------------------------- workers
class Worker:
    """A benchmark worker process (benchmarks/worker.py): JSON commands in, JSON results out.

    It stays up between repeats, so imports and warm-up are paid once and each contestant's peak
    RSS is its own process's.
    """

    def __init__(self, name: str, env: dict | None = None):
        self.name = name
        full_env = {**os.environ, **(env or {}), "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen([sys.executable, str(BENCH_DIR / "worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                     env=full_env, bufsize=1)
        self.ps = psutil.Process(self.proc.pid)
        self.noise: list[str] = []
        self._lock = threading.Lock()

    def call(self, **command) -> dict:
        """Send one command; return its result (a dict with "error" when the worker failed)."""
        with self._lock:
            return self._call(command)

    def _call(self, command: dict) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"worker exited with code {self.proc.returncode}: {self._stderr_tail()}"}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return {"error": f"worker died (code {self.proc.wait()}): {self._stderr_tail()}"}
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX):])
            self.noise.append(line.rstrip())

    def _stderr_tail(self) -> str:
        try:
            self.proc.wait(5)
            text = self.proc.stderr.read()
        except Exception:
            return ""
        lines = [l for l in text.strip().splitlines() if l.strip()]
        return lines[-1] if lines else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


# Quick mode shares a few worker processes between sections (fewer interpreter and torch start-ups);
# a full run gives every measurement its own processes.
SHARED_ALIASES = {"ui-drain": "tui-trainer", "accum-0": "tui-trainer", "accum-1": "tui-trainer",
                  "scale": "tui-trainer", "plot": "ui-app"}
_shared: dict[str, Worker] | None = None
_shared_lock = threading.Lock()


def share_workers(on: bool) -> None:
    """Turn worker sharing on (quick mode) or off, closing the shared workers."""
    global _shared
    if _shared:
        for w in _shared.values():
            w.close()
    _shared = {} if on else None


def get_worker(name: str) -> Worker:
    """A worker for `name`: a new process, or in quick mode the shared one it maps to."""
    if _shared is None:
        return Worker(name)
    key = SHARED_ALIASES.get(name, name)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Worker(key)
        return _shared[key]


def release(worker: Worker) -> None:
    if _shared is None:
        worker.close()


# ---------------------------------------------------------------------------------------------- stats
def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def alternating(names: list[str], repeat: int) -> list[str]:
    """The order of one repeat: forwards on even repeats, backwards on odd ones."""
    return list(names) if repeat % 2 == 0 else list(reversed(names))


@dataclass
class Section:
    """One section of the report: its title, table rows, notes, and the raw figures for the JSON."""

    key: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    status: str = "ok"  # ok, skipped, not available yet, error

    def render(self) -> str:
        lines = [f"## {self.title}"]
        if self.status != "ok" and not self.rows:
            lines.append(f"{self.status}: " + ("; ".join(self.notes) if self.notes else ""))
            return "\n".join(lines)
        if self.rows:
            lines += markdown_table(self.columns, self.rows)
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {"title": self.title, "status": self.status, "columns": self.columns, "rows": self.rows,
                "notes": self.notes, "data": self.data}


def markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table padded for reading in a terminal too; numbers right-aligned."""
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    numeric = [all(_numeric(str(r[i])) for r in rows) for i in range(len(columns))]

    def cell(text, i):
        return str(text).rjust(widths[i]) if numeric[i] else str(text).ljust(widths[i])

    out = ["| " + " | ".join(cell(c, i) for i, c in enumerate(columns)) + " |",
           "| " + " | ".join(("-" * (w - 1) + ":") if numeric[i] else "-" * w for i, w in enumerate(widths)) + " |"]
    out += ["| " + " | ".join(cell(v, i) for i, v in enumerate(r)) + " |" for r in rows]
    return out


def _numeric(text: str) -> bool:
    t = text.replace(",", "").replace("x", "").replace("%", "").replace(" ", "").strip()
    if t in ("-", ""):
        return True
    try:
        float(t)
        return True
    except ValueError:
        return False


def fmt(value, spec: str = ",.0f", missing: str = "-") -> str:
    if value is None:
        return missing
    return format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


# ------------------------------------------------------------------------------------------------ pty
class Pty:
    """A command in a real pseudo-terminal (80x24 and up), its output drained so it never blocks.

    Counts the frames the app draws: it answers Textual's query for synchronized output as most
    terminals do, after which Textual wraps each screen update in ESC [ ? 2026 h ... l.
    """

    FRAME = b"\x1b[?2026h"
    QUERY = b"\x1b[?2026$p"

    def __init__(self, argv: list[str], env: dict | None = None, cols: int = 100, rows: int = 32, cwd=None):
        import fcntl
        import pty
        import struct
        import termios
        import threading

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows),
                    "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full_env,
                                     cwd=cwd or ROOT, start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.frames = 0
        self.answered = False
        self.bytes = 0
        self.tail = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        carry = b""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)
            joined = carry + data
            if self.QUERY in joined and not self.answered:
                self.answered = True  # answer like a terminal that supports synchronized output
                self.send("\x1b[?2026;2$y")
            self.frames += joined.count(self.FRAME) - carry.count(self.FRAME)
            carry = joined[-16:]
            self.tail = (self.tail + data)[-4000:]

    def send(self, keys: str) -> None:
        try:
            os.write(self.master, keys.encode())
        except OSError:
            pass

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait(10) is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        try:
            os.close(self.master)
        except OSError:
            pass

    def screen_text(self) -> str:
        """The last output with escape sequences removed (for error messages)."""
        import re

        text = re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]|\x1b[()][A-Z0-9]|\x1b[=>]", b"", self.tail)
        return " ".join(text.decode("utf-8", "replace").split())[-300:]


def quiet_call(worker: Worker, command: dict, log, noisy: float = 0.15, retries: int | None = None) -> dict:
    """One timed worker call, taken again (at most `retries` times) when other processes loaded the machine.

    The quietest attempt is kept, with its load under "busy".
    """
    return quiet_run(lambda: worker.call(**command), log, noisy, retries, procs=(worker.ps,))


def quiet_run(fn, log, noisy: float = 0.15, retries: int | None = None, procs=()):
    """`fn()` (which returns a dict) timed like `quiet_call`, for work done by commands we start ourselves."""
    best = None
    retries = QUIET["retries"] if retries is None else retries
    for _ in range(retries + 1):
        wait_for_quiet()
        with Busy(psutil.Process(), *procs) as busy:
            out = fn()
        out["busy"] = busy.others
        if best is None or out["busy"] < best["busy"] or "error" in best:
            best = out
        if "error" in out or out["busy"] <= noisy:
            break
        log(f"  (other processes used {out['busy']:.0%} of the CPU: measuring again)")
    return best
