// A read-only view of live memory, to hand to code that must see your state but never change
// it (a plugin, a renderer, a stats reader), and a snapshot of it when a stable copy is needed.
//
//   deno run --allow-ffi --v8-flags=--js-immutable-arraybuffer examples/readonly_view.ts
//
// The view is an alias: the same pages at a second address, mapped PROT_READ. It costs no
// copy and shows every write the moment it is made; its buffer is an immutable ArrayBuffer
// (hence the V8 flag), so a write through it is a TypeError, never a fault.
import { alias, MemFd } from "@memkit/memkit";

using fd = MemFd.create("live-state", { size: 4096 });
using state = fd.map({ access: "rw" }); // the owner's mapping
using shown = alias(state, { access: "r" }); // what the plugin gets

const counters = state.view(Uint32Array, 0, 4); // the owner writes here
const view = shown.view(Uint32Array, 0, 4); // the plugin reads here: the same memory

/** A plugin: reads the live counters, and tries to cheat. */
function plugin(counters: Uint32Array): string {
  const seen = `plugin sees [${counters.join(", ")}]`;
  try {
    counters[0] = 999;
    return `${seen}; its write went through (this should not happen)`;
  } catch (e) {
    return `${seen}; its write was refused: ${(e as Error).name}: ${(e as Error).message}`;
  }
}

counters.set([1, 2, 3, 4]);
console.log(plugin(view));
counters[0] = 42; // no copy to refresh: the plugin's view shows it at once
console.log(`after the owner's write the view reads ${view[0]}`);

// A snapshot: a copy (read()), which the owner's later writes do not change.
const snapshot = new Uint32Array(shown.read(0, 16).buffer);
counters[0] = 43;
console.log(`snapshot [${snapshot.join(", ")}], live [${view.join(", ")}]`);
console.log(`the owner's counter is still ${counters[0]}: the plugin changed nothing`);
