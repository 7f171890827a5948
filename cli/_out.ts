/**
 * How every memkit command writes its output: through one buffer, handed to
 * the kernel in chunks of 64 KiB (one `write` system call each, as C's stdio
 * and `pmap` do) instead of one `write` per line as `console.log` makes.
 * A reader that goes away early (`memkit maps 1 | head`) ends the command
 * there, quietly, with exit code 0; met in the last flush, the command keeps
 * its own code.
 *
 * @module
 */

/** The bytes gathered before one write: a Linux pipe's whole buffer. */
export const CHUNK = 64 * 1024;

/**
 * Thrown by {@linkcode Output.write} once the reader of the output has gone
 * (`EPIPE`): the command stops there, and `fail()` (`_fail.ts`) ends it quietly
 * with exit code 0 (the output was not wanted any more; nothing failed).
 *
 * @example What EPIPE becomes
 * ```ts
 * import { OutputClosed } from "./_out.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(new OutputClosed().name, "OutputClosed");
 * ```
 */
export class OutputClosed extends Error {
  /** Says that the reader went away. */
  constructor() {
    super("The reader of the output has gone");
    this.name = "OutputClosed";
  }
}

/** Where an {@linkcode Output} writes: `Deno.stdout`, or a test's stand-in. */
export interface Sink {
  /** Writes some of `bytes`, returning how many. */
  writeSync(bytes: Uint8Array): number;
}

/**
 * Text gathered into chunks of {@linkcode CHUNK} bytes, each written with
 * one system call; {@linkcode Output.flush} writes the rest.
 *
 * @example Many lines, one write
 * ```ts
 * import { Output } from "./_out.ts";
 * import { assertEquals } from "@std/assert";
 *
 * const writes: number[] = [];
 * const out = new Output({ writeSync: (b) => (writes.push(b.length), b.length) });
 * for (let i = 0; i < 1000; i++) out.line(`line ${i}`);
 * out.flush();
 * assertEquals(writes.length, 1);
 * ```
 */
export class Output {
  #sink: Sink;
  #chunk: number;
  #pending = "";
  #closed = false;
  #encoder = new TextEncoder();
  #bytes: Uint8Array;

  /**
   * An output to `sink`.
   *
   * @param sink Where to write (default `Deno.stdout`).
   * @param chunk How many bytes (at least) to gather before a write.
   */
  constructor(sink: Sink = Deno.stdout, chunk: number = CHUNK) {
    this.#sink = sink;
    this.#chunk = chunk;
    // UTF-16 code units to UTF-8: at most 3 bytes each.
    this.#bytes = new Uint8Array(3 * (chunk + 1024));
  }

  /** Whether the reader has gone: everything written since is dropped. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds `text`, writing a chunk once enough has gathered.
   *
   * @param text The text.
   * @throws {OutputClosed} Once the reader has gone.
   */
  write(text: string): void {
    if (this.#closed) throw new OutputClosed();
    this.#pending += text;
    if (this.#pending.length >= this.#chunk) {
      this.#drain();
      if (this.#closed) throw new OutputClosed();
    }
  }

  /**
   * Adds `bytes`, whole lines of UTF-8 text, after the text added before
   * them: written at once (with that text, when it is short), not gathered.
   *
   * @param bytes The bytes, valid only during the call.
   * @throws {OutputClosed} Once the reader has gone.
   *
   * @example Text and bytes in order, one write
   * ```ts
   * import { Output } from "./_out.ts";
   * import { assertEquals } from "@std/assert";
   *
   * const writes: string[] = [];
   * const out = new Output({ writeSync: (b) => (writes.push(new TextDecoder().decode(b)), b.length) });
   * out.line("header");
   * out.bytes(new TextEncoder().encode("a\nb\n"));
   * out.line("total");
   * out.flush();
   * assertEquals(writes, ["header\na\nb\n", "total\n"]);
   * ```
   */
  bytes(bytes: Uint8Array): void {
    if (this.#closed) throw new OutputClosed();
    let out = bytes;
    const text = this.#pending;
    if (text.length > 0) {
      this.#pending = "";
      if (text.length * 3 + bytes.length <= this.#bytes.length) {
        const n = this.#encoder.encodeInto(text, this.#bytes).written;
        this.#bytes.set(bytes, n);
        out = this.#bytes.subarray(0, n + bytes.length);
      } else {
        this.#send(this.#encoder.encode(text));
      }
    }
    if (!this.#closed) this.#send(out);
    if (this.#closed) throw new OutputClosed();
  }

  /**
   * Adds `text` and a newline, as `console.log(text)` prints it.
   *
   * @param text The line, without its newline.
   * @throws {OutputClosed} Once the reader has gone.
   */
  line(text: string = ""): void {
    this.write(text + "\n");
  }

  /**
   * Adds `value` as `JSON.stringify(value, replacer, 2)` and a newline,
   * where the replacer prints a bigint as a `0x` hexadecimal string and a
   * `Set` or a `Uint8Array` as an array; an array's elements are written as
   * they are made, never as one string of the whole output.
   *
   * @param value The value.
   * @throws {OutputClosed} Once the reader has gone.
   *
   * @example The same text as JSON.stringify
   * ```ts
   * import { Output } from "./_out.ts";
   * import { assertEquals } from "@std/assert";
   *
   * let text = "";
   * const out = new Output({
   *   writeSync: (b) => (text += new TextDecoder().decode(b), b.length),
   * });
   * out.json([{ start: 0x1000n, perms: new Set(["r"]), path: 'a "b"', name: undefined }]);
   * out.flush();
   * assertEquals(text, JSON.stringify([{ start: "0x1000", perms: ["r"], path: 'a "b"' }], null, 2) + "\n");
   * ```
   */
  json(value: unknown): void {
    const v = prepare("", value);
    if (v === undefined) this.write("undefined\n"); // as console.log(JSON.stringify(v)) prints it
    else {
      this.#json(v, "", 0);
      this.write("\n");
    }
  }

  /**
   * `v` (through {@linkcode prepare}) as JSON at indentation `indent`, piece
   * by piece: the top array or plain object, and an array inside it (a
   * 10,000-mapping smaps is 13 MB of JSON, a pagemap report's runs more);
   * each element by the engine's own JSON.stringify, its lines indented into
   * place (a raw newline is never inside a JSON string).
   */
  #json(v: unknown, indent: string, depth: number): void {
    const proto = typeof v === "object" && v !== null ? Object.getPrototypeOf(v) : undefined;
    const array = Array.isArray(v);
    const container = array || proto === Object.prototype || proto === null;
    if (!(container && (depth === 0 || (depth === 1 && array)))) {
      const text = JSON.stringify(v, replacer, 2);
      this.write(indent === "" ? text : text.replaceAll("\n", "\n" + indent));
      return;
    }
    const inner = indent + "  ";
    let first = true;
    if (array) {
      const list = v as unknown[];
      for (let i = 0; i < list.length; i++) {
        this.write((first ? "[\n" : ",\n") + inner);
        first = false;
        this.#json(prepare(String(i), list[i]) ?? null, inner, depth + 1);
      }
    } else {
      const object = v as Record<string, unknown>;
      for (const key of Object.keys(object)) {
        const item = prepare(key, object[key]);
        if (item === undefined) continue; // JSON leaves it out
        this.write((first ? "{\n" : ",\n") + inner + JSON.stringify(key) + ": ");
        first = false;
        this.#json(item, inner, depth + 1);
      }
    }
    this.write(first ? (array ? "[]" : "{}") : "\n" + indent + (array ? "]" : "}"));
  }

  /**
   * Writes what has gathered. A reader that has gone is no error here: the
   * output is then closed, and the command ends with its usual code.
   */
  flush(): void {
    if (!this.#closed && this.#pending.length > 0) this.#drain();
  }

  #drain(): void {
    let text = this.#pending;
    this.#pending = "";
    // Whole lines only while more is to come: Deno's stdout is line-buffered
    // (Rust's LineWriter), and would hold a chunk's last partial line back
    // for a second write of its own.
    const cut = text.lastIndexOf("\n") + 1;
    if (cut > 0 && cut < text.length && text.length >= this.#chunk) {
      this.#pending = text.slice(cut);
      text = text.slice(0, cut);
    }
    let bytes: Uint8Array;
    if (text.length * 3 <= this.#bytes.length) {
      bytes = this.#bytes.subarray(0, this.#encoder.encodeInto(text, this.#bytes).written);
    } else {
      bytes = this.#encoder.encode(text);
    }
    this.#send(bytes);
  }

  /** Writes all of `bytes`; a reader that has gone closes the output. */
  #send(bytes: Uint8Array): void {
    try {
      for (let at = 0; at < bytes.length;) at += this.#sink.writeSync(bytes.subarray(at));
    } catch (e) {
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      this.#closed = true;
    }
  }
}

/** Every memkit command's standard output. */
export const stdout: Output = new Output();

/**
 * `v`, the property `key` of its holder, as JSON.stringify sees it: through
 * its toJSON, then the replacer; undefined where JSON leaves it out (an
 * undefined, a function or a symbol).
 */
function prepare(key: string, v: unknown): unknown {
  if (v !== null && (typeof v === "object" || typeof v === "bigint")) {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") v = toJSON.call(v, key);
  }
  v = replacer(key, v);
  return v === undefined || typeof v === "function" || typeof v === "symbol" ? undefined : v;
}

/** The commands' JSON replacer: bigints as `0x` hexadecimal strings, Sets and bytes as arrays. */
function replacer(_key: string, v: unknown): unknown {
  if (typeof v === "bigint") return `0x${v.toString(16)}`;
  return v instanceof Set || v instanceof Uint8Array ? [...v] : v;
}
