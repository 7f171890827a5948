/* map.c: mapping descriptors, changing protections, unmapping. */
#include "internal.h"

#include <sys/mman.h>

#define MK_PROT_ALL (MK_PROT_READ | MK_PROT_WRITE | MK_PROT_EXEC)

_Static_assert(MK_PROT_READ == PROT_READ, "protection bits match the kernel's");
_Static_assert(MK_PROT_WRITE == PROT_WRITE, "protection bits match the kernel's");
_Static_assert(MK_PROT_EXEC == PROT_EXEC, "protection bits match the kernel's");

static int64_t mk_addr_result(void *p) {
  return p == MAP_FAILED ? -(int64_t)errno : (int64_t)(uintptr_t)p;
}

MK_API int64_t mk_map_fd(int32_t fd, uint64_t offset, uint64_t length, uint32_t prot) {
  if (length == 0 || (prot & ~MK_PROT_ALL)) return -EINVAL;
  if (!MK_FITS_OFF(offset) || !MK_FITS_OFF(length)) return -EOVERFLOW;
  return mk_addr_result(mmap(NULL, (size_t)length, (int)prot, MAP_SHARED, fd, (off_t)offset));
}

MK_API int64_t mk_map_unmap(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  return mk_ret(munmap((void *)(uintptr_t)address, (size_t)length));
}

MK_API int64_t mk_map_protect(uint64_t address, uint64_t length, uint32_t prot) {
  if (address == 0 || length == 0 || (prot & ~MK_PROT_ALL)) return -EINVAL;
  return mk_ret(mprotect((void *)(uintptr_t)address, (size_t)length, (int)prot));
}

MK_API int64_t mk_map_placeholder(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  void *p = mmap((void *)(uintptr_t)address, (size_t)length, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? -(int64_t)errno : 0;
}

MK_API int64_t mk_map_scrub(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  void *p = mmap((void *)(uintptr_t)address, (size_t)length, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? -(int64_t)errno : 0;
}

MK_API int64_t mk_map_relocate(uint64_t address, uint64_t span, const uint64_t *runs,
                               uint32_t count) {
  if (address == 0 || span == 0 || !MK_FITS_OFF(span) || count == 0 || runs == NULL) {
    return -EINVAL;
  }
  for (uint32_t i = 0; i < count; i++) {
    uint64_t off = runs[2 * i], len = runs[2 * i + 1];
    if (len == 0 || off > span || len > span - off) return -EINVAL;
  }
  uint8_t *to = mmap(NULL, (size_t)span, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (to == MAP_FAILED) return -(int64_t)errno;
  uint8_t *from = (uint8_t *)(uintptr_t)address;
  for (uint32_t i = 0; i < count; i++) {
    size_t off = (size_t)runs[2 * i], len = (size_t)runs[2 * i + 1];
    void *p = mremap(from + off, 0, len, MREMAP_MAYMOVE | MREMAP_FIXED, to + off);
    if (p == MAP_FAILED) {
      int64_t err = -(int64_t)errno;
      munmap(to, (size_t)span);
      return err;
    }
  }
  void *p = mmap(from, (size_t)span, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int64_t err = -(int64_t)errno;
    munmap(to, (size_t)span);
    return err;
  }
  return (int64_t)(uintptr_t)to;
}
