"""The engine: accumulation maths, determinism, resume, metrics, and how runs end."""

from __future__ import annotations

import json
from dataclasses import replace
import threading

import numpy as np
import pytest
import torch

from tests.conftest import make_config, run_to_end
from tui_trainer.runs import Runner, RunStore, read_curves, resume_runner
from tui_trainer.runs.metrics import times_at
from tui_trainer.training.checkpoint import load_checkpoint
from tui_trainer.training.data import plan_epoch
from tui_trainer.training.loop import Trainer
from tui_trainer.training.models import build_model

SMALL = {"dataset": "synthetic-regression", "samples": 125, "features": 6, "val_fraction": 0.2}


def trained_weights(config, tmp_path) -> dict[str, torch.Tensor]:
    """Train in-process with the real Trainer and return the final weights."""
    trainer = Trainer(config, tmp_path, lambda event: None, threading.Event())
    trainer.build()
    assert trainer.train() == "completed"
    return {k: v.clone() for k, v in trainer.strategy.unwrap(trainer.model).state_dict().items()}


def assert_same_weights(a: dict, b: dict, tol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=tol, rtol=0), f"{key} differs by {(a[key] - b[key]).abs().max()}"


def sgd_config(batch_size: int, accumulate: int, **train):
    return make_config(data={**SMALL, "batch_size": batch_size}, optimizer={"name": "sgd", "lr": 1e-4, "momentum": 0.0},
                       train={"epochs": 1, "accumulate": accumulate, **train})


def test_accumulated_micro_batches_equal_one_big_batch(tmp_path):
    # 100 training samples, 32 a step: 3 full steps and a last step of 4 samples.
    big = trained_weights(sgd_config(32, 1), tmp_path / "a")
    accumulated = trained_weights(sgd_config(8, 4), tmp_path / "b")
    assert_same_weights(big, accumulated, 1e-6)


def test_unequal_micro_batches_are_weighted_by_their_sample_count(tmp_path):
    # 36 a step: steps of 36, 36 and 28 samples; the last one is cut into micro-batches of 12, 12 and 4.
    plan = plan_epoch(100, 0, 0, 12, 3)
    assert [len(m) for m in plan.micro_batches[-1]] == [12, 12, 4]
    big = trained_weights(sgd_config(36, 1), tmp_path / "a")
    accumulated = trained_weights(sgd_config(12, 3), tmp_path / "b")
    assert_same_weights(big, accumulated, 1e-6)


def test_the_samples_of_a_step_do_not_depend_on_how_it_is_cut():
    whole = plan_epoch(100, seed=3, epoch=2, batch_size=32, accumulate=1)
    cut = plan_epoch(100, seed=3, epoch=2, batch_size=8, accumulate=4)
    for step_whole, step_cut in zip(whole.micro_batches, cut.micro_batches):
        assert torch.equal(step_whole[0], torch.cat(step_cut))
    ranks = [plan_epoch(100, 3, 2, 8, 2, world_size=2, rank=r) for r in (0, 1)]
    for i, step_whole in enumerate(whole.micro_batches):
        assert torch.equal(step_whole[0], torch.cat([*ranks[0].micro_batches[i], *ranks[1].micro_batches[i]]))


def test_same_preset_twice_gives_the_same_final_weights(tmp_path):
    config = make_config(data={"dataset": "diabetes"}, model={"dropout": 0.1}, train={"epochs": 3})
    assert_same_weights(trained_weights(config, tmp_path / "a"), trained_weights(config, tmp_path / "b"), 0.0)


def test_dataloader_path_trains_exactly_like_the_device_loader(tmp_path):
    device_loader = sgd_config(16, 2)
    torch_loader = sgd_config(16, 2)
    torch_loader = make_config(data={**SMALL, "batch_size": 16, "loader": "dataloader"},
                               optimizer={"name": "sgd", "lr": 1e-4, "momentum": 0.0},
                               train={"epochs": 1, "accumulate": 2})
    assert_same_weights(trained_weights(device_loader, tmp_path / "a"), trained_weights(torch_loader, tmp_path / "b"),
                        1e-6)


class StopAfter(threading.Event):
    """A stop request that arrives after a given number of optimizer steps (the loop asks once a step)."""

    def __init__(self, steps: int):
        super().__init__()
        self.remaining = steps

    def is_set(self) -> bool:
        self.remaining -= 1
        return self.remaining <= 0 or super().is_set()


def test_resume_continues_from_last_step_to_the_same_weights(tmp_path):
    config = make_config(data={"dataset": "diabetes"}, model={"dropout": 0.2},
                         optimizer={"name": "adamw", "lr": 0.01}, schedule={"name": "cosine", "warmup_steps": 5},
                         train={"epochs": 4})
    whole, whole_dir, _ = run_to_end(config, tmp_path / "whole")
    assert whole.status == "completed" and whole.step == 48

    store = RunStore(tmp_path / "parts")
    runner = Runner(config, store)
    runner._stop = StopAfter(17)
    run_dir = runner.start()
    stopped = runner.wait(60)
    assert stopped.status == "stopped" and stopped.step == 17
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 17

    resumed = resume_runner(run_dir)
    resumed.start()
    final = resumed.wait(60)
    assert final.status == "completed" and final.step == 48
    a = load_checkpoint(whole_dir / "checkpoint.pt")["model"]
    b = load_checkpoint(run_dir / "checkpoint.pt")["model"]
    assert_same_weights(a, b, 0.0)
    curves = read_curves(run_dir / "metrics.jsonl")
    assert list(curves.steps) == list(range(1, 49)), "the resumed run's metrics continue without gaps or repeats"


def test_metrics_record_the_runs_wall_time_on_each_batch_end_and_evaluation(runs_dir):
    summary, run_dir, _ = run_to_end(make_config(data={"dataset": "diabetes"}, train={"epochs": 3}), runs_dir)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    timed = [l for l in lines if "time" in l]
    batch_ends = [l for l in lines if "lr" in l]  # the last line of each batch of steps carries the batch's figures
    evaluations = [l for l in lines if "val_loss" in l]
    assert batch_ends and len(evaluations) == 3
    assert all("time" in l for l in batch_ends + evaluations)
    assert len(timed) == len(batch_ends) + len(evaluations), "single steps carry no time (no per-step cost)"
    times = [l["time"] for l in timed]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= summary.wall_s
    curves = read_curves(run_dir / "metrics.jsonl")
    assert curves.times == tuple(times) and curves.time_steps == tuple(l["step"] for l in timed)
    at = times_at(curves, curves.steps)
    assert len(at) == len(curves.steps) and at == sorted(at) and at[-1] == batch_ends[-1]["time"]


def test_a_resumed_runs_wall_time_continues_from_its_first_attempts(tmp_path):
    config = make_config(data={"dataset": "diabetes"}, train={"epochs": 4})
    runner = Runner(config, RunStore(tmp_path / "runs"))
    runner._stop = StopAfter(17)
    run_dir = runner.start()
    assert runner.wait(60).status == "stopped"
    first = read_curves(run_dir / "metrics.jsonl")
    assert first.times and max(first.time_steps) == 17

    resumed = resume_runner(run_dir)
    resumed.start()
    assert resumed.wait(60).status == "completed"
    whole = read_curves(run_dir / "metrics.jsonl")
    before = [t for s, t in zip(whole.time_steps, whole.times) if s <= 17]
    after = [t for s, t in zip(whole.time_steps, whole.times) if s > 17]
    assert before == list(first.times), "the first attempt's times are kept"
    assert after and min(after) >= max(before), "the resumed attempt's clock starts where the first one stopped"
    assert list(whole.times) == sorted(whole.times)


def test_curves_of_a_run_without_recorded_times_read_as_before_with_no_wall_time(tmp_path):
    metrics = tmp_path / "metrics.jsonl"  # an older tui-trainer's run
    metrics.write_text("".join(json.dumps({"step": s, "epoch": 0, "loss": 1.0 / s}) + "\n" for s in range(1, 11))
                       + json.dumps({"step": 10, "epoch": 0, "val_loss": 0.3, "r2": 0.5}) + "\n")
    curves = read_curves(metrics)
    assert list(curves.steps) == list(range(1, 11)) and curves.val_losses == (0.3,)
    assert curves.times == () and times_at(curves, curves.steps) is None


def test_run_directory_holds_config_metrics_checkpoint_and_summary(runs_dir):
    config = make_config(data={"dataset": "digits"}, model={"hidden": [32]}, train={"epochs": 2})
    summary, run_dir, events = run_to_end(config, runs_dir)
    assert summary.status == "completed"
    assert {p.name for p in run_dir.iterdir()} >= {"config.toml", "metrics.jsonl", "checkpoint.pt", "summary.json"}
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_lines = [l for l in lines if "loss" in l]
    eval_lines = [l for l in lines if "val_loss" in l]
    assert [l["step"] for l in train_lines] == list(range(1, summary.step + 1))
    assert len(eval_lines) == 2 and all(0.0 <= l["accuracy"] <= 1.0 for l in eval_lines)
    assert eval_lines[-1]["accuracy"] > 0.8, "a 2-epoch MLP on digits should already classify most digits"

    state = load_checkpoint(run_dir / "checkpoint.pt")
    model = build_model(config.model, 64, 10)
    model.load_state_dict(state["model"])  # the plain, unwrapped model's state_dict
    assert state["step"] == summary.step and "optimizer" in state and "rng" in state
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["status"] == "completed" and saved["samples_per_s"] > 0 and saved["final_val_loss"] is not None


def test_plots_read_losses_bin_which_agrees_with_metrics_jsonl_and_survives_a_torn_tail(runs_dir):
    summary, run_dir, _ = run_to_end(make_config(data={"dataset": "diabetes"}, train={"epochs": 3}), runs_dir)
    curves = read_curves(run_dir / "metrics.jsonl")
    assert list(curves.steps) == list(range(1, summary.step + 1)) and len(curves.val_steps) == 3
    assert all(loss > 0 for loss in curves.losses) and curves.metric_name == "r2"
    with open(run_dir / "metrics.jsonl", "a") as f:  # a writer killed in the middle of a batch
        f.write('{"step": 999, "epoch": 9, "lo')
    with open(run_dir / "losses.bin", "ab") as f:
        f.write(b"\x07" * 11)
    assert read_curves(run_dir / "metrics.jsonl") == curves
    (run_dir / "losses.bin").unlink()  # a run written by another tool: metrics.jsonl alone
    assert read_curves(run_dir / "metrics.jsonl") == curves


def _resume_metrics(metrics, at_step: int, more_steps: tuple[int, ...]):
    """What the runner does on resume: truncate to the checkpoint's step, then log the next steps."""
    from tui_trainer.runs.metrics import MetricsLog, truncate_after
    from tui_trainer.training.events import TrainProgress

    truncate_after(metrics, at_step)
    log = MetricsLog(metrics)
    log.record(TrainProgress(more_steps[-1], 0, more_steps, tuple(0.5 / s for s in more_steps), 1e-3, 1.0, 1.0, 1.0))
    log.close()
    return read_curves(metrics)


def test_resuming_a_run_written_without_losses_bin_keeps_its_whole_curve(tmp_path):
    metrics = tmp_path / "metrics.jsonl"  # an older tui-trainer's run: metrics.jsonl alone
    metrics.write_text("".join(json.dumps({"step": s, "epoch": 0, "loss": 1.0 / s}) + "\n" for s in range(1, 11)))
    curves = _resume_metrics(metrics, 10, (11, 12))
    assert list(curves.steps) == list(range(1, 13))
    assert curves.losses[9:] == (0.1, 0.5 / 11, 0.5 / 12)


def test_resume_mends_losses_bin_that_missed_a_batch_the_jsonl_has(tmp_path):
    from tui_trainer.runs.metrics import MetricsLog
    from tui_trainer.training.events import TrainProgress

    metrics = tmp_path / "metrics.jsonl"
    log = MetricsLog(metrics)
    for steps in ((1, 2, 3), (4, 5, 6), (7, 8, 9)):
        log.record(TrainProgress(steps[-1], 0, steps, tuple(1.0 / s for s in steps), 1e-3, 1.0, 1.0, 1.0))
    log.close()
    pairs = (tmp_path / "losses.bin").read_bytes()
    (tmp_path / "losses.bin").write_bytes(pairs[:3 * 16] + pairs[6 * 16:])  # killed between the two writes
    with open(metrics, "a") as f:
        f.write('{"step": 10, "epoch": 0, "loss": 0.1')  # and a torn line
    curves = _resume_metrics(metrics, 8, (9, 10))
    assert list(curves.steps) == list(range(1, 11))
    assert curves.losses[:8] == tuple(1.0 / s for s in range(1, 9))


def test_a_checkpoint_of_an_unfused_optimizer_resumes_into_a_fused_one_with_a_grad_scaler():
    from tui_trainer.config.schema import OptimizerConfig
    from tui_trainer.training.optim import build_optimizer, load_optimizer_state

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    old = torch.optim.Adam(model.parameters(), lr=1e-3)  # as tui-trainer built it before fusing
    model(torch.randn(8, 4)).sum().backward()
    old.step()
    optimizer = build_optimizer(OptimizerConfig(name="adam", lr=1e-3), model.parameters())
    load_optimizer_state(optimizer, old.state_dict())
    assert optimizer.param_groups[0]["fused"] is True
    optimizer.zero_grad()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    with torch.autocast("cpu", dtype=torch.float16):
        loss = model(torch.randn(8, 4)).float().mean()
    scaler.scale(loss).backward()
    before = model.weight.detach().clone()
    scaler.step(optimizer)  # torch raised here when the checkpoint's `fused: None` replaced ours
    assert int(optimizer.state[model.weight]["step"]) == 2 and not torch.equal(before, model.weight)


def test_the_optimizer_steps_like_torchs_and_still_runs_step_hooks():
    """build_optimizer's optimizer skips torch's per-step profiler scope, not its behaviour: the same
    update as torch's own Adam, no gradient recorded in the step, and registered step hooks still run."""
    import subprocess
    import sys

    code = """
import sys, torch
from tui_trainer.config.schema import OptimizerConfig
from tui_trainer.training.optim import build_optimizer
torch.manual_seed(0)
a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
b.load_state_dict(a.state_dict())
ours = build_optimizer(OptimizerConfig(name="adam", lr=1e-2), a.parameters())
theirs = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
calls = []
for step in range(3):
    x = torch.randn(8, 4)
    for model, optimizer in ((a, ours), (b, theirs)):
        model(x).pow(2).mean().backward()
        if step == 2 and optimizer is ours:
            optimizer.register_step_pre_hook(lambda *args: calls.append("pre"))
            optimizer.register_step_post_hook(lambda *args: calls.append("post"))
        optimizer.step()
        optimizer.zero_grad()
same = all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
print("same", same, "grad", a.weight.requires_grad and a.weight.grad_fn is None, "calls", calls)
"""
    # A fresh interpreter: the hooks are registered on an optimizer class shared by the process.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "same True grad True calls ['pre', 'post']" in out.stdout


def test_r2_metric_matches_scikit_learn(runs_dir):
    from sklearn.metrics import r2_score

    config = make_config(data={"dataset": "diabetes"}, train={"epochs": 2})
    trainer = Trainer(config, runs_dir, lambda e: None, threading.Event())
    runs_dir.mkdir(parents=True)
    trainer.build()
    trainer.train()
    model = trainer.strategy.unwrap(trainer.model).eval()
    x_val, y_val = trainer.loader.x_val, trainer.loader.y_val
    with torch.no_grad():
        predictions = model(x_val).numpy()
    assert trainer.last_metric == pytest.approx(r2_score(y_val.numpy(), predictions), abs=1e-5)


def test_nan_loss_ends_the_run_as_diverged_with_the_step(runs_dir):
    config = make_config(data={"dataset": "diabetes"}, optimizer={"name": "sgd", "lr": 10.0}, train={"epochs": 50})
    summary, run_dir, _ = run_to_end(config, runs_dir)
    assert summary.status == "diverged"
    assert "at step" in summary.error
    curves = read_curves(run_dir / "metrics.jsonl")
    assert all(np.isfinite(curves.losses)), "only finite losses are written"


def test_an_exception_ends_the_run_as_failed_with_its_message(runs_dir):
    config = make_config(model={"name": "tests.user_parts:broken_model"})
    summary, run_dir, _ = run_to_end(config, runs_dir)
    assert summary.status == "failed"
    assert "this model cannot be built" in summary.error
    assert "Traceback" in (run_dir / "error.log").read_text()


def test_user_model_and_dataset_callables_are_used(runs_dir):
    config = make_config(data={"dataset": "tests.user_parts:moons_arrays"},
                         model={"name": "tests.user_parts:small_net"}, train={"epochs": 3})
    summary, _, _ = run_to_end(config, runs_dir)
    assert summary.status == "completed" and summary.metric_name == "accuracy"


def test_user_torch_datasets_go_through_the_dataloader(runs_dir):
    config = make_config(data={"dataset": "tests.user_parts:line_datasets", "batch_size": 10},
                         train={"epochs": 2})
    summary, _, _ = run_to_end(config, runs_dir)
    assert summary.status == "completed" and summary.metric_name == "r2" and summary.step == 2 * 8


def test_stop_request_ends_the_run_with_a_checkpoint(runs_dir):
    config = make_config(data={"dataset": "diabetes"}, train={"epochs": 100000})
    runner = Runner(config, RunStore(runs_dir))
    run_dir = runner.start()
    while not any(type(e).__name__ == "TrainProgress" for e in [runner.events.get(timeout=60)]):
        pass
    runner.stop()
    summary = runner.wait(30)
    assert summary.status == "stopped" and 0 < summary.step < summary.total_steps
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == summary.step


def test_tensorboard_receives_train_and_val_curves(runs_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = make_config(data={"dataset": "diabetes"}, train={"epochs": 3}, logging={"tensorboard": True})
    summary, run_dir, _ = run_to_end(config, runs_dir)
    assert summary.status == "completed"
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    train = events.Scalars("loss/train")
    assert [e.step for e in train] == list(range(1, summary.step + 1))
    assert [e.step for e in events.Scalars("loss/val")] == [12, 24, 36]
    assert events.Scalars("metric/r2")[-1].value == pytest.approx(summary.metric, abs=1e-5)


def test_gradient_clipping_logs_the_norm_and_the_lr_schedule_is_followed(runs_dir):
    config = make_config(data={"dataset": "diabetes"}, optimizer={"lr": 0.01},
                         schedule={"name": "cosine", "warmup_steps": 10, "min_lr_ratio": 0.1},
                         train={"epochs": 5, "grad_clip": 1.0})
    summary, run_dir, _ = run_to_end(config, runs_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    with_lr = [r for r in rows if "lr" in r]
    assert with_lr and all("grad_norm" in r and r["grad_norm"] > 0 for r in with_lr)
    assert with_lr[-1]["step"] == 60
    # The 60th step (index 59) is 49/50 of the way from the end of warm-up to the floor of 0.1 x lr.
    import math

    assert with_lr[-1]["lr"] == pytest.approx(0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * 49 / 50)), rel=1e-9)


def test_events_survive_the_trip_through_a_worker_event_file():
    from tui_trainer.training.events import (RunFinished, RunSummary, TrainProgress, event_from_json,
                                             event_to_json)

    progress = TrainProgress(10, 1, (9, 10), (0.5, 0.25), 1e-3, 1234.5, 2.0, float("inf"), None, 1024.0, 2,
                             ((0, 100.0, 128.0, 110.0), (1, 50.0, 64.0, 60.0)))
    finished = RunFinished(RunSummary("id", "name", "stopped", step=10, notes=("a", "b")))
    assert event_from_json(event_to_json(progress)) == progress
    assert event_from_json(event_to_json(finished)) == finished


def test_samples_per_s_is_the_runs_steps_over_its_wall_clock_and_never_stale(runs_dir, monkeypatch):
    """The figure on screen is the run's throughput over a stated wall-clock window, stalls included.

    The window is shortened to 1 s for the test (10 s in a real run). Steps and times are the run's
    own: each progress event's step and elapsed seconds since its first step.
    """
    from tui_trainer.training import loop
    from tui_trainer.training.events import TrainProgress

    monkeypatch.setattr(loop, "RATE_WINDOW_S", 1.0)
    # 600 fast steps (thousands a second), then 200 steps of 20 ms: the rate falls 10-fold mid-run.
    config = make_config("slows", model={"name": "tests.user_parts:slows_down"}, train={"max_steps": 800},
                         data={"batch_size": 32})
    summary, _, events = run_to_end(config, runs_dir)
    assert summary.status == "completed"
    progress = [e for e in events if isinstance(e, TrainProgress)]
    started = next(e for e in events if type(e).__name__ == "RunStarted")
    samples_per_step = started.train_samples / started.steps_per_epoch
    marks = [(0.0, 0)] + [(p.elapsed_s, p.step) for p in progress]
    for p in progress:
        assert 0 < p.rate_window_s <= p.elapsed_s + 1e-9
        # the run's own step count at the start of the window the figure says it covers
        begin = p.elapsed_s - p.rate_window_s
        (_, step_then), = [(t, s) for t, s in marks if abs(t - begin) < 1e-6]
        expected = (p.step - step_then) * samples_per_step / p.rate_window_s
        assert p.samples_per_s == pytest.approx(expected, rel=0.01)  # margin: 1 %
        if p.elapsed_s > 2.0:  # once the run is older than the window, the window is the last ~1 s
            assert p.rate_window_s >= 1.0 and p.rate_window_s < 2.5
    # the slow end is what the last figure shows: about 50 steps/s, not the thousands of the start
    assert progress[-1].samples_per_s < 100 * samples_per_step
    # a slowdown never leaves a stale figure: one process reports at least every second
    gaps = [b.elapsed_s - a.elapsed_s for a, b in zip(progress, progress[1:])]
    assert max(gaps) < 3.0, gaps  # generous: 1 s plus one 20 ms step, on a busy machine
    # the summary's figure is the whole run's: samples trained over the training's wall time
    assert summary.samples_per_s == pytest.approx(800 * samples_per_step / progress[-1].elapsed_s, rel=0.1)


def test_a_run_stopped_and_resumed_twice_reports_its_whole_training_in_one_time_base(runs_dir):
    """summary.json's train_s, samples_per_s and wall_s are the whole run's, over every attempt."""
    from tui_trainer.training.events import RunFinished, RunStarted, TrainProgress

    def stop_after_progress(runner: Runner, beyond: int):
        """Stop once the run reports a step past `beyond`; (summary, this attempt's own seconds, its RunStarted)."""
        seen = []
        while not any(isinstance(e, TrainProgress) and e.step > beyond for e in seen):
            seen.append(runner.events.get(timeout=120))
            assert not isinstance(seen[-1], RunFinished), "the long run ended by itself"
        runner.stop()
        summary = runner.wait(120)
        seen += runner.drain()
        progress = [e for e in seen if isinstance(e, TrainProgress)]
        # this attempt trained at least from its first step to its last report (its final validation follows)
        return summary, progress[-1].elapsed_s, next(e for e in seen if isinstance(e, RunStarted))

    # 320 training samples, 32 a step: every step trains exactly the effective batch
    config = make_config(data={"dataset": "synthetic-regression", "samples": 400, "features": 6, "val_fraction": 0.2,
                               "batch_size": 32}, train={"epochs": 100000})
    runner = Runner(config, RunStore(runs_dir))
    run_dir = runner.start()
    attempts = [stop_after_progress(runner, 0)]
    for _ in range(2):
        runner = resume_runner(run_dir)
        runner.start()
        attempts.append(stop_after_progress(runner, attempts[-1][0].step))
    final, _, started = attempts[-1]
    assert started.train_samples / started.steps_per_epoch == config.effective_batch == 32
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["status"] == "stopped" and saved["step"] == final.step > attempts[1][0].step > attempts[0][0].step
    own_seconds = sum(seconds for _, seconds, _ in attempts)
    assert saved["train_s"] >= own_seconds, "train_s counts every attempt's training, not the last one's"
    assert [s.train_s for s, _, _ in attempts] == sorted(s.train_s for s, _, _ in attempts)
    assert saved["samples_per_s"] == pytest.approx(final.step * 32 / saved["train_s"], rel=1e-6)
    assert saved["wall_s"] >= saved["train_s"]  # the same time base: start-up is in wall_s only
    assert saved["compile_s"] is None
    listed, = RunStore(runs_dir).list_runs()
    assert (listed.samples_per_s, listed.wall_s) == (saved["samples_per_s"], saved["wall_s"])


def test_auto_threads_are_measured_on_the_runs_step_and_said_in_its_notes_without_changing_its_training(tmp_path):
    # digits-classify's shape: 17,226 parameters x batch 64, between "tiny" (one thread, no question)
    # and "compute-bound" (every core): there the run times its own step each way before training.
    config = make_config(data={"dataset": "digits", "batch_size": 64}, model={"hidden": [128, 64], "dropout": 0.1},
                         train={"max_steps": 30, "threads": 0})
    trainer = Trainer(config, tmp_path / "auto", lambda event: None, threading.Event())
    trainer.build()
    (note,) = [n for n in trainer.notes if n.startswith("train.threads = 0")]
    chosen = torch.get_num_threads()
    assert f"train.threads = 0: {chosen} thread" in note and "ms/step with 1 and" in note, note
    assert trainer.train() == "completed"
    auto = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    # the measurement trained copies and restored the RNG: the run is the one it would have been
    fixed = replace(config, train=replace(config.train, threads=chosen))
    assert_same_weights(auto, trained_weights(fixed, tmp_path / "fixed"), 0.0)


def test_a_tiny_step_takes_one_thread_and_says_why():
    from tui_trainer.training.threads import choose_threads

    choice = choose_threads(753 * 32, step=None, default=2)
    assert choice.threads == 1 and "a tiny step" in choice.reason
    assert choose_threads(10**9, step=None, default=2).threads == 2
