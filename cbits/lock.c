/* lock.c: a mutex and a seqlock that live inside memory shared between
 * processes (SharedMutex and SeqLock in src/lock.ts).
 *
 * Ownership belongs to a process, not to a thread: Deno's nonblocking FFI
 * calls run on threads of their own, so a lock taken on one thread is
 * released from another. An owner is named by an identity word:
 *
 *   bits  0-29  the pid (PID_MAX_LIMIT is 2^22)
 *   bit  30     0 (set alone, the whole word is MK_MUTEX_NOTRECOVERABLE)
 *   bit  31     WAITERS: someone may sleep in FUTEX_WAIT on the low half
 *   bits 32-62  the incarnation: the process's start time (field 22 of
 *               /proc/<pid>/stat, clock ticks since boot) modulo 2^31
 *   bit  63     0
 *
 * so a pid reused by a later process does not pass for the owner. The word
 * is written with one 64-bit compare-and-swap (the pid and the incarnation
 * together, never one without the other); its low half is the futex word
 * (FUTEX_WAIT on a shared mapping: no FUTEX_PRIVATE_FLAG). The kernel's
 * robust list is not used: it ties ownership to a thread and its recovery
 * is lost when the memory is unmapped while locked. Instead a waiter sleeps
 * in slices of at most MK_LOCK_SLICE_MS and, after each slice that did not
 * bring the lock, checks the owner: a pid that is gone, a zombie, one whose
 * main thread is exiting (PF_EXITING: killed, its memory not yet torn
 * down), or a live process with another start time is a dead owner, whose lock the waiter
 * takes over with the same compare-and-swap (one waiter wins).
 *
 * Only atomics with an order are used, and one acquire fence in a seqlock
 * reader, which stores nothing (see seq_read_fence). */
#include "internal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PID_MASK 0x3fffffffull
#define PID_LIMIT 4194304ull /* PID_MAX_LIMIT on 64-bit Linux */
#define WAITERS 0x80000000ull
#define RESERVED_BITS (0x40000000ull | (1ull << 63))
#define TAG_SHIFT 32
#define TAG_MASK 0x7fffffffull

/* The first word of each header: magic, version and size in one load. */
#define MUTEX_HEAD \
  ((uint64_t)MK_MUTEX_MAGIC | (uint64_t)MK_MUTEX_VERSION << 32 | (uint64_t)MK_MUTEX_BYTES << 48)
#define SEQLOCK_HEAD \
  ((uint64_t)MK_SEQLOCK_MAGIC | (uint64_t)MK_SEQLOCK_VERSION << 32 | \
   (uint64_t)MK_SEQLOCK_HEADER << 48)

/* The layout README.md documents (all fields in host byte order). */
struct mk_mutex {
  uint64_t head;       /* 0: magic, version (u16), byte length (u16) */
  uint64_t owner;      /* 8: the identity word of the holder, 0 when free */
  uint32_t state;      /* 16: 0 consistent, 1 inconsistent (an owner died) */
  uint32_t reserved0;  /* 20 */
  uint64_t pidns;      /* 24: inode of the pid namespace it was made in (0: unknown) */
  uint64_t recoveries; /* 32: how many times a dead owner's lock was taken over */
  uint64_t reserved[3];
};
_Static_assert(sizeof(struct mk_mutex) == MK_MUTEX_BYTES, "the mutex is 64 bytes");

struct mk_seqlock {
  uint64_t head;   /* 0: magic, version (u16), header length (u16) */
  uint32_t length; /* 8: bytes of data after the header */
  uint32_t reserved0;
  uint64_t seq;    /* 16: even when stable, odd while a write is in progress */
  uint64_t writer; /* 24: the identity word of the writer, 0 between writes */
};
_Static_assert(sizeof(struct mk_seqlock) == MK_SEQLOCK_HEADER, "the seqlock header is 32 bytes");

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)
#define CAS(p, expected, desired, o) \
  __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_##o, __ATOMIC_RELAXED)

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define CPU_RELAX() ((void)0)
#endif

#if defined(__SANITIZE_THREAD__)
#define MK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MK_TSAN 1
#endif
#endif

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- identities ------------------------------------------------------ */

/* PF_EXITING in field 9 of /proc/<pid>/stat: the task is in do_exit (a
 * SIGKILL was delivered), before it becomes a zombie. */
#define MK_PF_EXITING 0x4ull

/* Field 3 (the state letter), whether field 9 (the flags) has PF_EXITING,
 * and field 22 (the start time) of /proc/<pid>/stat (pid 0: self). 0, or
 * -errno (-ENOENT: no such process). */
static int read_stat(int32_t pid, char *state, int *exiting, uint64_t *start) {
  char path[48];
  if (pid == 0) {
    snprintf(path, sizeof path, "/proc/self/stat");
  } else {
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -errno;
  char buf[1024];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) return err == ESRCH ? -ENOENT : -err;
  buf[n] = 0;
  /* The command name may hold spaces and parentheses: fields follow the last ')'. */
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ') return -EPROTO;
  p += 2;
  *state = *p;
  /* p is at field 3; field 9 is 6 spaces further, field 22 19. */
  char *end;
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return -EPROTO;
    p++;
    if (field + 1 == 9) *exiting = (strtoull(p, &end, 10) & MK_PF_EXITING) != 0;
  }
  errno = 0;
  unsigned long long v = strtoull(p, &end, 10);
  if (end == p || errno != 0) return -EPROTO;
  *start = v;
  return 0;
}

MK_API int64_t mk_lock_self(void) {
  char state;
  int exiting = 0;
  uint64_t start = 0;
  int ret = read_stat(0, &state, &exiting, &start);
  if (ret < 0) return ret;
  uint64_t pid = (uint64_t)getpid();
  if (pid == 0 || pid >= PID_LIMIT) return -EOVERFLOW;
  return (int64_t)(pid | (start & TAG_MASK) << TAG_SHIFT);
}

/* Whether an identity word (waiters bit ignored) names a possible owner. */
static int identity_valid(uint64_t w) {
  uint64_t pid = w & PID_MASK;
  return (w & RESERVED_BITS) == 0 && pid != 0 && pid < PID_LIMIT;
}

static int same_owner(uint64_t word, uint64_t self) { return (word & ~WAITERS) == self; }

/* 1 when the identity word names a live process, 0 when that process is
 * gone, a zombie, or another process with the same pid (another start
 * time), or the word names no process at all. */
MK_API int64_t mk_lock_alive(uint64_t owner) {
  owner &= ~WAITERS;
  if (!identity_valid(owner)) return 0;
  int32_t pid = (int32_t)(owner & PID_MASK);
  char state = 0;
  int exiting = 0;
  uint64_t start = 0;
  int ret = read_stat(pid, &state, &exiting, &start);
  if (ret < 0) {
    /* /proc unreadable or hiding it (hidepid, not mounted): the pid alone decides. */
    return kill(pid, 0) == 0 || errno == EPERM ? 1 : 0;
  }
  if (state == 'Z' || state == 'X' || state == 'x' || exiting) return 0;
  return (start & TAG_MASK) == (owner >> TAG_SHIFT & TAG_MASK) ? 1 : 0;
}

static uint64_t pid_namespace(void) {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* ---- futex ----------------------------------------------------------- */

/* The futex word: the low half of the owner word. */
static uint32_t *futex_word(uint64_t *owner) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return (uint32_t *)(void *)owner;
#else
  return (uint32_t *)(void *)owner + 1;
#endif
}

/* FUTEX_WAIT (shared) for at most ns: 0 woken, -ETIMEDOUT, -EAGAIN (the
 * value changed), -EINTR. */
static int futex_wait(uint32_t *word, uint32_t expected, int64_t ns) {
  struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
  long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
  return r < 0 ? -errno : 0;
}

static void futex_wake(uint32_t *word, int count) {
  syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

/* ---- SharedMutex ----------------------------------------------------- */

static struct mk_mutex *mutex_at(uint64_t address) {
  if (address == 0 || address % 8) return NULL;
  return (struct mk_mutex *)(uintptr_t)address;
}

static int head_ok(const struct mk_mutex *m) { return LOAD(&m->head, ACQUIRE) == MUTEX_HEAD; }

MK_API int64_t mk_mutex_init(uint64_t address) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL) return -EINVAL;
  STORE(&m->owner, 0, RELAXED);
  STORE(&m->state, 0, RELAXED);
  STORE(&m->reserved0, 0, RELAXED);
  STORE(&m->pidns, pid_namespace(), RELAXED);
  STORE(&m->recoveries, 0, RELAXED);
  for (int i = 0; i < 3; i++) STORE(&m->reserved[i], 0, RELAXED);
  STORE(&m->head, MUTEX_HEAD, RELEASE);
  /* Anyone who waited on an older mutex here looks again. */
  futex_wake(futex_word(&m->owner), 0x7fffffff);
  return 0;
}

MK_API int64_t mk_mutex_check(uint64_t address) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL) return -EINVAL;
  if (!head_ok(m)) return -EBADMSG;
  uint32_t state = LOAD(&m->state, RELAXED);
  if (state > 1 || LOAD(&m->reserved0, RELAXED) != 0) return -EBADMSG;
  uint64_t ns = LOAD(&m->pidns, RELAXED), mine = pid_namespace();
  if (ns != 0 && mine != 0 && ns != mine) return -EXDEV;
  return 0;
}

/* The lock was just taken; died: from a dead (or invalid) owner. Returns
 * MK_MUTEX_OWNER_DIED when the protected data may be inconsistent. */
static int64_t acquired(struct mk_mutex *m, int died) {
  uint32_t state = LOAD(&m->state, RELAXED);
  if (died) {
    STORE(&m->recoveries, LOAD(&m->recoveries, RELAXED) + 1, RELAXED);
  }
  if (died || state != 0) {
    STORE(&m->state, 1, RELAXED);
    return MK_MUTEX_OWNER_DIED;
  }
  return 0;
}

MK_API int64_t mk_mutex_trylock(uint64_t address, uint64_t self) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL || !identity_valid(self)) return -EINVAL;
  uint64_t cur = 0;
  if (__builtin_expect(head_ok(m), 1) && CAS(&m->owner, &cur, self, ACQUIRE)) return acquired(m, 0);
  if (!head_ok(m)) return -EBADMSG;
  for (;;) {
    if (cur == 0) {
      if (CAS(&m->owner, &cur, self, ACQUIRE)) return acquired(m, 0);
      continue;
    }
    if (cur == MK_MUTEX_NOTRECOVERABLE) return -ENOTRECOVERABLE;
    if (same_owner(cur, self)) return -EBUSY;
    if (mk_lock_alive(cur)) return -EBUSY;
    if (CAS(&m->owner, &cur, self | (cur & WAITERS), ACQUIRE)) return acquired(m, 1);
  }
}

static int64_t mutex_lock(uint64_t address, uint64_t self, int64_t timeout_ns, uint32_t flags,
                          const int32_t *cancel) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL || !identity_valid(self)) return -EINVAL;
  uint64_t idle = 0;
  if (__builtin_expect(head_ok(m), 1) && CAS(&m->owner, &idle, self, ACQUIRE)) {
    return acquired(m, 0);
  }
  const int64_t slice = (int64_t)MK_LOCK_SLICE_MS * 1000000;
  const int64_t start = now_ns();
  const int64_t deadline = timeout_ns < 0 ? INT64_MAX : start + timeout_ns;
  int64_t checked = start;
  uint64_t waiting = 0; /* WAITERS once this caller has slept: others may too */
  int spins = 0;
  for (;;) {
    if (!head_ok(m)) return -EBADMSG;
    if (cancel != NULL && LOAD(cancel, ACQUIRE) != 0) return -EINTR;
    uint64_t cur = LOAD(&m->owner, RELAXED);
    if (cur == 0) {
      if (CAS(&m->owner, &cur, self | waiting, ACQUIRE)) return acquired(m, 0);
      continue;
    }
    if (cur == MK_MUTEX_NOTRECOVERABLE) return -ENOTRECOVERABLE;
    int mine = same_owner(cur, self);
    if (mine && !(flags & MK_MUTEX_SELF_WAIT)) return -EDEADLK;
    if (spins < 100) {
      spins++;
      CPU_RELAX();
      continue;
    }
    int64_t now = now_ns();
    if (!mine && now - checked >= slice) {
      checked = now;
      if (!mk_lock_alive(cur)) {
        if (CAS(&m->owner, &cur, self | (cur & WAITERS), ACQUIRE)) return acquired(m, 1);
        continue;
      }
    }
    if (now >= deadline) return -ETIMEDOUT;
    if (!(cur & WAITERS)) {
      if (!CAS(&m->owner, &cur, cur | WAITERS, RELAXED)) continue;
      cur |= WAITERS;
    }
    waiting = WAITERS;
    int64_t left = deadline - now;
    int64_t wait = left < slice ? left : slice;
    /* Never past the next liveness check. */
    if (!mine && checked + slice - now < wait) wait = checked + slice - now;
    if (wait < 1000) wait = 1000;
    futex_wait(futex_word(&m->owner), (uint32_t)cur, wait);
  }
}

MK_API int64_t mk_mutex_lock(uint64_t address, uint64_t self, int64_t timeout_ns, uint32_t flags,
                             const int32_t *cancel) {
  return mutex_lock(address, self, timeout_ns, flags, cancel);
}

MK_API MK_NONBLOCKING int64_t mk_mutex_lock_async(uint64_t address, uint64_t self,
                                                  int64_t timeout_ns, uint32_t flags,
                                                  const int32_t *cancel) {
  return mutex_lock(address, self, timeout_ns, flags, cancel);
}

MK_API int64_t mk_mutex_unlock(uint64_t address, uint64_t self) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL || !identity_valid(self)) return -EINVAL;
  if (!head_ok(m)) return -EBADMSG;
  uint64_t cur = LOAD(&m->owner, RELAXED);
  uint64_t next;
  do {
    if (!same_owner(cur, self)) return -EPERM;
    next = LOAD(&m->state, RELAXED) != 0 ? MK_MUTEX_NOTRECOVERABLE : 0;
  } while (!CAS(&m->owner, &cur, next, RELEASE));
  if (next != 0) {
    futex_wake(futex_word(&m->owner), 0x7fffffff);
    return 1;
  }
  if (cur & WAITERS) futex_wake(futex_word(&m->owner), 1);
  return 0;
}

MK_API int64_t mk_mutex_consistent(uint64_t address, uint64_t self) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL || !identity_valid(self)) return -EINVAL;
  if (!head_ok(m)) return -EBADMSG;
  if (!same_owner(LOAD(&m->owner, RELAXED), self)) return -EPERM;
  STORE(&m->state, 0, RELAXED);
  return 0;
}

MK_API int64_t mk_mutex_wake(uint64_t address) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL) return -EINVAL;
  futex_wake(futex_word(&m->owner), 0x7fffffff);
  return 0;
}

MK_API int64_t mk_mutex_state(uint64_t address, uint64_t *out) {
  struct mk_mutex *m = mutex_at(address);
  if (m == NULL || out == NULL) return -EINVAL;
  out[0] = LOAD(&m->owner, RELAXED);
  out[1] = LOAD(&m->state, RELAXED);
  out[2] = LOAD(&m->recoveries, RELAXED);
  return head_ok(m) ? 0 : -EBADMSG;
}

/* ---- SeqLock --------------------------------------------------------- */

#define SEQ_MASK ((1ull << 62) - 1)

static struct mk_seqlock *seqlock_at(uint64_t address) {
  if (address == 0 || address % 8) return NULL;
  return (struct mk_seqlock *)(uintptr_t)address;
}

MK_API int64_t mk_seqlock_init(uint64_t address, uint32_t length) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL) return -EINVAL;
  STORE(&s->length, length, RELAXED);
  STORE(&s->reserved0, 0, RELAXED);
  STORE(&s->seq, 0, RELAXED);
  STORE(&s->writer, 0, RELAXED);
  STORE(&s->head, SEQLOCK_HEAD, RELEASE);
  return 0;
}

MK_API int64_t mk_seqlock_check(uint64_t address) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL) return -EINVAL;
  if (LOAD(&s->head, ACQUIRE) != SEQLOCK_HEAD || LOAD(&s->reserved0, RELAXED) != 0) {
    return -EBADMSG;
  }
  return LOAD(&s->length, RELAXED);
}

MK_API int64_t mk_seqlock_write_begin(uint64_t address, uint64_t self) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL || !identity_valid(self)) return -EINVAL;
  if (LOAD(&s->head, ACQUIRE) != SEQLOCK_HEAD) return -EBADMSG;
  int64_t took = 0;
  uint64_t w = LOAD(&s->writer, ACQUIRE);
  for (;;) {
    if (w == 0) {
      if (CAS(&s->writer, &w, self, ACQUIRE)) break;
      continue;
    }
    if (w == self) return -EDEADLK;
    if (mk_lock_alive(w)) return -EBUSY;
    /* A dead writer (or garbage): taken over, unless the word changed meanwhile. */
    if (CAS(&s->writer, &w, self, ACQUIRE)) {
      took = MK_MUTEX_OWNER_DIED;
      break;
    }
  }
  uint64_t seq = LOAD(&s->seq, RELAXED);
  /* Odd: a writer died mid-write; the write goes on from there. An
   * acquire-release exchange keeps the data's stores after it. */
  if (!(seq & 1)) __atomic_exchange_n(&s->seq, seq + 1, __ATOMIC_ACQ_REL);
  return took;
}

MK_API int64_t mk_seqlock_write_end(uint64_t address, uint64_t self) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL || !identity_valid(self)) return -EINVAL;
  if (LOAD(&s->head, ACQUIRE) != SEQLOCK_HEAD) return -EBADMSG;
  if (LOAD(&s->writer, RELAXED) != self) return -EPERM;
  uint64_t seq = LOAD(&s->seq, RELAXED);
  STORE(&s->seq, (seq | 1) + 1, RELEASE);
  STORE(&s->writer, 0, RELEASE);
  return 0;
}

MK_API int64_t mk_seqlock_read_begin(uint64_t address, uint32_t spins) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL) return -EINVAL;
  if (LOAD(&s->head, ACQUIRE) != SEQLOCK_HEAD) return -EBADMSG;
  for (uint32_t i = 0;; i++) {
    uint64_t seq = LOAD(&s->seq, ACQUIRE);
    if (!(seq & 1)) return (int64_t)(seq & SEQ_MASK);
    if (i >= spins) return -EAGAIN;
    if (i % 64 == 63) {
      sched_yield();
    } else {
      CPU_RELAX();
    }
  }
}

/* The sequence after the reads of the data: an acquire fence keeps those
 * reads before this load. A reader never stores to the seqlock (its page
 * may be mapped read-only: a kernel driver's, or a peer's), so the fence is
 * no read-modify-write, under ThreadSanitizer too. GCC's ThreadSanitizer
 * does not model fences and warns about them (-Wtsan): the warning is
 * silenced here, not the fence; the data reads it orders are the caller's,
 * outside what ThreadSanitizer checks of this file. */
static uint64_t seq_read_fence(uint64_t *seq) {
#if defined(MK_TSAN) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wtsan"
#endif
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
#if defined(MK_TSAN) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  return LOAD(seq, RELAXED);
}

MK_API int64_t mk_seqlock_read_end(uint64_t address, uint64_t seq) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL) return -EINVAL;
  return (seq_read_fence(&s->seq) & SEQ_MASK) == seq ? 0 : 1;
}

MK_API int64_t mk_seqlock_writer(uint64_t address) {
  struct mk_seqlock *s = seqlock_at(address);
  if (s == NULL) return -EINVAL;
  uint64_t w = LOAD(&s->writer, RELAXED);
  return identity_valid(w) ? (int64_t)w : 0;
}

int mk_lock_start_time(int32_t pid, uint64_t *start) {
  char state = 0;
  int exiting = 0;
  int ret = read_stat(pid, &state, &exiting, start);
  if (ret < 0) return ret;
  return state == 'Z' || state == 'X' || state == 'x' || exiting ? -ESRCH : 0;
}
