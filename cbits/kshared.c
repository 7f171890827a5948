/* kshared.c: memkit's half of the pages a kernel driver shares with user
 * space (cbits/memkit_kshared.h, version 1): the lock-word protocol of the
 * request page, the ioctls, and bulk checked SeqLock reads of the record on
 * the publish page.
 *
 * Everything on the request page is also writable by every other process
 * that maps it: each value is loaded once (atomically for the lock word,
 * copied for the slot) and decided from that copy, never read back. */
#include "internal.h"

#include <sched.h>
#include <string.h>
#include <time.h>

#include "memkit_kshared.h"

_Static_assert(sizeof(struct mkks_pub_header) == MK_KSHARED_HEADER_BYTES, "pub header: 64 bytes");
_Static_assert(sizeof(struct mkks_record) == MK_KSHARED_RECORD_BYTES, "record: 64 bytes");
_Static_assert(sizeof(struct mkks_request) == MK_KSHARED_REQUEST_BYTES, "request: 272 bytes");
_Static_assert(offsetof(struct mkks_req_page, slot) == MK_KSHARED_HEADER_BYTES, "slot at 64");
_Static_assert(offsetof(struct mkks_req_page, lock) == 8, "lock word at 8");
_Static_assert(sizeof(struct mkks_req_page) <= MKKS_PAGE_BYTES, "the request page fits");
_Static_assert(MK_KSHARED_VERSION == MKKS_VERSION, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_PAGE_BYTES == MKKS_PAGE_BYTES, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_PUB_OFFSET == MKKS_PUB_OFFSET, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_REQ_OFFSET == MKKS_REQ_OFFSET, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_PUB_MAGIC == MKKS_PUB_MAGIC, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_REQ_MAGIC == MKKS_REQ_MAGIC, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_PAYLOAD_BYTES == MKKS_PAYLOAD_BYTES, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_DATA_BYTES == MKKS_DATA_BYTES, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_LOCK_ANSWERED == MKKS_LOCK_ANSWERED, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_SESSION_MAX == MKKS_SESSION_MAX, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_OP_ECHO == MKKS_OP_ECHO, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_KSHARED_OP_SUM == MKKS_OP_SUM, "memkit.h mirrors memkit_kshared.h");
_Static_assert(MK_SEQLOCK_HEADER == MKKS_SEQLOCK_HEADER, "the record is a memkit SeqLock");

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define CAS(p, expected, desired) \
  __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

static struct mkks_req_page *req_at(uint64_t page) {
  if (page == 0 || page % MKKS_PAGE_BYTES) return NULL;
  return (struct mkks_req_page *)(uintptr_t)page;
}

static int session_ok(uint32_t session) { return session >= 1 && session <= MKKS_SESSION_MAX; }

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

MK_API int64_t mk_kshared_session(int32_t fd) {
  __u32 session = 0;
  if (ioctl(fd, MKKS_IOC_SESSION, &session) < 0) return -errno;
  return session_ok(session) ? (int64_t)session : -EPROTO;
}

MK_API int64_t mk_kshared_ring(int32_t fd) {
  int ret;
  do {
    ret = ioctl(fd, MKKS_IOC_RING);
  } while (ret < 0 && errno == EINTR);
  return ret < 0 ? -errno : 0;
}

MK_API int64_t mk_kshared_lock_word(uint64_t page) {
  struct mkks_req_page *p = req_at(page);
  if (p == NULL) return -EINVAL;
  return LOAD(&p->lock, RELAXED);
}

static int64_t take(struct mkks_req_page *p, uint32_t session, int64_t timeout_ns,
                    uint64_t *seen) {
  const int64_t deadline = timeout_ns > 0 ? now_ns() + timeout_ns : 0;
  long sleep_ns = 20000;
  for (unsigned spin = 0;; spin++) {
    uint32_t w = LOAD(&p->lock, ACQUIRE);
    if (w == MKKS_LOCK_FREE) {
      if (CAS(&p->lock, &w, session)) {
        if (seen) *seen = session;
        return 0;
      }
    }
    if (seen) *seen = w;
    if (w == session || w == (session | MKKS_LOCK_ANSWERED)) return -EDEADLK;
    if (timeout_ns <= 0 || now_ns() >= deadline) return -ETIMEDOUT;
    if (spin < 64) {
      sched_yield();
      continue;
    }
    /* The holder may be slow or gone: the kernel takes a stuck word back
     * after its lock_timeout_ms. Sleep, never past the deadline. */
    int64_t left = deadline - now_ns();
    long ns = left < sleep_ns ? (long)(left > 0 ? left : 0) : sleep_ns;
    struct timespec t = {0, ns};
    nanosleep(&t, NULL);
    if (sleep_ns < 1000000) sleep_ns *= 2;
  }
}

MK_API int64_t mk_kshared_lock(uint64_t page, uint32_t session, int64_t timeout_ns,
                               uint64_t *seen) {
  struct mkks_req_page *p = req_at(page);
  if (p == NULL || !session_ok(session)) return -EINVAL;
  return take(p, session, timeout_ns, seen);
}

MK_API int64_t mk_kshared_release(uint64_t page, uint32_t session, uint64_t *seen) {
  struct mkks_req_page *p = req_at(page);
  if (p == NULL || !session_ok(session)) return -EINVAL;
  uint32_t w = session | MKKS_LOCK_ANSWERED;
  if (CAS(&p->lock, &w, MKKS_LOCK_FREE)) return 0;
  w = session;
  if (CAS(&p->lock, &w, MKKS_LOCK_FREE)) return 1;
  if (seen) *seen = w;
  return -EPERM;
}

MK_API int64_t mk_kshared_request(int32_t fd, uint64_t page, uint32_t session,
                                  int64_t timeout_ns, uint8_t *msg, uint64_t *seen) {
  struct mkks_req_page *p = req_at(page);
  if (p == NULL || msg == NULL || !session_ok(session)) return -EINVAL;
  struct mkks_request req;
  memcpy(&req, msg, sizeof req);
  if (req.length > MKKS_DATA_BYTES) return -EINVAL;
  int64_t ret = take(p, session, timeout_ns, seen);
  if (ret < 0) return ret;
  /* The slot: written field by field from the private copy. */
  volatile struct mkks_request *slot = &p->slot;
  slot->id = req.id;
  slot->op = req.op;
  slot->status = 0;
  slot->length = req.length;
  memcpy((void *)slot->data, req.data, req.length);
  ret = mk_kshared_ring(fd);
  uint32_t w = LOAD(&p->lock, ACQUIRE);
  if (seen) *seen = w;
  if (ret < 0) {
    /* Refused (the page untouched): give the word back if it is still ours. */
    uint32_t mine = session;
    CAS(&p->lock, &mine, MKKS_LOCK_FREE);
    return ret;
  }
  if (w != (session | MKKS_LOCK_ANSWERED)) {
    uint32_t mine = session;
    CAS(&p->lock, &mine, MKKS_LOCK_FREE);
    return -EPROTO;
  }
  struct mkks_request answer;
  memcpy(&answer, (const void *)slot, sizeof answer);
  /* Released only if nobody touched the word while the answer was copied:
   * otherwise the copy may hold someone else's bytes. */
  if (!CAS(&p->lock, &w, MKKS_LOCK_FREE)) {
    if (seen) *seen = w;
    return -EPROTO;
  }
  if (answer.id != req.id || answer.length > MKKS_DATA_BYTES) return -EPROTO;
  memcpy(msg, &answer, sizeof answer);
  return 0;
}

MK_API int64_t mk_kshared_call(int32_t fd, uint8_t *msg) {
  if (msg == NULL) return -EINVAL;
  struct mkks_request req;
  memcpy(&req, msg, sizeof req);
  if (req.length > MKKS_DATA_BYTES) return -EINVAL;
  req.status = 0;
  int ret;
  do {
    ret = ioctl(fd, MKKS_IOC_CALL, &req);
  } while (ret < 0 && errno == EINTR);
  if (ret < 0) return -errno;
  if (req.length > MKKS_DATA_BYTES) return -EPROTO;
  memcpy(msg, &req, sizeof req);
  return 0;
}

MK_API int64_t mk_kshared_stats(uint64_t page, uint64_t *out) {
  if (page == 0 || page % 8 || out == NULL) return -EINVAL;
  const struct mkks_pub_header *h = (const struct mkks_pub_header *)(uintptr_t)page;
  out[0] = LOAD(&h->instance, RELAXED);
  out[1] = LOAD(&h->reclaims, RELAXED);
  out[2] = LOAD(&h->answered, RELAXED);
  out[3] = LOAD(&h->refused, RELAXED);
  out[4] = LOAD(&h->lock_timeout_ms, RELAXED);
  return 0;
}

MK_API int64_t mk_kshared_checksum(const uint8_t *record, uint64_t length) {
  if (record == NULL || length != sizeof(struct mkks_record)) return -EINVAL;
  struct mkks_record r;
  memcpy(&r, record, sizeof r);
  return mkks_checksum(&r);
}

/* Whether a record copy is whole: its checksum, length and payload agree. */
static int record_ok(const struct mkks_record *r) {
  if (r->payload_bytes != MKKS_PAYLOAD_BYTES || r->checksum != mkks_checksum(r)) return 0;
  for (unsigned i = 0; i < MKKS_PAYLOAD_BYTES; i++) {
    if (r->payload[i] != (uint8_t)((r->counter + i) & 0xff)) return 0;
  }
  return 1;
}

MK_API int64_t mk_kshared_read_many(uint64_t address, uint64_t count, uint64_t *out) {
  if (address == 0 || address % 8 || out == NULL) return -EINVAL;
  int64_t len = mk_seqlock_check(address);
  if (len < 0) return len;
  if (len != (int64_t)sizeof(struct mkks_record)) return -EBADMSG;
  const uint8_t *data = (const uint8_t *)(uintptr_t)(address + MK_SEQLOCK_HEADER);
  uint64_t reads = 0, overlaps = 0, torn = 0, backwards = 0, waits = 0;
  uint64_t first = 0, last = 0;
  uint64_t stuck = 0;
  while (reads < count) {
    int64_t seq = mk_seqlock_read_begin(address, 1024);
    if (seq < 0) {
      if (seq != -EAGAIN) return seq;
      waits++;
      if (++stuck >= 1000000) return -EAGAIN;
      continue;
    }
    stuck = 0;
    struct mkks_record r;
    memcpy(&r, data, sizeof r);
    if (mk_seqlock_read_end(address, (uint64_t)seq) != 0) {
      overlaps++;
      continue;
    }
    if (!record_ok(&r)) torn++;
    if (reads == 0) first = r.counter;
    else if (r.counter < last) backwards++;
    last = r.counter;
    reads++;
  }
  out[0] = reads;
  out[1] = overlaps;
  out[2] = torn;
  out[3] = first;
  out[4] = last;
  out[5] = backwards;
  out[6] = waits;
  return 0;
}
