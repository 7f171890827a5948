/*
 * maps.h: helpers the C tests share to check memkit against the kernel:
 * /proc/self/maps lookups, writes in a child that may fault, memfds of known
 * content. Include after tap.h and memkit.h, with a `static uint64_t page`
 * set to the page size before use.
 */
#ifndef MEMKIT_TESTS_MAPS_H
#define MEMKIT_TESTS_MAPS_H

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* The /proc/self/maps line holding `addr`. */
struct vma {
  uint64_t start, end;
  char perms[5];     /* "rw-s" */
  unsigned long ino; /* 0 for anonymous memory */
  char path[256];    /* "" for anonymous memory */
};

/* Fills *v for the mapping that contains addr; 1 when found, 0 when not. */
static inline int find_vma(uint64_t addr, struct vma *v) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (f == NULL) return 0;
  char *line = NULL;
  size_t cap = 0;
  int found = 0;
  while (!found && getline(&line, &cap, f) > 0) {
    unsigned long long start, end, off;
    unsigned int major, minor;
    int n = 0;
    memset(v, 0, sizeof *v);
    if (sscanf(line, "%llx-%llx %4s %llx %x:%x %lu %n", &start, &end, v->perms, &off, &major,
               &minor, &v->ino, &n) < 7)
      continue;
    if (addr < start || addr >= end) continue;
    v->start = start;
    v->end = end;
    snprintf(v->path, sizeof v->path, "%s", line + n);
    v->path[strcspn(v->path, "\n")] = '\0';
    found = 1;
  }
  free(line);
  fclose(f);
  return found;
}

/* The permissions of the mapping holding addr, or "none" when unmapped. */
static inline const char *perms_at(uint64_t addr, char buf[5]) {
  struct vma v;
  snprintf(buf, 5, "%s", find_vma(addr, &v) ? v.perms : "none");
  return buf;
}

/* Checks the permissions /proc/self/maps shows at addr ("none": unmapped). */
#define CHECK_PERMS(addr, want, name) check_perms((addr), (want), (name), __LINE__)
static inline int check_perms(uint64_t addr, const char *want, const char *name, int line) {
  char buf[5];
  perms_at(addr, buf);
  return tap_result(strcmp(buf, want) == 0, name, __FILE__, line,
                    "/proc/self/maps shows \"%s\" at 0x%llx, expected \"%s\"", buf,
                    (unsigned long long)addr, want);
}

static inline void on_segv(int sig) {
  (void)sig;
  _exit(42);
}

/* In a child: a SIGSEGV or SIGBUS exits 42 instead of dumping core. */
static inline void catch_faults(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
}

/* Reads addr in a child: the byte read (0-255), 256 when the read faulted
 * (SIGSEGV or SIGBUS), -1 on any other outcome. */
static inline int read_in_child(uint64_t addr) {
  fflush(stdout);
  int fds[2];
  if (pipe(fds) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    catch_faults();
    unsigned char v = *(volatile unsigned char *)(uintptr_t)addr;
    if (write(fds[1], &v, 1) != 1) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  unsigned char v = 0;
  ssize_t n = read(fds[0], &v, 1);
  close(fds[0]);
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  if (WEXITSTATUS(status) == 42) return 256;
  return WEXITSTATUS(status) == 0 && n == 1 ? v : -1;
}

/* Writes `value` to addr in a child process: 0 when the write went through,
 * 42 when it faulted (SIGSEGV), -1 on any other outcome. A MAP_SHARED
 * mapping carries the child's write back to us. */
static inline int write_in_child(uint64_t addr, unsigned char value) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    catch_faults();
    *(volatile unsigned char *)(uintptr_t)addr = value;
    _exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  int code = WEXITSTATUS(status);
  return code == 0 || code == 42 ? code : -1;
}

/* An address range of n pages that is certainly unmapped (just released). */
static inline uint64_t unmapped_range(uint64_t n) {
  void *p = mmap(NULL, n * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  munmap(p, n * page);
  return (uint64_t)(uintptr_t)p;
}

/* A memfd of n pages, filled with (i * 7 + seed) & 0xff. */
static inline int32_t filled_memfd(const char *name, uint64_t n, unsigned seed) {
  int64_t fd = mk_memfd_create(name, 0);
  if (fd < 0) return -1;
  unsigned char *buf = malloc(n * page);
  for (uint64_t i = 0; i < n * page; i++) buf[i] = (unsigned char)((i * 7 + seed) & 0xff);
  int ok = mk_memfd_resize((int32_t)fd, n * page, NULL) == 0 &&
           pwrite((int)fd, buf, n * page, 0) == (ssize_t)(n * page);
  free(buf);
  if (!ok) {
    mk_core_close((int32_t)fd);
    return -1;
  }
  return (int32_t)fd;
}

/* Whether the n bytes at p are all zero. */
static inline int all_zero(const volatile unsigned char *p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

/* How many lines /proc/self/maps has now. */
static inline int maps_count(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (f == NULL) return -1;
  int n = 0, c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

#endif /* MEMKIT_TESTS_MAPS_H */
