"""QuantumKernel: kernel properties (hypothesis), gradients, input checks, product-kernel warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.circuits.feature_map import ENTANGLEMENTS, FeatureMap
from qk_lstm_qiskit.kernels.kernel import QuantumKernel

N = 3  # qubits


def make_kernel(num_qubits: int = N, reps: int = 2, entanglement: str = "linear", **kwargs) -> QuantumKernel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        return QuantumKernel(FeatureMap(num_qubits, reps, entanglement, dtype=torch.float64, **kwargs))


KERNELS = {
    "paper": make_kernel(4, 1, "linear"),
    "reps2": make_kernel(N, 2, "linear"),
    "reps3-full": make_kernel(N, 3, "full", input_scaling=0.7),
    "reps2-none": make_kernel(N, 2, "none"),  # product kernel with two layers per qubit
}

finite = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False, allow_infinity=False, width=64)


def points(num_qubits: int, min_size: int = 1, max_size: int = 1):
    return st.lists(
        st.lists(finite, min_size=num_qubits, max_size=num_qubits), min_size=min_size, max_size=max_size
    ).map(lambda rows: torch.tensor(rows, dtype=torch.float64))


kernel_names = st.sampled_from(sorted(KERNELS))
PROPERTY = settings(derandomize=True, max_examples=40, deadline=None)


# --------------------------------------------------------------------------- properties
@PROPERTY
@given(name=kernel_names, data=st.data())
def test_kernel_of_a_point_with_itself_is_one(name, data):
    kernel = KERNELS[name]
    x = data.draw(points(kernel.num_features, 1, 5))
    k = kernel(x, x)
    torch.testing.assert_close(torch.diagonal(k), torch.ones(len(x), dtype=torch.float64), atol=1e-12, rtol=0)


@PROPERTY
@given(name=kernel_names, data=st.data())
def test_kernel_is_symmetric_and_in_unit_interval(name, data):
    kernel = KERNELS[name]
    x = data.draw(points(kernel.num_features, 1, 4))
    y = data.draw(points(kernel.num_features, 1, 4))
    kxy, kyx = kernel(x, y), kernel(y, x)
    assert kxy.shape == (len(x), len(y))
    torch.testing.assert_close(kxy, kyx.t(), atol=1e-12, rtol=0)
    assert (kxy >= 0).all() and (kxy <= 1 + 1e-12).all()


@PROPERTY
@given(name=kernel_names, data=st.data())
def test_gram_matrix_is_positive_semidefinite(name, data):
    kernel = KERNELS[name]
    x = data.draw(points(kernel.num_features, 2, 7))
    gram = kernel(x, x)
    assert torch.linalg.eigvalsh(gram).min() >= -1e-10


@PROPERTY
@given(data=st.data())
def test_kernel_equals_squared_overlap_of_feature_states(data):
    kernel = KERNELS["reps2"]
    x = data.draw(points(N, 1, 3))
    y = data.draw(points(N, 1, 3))
    sx, sy = kernel.states(x).numpy(), kernel.states(y).numpy()
    np.testing.assert_allclose(np.linalg.norm(sx, axis=1), 1.0, atol=1e-12)
    expected = np.abs(sy.conj() @ sx.T).T ** 2
    np.testing.assert_allclose(kernel(x, y).numpy(), expected, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_gradcheck_wrt_x_and_y(name, gen):
    kernel = KERNELS[name]
    x = torch.randn(3, kernel.num_features, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(2, kernel.num_features, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(kernel, (x, y))


@pytest.mark.parametrize("reps", [1, 2])
def test_gradcheck_wrt_trainable_scaling(reps, gen):
    kernel = make_kernel(N, reps, "linear", input_scaling=0.8, trainable_scaling=True)
    assert [n for n, _ in kernel.named_parameters()] == ["feature_map.scaling"]
    x = torch.randn(3, N, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(2, N, dtype=torch.float64, generator=gen, requires_grad=True)
    scaling = torch.tensor([0.8, 1.1, 0.5], dtype=torch.float64, requires_grad=True)

    def f(x, y, scaling):
        return functional_call(kernel, {"feature_map.scaling": scaling}, (x, y))

    assert torch.autograd.gradcheck(f, (x, y, scaling))
    # the module's own parameter receives the same gradient as the functional one
    with torch.no_grad():
        kernel.feature_map.scaling.copy_(scaling)
    kernel(x, y).sum().backward()
    (expected,) = torch.autograd.grad(f(x, y, scaling).sum(), scaling)
    torch.testing.assert_close(kernel.feature_map.scaling.grad, expected, atol=1e-12, rtol=0)


def test_autograd_equals_parameter_shift_rule_on_angles(gen):
    """NOTES eq. 9–13: ∂k/∂θ = [k(θ + π/2) − k(θ − π/2)] / 2 for each angle of U(x) (each appears once)."""
    kernel = KERNELS["reps2"]
    executor = kernel.fidelity.executor
    theta_x = torch.randn(1, kernel.feature_map.num_parameters, dtype=torch.float64, generator=gen)
    theta_y = torch.randn(1, kernel.feature_map.num_parameters, dtype=torch.float64, generator=gen)
    state_y = executor.statevectors(theta_y)

    def k(theta: torch.Tensor) -> torch.Tensor:
        overlap = (executor.statevectors(theta) * state_y.conj()).sum(-1)
        return overlap.abs().square()

    theta = theta_x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(k(theta).sum(), theta)
    shifts = torch.eye(theta_x.size(1), dtype=torch.float64) * (math.pi / 2)
    shifted = (k(theta_x + shifts) - k(theta_x - shifts)) / 2  # one row per angle
    torch.testing.assert_close(auto[0], shifted, atol=1e-12, rtol=0)
    assert auto.abs().max() > 1e-3  # a real gradient, not zeros on both sides


@pytest.mark.parametrize("reps", [1, 2])
def test_float32_kernel_agrees_with_float64(reps, gen):
    k64 = make_kernel(N, reps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        k32 = QuantumKernel(FeatureMap(N, reps, "linear"))
    x, y = torch.randn(4, N, generator=gen), torch.randn(3, N, generator=gen)
    out = k32(x, y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), k64(x.double(), y.double()), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_empty_sides_give_empty_gram_matrices(name):
    kernel = KERNELS[name]
    d = kernel.num_features
    assert kernel(torch.zeros(0, d, dtype=torch.float64), torch.zeros(2, d, dtype=torch.float64)).shape == (0, 2)
    assert kernel(torch.zeros(3, d, dtype=torch.float64), torch.zeros(0, d, dtype=torch.float64)).shape == (3, 0)


# --------------------------------------------------------------------------- errors and warnings
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("which", ["x", "y"])
def test_non_finite_input_raises(bad, which):
    kernel = KERNELS["reps2"]
    good = torch.zeros(2, N, dtype=torch.float64)
    corrupt = good.clone()
    corrupt[1, 2] = bad
    args = (corrupt, good) if which == "x" else (good, corrupt)
    with pytest.raises(ValueError, match=rf"QuantumKernel: expected finite values in {which}, got {bad}"):
        kernel(*args)


def test_wrong_shapes_raise():
    kernel = KERNELS["reps2"]
    with pytest.raises(ValueError, match=r"QuantumKernel: expected x of shape \(N, 3\), got \(2, 4\)"):
        kernel(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"QuantumKernel: expected y of shape \(N, 3\), got \(3,\)"):
        kernel(torch.zeros(2, 3), torch.zeros(3))


def test_feature_map_type_is_checked():
    with pytest.raises(TypeError, match="QuantumKernel: expected feature_map to be a FeatureMap, got int"):
        QuantumKernel(3)


def test_product_kernel_warning_for_reps_one():
    with pytest.warns(ProductKernelWarning, match="is a product of single-qubit kernels.*e.g. reps >= 2 with entanglement"):
        kernel = QuantumKernel(FeatureMap(4, reps=1))
    assert kernel.is_product_kernel


def test_no_product_kernel_warning_for_entangling_reps_two():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kernel = QuantumKernel(FeatureMap(4, reps=2))
    assert not [w for w in caught if issubclass(w.category, ProductKernelWarning)]
    assert not kernel.is_product_kernel


# --------------------------------------------------------------------------- adjoint vs parameter shift
def value_and_grads(kernel: QuantumKernel, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor):
    x, y = x.clone().requires_grad_(), y.clone().requires_grad_()
    k = kernel(x, y)
    params = [p for p in kernel.parameters() if p.requires_grad]
    grads = torch.autograd.grad((k * weights).sum(), [x, y, *params])
    return k, grads


@pytest.mark.parametrize("entanglement", ENTANGLEMENTS)
@pytest.mark.parametrize("reps", [2, 3])
def test_adjoint_equals_parameter_shift_reference(reps, entanglement, gen):
    """Values and gradients (x side, y side, trainable bandwidth) equal to 1e-10 in float64, and gradcheck."""
    fm = FeatureMap(4, reps, entanglement, input_scaling=0.9, trainable_scaling=True, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        adjoint, shift = QuantumKernel(fm), QuantumKernel(fm, gradient="parameter-shift")
    x = torch.randn(5, 4, dtype=torch.float64, generator=gen)
    y = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    weights = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    k, grads = value_and_grads(adjoint, x, y, weights)
    k_ref, grads_ref = value_and_grads(shift, x, y, weights)
    torch.testing.assert_close(k, k_ref, atol=1e-10, rtol=0)
    for grad, ref in zip(grads, grads_ref):
        torch.testing.assert_close(grad, ref, atol=1e-10, rtol=0)
        assert ref.abs().max() > 1e-4  # real gradients on every side
    assert torch.autograd.gradcheck(adjoint, (x.requires_grad_(), y.requires_grad_()))


def test_adjoint_kernel_in_row_chunks_equals_unchunked(gen):
    """A memory limit too small to keep the states: forward and backward recompute them in chunks."""
    fm = FeatureMap(6, 2, "circular", dtype=torch.float64)
    state = 2**6 * 16
    chunked = QuantumKernel(fm, memory_limit=12 * state)  # keeps 3 of 7 rows at most: chunks
    whole = QuantumKernel(fm)
    x = torch.randn(7, 6, dtype=torch.float64, generator=gen)
    y = torch.randn(2, 6, dtype=torch.float64, generator=gen)
    weights = torch.randn(7, 2, dtype=torch.float64, generator=gen)
    k, grads = value_and_grads(chunked, x, y, weights)
    k_ref, grads_ref = value_and_grads(whole, x, y, weights)
    torch.testing.assert_close(k, k_ref, atol=1e-13, rtol=0)
    for grad, ref in zip(grads, grads_ref):
        torch.testing.assert_close(grad, ref, atol=1e-12, rtol=0)


def test_prepared_reference_states_are_reused_and_differentiable(gen):
    kernel = KERNELS["reps2"]
    y = torch.randn(4, N, dtype=torch.float64, generator=gen, requires_grad=True)
    prepared = kernel.prepare(y)
    assert prepared.prepared.shape == (4, 2**N)  # the statevector fidelity keeps the references' states
    steps = [torch.randn(2, N, dtype=torch.float64, generator=gen) for _ in range(3)]
    total = sum(kernel.evaluate(x, prepared).sum() for x in steps)  # one y-side adjoint sweep for all steps
    (grad,) = torch.autograd.grad(total, y)
    (expected,) = torch.autograd.grad(sum(kernel(x, y).sum() for x in steps), y)
    torch.testing.assert_close(grad, expected, atol=1e-12, rtol=0)


def test_product_kernel_of_thirty_qubits_needs_no_statevector(gen):
    """k = Π_q k_q for reps=1: checked against one-qubit kernels of the same circuit family."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProductKernelWarning)
        big, one = QuantumKernel(FeatureMap(30, dtype=torch.float64)), QuantumKernel(FeatureMap(1, dtype=torch.float64))
    x = torch.randn(3, 30, dtype=torch.float64, generator=gen)
    y = torch.randn(2, 30, dtype=torch.float64, generator=gen)
    expected = torch.stack([one(x[:, q : q + 1], y[:, q : q + 1]) for q in range(30)]).prod(0)
    torch.testing.assert_close(big(x, y), expected, atol=1e-12, rtol=0)
    with pytest.raises(MemoryError, match="states of 30 qubits"):
        big.states(x)


def test_gradient_choice_is_checked():
    with pytest.raises(ValueError, match=r"QuantumKernel: expected gradient in \('adjoint', 'parameter-shift'\), got 'finite'"):
        QuantumKernel(FeatureMap(2, reps=2), gradient="finite")
