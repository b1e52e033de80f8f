"""QK-LSTM (4 and 6 qubits) vs nn.LSTM vs VQC-QLSTM on UD English EWT, over several seeds.

Trains the budget-matched configs ``configs/ud_ewt_{qklstm,lstm,qlstm}.yaml`` plus a larger
QK-LSTM (6 qubits, 8 references per gate, ``reps=2``: an entangling kernel) on the same
90/10 split of the EWT dev file, for ``--seeds`` training seeds, and writes a markdown table
of validation accuracy (mean ± std over seeds), trainable parameters and seconds per epoch.

Every run is a normal ``qk-lstm train`` run folder under ``--out`` (checkpoints, metrics). A
rerun reuses finished runs and resumes unfinished ones (``last.pt``): nothing is trained twice
or overwritten.

    python benchmarks/compare_ud.py --out runs/compare_ud [--seeds 3] [--epochs 15] [--models qk4,lstm]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from statistics import mean, pstdev
from typing import Any

import torch

from qk_lstm_qiskit.config import RunConfig, load_config
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.training.experiment import run_training
from qk_lstm_qiskit.data.tasks import prepare_data

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
UD_DEV = Path("/work/shared/data/ud_english_ewt/en_ewt-ud-dev.conllu")

# name -> (label, YAML, model overrides)
SETTINGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "qk4": ("QK-LSTM, 4 qubits, R=4, reps=1 (paper circuit)", "ud_ewt_qklstm.yaml", {}),
    "qk6": (
        "QK-LSTM, 6 qubits, R=8, reps=2",
        "ud_ewt_qklstm.yaml",
        {"num_qubits": 6, "num_references": 8, "reps": 2, "hidden_dim": 14},
    ),
    "lstm": ("nn.LSTM", "ud_ewt_lstm.yaml", {}),
    "qlstm": ("VQC-QLSTM, 4 qubits, depth 1", "ud_ewt_qlstm.yaml", {}),
}


def run_config(name: str, data: str, seed: int, epochs: int | None) -> RunConfig:
    _, yaml_name, model = SETTINGS[name]
    overrides: dict[str, dict[str, Any]] = {"data": {"source": data}, "train": {"seed": seed}}
    if epochs is not None:
        overrides["train"]["epochs"] = epochs
    if model:
        overrides["model"] = model
    return load_config(CONFIGS / yaml_name, overrides)


def train_or_reuse(config: RunConfig, out_dir: Path) -> dict[str, Any]:
    """Metrics of the run in ``out_dir``: reused when finished, resumed when started, else trained."""
    metrics_path = out_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        if len(metrics.get("epochs", [])) >= config.train.epochs and metrics.get("config") == config.to_dict():
            print(f"  reusing {out_dir}", flush=True)
            return metrics
    resume = (out_dir / "last.pt").is_file()
    print(f"  {'resuming' if resume else 'training'} {out_dir}", flush=True)
    return run_training(config, out_dir, resume=resume, progress=False)


def summarise(runs: dict[str, list[dict[str, Any]]], vocab_size: int) -> list[dict[str, Any]]:
    rows = []
    for name, results in runs.items():
        final = [r["epochs"][-1]["val_accuracy"] for r in results]
        best = [max(e["val_accuracy"] for e in r["epochs"]) for r in results]
        seconds = [e["seconds"] for r in results for e in r["epochs"]]
        config = results[0]["config"]["model"]
        rows.append({
            "name": name,
            "label": SETTINGS[name][0],
            "hidden_dim": config["hidden_dim"],
            "seeds": len(results),
            "epochs": len(results[0]["epochs"]),
            "final_val_accuracy": final,
            "best_val_accuracy": best,
            "parameters": results[0]["trainable_parameters"],
            "parameters_outside_embedding": results[0]["trainable_parameters"] - vocab_size * config["embedding_dim"],
            "seconds_per_epoch": mean(seconds),
        })
    return rows


def markdown(rows: list[dict[str, Any]], data: str, note: str) -> str:
    def spread(values: list[float]) -> str:
        return f"{mean(values):.4f} ± {pstdev(values):.4f}"

    lines = [
        f"Validation accuracy on a 10 % split of `{Path(data).name}` (UPOS, 17 tags); mean ± std over seeds.",
        "",
        "| Model | H | Trainable parameters (outside embedding) | Seeds × epochs | Val. accuracy, last epoch | Val. accuracy, best epoch | s / epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['hidden_dim']} | {r['parameters']:,} ({r['parameters_outside_embedding']}) | {r['seeds']} × {r['epochs']} | "
            f"{spread(r['final_val_accuracy'])} | {spread(r['best_val_accuracy'])} | {r['seconds_per_epoch']:.1f} |"
        )
    return "\n".join(lines) + "\n\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(UD_DEV), help="CoNLL-U file (default: UD English EWT dev)")
    parser.add_argument("--out", default="runs/compare_ud", help="folder for the runs and the table")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=int, help="override the configs' epochs")
    parser.add_argument("--models", default=",".join(SETTINGS), help=f"comma-separated subset of {','.join(SETTINGS)}")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: small ops lose more to thread hand-offs than they gain)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown or not names:
        parser.error(f"--models: expected names from {','.join(SETTINGS)}, got {args.models!r}")
    if args.seeds < 1:
        parser.error(f"--seeds: expected >= 1, got {args.seeds}")
    warnings.simplefilter("ignore", ProductKernelWarning)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    start = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        print(f"{SETTINGS[name][0]}:", flush=True)
        runs[name] = []
        for seed in range(args.seeds):
            config = run_config(name, args.data, seed, args.epochs)
            runs[name].append(train_or_reuse(config, out / name / f"seed-{seed}"))
            last = runs[name][-1]["epochs"][-1]
            print(f"    seed {seed}: val accuracy {last['val_accuracy']:.4f} after {last['epoch']} epochs", flush=True)
    config = run_config(names[0], args.data, 0, args.epochs)
    vocab_size = len(prepare_data(config.data).words)
    rows = summarise(runs, vocab_size)
    note = (
        f"Every setting has the same word embedding ({vocab_size:,} training words × "
        f"{config.model.embedding_dim}); s / epoch = training + validation pass, exact executor, "
        f"{args.threads} torch thread(s), wall clock on a shared machine. Total time {time.perf_counter() - start:.0f} s."
    )
    table = markdown(rows, args.data, note)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_ud.md").write_text(table, encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(table)
    print(f"outputs: {out}/compare_ud.md, {out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
