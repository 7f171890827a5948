// Waits on descriptors that leave the event loop free: poll(2) in a
// `nonblocking` FFI call (on a Deno worker thread), with an eventfd of its
// own so that close() or an AbortSignal ends a wait at once. Shared by
// fd_socket.ts and channel.ts.

import { check } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";

/** The longest single poll; longer waits are a loop of them. */
const CHUNK_MS = 60000;

/** How a wait ended. */
export type WaitEnd =
  /** `revents` of each descriptor asked, in order. */
  | { kind: "ready"; revents: number[] }
  | { kind: "timeout" }
  /** `interrupt()` (close or an abort) woke it. */
  | { kind: "woken" };

/**
 * One eventfd and the waits on it. Its descriptors are closed only when no
 * wait is in flight: a poll on another thread must never see its numbers
 * reused.
 */
export class Waiter {
  #wake: number;
  #pending = 0;
  #closing: (() => void) | undefined;

  constructor() {
    this.#wake = check(lib().mk_socket_event(), "create an eventfd");
  }

  /** The eventfd (for a garbage-collection backstop); -1 once closed. */
  get fd(): number {
    return this.#wake;
  }

  /** Whether a wait is in flight. */
  get waiting(): boolean {
    return this.#pending > 0;
  }

  /** Ends every wait in flight (they return `woken`). */
  interrupt(): void {
    if (this.#wake >= 0) lib().mk_socket_signal(this.#wake);
  }

  /**
   * Waits until one of `entries` (descriptor, MK_POLL_* events) is ready,
   * `timeoutMs` passes (Infinity: never), or `interrupt()` is called.
   */
  async wait(
    entries: readonly (readonly [number, number])[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitEnd> {
    if (this.#wake < 0 || this.#closing) return { kind: "woken" };
    const n = entries.length;
    const pfds = new Int32Array(2 * (n + 1));
    const deadline = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    const onAbort = () => this.interrupt();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#pending++;
    try {
      for (;;) {
        if (signal?.aborted) return { kind: "woken" };
        const left = deadline === Infinity ? CHUNK_MS : Math.max(0, deadline - performance.now());
        for (let i = 0; i < n; i++) {
          pfds[2 * i] = entries[i][0];
          pfds[2 * i + 1] = entries[i][1];
        }
        pfds[2 * n] = this.#wake;
        pfds[2 * n + 1] = MK.POLL_IN;
        const ret = await lib().mk_socket_poll(pfds, n + 1, Math.ceil(Math.min(left, CHUNK_MS)));
        check(ret, "wait");
        if (pfds[2 * n + 1] !== 0 || this.#closing) {
          lib().mk_socket_drain(this.#wake);
          return { kind: "woken" };
        }
        if (ret > 0n) {
          const revents: number[] = [];
          for (let i = 0; i < n; i++) revents.push(pfds[2 * i + 1]);
          return { kind: "ready", revents };
        }
        if (deadline !== Infinity && performance.now() >= deadline) return { kind: "timeout" };
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (--this.#pending === 0 && this.#closing) this.#finish();
    }
  }

  /** Closes the eventfd, and then calls `release` (now, or when the last wait returns). */
  close(release: () => void): void {
    if (this.#wake < 0 || this.#closing) return;
    this.#closing = release;
    if (this.#pending > 0) this.interrupt();
    else this.#finish();
  }

  #finish(): void {
    const release = this.#closing!;
    lib().mk_core_close(this.#wake);
    this.#wake = -1;
    release();
  }
}
