"""train.compile: torch.compile of the model, its compile time reported apart from the training time."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli
from tui_trainer.training.checkpoint import load_checkpoint


def test_compiled_model_trains_like_the_eager_one_and_reports_its_compile_time_apart(tmp_path):
    results = {}
    for compiled in (False, True):
        runs = tmp_path / f"runs-{compiled}"
        result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(runs), "--set", "train.max_steps=24",
                     "--set", f"train.compile={'true' if compiled else 'false'}", timeout=600)
        assert result.returncode == 0, result.stderr
        (run_dir,) = runs.iterdir()
        results[compiled] = (result.stdout, json.loads((run_dir / "summary.json").read_text()), run_dir)
    eager, compiled = results[False][1], results[True][1]
    assert eager["compile_s"] is None
    assert compiled["compile_s"] > 0 and compiled["train_s"] > 0 and compiled["samples_per_s"] > 0
    out = results[True][0]
    assert f"torch.compile: {compiled['compile_s']:.1f}s compiling (the first step)" in out
    assert "torch.compile: the first step (compiling) took" in out
    assert compiled["final_loss"] == pytest.approx(eager["final_loss"], rel=1e-4)
    weights = load_checkpoint(results[True][2] / "checkpoint.pt")["model"]
    assert set(weights) == set(load_checkpoint(results[False][2] / "checkpoint.pt")["model"]), "same keys"
