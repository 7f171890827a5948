/**
 * `memkit tour`: a guided run of each capability on this machine, printing
 * what it did, the addresses involved and the permissions each step needed;
 * a step whose permission is missing is skipped with the flag to add.
 *
 * ```sh
 * deno run --allow-ffi --v8-flags=--js-immutable-arraybuffer cli.ts tour
 * ```
 *
 * @module
 */

import { bold, cyan, dim, green, red, yellow } from "./_colors.ts";
import {
  alias,
  compactMemory,
  type FdConnection,
  FdListener,
  findMapping,
  guarded,
  KERNEL_SHARED_PATH,
  LazyView,
  libraryPath,
  lock,
  mapFile,
  MemFd,
  MemkitError,
  Pagemap,
  pageSize,
  permissionFlags,
  permissionTable,
  PhysicalMemory,
  physicalRanges,
  Pkey,
  probeUserfaultfd,
  protect,
  protectionAt,
  readKPageCounts,
  readKPageFlags,
  readMaps,
  readOnlyViewsSupported,
  RingBuffer,
  SharedMemory,
  stitch,
} from "../mod.ts";
import { hex, mergeFlags, parseCommandLine, printPermissions, showHelp } from "./_args.ts";
import type { SchemaId } from "./_json_schemas.ts";
import { stdout } from "./_out.ts";
import { TOUR } from "./_commands.ts";
import { fail } from "./_fail.ts";
import { tourKernelShared } from "./_tour_kshared.ts";
import { call, columns, label, ref, show, size, strip, WIDTH, wrap } from "./_tour_strip.ts";

/** The flags of `flags` this process was not granted, every one of them. */
function missing(flags: string[]): string[] {
  const out: string[] = [];
  for (const flag of flags) {
    const m = /^--allow-(\w+)(?:=(.*))?$/.exec(flag)!;
    const desc = (m[2] === undefined
      ? { name: m[1] }
      : m[1] === "net"
      ? { name: "net", host: m[2] }
      : m[1] === "run"
      ? { name: "run", command: m[2] }
      : m[1] === "ffi"
      ? { name: "ffi", path: m[2] }
      : { name: m[1], path: m[2] }) as Deno.PermissionDescriptor;
    if (Deno.permissions.querySync(desc).state !== "granted") {
      out.push(flag);
    }
  }
  return out;
}

/** How a tour step ended: a missing permission skips it, an error fails it. */
type Outcome = "ran" | "skipped" | "failed";

/** One step as `memkit tour --json` reports it (memkit.tour/1). */
interface StepRecord {
  title: string;
  needs: string[];
  outcome: Outcome;
  missing: string[];
  error?: string;
  code?: string;
  output: string[];
}

/**
 * How this run of the tour goes: `"print"` for people, `"json"` records each
 * step and its lines, `"plan"` only collects the flags every step needs
 * (`--permissions`) and runs nothing.
 */
type Mode = "print" | "json" | "plan";

let mode: Mode = "print";
/** The steps recorded in `"json"` and `"plan"` modes, in their order. */
let records: StepRecord[] = [];
/** The step running in `"json"` mode: its lines are kept; lines outside any step are dropped. */
let current: StepRecord | undefined;

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** One line of the tour: printed, or kept in the step running (json), or dropped (plan). */
function print(line: string): void {
  if (mode === "print") console.log(line);
  else if (mode === "json" && current !== undefined) {
    current.output.push(...line.replace(ANSI, "").split("\n").filter((l) => l !== ""));
  }
}

/** Prints `text`, each of its lines wrapped at 100 columns and indented by two spaces. */
const say = (text: string): void => {
  // Wrapped for a terminal; a JSON line is whole (a program does not want it cut).
  for (const line of text.split("\n")) {
    for (const l of mode === "json" ? ["  " + line] : wrap(line)) print(l);
  }
};

function step(title: string, flags: string[], body: () => void): Outcome {
  if (mode === "plan") {
    records.push({ title, needs: flags, outcome: "skipped", missing: [], output: [] });
    return "skipped";
  }
  const lacking = missing(flags);
  if (mode === "json") {
    current = { title, needs: flags, outcome: "skipped", missing: lacking, output: [] };
    records.push(current);
  }
  try {
    const outcome = runStep(title, flags, lacking, body);
    if (current !== undefined) current.outcome = outcome;
    return outcome;
  } finally {
    current = undefined;
  }
}

function runStep(
  title: string,
  flags: string[],
  lacking: string[],
  body: () => void,
): Outcome {
  const head = bold(cyan("▸ " + title));
  const needs = "needs " + flags.join(" ");
  const fits = mode === "json" || columns(head) + 2 + needs.length <= WIDTH;
  if (fits) print(`\n${head}  ${dim(needs)}`);
  else {
    print(`\n${head}`);
    for (const line of wrap(needs)) print(dim(line));
  }
  if (lacking.length > 0) {
    say(yellow(`skipped: run again with ${lacking.join(" ")}`));
    return "skipped";
  }
  try {
    body();
    return "ran";
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      say(yellow(`skipped: ${e.message}`));
      return "skipped";
    }
    const code = e instanceof MemkitError ? ` (${e.code})` : "";
    say(red(`failed${code}: ${(e as Error).message}`));
    if (current !== undefined) {
      current.error = (e as Error).message;
      if (e instanceof MemkitError) current.code = e.code;
    }
    return "failed";
  }
}

/** Runs the guided tour; returns the number of steps that failed (skipped ones are not). */
function tour(): number {
  const count: Record<Outcome, number> = { ran: 0, skipped: 0, failed: 0 };
  const run = (title: string, flags: string[], body: () => void): Outcome => {
    const outcome = step(title, flags, body);
    count[outcome]++;
    return outcome;
  };
  const summary = () => {
    const text = `${count.ran} steps ran, ${count.skipped} skipped (a permission missing), ` +
      `${count.failed} failed`;
    print(`\n${count.failed > 0 ? red(text) : text}`);
    return count.failed;
  };
  print(
    bold("memkit tour") + dim(` on ${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno}`),
  );

  const loaded = run("Load the native library", permissionFlags("load"), () => {
    say(`loaded ${libraryPath()}`);
    say(`page size ${size(pageSize())} (${pageSize()} bytes)`);
    say(
      `read-only views (immutable ArrayBuffers): ${
        readOnlyViewsSupported()
          ? green("available")
          : yellow("missing: add --v8-flags=--js-immutable-arraybuffer")
      }`,
    );
  });

  if (loaded === "failed") {
    // Every other step calls into the library: its error once, not once a step.
    say(red("the other steps need the native library: the tour stops here"));
    return summary();
  }
  const page = (() => {
    // Planning loads nothing: the flags do not depend on the page size.
    if (mode === "plan") return 4096;
    try {
      return pageSize();
    } catch {
      return 4096;
    }
  })();

  run("One memfd, two addresses (aliasing without copies)", permissionFlags("memory"), () => {
    const options = { size: 2 * page, noexec: MemFd.noexecSupported };
    using fd = MemFd.create("tour", options);
    say(`${call("MemFd.create", "tour", options)} -> fd ${fd.fd}, seals [${fd.seals.join(", ")}]`);
    using rw = fd.map({ access: "rw" });
    using ro = fd.map({ access: "r" });
    say(`rw = ${call("fd.map", { access: "rw" })} -> ${hex(rw.address)}..${hex(rw.end)}`);
    say(`ro = ${call("fd.map", { access: "r" })}  -> ${hex(ro.address)}..${hex(ro.end)}`);
    const text = new TextEncoder().encode("written once, seen twice");
    rw.bytes().set(text, page);
    const pages = (m: typeof rw) => [0, 1].map((i) => label((o, n) => m.read(o, n), i * page));
    for (
      const line of strip([
        ["rw", pages(rw), `${hex(rw.address)}: memfd "tour", pages 0 and 1`],
        ["ro", pages(ro), `${hex(ro.address)}: the same two pages, no copy`],
      ])
    ) say(line);
    if (readOnlyViewsSupported()) {
      const seen = new TextDecoder().decode(ro.bytes(page, text.length));
      say(
        `wrote at ${hex(rw.address + BigInt(page))}, read at ${
          hex(ro.address + BigInt(page))
        }: "${seen}"`,
      );
      try {
        ro.bytes()[0] = 1;
      } catch (e) {
        say(`a write through the read-only view: ${(e as Error).name} (no fault)`);
      }
    } else {
      say(
        `read() copy from the r mapping: "${new TextDecoder().decode(ro.read(page, text.length))}"`,
      );
    }
  });

  run("Protection changes never leave a dangerous view", permissionFlags("memory"), () => {
    using fd = MemFd.create("tour-protect", { size: page });
    using m = fd.map();
    const view = m.bytes();
    view[0] = 7;
    m.protect("r");
    say(
      `m.protect("r") at ${hex(m.address)}: the old writable view now has length ` +
        `${view.length} (detached)`,
    );
    m.protect("rw");
    m.close();
    say(`m.close(): views read ${String(view[0])}, not a segfault`);
  });

  run("Stitch chunks of two memfds into one contiguous view", permissionFlags("memory"), () => {
    using a = MemFd.create("tour-a", { size: 3 * page });
    using b = MemFd.create("tour-b", { size: 3 * page });
    say(`a = ${call("MemFd.create", "tour-a", { size: 3 * page })}, b likewise ("tour-b")`);
    using am = a.map();
    using bm = b.map();
    for (let i = 0; i < 3; i++) {
      am.write(new TextEncoder().encode(`a${i}`), i * page);
      bm.write(new TextEncoder().encode(`b${i}`), i * page);
    }
    const chunks = [
      { source: b, offset: page, length: page },
      { source: a, offset: 0, length: 2 * page },
      { source: b, offset: 0, length: page },
    ];
    using view = stitch(chunks);
    const shown = chunks.map((c) => ({ ...c, source: ref(c.source === a ? "a" : "b") }));
    say(`view = stitch([`);
    for (const c of shown) say(`  ${show(c)},`);
    say(`]) -> ${hex(view.address)}, ${size(view.length)}, four pages of two memfds, no copy`);
    const labels = (m: { read(o: number, n: number): Uint8Array }, n: number) =>
      Array.from({ length: n }, (_, i) => label((o, k) => m.read(o, k), i * page));
    const picture = () =>
      strip([
        ["a", labels(am, 3), `memfd "tour-a" at ${hex(am.address)}`],
        ["b", labels(bm, 3), `memfd "tour-b" at ${hex(bm.address)}`],
        ["view", labels(view, 4), `stitch() at ${hex(view.address)}`],
      ]);
    for (const line of picture()) say(line);
    view.write(new TextEncoder().encode("B1"), 0);
    say(`view.write("B1", 0): the write lands in memfd "tour-b" page 1`);
    for (const line of picture()) say(line);
    using ro = alias(view, { access: "r" });
    say(`${call("alias", ref("view"), { access: "r" })} -> ${hex(ro.address)}: the same pages`);
    for (const line of strip([["alias", labels(ro, 4), "read-only"]])) say(line);
  });

  run("A ring buffer mapped twice: every region is one view", permissionFlags("memory"), () => {
    const options = { name: "tour-ring" };
    using ring = RingBuffer.create(page, options);
    say(
      `${call("RingBuffer.create", page, options)} -> ${hex(ring.address)}..` +
        `${hex(ring.address + BigInt(2 * page))} (one memfd mapped twice)`,
    );
    ring.write(new Uint8Array(page - 4));
    ring.consume();
    const text = "wraps around";
    ring.write(new TextEncoder().encode(text));
    const view = ring.peek();
    const seen = new TextDecoder().decode(view);
    say(
      `ring.write() of ${text.length} bytes 4 before the end; ring.peek() is one view at ` +
        `offset ${view.byteOffset}: "${seen}"`,
    );
    // The seam between the two copies, where the view crosses from one to the other.
    const cell = 12;
    const before = page - view.byteOffset;
    const row = (n: string) => n.padEnd(12);
    const copy = (i: number) => `[${`copy ${i}: page 0`.padStart(cell + 2).padEnd(2 * cell)}]`;
    say(`${row("ring")}${copy(1)}${copy(2)}  ${hex(ring.address)}`);
    say(
      `${row("ring.peek()")}${" ".repeat(2 * cell - before)}[${seen.slice(0, before)}|` +
        `${seen.slice(before)}]  crosses the seam, one view`,
    );
  });

  run("Guard pages, page protections, protection keys", permissionFlags("memory"), () => {
    const options = { guardPages: 1 };
    using g = guarded(page, options);
    const [low, high] = [g.address - BigInt(page), g.address + BigInt(page)];
    say(
      `${call("guarded", page, options)} -> usable ${hex(g.address)}, ` +
        `PROT_NONE guards at ${hex(low)} and ${hex(high)}`,
    );
    const mapsRead = { name: "read", path: "/proc/self/maps" } as const;
    if (Deno.permissions.querySync(mapsRead).state === "granted") {
      const perms = [low, g.address, high].map((at) => protectionAt(at)?.perms ?? "?");
      for (
        const line of strip([
          ["guarded", perms, `protectionAt() of each page: the kernel's word (/proc/self/maps)`],
        ])
      ) say(line);
    }
    using fd = MemFd.create("tour-pages", { size: 3 * page });
    using m = fd.map();
    const range = { mapping: ref("m"), offset: page, length: page };
    protect({ mapping: m, offset: page, length: page }, "none");
    say(`${call("protect", range, "none")}: a view of page 1 is refused, not a fault`);
    const access = [0, 1, 2].map((i) => m.accessAt(i * page));
    for (const line of strip([["m", access, "m.accessAt() of each page"]])) say(line);
    if (Pkey.supported) {
      using key = Pkey.alloc();
      say(`protection keys: available (key ${key.key})`);
    } else {
      try {
        Pkey.alloc();
      } catch (e) {
        say(`protection keys: ${yellow("not on this machine")}: ${(e as Error).message}`);
      }
    }
  });

  run("Seals: limits the kernel enforces for everyone", permissionFlags("memory"), () => {
    using fd = MemFd.create("tour-seal", { size: page });
    fd.seal(["shrink", "grow"]);
    say(`fd.seal(["shrink", "grow"]) -> seals [${fd.seals.join(", ")}]`);
    try {
      fd.resize(2 * page);
    } catch (e) {
      say(`fd.resize(${2 * page}) refused: ${(e as Error).message}`);
    }
  });

  const sock = "/tmp/memkit-tour.sock";
  const shareFlags = [...permissionFlags("socket", sock), `--allow-run=${Deno.execPath()}`];
  run("Share a sealed memfd with a second process", shareFlags, () => {
    using listener = FdListener.listen(sock);
    const peer = new URL("./_tour_peer.ts", import.meta.url);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissionFlags("socket", sock), peer.href, sock],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    say(`${call("FdListener.listen", sock)}, started pid ${child.pid}: ${dim(peer.pathname)}`);
    // The tour's steps are synchronous: short sleeps (Atomics.wait) between looks.
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const until = (what: string, look: () => boolean) => {
      for (let i = 0; i < 1000 && !look(); i++) Atomics.wait(nap, 0, 0, 10);
      if (!look()) throw new Error(`Cannot share with pid ${child.pid}: no ${what} within 10 s`);
    };
    let conn: FdConnection | undefined;
    until("connection", () => (conn ??= listener.tryAccept()) !== undefined);
    using _ = conn!;
    using memfd = MemFd.create("tour-shared", { size: page });
    const m = memfd.map();
    new TextEncoder().encodeInto("hello from the tour\0", m.bytes());
    memfd.seal(["shrink", "grow"]);
    const metadata = new TextEncoder().encode("tour");
    conn!.trySend(memfd, { metadata });
    say(
      `MemFd "tour-shared" sealed [${memfd.seals.join(", ")}], ` +
        `${call("conn.trySend", ref("memfd"), { metadata: ref('encode("tour")') })}: SCM_RIGHTS`,
    );
    const reply = m.bytes().subarray(1024);
    until("reply in the shared memory", () => reply[0] !== 0);
    say(
      `the peer wrote back, into the same pages: ${
        new TextDecoder().decode(reply.subarray(0, reply.indexOf(0)))
      }`,
    );
    m.close(); // this process's own mapping gone, the seal still refuses
    try {
      memfd.resize(0);
    } catch (e) {
      say(`memfd.resize(0): ${(e as Error).message}: the peer's mapping can never fault`);
    }
  });

  const introspect = [
    ...permissionFlags("maps", "self"),
    ...permissionFlags("pagemap", "self").slice(1),
  ];
  run("Where memory lives: maps, pagemap, physical frames", introspect, () => {
    using fd = MemFd.create("tour-pagemap", { size: 4 * page });
    using a = fd.map();
    using b = fd.map({ access: "r" });
    a.bytes()[page] = 1;
    void b.read(page, 1); // fault the page in at the second address too
    const entry = findMapping(a.address)!;
    say(
      `findMapping(${hex(a.address)}) -> ${entry.perms} ${entry.kind} "${entry.name}", ` +
        `${size(entry.size)}`,
    );
    const maps = readMaps("self");
    const count = (k: string) => maps.filter((m) => m.kind === k).length;
    say(
      `readMaps("self"): ${maps.length} mappings, ${count("file")} of files, ` +
        `${count("anonymous")} anonymous, ${count("memfd")} memfd`,
    );
    using pm = Pagemap.open("self");
    const pages = pm.read({ start: a.address, pages: 4 });
    const present = [0, 1, 2, 3].map((i) => pages.present(i) ? "1" : "0");
    say(
      `${call("pm.read", { start: a.address, pages: 4 })}: present ${present.join(",")} (of ${
        call("Pagemap.open", "self")
      })`,
    );
    if (pages.pfnVisible) {
      say(
        `both addresses of page 1 are physical ${hex(pm.translate(a.address + BigInt(page))!)} ` +
          `and ${hex(pm.translate(b.address + BigInt(page))!)}`,
      );
    } else {
      say(yellow("PFNs are hidden: the kernel shows them only with CAP_SYS_ADMIN (root)"));
    }
  });

  // A locked page is resident, not fixed: compaction may move it (vm.compact_unevictable_allowed).
  const compactFlags = [
    ...permissionFlags("pagemap", "self"),
    ...permissionFlags("compactMemory").slice(1),
  ];
  run("Locked means resident, not fixed: a frame across compaction", compactFlags, () => {
    using fd = MemFd.create("tour-lock", { size: page });
    using m = fd.map();
    m.bytes()[0] = 1;
    lock(m);
    say(`lock(m): mlock2 of ${hex(m.address)}; resident until m.unlock() or m.close()`);
    using pm = Pagemap.open("self");
    if (!pm.pfnVisible) {
      say(yellow("PFNs are hidden: the kernel shows them only with CAP_SYS_ADMIN (root)"));
      return;
    }
    const before = pm.translate(m.address)!;
    say(`pm.translate(${hex(m.address)}) -> frame ${hex(before)}`);
    try {
      compactMemory();
    } catch (e) {
      if (!(e instanceof MemkitError)) throw e;
      say(yellow(`compactMemory(): ${e.message}`));
      return;
    }
    const after = pm.translate(m.address)!;
    say(
      `compactMemory() (writes 1 to /proc/sys/vm/compact_memory), then ${hex(after)}: ${
        before === after ? "not moved this time" : green("moved, though locked")
      }`,
    );
    say(dim("a frame number is a snapshot, never a handle: read it again before each use"));
  });

  // The file it maps is cli.ts, the command the tour runs from.
  const self = new URL("../cli.ts", import.meta.url);
  if (self.protocol === "file:") {
    const path = decodeURIComponent(self.pathname);
    run("Map a file, gated on --allow-read for that path", permissionFlags("mapFile", path), () => {
      using m = mapFile(path);
      const first = new TextDecoder().decode(m.read(0, Math.min(m.length, 40))).split("\n")[0];
      say(`${call("mapFile", path)} -> ${hex(m.address)}, ${size(m.length)}`);
      say(`first line: ${first}`);
    });
  }

  // A fixed name, so that `make run` can grant exactly it.
  const shmName = "memkit-tour";
  run(
    "POSIX shared memory: a named segment, mprotect per process",
    permissionFlags("shmCreate", shmName),
    () => {
      const options = { size: page, exclusive: false };
      using shm = SharedMemory.create(shmName, options);
      try {
        using rw = shm.map();
        using peer = SharedMemory.open(shmName, { access: "r" });
        using ro = peer.map();
        rw.bytes()[0] = 7;
        say(
          `${call("SharedMemory.create", shmName, options)} -> ` +
            `${size(shm.stat().allocated)} reserved (fallocate): ` +
            "a full /dev/shm is ENOSPC now, not SIGBUS later",
        );
        say(
          `${call("SharedMemory.open", shmName, { access: "r" })}.map() -> ${hex(ro.address)}, ` +
            `reads ${ro.read(0, 1)[0]}`,
        );
        try {
          protect(ro, "rw");
        } catch (e) {
          if (!(e instanceof MemkitError)) throw e;
          say(`protect(ro, "rw"): ${e.code}, ${e.message.replace(/^.*: /, "")}`);
        }
        protect(rw, "r");
        shm.write(new Uint8Array([8]));
        say(`shm.write(${show(new Uint8Array([8]))})`);
        say(
          `protect(rw, "r") changes this mapping only: a write through the descriptor (as a ` +
            `peer's) still lands, both views read ${rw.read(0, 1)[0]} and ${ro.read(0, 1)[0]}`,
        );
      } finally {
        SharedMemory.unlink(shmName);
      }
    },
  );

  // Why a physical address is no way to share memory: it has no lifecycle.
  const physShare = [
    ...permissionFlags("pagemap", "self"),
    ...permissionFlags("kpageflags").slice(1),
    ...permissionFlags("kpagecount").slice(1),
  ];
  run("Why not share by physical address: a frame number has no lifecycle", physShare, () => {
    using pm = Pagemap.open("self");
    if (!pm.pfnVisible) {
      say(yellow("PFNs are hidden: the kernel shows them only with CAP_SYS_ADMIN (root)"));
      return;
    }
    let frame: number;
    {
      using fd = MemFd.create("tour-frame", { size: page });
      using m = fd.map();
      m.bytes()[0] = 1;
      frame = Number(pm.translate(m.address)! / BigInt(page));
      const f = readKPageFlags([frame]);
      say(
        `a memfd's page is frame ${hex(frame)}: [${f.names(0).join(" ")}], ` +
          `mapped ${readKPageCounts([frame])[0]} times (readKPageCounts)`,
      );
    }
    // Closed: the memfd and its page are freed; the frame number remains.
    const after = readKPageFlags([frame]);
    const state = after.has(0, "BUDDY")
      ? "free (BUDDY): whoever holds its number reads whatever is allocated there next"
      : after.names(0).length === 0
      ? "no flags: free or taken by the kernel"
      : `already reused: [${after.names(0).join(" ")}]`;
    say(`the memfd closed, frame ${hex(frame)} is ${state}`);
    // Fresh memory may land on the very frame.
    using fd = MemFd.create("tour-reuse", { size: 64 * page });
    using m = fd.map();
    for (let i = 0; i < 64; i++) m.bytes()[i * page] = 1;
    let reused = -1;
    for (let i = 0; i < 64 && reused < 0; i++) {
      if (Number(pm.translate(m.address + BigInt(i * page))! / BigInt(page)) === frame) reused = i;
    }
    say(
      reused >= 0
        ? `a new memfd got the same frame for its page ${reused}: a peer told ${hex(frame)} ` +
          "now reads and writes unrelated memory"
        : `64 new pages did not land on it this time (it went elsewhere); a peer cannot tell either way`,
    );
    say(
      dim(
        "a memfd or a /dev/shm segment has a lifecycle the kernel tracks; a frame number has none",
      ),
    );
  });

  const lazyFlags = [...permissionFlags("memory"), "--allow-read=/proc/self/pagemap"];
  run("Lazy views: pages copied on first touch (userfaultfd)", lazyFlags, () => {
    const f = probeUserfaultfd();
    if (!f.available) {
      say(`probeUserfaultfd(): ${yellow("not available here")}: ${f.reasons.join("; ")}`);
      return;
    }
    say(
      `probeUserfaultfd(): via ${f.via}${f.kernelFaults ? "" : " (user-mode faults only)"}, ` +
        `${f.features.length} features` +
        (f.lacking.length ? `, lacking ${f.lacking.join(", ")}` : ""),
    );
    for (const reason of f.reasons) say(dim(reason));
    // A heap buffer memkit did not map, so it cannot be aliased: copied lazily instead.
    const pages = 256;
    const heap = new Uint8Array(pages * page);
    for (let i = 0; i < pages; i++) heap[i * page] = i;
    const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap));
    using view = LazyView.create({ address, length: heap.length });
    say(
      `${call("LazyView.create", { address: ref(hex(address)), length: heap.length })} -> ${
        hex(view.address)
      }`,
    );
    const b = view.bytes();
    const touched = [3, 64, 200];
    say(`read pages ${touched.join(", ")}: ${touched.map((p) => b[p * page]).join(", ")}`);
    using pm = Pagemap.open("self");
    const s = view.stats();
    say(
      `view.stats(): ${s.faults} faults served, ${s.pagesCopied} pages copied ` +
        `(${size(s.bytesCopied)}); ` +
        `pagemap: ${
          pm.read({ start: view.address, pages }).presentCount
        } of ${pages} pages present`,
    );
    say(dim("the other pages were never copied; view.close() stops the handler thread"));
    // The view holds only the buffer's address: keep the buffer reachable while it lives.
    if (heap.length !== pages * page) throw new Error("the source buffer changed");
  });

  const physFlags = [...permissionFlags("physRead", "/dev/mem"), "--allow-read=/proc/iomem"];
  run("Physical memory through /dev/mem, refusals explained", physFlags, () => {
    try {
      using mem = PhysicalMemory.open();
      say(`PhysicalMemory.open() -> "${mem.device}"`);
      const s = mem.smbios();
      say(
        `mem.smbios(): ${s.entryPoint.anchor} entry point at ${hex(s.entryPoint.address)}, ` +
          `SMBIOS ${s.version}: ${s.system?.manufacturer} ${s.system?.product}, ` +
          `serial ${s.system?.serial}`,
      );
      say(`mem.readU32(${hex(s.entryPoint.address)}) -> ${hex(mem.readU32(s.entryPoint.address))}`);
    } catch (e) {
      if (!(e instanceof MemkitError || e instanceof Deno.errors.NotFound)) throw e;
      const code = e instanceof MemkitError ? e.code : e.name;
      say(`PhysicalMemory.open() here: ${yellow(code)}`);
      say(e.message);
      say(dim("(make test-vm runs the /dev/mem tests in a QEMU guest whose kernel has it)"));
    }
    try {
      const ranges = physicalRanges();
      const ram = ranges.filter((r) => r.name === "System RAM");
      const bytes = Number(ram.reduce((sum, r) => sum + (r.end - r.start), 0n));
      say(
        `physicalRanges(): ${ranges.length} ranges in /proc/iomem, System RAM ${
          size(bytes)
        } in ${ram.length} ranges`,
      );
      const low = ram.find((r) => r.start >= 0x100000);
      if (low) {
        say(
          `under STRICT_DEVMEM, RAM such as ${hex(low.start)}-${
            hex(low.end - 1n)
          } is refused; the BIOS area 0xf0000-0xfffff and device ranges are not`,
        );
      }
    } catch (e) {
      if (!(e instanceof MemkitError)) throw e;
      say(`physicalRanges(): ${e.message}`);
    }
  });

  const kshared = permissionFlags("mapDeviceWrite", KERNEL_SHARED_PATH);
  run("Memory shared with a kernel driver", kshared, () => {
    tourKernelShared(say, dim);
  });

  print(
    `\n${bold("Permissions")} ${
      dim("(memkit permissions <operation> <target> prints the minimal flags)")
    }`,
  );
  const ops = Object.entries(permissionTable);
  const pad = Math.max(...ops.map(([op]) => op.length));
  for (const [op, rule] of ops) {
    for (const line of wrap(`${op.padEnd(pad)} ${rule.summary}`, "  ", " ".repeat(pad + 3))) {
      print(line);
    }
  }
  return summary();
}

/** Every step's flags, the V8 flag of read-only views with them: a whole tour's command line. */
function tourFlags(): string[] {
  mode = "plan";
  records = [];
  try {
    tour();
    return mergeFlags([
      ...records.flatMap((r) => r.needs),
      "--v8-flags=--js-immutable-arraybuffer",
    ]);
  } finally {
    mode = "print";
  }
}

/** Runs the tour recording each step; returns memkit.tour/1 and the number failed. */
function tourJson(): { value: unknown; failed: number } {
  mode = "json";
  records = [];
  try {
    const failed = tour();
    const count = (o: Outcome) => records.filter((r) => r.outcome === o).length;
    const schema: SchemaId = "memkit.tour/1";
    return {
      value: {
        schema,
        ran: count("ran"),
        skipped: count("skipped"),
        failed: count("failed"),
        steps: records,
      },
      failed,
    };
  } finally {
    mode = "print";
  }
}

/**
 * Runs `memkit tour`.
 *
 * @param args The arguments after `tour` (`--json`, `--permissions`, `--help`).
 * @returns The exit code: 0, 1 when a step failed (a step skipped for a
 * missing permission is not a failure), 2 bad arguments.
 *
 * @example Tour this machine
 * ```ts ignore
 * // deno run --allow-ffi --v8-flags=--js-immutable-arraybuffer cli.ts tour
 * import { tourCommand } from "./tour.ts";
 * Deno.exit(tourCommand([]));
 * ```
 */
export function tourCommand(args: string[]): number {
  let flags;
  try {
    // What it takes is declared in _commands.ts.
    flags = parseCommandLine(TOUR, args);
    if (flags.has("help")) return showHelp(TOUR);
  } catch (e) {
    return fail(e);
  }
  if (flags.has("permissions")) {
    printPermissions(tourFlags(), "tour", args);
    return 0;
  }
  if (flags.has("json")) {
    const { value, failed } = tourJson();
    stdout.json(value);
    return failed > 0 ? 1 : 0;
  }
  return tour() > 0 ? 1 : 0;
}
