"""The app's housekeeping: deleting runs from the Runs screen, a queue that stops at a failure, quitting
while a sweep trains. Real runs, real files; every wait polls a condition a user would see."""

from __future__ import annotations

from tests.test_ui import finished_run, make_app, presets_dir, run_title, wait_for  # noqa: F401 (fixture)
from tui_trainer.runs.liveness import RunLock, write_heartbeat
from tui_trainer.ui.screens.confirm_delete import ConfirmDeleteScreen
from tui_trainer.ui.screens.run_detail import RunDetailScreen
from tui_trainer.ui.screens.runs import RunsScreen
from tui_trainer.ui.widgets.runs_table import RunsTable


async def open_runs(pilot, app) -> RunsTable:
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
    return app.screen.query_one(RunsTable)


async def move_to(pilot, table: RunsTable, run_id: str) -> None:
    table.move_cursor(row=table.get_row_index(run_id))
    await wait_for(pilot, lambda: table.current is not None and table.current.run_id == run_id, f"cursor on {run_id}")


def said(app) -> str:
    return str(app.screen.query_one("#runs-said").render())


async def test_d_deletes_the_marked_runs_after_confirmation_and_keeps_a_live_one(presets_dir, runs_dir):
    done = finished_run(runs_dir, "done", 1e-3)
    busy = finished_run(runs_dir, "busy", 1e-3)
    lock = RunLock.acquire(busy)  # this process owns `busy` now, as a training process would
    write_heartbeat(busy)
    app = make_app(presets_dir, runs_dir)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            table = await open_runs(pilot, app)
            runs = app.screen
            for run_id in (done.name, busy.name):
                await move_to(pilot, table, run_id)
                await pilot.press("space")
            assert table.marked == [done.name, busy.name]

            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDeleteScreen), "the confirmation")
            modal = app.screen
            assert [r.run_id for r in modal.doomed] == [done.name] and [r.run_id for r in modal.live] == [busy.name]
            assert "delete 1 run?" in str(modal.query_one("#delete-question").render())
            assert done.name in str(modal.query_one("#delete-runs").render())
            kept = str(modal.query_one("#delete-kept").render())
            assert "still training" in kept and busy.name in kept

            await pilot.press("y")
            await wait_for(pilot, lambda: not done.exists() and set(table.records) == {busy.name},
                           "the deleted run gone from disk and from the list")
            assert app.screen is runs and busy.exists()
            assert said(app) == f"deleted 1 run; kept 1 live run: {busy.name} (stop it first)"
            await pilot.press("escape", "q")
    finally:
        lock.release()


async def test_cancelling_the_deletion_deletes_nothing(presets_dir, runs_dir):
    run = finished_run(runs_dir, "keep-me", 1e-3)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        table = await open_runs(pilot, app)
        await pilot.press("d")  # nothing marked: the highlighted run
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDeleteScreen), "the confirmation")
        assert [r.run_id for r in app.screen.doomed] == [run.name]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "back on the list")
        assert said(app) == "nothing deleted"
        assert run.exists() and set(table.records) == {run.name}
        await pilot.press("escape", "q")


async def test_d_on_a_run_detail_deletes_it_and_returns_to_the_list(presets_dir, runs_dir):
    gone = finished_run(runs_dir, "gone", 1e-3)
    stays = finished_run(runs_dir, "stays", 1e-3)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        table = await open_runs(pilot, app)
        runs = app.screen
        await move_to(pilot, table, gone.name)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "the run's detail")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDeleteScreen), "the confirmation")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is runs and set(table.records) == {stays.name},
                       "the list without the deleted run")
        assert not gone.exists() and stays.exists()
        assert said(app) == "deleted 1 run"
        await pilot.press("escape", "q")


# ------------------------------------------------------------------ queue: stop on failure
def queue_presets(presets_dir):
    """`a-broken` (its model cannot be built: the run fails at once) and `b-second` (15 steps), in that order."""
    quick = (presets_dir / "cpu-quick.toml").read_text().replace("epochs = 100 ", "max_steps = 15\nepochs = 100 ")
    (presets_dir / "a-broken.toml").write_text(quick.replace("[model]\n", '[model]\nname = "tests.user_parts:broken_model"\n'))
    (presets_dir / "b-second.toml").write_text(quick)


async def start_marked_queue(pilot, app, key: str) -> None:
    await pilot.press("space", "j", "space", "enter")
    await wait_for(pilot, lambda: app.screen.query("#queue-keys"), "the queue's question")
    assert "start 2 presets as a queue" in str(app.screen.query_one("#queue-question").render())
    await pilot.press(key)


async def test_a_queue_started_with_f_stops_at_the_first_failed_run(presets_dir, runs_dir):
    from tui_trainer.ui.screens.run_dashboard import RunDashboard

    queue_presets(presets_dir)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await start_marked_queue(pilot, app, "f")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard), "the first run's dashboard")
        await wait_for(pilot, lambda: run_title(app).startswith("queue 1/2 (stops on failure)  run "),
                       "the queue's position in the title")
        failed = app.screen.live
        await wait_for(pilot, lambda: failed.state.ended and app.queue_run_id is None, "the failed run to end")
        assert failed.state.status == "failed" and failed.config.name == "a-broken"
        said = f"queue stopped on failure: run {failed.run_id} (a-broken) failed; 1 preset not started"
        assert any(n.message == said for n in app._notifications)
        assert ("error", said) in failed.state.log
        assert list(app.live) == [failed.run_id] and not app.queue
        assert [d.name for d in runs_dir.iterdir()] == [failed.run_id], "b-second was never started"
        await pilot.press("escape", "q")


async def test_a_queue_started_with_enter_goes_on_after_a_failed_run(presets_dir, runs_dir):
    queue_presets(presets_dir)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await start_marked_queue(pilot, app, "enter")
        await wait_for(pilot, lambda: len(app.live) == 2 and all(l.state.ended for l in app.live.values()),
                       "both queued runs to end", timeout=180)
        assert [(l.config.name, l.state.status) for l in app.live.values()] == \
            [("a-broken", "failed"), ("b-second", "completed")]
        await pilot.press("escape", "q")


# ------------------------------------------------------------------ quitting while a sweep trains
async def start_long_sweep(pilot):
    """From the launch screen: a sweep of accumulate 1, 2, 4 whose rows are too long to end by themselves."""
    from tests.test_ui import tab_to
    from tests.test_ui_experiments import pick
    from tui_trainer.ui.screens.sweep import SweepScreen

    app = pilot.app
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
    sweep = app.screen
    await pick(pilot, "axis-train-accumulate", "2", "4")  # with the preset's 1: three rows
    await tab_to(pilot, "steps")
    await pilot.press("end", "ctrl+u", *"1000000", "enter")  # row 1 cannot end before the quit
    await wait_for(pilot, lambda: sweep.losses, "row 1 training", timeout=120)
    return sweep


async def test_quitting_while_a_sweep_trains_stops_it_and_no_further_row_starts(presets_dir, runs_dir):
    import json

    from tui_trainer.ui.screens.confirm_quit import ConfirmQuitScreen

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        sweep = await start_long_sweep(pilot)
        assert sweep.running and sweep.position == (1, 3)

        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the question")
        question = str(app.screen.query_one("#question").render())
        assert question == "stop the sweep (row 1/3) and quit? y/n"
        assert "rows 2-3 not started" in str(app.screen.query_one("#detail").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: app.return_code is not None, "the app to exit", timeout=120)
    assert app.return_code == 0 and sweep.ended.is_set()
    (run_dir,) = runs_dir.iterdir()  # no further row started
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
    rows = json.loads((sweep.directory / "sweep.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["failed", "skipped", "skipped"]
    assert rows[0]["reason"].startswith("stopped at step") and rows[0]["run_id"] == run_dir.name


async def test_quitting_right_after_closing_a_sweep_waits_for_its_row_to_stop(presets_dir, runs_dir):
    """`escape` closes the sweep screen and asks its row to stop; a quit at once still waits for that row
    (the sweep writes its record from the app's process), whether or not the row has stopped by then."""
    import json

    from tui_trainer.ui.screens.confirm_quit import ConfirmQuitScreen

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        sweep = await start_long_sweep(pilot)
        await pilot.press("escape", "q")
        await pilot.pause()
        if isinstance(app.screen, ConfirmQuitScreen):  # the row had not stopped yet: the quit asks first
            assert "sweep" in str(app.screen.query_one("#question").render())
            await pilot.press("y")
        await wait_for(pilot, lambda: app.return_code is not None, "the app to exit", timeout=120)
    assert app.return_code == 0 and sweep.ended.is_set()
    record = json.loads((sweep.directory / "sweep.json").read_text())
    assert record["finished"] and [r["status"] for r in record["rows"]] == ["failed", "skipped", "skipped"]


async def test_the_quit_question_counts_a_sweep_beside_the_runs_and_says_it_stops(presets_dir, runs_dir):
    from tui_trainer.ui.screens.confirm_quit import ConfirmQuitScreen

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        app.push_screen(ConfirmQuitScreen(1, sweeps=((3, 8),)))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen) and app.screen.query("#question"),
                       "the question")
        assert str(app.screen.query_one("#question").render()) == "1 run and 1 sweep (row 3/8) are training. quit and..."
        detail = str(app.screen.query_one("#detail").render())
        assert "l  leave the run training" in detail and "the sweep stops" in detail and "rows 4-8 not started" in detail
        assert "s  stop the run and the sweep (row 3/8)" in detail
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmQuitScreen), "the question gone")
        await pilot.press("q")
    assert app.return_code == 0


# ------------------------------------------------------------------ the list as runs come and go
async def test_the_runs_list_shows_a_run_that_appears_and_counts_marks_as_they_change(presets_dir, runs_dir):
    import json
    import shutil
    from datetime import datetime, timedelta

    first = finished_run(runs_dir, "first", 1e-3)
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        table = await open_runs(pilot, app)
        hint = app.screen.query_one("#runs-hint")
        await pilot.press("space")  # the only row: the cursor cannot move on, the count must still change
        await wait_for(pilot, lambda: "[1 marked" in str(hint.render()), "the hint counting the mark")
        await pilot.press("space")
        await wait_for(pilot, lambda: "marked" not in str(hint.render()), "the hint without marks")

        # Another process's run appears in the store: a live one (its summary says running, its
        # heartbeat beats) whose figures come only at its end.
        other = runs_dir / "20990101-000000-other"
        shutil.copytree(first, other)
        summary = json.loads((other / "summary.json").read_text())
        started = (datetime.now() - timedelta(seconds=125)).isoformat(timespec="seconds")
        summary.update(run_id=other.name, status="running", samples_per_s=0.0, wall_s=0.0, started_at=started)
        (other / "summary.json").write_text(json.dumps(summary))
        lock = RunLock.acquire(other)
        write_heartbeat(other)
        try:
            await wait_for(pilot, lambda: other.name in table.records, "the new run listed without leaving the screen")
            row = [str(cell) for cell in table.get_row(other.name)]
            assert row[5] == "-", "no samples/s until the run ends, not 0"
            assert row[6].startswith("2m"), f"a live run's time is its age, not 0s: {row[6]}"
        finally:
            lock.release()
        await pilot.press("escape", "q")


def test_after_quitting_the_terminal_says_how_each_run_ended_and_how_to_find_it_again(runs_dir, capsys):
    from dataclasses import replace
    from types import SimpleNamespace

    from tui_trainer.runs.store import read_summary
    from tui_trainer.ui.app import print_run_ends

    left = finished_run(runs_dir, "left", 1e-3)  # training on elsewhere: its lock held, its heart beating
    ended = finished_run(runs_dir, "ended", 1e-3)
    stopped = finished_run(runs_dir, "stopped", 1e-3)
    lock = RunLock.acquire(left)
    write_heartbeat(left)

    def live(run_dir, detached=False, summary=None):
        return SimpleNamespace(run_id=run_dir.name, run_dir=run_dir, runner=SimpleNamespace(detached=detached),
                               state=SimpleNamespace(summary=summary))

    runs = {"a": live(left, detached=True), "b": live(ended, summary=read_summary(ended)),
            "c": live(stopped, summary=replace(read_summary(stopped), status="stopped", step=20))}
    try:
        print_run_ends(SimpleNamespace(live=runs))
    finally:
        lock.release()
    assert capsys.readouterr().out.splitlines() == [
        f"left training: {left.name}  (tui-trainer attach {left} follows it, tui-trainer stop {left} stops it)",
        f"completed: {ended.name} at step 40/40",
        f"stopped: {stopped.name} at step 20/40  (tui-trainer resume {stopped} continues it)"]
