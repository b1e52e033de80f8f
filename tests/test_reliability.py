"""Issue 24: the newcomer battery's cases, each run as a user runs it, and the mechanisms they exposed.

CLI cases go through ``cli.main`` in this process (exit 2, one ``error:`` line, no traceback,
the folder unchanged); the ids are the battery's (``/work/shared/reliability``'s F, E, S, D, Y, T,
X cases). Then the mechanisms: the run-folder lock, the strict YAML loader, the series checks,
the nn/kernel edges and the memory guard of ``diagnose``.
"""

from __future__ import annotations

import json
import math
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

from qk_lstm_qiskit import QKLSTM, QKLSTMCell, QLSTM, FeatureMap, QuantumKernel, cli, load_config, load_series, make_windows
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.kernels.alignment import kernel_target_alignment, train_alignment
from qk_lstm_qiskit.kernels.diagnostics import check_concentration_memory
from qk_lstm_qiskit.rundir import LOCK_NAME, claim_out_dir
from qk_lstm_qiskit.training.experiment import run_training

from _assertions import raises_one_line

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NO_PROGRESS = ["--no-progress"]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """``R`` paper QK-LSTM, ``Z`` ZZ reps 2 (an entangling kernel), ``FL`` a forecasting LSTM: 1 epoch each."""
    root = tmp_path_factory.mktemp("runs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_training(load_config(overrides={"train": {"epochs": 1}}), root / "R", progress=False)
        run_training(load_config(overrides={"train": {"epochs": 1}, "model": {"feature_map": "zz", "reps": 2}}),
                     root / "Z", progress=False)
        run_training(load_config(CONFIGS / "forecast_lstm.yaml", {"train": {"epochs": 1}}), root / "FL", progress=False)
    return root


def _csv(values) -> str:
    return "t,v\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values))


SMOOTH = [math.sin(0.3 * i) + 0.01 * i for i in range(60)]
FCL = str(CONFIGS / "forecast_lstm.yaml")
FCQ = str(CONFIGS / "forecast_qklstm.yaml")
EV = ["evaluate", "--checkpoint", "{R}/model.pt", "--backend", "fake:manila", "--no-progress", "--out", "E"]
TRAIN_CSV = ["train", "--config", FCL, "--epochs", "1", "--out", "run", "--data", "s.csv", "--column", "v", *NO_PROGRESS]
CASES = [
    # (battery id, argv ({R}, {Z}, {FL}: the fixture runs), files to write first or "symlink:NAME->TARGET", message)
    ("F10", TRAIN_CSV, {"s.csv": _csv([1e308, 1e308, -1e308, -1e308] * 15)}, r"expected finite values with \|x\| <= 1e\+150.*row 1"),
    ("F11", TRAIN_CSV, {"s.csv": _csv([1e305 * (1.5 + math.sin(i)) for i in range(60)])}, r"\|x\| <= 1e\+150"),
    ("F40", TRAIN_CSV, {"s.csv": _csv(SMOOTH[:55] + [1e308] + SMOOTH[56:])}, r"got 1e\+308 at row 56"),
    ("F40-float32", TRAIN_CSV, {"s.csv": _csv(SMOOTH[:55] + [1e45] + SMOOTH[56:])}, r"expected test values within float32 range"),
    ("F27", ["train", "--epochs", "1", "--out", "run", "--column", "units", *NO_PROGRESS], {},
     r"config: expected --column only with a series data.source"),
    ("F28", ["train", "--config", FCL, "--epochs", "1", "--out", "run", "--data", "shm", "--column", "units", *NO_PROGRESS], {},
     r"config: expected --column only with a .csv data.source, got the built-in series 'shm'"),
    ("F29", ["train", "--config", "c.yaml", "--epochs", "1", "--out", "run", *NO_PROGRESS],
     {"c.yaml": "model: {kind: lstm, hidden_dim: 4}\ndata: {source: shm, validation_fraction: 0.2}\nforecast: {test_fraction: 0}\n"},
     r"series shm: expected forecast.test_fraction > 0"),
    ("F39", ["train", "--config", "c.yaml", "--epochs", "1", "--out", "run", *NO_PROGRESS],
     {"s.csv": _csv(SMOOTH), "c.yaml": "model: {kind: lstm}\ndata: {source: s.csv, validation_fraction: 0.9}\n"
                                        "forecast: {column: v, test_fraction: 0.2}\n"},
     r"make_windows: expected validation_fraction \+ test_fraction < 1 \(the rest trains\), got 0.9 \+ 0.2"),
    ("E01", [*EV, "--mitigation", "bogus"], {}, r"argument --mitigation: invalid choice: 'bogus'"),
    ("E02", [*EV, "--target-error", "0"], {}, r"argument --target-error: expected a finite number with 0 < value <= 0.5, got '0'"),
    ("E03", [*EV, "--target-error", "-0.1"], {}, r"argument --target-error: expected"),
    ("E04", [*EV, "--target-error", "nan"], {}, r"argument --target-error: expected .* got 'nan'"),
    ("E05", [*EV, "--target-error", "0.6"], {}, r"argument --target-error: expected .* got '0.6'"),
    ("E10", [*EV, "--max-circuits-per-job", "0"], {}, r"argument --max-circuits-per-job: expected an integer >= 1, got 0"),
    ("E11", [*EV, "--max-circuits-per-job", "-1"], {}, r"argument --max-circuits-per-job: expected an integer >= 1, got -1"),
    ("E15", [*EV, "--shots", "1000000000000"], {}, r"argument --shots: expected an integer with 1 <= value <= 10000000"),
    ("E19", [*EV, "--seed", "-1", "--shots", "256"], {}, r"argument --seed: expected an integer with 0 <= value <= 4294967295, got -1"),
    ("E23", [*EV, "--max-qpu-seconds", "nan"], {}, r"argument --max-qpu-seconds: expected a finite number >= 0, got 'nan'"),
    ("E24", [*EV, "--max-qpu-seconds", "-1"], {}, r"argument --max-qpu-seconds: expected a finite number >= 0, got '-1'"),
    ("E25", [*EV, "--timeout", "0"], {}, r"argument --timeout: expected a finite number > 0, got '0'"),
    ("E26", [*EV, "--max-retries", "-1"], {}, r"argument --max-retries: expected an integer >= 0, got -1"),
    ("E28", [*EV, "--mitigation", "marginal", "--calibration-dir", "cal", "--shots", "256"], {"cal": "a file\n"},
     r"evaluate: expected --calibration-dir to be a folder, got 'cal', a file"),
    ("E29", [*EV, "--mitigation", "marginal", "--calibration-dir", "/proc/qk/cal", "--shots", "256"], {},
     r"evaluate: expected a writable --calibration-dir, got '/proc/qk/cal'"),
    ("E31", ["evaluate", "--checkpoint", "{R}/model.pt", "--parallel-batches", "0", "--out", "E"], {},
     r"argument --parallel-batches: expected an integer >= 1, got 0"),
    ("E31-exact", ["evaluate", "--checkpoint", "{R}/model.pt", "--parallel-batches", "2", "--out", "E"], {},
     r"evaluate: expected --parallel-batches only with a sampler backend, got --backend exact"),
    ("E35", [*EV[:-1], "L1", "--shots", "256"], {"symlink:L1": "L1"},
     r"evaluate: expected --out to be a folder, got 'L1', a symbolic link to a missing path or to itself"),
    ("E36", [*EV[:-1], "D", "--shots", "256"], {"symlink:D": "missing"}, r"expected --out to be a folder, got 'D', a symbolic link"),
    ("E37", ["evaluate", "--checkpoint", "{Z}/model.pt", "--backend", "fake:manila", "--mitigation", "marginal",
             *NO_PROGRESS, "--out", "E"], {}, r"mitigation 'marginal': expected a transpiled fidelity circuit without multi-qubit"),
    ("E52", ["evaluate", "--checkpoint", "{R}/model.pt", "--max-qpu-seconds", "-5", "--shots", "0", "--out", "E"], {},
     r"argument --max-qpu-seconds: expected a finite number >= 0, got '-5'"),
    ("E52-exact", ["evaluate", "--checkpoint", "{R}/model.pt", "--shots", "256", "--out", "E"], {},
     r"evaluate: expected --shots only with a sampler backend, got --backend exact"),
    ("S10", ["estimate", "--checkpoint", "{R}/model.pt", "--mitigation", "m3", "--calibration-shots", "0"], {},
     r"argument --calibration-shots: expected an integer >= 1, got 0"),
    ("S11", ["estimate", "--checkpoint", "{R}/model.pt", "--mitigation", "m3", "--calibration-shots", "-5"], {},
     r"argument --calibration-shots: expected an integer >= 1, got -5"),
    ("S18", ["estimate", "--checkpoint", "{R}/model.pt", "--json", "dl/e.json"], {"symlink:dl": "nowhere"},
     r"estimate: expected --json to be a file in a folder, got 'dl/e.json' \(under dl\), a symbolic link"),
    ("D03", ["diagnose", "--config", FCQ, "--out", "D"], {}, r"diagnose: expected a tagging data source .* got 'shm'"),
    ("D12", ["diagnose", "--bandwidths", "inf", "--out", "D"], {}, r"--bandwidths as finite numbers > 0, got '2,4,6,8', 'inf'"),
    ("D14", ["diagnose", "--out", "D"], {"D": "a file\n"}, r"diagnose: expected --out to be a folder, got 'D', a file"),
    ("D15", ["diagnose", "--out", "f/D"], {"f": "a file\n"}, r"diagnose: expected --out to be a folder, got 'f/D', under the file f"),
    ("D16", ["diagnose", "--out", "D"], {"D/concentration.png": "an earlier figure\n"},
     r"diagnose: expected a --out folder without diagnostics.json, concentration.png, got 'D' holding concentration.png"),
    ("D18", ["diagnose", "--data", "shm", "--out", "D"], {}, r"diagnose: expected a tagging data source"),
    ("D19", ["diagnose", "--config", FCL, "--checkpoint", "{R}/model.pt", "--out", "D"], {},
     r"diagnose: expected --config or --checkpoint \(a checkpoint holds its config\), got both"),
    ("D20", ["diagnose", "--out", "/proc/qk/D"], {}, r"diagnose: expected a writable --out, got '/proc/qk/D'"),
    ("D24-memory", ["diagnose", "--config", "c.yaml", "--qubits", "34", "--out", "D"],
     {"c.yaml": "model: {feature_map: zz, reps: 2}\n"}, r"out of memory \(concentration: 34 qubits need .* GiB"),
    ("Y15", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS], {"c.yaml": "train:\n  lr: 0.1\n  lr: 0.5\n"},
     r"config c.yaml: not valid YAML \(expected each key once per mapping, got 'lr' again \(first on line 2\) at line 3"),
    ("Y16", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS],
     {"c.yaml": "train: {lr: 0.1}\nmodel: {kind: lstm}\ntrain: {lr: 0.5}\n"}, r"got 'train' again \(first on line 1\)"),
    ("Y19", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS], {"c.yaml": "executor: {shots: 100}\n"},
     r"config: expected executor.shots \(in c.yaml\) only with a sampler backend"),
    ("Y23", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS], {"c.yaml": "forecast: {window: 8}\n"},
     r"config: expected forecast.window \(in c.yaml\) only with a series data.source"),
    ("Y24", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS], {"c.yaml": "data: {source: ''}\n"},
     r"config c.yaml: expected data.source to name a data source"),
    ("Y39", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS],
     {"c.yaml": "model: {kind: lstm, hidden_dim: 1000000}\n"}, r"config: expected a model that fits in memory, got model.hidden_dim 1000000"),
    ("Y40", ["train", "--config", "c.yaml", "--out", "run", "--epochs", "1", *NO_PROGRESS],
     {"c.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n"},
     r"not valid YAML \(expected no aliases \(\*name\) in a config, got one at line 2, column 8\)"),
    ("T04", ["train", "--epochs", "1", "--out", "", *NO_PROGRESS], {}, r"argument --out: expected a path, got ''"),
    ("T21", ["train", "--sampler-seed", "5", "--epochs", "1", "--out", "run", *NO_PROGRESS], {},
     r"config: expected --sampler-seed only with a sampler backend"),
    ("T24", ["train", "--epochs", "1", "--out", "L1", *NO_PROGRESS], {"symlink:L1": "L1"},
     r"train: expected --out to be a folder, got 'L1', a symbolic link to a missing path or to itself \('L1'\)"),
    ("T25", ["train", "--epochs", "1", "--out", "D", *NO_PROGRESS], {"symlink:D": "missing"},
     r"train: expected --out to be a folder, got 'D', a symbolic link"),
    ("T29", ["reproduce", "--config", FCQ, "--seeds", "1", "--epochs", "1", "--out", "rr", *NO_PROGRESS], {},
     r"reproduce: expected a tagging config .* got data.source 'shm'"),
    ("X01", ["evaluate", "--checkpoint", "{FL}/model.pt", "--batch-size", "0", "--out", "E"], {},
     r"argument --batch-size: expected an integer >= 1, got 0"),
    ("X01-ignored", ["evaluate", "--checkpoint", "{FL}/model.pt", "--shots", "256", "--out", "E"], {},
     r"evaluate: expected --shots only with a sampler backend, got --backend exact"),
]


@pytest.mark.parametrize("argv, files, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_battery_case_exits_2_with_one_line_and_changes_nothing(argv, files, message, runs, tmp_path, capsys, monkeypatch):
    for name, content in files.items():
        if name.startswith("symlink:"):
            (tmp_path / name.removeprefix("symlink:")).symlink_to(content)
        else:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(content)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = [a.format(R=runs / "R", Z=runs / "Z", FL=runs / "FL") for a in argv]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert lines[0].startswith(f"qk-lstm {argv[0]}: error: "), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert snapshot(tmp_path) == before


def test_invalid_choice_is_one_line_in_a_subprocess(tmp_path):
    """As a user runs it: the shell sees exit 2 and one line, not argparse's usage block."""
    qk = Path(sys.executable).with_name("qk-lstm")
    result = subprocess.run([str(qk), "evaluate", "--checkpoint", "x.pt", "--mitigation", "bogus"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "qk-lstm evaluate: error: argument --mitigation: invalid choice: 'bogus' (choose from 'none', 'm3', 'marginal') "
        "(see qk-lstm evaluate --help)"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- run-folder lock
def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_claimed_folder_refuses_a_second_train_in_one_line(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with claim_out_dir("same", command="train", outputs=("model.pt",)):
        lock = json.loads((tmp_path / "same" / LOCK_NAME).read_text())
        assert lock["pid"] == os.getpid() and lock["command"] == "train"
        assert cli.main(["train", "--epochs", "1", "--out", "same", *NO_PROGRESS]) == 2
        assert cli.main(["evaluate", "--checkpoint", str(runs / "R" / "model.pt"), "--out", "same"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert re.fullmatch(rf"qk-lstm train: error: train: expected --out 'same' to be free, got a folder in use by "
                        rf"process {os.getpid()} \(train, since .*\); wait for it or choose another folder "
                        rf"\(remove same/{re.escape(LOCK_NAME)} if that process is gone\)", err[0]), err[0]
    assert err[1].startswith("qk-lstm evaluate: error: evaluate: expected --out 'same' to be free")
    assert not (tmp_path / "same").exists()  # the owner created it, left it empty: removed with the lock


def test_a_stale_lock_is_taken_over_and_removed_after_the_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": os.uname().nodename, "command": "train"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_training(load_config(overrides={"train": {"epochs": 1}, "model": {"kind": "lstm"}}), out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "metrics.csv", "metrics.json", "model.pt"]


def test_a_failed_claim_leaves_no_folder_and_no_parents(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with claim_out_dir(tmp_path / "a" / "b" / "run", command="train", outputs=("model.pt",)):
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- API edges
def _qklstm(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return QKLSTM(3, 2, batch_first=True, **kwargs)


API_CASES = [
    ("A04", lambda: QuantumKernel(FeatureMap(4, reps=2))(torch.randn(2, 5, 4), torch.randn(3, 4)), ValueError,
     r"QuantumKernel: expected x of shape \(N, 4\), got \(2, 5, 4\)"),
    ("A40", lambda: _qklstm(dtype=torch.float16), TypeError,
     r"QKLSTMCell: expected dtype float32 or float64 \(what the executors compute in\), got torch.float16"),
    ("A40-qlstm", lambda: QLSTM(3, 2, dtype=torch.bfloat16), TypeError, r"QLSTMCell: expected dtype float32 or float64"),
    ("A40-cell", lambda: QKLSTMCell(8, 6, dtype=torch.int64, warn=False), TypeError, r"QKLSTMCell: expected dtype"),
    ("A33-objects", lambda: kernel_target_alignment(torch.eye(2), [object(), object()]), TypeError,
     r"target_matrix: expected labels to be ints or strings, got object values"),
    ("A67", lambda: make_windows(np.arange(50.0), 0), ValueError, r"make_windows: expected window >= 1, got 0"),
    ("A68", lambda: make_windows(np.arange(50.0), -3), ValueError, r"make_windows: expected window >= 1, got -3"),
    ("A69", lambda: make_windows(np.arange(50.0), 4, 0), ValueError, r"make_windows: expected horizon >= 1, got 0"),
    ("A70", lambda: make_windows(np.where(np.arange(50) == 10, np.nan, np.arange(50.0)), 4), ValueError,
     r"series: expected finite values with \|x\| <= 1e\+150 .*got nan at row 11"),
    ("A71", lambda: make_windows(np.arange(50.0), 2.5), TypeError, r"make_windows: expected window to be an int, got float 2.5"),
    ("A72", lambda: make_windows(np.arange(50.0).reshape(25, 2), 4), ValueError,
     r"series: expected a 1-D series of shape \(T,\), got shape \(25, 2\)"),
    ("A73", lambda: make_windows(np.arange(50.0), 4, validation_fraction=1.5), ValueError,
     r"make_windows: expected validation_fraction in \[0, 1\), got 1.5"),
    ("A74", lambda: make_windows(np.arange(50.0), 4, test_fraction=-0.2), ValueError,
     r"make_windows: expected test_fraction in \[0, 1\), got -0.2"),
    ("A75", lambda: make_windows(np.arange(50.0), 4, validation_fraction=0.5, test_fraction=0.5), ValueError,
     r"make_windows: expected validation_fraction \+ test_fraction < 1"),
    ("A76", lambda: load_series("shm", length=0), ValueError, r"load_series: expected length >= 2, got 0"),
    ("A77", lambda: load_series("shm", length=-5), ValueError, r"load_series: expected length >= 2, got -5"),
    ("A78", lambda: load_series("bessel", length=2.5), TypeError, r"load_series: expected length to be an int, got float 2.5"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_edge_is_a_one_line_error(call, error, message):
    with raises_one_line(error, match=message):
        call()


def test_sqrt_angle_of_a_negative_feature_is_refused_not_a_nan_kernel():
    """A22: an angle expression outside its domain gives NaN states; the kernel names the row instead."""
    from qiskit.circuit import Parameter, QuantumCircuit

    x = Parameter("x")
    circuit = QuantumCircuit(1)
    circuit.ry(x**0.5, 0)
    kernel = QuantumKernel(FeatureMap.from_circuit(circuit), warn=False)
    inside = kernel(torch.tensor([[0.25]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64))
    assert torch.allclose(inside, torch.tensor([[math.cos((0.5 - 1.0) / 2) ** 2]], dtype=torch.float64))
    with raises_one_line(ValueError, match=r"QuantumKernel: expected the feature map's angles of x to be finite, got \[nan\] "
                                           r"for row 1 \(\[-1.0\]\)"):
        kernel(torch.tensor([[0.5], [-1.0]]), torch.tensor([[0.3]]))


def test_string_labels_align_like_their_integer_codes():
    """A33: class labels may be strings; the alignment equals that of the integer codes."""
    gram = torch.tensor([[1.0, 0.2, 0.9], [0.2, 1.0, 0.1], [0.9, 0.1, 1.0]])
    assert kernel_target_alignment(gram, ["b", "a", "b"]).item() == pytest.approx(kernel_target_alignment(gram, [1, 0, 1]).item())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = QuantumKernel(build_feature_map("paper", 2, reps=2, trainable_scaling=True, trainable_layers=1))
    torch.manual_seed(0)
    x = torch.randn(4, 2)
    by_name = train_alignment(kernel, x, ["a", "b", "a", "b"], steps=0)
    assert by_name == train_alignment(kernel, x, [0, 1, 0, 1], steps=0)


@pytest.mark.parametrize("make", [lambda: QLSTM(3, 2, batch_first=True, num_layers=2), lambda: _qklstm()],
                         ids=["QLSTM", "QKLSTM"])
def test_a_batch_of_zero_gives_empty_outputs_like_nn_lstm(make):
    """A59: shapes and dtypes as ``nn.LSTM`` gives for a batch of 0."""
    model, reference = make(), torch.nn.LSTM(3, 2, batch_first=True, num_layers=make().num_layers)
    x = torch.zeros(0, 5, 3)
    (out, (h, c)), (ref_out, (ref_h, ref_c)) = model(x), reference(x)
    assert out.shape == ref_out.shape == (0, 5, 2) and h.shape == ref_h.shape and c.shape == ref_c.shape


def test_concentration_memory_guard_refuses_before_simulating(monkeypatch):
    """``diagnose --qubits 24`` with the ZZ map: the states of both sides (2·32·2²⁴ complex128 = 16 GiB) are
    refused against the executor's limit at once; the product map needs no states and passes."""
    from qk_lstm_qiskit.kernels import diagnostics

    monkeypatch.setattr(diagnostics, "default_memory_limit", lambda device=None: 8 * 2**30)

    def zz(n):
        return build_feature_map("zz", n, reps=2)

    with raises_one_line(MemoryError, match=r"concentration: 24 qubits need 16 GiB for the 32 sample states of both sides, "
                                            r"over the executor's memory limit of 8 GiB"):
        check_concentration_memory(zz, (2, 24))
    check_concentration_memory(zz, (2, 20))  # 1 GiB: fits
    check_concentration_memory(lambda n: build_feature_map("paper", n, reps=1), (24,))


def test_series_checks_keep_valid_windows_unchanged():
    """The new checks refuse only bad input: a valid split is the same windows as before (values by hand)."""
    windows = make_windows(np.arange(20.0), 3, 2, validation_fraction=0.0, test_fraction=0.25)
    inputs, targets = windows.train
    first = (np.array([0.0, 1.0, 2.0, 4.0]) - windows.scaler.mean) / windows.scaler.std
    assert windows.scaler.mean == pytest.approx(np.arange(15.0).mean())
    assert torch.allclose(inputs[0, :, 0], torch.tensor(first[:3], dtype=torch.float32))
    assert targets[0].item() == pytest.approx(first[3])
    assert len(targets) == 15 - 4 and len(windows.test[1]) == 5


def test_duplicate_keys_and_aliases_are_refused_but_anchors_alone_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: &t {lr: 0.5}\n")
    assert load_config(path).train.lr == 0.5
    path.write_text("model:\n  kind: lstm\n  hidden_dim: 3\n  kind: qlstm\n")
    with raises_one_line(ValueError, match=r"got 'kind' again \(first on line 2\) at line 4, column 3"):
        load_config(path)


# ------------------------------------------------------------------------------------ divergence and resume
@pytest.mark.parametrize("argv", [
    ["train", "--lr", "1e30", "--epochs", "3", "--out", "run", *NO_PROGRESS],  # T01: the QK-LSTM
    ["train", "--model", "lstm", "--lr", "1e30", "--epochs", "3", "--out", "run", *NO_PROGRESS],  # T02
    ["train", "--config", FCL, "--lr", "1e30", "--epochs", "3", "--out", "run", *NO_PROGRESS],  # T03: a forecast
], ids=["T01", "T02", "T03"])
def test_divergence_stops_in_one_line_naming_epoch_and_lr_and_saves_nothing(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    match = re.fullmatch(
        r"qk-lstm train: error: train: diverged in epoch (\d): (the loss became (nan|inf)|the loss grew to .* in the first batch|a step made the parameters "
        r"non-finite) with train.lr 1e\+30; lower --lr \(train.lr\) or set train.clip_grad_norm \((.*)\)", err[0])
    assert len(err) == 1 and match, err
    epoch = int(match.group(1))
    if epoch == 1:
        assert match.group(4) == "nothing was saved" and list(tmp_path.iterdir()) == []
        return
    assert match.group(4) == f"the files of epoch {epoch - 1} are kept"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(), parse_constant=pytest.fail)
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, epoch))  # no record of the diverged epoch
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model_state"].values())  # no NaN checkpoint


def test_metrics_json_is_strict_json_when_a_value_is_not_finite(tmp_path):
    from qk_lstm_qiskit.rundir import write_json_atomic

    write_json_atomic({"loss": math.nan, "epochs": [{"val_loss": math.inf}, {"val_loss": 1.5}]}, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON token {name}")) == {
        "loss": None, "epochs": [{"val_loss": None}, {"val_loss": 1.5}]}


def test_resume_without_config_takes_the_runs_own_settings(runs, tmp_path, capsys, monkeypatch):
    """T10: ``train --resume F --epochs N`` of a forecasting run continues it (it used to be compared with the paper config)."""
    shutil.copytree(runs / "FL", tmp_path / "FL")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--resume", "FL", "--epochs", "2", *NO_PROGRESS]) == 0
    assert "test RMSE" in capsys.readouterr().out
    assert [e["epoch"] for e in json.loads((tmp_path / "FL" / "metrics.json").read_text())["epochs"]] == [1, 2]


# ------------------------------------------------------------------------------------------------ torchrun
def _torchrun(ranks: int, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "QK_LSTM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(bin_dir / "torchrun"), f"--nproc_per_node={ranks}", "--no-python", str(bin_dir / "qk-lstm"),
                           *argv, *NO_PROGRESS], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.parametrize("ranks", [2, 3])
def test_torchrun_with_more_ranks_than_rows_finishes_and_matches_one_process(ranks, tmp_path):
    """The paper config (batch 1): every batch leaves ranks without rows; they run the same DDP forward and
    backward times 0, so nobody waits alone in a collective and the run equals one process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = run_training(load_config(overrides={"train": {"epochs": 3}}), None, progress=False)
    result = _torchrun(ranks, ["train", "--epochs", "3", "--out", "run"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("final training accuracy") == 1  # rank 0 reports
    epochs = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    for got, want in zip(epochs, one["epochs"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5) and got["accuracy"] == want["accuracy"]


def test_torchrun_forecast_is_written_and_reported_by_rank_0_only(tmp_path):
    result = _torchrun(2, ["train", "--config", FCL, "--epochs", "1", "--out", "run"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("test RMSE") == 1
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "forecast.png", "last.pt", "metrics.csv", "metrics.json", "model.pt"]


def test_nothing_shipped_points_into_the_developers_tree():
    """The UD configs name their treebank by file name (pass --data); README and guides give --data."""
    root = CONFIGS.parent
    shipped = [*CONFIGS.glob("*.yaml"), root / "README.md", *(root / "docs" / "guide").glob("*.md")]
    assert [p.name for p in shipped if "../shared" in p.read_text(encoding="utf-8")] == []


def test_a_missing_treebank_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--config", str(CONFIGS / "ud_ewt_qklstm.yaml"), "--out", "run", *NO_PROGRESS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["qk-lstm train: error: read_conllu: expected an existing CoNLL-U file, got missing path "
                   "en_ewt-ud-dev.conllu; treebanks are not shipped: download one from https://universaldependencies.org/ "
                   "(e.g. UD_English-EWT) and pass its path with --data"]
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_line_and_keeps_the_previous_epoch(tmp_path, capsys, monkeypatch):
    """torch's zip writer reports ENOSPC as a RuntimeError; the run stops in one line, epoch 1's files intact."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--model", "lstm", "--epochs", "1", "--out", "run", *NO_PROGRESS]) == 0
    before = snapshot(tmp_path / "run")
    capsys.readouterr()

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    assert cli.main(["train", "--resume", "run", "--epochs", "2", *NO_PROGRESS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qk-lstm train: error: cannot write run/last.pt (disk full or not writable?"), err
    assert snapshot(tmp_path / "run") == before


def test_estimate_help_does_not_offer_the_exact_backend(capsys):
    """``estimate`` refuses ``--backend exact``; its help no longer says a checkpoint of any kind works with it."""
    assert cli.main(["estimate", "--help"]) == 0
    assert "--backend exact" not in " ".join(capsys.readouterr().out.split())
