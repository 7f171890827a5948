// The access vocabulary every mapping module shares: the names memkit gives
// page protections, their `PROT_*` bits, and the check that a value is one.

import { MK } from "../ffi/symbols.ts";
import { show } from "./_args.ts";

/**
 * How memory may be accessed: not at all, read-only, read-write, or read and
 * execute (`PROT_NONE`, `PROT_READ`, `PROT_READ | PROT_WRITE`,
 * `PROT_READ | PROT_EXEC`).
 */
export type Access = "none" | "r" | "rw" | "rx";

const ALL_ACCESS: readonly Access[] = Object.freeze(["none", "r", "rw", "rx"] as const);

/** The `PROT_*` bits of each access (no prototype: only these four are keys). */
export const PROT: Readonly<Record<Access, number>> = Object.freeze(
  Object.assign(Object.create(null), {
    none: MK.PROT_NONE,
    r: MK.PROT_READ,
    rw: MK.PROT_READ | MK.PROT_WRITE,
    rx: MK.PROT_READ | MK.PROT_EXEC,
  }),
);

/** The access of `PROT_*` bits, where it is one memkit names. */
export function accessOf(prot: number): Access | undefined {
  for (let i = 0; i < ALL_ACCESS.length; i++) {
    if (PROT[ALL_ACCESS[i]] === prot) return ALL_ACCESS[i];
  }
  return undefined;
}

/**
 * Throws TypeError unless `value` is an {@linkcode Access}: a primitive
 * string (an object that converts to one is refused, never converted).
 */
export function toAccess(value: unknown, allowed: readonly Access[] = ALL_ACCESS): Access {
  if (typeof value === "string") {
    for (let i = 0; i < allowed.length; i++) if (allowed[i] === value) return value as Access;
  }
  let names = "";
  for (let i = 0; i < allowed.length; i++) names += `${i > 0 ? ", " : ""}"${allowed[i]}"`;
  throw new TypeError(`Cannot use access "${show(value)}": expected ${names}`);
}
