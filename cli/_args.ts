/**
 * The one argument layer of every memkit command: each command declares its
 * flags (name, type, description, default), its positional arguments and its
 * examples (`_commands.ts`); this module reads a command line against that
 * declaration and writes the help from it. An unknown flag, a surplus or
 * missing argument, or a bad value is a {@linkcode UsageError} (exit code 2,
 * on stderr, with a did-you-mean where something close exists). Positionals
 * stay the strings typed (never through a JavaScript number), and one parser
 * reads every address, length and value, exact to the bit as a bigint. Also
 * the minimal-flags report of `--permissions`, which never has colour.
 *
 * @module
 */

import { type Operation, permissionFlags, permissionTable } from "../src/permissions.ts";
import { COLOR_MODES, type ColorMode, setColorMode } from "./_colors.ts";
import { stdout } from "./_out.ts";

// `0x`-hexadecimal, as every memkit command prints addresses: the library's own helper.
export { hex } from "../src/_args.ts";

/** The exit codes every memkit command uses, as its `--help` lists them. */
export const EXIT_CODES = `Exit codes:
  0  done
  1  the operation failed (the message says what the kernel or the device refused)
  2  bad arguments (the message names the one at fault; the command's --help lists the rest)
  3  a permission is missing (the message names the deno flag to add)`;

/** The environment variables memkit reads, as `memkit --help` lists them. */
export const ENVIRONMENT = `Environment:
  MEMKIT_LIB  the libmemkit.so to load instead of the checkout's build/libmemkit.so;
              read only with --allow-env=MEMKIT_LIB (without it, memkit never asks
              and the variable counts as unset)
  XDG_CACHE_HOME, HOME
              where the library built on first use is kept: $XDG_CACHE_HOME/memkit,
              else $HOME/.cache/memkit (read only with --allow-env=HOME,XDG_CACHE_HOME;
              building also needs --allow-run=cc and --allow-write on that directory)
  NO_COLOR    set and not empty: no colour (--color=always still forces it); read by
              Deno at startup, so it needs no permission`;

/** One flag of a command: `--name`, `--name=VALUE` or `--name VALUE`. */
export interface FlagSpec {
  /** Its name, without the dashes (`json`). */
  name: string;
  /** A one-letter alias (`h` for `-h`). */
  short?: string;
  /** `boolean`: no value; `string`: a value, free or one of {@linkcode FlagSpec.choices}. */
  type: "boolean" | "string";
  /** What its value is, in the help (`PATH`). */
  value?: string;
  /** The values it accepts, when only some are. */
  choices?: readonly string[];
  /** Its value when not given, as the help shows it. */
  default?: string;
  /** One line of help. */
  description: string;
}

/** One positional argument of a command. */
export interface PositionalSpec {
  /** Its name as the usage line shows it (`<pid|self>`). */
  name: string;
  /** One line of help. */
  description: string;
  /** Whether it may be left out (`[target]`). */
  optional?: boolean;
  /** Whether it takes every remaining argument (`[check ...]`); the last positional only. */
  rest?: boolean;
}

/** One subcommand (`memkit phys read`): its arguments and its own flags. */
export interface SubcommandSpec {
  /** Its name (`read`). */
  name: string;
  /** One line of help. */
  summary: string;
  /** Its positional arguments, after its name. */
  positionals: readonly PositionalSpec[];
  /** The flags only it takes. */
  flags?: readonly FlagSpec[];
}

/** The declaration of a command: everything its parser and its help need. */
export interface CommandSpec {
  /** Its name (`maps`). */
  name: string;
  /** One line, for `memkit --help`'s list. */
  summary: string;
  /** What it does, a paragraph or two of help. */
  description: string;
  /** Its positional arguments (a command without subcommands). */
  positionals?: readonly PositionalSpec[];
  /** Its subcommands (`phys read`, `shm ls`): the first positional names one. */
  subcommands?: readonly SubcommandSpec[];
  /** Its flags, besides `--json`, `--permissions`, `--color` and `--help`. */
  flags?: readonly FlagSpec[];
  /** What `--json` prints; a string starting "no:" says why there is no JSON form. */
  json: string;
  /** What `--permissions` prints; a string starting "no:" says why there is none. */
  permissions?: string;
  /** Examples: the command line after `memkit`, and what it does. */
  examples: readonly (readonly [string, string])[];
  /** Notes after the exit codes (the tour's). */
  exitNote?: string;
  /** Text after the options (units, caveats). */
  notes?: string;
}

/** Flags every command takes; `--json` and `--permissions` say per command what they print. */
export function commonFlags(spec: CommandSpec): FlagSpec[] {
  return [
    { name: "json", type: "boolean", description: spec.json.replace(/^no: /, "none here: ") },
    {
      name: "permissions",
      type: "boolean",
      description: (spec.permissions ?? "print the minimal deno flags for this call, and exit")
        .replace(/^no: /, "none here: "),
    },
    {
      name: "color",
      type: "string",
      value: "WHEN",
      choices: COLOR_MODES,
      default: "auto",
      description: "colour: auto (only on a terminal, and not with NO_COLOR), always or never",
    },
    { name: "help", short: "h", type: "boolean", description: "this help" },
  ];
}

/**
 * Bad arguments: exit code 2, the message on stderr with a hint at the help.
 *
 * @example A usage error is a TypeError (exit code 2)
 * ```ts
 * import { UsageError } from "./_args.ts";
 * import { assertInstanceOf } from "@std/assert";
 *
 * assertInstanceOf(new UsageError("Unknown option \"--jsn\"", "maps"), TypeError);
 * ```
 */
export class UsageError extends TypeError {
  /** The command whose help lists what it takes (`maps`, or "" for memkit itself). */
  readonly command: string;
  /**
   * A usage error of `memkit <command>`.
   *
   * @param message What is wrong, naming the argument at fault.
   * @param command The command, for the hint at its help.
   */
  constructor(message: string, command: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
  /** The line after the message: where the usage is. */
  get hint(): string {
    return this.command === ""
      ? "Run memkit --help for the commands and options"
      : `Run memkit ${this.command} --help for its arguments and options`;
  }
}

/**
 * The edit distance (insertions, deletions, substitutions, and swaps of
 * two neighbours) between `a` and `b`.
 *
 * @param a One word.
 * @param b The other.
 * @returns How many edits make one the other.
 *
 * @example A typo's distance
 * ```ts
 * import { editDistance } from "./_args.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals([editDistance("jsn", "json"), editDistance("mpas", "maps")], [1, 1]);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word`, when it is close enough to be what was
 * meant (at most 1 edit for a word of up to 4 letters, 2 for a longer one,
 * and fewer edits than letters); a candidate that starts with `word` counts too.
 *
 * @param word What was typed.
 * @param candidates What it could have been.
 * @returns The closest candidate, or undefined.
 *
 * @example The option meant
 * ```ts
 * import { didYouMean } from "./_args.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(didYouMean("--jsn", ["--json", "--brief"]), "--json");
 * assertEquals(didYouMean("--xyz", ["--json", "--brief"]), undefined);
 * ```
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const bare = (s: string) => s.replace(/^-+/, "").toLowerCase();
  const w = bare(word);
  if (w === "") return undefined;
  let best: string | undefined, bestDistance = Infinity;
  for (const c of candidates) {
    const n = editDistance(w, bare(c));
    if (n < bestDistance) [best, bestDistance] = [c, n];
  }
  const limit = Math.min(w.length <= 4 ? 1 : 2, w.length - 1);
  if (best !== undefined && bestDistance <= limit) return best;
  const prefixed = candidates.filter((c) => w.length >= 2 && bare(c).startsWith(w));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

const mean = (guess: string | undefined): string =>
  guess === undefined ? "" : `: did you mean ${guess}?`;

/** A command line read by {@linkcode parseCommandLine}. */
export interface Args {
  /** The subcommand (`read` of `memkit phys read`), for a command that has them. */
  subcommand?: string;
  /** The positionals after the subcommand, exactly as typed. */
  positionals: string[];
  /** Whether boolean flag `name` was given. */
  has(name: string): boolean;
  /** The value of string flag `name`: as given, else its default. */
  value(name: string): string | undefined;
}

/** `a, b or c`. */
export const either = (names: readonly string[]): string =>
  names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;

const dashed = (f: FlagSpec): string => `--${f.name}`;

/** Every flag `spec` knows, its subcommands' included: what the command line is split by. */
export function allFlags(spec: CommandSpec): FlagSpec[] {
  const flags = [...commonFlags(spec), ...(spec.flags ?? [])];
  for (const sub of spec.subcommands ?? []) {
    for (const f of sub.flags ?? []) if (!flags.some((g) => g.name === f.name)) flags.push(f);
  }
  return flags;
}

/**
 * Reads `args` for `memkit <command>` against its declaration: flags by
 * name anywhere (before or after the positionals; `--` ends them),
 * positionals as the strings typed (parseArgs would turn
 * `0x123456789abcdef1` into a rounded number). `--help` wins over every
 * other mistake; `--color` takes effect at once.
 *
 * @param spec The command's declaration.
 * @param args The arguments after the command name.
 * @returns The subcommand, the positionals and the flags.
 * @throws {UsageError} For an unknown flag or subcommand, a flag without
 * its value or with one it does not take, a value not among its choices, a
 * missing or surplus positional; with a did-you-mean where one is close.
 *
 * @example Positionals stay exact; a typo is a usage error
 * ```ts
 * import { type CommandSpec, parseCommandLine, UsageError } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const maps: CommandSpec = {
 *   name: "maps",
 *   summary: "mappings",
 *   description: "Every mapping of a process.",
 *   positionals: [{ name: "<pid|self>", description: "the process" }],
 *   flags: [{ name: "brief", type: "boolean", description: "maps only" }],
 *   json: "one JSON array",
 *   examples: [["maps self", "this process"]],
 * };
 * const a = parseCommandLine(maps, ["--json", "0x123456789abcdef1"]);
 * assertEquals([a.has("json"), a.positionals], [true, ["0x123456789abcdef1"]]);
 * assertThrows(() => parseCommandLine(maps, ["self", "--jsn"]), UsageError, "did you mean --json?");
 * assertThrows(() => parseCommandLine(maps, ["self", "extra"]), UsageError, '"extra"');
 * ```
 */
export function parseCommandLine(spec: CommandSpec, args: readonly string[]): Args {
  const known = allFlags(spec);
  const byName = new Map(known.map((f) => [f.name, f]));
  const byShort = new Map(known.filter((f) => f.short).map((f) => [f.short!, f]));
  const given = new Map<string, { flag: FlagSpec; text: string; value?: string }>();
  const positionals: string[] = [];
  const command = spec.name;
  let problem: UsageError | undefined;
  const wrong = (message: string) => problem ??= new UsageError(message, command);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const long = arg.startsWith("--");
    const name = long ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1);
    const flag = long ? byName.get(name) : eq < 0 ? byShort.get(name) : undefined;
    if (flag === undefined) {
      const typed = eq < 0 ? arg : arg.slice(0, eq);
      const negative = /^-[0-9]/.test(arg);
      wrong(
        `Unknown option "${typed}" for memkit ${command}` +
          (negative
            ? " (an argument that starts with - goes after --)"
            : mean(didYouMean(typed, [...known.map(dashed), "--version"]))),
      );
      continue;
    }
    if (flag.type === "boolean") {
      if (eq >= 0) wrong(`Cannot use "${arg}": --${flag.name} takes no value`);
      given.set(flag.name, { flag, text: arg });
      continue;
    }
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : args[i + 1];
    if (eq < 0) {
      if (value === undefined || (value.startsWith("--") && value.length > 2)) {
        wrong(
          `Missing the value of --${flag.name}: expected --${flag.name}=${flag.value ?? "VALUE"}`,
        );
        value = undefined;
      } else i++;
    }
    if (value === undefined) continue;
    if (flag.choices && !flag.choices.includes(value)) {
      wrong(
        `Cannot use --${flag.name} "${value}": expected ${either(flag.choices)}` +
          mean(didYouMean(value, flag.choices)),
      );
      continue;
    }
    given.set(flag.name, { flag, text: arg, value });
  }
  const color = given.get("color")?.value;
  if (color !== undefined) setColorMode(color as ColorMode);
  const has = (name: string) => given.has(name) && given.get(name)!.flag.type === "boolean";
  const parsed: Args = {
    positionals,
    has,
    value: (name) => given.get(name)?.value ?? byName.get(name)?.default,
  };
  if (has("help")) return parsed;
  if (problem) throw problem;
  let takes = spec.positionals ?? [];
  const allowed = new Set([...commonFlags(spec), ...(spec.flags ?? [])].map((f) => f.name));
  let usage = `memkit ${command}`;
  if (spec.subcommands) {
    const names = spec.subcommands.map((s) => s.name);
    const name = positionals.shift();
    if (name === undefined) {
      throw new UsageError(
        `Missing the command of memkit ${command}: expected ${either(names)}`,
        command,
      );
    }
    const sub = spec.subcommands.find((s) => s.name === name);
    if (sub === undefined) {
      throw new UsageError(
        `Unknown command "${name}" for memkit ${command}: expected ${either(names)}` +
          mean(didYouMean(name, names)),
        command,
      );
    }
    parsed.subcommand = name;
    takes = sub.positionals;
    for (const f of sub.flags ?? []) allowed.add(f.name);
    usage = `memkit ${command} ${name}`;
    for (const [flagName, { text }] of given) {
      if (allowed.has(flagName)) continue;
      const owners = spec.subcommands.filter((s) => s.flags?.some((f) => f.name === flagName));
      throw new UsageError(
        `Cannot use "${text}" with ${usage}: it is an option of ` +
          either(owners.map((s) => `memkit ${command} ${s.name}`)),
        command,
      );
    }
  }
  for (const [flagName, { text }] of given) {
    if (flagName === "json" && spec.json.startsWith("no: ")) {
      throw new UsageError(
        `Cannot use "${text}": ${usage} has no JSON form (${spec.json.slice(4)})`,
        command,
      );
    }
    if (flagName === "permissions" && spec.permissions?.startsWith("no: ")) {
      throw new UsageError(
        `Cannot use "${text}": ${usage} has no --permissions form (${spec.permissions.slice(4)})`,
        command,
      );
    }
  }
  const shape = takes.map((p) => p.name).join(" ");
  const required = takes.filter((p) => !p.optional).length;
  if (positionals.length < required) {
    const missing = takes[positionals.length];
    throw new UsageError(
      `Missing ${missing.name} (${missing.description}): expected ${usage} ${shape}`,
      command,
    );
  }
  if (positionals.length > takes.length && !takes.at(-1)?.rest) {
    const extra = positionals[takes.length];
    const flag = didYouMean(extra, [...allowed].map((n) => `--${n}`));
    throw new UsageError(
      `Unexpected argument "${extra}": ${usage} takes ` +
        (takes.length === 0 ? "no arguments" : `only ${shape}`) + mean(flag),
      command,
    );
  }
  return parsed;
}

/** `--name`, `--name=VALUE`, `-h, --help`: a flag as the help lists it. */
function flagLabel(f: FlagSpec): string {
  const long = f.type === "boolean" ? `--${f.name}` : `--${f.name}=${f.value ?? "VALUE"}`;
  return f.short ? `-${f.short}, ${long}` : long;
}

/** How wide the help is, at most: a classic terminal. */
const WIDTH = 80;

/** `lines` of `[label, text]` as two columns, the text at `at`, wrapped to the help's width. */
function columns(rows: readonly (readonly [string, string])[], at: number): string[] {
  const out: string[] = [];
  for (const [label, text] of rows) {
    const words = text.split(" ");
    let line = `  ${label}`;
    if (line.length >= at) {
      out.push(line);
      line = "";
    }
    line = line.padEnd(at);
    let first = true;
    for (const word of words) {
      if (!first && line.length + 1 + word.length > WIDTH) {
        out.push(line);
        line = " ".repeat(at) + word;
      } else line += (first ? "" : " ") + word;
      first = false;
    }
    out.push(line);
  }
  return out;
}

/** The usage line of `spec`: `memkit maps <pid|self> [options]`. */
export function usageLine(spec: CommandSpec): string {
  const args = spec.subcommands
    ? ["<command>", "[arguments]"]
    : (spec.positionals ?? []).map((p) => p.name);
  return ["memkit", spec.name, ...args, "[options]"].join(" ");
}

/**
 * The help of `memkit <command>`, from its declaration: usage, description,
 * arguments or subcommands, options with their defaults, examples and exit
 * codes. `memkit <command> --help` and `memkit help <command>` print it.
 *
 * @param spec The command's declaration.
 * @returns The help text, without a final newline.
 *
 * @example The help of a command
 * ```ts
 * import { formatHelp } from "./_args.ts";
 * import { assertStringIncludes } from "@std/assert";
 *
 * const help = formatHelp({
 *   name: "maps",
 *   summary: "mappings",
 *   description: "Every mapping of a process.",
 *   positionals: [{ name: "<pid|self>", description: "the process" }],
 *   json: "one JSON array",
 *   examples: [["maps self", "this process"]],
 * });
 * assertStringIncludes(help, "memkit maps <pid|self> [options]");
 * assertStringIncludes(help, "--color=WHEN");
 * assertStringIncludes(help, "2  bad arguments");
 * ```
 */
export function formatHelp(spec: CommandSpec): string {
  const parts = [usageLine(spec), spec.description];
  if (spec.positionals && spec.positionals.length > 0) {
    parts.push(
      ["Arguments:", ...columns(spec.positionals.map((p) => [p.name, p.description]), 22)].join(
        "\n",
      ),
    );
  }
  if (spec.subcommands) {
    const rows: [string, string][] = [];
    for (const s of spec.subcommands) {
      rows.push([[s.name, ...s.positionals.map((p) => p.name)].join(" "), s.summary]);
      for (const f of s.flags ?? []) {
        rows.push([
          `  ${flagLabel(f)}`,
          f.description + (f.default ? ` (default ${f.default})` : ""),
        ]);
      }
    }
    parts.push(["Commands:", ...columns(rows, 32)].join("\n"));
  }
  const flags = [...(spec.flags ?? []), ...commonFlags(spec)];
  parts.push(
    [
      "Options (before or after the arguments; -- ends them):",
      ...columns(
        flags.map((f) => [
          flagLabel(f),
          f.description + (f.default && !f.choices ? ` (default ${f.default})` : ""),
        ]),
        22,
      ),
    ].join("\n"),
  );
  if (spec.notes) parts.push(spec.notes);
  parts.push(
    ["Examples:", ...spec.examples.flatMap(([cmd, what]) => [`  memkit ${cmd}`, `      ${what}`])]
      .join("\n"),
  );
  parts.push(EXIT_CODES + (spec.exitNote ? `\n  ${spec.exitNote}` : ""));
  return parts.join("\n\n");
}

/**
 * Prints `spec`'s help on stdout: what `--help` does.
 *
 * @param spec The command's declaration.
 * @returns 0, the exit code of `--help`.
 *
 * @example Print a command's help
 * ```ts
 * import { showHelp } from "./_args.ts";
 * import { MAPS } from "./_commands.ts";
 * import { stdout } from "./_out.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(showHelp(MAPS), 0);
 * stdout.flush();
 * ```
 */
export function showHelp(spec: CommandSpec): number {
  stdout.line(formatHelp(spec));
  return 0;
}

const UNITS = new Map<string, bigint>([
  ["", 1n],
  ["k", 1n << 10n],
  ["m", 1n << 20n],
  ["g", 1n << 30n],
  ["t", 1n << 40n],
]);

/**
 * A number as typed: 0x hexadecimal or decimal, exact (a bigint, never
 * through a JavaScript number), with a binary K/M/G/T suffix (`4K`, `1MiB`)
 * where `units` allows it.
 *
 * @param text The number as typed.
 * @param what What it is, for the error message (`address`, `value`).
 * @param units Whether a K/M/G/T suffix is allowed (default true).
 * @returns Its exact value.
 * @throws {TypeError} When it is missing or not such a number.
 *
 * @example Exact to the last bit
 * ```ts
 * import { parseAmount } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(parseAmount("0x123456789abcdef1", "value", false), 0x123456789abcdef1n);
 * assertEquals([parseAmount("0x1000", "address"), parseAmount("4K", "length")], [4096n, 4096n]);
 * assertEquals(parseAmount("1GiB", "length"), 1n << 30n);
 * assertThrows(() => parseAmount("4K", "value", false), TypeError);
 * ```
 */
export function parseAmount(text: string | undefined, what: string, units = true): bigint {
  if (text === undefined) throw new TypeError(`Missing the ${what}`);
  const m = units
    ? /^(0x[0-9a-f]+|[0-9]+)([kmgt]?)(?:i?b)?$/i.exec(text)
    : /^(0x[0-9a-f]+|[0-9]+)()$/i.exec(text);
  if (!m) {
    const expected = units ? "0x1000, 4096 or 4K" : "0x-hexadecimal or decimal";
    throw new TypeError(`Cannot read the ${what} "${text}": expected ${expected}`);
  }
  return BigInt(m[1]) * UNITS.get(m[2].toLowerCase())!;
}

/**
 * `value` when it fits in `bits` bits, else a `RangeError` quoting `text`, the value as typed.
 *
 * @param value The value.
 * @param bits The width.
 * @param text The value as typed.
 * @returns `value`.
 * @throws {RangeError} When it does not fit.
 *
 * @example A value must fit its width
 * ```ts
 * import { fitWidth } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(fitWidth(0xffffffffffffffffn, 64, "0xffffffffffffffff"), 2n ** 64n - 1n);
 * assertThrows(() => fitWidth(0x100n, 8, "0x100"), RangeError, '"0x100"');
 * ```
 */
export function fitWidth(value: bigint, bits: number, text: string): bigint {
  const top = (1n << BigInt(bits)) - 1n;
  if (value < 0n || value > top) {
    throw new RangeError(
      `Cannot write "${text}" in ${bits} bits: expected 0 to 0x${top.toString(16)}`,
    );
  }
  return value;
}

/**
 * `<start>`, `<start>-<end>` or `<start>+<length>`: a byte range.
 *
 * @param text The range as typed.
 * @returns Its start and end (exclusive).
 * @throws {TypeError} When it is missing or a number cannot be read.
 * @throws {RangeError} When the end is not after the start.
 *
 * @example Three ways to write a range
 * ```ts
 * import { parseRange } from "./_args.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(parseRange("0x400000+4M"), { start: 0x400000n, end: 0x800000n });
 * assertEquals(parseRange("0x1000-0x3000"), { start: 0x1000n, end: 0x3000n });
 * ```
 */
export function parseRange(text: string | undefined): { start: bigint; end: bigint } {
  if (text === undefined) throw new TypeError("Missing the range: <start>[-end|+length]");
  const plus = text.indexOf("+");
  const dash = text.indexOf("-");
  let start: bigint, end: bigint;
  if (plus > 0) {
    start = parseAmount(text.slice(0, plus), "start");
    end = start + parseAmount(text.slice(plus + 1), "length");
  } else if (dash > 0) {
    start = parseAmount(text.slice(0, dash), "start");
    end = parseAmount(text.slice(dash + 1), "end");
  } else {
    start = parseAmount(text, "start");
    end = start + 1n;
  }
  if (end <= start) {
    throw new RangeError(`Cannot use the range "${text}": its end is not after its start`);
  }
  return { start, end };
}

/**
 * The minimal deno flags for `op` on `target`, refusing a path no flag can
 * name: Deno splits `--allow-read`/`--allow-write` lists at every comma and
 * has no escape for one.
 *
 * @param op The operation.
 * @param target Its path, pid or name.
 * @returns The flags.
 * @throws {TypeError} When an unknown operation is named, or a path holds a comma.
 *
 * @example The flags of one operation
 * ```ts
 * import { flagsFor } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(flagsFor("mapFile", "/tmp/a.bin"), ["--allow-ffi", "--allow-read=/tmp/a.bin"]);
 * assertThrows(() => flagsFor("mapFile", "/tmp/a,b.bin"), TypeError, "comma");
 * ```
 */
export function flagsFor(op: string, target: string): string[] {
  if (!Object.hasOwn(permissionTable, op)) {
    throw new TypeError(
      `Unknown operation "${op}": expected one of ${Object.keys(permissionTable).join(", ")}`,
    );
  }
  const rule = permissionTable[op as Operation] as { needs(t: string): { path?: string }[] };
  for (const need of rule.needs(target)) {
    const path = need.path;
    if (path === undefined || !path.includes(",")) continue;
    const cut = path.lastIndexOf("/", path.indexOf(","));
    const above = cut > 0 ? path.slice(0, cut) : cut === 0 ? "/" : undefined;
    throw new TypeError(
      `Cannot name "${path}" in a deno flag: Deno splits permission lists at every comma and ` +
        "has no escape for one, so no flag grants exactly this path; " +
        (above === undefined
          ? "rename it, or grant a directory above it"
          : `rename it, or grant the directory above it ("${above}")`),
    );
  }
  return permissionFlags(op as Operation, target);
}

const shellSafe = /^[A-Za-z0-9_./=:+,@%^-]+$/;
const quote = (arg: string): string =>
  shellSafe.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * Flags merged as one deno command line takes them: each kind once, its
 * scopes joined by commas in the order first met; an unscoped flag stands
 * for all of its kind's scopes.
 *
 * @param flags Flags as steps list them (`--allow-read=/a`, `--allow-ffi`, `--v8-flags=...`).
 * @returns The merged flags, kinds in the order first met, other flags last.
 *
 * @example Two steps' flags as one command line
 * ```ts
 * import { mergeFlags } from "./_args.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   mergeFlags(["--allow-ffi", "--allow-read=/a", "--allow-ffi", "--allow-read=/b,/a"]),
 *   ["--allow-ffi", "--allow-read=/a,/b"],
 * );
 * ```
 */
export function mergeFlags(flags: readonly string[]): string[] {
  const kinds = new Map<string, string[] | "all">();
  const other: string[] = [];
  for (const flag of flags) {
    const m = /^--allow-([\w-]+)(?:=(.*))?$/.exec(flag);
    if (m === null) {
      if (!other.includes(flag)) other.push(flag);
      continue;
    }
    const had = kinds.get(m[1]);
    if (m[2] === undefined || had === "all") kinds.set(m[1], "all");
    else {
      const list = had ?? [];
      for (const scope of m[2].split(",")) if (!list.includes(scope)) list.push(scope);
      kinds.set(m[1], list);
    }
  }
  const out: string[] = [];
  for (const [kind, scopes] of kinds) {
    out.push(scopes === "all" ? `--allow-${kind}` : `--allow-${kind}=${scopes.join(",")}`);
  }
  return [...out, ...other];
}

/**
 * Prints `flags`, then the command to run with them: `<command> <args>` as
 * typed, without `--permissions`, after `deno run <flags> cli.ts` in a
 * checkout or `memkit` when installed (to {@linkcode stdout}, which the
 * command flushes when it ends), never in colour.
 *
 * @param flags The minimal deno flags.
 * @param command The subcommand (`phys`).
 * @param args Its arguments as typed.
 *
 * @example The flags, then the command to run with them
 * ```ts
 * import { printPermissions } from "./_args.ts";
 * import { stdout } from "./_out.ts";
 *
 * printPermissions(["--allow-ffi"], "maps", ["self", "--permissions"]);
 * stdout.flush();
 * // --allow-ffi
 * // deno run --allow-ffi cli.ts maps self
 * ```
 */
export function printPermissions(
  flags: readonly string[],
  command: string,
  args: readonly string[],
): void {
  const kept = args.filter((a) => !/^--permissions(=.*)?$/.test(a));
  stdout.line(flags.join(" "));
  // Never coloured: this is read by programs (`$(memkit ... --permissions | head -1)`).
  stdout.line([...runner(flags), command, ...kept.map(quote)].join(" "));
}

/**
 * How the second line runs memkit: `memkit` when the CLI runs from a package
 * URL (as `deno install -g jsr:@memkit/memkit/cli` installs it: the flags are
 * the install's), else `deno run <flags> cli.ts` in the checkout.
 */
function runner(flags: readonly string[]): string[] {
  if (!Deno.mainModule.startsWith("file:")) return ["memkit"];
  return ["deno run", ...flags, "cli.ts"];
}
