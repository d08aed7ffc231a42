"""Keys that arrive together (a fast typist, keys batched by SSH or tmux) are applied in the order typed.

A terminal read can hold several keys; the app gets them all before it handles the first. Pilot's
`press` waits for the app to settle after each key, so these tests post the keys as one burst instead.
Textual's plain Input applies a burst's backspace after the characters typed behind it
(Textualize/textual#6605): `100`, backspace x3, `3000` read `3` in the sweep screen's steps field; and
digits typed right after a tab went into the field the tab left.
"""

from __future__ import annotations

from textual import events

from tests.test_ui import make_app, presets_dir, tab_to, wait_for  # noqa: F401 (fixture)
from tui_trainer.config import load_config
from tui_trainer.ui.screens.save_preset import SavePresetScreen
from tui_trainer.ui.screens.sweep import SweepScreen


def burst(app, *keys: str) -> None:
    """Post every key before the app handles any, as one read of the terminal delivers them."""
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


async def test_a_burst_with_backspaces_edits_an_option_field_in_typing_order(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await tab_to(pilot, "max_steps")
        field = app.focused
        assert field.value == "0"
        burst(app, "end", "backspace", "1", "2", "0", "0", "0", "backspace", "5")
        await wait_for(pilot, lambda: field.value == "12005", "max steps 12005")
        await wait_for(pilot, lambda: app.screen.query_one("OptionsPane").evaluated.config.train.max_steps == 12005,
                       "the options to take it")


async def test_a_burst_in_the_sweep_steps_field_replaces_its_value_as_typed(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        await tab_to(pilot, "steps")
        field = app.focused
        burst(app, "end", "backspace", "backspace", "backspace", "3", "0", "0", "0")
        await wait_for(pilot, lambda: field.value == "3000", "steps 3000")
        count = app.screen.query_one("#sweep-count")
        await wait_for(pilot, lambda: str(count.render()) == "0 axes, 1 run of 3000 steps", "the run count")


async def test_a_burst_of_digits_on_the_batch_size_list_lands_in_its_field_in_order(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        sweep = app.screen
        await tab_to(pilot, "axis-data-batch_size")
        burst(app, "2", "4", "enter")  # the first keys arrive before the field has the focus
        await wait_for(pilot, lambda: "24" in sweep.picked()["data.batch_size"], "batch size 24 added, picked")
        assert sweep.query_one("#more-data-batch_size").value == ""


async def test_a_burst_with_arrows_and_enter_names_and_saves_a_preset(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SavePresetScreen) and app.screen.query("#name"),
                       "the name prompt")
        # clear the suggested name, type "ab", step back one, insert "x", enter: the preset "axb"
        burst(app, "ctrl+u", "a", "b", "left", "x", "enter")
        saved = presets_dir / "axb.toml"
        await wait_for(pilot, saved.exists, "the preset axb.toml")
        assert load_config(saved).name == "axb"


async def test_digits_typed_right_after_tab_go_to_the_field_tab_moved_to(presets_dir, runs_dir):
    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await tab_to(pilot, "max_steps")
        max_steps = app.focused
        epochs = app.screen.query_one("#epochs")
        assert (max_steps.value, epochs.value) == ("0", "100")
        burst(app, "tab", "4", "2", "shift+tab", "7")
        await wait_for(pilot, lambda: (max_steps.value, epochs.value) == ("07", "10042"), "each digit in its field")
        assert app.focused is max_steps


async def test_a_letter_right_after_escape_acts_on_the_preset_list_escape_moved_to(presets_dir, runs_dir):
    from tui_trainer.ui.widgets.preset_list import PresetList

    app = make_app(presets_dir, runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one(PresetList)
        first = presets.current.name
        await tab_to(pilot, "epochs")
        burst(app, "escape", "j")  # back to the list, then the next preset
        await wait_for(pilot, lambda: app.focused is presets and presets.current.name != first, "the next preset")
