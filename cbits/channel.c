/* channel.c: the shared ring of a channel between two processes: its
 * mapping, and the two steps of its sleep protocol that need a full memory
 * barrier (a store, then a load of the peer's word), which JavaScript
 * cannot express on memory it did not allocate. */
#include "internal.h"

#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(MK_CHANNEL_OFF_HEAD % 64 == 0 && MK_CHANNEL_OFF_TAIL % 64 == 0,
               "head and tail on cache lines of their own");

MK_API int64_t mk_channel_map(int32_t fd, uint64_t capacity) {
  const uint64_t page = mk_core_page();
  if (capacity < page || (capacity & (capacity - 1)) || capacity > ((uint64_t)1 << 31)) {
    return -EINVAL;
  }
  uint64_t span = page + 2 * capacity;
  uint8_t *base = mk_map_reserve(span);
  if (base == MAP_FAILED) return -(int64_t)errno;
  void *h = mmap(base, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  int ret = h == MAP_FAILED ? -errno : mk_ring_place(base + page, fd, page, capacity);
  if (ret < 0) {
    munmap(base, (size_t)span);
    return ret;
  }
  return (int64_t)(uintptr_t)base;
}

/* The header word at `offset`, which the caller keeps inside the header page. */
static _Atomic uint32_t *word(uint64_t header, uint32_t offset) {
  return (_Atomic uint32_t *)(uintptr_t)(header + (offset & ~3u));
}

MK_API int64_t mk_channel_publish(uint64_t header, uint32_t offset, uint32_t value,
                                  uint32_t wait_offset, int32_t eventfd) {
  if (offset >= 4096 || wait_offset >= 4096) return -EINVAL;
  atomic_store(word(header, offset), value);
  _Atomic uint32_t *wait = word(header, wait_offset);
  if (atomic_load(wait) == 0 || atomic_exchange(wait, 0) == 0) return 0;
  uint64_t one = 1;
  if (write(eventfd, &one, sizeof one) < 0 && errno != EAGAIN) return -errno;
  return 1;
}

MK_API int64_t mk_channel_arm(uint64_t header, uint32_t wait_offset, uint32_t offset,
                              uint32_t seen) {
  if (offset >= 4096 || wait_offset >= 4096) return -EINVAL;
  _Atomic uint32_t *wait = word(header, wait_offset);
  atomic_store(wait, 1);
  if (atomic_load(word(header, offset)) != seen) {
    atomic_store(wait, 0);
    return 1;
  }
  return 0;
}
