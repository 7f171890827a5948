/*
 * lock.c: the C side of bench/lock_bench.ts: memkit's own lock code
 * (cbits/lock.c, compiled in) driven from C loops, the baselines for the
 * same loops driven from JavaScript through SharedMutex.
 *
 * bl_lock_loop: n uncontended mk_mutex_lock + mk_mutex_unlock pairs.
 * bl_increments: n increments of the u32 at counter under the mutex (the
 * loop each of the two contending processes runs).
 * bl_robust_*: glibc's robust, process-shared pthread mutex, the baseline
 * of "holder killed to next owner": the kernel walks a dying thread's
 * robust list, marks the lock it held (FUTEX_OWNER_DIED) and wakes a
 * waiter, at once, where memkit's waiters notice a dead owner after a
 * liveness slice (cbits/lock.c explains why it cannot use the robust list).
 *
 * Return 0 or the first -errno a lock call gave.
 */
#include "../../cbits/lock.c"

#include <pthread.h>

#define BL_API __attribute__((visibility("default")))

BL_API int64_t bl_lock_loop(uint64_t address, uint64_t self, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    int64_t r = mk_mutex_lock(address, self, 10000000000, 0, NULL);
    if (r < 0) return r;
    r = mk_mutex_unlock(address, self);
    if (r < 0) return r;
  }
  return 0;
}

BL_API int64_t bl_increments(uint64_t address, uint64_t self, uint64_t counter, uint64_t n) {
  volatile uint32_t *c = (volatile uint32_t *)(uintptr_t)counter;
  for (uint64_t i = 0; i < n; i++) {
    int64_t r = mk_mutex_lock(address, self, 10000000000, 0, NULL);
    if (r < 0) return r;
    *c = *c + 1;
    r = mk_mutex_unlock(address, self);
    if (r < 0) return r;
  }
  return 0;
}

/* A robust, process-shared pthread mutex at address (8-byte aligned, 40 bytes). */
BL_API int64_t bl_robust_init(uint64_t address) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  int r = pthread_mutex_init((pthread_mutex_t *)(uintptr_t)address, &a);
  pthread_mutexattr_destroy(&a);
  return -r;
}

/* Locks it on the calling thread and keeps it (the holder that is killed). */
BL_API int64_t bl_robust_hold(uint64_t address) {
  return -pthread_mutex_lock((pthread_mutex_t *)(uintptr_t)address);
}

/* Waits for it; 1 when its holder had died (it is repaired and released), 0
 * when it was released normally, or -errno. */
BL_API int64_t bl_robust_take(uint64_t address) {
  pthread_mutex_t *m = (pthread_mutex_t *)(uintptr_t)address;
  int r = pthread_mutex_lock(m);
  int died = r == EOWNERDEAD;
  if (died) r = pthread_mutex_consistent(m);
  if (r != 0) return -r;
  pthread_mutex_unlock(m);
  return died;
}
