.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed
TS_STAMP := clients/typescript/node_modules/.installed
PLAYGROUND_STAMP := app/playground/node_modules/.installed

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	cd tests/node && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
	@touch $(NODE_STAMP)

$(TS_STAMP): clients/typescript/package.json clients/typescript/package-lock.json
	cd clients/typescript && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
	@touch $(TS_STAMP)

$(PLAYGROUND_STAMP): app/playground/package.json app/playground/package-lock.json
	cd app/playground && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
	@touch $(PLAYGROUND_STAMP)

install: $(STAMP) ## Create .venv and install the server with its dev tools

node: $(NODE_STAMP) $(TS_STAMP) $(PLAYGROUND_STAMP) ## Install the npm packages: the AI SDK client, playwright-core and esbuild for the browser tests, openapi-typescript, the playground's

run: $(STAMP) ## Serve on 127.0.0.1:8000 (conversations in ./chatstream.db, mock provider, demo token unless configured)
	$(BIN)/python -m app

fmt: $(STAMP) ## Format the code
	$(BIN)/ruff format chatstream app tests bench scripts examples
	$(BIN)/ruff check --fix chatstream app tests bench scripts examples

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check chatstream app tests bench scripts examples
	$(BIN)/ruff format --check chatstream app tests bench scripts examples

# Each example host has its own top-level package `app`, so one mypy run cannot hold them all (nor the
# server's `app`): each is checked on its own, from its directory. A path given to mypy replaces the
# `files` list of pyproject.toml; the strict settings still come from it.
typecheck: $(STAMP) ## mypy --strict (chatstream, app, tests, bench, scripts, then each example host)
	$(BIN)/mypy
	@for d in examples/*/; do \
	  [ -d "$$d/app" ] || continue; \
	  echo "mypy $${d}app"; \
	  (cd "$$d" && "$(CURDIR)/$(BIN)/mypy" --config-file "$(CURDIR)/pyproject.toml" \
	    --cache-dir "$(CURDIR)/.mypy_cache/examples/$$(basename "$$d")" app) || exit 1; \
	done

test: $(STAMP) ## Run the Python tests, no node needed (real Redis tests run when REDIS_URL is set)
	$(BIN)/pytest -q -m "not node"

test-node: $(STAMP) $(NODE_STAMP) $(TS_STAMP) $(PLAYGROUND_STAMP) ## Run the AI SDK conformance tests, the headless Chromium tests (cross-origin, playground), the TypeScript types
	$(BIN)/pytest -q -m node

test-redis: ## Run the suite against a throwaway redis-server on port 6399
	@redis-server --port 6399 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile /tmp/chat-test-redis.pid
	REDIS_URL=redis://127.0.0.1:6399/0 $(MAKE) test; status=$$?; kill `cat /tmp/chat-test-redis.pid`; exit $$status

check: lint typecheck test test-node ## Lint, typecheck, the Python tests and the node tests

playground: $(PLAYGROUND_STAMP) ## Rebuild the playground's bundle (app/playground/static/app.js) with esbuild
	cd app/playground && node build.mjs

typescript: $(STAMP) $(TS_STAMP) ## Regenerate clients/typescript/ (openapi.json, schema.d.ts) from the OpenAPI document
	$(BIN)/python -m scripts.openapi_types

wheel: $(STAMP) ## Build the wheel into dist/
	$(BIN)/python -m build --wheel --outdir dist .

bench: $(STAMP) ## Run the benchmarks (see bench/README.md)
	$(BIN)/python -m bench.relay

cluster: $(STAMP) ## redis-server + instances on 127.0.0.1 (CLUSTER_PORTS=8001,8002,8003 REDIS_PORT=6390 REDIS_CLUSTER=1); kill one, the rest serve
	$(BIN)/python scripts/cluster.py $(if $(CLUSTER_PORTS),--ports $(CLUSTER_PORTS)) $(if $(REDIS_PORT),--redis-port $(REDIS_PORT)) $(if $(filter-out 0 false,$(REDIS_CLUSTER)),--redis-cluster)

redis-cluster: $(STAMP) ## A 3-master Redis Cluster on 127.0.0.1 until Ctrl-C (REDIS_CLUSTER_PORTS=7101,7102,7103)
	$(BIN)/python -m scripts.redis_cluster $(if $(REDIS_CLUSTER_PORTS),--ports $(REDIS_CLUSTER_PORTS))

test-redis-cluster: ## Run the Redis and Redis Cluster tests against a throwaway redis-server (6399) and cluster (7111-7113)
	@redis-server --port 6399 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile /tmp/chat-test-redis.pid
	@$(BIN)/python -m scripts.redis_cluster --ports 7111,7112,7113 > /tmp/chat-test-redis-cluster.log 2>&1 & echo $$! > /tmp/chat-test-redis-cluster.pid; \
	  for i in $$(seq 100); do grep -q '^REDIS_URL=' /tmp/chat-test-redis-cluster.log && break; sleep 0.2; done
	REDIS_URL=redis://127.0.0.1:6399/0 REDIS_CLUSTER_URL=redis://127.0.0.1:7111/0 $(BIN)/pytest -q -m redis; status=$$?; \
	  kill `cat /tmp/chat-test-redis.pid` `cat /tmp/chat-test-redis-cluster.pid`; exit $$status

compose-up: ## docker compose up (needs a Docker engine)
	docker compose up --build

compose-cluster-up: ## docker compose -f docker-compose.cluster.yml up: a 3-master Redis Cluster + instances (Docker)
	docker compose -f docker-compose.cluster.yml up --build

redis-up: ## Start a local redis-server on 6379
	redis-server --port 6379 --bind 127.0.0.1 --daemonize yes

redis-down: ## Stop the local redis-server on 6379
	redis-cli -p 6379 shutdown nosave || true

.PHONY: help install node run fmt lint typecheck test test-node typescript playground test-redis test-redis-cluster check wheel bench cluster redis-cluster compose-up compose-cluster-up redis-up redis-down
