# Two commands do everything: `make lectures` (execute every lecture notebook into build/) and `make test`.
# Both set up .venv first; set-up reruns only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU-only Linux laptop? `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu` skips the CUDA download.
TORCH_INDEX ?=

.PHONY: setup test lectures lab release sync strip tinyworld card clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

test: setup
	$(BIN)/python -m pytest

lectures: setup
	$(BIN)/python -m utils.notebooks run

lab: setup
	$(BIN)/jupyter lab

release: setup
	$(BIN)/python -m utils.release

sync: setup
	$(BIN)/python -m utils.notebooks sync
	$(BIN)/python -m utils.release

strip: setup
	$(BIN)/python -m utils.notebooks strip

tinyworld: setup
	$(BIN)/python -m utils.tinyworld.train

card: setup
	$(BIN)/python -m utils.tinyworld.card --write

clean:
	rm -rf build .pytest_cache
