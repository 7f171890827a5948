// flags: --allow-ffi --allow-read=/proc/self/pagemap,/tmp --allow-write=/tmp --allow-run=$DENO,setpriv,cp,chmod,stat --allow-sys=uid --v8-flags=--js-immutable-arraybuffer
// Lazy views (userfaultfd) against the kernel: pages never touched are never
// copied (pagemap present bits and the handler's counters), content equal to
// the source, holes, readahead, prefetch; closing while another thread
// faults, a source that goes away (in a child that must not die of a
// signal); hostile arguments refused before any system call; and as nobody,
// with the device closed to it (user-mode-only, the refusal naming the
// sysctl and the device) and open to it.
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  lazyAlias,
  LazyView,
  lazyView,
  mapAnonymous,
  Mapping,
  MemFd,
  MemkitError,
  Pagemap,
  pageSize,
  probeUserfaultfd,
  trackWrites,
} from "../mod.ts";
import { childReport, readUntil } from "./fixtures/child.ts";
import { nobodyPackage } from "./fixtures/nobody.ts";
import { probed } from "./fixtures/skip.ts";

const PAGE = pageSize();
const fixture = new URL("./fixtures/uffd_child.ts", import.meta.url).pathname;
const features = probeUserfaultfd();
const noUffd = !features.available && `no userfaultfd here: ${features.reasons.join("; ")}`;

/** Every heap buffer a test made a lazy view of. */
const kept: Uint8Array[] = [];
/** A heap buffer whose page i holds the byte i (mod 256), and its address. */
function heap(pages: number): { data: Uint8Array; address: bigint } {
  // Kept reachable for the whole run: a lazy view holds only the address,
  // and a collected buffer's memory would be freed under it.
  const data = new Uint8Array(pages * PAGE);
  for (let p = 0; p < pages; p++) data.fill(p & 0xff, p * PAGE, (p + 1) * PAGE);
  kept.push(data);
  return { data, address: Deno.UnsafePointer.value(Deno.UnsafePointer.of(data)) };
}

Deno.test("probeUserfaultfd() reports the way in, the features and why other ways were refused", () => {
  assertEquals(typeof features.available, "boolean");
  assertEquals(features.features.length + features.lacking.length, 17);
  if (features.via === "syscall") assertEquals(features.reasons, []);
  for (const name of features.features) assert(!features.lacking.includes(name), name);
  assertEquals(features.kernelFaults, features.via === "syscall" || features.via === "device");
});

probed({
  name: "pages never touched are never copied: pagemap shows only the touched ones present",
  skip: noUffd,
  fn() {
    const { data, address } = heap(256);
    using view = LazyView.create({ address, length: data.length });
    assert(view instanceof Mapping && view instanceof LazyView);
    using pm = Pagemap.open("self");
    assertEquals(pm.read({ start: view.address, pages: 256 }).presentCount, 0);
    const touched = [0, 5, 100, 255];
    const b = view.bytes();
    for (const p of touched) assertEquals(b[p * PAGE + 17], p & 0xff);
    const pages = pm.read({ start: view.address, pages: 256 });
    for (let i = 0; i < 256; i++) assertEquals(pages.present(i), touched.includes(i), `page ${i}`);
    const s = view.stats();
    assertEquals([s.faults, s.pagesCopied, s.bytesCopied], [4, 4, 4 * PAGE]);
    assertEquals([s.pagesZeroed, s.errors, s.lastError], [0, 0, undefined]);
  },
});

probed({
  name: "a lazy view of chunks reads as the sources side by side, the rest as a hole",
  skip: noUffd,
  fn() {
    const a = heap(3);
    using fd = MemFd.create("uffd-chunk", { size: 2 * PAGE });
    using m = fd.map();
    m.bytes().fill(0xee);
    using view = LazyView.create([{ address: a.address + 100n, length: PAGE }, m], {
      length: 5 * PAGE,
    });
    assertEquals(view.length, 5 * PAGE);
    const want = new Uint8Array(5 * PAGE);
    want.set(a.data.subarray(100, 100 + PAGE));
    want.fill(0xee, PAGE, 3 * PAGE);
    assertEquals(view.read(), want);
    assertEquals(view.stats().pagesZeroed, 2);
  },
});

probed({
  name: "writes to a lazy view stay in it; the source's later changes do not show",
  skip: noUffd,
  fn() {
    const { data, address } = heap(2);
    using view = LazyView.create({ address, length: data.length });
    view.bytes()[1] = 42;
    assertEquals(data[1], 0);
    data[PAGE] = 77;
    assertEquals(view.bytes()[PAGE], 77); // not copied yet: the source as it is now
    data[PAGE] = 1;
    assertEquals(view.bytes()[PAGE], 77);
  },
});

probed({
  name: "readahead fills the pages after the faulting one; prefetch() fills a range without faults",
  skip: noUffd,
  fn() {
    const { data, address } = heap(64);
    using view = LazyView.create({ address, length: data.length }, { readahead: 8 * PAGE });
    using pm = Pagemap.open("self");
    assertEquals(view.bytes()[0], 0);
    assertEquals(pm.read({ start: view.address, pages: 64 }).presentCount, 8);
    assertEquals(view.stats().faults, 1);
    assertEquals(view.prefetch(32 * PAGE, 16 * PAGE), 16);
    assertEquals(view.prefetch(32 * PAGE, 16 * PAGE), 0);
    assertEquals(view.read(32 * PAGE, 16 * PAGE), data.subarray(32 * PAGE, 48 * PAGE));
    const s = view.stats();
    assertEquals([s.faults, s.pagesCopied, s.prefetched], [1, 24, 16]);
  },
});

probed({
  name: "close() detaches views, stops the handler and keeps its last counters",
  skip: noUffd,
  fn() {
    const { data, address } = heap(4);
    const view = LazyView.create({ address, length: data.length });
    const b = view.bytes();
    assertEquals(b[PAGE], 1);
    view.close();
    view.close();
    assertEquals(b.length, 0);
    assertEquals(view.stats().faults, 1);
    assertThrows(() => view.prefetch(), Deno.errors.BadResource);
    assertThrows(() => view.bytes(), Deno.errors.BadResource);
  },
});

probed({
  name:
    "closing while another thread faults neither hangs nor crashes (child not killed by a signal)",
  skip: noUffd,
  fn() {
    const r = childReport(["--allow-ffi", fixture, "close-during-fault"]);
    assertEquals([r.closed, r.copied, r.consistent], [true, true, true]);
  },
});

probed({
  name:
    "with kernel-mode faults, a system call reading an untouched page is served (write(2) of it)",
  skip: noUffd || (!features.kernelFaults && "this user gets user-mode-only faults"),
  fn() {
    const r = childReport(["--allow-ffi", fixture, "syscall-read"]);
    assertEquals([r.untouched, r.touched, r.faults], [16, 16, 2]);
  },
});

probed({
  name:
    "a lazy view dropped without close() is released by the collector, and its handler thread ends",
  skip: noUffd,
  fn() {
    const r = childReport([
      "--allow-ffi",
      "--allow-run=sh",
      "--v8-flags=--expose-gc",
      fixture,
      "collected",
    ]);
    assertEquals([r.threads, r.before, r.after], [0, 1, 0]);
  },
});

probed({
  name: "a source that goes away resolves the fault with zeros and records EFAULT",
  skip: noUffd,
  fn() {
    const r = childReport(["--allow-ffi", fixture, "unreadable"]);
    assertEquals(r, { before: 9, after: 0, errors: 1, lastError: "EFAULT" });
  },
});

probed({
  name: "lazyView(), the deprecated name of LazyView.create(), still makes a working lazy view",
  skip: noUffd,
  fn() {
    const { data, address } = heap(4);
    using view = lazyView({ address, length: data.length }, { access: "r" });
    assert(view instanceof LazyView);
    assertEquals(view.access, "r");
    assertEquals(view.read(), data);
    assertEquals(view.stats().pagesCopied, 4);
    assertThrows(() => lazyView([] as never), RangeError, "empty");
  },
});

Deno.test("LazyView.create() refuses hostile arguments before any system call", () => {
  const { address } = heap(1);
  assertThrows(
    () => LazyView.create(null as never),
    TypeError,
    "expected a Mapping or { address, length }",
  );
  assertThrows(() => LazyView.create([] as never), RangeError, "empty");
  assertThrows(
    () => LazyView.create({ address: 1 as never, length: 1 }),
    TypeError,
    "expected a bigint",
  );
  assertThrows(() => LazyView.create({ address: -1n, length: 1 }), TypeError);
  assertThrows(() => LazyView.create({ address, length: 0 }), RangeError);
  assertThrows(() => LazyView.create({ address, length: 1.5 }), TypeError);
  assertThrows(() => LazyView.create({ address: 2n ** 64n - 2n, length: 2 }), RangeError, "end of");
  assertThrows(() => LazyView.create({ address, length: 1 }, null as never), TypeError);
  assertThrows(() => LazyView.create({ address, length: 1 }, { length: 0 }), RangeError);
  assertThrows(
    () => LazyView.create({ address, length: 2 * PAGE }, { length: PAGE }),
    RangeError,
    "the sources hold",
  );
  assertThrows(() => LazyView.create({ address, length: 1 }, { readahead: -1 }), RangeError);
  assertThrows(() => LazyView.create({ address, length: 1 }, { readahead: 2 ** 40 }), RangeError);
  assertThrows(() => LazyView.create({ address, length: 1 }, { access: "rx" as never }), TypeError);
  assertThrows(
    () => LazyView.create({ address, length: 1 }, { kernelFaults: 1 as never }),
    TypeError,
  );
  const boxed = { address: Object(address), length: 1 };
  assertThrows(() => LazyView.create(boxed as never), TypeError, "expected a bigint");
  assertThrows(
    () => LazyView.create({ pid: "self" as never, address, length: 1 }),
    TypeError,
    "pid",
  );
  assertThrows(() => LazyView.create({ pid: 0, address, length: 1 }), RangeError, "pid");
  assertThrows(
    () => LazyView.create({ pid: 1, address, length: 1 }),
    Deno.errors.NotCapable,
    "/proc/1/mem",
  );
  assertThrows(
    () => LazyView.create([{ address, length: 1 }, { pid: 1, address, length: 1 }]),
    TypeError,
    "same process",
  );
  assertThrows(
    () => new LazyView(Symbol() as never, {} as never),
    TypeError,
    "Cannot construct a Mapping directly",
  );
  using fd = MemFd.create("uffd-closed", { size: PAGE });
  const m = fd.map();
  m.close();
  assertThrows(() => LazyView.create(m), Deno.errors.BadResource, "closed");
});

probed({
  name: "LazyView.create() reads each field of its arguments once (a getter cannot answer twice)",
  skip: noUffd,
  fn() {
    const { data, address } = heap(2);
    let reads = 0;
    const source = {
      address,
      get length() {
        reads++;
        return reads === 1 ? data.length : 2 ** 40;
      },
    };
    let optionReads = 0;
    const options = {
      get readahead() {
        optionReads++;
        return PAGE;
      },
    };
    using view = LazyView.create(source, options);
    assertEquals([reads, optionReads, view.length], [1, 1, data.length]);
    using small = LazyView.create({ address, length: 10 });
    assertEquals(small.prefetch(5, 5), 1);
    assertThrows(() => small.prefetch(0, 11), RangeError);
    assertThrows(() => small.prefetch(-1), RangeError);
  },
});

// ---- as nobody (uid 65534), the device closed to it, then open ----

const nobody = nobodyPackage("memkit-uffd-");
const notRoot = nobody.unable;

function deviceMode(): string | undefined {
  try {
    const r = new Deno.Command("stat", { args: ["-c", "%a", "/dev/userfaultfd"], stdout: "piped" })
      .outputSync();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

function chmod(mode: string): void {
  const r = new Deno.Command("chmod", { args: [mode, "/dev/userfaultfd"] }).outputSync();
  if (!r.success) throw new Error(`chmod ${mode} /dev/userfaultfd failed`);
}

probed({
  name:
    "as nobody with /dev/userfaultfd 0600: user-mode-only works, kernelFaults names the sysctl and the device",
  skip: notRoot || noUffd || (deviceMode() !== "600" && "/dev/userfaultfd is not mode 0600 here"),
  fn() {
    const child = `${nobody.root}tests/fixtures/uffd_child.ts`;
    const f = nobody.run([child, "features"]);
    // The kernel answers EPERM to the system call without UFFD_USER_MODE_ONLY
    // (vm.unprivileged_userfaultfd 0), EACCES on the device, and allows
    // user-mode-only faults to anyone.
    assertEquals([f.available, f.via, f.kernelFaults], [true, "user-mode-only", false]);
    const reasons = (f.reasons as string[]).join(" ");
    assertStringIncludes(reasons, "vm.unprivileged_userfaultfd");
    assertStringIncludes(
      reasons,
      '/dev/userfaultfd refused this user (EACCES): its mode is "0600"',
    );
    const t = nobody.run([child, "touch"]);
    assertEquals(t.values, [0, 7, 31]);
    assertEquals(t.via, "user-mode-only");
    assertEquals((t.stats as { pagesCopied: number }).pagesCopied, 3);
    // The kernel's own access to a page not touched yet is EFAULT there, not a crash.
    const w = nobody.run([child, "syscall-read"]);
    assertEquals([w.via, w.untouched, w.touched], ["user-mode-only", -1, 16]);
    // A synchronous tracker: the kernel's write to a protected page is EFAULT, not a crash.
    const s = nobody.run([child, "track-syscall-write"]);
    assertEquals([s.via, s.protected, s.unprotected, s.dirty], ["user-mode-only", -1, 16, [0]]);
    const k = nobody.run([child, "kernel-faults"]);
    assertEquals(k.code, "EPERM");
    assertStringIncludes(k.error as string, "vm.unprivileged_userfaultfd");
    assertStringIncludes(k.error as string, "/dev/userfaultfd");
  },
});

probed({
  name: "as nobody with read-write access to /dev/userfaultfd: the device gives kernel-mode faults",
  skip: notRoot || noUffd || (deviceMode() === undefined && "no /dev/userfaultfd here"),
  fn() {
    const before = deviceMode()!;
    chmod("666");
    try {
      const child = `${nobody.root}tests/fixtures/uffd_child.ts`;
      const f = nobody.run([child, "features"]);
      assertEquals([f.available, f.via, f.kernelFaults], [true, "device", true]);
      const k = nobody.run([child, "kernel-faults"]);
      assertEquals(k.made, true);
      const t = nobody.run([child, "touch"]);
      assertEquals([t.via, t.values], ["device", [0, 7, 31]]);
      const w = nobody.run([child, "syscall-read"]);
      assertEquals([w.via, w.untouched, w.touched], ["device", 16, 16]);
    } finally {
      chmod(before);
    }
    assertEquals(deviceMode(), before);
  },
});

// ---- another process's memory: { pid, address, length } ----

/** Starts the "serve" scenario: a process holding a buffer; its pid and the buffer's address. */
async function serve(): Promise<{ child: Deno.ChildProcess; pid: number; address: string }> {
  // Its output after the first line is read by stop().
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", fixture, "serve"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const text = await readUntil(reader, "\n");
  if (!text.includes("\n")) throw new Error("the serving process ended early");
  readers.set(child, reader);
  const { pid, address } = JSON.parse(text.split("\n")[0]);
  return { child, pid, address };
}

const readers = new Map<Deno.ChildProcess, ReadableStreamDefaultReader<string>>();

async function stop(child: Deno.ChildProcess): Promise<void> {
  await child.stdin.close();
  const reader = readers.get(child)!;
  await readUntil(reader); // its last line
  await child.status;
}

probed({
  name: "a lazy view of another process's buffer, gated on --allow-read=/proc/<pid>/mem",
  skip: noUffd,
  async fn() {
    const { child, pid, address } = await serve();
    try {
      const ok = childReport([
        "--allow-ffi",
        `--allow-read=/proc/${pid}/mem`,
        fixture,
        "view-process",
        String(pid),
        address,
      ]);
      assertEquals(ok.values, [0, 5]);
      const denied = childReport(["--allow-ffi", fixture, "view-process", String(pid), address]);
      assertEquals(denied.name, "NotCapable");
      assertStringIncludes(denied.error as string, `/proc/${pid}/mem`);
      const unmapped = childReport([
        "--allow-ffi",
        `--allow-read=/proc/${pid}/mem`,
        fixture,
        "view-process",
        String(pid),
        "0x1000",
      ]);
      assertEquals(unmapped.code, "EFAULT");
    } finally {
      await stop(child);
    }
  },
});

probed({
  name: "when the other process exits, the next fault reads zeros and records ESRCH",
  skip: noUffd,
  async fn() {
    const { child, pid, address } = await serve();
    const viewer = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-ffi",
        `--allow-read=/proc/${pid}/mem`,
        fixture,
        "view-process",
        String(pid),
        address,
        "then-gone",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = viewer.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = await readUntil(reader, "touched");
    await stop(child); // the served process exits
    const writer = viewer.stdin.getWriter();
    await writer.write(new Uint8Array([10]));
    await writer.close();
    text += await readUntil(reader);
    const status = await viewer.status;
    await viewer.stderr.cancel();
    assertEquals([status.signal, status.code], [null, 0]);
    const r = JSON.parse(text.trim().split("\n").at(-1)!);
    assertEquals(r.values, [0, 5]);
    assertEquals(r.after, 0);
    assertEquals([r.stats.errors, r.stats.lastError], [1, "ESRCH"]);
  },
});

probed({
  name: "as nobody, a lazy view of root's process is refused with the ptrace rule",
  skip: notRoot || noUffd,
  async fn() {
    const { child, pid, address } = await serve();
    try {
      const r = nobody.run([
        `--allow-read=/proc/${pid}/mem`,
        `${nobody.root}tests/fixtures/uffd_child.ts`,
        "view-process",
        String(pid),
        address,
      ]);
      assertEquals(r.code, "EPERM");
      assertStringIncludes(r.error as string, "ptrace read access");
    } finally {
      await stop(child);
    }
  },
});

// ---- lazyAlias: minor faults on a memfd ----

const noMinor = noUffd || (!features.features.includes("MINOR_SHMEM") &&
  "this kernel lacks UFFD_FEATURE_MINOR_SHMEM (Linux 5.14)");

probed({
  name: "lazyAlias() maps a memfd's pages as they are touched, zero-copy: the same frames",
  skip: noMinor,
  fn() {
    const pages = 32;
    using fd = MemFd.create("uffd-alias", { size: pages * PAGE });
    using m = fd.map();
    const b = m.bytes();
    for (let p = 0; p < pages; p++) b[p * PAGE] = p;
    using alias = lazyAlias(fd);
    assert(alias instanceof LazyView);
    using pm = Pagemap.open("self");
    assertEquals(pm.read({ start: alias.address, pages }).presentCount, 0);
    const a = alias.bytes();
    const touched = [1, 7, 30];
    for (const p of touched) assertEquals(a[p * PAGE], p);
    const mine = pm.read({ start: alias.address, pages });
    const theirs = pm.read({ start: m.address, pages });
    for (let p = 0; p < pages; p++) assertEquals(mine.present(p), touched.includes(p), `page ${p}`);
    if (pm.pfnVisible) {
      for (const p of touched) assertEquals(mine.pfn(p), theirs.pfn(p), `the frame of page ${p}`);
    }
    a[7 * PAGE] = 99;
    assertEquals(b[7 * PAGE], 99);
    const s = alias.stats();
    assertEquals([s.faults, s.pagesMapped, s.pagesCopied, s.errors], [3, 3, 0, 0]);
    assertThrows(() => alias.prefetch(), Error);
  },
});

probed({
  name:
    "lazyAlias() of a window; pages the memfd lacks fault in as usual; protect() keeps the data",
  skip: noMinor,
  fn() {
    using fd = MemFd.create("uffd-alias-window", { size: 8 * PAGE });
    using m = fd.map();
    m.bytes()[4 * PAGE] = 4;
    using alias = lazyAlias(fd, { offset: 4 * PAGE, length: 4 * PAGE });
    assertEquals(alias.length, 4 * PAGE);
    assertEquals(alias.bytes()[0], 4);
    assertEquals(alias.bytes()[2 * PAGE], 0); // not in the memfd yet: a plain shmem fault
    assertEquals(m.bytes()[6 * PAGE], 0);
    alias.protect("r");
    assertEquals(alias.read(0, 1)[0], 4);
    assertEquals(alias.stats().pagesMapped, 1);
  },
});

Deno.test("lazyAlias() refuses what is not an open memfd and unaligned windows", () => {
  assertThrows(() => lazyAlias({} as never), TypeError, "expected a MemFd");
  const fd = MemFd.create("uffd-alias-bad", { size: 2 * PAGE });
  assertThrows(() => lazyAlias(fd, { offset: 1 }), RangeError);
  assertThrows(() => lazyAlias(fd, { offset: 4 * PAGE }), RangeError);
  assertThrows(() => lazyAlias(fd, { access: "x" as never }), TypeError);
  assertThrows(() => lazyAlias(fd, null as never), TypeError);
  fd.close();
  assertThrows(() => lazyAlias(fd), Deno.errors.BadResource, "closed");
});

// ---- trackWrites: asynchronous write-protection (PAGEMAP_SCAN), or the synchronous fallback ----

const hasAsync = ["WP_ASYNC", "WP_UNPOPULATED", "WP_HUGETLBFS_SHMEM"].every((f) =>
  features.features.includes(f)
);
const noWpAsync = noUffd ||
  (!hasAsync && "this kernel lacks UFFD_FEATURE_WP_ASYNC, WP_UNPOPULATED or WP_HUGETLBFS_SHMEM");
const noWpSync = noUffd ||
  (!features.features.includes("WP_HUGETLBFS_SHMEM") &&
    "this kernel lacks UFFD_FEATURE_WP_HUGETLBFS_SHMEM (Linux 5.19)");

/** The runs of whole pages that `pages` make, as dirtyPages() returns them. */
function runsOf(pages: Iterable<number>): { offset: number; length: number }[] {
  const runs: { offset: number; length: number }[] = [];
  for (const p of [...pages].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    if (last && last.offset + last.length === p * PAGE) last.length += PAGE;
    else runs.push({ offset: p * PAGE, length: PAGE });
  }
  return runs;
}

/**
 * A fixed pseudo-random write pattern (xorshift) over a memfd mapping of
 * three kinds of page: populated through this mapping before tracking,
 * populated only through another mapping (in the page cache, not in this
 * mapping's page table), and never populated; reads elsewhere. Checks the
 * runs, the data, reset() and close().
 */
function writePattern(mode: "async" | "sync" | undefined): void {
  const pages = 513; // not a multiple of 64: the bitmap's last word is partial
  const third = 171;
  using fd = MemFd.create(`uffd-track-${mode}`, { size: pages * PAGE });
  using m = fd.map();
  using other = fd.map();
  const b = m.bytes();
  for (let p = 0; p < third; p++) b[p * PAGE] = 0x10;
  for (let p = third; p < 2 * third; p++) other.bytes()[p * PAGE] = 0x20;
  using t = trackWrites(m, mode === undefined ? undefined : { mode });
  assertEquals(t.mode, mode ?? (hasAsync ? "async" : "sync"));
  assertEquals(t.dirtyPages(), []);
  let x = 0x9e3779b9;
  const written = new Set<number>();
  for (let i = 0; i < 200; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const p = (x >>> 0) % pages;
    if (i % 3 === 2) {
      void b[p * PAGE + 1]; // a read: never counts
      continue;
    }
    written.add(p);
    b[p * PAGE + 1] = p & 0xff | 1;
  }
  written.add(pages - 1); // the last page, in the bitmap's partial word
  b[(pages - 1) * PAGE + 1] = 1;
  for (const kind of [0, 1, 2]) {
    assert(
      [...written].some((p) => Math.floor(p / third) === kind),
      `the pattern writes kind ${kind}`,
    );
  }
  assertEquals(t.dirtyPages(), runsOf(written));
  for (let p = 0; p < pages; p++) {
    const before = p < third ? 0x10 : p < 2 * third ? 0x20 : 0;
    assertEquals(b[p * PAGE], before, `page ${p} keeps its first byte`);
    if (written.has(p) && p !== pages - 1) assertEquals(b[p * PAGE + 1], p & 0xff | 1, `page ${p}`);
  }
  assertEquals(t.dirtyPages(), runsOf(written), "reading every page changed nothing");
  assertEquals(t.reset(), runsOf(written));
  assertEquals(t.dirtyPages(), []);
  b[3 * PAGE] = 7;
  b[400 * PAGE] = 7;
  assertEquals(t.dirtyPages(), runsOf([3, 400]));
  assertEquals(other.bytes()[400 * PAGE], 7, "the write reached the memfd");
  t.close();
  t.close();
  assert(t.closed);
  assertThrows(() => t.dirtyPages(), Deno.errors.BadResource);
  assertThrows(() => t.reset(), Deno.errors.BadResource);
  b[4 * PAGE] = 1; // writable as before
  assertEquals(other.bytes()[4 * PAGE], 1);
}

probed({
  name: "trackWrites() picks asynchronous write-protection where the kernel has it, else sync",
  skip: noWpSync,
  fn() {
    writePattern(undefined);
  },
});

probed({
  name:
    'trackWrites({ mode: "async" }) reports a known random write pattern, pages never populated included',
  skip: noWpAsync,
  fn() {
    writePattern("async");
  },
});

probed({
  name:
    'trackWrites({ mode: "sync" }) reports a known random write pattern, pages never populated included',
  skip: noWpSync,
  fn() {
    writePattern("sync");
  },
});

probed({
  name: "trackWrites() of shared anonymous memory, in every mode the kernel has",
  skip: noWpSync,
  fn() {
    for (const mode of hasAsync ? ["async", "sync"] as const : ["sync"] as const) {
      using m = mapAnonymous(64 * PAGE);
      m.bytes()[0] = 1;
      using t = trackWrites(m, { mode });
      assertEquals(t.mode, mode);
      const b = m.bytes();
      b[0] = 2; // populated before
      b[40 * PAGE] = 3; // never populated
      void b[41 * PAGE];
      assertEquals(t.dirtyPages(), runsOf([0, 40]), mode);
      assertEquals([b[0], b[40 * PAGE], b[41 * PAGE]], [2, 3, 0]);
    }
  },
});

probed({
  name: 'trackWrites({ mode: "sync" }): writes from another thread (C, through FFI) are caught too',
  skip: noWpSync,
  async fn() {
    const libc = Deno.dlopen("libc.so.6", {
      memset: { parameters: ["pointer", "i32", "usize"], result: "pointer", nonblocking: true },
    });
    try {
      using fd = MemFd.create("uffd-track-thread", { size: 64 * PAGE });
      using m = fd.map();
      using t = trackWrites(m, { mode: "sync" });
      assertEquals(t.mode, "sync");
      await libc.symbols.memset(
        Deno.UnsafePointer.create(m.address + BigInt(8 * PAGE)),
        9,
        BigInt(3 * PAGE),
      );
      assertEquals(t.dirtyPages(), [{ offset: 8 * PAGE, length: 3 * PAGE }]);
      assertEquals(m.bytes()[10 * PAGE + PAGE - 1], 9);
    } finally {
      libc.close();
    }
  },
});

probed({
  name:
    "closing a synchronous tracker while another thread's writes fault neither hangs nor crashes (child not killed by a signal)",
  skip: noWpSync,
  fn() {
    const r = childReport([
      "--allow-ffi",
      "--allow-read=/proc/self/pagemap",
      fixture,
      "track-close-during-write",
    ]);
    assertEquals([r.mode, r.closed, r.written, r.all], ["sync", true, true, true]);
    // 16384 pages, each first write a round trip to the handler: the close
    // comes long before the last (a starved child would say so here).
    const before = r.before as number;
    assert(
      before >= 16 && before <= (r.pages as number),
      `pages written before close(): ${before}`,
    );
    if (before === r.pages) console.log("note: the writer finished before close() came");
  },
});

probed({
  name:
    "a synchronous tracker with kernel-mode faults serves the kernel's own write (read(2) into a protected page)",
  skip: noWpSync || (!features.kernelFaults && "this user gets user-mode-only faults"),
  fn() {
    const r = childReport(["--allow-ffi", fixture, "track-syscall-write"]);
    assertEquals([r.protected, r.unprotected, r.dirty, r.value], [16, 16, [0, 2], 7]);
  },
});

probed({
  name:
    "a synchronous tracker dropped without close() is released by the collector, its thread ends",
  skip: noWpSync,
  fn() {
    const r = childReport([
      "--allow-ffi",
      "--allow-run=sh",
      "--v8-flags=--expose-gc",
      fixture,
      "track-collected",
    ]);
    assertEquals([r.threads, r.before, r.after, r.writable], [0, 1, 0, true]);
  },
});

Deno.test("trackWrites() refuses a bad mode and bad options before any system call", () => {
  using fd = MemFd.create("uffd-track-args", { size: 2 * PAGE });
  using m = fd.map();
  assertThrows(
    () => trackWrites(m, { mode: "soft-dirty" as never }),
    TypeError,
    'expected "async" or "sync"',
  );
  assertThrows(() => trackWrites(m, { mode: 1 as never }), TypeError);
  assertThrows(() => trackWrites(m, null as never), TypeError);
  assertThrows(
    () => trackWrites({} as never, { mode: "sync" }),
    TypeError,
    "expected a memkit Mapping",
  );
});

probed({
  name: "trackWrites() refuses what it cannot track, with the reason, in every mode",
  skip: noWpSync,
  fn() {
    for (const mode of [undefined, "sync"] as const) {
      const opts = mode && { mode };
      assertThrows(() => trackWrites({} as never, opts), TypeError, "expected a memkit Mapping");
      using fd = MemFd.create("uffd-track-bad", { size: 2 * PAGE });
      const closed = fd.map();
      closed.close();
      assertThrows(() => trackWrites(closed, opts), Deno.errors.BadResource, "closed");
      const { data, address } = heap(2);
      using view = LazyView.create({ address, length: data.length });
      const e = assertThrows(() => trackWrites(view, opts), MemkitError);
      assertEquals(e.code, "EBUSY");
      assertStringIncludes(e.message, "another userfaultfd");
      using m = fd.map();
      using first = trackWrites(m, opts);
      assertEquals(first.mode, mode ?? (hasAsync ? "async" : "sync"));
      assertEquals(assertThrows(() => trackWrites(m, { mode: "sync" }), MemkitError).code, "EBUSY");
      first.close();
      const t = trackWrites(m, opts);
      m.close();
      assertThrows(() => t.dirtyPages(), Deno.errors.BadResource, "closed or moved");
      t.close();
    }
    if (!hasAsync) {
      using fd = MemFd.create("uffd-track-noasync", { size: PAGE });
      using m = fd.map();
      const e = assertThrows(() => trackWrites(m, { mode: "async" }), MemkitError);
      assertEquals(e.code, "EOPNOTSUPP");
      assertStringIncludes(e.message, "UFFD_FEATURE_WP_ASYNC");
      assertStringIncludes(e.message, "leave mode unset");
    }
  },
});
