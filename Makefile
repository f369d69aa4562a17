# meshmart: the targets read like the README. Everything setup downloads or builds lives
# under .cache/ (git-ignored) and .venv/, and a second run reuses it.

PYTHON      ?= python3
UV_VERSION  := 0.13.8
CACHE       := $(CURDIR)/.cache
UV          := $(CACHE)/tools/uv-$(UV_VERSION)/bin/uv
VENV_STAMP  := .venv/.synced
CONSOLE_WEB := $(CACHE)/console-web

export UV_CACHE_DIR          := $(CACHE)/uv
export UV_PYTHON_DOWNLOADS   := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv

.PHONY: help setup browser istioctl istio-oracle kustomize fortio kind-source kind-up kind-down run test unit integration lint format openapi bench chaos soak clean

help:
	@echo "make run    set everything up and run the shop (Ctrl-C stops it all)"
	@echo "make test   set everything up and run lint + the whole test suite"
	@echo "make lint   ruff, ruff format --check, mypy --strict, openapi check"
	@echo "make bench  benchmarks: fortio load, every process sampled (docs/benchmarks.md)"
	@echo "make chaos  the full chaos run and edge fuzzing at 100 examples (docs/reliability.md)"
	@echo "make soak   30 minutes of steady load, every process judged flat (docs/reliability.md)"

setup: $(VENV_STAMP) $(CONSOLE_WEB)/.installed

# uv itself comes from PyPI into the cache; it then installs exactly what uv.lock pins.
$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meshmart needs Python 3.11+, found " + sys.version.split()[0])'
	@echo "==> installing uv $(UV_VERSION) into $(CACHE)/tools"
	@$(PYTHON) -m venv $(CACHE)/tools/uv-$(UV_VERSION)
	@$(CACHE)/tools/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV_STAMP): $(UV) pyproject.toml uv.lock
	@echo "==> syncing .venv from uv.lock"
	@$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# The console's front end (cytoscape.js from npm, pinned by the committed package-lock.json),
# installed with npm ci into the cache: nothing is vendored, nothing comes from a CDN.
$(CONSOLE_WEB)/.installed: mesh/console/web/package.json mesh/console/web/package-lock.json
	@echo "==> installing the console's front end (npm ci: cytoscape, cytoscape-dagre)"
	@mkdir -p $(CONSOLE_WEB)
	@cp mesh/console/web/package.json mesh/console/web/package-lock.json $(CONSOLE_WEB)/
	@cd $(CONSOLE_WEB) && npm ci --cache $(CACHE)/npm --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's Chromium for the console's browser test (Playwright drives it; no browser
# download), and an emoji font for the graph's 🔒 and ⚖. apt-get when missing (needs root).
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
browser:
	@{ command -v chromium && test -f $(EMOJI_FONT); } >/dev/null || { \
	  echo "==> installing Debian's chromium (apt-get) for the browser test"; \
	  if [ "$$(id -u)" != 0 ]; then echo "the browser test needs chromium: run 'sudo apt-get install chromium fonts-noto-color-emoji'" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

# The real istioctl, built once from the Go module proxy into .cache/ (minutes the first time).
istioctl:
	@tools/istioctl/build.sh >/dev/null

# istiod's config generation as a program (tools/istio-oracle), the reference that
# tests/conformance compares local mode with; built once into .cache/ like istioctl.
istio-oracle:
	@tools/istio-oracle/build.sh >/dev/null

# kustomize, built once from the Go module proxy into .cache/ (seconds).
kustomize:
	@tools/kustomize/build.sh >/dev/null

# kind's source (not a binary: kind cannot run here), so tests check kind-cluster.yaml's keys
# against kind's own config types.
KIND_VERSION := v0.33.0
kind-source:
	@test -f .cache/go/mod/sigs.k8s.io/kind@$(KIND_VERSION)/go.mod || \
	  (echo "==> fetching sigs.k8s.io/kind@$(KIND_VERSION) source from the Go module proxy" && \
	   GOMODCACHE=$(CURDIR)/.cache/go/mod GOFLAGS=-mod=mod GOTOOLCHAIN=local \
	   go mod download sigs.k8s.io/kind@$(KIND_VERSION))

run: setup
	.venv/bin/meshmart run $(ARGS)

test: setup lint istioctl istio-oracle kustomize kind-source fortio browser
	.venv/bin/pytest

unit: setup
	.venv/bin/pytest tests/unit

integration: setup
	.venv/bin/pytest tests/integration tests/e2e

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/meshmart openapi check

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

openapi: setup
	.venv/bin/meshmart openapi write

clean:
	rm -rf .venv $(CACHE)

# fortio, Istio's load generator, built once from the Go module proxy into .cache/ (seconds).
fortio:
	@tools/fortio/build.sh >/dev/null

# Every scenario of docs/benchmarks.md (~20 min): bench/results/<date>-<commit>.json and .md,
# and the generated section of docs/benchmarks.md. BENCH_ARGS="--only overhead" for a subset.
bench: setup fortio
	.venv/bin/python -m bench $(BENCH_ARGS)

# The chaos run at full size (three rounds of the fault schedule, ~9 min), its record in
# .cache/chaos (operations.jsonl, faults.jsonl, report.txt), then the edge fuzzing at 100
# examples per operation (docs/reliability.md). make test runs both smaller.
chaos: setup
	MESHMART_CHAOS_SCALE=full MESHMART_CHAOS_OUT=$(CACHE)/chaos .venv/bin/pytest -s -p no:cacheprovider tests/chaos
	MESHMART_FUZZ_EXAMPLES=100 .venv/bin/pytest -p no:cacheprovider tests/mesh/test_edge_fuzz.py

# 30 minutes of steady mixed load; judges RSS, fds, connections, lag (docs/reliability.md).
soak: setup
	.venv/bin/python -m bench.soak $(SOAK_ARGS)

# Cluster mode (kind + Istio; needs docker, kind, kubectl, istioctl). DRY_RUN=1 prints every
# command and renders every manifest without them (deploy/kind-up.sh --dry-run).
kind-up: setup kustomize
	deploy/kind-up.sh $(if $(DRY_RUN),--dry-run)

kind-down:
	deploy/kind-down.sh $(if $(DRY_RUN),--dry-run)
