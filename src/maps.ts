/**
 * `readMaps`, `readSmaps`, `readSmapsRollup`, `findMapping`: a process's
 * mappings from `/proc/<pid>/maps`, `smaps` and `smaps_rollup`, typed.
 *
 * The files are read whole through memkit's native side (Deno's own file API
 * asks for `--allow-all` under `/proc`) and parsed here. Each is gated on
 * `--allow-read` for the path in the form the caller named it:
 * `readMaps("self")` needs `--allow-read=/proc/self/maps`, `readMaps(1234)`
 * needs `--allow-read=/proc/1234/maps`. For this process's own pid either
 * form is accepted, since both name the same file.
 *
 * @module
 */

import { readOptions, show } from "./_args.ts";
import { ERRNO } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import {
  gateProc,
  nativePid,
  noAddressSpace,
  procError,
  type ProcessId,
  procPath,
  toAddress,
} from "./_proc.ts";
import { queryPermission } from "./permissions.ts";
import { MK } from "../ffi/symbols.ts";

export type { ProcessId } from "./_proc.ts";

/**
 * What a mapping is: from its path (`[heap]`, `/memfd:x (deleted)`, ...) and
 * inode. `"deleted"` is a regular file that was unlinked while mapped;
 * `"memfd"` and `"shm"` (SysV `/SYSV...` or POSIX `/dev/shm/...`) are
 * deleted or not as the kernel says; `"other"` is any other bracketed or
 * pseudo name (`[uprobes]`, `anon_inode:...`).
 */
export type MappingKind =
  | "file"
  | "anonymous"
  | "heap"
  | "stack"
  | "vdso"
  | "vvar"
  | "vsyscall"
  | "memfd"
  | "shm"
  | "deleted"
  | "other";

/** One line of `/proc/<pid>/maps`: one mapping (a VMA). */
export interface MapsEntry {
  /** The first address. */
  start: bigint;
  /** The address after the last byte. */
  end: bigint;
  /** `end - start` in bytes. */
  size: number;
  /** The permissions as the kernel prints them, e.g. `"rw-p"`. */
  perms: string;
  /** Readable. */
  read: boolean;
  /** Writable. */
  write: boolean;
  /** Executable. */
  exec: boolean;
  /** Shared (`s`) rather than private copy-on-write (`p`). */
  shared: boolean;
  /** The offset into the file, in bytes. */
  offset: bigint;
  /** The device as the kernel prints it, e.g. `"fd:01"`. */
  device: string;
  /** The device's major number. */
  major: number;
  /** The device's minor number. */
  minor: number;
  /** The inode, 0 for anonymous memory. */
  inode: number;
  /**
   * The path or pseudo name (`[heap]`), without a trailing `" (deleted)"`,
   * with the kernel's `\012` escape of a newline undone; `""` for anonymous
   * memory.
   */
  path: string;
  /** Whether the kernel marked the path `" (deleted)"`. */
  deleted: boolean;
  /** What the mapping is. */
  kind: MappingKind;
  /** The memfd name (`memfd`), the anonymous name (`[anon:name]`), or the SysV key (`shm`). */
  name?: string;
}

/** The counters of one smaps block, in bytes (0 where the kernel lacks the field). */
export interface SmapsCounters {
  /** Resident set size. */
  rss: number;
  /** Proportional set size. */
  pss: number;
  /** The dirty part of Pss. */
  pssDirty: number;
  /** Resident pages shared with other processes, clean. */
  sharedClean: number;
  /** Resident pages shared with other processes, dirty. */
  sharedDirty: number;
  /** Resident pages mapped only here, clean. */
  privateClean: number;
  /** Resident pages mapped only here, dirty. */
  privateDirty: number;
  /** Pages marked referenced or accessed. */
  referenced: number;
  /** Anonymous pages (including private copies of file pages). */
  anonymous: number;
  /** KSM-merged pages. */
  ksm: number;
  /** Pages marked MADV_FREE. */
  lazyFree: number;
  /** Anonymous transparent huge pages. */
  anonHugePages: number;
  /** Shared memory mapped with PMDs. */
  shmemPmdMapped: number;
  /** File pages mapped with PMDs. */
  filePmdMapped: number;
  /** Shared hugetlbfs pages. */
  sharedHugetlb: number;
  /** Private hugetlbfs pages. */
  privateHugetlb: number;
  /** Swapped-out anonymous memory. */
  swap: number;
  /** The proportional share of swap. */
  swapPss: number;
  /** mlocked pages. */
  locked: number;
  /**
   * Every numeric field by the kernel's name (`"Rss"`, `"Pss_Anon"`,
   * `"THPeligible"`): fields in kB converted to bytes, others as printed.
   */
  fields: Record<string, number>;
}

/** One mapping of `/proc/<pid>/smaps`: its maps line, its counters and its VmFlags. */
export interface SmapsEntry extends MapsEntry, SmapsCounters {
  /** The two-letter VmFlags (`"rd"`, `"wr"`, `"mr"`, `"sh"`, `"dd"`, ...). */
  vmFlags: Set<string>;
}

/** `/proc/<pid>/smaps_rollup`: the counters of all mappings together. */
export interface SmapsRollup extends SmapsCounters {
  /** The lowest mapped address. */
  start: bigint;
  /** The end of the highest mapping. */
  end: bigint;
}

// ---- reading a /proc file whole ----

const WHICH = {
  maps: MK.PROC_MAPS,
  smaps: MK.PROC_SMAPS,
  smapsRollup: MK.PROC_SMAPS_ROLLUP,
} as const;
const VERBS = { maps: "read", smaps: "read", smapsRollup: "read" } as const;

let buffer = new Uint8Array(1 << 16);
const decoder = new TextDecoder();

/** Reads /proc/<pid>/<file> through the native side, growing the buffer as needed. */
function readProc(pid: ProcessId, op: keyof typeof WHICH): string {
  const native = nativePid(pid);
  gateProc(op, pid);
  for (let attempt = 0;; attempt++) {
    const ret = lib().mk_proc_read(native, WHICH[op], buffer, BigInt(buffer.length));
    if (ret < 0n) throw procError(Number(-ret), pid, op, VERBS[op], () => pidExists(pid, native));
    const length = Number(ret);
    if (length <= buffer.length) {
      if (length === 0) throw noAddressSpace(pid, op, VERBS[op]);
      return decoder.decode(buffer.subarray(0, length));
    }
    // The file grew past the buffer: grow with room for it to grow again.
    buffer = new Uint8Array(Math.ceil(length * 1.25 / 4096) * 4096 + 4096);
    if (attempt > 8) throw new Error(`Cannot read "/proc/${pid}/${op}": it keeps growing`);
  }
}

/**
 * Whether process `pid` exists, for telling a file the kernel lacks from a
 * missing process: this process does; another does when its maps opens
 * (a PROCMAP_QUERY, which opens it first: ESRCH when it cannot), asked only
 * where reading it is granted (else `undefined`: cannot tell).
 */
function pidExists(pid: ProcessId, native: number): boolean | undefined {
  if (pid === "self" || pid === Deno.pid) return true;
  if (queryPermission({ name: "read", path: procPath(pid, "maps") }) !== "granted") {
    return undefined;
  }
  const ret = lib().mk_proc_query(native, 0n, 0, queryOut, queryName, queryName.length);
  return ret !== -BigInt(ERRNO.ESRCH);
}

// ---- parsing ----

/**
 * What a mapping's path names: its kind and, for a memfd, a named anonymous
 * mapping or a shm segment, the name inside the path (as the Rust procfs
 * crate's `MMapPath` variants carry theirs).
 */
interface PathKind {
  readonly kind: MappingKind;
  readonly name?: string;
}

/** The variants that carry no name, made once. */
const KINDS: { readonly [K in MappingKind]: PathKind } = {
  file: { kind: "file" },
  deleted: { kind: "deleted" },
  anonymous: { kind: "anonymous" },
  heap: { kind: "heap" },
  stack: { kind: "stack" },
  vdso: { kind: "vdso" },
  vvar: { kind: "vvar" },
  vsyscall: { kind: "vsyscall" },
  memfd: { kind: "memfd" },
  shm: { kind: "shm" },
  other: { kind: "other" },
};

function kindOf(path: string, inode: number, deleted: boolean): PathKind {
  if (path === "") return KINDS.anonymous;
  const c = path.charCodeAt(0);
  if (c === 0x5b /* [ */) {
    switch (path) {
      case "[heap]":
        return KINDS.heap;
      case "[stack]":
        return KINDS.stack;
      case "[vdso]":
        return KINDS.vdso;
      case "[vvar]":
      case "[vvar_vclock]":
        return KINDS.vvar;
      case "[vsyscall]":
        return KINDS.vsyscall;
    }
    if (path.startsWith("[stack:")) return KINDS.stack;
    if (path.startsWith("[anon:")) return { kind: "anonymous", name: path.slice(6, -1) };
    if (path.startsWith("[anon_shmem:")) return { kind: "anonymous", name: path.slice(12, -1) };
    return KINDS.other;
  }
  if (c !== 0x2f /* / */) return KINDS.other;
  if (path.startsWith("/memfd:")) return { kind: "memfd", name: path.slice(7) };
  if (path.startsWith("/SYSV") && path.length === 13) return { kind: "shm", name: path.slice(5) };
  if (path.startsWith("/dev/shm/")) return { kind: "shm", name: path.slice(9) };
  if (path === "/dev/zero" && deleted && inode !== 0) return KINDS.anonymous;
  return deleted ? KINDS.deleted : KINDS.file;
}

const DELETED = " (deleted)";

/** Hexadecimal digits of t in [b, e) as a number (exact up to 13 digits). */
function hexAt(t: string, b: number, e: number): number {
  let v = 0;
  for (let i = b; i < e; i++) {
    const c = t.charCodeAt(i);
    v = v * 16 + (c <= 0x39 ? c - 0x30 : c - 0x57);
  }
  return v;
}

/** Hexadecimal digits of t in [b, e) as a bigint, exactly. */
function hexBigAt(t: string, b: number, e: number): bigint {
  if (e - b <= 13) {
    const v = hexAt(t, b, e);
    return v === 0 ? 0n : BigInt(v);
  }
  return BigInt("0x" + t.slice(b, e));
}

/** The 16 permission strings, by r=8 w=4 x=2 s=1. */
const PERMS: readonly string[] = Array.from(
  { length: 16 },
  (_, i) => `${i & 8 ? "r" : "-"}${i & 4 ? "w" : "-"}${i & 2 ? "x" : "-"}${i & 1 ? "s" : "p"}`,
);
/** Device strings ("fd:01") by major * 2^20 + minor: a process has few. */
const DEVICES = new Map<number, string>();

/**
 * Where one parse of a maps or smaps text is: the end of the line parsed
 * last, as a number (-1: none) and as a bigint. Each parse has its own.
 */
interface Cursor {
  endN: number;
  end: bigint;
}

/** Parses the maps line t[b, e) (or the header line of an smaps block). */
function parseLine(t: string, b: number, e: number, at: Cursor): MapsEntry {
  const dash = t.indexOf("-", b);
  const s1 = t.indexOf(" ", dash);
  const s2 = s1 + 5; // "rw-p"
  const s3 = t.indexOf(" ", s2 + 1);
  const colon = t.indexOf(":", s3);
  const s4 = t.indexOf(" ", colon);
  if (
    dash <= b || s1 < 0 || s1 > e || t.charCodeAt(s2) !== 0x20 || s3 < 0 || colon < 0 || s4 < 0 ||
    s4 > e
  ) {
    throw new SyntaxError(`Cannot parse the maps line "${t.slice(b, e)}"`);
  }
  let s5 = s4 + 1;
  let inode = 0;
  for (let c = t.charCodeAt(s5); s5 < e && c !== 0x20; c = t.charCodeAt(++s5)) {
    inode = inode * 10 + (c - 0x30);
  }
  let p = s5;
  while (p < e && t.charCodeAt(p) === 0x20) p++;
  let path = "";
  let deleted = false;
  if (p < e) {
    path = t.slice(p, e);
    if (path.endsWith(DELETED)) {
      deleted = true;
      path = path.slice(0, -DELETED.length);
    }
    if (path.includes("\\012")) path = path.replaceAll("\\012", "\n");
  }
  const { kind, name } = kindOf(path, inode, deleted);
  const startN = hexAt(t, b, dash), endN = hexAt(t, dash + 1, s1);
  const wide = dash - b > 13 || s1 - dash - 1 > 13;
  // Mappings often follow each other: reuse the previous end as this start.
  const start = wide ? hexBigAt(t, b, dash) : startN === at.endN ? at.end : BigInt(startN);
  const end = wide ? hexBigAt(t, dash + 1, s1) : BigInt(endN);
  at.endN = wide ? -1 : endN;
  at.end = end;
  const r = t.charCodeAt(s1 + 1) === 0x72, w = t.charCodeAt(s1 + 2) === 0x77;
  const x = t.charCodeAt(s1 + 3) === 0x78, sh = t.charCodeAt(s1 + 4) === 0x73;
  const perms = PERMS[(r ? 8 : 0) | (w ? 4 : 0) | (x ? 2 : 0) | (sh ? 1 : 0)];
  const major = hexAt(t, s3 + 1, colon), minor = hexAt(t, colon + 1, s4);
  const devKey = major * 0x100000 + minor;
  let device = DEVICES.get(devKey);
  if (device === undefined) DEVICES.set(devKey, device = t.slice(s3 + 1, s4));
  const entry: MapsEntry = {
    start,
    end,
    size: wide ? Number(end - start) : endN - startN,
    perms,
    read: r,
    write: w,
    exec: x,
    shared: sh,
    offset: hexBigAt(t, s2 + 1, s3),
    device,
    major,
    minor,
    inode,
    path,
    deleted,
    kind,
  };
  if (name !== undefined) entry.name = name;
  return entry;
}

/** Parses the whole text of a maps file. */
export function parseMaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  const at: Cursor = { endN: -1, end: 0n };
  let i = 0;
  while (i < text.length) {
    let nl = text.indexOf("\n", i);
    if (nl < 0) nl = text.length;
    if (nl > i) out.push(parseLine(text, i, nl, at));
    i = nl + 1;
  }
  return out;
}

const COUNTERS: Record<string, keyof Omit<SmapsCounters, "fields">> = {
  Rss: "rss",
  Pss: "pss",
  Pss_Dirty: "pssDirty",
  Shared_Clean: "sharedClean",
  Shared_Dirty: "sharedDirty",
  Private_Clean: "privateClean",
  Private_Dirty: "privateDirty",
  Referenced: "referenced",
  Anonymous: "anonymous",
  KSM: "ksm",
  LazyFree: "lazyFree",
  AnonHugePages: "anonHugePages",
  ShmemPmdMapped: "shmemPmdMapped",
  FilePmdMapped: "filePmdMapped",
  Shared_Hugetlb: "sharedHugetlb",
  Private_Hugetlb: "privateHugetlb",
  Swap: "swap",
  SwapPss: "swapPss",
  Locked: "locked",
};

function emptyCounters(): SmapsCounters {
  return {
    rss: 0,
    pss: 0,
    pssDirty: 0,
    sharedClean: 0,
    sharedDirty: 0,
    privateClean: 0,
    privateDirty: 0,
    referenced: 0,
    anonymous: 0,
    ksm: 0,
    lazyFree: 0,
    anonHugePages: 0,
    shmemPmdMapped: 0,
    filePmdMapped: 0,
    sharedHugetlb: 0,
    privateHugetlb: 0,
    swap: 0,
    swapPss: 0,
    locked: 0,
    fields: {},
  };
}

/** Adds one `Key: value [kB]` or `VmFlags: ...` line to a block. */
function addField(target: SmapsCounters & { vmFlags?: Set<string> }, line: string, colon: number) {
  const key = line.slice(0, colon);
  if (key === "VmFlags") {
    target.vmFlags = new Set(line.slice(colon + 1).trim().split(" ").filter((f) => f !== ""));
    return;
  }
  const rest = line.slice(colon + 1).trim();
  const kb = rest.endsWith(" kB");
  const value = Number(kb ? rest.slice(0, -3) : rest);
  if (Number.isNaN(value)) return; // a field that is not a number
  const bytes = kb ? value * 1024 : value;
  target.fields[key] = bytes;
  const name = COUNTERS[key];
  if (name !== undefined) target[name] = bytes;
}

/** Parses the whole text of an smaps (or smaps_rollup) file. */
export function parseSmaps(text: string): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  let current: SmapsEntry | undefined;
  const at: Cursor = { endN: -1, end: 0n };
  let i = 0;
  while (i < text.length) {
    let nl = text.indexOf("\n", i);
    if (nl < 0) nl = text.length;
    if (nl > i) {
      const line = text.slice(i, nl);
      const colon = line.indexOf(":");
      const space = line.indexOf(" ");
      if (colon > 0 && (space < 0 || colon < space) && current !== undefined) {
        addField(current, line, colon);
      } else {
        current = { ...parseLine(text, i, nl, at), ...emptyCounters(), vmFlags: new Set<string>() };
        out.push(current);
      }
    }
    i = nl + 1;
  }
  return out;
}

// ---- the API ----

/**
 * Reads a process's mappings from `/proc/<pid>/maps`, one typed entry per
 * line, in address order.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/maps` in the form
 * `pid` is given (`/proc/self/maps` for `"self"`; for this process's own
 * pid either form).
 *
 * @param pid A pid, or `"self"` (the default).
 * @returns The mappings.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 * @throws {Deno.errors.NotCapable} When the read permission is missing.
 * @throws {MemkitError} When the kernel refuses (`EACCES`: another user's process).
 *
 * @example The heap and the stack of this process
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/maps
 * import { readMaps } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const maps = readMaps("self");
 * assert(maps.some((m) => m.kind === "stack" && m.read && m.write && !m.shared));
 * assert(maps.every((m, i) => i === 0 || maps[i - 1].end <= m.start));
 * ```
 */
export function readMaps(pid: ProcessId = "self"): MapsEntry[] {
  return parseMaps(readProc(pid, "maps"));
}

/**
 * Reads a process's mappings with their memory counters from
 * `/proc/<pid>/smaps`: every numeric field in bytes, and VmFlags as a set.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/smaps` (as for
 * {@linkcode readMaps}).
 *
 * @param pid A pid, or `"self"` (the default).
 * @returns The mappings with their counters.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 *
 * @example Resident memory of this process
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/smaps
 * import { readSmaps } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const smaps = readSmaps("self");
 * const rss = smaps.reduce((sum, m) => sum + m.rss, 0);
 * assert(rss > 0 && rss % 4096 === 0);
 * assert(smaps.some((m) => m.vmFlags.has("rd")));
 * ```
 */
export function readSmaps(pid: ProcessId = "self"): SmapsEntry[] {
  return parseSmaps(readProc(pid, "smaps"));
}

/**
 * Reads `/proc/<pid>/smaps_rollup`: the smaps counters of all mappings
 * summed by the kernel, in bytes.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/smaps_rollup` (as
 * for {@linkcode readMaps}).
 *
 * @param pid A pid, or `"self"` (the default).
 * @returns The totals.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 * @throws {MemkitError} `ENOENT` on a kernel without smaps_rollup (before
 *   Linux 4.14), when the process exists.
 *
 * @example Totals of this process
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/smaps_rollup
 * import { readSmapsRollup } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const total = readSmapsRollup("self");
 * assert(total.rss >= total.privateDirty && total.fields.Pss_Anon !== undefined);
 * ```
 */
export function readSmapsRollup(pid: ProcessId = "self"): SmapsRollup {
  const [block] = parseSmaps(readProc(pid, "smapsRollup"));
  if (block === undefined) throw noAddressSpace(pid, "smapsRollup", "read");
  const { start, end } = block;
  const rollup: SmapsRollup = { start, end, ...emptyCounters() };
  for (const key of Object.keys(rollup) as (keyof SmapsRollup)[]) {
    if (key !== "start" && key !== "end") {
      (rollup as unknown as Record<string, unknown>)[key] = block[key];
    }
  }
  return rollup;
}

/** Options of {@linkcode findMapping}. */
export interface FindMappingOptions {
  /**
   * `"auto"` (default): the `PROCMAP_QUERY` ioctl where the kernel has it
   * (6.11+), else the text of maps. `"query"` or `"text"` force one
   * (`"query"` on an older kernel: `MemkitError` `ENOTTY`, naming the ioctl).
   */
  method?: "auto" | "query" | "text";
}

let queryMissing = false;
const queryOut = new BigUint64Array(9);
const queryName = new Uint8Array(4096 + 64);

function fromQuery(out: BigUint64Array, rawName: string): MapsEntry {
  const [start, end, flags, , offset, inode, major, minor] = out;
  const f = Number(flags);
  const perms = `${f & 1 ? "r" : "-"}${f & 2 ? "w" : "-"}${f & 4 ? "x" : "-"}${f & 8 ? "s" : "p"}`;
  let path = rawName;
  let deleted = false;
  if (path.endsWith(DELETED)) {
    deleted = true;
    path = path.slice(0, -DELETED.length);
  }
  const { kind, name } = kindOf(path, Number(inode), deleted);
  const hex2 = (n: bigint) => n.toString(16).padStart(2, "0");
  const entry: MapsEntry = {
    start,
    end,
    size: Number(end - start),
    perms,
    read: (f & 1) !== 0,
    write: (f & 2) !== 0,
    exec: (f & 4) !== 0,
    shared: (f & 8) !== 0,
    offset,
    device: `${hex2(major)}:${hex2(minor)}`,
    major: Number(major),
    minor: Number(minor),
    inode: Number(inode),
    path,
    deleted,
    kind,
  };
  if (name !== undefined) entry.name = name;
  return entry;
}

/**
 * The mapping that contains `address` in a process, or `null` when none
 * does. Uses the `PROCMAP_QUERY` ioctl (Linux 6.11+; one system call, no
 * text) where the kernel has it, else parses `/proc/<pid>/maps`; both give
 * the same entry.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/maps` (as for
 * {@linkcode readMaps}).
 *
 * @param address Any address (bigint, or a non-negative safe integer).
 * @param pid A pid, or `"self"` (the default).
 * @param options Which method to use.
 * @returns The entry, with its permissions, or `null`.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 *
 * @example The permissions of a memfd mapping
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/maps
 * import { findMapping, MemFd } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("find-me", { size: 8192 });
 * using m = fd.map({ access: "r" });
 * const entry = findMapping(m.address + 4097n)!;
 * assertEquals([entry.start, entry.perms, entry.kind, entry.name], [m.address, "r--s", "memfd", "find-me"]);
 * assertEquals(findMapping(0n), null);
 * ```
 */
export function findMapping(
  address: bigint | number,
  pid: ProcessId = "self",
  options?: FindMappingOptions,
): MapsEntry | null {
  const opts = readOptions(options, "options", ["method"] as const);
  const addr = toAddress(address);
  const method = opts.method ?? "auto";
  if (method !== "auto" && method !== "query" && method !== "text") {
    throw new TypeError(
      `Cannot use method "${show(method)}": expected "auto", "query" or "text"`,
    );
  }
  const native = nativePid(pid);
  if (method === "query" || (method === "auto" && !queryMissing)) {
    gateProc("maps", pid);
    const ret = lib().mk_proc_query(native, addr, 0, queryOut, queryName, queryName.length);
    if (ret >= 0n) {
      const len = Number(queryOut[8]);
      return fromQuery(queryOut, decoder.decode(queryName.subarray(0, len)));
    }
    const errno = Number(-ret);
    // ENOENT: no mapping there (a missing process is ESRCH). The query sees
    // VMAs only, not the vsyscall page above user space: the text shows it.
    if (errno === ERRNO.ENOENT && (addr < 1n << 63n || method === "query")) return null;
    if (errno !== ERRNO.ENOENT) {
      if (errno !== ERRNO.ENOTTY || method === "query") {
        throw procError(errno, pid, "maps", "query");
      }
      queryMissing = true;
    }
  }
  for (const entry of readMaps(pid)) {
    if (entry.start <= addr && addr < entry.end) return entry;
    if (entry.start > addr) break;
  }
  return null;
}
