# The two commands of the README: `make run` and `make test` (and `make bench`, which also
# installs the peers it compares with: the `bench` extra).
# Both create .venv on first use; the stamp file makes re-runs skip the install
# until pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: run test lint typecheck docs pytest notebooks bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/spaceactors run trade-route

test: lint typecheck docs pytest

lint: $(STAMP_TEST)
	$(BIN)/ruff check spaceactors spaceactors_command.py spaceactors_pytest.py tests benchmarks

typecheck: $(STAMP_TEST)
	$(BIN)/mypy --strict spaceactors spaceactors_command.py spaceactors_pytest.py

docs: $(STAMP_TEST)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .site

pytest: $(STAMP_TEST)
	$(BIN)/pytest -q

bench: $(STAMP_BENCH)
	$(BIN)/python -m benchmarks

# Reliable delivery through loss, duplication, delays and crashes (not in `make test`): a million
# messages, then 20,000 always in flight with delays up to 10 s, reordering and a memory check.
# The exit code is the verdict (0 PASS, 1 FAIL).
soak: $(STAMP_TEST)
	$(BIN)/python -m spaceactors.testing.soak --profile all

clean:
	rm -rf $(VENV) .site .pytest_cache .mypy_cache .ruff_cache .hypothesis
