// flags: --allow-ffi --allow-run=$DENO,python3,strace,setpriv --allow-read=/proc,/tmp --allow-write=/tmp --v8-flags=--js-immutable-arraybuffer
// How the memkit command writes, through the real cli.ts in a child: a
// large output in a write per 64 KiB (counted under strace), a reader that
// goes away early ending it quietly, each subcommand's modules loaded only
// when it runs, the JSON writer's text the same as JSON.stringify's, and
// pagemap runs right over a range of thousands of runs.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { PageBits, Pagemap, pageSize, readSmaps } from "../mod.ts";
import { CHUNK, Output, OutputClosed } from "../cli/_out.ts";
import { memkitCli } from "./fixtures/cli.ts";
import { lacks, need } from "./fixtures/skip.ts";

const checkout = new URL("..", import.meta.url).pathname;
const fixture = new URL("./fixtures/many_mappings.py", import.meta.url).pathname;
const python = need(lacks("python3"));
const traced = need(lacks("python3") || lacks("strace", ["-V"]));

interface Child {
  pid: number;
  vmas: number;
  pages: number;
  region: number;
}

/** A python3 child with n + 1 unmergeable mappings and a region of `pages` pages, two in three touched. */
async function manyMappings(n: number, pages = 3): Promise<Child & AsyncDisposable> {
  const p = new Deno.Command("python3", {
    args: [fixture, String(n), String(pages)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`many_mappings.py ended early: ${line}`);
    line += value;
  }
  const info = JSON.parse(line) as Child;
  return {
    ...info,
    async [Symbol.asyncDispose]() {
      await p.stdin.close();
      await reader.cancel();
      await p.status;
    },
  };
}

const deno = (args: string[]) => [Deno.execPath(), "run", ...args];

/** One write(2) to fd 1 in an strace log: the bytes asked, and the errno name if it failed. */
interface Write {
  size: number;
  error?: string;
}

/** The writes to fd 1 in an `strace -f -e trace=write` log, a call split across threads joined. */
function writesToStdout(log: string): Write[] {
  const writes: Write[] = [];
  const pending = new Map<string, number>(); // pid -> size of its unfinished write(1, ...)
  for (const line of log.split("\n")) {
    const pid = line.split(" ", 1)[0];
    let m = /\bwrite\(1, .*, (\d+)\) += -?\d+(?: (E[A-Z]+))?/.exec(line);
    if (m) writes.push({ size: Number(m[1]), error: m[2] });
    else if ((m = /\bwrite\(1, .*, (\d+) <unfinished/.exec(line))) pending.set(pid, Number(m[1]));
    else if ((m = /<\.\.\. write resumed>.*\) += -?\d+(?: (E[A-Z]+))?/.exec(line))) {
      const size = pending.get(pid);
      pending.delete(pid);
      if (size !== undefined) writes.push({ size, error: m[1] });
    }
  }
  return writes;
}

/** `memkit <args>` under `strace -e trace=write`, with stdout piped to a reader that `read`s it. */
async function tracedCli(
  flags: string[],
  args: string[],
  read: (stdout: ReadableStream<Uint8Array>) => Promise<void>,
) {
  const log = Deno.makeTempFileSync({ suffix: ".strace" });
  try {
    const child = new Deno.Command("strace", {
      args: ["-f", "-qq", "-e", "trace=write", "-o", log, ...deno([...flags, "cli.ts", ...args])],
      cwd: checkout,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    await read(child.stdout);
    const { code, signal } = await child.status;
    return {
      code,
      signal,
      stderr: await stderr,
      writes: writesToStdout(Deno.readTextFileSync(log)),
    };
  } finally {
    Deno.removeSync(log);
  }
}

traced.test("memkit maps writes a 3,000-mapping table in a write per 64 KiB, not a write per line", async () => {
  await using p = await manyMappings(3000);
  let bytes = 0;
  let text = "";
  const r = await tracedCli(["--allow-ffi", `--allow-read=/proc/${p.pid}/smaps`], [
    "maps",
    String(p.pid),
  ], async (out) => {
    for await (const chunk of out) {
      bytes += chunk.length;
      text += new TextDecoder().decode(chunk, { stream: true });
    }
  });
  assertEquals([r.code, r.signal, r.stderr], [0, null, ""]);
  const lines = text.split("\n");
  assert(lines.length > 3000, `${lines.length} lines`);
  assertEquals(lines.at(-1), "", "the output ends with a newline");
  assert(bytes > 3 * CHUNK, `${bytes} bytes`);
  // One write per 64 KiB chunk, and one for the rest (console.log made one per line).
  assert(r.writes.length <= Math.ceil(bytes / CHUNK) + 1, `${r.writes.length} writes of ${bytes}`);
});

traced.test("a reader that closes the pipe early ends memkit quietly: code 0, no message, no write after EPIPE", async () => {
  await using p = await manyMappings(3000);
  const r = await tracedCli(["--allow-ffi", `--allow-read=/proc/${p.pid}/smaps`], [
    "maps",
    String(p.pid),
  ], async (out) => {
    const reader = out.getReader();
    await reader.read(); // the first chunk; then the reader goes, as `| head -1` does
    await reader.cancel();
  });
  assertEquals([r.code, r.signal, r.stderr], [0, null, ""]);
  const broke = r.writes.findIndex((w) => w.error === "EPIPE");
  assert(broke >= 0, "the pipe broke");
  // After it, nothing new: at most Deno's own stdout trying its buffered
  // remainder once more at exit (console.log went on with every line).
  const after = r.writes.slice(broke);
  assert(after.length <= 2, `${after.length} writes from the first EPIPE on`);
  for (const w of after) assertEquals(w, r.writes[broke]);
});

Deno.test("memkit maps and pagemap load no physical-memory, SMBIOS or tour code", () => {
  const info = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: checkout,
    stdout: "piped",
  }).outputSync();
  assert(info.success);
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
    }[];
  };
  const deps = new Map(graph.modules.map((m) => [m.specifier, m.dependencies ?? []]));
  const root = new URL("../", import.meta.url).href;
  /** What importing `path` evaluates: its static imports, transitively (type-only ones erased). */
  const loads = (path: string): string[] => {
    const seen = new Set<string>();
    const todo = [root + path];
    while (todo.length > 0) {
      const url = todo.pop()!;
      if (seen.has(url)) continue;
      seen.add(url);
      for (const d of deps.get(url) ?? []) {
        if (d.code && !d.isDynamic && d.code.specifier.startsWith("file:")) {
          todo.push(d.code.specifier);
        }
      }
    }
    return [...seen].map((u) => u.slice(root.length)).sort();
  };
  const dispatch = loads("cli.ts");
  for (const command of ["cli/introspect.ts", "cli/phys.ts", "cli/tour.ts", "mod.ts"]) {
    assert(!dispatch.includes(command), `cli.ts loads ${command} whatever the command`);
  }
  const maps = loads("cli/introspect.ts");
  for (const other of ["src/phys.ts", "src/smbios.ts", "cli/tour.ts", "src/mapping.ts", "mod.ts"]) {
    assert(!maps.includes(other), `memkit maps loads ${other}: ${maps.join(" ")}`);
  }
  assert(maps.includes("src/maps.ts") && maps.includes("src/pagemap.ts"));
});

// ---- the writer itself ----

/** An Output into memory: its text, and the size of each write. */
function memoryOutput(chunk?: number) {
  const writes: string[] = [];
  const out = new Output({
    writeSync: (b) => (writes.push(new TextDecoder().decode(b)), b.length),
  }, chunk);
  return { out, writes };
}

const replacer = (_k: string, v: unknown) =>
  typeof v === "bigint"
    ? `0x${v.toString(16)}`
    : v instanceof Set || v instanceof Uint8Array
    ? [...v]
    : v;

Deno.test("Output.json writes what JSON.stringify writes with memkit's replacer", () => {
  const values: unknown[] = [
    readSmaps("self"),
    [],
    {},
    [[], {}, [[]], { a: {} }],
    { s: 'quote " backslash \\ tab \t nl \n', u: "é ☃ 😀", lone: "\ud800", ctl: "\u0001\u007f" },
    { 'key "quoted"': 1, "": 2, 10: 3, 2: 4, b: 5 },
    [undefined, () => 1, Symbol("s"), null, NaN, Infinity, -0, 1e21, 5e-7, 0.1],
    { gone: undefined, fn: () => 1, kept: null },
    {
      big: 2n ** 64n - 1n,
      zero: 0n,
      set: new Set(["r", "w", 3n]),
      bytes: new Uint8Array([0, 255]),
    },
    { date: new Date(0), nested: { deeper: { deepest: [1, [2, [3]]] } } },
    { pid: 1, start: 0x1000n, runs: [{ start: "0x1000", flags: ["present"] }, [], {}], end: {} },
    {
      list: [undefined, () => 1, new Set([1n]), { toJSON: () => undefined }, [[1]]],
      gone: Symbol(),
    },
    {
      boxed: [new String("s"), new Number(1), new Boolean(false)],
      map: new Map([[1, 2]]),
      nul: null,
    },
    Object.assign(Object.create(null), { bare: [1, { deep: [2] }] }),
    { toJSON: () => ({ replaced: [1n, new Set(["a"])] }) },
    new Set([{ a: 1n }]),
    new Uint8Array([1, 2]),
    [{ toJSON: (key: string) => `key ${key}` }, new Date(1)],
    undefined,
    "top",
    42,
    true,
    null,
    0x1000n,
  ];
  for (const value of values) {
    const { out, writes } = memoryOutput();
    out.json(value);
    out.flush();
    assertEquals(writes.join(""), `${JSON.stringify(value, replacer, 2)}\n`);
  }
});

Deno.test("Output gathers lines into chunks that end at a newline, and flush writes the rest", () => {
  const { out, writes } = memoryOutput(100);
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(i % 17)}`);
  for (const l of lines) out.line(l);
  assert(writes.length > 10 && writes.length < 60, `${writes.length} writes`);
  for (const w of writes) assert(w.length >= 100 && w.endsWith("\n"), JSON.stringify(w));
  out.flush();
  out.flush(); // nothing left: no empty write
  assertEquals(writes.join(""), lines.map((l) => l + "\n").join(""));
  assert(writes.every((w) => w.length > 0));
});

Deno.test("Output stops at a broken pipe: that write and every later one throw OutputClosed, flush does not", () => {
  let calls = 0;
  const out = new Output({
    writeSync: () => {
      calls++;
      throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    },
  }, 10);
  assertThrows(() => out.write("more than ten bytes\n"), OutputClosed); // meets the broken pipe
  assert(out.closed);
  assertThrows(() => out.line("more"), OutputClosed);
  out.flush();
  assertEquals(calls, 1);
  const other = new Output({
    writeSync: () => {
      throw new Deno.errors.PermissionDenied("Permission denied");
    },
  }, 10);
  assertThrows(() => other.write("more than ten bytes\n"), Deno.errors.PermissionDenied);
});

// ---- pagemap runs ----

interface RefRun {
  start: string;
  end: string;
  pages: number;
  pfn: string | null;
  flags: string[];
}

/**
 * The runs of [start, start + pages pages), straight from Pagemap.read, in
 * bigints; with `hidden`, as a process without CAP_SYS_ADMIN sees them.
 */
function referenceRuns(pid: number, start: number, pages: number, hidden: boolean): RefRun[] {
  using pm = Pagemap.open(pid);
  const page = BigInt(pageSize());
  const read = pm.read({ start: BigInt(start), pages });
  const names: [number, string][] = [
    [PageBits.PRESENT, "present"],
    [PageBits.SWAPPED, "swapped"],
    [PageBits.FILE, "file"],
    [PageBits.EXCLUSIVE, "exclusive"],
    [PageBits.SOFT_DIRTY, "soft-dirty"],
    [PageBits.UFFD_WP, "uffd-wp"],
    [PageBits.GUARD, "guard"],
  ];
  const runs: (Omit<RefRun, "pfn" | "end"> & { pfn: number | null; at: bigint; bits: number })[] =
    [];
  for (let i = 0; i < pages; i++) {
    const bits = read.flags[i];
    if (bits === 0) continue;
    const pfn = bits & PageBits.PRESENT && read.pfnVisible && !hidden ? read.frame[i] : null;
    const at = BigInt(start) + BigInt(i) * page;
    const last = runs.at(-1);
    if (
      last && last.bits === bits && last.at + BigInt(last.pages) * page === at &&
      (pfn === null ? last.pfn === null : last.pfn !== null && last.pfn + last.pages === pfn)
    ) {
      last.pages++;
    } else {
      const flags = names.filter(([b]) => bits & b).map(([, n]) => n);
      runs.push({ at, bits, start: `0x${at.toString(16)}`, pages: 1, pfn, flags });
    }
  }
  // memkit.pagemap/1 has frames as 0x strings, as addresses (docs/json.md).
  return runs.map(({ start, at, pages, pfn, flags }) => ({
    start,
    end: `0x${(at + BigInt(pages) * page).toString(16)}`,
    pages,
    pfn: pfn === null ? null : `0x${pfn.toString(16)}`,
    flags,
  }));
}

python.test("memkit pagemap over 4,000 runs prints the runs Pagemap.read gives, in JSON and as a table", async () => {
  const pages = 6000;
  await using p = await manyMappings(1, pages);
  const end = p.region + pages * pageSize();
  const range = `0x${p.region.toString(16)}-0x${end.toString(16)}`;
  for (const dropAdmin of [false, true]) {
    const flags = ["--allow-ffi", `--allow-read=/proc/${p.pid}/pagemap`];
    const json = memkitCli(flags, ["pagemap", String(p.pid), range, "--json"], dropAdmin);
    const table = memkitCli(flags, ["pagemap", String(p.pid), range], dropAdmin);
    assertEquals([json.code, table.code], [0, 0], json.stderr + table.stderr);
    const runs = JSON.parse(json.stdout).runs as RefRun[];
    assertEquals(runs, referenceRuns(p.pid, p.region, pages, dropAdmin));
    assert(runs.length >= pages / 3, `${runs.length} runs`);
    if (dropAdmin) {
      // Frames hidden: runs of exactly the two touched pages in every three.
      runs.forEach((r, i) => {
        assertEquals([r.pages, r.pfn, BigInt(r.start)], [
          2,
          null,
          BigInt(p.region) + BigInt(3 * i * pageSize()),
        ]);
      });
    }
    // The table: one line per run, between the header lines and the total.
    const rows = table.stdout.trimEnd().split("\n").filter((l) => /^ *[0-9a-f]+ +\d+ /.test(l));
    assertEquals(rows.length, runs.length);
    rows.forEach((row, i) => {
      const [start, count, , , pfn, flagText] = row.trim().split(/ +/);
      assertEquals(`0x${start}`, runs[i].start);
      assertEquals(Number(count), runs[i].pages);
      assertEquals(pfn, runs[i].pfn ?? "hidden");
      assertEquals(flagText, runs[i].flags.join(","));
    });
  }
});
