/*
 * One system call for the writes of many players: an io_uring whose only use is a batch
 * of non-blocking sendmsg()s, issued and completed inside one io_uring_enter().
 *
 * Why: on a write a player's reader wakes up, and the kernel switches the worker out for
 * it when the write returns to user space; with one writev() per player, that switch
 * comes once per player. In a batch the wake-ups happen inside one system call and the
 * switch comes once per batch.
 *
 * Never blocking: every request is a sendmsg() with MSG_DONTWAIT, which io_uring makes
 * at once and completes at once (a full socket with -EAGAIN, as writev() would), never
 * waiting for the socket (it would for a plain writev() on an O_NONBLOCK socket: it arms
 * a poll and retries). The wait for the completions is bounded too: if they are not all
 * there within WAIT_NS, the ring is closed for good (its requests cancelled) and the
 * caller goes back to writev(). So when rs_uring_sendmsg() returns, no request refers to
 * the caller's buffers any more.
 *
 * One ring per worker process (opened after the fork). Where io_uring is missing or
 * refused (kernels before 5.11, kernel.io_uring_disabled, container seccomp profiles),
 * rs_uring_open() fails and the caller keeps using writev().
 */

#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* The most writes in one batch. */
#define MAX_ENTRIES 64
/* How long the completions of a batch may take (they come at once). */
#define WAIT_NS 100000000L

static struct {
    int fd;
    struct msghdr msgs[MAX_ENTRIES];
    unsigned entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len, sqes_len;
} ring = { .fd = -1 };

static void unmap_all(void)
{
    if (ring.sqes && ring.sqes != MAP_FAILED)
        munmap(ring.sqes, ring.sqes_len);
    if (ring.cq_map && ring.cq_map != MAP_FAILED && ring.cq_map != ring.sq_map)
        munmap(ring.cq_map, ring.cq_len);
    if (ring.sq_map && ring.sq_map != MAP_FAILED)
        munmap(ring.sq_map, ring.sq_len);
    if (ring.fd >= 0)
        close(ring.fd);
    memset(&ring, 0, sizeof ring);
    ring.fd = -1;
}

/* Returns the number of requests a batch may hold, or -errno. */
int rs_uring_open(unsigned entries)
{
    struct io_uring_params p;
    int e;

    if (ring.fd >= 0)
        return (int) ring.entries;
    if (entries > MAX_ENTRIES)
        entries = MAX_ENTRIES;
    memset(&p, 0, sizeof p);
    ring.fd = (int) syscall(SYS_io_uring_setup, entries, &p);
    if (ring.fd < 0) {
        e = errno;
        ring.fd = -1;
        return -e;
    }
    /* A bounded wait needs IORING_ENTER_EXT_ARG (5.11). */
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
        unmap_all();
        return -ENOSYS;
    }
    ring.entries = p.sq_entries < MAX_ENTRIES ? p.sq_entries : MAX_ENTRIES;
    ring.sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    ring.cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (ring.cq_len > ring.sq_len)
            ring.sq_len = ring.cq_len;
        ring.cq_len = ring.sq_len;
    }
    ring.sq_map = mmap(NULL, ring.sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                       IORING_OFF_SQ_RING);
    if (ring.sq_map == MAP_FAILED)
        goto fail;
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        ring.cq_map = ring.sq_map;
    } else {
        ring.cq_map = mmap(NULL, ring.cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                           IORING_OFF_CQ_RING);
        if (ring.cq_map == MAP_FAILED)
            goto fail;
    }
    ring.sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    ring.sqes = mmap(NULL, ring.sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                     IORING_OFF_SQES);
    if (ring.sqes == MAP_FAILED)
        goto fail;
    ring.sq_head = (unsigned *) ((char *) ring.sq_map + p.sq_off.head);
    ring.sq_tail = (unsigned *) ((char *) ring.sq_map + p.sq_off.tail);
    ring.sq_mask = (unsigned *) ((char *) ring.sq_map + p.sq_off.ring_mask);
    ring.sq_array = (unsigned *) ((char *) ring.sq_map + p.sq_off.array);
    ring.cq_head = (unsigned *) ((char *) ring.cq_map + p.cq_off.head);
    ring.cq_tail = (unsigned *) ((char *) ring.cq_map + p.cq_off.tail);
    ring.cq_mask = (unsigned *) ((char *) ring.cq_map + p.cq_off.ring_mask);
    ring.cqes = (struct io_uring_cqe *) ((char *) ring.cq_map + p.cq_off.cqes);
    return (int) ring.entries;

fail:
    e = errno;
    unmap_all();
    return -e;
}

void rs_uring_close(void)
{
    unmap_all();
}

/*
 * sendmsg(fds[i], {iovs + first[i], counts[i]}, MSG_DONTWAIT) for i < n, n at most the
 * number rs_uring_open() returned. results[i]: bytes written or -errno. Returns 0 when
 * every write was made. If the ring fails (it should not: nothing here waits), it is
 * closed for good and -errno returned; then results[i] is -ECANCELED for a write that
 * was not made (the caller can make it with writev()) and -EIO for one that may have
 * been (the caller cannot know what its player got).
 */
int rs_uring_sendmsg(unsigned n, const int *fds, const struct iovec *iovs, const unsigned *first,
                     const unsigned *counts, long *results)
{
    unsigned i, tail, head, mask, submitted, completed;
    struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = WAIT_NS };
    struct io_uring_getevents_arg arg;
    long r;
    int err = 0;

    for (i = 0; i < n; i++)
        results[i] = -ECANCELED;
    if (ring.fd < 0)
        return -EBADF;
    if (n == 0)
        return 0;
    if (n > ring.entries)
        return -EINVAL;

    memset(&arg, 0, sizeof arg);
    arg.sigmask_sz = _NSIG / 8;
    arg.ts = (uint64_t) (uintptr_t) &ts;

    tail = *ring.sq_tail;
    mask = *ring.sq_mask;
    for (i = 0; i < n; i++) {
        unsigned slot = (tail + i) & mask;
        struct io_uring_sqe *sqe = &ring.sqes[slot];
        struct msghdr *m = &ring.msgs[i];

        memset(m, 0, sizeof *m);
        m->msg_iov = (struct iovec *) (iovs + first[i]);
        m->msg_iovlen = counts[i];
        memset(sqe, 0, sizeof *sqe);
        sqe->opcode = IORING_OP_SENDMSG;
        sqe->fd = fds[i];
        sqe->addr = (uint64_t) (uintptr_t) m;
        sqe->len = 1;
        sqe->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
        sqe->user_data = i;
        ring.sq_array[slot] = slot;
    }
    __atomic_store_n(ring.sq_tail, tail + n, __ATOMIC_RELEASE);

    /* Submit all and wait for all (they complete inline). The kernel takes requests in
     * order, so the first `submitted` were taken. */
    submitted = 0;
    completed = 0;
    while (submitted < n || completed < n) {
        r = syscall(SYS_io_uring_enter, ring.fd, n - submitted, n - completed,
                    IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
        if (r < 0 && errno == EINTR) {
            r = 0;
        } else if (r < 0 || (r == 0 && submitted < n)) {
            err = r < 0 ? errno : EIO;
            break;
        }
        submitted += (unsigned) r;
        head = *ring.cq_head;
        mask = *ring.cq_mask;
        while (head != __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE)) {
            struct io_uring_cqe *cqe = &ring.cqes[head & mask];

            if (cqe->user_data < n && results[cqe->user_data] == -ECANCELED) {
                results[cqe->user_data] = cqe->res;
                completed++;
            }
            head++;
        }
        __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
    }
    if (err == 0)
        return 0;
    for (i = 0; i < submitted && i < n; i++)
        if (results[i] == -ECANCELED)
            results[i] = -EIO;
    /* Requests never taken, and any still pending, go with the ring. */
    unmap_all();
    return -err;
}
