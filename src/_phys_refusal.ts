/**
 * Why the kernel refused to open or map a memory device, from what this
 * process may read of `/proc/iomem` and the lockdown state. For memkit's own
 * modules (`phys.ts`); not part of the public API.
 *
 * @module
 */

import { check, errnoCode } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { hex } from "./_proc.ts";
import { type PhysicalRange, physicalRanges } from "./iomem.ts";
import { queryPermission } from "./permissions.ts";

const decoder = new TextDecoder();

function granted(path: string): boolean {
  return queryPermission({ name: "read", path }) === "granted";
}

/**
 * The kernel's lockdown mode (`none`, `integrity` or `confidentiality`), or
 * `undefined` when it cannot be read: memkit reads it (natively) only when
 * `--allow-read=/sys/kernel/security/lockdown` is granted, and never prompts.
 * Also what `memkit doctor` reports (`doctor.ts`).
 */
export function lockdownMode(): string | undefined {
  if (!granted("/sys/kernel/security/lockdown")) return undefined;
  try {
    // One line ("none [integrity] confidentiality"): a page holds it.
    const buf = new Uint8Array(4096);
    const n = check(lib().mk_phys_lockdown(buf, BigInt(buf.length)), "read", {
      path: "/sys/kernel/security/lockdown",
    });
    return /\[(\w+)\]/.exec(decoder.decode(buf.subarray(0, n)))?.[1];
  } catch {
    return undefined;
  }
}

/** The ranges, when the caller may and the kernel shows them; else undefined. */
function rangesIfVisible(): PhysicalRange[] | undefined {
  if (!granted("/proc/iomem")) return undefined;
  try {
    return physicalRanges();
  } catch {
    return undefined;
  }
}

/** Why the kernel refused `[start, end)` with EPERM, from `/proc/iomem`. */
export function permHint(device: string, start: number, end: number): string {
  const span = `${hex(start)}-${hex(end - 1)}`;
  if (device !== "/dev/mem") {
    return `the device "${device}" refused ${span}`;
  }
  const ranges = rangesIfVisible();
  if (!ranges) {
    return `${span} is System RAM (CONFIG_STRICT_DEVMEM lets /dev/mem reach only the first ` +
      "1 MiB of RAM) or a range a driver claimed (CONFIG_IO_STRICT_DEVMEM; boot with " +
      "iomem=relaxed to lift that one); grant --allow-read=/proc/iomem for the exact reason";
  }
  const overlaps = ranges.filter((r) => r.start < end && start < r.end);
  const ram = overlaps.find((r) => r.name === "System RAM");
  if (ram) {
    return `${span} is System RAM (${hex(ram.start)}-${hex(ram.end - 1n)} in /proc/iomem), ` +
      "which CONFIG_STRICT_DEVMEM keeps from /dev/mem beyond the first 1 MiB; only a kernel " +
      "built without STRICT_DEVMEM allows it (read a process's own memory through its mappings, " +
      "and translate addresses with the pagemap instead)";
  }
  const claimed = overlaps.filter((r) => r.depth > 0 || !/^(Reserved|PCI Bus)/.test(r.name))
    .at(-1);
  if (claimed) {
    return `${span} is claimed by "${claimed.name}" (${hex(claimed.start)}-${
      hex(claimed.end - 1n)
    } in /proc/iomem), and CONFIG_IO_STRICT_DEVMEM keeps ranges a driver claimed from ` +
      "/dev/mem; unbind the driver, or boot with iomem=relaxed";
  }
  return `the kernel refused ${span} (CONFIG_STRICT_DEVMEM or CONFIG_IO_STRICT_DEVMEM)`;
}

/** Why the kernel refused to open `device` with `errno`, when memkit can say. */
export function openHint(device: string, errno: number): string | undefined {
  switch (errnoCode(errno)) {
    case "ENOENT":
      return device === "/dev/mem"
        ? "this kernel was built without CONFIG_DEVMEM (or /dev has no such node), so " +
          "physical memory cannot be reached from user space here; boot a kernel with " +
          "CONFIG_DEVMEM=y (most distribution kernels have it)"
        : undefined;
    case "EACCES":
      return `${device} is readable only by root (mode 0640, and CAP_SYS_RAWIO is also ` +
        "needed); run as root";
    case "EPERM": {
      const mode = lockdownMode();
      if (mode && mode !== "none") {
        return `the kernel is locked down ("${mode}" in /sys/kernel/security/lockdown), ` +
          "which closes /dev/mem to everyone, root included, until a reboot without lockdown " +
          "(Secure Boot turns it on; so do lockdown= on the command line and writes to that file)";
      }
      return mode === "none"
        ? "opening it needs CAP_SYS_RAWIO, which this process lacks (a container or setpriv " +
          "may have dropped it)"
        : "opening it needs CAP_SYS_RAWIO, which this process may lack, or the kernel is " +
          "locked down (grant --allow-read=/sys/kernel/security/lockdown to know which)";
    }
    case "ENODEV":
      return "not a character device: memkit opens only memory devices such as /dev/mem";
    case "EROFS":
      return "of the kernel's memory devices (major 1) only /dev/mem maps physical memory; a " +
        "writable mapping of the others (/dev/zero) is anonymous memory that faults past its " +
        "size, so memkit opens them read-only only";
  }
  return undefined;
}
