"""Series for forecasting: generated values against independent references, CSV errors, windows and split."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy.integrate import odeint

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.series import (
    bessel_j2, damped_shm, is_series_source, load_series, make_windows, prepare_series, read_csv_series,
)


def test_damped_shm_matches_an_independent_integrator():
    t = np.linspace(0.0, 20.0, 240)
    reference = odeint(lambda y, _: [y[1], -0.15 * y[1] - 9.81 * math.sin(y[0])], [0.0, 3.0], t, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(damped_shm(240), reference[:, 1], atol=1e-7)


def test_bessel_j2_matches_mpmath():
    x = np.linspace(0.0, 20.0, 240)
    reference = np.array([float(mpmath.besselj(2, v)) for v in x])
    np.testing.assert_allclose(bessel_j2(240), reference, atol=1e-14)


def test_noise_is_seeded_and_has_the_requested_std():
    clean = damped_shm(2000, t_max=20.0)
    noisy = damped_shm(2000, t_max=20.0, noise=0.1, seed=3)
    np.testing.assert_array_equal(noisy, damped_shm(2000, t_max=20.0, noise=0.1, seed=3))
    assert not np.array_equal(noisy, damped_shm(2000, t_max=20.0, noise=0.1, seed=4))
    residual = noisy - clean
    standard_error = 0.1 / math.sqrt(2 * len(residual))  # of a sample std of Gaussian noise
    assert abs(residual.std() - 0.1) < 5 * standard_error
    assert abs(residual.mean()) < 5 * 0.1 / math.sqrt(len(residual))
    with pytest.raises(ValueError, match=r"series: expected noise >= 0, got -0.1"):
        bessel_j2(10, noise=-0.1)


def test_co2_is_the_monthly_mean_of_statsmodels_weekly_record():
    pytest.importorskip("statsmodels")
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    series = load_series("co2")
    assert len(series) == 526 and np.isfinite(series).all()  # 1958-03 ... 2001-12
    march_1958 = weekly["1958-03"].dropna().to_numpy()
    assert series[0] == pytest.approx(march_1958.mean())


def test_series_sources():
    assert all(is_series_source(s) for s in ("shm", "bessel", "co2", "x/y.CSV"))
    assert not any(is_series_source(s) for s in ("paper", "x.conllu"))
    with pytest.raises(ValueError, match=r"series: expected source in \('shm', 'bessel', 'co2'\) or a .csv path, got 'sine'"):
        load_series("sine")


# --------------------------------------------------------------------------- windows and split
def test_windows_targets_split_and_scaler_fitted_on_the_training_span_only():
    series = np.sin(np.arange(100) * 0.3) + np.arange(100) * 0.05  # a trend: the spans differ in mean
    w = make_windows(series, window=5, horizon=2, validation_fraction=0.2, test_fraction=0.1)
    train_end, val_end = 70, 90  # 100 - 10 test - 20 validation
    assert w.scaler.mean == pytest.approx(series[:train_end].mean())
    assert w.scaler.std == pytest.approx(series[:train_end].std())
    z = (series - series[:train_end].mean()) / series[:train_end].std()
    spans = {"train": (w.train, range(6, train_end)), "validation": (w.validation, range(train_end, val_end)),
             "test": (w.test, range(val_end, 100))}
    for name, ((inputs, targets), expected_targets) in spans.items():
        assert inputs.shape == (len(expected_targets), 5, 1), name
        for row, j in enumerate(expected_targets):  # inputs x[j-h-W+1 .. j-h], target x[j]
            np.testing.assert_allclose(inputs[row, :, 0].numpy(), z[j - 2 - 4 : j - 1], rtol=1e-6, atol=1e-6)
            assert targets[row].item() == pytest.approx(z[j], abs=1e-6)
    np.testing.assert_array_equal(w.test_index, np.arange(val_end, 100))
    np.testing.assert_allclose(w.scaler.inverse(w.test[1].double().numpy()), series[val_end:], rtol=1e-6)


def test_series_too_short_for_the_window():
    with pytest.raises(ValueError, match=r"demo: series too short for window 8 \+ horizon 2: got 12 rows, giving 0 training"):
        make_windows(np.arange(12.0), 8, 2, name="demo")
    with pytest.raises(ValueError, match=r"demo: expected a training span \(rows 1-6\) that varies, got the constant 1.0"):
        make_windows(np.ones(10), 2, 1, validation_fraction=0.2, test_fraction=0.2, name="demo")


# --------------------------------------------------------------------------- CSV
def write(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_column_is_read_in_order(tmp_path):
    path = write(tmp_path, "time,y,other\n2020-01-01,1.5,a\n2020-02-01,-2,b\n2020-03-01,3e1,c\n")
    np.testing.assert_array_equal(read_csv_series(path, "y", time_column="time"), [1.5, -2.0, 30.0])


@pytest.mark.parametrize(
    "text, column, time_column, match",
    [
        ("t,y\n1,2\n", "value", None, r"series .*data.csv: expected a column 'value', got columns \['t', 'y'\]"),
        ("t,y\n1,2\n2,abc\n", "y", None, r"series .*data.csv: expected a number in column 'y' at row 2, got 'abc'"),
        ("t,y\n1,2\n2,\n", "y", None, r"series .*data.csv: expected a number in column 'y' at row 2, got an empty value"),
        ("t,y\n1,2\n2,3\n3,NaN\n", "y", None, r"series .*data.csv: expected a finite number in column 'y' at row 3, got 'NaN'"),
        ("t,y\n1,inf\n", "y", None, r"series .*data.csv: expected a finite number in column 'y' at row 1, got 'inf'"),
        ("t,y\n1,2\n3,4\n2,5\n", "y", "t",
         r"series .*data.csv: expected time column 't' strictly increasing, got '2' at row 3 after '3'"),
        ("t,y\n2020-01-02,2\n2020-01-01,4\n", "y", "t",
         r"series .*data.csv: expected time column 't' strictly increasing, got '2020-01-01' at row 2 after '2020-01-02'"),
        ("t,y\n1,2\nMonday,4\n", "y", "t",
         r"series .*data.csv: expected a number or ISO date in time column 't' at row 2, got 'Monday'"),
        ("t,y\n1,2\n", "y", "time", r"series .*data.csv: expected a column 'time', got columns \['t', 'y'\]"),
    ],
)
def test_bad_csv_raises_one_line_naming_file_column_and_row(tmp_path, text, column, time_column, match):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as info:
        read_csv_series(path, column, time_column=time_column)
    assert "\n" not in str(info.value)


def test_csv_without_column_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"series: expected an existing CSV file, got '.*missing.csv'"):
        read_csv_series(tmp_path / "missing.csv", "y")
    with pytest.raises(ValueError, match=r"series .*data.csv: expected forecast.column \(--column NAME\)"):
        read_csv_series(write(tmp_path, "y\n1\n"), None)


def test_csv_too_short_names_file_and_column(tmp_path):
    path = write(tmp_path, "y\n" + "".join(f"{v}\n" for v in range(6)))
    config = load_config(overrides={"data": {"source": str(path), "validation_fraction": 0.2},
                                    "forecast": {"column": "y", "window": 4}})
    with pytest.raises(ValueError, match=r"series .*data.csv column 'y': series too short for window 4 \+ horizon 1: got 6 rows"):
        prepare_series(config.data, config.forecast)


def test_prepare_series_reads_the_csv_with_its_config(tmp_path):
    values = np.cos(np.arange(40) * 0.4)
    path = write(tmp_path, "y\n" + "".join(f"{float(v)!r}\n" for v in values))
    config = load_config(overrides={"data": {"source": str(path), "validation_fraction": 0.25},
                                    "forecast": {"column": "y", "window": 3, "test_fraction": 0.25}})
    w = prepare_series(config.data, config.forecast)
    assert (len(w.train[1]), len(w.validation[1]), len(w.test[1])) == (17, 10, 10)
    assert torch.equal(w.test[1], torch.tensor((values[30:] - values[:20].mean()) / values[:20].std(), dtype=torch.float32))


def test_relative_windows_subtract_each_windows_last_value():
    series = np.arange(50.0) ** 1.5  # a trend the test span lies above
    w = make_windows(series, window=3, horizon=2, validation_fraction=0.2, test_fraction=0.2, relative=True)
    train_targets = np.arange(4, 30)
    changes = series[train_targets] - series[train_targets - 2]
    assert w.scaler.mean == 0.0 and w.scaler.std == pytest.approx(changes.std())
    inputs, targets = w.test
    for row, j in enumerate(w.test_index):  # window x[j-4 .. j-2], level x[j-2]
        np.testing.assert_allclose(inputs[row, :, 0].numpy() * w.scaler.std, series[j - 4 : j - 1] - series[j - 2], rtol=1e-5)
    np.testing.assert_allclose(w.to_series_units(targets.double().numpy(), w.test_index), series[w.test_index], rtol=1e-6)
    np.testing.assert_allclose(w.to_series_units(np.zeros(len(w.test_index)), w.test_index), series[w.test_index - 2])


def test_csv_that_is_not_utf8_names_file_and_line(tmp_path):
    """Found by the CSV fuzzing: a stray byte used to surface as a bare UnicodeDecodeError."""
    path = tmp_path / "data.csv"
    path.write_bytes(b"t,y\n1,2\n2,\x80\n")
    with pytest.raises(ValueError, match=r"series .*data.csv: expected UTF-8 text, got byte 0x80 on line 3") as info:
        read_csv_series(path, "y")
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- multivariate tables


def test_table_windows_by_hand():
    from qk_lstm_qiskit.data.series import make_table_windows

    rows = np.arange(20, dtype=float)
    table = np.stack([rows, rows**2, np.sin(rows)], axis=1)  # columns a, b, c
    w = make_table_windows(table, ["a", "b", "c"], ["c", "a"], ["b"], 3, 2, validation_fraction=0.2, test_fraction=0.2)
    train_end = 20 - 4 - 4
    mean, std = table[:train_end].mean(0), table[:train_end].std(0)  # training span only
    np.testing.assert_allclose(w.scaler.mean, mean) and np.testing.assert_allclose(w.scaler.std, std)
    x, y = w.train
    first = 3 + 2 - 1  # target row 4 ← rows 0..2
    assert x.shape == (train_end - first, 3, 2) and y.shape == (train_end - first, 1)
    np.testing.assert_allclose(x[0].numpy(), ((table[0:3] - mean) / std)[:, [2, 0]], rtol=1e-6)
    np.testing.assert_allclose(y[0].numpy(), [(table[first, 1] - mean[1]) / std[1]], rtol=1e-6)
    assert w.test_index.tolist() == list(range(16, 20)) and w.target_names == ("b",)
    np.testing.assert_allclose(w.persistence(w.test_index), table[14:18, [1]])
    np.testing.assert_allclose(w.to_series_units(w.test[1].double().numpy(), w.test_index), table[16:20, [1]], rtol=1e-6)


def test_relative_table_windows_round_trip():
    from qk_lstm_qiskit.data.series import make_table_windows

    rng = np.random.default_rng(0)
    table = np.cumsum(rng.normal(size=(60, 2)), axis=0)
    w = make_table_windows(table, ["a", "b"], ["a", "b"], ["a", "b"], 4, 1, relative=True)
    changes = table[4:42] - table[3:41]  # training targets' changes (train_end = 60 - 9 - 9 = 42)
    np.testing.assert_allclose(w.scaler.std, changes.std(0)) and np.testing.assert_allclose(w.scaler.mean, [0, 0])
    np.testing.assert_allclose(w.to_series_units(w.test[1].double().numpy(), w.test_index), table[w.test_index], rtol=1e-5)
    np.testing.assert_allclose(w.to_series_units(np.zeros((len(w.test_index), 2)), w.test_index),
                               w.persistence(w.test_index))  # a zero forecast is persistence


def test_one_column_table_equals_the_univariate_windows():
    from qk_lstm_qiskit.data.series import make_table_windows

    series = damped_shm(120)
    uni = make_windows(series, 5, 2)
    multi = make_table_windows(series[:, None], ["x"], ["x"], ["x"], 5, 2)
    for (xu, yu), (xm, ym) in ((uni.train, multi.train), (uni.validation, multi.validation), (uni.test, multi.test)):
        torch.testing.assert_close(xm, xu)
        torch.testing.assert_close(ym[:, 0], yu)


def test_macrodata_and_csv_tables(tmp_path):
    pytest.importorskip("statsmodels")
    from statsmodels.datasets import macrodata

    from qk_lstm_qiskit.data.series import load_table

    frame = macrodata.load_pandas().data
    table = load_table("macrodata", ["unemp", "infl"])
    np.testing.assert_array_equal(table, frame[["unemp", "infl"]].to_numpy())
    path = tmp_path / "t.csv"
    path.write_text("t,a,b\n1,0.5,2\n2,1.5,3\n")
    np.testing.assert_array_equal(load_table(str(path), ["b", "a"], time_column="t"), [[2, 0.5], [3, 1.5]])


def test_bad_tables_one_line_each(tmp_path):
    from qk_lstm_qiskit.data.series import load_table, make_table_windows

    with pytest.raises(ValueError, match=r"series macrodata: expected columns among \['realgdp'.*, got \['gdp'\]"):
        load_table("macrodata", ["gdp"])
    with pytest.raises(ValueError, match=r"series macrodata: expected distinct columns, got \['infl'\] more than once"):
        load_table("macrodata", ["infl", "infl"])
    with pytest.raises(ValueError, match=r"series: expected a multivariate source in \('macrodata',\) or a .csv path, got 'shm'"):
        load_table("shm", ["x"])
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,nan\n")
    with pytest.raises(ValueError, match=r"expected a finite number in column 'b' at row 2, got 'nan'"):
        load_table(str(path), ["a", "b"])
    table = np.ones((30, 2)) + np.arange(30)[:, None] * [1, 0]
    with pytest.raises(ValueError, match=r"s: expected column 'b' to vary over the training span \(rows 1-23\), got the constant 1.0"):
        make_table_windows(table, ["a", "b"], ["a", "b"], ["a"], 3, name="s", validation_fraction=0.1)
    with pytest.raises(ValueError, match=r"s: expected target columns among \['a', 'b'\], got \['c'\]"):
        make_table_windows(table, ["a", "b"], ["a"], ["c"], 3, name="s")
    with pytest.raises(ValueError, match=r"s: expected a table of shape \(rows, 2\), got \(30,\)"):
        make_table_windows(table[:, 0], ["a", "b"], ["a"], ["a"], 3, name="s")
