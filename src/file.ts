/**
 * `mapFile`: mapping a regular file, gated on Deno's file permissions.
 *
 * @module
 */

import { readOptions } from "./_args.ts";
import { check } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { aligned, cString, inRange, MAX_BYTES, window } from "./_validate.ts";
import { createMapping, type Mapping, toAccess } from "./mapping.ts";
import { requirePermissions } from "./permissions.ts";

/** Options of {@linkcode mapFile}. */
export interface MapFileOptions {
  /** `"r"` (default) or `"rw"` (writes reach the file: `MAP_SHARED`). */
  access?: "r" | "rw";
  /** Where the mapping starts in the file: a multiple of the page size. Default 0. */
  offset?: number;
  /** How many bytes: a multiple of the page size, or up to the end of the file. Default: to the end. */
  length?: number;
}

/**
 * Maps a regular file into memory (`mmap MAP_SHARED`), zero-copy.
 *
 * Requires `--allow-ffi` and `--allow-read` for `path`, and also
 * `--allow-write` for `path` when `access` is `"rw"`. The permissions are
 * checked before the native side opens anything; a missing one is
 * `Deno.errors.NotCapable` in Deno's own words.
 *
 * The one hazard memkit cannot remove: if another process truncates the file
 * while it is mapped, touching the pages past the new end raises SIGBUS and
 * kills this process. memkit checks the size when it maps, and never
 * truncates a mapped file itself, but cannot stop others. Map files that no
 * one else shrinks, or use a sealed `MemFd` for memory shared with others.
 *
 * @param path The file to map.
 * @param options The access and the window.
 * @returns The mapping.
 * @throws {Deno.errors.NotCapable} When a permission is missing.
 * @throws {MemkitError} When the file cannot be opened (`ENOENT`, `EACCES`),
 * or is not a regular file (`ENODEV`).
 *
 * @example
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/etc/hostname --v8-flags=--js-immutable-arraybuffer
 * import { mapFile } from "@memkit/memkit";
 *
 * using m = mapFile("/etc/hostname");
 * console.log(new TextDecoder().decode(m.bytes()));
 * ```
 */
export function mapFile(path: string, options?: MapFileOptions): Mapping {
  const opts = readOptions(options, "options", ["offset", "length", "access"] as const);
  const cpath = cString(path, "path");
  if (path === "") throw new TypeError('Cannot map "": expected a file path');
  const access = toAccess(opts.access ?? "r", ["r", "rw"]);
  aligned(opts.offset ?? 0, "offset", pageSize());
  if (opts.length !== undefined) inRange(opts.length, "length", 1, MAX_BYTES);
  requirePermissions(access === "rw" ? "mapFileWrite" : "mapFile", path);
  const fd = check(
    lib().mk_file_open(cpath, access === "rw" ? MK.FILE_WRITE : 0),
    "open",
    { path, hints: { ENODEV: "not a regular file" } },
  );
  try {
    const size = check(lib().mk_core_fd_size(fd), "stat", { path });
    const { offset, length } = window(
      opts.offset,
      opts.length,
      size,
      pageSize(),
      `"${path}"`,
    );
    const prot = access === "rw" ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    const ret = lib().mk_map_fd(fd, BigInt(offset), BigInt(length), prot);
    if (ret < 0n) check(ret, "map", { path });
    return createMapping({
      address: ret,
      length,
      access,
      maxAccess: access,
      name: path,
      pieces: [{ source: {}, offset, at: 0, length }],
    });
  } finally {
    lib().mk_core_close(fd);
  }
}
