/**
 * Benchmarks of lazy views (`LazyView.create`, userfaultfd), each case
 * beside its baseline in the same `deno bench` run (`make bench`):
 *
 * - "1 GiB, 1% of pages read": a lazy view of a 1 GiB heap buffer made,
 *   one byte read from every 100th page, and closed, against copying the
 *   whole buffer up front (`new Uint8Array(GiB).set(source)`) and reading
 *   the same bytes from the copy. Goal (issue 13): 20x faster or better.
 * - "256 MiB, every page read": every page of a lazy view read once, with
 *   the default (one page per fault), 64 KiB and 1 MiB of readahead,
 *   against a plain copy read the same way (goal: at most 3x slower); and
 *   the same handler serving the same faults when the reads come from C
 *   (`bl_read_pages` in `bench/c/uffd.c`; goal: JavaScript within 1.5x).
 * - "64 MiB memfd, every page touched": a minor-fault alias
 *   (`lazyAlias`: one `UFFDIO_CONTINUE` per page, nothing copied) against a
 *   lazy copy of the same memfd's mapping (`LazyView.create`: one
 *   `UFFDIO_COPY` per page) and against a plain `map()` of it (the kernel's
 *   own minor faults, no handler: the baseline).
 * - "write tracking, 1 GiB, 1% of pages written": `trackWrites` of a
 *   1 GiB memfd mapping, `reset()` after 1% of its pages were written, in
 *   both modes: async (one `PAGEMAP_SCAN` that reports and protects them
 *   again) and sync (the handler's bitmap taken, the range protected
 *   again with one `UFFDIO_WRITEPROTECT`), against comparing the mapping
 *   with a snapshot copy page by page in C (`bl_diff_pages`, which also
 *   brings the snapshot up to date). The writes are outside the timed
 *   section; the next group times them too, where the synchronous mode
 *   pays one handler round trip per page first written.
 *
 * The ratios are in the summary ("x faster/slower than"); the figures
 * measured on this machine are in the README's userfaultfd section. Run
 * with `make build/bench/libuffd.so`, then
 * `deno bench --allow-ffi --allow-read=/proc/self/pagemap --v8-flags=--js-immutable-arraybuffer
 * bench/uffd_bench.ts`.
 */

import { lazyAlias, LazyView, MemFd, pageSize, trackWrites } from "../mod.ts";
import { openBaseline } from "./_baseline.ts";

const c = openBaseline("libuffd.so", {
  // int64_t (uint64_t address, uint64_t length, uint64_t stride)
  bl_read_pages: { parameters: ["u64", "u64", "u64"], result: "i64" },
  // int64_t (uint64_t a, uint64_t b, uint64_t length, uint64_t page)
  bl_diff_pages: { parameters: ["u64", "u64", "u64", "u64"], result: "i64" },
});

const PAGE = pageSize();
const GiB = 1 << 30;
const FULL = 256 << 20;

const source = new Uint8Array(GiB);
for (let i = 0; i < GiB; i += PAGE) source[i] = (i / PAGE) & 0xff;
const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(source));

/** Reads one byte of every `stride` bytes of `b` up to `length`; returns their sum. */
function readPages(b: Uint8Array, length: number, stride: number): number {
  let sum = 0;
  for (let i = 0; i < length; i += stride) sum += b[i];
  return sum;
}

const ONE_PERCENT = "1 GiB, 1% of pages read";

Deno.bench({
  name: "copy 1 GiB up front, read 1% of its pages",
  group: ONE_PERCENT,
  baseline: true,
  n: 5,
  warmup: 1,
  fn() {
    const copy = new Uint8Array(GiB);
    copy.set(source);
    readPages(copy, GiB, 100 * PAGE);
  },
});

Deno.bench({
  name: "LazyView.create of 1 GiB, read 1% of its pages",
  group: ONE_PERCENT,
  n: 5,
  warmup: 1,
  fn() {
    using view = LazyView.create({ address, length: GiB });
    readPages(view.bytes(), GiB, 100 * PAGE);
    if (source.length !== GiB) throw new Error("the source is gone"); // keeps it reachable
  },
});

const EVERY = "256 MiB, every page read";

Deno.bench({
  name: "plain copy of 256 MiB, read every page",
  group: EVERY,
  baseline: true,
  n: 3,
  warmup: 1,
  fn() {
    const copy = new Uint8Array(FULL);
    copy.set(source.subarray(0, FULL));
    readPages(copy, FULL, PAGE);
  },
});

for (const readahead of [PAGE, 64 << 10, 1 << 20]) {
  Deno.bench({
    name: `LazyView.create, readahead ${readahead >> 10} KiB, read every page from JavaScript`,
    group: EVERY,
    n: 3,
    warmup: 1,
    fn() {
      using view = LazyView.create({ address, length: FULL }, { readahead });
      readPages(view.bytes(), FULL, PAGE);
    },
  });
}

Deno.bench({
  name: "LazyView.create, readahead 4 KiB, read every page from C (bl_read_pages)",
  group: EVERY,
  n: 3,
  warmup: 1,
  fn() {
    using view = LazyView.create({ address, length: FULL });
    view.bytes(); // as the JavaScript case: a view handed out, so close() scrubs
    const ret = c.bl_read_pages(view.address, BigInt(FULL), BigInt(PAGE));
    if (ret < 0n) throw new Error(`Cannot run the C baseline bl_read_pages: ${ret}`);
  },
});

const MINOR = "64 MiB memfd, every page touched";
const SMALL = 64 << 20;
const memfd = MemFd.create("bench-uffd-alias", { size: SMALL });
const filled = memfd.map();
for (let i = 0; i < SMALL; i += PAGE) filled.bytes()[i] = 1; // every page in the page cache

Deno.bench({
  name: "map() of the memfd (the kernel's minor faults)",
  group: MINOR,
  baseline: true,
  n: 5,
  warmup: 1,
  fn() {
    using m = memfd.map();
    readPages(m.bytes(), SMALL, PAGE);
  },
});

Deno.bench({
  name: "lazyAlias of the memfd (UFFDIO_CONTINUE per page)",
  group: MINOR,
  n: 5,
  warmup: 1,
  fn() {
    using alias = lazyAlias(memfd);
    readPages(alias.bytes(), SMALL, PAGE);
  },
});

Deno.bench({
  name: "LazyView.create of the memfd's mapping (UFFDIO_COPY per page)",
  group: MINOR,
  n: 5,
  warmup: 1,
  fn() {
    using view = LazyView.create(filled);
    readPages(view.bytes(), SMALL, PAGE);
  },
});

const TRACK = "write tracking, 1 GiB, 1% of pages written";
const tracked = MemFd.create("bench-uffd-track", { size: GiB });
const trackedMap = tracked.map();
const trackedBytes = trackedMap.bytes();
for (let i = 0; i < GiB; i += PAGE) trackedBytes[i] = 1;
// A second mapping of the same memfd for the synchronous tracker: one
// userfaultfd serves a range.
const syncMap = tracked.map();
const syncBytes = syncMap.bytes();
for (let i = 0; i < GiB; i += PAGE) void syncBytes[i]; // every page mapped, as in trackedMap
let round = 0;
/** Writes one byte of every 100th page through `bytes`, a different value each round. */
function writeOnePercent(bytes: Uint8Array): void {
  round++;
  for (let i = 0; i < GiB; i += 100 * PAGE) bytes[i + (round % PAGE)] = round & 0xff;
}

const snapshot = new Uint8Array(GiB);
snapshot.set(trackedBytes);
const snapshotAddress = Deno.UnsafePointer.value(Deno.UnsafePointer.of(snapshot));

/** The snapshot compare: the written pages found by comparing with a copy, which it updates. */
function diff(): void {
  const ret = c.bl_diff_pages(trackedMap.address, snapshotAddress, BigInt(GiB), BigInt(PAGE));
  // The snapshot must stay reachable: C writes into it by address.
  if (snapshot.length !== GiB) throw new Error("the snapshot is gone");
  if (ret < 0n) throw new Error(`Cannot run the C baseline bl_diff_pages: ${ret}`);
}

const tracker = trackWrites(trackedMap, { mode: "async" });
const syncTracker = trackWrites(syncMap, { mode: "sync" });

/** reset() of `t`, which must have found written pages. */
function resetOf(t: typeof tracker): void {
  if (t.reset().length === 0) throw new Error("no written pages found");
}

Deno.bench({
  name: "compare with a snapshot copy, page by page (bl_diff_pages)",
  group: TRACK,
  baseline: true,
  n: 5,
  warmup: 1,
  fn(b) {
    writeOnePercent(trackedBytes);
    b.start();
    diff();
    b.end();
  },
});

Deno.bench({
  name: "trackWrites async: reset() (PAGEMAP_SCAN with WP_MATCHING)",
  group: TRACK,
  n: 5,
  warmup: 1,
  fn(b) {
    writeOnePercent(trackedBytes);
    b.start();
    resetOf(tracker);
    b.end();
  },
});

Deno.bench({
  name: "trackWrites sync: reset() (the handler's bitmap, UFFDIO_WRITEPROTECT of the range)",
  group: TRACK,
  n: 5,
  warmup: 1,
  fn(b) {
    writeOnePercent(syncBytes);
    b.start();
    resetOf(syncTracker);
    b.end();
  },
});

// The same, with the writes timed too: what the synchronous mode's one
// fault per page written first costs (the other two pay nothing per write).
const TRACK_WRITES = "write tracking, 1 GiB, 1% of pages written, the writes timed too";

Deno.bench({
  name: "writes, then compare with a snapshot copy (bl_diff_pages)",
  group: TRACK_WRITES,
  baseline: true,
  n: 5,
  warmup: 1,
  fn() {
    writeOnePercent(trackedBytes);
    diff();
  },
});

Deno.bench({
  name: "writes, then trackWrites async: reset()",
  group: TRACK_WRITES,
  n: 5,
  warmup: 1,
  fn() {
    writeOnePercent(trackedBytes);
    resetOf(tracker);
  },
});

Deno.bench({
  name: "writes (one handler fault each), then trackWrites sync: reset()",
  group: TRACK_WRITES,
  n: 5,
  warmup: 1,
  fn() {
    writeOnePercent(syncBytes);
    resetOf(syncTracker);
  },
});
