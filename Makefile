# Shequn — every workflow in one place. The virtual environment lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GEN := services/gen

.PHONY: dev test lint format proto proto-check bench demo clean dashboards manifests k8s-check prometheus

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## dev: start the whole system (embedded broker, database and the five services)
dev: $(STAMP)
	$(BIN)/shequn dev

## demo: a week of simulated group life sent to the running dev stack (DEMO_ARGS=--seed 8 ...)
demo: $(STAMP)
	$(BIN)/shequn demo $(DEMO_ARGS)

## test: run the whole suite against real broker and database processes (as root, first installs
## Debian's prometheus for promtool; without it, those tests are skipped and say why)
test: $(STAMP)
	@[ "$$(id -u)" != 0 ] || $(MAKE) -s prometheus \
		|| echo "make test: could not install prometheus; the promtool tests will be skipped"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff (lint and format check), mypy, and the dashboards and manifests as their code
## writes them
lint: $(STAMP)
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests
	$(BIN)/mypy
	$(BIN)/python -m services.devtools.dashboards --check
	$(BIN)/python -m services.devtools.manifests --check

## prometheus: Debian's prometheus (promtool and the server the tests run), as root
prometheus:
	@command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends prometheus >/dev/null)

## dashboards: write deploy/grafana/dashboards/*.json from their code
dashboards: $(STAMP)
	$(BIN)/python -m services.devtools.dashboards

## manifests: write k8s/base/generated and k8s/overlays/prod/generated from the code
manifests: dashboards
	$(BIN)/python -m services.devtools.manifests

# checkov in a virtual environment of its own: its pinned dependencies are not the project's.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet 'checkov==3.3.30'

## k8s-check: render both overlays and check every object (Kubernetes and CRD schemas, least
## privilege, rollout), checkov on them and the Dockerfile, and the compose file
k8s-check: $(STAMP) $(CHECKOV)
	$(BIN)/python -m services.devtools.manifests --check
	SHEQUN_CHECKOV=$(CHECKOV) $(BIN)/python -m pytest -m k8s -p no:cacheprovider $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix services tests
	$(BIN)/ruff format services tests

## proto: regenerate the Python code of proto/ into services/gen (never edit it by hand)
proto: $(STAMP)
	$(BIN)/python -m services.devtools.protogen $(GEN)

## proto-check: fail when services/gen is not what `make proto` would write
proto-check: $(STAMP)
	rm -rf .proto-check && $(BIN)/python -m services.devtools.protogen .proto-check
	diff -r --exclude=__pycache__ $(GEN) .proto-check && rm -rf .proto-check

## bench: throughput and latency figures
bench: $(STAMP)
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .venv-checkov .shequn .proto-check .pytest_cache .mypy_cache .ruff_cache
