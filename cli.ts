/**
 * The `memkit` command.
 *
 * ```sh
 * deno run --allow-ffi --v8-flags=--js-immutable-arraybuffer cli.ts tour
 * deno run cli.ts permissions mapFile /etc/hostname
 * ```
 *
 * - `tour`: a guided run of each capability on this machine, printing what
 *   it did, the addresses involved and the permissions each step needed;
 *   a step whose permission is missing is skipped with the flag to add.
 * - `permissions [operation] [target]`: the permission table, or the
 *   minimal flags for one operation.
 * - `maps`, `pagemap`, `phys`: see `cli/`; each has its own `--help`.
 *
 * Options may come before or after the command. Exit codes: 0 done, 1 the
 * operation failed, 2 bad arguments, 3 a permission is missing (the tour: 1
 * when a step fails; a step skipped for a missing permission is not one).
 *
 * @module
 */

import { dim } from "@std/fmt/colors";
import { type Operation, permissionFlags, permissionTable } from "./mod.ts";
import { mapsCommand, pagemapCommand } from "./cli/introspect.ts";
import { physCommand } from "./cli/phys.ts";
import { shmCommand } from "./cli/shm.ts";
import { tourCommand } from "./cli/tour.ts";
import { EXIT_CODES, flagsFor, readArgs } from "./cli/_args.ts";
import { fail } from "./cli/_fail.ts";

function permissions(op?: string, target = "<target>"): number {
  if (op === undefined) {
    for (const [name, rule] of Object.entries(permissionTable)) {
      console.log(
        `${name.padEnd(13)} ${permissionFlags(name as Operation, target).join(" ").padEnd(56)} ${
          dim(rule.summary)
        }`,
      );
    }
    return 0;
  }
  console.log(flagsFor(op, target).join(" "));
  return 0;
}

const HELP = `memkit: typed, permission-gated access to Linux memory machinery

Usage:
  memkit tour                                   a guided run of each capability here
  memkit permissions [operation] [target]       the permission table, or one operation's flags
  memkit maps <pid|self> [--json]               a process's mappings with sizes, like pmap -X
  memkit pagemap <pid|self> <start>[-end|+len]  pages, frames and flags of a range, like page-types
  memkit phys read|peek|poke|smbios|ranges ...  physical memory through /dev/mem
  memkit shm ls|create|rm|cat|info ...          POSIX shared memory, and who maps it

  memkit <command> --help                       the command's own help and options

Options (before or after the command):
  -h, --help                                    this help, or the command's
  --json, --permissions, ...                    the command's options (see its --help)

${EXIT_CODES}
  memkit tour exits 1 when a step fails; a step skipped for a missing permission is not a failure.`;

const PERMISSIONS_HELP = `memkit permissions [operation] [target]

Without an operation, the whole permission table; with one, the minimal deno
flags for it on target (a path, a pid or a name). A path with a comma cannot
be named in a deno flag (Deno splits the lists at commas): that is an error.

${EXIT_CODES}`;

/** Options that take a value, so that the value is not taken for the command. */
const VALUE_OPTIONS = new Set(["--device", "--cache"]);

/** The command (the first positional) and every other argument, in order. */
function splitCommand(args: readonly string[]): { command?: string; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      if (i + 1 >= args.length) break;
      return { command: args[i + 1], rest: [...args.slice(0, i), ...args.slice(i + 2)] };
    }
    if (arg.startsWith("-") && arg !== "-") {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    return { command: arg, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
  }
  return { rest: [...args] };
}

/**
 * Runs the `memkit` command with `args`.
 *
 * @param args The command-line arguments, without the program name.
 * @returns The exit code.
 *
 * @example Print the flags an operation needs
 * ```ts ignore
 * // deno run --allow-ffi cli.ts permissions maps self
 * import { main } from "@memkit/memkit/cli";
 * Deno.exit(main(["permissions", "maps", "self"]));
 * ```
 */
export function main(args: string[]): number {
  const { command, rest } = splitCommand(args);
  switch (command) {
    case undefined: {
      if (rest.length === 0) {
        console.log(HELP);
        return 2;
      }
      if (rest.some((a) => a === "-h" || a === "--help")) {
        console.log(HELP);
        return 0;
      }
      console.error(
        `memkit: Missing the command: expected tour, permissions, maps, pagemap or phys ` +
          `(its options, such as "${rest[0]}", may come before or after it)\n\n${HELP}`,
      );
      return 2;
    }
    case "tour":
      return tourCommand(rest);
    case "permissions":
      try {
        const flags = readArgs(rest, "permissions", {});
        if (flags.has("help")) {
          console.log(PERMISSIONS_HELP);
          return 0;
        }
        return permissions(flags.positionals[0], flags.positionals[1]);
      } catch (e) {
        return fail(e);
      }
    case "maps":
      return mapsCommand(rest);
    case "pagemap":
      return pagemapCommand(rest);
    case "phys":
      return physCommand(rest);
    case "shm":
      return shmCommand(rest);
    default:
      console.error(`memkit: Unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

if (import.meta.main) Deno.exit(main(Deno.args));
