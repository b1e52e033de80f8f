"""Kernel error per QPU second of the kernel estimators, against compute–uncompute measured in the same run.

Part A — shot noise alone, exact draws (:mod:`qk_lstm_qiskit.estimators`; no circuit runs): for the
entangling map (``FeatureMap(n, reps=2)``, linear CX) at n = 4…8 and the paper's product map at n = 4,
``N`` inputs and ``M = G·R = 16`` references drawn N(0, 1) like a QK-LSTM step. Every estimator gets the
QPU time per token step that compute–uncompute spends at ``--budget-shots`` shots per circuit,
``T = M·S·(t_cu + t_rep)``; shadows spend it as ``K`` settings × ``m`` shots of the half-depth circuit,
tomography as 3 settings. Durations ``t`` of the ISA circuits on ``fake:torino``. Printed: mean
|k − k_exact|, signed mean, the ratio of mean |error| to compute–uncompute's at equal QPU time, the
exact variance per QPU second from the formulas, and the crossover ``M*``: the references per input
above which shadows beat compute–uncompute (``M* = v_sh (t_u + t_rep) / (mean k(1−k) (t_cu + t_rep))``,
``v_sh`` the single-snapshot variance; compute–uncompute pays per reference, shadows do not).

Part B — circuits on devices (``--devices``; local testing mode of ``fake:*``, and ``aer`` for shot
noise alone): each estimator against the exact kernel on the paper map (4 qubits, 8 inputs × 16
references): mean |k − k_exact|, signed mean and QPU seconds per token step (shots × (t_circ + t_rep),
job overhead and the once-a-day readout calibration excluded) at 3 shot counts.

    python benchmarks/bench_estimators.py [--qubits 4 5 6 7 8] [--budget-shots 1024] [--devices aer fake:manila fake:torino]
        [--shots 256 1024 4096] [--skip-devices] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.estimators.compute_uncompute import simulate_frequencies
from qk_lstm_qiskit.estimators.depolarizing import correct_depolarizing, depolarizing_rate
from qk_lstm_qiskit.estimators.shadows import shadow_variance
from qk_lstm_qiskit.estimators.tomography import kernel_variance
from qk_lstm_qiskit.hardware.backends import resolve_backend
from qk_lstm_qiskit.hardware.timing import circuit_duration, rep_delay
from qk_lstm_qiskit.hardware.mitigation import MitigatedSampler
from qk_lstm_qiskit.hardware.readout import measured_qubits, run_calibration
from qk_lstm_qiskit.kernels.kernel import QuantumKernel
from qk_lstm_qiskit.kernels.measured import ShadowKernel, TomographyKernel
from qk_lstm_qiskit.kernels.sampler import SamplerFidelity

REFERENCES = 16  # G·R of the paper's cell


def _durations(fm: FeatureMap, rb) -> tuple[float, float, float]:
    """``(t_cu, t_u, t_rep)``: the ISA compute–uncompute and half-depth measured circuits on ``rb.device``."""
    cu = SamplerFidelity(fm, rb.sampler, pass_manager=rb.pass_manager).circuit
    measured = ShadowKernel(fm, shots=1).sampler_source(rb.sampler, pass_manager=rb.pass_manager).circuit
    target = rb.device.target
    return circuit_duration(cu, target), circuit_duration(measured, target), rep_delay(rb.device)


def _data(n: int, inputs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(inputs, n, dtype=torch.float64, generator=gen),
            torch.randn(REFERENCES, n, dtype=torch.float64, generator=gen))


def _row(errors: np.ndarray) -> dict[str, float]:
    return {"mean_abs": float(np.abs(errors).mean()), "signed_mean": float(errors.mean())}


def shot_noise(qubits: list[int], budget_shots: int, inputs: int, repeats: int, settings_shots: int, torino) -> list[dict]:
    rows = []
    maps = [(n, 2) for n in qubits] + [(4, 1)]
    for n, reps in maps:
        fm = FeatureMap(n, reps=reps)
        x, y = _data(n, inputs, seed=n)
        exact = QuantumKernel(fm, warn=False)(x, y).numpy()  # (N, M)
        t_cu, t_u, t_rep = _durations(fm, torino)
        budget = REFERENCES * budget_shots * (t_cu + t_rep)  # QPU s per token step
        rng = np.random.default_rng(0)
        ax, ay = fm.angles(x), fm.angles(y)
        found = {}
        cu = np.stack([simulate_frequencies(exact, budget_shots, rng) - exact for _ in range(repeats)])
        found["compute-uncompute"] = {**_row(cu), "shots_per_input": REFERENCES * budget_shots,
                                      "variance_per_second": float((exact * (1 - exact)).mean() * REFERENCES * (t_cu + t_rep))}
        total = int(budget / (t_u + t_rep))  # shots per input of the half-depth circuit
        shadow = ShadowKernel(fm, shots=settings_shots, settings=max(1, total // settings_shots), rng=np.random.default_rng(1))
        shadow.source = shadow.simulated_source(np.random.default_rng(2))
        refs = shadow.prepare(ay)
        sh = np.stack([shadow.evaluate(ax, refs).numpy() - exact for _ in range(repeats)])
        states = shadow.executor.simulate(ax.double()).numpy()
        snapshot = shadow_variance(states, refs, 1, num_settings=1).mean()  # one shot in one random setting
        found["shadows"] = {**_row(sh), "shots_per_input": shadow.settings_per_input * settings_shots,
                            "variance_per_second": float(snapshot * (t_u + t_rep)),
                            "crossover_references": float(snapshot * (t_u + t_rep) / ((exact * (1 - exact)).mean() * (t_cu + t_rep)))}
        if reps == 1:
            tomo = TomographyKernel(fm, shots=max(1, total // 3))
            tomo.source = tomo.simulated_source(np.random.default_rng(3))
            bloch_y = tomo.prepare(ay)
            tm = np.stack([tomo.evaluate(ax, bloch_y).numpy() - exact for _ in range(repeats)])
            bloch_x = tomo.executor.product_bloch(ax.double()).permute(2, 0, 1).numpy()
            found["tomography"] = {**_row(tm), "shots_per_input": 3 * tomo.shots,
                                   "variance_per_second": float(kernel_variance(bloch_x, bloch_y, 1).mean() * 3 * (t_u + t_rep))}
        base = found["compute-uncompute"]["mean_abs"]
        for name, r in found.items():
            rows.append({"map": f"n={n} reps={reps}", "estimator": name, "qpu_seconds_per_token": budget,
                         "error_ratio_vs_cu": r["mean_abs"] / base, "t_cu_us": t_cu * 1e6, "t_u_us": t_u * 1e6, **r})
    return rows


def _calibrate(rb, circuit, shots: int = 10_000):
    qubits = tuple(measured_qubits(circuit)[c] for c in sorted(measured_qubits(circuit)))
    return run_calibration(rb.sampler, qubits, rb.device, shots=shots)


def devices(names: list[str], shot_counts: list[int], torino, inputs: int = 8) -> list[dict]:
    rows = []
    fm = FeatureMap(4, reps=1)
    x, y = _data(4, inputs, seed=0)
    exact = QuantumKernel(fm, warn=False)(x, y).numpy()
    ax, ay = fm.angles(x), fm.angles(y)
    for name in names:
        for shots in shot_counts:
            rb = resolve_backend(name, shots=shots, seed=0)
            timing = rb if rb.device is not None else torino
            t_cu, t_u, t_rep = _durations(fm, timing)
            per_token = {"cu": REFERENCES * shots * (t_cu + t_rep), "tomo": 3 * shots * (t_u + t_rep),
                         "shadows": REFERENCES * shots * (t_u + t_rep)}
            found: dict[str, tuple[np.ndarray, float]] = {}
            start = time.perf_counter()
            cu = SamplerFidelity(fm, rb.sampler, pass_manager=rb.pass_manager)
            found["compute-uncompute"] = (cu(ax, ay).detach().numpy(), per_token["cu"])
            tomo = TomographyKernel(fm, shots=shots)
            tomo.source = tomo.sampler_source(rb.sampler, pass_manager=rb.pass_manager)
            found["tomography (raw readout)"] = (tomo.evaluate(ax, tomo.prepare(ay)).numpy(), per_token["tomo"])
            if rb.device is not None:
                cal = _calibrate(rb, tomo.source.circuit)
                tomo.source.readout = cal.assignment
                found["tomography + 2x2 readout"] = (tomo.evaluate(ax, tomo.prepare(ay)).numpy(), per_token["tomo"])
                # the same shots per input as compute-uncompute, as many settings as the shots allow at 64 each
                shadow = ShadowKernel(fm, shots=64, settings=REFERENCES * shots // 64, rng=np.random.default_rng(1))
                shadow.source = shadow.sampler_source(rb.sampler, pass_manager=rb.pass_manager)
                shadow.source.readout = _calibrate(rb, shadow.source.circuit).assignment
                found["shadows + readout"] = (shadow.evaluate(ax, shadow.prepare(ay)).numpy(), per_token["shadows"])
                m3 = MitigatedSampler(rb.sampler, "m3", device=rb.device, calibration=_calibrate(rb, cu.circuit))
                cu_m3 = SamplerFidelity(fm, m3, pass_manager=rb.pass_manager)
                k_m3 = cu_m3(ax, ay).detach().numpy()
                found["compute-uncompute + M3"] = (k_m3, per_token["cu"])
                echoes = 4  # U(x)U†(x) circuits per job, counted in the cost (amortised over this job's inputs)
                echo = np.array([float(cu_m3(ax[e : e + 1], ax[e : e + 1]).detach()) for e in range(echoes)])
                rate = depolarizing_rate(echo, 4)
                echo_cost = echoes * shots * (t_cu + t_rep) / inputs
                found["compute-uncompute + M3 + depolarising"] = (correct_depolarizing(k_m3, rate, 4),
                                                                  per_token["cu"] + echo_cost)
            seconds = time.perf_counter() - start
            for estimator, (k, qpu) in found.items():
                rows.append({"backend": name, "shots": shots, "estimator": estimator, **_row(k - exact),
                             "qpu_seconds_per_token": qpu, "wall_seconds_all": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    parser.add_argument("--budget-shots", type=int, default=1024)
    parser.add_argument("--inputs", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--settings-shots", type=int, default=8, help="shots per shadow setting (part A)")
    parser.add_argument("--devices", nargs="+", default=["aer", "fake:manila", "fake:torino"])
    parser.add_argument("--shots", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--skip-devices", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ProductKernelWarning)
    torino = resolve_backend("fake:torino", shots=1, seed=0)
    out: dict[str, list[dict]] = {"shot_noise": shot_noise(args.qubits, args.budget_shots, args.inputs, args.repeats,
                                                         args.settings_shots, torino)}
    print(f"A. shot noise alone at equal QPU time per token step (compute-uncompute at {args.budget_shots} shots "
          f"x {REFERENCES} circuits; fake:torino durations)")
    print(f"{'map':<14}{'estimator':<20}{'shots/input':>12}{'QPU s/token':>12}{'mean|err|':>11}{'signed':>10}"
          f"{'err/CU':>8}{'var*s':>11}{'M*':>8}")
    for r in out["shot_noise"]:
        cross = f"{r['crossover_references']:.1f}" if "crossover_references" in r else ""
        print(f"{r['map']:<14}{r['estimator']:<20}{r['shots_per_input']:>12,}{r['qpu_seconds_per_token']:>12.3f}"
              f"{r['mean_abs']:>11.5f}{r['signed_mean']:>+10.5f}{r['error_ratio_vs_cu']:>8.2f}"
              f"{r['variance_per_second']:>11.2e}{cross:>8}")
    if not args.skip_devices:
        out["devices"] = devices(args.devices, args.shots, torino)
        print("\nB. paper map (4 qubits, 8 inputs x 16 references) on devices: error against the exact kernel")
        print(f"{'backend':<13}{'shots':>6}  {'estimator':<40}{'mean|err|':>10}{'signed':>10}{'QPU s/token':>12}")
        for r in out["devices"]:
            print(f"{r['backend']:<13}{r['shots']:>6}  {r['estimator']:<40}{r['mean_abs']:>10.4f}{r['signed_mean']:>+10.4f}"
                  f"{r['qpu_seconds_per_token']:>12.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
