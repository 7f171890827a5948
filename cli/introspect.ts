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

// The modules themselves, not mod.ts: `memkit maps` loads no physical-memory code.
import { MemkitError } from "../ffi/errors.ts";
import { bind, pageSize } from "../ffi/loader.ts";
import { readKPageFlags } from "../src/kpageflags.ts";
import {
  type MapsEntry,
  type ProcessId,
  readMaps,
  readSmaps,
  type SmapsEntry,
} from "../src/maps.ts";
import { readSmapsRows } from "../src/_smaps_rows.ts";
import {
  PageBits,
  type PageCategory,
  Pagemap,
  type PagemapPages,
  type ScanRegion,
} from "../src/pagemap.ts";
import type { Operation } from "../src/permissions.ts";
import {
  allFlags,
  didYouMean,
  flagsFor,
  hex,
  mergeFlags,
  parseCommandLine,
  parseRange,
  printPermissions,
  showHelp,
  UsageError,
} from "./_args.ts";
import { binarySize } from "./_bytes.ts";
import { bold, dim, yellow } from "./_colors.ts";
import { MAPS, PAGEMAP } from "./_commands.ts";
import { type SchemaId, SMAPS_COUNTERS } from "./_json_schemas.ts";
import { fail, runCommand } from "./_fail.ts";
import { parseColumns, printMaps, printRows, type TableOptions } from "./_maps_table.ts";
import { OutputClosed, stdout } from "./_out.ts";
import { colorCells, pagesPerCell, STRIP_CHARS, stripCells, stripLegend } from "./_strip.ts";
import { framePlotSvg } from "./_svg.ts";

const size = binarySize;

function parsePid(text: string | undefined): ProcessId {
  if (text === undefined) throw new TypeError("Missing the pid: a number, or self");
  if (text === "self") return "self";
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new TypeError(`Cannot use pid "${text}": expected a number, or self`);
  }
  return Number(text);
}

// ---- memkit maps ----

/**
 * Runs `memkit maps`.
 *
 * @param args The arguments after `maps`.
 * @returns The exit code.
 *
 * @example This process's mappings
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/proc/self/maps,/proc/self/smaps cli.ts maps self
 * import { mapsCommand } from "./introspect.ts";
 * Deno.exit(mapsCommand(["self"]));
 * ```
 */
export function mapsCommand(args: string[]): number {
  return runCommand(() => {
    const flags = parseCommandLine(MAPS, args);
    if (flags.has("help")) return showHelp(MAPS);
    const brief = flags.has("brief");
    const pids = flags.positionals.map((text, i) => {
      if (i === 0 || /^([1-9][0-9]*|self)$/.test(text)) return parsePid(text);
      // A word after the first pid: most likely a flag typed without its dashes.
      const flag = didYouMean(text, allFlags(MAPS).map((f) => `--${f.name}`));
      throw new UsageError(
        `Unexpected argument "${text}": memkit maps takes only <pid|self>...` +
          (flag === undefined ? " (pids, or self)" : `: did you mean ${flag}?`),
        "maps",
      );
    });
    const typed = flags.value("columns");
    const columns = typed === undefined ? undefined : parseColumns(typed, brief);
    const json = flags.has("json");
    if (json && typed !== undefined) {
      throw new UsageError(
        `Cannot use "-o ${typed}" with --json: the JSON has every field (sizes in bytes)`,
        "maps",
      );
    }
    const strip = flags.has("strip");
    if (strip && (json || typed !== undefined)) {
      throw new UsageError(
        `Cannot use --strip with ${json ? "--json" : `-o ${typed}`}: the strip is a picture`,
        "maps",
      );
    }
    // A strip reads the maps and the pagemap, not the counters of smaps.
    const op: Operation = brief || strip ? "maps" : "smaps";
    if (flags.has("permissions")) {
      const needs = mapsFlags(op, pids, !json);
      if (strip) needs.push(...pids.flatMap((pid) => flagsFor("pagemap", String(pid)).slice(1)));
      printPermissions(mergeFlags(needs), "maps", args);
      return 0;
    }
    if (json) return mapsJson(pids, brief);
    let code = 0;
    for (const [i, pid] of pids.entries()) {
      if (i > 0) stdout.line("");
      try {
        const options = { bytes: flags.has("bytes"), columns, command: commandLine(pid) };
        if (strip) printMapStrips(pid, options);
        else printTable(pid, brief, options);
      } catch (e) {
        // One pid that cannot be read: said on stderr, and the others still print.
        const failed = fail(e);
        if (e instanceof OutputClosed) return 0;
        if (pids.length === 1) return failed;
        code ||= failed;
      }
    }
    return code;
  });
}

/** One pid's table: the C-formatted one for the default columns, else from the entries. */
function printTable(pid: ProcessId, brief: boolean, options: TableOptions): void {
  if (!brief && options.columns === undefined) {
    // The table needs columns, not a SmapsEntry per mapping.
    const rows = readSmapsRows(pid);
    if (rows !== undefined) return printRows(stdout, pid, rows, options);
  }
  const entries = brief ? readMaps(pid) : readSmaps(pid);
  printMaps(stdout, pid, entries, !brief, options);
}

/** `--json` of one pid (memkit.maps/1 or .brief/1), or of several (memkit.maps.multi/1). */
function mapsJson(pids: readonly ProcessId[], brief: boolean): number {
  const one = (pid: ProcessId) => {
    const entries = brief ? readMaps(pid) : readSmaps(pid);
    const mappings = brief ? entries.map(mapsLineJson) : (entries as SmapsEntry[]).map(mappingJson);
    return { pid: pid === "self" ? Deno.pid : pid, mappings };
  };
  if (pids.length === 1) {
    const schema: SchemaId = brief ? "memkit.maps.brief/1" : "memkit.maps/1";
    stdout.json({ schema, ...one(pids[0]) });
    return 0;
  }
  const processes: unknown[] = [];
  const errors: unknown[] = [];
  let code = 0;
  for (const pid of pids) {
    try {
      processes.push({ schema: brief ? "memkit.maps.brief/1" : "memkit.maps/1", ...one(pid) });
    } catch (e) {
      code ||= fail(e);
      const err = e as Error;
      errors.push({
        pid: pid === "self" ? Deno.pid : pid,
        error: err.name,
        code: e instanceof MemkitError ? e.code : null,
        message: err.message,
      });
    }
  }
  const multi: SchemaId = "memkit.maps.multi/1";
  stdout.json({ schema: multi, processes, errors });
  return code;
}

/**
 * The deno flags of `memkit maps` for `pids`: those of `op` for each, with
 * /proc/<pid>/cmdline for the table's header (optional: without it the header says so).
 */
function mapsFlags(op: Operation, pids: readonly ProcessId[], header: boolean): string[] {
  const flags: string[] = [];
  const reads: string[] = [];
  for (const pid of pids) {
    for (const flag of flagsFor(op, String(pid))) {
      if (flag.startsWith("--allow-read=")) reads.push(flag.slice("--allow-read=".length));
      else if (!flags.includes(flag)) flags.push(flag);
    }
    if (header) reads.push(`/proc/${pid}/cmdline`);
  }
  const unique = [...new Set(reads)];
  return unique.length === 0 ? flags : [...flags, `--allow-read=${unique.join(",")}`];
}

/**
 * The bytes of `path` (a /proc/<pid>/cmdline), read through the library:
 * Deno's own file API refuses /proc/<pid>/ files without --allow-all. The
 * caller has checked the read permission.
 */
function readCmdline(path: string): Uint8Array {
  const sym = bind(["mk_file_path_open", "mk_file_open", "mk_proc_read_next", "mk_core_close"]);
  const cpath = new TextEncoder().encode(path + "\0");
  const resolved = new Uint8Array(4096);
  const check = (ret: bigint, syscall: string): number => {
    if (ret < 0n) throw new MemkitError(Number(-ret), syscall, { path });
    return Number(ret);
  };
  const pathFd = check(sym.mk_file_path_open(cpath, resolved, BigInt(resolved.length)), "open");
  let fd: number;
  try {
    fd = check(sym.mk_file_open(cpath, 0, pathFd), "open");
  } finally {
    sym.mk_core_close(pathFd);
  }
  try {
    // A command line is at most a page or a few (ARG_MAX is larger, and read here in full).
    let buf = new Uint8Array(4096), length = 0;
    for (;;) {
      const n = check(
        sym.mk_proc_read_next(fd, buf.subarray(length), BigInt(buf.length - length)),
        "read",
      );
      length += n;
      if (length < buf.length) return buf.slice(0, length);
      const grown = new Uint8Array(buf.length * 2);
      grown.set(buf);
      buf = grown;
    }
  } finally {
    sym.mk_core_close(fd);
  }
}

/**
 * The header's text for `pid`: its command line (/proc/<pid>/cmdline, its
 * arguments between spaces), or why it is not shown. Never an error: the
 * table is what was asked for.
 */
function commandLine(pid: ProcessId): string {
  const path = `/proc/${pid}/cmdline`;
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    return `(command line not shown: needs --allow-read=${path})`;
  }
  let bytes: Uint8Array;
  try {
    bytes = readCmdline(path);
  } catch (e) {
    return `(command line not readable: ${e instanceof MemkitError ? e.code : (e as Error).name})`;
  }
  if (bytes.length === 0) return "(no command line: a kernel thread, or a process exiting)";
  const args = new TextDecoder().decode(bytes).replace(/\0$/, "").split("\0");
  // One line whatever the arguments hold: a control character shows as ?, as ps shows it.
  // deno-lint-ignore no-control-regex
  return args.join(" ").replace(/[\x00-\x1f\x7f]/g, "?");
}

/** The kernel's names of the counters a mapping's JSON has by their own name, and Size. */
const NAMED_FIELDS = new Set(["Size", ...SMAPS_COUNTERS.map(([, kernel]) => kernel)]);

/**
 * One maps line as `memkit.maps.brief/1` has it: the maps fields, `name`
 * where there is one (an undefined `name` is left out of the JSON).
 */
function mapsLineJson(e: MapsEntry): Record<string, unknown> {
  return {
    start: e.start,
    end: e.end,
    size: e.size,
    perms: e.perms,
    read: e.read,
    write: e.write,
    exec: e.exec,
    shared: e.shared,
    offset: e.offset,
    device: e.device,
    major: e.major,
    minor: e.minor,
    inode: e.inode,
    path: e.path,
    deleted: e.deleted,
    kind: e.kind,
    name: e.name,
  };
}

/** The kernel's fields of `all` that have no named counter (and are not Size). */
function otherFields(all: Record<string, number>): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const key in all) if (!NAMED_FIELDS.has(key)) fields[key] = all[key];
  return fields;
}

/**
 * One mapping as `memkit.maps/1` has it: each of the kernel's fields once,
 * the named counters (SMAPS_COUNTERS) by their names and the rest in
 * `fields` (not Size, which is `size`). Unlike the library's own JSON of an
 * entry, `fields` does not repeat the named counters. One object literal, so
 * that the 10,000 of a large process share one shape.
 */
function mappingJson(e: SmapsEntry): Record<string, unknown> {
  return {
    start: e.start,
    end: e.end,
    size: e.size,
    perms: e.perms,
    read: e.read,
    write: e.write,
    exec: e.exec,
    shared: e.shared,
    offset: e.offset,
    device: e.device,
    major: e.major,
    minor: e.minor,
    inode: e.inode,
    path: e.path,
    deleted: e.deleted,
    kind: e.kind,
    name: e.name,
    rss: e.rss,
    pss: e.pss,
    pssDirty: e.pssDirty,
    sharedClean: e.sharedClean,
    sharedDirty: e.sharedDirty,
    privateClean: e.privateClean,
    privateDirty: e.privateDirty,
    referenced: e.referenced,
    anonymous: e.anonymous,
    ksm: e.ksm,
    lazyFree: e.lazyFree,
    anonHugePages: e.anonHugePages,
    shmemPmdMapped: e.shmemPmdMapped,
    filePmdMapped: e.filePmdMapped,
    sharedHugetlb: e.sharedHugetlb,
    privateHugetlb: e.privateHugetlb,
    swap: e.swap,
    swapPss: e.swapPss,
    locked: e.locked,
    fields: otherFields(e.fields),
    vmFlags: e.vmFlags,
  };
}

// ---- memkit pagemap ----

const PFN_HIDDEN = "PFNs are hidden: the kernel shows page frame numbers only to processes " +
  "with CAP_SYS_ADMIN and reports 0 to everyone else (Linux 4.2+); run as root (with CAP_SYS_ADMIN) to see them.";

/**
 * Runs of pages with the same state and consecutive frames, in columns: no
 * object, and no BigInt, per run or per page. Addresses are doubles: a
 * page-aligned address below 2^64 is a multiple of the page size with at
 * most 52 significant bits, so a double holds it exactly, and sums of such
 * addresses are exact too.
 */
class Runs {
  /** How many runs. */
  length = 0;
  /** The address of each run's first page. */
  start: Float64Array;
  /** How many pages each run has. */
  pages: Float64Array;
  /** The frame of each run's first page, or -1 (absent, or hidden). */
  pfn: Float64Array;
  /** Each run's PageBits. */
  bits: Uint8Array;
  /** With --flags: the kpageflags every frame of the run has. */
  kpageflags: (string[] | undefined)[] = [];

  /** Room for `capacity` runs before the columns grow (at most one run a page). */
  constructor(capacity = 1024) {
    const n = Math.max(1, Math.min(capacity, 1 << 20));
    this.start = new Float64Array(n);
    this.pages = new Float64Array(n);
    this.pfn = new Float64Array(n);
    this.bits = new Uint8Array(n);
  }

  push(start: number, pages: number, pfn: number, bits: number, kpageflags?: string[]): void {
    if (this.length === this.bits.length) this.#grow();
    const i = this.length++;
    this.start[i] = start;
    this.pages[i] = pages;
    this.pfn[i] = pfn;
    this.bits[i] = bits;
    if (kpageflags !== undefined) this.kpageflags[i] = kpageflags;
  }

  #grow(): void {
    const n = 2 * this.bits.length;
    const f64 = (old: Float64Array) => {
      const a = new Float64Array(n);
      a.set(old);
      return a;
    };
    this.start = f64(this.start);
    this.pages = f64(this.pages);
    this.pfn = f64(this.pfn);
    const bits = new Uint8Array(n);
    bits.set(this.bits);
    this.bits = bits;
  }
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
 * @example 4 MiB of this process's pages
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap cli.ts pagemap self 0x400000+4M
 * import { pagemapCommand } from "./introspect.ts";
 * Deno.exit(pagemapCommand(["self", "0x400000+4M"]));
 * ```
 */
export function pagemapCommand(args: string[]): number {
  return runCommand(() => {
    const flags = parseCommandLine(PAGEMAP, args);
    if (flags.has("help")) return showHelp(PAGEMAP);
    const pid = parsePid(flags.positionals[0]);
    // A bad range is a usage error, --permissions or not.
    const range = parseRange(flags.positionals[1]);
    const withFlags = flags.has("flags");
    const summary = flags.has("summary"), strip = flags.has("strip"), svg = flags.value("svg");
    if (svg === "") throw new UsageError('Cannot write the SVG to "": expected a file', "pagemap");
    if (strip && flags.has("json")) {
      throw new UsageError("Cannot use --strip with --json: the strip is a picture", "pagemap");
    }
    if (strip && summary) {
      throw new UsageError("Cannot use --strip with --summary: choose one", "pagemap");
    }
    if (flags.has("permissions")) {
      const needs = flagsFor("pagemap", String(pid));
      if (withFlags || summary) needs.push(...flagsFor("kpageflags", "").slice(1));
      if (strip) needs.push(...flagsFor("maps", String(pid)).slice(1));
      if (svg !== undefined) needs.push(`--allow-write=${svg}`);
      printPermissions(needs, "pagemap", args);
      return 0;
    }
    using pm = Pagemap.open(pid);
    const page = BigInt(pageSize());
    const start = range.start - range.start % page;
    const end = (range.end + page - 1n) / page * page;
    // The maps first: a missing permission stops the command before the scan.
    const maps = strip ? readMaps(pid) : undefined;
    const report = pagemapRuns(pm, start, end, withFlags || summary);
    if ((summary || svg !== undefined) && !report.pfnVisible && report.present > 0) {
      throw new Error(
        `Cannot ${summary ? "sum up the kpageflags of" : "plot"} the pages: ${PFN_HIDDEN}`,
      );
    }
    if (svg !== undefined) writeFramePlot(svg, pid, report);
    if (maps !== undefined) {
      printStrips(pid, report, maps);
      return 0;
    }
    if (summary) {
      const sets = flagSets(report.runs);
      if (flags.has("json")) {
        const schema: SchemaId = "memkit.pagemap.summary/1";
        stdout.json({
          schema,
          pid: pid === "self" ? Deno.pid : pid,
          start: report.start,
          end: report.end,
          pageSize: pageSize(),
          pages: report.pages,
          present: report.present,
          swapped: report.swapped,
          sets: sets.map((s) => ({
            kpageflags: s.names,
            pages: s.pages,
            bytes: s.pages * pageSize(),
            runs: s.runs,
          })),
        });
      } else printSummary(pid, report, sets);
      return 0;
    }
    if (flags.has("json")) {
      const r = report.runs;
      const ps = pageSize();
      const runs = Array.from({ length: r.length }, (_, i) => {
        const run = {
          start: hex(r.start[i]),
          end: hex(r.start[i] + r.pages[i] * ps),
          pages: r.pages[i],
          pfn: r.pfn[i] < 0 ? null : hex(r.pfn[i]),
          flags: flagNames(r.bits[i]),
        };
        const kpageflags = r.kpageflags[i];
        return kpageflags === undefined ? run : { ...run, kpageflags };
      });
      const schema: SchemaId = "memkit.pagemap/1";
      stdout.json({
        schema,
        pid: pid === "self" ? Deno.pid : pid,
        start: report.start,
        end: report.end,
        pageSize: ps,
        pages: report.pages,
        present: report.present,
        swapped: report.swapped,
        pfnVisible: report.pfnVisible,
        scan: report.scan,
        runs,
      });
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
  runs: Runs;
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
  // What to read: the regions, joined across gaps of less than a chunk. An
  // absent page's entry costs 8 bytes to read; a call per region (thousands
  // where every few pages one is absent) costs far more. Within the gaps the
  // scan found nothing present or swapped, and those pages are skipped.
  const spans: { start: number; pages: number }[] = [];
  for (const region of regions) {
    const at = Number(region.start); // page-aligned: exact
    const last = spans.at(-1);
    const gap = last === undefined ? CHUNK : (at - last.start) / ps - last.pages;
    if (gap < CHUNK) last!.pages += gap + region.pages;
    else spans.push({ start: at, pages: region.pages });
  }
  const wanted = scan === "PAGEMAP_SCAN" ? PageBits.PRESENT | PageBits.SWAPPED : 0xff;
  const reading = spans.reduce((n, r) => n + r.pages, 0);
  const progress = new Progress(reading);
  const runs = new Runs(reading);
  // What would extend the last run: its PageBits, the next address and frame.
  let lastBits = -1, nextAddress = -1, nextPfn = -1;
  let present = 0, swapped = 0;
  let pfnVisible = pm.pfnVisible;
  let reuse: PagemapPages | undefined; // the columns of the last whole chunk, read into again
  for (const span of spans) {
    for (let done = 0; done < span.pages; done += CHUNK) {
      const n = Math.min(CHUNK, span.pages - done);
      const at = span.start + done * ps;
      let pages;
      try {
        pages = pm.read(
          { start: BigInt(at), pages: n },
          reuse?.pages === n ? { into: reuse } : undefined,
        );
      } catch (e) {
        // Read entry by entry (no PAGEMAP_SCAN): the range ran past the top.
        if (scan === "entries" && e instanceof RangeError) break;
        throw e;
      }
      if (n === CHUNK) reuse = pages;
      present += pages.presentCount;
      swapped += pages.swappedCount;
      if (pages.presentCount > 0) pfnVisible = pages.pfnVisible;
      const { flags, frame } = pages;
      const visible = pages.pfnVisible;
      for (let i = 0; i < n; i++) {
        const bits = flags[i];
        if ((bits & wanted) === 0) continue; // absent: the gaps between runs say so
        const pfn = (bits & PageBits.PRESENT) !== 0 && visible ? frame[i] : -1;
        const address = at + i * ps;
        if (bits === lastBits && address === nextAddress && pfn === nextPfn) {
          runs.pages[runs.length - 1]++;
        } else {
          runs.push(address, 1, pfn, bits);
          lastBits = bits;
        }
        nextAddress = address + ps;
        nextPfn = pfn < 0 ? -1 : pfn + 1;
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
function splitByPageFlags(runs: Runs, ps: number): Runs {
  const out = new Runs(runs.length);
  for (let r = 0; r < runs.length; r++) {
    const first = runs.pfn[r], count = runs.pages[r], start = runs.start[r], bits = runs.bits[r];
    if (first < 0) {
      out.push(start, count, first, bits);
      continue;
    }
    let lo = -1, hi = -1; // the raw flags of the piece being built: none yet
    for (let done = 0; done < count; done += CHUNK) {
      const n = Math.min(CHUNK, count - done);
      const pfns = new BigUint64Array(n);
      const words = new Uint32Array(pfns.buffer);
      for (let i = 0; i < n; i++) {
        const pfn = first + done + i;
        words[2 * i + LO] = pfn % TWO_32;
        words[2 * i + HI] = Math.floor(pfn / TWO_32);
      }
      const kf = readKPageFlags(pfns);
      const raw = new Uint32Array(kf.raw.buffer, kf.raw.byteOffset, 2 * kf.raw.length);
      for (let i = 0; i < n; i++) {
        if (raw[2 * i] === lo && raw[2 * i + 1] === hi) {
          out.pages[out.length - 1]++;
          continue;
        }
        lo = raw[2 * i];
        hi = raw[2 * i + 1];
        out.push(start + (done + i) * ps, 1, first + done + i, bits, kf.names(i));
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
  const runs = r.runs;
  for (let i = 0; i < runs.length; i++) {
    const bits = runs.bits[i], frame = runs.pfn[i], kpageflags = runs.kpageflags[i];
    const pfn = frame >= 0 ? hex(frame) : (bits & PageBits.PRESENT) !== 0 ? "hidden" : "-";
    const kf = kpageflags ? dim(` [${kpageflags.join(",")}]`) : "";
    stdout.line(
      `${runs.start[i].toString(16).padStart(16)} ${pageColumn(runs.pages[i], ps)} ${
        pfn.padStart(12)
      }  ${flagColumn(bits)}${kf}`,
    );
  }
  stdout.line(
    `${r.present} present (${size(r.present * ps)}), ${r.swapped} swapped, ` +
      `${r.pages - r.present - r.swapped} not in memory`,
  );
}

// ---- memkit pagemap --summary, --strip, --svg ----

/** The present pages with one kpageflags set: how many, in how many runs. */
interface FlagSet {
  names: string[];
  pages: number;
  runs: number;
}

/**
 * The present pages per kpageflags set, most pages first (then by the
 * flags), from runs split by kpageflags: each run's frames share one set.
 */
function flagSets(runs: Runs): FlagSet[] {
  const sets = new Map<string, FlagSet>();
  for (let i = 0; i < runs.length; i++) {
    const names = runs.kpageflags[i];
    if (names === undefined || runs.pfn[i] < 0) continue; // not present
    const key = names.join(",");
    const set = sets.get(key);
    if (set) {
      set.pages += runs.pages[i];
      set.runs++;
    } else sets.set(key, { names, pages: runs.pages[i], runs: 1 });
  }
  return [...sets.values()].sort((a, b) =>
    b.pages - a.pages || (a.names.join(",") < b.names.join(",") ? -1 : 1)
  );
}

function printSummary(pid: ProcessId, r: PagemapReport, sets: FlagSet[]): void {
  const ps = pageSize();
  stdout.line(
    bold(`${pid}: ${hex(r.start)}-${hex(r.end)}`) +
      dim(` ${r.pages} pages (${size(r.pages * ps)}), ${r.present} present`),
  );
  stdout.line(
    bold(
      `${"pages".padStart(10)} ${"bytes".padStart(14)} ${"size".padStart(10)} ${
        "runs".padStart(8)
      }  kpageflags`,
    ),
  );
  for (const s of sets) {
    stdout.line(
      `${String(s.pages).padStart(10)} ${String(s.pages * ps).padStart(14)} ${
        size(s.pages * ps).padStart(10)
      } ${String(s.runs).padStart(8)}  ${s.names.length ? s.names.join(",") : "-"}`,
    );
  }
  stdout.line(
    `${r.present} present pages (${size(r.present * ps)}) in ${sets.length} kpageflags ` +
      `${sets.length === 1 ? "set" : "sets"}, ${r.swapped} swapped`,
  );
}

/** The width of the text around a strip: address, size, brackets, name. */
const STRIP_LABEL = 12 + 1 + 10 + 1 + 2 + 1 + 20;

/** The columns of the terminal on stdout, or 100 when it is not one. */
function terminalColumns(): number {
  try {
    if (Deno.stdout.isTerminal()) return Deno.consoleSize().columns;
  } catch {
    // no size: a pipe after all
  }
  return 100;
}

function printStrips(pid: ProcessId, r: PagemapReport, maps: MapsEntry[]): void {
  const ps = pageSize();
  const lines = maps.filter((m) => m.end > r.start && m.start < r.end).map((m) => {
    const start = Number(m.start > r.start ? m.start : r.start);
    const end = Number(m.end < r.end ? m.end : r.end);
    const name = m.path || `[${m.kind}]`;
    return { start, pages: (end - start) / ps, name };
  });
  const longest = lines.reduce((n, l) => Math.max(n, l.pages), 0);
  const perCell = pagesPerCell(longest, Math.max(10, terminalColumns() - STRIP_LABEL));
  stdout.line(
    bold(`${pid}: ${hex(r.start)}-${hex(r.end)}`) +
      dim(
        ` ${r.pages} pages (${size(r.pages * ps)}), ${lines.length} ` +
          `${lines.length === 1 ? "mapping" : "mappings"}`,
      ),
  );
  const bits = { present: PageBits.PRESENT, swapped: PageBits.SWAPPED, file: PageBits.FILE };
  for (const l of lines) {
    const cells = stripCells(r.runs, l.start, l.pages, ps, perCell, bits);
    const name = l.name.length > 20 ? "…" + l.name.slice(-19) : l.name;
    stdout.line(
      `${l.start.toString(16).padStart(12)} ${size(l.pages * ps).padStart(10)} ` +
        `[${colorCells(cells)}] ${name}`,
    );
  }
  if (lines.length === 0) stdout.line("no mapping in the range");
  stdout.line(dim(stripLegend(perCell, ps)));
}

/** The width of the text around a mapping's strip: address, size, perms, brackets, ×N, name. */
const MAP_STRIP_LABEL = 16 + 1 + 10 + 1 + 4 + 1 + 2 + 8 + 1 + 20;
/** Without PAGEMAP_SCAN, mappings longer than this are not read entry by entry (1 GiB). */
const ENTRIES_MAX_BYTES = 1 << 30;

/** Mappings at or above this address are the kernel's ([vsyscall]): outside one scan of the rest. */
const KERNEL_HALF = 1n << 63n;

/**
 * `memkit maps --strip`: a line per mapping with a strip of its pages, each
 * mapping at its own scale (N pages a cell, said as `×N` when N > 1) so that
 * a small one shows each page and a large one fits. With `PAGEMAP_SCAN` one
 * scan covers every mapping (it walks the mappings only, not the gaps
 * between them); without it each mapping is read entry by entry on its own.
 */
function printMapStrips(pid: ProcessId, options: TableOptions): void {
  const maps = readMaps(pid);
  using pm = Pagemap.open(pid);
  const ps = pageSize();
  const width = Math.max(16, terminalColumns() - MAP_STRIP_LABEL);
  const bits = { present: PageBits.PRESENT, swapped: PageBits.SWAPPED, file: PageBits.FILE };
  stdout.line(bold(`${pid}: ${options.command}`) + dim(` ${maps.length} mappings`));
  const user = maps.filter((m) => m.start < KERNEL_HALF);
  const whole = user.length > 0 && scanWorks(pm, user[0].start)
    ? pagemapRuns(pm, user[0].start, user[user.length - 1].end, false)
    : undefined;
  for (const m of maps) {
    const pages = Number((m.end - m.start) / BigInt(ps));
    const bytes = pages * ps;
    let picture: string;
    if (whole === undefined && bytes > ENTRIES_MAX_BYTES) {
      picture = dim("(not read: longer than 1 GiB, and this kernel has no PAGEMAP_SCAN)");
    } else {
      try {
        const runs = m.start < KERNEL_HALF && whole !== undefined
          ? whole.runs
          : pagemapRuns(pm, m.start, m.end, false).runs;
        const perCell = pagesPerCell(pages, width);
        const cells = stripCells(runs, Number(m.start), pages, ps, perCell, bits);
        picture = `[${colorCells(cells)}]` + (perCell > 1 ? dim(` ×${perCell}`) : "");
      } catch (e) {
        if (!(e instanceof MemkitError || e instanceof RangeError)) throw e;
        // The [vsyscall] page, above the pagemap's end: said, and the others still drawn.
        picture = dim(`(not read: ${e instanceof MemkitError ? e.code : "outside the pagemap"})`);
      }
    }
    const sizeText = options.bytes ? String(bytes) : size(bytes);
    stdout.line(
      `${m.start.toString(16).padStart(16, "0")} ${sizeText.padStart(10)} ${m.perms} ` +
        `${picture} ${m.path || `[${m.kind}]`}`,
    );
  }
  const c = STRIP_CHARS;
  stdout.line(dim(
    `a cell a page, or N pages (×N): ${c.absent} absent ${c.present} present ` +
      `${c.file} file/shared ${c.swapped} swapped ${c.mixed} mixed`,
  ));
}

/**
 * Whether this kernel has the `PAGEMAP_SCAN` ioctl itself (asked of one page
 * at `at`). Without it `scan()` still answers, from every entry of the range:
 * only the ioctl knows `pfn-zero`, so the fallback refuses that category
 * (`EOPNOTSUPP`), as `memkit doctor`'s check asks it.
 */
function scanWorks(pm: Pagemap, at: bigint): boolean {
  try {
    pm.scan({ start: at, pages: 1 }, { require: ["pfn-zero"] });
    return true;
  } catch (e) {
    if (e instanceof MemkitError && e.code === "EOPNOTSUPP") return false;
    throw e;
  }
}

/** The most marks an SVG gets: a page each. */
const SVG_MAX_PAGES = 1 << 20;

function writeFramePlot(file: string, pid: ProcessId, r: PagemapReport): void {
  const ps = pageSize(), runs = r.runs;
  let marks = 0;
  for (let i = 0; i < runs.length; i++) if (runs.pfn[i] >= 0) marks += runs.pages[i];
  if (marks > SVG_MAX_PAGES) {
    throw new RangeError(
      `Cannot plot "${marks}" present pages: at most "${SVG_MAX_PAGES}" (a mark each); ` +
        "choose a smaller range",
    );
  }
  const index = new Float64Array(marks), frame = new Float64Array(marks);
  const first = Number(r.start);
  let k = 0;
  for (let i = 0; i < runs.length; i++) {
    if (runs.pfn[i] < 0) continue;
    const at = (runs.start[i] - first) / ps;
    for (let j = 0; j < runs.pages[i]; j++, k++) {
      index[k] = at + j;
      frame[k] = runs.pfn[i] + j;
    }
  }
  const title = `memkit pagemap ${pid} ${hex(r.start)}-${hex(r.end)}`;
  Deno.writeTextFileSync(
    file,
    framePlotSvg({ title, start: r.start, pages: r.pages, index, frame }),
  );
  console.error(`memkit: wrote "${file}": ${marks} present ${marks === 1 ? "page" : "pages"}`);
}
