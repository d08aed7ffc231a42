"""Checkpoints: `state_dict`s and RNG states, written to a temporary file and renamed into place."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

RANK_RNG_DIR = "rng"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write atomically: a reader sees the old checkpoint or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint onto the CPU (tensors only, no pickled code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state(devices: Sequence[torch.device] = ()) -> dict:
    """The RNG states a resumed run needs to continue exactly (dropout masks), by role.

    `devices` are the run's own devices in the strategy's order; the state of each CUDA one is kept at
    its position ("the run's first GPU"), not under its id, and no other GPU's state is kept: a run
    checkpointed on a machine with 8 GPUs resumes on one with fewer, or with other ids.
    """
    state: dict = {"cpu": torch.get_rng_state(), "devices": []}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["devices"] = [torch.cuda.get_rng_state(d) for d in devices if d.type == "cuda"]
    return state


def device_rng_states(saved: dict, devices: Sequence[torch.device]) -> list[tuple[torch.device, torch.Tensor]]:
    """Which saved CUDA state goes to which of this run's devices.

    By role for checkpoints `rng_state` wrote; older checkpoints held one state per visible GPU
    (`get_rng_state_all`), mapped by id where this machine has that id. Extra states are ignored.
    """
    cuda = [d for d in devices if d.type == "cuda"]
    if "devices" in saved:
        return list(zip(cuda, saved["devices"]))
    every = saved.get("cuda") or []
    return [(d, every[d.index or 0]) for d in cuda if (d.index or 0) < len(every)]


def set_rng_state(saved: dict, devices: Sequence[torch.device] = ()) -> None:
    """Restore the RNG states saved by `rng_state` on this run's devices."""
    torch.set_rng_state(saved["cpu"] if "cpu" in saved else saved["torch"])
    if torch.cuda.is_available():
        for device, state in device_rng_states(saved, devices):
            torch.cuda.set_rng_state(state, device)


def rank_rng_path(run_dir: str | Path, rank: int) -> Path:
    """Where rank `rank` of a multi-process run keeps its own RNG states beside the checkpoint."""
    return Path(run_dir) / RANK_RNG_DIR / f"rank-{rank}.pt"


def save_rank_rng(run_dir: str | Path, rank: int, step: int, devices: Sequence[torch.device]) -> Path:
    """Write this rank's RNG states for the checkpoint of `step` (atomically, one file per rank).

    The checkpoint itself holds rank 0's states; every other rank's dropout masks depend on its own.
    """
    path = rank_rng_path(run_dir, rank)
    path.parent.mkdir(exist_ok=True)
    return save_checkpoint(path, {"step": step, "rng": rng_state(devices)})


def rank_rng(run_dir: str | Path, rank: int, step: int) -> dict | None:
    """This rank's RNG states saved with the checkpoint of `step`, or None (missing, or from another step)."""
    path = rank_rng_path(run_dir, rank)
    if not path.exists():
        return None
    try:
        saved = load_checkpoint(path)
    except Exception:  # a torn or unreadable file: the checkpoint's states are the fallback
        return None
    return saved["rng"] if saved.get("step") == step else None
