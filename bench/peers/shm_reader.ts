/**
 * memkit's side of "64 MiB segment read by a second process"
 * (`bench/peers_bench.ts`): a persistent reader. For each line
 * `<path> <k>` on stdin it K times maps the file read-only (`mapFile`; the
 * writer's memfd as `/proc/<pid>/fd/<fd>`), sums it as 32-bit words through
 * a zero-copy `Uint32Array` view and closes the mapping, then answers the
 * sum on a line of its own. It exits at the end of stdin.
 *
 * ```sh
 * deno run --allow-ffi --allow-read=<path> --v8-flags=--js-immutable-arraybuffer \
 *   bench/peers/shm_reader.ts
 * ```
 *
 * @module
 */
import { mapFile } from "../../mod.ts";

function sum(path: string): number {
  using m = mapFile(path);
  const words = m.view(Uint32Array);
  let total = 0;
  for (let i = 0; i < words.length; i++) total += words[i];
  return total;
}

const encoder = new TextEncoder();
let pending = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += chunk;
  for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
    const [path, k] = pending.slice(0, nl).split(" ");
    pending = pending.slice(nl + 1);
    let answer: string;
    try {
      let total = 0;
      for (let i = 0; i < Number(k); i++) total = sum(path);
      answer = String(total);
    } catch (e) {
      answer = `error: ${(e as Error).message}`;
    }
    Deno.stdout.writeSync(encoder.encode(answer + "\n"));
  }
}
