# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pytest-xdist workers: most integration time is waiting (group joins, a
# broker outage, fsync), so more workers than cores pays off; each worker
# starts its own embedded broker and PostgreSQL.  --dist loadfile keeps a
# module on one worker, so a module-scoped platform starts once; with
# --no-loadscope-reorder files go out in collection order, so the longest
# ones (browser, the clean and the two fault runs) start first, on different
# workers.
TEST_WORKERS ?= 4

.PHONY: demo test test-unit test-integration lint typecheck bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cuentas up --demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) tests/browser/provision.py
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(VENV)/bin/cuentas bench all

clean:
	rm -rf $(VENV) .data .mypy_cache .pytest_cache .ruff_cache
