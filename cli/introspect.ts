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
  type ProcessId,
  readMaps,
  readSmaps,
  type ScanRegion,
  type SmapsEntry,
} from "../mod.ts";
import { EXIT_CODES, flagsFor, hex, parseRange, printPermissions, readArgs } from "./_args.ts";
import { fail } from "./_fail.ts";

const size = (n: number): string => formatBytes(n, { binary: true });

function parsePid(text: string | undefined): ProcessId {
  if (text === undefined) throw new TypeError("Missing the pid: a number, or self");
  if (text === "self") return "self";
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new TypeError(`Cannot use pid "${text}": expected a number, or self`);
  }
  return Number(text);
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
  --permissions  print the minimal deno flags for this call and exit

${EXIT_CODES}`;

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
  try {
    const flags = readArgs(args, "maps", { boolean: ["json", "brief", "permissions"] });
    if (flags.has("help")) {
      console.log(MAPS_HELP);
      return 0;
    }
    const brief = flags.has("brief");
    const pid = parsePid(flags.positionals[0]);
    const op: Operation = brief ? "maps" : "smaps";
    if (flags.has("permissions")) {
      printPermissions(flagsFor(op, String(pid)), "maps", args);
      return 0;
    }
    const entries = brief ? readMaps(pid) : readSmaps(pid);
    if (flags.has("json")) {
      console.log(json(entries));
      return 0;
    }
    printMaps(pid, entries, !brief);
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
  --flags        also the page flags of the frames (/proc/kpageflags; root),
                 in brackets; a run is split where they change, so every
                 frame of a run has the flags shown
  --json         one JSON object
  --permissions  print the minimal deno flags for this call and exit

Without CAP_SYS_ADMIN the kernel hides frame numbers (it reports 0): memkit
says so instead of printing physical address 0.

${EXIT_CODES}`;

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
  try {
    const flags = readArgs(args, "pagemap", { boolean: ["json", "flags", "permissions"] });
    if (flags.has("help")) {
      console.log(PAGEMAP_HELP);
      return 0;
    }
    const pid = parsePid(flags.positionals[0]);
    const rangeText = flags.positionals[1];
    const withFlags = flags.has("flags");
    if (flags.has("permissions")) {
      const needs = flagsFor("pagemap", String(pid));
      if (withFlags) needs.push(...flagsFor("kpageflags", "").slice(1));
      printPermissions(needs, "pagemap", args);
      return 0;
    }
    const range = parseRange(rangeText);
    using pm = Pagemap.open(pid);
    const page = PS();
    const start = range.start - range.start % page;
    const end = (range.end + page - 1n) / page * page;
    const report = pagemapRuns(pm, start, end, withFlags);
    if (flags.has("json")) {
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
  return {
    start,
    end,
    pages: Number((end - start) / PS()),
    present,
    swapped,
    pfnVisible,
    scan,
    runs: (withFlags && pfnVisible ? splitByPageFlags(runs) : runs)
      .map((r) => ({ ...r, flags: [...r.flags] })),
  };
}

/**
 * The runs split where the frames' kpageflags change (a transparent huge
 * page's head and tails are consecutive frames with different flags), each
 * piece labelled with the flags every one of its frames has.
 */
function splitByPageFlags(runs: Run[]): Run[] {
  const CHUNK = 1 << 16;
  const out: Run[] = [];
  for (const run of runs) {
    if (run.pfn === null) {
      out.push(run);
      continue;
    }
    let raw: bigint | undefined;
    for (let done = 0; done < run.pages; done += CHUNK) {
      const n = Math.min(CHUNK, run.pages - done);
      const pfns = new BigUint64Array(n);
      for (let i = 0; i < n; i++) pfns[i] = BigInt(run.pfn + done + i);
      const kf = kpageflags(pfns);
      for (let i = 0; i < n; i++) {
        if (raw === kf.raw[i]) {
          out[out.length - 1].pages++;
          continue;
        }
        raw = kf.raw[i];
        out.push({
          start: run.start + BigInt(done + i) * PS(),
          pages: 1,
          pfn: run.pfn + done + i,
          flags: run.flags,
          kpageflags: kf.names(i),
        });
      }
    }
  }
  return out;
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
