"""Exact fidelity kernels at research scale: this package vs PennyLane and qiskit-machine-learning; QK-LSTM vs nn.LSTM.

Part 1, Gram matrix ``K (N×M)`` of the feature map ``FeatureMap(n, reps=2)`` (N=64, M=16) and its gradient
w.r.t. both inputs (``K.sum().backward()``), for n = 4 … 20 qubits, float32 and float64:

* ``qk_lstm_qiskit``: :class:`QuantumKernel` (adjoint backward), and its ``gradient="parameter-shift"`` path;
* PennyLane ``default.qubit`` (``diff_method="backprop"``, torch interface): the kernel from two batches of
  ``qml.state()``, exactly as this package forms it;
* PennyLane ``lightning.qubit`` (``diff_method="adjoint"``): one compute-uncompute circuit per pair, ⟨P_0⟩;
* qiskit-machine-learning ``FidelityStatevectorKernel`` (forward only, numpy).

All get the same angles (``FeatureMap.angles``); values are cross-checked against this package first
(max |ΔK| printed), then each (implementation, n) runs in a fresh process: best-of-``--repeats`` CPU and wall
seconds, pairs per second, and the peak RSS above the RSS right before the case (VmHWM reset per case). Cases past
``--timeout`` seconds are reported as such.

Part 2, QK-LSTM forward + backward (B=32, T=25, in=32, H=32) against ``nn.LSTM`` of the same sizes, one thread,
best of repeats, each case in a fresh process: the table of issue #11.

    python benchmarks/bench_kernels.py [--qubits 4 6 … 20] [--skip-lstm] [--json out.json]

PennyLane is the optional extra ``bench`` (``pip install -e .[bench]``); the package never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import torch

N_ROWS, M_ROWS, REPS = 64, 16, 2
IMPLEMENTATIONS = ("qk_lstm_qiskit", "qk_lstm_qiskit-shift", "pennylane-default", "pennylane-lightning", "qiskit-ml")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _data(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    return torch.randn(N_ROWS, n, generator=gen, dtype=dtype), torch.randn(M_ROWS, n, generator=gen, dtype=dtype)


def _pennylane_layers(n: int):
    import pennylane as qml

    pairs = [(i, i + 1) for i in range(n - 1)]

    def feature_map(a):
        for layer in range(REPS):
            off = 2 * n * layer
            for i in range(n):
                qml.Hadamard(i)
            for i in range(n):
                qml.RY(a[..., off + i], wires=i)
                qml.RZ(a[..., off + n + i], wires=i)
            for c, t in pairs:
                qml.CNOT([c, t])

    return qml, feature_map


def make_case(impl: str, n: int, dtype: torch.dtype):
    """A function ``(x, y, backward) -> K`` for one implementation (``backward``: also ``K.sum().backward()``)."""
    from qk_lstm_qiskit import FeatureMap, QuantumKernel

    encode = FeatureMap(n, reps=REPS, dtype=dtype).angles  # the same angles for every implementation
    if impl.startswith("qk_lstm_qiskit"):
        kernel = QuantumKernel(
            FeatureMap(n, reps=REPS, dtype=dtype), gradient="parameter-shift" if impl.endswith("shift") else "adjoint"
        )

        def run(x, y, backward):
            x, y = x.clone().requires_grad_(backward), y.clone().requires_grad_(backward)
            k = kernel(x, y)
            if backward:
                k.sum().backward()
            return k.detach()

        return run
    if impl == "pennylane-default":
        qml, feature_map = _pennylane_layers(n)
        device = qml.device("default.qubit", wires=n)

        @qml.qnode(device, interface="torch", diff_method="backprop")
        def state(a):
            feature_map(a)
            return qml.state()

        def run(x, y, backward):
            x, y = x.clone().requires_grad_(backward), y.clone().requires_grad_(backward)
            overlap = state(encode(x)) @ state(encode(y)).conj().T
            k = overlap.real**2 + overlap.imag**2
            if backward:
                k.sum().backward()
            return k.detach()

        return run
    if impl == "pennylane-lightning":
        import numpy as np

        qml, feature_map = _pennylane_layers(n)
        c_dtype = np.complex64 if dtype == torch.float32 else np.complex128
        device = qml.device("lightning.qubit", wires=n, c_dtype=c_dtype)

        @qml.qnode(device, interface="torch", diff_method="adjoint")
        def fidelity(a, b):
            feature_map(a)
            qml.adjoint(feature_map)(b)
            return qml.expval(qml.Projector([0] * n, wires=range(n)))

        def run(x, y, backward):
            x, y = x.clone().requires_grad_(backward), y.clone().requires_grad_(backward)
            ax, ay = encode(x), encode(y)
            k = fidelity(ax.repeat_interleave(M_ROWS, 0), ay.repeat(N_ROWS, 1)).reshape(N_ROWS, M_ROWS)
            if backward:
                k.sum().backward()
            return k.detach()

        return run
    if impl == "qiskit-ml":
        from qiskit_machine_learning.kernels import FidelityStatevectorKernel

        kernel = FidelityStatevectorKernel(feature_map=FeatureMap(n, reps=REPS).circuit)  # binds angles θ[0…P-1]

        def run(x, y, backward):
            if backward:
                raise NotImplementedError("FidelityStatevectorKernel has no gradient")
            return torch.from_numpy(kernel.evaluate(encode(x).double().numpy(), encode(y).double().numpy()))

        return run
    raise ValueError(f"bench_kernels: expected an implementation in {IMPLEMENTATIONS}, got {impl!r}")


def _timed(fn, repeats: int) -> tuple[float, float]:
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def _peak_rss() -> int:
    """Peak resident set size (bytes) since the last reset, from ``/proc/self/status`` (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_case(impl: str, n: int, dtypes: list[str], repeats: int) -> dict:
    """One (implementation, n) in this process: per dtype forward and forward+backward times, peak RSS."""
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    results = {}
    for name in dtypes:
        dtype = DTYPES[name]
        x, y = _data(n, dtype)
        run = make_case(impl, n, dtype)
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        baseline = psutil.Process().memory_info().rss
        entry = {}
        entry["fwd_wall"], entry["fwd_cpu"] = _timed(lambda run=run, x=x, y=y: run(x, y, False), repeats)
        if impl != "qiskit-ml":
            entry["grad_wall"], entry["grad_cpu"] = _timed(lambda run=run, x=x, y=y: run(x, y, True), repeats)
        entry["peak_above_baseline_gb"] = (_peak_rss() - baseline) / 2**30
        results[name] = entry
    return results


def cross_check(n: int, dtype: torch.dtype, impls: list[str]) -> dict[str, float]:
    """max |K_impl − K_qk_lstm_qiskit| on the benchmark's angles (float64 reference when dtype is float64)."""
    x, y = _data(n, dtype)
    reference = make_case("qk_lstm_qiskit", n, dtype)(x, y, True).double()
    return {impl: float((make_case(impl, n, dtype)(x, y, False).double() - reference).abs().max()) for impl in impls}


def _subprocess_case(impl: str, n: int, dtypes: list[str], repeats: int, timeout: float) -> dict | str:
    command = [sys.executable, __file__, "--case", impl, str(n), "--dtypes", *dtypes, "--repeats", str(repeats)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"failed: {last[:80]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


LSTM_CASES = ((4, 4, 1), (4, 4, 2), (6, 8, 2), (8, 8, 2), (12, 8, 2))  # (qubits, R, reps)


def lstm_case(qubits: int, refs: int, reps: int, repeats: int) -> dict:
    """One QK-LSTM case vs nn.LSTM, forward + backward, B=32, T=25, in=32, H=32: best of ``repeats`` CPU seconds
    each, nn.LSTM timed in a block of its own before and after the case (called in turn with the QK-LSTM its
    caches are cold and it looks up to 2x slower; the best of a block is what a quiet machine gives)."""
    from torch import nn

    from qk_lstm_qiskit import QKLSTM

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    x = torch.randn(32, 25, 32, generator=torch.Generator().manual_seed(0))

    def once(model: nn.Module) -> float:
        model.zero_grad()
        start = time.process_time()
        out, _ = model(x)
        out.square().sum().backward()
        return time.process_time() - start

    def best_time(model: nn.Module) -> float:
        once(model)  # the first call builds caches
        return min(once(model) for _ in range(repeats))

    torch.manual_seed(0)
    model, lstm = QKLSTM(32, 32, batch_first=True, num_qubits=qubits, num_references=refs, reps=reps), nn.LSTM(32, 32, batch_first=True)
    cell = model.cells[0]
    route = cell.kernel.route(cell.prepare())
    route = None if route is None else type(route).__name__
    before, seconds, after = best_time(lstm), best_time(model), best_time(lstm)
    base = min(before, after)
    for cell in model.cells:  # the per-step loop, for the record
        cell.fused = False
    loop = best_time(model) if route is not None else seconds
    return {"qubits": qubits, "R": refs, "reps": reps, "route": route or "loop", "seconds": seconds,
            "loop_seconds": loop, "lstm_seconds": base, "ratio": seconds / base}


def lstm_table(repeats: int) -> list[dict]:
    """:func:`lstm_case` for every case of :data:`LSTM_CASES`, each in a fresh process (as a user's model runs:
    the heap another case leaves behind made the 12-qubit case up to 30 % slower)."""
    rows = []
    for qubits, refs, reps in LSTM_CASES:
        command = [sys.executable, __file__, "--lstm-case", str(qubits), str(refs), str(reps), "--lstm-repeats", str(repeats)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  QK-LSTM {qubits:2d} qubits R={refs} reps {reps} ({row['route']}): {row['seconds'] * 1e3:9.1f} ms CPU = "
              f"{row['ratio']:8.1f}x nn.LSTM ({row['lstm_seconds'] * 1e3:.2f} ms); per-step loop "
              f"{row['loop_seconds'] * 1e3:.1f} ms", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14, 16, 18, 20])
    parser.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS), choices=IMPLEMENTATIONS)
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per (implementation, qubits) process")
    parser.add_argument("--max-shift-qubits", type=int, default=12, help="parameter-shift reference up to this n")
    parser.add_argument("--max-pennylane-qubits", type=int, default=16)
    parser.add_argument("--max-lightning-qubits", type=int, default=4,
                        help="lightning.qubit runs one tape per pair (N·M = 1024): 10-50 s per call already at 4-8 qubits")
    parser.add_argument("--skip-lstm", action="store_true")
    parser.add_argument("--skip-gram", action="store_true", help="only the QK-LSTM vs nn.LSTM table")
    parser.add_argument("--lstm-repeats", type=int, default=10)
    parser.add_argument("--json", help="also write every number to this JSON file")
    parser.add_argument("--case", nargs=2, metavar=("IMPL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--lstm-case", nargs=3, type=int, metavar=("QUBITS", "R", "REPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]), args.dtypes, args.repeats)))
        return 0
    if args.lstm_case:
        print(json.dumps(lstm_case(*args.lstm_case, args.lstm_repeats)))
        return 0
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    print(f"Gram N={N_ROWS} x M={M_ROWS}, FeatureMap(n, reps={REPS}, linear); one torch thread; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    others = [i for i in args.implementations if i != "qk_lstm_qiskit"]
    if not args.skip_gram:
        print("cross-check, max |K - K_qk_lstm_qiskit| (float64, 6 qubits):",
              {k: f"{v:.1e}" for k, v in cross_check(6, torch.float64, others).items()})
    results: dict = {"cases": {}}
    for n in [] if args.skip_gram else args.qubits:
        for impl in args.implementations:
            if (impl == "qk_lstm_qiskit-shift" and n > args.max_shift_qubits) or (
                impl.startswith("pennylane") and n > args.max_pennylane_qubits
            ) or (impl == "pennylane-lightning" and n > args.max_lightning_qubits):
                continue
            outcome = _subprocess_case(impl, n, args.dtypes, args.repeats, args.timeout)
            results["cases"][f"{impl}/{n}"] = outcome
            if isinstance(outcome, str):
                print(f"{n:2d} qubits {impl:22s} {outcome}", flush=True)
                continue
            for name, e in outcome.items():
                grad = f"fwd+grad {e['grad_cpu']:8.3f} s CPU ({e['grad_wall']:7.3f} wall)" if "grad_cpu" in e else " " * 38
                pairs = N_ROWS * M_ROWS / e.get("grad_cpu", e["fwd_cpu"])
                print(f"{n:2d} qubits {impl:22s} {name}: fwd {e['fwd_cpu']:8.3f} s CPU ({e['fwd_wall']:7.3f} wall)  {grad}  "
                      f"{pairs:10.0f} pairs/s  peak +{e['peak_above_baseline_gb']:.2f} GB", flush=True)
    print("\nratios, fwd+grad CPU time of the other implementation / qk_lstm_qiskit (higher: this package faster)")
    for n in args.qubits:
        ours = results["cases"].get(f"qk_lstm_qiskit/{n}")
        if not isinstance(ours, dict):
            continue
        cells = []
        for impl in others:
            theirs = results["cases"].get(f"{impl}/{n}")
            for name in args.dtypes:
                key = "grad_cpu" if impl != "qiskit-ml" else "fwd_cpu"
                if isinstance(theirs, dict) and name in theirs:
                    cells.append(f"{impl}/{name} {theirs[name][key] / ours[name][key]:.1f}x")
        print(f"{n:2d} qubits: " + ",  ".join(cells) + "   (qiskit-ml: forward only)")
    if not args.skip_lstm:
        print(f"\nQK-LSTM forward+backward vs nn.LSTM, B=32 T=25 in=32 H=32, best of {args.lstm_repeats}, one thread")
        results["lstm"] = lstm_table(args.lstm_repeats)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
