"""What this machine can run: the GPUs torch will see, as validation needs them. No torch import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VisibleGpu:
    """One GPU as a preset names it: torch's visible index (after CUDA_VISIBLE_DEVICES)."""

    index: int
    name: str
    capability: tuple[int, int]
    memory_total_mib: int

    @property
    def supports_bf16(self) -> bool:
        """bf16 (and TF32) tensor cores arrived with Ampere, compute capability 8.0."""
        return self.capability >= (8, 0)


@dataclass(frozen=True, slots=True)
class Machine:
    """The devices a run can use here. `gpu_note` says why there are none, when there are none."""

    gpus: tuple[VisibleGpu, ...] = ()
    cpu_count: int = 1
    gpu_note: str = "no NVIDIA GPU detected"

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def describe_gpus(self) -> str:
        """A short phrase for error messages: what GPUs this machine has."""
        if not self.gpus:
            return f"this machine has no usable GPU ({self.gpu_note})"
        ids = ", ".join(str(g.index) for g in self.gpus)
        return f"this machine has {len(self.gpus)} GPU(s), ids {ids}"
