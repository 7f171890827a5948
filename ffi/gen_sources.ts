/**
 * Writes `ffi/_sources.json`: the C sources of `cbits/` as strings, so that a
 * copy of memkit loaded from JSR (or any URL) can build its native library on
 * first use without network or read access to the package.
 *
 * Run with `deno task sources` after changing anything in `cbits/`.
 *
 * @module
 */

const root = new URL("../", import.meta.url);

/** The flags the Makefile compiles with (its `CFLAGS`), then `-shared`. */
export function makefileCflags(): string[] {
  const makefile = Deno.readTextFileSync(new URL("Makefile", root));
  const line = makefile.match(/^CFLAGS := (.*)$/m);
  if (line === null) throw new Error('Cannot find "CFLAGS := ..." in the Makefile');
  return line[1].trim().split(/\s+/);
}

/** The text of `ffi/_sources.json` for the sources in `cbits/` now. */
export async function render(): Promise<string> {
  const names = [...Deno.readDirSync(new URL("cbits/", root))]
    .filter((e) => e.isFile && /\.[ch]$/.test(e.name))
    .map((e) => e.name)
    .sort();
  const files: [string, string][] = names.map((n) => [
    n,
    Deno.readTextFileSync(new URL(`cbits/${n}`, root)),
  ]);
  const cflags = makefileCflags();
  const version: string = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root))).version;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(JSON.stringify([cflags, files])),
  );
  const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
    .slice(0, 16);
  const sources = { version, hash, cflags, files };
  return JSON.stringify(sources, null, 2) + "\n";
}

if (import.meta.main) {
  Deno.writeTextFileSync(new URL("ffi/_sources.json", root), await render());
}
