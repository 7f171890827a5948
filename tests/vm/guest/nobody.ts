// Run in the guest as uid 65534 by phys_guest_test.ts: opens /dev/mem and
// prints what memkit threw, as JSON.
import { MemkitError, PhysicalMemory } from "../../../mod.ts";

try {
  PhysicalMemory.open().close();
  console.log(JSON.stringify({ code: "opened" }));
} catch (e) {
  console.log(
    JSON.stringify({
      code: e instanceof MemkitError ? e.code : (e as Error).name,
      message: (e as Error).message,
    }),
  );
}
