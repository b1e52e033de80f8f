"""Tagging metrics, ``qk-lstm evaluate`` on the exact executor, UD configs (qk_lstm_qiskit.evaluation.metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from qk_lstm_qiskit.cli import main
from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.corpus import PAD_TAG, Vocabulary
from qk_lstm_qiskit.config import DataConfig
from qk_lstm_qiskit.checkpoint import load_tagger
from qk_lstm_qiskit.data.conllu import build_vocabularies, read_conllu
from qk_lstm_qiskit.data.corpus import UNSEEN_TAG
from qk_lstm_qiskit.data.tasks import evaluation_data, evaluation_sentences
from qk_lstm_qiskit.evaluation.exact import evaluate_exact
from qk_lstm_qiskit.evaluation.loop import evaluate_tagger
from qk_lstm_qiskit.evaluation.metrics import (
    confusion_matrix,
    per_tag_metrics,
    plot_confusion,
    tagging_metrics,
    token_accuracy,
)
from qk_lstm_qiskit.nn.tagger import build_tagger, count_parameters

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---- metric functions --------------------------------------------------------------------------


def test_token_accuracy_ignores_padding():
    predictions = torch.tensor([[0, 1, 2], [1, 1, 0]])
    targets = torch.tensor([[0, 1, 1], [1, PAD_TAG, PAD_TAG]])
    assert token_accuracy(predictions, targets) == 3 / 4
    with pytest.raises(ValueError, match=r"token_accuracy: expected predictions and targets of the same shape, got \(2, 3\) and \(3,\)"):
        token_accuracy(predictions, targets[0])
    with pytest.raises(ValueError, match=r"expected at least one target != PAD_TAG, got none"):
        token_accuracy(predictions, torch.full_like(targets, PAD_TAG))


def test_confusion_and_per_tag_metrics_by_hand():
    # gold:      D D N N N V ; predicted: D N N N V V
    gold = torch.tensor([0, 0, 1, 1, 1, 2, PAD_TAG])
    pred = torch.tensor([0, 1, 1, 1, 2, 2, 0])
    confusion = confusion_matrix(pred, gold, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    metrics = per_tag_metrics(confusion, ["DET", "NOUN", "VERB"])
    assert metrics["DET"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert metrics["NOUN"]["precision"] == pytest.approx(2 / 3) and metrics["NOUN"]["recall"] == pytest.approx(2 / 3)
    assert metrics["VERB"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    with pytest.raises(ValueError, match=r"expected predictions in \[0, 2\) outside padding, got \[0, 2\]"):
        confusion_matrix(pred, gold.clamp(max=1), 2)
    with pytest.raises(ValueError, match=r"per_tag_metrics: expected a \(2, 2\) confusion matrix, got \(3, 3\)"):
        per_tag_metrics(confusion, ["DET", "NOUN"])


def test_tagging_metrics_counts_unseen_gold_tags_as_errors():
    pred = torch.tensor([0, 1, 1, 0])
    gold = torch.tensor([0, 1, UNSEEN_TAG, UNSEEN_TAG])
    unknown = torch.tensor([False, True, True, False])
    result = tagging_metrics(pred, gold, ["DET", "NOUN"], unknown=unknown)
    assert result.labels == ["DET", "NOUN", "<unseen>"]
    assert result.metrics["accuracy"] == 0.5 and result.metrics["tokens"] == 4
    assert result.metrics["per_tag"]["<unseen>"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert result.confusion[2].tolist() == [1, 1, 0]
    assert result.metrics["unknown_word_rate"] == 0.5
    assert result.metrics["accuracy_unknown_words"] == 0.5 and result.metrics["accuracy_known_words"] == 0.5


def test_plot_confusion_writes_a_png(tmp_path):
    path = tmp_path / "confusion.png"
    plot_confusion(torch.tensor([[5, 1], [0, 3]]), ["DET", "NOUN"], path, title="test")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temporary file left


class LookupTagger(nn.Module):
    """Predicts a fixed tag per word index (a stand-in model with known outputs)."""

    def __init__(self, table: list[int], num_tags: int) -> None:
        super().__init__()
        self.register_buffer("log_probs", torch.log(nn.functional.one_hot(torch.tensor(table), num_tags).double() * 0.9 + 0.1 / num_tags))

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        return self.log_probs[words]


def test_evaluate_tagger_unknown_words_unseen_tags_and_loss(tmp_path):
    words, tags = build_vocabularies([(["the", "dog", "barks"], ["DET", "NOUN", "VERB"])])
    assert words.itos == ["<pad>", "<unk>", "barks", "dog", "the"] and tags.itos == ["DET", "NOUN", "VERB"]
    model = LookupTagger([0, 1, 2, 1, 0], len(tags))  # <unk> → NOUN
    path = tmp_path / "eval.conllu"
    path.write_text("\n".join([word_line(1, "The", "DET"), word_line(2, "dog", "NOUN"), word_line(3, "barks", "VERB"), "",
                               word_line(1, "a", "DET"), word_line(2, "cat", "NOUN"), word_line(3, "!", "PUNCT"), ""]))
    data = evaluation_data(str(path), DataConfig(lowercase=True), words, tags)  # read as the run read: lower-cased
    result, tagged = evaluate_tagger(model, data, words, tags, batch_size=1)
    m = result.metrics
    # 'a' → <unk> → NOUN (wrong), 'cat' → NOUN (right), '!' → NOUN (PUNCT unseen: wrong)
    assert (m["correct"], m["tokens"], m["sentences"]) == (4, 6, 2)
    assert m["unseen_tags"] == {"PUNCT": 1} and result.labels == ["DET", "NOUN", "VERB", "<unseen>"]
    assert m["unknown_word_rate"] == pytest.approx(0.5) and m["accuracy_unknown_words"] == pytest.approx(1 / 3)
    assert m["per_tag"]["<unseen>"]["recall"] == 0.0 and m["per_tag"]["DET"]["recall"] == 0.5
    assert tagged.accuracy == m["accuracy"]
    p_right, p_wrong = 0.9 + 0.1 / 3, 0.1 / 3  # the loss leaves the unseen PUNCT token out
    expected = -(4 * torch.log(torch.tensor(p_right, dtype=torch.float64)) + torch.log(torch.tensor(p_wrong, dtype=torch.float64))) / 5
    assert m["loss"] == pytest.approx(float(expected))
    with pytest.raises(ValueError, match=r"Vocabulary: unknown word 'a'"):
        evaluation_data(str(path), DataConfig(lowercase=True),
                        Vocabulary(["<pad>", "the", "dog", "barks"], pad="<pad>", name="word"), tags)


# ---- checkpoints, the CLI, and never overwriting --------------------------------------------------


def word_line(i: int, form: str, upos: str) -> str:
    return "\t".join([str(i), form, form.lower(), upos, "_", "_", "0", "dep", "_", "_"])


def write_treebank(path: Path, n: int = 12) -> Path:
    nouns, verbs = ["dog", "cat", "bird", "fish"], ["runs", "sleeps", "eats"]
    lines = []
    for i in range(n):
        lines += [f"# sent_id = t{i}", word_line(1, "the", "DET"), word_line(2, nouns[i % 4], "NOUN"),
                  word_line(3, verbs[i % 3], "VERB"), word_line(4, ".", "PUNCT"), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, Path]:
    """A 2-epoch nn.LSTM tagger trained through the CLI with the UD config on a tiny treebank."""
    root = tmp_path_factory.mktemp("ud")
    data = write_treebank(root / "tiny.conllu")
    run = root / "run"
    code = main(["train", "--config", str(CONFIGS / "ud_ewt_lstm.yaml"), "--data", str(data), "--out", str(run),
                 "--epochs", "2", "--no-progress"])
    assert code == 0
    return run, data


def test_evaluate_cli_exact_writes_metrics_and_png(trained_run, tmp_path, capsys):
    run, data = trained_run
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run / "model.pt"), "--data", str(data), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "exact" and metrics["tokens"] == 48 and metrics["sentences"] == 12
    model, words, tags, config = load_tagger(run / "model.pt")  # recount the right tags by hand
    sentences = read_conllu(data)
    right = 0
    for ws, ts in sentences:
        predicted = model(torch.tensor([words.encode(ws)]))[0].argmax(-1).tolist()
        right += sum(tags.itos[p] == t for p, t in zip(predicted, ts))
    assert metrics["correct"] == right and metrics["accuracy"] == pytest.approx(right / 48)
    assert set(metrics["per_tag"]) == {"DET", "NOUN", "VERB", "PUNCT"}
    assert sum(m["support"] for m in metrics["per_tag"].values()) == 48
    assert (out / "confusion.png").read_bytes()[:8] == PNG_MAGIC
    assert "accuracy (exact)" in capsys.readouterr().out


def test_evaluate_defaults_to_the_validation_split(trained_run, tmp_path):
    run, _ = trained_run
    metrics = evaluate_exact(run, tmp_path / "eval")  # a run folder works as --checkpoint
    assert metrics["sentences"] == 1 and metrics["data"].endswith("(validation split)")  # 10 % of 12


def test_evaluate_never_overwrites(trained_run, tmp_path, capsys):
    run, data = trained_run
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    # into the training run folder: its metrics.json must survive
    assert main(["evaluate", "--checkpoint", str(run / "model.pt"), "--data", str(data), "--out", str(run)]) == 2
    assert "holding metrics.json" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # twice into the same folder: the first results survive
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--out", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["evaluate", "--checkpoint", str(run), "--data", "paper", "--out", str(out)]) == 2
    assert "holding metrics.json, confusion.png" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    # training again into the run folder refuses too
    assert main(["train", "--config", str(CONFIGS / "ud_ewt_lstm.yaml"), "--data", str(data), "--out", str(run),
                 "--epochs", "1", "--no-progress"]) == 2
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp, run, data: ["--checkpoint", str(tmp / "missing.pt"), "--data", str(data)], "missing.pt"),
        (lambda tmp, run, data: ["--checkpoint", str(data), "--data", str(data)], "is not a qk_lstm_qiskit checkpoint"),
        (lambda tmp, run, data: ["--checkpoint", str(run), "--data", str(tmp / "nope.conllu")], "nope.conllu"),
        (lambda tmp, run, data: ["--checkpoint", str(run), "--data", str(tmp / "bad.csv")],
         "expected 10 tab-separated columns in .*bad.csv line 1, got 1"),
        (lambda tmp, run, data: ["--checkpoint", str(run), "--data", str(data), "--dry-run"],
         "expected --dry-run only with a sampler backend, got --backend exact"),
        (lambda tmp, run, data: ["--checkpoint", str(run), "--data", str(data), "--batch-size", "0"],
         "argument --batch-size: expected an integer >= 1, got 0"),
    ],
)
def test_evaluate_bad_input_is_one_line_and_writes_nothing(trained_run, tmp_path, capsys, make, message):
    run, data = trained_run
    (tmp_path / "bad.csv").write_text("word,tag\nthe,DET\n", encoding="utf-8")
    out = tmp_path / "eval"
    assert main(["evaluate", *make(tmp_path, run, data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err
    assert not out.exists()


def test_evaluate_qk_lstm_checkpoint_on_exact_executor(tmp_path):
    data = write_treebank(tmp_path / "tiny.conllu", n=8)  # 7 training + 1 validation sentence
    run = tmp_path / "run"
    args = ["train", "--config", str(CONFIGS / "ud_ewt_qklstm.yaml"), "--data", str(data), "--out", str(run),
            "--epochs", "1", "--batch-size", "4", "--no-progress"]
    assert main(args) == 0
    metrics = evaluate_exact(run / "model.pt", tmp_path / "eval", data=str(data))
    assert metrics["model"] == "qk-lstm" and metrics["tokens"] == 32


@pytest.mark.shots
def test_evaluate_on_a_sampler_backend_adds_per_tag_metrics_and_png(tmp_path, capsys):
    """One ``evaluate`` command: ``--backend aer`` goes through evaluate.py and gets the same outputs."""
    data = write_treebank(tmp_path / "tiny.conllu", n=8)
    run = tmp_path / "run"
    assert main(["train", "--config", str(CONFIGS / "ud_ewt_qklstm.yaml"), "--data", str(data), "--out", str(run),
                 "--epochs", "1", "--batch-size", "8", "--no-progress"]) == 0
    out = tmp_path / "aer"
    assert main(["evaluate", "--checkpoint", str(run / "model.pt"), "--backend", "aer", "--shots", "64",
                 "--data", str(data), "--max-sentences", "2", "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "aer" and metrics["tokens"] == 8
    assert sum(m["support"] for m in metrics["per_tag"].values()) == 8
    assert sum(map(sum, metrics["confusion_matrix"])) == 8
    assert metrics["accuracy"] == pytest.approx(sum(metrics["confusion_matrix"][i][i] for i in range(4)) / 8)
    assert (out / "confusion.png").read_bytes()[:8] == PNG_MAGIC


# ---- the UD configs ------------------------------------------------------------------------------


def test_ud_configs_have_matched_parameter_budgets():
    counts, cores = {}, {}
    for name in ("ud_ewt_qklstm", "ud_ewt_lstm", "ud_ewt_qlstm"):
        config = load_config(CONFIGS / f"{name}.yaml")
        assert config.data.validation_fraction == 0.1 and config.data.min_freq == 2
        model = build_tagger(config.model, 1974, 17)  # EWT dev: 1,974 training words at min_freq 2
        counts[name] = count_parameters(model)
        cores[name] = counts[name] - model.embedding.weight.numel()
    assert counts == {"ud_ewt_qklstm": 16287, "ud_ewt_lstm": 16295, "ud_ewt_qlstm": 16283}  # as the YAML comments say
    assert max(cores.values()) <= 1.1 * min(cores.values())  # also without the shared-size embedding


def test_compare_ud_reuses_finished_runs_and_writes_the_table(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_ud", CONFIGS.parent / "benchmarks" / "compare_ud.py")
    compare_ud = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_ud)
    data = write_treebank(tmp_path / "tiny.conllu")
    args = ["--data", str(data), "--out", str(tmp_path / "cmp"), "--seeds", "2", "--epochs", "1", "--models", "lstm"]
    threads = torch.get_num_threads()
    try:
        assert compare_ud.main(args) == 0
    finally:
        torch.set_num_threads(threads)  # the script sets 1 thread for the whole process
    table = (tmp_path / "cmp" / "compare_ud.md").read_text()
    assert "| nn.LSTM | 6 |" in table and "| 2 × 1 |" in table
    runs = {p: p.read_bytes() for p in (tmp_path / "cmp" / "lstm").rglob("*") if p.is_file()}
    assert len(runs) == 8  # model.pt, last.pt, metrics.json, metrics.csv per seed
    capsys.readouterr()
    try:
        assert compare_ud.main(args) == 0
    finally:
        torch.set_num_threads(threads)
    assert capsys.readouterr().out.count("reusing") == 2
    assert {p: p.read_bytes() for p in runs} == runs


def test_evaluation_sentences_read_with_the_checkpoints_lowercasing(tmp_path):
    """Evaluation reads sentences as training did: lower-cased words when the run lower-cased them."""
    path = tmp_path / "t.conllu"
    lines = []
    for i in range(8):
        lines += [f"# sent_id = c{i}", word_line(1, "The", "DET"), word_line(2, "Dog", "NOUN"), word_line(3, "runs", "VERB"), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    lower = load_config(overrides={"data": {"source": str(path), "lowercase": True, "validation_fraction": 0.25}})
    mixed = load_config(overrides={"data": {"source": str(path), "validation_fraction": 0.25}})
    for data in (None, str(path)):
        lowered, _ = evaluation_sentences(data, lower.data)
        kept, _ = evaluation_sentences(data, mixed.data)
        assert [w for ws, _ in lowered for w in ws] == [w.lower() for ws, _ in kept for w in ws]
        assert any(w != w.lower() for ws, _ in kept for w in ws)  # the file does have capitals
