# Two entry points that work on a machine with only python3:
#   make demo   run a comparison on generated demo data (local folder store)
#   make test   run the test suite
# and, for development: make test-unit (the unit tests alone, no servers, browser or cluster),
# make lint (ruff and mypy, as CI runs them).
# uv is bootstrapped into .tools/ from PyPI; the project environment (.venv) comes from uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test test-unit lint sync bench

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock setup.py $(wildcard compare/imaging/*.c)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

sync: .venv/.synced

# The demo builds contain differences and one corrupt image on purpose, so its exit codes
# 1 (differences) and 2 (errored images) are the expected outcome; 3 and above are failures.
demo: .venv/.synced
	$(UV) run --frozen --no-sync snapcompare demo $(ARGS) || [ $$? -le 2 ]

# One pytest worker per core (pytest-xdist), each test module on one worker, so a module's
# servers and clusters start once: 2 cores take about 140 s instead of 190 s.
test: .venv/.synced
	$(UV) run --frozen --no-sync pytest -n auto --dist loadfile $(ARGS)

test-unit: .venv/.synced
	$(UV) run --frozen --no-sync pytest -m unit $(ARGS)

lint: .venv/.synced
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync mypy
