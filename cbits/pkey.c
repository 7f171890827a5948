/* pkey.c: memory protection keys (pkey_alloc, pkey_mprotect, the PKRU
 * register through glibc's pkey_set/pkey_get). Keys' rights are per thread. */
#include "internal.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PKEY_DISABLE_ACCESS
#define PKEY_DISABLE_ACCESS 0x1
#define PKEY_DISABLE_WRITE 0x2
#endif

_Static_assert(MK_PKEY_DISABLE_ACCESS == PKEY_DISABLE_ACCESS, "rights match the kernel's");
_Static_assert(MK_PKEY_DISABLE_WRITE == PKEY_DISABLE_WRITE, "rights match the kernel's");

#define MK_PKEY_RIGHTS (MK_PKEY_DISABLE_ACCESS | MK_PKEY_DISABLE_WRITE)

MK_API int64_t mk_pkey_alloc(uint32_t rights) {
  if (rights & ~(uint32_t)MK_PKEY_RIGHTS) return -EINVAL;
#ifdef SYS_pkey_alloc
  return mk_ret(syscall(SYS_pkey_alloc, 0UL, (unsigned long)rights));
#else
  return -ENOSYS;
#endif
}

MK_API int64_t mk_pkey_free(int32_t key) {
#ifdef SYS_pkey_free
  return mk_ret(syscall(SYS_pkey_free, (long)key));
#else
  (void)key;
  return -ENOSYS;
#endif
}

MK_API int64_t mk_pkey_mprotect(uint64_t address, uint64_t length, uint32_t prot, int32_t key) {
  if (address == 0 || length == 0) return -EINVAL;
  if (prot & ~(uint32_t)(MK_PROT_READ | MK_PROT_WRITE | MK_PROT_EXEC)) return -EINVAL;
#ifdef SYS_pkey_mprotect
  return mk_ret(syscall(SYS_pkey_mprotect, (void *)(uintptr_t)address, (size_t)length,
                        (unsigned long)prot, (long)key));
#else
  return -ENOSYS;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* Whether the OS enabled protection keys (CPUID.7.0:ECX.OSPKE): without it
 * RDPKRU and WRPKRU are undefined instructions (SIGILL). */
static int ospke(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (c >> 4) & 1;
}

/* RDPKRU/WRPKRU, as glibc's pkey_get/pkey_set do them: two bits per key. */
static inline uint32_t rdpkru(void) {
  uint32_t eax, edx, ecx = 0;
  __asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(ecx));
  return eax;
}
static inline void wrpkru(uint32_t pkru) {
  uint32_t ecx = 0, edx = 0;
  __asm__ volatile(".byte 0x0f,0x01,0xef" : : "a"(pkru), "c"(ecx), "d"(edx) : "memory");
}
#endif

MK_API int64_t mk_pkey_set(int32_t key, uint32_t rights) {
  /* Key 0 tags all other memory of the process (the stack, the heap): never. */
  if (key < 1 || key > 15 || (rights & ~(uint32_t)MK_PKEY_RIGHTS)) return -EINVAL;
#if defined(__x86_64__) || defined(__i386__)
  if (!ospke()) return -ENOSYS;
  uint32_t pkru = rdpkru();
  pkru = (pkru & ~(3u << (2 * key))) | (rights << (2 * key));
  wrpkru(pkru);
  return 0;
#else
  return -ENOSYS;
#endif
}

MK_API int64_t mk_pkey_get(int32_t key) {
  if (key < 0 || key > 15) return -EINVAL;
#if defined(__x86_64__) || defined(__i386__)
  if (!ospke()) return -ENOSYS;
  return (int64_t)((rdpkru() >> (2 * key)) & 3u);
#else
  return -ENOSYS;
#endif
}
