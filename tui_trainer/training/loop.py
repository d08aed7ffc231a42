"""The training loop. It emits events in batches and never waits on anyone.

The hot path (one optimizer step) holds no host sync, no print, no file write and no UI message:
losses stay on the device in a list and are read in one `tolist()` a few times a second.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from tui_trainer.config.schema import RunConfig
from tui_trainer.training.checkpoint import (
    load_checkpoint,
    rank_rng,
    rng_state,
    save_checkpoint,
    save_rank_rng,
    set_rng_state,
)
from tui_trainer.training.data import DeviceLoader, load_task_data, make_loader, plan_epoch, steps_per_epoch
from tui_trainer.training.events import CheckpointSaved, EvalResult, Event, LogLine, RunStarted, TrainProgress
from tui_trainer.training.figures import train_loss, train_loss_window
from tui_trainer.training.models import build_model, parameter_count
from tui_trainer.training.optim import build_optimizer, load_optimizer_state, lr_at
from tui_trainer.training.precision import make_precision
from tui_trainer.training.strategies import Strategy, make_strategy
from tui_trainer.training.threads import choose_threads

CHECKPOINT_NAME = "checkpoint.pt"
REPORTS_PER_SECOND = 4  # how often losses leave the device: a few times a second at any step rate
REPORT_AT_LEAST_EVERY_S = 1.0  # one process: report after this long even when the step rate has dropped
RATE_WINDOW_S = 10.0  # samples/s on screen: over the last 10 s of the run's wall clock, everything included
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
        self._skipped_before = 0  # skipped steps before this process started (resume)
        self.samples_per_step = 0.0
        self.train_seconds = 0.0
        self.device_name = ""
        self.effective_batch = config.effective_batch
        self.notes: tuple[str, ...] = ()
        self.loss_window = 0  # logged steps the train loss averages (figures.train_loss_window)
        self.previous_losses: tuple[float, ...] = ()  # a resumed run's recorded losses, for its first figures
        self.compile_seconds: float | None = None  # train.compile: the first step's time, where it compiles
        # Called before a checkpoint is written, to make the metrics up to its step durable first.
        self.before_checkpoint: Callable[[], None] | None = None
        self._started: float | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    def seconds_training(self) -> float:
        """Seconds since the first step: final once train() returns, also readable after it raised."""
        if self.train_seconds or self._started is None:
            return self.train_seconds
        return time.perf_counter() - self._started

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
        self.precision = make_precision(cfg.train.precision, self.device)
        self.precision.configure()
        strategy.precision = self.precision

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
        self.loss_fn = F.cross_entropy if self.data.task == "classification" else F.mse_loss

        world = strategy.world_size
        self.micro_batch = cfg.data.batch_size * strategy.replicas  # DataParallel splits one forward's batch
        self.steps_per_epoch = steps_per_epoch(self.data.train_size, self.micro_batch * cfg.train.accumulate * world,
                                               world)
        if self.steps_per_epoch == 0:
            raise ValueError("the training split has no samples; use more data or a lower data.val_fraction")
        if self.effective_batch > self.data.train_size:  # user data: its size is known only now
            raise ValueError(f"the effective batch {self.effective_batch} (batch_size x accumulate x processes) is "
                             f"larger than the {self.data.train_size} training samples of {cfg.data.dataset}; "
                             "lower data.batch_size")
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * self.steps_per_epoch
        self.samples_per_step = self.data.train_size / self.steps_per_epoch
        thread_note: tuple[str, ...] = ()
        if not cfg.train.threads and self.device.type == "cpu":
            # Measured on this run's step where a threshold cannot tell (training/threads.py), with the
            # RNG restored afterwards so that the run trains exactly as it would have.
            with torch.random.fork_rng(devices=[]):
                choice = choose_threads(self.parameters * self.micro_batch, self._thread_probe())
            torch.set_num_threads(choice.threads)
            thread_note = (choice.reason,)
        self.device_name = strategy.describe()
        self.notes = strategy.notes() + thread_note
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

    def _check_step(self, state: dict) -> None:
        """A checkpoint's step must lie in this run's plan (0..total steps) and agree with its epoch."""
        step = state.get("step") if isinstance(state, dict) else None
        where = f"{self.checkpoint_path}"
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= self.total_steps:
            raise ValueError(f"{where}: step {step!r} is outside this run's plan of 0..{self.total_steps} steps; "
                             "the checkpoint does not belong to this run's config")
        epoch, within = state.get("epoch"), state.get("step_in_epoch")
        if epoch is not None and within is not None and (epoch, within) != divmod(step, self.steps_per_epoch):
            raise ValueError(f"{where}: step {step} is epoch {epoch} step {within}, but this run's config has "
                             f"{self.steps_per_epoch} steps per epoch; the checkpoint does not belong to it")
    def _thread_probe(self) -> Callable[[], None] | None:
        """One training step on copies of the model and optimizer, on a real micro-batch; None with
        several processes or a DataLoader (the thread choice then goes by thresholds)."""
        if self.strategy.world_size > 1 or not isinstance(self.loader, DeviceLoader):
            return None
        model = copy.deepcopy(self.model)
        optimizer = build_optimizer(self.config.optimizer, model.parameters())
        # A micro-batch gathered by random indices, as the training slices it: at large batches of a small
        # model the gather is much of the step, and it is work that threads share too.
        indices = torch.randperm(len(self.loader.x), device=self.loader.x.device)[:self.micro_batch]
        data, targets = self.loader.x, self.loader.y
        autocast, loss_fn = self.precision.autocast(), self.loss_fn

        def step() -> None:
            x, y = data[indices], targets[indices.to(targets.device)]
            with autocast:
                out = model(x)
            loss_fn(out.float(), y).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    # ------------------------------------------------------------------ run
    def train(self) -> str:
        """Step until the planned end or a stop request; return "completed" or "stopped".

        Raises `Diverged` on a NaN/Inf loss; any other exception is the runner's to record.
        """
        cfg, strategy = self.config, self.strategy
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss_fn
        precision = self.precision
        backward, unscale, optimizer_step = precision.backward, precision.unscale, precision.optimizer_step
        autocast = precision.autocast()
        multi = strategy.world_size > 1
        clip = cfg.train.grad_clip
        params = [p for p in model.parameters() if p.requires_grad]
        scheduled = cfg.schedule.name != "constant" or cfg.schedule.warmup_steps > 0
        log_every = cfg.logging.every
        eval_every = cfg.train.eval_every
        ckpt_every = cfg.train.checkpoint_every
        ckpt_seconds = cfg.train.checkpoint_minutes * 60  # looked at only at report time, not per step
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
        self._started = self._checkpointed_at = time.perf_counter()
        self._rate_marks = collections.deque([(self._started, self.step)])  # (time, step) at each report
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
                    if weight:
                        loss = loss_fn(out.float(), y)
                        if weight != 1.0:
                            loss = loss * weight
                    else:  # an empty share of a short last step (ddp): joins the all-reduce with zero gradients
                        loss = out.float().sum() * 0.0
                    backward(loss)
                    step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                if scheduled:
                    lr = lr_at(cfg, step, total)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                if clip:
                    unscale(optimizer)
                    self._grad_norms.append(nn.utils.clip_grad_norm_(params, clip))
                optimizer_step(optimizer)  # the precision's: fp16 may skip it, counted on the device
                for param in params:  # optimizer.zero_grad(set_to_none=True) without its profiler scope
                    param.grad = None
                step += 1
                self.step = step
                if step % log_every == 0:
                    self._pending_steps.append(step)
                    self._pending_losses.append(step_loss)
                stop_now = False
                # One process also reports by the clock, so a slowdown never leaves a stale rate on screen
                # (ranks of a multi-process run must agree on the report step: they go by step count).
                if step >= self._next_report or (
                        not multi and time.perf_counter() - self._report_clock > REPORT_AT_LEAST_EVERY_S):
                    stop_now = self._report()
                    if ckpt_seconds and time.perf_counter() - self._checkpointed_at >= ckpt_seconds:
                        self.save_checkpoint()
                elif not multi:
                    stop_now = stop.is_set()
                if eval_every and step % eval_every == 0:
                    self._evaluate()
                if ckpt_every and step % ckpt_every == 0:
                    if self._pending_losses:  # read the losses first: a diverged step never reaches a checkpoint
                        stop_now = self._report() or stop_now
                    self.save_checkpoint()
                if step >= total:
                    break
                if stop_now:
                    if not eval_every and step % self.steps_per_epoch == 0:
                        self._evaluate()  # the epoch's end: its validation, which a resume would not run
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
        # The skipped-step count (fp16) leaves the device in the same read as the losses.
        skipped = self.precision.read_skipped()
        local = [torch.stack(self._pending_losses).float()] if count else []
        if skipped is not None:  # (skipped so far, skipped in a row now)
            local.append(skipped.reshape(-1).float())
        if strategy.world_size > 1:
            control = torch.tensor([float(self.stop.is_set()), float(report_every if strategy.rank == 0 else 0)],
                                   device=self.strategy.output_device)
            combined = strategy.reduce_sum(torch.cat([*[t.to(control.device) for t in local], control]))
            values = combined.tolist()
            stop_now, report_every = values[-2] > 0, int(values[-1])
            values = [v / strategy.world_size for v in values[:-2]]
        else:
            device = self.strategy.output_device
            read = local[0] if len(local) == 1 else torch.cat([t.to(device) for t in local]) if local else None
            values = read.tolist() if read is not None else []
            stop_now = self.stop.is_set()
        if self.config.train.compile and self.compile_seconds is None and steps_done:
            # The first report comes after the first step, where torch.compile compiles the model.
            self.compile_seconds = window
            self.emit(LogLine("info", f"torch.compile: the first step (compiling) took {window:.1f}s"))
        losses = values[:count]
        skipped_in_row = 0
        if skipped is not None:
            self.skipped_steps = self._skipped_before + int(round(values[count]))
            skipped_in_row = int(round(values[count + 1]))
        steps = tuple(self._pending_steps)
        self._pending_steps, self._pending_losses = [], []
        self._report_every = report_every
        self._next_report = self.step + report_every
        self._report_clock, self._report_step = now, self.step
        limit = self.config.train.max_skipped_in_row
        if skipped is not None and skipped_in_row >= limit:
            # fp16: a skipped step is the GradScaler finding inf gradients and lowering its scale, which
            # is normal now and then; this many in a row means the run cannot recover.
            self._emit_progress(now, steps, losses, steps_done, window)
            raise Diverged(f"the GradScaler skipped {skipped_in_row} steps in a row by step {self.step} "
                           f"(train.max_skipped_in_row = {limit})")
        for i, value in enumerate(losses):
            if not math.isfinite(value) and skipped is None:  # with a scaler: a skipped step (above)
                if i:  # the finite losses before it are kept
                    self._emit_progress(now, steps[:i], losses[:i], steps_done)
                raise Diverged(f"loss became {value} at step {steps[i]}")
        if steps or steps_done:
            self._emit_progress(now, steps, losses, steps_done, window)
        return stop_now

    def _emit_progress(self, now: float, steps: tuple, losses: list, steps_done: int, window: float = 0.0) -> None:
        if losses:
            self._recent_losses.extend(losses)  # train_loss leaves fp16 skipped steps (inf) aside
            # The run's one "train loss" figure (see figures.py): the mean of the last epoch's worth of steps.
            figure = train_loss(self._recent_losses, self.loss_window)
            if figure is not None:
                self.last_loss = figure
        grad_norm = None
        if self._grad_norms:
            grad_norm = float(self._grad_norms[-1])
            self._grad_norms = []
        # The run's throughput over the last RATE_WINDOW_S of wall clock (since the start before that):
        # evaluations, checkpoints, event writes and stalls all count, as in the summary's figure.
        marks = self._rate_marks
        marks.append((now, self.step))
        while len(marks) > 2 and now - marks[1][0] >= RATE_WINDOW_S:
            marks.popleft()
        since, since_step = marks[0]
        rate_window = now - since
        rate = (self.step - since_step) / rate_window if rate_window > 0 else 0.0
        elapsed = now - self._started
        run_rate = (self.step - self.start_step) / elapsed if elapsed > 0 else 0.0
        eta = (self.total_steps - self.step) / run_rate if run_rate > 0 else float("inf")
        memory = tuple(
            (d.index, torch.cuda.memory_allocated(d) / 2**20, torch.cuda.memory_reserved(d) / 2**20,
             torch.cuda.max_memory_allocated(d) / 2**20)  # host-side counters: no device sync
            for d in self.strategy.devices if d.type == "cuda")
        event = TrainProgress(self.step, self.epoch, steps, tuple(losses), self.optimizer.param_groups[0]["lr"],
                              rate * self.samples_per_step, elapsed, eta, grad_norm,
                              self.precision.loss_scale(), self.skipped_steps, memory,
                              rate_window_s=rate_window, train_loss=self.last_loss)
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
        # Only what the figures need, read in one host sync: the loss sum, and for classification the
        # correct answers. For regression the loss is the squared error, which R^2 needs; the spread of
        # the targets about their mean is a constant of the split, computed at the first evaluation.
        sums, count = [], 0
        with self.precision.autocast():
            for x, y in self.loader.val_batches():
                out = model(x).float()
                y = y.to(out.device)
                loss = self.loss_fn(out, y, reduction="sum")
                sums.append(torch.stack([loss, (out.argmax(dim=1) == y).sum().float()]) if classification else loss)
                count += len(y)
        model.train()
        figures = (sums[0] if len(sums) == 1 else torch.stack(sums).sum(0)).tolist()
        if classification:
            loss_sum, correct = figures
            metric = correct / count
        else:
            loss_sum = figures
            total_var = self._val_spread()
            metric = 1.0 - loss_sum / total_var if total_var > 0 else float("nan")
        val_loss = loss_sum / count
        self.last_val_loss, self.last_metric = val_loss, metric
        self._evaluated_at = self.step
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
        elapsed = time.perf_counter() - self._started if self._started is not None else None
        self.emit(EvalResult(self.step, self.epoch, val_loss, self.metric_name, metric, elapsed))
        if self.tensorboard is not None:
            self.tensorboard.add_scalar("loss/val", val_loss, self.step)
            self.tensorboard.add_scalar(f"metric/{self.metric_name}", metric, self.step)

    def _val_spread(self) -> float:
        """The validation targets' sum of squares about their mean (R^2's denominator), once per run."""
        if getattr(self, "_spread", None) is None:
            y_sum = y_sq = 0.0
            count = 0
            for _, y in self.loader.val_batches():
                y = y.float()
                y_sum, y_sq = y_sum + y.sum().item(), y_sq + (y * y).sum().item()
                count += len(y)
            self._spread = y_sq - y_sum * y_sum / count
        return self._spread

    # ----------------------------------------------------------- checkpoint
    def save_checkpoint(self) -> None:
        """Write model, optimizer, precision (scaler), step and RNG states, atomically.

        The main process writes the checkpoint; every rank of a multi-process run also writes its own
        RNG states beside it (each rank's dropout masks come from its own generators). No checkpoint is
        ever written from NaN or infinite weights.
        """
        self._check_finite()
        if self.strategy.world_size > 1:
            save_rank_rng(self.run_dir, self.strategy.rank, self.step, self.strategy.devices)
        if not self.strategy.is_main:
            return
        if self.before_checkpoint is not None:
            self.before_checkpoint()
        state = {
            "model": self.strategy.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.precision.state_dict(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "step_in_epoch": self.step % self.steps_per_epoch,
            "skipped_steps": self.skipped_steps,
            "best_val_loss": self.best_val_loss,
            "rng": rng_state(self.strategy.devices),
        }
        save_checkpoint(self.checkpoint_path, state)
        self._checkpointed_at = time.perf_counter()
        self.emit(CheckpointSaved(self.step, str(self.checkpoint_path)))

    def _check_finite(self) -> None:
        """Raise Diverged when a weight is NaN or infinite: one fused check (one host sync), at checkpoints only."""
        tensors = [t for t in self.strategy.unwrap(self.model).state_dict().values() if t.is_floating_point()]
        if not tensors:
            return
        finite = torch.stack([torch.isfinite(t).all().to(tensors[0].device) for t in tensors]).all()
        if not bool(finite):
            raise Diverged(f"the weights became NaN or infinite by step {self.step} (no checkpoint written from them)")

    def _load(self, state: dict) -> None:
        self._check_step(state)
        self.strategy.unwrap(self.model).load_state_dict(state["model"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.precision.load_state_dict(state.get("scaler"))
        self.step = int(state["step"])
        self.skipped_steps = self._skipped_before = int(state.get("skipped_steps", 0))
        self.best_val_loss = state.get("best_val_loss")
        own = rank_rng(self.run_dir, self.strategy.rank, self.step) if self.strategy.world_size > 1 else None
        set_rng_state(own or state["rng"], self.strategy.devices)
        self.emit(LogLine("info", f"resumed from step {self.step}"))
