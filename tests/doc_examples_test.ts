// flags: --allow-run=$DENO,test --allow-read=. --allow-write=/tmp --allow-sys=uid
// The doc examples `deno test --doc` cannot run (marked `ts ignore`: they need
// a device, root or a command line), run where they can: each one's first
// line names its `deno run` flags and what it needs ("as root", "on a machine
// with /dev/mem"); each runs as a script with exactly those flags and must
// exit 0. On the host the /dev/mem ones skip (this kernel has none); the QEMU
// guest runs this file too, and there they run for real.
import { assertEquals } from "@std/assert";
import { probed } from "./fixtures/skip.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();

interface Example {
  file: string;
  line: number;
  flags: string[];
  args: string[];
  code: string;
  needs: string;
}

/** Every ```ts ignore block of the package's sources, with its flags line. */
function examples(): Example[] {
  const files = ["cli.ts", "mod.ts"];
  for (const dir of ["src", "cli"]) {
    for (const e of Deno.readDirSync(`${root}${dir}`)) {
      if (e.isFile && e.name.endsWith(".ts")) files.push(`${dir}/${e.name}`);
    }
  }
  const out: Example[] = [];
  for (const file of files.sort()) {
    const lines = Deno.readTextFileSync(`${root}${file}`).split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!/^\s*\* ```ts ignore\s*$/.test(lines[i])) continue;
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length && !/^\s*\* ```\s*$/.test(lines[j]); j++) {
        body.push(lines[j].replace(/^\s*\* ?/, ""));
      }
      const head = /^\/\/ deno run (.*?)(?: ([\w./-]+\.ts)(.*))?$/.exec(body[0] ?? "");
      out.push({
        file,
        line: i + 1,
        flags: head ? head[1].replace(/\(.*\)/, "").trim().split(/\s+/).filter(Boolean) : [],
        args: head?.[2] ? (head[3] ?? "").trim().split(/\s+/).filter(Boolean) : [],
        code: body.join("\n"),
        needs: head ? (/\((.*)\)/.exec(head[1])?.[1] ?? "") : "",
      });
      i = j;
    }
  }
  return out;
}

/** Why an example cannot run here, or false. */
function cannotRun(ex: Example): string | false {
  if (!/^\/\/ deno run /.test(ex.code)) return false; // reported as a failure below
  if (ex.needs.includes("as root") && Deno.uid() !== 0) return "it needs root";
  // Each file it reads must exist here: test(1) asks, since Deno's own API
  // refuses even a stat under /dev to anything short of every permission.
  const reads = ex.flags.filter((f) => f.startsWith("--allow-read="))
    .flatMap((f) => f.slice("--allow-read=".length).split(","))
    // (A /dev/shm/<name> is a segment the example creates itself.)
    .filter((p) => p.startsWith("/") && !p.startsWith("/proc/") && !p.startsWith("/dev/shm/"));
  for (const path of reads) {
    if (new Deno.Command("test", { args: ["-e", path] }).outputSync().success) continue;
    return path === "/dev/mem"
      ? "this kernel has no /dev/mem (CONFIG_DEVMEM unset); the QEMU guest runs it"
      : `there is no ${path} here`;
  }
  return false;
}

// The package's own specifiers, as a user's script would resolve them.
const imports: [RegExp, string][] = [
  [/"@memkit\/memkit\/cli"/g, JSON.stringify(`file://${root}cli.ts`)],
  [/"@memkit\/memkit"/g, JSON.stringify(`file://${root}mod.ts`)],
];

for (const ex of examples()) {
  const name = `the example at ${ex.file}:${ex.line} runs with the flags its first line names`;
  probed({
    name,
    skip: cannotRun(ex),
    fn() {
      assertEquals(
        /^\/\/ deno run /.test(ex.code),
        true,
        "its first line is `// deno run <flags>`",
      );
      let code = ex.code;
      for (const [from, to] of imports) code = code.replace(from, to);
      // Relative imports resolve against the example's own file.
      code = code.replace(
        /from "(\.\.?\/[^"]+)"/g,
        (_, rel) => `from ${JSON.stringify(new URL(rel, `file://${root}${ex.file}`).href)}`,
      );
      const dir = Deno.makeTempDirSync({ prefix: "memkit-example-" });
      try {
        const script = `${dir}/example.ts`;
        Deno.writeTextFileSync(script, code);
        const r = new Deno.Command(deno, {
          args: [
            "run",
            "--no-prompt",
            "--config",
            `${root}deno.json`,
            ...ex.flags,
            script,
            ...ex.args,
          ],
          cwd: root,
          stdout: "piped",
          stderr: "piped",
        }).outputSync();
        const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        assertEquals([r.signal, r.code], [null, 0], `${ex.file}:${ex.line}\n${code}\n---\n${text}`);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}
