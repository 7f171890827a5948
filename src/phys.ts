/**
 * `PhysicalMemory`: physical memory through `/dev/mem` (or another memory
 * device), gated on Deno's permissions for that device, with accesses of
 * exactly the width asked for and errors that say which kernel rule refused.
 *
 * @module
 */

import { ERRNO, errnoCode, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { openHint, permHint } from "./_phys_refusal.ts";
import { cString, inRange, MAX_BYTES, roundUp } from "./_validate.ts";
import { type Region, regionOf } from "./_region.ts";
import { createMapping, type Mapping } from "./mapping.ts";
import { absolutePath } from "./permissions.ts";
import { lookUp, openLookedUp, STALE_HINT } from "./_gate.ts";
import { hex, readOptions, show } from "./_args.ts";
import {
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  ObjectCreate,
  ObjectKeys,
} from "./_primordials.ts";
import { decodeSmbios, findSmbiosEntryPoint, type Smbios } from "./smbios.ts";

/**
 * The highest physical address memkit accepts: 2^52, x86-64's architectural
 * limit. A bigint, as every address memkit returns.
 *
 * @example Compared with a physical address
 * ```ts
 * import { MAX_PHYS_ADDRESS } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(MAX_PHYS_ADDRESS, 2n ** 52n);
 * ```
 */
export const MAX_PHYS_ADDRESS: bigint = 2n ** 52n;
/** The same limit as a number, for the arithmetic below (exact: below 2^53). */
const MAX_PHYS = Number(MAX_PHYS_ADDRESS);

/** How a physical mapping is cached. */
export type PhysCache = "default" | "uncached";

/** Options of {@linkcode PhysicalMemory.open}. */
export interface PhysicalMemoryOptions {
  /** The memory device: a character device, `/dev/mem` by default. */
  device?: string;
  /** Open it read-write: `writeU*` and `"rw"` mappings (needs `--allow-write`). Default false. */
  write?: boolean;
  /**
   * The cache mode of `readU*`/`writeU*`, `read()` and mappings that do not
   * say: `"default"` (the kernel's choice: write-back for RAM-like ranges,
   * uncached where the firmware's MTRRs say so) or `"uncached"` (`O_SYNC`,
   * as devmem2 and busybox `devmem` open it). Default `"default"`.
   */
  cache?: PhysCache;
}

/** Options of {@linkcode PhysicalMemory.map}. */
export interface PhysMapOptions {
  /** The cache mode of this mapping; default the one the device was opened with. */
  cache?: PhysCache;
  /** `"r"` (default) or `"rw"` (needs the device opened with `write: true`). */
  access?: "r" | "rw";
}

function toPhys(value: unknown, what = "physical address"): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof value === "bigint" && BigInt(n as number) !== value) {
    throw new RangeError(`Cannot use ${what} "${value}": expected 0 to ${MAX_PHYS_ADDRESS}`);
  }
  return inRange(n, what, 0, MAX_PHYS);
}

const WIDTHS = [1, 2, 4, 8] as const;
type Width = (typeof WIDTHS)[number];

function aligned(address: number, width: Width): void {
  if (address % width !== 0) {
    throw new RangeError(
      `Cannot access ${width * 8} bits at physical address ${hex(address)}: ` +
        `not a multiple of ${width} (one access of exactly that width must be aligned)`,
    );
  }
}

// ---- PhysicalMemory ----

// The backstop for a device dropped unclosed: its descriptors are closed
// once the object is collected. Its mappings do not need them (mmap keeps
// its own reference to the file), nor do they reach this object.
const closer = new FinalizationRegistry<Partial<Record<PhysCache, number>>>((fds) => {
  for (const cache of ObjectKeys(fds) as PhysCache[]) lib().mk_core_close(fds[cache]!);
});

/**
 * A mapping this device made, for `readU*`/`writeU*` to go through. Only its
 * region is kept, not the `Mapping`: views of it keep the pages mapped after
 * the Mapping is collected, and the region says whether they still are and
 * with which protection.
 */
interface Tracked {
  region: Region;
  /** The region's start address, as a number (user addresses are below 2^47). */
  base: number;
  /** The physical address of the region's first page. */
  physBase: number;
  phys: number;
  length: number;
}

/**
 * Physical memory through `/dev/mem` (or another memory device).
 *
 * Requires `--allow-ffi` and `--allow-read` for the device, and also
 * `--allow-write` for it when opened with `write: true`: checked before the
 * native side opens anything. The native side opens only that path, and only
 * if it is a character device.
 *
 * What the kernel allows (x86): with `CONFIG_STRICT_DEVMEM`, `/dev/mem`
 * reaches the first 1 MiB and what is not System RAM (ROM, ACPI and SMBIOS
 * tables, device memory), and with `CONFIG_IO_STRICT_DEVMEM` not what a
 * driver claimed. Each refusal is a {@linkcode MemkitError} whose message
 * says which rule applied and what would change it.
 *
 * The hazard memkit cannot remove: under `CONFIG_IO_STRICT_DEVMEM`, when a
 * driver claims a range after it was mapped, the kernel revokes the mapping
 * and the next touch of its views raises SIGBUS. Do not keep mappings of
 * device memory that a driver may load for. And writes to physical memory
 * can corrupt the kernel or a device: `write: true` is the caller's decision.
 *
 * @example Reading the BIOS area (as root, on a machine with /dev/mem)
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/mem --v8-flags=--js-immutable-arraybuffer (as root)
 * import { PhysicalMemory } from "@memkit/memkit";
 *
 * using mem = PhysicalMemory.open();
 * using bios = mem.map(0xf0000, 0x10000);
 * console.log(bios.bytes().subarray(0xfff0)); // the reset vector
 * console.log(mem.readU32(0xffff0).toString(16)); // one 32-bit load
 * console.log(mem.smbios().system?.product);
 * ```
 */
export class PhysicalMemory {
  #device: string;
  #write: boolean;
  #cache: PhysCache;
  readonly #fds: Partial<Record<PhysCache, number>> = ObjectCreate(null);
  #closed = false;
  #tracked: Tracked[] = [];
  #cell = new BigUint64Array(1);
  #cellBytes = new Uint8Array(this.#cell.buffer);
  #cell16 = new Uint16Array(this.#cell.buffer);
  #cell32 = new Uint32Array(this.#cell.buffer);

  /** @ignore */
  private constructor(device: string, write: boolean, cache: PhysCache) {
    this.#device = device;
    this.#write = write;
    this.#cache = cache;
    // The backstop holds the table of descriptors (not this object): the
    // ones opened later, lazily, are closed with it too.
    FinalizationRegistryPrototypeRegister(closer, this, this.#fds, this);
  }

  /**
   * Opens a physical memory device.
   *
   * Requires `--allow-ffi`, `--allow-read=<device>` and, with `write: true`,
   * `--allow-write=<device>`.
   *
   * The path checked is the path opened: `device` is made absolute (against
   * `Deno.cwd()`) and `.`, `..` and repeated slashes are collapsed first, as
   * Deno's check does (so `"/dev/../dev/mem"` is `"/dev/mem"`, and
   * {@linkcode PhysicalMemory.device} reports that form). When it is a
   * symlink, the device it leads to needs the same permissions.
   *
   * @param options The device (default `/dev/mem`), write access and cache mode.
   * @returns The open device.
   * @throws {Deno.errors.NotCapable} When a permission is missing.
   * @throws {MemkitError} `ENOENT` (no `/dev/mem`: a kernel without
   * `CONFIG_DEVMEM`), `EACCES` (not root), `EPERM` (lockdown, or no
   * `CAP_SYS_RAWIO`), `ENODEV` (not a character device), `ESTALE` (the path
   * named another file by the time it was opened); each message says which
   * and what would change it.
   *
   * @example Nothing is opened without --allow-read for the device
   * ```ts
   * import { PhysicalMemory } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * // Without --allow-read=/dev/mem, nothing is opened at all.
   * assertThrows(() => PhysicalMemory.open(), Deno.errors.NotCapable);
   * ```
   */
  static open(options?: PhysicalMemoryOptions): PhysicalMemory {
    const opts = readOptions(options, "options", ["device", "write", "cache"] as const);
    const device = (opts.device ?? "/dev/mem") as string;
    cString(device, "device");
    if (device === "") throw new TypeError('Cannot open "": expected a device path');
    const write = opts.write ?? false;
    if (typeof write !== "boolean") {
      throw new TypeError(`Cannot use write "${show(write)}": expected a boolean`);
    }
    const cache = toCache(opts.cache ?? "default");
    // The device path as Deno's check sees it (absolute, `.`, `..` and
    // repeated slashes collapsed): the path checked is the path opened.
    const mem = new PhysicalMemory(absolutePath(device), write, cache);
    mem.#fd(cache);
    return mem;
  }

  /** The device path. */
  get device(): string {
    return this.#device;
  }

  /** Whether it was opened read-write. */
  get writable(): boolean {
    return this.#write;
  }

  /** The default cache mode. */
  get cache(): PhysCache {
    return this.#cache;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #fd(cache: PhysCache): number {
    const have = this.#fds[cache];
    if (have !== undefined) return have;
    const flags = (this.#write ? MK.PHYS_WRITE : 0) | (cache === "uncached" ? MK.PHYS_UNCACHED : 0);
    // Every open is gated, the lazy second one (the other cache mode) too:
    // a permission revoked since open() must hold. The device a symlink
    // leads to needs the same permissions as the path named.
    const looked = lookUp(
      this.#write ? "physWrite" : "physRead",
      this.#device,
      true,
      (errno) => openHint(this.#device, errno),
    );
    const ret = openLookedUp(looked, (cpath, pathFd) => lib().mk_phys_open(cpath, flags, pathFd));
    if (ret < 0n) {
      const errno = Number(-ret);
      throw new MemkitError(errno, "open", {
        path: this.#device,
        hint: errnoCode(errno) === "ESTALE" ? STALE_HINT : openHint(this.#device, errno),
      });
    }
    this.#fds[cache] = Number(ret);
    return Number(ret);
  }

  #alive(op: string): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op}: "${this.#device}" is closed`);
    }
  }

  #fail(ret: bigint, op: string, start: number, end: number, cache: PhysCache): never {
    const errno = Number(-ret);
    const code = errnoCode(errno);
    let hint: string | undefined;
    if (code === "EPERM" || code === "EBUSY") {
      hint = permHint(this.#device, start, end);
    } else if (cache === "uncached" && (code === "EAGAIN" || code === "EINVAL")) {
      hint = `the kernel already maps ${hex(start)}-${hex(end - 1)} cached (firmware tables ` +
        "above 1 MiB often are), and x86 PAT refuses a conflicting uncached mapping; " +
        'use cache "default", which maps it the way the kernel does';
    } else if (code === "EINVAL" || code === "ENXIO" || code === "EFAULT") {
      hint = `${hex(start)}-${hex(end - 1)} is beyond what "${this.#device}" maps`;
    } else if (code === "ENODEV") {
      hint = `"${this.#device}" cannot be mapped (it is not a memory device)`;
    }
    throw new MemkitError(errno, op, { path: `${this.#device}@${hex(start)}`, hint });
  }

  /**
   * Maps `length` bytes of physical memory from `physAddress`: the pages
   * that hold them and no more, with the mapping's views starting at
   * `physAddress` itself (no alignment needed).
   *
   * @param physAddress The first physical address.
   * @param length The number of bytes.
   * @param options The cache mode and access.
   * @returns A {@linkcode Mapping}; its `bytes()` and `view()` are zero-copy.
   * @throws {MemkitError} `EPERM` (STRICT_DEVMEM or IO_STRICT_DEVMEM, said
   * which), `EAGAIN` for `"uncached"` over a range the kernel maps cached.
   *
   * @example A window at an unaligned address
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/zero
   * import { PhysicalMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * // /dev/zero maps like a memory device that holds zeros: no root needed.
   * using mem = PhysicalMemory.open({ device: "/dev/zero" });
   * using m = mem.map(0x12345, 10);
   * assertEquals(m.length, 10);
   * assertEquals(m.address % 4096n, 0x345n);
   * ```
   */
  map(physAddress: number | bigint, length: number, options?: PhysMapOptions): Mapping {
    const opts = readOptions(options, "options", ["cache", "access"] as const);
    const phys = toPhys(physAddress);
    const len = inRange(length, "length", 1, MAX_BYTES);
    if (phys + len > MAX_PHYS) {
      throw new RangeError(`Cannot map ${len} bytes at ${hex(phys)}: beyond 2^52`);
    }
    const cache = toCache(opts.cache ?? this.#cache);
    const access = opts.access ?? "r";
    if (access !== "r" && access !== "rw") {
      throw new TypeError(`Cannot use access "${show(access)}": expected "r", "rw"`);
    }
    this.#alive("map physical memory");
    if (access === "rw" && !this.#write) {
      throw new TypeError(
        `Cannot map "${this.#device}" read-write: it was opened read-only; open it with write: true`,
      );
    }
    const page = pageSize();
    const base = Math.floor(phys / page) * page;
    const offset = phys - base;
    const span = roundUp(offset + len, page);
    const prot = access === "rw" ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    const ret = lib().mk_map_fd(this.#fd(cache), BigInt(base), BigInt(span), prot);
    if (ret < 0n) this.#fail(ret, "map", phys, phys + len, cache);
    const mapping = createMapping({
      address: ret,
      length: len,
      access,
      maxAccess: access,
      name: `${this.#device}@${hex(phys)}`,
      pieces: [{ source: {}, offset: phys, at: 0, length: len }],
      offset,
    });
    this.#tracked = this.#tracked.filter((t) => t.region.live && t.region.backed);
    const region = regionOf(mapping);
    this.#tracked.push({
      region,
      base: Number(region.address),
      physBase: base,
      phys,
      length: len,
    });
    return mapping;
  }

  /**
   * Copies `length` bytes of physical memory from `physAddress` (`pread` of
   * the device, as dmidecode does when mapping fails).
   *
   * @param physAddress The first physical address.
   * @param length The number of bytes, at most 1 GiB.
   * @returns A fresh copy.
   * @throws {MemkitError} When the kernel refuses any of the range.
   *
   * @example A copy
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/zero
   * import { PhysicalMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using mem = PhysicalMemory.open({ device: "/dev/zero" });
   * assertEquals(mem.read(0xf0000, 4), new Uint8Array(4));
   * ```
   */
  read(physAddress: number | bigint, length: number): Uint8Array<ArrayBuffer> {
    const phys = toPhys(physAddress);
    const len = inRange(length, "length", 0, 2 ** 30);
    this.#alive("read physical memory");
    const out = new Uint8Array(len);
    if (len === 0) return out;
    const fd = this.#fd(this.#cache);
    const ret = lib().mk_phys_read(fd, BigInt(phys), out, BigInt(len));
    if (ret === BigInt(-ERRNO.EFAULT)) {
      // EFAULT: /dev/mem's read() stops at the end of RAM (high_memory);
      // device memory above it is reached by mapping, so copy from a mapping.
      using m = this.map(phys, len);
      return m.read();
    }
    if (ret < 0n) this.#fail(ret, "read", phys, phys + len, this.#cache);
    const n = Number(ret);
    if (n < len) {
      // Refused from some page on: find out why, from that page.
      const probe = lib().mk_phys_read(fd, BigInt(phys + n), new Uint8Array(1), 1n);
      const errno = probe < 0n ? probe : BigInt(-ERRNO.ENXIO); // the device ended
      this.#fail(errno, "read", phys + n, phys + len, this.#cache);
    }
    return out;
  }

  #mapped(phys: number, width: number, write: boolean): bigint | undefined {
    const need = write ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    for (const t of this.#tracked) {
      if (phys < t.phys || phys + width > t.phys + t.length) continue;
      // The region, not the Mapping: it stays mapped (backed) while the
      // Mapping or any view of it is reachable, and is no longer once closed
      // or moved (a relocating protect()) or collected. Its protection is
      // the page's now, as the Mapping last set it (after protect() on part
      // of it, pages differ). No protection key: its rights are per thread
      // and per access.
      const r = t.region;
      if (!r.live || !r.backed || r.pkeyRights !== undefined) continue;
      const pages = r.protPages;
      const prot = pages === undefined
        ? r.prot
        : pages[Math.floor((phys - t.physBase) / pageSize())];
      if ((prot & need) === need) return BigInt(t.base + (phys - t.physBase));
    }
    return undefined;
  }

  #peek(physAddress: number | bigint, width: Width): void {
    const phys = toPhys(physAddress);
    aligned(phys, width);
    this.#alive("read physical memory");
    const at = this.#mapped(phys, width, false);
    const ret = at === undefined
      ? lib().mk_phys_peek(this.#fd(this.#cache), BigInt(phys), width, this.#cellBytes)
      : lib().mk_phys_load(at, width, this.#cellBytes);
    if (ret < 0n) this.#fail(ret, "read", phys, phys + width, this.#cache);
  }

  #poke(physAddress: number | bigint, width: Width, value: bigint): void {
    const phys = toPhys(physAddress);
    aligned(phys, width);
    this.#alive("write physical memory");
    if (!this.#write) {
      throw new TypeError(
        `Cannot write "${this.#device}": it was opened read-only; open it with write: true`,
      );
    }
    const at = this.#mapped(phys, width, true);
    const ret = at === undefined
      ? lib().mk_phys_poke(this.#fd(this.#cache), BigInt(phys), width, value)
      : lib().mk_phys_store(at, width, value);
    if (ret < 0n) this.#fail(ret, "write", phys, phys + width, this.#cache);
  }

  /**
   * One 8-bit load at `physAddress`. Like the other `readU*`/`writeU*`, it
   * goes through a live mapping of this device that covers the address
   * (one FFI call, no system call), or else maps the page, accesses it and
   * unmaps it in one native call.
   *
   * @param physAddress The physical address.
   * @returns The byte.
   *
   * @example One byte
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/zero
   * import { PhysicalMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using mem = PhysicalMemory.open({ device: "/dev/zero" });
   * assertEquals(mem.readU8(0xf0001), 0);
   * ```
   */
  readU8(physAddress: number | bigint): number {
    this.#peek(physAddress, 1);
    return this.#cellBytes[0];
  }

  /**
   * One 16-bit load (little-endian, as the CPU does it) at an even `physAddress`.
   *
   * @param physAddress The physical address, a multiple of 2.
   * @returns The value.
   */
  readU16(physAddress: number | bigint): number {
    this.#peek(physAddress, 2);
    return this.#cell16[0];
  }

  /**
   * One 32-bit load at `physAddress`, a multiple of 4: exactly one 32-bit
   * access (devmem2's long-standing bug was a 64-bit one), which is what
   * device registers need.
   *
   * @param physAddress The physical address, a multiple of 4.
   * @returns The value.
   *
   * @example One aligned 32-bit load
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/zero
   * import { PhysicalMemory } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using mem = PhysicalMemory.open({ device: "/dev/zero" });
   * assertEquals(mem.readU32(0xf0000), 0);
   * assertThrows(() => mem.readU32(0xf0002), RangeError); // unaligned
   * ```
   */
  readU32(physAddress: number | bigint): number {
    this.#peek(physAddress, 4);
    return this.#cell32[0];
  }

  /**
   * One 64-bit load at `physAddress`, a multiple of 8.
   *
   * @param physAddress The physical address, a multiple of 8.
   * @returns The value, as a bigint.
   */
  readU64(physAddress: number | bigint): bigint {
    this.#peek(physAddress, 8);
    return this.#cell[0];
  }

  /**
   * One 8-bit store. Needs the device opened with `write: true`.
   *
   * @param physAddress The physical address.
   * @param value 0 to 255.
   *
   * @example Writes need write: true
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/zero
   * import { PhysicalMemory } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * using mem = PhysicalMemory.open({ device: "/dev/zero" });
   * assertThrows(() => mem.writeU8(0, 1), TypeError); // opened read-only
   * ```
   */
  writeU8(physAddress: number | bigint, value: number): void {
    this.#poke(physAddress, 1, BigInt(inRange(value, "value", 0, 0xff)));
  }

  /**
   * One 16-bit store at an even address. Needs `write: true`.
   *
   * @param physAddress The physical address, a multiple of 2.
   * @param value 0 to 65535.
   */
  writeU16(physAddress: number | bigint, value: number): void {
    this.#poke(physAddress, 2, BigInt(inRange(value, "value", 0, 0xffff)));
  }

  /**
   * One 32-bit store at a multiple of 4. Needs `write: true`.
   *
   * @param physAddress The physical address, a multiple of 4.
   * @param value 0 to 2^32 - 1.
   */
  writeU32(physAddress: number | bigint, value: number): void {
    this.#poke(physAddress, 4, BigInt(inRange(value, "value", 0, 0xffffffff)));
  }

  /**
   * One 64-bit store at a multiple of 8. Needs `write: true`.
   *
   * @param physAddress The physical address, a multiple of 8.
   * @param value 0 to 2^64 - 1.
   */
  writeU64(physAddress: number | bigint, value: bigint): void {
    if (typeof value !== "bigint" || value < 0n || value >= 1n << 64n) {
      throw new RangeError(`Cannot use value "${show(value)}": expected a bigint 0 to 2^64 - 1`);
    }
    this.#poke(physAddress, 8, value);
  }

  /**
   * Finds and decodes the SMBIOS tables, the classic use of `/dev/mem`
   * (dmidecode's): the entry point in 0xF0000-0xFFFFF (`_SM3_` preferred to
   * `_SM_`), its checksum, then the structure table wherever it points,
   * mapped (or copied with `read()` where mapping is refused).
   *
   * @returns The decoded table: `bios` (type 0), `system` (type 1), every structure.
   * @throws {Deno.errors.NotFound} When there is no valid entry point (an
   * EFI-only machine keeps it elsewhere).
   */
  smbios(): Smbios {
    this.#alive("read SMBIOS");
    const segment = this.#copy(0xf0000, 0x10000);
    const entryPoint = findSmbiosEntryPoint(segment, 0xf0000);
    if (!entryPoint) {
      throw new Deno.errors.NotFound(
        `Cannot find an SMBIOS entry point in 0xf0000-0xfffff of "${this.#device}" ` +
          "(on EFI machines the firmware passes it elsewhere: /sys/firmware/dmi/tables)",
      );
    }
    // The entry point is firmware data: a table of 0 bytes, over 1 MiB (real
    // ones are a few KiB) or beyond physical addresses is a corrupt one.
    const { tableAddress, tableLength } = entryPoint;
    if (
      tableLength < 4 || tableLength > 1 << 20 ||
      tableAddress + BigInt(tableLength) > MAX_PHYS_ADDRESS
    ) {
      throw new SyntaxError(
        `Cannot read the SMBIOS table: its entry point gives ${tableLength} bytes at ` +
          `${hex(tableAddress)}, not a table (expected 4 bytes to 1 MiB below 2^52)`,
      );
    }
    const table = this.#copy(Number(tableAddress), tableLength);
    return decodeSmbios(entryPoint, table);
  }

  /** Bytes through a mapping (as dmidecode does), or read() when mapping is refused. */
  #copy(phys: number, length: number): Uint8Array<ArrayBuffer> {
    try {
      using m = this.map(phys, length, { cache: "default" });
      return m.read();
    } catch (e) {
      if (!(e instanceof MemkitError)) throw e;
      return this.read(phys, length);
    }
  }

  /**
   * Closes the device. Mappings made from it stay valid until closed
   * themselves. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Unregister first: the backstop must never close these descriptor
    // numbers again, after they were reused.
    FinalizationRegistryPrototypeUnregister(closer, this);
    const fds = this.#fds;
    for (const cache of ObjectKeys(fds) as PhysCache[]) {
      const fd = fds[cache]!;
      delete fds[cache];
      lib().mk_core_close(fd);
    }
    this.#tracked = [];
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function toCache(value: unknown): PhysCache {
  if (value === "default" || value === "uncached") return value;
  throw new TypeError(`Cannot use cache "${show(value)}": expected "default", "uncached"`);
}

/**
 * Opens `/dev/mem` (or `device`), decodes its SMBIOS tables and closes it:
 * {@linkcode PhysicalMemory.smbios} in one call.
 *
 * Requires `--allow-ffi` and `--allow-read` for the device, and root.
 *
 * @param device The memory device, `/dev/mem` by default.
 * @returns The decoded SMBIOS table.
 *
 * @example The system's serial number (as root, on a machine with /dev/mem)
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/mem (as root, on a machine with /dev/mem)
 * import { readSmbios } from "@memkit/memkit";
 *
 * const { system } = readSmbios();
 * console.log(system?.manufacturer, system?.product, system?.serial, system?.uuid);
 * ```
 */
export function readSmbios(device = "/dev/mem"): Smbios {
  using mem = PhysicalMemory.open({ device });
  return mem.smbios();
}

// ---- the names before 0.x: deprecated aliases, removed in 1.0.0 ----

/**
 * The former name of {@linkcode readSmbios}.
 *
 * @deprecated Renamed to {@linkcode readSmbios}: no two exports differ
 * only by case (`smbios`, `Smbios`); removed in 1.0.0.
 *
 * @example The same function as readSmbios
 * ```ts
 * import { readSmbios, smbios } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(smbios, readSmbios);
 * ```
 */
export const smbios: typeof readSmbios = readSmbios;
