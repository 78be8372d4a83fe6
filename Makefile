# funops — developer entry points. `make demo` and `make test` are the README's two commands.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
N       ?= 3
RUNS    ?= 3
WORKERS ?= 4
TOOLS   ?= funops,pyinfra,ansible

.PHONY: install demo test test-unit lint lab-host lab-image lab-up lab-down lab-status bench bench-fleet bench-pull bench-all clean

# What funops needs to run (make demo), then what the tests and linters need on top (make install).
$(BIN)/funops: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev-extra: $(BIN)/funops
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.dev-extra

# Validate and plan the bundled example on the local transport: no servers needed, runtime only.
demo: $(BIN)/funops
	$(BIN)/funops validate
	$(BIN)/funops plan; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 2 ]

# Everything: unit tests and the lab tests against real nodes. lab-host first: it installs the packages
# (python3-venv, nginx, shellcheck, docker, ...) a fresh machine lacks and starts a docker engine.
# WORKERS pytest-xdist workers, each with its own lab slot from FUNOPS_LAB_SLOTS (default 1,10,11,12);
# a test file stays on one worker (its tests share nodes through module fixtures). WORKERS=0: serial.
test: lab-host install
	FUNOPS_REQUIRE_LAB=1 $(BIN)/pytest -q -n $(WORKERS) --dist loadfile --no-loadscope-reorder

# Unit tests only (no engine, no nodes).
test-unit: install
	$(BIN)/pytest -q -m 'not lab'

lint: install
	$(BIN)/ruff check funops tests lab bench
	$(BIN)/ruff format --check funops tests lab bench

# The lab: real nodes as docker containers on the host network (see lab/README.md).
lab-host:
	lab/bootstrap-host

lab-image: install lab-host
	$(BIN)/python -m lab build-image

lab-up: install lab-host
	$(BIN)/python -m lab up --nodes $(N)

lab-down: install
	$(BIN)/python -m lab down

lab-status: install
	$(BIN)/python -m lab status

# The peers (pyinfra, Ansible) come from the `bench` extra, installed into the same venv first.
$(VENV)/.bench-extra: pyproject.toml | install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: install lab-host $(VENV)/.bench-extra
	$(BIN)/python -m bench --nodes $(N) --runs $(RUNS) --tools $(TOOLS)

# The simulated fleet (bench/fleet): agent endpoints on 127.0.200.x … 127.0.207.x, no lab needed.
FLEET   ?= 100,250,500
bench-fleet: install
	$(BIN)/python -m bench.fleet --nodes $(FLEET) --runs $(RUNS)

# Pull mode (bench/pull): N simulated pullers against the host's nginx serving the store on 127.0.203.1.
PULLERS ?= 100,500
bench-pull: install
	$(BIN)/python -m bench.pull --nodes $(PULLERS) --runs $(RUNS)

# Every speed figure in one run, each beside its target (bench/all): the four benches above and
# bench.rollout, one after the other.
bench-all: install lab-host $(VENV)/.bench-extra
	$(BIN)/python -m bench.all --runs $(RUNS)   # 20 lab nodes, 2,000 and 5,000 simulated

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
