# ssm-bench — one command per result. `make help` lists the targets.
SWIFT   ?= swift
APT_PACKAGES := libgsl-dev libhdf5-dev hdf5-tools libopenblas-dev liblapacke-dev pkg-config
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps build test bench-core clean

help:
	@echo "make deps        install the Debian packages that are missing (idempotent)"
	@echo "make build       release build of every target"
	@echo "make test        deps, then the full test suite (swift test)"
	@echo "make bench-core  autodiff and objective microbenchmarks -> results/bench-core.md, results/bench-objectives.md"

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

test: deps
	$(SWIFT) test

bench-core: build
	.build/release/bench-core mlp --out results/bench-core.md
	.build/release/bench-core objectives --out results/bench-objectives.md

clean:
	rm -rf .build
