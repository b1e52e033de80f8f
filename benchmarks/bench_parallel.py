"""Wall time of a hardware evaluation: sentence batches in parallel vs one after another.

On a device most of a job's wall time is waiting (queue, network, result retrieval), not
computing. This benchmark evaluates a UD-EWT QK-LSTM checkpoint (trained here for one epoch on
the exact executor, or ``--checkpoint``) on ``aer-noisy:manila`` whose jobs each wait
``--latency`` seconds before their result, once with ``--parallel-batches 1`` and once with
``--workers``, in one process, and prints both wall times, their ratio, the estimate's job
rounds (the ratio to expect when waiting dominates), and checks that both runs gave identical
numbers. ``--latency 0`` measures the compute alone (local simulation is CPU-bound: expect ≈ 1×).

    python benchmarks/bench_parallel.py [--latency 2] [--sentences 8] [--batch-size 2] [--workers 4]
        [--shots 256] [--checkpoint runs/ud/model.pt] [--data path/to/en_ewt-ud-dev.conllu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch
from qiskit.primitives import BaseSamplerV2

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.evaluation.backend import evaluate_checkpoint
from qk_lstm_qiskit.evaluation.options import JobPolicy
from qk_lstm_qiskit.hardware.backends import ResolvedBackend, resolve_backend
from qk_lstm_qiskit.training.experiment import run_training

ROOT = Path(__file__).resolve().parent.parent
UD_CONFIG = ROOT / "configs" / "ud_ewt_qklstm.yaml"
UD_DATA = Path("/work/shared/data/ud_english_ewt/en_ewt-ud-dev.conllu")


class LatencySampler(BaseSamplerV2):
    """Runs on ``inner``; each job's ``result()`` first waits ``latency`` seconds (a queue stand-in)."""

    def __init__(self, inner: BaseSamplerV2, latency: float) -> None:
        self.inner, self.latency = inner, latency

    def run(self, pubs, *, shots=None):
        job = self.inner.run(pubs, shots=shots)
        latency = self.latency

        class Waiting:
            def __getattr__(self, name):
                return getattr(job, name)

            def result(self):
                time.sleep(latency)
                return job.result()

        return Waiting()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds each job waits (default 2)")
    parser.add_argument("--sentences", type=int, default=8, help="validation sentences to tag (default 8)")
    parser.add_argument("--batch-size", type=int, default=2, help="sentences per batch (default 2)")
    parser.add_argument("--workers", type=int, default=4, help="parallel batches (default 4)")
    parser.add_argument("--shots", type=int, default=256)
    parser.add_argument("--checkpoint", help="a qk-lstm model.pt (default: train one UD-EWT epoch here)")
    parser.add_argument("--data", default=str(UD_DATA), help="UD-EWT CoNLL-U file")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ProductKernelWarning)
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_parallel_"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        if not Path(args.data).exists():
            raise SystemExit(f"bench_parallel: UD-EWT not found at {args.data}; pass --data or --checkpoint")
        config = load_config(UD_CONFIG, overrides={"data": {"source": args.data}, "train": {"epochs": 1}})
        run_training(config, work / "ud", progress=False)
        checkpoint = work / "ud" / "model.pt"
    rows = {}
    for workers in (1, args.workers):
        local = resolve_backend("aer-noisy:manila", shots=args.shots, seed=0)
        rb = ResolvedBackend(name="aer-noisy:manila+latency", kind="aer-noisy", device=local.device,
                             sampler=LatencySampler(local.sampler, args.latency), pass_manager=local.pass_manager,
                             shots=args.shots)
        start = time.perf_counter()
        metrics = evaluate_checkpoint(checkpoint, resolved=rb, max_sentences=args.sentences,
                                      batch_size=args.batch_size, jobs=JobPolicy(parallel_batches=workers),
                                      out_dir=work / f"eval-{workers}")
        rows[workers] = (time.perf_counter() - start, metrics)
    print(f"{args.sentences} sentences in batches of {args.batch_size}, {args.shots} shots, "
          f"{args.latency:g} s wait per job")
    print("| parallel batches | jobs | job rounds (estimate) | wall time | accuracy | mean abs kernel diff |")
    print("|---|---|---|---|---|---|")
    for workers, (seconds, m) in rows.items():
        print(f"| {workers} | {m['jobs_submitted']} | {m['estimate']['rounds']} | {seconds:.1f} s | "
              f"{m['accuracy']:.4f} | {m['kernel_mean_abs_diff']:.5f} |")
    (t1, m1), (tw, mw) = rows[1], rows[args.workers]
    same = all(m1[k] == mw[k] for k in ("accuracy", "kernel_mean_abs_diff", "kernel_mean_diff"))
    print(f"sequential / parallel wall time: {t1 / tw:.2f}x (rounds ratio {m1['estimate']['rounds'] / mw['estimate']['rounds']:.2f}); "
          f"identical numbers: {same}")


if __name__ == "__main__":
    main()
