// flags: --allow-ffi --allow-run=$DENO,sleep,test --allow-read=examples,/proc --v8-flags=--js-immutable-arraybuffer
// Every examples/*.ts runs as a user would run it: a real `deno run` child with
// exactly the flags its header comment names (parsed from the file, so the
// header cannot go stale), which must exit 0 and print what it promises,
// checked against the kernel where it can be (the physical addresses against
// this test's own Pagemap of the example's process, the mapping count against
// readMaps). A second test drops each flag in turn: the example must then
// fail, naming that flag, so no header asks for more than it needs. In a header, `<pid>` is a
// process the test starts (sleep), and `deno` in `--allow-run` is the Deno
// running the test: Deno matches that name by the path PATH resolves it to
// without following symlinks, and the npm-installed Deno here is a symlink.
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Pagemap, probeUserfaultfd, readMaps, readSmaps } from "../mod.ts";
import { probed } from "./fixtures/skip.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
const decoder = new TextDecoder();

interface Header {
  file: string;
  flags: string[];
  args: string[];
}

/** The `deno run` line of an example's header comment. */
function header(file: string): Header {
  const text = Deno.readTextFileSync(`${root}examples/${file}`);
  const m = /^\/\/\s+deno run (.*?) examples\/([\w.-]+\.ts)(.*)$/m.exec(text);
  if (!m) throw new Error(`examples/${file} has no "// deno run <flags> examples/${file}" line`);
  assertEquals(m[2], file, `the header of examples/${file} runs another file`);
  return { file, flags: m[1].split(/\s+/), args: m[3].trim().split(/\s+/).filter(Boolean) };
}

/** The header's flags and arguments with `<pid>` and `deno` made concrete. */
function argv(h: Header, pid: number | undefined, flags = h.flags): string[] {
  const fill = (s: string) => s.replaceAll("<pid>", String(pid));
  const concrete = flags.map((f) =>
    f.startsWith("--allow-run=")
      ? "--allow-run=" + f.slice(12).split(",").map((c) => c === "deno" ? deno : c).join(",")
      : fill(f)
  );
  return ["run", "--no-prompt", ...concrete, `examples/${h.file}`, ...h.args.map(fill)];
}

/** Runs `fn` with a target process for `<pid>` when the header names one. */
async function withTarget<T>(h: Header, fn: (pid?: number) => Promise<T>): Promise<T> {
  if (![...h.flags, ...h.args].some((s) => s.includes("<pid>"))) return await fn();
  const target = new Deno.Command("sleep", { args: ["600"], stdin: "null" }).spawn();
  try {
    return await fn(target.pid);
  } finally {
    target.kill("SIGKILL");
    await target.status;
  }
}

interface Run {
  code: number;
  signal: Deno.Signal | null;
  out: string;
  err: string;
  what: string;
}

async function run(h: Header, pid?: number, flags?: string[]): Promise<Run> {
  const args = argv(h, pid, flags);
  const r = await new Deno.Command(deno, { args, cwd: root, stdin: "null" }).output();
  const [out, err] = [decoder.decode(r.stdout), decoder.decode(r.stderr)];
  const what = `deno ${args.join(" ")}\nstdout:\n${out}\nstderr:\n${err}`;
  return { code: r.code, signal: r.signal, out, err, what };
}

/** Whether `path` exists (test(1): Deno's own API wants every permission under /sys and /dev). */
function exists(path: string): boolean {
  return new Deno.Command("test", { args: ["-e", path] }).outputSync().success;
}

/** Runs the example to its end, asserts exit 0 and returns its stdout. */
async function ran(file: string): Promise<string> {
  const h = header(file);
  return await withTarget(h, async (pid) => {
    const r = await run(h, pid);
    assertEquals([r.signal, r.code], [null, 0], r.what);
    if (pid !== undefined) checkMaps(r.out, pid);
    return r.out;
  });
}

/** process_maps.ts's table of the sleep(1) it was given. */
function checkMaps(out: string, pid: number): void {
  const maps = readMaps(pid);
  assertMatch(out, new RegExp(`^pid ${pid}: ${maps.length} mappings, the 15 largest by RSS$`, "m"));
  // The first row is the mapping with the most resident memory (sleep's stays put).
  const top = [...readSmaps(pid)].sort((a, b) => b.rss - a.rss)[0];
  const row = out.split("\n")[2];
  assert(row.startsWith(top.start.toString(16).padStart(12, "0")), `${row}: expected ${top.start}`);
  assert(row.endsWith(` ${top.path}`), `${row}: expected ${top.path}`);
  const size = Math.round(maps.reduce((n, m) => n + m.size, 0) / 1024);
  assertMatch(out, new RegExp(`^total +${size} +\\d+ +\\d+ \\(swap \\d+ KiB\\)$`, "m"));
}

/** Each example's check of its output (process_maps.ts's needs its target: checkMaps). */
const checks: Record<string, { skip?: string | false; check: (out: string) => void }> = {
  "channel.ts": {
    check(out) {
      assertMatch(out, /^received 10000 messages \(\d+ bytes\), in order and intact$/m);
      assertMatch(out, /^after the sender was killed with SIGKILL: ChannelError "peer-gone"$/m);
      assert(!exists("/tmp/memkit-example.sock"), "the socket file is left behind");
    },
  },
  "kernel_page.ts": {
    check(out) {
      if (exists("/sys/kernel/debug/memkit_kshared")) {
        assertMatch(out, /^the kernel summed 1 \+ 2 \+ 250 through the request page: 253$/m);
      } else {
        assertMatch(out, /^no kernel page here \((ENOENT|EACCES)\): this example needs /m);
      }
    },
  },
  "lazy_view.ts": {
    skip: !probeUserfaultfd().available && "this kernel offers no userfaultfd in any way",
    check(out) {
      assertMatch(out, /^before any read: 0 pages copied$/m);
      assertEquals(out.match(/, as the source$/gm)?.length, 3, out);
      assertMatch(out, /^3 of 65536 pages copied \(12 KiB\), 3 faults$/m);
      assertMatch(out, /^after a write to the view the source is unchanged: true$/m);
    },
  },
  "physical_address.ts": { check() {} }, // its own test below
  "process_maps.ts": { check() {} }, // checkMaps
  "readonly_view.ts": {
    check(out) {
      assertMatch(out, /^plugin sees \[1, 2, 3, 4\]; its write was refused: TypeError: /m);
      assertMatch(out, /^after the owner's write the view reads 42$/m);
      assertMatch(out, /^snapshot \[42, 2, 3, 4\], live \[43, 2, 3, 4\]$/m);
    },
  },
  "shared_counter.ts": {
    check(out) {
      assertMatch(out, /^holder \d+ killed with SIGKILL holding the lock$/m);
      assertMatch(out, /^recovered from a dead holder 1 time\(s\)$/m);
      const m = /^total (\d+) = (\d+) workers x (\d+) increments: exact$/m.exec(out);
      if (!m) throw new Error(`no exact total: ${out}`);
      assertEquals(Number(m[1]), Number(m[2]) * Number(m[3]));
      assert(!exists("/dev/shm/memkit-example-counter"), "the segment is left behind");
    },
  },
  "stitch.ts": {
    check(out) {
      assertMatch(out, /^stitched 4 chunks \(arrived as 2, 0, 3, 1\) into one 64 KiB view/m);
      assertEquals(out.match(/: true$/gm)?.length, 3, out);
    },
  },
};

const files = [...Deno.readDirSync(`${root}examples`)]
  .filter((e) => e.isFile && e.name.endsWith(".ts")).map((e) => e.name).sort();

Deno.test("every example has a header with its flags, and a check here", () => {
  for (const file of files) header(file);
  assertEquals(files, Object.keys(checks).sort());
});

for (const file of files.filter((f) => f !== "physical_address.ts")) {
  probed({
    name: `examples/${file} runs with the flags of its header and prints what it promises`,
    skip: checks[file]?.skip,
    async fn() {
      checks[file].check(await ran(file));
    },
  });
}

const pfnHidden = (() => {
  using pm = Pagemap.open("self");
  return !pm.pfnVisible && "frame numbers are hidden from this user (no CAP_SYS_ADMIN)";
})();

probed({
  name: "examples/physical_address.ts prints the physical addresses this test's Pagemap reads",
  skip: pfnHidden,
  async fn() {
    const child = new Deno.Command(deno, {
      args: argv(header("physical_address.ts"), undefined),
      cwd: root,
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while ((out.match(/ -> physical /g) ?? []).length < 4) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    try {
      const pairs = [...out.matchAll(/virtual (0x[0-9a-f]+) -> physical (0x[0-9a-f]+)/g)];
      assertEquals(pairs.length, 4, out);
      using pm = Pagemap.open(child.pid); // while the example still holds its buffer
      for (const [, virt, phys] of pairs) {
        assertEquals(`0x${pm.translate(BigInt(virt))?.toString(16)}`, phys);
      }
    } finally {
      await child.stdin.close(); // the example then unmaps and exits
      await reader.cancel();
    }
    assertEquals(await child.status, { success: true, code: 0, signal: null });
  },
});

Deno.test("every flag of every header is needed: without it the example fails", async () => {
  for (const file of files) {
    const h = header(file);
    if (file === "kernel_page.ts" && !exists("/sys/kernel/debug/memkit_kshared")) continue;
    for (const flag of h.flags) {
      const r = await withTarget(h, (pid) => run(h, pid, h.flags.filter((f) => f !== flag)));
      assertEquals(r.signal, null, r.what);
      assert(r.code !== 0, `examples/${file} works without ${flag}: ${r.what}`);
      // It failed for want of that flag, and says so.
      const named = flag.startsWith("--v8-flags=") ? flag.slice(11) : flag.split("=")[0];
      assert(r.err.includes(named), `examples/${file} without ${flag} fails otherwise: ${r.what}`);
    }
  }
});
