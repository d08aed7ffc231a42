"""Fuzzed bad input: random and mutated presets and `--set` values, to the loader and to the CLI.

Every case ends in a valid config or in exit 2 with one line per problem naming the file (or `--set`)
and the key: never a traceback, never a run directory. 2,050 cases in all (see CASES), most
through `tui_trainer.cli.main.main` in this process for speed, a handful through the real command.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis.errors import InvalidArgument
from hypothesis import strategies as st

from tests.conftest import PRESETS, cli
from tui_trainer.cli.main import main
from tui_trainer.config import ConfigError, load_config, validate_for_machine
from tui_trainer.config.schema import SECTIONS

# max_examples per property; the README's Reliability table quotes their sum.
CASES = {"presets_loader": 600, "presets_cli": 550, "mutated_bytes_cli": 250, "set_values_cli": 650}
FUZZ = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))

KNOWN_KEYS = [(section, f.name) for section, cls in SECTIONS.items() for f in cls.__dataclass_fields__.values()]
ODD_STRINGS = ["fp17", "relu\n", "ddp", "auto", "h:²", "x" * 5000, "", " ", "\x1b[31mred", "../../etc/passwd",
               "$(touch PWNED)", "diabetes", "os:system", "this:s", "a:b:c", "1e999", "nan", "-0", "０", "\u202e",
               "10.0.0.1:29500", "[0, 1]", "true", "💥" * 50]
ODD_NUMBERS = [0, -1, 1, 2**31, 2**32, 2**63 - 1, -(2**63), 10**18, float("nan"), float("inf"), float("-inf"),
               1e308, -0.0, 5e-324, 0.5, 0.95, 0.9000001, 1e9, 1e10]

safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64), st.floats(), st.booleans(), safe_text,
    st.sampled_from(ODD_STRINGS), st.sampled_from(ODD_NUMBERS),
)
values = st.one_of(scalars, st.lists(scalars, max_size=6), st.lists(st.integers(-5, 70_000), max_size=80),
                   st.dictionaries(safe_text, scalars, max_size=3))
keys = st.one_of(st.sampled_from([name for _, name in KNOWN_KEYS]), safe_text.filter(bool),
                 st.sampled_from(["epochz", "batchsize", "lr ", "precison", "Devices"]))
section_names = st.one_of(st.sampled_from(list(SECTIONS)), st.sampled_from(["trian", "Data", "description", "x"]),
                          safe_text.filter(bool))
tables = st.dictionaries(keys, values, min_size=1, max_size=6)
documents = st.dictionaries(section_names, st.one_of(tables, values), min_size=1, max_size=5)


def deep(kind: str, depth: int) -> str:
    if kind == "arrays":
        return "a = " + "[" * depth + "]" * depth
    if kind == "tables":
        return "a = " + "{b = " * depth + "1" + "}" * depth
    return ".".join(["k"] * depth) + " = 1"


@st.composite
def preset_texts(draw) -> bytes:
    """A preset file's bytes: generated TOML, mutated TOML, deep nesting, other encodings, or raw bytes."""
    kind = draw(st.sampled_from(["toml", "toml", "toml", "mutated", "mutated", "deep", "encoded", "binary", "empty"]))
    if kind == "deep":
        return deep(draw(st.sampled_from(["arrays", "tables", "dotted"])), draw(st.integers(1, 1500))).encode()
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"   ", b"# only a comment\n", b"\xef\xbb\xbf"]))
    try:
        text = tomli_w.dumps(draw(documents))
    except (TypeError, ValueError):  # a value TOML cannot hold
        text = "[train]\nprecision = \"fp17\"\n"
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            edit = draw(st.sampled_from(["delete", "insert", "duplicate"]))
            if edit == "delete":
                text = text[:at] + text[at + draw(st.integers(1, 10)):]
            elif edit == "insert":
                text = text[:at] + draw(st.sampled_from(list('[]{}="\n.#\\,\'') + ["é", "\x00", "nan", "1e999",
                                                                                   "\u2028"])) + text[at:]
            else:
                text = text + text[:at]
    if kind == "encoded":
        return text.encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"])),
                           errors="replace")
    return text.encode("utf-8", errors="surrogatepass")


@lru_cache(maxsize=1)
def this_machine():
    from tui_trainer.hardware.machine import detect_machine

    return detect_machine()


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def loader_verdict(path: Path, overrides: list[str]) -> list[str] | None:
    """The problem lines the loader and the machine check give (None: a valid, runnable config).

    The loader may only ever raise ConfigError; every problem is one short line naming its source.
    """
    try:
        config = load_config(path, overrides)
    except ConfigError as exc:
        lines = [str(p) for p in exc.problems]
    else:
        lines = [str(p) for p in validate_for_machine(config, this_machine())]
    with contextlib.suppress(InvalidArgument):  # outside a property (the real-command cases) there are no events
        event("refused" if lines else "valid")
    for line in lines:
        assert "\n" not in line and "\r" not in line and len(line) < 400 + len(str(path)), line
        assert line.startswith((f"{path}: ", "--set: ")), line
    return lines or None


def run_cli(argv: list[str]) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue().splitlines()


def assert_refused(workdir: Path, argv: list[str], expected: list[str]) -> None:
    """The CLI's answer to bad input: exit 2, exactly the loader's lines, no traceback, no run directory."""
    runs = workdir / "runs"
    code, lines = run_cli([*argv, "--headless", "--runs-dir", str(runs)])
    assert code == 2, lines
    assert lines == [f"error: {line}" for line in expected]
    assert not runs.exists() or not any(runs.iterdir()), "a run directory was made for bad input"


@settings(max_examples=CASES["presets_loader"], **FUZZ)
@given(content=preset_texts())
def test_fuzzed_presets_give_a_config_or_one_line_per_problem(workdir, content):
    path = workdir / "loader.toml"
    path.write_bytes(content)
    loader_verdict(path, [])


@settings(max_examples=CASES["presets_cli"], **FUZZ)
@given(content=preset_texts())
def test_fuzzed_presets_exit_2_through_the_cli_with_the_loader_lines(workdir, content):
    path = workdir / "cli.toml"
    path.write_bytes(content)
    expected = loader_verdict(path, [])
    if expected is not None:  # a bad preset (a valid one would start a run: not this test's business)
        assert_refused(workdir, ["run", str(path)], expected)


@settings(max_examples=CASES["mutated_bytes_cli"], **FUZZ)
@given(at=st.integers(0, 10_000), count=st.integers(1, 8), junk=st.binary(min_size=1, max_size=16),
       preset=st.sampled_from(sorted(PRESETS.glob("*.toml"))))
def test_shipped_presets_with_bytes_flipped_exit_2_or_run_never_crash(workdir, at, count, junk, preset):
    data = bytearray(preset.read_bytes())
    at %= len(data)
    data[at:at + count] = junk
    path = workdir / "flipped.toml"
    path.write_bytes(bytes(data))
    expected = loader_verdict(path, [])
    if expected is not None:
        assert_refused(workdir, ["run", str(path)], expected)


set_keys = st.one_of(st.sampled_from([f"{s}.{k}" for s, k in KNOWN_KEYS]),
                     st.sampled_from(["train", "train.", ".lr", "trian.epochs", "train.epochs.x", "=", "a.b.c.d",
                                      "description.x", "strategy.rdzv_endpoint "]),
                     safe_text.filter(lambda t: "=" not in t))
set_values = st.one_of(
    safe_text.filter(lambda t: "\x00" not in t), st.sampled_from(ODD_STRINGS),
    st.sampled_from([repr(n).lower() if isinstance(n, float) else str(n) for n in ODD_NUMBERS]),
    st.sampled_from(["[" * 1000 + "]" * 1000, "{a=1", "[1,", '"unterminated', "9" * 5000, "0x" + "f" * 40,
                     "h:²", "[0, 0]", "[-1]", "1_000", "2026-11-28", "{}", "[[1]]", "inf", "-nan", "1e-400"]),
)


@settings(max_examples=CASES["set_values_cli"], **FUZZ)
@given(key=set_keys, value=set_values, second=st.none() | st.tuples(set_keys, set_values))
def test_fuzzed_set_values_exit_2_with_one_line_naming_the_key(workdir, key, value, second):
    overrides = [f"{key}={value}"] + ([f"{second[0]}={second[1]}"] if second else [])
    if any("\x00" in o for o in overrides):
        return  # a command line cannot hold NUL
    preset = PRESETS / "cpu-quick.toml"
    expected = loader_verdict(preset, overrides)
    if expected is None:
        return  # a valid override (train.seed=5): it would run
    assert_refused(workdir, ["run", str(preset), *[f"--set={o}" for o in overrides]], expected)


# A handful through the real command: the process's own stderr, exit code and run store.
REAL = [
    (b"\xff\xfe[\x00t\x00]\x00", []),
    ("a = " + "[" * 2000 + "]" * 2000, []),
    ('[model]\nactivation = "relu\\n"\n[optimizer]\nlr = nan\n', []),
    ('[train]\nprecision = "fp17"\n', ["strategy.rdzv_endpoint=h:²", "train.seed=9223372036854775807"]),
    ("", ["data.batch_size=" + "9" * 5000]),
]


@pytest.mark.parametrize("content, overrides", REAL, ids=["utf16", "deep", "newline-nan", "set", "digits"])
def test_bad_input_through_the_real_command_is_exit_2_and_one_line_each(tmp_path, content, overrides):
    path = tmp_path / "bad.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    expected = loader_verdict(path, overrides)
    result = cli("run", str(path), *[a for o in overrides for a in ("--set", o)], "--headless",
                 "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {line}" for line in expected]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_a_directory_an_unreadable_file_and_an_empty_file_as_preset(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_config(empty).name == "empty", "an empty preset is the defaults"
    for path, why in [(tmp_path, "Is a directory"), (Path("/proc/self/mem"), "Input/output error")]:
        code, lines = run_cli(["run", str(path), "--headless", "--runs-dir", str(tmp_path / "runs")])
        assert code == 2 and lines == [f"error: {path}: cannot read file: {why}"]
    if os.geteuid() != 0:
        locked = tmp_path / "locked.toml"
        locked.write_text("")
        locked.chmod(0)
        code, lines = run_cli(["run", str(locked), "--headless", "--runs-dir", str(tmp_path / "runs")])
        assert code == 2 and lines == [f"error: {locked}: cannot read file: Permission denied"]
