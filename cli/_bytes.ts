/**
 * Sizes as every memkit command prints them: binary units from
 * `@std/fmt/bytes`, with the IEC symbol `KiB` (the module writes `kiB`).
 *
 * @module
 */

import { format as formatBytes } from "@std/fmt/bytes";

/**
 * `bytes` in binary units: `4 KiB`, `1.5 MiB`, `16 GiB`.
 *
 * @param bytes A size in bytes.
 * @returns The size for people to read.
 *
 * @example Binary units, KiB spelled as IEC spells it
 * ```ts
 * import { binarySize } from "./_bytes.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(binarySize(4096), "4 KiB");
 * assertEquals(binarySize(3 * 2 ** 20 / 2), "1.5 MiB");
 * assertEquals(binarySize(100), "100 B");
 * ```
 */
export function binarySize(bytes: number): string {
  return formatBytes(bytes, { binary: true }).replace(/ kiB$/, " KiB");
}
