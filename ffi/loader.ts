/**
 * Finds, checks and loads `libmemkit.so`, once, on first use.
 *
 * Search order: the `MEMKIT_LIB` environment variable (a path), then the
 * local build `build/libmemkit.so` next to this package (resolved from
 * `import.meta.url`; only for a `file:` copy), then the build cache
 * (`$XDG_CACHE_HOME/memkit` or `~/.cache/memkit`, then `<version>-<hash>/`).
 * When none loads and the permissions are granted (`--allow-run=cc` and
 * read/write on the cache), the library is built into the cache from the C
 * sources the package ships (`ffi/_sources.json`): a copy imported from JSR
 * works on first use. A failure names every path tried, the flags building
 * needs and the other ways to get a library.
 *
 * @module
 */

import { MK, symbols } from "./symbols.ts";
import {
  buildFlags,
  buildLibrary,
  cachedLibrary,
  cacheRoot,
  missingBuildFlags,
  sources,
} from "./_build.ts";

/** The typed symbols of the loaded library. */
export type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** The command that builds the native library from a checkout. */
export const BUILD_COMMAND = "make build";

/** The library found: its path and page size (its whole table bound only by {@linkcode lib}). */
let loaded: { path: string; pageSize: number } | undefined;
let all: Symbols | undefined;
/** Subsets bound by {@linkcode bind}, by their names joined. */
const subsets = new Map<string, unknown>();
/** What finding the library binds: the ABI check and the page size. */
const CORE = {
  mk_core_abi_version: symbols.mk_core_abi_version,
  mk_core_page_size: symbols.mk_core_page_size,
} as const;

function envPath(): string | undefined {
  try {
    // Query first: reading an ungranted variable would prompt in a terminal.
    const state = Deno.permissions.querySync({ name: "env", variable: "MEMKIT_LIB" }).state;
    if (state !== "granted") return undefined;
    return Deno.env.get("MEMKIT_LIB") || undefined;
  } catch (e) {
    // Without --allow-env=MEMKIT_LIB the variable counts as not set.
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw e;
  }
}

/**
 * The paths the loader tries, in order, each with where it came from.
 *
 * @returns `[origin, path]` pairs; the local build is absent when this module
 * was not loaded from a `file:` URL (for example, from JSR over https), the
 * build cache when neither `HOME` nor `XDG_CACHE_HOME` may be read.
 *
 * @example Where memkit looks for its library
 * ```ts
 * import { libraryCandidates } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * assert(libraryCandidates().some(([origin]) => origin === "local build"));
 * ```
 */
export function libraryCandidates(): [string, string][] {
  return [...firstCandidates(), ...cacheCandidate()];
}

/** `MEMKIT_LIB` and the local build: what is tried before the build cache. */
function firstCandidates(): [string, string][] {
  const out: [string, string][] = [];
  const env = envPath();
  if (env) out.push(["MEMKIT_LIB", env]);
  const local = new URL("../build/libmemkit.so", import.meta.url);
  if (local.protocol === "file:") out.push(["local build", decodeURIComponent(local.pathname)]);
  return out;
}

/**
 * The build cache's library, when its place can be known; asked only once the
 * others fail (a copy on disk reads the shipped sources for their hash).
 */
function cacheCandidate(): [string, string][] {
  const root = cacheRoot();
  const src = root === undefined ? undefined : sources();
  return root !== undefined && src !== undefined ? [["build cache", cachedLibrary(root, src)]] : [];
}

/** Throws NotCapable unless unscoped `--allow-ffi` is granted. */
function requireFfi(): void {
  let state = Deno.permissions.querySync({ name: "ffi" }).state;
  if (state === "prompt") state = Deno.permissions.requestSync({ name: "ffi" }).state;
  if (state === "granted") return;
  throw new Deno.errors.NotCapable(
    "Requires ffi access, run again with the --allow-ffi flag " +
      "(memkit's zero-copy views need it without a path)",
  );
}

/**
 * Loads the native library (once) and returns its symbols.
 *
 * Requires `--allow-ffi` (unscoped: zero-copy views use
 * `Deno.UnsafePointerView`, which Deno allows only then).
 */
export function lib(): Symbols {
  return all ??= open(symbols);
}

/** Binds `table` in the library found, naming it when a symbol is missing. */
function open<T extends Deno.ForeignLibraryInterface>(table: T): Deno.DynamicLibrary<T>["symbols"] {
  const { path } = load();
  try {
    return Deno.dlopen(path, table).symbols;
  } catch (e) {
    throw new Deno.errors.NotFound(
      `Cannot bind the memkit native library "${path}": ${(e as Error).message.split("\n")[0]}; ` +
        `rebuild it with \`${BUILD_COMMAND}\``,
      { cause: e },
    );
  }
}

/**
 * Some symbols of the native library, bound on their own: binding the
 * whole table ({@linkcode lib}) costs about 0.2 ms and some memory per
 * symbol, which a one-shot caller (`memkit maps`) need not pay for the
 * symbols it never calls. The same names give the same object.
 *
 * Requires `--allow-ffi` (as {@linkcode lib}).
 */
export function bind<K extends keyof typeof symbols>(
  names: readonly K[],
): Pick<Symbols, K> {
  if (all !== undefined) return all;
  const key = names.join(",");
  let subset = subsets.get(key) as Pick<Symbols, K> | undefined;
  if (subset === undefined) {
    const table = Object.fromEntries(names.map((n) => [n, symbols[n]])) as Pick<typeof symbols, K>;
    subset = open(table) as unknown as Pick<Symbols, K>;
    subsets.set(key, subset);
  }
  return subset;
}

/**
 * The page size of this machine, read from the native library.
 *
 * Requires `--allow-ffi`.
 *
 * @example The page size
 * ```ts
 * import { pageSize } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(pageSize() % 4096, 0);
 * ```
 */
export function pageSize(): number {
  return load().pageSize;
}

/**
 * The path the native library was loaded from (loading it if needed).
 *
 * Requires `--allow-ffi`.
 *
 * @example The library this process loaded
 * ```ts
 * import { libraryPath } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * assert(libraryPath().endsWith("libmemkit.so"));
 * ```
 */
export function libraryPath(): string {
  return load().path;
}

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  requireFfi();
  const tried: string[] = [];
  const causes: Error[] = [];
  const candidates = firstCandidates();
  if (!candidates.some(([origin]) => origin === "MEMKIT_LIB")) {
    tried.push("MEMKIT_LIB: not set (or not readable without --allow-env=MEMKIT_LIB)");
  }
  const attempt = (origin: string, path: string): boolean => {
    let dl: Deno.DynamicLibrary<typeof CORE>;
    try {
      dl = Deno.dlopen(path, CORE);
    } catch (e) {
      const why = (e as Error).message.split("\n")[0];
      const built = origin === "build cache" && /No such file/.test(why) ? "not built yet" : why;
      tried.push(`${origin}: ${path} (${built})`);
      causes.push(e as Error);
      return false;
    }
    const abi = Number(dl.symbols.mk_core_abi_version());
    if (abi !== MK.ABI_VERSION) {
      dl.close();
      const why = `ABI version ${abi}, this module needs ${MK.ABI_VERSION}: rebuild it`;
      tried.push(`${origin}: ${path} (${why})`);
      causes.push(new Error(`${path}: ${why}`));
      return false;
    }
    loaded = { path, pageSize: Number(dl.symbols.mk_core_page_size()) };
    return true;
  };
  for (const [origin, path] of candidates) {
    if (attempt(origin, path)) return loaded!;
  }
  for (const [origin, path] of cacheCandidate()) {
    if (attempt(origin, path)) return loaded!;
  }
  // Build on first use, when every permission that needs is granted.
  const root = cacheRoot();
  const missing = missingBuildFlags(root);
  const src = sources();
  if (root !== undefined && src !== undefined && missing.length === 0) {
    let built: string | undefined;
    try {
      built = buildLibrary(root, src);
    } catch (e) {
      tried.push(`build on first use: ${(e as Error).message}`);
      causes.push(e as Error);
    }
    if (built !== undefined && attempt("built now", built)) return loaded!;
  }
  if (root === undefined) {
    tried.push("build cache: unknown (HOME and XDG_CACHE_HOME are not readable or not set)");
  }
  const howToBuild = missing.length === 0
    ? ""
    : `To build it on first use from the C sources memkit ships, grant ${
      buildFlags(root).join(" ")
    } (missing: ${missing.join(" ")}); or set`;
  // NotFound, with what each candidate answered as the cause.
  throw new Deno.errors.NotFound(
    `Cannot load the memkit native library; tried:\n  ${tried.join("\n  ")}\n` +
      (howToBuild ? `${howToBuild} ` : "Set ") +
      "MEMKIT_LIB to the path of a libmemkit.so (and grant --allow-env=MEMKIT_LIB); " +
      `or, in a memkit checkout, build it with \`${BUILD_COMMAND}\``,
    { cause: new AggregateError(causes, "every candidate library failed to load") },
  );
}
