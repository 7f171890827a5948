/**
 * `memkit doctor`: what this machine, kernel, user and these Deno flags let
 * memkit do, one line per capability: ✓ or ✗, its name, what was found,
 * why it is missing and the fix.
 *
 * ```sh
 * deno run --allow-ffi --allow-read=/proc/self/pagemap cli.ts doctor pagemap
 * deno run cli.ts doctor --permissions
 * ```
 *
 * @module
 */

import { doctor, doctorCheckIds, doctorPermissions, type DoctorResult } from "../src/doctor.ts";
import { parseCommandLine, printPermissions, showHelp } from "./_args.ts";
import { bold, colorEnabled, dim, green, red, yellow } from "./_colors.ts";
import { DOCTOR } from "./_commands.ts";
import type { SchemaId } from "./_json_schemas.ts";
import { runCommand } from "./_fail.ts";
import { stdout } from "./_out.ts";

/** ✓, ✗ or ?, coloured on a terminal only. */
function mark(r: DoctorResult, tty: boolean): string {
  const m = r.ok ? "✓" : r.checked ? "✗" : "?";
  if (!tty) return m;
  return r.ok ? green(m) : r.checked ? red(m) : yellow(m);
}

/**
 * One result as one line: the mark, the id, the summary, then `why:` and
 * `fix:` where there are.
 *
 * @param r The result.
 * @param tty Whether to colour it.
 * @returns The line.
 *
 * @example A failed check as one line
 * ```ts
 * import { doctorLine } from "./doctor.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   doctorLine({ id: "pkey", title: "", ok: false, checked: true, summary: "none", why: "no PKU", fix: "protect()" }, false),
 *   "✗ pkey               none; why: no PKU; fix: protect()",
 * );
 * ```
 */
export function doctorLine(r: DoctorResult, tty: boolean): string {
  const label = (s: string) => (tty ? dim(s) : s);
  const name = r.id.padEnd(18);
  let line = `${mark(r, tty)} ${tty ? bold(name) : name} ${r.summary}`;
  if (r.why !== undefined) line += `; ${label("why:")} ${r.why}`;
  if (r.fix !== undefined) line += `; ${label("fix:")} ${r.fix}`;
  return line;
}

/**
 * Runs `memkit doctor`.
 *
 * @param args The arguments after `doctor`.
 * @returns The exit code.
 *
 * @example Check the memlock limit, exiting non-zero when it is missing
 * ```ts ignore
 * // deno run --allow-ffi cli.ts doctor memlock
 * import { doctorCommand } from "./doctor.ts";
 * Deno.exit(doctorCommand(["memlock"]));
 * ```
 */
export function doctorCommand(args: string[]): number {
  return runCommand(() => {
    const flags = parseCommandLine(DOCTOR, args);
    if (flags.has("help")) return showHelp(DOCTOR);
    const names = flags.positionals;
    // Unknown names are a TypeError (exit 2) before anything is probed.
    const ids = names.length > 0 ? doctorCheckIds(names) : undefined;
    if (flags.has("permissions")) {
      printPermissions(doctorPermissions(ids), "doctor", args);
      return 0;
    }
    const results = doctor(ids === undefined ? undefined : { checks: ids });
    if (flags.has("json")) {
      const schema: SchemaId = "memkit.doctor/1";
      stdout.json({ schema, checks: results });
    } else {
      const tty = colorEnabled();
      for (const r of results) stdout.line(doctorLine(r, tty));
    }
    if (ids === undefined) {
      const library = results[0];
      return library.ok ? 0 : library.needs === undefined ? 1 : 3;
    }
    // Missing, or not checked for want of the library: 1; for want of a flag: 3.
    if (results.some((r) => !r.ok && r.needs === undefined)) return 1;
    return results.some((r) => !r.ok) ? 3 : 0;
  });
}
