/**
 * Pinning and advice: `mlock2`/`munlock` and `madvise` on mappings or page
 * ranges of them, with the advice newer than the system headers probed on
 * the running kernel, and memory compaction on request.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { aligned, inRange, roundUp } from "./_validate.ts";
import type { Access } from "./_access.ts";
import { findRegion, isMappingLike, type Region } from "./_region.ts";
import type { Mapping } from "./mapping.ts";
import type { MappingRange } from "./protect.ts";
import { requirePermissions } from "./permissions.ts";

/**
 * Advice for {@linkcode advise}: each is one `MADV_*` value of `madvise(2)`,
 * chosen for what memkit maps (shared memory: memfds, files, rings):
 *
 * - `"normal"`, `"random"`, `"sequential"`: the expected access pattern
 *   (read-ahead);
 * - `"willneed"`: read the pages in soon;
 * - `"dontneed"`: drop this process's page table entries; the data stays
 *   in the memfd or file, and the next access maps it again (no loss, no
 *   fault);
 * - `"remove"`: free the pages and their data (`MADV_REMOVE` punches a hole
 *   in the memfd or file, for every process that maps it): they read zeros
 *   afterwards. Needs access `"rw"`;
 * - `"populate-read"`, `"populate-write"`: fault the pages in now, readable
 *   or writable (Linux 5.14), so that later accesses take no page fault;
 *   `"populate-write"` needs access `"rw"`;
 * - `"hugepage"`, `"nohugepage"`: allow or forbid transparent huge pages
 *   (for shmem, where `shmem_enabled` is `advise`);
 * - `"cold"`, `"pageout"`: deactivate or reclaim the pages (Linux 5.4);
 * - `"guard"`, `"unguard"`: install or remove guard markers
 *   (`MADV_GUARD_INSTALL`/`REMOVE`, Linux 6.13, 6.15 for shared memory), see
 *   {@linkcode advise}.
 *
 * `MADV_FREE` is not among them: the kernel accepts it for private anonymous
 * memory only, and memkit's mappings are shared.
 */
export type Advice =
  | "normal"
  | "random"
  | "sequential"
  | "willneed"
  | "dontneed"
  | "remove"
  | "populate-read"
  | "populate-write"
  | "hugepage"
  | "nohugepage"
  | "cold"
  | "pageout"
  | "guard"
  | "unguard";

/** What memkit knows of one advice. */
interface AdviceInfo {
  /** The `MADV_*` value. */
  readonly value: number;
  /** Its name in the kernel's headers, for messages. */
  readonly madv: string;
  /** The access every page of the range must have in memkit's record. */
  readonly needs?: "r" | "rw";
  /** The oldest kernel that has it, where that is newer than memkit's oldest (the 6.1 guest). */
  readonly since?: string;
  /** The oldest kernel that has it for shared memory, where that differs. */
  readonly sharedSince?: string;
  /** What an EINVAL means for it. */
  readonly einval?: string;
}

const LOCKED_EINVAL = "the kernel refuses it on locked memory (unlock() first) and on device " +
  "memory such as /dev/mem";

const ADVICE: ReadonlyMap<string, AdviceInfo> = new Map<string, AdviceInfo>([
  ["normal", { value: MK.MADV_NORMAL, madv: "MADV_NORMAL" }],
  ["random", { value: MK.MADV_RANDOM, madv: "MADV_RANDOM" }],
  ["sequential", { value: MK.MADV_SEQUENTIAL, madv: "MADV_SEQUENTIAL" }],
  ["willneed", { value: MK.MADV_WILLNEED, madv: "MADV_WILLNEED" }],
  ["dontneed", { value: MK.MADV_DONTNEED, madv: "MADV_DONTNEED", einval: LOCKED_EINVAL }],
  ["remove", { value: MK.MADV_REMOVE, madv: "MADV_REMOVE", needs: "rw", einval: LOCKED_EINVAL }],
  ["populate-read", {
    value: MK.MADV_POPULATE_READ,
    madv: "MADV_POPULATE_READ",
    needs: "r",
    since: "5.14",
  }],
  ["populate-write", {
    value: MK.MADV_POPULATE_WRITE,
    madv: "MADV_POPULATE_WRITE",
    needs: "rw",
    since: "5.14",
  }],
  ["hugepage", {
    value: MK.MADV_HUGEPAGE,
    madv: "MADV_HUGEPAGE",
    einval: "the kernel was built without transparent huge pages, or refuses them for this memory",
  }],
  ["nohugepage", { value: MK.MADV_NOHUGEPAGE, madv: "MADV_NOHUGEPAGE" }],
  ["cold", { value: MK.MADV_COLD, madv: "MADV_COLD", einval: LOCKED_EINVAL }],
  ["pageout", { value: MK.MADV_PAGEOUT, madv: "MADV_PAGEOUT", einval: LOCKED_EINVAL }],
  ["guard", {
    value: MK.MADV_GUARD_INSTALL,
    madv: "MADV_GUARD_INSTALL",
    since: "6.13",
    sharedSince: "6.15",
    einval: LOCKED_EINVAL,
  }],
  ["unguard", {
    value: MK.MADV_GUARD_REMOVE,
    madv: "MADV_GUARD_REMOVE",
    since: "6.13",
    sharedSince: "6.15",
  }],
]);

/** Advice memkit leaves out on purpose, and why. */
const REFUSED: ReadonlyMap<string, string> = new Map([
  [
    "free",
    "MADV_FREE applies to private anonymous memory only, and memkit's mappings are shared; " +
    'use "dontneed" (drops this process\'s page table entries, keeps the data) or "remove" ' +
    "(frees the pages and their data)",
  ],
]);

// Captured at load: user code that patches Map.prototype cannot change the lookups.
const mapGet: <V>(map: ReadonlyMap<string, V>, key: string) => V | undefined = (() => {
  const get = Map.prototype.get;
  const apply = Reflect.apply;
  return <V>(map: ReadonlyMap<string, V>, key: string) => apply(get, map, [key]) as V | undefined;
})();

function toAdvice(value: unknown): AdviceInfo {
  if (typeof value === "string") {
    const info = mapGet(ADVICE, value);
    if (info !== undefined) return info;
    const why = mapGet(REFUSED, value);
    if (why !== undefined) throw new TypeError(`Cannot use advice "${value}": ${why}`);
  }
  const list = [...ADVICE.keys()].map((a) => `"${a}"`).join(", ");
  if (typeof value !== "string") {
    // Not String(value): a String object or a hostile toString() is not advice.
    const type = value === null ? "null" : typeof value;
    throw new TypeError(`Cannot use advice of type "${type}": expected a string, one of ${list}`);
  }
  throw new TypeError(`Cannot use advice "${value}": expected ${list}`);
}

// ---- the range a call works on ----

/** A checked target: the page-aligned range [base + off, base + end) of a live mapping. */
interface Span {
  mapping: Mapping;
  region: Region;
  /** The page-aligned address the mapping's first page starts at. */
  base: bigint;
  /** The first byte of the range, from base: a page multiple. */
  off: number;
  /** The byte after its last page, from base: a page multiple. */
  end: number;
  /** Whether the range is the whole mapping. */
  whole: boolean;
  page: number;
}

function resolve(op: string, target: unknown): Span {
  let mapping: unknown = target;
  let offset: unknown;
  let length: unknown;
  let region = findRegion(target);
  if (region === undefined) {
    // An object made from Mapping.prototype without being one: its getters would throw.
    if (target === null || typeof target !== "object" || isMappingLike(target)) {
      throw new TypeError(`Cannot ${op}: expected a Mapping or { mapping, offset, length }`);
    }
    // Each property read once: a getter cannot change the range after the checks.
    ({ mapping, offset, length } = target as MappingRange);
    region = findRegion(mapping);
    if (region === undefined) {
      throw new TypeError(`Cannot ${op}: expected a Mapping or { mapping, offset, length }`);
    }
  }
  const m = mapping as Mapping;
  if (m.closed) {
    throw new Deno.errors.BadResource(`Cannot ${op}: the mapping of "${m.name}" is closed`);
  }
  const page = pageSize();
  const head = Number(m.address % BigInt(page));
  const span = roundUp(head + m.length, page);
  const base = m.address - BigInt(head);
  if (offset === undefined && length === undefined) {
    return { mapping: m, region, base, off: 0, end: span, whole: true, page };
  }
  if (head !== 0) {
    throw new RangeError(
      `Cannot ${op} part of "${m.name}": its view starts ${head} bytes into a page; ` +
        "use the whole mapping",
    );
  }
  const off = aligned(offset ?? 0, "offset", page);
  if (off >= m.length) {
    throw new RangeError(`Cannot ${op} from offset "${off}": beyond the mapping's length`);
  }
  const len = length === undefined ? span - off : inRange(length, "length", 1, span);
  if (off + len > span || (len % page !== 0 && off + len !== m.length)) {
    throw new RangeError(
      `Cannot ${op} ${len} bytes at offset ${off}: expected page multiples inside the ` +
        `mapping's ${m.length} bytes`,
    );
  }
  const end = roundUp(off + len, page);
  return { mapping: m, region, base, off, end, whole: off === 0 && end === span, page };
}

/** The runs of equal access in [off, end), as memkit records them. */
function accessRuns(s: Span): [number, number, Access][] {
  const { mapping, off, end, page } = s;
  const last = mapping.length - 1;
  if (mapping.access !== "mixed") return [[off, end, mapping.access]];
  const runs: [number, number, Access][] = [];
  for (let a = off; a < end; a += page) {
    const access = mapping.accessAt(Math.min(a, last));
    const run = runs.at(-1);
    if (run && run[2] === access) run[1] = a + page;
    else runs.push([a, a + page, access]);
  }
  return runs;
}

function hasGuards(s: Span): boolean {
  return s.region.guards?.subarray(s.off / s.page, s.end / s.page).includes(1) ?? false;
}

// ---- lock / unlock ----

/** Options of {@linkcode lock}. */
export interface LockOptions {
  /**
   * Lock pages as they are first touched (`MLOCK_ONFAULT`) instead of
   * faulting the whole range in now. Default false.
   */
  onFault?: boolean;
}

const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** "8 MiB" for 8388608: the largest binary unit that divides evenly, else bytes with one decimal. */
function amount(bytes: bigint): string {
  let n = Number(bytes);
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[u]}`;
}

/** The RLIMIT_MEMLOCK sentence of a refused lock. */
function memlockHint(code: string, bytes: number): string {
  const out = new BigUint64Array(2);
  if (lib().mk_advise_memlock_limit(out) < 0n) {
    return "RLIMIT_MEMLOCK (which could not be read) limits what may be locked without " +
      "CAP_IPC_LOCK";
  }
  const [soft, hard] = out;
  const unlimited = 0xffffffffffffffffn;
  const limit = soft === unlimited ? "unlimited" : amount(soft);
  const hardText = hard !== soft
    ? ` (hard limit "${hard === unlimited ? "unlimited" : amount(hard)}")`
    : "";
  const fix = "raise it (ulimit -l, prlimit --memlock, LimitMEMLOCK= in systemd) or run with " +
    "CAP_IPC_LOCK";
  if (code === "EPERM") {
    return `RLIMIT_MEMLOCK is "${limit}"${hardText}, so this process may lock nothing ` +
      `without CAP_IPC_LOCK; ${fix}`;
  }
  const what = code === "EAGAIN" ? "some of its pages could not be locked; " : "";
  return `${what}RLIMIT_MEMLOCK is "${limit}"${hardText}, and locking ${
    amount(BigInt(bytes))
  } more would exceed it (the limit counts every page this process has locked); ${fix}`;
}

/**
 * Locks a mapping, or a page-aligned range of it, in memory (`mlock2`): its
 * pages stay resident (never swapped out or reclaimed) until
 * {@linkcode unlock} or the mapping's `close()`. Without `onFault` every
 * page is faulted in now; with `onFault: true` (`MLOCK_ONFAULT`) pages are
 * locked as they are first touched.
 *
 * Resident is not fixed: the kernel may still move a locked page to another
 * physical frame (compaction, where `vm.compact_unevictable_allowed` is 1,
 * the default; NUMA balancing; memory hot-unplug), so a frame number read
 * from {@linkcode Pagemap} is a snapshot, never a handle.
 *
 * Without `CAP_IPC_LOCK`, `RLIMIT_MEMLOCK` bounds the bytes a process may
 * lock; a refusal names the limit and its value.
 *
 * Requires `--allow-ffi`.
 *
 * @param target A mapping, or `{ mapping, offset, length }` in whole pages.
 * @param options `onFault`: lock pages as they fault in.
 * @throws {MemkitError} `ENOMEM` or `EPERM` when `RLIMIT_MEMLOCK` refuses,
 * `EBUSY` without `onFault` over guard markers (the prefault stops there).
 *
 * @example Lock a mapping and see it in smaps
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/smaps
 * import { lock, MemFd, readSmaps, unlock } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("lock", { size: 4096 });
 * using m = fd.map();
 * lock(m);
 * const entry = readSmaps("self").find((e) => e.start === m.address)!;
 * assertEquals(entry.locked, 4096);
 * unlock(m);
 * ```
 */
export function lock(target: Mapping | MappingRange, options: LockOptions = {}): void {
  if (options === null || typeof options !== "object") {
    throw new TypeError("Cannot lock: expected options { onFault }");
  }
  const onFault: unknown = options.onFault;
  if (onFault !== undefined && typeof onFault !== "boolean") {
    throw new TypeError(`Cannot use onFault "${String(onFault)}": expected a boolean`);
  }
  const s = resolve("lock", target);
  const name = s.mapping.name;
  if (!onFault && hasGuards(s)) {
    throw new MemkitError(ERRNO.EBUSY, "lock", {
      path: name,
      hint: "guard markers are installed in the range and the kernel's prefault stops at " +
        'them; lock it with { onFault: true }, or advise "unguard" first',
    });
  }
  const bytes = s.end - s.off;
  const ret = lib().mk_advise_lock(
    s.base + BigInt(s.off),
    BigInt(bytes),
    onFault ? MK.LOCK_ONFAULT : 0,
  );
  if (ret < 0n) {
    const hint = memlockHint;
    check(ret, "lock", {
      path: name,
      hints: {
        ENOMEM: hint("ENOMEM", bytes),
        EPERM: hint("EPERM", bytes),
        EAGAIN: hint("EAGAIN", bytes),
      },
    });
  }
}

/**
 * Unlocks a mapping, or a page-aligned range of it (`munlock`): its pages
 * may be swapped out and reclaimed again. Unlocking what is not locked does
 * nothing.
 *
 * Requires `--allow-ffi`.
 *
 * @param target A mapping, or `{ mapping, offset, length }` in whole pages.
 *
 * @example Lock the first page on fault, then unlock it
 * ```ts
 * import { lock, MemFd, unlock } from "@memkit/memkit";
 *
 * using fd = MemFd.create("unlock", { size: 2 * 4096 });
 * using m = fd.map();
 * lock({ mapping: m, offset: 0, length: 4096 }, { onFault: true });
 * m.bytes()[0] = 1; // locked now
 * unlock(m);
 * ```
 */
export function unlock(target: Mapping | MappingRange): void {
  const s = resolve("unlock", target);
  const ret = lib().mk_advise_unlock(s.base + BigInt(s.off), BigInt(s.end - s.off));
  if (ret < 0n) check(ret, "unlock", { path: s.mapping.name });
}

// ---- advise ----

const probed = new Map<number, number>();

function probe(info: AdviceInfo): number {
  let bits = probed.get(info.value);
  if (bits === undefined) {
    bits = check(lib().mk_advise_probe(info.value), "probe the kernel for", { path: info.madv });
    probed.set(info.value, bits);
  }
  return bits;
}

/**
 * Whether the running kernel has an advice for the shared memory memkit
 * maps: probed once, on a throwaway page, for the advice newer than Linux
 * 6.1 (`"populate-read"`, `"populate-write"`: 5.14; `"guard"`, `"unguard"`:
 * 6.13, and 6.15 for shared memory); true for the others.
 *
 * Requires `--allow-ffi`.
 *
 * @param advice An {@linkcode Advice}.
 * @returns Whether {@linkcode advise} can use it here.
 *
 * @example Populate where the kernel can, touch the pages otherwise
 * ```ts
 * import { advise, adviceSupported, MemFd } from "@memkit/memkit";
 *
 * using fd = MemFd.create("probe", { size: 4 * 4096 });
 * using m = fd.map();
 * if (adviceSupported("populate-write")) advise(m, "populate-write");
 * else for (let i = 0; i < m.length; i += 4096) m.bytes()[i] = 0;
 * ```
 */
export function adviceSupported(advice: Advice): boolean {
  const info = toAdvice(advice);
  return info.since === undefined || (probe(info) & MK.PROBE_SHARED) !== 0;
}

function kernelRelease(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "osRelease" }).state === "granted") {
      return ` (this kernel is ${Deno.osRelease()})`;
    }
  } catch {
    // Without --allow-sys=osRelease the message names the version needed only.
  }
  return "";
}

function requireSupport(name: string, info: AdviceInfo, path: string): void {
  if (info.since === undefined) return;
  const bits = probe(info);
  if (bits & MK.PROBE_SHARED) return;
  const shared = info.sharedSince
    ? ` (${info.sharedSince} for shared memory, such as memkit's)`
    : "";
  const hint = bits & MK.PROBE_PRIVATE
    ? `this kernel has ${info.madv} for private memory only; shared memory, such as memkit's, ` +
      `needs Linux ${info.sharedSince}${kernelRelease()}`
    : `the kernel lacks ${info.madv}, which needs Linux ${info.since}${shared}${kernelRelease()}`;
  throw new MemkitError(ERRNO.EOPNOTSUPP, `advise "${name}" on`, { path, hint });
}

/**
 * Gives the kernel advice about a mapping, or a page-aligned range of it
 * (`madvise`); {@linkcode Advice} lists each and what it does.
 *
 * No advice can make a memkit view fault:
 * - `"dontneed"` drops only this process's page table entries of shared
 *   memory; the data stays in the memfd and the next access maps it again;
 * - `"remove"` frees the data (the range reads zeros afterwards, for every
 *   process that maps the memfd or file), and nothing faults; it needs
 *   access `"rw"`, since it changes what the memory holds;
 * - `"guard"` installs guard markers (`MADV_GUARD_INSTALL`), which make any
 *   access to those pages fault: memkit first gives the range protection
 *   `"none"` as {@linkcode Mapping.protect} does (writable views are
 *   detached; refused with `EBUSY` while read-only views live), so no view
 *   can reach it, and `protect()` refuses to raise it while the markers are
 *   there. `"unguard"` removes them (the data is still there) and leaves the
 *   protection `"none"`: `protect()` it back afterwards.
 * - `"populate-read"` and `"populate-write"` are refused (TypeError) where
 *   memkit's record says the pages may not be read or written.
 *
 * The advice newer than Linux 6.1 is probed ({@linkcode adviceSupported});
 * on a kernel that lacks it the error names the version it needs.
 *
 * Requires `--allow-ffi`.
 *
 * @param target A mapping, or `{ mapping, offset, length }` in whole pages.
 * @param advice The advice.
 * @throws {TypeError} For an unknown advice, or one the range's protection forbids.
 * @throws {MemkitError} `EOPNOTSUPP` where the kernel lacks the advice,
 * `EINVAL` where it refuses it for this memory (locked, device memory).
 *
 * @example Populate a mapping, then drop its page table entries
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap
 * import { advise, adviceSupported, MemFd, Pagemap } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("advise", { size: 4 * 4096 });
 * using m = fd.map();
 * using pm = Pagemap.open();
 * if (adviceSupported("populate-write")) {
 *   advise(m, "populate-write");
 *   assertEquals(pm.read({ start: m.address, pages: 4 }).present(3), true);
 * }
 * m.bytes()[0] = 7;
 * advise(m, "dontneed");
 * assertEquals(pm.read({ start: m.address, pages: 4 }).present(0), false);
 * assertEquals(m.bytes()[0], 7); // the data stayed in the memfd
 * ```
 *
 * @example A guard page in the middle, without splitting the mapping
 * ```ts
 * import { advise, adviceSupported, MemFd } from "@memkit/memkit";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * using fd = MemFd.create("guard", { size: 3 * 4096 });
 * using m = fd.map();
 * if (adviceSupported("guard")) {
 *   const middle = { mapping: m, offset: 4096, length: 4096 };
 *   advise(middle, "guard");
 *   assertEquals(m.accessAt(4096), "none"); // no view can reach it
 *   assertThrows(() => m.protect("rw")); // EBUSY while the marker is there
 *   advise(middle, "unguard");
 *   m.protect("rw");
 * }
 * ```
 */
export function advise(target: Mapping | MappingRange, advice: Advice): void {
  const info = toAdvice(advice);
  const name = advice as string;
  const s = resolve(`advise "${name}" on`, target);
  const path = s.mapping.name;
  if (s.region.device && (info.value === MK.MADV_DONTNEED || info.value === MK.MADV_REMOVE)) {
    throw new TypeError(
      `Cannot advise "${name}" on "${path}": it is a driver's mapping (mapDevice), whose ` +
        "pages need not come back once dropped (a driver's mmap may have no fault handler: " +
        "the next touch would be SIGBUS)",
    );
  }
  if (info.needs !== undefined) {
    for (const [a, , access] of accessRuns(s)) {
      const ok = info.needs === "rw" ? access === "rw" : access !== "none";
      if (!ok) {
        throw new TypeError(
          `Cannot advise "${name}" on "${path}": its protection is "${access}" at offset ${a}, ` +
            `and "${name}" needs ${info.needs === "rw" ? '"rw"' : "read access"}`,
        );
      }
    }
  }
  requireSupport(name, info, path);
  if (info.value === MK.MADV_GUARD_INSTALL) return guard(s, info, name);
  const ret = lib().mk_advise_range(s.base + BigInt(s.off), BigInt(s.end - s.off), info.value);
  if (ret < 0n) {
    check(ret, `advise "${name}" on`, {
      path,
      hints: {
        ...(info.einval ? { EINVAL: info.einval } : {}),
        EPERM: "the memfd is sealed against writes (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE)",
        EFAULT: "a page could not be faulted in",
      },
    });
  }
  if (info.value === MK.MADV_GUARD_REMOVE && s.region.guards) {
    s.region.guards.fill(0, s.off / s.page, s.end / s.page);
  }
}

/** "guard": the range to "none" through the mapping (views first), then the markers. */
function guard(s: Span, info: AdviceInfo, name: string): void {
  const { mapping, off, end, page } = s;
  const path = mapping.name;
  if (s.base !== mapping.address) {
    throw new RangeError(
      `Cannot advise "${name}" on "${path}": its view does not start at a page boundary`,
    );
  }
  const before = accessRuns(s);
  if (s.whole) mapping.protect("none");
  else mapping.protect("none", { offset: off, length: end - off });
  // Lowering the protection may have moved the mapping (a viewed range goes
  // to the quarantine, see Mapping.protect): the markers go where it is now.
  const region = findRegion(mapping)!;
  const base = mapping.address;
  const ret = lib().mk_advise_range(base + BigInt(off), BigInt(end - off), info.value);
  if (ret < 0n) {
    // Put the protections back (the views detached stay detached: harmless).
    for (const [a, b, access] of before) {
      if (access !== "none") mapping.protect(access, { offset: a, length: b - a });
    }
    check(ret, `advise "${name}" on`, { path, hints: info.einval ? { EINVAL: info.einval } : {} });
  }
  region.guards ??= new Uint8Array(region.viewSpan / page);
  region.guards.fill(1, off / page, end / page);
}

// ---- compaction ----

/**
 * Asks the kernel to compact memory now: writes `1` to
 * `/proc/sys/vm/compact_memory`, which moves movable pages together to make
 * free physical ranges, and returns when it is done. Pages move to other
 * frames, locked ones too where `vm.compact_unevictable_allowed` is 1: what
 * a frame number from {@linkcode Pagemap} is worth afterwards.
 *
 * Requires `--allow-ffi` and `--allow-write=/proc/sys/vm/compact_memory`;
 * the kernel lets only root write it.
 *
 * @throws {MemkitError} `EACCES` when not root; `ENOENT` where the kernel
 * was built without compaction.
 *
 * @example Compact where the flag and root allow it
 * ```ts
 * // deno run --allow-ffi --allow-write=/proc/sys/vm/compact_memory (as root)
 * import { compactMemory, MemkitError } from "@memkit/memkit";
 *
 * try {
 *   compactMemory();
 * } catch (e) {
 *   // Without the flag: NotCapable; as another user than root: EACCES.
 *   if (!(e instanceof Deno.errors.NotCapable || e instanceof MemkitError)) throw e;
 * }
 * ```
 */
export function compactMemory(): void {
  requirePermissions("compactMemory");
  check(lib().mk_advise_compact(), "write", {
    path: "/proc/sys/vm/compact_memory",
    hints: {
      EACCES: "it is writable by root only",
      ENOENT: "the kernel was built without CONFIG_COMPACTION",
    },
  });
}
