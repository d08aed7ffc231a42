"""Multi-device strategies on CPU: DDP through torchrun (one node and two), model parallel, killed workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, cli, make_config, run_to_end
from tui_trainer.runs import RunStore, create_runner
from tui_trainer.training.checkpoint import load_checkpoint
from tui_trainer.training.strategies import balance, layer_blocks

# fp32 SGD on a small synthetic regression: K steps, then compare the weights.
COMMON = ["--set", "data.dataset=synthetic-regression", "--set", "data.samples=400", "--set", "data.features=8",
          "--set", "optimizer.name=sgd", "--set", "optimizer.lr=0.0001", "--set", "optimizer.momentum=0.5",
          "--set", "train.max_steps=12", "--set", "model.hidden=[16]"]


def worker_pids(under: Path) -> list[int]:
    """Processes running our worker module for runs under a folder (none may outlive its run)."""
    import psutil

    pids = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if ("tui_trainer.runs.worker" in cmdline and str(under) in cmdline
                and process.info["status"] != psutil.STATUS_ZOMBIE):
            pids.append(process.pid)
    return pids


def final_weights(runs_dir: Path) -> dict[str, torch.Tensor]:
    (run_dir,) = runs_dir.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", summary
    return load_checkpoint(run_dir / "checkpoint.pt")["model"]


def assert_close(a: dict, b: dict, tol: float = 1e-5) -> None:
    for key in a:
        assert torch.allclose(a[key], b[key], atol=tol, rtol=0), f"{key}: {(a[key] - b[key]).abs().max()}"


@pytest.mark.parametrize("accumulate", [1, 2])
def test_ddp_on_two_cpu_processes_matches_one_process_with_the_global_batch(tmp_path, accumulate):
    one = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path / "cpu"), *COMMON,
              "--set", f"data.batch_size={32 // accumulate}", "--set", f"train.accumulate={accumulate}")
    assert one.returncode == 0, one.stderr
    two = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path / "ddp"), *COMMON,
              "--set", "strategy.name=ddp", "--set", "strategy.devices=2",
              "--set", f"data.batch_size={16 // accumulate}", "--set", f"train.accumulate={accumulate}")
    assert two.returncode == 0, two.stdout + two.stderr
    assert "rank 1: completed" in two.stdout
    assert_close(final_weights(tmp_path / "cpu"), final_weights(tmp_path / "ddp"))
    assert worker_pids(tmp_path) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multinode_ddp_with_two_node_agents_matches_the_single_node_result(tmp_path):
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = []
    for rank in (0, 1):
        nodes.append(subprocess.Popen(
            [sys.executable, "-m", "tui_trainer", "run", "multinode-ddp", "--headless", "--node-rank", str(rank),
             "--runs-dir", str(tmp_path / f"node{rank}"), "--rdzv-endpoint", endpoint, *COMMON,
             "--set", "strategy.devices=1", "--set", "strategy.accelerator=cpu", "--set", "train.precision=fp32",
             "--set", "data.batch_size=16"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [node.communicate(timeout=180)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    single = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path / "cpu"), *COMMON,
                 "--set", "data.batch_size=32")
    assert single.returncode == 0
    reference = final_weights(tmp_path / "cpu")
    assert_close(reference, final_weights(tmp_path / "node0"))
    assert_close(reference, final_weights(tmp_path / "node1"))
    assert worker_pids(tmp_path) == []


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def long_ddp_config(**train):
    return make_config(name="long", data={"dataset": "diabetes"},
                       train={"epochs": 100000, "checkpoint_every": 20, **train},
                       strategy={"name": "ddp", "devices": 2})


def rank_pids(run_dir: Path) -> dict[int, int]:
    out = {}
    for path in (run_dir / "ranks").glob("rank-*.json"):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if data["state"] == "training":
            out[data["rank"]] = data["pid"]
    return out


def test_a_killed_worker_fails_the_run_quickly_and_leaves_no_process(runs_dir):
    runner = create_runner(long_ddp_config(), RunStore(runs_dir))
    run_dir = runner.start()
    pids = wait_for(lambda: (p := rank_pids(run_dir)) and len(p) == 2 and p, 90, "both ranks training")
    wait_for(lambda: (run_dir / "checkpoint.pt").exists(), 60, "a first checkpoint")
    killed_at = time.monotonic()
    os.kill(pids[1], signal.SIGKILL)
    summary = runner.wait(60)
    assert summary is not None and summary.status == "failed"
    assert time.monotonic() - killed_at < 30
    assert "rank 1" in summary.error and "SIGKILL" in summary.error
    assert worker_pids(runs_dir) == []
    assert runner.process.poll() is not None
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["step"] > 0 and "model" in state
    ranks = {e.rank: e.state for e in runner.drain() if type(e).__name__ == "RankState"}
    assert ranks.get(0) in ("training", "failed")


TORCHRUN_FAILURE_LOG = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
Failures:
[1]:
  time      : 2026-11-27_04:39:32
  host      : ci
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
Root Cause (first observed failure):
[0]:
  time      : 2026-11-27_04:39:32
  host      : ci
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 4241)
  error_file: <N/A>
"""


def test_the_failure_names_the_killed_rank_not_the_one_torchrun_stopped_after_it(tmp_path):
    from tui_trainer.runs.launcher import WORKER_LOG, failure_reason

    (tmp_path / WORKER_LOG).write_text(TORCHRUN_FAILURE_LOG)
    both_training = {0: ("training", "", 1.0), 1: ("training", "", 1.0)}
    assert failure_reason(tmp_path, both_training, 1) == "rank 1 was killed by signal 9 (SIGKILL)"
    rank_0_finished = {0: ("finished", "", 1.0), 1: ("training", "", 1.0)}
    assert failure_reason(tmp_path, rank_0_finished, 1).startswith("rank 1 was killed")


def test_the_failure_names_the_rank_that_raised_not_the_one_torchrun_stopped_after_it(tmp_path):
    from tui_trainer.runs.launcher import WORKER_LOG, failure_reason

    (tmp_path / WORKER_LOG).write_text(TORCHRUN_FAILURE_LOG.replace("exitcode  : -9", "exitcode  : 1"))
    states = {0: ("training", "", 1.0), 1: ("failed", "ValueError: bad batch", 2.0)}
    assert failure_reason(tmp_path, states, 1) == "rank 1 failed: ValueError: bad batch"


def test_a_stop_request_reaches_every_rank_which_checkpoint_and_exit(runs_dir):
    runner = create_runner(long_ddp_config(), RunStore(runs_dir))
    run_dir = runner.start()
    wait_for(lambda: len(rank_pids(run_dir)) == 2, 90, "both ranks training")
    runner.stop()
    summary = runner.wait(60)
    assert summary.status == "stopped"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == summary.step > 0
    states = {json.loads(p.read_text())["state"] for p in (run_dir / "ranks").glob("rank-*.json")}
    assert states == {"stopped"}
    from tui_trainer.training.checkpoint import rank_rng

    assert all(rank_rng(run_dir, rank, summary.step) is not None for rank in (0, 1)), \
        "each rank keeps its own RNG states for the checkpoint's step (its dropout resumes exactly)"
    assert worker_pids(runs_dir) == []


def test_model_parallel_on_cpu_stages_equals_the_unsplit_model(runs_dir, tmp_path):
    sections = dict(data={"dataset": "diabetes"}, model={"hidden": [32, 32, 16]},
                    optimizer={"name": "adam", "lr": 0.01}, train={"epochs": 2})
    plain, plain_dir, _ = run_to_end(make_config(**sections), tmp_path / "plain")
    split, split_dir, events = run_to_end(make_config(**sections, strategy={
        "name": "model-parallel", "devices": 2, "accelerator": "cpu"}), tmp_path / "split")
    assert split.status == "completed", split.error
    assert any("layers per stage: [2, 2]" in note for note in split.notes)
    a = load_checkpoint(plain_dir / "checkpoint.pt")["model"]
    b = load_checkpoint(split_dir / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()  # the checkpoint keeps the plain model's keys
    assert_close(a, b, 1e-6)


def test_model_parallel_balances_stages_by_parameter_count():
    from torch import nn

    model = nn.Sequential(nn.Linear(10, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                          nn.Linear(400, 10), nn.ReLU(), nn.Linear(10, 1))
    blocks = layer_blocks(model)
    assert [len(b) for b in blocks] == [2, 2, 2, 1]
    # Layers hold 4.4k, 160.4k, 4.0k and 11 parameters: the big one goes with the small ones after it.
    assert balance(blocks, 2) == [1, 3]
    assert balance(blocks, 4) == [1, 1, 1, 1]
    equal = nn.Sequential(*[nn.Linear(50, 50) for _ in range(6)])
    assert balance(layer_blocks(equal), 3) == [2, 2, 2]


def test_model_parallel_split_must_cover_the_layers(tmp_path):
    summary, _, _ = run_to_end(make_config(data={"dataset": "diabetes"}, train={"epochs": 1}, strategy={
        "name": "model-parallel", "devices": 2, "accelerator": "cpu", "split": [1, 1]}), tmp_path)
    assert summary.status == "failed" and "strategy.split = [1, 1]" in summary.error


def test_dp_is_refused_without_gpus_with_a_suggestion():
    result = cli("run", "dp-fp16", "--headless")
    assert result.returncode == 2
    assert 'strategy.name = "dp"' in result.stderr and "no usable GPU" in result.stderr


def test_hybrid_two_replicas_of_two_cpu_stages_match_one_process(tmp_path):
    one = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path / "cpu"), *COMMON,
              "--set", "model.hidden=[16,16,8]", "--set", "data.batch_size=32")
    assert one.returncode == 0, one.stderr
    hybrid = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path / "hybrid"), *COMMON,
                 "--set", "model.hidden=[16,16,8]", "--set", "strategy.name=hybrid", "--set", "strategy.devices=4",
                 "--set", "strategy.stages=2", "--set", "strategy.accelerator=cpu", "--set", "data.batch_size=16")
    assert hybrid.returncode == 0, hybrid.stdout + hybrid.stderr
    assert "layers per stage: [2, 2]" in hybrid.stdout and "DDP over 2 processes" in hybrid.stdout
    assert_close(final_weights(tmp_path / "cpu"), final_weights(tmp_path / "hybrid"))
    assert worker_pids(tmp_path) == []


def test_a_detached_run_in_its_own_process_equals_the_thread_run_and_stops_cleanly(tmp_path):
    config = make_config(data={"dataset": "diabetes"}, model={"dropout": 0.1}, train={"epochs": 3})
    thread = create_runner(config, RunStore(tmp_path / "thread"))
    process = create_runner(config, RunStore(tmp_path / "process"), isolated=True)
    assert type(process).__name__ == "DetachedRunner"
    dirs = [thread.start(), process.start()]
    summaries = [thread.wait(120), process.wait(120)]
    assert [s.status for s in summaries] == ["completed", "completed"]
    assert_close(*[load_checkpoint(d / "checkpoint.pt")["model"] for d in dirs], tol=0.0)
    kinds = {type(e).__name__ for e in process.drain()}
    assert {"RunStarted", "TrainProgress", "EvalResult", "RunFinished"} <= kinds and "RankState" not in kinds

    long = create_runner(make_config(data={"dataset": "diabetes"}, train={"epochs": 100000}),
                         RunStore(tmp_path / "long"), isolated=True)
    run_dir = long.start()
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").stat().st_size, 60,
             "training to start")
    long.stop()
    summary = long.wait(60)
    assert summary.status == "stopped" and load_checkpoint(run_dir / "checkpoint.pt")["step"] == summary.step
    assert worker_pids(tmp_path) == []


def test_ddp_on_the_default_data_takes_the_steps_and_samples_of_one_process(tmp_path):
    # diabetes: 353 training samples, 32 a step: 11 full steps and a last step of 1 sample, which one
    # of the two ranks gets while the other joins the step with zero weight.
    common = ["--headless", "--set", "train.epochs=3"]
    one = cli("run", "cpu-quick", *common, "--runs-dir", str(tmp_path / "cpu"), "--set", "data.batch_size=32")
    assert one.returncode == 0, one.stderr
    two = cli("run", "cpu-quick", *common, "--runs-dir", str(tmp_path / "ddp"), "--set", "strategy.name=ddp",
              "--set", "strategy.devices=2", "--set", "data.batch_size=16")
    assert two.returncode == 0, two.stdout + two.stderr
    assert "completed: cpu-quick at step 36/36" in one.stdout and "completed: cpu-quick at step 36/36" in two.stdout
    assert_close(final_weights(tmp_path / "cpu"), final_weights(tmp_path / "ddp"))
    assert worker_pids(tmp_path) == []


def test_each_rank_starts_with_its_share_of_the_nodes_cores():
    from tui_trainer.runs.launcher import rank_threads

    def ddp(devices, nodes=1, threads=0):
        return make_config(strategy={"name": "ddp", "devices": devices, "accelerator": "cpu", "nodes": nodes,
                                     **({"rdzv_endpoint": "10.0.0.1:29500"} if nodes > 1 else {})},
                           train={"threads": threads})

    assert rank_threads(ddp(1), cores=2) == 2, "one process: every core, not torchrun's one thread"
    assert rank_threads(ddp(2), cores=2) == 1 and rank_threads(ddp(2), cores=16) == 8
    assert rank_threads(ddp(3), cores=2) == 1, "never 0"
    assert rank_threads(ddp(2, nodes=2), cores=8) == 4, "the 2 processes of this node share its cores"
    assert rank_threads(ddp(2, threads=3), cores=16) == 3, "train.threads decides when set"
    assert rank_threads(ddp(2), inherited="4", cores=16) == 4, "so does an exported OMP_NUM_THREADS"


def test_a_one_process_cpu_ddp_rank_may_use_every_core(tmp_path):
    from tui_trainer.runs.launcher import usable_cores

    out = cli("run", "cpu-quick", "--headless", "--runs-dir", str(tmp_path), "--set", "train.max_steps=3",
              "--set", "strategy.name=ddp", "--set", "strategy.devices=1", "--set", "strategy.accelerator=cpu",
              env={"OMP_NUM_THREADS": ""})
    assert out.returncode == 0, out.stdout + out.stderr
    (summary,) = tmp_path.glob("*/summary.json")
    (threads,) = [n for n in json.loads(summary.read_text())["notes"] if n.startswith("train.threads")]
    # The tiny default job then takes one thread by its own measure, not because the rank saw one core.
    seen_one_core = threads == "train.threads = 0: 1 thread (torch sees one core)"
    assert seen_one_core == (usable_cores() == 1), threads


def listening_addresses(root_pid: int) -> set[str]:
    """The addresses that a process and its children listen on (TCP)."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    out = set()
    for process in processes:
        try:
            out |= {c.laddr.ip for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            continue
    return out


def test_a_one_node_ddp_run_listens_on_loopback_only(runs_dir):
    runner = create_runner(long_ddp_config(), RunStore(runs_dir))
    run_dir = runner.start()
    try:
        wait_for(lambda: len(rank_pids(run_dir)) == 2, 90, "both ranks training")
        wait_for(lambda: (run_dir / "metrics.jsonl").exists(), 60, "the first steps")
        addresses = listening_addresses(runner.process.pid)
        assert addresses, "torchrun's store listens somewhere"
        assert addresses <= {"127.0.0.1", "::1"}, f"listening beyond loopback: {addresses}"
    finally:
        runner.stop()
        summary = runner.wait(60)
    assert summary.status == "stopped"
    assert worker_pids(runs_dir) == []


def test_an_unreachable_rendezvous_fails_within_its_timeout_naming_the_cause(tmp_path):
    started = time.monotonic()
    result = cli("run", "multinode-ddp", "--headless", "--node-rank", "1", "--runs-dir", str(tmp_path),
                 "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--set", "strategy.rdzv_timeout=5",
                 "--set", "strategy.devices=1", "--set", "train.precision=fp32", timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 120, "bounded by strategy.rdzv_timeout, not torch's minutes"
    (run_dir,) = tmp_path.iterdir()
    error = json.loads((run_dir / "summary.json").read_text())["error"]
    assert error.startswith("rendezvous failed: ") and "timed out after 5000ms" in error
    assert worker_pids(tmp_path) == []


def test_a_rendezvous_host_that_does_not_resolve_is_refused_before_anything_starts(tmp_path):
    result = cli("run", "multinode-ddp", "--headless", "--runs-dir", str(tmp_path),
                 "--set", "strategy.rdzv_endpoint=no-such-host.invalid:29500")
    assert result.returncode == 2
    assert 'strategy.rdzv_endpoint = "no-such-host.invalid:29500": host "no-such-host.invalid" does not resolve' \
        in result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
