"""The app's experiment parts: settings in the runs list, what differs in compare, the accelerator option."""

from __future__ import annotations

from tests.test_ui import choose, finished_run, make_app, pane, presets_dir, run_title, wait_for  # noqa: F401 (fixture)
from tui_trainer.ui.screens.compare import CompareScreen
from tui_trainer.ui.screens.launch import LaunchScreen
from tui_trainer.ui.screens.runs import RunsScreen
from tui_trainer.ui.widgets.runs_table import RunsTable


async def test_runs_list_shows_settings_and_compare_lists_the_config_keys_that_differ(presets_dir, runs_dir):
    slow = finished_run(runs_dir, "slow", 1e-3)
    fast = finished_run(runs_dir, "fast", 1e-2)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        table = app.screen.query_one(RunsTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[-5:] == ["strategy", "precision", "acc", "eff.batch", "lr"]
        assert table.get_row(fast.name)[-5:] == ["cpu", "fp32", "1", "32", "0.01"]
        assert table.get_row(slow.name)[-1] == "0.001"

        await pilot.press("space", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.curves is not None,
                       "the comparison")
        compare = app.screen
        assert [key for key, _ in compare.differences] == ["optimizer.lr"]
        shown = str(compare.query_one("#compare-differs").render())
        assert shown.startswith("differs: optimizer.lr ") and "0.01" in shown and "0.001" in shown
        await pilot.press("escape", "escape", "q")


async def test_options_offer_the_accelerator_so_cpu_model_parallel_is_picked_in_the_app(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        options = pane(app)
        await choose(pilot, "strategy", "model-parallel")
        assert not options.evaluated.runnable, "model-parallel on auto wants GPUs this machine lacks"
        await choose(pilot, "accelerator", "cpu")
        await wait_for(pilot, lambda: options.evaluated.runnable, "a runnable CPU model-parallel config")
        config = options.evaluated.config
        assert (config.strategy.name, config.strategy.accelerator) == ("model-parallel", "cpu")


async def test_ctrl_s_asks_for_the_name_and_the_description_of_the_new_preset(presets_dir, runs_dir):
    from tests.test_ui import type_number
    from tui_trainer.config import load_config

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_number(pilot, "accumulate", "2")
        await wait_for(pilot, lambda: pane(app).evaluated.config.train.accumulate == 2, "accumulate 2")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.query("#description"), "the save prompt")
        suggested = app.screen.query_one("#description").value
        assert "train.accumulate=2" in suggested, "the suggestion names what was changed"
        await pilot.press("end", "ctrl+u", *"fast-cpu", "tab", "end", "ctrl+u", *"Diabetes, accumulate 2", "enter")
        saved = presets_dir / "fast-cpu.toml"
        await wait_for(pilot, saved.exists, "the preset file")
        config = load_config(saved)
        assert config.description == "Diabetes, accumulate 2" and config.train.accumulate == 2


async def test_launch_marks_two_presets_and_enter_runs_them_as_a_queue(presets_dir, runs_dir):
    from tui_trainer.ui.screens.run_dashboard import RunDashboard

    quick = (presets_dir / "cpu-quick.toml").read_text().replace("epochs = 100 ", "max_steps = 15\nepochs = 100 ")
    (presets_dir / "a-first.toml").write_text(quick.replace('accumulate = 1', 'accumulate = 2'))
    (presets_dir / "b-second.toml").write_text(quick.replace('precision = "fp32"', 'precision = "bf16-mixed"'))
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("space", "j", "space", "enter")
        await wait_for(pilot, lambda: app.screen.query("#queue-keys"), "the queue's question")
        second = presets_dir / "b-second.toml"  # edited while the question is open: queued as it is then
        second.write_text(second.read_text().replace("max_steps = 15", "max_steps = 12"))
        await pilot.press("enter")  # start; a failed run would not stop the queue
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the first run's dashboard")
        await wait_for(pilot, lambda: run_title(app).startswith("queue 1/2  run "),
                       "the queue's position in the title")
        from tui_trainer.ui.widgets.preset_list import PresetList

        presets = app.screen_stack[-2].query_one(PresetList)  # the launch screen under the dashboard
        assert presets.marked == [] and "●" not in str(presets.get_option_at_index(0).prompt), \
            "started: the marks are cleared, so enter back there is a new choice, not the same queue again"
        await wait_for(pilot, lambda: len(app.live) == 2 and all(l.state.ended for l in app.live.values()),
                       "both queued runs to end", timeout=180)
        assert [l.config.name for l in app.live.values()] == ["a-first", "b-second"]
        assert [l.config.train.max_steps for l in app.live.values()] == [15, 12]
        assert all(l.state.status == "completed" for l in app.live.values())
        assert isinstance(app.screen, RunDashboard) and app.screen.live.queue_label == "queue 2/2"
        assert sum(isinstance(s, RunDashboard) for s in app.screen_stack) == 1, \
            "the next queue run's dashboard took the place of the one watched"
        await pilot.press("escape")
        assert isinstance(app.screen, LaunchScreen), "one escape leads back to the launch screen"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        table = app.screen.query_one(RunsTable)
        rows = {table.records[k].name: table.get_row(k) for k in table.records}
        assert rows["a-first"][-5:-2] == ["cpu", "fp32", "2"] and rows["b-second"][-4] == "bf16-mixed"
        await pilot.press("escape", "q")


async def pick(pilot, axis_id: str, *values: str) -> None:
    """Tab to an axis's list and toggle these values with the arrows and space, as a user would."""
    from tests.test_ui import tab_to

    await tab_to(pilot, axis_id)
    axis = pilot.app.focused
    for value in values:
        target = [axis.get_option_at_index(i).value for i in range(axis.option_count)].index(value)
        while axis.highlighted != target:
            await pilot.press("down" if (axis.highlighted or 0) < target else "up")
        await pilot.press("space")


async def test_sweep_screen_picks_values_by_keyboard_fills_its_rows_and_saves_the_fastest_as_a_preset(
        presets_dir, runs_dir):
    import json

    from tests.test_ui import tab_to
    from tui_trainer.config import load_config
    from tui_trainer.ui.screens.sweep import SweepScreen

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        sweep = app.screen
        count = sweep.query_one("#sweep-count")
        assert str(count.render()) == "0 axes, 1 run of 100 steps", "each axis starts at the preset's value"
        await pick(pilot, "axis-train-precision", "bf16-mixed")
        await pick(pilot, "axis-strategy-name", "single")
        assert "no usable GPU" in str(sweep.query_one("#sweep-hint").render()), "the reason beside the value"
        await pick(pilot, "axis-train-accumulate", "2")
        assert sweep.picked()["train.precision"] == ("fp32", "bf16-mixed")
        assert str(count.render()) == "3 axes, 8 runs of 100 steps (4 with a ✗ value: skipped)"
        await tab_to(pilot, "steps")
        await pilot.press("end", "ctrl+u", *"10")
        assert str(count.render()).startswith("3 axes, 8 runs of 10 steps")
        await tab_to(pilot, "axis-train-compile")
        await pilot.press("enter")
        await wait_for(pilot, lambda: sum(r.status == "completed" for r in sweep.rows) == 4,
                       "four completed rows", timeout=400)
        await wait_for(pilot, lambda: sweep.finished, "the sweep to finish")
        table = sweep.query_one("#sweep-rows")
        assert table.row_count == 8
        completed = [r for r in sweep.rows if r.status == "completed"]
        assert {(dict(r.values)["train.precision"], dict(r.values)["train.accumulate"]) for r in completed} == {
            ("fp32", 1), ("fp32", 2), ("bf16-mixed", 1), ("bf16-mixed", 2)}
        skipped = [r for r in sweep.rows if r.status == "skipped"]
        assert len(skipped) == 4 and all(dict(r.values)["strategy.name"] == "single" for r in skipped)
        assert all("no usable GPU" in r.reason for r in skipped)
        statuses = [str(table.get_row(str(i))[-7]) for i in range(8)]
        assert statuses.count("completed") == 4 and statuses.count("skipped") == 4
        fastest = next(r for r in sweep.rows if r.fastest)
        files = json.loads((sweep.directory / "sweep.json").read_text())
        assert [r["run_id"] for r in files["rows"]] == [r.run_id for r in sweep.rows]
        assert sweep.directory.parent == runs_dir.parent / "sweeps"

        await pilot.press("f")
        await wait_for(pilot, lambda: app.screen.query("#description"), "the save prompt")
        assert "train.accumulate=" in app.screen.query_one("#description").value
        await pilot.press("end", "ctrl+u", *"fastest-cpu", "tab", "end", "ctrl+u", *"the sweep's fastest", "enter")
        saved = presets_dir / "fastest-cpu.toml"
        await wait_for(pilot, saved.exists, "the saved preset")
        config = load_config(saved)
        values = dict(fastest.values)
        assert config.description == "the sweep's fastest"
        assert (config.train.precision, config.train.accumulate) == (values["train.precision"],
                                                                     values["train.accumulate"])
        assert config.strategy.name == "cpu"
        assert config.train.max_steps == 0, "the preset keeps its own length, not the sweep's"


async def test_sweep_screen_takes_a_typed_batch_size_and_fits_an_80x24_terminal(presets_dir, runs_dir):
    from tests.test_ui import tab_to
    from tui_trainer.ui.screens.sweep import SweepScreen

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        sweep = app.screen
        await tab_to(pilot, "more-data-batch_size")
        await pilot.press("0", "enter")
        hint = sweep.query_one("#sweep-hint")
        assert str(hint.render()).strip() == "✗ batch size: expected a positive whole number, got '0'"
        await pilot.press("backspace", *"48", "enter")
        assert sweep.picked()["data.batch_size"] == ("32", "48")
        assert str(sweep.query_one("#sweep-count").render()) == "1 axis, 2 runs of 100 steps"

        await pilot.pause()
        for selector in ("#axis-train-precision", "#axis-strategy-name", "#axis-train-accumulate",
                         "#axis-data-batch_size", "#axis-train-compile", "#sweep-rows", "#sweep-count", "#steps"):
            region = sweep.query_one(selector).region
            assert region.height > 0 and region.width > 0 and region.bottom <= 23, f"{selector} is visible"
        assert sweep.query_one("#sweep-rows").region.height >= 5, "room for the table"
        await pilot.press("escape", "q")


async def test_sweep_screen_digits_on_a_list_add_a_value_steps_are_checked_as_typed_and_statuses_fit(
        presets_dir, runs_dir):
    from tests.test_ui import drawn, tab_to
    from tui_trainer.ui.screens.sweep import SweepScreen

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        sweep = app.screen
        hint = sweep.query_one("#sweep-hint")
        count = sweep.query_one("#sweep-count")
        await tab_to(pilot, "axis-train-accumulate")
        assert "accumulate: space picks" in str(hint.render()) and "type a number" in str(hint.render())
        await pilot.press("3")  # on the list: it goes to the list's "+ type" field, as the hint says
        field = sweep.query_one("#more-train-accumulate")
        assert app.focused is field and field.value == "3"
        assert str(hint.render()).startswith("accumulate: type a whole number"), "the hint speaks of this field"
        await pilot.press("enter")
        assert sweep.picked()["train.accumulate"] == ("1", "3")
        await tab_to(pilot, "more-data-batch_size")
        assert str(hint.render()).startswith("batch size: type a whole number"), "not the axis left behind"

        await tab_to(pilot, "steps")
        assert str(hint.render()).startswith("steps: the optimizer steps each run takes")
        await pilot.press("end", "ctrl+u", "0", "0", "0")
        assert str(count.render()) == "✗ steps: expected a whole number >= 1; 1 axis, 2 runs of 0 steps"
        await pilot.press("enter")  # refused in the same words
        assert sweep.plan is None
        assert str(sweep.query_one("#sweep-status").render()) == "✗ steps: expected a whole number >= 1"
        await pilot.press("end", "ctrl+u", "0", "0", "5")
        assert str(count.render()) == "1 axis, 2 runs of 5 steps"

        await pilot.press("enter")
        await wait_for(pilot, lambda: sweep.finished, "the two short rows", timeout=300)
        table = sweep.query_one("#sweep-rows")
        assert all(r.status == "completed" for r in sweep.rows)
        assert drawn(table).count("completed") == 2, "the status column is never cut at 80 columns"
        await pilot.press("escape", "q")


async def test_options_toggle_compile_and_tensorboard(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        options = pane(app)
        assert options.evaluated.config.train.compile is False
        await choose(pilot, "compile", "true")
        await choose(pilot, "tensorboard", "true")
        await wait_for(pilot, lambda: options.evaluated.config.logging.tensorboard, "tensorboard on")
        config = options.evaluated.config
        assert config.train.compile and config.logging.tensorboard and options.evaluated.runnable


async def test_a_run_started_beside_one_another_process_trains_is_said_to_share_the_machine(presets_dir, runs_dir):
    from tests.test_ui import finished_run
    from tui_trainer.runs.liveness import RunLock, write_heartbeat

    elsewhere = finished_run(runs_dir, "elsewhere", 1e-3)  # trained on by another process: lock held, heart beating
    lock = RunLock.acquire(elsewhere)
    write_heartbeat(elsewhere)
    try:
        app = make_app(presets_dir, runs_dir)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(app.active_runs) == 1, "the run")
            await wait_for(pilot, lambda: any("2 runs are training side by side" in n.message
                                              for n in app._notifications), "the warning")
            for live in app.live.values():
                live.runner.stop()
            await wait_for(pilot, lambda: not app.active_runs, "the run stopped", timeout=120)
    finally:
        lock.release()


async def test_a_second_run_started_by_hand_trains_beside_the_first_and_the_app_says_so(presets_dir, runs_dir):
    long = (presets_dir / "cpu-quick.toml").read_text().replace("epochs = 100 ", "epochs = 100000 ")
    (presets_dir / "a-long.toml").write_text(long)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.active_runs) == 1, "the first run")
        await pilot.press("escape", "enter")
        await wait_for(pilot, lambda: len(app.active_runs) == 2, "both runs training")
        assert any("2 runs are training side by side" in n.message for n in app._notifications)
        await pilot.press("escape", "r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        table = app.screen.query_one(RunsTable)
        assert len(table.records) == 2 and all(r.status in ("running", "starting") for r in table.records.values())
        for live in app.live.values():
            live.runner.stop()
        await wait_for(pilot, lambda: not app.active_runs, "both runs stopped", timeout=120)
