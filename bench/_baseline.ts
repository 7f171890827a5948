/**
 * The C baselines of the bench files: each `bench/c/NAME.c` is built by
 * `make bench` into `build/bench/libNAME.so` and loaded here, with one error
 * (naming the path and the make target) when it is not built.
 *
 * @module
 */

/**
 * Loads `build/bench/<lib>` with `symbols`.
 *
 * @param lib the library's file name, e.g. `"liblock.so"`
 * @param symbols its symbol table
 * @returns the loaded symbols
 * @throws {Error} naming the path and `make bench` when it cannot be loaded
 */
export function openBaseline<const S extends Deno.ForeignLibraryInterface>(
  lib: string,
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] {
  const url = new URL(`../build/bench/${lib}`, import.meta.url);
  try {
    return Deno.dlopen(url, symbols).symbols;
  } catch (e) {
    throw new Error(
      `Cannot load the C baseline "${url.pathname}": ${(e as Error).message}; ` +
        `build it with \`make bench\` (or \`make build/bench/${lib}\`)`,
    );
  }
}

/**
 * Throws unless a baseline call succeeded (`>= 0`), so that a failing loop
 * is never timed as fast.
 *
 * @param ret what the C function returned (`-errno` on failure)
 * @param what the call, for the message
 * @returns `ret` as a number
 */
export function ok(ret: bigint, what: string): number {
  if (ret < 0n) throw new Error(`Cannot run the C baseline ${what}: errno ${-ret}`);
  return Number(ret);
}
