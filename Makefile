# sedbench — every target creates the virtual environment when it is missing.
# GPU users: make setup TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data

.PHONY: setup demo test bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	@test -f $(DATA)/synth_demo/dataset.yaml || \
	  $(BIN)/sedbench data generate synth --out $(DATA)/synth_demo --minutes-train 8 --seed 0
	$(BIN)/sedbench data info $(DATA)/synth_demo
	$(BIN)/sedbench sweep demo
	$(BIN)/sedbench report demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m sedbench.bench --out results/bench.json

lint: $(STAMP)
	$(BIN)/ruff check sedbench tests

clean:
	rm -rf $(VENV) results/cache
