# Two commands: `make run` and `make test`. Each builds .venv from scratch when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-slow lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "windtunnel needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.run-installed $(VENV)/.dev-installed

# The main job on a fresh clone: both built-in suites over the three tiers and a ladder,
# the table by config printed, every artifact (report.html included) written to results/.
run: $(VENV)/.run-installed
	$(BIN)/windtunnel run windtunnel/scenarios/soc/scenarios/soc-core.yaml \
		windtunnel/scenarios/oncall/scenarios/oncall-core.yaml \
		--config small --config mid --config large --config ladder:small@0.85,mid@0.6,large \
		--seeds 3 --executor process --out results --fresh

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check windtunnel tests benchmarks
	$(BIN)/ruff format --check windtunnel tests benchmarks
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

test: lint typecheck
	command -v chromium || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -q -n auto -m "not slow"
	$(BIN)/mkdocs build --strict --quiet --site-dir $$(mktemp -d)

# The long runs (the 8-state crash sweep, 400 false-positive experiments): minutes, not seconds.
test-slow: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_clock.py
	$(BIN)/python benchmarks/bench_agent.py
	$(BIN)/python benchmarks/bench_durable.py
	$(BIN)/python benchmarks/bench_store_contention.py
	$(BIN)/python benchmarks/bench_scenarios.py
	$(BIN)/python benchmarks/bench_matrix.py
	$(BIN)/python benchmarks/bench_report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
