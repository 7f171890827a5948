/**
 * `memkit phys`: physical memory through `/dev/mem`, devmem2's and
 * dmidecode's jobs with the width right and the refusals explained.
 *
 * ```sh
 * deno run --allow-ffi --allow-read=/dev/mem cli.ts phys read 0xf0000 64
 * deno run --allow-ffi --allow-read=/dev/mem cli.ts phys peek 0xfee00030 32
 * deno run --allow-ffi --allow-read=/dev/mem --allow-write=/dev/mem cli.ts phys poke 0xfea00000 16 0xbeef
 * deno run --allow-ffi --allow-read=/dev/mem cli.ts phys smbios
 * deno run --allow-ffi --allow-read=/proc/iomem cli.ts phys ranges
 * ```
 *
 * @module
 */

import type { Operation } from "../src/permissions.ts";
import { PhysicalMemory, type PhysicalMemoryOptions } from "../src/phys.ts";
import { physicalRanges } from "../src/iomem.ts";
import type { Smbios } from "../src/smbios.ts";
import {
  fitWidth,
  flagsFor,
  hex,
  parseAmount,
  parseCommandLine,
  printPermissions,
  showHelp,
} from "./_args.ts";
import { binarySize } from "./_bytes.ts";
import { bold, dim } from "./_colors.ts";
import { PHYS } from "./_commands.ts";
import type { SchemaId } from "./_json_schemas.ts";
import { runCommand } from "./_fail.ts";
import { stdout } from "./_out.ts";

/** The most bytes `phys read` dumps at once (what PhysicalMemory.read() copies). */
const MAX_READ = 1n << 30n;

/** The width of one `peek`/`poke`, in bits. */
export type Width = 8 | 16 | 32 | 64;

function width(text: string | undefined): Width {
  if (text === "8" || text === "16" || text === "32" || text === "64") {
    return Number(text) as Width;
  }
  throw new TypeError(`Cannot use the width "${text ?? ""}": expected 8, 16, 32 or 64 (bits)`);
}

/** One load of exactly `bits` bits. */
function readWidth(mem: PhysicalMemory, at: bigint, bits: Width): number | bigint {
  if (bits === 8) return mem.readU8(at);
  if (bits === 16) return mem.readU16(at);
  return bits === 32 ? mem.readU32(at) : mem.readU64(at);
}

/**
 * The classic hexdump: address, 16 bytes in hex, the printable ones as text.
 *
 * @param bytes The bytes.
 * @param address The address of the first one (a number or a bigint).
 * @returns One line per 16 bytes.
 *
 * @example A hexdump of four bytes
 * ```ts
 * import { hexdump } from "./phys.ts";
 * import { assertStringIncludes } from "@std/assert";
 *
 * assertStringIncludes(hexdump(new TextEncoder().encode("_SM_"), 0xf0000), "_SM_");
 * ```
 */
export function hexdump(bytes: Uint8Array, address: number | bigint): string {
  const base = BigInt(address);
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hexes = [...row].map((b) => b.toString(16).padStart(2, "0"));
    const left = hexes.slice(0, 8).join(" ");
    const right = hexes.slice(8).join(" ");
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "."))
      .join("");
    lines.push(
      `${(base + BigInt(at)).toString(16).padStart(8, "0")}  ${left.padEnd(23)}  ${
        right.padEnd(23)
      }  |${text}|`,
    );
  }
  return lines.join("\n");
}

function printSmbios(s: Smbios): void {
  const ep = s.entryPoint;
  stdout.line(
    `${bold("SMBIOS")} ${s.version} (${ep.anchor} entry point at ${hex(ep.address)}, table at ${
      hex(ep.tableAddress)
    }, ${ep.tableLength} bytes, ${s.structures.length} structures)`,
  );
  if (s.bios) {
    stdout.line(`${bold("BIOS")}     vendor ${s.bios.vendor}`);
    stdout.line(`         version ${s.bios.version}, released ${s.bios.releaseDate}`);
  }
  if (s.system) {
    const y = s.system;
    stdout.line(`${bold("System")}   manufacturer ${y.manufacturer}`);
    stdout.line(`         product ${y.product}${y.version ? ` (version ${y.version})` : ""}`);
    stdout.line(`         serial ${y.serial}`);
    stdout.line(`         uuid ${y.uuid ?? "(not set)"}`);
    if (y.sku || y.family) stdout.line(`         sku ${y.sku ?? ""}, family ${y.family ?? ""}`);
  }
  const types = new Map<number, number>();
  for (const st of s.structures) types.set(st.type, (types.get(st.type) ?? 0) + 1);
  stdout.line(
    dim(`structure types: ${[...types].map(([t, n]) => (n > 1 ? `${t}×${n}` : `${t}`)).join(" ")}`),
  );
}

/** The schema of `memkit phys <command> --json`. */
const id = (command: "read" | "peek" | "poke" | "smbios" | "ranges"): SchemaId =>
  `memkit.phys.${command}/1`;

/** Bytes as two lowercase hex digits each. */
const hexBytes = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The tables as `memkit.phys.smbios/1` has them: addresses as 0x strings, bytes as hex. */
function smbiosJson(s: Smbios): Record<string, unknown> {
  const ep = s.entryPoint;
  const entryPoint: Record<string, unknown> = {
    anchor: ep.anchor,
    address: hex(ep.address),
    length: ep.length,
    version: ep.version,
    tableAddress: hex(ep.tableAddress),
    tableLength: ep.tableLength,
  };
  if (ep.structureCount !== undefined) entryPoint.structureCount = ep.structureCount;
  const out: Record<string, unknown> = { schema: id("smbios"), version: s.version, entryPoint };
  if (s.bios !== undefined) out.bios = s.bios;
  if (s.system !== undefined) out.system = s.system;
  out.structures = s.structures.map((st) => ({
    type: st.type,
    handle: st.handle,
    data: hexBytes(st.data),
    strings: st.strings,
  }));
  return out;
}

/** How `memkit phys` opens its device. */
export interface PhysCommandOptions {
  /**
   * Opens the device: {@linkcode PhysicalMemory.open} unless a test gives a
   * stand-in (this host has no `/dev/mem` to write to).
   */
  open?: (options: PhysicalMemoryOptions) => PhysicalMemory;
}

/**
 * The arguments of `phys poke`: `<addr> <width> <value>`, each exact.
 *
 * @param args The arguments after `poke`, as typed.
 * @returns The address, the width in bits and the value.
 * @throws {TypeError} When one is missing or cannot be read.
 * @throws {RangeError} When the value does not fit the width (the message quotes it as typed).
 *
 * @example The value as typed, to the last bit
 * ```ts
 * import { pokeArgs } from "./phys.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(pokeArgs(["0xf0000", "64", "0x123456789abcdef1"]), {
 *   address: 0xf0000n,
 *   bits: 64,
 *   value: 0x123456789abcdef1n,
 * });
 * assertThrows(() => pokeArgs(["0xf0000", "8", "0x100"]), RangeError, '"0x100"');
 * ```
 */
export function pokeArgs(args: readonly string[]): { address: bigint; bits: Width; value: bigint } {
  const address = parseAmount(args[0], "address");
  const bits = width(args[1]);
  const value = fitWidth(parseAmount(args[2], "value to write", false), bits, args[2]!);
  return { address, bits, value };
}

function writeWidth(mem: PhysicalMemory, at: bigint, bits: Width, value: bigint): void {
  if (bits === 64) mem.writeU64(at, value);
  else if (bits === 32) mem.writeU32(at, Number(value));
  else if (bits === 16) mem.writeU16(at, Number(value));
  else mem.writeU8(at, Number(value));
}

const padded = (v: number | bigint, bits: number): string =>
  `0x${v.toString(16).padStart(bits / 4, "0")}`;

/** A length for PhysicalMemory.read(), which takes a number. */
function readLength(text: string | undefined): number {
  if (text === undefined) return 256;
  const n = parseAmount(text, "length");
  if (n > MAX_READ) {
    throw new RangeError(`Cannot read "${text}" bytes at once: expected at most 1G`);
  }
  return Number(n);
}

/**
 * Runs `memkit phys`.
 *
 * @param args The arguments after `phys` (flags may come first).
 * @param options How to open the device (tests give a stand-in).
 * @returns The exit code: 0, 1 failure, 2 bad arguments, 3 missing permission.
 *
 * @example The SMBIOS tables
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/mem cli.ts phys smbios
 * import { physCommand } from "./phys.ts";
 * Deno.exit(physCommand(["smbios"]));
 * ```
 */
export function physCommand(args: string[], options: PhysCommandOptions = {}): number {
  return runCommand(() => {
    const flags = parseCommandLine(PHYS, args);
    if (flags.has("help")) return showHelp(PHYS);
    const command = flags.subcommand;
    const rest = flags.positionals;
    const json = flags.has("json");
    const device = flags.value("device") ?? "/dev/mem";
    const cache = (flags.value("cache") ?? "default") as "default" | "uncached";
    const open = options.open ?? ((o: PhysicalMemoryOptions) => PhysicalMemory.open(o));
    const need = (op: Operation, target: string): boolean => {
      if (!flags.has("permissions")) return false;
      printPermissions(flagsFor(op, target), "phys", args);
      return true;
    };
    switch (command) {
      case "read": {
        const at = parseAmount(rest[0], "address");
        const len = readLength(rest[1]);
        if (need("physRead", device)) return 0;
        using mem = open({ device, cache });
        const bytes = mem.read(at, len);
        if (json) {
          const hexes = hexBytes(bytes);
          stdout.json({ schema: id("read"), address: at, length: bytes.length, hex: hexes });
        } else stdout.line(hexdump(bytes, at));
        return 0;
      }
      case "peek": {
        const at = parseAmount(rest[0], "address");
        const bits = width(rest[1]);
        if (need("physRead", device)) return 0;
        using mem = open({ device, cache });
        const value = padded(readWidth(mem, at, bits), bits);
        if (json) stdout.json({ schema: id("peek"), address: at, width: bits, value });
        else stdout.line(`${hex(at)}: ${value}`);
        return 0;
      }
      case "poke": {
        const { address: at, bits, value } = pokeArgs(rest);
        if (need("physWrite", device)) return 0;
        let written = false;
        try {
          using mem = open({ device, cache, write: true });
          writeWidth(mem, at, bits, value);
          written = true;
          const back = readWidth(mem, at, bits);
          if (json) {
            stdout.json({
              schema: id("poke"),
              address: at,
              width: bits,
              wrote: padded(value, bits),
              readBack: padded(back, bits),
            });
          } else {
            stdout.line(
              `${hex(at)}: wrote ${padded(value, bits)}, read back ${padded(back, bits)}`,
            );
          }
        } catch (e) {
          if (!written) {
            console.error(
              `memkit: nothing written: ${padded(value, bits)} (${bits} bits) at ${hex(at)}`,
            );
          } else {
            console.error(
              `memkit: wrote ${padded(value, bits)} at ${hex(at)}, then failed to read it back`,
            );
          }
          throw e;
        }
        return 0;
      }
      case "smbios": {
        if (need("physRead", device)) return 0;
        using mem = open({ device, cache });
        const s = mem.smbios();
        if (json) stdout.json(smbiosJson(s));
        else printSmbios(s);
        return 0;
      }
      case "ranges": {
        if (need("iomem", "")) return 0;
        const ranges = physicalRanges();
        if (json) {
          stdout.json({
            schema: id("ranges"),
            ranges: ranges.map((r) => ({
              start: hex(r.start),
              end: hex(r.end),
              size: Number(r.end - r.start),
              name: r.name,
              depth: r.depth,
            })),
          });
          return 0;
        }
        for (const r of ranges) {
          const span = `${hex(r.start).padStart(14)}-${hex(r.end - 1n).padEnd(14)}`;
          stdout.line(
            `${"  ".repeat(r.depth)}${span} ${
              binarySize(Number(r.end - r.start)).padStart(10)
            }  ${r.name}`,
          );
        }
        return 0;
      }
    }
    return 2; // parseCommandLine let no other command through
  });
}
