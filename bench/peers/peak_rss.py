# Peak memory of a first readSmaps() against psutil's (issue 11): a child
# with 10,000 mappings in all (VMAs: anonymous pages of alternating
# protections, as bench/c/introspect.c's bi_spawn_vmas(5000) makes), then rounds that alternate one fresh
# `deno run bench/peers/first_smaps.ts <pid>` and one fresh
# `python3 bench/peers/psutil_smaps.py <pid>`, each one's peak RSS from
# wait4() (ru_maxrss: the kernel's high-water mark of the process, VmHWM)
# and its wall time. Prints each round, the medians, the ratios and the load.
#
#   python3 bench/peers/peak_rss.py [--rounds 7] [--mappings 10000]
#       [--deno PATH] [--deno-arg ARG]... [--script PATH]
#
# The psutil side runs under this interpreter (add PYTHONPATH for a psutil
# installed elsewhere, e.g. /usr/lib/python3/dist-packages).
import argparse
import ctypes
import mmap
import os
import shutil
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--mappings", type=int, default=10_000)
ap.add_argument("--deno", default=os.environ.get("DENO", "deno"))
ap.add_argument("--deno-arg", action="append", default=[])
ap.add_argument("--script", default=os.path.join(here, "first_smaps.ts"))
args = ap.parse_args()


def spawn_vmas(n):
    """A child of about n mappings: its own, and pages of alternating protections."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        own = sum(1 for _ in open("/proc/self/maps"))
        pages = max(n - own, 2)
        m = mmap.mmap(-1, pages * 4096, flags=mmap.MAP_PRIVATE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        for i in range(0, pages, 2):
            if libc.mprotect(base + i * 4096, 4096, mmap.PROT_READ) != 0:
                os._exit(1)
        os.write(w, b"1")
        while True:
            time.sleep(3600)
    os.close(w)
    if os.read(r, 1) != b"1":
        sys.exit("the child could not map")
    return pid


def run(argv):
    """(peak RSS in MiB, wall seconds) of one run of argv, its output dropped."""
    t = time.perf_counter()
    pid = os.posix_spawn(
        shutil.which(argv[0]) or argv[0],
        argv,
        dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)],
    )
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"{argv} failed: {status}")
    return usage.ru_maxrss / 1024, wall


child = spawn_vmas(args.mappings)
try:
    count = sum(1 for _ in open(f"/proc/{child}/maps"))
    print(f"the child has {count} mappings")
    n = str(count - 10)
    memkit = [args.deno, "run", "--allow-ffi", f"--allow-read=/proc/{child}/smaps",
              *args.deno_arg, args.script, str(child), n]
    psutil = [sys.executable, os.path.join(here, "psutil_smaps.py"), str(child), n]
    run(memkit), run(psutil)  # warm the page cache of both
    print(f"load before: {os.getloadavg()}")
    ours, theirs = [], []
    for i in range(args.rounds):
        a = run(memkit)
        b = run(psutil)
        ours.append(a)
        theirs.append(b)
        print(f"round {i}: memkit {a[0]:.1f} MiB {a[1] * 1e3:.0f} ms, "
              f"psutil {b[0]:.1f} MiB {b[1] * 1e3:.0f} ms")
    print(f"load after: {os.getloadavg()}")
    m_rss = statistics.median(r for r, _ in ours)
    p_rss = statistics.median(r for r, _ in theirs)
    m_t = statistics.median(t for _, t in ours)
    p_t = statistics.median(t for _, t in theirs)
    print(f"median peak RSS: memkit {m_rss:.1f} MiB, psutil {p_rss:.1f} MiB, "
          f"ratio {m_rss / p_rss:.2f}")
    print(f"median wall: memkit {m_t * 1e3:.0f} ms, psutil {p_t * 1e3:.0f} ms, "
          f"ratio {m_t / p_t:.2f}")
finally:
    os.kill(child, 9)
    os.waitpid(child, 0)
