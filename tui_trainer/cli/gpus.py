"""Placeholder until the hardware layer lands: replaced by the NVML-backed command."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--watch", action="store_true")


def run(args) -> int:
    from tui_trainer.hardware.machine import detect_machine

    print(detect_machine().gpu_note)
    return 0
