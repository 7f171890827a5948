/**
 * How every memkit subcommand reports an error: one line on stderr, and the
 * exit code (1 failure, 2 bad arguments, 3 missing permission).
 *
 * @module
 */

import { MemkitError } from "../mod.ts";

/**
 * Prints `e` as `memkit: <name> (<code>): <message>` and returns the exit code.
 *
 * @param e What was thrown.
 * @returns 3 for a missing permission, 2 for bad arguments, 1 otherwise.
 *
 * @example
 * ```ts
 * import { fail } from "./_fail.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(fail(new RangeError("Cannot use length \"0\"")), 2);
 * ```
 */
export function fail(e: unknown): number {
  const err = e as Error;
  const code = e instanceof MemkitError ? ` (${e.code})` : "";
  console.error(`memkit: ${err.name}${code}: ${err.message}`);
  if (e instanceof Deno.errors.NotCapable) return 3;
  return e instanceof TypeError || e instanceof RangeError ? 2 : 1;
}
