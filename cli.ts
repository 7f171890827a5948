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

import { EXIT_CODES } from "./cli/_args.ts";
import { stdout } from "./cli/_out.ts";

/** A subcommand: its arguments in, its exit code out. */
type Command = (args: string[]) => number;

/**
 * Every subcommand, one line each: its name, and its module, imported only
 * when that command runs (`memkit maps` loads no physical-memory or tour code).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  tour: () => import("./cli/tour.ts").then((m) => m.tourCommand),
  permissions: () => import("./cli/permissions.ts").then((m) => m.permissionsCommand),
  maps: () => import("./cli/introspect.ts").then((m) => m.mapsCommand),
  pagemap: () => import("./cli/introspect.ts").then((m) => m.pagemapCommand),
  phys: () => import("./cli/phys.ts").then((m) => m.physCommand),
  shm: () => import("./cli/shm.ts").then((m) => m.shmCommand),
  doctor: () => import("./cli/doctor.ts").then((m) => m.doctorCommand),
};

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

/** `a, b or c`. */
const either = (names: string[]): string =>
  names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;

/**
 * Runs the `memkit` command with `args`.
 *
 * @param args The command-line arguments, without the program name.
 * @returns The exit code, once everything the command printed is written.
 *
 * @example Print the flags an operation needs
 * ```ts ignore
 * // deno run --allow-ffi cli.ts permissions maps self
 * import { main } from "@memkit/memkit/cli";
 * Deno.exit(await main(["permissions", "maps", "self"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const { command, rest } = splitCommand(args);
  try {
    if (command === undefined) {
      if (rest.length === 0) {
        stdout.line(HELP);
        return 2;
      }
      if (rest.some((a) => a === "-h" || a === "--help")) {
        stdout.line(HELP);
        return 0;
      }
      stdout.flush();
      console.error(
        `memkit: Missing the command: expected ${either(Object.keys(COMMANDS))} ` +
          `(its options, such as "${rest[0]}", may come before or after it)\n\n${HELP}`,
      );
      return 2;
    }
    if (!Object.hasOwn(COMMANDS, command)) {
      console.error(`memkit: Unknown command "${command}"\n\n${HELP}`);
      return 2;
    }
    const run = await COMMANDS[command]();
    return run(rest);
  } finally {
    stdout.flush();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
