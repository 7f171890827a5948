/*
 * tap.h: the few TAP-style helpers the C unit tests share.
 *
 * Each check prints one line that tests/run.sh counts:
 *   ok N - name
 *   not ok N - name: detail at file:line
 *   skip N - name: reason
 * A test program ends with `return tap_done();`: exit 0 when every check
 * passed, 1 otherwise (77, "skip all", when nothing ran and something was
 * skipped).
 *
 * Include after the system headers, with _GNU_SOURCE defined first.
 */
#ifndef MEMKIT_TESTS_TAP_H
#define MEMKIT_TESTS_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failures;
static int tap_skips;

/* Prints an `ok` or `not ok` line; the detail is printf-style, used on failure. */
__attribute__((format(printf, 5, 6))) static inline int tap_result(int pass, const char *name,
                                                                   const char *file, int line,
                                                                   const char *fmt, ...) {
  tap_count++;
  if (pass) {
    printf("ok %d - %s\n", tap_count, name);
  } else {
    tap_failures++;
    printf("not ok %d - %s: ", tap_count, name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" at %s:%d\n", file, line);
  }
  fflush(stdout);
  return pass;
}

/* "-EPERM (Operation not permitted)" for a negative value, the number otherwise. */
static inline const char *tap_describe(int64_t v, char *buf, size_t size) {
  if (v < 0 && v > -4096) {
    const char *sym = strerrorname_np((int)-v);
    snprintf(buf, size, "%" PRId64 " = -%s (%s)", v, sym ? sym : "?", strerror((int)-v));
  } else {
    snprintf(buf, size, "%" PRId64, v);
  }
  return buf;
}

static inline int tap_eq(int64_t got, int64_t want, const char *name, const char *expr,
                         const char *file, int line) {
  char g[96], w[96];
  return tap_result(got == want, name, file, line, "%s is %s, expected %s", expr,
                    tap_describe(got, g, sizeof g), tap_describe(want, w, sizeof w));
}

static inline int tap_ge0(int64_t got, const char *name, const char *expr, const char *file,
                          int line) {
  char g[96];
  return tap_result(got >= 0, name, file, line, "%s is %s, expected >= 0", expr,
                    tap_describe(got, g, sizeof g));
}

/* A condition; the detail names the expression. */
#define CHECK(cond, name) tap_result(!!(cond), (name), __FILE__, __LINE__, "%s is false", #cond)
/* Two integers are equal (errno values are shown by name). */
#define CHECK_EQ(got, want, name) \
  tap_eq((int64_t)(got), (int64_t)(want), (name), #got, __FILE__, __LINE__)
/* A memkit call succeeded: its result is >= 0. */
#define CHECK_OK(got, name) tap_ge0((int64_t)(got), (name), #got, __FILE__, __LINE__)
/* A memkit call failed with exactly -errno `e` (e.g. CHECK_ERR(x, EBADF, ...)). */
#define CHECK_ERR(got, e, name) CHECK_EQ(got, -(int64_t)(e), name)

/* A check that cannot run here, with the reason. */
static inline void tap_skip(const char *name, const char *reason) {
  tap_count++;
  tap_skips++;
  printf("skip %d - %s: %s\n", tap_count, name, reason);
  fflush(stdout);
}
#define SKIP(name, reason) tap_skip((name), (reason))

/* Prints the plan and returns the exit code for main. */
static inline int tap_done(void) {
  printf("1..%d\n", tap_count);
  if (tap_failures > 0) {
    printf("# %d of %d failed\n", tap_failures, tap_count);
    return 1;
  }
  if (tap_count == tap_skips && tap_skips > 0) return 77;
  return 0;
}

#endif /* MEMKIT_TESTS_TAP_H */
