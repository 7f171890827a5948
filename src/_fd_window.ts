// Mapping one window of a file or device that the gate checked and opened:
// what mapFile (src/file.ts) and mapDevice (src/_device.ts) share. For
// memkit's own modules; not part of the API.

import { MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { type Access, PROT } from "./_access.ts";
import { createMapping, type Mapping } from "./mapping.ts";

/** One window of an open descriptor, for {@linkcode mapFdWindow}. */
export interface FdWindow {
  fd: number;
  /** Where the window starts in the file: a multiple of the page size. */
  offset: number;
  /** How many bytes to map: a multiple of the page size, at least `length`. */
  span: number;
  /** How many bytes the Mapping shows. */
  length: number;
  /** `"r"` or `"rw"`. */
  access: Access;
  /** The Mapping's name, and the path a refusal names. */
  name: string;
  /** Whether it maps a device (pages a driver serves). */
  device?: true;
  /** The hint for a refused mmap, by errno. */
  hint?: (errno: number) => string | undefined;
}

/**
 * Maps the window shared (`MAP_SHARED`, read-only or read-write as
 * `access`) as a Mapping; a refusal is a MemkitError "Cannot map".
 */
export function mapFdWindow(w: FdWindow): Mapping {
  const ret = lib().mk_map_fd(w.fd, BigInt(w.offset), BigInt(w.span), PROT[w.access]);
  if (ret < 0n) {
    const errno = Number(-ret);
    throw new MemkitError(errno, "map", { path: w.name, hint: w.hint?.(errno) });
  }
  return createMapping({
    address: ret,
    length: w.length,
    access: w.access,
    maxAccess: w.access,
    name: w.name,
    pieces: [{ source: {}, offset: w.offset, at: 0, length: w.length }],
    device: w.device,
  });
}
