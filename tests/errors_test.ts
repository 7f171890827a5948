// flags: --allow-run=cc,build/errno_probe --allow-write=build
// The ERRNO table of ffi/errors.ts against the system's <errno.h> and
// glibc: a C program compiled here from the table prints, for each name, the
// value of that macro, the name glibc gives the value (strerrorname_np) and
// its message (strerror), and every one must be what the table says.
import { assertEquals, assertGreater } from "@std/assert";
import { ERRNO, errnoCode, type ErrnoName, MemkitError } from "../ffi/errors.ts";
import { lacks, probed } from "./fixtures/skip.ts";

const entries = Object.entries(ERRNO);

/** The table's message for errno n, as MemkitError words it. */
function message(n: number): string {
  return new MemkitError(n, "x").message.slice("Cannot x: ".length);
}

/** A C program printing "name value glibc-name|strerror" for each entry. */
function probeSource(): string {
  const lines = entries.map(([name]) =>
    `  printf("%s %d %s|%s\\n", "${name}", ${name}, strerrorname_np(${name}), strerror(${name}));`
  );
  return [
    "#define _GNU_SOURCE 1",
    "#include <errno.h>",
    "#include <stdio.h>",
    "#include <string.h>",
    "int main(void) {",
    ...lines,
    "  return 0;",
    "}",
    "",
  ].join("\n");
}

probed({
  name: "every ERRNO entry has the number and name of <errno.h> and glibc's strerror text",
  skip: lacks("cc") && "cc is not installed (the probe is a C program built here)",
  fn() {
    assertGreater(entries.length, 40);
    Deno.mkdirSync("build", { recursive: true });
    Deno.writeTextFileSync("build/errno_probe.c", probeSource());
    const built = new Deno.Command("cc", {
      args: ["-std=c11", "-Wall", "-Werror", "-o", "build/errno_probe", "build/errno_probe.c"],
    }).outputSync();
    // A name that is no macro of <errno.h> fails the build, naming it.
    assertEquals(built.code, 0, new TextDecoder().decode(built.stderr));
    const out = new Deno.Command("build/errno_probe").outputSync();
    assertEquals(out.code, 0);
    const rows = new TextDecoder().decode(out.stdout).trimEnd().split("\n");
    assertEquals(rows.length, entries.length);
    for (const row of rows) {
      const [name, value, rest] = split3(row);
      const [glibcName, text] = rest.split("|");
      assertEquals(ERRNO[name as ErrnoName], Number(value), `${name} is ${value} in <errno.h>`);
      assertEquals(errnoCode(Number(value)), name, `errnoCode(${value})`);
      assertEquals(glibcName, name, `glibc names ${value} ${glibcName}`);
      assertEquals(message(Number(value)), text, `the message of ${name}`);
    }
  },
});

/** "a b c d" as ["a", "b", "c d"]. */
function split3(row: string): [string, string, string] {
  const a = row.indexOf(" ");
  const b = row.indexOf(" ", a + 1);
  return [row.slice(0, a), row.slice(a + 1, b), row.slice(b + 1)];
}
