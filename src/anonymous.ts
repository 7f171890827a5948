/**
 * `mapAnonymous`: shared anonymous memory without a memfd
 * (`MAP_SHARED | MAP_ANONYMOUS`), the cheapest `Mapping` memkit makes.
 *
 * @module
 */

import { check } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { boolean, readOptions, type Snapshot } from "./_args.ts";
import { BigIntCtor, ObjectCreate } from "./_primordials.ts";
import { inRange, MAX_BYTES, roundUp } from "./_validate.ts";
import { PROT, toAccess } from "./_access.ts";
import { createMapping, type Mapping } from "./mapping.ts";
import { mapReusing } from "./_region.ts";

/** Options of {@linkcode mapAnonymous}. */
export interface AnonymousOptions {
  /**
   * The protection to start with: `"rw"` (default), `"r"` or `"none"`.
   * The memory allows `"rw"` whatever this says, so `protect()` can raise it
   * later (a `"none"` reservation made writable page by page, say).
   */
  access?: "none" | "r" | "rw";
  /**
   * `MAP_NORESERVE`: charge nothing against the kernel's commit limit for the
   * size (default false). Without it, under the default overcommit heuristic
   * a mapping larger than RAM and swap together fails with `ENOMEM`, as
   * Python's `mmap(-1, n)` does; with it, such a mapping succeeds and pages
   * are found when written (a write the kernel cannot back then kills the
   * process with SIGBUS or wakes the OOM killer, like an overcommitted memfd).
   */
  noreserve?: boolean;
}

const ACCESS = ["none", "r", "rw"] as const;
/** The defaults, for no options: nothing to read, so no snapshot to make. */
const DEFAULTS = Object.freeze(ObjectCreate(null)) as Snapshot<"access" | "noreserve">;

/**
 * A new mapping of shared anonymous memory (`mmap` with `MAP_SHARED |
 * MAP_ANONYMOUS`): zero-filled memory with no file descriptor, made with
 * one system call and released with one (`munmap`), against the six of a
 * `MemFd.create()` + `map()` + `close()` cycle. The same {@linkcode Mapping}
 * as a memfd's, with the same rules: views are zero-copy and cannot crash
 * the process, `close()` detaches them, and a range that handed out a view
 * goes to the quarantine as private zero pages instead of being unmapped at
 * once. `protect()`, `advise()`, `lock()`, `alias()` (a second address of
 * the same memory, with `mremap`) and `stitch()` work on it as on a memfd's.
 *
 * What it cannot do, for want of a memfd: no file descriptor to pass to
 * another process (and so no sharing with another process except by
 * `fork`, which Deno does not do), no `map()` of it again from a
 * descriptor, no `resize()` and no seals. The kernel shows it in
 * `/proc/<pid>/maps` as `/dev/zero (deleted)`. The length is rounded up to
 * whole pages in the kernel; the mapping's `length` and views are the bytes
 * asked for.
 *
 * Requires `--allow-ffi`.
 *
 * @param length The length in bytes (1 to 2^47).
 * @param options The access to start with, and `noreserve`.
 * @returns The new mapping, named `anonymous(<length>)`.
 * @throws {MemkitError} `ENOMEM` when the kernel cannot commit the size
 * (see `noreserve`) or the process has no address space left.
 *
 * @example Map, write through a view, close
 * ```ts
 * import { mapAnonymous } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const m = mapAnonymous(1 << 20);
 * const view = m.bytes();
 * view[0] = 1;
 * assertEquals(m.read(0, 2), new Uint8Array([1, 0]));
 * m.close();
 * assertEquals(view[0], undefined); // detached, not a crash
 * ```
 *
 * @example A second address of the same memory
 * ```ts
 * import { alias, mapAnonymous } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using m = mapAnonymous(4096);
 * using again = alias(m);
 * m.bytes()[5] = 9;
 * assertEquals(again.bytes()[5], 9); // shared: one memory, two addresses
 * ```
 */
export function mapAnonymous(length: number, options?: AnonymousOptions): Mapping {
  const opts = options === undefined
    ? DEFAULTS
    : readOptions(options, "options", ["access", "noreserve"] as const);
  const len = inRange(length, "length", 1, MAX_BYTES);
  const access = opts.access === undefined ? "rw" : toAccess(opts.access, ACCESS);
  const noreserve = opts.noreserve === undefined ? false : boolean(opts.noreserve, "noreserve");
  const span = roundUp(len, pageSize());
  const flags = noreserve ? MK.ANON_NORESERVE : 0;
  // Over a range out of the quarantine when one of this span is free (one
  // MAP_FIXED, no munmap to come), else fresh.
  let address = mapReusing(span, -1, 0, PROT[access], flags);
  if (address < 0n) address = lib().mk_map_anonymous(BigIntCtor(span), PROT[access], flags);
  const name = `anonymous(${len})`;
  if (address < 0n) {
    check(address, "map", {
      path: name,
      hints: noreserve ? {} : {
        ENOMEM: "the kernel would not commit that much memory; noreserve: true maps it " +
          "without a commit charge",
      },
    });
  }
  return createMapping({
    address,
    length: len,
    access,
    maxAccess: "rw",
    name,
    pieces: [{ source: {}, offset: 0, at: 0, length: span }],
  });
}
