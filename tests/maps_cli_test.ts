// flags: --allow-ffi --allow-read=/proc --allow-run=$DENO,sleep,pmap,ps --v8-flags=--js-immutable-arraybuffer
// `memkit maps` beside `pmap -X` (procps): --bytes, -o, several pids, the
// header with the command line and the totals per kind, through the real
// cli.ts against running `sleep` processes.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { MAPS } from "../cli/_commands.ts";
import { MAPS_COLUMNS } from "../cli/_maps_table.ts";
import { memkitCli } from "./fixtures/cli.ts";
import { lacks, need } from "./fixtures/skip.ts";

// pmap -X to compare with, ps to wait for a sleeping sleep: both procps.
const procps = need(lacks("pmap") || lacks("ps"));

/** A sleeping `sleep 60` (its exec done: its command line is its own). */
async function sleeper(): Promise<Deno.ChildProcess & AsyncDisposable> {
  const p = new Deno.Command("sleep", { args: ["60"], stdout: "null" }).spawn();
  // Polling the kernel's state, not a time: until the exec has happened and sleep sleeps.
  const state = () =>
    new TextDecoder().decode(
      new Deno.Command("ps", { args: ["-o", "stat=,comm=", "-p", String(p.pid)], stdout: "piped" })
        .outputSync().stdout,
    ).trim();
  while (!/^S\S* +sleep$/.test(state())) await new Promise((r) => setTimeout(r, 10));
  return Object.assign(p, {
    async [Symbol.asyncDispose]() {
      p.kill("SIGKILL");
      await p.status;
    },
  });
}

const smaps = (pid: number) => [`--allow-read=/proc/${pid}/smaps,/proc/${pid}/cmdline`];

/** The rows of a `memkit maps --bytes` table: address, the sizes by column, kind. */
function memkitRows(table: string): Map<bigint, { sizes: number[]; kind: string }> {
  const rows = new Map<bigint, { sizes: number[]; kind: string }>();
  for (const line of table.split("\n")) {
    const t = line.trim().split(/ +/);
    if (!/^[0-9a-f]+$/.test(t[0] ?? "") || !/^[r-][w-][x-][sp]$/.test(t[1] ?? "")) continue;
    rows.set(BigInt(`0x${t[0]}`), { sizes: t.slice(5, 12).map(Number), kind: t[12] });
  }
  return rows;
}

/** `pmap -X pid`: each row's named columns in bytes (pmap prints kB), by address. */
function pmapRows(
  pid: number,
): { rows: Map<bigint, Record<string, number>>; total: Record<string, number> } {
  const out = new Deno.Command("pmap", { args: ["-X", String(pid)], stdout: "piped" }).outputSync();
  assert(out.success, "pmap -X failed");
  const lines = new TextDecoder().decode(out.stdout).trimEnd().split("\n");
  const header = lines[1].trim().split(/ +/);
  const numeric = header.slice(5, header.indexOf("THPeligible"));
  const rows = new Map<bigint, Record<string, number>>();
  let total: Record<string, number> = {};
  for (const line of lines.slice(2)) {
    const t = line.trim().split(/ +/);
    if (/^[0-9a-f]+$/.test(t[0]) && /^[r-][w-][x-][sp]$/.test(t[1] ?? "")) {
      // procps 4.0.2 zero-pads addresses: compared as numbers.
      rows.set(
        BigInt(`0x${t[0]}`),
        Object.fromEntries(numeric.map((name, i) => [name, Number(t[5 + i]) * 1024])),
      );
    } else if (/^[0-9]+$/.test(t[0])) {
      total = Object.fromEntries(numeric.map((name, i) => [name, Number(t[i]) * 1024]));
    }
  }
  return { rows, total };
}

procps.test("memkit maps --bytes: the sizes of pmap -X in bytes, row by row and in total", async () => {
  await using p = await sleeper();
  const r = memkitCli(["--allow-ffi", ...smaps(p.pid)], ["maps", String(p.pid), "--bytes"]);
  assertEquals(r.code, 0, r.stderr);
  const ours = memkitRows(r.stdout);
  const theirs = pmapRows(p.pid);
  assertEquals([...ours.keys()].sort(), [...theirs.rows.keys()].sort());
  for (const [address, { sizes: [size, rss, , , anon, swap, locked] }] of ours) {
    const row = theirs.rows.get(address)!;
    // Pss moves whenever another process maps the same pages: not compared.
    assertEquals(
      [size, rss, anon, swap, locked],
      [row.Size, row.Rss, row.Anonymous, row.Swap, row.Locked],
      `0x${address.toString(16)}`,
    );
  }
  const total = r.stdout.trimEnd().split("\n").at(-1)!.trim().split(/ +/);
  assertEquals(total[0], "total");
  assertEquals(
    [total[1], total[2], total[5], total[6], total[7]].map(Number),
    [
      theirs.total.Size,
      theirs.total.Rss,
      theirs.total.Anonymous,
      theirs.total.Swap,
      theirs.total.Locked,
    ],
  );
  assert(!/[KMG]iB| B /.test(r.stdout), "no human units with --bytes");
});

procps.test("memkit maps: KiB and MiB, never kiB", async () => {
  await using p = await sleeper();
  const r = memkitCli(["--allow-ffi", ...smaps(p.pid)], ["maps", String(p.pid)]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, " KiB ");
  assert(!r.stdout.includes("kiB"), "kiB is not a unit");
});

procps.test("memkit maps: a header with the command line, or why it is not shown", async () => {
  await using p = await sleeper();
  const r = memkitCli(["--allow-ffi", ...smaps(p.pid)], ["maps", String(p.pid)]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout.split("\n")[0], new RegExp(`^${p.pid}: \\S*sleep 60 \\(\\d+ mappings\\)$`));
  const without = memkitCli(["--allow-ffi", `--allow-read=/proc/${p.pid}/smaps`], [
    "maps",
    String(p.pid),
  ]);
  assertEquals(without.code, 0, without.stderr);
  assertStringIncludes(
    without.stdout.split("\n")[0],
    `(command line not shown: needs --allow-read=/proc/${p.pid}/cmdline)`,
  );
  const flags = memkitCli([], ["maps", String(p.pid), "--permissions"]);
  assertEquals(
    flags.stdout.split("\n")[0],
    `--allow-ffi --allow-read=/proc/${p.pid}/smaps,/proc/${p.pid}/cmdline`,
  );
});

procps.test("memkit maps: a totals row per kind that sums its rows, then the grand total", async () => {
  await using p = await sleeper();
  const r = memkitCli(["--allow-ffi", ...smaps(p.pid)], ["maps", String(p.pid), "--bytes"]);
  assertEquals(r.code, 0, r.stderr);
  const sums = new Map<string, { sizes: number[]; count: number }>();
  for (const { sizes, kind } of memkitRows(r.stdout).values()) {
    const s = sums.get(kind) ?? { sizes: [0, 0, 0, 0, 0, 0, 0], count: 0 };
    sizes.forEach((v, i) => s.sizes[i] += v);
    s.count++;
    sums.set(kind, s);
  }
  assert(sums.has("stack") && sums.has("file"), [...sums.keys()].join());
  const totals = r.stdout.trimEnd().split("\n").filter((l) => /^ +total /.test(l));
  assertEquals(totals.length, sums.size + 1);
  for (const line of totals.slice(0, -1)) {
    const t = line.trim().split(/ +/);
    const kind = t[8], want = sums.get(kind)!;
    assertEquals(t.slice(1, 8).map(Number), want.sizes, kind);
    assertEquals(t.slice(9).join(" "), `${want.count} mapping${want.count === 1 ? "" : "s"}`);
  }
  const all = totals.at(-1)!.trim().split(/ +/);
  assertEquals(all.length, 8, "the grand total has sizes only");
});

procps.test("memkit maps -o chooses and orders the columns; an unknown one is a usage error", async () => {
  await using p = await sleeper();
  const r = memkitCli(["--allow-ffi", ...smaps(p.pid)], [
    "maps",
    String(p.pid),
    "-o",
    "rss,size,privateDirty,mapping",
    "--bytes",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assertEquals(lines[1].trim().split(/ +/), ["Rss", "Size", "Private_Dirty", "Mapping"]);
  const pm = pmapRows(p.pid);
  const sizes = [...pm.rows.values()].map((row) => `${row.Rss} ${row.Size}`).sort();
  const count = Number(/\((\d+) mappings\)$/.exec(lines[0])![1]);
  const body = lines.slice(2, 2 + count);
  assertEquals(body.map((l) => l.trim().split(/ +/).slice(0, 2).join(" ")).sort(), sizes);
  const long = memkitCli(["--allow-ffi", ...smaps(p.pid)], [
    "maps",
    String(p.pid),
    "--columns=address,kind",
  ]);
  assertEquals(long.code, 0, long.stderr);
  assertMatch(long.stdout.split("\n")[2], /^ *[0-9a-f]+ [a-z]+ *$/);
  // Kind as the first column: a kind's totals row names its kind there.
  const byKind = memkitCli(["--allow-ffi", ...smaps(p.pid)], [
    "maps",
    String(p.pid),
    "-o",
    "kind,size",
    "--bytes",
  ]);
  assertEquals(byKind.code, 0, byKind.stderr);
  const kindLines = byKind.stdout.trimEnd().split("\n");
  const n = Number(/\((\d+) mappings\)$/.exec(kindLines[0])![1]);
  const kinds = new Set(kindLines.slice(2, 2 + n).map((l) => l.trim().split(/ +/)[0]));
  const rows = kindLines.slice(2 + n).map((l) => l.trim().split(/ +/));
  assertEquals(rows.map((t) => t[0]), [...kinds, "total"]);
  const typo = memkitCli(["--allow-ffi", ...smaps(p.pid)], ["maps", String(p.pid), "-o", "rsss"]);
  assertEquals(typo.code, 2);
  assertStringIncludes(typo.stderr, 'Unknown column "rsss"');
  assertStringIncludes(typo.stderr, "did you mean rss?");
  const help = memkitCli([], ["maps", "--help"]);
  assertStringIncludes(help.stdout, "privateDirty");
  assertStringIncludes(help.stdout, "--bytes");
});

procps.test("memkit maps with several pids: a table each; an unreadable pid on stderr, exit 1", async () => {
  await using a = await sleeper();
  await using b = await sleeper();
  const gone = 4194000;
  const r = memkitCli(
    ["--allow-ffi", ...smaps(a.pid), ...smaps(b.pid), `--allow-read=/proc/${gone}/smaps`],
    ["maps", String(a.pid), String(gone), String(b.pid), "--bytes"],
  );
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, `no process with pid ${gone}`);
  const headers = r.stdout.split("\n").filter((l) => /^\d+: /.test(l));
  assertEquals(headers.map((l) => l.split(":")[0]), [String(a.pid), String(b.pid)]);
  assert(headers.every((l) => /: \S*sleep 60 \(/.test(l)), headers.join("\n"));
  assertEquals(
    r.stdout.split("\n").filter((l) => /^ +total +\S+ +\S+ +\S+ +\S+ +\S+ +\S+ +\S+$/.test(l))
      .length,
    2,
  );
  const json = memkitCli(
    ["--allow-ffi", ...smaps(a.pid), `--allow-read=/proc/${gone}/smaps`],
    ["maps", String(a.pid), String(gone), "--json"],
  );
  assertEquals(json.code, 1);
  const out = JSON.parse(json.stdout);
  assertEquals(out.schema, "memkit.maps.multi/1");
  assertEquals(out.processes.map((x: { pid: number }) => x.pid), [a.pid]);
  assertEquals(out.processes[0].schema, "memkit.maps/1");
  assertEquals([out.errors[0].pid, out.errors[0].error], [gone, "NotFound"]);
});

Deno.test("memkit maps --help names every column -o takes", () => {
  const notes = MAPS.notes ?? "";
  for (const name of MAPS_COLUMNS) assertMatch(notes, new RegExp(`\\b${name}\\b`), name);
});
