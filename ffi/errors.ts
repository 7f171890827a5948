/**
 * The error memkit raises when a system call fails, and the one helper that
 * turns a native `-errno` result into it.
 *
 * @module
 */

/**
 * Linux errno values memkit names: `[code, message]` as glibc's strerror
 * (tests/errors_test.ts checks each against <errno.h> and glibc).
 */
const TABLE = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  5: ["EIO", "Input/output error"],
  6: ["ENXIO", "No such device or address"],
  7: ["E2BIG", "Argument list too long"],
  8: ["ENOEXEC", "Exec format error"],
  9: ["EBADF", "Bad file descriptor"],
  10: ["ECHILD", "No child processes"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  14: ["EFAULT", "Bad address"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  18: ["EXDEV", "Invalid cross-device link"],
  19: ["ENODEV", "No such device"],
  20: ["ENOTDIR", "Not a directory"],
  21: ["EISDIR", "Is a directory"],
  22: ["EINVAL", "Invalid argument"],
  23: ["ENFILE", "Too many open files in system"],
  24: ["EMFILE", "Too many open files"],
  25: ["ENOTTY", "Inappropriate ioctl for device"],
  26: ["ETXTBSY", "Text file busy"],
  27: ["EFBIG", "File too large"],
  28: ["ENOSPC", "No space left on device"],
  29: ["ESPIPE", "Illegal seek"],
  30: ["EROFS", "Read-only file system"],
  31: ["EMLINK", "Too many links"],
  32: ["EPIPE", "Broken pipe"],
  34: ["ERANGE", "Numerical result out of range"],
  35: ["EDEADLK", "Resource deadlock avoided"],
  36: ["ENAMETOOLONG", "File name too long"],
  37: ["ENOLCK", "No locks available"],
  38: ["ENOSYS", "Function not implemented"],
  40: ["ELOOP", "Too many levels of symbolic links"],
  75: ["EOVERFLOW", "Value too large for defined data type"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  110: ["ETIMEDOUT", "Connection timed out"],
  130: ["EOWNERDEAD", "Owner died"],
  131: ["ENOTRECOVERABLE", "State not recoverable"],
  111: ["ECONNREFUSED", "Connection refused"],
  98: ["EADDRINUSE", "Address already in use"],
  88: ["ENOTSOCK", "Socket operation on non-socket"],
  107: ["ENOTCONN", "Transport endpoint is not connected"],
  74: ["EBADMSG", "Bad message"],
  90: ["EMSGSIZE", "Message too long"],
  104: ["ECONNRESET", "Connection reset by peer"],
  71: ["EPROTO", "Protocol error"],
} as const satisfies Record<number, readonly [string, string]>;
const ERRNOS: Readonly<Record<number, readonly [string, string]>> = TABLE;

/** The name of an errno value memkit knows (`"EBUSY"`), a key of {@linkcode ERRNO}. */
export type ErrnoName = (typeof TABLE)[keyof typeof TABLE][0];

/**
 * Errno values by name (`ERRNO.EBUSY` is 16), from the same table as the
 * messages, so that no code compares against a bare number (a name the
 * table lacks is a type error).
 *
 * @example Comparing a native result with an errno by name
 * ```ts
 * import { ERRNO } from "./errors.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(ERRNO.ESRCH, 3);
 * ```
 */
export const ERRNO: Readonly<Record<ErrnoName, number>> = Object.freeze(
  Object.fromEntries(Object.entries(ERRNOS).map(([n, [code]]) => [code, Number(n)])) as Record<
    ErrnoName,
    number
  >,
);

/** What {@linkcode MemkitError} is built from. */
export interface MemkitErrorOptions {
  /** The path the operation touched, where there is one. */
  path?: string;
  /** A sentence appended to the message: what to do about it. */
  hint?: string;
}

/**
 * A system call made by memkit failed. Carries the `errno`, its symbolic
 * `code` (`"EPERM"`), the operation that failed and, where one exists, the
 * path; the message reads like `Cannot map "x": Operation not permitted`.
 *
 * @example Catching a failure by its code
 * ```ts
 * import { MemkitError } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const err = new MemkitError(1, "map", { path: "/dev/mem" });
 * assertEquals(err.code, "EPERM");
 * assertEquals(err.message, 'Cannot map "/dev/mem": Operation not permitted');
 * ```
 */
export class MemkitError extends Error {
  /** The positive errno value, e.g. `1`. */
  readonly errno: number;
  /** The symbolic errno name, e.g. `"EPERM"` (`"E<n>"` when unknown). */
  readonly code: string;
  /** The operation that failed, e.g. `"map"`. */
  readonly operation: string;
  /** The path the operation touched, if any. */
  readonly path?: string;

  /**
   * Builds the error for `errno` raised by `operation`.
   *
   * @param errno The positive errno value.
   * @param operation What memkit was doing, as a verb phrase (`"map"`).
   * @param options The path involved and a hint, if any.
   */
  constructor(errno: number, operation: string, options: MemkitErrorOptions = {}) {
    const [code, text] = ERRNOS[errno] ?? [`E${errno}`, `Unknown error ${errno}`];
    const where = options.path === undefined ? "" : ` "${options.path}"`;
    const hint = options.hint ? `: ${options.hint}` : "";
    super(`Cannot ${operation}${where}: ${text}${hint}`);
    this.name = "MemkitError";
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    if (options.path !== undefined) this.path = options.path;
  }
}

/** The symbolic name of an errno value (`1` is `"EPERM"`). */
export function errnoCode(errno: number): string {
  return ERRNOS[errno]?.[0] ?? `E${errno}`;
}

/**
 * Returns a native result as a number, or throws {@linkcode MemkitError} when
 * it is `-errno`.
 *
 * @param ret The `int64_t` a memkit symbol returned.
 * @param operation What was being done, for the message.
 * @param options The path involved, and per-errno hints.
 */
export function check(
  ret: bigint,
  operation: string,
  options: MemkitErrorOptions & { hints?: Record<string, string> } = {},
): number {
  if (ret >= 0n) return Number(ret);
  const errno = Number(-ret);
  const hint = options.hints?.[errnoCode(errno)] ?? options.hint;
  throw new MemkitError(errno, operation, { path: options.path, hint });
}
