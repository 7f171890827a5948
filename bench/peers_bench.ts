/**
 * memkit beside the tools people use for the same jobs today (issue 11):
 * psutil, pmap, Python with numpy, Python's `mmap` and `shared_memory`,
 * Node's `shm-typed-array`. Each job is one group, its peer the group's
 * baseline, memkit's case beside it in the same run; `make bench` prints
 * every group's ratio (memkit / peer) in its summary table.
 *
 * 1. "first readSmaps, 10k mappings, fresh process": a fresh `deno run` of
 *    `bench/peers/first_smaps.ts` (one `readSmaps(pid)`) against a fresh
 *    `python3 bench/peers/psutil_smaps.py` (psutil's
 *    `memory_maps(grouped=False)`), both on a child of this process with
 *    10,000 extra mappings (`bi_spawn_vmas` in `bench/c/introspect.c`).
 *    One process per sample on both sides: start-up is part of the job.
 *    (`bi_spawn_vmas(n)` maps 2n pages of alternating protections: the child
 *    has about 20,000 mappings in all. `bench/peers/peak_rss.py` measures
 *    the peak memory of the same job, alternating, on 10,000.)
 * 1b. "readSmaps, 10k mappings, steady state": `readSmaps(pid)` of that
 *    child K times a sample in this process, without and with every
 *    entry's `fields` read, against psutil's `memory_maps(grouped=False)`
 *    K times a request in a persistent Python worker.
 * 2. "memkit maps <pid> vs pmap -X, 10k mappings": the command as a user
 *    runs it (`deno run` with the flags `memkit maps <pid> --permissions`
 *    prints) against `pmap -X <pid>`, stdout a pipe drained to the end.
 * 3. "memkit maps self --json vs pmap -X of itself": the same on the
 *    command's own process (`sh -c 'exec pmap -X $$'` for pmap: the shell
 *    execs pmap in place, so pmap reports itself), and an empty `deno run`
 *    for reference (what Deno costs before memkit does anything).
 * 4. "Pagemap.read of 1 GiB touched": 262,144 entries of a touched 1 GiB
 *    memfd mapping of this process, read and decoded into columns (raw,
 *    frame, flags, counts) K times a sample, with fresh columns and with
 *    `{ into }`, against a persistent Python worker doing the same K with
 *    `os.pread`/`os.preadv` and numpy (`bench/peers/_pagemap.py`) over a
 *    pipe: one request a sample, so the round trip is amortized over K.
 * 5. "memkit pagemap <pid> <addr>+1G vs Python + numpy": the command on
 *    that 1 GiB range against `bench/peers/pagemap_runs.py`, which prints
 *    the same runs (checked: the same number of lines) in the same format.
 * 6. "create+map+view+write+close 1 MiB": `MemFd.create` + `map()` +
 *    `bytes()` + a write of the first byte + both `close()`s, K cycles a
 *    sample, against the Python worker's K cycles of `mmap.mmap(-1, 1 MiB)`,
 *    a write of its first byte and `close()`.
 * 7. "64 MiB segment read by a second process": a persistent reader process
 *    attaches a 64 MiB segment another process wrote, sums it as 32-bit
 *    words, detaches, K times a request: memkit (`bench/peers/shm_reader.ts`,
 *    `mapFile` of the writer's memfd through `/proc/<pid>/fd/<fd>`) against
 *    Python `shared_memory` + numpy and, where it builds, Node with
 *    `shm-typed-array` (each on a segment of its own kind, written by
 *    another process).
 *
 * A peer that is not installed is reported once on stderr (`make
 * bench-peers` installs them as root) and its group runs memkit's side
 * alone. Needs `--allow-ffi --allow-read=/proc --allow-run`; each spawned
 * memkit gets only the flags its operation needs.
 *
 * `deno bench` runs a group's cases one after the other, not alternating:
 * on a machine whose load changes during the run, compare the fastest
 * samples too (the summary's "ratio of mins"), and state the load.
 *
 * Run alone: `make build/bench/libintrospect.so && deno bench --allow-ffi
 * --allow-read=/proc --allow-run bench/peers_bench.ts`.
 */

import {
  mapAnonymous,
  MemFd,
  Pagemap,
  type PagemapPages,
  permissionFlags,
  readSmaps,
} from "../mod.ts";
import {
  DENO,
  introspectLib,
  LineWorker,
  memkitCommand,
  nodeShm,
  noPeer,
  pmap,
  type Program,
  python,
  repoPath,
  run,
} from "./_peer.ts";
import { ok } from "./_baseline.ts";

const c = introspectLib();

const lines = (out: Uint8Array): number => out.reduce((n, b) => n + (b === 10 ? 1 : 0), 0);

interface Case {
  name: string;
  fn: () => void | Promise<void>;
}

/** A bench function that runs a program to the end, its output drained. */
const spawn = (exe: string, args: string[], env?: Record<string, string>) => async () => {
  await run(exe, args, env);
};

/** Registers a group: the peer as its baseline (or a note that there is none) and memkit's cases. */
function group(
  name: string,
  peer: Case | string,
  cases: Case[],
  samples: { n?: number; warmup?: number } = {},
): void {
  if (typeof peer === "string") noPeer(name, peer);
  else Deno.bench({ name: peer.name, group: name, baseline: true, ...samples, fn: peer.fn });
  for (const c of cases) Deno.bench({ name: c.name, group: name, ...samples, fn: c.fn });
}

const pyPsutil = python(["psutil"]);
const pyNumpy = python(["numpy"]);
const pyPlain = python([]);
const pmapTool = pmap();

const workers = new Map<Program, LineWorker>();
function worker(py: Program): LineWorker {
  let w = workers.get(py);
  if (!w) workers.set(py, w = new LineWorker(py, [repoPath("bench/peers/worker.py")]));
  return w;
}

// ---- a process with 10,000 mappings (jobs 1 and 2) ----

const MAPPINGS = 10_000;
const child = ok(c.bi_spawn_vmas(MAPPINGS), "bi_spawn_vmas");
globalThis.addEventListener("unload", () => c.bi_kill(child));

// ---- 1. the first readSmaps in a fresh process ----

const SPAWN = { n: 10, warmup: 1 };
{
  const flags = permissionFlags("smaps", String(child));
  const script = repoPath("bench/peers/first_smaps.ts");
  const args = ["run", ...flags, script, String(child), String(MAPPINGS)];
  const psutilScript = repoPath("bench/peers/psutil_smaps.py");
  group(
    "first readSmaps, 10k mappings, fresh process",
    typeof pyPsutil === "string" ? pyPsutil : {
      name: `psutil: memory_maps(grouped=False), fresh python (${pyPsutil.label})`,
      fn: spawn(pyPsutil.exe, [psutilScript, String(child), String(MAPPINGS)], pyPsutil.env),
    },
    [{ name: "memkit: readSmaps(pid), fresh deno run", fn: spawn(DENO, args) }],
    SPAWN,
  );
}

// ---- 1b. readSmaps in steady state ----

{
  const K = 4;
  group(
    `readSmaps, 10k mappings, steady state (${K} reads a sample)`,
    typeof pyPsutil === "string" ? pyPsutil : {
      name: `psutil: memory_maps(grouped=False) in a warm worker (${pyPsutil.label})`,
      async fn() {
        if (Number(await worker(pyPsutil).ask(`smaps ${child} ${K}`)) < MAPPINGS) {
          throw new Error("psutil saw too few mappings");
        }
      },
    },
    [{
      name: "memkit: readSmaps(pid)",
      fn() {
        for (let i = 0; i < K; i++) {
          if (readSmaps(child).length < MAPPINGS) throw new Error("readSmaps saw too few mappings");
        }
      },
    }, {
      name: "memkit: readSmaps(pid), every entry's fields read",
      fn() {
        for (let i = 0; i < K; i++) {
          let n = 0;
          for (const e of readSmaps(child)) n += e.fields.Size;
          if (n <= 0) throw new Error("no Size");
        }
      },
    }],
    { n: 20, warmup: 3 },
  );
}

// ---- 2. memkit maps <pid> against pmap -X <pid> ----

{
  const args = memkitCommand(["maps", String(child)]);
  const ours = lines(await run(DENO, args));
  if (ours < MAPPINGS) throw new Error(`memkit maps printed ${ours} lines`);
  if (typeof pmapTool !== "string") {
    const theirs = lines(await run(pmapTool.exe, ["-X", String(child)]));
    if (theirs < MAPPINGS) throw new Error(`pmap -X printed ${theirs} lines`);
  }
  group(
    "memkit maps <pid> vs pmap -X, 10k mappings",
    typeof pmapTool === "string"
      ? pmapTool
      : { name: "pmap -X <pid>", fn: spawn(pmapTool.exe, ["-X", String(child)]) },
    [{ name: "memkit maps <pid>", fn: spawn(DENO, args) }],
    SPAWN,
  );
}

// ---- 3. memkit maps self --json against pmap -X of itself ----

{
  const args = memkitCommand(["maps", "self", "--json"]);
  const empty = ["run", repoPath("bench/peers/empty.ts")];
  group(
    "memkit maps self --json vs pmap -X of itself",
    typeof pmapTool === "string" ? pmapTool : {
      name: "pmap -X of itself (sh -c 'exec pmap -X $$')",
      fn: spawn("/bin/sh", ["-c", `exec ${pmapTool.exe} -X "$$"`]),
    },
    [
      { name: "memkit maps self --json", fn: spawn(DENO, args) },
      { name: "reference: an empty deno run", fn: spawn(DENO, empty) },
    ],
    { n: 20, warmup: 2 },
  );
}

// ---- 1 GiB of touched memory (jobs 4 and 5) ----

const GiB = 2 ** 30;
const PAGES = GiB / 4096;
const K_PAGEMAP = 8;
const mem = MemFd.create("bench-peers-pagemap", { size: GiB });
const mapping = mem.map();
// Touched from C: a bytes() view would make V8 count 1 GiB of external
// memory for the rest of the run.
ok(c.bi_touch(mapping.address, BigInt(GiB)), "bi_touch");
// The bench functions must reach the mapping: memkit's finalizer unmaps a
// mapping nothing reaches, and its pages would read absent.
const keep = { mem, mapping };
const pm = Pagemap.open("self");

// ---- 4. Pagemap.read against os.pread + numpy ----

{
  const request = (mode: string) =>
    `pagemap ${Deno.pid} ${keep.mapping.address} ${PAGES} ${K_PAGEMAP} ${mode}`;
  const expect = `${PAGES} 0 0`;
  const numpy = (mode: string) =>
    typeof pyNumpy === "string" ? pyNumpy : {
      name: `numpy: os.pread${mode === "into" ? "v into preallocated columns" : ""} + decode ` +
        `(${pyNumpy.label})`,
      async fn() {
        const got = await worker(pyNumpy).ask(request(mode));
        if (got !== expect) throw new Error(`numpy read "${got}", expected "${expect}"`);
      },
    };
  const range = { start: keep.mapping.address, pages: PAGES };
  group(
    `Pagemap.read of 1 GiB touched, fresh columns (${K_PAGEMAP} reads a sample)`,
    numpy("fresh"),
    [{
      name: "memkit: Pagemap.read",
      fn() {
        for (let i = 0; i < K_PAGEMAP; i++) {
          const n = pm.read(range).presentCount;
          if (n !== PAGES) throw new Error(`pages missing: ${n} of ${PAGES} present`);
        }
      },
    }],
    { n: 20, warmup: 2 },
  );
  let reused: PagemapPages = pm.read(range);
  group(
    `Pagemap.read of 1 GiB touched, { into } (${K_PAGEMAP} reads a sample)`,
    numpy("into"),
    [{
      name: "memkit: Pagemap.read(..., { into })",
      fn() {
        for (let i = 0; i < K_PAGEMAP; i++) {
          reused = pm.read(range, { into: reused });
          if (reused.presentCount !== PAGES) throw new Error("pages missing");
        }
      },
    }],
    { n: 20, warmup: 2 },
  );
}

// ---- 5. memkit pagemap against a Python + numpy script ----

{
  const address = `0x${keep.mapping.address.toString(16)}`;
  const args = memkitCommand(["pagemap", String(Deno.pid), `${address}+1G`]);
  const script = repoPath("bench/peers/pagemap_runs.py");
  const pyArgs = [script, String(Deno.pid), address, String(GiB)];
  const ours = lines(await run(DENO, args));
  if (typeof pyNumpy !== "string") {
    const theirs = lines(await run(pyNumpy.exe, pyArgs, pyNumpy.env));
    // Both print a title, a header, the runs and the totals.
    if (theirs !== ours) {
      throw new Error(`memkit pagemap printed ${ours} lines, the Python script ${theirs}`);
    }
  }
  group(
    "memkit pagemap <pid> <addr>+1G vs Python + numpy",
    typeof pyNumpy === "string" ? pyNumpy : {
      name: `python + numpy: bench/peers/pagemap_runs.py (${pyNumpy.label})`,
      fn: spawn(pyNumpy.exe, pyArgs, pyNumpy.env),
    },
    [{ name: `memkit pagemap <pid> <addr>+1G (${ours - 3} runs)`, fn: spawn(DENO, args) }],
    SPAWN,
  );
}

// ---- 6. small map cycles against Python mmap(-1) ----

{
  const SIZE = 1 << 20;
  const K = 1000;
  const cases = [{
    name: "memkit: MemFd.create + map + bytes() + write + close",
    fn() {
      for (let i = 0; i < K; i++) {
        const fd = MemFd.create("bench", { size: SIZE });
        const m = fd.map();
        m.bytes()[0] = 1;
        m.close();
        fd.close();
      }
    },
  }];
  // The anonymous shared mapping: two system calls a cycle, no memfd.
  cases.push({
    name: "memkit: mapAnonymous + bytes() + write + close",
    fn() {
      for (let i = 0; i < K; i++) {
        const m = mapAnonymous(SIZE);
        m.bytes()[0] = 1;
        m.close();
      }
    },
  });
  group(
    `create+map+view+write+close 1 MiB (${K} cycles a sample)`,
    typeof pyPlain === "string" ? pyPlain : {
      name: `python: mmap.mmap(-1, 1 MiB) + write + close (${pyPlain.label})`,
      async fn() {
        if (await worker(pyPlain).ask(`mmap ${SIZE} ${K}`) !== "ok") throw new Error("mmap failed");
      },
    },
    cases,
    { n: 20, warmup: 2 },
  );
}

// ---- 7. a 64 MiB segment read by a second process ----

{
  const SIZE = 64 << 20;
  const K = 4;
  const sum = String(SIZE / 4096); // 1 in the first byte of each page
  const GROUP = `64 MiB segment read by a second process (${K} reads a sample)`;
  const check = (who: string) => (got: string) => {
    if (got !== sum) throw new Error(`${who} summed ${got}, expected ${sum}`);
  };

  // memkit: this process writes a memfd, a reader process maps it.
  const seg = MemFd.create("bench-peers-segment", { size: SIZE });
  const written = seg.map();
  ok(c.bi_touch(written.address, BigInt(SIZE)), "bi_touch");
  // The bench function reaches the memfd, so that it stays open.
  const segment = { seg, written };
  const pathOf = () => `/proc/${Deno.pid}/fd/${segment.seg.fd}`;
  const reader = new LineWorker({ exe: DENO, env: {}, label: "memkit reader" }, [
    "run",
    ...permissionFlags("mapFile", pathOf()),
    "--v8-flags=--js-immutable-arraybuffer",
    repoPath("bench/peers/shm_reader.ts"),
  ]);
  check("memkit")(await reader.ask(`${pathOf()} 1`));
  const memkitCase: Case = {
    name: "memkit: mapFile(/proc/<pid>/fd/<fd>) + Uint32Array view sum",
    async fn() {
      check("memkit")(await reader.ask(`${pathOf()} ${K}`));
    },
  };

  // Python: one worker creates and writes the segment, another reads it.
  const python = async (py: Program): Promise<Case> => {
    const owner = new LineWorker(py, [repoPath("bench/peers/worker.py")]);
    const name = await owner.ask(`shm-create ${SIZE}`);
    const w = worker(py);
    check("python")(await w.ask(`shm ${name} 1`));
    return {
      name: `python: shared_memory + numpy sum (${py.label})`,
      async fn() {
        check("python")(await w.ask(`shm ${name} ${K}`));
      },
    };
  };
  // Node, where shm-typed-array builds: a POSIX segment, created by one node, read by another.
  const node = async (js: Program): Promise<Case> => {
    const name = `/memkit-peers-${Deno.pid}`;
    const script = repoPath("bench/peers/shm_node.mjs");
    const owner = new LineWorker(js, [script]);
    if (await owner.ask(`create ${name} ${SIZE}`) !== "ok") throw new Error("node create failed");
    const w = new LineWorker(js, [script]);
    check("node")(await w.ask(`read ${name} 1`));
    return {
      name: `node: shm-typed-array get + Uint32Array sum + detach (${js.label})`,
      async fn() {
        check("node")(await w.ask(`read ${name} ${K}`));
      },
    };
  };
  const SAMPLES = { n: 15, warmup: 2 };
  const nodeTool = nodeShm();
  group(
    `${GROUP}, vs Python`,
    typeof pyNumpy === "string" ? pyNumpy : await python(pyNumpy),
    [memkitCase],
    SAMPLES,
  );
  group(
    `${GROUP}, vs Node`,
    typeof nodeTool === "string" ? nodeTool : await node(nodeTool),
    [memkitCase],
    SAMPLES,
  );
}
