/**
 * Builds `libmemkit.so` on first use from the C sources shipped in the
 * package (`ffi/_sources.json`), into a cache directory keyed by their hash:
 * what a copy of memkit imported from JSR (or any URL) uses, since
 * `Deno.dlopen` needs a file.
 *
 * Every permission is queried first, never prompted for; what is missing is
 * named in the error.
 *
 * @module
 */

/** What `ffi/_sources.json` holds (written by `deno task sources`). */
export interface Sources {
  /** The package version they belong to. */
  version: string;
  /** A hash of the sources and flags: the cache's key. */
  hash: string;
  /** The Makefile's `CFLAGS`, before `-shared`. */
  cflags: string[];
  /** Each file of `cbits/`: its name and text. */
  files: [string, string][];
}

/** The compiler the build runs (found on `PATH`). */
export const COMPILER = "cc";

const SOURCES_URL = new URL("./_sources.json", import.meta.url);
/**
 * A package loaded from a URL (JSR, https) has its sources as a module (no
 * permission needed); a copy on disk reads them only when building, which
 * spares every start the parse of 200 kB it will not need.
 */
const embedded: Sources | undefined = SOURCES_URL.protocol === "file:"
  ? undefined
  : (await import("./_sources.json", { with: { type: "json" } })).default as Sources;
/** The path of the sources of a copy on disk. */
const sourcesPath = SOURCES_URL.protocol === "file:"
  ? decodeURIComponent(SOURCES_URL.pathname)
  : undefined;
let onDisk: Sources | undefined;

/**
 * The shipped sources: undefined for a copy on disk without read access to
 * them (or without them).
 */
export function sources(): Sources | undefined {
  if (embedded !== undefined) return embedded;
  if (onDisk !== undefined || sourcesPath === undefined) return onDisk;
  if (!granted({ name: "read", path: sourcesPath })) return undefined;
  try {
    onDisk = JSON.parse(Deno.readTextFileSync(sourcesPath)) as Sources;
  } catch {
    return undefined;
  }
  return onDisk;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  if (!granted({ name: "env", variable: name })) return undefined;
  return Deno.env.get(name) || undefined;
}

/**
 * The cache's root, `$XDG_CACHE_HOME/memkit` else `$HOME/.cache/memkit`;
 * undefined when neither variable may be read (or both are unset).
 */
export function cacheRoot(): string | undefined {
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg.replace(/\/+$/, "")}/memkit`;
  const home = env("HOME");
  if (home) return `${home.replace(/\/+$/, "")}/.cache/memkit`;
  return undefined;
}

/** The cached library's path for these sources (under {@linkcode cacheRoot}). */
export function cachedLibrary(root: string, src: Sources): string {
  return `${root}/${src.version}-${src.hash}/libmemkit.so`;
}

/** The flags building needs, for a cache root (or its usual place when unknown). */
export function buildFlags(root: string | undefined): string[] {
  const dir = root ?? "$HOME/.cache/memkit";
  return [
    "--allow-env=HOME,XDG_CACHE_HOME",
    `--allow-run=${COMPILER}`,
    `--allow-read=${sourcesPath === undefined ? dir : `${dir},${sourcesPath}`}`,
    `--allow-write=${dir}`,
  ];
}

/** The flags of {@linkcode buildFlags} not granted now. */
export function missingBuildFlags(root: string | undefined): string[] {
  if (root === undefined) return buildFlags(root);
  const missing: string[] = [];
  if (!granted({ name: "run", command: COMPILER })) missing.push(`--allow-run=${COMPILER}`);
  const unread = [root, sourcesPath].filter((p): p is string =>
    p !== undefined && !granted({ name: "read", path: p })
  );
  if (unread.length > 0) missing.push(`--allow-read=${unread.join(",")}`);
  if (!granted({ name: "write", path: root })) missing.push(`--allow-write=${root}`);
  return missing;
}

/**
 * Compiles the shipped sources into {@linkcode cachedLibrary}: in a private
 * temporary directory, then renamed into place, so processes racing to build
 * each see either no library or a whole one.
 *
 * @returns the library's path
 */
export function buildLibrary(root: string, src: Sources): string {
  const target = cachedLibrary(root, src);
  const keyDir = target.slice(0, target.lastIndexOf("/"));
  Deno.mkdirSync(keyDir, { recursive: true });
  const tmp = Deno.makeTempDirSync({ dir: keyDir, prefix: ".build-" });
  try {
    const objects: string[] = [];
    for (const [name, text] of src.files) {
      Deno.writeTextFileSync(`${tmp}/${name}`, text);
      if (name.endsWith(".c")) objects.push(`${tmp}/${name}`);
    }
    const out = `${tmp}/libmemkit.so`;
    let r: Deno.CommandOutput;
    try {
      r = new Deno.Command(COMPILER, {
        args: [...src.cflags, "-shared", "-o", out, ...objects],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
    } catch (e) {
      throw new Deno.errors.NotFound(
        `Cannot run the C compiler "${COMPILER}" to build the memkit native library: ` +
          `${(e as Error).message.split("\n")[0]}; install a C compiler (gcc or clang) ` +
          "or set MEMKIT_LIB to a built libmemkit.so",
        { cause: e },
      );
    }
    if (!r.success) {
      const why = new TextDecoder().decode(r.stderr).trim().split("\n").slice(0, 5).join("\n  ");
      throw new Error(
        `Cannot build the memkit native library: "${COMPILER}" exited with ${r.code}:\n  ${why}`,
      );
    }
    Deno.renameSync(out, target);
    return target;
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}
