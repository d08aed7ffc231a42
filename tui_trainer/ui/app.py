"""The Textual app: follows runs in the background, samples the machine, and hosts the screens.

The app follows the runs it started or attached to (`live`): a 10 Hz timer drains every runner's
event queue into its RunState and tells the current screen; a run keeps going when its dashboard is
closed. Runs train in detached processes of their own, so they also keep going when the app quits
(the user is asked) or its terminal goes away (SIGHUP); `--stop-on-exit` stops them instead. The GPU
sampler has its own thread; a 1 Hz timer copies its latest readings. The app never imports torch,
so the launch screen appears at once and the app stays small.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input

from tui_trainer.config import Machine
from tui_trainer.runs import Runner, RunStore, read_curves, resumable, resume_runner
from tui_trainer.runs.metrics import METRICS_NAME
from tui_trainer.session.live_run import LiveRun
from tui_trainer.ui.messages import MachineSampled, RunEnded, RunUpdated
from tui_trainer.session.monitor import MachineReading, MachineView, ProcessProbe
from tui_trainer.ui.screens.confirm_quit import ConfirmQuitScreen
from tui_trainer.ui.screens.help import HelpScreen
from tui_trainer.ui.screens.launch import LaunchScreen
from tui_trainer.ui.screens.run_dashboard import RunDashboard
from tui_trainer.ui.screens.runs import RunsScreen

EVENT_INTERVAL = 0.1  # seconds between event drains (and so at most 10 draws a second)
MACHINE_INTERVAL = 1.0  # seconds between GPU/process readings shown
FOCUS_KEYS = frozenset({"tab", "shift+tab", "escape"})  # keys that move the focus: see TrainerApp.on_event


class TrainerApp(App[int]):
    """tui-trainer's app. `runner` (not started) opens straight on its dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-trainer"
    ENABLE_COMMAND_PALETTE = False

    # Every screen has these (a screen lists only its own keys; the footer shows both, these last).
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "request_quit", "Quit"),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, presets_dir: Path, runs_dir: Path, runner: Runner | None = None, *,
                 machine: Machine | None = None, sampler=None, attach: Path | None = None,
                 show_runs: bool = False, stop_on_exit: bool = False):
        super().__init__()
        self.presets_dir = Path(presets_dir)
        self.store = RunStore(runs_dir)
        self.initial_runner = runner
        self.initial_attach = attach
        self.show_runs = show_runs
        self.stop_on_exit = stop_on_exit
        if machine is None:
            from tui_trainer.hardware import detect_machine

            machine = detect_machine()
        self.machine = machine
        self.sampler = sampler
        self.machine_view = MachineView()
        self.machine_reading = MachineReading()  # the newest, for a screen that opens between samples
        self.probe: ProcessProbe | None = None
        self.live: dict[str, LiveRun] = {}
        self.sweeps: list = []  # every sweep screen that started a sweep (closed ones too: a stop takes a step)
        self.queue: list = []  # configs still to run after the current queue run (launch: space, enter)
        self.queue_total = self.queue_done = 0
        self.queue_run_id: str | None = None
        self.queue_stops_on_failure = False  # the user chose "stop on failure" when starting the queue
        self.quitting = False
        self._exiting = False
        self._signals: tuple[int, ...] = ()
        self.first_frame_s: float | None = None
        self.torch_loaded_at_first_frame: bool | None = None
        self._created = time.perf_counter()

    async def on_event(self, event: events.Event) -> None:
        """A key that moves the focus off a text field (tab, shift+tab, escape) acts as it arrives.

        Textual hands each key to the focused widget at once; a text field keeps the characters and sends
        the keys it does not take back up to the app, which acts on them later. So in a burst of keys (fast
        typing, keys batched by SSH or tmux, a busy machine), the digits typed after a tab went into the
        field the tab left. Acting on these keys here, before the next key is handed out, keeps the order.
        """
        check = getattr(self, "_check_bindings", None)  # Textual 8's binding dispatch (private)
        if (check is not None and isinstance(event, events.Key) and not event.is_forwarded
                and event.key in FOCUS_KEYS and isinstance(self.focused, Input)):
            if await check(event.key, priority=True) or await check(event.key):
                return
        await super().on_event(event)

    # ------------------------------------------------------------------ start
    def on_mount(self) -> None:
        self._handle_hangup()
        self.push_screen(LaunchScreen(self.presets_dir, self.machine))
        self.set_interval(EVENT_INTERVAL, self.pump_runs)
        self.set_interval(MACHINE_INTERVAL, self.sample_machine)
        self.call_after_refresh(self._after_first_frame)
        if self.initial_runner is not None:
            runner, self.initial_runner = self.initial_runner, None
            live = LiveRun(runner, self.store)
            if runner.resume:
                self._resume_live(live)
            else:
                self._start_live(live)
        elif self.initial_attach is not None:
            self.attach_run(self.initial_attach)
        elif self.show_runs:
            self.action_show_runs()

    def _handle_hangup(self) -> None:
        """A dropped SSH connection (SIGHUP) or a `kill` (SIGTERM) ends the app; its runs keep training.

        There is no one left to ask: detached runs go on (with `--stop-on-exit` they stop cleanly first);
        a run trained inside this process stops cleanly, as it cannot outlive it.
        """
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self.hang_up, True)
            loop.add_signal_handler(signal.SIGTERM, self.hang_up, False)
            self._signals = (signal.SIGHUP, signal.SIGTERM)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal here
            pass

    def _after_first_frame(self) -> None:
        self.first_frame_s = time.perf_counter() - self._created
        self.torch_loaded_at_first_frame = "torch" in sys.modules
        self.start_sampler()

    @work(thread=True, exit_on_error=False, group="sampler")
    def start_sampler(self) -> None:
        """Start the GPU sampler thread and the process probe (the NVML inventory read can take a second)."""
        if self.sampler is None:
            from tui_trainer.hardware import GpuSampler

            self.sampler = GpuSampler(interval=MACHINE_INTERVAL, history=120)
        self.sampler.start()
        self.probe = ProcessProbe()

    def sample_machine(self) -> None:
        """Copy the newest readings (the sampler thread took them; this never calls NVML)."""
        gpus = self.sampler.latest() if self.sampler is not None else ()
        process = self.probe.sample() if self.probe is not None else None
        self.machine_reading = self.machine_view.update(gpus, process)
        self.screen.post_message(MachineSampled(self.machine_reading))

    # ------------------------------------------------------------------- runs
    def pump_runs(self) -> None:
        """Drain every followed run's events (never blocks) and tell the current screen what changed."""
        for live in list(self.live.values()):
            was_ended = live.state.ended
            try:
                changed = live.pump()
            except Exception as exc:  # a bad event must not take the app (or the other runs) down
                live.state.note("error", f"could not read the run's events: {type(exc).__name__}: {exc}")
                changed = True
            if not changed:
                continue
            self.screen.post_message(RunUpdated(live.run_id))
            if live.state.ended and not was_ended:
                status = live.state.status
                self.screen.post_message(RunEnded(live.run_id, status))
                if live.run_id == self.queue_run_id:
                    if status == "stopped":  # stopped by the user: so is the queue
                        self.queue.clear()
                        self.queue_run_id = None
                    elif status in ("failed", "diverged") and self.queue_stops_on_failure:
                        self._stop_queue_at(live, status)
                    else:
                        self._next_in_queue(after=live.run_id)
                viewing = isinstance(self.screen, RunDashboard) and self.screen.run_id == live.run_id
                if not viewing:
                    severity = "error" if status in ("failed", "diverged") else "information"
                    self.notify(f"run {live.run_id}: {status}", severity=severity)

    def start_queue(self, configs, *, stop_on_failure: bool = False) -> None:
        """Run configs one after another; each opens its dashboard. A failed (or diverged) run stops the
        queue only with `stop_on_failure` (as `tui-trainer run A B --headless --stop-on-failure`)."""
        self.queue = list(configs)
        self.queue_total, self.queue_done = len(self.queue), 0
        self.queue_stops_on_failure = stop_on_failure
        self._next_in_queue()

    def _stop_queue_at(self, live: LiveRun, status: str) -> None:
        """Stop on failure: the queue ends at this run; what was not started is said on its log and in a note."""
        left = len(self.queue)
        self.queue.clear()
        self.queue_run_id = None
        if not left:
            return
        text = (f"queue stopped on failure: run {live.run_id} ({live.config.name}) {status}; "
                f"{left} preset{'s' if left != 1 else ''} not started")
        live.state.note("error", text)
        self.screen.post_message(RunUpdated(live.run_id))
        self.notify(text, severity="error", timeout=10)

    def _next_in_queue(self, after: str | None = None) -> None:
        """Start the next queued config; its dashboard replaces the dashboard of `after` (the queue run that
        just ended) when that one is shown, so one `escape` leads back to the launch screen."""
        while self.queue:
            config = self.queue.pop(0)
            self.queue_done += 1
            label = f"queue {self.queue_done}/{self.queue_total}"
            if self.queue_stops_on_failure:
                label += " (stops on failure)"
            live = self.start_run(config, queue_label=label, replacing=after)
            if live is not None:
                self.queue_run_id = live.run_id
                return
        self.queue_run_id = None

    def start_run(self, config, queue_label: str = "", replacing: str | None = None) -> LiveRun | None:
        """Start a new run of a config in the background and open its dashboard (titled `queue_label` too),
        in place of run `replacing`'s dashboard when that one is shown."""
        try:
            live = LiveRun.new(config, self.store)
        except Exception as exc:
            self.notify(f"cannot start: {exc}", severity="error")
            return None
        live.queue_label = queue_label
        # Runs train side by side (this app's and those other processes train: a detached run, another
        # terminal's): say so, since they share the machine's cores and GPUs.
        others = len(self.active_runs) + len(self.store.trained_elsewhere(set(self.live)))
        started = self._start_live(live, replacing)
        if started is not None and others:
            self.notify(f"{others + 1} runs are training side by side and share this machine; "
                        "r lists them all", severity="warning", timeout=6)
        return started

    def _start_live(self, live: LiveRun, replacing: str | None = None) -> LiveRun | None:
        try:
            live.start()
        except Exception as exc:  # e.g. the runs directory cannot be created
            self.notify(f"cannot start the run: {type(exc).__name__}: {exc}", severity="error", timeout=8)
            return None
        self.live[live.run_id] = live
        self.open_dashboard(live, replacing)
        return live

    def resume_run(self, run_dir: Path) -> None:
        """Continue a stopped run (from the runs screen): its dashboard opens with its earlier curve."""
        live = self.live.get(Path(run_dir).name)
        if live is not None:
            why = live.why_not_resumable()
            if why:
                self.notify(f"cannot resume: {why}", severity="warning")
                return
            try:
                live.resume()
            except Exception as exc:  # ConfigError: this machine cannot run it (e.g. its GPU id is gone)
                self.notify(f"cannot resume: {exc}", severity="error", timeout=8)
                return
            self.open_dashboard(live)
            return
        why = resumable(Path(run_dir))
        if why:
            self.notify(f"cannot resume: {why}", severity="warning", timeout=8)
            return
        try:
            runner = resume_runner(run_dir, self.store, isolated=True)
        except Exception as exc:  # ConfigError from a hand-edited config.toml, unreadable files
            self.notify(f"cannot resume: {exc}", severity="error", timeout=8)
            return
        self._check_then_resume(runner)

    @work(thread=True, exit_on_error=False)
    def _check_then_resume(self, runner: Runner) -> None:
        """Read the checkpoint (off the UI thread: it imports torch) before anything is started or written:
        a damaged or code-holding one is refused in a notification, and the run's record stays as it was."""
        from tui_trainer.config import ConfigError
        from tui_trainer.training.checkpoint import check_checkpoint

        try:
            check_checkpoint(runner.run_dir / "checkpoint.pt")
        except ConfigError as exc:
            self.call_from_thread(self.notify, f"cannot resume: {exc}", severity="error", timeout=10)
            return
        self.call_from_thread(self._resume_live, LiveRun(runner, self.store))

    def _resume_live(self, live: LiveRun) -> None:
        why = resumable(live.run_dir)
        if why:
            self.notify(f"cannot resume: {why}", severity="warning", timeout=8)
            return
        live.state.run_id = live.run_id
        live.state.begin_resume()
        self.live[live.run_id] = live
        self.open_dashboard(live)
        self._load_and_start(live)

    def attach_run(self, run_dir: Path) -> None:
        """Open the live dashboard of a run another process trains (or one this app follows already)."""
        live = self.live.get(Path(run_dir).name)
        if live is not None and live.active:
            self.open_dashboard(live)
            return
        try:
            live = LiveRun.attach(run_dir, self.store)
        except Exception as exc:  # ConfigError from a hand-edited config.toml, unreadable files
            self.notify(f"cannot attach: {exc}", severity="error", timeout=8)
            return
        live.state.note("info", f"attached to the run in {live.run_dir}")
        self.live[live.run_id] = live
        self.open_dashboard(live)
        self._load_and_start(live)

    @work(thread=True, exit_on_error=False)
    def _load_and_start(self, live: LiveRun) -> None:
        """Read the run's earlier curve (off the UI thread), then start (or follow) it."""
        try:
            curves = read_curves(live.run_dir / METRICS_NAME)
            self.call_from_thread(live.state.prefill, curves.losses, curves.val_losses)
        finally:
            self.call_from_thread(self._start_runner, live)

    def _start_runner(self, live: LiveRun) -> None:
        try:
            live.runner.start()
        except Exception as exc:  # RunBusy: another process took the run meanwhile
            live.state.note("error", f"cannot start: {exc}")
            self.notify(f"cannot start: {exc}", severity="error", timeout=8)

    def open_dashboard(self, live: LiveRun, replacing: str | None = None) -> None:
        """Show a run's dashboard (the one already open, if it is), in place of run `replacing`'s if shown."""
        if isinstance(self.screen, RunDashboard) and self.screen.run_id == live.run_id:
            return
        if replacing is not None and isinstance(self.screen, RunDashboard) and self.screen.run_id == replacing:
            self.switch_screen(RunDashboard(live))
            return
        self.push_screen(RunDashboard(live))

    @property
    def active_runs(self) -> list[LiveRun]:
        return [live for live in self.live.values() if live.runner.is_running()]

    @property
    def running_sweeps(self) -> list:
        """The sweeps still training (their loop is a thread of this app: it ends with it), including one whose
        screen was closed with `escape` while its current row was still stopping."""
        return [s for s in self.sweeps if s.running]

    # ---------------------------------------------------------------- actions
    def action_show_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_request_quit(self) -> None:
        """Quit; with runs or a sweep training, ask first: leave the runs training, stop them, or stay.

        A sweep is stopped either way: its loop is a thread of this app and cannot go on without it.
        """
        if self.quitting:
            return
        if isinstance(self.screen, ConfirmQuitScreen):
            return
        active = self.active_runs
        sweeps = self.running_sweeps
        if not active and not sweeps:
            self.quitting = True
            self.exit(0)
            return
        # Runs trained inside this process (a test's, an embedding's) cannot be left training.
        can_leave = any(live.runner.detached for live in active)
        self.push_screen(ConfirmQuitScreen(len(active), stop_only=self.stop_on_exit or not can_leave,
                                           sweeps=tuple(s.position for s in sweeps)))

    def hang_up(self, hangup: bool) -> None:
        """SIGHUP or SIGTERM: leave at once, runs left training (stopped first with --stop-on-exit)."""
        if self.stop_on_exit:
            self.stop_runs_and_exit(hangup)
        else:
            self.leave_runs_and_exit(hangup)

    def leave_runs_and_exit(self, hangup: bool = False) -> None:
        """Quit and leave the runs training in their own processes (`tui-trainer attach` finds them again).

        A run trained inside this process cannot outlive it: that one is stopped cleanly first, and so is
        a sweep (its loop is a thread of this process; its current row's run is stopped with it).
        """
        if self._exiting:
            return
        inside = [live for live in self.active_runs if not live.runner.detached]
        if inside or self.running_sweeps:
            self.stop_runs_and_exit(hangup, inside)
            return
        self._exiting = self.quitting = True
        if hangup:
            os._exit(0)  # restoring a terminal that no longer exists can block; the runs are elsewhere
        self.exit(0)

    def stop_runs_and_exit(self, hangup: bool = False, runs: list[LiveRun] | None = None) -> None:
        """Ask the active runs (and every running sweep) to stop, wait for them in a worker, then exit 0.

        After a hang-up the terminal is gone: once the runs have written their checkpoints and
        summaries the process leaves at once, as restoring a terminal that no longer exists can block.
        """
        if self._exiting:
            return
        self._exiting = self.quitting = True
        runs = self.active_runs if runs is None else runs
        sweeps = self.running_sweeps
        for live in runs:
            live.stop()
        for sweep in sweeps:
            sweep.stop_sweep()
        self._wait_and_exit(hangup, runs, sweeps)

    @work(thread=True, exit_on_error=False, group="quit")
    def _wait_and_exit(self, hangup: bool, runs: list[LiveRun], sweeps: list = ()) -> None:
        for live in runs:
            live.runner.wait()
        for sweep in sweeps:  # its current row stops, the rest are marked skipped, sweep.json is written
            sweep.ended.wait()
        if hangup:
            os._exit(0)
        self.call_from_thread(self.pump_runs)  # the final events, so nothing is left half-shown
        self.call_from_thread(self.exit, 0)

    def on_unmount(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)


def print_run_ends(app: TrainerApp) -> None:
    """After the app has given the terminal back: one line per run of this session, how it ended, and
    how to find it again (the runs left training with attach and stop, the stopped ones with resume)."""
    from tui_trainer.runs import live_owner

    for live in app.live.values():
        if live.run_dir is None:
            continue
        if live.runner.detached and live_owner(live.run_dir) is not None:
            print(f"left training: {live.run_id}  (tui-trainer attach {live.run_dir} follows it, "
                  f"tui-trainer stop {live.run_dir} stops it)")
            continue
        summary = live.state.summary
        if summary is None:
            continue
        line = f"{summary.status}: {live.run_id} at step {summary.step}/{summary.total_steps}"
        if summary.status == "stopped":
            line += f"  (tui-trainer resume {live.run_dir} continues it)"
        elif summary.error:
            line += f": {summary.error}"
        print(line)


def run_app(presets_dir: Path, runs_dir: Path, runner: Runner | None = None, *, attach: Path | None = None,
            show_runs: bool = False, stop_on_exit: bool = False) -> int:
    """Open the app (on `runner`'s dashboard, or the attached run's, when given); return the exit code."""
    app = TrainerApp(presets_dir, runs_dir, runner, attach=attach, show_runs=show_runs, stop_on_exit=stop_on_exit)
    result = app.run()
    for live in app.live.values():  # the app ended some other way (an error in the UI): still stop cleanly
        if live.runner.is_running() and not live.runner.detached:
            live.stop()
            live.runner.wait()
    print_run_ends(app)
    if app.return_code is not None and app.return_code != 0:
        return app.return_code
    return result if isinstance(result, int) else 0
