// SPDX-License-Identifier: GPL-2.0-only
/*
 * kshared_probe: exercises the reference module (memkit_kshared.ko) through
 * its protocol directly, with nothing of memkit in between: the mappings'
 * refusals, seqlock reads of the publish page, RING and CALL round trips,
 * and the rule-breakers (garbage over the request page, a lock word held
 * forever, a holder killed with SIGKILL, a holder that closes, a non-holder
 * ringing, a second ring, a storm of garbage while another rings). Built
 * static on the host (tests/vm/kmod/build.sh) and run as root in the QEMU
 * guest by tests/vm/init, after insmod.
 *
 *   kshared_probe [reads] [round trips]     defaults 1000000 and 10000
 *   kshared_probe hold                      maps both pages and waits (for init's rmmod check)
 *
 * Prints one line per check, "kshared probe: <what> ... ok" or "... FAILED
 * (<why>)" (the form tests/vm/vm_test.ts registers as a test), and
 * MEMKIT-KSHARED-FIGURE lines with the measured figures. Exit status 0 when
 * every check passed. It leaves the module as it found it: the lock word
 * free, the request page's header rewritten, lock_timeout_ms restored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memkit_kshared.h"

#define PATH "/sys/kernel/debug/" MKKS_DEBUGFS_NAME
#define PARAMS "/sys/module/memkit_kshared/parameters/"
#define TIMEOUT_PARAM PARAMS "lock_timeout_ms"
#define PAUSE_PARAM PARAMS "write_pause_us"
#define PAGE MKKS_PAGE_BYTES

struct seqlock_header {
  uint32_t magic;
  uint16_t version;
  uint16_t header_bytes;
  uint32_t length;
  uint32_t reserved0;
  uint64_t seq;
  uint64_t writer;
};

static int checks, failures;

/* An errno's name ("0" for none). */
static const char *ename(int e) {
  const char *n = e ? strerrorname_np(e) : "0";
  return n ? n : "?";
}

/* One result line; detail (printf-style, may be NULL) goes in parentheses. */
__attribute__((format(printf, 3, 4))) static void result(int ok, const char *name,
                                                         const char *fmt, ...) {
  char detail[512] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
  }
  checks++;
  if (!ok) failures++;
  printf("kshared probe: %s ... %s%s%s%s\n", name, ok ? "ok" : "FAILED", *detail ? " (" : "",
         detail, *detail ? ")" : "");
  fflush(stdout);
}

/* A call that must fail with errno `want`: failed says whether it did, e is its errno. */
static void refusal(int failed, int e, int want, const char *name) {
  result(failed && e == want, name, "%s", failed ? ename(e) : "it succeeded");
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_file(void) {
  int fd = open(PATH, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    result(0, "the module's file opens read-write", "%s: %s", PATH, ename(e));
    exit(2);
  }
  return fd;
}

static uint32_t session_of(int fd) {
  uint32_t s = 0;
  if (ioctl(fd, MKKS_IOC_SESSION, &s) != 0) return 0;
  return s;
}

static void *map(int fd, int prot, int flags, off_t offset, size_t length) {
  return mmap(NULL, length, prot, flags, fd, offset);
}

/* ---- the pages ---- */

static const struct mkks_pub_header *pub;
static const struct seqlock_header *sl;
static const struct mkks_record *rec;
static struct mkks_req_page *req;
static uint32_t *lockw;

#define load64(p) ((uint64_t)__atomic_load_n((p), __ATOMIC_ACQUIRE))
static uint32_t lock_now(void) { return __atomic_load_n(lockw, __ATOMIC_ACQUIRE); }
static int cas(uint32_t from, uint32_t to) {
  return __atomic_compare_exchange_n(lockw, &from, to, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Waits (1 ms naps) until the lock word is `want`, at most ms; 1 when it is. */
static int wait_lock(uint32_t want, unsigned ms) {
  uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
  while (lock_now() != want) {
    if (now_ns() > end) return 0;
    usleep(1000);
  }
  return 1;
}

/* ---- seqlock reads ---- */

struct read_stats {
  uint64_t retries, odd, torn, backwards;
};

/* One consistent copy of the record; returns its sequence. */
static uint64_t read_record(struct mkks_record *out, struct read_stats *st) {
  for (;;) {
    uint64_t s1 = load64(&sl->seq);
    if (s1 & 1) {
      st->odd++;
      __builtin_ia32_pause();
      continue;
    }
    memcpy(out, (const void *)rec, sizeof(*out));
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t s2 = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
    if (s1 == s2) return s1;
    st->retries++;
  }
}

static int record_valid(const struct mkks_record *r, uint64_t seq) {
  if (r->checksum != mkks_checksum(r) || r->payload_bytes != MKKS_PAYLOAD_BYTES) return 0;
  if (r->counter == 0 || seq != 2 * r->counter) return 0;
  for (unsigned i = 0; i < MKKS_PAYLOAD_BYTES; i++) {
    if (r->payload[i] != (uint8_t)(r->counter + i)) return 0;
  }
  return 1;
}

/* ---- requests ---- */

static void fill(uint8_t *data, uint32_t length, uint32_t i) {
  for (uint32_t j = 0; j < length; j++) data[j] = (uint8_t)(i * 13 + j * 7);
}

/* 1 when ans is the right answer to (id, op, data[0, length)). */
static int answer_right(const struct mkks_request *ans, uint32_t id, uint32_t op,
                        const uint8_t *data, uint32_t length) {
  if (ans->id != id || ans->status != 0) return 0;
  if (op == MKKS_OP_ECHO) return ans->length == length && memcmp(ans->data, data, length) == 0;
  uint64_t sum = 0, got;
  for (uint32_t j = 0; j < length; j++) sum += data[j];
  memcpy(&got, ans->data, 8);
  return ans->length == 8 && got == sum;
}

/* A RING round trip as session s on fd: 0, or -errno of the ioctl, or
 * -EBUSY (the word was not free: *seen), -EPROTO (no ANSWERED state). */
static int ring_trip(int fd, uint32_t s, uint32_t id, uint32_t op, const uint8_t *data,
                     uint32_t length, struct mkks_request *ans, uint32_t *seen) {
  uint32_t expected = MKKS_LOCK_FREE;
  if (!__atomic_compare_exchange_n(lockw, &expected, s, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    if (seen) *seen = expected;
    return -EBUSY;
  }
  req->slot.id = id;
  req->slot.op = op;
  req->slot.length = length;
  memcpy(req->slot.data, data, length <= MKKS_DATA_BYTES ? length : MKKS_DATA_BYTES);
  if (ioctl(fd, MKKS_IOC_RING) != 0) {
    int e = errno;
    cas(s, MKKS_LOCK_FREE);
    return -e;
  }
  if (lock_now() != (s | MKKS_LOCK_ANSWERED)) return -EPROTO;
  ans->id = req->slot.id;
  ans->status = req->slot.status;
  ans->length = req->slot.length;
  memcpy(ans->data, req->slot.data, ans->length <= MKKS_DATA_BYTES ? ans->length : 0);
  if (!cas(s | MKKS_LOCK_ANSWERED, MKKS_LOCK_FREE)) return -EPROTO;
  return 0;
}

/* A CALL round trip: 0 or -errno. */
static int call_trip(int fd, uint32_t id, uint32_t op, const uint8_t *data, uint32_t length,
                     struct mkks_request *ans) {
  ans->id = id;
  ans->op = op;
  ans->status = 0;
  ans->length = length;
  memcpy(ans->data, data, length);
  return ioctl(fd, MKKS_IOC_CALL, ans) == 0 ? 0 : -errno;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t percentile(uint64_t *v, size_t n, double p) {
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

/* A quick, correct round trip: the module still serves. */
static int serves(int fd, uint32_t s) {
  uint8_t data[16];
  struct mkks_request ans;
  fill(data, sizeof(data), 77);
  return ring_trip(fd, s, 0xabcd, MKKS_OP_ECHO, data, sizeof(data), &ans, NULL) == 0 &&
         answer_right(&ans, 0xabcd, MKKS_OP_ECHO, data, sizeof(data));
}

/* ---- the module's parameters ---- */

/* A parameter's value, -1 when it cannot be read. */
static long read_param(const char *path) {
  FILE *f = fopen(path, "r");
  unsigned v = 0;
  if (!f) return -1;
  int ok = fscanf(f, "%u", &v) == 1;
  fclose(f);
  return ok ? (long)v : -1;
}

static int write_param(const char *path, unsigned value) {
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  int ok = fprintf(f, "%u\n", value) > 0;
  return (fclose(f) == 0) && ok;
}

/* Sets the module's lock_timeout_ms and waits until the publish page says
 * so; 1 when it does. */
static int set_timeout(unsigned ms) {
  int ok = write_param(TIMEOUT_PARAM, ms);
  uint64_t end = now_ns() + 10000000000u;
  while (ok && __atomic_load_n(&pub->lock_timeout_ms, __ATOMIC_RELAXED) != ms) {
    if (now_ns() > end) return 0;
    usleep(1000);
  }
  return ok;
}

static uint64_t reclaims(void) { return load64(&pub->reclaims); }

/* `kshared_probe hold`: maps both pages, closes the file (the mappings
 * hold it), says so, and waits to be killed: rmmod must fail meanwhile. */
static int hold(void) {
  int fd = open(PATH, O_RDWR | O_CLOEXEC);
  if (fd < 0) return 1;
  void *a = map(fd, PROT_READ, MAP_SHARED, MKKS_PUB_OFFSET, PAGE);
  void *b = map(fd, PROT_READ | PROT_WRITE, MAP_SHARED, MKKS_REQ_OFFSET, PAGE);
  close(fd);
  if (a == MAP_FAILED || b == MAP_FAILED) return 1;
  printf("holding both pages, the file closed\n");
  fflush(stdout);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "hold") == 0) return hold();
  long reads = argc > 1 ? atol(argv[1]) : 1000000;
  long trips = argc > 2 ? atol(argv[2]) : 10000;
  setvbuf(stdout, NULL, _IOLBF, 0);

  int fd = open_file();
  int fd2 = open_file();
  uint32_t s1 = session_of(fd), s2 = session_of(fd2);
  result(s1 != 0 && s2 != 0 && s1 != s2 && s1 <= MKKS_SESSION_MAX && s2 <= MKKS_SESSION_MAX,
         "each open file has its own session", "sessions %u and %u", s1, s2);
  errno = 0;
  int bad = ioctl(fd, _IO(MKKS_IOC_MAGIC, 0x7f)) == -1;
  refusal(bad, errno, ENOTTY, "an unknown ioctl is ENOTTY");

  /* ---- the mappings ---- */
  errno = 0;
  bad = map(fd, PROT_READ | PROT_WRITE, MAP_SHARED, MKKS_PUB_OFFSET, PAGE) == MAP_FAILED;
  refusal(bad, errno, EPERM, "the publish page mapped with PROT_WRITE is EPERM");
  errno = 0;
  bad = map(fd, PROT_READ | PROT_WRITE, MAP_PRIVATE, MKKS_PUB_OFFSET, PAGE) == MAP_FAILED;
  refusal(bad, errno, EPERM, "the publish page mapped private with PROT_WRITE is EPERM");
  pub = map(fd, PROT_READ, MAP_SHARED, MKKS_PUB_OFFSET, PAGE);
  if (pub == MAP_FAILED) {
    result(0, "the publish page maps read-only", "%s", strerror(errno));
    return 1;
  }
  errno = 0;
  bad = mprotect((void *)pub, PAGE, PROT_READ | PROT_WRITE) == -1;
  refusal(bad, errno, EACCES, "mprotect cannot make the publish page writable");
  {
    /* A forced write (what ptrace and /proc/<pid>/mem do) is refused too. */
    int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    uint32_t junk = 0xffffffffu;
    errno = 0;
    ssize_t n = mem >= 0 ? pwrite(mem, &junk, 4, (off_t)(uintptr_t)pub) : -2;
    int e = errno;
    result(mem >= 0 && n < 0 && pub->magic == MKKS_PUB_MAGIC,
           "a forced write through /proc/self/mem to the publish page is refused",
           "pwrite %zd, errno %s", n, ename(e));
    if (mem >= 0) close(mem);
  }
  {
    pid_t c = fork();
    if (c == 0) {
      *(volatile uint32_t *)pub = 0;
      _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    result(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && pub->magic == MKKS_PUB_MAGIC,
           "a store to the read-only publish page is SIGSEGV, the page unchanged",
           "child status 0x%x", st);
  }
  errno = 0;
  bad = map(fd, PROT_READ, MAP_SHARED, MKKS_PUB_OFFSET, 2 * PAGE) == MAP_FAILED;
  refusal(bad, errno, EINVAL, "a mapping of two pages is EINVAL");
  errno = 0;
  bad = map(fd, PROT_READ, MAP_SHARED, 2 * PAGE, PAGE) == MAP_FAILED;
  refusal(bad, errno, EINVAL, "a mapping at offset 8192 is EINVAL");
  errno = 0;
  bad = map(fd, PROT_READ | PROT_WRITE, MAP_PRIVATE, MKKS_REQ_OFFSET, PAGE) == MAP_FAILED;
  refusal(bad, errno, EINVAL, "a private mapping of the request page is EINVAL");
  req = map(fd, PROT_READ | PROT_WRITE, MAP_SHARED, MKKS_REQ_OFFSET, PAGE);
  if (req == MAP_FAILED) {
    result(0, "the request page maps read-write and shared", "%s", strerror(errno));
    return 1;
  }
  lockw = &req->lock;
  uint8_t header[64];
  memcpy(header, req, sizeof(header));

  /* ---- the layout ---- */
  sl = (const void *)((const char *)pub + pub->record_offset);
  rec = (const void *)((const char *)sl + MKKS_SEQLOCK_HEADER);
  result(pub->magic == MKKS_PUB_MAGIC && pub->version == MKKS_VERSION && pub->header_bytes == 64 &&
             pub->record_offset == 64 && pub->record_bytes == sizeof(struct mkks_record) &&
             pub->instance != 0 && pub->lock_timeout_ms != 0,
         "the publish page's header is version 1's",
         "magic 0x%x version %u header %u record at %u, %u bytes, timeout %u ms", pub->magic,
         pub->version, pub->header_bytes, pub->record_offset, pub->record_bytes,
         pub->lock_timeout_ms);
  result(sl->magic == 0x51534b4du && sl->version == 1 && sl->header_bytes == 32 &&
             sl->length == sizeof(struct mkks_record) && sl->reserved0 == 0 && sl->writer == 0,
         "the record is a memkit SeqLock of version 1", "magic 0x%x version %u length %u",
         sl->magic, sl->version, sl->length);
  result(req->magic == MKKS_REQ_MAGIC && req->version == MKKS_VERSION && req->header_bytes == 64 &&
             req->lock == MKKS_LOCK_FREE,
         "the request page's header is version 1's, its lock word free",
         "magic 0x%x version %u header %u lock 0x%x", req->magic, req->version,
         req->header_bytes, req->lock);

  /* ---- seqlock reads ---- */
  {
    struct read_stats st = {0};
    struct mkks_record r;
    uint64_t first = 0, last = 0, last_time = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < reads; i++) {
      uint64_t seq = read_record(&r, &st);
      if (!record_valid(&r, seq)) st.torn++;
      if (r.counter < last || r.time_ns < last_time) st.backwards++;
      if (i == 0) first = r.counter;
      last = r.counter;
      last_time = r.time_ns;
    }
    uint64_t t1 = now_ns();
    result(st.torn == 0 && st.backwards == 0 && last > first,
           "seqlock reads of the record while the kernel thread rewrites it: none torn",
           "%ld reads, %llu torn, %llu backwards, %llu publications meanwhile, %llu retries, "
           "%llu odd",
           reads, (unsigned long long)st.torn, (unsigned long long)st.backwards,
           (unsigned long long)(last - first), (unsigned long long)st.retries,
           (unsigned long long)st.odd);
    printf("MEMKIT-KSHARED-FIGURE seqlock reads=%ld torn=%llu retries=%llu odd=%llu "
           "publications=%llu ns_per_read=%.0f\n",
           reads, (unsigned long long)st.torn, (unsigned long long)st.retries,
           (unsigned long long)st.odd, (unsigned long long)(last - first),
           (double)(t1 - t0) / (double)(reads > 0 ? reads : 1));
  }

  /* ---- the same while the writer sleeps mid-write (write_pause_us) ---- */
  if (read_param(PAUSE_PARAM) == 0 && write_param(PAUSE_PARAM, 20)) {
    /* A reader that ignores the sequence: it must see torn records, or
     * the checks above could not have seen any. */
    long naive = reads / 5, naive_torn = 0;
    struct mkks_record r;
    for (long i = 0; i < naive; i++) {
      memcpy(&r, (const void *)rec, sizeof(r));
      __atomic_signal_fence(__ATOMIC_SEQ_CST);
      if (r.checksum != mkks_checksum(&r)) naive_torn++;
    }
    struct read_stats st = {0};
    uint64_t t0 = now_ns();
    for (long i = 0; i < reads; i++) {
      uint64_t seq = read_record(&r, &st);
      if (!record_valid(&r, seq)) st.torn++;
    }
    uint64_t t1 = now_ns();
    write_param(PAUSE_PARAM, 0);
    result(naive_torn > 0, "a reader that ignores the sequence sees torn records mid-write",
           "%ld of %ld reads torn, write_pause_us 20", naive_torn, naive);
    result(st.torn == 0,
           "seqlock reads while the kernel thread sleeps in the middle of each write: none torn",
           "%ld reads, %llu torn, %llu retries, %llu odd", reads, (unsigned long long)st.torn,
           (unsigned long long)st.retries, (unsigned long long)st.odd);
    printf("MEMKIT-KSHARED-FIGURE seqlock_paused reads=%ld torn=%llu retries=%llu odd=%llu "
           "naive_torn=%ld/%ld ns_per_read=%.0f\n",
           reads, (unsigned long long)st.torn, (unsigned long long)st.retries,
           (unsigned long long)st.odd, naive_torn, naive,
           (double)(t1 - t0) / (double)(reads > 0 ? reads : 1));
  } else {
    result(0, "write_pause_us can be set", "%s", PAUSE_PARAM);
  }

  /* ---- round trips: RING and CALL, alternating ---- */
  {
    uint64_t *tr = calloc((size_t)trips, 8), *tc = calloc((size_t)trips, 8);
    uint8_t data[MKKS_DATA_BYTES];
    struct mkks_request ans;
    long ring_bad = 0, call_bad = 0;
    char why[160] = "";
    uint64_t answered0 = load64(&pub->answered), refused0 = load64(&pub->refused);
    for (long i = 0; i < trips; i++) {
      uint32_t id = (uint32_t)i * 2654435761u + 1, op = i % 2 ? MKKS_OP_SUM : MKKS_OP_ECHO;
      uint32_t length = 1 + (uint32_t)(i * 37) % MKKS_DATA_BYTES;
      fill(data, length, (uint32_t)i);
      for (int side = 0; side < 2; side++) {
        int ring = (side + (int)i) % 2 == 0;
        uint64_t t = now_ns();
        int rc = ring ? ring_trip(fd, s1, id, op, data, length, &ans, NULL)
                      : call_trip(fd, id, op, data, length, &ans);
        int ok = rc == 0 && answer_right(&ans, id, op, data, length);
        t = now_ns() - t;
        if (ring) {
          tr[i] = t;
          ring_bad += !ok;
        } else {
          tc[i] = t;
          call_bad += !ok;
        }
        if (!ok && !*why) {
          snprintf(why, sizeof(why), "first bad: %s #%ld rc %d id 0x%x status %u length %u",
                   ring ? "RING" : "CALL", i, rc, ans.id, ans.status, ans.length);
        }
      }
    }
    uint64_t answered = load64(&pub->answered) - answered0;
    uint64_t refused = load64(&pub->refused) - refused0;
    result(ring_bad == 0 && lock_now() == MKKS_LOCK_FREE,
           "RING round trips through the request page: every answer right, none lost",
           "%ld trips, %ld bad%s%s", trips, ring_bad, *why ? "; " : "", why);
    result(call_bad == 0, "CALL round trips (the copying ioctl): every answer right",
           "%ld trips, %ld bad", trips, call_bad);
    result(answered == (uint64_t)(2 * trips) && refused == 0,
           "the publish page counts every answer (answered, refused)",
           "answered +%llu, refused +%llu", (unsigned long long)answered,
           (unsigned long long)refused);
    if (trips > 0) {
      qsort(tr, (size_t)trips, 8, cmp_u64);
      qsort(tc, (size_t)trips, 8, cmp_u64);
      uint64_t rm = percentile(tr, (size_t)trips, 0.5), r99 = percentile(tr, (size_t)trips, 0.99);
      uint64_t cm = percentile(tc, (size_t)trips, 0.5), c99 = percentile(tc, (size_t)trips, 0.99);
      printf("MEMKIT-KSHARED-FIGURE roundtrip trips=%ld ring_median_ns=%llu ring_p99_ns=%llu "
             "call_median_ns=%llu call_p99_ns=%llu ring_over_call=%.2f\n",
             trips, (unsigned long long)rm, (unsigned long long)r99, (unsigned long long)cm,
             (unsigned long long)c99, cm ? (double)rm / (double)cm : 0.0);
    }
    free(tr);
    free(tc);
  }

  /* ---- refusals that are answers ---- */
  {
    uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct mkks_request ans;
    uint64_t refused0 = load64(&pub->refused);
    int r1 = ring_trip(fd, s1, 41, 99, data, 8, &ans, NULL);
    int ok1 = r1 == 0 && ans.id == 41 && ans.status == EINVAL && ans.length == 0;
    int r2 = ring_trip(fd, s1, 42, MKKS_OP_ECHO, data, MKKS_DATA_BYTES + 1, &ans, NULL);
    int ok2 = r2 == 0 && ans.id == 42 && ans.status == EINVAL;
    /* A length past the slot: the page holds the request, the kernel the bound. */
    uint32_t e = MKKS_LOCK_FREE;
    int r3 = -1, ok3 = 0;
    if (__atomic_compare_exchange_n(lockw, &e, s1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      req->slot.id = 43;
      req->slot.op = MKKS_OP_ECHO;
      req->slot.length = 0xffffffffu;
      r3 = ioctl(fd, MKKS_IOC_RING) == 0 ? 0 : -errno;
      ok3 = r3 == 0 && req->slot.id == 43 && req->slot.status == EINVAL && req->slot.length == 0 &&
            cas(s1 | MKKS_LOCK_ANSWERED, MKKS_LOCK_FREE);
      if (!ok3) cas(s1, MKKS_LOCK_FREE);
    }
    int c1 = call_trip(fd, 44, 99, data, 8, &ans);
    int okc = c1 == 0 && ans.id == 44 && ans.status == EINVAL;
    errno = 0;
    int c2 = ioctl(fd, MKKS_IOC_CALL, NULL);
    int e2 = errno;
    uint64_t refused = load64(&pub->refused) - refused0;
    result(ok1 && ok2 && ok3 && okc && c2 == -1 && e2 == EFAULT && refused == 4,
           "a bad op or length is answered with status EINVAL (RING and CALL), a bad pointer is "
           "EFAULT",
           "ring %d/%d/%d call %d, NULL call errno %s, refused +%llu", r1, r2, r3, c1,
           ename(e2), (unsigned long long)refused);
  }

  /* ---- a non-holder, a second ring, a double release ---- */
  {
    static uint8_t before[PAGE], after[PAGE];
    int ok = 0, e1 = 0, e0 = 0;
    if (cas(MKKS_LOCK_FREE, s2)) {
      req->slot.id = 51;
      req->slot.op = MKKS_OP_ECHO;
      req->slot.length = 4;
      memcpy(before, req, PAGE);
      errno = 0;
      int r = ioctl(fd, MKKS_IOC_RING); /* fd is session s1: not the holder */
      e1 = errno;
      memcpy(after, req, PAGE);
      ok = r == -1 && e1 == EPERM && memcmp(before, after, PAGE) == 0 && lock_now() == s2;
      ok = ok && ioctl(fd2, MKKS_IOC_RING) == 0 && lock_now() == (s2 | MKKS_LOCK_ANSWERED);
      cas(s2 | MKKS_LOCK_ANSWERED, MKKS_LOCK_FREE);
      cas(s2, MKKS_LOCK_FREE);
    }
    errno = 0;
    int r0 = ioctl(fd, MKKS_IOC_RING); /* the word is free */
    e0 = errno;
    result(ok && r0 == -1 && e0 == EPERM,
           "RING from a non-holder (or on a free word) is EPERM and leaves the page untouched",
           "non-holder errno %s, free word errno %s", ename(e1), ename(e0));

    int again = 0, e = 0, released_twice = 0, after_release = 0;
    if (cas(MKKS_LOCK_FREE, s1)) {
      req->slot.id = 52;
      req->slot.op = MKKS_OP_ECHO;
      req->slot.length = 4;
      if (ioctl(fd, MKKS_IOC_RING) == 0) {
        memcpy(before, req, PAGE);
        errno = 0;
        again = ioctl(fd, MKKS_IOC_RING);
        e = errno;
        memcpy(after, req, PAGE);
        again = again == -1 && e == EBADMSG && memcmp(before, after, PAGE) == 0;
      }
      int first = cas(s1 | MKKS_LOCK_ANSWERED, MKKS_LOCK_FREE);
      released_twice = first && !cas(s1 | MKKS_LOCK_ANSWERED, MKKS_LOCK_FREE);
      errno = 0;
      after_release = ioctl(fd, MKKS_IOC_RING) == -1 && errno == EPERM;
    }
    result(again && released_twice && after_release && serves(fd2, s2),
           "a second ring before the release is EBADMSG; a second release finds the word free",
           "second ring errno %s", ename(e));
  }

  unsigned timeout = pub->lock_timeout_ms;
  long param = read_param(TIMEOUT_PARAM);
  unsigned wait_ms = 20 * timeout + 10000;

  /* ---- held forever: taken back after the timeout ---- */
  {
    uint64_t r0 = reclaims();
    uint64_t t0 = now_ns();
    int took = cas(MKKS_LOCK_FREE, s1);
    /* s1 holds it and never rings nor releases: s2 waits for it. */
    uint64_t end = t0 + (uint64_t)wait_ms * 1000000u;
    int got = 0;
    while (!got && now_ns() < end) {
      got = cas(MKKS_LOCK_FREE, s2);
      if (!got) usleep(1000);
    }
    uint64_t waited_ms = (now_ns() - t0) / 1000000u;
    errno = 0;
    int stale = ioctl(fd, MKKS_IOC_RING) == -1 && errno == EPERM; /* s1 lost it */
    int done = got && cas(s2, MKKS_LOCK_FREE);
    result(took && got && stale && waited_ms >= timeout && reclaims() == r0 + 1 && done &&
               serves(fd2, s2),
           "a lock word taken and never released is taken back after lock_timeout_ms, and "
           "another session is served",
           "timeout %u ms, taken back after %llu ms, reclaims +%llu", timeout,
           (unsigned long long)waited_ms, (unsigned long long)(reclaims() - r0));
  }

  /* ---- garbage over the request page ---- */
  {
    uint64_t r0 = reclaims();
    uint32_t garbage[PAGE / 4];
    srandom(12345);
    for (unsigned i = 0; i < PAGE / 4; i++) garbage[i] = (uint32_t)random() * 2654435761u;
    garbage[2] = 0xdeadbeefu; /* the lock word: neither free nor a session */
    memcpy(req, garbage, PAGE);
    errno = 0;
    int r = ioctl(fd, MKKS_IOC_RING);
    int e = errno;
    int back = wait_lock(MKKS_LOCK_FREE, wait_ms);
    result(r == -1 && e == EPERM && back && reclaims() == r0 + 1 && serves(fd, s1),
           "garbage over the whole request page: refused, its lock word taken back after the "
           "timeout, the next request served",
           "ring errno %s, reclaims +%llu", ename(e),
           (unsigned long long)(reclaims() - r0));
  }

  /* ---- a storm: a child scribbles the page while this process rings ---- */
  {
    pid_t c = fork();
    if (c == 0) {
      uint32_t x = 0x12345678u;
      uint64_t start = now_ns(), end = start + 1500000000u, t;
      volatile uint32_t *words = (volatile uint32_t *)req;
      int hits = 0;
      while ((t = now_ns()) < end) {
        for (int k = 0; k < 64; k++) {
          x ^= x << 13;
          x ^= x >> 17;
          x ^= x << 5;
          words[3 + x % (PAGE / 4 - 3)] = x; /* the slot and the rest, not the lock */
        }
        /* The lock word three times (each one held up to the timeout). */
        if (hits < 3 && t > start + (uint64_t)(hits + 1) * 375000000u) {
          words[2] = x;
          hits++;
        }
        if (x % 8 == 0) sched_yield();
      }
      _exit(0);
    }
    long tried = 0, ok = 0, perm = 0, badmsg = 0, other = 0;
    int st = 0;
    struct mkks_request ans;
    uint8_t data[32];
    fill(data, sizeof(data), 5);
    while (waitpid(c, &st, WNOHANG) == 0) {
      uint32_t seen;
      int rc = ring_trip(fd, s1, 61, MKKS_OP_ECHO, data, sizeof(data), &ans, &seen);
      if (rc == -EBUSY) {
        sched_yield();
        continue;
      }
      tried++;
      if (rc == 0 || rc == -EPROTO) {
        ok++;
      } else if (rc == -EPERM) {
        perm++;
      } else if (rc == -EBADMSG) {
        badmsg++;
      } else {
        other++;
      }
      /* Whatever the scribbler left in the word is not this session's. */
      cas(s1 | MKKS_LOCK_ANSWERED, MKKS_LOCK_FREE);
      cas(s1, MKKS_LOCK_FREE);
    }
    /* The scribbler's last lock word, if any, is taken back after the timeout. */
    int back = wait_lock(MKKS_LOCK_FREE, wait_ms);
    result(WIFEXITED(st) && other == 0 && back && serves(fd, s1),
           "a child scribbling the request page while another rings: each ring 0, EPERM or "
           "EBADMSG, then served",
           "%ld rings: %ld answered, %ld EPERM, %ld EBADMSG, %ld other", tried, ok, perm, badmsg,
           other);
  }

  /* The next checks must see a close take the word back, not the timeout:
   * the timeout goes up to a minute meanwhile. */
  int raised = param > 0 && set_timeout(60000);
  unsigned close_wait = raised ? 10000 : wait_ms;
  const char *how = raised ? "lock_timeout_ms raised to 60000 meanwhile"
                           : "lock_timeout_ms could not be raised: the timeout may have done it";

  /* ---- the holder closes its file ---- */
  {
    uint64_t r0 = reclaims();
    int fd3 = open_file();
    uint32_t s3 = session_of(fd3);
    int took = cas(MKKS_LOCK_FREE, s3);
    close(fd3);
    int back = wait_lock(MKKS_LOCK_FREE, close_wait);
    result(took && back && reclaims() == r0 + 1 && serves(fd, s1),
           "a holder that closes its file: the word is taken back at once", "%s, reclaims +%llu",
           how, (unsigned long long)(reclaims() - r0));
    /* The closed session's id written into the word: taken back too. */
    r0 = reclaims();
    took = cas(MKKS_LOCK_FREE, s3 | MKKS_LOCK_ANSWERED);
    back = wait_lock(MKKS_LOCK_FREE, close_wait);
    result(took && back && reclaims() == r0 + 1 && serves(fd, s1),
           "a lock word naming a closed session is taken back without waiting for the timeout",
           "%s", how);
  }

  /* ---- a holder killed with SIGKILL ---- */
  for (int rang = 0; rang < 2; rang++) {
    uint64_t r0 = reclaims();
    int p[2];
    if (pipe(p) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
      /* Its own open file (a forked fd would be the parent's session). */
      int cfd = open(PATH, O_RDWR | O_CLOEXEC);
      uint32_t cs = cfd >= 0 ? session_of(cfd) : 0;
      struct mkks_req_page *cr = cfd >= 0 ? map(cfd, PROT_READ | PROT_WRITE, MAP_SHARED,
                                                MKKS_REQ_OFFSET, PAGE)
                                          : MAP_FAILED;
      uint32_t e = MKKS_LOCK_FREE;
      if (cr == MAP_FAILED || cs == 0 ||
          !__atomic_compare_exchange_n(&cr->lock, &e, cs, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        cs = 0;
      } else if (rang) {
        cr->slot.id = 71;
        cr->slot.op = MKKS_OP_ECHO;
        cr->slot.length = 1;
        if (ioctl(cfd, MKKS_IOC_RING) != 0) cs = 0;
      }
      if (write(p[1], &cs, 4) != 4) _exit(1);
      for (;;) pause();
    }
    close(p[1]);
    uint32_t cs = 0;
    if (read(p[0], &cs, 4) != 4) cs = 0;
    close(p[0]);
    uint32_t held = lock_now();
    kill(c, SIGKILL);
    int st = 0;
    waitpid(c, &st, 0);
    int back = wait_lock(MKKS_LOCK_FREE, close_wait);
    uint32_t want = rang ? (cs | MKKS_LOCK_ANSWERED) : cs;
    result(cs != 0 && held == want && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && back &&
               reclaims() == r0 + 1 && serves(fd, s1),
           rang ? "a child killed with SIGKILL holding an answered word: taken back on close"
                : "a child killed with SIGKILL holding the lock word: taken back on close",
           "held 0x%x, %s, reclaims +%llu", held, how, (unsigned long long)(reclaims() - r0));
  }
  if (raised) set_timeout((unsigned)param);

  /* Leave the page as a fresh load has it (the garbage overwrote its header). */
  memcpy(req, header, 8);
  memcpy((char *)req + 12, header + 12, sizeof(header) - 12);
  memset(&req->slot, 0, sizeof(req->slot));
  result(lock_now() == MKKS_LOCK_FREE && serves(fd, s1) && serves(fd2, s2),
         "after all that the module serves both sessions", "reclaims %llu, answered %llu, "
         "refused %llu",
         (unsigned long long)reclaims(), (unsigned long long)load64(&pub->answered),
         (unsigned long long)load64(&pub->refused));
  printf("kshared probe: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
