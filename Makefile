# The two commands: `make demo` and `make test`. Everything else is CMake.
# `make install PREFIX=...` and `make package` (a .deb) are CMake's install
# and CPack (packaging/).
BUILD ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local

FUZZ_SECONDS ?= 15

.PHONY: all build demo test test-sanitize fuzz deps clean format bench install \
	package

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

test-sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DTRELLIS_SANITIZE=ON >/dev/null
	cmake --build build-sanitize -j $(JOBS)
	cd build-sanitize && ctest --output-on-failure --timeout 900

# libFuzzer targets (tests/fuzz), built with clang in build-fuzz; each runs
# FUZZ_SECONDS over its corpus (README, "Fuzzing").
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRELLIS_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	$(BUILD)/bin/trellis-bench

# DESTDIR is honoured too (make install PREFIX=/usr DESTDIR=/tmp/root).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# $(BUILD)/trellis_<version>_<arch>.deb, for the prefix /usr.
package: build
	cd $(BUILD) && cpack -G DEB

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-sanitize build-fuzz
