// SPDX-License-Identifier: GPL-2.0-only
/*
 * memkit_kshared: the reference kernel module of memkit's tests (a fixture,
 * not part of the library). It implements the driver's half of
 * cbits/memkit_kshared.h, version 1, exactly:
 *
 *   /sys/kernel/debug/memkit_kshared   mmap offset 0: the publish page,
 *                                      read-only (PROT_WRITE is EPERM,
 *                                      VM_MAYWRITE cleared); offset 4096:
 *                                      the request page, MAP_SHARED rw.
 *   ioctl MKKS_IOC_SESSION             this open file's session id.
 *   ioctl MKKS_IOC_RING                serve the request in the request page.
 *   ioctl MKKS_IOC_CALL                the same request, copied (the baseline).
 *
 * A kernel thread publishes a record under the page's SeqLock every
 * publish_us..2*publish_us microseconds, and watches the lock word: a word
 * naming a closed session is taken back at once, any other nonzero word
 * that stays unchanged (and unrung) for lock_timeout_ms is taken back then.
 * release() of a file takes back its session's word.
 *
 * What user space can write (the request page) is hostile: RING copies it
 * once into private memory and decides only from the copy. The module is
 * pinned while a file is open (the file's .owner; a mapping holds its
 * file), and the pages are refcounted (vm_insert_page), so a mapping never
 * outlives them.
 */
#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/xarray.h>

#include "memkit_kshared.h"

/* memkit's SeqLock, version 1 (MK_SEQLOCK_* in cbits/memkit.h). */
#define MK_SEQLOCK_MAGIC 0x51534b4du
#define MK_SEQLOCK_VERSION 1u

struct mk_seqlock_header {
	__u32 magic;
	__u16 version;
	__u16 header_bytes;
	__u32 length;
	__u32 reserved0;
	__u64 seq;
	__u64 writer;
};

static_assert(PAGE_SIZE == MKKS_PAGE_BYTES);
static_assert(sizeof(struct mkks_pub_header) == 64);
static_assert(sizeof(struct mk_seqlock_header) == MKKS_SEQLOCK_HEADER);
static_assert(sizeof(struct mkks_record) == 64);
static_assert(offsetof(struct mkks_record, checksum) == 16);
static_assert(offsetof(struct mkks_record, payload) == 24);
static_assert(sizeof(struct mkks_pub_header) + MKKS_SEQLOCK_HEADER + sizeof(struct mkks_record) <=
	      MKKS_PAGE_BYTES);
static_assert(sizeof(struct mkks_request) == 16 + MKKS_DATA_BYTES);
static_assert(offsetof(struct mkks_req_page, lock) == 8);
static_assert(offsetof(struct mkks_req_page, slot) == 64);
static_assert(sizeof(struct mkks_req_page) <= MKKS_PAGE_BYTES);

static unsigned int publish_us = 100;
module_param(publish_us, uint, 0644);
MODULE_PARM_DESC(publish_us, "The publisher sleeps publish_us..2*publish_us between records (10..1000000)");

static unsigned int lock_timeout_ms = 200;
module_param(lock_timeout_ms, uint, 0644);
MODULE_PARM_DESC(lock_timeout_ms, "A held lock word unchanged this long is taken back (10..600000)");

/* A test knob: the publisher sleeps this long between the two halves of
 * the record's data, the sequence odd, so that even on one CPU readers run
 * in the middle of a write (a reader that ignores the sequence then sees
 * torn records). 0, the default: no pause. */
static unsigned int write_pause_us;
module_param(write_pause_us, uint, 0644);
MODULE_PARM_DESC(write_pause_us, "Sleep this long in the middle of each write (a test knob, 0..1000; 0: none)");

#define MKKS_RECORD_OFFSET ((__u32)sizeof(struct mkks_pub_header))

static struct page *pub_page, *req_page;
static struct mkks_pub_header *pub;
static struct mk_seqlock_header *rec_lock;
static struct mkks_record *rec;
static struct mkks_req_page *req;

static struct task_struct *publisher;
static struct dentry *kshared_dentry;

/* Sessions: handed out once each, never reused; the open ones in `live`. */
static atomic_t sessions_issued = ATOMIC_INIT(0);
static DEFINE_XARRAY(live);
/* One RING served at a time. */
static DEFINE_MUTEX(serve_lock);
/* When the holder's RING last began or was answered (ns): the watch counts
 * from it too, since a busy holder may cycle the word back to the same
 * value between two looks (a non-holder's RING does not count). */
static atomic64_t last_ring_ns = ATOMIC64_INIT(0);

static void count(__u64 *field)
{
	/* The kernel is the only writer of the publish page; several paths count. */
	atomic64_inc((atomic64_t *)field);
}

static unsigned int timeout_ms(void)
{
	return clamp_val(READ_ONCE(lock_timeout_ms), 10u, 600000u);
}

/* One publication: the SeqLock write order of the header. Only the
 * publisher calls it (and init, before the publisher exists, with
 * may_sleep false). */
static void publish(bool may_sleep)
{
	struct mkks_record r;
	__u64 seq = rec_lock->seq;
	unsigned int pause = min_t(unsigned int, READ_ONCE(write_pause_us), 1000u);
	unsigned int i;

	r.counter = READ_ONCE(rec->counter) + 1;
	r.time_ns = ktime_get_ns();
	r.payload_bytes = MKKS_PAYLOAD_BYTES;
	for (i = 0; i < MKKS_PAYLOAD_BYTES; i++)
		r.payload[i] = (r.counter + i) & 0xff;
	r.checksum = 0;
	r.checksum = mkks_checksum(&r);

	WRITE_ONCE(rec_lock->seq, seq + 1);
	smp_wmb();
	if (pause && may_sleep) {
		memcpy(rec, &r, sizeof(r) / 2);
		usleep_range(pause, 2 * pause);
		memcpy((void *)rec + sizeof(r) / 2, (void *)&r + sizeof(r) / 2, sizeof(r) - sizeof(r) / 2);
	} else {
		memcpy(rec, &r, sizeof(r));
	}
	smp_wmb();
	WRITE_ONCE(rec_lock->seq, seq + 2);
}

static bool reclaim(__u32 value)
{
	if (cmpxchg(&req->lock, value, MKKS_LOCK_FREE) != value)
		return false;
	count(&pub->reclaims);
	return true;
}

static bool session_closed(__u32 value)
{
	__u32 s = value & ~MKKS_LOCK_ANSWERED;

	return s != 0 && s <= (__u32)atomic_read(&sessions_issued) && !xa_load(&live, s);
}

/* The publisher's other duty: the lock word's watch. */
struct watch {
	__u32 value;
	u64 since_ns;
};

static void watch_lock(struct watch *w)
{
	__u32 v = READ_ONCE(req->lock);
	u64 now = ktime_get_ns();
	u64 from;

	if (v != w->value) {
		w->value = v;
		w->since_ns = now;
	}
	if (v == MKKS_LOCK_FREE)
		return;
	if (session_closed(v)) {
		reclaim(v);
		return;
	}
	from = max_t(u64, w->since_ns, atomic64_read(&last_ring_ns));
	if (now - from >= (u64)timeout_ms() * NSEC_PER_MSEC)
		reclaim(v);
}

static int publisher_main(void *unused)
{
	struct watch w = { .value = 0, .since_ns = ktime_get_ns() };

	while (!kthread_should_stop()) {
		unsigned int us = clamp_val(READ_ONCE(publish_us), 10u, 1000000u);

		publish(true);
		WRITE_ONCE(pub->lock_timeout_ms, timeout_ms());
		watch_lock(&w);
		usleep_range(us, 2 * us);
	}
	return 0;
}

/* Answers a request (a private copy) into ans; 0 or a positive errno. */
static __u32 answer(const struct mkks_request *q, struct mkks_request *ans)
{
	__u64 sum = 0;
	unsigned int i;

	ans->id = q->id;
	ans->op = q->op;
	ans->length = 0;
	if (q->length > MKKS_DATA_BYTES)
		return ans->status = EINVAL;
	switch (q->op) {
	case MKKS_OP_ECHO:
		memcpy(ans->data, q->data, q->length);
		ans->length = q->length;
		return ans->status = 0;
	case MKKS_OP_SUM:
		for (i = 0; i < q->length; i++)
			sum += q->data[i];
		memcpy(ans->data, &sum, sizeof(sum));
		ans->length = sizeof(sum);
		return ans->status = 0;
	default:
		return ans->status = EINVAL;
	}
}

static void count_answer(__u32 status)
{
	count(status == 0 ? &pub->answered : &pub->refused);
}

static __u32 file_session(struct file *f)
{
	return (__u32)(uintptr_t)f->private_data;
}

static long ring(__u32 s)
{
	/* Private: the page's bytes are read once, here. */
	static struct mkks_req_page copy;
	static struct mkks_request ans;
	long ret = 0;

	mutex_lock(&serve_lock);
	memcpy(&copy, req, sizeof(copy));
	barrier(); /* everything below reads the copy, never the page again */
	if (copy.lock == (s | MKKS_LOCK_ANSWERED)) {
		ret = -EBADMSG; /* the slot holds this session's answer, not a request */
	} else if (copy.lock != s) {
		ret = -EPERM;
	} else {
		atomic64_set(&last_ring_ns, ktime_get_ns());
		memset(&ans, 0, sizeof(ans));
		answer(&copy.slot, &ans);
		WRITE_ONCE(req->slot.id, ans.id);
		WRITE_ONCE(req->slot.status, ans.status);
		WRITE_ONCE(req->slot.length, ans.length);
		memcpy(req->slot.data, ans.data, ans.length);
		/* cmpxchg is a full barrier: the answer is visible before the state. */
		if (cmpxchg(&req->lock, s, s | MKKS_LOCK_ANSWERED) == s) {
			count_answer(ans.status);
			atomic64_set(&last_ring_ns, ktime_get_ns());
		} else {
			ret = -EPERM; /* the word changed under the answer (taken back) */
		}
	}
	mutex_unlock(&serve_lock);
	return ret;
}

static long call(void __user *arg)
{
	struct mkks_request *q, *ans;
	long ret = 0;

	q = kmalloc(sizeof(*q), GFP_KERNEL);
	ans = kzalloc(sizeof(*ans), GFP_KERNEL);
	if (!q || !ans) {
		ret = -ENOMEM;
		goto out;
	}
	if (copy_from_user(q, arg, sizeof(*q))) {
		ret = -EFAULT;
		goto out;
	}
	answer(q, ans);
	if (copy_to_user(arg, ans, sizeof(*ans))) {
		ret = -EFAULT;
		goto out;
	}
	count_answer(ans->status);
out:
	kfree(q);
	kfree(ans);
	return ret;
}

static long kshared_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	__u32 s = file_session(f);

	switch (cmd) {
	case MKKS_IOC_SESSION:
		return put_user(s, (__u32 __user *)arg);
	case MKKS_IOC_RING:
		return ring(s);
	case MKKS_IOC_CALL:
		return call((void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int kshared_open(struct inode *inode, struct file *f)
{
	int s = atomic_inc_return(&sessions_issued);
	int err;

	if (s <= 0 || (__u32)s > MKKS_SESSION_MAX) {
		atomic_set(&sessions_issued, MKKS_SESSION_MAX);
		return -ENOSPC;
	}
	err = xa_err(xa_store(&live, s, xa_mk_value(s), GFP_KERNEL));
	if (err)
		return err;
	f->private_data = (void *)(uintptr_t)s;
	return nonseekable_open(inode, f);
}

static int kshared_release(struct inode *inode, struct file *f)
{
	__u32 s = file_session(f);

	xa_erase(&live, s);
	/* Whichever state of this session the word is in, it is taken back. */
	if (!reclaim(s))
		reclaim(s | MKKS_LOCK_ANSWERED);
	return 0;
}

/* No fault handler: a page zapped by MADV_DONTNEED is SIGBUS, never a
 * fresh anonymous page (a vma without vm_ops would count as anonymous). */
static const struct vm_operations_struct kshared_vm_ops = {};

static int kshared_mmap(struct file *f, struct vm_area_struct *vma)
{
	struct page *page;

	if (vma->vm_end - vma->vm_start != PAGE_SIZE)
		return -EINVAL;
	if (vma->vm_pgoff == MKKS_PUB_OFFSET / PAGE_SIZE) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
		vm_flags_clear(vma, VM_MAYWRITE);
#else
		vma->vm_flags &= ~VM_MAYWRITE;
#endif
		page = pub_page;
	} else if (vma->vm_pgoff == MKKS_REQ_OFFSET / PAGE_SIZE) {
		if (!(vma->vm_flags & VM_SHARED))
			return -EINVAL;
		page = req_page;
	} else {
		return -EINVAL;
	}
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
#endif
	vma->vm_ops = &kshared_vm_ops;
	return vm_insert_page(vma, vma->vm_start, page);
}

static const struct file_operations kshared_fops = {
	.owner = THIS_MODULE,
	.open = kshared_open,
	.release = kshared_release,
	.mmap = kshared_mmap,
	.unlocked_ioctl = kshared_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

static void free_pages_of_module(void)
{
	/* A mapping holds its own reference (vm_insert_page): freeing drops ours. */
	if (pub_page)
		__free_page(pub_page);
	if (req_page)
		__free_page(req_page);
	pub_page = req_page = NULL;
}

static int __init kshared_init(void)
{
	int err;

	pub_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	req_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!pub_page || !req_page) {
		free_pages_of_module();
		return -ENOMEM;
	}
	pub = page_address(pub_page);
	rec_lock = (void *)pub + MKKS_RECORD_OFFSET;
	rec = (void *)rec_lock + MKKS_SEQLOCK_HEADER;
	req = page_address(req_page);

	pub->magic = MKKS_PUB_MAGIC;
	pub->version = MKKS_VERSION;
	pub->header_bytes = sizeof(struct mkks_pub_header);
	pub->record_offset = MKKS_RECORD_OFFSET;
	pub->record_bytes = sizeof(struct mkks_record);
	do
		pub->instance = get_random_u64();
	while (pub->instance == 0);
	pub->lock_timeout_ms = timeout_ms();
	rec_lock->magic = MK_SEQLOCK_MAGIC;
	rec_lock->version = MK_SEQLOCK_VERSION;
	rec_lock->header_bytes = MKKS_SEQLOCK_HEADER;
	rec_lock->length = sizeof(struct mkks_record);
	/* The first record before anyone can map the page: no reader sees seq 0's zeros. */
	publish(false);

	req->magic = MKKS_REQ_MAGIC;
	req->version = MKKS_VERSION;
	req->header_bytes = offsetof(struct mkks_req_page, slot);
	req->lock = MKKS_LOCK_FREE;

	publisher = kthread_run(publisher_main, NULL, "memkit_kshared");
	if (IS_ERR(publisher)) {
		err = PTR_ERR(publisher);
		publisher = NULL;
		free_pages_of_module();
		return err;
	}
	/* _unsafe: the full proxy of debugfs_create_file has no mmap. The
	 * module's .owner pins it while a file is open instead. */
	kshared_dentry = debugfs_create_file_unsafe(MKKS_DEBUGFS_NAME, 0600, NULL, NULL, &kshared_fops);
	if (IS_ERR(kshared_dentry)) {
		err = PTR_ERR(kshared_dentry);
		kshared_dentry = NULL;
		kthread_stop(publisher);
		free_pages_of_module();
		return err;
	}
	return 0;
}

static void __exit kshared_exit(void)
{
	/* No file is open (a file pins the module), so no mapping exists. */
	debugfs_remove(kshared_dentry);
	kthread_stop(publisher);
	xa_destroy(&live);
	free_pages_of_module();
}

module_init(kshared_init);
module_exit(kshared_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("memkit");
MODULE_DESCRIPTION("memkit's reference driver of the shared-page protocol (a test fixture)");
