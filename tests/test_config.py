"""Presets: parsing, validation messages a user can act on, overrides, machine checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PRESETS, make_config
from tui_trainer.config import (
    ConfigError,
    Machine,
    VisibleGpu,
    discover_presets,
    load_config,
    save_preset,
    validate_for_machine,
)

CPU_ONLY = Machine((), 2, "no NVIDIA GPU detected: NVML library not found")
TWO_AMPERE = Machine((VisibleGpu(0, "A100", (8, 0), 40960), VisibleGpu(1, "A100", (8, 0), 40960)), 16, "")
ONE_TURING = Machine((VisibleGpu(0, "T4", (7, 5), 15360),), 8, "")


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def messages(excinfo) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def test_every_shipped_preset_parses_and_is_documented():
    names = {p.stem for p in PRESETS.glob("*.toml")}
    assert {"cpu-quick", "digits-classify", "single-gpu-bf16", "dp-fp16", "ddp-bf16-accum4",
            "model-parallel-2gpu", "multinode-ddp", "synthetic-large"} <= names
    for path in PRESETS.glob("*.toml"):
        config = load_config(path)
        assert config.description, f"{path.name} has no description"
        assert path.read_text().lstrip().startswith("#"), f"{path.name} has no explanatory comment"


def test_cpu_quick_is_the_documented_default():
    config = load_config(PRESETS / "cpu-quick.toml")
    assert (config.data.dataset, config.strategy.name, config.train.precision) == ("diabetes", "cpu", "fp32")
    assert validate_for_machine(config, CPU_ONLY) == []


def test_bad_precision_names_file_key_value_and_choices(tmp_path):
    path = write(tmp_path, '[train]\nprecision = "fp17"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert messages(excinfo) == [f'{path}: train.precision = "fp17": expected one of fp32, tf32, fp16-mixed, '
                                 'bf16-mixed, bf16-true']


def test_every_problem_is_reported_at_once_one_line_each(tmp_path):
    path = write(tmp_path, '[data]\nbatch_size = 0\ndataset = "mnist"\n[optimizer]\nlr = -1\nname = "adamm"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    lines = messages(excinfo)
    assert len(lines) == 4
    assert all("\n" not in line and line.startswith(str(path)) for line in lines)
    assert any("data.batch_size = 0: expected a value >= 1" in line for line in lines)
    assert any('data.dataset = "mnist": expected one of diabetes' in line for line in lines)
    assert any('optimizer.name = "adamm"' in line and 'did you mean "adam"' in line for line in lines)


def test_unknown_keys_are_errors_with_did_you_mean(tmp_path):
    path = write(tmp_path, "[train]\nepoch = 3\n[stratgy]\nname = \"cpu\"\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    text = "\n".join(messages(excinfo))
    assert 'train.epoch = 3: unknown key in [train]; did you mean "epochs"?' in text
    assert 'stratgy' in text and 'did you mean "strategy"?' in text


def test_invalid_toml_gives_line_and_column(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 3\nprecision = fp32\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    (line,) = messages(excinfo)
    assert line.startswith(f"{path}: invalid TOML") and "line 3" in line and "column" in line


def test_set_overrides_read_toml_values_and_bare_strings():
    config = load_config(PRESETS / "cpu-quick.toml",
                         ["model.hidden=[64,64]", "train.precision=bf16-mixed", "optimizer.lr=0.5",
                          "data.dataset=digits"])
    assert config.model.hidden == (64, 64)
    assert config.train.precision == "bf16-mixed"
    assert config.optimizer.lr == 0.5
    assert config.data.dataset == "digits"


def test_bad_override_is_blamed_on_the_command_line():
    with pytest.raises(ConfigError) as excinfo:
        load_config(PRESETS / "cpu-quick.toml", ["train.accumulate=0", "train.precison=fp32"])
    lines = messages(excinfo)
    assert "--set: train.accumulate = 0: expected a value >= 1 and <= 65536" in lines
    assert any(line.startswith("--set: train.precison") and 'did you mean "precision"' in line for line in lines)


def test_dataparallel_on_one_device_points_to_single_and_to_cpu():
    with pytest.raises(ConfigError) as excinfo:
        load_config(PRESETS / "cpu-quick.toml", ["strategy.name=dp"])
    assert messages(excinfo) == [f'{PRESETS / "cpu-quick.toml"}: strategy.devices = 1: strategy "dp" needs at least '
                                 '2 GPUs; for one GPU choose "single", without a GPU "cpu"']


def test_an_override_of_a_misspelt_section_is_blamed_on_the_command_line_not_the_preset():
    with pytest.raises(ConfigError) as excinfo:
        load_config(PRESETS / "cpu-quick.toml", ["optim.lr=0.01"])
    assert messages(excinfo) == ['--set: optim.lr = 0.01: unknown section; did you mean "optimizer"? '
                                 '(allowed: data, model, optimizer, schedule, train, strategy, logging)']


def test_fp16_and_gpu_strategies_are_refused_on_a_cpu_machine_with_what_to_choose():
    config = make_config(train={"precision": "fp16-mixed"}, strategy={"name": "single"})
    lines = [str(p) for p in validate_for_machine(config, CPU_ONLY)]
    assert any('strategy.name = "single"' in l and "NVML library not found" in l and 'choose "cpu"' in l
               for l in lines)
    assert any('train.precision = "fp16-mixed"' in l and "bf16-mixed or fp32" in l for l in lines)


def test_ddp_with_a_process_count_runs_on_cpu_processes():
    config = make_config(strategy={"name": "ddp", "devices": 2}, train={"precision": "bf16-mixed"})
    assert validate_for_machine(config, CPU_ONLY) == []


def test_device_ids_that_do_not_exist_name_the_ids_the_machine_has():
    config = make_config(strategy={"name": "dp", "devices": [0, 3]})
    (problem,) = validate_for_machine(config, TWO_AMPERE)
    assert str(problem) == ("test.toml: strategy.devices = [0, 3]: GPU id(s) 3 do not exist; "
                            "this machine has 2 GPU(s), ids 0, 1")


def test_bf16_is_refused_on_a_gpu_older_than_ampere():
    config = make_config(strategy={"name": "single", "devices": [0]}, train={"precision": "bf16-mixed"})
    (problem,) = validate_for_machine(config, ONE_TURING)
    assert "T4" in str(problem) and "7.5" in str(problem) and "fp16-mixed" in str(problem)


def test_multinode_needs_a_rendezvous_endpoint():
    with pytest.raises(ConfigError) as excinfo:
        make_config(strategy={"name": "ddp", "devices": 2, "nodes": 2})
    assert "rdzv_endpoint" in str(excinfo.value) and "host:port" in str(excinfo.value)


def test_presets_listing_keeps_invalid_presets_with_their_error(tmp_path):
    write(tmp_path, 'description = "ok"\n', "good.toml")
    write(tmp_path, 'description = "bad"\n[train]\nprecision = "fp17"\n', "bad.toml")
    write(tmp_path, 'description = "broken\n', "broken.toml")
    entries = {e.name: e for e in discover_presets(tmp_path, CPU_ONLY)}
    assert entries["good"].valid
    assert not entries["bad"].valid and entries["bad"].description == "bad"
    assert "fp17" in entries["bad"].errors[0]
    assert "invalid TOML" in entries["broken"].errors[0]


def test_saved_preset_loads_back_to_the_same_config(tmp_path):
    config = load_config(PRESETS / "digits-classify.toml", ["train.accumulate=4"])
    path = save_preset(config, tmp_path / "mine.toml")
    again = load_config(path)
    assert again.data == config.data and again.train == config.train and again.model == config.model
    assert again.effective_batch == 64 * 4


def test_presets_are_listed_by_name_so_a_saved_variant_follows_its_original(tmp_path):
    from tui_trainer.config import Machine
    from tui_trainer.config.presets import discover_presets

    for name in ("cpu-quick", "cpu-quick-swept", "b-other"):
        (tmp_path / f"{name}.toml").write_text('[strategy]\nname = "cpu"\n')
    names = [e.name for e in discover_presets(tmp_path, Machine())]
    assert names == ["b-other", "cpu-quick", "cpu-quick-swept"], "by file name '-' (0x2d) sorted before '.'"
