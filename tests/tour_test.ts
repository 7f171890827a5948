// flags: --allow-run=timeout,script --allow-read=.
// `make run`, the README's first command, in a pseudo-terminal as a newcomer
// types it: the tour runs every section and never stops at a permission
// prompt (Deno prompts only when a terminal is attached).
import { assertEquals, assertStringIncludes } from "@std/assert";

const root = new URL("..", import.meta.url).pathname;

Deno.test("make run tours every capability in a terminal without a single permission prompt", () => {
  const r = new Deno.Command("timeout", {
    args: ["300", "script", "-qec", "make --no-print-directory run", "/dev/null"],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  // Without the colours (ESC [ ... m) a terminal gets.
  const colour = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
  const out = (new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr))
    .replace(colour, "");
  assertEquals(/Deno requests|Allow\? \[y\/n/.test(out), false, `a prompt:\n${out}`);
  assertEquals(r.code, 0, out);
  for (
    const section of [
      "Load the native library",
      "One memfd, two addresses",
      "Stitch chunks",
      "A ring buffer mapped twice",
      "Guard pages, page protections, protection keys",
      "Seals",
      "Share a sealed memfd with a second process",
      "Where memory lives",
      "Locked means resident, not fixed",
      "Map a file",
      "POSIX shared memory",
      "Why not share by physical address",
      "Physical memory through /dev/mem",
      "Lazy views: pages copied on first touch",
      "Memory shared with a kernel driver",
    ]
  ) assertStringIncludes(out, `▸ ${section}`);
});
