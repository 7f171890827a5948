// flags: --allow-ffi --allow-read=/proc --allow-run=$DENO,sleep,setpriv --v8-flags=--js-immutable-arraybuffer
// `memkit maps` and `memkit pagemap` against a running `sleep`, as root and
// as root without CAP_SYS_ADMIN (setpriv), through the real cli.ts.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { Pagemap, readMaps, readSmaps } from "../mod.ts";
import { SMAPS_COUNTERS } from "../cli/_json_schemas.ts";
import { type CliResult, memkitCli } from "./fixtures/cli.ts";

function memkit(
  flags: string[],
  args: string[],
  opts: { dropAdmin?: boolean } = {},
): CliResult {
  return memkitCli(flags, args, opts.dropAdmin);
}

function sleeper(): Deno.ChildProcess & AsyncDisposable {
  const p = new Deno.Command("sleep", { args: ["60"], stdout: "null" }).spawn();
  return Object.assign(p, {
    async [Symbol.asyncDispose]() {
      p.kill("SIGKILL");
      await p.status;
    },
  });
}

const json = (v: unknown) =>
  JSON.parse(JSON.stringify(
    v,
    (_k, x) => typeof x === "bigint" ? `0x${x.toString(16)}` : x instanceof Set ? [...x] : x,
  ));

Deno.test("memkit maps <pid> --json prints what readSmaps returns, each kernel field once", async () => {
  await using p = sleeper();
  const r = memkit(["--allow-ffi", `--allow-read=/proc/${p.pid}/smaps`], [
    "maps",
    String(p.pid),
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  // The counters move while the process runs (Pss whenever another process
  // maps the same library pages, Rss while sleep finishes starting): compare
  // every mapping's identity and the names of its counters, not their values.
  const stable = (list: Record<string, unknown>[]) =>
    list.map((e) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(e)) out[k] = typeof v === "number" ? typeof v : v;
      out.fields = Object.keys(e.fields as Record<string, number>).sort();
      for (const k of ["size", "major", "minor", "inode"]) out[k] = e[k];
      return out;
    });
  // The library's JSON repeats the named counters in `fields` (Rss and rss);
  // memkit.maps/1 has each once (docs/json.md).
  const named = new Set(["Size", ...SMAPS_COUNTERS.map(([, kernel]) => kernel)]);
  const library = json(readSmaps(p.pid)).map((e: Record<string, unknown>) => ({
    ...e,
    fields: Object.fromEntries(
      Object.entries(e.fields as Record<string, number>).filter(([k]) => !named.has(k)),
    ),
  }));
  const out = JSON.parse(r.stdout);
  assertEquals([out.schema, out.pid], ["memkit.maps/1", p.pid]);
  assertEquals(stable(out.mappings), stable(library));
});

Deno.test("memkit maps <pid> prints a pmap -X style table with human sizes and a total", async () => {
  await using p = sleeper();
  const r = memkit(["--allow-ffi", `--allow-read=/proc/${p.pid}/smaps`], ["maps", String(p.pid)]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  // The command line needs /proc/<pid>/cmdline, not granted here: the header says so.
  assertEquals(
    lines[0],
    `${p.pid}: (command line not shown: needs --allow-read=/proc/${p.pid}/cmdline) ` +
      `(${readMaps(p.pid).length} mappings)`,
  );
  assertMatch(lines[1], /Address Perm +Offset Device +Inode +Size +Rss +Pss/);
  assert(lines.some((l) => / stack +\[stack\]$/.test(l)), "no [stack] line");
  assert(lines.some((l) => /\/sleep$/.test(l)), "no line for the sleep binary");
  assertMatch(lines.at(-1)!, /total +[\d.]+ (KiB|MiB)/);
  const brief = memkit(["--allow-ffi", `--allow-read=/proc/${p.pid}/maps`], [
    "maps",
    String(p.pid),
    "--brief",
  ]);
  assertEquals(brief.code, 0, brief.stderr);
});

Deno.test("memkit maps and pagemap --permissions print the minimal flags without reading anything", () => {
  const maps = memkit([], ["maps", "1234", "--permissions"]);
  assertEquals(maps.code, 0, maps.stderr);
  assertEquals(
    maps.stdout.split("\n")[0],
    "--allow-ffi --allow-read=/proc/1234/smaps,/proc/1234/cmdline",
  );
  const brief = memkit([], ["maps", "self", "--brief", "--permissions"]);
  assertEquals(
    brief.stdout.split("\n")[0],
    "--allow-ffi --allow-read=/proc/self/maps,/proc/self/cmdline",
  );
  const json = memkit([], ["maps", "1234", "--json", "--permissions"]);
  assertEquals(json.stdout.split("\n")[0], "--allow-ffi --allow-read=/proc/1234/smaps");
  const pm = memkit([], ["pagemap", "1234", "0x1000+4K", "--flags", "--permissions"]);
  assertEquals(
    pm.stdout.split("\n")[0],
    "--allow-ffi --allow-read=/proc/1234/pagemap --allow-read=/proc/kpageflags",
  );
});

Deno.test("memkit pagemap <pid> <start>+<len> --json lists the present pages with their frames", async () => {
  await using p = sleeper();
  const stack = readMaps(p.pid).find((e) => e.kind === "stack")!;
  const range = `0x${stack.start.toString(16)}+${stack.size}`;
  const r = memkit(
    ["--allow-ffi", `--allow-read=/proc/${p.pid}/pagemap,/proc/kpageflags`],
    ["pagemap", String(p.pid), range, "--json", "--flags"],
  );
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  using pm = Pagemap.open(p.pid);
  const pages = pm.read({ start: stack.start, pages: stack.size / 4096 });
  assertEquals(out.present, pages.presentCount);
  assertEquals(out.pfnVisible, true);
  assertEquals(out.scan, "PAGEMAP_SCAN");
  assertEquals(r.stderr, "", "no progress bar for a quick scan");
  let pagesInRuns = 0;
  for (const run of out.runs) {
    const i = Number((BigInt(run.start) - stack.start) / 4096n);
    assertEquals(run.pfn, `0x${pages.frame[i].toString(16)}`);
    assert(run.flags.includes("present"));
    assert(run.kpageflags.includes("ANON"), "a stack page is anonymous");
    pagesInRuns += run.pages;
  }
  assertEquals(pagesInRuns, pages.presentCount);
});

Deno.test("memkit pagemap without CAP_SYS_ADMIN says that PFNs are hidden and why, never 0x0", async () => {
  await using p = sleeper();
  const stack = readMaps(p.pid).find((e) => e.kind === "stack")!;
  const range = `0x${stack.start.toString(16)}-0x${stack.end.toString(16)}`;
  const flags = ["--allow-ffi", `--allow-read=/proc/${p.pid}/pagemap`];
  const r = memkit(flags, ["pagemap", String(p.pid), range], { dropAdmin: true });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "PFNs are hidden");
  assertStringIncludes(r.stdout, "CAP_SYS_ADMIN");
  assertMatch(r.stdout, / hidden +present/);
  assert(!/ 0x0 /.test(r.stdout), r.stdout);
  const j = memkit(flags, ["pagemap", String(p.pid), range, "--json"], { dropAdmin: true });
  const out = JSON.parse(j.stdout);
  assertEquals(out.pfnVisible, false);
  assert(out.runs.length > 0 && out.runs.every((x: { pfn: unknown }) => x.pfn === null));
});

Deno.test("memkit maps and pagemap fail clearly: missing pid, missing flag, bad range", () => {
  const missing = memkit(["--allow-ffi", "--allow-read=/proc/4194000/smaps"], ["maps", "4194000"]);
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, "NotFound");
  assertStringIncludes(missing.stderr, "no process with pid 4194000");
  const denied = memkit(["--allow-ffi"], ["maps", "self"]);
  assertEquals(denied.code, 3);
  assertStringIncludes(denied.stderr, "--allow-read");
  const bad = memkit(["--allow-ffi", "--allow-read=/proc/self/pagemap"], ["pagemap", "self", "zz"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, 'Cannot read the start "zz"');
  const nopid = memkit([], ["maps", "-3"]);
  assertEquals(nopid.code, 2);
});
