/* internal.h: helpers shared by memkit's C files; not part of the ABI. */
#ifndef MEMKIT_INTERNAL_H
#define MEMKIT_INTERNAL_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "memkit.h"

/* A system call's result as the ABI wants it: the value, or -errno. */
static inline int64_t mk_ret(long ret) { return ret < 0 ? -(int64_t)errno : (int64_t)ret; }

/* Whether a 64-bit value fits the platform's off_t / size_t without loss. */
#define MK_FITS_OFF(v) ((v) <= (uint64_t)INT64_MAX)

/* proc.c: "/proc/self/<file>" (pid 0) or "/proc/<pid>/<file>", and opening it
 * read-only; both return 0 or a descriptor, or -errno. */
int mk_proc_path(char *out, size_t size, int32_t pid, const char *file);
int mk_proc_open(int32_t pid, const char *file);

#endif /* MEMKIT_INTERNAL_H */
