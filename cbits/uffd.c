/* uffd.c: lazy copies served by a userfaultfd handler thread.
 *
 * A lazy view is a private anonymous range registered for missing faults;
 * its handler, a pthread of its own, fills each page on its first touch
 * (UFFDIO_COPY, UFFDIO_ZEROPAGE for holes). The handler never reads the
 * source directly: it copies it into a private bounce buffer with
 * process_vm_readv (on its own pid or another's), which answers EFAULT or
 * ESRCH for a source that went away instead of raising SIGSEGV, and the
 * page is then resolved with zeros and the error recorded. No fault is ever
 * left waiting: every failed resolution ends in UFFDIO_WAKE, and stopping
 * wakes the whole range, then closes the descriptor (which wakes the rest). */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The UAPI values newer than the installed headers (Linux 6.1's here):
 * include/uapi/linux/userfaultfd.h of the kernel. */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC 0xAA
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif

/* How long stopping waits for a handler stuck in a source read (a source
 * that is itself a range whose faults nobody serves) before it leaves the
 * thread to free itself when that read returns. */
#define MK_UFFD_JOIN_MS 2000

/* One stretch of the view: `length` bytes at `at` in the view, read from
 * `source` (MK_UFFD_HOLE: zeros). */
struct mk_uffd_chunk {
  uint64_t at;
  uint64_t source;
  uint64_t length;
};

struct mk_uffd {
  int fd;     /* the userfaultfd */
  int stopfd; /* an eventfd: readable once the handler must stop */
  pthread_t thread;
  pid_t pid; /* whose memory the chunks name */
  uint64_t base, span, length, pages, page;
  uint64_t readahead; /* pages per fault, at least 1 */
  uint32_t count;
  struct mk_uffd_chunk *chunks;
  uint8_t *filled; /* one byte per page: 1 once the handler or a prefetch filled it */
  uint8_t *buffer; /* the handler thread's bounce buffer: readahead pages */
  int minor;       /* a memfd alias: minor faults, resolved with UFFDIO_CONTINUE */
  int track;       /* a write tracker: WP and missing faults recorded in `dirty` */
  uint64_t *dirty; /* a tracker's bitmap: bit p set once page p was written */
  pthread_mutex_t lock; /* a tracker's: a fault's record and resolution against a reset */
  int refs;        /* the owner and the thread; the last one to let go frees */
  int stopping;
  uint64_t stats[MK_UFFD_STATS_WORDS];
};

/* Live handler threads in this process, for the C tests. */
static int live_threads;

int mk_uffd_live_threads(void) { return __atomic_load_n(&live_threads, __ATOMIC_ACQUIRE); }

static void bump(struct mk_uffd *u, int word, uint64_t by) {
  __atomic_fetch_add(&u->stats[word], by, __ATOMIC_RELAXED);
}

static void record(struct mk_uffd *u, int err) {
  bump(u, MK_UFFD_STAT_ERRORS, 1);
  __atomic_store_n(&u->stats[MK_UFFD_STAT_LAST_ERROR], (uint64_t)err, __ATOMIC_RELAXED);
}

/* Opens a userfaultfd the way this kernel and this user allow: the system
 * call (kernel faults too), /dev/userfaultfd (its permission is the gate),
 * then, unless `kernel` insists on kernel faults, the system call with
 * UFFD_USER_MODE_ONLY. `errs` gets -errno of each refused way (0: not
 * tried or worked); `via` the way that worked. Returns the descriptor. */
static int open_uffd(int kernel, int64_t errs[3], int *via) {
  errs[0] = errs[1] = errs[2] = 0;
  *via = MK_UFFD_NONE;
  long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    *via = MK_UFFD_SYSCALL;
    return (int)fd;
  }
  errs[0] = -(int64_t)errno;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev >= 0) {
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    errs[1] = fd < 0 ? -(int64_t)errno : 0;
    close(dev);
    if (fd >= 0) {
      *via = MK_UFFD_DEVICE;
      return (int)fd;
    }
  } else {
    errs[1] = -(int64_t)errno;
  }
  if (kernel) return (int)errs[0];
  fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (fd >= 0) {
    *via = MK_UFFD_USER_ONLY;
    return (int)fd;
  }
  errs[2] = -(int64_t)errno;
  return (int)errs[0];
}

MK_API int64_t mk_uffd_probe(uint64_t *out) {
  if (out == NULL) return -EINVAL;
  memset(out, 0, MK_UFFD_PROBE_WORDS * sizeof *out);
  struct stat st;
  if (stat("/dev/userfaultfd", &st) == 0) {
    out[MK_UFFD_PROBE_DEVICE_MODE] = st.st_mode;
    out[MK_UFFD_PROBE_DEVICE_UID] = st.st_uid;
    out[MK_UFFD_PROBE_DEVICE_GID] = st.st_gid;
  }
  int64_t errs[3];
  int via;
  int fd = open_uffd(0, errs, &via);
  out[MK_UFFD_PROBE_SYSCALL_ERR] = (uint64_t)-errs[0];
  out[MK_UFFD_PROBE_DEVICE_ERR] = (uint64_t)-errs[1];
  out[MK_UFFD_PROBE_USER_ERR] = (uint64_t)-errs[2];
  out[MK_UFFD_PROBE_VIA] = (uint64_t)via;
  if (fd < 0) return 0;
  /* A throwaway descriptor: UFFDIO_API can be done once per descriptor, and
   * with features 0 the kernel answers every feature it has. */
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  int64_t ret = 0;
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    ret = -(int64_t)errno;
  } else {
    out[MK_UFFD_PROBE_FEATURES] = api.features;
    out[MK_UFFD_PROBE_IOCTLS] = api.ioctls;
  }
  close(fd);
  return ret;
}

static void wake(struct mk_uffd *u, uint64_t off, uint64_t len) {
  struct uffdio_range r = {.start = u->base + off, .len = len};
  ioctl(u->fd, UFFDIO_WAKE, &r);
}

static void mark(struct mk_uffd *u, uint64_t p0, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) __atomic_store_n(&u->filled[p0 + i], 1, __ATOMIC_RELAXED);
}

/* The index of the chunk holding view offset `off` (the last with at <= off). */
static uint32_t chunk_at(const struct mk_uffd *u, uint64_t off) {
  uint32_t lo = 0, hi = u->count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (u->chunks[mid].at <= off) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* Whether [off, off + len) of the view has no source bytes (holes and past the chunks). */
static int is_hole(const struct mk_uffd *u, uint64_t off, uint64_t len) {
  for (uint32_t i = chunk_at(u, off); i < u->count; i++) {
    const struct mk_uffd_chunk *c = &u->chunks[i];
    if (c->at >= off + len) break;
    if (c->at + c->length > off && c->source != MK_UFFD_HOLE) return 0;
  }
  return 1;
}

/* Reads the source bytes of view range [off, off + len) into buf (holes and
 * the tail past the chunks as zeros) with process_vm_readv. Returns how many
 * bytes from `off` on are right; on a short read, errno says why. */
static uint64_t read_source(const struct mk_uffd *u, uint64_t off, uint64_t len, uint8_t *buf) {
  struct iovec local[64], remote[64];
  memset(buf, 0, (size_t)len);
  uint64_t end = off + len;
  uint32_t i = chunk_at(u, off);
  while (i < u->count && u->chunks[i].at < end) {
    int n = 0;
    uint64_t first = 0, want = 0;
    for (; i < u->count && u->chunks[i].at < end && n < 64; i++) {
      const struct mk_uffd_chunk *c = &u->chunks[i];
      uint64_t a = c->at > off ? c->at : off;
      uint64_t b = c->at + c->length < end ? c->at + c->length : end;
      if (b <= a || c->source == MK_UFFD_HOLE) continue;
      if (n == 0) first = a;
      local[n].iov_base = buf + (a - off);
      local[n].iov_len = (size_t)(b - a);
      remote[n].iov_base = (void *)(uintptr_t)(c->source + (a - c->at));
      remote[n].iov_len = (size_t)(b - a);
      want += b - a;
      n++;
    }
    if (n == 0) continue;
    ssize_t got = process_vm_readv(u->pid, local, (unsigned long)n, remote, (unsigned long)n, 0);
    if (got == (ssize_t)want) continue;
    /* Short: the first byte not read, as an offset in the view. */
    uint64_t left = got < 0 ? 0 : (uint64_t)got;
    if (got >= 0) errno = EFAULT;
    int k = 0;
    while (k < n && left >= local[k].iov_len) left -= local[k++].iov_len;
    uint64_t bad = k < n ? (uint64_t)((uint8_t *)local[k].iov_base - buf) + off + left : first;
    /* What was read past the failure is not trusted: zeros. */
    memset(buf + (bad - off), 0, (size_t)(end - bad));
    return bad - off;
  }
  return len;
}

/* Fills pages [p0, p0 + n) of the view; waking whoever waits on them in
 * every case. Returns the pages copied or zeroed. */
static uint64_t fill(struct mk_uffd *u, uint64_t p0, uint64_t n, uint8_t *buf) {
  uint64_t off = p0 * u->page, len = n * u->page;
  if (is_hole(u, off, len)) {
    struct uffdio_zeropage z = {.range = {.start = u->base + off, .len = len},
                                .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE};
    ioctl(u->fd, UFFDIO_ZEROPAGE, &z);
    uint64_t done = z.zeropage > 0 ? (uint64_t)z.zeropage / u->page : 0;
    if (done) {
      bump(u, MK_UFFD_STAT_ZEROED, done);
      mark(u, p0, done);
    }
    wake(u, off, len); /* after the counters: the woken see them */
    return done;
  }
  uint64_t good = read_source(u, off, len, buf);
  if (good < len) {
    int err = errno;
    if (n > 1 && good >= u->page) {
      /* Read ahead only as far as the source could be read. */
      n = good / u->page;
      len = n * u->page;
    } else {
      record(u, err);
      if (n > 1) {
        n = 1;
        len = u->page;
      }
    }
  }
  struct uffdio_copy c = {.dst = u->base + off, .src = (uint64_t)(uintptr_t)buf, .len = len,
                          .mode = UFFDIO_COPY_MODE_DONTWAKE};
  ioctl(u->fd, UFFDIO_COPY, &c);
  uint64_t done = c.copy > 0 ? (uint64_t)c.copy / u->page : 0;
  if (done) {
    bump(u, MK_UFFD_STAT_COPIED, done);
    mark(u, p0, done);
  }
  wake(u, off, len); /* after the counters: the woken see them; also after a refusal */
  return done;
}

/* Maps the page at `off` of a memfd alias from the page cache (the page
 * is there: a minor fault says so), zero-copy; wakes the faulting access. */
static void resume(struct mk_uffd *u, uint64_t off) {
  struct uffdio_continue c = {.range = {.start = u->base + off, .len = u->page},
                              .mode = UFFDIO_CONTINUE_MODE_DONTWAKE};
  ioctl(u->fd, UFFDIO_CONTINUE, &c);
  if (c.mapped > 0) {
    bump(u, MK_UFFD_STAT_CONTINUED, (uint64_t)c.mapped / u->page);
  } else if (c.mapped != -EEXIST) {
    record(u, (int)-c.mapped);
  }
  wake(u, off, u->page);
}

/* A write tracker's fault on page p: a write to a protected page (WP),
 * or the first touch of a page never populated (missing: anonymous memory
 * before Linux 6.4 leaves no write-protect marker in an empty entry, so
 * the range is also registered for missing faults). Records a write in
 * the bitmap, then resolves: WP lifted from the page; a missing page
 * filled with zeros (what it would have read), writable after a write,
 * write-protected after a read so that its first write faults again.
 * Every path ends with the faulting access woken. Under the lock, so that
 * a reset() sees either the whole of it or none. */
static void track_fault(struct mk_uffd *u, uint64_t at, uint64_t flags) {
  const uint64_t p = at / u->page;
  const int wp = (flags & UFFD_PAGEFAULT_FLAG_WP) != 0;
  const int write = wp || (flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0;
  pthread_mutex_lock(&u->lock);
  bump(u, MK_UFFD_STAT_FAULTS, 1);
  if (write) __atomic_fetch_or(&u->dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
  if (wp) {
    struct uffdio_writeprotect w = {.range = {.start = u->base + at, .len = u->page}, .mode = 0};
    if (ioctl(u->fd, UFFDIO_WRITEPROTECT, &w) < 0) record(u, errno);
  } else {
    struct uffdio_copy c = {.dst = u->base + at, .src = (uint64_t)(uintptr_t)u->buffer,
                            .len = u->page, .mode = write ? 0 : UFFDIO_COPY_MODE_WP};
    ioctl(u->fd, UFFDIO_COPY, &c);
    if (c.copy > 0) bump(u, MK_UFFD_STAT_ZEROED, 1);
    else if (c.copy != -EEXIST) record(u, (int)-c.copy);
  }
  pthread_mutex_unlock(&u->lock);
  wake(u, at, u->page); /* after a refusal too; a no-op after a resolution that woke */
}

/* Serves one fault at `address` (`flags`: UFFD_PAGEFAULT_FLAG_*): the
 * page, and up to readahead - 1 pages after it that were not filled yet. */
static void serve(struct mk_uffd *u, uint64_t address, uint64_t flags) {
  uint64_t at = (address & ~(u->page - 1)) - u->base;
  if (address < u->base || at >= u->span) {
    wake(u, 0, u->span);
    return;
  }
  if (u->track) {
    track_fault(u, at, flags);
    return;
  }
  if (u->minor) {
    bump(u, MK_UFFD_STAT_FAULTS, 1);
    resume(u, at);
    return;
  }
  uint64_t p0 = at / u->page, n = 1;
  while (n < u->readahead && p0 + n < u->pages &&
         !__atomic_load_n(&u->filled[p0 + n], __ATOMIC_RELAXED)) {
    n++;
  }
  bump(u, MK_UFFD_STAT_FAULTS, 1);
  fill(u, p0, n, u->buffer);
}

static void destroy(struct mk_uffd *u) {
  close(u->fd);
  close(u->stopfd);
  if (u->track) pthread_mutex_destroy(&u->lock);
  free(u->dirty);
  free(u->chunks);
  free(u->filled);
  free(u->buffer);
  free(u);
}

static void let_go(struct mk_uffd *u) {
  if (__atomic_sub_fetch(&u->refs, 1, __ATOMIC_ACQ_REL) == 0) destroy(u);
}

static void *handler(void *arg) {
  struct mk_uffd *u = arg;
  pthread_setname_np(pthread_self(), "memkit-uffd"); /* ps -L, /proc/<pid>/task/<tid>/comm */
  struct pollfd p[2] = {{.fd = u->fd, .events = POLLIN}, {.fd = u->stopfd, .events = POLLIN}};
  struct uffd_msg msgs[16];
  while (!__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE)) {
    int r = poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break;
    if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;
    ssize_t got = read(u->fd, msgs, sizeof msgs);
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < (size_t)got / sizeof msgs[0]; i++) {
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
        serve(u, msgs[i].arg.pagefault.address, msgs[i].arg.pagefault.flags);
      }
    }
  }
  __atomic_fetch_sub(&live_threads, 1, __ATOMIC_ACQ_REL);
  let_go(u);
  return NULL;
}

/* A handler state with `chunks` chunk slots, `pages` filled flags and a
 * `buffer`-byte buffer, its descriptors not open yet; NULL without memory. */
static struct mk_uffd *new_uffd(size_t chunks, size_t pages, size_t buffer) {
  struct mk_uffd *u = calloc(1, sizeof *u);
  if (u == NULL) return NULL;
  u->fd = u->stopfd = -1;
  u->chunks = calloc(chunks, sizeof *u->chunks);
  u->filled = calloc(pages, 1);
  u->buffer = malloc(buffer);
  if (u->chunks == NULL || u->filled == NULL || u->buffer == NULL) {
    destroy(u);
    return NULL;
  }
  return u;
}

/* Opens u's userfaultfd (saying in `out` how, and why each way was refused),
 * sets its API with `features` and opens its stop eventfd: 0 or -errno (a
 * feature the kernel lacks is EOPNOTSUPP). The caller destroys u on failure. */
static int64_t open_into(struct mk_uffd *u, int kernel, uint64_t features, uint64_t *out) {
  int64_t errs[3];
  int via;
  int fd = open_uffd(kernel, errs, &via);
  out[MK_UFFD_CREATE_VIA] = (uint64_t)via;
  out[MK_UFFD_CREATE_SYSCALL_ERR] = (uint64_t)-errs[0];
  out[MK_UFFD_CREATE_DEVICE_ERR] = (uint64_t)-errs[1];
  out[MK_UFFD_CREATE_USER_ERR] = (uint64_t)-errs[2];
  if (fd < 0) return fd;
  u->fd = fd;
  struct uffdio_api api = {.api = UFFD_API, .features = features};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    return features != 0 && errno == EINVAL ? -EOPNOTSUPP : -(int64_t)errno;
  }
  u->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return u->stopfd < 0 ? -(int64_t)errno : 0;
}

/* Registers u's view at `addr` (u->span bytes) in `mode`, requiring the
 * `need` ioctls, and starts the handler thread: the handle, or -errno with
 * u destroyed and the view unmapped (unless it is a tracker's: the
 * caller's mapping). A tracker's range is write-protected before the
 * thread starts. */
static int64_t start(struct mk_uffd *u, void *addr, uint64_t mode, uint64_t need, uint64_t *out) {
  const uint64_t span = u->span;
  u->base = (uint64_t)(uintptr_t)addr;
  struct uffdio_register reg = {.range = {.start = u->base, .len = span}, .mode = mode};
  errno = 0;
  int bad = ioctl(u->fd, UFFDIO_REGISTER, &reg) < 0 || (reg.ioctls & need) != need;
  if (!bad && u->track) {
    struct uffdio_writeprotect w = {.range = {.start = u->base, .len = span},
                                    .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    bad = ioctl(u->fd, UFFDIO_WRITEPROTECT, &w) < 0;
  }
  if (bad) {
    int64_t err = errno ? -(int64_t)errno : -EOPNOTSUPP;
    if (!u->track) munmap(addr, (size_t)span);
    destroy(u); /* closing the descriptor unregisters a tracker's range */
    return err;
  }
  /* The handler takes no signals: they belong to the threads that asked for them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  u->refs = 2;
  __atomic_fetch_add(&live_threads, 1, __ATOMIC_ACQ_REL);
  int rc = pthread_create(&u->thread, NULL, handler, u);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    __atomic_fetch_sub(&live_threads, 1, __ATOMIC_ACQ_REL);
    if (!u->track) munmap(addr, (size_t)span);
    destroy(u);
    return -rc;
  }
  out[MK_UFFD_CREATE_ADDRESS] = u->base;
  return (int64_t)(uintptr_t)u;
}

MK_API int64_t mk_uffd_create(const uint64_t *chunks, uint32_t count, uint64_t length,
                              int32_t pid, uint64_t readahead, uint32_t prot, uint32_t flags,
                              uint64_t *out) {
  const uint64_t page = mk_core_page();
  if (out == NULL || (count > 0 && chunks == NULL) || length == 0 || pid < 0 ||
      length > (uint64_t)INT64_MAX - page || (prot & ~(uint32_t)(PROT_READ | PROT_WRITE)) ||
      !(prot & PROT_READ) || (flags & ~MK_UFFD_KERNEL_FAULTS)) {
    return -EINVAL;
  }
  memset(out, 0, MK_UFFD_CREATE_WORDS * sizeof *out);
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t len = chunks[2 * i + 1];
    if (len == 0 || len > length - total) return -EINVAL;
    total += len;
  }
  const uint64_t span = (length + page - 1) / page * page;
  const uint64_t pages = span / page;
  if (readahead == 0) readahead = 1;
  if (readahead > pages) readahead = pages;
  if (readahead > (64u << 20) / page) return -EINVAL; /* 64 MiB at most */

  struct mk_uffd *u = new_uffd(count ? count : 1, (size_t)pages, (size_t)(readahead * page));
  if (u == NULL) return -ENOMEM;
  uint64_t at = 0;
  for (uint32_t i = 0; i < count; i++) {
    u->chunks[i] = (struct mk_uffd_chunk){.at = at, .source = chunks[2 * i],
                                          .length = chunks[2 * i + 1]};
    at += chunks[2 * i + 1];
  }
  u->count = count;
  u->pid = pid ? pid : getpid();
  u->page = page;
  u->span = span;
  u->pages = pages;
  u->length = length;
  u->readahead = readahead;
  u->refs = 1;

  /* Another process: ask the kernel now whether it lets us read it (ptrace
   * read access, the process alive, the first source byte mapped), so a
   * refusal is an error here rather than zeros at every fault. */
  if (pid != 0 && pid != getpid()) {
    for (uint32_t i = 0; i < count; i++) {
      if (u->chunks[i].source == MK_UFFD_HOLE) continue;
      uint8_t byte;
      struct iovec l = {.iov_base = &byte, .iov_len = 1};
      struct iovec r = {.iov_base = (void *)(uintptr_t)u->chunks[i].source, .iov_len = 1};
      if (process_vm_readv(u->pid, &l, 1, &r, 1, 0) != 1) {
        int64_t e = -(int64_t)errno;
        destroy(u);
        return e;
      }
      break;
    }
  }
  int64_t err = open_into(u, (flags & MK_UFFD_KERNEL_FAULTS) != 0, 0, out);
  if (err < 0) {
    destroy(u);
    return err;
  }
  void *addr = mmap(NULL, (size_t)span, (int)prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
  if (addr == MAP_FAILED) {
    err = -(int64_t)errno;
    destroy(u);
    return err;
  }
  /* A source inside the view would make the handler wait on its own fault
   * (a freed range the kernel hands out again): map it elsewhere then,
   * keeping the refused ranges taken until a good one is found. */
  void *held[8];
  int nheld = 0;
  for (;;) {
    int overlaps = 0;
    uint64_t a = (uint64_t)(uintptr_t)addr;
    for (uint32_t i = 0; i < count && !overlaps; i++) {
      uint64_t s = u->chunks[i].source;
      overlaps = s != MK_UFFD_HOLE && s < a + span && s + u->chunks[i].length > a;
    }
    if (!overlaps) break;
    if (nheld == 8) {
      munmap(addr, (size_t)span);
      addr = MAP_FAILED;
      errno = EADDRINUSE;
      break;
    }
    held[nheld++] = addr;
    addr = mmap(NULL, (size_t)span, (int)prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (addr == MAP_FAILED) break;
  }
  err = addr == MAP_FAILED ? -(int64_t)errno : 0;
  while (nheld > 0) munmap(held[--nheld], (size_t)span);
  if (addr == MAP_FAILED) {
    destroy(u);
    return err;
  }
  return start(u, addr, UFFDIO_REGISTER_MODE_MISSING,
               (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE) | (1ull << _UFFDIO_WAKE), out);
}

MK_API int64_t mk_uffd_prefetch(uint64_t handle, uint64_t offset, uint64_t length) {
  struct mk_uffd *u = (struct mk_uffd *)(uintptr_t)handle;
  if (u == NULL || offset > u->span || length > u->span - offset) return -EINVAL;
  if (u->minor || u->track) return -EOPNOTSUPP; /* an alias or a tracker copies nothing */
  if (length == 0) return 0;
  uint64_t p = offset / u->page, end = (offset + length + u->page - 1) / u->page;
  const uint64_t batch = 256;
  uint8_t *buf = malloc((size_t)(batch * u->page));
  if (buf == NULL) return -ENOMEM;
  uint64_t done = 0;
  while (p < end) {
    if (__atomic_load_n(&u->filled[p], __ATOMIC_RELAXED)) {
      p++;
      continue;
    }
    uint64_t n = 1;
    while (n < batch && p + n < end && !__atomic_load_n(&u->filled[p + n], __ATOMIC_RELAXED)) n++;
    uint64_t got = fill(u, p, n, buf);
    done += got;
    p += got ? got : 1; /* a page someone else filled meanwhile (EEXIST): next */
  }
  free(buf);
  bump(u, MK_UFFD_STAT_PREFETCHED, done);
  return (int64_t)done;
}

MK_API int64_t mk_uffd_stats(uint64_t handle, uint64_t *out) {
  struct mk_uffd *u = (struct mk_uffd *)(uintptr_t)handle;
  if (u == NULL || out == NULL) return -EINVAL;
  for (int i = 0; i < MK_UFFD_STATS_WORDS; i++) {
    out[i] = __atomic_load_n(&u->stats[i], __ATOMIC_RELAXED);
  }
  return 0;
}

MK_API int64_t mk_uffd_stop(uint64_t handle, uint64_t *stats) {
  struct mk_uffd *u = (struct mk_uffd *)(uintptr_t)handle;
  if (u == NULL) return -EINVAL;
  __atomic_store_n(&u->stopping, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  ssize_t w = write(u->stopfd, &one, sizeof one);
  (void)w; /* an eventfd's counter cannot overflow with one write */
  /* Whoever waits on the range retries its access now; the caller has
   * already replaced the range (so the retry finds plain pages), or no
   * access can have reached it. */
  wake(u, 0, u->span);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += MK_UFFD_JOIN_MS / 1000;
  until.tv_nsec += (long)(MK_UFFD_JOIN_MS % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  int joined = pthread_timedjoin_np(u->thread, NULL, &until) == 0;
  if (!joined) pthread_detach(u->thread); /* it frees what it shares when its read returns */
  if (stats != NULL) {
    for (int i = 0; i < MK_UFFD_STATS_WORDS; i++) {
      stats[i] = __atomic_load_n(&u->stats[i], __ATOMIC_RELAXED);
    }
  }
  let_go(u);
  return joined ? 0 : 1;
}

MK_API int64_t mk_uffd_alias(int32_t memfd, uint64_t offset, uint64_t length, uint32_t prot,
                             uint64_t *out) {
  const uint64_t page = mk_core_page();
  if (out == NULL || memfd < 0 || length == 0 || length > (uint64_t)INT64_MAX - page ||
      offset % page != 0 || !MK_FITS_OFF(offset) ||
      (prot & ~(uint32_t)(PROT_READ | PROT_WRITE)) || !(prot & PROT_READ)) {
    return -EINVAL;
  }
  memset(out, 0, MK_UFFD_CREATE_WORDS * sizeof *out);
  const uint64_t span = (length + page - 1) / page * page;
  struct mk_uffd *u = new_uffd(1, 1, 1);
  if (u == NULL) return -ENOMEM;
  u->minor = 1;
  u->page = page;
  u->span = span;
  u->pages = span / page;
  u->length = length;
  u->readahead = 1;
  u->refs = 1;
  /* Minor faults on shmem (Linux 5.14) must be asked for at UFFDIO_API. */
  int64_t err = open_into(u, 0, UFFD_FEATURE_MINOR_SHMEM, out);
  if (err < 0) {
    destroy(u);
    return err;
  }
  void *addr = mmap(NULL, (size_t)span, (int)prot, MAP_SHARED, memfd, (off_t)offset);
  if (addr == MAP_FAILED) {
    err = -(int64_t)errno;
    destroy(u);
    return err;
  }
  return start(u, addr, UFFDIO_REGISTER_MODE_MINOR,
               (1ull << _UFFDIO_CONTINUE) | (1ull << _UFFDIO_WAKE), out);
}

/* ---- write tracking: asynchronous write-protection, read with PAGEMAP_SCAN ---- */

struct mk_uffd_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define MK_UFFD_PAGEMAP_SCAN _IOWR('f', 16, struct mk_uffd_scan_arg)
#define MK_PM_SCAN_WP_MATCHING (1ull << 0)
#define MK_PM_SCAN_CHECK_WPASYNC (1ull << 1)

MK_API int64_t mk_uffd_track(uint64_t address, uint64_t length, uint32_t shared, uint64_t *out) {
  const uint64_t page = mk_core_page();
  if (out == NULL || address == 0 || address % page != 0 || length == 0 ||
      length % page != 0 || length > (uint64_t)INT64_MAX) {
    return -EINVAL;
  }
  memset(out, 0, MK_UFFD_CREATE_WORDS * sizeof *out);
  int64_t errs[3];
  int via;
  int fd = open_uffd(0, errs, &via);
  out[MK_UFFD_CREATE_VIA] = (uint64_t)via;
  out[MK_UFFD_CREATE_SYSCALL_ERR] = (uint64_t)-errs[0];
  out[MK_UFFD_CREATE_DEVICE_ERR] = (uint64_t)-errs[1];
  out[MK_UFFD_CREATE_USER_ERR] = (uint64_t)-errs[2];
  if (fd < 0) return fd;
  int64_t err;
  uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (shared) want |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
  struct uffdio_api api = {.api = UFFD_API, .features = want};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    err = errno == EINVAL ? -EOPNOTSUPP : -(int64_t)errno;
    close(fd);
    return err;
  }
  struct uffdio_register reg = {.range = {.start = address, .len = length},
                                .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
    err = -(int64_t)errno;
    close(fd);
    return err;
  }
  struct uffdio_writeprotect wp = {.range = {.start = address, .len = length},
                                   .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0) {
    err = -(int64_t)errno;
    close(fd);
    return err;
  }
  return fd;
}

MK_API int64_t mk_uffd_written(int32_t pagemap_fd, uint64_t start, uint64_t end, uint32_t reset,
                               uint64_t *vec, uint64_t vec_len, uint64_t *walk_end) {
  if (walk_end == NULL || (vec == NULL && vec_len > 0) || end < start) return -EINVAL;
  struct mk_uffd_scan_arg a = {
      .size = sizeof a,
      .flags = MK_PM_SCAN_CHECK_WPASYNC | (reset ? MK_PM_SCAN_WP_MATCHING : 0),
      .start = start,
      .end = end,
      .vec = (uint64_t)(uintptr_t)vec,
      .vec_len = vec_len,
      .category_mask = MK_PAGE_IS_WRITTEN,
      .return_mask = MK_PAGE_IS_WRITTEN,
  };
  int rc = ioctl(pagemap_fd, MK_UFFD_PAGEMAP_SCAN, &a);
  if (rc < 0) return -(int64_t)errno;
  *walk_end = a.walk_end;
  return rc;
}

/* ---- write tracking: synchronous write-protection, served by the handler thread ---- */

MK_API int64_t mk_uffd_track_sync(uint64_t address, uint64_t length, uint32_t shared,
                                  uint64_t *out) {
  const uint64_t page = mk_core_page();
  if (out == NULL || address == 0 || address % page != 0 || length == 0 ||
      length % page != 0 || length > (uint64_t)INT64_MAX) {
    return -EINVAL;
  }
  memset(out, 0, MK_UFFD_CREATE_WORDS * sizeof *out);
  const uint64_t pages = length / page;
  struct mk_uffd *u = new_uffd(1, 1, (size_t)page);
  if (u == NULL) return -ENOMEM;
  memset(u->buffer, 0, (size_t)page); /* the zeros a missing page is filled with */
  u->dirty = calloc((size_t)((pages + 63) / 64), sizeof *u->dirty);
  if (u->dirty == NULL || pthread_mutex_init(&u->lock, NULL) != 0) {
    destroy(u);
    return -ENOMEM;
  }
  u->track = 1;
  u->page = page;
  u->span = length;
  u->pages = pages;
  u->length = length;
  u->readahead = 1;
  u->refs = 1;
  /* Write-protection of shared memory (Linux 5.19) must be asked for at
   * UFFDIO_API; anonymous memory's (5.7) needs no feature. Not
   * WP_UNPOPULATED: missing faults find the pages never populated on every
   * kernel, with or without it. */
  int64_t err = open_into(u, 0, shared ? UFFD_FEATURE_WP_HUGETLBFS_SHMEM : 0, out);
  if (err < 0) {
    destroy(u);
    return err;
  }
  return start(u, (void *)(uintptr_t)address,
               UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
               (1ull << _UFFDIO_WRITEPROTECT) | (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_WAKE),
               out);
}

MK_API int64_t mk_uffd_dirty(uint64_t handle, uint32_t reset, uint64_t *bitmap, uint64_t words) {
  struct mk_uffd *u = (struct mk_uffd *)(uintptr_t)handle;
  if (u == NULL || !u->track || bitmap == NULL || words < (u->pages + 63) / 64) return -EINVAL;
  const uint64_t n = (u->pages + 63) / 64;
  int64_t count = 0;
  if (!reset) {
    for (uint64_t i = 0; i < n; i++) {
      bitmap[i] = __atomic_load_n(&u->dirty[i], __ATOMIC_RELAXED);
      count += __builtin_popcountll(bitmap[i]);
    }
    return count;
  }
  /* Protect first, then take the bitmap, both under the lock: a write
   * that faults after the protection waits for the handler, which waits
   * for the lock, so it lands in the new epoch; a write before it was
   * recorded in the old one. */
  pthread_mutex_lock(&u->lock);
  struct uffdio_writeprotect w = {.range = {.start = u->base, .len = u->span},
                                  .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  int64_t err = ioctl(u->fd, UFFDIO_WRITEPROTECT, &w) < 0 ? -(int64_t)errno : 0;
  for (uint64_t i = 0; i < n && err == 0; i++) {
    bitmap[i] = __atomic_exchange_n(&u->dirty[i], 0, __ATOMIC_RELAXED);
    count += __builtin_popcountll(bitmap[i]);
  }
  pthread_mutex_unlock(&u->lock);
  return err < 0 ? err : count;
}
