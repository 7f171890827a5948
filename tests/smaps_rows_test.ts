// flags: --allow-ffi --allow-read=/proc,/tmp --allow-write=/tmp --allow-run=python3,cat,$DENO --v8-flags=--js-immutable-arraybuffer
// The table of `memkit maps` from the native columns (mk_proc_smaps_rows,
// mk_proc_smaps_format) against the table from readSmaps' entries, on the
// same text: byte for byte, for kernel text, awkward paths, chunk cuts and
// random mutations; text not as the kernel prints it goes the entries' way.
import { assert, assertEquals, assertLess } from "@std/assert";
import { parseSmaps } from "../src/maps.ts";
import { parseSmapsRows } from "../src/_smaps_rows.ts";
import { printMaps, printRows, type TableOptions } from "../cli/_maps_table.ts";
import { Output } from "../cli/_out.ts";
import { lacks, need } from "./fixtures/skip.ts";
import { readyLine } from "./fixtures/child.ts";

const fixture = new URL("./fixtures/mappings.py", import.meta.url).pathname;
const python = need(lacks("python3"));
const encoder = new TextEncoder();

/** What `print` writes to an Output, as bytes. */
function capture(print: (out: Output) => void): Uint8Array {
  const parts: Uint8Array[] = [];
  const out = new Output({ writeSync: (b) => (parts.push(b.slice()), b.length) }, 1 << 12);
  print(out);
  out.flush();
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, (at += p.length) - p.length);
  return all;
}

/** The table the CLI prints of `text` both ways; `rows` undefined where the native parse refused it. */
function tables(
  text: Uint8Array,
  chunk?: number,
  options: TableOptions = {},
): { entries?: Uint8Array; rows?: Uint8Array } {
  let entries: Uint8Array | undefined;
  try {
    const parsed = parseSmaps(text);
    entries = capture((out) => printMaps(out, 1234, parsed, true, options));
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
  }
  const table = parseSmapsRows(text, chunk);
  const rows = table && capture((out) => printRows(out, 1234, table, options));
  return { entries, rows };
}

const decode = (b?: Uint8Array) => b && new TextDecoder().decode(b);

/** Kernel-style smaps text: a block per header, the fields a 6.x kernel prints. */
function block(
  header: string,
  kb: Partial<Record<string, number>> = {},
  flags = "rd mr mw me",
): string {
  const names = [
    "Size",
    "KernelPageSize",
    "MMUPageSize",
    "Rss",
    "Pss",
    "Pss_Dirty",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Referenced",
    "Anonymous",
    "KSM",
    "LazyFree",
    "AnonHugePages",
    "ShmemPmdMapped",
    "FilePmdMapped",
    "Shared_Hugetlb",
    "Private_Hugetlb",
    "Swap",
    "SwapPss",
    "Locked",
  ];
  const fields = names.map((n) => `${`${n}:`.padEnd(16)}${String(kb[n] ?? 0).padStart(8)} kB\n`);
  return `${header}\n${fields.join("")}THPeligible:           0\nVmFlags: ${flags} \n`;
}

const AWKWARD = [
  block("55c82af67000-55c82af68000 r--p 00000000 fe:00 2171866                    /usr/bin/x", {
    Rss: 4,
    Pss: 4,
  }),
  block("55c82af68000-55c82af69000 r-xp 00001000 fe:00 2171866                    /usr/bin/x", {
    Rss: 4,
    Pss: 2,
    Shared_Dirty: 8,
    Private_Dirty: 12,
  }),
  block("7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ", {
    Rss: 1024,
    Anonymous: 1024,
    Swap: 7,
  }),
  block(
    "7f0000100000-7f0000200000 rw-s 00000000 00:01 1045                       /memfd:ring (deleted)",
  ),
  block("7f0000200000-7f0000201000 rw-s 00000000 00:05 3                          /SYSV0000002a"),
  block(
    "7f0000201000-7f0000202000 rw-s 00000000 00:05 99                         /dev/zero (deleted)",
  ),
  block(
    "7f0000202000-7f0000203000 r--p 00000000 103:02 77                        /tmp/a\\012b c (deleted)",
  ),
  block("7f0000203000-7f0000204000 r--p 00000000 fe:00 78                         /tmp/\xe9t\xe9"),
  block("7f0000204000-7f0000205000 rw-p 00000000 00:00 0                          [anon:my name]", {
    Locked: 4,
  }),
  block("7f0000205000-7f0000206000 rw-p 00000000 00:00 0                          [heap]"),
  block("7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]"),
  block("fff0000000000000-fff0000000001000 r--p fff0000000000000 fe:00 1 /far"),
  block("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]"),
].join("");

Deno.test("the native table of awkward kernel text is the entries' table, byte for byte", () => {
  // Bytes, not UTF-16: "\xe9" above is one byte (invalid UTF-8), as a path may be.
  const text = Uint8Array.from(AWKWARD, (c) => c.charCodeAt(0));
  for (const chunk of [64, 100, 1000, 1 << 16]) {
    const { entries, rows } = tables(text, chunk);
    assert(rows !== undefined, `the native parse refused kernel text (chunk ${chunk})`);
    assertEquals(decode(rows), decode(entries), `chunk ${chunk}`);
    assertEquals(rows, entries);
    // Sizes in bytes and a header with a command line: the same both ways too.
    const bytes = tables(text, chunk, { bytes: true, command: "a b" });
    assertEquals(decode(bytes.rows), decode(bytes.entries), `--bytes, chunk ${chunk}`);
  }
  const lines = decode(tables(text).rows)!.split("\n");
  const kinds = lines.filter((l) => /^ +total .* [0-9]+ mappings?$/.test(l)).length;
  assert(kinds > 1, "a totals row per kind");
  // header, rows (one path has a newline), a total per kind, the total
  assertEquals(lines.length, 2 + 13 + 1 + kinds + 1 + 1);
});

Deno.test("text not exactly as the kernel prints it is left to readSmaps' parser", () => {
  const odd = [
    block("7f0000000000-7f0000001000 rw-p 00000000 00:00 0").replace("Rss:", "Rss:  0x10 kB\nX:"),
    block("7f0000000000-7f0000001000 rw-p 00000000 00:00 0").replace(/Pss: +0 kB/, "Pss: 1e3 kB"),
    block("7F0000000000-7F0000001000 rw-p 00000000 00:00 0"), // upper-case hex
    block("7f0000000000-7f0000001000 rw-p 00000000 0fd:01 0"), // a device with a leading zero
    block("7f0000000000-7f0000001000 rw-p 00000000 1000:01 0"), // a major above 12 bits
    block("7f0000000000-7f0000001000 rw-p 00000000 00:00"), // no inode
    block("7f0000000000-7f0000001000 rw-q 00000000 00:00 0"),
    block("20000000000001-20000000001000 rw-p 00000000 00:00 0"), // not exact as a double
    block("10000000000000000-10000000000001000 rw-p 00000000 00:00 0"), // 17 digits
    "Rss: 4 kB\n" + block("7f0000000000-7f0000001000 rw-p 00000000 00:00 0"), // a field first
  ];
  for (const text of odd) {
    const { entries, rows } = tables(encoder.encode(text));
    assertEquals(rows, undefined, text.split("\n")[0]);
    // The CLI then prints what readSmaps' entries give (or its SyntaxError).
    assert(entries === undefined || entries.length > 0);
  }
});

Deno.test("random mutations of kernel text: the native table is refused or equals the entries' table", () => {
  const base = Uint8Array.from(AWKWARD, (c) => c.charCodeAt(0));
  const alphabet = encoder.encode("0123456789abcdefABkB :-\n rwxps()[]/\\");
  let seed = 0x2545f491;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  let same = 0;
  for (let round = 0; round < 400; round++) {
    const text = base.slice();
    const edits = 1 + Math.floor(random() * 4);
    for (let k = 0; k < edits; k++) {
      text[Math.floor(random() * text.length)] = alphabet[Math.floor(random() * alphabet.length)];
    }
    const { entries, rows } = tables(text, 97);
    if (rows === undefined) continue;
    assertEquals(decode(rows), decode(entries), `round ${round}`);
    same++;
  }
  assert(same > 100, `only ${same} of 400 mutated texts were parsed natively`);
});

python.test("the native table of a Python child's awkward mappings is the entries' table", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "memkit-rows-" });
  const proc = new Deno.Command("python3", {
    args: [fixture, dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the child exited before it was ready");
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    // One read of the file (cat), parsed both ways.
    const smaps = new Deno.Command("cat", { args: [`/proc/${proc.pid}/smaps`] }).outputSync();
    assert(smaps.success);
    for (const chunk of [4096, 1 << 16]) {
      const { entries, rows } = tables(smaps.stdout, chunk);
      assert(rows !== undefined, "the native parse refused the kernel's smaps");
      assertEquals(decode(rows), decode(entries));
    }
  } finally {
    await proc.stdin.close();
    await proc.stdout.cancel();
    await proc.status;
    Deno.removeSync(dir, { recursive: true });
  }
});

/** A Python child with `n` * 2 one-page mappings (every other page read-only), and its pid. */
async function manyMappings(n: number) {
  const script = `
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
n, ps = int(sys.argv[1]), mmap.PAGESIZE
base = libc.mmap(None, 2 * n * ps, 3, 0x22, -1, 0)
for i in range(0, 2 * n, 2): libc.mprotect(base + i * ps, ps, 1)
print(os.getpid(), flush=True)
sys.stdin.read()
`;
  const proc = new Deno.Command("python3", {
    args: ["-c", script, String(n)],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  await readyLine(proc.stdout);
  return {
    pid: proc.pid,
    async [Symbol.asyncDispose]() {
      await proc.stdin.close();
      await proc.stdout.cancel();
      await proc.status;
    },
  };
}

/** The garbage collections `memkit maps <pid>` makes (--trace-gc), and its exit code. */
function collections(pid: number): { gcs: number; code: number; lines: number } {
  const checkout = new URL("..", import.meta.url).pathname;
  const r = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      `--allow-read=/proc/${pid}/smaps`,
      "--v8-flags=--js-immutable-arraybuffer,--trace-gc",
      `${checkout}cli.ts`,
      "maps",
      String(pid),
    ],
    cwd: checkout,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const out = new TextDecoder().decode(r.stdout).split("\n");
  const gcs = out.filter((l) =>
    /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: (Scavenge|Mark-Compact|Minor)/.test(l)
  );
  return { gcs: gcs.length, code: r.code, lines: out.length - gcs.length };
}

// Regression (issue 11): the table made a SmapsEntry (about 830 bytes) per
// mapping and a string per line: 8 collections for 10,000 mappings, against
// one for a few; from the native columns it makes no object per mapping (no
// collection here for either).
python.test("memkit maps of 10,000 mappings costs at most two more collections than of 10", async () => {
  await using few = await manyMappings(5);
  await using many = await manyMappings(5000);
  const small = collections(few.pid), large = collections(many.pid);
  assertEquals([small.code, large.code], [0, 0]);
  assert(large.lines > 10_000, `${large.lines} lines`);
  assertLess(large.gcs, small.gcs + 3, `${large.gcs} collections against ${small.gcs}`);
});
