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


def test_a_resumed_compiled_run_adds_each_attempts_compiling_step_to_compile_s(tmp_path):
    """Each attempt compiles again in its first step: compile_s adds them up, samples_per_s leaves them out."""
    import re

    from tests.conftest import make_config
    from tui_trainer.runs import Runner, RunStore, resume_runner
    from tui_trainer.training.events import LogLine, RunStarted, TrainProgress

    def stop_after_progress(runner, beyond: int):
        """Stop once the run reports a step past `beyond`; (summary, its events)."""
        seen = []
        while not any(isinstance(e, TrainProgress) and e.step > beyond for e in seen):
            seen.append(runner.events.get(timeout=600))
            assert type(seen[-1]).__name__ != "RunFinished", "the long run ended by itself"
        runner.stop()
        summary = runner.wait(600)
        return summary, seen + runner.drain()

    config = make_config(data={"dataset": "diabetes"}, train={"epochs": 100000, "compile": True})
    runner = Runner(config, RunStore(tmp_path))
    run_dir = runner.start()
    first, _ = stop_after_progress(runner, 1)
    runner = resume_runner(run_dir)
    runner.start()
    final, events = stop_after_progress(runner, first.step + 1)
    (said,) = [e.text for e in events if isinstance(e, LogLine) and "the first step (compiling)" in e.text]
    again = float(re.search(r"took ([\d.]+)s", said).group(1))  # this attempt's own compiling step, to 0.1 s
    assert first.compile_s > 0 and final.compile_s == pytest.approx(first.compile_s + again, abs=0.051)
    started = next(e for e in events if isinstance(e, RunStarted))
    samples_per_step = started.train_samples / started.steps_per_epoch
    # every step but each attempt's compiling one, over the training seconds after them
    assert final.samples_per_s * final.train_s == pytest.approx((final.step - 2) * samples_per_step, rel=1e-6)
