/* test_lock.c: mk_mutex_* and mk_seqlock_* against the kernel: identities
 * and liveness (a zombie, a reused pid), a holder that dies with SIGKILL in
 * a forked child, timeouts, cancellation, corrupt words, and threads
 * contending (run under ThreadSanitizer by tests/run.sh). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static uint64_t self_id;

/* Field 22 of /proc/<pid>/stat, read here without memkit. */
static uint64_t start_of(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')') + 2;
  for (int field = 3; field < 22; field++) p = strchr(p, ' ') + 1;
  return strtoull(p, NULL, 10);
}

static uint64_t word_of(pid_t pid, uint64_t start) {
  return (uint64_t)pid | (start & 0x7fffffffull) << 32;
}

static void *shared_page(void) {
  void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static uint64_t *owner_word(void *m) { return (uint64_t *)m + 1; }

static void test_identity(void) {
  int64_t id = mk_lock_self();
  CHECK_OK(id, "mk_lock_self");
  self_id = (uint64_t)id;
  CHECK_EQ(self_id & 0x3fffffff, getpid(), "the identity holds the pid");
  CHECK_EQ(self_id, word_of(getpid(), start_of(getpid())), "and the start time of /proc/self/stat");
  CHECK_EQ(mk_lock_alive(self_id), 1, "this process is alive");
  CHECK_EQ(mk_lock_alive(self_id | 0x80000000u), 1, "the waiters bit does not matter");
  CHECK_EQ(mk_lock_alive(word_of(getpid(), start_of(getpid()) + 1)), 0,
           "this pid with another start time is another (dead) process");
  CHECK_EQ(mk_lock_alive(0), 0, "0 is no owner");
  CHECK_EQ(mk_lock_alive(0xffffffffffffffffull), 0, "all ones is no owner");
  CHECK_EQ(mk_lock_alive(4194304ull), 0, "a pid past PID_MAX_LIMIT is no owner");

  pid_t child = fork();
  if (child == 0) _exit(0);
  uint64_t start = start_of(child);
  /* Wait until it is a zombie (not reaped). */
  for (int i = 0; i < 1000; i++) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT) == 0 && info.si_pid == child) break;
    usleep(1000);
  }
  CHECK_EQ(mk_lock_alive(word_of(child, start)), 0, "a zombie is a dead owner");
  waitpid(child, NULL, 0);
  CHECK_EQ(mk_lock_alive(word_of(child, start)), 0, "a reaped process is a dead owner");
}

static void test_basics(void) {
  void *m = shared_page();
  if (!CHECK(m != NULL, "mmap a shared page")) return;
  uint64_t a = (uint64_t)(uintptr_t)m;
  CHECK_ERR(mk_mutex_check(a), EBADMSG, "zeros are no mutex");
  CHECK_ERR(mk_mutex_trylock(a, self_id), EBADMSG, "trylock on zeros is -EBADMSG");
  CHECK_ERR(mk_mutex_lock(a, self_id, -1, 0, NULL), EBADMSG, "lock on zeros is -EBADMSG, no hang");
  CHECK_ERR(mk_mutex_init(a + 4), EINVAL, "an unaligned mutex is -EINVAL");
  CHECK_OK(mk_mutex_init(a), "init");
  CHECK_EQ(mk_mutex_check(a), 0, "check after init");
  CHECK_ERR(mk_mutex_trylock(a, 0), EINVAL, "identity 0 is -EINVAL");
  CHECK_EQ(mk_mutex_trylock(a, self_id), 0, "trylock takes it");
  CHECK_EQ(*owner_word(m), self_id, "the owner word is the identity");
  CHECK_ERR(mk_mutex_trylock(a, self_id), EBUSY, "trylock by the holder is -EBUSY");
  CHECK_ERR(mk_mutex_lock(a, self_id, 1000000, 0, NULL), EDEADLK,
            "lock by the holding process is -EDEADLK");
  CHECK_ERR(mk_mutex_lock(a, self_id, 20000000, MK_MUTEX_SELF_WAIT, NULL), ETIMEDOUT,
            "with MK_MUTEX_SELF_WAIT it waits, and times out");
  CHECK_EQ(mk_mutex_unlock(a, self_id), 0, "unlock");
  CHECK_ERR(mk_mutex_unlock(a, self_id), EPERM, "a second unlock is -EPERM");
  CHECK_EQ(mk_mutex_lock(a, self_id, 0, 0, NULL), 0, "lock of a free mutex with timeout 0");
  CHECK_ERR(mk_mutex_unlock(a, self_id + 1), EPERM, "unlock by another identity is -EPERM");
  CHECK_EQ(mk_mutex_unlock(a, self_id), 0, "unlock");

  /* A live owner elsewhere: the parent of this process, with its start time. */
  pid_t parent = getppid();
  *owner_word(m) = word_of(parent, start_of(parent));
  CHECK_ERR(mk_mutex_trylock(a, self_id), EBUSY, "a live foreign owner: -EBUSY");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_ERR(mk_mutex_lock(a, self_id, 60000000, 0, NULL), ETIMEDOUT, "lock times out at 60 ms");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  CHECK(ms >= 59 && ms < 5000, "the timeout took about 60 ms");
  /* The same pid with another start time: a reused pid, taken over. */
  *owner_word(m) = word_of(parent, start_of(parent) + 3);
  CHECK_EQ(mk_mutex_lock(a, self_id, 1000000000, 0, NULL), MK_MUTEX_OWNER_DIED,
           "a reused pid's lock is taken over");
  CHECK_EQ(mk_mutex_unlock(a, self_id), 1, "unlock while inconsistent: not recoverable");
  CHECK_EQ(*owner_word(m), MK_MUTEX_NOTRECOVERABLE, "the owner word says so");
  CHECK_ERR(mk_mutex_lock(a, self_id, -1, 0, NULL), ENOTRECOVERABLE, "lock: -ENOTRECOVERABLE");
  CHECK_OK(mk_mutex_init(a), "init again");

  /* Garbage: recovered as a dead owner, then made consistent. */
  *owner_word(m) = 0xdeadbeefdeadbeefull;
  CHECK_EQ(mk_mutex_trylock(a, self_id), MK_MUTEX_OWNER_DIED, "garbage in the owner word: taken");
  CHECK_EQ(mk_mutex_consistent(a, self_id), 0, "markConsistent");
  CHECK_EQ(mk_mutex_unlock(a, self_id), 0, "unlock leaves it usable");
  uint64_t state[3];
  CHECK_EQ(mk_mutex_state(a, state), 0, "state");
  CHECK_EQ(state[0], 0, "free");
  CHECK_EQ(state[1], 0, "consistent");
  CHECK_EQ(state[2], 1, "one recovery counted since init");
  CHECK_ERR(mk_mutex_consistent(a, self_id), EPERM, "markConsistent without holding: -EPERM");
  munmap(m, 4096);
}

static void test_sigkill(void) {
  void *m = shared_page();
  if (!CHECK(m != NULL, "mmap a shared page")) return;
  uint64_t a = (uint64_t)(uintptr_t)m;
  mk_mutex_init(a);
  int ready[2];
  if (!CHECK(pipe(ready) == 0, "pipe")) return;
  pid_t child = fork();
  if (child == 0) {
    int64_t id = mk_lock_self();
    if (mk_mutex_lock(a, (uint64_t)id, -1, 0, NULL) != 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(2);
    pause();
    _exit(3);
  }
  char c;
  CHECK_EQ(read(ready[0], &c, 1), 1, "the child holds the mutex");
  close(ready[0]);
  close(ready[1]);
  kill(child, SIGKILL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ(mk_mutex_lock(a, self_id, 5000000000, 0, NULL), MK_MUTEX_OWNER_DIED,
           "the holder killed with SIGKILL: the next locker gets it, owner died");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("# death to next owner (zombie not reaped): %.1f ms\n", ms);
  CHECK(ms < 5000, "within the timeout");
  int status;
  waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child died of SIGKILL");
  CHECK_EQ(mk_mutex_consistent(a, self_id), 0, "markConsistent");
  CHECK_EQ(mk_mutex_unlock(a, self_id), 0, "unlock");
  munmap(m, 4096);
}

/* ---- threads --------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 20000

static uint64_t mutex_address;
static long counter;

static void *increment(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    if (mk_mutex_lock(mutex_address, self_id, -1, MK_MUTEX_SELF_WAIT, NULL) != 0) return arg;
    counter++; /* plain: the lock's acquire and release order it */
    if (mk_mutex_unlock(mutex_address, self_id) != 0) return arg;
  }
  return NULL;
}

static int32_t cancel_flag;

static void *cancelled_wait(void *arg) {
  (void)arg;
  return (void *)(intptr_t)mk_mutex_lock(mutex_address, self_id, -1, MK_MUTEX_SELF_WAIT,
                                         &cancel_flag);
}

static void test_threads(void) {
  void *m = shared_page();
  if (!CHECK(m != NULL, "mmap a shared page")) return;
  mutex_address = (uint64_t)(uintptr_t)m;
  mk_mutex_init(mutex_address);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, increment, NULL);
  int failed = 0;
  for (int i = 0; i < THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    failed += r != NULL;
  }
  CHECK_EQ(failed, 0, "every lock and unlock of the threads succeeded");
  CHECK_EQ(counter, (long)THREADS * ROUNDS, "4 threads x 20000 increments lose nothing");

  /* A waiter cancelled through its flag and a wake. */
  CHECK_EQ(mk_mutex_lock(mutex_address, self_id, -1, 0, NULL), 0, "hold it");
  pthread_t w;
  pthread_create(&w, NULL, cancelled_wait, NULL);
  usleep(30000);
  __atomic_store_n(&cancel_flag, 1, __ATOMIC_RELEASE);
  mk_mutex_wake(mutex_address);
  void *r;
  pthread_join(w, &r);
  CHECK_EQ((int64_t)(intptr_t)r, -EINTR, "the cancelled waiter returns -EINTR");
  CHECK_EQ(mk_mutex_unlock(mutex_address, self_id), 0, "unlock");
  munmap(m, 4096);
}

/* ---- seqlock --------------------------------------------------------- */

#define WORDS 8
static uint64_t seq_address;
static int writer_done;

static uint64_t *seq_data(void) { return (uint64_t *)(uintptr_t)(seq_address + MK_SEQLOCK_HEADER); }

static void *seq_writer(void *arg) {
  (void)arg;
  uint64_t *d = seq_data();
  for (uint64_t k = 1; k <= 50000; k++) {
    if (mk_seqlock_write_begin(seq_address, self_id) < 0) return arg;
    for (int i = 0; i < WORDS - 1; i++) __atomic_store_n(&d[i], k * (uint64_t)(i + 1), __ATOMIC_RELAXED);
    __atomic_store_n(&d[WORDS - 1], k * 28, __ATOMIC_RELAXED); /* the sum of k * (1..7) */
    if (mk_seqlock_write_end(seq_address, self_id) < 0) return arg;
  }
  __atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *seq_reader(void *arg) {
  uint64_t *d = seq_data();
  long torn = 0;
  while (!__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE)) {
    int64_t s = mk_seqlock_read_begin(seq_address, 1024);
    if (s < 0) continue;
    uint64_t sum = 0, w[WORDS];
    for (int i = 0; i < WORDS; i++) w[i] = __atomic_load_n(&d[i], __ATOMIC_RELAXED);
    if (mk_seqlock_read_end(seq_address, (uint64_t)s) != 0) continue;
    for (int i = 0; i < WORDS - 1; i++) sum += w[i];
    if (sum != w[WORDS - 1]) torn++;
  }
  *(long *)arg = torn;
  return NULL;
}

static void test_seqlock(void) {
  void *m = shared_page();
  if (!CHECK(m != NULL, "mmap a shared page")) return;
  seq_address = (uint64_t)(uintptr_t)m;
  CHECK_ERR(mk_seqlock_check(seq_address), EBADMSG, "zeros are no seqlock");
  CHECK_ERR(mk_seqlock_read_begin(seq_address, 1), EBADMSG, "reading zeros is -EBADMSG");
  CHECK_OK(mk_seqlock_init(seq_address, WORDS * 8), "init");
  CHECK_EQ(mk_seqlock_check(seq_address), WORDS * 8, "check: the data length");
  CHECK_EQ(mk_seqlock_write_begin(seq_address, self_id), 0, "write begins");
  CHECK_ERR(mk_seqlock_write_begin(seq_address, self_id), EDEADLK, "a nested write: -EDEADLK");
  CHECK_ERR(mk_seqlock_read_begin(seq_address, 10), EAGAIN, "a read during it: -EAGAIN");
  CHECK_EQ(mk_seqlock_writer(seq_address), (int64_t)self_id, "the writer is recorded");
  CHECK_EQ(mk_seqlock_write_end(seq_address, self_id), 0, "write ends");
  CHECK_ERR(mk_seqlock_write_end(seq_address, self_id), EPERM, "ending it twice: -EPERM");
  CHECK_EQ(mk_seqlock_read_begin(seq_address, 0), 2, "the sequence is 2");
  CHECK_EQ(mk_seqlock_read_end(seq_address, 2), 0, "unchanged");
  CHECK_EQ(mk_seqlock_read_end(seq_address, 0), 1, "changed since 0");
  uint64_t *writer = (uint64_t *)m + 3;
  pid_t parent = getppid();
  *writer = word_of(parent, start_of(parent));
  CHECK_ERR(mk_seqlock_write_begin(seq_address, self_id), EBUSY, "a live writer elsewhere: -EBUSY");
  *writer = word_of(parent, start_of(parent) + 5);
  CHECK_EQ(mk_seqlock_write_begin(seq_address, self_id), MK_MUTEX_OWNER_DIED,
           "a dead writer (a reused pid) is taken over");
  CHECK_EQ(mk_seqlock_write_end(seq_address, self_id), 0, "and its write ended");

  pthread_t w, r[3];
  long torn[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) pthread_create(&r[i], NULL, seq_reader, &torn[i]);
  pthread_create(&w, NULL, seq_writer, NULL);
  void *wr;
  pthread_join(w, &wr);
  for (int i = 0; i < 3; i++) pthread_join(r[i], NULL);
  CHECK(wr == NULL, "50000 writes");
  CHECK_EQ(torn[0] + torn[1] + torn[2], 0, "3 reader threads: 0 torn reads");
  munmap(m, 4096);
}

/* A reader that may only read: the seqlock read through a PROT_READ mapping
 * of a memfd that a second mapping writes (as a kernel driver's page is
 * mapped, its writer recording no identity). Reading must never store to
 * the page: a store there is SIGSEGV. */
static void test_seqlock_readonly(void) {
  int fd = memfd_create("seqlock-ro", MFD_CLOEXEC);
  if (!CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "a memfd of one page")) return;
  void *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  void *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (!CHECK(rw != MAP_FAILED && ro != MAP_FAILED, "mapped read-write and read-only")) return;
  uint64_t a = (uint64_t)(uintptr_t)rw, r = (uint64_t)(uintptr_t)ro;
  CHECK_OK(mk_seqlock_init(a, 16), "init through the writable mapping");
  uint64_t *seq = (uint64_t *)rw + 2;
  __atomic_store_n(seq, 4, __ATOMIC_RELEASE);
  CHECK_EQ(mk_seqlock_check(r), 16, "check through the read-only mapping");
  int64_t s = mk_seqlock_read_begin(r, 0);
  CHECK_EQ(s, 4, "read begins: the sequence");
  CHECK_EQ(mk_seqlock_read_end(r, (uint64_t)s), 0, "read ends: unchanged");
  __atomic_store_n(seq, 5, __ATOMIC_RELEASE);
  CHECK_EQ(mk_seqlock_read_end(r, (uint64_t)s), 1, "a write began since");
  CHECK_ERR(mk_seqlock_read_begin(r, 3), EAGAIN, "a write in progress: -EAGAIN");
  CHECK_EQ(mk_seqlock_writer(r), 0, "no writer recorded");
  munmap(rw, 4096);
  munmap(ro, 4096);
}

int main(void) {
  test_identity();
  test_basics();
  test_sigkill();
  test_threads();
  test_seqlock();
  test_seqlock_readonly();
  return tap_done();
}
