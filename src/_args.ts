// How every public entry point takes its arguments: it first copies them into
// plain local values, validates the copies and never reads the caller's
// objects again, so no getter, Proxy trap or Symbol.toPrimitive can answer
// one thing to the check and another to the system call.
//
// - Options objects and descriptors are read once per field, in one place
//   (readOptions), into a fresh object without a prototype. `undefined`
//   means the defaults; anything else that is not an object (null included)
//   is a TypeError.
// - Strings must be primitive strings and numbers primitive numbers (or
//   bigints where the API says so): an object with Symbol.toPrimitive or
//   toString is refused, never coerced.
// - Lists are copied element by element after one read of their length.
// - Sizes of typed arrays come from the engine's slots (_primordials.ts).
// - Names select entries of memkit's tables by own key only (lookup), so
//   "toString" or "constructor" are no names.

import {
  ArrayBufferPrototypeGetByteLength,
  ArrayIsArray,
  DataViewPrototypeGetBuffer,
  DataViewPrototypeGetByteLength,
  DataViewPrototypeGetByteOffset,
  ObjectCreate,
  ObjectHasOwn,
  ReflectGet,
  safeArray,
  StringCtor,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeGetLength,
  TypedArrayPrototypeGetSymbolToStringTag,
} from "./_primordials.ts";

/**
 * A value for an error message, without running any of the caller's code:
 * primitives as `String()` shows them, objects by their kind only.
 */
export function show(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "object":
      return ArrayIsArray(value) ? "[array]" : "[object]";
    case "function":
      return "[function]";
    default: // String() of a primitive (a symbol included) runs no user code
      return StringCtor(value);
  }
}

/**
 * `0x` and the hexadecimal digits of an address or value, as memkit's
 * messages and commands print them.
 *
 * @param value The number.
 * @returns `0x` and its hexadecimal digits.
 *
 * @example An address and the largest 64-bit value
 * ```ts
 * import { hex } from "./_args.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals([hex(4096), hex(2n ** 64n - 1n)], ["0x1000", "0xffffffffffffffff"]);
 * ```
 */
export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** The fields of an options object, read once each. */
export type Snapshot<K extends string> = { readonly [P in K]?: unknown };

/**
 * Reads the fields `keys` of an options object or descriptor exactly once
 * each, into a fresh object without a prototype. `undefined` gives an empty
 * snapshot (the defaults); `null`, a primitive or a function is a TypeError.
 *
 * @param value The caller's argument.
 * @param what The argument, for messages: `"options"`, `"chunk 3"`.
 * @param keys The fields memkit reads.
 */
export function readOptions<K extends string>(
  value: unknown,
  what: string,
  keys: readonly K[],
): Snapshot<K> {
  const out = ObjectCreate(null) as Record<K, unknown>;
  if (value === undefined) return out;
  if (value === null || typeof value !== "object") {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected an object or undefined`);
  }
  for (let i = 0; i < keys.length; i++) out[keys[i]] = ReflectGet(value, keys[i]);
  return out;
}

/** Throws TypeError unless `value` is a primitive string. */
export function string(value: unknown, what: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected a string`);
  }
  return value;
}

/** Throws TypeError unless `value` is a primitive boolean. */
export function boolean(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected a boolean`);
  }
  return value;
}

/**
 * Copies an array argument: one read of its length, one read of each
 * element, into a fresh array. A Proxy of an array is read the same way.
 */
export function list(value: unknown, what: string, max = 2 ** 32 - 1): unknown[] {
  if (!ArrayIsArray(value)) {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected an array`);
  }
  const length = ReflectGet(value, "length");
  if (typeof length !== "number" || length < 0 || length > max || length % 1 !== 0) {
    throw new RangeError(`Cannot use ${what}: its length "${show(length)}" is not 0 to ${max}`);
  }
  const out = safeArray<unknown>();
  for (let i = 0; i < length; i++) out[i] = ReflectGet(value, i);
  return out;
}

/**
 * The entry of `table` named by `name`, by own key only; undefined when
 * `name` is not a primitive string naming one of its own entries.
 */
export function lookup<V>(table: Readonly<Record<string, V>>, name: unknown): V | undefined {
  return typeof name === "string" && ObjectHasOwn(table, name) ? table[name] : undefined;
}

/**
 * Checks that `value` is a real typed array of kind `kind` (not a Proxy, not
 * an object with a typed array prototype) and returns its length from the
 * engine's slot: a `length` property redefined on it changes nothing.
 */
export function typedLength(value: unknown, kind: string, what: string): number {
  if (TypedArrayPrototypeGetSymbolToStringTag(value) !== kind) {
    throw new TypeError(`Cannot use ${what} "${show(value)}": expected a ${kind}`);
  }
  return TypedArrayPrototypeGetLength(value);
}

/** Whether `value` is a real DataView. */
function isDataView(value: unknown): boolean {
  try {
    DataViewPrototypeGetByteOffset(value);
    return true;
  } catch {
    return false;
  }
}

/** Whether `value` is a real (non-shared) ArrayBuffer. */
function isArrayBuffer(value: unknown): boolean {
  try {
    ArrayBufferPrototypeGetByteLength(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * A fresh `Uint8Array` over the same memory as an `ArrayBuffer`, a typed
 * array or a DataView, its extent read from the engine's slots; undefined
 * for anything else (a Proxy included).
 */
export function bytesOf(value: unknown): Uint8Array<ArrayBuffer> | undefined {
  if (TypedArrayPrototypeGetSymbolToStringTag(value) !== undefined) {
    return new Uint8Array(
      TypedArrayPrototypeGetBuffer(value) as ArrayBuffer,
      TypedArrayPrototypeGetByteOffset(value),
      TypedArrayPrototypeGetByteLength(value),
    );
  }
  if (isDataView(value)) {
    return new Uint8Array(
      DataViewPrototypeGetBuffer(value) as ArrayBuffer,
      DataViewPrototypeGetByteOffset(value),
      DataViewPrototypeGetByteLength(value),
    );
  }
  if (isArrayBuffer(value)) return new Uint8Array(value as ArrayBuffer);
  return undefined;
}
