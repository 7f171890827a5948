/**
 * The `memkit` command.
 *
 * ```sh
 * deno run --allow-ffi --v8-flags=--js-immutable-arraybuffer cli.ts tour
 * deno run cli.ts permissions mapFile /etc/hostname
 * deno run cli.ts --version
 * ```
 *
 * - `tour`: a guided run of each capability on this machine, printing what
 *   it did, the addresses involved and the permissions each step needed;
 *   a step whose permission is missing is skipped with the flag to add.
 * - `permissions [operation] [target]`: the permission table, or the
 *   minimal flags for one operation.
 * - `maps`, `pagemap`, `phys`, `shm`: see `cli/`; each has its own `--help`
 *   (`memkit help <command>` prints the same).
 *
 * What each command takes is declared once (`cli/_commands.ts`) and read by
 * one argument layer (`cli/_args.ts`): an unknown option, a surplus argument
 * or a bad value is a usage error on stderr, with a did-you-mean. Options may
 * come before or after the command. Exit codes: 0 done, 1 the operation
 * failed, 2 bad arguments, 3 a permission is missing (the tour: 1 when a step
 * fails; a step skipped for a missing permission is not one).
 *
 * @module
 */

import meta from "./deno.json" with { type: "json" };
import {
  allFlags,
  type CommandSpec,
  didYouMean,
  either,
  ENVIRONMENT,
  EXIT_CODES,
  formatHelp,
  parseCommandLine,
  printPermissions,
  UsageError,
  usageLine,
} from "./cli/_args.ts";
import { COLOR_MODES, type ColorMode, setColorMode } from "./cli/_colors.ts";
import { SPECS } from "./cli/_commands.ts";
import type { SchemaId } from "./cli/_json_schemas.ts";
import { fail } from "./cli/_fail.ts";
import { stdout } from "./cli/_out.ts";

/** memkit's version, from deno.json (imported as a module: no file read, no permission). */
export const VERSION: string = meta.version;

/** A subcommand: its arguments in, its exit code out. */
type Command = (args: string[]) => number;

/**
 * Every subcommand, one line each: its module, imported only when that
 * command runs (`memkit maps` loads no physical-memory or tour code). What
 * each takes is declared in `cli/_commands.ts`.
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

const NAMES = [...Object.keys(COMMANDS), "help"];

/** `memkit --help`: the commands, the options every command takes, environment, exit codes. */
function mainHelp(): string {
  const rows = Object.values(SPECS).map((s) => `  ${s.name.padEnd(12)} ${s.summary}`);
  return `memkit ${VERSION}: typed, permission-gated access to Linux memory machinery

Usage:
  memkit <command> [arguments] [options]
  memkit help <command>          a command's help (the same as memkit <command> --help)

Commands:
${rows.join("\n")}
  help         this help, or a command's

Options (before or after the command; -- ends them):
  --json          print the result as JSON (each command's help says its form)
  --permissions   print the minimal deno flags for this call, and exit
  --color=WHEN    colour: auto (only on a terminal, and not with NO_COLOR), always or never
  -h, --help      this help, or the command's
  --version       print memkit's version

${ENVIRONMENT}

${EXIT_CODES}
  memkit tour exits 1 when a step fails; a step skipped for a missing permission is not a failure.`;
}

/** Options that take a value, of any command, so that the value is not taken for the command. */
const VALUE_OPTIONS = new Set(
  Object.values(SPECS).flatMap((s) => allFlags(s)).filter((f) => f.type === "string").map((f) =>
    `--${f.name}`
  ),
);

/** Options without a value, of any command, and memkit's own. */
const BOOLEAN_OPTIONS = new Set([
  "--version",
  ...Object.values(SPECS).flatMap((s) => allFlags(s)).filter((f) => f.type === "boolean").map((
    f,
  ) => `--${f.name}`),
]);

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

/** The flags before any `--`: what memkit itself looks at. */
function options(args: readonly string[]): string[] {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).filter((a) => a.startsWith("-"));
}

/** Applies the last `--color` of `args`, before anything is printed. */
function applyColor(args: readonly string[]): void {
  const end = args.indexOf("--");
  const flags = end < 0 ? args : args.slice(0, end);
  let mode: string | undefined;
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === "--color") mode = flags[++i];
    else if (flags[i].startsWith("--color=")) mode = flags[i].slice(8);
  }
  if (mode === undefined) return;
  if (!(COLOR_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(
      `Cannot use --color "${mode}": expected ${either(COLOR_MODES)}` +
        (didYouMean(mode, COLOR_MODES) ? `: did you mean ${didYouMean(mode, COLOR_MODES)}?` : ""),
      "",
    );
  }
  setColorMode(mode as ColorMode);
}

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
  try {
    applyColor(args);
    const flags = options(args);
    if (flags.includes("--version")) {
      stdout.line(`memkit ${VERSION}`);
      return 0;
    }
    const help = flags.includes("--help") || flags.includes("-h");
    const { command, rest } = splitCommand(args);
    if (command === undefined) {
      if (help) {
        stdout.line(mainHelp());
        return 0;
      }
      if (rest.length === 0) {
        // Usage, not output: on stderr, and a usage error's exit code.
        console.error(mainHelp());
        return 2;
      }
      const known = [...new Set([...VALUE_OPTIONS, ...BOOLEAN_OPTIONS])];
      for (const arg of flags) {
        const name = arg.replace(/=.*/, "");
        if (known.includes(name) || name === "-h") continue;
        const guess = didYouMean(name, known);
        throw new UsageError(
          `Unknown option "${name}"` + (guess ? `: did you mean ${guess}?` : ""),
          "",
        );
      }
      throw new UsageError(
        `Missing the command: expected ${either(NAMES)} ` +
          `(its options, such as "${rest[0]}", may come before or after it)`,
        "",
      );
    }
    if (command === "help") {
      // `memkit help [command]`: only memkit's own options besides.
      const about = parseCommandLine({
        name: "help",
        summary: "",
        description: "",
        positionals: [{ name: "[command]", description: "a command", optional: true }],
        json: "memkit.help/1: every command (or the one named) with its usage, flags and " +
          "examples (docs/json.md)",
        permissions: "print the flags help needs (none), and exit",
        examples: [],
      }, rest);
      const name = about.positionals[0];
      if (name !== undefined && !Object.hasOwn(SPECS, name)) throw unknownCommand(name);
      if (about.has("permissions")) {
        printPermissions([], "help", rest);
        return 0;
      }
      if (about.has("json")) {
        stdout.json(helpJson(name === undefined ? Object.values(SPECS) : [SPECS[name]]));
        return 0;
      }
      if (name === undefined) {
        stdout.line(mainHelp());
        return 0;
      }
      stdout.line(formatHelp(SPECS[name]));
      return 0;
    }
    if (!Object.hasOwn(COMMANDS, command)) throw unknownCommand(command);
    if (help) {
      // Before the command's code loads: its declaration is all the help needs.
      stdout.line(formatHelp(SPECS[command]));
      return 0;
    }
    const run = await COMMANDS[command]();
    return run(rest);
  } catch (e) {
    return fail(e);
  } finally {
    stdout.flush();
  }
}

/** memkit.help/1: the commands' declarations, as `memkit help --json` prints them. */
function helpJson(specs: readonly CommandSpec[]): unknown {
  const schema: SchemaId = "memkit.help/1";
  return {
    schema,
    version: VERSION,
    commands: specs.map((spec) => ({
      name: spec.name,
      summary: spec.summary,
      usage: usageLine(spec),
      flags: allFlags(spec).map((f) => ({
        name: `--${f.name}`,
        ...(f.short === undefined ? {} : { short: `-${f.short}` }),
        ...(f.value === undefined ? {} : { value: f.value }),
        ...(f.choices === undefined ? {} : { choices: [...f.choices] }),
        ...(f.default === undefined ? {} : { default: f.default }),
        description: f.description,
      })),
      examples: spec.examples.map(([command, what]) => ({ command: `memkit ${command}`, what })),
    })),
  };
}

function unknownCommand(name: string): UsageError {
  const guess = didYouMean(name, NAMES);
  return new UsageError(
    `Unknown command "${name}": expected ${either(NAMES)}` +
      (guess ? `: did you mean ${guess}?` : ""),
    "",
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
