"""Seconds per training epoch of the paper's QK-LSTM tagger: sampler path vs naive build vs exact.

In one process, the paper's POS task (two sentences, Adam lr 0.1, batch size 1, the 183-parameter
QK-LSTM of ``configs/paper_pos.yaml``) trains for ``--epochs`` epochs from the same initial weights:

* ``sampler``: the package's sampler path — per time step one ``QuantumKernel`` call = one sampler
  job with one PUB (N·16 bindings), and one parameter-shift job with one PUB in the backward pass;
* ``naive``: the same model built in the qiskit-machine-learning docs style — one ``SamplerQNN`` +
  ``TorchConnector`` per reference vector and gate (16 QNN calls per time step), stock
  ``ParamShiftSamplerGradient`` (one PUB per shifted binding);
* ``exact``: the torch statevector executor.

Both sampler builds run on each of two Aer samplers at ``--shots`` shots: ``aer`` — the package's
``--backend aer`` sampler (:class:`~qk_lstm_qiskit.hardware.aer_sampler.AerProbabilitySampler`: Aer computes
probabilities, numpy draws the shots) — and ``aer-v2``, ``qiskit_aer.primitives.SamplerV2``
(per-shot strings). Prints seconds per epoch, jobs / PUBs / bindings per epoch, and the ratios:
naive/sampler on the same sampler (target ≥ 30×), and sampler/exact.

    python benchmarks/bench_sampler.py [--epochs 2] [--shots 1024] [--aer-threads 1] [--torch-threads 1]
        [--skip naive-aer-v2 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from qiskit.primitives import BaseSamplerV2
from torch import nn

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.circuits.feature_map import FeatureMap
from qk_lstm_qiskit.kernels.kernel import PreparedSide, QuantumKernel
from qk_lstm_qiskit.nn.tagger import build_tagger, count_parameters
from qk_lstm_qiskit.tasks.tagging import TaggingTask
from qk_lstm_qiskit.training.trainer import Trainer, seed_everything

PAPER_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "paper_pos.yaml"


class CountingSampler(BaseSamplerV2):
    """Delegates to a sampler and counts jobs, PUBs and parameter bindings."""

    def __init__(self, inner: BaseSamplerV2) -> None:
        self.inner = inner
        self.jobs = self.pubs = self.bindings = 0

    def run(self, pubs, *, shots=None):
        pubs = list(pubs)
        self.jobs += 1
        self.pubs += len(pubs)
        for pub in pubs:
            values = torch.as_tensor(pub[1]) if len(pub) > 1 else torch.zeros(1, 0)
            self.bindings += values.numel() // max(values.shape[-1], 1) if values.dim() else 1
        return self.inner.run(pubs) if shots is None else self.inner.run(pubs, shots=shots)

    def reset(self) -> dict[str, int]:
        counts = {"jobs": self.jobs, "pubs": self.pubs, "bindings": self.bindings}
        self.jobs = self.pubs = self.bindings = 0
        return counts


def _all_zeros(outcome: int) -> int:
    return 0 if outcome == 0 else 1


class NaiveKernel(QuantumKernel):
    """The docs-style build: one ``SamplerQNN`` + ``TorchConnector`` per reference vector.

    ``evaluate(x (N, d), prepared (M refs)) -> (N, M)`` calls the m-th QNN on
    ``[angles(x), angles(y_m)]``; gradients w.r.t. every circuit input, stock
    ``ParamShiftSamplerGradient``. Same ``feature_map`` submodule as ``QuantumKernel``, so the
    tagger's ``state_dict`` is unchanged.
    """

    def __init__(self, feature_map: FeatureMap, sampler: BaseSamplerV2, num_references: int) -> None:
        super().__init__(feature_map)
        from qiskit_machine_learning.connectors import TorchConnector
        from qiskit_machine_learning.neural_networks import SamplerQNN

        circuit, x, y = feature_map.fidelity_circuit()
        self.connectors = [  # a list, not a ModuleList: their empty weights stay out of state_dict
            TorchConnector(
                SamplerQNN(
                    circuit=circuit, sampler=sampler, input_params=[*x, *y], interpret=_all_zeros,
                    output_shape=2, input_gradients=True,
                )
            )
            for _ in range(num_references)
        ]

    def prepare(self, y: torch.Tensor) -> PreparedSide:
        return PreparedSide(self.feature_map.angles(y), None)

    def evaluate(self, x: torch.Tensor, prepared: PreparedSide, **options) -> torch.Tensor:
        """``(N, M)`` kernel; ``QuantumKernel.evaluate``'s keyword options (``check``) are ignored."""
        ax, ay = self.feature_map.angles(x), prepared.angles.to(x.dtype)  # (N, P), (M, P)
        columns = [
            connector(torch.cat([ax, ay[m].expand(ax.size(0), -1)], dim=1))[:, 0]  # (N,)
            for m, connector in enumerate(self.connectors)
        ]
        return torch.stack(columns, dim=1).to(x.dtype)  # (N, M)


def build(executor: str, config, data, sampler: BaseSamplerV2 | None) -> nn.Module:
    seed_everything(config.train.seed)
    model = build_tagger(
        config.model, len(data.words), len(data.tags), sampler=sampler if executor == "sampler" else None
    )
    if executor == "naive":
        for cell in model.recurrent.cells:
            cell.kernel = NaiveKernel(cell.kernel.feature_map, sampler, 4 * cell.num_references)
            cell.fused = False  # the fused layer is for exact product kernels; this one samples
    return model


def train(name: str, executor: str, config, data, counting: CountingSampler | None) -> dict:
    model = build(executor, config, data, counting)
    trainer = Trainer(model, config.train, TaggingTask(config, words=data.words, tags=data.tags), progress=False)
    epochs, calls = [], []
    for epoch in range(config.train.epochs):
        trainer.config = replace(config.train, epochs=epoch + 1)
        record = trainer.fit(data.train)[-1]
        epochs.append(record)
        if counting is not None:
            calls.append(counting.reset())
        print(
            f"  {name:14s} epoch {epoch + 1}: {record['seconds']:8.2f} s  loss {record['loss']:.4f}  "
            f"accuracy {record['accuracy']:.3f}" + (f"  {calls[-1]}" if calls else ""),
            flush=True,
        )
    seconds = [r["seconds"] for r in epochs]
    return {
        "executor": executor,
        "trainable_parameters": count_parameters(model),
        "seconds_per_epoch": statistics.mean(seconds),
        "epoch_seconds": seconds,
        "loss": [r["loss"] for r in epochs],
        "accuracy": [r["accuracy"] for r in epochs],
        "sampler_calls_per_epoch": calls[-1] if calls else None,
    }


RUNS = {  # name: (model build, sampler)
    "sampler-aer": ("sampler", "aer"),
    "naive-aer": ("naive", "aer"),
    "sampler-aer-v2": ("sampler", "aer-v2"),
    "naive-aer-v2": ("naive", "aer-v2"),
    "exact": ("exact", None),
}


def make_aer_sampler(kind: str, shots: int, seed: int, threads: int) -> BaseSamplerV2:
    """``aer``: the package's ``--backend aer`` sampler; ``aer-v2``: ``qiskit_aer.primitives.SamplerV2``."""
    if kind == "aer":
        from qk_lstm_qiskit.hardware.aer_sampler import AerProbabilitySampler

        return AerProbabilitySampler(default_shots=shots, seed=seed, max_parallel_threads=threads)
    from qiskit_aer.primitives import SamplerV2

    backend_options = {"max_parallel_threads": threads} if threads > 0 else {}
    return SamplerV2(default_shots=shots, seed=seed, options={"backend_options": backend_options})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0, help="model/data seed and Aer seed")
    parser.add_argument(
        "--aer-threads", type=int, default=1,
        help="Aer max_parallel_threads (default 1; 0 = Aer's default, all cores: slow on shared cores)",
    )
    parser.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (default 1, as the CLI)")
    parser.add_argument("--skip", nargs="*", default=[], choices=tuple(RUNS))
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    for name in ("epochs", "shots"):
        if getattr(args, name) <= 0:
            parser.error(f"expected --{name} > 0, got {getattr(args, name)}")
    warnings.simplefilter("ignore", ProductKernelWarning)
    torch.set_num_threads(args.torch_threads)

    config = load_config(PAPER_CONFIG, {"train": {"epochs": args.epochs, "seed": args.seed}})
    data = prepare_data(config.data)
    print(
        f"paper POS task: {len(data.train)} sentences, batch size {config.train.batch_size}, {args.epochs} epochs; "
        f"{args.shots} shots, Aer threads {args.aer_threads}; torch threads {torch.get_num_threads()}"
    )
    warm_up = replace(config, train=replace(config.train, epochs=1))  # imports, Aer start-up: untimed
    Trainer(
        build("sampler", warm_up, data, make_aer_sampler("aer", args.shots, args.seed, args.aer_threads)),
        warm_up.train, TaggingTask(warm_up, words=data.words, tags=data.tags), progress=False,
    ).fit(data.train)
    results = {}
    for name, (executor, sampler_kind) in RUNS.items():
        if name in args.skip:
            continue
        counting = None
        if sampler_kind is not None:
            counting = CountingSampler(make_aer_sampler(sampler_kind, args.shots, args.seed, args.aer_threads))
        results[name] = train(name, executor, config, data, counting)
    print("\nrun              s/epoch   jobs/epoch   PUBs/epoch   bindings/epoch")
    for name, r in results.items():
        calls = r["sampler_calls_per_epoch"] or {"jobs": 0, "pubs": 0, "bindings": 0}
        print(f"{name:14s} {r['seconds_per_epoch']:9.2f} {calls['jobs']:12d} {calls['pubs']:12d} {calls['bindings']:16d}")
    pairs = {
        "naive/sampler on the package's Aer sampler (target >= 30x)": ("naive-aer", "sampler-aer"),
        "naive/sampler on qiskit_aer SamplerV2": ("naive-aer-v2", "sampler-aer-v2"),
        "naive on qiskit_aer SamplerV2 / sampler path on the package's Aer sampler": ("naive-aer-v2", "sampler-aer"),
        "sampler/exact": ("sampler-aer", "exact"),
    }
    ratios = {
        label: results[a]["seconds_per_epoch"] / results[b]["seconds_per_epoch"]
        for label, (a, b) in pairs.items()
        if a in results and b in results
    }
    for label, value in ratios.items():
        print(f"{label}: {value:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
