# narwhal: `make run` serves examples/hello.py on 127.0.0.1:8000; `make test` runs
# every test. Both install the Debian packages first (deploy/install-deps.sh); the tests
# also need the pinned PyPI virtualenv (`make venv`, which needs PyPI; `run` does not).
#
# Debian's interpreter, named explicitly: a python3 earlier on PATH may be another
# build without Debian's packages.
PYTHON ?= /usr/bin/python3
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# Current framework releases from PyPI, pinned with hashes, for the integration tests.
VENV ?= $(BUILD)/venv
REQUIREMENTS := tests/requirements/frameworks.txt
UV_VERSION := 0.13.9
GENERATOR := -G Ninja -DPython_EXECUTABLE=$(PYTHON)
PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider
# Integration tests in parallel pytest-xdist processes: they mostly wait on the servers
# they start (each on its own ephemeral port, stopped by PID), so 2 halves the time on a
# 2-core machine. A file's tests stay together, in order, as in one process.
# PYTEST_JOBS=0 runs them all in this process.
PYTEST_JOBS ?= 2
PYTEST_PARALLEL := $(PYTEST) -n $(PYTEST_JOBS) --dist loadfile
# What `make integration` and `make asan` run: a file or a selection (PYTEST_ARGS="tests/integration/x.py -k y").
PYTEST_ARGS ?= tests/integration --ignore=$(CONTAINER_TESTS)
# The container image's tests build it (minutes when cold): run once, by `make container`.
CONTAINER_TESTS := tests/integration/test_container.py
# What `make bench` adds to loadtests/compare.py (BENCH_ARGS="--servers narwhal,granian --rounds 3").
BENCH_ARGS ?=
# Python leaks at exit by design; the sanitizer run looks for memory errors, not leaks.
# A small quarantine keeps the memory-bound tests meaningful under ASan (freed blocks
# would otherwise pile up to 256 MiB before reuse). For the same reason stack-use-after-
# return detection stays off, as GCC 12's libasan has it: GCC 14's turns it on, and its
# fake stacks (several MiB per thread) would count as server memory.
ASAN_ENV := ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=16:detect_stack_use_after_return=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all deps build venv requirements run test unit integration integration-inline asan tsan container fuzz bench format format-check clean image

all: build

deps:
	bash deploy/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD)

# A virtualenv with the pinned PyPI packages (tests/requirements/frameworks.txt): reused
# while that file is unchanged, made anew when it changes. Needs PyPI; `run` does not.
venv: deps
	bash tests/requirements/make_venv.sh $(PYTHON) $(REQUIREMENTS) $(VENV)

# Re-pin frameworks.txt from frameworks.in with uv from a throwaway virtualenv outside the
# repository. Pins already in frameworks.txt are kept; UPGRADE=--upgrade moves every pin
# to the newest release. The command is written into the file's header.
UV_COMPILE := uv pip compile --universal --generate-hashes --python-version 3.11 frameworks.in -o frameworks.txt
requirements:
	tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp" && "$$tmp/bin/pip" install -q uv==$(UV_VERSION) && \
	cd tests/requirements && "$$tmp/bin/"$(UV_COMPILE) $(UPGRADE) \
		--custom-compile-command "make requirements, which runs (uv $(UV_VERSION), in tests/requirements): $(UV_COMPILE)"

run: build
	./$(BUILD)/narwhal hello:app --app-dir examples --host 127.0.0.1 --port 8000

# The container image with the example app (examples/container): a base made from this
# machine's Debian release (deploy/container/make-base.sh), then a two-stage build.
# IMAGE_APP=path/to/your/app (a folder with requirements.txt) puts your own app in.
RELEASE ?= $(shell . /etc/os-release && echo $$VERSION_CODENAME)
IMAGE ?= localhost/narwhal-example:latest
IMAGE_APP ?= examples/container
image: deps
	bash deploy/container/make-base.sh $(RELEASE)
	deploy/container/podman.sh build --format docker --build-arg BASE=localhost/narwhal-base:$(RELEASE) \
		--build-arg APP_DIR=$(IMAGE_APP) -f deploy/container/Containerfile -t $(IMAGE) .

unit: build
	cd $(BUILD) && ctest --output-on-failure

integration: build venv
	NARWHAL_BIN=$(CURDIR)/$(BUILD)/narwhal NARWHAL_TEST_VENV=$(abspath $(VENV)) $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The integration tests again with the interpreter's thread doing the network I/O
# (--io-threads 0, what --io-threads auto picks when the workers fill the CPUs). Not
# test_interpreters.py: several interpreters need an I/O thread.
integration-inline: build venv
	NARWHAL_IO_THREADS=0 NARWHAL_BIN=$(CURDIR)/$(BUILD)/narwhal NARWHAL_TEST_VENV=$(abspath $(VENV)) \
		$(PYTEST_PARALLEL) $(PYTEST_ARGS) --ignore=tests/integration/test_interpreters.py

# The unit and integration tests again, against an AddressSanitizer + UBSan build.
asan: deps venv
	cmake -S . -B $(ASAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DNARWHAL_SANITIZE=ON
	cmake --build $(ASAN_BUILD)
	cd $(ASAN_BUILD) && $(ASAN_ENV) ctest --output-on-failure
	$(ASAN_ENV) NARWHAL_BIN=$(CURDIR)/$(ASAN_BUILD)/narwhal NARWHAL_TEST_VENV=$(abspath $(VENV)) \
		$(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The unit tests (inbox, channel, admission, loop monitor, watchdog: the cross-thread
# parts) under ThreadSanitizer.
tsan: deps
	cmake -S . -B $(TSAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNARWHAL_TSAN=ON
	cmake --build $(TSAN_BUILD) --target narwhal_unit_tests
	TSAN_OPTIONS=halt_on_error=1 $(TSAN_BUILD)/tests/unit/narwhal_unit_tests

# The image built as `make image` builds it, then run with podman: it serves, its
# HEALTHCHECK passes, non-root, its virtualenv, a graceful `podman stop`, the Kubernetes
# config on a read-only root. Cold, the image build compiles narwhal once more.
container: deps venv
	NARWHAL_BIN=$(CURDIR)/$(BUILD)/narwhal NARWHAL_TEST_VENV=$(abspath $(VENV)) $(PYTEST) $(CONTAINER_TESTS)

test: format-check unit integration integration-inline asan tsan container

# libFuzzer, with clang, for $(FUZZ_SECONDS) each: the request path (head scanner, head
# parser, body reader), then the WebSocket frame path (Beast's websocket::stream after the
# handshake), then the TLS handshake with narwhal's server context, then the PROXY
# protocol header parser. Each keeps its
# working corpus in the build directory (libFuzzer reads a corpus directory recursively:
# they are siblings, not nested).
fuzz:
	bash deploy/install-deps.sh fuzz
	cmake -S . -B $(FUZZ_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNARWHAL_FUZZ=ON \
		-DNARWHAL_TESTS=OFF -DCMAKE_CXX_COMPILER=clang++
	cmake --build $(FUZZ_BUILD) --target http_request_fuzz ws_frame_fuzz tls_handshake_fuzz \
		proxy_protocol_fuzz
	mkdir -p $(FUZZ_BUILD)/corpus && cp -n tests/fuzz/corpus/http_request/* $(FUZZ_BUILD)/corpus/ || true
	$(FUZZ_BUILD)/tests/fuzz/http_request_fuzz -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus
	mkdir -p $(FUZZ_BUILD)/corpus-ws_frame && cp -n tests/fuzz/corpus/ws_frame/* $(FUZZ_BUILD)/corpus-ws_frame/ || true
	$(FUZZ_BUILD)/tests/fuzz/ws_frame_fuzz tests/fuzz/regressions/*
	$(FUZZ_BUILD)/tests/fuzz/ws_frame_fuzz -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus-ws_frame
	mkdir -p $(FUZZ_BUILD)/corpus-tls && cp -n tests/fuzz/corpus/tls_client_hello/* $(FUZZ_BUILD)/corpus-tls/ || true
	$(FUZZ_BUILD)/tests/fuzz/tls_handshake_fuzz -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus-tls
	mkdir -p $(FUZZ_BUILD)/corpus-proxy && cp -n tests/fuzz/corpus/proxy_protocol/* $(FUZZ_BUILD)/corpus-proxy/ || true
	$(FUZZ_BUILD)/tests/fuzz/proxy_protocol_fuzz -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus-proxy

bench: build venv
	$(PYTHON) loadtests/compare.py --narwhal-bin $(BUILD)/narwhal --venv $(VENV) $(BENCH_ARGS)

# The C++ sources in .clang-format's style, with the clang-format pinned in the venv (the
# distributions' versions format differently). `format-check` fails on any difference.
CLANG_FORMAT := $(VENV)/bin/clang-format
CXX_SOURCES = $$(git ls-files '*.cpp' '*.hpp')
format: venv
	$(CLANG_FORMAT) -i $(CXX_SOURCES)

format-check: venv
	@$(CLANG_FORMAT) --dry-run -Werror $(CXX_SOURCES) || \
		{ echo "format-check: the files above are not formatted: run 'make format'" >&2; exit 1; }

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
