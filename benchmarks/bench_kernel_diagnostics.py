"""Kernels beyond the paper: QSVC on ``ad_hoc_data``, concentration table, geometric differences.

1. QSVC on qiskit-ml's ``ad_hoc_data`` (20 training / 10 test points per class, 2 features, gap 0.3),
   ZZ map (reps 2): the adapter ``QuantumKernel.to_qiskit()`` against qiskit-ml's
   ``FidelityStatevectorKernel`` on the same circuit — max Gram difference, test accuracy, and the
   time of both Gram computations (train + test, median of ``--repeat``) with their ratio.
2. Concentration: mean and variance of off-diagonal ``k(s x, s x')``, ``x ~ U[-π, π]^n``, for the
   paper map and ZZ (reps 1 and 2, linear entanglement), ``s`` = 1 and 0.1, n = 2 … ``--max-qubits``.
3. Geometric difference g(K_RBF ‖ K_Q) (Huang et al.) on the paper task's projected inputs (the
   initial QK-LSTM's u_t, 9 tokens) and on ``ad_hoc_data``'s training set.

    python benchmarks/bench_kernel_diagnostics.py [--max-qubits 12] [--samples 24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from qiskit.circuit.library import zz_feature_map
from qiskit_machine_learning.algorithms import QSVC
from qiskit_machine_learning.datasets import ad_hoc_data
from qiskit_machine_learning.kernels import FidelityStatevectorKernel
from qiskit_machine_learning.utils import algorithm_globals

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.circuits.library import build_feature_map
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.kernels.diagnostics import concentration, geometric_difference, rbf_gram
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.nn.tagger import build_tagger
from qk_lstm_qiskit.training.trainer import seed_everything


def _timed(function, repeat: int):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def qsvc_section(repeat: int) -> None:
    algorithm_globals.random_seed = 12345
    x_train, y_train, x_test, y_test = ad_hoc_data(training_size=20, test_size=10, n=2, gap=0.3, one_hot=False)
    circuit = zz_feature_map(2, reps=2)
    kernels = {"FidelityStatevectorKernel": FidelityStatevectorKernel(feature_map=circuit),
               "QuantumKernel.to_qiskit()": QuantumKernel(FeatureMap.from_circuit(circuit)).to_qiskit()}
    grams, seconds, accuracy = {}, {}, {}
    for name, kernel in kernels.items():
        grams[name], seconds[name] = _timed(lambda k=kernel: (k.evaluate(x_train), k.evaluate(x_test, x_train)), repeat)
        accuracy[name] = QSVC(quantum_kernel=kernel).fit(x_train, y_train).score(x_test, y_test)
    (ref_train, ref_test), (our_train, our_test) = grams.values()
    diff = max(np.abs(ref_train - our_train).max(), np.abs(ref_test - our_test).max())
    print("## QSVC on ad_hoc_data (40 train, 20 test), ZZ reps 2\n")
    print("| kernel | test accuracy | Gram matrices (40×40 + 20×40), s |\n|---|---|---|")
    for name in kernels:
        print(f"| {name} | {accuracy[name]:.2f} | {seconds[name]:.4f} |")
    ref, ours = seconds.values()
    print(f"\nmax |K_adapter − K_qiskit-ml| = {diff:.1e}; time ratio qiskit-ml / adapter = {ref / ours:.1f}×\n")


def concentration_section(max_qubits: int, samples: int) -> None:
    qubits = tuple(range(2, max_qubits + 1, 2))
    print(f"## Concentration: off-diagonal k(s x, s x'), {samples} points x ~ U[-π, π]^n\n")
    print("| map | reps | n | product | mean (s=1) | var (s=1) | mean (s=0.1) | var (s=0.1) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in ("paper", "zz"):
        for reps in (1, 2):
            for n in qubits:
                start = time.perf_counter()
                rows = concentration(lambda q, kind=kind, reps=reps: build_feature_map(kind, q, reps=reps), (n,), (1.0, 0.1),
                                     num_samples=samples)
                elapsed = time.perf_counter() - start
                a, b = rows
                print(f"| {kind} | {reps} | {n} | {a['product_kernel']} | {a['mean']:.2e} | {a['var']:.2e} | "
                      f"{b['mean']:.2e} | {b['var']:.2e} | {elapsed:.1f} |", flush=True)
    print()


def _paper_task_inputs() -> torch.Tensor:
    config = load_config()
    data = prepare_data(config.data)
    seed_everything(0)
    tagger = build_tagger(config.model, len(data.words), len(data.tags)).eval()
    cell = tagger.recurrent.cells[0]
    cell.fused = False
    collected = []
    handle = cell.projection.register_forward_hook(lambda m, a, out: collected.append(out.detach()))
    with torch.no_grad():
        for words, _ in data.train:
            tagger(torch.tensor([words]))
    handle.remove()
    return torch.cat(collected).double()


def geometric_section() -> None:
    algorithm_globals.random_seed = 12345
    x_adhoc = torch.tensor(ad_hoc_data(training_size=20, test_size=10, n=2, gap=0.3, one_hot=False)[0])
    samples = {"paper task u_t (9 × 4)": _paper_task_inputs(), "ad_hoc_data train (40 × 2)": x_adhoc}
    print("## Geometric difference g(K_RBF ‖ K_Q), λ = 1e-3 (Huang et al.)\n")
    print("| sample | paper reps 1 | paper reps 2 | ZZ reps 1 | ZZ reps 2 |\n|---|---|---|---|---|")
    for name, x in samples.items():
        classical = rbf_gram(x.numpy())
        cells = []
        for kind, reps in (("paper", 1), ("paper", 2), ("zz", 1), ("zz", 2)):
            kernel = QuantumKernel(build_feature_map(kind, x.size(1), reps=reps))
            with torch.no_grad():
                cells.append(geometric_difference(kernel(x, x).numpy(), classical))
        print(f"| {name} | " + " | ".join(f"{g:.2f}" for g in cells) + " |")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-qubits", type=int, default=12, help="16 takes ~20 min on a loaded 2-core machine")
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ProductKernelWarning)
    qsvc_section(args.repeat)
    geometric_section()
    concentration_section(args.max_qubits, args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
