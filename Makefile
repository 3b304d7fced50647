# tether: the two commands a new user needs are `make demo` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
PORT ?= 8080
FUZZ_SECONDS ?= 60

.PHONY: all deps build test demo fuzz bench asan clean format

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit (virtual clock), interop (python websockets, node ws), fuzz smoke runs.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

demo: build
	@echo ""
	@echo "tether chat on http://127.0.0.1:$(PORT)/  (Ctrl-C stops it)"
	@echo "  open http://127.0.0.1:$(PORT)/ in two browser tabs"
	@echo "  (rooms, nicknames, presence, history; the indicator shows connected / reconnecting / offline)"
	@echo ""
	$(BUILD)/tether serve --host 127.0.0.1 --port $(PORT) --mode chat --json-events

# libFuzzer targets under ASan+UBSan (clang), FUZZ_SECONDS each.
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Throughput comparison against the Boost.Beast peer; writes docs/bench.md.
bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTETHER_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	bench/run.sh --out docs/bench.md

# The unit and interop suites under ASan+UBSan, in a separate build directory.
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTETHER_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS) --timeout 600

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
