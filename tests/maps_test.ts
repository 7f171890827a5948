// flags: --allow-ffi --allow-read=/proc,/tmp --allow-write=/tmp --allow-run=pmap,python3,sleep,true,cat,strace --v8-flags=--js-immutable-arraybuffer
// readMaps, readSmaps, readSmapsRollup and findMapping against the kernel:
// this process, and a Python child whose mappings are awkward to parse,
// cross-checked with pmap -X (procps) and smaps_rollup.
import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  findMapping,
  type MapsEntry,
  MemFd,
  MemkitError,
  readMaps,
  readSmaps,
  readSmapsRollup,
  type SmapsEntry,
} from "../mod.ts";
import { parseMaps, parseSmaps } from "../src/maps.ts";
import { ERRNO } from "../ffi/errors.ts";
import { procError, readLines } from "../src/_proc.ts";
import { hasProcmapQuery, kernelHas } from "./fixtures/kernel.ts";
import { lacks, need } from "./fixtures/skip.ts";
import { readyLine } from "./fixtures/child.ts";

const fixture = new URL("./fixtures/mappings.py", import.meta.url).pathname;
// The QEMU guest (busybox and Deno only) has neither.
const python = need(lacks("python3"));
const pmap = need(python.reason || lacks("pmap", ["-V"]));

interface Child {
  pid: number;
  paths: { spaced: string; newline: string; deleted: string; shm: string };
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the Python child and waits for its JSON line. */
async function startChild(): Promise<Child> {
  const dir = Deno.makeTempDirSync({ prefix: "memkit-maps-" });
  const proc = new Deno.Command("python3", {
    args: [fixture, dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const text = await readyLine(proc.stdout);
  return {
    pid: proc.pid,
    paths: JSON.parse(text),
    async [Symbol.asyncDispose]() {
      await proc.stdin.close();
      await proc.stdout.cancel();
      await proc.status;
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** A sleep(1) child: quiet, with the few mappings of a small program. */
function startSleep(): { pid: number; [Symbol.asyncDispose](): Promise<void> } {
  const proc = new Deno.Command("sleep", { args: ["60"] }).spawn();
  return {
    pid: proc.pid,
    async [Symbol.asyncDispose]() {
      proc.kill("SIGKILL");
      await proc.status;
    },
  };
}

Deno.test('readMaps("self") finds the heap, the stack, the vdso and a memfd of this process', () => {
  using fd = MemFd.create("maps test", { size: 3 * 4096 });
  using m = fd.map({ access: "r" });
  const maps = readMaps("self");
  const kinds = new Set(maps.map((e) => e.kind));
  for (const k of ["file", "anonymous", "heap", "stack", "vdso", "vvar", "memfd"]) {
    assert(kinds.has(k as MapsEntry["kind"]), `no ${k} mapping`);
  }
  for (let i = 1; i < maps.length; i++) assert(maps[i - 1].end <= maps[i].start, "not in order");
  const mine = maps.find((e) => e.start === m.address)!;
  assertEquals(mine.end - mine.start, 3n * 4096n);
  assertEquals(mine.size, 3 * 4096);
  assertEquals([mine.perms, mine.read, mine.write, mine.exec, mine.shared], [
    "r--s",
    true,
    false,
    false,
    true,
  ]);
  assertEquals([mine.kind, mine.name, mine.path, mine.deleted], [
    "memfd",
    "maps test",
    "/memfd:maps test",
    true,
  ]);
  assertEquals(
    mine.device,
    `${mine.major.toString(16).padStart(2, "0")}:${mine.minor.toString(16).padStart(2, "0")}`,
  );
  assertGreater(mine.inode, 0);
});

Deno.test('readMaps(Deno.pid) reads the same file as readMaps("self")', () => {
  const a = readMaps("self").filter((e) => e.kind !== "anonymous").map((e) => e.path);
  const b = readMaps(Deno.pid).filter((e) => e.kind !== "anonymous").map((e) => e.path);
  assertEquals(new Set(a), new Set(b));
});

python.test("paths with spaces and newlines, deleted files, memfd, POSIX shm and shared anonymous memory parse", async () => {
  await using child = await startChild();
  const maps = readMaps(child.pid);
  const byPath = (p: string) => maps.find((e) => e.path === p);
  const spaced = byPath(child.paths.spaced)!;
  assert(spaced, "the path with spaces was not found");
  assertEquals([spaced.kind, spaced.deleted, spaced.offset, spaced.size, spaced.perms], [
    "file",
    false,
    4096n,
    2 * 4096,
    "rw-s",
  ]);
  const newline = byPath(child.paths.newline)!;
  assertEquals(newline.kind, "file");
  assertStringIncludes(newline.path, "line\nbreak");
  const deleted = byPath(child.paths.deleted)!;
  assertEquals([deleted.kind, deleted.deleted], ["deleted", true]);
  const shm = byPath(child.paths.shm)!;
  assertEquals([shm.kind, shm.deleted, shm.name], [
    "shm",
    true,
    child.paths.shm.slice("/dev/shm/".length),
  ]);
  const memfd = maps.find((e) => e.kind === "memfd")!;
  assertEquals([memfd.name, memfd.size, memfd.shared], ["memkit fd name", 4 * 4096, true]);
  const anon = byPath("/dev/zero")!;
  assertEquals([anon.kind, anon.deleted, anon.shared, anon.size], [
    "anonymous",
    true,
    true,
    5 * 4096,
  ]);
  assertEquals(maps.filter((e) => e.kind === "heap").length, 1);
});

pmap.test("readMaps agrees with pmap -X on every range, permission, offset, device, inode and path", async () => {
  await using child = await startChild();
  const out = new Deno.Command("pmap", { args: ["-X", "-p", String(child.pid)] }).outputSync();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  const header = lines[1].trim().split(/\s+/);
  const numbers = header.length - 6; // Address Perm Offset Device Inode <numbers...> Mapping
  const rows = lines.slice(2).filter((l) => /^\s*[0-9a-f]+ [r-][w-][x-][sp] /.test(l)).map((l) => {
    const f = l.trim().split(/ +/);
    // The mapping is what follows the numeric columns: rebuild it from the line.
    let rest = l.trim();
    for (let i = 0; i < 5 + numbers; i++) rest = rest.slice(rest.indexOf(" ")).trimStart();
    // Values, not formatting: procps 4.0.2 zero-pads addresses, others do not.
    const [major, minor] = f[3].split(":").map((x) => parseInt(x, 16));
    return {
      start: BigInt(`0x${f[0]}`),
      perms: f[1],
      offset: BigInt(`0x${f[2]}`),
      device: [major, minor],
      inode: Number(f[4]),
      size: Number(f[5]) * 1024,
      path: /^\d+$/.test(rest) ? "" : rest,
    };
  });
  const maps = readMaps(child.pid);
  assertEquals(maps.length, rows.length);
  maps.forEach((e, i) => {
    const r = rows[i];
    const path = e.path.replaceAll("\n", "\\012") + (e.deleted ? " (deleted)" : "");
    assertEquals(
      [
        e.start,
        e.perms,
        e.offset,
        [e.major, e.minor],
        e.inode,
        e.size,
        path,
      ],
      [r.start, r.perms, r.offset, r.device, r.inode, r.size, r.path],
      `line ${i}`,
    );
  });
});

Deno.test("smaps has the maps lines, counters in bytes, VmFlags, and Rss totals that match smaps_rollup", async () => {
  // A quiet child: the Python one, or a sleep(1) where there is no Python.
  await using child = python.reason ? startSleep() : await startChild();
  // Read until the child is quiet: the same rollup before and after.
  let smaps, maps, rollup;
  for (let attempt = 0;; attempt++) {
    const before = readSmapsRollup(child.pid);
    smaps = readSmaps(child.pid);
    maps = readMaps(child.pid);
    rollup = readSmapsRollup(child.pid);
    if (before.rss === rollup.rss && before.anonymous === rollup.anonymous || attempt === 20) break;
  }
  assertEquals(
    smaps.map((e) => [e.start, e.end, e.path]),
    maps.map((e) => [e.start, e.end, e.path]),
  );
  assertEquals(rollup.start, maps[0].start);
  const sum = (
    k:
      | "rss"
      | "privateDirty"
      | "privateClean"
      | "sharedClean"
      | "sharedDirty"
      | "anonymous"
      | "swap"
      | "locked",
  ) => smaps.reduce((n, e) => n + e[k], 0);
  // A clean page of a library is shared or private by whether another
  // process maps it at that moment (processes come and go between two
  // reads): their sum is the process's own, and must agree.
  for (const k of ["rss", "privateDirty", "sharedDirty", "anonymous", "swap", "locked"] as const) {
    assertEquals(sum(k), rollup[k], k);
  }
  assertEquals(sum("privateClean") + sum("sharedClean"), rollup.privateClean + rollup.sharedClean);
  assertGreater(rollup.rss, 0);
  assertEquals(rollup.rss % 4096, 0);
  assert(rollup.fields.Pss_Anon !== undefined, "the rollup has Pss_Anon");
  for (const e of smaps) {
    assertEquals(e.fields.Size, e.size);
    assertEquals(e.vmFlags.has("rd"), e.read);
    assertEquals(e.vmFlags.has("wr"), e.write);
    assertEquals(e.vmFlags.has("ms"), e.shared, "the s of maps is VM_MAYSHARE");
  }
  if (python.reason) return; // sleep(1) has no memfd
  const memfd = smaps.find((e) => e.kind === "memfd")!;
  assertEquals(memfd.rss, 4096, "the child touched one page of its memfd");
  assertEquals(memfd.fields.Rss, 4096);
});

Deno.test("findMapping with PROCMAP_QUERY and with the text parser give the same entry for every mapping", async () => {
  // Where the kernel lacks the ioctl (6.1 in the QEMU guest), "auto" is the
  // text parser and "query" is refused with the kernel's ENOTTY.
  const query = hasProcmapQuery();
  console.log(kernelHas("PROCMAP_QUERY"));
  // A quiet child: the Python one, or a sleep(1) where there is no Python.
  await using child = python.reason ? startSleep() : await startChild();
  for (const pid of ["self", child.pid] as const) {
    if (!query) {
      const e = assertThrows(() => findMapping(0, pid, { method: "query" }), MemkitError);
      assertEquals(e.code, "ENOTTY");
      assertStringIncludes(e.message, "lacks the PROCMAP_QUERY ioctl (Linux 6.11)");
    }
    const maps = readMaps(pid);
    // This process maps and unmaps as it runs (V8's heap): compare its
    // files, stack and vdso, which stay; the quiet child is compared whole.
    const stable = pid === "self"
      ? maps.filter((e) => ["file", "stack", "vdso", "vvar", "vsyscall"].includes(e.kind))
      : maps;
    for (const e of stable) {
      for (const addr of [e.start, e.start + BigInt(e.size >> 1), e.end - 1n]) {
        const q = findMapping(addr, pid);
        const t = findMapping(addr, pid, { method: "text" });
        assertEquals(q, t, `${pid} at 0x${addr.toString(16)}`);
        // The query sees VMAs, not the vsyscall page above user space.
        if (query && addr < 1n << 63n) {
          assertEquals(findMapping(addr, pid, { method: "query" }), q);
        }
        if (pid !== "self") assertEquals(q, e);
      }
    }
    // A gap between two mappings (in the quiet child), and address 0.
    if (pid !== "self") {
      const gap = maps.findIndex((e, i) => i > 0 && maps[i - 1].end < e.start);
      assertEquals(findMapping(maps[gap - 1].end, pid), null);
      assertEquals(findMapping(maps[gap - 1].end, pid, { method: "text" }), null);
    }
    assertEquals(findMapping(0, pid), null);
  }
});

Deno.test("findMapping reports a MemFd mapping's permissions after protect()", () => {
  using fd = MemFd.create("protect me", { size: 4096 });
  using m = fd.map();
  assertEquals(findMapping(m.address)!.perms, "rw-s");
  m.protect("r");
  assertEquals(findMapping(m.address)!.perms, "r--s");
  if (hasProcmapQuery()) {
    assertEquals(findMapping(m.address, "self", { method: "query" })!.write, false);
  } else {
    assertEquals(findMapping(m.address, "self", { method: "text" })!.write, false);
    const e = assertThrows(() => findMapping(m.address, "self", { method: "query" }), MemkitError);
    assertEquals(e.code, "ENOTTY");
    assertStringIncludes(e.message, "lacks the PROCMAP_QUERY ioctl (Linux 6.11)");
  }
});

Deno.test("a pid that does not exist, has exited or is a kernel thread is NotFound with a clear message", async () => {
  const e1 = assertThrows(() => readMaps(4194000), Deno.errors.NotFound);
  assertStringIncludes(e1.message, "no process with pid 4194000");
  const done = new Deno.Command("true").spawn();
  const pid = done.pid;
  await done.status;
  for (
    const f of [
      () => readMaps(pid),
      () => readSmaps(pid),
      () => readSmapsRollup(pid),
      () => findMapping(4096, pid),
    ]
  ) {
    assertThrows(f, Deno.errors.NotFound);
  }
  const kthread = assertThrows(() => readMaps(2), Deno.errors.NotFound);
  assertStringIncludes(kthread.message, "no address space");
  assertThrows(() => findMapping(4096, 2), Deno.errors.NotFound);
});

Deno.test("bad pids and addresses are TypeError or RangeError before any read", () => {
  assertThrows(() => readMaps(0), RangeError);
  assertThrows(() => readMaps(-1), RangeError);
  assertThrows(() => readMaps(1.5), TypeError);
  assertThrows(() => readMaps("me" as "self"), TypeError);
  assertThrows(() => findMapping(-1), TypeError);
  assertThrows(() => findMapping(1n << 64n), RangeError);
  assertThrows(() => findMapping(0, "self", { method: "guess" as "text" }), TypeError);
});

Deno.test("a kernel without PROCMAP_QUERY is named in the ENOTTY of a query", () => {
  // What findMapping(..., { method: "query" }) throws where the ioctl is
  // missing (the 6.1 guest runs the real refusal above).
  const e = procError(ERRNO.ENOTTY, "self", "maps", "query") as MemkitError;
  assertInstanceOf(e, MemkitError);
  assertEquals(e.code, "ENOTTY");
  assertEquals(
    e.message,
    'Cannot query "/proc/self/maps": Inappropriate ioctl for device: this kernel lacks the ' +
      'PROCMAP_QUERY ioctl (Linux 6.11); method "auto" or "text" reads the text of maps instead',
  );
});

Deno.test("a missing smaps_rollup of a process that exists names the kernel, not the pid", async () => {
  // A kernel before 4.14 has no smaps_rollup: ENOENT for every pid. Whether
  // the process exists decides the message (the probe opens its maps).
  const lacks = procError(ERRNO.ENOENT, 1234, "smapsRollup", "read", () => true) as MemkitError;
  assertInstanceOf(lacks, MemkitError);
  assertEquals(lacks.code, "ENOENT");
  assertStringIncludes(lacks.message, 'Cannot read "/proc/1234/smaps_rollup"');
  assertStringIncludes(lacks.message, "this kernel lacks /proc/<pid>/smaps_rollup (Linux 4.14)");
  for (const exists of [() => false, () => undefined]) {
    const gone = procError(ERRNO.ENOENT, 1234, "smapsRollup", "read", exists);
    assert(gone instanceof Deno.errors.NotFound);
    assertStringIncludes(gone.message, "no process with pid 1234");
  }
  // Other files never ask: their ENOENT is the process.
  let asked = false;
  const maps = procError(ERRNO.ENOENT, 1234, "maps", "read", () => asked = true);
  assert(maps instanceof Deno.errors.NotFound && !asked);
  // On this kernel (it has smaps_rollup) an exited process is still NotFound:
  // the probe of its maps finds no process.
  const done = new Deno.Command("true").spawn();
  await done.status;
  const e = assertThrows(() => readSmapsRollup(done.pid), Deno.errors.NotFound);
  assertStringIncludes(e.message, `no process with pid ${done.pid}`);
});

// ---- reading in chunks: more than 1 MiB of smaps, read once ----

const strace = need(python.reason || lacks("strace", ["-V"]));

/**
 * A Python child with `n` mappings of alternating protection (the kernel
 * cannot merge them; each smaps block is about 700 bytes), one page of each
 * touched; with `churn`, it maps and unmaps pages of another range without
 * pause until its stdin closes.
 */
async function startMany(n: number, churn = false): Promise<Child> {
  const code = `
import ctypes, mmap, os, select, sys
n, churn = int(sys.argv[1]), sys.argv[2] == "1"
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
page = mmap.PAGESIZE
base = libc.mmap(None, 2 * n * page, 3, 0x22, -1, 0)
for i in range(n):
    ctypes.memset(base + 2 * i * page + page, 1, 1)
    libc.mprotect(base + 2 * i * page, page, 1)
spare = libc.mmap(None, 256 * page, 0, 0x22, -1, 0)
os.write(1, b'{}\\n')
i = 0
while not select.select([0], [], [], 0 if churn else None)[0]:
    at = spare + (i * 37 % 256) * page
    libc.munmap(at, page) if i % 2 else libc.mmap(at, page, 3, 0x32, -1, 0)
    i += 1
`;
  const proc = new Deno.Command("python3", {
    args: ["-c", code, String(n), churn ? "1" : "0"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const text = await readyLine(proc.stdout);
  return {
    pid: proc.pid,
    paths: JSON.parse(text),
    async [Symbol.asyncDispose]() {
      await proc.stdin.close();
      await proc.stdout.cancel();
      await proc.status;
    },
  };
}

/** smaps as cat(1) prints it, parsed by splitting lines: a parser that is not memkit's. */
function catSmaps(pid: number) {
  const r = new Deno.Command("cat", { args: [`/proc/${pid}/smaps`], stdout: "piped" })
    .outputSync();
  const text = new TextDecoder().decode(r.stdout);
  const blocks: {
    start: bigint;
    end: bigint;
    perms: string;
    offset: bigint;
    device: string;
    inode: number;
    path: string;
    fields: Record<string, number>;
    vmFlags: string[];
  }[] = [];
  for (const line of text.split("\n")) {
    const field = /^(\w+):\s+(.*)$/.exec(line);
    if (field && blocks.length > 0) {
      const [, key, value] = field;
      const b = blocks[blocks.length - 1];
      if (key === "VmFlags") b.vmFlags = value.trim().split(/ +/);
      else b.fields[key] = value.endsWith(" kB") ? parseInt(value) * 1024 : Number(value);
      continue;
    }
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+) *(.*)$/.exec(line);
    if (!m) continue;
    blocks.push({
      start: BigInt(`0x${m[1]}`),
      end: BigInt(`0x${m[2]}`),
      perms: m[3],
      offset: BigInt(`0x${m[4]}`),
      device: m[5],
      inode: Number(m[6]),
      path: m[7],
      fields: {},
      vmFlags: [],
    });
  }
  return { bytes: r.stdout.length, blocks };
}

python.test("readSmaps of more than 1 MiB agrees with every field and flag of cat's text, split by lines", async () => {
  await using child = await startMany(3000);
  let ours: SmapsEntry[], theirs: ReturnType<typeof catSmaps>;
  for (let attempt = 0;; attempt++) {
    const cat = theirs = catSmaps(child.pid);
    ours = readSmaps(child.pid);
    if (
      ours.length === theirs.blocks.length &&
      ours.every((e, i) => e.rss === cat.blocks[i].fields.Rss)
    ) break;
    if (attempt === 20) break;
  }
  assertGreater(theirs.bytes, 1 << 20, "more than 1 MiB of smaps");
  assertGreater(ours.length, 6000);
  assertEquals(ours.length, theirs.blocks.length);
  // Pss counts the other processes that map a page (a library's), which
  // come and go, and so does whether a clean page is shared or private:
  // every other field must be the same, and the two clean counts' sum.
  const settled = (fields: Record<string, number>) => {
    const out = Object.fromEntries(
      Object.entries(fields).filter(([k]) => !k.includes("Pss") && !k.endsWith("_Clean")),
    );
    out.Clean = (fields.Shared_Clean ?? 0) + (fields.Private_Clean ?? 0);
    return out;
  };
  ours.forEach((e, i) => {
    assertEquals(
      {
        start: e.start,
        end: e.end,
        perms: e.perms,
        offset: e.offset,
        device: e.device,
        inode: e.inode,
        path: e.path + (e.deleted ? " (deleted)" : ""),
        fields: settled(e.fields),
        vmFlags: [...e.vmFlags],
      },
      { ...theirs.blocks[i], fields: settled(theirs.blocks[i].fields) },
      `block ${i}`,
    );
    assertEquals(Object.keys(e.fields), Object.keys(theirs.blocks[i].fields), "the kernel's order");
  });
  // The named counters are the fields of the same name.
  for (const e of ours) {
    assertEquals([e.rss, e.pss, e.privateDirty, e.swap], [
      e.fields.Rss,
      e.fields.Pss,
      e.fields.Private_Dirty,
      e.fields.Swap,
    ]);
  }
  // readMaps reads the same mappings, and smaps_rollup sums the same Rss.
  assertEquals(readMaps(child.pid).map((e) => e.start), ours.map((e) => e.start));
  assertEquals(readSmapsRollup(child.pid).rss, ours.reduce((n, e) => n + e.rss, 0));
});

strace.test("the first readSmaps and readMaps in a process open each file once, however long it is", async () => {
  // Before, the first read of a file longer than 64 KiB read it whole into
  // a buffer too small, only to measure it, then again from the start.
  await using child = await startMany(3000);
  const dir = Deno.makeTempDirSync({ prefix: "memkit-maps-" });
  try {
    const script = `${dir}/first.ts`;
    const mod = new URL("../mod.ts", import.meta.url).href;
    Deno.writeTextFileSync(
      script,
      `import { readMaps, readSmaps } from "${mod}";\n` +
        `const s = readSmaps(${child.pid}), m = readMaps(${child.pid});\n` +
        `console.log(JSON.stringify({ smaps: s.length, maps: m.length }));\n`,
    );
    const log = `${dir}/strace.log`;
    const r = new Deno.Command("strace", {
      args: [
        "-f",
        "-qq",
        "-e",
        "trace=open,openat,openat2",
        "-o",
        log,
        Deno.execPath(),
        "run",
        "--allow-ffi",
        `--allow-read=/proc/${child.pid}`,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const stderr = new TextDecoder().decode(r.stderr);
    assertEquals([r.signal, r.code], [null, 0], stderr);
    const counts = JSON.parse(new TextDecoder().decode(r.stdout));
    assertGreater(counts.smaps, 6000);
    assertEquals(counts.maps, counts.smaps);
    const opens = (file: string) =>
      Deno.readTextFileSync(log).split("\n").filter((l) =>
        l.includes(`"/proc/${child.pid}/${file}"`)
      ).length;
    assertEquals(opens("smaps"), 1, "smaps opened once");
    assertEquals(opens("maps"), 1, "maps opened once");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

python.test("smaps read while the process maps and unmaps is whole lines in address order", async () => {
  // The file changes between the reads of its chunks: each entry is still
  // a whole block (the kernel's guarantee: addresses never go backwards).
  await using child = await startMany(2000, true);
  for (let i = 0; i < 10; i++) {
    const smaps = readSmaps(child.pid);
    assertGreater(smaps.length, 4000);
    for (let j = 1; j < smaps.length; j++) {
      assert(smaps[j - 1].end <= smaps[j].start, `entry ${j} overlaps the one before`);
    }
    for (const e of smaps) {
      assertEquals(e.fields.Size, e.size);
      assert(e.vmFlags.size > 0, "every block has its VmFlags");
    }
    const maps = readMaps(child.pid);
    for (let j = 1; j < maps.length; j++) assert(maps[j - 1].end <= maps[j].start);
  }
});

Deno.test("readLines hands over every line of real smaps text once, in order, whatever the buffer size", () => {
  const r = new Deno.Command("cat", { args: ["/proc/self/smaps"], stdout: "piped" }).outputSync();
  const text = r.stdout;
  const lines = new TextDecoder().decode(text).split("\n");
  for (const size of [1, 2, 3, 7, 64, 100, 4096, 1 << 16, text.length + 1]) {
    for (const ending of ["\n", ""]) {
      const file = ending === "" ? text.subarray(0, text.length - 1) : text;
      let at = 0;
      let reads = 0;
      const got: string[] = [];
      const total = readLines((into) => {
        reads++;
        const n = Math.min(into.length, file.length - at);
        into.set(file.subarray(at, at + n));
        at += n;
        return n;
      }, (buf, b, e) => {
        assert(buf[e - 1] === 0x0a || at === file.length, "a chunk ends at a newline, or the file");
        got.push(new TextDecoder().decode(buf.subarray(b, e)));
      }, new Uint8Array(size));
      assertEquals([total, at], [file.length, file.length]);
      const joined = got.join("");
      assertEquals(joined, new TextDecoder().decode(file), `buffer of ${size}`);
      assertEquals(joined.split("\n"), ending === "" ? lines.slice(0, -1) : lines);
    }
  }
  // An empty file feeds nothing; a reader that returns more than it was given is refused.
  assertEquals(readLines(() => 0, () => assert(false, "fed")), 0);
  assertThrows(() => readLines((into) => into.length + 1, () => {}), RangeError);
});

Deno.test("parseSmaps takes the kernel's other forms the slow way: no kB, odd spacing, non-numbers, odd flags, wide addresses", () => {
  // What other kernels (and other lines than this kernel's) look like; the
  // fast path takes only `Name:<spaces><digits>[ kB]\n` in the previous
  // block's order, everything else is parsed from its text.
  const text = [
    "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/with space (deleted)",
    "Size:                328 kB",
    "Rss:                 300 kB",
    "THPeligible:    1",
    "VmFlags: rd ex mr mw me dw ",
    "00452000-00453000 rw-p 00052000 08:02 173521      /usr/bin/with space (deleted)",
    "Size:                  4 kB",
    "Rss:                   4 kB   ",
    "THPeligible:    0",
    "ProtectionKey:        0x10",
    "Odd:           twelve",
    "Empty:",
    "VmFlags: rd\twr  mr ",
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
    "Size:                  4 kB",
    "Rss:                   0 kB",
    "THPeligible:    0",
    "VmFlags: ex um1 ",
    "7f0000000000-7f0000001000 rw-s 00000000 00:01 42          /memfd:na\u00efve\\012name (deleted)",
    "Size:                  4 kB",
    "Rss:       99999999999999999 kB",
    "THPeligible:    0",
    "VmFlags: rd wr sh mr mw me ms ",
  ].join("\n");
  const [a, b, c, d] = parseSmaps(new TextEncoder().encode(text));
  assertEquals([a.path, a.deleted, a.kind, a.size, a.rss, a.fields.THPeligible], [
    "/usr/bin/with space",
    true,
    "deleted",
    0x52000,
    300 * 1024,
    1,
  ]);
  assertEquals([...a.vmFlags], ["rd", "ex", "mr", "mw", "me", "dw"]);
  // Trailing spaces, hexadecimal, a word and nothing: as Number() reads them.
  assertEquals(b.rss, 4096);
  assertEquals(b.fields, { Size: 4096, Rss: 4096, THPeligible: 0, ProtectionKey: 16, Empty: 0 });
  assertEquals(Object.keys(b.fields), ["Size", "Rss", "THPeligible", "ProtectionKey", "Empty"]);
  assertEquals([...b.vmFlags], ["rd\twr", "mr"]);
  assertEquals([c.start, c.end, c.size, c.kind], [
    0xffffffffff600000n,
    0xffffffffff601000n,
    4096,
    "vsyscall",
  ]);
  assertEquals([...c.vmFlags], ["ex", "um1"]);
  assertEquals([d.kind, d.name, d.path, d.deleted, d.shared], [
    "memfd",
    "na\u00efve\nname",
    "/memfd:na\u00efve\nname",
    true,
    true,
  ]);
  assertEquals(d.rss, 99999999999999999 * 1024);
  assertEquals(Object.keys(d).slice(15, 18), ["kind", "name", "rss"], "name comes after kind");
  assertThrows(
    () => parseSmaps(new TextEncoder().encode("Size: 4 kB\n")),
    SyntaxError,
    'Cannot parse the maps line "Size: 4 kB"',
  );
  assertThrows(() => parseMaps(new TextEncoder().encode("00400000 r-xp\n")), SyntaxError);
});

// Regression (issue 11): an entry of readSmaps held a Set of its own VmFlags
// (about 300 bytes) and a record of its fields (about 216): entries with the
// same VmFlags text now share one read-only set, and `fields` is made from
// the entry's counters when first read, with the same keys, order and
// values, and the same JSON, as the record every entry had before.

/** The 19 named counters by their kernel names, in SmapsEntry's order. */
const COUNTERS: [string, string][] = [
  ["Rss", "rss"],
  ["Pss", "pss"],
  ["Pss_Dirty", "pssDirty"],
  ["Shared_Clean", "sharedClean"],
  ["Shared_Dirty", "sharedDirty"],
  ["Private_Clean", "privateClean"],
  ["Private_Dirty", "privateDirty"],
  ["Referenced", "referenced"],
  ["Anonymous", "anonymous"],
  ["KSM", "ksm"],
  ["LazyFree", "lazyFree"],
  ["AnonHugePages", "anonHugePages"],
  ["ShmemPmdMapped", "shmemPmdMapped"],
  ["FilePmdMapped", "filePmdMapped"],
  ["Shared_Hugetlb", "sharedHugetlb"],
  ["Private_Hugetlb", "privateHugetlb"],
  ["Swap", "swap"],
  ["SwapPss", "swapPss"],
  ["Locked", "locked"],
];

/**
 * smaps text parsed eagerly, as readSmaps built every entry before: the maps
 * line by parseMaps, the counters and a `fields` record from the text's
 * lines, then the flags; plain objects, keys in the order entries had.
 */
function eagerSmaps(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let block: { header: string; fields: Record<string, number>; flags: string[] } | undefined;
  const end = () => {
    if (block === undefined) return;
    const [maps] = parseMaps(new TextEncoder().encode(block.header + "\n"));
    const counters = Object.fromEntries(COUNTERS.map(([k, name]) => [name, block!.fields[k] ?? 0]));
    out.push({ ...maps, ...counters, fields: block.fields, vmFlags: block.flags });
  };
  for (const line of text.split("\n")) {
    const field = /^(\w+):(.*)$/.exec(line);
    if (field === null) {
      if (line === "") continue;
      end();
      block = { header: line, fields: {}, flags: [] };
    } else if (field[1] === "VmFlags") {
      block!.flags = field[2].split(/ +/).filter((f) => f !== "");
    } else {
      const value = field[2].trim();
      const v = Number(value.endsWith(" kB") ? value.slice(0, -3) : value);
      if (!Number.isNaN(v)) block!.fields[field[1]] = value.endsWith(" kB") ? v * 1024 : v;
    }
  }
  end();
  return out;
}

/** JSON as `memkit maps --json` prints it: bigints in hexadecimal, sets as arrays. */
const toJson = (v: unknown) =>
  JSON.stringify(
    v,
    (_k, x) => typeof x === "bigint" ? `0x${x.toString(16)}` : x instanceof Set ? [...x] : x,
  );

Deno.test("readSmaps entries share one read-only VmFlags set per text, and fields and JSON are as eager parsing made them", async () => {
  const first = readSmaps("self"), second = readSmaps("self");
  const sets = new Map<string, ReadonlySet<string>>();
  for (const e of [...first, ...second]) {
    const text = [...e.vmFlags].join(" ");
    const known = sets.get(text);
    if (known === undefined) sets.set(text, e.vmFlags);
    else assert(known === e.vmFlags, `the mappings with VmFlags "${text}" share one set`);
  }
  assertGreater(first.length, sets.size, "mappings with the same flags");
  assertGreater(sets.size, 1);
  for (const set of sets.values()) {
    const before = [...set];
    assertInstanceOf(set, Set); // `memkit maps --json` prints a Set as an array
    assert(Object.isFrozen(set));
    const s = set as Set<string>;
    assertThrows(
      () => s.add("xx"),
      TypeError,
      `Cannot add "xx" to a mapping's VmFlags: the set is read-only, shared by every mapping with the same flags`,
    );
    assertThrows(() => s.delete(before[0]), TypeError, `Cannot delete "${before[0]}" from`);
    assertThrows(() => s.clear(), TypeError, "Cannot clear a mapping's VmFlags");
    assertEquals([...set], before);
  }

  // The same bytes through readSmaps' parser and through the eager one: a
  // quiet process's real smaps (every field this kernel prints), then the
  // kernel's other forms (a named memfd, a repeated field, `__proto__`, a
  // word, no flags).
  await using sleep = startSleep();
  const real = new Deno.Command("cat", { args: [`/proc/${sleep.pid}/smaps`], stdout: "piped" })
    .outputSync().stdout;
  const odd = [
    "7f0000000000-7f0000002000 rw-s 00000000 00:01 42          /memfd:cache (deleted)",
    "Size:                  8 kB",
    "Rss:                   4 kB",
    "Rss:                   8 kB",
    "__proto__:             1 kB",
    "ProtectionKey:        0x10",
    "Odd:           twelve",
    "VmFlags: rd wr sh mr mw me ms ",
    "7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 ",
    "Size:                  4 kB",
    "Locked:                4 kB",
    // A Size that is not the range's, twice (one row of values for both),
    // then a -0.
    "7ffd00001000-7ffd00002000 rw-p 00000000 00:00 0 ",
    "Size:                  8 kB",
    "Locked:                4 kB",
    "7ffd00002000-7ffd00003000 rw-p 00000000 00:00 0 ",
    "Size:                  8 kB",
    "Locked:                0 kB",
    "7ffd00003000-7ffd00004000 rw-p 00000000 00:00 0 ",
    "Size:                 -0",
    "Locked:                0 kB",
  ].join("\n");
  for (const bytes of [real, new TextEncoder().encode(odd)]) {
    const text = new TextDecoder().decode(bytes);
    const eager = eagerSmaps(text);
    const entries = parseSmaps(bytes);
    assertGreater(entries.length, 1);
    assertEquals(toJson(entries), toJson(eager));
    for (const [i, e] of entries.entries()) {
      assertEquals(Object.keys(e.fields), Object.keys(eager[i].fields as object));
      assertEquals(e.fields, eager[i].fields);
      assert(e.fields === e.fields, "made once");
      if (bytes === real) assertEquals(e.fields.Size, e.size);
    }
  }
  const [memfd, , wrong, again, zero] = parseSmaps(new TextEncoder().encode(odd));
  assertEquals(memfd.fields, { Size: 8192, Rss: 8192, ["__proto__"]: 1024, ProtectionKey: 16 });
  assertEquals([wrong.size, wrong.fields.Size, again.fields.Size], [4096, 8192, 8192]);
  assert(Object.is(zero.fields.Size, -0), "-0 as Number() reads it");
  memfd.fields = { Rss: 1 };
  assertEquals(memfd.fields, { Rss: 1 }, "fields can be replaced, as a property could");
});
