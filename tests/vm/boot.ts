/**
 * Boots memkit's QEMU guest (prepared by tests/vm/prepare.sh) and talks to
 * QEMU's monitor (QMP) to read guest-physical memory from the outside.
 *
 * ```sh
 * deno run <flags below> tests/vm/boot.ts bench   # make bench-vm: the guest's benchmarks
 * ```
 *
 * Flags: --allow-run=timeout --allow-read=tests/vm/cache --allow-write=tests/vm/cache
 * --allow-env=MEMKIT_VM_ACCEL,MEMKIT_VM_TIMEOUT (paths relative to the checkout).
 *
 * QEMU exits 0 on poweroff whatever happened inside, so the outcome is read
 * from the lines the guest prints on its serial console (all starting with
 * `MEMKIT-`), and the whole run is bounded by `timeout`.
 *
 * @module
 */

export const CACHE = "tests/vm/cache";

/** What the guest is asked to do, and the ground truth handed to it. */
export interface BootOptions {
  /**
   * `test` (tests/vm/init runs the guest tests, then waits for the host),
   * `smbios` (the SMBIOS 3.x tests, on firmware with a 64-bit entry point) or `bench`.
   */
  mode: "test" | "smbios" | "bench";
  /** Environment for the guest's init, passed on the kernel command line (no spaces). */
  env?: Record<string, string>;
  /** The SMBIOS type 1 serial QEMU reports. */
  serial?: string;
  /** The system UUID QEMU reports. */
  uuid?: string;
  /** Seconds before the run is killed. */
  timeout?: number;
  /** Prints the serial console as it arrives. */
  echo?: boolean;
}

/** A running (or finished) guest. */
export interface Guest {
  /** The serial console so far, without carriage returns. */
  log(): string;
  /** Resolves when the guest printed `MEMKIT-GUEST-DONE`, QEMU exited, or time ran out. */
  done: Promise<"done" | "exited" | "timeout">;
  /** The QMP monitor. */
  qmp(): Promise<Qmp>;
  /** The ivshmem device's backing file on the host. */
  ivshmemPath: string;
  /** Quits QEMU (through QMP when connected) and waits for it. */
  stop(): Promise<void>;
  /** QEMU's own stderr, for diagnostics. */
  stderr(): Promise<string>;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A minimal QMP client over QEMU's stdin and stdout (`-qmp stdio`): no socket,
 * so no network permission, and the monitor lives exactly as long as QEMU.
 */
export class Qmp {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #buffer = "";
  #decoder = new TextDecoder();
  #ready: Promise<void>;

  /** Wraps QEMU's pipes; the greeting is read and capabilities negotiated on first use. */
  constructor(stdout: ReadableStream<Uint8Array>, stdin: WritableStream<Uint8Array>) {
    this.#reader = stdout.getReader();
    this.#writer = stdin.getWriter();
    this.#ready = (async () => {
      await this.#message(); // {"QMP": {...}}
      await this.#send("qmp_capabilities");
    })();
  }

  async #message(): Promise<Record<string, unknown>> {
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl).trim();
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line) return JSON.parse(line);
        continue;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("QMP: QEMU closed its monitor");
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  async #send(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const msg = JSON.stringify(args ? { execute: command, arguments: args } : { execute: command });
    await this.#writer.write(new TextEncoder().encode(msg + "\n"));
    for (;;) {
      const reply = await this.#message();
      if ("return" in reply) return reply.return;
      if ("error" in reply) throw new Error(`QMP ${command}: ${JSON.stringify(reply.error)}`);
    }
  }

  /** Runs one command and returns its `return` value (events are skipped). */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    await this.#ready;
    return await this.#send(command, args);
  }

  /** Reads `size` bytes of guest-physical memory at `address` (QMP pmemsave). */
  async readPhysical(address: number, size: number, scratch: string): Promise<Uint8Array> {
    // QEMU runs in this process's working directory: the relative path is the same file.
    await this.execute("pmemsave", { val: address, size, filename: scratch });
    return Deno.readFileSync(scratch);
  }

  /** Stops reading and writing. */
  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.#writer.close().catch(() => {});
  }
}

/** Boots the guest. */
export function boot(options: BootOptions): Guest {
  const dir = `${CACHE}/run-${options.mode}`;
  Deno.mkdirSync(dir, { recursive: true });
  const serialPath = `${dir}/serial.log`;
  const ivshmemPath = `${dir}/ivshmem`;
  for (const p of [serialPath, ivshmemPath]) {
    try {
      Deno.removeSync(p);
    } catch {
      // not there
    }
  }
  Deno.writeFileSync(ivshmemPath, new Uint8Array(1 << 20));
  const timeout = options.timeout ?? Number(env("MEMKIT_VM_TIMEOUT") ?? 180);
  const accel = env("MEMKIT_VM_ACCEL") ?? "tcg";
  const kernelEnv = Object.entries({ MEMKIT_MODE: options.mode, ...options.env })
    .map(([k, v]) => `${k}=${v}`);
  const append = ["console=ttyS0", "panic=-1", "quiet", "loglevel=3", ...kernelEnv].join(" ");
  const args = [
    "--kill-after=5",
    String(timeout),
    "qemu-system-x86_64",
    "-accel",
    accel,
    "-cpu",
    accel === "kvm" ? "host" : "max",
    "-machine",
    options.mode === "smbios" ? "pc,smbios-entry-point-type=64" : "pc",
    "-m",
    "512M",
    "-smp",
    "1",
    "-nodefaults",
    "-display",
    "none",
    "-no-reboot",
    "-serial",
    `file:${serialPath}`,
    "-qmp",
    "stdio",
    "-kernel",
    `${CACHE}/vmlinuz`,
    "-initrd",
    `${CACHE}/initrd.cpio`,
    "-append",
    append,
    "-object",
    `memory-backend-file,id=shm,share=on,mem-path=${ivshmemPath},size=1M`,
    "-device",
    "ivshmem-plain,memdev=shm",
  ];
  if (options.serial) {
    args.push("-smbios", `type=1,manufacturer=memkit,serial=${options.serial}`);
  }
  if (options.uuid) args.push("-uuid", options.uuid);
  const child = new Deno.Command("timeout", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const qmp = new Qmp(child.stdout, child.stdin);
  const stderrText = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const decoder = new TextDecoder();
  let text = "";
  let printed = 0;
  const read = (): string => {
    try {
      text = decoder.decode(Deno.readFileSync(serialPath)).replaceAll("\r", "");
    } catch {
      // not created yet
    }
    if (options.echo && text.length > printed) {
      Deno.stdout.writeSync(new TextEncoder().encode(text.slice(printed)));
      printed = text.length;
    }
    return text;
  };
  const done = (async (): Promise<"done" | "exited" | "timeout"> => {
    // A timer says when to give up waiting (timeout(1) kills QEMU as well).
    const expired = AbortSignal.timeout(timeout * 1000);
    while (!expired.aborted) {
      if (read().includes("MEMKIT-GUEST-DONE")) return "done";
      if (exited) {
        read();
        return "exited";
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return "timeout";
  })();
  return {
    log: read,
    done,
    ivshmemPath,
    qmp: () => Promise.resolve(qmp),
    async stop(): Promise<void> {
      if (!exited) {
        qmp.execute("quit").catch(() => {});
        // timeout(1) passes SIGTERM on to QEMU (a SIGKILL would orphan it).
        const t = setTimeout(() => child.kill("SIGTERM"), 10_000);
        await status;
        clearTimeout(t);
      }
      await qmp.close();
    },
    stderr: () => stderrText,
  };
}

if (import.meta.main) {
  const mode = Deno.args[0] === "bench" ? "bench" : "test";
  const guest = boot({
    mode,
    echo: true,
    timeout: Number(env("MEMKIT_VM_TIMEOUT") ?? (mode === "bench" ? 600 : 180)),
    env: { MEMKIT_DEVMEM_RUNS: "1000" },
  });
  const how = await guest.done;
  await guest.stop();
  console.log(`\n[host] guest ${how}`);
  const log = guest.log();
  const m = /MEMKIT-DEVMEM runs=(\d+) seconds=([\d.]+)/.exec(log);
  if (m) {
    const per = Number(m[2]) / Number(m[1]);
    console.log(
      `[host] busybox devmem, one process per read: ${m[1]} reads in ${m[2]} s, ` +
        `${(per * 1e6).toFixed(0)} µs a read; 1 million reads, extrapolated from those ${m[1]}: ${
          (per * 1e6).toFixed(0)
        } s`,
    );
    const unit: Record<string, number> = { ns: 1e-9, "µs": 1e-6, ms: 1e-3, s: 1 };
    const row = (name: string): number | undefined => {
      const r = new RegExp(`^\\| ${name}[^|]*\\|\\s+([\\d.]+) (ns|µs|ms|s) \\|`, "m").exec(log);
      return r ? Number(r[1]) * unit[r[2]] : undefined;
    };
    const view = row("memkit: 1M reads of a Uint32Array view");
    const c = row("C: 1M volatile 32-bit loads");
    if (view && c) {
      console.log(
        `[host] 1M 32-bit reads in the guest: C mmap ${(c * 1e3).toFixed(1)} ms, memkit view ${
          (view * 1e3).toFixed(1)
        } ms (${(view / c).toFixed(2)}x C), busybox devmem ~${(per * 1e6).toFixed(0)} s (${
          Math.round(per * 1e6 / view)
        }x memkit)`,
      );
    }
  }
  if (how !== "done") {
    console.error(await guest.stderr());
    Deno.exit(1);
  }
}
