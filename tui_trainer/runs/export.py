"""Existing runs' curves, from their metrics, written for TensorBoard (next to other work)."""

from __future__ import annotations

from pathlib import Path

from tui_trainer.runs.metrics import METRICS_NAME, read_curves


def export_tensorboard(run_dir: str | Path, out_dir: str | Path) -> tuple[int, int]:
    """Write a run's train loss, val loss and metric as TensorBoard scalars under `out_dir`.

    The tags are those a run with `logging.tensorboard` writes while it trains (`loss/train`, `loss/val`,
    `metric/<name>`), so exported and live curves sit side by side. Returns (train points, evaluations).
    Raises ImportError when tensorboard is not installed.
    """
    from torch.utils.tensorboard import SummaryWriter

    curves = read_curves(Path(run_dir) / METRICS_NAME)
    writer = SummaryWriter(str(out_dir))
    try:
        for step, loss in zip(curves.steps, curves.losses):
            writer.add_scalar("loss/train", loss, step)
        for step, loss in zip(curves.val_steps, curves.val_losses):
            writer.add_scalar("loss/val", loss, step)
        if curves.metric_name:
            for step, value in zip(curves.val_steps, curves.metrics):
                writer.add_scalar(f"metric/{curves.metric_name}", value, step)
    finally:
        writer.close()
    return len(curves.steps), len(curves.val_steps)
