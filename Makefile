# One command checks everything: `make check` (format, lint, types, unit and integration tests).
PY ?= python3

.PHONY: check format lint types test unit integration

check: format lint types test

format:
	$(PY) -m ruff format --check .

lint:
	$(PY) -m ruff check .

types:
	$(PY) -m mypy

test:
	$(PY) -m pytest -p no:cacheprovider -ra

unit:
	$(PY) -m pytest -p no:cacheprovider -ra tests/unit

integration:
	$(PY) -m pytest -p no:cacheprovider -ra tests/integration
