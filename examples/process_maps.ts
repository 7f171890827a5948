// Another process's mappings as a table, largest resident first, with totals (like pmap -X).
//
//   deno run --allow-ffi --allow-read=/proc/<pid>/smaps examples/process_maps.ts <pid>
//
// The read is gated on that one file: --allow-read=/proc/1234/smaps for pid 1234. Another
// user's process also needs CAP_SYS_PTRACE (the kernel's rule; memkit names it in the error).
import { readSmaps } from "@memkit/memkit";

const pid = Number(Deno.args[0]);
if (!Number.isSafeInteger(pid) || pid <= 0) {
  console.error("usage: process_maps.ts <pid>");
  Deno.exit(2);
}

const entries = readSmaps(pid); // every mapping, its counters in bytes
const kib = (bytes: number) => `${Math.round(bytes / 1024)}`.padStart(9);
const shown = [...entries].sort((a, b) => b.rss - a.rss).slice(0, 15);

console.log(`pid ${pid}: ${entries.length} mappings, the ${shown.length} largest by RSS`);
console.log(
  `${"start".padEnd(14)} ${"size KiB".padStart(9)} ${"rss KiB".padStart(9)}` +
    ` ${"pss KiB".padStart(9)} perm ${"kind".padEnd(9)} path`,
);
for (const e of shown) {
  const start = e.start.toString(16).padStart(12, "0");
  const what = e.path || (e.name ? `[${e.name}]` : "");
  console.log(
    `${start.padEnd(14)} ${kib(e.size)} ${kib(e.rss)} ${kib(e.pss)} ${e.perms} ` +
      `${e.kind.padEnd(9)} ${what}`,
  );
}

// Totals over every mapping, not only the rows shown.
const sum = (key: "size" | "rss" | "pss" | "swap") => entries.reduce((n, e) => n + e[key], 0);
console.log(
  `${"total".padEnd(14)} ${kib(sum("size"))} ${kib(sum("rss"))} ${kib(sum("pss"))}` +
    ` (swap ${Math.round(sum("swap") / 1024)} KiB)`,
);
