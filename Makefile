# The two commands of the contract: `make dev` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: dev dev-cloud lambda-deps check test lint bench docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/smscode dev

# The cloud shape on this machine: moto as SQS, the Lambda SQS handler fed by a local poller.
dev-cloud: $(STAMP)
	$(BIN)/smscode dev --cloud

# The Google Cloud shape on this machine: the SDK's Pub/Sub emulator pushing to the CloudEvent function.
dev-gcp: $(STAMP)
	$(BIN)/smscode dev --gcp

# One folder per Cloud Run function under build/gcp (main.py, requirements.txt, the smscode
# package), as `gcloud functions deploy --source` uploads it (docs/run/google-cloud.md).
gcp-bundle: $(STAMP)
	$(BIN)/python -m smscode_dev.bundle build/gcp

.PHONY: dev-gcp gcp-bundle

# Runtime dependencies for the Lambda zip (serverless.yml ships build/lambda), as Linux
# x86_64 wheels for Python 3.11, read from pyproject.toml: dependencies + the aws extra.
# Then the bytecode of everything the zip holds, shipped beside the sources: /var/task is
# read-only, so a module without its .pyc is compiled on every cold start (the HTTP
# function's import took ~3.5x as long). checked-hash: a .pyc serves only while its source
# is byte-identical, whatever the zip does to file times. Made by this venv's Python, so of
# use on Lambda only when that is 3.11 too (another version's .pyc is ignored there).
lambda-deps: $(STAMP)
	rm -rf build/lambda && mkdir -p build
	$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["aws"]))' > build/lambda-requirements.txt
	$(BIN)/python -m pip install --quiet --target build/lambda --platform manylinux2014_x86_64 \
		--implementation cp --python-version 3.11 --only-binary=:all: -r build/lambda-requirements.txt
	$(BIN)/python -m compileall -q -f -j 0 --invalidation-mode checked-hash \
		build/lambda shared/smscode functions

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports --no-cache

# The documentation site (mkdocs.yml) into site/; --strict: any warning, a broken link or a
# setting without a description fails it. NO_MKDOCS_2_WARNING: Material's end-of-life notice
# (printed on every build) is not a warning about this site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The loop to run after every edit: lint, types, import rules, the docs and the unit tests,
# with no server reachable (REDIS_URL is pointed at a closed port so nothing can reach one).
# The unit tests need no schemathesis plugin: not loading it saves seconds of start-up.
check: lint docs
	REDIS_URL=redis://127.0.0.1:9/0 $(BIN)/python -m pytest -q -p no:schemathesis tests/unit

# The browser test drives Debian's Chromium, never a browser Playwright downloads.
# CI runs as root; elsewhere sudo asks once. CJK fonts let the Chinese page render.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk'

test: $(STAMP) $(CHROMIUM) check
	$(BIN)/python -m pytest

# Speed, measured: every figure next to a reference from the same run (docs/benchmarks/index.md).
# wrk comes from Debian; if it cannot be installed the bench uses its Python load generator.
bench: $(STAMP)
	@command -v wrk >/dev/null || $(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y wrk' || echo "bench: wrk not installed; using the Python load generator"
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench
