/**
 * `memkit permissions`: the permission table, or the minimal deno flags for
 * one operation on one target.
 *
 * ```sh
 * deno run cli.ts permissions
 * deno run cli.ts permissions mapFile /etc/hostname
 * ```
 *
 * @module
 */

import { dim } from "@std/fmt/colors";
import { type Operation, permissionFlags, permissionTable } from "../src/permissions.ts";
import { EXIT_CODES, flagsFor, readArgs } from "./_args.ts";
import { runCommand } from "./_fail.ts";
import { stdout } from "./_out.ts";

const HELP = `memkit permissions [operation] [target]

Without an operation, the whole permission table; with one, the minimal deno
flags for it on target (a path, a pid or a name). A path with a comma cannot
be named in a deno flag (Deno splits the lists at commas): that is an error.

${EXIT_CODES}`;

/**
 * Runs `memkit permissions`.
 *
 * @param args The arguments after `permissions`.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * // deno run cli.ts permissions mapFile /etc/hostname
 * import { permissionsCommand } from "./permissions.ts";
 * Deno.exit(permissionsCommand(["mapFile", "/etc/hostname"]));
 * ```
 */
export function permissionsCommand(args: string[]): number {
  return runCommand(() => {
    const flags = readArgs(args, "permissions", {});
    if (flags.has("help")) {
      stdout.line(HELP);
      return 0;
    }
    const [op, target = "<target>"] = flags.positionals;
    if (op === undefined) {
      for (const [name, rule] of Object.entries(permissionTable)) {
        stdout.line(
          `${name.padEnd(13)} ${permissionFlags(name as Operation, target).join(" ").padEnd(56)} ${
            dim(rule.summary)
          }`,
        );
      }
      return 0;
    }
    stdout.line(flagsFor(op, target).join(" "));
    return 0;
  });
}
