"""GPU paths whose mechanism shows on the CPU: each test would fail on the first day on real GPUs without its fix.

No GPU here, so each test exercises the part of the mechanism that does not need one: the autocast dtype
a DataParallel replica thread sees, which saved RNG state goes to which device, the host reads an fp16
step makes, where the strategy comes from when the environment holds RANK, the torch version the fused
optimizer needs, and the machine check on resume.
"""

from __future__ import annotations

import json
import threading

import pytest
import torch
from torch import nn

from tests.conftest import cli, make_config, run_to_end
from tui_trainer.config.choices import PRECISION_CHOICES, STRATEGY_CHOICES
from tui_trainer.runs import RunStore, create_runner
from tui_trainer.training import checkpoint
from tui_trainer.training.precision import PRECISIONS, make_precision
from tui_trainer.training.strategies import STRATEGIES, replica_module


class DtypeProbe(nn.Module):
    """Records the autocast dtype its forward runs under, and the dtype a Linear computes in."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.seen: list[tuple[torch.dtype, torch.dtype]] = []

    def forward(self, x):
        out = self.linear(x)
        self.seen.append((torch.get_autocast_dtype("cuda"), out.dtype))
        return out


def run_like_a_dataparallel_replica(module: nn.Module, x: torch.Tensor) -> None:
    # torch.nn.parallel.parallel_apply's _worker: a new thread re-enters autocast without a dtype.
    def worker():
        with torch.amp.autocast("cuda", enabled=True):
            module(x)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_a_dataparallel_replica_thread_computes_in_bf16_not_the_threads_fp16_default():
    probe = DtypeProbe()
    precision = make_precision("bf16-mixed", torch.device("cpu"))
    with torch.autocast("cuda", dtype=torch.bfloat16):  # the loop's autocast, in the main thread
        run_like_a_dataparallel_replica(probe, torch.randn(3, 4))
        run_like_a_dataparallel_replica(replica_module(probe, precision, "cuda"), torch.randn(3, 4))
    bare, wrapped = probe.seen
    assert bare[0] == torch.float16, "the mechanism: a fresh thread's CUDA autocast dtype is fp16"
    assert wrapped[0] == torch.bfloat16, "the replicated module enters the run's own dtype"
    assert replica_module(probe, make_precision("fp32", torch.device("cpu")), "cuda") is probe


def test_the_replica_wrapper_really_computes_in_the_runs_dtype():
    # On the CPU, where autocast is live, the wrapped forward computes in the precision's dtype in any thread.
    probe = DtypeProbe()
    wrapped = replica_module(probe, make_precision("fp16-mixed", torch.device("cpu")), "cpu")
    wrapped.device_type = "cpu"
    seen = []
    thread = threading.Thread(target=lambda: seen.append(wrapped(torch.randn(3, 4)).dtype))
    thread.start()
    thread.join()
    assert seen == [torch.float16]


def test_saved_rng_states_follow_the_runs_devices_not_every_visible_gpu():
    saved_on_8 = {"torch": torch.get_rng_state(), "cuda": [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]}
    one_gpu = (torch.device("cuda", 0),)
    (pair,) = checkpoint.device_rng_states(saved_on_8, one_gpu)
    assert pair[0] == one_gpu[0] and pair[1][0] == 0, "an old checkpoint of 8 GPUs restores only GPU 0's state"
    assert checkpoint.device_rng_states(saved_on_8, (torch.device("cuda", 9),)) == [], "no IndexError"

    by_role = {"cpu": torch.get_rng_state(), "devices": [torch.full((16,), 7, dtype=torch.uint8)]}
    (pair,) = checkpoint.device_rng_states(by_role, (torch.device("cuda", 1),))
    assert pair[0].index == 1 and pair[1][0] == 7, "the run's first GPU gets the first GPU's state, whatever its id"
    assert checkpoint.device_rng_states(by_role, (torch.device("cpu"),)) == []

    state = checkpoint.rng_state((torch.device("cpu"),))
    assert set(state) == {"cpu", "devices"} and state["devices"] == []
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    checkpoint.set_rng_state(checkpoint.rng_state((torch.device("cpu"),)))
    assert torch.equal(torch.rand(3), expected)


def test_each_ddp_rank_resumes_its_own_rng_state_from_its_own_file(tmp_path):
    cpu = (torch.device("cpu"),)
    torch.manual_seed(10)
    checkpoint.save_rank_rng(tmp_path, 1, 40, cpu)
    rank1_next = torch.rand(2)
    torch.manual_seed(20)
    rank0 = checkpoint.rng_state(cpu)  # what rank 0's checkpoint holds

    own = checkpoint.rank_rng(tmp_path, 1, 40)
    assert own is not None and checkpoint.rank_rng(tmp_path, 2, 40) is None
    checkpoint.set_rng_state(own, cpu)
    assert torch.equal(torch.rand(2), rank1_next), "rank 1 continues its own stream, not rank 0's"
    assert checkpoint.rank_rng(tmp_path, 1, 41) is None, "a file from another checkpoint's step is not used"
    assert not torch.equal(rank0["cpu"], own["cpu"])
    assert checkpoint.rank_rng_path(tmp_path, 1).parent.name == "rng"


def test_resume_runs_the_machine_check_and_refuses_a_gpu_this_machine_lacks(tmp_path):
    config = make_config("gpu1", strategy={"name": "single", "devices": [1]}, train={"precision": "bf16-mixed"})
    run_dir = RunStore(tmp_path).create(config)
    (run_dir / "checkpoint.pt").write_bytes(b"")
    (run_dir / "summary.json").write_text(json.dumps({"status": "stopped"}))
    result = cli("resume", str(run_dir), "--headless", "--runs-dir", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'strategy.name = "single"' in result.stderr and "no usable GPU" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped", "nothing was started"


def test_fp16_counts_skipped_steps_on_the_device_without_reading_the_scale_every_step(tmp_path, monkeypatch):
    reads = []
    get_scale = torch.amp.GradScaler.get_scale
    monkeypatch.setattr(torch.amp.GradScaler, "get_scale", lambda self: reads.append(1) or get_scale(self))
    # Validation keeps fp16 off the CPU; the Trainer itself runs it there (CPU autocast has float16).
    config = make_config(train={"precision": "fp16-mixed", "max_steps": 300})
    summary, _, events = run_to_end(config, tmp_path)
    assert summary.status == "completed", summary.error
    progress = [e for e in events if type(e).__name__ == "TrainProgress"]
    checkpoints = sum(type(e).__name__ == "CheckpointSaved" for e in events)
    assert len(reads) <= len(progress) + checkpoints + 1 < 300, "the scale is read at report time, not per step"
    # The default scale 65536 overflows fp16 at first; each skip halves it (no growth within 2000 steps).
    final_scale = progress[-1].scaler_scale
    assert summary.skipped_steps > 0 and 2 ** summary.skipped_steps == 65536 / final_scale
    assert progress[-1].skipped_steps == summary.skipped_steps


def test_an_inherited_rank_variable_does_not_turn_a_one_process_run_into_ddp(tmp_path, monkeypatch):
    for name, value in (("RANK", "3"), ("WORLD_SIZE", "8"), ("MASTER_ADDR", "10.9.9.9")):
        monkeypatch.setenv(name, value)  # a shell inside a PyTorchJob, Slurm step or torchrun
    runner = create_runner(make_config(train={"max_steps": 20}), RunStore(tmp_path), isolated=True)
    assert type(runner).__name__ == "DetachedRunner"
    runner.start()
    summary = runner.wait(120)
    assert summary.status == "completed" and summary.step == 20, summary.error


def test_fused_cpu_optimizers_are_only_built_where_torch_has_them(monkeypatch):
    from tui_trainer.config.schema import OptimizerConfig
    from tui_trainer.training.optim import build_optimizer, fused_devices

    assert fused_devices("2.3.1+cu121") == ("cuda",) and fused_devices("2.4.0") == ("cpu", "cuda")
    assert fused_devices("2.13.0+cpu") == ("cpu", "cuda") and fused_devices("3.0.0a0") == ("cpu", "cuda")
    params = list(nn.Linear(3, 1).parameters())
    monkeypatch.setattr(torch, "__version__", "2.3.1")
    for name in ("adam", "adamw", "sgd"):
        optimizer = build_optimizer(OptimizerConfig(name=name), params)
        assert not optimizer.defaults["fused"], f"{name}: torch 2.3 has no fused CPU kernel"
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    assert build_optimizer(OptimizerConfig(), params).defaults["fused"] is True


def test_the_training_registries_declare_what_config_choices_validate_against():
    assert tuple(STRATEGIES) == tuple(STRATEGY_CHOICES) and tuple(PRECISIONS) == tuple(PRECISION_CHOICES)
    for name, cls in STRATEGIES.items():
        choice = STRATEGY_CHOICES[name]
        assert (cls.name, cls.needs_gpu, cls.multi_process, cls.splits_batch) == (
            name, choice.needs_gpu, choice.multi_process, choice.splits_batch), name
    for name, cls in PRECISIONS.items():
        choice = PRECISION_CHOICES[name]
        assert (cls.name, cls.needs_gpu, cls.needs_ampere) == (name, choice.needs_gpu, choice.needs_ampere), name
