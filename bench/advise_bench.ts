/**
 * Benchmarks of advice, each case beside its baseline in the same
 * `deno bench` run (`make bench`):
 *
 * - "populate 1 GiB": fault in every page of a 1 GiB memfd mapping, with
 *   `advise(m, "populate-write")` (one `madvise(MADV_POPULATE_WRITE)`:
 *   Linux 5.14) against JavaScript writing one byte of every page through a
 *   `bytes()` view (the baseline: 262144 write faults), and against
 *   `bl_touch` in `bench/c/advise.c`, the same loop in C (the traps without
 *   JavaScript). The pages are freed before each timed section
 *   (`advise(m, "remove")`, untimed), so every case allocates and maps
 *   1 GiB of fresh shmem pages; read the ratio from the "x faster than"
 *   lines of the summary.
 *
 * Measured on this project's build machine (Linux 6.18.44 in a Firecracker
 * guest, 2 cores shared with other jobs, shmem without THP, Deno 2.9.6):
 * `make build/bench/libadvise.so`, then
 * `deno bench --allow-ffi --v8-flags=--js-immutable-arraybuffer bench/advise_bench.ts`.
 * Two runs: with n 10, JavaScript 16.6 s per GiB, `populate-write` 1.7 s,
 * C 16.4 s (10.0x); with n 5 (the file as it is), 9.3 s, 1.1 s and 10.3 s
 * (8.2x). So populate-write is 8-10x faster than touching every page from
 * JavaScript, whose loop costs nothing beside the faults (C's is no
 * faster). Each fault here is a trap out of the guest (about 35-60 us; a C
 * program measures 3.1 s for 256 MiB touched, 0.25 s populated), so the
 * ratio is this machine's: on bare metal a fault costs under a microsecond
 * and the gain of one madvise is smaller. The pages the three cases allocate are the
 * same (fresh shmem pages, mapped writable).
 */

import { adviceSupported, advise, MemFd, pageSize } from "../mod.ts";
import { openBaseline } from "./_baseline.ts";

const c = openBaseline("libadvise.so", {
  // int64_t (uint64_t address, uint64_t length, uint64_t page)
  bl_touch: { parameters: ["u64", "u64", "u64"], result: "i64" },
});

const PAGE = pageSize();
const GiB = 1 << 30;
const GROUP = "populate 1 GiB";

const fd = MemFd.create("bench-populate", { size: GiB });
const m = fd.map();
const view = m.bytes();

/** Frees the memfd's pages (and this mapping's page table entries): the next case starts cold. */
function cold(): void {
  advise(m, "remove");
}

Deno.bench({
  name: "JavaScript: write one byte of every page through a view",
  group: GROUP,
  baseline: true,
  n: 5,
  warmup: 1,
  fn(b) {
    cold();
    b.start();
    for (let i = 0; i < GiB; i += PAGE) view[i] = 0;
    b.end();
  },
});

Deno.bench({
  name: 'memkit: advise(m, "populate-write")',
  group: GROUP,
  ignore: !adviceSupported("populate-write"),
  n: 5,
  warmup: 1,
  fn(b) {
    cold();
    b.start();
    advise(m, "populate-write");
    b.end();
  },
});

Deno.bench({
  name: "C: write one byte of every page (bl_touch)",
  group: GROUP,
  n: 5,
  warmup: 1,
  fn(b) {
    cold();
    b.start();
    const ret = c.bl_touch(m.address, BigInt(GiB), BigInt(PAGE));
    b.end();
    if (ret < 0n) throw new Error(`Cannot run the C baseline bl_touch: ${ret}`);
  },
});
