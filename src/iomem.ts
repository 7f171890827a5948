/**
 * The physical address space as the kernel lists it (`/proc/iomem`): System
 * RAM, firmware tables, ROM and the ranges drivers claimed.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { requirePermissions } from "./permissions.ts";

/** One range of the physical address space, as `/proc/iomem` lists it. */
export interface PhysicalRange {
  /** The first address (a bigint, as every address memkit returns). */
  start: bigint;
  /** The address after the last one (exclusive): `end - start` is the size. */
  end: bigint;
  /** What is there: `"System RAM"`, `"Reserved"`, `"System ROM"`, a driver's name, ... */
  name: string;
  /** Nesting: 0 for a top-level range, 1 for a range inside it, ... */
  depth: number;
}

const decoder = new TextDecoder();

function slurp(fn: (buf: Uint8Array<ArrayBuffer>, cap: bigint) => bigint, path: string): string {
  for (let cap = 1 << 16; cap <= 1 << 26; cap *= 4) {
    const buf = new Uint8Array(cap);
    const ret = fn(buf, BigInt(cap));
    if (ret === BigInt(-ERRNO.ERANGE)) continue; // grow
    const n = check(ret, "read", { path });
    return decoder.decode(buf.subarray(0, n));
  }
  throw new MemkitError(ERRNO.EFBIG, "read", { path });
}

/**
 * Parses the text of `/proc/iomem`: the kernel's inclusive ends become
 * exclusive ones, addresses bigints (exact above 2^53: 64-bit PCI windows).
 */
export function parseIomem(text: string): PhysicalRange[] {
  const out: PhysicalRange[] = [];
  for (const line of text.split("\n")) {
    const m = /^( *)([0-9a-f]+)-([0-9a-f]+) : (.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt(`0x${m[2]}`),
      end: BigInt(`0x${m[3]}`) + 1n,
      name: m[4],
      depth: m[1].length / 2,
    });
  }
  return out;
}

/**
 * The ranges of the physical address space from `/proc/iomem`: System RAM,
 * Reserved, ROM, ACPI tables, and the ranges drivers claimed, nested.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/iomem` (memkit reads it
 * natively: Deno's own file API would want `--allow-all` for `/proc`).
 * The kernel shows the addresses only to root (`CAP_SYS_ADMIN`); to others
 * it shows zeros, which this refuses with `EACCES` rather than return.
 *
 * @returns Every range, in the kernel's order (a parent before its children).
 * @throws {Deno.errors.NotCapable} Without `--allow-read=/proc/iomem`.
 * @throws {MemkitError} `EACCES` when the kernel hides the addresses.
 *
 * @example System RAM is listed (as root: the kernel hides the addresses from others)
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/proc/iomem (as root)
 * import { physicalRanges } from "@memkit/memkit";
 *
 * const ram = physicalRanges().filter((r) => r.name === "System RAM");
 * console.log(ram.reduce((sum, r) => sum + (r.end - r.start), 0n), "bytes of RAM");
 * ```
 */
export function physicalRanges(): PhysicalRange[] {
  requirePermissions("iomem");
  const text = slurp((b, c) => lib().mk_phys_iomem(b, c), "/proc/iomem");
  const ranges = parseIomem(text);
  if (ranges.length > 0 && ranges.every((r) => r.start === 0n && r.end === 1n)) {
    throw new MemkitError(ERRNO.EACCES, "read", {
      path: "/proc/iomem",
      hint: "the kernel shows its addresses only to root (CAP_SYS_ADMIN); run as root",
    });
  }
  return ranges;
}
