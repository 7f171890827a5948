/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * memkit_kshared.h: the byte layout of the two pages a kernel driver shares
 * with memkit, and the protocol both sides follow on them (version 1).
 *
 * One header for both sides: the reference kernel module
 * (tests/vm/kmod/memkit_kshared.c, a test fixture) and memkit's C side
 * (cbits/kshared.c) include this file. It uses only <linux/types.h> and
 * <linux/ioctl.h>, which exist in the kernel and in user space. All fields
 * are in host byte order; every structure has a fixed size (static asserts
 * on both sides).
 *
 * The driver exposes one file (the module: debugfs, MKKS_DEBUGFS_NAME). Its
 * mmap gives one page per call: offset MKKS_PUB_OFFSET (the publish page,
 * read-only: a mapping that asks for PROT_WRITE is EPERM, and VM_MAYWRITE is
 * cleared so mprotect cannot add it later) or offset MKKS_REQ_OFFSET (the
 * request page, read-write, MAP_SHARED only). Any other offset or a length
 * other than one page is EINVAL.
 *
 * Rules the kernel side follows (from io_uring, perf's mmap page, the vDSO
 * data page and rseq): every field user space can write is hostile, and is
 * read once into a private copy before anything is decided from it; each
 * field has one writer; what readers rely on is on the read-only page; a
 * rule-breaker is refused (its request answered with an error, its lock
 * word taken back), other users are served on.
 */
#ifndef MEMKIT_KSHARED_H
#define MEMKIT_KSHARED_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MKKS_VERSION 1u
#define MKKS_PAGE_BYTES 4096u
#define MKKS_PUB_OFFSET 0u
#define MKKS_REQ_OFFSET 4096u
/* The module's debugfs file: /sys/kernel/debug/memkit_kshared */
#define MKKS_DEBUGFS_NAME "memkit_kshared"

/* ---- page 0: the publish page (kernel writes, user space reads) -------- */

#define MKKS_PUB_MAGIC 0x504b4b4du /* "MKKP" in memory */

/* At offset 0 of the publish page. Written by the kernel only. */
struct mkks_pub_header {
  __u32 magic;           /* 0: MKKS_PUB_MAGIC */
  __u16 version;         /* 4: MKKS_VERSION */
  __u16 header_bytes;    /* 6: sizeof(struct mkks_pub_header), 64 */
  __u32 record_offset;   /* 8: where the record's SeqLock header starts (64) */
  __u32 record_bytes;    /* 12: the record's data length, sizeof(struct mkks_record) */
  __u64 instance;        /* 16: random at module load, never 0 */
  __u64 reclaims;        /* 24: lock words taken back (holder closed, or timed out) */
  __u64 answered;        /* 32: requests answered with status 0 (RING and CALL) */
  __u64 refused;         /* 40: requests answered with an error status (RING and CALL) */
  __u32 lock_timeout_ms; /* 48: how long a held lock word may stay unchanged */
  __u32 reserved[3];     /* 52 */
};

/*
 * The record, at record_offset, is a memkit SeqLock of version 1 (the
 * layout of MK_SEQLOCK_* in cbits/memkit.h: [0] u32 magic 0x51534b4d,
 * [4] u16 version 1, [6] u16 header length 32, [8] u32 data length,
 * [16] u64 sequence, even when stable and odd while the kernel writes,
 * [24] u64 writer identity, always 0 here), followed by this data. The
 * kernel is its only writer: sequence + 1 (odd), smp_wmb, the data,
 * smp_wmb, sequence + 1 (even).
 */
#define MKKS_SEQLOCK_HEADER 32u
#define MKKS_PAYLOAD_BYTES 40u

struct mkks_record {
  __u64 counter;       /* 0: publications so far, this one included */
  __u64 time_ns;       /* 8: ktime_get_ns() at this publication */
  __u32 checksum;      /* 16: mkks_checksum() of this record */
  __u32 payload_bytes; /* 20: MKKS_PAYLOAD_BYTES */
  __u8 payload[MKKS_PAYLOAD_BYTES]; /* 24: byte i is (counter + i) & 0xff */
};

/* FNV-1a (32 bits) of the record's bytes [0, 16) then [20, 64): everything
 * but the checksum field. */
static inline __u32 mkks_checksum(const struct mkks_record *r) {
  const __u8 *p = (const __u8 *)r;
  __u32 h = 2166136261u;
  unsigned int i;
  for (i = 0; i < sizeof(*r); i++) {
    if (i >= 16 && i < 20) continue;
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

/* ---- page 1: the request page (user space and kernel write) ----------- */

#define MKKS_REQ_MAGIC 0x524b4b4du /* "MKKR" in memory */
#define MKKS_DATA_BYTES 256u

/*
 * The lock word (struct mkks_req_page.lock), its states:
 *   MKKS_LOCK_FREE (0)           nobody holds it; anyone may CAS 0 -> s.
 *   s                            held by session s (1 .. MKKS_SESSION_MAX,
 *                                from MKKS_IOC_SESSION on the holder's open
 *                                file, never reused while the module lives).
 *   s | MKKS_LOCK_ANSWERED       the kernel answered s's request in the
 *                                slot; only s reads it, then CAS -> 0.
 * A request: CAS lock 0 -> s; write slot.id, op, length, data; ioctl
 * MKKS_IOC_RING on the same file. The kernel copies the page once, answers
 * only when the copy's lock is s (an error otherwise, the page untouched),
 * writes id, status, length and data into the slot, then CAS lock s ->
 * s | MKKS_LOCK_ANSWERED. User space reads the answer, then CAS lock
 * s | MKKS_LOCK_ANSWERED -> 0.
 * The kernel takes the word back (-> 0, pub.reclaims + 1) when it names a
 * session whose file was closed, or when the same nonzero value stayed
 * lock_timeout_ms unchanged; any value that is neither 0 nor a live
 * session (garbage) is taken back after the timeout too.
 */
#define MKKS_LOCK_FREE 0u
#define MKKS_LOCK_ANSWERED 0x80000000u
#define MKKS_SESSION_MAX 0x7fffffffu

/* Operations of a request. */
#define MKKS_OP_ECHO 1u /* the answer's data is the request's */
#define MKKS_OP_SUM 2u  /* the answer is the u64 sum of the request's bytes (length 8) */

struct mkks_request {
  __u32 id;     /* 0: chosen by user space, copied into the answer */
  __u32 op;     /* 4: MKKS_OP_* */
  __u32 status; /* 8: the answer: 0, or a positive errno (EINVAL: bad op or length) */
  __u32 length; /* 12: bytes of data: the request's, then the answer's; <= MKKS_DATA_BYTES */
  __u8 data[MKKS_DATA_BYTES]; /* 16 */
};

/* At offset 0 of the request page. */
struct mkks_req_page {
  __u32 magic;        /* 0: MKKS_REQ_MAGIC (written at load; never read back by the kernel) */
  __u16 version;      /* 4: MKKS_VERSION */
  __u16 header_bytes; /* 6: offsetof(struct mkks_req_page, slot), 64 */
  __u32 lock;         /* 8: the lock word (states above) */
  __u32 reserved0;    /* 12 */
  __u64 reserved[6];  /* 16 */
  struct mkks_request slot; /* 64 */
};

/* ---- ioctls on the file ----------------------------------------------- */

#define MKKS_IOC_MAGIC 'k'
/* This open file's session id (a __u32, 1 .. MKKS_SESSION_MAX). */
#define MKKS_IOC_SESSION _IOR(MKKS_IOC_MAGIC, 0x40, __u32)
/* Serve the request in the request page (the protocol above): 0 when
 * answered (the answer's status says how), -EBADMSG when the lock word is
 * s | MKKS_LOCK_ANSWERED (the slot holds s's answer, not a request: a
 * second ring before the release), -EPERM when it is anything else but s
 * (this file's session), or when it was taken back while the kernel
 * answered (the answer is then in the slot, and the word is not changed). */
#define MKKS_IOC_RING _IO(MKKS_IOC_MAGIC, 0x41)
/* The copying baseline: the same request, copied in from and answered
 * into the caller's struct mkks_request; no page, no lock word. */
#define MKKS_IOC_CALL _IOWR(MKKS_IOC_MAGIC, 0x42, struct mkks_request)

#endif /* MEMKIT_KSHARED_H */
