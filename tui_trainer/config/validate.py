"""Machine-dependent checks: can this machine run this config? Each problem says what to choose instead."""

from __future__ import annotations

from tui_trainer.config.choices import PRECISION_CHOICES, STRATEGY_CHOICES, device_ids, is_multi_process, lists_ids
from tui_trainer.config.errors import ConfigError, ConfigProblem
from tui_trainer.config.machine import Machine
from tui_trainer.config.schema import RunConfig, device_count


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


def validate_for_machine(config: RunConfig, machine: Machine | None = None) -> list[ConfigProblem]:
    """Every reason this machine cannot run the config, one line each (empty when it can)."""
    if machine is None:
        from tui_trainer.hardware.machine import detect_machine

        machine = detect_machine()
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
            problem("strategy.devices", _as_written(s.devices),
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
    if multi and not on_gpu and device_count(s.devices) > max(machine.cpu_count, 1) * 4:
        problem("strategy.devices", s.devices, f"{s.devices} CPU processes on {machine.cpu_count} cores would thrash; "
                f"choose at most {machine.cpu_count}")
    return problems


_NEEDS_GPU = {
    "fp16-mixed": "fp16 mixed precision with a GradScaler needs a CUDA GPU; on CPU choose bf16-mixed or fp32",
    "tf32": "TF32 is a mode of NVIDIA tensor cores (Ampere or newer); on CPU choose fp32",
}


def ensure_runnable(config: RunConfig, machine: Machine | None = None) -> None:
    """Raise ConfigError when this machine cannot run the config."""
    problems = validate_for_machine(config, machine)
    if problems:
        raise ConfigError(problems)


def _as_written(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value

