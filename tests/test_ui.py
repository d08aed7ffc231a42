"""The app, driven by keys through Textual's Pilot: real presets, real runs, real files.

The only fake is NVML (tests/fake_nvml.py): "no GPU" for the CPU flows, two scripted A100s for the
GPU panels. Every wait polls for a condition a user would see, with a deadline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pynvml
import pytest
from textual.geometry import Region

from tests.conftest import PRESETS, ROOT, make_config
from tests.fake_nvml import FakeNvml
from tui_trainer.config import Machine, VisibleGpu, load_config
from tui_trainer.hardware import GpuSampler
from tui_trainer.runs import Runner, RunStore, resume_runner
from tui_trainer.ui.app import TrainerApp
from tui_trainer.session.live_run import LiveRun
from tui_trainer.ui.screens.compare import CompareScreen
from tui_trainer.ui.screens.confirm_quit import ConfirmQuitScreen
from tui_trainer.ui.screens.help import HelpScreen
from tui_trainer.ui.screens.launch import LaunchScreen
from tui_trainer.ui.screens.run_dashboard import RunDashboard
from tui_trainer.ui.screens.run_detail import RunDetailScreen
from tui_trainer.ui.screens.runs import RunsScreen
from tui_trainer.ui.widgets.gpu_list import GpuList
from tui_trainer.ui.widgets.gpu_panel import GpuPanel
from tui_trainer.ui.widgets.options_pane import OptionsPane
from tui_trainer.ui.widgets.preset_list import PresetList
from tui_trainer.ui.widgets.runs_table import RunsTable
from tui_trainer.ui.widgets.spark_plot import BARS, SparkPlot

CPU_MACHINE = Machine((), 2, "no NVIDIA GPU detected: NVML library not found")
TWO_GPUS = Machine((VisibleGpu(0, "NVIDIA A100-SXM4-40GB", (8, 0), 40960),
                    VisibleGpu(1, "NVIDIA A100-SXM4-40GB", (8, 0), 40960)), 2, "")


def no_gpu_sampler() -> GpuSampler:
    return GpuSampler(interval=0.2, backend=FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound()))


@pytest.fixture
def presets_dir(tmp_path: Path) -> Path:
    """A copy of the shipped presets (saving a preset writes here, not into the repository)."""
    target = tmp_path / "presets"
    shutil.copytree(PRESETS, target)
    return target


_apps: list[TrainerApp] = []


def make_app(presets_dir: Path, runs_dir: Path, machine: Machine = CPU_MACHINE, sampler=None) -> TrainerApp:
    app = TrainerApp(presets_dir, runs_dir, machine=machine, sampler=sampler or no_gpu_sampler())
    _apps.append(app)
    return app


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    """A failed test must not leave a training thread running into the next one."""
    yield
    while _apps:
        app = _apps.pop()
        for live in app.live.values():
            if live.runner.is_running():
                live.runner.stop()
                live.runner.wait(60)


async def wait_for(pilot, condition, what: str, timeout: float = 60.0) -> None:
    """Let the app run until `condition()` holds and the screen on top has composed (a pushed screen is
    `app.screen` before its widgets exist); fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (condition() and pilot.app.screen.is_mounted):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.05)


async def tab_to(pilot, widget_id: str) -> None:
    """Press tab until the widget with this id has the focus (as a user would)."""
    for _ in range(20):
        if pilot.app.focused is not None and pilot.app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached #{widget_id}")


async def choose(pilot, select_id: str, value: str) -> None:
    """Open a choice list with enter, move to `value` with the arrow keys, pick it with enter."""
    await tab_to(pilot, select_id)
    select = pilot.app.screen.query_one(f"#{select_id}")
    values = [v for _, v in select._options]
    await pilot.press("enter")
    steps = values.index(value) - values.index(select.value)
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps))
    await pilot.press("enter")
    await wait_for(pilot, lambda: select.value == value, f"{select_id} = {value}", 5)


async def type_number(pilot, input_id: str, text: str) -> None:
    await tab_to(pilot, input_id)
    await pilot.press("end", "ctrl+u", *text)


def pane(app) -> OptionsPane:
    return app.screen.query_one(OptionsPane)


def run_title(app) -> str:
    """The dashboard's title line as drawn, or "" before the pushed dashboard has composed."""
    titles = app.screen.query("#run-title")
    return str(titles.first().render()) if titles else ""


def drawn(widget) -> str:
    """The characters a widget last drew on the screen, its rows joined by newlines."""
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, *widget.size)))


# ------------------------------------------------------------------ launch screen
async def test_launch_screen_shows_cpu_only_presets_and_focuses_the_default(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LaunchScreen)
        gpus = app.screen.query_one(GpuList)
        assert "no NVIDIA GPU detected - CPU only (NVML library not found)" in str(gpus.render())
        presets = app.screen.query_one(PresetList)
        assert app.focused is presets
        assert presets.current.name == "cpu-quick"
        assert [e.name for e in presets.entries] == sorted(p.stem for p in presets_dir.glob("*.toml"))
        # GPU presets are listed with their reason, not hidden
        dp = next(e for e in presets.entries if e.name == "dp-fp16")
        assert not dp.valid
        prompt = str(presets.get_option_at_index(presets.entries.index(dp)).prompt)
        assert "✗ dp-fp16" in prompt and "no usable GPU" in prompt
        assert pane(app).evaluated.runnable
        assert "effective batch 32" in str(pane(app).query_one("#effective").render())


async def test_preset_picked_by_keys_loads_its_options(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        names = [e.name for e in presets.entries]
        await pilot.press("j", "j")
        assert presets.current.name == names[2]
        assert pane(app).entry.name == names[2]
        await pilot.press("k")
        chosen = presets.current
        assert chosen.name == names[1]
        assert pane(app).query_one("#precision").value == chosen.config.train.precision
        assert pane(app).query_one("#accumulate").value == str(chosen.config.train.accumulate)


async def test_a_preset_that_cannot_be_read_shows_its_error_not_the_previous_options(presets_dir, runs_dir):
    text = (presets_dir / "cpu-quick.toml").read_text()
    (presets_dir / "typo.toml").write_text(text.replace('precision = "fp32"', 'precision = "fp17"'))
    assert "fp17" in (presets_dir / "typo.toml").read_text()
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        await pilot.press(*["down"] * [e.name for e in presets.entries].index("typo"))
        options = pane(app)
        await wait_for(pilot, lambda: options.entry.name == "typo", "the typo preset")
        await wait_for(pilot, lambda: 'train.precision = "fp17"' in str(options.query_one("#problems").render()),
                       "its error")
        assert not any(row.display for row in options.query(".row")), "no option rows from another preset"
        await pilot.press("up")
        await wait_for(pilot, lambda: all(row.display for row in options.query(".row")), "the option rows back")


async def test_presets_fixed_added_edited_or_removed_on_disk_show_while_the_app_is_open(presets_dir, runs_dir):
    quick = (presets_dir / "cpu-quick.toml").read_text()
    typo = presets_dir / "typo.toml"
    typo.write_text(quick.replace('precision = "fp32"', 'precision = "fp17"'))
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        options = pane(app)
        names = [e.name for e in presets.entries]
        await pilot.press(*["down"] * names.index("typo"))
        await wait_for(pilot, lambda: options.entry.name == "typo", "the typo preset")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("cannot start" in n.message for n in app._notifications), "a refusal")
        await pilot.press(*["up"] * (names.index("typo") - 1), "space", "down", "space")  # 2 marks: ddp-bf16-accum4
        await pilot.press(*["down"] * (names.index("typo") - 2))  # and digits-classify; back to typo
        assert presets.current.name == "typo" and presets.marked == ["ddp-bf16-accum4", "digits-classify"]

        # fixed, with a new value; one preset added, one removed: all while the app is open
        typo.write_text(quick.replace("epochs = 100", "epochs = 2"))
        (presets_dir / "added.toml").write_text(quick.replace("epochs = 100", "epochs = 7"))
        (presets_dir / "ddp-bf16-accum4.toml").unlink()
        await wait_for(pilot, lambda: "added" in [e.name for e in presets.entries]
                       and "ddp-bf16-accum4" not in [e.name for e in presets.entries], "the list to follow", 10)
        assert presets.current.name == "typo", "the highlighted preset stays highlighted"
        assert presets.marked == ["digits-classify"], "a mark stays where its file does"
        await wait_for(pilot, lambda: options.evaluated.runnable, "the fixed preset runnable", 10)
        assert options.query_one("#epochs").value == "2"
        assert "✗" not in str(presets.get_option_at_index(presets.entries.index(presets.current)).prompt)
        assert "runnable here" in str(options.query_one("#problems").render())

        await pilot.press(*["up"] * (presets.highlighted - presets.entries.index(presets.marked_entries[0])))
        await pilot.press("space")  # unmarked: enter starts the highlighted preset alone
        await pilot.press(*["down"] * ([e.name for e in presets.entries].index("typo") - presets.highlighted))
        await wait_for(pilot, lambda: options.entry.name == "typo" and not presets.marked, "typo, nothing marked")
        # edited once more just before enter, with no time for the timer to see it: enter reads the file now
        typo.write_text(quick.replace("epochs = 100", "epochs = 3"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        assert live.config.name == "typo"
        assert load_config(live.run_dir / "config.toml").train.epochs == 3, "the run trains the file as it is now"
        await wait_for(pilot, lambda: live.state.ended, "the short run to end")


async def test_a_preset_edited_on_disk_under_edits_in_the_pane_reloads_them_and_says_so(presets_dir, runs_dir):
    quick = presets_dir / "cpu-quick.toml"
    text = quick.read_text()
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        options = pane(app)
        await type_number(pilot, "accumulate", "4")
        await wait_for(pilot, lambda: options.evaluated.config.train.accumulate == 4, "accumulate 4")
        quick.write_text(text.replace("epochs = 100", "epochs = 2"))
        await wait_for(pilot, lambda: any("changed on disk" in n.message for n in app._notifications),
                       "the note that the edits were dropped", 10)
        assert options.query_one("#epochs").value == "2" and options.query_one("#accumulate").value == "1"
        assert not options.edited
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        assert load_config(app.screen.live.run_dir / "config.toml").train.epochs == 2
        await wait_for(pilot, lambda: app.screen.live.state.ended, "the short run to end")


async def test_typing_in_a_number_field_appends_to_the_value_wherever_an_earlier_edit_left_the_cursor(
        presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        epochs = pane(app).query_one("#epochs")
        await tab_to(pilot, "epochs")
        await pilot.press("end", "backspace", "backspace", "backspace", "5")  # cpu-quick: 100 -> 5, the cursor at 1
        assert epochs.value == "5"
        await pilot.press("escape", *["down"] * [e.name for e in presets.entries].index("digits-classify"))
        await wait_for(pilot, lambda: pane(app).entry.name == "digits-classify", "digits-classify")
        assert epochs.value == "40"
        await tab_to(pilot, "epochs")
        await pilot.press("7")
        assert epochs.value == "407", "typed after the value, not inside it"

        # a value loaded while the field has the focus (its file changed on disk) puts the cursor at its end too
        await pilot.press("left", "left")
        path = presets_dir / "digits-classify.toml"
        path.write_text(path.read_text().replace("epochs = 40", "epochs = 12"))
        await wait_for(pilot, lambda: epochs.value == "12", "the file's new value", 10)
        assert app.focused is epochs
        await pilot.press("3")
        assert epochs.value == "123"


async def test_changing_precision_and_accumulation_revalidates_at_once(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        options = pane(app)
        # the choices this machine cannot run are marked with the reason
        labels = {v: str(label) for label, v in options.query_one("#precision")._options}
        assert "✗" in labels["fp16-mixed"] and "needs a CUDA GPU" in labels["fp16-mixed"]
        assert "✗" in labels["tf32"]
        assert "✗" not in labels["bf16-mixed"]

        await choose(pilot, "precision", "fp16-mixed")
        assert not options.evaluated.runnable
        problems = str(options.query_one("#problems").render())
        assert "train.precision = \"fp16-mixed\"" in problems and "needs a CUDA GPU" in problems
        assert options.query_one("#row-precision").has_class("-invalid")
        await pilot.press("enter")  # opens the list again: enter on a choice is not "start"
        await pilot.press("escape")
        await pilot.press("escape")  # back to the presets
        await pilot.press("enter")  # start: refused, the run does not begin
        await wait_for(pilot, lambda: app.screen.query_one(PresetList).has_focus, "the presets")
        assert isinstance(app.screen, LaunchScreen)
        assert not runs_dir.exists() or not any(runs_dir.iterdir())

        await choose(pilot, "precision", "bf16-mixed")
        assert options.evaluated.runnable
        await type_number(pilot, "accumulate", "4")
        await wait_for(pilot, lambda: options.evaluated.config is not None
                       and options.evaluated.config.train.accumulate == 4, "accumulate 4")
        assert options.evaluated.config.effective_batch == 128
        assert "effective batch 128" in str(options.query_one("#effective").render())

        await type_number(pilot, "accumulate", "0")
        await wait_for(pilot, lambda: "accumulate" in options.evaluated.keys, "an accumulate error")
        assert "train.accumulate = 0: expected a value >= 1" in str(options.query_one("#problems").render())
        assert options.query_one("#row-accumulate").has_class("-invalid")


async def test_ctrl_s_saves_the_edited_options_as_a_preset(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_number(pilot, "accumulate", "2")
        await wait_for(pilot, lambda: pane(app).evaluated.config.train.accumulate == 2, "accumulate 2")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.query("#name"), "the name prompt")
        await pilot.press("enter")  # the suggested name
        saved = presets_dir / "cpu-quick-edited.toml"
        await wait_for(pilot, saved.exists, "the preset file")
        config = load_config(saved)
        assert config.train.accumulate == 2 and config.data.batch_size == 32
        await wait_for(pilot, lambda: app.screen.query_one(PresetList).current.name == "cpu-quick-edited",
                       "the new preset highlighted")


# ------------------------------------------------------------------ a run, end to end
async def test_start_default_watch_sparkline_grow_stop_resume_and_see_it_in_runs(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # the default preset, made long enough to watch (and stop) from the keyboard
        await type_number(pilot, "max_steps", "200000")
        await wait_for(pilot, lambda: pane(app).evaluated.config.train.max_steps == 200000, "max steps")
        await pilot.press("escape", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        dashboard = app.screen
        live = dashboard.live
        plot = dashboard.query_one("#train-loss").query_one(SparkPlot)
        await wait_for(pilot, lambda: len(plot.values) > 0, "the first losses")
        first = live.state.train_loss.count
        await wait_for(pilot, lambda: live.state.train_loss.count > first + 50, "more losses")
        # the plot is redrawn on the dashboard's refresh tick, not on each loss: wait for the tick
        await wait_for(pilot, lambda: len(plot.values) > 1, "the plot to grow")
        await wait_for(pilot, lambda: any(ch in drawn(plot) for ch in BARS), "bars drawn in the loss plot")
        assert "running" in str(dashboard.query_one("#progress").render())
        await pilot.resize_terminal(140, 45)  # a resize keeps the layout sane: the plot takes the room
        await wait_for(pilot, lambda: plot.size.width > 100, "the plot to widen")
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: plot.size.width <= 80 and plot.size.height >= 1, "the plot to narrow")
        log = dashboard.query_one("#log")
        assert log.region.bottom <= 23  # above the footer
        await wait_for(pilot, lambda: log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y,
                       "the log's newest line in view after the resize")

        await pilot.press("x")
        await wait_for(pilot, lambda: live.state.status == "stopped", "status stopped")
        stopped_at = live.state.step
        summary = json.loads((live.run_dir / "summary.json").read_text())
        assert summary["status"] == "stopped" and summary["step"] == stopped_at
        assert (live.run_dir / "checkpoint.pt").exists()
        assert "stopped at step" in "\n".join(text for _, text in live.state.log)

        await pilot.press("r")  # resume continues from the checkpoint, in the same run directory
        await wait_for(pilot, lambda: live.state.status == "running" and live.state.step > stopped_at,
                       "the resumed run to train")
        assert live.state.started.start_step == stopped_at
        await pilot.press("x")
        await wait_for(pilot, lambda: live.state.status == "stopped", "stopped again")
        # the ended run's samples/s is its summary's, over both attempts: the same figure as in the runs list
        rate = f"{json.loads((live.run_dir / 'summary.json').read_text())['samples_per_s']:,.0f}"
        await wait_for(pilot, lambda: f"{rate} samples/s over the run" in str(dashboard.query_one("#progress").render()),
                       "the run's own samples/s on the dashboard")

        await pilot.press("escape")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        table = app.screen.query_one(RunsTable)
        record = table.records[live.run_id]
        assert record.status == "stopped"
        assert str(table.get_cell(live.run_id, "status")) == "stopped"
        assert str(table.get_cell(live.run_id, "rate")) == rate
        await pilot.press("q")
    assert app.return_code == 0


async def test_quit_with_an_active_run_asks_and_s_stops_it_cleanly(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_number(pilot, "epochs", "100000")
        await pilot.press("enter")  # enter in an option field starts too
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        await wait_for(pilot, lambda: live.state.train_loss.count > 0, "training")
        await pilot.press("escape")  # back: the run continues in the background
        count = live.state.train_loss.count
        await wait_for(pilot, lambda: live.state.train_loss.count > count, "background training")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the question")
        await pilot.press("n")
        await pilot.pause()
        assert live.runner.is_running()
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the question again")
        await pilot.press("s")  # stop them: checkpoint written, then quit
        await wait_for(pilot, lambda: app.return_code is not None, "the app to exit", timeout=60)
    assert app.return_code == 0
    assert not live.runner.is_running()
    summary = json.loads((live.run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert (live.run_dir / "checkpoint.pt").exists()
    lines = (live.run_dir / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] <= summary["step"]


async def test_a_failing_run_is_shown_not_crashing_the_app(presets_dir, runs_dir):
    (presets_dir / "broken.toml").write_text(
        'description = "a model that cannot be built"\n[model]\nname = "tests.user_parts:broken_model"\n')
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        await pilot.press(*["down"] * [e.name for e in presets.entries].index("broken"))
        assert presets.current.name == "broken"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        await wait_for(pilot, lambda: live.state.status == "failed", "the run to fail")
        log = "\n".join(text for _, text in live.state.log)
        assert "this model cannot be built" in log
        await wait_for(pilot, lambda: "failed" in str(app.screen.query_one("#progress").render()),
                       "failed on the progress line")
        await pilot.press("escape", "q")
    assert app.return_code == 0


async def test_app_opened_with_a_runner_starts_it_on_its_dashboard(presets_dir, runs_dir):
    """`tui-trainer run PRESET` in a terminal: the app opens on the run, and escape leads to the presets."""
    config = make_config("given", train={"max_steps": 100_000})
    runner = Runner(config, RunStore(runs_dir))
    app = TrainerApp(presets_dir, runs_dir, runner, machine=CPU_MACHINE, sampler=no_gpu_sampler())
    _apps.append(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        assert live.runner is runner
        await wait_for(pilot, lambda: live.state.train_loss.count > 0, "training")
        await pilot.press("x")
        await wait_for(pilot, lambda: live.state.status == "stopped", "stopped")
        stopped_at = live.state.step
        await pilot.press("escape")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("q")
    assert app.return_code == 0

    # `tui-trainer resume RUN_DIR`: the dashboard shows the earlier curve, then continues from the checkpoint
    resumed = resume_runner(runner.run_dir)
    app = TrainerApp(presets_dir, runs_dir, resumed, machine=CPU_MACHINE, sampler=no_gpu_sampler())
    _apps.append(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        await wait_for(pilot, lambda: live.state.started is not None, "the resumed run to start")
        assert live.state.started.start_step == stopped_at
        assert live.state.train_loss.count >= stopped_at  # the earlier curve, read from metrics.jsonl
        await wait_for(pilot, lambda: live.state.step > stopped_at, "training past the checkpoint")
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None, "the exit")
    assert json.loads((runner.run_dir / "summary.json").read_text())["status"] == "stopped"


# ------------------------------------------------------------------ runs, detail, compare
def finished_run(runs_dir: Path, name: str, lr: float) -> Path:
    config = make_config(name, train={"max_steps": 40, "eval_every": 10}, optimizer={"lr": lr})
    runner = Runner(config, RunStore(runs_dir))
    run_dir = runner.start()
    assert runner.wait(120) is not None
    return run_dir


async def test_runs_open_a_curve_and_compare_two_side_by_side(presets_dir, runs_dir):
    a = finished_run(runs_dir, "slow", 1e-3)
    b = finished_run(runs_dir, "fast", 1e-2)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        runs = app.screen
        table = runs.query_one(RunsTable)
        assert set(table.records) == {a.name, b.name}
        assert all(r.status == "completed" for r in table.records.values())

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.curves is not None,
                       "the run's curve")
        detail = app.screen
        assert len(detail.curves.losses) == 40
        assert len(detail.query_one("#train-plot", SparkPlot).values) == 40
        assert "completed" in str(detail.query_one("#figures").render())
        await pilot.press("escape")
        assert app.screen is runs

        await pilot.press("space", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.curves is not None,
                       "the comparison")
        compare = app.screen
        shown = {str(compare.query_one(f"#figures-{s}").render()).split("\n")[0] for s in "ab"}
        assert shown == {a.name, b.name}
        train = compare.query_one("#train-overlay").data
        assert [len(s.ys) for s in train.series] == [40, 40]  # both runs on one plot, at one scale
        await pilot.press("escape", "escape", "q")
    assert app.return_code == 0


# ------------------------------------------------------------------ GPU panels (fake NVML)
async def test_gpu_list_and_dashboard_panels_with_fake_nvml(presets_dir, runs_dir):
    sampler = GpuSampler(interval=0.1, backend=FakeNvml.with_gpus(2))
    app = make_app(presets_dir, runs_dir, machine=TWO_GPUS, sampler=sampler)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: len(app.machine_view.gpus) == 2, "two GPU samples")
        # The list names the GPUs at once ("reading..."), then shows their first samples.
        await wait_for(pilot, lambda: str(app.screen.query_one(GpuList).render()).count("°C") == 2,
                       "both GPUs listed with a sample")
        text = str(app.screen.query_one(GpuList).render())
        assert "GPU 0" in text and "GPU 1" in text and "A100" in text and "55°C" in text
        assert "no NVIDIA GPU" not in text
        # on a GPU machine, device ids are picked with space
        presets = app.screen.query_one(PresetList)
        await pilot.press(*["down"] * [e.name for e in presets.entries].index("dp-fp16"))
        options = pane(app)
        assert options.entry.name == "dp-fp16" and options.evaluated.runnable
        ids = options.query_one("#gpu-ids")
        assert sorted(ids.selected) == [0, 1]
        await tab_to(pilot, "gpu-ids")
        await pilot.press("space")  # GPU 0 off: DataParallel on one GPU is refused at once
        await wait_for(pilot, lambda: sorted(ids.selected) == [1], "GPU 0 unpicked")
        assert options.query_one("#devices").value == "[1]"  # GPU id 1, not a count
        assert "needs at least 2 GPUs" in str(options.query_one("#problems").render())
        await pilot.press("space")
        await wait_for(pilot, lambda: options.evaluated.runnable, "GPU 0 picked again")
        assert options.evaluated.config.strategy.devices == (0, 1)

        config = load_config(presets_dir / "dp-fp16.toml")
        live = LiveRun(Runner(config, RunStore(runs_dir)), RunStore(runs_dir))  # shown, never started
        app.open_dashboard(live)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard) and app.screen.query(GpuPanel),
                       "the dashboard")
        panels = list(app.screen.query(GpuPanel))
        assert [p.index for p in panels] == [0, 1]
        await wait_for(pilot, lambda: all(p.sample is not None for p in panels), "panel samples")
        body = str(panels[1].query_one("Static").render())
        assert "GPU 1" in body and "2.0 GiB/40.0 GiB" in body and "util 50%" in body and "250/400 W" in body
        await wait_for(pilot, lambda: len(panels[0].query_one(SparkPlot).values) >= 2, "a memory sparkline")
        await pilot.press("escape", "q")
    assert app.return_code == 0


# ------------------------------------------------------------------ small parts
async def test_help_and_layout_survive_80x24_and_resizes(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        for selector in ("#gpus", "#presets", "#options", "Footer"):
            region = screen.query_one(selector).region
            assert region.width > 0 and region.height > 0 and region.bottom <= 24 and region.right <= 80
        for size in ((160, 50), (60, 20), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert screen.query_one("#presets").region.height > 0
            assert screen.query_one(OptionsPane).region.right <= size[0]
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        assert app.screen.query_one("VerticalScroll").border_subtitle == "escape, ? or q closes", \
            "the help says how to close it (on its frame)"
        await pilot.press("escape")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("q")
    assert app.return_code == 0


def test_first_frame_is_drawn_before_torch_is_imported(tmp_path):
    """In a fresh interpreter: the launch screen is up and torch is not loaded yet."""
    script = f"""
import asyncio, sys
sys.path.insert(0, {str(ROOT)!r})
from tests.test_ui import make_app
from pathlib import Path

async def main():
    app = make_app(Path({str(PRESETS)!r}), Path({str(tmp_path / 'runs')!r}))
    async with app.run_test(size=(80, 24)) as pilot:
        while app.first_frame_s is None:
            await pilot.pause(0.01)
        print("torch_at_first_frame", app.torch_loaded_at_first_frame, "first_frame_s", round(app.first_frame_s, 3))
        await pilot.press("q")

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "torch_at_first_frame False" in result.stdout, result.stdout


def test_gpu_panel_shows_the_runs_own_torch_memory_from_its_events():
    # The run trains in worker processes: its allocator figures reach the panel through progress events.
    from tui_trainer.hardware import GpuSample
    from tui_trainer.ui.widgets.gpu_panel import gpu_lines

    sample = GpuSample(0, 2, "H100", 0.0, memory_used_mib=30_000, memory_total_mib=80_000, utilization_gpu=97,
                       temperature_c=61, power_w=500.0, power_limit_w=700.0)
    text = gpu_lines(sample, 0, 60, (1024.0, 2048.0, 1536.0)).plain
    assert "GPU 0 H100" in text and "97%" in text and "61°C" in text
    assert "torch alloc 1.0 GiB rsvd 2.0 GiB peak 1.5 GiB" in text
    assert "torch: n/a" in gpu_lines(sample, 0, 60).plain


async def test_ddp_preset_on_cpu_processes_shows_live_sparkline_and_both_ranks(presets_dir, runs_dir):
    from tui_trainer.runs import create_runner
    from tui_trainer.ui.widgets.rank_list import RankList

    config = load_config(presets_dir / "ddp-bf16-accum4.toml",
                         ["strategy.devices=2", "strategy.accelerator=cpu", "model.hidden=[32]",
                          "data.samples=20000", "data.batch_size=16", "train.max_steps=100000"])
    runner = create_runner(config, RunStore(runs_dir), isolated=True)
    app = TrainerApp(presets_dir, runs_dir, runner, machine=CPU_MACHINE, sampler=no_gpu_sampler())
    _apps.append(app)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the dashboard")
        live = app.screen.live
        plot = app.screen.query_one("#train-loss").query_one(SparkPlot)
        await wait_for(pilot, lambda: len(plot.values) > 0, "the first losses", timeout=120)
        first = live.state.train_loss.count
        await wait_for(pilot, lambda: live.state.train_loss.count > first + 20, "more losses")
        await wait_for(pilot, lambda: {r.state for r in live.state.ranks.values()} == {"training"}
                       and set(live.state.ranks) == {0, 1}, "both ranks training")
        ranks = str(app.screen.query_one(RankList).render())
        assert "rank 0 training" in ranks and "rank 1 training" in ranks
        await pilot.press("x")
        await wait_for(pilot, lambda: live.state.status == "stopped", "status stopped", timeout=60)
        await wait_for(pilot, lambda: {r.state for r in live.state.ranks.values()} == {"stopped"},
                       "both ranks stopped")


async def test_each_realistic_mistake_is_shown_beside_its_preset_as_the_cli_says_it(tmp_path, runs_dir):
    """The app shows the messages of tests/data/bad_presets/*.expected (without the file name) beside each preset."""
    corpus = ROOT / "tests" / "data" / "bad_presets"
    presets_dir = tmp_path / "bad"
    shutil.copytree(corpus, presets_dir)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        await wait_for(pilot, lambda: len(presets.entries) >= 15, "the corpus listed")
        for index, entry in enumerate(presets.entries):
            if index:
                await pilot.press("down")
            await wait_for(pilot, lambda: pane(app).entry is not None and pane(app).entry.name == entry.name,
                           f"{entry.name} shown", 10)
            shown = str(pane(app).query_one("#problems").render())
            expected = (corpus / f"{entry.name}.expected").read_text(encoding="utf-8").splitlines()
            for line in expected:
                assert "✗ " + line.removeprefix(f"error: {entry.name}.toml: ") in shown.splitlines(), entry.name


async def test_runs_screen_lists_damaged_runs_with_a_note_and_refuses_a_damaged_checkpoint(presets_dir, runs_dir):
    good = finished_run(runs_dir, "good", 1e-3)
    summary = json.loads((good / "summary.json").read_text())
    (good / "summary.json").write_text(json.dumps({**summary, "status": "stopped"}))
    record = (good / "summary.json").read_bytes()
    checkpoint = good / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    for name, text in [("20200101-000000-list", "[1]"), ("20200101-000001-wall", json.dumps({**summary,
                                                                                                "wall_s": "abc"}))]:
        (runs_dir / name).mkdir()
        (runs_dir / name / "summary.json").write_text(text)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(120, 32)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        table = app.screen.query_one(RunsTable)
        assert set(table.records) == {good.name, "20200101-000000-list", "20200101-000001-wall"}
        assert table.records["20200101-000000-list"].note == "summary.json holds list, not an object"
        assert table.records["20200101-000001-wall"].note == 'summary.json: unreadable wall_s = "abc"'
        assert table.current.run_id == good.name  # newest first
        await pilot.press("down")
        await wait_for(pilot, lambda: "damaged: summary.json" in str(app.screen.query_one("#runs-hint").render()),
                       "the note in the hint")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and "damaged:" in str(
            app.screen.query_one("#figures").render()), "the note on the run's figures")
        await pilot.press("escape")
        await pilot.press("up", "r")
        await wait_for(pilot, lambda: any("cannot resume" in n.message for n in app._notifications),
                       "the refusal of the damaged checkpoint")
        (message,) = [n.message for n in app._notifications if "cannot resume" in n.message]
        assert message.startswith(f"cannot resume: {checkpoint}: the checkpoint is damaged or truncated")
        assert not app.live, "nothing was started"
    assert (good / "summary.json").read_bytes() == record, "the run's record is untouched"


async def test_a_saved_preset_name_cannot_leave_the_presets_directory(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    before = set(presets_dir.parent.rglob("*.toml"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.query("#name"), "the name prompt")
        for name in ("../escaped", "/tmp/abs", "sub/dir", ".hidden", ".."):
            await pilot.press("ctrl+u", *name, "enter")
            await wait_for(pilot, lambda: "letters, digits" in str(app.screen.query_one("#error").render()),
                           f"the refusal of {name!r}")
            app.screen.query_one("#error").update("")
        await pilot.press("escape")
    assert set(presets_dir.parent.rglob("*.toml")) == before and not Path("/tmp/abs.toml").exists()
