// flags: --allow-ffi --allow-run=$DENO,unshare,cat --allow-read=mod.ts,src,ffi,build,tests --v8-flags=--js-immutable-arraybuffer
//
// Identity words (pid | start time << 32, the owners of SharedMutex and
// SeqLock writers) on a machine that has been up for days: the start time is
// then above 2^21 clock ticks and the word above 2^53, beyond what a
// JavaScript number holds exactly. A time namespace with a boot time 100
// days back (unshare --time --boottime, Linux 5.6+, root) makes such a
// machine of this one.
import { assert, assertEquals } from "@std/assert";
import { probed } from "./fixtures/skip.ts";

const DENO = Deno.execPath();
const DAYS_100 = 100 * 86_400;

function timeNamespace(): string | false {
  try {
    const out = new Deno.Command("unshare", {
      args: ["--time", "--boottime", String(DAYS_100), "--fork", "cat", "/proc/self/stat"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) {
      return `unshare --time is refused here (${new TextDecoder().decode(out.stderr).trim()})`;
    }
    const stat = new TextDecoder().decode(out.stdout);
    const start = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    return start > 2 ** 21
      ? false
      : "a time namespace does not move /proc/<pid>/stat's start time here";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "unshare (util-linux) is not installed";
    throw e;
  }
}

probed({
  name:
    "an identity word above 2^53 (a machine up for days) stays exact: the owner of a lock is itself, alive",
  skip: timeNamespace(),
  fn() {
    const out = new Deno.Command("unshare", {
      args: [
        "--time",
        "--boottime",
        String(DAYS_100),
        "--fork",
        DENO,
        "run",
        "--allow-ffi",
        "--allow-run=cat",
        "--allow-read=mod.ts,src,ffi,build",
        "--v8-flags=--js-immutable-arraybuffer",
        "tests/fixtures/identity_child.ts",
      ],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `the child failed: ${stderr}`);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert(r.catStart > 2 ** 21, `the start time ${r.catStart} is above 2^21 ticks`);
    assert(BigInt(r.word) > 2n ** 53n, "the word is beyond a number's exact range");
    assertEquals(r.wordPid, r.pid);
    // cat started after this process, by a few ticks at most.
    assert(r.wordStart <= r.catStart && r.catStart - r.wordStart < 1000, JSON.stringify(r));
    assertEquals(r.inMemory, r.word, "the owner word in memory is this process's identity");
    assertEquals(r.owner, { pid: r.pid, alive: true, self: true });
  },
});
