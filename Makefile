# sedbench — every target creates the virtual environment when it is missing.
# GPU users: make setup TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data

.PHONY: setup browser postgres demo test bench lint clean

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
	$(BIN)/sedbench evaluate --sweep demo --pitch-shift=-2,-1,1,2
	$(BIN)/sedbench report demo
	@echo
	@echo "Demo report: results/demo/index.md (tables as Markdown, figures as PNG with their data as CSV)."
	@echo "Dashboard:   $(BIN)/sedbench dashboard            then open http://127.0.0.1:5000 (MLflow runs)"
	@echo "             $(BIN)/sedbench dashboard --optuna   also http://127.0.0.1:8080 (Optuna study); Ctrl-C stops"

# Headless Chromium for the dashboard's browser test (Debian packages), installed when missing and root.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: chromium/chromium-driver are missing and this is not root: the browser test will skip"; fi; \
	fi

# PostgreSQL server binaries for the scale-out test (Debian package), installed when missing and root.
# The test starts its own throwaway server on 127.0.0.1 (tests/test_postgres.py).
postgres:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing postgresql (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: PostgreSQL is missing and this is not root: the postgres test will skip"; fi; \
	fi

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m sedbench.bench --out results/bench.json

lint: $(STAMP)
	$(BIN)/ruff check sedbench tests

clean:
	rm -rf $(VENV) results/cache
