"""One loss figure, one meaning: "train loss" and "val loss" agree wherever a run is shown."""

from __future__ import annotations

import json

from tests.conftest import cli
from tests.test_ui import make_app, wait_for
from tui_trainer.runs import read_curves
from tui_trainer.training.figures import train_loss, train_loss_window
from tui_trainer.session import format as fmt
from tui_trainer.ui.screens.run_detail import RunDetailScreen
from tui_trainer.ui.screens.runs import RunsScreen


def test_train_loss_is_the_mean_of_the_last_epochs_worth_of_logged_steps():
    assert train_loss_window(12) == 12 and train_loss_window(12, log_every=5) == 2
    assert train_loss_window(0) == 1 and train_loss_window(10**6) == 1000
    assert train_loss([9.0, 1.0, 2.0, 3.0], 3) == 2.0
    assert train_loss([1.0, float("nan"), 3.0], 3) == 2.0 and train_loss([], 3) is None


async def test_a_finished_runs_loss_figures_agree_in_summary_runs_json_headless_lines_and_detail(tmp_path):
    runs_dir = tmp_path / "runs"
    # 50 steps of 12 a epoch: the last step is mid-epoch, where one step's loss and the figure differ.
    result = cli("run", "cpu-quick", "--headless", "--runs-dir", str(runs_dir), "--set", "train.max_steps=50",
                 "--progress-every", "0.1")
    assert result.returncode == 0, result.stderr
    (run_dir,) = runs_dir.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    figure, val = summary["final_loss"], summary["final_val_loss"]
    assert summary["loss_window"] == 12
    curves = read_curves(run_dir / "metrics.jsonl")
    assert figure == train_loss(curves.losses, 12) != curves.losses[-1]

    listed = json.loads(cli("runs", "--json", "--runs-dir", str(runs_dir)).stdout)[0]
    assert (listed["final_loss"], listed["final_val_loss"]) == (figure, val)

    out = result.stdout
    assert f"train loss (mean of last 12 steps) {figure:.4g}  val loss (last evaluation) {val:.4g}" in out
    last_progress = [line for line in out.splitlines() if line.startswith("step ")][-1]
    assert last_progress.startswith("step 50/50") and f"train loss {figure:.4g}  val loss {val:.4g}" in last_progress

    presets_dir = tmp_path / "presets"
    presets_dir.mkdir()
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded, "the runs list")
        row = app.screen.query_one("RunsTable")
        assert row.cells(row.records[run_dir.name])[4] == fmt.number(figure)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.curves is not None,
                       "the run's curve")
        await pilot.pause()
        figures = str(app.screen.query_one("#figures").render())
        assert f"train loss (mean of last 12 steps) {fmt.number(figure)}" in figures
        assert f"val loss (last evaluation) {fmt.number(val)}" in figures
        title = str(app.screen.query_one("#train-title").render())
        assert title.startswith(f"train loss (mean of last 12 steps) {fmt.number(figure)}")
        assert str(app.screen.query_one("#val-title").render()).startswith(f"val loss (last evaluation) {fmt.number(val)}")
        await pilot.press("escape", "escape", "q")


def test_a_resumed_runs_train_loss_averages_over_the_same_window_as_an_unbroken_run(tmp_path):
    from tests.conftest import make_config
    from tui_trainer.runs import Runner, RunStore, resume_runner

    config = make_config("resumed", train={"max_steps": 60})
    runner = Runner(config, RunStore(tmp_path))
    run_dir = runner.start()
    runner.stop()  # stops after its first report, mid-epoch
    stopped = runner.wait(120)
    assert stopped.status == "stopped" and stopped.step < 60
    resumed = resume_runner(run_dir)
    resumed.start()
    summary = resumed.wait(120)
    assert summary.status == "completed"
    losses = read_curves(run_dir / "metrics.jsonl").losses
    assert len(losses) == 60
    assert summary.final_loss == train_loss(losses, summary.loss_window)
