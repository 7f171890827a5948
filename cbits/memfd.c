/* memfd.c: anonymous files to map, share and seal. */
#include "internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Linux >= 6.3 (uapi memfd.h); older userspace headers may lack them. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

_Static_assert(MK_SEAL_SEAL == F_SEAL_SEAL, "seal bits match the kernel's");
_Static_assert(MK_SEAL_SHRINK == F_SEAL_SHRINK, "seal bits match the kernel's");
_Static_assert(MK_SEAL_GROW == F_SEAL_GROW, "seal bits match the kernel's");
_Static_assert(MK_SEAL_WRITE == F_SEAL_WRITE, "seal bits match the kernel's");
_Static_assert(MK_SEAL_FUTURE_WRITE == F_SEAL_FUTURE_WRITE, "seal bits match the kernel's");
_Static_assert(MK_SEAL_EXEC == F_SEAL_EXEC, "seal bits match the kernel's");

#define MK_SEAL_ALL                                                                  \
  (MK_SEAL_SEAL | MK_SEAL_SHRINK | MK_SEAL_GROW | MK_SEAL_WRITE | MK_SEAL_FUTURE_WRITE | \
   MK_SEAL_EXEC)

MK_API int64_t mk_memfd_create(const char *name, uint32_t flags) {
  if (name == NULL) return -EINVAL;
  if (flags & ~(MK_MEMFD_SEALABLE | MK_MEMFD_NOEXEC)) return -EINVAL;
  /* The kernel limits names to 249 bytes ("memfd:" + name < NAME_MAX). */
  if (strnlen(name, 250) > 249) return -ENAMETOOLONG;
  unsigned int mfd = MFD_CLOEXEC;
  if (flags & MK_MEMFD_SEALABLE) mfd |= MFD_ALLOW_SEALING;
  if (flags & MK_MEMFD_NOEXEC) mfd |= MFD_NOEXEC_SEAL;
  return mk_ret(memfd_create(name, mfd));
}

MK_API int64_t mk_memfd_resize(int32_t fd, uint64_t size) {
  if (!MK_FITS_OFF(size)) return -EFBIG;
  return mk_ret(ftruncate(fd, (off_t)size));
}

MK_API int64_t mk_memfd_seal(int32_t fd, uint32_t seals) {
  if (seals & ~MK_SEAL_ALL) return -EINVAL;
  return mk_ret(fcntl(fd, F_ADD_SEALS, (int)seals));
}

MK_API int64_t mk_memfd_seals(int32_t fd) { return mk_ret(fcntl(fd, F_GET_SEALS)); }

MK_API int64_t mk_memfd_noexec_supported(void) {
  int fd = memfd_create("memkit-probe", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  if (fd < 0) return errno == EINVAL ? 0 : -errno;
  close(fd);
  return 1;
}
