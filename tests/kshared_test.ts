// flags: --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared,/dev/zero --allow-write=/sys/kernel/debug/memkit_kshared,/dev/zero --allow-run=$DENO,sh --v8-flags=--js-immutable-arraybuffer
// Memory shared with a kernel driver (cbits/memkit_kshared.h). On the host:
// the header checks on memfds laid out wrongly, the checksum against the C
// header's own, reads of a record a test writes under memkit's SeqLock, and
// refusals of a device that is no such driver (/dev/zero). In the QEMU
// guest, against the reference module (tests/vm/kmod, loaded by the guest's
// init; MEMKIT_VM_SUITES=kshared bash tests/vm/run.sh): 10 million SeqLock
// reads with none torn, 100,000 round trips none lost, and the rule-breakers
// (garbage, a word never released, a second release, a holder killed with
// SIGKILL, a write to the read-only page), after each of which the module
// still answers.
import {
  assert,
  assertEquals,
  assertGreater,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  checkKernelPages,
  KERNEL_SHARED_PATH,
  KernelChannel,
  KernelPage,
  kernelRecordChecksum,
  mapDevice,
  type Mapping,
  MemFd,
  MemkitError,
  SeqLock,
} from "../mod.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { readyLine } from "./fixtures/child.ts";
import { probed } from "./fixtures/skip.ts";

const PATH = KERNEL_SHARED_PATH;
const child = new URL("./fixtures/kshared_child.ts", import.meta.url).pathname;

// ---- helpers, tested on the host too ----

/** A record of the reference module's shape for `counter`, its checksum set. */
function record(counter: bigint, timeNs = 1000n): Uint8Array {
  const r = new Uint8Array(64);
  const v = new DataView(r.buffer);
  v.setBigUint64(0, counter, true);
  v.setBigUint64(8, timeNs, true);
  v.setUint32(20, 40, true);
  for (let i = 0; i < 40; i++) r[24 + i] = Number((counter + BigInt(i)) & 0xffn);
  v.setUint32(16, kernelRecordChecksum(r), true);
  return r;
}

/** The C header's mkks_checksum(), through memkit's native library. */
function cChecksum(r: Uint8Array): number {
  return Number(lib().mk_kshared_checksum(r, BigInt(r.length)));
}

/** A memfd laid out as the two pages, as the module lays them out; `edit` breaks it. */
function laidOut(
  edit: (pub: DataView, req: DataView) => void = () => {},
): { fd: MemFd; m: Mapping; seq: SeqLock } {
  const fd = MemFd.create("kshared-pages", { size: 8192 });
  const m = fd.map();
  const pub = new DataView(m.bytes(0, 4096).buffer, 0, 4096);
  pub.setUint32(0, MK.KSHARED_PUB_MAGIC, true);
  pub.setUint16(4, 1, true);
  pub.setUint16(6, 64, true);
  pub.setUint32(8, 64, true);
  pub.setUint32(12, 64, true);
  pub.setBigUint64(16, 0x1234n, true);
  pub.setBigUint64(24, 3n, true); // reclaims
  pub.setBigUint64(32, 5n, true); // answered
  pub.setBigUint64(40, 7n, true); // refused
  pub.setUint32(48, 250, true);
  const req = new DataView(m.bytes().buffer, 4096, 4096);
  req.setUint32(0, MK.KSHARED_REQ_MAGIC, true);
  req.setUint16(4, 1, true);
  req.setUint16(6, 64, true);
  const seq = SeqLock.init(m, 64, 64);
  seq.write((data) => data.set(record(9n)));
  edit(pub, req);
  return { fd, m, seq };
}

Deno.test("kernelRecordChecksum() is the header's FNV-1a, byte for byte the C mkks_checksum()", () => {
  for (let i = 0; i < 200; i++) {
    const r = crypto.getRandomValues(new Uint8Array(64));
    assertEquals(kernelRecordChecksum(r), cChecksum(r));
  }
  // The checksum field itself is left out.
  const r = record(5n);
  const before = kernelRecordChecksum(r);
  r[17] ^= 0xff;
  assertEquals(kernelRecordChecksum(r), before);
  r[24] ^= 1;
  assertNotEquals(kernelRecordChecksum(r), before);
  // FNV-1a of nothing but zeros, computed by hand: 60 rounds from the offset basis.
  let h = 0x811c9dc5;
  for (let i = 0; i < 60; i++) h = Math.imul(h, 16777619) >>> 0;
  assertEquals(kernelRecordChecksum(new Uint8Array(64)), h);
  assertThrows(() => kernelRecordChecksum(new Uint8Array(63)), RangeError);
  assertThrows(() => kernelRecordChecksum([0] as never), TypeError);
});

Deno.test("checkKernelPages() reads the layout of pages laid out right", () => {
  const { fd, m } = laidOut();
  using _fd = fd;
  using _m = m;
  using req = mapRequest(fd);
  assertEquals(checkKernelPages(m, req), {
    version: 1,
    recordOffset: 64,
    recordBytes: 64,
    instance: 0x1234n,
    lockTimeoutMs: 250,
  });
});

/** The request page (offset 4096) of a laid-out memfd, its own mapping. */
function mapRequest(fd: MemFd): Mapping {
  return fd.map({ offset: 4096, length: 4096 });
}

Deno.test("checkKernelPages() refuses a memfd laid out wrongly, naming the field and what it expected", () => {
  const cases: [string, (p: DataView, r: DataView) => void, string][] = [
    [
      "pub magic",
      (p) => p.setUint32(0, 0x12345678, true),
      'magic 0x12345678, expected 0x504b4b4d ("MKKP")',
    ],
    ["pub version", (p) => p.setUint16(4, 2, true), "version 2; this memkit reads version 1"],
    ["header_bytes", (p) => p.setUint16(6, 32, true), "header_bytes 32, expected 64"],
    ["record_bytes", (p) => p.setUint32(12, 65, true), "record_bytes 65, expected 64"],
    ["record_offset low", (p) => p.setUint32(8, 8, true), "record_offset 8"],
    ["record_offset odd", (p) => p.setUint32(8, 68, true), "record_offset 68"],
    ["record_offset past", (p) => p.setUint32(8, 4096, true), "record_offset 4096"],
    ["instance", (p) => p.setBigUint64(16, 0n, true), "instance 0"],
    ["req magic", (_p, r) => r.setUint32(0, 0, true), 'magic 0x0, expected 0x524b4b4d ("MKKR")'],
    ["req version", (_p, r) => r.setUint16(4, 9, true), "version 9"],
    ["req header", (_p, r) => r.setUint16(6, 0, true), "header_bytes 0, expected 64"],
  ];
  for (const [what, edit, message] of cases) {
    const { fd, m } = laidOut(edit);
    try {
      const pub = fd.map({ length: 4096, access: "r" });
      const req = mapRequest(fd);
      const e = assertThrows(() => checkKernelPages(pub, req), MemkitError, message, what);
      assertEquals([e.code, e.operation], ["EBADMSG", "attach"], what);
      assertThrows(() => KernelPage.fromMappings(pub, req), MemkitError, message, what);
      pub.close();
      req.close();
    } finally {
      m.close();
      fd.close();
    }
  }
  using fd = MemFd.create("kshared-small", { size: 32 });
  using small = fd.map();
  assertThrows(() => checkKernelPages(small), MemkitError, "cannot hold the 64-byte header");
  assertThrows(() => checkKernelPages({} as never), TypeError, "expected a memkit Mapping");
});

Deno.test("KernelPage.fromMappings() reads the record through a read-only mapping, checksum verified", () => {
  const { fd, m, seq } = laidOut();
  using _fd = fd;
  using _m = m;
  const pub = fd.map({ length: 4096, access: "r" });
  using req = mapRequest(fd);
  using page = KernelPage.fromMappings(pub, req);
  const r = page.read();
  assertEquals(r.counter, 9n);
  assertEquals(r.timeNs, 1000n);
  assertEquals(r.payload, record(9n).subarray(24));
  seq.write((data) => data.set(record(10n, 2000n)));
  assertEquals(page.read().counter, 10n);
  assertEquals(page.stats(), {
    instance: 0x1234n,
    reclaims: 3n,
    answered: 5n,
    refused: 7n,
    lockTimeoutMs: 250,
  });
  assertEquals(page.lockState(), { word: 0, state: "free", session: 0 });
  m.view(Uint32Array, 4096 + 8, 1)[0] = 5 | MK.KSHARED_LOCK_ANSWERED;
  assertEquals(page.lockState(), {
    word: (5 | MK.KSHARED_LOCK_ANSWERED) >>> 0,
    state: "answered",
    session: 5,
  });
  // The read-only page's views are immutable: a write is a TypeError, not a fault.
  assertThrows(() => {
    page.publishPage.bytes()[100] = 1;
  }, TypeError);
  assertEquals(page.read().counter, 10n);
  // The bulk check: every read clean, none torn.
  const report = page.checkReads(1000);
  assertEquals(
    [report.reads, report.torn, report.firstCounter, report.lastCounter, report.backwards],
    [1000, 0, 10n, 10n, 0],
  );
  assertThrows(() => page.checkReads(0), RangeError);
  // A SeqLock attached through the read-only mapping reads, and refuses to write.
  using reader = SeqLock.attach(pub, 64);
  assertEquals(reader.read((d) => d[0]), 10);
  assertThrows(() => reader.write(() => {}), TypeError, "read-only there");
  // No file behind these pages: no channel.
  assertThrows(() => page.openChannel(), TypeError, "fromMappings");
  page.close();
  assertThrows(() => page.read(), Deno.errors.BadResource);
  // The pages given stay the caller's.
  assertEquals(pub.closed, false);
  pub.close();
});

Deno.test("KernelPage.read() refuses a record whose checksum is wrong under a stable sequence (EBADMSG)", () => {
  const { fd, m, seq } = laidOut();
  using _fd = fd;
  using _m = m;
  using req = mapRequest(fd);
  using page = KernelPage.fromMappings(m, req);
  const bad = record(11n);
  bad[30] ^= 0x55; // the payload changed, the checksum not
  seq.write((data) => data.set(bad));
  const e = assertThrows(() => page.read(), MemkitError, "fails its checksum");
  assertEquals(e.code, "EBADMSG");
  // The bulk check counts it as torn, every time.
  const report = page.checkReads(100);
  assertEquals([report.reads, report.torn], [100, 100]);
});

Deno.test("KernelPage.attach() and KernelChannel.open() refuse a device that is no kernel-shared driver", () => {
  // /dev/zero: its request page (offset 4096, read-write) would fault, so
  // memkit refuses to map it before any header is read.
  const e = assertThrows(() => KernelPage.attach("/dev/zero"), MemkitError, "SIGBUS");
  assertEquals(e.code, "EINVAL");
  // It knows no MKKS_IOC_SESSION.
  const c = assertThrows(() => KernelChannel.open("/dev/zero"), MemkitError);
  assertEquals(c.code, "ENOTTY");
  assertStringIncludes(c.message, "MKKS_IOC_SESSION");
  assertThrows(() => KernelPage.attach(""), TypeError);
  assertThrows(() => KernelChannel.open(7 as never), TypeError);
  assertThrows(() => KernelPage.attach("/dev/null\0"), TypeError, "NUL");
});

// ---- in the guest, against the reference module ----

/** Why the module's file cannot be used here, or false. */
function probeModule(): string | false {
  try {
    KernelPage.attach().close();
    return false;
  } catch (e) {
    if (!(e instanceof MemkitError)) throw e;
    return `${PATH} cannot be attached here (${e.code}): the reference module tests/vm/kmod ` +
      "is loaded only in the QEMU guest, as root with debugfs mounted " +
      "(MEMKIT_VM_SUITES=kshared bash tests/vm/run.sh)";
  }
}
const noModule = probeModule();

/** A fresh channel is answered: the module still serves after a rule-breaker. */
function stillAnswers(): void {
  using channel = KernelChannel.open();
  const data = crypto.getRandomValues(new Uint8Array(32));
  const answer = channel.request("echo", data, { id: 77 });
  assertEquals([answer.id, answer.data], [77, data]);
  const sum = channel.call("sum", new Uint8Array([1, 2, 250]));
  assertEquals(new DataView(sum.data.buffer).getBigUint64(0, true), 253n);
}

const TIMEOUT_PARAM = "/sys/module/memkit_kshared/parameters/lock_timeout_ms";

/**
 * Runs `fn` with the module's lock timeout set to `ms` (its parameter,
 * written by sh: Deno's own file API refuses every file under /sys to a scoped grant),
 * then puts the old value back. A test that holds a word on purpose raises
 * it, so that the kernel's watch does not take the word back first.
 */
async function withLockTimeout(ms: number, fn: () => void | Promise<void>): Promise<void> {
  const sh = (script: string) => {
    const r = new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).outputSync();
    assertEquals(r.code, 0, `sh -c "${script}"`);
    return new TextDecoder().decode(r.stdout).trim();
  };
  const old = sh(`cat ${TIMEOUT_PARAM}`);
  sh(`echo ${ms} > ${TIMEOUT_PARAM}`);
  try {
    await fn();
  } finally {
    sh(`echo ${old} > ${TIMEOUT_PARAM}`);
  }
}

/** Long enough for the kernel to take a stuck word back, and some. */
function reclaimWaitMs(page: KernelPage): number {
  return page.stats().lockTimeoutMs * 4 + 2000;
}

probed({
  name: "guest: 10 million SeqLock reads of the record while the kernel rewrites it, none torn",
  skip: noModule,
  fn() {
    using page = KernelPage.attach();
    assertEquals(page.layout.version, 1);
    const report = page.checkReads(10_000_000);
    console.log(
      `10M reads: ${report.overlapped} overlapped a write (retried), ${report.waits} waits, ` +
        `counter ${report.firstCounter} -> ${report.lastCounter}`,
    );
    assertEquals(report.reads, 10_000_000);
    assertEquals(report.torn, 0);
    assertEquals(report.backwards, 0);
    assertGreater(report.lastCounter, report.firstCounter, "the kernel publishes continuously");
    // The JavaScript path (SeqLock.read over the immutable view, checksum in JS).
    let last = 0n;
    for (let i = 0; i < 100_000; i++) {
      const r = page.read();
      assert(r.counter >= last, "the counter never goes back");
      last = r.counter;
      for (let j = 0; j < 40; j++) {
        if (r.payload[j] !== Number((r.counter + BigInt(j)) & 0xffn)) {
          throw new Error(`a torn payload at counter ${r.counter}`);
        }
      }
    }
  },
});

probed({
  name: "guest: 100,000 request round trips through the request page, none lost (ids checked)",
  skip: noModule,
  fn() {
    using page = KernelPage.attach();
    using channel = page.openChannel();
    const before = page.stats();
    const data = new Uint8Array(64);
    for (let i = 0; i < 100_000; i++) {
      data[0] = i & 0xff;
      data[63] = (i >> 8) & 0xff;
      const answer = channel.request("echo", data.subarray(0, 1 + (i % 64)), { id: i });
      if (answer.id !== i || answer.data.length !== 1 + (i % 64) || answer.data[0] !== (i & 0xff)) {
        throw new Error(`round trip ${i} answered id ${answer.id}, ${answer.data.length} bytes`);
      }
    }
    const after = page.stats();
    assertEquals(after.answered - before.answered, 100_000n);
    assertEquals(page.lockState().state, "free");
    // The copying baseline answers the same.
    const copied = channel.call("echo", new Uint8Array([4, 5, 6]), { id: 9 });
    assertEquals([copied.id, [...copied.data]], [9, [4, 5, 6]]);
    // Ids chosen by the channel go up by one.
    const a = channel.request("sum", new Uint8Array([1, 1]));
    const b = channel.request("sum", new Uint8Array([2]));
    assertEquals(b.id, a.id + 1);
    assertEquals(new DataView(a.data.buffer).getBigUint64(0, true), 2n);
  },
});

probed({
  name: "guest: an unknown op and bad arguments are refused; the module still answers",
  skip: noModule,
  fn() {
    using page = KernelPage.attach();
    using channel = page.openChannel();
    const refused = page.stats().refused;
    const e = assertThrows(() => channel.request(999, new Uint8Array(1)), MemkitError);
    assertEquals(e.code, "EINVAL");
    assertThrows(() => channel.call(999), MemkitError, "Invalid argument");
    assertEquals(page.stats().refused - refused, 2n);
    assertThrows(() => channel.request("echo", new Uint8Array(257)), RangeError);
    assertThrows(() => channel.request("nope" as never), TypeError);
    assertThrows(() => channel.request("echo", [1] as never), TypeError);
    assertThrows(() => channel.request("echo", undefined, { timeoutMs: -1 }), RangeError);
    assertThrows(() => channel.request("echo", undefined, { id: 2 ** 32 }), RangeError);
    stillAnswers();
  },
});

probed({
  name: "guest: a lock word taken and never released is taken back; another channel is served",
  skip: noModule,
  // 2 s: long enough that the word is still held when it is looked at.
  fn: () =>
    withLockTimeout(2000, () => {
      using page = KernelPage.attach();
      using rude = page.openChannel();
      using polite = page.openChannel();
      assertNotEquals(rude.session, polite.session);
      const reclaims = page.stats().reclaims;
      rude.acquire();
      assertEquals(page.lockState(), { word: rude.session, state: "held", session: rude.session });
      // A try that does not wait: refused, saying who holds it.
      const busy = assertThrows(
        () => polite.request("echo", new Uint8Array(1), { timeoutMs: 0 }),
        MemkitError,
      );
      assertEquals(busy.code, "ETIMEDOUT");
      assertStringIncludes(busy.message, `held by session ${rude.session}`);
      // Waiting long enough: the kernel takes the word back after its timeout.
      const answer = polite.request("echo", new Uint8Array([3]), {
        timeoutMs: reclaimWaitMs(page),
      });
      assertEquals([...answer.data], [3]);
      assertGreater(page.stats().reclaims, reclaims);
      // The rule-breaker's release finds the word gone: EPERM, said why.
      const e = assertThrows(() => rude.release(), MemkitError, "does not hold it");
      assertEquals(e.code, "EPERM");
      stillAnswers();
    }),
});

probed({
  name: "guest: a second release is EPERM; a second acquire is EDEADLK",
  skip: noModule,
  fn: () =>
    withLockTimeout(60000, () => {
      using channel = KernelChannel.open();
      channel.acquire();
      assertEquals(
        assertThrows(() => channel.acquire({ timeoutMs: 0 }), MemkitError).code,
        "EDEADLK",
      );
      channel.release();
      const e = assertThrows(() => channel.release(), MemkitError, "released twice");
      assertEquals(e.code, "EPERM");
      stillAnswers();
    }),
});

probed({
  name: "guest: garbage over the request page costs others a timeout, never a crash",
  skip: noModule,
  fn() {
    using page = KernelPage.attach();
    using channel = page.openChannel();
    {
      using raw = mapDevice(PATH, { offset: 4096, length: 4096, access: "rw" });
      const bytes = raw.bytes();
      crypto.getRandomValues(bytes);
      // The lock word is garbage now (neither free nor a live session, or
      // some other session's): the kernel takes it back after its timeout.
      const answer = channel.request("echo", new Uint8Array([1, 2]), {
        timeoutMs: reclaimWaitMs(page),
      });
      assertEquals([...answer.data], [1, 2]);
      // The header is put back for the channels opened after this test
      // (the kernel never reads it back, but KernelChannel.open checks it).
      const v = new DataView(bytes.buffer, bytes.byteOffset);
      v.setUint32(0, MK.KSHARED_REQ_MAGIC, true);
      v.setUint16(4, 1, true);
      v.setUint16(6, 64, true);
    }
    stillAnswers();
  },
});

probed({
  name:
    "guest: a child killed with SIGKILL while holding the lock word: the word is taken back on close",
  skip: noModule,
  // A minute: the word can only come back through the holder's death.
  fn: () =>
    withLockTimeout(60000, async () => {
      using page = KernelPage.attach();
      const reclaims = page.stats().reclaims;
      const holder = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-ffi",
          `--allow-read=${PATH}`,
          `--allow-write=${PATH}`,
          "--v8-flags=--js-immutable-arraybuffer",
          child,
          "hold",
          PATH,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const line = await readyLine(holder.stdout);
      const session = Number(/^held (\d+)/.exec(line)![1]);
      assertEquals(page.lockState(), { word: session, state: "held", session });
      holder.kill("SIGKILL");
      const status = await holder.status;
      await holder.stdout.cancel();
      assertEquals(status.signal, "SIGKILL");
      // Its file was closed as it died (before its parent could see it dead):
      // the kernel took the word back then, a minute before any timeout.
      assertEquals(page.lockState().state, "free");
      assertEquals(page.stats().reclaims, reclaims + 1n);
      using channel = page.openChannel();
      const answer = channel.request("echo", new Uint8Array([9]), { timeoutMs: 1000 });
      assertEquals([...answer.data], [9]);
      stillAnswers();
    }),
});

probed({
  name:
    "guest: a write to the read-only page is a TypeError, and the driver refuses it writable (EPERM)",
  skip: noModule,
  fn() {
    using page = KernelPage.attach();
    const before = page.read();
    assertThrows(() => {
      page.publishPage.bytes()[64 + 32] = 0xff;
    }, TypeError);
    assertThrows(() => page.publishPage.write(new Uint8Array(1), 100), TypeError);
    // A writable mapping of it is the driver's to refuse, and it does.
    const e = assertThrows(
      () => mapDevice(PATH, { offset: 0, length: 4096, access: "rw" }),
      MemkitError,
    );
    assertEquals(e.code, "EPERM");
    assertStringIncludes(e.message, 'map it with access "r"');
    // Its pages have no fault handler: memkit never drops them (a touch would be SIGBUS).
    assertThrows(() => page.publishPage.advise("dontneed"), TypeError, "SIGBUS");
    // Nor can mprotect add write later: memkit refuses (the source is "r").
    assertThrows(() => page.publishPage.protect("rw"), MemkitError);
    // Offsets and lengths the driver does not map.
    assertEquals(
      assertThrows(() => mapDevice(PATH, { offset: 8192, length: 4096 }), MemkitError).code,
      "EINVAL",
    );
    assertEquals(
      assertThrows(() => mapDevice(PATH, { length: 8192 }), MemkitError).code,
      "EINVAL",
    );
    assert(page.read().counter >= before.counter);
    stillAnswers();
  },
});
