"""Checkpoints: `state_dict`s and RNG states, written to a temporary file and renamed into place."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

RANK_RNG_DIR = "rng"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write atomically and durably: a reader sees the old checkpoint or the new one, never half of one.

    The new file is fsync'd before it is renamed into place (and the rename is made durable), so a
    crash or a power cut leaves the last complete checkpoint. A write error (a full disk) removes the
    partial file and is raised as an OSError naming the file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        errno = getattr(exc, "errno", None)
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
        raise OSError(errno, f"checkpoint not written ({reason})", str(tmp)) from exc
    _sync_directory(path.parent)
    return path


def _sync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); best effort where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint onto the CPU (tensors only, no pickled code); a damaged file is a ValueError naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, pickle.UnpicklingError) as exc:
        if type(exc).__name__ == "OutOfMemoryError":
            raise
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason})") from exc


def check_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint to resume from, or raise ConfigError naming the file and what is wrong with it.

    weights_only=True refuses pickled code: a checkpoint is data. A truncated or corrupt file, or a
    file that is not a tui-trainer checkpoint, is a one-line error before anything is overwritten.
    """
    import pickle
    import re
    import zipfile

    from tui_trainer.config.errors import ConfigError, ConfigProblem

    def refuse(why: str) -> ConfigError:
        return ConfigError([ConfigProblem(str(path), "", None, why)])

    try:
        if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
            raise refuse("the checkpoint is damaged or truncated (not a torch zip archive)")
        try:
            state = load_checkpoint(path)
        except ValueError as exc:  # load_checkpoint names the file; the pickle error under it says why
            raise exc.__cause__ if isinstance(exc.__cause__, pickle.UnpicklingError) else exc
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it would call {found.group(1)})" if found else ""
        raise refuse(f"refused: it holds pickled objects other than tensors and plain data{what}; a checkpoint "
                     "is data, never code (torch.load weights_only=True)") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise refuse(f"cannot read the checkpoint: {exc.strerror or exc}") from None
    except ConfigError:
        raise
    except Exception as exc:  # torch raises RuntimeError, EOFError, ValueError... for a damaged zip
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise refuse(f"the checkpoint is damaged or truncated ({first})") from None
    if not (isinstance(state, dict) and isinstance(state.get("model"), dict)
            and isinstance(state.get("optimizer"), dict) and isinstance(state.get("rng"), dict)
            and isinstance(state.get("step"), int) and not isinstance(state.get("step"), bool)
            and state["step"] >= 0):
        raise refuse("not a tui-trainer checkpoint (expected model, optimizer, rng and a step >= 0)")
    return state


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
