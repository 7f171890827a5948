// The second process of the tour's sharing section (cli/tour.ts): connects
// to the socket at its argument, receives a memfd (refused unless sealed
// against shrinking and growing), reads the tour's message at offset 0 and
// writes its reply at offset 1024 of the shared memory.
import { FdConnection } from "../mod.ts";

async function peer(path: string): Promise<void> {
  using conn = FdConnection.connect(path);
  const { memfd, metadata } = await conn.receive({
    require: ["shrink", "grow"],
    minSize: 4096,
    access: "rw",
    timeoutMs: 10000,
  });
  using _ = memfd;
  using m = memfd.map({ length: 4096 });
  const bytes = m.bytes();
  const text = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
  const reply =
    `pid ${Deno.pid} read "${text}" (metadata "${new TextDecoder().decode(metadata)}", ` +
    `seals ${memfd.seals.join(", ")})`;
  new TextEncoder().encodeInto(reply + "\0", bytes.subarray(1024));
}

// Only when run as the peer (the doc-test run imports every cli/ module).
if (import.meta.main) await peer(Deno.args[0]);
