"""The machine as the UI shows it: the GPU sampler's readings and this process's CPU and memory.

GPUs are sampled by `tui_trainer.hardware.GpuSampler` in its own thread; the app copies its latest
readings once a second (a lock-protected read, never an NVML call on the UI thread) together with a
psutil reading of this process, into a `MachineView`; each round gives a frozen `MachineReading` that
the app sends to the screen (`MachineSampled`) and the panels render from. No Textual here.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

from tui_trainer.hardware import GpuSample
from tui_trainer.hardware.inventory import MIB

HISTORY = 120  # samples kept for sparklines: two minutes at 1 Hz


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """This process (and the machine) at one moment: what a CPU run costs."""

    rss_mib: float
    cpu_percent: float
    threads: int
    children: int
    cores: int
    system_cpu_percent: float
    ram_percent: float
    ram_total_mib: float


class ProcessProbe:
    """Reads the RSS and CPU use of this process and its children (torchrun and its workers, for ddp).

    CPU % is since the previous reading, 100% = one core.
    """

    def __init__(self):
        import psutil

        self._psutil = psutil
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # the first reading only sets the reference point
        self._children: dict[int, object] = {}
        psutil.cpu_percent(None)

    def sample(self) -> ProcessSample | None:
        """One reading; None when psutil cannot read it (it never raises)."""
        try:
            with self._process.oneshot():
                rss = self._process.memory_info().rss / MIB
                cpu = self._process.cpu_percent(None)
                threads = self._process.num_threads()
            children = self._read_children()
            rss += sum(c[0] for c in children)
            cpu += sum(c[1] for c in children)
            memory = self._psutil.virtual_memory()
            return ProcessSample(rss, cpu, threads, len(children), os.cpu_count() or 1,
                                 self._psutil.cpu_percent(None), memory.percent, memory.total / MIB)
        except Exception:  # a panel must never take the app down
            return None

    def _read_children(self) -> list[tuple[float, float]]:
        """(RSS MiB, CPU %) of each child process; the same Process objects are kept for CPU deltas."""
        out = []
        current = {}
        for child in self._process.children(recursive=True):
            known = self._children.get(child.pid, child)
            try:
                cpu = known.cpu_percent(None)  # 0.0 on a child's first reading
                out.append((known.memory_info().rss / MIB, cpu))
                current[child.pid] = known
            except self._psutil.Error:
                continue
        self._children = current
        return out


@dataclass(frozen=True, slots=True)
class MachineReading:
    """One round of readings as the panels draw it: the newest samples and their short histories."""

    gpus: tuple[GpuSample, ...] = ()
    process: ProcessSample | None = None
    gpu_memory: tuple[tuple[int, tuple[float, ...]], ...] = ()  # (GPU index, memory used MiB, oldest first)
    cpu: tuple[float, ...] = ()  # this process's CPU %, oldest first

    def gpu(self, index: int) -> GpuSample | None:
        """The newest sample of GPU `index` (torch's id), or None."""
        return next((g for g in self.gpus if g.index == index), None)

    def memory_history(self, index: int) -> tuple[float, ...]:
        """GPU `index`'s memory used (MiB), oldest first."""
        return next((series for i, series in self.gpu_memory if i == index), ())


class MachineView:
    """Keeps the newest GPU and process samples and short histories; each update gives a MachineReading."""

    def __init__(self, history: int = HISTORY):
        self.gpus: tuple[GpuSample, ...] = ()
        self.process: ProcessSample | None = None
        self.gpu_memory: dict[int, deque[float]] = {}
        self.cpu: deque[float] = deque(maxlen=history)
        self._history = history

    def update(self, gpus: tuple[GpuSample, ...], process: ProcessSample | None) -> MachineReading:
        """Record one round of readings (GPU samples already read by the sampler thread)."""
        fresh = {g.index: g.timestamp for g in self.gpus}
        for sample in gpus:
            if fresh.get(sample.index) == sample.timestamp:
                continue  # the sampler has not taken a new reading since our last look
            series = self.gpu_memory.setdefault(sample.index, deque(maxlen=self._history))
            if sample.memory_used_mib is not None:
                series.append(float(sample.memory_used_mib))
        self.gpus = gpus
        if process is not None:
            self.process = process
            self.cpu.append(process.cpu_percent)
        return self.reading

    @property
    def reading(self) -> MachineReading:
        """The current readings, frozen."""
        memory = tuple((index, tuple(series)) for index, series in sorted(self.gpu_memory.items()))
        return MachineReading(self.gpus, self.process, memory, tuple(self.cpu))
