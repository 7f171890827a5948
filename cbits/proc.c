/* proc.c: reading /proc/<pid>/{maps,smaps,smaps_rollup} in sequence, PROCMAP_QUERY,
 * and the capability that decides whether pagemap shows PFNs.
 *
 * The paths are built here from a pid (0 meaning /proc/self): the library
 * takes no arbitrary path for /proc. */
#include "internal.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>


static const char *const PROC_FILES[] = {"maps", "smaps", "smaps_rollup"};

/* "/proc/self/<file>" or "/proc/<pid>/<file>"; -EINVAL for a negative pid. */
int mk_proc_path(char *out, size_t size, int32_t pid, const char *file) {
  int n = pid == 0 ? snprintf(out, size, "/proc/self/%s", file)
                   : snprintf(out, size, "/proc/%d/%s", (int)pid, file);
  return pid < 0 || n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int mk_proc_open(int32_t pid, const char *file) {
  char path[64];
  int ret = mk_proc_path(path, sizeof path, pid, file);
  if (ret < 0) return ret;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  return fd < 0 ? -errno : fd;
}

MK_API int64_t mk_proc_open_file(int32_t pid, uint32_t which) {
  if (which > MK_PROC_SMAPS_ROLLUP) return -EINVAL;
  return mk_proc_open(pid, PROC_FILES[which]);
}

MK_API int64_t mk_proc_read_next(int32_t fd, uint8_t *buf, uint64_t cap) {
  if (buf == NULL && cap > 0) return -EFAULT;
  if (!MK_FITS_OFF(cap)) return -EINVAL;
  /* seq_file files are read in sequence, in chunks the kernel chooses: read
   * on until buf is full, so that fewer than cap bytes means the end. */
  uint64_t total = 0;
  while (total < cap) {
    ssize_t n = read(fd, buf + total, (size_t)(cap - total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    total += (uint64_t)n;
  }
  return (int64_t)total;
}

MK_API int64_t mk_proc_query(int32_t pid, uint64_t address, uint32_t flags, void *out,
                             uint8_t *name, uint32_t name_cap) {
  if (flags & ~MK_PROCMAP_QUERY_FLAGS) return -EINVAL;
  if (out == NULL) return -EFAULT;
  int fd = mk_proc_open(pid, "maps");
  /* ENOENT from the ioctl means "no mapping": a missing process is ESRCH. */
  if (fd == -ENOENT) return -ESRCH;
  if (fd < 0) return fd;
  struct mk_procmap_query q;
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_flags = flags;
  q.query_addr = address;
  q.vma_name_size = name == NULL ? 0 : name_cap;
  q.vma_name_addr = (uint64_t)(uintptr_t)name;
  int rc = ioctl(fd, MK_PROCMAP_QUERY, &q);
  int err = errno;
  close(fd);
  if (rc < 0) return -err;
  uint64_t *o = out;
  o[0] = q.vma_start;
  o[1] = q.vma_end;
  o[2] = q.vma_flags;
  o[3] = q.vma_page_size;
  o[4] = q.vma_offset;
  o[5] = q.inode;
  o[6] = q.dev_major;
  o[7] = q.dev_minor;
  /* The kernel counts the NUL in vma_name_size; 0 means no name. */
  o[8] = q.vma_name_size > 0 ? q.vma_name_size - 1 : 0;
  return 0;
}

MK_API int64_t mk_proc_cap_sys_admin(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) return -errno;
  return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) ? 1 : 0;
}

/* ---- smaps rows ---- */

/* Lower-case hexadecimal digits t[*i, e) up to a non-digit: 1 to 16 of them,
 * else -1. */
static int hex_at(const uint8_t *t, uint64_t *i, uint64_t e, uint64_t *out) {
  uint64_t v = 0, b = *i, j = b;
  for (; j < e; j++) {
    uint8_t c = t[j];
    unsigned d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else break;
    v = v << 4 | d;
    if (j - b >= 16) return -1;
  }
  if (j == b) return -1;
  *i = j;
  *out = v;
  return (int)(j - b);
}

/* Whether a double holds v exactly. */
static int exact(uint64_t v) {
  if (v >> 53 == 0) return 1;
  int bits = 64 - __builtin_clzll(v);
  return (v & ((1ull << (bits - 53)) - 1)) == 0;
}

/* The device number at t[*i]: "%02x" as the kernel prints it (two digits,
 * or more without a leading zero), at most `max`. */
static int dev_at(const uint8_t *t, uint64_t *i, uint64_t e, uint64_t max, uint64_t *out) {
  uint64_t b = *i;
  int n = hex_at(t, i, e, out);
  if (n < 2 || (n > 2 && t[b] == '0') || *out > max) return -1;
  return 0;
}

/* Parses the header line t[b, e) into row r. */
static int smaps_header(const uint8_t *t, uint64_t b, uint64_t e, double *r) {
  uint64_t i = b, start, end, offset, major, minor, inode = 0;
  if (hex_at(t, &i, e, &start) < 0 || i >= e || t[i++] != '-') return -1;
  if (hex_at(t, &i, e, &end) < 0 || i + 6 > e || t[i++] != ' ') return -1;
  unsigned perms = 0;
  if (t[i] == 'r') perms |= 8;
  else if (t[i] != '-') return -1;
  if (t[i + 1] == 'w') perms |= 4;
  else if (t[i + 1] != '-') return -1;
  if (t[i + 2] == 'x') perms |= 2;
  else if (t[i + 2] != '-') return -1;
  if (t[i + 3] == 's') perms |= 1;
  else if (t[i + 3] != 'p') return -1;
  if (t[i + 4] != ' ') return -1;
  i += 5;
  if (hex_at(t, &i, e, &offset) < 0 || i >= e || t[i++] != ' ') return -1;
  /* The kernel's MAJOR and MINOR: 12 and 20 bits. */
  if (dev_at(t, &i, e, 0xfff, &major) < 0 || i >= e || t[i++] != ':') return -1;
  if (dev_at(t, &i, e, 0xfffff, &minor) < 0 || i >= e || t[i++] != ' ') return -1;
  uint64_t digits = i;
  for (; i < e && t[i] >= '0' && t[i] <= '9'; i++) {
    if (i - digits >= 15) return -1; /* below 2^53: exact as a double */
    inode = inode * 10 + (t[i] - '0');
  }
  if (i == digits || (i < e && t[i] != ' ')) return -1;
  while (i < e && t[i] == ' ') i++;
  if (end < start || !exact(start) || !exact(end) || !exact(offset)) return -1;
  memset(r, 0, MK_SMAPS_ROW_SIZE * sizeof *r);
  r[MK_SMAPS_ROW_START] = (double)start;
  r[MK_SMAPS_ROW_END] = (double)end;
  r[MK_SMAPS_ROW_OFFSET] = (double)offset;
  r[MK_SMAPS_ROW_MAJOR] = (double)major;
  r[MK_SMAPS_ROW_MINOR] = (double)minor;
  r[MK_SMAPS_ROW_INODE] = (double)inode;
  r[MK_SMAPS_ROW_PERMS] = perms;
  r[MK_SMAPS_ROW_PATH] = (double)i;
  r[MK_SMAPS_ROW_PATH_LENGTH] = (double)(e - i);
  return 0;
}

/* The row column of a field name t[b, e), or -1 for a field not kept. */
static int smaps_column(const uint8_t *t, uint64_t b, uint64_t e) {
  static const struct { const char *name; int column; } KEPT[] = {
      {"Rss", MK_SMAPS_ROW_RSS},
      {"Pss", MK_SMAPS_ROW_PSS},
      {"Shared_Dirty", MK_SMAPS_ROW_SHARED_DIRTY},
      {"Private_Dirty", MK_SMAPS_ROW_PRIVATE_DIRTY},
      {"Anonymous", MK_SMAPS_ROW_ANONYMOUS},
      {"Swap", MK_SMAPS_ROW_SWAP},
      {"Locked", MK_SMAPS_ROW_LOCKED},
  };
  for (size_t k = 0; k < sizeof KEPT / sizeof KEPT[0]; k++) {
    size_t n = strlen(KEPT[k].name);
    if (e - b == n && memcmp(t + b, KEPT[k].name, n) == 0) return KEPT[k].column;
  }
  return -1;
}

/* The value of a kept field after its colon, t[i, e): spaces, 1 to 15
 * digits, an optional " kB", spaces; in bytes. */
static int smaps_value(const uint8_t *t, uint64_t i, uint64_t e, double *out) {
  while (i < e && t[i] == ' ') i++;
  uint64_t digits = i, v = 0;
  for (; i < e && t[i] >= '0' && t[i] <= '9'; i++) v = v * 10 + (t[i] - '0');
  if (i == digits || i - digits > 15) return -1;
  int kb = 0;
  if (i + 3 <= e && t[i] == ' ' && t[i + 1] == 'k' && t[i + 2] == 'B') {
    kb = 1;
    i += 3;
  }
  while (i < e && t[i] == ' ') i++;
  if (i != e) return -1;
  *out = kb ? (double)v * 1024 : (double)v;
  return 0;
}

MK_API int64_t mk_proc_smaps_rows(const uint8_t *text, uint64_t len, double *rows, uint32_t count,
                                  uint32_t cap) {
  if ((text == NULL && len > 0) || (rows == NULL && cap > 0)) return -EFAULT;
  if (count > cap) return -EINVAL;
  uint64_t i = 0;
  while (i < len) {
    const uint8_t *nl = memchr(text + i, '\n', (size_t)(len - i));
    uint64_t e = nl == NULL ? len : (uint64_t)(nl - text);
    if (e > i) {
      /* A field's name ends at a colon before any space (as src/maps.ts
       * tells fields from headers); fields belong to the open row. */
      uint64_t j = i;
      while (j < e && text[j] != ':' && text[j] != ' ') j++;
      if (j < e && text[j] == ':' && j > i && count > 0) {
        int column = smaps_column(text, i, j);
        if (column >= 0 &&
            smaps_value(text, j + 1, e, &rows[(size_t)(count - 1) * MK_SMAPS_ROW_SIZE + column]) < 0) {
          return -EBADMSG;
        }
      } else {
        if (count == cap) return -ENOSPC;
        if (smaps_header(text, i, e, &rows[(size_t)count * MK_SMAPS_ROW_SIZE]) < 0) return -EBADMSG;
        count++;
      }
    }
    i = e + 1;
  }
  return count;
}

/* v (< 2^64, whole) as a uint64, or -1 when it is not. */
static int whole(double v, uint64_t *out) {
  if (!(v >= 0 && v < 18446744073709551616.0) || v != (double)(uint64_t)v) return -1;
  *out = (uint64_t)v;
  return 0;
}

/* The digits of v in base 16 or 10 into d (backwards); their count. */
static int digits(uint64_t v, unsigned base, char d[24]) {
  int n = 0;
  do {
    d[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  return n;
}

/* Writes v in `base`, padded with `pad` to `width`, at o; the new o. */
static uint8_t *put_number(uint8_t *o, uint64_t v, unsigned base, int width, char pad) {
  char d[24];
  int n = digits(v, base, d);
  for (int k = n; k < width; k++) *o++ = (uint8_t)pad;
  while (n > 0) *o++ = (uint8_t)d[--n];
  return o;
}

MK_API int64_t mk_proc_smaps_format(const double *rows, const int32_t *cells, uint32_t count,
                                    const uint8_t *strings, uint64_t strings_len,
                                    const int32_t *offsets, uint32_t nstrings, uint8_t *out,
                                    uint64_t cap, uint64_t *written) {
  if ((count > 0 && (rows == NULL || cells == NULL || offsets == NULL)) || written == NULL ||
      (out == NULL && cap > 0) || (strings == NULL && strings_len > 0)) {
    return -EFAULT;
  }
  uint64_t at = 0;
  uint32_t r = 0;
  for (; r < count; r++) {
    const double *row = rows + (size_t)r * MK_SMAPS_ROW_SIZE;
    const int32_t *cell = cells + (size_t)r * MK_SMAPS_CELLS;
    uint64_t start, offset, major, minor, inode, perms;
    if (whole(row[MK_SMAPS_ROW_START], &start) < 0 || whole(row[MK_SMAPS_ROW_OFFSET], &offset) < 0 ||
        whole(row[MK_SMAPS_ROW_MAJOR], &major) < 0 || whole(row[MK_SMAPS_ROW_MINOR], &minor) < 0 ||
        whole(row[MK_SMAPS_ROW_INODE], &inode) < 0 || whole(row[MK_SMAPS_ROW_PERMS], &perms) < 0 ||
        perms > 15) {
      return -EINVAL;
    }
    /* The numbers take at most 16 + 1 + 4 + 1 + 16 + 1 + 17 + 1 + 20 bytes. */
    uint64_t need = 96;
    for (unsigned k = 0; k < MK_SMAPS_CELLS; k++) {
      int32_t s = cell[k];
      if (s < 0 || (uint32_t)s >= nstrings || offsets[s] < 0 || offsets[s] > offsets[s + 1] ||
          (uint64_t)offsets[s + 1] > strings_len) {
        return -EINVAL;
      }
      need += 1 + (uint64_t)(offsets[s + 1] - offsets[s]);
    }
    if (need + 1 > cap - at || cap < at) break;
    uint8_t *o = out + at;
    o = put_number(o, start, 16, 16, ' ');
    *o++ = ' ';
    *o++ = perms & 8 ? 'r' : '-';
    *o++ = perms & 4 ? 'w' : '-';
    *o++ = perms & 2 ? 'x' : '-';
    *o++ = perms & 1 ? 's' : 'p';
    *o++ = ' ';
    o = put_number(o, offset, 16, 8, '0');
    *o++ = ' ';
    /* "%02x:%02x" right-aligned in 6. */
    char dm[24], dn[24];
    int nm = digits(major, 16, dm), nn = digits(minor, 16, dn);
    int dev = (nm < 2 ? 2 : nm) + 1 + (nn < 2 ? 2 : nn);
    for (int k = dev; k < 6; k++) *o++ = ' ';
    o = put_number(o, major, 16, 2, '0');
    *o++ = ':';
    o = put_number(o, minor, 16, 2, '0');
    *o++ = ' ';
    o = put_number(o, inode, 10, 8, ' ');
    for (unsigned k = 0; k < MK_SMAPS_CELLS; k++) {
      int32_t s = cell[k];
      *o++ = ' ';
      size_t n = (size_t)(offsets[s + 1] - offsets[s]);
      memcpy(o, strings + offsets[s], n);
      o += n;
    }
    *o++ = '\n';
    at = (uint64_t)(o - out);
  }
  *written = at;
  return r;
}

MK_API int64_t mk_proc_smaps_sizes(const double *rows, uint32_t count, int32_t *cells,
                                   double *values, uint32_t values_cap, double *totals) {
  if ((count > 0 && (rows == NULL || cells == NULL)) || totals == NULL ||
      (values == NULL && values_cap > 0)) {
    return -EFAULT;
  }
  /* An open-addressing table of value indices, at most half full. */
  size_t slots = 16;
  while (slots < 2 * (size_t)values_cap) slots *= 2;
  int32_t *table = malloc(slots * sizeof *table);
  if (table == NULL) return -ENOMEM;
  for (size_t k = 0; k < slots; k++) table[k] = -1;
  for (unsigned k = 0; k < 7; k++) totals[k] = 0;
  uint32_t n = 0;
  for (uint32_t r = 0; r < count; r++) {
    const double *row = rows + (size_t)r * MK_SMAPS_ROW_SIZE;
    const double v[7] = {
        row[MK_SMAPS_ROW_END] - row[MK_SMAPS_ROW_START],
        row[MK_SMAPS_ROW_RSS],
        row[MK_SMAPS_ROW_PSS],
        row[MK_SMAPS_ROW_PRIVATE_DIRTY] + row[MK_SMAPS_ROW_SHARED_DIRTY],
        row[MK_SMAPS_ROW_ANONYMOUS],
        row[MK_SMAPS_ROW_SWAP],
        row[MK_SMAPS_ROW_LOCKED],
    };
    for (unsigned k = 0; k < 7; k++) {
      totals[k] += v[k];
      uint64_t bits;
      memcpy(&bits, &v[k], sizeof bits);
      size_t h = (size_t)((bits * 0x9e3779b97f4a7c15ull) >> 32) & (slots - 1);
      /* Equal numbers share a cell (the parse makes neither NaN nor -0). */
      while (table[h] >= 0 && !(values[table[h]] == v[k])) h = (h + 1) & (slots - 1);
      if (table[h] < 0) {
        if (n == values_cap) {
          free(table);
          return -ENOSPC;
        }
        values[n] = v[k];
        table[h] = (int32_t)n++;
      }
      cells[(size_t)r * MK_SMAPS_CELLS + k] = table[h];
    }
  }
  free(table);
  return n;
}
