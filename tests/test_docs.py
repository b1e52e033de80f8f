"""The documentation builds with no warning (``-W -n``: a broken reference or a docstring that does not
render fails), documents every public name, and names only modules and files that exist."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sphinx.util.inventory import InventoryFile

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import api_names  # noqa: E402

DOTTED = re.compile(r"\bqk_lstm_qiskit(?:\.[A-Za-z_]\w*)+")
# a repository document: NOTES.md, README.md, docs/guide/concepts.md (not an output such as runs/x/table1.md)
MARKDOWN_FILE = re.compile(r"(?<![\w/.-])((?:docs/[\w/-]+|[A-Z][A-Z_]+)\.md)\b")


def _texts() -> dict[Path, str]:
    """The package's sources, the docs' pages, the README, the notebooks and the configs."""
    paths = [*sorted((ROOT / "qk_lstm_qiskit").rglob("*.py")), ROOT / "README.md", *sorted(DOCS.glob("**/*.md")),
             *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "configs").glob("*.yaml"))]
    return {path: path.read_text(encoding="utf-8") for path in paths if "_build" not in path.parts}


def _resolves(dotted: str) -> bool:
    """``dotted`` is an importable module, or an attribute path below the longest importable prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if hasattr(obj, part):
                obj = getattr(obj, part)
            elif isinstance(obj, type) and any(part in vars(k).get("__annotations__", {}) for k in obj.__mro__):
                return True  # an annotated attribute (``inputs: tuple[Tensor, ...]``) set by instances
            else:
                return False
        return True
    return False


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("docs-html")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-n", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    return run, out


def test_the_docs_build_without_a_warning(built):
    run, _ = built
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr[-6000:]


def test_every_public_name_is_documented(built):
    run, out = built
    assert (out / "objects.inv").is_file(), run.stderr[-3000:]
    with open(out / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    documented = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
    public = [(module, name) for module, names in api_names.public_names().items() for name in names]
    missing = [f"{module}.{name}" for module, name in public if api_names.home(module, name) not in documented]
    assert len(public) > 200 and not missing, f"{len(public) - len(missing)} of {len(public)} documented; missing {missing}"


def test_every_dotted_name_the_docs_mention_exists():
    wrong = sorted({f"{name} ({path.relative_to(ROOT)})" for path, text in _texts().items()
                    for name in DOTTED.findall(text) if not _resolves(name)})
    assert not wrong, wrong


def test_every_markdown_file_the_docs_mention_exists():
    def exists(name: str, where: Path) -> bool:
        return any((base / name).is_file() for base in (ROOT, DOCS, where.parent))

    wrong = sorted({f"{name} ({path.relative_to(ROOT)})" for path, text in _texts().items()
                    for name in MARKDOWN_FILE.findall(text) if not exists(name, path)})
    assert not wrong, wrong


def test_the_checks_catch_what_they_are_for():
    assert not _resolves("qk_lstm_qiskit.backends.resolve_backend")  # a module that was removed
    assert not _resolves("qk_lstm_qiskit.nn.lstm.NoSuchName")
    assert _resolves("qk_lstm_qiskit.data.corpus.Batch.words")  # a dataclass field without a default
    assert _resolves("qk_lstm_qiskit.hardware.backends.resolve_backend") and _resolves("qk_lstm_qiskit.QKLSTM")
    assert MARKDOWN_FILE.findall("the paper (NOTES.md, eq. 4), docs/guide/concepts.md, runs/x/table1.md") == [
        "NOTES.md", "docs/guide/concepts.md"]
