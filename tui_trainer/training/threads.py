"""How many torch threads a CPU run takes when `train.threads = 0`: measured on the run's own step.

Intra-op threads pay only when a step has enough work to split. Below that they cost: their
spin-waits collapse throughput as soon as another process wants a core (35k -> 450 samples/s
measured on the tiny default job; 123k -> 23k on digits-classify with 2 threads on a busy 2-core
machine). A threshold alone guesses wrong in between, so there the run times a few steps each way
on a copy of its model and batch before its first step (off the reported training time; the RNG
state is restored, so the run trains exactly as it would have), and keeps more threads only when
they are clearly faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

TINY_STEP_WORK = 1_000_000  # parameters x micro-batch: below it one thread, nothing to measure
LARGE_STEP_WORK = 100_000_000  # above it torch's default (every core): the step is compute-bound
MORE_THREADS_MARGIN = 1.15  # more threads are kept only when they are at least 15 % faster
ROUNDS = 3  # alternated rounds per setting; the median round counts
ROUND_S = 0.03  # seconds a round aims at (so a measurement costs about 0.2 s)

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice (the physical cores), before any run set one


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    """The thread count a run uses and why (shown in the run's notes)."""

    threads: int
    reason: str


def choose_threads(work: int, step: Callable[[], None] | None, default: int = DEFAULT_THREADS) -> ThreadChoice:
    """The thread count for a CPU run of `work` = parameters x micro-batch.

    `step` runs one training step on copies of the model and optimizer; None (several processes, a
    DataLoader) decides by the thresholds alone.
    """
    if default <= 1:
        return ThreadChoice(1, "train.threads = 0: 1 thread (torch sees one core)")
    if work < TINY_STEP_WORK:
        return ThreadChoice(1, f"train.threads = 0: 1 thread, a tiny step (parameters x batch = {work:,} "
                               f"< {TINY_STEP_WORK:,})")
    if work >= LARGE_STEP_WORK or step is None:
        why = "a compute-bound step" if work >= LARGE_STEP_WORK else "not measured"
        return ThreadChoice(default, f"train.threads = 0: {default} threads, {why} (parameters x batch = {work:,})")
    one, many = measure(step, (1, default))
    if one > many * MORE_THREADS_MARGIN:
        threads = default
    else:
        threads = 1
    return ThreadChoice(threads, f"train.threads = 0: {threads} thread{'s' if threads > 1 else ''}, measured "
                                 f"{one * 1e3:.3g} ms/step with 1 and {many * 1e3:.3g} ms/step with {default} "
                                 f"({default} must be {MORE_THREADS_MARGIN - 1:.0%} faster to be chosen)")


def measure(step: Callable[[], None], settings: tuple[int, ...]) -> list[float]:
    """Seconds per step with each thread count: alternated rounds after a warm-up, the median round each."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(settings[0])
        for _ in range(3):  # warm-up: allocator, kernels picked, optimizer state made
            step()
        started = time.perf_counter()
        step()
        per_round = max(2, min(200, int(ROUND_S / max(time.perf_counter() - started, 1e-6))))
        rounds: dict[int, list[float]] = {s: [] for s in settings}
        for r in range(ROUNDS):
            for threads in settings if r % 2 == 0 else tuple(reversed(settings)):
                torch.set_num_threads(threads)
                step()  # the first step after a switch wakes (or parks) the pool
                started = time.perf_counter()
                done = 0
                while done < per_round:  # a setting that collapses under load ends its round early
                    step()
                    done += 1
                    if time.perf_counter() - started > 3 * ROUND_S:
                        break
                rounds[threads].append((time.perf_counter() - started) / done)
        return [statistics.median(rounds[s]) for s in settings]
    finally:
        torch.set_num_threads(before)
