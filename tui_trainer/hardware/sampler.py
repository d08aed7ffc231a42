"""A background thread that samples every visible GPU at a fixed rate and keeps a short history.

The UI never talks to NVML: it reads `latest()` and `history(index)` on its own timer. Those reads
copy immutable samples out under a lock, so they never wait for a slow NVML call to finish.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from tui_trainer.hardware.inventory import Inventory, read_inventory
from tui_trainer.hardware.nvml import Nvml, NvmlBackend, default_nvml
from tui_trainer.hardware.samples import GpuSample, read_samples


class GpuSampler:
    """Polls the visible GPUs every `interval` seconds in a daemon thread; thread-safe reads.

    Args:
        interval: seconds between samples (default 1).
        history: samples kept per GPU, oldest dropped first (default 120: two minutes at 1 s).
        backend: a pynvml-shaped object (tests pass a fake); None means the real, shared NVML.
    """

    def __init__(self, interval: float = 1.0, history: int = 120, backend: NvmlBackend | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        self.interval = interval
        self._history_len = history
        self._nvml = default_nvml() if backend is None else Nvml(backend)
        self._lock = threading.Lock()
        self._inventory_lock = threading.Lock()
        self._inventory: Inventory | None = None
        self._latest: tuple[GpuSample, ...] = ()
        self._history: dict[int, deque[GpuSample]] = {}
        self._lost: set[int] = set()
        self._rounds = 0
        self._sampled = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False  # the thread is (about to be) sampling; guarded by _lock

    @property
    def inventory(self) -> Inventory:
        """The visible GPUs (read from NVML once, on first use: may take up to a second on big machines)."""
        with self._inventory_lock:
            if self._inventory is None:
                self._inventory = read_inventory(self._nvml)
                with self._lock:
                    self._history = {g.index: deque(maxlen=self._history_len) for g in self._inventory.gpus}
            return self._inventory

    @property
    def reason(self) -> str:
        """Why there is no GPU to show ("no NVIDIA GPU detected: NVML library not found"), or ""."""
        return self.inventory.reason

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def rounds(self) -> int:
        """How many sampling rounds have completed since construction."""
        with self._lock:
            return self._rounds

    def start(self) -> None:
        """Start sampling in a daemon thread (no-op if running). The thread reads the inventory first."""
        if self.running:
            return
        self._stop = threading.Event()
        with self._lock:
            self._active = True
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="gpu-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop sampling and join the thread (it wakes at once; at most one NVML call is in flight)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._finish()

    def sample_once(self) -> tuple[GpuSample, ...]:
        """Take one round of samples now (on the caller's thread), record it, and return it."""
        inventory = self.inventory
        with self._lock:
            lost = frozenset(self._lost)
        samples = read_samples(self._nvml, inventory, lost)
        with self._sampled:
            # A lost GPU stays lost until a reset: asking again only costs NVML timeouts.
            self._lost.update(s.physical_index for s in samples if s.lost)
            self._latest = samples
            for sample in samples:
                self._history[sample.index].append(sample)
            self._rounds += 1
            self._sampled.notify_all()
        return samples

    def latest(self) -> tuple[GpuSample, ...]:
        """The newest sample of each visible GPU, in torch's order; () before the first round."""
        with self._lock:
            return self._latest

    def history(self, index: int) -> tuple[GpuSample, ...]:
        """The kept samples of GPU `index` (torch's id), oldest first; () for an unknown id."""
        with self._lock:
            kept = self._history.get(index)
            return tuple(kept) if kept is not None else ()

    def wait(self, after: int, timeout: float | None = None) -> bool:
        """Block until the thread has finished more than `after` rounds (see `rounds`).

        Returns False on timeout, or once the thread has stopped (stop(), or no GPU to sample).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._sampled:
            while self._rounds <= after:
                remaining = None if deadline is None else deadline - time.monotonic()
                if not self._active or (remaining is not None and remaining <= 0):
                    return False
                self._sampled.wait(remaining)
            return True

    def _run(self, stop: threading.Event) -> None:
        try:
            if not self.inventory.gpus:
                return  # nothing to watch; `reason` says why
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.sample_once()
                except Exception:  # a sampler that dies leaves the panels frozen; skip this round instead
                    pass
                # Event.wait, not sleep: stop() wakes us at once. Keep the rate even when NVML is slow.
                stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            if stop is self._stop:  # not a thread that an earlier stop() already gave up on
                self._finish()

    def _finish(self) -> None:
        with self._sampled:
            self._active = False
            self._sampled.notify_all()  # nobody waits for a round that will not come
