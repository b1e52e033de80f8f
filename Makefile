# Two commands do everything on a fresh machine:  `make run`  and  `make test`.
# Set-up is idempotent: the virtual environment is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
# CPU build of torch. Elsewhere: make TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test docs reproduce bench clean
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup            ## train the paper's QK-LSTM on the built-in task and print the result
	$(BIN)/qk-lstm train

test: setup           ## layer contract, lint, types; the tests (docs built with -W -n), docstring examples, notebooks (quick)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy
	QK_LSTM_TUTORIAL_QUICK=1 $(BIN)/python -m pytest -q --nbmake --doctest-modules tests notebooks qk_lstm_qiskit

docs: setup           ## the documentation site, offline: docs/_build/html/index.html
	$(BIN)/python -m sphinx -E -n -q -b html docs docs/_build/html

reproduce: setup      ## Table I and Fig. 3 over 3 seeds
	$(BIN)/qk-lstm reproduce --out runs/reproduce-$$(date +%Y%m%d-%H%M%S)

bench: setup          ## speed benchmarks (ratios against baselines measured in the same run)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build docs/api/generated
