# The two commands a newcomer needs: `make run` and `make test`. See README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# make fuzz: seconds per libFuzzer target; make test runs each for FUZZ_TEST_SECONDS (3: sixteen
# targets, 48 s; each first replays its corpus and kept crashes, which is what catches a
# regression there. make test must stay under 30 minutes: it took 32.5 with 6 s, 2026-12-02)
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 3
CMAKE_GEN  := -G Ninja

# The local stack's store (deploy/local/stack.sh): FerretDB on a private PostgreSQL on PG_PORT.
# The services create GIN indexes in that PostgreSQL through FERRETDB_PG_URI; with MONGO_URI
# set (a server of your own) or LOCAL_STORE=sqlite there is none, so it stays unset.
export LOCAL_STORE ?= postgresql
export PG_PORT ?= 5433
ifeq ($(strip $(MONGO_URI)),)
ifeq ($(LOCAL_STORE),postgresql)
export FERRETDB_PG_URI ?= postgres://postgres@127.0.0.1:$(PG_PORT)/ferretdb
endif
endif

.PHONY: all deps build run stop status test test-unit test-faults soak fuzz fuzz-test helm-check images clean

all: build

deps:
	@deploy/local/deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD)

# Installs what is missing, builds, starts Kafka + FerretDB (unless KAFKA_BROKERS /
# MONGO_URI point elsewhere) and the services, and prints where they listen. Authentication
# is on: it creates tenant `dev` and writes .local/dev-credentials.env (AUTH=off: none).
run: build
	@deploy/local/stack.sh start
	@deploy/local/auth.sh keys
	@deploy/local/services.sh start
	@deploy/local/auth.sh bootstrap

stop:
	@deploy/local/services.sh stop
	@deploy/local/stack.sh stop

status:
	@deploy/local/stack.sh status
	@deploy/local/services.sh status

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DCQRS_SANITIZE=ON -DCQRS_E2E=OFF

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-unit: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD)
	cd $(ASAN_BUILD) && ctest -L unit --output-on-failure

# The soak run (tests/soak/run.sh): every service for SOAK_SECONDS (600) at half the mixed
# load's measured maximum, AUTH on; fails when a service's RSS grows more than 10% after the
# warm-up, a request fails, a service logs an error or a minute's p99 drifts past 2x the median.
soak: build
	@deploy/local/stack.sh start
	tests/soak/run.sh

# The libFuzzer targets (tests/fuzz/, clang + ASan/UBSan), one after another,
# FUZZ_SECONDS each (FUZZ_TARGETS="command http" picks some). Own build dir, no
# build type: -O1 with asserts on.
$(FUZZ_BUILD)/build.ninja:
	CC=clang cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCQRS_FUZZ=ON -DCQRS_TESTS=OFF

fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) --target fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)

# The short run inside make test: replays every kept crash and fuzzes a little.
fuzz-test:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

# The whole suite: sanitized unit tests (once: the plain build's run of them is skipped), the
# fuzz targets briefly, then integration + end-to-end against the local stack (started here
# when it is not up), including the container images' smoke test (builds them first; skipped
# without a container engine). Ends with ctest's summary.
test: build test-unit fuzz-test helm-check
	@deploy/local/stack.sh start
	cd $(BUILD) && ctest --output-on-failure -LE unit

# The fault-injection suite's long version (tests/faults/, RELIABILITY.md): every scenario
# (SIGKILL command-svc / projector-svc / query-svc / saga-svc / admin-svc with AUTH=on, the
# SIGSTOP zombie, SIGKILL of a FerretDB
# and a stop of a Kafka broker of the scenario's own, never the shared ones) under a longer
# load, each followed by the exactly-once accounting. make test runs the short version (ctest
# faults_short). FAULTS_PRIVATE_STORE=1: every scenario on a FerretDB of its own. Then restore
# under faults on a broker of its own (tests/faults/restore.c: broker lost, SIGTERM, deadline).
FAULTS_PRIVATE_STORE ?= 0
test-faults: build
	@deploy/local/stack.sh start
	cd $(BUILD) && FAULTS_LONG=1 FAULTS_PRIVATE_STORE=$(FAULTS_PRIVATE_STORE) bin/faults --jobs 1
	cd $(BUILD) && FAULTS_LONG=1 bin/faults_restore --jobs 1

# One image per service (deploy/docker/<svc>.Dockerfile) with podman or docker; with podman
# and no registry, a Debian base image made once with debootstrap (.local/images/).
# Idempotent; a second run reuses every layer. `make test` smoke-tests them (ctest -L images).
images: deps
	@deploy/docker/images.sh

# helm lint + helm template (--kube-version) + offline kubectl-validate of the chart.
helm-check:
	@deploy/helm/check.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
