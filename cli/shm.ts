/**
 * `memkit shm`: POSIX shared memory in `/dev/shm`, with the processes that
 * map each segment, so that segments nobody maps any more (left behind by a
 * `kill -9`) stand out.
 *
 * ```sh
 * deno run --allow-ffi --allow-read=/dev/shm,/proc cli.ts shm ls --stale
 * deno run --allow-ffi --allow-read=/dev/shm/demo --allow-write=/dev/shm/demo cli.ts shm create /demo 1M
 * deno run --allow-ffi --allow-read=/dev/shm/demo cli.ts shm cat /demo --hex --length=64
 * deno run --allow-ffi --allow-read=/dev/shm/demo --allow-write=/dev/shm/demo cli.ts shm rm /demo
 * ```
 *
 * @module
 */

import { type Operation, SharedMemory, type SharedMemoryInfo } from "../mod.ts";
import { flagsFor, parseAmount, parseCommandLine, printPermissions, showHelp } from "./_args.ts";
import { binarySize } from "./_bytes.ts";
import { bold, dim, yellow } from "./_colors.ts";
import { SHM } from "./_commands.ts";
import type { SchemaId } from "./_json_schemas.ts";
import { fail } from "./_fail.ts";
import { stdout } from "./_out.ts";
import { hexdump } from "./phys.ts";

const size = binarySize;
/** `value` as `memkit.shm.<command>/1`: the schema first. */
const json = (command: "ls" | "create" | "rm" | "cat" | "info", value: object): string => {
  const schema: SchemaId = `memkit.shm.${command}/1`;
  return JSON.stringify({ schema, ...value }, null, 2);
};

/** A segment as the schemas have it: the mode as octal text (as the table shows it), mappers where listed. */
function segmentJson(s: SharedMemoryInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: s.name,
    size: s.size,
    allocated: s.allocated,
    mode: s.mode.toString(8).padStart(4, "0"),
    uid: s.uid,
    gid: s.gid,
    modified: s.modified.toISOString(),
  };
  if (s.mappers !== undefined) out.mappers = s.mappers;
  return out;
}

function amount(text: string | undefined, what: string): number {
  const n = parseAmount(text, what);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`Cannot use the ${what} "${text}": too large`);
  }
  return Number(n);
}

function need(text: string | undefined, what: string): string {
  if (text === undefined) throw new TypeError(`Missing the ${what}: see memkit shm --help`);
  return text;
}

/** The operation, and its target, a `memkit shm` call needs. */
function operationOf(command: string, positionals: string[]): [Operation, string] {
  const name = positionals[1] ?? "<name>";
  switch (command) {
    case "ls":
      return ["shmList", ""];
    case "create":
    case "rm":
      return ["shmCreate", name];
    case "cat":
    case "info":
      return ["shmOpen", name];
  }
  throw new TypeError(
    `Unknown command "${command}" for memkit shm: expected ls, create, rm, cat or info`,
  );
}

function mode(text: string | undefined): number {
  if (text === undefined) return 0o600;
  if (!/^0?[0-7]{1,3}$/.test(text)) {
    throw new TypeError(`Cannot use the mode "${text}": expected octal permission bits, as 0600`);
  }
  return parseInt(text, 8);
}

function printList(segments: SharedMemoryInfo[], skipped: number[], stale: boolean): void {
  const shown = stale ? segments.filter((s) => s.mappers!.length === 0) : segments;
  stdout.line(
    bold(
      `${"Size".padStart(10)} ${"Reserved".padStart(10)} Mode ${"Owner".padStart(11)} ` +
        `${"Modified".padEnd(19)} ${"Mapped by".padEnd(24)} Name`,
    ),
  );
  for (const s of shown) {
    const nobody = s.mappers!.length === 0;
    const plain = nobody
      ? "nobody (stale?)"
      : s.mappers!.map((p) => `${p.pid}${p.writable ? "" : " (r)"}`).join(", ");
    const by = nobody ? yellow(plain.padEnd(24)) : plain.padEnd(24);
    stdout.line(
      `${size(s.size).padStart(10)} ${size(s.allocated).padStart(10)} ` +
        `${s.mode.toString(8).padStart(4, "0")} ${`${s.uid}:${s.gid}`.padStart(11)} ` +
        `${s.modified.toISOString().slice(0, 19).replace("T", " ")} ${by} ${s.name}`,
    );
  }
  const stales = segments.filter((s) => s.mappers!.length === 0).length;
  stdout.line(dim(
    `${segments.length} segments, ${stales} mapped by no process read` +
      (skipped.length > 0
        ? `; ${skipped.length} processes could not be read (another user's, or denied): ` +
          skipped.slice(0, 10).join(", ") + (skipped.length > 10 ? ", ..." : "")
        : ""),
  ));
}

/**
 * Runs `memkit shm`.
 *
 * @param args The arguments after `shm`.
 * @returns The exit code.
 *
 * @example Every segment in /dev/shm
 * ```ts ignore
 * // deno run --allow-ffi --allow-read=/dev/shm,/proc cli.ts shm ls
 * import { shmCommand } from "./shm.ts";
 * Deno.exit(shmCommand(["ls"]));
 * ```
 */
export function shmCommand(args: string[]): number {
  try {
    const flags = parseCommandLine(SHM, args);
    if (flags.has("help")) return showHelp(SHM);
    const command = flags.subcommand!;
    const rest = flags.positionals;
    const [op, target] = operationOf(command, [command, ...rest]);
    if (flags.has("permissions")) {
      printPermissions(flagsFor(op, target), "shm", args);
      return 0;
    }
    switch (command) {
      case "ls": {
        const { segments, skipped } = SharedMemory.list();
        if (flags.has("json")) {
          const shown = flags.has("stale")
            ? segments.filter((s) => s.mappers!.length === 0)
            : segments;
          stdout.line(json("ls", { segments: shown.map(segmentJson), skipped }));
        } else {
          printList(segments, skipped, flags.has("stale"));
        }
        return 0;
      }
      case "create": {
        const name = need(rest[0], "name");
        const bytes = amount(need(rest[1], "size"), "size");
        using shm = SharedMemory.create(name, {
          size: bytes,
          mode: mode(flags.value("mode")),
          exclusive: !flags.has("open"),
        });
        if (flags.has("json")) {
          stdout.line(json("create", { name: shm.name, size: shm.size, reserved: true }));
        } else stdout.line(`${shm.name}: ${size(shm.size)} (${shm.size} bytes), reserved`);
        return 0;
      }
      case "rm": {
        const name = need(rest[0], "name");
        SharedMemory.unlink(name);
        if (flags.has("json")) stdout.line(json("rm", { name, removed: true }));
        return 0;
      }
      case "info": {
        const info = SharedMemory.info(need(rest[0], "name"));
        if (flags.has("json")) {
          const { mappers: _, ...segment } = segmentJson(info);
          stdout.line(json("info", { segment }));
        } else {
          stdout.line(
            `${info.name}: ${size(info.size)} (${info.size} bytes), ${
              size(info.allocated)
            } reserved, mode ${
              info.mode.toString(8).padStart(4, "0")
            }, owner ${info.uid}:${info.gid}`,
          );
        }
        return 0;
      }
      case "cat": {
        using shm = SharedMemory.open(need(rest[0], "name"), { access: "r" });
        const offset = amount(flags.value("offset") ?? "0", "offset");
        const length = flags.value("length") === undefined
          ? undefined
          : amount(flags.value("length"), "length");
        const bytes = shm.read(offset, length);
        if (flags.has("json")) {
          let binary = "";
          for (let at = 0; at < bytes.length; at += 0x8000) {
            binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
          }
          stdout.line(json("cat", {
            name: shm.name,
            offset: `0x${offset.toString(16)}`,
            length: bytes.length,
            base64: btoa(binary),
          }));
        } else if (flags.has("hex")) {
          if (bytes.length > 0) stdout.line(hexdump(bytes, offset));
        } else {
          for (let done = 0; done < bytes.length;) {
            done += Deno.stdout.writeSync(bytes.subarray(done));
          }
        }
        return 0;
      }
    }
    return 2;
  } catch (e) {
    return fail(e);
  }
}
