/* test_uffd.c: lazy views served by the handler thread, against the kernel:
 * content, pages never touched never filled (mincore), holes, readahead,
 * prefetch, an unreadable source, many threads faulting at once, and
 * stopping while a fault waits on a source read that cannot finish yet. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static size_t page;

struct view {
  int64_t handle;
  uint8_t *base;
  uint64_t span;
};

static int make(struct view *v, const uint64_t *chunks, uint32_t count, uint64_t length,
                uint64_t readahead) {
  uint64_t out[MK_UFFD_CREATE_WORDS];
  v->handle = mk_uffd_create(chunks, count, length, 0, readahead, MK_PROT_READ | MK_PROT_WRITE, 0,
                             out);
  v->base = (uint8_t *)(uintptr_t)out[MK_UFFD_CREATE_ADDRESS];
  v->span = (length + page - 1) / page * page;
  return v->handle > 0;
}

static void drop(struct view *v) {
  /* As memkit's close() does: replace the range first, then stop. */
  mmap(v->base, v->span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  mk_uffd_stop((uint64_t)v->handle, NULL);
  munmap(v->base, v->span);
}

static uint64_t resident(const uint8_t *base, uint64_t span, uint64_t first, uint64_t n) {
  unsigned char vec[4096];
  if (span / page > sizeof vec || mincore((void *)base, span, vec) < 0) return UINT64_MAX;
  uint64_t count = 0;
  for (uint64_t i = first; i < first + n; i++) count += vec[i] & 1;
  return count;
}

/* Pages of [base + first pages, + n pages) mapped in this process's page
 * tables (pagemap's present bit): for shared memory, mincore answers the
 * page cache instead. */
static uint64_t mapped(const uint8_t *base, uint64_t first, uint64_t n) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return UINT64_MAX;
  uint64_t count = 0;
  for (uint64_t i = first; i < first + n; i++) {
    uint64_t entry = 0;
    off_t at = (off_t)(((uintptr_t)base / page + i) * sizeof entry);
    if (pread(fd, &entry, sizeof entry, at) != (ssize_t)sizeof entry) count = UINT64_MAX;
    else if (count != UINT64_MAX) count += entry >> 63;
  }
  close(fd);
  return count;
}

static void stats(const struct view *v, uint64_t s[MK_UFFD_STATS_WORDS]) {
  mk_uffd_stats((uint64_t)v->handle, s);
}

static void test_probe(void) {
  uint64_t out[MK_UFFD_PROBE_WORDS];
  CHECK_EQ(mk_uffd_probe(out), 0, "probe answers");
  CHECK(out[MK_UFFD_PROBE_VIA] != MK_UFFD_NONE, "a userfaultfd can be opened here");
  CHECK(out[MK_UFFD_PROBE_IOCTLS] & (1ull << _UFFDIO_REGISTER), "UFFDIO_API offers REGISTER");
  CHECK_ERR(mk_uffd_probe(NULL), EINVAL, "probe(NULL) is -EINVAL");
}

static void test_args(void) {
  uint64_t out[MK_UFFD_CREATE_WORDS], chunk[2] = {1, 0};
  CHECK_ERR(mk_uffd_create(NULL, 0, 0, 0, 0, MK_PROT_READ, 0, out), EINVAL, "length 0");
  CHECK_ERR(mk_uffd_create(chunk, 1, page, 0, 0, MK_PROT_READ, 0, out), EINVAL, "a chunk of 0");
  chunk[1] = 2 * page;
  CHECK_ERR(mk_uffd_create(chunk, 1, page, 0, 0, MK_PROT_READ, 0, out), EINVAL,
            "chunks longer than the view");
  CHECK_ERR(mk_uffd_create(NULL, 0, page, -1, 0, MK_PROT_READ, 0, out), EINVAL, "pid -1");
  CHECK_ERR(mk_uffd_create(NULL, 0, page, 0, 0, MK_PROT_WRITE, 0, out), EINVAL, "write-only");
  CHECK_ERR(mk_uffd_create(NULL, 0, page, 0, 0, MK_PROT_READ, 8, out), EINVAL, "unknown flag");
}

static void test_lazy(void) {
  const uint64_t n = 64;
  uint8_t *src = malloc(n * page);
  for (uint64_t i = 0; i < n * page; i++) src[i] = (uint8_t)(i * 7 + i / page);
  uint64_t chunk[2] = {(uint64_t)(uintptr_t)src, n * page};
  struct view v;
  if (!CHECK(make(&v, chunk, 1, n * page, 1), "create a lazy view of 64 pages")) {
    free(src);
    return;
  }
  CHECK_EQ(resident(v.base, v.span, 0, n), 0, "no page is present before a touch");
  volatile uint8_t sum = v.base[5 * page + 3];
  (void)sum;
  CHECK_EQ(v.base[5 * page + 3], src[5 * page + 3], "a touched byte equals the source");
  CHECK(memcmp(v.base + 9 * page, src + 9 * page, page) == 0, "a touched page equals the source");
  CHECK_EQ(resident(v.base, v.span, 0, n), 2, "only the two touched pages are present");
  uint64_t s[MK_UFFD_STATS_WORDS];
  stats(&v, s);
  CHECK_EQ(s[MK_UFFD_STAT_FAULTS], 2, "two faults served");
  CHECK_EQ(s[MK_UFFD_STAT_COPIED], 2, "two pages copied");
  v.base[20 * page] = 1;
  CHECK_EQ(v.base[20 * page + 1], src[20 * page + 1], "a write fault copies the page first");
  CHECK_EQ(src[20 * page], (uint8_t)(20 * page * 7 + 20), "the source is not written");
  CHECK_EQ(mk_uffd_prefetch((uint64_t)v.handle, 32 * page, 8 * page), 8, "prefetch copies 8 pages");
  CHECK_EQ(mk_uffd_prefetch((uint64_t)v.handle, 32 * page, 8 * page), 0, "and not twice");
  CHECK(memcmp(v.base + 32 * page, src + 32 * page, 8 * page) == 0, "prefetched pages are right");
  stats(&v, s);
  CHECK_EQ(s[MK_UFFD_STAT_FAULTS], 3, "prefetched pages need no fault");
  v.base[20 * page] = src[20 * page];
  CHECK(memcmp(v.base, src, n * page) == 0, "every page equals the source after a full read");
  drop(&v);
  free(src);
}

static void test_readahead_and_holes(void) {
  const uint64_t n = 32;
  uint8_t *src = malloc(n * page);
  memset(src, 0xab, n * page);
  /* A source, a hole of 4 pages, the source again, and a tail hole. */
  uint64_t chunks[6] = {(uint64_t)(uintptr_t)src, 8 * page, MK_UFFD_HOLE, 4 * page,
                        (uint64_t)(uintptr_t)src, 8 * page};
  struct view v;
  if (!CHECK(make(&v, chunks, 3, 24 * page, 4), "create a view with holes, readahead 4")) {
    free(src);
    return;
  }
  CHECK_EQ(v.base[0], 0xab, "page 0 from the source");
  CHECK_EQ(resident(v.base, v.span, 0, 24), 4, "readahead fills four pages");
  CHECK_EQ(v.base[9 * page], 0, "a hole reads zero");
  CHECK_EQ(v.base[22 * page], 0, "the tail reads zero");
  CHECK_EQ(v.base[12 * page], 0xab, "after the hole the source again");
  uint64_t s[MK_UFFD_STATS_WORDS];
  stats(&v, s);
  CHECK_EQ(s[MK_UFFD_STAT_FAULTS], 3, "three faults: the one in the hole read ahead past it");
  CHECK(s[MK_UFFD_STAT_ZEROED] >= 1, "hole pages are zero pages");
  drop(&v);
  free(src);
}

static void test_unreadable(void) {
  uint8_t *src = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(src, 0x5a, 4 * page);
  uint64_t chunk[2] = {(uint64_t)(uintptr_t)src, 4 * page};
  struct view v;
  if (!CHECK(make(&v, chunk, 1, 4 * page, 4), "create a view of a range about to go")) return;
  munmap(src, 4 * page);
  CHECK_EQ(v.base[page + 1], 0, "a page of an unmapped source reads zero, no SIGSEGV");
  uint64_t s[MK_UFFD_STATS_WORDS];
  stats(&v, s);
  CHECK_EQ(s[MK_UFFD_STAT_ERRORS], 1, "one error recorded");
  CHECK_EQ(s[MK_UFFD_STAT_LAST_ERROR], EFAULT, "the error is EFAULT");
  drop(&v);
}

struct toucher {
  const uint8_t *base;
  uint64_t first, stride, count;
  uint64_t sum;
};

static void *touch(void *arg) {
  struct toucher *t = arg;
  for (uint64_t i = 0; i < t->count; i++) t->sum += t->base[(t->first + i * t->stride) * page];
  return NULL;
}

static void test_threads(void) {
  const uint64_t n = 512;
  uint8_t *src = malloc(n * page);
  for (uint64_t i = 0; i < n; i++) memset(src + i * page, (int)(i & 0xff), page);
  uint64_t chunk[2] = {(uint64_t)(uintptr_t)src, n * page};
  struct view v;
  if (!CHECK(make(&v, chunk, 1, n * page, 2), "create a view for four threads")) {
    free(src);
    return;
  }
  pthread_t th[4];
  struct toucher t[4];
  for (int i = 0; i < 4; i++) {
    /* Overlapping walks: threads fault on the same pages at once. */
    t[i] = (struct toucher){.base = v.base, .first = (uint64_t)i, .stride = 1, .count = n - 4};
    pthread_create(&th[i], NULL, touch, &t[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  int same = 1;
  for (int i = 0; i < 4; i++) {
    uint64_t w = 0;
    for (uint64_t j = 0; j < n - 4; j++) w += (j + (uint64_t)i) & 0xff;
    same &= t[i].sum == w;
  }
  CHECK(same, "four threads faulting together read the source");
  CHECK(memcmp(v.base, src, n * page) == 0, "and the whole view equals it");
  uint64_t s[MK_UFFD_STATS_WORDS];
  stats(&v, s);
  CHECK_EQ(s[MK_UFFD_STAT_COPIED], n, "every page copied exactly once");
  drop(&v);
  free(src);
}

/* A source whose faults a userfaultfd of the test holds: the handler's read
 * of it blocks until the test resolves that fault. */
static void test_stop_in_flight(void) {
  long tfd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (tfd < 0) {
    SKIP("stop while a fault waits", "no userfaultfd for the test's own source");
    return;
  }
  struct uffdio_api api = {.api = UFFD_API};
  ioctl((int)tfd, UFFDIO_API, &api);
  uint8_t *src = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct uffdio_register reg = {.range = {(uint64_t)(uintptr_t)src, page},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  CHECK_OK(ioctl((int)tfd, UFFDIO_REGISTER, &reg), "register the test's source");
  uint64_t chunk[2] = {(uint64_t)(uintptr_t)src, page};
  struct view v;
  int live = mk_uffd_live_threads();
  if (!CHECK(make(&v, chunk, 1, page, 1), "create a view of that source")) return;
  pthread_t th;
  struct toucher t = {.base = v.base, .first = 0, .stride = 1, .count = 1};
  pthread_create(&th, NULL, touch, &t);
  /* Wait until the handler's source read waits on the test's fault. */
  struct pollfd pfd = {.fd = (int)tfd, .events = POLLIN};
  CHECK_EQ(poll(&pfd, 1, 10000), 1, "the handler's read of the source waits on a fault");
  mmap(v.base, v.span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  int64_t stopped = mk_uffd_stop((uint64_t)v.handle, NULL);
  CHECK_EQ(stopped, 1, "stop returns, leaving the stuck thread to finish");
  pthread_join(th, NULL);
  CHECK_EQ(t.sum, 0, "the waiting access completed, on the replaced zero page");
  /* Resolve the source's fault: the handler's read returns, it exits and frees. */
  struct uffdio_zeropage z = {.range = {(uint64_t)(uintptr_t)src, page}};
  CHECK_OK(ioctl((int)tfd, UFFDIO_ZEROPAGE, &z), "resolve the source's fault");
  for (int i = 0; i < 500 && mk_uffd_live_threads() > live; i++) {
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  CHECK_EQ(mk_uffd_live_threads(), live, "the left thread exited once its read returned");
  munmap(v.base, v.span);
  munmap(src, page);
  close((int)tfd);
}

/* A memfd alias: minor faults resolved with UFFDIO_CONTINUE, from two threads. */
static void test_alias(void) {
  const uint64_t n = 64;
  int fd = memfd_create("memkit-test-uffd-alias", MFD_CLOEXEC);
  if (!CHECK(fd >= 0 && ftruncate(fd, (off_t)(n * page)) == 0, "a memfd of 64 pages")) return;
  uint8_t *m = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  for (uint64_t i = 0; i < n; i++) m[i * page] = (uint8_t)i;
  uint64_t out[MK_UFFD_CREATE_WORDS];
  int64_t h = mk_uffd_alias(fd, 0, n * page, MK_PROT_READ | MK_PROT_WRITE, out);
  if (h == -EOPNOTSUPP) {
    SKIP("alias", "no UFFD_FEATURE_MINOR_SHMEM");
    munmap(m, n * page);
    close(fd);
    return;
  }
  if (!CHECK(h > 0, "create a lazy alias")) return;
  struct view v = {.handle = h, .base = (uint8_t *)(uintptr_t)out[MK_UFFD_CREATE_ADDRESS],
                   .span = n * page};
  CHECK_EQ(mapped(v.base, 0, n), 0, "no page of the alias is mapped before a touch");
  pthread_t th[2];
  struct toucher t[2];
  for (int i = 0; i < 2; i++) {
    t[i] = (struct toucher){.base = v.base, .first = 0, .stride = 1, .count = n / 2};
    pthread_create(&th[i], NULL, touch, &t[i]);
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  uint64_t want = 0;
  for (uint64_t i = 0; i < n / 2; i++) want += i;
  CHECK(t[0].sum == want && t[1].sum == want, "two threads read the memfd's pages");
  v.base[3 * page] = 77;
  CHECK_EQ(m[3 * page], 77, "a write through the alias reaches the memfd");
  uint64_t s[MK_UFFD_STATS_WORDS];
  stats(&v, s);
  CHECK_EQ(s[MK_UFFD_STAT_CONTINUED], n / 2, "each touched page mapped once");
  CHECK_EQ(s[MK_UFFD_STAT_COPIED], 0, "nothing copied");
  CHECK_EQ(mapped(v.base, n / 2, n / 2), 0, "untouched pages stay unmapped");
  CHECK_EQ(mapped(v.base, 0, n / 2), n / 2, "touched pages are mapped");
  CHECK_ERR(mk_uffd_prefetch((uint64_t)h, 0, page), EOPNOTSUPP, "an alias has nothing to prefetch");
  CHECK_ERR(mk_uffd_alias(fd, 1, page, MK_PROT_READ, out), EINVAL, "an unaligned offset");
  drop(&v);
  munmap(m, n * page);
  close(fd);
}

/* Write tracking: asynchronous WP, read back with PAGEMAP_SCAN, while another thread writes. */
static void *scribble(void *arg) {
  uint8_t *base = arg;
  for (int i = 0; i < 8; i++) base[(size_t)(i * 3) * page] = 1; /* pages 0, 3, ..., 21 */
  return NULL;
}

static void test_track(void) {
  const uint64_t n = 32;
  uint8_t *m = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  m[page] = 1; /* one page populated before */
  uint64_t out[MK_UFFD_CREATE_WORDS];
  int64_t fd = mk_uffd_track((uint64_t)(uintptr_t)m, n * page, 0, out);
  if (fd == -EOPNOTSUPP) {
    SKIP("track", "no UFFD_FEATURE_WP_ASYNC");
    munmap(m, n * page);
    return;
  }
  if (!CHECK(fd >= 0, "track writes to 32 private pages")) return;
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  uint64_t vec[3 * 32], we = 0;
  const uint64_t a = (uint64_t)(uintptr_t)m;
  CHECK_EQ(mk_uffd_written(pm, a, a + n * page, 0, vec, 32, &we), 0, "nothing written yet");
  pthread_t th;
  pthread_create(&th, NULL, scribble, m);
  pthread_join(th, NULL);
  int64_t got = mk_uffd_written(pm, a, a + n * page, 1, vec, 32, &we);
  CHECK_EQ(got, 8, "eight separate pages written (populated or not)");
  int right = got == 8;
  for (int i = 0; i < 8 && right; i++) {
    right = vec[3 * i] == a + (uint64_t)(i * 3) * page && vec[3 * i + 1] == vec[3 * i] + page;
  }
  CHECK(right, "each run is the page written");
  CHECK_EQ(we, a + n * page, "the walk reached the end");
  CHECK_EQ(mk_uffd_written(pm, a, a + n * page, 0, vec, 32, &we), 0,
           "WP_MATCHING protected them again");
  CHECK_EQ(m[3 * page], 1, "the data is there");
  close(pm);
  close((int)fd);
  munmap(m, n * page);
}

/* Write tracking without WP_ASYNC: the handler thread records each page's
 * first write. Three kinds of page: populated through this mapping, only
 * read before (anonymous: the zero page) or populated through another
 * mapping (a memfd: in the page cache, not in this mapping's page table),
 * and never populated; written from two threads in a fixed random
 * pattern, read elsewhere. `fd` -1: private anonymous memory. */
struct writer {
  uint8_t *base;
  const uint8_t *pattern; /* 1: write the page, 2: read it */
  uint64_t first, n;
  uint64_t sum;
};

static void *write_pattern(void *arg) {
  struct writer *w = arg;
  for (uint64_t p = w->first; p < w->n; p += 2) {
    if (w->pattern[p] == 1) w->base[p * page + (p % page)] = (uint8_t)(p | 1);
    else if (w->pattern[p] == 2) w->sum += w->base[p * page];
  }
  return NULL;
}

static int64_t bitmap_of(int64_t h, uint32_t reset, uint64_t *bits, uint64_t words) {
  memset(bits, 0, words * sizeof *bits);
  return mk_uffd_dirty((uint64_t)h, reset, bits, words);
}

static int is_set(const uint64_t *bits, uint64_t p) { return (int)((bits[p / 64] >> (p % 64)) & 1); }

static void track_sync_on(int fd, const char *what) {
  enum { N = 96 };
  uint8_t *m = fd < 0 ? mmap(NULL, N * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0)
                      : mmap(NULL, N * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  uint8_t *other = fd < 0 ? NULL : mmap(NULL, N * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  volatile uint8_t sink = 0;
  for (uint64_t p = 0; p < 32; p++) m[p * page] = 0x10;
  for (uint64_t p = 32; p < 64; p++) {
    if (other) other[p * page] = 0x20;
    else sink = (uint8_t)(sink + m[p * page]);
  }
  uint64_t out[MK_UFFD_CREATE_WORDS];
  int64_t h = mk_uffd_track_sync((uint64_t)(uintptr_t)m, N * page, fd >= 0, out);
  if (!CHECK(h > 0, "track writes synchronously")) {
    printf("# %s: %lld\n", what, (long long)h);
    return;
  }
  uint64_t bits[2];
  CHECK_EQ(bitmap_of(h, 0, bits, 2), 0, "nothing written yet");
  CHECK_ERR(mk_uffd_dirty((uint64_t)h, 0, bits, 1), EINVAL, "a bitmap too short");
  uint8_t pattern[N];
  uint32_t x = 0x9e3779b9u;
  uint64_t writes = 0;
  for (int p = 0; p < N; p++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pattern[p] = (uint8_t)(x % 3); /* 0: untouched, 1: written, 2: read */
    writes += pattern[p] == 1;
  }
  pthread_t th[2];
  struct writer w[2];
  for (int i = 0; i < 2; i++) {
    w[i] = (struct writer){.base = m, .pattern = pattern, .first = (uint64_t)i, .n = N};
    pthread_create(&th[i], NULL, write_pattern, &w[i]);
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK_EQ(bitmap_of(h, 0, bits, 2), (int64_t)writes, "as many pages written as the pattern says");
  int right = 1, kinds[3] = {0, 0, 0};
  for (uint64_t p = 0; p < N; p++) {
    right &= is_set(bits, p) == (pattern[p] == 1);
    if (pattern[p] == 1) kinds[p / 32]++;
  }
  CHECK(right, "exactly the pages written, in each kind");
  CHECK(kinds[0] > 0 && kinds[1] > 0 && kinds[2] > 0, "the pattern writes pages of every kind");
  int data = 1;
  for (uint64_t p = 0; p < N; p++) {
    uint8_t want = pattern[p] == 1 ? 0 : p < 32 ? 0x10 : p < 64 && other ? 0x20 : 0;
    uint8_t got = m[p * page + (pattern[p] == 1 ? p % page : 0)];
    data &= got == (pattern[p] == 1 ? (uint8_t)(p | 1) : want);
  }
  CHECK(data, "every page holds what was written, or what it held before");
  CHECK_EQ(bitmap_of(h, 0, bits, 2), (int64_t)writes, "reading the pages changed nothing");
  CHECK_EQ(bitmap_of(h, 1, bits, 2), (int64_t)writes, "reset answers the pages written before it");
  CHECK_EQ(bitmap_of(h, 0, bits, 2), 0, "and starts a new epoch");
  m[70 * page] = 1;
  m[5 * page] = 2;
  CHECK_EQ(bitmap_of(h, 0, bits, 2), 2, "two writes after the reset");
  CHECK(is_set(bits, 5) && is_set(bits, 70), "the two pages written");
  CHECK_ERR(mk_uffd_prefetch((uint64_t)h, 0, page), EOPNOTSUPP, "a tracker has nothing to prefetch");
  CHECK_EQ(mk_uffd_stop((uint64_t)h, NULL), 0, "stop joins the handler");
  m[71 * page] = 3;
  CHECK_EQ(m[71 * page] + m[70 * page], 4, "the range is the caller's and writable after stop");
  munmap(m, N * page);
  if (other) munmap(other, N * page);
  (void)sink;
}

/* Stopping while another thread's writes wait on the handler: every write completes. */
static void *write_all(void *arg) {
  struct writer *w = arg;
  for (uint64_t p = 0; p < w->n; p++) w->base[p * page] = (uint8_t)(p | 1);
  return NULL;
}

static void test_track_sync(void) {
  track_sync_on(-1, "private anonymous memory");
  int fd = memfd_create("memkit-test-uffd-track", MFD_CLOEXEC);
  if (CHECK(fd >= 0 && ftruncate(fd, (off_t)(96 * page)) == 0, "a memfd of 96 pages")) {
    track_sync_on(fd, "a memfd");
    close(fd);
  }
  CHECK_ERR(mk_uffd_track_sync(0, page, 0, (uint64_t[MK_UFFD_CREATE_WORDS]){0}), EINVAL,
            "address 0");
  CHECK_ERR(mk_uffd_dirty(0, 0, (uint64_t[1]){0}, 1), EINVAL, "no handle");

  const uint64_t n = 4096;
  uint8_t *m = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint64_t out[MK_UFFD_CREATE_WORDS];
  int64_t h = mk_uffd_track_sync((uint64_t)(uintptr_t)m, n * page, 0, out);
  if (!CHECK(h > 0, "track 4096 pages")) return;
  pthread_t th;
  struct writer w = {.base = m, .n = n};
  pthread_create(&th, NULL, write_all, &w);
  uint64_t s[MK_UFFD_STATS_WORDS] = {0};
  for (int i = 0; i < 5000 && s[MK_UFFD_STAT_FAULTS] < 16; i++) {
    mk_uffd_stats((uint64_t)h, s);
    nanosleep(&(struct timespec){0, 100000}, NULL);
  }
  CHECK(s[MK_UFFD_STAT_FAULTS] >= 16, "the writer's faults are being served");
  CHECK_EQ(mk_uffd_stop((uint64_t)h, s), 0, "stop while the writer faults returns");
  pthread_join(th, NULL);
  int all = 1;
  for (uint64_t p = 0; p < n; p++) all &= m[p * page] == (uint8_t)(p | 1);
  CHECK(all, "every write landed, before and after the stop");
  munmap(m, n * page);
}

int main(void) {
  page = (size_t)sysconf(_SC_PAGESIZE);
  test_probe();
  test_args();
  test_lazy();
  test_readahead_and_holes();
  test_unreadable();
  test_threads();
  test_stop_in_flight();
  test_alias();
  test_track();
  test_track_sync();
  return tap_done();
}
