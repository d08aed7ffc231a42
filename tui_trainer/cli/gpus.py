"""`tui-trainer gpus`: the visible GPUs as a table (or JSON), once or every interval until Ctrl-C.

GPU ids are torch's (after CUDA_VISIBLE_DEVICES), the ids presets use; the physical id (nvidia-smi's)
is shown beside them. No driver or no GPU is not an error: one line says why, and the exit code is 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from tui_trainer.hardware import GpuSample, GpuSampler, Inventory, NvmlBackend

CPU_NOTE = 'training will run on CPU (strategy "cpu")'
CLEAR = "\x1b[H\x1b[2J"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `gpus` options: --json, --watch, --interval."""
    parser.add_argument("--json", action="store_true", help="print JSON (one object per refresh with --watch)")
    parser.add_argument("--watch", action="store_true", help="refresh every interval until Ctrl-C")
    parser.add_argument("--interval", type=_positive_seconds, default=1.0, metavar="SECONDS",
                        help="seconds between refreshes with --watch (default 1)")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def run(args: argparse.Namespace, backend: NvmlBackend | None = None, out: TextIO | None = None) -> int:
    """Print the GPUs once, or every `args.interval` seconds with `args.watch`; 0 unless something broke.

    `backend` replaces the real NVML (tests pass a fake); `out` defaults to stdout.
    """
    out = out or sys.stdout
    as_json = getattr(args, "json", False)
    try:
        sampler = GpuSampler(interval=getattr(args, "interval", 1.0), history=1, backend=backend)
        inventory = sampler.inventory
        if not inventory.available or not getattr(args, "watch", False):
            samples = sampler.sample_once() if inventory.available else ()
            out.write(render(inventory, samples, as_json) + "\n")
            return 0
        return _watch(sampler, as_json, out)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `tui-trainer gpus | head`: the caller (cli.main) ends quietly
        raise
    except Exception as exc:  # whatever NVML or the terminal did, one line and no traceback
        print(f"error: could not read the GPUs: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _watch(sampler: GpuSampler, as_json: bool, out: TextIO) -> int:
    clear = CLEAR if out.isatty() and not as_json else ""
    sampler.start()
    seen = 0
    try:
        while True:
            # Generous timeout: a slow NVML round delays a frame, it does not end the watch.
            if not sampler.wait(seen, timeout=sampler.interval * 10 + 5):
                if not sampler.running:
                    return 0
                continue
            seen = sampler.rounds
            if as_json:  # JSON lines: one compact object per refresh, for scripts to read as they come
                out.write(json.dumps(to_json(sampler.inventory, sampler.latest())) + "\n")
                out.flush()
                continue
            frame = format_table(sampler.inventory, sampler.latest())
            stamp = time.strftime("%H:%M:%S")
            if clear:
                out.write(f"{clear}{frame}\n\n{stamp}, every {sampler.interval:g} s; Ctrl-C to stop\n")
            else:  # a log or a pipe: frames one after another, each with its time
                out.write(f"# {stamp}\n{frame}\n\n")
            out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        sampler.stop()


def render(inventory: Inventory, samples: tuple[GpuSample, ...], as_json: bool = False) -> str:
    """The command's output for one round: the table, or indented JSON."""
    if as_json:
        return json.dumps(to_json(inventory, samples), indent=2)
    return format_table(inventory, samples)


def to_json(inventory: Inventory, samples: tuple[GpuSample, ...]) -> dict:
    """The same facts as the table, as plain JSON types; n/a is null."""
    by_index = {s.index: s for s in samples}
    gpus = []
    for info in inventory.gpus:
        s = by_index.get(info.index)
        entry = {
            "index": info.index,
            "physical_index": info.physical_index,
            "mig": info.is_mig,
            "name": info.name,
            "uuid": info.uuid,
            "pci_bus_id": info.pci_bus_id,
            "compute_capability": None if info.capability is None else "%d.%d" % info.capability,
            "lost": info.lost or bool(s and s.lost),
            "memory_total_mib": info.memory_total_mib,
        }
        if s is not None:
            entry.update({
                "timestamp": s.timestamp,
                "memory_used_mib": s.memory_used_mib,
                "memory_free_mib": s.memory_free_mib,
                "memory_total_mib": s.memory_total_mib if s.memory_total_mib is not None else info.memory_total_mib,
                "memory_percent": None if s.memory_percent is None else round(s.memory_percent, 1),
                "utilization_gpu_percent": s.utilization_gpu,
                "utilization_memory_percent": s.utilization_memory,
                "temperature_c": s.temperature_c,
                "power_w": s.power_w,
                "power_limit_w": s.power_limit_w,
                "processes": None if s.processes is None else [
                    {"pid": p.pid, "name": p.name, "memory_mib": p.memory_mib} for p in s.processes],
                "torch": None if s.torch is None else {
                    "allocated_mib": s.torch.allocated_mib, "reserved_mib": s.torch.reserved_mib,
                    "peak_allocated_mib": s.torch.peak_allocated_mib},
            })
        gpus.append(entry)
    result = {
        "available": inventory.available,
        "reason": inventory.reason,
        "driver_version": inventory.driver_version,
        "cuda_version": inventory.cuda_version,
        "cuda_visible_devices": inventory.visible_devices,
        "hidden_physical_indices": list(inventory.hidden),
        "notes": list(inventory.notes),
        "timestamp": inventory.timestamp,
        "gpus": gpus,
    }
    if not inventory.available:
        result["note"] = CPU_NOTE
    return result


HEADERS = ("GPU", "phys", "name", "memory used / total", "util", "mem", "temp", "power / limit")
RIGHT = {0, 1, 3, 4, 5, 6, 7}  # numbers line up on the right


def format_table(inventory: Inventory, samples: tuple[GpuSample, ...]) -> str:
    """A fixed-width table, one row per visible GPU and one indented line per process on it."""
    if not inventory.available:
        return f"{inventory.reason}\n{CPU_NOTE}"
    lines = [*_header_lines(inventory), *inventory.notes]
    by_index = {s.index: s for s in samples}
    rows: list[tuple[tuple[str, ...], list[str]]] = []
    for info in inventory.gpus:
        s = by_index.get(info.index)
        name = info.name or "n/a"
        phys = f"{info.physical_index} MIG" if info.is_mig else str(info.physical_index)  # a slice of that GPU
        if info.lost or (s is not None and s.lost):
            rows.append(((str(info.index), phys, name, "LOST: fell off the bus", "", "", "", ""), []))
            continue
        if s is None:
            rows.append(((str(info.index), phys, name, "not sampled", "", "", "", ""), []))
            continue
        rows.append(((
            str(info.index),
            phys,
            name,
            _memory(s),
            _na(s.utilization_gpu, "{}%"),
            _na(s.utilization_memory, "{}%"),
            _na(s.temperature_c, "{} C"),
            _power(s),
        ), _details(s)))
    widths = [max(len(HEADERS[c]), *(len(row[c]) for row, _ in rows)) for c in range(len(HEADERS))]
    lines.append(_row(HEADERS, widths).rstrip())
    for row, details in rows:
        lines.append(_row(row, widths).rstrip())
        lines.extend(f"{'':{widths[0] + 2}}{detail}" for detail in details)
    return "\n".join(lines)


def _header_lines(inventory: Inventory) -> list[str]:
    lines = [f"NVIDIA driver {inventory.driver_version or 'n/a'}, CUDA {inventory.cuda_version or 'n/a'}"]
    if inventory.visible_devices is not None:
        hidden = ", ".join(str(i) for i in inventory.hidden)
        lines.append(f"CUDA_VISIBLE_DEVICES={inventory.visible_devices}: GPU is torch's id (what presets use), "
                     f"phys is nvidia-smi's" + (f"; hidden: physical {hidden}" if hidden else ""))
    return lines


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.rjust(w) if c in RIGHT else cell.ljust(w) for c, (cell, w) in enumerate(zip(cells, widths)))


def _na(value, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _memory(s: GpuSample) -> str:
    used = _na(s.memory_used_mib, "{:,}")
    total = _na(s.memory_total_mib, "{:,}")
    percent = "" if s.memory_percent is None else f" ({s.memory_percent:.0f}%)"
    return f"{used} / {total} MiB{percent}"


def _power(s: GpuSample) -> str:
    if s.power_w is None and s.power_limit_w is None:
        return "n/a"
    return f"{_na(s.power_w, '{:.0f}')} / {_na(s.power_limit_w, '{:.0f}')} W"


def _details(s: GpuSample) -> list[str]:
    details = []
    if s.torch is not None:
        details.append(f"this process (torch): allocated {s.torch.allocated_mib:,.0f} MiB, reserved "
                       f"{s.torch.reserved_mib:,.0f} MiB, peak {s.torch.peak_allocated_mib:,.0f} MiB")
    if s.processes is None:
        details.append("processes: n/a")
    for p in s.processes or ():
        details.append(f"pid {p.pid:<8} {p.name or 'n/a':<20} {_na(p.memory_mib, '{:,} MiB')}")
    return details
