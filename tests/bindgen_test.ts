// flags: --allow-read=cbits,ffi,build --allow-run=nm
import { assertEquals, assertThrows } from "@std/assert";
import { ffiType, parseConstants, parsePrototypes, render } from "../ffi/bindgen.ts";

Deno.test("bindgen maps C parameter types to Deno FFI types", () => {
  assertEquals(ffiType("int32_t fd"), "i32");
  assertEquals(ffiType("uint64_t length"), "u64");
  assertEquals(ffiType("const char *name"), "buffer");
  assertEquals(ffiType("uint8_t *out"), "buffer");
  assertEquals(ffiType("size_t n"), "usize");
  assertThrows(() => ffiType("struct foo *x"), TypeError);
  assertThrows(() => ffiType("long x"), TypeError, 'C type "long"');
});

Deno.test("bindgen reads prototypes with their comments, markers and multi-line parameters", () => {
  const header = `
/* Does a thing. */
MK_API int64_t mk_a_do(int32_t fd,
                       uint64_t n);
MK_API int64_t mk_a_none(void);
/* Waits. */
MK_API MK_NONBLOCKING int64_t mk_a_wait(uint32_t ms);
#define MK_FLAG 0x10u
#define MK_OTHER 3
`;
  const protos = parsePrototypes(header);
  assertEquals(protos.map((p) => p.name), ["mk_a_do", "mk_a_none", "mk_a_wait"]);
  assertEquals(protos[0].doc, "Does a thing.");
  assertEquals(protos[0].params, [{ c: "int32_t fd", ffi: "i32" }, {
    c: "uint64_t n",
    ffi: "u64",
  }]);
  assertEquals(protos[1].params, []);
  assertEquals(protos[2].nonblocking, true);
  assertEquals(parseConstants(header), [["FLAG", 16], ["OTHER", 3]]);
  assertEquals(parseConstants("#define MK_TOP 0xffffffffffffffffull /* all ones */"), [[
    "TOP",
    0xffffffffffffffffn,
  ]]);
  assertEquals(parseConstants("#define MK_SAFE 9007199254740991ul"), [["SAFE", 2 ** 53 - 1]]);
  assertThrows(() => parsePrototypes("int nothing(void);"), TypeError);
});

Deno.test("ffi/symbols.ts is what bindgen makes of cbits/memkit.h", () => {
  const header = Deno.readTextFileSync(new URL("../cbits/memkit.h", import.meta.url));
  const symbols = Deno.readTextFileSync(new URL("../ffi/symbols.ts", import.meta.url));
  assertEquals(render(header), symbols);
});

Deno.test("every prototype in memkit.h is an mk_<capability>_<verb> returning int64_t", () => {
  const header = Deno.readTextFileSync(new URL("../cbits/memkit.h", import.meta.url));
  const declared = [...header.matchAll(/^MK_API[^(]*\b(\w+)\s*\(/gm)].map((m) => m[1]);
  const parsed = parsePrototypes(header).map((p) => p.name);
  assertEquals(parsed, declared);
  for (const name of parsed) assertEquals(/^mk_[a-z]+_[a-z0-9_]+$/.test(name), true, name);
});

Deno.test("bindgen refuses a #define MK_ it cannot translate instead of dropping it", () => {
  for (const line of ["#define MK_SHIFT (1u << 3)", "#define MK_NEG -1", "#define MK_lower 1"]) {
    assertThrows(() => parseConstants(line), TypeError, "Cannot translate");
  }
  assertEquals(parseConstants("#define MK_API __attribute__((x))\n#define MK_NONBLOCKING"), []);
});

Deno.test("the library exports exactly the MK_API prototypes of memkit.h (nm -D)", () => {
  const header = Deno.readTextFileSync(new URL("../cbits/memkit.h", import.meta.url));
  const lib = new URL("../build/libmemkit.so", import.meta.url).pathname;
  const out = new Deno.Command("nm", { args: ["-D", "--defined-only", lib] }).outputSync();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const exported = new TextDecoder().decode(out.stdout).split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[1] === "T")
    .map((f) => f[2])
    .sort();
  assertEquals(exported, parsePrototypes(header).map((p) => p.name).sort());
});
