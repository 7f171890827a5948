// flags: --allow-ffi --allow-run=readlink,cat --v8-flags=--js-immutable-arraybuffer
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { MemFd, MemkitError, pageSize } from "../mod.ts";
import { hasNoexecSeal } from "./fixtures/kernel.ts";
import { freeRanges, QUARANTINE_RANGES, quarantined } from "../src/_region.ts";

const PAGE = pageSize();

// Deno's file API wants every permission for /proc; ask coreutils instead.
function sh(cmd: string, ...args: string[]): { ok: boolean; out: string } {
  const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
  return { ok: r.success, out: new TextDecoder().decode(r.stdout).trim() };
}

Deno.test("MemFd.create() makes a memfd of the given size that reads zeros", () => {
  using fd = MemFd.create("t-create", { size: 3 * PAGE });
  assertEquals(fd.size, 3 * PAGE);
  assertEquals(fd.name, "t-create");
  assert(fd.fd >= 0);
  using m = fd.map({ access: "r" });
  assert(m.bytes().every((b) => b === 0));
});

Deno.test("a write through an rw mapping shows through an r mapping at another address", () => {
  using fd = MemFd.create("t-alias", { size: 2 * PAGE });
  using rw = fd.map({ access: "rw" });
  using ro = fd.map({ access: "r" });
  assertNotEquals(rw.address, ro.address);
  const w = rw.view(Uint32Array);
  const r = ro.view(Uint32Array);
  for (let i = 0; i < w.length; i++) w[i] = i * 2654435761;
  for (let i = 0; i < r.length; i++) assertEquals(r[i], (i * 2654435761) >>> 0);
  // No copy: the read-only view follows later writes too.
  w[5] = 0xdeadbeef;
  assertEquals(r[5], 0xdeadbeef);
});

Deno.test("a window mapping starts at its offset in the memfd", () => {
  using fd = MemFd.create("t-window", { size: 4 * PAGE });
  using all = fd.map();
  using win = fd.map({ offset: 2 * PAGE, length: PAGE, access: "r" });
  all.bytes()[2 * PAGE + 3] = 77;
  assertEquals(win.length, PAGE);
  assertEquals(win.bytes()[3], 77);
});

Deno.test("the memfd shows in /proc/self/fd as memfd:<name> and is close-on-exec", () => {
  using fd = MemFd.create("t-proc");
  // Checked through the kernel's own view of the descriptor.
  const link = sh("readlink", `/proc/${Deno.pid}/fd/${fd.fd}`);
  assertEquals(link.out, "/memfd:t-proc (deleted)");
  const info = sh("cat", `/proc/${Deno.pid}/fdinfo/${fd.fd}`).out;
  const flags = parseInt(/flags:\s+(\d+)/.exec(info)![1], 8);
  assert(flags & 0o2000000, "O_CLOEXEC is set");
});

Deno.test("resize() grows with zeros and keeps the contents", () => {
  using fd = MemFd.create("t-resize", { size: PAGE });
  {
    using m = fd.map();
    m.bytes()[PAGE - 1] = 9;
  }
  fd.resize(3 * PAGE);
  assertEquals(fd.size, 3 * PAGE);
  using m = fd.map({ access: "r" });
  assertEquals(m.bytes()[PAGE - 1], 9);
  assert(m.bytes(PAGE).every((b) => b === 0));
});

Deno.test("resize() refuses to shrink below the end of a live mapping", () => {
  using fd = MemFd.create("t-shrink", { size: 4 * PAGE });
  const m = fd.map({ offset: PAGE, length: 2 * PAGE });
  m.bytes()[0] = 5;
  const err = assertThrows(() => fd.resize(2 * PAGE), MemkitError);
  assertEquals(err.code, "EBUSY");
  assertEquals(fd.size, 4 * PAGE);
  fd.resize(3 * PAGE); // the mapping ends at 3 pages: allowed
  m.close();
  fd.resize(PAGE); // nothing mapped any more
  assertEquals(fd.size, PAGE);
});

Deno.test("seal() adds seals that the kernel then enforces", () => {
  using fd = MemFd.create("t-seal", { size: PAGE });
  assertEquals(fd.seals, []);
  fd.seal(["shrink", "grow"]);
  assertEquals(fd.seals, ["shrink", "grow"]);
  const grow = assertThrows(() => fd.resize(2 * PAGE), MemkitError);
  assertEquals(grow.code, "EPERM");
  assert(grow.message.includes("sealed against growing"), grow.message);
  assertThrows(() => fd.resize(0), MemkitError, "sealed against shrinking");
  assertEquals(fd.size, PAGE);
  fd.seal(["seal"]);
  const more = assertThrows(() => fd.seal(["write"]), MemkitError);
  assertEquals(more.code, "EPERM");
});

Deno.test("a write seal refuses a writable mapping but allows a read-only one", () => {
  using fd = MemFd.create("t-wseal", { size: PAGE });
  {
    using m = fd.map();
    m.bytes()[0] = 1;
  }
  fd.seal(["write"]);
  const err = assertThrows(() => fd.map({ access: "rw" }), MemkitError);
  assertEquals(err.code, "EPERM");
  using ro = fd.map({ access: "r" });
  assertEquals(ro.bytes()[0], 1);
});

Deno.test("a write seal is refused while a writable mapping exists", () => {
  using fd = MemFd.create("t-wseal-busy", { size: PAGE });
  using _m = fd.map();
  const err = assertThrows(() => fd.seal(["write"]), MemkitError);
  assertEquals(err.code, "EBUSY");
  fd.seal(["future-write"]);
  assertEquals(fd.seals, ["future-write"]);
});

Deno.test("a memfd created with sealable: false refuses seals", () => {
  using fd = MemFd.create("t-nosealing", { sealable: false, size: PAGE });
  const err = assertThrows(() => fd.seal(["grow"]), MemkitError, "sealable: false");
  assertEquals(err.code, "EPERM");
  // The kernel itself reports F_SEAL_SEAL on such a memfd.
  assertEquals(fd.seals, ["seal"]);
});

Deno.test("noexec: true seals the memfd against exec where the kernel has MFD_NOEXEC_SEAL", () => {
  // memkit's answer is the kernel's (libc's memfd_create asked directly):
  // no on 6.1 in the QEMU guest, yes on the host.
  assertEquals(MemFd.noexecSupported, hasNoexecSeal());
  if (!MemFd.noexecSupported) {
    const err = assertThrows(() => MemFd.create("t-noexec", { noexec: true }), MemkitError);
    assertEquals(err.code, "EINVAL");
    assertStringIncludes(err.message, "MFD_NOEXEC_SEAL");
    return;
  }
  using fd = MemFd.create("t-noexec", { noexec: true });
  assert(fd.seals.includes("exec"), `seals: ${fd.seals}`);
});

Deno.test("bad arguments are TypeError or RangeError and change nothing", () => {
  assertThrows(() => MemFd.create(1 as unknown as string), TypeError);
  assertThrows(() => MemFd.create("a\0b"), TypeError, "contains NUL");
  assertThrows(() => MemFd.create("x".repeat(250)), RangeError, "249 bytes");
  assertThrows(() => MemFd.create("neg", { size: -1 }), RangeError);
  assertThrows(() => MemFd.create("frac", { size: 1.5 }), TypeError);
  assertThrows(() => MemFd.create("huge", { size: 2 ** 60 }), RangeError);
  using fd = MemFd.create("t-bad", { size: 2 * PAGE });
  using m = fd.map();
  m.bytes().fill(0xab);
  assertThrows(() => fd.map({ offset: 100 }), RangeError, "page size");
  assertThrows(() => fd.map({ offset: -PAGE }), RangeError);
  assertThrows(() => fd.map({ length: 0 }), RangeError);
  assertThrows(() => fd.map({ length: 100 }), RangeError, "page size");
  assertThrows(() => fd.map({ length: 3 * PAGE }), RangeError, "beyond its size");
  assertThrows(() => fd.map({ offset: 2 * PAGE }), RangeError, "beyond its size");
  assertThrows(() => fd.map({ access: "x" as "r" }), TypeError, 'access "x"');
  assertThrows(() => fd.resize(-5), RangeError);
  assertThrows(() => fd.resize("big" as unknown as number), TypeError);
  assertThrows(() => fd.seal(["nope" as "grow"]), TypeError, 'seal "nope"');
  assertEquals(fd.size, 2 * PAGE);
  assert(m.bytes().every((b) => b === 0xab));
});

Deno.test("an empty memfd cannot be mapped until it is resized", () => {
  using fd = MemFd.create("t-empty");
  assertThrows(() => fd.map(), RangeError, "empty");
  fd.resize(PAGE);
  using m = fd.map();
  assertEquals(m.length, PAGE);
});

Deno.test("a memfd whose size is not a page multiple maps up to its end", () => {
  using fd = MemFd.create("t-odd", { size: PAGE + 10 });
  using m = fd.map();
  assertEquals(m.length, PAGE + 10);
  m.bytes()[PAGE + 9] = 3;
  assertEquals(m.read(PAGE + 9, 1)[0], 3);
});

Deno.test("a closed MemFd is a BadResource error, close() is idempotent, mappings stay valid", () => {
  const fd = MemFd.create("t-closed", { size: PAGE });
  using m = fd.map();
  m.bytes()[0] = 42;
  fd.close();
  fd.close();
  assert(fd.closed);
  assertEquals(fd.fd, -1);
  assertThrows(() => fd.size, Deno.errors.BadResource, 'memfd "t-closed" is closed');
  assertThrows(() => fd.map(), Deno.errors.BadResource);
  assertThrows(() => fd.resize(0), Deno.errors.BadResource);
  assertThrows(() => fd.seal(["grow"]), Deno.errors.BadResource);
  assertEquals(m.bytes()[0], 42);
});

Deno.test("close() releases the descriptor", () => {
  const fd = MemFd.create("t-release");
  const n = fd.fd;
  fd.close();
  assertEquals(sh("readlink", `/proc/${Deno.pid}/fd/${n}`).ok, false);
});

// ---- ranges out of the quarantine, placed under the next map() ----

/** Closes `n` viewed mappings of `span` bytes: each goes to the quarantine. */
function viewedCloses(n: number, span: number): void {
  using fd = MemFd.create("t-churn", { size: span });
  for (let i = 0; i < n; i++) {
    const m = fd.map();
    m.bytes()[0] = 1;
    m.close();
  }
}

/** The /proc/self/maps line that starts at `address`, read by cat(1). */
function lineStarting(address: bigint): string | undefined {
  const hex = address.toString(16);
  return sh("cat", `/proc/${Deno.pid}/maps`).out.split("\n").find((l) => l.startsWith(`${hex}-`));
}

/** The /proc/self/maps line whose range holds `address`, read by cat(1). */
function lineCovering(address: bigint): string | undefined {
  return sh("cat", `/proc/${Deno.pid}/maps`).out.split("\n").find((l) => {
    const [start, end] = l.split(" ")[0].split("-").map((h) => BigInt(`0x${h}`));
    return start <= address && address < end;
  });
}

Deno.test("map() is placed over a range out of the quarantine of its length, and shows the memfd's bytes", () => {
  const span = 5 * PAGE; // a length no other test here maps
  using fd = MemFd.create("t-reuse", { size: span });
  const first = fd.map();
  first.bytes().fill(7);
  const address = first.address;
  first.close();
  viewedCloses(QUARANTINE_RANGES, PAGE); // the range leaves the quarantine: on the free list
  assert(freeRanges().some((r) => r.address === address && r.span === span));
  using again = fd.map();
  assertEquals(again.address, address);
  assert(!freeRanges().some((r) => r.address === address));
  assert(again.bytes().every((b) => b === 7));
  assertStringIncludes(lineStarting(address) ?? "", "rw-s");
  assertStringIncludes(lineStarting(address) ?? "", "/memfd:t-reuse");
});

Deno.test("a refused placement over a free range reports the kernel's error and forgets the range", () => {
  const span = 6 * PAGE;
  using fd = MemFd.create("t-reuse-sealed", { size: span });
  {
    using m = fd.map();
    m.bytes()[0] = 1;
  }
  const address = quarantined().at(-1)!.address;
  viewedCloses(QUARANTINE_RANGES, PAGE);
  assert(freeRanges().some((r) => r.address === address && r.span === span));
  fd.seal(["write"]);
  // The MAP_FIXED over the free range is refused (EPERM), then the fresh mmap:
  // the error is the kernel's, and the range is never used again.
  const err = assertThrows(() => fd.map({ access: "rw" }), MemkitError);
  assertEquals(err.code, "EPERM");
  assert(!freeRanges().some((r) => r.address === address));
  // On this kernel's EPERM path the range is left mapped or a gap; either
  // way no mapping of memkit's is there, and the next map() is fresh.
  assert(!/rw-s .*memfd:t-reuse-sealed/.test(lineCovering(address) ?? ""));
  using ro = fd.map({ access: "r" });
  assertEquals(ro.bytes()[0], 1);
});
