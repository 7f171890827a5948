# memkit: build the native library, run the suite, the tour and the benchmarks.
#
#   make run     the tour of every capability on this machine
#   make test    the whole suite (C tests under sanitizers, static checks, deno test)
#   make bench   the benchmarks, each beside its C, copying or peer baseline, and a table of ratios
#   make bench-peers  install the peer tools of bench/peers_bench.ts (as root; make bench does it)
#   make test-vm   the /dev/mem tests in a QEMU guest (also part of make test)
#   make bench-vm  the /dev/mem benchmark in the guest, printed by the host
#
# Deno: the one on PATH, else the pinned npm build installed into .tools/.

DENO_VERSION := 2.9.6
TOOLS_DENO := $(CURDIR)/.tools/node_modules/.bin/deno
DENO ?= $(shell command -v deno 2>/dev/null || echo $(TOOLS_DENO))

CC ?= cc
CFLAGS := -O2 -g -fPIC -std=c11 -Wall -Wextra -Werror -fvisibility=hidden
SAN_CFLAGS := -O1 -g -std=c11 -Wall -Wextra -Werror -fsanitize=address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=all

SRCS := $(wildcard cbits/*.c)
HDRS := $(wildcard cbits/*.h)
# BUILD: where objects and the library go (the suite builds a clang copy in build/clang).
BUILD ?= build
OBJS := $(patsubst cbits/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIB := $(BUILD)/libmemkit.so
BENCH_C := $(patsubst bench/c/%.c,build/bench/lib%.so,$(wildcard bench/c/*.c))
BENCH_CFLAGS := -O2 -g -fPIC -std=c11 -Wall -Wextra -Werror -shared
V8FLAGS := --v8-flags=--js-immutable-arraybuffer

.PHONY: all build deno run test test-c test-vm bench bench-peers bench-vm bindgen clean

all: build

build: $(LIB)

$(BUILD)/obj/%.o: cbits/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(OBJS)
	$(CC) -shared -o $@ $(OBJS)

# Installs the pinned Deno only when none is on PATH.
deno: $(DENO)

$(TOOLS_DENO):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error deno@$(DENO_VERSION)

# The tour's flags: every step's, each path scoped (deno task tour runs this target too).
TOUR_SOCK := /tmp/memkit-tour.sock
TOUR_SHM := /dev/shm/memkit-tour
TOUR_KSHARED := /sys/kernel/debug/memkit_kshared
run: build deno
	$(DENO) run --allow-ffi \
	  --allow-read=$(CURDIR)/cli.ts,/proc/self/maps,/proc/self/pagemap \
	  --allow-read=/proc/kpageflags,/proc/kpagecount,/dev/mem,/proc/iomem \
	  --allow-read=$(TOUR_SHM),$(TOUR_SOCK),$(TOUR_KSHARED) \
	  --allow-write=/proc/sys/vm/compact_memory,$(TOUR_SHM) \
	  --allow-write=$(TOUR_SOCK),$(TOUR_KSHARED) \
	  --allow-net=unix:$(TOUR_SOCK) \
	  --allow-run=$(shell readlink -f $$(command -v $(DENO))) \
	  $(V8FLAGS) cli.ts tour

test: build deno
	DENO="$(DENO)" CC="$(CC)" SAN_CFLAGS="$(SAN_CFLAGS)" bash tests/run.sh

# Each bench/c/NAME.c is a shared library of C baselines, loaded by the bench files.
build/bench/lib%.so: bench/c/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<
# bench/c/lock.c compiles memkit's own cbits/lock.c in.
build/bench/liblock.so: cbits/lock.c $(HDRS)

# The peers of bench/peers_bench.ts (psutil, numpy, pmap, Node's shm-typed-array), each
# installed only when missing and only as root; one that cannot be is left out (its group
# runs memkit's side alone and says so). Never part of make test.
PEERS_PY := $(shell python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
SHM_TYPED_ARRAY := 0.1.1

bench-peers:
	@missing=""; \
	for m in psutil numpy; do \
	  for py in "$(PEERS_PY)" "PYTHONPATH=/usr/lib/python3/dist-packages $(PEERS_PY)" /usr/bin/python3; do \
	    [ -n "$${py%% *}" ] && env $$py -c "import $$m" 2>/dev/null && continue 2; \
	  done; missing="$$missing python3-$$m"; \
	done; \
	command -v pmap >/dev/null || missing="$$missing procps"; \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	command -v c++ >/dev/null || missing="$$missing g++"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "bench-peers: installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	      >/dev/null || echo "bench-peers: could not install$$missing"; \
	  else echo "bench-peers: missing$$missing (run as root to install)"; fi; \
	fi
	@if [ ! -e build/peers/node_modules/shm-typed-array/build/Release/shm.node ] && command -v npm >/dev/null; then \
	  echo "bench-peers: building shm-typed-array@$(SHM_TYPED_ARRAY) into build/peers/"; \
	  mkdir -p build/peers && npm install --prefix build/peers --no-audit --no-fund --loglevel=error \
	    shm-typed-array@$(SHM_TYPED_ARRAY) >/dev/null || echo "bench-peers: shm-typed-array did not build"; \
	fi

# The human lines and the table of ratios come from the JSON (bench/summary.ts); the exit
# status is deno bench's.
BENCH_FLAGS := --allow-ffi --allow-read=/proc,/dev/mem,/dev/zero,/tmp --allow-write=/tmp \
	--allow-net=unix:/tmp/memkit-bench.sock,unix:/tmp/memkit-bench-channel.sock,unix:/tmp/memkit-bench-unix.sock \
	--allow-run --allow-sys=loadavg --allow-env=MEMKIT_CHANNEL_SIZES $(V8FLAGS)

bench: build deno $(BENCH_C) bench-peers
	@mkdir -p build/bench
	@echo "machine: $$(nproc) CPUs, $$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $$(uname -r); load average at the start: $$(uptime | sed 's/.*load average: //')"
	@echo "command: make bench ($(DENO) bench --json $(BENCH_FLAGS) bench/)"
	@rc=0; $(DENO) bench --json $(BENCH_FLAGS) bench/ > build/bench/results.json || rc=$$?; \
	$(DENO) run --allow-read=build/bench bench/summary.ts build/bench/results.json; \
	echo "peak memory of a first readSmaps, 10,000 mappings, vs psutil (bench/peers/peak_rss.py):"; \
	for py in "$(PEERS_PY)" "PYTHONPATH=/usr/lib/python3/dist-packages $(PEERS_PY)" /usr/bin/python3; do \
	  [ -n "$${py%% *}" ] && env $$py -c "import psutil" 2>/dev/null || continue; \
	  env $$py bench/peers/peak_rss.py --rounds 5 --deno "$(DENO)" | sed -n 's/^median/  median/p'; break; \
	done; \
	echo "load average at the end: $$(uptime | sed 's/.*load average: //')"; exit $$rc

test-vm: build deno $(BENCH_C)
	DENO="$(DENO)" bash tests/vm/run.sh test

bench-vm: build deno $(BENCH_C)
	DENO="$(DENO)" bash tests/vm/run.sh bench

bindgen: deno
	$(DENO) task bindgen

clean:
	rm -rf build
