# Peak memory of a first readSmaps() against psutil's (issue 11): a child
# of 10,000 mappings in all (VMAs: anonymous pages of alternating
# protections, as bench/c/introspect.c's bi_spawn_vmas(5000) makes), then
# rounds that alternate one fresh `deno run bench/peers/first_smaps.ts
# <pid>` and one fresh `python3 bench/peers/psutil_smaps.py <pid>`, each
# one's peak RSS from wait4() (ru_maxrss: the kernel's high-water mark of
# the process, VmHWM, file pages included) and its wall time. Prints each
# round, the medians, the ratios and the load. (posix_spawn starts a child
# in this process's memory: a child's figure is at least this driver's
# peak, about 10 MiB, below either side's.)
#
#   python3 bench/peers/peak_rss.py [--rounds 7] [--mappings 10000]
#       [--deno PATH] [--deno-arg ARG]... [--script PATH]...
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
ap.add_argument("--script", action="append", default=[],
                help="memkit's side (repeatable: each alternates with psutil); "
                "bench/peers/first_smaps.ts by default")
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
    scripts = args.script or [os.path.join(here, "first_smaps.ts")]
    memkit = [[args.deno, "run", "--allow-ffi", f"--allow-read=/proc/{child}/smaps",
               *args.deno_arg, script, str(child), n] for script in scripts]
    psutil = [sys.executable, os.path.join(here, "psutil_smaps.py"), str(child), n]
    for m in memkit:
        run(m)  # the page cache, and Deno's cache of the modules
    run(psutil)
    print(f"load before: {os.getloadavg()}")
    ours, theirs = [[] for _ in memkit], []
    for i in range(args.rounds):
        line = f"round {i}:"
        for j, m in enumerate(memkit):
            a = run(m)
            ours[j].append(a)
            line += f" memkit {a[0]:.1f} MiB {a[1] * 1e3:.0f} ms,"
        b = run(psutil)
        theirs.append(b)
        print(f"{line} psutil {b[0]:.1f} MiB {b[1] * 1e3:.0f} ms")
    print(f"load after: {os.getloadavg()}")
    p_rss = statistics.median(r for r, _ in theirs)
    p_t = statistics.median(t for _, t in theirs)
    print(f"median psutil: {p_rss:.1f} MiB, {p_t * 1e3:.0f} ms")
    for script, samples in zip(scripts, ours):
        m_rss = statistics.median(r for r, _ in samples)
        m_t = statistics.median(t for _, t in samples)
        print(f"median memkit ({os.path.relpath(script, repo)}): {m_rss:.1f} MiB, "
              f"{m_t * 1e3:.0f} ms; ratio to psutil: peak RSS {m_rss / p_rss:.2f}, "
              f"wall {m_t / p_t:.2f}")
finally:
    os.kill(child, 9)
    os.waitpid(child, 0)
