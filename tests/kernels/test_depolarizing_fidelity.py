"""The depolarising-corrected fidelity: echoes in the same PUB, unbiased under global depolarising noise, its cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.estimators.depolarizing import rate_variance
from qk_lstm_qiskit.hardware.cost import DryRunSampler, KernelLoad, estimate_cost, kernel_load
from qk_lstm_qiskit.kernels.depolarizing import DepolarizingCorrectedFidelity
from qk_lstm_qiskit.kernels.fidelity import FidelityCost
from qk_lstm_qiskit.kernels.kernel import exact_fidelity
from qk_lstm_qiskit.kernels.sampler import SamplerFidelity

from _samplers import CountingSampler, GlobalDepolarizingSampler

RATE, SHOTS, CALLS = 0.3, 4096, 10


def _angles(fm: FeatureMap, n: int, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, fm.num_qubits, generator=g, dtype=torch.float64), torch.rand(m, fm.num_qubits, generator=g,
                                                                                      dtype=torch.float64)
    return fm.angles(x), fm.angles(y)


def test_corrected_kernels_are_unbiased_under_global_depolarising_noise():
    """Kernels sampled from ``(1 − λ)p + λ/d`` (λ = 0.3, 4096 shots): the raw signed error is ``−λ(k − 1/d)``, far
    beyond its standard error; the corrected one is within 5 standard errors of 0, and ``λ̂`` of ``λ``."""
    fm = FeatureMap(3, reps=2)
    ax, ay = _angles(fm, 5, 6)
    exact = exact_fidelity(fm)(ax, ay)  # (5, 6)
    counting = CountingSampler(GlobalDepolarizingSampler(RATE, default_shots=SHOTS, seed=1))
    inner = SamplerFidelity(fm, counting)
    corrected = DepolarizingCorrectedFidelity(inner, fm, method="average", echoes=4)
    errors, raw = [], []
    with torch.no_grad():
        for _ in range(CALLS):
            k = corrected(ax, ay)
            assert k.shape == (5, 6) and k.dtype == torch.float64
            errors.append(float((k - exact).mean()))
            raw.append(float((inner(ax, ay) - exact).mean()))
    # every corrected call is ONE sampler call holding ONE PUB: the 30 kernel pairs and the 4 echoes
    assert [call for call in counting.calls[::2]] == [[(3, (5 * 6 + 4, 2 * fm.num_parameters))]] * CALLS
    mean, se = np.mean(errors), np.std(errors, ddof=1) / np.sqrt(CALLS)
    raw_mean, raw_se = np.mean(raw), np.std(raw, ddof=1) / np.sqrt(CALLS)
    assert abs(mean) < 5 * se
    assert raw_mean < -5 * max(raw_se, se)
    assert raw_mean == pytest.approx(-RATE * float((exact - 1 / 8).mean()), abs=5 * raw_se)
    assert len(corrected.rates) == CALLS
    rate_se = np.sqrt(rate_variance(np.full(4, 1 - RATE * 7 / 8), SHOTS, 3) / CALLS)
    assert corrected.mean_rate == pytest.approx(RATE, abs=5 * rate_se)


def test_single_echoes_the_first_row_and_is_the_identity_without_noise():
    fm = FeatureMap(2, reps=2)
    ax, ay = _angles(fm, 3, 4)
    counting = CountingSampler(QMLSampler(shots=None))
    corrected = DepolarizingCorrectedFidelity(SamplerFidelity(fm, counting), fm)  # "single", 1 echo
    with torch.no_grad():
        k = corrected(ax, ay)
    assert counting.calls == [[(2, (13, 2 * fm.num_parameters))]]
    assert corrected.rates[0] == pytest.approx(0.0, abs=1e-6)  # P(0…0) of U†(x)U(x) is 1
    assert torch.allclose(k, exact_fidelity(fm)(ax, ay), atol=1e-5)
    assert corrected.echo_rows(3).tolist() == [0]
    assert DepolarizingCorrectedFidelity(SamplerFidelity(fm, counting), fm, method="average", echoes=3).echo_rows(
        5).tolist() == [0, 2, 4]


def test_cost_counts_the_echoes_once_per_job_as_the_sampler_sees_them():
    """A QK-LSTM whose kernels are corrected: the estimate's circuits and jobs equal the dry-run sampler's count."""
    from qk_lstm_qiskit.nn.lstm import QKLSTM

    dry = DryRunSampler()
    model = QKLSTM(3, 2, num_layers=2, batch_first=True, num_qubits=2, num_references=1, sampler=dry)
    for cell in model.cells:
        cell.kernel.fidelity = DepolarizingCorrectedFidelity(cell.kernel.fidelity, cell.kernel.feature_map,
                                                             method="average", echoes=3)
    x = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0))  # N = 2 rows, L = 3 steps
    with torch.no_grad():
        model(x)
    load = kernel_load(model, training=False)
    assert load.circuits_per_call == 3
    est = estimate_cost([(2, 3)], load, shots=1)
    assert len(dry.calls) == est.jobs == 2 * 3
    assert dry.bindings == est.circuits == 2 * 3 * (2 * 4 * 1 + 3)  # K·L·(N·G·R + e)
    assert all(call == (2 * 4 + 3,) for call in dry.calls)
    assert "e=3 echo circuits per forward job" in est.summary() and "N_b·G·R·f + e" in est.formula
    plain = estimate_cost([(2, 3)], KernelLoad(num_references=1, num_layers=2), shots=1)
    assert "+ e" not in plain.formula and plain.circuits == est.circuits - 2 * 3 * 3


def test_bad_arguments_are_one_line():
    fm = FeatureMap(2, reps=1)
    inner = SamplerFidelity(fm, QMLSampler(shots=None))
    with pytest.raises(TypeError, match="expected inner to run compute-uncompute circuits on a sampler"):
        DepolarizingCorrectedFidelity(exact_fidelity(fm), fm)
    with pytest.raises(ValueError, match="expected method in \\('single', 'average'\\), got 'split'"):
        DepolarizingCorrectedFidelity(inner, fm, method="split")
    with pytest.raises(ValueError, match="expected echoes 1 for method 'single', got 3"):
        DepolarizingCorrectedFidelity(inner, fm, echoes=3)
    with pytest.raises(ValueError, match="expected echoes an int >= 1 for method 'average', got 0"):
        DepolarizingCorrectedFidelity(inner, fm, method="average", echoes=0)
    ax, ay = _angles(fm, 2, 2)
    with pytest.raises(ValueError, match="expected inference"):
        DepolarizingCorrectedFidelity(inner, fm)(ax.requires_grad_(), ay)
    assert DepolarizingCorrectedFidelity(inner, fm, method="average").cost(differentiate_y=True) == FidelityCost(1, per_call=4)
