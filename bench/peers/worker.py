# A persistent Python peer for bench/peers_bench.ts: reads one request a
# line on stdin, does the job K times, answers one line on stdout (an
# answer starting "error" is a failure). Jobs:
#
#   pagemap <pid> <address> <pages> <k> fresh|into
#       K reads of /proc/<pid>/pagemap decoded into columns with numpy
#       (bench/peers/_pagemap.py); answers "<present> <swapped> <hidden>".
#   smaps <pid> <k>
#       K times psutil.Process(pid).memory_maps(grouped=False); answers the
#       number of mappings of the last.
#   mmap <bytes> <k>
#       K cycles of mmap.mmap(-1, bytes), a write of its first byte, close();
#       answers "ok".
#   shm-create <bytes>
#       creates a multiprocessing.shared_memory segment, writes 1 into the
#       first byte of each page, answers its name (unlinked when the worker
#       exits, however it ends).
#   shm <name> <k>
#       K times: attach the segment <name>, sum it as 32-bit words with
#       numpy, close; answers the sum. Asked of another worker than the one
#       that created the segment.
import mmap
import os
import sys
import traceback

columns = {}
fds = {}
created = []


def pagemap(pid, address, pages, k, mode):
    import _pagemap

    fd = fds.get(pid)
    if fd is None:
        fd = fds[pid] = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    into = None
    if mode == "into":
        into = columns.get(pages)
        if into is None:
            into = columns[pages] = _pagemap.Columns(pages)
    counts = None
    for _ in range(k):
        counts = _pagemap.read(fd, address, pages, into)[3]
    return " ".join(map(str, counts))


def cycles(size, k):
    for _ in range(k):
        m = mmap.mmap(-1, size)
        m[0] = 1
        m.close()
    return "ok"


def unlink_when_gone(path):
    """Removes path once this process is gone, even by SIGKILL (which Deno sends its children
    at exit): a shell in its own session reads a pipe only this process holds."""
    import subprocess

    watch = subprocess.Popen(["/bin/sh", "-c", 'cat >/dev/null; rm -f "$0"', path],
                             stdin=subprocess.PIPE, start_new_session=True)
    created.append(watch)


def shm_create(size):
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory

    seg = shared_memory.SharedMemory(create=True, size=size)
    # Cleaned up by unlink_when_gone, not by the tracker (which warns when it does).
    resource_tracker.unregister(seg._name, "shared_memory")
    unlink_when_gone("/dev/shm" + seg._name)
    np.frombuffer(seg.buf, np.uint8)[::4096] = 1
    return seg.name


def shm(name, k):
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory

    total = 0
    for _ in range(k):
        seg = shared_memory.SharedMemory(name)
        # Python before 3.13 registers an attached segment too, for unlinking at exit.
        resource_tracker.unregister(seg._name, "shared_memory")
        words = np.frombuffer(seg.buf, np.uint32)
        total = int(words.sum(dtype=np.uint64))
        del words
        seg.close()
    return str(total)


def smaps(pid, k):
    import psutil

    process = psutil.Process(pid)
    for _ in range(k):
        n = len(process.memory_maps(grouped=False))
    return str(n)


JOBS = {
    "smaps": lambda a: smaps(int(a[0]), int(a[1])),
    "pagemap": lambda a: pagemap(int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4]),
    "mmap": lambda a: cycles(int(a[0]), int(a[1])),
    "shm-create": lambda a: shm_create(int(a[0])),
    "shm": lambda a: shm(a[0], int(a[1])),
}

try:
    for line in sys.stdin:
        job, *args = line.split()
        try:
            answer = JOBS[job](args)
        except Exception as e:  # the bench shows it
            traceback.print_exc()
            answer = f"error: {e!r}"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
finally:
    for watch in created:
        watch.stdin.close()
        watch.wait()
