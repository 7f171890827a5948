/**
 * Benchmarks of stitching, rings and protection, each beside its baseline in
 * the same `deno bench` run (`make bench`):
 *
 * - "stitch N KiB chunks": `stitch()` of a 1 GiB memfd's chunks in shuffled
 *   order, then `close()`, against copying the same chunks into one buffer
 *   (`TypedArray.set`, into a buffer allocated once), and against
 *   `bl_stitch` in `bench/c/stitch.c`, a C loop making the same system calls
 *   (fstat, the reservation, one `mmap` per run of chunks, `munmap`). Each
 *   chunk size has two groups, one per baseline. The goals (issue 3):
 *   stitching beats copying by 20x at 2 MiB chunks and 1.5x at 64 KiB, and
 *   stays within 1.2x of C. At 4 KiB copying wins, and the bench shows it.
 *   At 4 KiB, 1 GiB would need 262144 mappings, over `vm.max_map_count`
 *   (65530 by default): that case stitches as many chunks as the limit
 *   leaves room for, and copies the same amount.
 * - "ring N-byte messages": 1 MiB of messages per iteration through a
 *   64 KiB `RingBuffer` (`reserve`, fill, `commit`, `peek`, read, `consume`,
 *   in batches of 16), against a copying ring over one `ArrayBuffer` (copy
 *   in with a split at the wrap, copy out likewise): bytes per second are
 *   1 MiB over the time per iteration.
 * - "protect toggle": `protect("r")` and back to `"rw"` of a 1-page mapping,
 *   and of one page inside a 256-page one (the kernel splits and merges the
 *   mapping each time), against `bl_protect_toggle`, the same two `mprotect`
 *   calls from C on the same kind of mapping. Goal: within 2x.
 */

import { type Mapping, MemFd, RingBuffer, stitch } from "../mod.ts";
import { ok, openBaseline } from "./_baseline.ts";

const c = openBaseline("libstitch.so", {
  // int64_t (int32_t fd, const uint32_t *chunks, uint32_t count, uint64_t chunk)
  bl_stitch: { parameters: ["i32", "buffer", "u32", "u64"], result: "i64" },
  // int64_t (uint64_t address, uint64_t length)
  bl_protect_toggle: { parameters: ["u64", "u64"], result: "i64" },
});

const PAGE = 4096;
const GiB = 1 << 30;
const MAX_4K_CHUNKS = 60000; // leaves room under vm.max_map_count (65530) for Deno's own

/** A seeded shuffle, so every run stitches the same order. */
function shuffled(n: number, seed = 42): Uint32Array {
  const order = new Uint32Array(n).map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const fd = MemFd.create("bench-source", { size: GiB });
const source: Mapping = fd.map();
source.bytes().fill(1); // every page exists: the copy reads real memory
const src = source.bytes();

for (const chunk of [4 * 1024, 64 * 1024, 2 * 1024 * 1024]) {
  const count = Math.min(GiB / chunk, MAX_4K_CHUNKS);
  const order = shuffled(count);
  const chunks = Array.from(order, (i) => ({ source: fd, offset: i * chunk, length: chunk }));
  const dst = new Uint8Array(count * chunk);
  const size = count * chunk >= GiB ? "1 GiB" : `${(count * chunk) >> 20} MiB`;
  const label = `${chunk >> 10} KiB chunks, ${size}`;

  const copy = () => {
    for (let k = 0; k < count; k++) {
      const off = order[k] * chunk;
      dst.set(src.subarray(off, off + chunk), k * chunk);
    }
  };
  const stitchAndClose = () => stitch(chunks).close();

  Deno.bench(`copy ${label} (TypedArray.set)`, {
    group: `stitch vs copy: ${label}`,
    baseline: true,
  }, copy);
  Deno.bench(`stitch ${label}`, { group: `stitch vs copy: ${label}` }, stitchAndClose);
  Deno.bench(`C mmap loop ${label}`, { group: `stitch vs C: ${label}`, baseline: true }, () => {
    ok(c.bl_stitch(fd.fd, order, count, BigInt(chunk)), "bl_stitch");
  });
  Deno.bench(`stitch ${label} `, { group: `stitch vs C: ${label}` }, stitchAndClose);
}

// ---- ring ----

/** A ring that copies in and out of one ArrayBuffer, splitting at the wrap. */
class CopyingRing {
  #buf: Uint8Array;
  #head = 0;
  #tail = 0;
  constructor(size: number) {
    this.#buf = new Uint8Array(size);
  }
  get writable(): number {
    return this.#buf.length - (this.#tail - this.#head);
  }
  write(data: Uint8Array): void {
    if (data.length > this.writable) throw new RangeError("full");
    const size = this.#buf.length;
    const start = this.#tail % size;
    const first = Math.min(data.length, size - start);
    this.#buf.set(data.subarray(0, first), start);
    if (first < data.length) this.#buf.set(data.subarray(first), 0);
    this.#tail += data.length;
  }
  read(out: Uint8Array): void {
    const size = this.#buf.length;
    const start = this.#head % size;
    const first = Math.min(out.length, size - start);
    out.set(this.#buf.subarray(start, start + first));
    if (first < out.length) out.set(this.#buf.subarray(0, out.length - first), first);
    this.#head += out.length;
  }
}

const RING = 64 * 1024;
const BATCH = 16;
for (const size of [64, 4096]) {
  const message = new Uint8Array(size).fill(7);
  const messages = (1 << 20) / size;
  const ring = RingBuffer.create(RING);
  const copying = new CopyingRing(RING);
  const out = new Uint8Array(size);
  let sink = 0;
  const group = `ring ${size}-byte messages, 1 MiB per iteration`;
  Deno.bench(`copying ring, ${size}-byte messages`, { group, baseline: true }, () => {
    for (let m = 0; m < messages; m += BATCH) {
      for (let k = 0; k < BATCH; k++) copying.write(message);
      for (let k = 0; k < BATCH; k++) {
        copying.read(out);
        sink += out[size - 1];
      }
    }
  });
  Deno.bench(`RingBuffer reserve/commit/peek/consume, ${size}-byte messages`, { group }, () => {
    for (let m = 0; m < messages; m += BATCH) {
      for (let k = 0; k < BATCH; k++) {
        ring.reserve(size).set(message);
        ring.commit(size);
      }
      for (let k = 0; k < BATCH; k++) {
        sink += ring.peek(size)[size - 1];
        ring.consume(size);
      }
    }
  });
  if (sink < 0) console.log(sink);
}

// ---- protect ----

const protectFd = MemFd.create("bench-protect", { size: 256 * PAGE });
const small = protectFd.map({ length: PAGE });
const cSmall = protectFd.map({ length: PAGE });
Deno.bench("C mprotect r, rw (a 1-page mapping)", {
  group: "protect toggle, whole mapping",
  baseline: true,
}, () => {
  ok(c.bl_protect_toggle(cSmall.address, BigInt(PAGE)), "bl_protect_toggle");
});
Deno.bench('protect("r"), protect("rw") of a 1-page mapping', {
  group: "protect toggle, whole mapping",
}, () => {
  small.protect("r");
  small.protect("rw");
});

// One page inside a larger mapping: the kernel splits the mapping and merges
// it back, on both sides.
const large = protectFd.map();
const cLarge = protectFd.map();
const page17 = 17n * BigInt(PAGE);
Deno.bench("C mprotect r, rw (page 17 of 256)", {
  group: "protect toggle, one page of 256",
  baseline: true,
}, () => {
  ok(c.bl_protect_toggle(cLarge.address + page17, BigInt(PAGE)), "bl_protect_toggle"); // keeps cLarge reachable
});
Deno.bench("protect page 17 of 256 to r and back", {
  group: "protect toggle, one page of 256",
}, () => {
  large.protect("r", { offset: 17 * PAGE, length: PAGE });
  large.protect("rw", { offset: 17 * PAGE, length: PAGE });
});
