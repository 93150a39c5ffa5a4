# kws — the front door. `make train` builds a wake-word model from nothing; `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KWS := $(VENV)/bin/kws
STAMP := $(VENV)/.kws-installed
CONFIG ?= configs/default.toml
BOARD ?= qemu_mps2_an386
PYTEST_ARGS ?=
TRAIN_ARGS ?=

.PHONY: help setup train test benchmarks bench-data bench-frontend bench-train bench-compile bench-stream firmware sim flash bench clean

help:
	@echo "make setup     install system packages (apt) and .venv with kws (idempotent)"
	@echo "make train     build the default wake-word model from $(CONFIG), offline (TRAIN_ARGS=--force to replace it)"
	@echo "make test      run the test suite"
	@echo "make benchmarks  rerun tools/bench_*.py and rewrite BENCHMARKS.md (needs ../shared)"
	@echo "make firmware | sim | flash | bench   (see README)"

# System packages are checked every time (a few ms when present); the venv is rebuilt when
# pyproject.toml changes.
setup: $(STAMP)
	@bash tools/setup_system.sh

$(STAMP): pyproject.toml
	@bash tools/setup_system.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[train,dev]'
	@touch $(STAMP)

train: setup
	$(KWS) train --config $(CONFIG) $(TRAIN_ARGS)

# pytest exits 5 when it collected nothing: that must fail, not pass silently.
test: setup
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

benchmarks: bench-data bench-frontend bench-train bench-compile

bench-data: setup
	$(PY) tools/bench_data.py

bench-frontend: setup
	$(PY) tools/bench_frontend.py

bench-train: setup
	$(PY) tools/bench_train.py

bench-compile: setup
	$(PY) tools/bench_compile.py

# The wake app under QEMU on real audio (kws bench --mode stream) beside kws eval; needs models/jarvis
# (make train CONFIG=configs/jarvis.toml) and ../shared. About 10 minutes.
bench-stream: setup
	$(PY) tools/bench_stream.py

MODEL ?= models/hey_nova

# The wake app for BOARD with MODEL's compiled model, frontend tables and detector constants.
firmware: setup
	$(PY) -m kws.compile.firmware build --model $(MODEL) --board $(BOARD)

# Stream WAV through the wake app under QEMU (or BOARD=host) and print its detections.
sim: setup
	$(PY) -m kws.compile.firmware sim --model $(MODEL) --board $(BOARD) --wav $(WAV)

# Build APP (default: wake with MODEL=, else selftest) for BOARD and program + verify it through the
# board's probe (pyocd, else openocd; see toolchain/kws/flash.py). DRY_RUN=1 prints the commands only.
# MODEL counts only when given on the command line or in the environment (not the default above).
flash: setup
	@$(PY) -c 'import pyocd' 2>/dev/null || command -v openocd >/dev/null || \
		$(PY) -m pip install -q --disable-pip-version-check -e '.[flash]'
	@$(PY) -m kws.flash --board $(BOARD) $(if $(APP),--app $(APP)) \
		$(if $(filter command line environment,$(origin MODEL)),--model $(MODEL)) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run)

# MLPerf Tiny measurement. PORT=<url> (a serial device, socket://host:port, rfc2217://...) measures the
# board there: MODE=perf|accuracy (default perf), DATASET=<dir> for accuracy, BENCH_ARGS for more kws bench
# options. Without PORT: tools/bench_harness.py measures the MLPerf reference model in QEMU and rewrites
# the bench section of BENCHMARKS.md. MONITOR=lpm01a:<url>|joulescope measures energy (MLPerf Tiny's
# energy mode) with IO_MANAGER=<url> (or PORT=<url>: the DUT's own UART at 9600 baud).
bench: setup
	$(if $(MONITOR),$(KWS) bench --mode energy --monitor $(MONITOR) $(if $(IO_MANAGER),--io-manager $(IO_MANAGER),$(if $(PORT),--port $(PORT))) $(if $(DATASET),--dataset $(DATASET)) $(BENCH_ARGS),$(if $(PORT),$(KWS) bench --mode $(or $(MODE),perf) --port $(PORT) $(if $(DATASET),--dataset $(DATASET)) $(BENCH_ARGS),$(PY) tools/bench_harness.py $(BENCH_ARGS)))

# Removes build outputs only; never data/ or models/.
clean:
	rm -rf build firmware/build .pytest_cache toolchain/kws/features/_frontend_*.so
