/**
 * `mapFile`: mapping a regular file, gated on Deno's file permissions.
 *
 * @module
 */

import { readOptions } from "./_args.ts";
import { check } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { lookUp, openLookedUp, STALE_HINT } from "./_gate.ts";
import { aligned, cString, inRange, MAX_BYTES, window } from "./_validate.ts";
import { toAccess } from "./_access.ts";
import { mapFdWindow } from "./_fd_window.ts";
import type { Mapping } from "./mapping.ts";

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
 * The path checked is the path opened: `path` is made absolute (against
 * `Deno.cwd()`) and `.`, `..` and repeated slashes are collapsed first, as
 * Deno's check does, so `"/a/link/../f"` is `"/a/f"` (the kernel would have
 * followed `link` before `..`). A symlink is followed, as Deno's own file
 * API does, but the file it leads to must not be explicitly denied
 * (`--deny-read`, or `--deny-write` for `"rw"`).
 *
 * The one hazard memkit cannot remove: if another process truncates the file
 * while it is mapped, touching the pages past the new end raises SIGBUS and
 * kills this process. memkit checks the size when it maps, and never
 * truncates a mapped file itself, but cannot stop others. Map files that no
 * one else shrinks, or use a sealed `MemFd` for memory shared with others.
 *
 * The same fault comes from a full filesystem: a store into a hole of a
 * sparse file needs a block. So `"rw"` reserves the blocks of the window
 * when it maps (`fallocate`), and refuses with `ENOSPC` up front; where the
 * filesystem cannot reserve (`EOPNOTSUPP`), a window without holes is
 * mapped and one with holes refused. Reserving allocates the holes for good
 * (the file's size does not change).
 *
 * @param path The file to map.
 * @param options The access and the window.
 * @returns The mapping.
 * @throws {Deno.errors.NotCapable} When a permission is missing.
 * @throws {MemkitError} When the file cannot be opened (`ENOENT`, `EACCES`),
 * is not a regular file (`ENODEV`), names another file by the time it is
 * opened than when it was checked (`ESTALE`), or, for `"rw"`, its blocks
 * cannot be reserved (`ENOSPC`, `EOPNOTSUPP`).
 *
 * @example Map a file read-only
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
  cString(path, "path");
  if (path === "") throw new TypeError('Cannot map "": expected a file path');
  const access = toAccess(opts.access ?? "r", ["r", "rw"]);
  aligned(opts.offset ?? 0, "offset", pageSize());
  if (opts.length !== undefined) inRange(opts.length, "length", 1, MAX_BYTES);
  const looked = lookUp(access === "rw" ? "mapFileWrite" : "mapFile", path, false, () => undefined);
  const name = looked.path;
  const fd = check(
    openLookedUp(
      looked,
      (cpath, pathFd) => lib().mk_file_open(cpath, access === "rw" ? MK.FILE_WRITE : 0, pathFd),
    ),
    "open",
    { path: name, hints: { ENODEV: "not a regular file", ESTALE: STALE_HINT } },
  );
  try {
    const size = check(lib().mk_core_fd_size(fd), "stat", { path: name });
    const { offset, length } = window(
      opts.offset,
      opts.length,
      size,
      pageSize(),
      `"${name}"`,
    );
    if (access === "rw") {
      check(lib().mk_file_reserve(fd, BigInt(offset), BigInt(length)), "reserve blocks of", {
        path: name,
        hints: {
          ENOSPC: "a writable mapping of its holes would fault (SIGBUS) once the filesystem " +
            'is full, so memkit reserves them first; free space, or map it with access "r"',
          EOPNOTSUPP: "its filesystem cannot reserve blocks (fallocate) and the window has " +
            "holes, where a store could fault (SIGBUS); write the holes first, or map it " +
            'with access "r"',
        },
      });
    }
    return mapFdWindow({ fd, offset, span: length, length, access, name });
  } finally {
    lib().mk_core_close(fd);
  }
}
