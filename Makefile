# tfmodels: `make train MODEL=<name>` and `make test` work on a fresh machine: the first call
# creates .venv and installs the project; a stamp file makes later calls start at once.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

MODEL    ?=
PRESET   ?= default
DATA     ?=
STRATEGY ?=
ARGS     ?=
PYTEST_ARGS ?=

.PHONY: install train test test-slow export verify list bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

define need_model
	@if [ -z "$(MODEL)" ]; then echo "usage: make $@ MODEL=<name> (see: make list)"; exit 2; fi
endef

## make train MODEL=mnist_cnn [PRESET=tiny|default|paper] [DATA=...] [STRATEGY=...] [ARGS="--set k=v ..."]
train: $(STAMP)
	$(need_model)
	$(BIN)/tfmodels train $(MODEL) --preset $(PRESET) $(if $(DATA),--data $(DATA)) $(if $(STRATEGY),--strategy $(STRATEGY)) $(ARGS)
	$(BIN)/tfmodels verify-export saved_models/$(MODEL)

## make export MODEL=mnist_cnn [RUN=runs/mnist_cnn/<timestamp>]: a new version from a run (default: the newest)
export: $(STAMP)
	$(need_model)
	$(BIN)/tfmodels export $(or $(RUN),$(shell ls -d runs/$(MODEL)/*/ 2>/dev/null | sort | tail -n 1))
	$(BIN)/tfmodels verify-export saved_models/$(MODEL)

verify: $(STAMP)
	$(need_model)
	$(BIN)/tfmodels verify-export saved_models/$(MODEL)

list: $(STAMP)
	@$(BIN)/tfmodels list

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=20 $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m slow $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/tfmodels bench

clean:
	rm -rf runs build *.egg-info
