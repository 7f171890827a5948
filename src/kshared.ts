/**
 * Memory shared with a kernel driver: memkit's half of the two pages of
 * `cbits/memkit_kshared.h` (version 1). {@linkcode KernelPage} reads the
 * record the kernel publishes on a read-only page under a sequence counter;
 * {@linkcode KernelChannel} makes requests through the lock word and slot
 * of a request page that user space can write.
 *
 * @module
 */

import { check, ERRNO, errnoCode, MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { hex, readOptions, show, typedLength } from "./_args.ts";
import { closeDevice, mapOpenDevice, type OpenDevice, openDevice } from "./_device.ts";
import {
  BigIntCtor,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  TypedArrayPrototypeSet,
} from "./_primordials.ts";
import { findRegion } from "./_region.ts";
import { SharedWindow } from "./_shared_word.ts";
import { cString, inRange, integer } from "./_validate.ts";
import type { Mapping } from "./mapping.ts";
import { SeqLock } from "./seqlock.ts";

/** The reference module's file (`tests/vm/kmod/`): debugfs, root only. */
export const KERNEL_SHARED_PATH = "/sys/kernel/debug/memkit_kshared";

const PAGE = MK.KSHARED_PAGE_BYTES;
const HEADER = MK.KSHARED_HEADER_BYTES;
const RECORD = MK.KSHARED_RECORD_BYTES;
const PAYLOAD = MK.KSHARED_PAYLOAD_BYTES;
const DATA = MK.KSHARED_DATA_BYTES;
const ANSWERED = MK.KSHARED_LOCK_ANSWERED;
const DEFAULT_TIMEOUT_MS = 1000;
const imul = Math.imul;

/** The layout a publish page declares, as {@linkcode checkKernelPages} read it. */
export interface KernelPageLayout {
  /** The layout's version (1). */
  version: number;
  /** Where the record's SeqLock header starts on the publish page (64). */
  recordOffset: number;
  /** The record's data length (64). */
  recordBytes: number;
  /** Random at module load, never 0: another value means the module was reloaded. */
  instance: bigint;
  /** How long a held lock word may stay unchanged before the kernel takes it back. */
  lockTimeoutMs: number;
}

/** One record, as {@linkcode KernelPage.read} returns it: a consistent copy. */
export interface KernelRecord {
  /** Publications so far, this one included. */
  counter: bigint;
  /** `ktime_get_ns()` when it was published. */
  timeNs: bigint;
  /** The payload (40 bytes), a copy. */
  payload: Uint8Array<ArrayBuffer>;
}

/** The counters of the publish page (the kernel's alone to write). */
export interface KernelPageStats {
  /** The module's instance (random at load). */
  instance: bigint;
  /** Lock words the kernel took back (holder closed, or timed out). */
  reclaims: bigint;
  /** Requests answered with status 0. */
  answered: bigint;
  /** Requests answered with an error status. */
  refused: bigint;
  /** The lock word's timeout. */
  lockTimeoutMs: number;
}

/** The state of the request page's lock word. */
export interface KernelLockState {
  /** The word as read. */
  word: number;
  /**
   * `"free"` (0), `"held"` (a session), `"answered"` (a session's answer is
   * waiting for it to release).
   */
  state: "free" | "held" | "answered";
  /** The session named, 0 when free. */
  session: number;
}

/** What {@linkcode KernelPage.checkReads} counted. */
export interface KernelReadReport {
  /** Clean reads (each one checked). */
  reads: number;
  /** Attempts a write overlapped, thrown away and retried. */
  overlapped: number;
  /** Clean reads whose record failed its checksum or payload: torn. Always 0 for a correct writer. */
  torn: number;
  /** The counter of the first and the last record read. */
  firstCounter: bigint;
  /** The counter of the last record read. */
  lastCounter: bigint;
  /** How often the counter went backwards from one read to the next (0 for one writer). */
  backwards: number;
  /** Waits for a write in progress. */
  waits: number;
}

/** An operation of a request: `"echo"`, `"sum"`, or the number of another. */
export type KernelOp = "echo" | "sum" | number;

/** Options of {@linkcode KernelChannel.request} and {@linkcode KernelChannel.acquire}. */
export interface KernelRequestOptions {
  /** How long to wait for the lock word, in milliseconds (0: one try). Default 1000. */
  timeoutMs?: number;
  /** The request's id (a u32), copied into the answer; default the channel's next. */
  id?: number;
}

/** An answer (status 0; another status is a thrown {@linkcode MemkitError}). */
export interface KernelAnswer {
  /** The request's id, as the kernel copied it into the answer. */
  id: number;
  /** The answer's data, a copy. */
  data: Uint8Array<ArrayBuffer>;
}

/**
 * The FNV-1a (32 bits) checksum of a record of the publish page: its 64
 * bytes but the checksum field (bytes 16 to 19), as `mkks_checksum()` in
 * `cbits/memkit_kshared.h` computes it.
 *
 * @param record The record's 64 bytes.
 * @returns The checksum, an unsigned 32-bit number.
 *
 * @example The checksum of a record of zeros
 * ```ts
 * import { kernelRecordChecksum } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const record = new Uint8Array(64);
 * assertEquals(kernelRecordChecksum(record), kernelRecordChecksum(record.fill(0)));
 * record[16] = 0xff; // the checksum field itself is not covered
 * assertEquals(kernelRecordChecksum(record), kernelRecordChecksum(new Uint8Array(64)));
 * ```
 */
export function kernelRecordChecksum(record: Uint8Array): number {
  const n = typedLength(record, "Uint8Array", "record");
  if (n !== RECORD) {
    throw new RangeError(`Cannot use a record of ${n} bytes: expected ${RECORD}`);
  }
  return checksum(record);
}

function checksum(r: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) h = imul(h ^ r[i], 16777619);
  for (let i = 20; i < RECORD; i++) h = imul(h ^ r[i], 16777619);
  return h >>> 0;
}

function foreign(name: string, hint: string): MemkitError {
  return new MemkitError(ERRNO.EBADMSG, "attach", { path: name, hint });
}

function u32(v: DataView, at: number): number {
  return v.getUint32(at, true);
}

function isMapping(m: unknown, what: string): asserts m is Mapping {
  if (findRegion(m) === undefined) {
    throw new TypeError(`Cannot use the ${what} "${show(m)}": expected a memkit Mapping`);
  }
}

/**
 * Checks that `publish` (and `request`, when given) hold the pages of
 * `cbits/memkit_kshared.h` version 1: the magic, version and sizes of the
 * publish page's header and where its record lies, and the request page's
 * magic, version and header size. Reads a private copy of each header once;
 * writes nothing. {@linkcode KernelPage.attach} runs it on what it mapped.
 *
 * @param publish A mapping of the publish page (read-only will do).
 * @param request A mapping of the request page.
 * @returns The layout the publish page declares.
 * @throws {MemkitError} `EBADMSG` for a foreign page, saying which field
 * reads what and what was expected.
 *
 * @example A memfd laid out wrongly is refused
 * ```ts
 * import { checkKernelPages, MemFd } from "@memkit/memkit";
 * import { assertThrows } from "@std/assert";
 *
 * using fd = MemFd.create("not-a-kernel-page", { size: 8192 });
 * using m = fd.map();
 * assertThrows(() => checkKernelPages(m), Error, "magic 0x0");
 * ```
 */
export function checkKernelPages(publish: Mapping, request?: Mapping): KernelPageLayout {
  isMapping(publish, "kernel publish page");
  if (request !== undefined) isMapping(request, "kernel request page");
  const name = publish.name;
  if (publish.length < HEADER) {
    throw foreign(name, `${publish.length} bytes cannot hold the ${HEADER}-byte header`);
  }
  const head = publish.read(0, HEADER);
  const v = new DataView(head.buffer);
  const magic = u32(v, 0);
  if (magic !== MK.KSHARED_PUB_MAGIC) {
    throw foreign(
      name,
      `magic ${hex(magic)}, expected ${hex(MK.KSHARED_PUB_MAGIC)} ("MKKP"): ` +
        "not a publish page of memkit_kshared.h",
    );
  }
  const version = v.getUint16(4, true);
  if (version !== MK.KSHARED_VERSION) {
    throw foreign(
      name,
      `version ${version}; this memkit reads version ${MK.KSHARED_VERSION} of memkit_kshared.h`,
    );
  }
  const headerBytes = v.getUint16(6, true);
  const recordOffset = u32(v, 8);
  const recordBytes = u32(v, 12);
  const instance = v.getBigUint64(16, true);
  const lockTimeoutMs = u32(v, 48);
  if (headerBytes !== HEADER) {
    throw foreign(name, `header_bytes ${headerBytes}, expected ${HEADER}`);
  }
  if (recordBytes !== RECORD) {
    throw foreign(name, `record_bytes ${recordBytes}, expected ${RECORD} (struct mkks_record)`);
  }
  const end = recordOffset + SeqLock.headerLength + recordBytes;
  if (recordOffset < HEADER || recordOffset % 8 !== 0 || end > publish.length) {
    throw foreign(
      name,
      `record_offset ${recordOffset}: expected a multiple of 8 from ${HEADER} with the ` +
        `record inside the page's ${publish.length} bytes`,
    );
  }
  if (instance === 0n) throw foreign(name, "instance 0: the module never set it");
  if (request !== undefined) {
    const rname = request.name;
    const need = HEADER + MK.KSHARED_REQUEST_BYTES;
    if (request.length < need) {
      throw foreign(rname, `${request.length} bytes cannot hold a request page (${need})`);
    }
    const r = new DataView(request.read(0, HEADER).buffer);
    const rmagic = u32(r, 0);
    if (rmagic !== MK.KSHARED_REQ_MAGIC) {
      throw foreign(
        rname,
        `magic ${hex(rmagic)}, expected ${hex(MK.KSHARED_REQ_MAGIC)} ("MKKR"): ` +
          "not a request page of memkit_kshared.h",
      );
    }
    const rversion = r.getUint16(4, true);
    if (rversion !== MK.KSHARED_VERSION) {
      throw foreign(
        rname,
        `version ${rversion}; this memkit reads version ${MK.KSHARED_VERSION} of memkit_kshared.h`,
      );
    }
    const rheader = r.getUint16(6, true);
    if (rheader !== HEADER) throw foreign(rname, `header_bytes ${rheader}, expected ${HEADER}`);
  }
  return { version, recordOffset, recordBytes, instance, lockTimeoutMs };
}

function lockState(word: number): KernelLockState {
  if (word === 0) return { word, state: "free", session: 0 };
  const answered = (word & ANSWERED) !== 0;
  return {
    word,
    state: answered ? "answered" : "held",
    session: (word & MK.KSHARED_SESSION_MAX) >>> 0,
  };
}

function describeWord(word: number): string {
  const s = lockState(word);
  return s.state === "free" ? "free (0)" : `${s.state} by session ${s.session} (${hex(word)})`;
}

// ---- KernelPage ----

/**
 * The pages a kernel driver shares (`cbits/memkit_kshared.h`): the publish
 * page, mapped read-only, whose record the kernel rewrites under a
 * sequence counter, and the request page. Reads never return a torn record:
 * each is a {@linkcode SeqLock} read over the read-only mapping, and its
 * checksum is verified too.
 *
 * Follows the kernel's own shared pages: what readers rely on is on a page
 * user space cannot write (the vDSO data page), its one writer brackets each
 * update with a sequence counter (perf's mmap page).
 *
 * @example Read the record the kernel publishes (guest-only: root and the test module)
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer (as root, with the module of tests/vm/kmod loaded)
 * import { KernelPage } from "@memkit/memkit";
 *
 * using page = KernelPage.attach();
 * const { counter, payload } = page.read();
 * console.log(counter, payload, page.stats());
 * ```
 */
export class KernelPage {
  #publish: Mapping;
  #request: Mapping;
  #owned: boolean;
  #path: string | undefined;
  #layout: KernelPageLayout;
  #seq: SeqLock;
  #head: SharedWindow;
  #lock: SharedWindow;
  #copy = new Uint8Array(RECORD);
  #view = new DataView(this.#copy.buffer);
  #words = new BigUint64Array(8);
  #copy32 = new Uint32Array(this.#copy.buffer);
  #from: Uint8Array | undefined;
  #from32 = new Uint32Array(0);
  /**
   * The SeqLock's reader: copies the record word by word (V8's
   * TypedArray.prototype.set refuses an immutable source, and 16 loads are
   * faster than 64); checked after the read, from the copy.
   */
  #take = (data: Uint8Array<ArrayBuffer>): void => {
    if (data !== this.#from) {
      this.#from = data;
      this.#from32 = new Uint32Array(data.buffer, data.byteOffset, RECORD / 4);
    }
    const from = this.#from32;
    const to = this.#copy32;
    for (let i = 0; i < RECORD / 4; i++) to[i] = from[i];
  };
  #closed = false;

  /** @ignore */
  private constructor(
    publish: Mapping,
    request: Mapping,
    owned: boolean,
    path: string | undefined,
  ) {
    this.#layout = checkKernelPages(publish, request);
    this.#publish = publish;
    this.#request = request;
    this.#owned = owned;
    this.#path = path;
    this.#seq = SeqLock.attach(publish, this.#layout.recordOffset);
    if (this.#seq.length !== RECORD) {
      throw foreign(
        publish.name,
        `its SeqLock holds ${this.#seq.length} bytes, expected ${RECORD}`,
      );
    }
    this.#head = new SharedWindow(publish, 0, HEADER, "kernel publish header", "r");
    this.#lock = new SharedWindow(request, 0, HEADER, "kernel request header", "r");
  }

  /**
   * Maps the driver's two pages from `path` (offset 0 read-only, offset
   * 4096 read-write) and checks them ({@linkcode checkKernelPages}).
   *
   * Requires `--allow-ffi`, `--allow-read` and `--allow-write` for `path`
   * (the request page is writable); debugfs is root's.
   *
   * @param path The driver's file; default {@linkcode KERNEL_SHARED_PATH}.
   * @returns The pages.
   * @throws {Deno.errors.NotCapable} When a permission is missing.
   * @throws {MemkitError} `ENOENT` (no module loaded, or debugfs not
   * mounted), `EACCES` (not root), `ENODEV` (no mmap there), `EBADMSG` (a
   * foreign page).
   *
   * @example Nothing is opened without the permissions
   * ```ts
   * import { KernelPage } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(() => KernelPage.attach(), Deno.errors.NotCapable);
   * ```
   */
  static attach(path: string = KERNEL_SHARED_PATH): KernelPage {
    cString(path, "path");
    if (path === "") throw new TypeError('Cannot attach to "": expected a file path');
    const dev = openDevice(path, true);
    let publish: Mapping | undefined;
    let request: Mapping | undefined;
    try {
      publish = mapOpenDevice(dev, MK.KSHARED_PUB_OFFSET, PAGE, "r");
      request = mapOpenDevice(dev, MK.KSHARED_REQ_OFFSET, PAGE, "rw");
      return new KernelPage(publish, request, true, dev.path);
    } catch (e) {
      request?.close();
      publish?.close();
      throw e;
    } finally {
      closeDevice(dev);
    }
  }

  /**
   * Reads pages mapped some other way (a test's memfd, a second mapping):
   * checks them as {@linkcode KernelPage.attach} does; `close()` leaves them
   * open, and {@linkcode KernelPage.openChannel} is unavailable (there is no
   * file to ring).
   *
   * @param publish The publish page (read-only will do).
   * @param request The request page.
   * @returns The pages.
   *
   * @example Pages not laid out as memkit_kshared.h says are refused
   * ```ts
   * import { KernelPage, MemFd, SeqLock } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("kpages", { size: 8192 });
   * using m = fd.map();
   * // No header written: a foreign page.
   * assertThrows(() => KernelPage.fromMappings(m, m), Error, "not a publish page");
   * ```
   */
  static fromMappings(publish: Mapping, request: Mapping): KernelPage {
    return new KernelPage(publish, request, false, undefined);
  }

  /** The layout the publish page declared when attached. */
  get layout(): KernelPageLayout {
    return { ...this.#layout };
  }

  /** The read-only mapping of the publish page: its views are immutable. */
  get publishPage(): Mapping {
    return this.#publish;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #alive(op: string): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op}: the kernel page is closed`);
    }
  }

  /**
   * Reads the record: a {@linkcode SeqLock} read over the read-only page,
   * retried while the kernel rewrites it, and its checksum verified.
   *
   * @param options `maxRetries` as for {@linkcode SeqLock.read}.
   * @returns A consistent copy of the record.
   * @throws {MemkitError} `EBADMSG` when a record read cleanly fails its
   * checksum (the writer broke the protocol), `EAGAIN` after `maxRetries`.
   *
   * @example The counter goes on (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer (as root, with the module of tests/vm/kmod loaded)
   * import { KernelPage } from "@memkit/memkit";
   *
   * using page = KernelPage.attach();
   * const a = page.read();
   * const b = page.read();
   * if (b.counter < a.counter) throw new Error("the counter went back");
   * ```
   */
  read(options?: { maxRetries?: number }): KernelRecord {
    this.#alive("read the record");
    this.#seq.read(this.#take, options);
    const view = this.#view;
    if (view.getUint32(20, true) !== PAYLOAD || view.getUint32(16, true) !== checksum(this.#copy)) {
      // A clean read (the sequence did not move) of a record that fails its
      // own check: the writer broke the protocol.
      throw new MemkitError(ERRNO.EBADMSG, "read the record of", {
        path: this.#publish.name,
        hint: `a record read under a stable sequence fails its checksum or length ` +
          `(checksum ${hex(view.getUint32(16, true))}, computed ${hex(checksum(this.#copy))}, ` +
          `payload_bytes ${view.getUint32(20, true)}): its writer broke the protocol`,
      });
    }
    const copy = this.#copy;
    return {
      counter: view.getBigUint64(0, true),
      timeNs: view.getBigUint64(8, true),
      payload: copy.slice(24, 24 + PAYLOAD),
    };
  }

  /**
   * Reads the record `count` times in one native call, checking each read
   * (checksum, payload length, and the reference module's payload: byte i
   * is `(counter + i) & 0xff`), and counts what it saw: the check of the
   * "never torn" promise, at native speed.
   *
   * @param count How many clean reads, 1 to 2^32.
   * @returns The counts.
   *
   * @example Check that reads see whole records (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer (as root, with the module of tests/vm/kmod loaded)
   * import { KernelPage } from "@memkit/memkit";
   *
   * using page = KernelPage.attach();
   * const report = page.checkReads(1_000_000);
   * if (report.torn !== 0) throw new Error("a torn read");
   * ```
   */
  checkReads(count: number): KernelReadReport {
    const n = inRange(count, "count", 1, 2 ** 32);
    this.#alive("read the record");
    // The record's window, taken again if the mapping moved or was closed.
    const address = this.#head.at("read the record of") + BigIntCtor(this.#layout.recordOffset);
    const out = this.#words;
    check(lib().mk_kshared_read_many(address, BigIntCtor(n), out), "read the record of", {
      path: this.#publish.name,
      hints: {
        EAGAIN: "a write stayed in progress for a million waits in a row (a writer that " +
          "stopped mid-write)",
        EBADMSG: "its header no longer reads as a SeqLock of the record",
      },
    });
    return {
      reads: Number(out[0]),
      overlapped: Number(out[1]),
      torn: Number(out[2]),
      firstCounter: out[3],
      lastCounter: out[4],
      backwards: Number(out[5]),
      waits: Number(out[6]),
    };
  }

  /**
   * The counters of the publish page's header, read now.
   *
   * @returns Reclaims, answered and refused requests, the instance and the lock timeout.
   *
   * @example The driver's counters (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer (as root, with the module of tests/vm/kmod loaded)
   * import { KernelPage } from "@memkit/memkit";
   *
   * using page = KernelPage.attach();
   * console.log(page.stats().reclaims);
   * ```
   */
  stats(): KernelPageStats {
    this.#alive("read the stats");
    const out = this.#words;
    check(lib().mk_kshared_stats(this.#head.at("read the stats of"), out), "read the stats of", {
      path: this.#publish.name,
    });
    return {
      instance: out[0],
      reclaims: out[1],
      answered: out[2],
      refused: out[3],
      lockTimeoutMs: Number(out[4]),
    };
  }

  /**
   * The request page's lock word, read now (one atomic load).
   *
   * @returns The word and what it says.
   *
   * @example The request page's lock word (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer (as root, with the module of tests/vm/kmod loaded)
   * import { KernelPage } from "@memkit/memkit";
   *
   * using page = KernelPage.attach();
   * console.log(page.lockState().state); // "free" when nobody holds it
   * ```
   */
  lockState(): KernelLockState {
    this.#alive("read the lock word");
    const w = check(
      lib().mk_kshared_lock_word(this.#lock.at("read the lock word of")),
      "read the lock word of",
      { path: this.#request.name },
    );
    return lockState(w);
  }

  /**
   * Opens a {@linkcode KernelChannel} on the same file: a new open file,
   * so a session of its own.
   *
   * @returns The channel.
   *
   * @example Open the request page beside the record (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer (as root, with the module of tests/vm/kmod loaded)
   * import { KernelPage } from "@memkit/memkit";
   *
   * using page = KernelPage.attach();
   * using channel = page.openChannel();
   * console.log(channel.request("sum", new Uint8Array([1, 2, 3])).data);
   * ```
   */
  openChannel(): KernelChannel {
    this.#alive("open a channel");
    if (this.#path === undefined) {
      throw new TypeError(
        "Cannot open a channel: these pages were given as mappings (fromMappings), not a file",
      );
    }
    return KernelChannel.open(this.#path);
  }

  /** Unmaps the pages it mapped (not those given to `fromMappings`). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#seq.close();
    if (this.#owned) {
      this.#request.close();
      this.#publish.close();
    }
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---- KernelChannel ----

const EMPTY = new Uint8Array(0);
const closer = new FinalizationRegistry<number>((fd) => {
  lib().mk_core_close(fd);
});

function toOp(op: unknown): number {
  if (op === "echo") return MK.KSHARED_OP_ECHO;
  if (op === "sum") return MK.KSHARED_OP_SUM;
  if (typeof op === "number") return inRange(op, "op", 0, 0xffffffff);
  throw new TypeError(`Cannot use op "${show(op)}": expected "echo", "sum" or a u32 number`);
}

function opName(op: number): string {
  return op === MK.KSHARED_OP_ECHO ? "echo" : op === MK.KSHARED_OP_SUM ? "sum" : `${op}`;
}

function toTimeout(value: unknown): bigint {
  const ms = value === undefined
    ? DEFAULT_TIMEOUT_MS
    : inRange(integer(value, "timeoutMs"), "timeoutMs", 0, 2 ** 31 - 1);
  return BigIntCtor(ms) * 1000000n;
}

/**
 * A session with a driver of `cbits/memkit_kshared.h`: requests through the
 * request page's lock word and slot ({@linkcode KernelChannel.request}), or
 * copied by an `ioctl` ({@linkcode KernelChannel.call}, the baseline).
 *
 * The protocol, from the kernel's own shared pages: user space takes the
 * lock word (CAS 0 -> its session), writes the slot and rings (an ioctl);
 * the kernel reads the page once into a private copy before deciding
 * anything (io_uring), answers only the session that holds the word,
 * writes the answer and marks the word answered; user space copies the
 * answer and releases (CAS answered -> 0). A user that breaks it (garbage,
 * a word never released, a holder killed) costs others a timeout: the
 * kernel takes a stuck word back after `lockTimeoutMs`, or at once when
 * the holder's file is closed (rseq: only the offender is punished).
 *
 * Requires `--allow-ffi`, `--allow-read` and `--allow-write` for the file.
 * Each wait is bounded by `timeoutMs`; it blocks the calling thread.
 *
 * @example Echo, sum and the copying baseline (guest-only: root and the test module)
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared (as root, with the module of tests/vm/kmod loaded)
 * import { KernelChannel } from "@memkit/memkit";
 *
 * using channel = KernelChannel.open();
 * const echo = channel.request("echo", new TextEncoder().encode("hi"), { timeoutMs: 500 });
 * console.log(new TextDecoder().decode(echo.data)); // "hi"
 * const sum = channel.call("sum", new Uint8Array([1, 2, 3]));
 * console.log(new DataView(sum.data.buffer).getBigUint64(0, true)); // 6n
 * ```
 */
export class KernelChannel {
  #dev: OpenDevice;
  #page: Mapping;
  #window: SharedWindow;
  #session: number;
  #msg = new Uint8Array(MK.KSHARED_REQUEST_BYTES);
  #msgView = new DataView(this.#msg.buffer);
  #seen = new BigUint64Array(1);
  #nextId = 1;
  #held = false;
  #closed = false;

  /** @ignore */
  private constructor(dev: OpenDevice, page: Mapping, session: number) {
    this.#dev = dev;
    this.#page = page;
    this.#session = session;
    this.#window = new SharedWindow(page, 0, HEADER, "kernel request header");
    FinalizationRegistryPrototypeRegister(closer, this, dev.fd, this);
  }

  /**
   * Opens the driver's file (a session of its own: `MKKS_IOC_SESSION`) and
   * maps its request page read-write, after checking its header.
   *
   * Requires `--allow-ffi`, `--allow-read` and `--allow-write` for `path`.
   *
   * @param path The driver's file; default {@linkcode KERNEL_SHARED_PATH}.
   * @returns The channel.
   * @throws {MemkitError} As {@linkcode KernelPage.attach}; `ENOTTY` when
   * the file's driver knows no `MKKS_IOC_SESSION`.
   *
   * @example Nothing is opened without the permissions
   * ```ts
   * import { KernelChannel } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(() => KernelChannel.open(), Deno.errors.NotCapable);
   * ```
   */
  static open(path: string = KERNEL_SHARED_PATH): KernelChannel {
    cString(path, "path");
    if (path === "") throw new TypeError('Cannot open "": expected a file path');
    const dev = openDevice(path, true);
    let page: Mapping | undefined;
    try {
      const session = check(lib().mk_kshared_session(dev.fd), "ask the session of", {
        path: dev.path,
        hints: {
          ENOTTY: "its driver knows no MKKS_IOC_SESSION: not a driver of memkit_kshared.h",
          EPROTO: "its driver answered a session outside 1 to 2^31 - 1",
        },
      });
      page = mapOpenDevice(dev, MK.KSHARED_REQ_OFFSET, PAGE, "rw");
      const r = new DataView(page.read(0, HEADER).buffer);
      if (u32(r, 0) !== MK.KSHARED_REQ_MAGIC || r.getUint16(4, true) !== MK.KSHARED_VERSION) {
        throw foreign(
          page.name,
          `magic ${hex(u32(r, 0))} version ${r.getUint16(4, true)}, expected ` +
            `${hex(MK.KSHARED_REQ_MAGIC)} ("MKKR") version ${MK.KSHARED_VERSION}: ` +
            "not a request page of memkit_kshared.h",
        );
      }
      return new KernelChannel(dev, page, session);
    } catch (e) {
      page?.close();
      closeDevice(dev);
      throw e;
    }
  }

  /** This channel's session (1 to 2^31 - 1), the value it writes into the lock word. */
  get session(): number {
    return this.#session;
  }

  /** Whether this channel holds the lock word now (after `acquire()`). */
  get held(): boolean {
    return this.#held;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #alive(op: string): bigint {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op}: the kernel channel is closed`);
    }
    return this.#window.at(op);
  }

  #fail(ret: bigint, op: string, timeoutMs: bigint): never {
    const seen = describeWord(Number(this.#seen[0] & 0xffffffffn));
    const name = this.#dev.path;
    check(ret, op, {
      path: name,
      hints: {
        ETIMEDOUT: `the lock word stayed ${seen} for ${timeoutMs / 1000000n} ms; the kernel ` +
          "takes a stuck word back after its lock timeout (stats().lockTimeoutMs), or when " +
          "its holder's file is closed",
        EDEADLK: `this channel's session ${this.#session} holds the lock word already ` +
          "(acquire() without release())",
        EPERM: `the lock word was not this session's when the kernel looked (it read ${seen} ` +
          "now): another process wrote over it, or the kernel took it back after its timeout",
        EBADMSG: "the lock word read this session's answer as not yet released (a second " +
          "ring before the release)",
        EPROTO: `the answer cannot be trusted (the lock word read ${seen}): another process ` +
          "wrote over the page while the answer was read, or the answer's id or length is wrong",
        EINVAL: `the data is over ${DATA} bytes`,
      },
    });
    throw new MemkitError(Number(-ret), op); // unreachable: check() threw
  }

  #prepare(op: unknown, data: unknown, id: unknown): [number, number] {
    const code = toOp(op);
    const bytes = data === undefined ? EMPTY : data as Uint8Array;
    const n = data === undefined ? 0 : typedLength(data, "Uint8Array", "data");
    if (n > DATA) {
      throw new RangeError(`Cannot send ${n} bytes: a request holds at most ${DATA}`);
    }
    const rid = id === undefined ? this.#nextId : inRange(id, "id", 0, 0xffffffff);
    if (id === undefined) this.#nextId = (this.#nextId + 1) >>> 0;
    const v = this.#msgView;
    v.setUint32(0, rid, true);
    v.setUint32(4, code, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, n, true);
    TypedArrayPrototypeSet(this.#msg, bytes, 16);
    return [code, rid];
  }

  #answer(code: number, path: string): KernelAnswer {
    const v = this.#msgView;
    const status = v.getUint32(8, true);
    const length = v.getUint32(12, true);
    if (status !== 0) {
      throw new MemkitError(status, `request "${opName(code)}" of`, {
        path,
        hint: errnoCode(status) === "EINVAL"
          ? "the kernel refused the request (an unknown op, or a length it does not take)"
          : "the kernel answered with this status",
      });
    }
    return {
      id: v.getUint32(0, true),
      data: this.#msg.slice(16, 16 + length),
    };
  }

  /**
   * One request through the request page: takes the lock word (waiting at
   * most `timeoutMs`), writes the slot, rings the kernel, copies the answer
   * and releases the word; one native call.
   *
   * @param op `"echo"` (the answer's data is the request's), `"sum"` (the
   * u64 sum of the bytes, 8 bytes little-endian) or another op's number.
   * @param data Up to 256 bytes; default none.
   * @param options `timeoutMs` for the lock word (default 1000), `id`.
   * @returns The answer.
   * @throws {MemkitError} `ETIMEDOUT` (the word stayed taken; the message
   * says by whom), `EPERM` (the word was not this session's when the kernel
   * looked), `EPROTO` (an answer that cannot be trusted), or the answer's
   * own status (`EINVAL` for an unknown op).
   *
   * @example One request and its answer (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared (as root, with the module of tests/vm/kmod loaded)
   * import { KernelChannel } from "@memkit/memkit";
   *
   * using channel = KernelChannel.open();
   * const answer = channel.request("echo", new Uint8Array([7]), { id: 42 });
   * if (answer.id !== 42 || answer.data[0] !== 7) throw new Error("a wrong answer");
   * ```
   */
  request(op: KernelOp, data?: Uint8Array, options?: KernelRequestOptions): KernelAnswer {
    const opts = options === undefined
      ? undefined
      : readOptions(options, "options", ["timeoutMs", "id"] as const);
    const timeout = toTimeout(opts?.timeoutMs);
    const [code] = this.#prepare(op, data, opts?.id);
    const page = this.#alive("request");
    const ret = lib().mk_kshared_request(
      this.#dev.fd,
      page,
      this.#session,
      timeout,
      this.#msg,
      this.#seen,
    );
    if (ret < 0n) this.#fail(ret, `request "${opName(code)}" of`, timeout);
    return this.#answer(code, this.#dev.path);
  }

  /**
   * The same request copied in and out by `MKKS_IOC_CALL`: no page, no
   * lock word; the baseline the request page is measured against.
   *
   * @param op As for {@linkcode KernelChannel.request}.
   * @param data Up to 256 bytes; default none.
   * @param options `id`.
   * @returns The answer.
   *
   * @example The same request by ioctl, the baseline (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared (as root, with the module of tests/vm/kmod loaded)
   * import { KernelChannel } from "@memkit/memkit";
   *
   * using channel = KernelChannel.open();
   * console.log(channel.call("echo", new Uint8Array([1, 2])).data);
   * ```
   */
  call(op: KernelOp, data?: Uint8Array, options?: { id?: number }): KernelAnswer {
    const opts = options === undefined
      ? undefined
      : readOptions(options, "options", ["id"] as const);
    const [code] = this.#prepare(op, data, opts?.id);
    this.#alive("call");
    const ret = lib().mk_kshared_call(this.#dev.fd, this.#msg);
    if (ret < 0n) this.#fail(ret, `call "${opName(code)}" of`, 0n);
    return this.#answer(code, this.#dev.path);
  }

  /**
   * Takes the lock word (CAS 0 -> this session), waiting at most
   * `timeoutMs`, and keeps it until {@linkcode KernelChannel.release}: the
   * first step of the protocol alone, for callers that drive it step by
   * step (and for tests of what the kernel does with a word never released).
   *
   * @param options `timeoutMs` (default 1000).
   * @throws {MemkitError} `ETIMEDOUT`, `EDEADLK` (this session holds it).
   *
   * @example Hold the request page's lock (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared (as root, with the module of tests/vm/kmod loaded)
   * import { KernelChannel } from "@memkit/memkit";
   *
   * using channel = KernelChannel.open();
   * channel.acquire({ timeoutMs: 100 });
   * channel.release();
   * ```
   */
  acquire(options?: { timeoutMs?: number }): void {
    const opts = options === undefined
      ? undefined
      : readOptions(options, "options", ["timeoutMs"] as const);
    const timeout = toTimeout(opts?.timeoutMs);
    const page = this.#alive("acquire the lock word of");
    const ret = lib().mk_kshared_lock(page, this.#session, timeout, this.#seen);
    if (ret < 0n) this.#fail(ret, "acquire the lock word of", timeout);
    this.#held = true;
  }

  /**
   * Releases the lock word (CAS this session, answered or not, -> 0).
   *
   * @throws {MemkitError} `EPERM` when this session does not hold it:
   * released twice, or taken back by the kernel after its timeout.
   *
   * @example Release the request page's lock (guest-only: root and the test module)
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared (as root, with the module of tests/vm/kmod loaded)
   * import { KernelChannel } from "@memkit/memkit";
   *
   * using channel = KernelChannel.open();
   * channel.acquire();
   * channel.release();
   * try {
   *   channel.release();
   * } catch (e) {
   *   console.log((e as Error).message); // EPERM: released twice
   * }
   * ```
   */
  release(): void {
    const page = this.#alive("release the lock word of");
    this.#held = false;
    const ret = lib().mk_kshared_release(page, this.#session, this.#seen);
    if (ret < 0n) {
      const seen = describeWord(Number(this.#seen[0] & 0xffffffffn));
      check(ret, "release the lock word of", {
        path: this.#dev.path,
        hint: `session ${this.#session} does not hold it (it is ${seen}): released twice, ` +
          "or taken back by the kernel after its lock timeout",
      });
    }
  }

  /**
   * Releases the lock word if this channel holds it, unmaps the request page
   * and closes the file (the kernel ends the session). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#held) {
      this.#held = false;
      lib().mk_kshared_release(this.#window.at("close"), this.#session, this.#seen);
    }
    this.#closed = true;
    FinalizationRegistryPrototypeUnregister(closer, this);
    this.#page.close();
    closeDevice(this.#dev);
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
