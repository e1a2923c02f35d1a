# ssm-bench — one command per result. `make help` lists the targets.
SWIFT   ?= swift
APT_PACKAGES := libgsl-dev libhdf5-dev hdf5-tools libopenblas-dev liblapacke-dev pkg-config python3-venv
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN     := .build/release
VENV    := .venv
PYTHON  := $(VENV)/bin/python
# Processes that compute grid cells at once (figure1, table1; figure2 times and runs alone).
JOBS    ?= $(shell nproc)

.PHONY: help deps build test check report docs-check plots-check slurm-check figure1 figure2 figure3 figure4 figure5 figure6 table1 cp-noise all plots bench bench-baseline bench-core bench-neural bench-kernels clean

help:
	@echo "make deps        install the Debian packages that are missing (idempotent)"
	@echo "make build       release build of every target"
	@echo "make test        deps, then the full test suite (swift test, then Tests/cli/hardening.sh on the executables)"
	@echo "make check       quick grids of figure1, table1, figure2, figure3 against experiments/thresholds.yml; committed reports = their .h5; docs' links; plots byte-stable"
	@echo "make report      every results table (results/*.md) regenerated from the committed results files (inspect report)"
	@echo "make slurm-check figure1's quick grid through a single-node SLURM started here (root; installs slurm-wlm, munge): merged = local, a cancelled task resubmitted"
	@echo "make figure1     full figure 1 -> results/figure1.h5, results/figure1.png|pdf"
	@echo "make figure2     full figure 2 -> results/figure2.h5, results/figure2.png|pdf"
	@echo "make figure3     beyond the paper: methods across targets -> results/figure3.h5, results/figure3.md, results/figure3.png|pdf"
	@echo "make figure4     beyond the paper: sampling the trained models -> results/figure4.h5, results/figure4.md, results/figure4.png|pdf"
	@echo "make figure5     beyond the paper: deep score models on 2-D toy data -> results/figure5.h5, results/figure5.md, results/figure5.png|pdf (and figure5-scores.png)"
	@echo "make figure6     beyond the paper: score estimation, score networks vs the Stein and SSGE kernel estimators -> results/figure6.h5, results/figure6.md, results/figure6.png|pdf"
	@echo "make table1      full table 1  -> results/table1.h5, results/table1.md"
	@echo "make cp-noise    CP's per-point vs per-pair noise: variances on figure 1's CP checkpoints -> results/cp-noise.md|h5"
	@echo "make all         all three (figure1 and table1 run JOBS=$(JOBS) processes; JOBS=1 for one)"
	@echo "make bench       DKEF iterations per method and D vs the authors' code -> results/bench.md, results/bench.h5 (BENCH_ARGS=... narrows it)"
	@echo "make bench-baseline  bench against commit BASELINE (default 2a11fc5), cell by cell -> results/bench-vs-BASELINE.md"
	@echo "make bench-core  autodiff and objective microbenchmarks -> results/bench-core.md, results/bench-objectives.md"
	@echo "make bench-neural  seconds per training step of energy and score networks beside PyTorch (a venv in experiments/reference/) -> results/bench-neural.md|json"
	@echo "make bench-kernels  the Stein and SSGE kernel estimators' fit and query seconds beside PyTorch (the same venv) -> results/bench-kernels.md|json"

# Installs only what is missing; prints what it installs.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else \
	  echo "deps: all present ($(APT_PACKAGES))"; \
	fi

build: deps
	$(SWIFT) build -c release

# The Swift tests, then the executables as a user runs them (exit codes, messages, the files
# they leave: Tests/cli/hardening.sh).
test: deps
	$(SWIFT) test --disable-xctest
	$(SWIFT) build
	bash Tests/cli/hardening.sh .build/debug

# The plotting environment, pinned (experiments/requirements.txt).
$(PYTHON): experiments/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r experiments/requirements.txt
	touch $(PYTHON)

# Quick grids are scratch: recomputed from nothing each time, so they test the current code.
check: build
	rm -rf results/quick
	$(BIN)/figure1 --quick --jobs $(JOBS)
	$(BIN)/table1 --quick --jobs $(JOBS)
	$(BIN)/figure2 --quick
	$(BIN)/figure3 --quick --jobs $(JOBS)
	$(BIN)/figure5 --quick --jobs $(JOBS)
	$(BIN)/inspect check --thresholds experiments/thresholds.yml --results results/quick
	$(BIN)/inspect report --check --results results
	$(MAKE) --no-print-directory docs-check plots-check

# Every table of numbers in the docs comes from here: results/<name>.md from results/<name>.h5.
report: build
	$(BIN)/inspect report --results results

# Every relative link and image path in README.md and docs/ resolves (files and #anchors).
docs-check:
	python3 experiments/check_links.py README.md docs

# A figure drawn twice from the same results file is the same bytes (PNG and PDF).
plots-check: $(PYTHON)
	@tmp=$$(mktemp -d) && for i in 1 2; do $(PYTHON) experiments/plot.py figure4 results/figure4.h5 $$tmp/$$i > /dev/null; done; \
	if cmp -s $$tmp/1.png $$tmp/2.png && cmp -s $$tmp/1.pdf $$tmp/2.pdf; then echo "plots-check: figure4 drawn twice: PNG and PDF byte-identical"; rm -rf $$tmp; \
	else echo "plots-check: figure4 drawn twice differs ($$tmp)"; exit 1; fi

# Issue 16: the cluster path on a real SLURM (experiments/slurm/local-cluster.sh, one node, this
# machine): figure1 --quick --submit slurm against a local --jobs 2 run, bit for bit, then a
# cancelled array task resubmitted. Scratch in results/slurm-check/.
slurm-check: build
	bash experiments/slurm/check.sh $(BIN)

figure1: build $(PYTHON)
	$(BIN)/figure1 --jobs $(JOBS)
	$(PYTHON) experiments/plot.py figure1 results/figure1.h5 results/figure1

figure2: build $(PYTHON)
	$(BIN)/figure2
	$(PYTHON) experiments/plot.py figure2 results/figure2.h5 results/figure2

table1: build
	$(BIN)/table1 --jobs $(JOBS)

# Issue 12: the methods on targets beyond N(0, I) (experiments/figure3.yml).
figure3: build $(PYTHON)
	$(BIN)/figure3 --jobs $(JOBS)
	$(PYTHON) experiments/plot.py figure3 results/figure3.h5 results/figure3

# Issue 13: samples from the trained models (experiments/figure4.yml).
figure4: build $(PYTHON)
	$(BIN)/figure4 --jobs $(JOBS)
	$(PYTHON) experiments/plot.py figure4 results/figure4.h5 results/figure4

# Issue 27: deep score models on toy_gradlogp's 2-D datasets (experiments/figure5.yml).
figure5: build $(PYTHON)
	$(BIN)/figure5 --jobs $(JOBS)
	$(PYTHON) experiments/plot.py figure5 results/figure5.h5 results/figure5

# Issue 28: score estimation from samples, networks vs kernel estimators (experiments/figure6.yml).
figure6: build $(PYTHON)
	$(BIN)/figure6 --jobs $(JOBS)
	$(PYTHON) experiments/plot.py figure6 results/figure6.h5 results/figure6

# Issue 17: the variance of CP's estimates under its two noise layouts, on figure 1's CP cells.
cp-noise: build
	$(BIN)/cp-noise --results results/figure1.h5 --out results/cp-noise

all: figure1 figure2 table1

plots: $(PYTHON)
	$(PYTHON) experiments/plot.py figure1 results/figure1.h5 results/figure1
	$(PYTHON) experiments/plot.py figure2 results/figure2.h5 results/figure2
	$(PYTHON) experiments/plot.py figure3 results/figure3.h5 results/figure3
	$(PYTHON) experiments/plot.py figure4 results/figure4.h5 results/figure4
	test ! -e results/figure5.h5 || $(PYTHON) experiments/plot.py figure5 results/figure5.h5 results/figure5

# BENCH_ARGS narrows the run, e.g. make bench BENCH_ARGS="--dims 10 --methods ssm,cp".
bench: build
	$(BIN)/bench $(BENCH_ARGS)

# This code's bench against another commit's (BASELINE), cell by cell, alternating the two:
# results/bench-vs-$(BASELINE).md. The baseline is built in .build-baseline/ (a git worktree).
BASELINE ?= 2a11fc5
bench-baseline: build $(PYTHON)
	@test -d .build-baseline/src || git worktree add --detach .build-baseline/src $(BASELINE)
	cd .build-baseline/src && git checkout -q --detach $(BASELINE) && $(SWIFT) build -c release --scratch-path ../build
	$(PYTHON) experiments/bench_against.py --baseline .build-baseline/build/release/bench --baseline-name $(BASELINE) \
	  --out results/bench-vs-$(BASELINE).md $(BENCH_ARGS)

bench-core: build
	$(BIN)/bench-core mlp --out results/bench-core.md
	$(BIN)/bench-core objectives --out results/bench-objectives.md

# Issue 27: the deep score models' training step beside a PyTorch reference (CPU wheel, its own
# venv: never needed by make test). BENCH_NEURAL_ARGS=... narrows it (--dims 2 --rounds 1).
REFERENCE := experiments/reference/venv/bin/python
$(REFERENCE): experiments/reference/requirements.txt
	python3 -m venv experiments/reference/venv
	experiments/reference/venv/bin/pip install -q -r experiments/reference/requirements.txt
	touch $(REFERENCE)

bench-neural: build $(REFERENCE)
	$(REFERENCE) experiments/reference/bench_neural.py --bench $(BIN)/bench-core --out results/bench-neural.md $(BENCH_NEURAL_ARGS)

# Issue 28: the Stein and SSGE estimators' fit and query beside a PyTorch reference (the same venv).
bench-kernels: build $(REFERENCE)
	$(REFERENCE) experiments/reference/bench_kernels.py --bench $(BIN)/bench-core --out results/bench-kernels.md $(BENCH_KERNELS_ARGS)

clean:
	rm -rf .build
