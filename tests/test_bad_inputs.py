"""Bad input, as a new user gives it: one-line errors naming the argument, nothing written, no unsafe load.

Three parts: the Python API (``pytest.raises(..., match=...)`` on one line), the command line (exit
2, one ``error:`` line, no "Traceback", no file or folder left; a few cases in a subprocess exactly
as a user runs them), and property-based fuzzing (hypothesis) of the config loader, the CoNLL-U
reader and the checkpoint loader with random, truncated and mutated bytes: only the documented
exceptions, and the folder holds nothing new afterwards.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qk_lstm_qiskit import FeatureMap, QKLSTM, QKLSTMCell, QLSTM, QuantumKernel, cli, load_config, load_tagger
from qk_lstm_qiskit.checkpoint import LAST_FILE, MODEL_FILE, load_checkpoint, save_checkpoint
from qk_lstm_qiskit.config import RunConfig
from qk_lstm_qiskit.data.conllu import read_conllu
from qk_lstm_qiskit.rundir import check_out_dir, check_out_file
from qk_lstm_qiskit.training.experiment import run_training

from _assertions import raises_one_line

QK_LSTM = Path(sys.executable).with_name("qk-lstm")
FUZZ = settings(  # examples per fuzz target; the folder fixture is shared by the examples on purpose
    max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished 2-epoch run of the paper's QK-LSTM (Adam): model.pt, last.pt, metrics."""
    out = tmp_path_factory.mktemp("trained") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_training(load_config(overrides={"train": {"epochs": 2}}), out, progress=False)
    return out


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (``None`` for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# ----------------------------------------------------------------------------------------------- API
def _model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return QKLSTM(3, 2, batch_first=True)


def _kernel(reps=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return QuantumKernel(FeatureMap(2, reps=reps))


X = torch.randn(2, 5, 3)
ZERO = torch.zeros(1, 2, 2)
API_CASES = [
    # (id, call, exception, message)
    ("lstm-float64", lambda: _model()(X.double()), TypeError, r"QKLSTM: expected input of dtype float32, got float64"),
    ("lstm-float16", lambda: _model()(X.half()), TypeError, r"QKLSTM: expected input of dtype float32, got float16"),
    ("lstm-int", lambda: _model()(X.long()), TypeError, r"QKLSTM: expected input of dtype float32, got int64"),
    ("lstm-complex", lambda: _model()(X.to(torch.complex64)), TypeError, r"expected input of dtype float32, got complex64"),
    ("lstm-list", lambda: _model()([[1.0, 2.0, 3.0]]), TypeError, r"QKLSTM: expected input to be a torch.Tensor, got list"),
    ("lstm-nan-input", lambda: _model()(X.clone().fill_(float("nan"))), ValueError, r"QKLSTM: expected finite values in input, got nan"),
    ("lstm-nan-hx", lambda: _model()(X, (ZERO.clone().fill_(float("nan")), ZERO)), ValueError,
     r"QKLSTM: expected finite values in h_0, got nan"),
    ("lstm-inf-c0", lambda: _model()(X, (ZERO, ZERO.clone().fill_(float("inf")))), ValueError,
     r"QKLSTM: expected finite values in c_0, got inf"),
    ("lstm-hx-tensor", lambda: _model()(X, ZERO), TypeError, r"QKLSTM: expected hx to be a tuple \(h_0, c_0\), got Tensor"),
    ("lstm-hx-three", lambda: _model()(X, (ZERO,) * 3), TypeError, r"expected hx to be a tuple \(h_0, c_0\), got tuple of length 3"),
    ("lstm-hx-float64", lambda: _model()(X, (ZERO.double(), ZERO.double())), TypeError,
     r"QKLSTM: expected h_0 of dtype float32, got float64"),
    ("lstm-hx-shape", lambda: _model()(X, (torch.zeros(1, 3, 2), ZERO)), ValueError, r"QKLSTM: expected h_0 of shape \(1, 2, 2\), got \(1, 3, 2\)"),
    ("lstm-size", lambda: _model()(torch.randn(2, 5, 4)), ValueError, r"QKLSTM: expected input.size\(-1\) == 3, got 4"),
    ("lstm64-float32", lambda: QKLSTM(3, 2, dtype=torch.float64)(X), TypeError, r"expected input of dtype float64, got float32"),
    ("cell-float64", lambda: QKLSTMCell(3, 2, warn=False)(torch.randn(2, 3).double()), TypeError,
     r"QKLSTMCell: expected input of dtype float32, got float64"),
    ("cell-nan-hx", lambda: QKLSTMCell(3, 2, warn=False)(torch.randn(2, 3), (torch.full((2, 2), float("nan")), torch.zeros(2, 2))),
     ValueError, r"QKLSTMCell: expected finite values in hx\[0\], got nan"),
    ("cell-hx-tensor", lambda: QKLSTMCell(3, 2, warn=False)(torch.randn(2, 3), torch.zeros(2, 2)), TypeError,
     r"QKLSTMCell: expected hx to be a tuple \(h_0, c_0\), got Tensor"),
    ("qlstm-int", lambda: QLSTM(3, 2)(X.long()), TypeError, r"QLSTM: expected input of dtype float32, got int64"),
    ("kernel-complex-x", lambda: _kernel()(torch.randn(3, 2, dtype=torch.complex64), torch.randn(2, 2)), TypeError,
     r"QuantumKernel: expected x of dtype float32 or float64, got complex64"),
    ("kernel-complex-y", lambda: _kernel(2)(torch.randn(3, 2), torch.randn(2, 2, dtype=torch.complex128)), TypeError,
     r"QuantumKernel: expected y of dtype float32 or float64, got complex128"),
    ("kernel-float16", lambda: _kernel()(torch.randn(3, 2).half(), torch.randn(2, 2)), TypeError,
     r"QuantumKernel: expected x of dtype float32 or float64, got float16"),
    ("kernel-int", lambda: _kernel()(torch.ones(3, 2, dtype=torch.long), torch.randn(2, 2)), TypeError,
     r"QuantumKernel: expected x of dtype float32 or float64, got int64"),
    ("kernel-list", lambda: _kernel()([[0.0, 0.0]], torch.randn(2, 2)), TypeError, r"QuantumKernel: expected x to be a torch.Tensor, got list"),
    ("kernel-nan-y", lambda: _kernel()(torch.randn(3, 2), torch.full((2, 2), float("nan"))), ValueError,
     r"QuantumKernel: expected finite values in y, got nan"),
    ("kernel-1d", lambda: _kernel()(torch.randn(2), torch.randn(2, 2)), ValueError, r"QuantumKernel: expected x of shape \(N, 2\), got \(2,\)"),
    ("featuremap-float", lambda: FeatureMap(4.0), TypeError, r"FeatureMap: expected num_qubits to be an int, got float 4.0"),
    ("featuremap-zero", lambda: FeatureMap(0), ValueError, r"FeatureMap: expected num_qubits >= 1, got 0"),
    ("config-seed-negative", lambda: load_config(overrides={"train": {"seed": -1}}), ValueError,
     r"config: expected 0 <= train.seed < 2\*\*32, got -1"),
    ("config-sampler-seed", lambda: load_config(overrides={"executor": {"seed": 2**32}}), ValueError,
     r"config: expected 0 <= executor.seed < 2\*\*32, got 4294967296"),
    ("config-label", lambda: load_config(overrides={"train": {"lr": 0}}, labels={"train.lr": "--lr"}), ValueError,
     r"config: expected --lr \(train.lr\) > 0, got 0.0"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_bad_input_is_one_line_error(call, error, message):
    with raises_one_line(error, match=message):
        call()


def test_float64_model_and_kernel_still_compute_in_float64():
    """The checks refuse mismatches, not float64 itself."""
    out, (h, c) = QKLSTM(3, 2, batch_first=True, dtype=torch.float64)(X.double(), (ZERO.double(), ZERO.double()))
    assert out.dtype == h.dtype == c.dtype == torch.float64
    assert _kernel()(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(2, 2)).dtype == torch.float64


def test_binary_config_file_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81model: {}")
    with raises_one_line(ValueError, match=rf"config {path}: expected a UTF-8 YAML text file, got byte 0xff at offset 0"):
        load_config(path)


def test_checkpoint_state_that_does_not_fit_its_config(tmp_path, run_dir):
    for name in (MODEL_FILE, LAST_FILE):
        state = load_checkpoint(run_dir / name)
        state["model_state"] = {**state["model_state"], "classifier.weight": torch.zeros(2, 2)}
        save_checkpoint(state, tmp_path / name)
    with raises_one_line(ValueError, match=r"model.pt' holds a state that does not fit its config \(.*size mismatch for classifier.weight"):
        load_tagger(tmp_path / MODEL_FILE)
    config = load_config(overrides={"train": {"epochs": 3}})
    with raises_one_line(ValueError, match=r"last.pt' holds a state that does not fit its config \(.*classifier.weight"):
        run_training(config, tmp_path, resume=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_FILE, MODEL_FILE]


def test_output_file_guard(tmp_path):
    (tmp_path / "file").write_text("keep")
    with raises_one_line(ValueError, match=r"x: expected --json to be a new file, got '.*file', an existing file \(nothing was overwritten\)"):
        check_out_file(tmp_path / "file", command="x", flag="--json")
    with raises_one_line(ValueError, match=r"x: expected --json to be a file in a folder, got '.*file/a.json', under the file"):
        check_out_file(tmp_path / "file" / "a.json", command="x", flag="--json")
    assert check_out_file(tmp_path / "new" / "a.json", command="x", flag="--json") == tmp_path / "new" / "a.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the check creates nothing


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (unwritable even for root)")
def test_unwritable_out_folder_is_tried_not_assumed():
    with raises_one_line(ValueError, match=r"train: expected a writable --out, got '/proc/qk-lstm/run' \(/proc is not writable"):
        check_out_dir("/proc/qk-lstm/run", command="train", outputs=("model.pt",))


# ----------------------------------------------------------------------------------------------- CLI
def _copy_run(run_dir: Path, where: Path) -> None:
    shutil.copytree(run_dir, where / "R")


def _corrupt(name: str, data: bytes):
    def setup(run_dir: Path, where: Path) -> None:
        _copy_run(run_dir, where)
        (where / "R" / name).write_bytes(data)

    return setup


def _torch_file(obj):
    def setup(run_dir: Path, where: Path) -> None:
        _copy_run(run_dir, where)
        torch.save(obj, where / "R" / LAST_FILE)

    return setup


def _file(name: str, data: bytes):
    def setup(run_dir: Path, where: Path) -> None:
        (where / name).write_bytes(data)

    return setup


NO_PROGRESS = ["--no-progress"]
CLI_CASES = [
    # (id, argv, setup, environment, first words of the error line after "qk-lstm <command>: error: ")
    ("config-30-qubits-entangling", ["train", "--config", "c.yaml", "--out", "run", *NO_PROGRESS],
     _file("c.yaml", b"model:\n  num_qubits: 30\n  reps: 2\ntrain:\n  epochs: 1\n"), {},
     r"out of memory \(StatevectorExecutor: states of 30 qubits for \d+ rows need at least"),
    ("config-a-million-qubits", ["train", "--config", "c.yaml", "--out", "run", *NO_PROGRESS],
     _file("c.yaml", b"model:\n  num_qubits: 1000000\n"), {},
     r"config c.yaml: expected model.num_qubits <= 1024, got 1000000"),
    ("out-is-file", ["train", "--out", "f", "--epochs", "1", *NO_PROGRESS], _file("f", b"x"), {},
     r"train: expected --out to be a folder, got 'f', a file"),
    ("out-under-file", ["train", "--out", "f/run", *NO_PROGRESS], _file("f", b"x"), {},
     r"train: expected --out to be a folder, got 'f/run', under the file f"),
    ("out-unwritable", ["train", "--out", "/proc/qk/run", *NO_PROGRESS], None, {},
     r"train: expected a writable --out, got '/proc/qk/run'"),
    ("reproduce-out-file", ["reproduce", "--out", "f", "--epochs", "1", *NO_PROGRESS], _file("f", b"x"), {},
     r"reproduce: expected --out to be a folder, got 'f', a file"),
    ("estimate-json-folder", ["estimate", "--checkpoint", "R/model.pt", "--json", "R"], _copy_run, {},
     r"estimate: expected --json to be a new file, got 'R', a folder"),
    ("estimate-json-under-file", ["estimate", "--checkpoint", "R/model.pt", "--json", "R/model.pt/e.json"], _copy_run, {},
     r"estimate: expected --json to be a file in a folder, got 'R/model.pt/e.json', under the file R/model.pt"),
    ("estimate-json-exists", ["estimate", "--checkpoint", "R/model.pt", "--json", "R/metrics.json"], _copy_run, {},
     r"estimate: expected --json to be a new file, got 'R/metrics.json', an existing file \(nothing was overwritten\)"),
    ("resume-empty-last", ["train", "--resume", "R", *NO_PROGRESS], _corrupt(LAST_FILE, b""), {},
     r"checkpoint: 'R/last.pt' is not a qk_lstm_qiskit checkpoint \(unreadable: EOFError\)"),
    ("resume-truncated-last", ["train", "--resume", "R", *NO_PROGRESS], _corrupt(LAST_FILE, b"PK\x03\x04\x14\x00"), {},
     r"checkpoint: 'R/last.pt' is not a qk_lstm_qiskit checkpoint \(unreadable"),
    ("resume-foreign-last", ["train", "--resume", "R", *NO_PROGRESS], _torch_file({"weights": torch.zeros(2)}), {},
     r"checkpoint: 'R/last.pt' lacks \['best_score', 'config'"),
    ("resume-pickled-object", ["train", "--resume", "R", *NO_PROGRESS], _torch_file(Path("x")), {},
     r"checkpoint: 'R/last.pt' is not a qk_lstm_qiskit checkpoint \(unreadable: UnpicklingError\)"),
    ("resume-missing-folder", ["train", "--resume", "gone", *NO_PROGRESS], None, {},
     r"train: --resume expected gone/last.pt from an earlier run, not found"),
    ("resume-sgd-on-adam", ["train", "--resume", "R", "--optimizer", "sgd", "--epochs", "3", *NO_PROGRESS], _copy_run, {},
     r"train: --resume expected train.optimizer = 'adam' as saved in R/last.pt, got 'sgd'"),
    ("resume-lr", ["train", "--resume", "R", "--lr", "0.5", *NO_PROGRESS], _copy_run, {},
     r"train: --resume expected train.lr = 0.1 as saved in R/last.pt, got 0.5"),
    ("resume-seed", ["train", "--resume", "R", "--seed", "5", *NO_PROGRESS], _copy_run, {},
     r"train: --resume expected train.seed = 0 as saved in R/last.pt, got 5"),
    ("resume-fewer-epochs", ["train", "--resume", "R", "--epochs", "1", *NO_PROGRESS], _copy_run, {},
     r"train: --resume expected train.epochs >= 2 \(epochs already run in R\), got 1"),
    ("train-existing-run", ["train", "--out", "R", *NO_PROGRESS], _copy_run, {},
     r"holding model.pt, last.pt, metrics.json; pass --resume to continue it or choose another folder"),
    ("threads-abc", ["train", "--out", "r", *NO_PROGRESS], None, {"QK_LSTM_THREADS": "abc"},
     r"expected the environment variable QK_LSTM_THREADS to be an int >= 1, got 'abc'"),
    ("threads-zero", ["estimate", "--checkpoint", "x.pt"], None, {"QK_LSTM_THREADS": "0"},
     r"expected the environment variable QK_LSTM_THREADS to be an int >= 1, got '0'"),
    ("seed-negative", ["train", "--seed", "-1", "--out", "r", *NO_PROGRESS], None, {},
     r"config: expected 0 <= --seed \(train.seed\) < 2\*\*32, got -1"),
    ("sampler-seed-negative", ["train", "--backend", "aer", "--sampler-seed", "-1", "--out", "r", *NO_PROGRESS], None, {},
     r"config: expected 0 <= --sampler-seed \(executor.seed\) < 2\*\*32, got -1"),
    ("epochs-zero", ["train", "--epochs", "0", "--out", "r", *NO_PROGRESS], None, {},
     r"config: expected --epochs \(train.epochs\) > 0, got 0"),
    ("shots-zero", ["train", "--backend", "aer", "--shots", "0", "--out", "r", *NO_PROGRESS], None, {},
     r"config: expected --shots \(executor.shots\) > 0, got 0"),
    ("binary-config", ["train", "--config", "c.yaml", "--out", "r", *NO_PROGRESS], _file("c.yaml", b"\xff\xfe\x00"), {},
     r"config c.yaml: expected a UTF-8 YAML text file, got byte 0xff at offset 0"),
    ("config-seed-in-file", ["train", "--config", "c.yaml", "--out", "r", *NO_PROGRESS], _file("c.yaml", b"train: {seed: -3}\n"), {},
     r"config c.yaml: expected 0 <= train.seed < 2\*\*32, got -3"),
    ("unknown-backend", ["train", "--backend", "nope", "--out", "r", *NO_PROGRESS], None, {},
     r"resolve_backend: expected a backend name like exact"),
    ("split-error", ["train", "--config", "c.yaml", "--out", "r", *NO_PROGRESS], _file("c.yaml", b"data: {validation_fraction: 0.9}\n"), {},
     r"split_corpus: expected non-empty training and validation splits"),
    ("binary-data", ["train", "--data", "d.conllu", "--out", "r", *NO_PROGRESS], _file("d.conllu", bytes(range(256))), {},
     r"read_conllu: expected a"),
    ("reproduce-epochs-zero", ["reproduce", "--epochs", "0", "--out", "rr", *NO_PROGRESS], None, {},
     r"reproduce: expected epochs >= 1, got 0"),
    ("evaluate-resume-without-journal", ["evaluate", "--checkpoint", "R/model.pt", "--backend", "fake:manila", "--resume",
                                         "--out", "E", *NO_PROGRESS], _copy_run, {},
     r"evaluate: --resume expected E/jobs.jsonl from an earlier run, not found"),
    ("evaluate-out-file", ["evaluate", "--checkpoint", "R/model.pt", "--out", "R/model.pt", *NO_PROGRESS], _copy_run, {},
     r"evaluate: expected --out to be a folder, got 'R/model.pt', a file"),
]
SUBPROCESS = {"out-unwritable", "resume-sgd-on-adam", "threads-abc"}  # 9-20 s each (imports) on a loaded machine


def _prepare(case, run_dir: Path, where: Path) -> dict[str, bytes | None]:
    if case[2] is not None:
        case[2](run_dir, where)
    return snapshot(where)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(case, run_dir, tmp_path, capsys, monkeypatch):
    _, argv, _, env, message = case
    before = _prepare(case, run_dir, tmp_path)
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert lines[0].startswith(f"qk-lstm {argv[0]}: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert snapshot(tmp_path) == before  # no folder made, no file touched


@pytest.fixture(scope="module")
def subprocess_results(run_dir, tmp_path_factory):
    """The :data:`SUBPROCESS` cases run by the installed ``qk-lstm`` script, side by side."""
    def one(case):
        where = tmp_path_factory.mktemp(case[0])
        before = _prepare(case, run_dir, where)
        done = subprocess.run([str(QK_LSTM), *case[1]], cwd=where, env={**os.environ, **case[3]},
                              capture_output=True, text=True, timeout=300)
        return case[0], (done, before, snapshot(where))

    cases = [c for c in CLI_CASES if c[0] in SUBPROCESS]
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        return dict(pool.map(one, cases))


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CLI_CASES if c[0] in SUBPROCESS], ids=sorted(SUBPROCESS, key=[c[0] for c in CLI_CASES].index))
def test_cli_bad_input_as_a_user_runs_it(case, subprocess_results):
    done, before, after = subprocess_results[case[0]]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qk-lstm {case[1][0]}: error: "), done.stderr
    assert re.search(case[4], lines[0]), lines[0]
    assert after == before


def test_repeated_reproduce_is_refused_before_training_without_a_resume_hint(tmp_path, capsys):
    (tmp_path / "qlstm-s0").mkdir()
    (tmp_path / "qlstm-s0" / "metrics.json").write_text("{}")
    before = snapshot(tmp_path)
    assert cli.main(["reproduce", "--out", str(tmp_path), "--epochs", "1", "--seeds", "1", *NO_PROGRESS]) == 2
    line = capsys.readouterr().err.strip()
    assert re.fullmatch(
        r"qk-lstm reproduce: error: reproduce: expected a run folder without model.pt, last.pt, metrics.json, got "
        r"'.*qlstm-s0' holding metrics.json; choose another folder \(nothing was overwritten\)", line), line
    assert "--resume" not in line
    assert snapshot(tmp_path) == before  # refused before the first of the nine runs


def _undocumented_flags(help_text: str) -> list[str]:
    """Option lines of an argparse ``--help`` with no description on them or on a continuation line."""
    lines = help_text.split("options:", 1)[1].splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not line.startswith("  -"):
            continue
        described = "  " in line.strip()  # "--seed SEED  the seed ..."
        continued = i + 1 < len(lines) and lines[i + 1].startswith(" " * 6) and not lines[i + 1].lstrip().startswith("-")
        if not (described or continued):
            missing.append(line.strip())
    return missing


COMMANDS = re.search(r"\{([\w,-]+)\}", cli.build_parser().format_usage()).group(1).split(",")


@pytest.mark.parametrize("command", COMMANDS)
def test_verbose_flag_after_the_subcommand_and_help_for_every_flag(command, capsys, monkeypatch):
    parser = cli.build_parser()
    required = ["--checkpoint", "x"] if command in ("evaluate", "estimate") else []
    assert parser.parse_args([command, *required, "-v"]).verbose and parser.parse_args(["-v", command, *required]).verbose
    assert not parser.parse_args([command, *required]).verbose
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit, match="0"):
        parser.parse_args([command, "--help"])
    assert _undocumented_flags(capsys.readouterr().out) == []


# --------------------------------------------------------------------------------------------- fuzzing
CONLLU = (
    "# sent_id = 1\n# text = The dog runs.\n"
    "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
    "3-4\truns.\t_\t_\t_\t_\t_\t_\t_\t_\n3\truns\trun\tVERB\tVBZ\t_\t0\troot\t_\t_\n4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n\n"
    "# sent_id = 2\n1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_\n"
    "2.1\tloudly\tloudly\tADV\tRB\t_\t_\t_\t2:advmod\t_\n\n"
).encode()


def _mutations(seed: bytes):
    """Random bytes, a truncated ``seed``, or ``seed`` with random bytes overwritten."""
    truncated = st.integers(0, len(seed)).map(lambda n: seed[:n])
    edits = st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), min_size=1, max_size=8)
    mutated = edits.map(lambda es: bytes(_apply(seed, es)))
    return st.one_of(st.binary(max_size=512), truncated, mutated)


def _apply(seed: bytes, edits) -> bytearray:
    data = bytearray(seed)
    for i, b in edits:
        data[i] = b
    return data


@pytest.fixture
def fuzz_dir(request, tmp_path_factory) -> Path:
    """A folder per fuzz test (not per example: hypothesis reruns the body, the fixture once)."""
    return tmp_path_factory.mktemp(request.node.name)


def _only(folder: Path, name: str) -> None:
    assert [p.name for p in folder.iterdir()] == [name], "the reader left a file behind"


@FUZZ
@given(data=_mutations(b"model: {kind: lstm, hidden_dim: 4}\ntrain: {epochs: 2, lr: 1e-3, seed: 1}\ndata: {source: paper}\n"))
def test_fuzz_config_loader_bytes(fuzz_dir, data):
    path = fuzz_dir / "config.yaml"
    path.write_bytes(data)
    try:
        assert isinstance(load_config(path), RunConfig)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"config {path}")
    _only(fuzz_dir, "config.yaml")


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
KEYS = {section: list(getattr(RunConfig(), section).__dataclass_fields__) for section in ("model", "data", "train", "executor")}


@FUZZ
@given(overrides=st.dictionaries(
    st.sampled_from([*KEYS, "extra"]),
    st.one_of(YAML_VALUES, st.dictionaries(st.sampled_from([k for ks in KEYS.values() for k in ks]), YAML_VALUES, max_size=4)),
    max_size=3,
))
def test_fuzz_config_overrides(overrides):
    try:
        config = load_config(overrides=overrides)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("config: ")
    else:
        assert config == load_config(overrides=config.to_dict())  # a config that loads round-trips


@FUZZ
@given(data=_mutations(CONLLU))
def test_fuzz_conllu_reader(fuzz_dir, data):
    path = fuzz_dir / "data.conllu"
    path.write_bytes(data)
    try:
        sentences = read_conllu(path)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("read_conllu: ")
    else:
        assert sentences and all(len(w) == len(t) >= 1 for w, t in sentences)
    _only(fuzz_dir, "data.conllu")


CSV = b"date,level,flag\n2020-01-01,1.5,a\n2020-01-02,2.25,b\n2020-01-03,-0.5,c\n2020-01-04,3e2,d\n"


@FUZZ
@given(data=_mutations(CSV), time_column=st.sampled_from([None, "date"]))
def test_fuzz_csv_reader(fuzz_dir, data, time_column):
    """Random, truncated and byte-flipped CSV files: the series' numbers, or one ValueError naming the file."""
    from qk_lstm_qiskit.data.series import read_csv_series

    path = fuzz_dir / "series.csv"
    path.write_bytes(data)
    try:
        values = read_csv_series(path, "level", time_column=time_column)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert values.ndim == 1 and np.isfinite(values).all()
    _only(fuzz_dir, "series.csv")


@pytest.fixture(scope="module")
def checkpoint_bytes(run_dir) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in (MODEL_FILE, LAST_FILE)}


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_loader(fuzz_dir, checkpoint_bytes, data):
    """Random, truncated and byte-flipped model.pt / last.pt: a ValueError naming the file, or a checkpoint."""
    name = data.draw(st.sampled_from([MODEL_FILE, LAST_FILE]))
    raw = data.draw(_mutations(checkpoint_bytes[name]))
    folder = fuzz_dir / "ckpt"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / name).write_bytes(raw)
    try:
        load_checkpoint(folder / name, resume=name == LAST_FILE)
        load_tagger(folder / name)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("checkpoint: ") and f"'{folder / name}'" in str(exc), str(exc)
    _only(folder, name)


@settings(FUZZ, max_examples=30)  # each example builds a tagger
@given(key=st.sampled_from(["config", "words", "tags", "model_state", "format"]), value=YAML_VALUES)
def test_fuzz_checkpoint_contents(fuzz_dir, run_dir, key, value):
    """A checkpoint whose entries were replaced by junk (a hand edit): only a ValueError naming the file."""
    state = load_checkpoint(run_dir / MODEL_FILE)
    path = fuzz_dir / "edited.pt"
    torch.save({**state, key: value}, path)
    try:
        load_tagger(path)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("checkpoint: ") and f"'{path}'" in str(exc), str(exc)
    path.unlink()


def test_a_failed_save_leaves_no_partial_file(tmp_path, run_dir):
    """``save_checkpoint`` of something unpicklable: neither the target nor its temporary file remains."""
    state = load_checkpoint(run_dir / MODEL_FILE)
    with pytest.raises(Exception, match=r"(?i)pickle|lambda"):
        save_checkpoint({**state, "bad": lambda: None}, tmp_path / MODEL_FILE)
    assert list(tmp_path.iterdir()) == []


def test_suite_runs_in_a_temporary_home():
    from conftest import TEST_HOME

    assert Path.home() == TEST_HOME and Path(os.path.expanduser("~")) == TEST_HOME
