# cnnlab — every target installs what it needs first (into .venv) and then runs.
# `make help` lists the targets; ARGS passes Hydra overrides, e.g. make train ARGS="pooling=avg".

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cnnlab-installed
ARGS ?=
# Importing Lightning without bytecode costs ~10 s: make sure .pyc files get written.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help install train models lint check test bench sweep experiment report explore clean clean-logs

help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv if missing and install cnnlab with its pinned torch/torchvision

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "cnnlab: installing into $(VENV) (torch $$(grep -m1 '^torch==' constraints.txt | cut -d= -f3); log in $(VENV)/install.log) ..."
	@start=$$(date +%s); \
	if ! $(PY) -m pip install --progress-bar off -c constraints.txt -e '.[dev]' > $(VENV)/install.log 2>&1; then \
		grep -v "is ignored: it is neither a file nor a directory" $(VENV)/install.log | tail -n 30; \
		echo "cnnlab: install failed, full log in $(VENV)/install.log"; exit 1; \
	fi; \
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true; \
	echo "cnnlab: installed in $$(( $$(date +%s) - start )) s"
	@touch $@

train: install ## train the default experiment (LeNet-5 on the shipped MNIST); ARGS="..." adds overrides
	$(VENV)/bin/cnnlab-train $(ARGS)

sweep: install ## example sweep: pooling x activation, one W&B run per job (ARGS adds overrides)
	$(VENV)/bin/cnnlab-train -m pooling=max,avg activation=relu,tanh $(ARGS)

# make experiment LAUNCHER=slurm: one SLURM job per run (conf/hydra/launcher/slurm.yaml; ARGS sets its resources)
LAUNCHER ?= parallel
NAME ?=
DATA ?= mnist
experiment: install ## run experiments/NAME's sweep on DATA (mnist; or cifar10_jpeg, ...) in parallel, then its report into experiments/NAME/DATA/; run again, it redoes only failed or missing jobs (make experiment NAME=pooling DATA=cifar10_jpeg [LAUNCHER=slurm])
	@test -f experiments/$(NAME)/config.yaml || { echo "cnnlab: NAME must be one of: $$(cd experiments && ls */config.yaml | cut -d/ -f1 | tr '\n' ' ')(e.g. make experiment NAME=pooling)"; exit 2; }
	@test -f conf/data/$(DATA).yaml || { echo "cnnlab: DATA must be one of: $$(cd conf/data && ls *.yaml | sed 's/.yaml//' | tr '\n' ' ')(e.g. make experiment NAME=$(NAME) DATA=cifar10_jpeg)"; exit 2; }
	$(VENV)/bin/cnnlab-train -m experiment=$(NAME) data=$(DATA) hydra/launcher=$(LAUNCHER) resume=true $(ARGS); status=$$?; \
	$(VENV)/bin/cnnlab-report --experiment $(NAME) --data $(DATA) && exit $$status

report: install ## side-by-side report of run or sweep dirs: make report ARGS="logs/multiruns/<date>/<time>"
	$(VENV)/bin/cnnlab-report $(ARGS)

explore: install ## the trained runs live in the browser, stage by stage: make explore ARGS="logs/runs/<date>/<time> [more run or sweep dirs]"
	$(VENV)/bin/cnnlab-explore $(ARGS)

models: install ## list every model: named stages, output shapes, parameters (ARGS="vgg16 --image-size 32")
	$(VENV)/bin/cnnlab-models $(ARGS)

lint: install ## ruff (pinned; rules and line length in pyproject.toml) over src, tests and benchmarks
	$(VENV)/bin/ruff check src tests benchmarks

check: lint ## the quick inner loop, ~2.5 min on 2 cores: lint + the tests not marked slow (no training subprocess)
	$(VENV)/bin/pytest -m "not slow" -q $(ARGS)

test: lint ## lint + every test, the slow ones too: what CI runs (.ci/run), 13-15 min on 2 cores (reads the CIFAR-10 copy in ../shared)
	$(VENV)/bin/pytest $(ARGS)

bench: install ## speed ratios side by side (5 pairs after a warm-up, median and min-max): overhead, data, logging, sweep, CIFAR-10, pictures on CIFAR-10, the cifar10_fast frontier, the explorer's redraw in Chromium (72 min here on 2026-12-02 before cifar_pictures, which adds about 30, and cifar_pictures_untimed about 3; ARGS="--only overhead")
	$(PY) -m benchmarks $(ARGS)

clean-logs: ## delete logs/ (all runs, checkpoints and offline W&B runs!)
	rm -rf logs

clean: ## delete .venv and caches (keeps logs/)
	rm -rf $(VENV) .pytest_cache src/*.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
