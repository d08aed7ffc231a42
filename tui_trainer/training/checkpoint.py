"""Checkpoints: `state_dict`s and RNG states, written to a temporary file and renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

import torch


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


def rng_state() -> dict:
    """The RNG states a resumed run needs to continue exactly (dropout masks)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the RNG states saved by `rng_state`."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
