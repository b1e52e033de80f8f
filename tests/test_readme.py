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


ROOT = README.parent
SHELL_BLOCK = re.compile(r"```(?:bash|sh|console)\n(.*?)```", re.S)


def readme_commands() -> list[tuple[list[str], int]]:
    """Every ``qk-lstm`` line of the README's shell blocks, as argv, with the exit status its comment promises
    (2 when the comment says the command is refused, else 0)."""
    commands = []
    for block in SHELL_BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            words = shlex.split(command)
            if words[:1] == ["qk-lstm"]:
                commands.append((words[1:], 2 if "refused" in comment else 0))
    return commands


def _short(argv: list[str]) -> list[str]:
    """``argv`` with a few epochs (one more to resume), no progress bar, and the repository's configs by path."""
    argv = [str(ROOT / a) if a.startswith("configs/") else a for a in argv]
    if argv[0] in ("train", "reproduce") and "--dry-run" not in argv and "--max-qpu-seconds" not in argv:
        if "--epochs" in argv:
            i = argv.index("--epochs")
            argv = argv[:i] + argv[i + 2:]
        argv += ["--epochs", "3" if "--resume" in argv else "2"]
    return argv + (["--no-progress"] if argv[0] in ("train", "reproduce", "evaluate") else [])


def test_every_readme_command_runs_from_a_fresh_folder(tmp_path, monkeypatch, capsys):
    """In the README's order (later commands use earlier runs), with short epochs; each exits as promised."""
    commands = readme_commands()
    assert len(commands) >= 5, commands
    monkeypatch.chdir(tmp_path)
    for argv, status in commands:
        code = cli.main(_short(argv))
        captured = capsys.readouterr()
        assert code == status, (argv, captured.err[-2000:])
        assert "Traceback" not in captured.err, captured.err
