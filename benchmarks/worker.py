"""A benchmark worker: one process per contestant, JSON commands on stdin, one result line each.

    {"op": "run", "contestant": "best", "job": {...}, "warmup": true}
    {"op": "exit"}

The first `run` of a job does a short warm-up run first (not timed). The tui-trainer worker never
runs a torch operation on its main thread: that thread only drains the run's queue, as the app's
does (see the README's note on OpenMP thread pools).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULT_PREFIX  # noqa: E402

_DATA: dict[str, object] = {}
_WARM: set[str] = set()
_DEFAULT_THREADS: list[int] = []  # torch's own thread count in this process, before any run changed it


def _answer(result: dict) -> None:
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def _data(job: dict, config):
    key = json.dumps([job["preset"], job["overrides"]])
    if key not in _DATA:
        from tui_trainer.training.data import load_task_data

        _DATA.clear()  # one job's data at a time
        _DATA[key] = load_task_data(config.data)
    return _DATA[key]


def run(command: dict, scratch: Path) -> dict:
    import torch

    import contestants as c

    job, name = command["job"], command["contestant"]
    config = c.load_job(job)
    if not _DEFAULT_THREADS:
        _DEFAULT_THREADS.append(torch.get_num_threads())
    # The best loop takes the thread count an expert picks for the job (jobs.py says which and why);
    # "best-default-threads", the seed-style loop and Lightning keep torch's default, as most loops do.
    # tui-trainer decides in its own training thread (train.threads = 0), so its worker is left alone.
    expert = name in ("best", "best-unfused") and job.get("best_threads")
    if name != "tui-trainer":
        torch.set_num_threads(expert or _DEFAULT_THREADS[0])
    device = torch.device("cuda", 0) if job["device"] == "cuda" else torch.device("cpu")

    def once(cfg) -> dict:
        if name == "tui-trainer":
            return c.tui_trainer_run(cfg, scratch)
        data = _data(job, cfg)
        if name in ("best", "best-unfused", "best-default-threads"):
            return c.best_loop(cfg, data, device, fused=name != "best-unfused")
        if name == "seed":
            return c.seed_loop(cfg, data, device)
        if name == "lightning":
            return c.lightning_fit(cfg, data, device, scratch)
        raise ValueError(f"unknown contestant {name}")

    if job["key"] not in _WARM:
        warm = once(c.with_steps(config, job["warmup_steps"]))
        if "error" in warm:
            return warm
        _WARM.add(job["key"])
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    result = once(config)
    result["rss_mib"] = c.peak_rss_mib()
    # torch's threads during the run: tui-trainer's, as its training thread saw them (it picks its own)
    result["threads"] = result.pop("run_threads", None) or torch.get_num_threads()
    if device.type == "cuda":
        result["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="tui-bench-"))
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            op = command.get("op", "run")
            if op == "exit":
                break
            try:
                if op == "ping":  # ready: the heavy imports done
                    import torch  # noqa: F401

                    import contestants  # noqa: F401

                    if command.get("lightning"):
                        import lightning  # noqa: F401
                    result = {"ok": True}
                elif op == "run":
                    result = run(command, scratch)
                else:
                    import sections

                    result = sections.OPS[op](command, scratch)
            except Exception as exc:  # a failed contestant is a result, not a dead benchmark
                result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
            _answer(result)
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(0)  # no interpreter teardown: a Lightning or torch atexit must not hang the benchmark


if __name__ == "__main__":
    main()
