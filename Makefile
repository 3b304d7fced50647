# tether: the two commands a new user needs are `make demo` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
# ctest's parallelism: 2 even on a bigger machine, since the fault and interop tests check
# real-time bounds that a loaded machine can miss.
TEST_JOBS ?= 2
PORT ?= 8080
FUZZ_SECONDS ?= 60
# The sanitizer build: Debug (-O0) builds in ~2 min on 2 cores, -O1 in more than twice that, and
# the suites it runs (~50 s at -j2) wait on sockets and timers more than they compute, so -O1
# could not win the time back. No examples: nothing in the unit or interop suites needs them.
ASAN_CMAKE_FLAGS = -DCMAKE_BUILD_TYPE=Debug -DTETHER_SANITIZE=ON -DTETHER_BUILD_EXAMPLES=OFF

.PHONY: all deps build asan-build fuzz-build test demo fuzz bench asan clean format

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The ASan+UBSan build of the unit and interop suites (tests named asan.*).
asan-build: deps
	cmake -S . -B $(ASAN_BUILD) $(ASAN_CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The libFuzzer targets (build-fuzz/, clang with ASan+UBSan).
fuzz-build: deps
	FUZZ_JOBS=$(JOBS) scripts/fuzz.sh --build

# Every test, in one ctest run whose closing summary counts them all: unit (virtual clock),
# interop (python websockets, node ws, Chromium), fault, proxy, install, each libFuzzer target
# fuzzed for 30 s and its corpus replayed (fuzz.*), and the unit and interop suites again under
# ASan+UBSan (asan.*, from $(ASAN_BUILD), included by TETHER_CTEST_ASAN=1).
test: build asan-build fuzz-build
	cd $(BUILD) && TETHER_CTEST_ASAN=1 TETHER_ASAN_BUILD_DIR=$(abspath $(ASAN_BUILD)) \
	  ctest --output-on-failure -j $(TEST_JOBS) --timeout 300

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

# Every script-owned section of docs/bench.md and its charts, in one go (~52 min on 2 CPUs):
#   0. bench/micro.py: the codec microbenchmarks (GB/s) and allocations per echoed message
#      (bench/micro_codec, bench/alloc_echo; ~1 min); section `micro`;
#   1. bench/compare.py (BENCH_FLAGS): tether, Boost.Beast, websocketpp, libwebsockets, Node ws and
#      a raw TCP echo ceiling, workloads W1-W4, 7 interleaved rounds with tether and raw TCP back to
#      back in each, and 2 more such pairs per round for W1 and W2 (21 ratios for their targets)
#      (~37 min); section `compare` and the charts in $(BENCH_CHARTS)/;
#   2. bench/idle.sh (IDLE_FLAGS): 10,000 idle connections with heartbeats at 1 s and 25 s, plus the
#      same ping rate as 50,000 connections at 1 s from 10,000 at 200 ms, and the raw TCP floor
#      (bench/peers/raw_heartbeat) for the 1 s and 200 ms runs (~4-5 min); section `idle`;
#   3. bench/fanout.sh (FANOUT_FLAGS): W6/W7 fan-out to 5,000 subscribers, plain, TLS and
#      permessage-deflate, tether vs Node ws, 3 rounds (~7 min); section `fanout`.
# A runner that fails does not stop the others; make then exits non-zero. Shorter:
#   make bench BENCH_FLAGS="--duration 2 --rounds 1" IDLE_FLAGS="--intervals 1s --rate-equivalent 50000" \
#     FANOUT_FLAGS="--rounds 1 --duration 5"
# BENCH_OUT / BENCH_CHARTS write elsewhere (e.g. a copy of the page, for trying the runners out).
BENCH_FLAGS ?= --rounds 7 --pairs 3 --duration 4
IDLE_FLAGS ?= --rounds 1 --rate-equivalent 50000 --floor
FANOUT_FLAGS ?= --rounds 3 --duration 10
BENCH_OUT ?= docs/bench.md
BENCH_CHARTS ?= docs/bench
bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTETHER_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	@rc=0; \
	echo "== bench/micro.py"; \
	/usr/bin/python3 bench/micro.py --build $(BUILD) --out $(BENCH_OUT) > /dev/null || rc=1; \
	echo "== bench/compare.py $(BENCH_FLAGS)"; \
	/usr/bin/python3 bench/compare.py --build $(BUILD) $(BENCH_FLAGS) --out $(BENCH_OUT) --charts $(BENCH_CHARTS) || rc=1; \
	echo "== bench/idle.sh $(IDLE_FLAGS)"; \
	bench/idle.sh --build $(BUILD) $(IDLE_FLAGS) --out $(BENCH_OUT) || rc=1; \
	echo "== bench/fanout.sh $(FANOUT_FLAGS)"; \
	bench/fanout.sh --build $(BUILD) $(FANOUT_FLAGS) --out $(BENCH_OUT) || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make bench: a runner failed (see above); the others' sections were still rewritten" >&2; fi; \
	exit $$rc

# The unit and interop suites under ASan+UBSan only, in a separate build directory.
asan: asan-build
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(TEST_JOBS) --timeout 600

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
