"""The contestants. Each trains the same model on the same data with the same optimizer and steps.

- tui-trainer: the engine's own `Runner` (what `tui-trainer run --headless` and the app use), with
  its usual work on: an evaluation at each epoch end (and at `eval_every`), metrics.jsonl, the
  checkpoint at the end. Its clock runs from `RunStarted` to `RunFinished`, so all of that counts.
- seed-style loop: `TensorDataset` + `DataLoader(shuffle=True)`, `loss.item()` every step.
- best hand-written loop (the reference of every ratio): the thread count an expert picks for the
  job (jobs.py), data on the device once, batches sliced from a per-epoch permutation, the fused
  optimizer where torch has one for the device, the validation loss at each epoch end (as
  tui-trainer and Lightning validate), losses kept on the device and read once per epoch.
- best loop, unfused optimizer: the same loop with torch's default (for-each) optimizer.
- Lightning: `lightning.Trainer` with the same module, fed a `DataLoader(shuffle=True)` as usual,
  validating each epoch like tui-trainer; no logger, progress bar or checkpoint callback (all
  cheaper for it), then one `save_checkpoint` at the end. Its clock runs from `on_train_start`
  to `on_train_end`, plus the checkpoint.

The data, the model (`build_model`) and the seed come from the same preset through the engine's
own loaders, so the weights start equal and every contestant sees the same training split.
"""

from __future__ import annotations

import contextlib
import math
import queue
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from tui_trainer.config import RunConfig, load_config


def load_job(job: dict) -> RunConfig:
    return load_config(job["preset"], list(job["overrides"]))


def with_steps(config: RunConfig, max_steps: int) -> RunConfig:
    """The same job cut to `max_steps` optimizer steps (warm-up runs)."""
    from dataclasses import replace

    return replace(config, train=replace(config.train, max_steps=max_steps))


def plan(config: RunConfig, n_train: int) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps) exactly as the engine counts them (one process)."""
    per_epoch = math.ceil(n_train / config.data.batch_size)
    return per_epoch, config.train.max_steps or config.train.epochs * per_epoch


# ------------------------------------------------------------------------------------------ precision
class Kit:
    """How a hand-written loop does a precision, the usual way: autocast, GradScaler, TF32 flags, casts."""

    def __init__(self, name: str, device: torch.device):
        self.name, self.device = name, device
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
            torch.backends.cudnn.allow_tf32 = name == "tf32"
        self.dtype = {"bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}.get(name)
        self.param_dtype = torch.bfloat16 if name == "bf16-true" else None
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16-mixed" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward_step(self, loss, optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()


def _model_and_optimizer(config: RunConfig, data, device: torch.device, kit: Kit, fused: bool | None = None):
    from tui_trainer.training.models import build_model

    if config.train.threads:  # the job's thread count is part of the job
        torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, data.n_features, data.n_outputs).to(device)
    if kit.param_dtype is not None:
        model = model.to(kit.param_dtype)
    opt = config.optimizer
    cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
    if opt.name == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=opt.lr, momentum=opt.momentum,
                                    weight_decay=opt.weight_decay, fused=fused)
    else:
        optimizer = cls(model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay, fused=fused)
    return model, optimizer


def _can_fuse(device: torch.device) -> bool | None:
    from tui_trainer.training.optim import fused_devices

    return True if device.type in fused_devices() else None


def _loss_fn(data):
    return F.cross_entropy if data.task == "classification" else F.mse_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------ the loops
def best_loop(config: RunConfig, data, device: torch.device, fused: bool = True) -> dict:
    """Data on the device once; per-epoch permutation; the validation loss at each epoch end, as every
    run needs one; losses stay on the device, read once per epoch.

    `fused`: the optimizer's fused kernel (one kernel for every parameter), as an expert builds it where
    torch has one for the device (CUDA; the CPU from torch 2.4); False: torch's default optimizer.
    """
    kit = Kit(config.train.precision, device)
    x_tr, y_tr, x_va, y_va = data.tensors
    x = x_tr.to(device, dtype=kit.param_dtype)
    y = y_tr.to(device)
    x_val, y_val = x_va.to(device, dtype=kit.param_dtype), y_va.to(device)
    model, optimizer = _model_and_optimizer(config, data, device, kit, fused=fused and _can_fuse(device))
    loss_fn = _loss_fn(data)
    batch = config.data.batch_size
    n = len(x)
    _, total = plan(config, n)
    generator = torch.Generator(device=device).manual_seed(config.train.seed)
    _sync(device)
    started = time.perf_counter()
    step, final = 0, float("nan")
    while step < total:
        perm = torch.randperm(n, device=device, generator=generator)
        losses = []
        for idx in perm.split(batch):
            with kit.autocast():
                out = model(x[idx])
            loss = loss_fn(out.float(), y[idx])
            optimizer.zero_grad(set_to_none=True)
            kit.backward_step(loss, optimizer)
            losses.append(loss.detach())
            step += 1
            if step == total:
                break
        if len(x_val):
            model.eval()
            with torch.no_grad(), kit.autocast():
                losses.append(loss_fn(model(x_val).float(), y_val))
            model.train()
        figures = torch.stack(losses).tolist()  # the epoch's one host sync: its losses and the val loss
        train_losses = figures[:-1] if len(x_val) else figures
        final = sum(train_losses) / len(train_losses)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "steps": step, "samples": _samples(n, batch, step), "final_loss": final}


def seed_loop(config: RunConfig, data, device: torch.device) -> dict:
    """The seed's loop: TensorDataset + DataLoader(shuffle=True), `.to(device)` and `loss.item()` every step."""
    from torch.utils.data import DataLoader, TensorDataset

    kit = Kit(config.train.precision, device)
    x_tr, y_tr, _, _ = data.tensors
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=config.data.batch_size, shuffle=True)
    model, optimizer = _model_and_optimizer(config, data, device, kit)
    loss_fn = _loss_fn(data)
    _, total = plan(config, len(x_tr))
    _sync(device)
    started = time.perf_counter()
    step, running, count = 0, 0.0, 0
    while step < total:
        running, count = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(device, dtype=kit.param_dtype), yb.to(device)
            optimizer.zero_grad()
            with kit.autocast():
                out = model(xb)
            loss = loss_fn(out.float(), yb)
            kit.backward_step(loss, optimizer)
            running += loss.item()
            count += 1
            step += 1
            if step == total:
                break
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "steps": step, "samples": _samples(len(x_tr), config.data.batch_size, step),
            "final_loss": running / max(count, 1)}


def lightning_fit(config: RunConfig, data, device: torch.device, scratch: Path) -> dict:
    """`lightning.Trainer.fit` on the same module and data, validating each epoch; checkpoint at the end."""
    import logging
    import warnings

    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")

    kit = Kit("fp32", device)  # Lightning applies the precision itself
    model, _ = _model_and_optimizer(config, data, torch.device("cpu"), kit)
    loss_fn = _loss_fn(data)
    opt_cfg = config.optimizer

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model
            self.epoch_losses = []

        def on_train_epoch_start(self):
            self.epoch_losses = []

        def training_step(self, batch, index):
            x, y = batch
            loss = loss_fn(self.model(x).float(), y)
            self.log("loss", loss)
            self.epoch_losses.append(loss.detach())  # the final loss reported: the last epoch's mean
            return loss

        def validation_step(self, batch, index):
            x, y = batch
            self.log("val_loss", loss_fn(self.model(x).float(), y))

        def configure_optimizers(self):
            cls = torch.optim.AdamW if opt_cfg.name == "adamw" else torch.optim.Adam
            return cls(self.parameters(), lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)

    clock = {}

    class Clock(L.Callback):
        def on_train_start(self, trainer, module):
            _sync(device)
            clock["start"] = time.perf_counter()

        def on_train_end(self, trainer, module):
            _sync(device)
            clock["end"] = time.perf_counter()

    x_tr, y_tr, x_va, y_va = data.tensors
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=config.data.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x_va, y_va), batch_size=8192) if len(x_va) else None
    precision = {"fp32": "32-true", "tf32": "32-true", "bf16-mixed": "bf16-mixed", "fp16-mixed": "16-mixed",
                 "bf16-true": "bf16-true"}[config.train.precision]
    if config.train.precision == "tf32":
        torch.set_float32_matmul_precision("high")
    _, total = plan(config, len(x_tr))
    limits = {"max_steps": config.train.max_steps} if config.train.max_steps else {"max_epochs": config.train.epochs}
    # eval_every counts optimizer steps over the whole run, as Lightning's int interval does without epochs
    val_every = ({"val_check_interval": config.train.eval_every, "check_val_every_n_epoch": None}
                 if config.train.eval_every else {})
    trainer = L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, precision=precision,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Clock()],
                        default_root_dir=str(scratch), **limits, **val_every)
    module = Module()
    trainer.fit(module, train, val)
    started = time.perf_counter()
    trainer.save_checkpoint(str(scratch / "lightning.ckpt"))
    seconds = clock["end"] - clock["start"] + (time.perf_counter() - started)
    step = trainer.global_step
    return {"seconds": seconds, "steps": step, "samples": _samples(len(x_tr), config.data.batch_size, step),
            "final_loss": torch.stack(module.epoch_losses).mean().item() if module.epoch_losses else None}


def tui_trainer_run(config: RunConfig, scratch: Path, on_drain=None) -> dict:
    """The engine through its `Runner`, drained at 10 Hz from this (otherwise idle) thread, like the app.

    The clock runs from the `RunStarted` event to `RunFinished`: every step, evaluation, metrics
    write, checkpoint and the summary.json counts.
    """
    from tui_trainer.runs import Runner, RunStore

    store = RunStore(Path(tempfile.mkdtemp(dir=scratch)))
    runner = Runner(config, store)
    runner.events = StampedQueue()
    runner.start()
    events = 0
    while runner.is_running():
        time.sleep(0.1)
        events += len(runner.drain())
        if on_drain is not None:
            on_drain()
    summary = runner.wait()
    events += len(runner.drain())
    stamps, started = runner.events.stamps, runner.events.started
    shutil.rmtree(store.root, ignore_errors=True)
    if summary is None or summary.status != "completed" or started is None:
        return {"error": f"run ended {summary.status if summary else '?'}: {summary.error if summary else ''}"}
    seconds = stamps["RunFinished"] - stamps["RunStarted"]
    steps = summary.step - started.start_step
    samples = _samples(started.train_samples, config.data.batch_size * config.train.accumulate, steps)
    return {"seconds": seconds, "steps": steps, "samples": samples, "final_loss": summary.final_loss,
            "engine_samples_per_s": summary.samples_per_s, "events": events, "run_threads": runner.events.threads}


class StampedQueue(queue.Queue):
    """The Runner's event queue, noting when each kind of event was first put (the clock of the run)."""

    def __init__(self):
        super().__init__()
        self.stamps: dict[str, float] = {}
        self.started = None  # the RunStarted event: steps per epoch, training samples
        self.threads = None  # torch's intra-op threads, read in the training thread (where the run set them)

    def put(self, item, block=True, timeout=None):
        self.stamps.setdefault(type(item).__name__, time.perf_counter())
        if self.started is None and type(item).__name__ == "RunStarted":
            self.started = item
        if self.threads is None and type(item).__name__ == "TrainProgress":
            self.threads = torch.get_num_threads()
        super().put(item, block, timeout)


def _samples(n: int, batch: int, steps: int) -> int:
    """Samples seen in `steps` steps of `batch`, with a short last step in each epoch of `n` samples."""
    per_epoch = math.ceil(n / batch)
    epochs, rest = divmod(steps, per_epoch)
    return epochs * n + min(rest * batch, n)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
