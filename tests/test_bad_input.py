"""Bad input gets a clear one-line answer: exit 2, the file and key named, no traceback, no run directory."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PRESETS, ROOT, cli, make_config
from tui_trainer.cli.main import main
from tui_trainer.config import ConfigError, Machine, load_config, validate_for_machine
from tui_trainer.config.errors import format_value
from tui_trainer.runs import RunStore, load_summary, read_record

CPU_ONLY = Machine((), 2, "no NVIDIA GPU detected")


def run_main(capsys, *argv: str) -> tuple[int, list[str]]:
    """The `tui-trainer` entry point in this process (fast): exit code and the stderr lines."""
    code = main(list(argv))
    return code, capsys.readouterr().err.splitlines()


def refused(capsys, tmp_path: Path, *argv: str) -> list[str]:
    """Run the CLI and assert the bad-input contract; return the error lines."""
    runs = tmp_path / "runs"
    code, lines = run_main(capsys, "run", *argv, "--headless", "--runs-dir", str(runs))
    assert code == 2, lines
    assert lines and all(line.startswith("error: ") for line in lines), lines
    assert not any("Traceback" in line for line in lines)
    assert not runs.exists() or not any(runs.iterdir()), "no run directory is made for bad input"
    return lines


# ------------------------------------------------------------------ presets that are not UTF-8 TOML
@pytest.mark.parametrize("content, why", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "byte 0x89 on line 1, offset 0"),

    ('description = "réglage fin"\n'.encode("latin-1"), "byte 0xe9 on line 1, offset 16"),
])
def test_a_preset_that_is_not_utf8_is_one_line_naming_the_byte(capsys, tmp_path, content, why):
    preset = tmp_path / "p.toml"
    preset.write_bytes(content)
    (line,) = refused(capsys, tmp_path, str(preset))
    assert line == f"error: {preset}: not UTF-8 text ({why}): a preset is a TOML file saved as UTF-8"


def test_a_preset_saved_as_utf16_says_so(capsys, tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_bytes('[train]\nprecision = "fp32"\n'.encode("utf-16"))
    (line,) = refused(capsys, tmp_path, str(preset))
    assert line == (f"error: {preset}: saved as UTF-16 (it starts with a byte-order mark): a preset is a TOML file "
                    "saved as UTF-8")
    preset.write_bytes('[train]\nprecision = "fp32"\n'.encode("utf-8-sig"))
    assert load_config(preset).train.precision == "fp32", "a UTF-8 byte-order mark is accepted"


@pytest.mark.parametrize("text, why", [
    ("a = " + "[" * 900 + "]" * 900, "invalid TOML: nested too deeply"),
    ("a = " + "{b=" * 900 + "1" + "}" * 900, "invalid TOML: nested too deeply"),
    ("[train]\nseed = " + "9" * 5000, "invalid TOML: Exceeds the limit (4300 digits) for integer string conversion"),
    (".".join(["a"] * 3000) + " = 1", "a = {...}: unknown section or key"),
], ids=["arrays", "tables", "digits", "dotted"])
def test_deep_nesting_and_endless_numbers_are_refused_without_a_traceback(capsys, tmp_path, text, why):
    preset = tmp_path / "deep.toml"
    preset.write_text(text)
    (line,) = refused(capsys, tmp_path, str(preset))
    assert line.startswith(f"error: {preset}: {why}"), line
    assert len(line) < 250


def test_a_directory_or_missing_file_as_preset_is_one_line(capsys, tmp_path):
    (tmp_path / "dir.toml").mkdir()
    (line,) = refused(capsys, tmp_path, str(tmp_path / "dir.toml"))
    assert line == f"error: {tmp_path / 'dir.toml'}: cannot read file: Is a directory"
    (line,) = refused(capsys, tmp_path, str(tmp_path / "nope.toml"))
    assert line == f"error: {tmp_path / 'nope.toml'}: cannot read file: No such file or directory"


def test_a_mistyped_preset_name_names_the_closest_and_the_presets_there(capsys, tmp_path):
    from tests.conftest import PRESETS

    names = ", ".join(sorted(p.stem for p in PRESETS.glob("*.toml")))
    (line,) = refused(capsys, tmp_path, "cpu-quik", "--presets-dir", str(PRESETS))
    assert line == f'error: {PRESETS}: no preset named cpu-quik; did you mean "cpu-quick"? (presets there: {names})'
    empty = tmp_path / "no-presets"
    empty.mkdir()
    (line,) = refused(capsys, tmp_path, "cpu-quick", "--presets-dir", str(empty))
    assert line == f"error: {empty}: no preset named cpu-quick (none there: give a file's path, or --presets-dir DIR)"


def test_a_rendezvous_port_in_superscript_digits_is_refused_not_a_traceback(capsys, tmp_path):
    (line,) = refused(capsys, tmp_path, "cpu-quick", "--set", "strategy.rdzv_endpoint=h:²")
    assert line == 'error: --set: strategy.rdzv_endpoint = "h:²": expected "host:port", e.g. "10.0.0.1:29500"'


def test_a_rendezvous_host_with_spaces_or_quotes_is_refused(capsys, tmp_path):
    (line,) = refused(capsys, tmp_path, "cpu-quick", "--set", 'strategy.rdzv_endpoint="a b;c:29500"')
    assert "strategy.rdzv_endpoint" in line and "host:port" in line


# ------------------------------------------------------------------ every number finite and bounded
@pytest.mark.parametrize("key, value", [
    ("optimizer.lr", "nan"), ("optimizer.lr", "inf"), ("optimizer.lr", "1e999"), ("optimizer.weight_decay", "nan"),
    ("model.dropout", "nan"), ("train.grad_clip", "nan"), ("train.grad_clip", "-inf"), ("data.val_fraction", "nan"),
    ("train.threads", "9223372036854775807"), ("train.seed", "9223372036854775807"), ("train.seed", "-1"),
    ("data.split_seed", str(2**32)), ("data.batch_size", "100000000"), ("train.accumulate", "10000000"),
    ("train.epochs", str(2**63 - 1)), ("train.max_steps", "1e3"), ("data.samples", str(10**12)),
    ("strategy.nodes", "100000"), ("strategy.devices", "100000"), ("strategy.devices", "[0, 99999]"),
    ("model.hidden", "[16, 100000000]"), ("model.hidden", "[" + ", ".join(["8"] * 100) + "]"),
    ("optimizer.momentum", "nan"), ("schedule.min_lr_ratio", "inf"), ("data.noise", "inf"),
    ("optimizer.lr", str(10**400)),
])
def test_every_number_is_finite_and_bounded(capsys, tmp_path, key, value):
    (line,) = refused(capsys, tmp_path, "cpu-quick", "--set", f"{key}={value}")
    assert line.startswith(f"error: --set: {key} = "), line
    assert "expected" in line and len(line) < 240, line


def test_the_bounds_are_stated_in_the_message():
    with pytest.raises(ConfigError) as excinfo:
        load_config(PRESETS / "cpu-quick.toml", ["optimizer.lr=nan", "train.seed=9223372036854775807"])
    assert [str(p) for p in excinfo.value.problems] == [
        "--set: optimizer.lr = nan: expected a finite number > 0 and <= 1e+09",
        "--set: train.seed = 9223372036854775807: expected a value >= 0 and <= 4294967295",
    ]


# ------------------------------------------------------------------ values in messages
def test_a_huge_value_gives_a_short_message(capsys, tmp_path):
    preset = tmp_path / "big.toml"
    preset.write_text('[model]\nactivation = "' + "x" * 5_000_000 + '"\n')
    (line,) = refused(capsys, tmp_path, str(preset))
    assert len(line) < 250
    assert f'model.activation = "{"x" * 60}…: expected one of relu' in line


def test_a_newline_in_a_value_or_key_stays_on_one_line(capsys, tmp_path):
    preset = tmp_path / "nl.toml"
    preset.write_text('[model]\nactivation = "relu\\n"\n"evil\\nkey" = 1\n')
    lines = refused(capsys, tmp_path, str(preset))
    assert len(lines) == 2
    assert f'error: {preset}: model.activation = "relu\\n": expected one of relu' in lines[0]
    assert lines[1].startswith(f"error: {preset}: model.evil\\nkey = 1: unknown key in [model]")


def test_format_value_quotes_escapes_and_shortens():
    assert format_value("relu\n") == '"relu\\n"'
    assert format_value('say "hi"\t\x1b[31m') == '"say \\"hi\\"\\t\\u001b[31m"'
    assert format_value("é") == '"é"'
    assert format_value("y" * 100) == '"' + "y" * 60 + "…"
    assert format_value(float("nan")) == "nan" and format_value(True) == "true"
    assert format_value(list(range(1000))).endswith("...]") and len(format_value(list(range(1000)))) < 80
    assert format_value(10**5000).startswith("<an integer of about 50")
    assert format_value([[[[[1]]]]]) == "[[[[...]]]]"


# ------------------------------------------------------------------ batch and processes
def test_a_batch_larger_than_the_training_split_is_refused_with_both_numbers(capsys, tmp_path):
    (line,) = refused(capsys, tmp_path, "cpu-quick", "--set", "data.batch_size=10000")
    assert line == ("error: --set: data.batch_size = 10000: the effective batch 10000 (batch_size x accumulate x "
                    "processes) is larger than the 353 training samples of diabetes; lower data.batch_size")
    with pytest.raises(ConfigError) as excinfo:
        make_config(data={"batch_size": 100}, train={"accumulate": 4})
    assert "effective batch 400" in str(excinfo.value)
    assert str(excinfo.value).endswith("lower data.batch_size or train.accumulate")
    with pytest.raises(ConfigError, match="effective batch 400"):  # 100 x 2 x 2 processes
        make_config(data={"batch_size": 100}, train={"accumulate": 2}, strategy={"name": "ddp", "devices": 2})
    assert make_config(data={"batch_size": 100}, train={"accumulate": 3}).effective_batch == 300


def test_the_cpu_process_limit_states_one_rule_and_keeps_it():
    eight = make_config(strategy={"name": "ddp", "devices": 8})
    nine = make_config(strategy={"name": "ddp", "devices": 9})
    assert validate_for_machine(eight, CPU_ONLY) == []
    (problem,) = validate_for_machine(nine, CPU_ONLY)
    assert str(problem) == ("test.toml: strategy.devices = 9: 9 CPU processes on 2 core(s) would thrash: "
                            "at most 4 per core, so choose at most 8")


# ------------------------------------------------------------------ the runs directory
def test_a_runs_directory_that_cannot_be_written_is_one_line_and_makes_nothing(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, lines = run_main(capsys, "run", "cpu-quick", "--headless", "--runs-dir", str(blocker / "runs"))
    assert code == 2 and lines == [f"error: {blocker / 'runs'}: cannot create runs here: Not a directory; "
                                   "choose another --runs-dir"]
    code, lines = run_main(capsys, "run", "cpu-quick", "--headless", "--runs-dir", "/sys/tui-trainer-runs")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: /sys/tui-trainer-runs: cannot create runs "
                                                                 "here: ")


# ------------------------------------------------------------------ damaged run records
def make_run(runs: Path, name: str, summary: object | None = None, raw: bytes | None = None) -> Path:
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text((PRESETS / "cpu-quick.toml").read_text())
    if raw is not None:
        (run_dir / "summary.json").write_bytes(raw)
    elif summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


GOOD = {"run_id": "x", "name": "cpu-quick", "status": "completed", "step": 10, "total_steps": 10,
        "final_loss": 0.5, "samples_per_s": 1000.0, "wall_s": 3.0, "started_at": "2026-11-28T10:00:00"}
DAMAGED = {
    "20261128-100001-list": ([1], None),
    "20261128-100002-wall": ({**GOOD, "wall_s": "abc"}, None),
    "20261128-100003-rate": ({**GOOD, "samples_per_s": None}, None),
    "20261128-100004-status": ({**GOOD, "status": ["completed"]}, None),
    "20261128-100005-binary": (None, b"\xff\xfe\x00garbage"),
    "20261128-100006-empty": (None, b""),
    "20261128-100007-deep": (None, b"[" * 100_000),
    "20261128-100008-huge": ({**GOOD, "step": 10**30, "final_loss": "nan", "pid": "me"}, None),
    "20261128-100009-none": (None, None),
}


def test_runs_lists_every_damaged_run_with_a_note_and_the_good_ones(capsys, tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "20261128-100000-good", GOOD)
    for name, (summary, raw) in DAMAGED.items():
        make_run(runs, name, summary, raw)
    (runs / "not-a-run").mkdir()
    code = main(["runs", "--runs-dir", str(runs)])
    out = capsys.readouterr()
    assert code == 0 and "Traceback" not in out.err
    assert all(name in out.out for name in DAMAGED) and "20261128-100000-good" in out.out
    assert "not-a-run" not in out.out
    assert "  damaged: summary.json: unreadable wall_s = \"abc\"" in out.out
    assert "  damaged: summary.json holds list, not an object" in out.out
    assert "  damaged: summary.json is not valid JSON (empty)" in out.out
    assert "  damaged: no summary.json" in out.out
    code = main(["runs", "--json", "--runs-dir", str(runs)])
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0 and len(listed) == 10
    assert listed["20261128-100000-good"]["note"] == "" and listed["20261128-100000-good"]["status"] == "completed"
    assert listed["20261128-100002-wall"]["wall_s"] is None and listed["20261128-100002-wall"]["status"] == "completed"
    assert listed["20261128-100004-status"]["status"] == "unknown"
    assert listed["20261128-100008-huge"]["note"].startswith("summary.json: unreadable step = 1000000000")
    assert listed["20261128-100008-huge"]["note"].endswith(', final_loss = "nan"')


def test_load_summary_returns_a_typed_frozen_record(tmp_path):
    run_dir = make_run(tmp_path, "r", {**GOOD, "notes": ["a", "b"], "samples_per_s": 7, "pid": 12})
    read = load_summary(run_dir)
    assert read.summary.samples_per_s == 7.0 and isinstance(read.summary.samples_per_s, float)
    assert read.summary.notes == ("a", "b") and read.pid == 12 and read.damage == "" and read.found
    with pytest.raises(AttributeError):
        read.summary.status = "x"
    assert read_record(tmp_path / "absent") is None


def test_resume_on_a_damaged_summary_is_one_line_not_a_traceback(capsys, tmp_path):
    runs = tmp_path / "runs"
    for name, (summary, raw) in DAMAGED.items():
        make_run(runs, name, summary, raw)
        code, lines = run_main(capsys, "resume", name, "--headless", "--runs-dir", str(runs))
        assert code == 2 and len(lines) == 1, (name, lines)
        assert lines[0].startswith(f"error: {runs / name}: "), lines


# ------------------------------------------------------------------ multi-node: the line for the other nodes
def test_the_line_for_other_nodes_keeps_the_overrides_and_cannot_run_a_command(tmp_path):
    from tui_trainer.runs.launcher import DistributedRunner

    preset = tmp_path / "$(touch PWNED).toml"
    preset.write_text((PRESETS / "multinode-ddp.toml").read_text())
    config = load_config(preset, ["train.max_steps=7", "model.hidden=[8, 4]", "data.split_seed=3",
                                  "strategy.rdzv_endpoint=10.0.0.1:29511"])
    runner = DistributedRunner(config, RunStore(tmp_path / "runs"), run_dir=tmp_path / "runs" / "r")
    notes = runner.launch_notes(runner.command())
    (line,) = [n.split(" run: ", 1)[1] for n in notes if n.startswith("on node 1 run: ")]
    # Paste it into a shell whose `tui-trainer` prints its arguments: nothing else may run.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tui-trainer").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    (bin_dir / "tui-trainer").chmod(0o755)
    out = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, check=True).stdout
    assert not (tmp_path / "PWNED").exists(), "pasting the line ran a command"
    argv = out.splitlines()
    assert argv == shlex.split(line)[1:]
    assert argv[:2] == ["run", str(preset)]
    assert argv[-5:] == ["--headless", "--node-rank", "1", "--rdzv-endpoint", "10.0.0.1:29511"]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert sorted(sets) == ["data.split_seed=3", "model.hidden=[8, 4]", "train.max_steps=7"]
    other = load_config(argv[1], sets + [f"strategy.rdzv_endpoint={argv[-1]}"])
    assert other == config, "node 1 runs the very config node 0 runs"


# ------------------------------------------------------------------ names that could leave their directory
@pytest.mark.parametrize("name", ["../up", "/etc/passwd", "a/b", "..", ".hidden", "x\n", "a\\b", "", "a" * 101])
def test_a_preset_name_cannot_escape_the_presets_directory(tmp_path, name):
    from tui_trainer.config.names import inside, is_preset_name

    assert not is_preset_name(name)
    if name and len(name) < 100:
        with pytest.raises(ValueError):
            inside(tmp_path, name, ".toml")


def test_a_run_id_cannot_escape_the_runs_directory(capsys, tmp_path):
    runs = tmp_path / "store" / "runs"
    runs.mkdir(parents=True)
    make_run(tmp_path / "store", "outside", {**GOOD, "status": "stopped"})
    code, lines = run_main(capsys, "resume", "../outside/..", "--headless", "--runs-dir", str(runs))
    assert code == 2 and len(lines) == 1 and "no such run" in lines[0]
    code, lines = run_main(capsys, "resume", "missing-id", "--headless", "--runs-dir", str(runs))
    assert code == 2 and lines == [f"error: {runs / 'missing-id'}: no such run (give a run directory, or a run id "
                                   "listed by tui-trainer runs)"]


def test_resume_of_a_directory_that_is_not_a_run_is_one_line(capsys, tmp_path):
    code, lines = run_main(capsys, "resume", str(tmp_path), "--headless")
    assert code == 2 and lines == [f"error: {tmp_path}: not a run directory (no config.toml)"]


def test_resume_with_a_binary_config_names_the_file(capsys, tmp_path):
    run_dir = make_run(tmp_path, "r", {**GOOD, "status": "stopped"})
    (run_dir / "config.toml").write_bytes(b"\x00\xff\x10binary")
    (run_dir / "checkpoint.pt").write_bytes(b"")
    code, lines = run_main(capsys, "resume", str(run_dir), "--headless")
    assert code == 2 and lines == [f"error: {run_dir / 'config.toml'}: not UTF-8 text (byte 0xff on line 1, offset 1): "
                                   "a preset is a TOML file saved as UTF-8"]


# ------------------------------------------------------------------ a user's own parts that fail
@pytest.mark.parametrize("section, path, message", [
    ("data", "tests.user_parts:raising_dataset",
     'data.dataset = "tests.user_parts:raising_dataset" raised ValueError: cannot find my.csv'),
    ("data", "tests.user_parts:exiting_dataset", 'data.dataset = "tests.user_parts:exiting_dataset" raised SystemExit: 3'),
    ("data", "tests.user_parts:ragged_dataset",
     'data.dataset = "tests.user_parts:ragged_dataset" returned x of shape (50, 3) and y of shape (40,); expected x '
     "(samples, features) and y (samples,) with the same number of samples (2 or more)"),
    ("data", "tests.no_such_module:data",
     'data.dataset = "tests.no_such_module:data": cannot import tests.no_such_module: ModuleNotFoundError: '
     "No module named 'tests.no_such_module'"),
    ("data", "tests.user_parts:no_such_name", 'data.dataset = "tests.user_parts:no_such_name": module tests.user_parts '
     "has no no_such_name"),
    ("data", "tests.user_parts:not_callable", 'data.dataset = "tests.user_parts:not_callable": not_callable is a int, '
     "not a callable"),
    ("model", "tests.user_parts:broken_model",
     'model.name = "tests.user_parts:broken_model" raised RuntimeError: this model cannot be built'),
    ("model", "tests.user_parts:not_a_model",
     'model.name = "tests.user_parts:not_a_model" returned a str; expected a torch nn.Module'),
    ("model", "tests.user_parts:wide_model", 'model.name = "tests.user_parts:wide_model" returned a model whose output '
     "for 2 samples has shape (2, 7); expected (2, 1)"),
], ids=lambda v: v.rsplit(":", 1)[-1][:20] if isinstance(v, str) else v)
def test_a_user_callable_that_fails_is_named_with_its_error(tmp_path, section, path, message):
    from tests.conftest import run_to_end

    sections = {"data": {"dataset": path}} if section == "data" else {"model": {"name": path}}
    summary, run_dir, _ = run_to_end(make_config(train={"max_steps": 2}, **sections), tmp_path / "runs")
    assert summary.status == "failed"
    assert summary.error == f"UserCodeError: {message}"


# ------------------------------------------------------------------ damaged checkpoints and metrics
@pytest.fixture
def stopped_run(tmp_path) -> Path:
    """A real run with a checkpoint, recorded as stopped (so that it can be resumed)."""
    from tests.conftest import run_to_end

    summary, run_dir, _ = run_to_end(make_config(train={"max_steps": 3}), tmp_path / "runs")
    assert summary.status == "completed"
    data = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**data, "status": "stopped"}))
    return run_dir


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "code", "not-ours"])
def test_resume_of_a_damaged_checkpoint_is_one_line_and_keeps_the_record(capsys, stopped_run, damage, monkeypatch):
    import torch

    monkeypatch.chdir(stopped_run)
    checkpoint = stopped_run / "checkpoint.pt"
    whole = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(whole[:len(whole) // 2])
    elif damage == "garbage":
        checkpoint.write_bytes(os.urandom(4096))
    elif damage == "empty":
        checkpoint.write_bytes(b"")
    elif damage == "code":
        torch.save({"model": {}, "optimizer": {}, "rng": {}, "step": 1, "x": _Payload()}, checkpoint)
    else:
        torch.save({"weights": torch.zeros(3)}, checkpoint)
    record = (stopped_run / "summary.json").read_bytes()
    metrics = (stopped_run / "metrics.jsonl").read_bytes()
    code, lines = run_main(capsys, "resume", str(stopped_run), "--headless")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {checkpoint}: "), lines
    assert {"truncated": "damaged or truncated", "garbage": "damaged or truncated", "empty": "damaged or truncated",
            "code": "refused: it holds pickled objects other than tensors", "not-ours": "not a tui-trainer checkpoint"
            }[damage] in lines[0]
    assert not (stopped_run / "PWNED").exists(), "loading a checkpoint never runs code"
    assert (stopped_run / "summary.json").read_bytes() == record, "a refused resume leaves the run's record alone"
    assert (stopped_run / "metrics.jsonl").read_bytes() == metrics


def test_damaged_metrics_lines_are_skipped_by_the_curves_and_on_resume(stopped_run):
    from tui_trainer.runs.metrics import read_curves, truncate_after

    path = stopped_run / "metrics.jsonl"
    good = read_curves(path)
    with open(path, "ab") as f:
        f.write(b'[1]\n{"step": "x", "loss": 1}\n{"step": 2, "loss": "nan"}\n\xff\xfe garbage\n'
                + b"[" * 50_000 + b"\n" + b'{"loss": 3}\n{"step": 1, "val_loss": null}\n')
    assert read_curves(path) == good
    truncate_after(path, 10**6)
    assert read_curves(path) == good


# ------------------------------------------------------------------ where user modules come from
EVILMOD = '''
import os
import numpy as np
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imported.txt"), "a") as f:
    f.write(f"{os.getpid()}\\n")


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    return x, x.sum(axis=1)
'''


def test_user_modules_resolve_the_same_in_one_process_and_in_ddp_workers(tmp_path):
    """A module in the current directory is user code only when the launching process has that directory on its
    path (`python -m` does; `python -P` and the console script do not): the ddp workers follow the launcher."""
    (tmp_path / "evilmod.py").write_text(EVILMOD)
    common = ["run", str(PRESETS / "cpu-quick.toml"), "--headless", "--set", "data.dataset=evilmod:data",
              "--set", "train.max_steps=3", "--set", "data.batch_size=8"]
    ddp = ["--set", "strategy.name=ddp", "--set", "strategy.devices=2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*flags: str, extra=()) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *flags, "-m", "tui_trainer", *common, *extra,
                               "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=300)

    for extra in ((), ddp):  # without the current directory on the launcher's path: neither imports it
        result = run("-P", extra=extra)
        assert result.returncode == 1, result.stdout + result.stderr
        assert 'data.dataset = "evilmod:data": cannot import evilmod: ModuleNotFoundError' in result.stdout
    assert not (tmp_path / "imported.txt").exists()
    for extra in ((), ddp):  # with it (python -m): both do
        result = run(extra=extra)
        assert result.returncode == 0, result.stdout + result.stderr
    assert len((tmp_path / "imported.txt").read_text().split()) == 3, "the thread run and both ddp ranks"


# ------------------------------------------------------------------ a corpus of realistic mistakes
BAD_PRESETS = ROOT / "tests" / "data" / "bad_presets"


@pytest.mark.parametrize("preset", sorted(p.name for p in BAD_PRESETS.glob("*.toml")))
def test_each_realistic_mistake_gets_its_exact_message(capsys, tmp_path, monkeypatch, preset):
    """What `tui-trainer run NAME.toml --headless` prints in tests/data/bad_presets/, as NAME.expected holds."""
    monkeypatch.chdir(BAD_PRESETS)
    expected = (BAD_PRESETS / preset).with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    assert refused(capsys, tmp_path, preset) == expected


def test_the_corpus_covers_the_common_mistakes():
    assert len(list(BAD_PRESETS.glob("*.toml"))) >= 15
    assert all(p.with_suffix(".expected").exists() for p in BAD_PRESETS.glob("*.toml"))


def test_the_readme_states_every_bound_the_schema_enforces():
    from dataclasses import fields

    from tui_trainer.config.schema import SECTIONS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def shown(v) -> str:
        return f"{v:g}" if isinstance(v, float) else (f"{v:_}" if v >= 10000 else str(v))

    for section, cls in SECTIONS.items():
        for f in fields(cls):
            m = f.metadata
            if m["kind"] in ("int", "float", "int_list"):
                low = f"> {shown(m['above'])}" if m["above"] is not None else shown(m["min"])
                key = f"`{section}.{f.name}`" + (" (each of at most 64 entries)" if m["kind"] == "int_list" else "")
                assert f"| {key} | {low} | {shown(m['max'])} |" in readme, key


def test_a_batch_larger_than_user_data_fails_the_run_with_both_numbers(tmp_path):
    from tests.conftest import run_to_end

    config = make_config(data={"dataset": "tests.user_parts:moons_arrays", "batch_size": 500},
                         train={"max_steps": 2})
    summary, _, _ = run_to_end(config, tmp_path / "runs")
    assert summary.status == "failed"
    assert summary.error == ("ValueError: the effective batch 500 (batch_size x accumulate x processes) is larger than "
                             "the 160 training samples of tests.user_parts:moons_arrays; lower data.batch_size")
