// flags: --allow-run=$DENO
// memkit views handed to Deno's own native APIs (issue 15). Each scenario runs
// in a child process (tests/fixtures/native_ops.ts) with real sockets (TCP on
// 127.0.0.1, Unix, TLS with a certificate openssl(1) makes at test time),
// pipes and files: the op holds a view while the mapping is closed or its
// protection lowered, fresh memfds are mapped (the kernel would place them at
// the freed address), and the op finishes. The child must not die of a
// signal, and no fresh mapping may take the op's bytes or give them away.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const fixture = new URL("./fixtures/native_ops.ts", import.meta.url).pathname;

interface Run {
  signal: Deno.Signal | null;
  code: number;
  report: Record<string, string | number | boolean>;
  stderr: string;
}

/**
 * Runs a scenario; with `stdin`, writes it to the child's standard input
 * once the child printed "ready" (its read is in flight by then).
 */
async function run(scenario: string, action?: string, stdin?: Uint8Array): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      // Unix sockets at a temporary path need net access to "unix:<path>".
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-run=openssl,mkfifo,cat",
      "--v8-flags=--js-immutable-arraybuffer,--expose-gc",
      fixture,
      scenario,
      ...(action ? [action] : []),
    ],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let stdout = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    let fed = false;
    for await (const chunk of child.stdout) {
      stdout += decoder.decode(chunk, { stream: true });
      if (stdin && !fed && stdout.includes("ready\n")) {
        fed = true;
        const w = child.stdin.getWriter();
        await w.write(stdin);
        await w.close();
      }
    }
  })();
  const [r, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    reading,
  ]);
  const last = stdout.trim().split("\n").at(-1) ?? "";
  let report = {};
  try {
    report = JSON.parse(last);
  } catch {
    // killed before it printed: the caller looks at the signal
  }
  return { signal: r.signal, code: r.code, report, stderr };
}

/** Runs a scenario that must survive, and returns its report. */
async function child(
  scenario: string,
  action?: string,
  stdin?: Uint8Array,
): Promise<Run["report"]> {
  const r = await run(scenario, action, stdin);
  const what = `"${scenario}${action ? ` ${action}` : ""}"`;
  assertEquals(r.signal, null, `${what} was killed by ${r.signal}:\n${r.stderr}`);
  assertEquals(r.code, 0, `${what} exited ${r.code}:\n${JSON.stringify(r.report)}\n${r.stderr}`);
  assertEquals(r.report.survived, scenario);
  return r.report;
}

// ---- what only Deno can fix: its ops write into immutable buffers ----

Deno.test("Deno 2.9: getRandomValues() and encodeInto() write into an immutable ArrayBuffer (the reproduction, pinned)", async () => {
  const r = await child("immutable-repro");
  assertStringIncludes(String(r.fill), "throws:TypeError", "V8's own built-ins refuse");
  // When these fail, Deno's ops refuse immutable buffers: update the README.
  assertEquals(r.getRandomValues, "value:8");
  assertEquals(r.changed, true);
  assertEquals(r.encodeInto, "value:2");
  assertEquals(r.encoded, 104);
});

for (
  const [scenario, api] of [
    ["getRandomValues-readonly", "crypto.getRandomValues()"],
    ["encodeInto-readonly", "TextEncoder.encodeInto()"],
    ["ffi-buffer-readonly", 'a "buffer" argument of Deno.dlopen()'],
    ["tls-read-readonly", "a TLS read (rustls copies in user space)"],
  ]
) {
  Deno.test(`Deno 2.9: ${api} into an open read-only view dies of SIGSEGV (Deno's bug, pinned)`, async () => {
    const r = await run(scenario);
    if (r.report.skip) {
      console.log(`skipped: ${r.report.skip}`);
      return;
    }
    // When this fails, Deno refuses immutable buffers there now: update the
    // README's table ("what only Deno can fix") and turn this into a survival test.
    assertEquals(r.signal, "SIGSEGV", `expected today's crash, got ${JSON.stringify(r)}`);
  });
}

Deno.test("a file read into an open read-only view fails with EFAULT, sync and async", async () => {
  for (const scenario of ["readSync-readonly", "read-readonly"]) {
    const r = await child(scenario);
    assertStringIncludes(String(r.result), "Bad address (os error 14)", scenario);
  }
});

Deno.test("a BYOB read moves a writable view's buffer past memkit's guard: close() pins the range, no fault", async () => {
  const r = await child("byob-read");
  assertEquals(r.moved, 16 * 4096);
  assertEquals(r.movedAfterClose, 0, "the moved buffer reads the private zero pages");
  assertEquals(r.reused, false);
  assertEquals(r.probesUntouched, true);
  assertEquals(r.quarantined, 0, "pinned: never released, so not in the quarantine");
});

Deno.test("native writes into the stale view of a closed read-only mapping are harmless", async () => {
  const r = await child("stale-readonly");
  assertEquals(r.getRandomValues, "value:64");
  assertEquals(r.encodeInto, "value:5");
  assertEquals(r.readSync, `value:${16 * 4096}`);
  assertEquals(r.ffi, "value:7", "the stale view sees what was written into its own pages");
  assertEquals(r.reused, false, "the closed range is not given to the next mapping");
  assertEquals(r.probesUntouched, true);
  assertEquals(r.memfdUntouched, true, "the writes never reached the memfd");
});

// ---- reads in flight: the op writes into the view after the action ----

for (const api of ["tcp", "unix", "tls", "fifo"]) {
  for (const action of ["close", "protect-r", "protect-none"]) {
    Deno.test(`a ${api} read in flight, then ${action}(): the late bytes reach no other mapping`, async () => {
      const r = await child(`${api}-read`, action);
      if (r.skip) {
        console.log(`skipped: ${r.skip}`);
        return;
      }
      assertEquals(r.reused, false, "a fresh mapping was placed at the view's old address");
      assertEquals(r.probesUntouched, true, "a fresh mapping took the op's bytes");
      // The op completes into the quarantined private pages.
      assertEquals(r.read, "value:4096");
      if (action === "protect-r") {
        assertEquals(r.mappingAccess, "r");
        assertEquals(r.mappingIntact, true, "the read-only mapping took a late write");
      }
      assert(Number(r.quarantined) >= 1, "the old range waits in the quarantine");
    });
  }
}

for (const action of ["close", "protect-r", "protect-none"]) {
  Deno.test(`a Deno.stdin read in flight, then ${action}(): the late bytes reach no other mapping`, async () => {
    const r = await child("stdin-read", action, new Uint8Array(4096).fill(0xab));
    assertEquals(r.reused, false);
    assertEquals(r.probesUntouched, true, "a fresh mapping took the op's bytes");
    assertEquals(r.read, "value:4096");
  });
}

// ---- writes in flight: the op reads the view after the action ----

for (
  const api of ["tcp", "unix", "tls", "fifo", "writeFile", "command-stdin", "fetch-body"]
) {
  for (const action of ["close", "protect-none"]) {
    const scenario = ["tcp", "unix", "tls", "fifo"].includes(api) ? `${api}-write` : api;
    Deno.test(`${scenario} in flight, then ${action}(): no other mapping's bytes are sent`, async () => {
      const r = await child(scenario, action);
      if (r.skip) {
        console.log(`skipped: ${r.skip}`);
        return;
      }
      assertEquals(r.leaked, false, "a fresh mapping's bytes went out");
      assertEquals(r.reused, false, "a fresh mapping was placed at the view's old address");
      assertEquals(r.probesUntouched, true);
      if (api === "command-stdin") {
        // The stream hands the chunk to the op a microtask later: detached by then.
        assertStringIncludes(String(r.write), "detached ArrayBuffer");
      }
    });
  }
}

Deno.test("crypto.subtle.digest() copies the view when called: close() after it changes nothing", async () => {
  const r = await child("digest", "close");
  assertEquals(r.sameDigest, true);
  assertEquals(r.probesUntouched, true);
});

Deno.test("CompressionStream: a view closed right after write() reaches the op detached, never another mapping", async () => {
  const r = await child("compression", "close");
  assertEquals(r.leaked, false);
  assertEquals(r.received, 0, "the transform saw a detached (empty) chunk");
  assertEquals(r.probesUntouched, true);
});

Deno.test("the quarantine is bounded: at most QUARANTINE_RANGES ranges and as many mappings", async () => {
  const r = await child("quarantine-cost");
  assertEquals(r.plainQuarantined, 0, "a mapping that never handed out a view is unmapped at once");
  assertEquals(r.viewedQuarantined, r.limit);
  assertEquals(r.quarantinedBytes, Number(r.limit) * Number(r.size));
  assert(Number(r.viewedGrowth) <= Number(r.limit), `${r.viewedGrowth} more mappings`);
  console.log(
    `  /proc/self/maps grew by ${r.viewedGrowth} lines for ${r.limit} quarantined ranges`,
  );
});
