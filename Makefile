# GCNN-RNN: the two README commands are `make demo` and `make test`.
# Every target installs what it needs (idempotently) on a fresh Debian 12 / Ubuntu machine as root.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3)
VENV := .venv
QVENV := .venv-qgis
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ENGINE_STAMP := $(VENV)/.installed
QGIS_STAMP := $(QVENV)/.installed
QT6VENV := .venv-qt6check
QT6_STAMP := $(QT6VENV)/.installed
PYQT6 := PyQt6==6.7.1
SYS_STAMP := .cache/system-packages

.PHONY: all engine qgis-env qt6-env qt6-check system demo test test-core test-qgis lint package \
	package-release \
	bench clean

all: test

# --- system packages: QGIS from the distribution, Xvfb for GUI tests, venv support ------
$(SYS_STAMP):
	@if ! command -v qgis_process.bin >/dev/null 2>&1 || ! /usr/bin/python3 -c "import qgis.core" 2>/dev/null \
	    || ! command -v xvfb-run >/dev/null 2>&1 || ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 \
	    || ! /usr/bin/python3 -c "import ensurepip" 2>/dev/null \
	    || ! Rscript -e 'library(gstat); library(sp)' >/dev/null 2>&1; then \
	  echo "installing QGIS, Xvfb and R gstat (test oracle) from the distribution (apt-get)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    qgis python3-qgis qgis-providers xvfb xauth python3-venv python3-pip \
	    r-base-core r-cran-gstat r-cran-sp >/dev/null; \
	fi
	@mkdir -p .cache && touch $@

system: $(SYS_STAMP)

# --- the engine environment (numpy 2, TensorFlow, rasterio, ...) -------------------------
$(ENGINE_STAMP): pyproject.toml | $(SYS_STAMP)
	@PY="$(PYTHON)"; \
	if [ -z "$$PY" ] || ! "$$PY" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 10)' 2>/dev/null; then PY=/usr/bin/python3; fi; \
	echo "engine environment $(VENV) from $$PY"; \
	[ -x $(VENV)/bin/python ] || "$$PY" -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[dl,test,cluster]"
	$(VENV)/bin/gcnn-rnn warmup --quiet  # compile the numba kernels into their cache once
	@touch $@

engine: $(ENGINE_STAMP)

# --- the QGIS test environment: QGIS's own Python (numpy 1.24 untouched) + pytest-qgis ---
$(QGIS_STAMP): requirements/qgis-test.txt | $(SYS_STAMP)
	[ -x $(QVENV)/bin/python ] || /usr/bin/python3 -m venv --system-site-packages $(QVENV)
	$(QVENV)/bin/python -m pip install -q -r requirements/qgis-test.txt
	@touch $@

qgis-env: $(QGIS_STAMP)

# --- QGIS 4 (Qt 6) readiness: PyQt6's type stubs from PyPI (no Qt 6 libraries needed) ---
$(QT6_STAMP): | $(SYS_STAMP)
	[ -x $(QT6VENV)/bin/python ] || /usr/bin/python3 -m venv $(QT6VENV)
	$(QT6VENV)/bin/python -m pip install -q --no-deps "$(PYQT6)"
	@touch $@

qt6-env: $(QT6_STAMP)

qt6-check: qt6-env
	$(QT6VENV)/bin/python scripts/check_qt6.py

# --- the two README commands -------------------------------------------------------------
demo: engine
	$(VENV)/bin/gcnn-rnn demo --output-dir demo_output

test: engine qgis-env qt6-env
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory qt6-check
	$(MAKE) --no-print-directory test-core
	$(MAKE) --no-print-directory test-qgis

test-core: engine
	$(VENV)/bin/python -m pytest tests/core -q -p no:cacheprovider

test-qgis: engine qgis-env qt6-env
	GCNN_RNN_PYTHON=$(CURDIR)/$(VENV)/bin/python QT_QPA_PLATFORM=offscreen \
	  xvfb-run -a -s "-screen 0 1280x1024x24" $(QVENV)/bin/python -m pytest tests/qgis -q -p no:cacheprovider

lint: engine
	$(VENV)/bin/ruff check .

bench: engine
	$(VENV)/bin/python benchmarks/bench_kriging.py
	$(VENV)/bin/python benchmarks/bench_hybrid.py
	$(VENV)/bin/python benchmarks/reference_baselines.py
	$(VENV)/bin/python benchmarks/bench_simulation.py --size 200 --nsim 32

# --- the plugin zip for "Install from ZIP" -----------------------------------------------
package:
	$(PYTHON) scripts/package.py --output gcnn_rnn.zip

# the zip to publish: refused while pyproject's [project.urls] are the placeholder address
package-release:
	$(PYTHON) scripts/package.py --release --output gcnn_rnn.zip

clean:
	rm -rf build dist *.egg-info .pytest_cache demo_output gcnn_rnn.zip
