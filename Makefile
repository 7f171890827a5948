# memkit: build the native library, run the suite, the tour and the benchmarks.
#
#   make run     the tour of every capability on this machine
#   make test    the whole suite (C tests under sanitizers, static checks, deno test)
#   make bench   the benchmarks, each beside its C or copying baseline
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

.PHONY: all build deno run test test-c test-vm bench bench-vm bindgen clean

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

run: build deno
	$(DENO) run --allow-ffi --allow-read=$(CURDIR)/cli.ts,/proc/self/maps,/proc/self/pagemap,/dev/mem,/proc/iomem,/tmp/memkit-tour.sock --allow-write=/proc/sys/vm/compact_memory,/tmp/memkit-tour.sock \
		--allow-net=unix:/tmp/memkit-tour.sock --allow-run=$(shell readlink -f $$(command -v $(DENO))) $(V8FLAGS) cli.ts tour

test: build deno
	DENO="$(DENO)" CC="$(CC)" SAN_CFLAGS="$(SAN_CFLAGS)" bash tests/run.sh

# Each bench/c/NAME.c is a shared library of C baselines, loaded by the bench files.
build/bench/lib%.so: bench/c/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

bench: build deno $(BENCH_C)
	$(DENO) bench --allow-ffi --allow-read=/proc,/dev/mem,/dev/zero,/tmp --allow-write=/tmp \
		--allow-net=unix:/tmp/memkit-bench.sock,unix:/tmp/memkit-bench-channel.sock,unix:/tmp/memkit-bench-unix.sock \
		--allow-run=$(shell readlink -f $$(command -v $(DENO))) --allow-sys=loadavg \
		--allow-env=MEMKIT_CHANNEL_SIZES $(V8FLAGS) bench/

test-vm: build deno $(BENCH_C)
	DENO="$(DENO)" bash tests/vm/run.sh test

bench-vm: build deno $(BENCH_C)
	DENO="$(DENO)" bash tests/vm/run.sh bench

bindgen: deno
	$(DENO) task bindgen

clean:
	rm -rf build
