// Argument checks shared by every capability: each throws TypeError or
// RangeError with the offending value quoted, before any system call. They
// accept primitives only (see _args.ts) and quote values with show(), which
// runs none of the caller's code.

import { show } from "./_args.ts";
import {
  ArrayBufferPrototypeGetDetached,
  MathCeil,
  NumberIsInteger,
  uncurryThis,
} from "./_primordials.ts";

/** The largest byte count memkit accepts for one mapping (2^47, user space on x86-64). */
export const MAX_BYTES = 2 ** 47;

/** Throws TypeError unless `value` is an integer number. */
export function integer(value: unknown, what: string): number {
  if (typeof value !== "number" || !NumberIsInteger(value)) {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected an integer number`);
  }
  return value;
}

/** An integer in `[min, max]`. */
export function inRange(value: unknown, what: string, min: number, max: number): number {
  const n = integer(value, what);
  if (n < min || n > max) {
    throw new RangeError(`Cannot use ${what} "${n}": expected ${min} to ${max}`);
  }
  return n;
}

/** A non-negative multiple of `page`. */
export function aligned(value: unknown, what: string, page: number): number {
  const n = inRange(value, what, 0, MAX_BYTES);
  if (n % page !== 0) {
    throw new RangeError(`Cannot use ${what} "${n}": not a multiple of the page size (${page})`);
  }
  return n;
}

/** Rounds `n` up to a multiple of `page`. */
export function roundUp(n: number, page: number): number {
  return MathCeil(n / page) * page;
}

/**
 * Checks an `{ offset, length }` window of an object of `size` bytes: the
 * offset page-aligned, the length positive and page-aligned unless the window
 * ends at the end of the object, and the window inside the object.
 */
export function window(
  offset: unknown,
  length: unknown,
  size: number,
  page: number,
  what: string,
): { offset: number; length: number } {
  const off = aligned(offset ?? 0, "offset", page);
  if (off >= size && size > 0 || size === 0) {
    throw new RangeError(
      size === 0
        ? `Cannot map ${what}: it is empty (size 0); resize it first`
        : `Cannot map ${what} at offset "${off}": beyond its size (${size})`,
    );
  }
  const len = length === undefined ? size - off : inRange(length, "length", 1, MAX_BYTES);
  if (off + len > size) {
    throw new RangeError(
      `Cannot map ${len} bytes of ${what} at offset ${off}: beyond its size (${size}); ` +
        "a view past the end would fault (SIGBUS)",
    );
  }
  if (len % page !== 0 && off + len !== size) {
    throw new RangeError(
      `Cannot use length "${len}": not a multiple of the page size (${page}) ` +
        "and not reaching the end of the object",
    );
  }
  return { offset: off, length: len };
}

const encoder = new TextEncoder();
const encode = uncurryThis(TextEncoder.prototype.encode);
const includes = uncurryThis(String.prototype.includes);

/** Encodes a string as a NUL-terminated C string, refusing embedded NULs. */
export function cString(value: unknown, what: string): Uint8Array<ArrayBuffer> {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected a string`);
  }
  if (includes(value, "\0")) {
    throw new TypeError(`Cannot use ${what} "${value.replaceAll("\0", "\\0")}": contains NUL`);
  }
  return encode(encoder, value + "\0");
}

/**
 * `ArrayBuffer.prototype.detached` as it was when memkit loaded: user code
 * that patches the getter cannot make a moved buffer look attached.
 */
export function isDetached(buffer: ArrayBuffer): boolean {
  return ArrayBufferPrototypeGetDetached(buffer);
}
