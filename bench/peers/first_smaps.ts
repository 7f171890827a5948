/**
 * memkit's side of "first readSmaps in a fresh process"
 * (`bench/peers_bench.ts`): one `readSmaps(pid)` in a process that has
 * done nothing else, as the CLI and a one-shot script do.
 *
 * ```sh
 * deno run --allow-ffi --allow-read=/proc/<pid>/smaps bench/peers/first_smaps.ts <pid> <min>
 * ```
 *
 * @module
 */
import { readSmaps } from "../../mod.ts";

const [pid, min] = Deno.args.map(Number);
const n = readSmaps(pid).length;
if (n < min) {
  console.error(`only ${n} mappings`);
  Deno.exit(1);
}
