"""Data-parallel training speed: ``torchrun --nproc_per_node=W qk-lstm train`` for W = 1 and 2 on one config.

Runs the UD English EWT QK-LSTM config (``configs/ud_ewt_qklstm.yaml``) for ``--epochs`` epochs with each
world size, one torch thread per rank, and prints the seconds of the last epoch (as the trainer records them:
training, validation and checkpoints) and the speed-up. Both runs see the same global batches.

    python benchmarks/bench_distributed.py --data PATH/en_ewt-ud-dev.conllu [--config configs/ud_ewt_qklstm.yaml]
        [--epochs 2] [--ranks 1 2]

The treebank is not shipped: UD_English-EWT from https://universaldependencies.org/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "ud_ewt_qklstm.yaml"))
    parser.add_argument("--data", required=True, help="the CoNLL-U treebank (UD_English-EWT's en_ewt-ud-dev.conllu)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "QK_LSTM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    print(f"config {args.config}, {args.epochs} epochs; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in args.ranks:
            out = Path(tmp) / f"w{ranks}"
            command = [str(bin_dir / "torchrun"), f"--nproc_per_node={ranks}", "--no-python", str(bin_dir / "qk-lstm"),
                       "train", "--config", args.config, "--data", str(Path(args.data).resolve()), "--epochs", str(args.epochs), "--out", str(out), "--no-progress"]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            epochs = json.loads((out / "metrics.json").read_text())["epochs"]
            seconds[ranks] = epochs[-1]["seconds"]
            print(f"{ranks} rank(s): last epoch {seconds[ranks]:.2f} s (loss {epochs[-1]['loss']:.4f}, "
                  f"val accuracy {epochs[-1].get('val_accuracy', float('nan')):.4f}); whole run {time.perf_counter() - start:.1f} s",
                  flush=True)
    first = args.ranks[0]
    for ranks in args.ranks[1:]:
        print(f"speed-up {ranks} ranks vs {first}: {seconds[first] / seconds[ranks]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
