// Opening and mapping a character device or a file of debugfs, sysfs or
// tracefs: what mapDevice (src/device.ts) and the kernel-shared pages
// (src/kshared.ts) share. For memkit's own modules; not part of the API.

import { ERRNO, errnoCode, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { hex } from "./_args.ts";
import { lookUp, openLookedUp, STALE_HINT } from "./_gate.ts";
import { roundUp } from "./_validate.ts";
import { mapFdWindow } from "./_fd_window.ts";
import type { Mapping } from "./mapping.ts";

/** What a device path turned out to be. */
export type DeviceKind = "char" | "debugfs" | "sysfs" | "tracefs";

const KINDS: Record<number, DeviceKind> = {
  [MK.DEVICE_CHAR]: "char",
  [MK.DEVICE_DEBUGFS]: "debugfs",
  [MK.DEVICE_SYSFS]: "sysfs",
  [MK.DEVICE_TRACEFS]: "tracefs",
};

/** An open device: close `fd` with `closeDevice`. */
export interface OpenDevice {
  fd: number;
  /** The absolute, normalized path that was checked and opened. */
  path: string;
  kind: DeviceKind;
  /** Whether it was opened read-write. */
  write: boolean;
  /** A character device's major and minor numbers (0 for a file). */
  major: number;
  minor: number;
}

function openRefusal(path: string, errno: number, kind: number): string | undefined {
  switch (errnoCode(errno)) {
    case "ENODEV":
      return kind === MK.DEVICE_REGULAR
        ? "it is a regular file, not a device or a debugfs/sysfs file; map it with mapFile(), " +
          "which guards a file's mapping against SIGBUS"
        : "it is no character device nor a file of debugfs, sysfs or tracefs (a block device, " +
          "FIFO or socket); mapDevice maps only what a driver's mmap serves";
    case "EISDIR":
      return "name the device or the file inside it";
    case "ENOENT":
      return path.startsWith("/sys/kernel/debug/")
        ? "nothing there: is the driver loaded, and debugfs mounted " +
          "(mount -t debugfs none /sys/kernel/debug)?"
        : undefined;
    case "EACCES":
      return path.startsWith("/sys/kernel/debug/")
        ? "debugfs is readable by root only (/sys/kernel/debug is mode 0700); run as root"
        : "this user may not open it (its mode and owner); run as a user who may";
    case "EPERM":
      return "the driver or a security module refused to open it (a missing capability, " +
        "or a kernel lockdown, which closes debugfs)";
    case "ESTALE":
      return STALE_HINT;
  }
  return undefined;
}

/**
 * Checks the permissions of `path` (read, and write for `write`), looks it
 * up and opens it: only a character device or a debugfs, sysfs or tracefs
 * file. Each refusal says what the path is and what to do.
 */
export function openDevice(path: string, write: boolean): OpenDevice {
  const looked = lookUp(
    write ? "mapDeviceWrite" : "mapDevice",
    path,
    true,
    (errno) => openRefusal(path, errno, 0),
  );
  const info = new BigUint64Array(4);
  const ret = openLookedUp(
    looked,
    (cpath, pathFd) => lib().mk_device_open(cpath, write ? MK.DEVICE_WRITE : 0, pathFd, info),
  );
  if (ret < 0n) {
    const errno = Number(-ret);
    throw new MemkitError(errno, "open", {
      path: looked.path,
      hint: openRefusal(looked.path, errno, Number(info[0])),
    });
  }
  return {
    fd: Number(ret),
    path: looked.path,
    kind: KINDS[Number(info[0])] ?? "char",
    write,
    major: Number(info[2]),
    minor: Number(info[3]),
  };
}

/** Closes what openDevice opened. */
export function closeDevice(dev: OpenDevice): void {
  lib().mk_core_close(dev.fd);
}

function mapRefusal(
  dev: OpenDevice,
  errno: number,
  offset: number,
  length: number,
  access: "r" | "rw",
): string | undefined {
  const window = `${length} bytes at offset ${hex(offset)}`;
  switch (errnoCode(errno)) {
    case "ENODEV":
      return `its driver implements no mmap (${
        dev.kind === "char" ? "a device" : `a ${dev.kind} file`
      } that can only be read or written, not mapped)`;
    case "EPERM":
      return access === "rw"
        ? `the driver refuses a writable mapping of ${window} (a read-only page, as the ` +
          'vDSO\'s data page is); map it with access "r"'
        : `the driver refused to map ${window}`;
    case "EACCES":
      return access === "rw"
        ? `the driver refuses a writable mapping of ${window}; map it with access "r"`
        : `the driver refused to map ${window}`;
    case "EINVAL":
    case "ENXIO":
    case "EOVERFLOW":
      return `the driver refuses ${window} (drivers map fixed pages: ` +
        "see what its documentation says it maps)";
  }
  return undefined;
}

/** Maps `[offset, offset + length)` of an open device as a Mapping. */
export function mapOpenDevice(
  dev: OpenDevice,
  offset: number,
  length: number,
  access: "r" | "rw",
): Mapping {
  if (dev.write && dev.kind === "char" && dev.major === 1 && dev.minor !== 1 && offset !== 0) {
    // Of the kernel's memory devices (major 1), a shared mapping of /dev/zero
    // (and its kin) opened for writing is anonymous memory the size of the
    // mapping, numbered from the mmap offset: every page of it past offset 0
    // faults (SIGBUS). (Opened read-only, the kernel makes the mapping private.)
    throw new MemkitError(ERRNO.EINVAL, "map", {
      path: `${dev.path}@${hex(offset)}`,
      hint: "a shared mapping of this memory device opened for writing is anonymous memory " +
        "of the mapping's size, whose pages at any offset past 0 would fault (SIGBUS); map it " +
        'at offset 0, or with access "r"',
    });
  }
  return mapFdWindow({
    fd: dev.fd,
    offset,
    span: roundUp(length, pageSize()),
    length,
    access,
    name: offset === 0 ? dev.path : `${dev.path}@${hex(offset)}`,
    device: true,
    hint: (errno) => mapRefusal(dev, errno, offset, length, access),
  });
}
