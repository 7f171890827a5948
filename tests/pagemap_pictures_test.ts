// flags: --allow-ffi --allow-run=$DENO,python3,setpriv --allow-read=/proc,/tmp --allow-write=/tmp --allow-sys=uid --v8-flags=--js-immutable-arraybuffer
// memkit pagemap --summary, --strip and --svg, through the real cli.ts in a
// child, on a python3 child whose pages this test chose: a private anonymous
// mapping touched in a known pattern, a shared one (file-backed pages in the
// pagemap) written in another, and a longer one with its first half touched.
// The summary is checked against Pagemap and kpageflags read here, the strip
// against the patterns, the SVG with python3's XML parser (a tool nobody
// here wrote) and against the frames read here.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { PageBits, Pagemap, pageSize, readKPageFlags } from "../mod.ts";
import { memkitCli } from "./fixtures/cli.ts";
import { lacks, need } from "./fixtures/skip.ts";

const python = need(lacks("python3"));
const root = Deno.uid() === 0;
const rooted = need(lacks("python3") || (!root && "frame numbers need CAP_SYS_ADMIN (root)"));

/** The private mapping's pages: `#` touched (written), `.` never. */
const PRIVATE = "##..#...####.#.#..##";
/** The shared mapping's pages: `f` written (shared memory: file pages in the pagemap). */
const SHARED = "f.ff...f..ff";
/** The long mapping: its first half written, its second half never. */
const LONG = 200;

const CHILD = `
import ctypes, json, mmap, os, sys
PS = mmap.PAGESIZE
def mapping(pages, flags):
    m = mmap.mmap(-1, pages * PS, flags=flags)
    m.madvise(mmap.MADV_NOHUGEPAGE)  # no huge page: each touched page one page
    return m
priv = mapping(${PRIVATE.length}, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i, c in enumerate(${JSON.stringify(PRIVATE)}):
    if c == "#": priv[i * PS] = 1
shared = mapping(${SHARED.length}, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
for i, c in enumerate(${JSON.stringify(SHARED)}):
    if c == "f": shared[i * PS] = 1
long = mapping(${LONG}, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(${LONG / 2}): long[i * PS] = 1
at = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
print(json.dumps({"pid": os.getpid(), "private": at(priv), "shared": at(shared), "long": at(long)}), flush=True)
sys.stdin.read()
`;

interface Child {
  pid: number;
  private: number;
  shared: number;
  long: number;
}

/** The python3 child, its pages touched; disposing of it closes its stdin and waits. */
async function child(): Promise<Child & AsyncDisposable> {
  const p = new Deno.Command("python3", {
    args: ["-c", CHILD],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the python3 child ended early: ${line}`);
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

const range = (at: number, pages: number) => `0x${at.toString(16)}+${pages * pageSize()}`;

const pagemapFlags = (pid: number) => [
  "--allow-ffi",
  `--allow-read=/proc/${pid}/pagemap,/proc/${pid}/maps,/proc/kpageflags`,
];

/** The present pages of `pages` pages from `at`, read here: frames and their kpageflags. */
function truth(pid: number, at: number, pages: number): { frame: number; names: string }[] {
  using pm = Pagemap.open(pid);
  const cols = pm.read({ start: BigInt(at), pages });
  const present: number[] = [];
  for (let i = 0; i < pages; i++) {
    if (cols.flags[i] & PageBits.PRESENT) present.push(cols.frame[i]);
  }
  assertEquals(present.length, cols.presentCount, "every present page has its frame (root)");
  const kf = readKPageFlags(new BigUint64Array(present.map(BigInt)));
  return present.map((frame, i) => ({ frame, names: kf.names(i).join(",") }));
}

python.test("memkit pagemap --strip draws each mapping's pages, a cell a page, in its pattern", async () => {
  await using c = await child();
  for (const [at, pattern] of [[c.private, PRIVATE], [c.shared, SHARED]] as const) {
    const r = memkitCli(pagemapFlags(c.pid), [
      "pagemap",
      String(c.pid),
      range(at, pattern.length),
      "--strip",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    // The header, one mapping (the range is exactly it), the legend.
    assertEquals(lines.length, 3, r.stdout);
    assertStringIncludes(lines[1], `${at.toString(16)} `);
    assertStringIncludes(lines[1], `[${pattern}]`);
    assertMatch(lines[2], /^1 page \(4 [kK]iB\) a cell/);
    assert(!r.stdout.includes("\x1b["), "no colour into a pipe");
  }
});

python.test("memkit pagemap --strip puts N pages in a cell to fit 100 columns, and says N", async () => {
  await using c = await child();
  const r = memkitCli(pagemapFlags(c.pid), [
    "pagemap",
    String(c.pid),
    range(c.long, LONG),
    "--strip",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  const n = Number(/^(\d+) pages \(/.exec(lines[2])?.[1]);
  assert(n > 1, lines[2]);
  const cells = /\[([^\]]*)\]/.exec(lines[1])![1];
  assertEquals(cells, "#".repeat(LONG / 2 / n) + ".".repeat(LONG / 2 / n), `${n} pages a cell`);
  assert(lines.every((l) => l.length <= 100), r.stdout);
  // A range over two mappings and the gap between: a line each, one N for both.
  const from = Math.min(c.private, c.long), to = Math.max(c.private, c.long);
  const both = memkitCli(pagemapFlags(c.pid), [
    "pagemap",
    String(c.pid),
    `0x${from.toString(16)}-0x${
      (to + (to === c.long ? LONG : PRIVATE.length) * pageSize()).toString(16)
    }`,
    "--strip",
  ]);
  assertEquals(both.code, 0, both.stderr);
  assertStringIncludes(both.stdout, `${c.private.toString(16)} `);
  assertStringIncludes(both.stdout, `${c.long.toString(16)} `);
});

/**
 * A python3 child for memkit maps --strip, with mappings that merge with no
 * neighbour: a private one with its own protections (rwx) touched in the
 * PRIVATE pattern, and a shared one of LONG pages (its own file) whose first
 * half is written.
 */
const STRIP_CHILD = `
import ctypes, json, mmap, os, sys
PS = mmap.PAGESIZE
rwx = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
priv = mmap.mmap(-1, ${PRIVATE.length} * PS, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=rwx)
priv.madvise(mmap.MADV_NOHUGEPAGE)
for i, c in enumerate(${JSON.stringify(PRIVATE)}):
    if c == "#": priv[i * PS] = 1
long = mmap.mmap(-1, ${LONG} * PS, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
for i in range(${LONG / 2}): long[i * PS] = 1
at = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
print(json.dumps({"pid": os.getpid(), "private": at(priv), "long": at(long)}), flush=True)
sys.stdin.read()
`;

python.test("memkit maps --strip draws every mapping at its own scale: a cell a page, or N said as ×N", async () => {
  const p = new Deno.Command("python3", {
    args: ["-c", STRIP_CHILD],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    while (!text.includes("\n")) text += (await reader.read()).value ?? "";
    const c = JSON.parse(text) as { pid: number; private: number; long: number };
    const flags = [
      "--allow-ffi",
      `--allow-read=/proc/${c.pid}/maps,/proc/${c.pid}/cmdline,/proc/${c.pid}/pagemap`,
    ];
    const r = memkitCli(flags, ["maps", String(c.pid), "--strip"]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    // The header's command line on one line: the script's newlines shown as ?, as ps shows them.
    assertMatch(
      lines[0],
      new RegExp(`^${c.pid}: \\S*python3 -c \\?import ctypes, json, mmap, os, sys\\?PS`),
    );
    const line = (at: number) => {
      const found = lines.find((l) => l.startsWith(at.toString(16).padStart(16, "0") + " "));
      if (found === undefined) throw new Error(`no line for 0x${at.toString(16)}:\n${r.stdout}`);
      return found;
    };
    // A mapping smaller than the room: a cell a page, in the pattern written.
    assertMatch(line(c.private), new RegExp(` rwxp \\[${PRIVATE}\\] \\[anonymous\\]$`));
    // LONG pages do not fit 100 columns: N pages a cell, N said, the cells in the pattern.
    const long = line(c.long);
    const n = Number(/\] ×(\d+) /.exec(long)?.[1]);
    assert(n > 1, long);
    const cells = /\[([^\]]*)\]/.exec(long)![1];
    const want = Array.from({ length: Math.ceil(LONG / n) }, (_, i) => {
      const first = i * n, last = Math.min(LONG, first + n);
      const written = Math.max(0, Math.min(last, LONG / 2) - first);
      return written === 0 ? "." : written === last - first ? "f" : "%";
    }).join("");
    assertEquals(cells, want, `${n} pages a cell`);
    // Each strip and what stands before it fit 100 columns with 20 to spare for the path.
    for (const l of lines.slice(1, -1)) {
      const picture = /^.*?(\]( ×\d+)?|\)) /.exec(l);
      assert(picture !== null && picture[0].length <= 80, l);
    }
    assertMatch(lines.at(-1)!, /^a cell a page, or N pages \(×N\)/);
    // The flags it needs, and the refusals of what a picture cannot be.
    const perms = memkitCli([], ["maps", String(c.pid), "--strip", "--permissions"]);
    assertEquals(perms.stdout.split("\n")[0], flags.join(" "));
    for (const more of [["--json"], ["-o", "size"]]) {
      const bad = memkitCli(flags, ["maps", String(c.pid), "--strip", ...more]);
      assertEquals(bad.code, 2, more.join(" "));
      assertStringIncludes(bad.stderr, "Cannot use --strip with");
    }
  } finally {
    await p.stdin.close();
    await reader.cancel();
    await p.status;
  }
});

rooted.test("memkit pagemap --summary counts the present pages per kpageflags set as kpageflags reads them", async () => {
  await using c = await child();
  for (
    const [at, pages] of [[c.private, PRIVATE.length], [c.shared, SHARED.length], [c.long, LONG]]
  ) {
    const args = ["pagemap", String(c.pid), range(at, pages)];
    const r = memkitCli(pagemapFlags(c.pid), [...args, "--summary", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.schema, "memkit.pagemap.summary/1");
    const expected = new Map<string, number>();
    const pagesHere = truth(c.pid, at, pages);
    for (const p of pagesHere) expected.set(p.names, (expected.get(p.names) ?? 0) + 1);
    const got = new Map<string, number>(
      out.sets.map((
        s: { kpageflags: string[]; pages: number },
      ) => [s.kpageflags.join(","), s.pages]),
    );
    assertEquals(got, expected);
    const sum = out.sets.reduce((n: number, s: { pages: number }) => n + s.pages, 0);
    assertEquals(sum, out.present);
    assertEquals(out.present, pagesHere.length);
    const touched = at === c.long ? LONG / 2 : [...(at === c.private ? PRIVATE : SHARED)]
      .filter((ch) => ch !== ".").length;
    assertEquals(out.present, touched);
    const counts = out.sets.map((s: { pages: number }) => s.pages);
    assertEquals(counts, counts.toSorted((a: number, b: number) => b - a), "most pages first");
    // The runs of --flags are split where the flags change: as many per set as the summary says.
    // The two are separate reads, and the kernel may age a page (LRU, ACTIVE, REFERENCED) between
    // them: the counts must agree in one of a few back-to-back pairs, not in the first.
    type FlagSet = { kpageflags: string[]; runs: number };
    const disagree = (sets: FlagSet[]): string[] => {
      const listed = JSON.parse(
        memkitCli(pagemapFlags(c.pid), [...args, "--flags", "--json"]).stdout,
      );
      return sets.flatMap((s) => {
        const runs = listed.runs.filter((run: { kpageflags?: string[] }) =>
          run.kpageflags?.join(",") === s.kpageflags.join(",")
        ).length;
        return runs === s.runs ? [] : [`${s.kpageflags.join(",")}: ${runs} runs, not ${s.runs}`];
      });
    };
    let wrong = disagree(out.sets);
    for (let attempt = 0; attempt < 5 && wrong.length > 0; attempt++) {
      const again = memkitCli(pagemapFlags(c.pid), [...args, "--summary", "--json"]);
      wrong = disagree(JSON.parse(again.stdout).sets);
    }
    assertEquals(wrong, [], "the runs per kpageflags set in five pairs of reads");
    // The text: a row per set, then the total. It is a read of its own (the kernel may have
    // aged a page since, splitting a set in two), so it is checked against itself: its rows'
    // pages add up to its total, the present pages the JSON counted, in as many sets as it says.
    const text = memkitCli(pagemapFlags(c.pid), [...args, "--summary"]);
    assertEquals(text.code, 0, text.stderr);
    const rows = text.stdout.trimEnd().split("\n");
    const sets = rows.slice(2, -1).map((row) => Number(row.trim().split(/\s+/)[0]));
    assertEquals(sets.reduce((n, p) => n + p, 0), out.present, text.stdout);
    assertMatch(
      rows.at(-1)!,
      new RegExp(`^${out.present} present pages .* in ${sets.length} kpageflags sets?, `),
    );
  }
});

python.test("memkit pagemap --summary needs /proc/kpageflags, and --permissions says so", async () => {
  await using c = await child();
  const args = ["pagemap", String(c.pid), range(c.private, PRIVATE.length), "--summary"];
  const r = memkitCli(pagemapFlags(c.pid), [...args, "--permissions"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout.split("\n")[0], "--allow-read=/proc/kpageflags");
  if (!root) return;
  const denied = memkitCli(["--allow-ffi", `--allow-read=/proc/${c.pid}/pagemap`], args);
  assertEquals(denied.code, 3, denied.stderr);
  assertStringIncludes(denied.stderr, "/proc/kpageflags");
});

/** The marks of an SVG file, parsed by python3's XML parser: each `<rect class="page">`'s title. */
function svgMarks(file: string): string[] {
  const r = new Deno.Command("python3", {
    args: [
      "-c",
      `import json, sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
marks = [r.find(ns + "title").text for r in root.iter(ns + "rect") if r.get("class") == "page"]
texts = [t.text for t in root.iter(ns + "text")]
print(json.dumps({"marks": marks, "texts": texts}))`,
      file,
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const d = new TextDecoder();
  assertEquals(r.code, 0, `python3 could not parse ${file}: ${d.decode(r.stderr)}`);
  const { marks, texts } = JSON.parse(d.decode(r.stdout));
  assert(texts.some((t: string) => t.startsWith("virtual page")), "the x axis is labelled");
  assert(texts.includes("page frame number"), "the y axis is labelled");
  return marks;
}

rooted.test("memkit pagemap --svg writes an SVG that parses, with one mark per present page at its frame", async () => {
  await using c = await child();
  const dir = Deno.makeTempDirSync();
  try {
    for (const [at, pages] of [[c.private, PRIVATE.length], [c.long, LONG]]) {
      const file = `${dir}/frames-${at.toString(16)}.svg`;
      const args = ["pagemap", String(c.pid), range(at, pages), "--svg", file];
      const perms = memkitCli(pagemapFlags(c.pid), [...args, "--permissions"]);
      assertStringIncludes(perms.stdout.split("\n")[0], `--allow-write=${file}`);
      const r = memkitCli([...pagemapFlags(c.pid), `--allow-write=${file}`], args);
      assertEquals(r.code, 0, r.stderr);
      const marks = svgMarks(file);
      const pagesHere = truth(c.pid, at, pages);
      assertEquals(marks.length, pagesHere.length, "one mark per present page");
      assertEquals(
        marks.map((m) => /frame (0x[0-9a-f]+)$/.exec(m)![1]).toSorted(),
        pagesHere.map((p) => `0x${p.frame.toString(16)}`).toSorted(),
      );
    }
    // Without --allow-write for the file, nothing is written: a permission error (exit 3).
    const file = `${dir}/denied.svg`;
    const r = memkitCli(pagemapFlags(c.pid), [
      "pagemap",
      String(c.pid),
      range(c.private, PRIVATE.length),
      "--svg",
      file,
    ]);
    assertEquals(r.code, 3, r.stderr);
    assertEquals(Deno.statSync(dir).isDirectory && [...Deno.readDirSync(dir)].length, 2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

rooted.test("without CAP_SYS_ADMIN, --summary and --svg say the frames are hidden, and --strip still draws", async () => {
  await using c = await child();
  const args = ["pagemap", String(c.pid), range(c.private, PRIVATE.length)];
  const dir = Deno.makeTempDirSync(), file = `${dir}/hidden.svg`;
  for (const more of [["--summary"], ["--svg", file]]) {
    const r = memkitCli(
      [...pagemapFlags(c.pid), `--allow-write=${file}`],
      [...args, ...more],
      true,
    );
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "CAP_SYS_ADMIN");
  }
  assertEquals([...Deno.readDirSync(dir)].length, 0, "no SVG written");
  Deno.removeSync(dir, { recursive: true });
  const strip = memkitCli(pagemapFlags(c.pid), [...args, "--strip"], true);
  assertEquals(strip.code, 0, strip.stderr);
  assertStringIncludes(strip.stdout, `[${PRIVATE}]`);
});

Deno.test("memkit pagemap refuses --strip with --json or --summary, and an empty --svg, as usage errors", () => {
  for (const more of [["--strip", "--json"], ["--strip", "--summary"], ["--svg="]]) {
    const r = memkitCli(["--allow-ffi", "--allow-read=/proc/self"], [
      "pagemap",
      "self",
      "0+4K",
      ...more,
    ]);
    assertEquals(r.code, 2, `${more.join(" ")}: ${r.stderr}`);
    assertEquals(r.stdout, "");
    assertMatch(r.stderr, /^memkit: Cannot (use --strip with|write the SVG to "")/, more.join(" "));
  }
});
