.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

$(NODE_STAMP): tests/node/package.json
	cd tests/node && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
	@touch $(NODE_STAMP)

install: $(STAMP) ## Create .venv and install the server with its dev tools

node: $(NODE_STAMP) ## Install the AI SDK client used by the conformance test

run: $(STAMP) ## Serve on 127.0.0.1:8000 (memory backends, mock provider, demo token unless configured)
	$(BIN)/python -m app

fmt: $(STAMP) ## Format the code
	$(BIN)/ruff format chatstream app tests bench scripts examples
	$(BIN)/ruff check --fix chatstream app tests bench scripts examples

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check chatstream app tests bench scripts examples
	$(BIN)/ruff format --check chatstream app tests bench scripts examples

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

test: $(STAMP) $(NODE_STAMP) ## Run the test suite (real Redis tests run when REDIS_URL is set)
	$(BIN)/pytest -q

test-redis: ## Run the suite against a throwaway redis-server on port 6399
	@redis-server --port 6399 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile /tmp/chat-test-redis.pid
	REDIS_URL=redis://127.0.0.1:6399/0 $(MAKE) test; status=$$?; kill `cat /tmp/chat-test-redis.pid`; exit $$status

check: lint typecheck test ## Lint, typecheck and test

bench: $(STAMP) ## Run the benchmarks (see bench/README.md)
	$(BIN)/python -m bench.relay

cluster: $(STAMP) ## Start redis-server + 3 instances on 127.0.0.1 (ports 8001-8003), like docker-compose
	$(BIN)/python scripts/cluster.py

compose-up: ## docker compose up (needs a Docker engine)
	docker compose up --build

redis-up: ## Start a local redis-server on 6379
	redis-server --port 6379 --bind 127.0.0.1 --daemonize yes

redis-down: ## Stop the local redis-server on 6379
	redis-cli -p 6379 shutdown nosave || true

.PHONY: help install node run fmt lint typecheck test test-redis check bench cluster compose-up redis-up redis-down
