// The permission gate for operations that open a path the caller names
// (mapFile, PhysicalMemory.open): the path Deno checks is the path opened.

import { check, MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { cString } from "./_validate.ts";
import {
  absolutePath,
  type Operation,
  requirePermissions,
  requireResolved,
} from "./permissions.ts";

/** PATH_MAX, and the NUL. */
const RESOLVED_CAP = 4097;
const decoder = new TextDecoder();

/** A path looked up by the gate: open it with `cpath` and `pathFd`, then close `pathFd`. */
export interface LookedUp {
  /** The absolute, lexically normalized path that was checked. */
  path: string;
  /** That path as a C string: what the native side opens. */
  cpath: Uint8Array<ArrayBuffer>;
  /** An O_PATH descriptor of the file it named when checked; the caller closes it. */
  pathFd: number;
}

/**
 * Checks `path` for `operation` and looks it up, in this order:
 * 1. makes it absolute and collapses `.`, `..` and repeated slashes, as
 *    Deno's own check does, and checks that string (never the raw one,
 *    which the kernel would resolve differently: a symlink before `..`);
 * 2. looks that same string up with `O_PATH` (nothing is opened: no
 *    driver's open runs, nothing is read);
 * 3. checks the path the kernel resolved it to (symlinks followed): not
 *    denied for a file, granted for a device (`strict`).
 * The native open then takes the checked string and the O_PATH descriptor,
 * and refuses (`ESTALE`) if the path names another file by then.
 *
 * @param hint The hint for a failed lookup, by errno.
 */
export function lookUp(
  operation: Operation,
  path: string,
  strict: boolean,
  hint: (errno: number) => string | undefined,
): LookedUp {
  const absolute = absolutePath(path);
  const cpath = cString(absolute, "path");
  requirePermissions(operation, absolute);
  const resolved = new Uint8Array(RESOLVED_CAP);
  const ret = lib().mk_file_path_open(cpath, resolved, BigInt(RESOLVED_CAP));
  if (ret < 0n) {
    const errno = Number(-ret);
    throw new MemkitError(errno, "open", {
      path: absolute,
      hint: hint(errno) ?? dotDotHint(path, absolute),
    });
  }
  const pathFd = Number(ret);
  try {
    const end = resolved.indexOf(0);
    requireResolved(operation, decoder.decode(resolved.subarray(0, end)), absolute, strict);
  } catch (e) {
    lib().mk_core_close(pathFd);
    throw e;
  }
  return { path: absolute, cpath, pathFd };
}

/** Opens what `lookUp` found with `open`, closing its O_PATH descriptor either way. */
export function openLookedUp(
  looked: LookedUp,
  open: (cpath: Uint8Array<ArrayBuffer>, pathFd: number) => bigint,
): bigint {
  try {
    return open(looked.cpath, looked.pathFd);
  } finally {
    check(lib().mk_core_close(looked.pathFd), "close", { path: looked.path });
  }
}

/** Why a path with `..` may name another file than the kernel would have found. */
function dotDotHint(given: string, absolute: string): string | undefined {
  if (!given.split("/").includes("..")) return undefined;
  return `"${given}" is read as "${absolute}": ".." is resolved before any symlink, ` +
    "as Deno's permission check does";
}

/** The hint for a path that names another file by the time it is opened. */
export const STALE_HINT = "the path named another file when it was checked; try again";
