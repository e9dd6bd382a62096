# Two entry points for a fresh machine: `make demo` and `make test`. Both are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXAMPLE := examples/text-processor/text_processor.wasm
DEMO_INPUT := '{"text":"hello","mode":"reverse"}'
NATIVE := sandbox/_guest_native.so

.PHONY: demo test lint typecheck unit example clean toolchains conformance soak-ci native

demo: $(STAMP) $(NATIVE) $(EXAMPLE)
	$(BIN)/cortex plugin install examples/text-processor --to plugins --force
	$(BIN)/cortex --verbose plugin call text-processor transform $(DEMO_INPUT)

test: $(STAMP) $(NATIVE) toolchains $(EXAMPLE) lint typecheck unit soak-ci

lint: $(STAMP)
	$(BIN)/ruff check cortex_runtime sandbox conformance tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict cortex_runtime sandbox conformance

unit: $(STAMP) $(NATIVE) $(EXAMPLE)
	$(BIN)/python -m pytest -q

example: $(EXAMPLE)

# The worker's one-call path through Wasmtime's C API (docs/performance.md) and the supervisor's
# UTF-8 check; without it the worker takes the same steps in Python, and the check decodes.
native: $(NATIVE)

$(NATIVE): $(wildcard sandbox/native/*.c) scripts/build-native
	bash scripts/build-native

$(EXAMPLE): examples/text-processor/text_processor.c examples/text-processor/build.sh sdk/c/cortex_plugin.h $(STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python examples/text-processor/build.sh

$(STAMP): pyproject.toml
	bash scripts/setup-venv "$(PYTHON)" "$(VENV)"
	touch $(STAMP)

clean:
	rm -rf $(VENV) plugins soak-report .pytest_cache .mypy_cache .ruff_cache $(EXAMPLE) $(NATIVE)

toolchains: $(STAMP)
	VENV=$(VENV) bash scripts/install-toolchains

conformance: $(STAMP) toolchains
	$(BIN)/python -m conformance

# A 60-second soak of the example and every conformance plugin with faults on (docs/soak.md).
# Fails (exit 1) on any lost, doubled or untyped call, unexpected error, leak or drift.
SOAK_DURATION ?= 60s
SOAK_REPORT   ?= soak-report
SOAK_PLUGINS  := examples/text-processor $(sort $(dir $(wildcard conformance/plugins/*/plugin.json)))
soak-ci: $(STAMP) $(EXAMPLE) conformance
	$(BIN)/cortex soak $(SOAK_PLUGINS) --duration $(SOAK_DURATION) --faults --report $(SOAK_REPORT)
