# skylift — `make run` serves the example, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip install --quiet --disable-pip-version-check
APP    ?= examples/make-change
PORT   ?= 8080

.PHONY: all setup install lint test run bench chaos clean

all: lint test

$(PY):
	$(PYTHON) -m venv $(VENV)

# Installs the package (editable) with what the tests and linters need, and builds its
# one C module in place (observing's collector; skipped, not failed, without a compiler).
$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/skylift/observe/_collect*.[ch]) | $(PY)
	rm -f src/skylift/observe/_collect.*.so  # a C file that no longer builds must not leave the old one
	$(PIP) --upgrade pip
	$(PIP) -e '.[test,lint]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) -e '.[test,lint,bench]'
	touch $@

setup: $(VENV)/.installed

install: setup

lint: setup
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench
	$(VENV)/bin/mypy

test: setup
	$(VENV)/bin/pytest -q

run: setup
	$(VENV)/bin/skylift up $(APP) --port $(PORT)

# http_bench.py installs the peers not on PyPI's bench extra itself: serverless 3 and
# serverless-offline 13 with npm into bench/.node, the SAM CLI into bench/.sam-venv.
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	@command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
	cd bench && ../$(PY) http_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) profile_http.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) queue_e2e.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) cluster_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) concurrency_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) autoscale_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) history_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) sandbox_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) reload_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) cli_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) observe_cost_bench.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) observe_callgrind.py --out ../docs/benchmarks.md
	cd bench && ../$(PY) memory_bench.py --rounds 3 --out ../docs/benchmarks.md
	cd bench && ../$(PY) slowloris_bench.py --out ../docs/benchmarks.md

# Fault injection (kill -9 of server, zygote, instances; a full disk; a damaged database)
# for 3 minutes; the suite runs a 30 s form (tests/chaos). The tmpfs it fills needs root.
chaos: setup
	cd bench && ../$(PY) chaos.py --duration 180 --out ../docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
