// Shared by the introspection modules: which process, the permission gate
// for its /proc files, and the errors a user expects from them.

import { show } from "./_args.ts";
import { ERRNO, MemkitError } from "../ffi/errors.ts";
import { bind } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { type Operation, queryPermission, requirePermissions } from "./permissions.ts";

// The introspection modules take hex from here too (its one definition is in _args.ts).
export { hex } from "./_args.ts";

/** A process: its pid, or `"self"` for the calling process. */
export type ProcessId = number | "self";

/** The largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit). */
const PID_MAX = 4194304;

/** The file each /proc operation reads, for messages. */
const FILES: Partial<Record<Operation, string>> = {
  maps: "maps",
  smaps: "smaps",
  smapsRollup: "smaps_rollup",
  pagemap: "pagemap",
  processMemory: "mem",
};

/** Checks a pid argument; returns the pid the native side takes (0 for "self"). */
export function nativePid(pid: unknown): number {
  if (pid === "self") return 0;
  if (typeof pid !== "number" || !Number.isInteger(pid)) {
    throw new TypeError(`Cannot use pid "${show(pid)}": expected a positive integer or "self"`);
  }
  if (pid < 1 || pid > PID_MAX) {
    throw new RangeError(`Cannot use pid "${pid}": expected 1 to ${PID_MAX}, or "self"`);
  }
  return pid;
}

/** `/proc/self/<file>` or `/proc/<pid>/<file>`. */
export function procPath(pid: ProcessId, op: Operation): string {
  return `/proc/${pid}/${FILES[op]}`;
}

function readState(path: string): Deno.PermissionState {
  return queryPermission({ name: "read", path });
}

/**
 * The permission gate for a /proc file of `pid`: the exact path form the
 * caller used (`/proc/self/maps` for `"self"`, `/proc/<pid>/maps` for a
 * number). For this process's own pid the other form is accepted too, since
 * both name the same file; that alternative is only queried, never prompted.
 */
export function gateProc(op: Operation, pid: ProcessId): void {
  const target = String(pid);
  const own = pid === "self" || pid === Deno.pid;
  if (own) {
    // Both forms name the same file: an explicit deny of either one wins;
    // a grant of the other form stands in only where the named one would
    // prompt (never where it is denied).
    const other = pid === "self" ? String(Deno.pid) : "self";
    const named = readState(`/proc/${target}/${FILES[op]}`);
    const alias = readState(`/proc/${other}/${FILES[op]}`);
    if (named !== "denied" && alias === "denied") {
      requirePermissions(op, other); // throws NotCapable naming the denied path
    }
    if (named === "granted" || (named === "prompt" && alias === "granted")) {
      requirePermissions("load");
      return;
    }
  }
  requirePermissions(op, target);
}

/** The /proc files newer than the oldest kernel memkit runs on: the Linux that added each. */
const ADDED: Partial<Record<Operation, string>> = { smapsRollup: "4.14" };

/**
 * The error for a failed /proc read: NotFound for a missing process, else
 * MemkitError. `pidExists` tells a missing file that a kernel added late
 * (smaps_rollup) from a missing process: asked only for such a file, it
 * answers whether the process exists (`undefined`: cannot tell, taken as
 * missing).
 */
export function procError(
  errno: number,
  pid: ProcessId,
  op: Operation,
  verb: string,
  pidExists?: () => boolean | undefined,
): Error {
  const path = procPath(pid, op);
  const added = ADDED[op];
  if (errno === ERRNO.ENOENT && added !== undefined && pidExists?.() === true) {
    return new MemkitError(errno, verb, {
      path,
      hint: `this kernel lacks /proc/<pid>/${FILES[op]} (Linux ${added}); ` +
        `process ${pid} exists (its maps opens)`,
    });
  }
  if (errno === ERRNO.ENOENT) {
    return new Deno.errors.NotFound(
      `Cannot ${verb} "${path}": no process with pid ${pid} (it does not exist or has exited)`,
    );
  }
  if (errno === ERRNO.ESRCH) return noAddressSpace(pid, op, verb);
  const hint = errno === ERRNO.EACCES || errno === ERRNO.EPERM
    ? "reading another user's process needs its uid or CAP_SYS_PTRACE (ptrace read access)"
    : errno === ERRNO.ENOTTY && verb === "query"
    ? 'this kernel lacks the PROCMAP_QUERY ioctl (Linux 6.11); method "auto" or "text" ' +
      "reads the text of maps instead"
    : undefined;
  return new MemkitError(errno, verb, { path, hint });
}

/** The error for a process without an address space (a zombie, or a kernel thread). */
export function noAddressSpace(pid: ProcessId, op: Operation, verb: string): Error {
  return new Deno.errors.NotFound(
    `Cannot ${verb} "${procPath(pid, op)}": process ${pid} has no address space ` +
      "(it has exited, or it is a kernel thread)",
  );
}

/** Checks an address: a non-negative integer below 2^64, as a bigint. */
export function toAddress(value: unknown, what = "address"): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value >= 1n << 64n) {
      throw new RangeError(`Cannot use ${what} "0x${value.toString(16)}": outside 0 to 2^64 - 1`);
    }
    return value;
  }
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  throw new TypeError(
    `Cannot use ${what} "${show(value)}": expected a bigint or a non-negative safe integer`,
  );
}

/** The bytes each read of a /proc text file asks for: whole lines are parsed from it as they come. */
export const LINE_CHUNK = 1 << 16;

let lineBuffer: Uint8Array | undefined;

/**
 * Reads a text file once, from start to end, in chunks, and hands its lines
 * to `feed` as they come: `read(into)` fills `into` from its start with the
 * next bytes and returns how many it stored (fewer than `into.length` only
 * at the end of the file); `feed(buf, b, e)` gets `buf[b, e)`, one or more
 * whole lines, each ending with "\n" (the file's last line may lack it),
 * valid only during the call. A line cut by the end of a chunk is carried
 * over to the next one; a line longer than the buffer grows it. Returns the
 * file's length. `buffer` (a reused one of {@linkcode LINE_CHUNK} bytes by
 * default) is the first buffer to read into.
 */
export function readLines(
  read: (into: Uint8Array) => number,
  feed: (buf: Uint8Array, b: number, e: number) => void,
  buffer?: Uint8Array,
): number {
  let buf = buffer ?? (lineBuffer ??= new Uint8Array(LINE_CHUNK));
  if (buf.length === 0) buf = new Uint8Array(LINE_CHUNK);
  let have = 0; // bytes of a cut line at the start of buf
  let total = 0;
  for (;;) {
    const room = buf.length - have;
    const n = read(have === 0 ? buf : buf.subarray(have));
    if (n < 0 || n > room || !Number.isInteger(n)) {
      throw new RangeError(`Cannot read "${n}" bytes into a buffer of ${room}`);
    }
    total += n;
    const length = have + n;
    if (n < room) {
      // The end of the file.
      if (length > 0) feed(buf, 0, length);
      return total;
    }
    const last = buf.lastIndexOf(0x0a, length - 1);
    if (last < 0) {
      // One line fills the buffer: grow it, keeping what was read.
      const grown = new Uint8Array(buf.length * 2);
      grown.set(buf);
      buf = grown;
      have = length;
      continue;
    }
    feed(buf, 0, last + 1);
    have = length - last - 1;
    if (have > 0) buf.copyWithin(0, last + 1, length);
  }
}

const WHICH = {
  maps: MK.PROC_MAPS,
  smaps: MK.PROC_SMAPS,
  smapsRollup: MK.PROC_SMAPS_ROLLUP,
} as const;
const VERBS = { maps: "read", smaps: "read", smapsRollup: "read" } as const;

/** What reading a /proc text file calls: bound on their own, not the whole table. */
const PROC_SYMBOLS = [
  "mk_proc_open_file",
  "mk_proc_read_next",
  "mk_core_close",
  "mk_proc_query",
  "mk_proc_smaps_rows",
  "mk_proc_smaps_format",
  "mk_proc_smaps_sizes",
] as const;

/** The native symbols of reading /proc text files (and of `findMapping`). */
export function procSymbols(): ReturnType<typeof bind<(typeof PROC_SYMBOLS)[number]>> {
  return bind(PROC_SYMBOLS);
}

/** What {@linkcode readProc} hands the text to: whole lines, then the end. */
export interface LineParser {
  /** Parses the whole lines buf[b, e). */
  feed(buf: Uint8Array, b: number, e: number): void;
  /** The end of the file. */
  finish(): void;
}

/**
 * Reads /proc/<pid>/<file> once, from start to end, through the native side
 * and hands its lines to `parser` as they come: the text is never held whole.
 */
export function readProc(
  pid: ProcessId,
  op: keyof typeof WHICH,
  parser: LineParser,
): void {
  const native = nativePid(pid);
  gateProc(op, pid);
  const symbols = procSymbols();
  const fail = (ret: bigint) =>
    procError(Number(-ret), pid, op, VERBS[op], () => pidExists(pid, native));
  const opened = symbols.mk_proc_open_file(native, WHICH[op]);
  if (opened < 0n) throw fail(opened);
  const fd = Number(opened);
  let length: number;
  try {
    length = readLines((into) => {
      const ret = symbols.mk_proc_read_next(fd, into, BigInt(into.length));
      if (ret < 0n) throw fail(ret);
      return Number(ret);
    }, (buf, b, e) => parser.feed(buf, b, e));
  } finally {
    symbols.mk_core_close(fd);
  }
  if (length === 0) throw noAddressSpace(pid, op, VERBS[op]);
  parser.finish();
}

let existsOut: BigUint64Array | undefined;

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
  const out = existsOut ??= new BigUint64Array(9);
  const ret = procSymbols().mk_proc_query(native, 0n, 0, out, null, 0);
  return ret !== -BigInt(ERRNO.ESRCH);
}
