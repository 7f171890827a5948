/**
 * How every memkit subcommand reads its command line: flags by name,
 * positionals as the strings typed (never through a JavaScript number), and
 * one parser for every address, length and value, exact to the bit as a
 * bigint. Also the minimal-flags report of `--permissions`.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { dim } from "@std/fmt/colors";
import { type Operation, permissionFlags, permissionTable } from "../src/permissions.ts";
import { stdout } from "./_out.ts";

// `0x`-hexadecimal, as every memkit command prints addresses: the library's own helper.
export { hex } from "../src/_args.ts";

/** The exit codes every memkit command uses, as its `--help` lists them. */
export const EXIT_CODES = `Exit codes:
  0  done
  1  the operation failed (the message says what the kernel or the device refused)
  2  bad arguments (the message names the one at fault)
  3  a permission is missing (the message names the deno flag to add)`;

/** The flags of one subcommand: booleans and string-valued options. */
export interface ArgSpec {
  /** Flags without a value (`--json`). `--help`/`-h` is always one. */
  boolean?: readonly string[];
  /** Flags with a value (`--device=/dev/mem` or `--device /dev/mem`). */
  string?: readonly string[];
}

/** A command line read by {@linkcode readArgs}. */
export interface Args {
  /** The positionals, exactly as typed. */
  positionals: string[];
  /** Whether boolean flag `name` was given. */
  has(name: string): boolean;
  /** The value of string flag `name`, if given. */
  value(name: string): string | undefined;
}

/**
 * Reads `args` for `memkit <command>`: positionals stay the strings typed
 * (parseArgs would turn `0x123456789abcdef1` into a rounded number), and an
 * option the command does not know is a `TypeError` naming it.
 *
 * @param args The arguments after the command name (flags may come first).
 * @param command The command, for the error message (`phys`).
 * @param spec Its flags.
 * @returns The positionals and the flags.
 * @throws {TypeError} For an unknown option.
 *
 * @example Positionals stay exact
 * ```ts
 * import { readArgs } from "./_args.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const a = readArgs(["--json", "poke", "0x123456789abcdef1"], "phys", { boolean: ["json"] });
 * assertEquals([a.has("json"), a.positionals], [true, ["poke", "0x123456789abcdef1"]]);
 * assertThrows(() => readArgs(["--jsno"], "maps", { boolean: ["json"] }), TypeError);
 * ```
 */
export function readArgs(args: readonly string[], command: string, spec: ArgSpec): Args {
  const booleans = [...(spec.boolean ?? []), "help"];
  const strings = [...(spec.string ?? [])];
  const parsed = parseArgs([...args], {
    boolean: booleans,
    // "_" keeps every positional a string: parseArgs makes numbers of them otherwise.
    string: [...strings, "_"],
    alias: { h: "help" },
    unknown: (arg: string, key?: string) => {
      if (key === undefined) return true;
      throw new TypeError(
        `Unknown option "${arg}" for memkit ${command}: see memkit ${command} --help` +
          (/^-[0-9]/.test(arg) ? " (after --, an argument may start with -)" : ""),
      );
    },
  }) as Record<string, unknown> & { _: string[] };
  return {
    positionals: parsed._.map(String),
    has: (name) => parsed[name] === true,
    value: (name) => {
      const v = parsed[name];
      return typeof v === "string" ? v : undefined;
    },
  };
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
 * @example
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
 * @example
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
 * @example
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
 * Prints `flags`, then the command to run with them: `memkit <command> <args>`
 * as typed, without `--permissions` (to {@linkcode stdout}, which the command
 * flushes when it ends).
 *
 * @param flags The minimal deno flags.
 * @param command The subcommand (`phys`).
 * @param args Its arguments as typed.
 *
 * @example
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
  stdout.line(dim(["deno run", ...flags, "cli.ts", command, ...kept.map(quote)].join(" ")));
}
