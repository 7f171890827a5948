// flags: --allow-ffi --allow-run=$DENO,cat --allow-read=mod.ts,src,ffi,build,tests,/tmp --allow-write=/tmp --allow-net --v8-flags=--js-immutable-arraybuffer
// SeqLock between real processes: a writer process rewrites a 64-byte record
// (15 words and their checksum) without pause while 3 reader processes read
// it through SeqLock.read(): no read may see a torn record. Each peer gets
// this process's memfd sealed, over a memkit socket, and checks it before it
// maps it (tests/fixtures/share.ts, tests/fixtures/lock_child.ts).
// MEMKIT_SEQLOCK_READS overrides the total count (10 million by default; read
// only with --allow-env=MEMKIT_SEQLOCK_READS).
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { MemFd, MemkitError, SeqLock } from "../mod.ts";
import { spawnedReport } from "./fixtures/child.ts";
import { spawnSharingPeer } from "./fixtures/share.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const fixture = `${root}/tests/fixtures/lock_child.ts`;

function checksum(words: Uint32Array, n = 15): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ words[i], 0x01000193) >>> 0;
  return h;
}

function totalReads(): number {
  // Queried first: an ungranted variable would prompt in a terminal.
  const env = { name: "env", variable: "MEMKIT_SEQLOCK_READS" } as const;
  if (Deno.permissions.querySync(env).state !== "granted") return 10_000_000;
  return Number(Deno.env.get("MEMKIT_SEQLOCK_READS") ?? 10_000_000);
}

Deno.test("a writer process and 3 reader processes: 0 torn reads of a 64-byte record", async () => {
  using fd = MemFd.create("seqlock-torn", { size: 4096 });
  fd.seal(["shrink", "grow"]);
  using m = fd.map();
  using seq = SeqLock.init(m, 256, 64);
  seq.write((data) => {
    const words = new Uint32Array(data.buffer, data.byteOffset, 16);
    words.fill(0);
    words[15] = checksum(words);
  });
  const total = totalReads();
  const each = Math.ceil(total / 3);
  const t0 = performance.now();
  const writer = await spawnSharingPeer(fixture, fd, "seqwriter");
  const readers = await Promise.all(
    [0, 1, 2].map(() => spawnSharingPeer(fixture, fd, "seqreader", [String(each)])),
  );
  const results = await Promise.all(
    readers.map((r) =>
      spawnedReport<{ reads: number; torn: number; versions: number; rawTorn: number }>(
        r,
        "seqreader",
      )
    ),
  );
  m.view(Uint32Array, 192, 1)[0] = 1; // stop the writer
  const { writes } = await spawnedReport<{ writes: number }>(writer, "seqwriter");
  const ms = performance.now() - t0;
  console.log(
    `${3 * each} reads by 3 processes during ${writes} writes in ${ms.toFixed(0)} ms; ` +
      `versions seen per reader: ${results.map((r) => r.versions).join(", ")}; ` +
      `torn among reads that bypassed the seqlock: ${results.map((r) => r.rawTorn).join(", ")}`,
  );
  assertEquals(results.map((r) => r.torn), [0, 0, 0]);
  assert(results.every((r) => r.reads === each));
  assert(writes > 0);
});

Deno.test("the SeqLock header: magic, version, length; attach checks it", () => {
  using fd = MemFd.create("seqlock-header", { size: 4096 });
  using m = fd.map();
  assertEquals(SeqLock.headerLength, 32);
  SeqLock.init(m, 0, 100);
  assertEquals(new TextDecoder().decode(m.bytes(0, 4)), "MKSQ");
  assertEquals(m.view(Uint32Array, 8, 1)[0], 100);
  assertEquals(SeqLock.attach(m, 0).length, 100);
  assertEquals(assertThrows(() => SeqLock.attach(m, 512), MemkitError).code, "EBADMSG");
  m.view(Uint32Array, 8, 1)[0] = 1 << 20; // more data than the mapping has
  const err = assertThrows(() => SeqLock.attach(m, 0), MemkitError);
  assertEquals(err.code, "EBADMSG");
  assertMatch(err.message, /past the end of the mapping/);
  assertThrows(() => SeqLock.init(m, 3, 8), RangeError);
  assertThrows(() => SeqLock.init(m, 0, 4096), RangeError);
});

Deno.test("read() gives up after maxRetries with EAGAIN while a write stays in progress", () => {
  using fd = MemFd.create("seqlock-stuck", { size: 4096 });
  using m = fd.map();
  using seq = SeqLock.init(m, 0, 8);
  const seqWord = m.view(BigUint64Array, 16, 1);
  seqWord[0] = 1n; // odd: a write that never ends (a writer's own bookkeeping aside)
  const err = assertThrows(() => seq.read((d) => d[0], { maxRetries: 5 }), MemkitError);
  assertEquals(err.code, "EAGAIN");
  assertMatch(err.message, /gave up after 5 attempts \(5 found a write in progress/);
  // A write takes over (no writer is recorded) and the sequence is even again.
  seq.write((d) => d.fill(4));
  assertEquals(seq.read((d) => d[0]), 4);
  // An exception on a clean attempt propagates; nested writes are refused.
  assertThrows(
    () =>
      seq.read(() => {
        throw new Error("mine");
      }),
    Error,
    "mine",
  );
  const nested = assertThrows(() => seq.write(() => seq.write(() => {})), MemkitError);
  assertEquals(nested.code, "EDEADLK");
  assertEquals(seq.read((d) => d[0]), 4);
});

Deno.test("a second live writer is refused with EBUSY; a dead writer's write is taken over", () => {
  using fd = MemFd.create("seqlock-writers", { size: 4096 });
  using m = fd.map();
  using seq = SeqLock.init(m, 0, 8);
  using other = SeqLock.attach(m, 0);
  seq.write(() => {
    const err = assertThrows(() => other.write(() => {}), MemkitError);
    assertEquals(err.code, "EDEADLK"); // this process is the writer
  });
  // A live writer elsewhere (this process's parent, its start time read with cat(1)).
  const stat = new TextDecoder().decode(
    new Deno.Command("cat", { args: [`/proc/${Deno.ppid}/stat`] }).outputSync().stdout,
  );
  const start = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  m.view(BigUint64Array, 24, 1)[0] = BigInt(Deno.ppid) | (BigInt(start % 2 ** 31) << 32n);
  const busy = assertThrows(() => other.write(() => {}), MemkitError);
  assertEquals(busy.code, "EBUSY");
  assertMatch(busy.message, new RegExp(`pid ${Deno.ppid} is writing it`));
  // A writer word naming no live process (pid 0x3ffffff, start time 1): taken over.
  m.view(BigUint64Array, 24, 1)[0] = 0x3ffffffn | (1n << 32n);
  m.view(BigUint64Array, 16, 1)[0] = 7n;
  other.write((d) => d.fill(2));
  assertEquals(seq.read((d) => [...d]), [2, 2, 2, 2, 2, 2, 2, 2]);
  assertEquals(m.view(BigUint64Array, 16, 1)[0], 8n);
});

Deno.test("attach() and read() work over a read-only mapping that another mapping writes", () => {
  // A page the reader may only read (as a kernel driver's page is mapped),
  // written through a second mapping of the same memfd; a writer that, like
  // a kernel one, records no identity (the writer word stays 0).
  using fd = MemFd.create("seqlock-readonly", { size: 4096 });
  using rw = fd.map();
  using ro = fd.map({ access: "r" });
  SeqLock.init(rw, 64, 16);
  const seqWord = rw.view(BigUint64Array, 64 + 16, 1);
  const data = rw.bytes(64 + SeqLock.headerLength, 16);
  const kernelWrite = (value: number) => {
    seqWord[0]++; // odd: a write in progress
    data.fill(value);
    seqWord[0]++;
  };
  kernelWrite(5);
  using reader = SeqLock.attach(ro, 64);
  assertEquals(reader.length, 16);
  assertEquals(reader.read((d) => [...d]), new Array(16).fill(5));
  kernelWrite(6);
  assertEquals(reader.read((d) => d[15]), 6);
  assertEquals(rw.view(BigUint64Array, 64 + 24, 1)[0], 0n, "no writer recorded");
  // The view read() gives is read-only: a write throws, nothing faults.
  assertThrows(() => reader.read((d) => (d[0] = 1)), TypeError);
  assertEquals(reader.read((d) => d[0]), 6);
  // A write in progress that does not end: EAGAIN, saying the sequence is odd.
  seqWord[0]++;
  const err = assertThrows(() => reader.read((d) => d[0], { maxRetries: 3 }), MemkitError);
  assertEquals(err.code, "EAGAIN");
  assertMatch(
    err.message,
    /a write is in progress \(sequence \d+, odd\) by a writer that records no identity/,
  );
  seqWord[0]++;
  // No writer over a read-only mapping: a TypeError before any native call.
  assertThrows(() => reader.write(() => {}), TypeError, 'a writer needs access "rw"');
  assertThrows(() => SeqLock.init(ro, 128, 8), TypeError);
  // Attach checks the header through the read-only mapping too.
  assertEquals(assertThrows(() => SeqLock.attach(ro, 512), MemkitError).code, "EBADMSG");
  ro.close();
  assertThrows(() => reader.read((d) => d[0]), Deno.errors.BadResource);
});

Deno.test("a SeqLock read through a mapping made read-only by protect() goes on reading", () => {
  using fd = MemFd.create("seqlock-protect", { size: 4096 });
  using m = fd.map();
  using other = fd.map();
  using seq = SeqLock.init(m, 0, 8);
  using writer = SeqLock.attach(other, 0);
  writer.write((d) => d.fill(3));
  m.protect("r"); // detaches the seqlock's writable view; it takes a read-only one
  assertEquals(seq.read((d) => d[7]), 3);
  writer.write((d) => d.fill(4));
  assertEquals(seq.read((d) => d[7]), 4);
  assertThrows(() => seq.write(() => {}), TypeError, 'a writer needs access "rw"');
  m.protect("rw");
  seq.write((d) => d.fill(8));
  assertEquals(writer.read((d) => d[0]), 8);
});
