"""The compare screen's overlay plot: runs on one plot with axes, on a step or wall-time axis."""

from __future__ import annotations

import json

from tests.conftest import make_config
from tests.test_ui import finished_run, make_app, presets_dir, wait_for  # noqa: F401 (fixture)
from tui_trainer.runs import Runner, RunStore
from tui_trainer.session import format as fmt
from tui_trainer.runs import Curves
from tui_trainer.ui.screens.compare import STEP, WALL_TIME, CompareScreen, on_axis
from tui_trainer.ui.screens.runs import RunsScreen
from tui_trainer.ui.widgets.overlay_plot import NONE, SHARED, OverlayPlot, overlay_plot, time_label


def plot_cells(plot, row: int) -> tuple[int, ...]:
    """The owners of one plot row's cells (the y-axis gutter left out)."""
    return plot.owners[row][plot.gutter:]


def test_two_runs_on_one_plot_land_in_the_rows_and_columns_of_their_values():
    high = ([0, 5, 10], [10.0, 10.0, 10.0])  # run A: the whole x range, at the top of the shared scale
    low = ([0, 5], [1.0, 1.0])  # run B: half the steps, at the bottom
    plot = overlay_plot([high, low], 30, 5, log=False)
    assert plot.bounds == (1.0, 10.0) and plot.x_range == (0.0, 10)
    assert len(plot.rows) == 5 and all(len(r) == 30 for r in plot.rows)
    top, bottom = plot_cells(plot, 0), plot_cells(plot, 3)
    assert set(top) == {0}, "A fills the top row from the first column to the last"
    half = len(bottom) // 2
    assert set(bottom[:half]) == {1} and set(bottom[half + 1:]) == {NONE}, "B fills the bottom row's left half"
    assert all(set(plot_cells(plot, r)) == {NONE} for r in (1, 2))
    assert all("\u2800" < ch <= "\u28ff" for ch in plot.rows[0][plot.gutter:-1]), "braille dots"


def test_each_curve_ends_in_its_runs_letter_so_runs_differ_without_colour():
    high = ([0, 5, 10], [10.0, 10.0, 10.0])
    low = ([0, 5], [1.0, 1.0])
    plot = overlay_plot([high, low], 30, 5, log=False)
    top, bottom = plot.rows[0][plot.gutter:], plot.rows[3][plot.gutter:]
    assert top[-1] == "A" and top.count("A") == 1, "A ends at the right edge"
    half = len(bottom) // 2
    assert bottom[half] == "B" and bottom.count("B") == 1, "B ends half way, where its steps end"
    assert plot_cells(plot, 0)[-1] == 0 and plot_cells(plot, 3)[half] == 1


def test_cells_where_two_runs_meet_are_drawn_as_shared():
    same = ([0, 1, 2], [3.0, 2.0, 1.0])
    plot = overlay_plot([same, same], 20, 4)
    owners = {o for r in range(3) for o in plot_cells(plot, r)}
    assert owners == {SHARED, NONE}


def test_y_axis_labels_show_the_real_min_and_max_and_a_log_scale_in_real_values():
    linear = overlay_plot([([0, 1], [2.0, 8.0])], 30, 6)
    assert not linear.log
    assert linear.rows[0].lstrip().startswith("8┤") and linear.rows[4].lstrip().startswith("2┤")
    falling = overlay_plot([([0, 1, 2, 3], [1000.0, 100.0, 10.0, 1.0])], 30, 6)
    assert falling.log, "a loss spanning more than a factor of 10 is drawn on a log scale"
    labels = [r.split("┤")[0].strip() for r in falling.rows if "┤" in r]
    assert labels[0] == "1,000" and labels[-1] == "1"
    middle = float(labels[1].replace(",", ""))
    assert 10 < middle < 100, "the middle tick is a real value near the geometric middle (31.6), not log10"
    # the points fall one decade a row apart: a straight line on the log scale
    assert plot_cells(falling, 0)[0] == 0 and plot_cells(falling, 4)[-1] == 0


def test_x_axis_labels_are_steps_or_wall_time_durations():
    steps = overlay_plot([([0, 6000, 12000], [1.0, 2.0, 3.0])], 40, 4)
    assert steps.rows[-1].split("└")[1].startswith("0") and steps.rows[-1].rstrip().endswith("12,000")
    assert "6,000" in steps.rows[-1]
    timed = overlay_plot([([0.0, 75.0, 150.0], [1.0, 2.0, 3.0])], 40, 4, time_label)
    axis = timed.rows[-1]
    assert axis.split("└")[1].startswith("0s") and "1m15s" in axis and axis.rstrip().endswith("2m30s")
    assert time_label(0.04) == "0.04s" and time_label(12) == "12s" and time_label(3725) == "1h02m"


def test_a_curve_goes_on_the_wall_time_axis_through_the_runs_time_marks():
    curves = Curves((1, 2, 3, 4), (4.0, 3.0, 2.0, 1.0), (), (), "", (), time_steps=(2, 4), times=(1.0, 5.0))
    points = ((1.0, 2.0, 3.0, 4.0), (4.0, 3.0, 2.0, 1.0))
    assert on_axis(points, curves, STEP) == points
    xs, ys = on_axis(points, curves, WALL_TIME)
    assert xs == (0.5, 1.0, 3.0, 5.0) and ys == points[1]  # from (0 steps, 0 s) to the first mark, then between
    older = Curves((1, 2), (2.0, 1.0), (), (), "", ())
    assert on_axis(points, older, WALL_TIME) is None


def drawn(widget) -> str:
    """The characters a widget last drew on the screen (its padding included), its rows joined by newlines."""
    from textual.geometry import Region

    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, *widget.outer_size)))


def series_drawn(plot: OverlayPlot) -> set[int]:
    """The series (run indexes) that drew at least one cell of the plot as last rendered."""
    return {owner for row in plot.drawn.owners for owner in row if owner >= 0}


async def open_compare(pilot, app):
    await pilot.pause()
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
    await pilot.press("space", "space", "c")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.curves is not None,
                   "the comparison")
    screen = app.screen
    train = screen.query_one("#train-overlay", OverlayPlot)
    await wait_for(pilot, lambda: "┤" in drawn(train) and "┤" in drawn(screen.query_one("#val-overlay")),
                   "both plots drawn")
    return screen


async def test_compare_overlays_both_runs_on_one_plot_and_t_switches_to_wall_time(presets_dir, runs_dir):
    slow = finished_run(runs_dir, "slow", 1e-3)
    fast = finished_run(runs_dir, "fast", 1e-2)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:  # the smallest terminal the app supports
        screen = await open_compare(pilot, app)
        train, val = screen.query_one("#train-overlay", OverlayPlot), screen.query_one("#val-overlay", OverlayPlot)
        text = drawn(train)
        assert "train loss" in text and "x: step" in text
        assert {r.run_id for r in screen.records} == {slow.name, fast.name}
        for letter, record in zip("AB", screen.records):  # the legend: each run and its value of the key that differs
            assert f"● {letter} {record.run_id} lr=" in text
        assert series_drawn(train) == {0, 1}, "both runs' curves are on the one plot"
        assert text.splitlines()[-1].strip().startswith("└0") and text.splitlines()[-1].rstrip().endswith("40")
        plot_rows = [line for line in text.splitlines() if "┤" in line or "│" in line]
        assert len(plot_rows) >= 3, "at 80x24 the train plot keeps rows to draw in"
        assert len([line for line in drawn(val).splitlines() if "┤" in line or "│" in line]) >= 2

        await pilot.press("t")
        await wait_for(pilot, lambda: "x: wall time" in drawn(train) and "x: wall time" in drawn(val),
                       "the wall-time axis")
        axis = drawn(train).splitlines()[-1].rstrip()
        assert axis.split("└")[1].startswith("0s") and axis.endswith("s"), "the x axis reads durations"
        assert "└" in drawn(val).splitlines()[-1], "at 80x24 the val plot keeps its x axis (its title on one row)"
        assert series_drawn(train) == {0, 1}
        await pilot.press("t")
        await wait_for(pilot, lambda: "x: step" in drawn(train), "back to the step axis")
        await pilot.press("escape", "escape", "q")


async def test_the_val_plot_draws_every_evaluation_so_its_labels_are_the_real_best_and_worst(presets_dir, runs_dir):
    from tui_trainer.runs import read_curves

    runs = []
    for name, lr in (("often-a", 1e-3), ("often-b", 3e-3)):  # 400 evaluations each: more than the 300 drawn points
        config = make_config(name, train={"max_steps": 400, "eval_every": 1}, optimizer={"lr": lr})
        runner = Runner(config, RunStore(runs_dir))
        runs.append(runner.start())
        assert runner.wait(300) is not None
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_compare(pilot, app)
        val_losses = [read_curves(r / "metrics.jsonl").val_losses for r in runs]
        assert [len(points[1][1]) for points in screen.points] == [400, 400], "one drawn point per evaluation"
        labels = [row.split("┤")[0].strip() for row in drawn(screen.query_one("#val-overlay")).splitlines()
                  if "┤" in row]
        worst, best = max(map(max, val_losses)), min(map(min, val_losses))
        assert labels[0] == fmt.number(worst, 3) and labels[-1] == fmt.number(best, 3)
        await pilot.press("escape", "escape", "q")


async def test_a_run_without_recorded_times_is_left_off_the_wall_time_axis_with_a_note(presets_dir, runs_dir):
    timed = finished_run(runs_dir, "timed", 1e-3)
    older = finished_run(runs_dir, "older", 1e-2)
    metrics = older / "metrics.jsonl"  # as an older tui-trainer wrote it: no "time"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "time"}) + "\n" for row in rows))
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_compare(pilot, app)
        train = screen.query_one("#train-overlay", OverlayPlot)
        await pilot.press("t")
        await wait_for(pilot, lambda: "x: wall time" in drawn(train), "the wall-time axis")
        letter = "AB"[[r.run_id for r in screen.records].index(older.name)]
        assert f"no wall times recorded for run {letter}" in drawn(train)
        assert sum(s is not None for s in train.data.series) == 1, "the timed run is still drawn"
        assert timed.name in drawn(train)
        await pilot.press("escape", "escape", "q")


async def test_three_marked_runs_are_compared_on_one_plot(presets_dir, runs_dir):
    names = {finished_run(runs_dir, name, lr).name for name, lr in (("a", 1e-3), ("b", 1e-2), ("c", 3e-2))}
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        await pilot.press("space", "space", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.curves is not None,
                       "the comparison")
        train = app.screen.query_one("#train-overlay", OverlayPlot)
        await wait_for(pilot, lambda: train.drawn is not None, "the plot drawn")
        assert {r.run_id for r in app.screen.records} == names
        assert len(train.data.series) == 3 and all(f"● {letter} " in drawn(train) for letter in "ABC")
        assert len([line for line in drawn(train).splitlines() if "┤" in line or "│" in line]) >= 3
        await pilot.press("escape", "escape", "q")
