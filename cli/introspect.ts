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
// The modules themselves, not mod.ts: `memkit maps` loads no physical-memory code.
import { MemkitError } from "../ffi/errors.ts";
import { pageSize } from "../ffi/loader.ts";
import { kpageflags } from "../src/kpageflags.ts";
import { type ProcessId, readMaps, readSmaps, type SmapsEntry } from "../src/maps.ts";
import { PageBits, type PageCategory, Pagemap, type ScanRegion } from "../src/pagemap.ts";
import type { Operation } from "../src/permissions.ts";
import { EXIT_CODES, flagsFor, hex, parseRange, printPermissions, readArgs } from "./_args.ts";
import { runCommand } from "./_fail.ts";
import { stdout } from "./_out.ts";

const size = (n: number): string => formatBytes(n, { binary: true });

function parsePid(text: string | undefined): ProcessId {
  if (text === undefined) throw new TypeError("Missing the pid: a number, or self");
  if (text === "self") return "self";
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new TypeError(`Cannot use pid "${text}": expected a number, or self`);
  }
  return Number(text);
}

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
  return runCommand(() => {
    const flags = readArgs(args, "maps", { boolean: ["json", "brief", "permissions"] });
    if (flags.has("help")) {
      stdout.line(MAPS_HELP);
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
      stdout.json(entries);
      return 0;
    }
    printMaps(pid, entries, !brief);
    return 0;
  });
}

/** The width of a size column. */
const WIDTH = 10;
const sizeColumns = new Map<number, string>();

/** `size(n)` right-aligned in a column, made once per distinct value. */
function sizeColumn(n: number): string {
  let text = sizeColumns.get(n);
  if (text === undefined) sizeColumns.set(n, text = size(n).padStart(WIDTH));
  return text;
}

function printMaps(pid: ProcessId, entries: ReturnType<typeof readMaps>, sizes: boolean): void {
  const cols = sizes ? ["Size", "Rss", "Pss", "Dirty", "Anon", "Swap", "Locked"] : ["Size"];
  stdout.line(bold(`${pid}:`) + dim(` ${entries.length} mappings`));
  stdout.line(
    bold(
      `${"Address".padStart(16)} Perm ${"Offset".padStart(8)} Device ${"Inode".padStart(8)} ` +
        cols.map((c) => c.padStart(WIDTH)).join(" ") + ` ${"Kind".padEnd(9)} Mapping`,
    ),
  );
  let mapped = 0, rss = 0, pss = 0, dirty = 0, anon = 0, swap = 0, locked = 0;
  for (const m of entries) {
    mapped += m.size;
    let columns = sizeColumn(m.size);
    if (sizes) {
      const s = m as Partial<SmapsEntry>;
      const d = (s.privateDirty ?? 0) + (s.sharedDirty ?? 0);
      rss += s.rss ?? 0;
      pss += s.pss ?? 0;
      dirty += d;
      anon += s.anonymous ?? 0;
      swap += s.swap ?? 0;
      locked += s.locked ?? 0;
      columns += ` ${sizeColumn(s.rss ?? 0)} ${sizeColumn(s.pss ?? 0)} ${sizeColumn(d)} ${
        sizeColumn(s.anonymous ?? 0)
      } ${sizeColumn(s.swap ?? 0)} ${sizeColumn(s.locked ?? 0)}`;
    }
    const path = m.deleted ? m.path + " (deleted)" : m.path;
    stdout.line(
      `${m.start.toString(16).padStart(16)} ${m.perms} ${m.offset.toString(16).padStart(8, "0")} ` +
        `${m.device.padStart(6)} ${String(m.inode).padStart(8)} ${columns} ${
          m.kind.padEnd(9)
        } ${path}`,
    );
  }
  const totals = sizes ? [mapped, rss, pss, dirty, anon, swap, locked] : [mapped];
  stdout.line(
    `${"".padStart(16)} ${"".padEnd(4)} ${"".padStart(8)} ${"".padStart(6)} ${
      "total".padStart(8)
    } ` +
      totals.map((v) => size(v).padStart(WIDTH)).join(" "),
  );
}

// ---- memkit pagemap ----

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

/**
 * A run of pages with the same state and consecutive frames. Addresses are
 * numbers: a page-aligned address below 2^64 is a multiple of the page size
 * with at most 52 significant bits, so a double holds it exactly (and adding
 * two of them is exact), without a BigInt per page.
 */
interface Run {
  /** The address of its first page. */
  start: number;
  pages: number;
  /** The frame of its first page, when present and visible. */
  pfn: number | null;
  /** Its PageBits. */
  bits: number;
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
  return runCommand(() => {
    const flags = readArgs(args, "pagemap", { boolean: ["json", "flags", "permissions"] });
    if (flags.has("help")) {
      stdout.line(PAGEMAP_HELP);
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
    const page = BigInt(pageSize());
    const start = range.start - range.start % page;
    const end = (range.end + page - 1n) / page * page;
    const report = pagemapRuns(pm, start, end, withFlags);
    if (flags.has("json")) {
      const runs = report.runs.map((r) =>
        r.kpageflags === undefined
          ? { start: hex(r.start), pages: r.pages, pfn: r.pfn, flags: flagNames(r.bits) }
          : {
            start: hex(r.start),
            pages: r.pages,
            pfn: r.pfn,
            flags: flagNames(r.bits),
            kpageflags: r.kpageflags,
          }
      );
      stdout.json({ pid, ...report, runs });
      return 0;
    }
    printPagemap(pid, report);
    return 0;
  });
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

/** Pages read from the pagemap at once. */
const CHUNK = 1 << 16;

function pagemapRuns(pm: Pagemap, start: bigint, end: bigint, withFlags: boolean): PagemapReport {
  const ps = pageSize();
  const pageCount = Number((end - start) / BigInt(ps));
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
    regions = [{ start, end, pages: pageCount, categories: [] }];
  }
  const total = regions.reduce((n, r) => n + r.pages, 0);
  const progress = new Progress(total);
  const runs: Run[] = [];
  let last: Run | undefined;
  let present = 0, swapped = 0;
  let pfnVisible = pm.pfnVisible;
  for (const region of regions) {
    const base = Number(region.start); // page-aligned: exact
    for (let done = 0; done < region.pages; done += CHUNK) {
      const n = Math.min(CHUNK, region.pages - done);
      const at = base + done * ps;
      let pages;
      try {
        pages = pm.read(region.start + BigInt(done * ps), n);
      } catch (e) {
        // Read entry by entry (no PAGEMAP_SCAN): the range ran past the top.
        if (scan === "entries" && e instanceof RangeError) break;
        throw e;
      }
      present += pages.presentCount;
      swapped += pages.swappedCount;
      if (pages.presentCount > 0) pfnVisible = pages.pfnVisible;
      const { flags, frame } = pages;
      const visible = pages.pfnVisible;
      for (let i = 0; i < n; i++) {
        const bits = flags[i];
        if (bits === 0) continue; // absent: the gaps between runs say so
        const pfn = (bits & PageBits.PRESENT) !== 0 && visible ? frame[i] : null;
        const addr = at + i * ps;
        if (
          last !== undefined && last.bits === bits && last.start + last.pages * ps === addr &&
          (pfn === null ? last.pfn === null : last.pfn !== null && last.pfn + last.pages === pfn)
        ) {
          last.pages++;
        } else {
          runs.push(last = { start: addr, pages: 1, pfn, bits });
        }
      }
      progress.add(n);
    }
  }
  progress.end();
  return {
    start,
    end,
    pages: pageCount,
    present,
    swapped,
    pfnVisible,
    scan,
    runs: withFlags && pfnVisible ? splitByPageFlags(runs, ps) : runs,
  };
}

/** Whether this machine stores the low 32 bits of a 64-bit word first. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;
const TWO_32 = 2 ** 32;

/**
 * The runs split where the frames' kpageflags change (a transparent huge
 * page's head and tails are consecutive frames with different flags), each
 * piece labelled with the flags every one of its frames has. PFNs and flags
 * pass as pairs of 32-bit words, without a BigInt per page.
 */
function splitByPageFlags(runs: Run[], ps: number): Run[] {
  const out: Run[] = [];
  for (const run of runs) {
    if (run.pfn === null) {
      out.push(run);
      continue;
    }
    let lo = -1, hi = -1; // the raw flags of the piece being built: none yet
    for (let done = 0; done < run.pages; done += CHUNK) {
      const n = Math.min(CHUNK, run.pages - done);
      const pfns = new BigUint64Array(n);
      const words = new Uint32Array(pfns.buffer);
      for (let i = 0; i < n; i++) {
        const pfn = run.pfn + done + i;
        words[2 * i + LO] = pfn % TWO_32;
        words[2 * i + HI] = Math.floor(pfn / TWO_32);
      }
      const kf = kpageflags(pfns);
      const raw = new Uint32Array(kf.raw.buffer, kf.raw.byteOffset, 2 * kf.raw.length);
      for (let i = 0; i < n; i++) {
        if (raw[2 * i] === lo && raw[2 * i + 1] === hi) {
          out[out.length - 1].pages++;
          continue;
        }
        lo = raw[2 * i];
        hi = raw[2 * i + 1];
        out.push({
          start: run.start + (done + i) * ps,
          pages: 1,
          pfn: run.pfn + done + i,
          bits: run.bits,
          kpageflags: kf.names(i),
        });
      }
    }
  }
  return out;
}

const flagColumns = new Map<number, string>();
/** The flags of `bits`, comma-separated, made once per distinct value. */
function flagColumn(bits: number): string {
  let text = flagColumns.get(bits);
  if (text === undefined) flagColumns.set(bits, text = flagNames(bits).join(","));
  return text;
}

const pageColumns = new Map<number, string>();
/** A run's page count and size, right-aligned, made once per distinct count. */
function pageColumn(pages: number, ps: number): string {
  let text = pageColumns.get(pages);
  if (text === undefined) {
    pageColumns.set(pages, text = `${String(pages).padStart(8)} ${size(pages * ps).padStart(10)}`);
  }
  return text;
}

function printPagemap(pid: ProcessId, r: PagemapReport): void {
  const ps = pageSize();
  stdout.line(
    bold(`${pid}: ${hex(r.start)}-${hex(r.end)}`) +
      dim(` ${r.pages} pages (${size(r.pages * ps)}), found with ${r.scan}`),
  );
  if (!r.pfnVisible && r.present > 0) stdout.line(yellow(PFN_HIDDEN));
  stdout.line(
    bold(
      `${"vaddr".padStart(16)} ${"pages".padStart(8)} ${"size".padStart(10)} ${
        "pfn".padStart(12)
      }  flags`,
    ),
  );
  for (const run of r.runs) {
    const pfn = run.pfn !== null
      ? hex(run.pfn)
      : (run.bits & PageBits.PRESENT) !== 0
      ? "hidden"
      : "-";
    const kf = run.kpageflags ? dim(` [${run.kpageflags.join(",")}]`) : "";
    stdout.line(
      `${run.start.toString(16).padStart(16)} ${pageColumn(run.pages, ps)} ${pfn.padStart(12)}  ${
        flagColumn(run.bits)
      }${kf}`,
    );
  }
  stdout.line(
    `${r.present} present (${size(r.present * ps)}), ${r.swapped} swapped, ` +
      `${r.pages - r.present - r.swapped} not in memory`,
  );
}
