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

import { type Operation, permissionFlags, permissionTable } from "../src/permissions.ts";
import { flagsFor, parseCommandLine, printPermissions, showHelp } from "./_args.ts";
import { dim } from "./_colors.ts";
import { PERMISSIONS } from "./_commands.ts";
import type { SchemaId } from "./_json_schemas.ts";
import { runCommand } from "./_fail.ts";
import { stdout } from "./_out.ts";

/**
 * Runs `memkit permissions`.
 *
 * @param args The arguments after `permissions`.
 * @returns The exit code.
 *
 * @example Print the flags of one operation
 * ```ts ignore
 * // deno run --no-prompt cli.ts permissions mapFile /etc/hostname
 * import { permissionsCommand } from "./permissions.ts";
 * import { stdout } from "./_out.ts";
 * const code = permissionsCommand(["mapFile", "/etc/hostname"]);
 * stdout.flush();
 * Deno.exit(code);
 * ```
 */
export function permissionsCommand(args: string[]): number {
  return runCommand(() => {
    const flags = parseCommandLine(PERMISSIONS, args);
    if (flags.has("help")) return showHelp(PERMISSIONS);
    if (flags.has("permissions")) {
      printPermissions([], "permissions", args);
      return 0;
    }
    const [op, target = "<target>"] = flags.positionals;
    if (op === undefined) {
      if (flags.has("json")) {
        const schema: SchemaId = "memkit.permissions/1";
        stdout.json({
          schema,
          operations: Object.entries(permissionTable).map(([name, rule]) => ({
            operation: name,
            flags: permissionFlags(name as Operation, target),
            summary: rule.summary,
          })),
        });
        return 0;
      }
      for (const [name, rule] of Object.entries(permissionTable)) {
        stdout.line(
          `${name.padEnd(13)} ${permissionFlags(name as Operation, target).join(" ").padEnd(56)} ${
            dim(rule.summary)
          }`,
        );
      }
      return 0;
    }
    const needs = flagsFor(op, target);
    const schema: SchemaId = "memkit.permissions.operation/1";
    if (flags.has("json")) stdout.json({ schema, operation: op, target, flags: needs });
    else stdout.line(needs.join(" "));
    return 0;
  });
}
