/**
 * `Channel`: a zero-copy, single-producer single-consumer message channel
 * between two processes, over a sealed memfd ring mapped twice (so that
 * every message is contiguous), handed to the peer over an
 * {@linkcode FdConnection}.
 *
 * @module
 */

import { check, errnoCode } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { readOptions, show, string, typedLength } from "./_args.ts";
import {
  ArrayBufferPrototypeGetDetached,
  ArrayBufferPrototypeTransfer,
  ArrayIsArray,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  ObjectSetPrototypeOf,
  TypedArrayPrototypeGetLength,
  TypedArrayPrototypeSet,
  TypedArrayPrototypeSubarray,
} from "./_primordials.ts";
import { findRegion, hold, letGo } from "./_region.ts";
import { cString, inRange } from "./_validate.ts";
import { Waiter } from "./_wait.ts";
import { connectionRaw, type FdConnection } from "./fd_socket.ts";
import { createMapping, type Mapping } from "./mapping.ts";

/** The header's words, as indexes of a Uint32Array over it. */
const W = {
  magic: MK.CHANNEL_OFF_MAGIC / 4,
  version: MK.CHANNEL_OFF_VERSION / 4,
  capacity: MK.CHANNEL_OFF_CAPACITY / 4,
  tail: MK.CHANNEL_OFF_TAIL / 4,
  sender: MK.CHANNEL_OFF_SENDER / 4,
  head: MK.CHANNEL_OFF_HEAD / 4,
  receiver: MK.CHANNEL_OFF_RECEIVER / 4,
  dataWait: MK.CHANNEL_OFF_DATA_WAIT / 4,
  spaceWait: MK.CHANNEL_OFF_SPACE_WAIT / 4,
} as const;
const SEALS = MK.SEAL_SHRINK | MK.SEAL_GROW | MK.SEAL_SEAL;
const HELLO = new TextEncoder().encode(`memkit-channel ${MK.CHANNEL_VERSION}`);

/** Why a channel failed: see {@linkcode ChannelError}. */
export type ChannelErrorReason = "closed" | "peer-gone" | "corrupt" | "refused";

/**
 * The channel cannot go on: the peer closed it (`"closed"`), its process is
 * gone (`"peer-gone"`: the socket hung up), it wrote a header value out of
 * range (`"corrupt"`: a head or tail past the ring, a length past what was
 * committed), or what it offered at attach is no channel (`"refused"`).
 * Nothing out of range is ever read or written.
 *
 * @example The reason a channel call failed
 * ```ts
 * import { ChannelError } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(new ChannelError("closed", "Cannot receive: the sender closed the channel").reason, "closed");
 * ```
 */
export class ChannelError extends Error {
  /** What happened. */
  readonly reason: ChannelErrorReason;

  /**
   * Builds the error.
   *
   * @param reason What happened.
   * @param message The message.
   */
  constructor(reason: ChannelErrorReason, message: string) {
    super(message);
    this.name = "ChannelError";
    this.reason = reason;
  }
}

let addressOf: (ch: Channel) => bigint;

/**
 * The address of a channel's header (the ring follows one page on); for
 * memkit's own benchmark, which drives the same ring from C.
 */
export function channelAddress(ch: Channel): bigint {
  return addressOf(ch);
}

/** Options of {@linkcode Channel.create}. */
export interface ChannelOptions {
  /** The ring's size in bytes: a power of two, from a page to 2 GiB. Default 1 MiB. */
  capacity?: number;
  /** A name for the memfd, as `/proc/<pid>/maps` shows it. Default `"channel"`. */
  name?: string;
}

/** Options of {@linkcode Channel.attach}. */
export interface AttachOptions {
  /** How long to wait for the offer, in milliseconds (default: until it comes). */
  timeoutMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
  /** The largest ring accepted, in bytes (default 1 GiB). */
  maxCapacity?: number;
}

/** Options of {@linkcode Channel.receive} and {@linkcode Channel.sendAsync}. */
export interface ChannelWaitOptions {
  /** How long to wait, in milliseconds (default: until it can). */
  timeoutMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
  /**
   * How long to spin (checking the ring, holding the event loop) before
   * sleeping in the kernel, in microseconds. Default 20; `Infinity` never
   * sleeps (lowest latency, one core busy, the event loop held). Spinning
   * still notices a peer that closes, and, once a millisecond, one whose
   * process is gone.
   */
  spinMicros?: number;
}

/** The peer's process, as {@linkcode Channel.peer} reports it. */
export interface ChannelPeer {
  /** Its pid, from `SO_PEERCRED` on the connection. */
  pid: number;
  /**
   * Its start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot,
   * modulo 2^31): with the pid, an identity that a later process given the
   * same pid does not share.
   */
  startTime: number;
  /** Whether its death is watched through a pidfd (false: by pid and start time, slower). */
  pidfd: boolean;
}

function waitOptions(options: unknown) {
  const o = readOptions(options, "options", ["timeoutMs", "signal", "spinMicros"] as const);
  const timeout = o.timeoutMs ?? Infinity;
  if (typeof timeout !== "number" || !(timeout >= 0)) {
    throw new RangeError(`Cannot use timeoutMs "${show(timeout)}": expected a number >= 0`);
  }
  const spin = o.spinMicros ?? 20;
  if (typeof spin !== "number" || !(spin >= 0)) {
    throw new RangeError(`Cannot use spinMicros "${show(spin)}": expected a number >= 0`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot use signal "${show(o.signal)}": expected an AbortSignal`);
  }
  return { timeout, spin, signal: o.signal as AbortSignal | undefined };
}

function closeAll(fds: number[]): void {
  for (const fd of fds) if (fd >= 0) lib().mk_core_close(fd);
}

/**
 * The backstop for a channel never closed: its eventfds and its pidfd (the
 * connection has a backstop of its own; the mapping, like every memkit
 * mapping, is never unmapped by the collector). Unregistered by close().
 */
const closer = new FinalizationRegistry<number[]>(closeAll);

/** The bytes a message of `n` bytes takes in the ring: its length word, then padding to 8. */
function strideOf(n: number): number {
  return (n + 11) & ~7; // MK_CHANNEL_ALIGN is 8
}

function refuseTransfer(): never {
  throw new TypeError(
    "Cannot transfer a channel's message view: the channel must be able to detach it " +
      "when its slot is released; copy it with slice() instead",
  );
}

/**
 * The prototype of the buffers behind received views: their transfer
 * methods refuse, since a buffer moved elsewhere would outlive its slot
 * (and could outlive the mapping).
 */
const VIEW_BUFFER: ArrayBuffer = Object.create(ArrayBuffer.prototype, {
  transfer: { value: refuseTransfer },
  transferToFixedLength: { value: refuseTransfer },
  transferToImmutable: { value: refuseTransfer },
});

const getArrayBuffer = Deno.UnsafePointerView.getArrayBuffer;
const pointerCreate = Deno.UnsafePointer.create;

/**
 * One end of a channel: the sender (made by {@linkcode Channel.create}) or
 * the receiver ({@linkcode Channel.attach}). Messages are byte strings of
 * up to `maxMessage` bytes, in order, never overwritten: a full ring makes
 * `send()` return false and `sendAsync()` wait.
 *
 * The memory: a memfd sealed against shrinking and growing (`"seal"` too),
 * one header page then the ring, mapped twice after the header. The
 * header's layout is versioned (magic `"MACH"`, version 1, the ring's
 * capacity; then the tail, the sender's closed flag and its sleeping flag
 * on one cache line; the head, the receiver's closed flag and its sleeping
 * flag on the next: the `MK_CHANNEL_OFF_*` offsets of `cbits/memkit.h`) and
 * checked on attach. Values the peer writes are validated before use: a
 * head or tail out of range, or a length past what was committed, is a
 * {@linkcode ChannelError}, never an access out of bounds. Each value is
 * read once, into a local, then checked, then used.
 *
 * The busy path makes no FFI call: the head and the tail are read with
 * `Atomics.load` and written with `Atomics.store` through a view kept over
 * the header, the bytes with plain typed-array stores and loads. The order
 * this needs: the sender's bytes before its tail store, the receiver's
 * tail load before its reads of the bytes, and its reads before its head
 * store. V8 emits `Atomics.load` as a plain load and `Atomics.store` as
 * `xchg` on x86-64 (`ldar` and `stlr` on arm64), for a non-shared buffer as
 * for a shared one, and moves no memory access across either; x86-64 keeps
 * stores in order and a load before every later load and store (arm64's
 * acquire and release do the same), so each of the three holds. A plain
 * load of the peer's word is never used: the compiler may hoist it out of
 * a spin loop. Each side also caches what it last validated (the
 * receiver, the bytes committed; the sender, the room) and reads the
 * peer's word again only when that runs out, so a batch costs one read of
 * the peer's cache line and one validation.
 *
 * Waiting: `receive()` spins for `spinMicros`, then sets its sleeping flag
 * and sleeps in `poll` on an eventfd (a `nonblocking` FFI call: the event
 * loop stays free); a publish (the `Atomics.store` of the tail or head, a
 * full barrier, then an `Atomics.load` of the peer's flag) signals the
 * eventfd (one FFI call) only when the peer sleeps, so a busy channel makes
 * no system call. The sleeper's side is `mk_channel_arm` in C: a
 * sequentially consistent store of its flag, then a load of the word it
 * waits on; of the two, one sees the other. The same poll watches the
 * peer's process through a pidfd (`SO_PEERPIDFD`, or `SO_PEERCRED` and
 * `pidfd_open`, taken at create and attach; the pid with the process's
 * start time is {@linkcode Channel.peer}) and the socket: a peer killed
 * with SIGKILL is noticed even when its socket lives on in another process,
 * and the wait rejects with `"peer-gone"` once the ring is drained.
 *
 * The channel owns the connection it was made over: `close()` closes it.
 *
 * Requires `--allow-ffi` (and the socket's permissions, for the connection).
 *
 * @example A channel inside one process
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-ch.sock
 * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using listener = FdListener.listen("/tmp/memkit-doc-ch.sock");
 * const client = FdConnection.connect(listener.path);
 * const server = await listener.accept();
 * using tx = await Channel.create(client, { capacity: 65536 });
 * using rx = await Channel.attach(server);
 *
 * tx.send(new TextEncoder().encode("hello"));
 * const view = tx.reserve(3)!; // zero-copy: write straight into the ring
 * view.set([1, 2, 3]);
 * tx.commit();
 * assertEquals(new TextDecoder().decode(await rx.receive()), "hello");
 * assertEquals([...rx.tryReceive()!], [1, 2, 3]);
 * assertEquals(rx.tryReceive(), undefined);
 * ```
 */
export class Channel {
  #role: "sender" | "receiver";
  #mapping: Mapping;
  #header: Uint32Array<ArrayBuffer>;
  #ring: Uint8Array<ArrayBuffer>;
  #ring32: Uint32Array<ArrayBuffer>;
  #address: bigint;
  #ringAddress: bigint;
  #capacity: number;
  #mask: number;
  /** The sender's tail or the receiver's head. */
  #pos = 0;
  /** The peer's word (head or tail) as last read and validated. */
  #peerWord = 0;
  #reserved = -1;
  /** The buffer behind the receiver's view out now, and its message's stride. */
  #view: ArrayBuffer | undefined;
  #viewStride = 0;
  /** Inside drain(): the receiving methods refuse. */
  #draining = false;
  #dataEvent: number;
  #spaceEvent: number;
  #conn: FdConnection;
  #socket: number;
  #pidfd: number;
  #peerInfo: ChannelPeer | undefined;
  #identity: bigint;
  #waiter = new Waiter();
  #peerGone: string | undefined;
  #closed = false;
  static {
    addressOf = (ch) => ch.#address;
  }

  /** @ignore */
  private constructor(
    role: "sender" | "receiver",
    mapping: Mapping,
    capacity: number,
    dataEvent: number,
    spaceEvent: number,
    conn: FdConnection,
  ) {
    this.#role = role;
    this.#mapping = mapping;
    this.#capacity = capacity;
    this.#mask = capacity - 1;
    const page = pageSize();
    const all = mapping.bytes();
    this.#header = new Uint32Array(all.buffer, all.byteOffset, page / 4);
    this.#ring = all.subarray(page);
    this.#ring32 = new Uint32Array(all.buffer, all.byteOffset + page, (2 * capacity) / 4);
    this.#address = mapping.address;
    this.#ringAddress = mapping.address + BigInt(page);
    this.#dataEvent = dataEvent;
    this.#spaceEvent = spaceEvent;
    this.#conn = conn;
    this.#socket = connectionRaw(conn).fd;
    this.#pos = Atomics.load(this.#header, role === "sender" ? W.tail : W.head);
    this.#peerWord = this.#pos;
    // The peer's process: a pidfd where the kernel has one, else its pid and start time.
    const out = new BigInt64Array(2);
    const ret = lib().mk_channel_peer(this.#socket, out);
    this.#pidfd = ret >= 0n ? Number(ret) : -1;
    this.#identity = BigInt.asUintN(64, out[1]);
    if (out[0] > 0n) {
      this.#peerInfo = {
        pid: Number(out[0]),
        startTime: Number(out[1] >> 32n),
        pidfd: this.#pidfd >= 0,
      };
    }
    if (ret < 0n && errnoCode(Number(-ret)) === "ESRCH") {
      this.#peerGone = "its process had exited when the channel was set up";
    }
    FinalizationRegistryPrototypeRegister(
      closer,
      this,
      [dataEvent, spaceEvent, this.#waiter.fd, this.#pidfd],
      this,
    );
  }

  /**
   * Makes a channel and offers it to the peer of `conn` (which calls
   * {@linkcode Channel.attach}): this end is the sender. The memfd (sealed
   * against shrinking and growing) and two eventfds travel in one message.
   *
   * @param conn The connection; the channel owns it from now on.
   * @param options The ring's capacity and the memfd's name.
   * @returns The sending end.
   *
   * @example Create a channel on a connection
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-cc.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-cc.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client, { capacity: 4096 });
   * using rx = await Channel.attach(server);
   * assertEquals([tx.capacity, rx.capacity, tx.maxMessage], [4096, 4096, 4088]);
   * ```
   */
  static async create(conn: FdConnection, options?: ChannelOptions): Promise<Channel> {
    const opts = readOptions(options, "options", ["capacity", "name"] as const);
    const page = pageSize();
    const capacity = inRange(opts.capacity ?? 1 << 20, "capacity", page, 2 ** 31);
    if ((capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`Cannot use capacity "${capacity}": not a power of two`);
    }
    const name = string(opts.name ?? "channel", "name");
    const cname = cString(name, "name");
    const raw = connectionRaw(conn);
    const fds: number[] = [];
    let mapping: Mapping | undefined;
    try {
      const memfd = check(lib().mk_memfd_create(cname, MK.MEMFD_SEALABLE), "create memfd", {
        path: name,
      });
      fds.push(memfd);
      check(lib().mk_memfd_resize(memfd, BigInt(page + capacity), null), "resize", {
        path: `memfd:${name}`,
      });
      check(lib().mk_memfd_seal(memfd, SEALS), "seal", { path: `memfd:${name}` });
      mapping = mapChannel(memfd, capacity, name);
      const header = new Uint32Array(mapping.bytes().buffer, 0, 4);
      header[W.capacity] = capacity;
      header[W.version] = MK.CHANNEL_VERSION;
      Atomics.store(header, W.magic, MK.CHANNEL_MAGIC);
      fds.push(check(lib().mk_socket_event(), "create an eventfd"));
      fds.push(check(lib().mk_socket_event(), "create an eventfd"));
      while (!raw.send(fds, HELLO)) await new Promise((r) => setTimeout(r, 1));
      lib().mk_core_close(fds.shift()!); // the mapping keeps the memory
      return new Channel("sender", mapping, capacity, fds[0], fds[1], conn);
    } catch (e) {
      mapping?.close();
      closeAll(fds);
      throw e;
    }
  }

  /**
   * Waits for the peer's offer on `conn` ({@linkcode Channel.create}) and
   * checks it before trusting it: three descriptors, the first a memfd
   * sealed against shrinking and growing of one page plus a power-of-two
   * ring (at most `maxCapacity`), the other two eventfds; then the header's
   * magic, version and capacity, and its head and tail. This end is the
   * receiver.
   *
   * @param conn The connection; the channel owns it from now on.
   * @param options A timeout, a signal and the largest ring accepted.
   * @returns The receiving end.
   * @throws {ChannelError} `"refused"` when the offer is no valid channel
   * (everything it carried is closed).
   *
   * @example Attach to a channel a peer sent
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-ca.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-ca.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server, { timeoutMs: 5000 });
   * ```
   */
  static async attach(conn: FdConnection, options?: AttachOptions): Promise<Channel> {
    const opts = readOptions(options, "options", ["timeoutMs", "signal", "maxCapacity"] as const);
    const { timeout, signal } = waitOptions({ timeoutMs: opts.timeoutMs, signal: opts.signal });
    const maxCapacity = inRange(opts.maxCapacity ?? 2 ** 30, "maxCapacity", 1, 2 ** 31);
    const raw = connectionRaw(conn);
    const deadline = performance.now() + timeout;
    const waiter = new Waiter();
    let msg;
    try {
      for (;;) {
        signal?.throwIfAborted();
        msg = raw.receive(3);
        if (msg === null) {
          throw new ChannelError("peer-gone", "Cannot attach: the peer closed the connection");
        }
        if (msg) break;
        const end = await waiter.wait(
          [[raw.fd, MK.POLL_IN]],
          Math.max(0, deadline - performance.now()),
          signal,
        );
        if (end.kind === "timeout") {
          throw new Deno.errors.TimedOut(`Cannot attach: no offer within ${timeout} ms`);
        }
        signal?.throwIfAborted();
      }
    } finally {
      waiter.close(() => {});
    }
    const fds = msg.fds;
    let mapping: Mapping | undefined;
    const refuse = (why: string): never => {
      throw new ChannelError("refused", `Cannot attach a channel: ${why}`);
    };
    try {
      if (fds.length !== 3) refuse(`expected 3 descriptors, got ${fds.length}`);
      const info = new BigUint64Array(4);
      const name = new Uint8Array(256);
      check(lib().mk_socket_inspect(fds[0], info, name, 256n), "inspect a received descriptor");
      const label = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
      if (Number(info[0]) !== MK.FD_MEMFD) refuse("the first descriptor is not a memfd");
      const need = MK.SEAL_SHRINK | MK.SEAL_GROW;
      if ((Number(info[1]) & need) !== need) {
        refuse(`memfd "${label}" is not sealed against shrinking and growing`);
      }
      if (Number(info[3]) !== 2) refuse(`memfd "${label}" is not open read-write`);
      const page = pageSize();
      const capacity = Number(info[2]) - page;
      if (capacity < page || (capacity & (capacity - 1)) !== 0 || capacity > maxCapacity) {
        refuse(
          `memfd "${label}" of ${info[2]} bytes is not a page plus a power-of-two ring of at ` +
            `most ${maxCapacity} bytes`,
        );
      }
      for (const i of [1, 2]) {
        check(lib().mk_socket_inspect(fds[i], info, name, 0n), "inspect a received descriptor");
        if (Number(info[0]) !== MK.FD_EVENTFD) refuse(`descriptor ${i + 1} is not an eventfd`);
      }
      mapping = mapChannel(fds[0], capacity, label);
      const header = new Uint32Array(mapping.bytes().buffer, 0, page / 4);
      // Read once each, into locals, before any decision.
      const magic = Atomics.load(header, W.magic);
      const version = Atomics.load(header, W.version);
      const cap = Atomics.load(header, W.capacity);
      if (magic !== MK.CHANNEL_MAGIC) refuse(`bad magic "0x${magic.toString(16)}"`);
      if (version !== MK.CHANNEL_VERSION) {
        refuse(`version "${version}" (this memkit speaks ${MK.CHANNEL_VERSION})`);
      }
      if (cap !== capacity) refuse(`the header says "${cap}" bytes, the memfd holds ${capacity}`);
      lib().mk_core_close(fds[0]);
      const ch = new Channel("receiver", mapping, capacity, fds[1], fds[2], conn);
      ch.#validate(Atomics.load(header, W.tail)); // validates the starting positions
      return ch;
    } catch (e) {
      mapping?.close();
      closeAll(fds);
      throw e;
    }
  }

  /** `"sender"` or `"receiver"`. */
  get role(): "sender" | "receiver" {
    return this.#role;
  }

  /** The ring's size in bytes. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The longest message, in bytes: the capacity less a length word and padding. */
  get maxMessage(): number {
    return this.#capacity - MK.CHANNEL_ALIGN;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The peer's process (pid and start time, read when the channel was set
   * up), or undefined where the kernel told none.
   *
   * @example The process at the other end
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-cp.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-cp.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * assertEquals(rx.peer?.pid, Deno.pid); // both ends are this process here
   * ```
   */
  get peer(): ChannelPeer | undefined {
    return this.#peerInfo && { ...this.#peerInfo };
  }

  #alive(op: string, role: "sender" | "receiver"): void {
    if (this.#closed) throw new Deno.errors.BadResource(`Cannot ${op}: the channel is closed`);
    if (this.#role !== role) {
      throw new TypeError(`Cannot ${op}: this is the ${this.#role}'s end of the channel`);
    }
  }

  #corrupt(what: string): never {
    throw new ChannelError("corrupt", `Cannot use the channel: the peer wrote ${what}`);
  }

  /**
   * Validates the peer's word (read once by the caller), against this side's
   * position: tail - head within the ring, and aligned. Returns tail - head.
   */
  #validate(peer: number): number {
    const sender = this.#role === "sender";
    const used = sender ? (this.#pos - peer) >>> 0 : (peer - this.#pos) >>> 0;
    if (used > this.#capacity || (peer & (MK.CHANNEL_ALIGN - 1)) !== 0) {
      this.#corrupt(
        `${sender ? "head" : "tail"} "${peer}" out of range ` +
          `(${sender ? "tail" : "head"} ${this.#pos}, capacity ${this.#capacity})`,
      );
    }
    this.#peerWord = peer;
    return used;
  }

  /** The sender: whether `stride` bytes fit, reading the head again only when the room known is short. */
  #room(stride: number): boolean {
    if (this.#capacity - ((this.#pos - this.#peerWord) >>> 0) >= stride) return true;
    const used = this.#validate(Atomics.load(this.#header, W.head));
    return this.#capacity - used >= stride;
  }

  /** The sender: makes the tail visible, and wakes the receiver if it sleeps. */
  #publishTail(): void {
    Atomics.store(this.#header, W.tail, this.#pos);
    if (Atomics.load(this.#header, W.dataWait) !== 0) {
      lib().mk_channel_publish(
        this.#address,
        MK.CHANNEL_OFF_TAIL,
        this.#pos,
        MK.CHANNEL_OFF_DATA_WAIT,
        this.#dataEvent,
      );
    }
  }

  /** The receiver: gives the space back, and wakes the sender if it sleeps. */
  #publishHead(): void {
    Atomics.store(this.#header, W.head, this.#pos);
    if (Atomics.load(this.#header, W.spaceWait) !== 0) {
      lib().mk_channel_publish(
        this.#address,
        MK.CHANNEL_OFF_HEAD,
        this.#pos,
        MK.CHANNEL_OFF_SPACE_WAIT,
        this.#spaceEvent,
      );
    }
  }

  /**
   * A writable view of `n` bytes inside the ring, for the next message, or
   * undefined when the ring has no room for it now. Fill it, then
   * `commit()`: no copy is made. A new `reserve()` (or a `send()`) replaces
   * the previous one.
   *
   * @param n The message's length, at most `maxMessage`.
   * @returns The view, or undefined.
   *
   * @example Reserve space and write in place
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-cr.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-cr.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client, { capacity: 4096 });
   * using rx = await Channel.attach(server);
   * const view = tx.reserve(100)!;
   * view.fill(7);
   * tx.commit(10); // only the first 10 bytes are the message
   * assertEquals(rx.tryReceive()!.length, 10);
   * ```
   */
  reserve(n: number): Uint8Array<ArrayBuffer> | undefined {
    this.#alive("reserve", "sender");
    if (!(typeof n === "number" && n >= 0 && n <= this.maxMessage && Number.isInteger(n))) {
      inRange(n, "length", 0, this.maxMessage);
    }
    this.#reserved = -1;
    if (!this.#room(strideOf(n))) {
      this.#checkReceiver();
      return undefined;
    }
    this.#reserved = n;
    const at = (this.#pos & this.#mask) + 4;
    return this.#ring.subarray(at, at + n);
  }

  /**
   * Makes the reserved message visible to the receiver (waking it if it
   * sleeps).
   *
   * @param n How many of the reserved bytes are the message (default all).
   *
   * @example Commit part of a reservation
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-cm.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-cm.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * tx.reserve(4)!.set([1, 2, 3, 4]);
   * tx.commit();
   * ```
   */
  commit(n?: number): void {
    this.#alive("commit", "sender");
    const reserved = this.#reserved;
    if (reserved < 0) throw new RangeError("Cannot commit: nothing is reserved");
    const len = n === undefined ? reserved : inRange(n, "length", 0, reserved);
    this.#ring32[(this.#pos & this.#mask) >>> 2] = len;
    this.#pos = (this.#pos + strideOf(len)) >>> 0;
    this.#reserved = -1;
    this.#publishTail();
  }

  /** Writes one message at the tail (room checked by the caller); does not publish. */
  #put(data: Uint8Array, n: number): void {
    const at = this.#pos & this.#mask;
    this.#ring32[at >>> 2] = n;
    TypedArrayPrototypeSet(this.#ring, data, at + 4);
    this.#pos = (this.#pos + strideOf(n)) >>> 0;
  }

  /**
   * Copies `data` into the ring as one message; false (nothing written)
   * when the ring has no room for it now: never an overwrite. Makes no FFI
   * call unless the receiver sleeps.
   *
   * @param data The message, at most `maxMessage` bytes.
   * @returns Whether it was sent.
   *
   * @example Send one message
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-cs.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assert } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-cs.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client, { capacity: 4096 });
   * using rx = await Channel.attach(server);
   * assert(tx.send(new Uint8Array(4000)));
   * assert(!tx.send(new Uint8Array(4000))); // full: refused, not overwritten
   * ```
   */
  send(data: Uint8Array): boolean {
    this.#alive("send", "sender");
    const n = typedLength(data, "Uint8Array", "data");
    if (n > this.#capacity - MK.CHANNEL_ALIGN) inRange(n, "length", 0, this.maxMessage);
    this.#reserved = -1;
    if (!this.#room(strideOf(n))) {
      this.#checkReceiver();
      return false;
    }
    this.#put(data, n);
    this.#publishTail();
    return true;
  }

  /**
   * Copies `data` into the ring as one message without making it visible
   * yet: `flush()` publishes every message written since (one store of the
   * tail, at most one wake-up), as `send()` does for each. False (nothing
   * written) when the ring has no room for it now. The room counts the
   * messages written and not yet flushed: flush before waiting for space.
   *
   * @param data The message, at most `maxMessage` bytes.
   * @returns Whether it was written.
   *
   * @example Write a message, publish it later
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-wr.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-wr.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * tx.write(new Uint8Array([1]));
   * tx.write(new Uint8Array([2]));
   * assertEquals(rx.tryReceive(), undefined); // not flushed yet
   * tx.flush();
   * assertEquals(rx.drain(() => {}), 2);
   * ```
   */
  write(data: Uint8Array): boolean {
    this.#alive("write", "sender");
    const n = typedLength(data, "Uint8Array", "data");
    if (n > this.#capacity - MK.CHANNEL_ALIGN) inRange(n, "length", 0, this.maxMessage);
    this.#reserved = -1;
    if (!this.#room(strideOf(n))) {
      this.#checkReceiver();
      return false;
    }
    this.#put(data, n);
    return true;
  }

  /**
   * Publishes the messages `write()` put in the ring (a no-op when there are
   * none).
   *
   * @example Wake the receiver after several writes
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-fl.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-fl.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * tx.write(new Uint8Array([7]));
   * tx.flush();
   * assertEquals([...rx.tryReceive()!], [7]);
   * ```
   */
  flush(): void {
    this.#alive("flush", "sender");
    if (Atomics.load(this.#header, W.tail) !== this.#pos) this.#publishTail();
  }

  /**
   * Copies as many of `messages[start..end)` into the ring as fit now, in
   * order, each as one message, and publishes them at once (one store of
   * the tail, at most one wake-up). Every message is checked before any is
   * written.
   *
   * @param messages The messages, each at most `maxMessage` bytes.
   * @param start The first to send (default 0).
   * @param end One past the last (default `messages.length`).
   * @returns How many were sent (from `start`); fewer when the ring filled.
   *
   * @example Send a batch of messages
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-sb.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-sb.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client, { capacity: 4096 });
   * using rx = await Channel.attach(server);
   * const batch = Array.from({ length: 100 }, (_, i) => new Uint8Array(56).fill(i));
   * assertEquals(tx.sendBatch(batch), 64); // 64 of 64 bytes each fill the ring
   * assertEquals(rx.drain(() => {}), 64);
   * assertEquals(tx.sendBatch(batch, 64), 36);
   * ```
   */
  sendBatch(messages: readonly Uint8Array[], start = 0, end?: number): number {
    this.#alive("send", "sender");
    if (!ArrayIsArray(messages)) {
      throw new TypeError(`Cannot use messages "${show(messages)}": expected an array`);
    }
    const stop = inRange(end ?? messages.length, "end", 0, messages.length);
    const first = inRange(start, "start", 0, stop);
    const max = this.maxMessage;
    for (let i = first; i < stop; i++) {
      if (typedLength(messages[i], "Uint8Array", `messages[${i}]`) > max) {
        inRange(TypedArrayPrototypeGetLength(messages[i]), `length of messages[${i}]`, 0, max);
      }
    }
    this.#reserved = -1;
    let i = first;
    for (; i < stop; i++) {
      const m = messages[i];
      const n = TypedArrayPrototypeGetLength(m);
      if (!this.#room(strideOf(n))) break;
      this.#put(m, n);
    }
    if (i > first) this.#publishTail();
    else if (stop > first) this.#checkReceiver();
    return i - first;
  }

  /**
   * Sends `data`, waiting (spinning briefly, then asleep in the kernel,
   * the event loop free) while the ring is full.
   *
   * @param data The message.
   * @param options A timeout, a signal, how long to spin.
   * @throws {ChannelError} `"closed"` or `"peer-gone"` when the receiver
   * is gone.
   *
   * @example Wait for space, then send
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-sa.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-sa.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client, { capacity: 4096 });
   * using rx = await Channel.attach(server);
   * tx.send(new Uint8Array(4000));
   * const sending = tx.sendAsync(new Uint8Array([1])); // waits for room
   * assertEquals(rx.tryReceive()!.length, 4000);
   * await sending;
   * assertEquals([...rx.tryReceive()!], [1]);
   * ```
   */
  async sendAsync(data: Uint8Array, options?: ChannelWaitOptions): Promise<void> {
    const { timeout, spin, signal } = waitOptions(options);
    if (this.send(data)) return;
    await this.#waitFor("send", () => this.send(data), timeout, spin, signal);
  }

  /** Throws when the receiver is gone (for a sender that finds the ring full). */
  #checkReceiver(): void {
    if (Atomics.load(this.#header, W.receiver) !== 0) {
      throw new ChannelError("closed", "Cannot send: the receiver closed the channel");
    }
    if (this.#peerGone) {
      throw new ChannelError("peer-gone", `Cannot send: the receiver is gone (${this.#peerGone})`);
    }
  }

  /** The receiver: before any receive, the view out is released; inside drain() none is allowed. */
  #enter(op: string): void {
    this.#alive(op, "receiver");
    if (this.#draining) throw new TypeError(`Cannot ${op} inside drain(): return from it first`);
    if (this.#view !== undefined) this.release();
  }

  /**
   * The receiver: the bytes committed from the head, reading the tail again
   * only when the ones known are consumed (0: none).
   */
  #available(): number {
    const known = (this.#peerWord - this.#pos) >>> 0;
    if (known !== 0) return known;
    const tail = Atomics.load(this.#header, W.tail);
    if (tail === this.#pos) return 0;
    return this.#validate(tail);
  }

  /** The length word of the message at the head, checked against the bytes committed. */
  #length(available: number): number {
    const len = this.#ring32[(this.#pos & this.#mask) >>> 2];
    if (len > available - 4) {
      this.#corrupt(`a length "${len}" past the ${available} bytes committed`);
    }
    return len;
  }

  /**
   * The next message (a copy), or undefined when none is pending.
   *
   * @returns The message, or undefined.
   * @throws {ChannelError} `"corrupt"` when the sender wrote values out of range.
   *
   * @example Receive a copy without waiting
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-tr2.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-tr2.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * assertEquals(rx.tryReceive(), undefined);
   * ```
   */
  tryReceive(): Uint8Array<ArrayBuffer> | undefined {
    this.#enter("receive");
    const available = this.#available();
    if (available === 0) return undefined;
    const len = this.#length(available);
    const at = (this.#pos & this.#mask) + 4;
    const out = this.#ring.slice(at, at + len);
    this.#pos = (this.#pos + strideOf(len)) >>> 0;
    this.#publishHead();
    return out;
  }

  /**
   * Copies the next message into `out` (no allocation) and returns its
   * length, or -1 when none is pending. A message longer than `out` is
   * left in the ring and is a RangeError naming its length.
   *
   * @param out Where to copy it.
   * @returns The message's length, or -1.
   * @throws {ChannelError} `"corrupt"` when the sender wrote values out of range.
   *
   * @example Receive into a buffer of your own
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-ti.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-ti.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * const buf = new Uint8Array(64);
   * assertEquals(rx.tryReceiveInto(buf), -1);
   * tx.send(new Uint8Array([5, 6]));
   * assertEquals(rx.tryReceiveInto(buf), 2);
   * assertEquals([buf[0], buf[1]], [5, 6]);
   * ```
   */
  tryReceiveInto(out: Uint8Array): number {
    this.#enter("receive");
    const room = typedLength(out, "Uint8Array", "out");
    const available = this.#available();
    if (available === 0) return -1;
    const len = this.#length(available);
    if (len > room) {
      throw new RangeError(`Cannot receive into ${room} bytes: the next message is ${len} bytes`);
    }
    const at = (this.#pos & this.#mask) + 4;
    if (len <= 128) {
      const ring = this.#ring;
      for (let k = 0; k < len; k++) out[k] = ring[at + k]; // cheaper than a subarray
    } else {
      TypedArrayPrototypeSet(out, TypedArrayPrototypeSubarray(this.#ring, at, at + len));
    }
    this.#pos = (this.#pos + strideOf(len)) >>> 0;
    this.#publishHead();
    return len;
  }

  /**
   * The next message as a view into the ring (no copy), or undefined when
   * none is pending. The view is valid until `release()`, the next receive
   * of any kind, or `close()`: then its buffer is detached (it reads as
   * empty, `length` 0), and only then may the sender reuse its slot. While
   * a view is out, the ring's space behind it stays taken.
   *
   * The sender's process can still write into the slot while you read it
   * (it breaks the protocol then, but nothing stops it): copy what you
   * check before you trust it (`slice()`), never check a view and use it
   * later. The view's buffer refuses `transfer()`, so it cannot leave the
   * channel's reach.
   *
   * @returns A view of the message, or undefined.
   * @throws {ChannelError} `"corrupt"` when the sender wrote values out of range.
   *
   * @example Receive a zero-copy view without waiting
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-tv.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-tv.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * tx.send(new Uint8Array([1, 2, 3]));
   * const view = rx.tryReceiveView()!;
   * assertEquals([...view], [1, 2, 3]);
   * rx.release(); // the slot goes back to the sender
   * assertEquals(view.length, 0); // detached
   * ```
   */
  tryReceiveView(): Uint8Array<ArrayBuffer> | undefined {
    this.#enter("receive");
    const available = this.#available();
    if (available === 0) return undefined;
    const len = this.#length(available);
    const at = (this.#pos & this.#mask) + 4;
    const buffer = this.#viewBuffer(at, len);
    this.#view = buffer;
    this.#viewStride = strideOf(len);
    return new Uint8Array(buffer);
  }

  /** A buffer of its own over [at, at + len) of the ring, detachable, held against the mapping's collection. */
  #viewBuffer(at: number, len: number): ArrayBuffer {
    const buffer = len === 0
      ? new ArrayBuffer(0)
      : getArrayBuffer(pointerCreate(this.#ringAddress + BigInt(at))!, len);
    ObjectSetPrototypeOf(buffer, VIEW_BUFFER);
    const region = findRegion(this.#mapping);
    if (region) hold(region, buffer);
    return buffer;
  }

  /** Detaches a view's buffer; one found detached already was moved out of reach: the ring stays mapped. */
  #detach(buffer: ArrayBuffer): void {
    const region = findRegion(this.#mapping);
    if (ArrayBufferPrototypeGetDetached(buffer)) {
      if (region) region.pinned = true;
      return;
    }
    ArrayBufferPrototypeTransfer(buffer, 0);
    if (region) letGo(region, buffer);
  }

  /**
   * Gives back the slot of the view `tryReceiveView()` or `receiveView()`
   * returned: detaches it and lets the sender reuse its bytes. A no-op
   * when no view is out.
   *
   * @example Release a view to free its space
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-rl.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-rl.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * tx.send(new Uint8Array(10));
   * const view = rx.tryReceiveView()!;
   * rx.release();
   * assertEquals(view.byteLength, 0);
   * ```
   */
  release(): void {
    this.#alive("release", "receiver");
    const buffer = this.#view;
    if (buffer === undefined) return;
    this.#view = undefined;
    this.#detach(buffer);
    this.#pos = (this.#pos + this.#viewStride) >>> 0;
    this.#publishHead();
  }

  /**
   * Waits for the next message (as `receive()` does) and returns it as a
   * view into the ring, valid until `release()`, the next receive or
   * `close()` (see {@linkcode Channel.tryReceiveView}).
   *
   * @param options A timeout, a signal, how long to spin.
   * @returns A view of the message.
   * @throws {ChannelError} As `receive()`.
   *
   * @example Wait for a zero-copy view
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-rv.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-rv.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * setTimeout(() => tx.send(new Uint8Array([9])), 10);
   * const view = await rx.receiveView();
   * assertEquals(view[0], 9);
   * rx.release();
   * ```
   */
  async receiveView(options?: ChannelWaitOptions): Promise<Uint8Array<ArrayBuffer>> {
    const { timeout, spin, signal } = waitOptions(options);
    let got = this.tryReceiveView();
    if (got) return got;
    await this.#waitFor(
      "receive",
      () => (got = this.tryReceiveView()) !== undefined,
      timeout,
      spin,
      signal,
    );
    return got!;
  }

  /**
   * Calls `fn` with each message pending now (and those that arrive while
   * it runs), up to `max`, as views into the ring: no copy, no allocation
   * but the view objects, one read of the tail per run of messages and one
   * store of the head every 32 messages and at the end. This is the fast path: its views are
   * subarrays of the channel's own view of the ring, so they cannot be
   * detached one batch at a time (a buffer of their own costs more than a
   * small message: use `tryReceiveView()` for views that are). A view is
   * the message only while `fn` runs: kept past it, it reads whatever the
   * sender writes into that slot later (never memory outside the ring;
   * after `close()` it reads as empty). As with `tryReceiveView()`, copy
   * what you check. Inside `fn`, this channel's receiving methods throw;
   * `close()` ends the drain.
   *
   * @param fn Called with each message, in order.
   * @param max The most messages to take (default all).
   * @returns How many messages `fn` was given.
   * @throws {ChannelError} `"corrupt"` when the sender wrote values out of
   * range (the messages before it were delivered and are consumed).
   *
   * @example Drain every queued message
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-dr.sock
   * import { Channel, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-dr.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * using tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * for (let i = 0; i < 5; i++) tx.send(new Uint8Array([i]));
   * let sum = 0;
   * assertEquals(rx.drain((m) => sum += m[0]), 5);
   * assertEquals(sum, 10);
   * ```
   */
  drain(fn: (message: Uint8Array<ArrayBuffer>) => void, max: number = Infinity): number {
    this.#enter("receive");
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot use fn "${show(fn)}": expected a function`);
    }
    if (max !== Infinity) inRange(max, "max", 0, Number.MAX_SAFE_INTEGER);
    let count = 0;
    const ring = this.#ring;
    const words = this.#ring32;
    this.#draining = true;
    try {
      while (count < max) {
        let available = this.#available();
        if (available === 0) break;
        // The run [head, head + available) is contiguous: the ring is mapped twice.
        try {
          while (available > 0 && count < max) {
            const at = this.#pos & this.#mask;
            const len = words[at >>> 2];
            if (len > available - 4) {
              this.#corrupt(`a length "${len}" past the ${available} bytes committed`);
            }
            const stride = (len + 11) & ~7;
            this.#pos = (this.#pos + stride) >>> 0;
            available -= stride;
            count++;
            fn(ring.subarray(at + 4, at + 4 + len));
            if (this.#closed) return count;
            // A long run gives its space back as it goes, so that the sender
            // is not held up until the run ends.
            if ((count & 31) === 0) this.#publishHead();
          }
        } finally {
          if (!this.#closed) this.#publishHead();
        }
      }
    } finally {
      this.#draining = false;
    }
    return count;
  }

  /**
   * Waits for the next message: spins for `spinMicros`, then sleeps in the
   * kernel (the event loop free) until the sender commits one.
   *
   * @param options A timeout, a signal, how long to spin.
   * @returns The message (a copy).
   * @throws {ChannelError} `"closed"` when the sender closed the channel,
   * `"peer-gone"` when its process is gone (its pidfd or its socket says
   * so), once every message sent before has been received.
   * @throws {Deno.errors.TimedOut} When the timeout passes first.
   *
   * @example Wait for a message
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-rc.sock
   * import { Channel, ChannelError, FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-rc.sock");
   * const client = FdConnection.connect(listener.path);
   * const server = await listener.accept();
   * const tx = await Channel.create(client);
   * using rx = await Channel.attach(server);
   * setTimeout(() => {
   *   tx.send(new Uint8Array([42]));
   *   tx.close();
   * }, 10);
   * assertEquals([...await rx.receive()], [42]);
   * const e = await assertRejects(() => rx.receive(), ChannelError);
   * assertEquals(e.reason, "closed");
   * ```
   */
  async receive(options?: ChannelWaitOptions): Promise<Uint8Array<ArrayBuffer>> {
    const { timeout, spin, signal } = waitOptions(options);
    let got = this.tryReceive();
    if (got) return got;
    await this.#waitFor(
      "receive",
      () => (got = this.tryReceive()) !== undefined,
      timeout,
      spin,
      signal,
    );
    return got!;
  }

  /** Throws when the sender is gone and nothing is left (for a receiver that finds the ring empty). */
  #checkSender(): void {
    if (Atomics.load(this.#header, W.sender) !== 0) {
      throw new ChannelError("closed", "Cannot receive: the sender closed the channel");
    }
    if (this.#peerGone) {
      throw new ChannelError(
        "peer-gone",
        `Cannot receive: the sender is gone (${this.#peerGone})`,
      );
    }
  }

  /** Asks the kernel whether the peer's process still lives (its pidfd, or its pid and start time). */
  #checkPeerProcess(): void {
    if (this.#peerGone || this.#peerInfo === undefined) return;
    if (lib().mk_channel_alive(this.#pidfd, this.#identity) === 0n) {
      this.#peerGone = `its process ${this.#peerInfo.pid} has exited`;
    }
  }

  /** Spins, then sleeps, until `attempt()` succeeds. */
  async #waitFor(
    op: "send" | "receive",
    attempt: () => boolean,
    timeout: number,
    spin: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const sender = op === "send";
    const start = performance.now();
    const deadline = start + timeout;
    const spinUntil = start + spin / 1000;
    const peerClosed = sender ? W.receiver : W.sender;
    let nextCheck = start + 1;
    for (;;) {
      if (attempt()) return;
      const now = performance.now();
      // Spinning, even without end, still notices a peer that closed, and
      // (once a millisecond) one whose process is gone.
      if (now < spinUntil && now < deadline && Atomics.load(this.#header, peerClosed) === 0) {
        if (now < nextCheck) continue;
        nextCheck = now + 1;
        this.#checkPeerProcess();
        if (!this.#peerGone) continue;
      }
      signal?.throwIfAborted();
      try {
        if (sender) this.#checkReceiver();
        else this.#checkSender();
      } catch (e) {
        // The peer's last words come before its closed flag (or its exit):
        // seen the flag, look once more before giving up.
        if (attempt()) return;
        throw e;
      }
      // Before sleeping: raise the flag, then look again at the word the
      // failed attempt saw (the peer's publish stores it, then looks at the
      // flag: one of the two sees the other).
      const armed = lib().mk_channel_arm(
        this.#address,
        sender ? MK.CHANNEL_OFF_SPACE_WAIT : MK.CHANNEL_OFF_DATA_WAIT,
        sender ? MK.CHANNEL_OFF_HEAD : MK.CHANNEL_OFF_TAIL,
        this.#peerWord,
      );
      if (armed === 1n) continue;
      if (Atomics.load(this.#header, sender ? W.receiver : W.sender) !== 0) continue;
      if (now >= deadline) {
        throw new Deno.errors.TimedOut(`Cannot ${op}: nothing within ${timeout} ms`);
      }
      const event = sender ? this.#spaceEvent : this.#dataEvent;
      const entries: [number, number][] = [[event, MK.POLL_IN], [this.#socket, MK.POLL_IN]];
      if (this.#pidfd >= 0) entries.push([this.#pidfd, MK.POLL_IN]);
      // Without a pidfd, the sleep is cut in slices to ask after the peer's pid.
      const left = Math.max(0, deadline - performance.now());
      const end = await this.#waiter.wait(
        entries,
        this.#pidfd < 0 && this.#peerInfo ? Math.min(left, 100) : left,
        signal,
      );
      if (this.#closed) {
        throw new Deno.errors.BadResource(`Cannot ${op}: the channel is closed`);
      }
      if (end.kind === "ready") {
        if (end.revents[0]) lib().mk_socket_drain(event);
        if (end.revents[1]) this.#socketReady();
        if (end.revents[2]) this.#checkPeerProcess();
      } else if (end.kind === "timeout" && this.#pidfd < 0) {
        this.#checkPeerProcess();
      }
    }
  }

  /** The socket is readable after the offer: the peer hung up (or broke protocol). */
  #socketReady(): void {
    const raw = connectionRaw(this.#conn);
    try {
      const msg = raw.receive(3);
      if (msg === null) this.#peerGone ??= "its socket hung up";
      else if (msg) closeAll(msg.fds);
    } catch {
      this.#peerGone ??= "its socket broke";
    }
  }

  /**
   * Closes this end: the peer's waits end (`"closed"`, after the receiver
   * has drained what was sent), the views out are detached, the ring is
   * unmapped (views from `reserve()` are detached) and the connection
   * closed. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    FinalizationRegistryPrototypeUnregister(closer, this);
    const sender = this.#role === "sender";
    if (this.#view !== undefined) {
      this.#detach(this.#view);
      this.#view = undefined;
    }
    Atomics.store(this.#header, sender ? W.sender : W.receiver, 1);
    lib().mk_channel_publish(
      this.#address,
      sender ? MK.CHANNEL_OFF_TAIL : MK.CHANNEL_OFF_HEAD,
      this.#pos,
      sender ? MK.CHANNEL_OFF_DATA_WAIT : MK.CHANNEL_OFF_SPACE_WAIT,
      sender ? this.#dataEvent : this.#spaceEvent,
    );
    this.#waiter.close(() => {
      this.#mapping.close();
      closeAll([this.#dataEvent, this.#spaceEvent, this.#pidfd]);
      this.#conn.close();
    });
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The channel memfd's header page and its ring, mapped twice, as one Mapping. */
function mapChannel(fd: number, capacity: number, name: string): Mapping {
  const page = pageSize();
  const address = lib().mk_channel_map(fd, BigInt(capacity));
  if (address < 0n) check(address, "map channel", { path: `memfd:${name}` });
  const source = {};
  return createMapping({
    address,
    length: page + 2 * capacity,
    access: "rw",
    maxAccess: "rw",
    name: `channel:${name}`,
    pieces: [
      { source, offset: 0, at: 0, length: page },
      { source, offset: page, at: page, length: capacity },
      { source, offset: page, at: page + capacity, length: capacity },
    ],
  });
}
