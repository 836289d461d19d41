# idnode: `make run` starts the demo (a hierarchy of nodes; the enterprise node of 88.118.8 on
# 127.0.0.1:2641 and HTTP 8000), `make test` runs every check. Both set up .venv first.
# `make bench-import` runs the bulk-import benchmark (not part of `make test`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := var
NODE   := $(DEMO)/enterprise-a

.PHONY: run test lint typecheck pytest clean bench-import fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run-deps

# The demo topology (src/idnode/demo.py), made in $(DEMO)/ on first use: root 2638, secondary
# nodes 2639-2640, the enterprise node 2641 (HTTP 8000), its mirror, a two-server site, a
# recursive node 2645; a PV supply chain across two enterprises; a trust root ($(DEMO)/trust/)
# whose chain signs identifiers of the enterprise node.
run: $(VENV)/.run-deps
	@echo
	@echo "In another terminal (source $(BIN)/activate first, or prefix commands with $(BIN)/):"
	@echo "  idnode resolve 88.118.8/PV-2026-000123"
	@echo "  idnode resolve 88.118.8/PV-2026-000123 --tcp --json"
	@echo "  idnode trace 88.118.8/PV-2026-000001 --direction up --http http://127.0.0.1:8000"
	@echo "  idnode handle create 88.118.8/MY-1 --value 1:URL:https://example.com/my-1 \\"
	@echo "      --as 301:0.NA/88.118.8 --key-file $(NODE)/admin-key.pem"
	@echo "  idnode handle delete 88.118.8/MY-1 --as 300:0.NA/88.118.8 --secret-file $(NODE)/admin-secret"
	@echo "  curl http://127.0.0.1:8000/api/handles/88.118.8/PV-2026-000123"
	@echo "  idnode resolve 88.118.8/PV-2026-000123 --root 127.0.0.1:2638 --verify \\"
	@echo "      --trust-root 0.NA/TRUST --trust-key $(DEMO)/trust/trust-root.pub.pem"
	@echo "  curl http://127.0.0.1:8000/api/verify/88.118.8/PV-2026-000123   # signed values, docs/trust.md"
	@echo "In a browser: http://127.0.0.1:8000/ (the web console; docs/console.md),"
	@echo "  http://127.0.0.1:8000/88.118.8/PV-2026-000123 (add ?noredirect for the values),"
	@echo "  http://127.0.0.1:8000/01/06912345678902 (GS1 Digital Link of the demo medical device)"
	@echo
	$(BIN)/idnode demo topology $(DEMO) --base-port 2638 --http-base 7997

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

pytest: $(VENV)/.test-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

bench-import: $(VENV)/.test-deps
	$(BIN)/python bench/import.py

# `make fuzz` runs each harness of fuzz/ (atheris/libFuzzer) for FUZZ_SECONDS; new inputs go to
# var/fuzz/<harness>, crashes to fuzz/regressions/<harness>/ (replayed by `make test`).
FUZZ_SECONDS ?= 600
FUZZ_HARNESSES ?= message values dispatch

fuzz: $(VENV)/.test-deps
	@for h in $(FUZZ_HARNESSES); do \
		mkdir -p var/fuzz/$$h fuzz/regressions/$$h && \
		echo "== fuzz/$$h.py for $(FUZZ_SECONDS) s" && \
		timeout $$(( $(FUZZ_SECONDS) + 120 )) $(BIN)/python -m fuzz.$$h \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=30 -max_len=8192 \
			-artifact_prefix=fuzz/regressions/$$h/ var/fuzz/$$h fuzz/corpus/$$h || exit 1; \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# `make bench` runs the resolution benchmark, bench/resolution.py (not part of `make test`):
# idnode over UDP, TCP, its JSON API and proxy, against Knot DNS (dnsperf) and nginx (wrk), for
# BENCH_SIZES identifiers, and writes the tables to docs/performance.md. Knot, dnsperf, nginx,
# wrk and PostgreSQL come from Debian when missing (as root, or with passwordless sudo);
# otherwise it says what to install and the benchmark leaves those runs out.
BENCH_SIZES   ?= 1e4,1e6
BENCH_SECONDS ?= 10
BENCH_TOOLS   := knotd:knot dnsperf:dnsperf nginx:nginx wrk:wrk

.PHONY: bench
bench: $(VENV)/.run-deps
	@missing=""; \
	for pair in $(BENCH_TOOLS); do \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $${pair%%:*} >/dev/null 2>&1 \
			|| missing="$$missing $${pair#*:}"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
		|| missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
		else sudo=none; fi; \
		if [ "$$sudo" = none ]; then \
			echo "make bench: not installed:$$missing (Debian: apt-get install$$missing);" \
				"the benchmark leaves out what needs them"; \
		else \
			echo "make bench: installing$$missing from Debian"; \
			$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing \
				|| { $$sudo apt-get update -q && \
				     $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; } \
				|| echo "make bench: could not install$$missing; continuing without"; \
		fi; \
	fi
	$(BIN)/python bench/resolution.py --sizes $(BENCH_SIZES) --seconds $(BENCH_SECONDS) --write-docs
