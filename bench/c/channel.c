/*
 * channel.c: the C side of bench/channel_bench.ts: the ring of a memkit
 * Channel (the layout of cbits/memkit.h, MK_CHANNEL_*) driven from C, over
 * the same mapped memory, both sides spinning. cb_pingpong sends `count`
 * messages of `len` bytes on `tx` and waits for each echo on `rx`, storing
 * each round trip's nanoseconds; cb_echo, in the peer process, sends back
 * every message it receives. Each side keeps its position in the header (as
 * the TypeScript side does), so a Channel is not used from JavaScript once
 * C has driven it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../../cbits/memkit.h"

#define CB_API __attribute__((visibility("default")))
#define PAGE 4096u

static _Atomic uint32_t *word(uint64_t h, uint32_t off) {
  return (_Atomic uint32_t *)(uintptr_t)(h + off);
}

static uint32_t stride(uint32_t len) { return (4 + len + MK_CHANNEL_ALIGN - 1) & ~(MK_CHANNEL_ALIGN - 1); }

/* Each side caches the peer's word it last read (the head for a sender,
 * the tail for a receiver) and reads it again only when that runs out, as
 * src/channel.ts does. One sender and one receiver per process here. */
static uint64_t tx_h, rx_h;
static uint32_t tx_head, rx_tail;

/* A new run may be over a new pair at an old pair's address: forget the caches. */
static void fresh(void) { tx_h = rx_h = 0; }

static void send_msg(uint64_t h, const uint8_t *data, uint32_t len) {
  uint32_t cap = atomic_load_explicit(word(h, MK_CHANNEL_OFF_CAPACITY), memory_order_relaxed);
  uint8_t *ring = (uint8_t *)(uintptr_t)(h + PAGE);
  uint32_t tail = atomic_load_explicit(word(h, MK_CHANNEL_OFF_TAIL), memory_order_relaxed);
  if (tx_h != h) {
    tx_h = h;
    tx_head = atomic_load_explicit(word(h, MK_CHANNEL_OFF_HEAD), memory_order_acquire);
  }
  while (cap - (tail - tx_head) < stride(len)) {
    tx_head = atomic_load_explicit(word(h, MK_CHANNEL_OFF_HEAD), memory_order_acquire);
  }
  uint32_t at = tail & (cap - 1);
  memcpy(ring + at, &len, 4);
  memcpy(ring + at + 4, data, len);
  atomic_store_explicit(word(h, MK_CHANNEL_OFF_TAIL), tail + stride(len), memory_order_release);
}

/* Whether a message is pending (reading the tail only when the cached one is reached). */
static int pending(uint64_t h) {
  uint32_t head = atomic_load_explicit(word(h, MK_CHANNEL_OFF_HEAD), memory_order_relaxed);
  if (rx_h != h) {
    rx_h = h;
    rx_tail = head;
  }
  if (rx_tail != head) return 1;
  rx_tail = atomic_load_explicit(word(h, MK_CHANNEL_OFF_TAIL), memory_order_acquire);
  return rx_tail != head;
}

static uint32_t recv_msg(uint64_t h, uint8_t *out, uint32_t cap_out) {
  uint32_t cap = atomic_load_explicit(word(h, MK_CHANNEL_OFF_CAPACITY), memory_order_relaxed);
  uint8_t *ring = (uint8_t *)(uintptr_t)(h + PAGE);
  uint32_t head = atomic_load_explicit(word(h, MK_CHANNEL_OFF_HEAD), memory_order_relaxed);
  while (!pending(h)) {
  }
  uint32_t at = head & (cap - 1), len;
  memcpy(&len, ring + at, 4);
  if (len > cap_out) len = cap_out;
  memcpy(out, ring + at + 4, len);
  atomic_store_explicit(word(h, MK_CHANNEL_OFF_HEAD), head + stride(len), memory_order_release);
  return len;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

CB_API int64_t cb_pingpong(uint64_t tx, uint64_t rx, uint32_t len, uint32_t count, double *ns) {
  fresh();
  static uint8_t msg[65536], back[65536];
  if (len > sizeof msg) return -EINVAL;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t t0 = now_ns();
    memcpy(msg, &i, sizeof i);
    send_msg(tx, msg, len);
    recv_msg(rx, back, sizeof back);
    ns[i] = (double)(now_ns() - t0);
  }
  return 0;
}

CB_API int64_t cb_flood(uint64_t tx, uint64_t rx, uint32_t len, uint32_t count) {
  fresh();
  static uint8_t msg[65536], back[65536];
  if (len > sizeof msg) return -EINVAL;
  uint64_t t0 = now_ns();
  uint32_t got = 0;
  for (uint32_t i = 0; i < count; i++) {
    send_msg(tx, msg, len);
    /* Take echoes as they come, so that neither ring fills for good. */
    while (pending(rx)) {
      recv_msg(rx, back, sizeof back);
      got++;
    }
  }
  while (got < count) {
    recv_msg(rx, back, sizeof back);
    got++;
  }
  return (int64_t)(now_ns() - t0);
}

CB_API int64_t cb_echo(uint64_t rx, uint64_t tx, uint32_t count) {
  fresh();
  static uint8_t buf[65536];
  for (uint32_t i = 0; i < count; i++) {
    uint32_t n = recv_msg(rx, buf, sizeof buf);
    send_msg(tx, buf, n);
  }
  return 0;
}
