"""The benchmark's jobs: a preset plus `--set` overrides, exactly as `tui-trainer run` takes them.

Every contestant reads the same preset with `tui_trainer.config.load_config`, so the data (split,
standardisation, seed), the model, the optimizer, the batch and the number of steps are the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from common import BENCH_DIR, ROOT

PRECISIONS = ("fp32", "tf32", "bf16-mixed", "fp16-mixed", "bf16-true")


@dataclass(frozen=True)
class Job:
    """One training job: what to train, for how long, and the short warm-up run before it."""

    key: str
    title: str
    preset: str
    overrides: tuple[str, ...] = ()
    warmup_steps: int = 20
    device: str = "cpu"
    precision: str = "fp32"
    repeats: int = 3
    contestants: tuple[str, ...] = ("tui-trainer", "best", "best-unfused", "seed", "lightning")
    extra: dict = field(default_factory=dict)
    best_threads: int = 0  # the best loop's torch threads, an expert's pick for the job (0: torch's default)
    best_threads_why: str = "torch's default (every physical core)"

    def as_json(self) -> dict:
        out = asdict(self)
        out["overrides"] = list(self.overrides)
        return out

    def with_overrides(self, *more: str, key: str | None = None, title: str | None = None) -> "Job":
        from dataclasses import replace

        return replace(self, overrides=(*self.overrides, *more), key=key or self.key, title=title or self.title)


def tiny(quick: bool) -> Job:
    """(1) The default job: diabetes, MLP 10-16-32-1, batch 32, Adam; per-step overhead dominates."""
    epochs = 10 if quick else 100
    return Job("tiny", f"tiny: diabetes MLP 10-16-32-1, batch 32, Adam, {epochs} epochs ({12 * epochs} steps)",
               str(ROOT / "presets" / "cpu-quick.toml"), (f"train.epochs={epochs}",),
               warmup_steps=36, repeats=1 if quick else 5,
               contestants=("tui-trainer", "best", "best-default-threads", "best-unfused", "seed", "lightning"),
               best_threads=1, best_threads_why="1 thread, as a 753-parameter model on 32 samples has nothing "
               "to split across cores and a second thread's hand-offs cost more than they save (and collapse "
               "when another process wants the core); torch's default is the \"best loop, torch's default "
               "threads\" row")


def compute(quick: bool) -> Job:
    """(2) Compute-bound on a CPU: 200k x 64 synthetic regression, MLP 512-512, batch 1024."""
    preset = str(BENCH_DIR / "presets" / "bench-compute.toml")
    if quick:
        return Job("compute", "compute-bound (quick: 20k x 64, MLP 512-512, batch 1024, 1 epoch = 19 steps)",
                   preset, ("data.samples=20000", "train.epochs=1"), warmup_steps=3, repeats=1)
    return Job("compute", "compute-bound: synthetic 200k x 64, MLP 64-512-512-1, batch 1024, Adam, "
                          "2 epochs (372 steps)", preset, warmup_steps=10, repeats=3)


def gpu(precision: str, quick: bool, device: str = "cuda") -> Job:
    """(3) On a GPU: synthetic-large (200k x 256, MLP 2048-2048-2048-512, batch 4096, AdamW)."""
    steps = 100 if quick else 1000
    overrides = [f"train.precision={precision}", f"train.max_steps={steps}",
                 # the preset's mid-run eval and checkpoint cadence, scaled to the shorter run
                 f"train.eval_every={steps // 4}", f"train.checkpoint_every={steps // 2}"]
    if device == "cpu":  # only to prove the GPU code paths on a machine without one (--gpu-on-cpu)
        overrides += ["strategy.name=cpu", "strategy.devices=1", "data.samples=4000", "model.hidden=[64, 64]", "data.batch_size=256"]
    return Job(f"gpu-{precision}", f"synthetic-large, {precision}, {steps} steps", str(ROOT / "presets" /
               "synthetic-large.toml"), tuple(overrides), warmup_steps=10 if quick else 30, device=device,
               precision=precision, repeats=1 if quick else 3)
