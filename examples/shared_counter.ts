// A counter shared by several processes under a SharedMutex, which survives a holder killed
// with SIGKILL in the middle of an update: the next locker is told, repairs, and goes on.
//
//   deno run --allow-ffi --allow-read=/dev/shm/memkit-example-counter --allow-write=/dev/shm/memkit-example-counter --allow-run=deno examples/shared_counter.ts
//
// The processes share a POSIX shared memory segment by name; each peer is this file again with
// a role argument. Layout: the mutex at 0 (64 bytes), the counter at 64, at 68 what the holder
// added and has not committed yet (an undo log of one entry).
import { SharedMemory, SharedMutex } from "@memkit/memkit";

const name = "memkit-example-counter", workers = 2, rounds = 5000;
const [role] = Deno.args;
const shm = SharedMemory.create(name, { size: 4096, exclusive: false }); // or open it
const m = shm.map();
const [counter, pending] = [m.view(Uint32Array, 64, 1), m.view(Uint32Array, 68, 1)];

if (role === "holder") {
  const mutex = SharedMutex.attach(m, 0);
  mutex.lock();
  pending[0] = 1000, counter[0] += 1000; // logged and applied: the commit never comes
  console.log("locked");
  setInterval(() => {}, 1000); // until killed
} else if (role === "worker") {
  const mutex = SharedMutex.attach(m, 0);
  let recovered = 0;
  for (let i = 0; i < rounds; i++) {
    const { ownerDied } = mutex.lock({ timeoutMs: 30_000 });
    if (ownerDied) { // the holder died holding it: undo what it left half done
      counter[0] -= pending[0], pending[0] = 0, recovered++;
      mutex.markConsistent();
    }
    pending[0] = 1, counter[0] += 1, pending[0] = 0; // log, apply, commit
    mutex.unlock();
  }
  console.log(recovered);
} else {
  try {
    SharedMutex.init(m, 0).close();
    counter[0] = 0, pending[0] = 0;
    const flags = [
      "--allow-ffi",
      `--allow-read=/dev/shm/${name}`,
      `--allow-write=/dev/shm/${name}`,
    ];
    const peer = (role: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", ...flags, import.meta.filename!, role],
        stdout: "piped",
      }).spawn();

    const holder = peer("holder");
    const lines = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    for (let seen = ""; !seen.includes("locked");) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the holder exited before it locked");
      seen += value;
    }
    const peers = Array.from({ length: workers }, () => peer("worker"));
    holder.kill("SIGKILL"); // dies holding the lock, its update half done
    console.log(
      `holder ${holder.pid} killed with ${(await holder.status).signal} holding the lock`,
    );
    await lines.cancel();

    let recovered = 0;
    for (const p of peers) {
      const out = await p.output();
      if (!out.success) throw new Error(`a worker failed (exit code ${out.code})`);
      recovered += Number(new TextDecoder().decode(out.stdout));
    }
    const expected = workers * rounds;
    console.log(`recovered from a dead holder ${recovered} time(s)`);
    console.log(
      `total ${counter[0]} = ${workers} workers x ${rounds} increments: ` +
        (counter[0] === expected ? "exact" : `WRONG (expected ${expected})`),
    );
    if (counter[0] !== expected) Deno.exitCode = 1;
  } finally {
    m.close(), shm.close(), SharedMemory.unlink(name);
  }
}
