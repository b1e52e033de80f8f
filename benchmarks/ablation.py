"""When is a quantum-kernel LSTM competitive? A resumable one-factor-at-a-time ablation (issue #16).

Varies one factor at a time from the paper's QK-LSTM (``configs/ud_ewt_qklstm.yaml``: 4 qubits,
R = 4 references per gate, feature map ``paper`` reps 1, no trainable layers, fixed references,
``paper`` weighting), then combines the best level of every factor (``best``), next to an
``nn.LSTM`` and the VQC-QLSTM, on UD-EWT tagging and on forecasting (``shm``, ``co2``), at two
parameter budgets: ``paper`` (≈ 500 trainable parameters outside the embedding, embedding 8) and
``medium`` (≈ 3,500, embedding 32). Every cell's ``hidden_dim`` is chosen so that its parameters
outside the embedding (the whole model for forecasting) come closest to the budget's target.

Every run is a normal ``qk-lstm train`` run folder ``OUT/TASK/BUDGET/CELL/seed-S``; a rerun reuses
finished runs (same config) and resumes unfinished ones (``last.pt``): an interrupted sweep
continues where it stopped (a ``best`` whose levels changed since, e.g. with more seeds, runs in
``best-2``, ``best-3``, …). Cheap cells run first; ``--jobs N`` trains in N worker processes
(one torch thread each). Writes ``OUT/ablation.md`` (tables and a summary), ``OUT/ablation.png``
(score against parameters per model family) and ``OUT/summary.json`` (every number), for the tasks,
budgets and cells of the invocation (a filtered rerun rewrites them for its subset; the runs stay).

    python benchmarks/ablation.py --out runs/ablation [--seeds 3] [--jobs 2] [--tasks ud,shm,co2]
        [--budgets paper,medium] [--cells paper,zz_r2,best,lstm] [--epochs-ud 10] [--epochs-forecast 50]
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import heapq
import json
import math
import multiprocessing
import os
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean, pstdev
from typing import Any, Callable

import torch

from qk_lstm_qiskit.config import ModelConfig, RunConfig, load_config
from qk_lstm_qiskit.data.series import is_series_source
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.nn.forecaster import build_forecaster
from qk_lstm_qiskit.nn.tagger import build_tagger, count_parameters
from qk_lstm_qiskit.rundir import write_json_atomic
from qk_lstm_qiskit.training.experiment import run_training

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
UD_DEV = Path("/work/shared/data/ud_english_ewt/en_ewt-ud-dev.conllu")
WALL_FILE = "ablation_wall.json"  # beside metrics.json: wall seconds of the calls that trained the run

# cell -> (factor, level, model overrides of the paper's QK-LSTM); "base" is every factor's base level
ONE_FACTOR: dict[str, tuple[str, str, dict[str, Any]]] = {
    "paper": ("base", "paper's QK-LSTM (4 qubits, R=4, paper map reps 1)", {}),
    "qubits8": ("qubits", "8 qubits", {"num_qubits": 8}),
    "refs16": ("references per gate", "R = 16", {"num_references": 16}),
    "paper_r2": ("feature map", "paper map, reps 2", {"reps": 2}),
    # ZZ needs a small bandwidth to learn (qk-lstm diagnose: its kernel concentrates at s = 1)
    "zz_r2": ("feature map", "ZZ map, reps 2, input_scaling 0.1", {"feature_map": "zz", "reps": 2, "input_scaling": 0.1}),
    "layers1": ("trainable layers", "1 trainable RY·RZ layer", {"trainable_layers": 1}),
    "refs_data": ("reference mode", "references from data", {"references": "data"}),
    "refs_learned": ("reference mode", "learned references", {"references": "learned"}),
    "per_gate": ("weighting", "per-gate weights", {"weighting": "per_gate"}),
}
BASELINES = {"lstm": "nn.LSTM", "qlstm": "VQC-QLSTM (4 qubits, depth 1)"}
CELLS = (*ONE_FACTOR, "best", *BASELINES)
FACTORS = tuple(dict.fromkeys(f for f, _, _ in ONE_FACTOR.values() if f != "base"))


@dataclass(frozen=True)
class Task:
    label: str
    configs: dict[str, str]  # family (qk-lstm | lstm | qlstm) -> YAML in configs/
    score: str  # what the table shows
    higher_is_better: bool
    series: str | None = None  # forecasting: data.source
    forecast: dict[str, Any] = field(default_factory=dict)  # forecast overrides


_FORECAST = {"qk-lstm": "forecast_qklstm.yaml", "lstm": "forecast_lstm.yaml", "qlstm": "forecast_qlstm.yaml"}
TASKS = {
    "ud": Task("UD-EWT tagging (dev file split 90/10)",
               {"qk-lstm": "ud_ewt_qklstm.yaml", "lstm": "ud_ewt_lstm.yaml", "qlstm": "ud_ewt_qlstm.yaml"},
               "val. accuracy, best epoch", True),
    "shm": Task("damped pendulum forecasting", _FORECAST, "val. MSE, best epoch", False, series="shm"),
    # as compare_forecast.py: the CO₂ test span lies above all training values, windows relative to their last value
    "co2": Task("Mauna Loa CO₂ forecasting (relative windows)", _FORECAST, "val. MSE, best epoch", False,
                series="co2", forecast={"relative": True}),
}
BUDGETS = {"paper": (500, 8), "medium": (3500, 32)}  # name -> (target parameters outside the embedding, UD embedding_dim)
BUDGET_TOLERANCE = 0.1  # a combination fits its budget when some hidden size comes within 10 % of the target
# relative seconds per epoch (measured on ud/paper, see the report) and per task: cheap work runs first
CELL_COST = {"lstm": 0.2, "qlstm": 3.3, "paper": 0.4, "qubits8": 0.4, "refs16": 0.6, "paper_r2": 1.9, "zz_r2": 5.9,
             "layers1": 1.2, "refs_data": 0.35, "refs_learned": 0.35, "per_gate": 0.35, "best": 3}
TASK_COST = {"ud": 10, "shm": 1, "co2": 2}
BUDGET_COST = {"paper": 1, "medium": 3}


def family(cell: str) -> str:
    return cell if cell in BASELINES else "qk-lstm"


# ---------------------------------------------------------------------------------------- budgets
def parameters_outside_embedding(model: ModelConfig, num_tags: int | None) -> int:
    """Trainable parameters of the model built from ``model`` (tagger: without the embedding)."""
    if num_tags is None:
        return count_parameters(build_forecaster(model, 1))
    tagger = build_tagger(model, 1, num_tags)
    return count_parameters(tagger) - tagger.embedding.weight.numel()


def choose_hidden(model: ModelConfig, target: int, count: Callable[[ModelConfig], int]) -> tuple[int, int]:
    """``(hidden_dim, parameters)`` with parameters closest to ``target`` (ties: the smaller H).

    Parameters grow with H, so: double H until it reaches the target, bisect for the smallest H
    that does, then keep the closer of it and H - 1.
    """
    cache: dict[int, int] = {}

    def n(h: int) -> int:
        if h not in cache:
            cache[h] = count(replace(model, hidden_dim=h))
        return cache[h]

    hi = 1
    while n(hi) < target and hi < 1 << 16:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # smallest h in [lo, hi] with n(h) >= target
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if n(mid) < target else (lo, mid)
    best = min((h for h in (lo - 1, lo) if h >= 1), key=lambda h: (abs(n(h) - target), h))
    return best, n(best)


# ---------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    task: str
    budget: str
    cell: str
    seed: int
    config: RunConfig
    out_dir: Path
    cost: float

    @property
    def name(self) -> str:
        return f"{self.task}/{self.budget}/{self.cell}/seed-{self.seed}"


def finished(config: RunConfig, out_dir: Path) -> bool:
    """``out_dir`` holds the finished run of ``config`` (same config, every epoch, final metrics)."""
    path = out_dir / "metrics.json"
    if not path.is_file():
        return False
    metrics = json.loads(path.read_text(encoding="utf-8"))
    final_key = "test_rmse" if is_series_source(config.data.source) else "final_accuracy"
    return (metrics.get("config") == config.to_dict() and len(metrics.get("epochs", [])) >= config.train.epochs
            and final_key in metrics)


def train_or_reuse(config: RunConfig, out_dir: Path) -> dict[str, Any]:
    """compare_ud's ``train_or_reuse`` for both tasks: reuse a finished run, resume a started one
    (``last.pt``), else train; returns ``{"status", "wall_seconds"}`` (wall seconds also kept in
    ``out_dir/ablation_wall.json``, summed over the calls that trained the run; a finished run
    without that file counts its epochs' seconds)."""
    wall_path = out_dir / WALL_FILE
    before = json.loads(wall_path.read_text(encoding="utf-8"))["wall_seconds"] if wall_path.is_file() else 0.0
    if finished(config, out_dir):
        if not wall_path.is_file():  # trained by another script: its epochs' seconds
            before = sum(e["seconds"] for e in json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))["epochs"])
        return {"status": "reused", "wall_seconds": before}
    resume = (out_dir / "last.pt").is_file()
    start = time.perf_counter()
    run_training(config, out_dir, resume=resume, progress=False)
    wall = before + time.perf_counter() - start
    write_json_atomic({"wall_seconds": wall}, wall_path)
    return {"status": "resumed" if resume else "trained", "wall_seconds": wall}


def saved_model(out_dir: Path) -> ModelConfig | None:
    """The model config of the run started in ``out_dir`` (``None``: no run there)."""
    path = out_dir / "metrics.json"
    if not path.is_file():
        return None
    return load_config(overrides={"model": json.loads(path.read_text(encoding="utf-8"))["config"]["model"]}).model


def _init_worker() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ProductKernelWarning)


def _work(config: dict[str, Any], out_dir: str) -> dict[str, Any]:
    return train_or_reuse(load_config(overrides=config), Path(out_dir))


def execute(runs: list[Run], jobs: int, done: Callable[[Run, dict[str, Any]], list[Run]]) -> None:
    """Train ``runs`` cheapest first, ``jobs`` at a time; ``done(run, result)`` may add runs (``best``)."""
    queue = [(r.cost, i, r) for i, r in enumerate(runs)]
    heapq.heapify(queue)
    counter = len(queue)

    def push(new: list[Run]) -> None:
        nonlocal counter
        for r in new:
            heapq.heappush(queue, (r.cost, counter, r))
            counter += 1

    if jobs == 1:
        while queue:
            run = heapq.heappop(queue)[2]
            push(done(run, train_or_reuse(run.config, run.out_dir)))
        return
    # spawn: fresh interpreters (no forked thread pools); they import this file by its folder
    here = str(Path(__file__).resolve().parent)
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        context = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker) as pool:
            running: dict[futures.Future, Run] = {}
            while queue or running:
                while queue and len(running) < jobs:
                    run = heapq.heappop(queue)[2]
                    running[pool.submit(_work, run.config.to_dict(), str(run.out_dir))] = run
                finished_now, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in finished_now:
                    push(done(running.pop(future), future.result()))
    finally:
        if added:
            sys.path.remove(here)


# ---------------------------------------------------------------------------------------- scores
def run_scores(task: Task, metrics: dict[str, Any]) -> dict[str, Any]:
    epochs = metrics["epochs"]
    row: dict[str, Any] = {"epochs": len(epochs), "seconds_per_epoch": mean(e["seconds"] for e in epochs),
                           "trainable_parameters": metrics["trainable_parameters"]}
    if task.series is None:
        row |= {"score": max(e["val_accuracy"] for e in epochs), "last": epochs[-1]["val_accuracy"]}
    else:
        row |= {"score": min(e["val_loss"] for e in epochs), "last": epochs[-1]["val_loss"],
                "test_rmse": metrics["test_rmse"], "test_mse": metrics["test_rmse"] ** 2}
    return row


def spread_of_difference(a: list[float], b: list[float]) -> float:
    """Spread of ``mean(a) - mean(b)``: the seed stds added in quadrature (independent runs)."""
    return math.hypot(pstdev(a), pstdev(b))


def best_overrides(task: Task, means: dict[str, float], fits: Callable[[dict[str, Any]], bool] = lambda o: True,
                   ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Model overrides combining, per factor, the level with the best mean score (``means`` by cell;
    the base ``paper`` unless a variation beats it), the level chosen per factor, and the winners left
    out because they would break the budget: the winners are added largest gain first, and one after
    which ``fits(overrides)`` fails (no hidden size within ``BUDGET_TOLERANCE`` of the target, e.g.
    learned references of 16 per gate on 8 qubits at ≈ 500 parameters) keeps its base level."""
    sign = 1 if task.higher_is_better else -1
    winners: dict[str, str] = {}
    for factor in FACTORS:
        levels = [c for c, (f, _, _) in ONE_FACTOR.items() if f == factor and c in means]
        if levels:
            winners[factor] = max(["paper", *levels], key=lambda c: (sign * means[c], c == "paper"))  # ties keep the base
    overrides: dict[str, Any] = {}
    chosen = dict.fromkeys(winners, "paper")
    dropped = []
    for factor, winner in sorted(winners.items(), key=lambda fw: -sign * (means[fw[1]] - means["paper"])):
        if winner == "paper":
            continue
        if fits(overrides | ONE_FACTOR[winner][2]):
            overrides |= ONE_FACTOR[winner][2]
            chosen[factor] = winner
        else:
            dropped.append(winner)
    return overrides, chosen, dropped


def same_as(overrides: dict[str, Any]) -> str | None:
    """The one-factor cell whose overrides equal ``overrides``, if any."""
    return next((c for c, (_, _, o) in ONE_FACTOR.items() if o == overrides), None)


# ---------------------------------------------------------------------------------------- sweep
class Sweep:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}  # (task, budget) -> plan and results
        self.num_tags: dict[str, int | None] = {}

    def base_config(self, task: str, budget: str, cell: str, seed: int, model: dict[str, Any]) -> RunConfig:
        spec = TASKS[task]
        if spec.series is None:
            data: dict[str, Any] = {"source": self.args.data}
            model = {"embedding_dim": BUDGETS[budget][1], **model}
            epochs = self.args.epochs_ud
        else:
            data = {"source": spec.series}
            epochs = self.args.epochs_forecast
        overrides: dict[str, dict[str, Any]] = {"data": data, "model": model, "train": {"seed": seed}}
        if epochs is not None:
            overrides["train"]["epochs"] = epochs
        forecast = dict(spec.forecast)
        if spec.series == "shm" and self.args.series_length is not None:
            forecast["length"] = self.args.series_length
        if forecast:
            overrides["forecast"] = forecast
        return load_config(CONFIGS / spec.configs[family(cell)], overrides)

    def sized(self, task: str, budget: str, cell: str, model: dict[str, Any], *, quiet: bool = False) -> dict[str, Any]:
        """The cell's config for seed 0 with the hidden_dim closest to the budget, and its counts."""
        if task not in self.num_tags:
            config = self.base_config(task, budget, "lstm", 0, {})
            self.num_tags[task] = None if TASKS[task].series else len(prepare_data(config.data).tags)
        config = self.base_config(task, budget, cell, 0, model)
        target = BUDGETS[budget][0]
        hidden, count = choose_hidden(config.model, target,
                                      lambda m: parameters_outside_embedding(m, self.num_tags[task]))
        where = "in the whole model" if TASKS[task].series else "outside the embedding"
        if not quiet:
            print(f"{task}/{budget}/{cell}: H = {hidden}, {count} parameters {where} (target {target})", flush=True)
        return {"model": {**model, "hidden_dim": hidden}, "hidden_dim": hidden, "parameters": count, "target": target}

    def fits(self, task: str, budget: str, model: dict[str, Any]) -> bool:
        """Some hidden size gives the model ``model`` a count within ``BUDGET_TOLERANCE`` of the budget."""
        sized = self.sized(task, budget, "best", model, quiet=True)
        return abs(sized["parameters"] - sized["target"]) <= BUDGET_TOLERANCE * sized["target"]

    def runs_of(self, task: str, budget: str, cell: str, sized: dict[str, Any]) -> list[Run]:
        epochs = self.base_config(task, budget, cell, 0, {}).train.epochs
        cost = CELL_COST[cell] * TASK_COST[task] * BUDGET_COST[budget] * epochs
        configs = [self.base_config(task, budget, cell, s, sized["model"]) for s in range(self.args.seeds)]
        folder = self.out / task / budget / cell
        if cell == "best":  # other scores (more seeds or epochs) can pick other levels: never resume a different model
            k = 1
            while any(saved_model(folder / f"seed-{s}") not in (None, c.model) for s, c in enumerate(configs)):
                k += 1
                folder = self.out / task / budget / f"best-{k}"
        return [Run(task, budget, cell, s, c, folder / f"seed-{s}", cost) for s, c in enumerate(configs)]

    def plan(self) -> list[Run]:
        runs = []
        for task in self.args.tasks:
            for budget in self.args.budgets:
                group: dict[str, Any] = {"cells": {}, "results": {}, "pending": set()}
                self.groups[task, budget] = group
                for cell in self.args.cells:
                    if cell == "best":
                        continue
                    model = ONE_FACTOR[cell][2] if cell in ONE_FACTOR else {}
                    group["cells"][cell] = self.sized(task, budget, cell, model)
                    cell_runs = self.runs_of(task, budget, cell, group["cells"][cell])
                    group["pending"] |= {r.name for r in cell_runs if cell in ONE_FACTOR}
                    runs += cell_runs
                group["want_best"] = "best" in self.args.cells
        return runs

    def done(self, run: Run, result: dict[str, Any]) -> list[Run]:
        """Record a finished run; when its group's one-factor cells are all done, plan ``best``."""
        group = self.groups[run.task, run.budget]
        metrics = json.loads((run.out_dir / "metrics.json").read_text(encoding="utf-8"))
        row = {"seed": run.seed, "out_dir": str(run.out_dir), **result, **run_scores(TASKS[run.task], metrics)}
        group["results"].setdefault(run.cell, []).append(row)
        print(f"  {run.name}: {result['status']}, score {row['score']:.4f} ({row['epochs']} epochs, "
              f"{row['seconds_per_epoch']:.1f} s/epoch, {result['wall_seconds']:.0f} s)", flush=True)
        group["pending"].discard(run.name)
        if run.cell not in ONE_FACTOR or group["pending"] or not group["want_best"]:
            return []
        group["want_best"] = False
        means = {c: mean(r["score"] for r in rows) for c, rows in group["results"].items() if c in ONE_FACTOR}
        overrides, chosen, dropped = best_overrides(TASKS[run.task], means,
                                                    lambda o: self.fits(run.task, run.budget, o))
        equal = same_as(overrides)
        group["best"] = {"levels": chosen, "overrides": overrides, "same_as": equal, "over_budget": dropped}
        if dropped:
            print(f"{run.task}/{run.budget}/best: left out (over the budget): {', '.join(dropped)}", flush=True)
        if equal is not None:
            print(f"{run.task}/{run.budget}/best: the best levels are cell {equal}, not run again", flush=True)
            return []
        group["cells"]["best"] = self.sized(run.task, run.budget, "best", overrides)
        return self.runs_of(run.task, run.budget, "best", group["cells"]["best"])


# ---------------------------------------------------------------------------------------- outputs
def cell_rows(task: Task, group: dict[str, Any]) -> list[dict[str, Any]]:
    results = group["results"]
    lstm = [r["score"] for r in results.get("lstm", [])]
    rows = []
    for cell in CELLS:
        if cell not in results:
            continue
        runs = sorted(results[cell], key=lambda r: r["seed"])
        scores = [r["score"] for r in runs]
        row = {
            "cell": cell,
            "factor": "best levels combined" if cell == "best" else ONE_FACTOR[cell][0] if cell in ONE_FACTOR else "baseline",
            "level": (" + ".join(c for c in group["best"]["levels"].values() if c != "paper")
                      + (f" (in {folder}/)" if (folder := Path(runs[0]["out_dir"]).parent.name) != "best" else "")
                      + (f"; left out, over the budget: {', '.join(group['best']['over_budget'])}"
                         if group["best"].get("over_budget") else "")
                      if cell == "best"
                      else ONE_FACTOR[cell][1] if cell in ONE_FACTOR else BASELINES[cell]),
            "family": family(cell),
            **{k: group["cells"][cell][k] for k in ("hidden_dim", "parameters", "target")},
            "seeds": len(runs), "epochs": runs[0]["epochs"],
            "scores": scores, "mean": mean(scores), "std": pstdev(scores),
            "last_mean": mean(r["last"] for r in runs), "last_std": pstdev([r["last"] for r in runs]),
            "seconds_per_epoch": mean(r["seconds_per_epoch"] for r in runs),
            "wall_seconds_per_run": mean(r["wall_seconds"] for r in runs),
            "runs": runs,
        }
        if task.series is not None:
            row |= {"test_mse_mean": mean(r["test_mse"] for r in runs), "test_mse_std": pstdev([r["test_mse"] for r in runs])}
        if lstm:
            row |= {"vs_lstm": row["mean"] - mean(lstm), "vs_lstm_spread": spread_of_difference(scores, lstm)}
        rows.append(row)
    return rows


def conclusions(task: Task, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Best QK-LSTM vs LSTM and QLSTM, and which factors moved the score beyond the seed spread."""
    by = {r["cell"]: r for r in rows}
    sign = 1 if task.higher_is_better else -1
    qk = [r for r in rows if r["family"] == "qk-lstm"]
    out: dict[str, Any] = {"moved": [], "not_moved": []}
    if qk:
        best = max(qk, key=lambda r: sign * r["mean"])
        out["best_qk"] = best["cell"]
        for other in ("lstm", "qlstm"):
            if other in by:
                out[f"best_qk_vs_{other}"] = {"difference": best["mean"] - by[other]["mean"],
                                              "spread": spread_of_difference(best["scores"], by[other]["scores"])}
    if "paper" in by:
        for r in rows:
            if r["cell"] in ONE_FACTOR and r["cell"] != "paper":
                d = r["mean"] - by["paper"]["mean"]
                s = spread_of_difference(r["scores"], by["paper"]["scores"])
                entry = {"cell": r["cell"], "factor": r["factor"], "difference": d, "spread": s,
                         "better": sign * d > 0}
                if min(r["seeds"], by["paper"]["seeds"]) < 2:
                    out.setdefault("one_seed", []).append(entry)
                else:
                    out["moved" if abs(d) > s else "not_moved"].append(entry)
    return out


def markdown(tables: dict[tuple[str, str], dict[str, Any]], command: str, total: float) -> str:
    lines = ["# Ablation: when is a quantum-kernel LSTM competitive?", "", f"Rerun: `{command}`", ""]
    for (task, budget), t in tables.items():
        spec = TASKS[task]
        digits = ".4f" if spec.series is None else ".3g"  # MSEs span 1e-5 … 0.4: significant digits

        def v(x: float, sign: str = "", digits: str = digits) -> str:
            return f"{x:{sign}{digits}}"
        target = BUDGETS[budget][0]
        better = "higher" if spec.higher_is_better else "lower"
        where = "outside the embedding" if spec.series is None else "whole model"
        lines += [f"## {task} / {budget} budget: {spec.label}, ≈ {target:,} parameters ({where})", "",
                  f"Score: {spec.score} ({better} is better), mean ± std over seeds; Δ = cell − nn.LSTM "
                  f"({'positive' if spec.higher_is_better else 'negative'} is better).", "",
                  f"| Cell | Factor changed | H | Parameters ({where}) | Score | Last epoch | Δ vs LSTM ± spread | "
                  f"{'Test MSE (series units) | ' if spec.series else ''}s / epoch | Wall s / run |",
                  "|---|---|---|---|---|---|---|" + ("---|" if spec.series else "") + "---|---|"]
        for r in t["rows"]:
            vs = f"{v(r['vs_lstm'], '+')} ± {v(r['vs_lstm_spread'])}" if "vs_lstm" in r and r["cell"] != "lstm" else "–"
            test = f"{r['test_mse_mean']:.4g} ± {r['test_mse_std']:.2g} | " if spec.series else ""
            lines.append(f"| {r['cell']} | {r['factor']}: {r['level']} | {r['hidden_dim']} | {r['parameters']:,} | "
                         f"{v(r['mean'])} ± {v(r['std'])} | {v(r['last_mean'])} ± {v(r['last_std'])} | {vs} | {test}"
                         f"{r['seconds_per_epoch']:.2f} | {r['wall_seconds_per_run']:.1f} |")
        best = t.get("best")
        if best is not None and best["same_as"] is not None:
            left_out = f" (left out, over the budget: {', '.join(best['over_budget'])})" if best.get("over_budget") else ""
            lines.append(f"| best | best levels combined: = `{best['same_as']}`{left_out}, not run again | | | | | | "
                         f"{'| ' if spec.series else ''}| |")
        lines.append("")
        c = t["conclusions"]
        if "best_qk" in c:
            for other in ("lstm", "qlstm"):
                if f"best_qk_vs_{other}" in c:
                    d = c[f"best_qk_vs_{other}"]
                    lines.append(f"- Best QK-LSTM (`{c['best_qk']}`) vs {BASELINES[other]}: {v(d['difference'], '+')} ± "
                                 f"{v(d['spread'])}.")
        if c["moved"]:
            lines.append("- Moved the score by more than the seed spread (vs `paper`): " + ", ".join(
                f"`{e['cell']}` {v(e['difference'], '+')} ± {v(e['spread'])} ({'better' if e['better'] else 'worse'})"
                for e in c["moved"]) + ".")
        if c.get("one_seed"):
            lines.append("- One seed, no spread to judge by (vs `paper`): " + ", ".join(
                f"`{e['cell']}` {v(e['difference'], '+')}" for e in c["one_seed"]) + ".")
        if c["not_moved"]:
            lines.append("- Within the seed spread: " + ", ".join(
                f"`{e['cell']}` {v(e['difference'], '+')} ± {v(e['spread'])}" for e in c["not_moved"]) + ".")
        lines.append("")
    lines += ["Spread of a difference: the two cells' seed stds (population) added in quadrature. Parameters are "
              "counted on the model built from each config (`trainable_parameters`, less the embedding for tagging); "
              "H is the hidden size closest to the budget. s / epoch = training + validation pass, exact executor, "
              "1 torch thread per run, wall clock on a shared machine; wall s / run = the calls that trained it "
              "(a reused run keeps its recorded time).",
              "", f"Total wall time of this sweep invocation: {total:.0f} s.", ""]
    return "\n".join(lines)


def plot(tables: dict[tuple[str, str], dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(task for task, _ in tables))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    styles = {"qk-lstm": ("tab:blue", "o", "QK-LSTM cells"), "lstm": ("tab:orange", "s", "nn.LSTM"),
              "qlstm": ("tab:green", "^", "VQC-QLSTM")}
    for ax, task in zip(axes[0], tasks):
        for (t, budget), table in tables.items():
            if t != task:
                continue
            for fam, (color, marker, label) in styles.items():
                rows = [r for r in table["rows"] if r["family"] == fam]
                if rows:
                    ax.errorbar([r["parameters"] for r in rows], [r["mean"] for r in rows], yerr=[r["std"] for r in rows],
                                fmt=marker, color=color, capsize=3, label=label, alpha=0.8,
                                markerfacecolor=color if budget == "paper" else "white")
            for r in table["rows"]:
                if r["family"] == "qk-lstm":
                    ax.annotate(r["cell"], (r["parameters"], r["mean"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7)
        ax.set_xlabel("trainable parameters" + (" outside the embedding" if TASKS[task].series is None else ""))
        ax.set_ylabel(TASKS[task].score)
        ax.set_title(f"{task} (filled: paper budget, open: medium)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------- CLI
def names(parser: argparse.ArgumentParser, flag: str, value: str, allowed) -> list[str]:
    chosen = [n.strip() for n in value.split(",") if n.strip()]
    if not chosen or any(n not in allowed for n in chosen):
        parser.error(f"{flag}: expected names from {','.join(allowed)}, got {value!r}")
    return list(dict.fromkeys(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/ablation", help="folder for the runs, the tables and the plot (the tables and plot cover this invocation's "
                             "tasks, budgets and cells: a filtered rerun rewrites them for its subset)")
    parser.add_argument("--data", default=str(UD_DEV), help="CoNLL-U file of the ud task (default: UD English EWT dev)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--budgets", default=",".join(BUDGETS), help=f"comma-separated subset of {','.join(BUDGETS)}")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated subset of {','.join(CELLS)}")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs-ud", type=int, default=10, help="epochs of the ud runs (default 10)")
    parser.add_argument("--epochs-forecast", type=int, help="epochs of the forecasting runs (default: the configs' 50)")
    parser.add_argument("--series-length", type=int, help="samples of the shm series (default: the configs' 240)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes, one torch thread each (default 1)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.tasks = names(parser, "--tasks", args.tasks, TASKS)
    args.budgets = names(parser, "--budgets", args.budgets, BUDGETS)
    args.cells = names(parser, "--cells", args.cells, CELLS)
    for flag, value in (("--seeds", args.seeds), ("--epochs-ud", args.epochs_ud), ("--epochs-forecast", args.epochs_forecast),
                        ("--series-length", args.series_length), ("--jobs", args.jobs)):
        if value is not None and value < 1:
            parser.error(f"{flag}: expected >= 1, got {value}")
    if "best" in args.cells and ("paper" not in args.cells or not any(c in ONE_FACTOR and c != "paper" for c in args.cells)):
        parser.error(f"--cells: best needs paper and at least one variation, got {','.join(args.cells)!r}")
    if "ud" in args.tasks and not Path(args.data).is_file():
        parser.error(f"--data: expected a CoNLL-U file, got {args.data!r}")
    warnings.simplefilter("ignore", ProductKernelWarning)
    torch.set_num_threads(1)
    start = time.perf_counter()
    sweep = Sweep(args)
    runs = sweep.plan()
    print(f"{len(runs)} runs planned (+ best when its cells are done), {args.jobs} job(s)", flush=True)
    execute(runs, args.jobs, sweep.done)
    total = time.perf_counter() - start
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    for (task, budget), group in sweep.groups.items():
        rows = cell_rows(TASKS[task], group)
        tables[task, budget] = {"rows": rows, "best": group.get("best"), "conclusions": conclusions(TASKS[task], rows)}
    env = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    command = (f"cd {shlex.quote(os.getcwd())} && {env}{shlex.quote(sys.executable)} "
               f"{shlex.quote(str(Path(__file__).resolve()))} {shlex.join(argv)}")
    out = sweep.out
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(tables, command, total)
    (out / "ablation.md").write_text(table, encoding="utf-8")
    plot(tables, out / "ablation.png")
    summary = {"command": command, "total_wall_seconds": total,
               "budgets": {b: {"target": t, "ud_embedding_dim": e} for b, (t, e) in BUDGETS.items()},
               "tables": [{"task": task, "budget": budget, **t} for (task, budget), t in tables.items()]}
    write_json_atomic(summary, out / "summary.json")
    print(table)
    print(f"outputs: {out}/ablation.md, {out}/ablation.png, {out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
