"""Presets in, validated RunConfig out. Knows nothing of torch or Textual."""

from tui_trainer.config.errors import ConfigError, ConfigProblem
from tui_trainer.config.machine import Machine, VisibleGpu
from tui_trainer.config.presets import (
    PresetEntry,
    discover_presets,
    load_config,
    parse_config,
    save_preset,
    with_overrides,
)
from tui_trainer.config.schema import PRECISIONS, STRATEGIES, RunConfig, to_dict
from tui_trainer.config.validate import ensure_runnable, gpu_ids, uses_gpu, validate_for_machine

__all__ = [
    "ConfigError", "ConfigProblem", "Machine", "VisibleGpu", "PresetEntry", "discover_presets", "load_config",
    "parse_config", "save_preset", "with_overrides", "PRECISIONS", "STRATEGIES", "RunConfig", "to_dict",
    "ensure_runnable", "gpu_ids", "uses_gpu", "validate_for_machine",
]
