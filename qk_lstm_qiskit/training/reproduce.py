"""Table I and Fig. 3 of the paper: QK-LSTM, LSTM and QLSTM on the two-sentence POS task."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from statistics import mean, pstdev

import numpy as np

from ..config import MODEL_KINDS, load_config
from ..data.series import is_series_source
from ..data.tasks import prepare_data
from ..rundir import atomic_write, check_out_dir, claim_out_dir, write_json_atomic, write_text_atomic
from ..validation import check_int
from .experiment import RUN_OUTPUTS, run_training

__all__ = ["reproduce", "table_one", "plot_curves"]

OUTPUTS = ("table1.md", "fig3.png", "summary.json")
LABELS = {"qk-lstm": "QK-LSTM", "lstm": "LSTM", "qlstm": "QLSTM"}


def _epochs_to_perfect(run: dict) -> int | None:
    return next((r["epoch"] for r in run["epochs"] if r["accuracy"] == 1.0), None)


def table_one(runs: dict[str, list[dict]]) -> str:
    """Markdown Table I from the runs of each model (the config of the first run per model)."""
    kinds = [k for k in MODEL_KINDS if k in runs]
    config = {k: runs[k][0]["config"] for k in kinds}
    data = prepare_data(load_config(overrides={"data": config[kinds[0]]["data"]}).data)

    def row(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(str(cell(k)) for k in kinds) + " |"

    def spread(values: list[float], fmt: str = ".3f") -> str:
        return f"{mean(values):{fmt}} ± {pstdev(values):{fmt}}"

    def reached(k: str) -> str:
        hits = [_epochs_to_perfect(r) for r in runs[k]]
        done = [h for h in hits if h is not None]
        return f"{len(done)}/{len(hits)}" + (f" (epoch {min(done)}–{max(done)})" if done else "")

    lines = [
        "| Parameter | " + " | ".join(LABELS[k] for k in kinds) + " |",
        "|---|" + "---|" * len(kinds),
        row("Epochs", lambda k: config[k]["train"]["epochs"]),
        row("Learning rate", lambda k: f"{config[k]['train']['lr']} ({config[k]['train']['optimizer']})"),
        row("Number of tags", lambda k: len(data.tags)),
        row("Vocabulary size", lambda k: len(data.words)),
        row("Embedding dimension", lambda k: config[k]["model"]["embedding_dim"]),
        row("Hidden dimension", lambda k: config[k]["model"]["hidden_dim"]),
        row("Qubits", lambda k: "–" if k == "lstm" else config[k]["model"]["num_qubits"]),
        row("Total trainable parameters", lambda k: runs[k][0]["trainable_parameters"]),
        row(f"Final training accuracy (mean ± std, {len(runs[kinds[0]])} seeds)",
            lambda k: spread([r["final_accuracy"] for r in runs[k]])),
        row("Final training loss", lambda k: spread([r["final_loss"] for r in runs[k]], ".1e")),
        row("Seeds reaching 100 % accuracy", reached),
    ]
    return "\n".join(lines) + "\n"


def plot_curves(runs: dict[str, list[dict]], path: Path) -> None:
    """Fig. 3: training accuracy (a) and loss (b) per epoch, mean line and min–max band over seeds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))  # no pyplot: leaves the caller's (e.g. notebook's) backend alone
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for kind, kind_runs in runs.items():
        for ax, key in zip(axes, ("accuracy", "loss")):
            curves = np.array([[r[key] for r in run["epochs"]] for run in kind_runs])  # (seeds, epochs)
            epochs = np.arange(1, curves.shape[1] + 1)
            line = ax.plot(epochs, curves.mean(0), label=f"{LABELS[kind]} ({kind_runs[0]['trainable_parameters']} params)")
            ax.fill_between(epochs, curves.min(0), curves.max(0), color=line[0].get_color(), alpha=0.2)
    axes[0].set(xlabel="epoch", ylabel="training accuracy", title="(a) accuracy", ylim=(0, 1.02))
    axes[1].set(xlabel="epoch", ylabel="training loss (NLL)", title="(b) loss", yscale="log")
    for ax, where in zip(axes, ("lower right", "upper right")):
        ax.grid(alpha=0.3)
        ax.legend(loc=where)
    n = len(next(iter(runs.values())))
    fig.suptitle(f"POS tagging, paper's task: mean over {n} seeds, band = min–max")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def reproduce(
    out: Path, *, seeds: int = 3, epochs: int | None = None, config_path: Path | None = None, progress: bool = True,
    kinds: tuple[str, ...] = MODEL_KINDS,
) -> str:
    """Train every model of ``kinds`` on seeds ``0 … seeds-1``; write Table I, Fig. 3 and a summary.

    Returns the markdown table. Runs are kept in ``out/<kind>-s<seed>/``.
    """
    check_int("reproduce", "seeds", seeds, 1)
    check_int("reproduce", "epochs", epochs, 1, optional=True)
    out = check_out_dir(out, command="reproduce", outputs=OUTPUTS)
    for kind in kinds:  # every run folder before the first run: a repeated reproduce stops here, not after hours
        for seed in range(seeds):
            check_out_dir(out / f"{kind}-s{seed}", command="reproduce", outputs=RUN_OUTPUTS, flag="run")
    base = load_config(config_path)
    if is_series_source(base.data.source):
        raise ValueError(f"reproduce: expected a tagging config (Table I and Fig. 3 are the paper's POS task), got "
                         f"data.source {base.data.source!r}; forecasting models are compared by qk-lstm train each")
    if epochs is not None:
        base = dataclasses.replace(base, train=dataclasses.replace(base.train, epochs=epochs))
    with claim_out_dir(out, command="reproduce", outputs=OUTPUTS) as out:
        return _reproduce(out, base, seeds=seeds, progress=progress, kinds=kinds)


def _reproduce(out: Path, base, *, seeds: int, progress: bool, kinds: tuple[str, ...]) -> str:
    runs: dict[str, list[dict]] = {}
    for kind in kinds:
        for seed in range(seeds):
            config = dataclasses.replace(
                base,
                model=dataclasses.replace(base.model, kind=kind),
                train=dataclasses.replace(base.train, seed=seed),
            )
            runs.setdefault(kind, []).append(run_training(config, out / f"{kind}-s{seed}", progress=progress))
    table = table_one(runs)
    write_text_atomic(table, out / "table1.md")
    with atomic_write(out / "fig3.png") as tmp:
        plot_curves(runs, tmp)
    summary = {
        kind: {
            "trainable_parameters": rs[0]["trainable_parameters"],
            "final_accuracy": [r["final_accuracy"] for r in rs],
            "final_loss": [r["final_loss"] for r in rs],
            "epochs_to_100": [_epochs_to_perfect(r) for r in rs],
            "seconds": [sum(e["seconds"] for e in r["epochs"]) for r in rs],
        }
        for kind, rs in runs.items()
    }
    write_json_atomic(summary, out / "summary.json")
    return table
