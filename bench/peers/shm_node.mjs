// The Node peer of "64 MiB segment read by a second process"
// (bench/peers_bench.ts), with the shm-typed-array package (POSIX shared
// memory; `make bench-peers` installs it into build/peers/). One request a
// line on stdin, one answer a line on stdout; it exits at the end of stdin,
// and the segments it created are removed however it ends.
//
//   create <name> <bytes>  create the segment, write 1 into the first byte of each page
//   read <name> <k>        K times: attach, sum as 32-bit words, detach; answers the sum
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../../build/peers/package.json", import.meta.url));
const shm = require("shm-typed-array");
const created = [];

function job(line) {
  const [what, name, n] = line.split(" ");
  if (what === "create") {
    const bytes = shm.create(Number(n), "Buffer", name);
    if (bytes === null) throw new Error(`${name} exists`);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1;
    // Removed once this process is gone, even by SIGKILL (which Deno sends its children at
    // exit): a shell in its own session reads a pipe only this process holds.
    spawn("/bin/sh", ["-c", 'cat >/dev/null; rm -f "$0"', `/dev/shm${name}`], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    }).unref();
    created.push(name);
    return "ok";
  }
  if (what === "read") {
    let total = 0;
    for (let k = 0; k < Number(n); k++) {
      const words = shm.get(name, "Uint32Array");
      if (words === null) throw new Error(`no segment ${name}`);
      total = 0;
      for (let i = 0; i < words.length; i++) total += words[i];
      shm.detach(name);
    }
    return String(total);
  }
  throw new Error(`unknown job ${what}`);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let answer;
  try {
    answer = job(line);
  } catch (e) {
    answer = `error: ${e.message}`;
  }
  process.stdout.write(answer + "\n");
});
lines.on("close", () => {
  for (const name of created) shm.destroy(name);
  process.exit(0);
});
