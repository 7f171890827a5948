/**
 * SMBIOS decoding: the entry point (`_SM_` for 2.x, `_SM3_` for 3.x), the
 * structure table, and the BIOS (type 0) and system (type 1) structures.
 * Pure functions over bytes: {@linkcode PhysicalMemory.smbios} feeds them
 * from `/dev/mem`, and they decode a dump from anywhere else just as well.
 *
 * @module
 */

import { bytesOf, hex, readOptions, show } from "./_args.ts";
import { isTypedArray } from "./_primordials.ts";
import { integer } from "./_validate.ts";
import { toAddress } from "./_proc.ts";

/** An SMBIOS entry point, checked. */
export interface SmbiosEntryPoint {
  /** `"_SM_"` (SMBIOS 2.x, 32-bit) or `"_SM3_"` (SMBIOS 3.x, 64-bit). */
  anchor: "_SM_" | "_SM3_";
  /** Where the entry point was found (the physical address, or the offset in a dump). */
  address: bigint;
  /** The entry point's length in bytes, as it states it. */
  length: number;
  /** The SMBIOS version the entry point declares, e.g. `{ major: 2, minor: 8 }`. */
  version: { major: number; minor: number; docrev?: number };
  /** The physical address of the structure table. */
  tableAddress: bigint;
  /** The table's length (2.x) or its maximum size (3.x), in bytes. */
  tableLength: number;
  /** The number of structures (2.x only; 3.x tables end at type 127). */
  structureCount?: number;
}

/** One SMBIOS structure. */
export interface SmbiosStructure {
  /** The structure type: 0 BIOS, 1 system, 127 end of table, ... */
  type: number;
  /** The structure's handle. */
  handle: number;
  /** The whole formatted area (header included), copied. */
  data: Uint8Array<ArrayBuffer>;
  /** The strings that follow the formatted area; string number N is `strings[N - 1]`. */
  strings: string[];
}

/** The BIOS information structure (type 0). */
export interface SmbiosBios {
  /** The BIOS vendor. */
  vendor: string;
  /** The BIOS version. */
  version: string;
  /** The release date, as the BIOS writes it (`mm/dd/yyyy`). */
  releaseDate: string;
}

/** The system information structure (type 1). */
export interface SmbiosSystem {
  /** The manufacturer. */
  manufacturer: string;
  /** The product name. */
  product: string;
  /** The product version. */
  version: string;
  /** The serial number. */
  serial: string;
  /**
   * The UUID in its canonical text form, or `undefined` when the BIOS left
   * it unset (all zeros or all ones). From SMBIOS 2.6 on, the first three
   * fields are stored little-endian; before, in network order.
   */
  uuid?: string;
  /** The SKU number (SMBIOS 2.4+). */
  sku?: string;
  /** The family (SMBIOS 2.4+). */
  family?: string;
}

/** A decoded SMBIOS table. */
export interface Smbios {
  /** The entry point it was found through. */
  entryPoint: SmbiosEntryPoint;
  /** The version, `"major.minor"`, as the entry point states it. */
  version: string;
  /** Every structure, in table order, up to the end-of-table one (type 127). */
  structures: SmbiosStructure[];
  /** Type 0, if present. */
  bios?: SmbiosBios;
  /** Type 1, if present. */
  system?: SmbiosSystem;
}

const latin1 = new TextDecoder("latin1");

function anchorAt(bytes: Uint8Array, at: number, anchor: string): boolean {
  if (at + anchor.length > bytes.length) return false;
  for (let i = 0; i < anchor.length; i++) {
    if (bytes[at + i] !== anchor.charCodeAt(i)) return false;
  }
  return true;
}

function checksumOk(bytes: Uint8Array, start: number, length: number): boolean {
  let sum = 0;
  for (let i = start; i < start + length; i++) sum = (sum + bytes[i]) & 0xff;
  return sum === 0;
}

/** Throws TypeError unless `value` is a Uint8Array: the decoders read bytes. */
/**
 * Checks for a real Uint8Array and returns memkit's own view of the same
 * bytes, its extent from the engine's slots (not from properties the caller
 * may have redefined).
 */
function bytesOnly(value: unknown, fn: string): Uint8Array<ArrayBuffer> {
  if (!isTypedArray(value, "Uint8Array")) {
    throw new TypeError(`Cannot decode with ${fn}(): expected a Uint8Array of SMBIOS bytes`);
  }
  return bytesOf(value)!;
}

/**
 * Parses and checks the SMBIOS entry point at the start of `bytes`: the
 * anchor, the stated length, the checksum (and for 2.x the `_DMI_`
 * intermediate anchor and its checksum).
 *
 * @param bytes The bytes from the anchor on (at least the entry point's length).
 * @param address Where they were read from (a bigint or a safe integer), for the
 * result and messages.
 * @returns The entry point.
 * @throws {SyntaxError} When there is no valid entry point at the start.
 *
 * @example A 3.x entry point
 * ```ts
 * import { parseSmbiosEntryPoint } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const ep = new Uint8Array(24);
 * ep.set([..."_SM3_"].map((c) => c.charCodeAt(0)));
 * ep[6] = 24; // length
 * ep[7] = 3; // major
 * ep[8] = 2; // minor
 * ep[10] = 1; // entry point revision
 * new DataView(ep.buffer).setUint32(12, 0x200, true); // maximum table size
 * new DataView(ep.buffer).setBigUint64(16, 0xbffe0000n, true); // table address
 * ep[5] = (0x100 - ep.reduce((a, b) => a + b, 0) % 0x100) % 0x100; // checksum
 * const parsed = parseSmbiosEntryPoint(ep, 0xf5b0);
 * assertEquals(parsed.anchor, "_SM3_");
 * assertEquals(parsed.version, { major: 3, minor: 2, docrev: 0 });
 * assertEquals([parsed.address, parsed.tableAddress], [0xf5b0n, 0xbffe0000n]);
 * ```
 */
export function parseSmbiosEntryPoint(
  bytes: Uint8Array,
  address: bigint | number = 0,
): SmbiosEntryPoint {
  bytes = bytesOnly(bytes, "parseSmbiosEntryPoint");
  address = toAddress(address, "address");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const where = `SMBIOS entry point at ${hex(address)}`;
  if (anchorAt(bytes, 0, "_SM3_")) {
    if (bytes.length < 24) throw new SyntaxError(`Cannot parse the ${where}: truncated`);
    const length = bytes[6];
    if (length < 24 || length > bytes.length) {
      throw new SyntaxError(`Cannot parse the ${where}: length ${length} out of range`);
    }
    if (!checksumOk(bytes, 0, length)) {
      throw new SyntaxError(`Cannot parse the ${where}: bad checksum`);
    }
    const table = dv.getBigUint64(16, true);
    return {
      anchor: "_SM3_",
      address,
      length,
      version: { major: bytes[7], minor: bytes[8], docrev: bytes[9] },
      tableAddress: table,
      tableLength: dv.getUint32(12, true),
    };
  }
  if (anchorAt(bytes, 0, "_SM_")) {
    if (bytes.length < 31) throw new SyntaxError(`Cannot parse the ${where}: truncated`);
    let length = bytes[5];
    // SMBIOS 2.1 states 0x1e, one byte short of the real 0x1f (a known erratum).
    if (length === 0x1e && bytes[6] === 2 && bytes[7] === 1) length = 0x1f;
    if (length < 0x1f || length > bytes.length) {
      throw new SyntaxError(`Cannot parse the ${where}: length ${length} out of range`);
    }
    if (!checksumOk(bytes, 0, length)) {
      throw new SyntaxError(`Cannot parse the ${where}: bad checksum`);
    }
    if (!anchorAt(bytes, 0x10, "_DMI_") || !checksumOk(bytes, 0x10, 15)) {
      throw new SyntaxError(`Cannot parse the ${where}: bad _DMI_ intermediate entry point`);
    }
    return {
      anchor: "_SM_",
      address,
      length,
      version: { major: bytes[6], minor: bytes[7] },
      tableAddress: BigInt(dv.getUint32(0x18, true)),
      tableLength: dv.getUint16(0x16, true),
      structureCount: dv.getUint16(0x1c, true),
    };
  }
  throw new SyntaxError(`Cannot parse the ${where}: no "_SM_" or "_SM3_" anchor`);
}

/**
 * Finds the SMBIOS entry point in a memory segment, as the BIOS places it:
 * on a 16-byte boundary of 0xF0000-0xFFFFF. A 3.x entry point wins over a
 * 2.x one; candidates whose checksum fails are skipped.
 *
 * @param segment The segment's bytes.
 * @param base The physical address of `segment[0]` (0xF0000 for the BIOS area),
 * a bigint or a safe integer.
 * @returns The entry point, or `undefined` when there is none.
 *
 * @example No entry point in an empty segment
 * ```ts
 * import { findSmbiosEntryPoint } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(findSmbiosEntryPoint(new Uint8Array(0x10000), 0xf0000), undefined);
 * ```
 */
export function findSmbiosEntryPoint(
  segment: Uint8Array,
  base: bigint | number,
): SmbiosEntryPoint | undefined {
  segment = bytesOnly(segment, "findSmbiosEntryPoint");
  const at0 = toAddress(base, "base");
  let found: SmbiosEntryPoint | undefined;
  for (let at = 0; at + 16 <= segment.length; at += 16) {
    const is3 = anchorAt(segment, at, "_SM3_");
    if (!is3 && (found || !anchorAt(segment, at, "_SM_"))) continue;
    try {
      const ep = parseSmbiosEntryPoint(segment.subarray(at), at0 + BigInt(at));
      if (ep.anchor === "_SM3_") return ep;
      found = ep;
    } catch {
      // A stray anchor or a bad checksum: keep looking.
    }
  }
  return found;
}

/**
 * Splits an SMBIOS structure table into structures, each with its
 * formatted area and its strings. Stops at the end-of-table structure (type
 * 127), after `count` structures when given (2.x), or at the end of the bytes.
 *
 * @param table The table's bytes.
 * @param count The number of structures the 2.x entry point states.
 * @returns The structures in table order.
 * @throws {SyntaxError} When a structure's header is shorter than 4 bytes.
 *
 * @example Strings follow each structure
 * ```ts
 * import { decodeSmbiosTable } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * // A type 0 structure with strings "ACME", "1.0", then the end of table.
 * const bytes = [0, 0x12, 0, 0, 1, 2, 0, 0, 0, ...new Array(9).fill(0)];
 * const text = [..."ACME\u00001.0\u0000\u0000"].map((c) => c.charCodeAt(0));
 * const end = [127, 4, 1, 0, 0, 0];
 * const [bios] = decodeSmbiosTable(new Uint8Array([...bytes, ...text, ...end]));
 * assertEquals(bios.strings, ["ACME", "1.0"]);
 * ```
 */
export function decodeSmbiosTable(table: Uint8Array, count?: number): SmbiosStructure[] {
  table = bytesOnly(table, "decodeSmbiosTable");
  if (count !== undefined) integer(count, "count");
  const out: SmbiosStructure[] = [];
  let at = 0;
  while (at + 4 <= table.length && (count === undefined || out.length < count)) {
    const type = table[at];
    const length = table[at + 1];
    const handle = table[at + 2] | (table[at + 3] << 8);
    if (length < 4) {
      throw new SyntaxError(
        `Cannot decode the SMBIOS structure at offset ${at}: length ${length} is below 4`,
      );
    }
    if (at + length > table.length) break;
    const data = table.slice(at, at + length);
    // Strings: NUL-terminated, the set ended by an extra NUL ("\0\0" when none).
    let p = at + length;
    const strings: string[] = [];
    if (p + 1 < table.length && table[p] === 0 && table[p + 1] === 0) {
      p += 2;
    } else {
      while (p < table.length) {
        const end = table.indexOf(0, p);
        if (end < 0) {
          p = table.length;
          break;
        }
        strings.push(latin1.decode(table.subarray(p, end)));
        p = end + 1;
        if (p >= table.length || table[p] === 0) {
          p++;
          break;
        }
      }
    }
    out.push({ type, handle, data, strings });
    at = p;
    if (type === 127) break;
  }
  return out;
}

function stringAt(s: SmbiosStructure, offset: number): string | undefined {
  if (offset >= s.data.length) return undefined;
  const n = s.data[offset];
  return n === 0 ? "" : (s.strings[n - 1] ?? "").trim();
}

/**
 * Formats a 16-byte SMBIOS UUID. From SMBIOS 2.6 on, the first three fields
 * (time-low, time-mid, time-high) are stored little-endian, as dmidecode and
 * the kernel read them; before 2.6 all of it is in network order.
 *
 * @param bytes The 16 bytes as stored in the type 1 structure.
 * @param version The SMBIOS version the table declares.
 * @returns The canonical lower-case form, or `undefined` for all zeros or all ones.
 *
 * @example Mixed-endian from SMBIOS 2.6 on
 * ```ts
 * import { smbiosUuid } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const raw = new Uint8Array([
 *   0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
 *   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
 * ]);
 * assertEquals(smbiosUuid(raw, { major: 2, minor: 8 }), "00112233-4455-6677-8899-aabbccddeeff");
 * ```
 */
export function smbiosUuid(
  bytes: Uint8Array,
  version: { major: number; minor: number },
): string | undefined {
  bytes = bytesOnly(bytes, "smbiosUuid");
  const { major, minor } = readOptions(version, "version", ["major", "minor"] as const);
  integer(major, "major version");
  integer(minor, "minor version");
  version = { major: major as number, minor: minor as number };
  if (bytes.length < 16) return undefined;
  const b = [...bytes.subarray(0, 16)];
  if (b.every((x) => x === 0) || b.every((x) => x === 0xff)) return undefined;
  const mixed = version.major > 2 || (version.major === 2 && version.minor >= 6);
  const order = mixed
    ? [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
    : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const h = order.map((i) => b[i].toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Decodes an SMBIOS table found through `entryPoint`: every structure, and
 * the BIOS (type 0) and system (type 1) information.
 *
 * @param entryPoint The checked entry point.
 * @param table The table's bytes (read from `entryPoint.tableAddress`).
 * @returns The decoded table.
 *
 * @example Type 1, the system
 * ```ts
 * import { decodeSmbios, type SmbiosEntryPoint } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const entryPoint: SmbiosEntryPoint = {
 *   anchor: "_SM_", address: 0xf5a0n, length: 31, version: { major: 2, minor: 8 },
 *   tableAddress: 0xf5c0n, tableLength: 64, structureCount: 2,
 * };
 * const type1 = [1, 0x1b, 1, 0, 1, 2, 0, 3, ...new Array(16).fill(0), 6, 0, 0];
 * const text = [..."QEMU\u0000Standard PC\u0000S-123\u0000\u0000"].map((c) => c.charCodeAt(0));
 * const end = [127, 4, 2, 0, 0, 0];
 * const smbios = decodeSmbios(entryPoint, new Uint8Array([...type1, ...text, ...end]));
 * assertEquals(smbios.system?.product, "Standard PC");
 * assertEquals(smbios.system?.serial, "S-123");
 * ```
 */
export function decodeSmbios(entryPoint: SmbiosEntryPoint, table: Uint8Array): Smbios {
  if (entryPoint === null || typeof entryPoint !== "object") {
    throw new TypeError(`Cannot use entryPoint "${show(entryPoint)}": expected an entry point`);
  }
  const ep = readOptions(entryPoint, "entryPoint", ["structureCount", "version"] as const);
  const v = readOptions(ep.version, "the entry point's version", ["major", "minor"] as const);
  const major = integer(v.major, "major version");
  const minor = integer(v.minor, "minor version");
  const structures = decodeSmbiosTable(table, ep.structureCount as number | undefined);
  const out: Smbios = { entryPoint, version: `${major}.${minor}`, structures };
  const t0 = structures.find((s) => s.type === 0);
  if (t0) {
    out.bios = {
      vendor: stringAt(t0, 4) ?? "",
      version: stringAt(t0, 5) ?? "",
      releaseDate: stringAt(t0, 8) ?? "",
    };
  }
  const t1 = structures.find((s) => s.type === 1);
  if (t1) {
    const system: SmbiosSystem = {
      manufacturer: stringAt(t1, 4) ?? "",
      product: stringAt(t1, 5) ?? "",
      version: stringAt(t1, 6) ?? "",
      serial: stringAt(t1, 7) ?? "",
    };
    if (t1.data.length >= 0x18) {
      const uuid = smbiosUuid(t1.data.subarray(8, 24), entryPoint.version);
      if (uuid) system.uuid = uuid;
    }
    if (t1.data.length >= 0x1b) {
      system.sku = stringAt(t1, 0x19);
      system.family = stringAt(t1, 0x1a);
    }
    out.system = system;
  }
  return out;
}
