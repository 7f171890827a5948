// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer --allow-run=cat --allow-env=MEMKIT_RING_SEED
// RingBuffer: randomized traffic through every entry point, checked byte for
// byte against a model over millions of bytes and thousands of wraps; the
// double mapping as the kernel shows it; limits that refuse, never overwrite.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { pageSize, RingBuffer } from "../mod.ts";
import { linesIn } from "./fixtures/procmaps.ts";

const PAGE = pageSize();

/** The byte at absolute stream position p: every position has its own, wraps included. */
const byteAt = (p: number): number => (Math.imul(p, 2654435761) >>> 24) ^ (p & 0xff);

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function traffic(size: number, seed: number, total: number): { wraps: number; bytes: number } {
  using ring = RingBuffer.create(size);
  const random = prng(seed);
  let written = 0; // model: bytes [read, written) are in the ring
  let read = 0;
  let wraps = 0;
  const fill = (view: Uint8Array, from: number) => {
    for (let i = 0; i < view.length; i++) view[i] = byteAt(from + i);
  };
  const check = (view: Uint8Array, from: number) => {
    for (let i = 0; i < view.length; i++) {
      if (view[i] !== byteAt(from + i)) {
        throw new Error(`seed ${seed}: byte ${from + i} is ${view[i]}, not ${byteAt(from + i)}`);
      }
    }
  };
  // Sizes: mostly small, sometimes up to the whole ring, to hit full and empty.
  const amount = (max: number) =>
    random() < 0.1 ? max : Math.min(max, Math.floor(random() ** 3 * size));
  while (read < total) {
    assertEquals(ring.readable, written - read);
    assertEquals(ring.writable, size - (written - read));
    const op = random();
    if (op < 0.25) {
      const n = amount(ring.writable);
      const data = new Uint8Array(n);
      fill(data, written);
      ring.write(data);
      written += n;
    } else if (op < 0.5) {
      const n = amount(ring.writable);
      const view = ring.reserve(n);
      assertEquals(view.length, n);
      fill(view, written);
      const used = Math.floor(random() * (n + 1));
      ring.commit(used);
      if (((written % size) + used) > size) wraps++;
      written += used;
    } else if (op < 0.75) {
      const n = amount(ring.readable);
      const view = ring.peek(n);
      check(view, read);
      ring.consume(n);
      read += n;
    } else if (op < 0.9) {
      const n = amount(ring.readable);
      check(ring.read(n), read);
      read += n;
    } else {
      check(ring.peek(), read); // everything pending, in one view
      if (random() < 0.1) {
        // Over the limit: refused, and nothing changes.
        assertThrows(() => ring.write(new Uint8Array(ring.writable + 1)), RangeError);
        assertThrows(() => ring.reserve(ring.writable + 1), RangeError);
        assertThrows(() => ring.consume(ring.readable + 1), RangeError);
      }
    }
  }
  return { wraps, bytes: read };
}

Deno.test("random traffic through a 4 KiB ring matches the model byte for byte", () => {
  const seed = Number(Deno.env.get("MEMKIT_RING_SEED") ?? (Date.now() % 100000));
  console.log(`  seed ${seed} (MEMKIT_RING_SEED=${seed} replays it)`);
  for (const s of [seed, 1, 2]) {
    const { wraps, bytes } = traffic(PAGE, s, 2_000_000);
    assert(bytes >= 2_000_000 && wraps > 100, `seed ${s}: ${bytes} bytes, ${wraps} wraps`);
  }
});

Deno.test("random traffic through a 64 KiB ring matches the model byte for byte", () => {
  const { wraps, bytes } = traffic(16 * PAGE, 3, 8_000_000);
  assert(bytes >= 8_000_000 && wraps > 10, `${bytes} bytes, ${wraps} wraps`);
});

Deno.test("the ring is one memfd mapped twice back to back", () => {
  using ring = RingBuffer.create(2 * PAGE, { name: "twice" });
  const lines = linesIn(ring.address, 4 * PAGE);
  assertEquals(lines.length, 2);
  assertEquals(lines.map((l) => [l.perms, l.path]), [
    ["rw-s", "/memfd:twice (deleted)"],
    ["rw-s", "/memfd:twice (deleted)"],
  ]);
  assertEquals(lines[0].end, lines[1].start);
  assertEquals(lines[0].start, ring.address);
  // A write near the end of the storage shows at the start: the same page.
  ring.write(new Uint8Array(2 * PAGE - 2));
  ring.consume();
  ring.write(new Uint8Array([1, 2, 3, 4]));
  assertEquals([...ring.peek()], [1, 2, 3, 4]);
  assertEquals(ring.peek().byteOffset, 2 * PAGE - 2);
});

Deno.test("full and empty are told apart; the ring refuses rather than overwrite", () => {
  using ring = RingBuffer.create(PAGE);
  assertEquals([ring.readable, ring.writable], [0, PAGE]);
  ring.write(new Uint8Array(PAGE).fill(9));
  assertEquals([ring.readable, ring.writable], [PAGE, 0]);
  assertThrows(() => ring.write(new Uint8Array(1)), RangeError, "only 0 free");
  assertThrows(() => ring.reserve(1), RangeError);
  assertEquals(ring.peek().every((b) => b === 9), true);
  ring.consume(PAGE);
  assertEquals([ring.readable, ring.writable], [0, PAGE]);
  assertThrows(() => ring.consume(1), RangeError, "only 0 readable");
  ring.reserve(10);
  assertThrows(() => ring.commit(11), RangeError, "only 10 reserved");
  ring.commit(10);
  assertThrows(() => ring.commit(1), RangeError, "only 0 reserved");
});

Deno.test("bad sizes are rejected before anything is created", () => {
  assertThrows(() => RingBuffer.create(PAGE + 1), RangeError, "page size");
  assertThrows(() => RingBuffer.create(0), RangeError);
  assertThrows(() => RingBuffer.create(1.5 as number), TypeError);
  assertThrows(() => RingBuffer.create(PAGE, { name: "a\0b" }), TypeError);
});

Deno.test("close() detaches every view a ring handed out", () => {
  const ring = RingBuffer.create(PAGE);
  const reserved = ring.reserve(8);
  ring.commit(8);
  const peeked = ring.peek();
  ring.close();
  ring.close();
  assertEquals([reserved.length, peeked.length, peeked[0]], [0, 0, undefined]);
  assertThrows(() => ring.peek(), Deno.errors.BadResource);
  assertEquals(ring.closed, true);
});
