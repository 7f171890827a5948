/**
 * How every memkit subcommand ends: its output written, or an error reported
 * as one line on stderr with the exit code (1 failure, 2 bad arguments, 3
 * missing permission).
 *
 * @module
 */

import { MemkitError } from "../ffi/errors.ts";
import { UsageError } from "./_args.ts";
import { OutputClosed, stdout } from "./_out.ts";

/**
 * Prints `e` as `memkit: <name> (<code>): <message>` and returns the exit code,
 * after what the command had written to stdout; a {@linkcode UsageError} as
 * `memkit: <message>` and a line naming the help to read. A reader of stdout that went
 * away ({@linkcode OutputClosed}) is no error: nothing is printed, and the
 * code is 0.
 *
 * @param e What was thrown.
 * @returns 3 for a missing permission, 2 for bad arguments, 0 when stdout's
 * reader went away, 1 otherwise.
 *
 * @example A RangeError is exit code 2
 * ```ts
 * import { fail } from "./_fail.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(fail(new RangeError("Cannot use length \"0\"")), 2);
 * ```
 */
export function fail(e: unknown): number {
  if (e instanceof OutputClosed) return 0;
  try {
    stdout.flush(); // what the command printed before it failed, first
  } catch {
    // stdout itself failing: the error below is the one to report
  }
  if (e instanceof UsageError) {
    console.error(`memkit: ${e.message}\n${e.hint}`);
    return 2;
  }
  const err = e as Error;
  const code = e instanceof MemkitError ? ` (${e.code})` : "";
  console.error(`memkit: ${err.name}${code}: ${err.message}`);
  if (e instanceof Deno.errors.NotCapable) return 3;
  return e instanceof TypeError || e instanceof RangeError ? 2 : 1;
}

/**
 * Runs a command's `body`, then writes its output: the exit code `body`
 * returns, or {@linkcode fail}'s for what it threw.
 *
 * @param body The command.
 * @returns The exit code.
 *
 * @example The code returned, or the error's
 * ```ts
 * import { runCommand } from "./_fail.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(runCommand(() => 0), 0);
 * assertEquals(runCommand(() => { throw new TypeError("Missing the pid") }), 2);
 * ```
 */
export function runCommand(body: () => number): number {
  try {
    const code = body();
    stdout.flush();
    return code;
  } catch (e) {
    return fail(e);
  }
}
