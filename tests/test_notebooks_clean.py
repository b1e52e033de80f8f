"""Committed tutorial notebooks are clean: no outputs, no execution counts, nothing like a credential.

The notebooks themselves are executed by the test command (``pytest --nbmake tests notebooks``);
this module only inspects the files as committed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ("01_quickstart.ipynb", "02_ibm_hardware.ipynb", "03_reproduce_paper.ipynb", "04_kernels.ipynb",
            "05_forecasting.ipynb", "06_sequences.ipynb")

# What a leaked secret looks like. A placeholder such as "<your-API-key>" or "..." is fine.
SECRET_PATTERNS = {
    "long hex string": re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32,}(?![0-9a-fA-F])"),
    # 32+ characters of a base64 / base64url / API-key alphabet mixing digits, lower and upper case
    # (snake_case names and paths have no upper case; CamelCase names are short).
    "base64-like string": re.compile(
        r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])"
        r"[A-Za-z0-9+/_-]{32,}={0,2}"
    ),
    "token= with a literal value": re.compile(
        r"""\b(?:api_?)?(?:token|key|secret|password)\s*[=:]\s*(?P<q>["'])(?![<{.$])[^"'\s]{6,}(?P=q)""", re.I
    ),
    "QISKIT_IBM_TOKEN with a value": re.compile(
        r"""QISKIT_IBM_TOKEN["']?\]?\s*(?:=|:|,)\s*["']?(?![<{$.])[A-Za-z0-9_\-+/]{6,}"""
    ),
}


def find_secrets(text: str) -> list[str]:
    """``"<pattern name>: <start of the match>…"`` for every match in ``text`` (never the whole value)."""
    return [f"{name}: {m.group(0)[:6]}…" for name, pattern in SECRET_PATTERNS.items() for m in pattern.finditer(text)]


def dirty_cells(nb) -> list[str]:
    """One line per code cell that carries outputs or an execution count."""
    return [
        f"cell {index}: {len(cell.get('outputs', []))} outputs, execution_count {cell.get('execution_count')}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def test_the_tutorials_exist():
    names = {path.name for path in NOTEBOOKS}
    missing = [name for name in EXPECTED if name not in names]
    assert not missing, f"expected tutorial notebooks {missing} in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_stripped(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = dirty_cells(nb)
    assert not dirty, f"{path.name} carries outputs (clear them before committing): {dirty}"
    assert nb.cells and nb.cells[0].cell_type == "markdown", f"{path.name}: expected an opening markdown cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_holds_no_secret(path: Path):
    text = path.read_text(encoding="utf-8")
    json.loads(text)  # the raw file, metadata included, is what gets committed
    found = find_secrets(text)
    assert not found, f"{path.name} holds what looks like a credential: {found}"


@pytest.mark.parametrize(
    "text",
    [
        'service = QiskitRuntimeService(token="a1B2c3D4e5F6g7H8")',
        "token = 'abcdefgh12'",
        "QISKIT_IBM_TOKEN=abc123def456",
        'os.environ["QISKIT_IBM_TOKEN"] = "abc123def456"',
        "export QISKIT_IBM_TOKEN='abc123def456'",
        'os.environ.setdefault("QISKIT_IBM_TOKEN", "abc123def456")',
        "key: 0123456789abcdef0123456789abcdef",
        "Bearer aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRva2VuIDEyMw==",
    ],
)
def test_secret_patterns_catch_credentials(text: str):
    assert find_secrets(text), f"expected a secret to be found in {text!r}"


@pytest.mark.parametrize(
    "text",
    [
        'QiskitRuntimeService.save_account(channel="ibm_quantum_platform", token="<your-API-key>")',
        'if os.environ.get("QISKIT_IBM_TOKEN"):',
        "set the environment variable `QISKIT_IBM_TOKEN` (and `QISKIT_IBM_INSTANCE`)",
        "warnings.filterwarnings('ignore', message='IProgress not found')",
        "qk_lstm_qiskit.hardware.backends.resolve_backend  ProductKernelWarning  evaluate_checkpoint",
        "../shared/data/ud_english_ewt/en_ewt-ud-dev.conllu and notebooks/02_ibm_hardware_2026_11_21",
        '"id": "3f2a9c1e"',
    ],
)
def test_secret_patterns_spare_ordinary_text(text: str):
    assert not find_secrets(text), f"expected no secret in {text!r}, got {find_secrets(text)}"


def test_dirty_cells_finds_outputs_and_counts():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    nb = new_notebook(cells=[
        new_code_cell("1 + 1"),
        new_code_cell("print(2)", outputs=[new_output("stream", name="stdout", text="2\n")]),
        new_code_cell("3", execution_count=4),
    ])
    assert [line.split(":")[0] for line in dirty_cells(nb)] == ["cell 1", "cell 2"]
