// flags: --allow-ffi --allow-read=/dev/shm,/proc,/tmp --allow-write=/dev/shm,/tmp --allow-run=$DENO,python3,unshare,stat,setpriv,cp,strace --allow-sys=uid --v8-flags=--js-immutable-arraybuffer
// POSIX shared memory (issue 12): names, the permission gate, the
// reservation at create (ENOSPC on a full tmpfs, not SIGBUS later), read-only
// segments, mprotect being per process, a peer shrinking a mapped segment,
// Python's multiprocessing.shared_memory both ways, and who maps what.
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { MemkitError, pageSize, protect, SharedMemory } from "../mod.ts";
import { childReport, denoRun, readUntil } from "./fixtures/child.ts";
import { lacks, need, probed } from "./fixtures/skip.ts";
import { nobodyPackage } from "./fixtures/nobody.ts";

const PAGE = pageSize();
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const fixture = `${root}/tests/fixtures/shm_child.ts`;
const FLAGS = ["--allow-ffi", "--v8-flags=--js-immutable-arraybuffer"];
let serial = 0;
const py = need(lacks("python3"));

/** Why a private mount namespace (for a small tmpfs over /dev/shm) cannot be had here, or false. */
function noMountNamespace(): string | false {
  try {
    const r = new Deno.Command("unshare", {
      args: ["-m", "--propagation", "private", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return r.success ? false : "unshare -m is refused (a private mount namespace needs root)";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "unshare is not installed";
    throw e;
  }
}

/** A fresh segment name, unlinked (if it exists) when the test ends. */
function fresh(): { name: string } & Disposable {
  const name = `memkit-test-${Deno.pid}-${serial++}`;
  return {
    name,
    [Symbol.dispose]() {
      try {
        SharedMemory.unlink(name);
      } catch {
        // already gone
      }
    },
  };
}

function exists(name: string): boolean {
  try {
    SharedMemory.info(name);
    return true;
  } catch (e) {
    if (e instanceof MemkitError && e.code === "ENOENT") return false;
    throw e;
  }
}

/** `stat(1)` of /dev/shm/<name> (Deno's own file API refuses /dev unless every permission is granted, which these tests never do): size, mode, uid, gid, blocks. */
function statTool(name: string): number[] {
  const r = new Deno.Command("stat", { args: ["-c", "%s %a %u %g %b %B", `/dev/shm/${name}`] })
    .outputSync();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const [size, mode, uid, gid, blocks, unit] = new TextDecoder().decode(r.stdout).trim().split(" ");
  return [Number(size), parseInt(mode, 8), Number(uid), Number(gid), Number(blocks) * Number(unit)];
}

/** Runs a Python 3 script with `args`; returns its stdout (fails on a non-zero exit). */
function python(script: string, ...args: string[]): string {
  const r = new Deno.Command("python3", { args: ["-c", script, ...args], stdin: "null" })
    .outputSync();
  const out = new TextDecoder().decode(r.stdout);
  assert(r.success, `python3 failed: ${out}\n${new TextDecoder().decode(r.stderr)}`);
  return out;
}

Deno.test("create(), open() and unlink(): /name and name are the same segment", () => {
  using seg = fresh();
  using a = SharedMemory.create(`/${seg.name}`, { size: 3 * PAGE });
  assertEquals([a.name, a.size, a.access], [`/${seg.name}`, 3 * PAGE, "rw"]);
  using m = a.map();
  m.bytes()[PAGE] = 9;
  using b = SharedMemory.open(seg.name, { access: "r" });
  assertEquals([b.name, b.access, b.read(PAGE, 1)[0]], [`/${seg.name}`, "r", 9]);
  const info = SharedMemory.info(seg.name);
  assertEquals(
    [info.size, info.mode, info.uid, info.gid, info.allocated],
    statTool(seg.name),
  );
  assertEquals(info.mode, 0o600);
  SharedMemory.unlink(`/${seg.name}`);
  assertEquals(exists(seg.name), false);
  // The open segment lives on, unnamed.
  assertEquals([a.stat().size, b.read(PAGE, 1)[0]], [3 * PAGE, 9]);
  const e = assertThrows(() => SharedMemory.open(seg.name), MemkitError);
  assertEquals(e.code, "ENOENT");
});

Deno.test("create() is exclusive by default; exclusive: false opens and grows, never shrinks", () => {
  using seg = fresh();
  SharedMemory.create(seg.name, { size: 2 * PAGE, mode: 0o640 }).close();
  const e = assertThrows(() => SharedMemory.create(seg.name, { size: PAGE }), MemkitError);
  assertEquals(e.code, "EEXIST");
  assertEquals(
    e.message,
    `Cannot create shared memory "/${seg.name}": File exists: it exists already; open it, ` +
      "unlink it, or create with exclusive: false",
  );
  using same = SharedMemory.create(seg.name, { size: PAGE, exclusive: false });
  assertEquals(same.size, 2 * PAGE);
  SharedMemory.create(seg.name, { size: 5 * PAGE, exclusive: false }).close();
  assertEquals(same.size, 5 * PAGE);
  assertEquals(SharedMemory.info(seg.name).mode, statTool(seg.name)[1]);
});

Deno.test("create() reserves every page (fallocate): the segment is not sparse", () => {
  using seg = fresh();
  using shm = SharedMemory.create(seg.name, { size: 64 * PAGE });
  const info = SharedMemory.info(seg.name);
  assert(info.allocated >= 64 * PAGE, `allocated ${info.allocated}`);
  assertEquals(statTool(seg.name)[4], info.allocated);
  shm.resize(128 * PAGE);
  assert(shm.stat().allocated >= 128 * PAGE, "growing reserves too");
});

probed({
  name: "a full /dev/shm is ENOSPC at create() and at a writable map() of a sparse segment",
  skip: noMountNamespace(),
  fn() {
    // A 1 MiB tmpfs over /dev/shm in a private mount namespace: the host's
    // /dev/shm is not touched.
    const r = new Deno.Command("unshare", {
      args: [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs -o size=1m memkit-shm-test /dev/shm && exec "$@"',
        "sh",
        Deno.execPath(),
        "run",
        ...FLAGS,
        "--allow-read=/dev/shm",
        "--allow-write=/dev/shm",
        "--allow-run=truncate",
        fixture,
        "full",
      ],
      stdin: "null",
    }).outputSync();
    const out = new TextDecoder().decode(r.stdout);
    assertEquals(r.signal, null, out);
    assert(r.success, `${out}\n${new TextDecoder().decode(r.stderr)}`);
    const report = JSON.parse(out.trim().split("\n").at(-1)!);
    assertEquals(report.big.code, "ENOSPC");
    assertStringIncludes(
      report.big.message,
      'Cannot create shared memory "/big": No space left on device: the shared memory ' +
        "filesystem (/dev/shm) has no room for it",
    );
    assertEquals(report.left.code, "ENOENT", "the segment that did not fit was removed");
    assertEquals(report.mapRw.code, "ENOSPC");
    assertStringIncludes(report.mapRw.message, 'Cannot reserve pages of "/dev/shm/sparse"');
    assertEquals(report.mapR, { ok: true, value: 4 << 20 }, 'access "r" needs no reservation');
    assertEquals(report.small, { ok: true, value: 512 << 10 });
  },
});

Deno.test("a bad name is a TypeError before the permission gate, so before any system call", () => {
  // No read permission at all: a name checked after the gate would be NotCapable.
  const r = childReport<string[]>([...FLAGS, fixture, "bad-names"]);
  assertEquals(r, new Array(8).fill("TypeError"));
  for (
    const [name, why] of [["", "empty"], ["a/b", "a slash after the first"], [
      "..",
      "names a directory",
    ]]
  ) {
    assertThrows(() => SharedMemory.create(name, { size: 1 }), TypeError, why);
  }
  assertThrows(() => SharedMemory.open("x".repeat(256)), TypeError, "longer than 255 bytes");
  assertThrows(() => SharedMemory.open("a\0b"), TypeError, "contains NUL");
});

Deno.test("hostile arguments: names and numbers must be primitives, options are read once", () => {
  using seg = fresh();
  const boxed = new String(seg.name) as unknown as string;
  assertThrows(() => SharedMemory.open(boxed), TypeError, "expected a string");
  const size = { [Symbol.toPrimitive]: () => PAGE } as unknown as number;
  assertThrows(() => SharedMemory.create(seg.name, { size }), TypeError, "expected an integer");
  assertThrows(() => SharedMemory.create(seg.name, null!), TypeError, "expected an object");
  assertThrows(() => SharedMemory.create(seg.name, undefined!), TypeError, "missing the options");
  assertThrows(
    () => SharedMemory.create(seg.name, { size: 1, exclusive: "yes" as unknown as boolean }),
    TypeError,
  );
  assertThrows(() => SharedMemory.create(seg.name, { size: 1, mode: 0o1777 }), RangeError);
  assertThrows(
    () => SharedMemory.open(seg.name, { access: "rwx" as "rw" }),
    TypeError,
  );
  assertEquals(exists(seg.name), false, "nothing was created");
  let reads = 0;
  const options = {
    get size() {
      reads++;
      return reads === 1 ? PAGE : 2 ** 40; // a different answer to a second read
    },
  };
  using shm = SharedMemory.create(seg.name, options);
  assertEquals([reads, shm.size], [1, PAGE]);
});

Deno.test("the gate: --allow-read=/dev/shm/<name> opens it read-only; writing needs --allow-write", () => {
  using seg = fresh();
  SharedMemory.create(seg.name, { size: PAGE }).close();
  const r = childReport<Record<string, string>>([
    ...FLAGS,
    `--allow-read=/dev/shm/${seg.name}`,
    fixture,
    "gate",
    seg.name,
  ]);
  const denied = (what: string, path: string) =>
    `NotCapable: Requires ${what} access to "${path}", run again with the --allow-${what} flag`;
  assertEquals(r, {
    openR: "ok",
    openRw: denied("write", `/dev/shm/${seg.name}`),
    create: denied("read", `/dev/shm/${seg.name}-new`),
    unlink: denied("write", `/dev/shm/${seg.name}`),
    info: "ok",
    list: denied("read", "/dev/shm"),
  });
  assertEquals(exists(seg.name), true, "the refused unlink left it");
});

Deno.test('a segment opened "r" is O_RDONLY: protect(m, "rw") is EACCES, saying it was opened read-only', () => {
  using seg = fresh();
  SharedMemory.create(seg.name, { size: PAGE }).close();
  using shm = SharedMemory.open(seg.name, { access: "r" });
  using m = shm.map();
  assertEquals(m.access, "r");
  const e = assertThrows(() => protect(m, "rw"), MemkitError);
  assertEquals(e.code, "EACCES");
  assertEquals(
    e.message,
    `Cannot protect "/dev/shm/${seg.name}": Permission denied: it was opened read-only (access "r")`,
  );
  const e2 = assertThrows(() => shm.map({ access: "rw" }), MemkitError);
  assertEquals(e2.code, "EACCES");
  assertStringIncludes(e2.message, "the segment was opened read-only");
  assertThrows(() => shm.write(new Uint8Array(1)), MemkitError, "opened read-only");
  assertThrows(() => shm.resize(2 * PAGE), MemkitError, "opened read-only");
  assertThrows(() => {
    m.bytes()[0] = 1;
  }, TypeError);
  assertEquals(shm.size, PAGE);
});

probed({
  name:
    "the native side opens only /dev/shm/<name>, with O_NOFOLLOW and O_CLOEXEC, and only once granted",
  skip: lacks("strace", ["-V"]),
  fn() {
    using seg = fresh();
    SharedMemory.create(seg.name, { size: PAGE }).close();
    const r = new Deno.Command("strace", {
      args: [
        "-f",
        "-qq",
        "-e",
        "trace=open,openat,openat2",
        Deno.execPath(),
        "run",
        ...FLAGS,
        `--allow-read=/dev/shm/${seg.name}`,
        fixture,
        "gate",
        seg.name,
      ],
      stdin: "null",
    }).outputSync();
    const err = new TextDecoder().decode(r.stderr);
    assert(r.success, err);
    const opens = err.split("\n").filter((l) => l.includes('"/dev/shm'));
    // The one open the flags allow (access "r"); the refused ones open nothing.
    assertEquals(opens.length, 1, opens.join("\n"));
    assertStringIncludes(opens[0], `"/dev/shm/${seg.name}", O_RDONLY|`);
    for (const flag of ["O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK"]) {
      assertStringIncludes(opens[0], flag);
    }
    assertEquals(exists(seg.name), true);
  },
});

py.test("mprotect is per process: a peer's writes land while this process's view is read-only", () => {
  using seg = fresh();
  using shm = SharedMemory.create(seg.name, { size: PAGE });
  using m = shm.map();
  protect(m, "r");
  assertEquals(m.access, "r");
  const view = m.bytes();
  assertThrows(() => {
    view[0] = 1;
  }, TypeError);
  // Python attaches with its own (writable) mapping and writes.
  python(
    `import sys
from multiprocessing import shared_memory, resource_tracker
s = shared_memory.SharedMemory(sys.argv[1])
resource_tracker.unregister(s._name, "shared_memory")  # cpython#82300: it would unlink ours
s.buf[0:5] = b"peer!"
s.close()`,
    seg.name,
  );
  assertEquals(new TextDecoder().decode(view.subarray(0, 5)), "peer!");
  assertEquals(exists(seg.name), true);
});

py.test("Python creates, memkit opens and writes back; Python's resource tracker unlinks it at exit", async () => {
  const name = `memkit-test-py-${Deno.pid}`;
  const py = new Deno.Command("python3", {
    args: [
      "-c",
      `import sys
from multiprocessing import shared_memory
s = shared_memory.SharedMemory(sys.argv[1], create=True, size=8192)
s.buf[0:11] = b"from python"
print("ready", flush=True)
sys.stdin.readline()
print(bytes(s.buf[100:111]).decode(), flush=True)
s.close()  # not unlink(): the resource tracker of this creator unlinks it at exit`,
      name,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = py.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertStringIncludes(await readUntil(lines, "ready\n"), "ready");
  using shm = SharedMemory.open(`/${name}`);
  assertEquals(shm.size, 8192); // Python's ftruncate
  using m = shm.map();
  assertEquals(new TextDecoder().decode(m.bytes(0, 11)), "from python");
  m.write(new TextEncoder().encode("from memkit"), 100);
  const writer = py.stdin.getWriter();
  await writer.write(new TextEncoder().encode("go\n"));
  await writer.close();
  const rest = await readUntil(lines);
  const status = await py.status;
  await py.stderr.cancel();
  assert(status.success);
  assertEquals(rest.trim(), "from memkit");
  // The creator's tracker unlinked the name; memkit's mapping keeps the memory.
  assertEquals(exists(name), false);
  assertEquals(new TextDecoder().decode(m.bytes(0, 11)), "from python");
});

py.test("memkit creates, Python attaches: without the cpython#82300 workaround Python 3.11 unlinks it", () => {
  using seg = fresh();
  using shm = SharedMemory.create(seg.name, { size: PAGE });
  shm.write(new TextEncoder().encode("from memkit"));
  const attach = (workaround: boolean) =>
    python(
      `import sys
from multiprocessing import shared_memory, resource_tracker
s = shared_memory.SharedMemory("/" + sys.argv[1].lstrip("/"))
if sys.argv[2] == "1":
    resource_tracker.unregister(s._name, "shared_memory")
print(bytes(s.buf[0:11]).decode())
s.buf[20:31] = b"from python"
s.close()`,
      `/${seg.name}`,
      workaround ? "1" : "0",
    ).trim();
  // With the workaround (unregister after attaching), the segment survives.
  assertEquals(attach(true), "from memkit");
  assertEquals(new TextDecoder().decode(shm.read(20, 11)), "from python");
  assertEquals(exists(seg.name), true);
  // Without it, Python <= 3.12 registers even a segment it only attached to,
  // and its resource tracker unlinks it when that process exits.
  const version = python("import sys; print(sys.version_info[0] * 100 + sys.version_info[1])");
  assertEquals(attach(false), "from memkit");
  if (Number(version) < 313) assertEquals(exists(seg.name), false);
  assertEquals(new TextDecoder().decode(shm.read(0, 11)), "from memkit", "ours lives on, unnamed");
});

Deno.test("a peer that shrinks a mapped segment: size, read(), write(), map() and resize() go on safely", () => {
  using seg = fresh();
  SharedMemory.create(seg.name, { size: 4 * PAGE }).close();
  const r = childReport([
    ...FLAGS,
    `--allow-read=/dev/shm/${seg.name}`,
    `--allow-write=/dev/shm/${seg.name}`,
    "--allow-run=truncate",
    fixture,
    "shrink-copy",
    seg.name,
  ]);
  assertEquals(r.size, PAGE);
  assertEquals([r.pastEnd, r.first, r.firstView, r.written], [0, 1, 1, 0]);
  const remap = r.remap as Record<string, string>;
  assertEquals(remap.name, "RangeError");
  assertMatch(remap.message, /beyond its size \(4096\); a view past the end would fault/);
  // Growing back is refused by nothing: the pages read as zeros (the 42 is gone).
  assertEquals([(r.resizeBack as { ok: boolean }).ok, r.afterGrow], [true, 0]);
});

Deno.test("a peer that shrinks a mapped segment: a view past the new end is SIGBUS, as documented", () => {
  using seg = fresh();
  SharedMemory.create(seg.name, { size: 4 * PAGE }).close();
  const r = denoRun([
    ...FLAGS,
    `--allow-read=/dev/shm/${seg.name}`,
    `--allow-write=/dev/shm/${seg.name}`,
    "--allow-run=truncate",
    fixture,
    "shrink-view",
    seg.name,
  ]);
  assertStringIncludes(r.stdout, "touching a page past the new end", r.stderr);
  assertEquals(r.signal, "SIGBUS", `${r.stdout}\n${r.stderr}`);
});

Deno.test("list() names the live processes mapping each segment; a killed holder leaves it stale", async () => {
  using seg = fresh();
  const holder = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...FLAGS,
      `--allow-read=/dev/shm/${seg.name}`,
      `--allow-write=/dev/shm/${seg.name}`,
      fixture,
      "hold",
      seg.name,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertStringIncludes(await readUntil(reader, "ready"), "ready");
  using shm = SharedMemory.open(seg.name, { access: "r" });
  using m = shm.map();
  const find = () => SharedMemory.list().segments.find((s) => s.name === `/${seg.name}`)!;
  const before = find();
  assertEquals(before.size, PAGE);
  assertEquals(
    before.mappers!.map((p) => [p.pid, p.writable]).sort(),
    [[holder.pid, true], [Deno.pid, false]].sort(),
  );
  holder.kill("SIGKILL");
  assertEquals((await holder.status).signal, "SIGKILL");
  await reader.cancel();
  assertEquals(find().mappers!.map((p) => p.pid), [Deno.pid]);
  m.close();
  assertEquals(find().mappers, [], "nobody maps it: stale");
});

/** `memkit shm <args>` with `flags`: exit code, stdout, stderr. */
function cli(flags: string[], ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = denoRun([...flags, `${root}/cli.ts`, "shm", ...args]);
  assertEquals(r.signal, null, r.stderr);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

Deno.test("memkit shm create, ls --stale --json, info, cat and rm; errors are exit codes 1, 2, 3", () => {
  using seg = fresh();
  const path = `/dev/shm/${seg.name}`;
  const own = ["--allow-ffi", `--allow-read=${path}`, `--allow-write=${path}`];
  const all = ["--allow-ffi", "--allow-read=/dev/shm,/proc"];
  const created = cli(own, "create", `/${seg.name}`, "8K", "--mode=0640");
  assertEquals(created.code, 0, created.stderr);
  assertStringIncludes(created.stdout, `/${seg.name}: 8 KiB (8192 bytes), reserved`);
  assertEquals(cli(own, "create", seg.name, "4K").code, 1, "exists: the operation failed");
  using shm = SharedMemory.open(seg.name);
  shm.write(new TextEncoder().encode("hello"));
  // Nobody maps it (this process holds it open only): stale.
  const ls = cli(all, "ls", "--stale", "--json");
  assertEquals(ls.code, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout);
  const mine = listed.segments.find((s: { name: string }) => s.name === `/${seg.name}`);
  assertEquals([mine.size, mine.allocated, mine.mode, mine.mappers], [8192, 8192, "0640", []]);
  using _m = shm.map();
  const ls2 = JSON.parse(cli(all, "ls", "--json").stdout);
  assertEquals(
    ls2.segments.find((s: { name: string }) => s.name === `/${seg.name}`).mappers.map(
      (p: { pid: number }) => p.pid,
    ),
    [Deno.pid],
  );
  assertEquals(
    JSON.parse(cli(all, "ls", "--stale", "--json").stdout).segments.some((s: { name: string }) =>
      s.name === `/${seg.name}`
    ),
    false,
    "mapped: not stale",
  );
  const table = cli(all, "ls").stdout;
  assertMatch(table, new RegExp(`8 KiB +8 KiB 0640 .* ${Deno.pid} +/${seg.name}\\n`));
  const read = ["--allow-ffi", `--allow-read=${path}`];
  assertEquals(cli(read, "cat", seg.name, "--length=5").stdout, "hello");
  assertStringIncludes(
    cli(read, "cat", seg.name, "--hex", "--length=16").stdout,
    "|hello...........|",
  );
  assertStringIncludes(
    cli(read, "info", seg.name).stdout,
    "8 KiB (8192 bytes), 8 KiB reserved, mode 0640",
  );
  const denied = cli(read, "rm", seg.name);
  assertEquals(denied.code, 3);
  assertStringIncludes(denied.stderr, `Requires write access to "${path}"`);
  assertEquals(cli(own, "rm", `/${seg.name}`).code, 0);
  assertEquals(exists(seg.name), false);
  assertEquals(cli(own, "rm", seg.name).code, 1, "gone: ENOENT");
  const bad = cli(own, "cat", "a/b");
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "a slash after the first");
});

Deno.test("memkit shm --permissions prints each call's minimal flags", () => {
  const flags = (...args: string[]) => cli([], ...args, "--permissions").stdout.split("\n")[0];
  assertEquals(flags("ls"), "--allow-ffi --allow-read=/dev/shm --allow-read=/proc");
  assertEquals(flags("cat", "/demo"), "--allow-ffi --allow-read=/dev/shm/demo");
  assertEquals(
    flags("create", "demo", "1M"),
    "--allow-ffi --allow-read=/dev/shm/demo --allow-write=/dev/shm/demo",
  );
  assertEquals(
    flags("rm", "/demo"),
    "--allow-ffi --allow-read=/dev/shm/demo --allow-write=/dev/shm/demo",
  );
});

const nobody = nobodyPackage("memkit-shm-nobody-");

probed({
  name:
    "as another user, list() skips the processes the kernel will not show, and open() is EACCES",
  skip: nobody.unable,
  fn() {
    using seg = fresh();
    using shm = SharedMemory.create(seg.name, { size: PAGE, mode: 0o600 });
    using _m = shm.map();
    const r = nobody.run([
      "--allow-read=/dev/shm,/proc",
      `${nobody.root}tests/fixtures/shm_child.ts`,
      "as-nobody",
      seg.name,
    ]);
    assertEquals(r.mappers, [], "root's mapping is not visible to nobody");
    assert((r.skipped as number[]).includes(Deno.pid), "this (root) process is listed as skipped");
    assertEquals(r.self, true, "nobody reads its own maps");
    const open = r.open as Record<string, string>;
    assertEquals([open.name, open.code], ["MemkitError", "EACCES"]);
    assertStringIncludes(
      open.message,
      `Cannot open shared memory "/${seg.name}": Permission denied`,
    );
  },
});
