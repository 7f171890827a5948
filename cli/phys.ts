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

import { parseArgs } from "@std/cli/parse-args";
import { format as formatBytes } from "@std/fmt/bytes";
import { bold, dim } from "@std/fmt/colors";
import {
  type Operation,
  permissionFlags,
  PhysicalMemory,
  physicalRanges,
  type Smbios,
} from "../mod.ts";
import { fail } from "./_fail.ts";

const hex = (n: bigint | number): string => `0x${n.toString(16)}`;

const HELP = `memkit phys <command> [--device=/dev/mem] [--permissions]

  read <addr> [len]            hexdump len bytes (default 256) of physical memory
  peek <addr> <width>          one read of exactly width bits (8, 16, 32 or 64)
  poke <addr> <width> <value>  one write of exactly width bits, then one read back
  smbios [--json]              the SMBIOS entry point, BIOS and system information
  ranges [--json]              the physical address map (/proc/iomem), nested

  --device=PATH  the memory device (default /dev/mem)
  --cache=MODE   default, or uncached (O_SYNC, as devmem2 opens it)
  --permissions  print the minimal deno flags for this call and exit

Addresses and lengths: 0x-prefixed hex or decimal, with an optional K/M/G suffix.`;

/** A non-negative number: 0x hex or decimal, with an optional K/M/G suffix (binary). */
function amount(text: string | undefined, what: string): number {
  if (text === undefined) throw new TypeError(`Missing the ${what}`);
  const m = /^(0x[0-9a-f]+|[0-9]+)([kmg]?)$/i.exec(text.trim());
  if (!m) throw new TypeError(`Cannot read the ${what} "${text}": expected 0xf0000, 4096 or 4K`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()]!;
  const n = Number(BigInt(m[1])) * unit;
  if (!Number.isSafeInteger(n)) throw new RangeError(`Cannot use the ${what} "${text}": too large`);
  return n;
}

function width(text: string | undefined): 8 | 16 | 32 | 64 {
  if (text === "8" || text === "16" || text === "32" || text === "64") {
    return Number(text) as 8 | 16 | 32 | 64;
  }
  throw new TypeError(`Cannot use the width "${text ?? ""}": expected 8, 16, 32 or 64 (bits)`);
}

/** One load of exactly `bits` bits. */
function readWidth(mem: PhysicalMemory, at: number, bits: 8 | 16 | 32 | 64): number | bigint {
  if (bits === 8) return mem.readU8(at);
  if (bits === 16) return mem.readU16(at);
  return bits === 32 ? mem.readU32(at) : mem.readU64(at);
}

/**
 * The classic hexdump: address, 16 bytes in hex, the printable ones as text.
 *
 * @param bytes The bytes.
 * @param address The address of the first one.
 * @returns One line per 16 bytes.
 *
 * @example
 * ```ts
 * import { hexdump } from "./phys.ts";
 * import { assertStringIncludes } from "@std/assert";
 *
 * assertStringIncludes(hexdump(new TextEncoder().encode("_SM_"), 0xf0000), "_SM_");
 * ```
 */
export function hexdump(bytes: Uint8Array, address: number): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hexes = [...row].map((b) => b.toString(16).padStart(2, "0"));
    const left = hexes.slice(0, 8).join(" ");
    const right = hexes.slice(8).join(" ");
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "."))
      .join("");
    lines.push(
      `${(address + at).toString(16).padStart(8, "0")}  ${left.padEnd(23)}  ${
        right.padEnd(23)
      }  |${text}|`,
    );
  }
  return lines.join("\n");
}

const json = (value: unknown): string =>
  JSON.stringify(
    value,
    (_k, v) => typeof v === "bigint" ? hex(v) : v instanceof Uint8Array ? [...v] : v,
    2,
  );

function printSmbios(s: Smbios): void {
  const ep = s.entryPoint;
  console.log(
    `${bold("SMBIOS")} ${s.version} (${ep.anchor} entry point at ${hex(ep.address)}, table at ${
      hex(ep.tableAddress)
    }, ${ep.tableLength} bytes, ${s.structures.length} structures)`,
  );
  if (s.bios) {
    console.log(`${bold("BIOS")}     vendor ${s.bios.vendor}`);
    console.log(`         version ${s.bios.version}, released ${s.bios.releaseDate}`);
  }
  if (s.system) {
    const y = s.system;
    console.log(`${bold("System")}   manufacturer ${y.manufacturer}`);
    console.log(`         product ${y.product}${y.version ? ` (version ${y.version})` : ""}`);
    console.log(`         serial ${y.serial}`);
    console.log(`         uuid ${y.uuid ?? "(not set)"}`);
    if (y.sku || y.family) console.log(`         sku ${y.sku ?? ""}, family ${y.family ?? ""}`);
  }
  const types = new Map<number, number>();
  for (const st of s.structures) types.set(st.type, (types.get(st.type) ?? 0) + 1);
  console.log(
    dim(`structure types: ${[...types].map(([t, n]) => (n > 1 ? `${t}×${n}` : `${t}`)).join(" ")}`),
  );
}

/**
 * Runs `memkit phys`.
 *
 * @param args The arguments after `phys`.
 * @returns The exit code: 0, 1 failure, 2 bad arguments, 3 missing permission.
 *
 * @example
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/mem cli.ts phys smbios
 * import { physCommand } from "./phys.ts";
 * Deno.exit(physCommand(["smbios"]));
 * ```
 */
export function physCommand(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["json", "permissions", "help"],
    string: ["device", "cache"],
    alias: { h: "help" },
    default: { device: "/dev/mem" },
  });
  const [command, ...rest] = flags._.map(String);
  if (flags.help || command === undefined) {
    console.log(HELP);
    return command === undefined && !flags.help ? 2 : 0;
  }
  const device = flags.device;
  try {
    const cache = (flags.cache ?? "default") as "default" | "uncached";
    const need = (op: Operation, target: string): boolean => {
      if (!flags.permissions) return false;
      const f = permissionFlags(op, target);
      console.log(f.join(" "));
      console.log(dim(`deno run ${f.join(" ")} cli.ts phys ${args.join(" ")}`));
      return true;
    };
    switch (command) {
      case "read": {
        const at = amount(rest[0], "address");
        const len = rest[1] === undefined ? 256 : amount(rest[1], "length");
        if (need("physRead", device)) return 0;
        using mem = PhysicalMemory.open({ device, cache });
        console.log(hexdump(mem.read(at, len), at));
        return 0;
      }
      case "peek": {
        const at = amount(rest[0], "address");
        const bits = width(rest[1]);
        if (need("physRead", device)) return 0;
        using mem = PhysicalMemory.open({ device, cache });
        const v = readWidth(mem, at, bits);
        console.log(`${hex(at)}: 0x${v.toString(16).padStart(bits / 4, "0")}`);
        return 0;
      }
      case "poke": {
        const at = amount(rest[0], "address");
        const bits = width(rest[1]);
        if (rest[2] === undefined) throw new TypeError("Missing the value to write");
        if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(rest[2])) {
          throw new TypeError(`Cannot read the value "${rest[2]}": expected 0x-hex or decimal`);
        }
        const value = BigInt(rest[2]);
        if (value >= 1n << BigInt(bits)) {
          throw new RangeError(`Cannot write ${rest[2]} in ${bits} bits`);
        }
        if (need("physWrite", device)) return 0;
        using mem = PhysicalMemory.open({ device, cache, write: true });
        if (bits === 64) mem.writeU64(at, value);
        else if (bits === 32) mem.writeU32(at, Number(value));
        else if (bits === 16) mem.writeU16(at, Number(value));
        else mem.writeU8(at, Number(value));
        const back = readWidth(mem, at, bits);
        console.log(
          `${hex(at)}: wrote 0x${value.toString(16).padStart(bits / 4, "0")}, read back 0x${
            back.toString(16).padStart(bits / 4, "0")
          }`,
        );
        return 0;
      }
      case "smbios": {
        if (need("physRead", device)) return 0;
        using mem = PhysicalMemory.open({ device, cache });
        const s = mem.smbios();
        if (flags.json) console.log(json(s));
        else printSmbios(s);
        return 0;
      }
      case "ranges": {
        if (need("iomem", "")) return 0;
        const ranges = physicalRanges();
        if (flags.json) {
          console.log(json(ranges));
          return 0;
        }
        for (const r of ranges) {
          const span = `${hex(r.start).padStart(14)}-${hex(r.end - 1).padEnd(14)}`;
          console.log(
            `${"  ".repeat(r.depth)}${span} ${
              formatBytes(r.end - r.start, { binary: true }).padStart(10)
            }  ${r.name}`,
          );
        }
        return 0;
      }
      default:
        console.error(`Unknown phys command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    return fail(e);
  }
}
