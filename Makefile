# Two commands for a fresh machine:  `make run`  and  `make test`.  Both are idempotent.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# onnxruntime-gpu where an NVIDIA GPU answers, the CPU build otherwise (never both).
ORT_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP  := $(VENV)/.installed-$(ORT_EXTRA)-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install lint bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, alone: anything that depends on torch installed before it pulls a multi-GB build.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[$(ORT_EXTRA),test]" torch==2.13.0
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) app.py

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/moe-app bench

clean-venv:
	rm -rf $(VENV)
