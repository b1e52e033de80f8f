"""benchmarks/ablation.py: a tiny sweep (tiny treebank, short pendulum, 2 epochs, 2 seeds) end to end.

Checks the run folders, the budget-matched hidden sizes (against models built here), the ``best``
cell's levels, reuse of finished runs, resumption of an interrupted one, and that the table's
means are the means of the runs' own metrics.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
from dataclasses import replace
from pathlib import Path
from statistics import mean

import pytest
import torch

from qk_lstm_qiskit.config import ModelConfig, load_config
from qk_lstm_qiskit.data.tasks import prepare_data
from qk_lstm_qiskit.nn.forecaster import build_forecaster
from qk_lstm_qiskit.nn.tagger import build_tagger, count_parameters
from qk_lstm_qiskit.training.experiment import run_training

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"
CELLS = ["paper", "qubits8", "refs_learned", "per_gate", "best", "lstm", "qlstm"]
SEEDS = 2
TOLERANCE = 0.1  # chosen parameter counts within 10 % of the budget's target (and the closest of H - 1, H, H + 1)


def load_ablation():
    """The script as module ``ablation``, loaded once (worker processes find its functions by that name)."""
    if "ablation" in sys.modules:
        return sys.modules["ablation"]
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablation"] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def word_line(i: int, form: str, upos: str) -> str:
    return "\t".join([str(i), form, form.lower(), upos, "_", "_", "0", "dep", "_", "_"])


def write_treebank(path: Path, n: int = 40) -> Path:
    """``n`` short sentences (DET (ADJ) NOUN VERB (ADV) PUNCT) from a seeded generator."""
    rng = random.Random(0)
    words = {"DET": ["the", "a"], "ADJ": ["big", "red", "old"], "NOUN": ["dog", "cat", "bird", "fish", "run"],
             "VERB": ["runs", "sleeps", "eats", "fish"], "ADV": ["fast", "well"], "PUNCT": [".", "!"]}
    lines = []
    for i in range(n):
        tags = ["DET"] + ["ADJ"] * rng.randint(0, 1) + ["NOUN", "VERB"] + ["ADV"] * rng.randint(0, 1) + ["PUNCT"]
        lines += [f"# sent_id = a{i}"] + [word_line(j + 1, rng.choice(words[t]), t) for j, t in enumerate(tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def sweep_args(root: Path, data: Path) -> list[str]:
    return ["--out", str(root / "abl"), "--data", str(data), "--tasks", "ud,shm", "--budgets", "paper",
            "--cells", ",".join(CELLS), "--seeds", str(SEEDS), "--epochs-ud", "2", "--epochs-forecast", "2",
            "--series-length", "60"]


def run_main(module, args: list[str]) -> None:
    threads = torch.get_num_threads()
    try:
        assert module.main(args) == 0
    finally:
        torch.set_num_threads(threads)  # the script sets 1 thread for the whole process


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation")
    data = write_treebank(root / "tiny.conllu")
    module = load_ablation()
    args = sweep_args(root, data)
    run_main(module, args)
    summary = json.loads((root / "abl" / "summary.json").read_text(encoding="utf-8"))
    return module, args, root / "abl", data, summary


def table(summary: dict, task: str, budget: str = "paper") -> dict:
    return next(t for t in summary["tables"] if t["task"] == task and t["budget"] == budget)


def run_metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def score(task: str, metrics: dict) -> float:
    epochs = metrics["epochs"]
    return max(e["val_accuracy"] for e in epochs) if task == "ud" else min(e["val_loss"] for e in epochs)


def test_one_folder_per_cell_and_seed(sweep):
    _, _, out, _, summary = sweep
    for task in ("ud", "shm"):
        ran = {r["cell"] for r in table(summary, task)["rows"]}
        assert ran >= set(CELLS) - {"best"}
        for cell in ran:
            for seed in range(SEEDS):
                metrics = run_metrics(out / task / "paper" / cell / f"seed-{seed}")
                assert len(metrics["epochs"]) == 2 and metrics["config"]["train"]["seed"] == seed
                assert (out / task / "paper" / cell / f"seed-{seed}" / "last.pt").is_file()


def test_hidden_dims_hit_the_budget(sweep):
    """Counted here on models built from each run's saved config: the recorded count, within 10 %
    of the target, and no closer count at H - 1 or H + 1."""
    _, _, out, data, summary = sweep
    target = summary["budgets"]["paper"]["target"]
    tagging = prepare_data(load_config(overrides={"data": {"source": str(data), "validation_fraction": 0.1}}).data)
    for task in ("ud", "shm"):
        for row in table(summary, task)["rows"]:
            metrics = run_metrics(out / task / "paper" / row["cell"] / "seed-0")
            model = ModelConfig(**metrics["config"]["model"])
            assert model.hidden_dim == row["hidden_dim"]

            def outside_embedding(h: int, model: ModelConfig = model, task: str = task) -> int:
                m = replace(model, hidden_dim=h)
                if task == "shm":
                    return count_parameters(build_forecaster(m, 1))
                return count_parameters(build_tagger(m, len(tagging.words), len(tagging.tags))) - len(tagging.words) * m.embedding_dim

            count = outside_embedding(model.hidden_dim)
            embedding = 0 if task == "shm" else len(tagging.words) * model.embedding_dim
            assert metrics["trainable_parameters"] - embedding == count == row["parameters"]
            assert abs(count - target) <= TOLERANCE * target, (task, row["cell"], count)
            for h in (model.hidden_dim - 1, model.hidden_dim + 1):
                if h >= 1:
                    assert abs(outside_embedding(h) - target) >= abs(count - target), (task, row["cell"], h)


def test_best_combines_the_levels_that_scored_best(sweep):
    module, _, out, _, summary = sweep
    for task, sign in (("ud", 1), ("shm", -1)):
        t = table(summary, task)
        means = {r["cell"]: mean(score(task, run_metrics(out / task / "paper" / r["cell"] / f"seed-{s}"))
                                 for s in range(SEEDS)) for r in t["rows"]}
        winners: dict = {}
        for factor in module.FACTORS:
            levels = [c for c, (f, _, _) in module.ONE_FACTOR.items() if f == factor and c in means]
            better = [c for c in levels if sign * means[c] > sign * means["paper"]]
            if better:
                winners |= module.ONE_FACTOR[max(better, key=lambda c: sign * means[c])][2]
        dropped = t["best"]["over_budget"]
        expected = {k: v for k, v in winners.items() if all(k not in module.ONE_FACTOR[c][2] for c in dropped)}
        assert t["best"]["overrides"] == expected  # the winners, but those left out for the budget
        assert {k for c in dropped for k in module.ONE_FACTOR[c][2]} == winners.keys() - expected.keys()
        for cell in dropped:  # with H = 1 already more than 10 % over the budget's 500
            model = load_config(overrides={"model": {**run_metrics(out / task / "paper" / "paper" / "seed-0")["config"]["model"],
                                                     **expected, **module.ONE_FACTOR[cell][2], "hidden_dim": 1}}).model
            assert count_parameters(build_forecaster(model, 1) if task == "shm" else build_tagger(model, 1, 5)) > 550
        same = [c for c, (_, _, o) in module.ONE_FACTOR.items() if o == expected]
        best_dir = out / task / "paper" / "best"
        if same:  # the combination is a cell already run: noted, not trained again
            assert t["best"]["same_as"] == same[0] and not best_dir.exists()
            assert f"= `{same[0]}`, not run again" in (out / "ablation.md").read_text(encoding="utf-8")
        else:
            paper = run_metrics(out / task / "paper" / "paper" / "seed-0")["config"]["model"]
            for seed in range(SEEDS):
                model = run_metrics(best_dir / f"seed-{seed}")["config"]["model"]
                assert model == {**paper, **expected, "hidden_dim": model["hidden_dim"]}
    assert any(table(summary, task)["best"]["same_as"] is None for task in ("ud", "shm"))  # one best was trained


def test_table_means_are_the_runs_means_and_the_plot_exists(sweep):
    _, _, out, _, summary = sweep
    text = (out / "ablation.md").read_text(encoding="utf-8")
    assert (out / "ablation.png").stat().st_size > 10_000
    assert text.startswith("# Ablation") and "Rerun: `cd " in text and "Total wall time" in text
    sections = dict(re.findall(r"^## (\w+) / paper budget.*?\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    assert set(sections) == {"ud", "shm"}
    for task, body in sections.items():
        rows = {line.split("|")[1].strip(): line.split("|") for line in body.splitlines() if line.startswith("| ")}
        for row in table(summary, task)["rows"]:
            cell = row["cell"]
            scores = [score(task, run_metrics(out / task / "paper" / cell / f"seed-{s}")) for s in range(SEEDS)]
            shown = float(rows[cell][5].split("±")[0])
            assert shown == pytest.approx(mean(scores), abs=5e-5, rel=5e-3), (task, cell)  # 4 decimals / 3 digits
            assert row["scores"] == scores
        assert "Best QK-LSTM" in body and "vs nn.LSTM" in body and "vs VQC-QLSTM" in body


def test_rerun_reuses_every_run_and_resumes_an_interrupted_one(sweep, capsys):
    module, args, out, _, _ = sweep
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.parent.name.startswith("seed-")}
    capsys.readouterr()
    run_main(module, args)
    printed = capsys.readouterr().out
    assert " trained," not in printed and " resumed," not in printed and printed.count(" reused,") == len(
        {p.parent for p in files})
    assert {p: p.read_bytes() for p in files} == files  # nothing retrained or rewritten

    # interrupt one run after epoch 1: a folder with last.pt and one epoch of its 2
    folder = out / "ud" / "paper" / "refs_learned" / "seed-1"
    full = run_metrics(folder)
    for p in folder.iterdir():
        p.unlink()
    config = load_config(overrides=full["config"])
    run_training(replace(config, train=replace(config.train, epochs=1)), folder, progress=False)
    assert len(run_metrics(folder)["epochs"]) == 1
    run_main(module, args)
    printed = capsys.readouterr().out
    assert printed.count(" resumed,") == 1 and "ud/paper/refs_learned/seed-1: resumed" in printed
    assert " trained," not in printed
    resumed = run_metrics(folder)
    assert resumed["config"] == full["config"] and len(resumed["epochs"]) == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):  # resumed from last.pt: the same two epochs
        assert [e[key] for e in resumed["epochs"]] == pytest.approx([e[key] for e in full["epochs"]], abs=1e-6)


def test_best_overrides_keep_the_base_unless_a_level_beats_it():
    module = load_ablation()
    ud, shm = module.TASKS["ud"], module.TASKS["shm"]
    means = {"paper": 0.5, "qubits8": 0.6, "refs16": 0.5, "paper_r2": 0.55, "zz_r2": 0.7, "per_gate": 0.4}
    overrides, chosen, dropped = module.best_overrides(ud, means)
    assert overrides == {"num_qubits": 8, "feature_map": "zz", "reps": 2, "input_scaling": 0.1} and not dropped
    assert chosen == {"qubits": "qubits8", "references per gate": "paper", "feature map": "zz_r2", "weighting": "paper"}
    overrides, _, _ = module.best_overrides(shm, means)  # lower is better
    assert overrides == {"weighting": "per_gate"}
    assert module.same_as(overrides) == "per_gate" and module.same_as({}) == "paper"
    # a budget that 8 qubits break: the larger gain (zz_r2, +0.2) goes in first, qubits8 (+0.1) is left out
    overrides, chosen, dropped = module.best_overrides(ud, means, fits=lambda o: o.get("num_qubits", 4) == 4)
    assert overrides == {"feature_map": "zz", "reps": 2, "input_scaling": 0.1} and dropped == ["qubits8"]
    assert chosen["qubits"] == "paper" and chosen["feature map"] == "zz_r2"


@pytest.mark.parametrize("argv, message", [
    (["--cells", "paper,nope"], "--cells: expected names from"),
    (["--tasks", "pos"], "--tasks: expected names from"),
    (["--seeds", "0"], "--seeds: expected >= 1, got 0"),
    (["--cells", "best,lstm"], "--cells: best needs paper and at least one variation"),
])
def test_bad_arguments_are_one_line_errors(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        load_ablation().main(["--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "error:" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o").exists()


def test_jobs_train_in_worker_processes_with_the_same_results(sweep, tmp_path, capsys):
    module, _, out, data, _ = sweep
    args = ["--out", str(tmp_path / "abl"), "--data", str(data), "--tasks", "shm", "--budgets", "paper", "--cells",
            "lstm", "--seeds", "2", "--epochs-forecast", "2", "--series-length", "60", "--jobs", "2"]
    run_main(module, args)
    assert capsys.readouterr().out.count(" trained,") == 2
    for cell in ("lstm",):
        for seed in range(2):
            ours, theirs = (run_metrics(o / "shm" / "paper" / cell / f"seed-{seed}") for o in (tmp_path / "abl", out))
            assert ours["config"] == theirs["config"]
            assert [e["val_loss"] for e in ours["epochs"]] == pytest.approx([e["val_loss"] for e in theirs["epochs"]], abs=1e-9)


def test_best_with_other_levels_than_a_saved_best_runs_in_a_new_folder(tmp_path):
    module = load_ablation()
    args = argparse.Namespace(out=str(tmp_path), data="unused.conllu", epochs_ud=2, epochs_forecast=2, series_length=60,
                              seeds=2)
    sweep = module.Sweep(args)
    sized = {"model": {"weighting": "per_gate", "hidden_dim": 20}}
    runs = sweep.runs_of("shm", "paper", "best", sized)
    assert [r.out_dir for r in runs] == [tmp_path / "shm" / "paper" / "best" / f"seed-{s}" for s in range(2)]
    other = load_config(overrides={"model": {"num_qubits": 8, "hidden_dim": 34}})  # a best chosen earlier
    (tmp_path / "shm" / "paper" / "best" / "seed-0").mkdir(parents=True)
    (tmp_path / "shm" / "paper" / "best" / "seed-0" / "metrics.json").write_text(json.dumps({"config": other.to_dict()}))
    runs = sweep.runs_of("shm", "paper", "best", sized)
    assert runs[1].out_dir == tmp_path / "shm" / "paper" / "best-2" / "seed-1"
    same = runs[0].config.to_dict()  # the same levels as saved: the folder is reused (resumed)
    (tmp_path / "shm" / "paper" / "best" / "seed-0" / "metrics.json").write_text(json.dumps({"config": same}))
    assert sweep.runs_of("shm", "paper", "best", sized)[0].out_dir.parent.name == "best"
