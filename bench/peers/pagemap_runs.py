# The Python + numpy peer of `memkit pagemap <pid> <start>+<length>`: reads
# the range's pagemap entries (bench/peers/_pagemap.py), finds the runs of
# pages with the same flags and consecutive frames with numpy, and prints
# one line a run in memkit's format, then the totals.
#
#   python3 pagemap_runs.py <pid> <start> <length>   (decimal or 0x numbers)
import os
import sys

import numpy as np

import _pagemap

NAMES = ["present", "swapped", "file", "exclusive", "soft-dirty", "uffd-wp", "guard"]
UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


def size(n):
    exponent = 0
    while n >= 1024 and exponent < len(UNITS) - 1:
        n /= 1024
        exponent += 1
    return f"{float(f'{n:.3g}'):g} {UNITS[exponent]}"


pid, start, length = int(sys.argv[1]), int(sys.argv[2], 0), int(sys.argv[3], 0)
page = _pagemap.PAGE
start -= start % page
pages = (length + page - 1) // page
fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
raw, frame, flags, (present, swapped, hidden) = _pagemap.read(fd, start, pages)
os.close(fd)
visible = present > hidden or present == 0

used = np.flatnonzero(flags)  # absent pages: the gaps between runs say so
f = flags[used]
pfn = np.where((f & 1).astype(bool) & visible, frame[used], -1.0)
has = pfn >= 0
new = np.ones(used.size, bool)
new[1:] = (
    (used[1:] != used[:-1] + 1) | (f[1:] != f[:-1]) | (has[1:] != has[:-1]) |
    (has[1:] & (pfn[1:] != pfn[:-1] + 1))
)
heads = np.flatnonzero(new)
lengths = np.diff(np.append(heads, used.size))
names = {b: ",".join(n for i, n in enumerate(NAMES) if b >> i & 1) for b in np.unique(f).tolist()}

print(f"{pid}: {hex(start)}-{hex(start + pages * page)} {pages} pages ({size(pages * page)}), "
      "found with entries")
print(f"{'vaddr':>16} {'pages':>8} {'size':>10} {'pfn':>12}  flags")
for h, n in zip(heads.tolist(), lengths.tolist()):
    b = int(f[h])
    p = pfn[h]
    shown = hex(int(p)) if p >= 0 else ("hidden" if b & 1 else "-")
    print(f"{start + int(used[h]) * page:16x} {n:8d} {size(n * page):>10} {shown:>12}  {names[b]}")
print(f"{present} present ({size(present * page)}), {swapped} swapped, "
      f"{pages - present - swapped} not in memory")
