// flags: --allow-run=$DENO --allow-env=MEMKIT_FUZZ_SEED,MEMKIT_FUZZ_OPS
// Long random sequences of MemFd, Mapping, stitch, alias, guarded, protect
// (page ranges) and RingBuffer calls, valid and invalid, in a child process
// (tests/fixtures/fuzz_child.ts) that checks every view, copy, accessAt() and
// the kernel's protection of mapped pages against a per-page model: each
// page of a mapping maps (memfd or guarded memory, page index) and has its
// own protection. A run fails if the child dies of a signal or reports a
// disagreement; its seed replays it:
//
//   MEMKIT_FUZZ_SEED=<seed> deno test --allow-run=<deno> --allow-env=MEMKIT_FUZZ_SEED tests/fuzz_test.ts
//   deno run --allow-ffi --allow-run=cat --allow-read=/proc/self/maps \
//     --v8-flags=--expose-gc,--js-immutable-arraybuffer \
//     tests/fixtures/fuzz_child.ts <seed> <ops> [--hostile] [--trace] [--lenient=<bug>,...]
//
// Bugs the fuzzer found are fixed; --lenient=<name>,... tolerates one again, to
// replay a seed against an older memkit (the names are in fuzz_child.ts).
import { assertEquals, assertMatch } from "@std/assert";

const fixture = new URL("./fixtures/fuzz_child.ts", import.meta.url).pathname;
const V8_FLAGS = "--v8-flags=--expose-gc,--js-immutable-arraybuffer";
const OPS = Number(Deno.env.get("MEMKIT_FUZZ_OPS") || 15000);
const chosen = Deno.env.get("MEMKIT_FUZZ_SEED");
const randomSeed = chosen ? Number(chosen) : crypto.getRandomValues(new Uint32Array(1))[0];

/** Runs the child for `seed` and fails with everything needed to replay it. */
async function fuzz(seed: number, extra: string[] = []): Promise<void> {
  // cat reads /proc/<pid>/maps at the end: nothing memkit mapped may be left.
  const args = [
    "run",
    "--allow-ffi",
    "--allow-run=cat",
    // protection(): the kernel's word on each page's protection.
    "--allow-read=/proc/self/maps",
    "--no-prompt",
    V8_FLAGS,
    fixture,
    String(seed),
    String(OPS),
  ];
  const started = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [...args, ...extra],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  const stderr = new TextDecoder().decode(r.stderr);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const replay = `seed ${seed}, ${OPS} ops; replay with (--trace prints each op):\n` +
    `  ${Deno.execPath()} ${args.join(" ")} ${extra.join(" ")}\n` +
    `--- stdout (tail) ---\n${stdout.split("\n").slice(-60).join("\n")}\n` +
    `--- stderr ---\n${stderr.slice(-4000)}`;
  assertEquals(
    r.signal,
    null,
    `the fuzz child was killed by ${r.signal} after ${seconds} s: ${replay}`,
  );
  assertEquals(r.code, 0, `the fuzz child exited ${r.code} after ${seconds} s: ${replay}`);
  assertMatch(stdout, new RegExp(`^seed=${seed}$`, "m"), replay);
  assertMatch(stdout, new RegExp(`^done ops=${OPS} checks=[1-9]\\d*$`, "m"), replay);
  console.log(`seed=${seed}: ${stdout.match(/^done .*$/m)![0]} in ${seconds} s`);
}

Deno.test(`random calls with a fresh seed (${randomSeed}) never crash and always match the model`, async () => {
  console.log(`seed=${randomSeed} (set MEMKIT_FUZZ_SEED=${randomSeed} to replay)`);
  await fuzz(randomSeed);
});

for (const seed of [1, 2, 3]) {
  Deno.test(`random calls with fixed seed ${seed} never crash and always match the model`, async () => {
    await fuzz(seed);
  });
}

// A writable view's buffer (of a memfd mapping, a stitched view, an alias or
// a guarded mapping) refuses transfer() and transferToImmutable(); a
// transfer list (structuredClone) moves it anyway, and memkit must notice at
// the next view, protect or close and keep the range mapped: the child must
// never die, whatever it does with the moved buffers afterwards.
Deno.test({
  name: "views whose buffer the caller tries to transfer away cannot crash the process",
  async fn() {
    await fuzz(randomSeed, ["--hostile"]);
  },
});
