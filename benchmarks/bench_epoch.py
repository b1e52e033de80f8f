"""One training epoch of the QK-LSTM tagger (exact executor) vs the ``nn.LSTM`` tagger, same hidden size.

Both taggers train for one epoch over the training split of a CoNLL-U file (default: UD English
EWT dev, 10 % held out) with the same batches, optimizer and batch size (32), in one process.
Prints wall and CPU time of both, their ratio (target: QK-LSTM ≤ 3× ``nn.LSTM``), and as a
reference a classical LSTM cell run through the same Python time loop (``RecurrentStack``): the
floor of any per-step loop against ``nn.LSTM``'s fused one. ``--profile`` adds a torch-profiler
table of a few QK-LSTM training batches (where the time goes). One torch thread by default.

    python benchmarks/bench_epoch.py [--data PATH.conllu] [--hidden-dim 16] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from qk_lstm_qiskit.nn.cell import GatedCell
from qk_lstm_qiskit.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from qk_lstm_qiskit.data.corpus import make_batches
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.nn.lstm import RecurrentStack
from qk_lstm_qiskit.nn.tagger import Tagger, build_tagger, count_parameters
from qk_lstm_qiskit.tasks.tagging import TaggingTask
from qk_lstm_qiskit.training.trainer import Trainer, seed_everything
from qk_lstm_qiskit.data.tasks import prepare_data

UD_DEV = Path("/work/shared/data/ud_english_ewt/en_ewt-ud-dev.conllu")


class _LinearGatesCell(GatedCell):
    """A classical LSTM cell run through the same Python time loop (``RecurrentStack``) as the QK-LSTM.

    Its epoch time is the floor any per-time-step Python loop pays over ``nn.LSTM``'s fused loop.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.linear = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    def gates(self, v: torch.Tensor, *unused) -> torch.Tensor:
        return self.linear(v).view(-1, 4, self.hidden_size)  # (N, 4, H)


def loop_floor_tagger(vocab_size: int, num_tags: int, embedding_dim: int, hidden_dim: int) -> Tagger:
    stack = RecurrentStack(lambda size, layer: _LinearGatesCell(size, hidden_dim), embedding_dim, hidden_dim, 1, True)
    return Tagger(vocab_size, num_tags, embedding_dim, stack)


def time_epoch(model_config: ModelConfig | None, task, train_config: TrainConfig, repeats: int,
               model: nn.Module | None = None) -> tuple[float, float, int]:
    """Best-of-``repeats`` wall and CPU seconds of one training epoch, and the trainable parameter count.

    CPU time (``time.process_time``) is reported next to wall time because the machine may be
    shared: with one torch thread it is what the epoch costs, whatever else is running.
    """
    seed_everything(train_config.seed)
    if model is None:
        model = build_tagger(model_config, len(task.words), len(task.tags))
    wall = cpu = float("inf")
    for _ in range(repeats):
        tagging = TaggingTask(RunConfig(task="tagging", train=train_config), words=task.words, tags=task.tags)
        trainer = Trainer(model, train_config, tagging, progress=False)
        start, start_cpu = time.perf_counter(), time.process_time()
        trainer.fit(task.train)
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu, count_parameters(model)


def profile_batches(model_config: ModelConfig, task, batch_size: int, num_batches: int, rows: int) -> str:
    """Torch-profiler table (self CPU time) of forward + backward + Adam on ``num_batches`` batches."""
    from torch.profiler import ProfilerActivity, profile

    seed_everything(0)
    model = build_tagger(model_config, len(task.words), len(task.tags))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    batches = make_batches(task.train, batch_size, pad_index=task.words.pad_index or 0)[:num_batches]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            log_probs = model(batch.words)
            loss = torch.nn.functional.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), batch.tags.reshape(-1), ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(UD_DEV), help="CoNLL-U file (default: UD English EWT dev)")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--min-freq", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--bucket-batches", type=int, default=16,
                        help="length buckets as in configs/ud_ewt_*.yaml (0: plain shuffled batches)")
    parser.add_argument("--embedding-dim", type=int, default=8)
    parser.add_argument("--hidden-dim", type=int, default=16)
    parser.add_argument("--num-qubits", type=int, default=4)
    parser.add_argument("--num-references", type=int, default=4)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="epochs timed per model (best is kept)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1; with 2 threads on a loaded 2-core machine small matmuls "
                        "wait on each other and the QK-LSTM epoch was 5x slower)")
    parser.add_argument("--profile", action="store_true", help="also profile QK-LSTM training batches")
    parser.add_argument("--profile-batches", type=int, default=5)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ProductKernelWarning)
    torch.set_num_threads(args.threads)

    task = prepare_data(
        DataConfig(source=args.data, validation_fraction=args.validation_fraction, min_freq=args.min_freq)
    )
    tokens = sum(len(w) for w, _ in task.train)
    train_config = TrainConfig(epochs=1, lr=0.01, batch_size=args.batch_size, bucket_batches=args.bucket_batches, seed=0)
    common = dict(embedding_dim=args.embedding_dim, hidden_dim=args.hidden_dim)
    qk = ModelConfig(kind="qk-lstm", num_qubits=args.num_qubits, num_references=args.num_references, reps=args.reps, **common)
    lstm = ModelConfig(kind="lstm", **common)
    print(
        f"data: {args.data}  training split: {len(task.train)} sentences, {tokens} tokens, "
        f"{-(-len(task.train) // args.batch_size)} batches of <= {args.batch_size} (bucket_batches {args.bucket_batches})  "
        f"torch threads: {torch.get_num_threads()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    qk_wall, qk_cpu, qk_params = time_epoch(qk, task, train_config, args.repeats)
    print(f"QK-LSTM (exact, {args.num_qubits} qubits, R={args.num_references}, reps={args.reps}, H={args.hidden_dim}): "
          f"{qk_wall:.2f} s/epoch wall, {qk_cpu:.2f} s CPU  ({qk_params} parameters)")
    lstm_wall, lstm_cpu, lstm_params = time_epoch(lstm, task, train_config, args.repeats)
    print(f"nn.LSTM (H={args.hidden_dim}): {lstm_wall:.2f} s/epoch wall, {lstm_cpu:.2f} s CPU  ({lstm_params} parameters)")
    seed_everything(0)
    floor = loop_floor_tagger(len(task.words), len(task.tags), args.embedding_dim, args.hidden_dim)
    floor_wall, floor_cpu, _ = time_epoch(None, task, train_config, args.repeats, model=floor)
    print(f"reference: classical LSTM cell in the same Python time loop (RecurrentStack): {floor_wall:.2f} s/epoch wall, "
          f"{floor_cpu:.2f} s CPU = {floor_cpu / lstm_cpu:.2f}x nn.LSTM CPU (the floor of a per-step loop)")
    ratio, cpu_ratio = qk_wall / lstm_wall, qk_cpu / lstm_cpu
    print(f"ratio QK-LSTM / nn.LSTM: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU  "
          f"(target <= 3x: {'met' if max(ratio, cpu_ratio) <= 3 else 'MISSED'})  load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "qk_lstm_seconds": qk_wall, "lstm_seconds": lstm_wall, "ratio": ratio,
            "qk_lstm_cpu_seconds": qk_cpu, "lstm_cpu_seconds": lstm_cpu, "cpu_ratio": cpu_ratio,
            "loop_floor_seconds": floor_wall, "loop_floor_cpu_seconds": floor_cpu,
            "qk_lstm_parameters": qk_params, "lstm_parameters": lstm_params, "threads": torch.get_num_threads(),
            "args": vars(args),
        }, indent=2) + "\n", encoding="utf-8")
    if args.profile:
        print(profile_batches(qk, task, args.batch_size, args.profile_batches, rows=25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
