// Built-ins as they were when memkit loaded, the way Node.js core keeps its
// "primordials": the paths that decide whether memory may be unmapped (detach,
// unmap, the checks before them, the finalization callbacks) and every size
// memkit hands to C call these, never a method looked up on a prototype at
// the time of the call, which code in the process could have replaced.
//
// `uncurryThis(f)` turns a method into a plain function taking the receiver
// first: it is `Function.prototype.call` bound to `f` once, so a later
// `Function.prototype.call = ...` changes nothing.

// deno-lint-ignore-file no-explicit-any

const FunctionPrototype = Function.prototype;
const { bind, call } = FunctionPrototype;

/** `f` with its receiver as the first argument, immune to a patched `call`/`bind`. */
export const uncurryThis: <T, A extends any[], R>(
  f: (this: T, ...args: A) => R,
) => (self: T, ...args: A) => R = bind.bind(call) as any;

/** Reflect's functions, captured. */
export const ReflectApply: typeof Reflect.apply = Reflect.apply;
export const ReflectGet: typeof Reflect.get = Reflect.get;

/** Object's functions, captured. */
export const ObjectCreate: typeof Object.create = Object.create;
export const ObjectFreeze: typeof Object.freeze = Object.freeze;
export const ObjectHasOwn: (o: object, key: PropertyKey) => boolean = Object.hasOwn;
export const ObjectSetPrototypeOf: typeof Object.setPrototypeOf = Object.setPrototypeOf;
export const ObjectGetPrototypeOf: typeof Object.getPrototypeOf = Object.getPrototypeOf;
export const ObjectKeys: typeof Object.keys = Object.keys;
const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;

/** The getter of `name` on `proto`, uncurried. */
function getter<T, R>(proto: object, name: PropertyKey): (self: T) => R {
  return uncurryThis(ObjectGetOwnPropertyDescriptor(proto, name)!.get!) as (self: T) => R;
}

/** Global functions and constants, captured. */
export const ArrayIsArray: typeof Array.isArray = Array.isArray;
export const BigIntCtor: typeof BigInt = BigInt;
export const NumberIsInteger: typeof Number.isInteger = Number.isInteger;
export const NumberIsSafeInteger: typeof Number.isSafeInteger = Number.isSafeInteger;
export const StringCtor: typeof String = String;
export const MathCeil: typeof Math.ceil = Math.ceil;
export const MathFloor: typeof Math.floor = Math.floor;
export const MathMax: typeof Math.max = Math.max;
export const MathMin: typeof Math.min = Math.min;

// ---- ArrayBuffer and typed arrays: the engine's own slots ----

const TypedArrayPrototype = ObjectGetPrototypeOf(Uint8Array.prototype);

/** `TypedArray.prototype.length`: the element count from the engine's slot. */
export const TypedArrayPrototypeGetLength: (self: unknown) => number = getter(
  TypedArrayPrototype,
  "length",
);
/** `TypedArray.prototype.byteLength`. */
export const TypedArrayPrototypeGetByteLength: (self: unknown) => number = getter(
  TypedArrayPrototype,
  "byteLength",
);
/** `TypedArray.prototype.byteOffset`. */
export const TypedArrayPrototypeGetByteOffset: (self: unknown) => number = getter(
  TypedArrayPrototype,
  "byteOffset",
);
/** `TypedArray.prototype.buffer`. */
export const TypedArrayPrototypeGetBuffer: (self: unknown) => ArrayBufferLike = getter(
  TypedArrayPrototype,
  "buffer",
);
/**
 * `TypedArray.prototype[Symbol.toStringTag]`: the kind of a real typed array
 * (`"Uint8Array"`, ...), `undefined` for anything else (a Proxy, an object
 * whose prototype was set to a typed array's).
 */
export const TypedArrayPrototypeGetSymbolToStringTag: (self: unknown) => string | undefined =
  getter(TypedArrayPrototype, Symbol.toStringTag);
/** `TypedArray.prototype.set`. */
export const TypedArrayPrototypeSet: (
  self: unknown,
  source: ArrayLike<number | bigint>,
  offset?: number,
) => void = uncurryThis(TypedArrayPrototype.set);
/** `TypedArray.prototype.fill`. */
export const TypedArrayPrototypeFill: (
  self: unknown,
  value: number | bigint,
  start?: number,
  end?: number,
) => unknown = uncurryThis(TypedArrayPrototype.fill);
/** `TypedArray.prototype.subarray`, for memkit's own arrays. */
export const TypedArrayPrototypeSubarray: <T>(self: T, begin?: number, end?: number) => T =
  uncurryThis(TypedArrayPrototype.subarray) as any;

/** `ArrayBuffer.prototype.byteLength`. */
export const ArrayBufferPrototypeGetByteLength: (self: unknown) => number = getter(
  ArrayBuffer.prototype,
  "byteLength",
);
/** `ArrayBuffer.prototype.detached`. */
export const ArrayBufferPrototypeGetDetached: (self: unknown) => boolean = getter(
  ArrayBuffer.prototype,
  "detached",
);
/** `ArrayBuffer.prototype.transfer`. */
export const ArrayBufferPrototypeTransfer: (self: ArrayBuffer, length?: number) => ArrayBuffer =
  uncurryThis(ArrayBuffer.prototype.transfer);

/** `DataView.prototype` getters. */
export const DataViewPrototypeGetBuffer: (self: unknown) => ArrayBufferLike = getter(
  DataView.prototype,
  "buffer",
);
export const DataViewPrototypeGetByteOffset: (self: unknown) => number = getter(
  DataView.prototype,
  "byteOffset",
);
export const DataViewPrototypeGetByteLength: (self: unknown) => number = getter(
  DataView.prototype,
  "byteLength",
);

/** Whether `value` is a real typed array of kind `kind` (`"Uint8Array"`, ...). */
export function isTypedArray(value: unknown, kind?: string): boolean {
  const tag = TypedArrayPrototypeGetSymbolToStringTag(value);
  return tag !== undefined && (kind === undefined || tag === kind);
}

// ---- collections ----

/** `Set.prototype` methods, uncurried. */
export const SetPrototypeAdd: <T>(self: Set<T>, value: T) => Set<T> = uncurryThis(
  Set.prototype.add,
) as any;
export const SetPrototypeDelete: <T>(self: Set<T>, value: T) => boolean = uncurryThis(
  Set.prototype.delete,
) as any;
export const SetPrototypeHas: <T>(self: Set<T>, value: T) => boolean = uncurryThis(
  Set.prototype.has,
) as any;
export const SetPrototypeClear: (self: Set<unknown>) => void = uncurryThis(Set.prototype.clear);
const SetPrototypeValues = uncurryThis(Set.prototype.values);
const SetIteratorNext = uncurryThis(ObjectGetPrototypeOf(new Set().values()).next) as (
  it: unknown,
) => IteratorResult<unknown>;

/** The values of a Set, in order, as a fresh array (no patchable iterator involved). */
export function setValues<T>(set: Set<T>): T[] {
  const out: T[] = ObjectSetPrototypeOf([], null);
  const it = SetPrototypeValues(set);
  for (let r = SetIteratorNext(it); !r.done; r = SetIteratorNext(it)) {
    out[out.length] = r.value as T;
  }
  return out;
}

/** `Map.prototype` methods, uncurried. */
export const MapPrototypeGet: <K, V>(self: Map<K, V>, key: K) => V | undefined = uncurryThis(
  Map.prototype.get,
) as any;
export const MapPrototypeSet: <K, V>(self: Map<K, V>, key: K, value: V) => Map<K, V> = uncurryThis(
  Map.prototype.set,
) as any;
export const MapPrototypeHas: <K, V>(self: Map<K, V>, key: K) => boolean = uncurryThis(
  Map.prototype.has,
) as any;
export const MapPrototypeDelete: <K, V>(self: Map<K, V>, key: K) => boolean = uncurryThis(
  Map.prototype.delete,
) as any;
export const MapPrototypeClear: (self: Map<unknown, unknown>) => void = uncurryThis(
  Map.prototype.clear,
);
const MapPrototypeEntries = uncurryThis(Map.prototype.entries);
const MapIteratorNext = uncurryThis(ObjectGetPrototypeOf(new Map().entries()).next) as (
  it: unknown,
) => IteratorResult<[unknown, unknown]>;

/** The entries of a Map, in order, as a fresh array. */
export function mapEntries<K, V>(map: Map<K, V>): [K, V][] {
  const out: [K, V][] = ObjectSetPrototypeOf([], null);
  const it = MapPrototypeEntries(map);
  for (let r = MapIteratorNext(it); !r.done; r = MapIteratorNext(it)) {
    out[out.length] = r.value as [K, V];
  }
  return out;
}

/** `WeakRef.prototype.deref`, uncurried. */
export const WeakRefPrototypeDeref: <T extends object>(self: WeakRef<T>) => T | undefined =
  uncurryThis(WeakRef.prototype.deref) as any;

/** `FinalizationRegistry.prototype` methods, uncurried. */
export const FinalizationRegistryPrototypeRegister: <T>(
  self: FinalizationRegistry<T>,
  target: object,
  held: T,
  token?: object,
) => void = uncurryThis(FinalizationRegistry.prototype.register) as any;
export const FinalizationRegistryPrototypeUnregister: (
  self: FinalizationRegistry<any>,
  token: object,
) => boolean = uncurryThis(FinalizationRegistry.prototype.unregister);

/**
 * A fresh array with no prototype: indexing, `length` and assignment on it
 * can meet no getter or setter a patched `Array.prototype` defines.
 */
export function safeArray<T>(): T[] {
  return ObjectSetPrototypeOf([], null);
}
