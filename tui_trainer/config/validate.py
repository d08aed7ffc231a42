"""Machine-dependent checks: can this machine run this config? Each problem says what to choose instead."""

from __future__ import annotations

import socket
import threading
import time

from tui_trainer.config.choices import PRECISION_CHOICES, STRATEGY_CHOICES, device_ids, is_multi_process, lists_ids
from tui_trainer.config.errors import ConfigError, ConfigProblem
from tui_trainer.config.machine import Machine
from tui_trainer.config.schema import RunConfig, as_written, device_count

# More CPU processes than cores still trains (slower per process), which is worth allowing to try ddp on a
# laptop; beyond 4 per core the processes mostly wait on each other, so that is refused.
CPU_PROCESSES_PER_CORE = 4


def uses_gpu(config: RunConfig, machine: Machine) -> bool:
    """Whether the run's devices are GPUs (ddp and accelerator "auto" follow what the machine has)."""
    s = config.strategy
    choice = STRATEGY_CHOICES[s.name]
    if s.accelerator == "cpu" or not (choice.needs_gpu or choice.multi_process):
        return False
    if choice.multi_process and s.accelerator == "auto":
        return machine.has_gpu or lists_ids(s.devices)
    return True


def gpu_ids(config: RunConfig, machine: Machine) -> tuple[int, ...]:
    """The visible GPU ids the run will use (empty on CPU)."""
    if not uses_gpu(config, machine):
        return ()
    return device_ids(config.strategy.devices)


def validate_for_machine(config: RunConfig, machine: Machine) -> list[ConfigProblem]:
    """Every reason `machine` cannot run the config, one line each (empty when it can).

    The caller passes the machine (`tui_trainer.hardware.detect_machine()` for this one): config sits
    below hardware and never imports it.
    """
    problems = []

    def problem(key: str, value: object, why: str) -> None:
        problems.append(ConfigProblem(config.source, key, value, why))

    s, precision = config.strategy, config.train.precision
    multi = is_multi_process(s.name)
    needs = PRECISION_CHOICES[precision]
    on_gpu = uses_gpu(config, machine)
    if on_gpu and not machine.has_gpu:
        if multi and s.accelerator == "gpu":
            problem("strategy.accelerator", s.accelerator, f"{machine.describe_gpus()}; choose \"cpu\" or \"auto\" "
                    "(ddp then runs CPU processes with gloo)")
        elif multi:
            problem("strategy.devices", list(s.devices), f"{machine.describe_gpus()}; for CPU processes give a "
                    f"count, e.g. strategy.devices = {len(s.devices)}")
        else:
            problem("strategy.name", s.name, f"{machine.describe_gpus()}; choose \"cpu\" (or \"ddp\" with CPU processes)")
    elif on_gpu:
        wanted = gpu_ids(config, machine)
        have = {g.index for g in machine.gpus}
        missing = [i for i in wanted if i not in have]
        if missing:
            problem("strategy.devices", as_written(s.devices),
                    f"GPU id(s) {', '.join(map(str, missing))} do not exist; {machine.describe_gpus()}")
        elif s.name == "dp" and len(wanted) < 2:
            problem("strategy.name", s.name, "DataParallel needs at least 2 GPUs; choose \"single\" or \"ddp\"")

    if needs.needs_gpu and not (on_gpu and machine.has_gpu):
        problem("train.precision", precision, _NEEDS_GPU.get(precision, "needs a CUDA GPU; on CPU choose fp32"))
    if needs.needs_ampere and on_gpu and machine.has_gpu:
        old = [g for g in machine.gpus if g.index in gpu_ids(config, machine) and not g.supports_bf16]
        if old:
            g = old[0]
            problem("train.precision", precision, f"GPU {g.index} ({g.name}, compute capability "
                    f"{g.capability[0]}.{g.capability[1]}) has no {precision.split('-')[0]} support (needs 8.0+); "
                    "choose fp16-mixed or fp32")
    if multi and s.nodes > 1 and s.rdzv_endpoint:
        why = unresolvable(s.rdzv_endpoint)
        if why:
            problem("strategy.rdzv_endpoint", s.rdzv_endpoint, why)
    most = max(machine.cpu_count, 1) * CPU_PROCESSES_PER_CORE
    if multi and not on_gpu and device_count(s.devices) > most:
        problem("strategy.devices", s.devices, f"{device_count(s.devices)} CPU processes on {machine.cpu_count} "
                f"core(s) would thrash: at most {CPU_PROCESSES_PER_CORE} per core, so choose at most {most}")
    return problems


RESOLVE_SECONDS = 2.0  # a name server that does not answer within this is as good as a name that does not exist
_resolved: dict[str, tuple[float, str]] = {}  # host -> (when, problem or ""): the launch screen asks often


def unresolvable(endpoint: str) -> str:
    """Why a rendezvous endpoint's host cannot be reached by name ("" when it resolves).

    torchrun would otherwise retry an unknown host for 95-120 s before failing; this answers within
    RESOLVE_SECONDS, and remembers the answer for a minute.
    """
    host = endpoint.rpartition(":")[0].strip("[]") or endpoint
    cached = _resolved.get(host)
    if cached is not None and time.monotonic() - cached[0] < 60:
        return cached[1]
    answer: list[str] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            answer.append("")
        except (OSError, UnicodeError) as exc:
            answer.append(f"host \"{host[:60]}\" does not resolve ({getattr(exc, 'strerror', None) or exc}); "
                          "give the head node's address, e.g. 10.0.0.1:29500")

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(RESOLVE_SECONDS)
    why = answer[0] if answer else (f"host \"{host[:60]}\" did not resolve within {RESOLVE_SECONDS:g} s; "
                                    "give the head node's IP address")
    _resolved[host] = (time.monotonic(), why)
    return why


_NEEDS_GPU = {
    "fp16-mixed": "fp16 mixed precision with a GradScaler needs a CUDA GPU; on CPU choose bf16-mixed or fp32",
    "tf32": "TF32 is a mode of NVIDIA tensor cores (Ampere or newer); on CPU choose fp32",
}


def ensure_runnable(config: RunConfig, machine: Machine) -> None:
    """Raise ConfigError when `machine` cannot run the config."""
    problems = validate_for_machine(config, machine)
    if problems:
        raise ConfigError(problems)

