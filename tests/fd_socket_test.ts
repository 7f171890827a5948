// flags: --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net --allow-run=$DENO,python3,ls --v8-flags=--js-immutable-arraybuffer
// FdListener and FdConnection against the kernel: memfds passed between two
// Deno processes and with Python's socket.send_fds/recv_fds, refusals
// (missing seals, too small, not a memfd, MSG_CTRUNC, more descriptors than
// expected), no descriptor leaked over 10,000 exchanges (counted by ls(1) in
// /proc/<pid>/fd), and waits that leave the event loop free.
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  FdConnection,
  FdListener,
  FdRefusedError,
  MemFd,
  MemkitError,
  permissionFlags,
} from "../mod.ts";
import { connectionRaw } from "../src/fd_socket.ts";
import { denoRun, readUntil } from "./fixtures/child.ts";
import { assertWaitsEnd } from "./fixtures/waits.ts";
import { lacks, need } from "./fixtures/skip.ts";

const peer = new URL("./fixtures/fd_peer.ts", import.meta.url).pathname;
const python = new URL("./fixtures/fd_python.py", import.meta.url).pathname;
const pythonNeed = need(lacks("python3"));
const FLAGS = ["--allow-ffi", "--allow-read=/tmp", "--allow-write=/tmp", "--allow-net"];

let n = 0;
function tempSocket(): string {
  return `/tmp/memkit-fdtest-${Deno.pid}-${n++}.sock`;
}

/** A listener, a client and the server end of their connection. */
async function pair(): Promise<
  { listener: FdListener; client: FdConnection; server: FdConnection } & Disposable
> {
  const listener = FdListener.listen(tempSocket());
  const client = FdConnection.connect(listener.path);
  const server = await listener.accept({ timeoutMs: 10000 });
  return {
    listener,
    client,
    server,
    [Symbol.dispose]() {
      client.close();
      server.close();
      listener.close();
    },
  };
}

function sealedMemFd(name: string, size = 4096): MemFd {
  const fd = MemFd.create(name, { size });
  fd.seal(["shrink", "grow"]);
  return fd;
}

/**
 * This process's open memfds, sockets and eventfds (what memkit could leak),
 * as ls(1) lists the links of /proc/<pid>/fd; pipes that Deno opens and
 * closes lazily for its child processes are not counted.
 */
function openFds(): number {
  const r = new Deno.Command("ls", { args: ["-l", `/proc/${Deno.pid}/fd`] }).outputSync();
  assert(r.success);
  return new TextDecoder().decode(r.stdout).split("\n")
    .filter((l) => / -> (\/memfd:|socket:|anon_inode:\[eventfd\])/.test(l)).length;
}

Deno.test("the socket row needs read, write and net unix:<path>, as Deno's own Unix sockets do", () => {
  assertEquals(permissionFlags("socket", "/tmp/x.sock"), [
    "--allow-ffi",
    "--allow-read=/tmp/x.sock",
    "--allow-write=/tmp/x.sock",
    "--allow-net=unix:/tmp/x.sock",
  ]);
  // A child with read and write but no net: NotCapable before the socket exists.
  const path = tempSocket();
  const r = denoRun([
    "--allow-ffi",
    "--allow-read=/tmp",
    "--allow-write=/tmp",
    peer,
    "listen",
    path,
  ]);
  const report = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assertEquals(report.name, "NotCapable", r.stderr);
  assertStringIncludes(report.message, `net access to "unix:${path}"`);
  assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
});

Deno.test("a sender that shrinks a sealed memfd gets EPERM while the receiver keeps reading", async () => {
  using listener = FdListener.listen(tempSocket());
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, "--v8-flags=--js-immutable-arraybuffer", peer, "read", listener.path],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  using conn = await listener.accept({ timeoutMs: 30000 });
  using memfd = MemFd.create("shared", { size: 65536 });
  {
    using m = memfd.map();
    const b = m.bytes();
    for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  }
  memfd.seal(["shrink", "grow"]);
  await conn.send(memfd, { metadata: new TextEncoder().encode("pattern") });
  // Wait until the child has mapped it.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = await readUntil(reader, "mapped\n");
  assert(out.includes("mapped\n"), `the child ended early: ${out}`);
  for (const size of [4096, 0]) {
    const e = assertThrows(() => memfd.resize(size), MemkitError);
    assertEquals(e.code, "EPERM");
  }
  assertEquals(memfd.size, 65536);
  using done = sealedMemFd("done");
  await conn.send(done);
  out += await readUntil(reader);
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assertEquals([status.signal, status.code], [null, 0], `${out}\n${stderr}`);
  const report = JSON.parse(out.trim().split("\n").at(-1)!);
  assert(report.passes >= 1);
  assertEquals([report.wrong, report.size, report.metadata], [0, 65536, "pattern"]);
});

Deno.test("without the shrink seal the receiver refuses the memfd, and the connection stays usable", async () => {
  using p = await pair();
  using bare = MemFd.create("bare", { size: 4096 });
  await p.client.send(bare);
  let e = await assertRejects(() => p.server.receive(), FdRefusedError);
  assertEquals(e.reason, "seals");
  assertStringIncludes(e.message, 'not sealed against "shrink"');
  // "shrink" is required even when `require` leaves it out.
  bare.seal(["grow"]);
  await p.client.send(bare);
  e = await assertRejects(() => p.server.receive({ require: ["grow"] }), FdRefusedError);
  assertEquals(e.reason, "seals");
  // The next message is received normally.
  using ok = sealedMemFd("ok");
  await p.client.send(ok);
  const got = await p.server.receive({ require: ["shrink", "grow"] });
  assertEquals([got.memfd.name, got.memfd.size, got.memfd.seals], ["ok", 4096, ["shrink", "grow"]]);
  got.memfd.close();
});

Deno.test("receive() checks minSize and access before anything maps the memfd", async () => {
  using p = await pair();
  using small = sealedMemFd("small");
  await p.client.send(small);
  let e = await assertRejects(() => p.server.receive({ minSize: 8192 }), FdRefusedError);
  assertEquals(e.reason, "size");
  small.seal(["future-write"]);
  await p.client.send(small);
  e = await assertRejects(() => p.server.receive({ access: "rw" }), FdRefusedError);
  assertEquals(e.reason, "access");
  assertStringIncludes(e.message, '"future-write"');
  await p.client.send(small);
  const got = await p.server.receive({ access: "r", minSize: 4096 });
  got.memfd.close();
  // Bad options are errors before any system call.
  await assertRejects(() => p.server.receive({ require: ["glue" as "grow"] }), TypeError);
  await assertRejects(() => p.server.receive({ minSize: -1 }), RangeError);
  await assertRejects(() => p.server.receive({ access: "x" as "r" }), TypeError);
  assertThrows(() => p.client.trySend({} as MemFd), TypeError);
  assertThrows(() => FdListener.listen("/tmp/" + "x".repeat(200)), RangeError);
});

Deno.test("more descriptors than expected, or one that is not a memfd, is refused and closed", async () => {
  using p = await pair();
  using a = sealedMemFd("a");
  using b = sealedMemFd("b");
  const raw = connectionRaw(p.client);
  assert(raw.send([a.fd, b.fd], new Uint8Array([1])));
  let e = await assertRejects(() => p.server.receive(), FdRefusedError);
  assertEquals(e.reason, "descriptors");
  // A socket descriptor is no memfd.
  assert(raw.send([raw.fd], new Uint8Array([2])));
  e = await assertRejects(() => p.server.receive(), FdRefusedError);
  assertEquals(e.reason, "not-memfd");
  // Bytes without a descriptor.
  assert(raw.send([], new Uint8Array([3])));
  e = await assertRejects(() => p.server.receive(), FdRefusedError);
  assertEquals(e.reason, "no-descriptor");
});

Deno.test("10,000 exchanges, accepted and refused, leak no descriptor", async () => {
  using p = await pair();
  using good = sealedMemFd("good");
  using bare = MemFd.create("bare", { size: 4096 });
  const raw = connectionRaw(p.client);
  const before = openFds();
  const reasons: Record<string, number> = {};
  for (let i = 0; i < 10000; i++) {
    switch (i % 4) {
      case 0:
        assert(p.client.trySend(good, { metadata: new Uint8Array([i & 0xff]) }));
        break;
      case 1:
        assert(p.client.trySend(bare));
        break;
      case 2:
        assert(raw.send([good.fd, good.fd, bare.fd], new Uint8Array([0])));
        break;
      case 3:
        assert(raw.send([raw.fd], new Uint8Array([0])));
        break;
    }
    try {
      const got = p.server.tryReceive();
      if (got === undefined) throw new Error(`exchange ${i}: nothing received`);
      assertEquals(got.metadata[0], i & 0xff);
      got.memfd.close();
      reasons.ok = (reasons.ok ?? 0) + 1;
    } catch (e) {
      if (!(e instanceof FdRefusedError)) throw e;
      reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
    }
  }
  assertEquals(reasons, { ok: 2500, seals: 2500, descriptors: 2500, "not-memfd": 2500 });
  assertEquals(openFds(), before);
});

Deno.test("receive() leaves the event loop free, and ends on close, timeout, abort or the peer's close", async () => {
  using p = await pair();
  // A timer fires while receive() waits; the message arrives later.
  using fd = sealedMemFd("late");
  const got = await assertWaitsEnd(
    (o) => p.server.receive(o),
    () => p.client.send(fd),
    () => p.server.close(),
    50,
  );
  got.memfd.close();

  // The peer closes: the other end's receive() rejects with ECONNRESET.
  using q = await pair();
  const waiting = q.server.receive();
  q.client.close();
  const e = await assertRejects(() => waiting, MemkitError);
  assertEquals(e.code, "ECONNRESET");
  // And a send to a closed peer is EPIPE.
  const e2 = await assertRejects(() => q.server.send(fd), MemkitError);
  assertEquals(e2.code, "EPIPE");
});

Deno.test("accept() waits without blocking, and close() removes the socket path", async () => {
  const listener = FdListener.listen(tempSocket());
  const path = listener.path;
  assert(Deno.lstatSync(path).isSocket);
  await assertRejects(() => listener.accept({ timeoutMs: 20 }), Deno.errors.TimedOut);
  const accepting = listener.accept();
  const client = FdConnection.connect(path);
  const server = await accepting;
  server.close();
  client.close();
  // A second listener on a live path is EADDRINUSE.
  const e = assertThrows(() => FdListener.listen(path), MemkitError);
  assertEquals(e.code, "EADDRINUSE");
  const pendingAccept = listener.accept();
  listener.close();
  await assertRejects(() => pendingAccept, Deno.errors.BadResource);
  assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
  assertEquals(assertThrows(() => FdConnection.connect(path), MemkitError).code, "ENOENT");
});

pythonNeed.test("a stale socket file is replaced; a regular file in the way is EEXIST", () => {
  const path = tempSocket();
  // A stale socket: bound (and never unlinked) by a Python process that exited.
  const py = new Deno.Command("python3", {
    args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
  }).outputSync();
  assert(py.success);
  assert(Deno.lstatSync(path).isSocket);
  assertEquals(assertThrows(() => FdConnection.connect(path), MemkitError).code, "ECONNREFUSED");
  using listener = FdListener.listen(path);
  using _client = FdConnection.connect(path); // the new socket answers
  listener.close();
  Deno.writeTextFileSync(path, "");
  assertEquals(assertThrows(() => FdListener.listen(path), MemkitError).code, "EEXIST");
  Deno.removeSync(path);
});

pythonNeed.test("Python's recv_fds receives a memkit memfd with its seals and metadata", async () => {
  using listener = FdListener.listen(tempSocket());
  const py = new Deno.Command("python3", {
    args: [python, "recv", listener.path],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  using conn = await listener.accept({ timeoutMs: 30000 });
  using memfd = MemFd.create("to-python", { size: 8192 });
  {
    using m = memfd.map();
    m.bytes().set([1, 2, 3, 4]);
  }
  memfd.seal(["shrink", "grow"]);
  await conn.send(memfd, { metadata: new TextEncoder().encode("hello python") });
  const out = await py.output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const report = JSON.parse(text);
  // F_SEAL_SHRINK | F_SEAL_GROW, as Python's own fcntl reads them.
  assertEquals(report.seals, 2 | 4);
  assertEquals([report.size, report.metadata, report.first], [8192, "hello python", [1, 2, 3, 4]]);
  assertStringIncludes(report.link, "/memfd:to-python");
});

pythonNeed.test("memkit receives Python's send_fds memfd; Python's MSG_CTRUNC and tmpfs files are refused", async () => {
  const before = openFds();
  for (
    const [mode, extra, reason] of [
      ["send", [], undefined],
      ["send-many", ["20"], "truncated"],
      ["send-many", ["2"], "descriptors"],
      ["send-shm", [], "not-memfd"],
    ] as const
  ) {
    using listener = FdListener.listen(tempSocket());
    const py = new Deno.Command("python3", {
      args: [python, mode, listener.path, ...extra],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const conn = await listener.accept({ timeoutMs: 30000 });
    if (reason === undefined) {
      const got = await conn.receive({
        require: ["shrink", "grow"],
        minSize: 8192,
        timeoutMs: 30000,
      });
      using m = got.memfd.map({ access: "r" });
      assertEquals([...m.bytes(0, 4)], [9, 8, 7, 6]);
      assertEquals(new TextDecoder().decode(got.metadata), "from python");
      assertEquals(got.memfd.name, "from-python");
      got.memfd.close();
    } else {
      const e = await assertRejects(() => conn.receive({ timeoutMs: 30000 }), FdRefusedError);
      assertEquals(e.reason, reason, `${mode} ${extra}: ${e.message}`);
      if (mode === "send-many" && extra[0] === "20") assertStringIncludes(e.message, "MSG_CTRUNC");
    }
    conn.close();
    const out = await py.output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  }
  assertEquals(openFds(), before);
});
