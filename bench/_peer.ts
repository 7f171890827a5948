/**
 * Helpers for `bench/peers_bench.ts`: finding the peers (a Python with
 * psutil or numpy, pmap, Node), running a program to the end with its
 * output drained, driving a persistent worker over a pipe, and running the
 * `memkit` command with the flags its own `--permissions` prints.
 *
 * Nothing here installs anything: `make bench-peers` does (as root, from
 * apt and npm). A peer that cannot be found is reported once, on stderr,
 * and its group runs memkit's side alone.
 *
 * @module
 */

import { openBaseline } from "./_baseline.ts";

/** The Deno binary running the benchmarks: the one each spawned memkit uses. */
export const DENO: string = Deno.execPath();

/** A file of this repository, as an absolute path. */
export function repoPath(relative: string): string {
  return new URL(`../${relative}`, import.meta.url).pathname;
}

const decoder = new TextDecoder();

/** A program to spawn: the executable and the environment it needs on top of ours. */
export interface Program {
  exe: string;
  env: Record<string, string>;
  /** How a person would name it in a report, e.g. `python3 (3.11.7, psutil 5.9.4)`. */
  label: string;
}

/**
 * Runs `exe args` to the end, stdout piped and drained (as a shell pipe
 * into `wc` would), and returns the bytes it wrote; throws with its stderr
 * when it exits non-zero.
 */
export async function run(
  exe: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Uint8Array> {
  const out = await new Deno.Command(exe, {
    args: [...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run "${[exe, ...args].join(" ")}": exit ${out.code}${
        out.signal ? ` (${out.signal})` : ""
      }: ${decoder.decode(out.stderr).trim()}`,
    );
  }
  return out.stdout;
}

/** The same, synchronously, for the set-up before the benchmarks. */
export function runSync(
  exe: string,
  args: readonly string[],
  env: Record<string, string> = {},
): string {
  const out = new Deno.Command(exe, {
    args: [...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    throw new Error(
      `Cannot run "${[exe, ...args].join(" ")}": exit ${out.code}: ${
        decoder.decode(out.stderr).trim()
      }`,
    );
  }
  return decoder.decode(out.stdout);
}

function tryRun(exe: string, args: readonly string[], env: Record<string, string> = {}) {
  try {
    return runSync(exe, args, env);
  } catch {
    return undefined;
  }
}

const told = new Set<string>();

/** Says once, on stderr, that a group runs without its peer, and why. */
export function noPeer(group: string, why: string): void {
  if (told.has(group)) return;
  told.add(group);
  console.error(`peers: "${group}": no peer (${why}); memkit's side runs alone`);
}

/** The Python interpreters to try, in order: the one on PATH, it with Debian's packages, Debian's. */
function pythonCandidates(): { exe: string; env: Record<string, string> }[] {
  const out: { exe: string; env: Record<string, string> }[] = [];
  // The interpreter itself, not a wrapper (a pyenv shim is a shell script
  // that costs tens of milliseconds a start, which a peer should not pay).
  const real = tryRun("python3", ["-c", "import sys; print(sys.executable)"])?.trim();
  if (real) {
    out.push({ exe: real, env: {} });
    out.push({ exe: real, env: { PYTHONPATH: "/usr/lib/python3/dist-packages" } });
  }
  if (real !== "/usr/bin/python3") out.push({ exe: "/usr/bin/python3", env: {} });
  return out;
}

const pythons = new Map<string, Program | string>();

/**
 * The first Python that imports every one of `modules`, or why there is
 * none (a string naming what was tried and the package that brings it).
 */
export function python(modules: readonly string[]): Program | string {
  const key = modules.join(",");
  const known = pythons.get(key);
  if (known !== undefined) return known;
  const probe = "import importlib, sys; " +
    "mods = [importlib.import_module(m) for m in sys.argv[1:]]; " +
    'print(sys.version.split()[0], *[getattr(m, "__version__", "?") for m in mods])';
  let found: Program | string = modules.length === 0
    ? "no python3 found; `make bench-peers` installs python3 as root"
    : `no python3 imports ${modules.join(" and ")}; \`make bench-peers\` installs ${
      modules.map((m) => `python3-${m}`).join(" and ")
    } as root`;
  for (const c of pythonCandidates()) {
    const out = tryRun(c.exe, ["-c", probe, ...modules], c.env)?.trim().split(" ");
    if (!out) continue;
    const versions = modules.map((m, i) => `, ${m} ${out[i + 1]}`).join("");
    const path = c.env.PYTHONPATH ? `, PYTHONPATH=${c.env.PYTHONPATH}` : "";
    // No __pycache__ in bench/peers/ (it would show in git status).
    const env = { ...c.env, PYTHONDONTWRITEBYTECODE: "1" };
    found = { exe: c.exe, env, label: `python ${out[0]}${versions}${path}` };
    break;
  }
  pythons.set(key, found);
  return found;
}

/** `pmap` when it is installed, or why not. */
export function pmap(): Program | string {
  const v = tryRun("pmap", ["--version"]);
  if (v === undefined) return "pmap is not installed; `make bench-peers` installs procps as root";
  return { exe: "pmap", env: {}, label: v.trim() };
}

/** Node with the `shm-typed-array` package built into `build/peers/`, or why not. */
export function nodeShm(): Program | string {
  const where = repoPath("build/peers/node_modules/shm-typed-array");
  const w = JSON.stringify(where);
  const probe =
    `require(${w}); console.log(process.version, require(${w} + "/package.json").version)`;
  const v = tryRun("node", ["-e", probe])?.trim().split(" ");
  if (v === undefined) {
    return "node with shm-typed-array in build/peers/ not found; `make bench-peers` builds it";
  }
  return { exe: "node", env: {}, label: `node ${v[0]}, shm-typed-array ${v[1]}` };
}

/**
 * The `deno run` command line of `memkit <args>` with exactly the flags
 * `memkit <args> --permissions` prints (the first line of its output), as
 * a user would paste them.
 */
export function memkitCommand(args: readonly string[]): string[] {
  const cli = repoPath("cli.ts");
  const printed = runSync(DENO, ["run", cli, ...args, "--permissions"], { NO_COLOR: "1" });
  const flags = printed.split("\n")[0].trim().split(/\s+/).filter((f) => f.startsWith("--"));
  if (flags.length === 0) {
    throw new Error(`Cannot read the flags of "memkit ${args.join(" ")}": got "${printed}"`);
  }
  return ["run", ...flags, cli, ...args];
}

/**
 * A long-lived process that answers one line for each line it is sent
 * (a Python or Deno peer doing the job K times a request, so that the
 * pipe's round trip is a small part of each answer).
 */
export class LineWorker {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pending = "";
  #encoder = new TextEncoder();
  readonly label: string;

  constructor(program: Program, args: readonly string[]) {
    this.label = program.label;
    this.#child = new Deno.Command(program.exe, {
      args: [...args],
      env: program.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.getReader();
    globalThis.addEventListener("unload", () => this.close());
  }

  /** Sends `line` and returns the line answered (an answer starting `error` throws). */
  async ask(line: string): Promise<string> {
    await this.#writer.write(this.#encoder.encode(line + "\n"));
    for (;;) {
      const nl = this.#pending.indexOf("\n");
      if (nl >= 0) {
        const answer = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        if (answer.startsWith("error")) {
          throw new Error(`The worker "${this.label}" failed on "${line}": ${answer}`);
        }
        return answer;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`The worker "${this.label}" exited while asked "${line}"`);
      this.#pending += decoder.decode(value, { stream: true });
    }
  }

  /** Ends the worker's stdin (idempotent): it exits, cleaning up what it created. */
  close(): void {
    this.#writer.close().catch(() => {});
  }
}

/** What `bench/c/introspect.c` gives the peers: a child with many mappings, touching pages. */
export function introspectLib(): {
  bi_touch: (address: bigint, length: bigint) => bigint;
  bi_spawn_vmas: (n: number) => bigint;
  bi_kill: (pid: number) => bigint;
} {
  return openBaseline("libintrospect.so", {
    bi_touch: { parameters: ["u64", "u64"], result: "i64" }, // int64_t (uint64_t address, uint64_t length)
    bi_spawn_vmas: { parameters: ["u32"], result: "i64" }, // int64_t (uint32_t n)
    bi_kill: { parameters: ["i32"], result: "i64" }, // int64_t (int32_t pid)
  });
}
