/*
 * lock.c: the C side of bench/lock_bench.ts: memkit's own lock code
 * (cbits/lock.c, compiled in) driven from C loops, the baselines for the
 * same loops driven from JavaScript through SharedMutex.
 *
 * bl_lock_loop: n uncontended mk_mutex_lock + mk_mutex_unlock pairs.
 * bl_increments: n increments of the u32 at counter under the mutex (the
 * loop each of the two contending processes runs).
 *
 * Return 0 or the first -errno a lock call gave.
 */
#include "../../cbits/lock.c"

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
