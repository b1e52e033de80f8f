"""The README's cheap command-line examples run, and print the figures the README quotes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from qk_lstm_qiskit import cli

README = Path(__file__).resolve().parents[1] / "README.md"
# "qk-lstm train ... --dry-run   # ..., offline: ≈ 69,446 QPU s": the command and the figure it quotes
EXAMPLE = re.compile(r"^(qk-lstm (?:train|estimate) [^#\n]*?)\s+#[^\n]*?≈ ([\d,]+) QPU s", re.M)
EXAMPLES = [(cmd.strip(), int(figure.replace(",", ""))) for cmd, figure in EXAMPLE.findall(README.read_text())]


def test_the_readme_quotes_its_cost_examples():
    assert len(EXAMPLES) >= 2, EXAMPLES  # the --dry-run and --max-qpu-seconds lines


@pytest.mark.fake_backend
@pytest.mark.parametrize("command, figure", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_cost_example_prints_its_figure(command, figure, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = cli.main([*shlex.split(command)[1:], "--no-progress"])
    captured = capsys.readouterr()
    printed = re.search(r"(?:QPU seconds: ≈ |needs ≈ )([\d,]+\.\d)", captured.out + captured.err)
    assert printed, captured
    assert round(float(printed.group(1).replace(",", ""))) == figure
    assert code == (2 if "--max-qpu-seconds" in command else 0)  # a refusal is an error line and exit 2
    assert list(tmp_path.iterdir()) == []  # an estimate writes nothing
