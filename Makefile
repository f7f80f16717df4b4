# predebit. Set-up is two commands: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Property tests: full depth locally, a bounded number of cases in CI.
PROPTEST_CASES ?= $(if $(CI),64,256)
export PROPTEST_CASES

.PHONY: demo test validate build lint bench vectors local-db local-db-stop tools clean-cache

## demo: run every sample verify event against DynamoDB Local and print the decisions
demo:
	scripts/demo.sh

## test: unit, property and DynamoDB Local integration tests, the template checks, and the
## end-to-end run of the functions under cargo lambda watch, the local AgentCore Payments
## service's own tests, and the AgentCore plugin's tests
test: tools validate
	scripts/services.sh run $(CARGO) test --workspace
	scripts/agentcore_local_test.sh
	scripts/services.sh run scripts/e2e.sh
	scripts/services.sh run scripts/plugin_test.sh

## validate: cfn-lint and sam validate --lint on template.yaml (offline: dummy region and credentials)
validate:
	scripts/tools.sh sam
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=validate AWS_SECRET_ACCESS_KEY=validate \
	  SAM_CLI_TELEMETRY=0 .cache/venv-sam/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=validate AWS_SECRET_ACCESS_KEY=validate \
	  SAM_CLI_TELEMETRY=0 .cache/venv-sam/bin/sam validate --lint --template template.yaml

## build: the Lambda bootstraps with cargo lambda, release (ARCH=arm64 default, or x86_64);
## about 10 minutes per architecture on 2 cores, so not part of make test
build:
	scripts/build.sh

## lint: formatting and clippy, warnings are errors; the plugin: ruff (lint and format) and mypy
## (strict on predebit_agentcore), pinned in integrations/agentcore/requirements-dev.txt
PLUGIN_PY := $(CURDIR)/.cache/venv-plugin/bin/python
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/tools.sh plugin
	cd integrations/agentcore && export RUFF_CACHE_DIR=$(CURDIR)/.cache/ruff MYPY_CACHE_DIR=$(CURDIR)/.cache/mypy \
	  && $(PLUGIN_PY) -m ruff check . && $(PLUGIN_PY) -m ruff format --check . && $(PLUGIN_PY) -m mypy

## bench: the pure decision path (criterion), verify, ledger and authorize throughput against
## DynamoDB Local (authorize: and the local AgentCore Payments service), the release bootstraps'
## cold start on a loopback runtime API; then the figures beside the goals (scripts/bench_report.py)
bench: tools
	mkdir -p target/bench
	$(CARGO) bench -p predebit-core --bench decision
	set -o pipefail; for b in verify ledger authorize budget; do \
	  scripts/services.sh run $(CARGO) bench -p predebit-tests --bench $${b}_throughput | tee target/bench/$${b}_throughput.txt; \
	done
	set -o pipefail; scripts/services.sh run scripts/cold_start.sh | tee target/bench/cold_start.txt
	python3 scripts/bench_report.py

## vectors: sign x402 test payments with the official @x402 libraries (pinned in
## tools/x402-vectors/package.json) into crates/core/tests/vectors/x402/signed/; not part of make test
vectors:
	scripts/tools.sh vectors
	node tools/x402-vectors/generate.mjs

## local-db: start DynamoDB Local for manual use and print the endpoint (stop: make local-db-stop)
local-db:
	scripts/services.sh start ddb
	@scripts/services.sh env

local-db-stop:
	scripts/services.sh stop

## tools: fetch DynamoDB Local and create the moto venv under .cache/ (idempotent)
tools:
	scripts/tools.sh all

clean-cache:
	rm -rf .cache
