"""Shared helpers: real configs, real runs in a temporary run store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "presets"


def make_config(name: str = "test", **sections):
    """A validated RunConfig from section dicts, e.g. make_config(train={"max_steps": 5})."""
    from tui_trainer.config import parse_config

    return parse_config(sections, source=f"{name}.toml", name=name)


def run_to_end(config, runs_dir: Path, timeout: float = 120):
    """Run a config through the real Runner and return (summary, run_dir, events)."""
    from tui_trainer.runs import Runner, RunStore

    runner = Runner(config, RunStore(runs_dir))
    run_dir = runner.start()
    summary = runner.wait(timeout)
    assert summary is not None, "the run did not end in time"
    return summary, run_dir, runner.drain()


def strict_json(text: str):
    """Parse JSON as strict parsers (jq, JavaScript, Go) do: NaN and Infinity are not JSON, so they fail."""
    def refuse(constant: str):
        raise AssertionError(f"{constant} written: not JSON that strict parsers read")
    return json.loads(text, parse_constant=refuse)


def cli(*args: str, cwd: Path = ROOT, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `tui-trainer` command (as `python -m tui_trainer`) and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tui_trainer", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
