"""tools/gpu_check.py, the one command that proves the GPU paths on a GPU machine: its dry run on the CPU.

The dry run walks every case through its CPU stand-in with the same code (start a long run, wait for its
first progress record, check its process while it trains, measure throughput after warm-up, stop it with
Ctrl-C, resume a stopped run) so the script is known to work before a GPU machine's minutes are spent on it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_gpu_check_dry_run_walks_every_case_and_writes_the_report_as_it_goes(tmp_path):
    # About a minute on 2 idle cores (10 `tui-trainer` starts); the budget is generous for a loaded machine.
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "tools"))
    command = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--dry-run", "--quick", "--budget", "900",
               "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in report.splitlines()
            if line.startswith("| ") and not line.startswith("|  |")}
    for case in gpu_check.cases():
        assert case.label in rows, f"{case.label} is missing from the report"
    assert rows["single fp32"] == "stopped" and rows["single bf16-mixed"] == "stopped"
    assert rows["resume single bf16-mixed"] == "stopped" and "ok resumed from its checkpoint" in report
    assert rows["ddp 1 process nccl bf16"] == "stopped" and rows["ddp 2 processes"] == "stopped"
    assert rows["model-parallel 2 stages on GPU 0"] == "stopped"
    assert rows["cpu tiny diabetes fp32"] == "completed"
    assert rows["dp GPUs 0,1 fp16"] == "no CPU stand-in"
    assert rows["sweep precision x accumulate x batch"] == "completed"
    sweep_rows = [line for line in report.splitlines() if line.startswith("|  | ok precision=")]
    assert len(sweep_rows) == 8 and sum("fastest" in line for line in sweep_rows) == 1  # the sweep's table
    assert "FAIL" not in report
    assert "cross-rank all-reduce" in report and "copy of activations between GPUs" in report
    assert "whole check:" in report
