"""Univariate time series for forecasting: generated, shipped with statsmodels, or read from a CSV.

``data.source`` names the series: ``shm`` (damped pendulum), ``bessel`` (J₂), ``co2`` (Mauna Loa,
from statsmodels, monthly means), or a path ending in ``.csv`` (``forecast.column`` holds the values).
:func:`make_windows` turns a series into sliding windows with a time-ordered
train / validation / test split and a standardisation fitted on the training span only.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..validation import check_int, check_number
from .scaling import ChannelScaler

if TYPE_CHECKING:
    from ..config import DataConfig, ForecastConfig

__all__ = [
    "SERIES_SOURCES", "is_series_source", "damped_shm", "bessel_j2", "co2_series", "read_csv_series",
    "load_series", "Scaler", "SeriesWindows", "make_windows", "prepare_series", "describe_source",
    "TABLE_SOURCES", "read_csv_table", "macrodata_table", "load_table", "TableWindows", "make_table_windows",
    "is_table_config", "table_columns", "prepare_table",
]

SERIES_SOURCES = ("shm", "bessel", "co2")  #: built-in series (``data.source``); any other source is a CSV file
TABLE_SOURCES = ("macrodata",)  #: multivariate tables with named columns (``forecast.columns``)
MAX_ABS_VALUE = 1e150  #: largest absolute value of a series value: its square (the variance) must fit in float64


def is_series_source(source: str) -> bool:
    """``True`` for the forecasting sources: a built-in series name or a ``.csv`` path."""
    return source in SERIES_SOURCES or source.lower().endswith(".csv")


def _add_noise(values: np.ndarray, noise: float, seed: int) -> np.ndarray:
    if noise < 0 or not math.isfinite(noise):
        raise ValueError(f"series: expected noise >= 0, got {noise!r}")
    if noise == 0:
        return values
    return values + noise * np.random.default_rng(seed).standard_normal(values.shape)


def damped_shm(length: int = 240, *, t_max: float = 20.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Angular velocity of a damped pendulum, as in Chen, Yoo, Fang's QLSTM benchmark.

    .. math::
        \\ddot\\theta = -\\tfrac{b}{m}\\dot\\theta - \\tfrac{g}{l}\\sin\\theta,\\quad b = 0.15,\\ g = 9.81,
        \\ l = m = 1,\\ \\theta(0) = 0,\\ \\dot\\theta(0) = 3

    sampled at ``length`` equally spaced times in ``[0, t_max]``, plus Gaussian noise of std
    ``noise`` (seeded by ``seed``). Shape: ``(length,)``.
    """
    from scipy.integrate import solve_ivp

    b, g, arm, m = 0.15, 9.81, 1.0, 1.0  # damping, gravity, pendulum length, mass
    t = np.linspace(0.0, t_max, length)
    sol = solve_ivp(
        lambda _, y: [y[1], -(b / m) * y[1] - (g / arm) * math.sin(y[0])], (0.0, t_max), [0.0, 3.0],
        t_eval=t, rtol=1e-10, atol=1e-10,
    )
    return _add_noise(sol.y[1], noise, seed)


def bessel_j2(length: int = 240, *, x_max: float = 20.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """The Bessel function of the first kind J₂(x) at ``length`` points of ``[0, x_max]`` (plus noise)."""
    from scipy.special import jv

    return _add_noise(jv(2, np.linspace(0.0, x_max, length)), noise, seed)


def co2_series() -> np.ndarray:
    """Monthly mean CO₂ at Mauna Loa, ppm, 1958-03 … 2001-12 (526 values; statsmodels' ``co2``).

    The weekly record is averaged per month; the few months without data are interpolated
    linearly. Ships inside statsmodels (``pip install qk_lstm_qiskit[forecast]``): no download.
    """
    try:
        from statsmodels.datasets import co2
    except ImportError as exc:
        raise ImportError("series: source 'co2' needs statsmodels; pip install 'qk_lstm_qiskit[forecast]'") from exc
    weekly = co2.load_pandas().data["co2"]
    return weekly.resample("MS").mean().interpolate("linear").to_numpy(dtype=float)


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def read_csv_series(path: str | Path, column: str | None, *, time_column: str | None = None) -> np.ndarray:
    """The numbers of ``column`` in the CSV file ``path`` (header line first), in file order.

    Rows are counted from 1 after the header. With ``time_column`` (numbers or ISO dates) the
    rows must be strictly increasing in time.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no column given, a missing column, an empty, non-numeric or NaN value, or an
            unsorted time column — naming the file, the column and the row.
    """
    if column is None and Path(path).is_file():
        raise ValueError(f"series {Path(path)}: expected forecast.column (--column NAME) naming the CSV column to forecast, got none")
    return read_csv_table(path, [column] if column is not None else [], time_column=time_column)[:, 0]


def read_csv_table(path: str | Path, columns: Sequence[str], *, time_column: str | None = None) -> np.ndarray:
    """The numbers of ``columns`` in the CSV file ``path``, shape ``(T, len(columns))``; checks as
    :func:`read_csv_series` (every value of every named column finite)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"series: expected an existing CSV file, got {str(path)!r}")
    if not columns:
        raise ValueError(f"series {path}: expected forecast.columns (--columns A,B) naming the CSV columns, got none")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(f"series {path}: expected UTF-8 text, got byte 0x{raw[exc.start]:02x} on line {line}") from None
    try:
        return _read_csv_text(path, content, list(columns), time_column)
    except csv.Error as exc:
        raise ValueError(f"series {path}: expected CSV text, got {exc}") from None


def _read_csv_text(path: Path, content: str, columns: list[str], time_column: str | None) -> np.ndarray:
    """The numbers of ``columns`` in ``content``, the decoded CSV text of ``path`` (see :func:`read_csv_series`)."""
    reader = csv.DictReader(io.StringIO(content, newline=""))
    header = reader.fieldnames or []
    for name in (*columns, time_column):
        if name is not None and name not in header:
            raise ValueError(f"series {path}: expected a column {name!r}, got columns {header}")
    rows: list[list[float]] = []
    previous, previous_text = None, ""
    for row_number, row in enumerate(reader, start=1):
        values = []
        for column in columns:
            text = (row.get(column) or "").strip()
            try:
                value = float(text)
            except ValueError:
                what = "an empty value" if not text else f"{text!r}"
                raise ValueError(f"series {path}: expected a number in column {column!r} at row {row_number}, got {what}") from None
            if not math.isfinite(value):
                raise ValueError(f"series {path}: expected a finite number in column {column!r} at row {row_number}, got {text!r}")
            values.append(value)
        if time_column is not None:
            stamp = (row.get(time_column) or "").strip()
            try:
                current = _parse_time(stamp)
            except ValueError:
                raise ValueError(
                    f"series {path}: expected a number or ISO date in time column {time_column!r} at row {row_number}, got {stamp!r}"
                ) from None
            if previous is not None and current <= previous:
                raise ValueError(
                    f"series {path}: expected time column {time_column!r} strictly increasing, "
                    f"got {stamp!r} at row {row_number} after {previous_text!r}"
                )
            previous, previous_text = current, stamp
        rows.append(values)
    return np.asarray(rows, dtype=float).reshape(len(rows), len(columns))


def load_series(source: str, *, column: str | None = None, time_column: str | None = None, length: int = 240,
                noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """The series named by ``source`` (see the module docstring). Shape: ``(T,)``."""
    if source in ("shm", "bessel"):
        check_int("load_series", "length", length, 2)
    if source == "shm":
        return damped_shm(length, noise=noise, seed=seed)
    if source == "bessel":
        return bessel_j2(length, noise=noise, seed=seed)
    if source == "co2":
        return _add_noise(co2_series(), noise, seed)
    if source.lower().endswith(".csv"):
        return _add_noise(read_csv_series(source, column, time_column=time_column), noise, seed)
    raise ValueError(f"series: expected source in {SERIES_SOURCES} or a .csv path, got {source!r}")


@dataclass(frozen=True)
class Scaler:
    """Standardisation ``z = (x − mean) / std`` with statistics of the training span."""

    mean: float
    std: float

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


@dataclass
class SeriesWindows:
    """Windows of a standardised series and their targets, split in time order.

    ``train``/``validation``/``test`` are ``(inputs (N, W, 1), targets (N,))`` in standardised units;
    ``test_index`` holds the test targets' positions in the series. With ``relative`` the inputs
    and target are taken minus the window's last value (``levels``) before standardising.
    """

    series: np.ndarray  # (T,) original units
    scaler: Scaler
    window: int
    horizon: int
    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    test_index: np.ndarray
    relative: bool = False

    def levels(self, index: np.ndarray) -> np.ndarray:
        """What is added back to a de-standardised forecast of the targets at ``index``."""
        return self.series[index - self.horizon] if self.relative else np.zeros(len(index))

    def to_series_units(self, z: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Standardised forecasts ``z`` of the targets at ``index`` in the series' own units."""
        return self.scaler.inverse(z) + self.levels(index)


def _windows(
    series: np.ndarray, scaler: Scaler, window: int, horizon: int, targets: range, relative: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    index = np.asarray(targets, dtype=int)
    levels = series[index - horizon] if relative else np.zeros(len(index))
    inputs = np.stack([series[j - horizon - window + 1 : j - horizon + 1] for j in index]) if len(index) else np.zeros((0, window))
    return (torch.tensor(scaler.transform(inputs - levels[:, None]), dtype=torch.float32).unsqueeze(-1),
            torch.tensor(scaler.transform(series[index] - levels), dtype=torch.float32))


def make_windows(
    series: np.ndarray, window: int, horizon: int = 1, *, validation_fraction: float = 0.15,
    test_fraction: float = 0.15, name: str = "series", scaler: Scaler | None = None, relative: bool = False,
) -> SeriesWindows:
    """Sliding windows ``x[j−h−W+1 … j−h] → x[j]`` with a time-ordered split of the targets ``j``.

    The series is cut in time into train / validation / test spans (fractions of its length);
    a window belongs to the span of its target, so no target of a later span is ever seen
    during training. Mean and std come from the training span only (or ``scaler``, e.g. a
    checkpoint's, when given).

    ``relative=True`` (for trending series, whose test span lies outside the training range):
    every window and its target are taken minus the window's last value, and scaled by the std
    of the training targets' changes ``x[j] − x[j−h]`` (mean 0: a zero forecast is persistence).

    Raises:
        TypeError: a non-integer ``window``/``horizon`` or a non-numeric series.
        ValueError: ``window``/``horizon`` < 1, fractions outside ``[0, 1)`` or summing to 1 or
            more, a series that is not 1-D, holds NaN/inf or values beyond ``MAX_ABS_VALUE``, is too
            short for ``window + horizon`` and the split, or a constant training span (naming
            ``name``, e.g. the CSV file and column).
    """
    series = _checked_series(series, window, horizon, validation_fraction, test_fraction, name)
    t = len(series)
    first, train_end, n_val, n_test = _split_rows(t, window, horizon, validation_fraction, test_fraction, name)
    if scaler is None:
        train_span = series[:train_end]
        std = float(train_span.std())
        if not std > 0:
            raise ValueError(f"{name}: expected a training span (rows 1-{train_end}) that varies, got the constant {float(train_span[0])!r}")
        changes = series[first:train_end] - series[first - horizon : train_end - horizon]
        scaler = Scaler(0.0, float(changes.std()) or 1.0) if relative else Scaler(float(train_span.mean()), std)
    val_end = train_end + n_val
    spans = {span: _windows(series, scaler, window, horizon, targets, relative) for span, targets in
             (("train", range(first, train_end)), ("validation", range(train_end, val_end)), ("test", range(val_end, t)))}
    for span, (inputs, targets) in spans.items():  # float32 after standardising: an outlier can overflow
        if not (torch.isfinite(inputs).all() and torch.isfinite(targets).all()):
            raise ValueError(f"{name}: expected {span} values within float32 range after standardising with the "
                             f"training span's mean {scaler.mean:.4g} and std {scaler.std:.4g}, got an overflow (an outlier?)")
    return SeriesWindows(series=series, scaler=scaler, window=window, horizon=horizon, **spans,
                         test_index=np.arange(val_end, t), relative=relative)


def _split_rows(
    t: int, window: int, horizon: int, validation_fraction: float, test_fraction: float, name: str,
) -> tuple[int, int, int, int]:
    """``(first, train_end, n_val, n_test)`` of ``t`` time-ordered rows: ``first`` the first position with a full
    window before it, rows ``[0, train_end)`` training; refused unless >= 2 training windows and >= 1 per nonzero fraction."""
    first = window + horizon - 1
    n_test, n_val = int(round(t * test_fraction)), int(round(t * validation_fraction))
    train_end = t - n_test - n_val
    n_train = train_end - first
    if n_train < 2 or (validation_fraction > 0 and n_val < 1) or (test_fraction > 0 and n_test < 1):
        raise ValueError(
            f"{name}: series too short for window {window} + horizon {horizon}: got {t} rows, giving {max(n_train, 0)} "
            f"training, {n_val} validation and {n_test} test windows (expected >= 2, and >= 1 for each nonzero fraction)"
        )
    return first, train_end, n_val, n_test


def _checked_series(series, window, horizon, validation_fraction, test_fraction, name: str) -> np.ndarray:
    """``series`` as a finite 1-D float64 array, after checking the arguments of :func:`make_windows`."""
    for arg, value in (("window", window), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"make_windows: expected {arg} to be an int, got {type(value).__name__} {value!r}")
        if value < 1:
            raise ValueError(f"make_windows: expected {arg} >= 1, got {value}")
    for arg, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        check_number("make_windows", arg, value, optional=False)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"make_windows: expected {arg} in [0, 1), got {value!r}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(f"make_windows: expected validation_fraction + test_fraction < 1 (the rest trains), "
                         f"got {validation_fraction!r} + {test_fraction!r}")
    try:
        values = np.asarray(series, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"make_windows: expected series to be numbers, got {type(series).__name__}") from None
    if values.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D series of shape (T,), got shape {values.shape}")
    bad = np.flatnonzero(~(np.abs(values) <= MAX_ABS_VALUE))  # NaN, ±inf and values whose square overflows
    if len(bad):
        raise ValueError(f"{name}: expected finite values with |x| <= {MAX_ABS_VALUE:.0e} (the variance must fit in "
                         f"float64), got {float(values[bad[0]])!r} at row {bad[0] + 1}")
    return values


def describe_source(data: DataConfig, forecast: ForecastConfig) -> str:
    """How errors and metrics name the series: ``"series shm"``, ``"series FILE.csv column 'x'"`` or
    ``"series macrodata columns realgdp,unemp → unemp"``."""
    if forecast.columns is not None or data.source in TABLE_SOURCES:
        inputs = ",".join(_names(forecast.columns))
        return f"series {data.source} columns {inputs} → {','.join(_names(forecast.target)) or inputs}"
    if data.source.lower().endswith(".csv"):
        return f"series {data.source} column {forecast.column!r}"
    return f"series {data.source}"


def prepare_series(data: DataConfig, forecast: ForecastConfig, *, scaler: Scaler | None = None) -> SeriesWindows:
    """The windows of the series that ``data.source`` names, split and standardised as configured
    (with ``scaler`` instead of the training span's statistics when given)."""
    if forecast.test_fraction <= 0:
        raise ValueError(f"{describe_source(data, forecast)}: expected forecast.test_fraction > 0 (the test RMSE needs "
                         f"test windows), got {forecast.test_fraction!r}")
    series = load_series(
        data.source, column=forecast.column, time_column=forecast.time_column, length=forecast.length,
        noise=forecast.noise, seed=forecast.noise_seed,
    )
    return make_windows(
        series, forecast.window, forecast.horizon, validation_fraction=data.validation_fraction,
        test_fraction=forecast.test_fraction, name=describe_source(data, forecast), scaler=scaler,
        relative=forecast.relative,
    )


# ---------------------------------------------------------------- multivariate: several columns in, one or several out


def macrodata_table() -> tuple[np.ndarray, tuple[str, ...]]:
    """US macroeconomic data, quarterly 1959 Q1 … 2009 Q3 (203 rows; statsmodels' ``macrodata``).

    Columns: ``realgdp, realcons, realinv, realgovt, realdpi, cpi, m1, tbilrate, unemp, pop, infl,
    realint`` (``year``, ``quarter`` left out). Ships inside statsmodels (``[forecast]`` extra).
    """
    try:
        from statsmodels.datasets import macrodata
    except ImportError as exc:
        raise ImportError("series: source 'macrodata' needs statsmodels; pip install 'qk_lstm_qiskit[forecast]'") from exc
    frame = macrodata.load_pandas().data.drop(columns=["year", "quarter"])
    return frame.to_numpy(dtype=float), tuple(frame.columns)


def load_table(source: str, columns: Sequence[str], *, time_column: str | None = None) -> np.ndarray:
    """The named ``columns`` of ``source`` (``macrodata`` or a ``.csv`` path) in time order. Shape: ``(T, len(columns))``.

    Raises:
        ValueError: an unknown source or column, a repeated column, a bad CSV value (see :func:`read_csv_series`).
    """
    columns = list(columns)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"series {source}: expected distinct columns, got {repeated} more than once in {columns}")
    if source == "macrodata":
        values, names = macrodata_table()
        unknown = [c for c in columns if c not in names]
        if unknown or not columns:
            raise ValueError(f"series macrodata: expected columns among {list(names)}, got {columns}")
        return values[:, [names.index(c) for c in columns]]
    if source.lower().endswith(".csv"):
        return read_csv_table(source, columns, time_column=time_column)
    raise ValueError(f"series: expected a multivariate source in {TABLE_SOURCES} or a .csv path, got {source!r}")


@dataclass
class TableWindows:
    """Windows of several standardised columns and their targets, split in time order.

    ``train``/``validation``/``test`` are ``(inputs (N, W, F), targets (N, T))`` in standardised
    units, ``F = len(inputs)``, ``T = len(targets)`` (indices into ``columns``, the table's
    columns). ``test_index`` holds the test targets' rows. With ``relative``, every column of a
    window and its target are taken minus the window's last value of that column.
    """

    table: np.ndarray  # (rows, len(columns)) original units
    columns: tuple[str, ...]
    inputs: tuple[int, ...]
    targets: tuple[int, ...]
    scaler: ChannelScaler  # one entry per column of the table
    window: int
    horizon: int
    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    test_index: np.ndarray
    relative: bool = False

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(self.columns[t] for t in self.targets)

    def persistence(self, index: np.ndarray) -> np.ndarray:
        """The last value of each window's target columns as its forecast. Shape: ``(len(index), T)``."""
        return self.table[np.ix_(index - self.horizon, np.asarray(self.targets))]

    def to_series_units(self, z: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Standardised forecasts ``z`` ``(n, T)`` of the targets at rows ``index`` in the columns' own units."""
        levels = self.persistence(index) if self.relative else 0.0
        return self.scaler.select(self.targets).inverse(z) + levels


def _table_windows(
    table: np.ndarray, scaler: ChannelScaler, inputs: tuple[int, ...], targets: tuple[int, ...], window: int,
    horizon: int, rows: range, relative: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    index = np.asarray(rows, dtype=int)
    if not len(index):
        return torch.zeros(0, window, len(inputs)), torch.zeros(0, len(targets))
    windows = np.stack([table[j - horizon - window + 1 : j - horizon + 1] for j in index])  # (N, W, all columns)
    levels = windows[:, -1:, :] if relative else np.zeros((len(index), 1, table.shape[1]))
    x = scaler.transform(windows - levels)[:, :, list(inputs)]
    y = scaler.transform(table[index] - levels[:, 0])[:, list(targets)]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def make_table_windows(
    table: np.ndarray, columns: Sequence[str], inputs: Sequence[str], targets: Sequence[str], window: int,
    horizon: int = 1, *, validation_fraction: float = 0.15, test_fraction: float = 0.15, name: str = "series",
    scaler: ChannelScaler | None = None, relative: bool = False,
) -> TableWindows:
    """Sliding windows of the ``inputs`` columns ``rows j−h−W+1 … j−h`` → the ``targets`` columns at row ``j``.

    The split, the windows and the relative mode are those of :func:`make_windows`, column by
    column: mean and std per column from the training span only (with ``relative``: mean 0 and
    the std of the column's training changes ``x[j] − x[j−h]``), or ``scaler`` when given.

    Raises:
        ValueError: a table that is not ``(rows, len(columns))``, an unknown input or target
            column, no inputs or targets, a table too short, a constant training column.
    """
    table = np.asarray(table, dtype=float)
    columns = tuple(columns)
    if table.ndim != 2 or table.shape[1] != len(columns):
        raise ValueError(f"{name}: expected a table of shape (rows, {len(columns)}), got {table.shape}")
    for role, names in (("input", inputs), ("target", targets)):
        if not names or any(c not in columns for c in names):
            raise ValueError(f"{name}: expected {role} columns among {list(columns)}, got {list(names)}")
    t = len(table)
    first, train_end, n_val, n_test = _split_rows(t, window, horizon, validation_fraction, test_fraction, name)
    if scaler is None:
        span = table[:train_end]
        std = span.std(axis=0)
        if not (std > 0).all():
            c = int(np.flatnonzero(~(std > 0))[0])
            raise ValueError(f"{name}: expected column {columns[c]!r} to vary over the training span (rows 1-{train_end}), "
                             f"got the constant {float(span[0, c])!r}")
        if relative:
            changes = table[first:train_end] - table[first - horizon : train_end - horizon]
            scaler = ChannelScaler(tuple(0.0 for _ in columns), tuple(float(s) or 1.0 for s in changes.std(axis=0)))
        else:
            scaler = ChannelScaler(tuple(float(m) for m in span.mean(axis=0)), tuple(float(s) for s in std))
    elif len(scaler.mean) != len(columns):
        raise ValueError(f"{name}: expected a scaler of {len(columns)} columns, got {len(scaler.mean)}")
    inputs_at = tuple(columns.index(c) for c in inputs)
    targets_at = tuple(columns.index(c) for c in targets)
    val_end = train_end + n_val

    def part(rows: range) -> tuple[torch.Tensor, torch.Tensor]:
        return _table_windows(table, scaler, inputs_at, targets_at, window, horizon, rows, relative)

    return TableWindows(
        table=table, columns=columns, inputs=inputs_at, targets=targets_at, scaler=scaler, window=window,
        horizon=horizon, train=part(range(first, train_end)), validation=part(range(train_end, val_end)),
        test=part(range(val_end, t)), test_index=np.arange(val_end, t), relative=relative,
    )


def is_table_config(data: DataConfig, forecast: ForecastConfig) -> bool:
    """Whether a forecasting config reads several named columns (``forecast.columns``, or a table source)."""
    return forecast.columns is not None or data.source in TABLE_SOURCES


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


def table_columns(data: DataConfig, forecast: ForecastConfig) -> tuple[list[str], list[str]]:
    """``(input columns, target columns)`` of a table config; the targets default to the inputs.

    Raises:
        ValueError: no ``forecast.columns`` (``--columns``), or a ``forecast.column`` next to them.
    """
    inputs, targets = _names(forecast.columns), _names(forecast.target)
    if not inputs:
        raise ValueError(f"series {data.source}: expected forecast.columns (--columns A,B,...) naming the input "
                         f"columns, got {forecast.columns!r}")
    if forecast.column is not None:
        raise ValueError(f"series {data.source}: expected forecast.columns and forecast.target, not forecast.column "
                         f"(--column), got column {forecast.column!r}")
    return inputs, targets or list(inputs)


def prepare_table(data: DataConfig, forecast: ForecastConfig, *, scaler: ChannelScaler | None = None) -> TableWindows:
    """The windows of the table config (:func:`is_table_config`): the input and target columns of
    ``data.source`` split and standardised as configured (with ``scaler`` instead of the training
    span's statistics when given)."""
    inputs, targets = table_columns(data, forecast)
    columns = list(dict.fromkeys(inputs + targets))
    table = load_table(data.source, columns, time_column=forecast.time_column)
    return make_table_windows(
        table, columns, inputs, targets, forecast.window, forecast.horizon, validation_fraction=data.validation_fraction,
        test_fraction=forecast.test_fraction, name=f"series {data.source} columns {columns}", scaler=scaler,
        relative=forecast.relative,
    )
