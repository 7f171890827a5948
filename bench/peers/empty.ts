/**
 * An empty program: `deno run bench/peers/empty.ts` is the cost of starting
 * Deno at all, the reference beside `memkit maps self --json`
 * (`bench/peers_bench.ts`).
 *
 * @module
 */
export {};
