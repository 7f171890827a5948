# The numpy peer of memkit's Pagemap.read (cbits/pagemap.c): one pread of
# the entries, decoded into the same columns (raw, frame, flags) and counts
# (present, swapped, present with PFN 0), with numpy's whole-array ops.
#
# flags uses memkit's bits: 1 present, 2 swapped (not a guard marker), 4 file
# or shared, 8 exclusive, 16 soft-dirty, 32 uffd-wp, 64 guard.
import os

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE")
PFN_MASK = np.uint64((1 << 55) - 1)
SHIFT = np.uint64(55)
FIVE = np.uint64(5)


def _table():
    # Index: bits 55..63 of an entry; value: memkit's flag byte.
    lut = np.zeros(512, np.uint8)
    for i in range(512):
        soft_dirty, exclusive, uffd_wp, guard = i & 1, i >> 1 & 1, i >> 2 & 1, i >> 3 & 1
        file, swap, present = i >> 6 & 1, i >> 7 & 1, i >> 8 & 1
        b = 1 if present else (2 if swap and not guard else 0)
        b |= 4 * file | 8 * exclusive | 16 * soft_dirty | 32 * uffd_wp | 64 * guard
        lut[i] = b
    return lut


FLAGS = _table()


class Columns:
    """Preallocated columns, the peer of memkit's `{ into }`."""

    def __init__(self, pages):
        self.raw = np.empty(pages, np.uint64)
        self.frame = np.empty(pages, np.float64)
        self.flags = np.empty(pages, np.uint8)
        self.scratch = np.empty(pages, np.uint64)


def read(fd, vaddr, pages, into=None):
    """Returns (raw, frame, flags, (present, swapped, hidden)); fresh arrays unless `into`."""
    offset = vaddr // PAGE * 8
    if into is None:
        raw = np.frombuffer(os.pread(fd, pages * 8, offset), np.uint64)
        frame = np.empty(pages, np.float64)
        flags = np.empty(pages, np.uint8)
        scratch = np.empty(pages, np.uint64)
    else:
        raw, frame, flags, scratch = into.raw, into.frame, into.flags, into.scratch
        if os.preadv(fd, [raw], offset) != pages * 8:
            raise OSError("short read of the pagemap")
    np.right_shift(raw, SHIFT, out=scratch)
    # The top 9 bits index a table; as intp, since take() converts other index types.
    np.take(FLAGS, scratch.view(np.intp), out=flags)
    np.bitwise_and(raw, PFN_MASK, out=scratch)  # the PFN, or the swap entry
    np.copyto(frame, scratch, casting="unsafe")
    kind = flags & 3
    swapped = np.flatnonzero(kind == 2)
    if swapped.size:
        frame[swapped] = scratch[swapped] >> FIVE
    absent = np.flatnonzero(kind == 0)
    if absent.size:
        frame[absent] = 0
    present = kind == 1
    counts = (
        int(np.count_nonzero(present)),
        int(swapped.size),
        int(np.count_nonzero(present & (scratch == 0))),
    )
    return raw, frame, flags, counts
