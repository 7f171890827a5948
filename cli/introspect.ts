/**
 * `memkit maps` and `memkit pagemap`: a process's mappings (like `pmap -X`)
 * and its pages' state and frames (like the kernel's `page-types`).
 *
 * ```sh
 * deno run --allow-ffi --allow-read=/proc/1234/smaps cli.ts maps 1234
 * deno run --allow-ffi --allow-read=/proc/self/pagemap cli.ts pagemap self 0x400000+1M
 * ```
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { format as formatBytes } from "@std/fmt/bytes";
import { bold, dim, yellow } from "@std/fmt/colors";
import {
  kpageflags,
  MemkitError,
  type Operation,
  PageBits,
  type PageCategory,
  Pagemap,
  pageSize,
  permissionFlags,
  type ProcessId,
  readMaps,
  readSmaps,
  type ScanRegion,
  type SmapsEntry,
} from "../mod.ts";
import { fail } from "./_fail.ts";

const hex = (n: bigint | number): string => `0x${n.toString(16)}`;
const size = (n: number): string => formatBytes(n, { binary: true });

function parsePid(text: string | undefined): ProcessId {
  if (text === undefined) throw new TypeError("Missing the pid: a number, or self");
  if (text === "self") return "self";
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new TypeError(`Cannot use pid "${text}": expected a number, or self`);
  }
  return Number(text);
}

const UNITS: Record<string, bigint> = {
  "": 1n,
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
};

/**
 * A number: hexadecimal with 0x, else decimal, with an optional K/M/G/T suffix (binary).
 *
 * @param text The number as typed.
 * @returns Its value.
 *
 * @example
 * ```ts
 * import { parseAmount } from "./introspect.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals([parseAmount("0x1000"), parseAmount("4K"), parseAmount("1GiB")], [4096n, 4096n, 1n << 30n]);
 * ```
 */
export function parseAmount(text: string): bigint {
  const m = /^(0x[0-9a-f]+|[0-9]+)([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new TypeError(`Cannot read the number "${text}": expected 0x1000, 4096 or 4K`);
  return BigInt(m[1]) * UNITS[m[2].toLowerCase()];
}

/**
 * `<start>`, `<start>-<end>` or `<start>+<length>`: a byte range.
 *
 * @param text The range as typed.
 * @returns Its start and end (exclusive).
 *
 * @example
 * ```ts
 * import { parseRange } from "./introspect.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(parseRange("0x400000+4M"), { start: 0x400000n, end: 0x800000n });
 * ```
 */
export function parseRange(text: string | undefined): { start: bigint; end: bigint } {
  if (text === undefined) throw new TypeError("Missing the range: <start>[-end|+length]");
  const plus = text.indexOf("+");
  const dash = text.indexOf("-");
  if (plus > 0) {
    const start = parseAmount(text.slice(0, plus));
    return { start, end: start + parseAmount(text.slice(plus + 1)) };
  }
  if (dash > 0) {
    return { start: parseAmount(text.slice(0, dash)), end: parseAmount(text.slice(dash + 1)) };
  }
  const start = parseAmount(text);
  return { start, end: start + 1n };
}

function printFlags(flags: string[], command: string): void {
  console.log(flags.join(" "));
  console.log(dim(`deno run ${flags.join(" ")} cli.ts ${command}`));
}

const json = (value: unknown): string =>
  JSON.stringify(
    value,
    (_k, v) => typeof v === "bigint" ? hex(v) : v instanceof Set ? [...v] : v,
    2,
  );

// ---- memkit maps ----

const MAPS_HELP = `memkit maps <pid|self> [--json] [--brief] [--permissions]

Every mapping of a process, like pmap -X: address, permissions, offset,
device, inode, sizes (Rss, Pss, dirty, anonymous, swap, locked), kind, path.
  --brief        /proc/<pid>/maps only (no sizes; needs only that file)
  --json         one JSON array (addresses as 0x strings, sizes in bytes)
  --permissions  print the minimal deno flags for this call and exit`;

/**
 * Runs `memkit maps`.
 *
 * @param args The arguments after `maps`.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/proc/self/maps,/proc/self/smaps cli.ts maps self
 * import { mapsCommand } from "./introspect.ts";
 * Deno.exit(mapsCommand(["self"]));
 * ```
 */
export function mapsCommand(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["json", "brief", "permissions", "help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(MAPS_HELP);
    return 0;
  }
  try {
    const pid = parsePid(flags._[0]?.toString());
    const op: Operation = flags.brief ? "maps" : "smaps";
    if (flags.permissions) {
      printFlags(permissionFlags(op, String(pid)), `maps ${pid}${flags.brief ? " --brief" : ""}`);
      return 0;
    }
    const entries = flags.brief ? readMaps(pid) : readSmaps(pid);
    if (flags.json) {
      console.log(json(entries));
      return 0;
    }
    printMaps(pid, entries, !flags.brief);
    return 0;
  } catch (e) {
    return fail(e);
  }
}

function printMaps(pid: ProcessId, entries: ReturnType<typeof readMaps>, sizes: boolean): void {
  const cols = sizes ? ["Size", "Rss", "Pss", "Dirty", "Anon", "Swap", "Locked"] : ["Size"];
  const width = 10;
  console.log(bold(`${pid}:`) + dim(` ${entries.length} mappings`));
  console.log(
    bold(
      `${"Address".padStart(16)} Perm ${"Offset".padStart(8)} Device ${"Inode".padStart(8)} ` +
        cols.map((c) => c.padStart(width)).join(" ") + ` ${"Kind".padEnd(9)} Mapping`,
    ),
  );
  const totals = new Array(cols.length).fill(0);
  for (const m of entries) {
    const s = m as Partial<SmapsEntry>;
    const values = sizes
      ? [
        m.size,
        s.rss ?? 0,
        s.pss ?? 0,
        (s.privateDirty ?? 0) + (s.sharedDirty ?? 0),
        s.anonymous ?? 0,
        s.swap ?? 0,
        s.locked ?? 0,
      ]
      : [m.size];
    values.forEach((v, i) => totals[i] += v);
    const path = m.path + (m.deleted ? " (deleted)" : "");
    console.log(
      `${m.start.toString(16).padStart(16)} ${m.perms} ${m.offset.toString(16).padStart(8, "0")} ` +
        `${m.device.padStart(6)} ${String(m.inode).padStart(8)} ` +
        values.map((v) => size(v).padStart(width)).join(" ") + ` ${m.kind.padEnd(9)} ${path}`,
    );
  }
  console.log(
    `${"".padStart(16)} ${"".padEnd(4)} ${"".padStart(8)} ${"".padStart(6)} ${
      "total".padStart(8)
    } ` +
      totals.map((v) => size(v).padStart(width)).join(" "),
  );
}

// ---- memkit pagemap ----

const PS = (): bigint => BigInt(pageSize());

const PAGEMAP_HELP =
  `memkit pagemap <pid|self> <start>[-end|+length] [--flags] [--json] [--permissions]

The pages of a range, like the kernel's page-types: runs of pages with the
same state (present, swapped, file or shared, exclusive, soft-dirty, ...)
and consecutive frames, with their physical frame numbers. Numbers are
decimal or 0x hexadecimal, with an optional K, M, G or T suffix.
  --flags        also the page flags of each frame (/proc/kpageflags; root)
  --json         one JSON object
  --permissions  print the minimal deno flags for this call and exit

Without CAP_SYS_ADMIN the kernel hides frame numbers (it reports 0): memkit
says so instead of printing physical address 0.`;

const PFN_HIDDEN = "PFNs are hidden: the kernel shows page frame numbers only to processes " +
  "with CAP_SYS_ADMIN and reports 0 to everyone else (Linux 4.2+); run as root (with CAP_SYS_ADMIN) to see them.";

interface Run {
  start: bigint;
  pages: number;
  pfn: number | null;
  flags: string[];
  kpageflags?: string[];
}

const FLAG_NAMES: [number, string][] = [
  [PageBits.PRESENT, "present"],
  [PageBits.SWAPPED, "swapped"],
  [PageBits.FILE, "file"],
  [PageBits.EXCLUSIVE, "exclusive"],
  [PageBits.SOFT_DIRTY, "soft-dirty"],
  [PageBits.UFFD_WP, "uffd-wp"],
  [PageBits.GUARD, "guard"],
];
const flagCache = new Map<number, string[]>();
function flagNames(bits: number): string[] {
  let names = flagCache.get(bits);
  if (!names) {
    names = FLAG_NAMES.filter(([b]) => bits & b).map(([, n]) => n);
    flagCache.set(bits, names);
  }
  return names;
}

/** Shows a progress bar on stderr once the work has taken more than a second. */
class Progress {
  #began = performance.now();
  #total: number;
  #done = 0;
  #shown = -1;
  #tty = Deno.stderr.isTerminal();
  #encoder = new TextEncoder();

  constructor(total: number) {
    this.#total = Math.max(total, 1);
  }

  add(n: number): void {
    this.#done += n;
    if (performance.now() - this.#began < 1000) return;
    const pct = Math.floor(this.#done / this.#total * 100);
    if (pct === this.#shown || (!this.#tty && pct < this.#shown + 10)) return;
    this.#shown = pct;
    const bar = "#".repeat(Math.floor(pct / 5)).padEnd(20, ".");
    const line = `scanning [${bar}] ${pct}% of ${this.#total} pages`;
    Deno.stderr.writeSync(this.#encoder.encode(this.#tty ? `\r${line}` : `${line}\n`));
  }

  end(): void {
    if (this.#shown >= 0 && this.#tty) Deno.stderr.writeSync(this.#encoder.encode("\n"));
  }
}

/**
 * Runs `memkit pagemap`.
 *
 * @param args The arguments after `pagemap`.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap cli.ts pagemap self 0x400000+4M
 * import { pagemapCommand } from "./introspect.ts";
 * Deno.exit(pagemapCommand(["self", "0x400000+4M"]));
 * ```
 */
export function pagemapCommand(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["json", "flags", "permissions", "help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(PAGEMAP_HELP);
    return 0;
  }
  try {
    const pid = parsePid(flags._[0]?.toString());
    const rangeText = flags._[1]?.toString();
    if (flags.permissions) {
      const needs = permissionFlags("pagemap", String(pid));
      if (flags.flags) needs.push(...permissionFlags("kpageflags").slice(1));
      printFlags(needs, `pagemap ${pid} ${rangeText ?? "<range>"}${flags.flags ? " --flags" : ""}`);
      return 0;
    }
    const range = parseRange(rangeText);
    using pm = Pagemap.open(pid);
    const page = PS();
    const start = range.start - range.start % page;
    const end = (range.end + page - 1n) / page * page;
    const report = pagemapRuns(pm, start, end, flags.flags);
    if (flags.json) {
      console.log(json({ pid, ...report }));
      return 0;
    }
    printPagemap(pid, report);
    return 0;
  } catch (e) {
    return fail(e);
  }
}

interface PagemapReport {
  start: bigint;
  end: bigint;
  pages: number;
  present: number;
  swapped: number;
  pfnVisible: boolean;
  scan: "PAGEMAP_SCAN" | "entries";
  runs: Run[];
}

function pagemapRuns(pm: Pagemap, start: bigint, end: bigint, withFlags: boolean): PagemapReport {
  // PAGEMAP_SCAN finds the pages that hold anything (it walks mappings
  // only); then only those are read entry by entry, in chunks, for frames.
  const categories: PageCategory[] = ["present", "swapped"];
  let regions: ScanRegion[];
  let scan: PagemapReport["scan"] = "PAGEMAP_SCAN";
  try {
    regions = pm.scan({ start, end }, { anyOf: categories, report: categories });
  } catch (e) {
    if (!(e instanceof MemkitError)) throw e;
    scan = "entries";
    regions = [{ start, end, pages: Number((end - start) / PS()), categories: [] }];
  }
  const total = regions.reduce((n, r) => n + r.pages, 0);
  const progress = new Progress(total);
  const runs: Run[] = [];
  let present = 0, swapped = 0;
  let pfnVisible = pm.pfnVisible;
  const CHUNK = 1 << 16;
  for (const region of regions) {
    for (let done = 0; done < region.pages; done += CHUNK) {
      const n = Math.min(CHUNK, region.pages - done);
      const at = region.start + BigInt(done) * PS();
      let pages;
      try {
        pages = pm.read(at, n);
      } catch (e) {
        // Read entry by entry (no PAGEMAP_SCAN): the range ran past the top.
        if (scan === "entries" && e instanceof RangeError) break;
        throw e;
      }
      present += pages.presentCount;
      swapped += pages.swappedCount;
      if (pages.presentCount > 0) pfnVisible = pages.pfnVisible;
      for (let i = 0; i < n; i++) {
        const bits = pages.flags[i];
        if (bits === 0) continue; // absent: the gaps between runs say so
        const pfn = (bits & PageBits.PRESENT) && pages.pfnVisible ? pages.frame[i] : null;
        const last = runs[runs.length - 1];
        const addr = at + BigInt(i) * PS();
        const names = flagNames(bits);
        if (
          last !== undefined && last.flags === names &&
          last.start + BigInt(last.pages) * PS() === addr &&
          (pfn === null ? last.pfn === null : last.pfn !== null && last.pfn + last.pages === pfn)
        ) {
          last.pages++;
        } else {
          runs.push({ start: addr, pages: 1, pfn, flags: names });
        }
      }
      progress.add(n);
    }
  }
  progress.end();
  if (withFlags && pfnVisible) {
    const withPfn = runs.filter((r) => r.pfn !== null);
    const kf = kpageflags(withPfn.map((r) => r.pfn!));
    withPfn.forEach((r, i) => r.kpageflags = kf.names(i));
  }
  return {
    start,
    end,
    pages: Number((end - start) / PS()),
    present,
    swapped,
    pfnVisible,
    scan,
    runs: runs.map((r) => ({ ...r, flags: [...r.flags] })),
  };
}

function printPagemap(pid: ProcessId, r: PagemapReport): void {
  console.log(
    bold(`${pid}: ${hex(r.start)}-${hex(r.end)}`) +
      dim(` ${r.pages} pages (${size(r.pages * Number(PS()))}), found with ${r.scan}`),
  );
  if (!r.pfnVisible && r.present > 0) console.log(yellow(PFN_HIDDEN));
  console.log(
    bold(
      `${"vaddr".padStart(16)} ${"pages".padStart(8)} ${"size".padStart(10)} ${
        "pfn".padStart(12)
      }  flags`,
    ),
  );
  for (const run of r.runs) {
    const pfn = run.pfn !== null ? hex(run.pfn) : run.flags.includes("present") ? "hidden" : "-";
    const kf = run.kpageflags ? dim(` [${run.kpageflags.join(",")}]`) : "";
    console.log(
      `${run.start.toString(16).padStart(16)} ${String(run.pages).padStart(8)} ` +
        `${size(run.pages * Number(PS())).padStart(10)} ${pfn.padStart(12)}  ${
          run.flags.join(",")
        }${kf}`,
    );
  }
  console.log(
    `${r.present} present (${size(r.present * Number(PS()))}), ${r.swapped} swapped, ` +
      `${r.pages - r.present - r.swapped} not in memory`,
  );
}
