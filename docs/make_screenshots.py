"""Regenerate the README's screenshots: `python docs/make_screenshots.py` (about a minute on 2 cores).

Drives the real app headless at 100x32 with Textual's Pilot, on this machine's real GPUs (or none),
with real runs in a temporary run store, and saves one SVG per screen into docs/.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tui_trainer.config import load_config, with_overrides  # noqa: E402
from tui_trainer.runs import Runner, RunStore  # noqa: E402
from tui_trainer.ui.app import TrainerApp  # noqa: E402
from tui_trainer.ui.screens.compare import CompareScreen  # noqa: E402
from tui_trainer.ui.screens.run_dashboard import RunDashboard  # noqa: E402
from tui_trainer.ui.screens.runs import RunsScreen  # noqa: E402

SIZE = (100, 32)
DOCS = ROOT / "docs"


def finished_run(runs_dir: Path, overrides: list[str]) -> None:
    """A completed run of the default preset with these overrides, for the runs and compare screens."""
    config = with_overrides(load_config(ROOT / "presets" / "cpu-quick.toml"), overrides)
    runner = Runner(config, RunStore(runs_dir))
    runner.start()
    runner.wait()


async def wait_for(pilot, condition, timeout: float = 600.0) -> None:
    """Let the app run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not reach the state to capture")
        await pilot.pause(0.05)


async def tab_to(pilot, widget_id: str) -> None:
    """Press tab until the widget with this id has the focus."""
    for _ in range(20):
        if pilot.app.focused is not None and pilot.app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise RuntimeError(f"tab never reached #{widget_id}")


async def main() -> None:
    """Two finished runs, then one screenshot per screen."""
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        finished_run(runs_dir, ["train.max_steps=600"])
        finished_run(runs_dir, ["train.max_steps=600", "train.precision=bf16-mixed", "train.accumulate=2"])
        app = TrainerApp(ROOT / "presets", runs_dir)
        try:
            await capture(app)
        finally:
            for live in app.live.values():  # a failed capture must not leave a training thread behind
                live.runner.stop()
                live.runner.wait()
    for name in ("launch", "run", "runs", "compare"):
        print(DOCS / f"screenshot-{name}.svg")


async def capture(app: TrainerApp) -> None:
    """Drive the app by keys through each screen, saving a screenshot of each."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(1.5)  # the first GPU / process readings
        app.save_screenshot("screenshot-launch.svg", str(DOCS))

        await tab_to(pilot, "max_steps")  # the default, long enough to watch
        await pilot.press("end", "ctrl+u", *"50000", "escape", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDashboard))
        live = app.screen.live
        await wait_for(pilot, lambda: live.state.step > 800 and live.state.eval is not None)
        await pilot.pause(1.2)
        app.save_screenshot("screenshot-run.svg", str(DOCS))
        await pilot.press("x")
        await wait_for(pilot, lambda: live.state.ended)  # stopped: it shows as such in the runs

        await pilot.press("escape", "r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        await pilot.pause(0.3)
        app.save_screenshot("screenshot-runs.svg", str(DOCS))

        await pilot.press("down", "space", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.curves is not None)
        await pilot.pause(0.3)
        app.save_screenshot("screenshot-compare.svg", str(DOCS))
        await pilot.press("escape", "escape", "q")


if __name__ == "__main__":
    asyncio.run(main())
