# Set-up is part of every target: the virtual environment is created if missing, torch's CPU wheel is installed
# first (an open range would pull the multi-GB CUDA build), then the project with its dev extra.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qfl-installed

.PHONY: quickstart test bench docs install install-gpu clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/qfl quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

docs: $(STAMP)
	$(BIN)/python -m pdoc -o build/docs --docformat google qfl_qiskit
	@echo "API reference: build/docs/index.html"

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	$(BIN)/python benchmarks/bench_gradients.py

install-gpu: $(STAMP)
	$(BIN)/python -m pip uninstall -y qiskit-aer
	$(BIN)/python -m pip install -q "qiskit-aer-gpu>=0.17"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
