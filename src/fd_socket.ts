/**
 * `FdListener` and `FdConnection`: memfds passed between processes over a
 * Unix socket (`SCM_RIGHTS`), each with optional bytes of metadata, and
 * checked by the receiver (seals, size, access, that it is a memfd at all)
 * before anything maps it.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { bytesOf, list, lookup, readOptions, show } from "./_args.ts";
import { cString, inRange } from "./_validate.ts";
import { Waiter } from "./_wait.ts";
import {
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
} from "./_primordials.ts";
import { adoptMemFd, type MemFd, memfdState, type Seal } from "./memfd.ts";
import { absolutePath, requirePermissions } from "./permissions.ts";

const SEALS: Readonly<Record<Seal, number>> = Object.freeze({
  seal: MK.SEAL_SEAL,
  shrink: MK.SEAL_SHRINK,
  grow: MK.SEAL_GROW,
  write: MK.SEAL_WRITE,
  "future-write": MK.SEAL_FUTURE_WRITE,
  exec: MK.SEAL_EXEC,
});

/** The most bytes of metadata one message carries. */
const MAX_METADATA = 65536;
const NAME_CAP = 256;
const decoder = new TextDecoder();

/** Why a received descriptor was refused: see {@linkcode FdRefusedError}. */
export type RefusalReason =
  | "seals"
  | "size"
  | "access"
  | "not-memfd"
  | "no-descriptor"
  | "descriptors"
  | "truncated";

/**
 * A message was received but what it carried is refused: a seal or the
 * size the receiver requires is missing, it is no memfd, it carried no
 * descriptor or more than one, or it was cut short (`MSG_CTRUNC`,
 * `MSG_TRUNC`). Every descriptor it carried has been closed; nothing was
 * mapped. The connection stays usable.
 *
 * @example Telling a refusal from other errors
 * ```ts
 * import { FdRefusedError } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const e = new FdRefusedError("seals", 'Cannot accept memfd "x": not sealed against "shrink"');
 * assertEquals(e.reason, "seals");
 * ```
 */
export class FdRefusedError extends Error {
  /** What was wrong with it. */
  readonly reason: RefusalReason;

  /**
   * Builds the error.
   *
   * @param reason What was wrong.
   * @param message The message.
   */
  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.name = "FdRefusedError";
    this.reason = reason;
  }
}

/** What a receiver requires of a memfd before it accepts it. */
export interface ReceiveOptions {
  /**
   * Seals that must be in force. `"shrink"` is always required, listed or
   * not: a mapping of a memfd that the sender can shrink would fault
   * (SIGBUS) when it does.
   */
  require?: Seal[];
  /** The smallest size in bytes accepted (default 0). */
  minSize?: number;
  /**
   * How the receiver will map it: `"r"` (default) needs a readable
   * descriptor; `"rw"` a read-write one with no `"write"` or
   * `"future-write"` seal.
   */
  access?: "r" | "rw";
}

/** Options of {@linkcode FdConnection.receive}. */
export interface ReceiveWaitOptions extends ReceiveOptions {
  /** How long to wait, in milliseconds (default: until a message or the peer's close). */
  timeoutMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

/** Options of {@linkcode FdListener.accept}. */
export interface AcceptOptions {
  /** How long to wait, in milliseconds (default: until a connection). */
  timeoutMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

/** Options of {@linkcode FdConnection.send}. */
export interface SendOptions {
  /** Bytes sent with the memfd, at most 65536 (default none). */
  metadata?: Uint8Array;
}

/** A memfd received and checked, and the bytes sent with it. */
export interface Received {
  /** The memfd, owned by the receiver: close it (or `using`). */
  memfd: MemFd;
  /** The metadata bytes (a copy). */
  metadata: Uint8Array<ArrayBuffer>;
}

/** A received message before its descriptors are checked; for memkit's own modules. */
export interface RawMessage {
  /** The descriptors, owned by the caller. */
  fds: number[];
  /** The data bytes (a copy). */
  data: Uint8Array<ArrayBuffer>;
}

function socketPath(path: unknown): { path: string; cpath: Uint8Array<ArrayBuffer> } {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`Cannot use path "${show(path)}": expected a non-empty string`);
  }
  const absolute = absolutePath(path);
  const cpath = cString(absolute, "path");
  if (cpath.length - 1 > MK.SOCKET_PATH_MAX) {
    throw new RangeError(
      `Cannot use socket path "${absolute}": longer than ${MK.SOCKET_PATH_MAX} bytes`,
    );
  }
  return { path: absolute, cpath };
}

function timeoutOf(value: unknown): number {
  if (value === undefined) return Infinity;
  if (typeof value !== "number" || !(value >= 0)) {
    throw new RangeError(`Cannot use timeoutMs "${show(value)}": expected a number >= 0`);
  }
  return value;
}

function signalOf(value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw new TypeError(`Cannot use signal "${show(value)}": expected an AbortSignal`);
}

interface Requirement {
  seals: number;
  minSize: number;
  access: "r" | "rw";
}

function requirementOf(opts: Record<string, unknown>): Requirement {
  let seals = MK.SEAL_SHRINK;
  if (opts.require !== undefined) {
    const names = list(opts.require, "require");
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const bit = lookup(SEALS, name);
      if (bit === undefined) {
        throw new TypeError(
          `Cannot require seal "${show(name)}": expected one of ${
            Object.keys(SEALS).map((k) => `"${k}"`).join(", ")
          }`,
        );
      }
      seals |= bit;
    }
  }
  const minSize = inRange(opts.minSize ?? 0, "minSize", 0, Number.MAX_SAFE_INTEGER);
  const access = opts.access ?? "r";
  if (access !== "r" && access !== "rw") {
    throw new TypeError(`Cannot use access "${show(access)}": expected "r" or "rw"`);
  }
  return { seals, minSize, access };
}

function sealNames(bits: number): string {
  return (Object.keys(SEALS) as Seal[]).filter((s) => bits & SEALS[s]).map((s) => `"${s}"`)
    .join(", ");
}

/**
 * Checks a received descriptor against `req` with `F_GET_SEALS`, `fstat`
 * and its `/proc/self/fd` link, before anything maps it; returns it as a
 * MemFd, or closes it and throws.
 */
// Scratch for accept(): one call at a time (JavaScript is single-threaded).
const info = new BigUint64Array(4);
const name = new Uint8Array(NAME_CAP);
const NAME_CAP_N = BigInt(NAME_CAP);

function accept(fd: number, req: Requirement): MemFd {
  try {
    check(
      lib().mk_socket_inspect(fd, info, name, NAME_CAP_N),
      "inspect a received descriptor",
    );
    const label = decoder.decode(name.subarray(0, name.indexOf(0)));
    const [kind, sealBits, size, mode] = [...info].map(Number);
    if (kind !== MK.FD_MEMFD) {
      throw new FdRefusedError("not-memfd", "Cannot accept the descriptor received: not a memfd");
    }
    const missing = req.seals & ~sealBits;
    if (missing) {
      throw new FdRefusedError(
        "seals",
        `Cannot accept memfd "${label}": not sealed against ${sealNames(missing)}` +
          (missing & MK.SEAL_SHRINK
            ? " (a mapping of a memfd its sender can shrink would fault)"
            : ""),
      );
    }
    if (size < req.minSize) {
      throw new FdRefusedError(
        "size",
        `Cannot accept memfd "${label}": its size "${size}" is below minSize "${req.minSize}"`,
      );
    }
    if (mode === 1) {
      throw new FdRefusedError(
        "access",
        `Cannot accept memfd "${label}": its descriptor is write-only`,
      );
    }
    if (req.access === "rw") {
      if (mode !== 2) {
        throw new FdRefusedError(
          "access",
          `Cannot accept memfd "${label}" for access "rw": its descriptor is read-only`,
        );
      }
      const sealed = sealBits & (MK.SEAL_WRITE | MK.SEAL_FUTURE_WRITE);
      if (sealed) {
        throw new FdRefusedError(
          "access",
          `Cannot accept memfd "${label}" for access "rw": it is sealed against ${
            sealNames(sealed)
          }`,
        );
      }
    }
    return adoptMemFd(fd, label);
  } catch (e) {
    lib().mk_core_close(fd);
    throw e;
  }
}

const EAGAIN = -BigInt(ERRNO.EAGAIN);

/**
 * The backstop for a listener or connection never closed: its descriptors
 * are closed when it is collected (no wait can be in flight then: a wait
 * holds the object). Unregistered by close().
 */
const closer = new FinalizationRegistry<number[]>((fds) => {
  for (const fd of fds) lib().mk_core_close(fd);
});

let rawOf: (conn: FdConnection) => {
  send(fds: number[], data: Uint8Array): boolean;
  receive(maxFds: number): RawMessage | undefined | null;
  fd: number;
};

/**
 * The raw side of a connection, for memkit's own modules (channel): send
 * descriptors, receive them unchecked (`null` when the peer has closed,
 * undefined when nothing is pending), and the socket's descriptor.
 */
export function connectionRaw(conn: FdConnection): ReturnType<typeof rawOf> {
  return rawOf(conn);
}

/**
 * A listening Unix socket at a path memkit creates (`SOCK_SEQPACKET`: one
 * message is one memfd and its metadata). `close()` removes the path.
 * `accept()` waits without blocking the event loop (a `poll` on a worker
 * thread, which `close()` and an `AbortSignal` interrupt).
 *
 * Requires `--allow-ffi`, and `--allow-read`, `--allow-write` and
 * `--allow-net=unix:<path>` for the socket path (Deno's own rule for Unix
 * sockets).
 *
 * @example Passing a sealed memfd within one process
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-memkit.sock --v8-flags=--js-immutable-arraybuffer
 * import { FdConnection, FdListener, MemFd } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const path = "/tmp/memkit-doc-memkit.sock";
 * using listener = FdListener.listen(path);
 * using client = FdConnection.connect(path);
 * using server = await listener.accept();
 *
 * using memfd = MemFd.create("shared", { size: 4096 });
 * memfd.map().bytes()[0] = 42;
 * memfd.seal(["shrink", "grow"]);
 * await client.send(memfd, { metadata: new Uint8Array([1, 2]) });
 *
 * const { memfd: got, metadata } = await server.receive({ require: ["grow"] });
 * using _ = got;
 * assertEquals(got.map({ access: "r" }).bytes()[0], 42);
 * assertEquals([...metadata], [1, 2]);
 * ```
 */
export class FdListener {
  #fd: number;
  #path: string;
  #cpath: Uint8Array<ArrayBuffer>;
  #ino: bigint;
  #waiter = new Waiter();

  /** @ignore */
  private constructor(fd: number, path: string, cpath: Uint8Array<ArrayBuffer>, ino: bigint) {
    this.#fd = fd;
    this.#path = path;
    this.#cpath = cpath;
    this.#ino = ino;
    FinalizationRegistryPrototypeRegister(closer, this, [fd, this.#waiter.fd], this);
  }

  /**
   * Creates the socket at `path` and listens. A socket file left there by a
   * listener that is gone is replaced; one that someone listens on is
   * `EADDRINUSE`, and any other file `EEXIST`.
   *
   * @param path The socket path (at most 107 bytes once absolute).
   * @returns The listener.
   *
   * @example Listen on a Unix socket
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-l.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdListener } from "@memkit/memkit";
   * import { assert } from "@std/assert";
   *
   * const path = "/tmp/memkit-doc-l.sock";
   * using listener = FdListener.listen(path);
   * assert(Deno.lstatSync(path).isSocket);
   * ```
   */
  static listen(path: string): FdListener {
    const p = socketPath(path);
    requirePermissions("socket", p.path);
    const ino = new BigUint64Array(1);
    const fd = check(lib().mk_socket_listen(p.cpath, ino), "listen on", {
      path: p.path,
      hints: {
        EADDRINUSE: "another process listens there",
        EEXIST: "a file that is not a socket is in the way",
      },
    });
    return new FdListener(fd, p.path, p.cpath, ino[0]);
  }

  /** The absolute socket path. */
  get path(): string {
    return this.#path;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  #alive(op: string): number {
    if (this.#fd < 0) {
      throw new Deno.errors.BadResource(`Cannot ${op}: the listener on "${this.#path}" is closed`);
    }
    return this.#fd;
  }

  /**
   * A pending connection, or undefined when none is (never waits).
   *
   * @returns The connection, or undefined.
   *
   * @example Accept only if a peer is waiting
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-t.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = FdListener.listen("/tmp/memkit-doc-t.sock");
   * assertEquals(listener.tryAccept(), undefined);
   * ```
   */
  tryAccept(): FdConnection | undefined {
    const ret = lib().mk_socket_accept(this.#alive("accept"));
    if (ret === EAGAIN) return undefined;
    return newConnection(check(ret, "accept on", { path: this.#path }), this.#path);
  }

  /**
   * Waits for a connection, leaving the event loop free.
   *
   * @param options A timeout and an abort signal.
   * @returns The connection.
   * @throws {Deno.errors.TimedOut} When the timeout passes first.
   * @throws {Deno.errors.BadResource} When the listener is closed meanwhile.
   *
   * @example Wait for a peer
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-a.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdConnection, FdListener } from "@memkit/memkit";
   *
   * const path = "/tmp/memkit-doc-a.sock";
   * using listener = FdListener.listen(path);
   * using client = FdConnection.connect(path);
   * using server = await listener.accept({ timeoutMs: 5000 });
   * ```
   */
  async accept(options?: AcceptOptions): Promise<FdConnection> {
    const opts = readOptions(options, "options", ["timeoutMs", "signal"] as const);
    const timeout = timeoutOf(opts.timeoutMs);
    const signal = signalOf(opts.signal);
    for (;;) {
      signal?.throwIfAborted();
      const conn = this.tryAccept();
      if (conn) return conn;
      const end = await this.#waiter.wait([[this.#fd, MK.POLL_IN]], timeout, signal);
      if (end.kind === "timeout") {
        throw new Deno.errors.TimedOut(
          `Cannot accept on "${this.#path}": no connection within ${timeout} ms`,
        );
      }
      if (end.kind === "woken") {
        signal?.throwIfAborted();
        this.#alive("accept");
      }
    }
  }

  /** Stops listening and removes the socket path (if it is still this socket's). Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    FinalizationRegistryPrototypeUnregister(closer, this);
    lib().mk_socket_unlink(this.#cpath, this.#ino);
    this.#waiter.close(() => lib().mk_core_close(fd));
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function newConnection(fd: number, path: string): FdConnection {
  return makeConnection(fd, path);
}
let makeConnection: (fd: number, path: string) => FdConnection;

/**
 * One end of a connection on a memkit socket: sends memfds (with metadata)
 * and receives them, checked. Waits (`receive()`, a `send()` into a full
 * socket) leave the event loop free and end when `close()` is called or
 * the signal aborts; a peer that closes its end makes `receive()` reject
 * with `ECONNRESET`.
 *
 * The receiver trusts nothing it was sent: before anything maps a
 * descriptor it checks that it is a memfd, that it is sealed against
 * shrinking (always) and carries every seal in `require`, that its size is
 * at least `minSize` and that it can be mapped with `access`. A refused
 * message is an {@linkcode FdRefusedError}, and its descriptors are closed.
 *
 * Requires `--allow-ffi`, and `--allow-read`, `--allow-write` and
 * `--allow-net=unix:<path>` for the socket path.
 *
 * @example Without the shrink seal the receiver refuses the memfd
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-r.sock --v8-flags=--js-immutable-arraybuffer
 * import { FdConnection, FdListener, FdRefusedError, MemFd } from "@memkit/memkit";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const path = "/tmp/memkit-doc-r.sock";
 * using listener = FdListener.listen(path);
 * using client = FdConnection.connect(path);
 * using server = await listener.accept();
 * using memfd = MemFd.create("unsealed", { size: 4096 });
 * await client.send(memfd);
 * const e = await assertRejects(() => server.receive(), FdRefusedError);
 * assertEquals(e.reason, "seals");
 * ```
 */
export class FdConnection {
  #fd: number;
  #path: string;
  #waiter = new Waiter();
  #data = new Uint8Array(MAX_METADATA);
  #fds = new Int32Array(MK.SOCKET_MAX_FDS);
  #sendFds = new Int32Array(MK.SOCKET_MAX_FDS);
  #info = new BigUint64Array(2);
  static {
    makeConnection = (fd, path) => new FdConnection(fd, path);
    rawOf = (c) => ({
      send: (fds, data) => c.#sendRaw(fds, data),
      receive: (max) => c.#receiveRaw(max),
      get fd() {
        return c.#fd;
      },
    });
  }

  /** @ignore */
  private constructor(fd: number, path: string) {
    this.#fd = fd;
    this.#path = path;
    FinalizationRegistryPrototypeRegister(closer, this, [fd, this.#waiter.fd], this);
  }

  /**
   * Connects to a listener at `path`.
   *
   * @param path The socket path.
   * @returns The connection.
   * @throws {MemkitError} `ECONNREFUSED` when nobody listens there, `ENOENT`
   * when there is no socket.
   *
   * @example Connect to a listener
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-c.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * const path = "/tmp/memkit-doc-c.sock";
   * using listener = FdListener.listen(path);
   * using client = FdConnection.connect(path);
   * assertEquals(client.path, path);
   * ```
   */
  static connect(path: string): FdConnection {
    const p = socketPath(path);
    requirePermissions("socket", p.path);
    const fd = check(lib().mk_socket_connect(p.cpath), "connect to", {
      path: p.path,
      hints: {
        ECONNREFUSED: "nobody listens there any more",
        EAGAIN: "the listener's backlog is full; try again",
        EPROTOTYPE: "that socket is not a memkit (SOCK_SEQPACKET) socket",
      },
    });
    return new FdConnection(fd, p.path);
  }

  /** The socket path. */
  get path(): string {
    return this.#path;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  #alive(op: string): number {
    if (this.#fd < 0) {
      throw new Deno.errors.BadResource(
        `Cannot ${op}: the connection to "${this.#path}" is closed`,
      );
    }
    return this.#fd;
  }

  #sendRaw(fds: number[], data: Uint8Array): boolean {
    const fd = this.#alive("send");
    if (fds.length > MK.SOCKET_MAX_FDS) {
      throw new RangeError(`Cannot send ${fds.length} descriptors: at most ${MK.SOCKET_MAX_FDS}`);
    }
    const out = this.#sendFds;
    for (let i = 0; i < fds.length; i++) out[i] = fds[i];
    const ret = lib().mk_socket_send(fd, out, fds.length, data, BigInt(data.length));
    if (ret === EAGAIN) return false;
    check(ret, "send on", {
      path: this.#path,
      hints: { EPIPE: "the peer closed the connection" },
    });
    return true;
  }

  #receiveRaw(maxFds: number): RawMessage | undefined | null {
    const fd = this.#alive("receive");
    const ret = lib().mk_socket_recv(
      fd,
      this.#data,
      BigInt(MAX_METADATA),
      this.#fds,
      maxFds,
      this.#info,
    );
    if (ret === EAGAIN) return undefined;
    const n = check(ret, "receive on", { path: this.#path });
    const count = Number(this.#info[0]);
    const bits = Number(this.#info[1]);
    if (bits & MK.RECV_CTRUNC) {
      throw new FdRefusedError(
        "truncated",
        `Cannot receive on "${this.#path}": the control message was truncated (MSG_CTRUNC); ` +
          "its descriptors were closed",
      );
    }
    if (bits & MK.RECV_EXCESS) {
      throw new FdRefusedError(
        "descriptors",
        `Cannot receive on "${this.#path}": more than ${maxFds} descriptors in one message; ` +
          "they were closed",
      );
    }
    if (bits & MK.RECV_TRUNC) {
      throw new FdRefusedError(
        "truncated",
        `Cannot receive on "${this.#path}": a message longer than ${MAX_METADATA} bytes ` +
          "(MSG_TRUNC); its descriptors were closed",
      );
    }
    if (bits & MK.RECV_FOREIGN) {
      throw new FdRefusedError(
        "descriptors",
        `Cannot receive on "${this.#path}": a control message other than SCM_RIGHTS`,
      );
    }
    if (n === 0 && count === 0) return null;
    return { fds: [...this.#fds.subarray(0, count)], data: this.#data.slice(0, n) };
  }

  /** Waits for `events` on the socket; throws on timeout, close or abort. */
  async #wait(op: string, events: number, timeout: number, signal?: AbortSignal): Promise<void> {
    const end = await this.#waiter.wait([[this.#alive(op), events]], timeout, signal);
    if (end.kind === "timeout") {
      throw new Deno.errors.TimedOut(
        `Cannot ${op} on "${this.#path}": nothing within ${timeout} ms`,
      );
    }
    if (end.kind === "woken") {
      signal?.throwIfAborted();
      this.#alive(op);
    }
  }

  /**
   * Sends `memfd` (its descriptor, `SCM_RIGHTS`: the receiver gets the same
   * file) and optional metadata in one message. Seal it first: a receiver
   * refuses a memfd that is not sealed against shrinking. Waits (leaving the
   * event loop free) only while the socket is full.
   *
   * @param memfd The memfd; it stays open here.
   * @param options The metadata bytes.
   * @throws {MemkitError} `EPIPE` when the peer has closed.
   *
   * @example Send a sealed memfd
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-s.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdConnection, FdListener, MemFd } from "@memkit/memkit";
   *
   * const path = "/tmp/memkit-doc-s.sock";
   * using listener = FdListener.listen(path);
   * using client = FdConnection.connect(path);
   * using memfd = MemFd.create("to-send", { size: 4096 });
   * memfd.seal(["shrink", "grow"]);
   * await client.send(memfd, { metadata: new TextEncoder().encode("frame 1") });
   * ```
   */
  async send(memfd: MemFd, options?: SendOptions): Promise<void> {
    const data = this.#prepare(memfd, options);
    while (!this.#sendRaw([data.fd], data.bytes)) {
      await this.#wait("send", MK.POLL_OUT, Infinity);
    }
  }

  /**
   * Like `send()`, but never waits: false when the socket is full.
   *
   * @param memfd The memfd.
   * @param options The metadata bytes.
   * @returns Whether it was sent.
   *
   * @example Send without waiting
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-ts.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdConnection, FdListener, MemFd } from "@memkit/memkit";
   * import { assert } from "@std/assert";
   *
   * const path = "/tmp/memkit-doc-ts.sock";
   * using listener = FdListener.listen(path);
   * using client = FdConnection.connect(path);
   * using memfd = MemFd.create("x", { size: 4096 });
   * memfd.seal(["shrink"]);
   * assert(client.trySend(memfd));
   * ```
   */
  trySend(memfd: MemFd, options?: SendOptions): boolean {
    const data = this.#prepare(memfd, options);
    return this.#sendRaw([data.fd], data.bytes);
  }

  #prepare(memfd: unknown, options: unknown): { fd: number; bytes: Uint8Array } {
    const opts = readOptions(options, "options", ["metadata"] as const);
    const state = memfdState(memfd);
    if (state === undefined) {
      throw new TypeError(`Cannot send "${show(memfd)}": expected a MemFd`);
    }
    if (state.fd < 0) {
      throw new Deno.errors.BadResource(`Cannot send memfd "${state.name}": it is closed`);
    }
    let bytes: Uint8Array = new Uint8Array(0);
    if (opts.metadata !== undefined) {
      const b = bytesOf(opts.metadata);
      if (b === undefined || !(opts.metadata instanceof Uint8Array)) {
        throw new TypeError(`Cannot use metadata "${show(opts.metadata)}": expected a Uint8Array`);
      }
      if (b.length > MAX_METADATA) {
        throw new RangeError(
          `Cannot send ${b.length} bytes of metadata: at most ${MAX_METADATA}`,
        );
      }
      bytes = b;
    }
    this.#alive("send");
    return { fd: state.fd, bytes };
  }

  /**
   * A memfd received and checked, or undefined when no message is pending
   * (never waits).
   *
   * @param options What the memfd must satisfy.
   * @returns The memfd and its metadata, or undefined.
   * @throws {FdRefusedError} When the message or its memfd is refused.
   * @throws {MemkitError} `ECONNRESET` when the peer has closed.
   *
   * @example Receive a memfd without waiting
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-tr.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdConnection, FdListener } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * const path = "/tmp/memkit-doc-tr.sock";
   * using listener = FdListener.listen(path);
   * using client = FdConnection.connect(path);
   * assertEquals(client.tryReceive(), undefined);
   * ```
   */
  tryReceive(options?: ReceiveOptions): Received | undefined {
    const req = requirementOf(
      readOptions(options, "options", ["require", "minSize", "access"] as const),
    );
    return this.#receiveChecked(req);
  }

  #receiveChecked(req: Requirement): Received | undefined {
    const msg = this.#receiveRaw(1);
    if (msg === undefined) return undefined;
    if (msg === null) {
      throw new MemkitError(ERRNO.ECONNRESET, "receive on", {
        path: this.#path,
        hint: "the peer closed the connection",
      });
    }
    if (msg.fds.length === 0) {
      throw new FdRefusedError(
        "no-descriptor",
        `Cannot receive on "${this.#path}": a message of ${msg.data.length} bytes without a descriptor`,
      );
    }
    return { memfd: accept(msg.fds[0], req), metadata: msg.data };
  }

  /**
   * Waits for a memfd (leaving the event loop free) and checks it.
   *
   * @param options What the memfd must satisfy, a timeout and a signal.
   * @returns The memfd and its metadata.
   * @throws {FdRefusedError} When the message or its memfd is refused.
   * @throws {MemkitError} `ECONNRESET` when the peer closes first.
   * @throws {Deno.errors.TimedOut} When the timeout passes first.
   *
   * @example Requiring seals and a size
   * ```ts ignore
   * // deno run --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-doc-rq.sock --v8-flags=--js-immutable-arraybuffer
   * import { FdConnection, FdListener, FdRefusedError, MemFd } from "@memkit/memkit";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * const path = "/tmp/memkit-doc-rq.sock";
   * using listener = FdListener.listen(path);
   * using client = FdConnection.connect(path);
   * using server = await listener.accept();
   * using small = MemFd.create("small", { size: 4096 });
   * small.seal(["shrink", "grow"]);
   * await client.send(small);
   * const e = await assertRejects(
   *   () => server.receive({ require: ["grow"], minSize: 8192 }),
   *   FdRefusedError,
   * );
   * assertEquals(e.reason, "size");
   * ```
   */
  async receive(options?: ReceiveWaitOptions): Promise<Received> {
    const opts = readOptions(
      options,
      "options",
      [
        "require",
        "minSize",
        "access",
        "timeoutMs",
        "signal",
      ] as const,
    );
    const req = requirementOf(opts);
    const timeout = timeoutOf(opts.timeoutMs);
    const signal = signalOf(opts.signal);
    const deadline = performance.now() + timeout;
    for (;;) {
      signal?.throwIfAborted();
      const got = this.#receiveChecked(req);
      if (got) return got;
      await this.#wait("receive", MK.POLL_IN, Math.max(0, deadline - performance.now()), signal);
    }
  }

  /** Closes this end; the peer's `receive()` then rejects with `ECONNRESET`. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    FinalizationRegistryPrototypeUnregister(closer, this);
    const fd = this.#fd;
    this.#fd = -1;
    this.#waiter.close(() => lib().mk_core_close(fd));
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
