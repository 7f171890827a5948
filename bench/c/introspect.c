/*
 * introspect.c: the C side of bench/introspect_bench.ts.
 *
 * - bi_pagemap_pread: one pread of the pagemap entries of a range, what a C
 *   programmer writes (no decoding); memkit's read also decodes them.
 * - bi_pagemap_scan: one PAGEMAP_SCAN ioctl for the present pages of a
 *   range, with the masks memkit's scan({ require: ["present"] }) passes.
 * - bi_spawn_vmas: forks a child that maps n separate mappings (alternating
 *   protections, so the kernel cannot merge them) and waits to be killed.
 * - bi_parse_maps: reads /proc/<pid>/maps whole and parses every line into
 *   start, end, permissions, offset, device, inode and a copy of the path:
 *   the work readMaps does, in C.
 *
 * Every function returns >= 0, or -errno of the first call that failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define BI_API __attribute__((visibility("default")))

struct bi_page_region {
  uint64_t start, end, categories;
};
struct bi_pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define BI_PAGEMAP_SCAN _IOWR('f', 16, struct bi_pm_scan_arg)

BI_API int64_t bi_pagemap_open(void) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

/* Writes one byte in each page of [address, address + length): touching
 * pages from C leaves V8 without a 1 GiB external buffer, which would skew
 * the garbage collector in the other benchmarks of the same run. */
BI_API int64_t bi_touch(uint64_t address, uint64_t length) {
  for (uint64_t off = 0; off < length; off += 4096) ((volatile char *)(uintptr_t)address)[off] = 1;
  return 0;
}

BI_API int64_t bi_close(int32_t fd) { return close(fd) < 0 ? -errno : 0; }

BI_API int64_t bi_pagemap_pread(int32_t fd, uint64_t vaddr, uint64_t pages, void *out) {
  ssize_t n = pread(fd, out, (size_t)(pages * 8), (off_t)(vaddr / 4096 * 8));
  return n < 0 ? -errno : n / 8;
}

BI_API int64_t bi_pagemap_scan(int32_t fd, uint64_t start, uint64_t end, void *vec,
                               uint64_t vec_len) {
  struct bi_pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.start = start;
  a.end = end;
  a.vec = (uint64_t)(uintptr_t)vec;
  a.vec_len = vec_len;
  a.category_mask = 0x08;   /* PAGE_IS_PRESENT */
  a.return_mask = 0x08 | 0x10 | 0x04; /* present, swapped, file */
  int rc = ioctl(fd, BI_PAGEMAP_SCAN, &a);
  return rc < 0 ? -errno : rc;
}

BI_API int64_t bi_spawn_vmas(uint32_t n) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    /* Only system calls here: the parent is multithreaded. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char *base = mmap(NULL, (size_t)n * 2 * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) _exit(1);
    for (uint32_t i = 0; i < n * 2; i += 2) mprotect(base + (size_t)i * 4096, 4096, PROT_READ);
    char c = 1;
    if (write(p[1], &c, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(p[1]);
  char c;
  ssize_t r = read(p[0], &c, 1);
  close(p[0]);
  if (r != 1) return -ECHILD;
  return pid;
}

BI_API int64_t bi_kill(int32_t pid) { return kill(pid, SIGKILL) < 0 ? -errno : 0; }

struct bi_entry {
  uint64_t start, end, offset, inode;
  uint32_t major, minor;
  char perms[4];
  char *path;
};

static uint64_t hexnum(const char **s) {
  uint64_t v = 0;
  for (;; (*s)++) {
    char c = **s;
    if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
    else return v;
  }
}

/* Returns the number of entries parsed. */
BI_API int64_t bi_parse_maps(int32_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len == cap) buf = realloc(buf, cap *= 2);
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      free(buf);
      close(fd);
      return -errno;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  size_t ecap = 1024, count = 0;
  struct bi_entry *e = malloc(ecap * sizeof *e);
  char *arena = malloc(len + 1); /* the paths, copied */
  size_t used = 0;
  const char *s = buf, *end = buf + len;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl == NULL) nl = end;
    if (count == ecap) e = realloc(e, (ecap *= 2) * sizeof *e);
    struct bi_entry *x = &e[count++];
    x->start = hexnum(&s);
    s++;
    x->end = hexnum(&s);
    s++;
    memcpy(x->perms, s, 4);
    s += 5;
    x->offset = hexnum(&s);
    s++;
    x->major = (uint32_t)hexnum(&s);
    s++;
    x->minor = (uint32_t)hexnum(&s);
    s++;
    x->inode = strtoull(s, (char **)&s, 10);
    while (s < nl && *s == ' ') s++;
    x->path = arena + used;
    memcpy(arena + used, s, (size_t)(nl - s));
    used += (size_t)(nl - s);
    arena[used++] = '\0';
    s = nl + 1;
  }
  free(arena);
  free(e);
  free(buf);
  return (int64_t)count;
}
