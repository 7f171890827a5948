/**
 * Benchmarks of introspection: memkit beside C doing the same system calls
 * (and the same parsing), in the same `deno bench` run. The C side is
 * `bench/c/introspect.c`.
 *
 * - "pagemap of 1 GiB touched": `Pagemap.read({ start, pages: 262144 })`, one
 *   native call that preads the entries and decodes them into columns
 *   (frame, flags, counts), against one C `pread` of the same entries. Goal:
 *   within 1.25x. Twice: with fresh columns (one new 4.25 MiB buffer per
 *   call for the three columns, of which this case fills only raw, faulted
 *   in with one madvise, and the counts: frame and flags are decoded when
 *   first read; V8 frees old results only at its next collection, so in a
 *   loop like this one most calls get memory new to the process) and with
 *   `{ into }` reusing the previous result's columns.
 * - "PAGEMAP_SCAN of 1 GiB": `scan({ require: ["present"] })` against the
 *   same ioctl from C with the same masks. Goal: within 1.2x.
 * - "maps of a process with 10,000 mappings": `readMaps(pid)` (native read,
 *   TypeScript parse into typed entries) against a C parser that reads the
 *   same file and parses every field, copying each path. Goal: within 2x.
 *   The process is a child forked by the C library that maps 10,000
 *   mappings of alternating protection, so this bench process stays small.
 *
 * Requires `--allow-ffi --allow-read=/proc` (`make bench` passes them).
 */

import { MemFd, Pagemap, readMaps } from "../mod.ts";
import { ok, openBaseline } from "./_baseline.ts";

const c = openBaseline("libintrospect.so", {
  bi_pagemap_open: { parameters: [], result: "i64" }, // int64_t (void)
  bi_close: { parameters: ["i32"], result: "i64" }, // int64_t (int32_t fd)
  bi_touch: { parameters: ["u64", "u64"], result: "i64" }, // int64_t (uint64_t address, uint64_t length)
  // int64_t (int32_t fd, uint64_t vaddr, uint64_t pages, void *out)
  bi_pagemap_pread: { parameters: ["i32", "u64", "u64", "buffer"], result: "i64" },
  // int64_t (int32_t fd, uint64_t start, uint64_t end, void *vec, uint64_t vec_len)
  bi_pagemap_scan: { parameters: ["i32", "u64", "u64", "buffer", "u64"], result: "i64" },
  bi_spawn_vmas: { parameters: ["u32"], result: "i64" }, // int64_t (uint32_t n)
  bi_kill: { parameters: ["i32"], result: "i64" }, // int64_t (int32_t pid)
  bi_parse_maps: { parameters: ["i32"], result: "i64" }, // int64_t (int32_t pid)
});

// ---- pagemap of 1 GiB of touched memory ----

const GiB = 2 ** 30;
const PAGES = GiB / 4096;
const mem = MemFd.create("bench-pagemap", { size: GiB });
const mapping = mem.map();
// Touched from C: a bytes() view would make V8 count 1 GiB of external
// memory for the rest of the run and collect more often in other benches.
ok(c.bi_touch(mapping.address, BigInt(GiB)), "bi_touch");
const pm = Pagemap.open("self");
const cfd = ok(c.bi_pagemap_open(), "bi_pagemap_open");
const raw = new BigUint64Array(PAGES);
const vec = new BigUint64Array(3 * 1024);
const start = mapping.address;
const end = start + BigInt(GiB);
// The bench functions must reach the mapping: a mapping nothing reaches is
// unmapped by memkit's finalizer, and its pages would read absent.
const keep = { mem, mapping };

Deno.bench({
  name: "C: one pread of 262,144 entries",
  group: "pagemap of 1 GiB touched",
  baseline: true,
  fn() {
    if (ok(c.bi_pagemap_pread(cfd, start, BigInt(PAGES), raw), "pread") !== PAGES) {
      throw new Error("short read");
    }
  },
});

Deno.bench({
  name: "memkit: Pagemap.read (pread + decode into columns)",
  group: "pagemap of 1 GiB touched",
  fn() {
    const n = pm.read({ start: keep.mapping.address, pages: PAGES }).presentCount;
    if (n !== PAGES) throw new Error(`pages missing: ${n} of ${PAGES} present`);
  },
});

let reused = pm.read({ start, pages: PAGES });
Deno.bench({
  name: "memkit: Pagemap.read into reused columns",
  group: "pagemap of 1 GiB touched",
  fn() {
    reused = pm.read({ start: keep.mapping.address, pages: PAGES }, { into: reused });
    if (reused.presentCount !== PAGES) throw new Error("pages missing");
  },
});

Deno.bench({
  name: "C: PAGEMAP_SCAN ioctl, present pages",
  group: "PAGEMAP_SCAN of 1 GiB",
  baseline: true,
  fn() {
    ok(c.bi_pagemap_scan(cfd, start, end, vec, 1024n), "scan");
  },
});

Deno.bench({
  name: 'memkit: scan({ require: ["present"] })',
  group: "PAGEMAP_SCAN of 1 GiB",
  fn() {
    pm.scan({ start, end }, { require: ["present"] });
  },
});

// ---- maps of a process with 10,000 mappings ----

const child = ok(c.bi_spawn_vmas(10_000), "bi_spawn_vmas");
globalThis.addEventListener("unload", () => {
  c.bi_kill(child);
  c.bi_close(cfd);
});
const lines = ok(c.bi_parse_maps(child), "bi_parse_maps");
if (readMaps(child).length !== lines || lines < 10_000) {
  throw new Error(`the child has ${lines} mappings, readMaps saw ${readMaps(child).length}`);
}

Deno.bench({
  name: "C: read /proc/<pid>/maps and parse every field",
  group: "maps of a process with 10,000 mappings",
  baseline: true,
  fn() {
    ok(c.bi_parse_maps(child), "bi_parse_maps");
  },
});

Deno.bench({
  name: "memkit: readMaps(pid)",
  group: "maps of a process with 10,000 mappings",
  fn() {
    readMaps(child);
  },
});
