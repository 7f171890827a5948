/**
 * `mapDevice`: mapping a character device, or a debugfs or sysfs file whose
 * driver implements `mmap`, gated on Deno's file permissions.
 *
 * @module
 */

import { readOptions } from "./_args.ts";
import { pageSize } from "../ffi/loader.ts";
import { toAccess } from "./_access.ts";
import { closeDevice, mapOpenDevice, openDevice } from "./_device.ts";
import { aligned, cString, inRange, MAX_BYTES } from "./_validate.ts";
import type { Mapping } from "./mapping.ts";

/** Options of {@linkcode mapDevice}. */
export interface MapDeviceOptions {
  /** `"r"` (default) or `"rw"` (`MAP_SHARED`: writes reach the driver's memory). */
  access?: "r" | "rw";
  /** Where the mapping starts (the mmap offset the driver reads): a multiple of the page size. Default 0. */
  offset?: number;
  /**
   * How many bytes (required: devices report no size). The kernel maps whole
   * pages; the mapping's views cover exactly `length` bytes.
   */
  length: number;
}

/**
 * Maps a character device, or a file of debugfs, sysfs or tracefs whose
 * driver implements `mmap` (`MAP_SHARED`), zero-copy, as a
 * {@linkcode Mapping} with the same view rules as every other: a read-only
 * mapping's views are immutable (a write is a TypeError, never a fault),
 * `close()` detaches the writable ones.
 *
 * Requires `--allow-ffi` and `--allow-read` for `path`, and also
 * `--allow-write` for `path` when `access` is `"rw"`, checked before
 * anything is opened; the path checked is the path opened (made absolute,
 * `.` and `..` collapsed, as for {@linkcode mapFile}), and a symlink's
 * target needs the same permissions. What memkit cannot check for you: the
 * driver decides what its pages are and what touching them does.
 *
 * @param path The device or file.
 * @param options The window (`offset`, `length`) and the access.
 * @returns The mapping.
 * @throws {TypeError} For a bad path, access or missing length, {@linkcode RangeError}
 * for an offset that is not a page multiple or a length out of range: before anything is opened.
 * @throws {Deno.errors.NotCapable} When a permission is missing.
 * @throws {MemkitError} Each with the reason: `ENODEV` (a regular file:
 * use `mapFile()`; or a driver without mmap, such as `/dev/null`), `EISDIR`,
 * `EACCES` (the file's mode: debugfs is root's), `EPERM` (a driver that
 * refuses a writable mapping of a read-only page), `EINVAL` (an offset or
 * length the driver does not map), `ENOENT`.
 *
 * @example Zeros from /dev/zero
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/zero --v8-flags=--js-immutable-arraybuffer
 * import { mapDevice } from "@memkit/memkit";
 *
 * using m = mapDevice("/dev/zero", { length: 4096 });
 * if (m.bytes().some((b) => b !== 0)) throw new Error("not zeros");
 * ```
 *
 * @example Nothing is opened without the permission
 * ```ts
 * import { mapDevice } from "@memkit/memkit";
 * import { assertThrows } from "@std/assert";
 *
 * // The doc tests run without --allow-read for /dev/zero.
 * assertThrows(() => mapDevice("/dev/zero", { length: 4096 }), Deno.errors.NotCapable);
 * ```
 */
export function mapDevice(path: string, options: MapDeviceOptions): Mapping {
  cString(path, "path");
  if (path === "") throw new TypeError('Cannot map "": expected a device path');
  if (options === undefined) {
    throw new TypeError(`Cannot map "${path}": expected options with a length`);
  }
  const opts = readOptions(options, "options", ["offset", "length", "access"] as const);
  const access = toAccess(opts.access ?? "r", ["r", "rw"]) as "r" | "rw";
  const offset = aligned(opts.offset ?? 0, "offset", pageSize());
  if (opts.length === undefined) {
    throw new TypeError(`Cannot map "${path}": expected a length (devices report no size)`);
  }
  const length = inRange(opts.length, "length", 1, MAX_BYTES);
  if (offset + length > MAX_BYTES) {
    throw new RangeError(`Cannot map ${length} bytes at offset ${offset}: beyond 2^47`);
  }
  const dev = openDevice(path, access === "rw");
  try {
    return mapOpenDevice(dev, offset, length, access);
  } finally {
    closeDevice(dev);
  }
}
