"""The training loop. It emits events in batches and never waits on anyone.

The hot path (one optimizer step) holds no host sync, no print, no file write and no UI message:
losses stay on the device in a list and are read in one `tolist()` a few times a second.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from tui_trainer.config.schema import RunConfig
from tui_trainer.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from tui_trainer.training.data import load_task_data, make_loader, plan_epoch, steps_per_epoch
from tui_trainer.training.events import CheckpointSaved, EvalResult, Event, LogLine, RunStarted, TrainProgress
from tui_trainer.training.figures import train_loss, train_loss_window
from tui_trainer.training.models import build_model, parameter_count
from tui_trainer.training.optim import build_optimizer, load_optimizer_state, lr_at
from tui_trainer.training.precision import get_precision
from tui_trainer.training.strategies import Strategy, make_strategy

CHECKPOINT_NAME = "checkpoint.pt"
TINY_STEP_WORK = 1_000_000  # parameters x micro-batch: below it, CPU runs use one torch thread
REPORTS_PER_SECOND = 4  # how often losses leave the device: a few times a second at any step rate
_NO_CONTEXT = contextlib.nullcontext()


class Diverged(Exception):
    """The loss became NaN or infinite."""


class Trainer:
    """One run's training: builds data, model, strategy and precision, then steps until done or stopped."""

    def __init__(self, config: RunConfig, run_dir: str | Path, emit: Callable[[Event], None],
                 stop: threading.Event, *, run_id: str = "", resume: bool = False,
                 strategy: Strategy | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.emit = emit
        self.stop = stop
        self.run_id = run_id or self.run_dir.name
        self.resume = resume
        self.strategy = strategy
        # What the run has done so far, readable by the runner whatever happens.
        self.step = 0
        self.start_step = 0
        self.total_steps = 0
        self.epoch = 0
        self.last_loss: float | None = None
        self.last_val_loss: float | None = None
        self.best_val_loss: float | None = None
        self.last_metric: float | None = None
        self.metric_name = ""
        self.skipped_steps = 0
        self.samples_per_step = 0.0
        self.train_seconds = 0.0
        self.device_name = ""
        self.effective_batch = config.effective_batch
        self.notes: tuple[str, ...] = ()
        self.loss_window = 0  # logged steps the train loss averages (figures.train_loss_window)
        self.previous_losses: tuple[float, ...] = ()  # a resumed run's recorded losses, for its first figures
        self.compile_seconds: float | None = None  # train.compile: the first step's time, where it compiles

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    # ----------------------------------------------------------------- build
    def build(self) -> None:
        """Everything before the first step: seeds, data, model, strategy, precision, optimizer."""
        cfg = self.config
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        self.strategy = self.strategy or make_strategy(cfg)
        strategy = self.strategy
        self.device = strategy.input_device
        self.precision = get_precision(cfg.train.precision)
        self.precision.configure(self.device)

        self.data = load_task_data(cfg.data)
        self.metric_name = self.data.metric_name
        self.loader = make_loader(self.data, self.device, cfg.data, self.precision.param_dtype,
                                  target_device=strategy.output_device)
        model = build_model(cfg.model, self.data.n_features, self.data.n_outputs)
        self.parameters = parameter_count(model)
        model = self.precision.prepare_model(model)
        if cfg.train.compile:
            model.compile()  # in place: the module and its state_dict keys stay as they are
        self.model = strategy.setup_model(model)
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters())
        self.scaler = self.precision.make_scaler(self.device)
        self.loss_fn = F.cross_entropy if self.data.task == "classification" else F.mse_loss

        world = strategy.world_size
        self.micro_batch = cfg.data.batch_size * strategy.replicas  # DataParallel splits one forward's batch
        self.steps_per_epoch = steps_per_epoch(self.data.train_size, self.micro_batch * cfg.train.accumulate * world,
                                               world)
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training split has {self.data.train_size} samples, fewer than the "
                             f"{world} processes; lower strategy.devices")
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * self.steps_per_epoch
        self.samples_per_step = self.data.train_size / self.steps_per_epoch
        if (not cfg.train.threads and self.device.type == "cpu"
                and self.parameters * self.micro_batch < TINY_STEP_WORK):
            # A tiny step gains nothing from intra-op threads, and their spin-waits collapse throughput
            # (35k -> 450 samples/s measured) as soon as another process wants a core.
            torch.set_num_threads(1)
        self.device_name = strategy.describe()
        self.notes = strategy.notes()
        if self.resume and self.checkpoint_path.exists():
            self._load(load_checkpoint(self.checkpoint_path))
        self.start_step = self.step

        self.tensorboard = None
        if cfg.logging.tensorboard and strategy.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self.emit(LogLine("warning", "logging.tensorboard is on but tensorboard is not installed: "
                                             "pip install tensorboard (continuing without it)"))

    # ------------------------------------------------------------------ run
    def train(self) -> str:
        """Step until the planned end or a stop request; return "completed" or "stopped".

        Raises `Diverged` on a NaN/Inf loss; any other exception is the runner's to record.
        """
        cfg, strategy = self.config, self.strategy
        model, optimizer, scaler, loss_fn = self.model, self.optimizer, self.scaler, self.loss_fn
        autocast = self.precision.autocast(self.device)
        multi = strategy.world_size > 1
        clip = cfg.train.grad_clip
        params = [p for p in model.parameters() if p.requires_grad]
        scheduled = cfg.schedule.name != "constant" or cfg.schedule.warmup_steps > 0
        log_every = cfg.logging.every
        eval_every = cfg.train.eval_every
        ckpt_every = cfg.train.checkpoint_every
        stop = self.stop
        total = self.total_steps

        self.loss_window = train_loss_window(self.steps_per_epoch, cfg.logging.every)
        self.emit(RunStarted(self.run_id, str(self.run_dir), self.device_name, total, self.steps_per_epoch,
                             self.step, self.effective_batch, strategy.world_size, self.parameters,
                             self.data.train_size, self.notes, self.loss_window))
        self._pending_steps: list[int] = []
        self._pending_losses: list[torch.Tensor] = []
        self._grad_norms: list[torch.Tensor] = []
        self._evaluated_at = -1
        self._recent_losses: collections.deque[float] = collections.deque(self.previous_losses,
                                                                           maxlen=self.loss_window)
        if self._recent_losses:
            self.last_loss = train_loss(self._recent_losses, self.loss_window)
        self._report_every = 1
        self._next_report = self.step + 1
        self._report_clock = time.perf_counter()
        self._report_step = self.step
        self._started = time.perf_counter()
        prev_scale = scaler.get_scale() if scaler else None
        model.train()

        step = self.step
        status = "completed"
        while step < total and status == "completed":
            epoch, start = divmod(step, self.steps_per_epoch)
            self.epoch = epoch
            plan = plan_epoch(self.data.train_size, cfg.train.seed, epoch, self.micro_batch,
                              cfg.train.accumulate, strategy.world_size, strategy.rank, self.device)
            for micro_batches in self.loader.steps(plan, start):
                last = len(micro_batches) - 1
                step_loss = None
                for i, (x, y, weight) in enumerate(micro_batches):
                    with strategy.no_sync(model) if multi and i < last else _NO_CONTEXT, autocast:
                        out = model(x)
                    loss = loss_fn(out.float(), y)
                    if weight != 1.0:
                        loss = loss * weight
                    (scaler.scale(loss) if scaler else loss).backward()
                    step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                if scheduled:
                    lr = lr_at(cfg, step, total)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                if clip:
                    if scaler:
                        scaler.unscale_(optimizer)
                    self._grad_norms.append(nn.utils.clip_grad_norm_(params, clip))
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                    # scaler.step has already synced to look for inf grads, so reading the scale is free;
                    # the scale only ever falls when a step was skipped.
                    scale = scaler.get_scale()
                    if scale < prev_scale:
                        self.skipped_steps += 1
                    prev_scale = scale
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                self.step = step
                if step % log_every == 0:
                    self._pending_steps.append(step)
                    self._pending_losses.append(step_loss)
                stop_now = False
                if step >= self._next_report:
                    stop_now = self._report()
                elif not multi:
                    stop_now = stop.is_set()
                if eval_every and step % eval_every == 0:
                    self._evaluate()
                if ckpt_every and step % ckpt_every == 0:
                    self.save_checkpoint()
                if step >= total:
                    break
                if stop_now:
                    status = "stopped"
                    break
            else:
                if not eval_every and step < total:
                    self._evaluate()  # end of an epoch
        if self._report() and status == "completed" and step < total:
            status = "stopped"
        if status == "completed" and self._evaluated_at != step:
            self._evaluate()  # the final figures always include a validation of the final weights
        self.train_seconds = time.perf_counter() - self._started
        if self.tensorboard is not None:
            self.tensorboard.close()
        return status

    # -------------------------------------------------------------- reports
    def _report(self) -> bool:
        """Read the pending losses in one go, check them, emit one progress event; return "stop now".

        With several processes this is the run's one extra collective: a single all-reduce carries
        the losses, every rank's stop request, and rank 0's choice of the next report step, so all
        ranks agree on when to report and when to stop without a sync on any other step.
        """
        now = time.perf_counter()
        strategy = self.strategy
        window = now - self._report_clock
        steps_done = self.step - self._report_step
        # Adapt the reporting period to the step rate: a few reports a second, whatever the rate.
        report_every = self._report_every
        if steps_done:
            report_every = max(1, min(10_000, int(steps_done / REPORTS_PER_SECOND / max(window, 1e-6))))
        count = len(self._pending_losses)
        if strategy.world_size > 1:
            local = [torch.stack(self._pending_losses).float()] if count else []
            control = torch.tensor([float(self.stop.is_set()), float(report_every if strategy.rank == 0 else 0)],
                                   device=self.strategy.output_device)
            combined = strategy.reduce_sum(torch.cat([*[t.to(control.device) for t in local], control]))
            values = combined.tolist()
            losses = [v / strategy.world_size for v in values[:count]]
            stop_now, report_every = values[count] > 0, int(values[count + 1])
        else:
            losses = torch.stack(self._pending_losses).float().tolist() if count else []
            stop_now = self.stop.is_set()
        if self.config.train.compile and self.compile_seconds is None and steps_done:
            # The first report comes after the first step, where torch.compile compiles the model.
            self.compile_seconds = window
            self.emit(LogLine("info", f"torch.compile: the first step (compiling) took {window:.1f}s"))
        steps = tuple(self._pending_steps)
        self._pending_steps, self._pending_losses = [], []
        self._report_every = report_every
        self._next_report = self.step + report_every
        self._report_clock, self._report_step = now, self.step
        for i, value in enumerate(losses):
            if not math.isfinite(value):
                if i:  # the finite losses before it are kept
                    self._emit_progress(now, steps[:i], losses[:i], steps_done)
                raise Diverged(f"loss became {value} at step {steps[i]}")
        if steps or steps_done:
            self._emit_progress(now, steps, losses, steps_done, window)
        return stop_now

    def _emit_progress(self, now: float, steps: tuple, losses: list, steps_done: int, window: float = 0.0) -> None:
        if losses:
            self._recent_losses.extend(losses)
            # The run's one "train loss" figure (see figures.py): the mean of the last epoch's worth of steps.
            self.last_loss = train_loss(self._recent_losses, self.loss_window)
        grad_norm = None
        if self._grad_norms:
            grad_norm = float(self._grad_norms[-1])
            self._grad_norms = []
        rate = steps_done / window if window > 0 else 0.0
        elapsed = now - self._started
        run_rate = (self.step - self.start_step) / elapsed if elapsed > 0 else 0.0
        eta = (self.total_steps - self.step) / run_rate if run_rate > 0 else float("inf")
        memory = tuple(
            (d.index, torch.cuda.memory_allocated(d) / 2**20, torch.cuda.memory_reserved(d) / 2**20,
             torch.cuda.max_memory_allocated(d) / 2**20)  # host-side counters: no device sync
            for d in self.strategy.devices if d.type == "cuda")
        event = TrainProgress(self.step, self.epoch, steps, tuple(losses), self.optimizer.param_groups[0]["lr"],
                              rate * self.samples_per_step, elapsed, eta, grad_norm,
                              self.scaler.get_scale() if self.scaler else None, self.skipped_steps, memory,
                              self.last_loss)
        self.emit(event)
        if self.tensorboard is not None:
            for s, value in zip(steps, losses):
                self.tensorboard.add_scalar("loss/train", value, s)

    @torch.no_grad()
    def _evaluate(self) -> None:
        """Validation loss and the task metric (R^2 or accuracy), over the whole validation split."""
        if len(self.data.val) == 0 or not self.strategy.is_main:
            return  # other ranks go on to the next step; they wait for rank 0 at its next all-reduce
        model = self.strategy.eval_model(self.model)
        model.eval()
        classification = self.data.task == "classification"
        loss_sum = torch.zeros((), device=self.strategy.output_device)
        stat_a = torch.zeros((), device=self.strategy.output_device)  # correct answers, or squared error
        y_sum = torch.zeros((), device=self.strategy.output_device)
        y_sq = torch.zeros((), device=self.strategy.output_device)
        count = 0
        with self.precision.autocast(self.device):
            for x, y in self.loader.val_batches():
                out = model(x).float()
                y = y.to(out.device)
                loss_sum += self.loss_fn(out, y, reduction="sum")
                if classification:
                    stat_a += (out.argmax(dim=1) == y).sum()
                else:
                    stat_a += ((out - y) ** 2).sum()
                    y_sum += y.sum()
                    y_sq += (y * y).sum()
                count += len(y)
        model.train()
        loss_sum, stat_a, y_sum, y_sq = torch.stack([loss_sum, stat_a, y_sum, y_sq]).tolist()
        val_loss = loss_sum / count
        if classification:
            metric = stat_a / count
        else:
            total_var = y_sq - y_sum * y_sum / count  # sum of squares about the mean
            metric = 1.0 - stat_a / total_var if total_var > 0 else float("nan")
        self.last_val_loss, self.last_metric = val_loss, metric
        self._evaluated_at = self.step
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
        self.emit(EvalResult(self.step, self.epoch, val_loss, self.metric_name, metric))
        if self.tensorboard is not None:
            self.tensorboard.add_scalar("loss/val", val_loss, self.step)
            self.tensorboard.add_scalar(f"metric/{self.metric_name}", metric, self.step)

    # ----------------------------------------------------------- checkpoint
    def save_checkpoint(self) -> None:
        """Write model, optimizer, scaler, step and RNG states (rank 0 only), atomically."""
        if not self.strategy.is_main:
            return
        state = {
            "model": self.strategy.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "step_in_epoch": self.step % self.steps_per_epoch,
            "skipped_steps": self.skipped_steps,
            "best_val_loss": self.best_val_loss,
            "rng": rng_state(),
        }
        save_checkpoint(self.checkpoint_path, state)
        self.emit(CheckpointSaved(self.step, str(self.checkpoint_path)))

    def _load(self, state: dict) -> None:
        self.strategy.unwrap(self.model).load_state_dict(state["model"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.best_val_loss = state.get("best_val_loss")
        set_rng_state(state["rng"])
        self.emit(LogLine("info", f"resumed from step {self.step}"))
