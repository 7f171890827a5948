/**
 * `SharedMemory`: POSIX shared memory (`shm_open`), named segments under
 * `/dev/shm` that other processes (and other languages: Python's
 * `multiprocessing.shared_memory`) open by name.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { boolean, bytesOf, readOptions, show } from "./_args.ts";
import {
  BigIntCtor,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  MapPrototypeClear,
  MathMax,
  MathMin,
} from "./_primordials.ts";
import { cString, inRange, MAX_BYTES, window } from "./_validate.ts";
import { toAccess } from "./_access.ts";
import type { Region } from "./_region.ts";
import { createMapping, type Mapping } from "./mapping.ts";
import { queryPermission, requirePermissions } from "./permissions.ts";

/** NAME_MAX of Linux: the longest file name in `/dev/shm`, in bytes. */
const NAME_MAX = 255;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of {@linkcode SharedMemory.create}. */
export interface SharedMemoryCreateOptions {
  /** The size in bytes (at least 1), reserved at once (`fallocate`). */
  size: number;
  /** The permission bits of a new segment, less the umask (as `shm_open`); default `0o600`. */
  mode?: number;
  /**
   * Fail with `EEXIST` when the segment exists (`O_EXCL`, the default). With
   * `false`, an existing segment is opened instead and reserved up to at
   * least `size` (grown if smaller, never shrunk).
   */
  exclusive?: boolean;
}

/** Options of {@linkcode SharedMemory.open}. */
export interface SharedMemoryOpenOptions {
  /** `"rw"` (default: `O_RDWR`, mappings may be writable) or `"r"` (`O_RDONLY`). */
  access?: "r" | "rw";
}

/** Options of {@linkcode SharedMemory.map}. */
export interface SharedMemoryMapOptions {
  /** Where the mapping starts in the segment: a multiple of the page size. Default 0. */
  offset?: number;
  /** How many bytes: a multiple of the page size, or up to the end. Default: to the end. */
  length?: number;
  /** The segment's access by default; `"rw"` needs a segment opened `"rw"`. */
  access?: "r" | "rw";
}

/** A live process that maps a segment, from its `/proc/<pid>/maps`. */
export interface SharedMemoryMapper {
  /** The process. */
  pid: number;
  /** How many mappings (VMAs) of the segment it has. */
  mappings: number;
  /** How many bytes of address space they span. */
  bytes: number;
  /** Whether one of them is writable. */
  writable: boolean;
}

/** A segment's owner, mode and size, and (from {@linkcode SharedMemory.list}) who maps it. */
export interface SharedMemoryInfo {
  /** The POSIX name, with its slash: `"/name"`. */
  name: string;
  /** The size in bytes. */
  size: number;
  /** The bytes of memory reserved for it (less than `size` for a sparse one). */
  allocated: number;
  /** The permission bits (`0o600`). */
  mode: number;
  /** The owner's user id. */
  uid: number;
  /** The owner's group id. */
  gid: number;
  /** When it was last written (its mtime). */
  modified: Date;
  /** The processes that map it (only from {@linkcode SharedMemory.list}). */
  mappers?: SharedMemoryMapper[];
}

/** What {@linkcode SharedMemory.list} finds. */
export interface SharedMemoryListing {
  /** Every segment in `/dev/shm`, by name, with the processes mapping it. */
  segments: SharedMemoryInfo[];
  /**
   * The live processes whose maps could not be read (another user's without
   * root, or a `--deny-read`): a segment shown with no mappers may still be
   * mapped by one of them.
   */
  skipped: number[];
}

/**
 * Checks a POSIX shared memory name and returns it without its slash: one
 * leading `/` is optional (`"/a"` and `"a"` are the same segment); empty,
 * an inner slash, `.` or `..`, a NUL or more than NAME_MAX (255) bytes is a
 * TypeError.
 */
function bareName(name: unknown): string {
  cString(name, "name");
  const s = name as string;
  const bare = s[0] === "/" ? s.substring(1) : s;
  const bad = (why: string) =>
    new TypeError(`Cannot use shared memory name "${s}": ${why}; expected "/name" or "name"`);
  if (bare === "") throw bad("empty");
  if (bare.includes("/")) throw bad("a slash after the first");
  if (bare === "." || bare === "..") throw bad(`"${bare}" names a directory`);
  if (encoder.encode(bare).length > NAME_MAX) throw bad(`longer than ${NAME_MAX} bytes`);
  return bare;
}

/** The hints for errors of opening or creating `/name`. */
const OPEN_HINTS = {
  ENOENT: "no such segment (it was never created, or was unlinked: a Python creator's " +
    "resource tracker unlinks its segments when that process exits)",
  EEXIST: "it exists already; open it, unlink it, or create with exclusive: false",
  ELOOP: "it is a symbolic link: memkit opens shared memory with O_NOFOLLOW",
  ENODEV: "it is not a regular file",
  ENOSPC: "the shared memory filesystem (/dev/shm) has no room for it; memkit reserves " +
    "every page when it creates a segment, so that a full filesystem is this error and not " +
    "a SIGBUS later",
  EOPNOTSUPP: "its filesystem cannot reserve pages (fallocate), so a full filesystem would " +
    "be a SIGBUS later",
};

/** Stat fields of a segment (mk_shm_stat). */
function statOf(bare: string | null, fd: number, what: string): BigUint64Array {
  const out = new BigUint64Array(9);
  check(
    lib().mk_shm_stat(bare === null ? null : cString(bare, "name"), fd, out),
    "stat",
    { path: what },
  );
  return out;
}

function infoOf(name: string, st: BigUint64Array): SharedMemoryInfo {
  return {
    name: `/${name}`,
    size: Number(st[0]),
    allocated: Number(st[1]),
    mode: Number(st[2]) & 0o7777,
    uid: Number(st[3]),
    gid: Number(st[4]),
    modified: new Date(Number(st[8])),
  };
}

/** NUL-separated names from a native listing (mk_shm_list, mk_shm_pids). */
function names(read: (buf: Uint8Array<ArrayBuffer>, cap: bigint) => bigint, op: string): string[] {
  let buf = new Uint8Array(16384);
  for (;;) {
    const n = Number(check(read(buf, BigIntCtor(buf.length)), op));
    if (n <= buf.length) {
      return n === 0 ? [] : decoder.decode(buf.subarray(0, n - 1)).split("\0");
    }
    buf = new Uint8Array(n + 4096);
  }
}

const closer = new FinalizationRegistry<number>((fd) => {
  lib().mk_core_close(fd);
});

/** One line of /proc/<pid>/maps: start, end, perms, offset, major:minor, inode. */
const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ ([0-9a-f]+):([0-9a-f]+) (\d+)/;

/**
 * A POSIX shared memory segment (`shm_open`): a named file in `/dev/shm`
 * that any process allowed to open it can map. Map it as often as you like:
 * {@linkcode SharedMemory.map} returns the same {@linkcode Mapping} as a
 * memfd's, with the same views and safety rules.
 *
 * Names are POSIX names: `"/name"`, and `"name"` without the slash is the
 * same segment, as Python's `multiprocessing.shared_memory` names them.
 * memkit opens `/dev/shm/<name>` natively (as glibc's `shm_open` does),
 * with `O_NOFOLLOW` and `O_CLOEXEC`.
 *
 * Requires `--allow-ffi` and `--allow-read=/dev/shm/<name>`; also
 * `--allow-write=/dev/shm/<name>` to create, unlink or resize it, or to open
 * it `"rw"` (which writable mappings need).
 *
 * **What memkit can and cannot prevent.** A named segment cannot be sealed
 * (only a memfd can), so any process that may open it `"rw"` may also shrink
 * it (`ftruncate`); touching a mapped page past the new end then raises
 * SIGBUS, which kills the process. memkit prevents what it can:
 * - it reserves every page at {@linkcode SharedMemory.create} (and the
 *   window of a `"rw"` {@linkcode SharedMemory.map}, for sparse segments
 *   made by others, as Python's `ftruncate` makes them), so a full
 *   `/dev/shm` is `ENOSPC` up front, never a SIGBUS at a later store;
 * - `map()` refuses a window past the current size, and
 *   {@linkcode SharedMemory.resize} refuses to shrink under a mapping of this
 *   process (`EBUSY`);
 * - {@linkcode SharedMemory.read} and {@linkcode SharedMemory.write} copy
 *   through the descriptor (`pread`/`pwrite`), which cannot fault: after a
 *   peer shrank the segment they return fewer bytes, and
 *   {@linkcode SharedMemory.size} says the new size.
 *
 * It cannot stop another process from shrinking the segment, and a view
 * (`bytes()`, a typed array) of a page past the new end then faults. Share
 * only with peers you trust not to shrink it, read through `read()` where
 * they might, or share a sealed `MemFd` instead.
 *
 * `mprotect` is per process: {@linkcode protect} on a mapping changes this
 * process's access only; a peer that mapped the segment writable goes on
 * writing, and this process's read-only view shows its writes.
 *
 * @example Create, write, open again by name, read
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/shm/memkit-doc --allow-write=/dev/shm/memkit-doc
 * import { SharedMemory } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using shm = SharedMemory.create("/memkit-doc", { size: 4096 });
 * try {
 *   using m = shm.map();
 *   m.bytes()[0] = 42;
 *   using again = SharedMemory.open("memkit-doc", { access: "r" });
 *   assertEquals(again.read(0, 1)[0], 42);
 * } finally {
 *   SharedMemory.unlink("/memkit-doc");
 * }
 * ```
 */
export class SharedMemory {
  #fd: number;
  #name: string;
  #access: "r" | "rw";
  /** Live regions mapping this segment, and how far into it each reaches. */
  #regions = new Map<Region, number>();

  /** @ignore */
  private constructor(fd: number, bare: string, access: "r" | "rw") {
    this.#fd = fd;
    this.#name = bare;
    this.#access = access;
    FinalizationRegistryPrototypeRegister(closer, this, fd, this);
  }

  /**
   * Creates a segment and reserves its size (`O_CREAT|O_EXCL`, then
   * `fallocate`): a full `/dev/shm` is `ENOSPC` here, and a segment that
   * cannot be reserved is removed again. Opened `"rw"`.
   *
   * Requires `--allow-ffi`, `--allow-read` and `--allow-write` for
   * `/dev/shm/<name>`.
   *
   * @param name `"/name"` or `"name"`.
   * @param options The size, the mode and whether it must be new.
   * @returns The segment, opened read-write.
   * @throws {TypeError} For a bad name (empty, an inner slash, `.` or `..`,
   * a NUL, more than 255 bytes) or option, before any system call.
   * @throws {Deno.errors.NotCapable} When a permission is missing.
   * @throws {MemkitError} `EEXIST` when it exists (with `exclusive`),
   * `ENOSPC` when `/dev/shm` has no room for it.
   *
   * @example Create a segment
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-create --allow-write=/dev/shm/memkit-create
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-create", { size: 8192, mode: 0o600 });
   * assertEquals([shm.name, shm.size], ["/memkit-create", 8192]);
   * SharedMemory.unlink("memkit-create");
   * ```
   */
  static create(name: string, options: SharedMemoryCreateOptions): SharedMemory {
    const bare = bareName(name);
    if (options === undefined) {
      throw new TypeError(`Cannot create shared memory "/${bare}": missing the options ({ size })`);
    }
    const opts = readOptions(options, "options", ["size", "mode", "exclusive"] as const);
    const size = inRange(opts.size, "size", 1, MAX_BYTES);
    const mode = inRange(opts.mode ?? 0o600, "mode", 0, 0o777);
    const exclusive = boolean(opts.exclusive ?? true, "exclusive");
    requirePermissions("shmCreate", bare);
    const flags = MK.SHM_WRITE | MK.SHM_CREATE | (exclusive ? MK.SHM_EXCLUSIVE : 0);
    const fd = check(
      lib().mk_shm_open(cString(bare, "name"), flags, mode, BigIntCtor(size)),
      "create shared memory",
      { path: `/${bare}`, hints: OPEN_HINTS },
    );
    return new SharedMemory(fd, bare, "rw");
  }

  /**
   * Opens an existing segment: `"rw"` (the default) is `O_RDWR`, `"r"` is
   * `O_RDONLY` (its mappings can never be made writable: `protect(m, "rw")`
   * is `EACCES`).
   *
   * Requires `--allow-ffi` and `--allow-read=/dev/shm/<name>`, and for
   * `"rw"` also `--allow-write=/dev/shm/<name>`.
   *
   * @param name `"/name"` or `"name"`.
   * @param options The access.
   * @returns The segment.
   * @throws {MemkitError} `ENOENT` when there is no such segment, `EACCES`
   * when its mode refuses this user, `ELOOP` for a symbolic link, `ENODEV`
   * for what is not a regular file.
   *
   * @example Opened read-only
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-open --allow-write=/dev/shm/memkit-open
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * SharedMemory.create("/memkit-open", { size: 4096 }).close();
   * using shm = SharedMemory.open("/memkit-open", { access: "r" });
   * assertEquals(shm.access, "r");
   * SharedMemory.unlink("/memkit-open");
   * ```
   */
  static open(name: string, options?: SharedMemoryOpenOptions): SharedMemory {
    const bare = bareName(name);
    const opts = readOptions(options, "options", ["access"] as const);
    const access = toAccess(opts.access ?? "rw", ["r", "rw"]) as "r" | "rw";
    requirePermissions(access === "rw" ? "shmCreate" : "shmOpen", bare);
    const fd = check(
      lib().mk_shm_open(cString(bare, "name"), access === "rw" ? MK.SHM_WRITE : 0, 0, 0n),
      "open shared memory",
      { path: `/${bare}`, hints: OPEN_HINTS },
    );
    return new SharedMemory(fd, bare, access);
  }

  /**
   * Removes the name (`shm_unlink`). Processes that have the segment open
   * or mapped keep it until they close it; a later open of the name fails.
   *
   * Requires `--allow-ffi`, `--allow-read` and `--allow-write` for
   * `/dev/shm/<name>`.
   *
   * @param name `"/name"` or `"name"`.
   * @throws {MemkitError} `ENOENT` when there is no such segment.
   *
   * @example Remove a segment's name
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-rm --allow-write=/dev/shm/memkit-rm
   * import { MemkitError, SharedMemory } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * SharedMemory.create("memkit-rm", { size: 1 }).close();
   * SharedMemory.unlink("memkit-rm");
   * assertThrows(() => SharedMemory.open("memkit-rm"), MemkitError, "No such file");
   * ```
   */
  static unlink(name: string): void {
    const bare = bareName(name);
    requirePermissions("shmCreate", bare);
    check(lib().mk_shm_unlink(cString(bare, "name")), "unlink shared memory", {
      path: `/${bare}`,
      hints: { ENOENT: "no such segment" },
    });
  }

  /**
   * The owner, mode and size of a segment, without opening it (`lstat`).
   *
   * Requires `--allow-ffi` and `--allow-read=/dev/shm/<name>`.
   *
   * @param name `"/name"` or `"name"`.
   * @returns Its name, size, reserved bytes, mode, owner and mtime.
   *
   * @example A segment's size and mode by name
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-info --allow-write=/dev/shm/memkit-info
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * SharedMemory.create("memkit-info", { size: 4096, mode: 0o600 }).close();
   * const info = SharedMemory.info("memkit-info");
   * assertEquals([info.size, info.allocated, info.mode], [4096, 4096, 0o600]);
   * SharedMemory.unlink("memkit-info");
   * ```
   */
  static info(name: string): SharedMemoryInfo {
    const bare = bareName(name);
    requirePermissions("shmOpen", bare);
    return infoOf(bare, statOf(bare, -1, `/${bare}`));
  }

  /**
   * Every segment in `/dev/shm` with its owner, mode and size, and the live
   * processes that map it (read from each `/proc/<pid>/maps`, matched by
   * device and inode). A segment nobody maps is stale (its creator died
   * without unlinking it, the common leak after a `kill -9`), unless a
   * process in `skipped` maps it or one holds it open without a mapping.
   *
   * Requires `--allow-ffi` and `--allow-read=/dev/shm,/proc`; a process
   * whose maps are denied (`--deny-read`) or that the kernel will not show
   * (another user's, without root) is skipped and listed in `skipped`.
   *
   * @returns The segments, and the processes skipped.
   *
   * @example This process maps the segment it created
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm,/proc --allow-write=/dev/shm/memkit-ls
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-ls", { size: 4096 });
   * using m = shm.map();
   * const seg = SharedMemory.list().segments.find((s) => s.name === "/memkit-ls")!;
   * assertEquals(seg.mappers?.map((p) => p.pid), [Deno.pid]);
   * SharedMemory.unlink("memkit-ls");
   * ```
   */
  static list(): SharedMemoryListing {
    requirePermissions("shmList");
    const byFile = new Map<string, SharedMemoryInfo>();
    const segments: SharedMemoryInfo[] = [];
    for (const name of names((b, c) => lib().mk_shm_list(b, c), "list /dev/shm")) {
      let st: BigUint64Array;
      try {
        st = statOf(name, -1, `/${name}`);
      } catch (e) {
        if (e instanceof MemkitError && e.code === "ENOENT") continue; // gone meanwhile
        throw e;
      }
      if ((Number(st[2]) & 0o170000) !== 0o100000) continue; // not a regular file
      const info = infoOf(name, st);
      info.mappers = [];
      segments.push(info);
      byFile.set(`${st[6]}:${st[7]}:${st[5]}`, info);
    }
    segments.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const skipped: number[] = [];
    let buf = new Uint8Array(1 << 16);
    for (const text of names((b, c) => lib().mk_shm_pids(b, c), "list /proc")) {
      const pid = Number(text);
      if (queryPermission({ name: "read", path: `/proc/${pid}/maps` }) !== "granted") {
        skipped.push(pid);
        continue;
      }
      // The whole file, read on (never again from the start) as it grows.
      let n = Number(lib().mk_proc_open_file(pid, MK.PROC_MAPS));
      if (n >= 0) {
        const fd = n;
        let have = 0;
        for (;;) {
          const got = Number(
            lib().mk_proc_read_next(fd, buf.subarray(have), BigIntCtor(buf.length - have)),
          );
          if (got < 0) {
            n = got;
            break;
          }
          have += got;
          n = have;
          if (have < buf.length) break;
          const grown = new Uint8Array(buf.length * 2);
          grown.set(buf);
          buf = grown;
        }
        lib().mk_core_close(fd);
      }
      if (n === -ERRNO.EACCES || n === -ERRNO.EPERM) {
        skipped.push(pid);
        continue;
      }
      if (n < 0) continue; // ENOENT, ESRCH: it exited meanwhile
      const text2 = decoder.decode(buf.subarray(0, n));
      if (!text2.includes(" /dev/shm/")) continue;
      const found = new Map<SharedMemoryInfo, SharedMemoryMapper>();
      for (const line of text2.split("\n")) {
        if (!line.includes(" /dev/shm/")) continue;
        const m = MAPS_LINE.exec(line);
        if (m === null) continue;
        const info = byFile.get(`${parseInt(m[4], 16)}:${parseInt(m[5], 16)}:${m[6]}`);
        if (info === undefined) continue;
        let mapper = found.get(info);
        if (mapper === undefined) {
          mapper = { pid, mappings: 0, bytes: 0, writable: false };
          found.set(info, mapper);
          info.mappers!.push(mapper);
        }
        mapper.mappings++;
        mapper.bytes += Number(BigInt(`0x${m[2]}`) - BigInt(`0x${m[1]}`));
        if (m[3][1] === "w") mapper.writable = true;
      }
    }
    return { segments, skipped };
  }

  /** The POSIX name, with its slash: `"/name"`. */
  get name(): string {
    return `/${this.#name}`;
  }

  /** How it was opened: `"r"` (`O_RDONLY`) or `"rw"`. */
  get access(): "r" | "rw" {
    return this.#access;
  }

  /** The file descriptor; -1 once closed. memkit closes it: do not close it yourself. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  #alive(op: string): number {
    if (this.#fd < 0) {
      throw new Deno.errors.BadResource(`Cannot ${op}: shared memory "/${this.#name}" is closed`);
    }
    return this.#fd;
  }

  /** The current size in bytes, read from the kernel (another process may have resized it). */
  get size(): number {
    return check(lib().mk_core_fd_size(this.#alive("get the size")), "get the size of", {
      path: `/${this.#name}`,
    });
  }

  /**
   * The owner, mode and size of the open segment (`fstat`: still right after
   * it was unlinked).
   *
   * @returns The segment's information (without mappers).
   *
   * @example An open segment's size and mode
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-stat --allow-write=/dev/shm/memkit-stat
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-stat", { size: 100 });
   * SharedMemory.unlink("memkit-stat");
   * assertEquals(shm.stat().size, 100);
   * ```
   */
  stat(): SharedMemoryInfo {
    return infoOf(this.#name, statOf(null, this.#alive("stat"), `/${this.#name}`));
  }

  /**
   * Maps the segment (or a window of it) into this process (`mmap
   * MAP_SHARED`). A `"rw"` mapping reserves the window's pages first
   * (`fallocate`), so a sparse segment (as Python creates them) on a full
   * `/dev/shm` is `ENOSPC` here, not a SIGBUS at a store.
   *
   * @param options The window, and the access (the segment's by default).
   * @returns The new mapping.
   * @throws {RangeError} For a window past the current size (it would fault).
   * @throws {MemkitError} `EACCES` for `"rw"` on a segment opened `"r"`.
   *
   * @example Map part of a segment
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-map --allow-write=/dev/shm/memkit-map
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-map", { size: 3 * 4096 });
   * SharedMemory.unlink("memkit-map");
   * using m = shm.map({ offset: 4096, length: 4096 });
   * m.bytes()[0] = 7;
   * assertEquals(shm.read(4096, 1)[0], 7);
   * ```
   */
  map(options?: SharedMemoryMapOptions): Mapping {
    const opts = readOptions(options, "options", ["offset", "length", "access"] as const);
    const access = toAccess(opts.access ?? this.#access, ["r", "rw"]) as "r" | "rw";
    const fd = this.#alive("map");
    const name = `/dev/shm/${this.#name}`;
    if (access === "rw" && this.#access !== "rw") {
      throw new MemkitError(ERRNO.EACCES, "map", {
        path: name,
        hint: 'the segment was opened read-only (access "r"); open it with access "rw"',
      });
    }
    const { offset, length } = window(opts.offset, opts.length, this.size, pageSize(), `"${name}"`);
    if (access === "rw") {
      check(lib().mk_file_reserve(fd, BigIntCtor(offset), BigIntCtor(length)), "reserve pages of", {
        path: name,
        hints: {
          ENOSPC: "a writable mapping of its holes would fault (SIGBUS) once /dev/shm is full, " +
            'so memkit reserves them first; free space, or map it with access "r"',
        },
      });
    }
    const prot = access === "rw" ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    const ret = lib().mk_map_fd(fd, BigIntCtor(offset), BigIntCtor(length), prot);
    if (ret < 0n) check(ret, "map", { path: name });
    return createMapping({
      address: ret,
      length,
      access,
      maxAccess: this.#access,
      name,
      pieces: [{ source: this.#regions, owner: this.#regions, offset, at: 0, length }],
    });
  }

  /**
   * Copies bytes out of the segment through its descriptor (`pread`): this
   * cannot fault, even after another process shrank the segment; past the
   * end it returns fewer bytes (none at all beyond it).
   *
   * @param offset Where to start, default 0.
   * @param length How many bytes at most; default to the end.
   * @returns The bytes read.
   *
   * @example Safe after a shrink
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-read --allow-write=/dev/shm/memkit-read
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-read", { size: 8192 });
   * SharedMemory.unlink("memkit-read");
   * shm.resize(4096);
   * assertEquals(shm.read(4000, 1000).length, 96);
   * ```
   */
  read(offset = 0, length?: number): Uint8Array<ArrayBuffer> {
    const fd = this.#alive("read");
    const off = inRange(offset, "offset", 0, MAX_BYTES);
    const asked = length === undefined ? MAX_BYTES : inRange(length, "length", 0, MAX_BYTES);
    // No more than is there now (a peer may grow it meanwhile: then this reads the old end).
    const len = MathMin(asked, MathMax(0, this.size - off));
    const out = new Uint8Array(len);
    const n = check(lib().mk_shm_read(fd, BigIntCtor(off), out, BigIntCtor(len)), "read", {
      path: `/${this.#name}`,
    });
    return n === len ? out : out.slice(0, n);
  }

  /**
   * Copies `data` into the segment through its descriptor (`pwrite`), never
   * past its end (which would grow it): cannot fault, even after another
   * process shrank the segment. Needs a segment opened `"rw"`.
   *
   * @param data The bytes (a typed array, DataView or ArrayBuffer).
   * @param offset Where to write them, default 0.
   * @returns How many bytes were written (fewer at the end).
   *
   * @example Write into a segment without mapping it
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-write --allow-write=/dev/shm/memkit-write
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-write", { size: 4 });
   * SharedMemory.unlink("memkit-write");
   * assertEquals(shm.write(new Uint8Array([1, 2, 3]), 2), 2);
   * assertEquals([...shm.read()], [0, 0, 1, 2]);
   * ```
   */
  write(data: ArrayBufferView | ArrayBuffer, offset = 0): number {
    const bytes = bytesOf(data);
    if (bytes === undefined) {
      throw new TypeError(`Cannot use data "${show(data)}": expected bytes`);
    }
    const off = inRange(offset, "offset", 0, MAX_BYTES);
    const fd = this.#alive("write");
    if (this.#access !== "rw") {
      throw new MemkitError(ERRNO.EBADF, "write", {
        path: `/${this.#name}`,
        hint: 'the segment was opened read-only (access "r")',
      });
    }
    return check(
      lib().mk_shm_write(fd, BigIntCtor(off), bytes, BigIntCtor(bytes.length)),
      "write",
      { path: `/${this.#name}` },
    );
  }

  /**
   * Sets the size: growing reserves the new pages (`fallocate`), shrinking
   * (`ftruncate`) is refused while a mapping of this process reaches past
   * the new size, as `MemFd.resize()` explains. Other processes'
   * mappings are not covered: shrinking under them makes them fault.
   *
   * Requires `--allow-write=/dev/shm/<name>` (checked when it was opened `"rw"`).
   *
   * @param size The new size in bytes.
   * @throws {MemkitError} `EBUSY` when a mapping of this process reaches past it.
   *
   * @example Grow a segment
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/dev/shm/memkit-resize --allow-write=/dev/shm/memkit-resize
   * import { SharedMemory } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using shm = SharedMemory.create("memkit-resize", { size: 8192 });
   * SharedMemory.unlink("memkit-resize");
   * using m = shm.map();
   * assertThrows(() => shm.resize(4096));
   * shm.resize(16384);
   * assertEquals(shm.size, 16384);
   * ```
   */
  resize(size: number): void {
    const n = inRange(size, "size", 0, MAX_BYTES);
    const fd = this.#alive("resize");
    if (this.#access !== "rw") {
      throw new MemkitError(ERRNO.EBADF, "resize", {
        path: `/${this.#name}`,
        hint: 'the segment was opened read-only (access "r")',
      });
    }
    const busy = new BigUint64Array(3);
    const ret = lib().mk_shm_resize(fd, BigIntCtor(n), busy);
    if (ret >= 0n) return;
    const [start, end, reach] = busy;
    check(ret, "resize", {
      path: `/${this.#name}`,
      hints: {
        EBUSY: `the mapping at 0x${start.toString(16)}-0x${end.toString(16)} reaches byte ` +
          `${reach} of it, so size ${n} would make it fault (SIGBUS); close that mapping first`,
        ENOSPC: "/dev/shm has no room for it",
      },
    });
  }

  /** Closes the descriptor. Mappings stay valid until they are closed. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    FinalizationRegistryPrototypeUnregister(closer, this);
    const fd = this.#fd;
    this.#fd = -1;
    MapPrototypeClear(this.#regions);
    check(lib().mk_core_close(fd), "close shared memory", { path: `/${this.#name}` });
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A short description for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#fd < 0
      ? `SharedMemory { "/${this.#name}", closed }`
      : `SharedMemory { "/${this.#name}", ${this.#access}, fd ${this.#fd}, ${this.size} bytes }`;
  }
}
