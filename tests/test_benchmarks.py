"""The benchmark script works: `--quick` prints every section and writes them all to JSON.

No figure is judged here (no timed assertions): the full run is what the README's table comes from.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECTION_TITLES = {
    "throughput-tiny": "## Throughput, tiny",
    "throughput-compute": "## Throughput, compute-bound",
    "ui": "## UI overhead",
    "startup": "## Start-up",
    "process": "## Whole processes",
    "accumulation": "## Gradient accumulation",
    "ddp": "## DDP on the CPU",
    "scale": "## Scale",
}


@pytest.mark.timeout(400)
def test_quick_benchmark_prints_every_section_and_writes_json(tmp_path):
    out_json = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "benchmarks/bench.py", "--quick", "--json", str(out_json)],
                            cwd=ROOT, capture_output=True, text=True, timeout=380)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout

    assert "# tui-trainer benchmark (quick" in text
    assert "- machine: " in text and "- date: " in text and "- command: `python benchmarks/bench.py --quick" in text
    for title in SECTION_TITLES.values():
        assert title in text, f"missing section {title!r}"
    assert "not available yet" not in text, "every section measures something"
    assert "## GPU" in text  # a table on a GPU machine, "skipped: no GPU ..." elsewhere
    assert "## Targets" in text

    data = json.loads(out_json.read_text())
    assert data["quick"] is True
    assert data["machine"]["cores"] >= 1 and data["machine"]["torch"]
    sections = data["sections"]
    for key in SECTION_TITLES:
        assert key in sections, f"missing {key} in the JSON"
        assert sections[key]["status"] == "ok", (key, sections[key])
        assert sections[key]["rows"], f"{key} has no rows"
    assert "gpu" in sections or "gpu-summary" in sections

    contestants = ["tui-trainer", "best hand-written loop", "seed-style loop"]
    if importlib.util.find_spec("lightning") is not None:
        contestants.append("PyTorch Lightning")
    for key in ("throughput-tiny", "throughput-compute"):
        rows = {row[0]: row for row in sections[key]["rows"]}
        for name in contestants:
            assert name in rows, (key, name)
            assert not rows[name][-1].startswith("error"), rows[name]
        figures = sections[key]["data"]["figures"]
        assert figures["tui-trainer"]["steps"] == figures["best"]["steps"]  # equal work
        assert figures["tui-trainer"]["samples_per_s"] > 0 and figures["best"]["vs_best"] == 1.0
    assert sections["scale"]["data"]["memory_growth_mib"] is not None
    process = sections["process"]["data"]
    assert process["first_step_s"] and process["imports_s"]  # measured, from real processes
    whole_runs = [figures for key, figures in process.items() if key.startswith("epochs-")]
    assert whole_runs and all(figures["ratio"] for figures in whole_runs)
    assert data["targets"], "the targets table is empty"
