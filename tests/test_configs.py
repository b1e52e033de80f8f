"""Every shipped config names its task, loads, and states parameter counts that are its models' own.

Each config states its trainable parameter count in a comment (``N trainable parameters``); the
treebank configs state it for the vocabulary of their data (``with the V-word vocabulary``) and
``N outside the embedding``. Models are built through the config's task, on its own data; the
treebank's data (``data.source``, relative to the repository) is read only where it exists.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest
import yaml

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.data.corpus import Vocabulary
from qk_lstm_qiskit.errors import TaskInferredWarning
from qk_lstm_qiskit.nn.tagger import count_parameters
from qk_lstm_qiskit.tasks import TASKS, make_task

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
IDS = [p.name for p in CONFIGS]
UPOS_TAGS = 17  # the UD English EWT configs tag UPOS
TOTAL = re.compile(r"([\d,]+) trainable parameters")
VOCABULARY = re.compile(r"with the ([\d,]+)-word vocabulary")
OUTSIDE = re.compile(r"([\d,]+) outside the embedding")


def claim(pattern: re.Pattern, path: Path) -> int | None:
    """The first number ``pattern`` finds in the file's text."""
    found = pattern.search(path.read_text(encoding="utf-8"))
    return None if found is None else int(found.group(1).replace(",", ""))


def quiet_model(task):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the product-kernel note of the paper's map
        return task.build_model()


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_config_names_its_task_loads_and_states_a_count(path):
    assert "task" in yaml.safe_load(path.read_text(encoding="utf-8")), path.name
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskInferredWarning)  # a config without a task would be told so
        config = load_config(path)
    assert config.task in TASKS
    assert claim(TOTAL, path) is not None, f"{path.name} states no trainable parameter count"


TAGGERS = [p for p in CONFIGS if claim(OUTSIDE, p) is not None]  # the treebank configs


@pytest.mark.parametrize("path", TAGGERS, ids=[p.name for p in TAGGERS])
def test_stated_count_outside_the_embedding(path):
    stated = claim(OUTSIDE, path)
    config = load_config(path)
    task = make_task(config)  # tagging: a one-word vocabulary is enough for what lies outside the embedding
    task.words, task.tags = Vocabulary(["w"]), Vocabulary([f"t{i}" for i in range(UPOS_TAGS)])
    model = quiet_model(task)
    assert stated == count_parameters(model) - model.embedding.weight.numel()


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_stated_total_count_on_the_configs_own_data(path):
    config = load_config(path)
    source = config.data.source
    if source.endswith(".conllu"):  # a treebank is not shipped: $QK_LSTM_UD_DIR, else the folder beside the repository's
        folder = os.environ.get("QK_LSTM_UD_DIR", str(ROOT.parent / "shared" / "data" / "ud_english_ewt"))
        real = Path(folder) / Path(source).name
        if not real.is_file():
            pytest.skip(f"{path.name}: its data {source} is not here")
        config = load_config(path, {"data": {"source": str(real)}})
    task = make_task(config)
    task.prepare()
    model = quiet_model(task)
    vocabulary = claim(VOCABULARY, path)
    if vocabulary is not None:
        assert len(task.words) == vocabulary
    assert count_parameters(model) == claim(TOTAL, path), path.name
