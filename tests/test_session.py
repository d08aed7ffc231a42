"""The app's state without an app: run state and its frozen views, the machine readings, formatting.

The widgets redraw when they are given a view that differs from the one they hold, so these views
must be equal while nothing changed and differ as soon as something a user sees did.
"""

from __future__ import annotations

from tui_trainer.hardware import GpuSample
from tui_trainer.session import format as fmt
from tui_trainer.session.monitor import MachineView, ProcessSample
from tui_trainer.session.run_state import RunState, Series
from tui_trainer.training.events import RankState, RunStarted, TrainProgress


def test_series_spans_the_whole_run_in_bounded_points():
    series = Series(capacity=100)
    series.extend(float(i) for i in range(10_000))
    points = series.snapshot()
    assert len(points) <= 100
    assert points[0] < 100 and points[-1] > 9_800  # first and last steps both represented
    assert series.count == 10_000 and series.min == 0.0 and series.last == 9_999.0


def test_run_state_keeps_a_bounded_log():
    state = RunState("r", "n")
    for i in range(2_000):
        state.note("info", f"line {i}")
    assert len(state.log) == 500 and state.log[-1] == ("info", "line 1999")
    assert state.log_since(1_998) == [("info", "line 1998"), ("info", "line 1999")]


def progress(step: int, losses: tuple[float, ...]) -> TrainProgress:
    return TrainProgress(step=step, epoch=0, steps=tuple(range(step - len(losses) + 1, step + 1)), losses=losses,
                         lr=0.1, samples_per_s=1000.0, elapsed_s=1.0, eta_s=9.0)


def test_run_views_stay_equal_until_the_run_changes_then_show_the_change():
    state = RunState("r", "cpu-quick", "fp32")
    state.apply([RunStarted("r", "/runs/r", "cpu", 100, 10, 0, 32, 1, 1000, 320)])
    before = (state.standing, state.train_curve, state.val_curve, state.log_tail)
    assert before == (state.standing, state.train_curve, state.val_curve, state.log_tail)  # nothing to redraw

    state.apply([progress(10, (4.0, 2.0)), RankState(1, "training"), RankState(0, "training")])
    assert state.standing != before[0] and state.standing.step == 10 and state.standing.fraction == 0.1
    curve = state.train_curve
    assert curve != before[1] and curve.values == (4.0, 2.0) and curve.current == 3.0 and curve.note == "2 steps"
    assert state.val_curve == before[2]  # no validation yet: the val plot is left alone
    assert state.log_tail == before[3]
    state.note("info", "stop requested")
    assert state.log_tail.since(before[3].total) == (("info", "stop requested"),)


def test_machine_reading_keeps_short_histories_and_skips_repeated_samples():
    view = MachineView(history=3)
    process = ProcessSample(100.0, 50.0, 4, 0, 2, 25.0, 40.0, 16_384.0)
    for t in range(5):
        reading = view.update((GpuSample(0, 0, "A100", float(t), memory_used_mib=t * 10, memory_total_mib=40_960),),
                              process)
    assert reading.memory_history(0) == (20.0, 30.0, 40.0) and reading.cpu == (50.0, 50.0, 50.0)
    again = view.update(reading.gpus, None)  # the sampler has no newer reading: no new point
    assert again.memory_history(0) == (20.0, 30.0, 40.0) and again.gpu(0).memory_used_mib == 40
    assert again.gpu(1) is None and again.memory_history(1) == ()


def test_durations_read_the_same_in_the_headless_log_and_the_app():
    assert [fmt.seconds(s) for s in (None, float("nan"), 12.4, 185, 3720)] == ["?", "?", "12s", "3m05s", "1h02m"]


def test_a_progress_line_names_its_rate_window_under_and_over_ten_seconds():
    # A headless run's line once it has trained for more than the 10 s window, and early on.
    from tui_trainer.cli.headless import _State
    from tui_trainer.training.events import RunStarted, TrainProgress

    state = _State()
    state.update(RunStarted("r", "runs/r", "cpu", 1000, 10, 0, 32, 1, 753, 353))
    for window, shown in ((10.0, "(last 10s)"), (0.94, "(last 0.9s)")):
        state.update(TrainProgress(500, 49, (500,), (2.5,), 1e-3, 40_000.0, 12.0, 3.0, rate_window_s=window,
                                   train_loss=2.5))
        line = state.line()
        assert f"40,000 samples/s {shown}" in line and line.startswith("step 500/1000"), line


def test_preset_watch_follows_the_directory_and_reads_only_the_files_that_changed(tmp_path):
    from tests.conftest import PRESETS
    from tui_trainer.config import Machine
    from tui_trainer.session.preset_watch import PresetWatch

    quick = (PRESETS / "cpu-quick.toml").read_text()
    (tmp_path / "a.toml").write_text(quick)
    (tmp_path / "b.toml").write_text(quick.replace('precision = "fp32"', 'precision = "fp17"'))
    watch = PresetWatch(tmp_path, Machine((), 2, "no GPU"))
    assert watch.poll() and [e.name for e in watch.entries] == ["a", "b"]
    a, b = watch.entries
    assert a.valid and not b.valid
    assert not watch.poll(), "nothing changed: nothing to show again"
    assert watch.entries[0] is a and watch.entries[1] is b, "an unchanged file is not read again"

    (tmp_path / "b.toml").write_text(quick.replace("epochs = 100", "epochs = 2"))  # fixed, in place
    (tmp_path / "c.toml").write_text(quick)
    (tmp_path / "a.toml").unlink()
    assert watch.poll()
    assert [e.name for e in watch.entries] == ["b", "c"]
    assert watch.entries[0].valid and watch.entries[0].config.train.epochs == 2
