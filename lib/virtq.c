/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The split virtqueue data path: frames taken from a guest's TX ring and
 * given to its RX ring, every descriptor checked.  Each entry point hands
 * a packed ring to virtq-packed.c. */

#include "virtq.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "vhost-notify.h"
#include "virtq-private.h"

const char *
virtq_init_error_name(enum virtq_init_error error)
{
    switch (error) {
    case VIRTQ_INIT_OK: return "ok";
    case VIRTQ_INIT_BAD_SIZE: return "ring size not a power of 2 up to 32768";
    case VIRTQ_INIT_BAD_ADDR: return "ring outside guest memory";
    case VIRTQ_INIT_MISALIGNED: return "ring misaligned";
    case VIRTQ_INIT_BAD_BASE: return "ring base beyond the ring";
    }
    return "unknown";
}

const char *
virtq_error_name(enum virtq_error error)
{
    switch (error) {
    case VIRTQ_ERR_NONE: return "no error";
    case VIRTQ_ERR_HEAD_RANGE: return "chain head beyond the ring";
    case VIRTQ_ERR_NEXT_RANGE: return "descriptor 'next' beyond the table";
    case VIRTQ_ERR_LOOP: return "descriptor chain loops";
    case VIRTQ_ERR_DIRECTION:
        return "buffer writable where readable belongs, or the reverse";
    case VIRTQ_ERR_ADDR: return "buffer outside guest memory";
    case VIRTQ_ERR_INDIRECT_UNNEGOTIATED:
        return "indirect descriptor without INDIRECT_DESC";
    case VIRTQ_ERR_INDIRECT_NESTED: return "indirect table inside another";
    case VIRTQ_ERR_INDIRECT_CHAINED: return "indirect descriptor with NEXT";
    case VIRTQ_ERR_INDIRECT_SIZE: return "indirect table of a bad size";
    case VIRTQ_ERR_INDIRECT_ADDR: return "indirect table outside guest memory";
    case VIRTQ_ERR_SHORT: return "frame shorter than its virtio-net header";
    case VIRTQ_ERR_CALL_FULL:
        return "call eventfd counter full (nobody reads it)";
    case VIRTQ_ERR_CALL_BLOCKED:
        return "call fd made blocking by the front-end, counter full";
    case VIRTQ_ERR_CALL_FAILED: return "write to the call fd failed";
    case VIRTQ_ERR_TOO_LONG: return "frame too long or in too many pieces";
    case VIRTQ_ERR_NO_ROOM:
        return "receive buffer too small for the frame (no MRG_RXBUF)";
    case VIRTQ_ERR_AVAIL_JUMP:
        return "avail index ran past the ring: ring stopped";
    case VIRTQ_ERR_TOO_MANY_DESCS:
        return "more descriptors for one frame than allowed";
    case VIRTQ_ERR_RX_SHORT:
        return "receive chain shorter than the virtio-net header";
    }
    return "unknown error";
}

enum virtq_init_error
virtq_init(struct virtq *vq, const struct vhost_mem *mem, uint32_t size,
           uint64_t desc, uint64_t avail, uint64_t used, uint16_t base,
           uint64_t features, int call_fd, struct virtq_stats *stats)
{
    bool packed = features & (1ull << VIRTIO_F_RING_PACKED);

    memset(vq, 0, sizeof *vq);
    if (!size || size > VIRTQ_MAX_SIZE
        || (!packed && size & (size - 1))) {
        return VIRTQ_INIT_BAD_SIZE;
    }
    vq->size = size;
    vq->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    vq->mrg_rxbuf = features & (1ull << VIRTIO_NET_F_MRG_RXBUF);
    vq->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    vq->in_order = features & (1ull << VIRTIO_F_IN_ORDER);
    /* (A packed ring is virtio 1.x's whatever else was negotiated: the
     * packed data path writes 12-byte headers only.) */
    vq->hdr_len = (features & ((1ull << VIRTIO_F_VERSION_1)
                               | (1ull << VIRTIO_NET_F_MRG_RXBUF)
                               | (1ull << VIRTIO_F_RING_PACKED))
                   ? 12 : 10);
    vq->rx_fast_hdr = vq->hdr_len == 12 ? 12 : 0;
    vq->features = features;
    vq->call_fd = call_fd;
    vq->mem = mem;
    vq->stats = stats;
    if (packed) {
        return virtq_packed_init(vq, mem, desc, avail, used, base);
    }

    vq->desc = vhost_mem_qva_to_hva(mem, desc,
                                    (uint64_t) size * sizeof *vq->desc);
    vq->avail = vhost_mem_qva_to_hva(mem, avail, 6 + 2 * (uint64_t) size);
    vq->used = vhost_mem_qva_to_hva(mem, used, 6 + 8 * (uint64_t) size);
    if (!vq->desc || !vq->avail || !vq->used) {
        return VIRTQ_INIT_BAD_ADDR;
    }
    if ((uintptr_t) vq->desc & 15 || (uintptr_t) vq->avail & 1
        || (uintptr_t) vq->used & 3) {
        return VIRTQ_INIT_MISALIGNED;
    }

    vq->mask = size - 1;

    /* Resume where the guest's used ring says the last back-end stopped:
     * a front-end that could not ask a dead back-end for its base restores
     * it from there, and in-flight buffers are then taken again. */
    vq->used_idx = LOAD_ACQUIRE(&vq->used->idx);
    vq->used_published = vq->used_idx;
    vq->last_avail_idx = base;
    if (base != vq->used_idx) {
        vq->last_avail_idx = vq->used_idx;
    }
    vq->start_idx = vq->last_avail_idx;
    vq->avail_seen = vq->last_avail_idx;
    vq->prefetched = vq->last_avail_idx;

    /* The data path polls: the guest need not kick. */
    STORE_RELAXED(&vq->used->flags, VRING_USED_F_NO_NOTIFY);
    return VIRTQ_INIT_OK;
}

void
virtq_set_log(struct virtq *vq, struct vhost_log *log, bool log_used,
              uint64_t used_gpa)
{
    vq->log = log;
    vq->log_used = log && log_used;
    vq->log_used_gpa = used_gpa;
    vq->rx_fast_hdr = !log && vq->hdr_len == 12 ? 12 : 0;
    if (vq->packed) {
        virtq_packed_set_log(vq);
    } else if (vq->log_used) {
        /* virtq_init() wrote the used ring's flags. */
        vhost_log_mark(log, used_gpa, sizeof vq->used->flags);
    }
}

/* Marks in the log the used entries from 'from' to 'to' (exclusive) and
 * the used index: what virtq_flush() just published.  (The switch never
 * writes avail_event: it polls, and asks for no kicks through the used
 * ring's flags instead.) */
static void __attribute__((noinline))
log_used(struct virtq *vq, uint16_t from, uint16_t to)
{
    uint64_t ring = vq->log_used_gpa + offsetof(struct vring_used, ring);
    uint16_t n = to - from;
    uint16_t first = from & vq->mask;
    uint16_t run = n < vq->size - first ? n : vq->size - first;

    vhost_log_mark(vq->log, ring + first * sizeof(struct vring_used_elem),
                   run * sizeof(struct vring_used_elem));
    if (run < n) {
        /* Wrapped round to the start of the ring. */
        vhost_log_mark(vq->log, ring,
                       (n - run) * sizeof(struct vring_used_elem));
    }
    vhost_log_mark(vq->log, vq->log_used_gpa
                   + offsetof(struct vring_used, idx), sizeof vq->used->idx);
}

/* The number of entries the guest made available, or -1 (and the ring
 * marked broken) if its index ran more than a ring ahead of ours. */
static int
avail_count(struct virtq *vq)
{
    uint16_t avail_idx = LOAD_ACQUIRE(&vq->avail->idx);
    uint16_t n = avail_idx - vq->last_avail_idx;

    if (n > vq->size) {
        STORE_RELAXED(&vq->broken, true);
        STAT_ADD(vq->stats, broken, 1);
        record_error(vq, VIRTQ_ERR_AVAIL_JUMP, avail_idx);
        return -1;
    }
    vq->avail_seen = avail_idx;
    return n;
}

/* Like avail_count(), but reads the guest's index only if the entries
 * seen available before are fewer than 'want'.  (The acquire load that
 * first saw them ordered their ring entries and descriptors already.) */
static int
avail_at_least(struct virtq *vq, int want)
{
    uint16_t n = vq->avail_seen - vq->last_avail_idx;

    return n >= want ? n : avail_count(vq);
}

/* The number of entries to take now: what the guest made available, at
 * most 'max', 0 on a broken ring. */
static int
avail_burst(struct virtq *vq, int max)
{
    int n = virtq_is_broken(vq) ? 0 : avail_at_least(vq, max);

    return n <= 0 ? 0 : n > max ? max : n;
}

static uint16_t
avail_entry(const struct virtq *vq, uint16_t idx)
{
    return LOAD_RELAXED(&vq->avail->ring[idx & vq->mask]);
}

/* The entry after 'i' in the chain through 'table' of 'size' entries, or
 * -1 if the chain ends at 'i' or leaves the table.  (Copied out: an
 * indirect table in guest memory may be misaligned.) */
static int
chain_next(const struct vring_desc *table, uint32_t size, uint32_t i)
{
    struct vring_desc d;

    memcpy(&d, &table[i], sizeof d);
    return d.flags & VRING_DESC_F_NEXT && d.next < size ? d.next : -1;
}

/* Whether the chain from entry 'idx' of 'table' (of 'size' entries) loops
 * within its first 'max_steps' entries.  Only for telling a loop from a
 * merely long chain once a walk has failed: a loop of non-empty buffers
 * runs into the byte, piece or visit limits before the walk's own loop
 * test (more visits than entries).  Bounded like the walk, so that telling
 * costs no more than walking. */
static bool
chain_loops(const struct vring_desc *table, uint32_t size, uint32_t idx,
            uint32_t max_steps)
{
    int slow = idx, fast = idx;

    for (uint32_t steps = 0; steps <= size && steps <= max_steps; steps++) {
        fast = chain_next(table, size, fast);
        if (fast < 0) {
            return false;
        }
        fast = chain_next(table, size, fast);
        if (fast < 0) {
            return false;
        }
        slow = chain_next(table, size, slow);
        if (slow == fast) {
            return true;
        }
    }
    return false;
}

/* Walks the descriptor chain at 'head', appending its buffers to 'pieces'
 * (at most VIRTQ_MAX_PIECES in all, '*n' in use) and adding their length to
 * '*len'.  The buffers must all be device-writable if 'write', all
 * device-readable otherwise.  Stops early, with VIRTQ_ERR_NONE, once '*len'
 * reaches 'enough'; fails with VIRTQ_ERR_TOO_LONG past 'limit' bytes or
 * VIRTQ_MAX_PIECES pieces, with VIRTQ_ERR_TOO_MANY_DESCS once '*visits',
 * the descriptors this frame's chains have visited so far (the indirect
 * ones and empty ones too), would pass VIRTQ_MAX_VISITS, and with the
 * reason if the chain is bad. */
static enum virtq_error
walk_chain(struct virtq *vq, uint16_t head, bool write,
           struct virtq_piece *pieces, int *n, uint64_t *len,
           uint64_t enough, uint64_t limit, uint32_t *visits)
{
    const struct vring_desc *table = vq->desc;
    uint32_t table_size = vq->size;
    uint32_t idx = head;
    uint32_t visited = 0;
    bool indirect = false;

    for (;;) {
        struct vring_desc d;

        if (idx >= table_size) {
            return (visited || indirect ? VIRTQ_ERR_NEXT_RANGE
                    : VIRTQ_ERR_HEAD_RANGE);
        }
        if (++visited > table_size) {
            /* A chain can visit each entry once at most. */
            return VIRTQ_ERR_LOOP;
        }
        if (++*visits > VIRTQ_MAX_VISITS) {
            /* However many entries its tables have, and however empty:
             * a frame's walk is bounded (see VIRTQ_MAX_VISITS). */
            return (chain_loops(table, table_size, indirect ? 0 : head,
                                VIRTQ_MAX_VISITS)
                    ? VIRTQ_ERR_LOOP : VIRTQ_ERR_TOO_MANY_DESCS);
        }
        memcpy(&d, &table[idx], sizeof d);

        if (d.flags & VRING_DESC_F_INDIRECT) {
            uint64_t avail;
            uint8_t *p;

            /* One level only, not chained, only if negotiated, a whole
             * number of descriptors, no more of them than the ring has,
             * in one region.
             *
             * The size: virtio 1.x, 2.7.5.3.1 (split virtqueues, "Driver
             * Requirements: Indirect Descriptors" and the section on
             * chains) says "A driver MUST NOT create a descriptor chain
             * longer than the Queue Size of the device", the descriptors
             * of an indirect table included; drivers size a table to the
             * chain it holds (Linux, DPDK's virtio PMD), and DPDK's vhost
             * refuses a table of more entries than the ring too.  A bigger
             * table is refused whole, at the cost of one visit, instead of
             * being walked. */
            if (!vq->indirect) {
                return VIRTQ_ERR_INDIRECT_UNNEGOTIATED;
            }
            if (indirect) {
                return VIRTQ_ERR_INDIRECT_NESTED;
            }
            if (d.flags & VRING_DESC_F_NEXT) {
                return VIRTQ_ERR_INDIRECT_CHAINED;
            }
            if (!d.len || d.len % sizeof d || d.len / sizeof d > vq->size) {
                return VIRTQ_ERR_INDIRECT_SIZE;
            }
            p = vhost_mem_gpa_to_hva(vq->mem, &vq->cursor, d.addr, &avail);
            if (!p || avail < d.len) {
                return VIRTQ_ERR_INDIRECT_ADDR;
            }
            table = (const struct vring_desc *) p;
            table_size = d.len / sizeof d;
            idx = 0;
            visited = 0;
            indirect = true;
            continue;
        }

        if (!(d.flags & VRING_DESC_F_WRITE) != !write) {
            return VIRTQ_ERR_DIRECTION;
        }
        enum virtq_error error = add_buffer(vq, d.addr, d.len, pieces, n,
                                            len, limit);
        if (error == VIRTQ_ERR_TOO_LONG) {
            goto too_long;
        } else if (error != VIRTQ_ERR_NONE) {
            return error;
        }

        if (*len >= enough || !(d.flags & VRING_DESC_F_NEXT)) {
            return VIRTQ_ERR_NONE;
        }
        idx = d.next;
    }

too_long:
    return (chain_loops(table, table_size, indirect ? 0 : head,
                        VIRTQ_MAX_VISITS)
            ? VIRTQ_ERR_LOOP : VIRTQ_ERR_TOO_LONG);
}

static void
put_used(struct virtq *vq, uint32_t id, uint32_t len)
{
    struct vring_used_elem *e = &vq->used->ring[vq->used_idx & vq->mask];

    STORE_RELAXED(&e->id, id);
    STORE_RELAXED(&e->len, len);
    vq->used_idx++;
}

/* Gives a chain the dequeue took, chain 'head', back to the guest.  With
 * IN_ORDER, the burst's chains get one used entry, at the burst's first
 * position, with its last chain's head (the guest takes back every chain
 * up to that one, and moves on by as many entries as the used index
 * did): put_tx_used_last() writes it, at the burst's end. */
static inline void
put_tx_used(struct virtq *vq, uint32_t head, uint32_t *last)
{
    if (vq->in_order) {
        *last = head;
        vq->used_idx++;
    } else {
        put_used(vq, head, 0);
    }
}

static inline void
put_tx_used_last(struct virtq *vq, uint16_t first_used, uint32_t last)
{
    if (vq->in_order && vq->used_idx != first_used) {
        struct vring_used_elem *e = &vq->used->ring[first_used & vq->mask];

        STORE_RELAXED(&e->id, last);
        STORE_RELAXED(&e->len, 0);
    }
}

/* Whether the guest wants an interrupt for used entries up to 'new_idx'
 * when it last saw 'old_idx'. */
static bool
guest_wants_interrupt(const struct virtq *vq, uint16_t old_idx,
                      uint16_t new_idx)
{
    /* Order the used index store before reading the guest's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (vq->event_idx) {
        uint16_t used_event = LOAD_RELAXED(&vq->avail->ring[vq->size]);

        return (uint16_t) (new_idx - used_event - 1)
               < (uint16_t) (new_idx - old_idx);
    }
    return !(LOAD_RELAXED(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
}

/* A notification through 'call_fd' failed with 'error' (see
 * vhost_notify()): counted, left for the caller to log.  A write that
 * blocked would block again, each time for VHOST_NOTIFY_TIMEOUT_MS: the
 * ring stops notifying through that fd (unless the control thread has
 * replaced it meanwhile). */
void __attribute__((noinline, cold))
virtq_notify_failed(struct virtq *vq, int call_fd, int error)
{
    STAT_ADD(vq->stats, notify_errors, 1);
    if (error == EAGAIN) {
        record_error(vq, VIRTQ_ERR_CALL_FULL, vq->used_idx);
    } else if (error == EINTR) {
        __atomic_compare_exchange_n(&vq->call_fd, &call_fd, -1, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        record_error(vq, VIRTQ_ERR_CALL_BLOCKED, vq->used_idx);
    } else {
        record_error(vq, VIRTQ_ERR_CALL_FAILED, vq->used_idx);
    }
}

void
virtq_split_flush(struct virtq *vq)
{
    uint16_t old_idx = vq->used_published;

    if (vq->used_idx == old_idx) {
        return;
    }
    if (vq->pending.packets) {
        acc_flush(vq->stats, &vq->pending);
        memset(&vq->pending, 0, sizeof vq->pending);
    }
    /* Chains were taken: what virtq_enqueue() remembered of the ring's
     * front is stale (its key, the avail indexes, would come round again
     * only after 65536 chains). */
    vq->nofit_valid = false;
    STORE_RELEASE(&vq->used->idx, vq->used_idx);
    vq->used_published = vq->used_idx;
    if (UNLIKELY(vq->log_used)) {
        log_used(vq, old_idx, vq->used_idx);
    }

    /* (Acquire: pairs with the release in set_vring_call().) */
    int call_fd = __atomic_load_n(&vq->call_fd, __ATOMIC_ACQUIRE);
    if (call_fd >= 0 && guest_wants_interrupt(vq, old_idx, vq->used_idx)) {
        int error = vhost_notify(call_fd);

        if (LIKELY(!error)) {
            STAT_ADD(vq->stats, notifications, 1);
        } else {
            virtq_notify_failed(vq, call_fd, error);
        }
    }
}

/* The fast path's test: whether chain 'head' is one descriptor, neither
 * chained nor indirect, device-writable exactly if 'write', of at least
 * 'min_len' bytes (and at most 'max_len'), all in one memory region.  If
 * so, returns where its buffer is and stores its length in '*len';
 * otherwise NULL, and the general walk decides (it makes the same checks
 * and more). */
static inline uint8_t *
single_desc(struct virtq *vq, uint16_t head, bool write, uint64_t min_len,
            uint64_t max_len, uint32_t *len)
{
    struct vring_desc d;
    uint8_t *p;

    if (head >= vq->size) {
        return NULL;
    }
    memcpy(&d, &vq->desc[head], sizeof d);
    p = single_buffer(vq->mem, &vq->cursor, d.flags, d.len, d.addr, write,
                      min_len, max_len);
    *len = d.len;
    return p;
}

/* Starts loading, for the next 'n' available entries, their first
 * descriptor and the first bytes of its buffer, so that the cache misses
 * on memory the guest wrote last overlap instead of stalling the walk of
 * each chain in turn.  Only a hint: entries or addresses that make no
 * sense are skipped here and refused later. */
static void
prefetch_entries(struct virtq *vq, int n, bool write)
{
    uint16_t heads[VIRTQ_PREFETCH_MAX];
    uint16_t last = vq->last_avail_idx;
    uint16_t done = vq->prefetched - last;
    int first;

    if (n > VIRTQ_PREFETCH_MAX) {
        n = VIRTQ_PREFETCH_MAX;
    }
    /* Entries prefetched by an earlier call (the previous burst looked
     * ahead) need nothing more. */
    first = done <= n ? done : 0;
    if (first == n) {
        return;
    }
    vq->prefetched = last + n;

    /* (Locals: see virtq_split_enqueue_burst().) */
    struct vhost_mem_cursor cursor = vq->cursor;
    const struct vhost_mem *mem = vq->mem;
    const struct vring_desc *desc = vq->desc;
    const uint16_t *avail_ring = vq->avail->ring;
    uint16_t mask = vq->mask;
    uint32_t size = vq->size;
    /* The lines a small frame touches: from the switch's side of a guest
     * TX buffer, not the header (never read), but the frame from its
     * start; of a guest RX buffer, the header and the frame after it.  Big
     * frames: their first 128 bytes; the hardware prefetcher sees the rest
     * coming. */
    uint32_t from = write ? 0 : vq->hdr_len;

    for (int i = first; i < n; i++) {
        heads[i] = LOAD_RELAXED(&avail_ring[(uint16_t) (last + i) & mask]);
        if (heads[i] < size) {
            __builtin_prefetch(&desc[heads[i]]);
        }
    }
    for (int i = first; i < n; i++) {
        const struct vring_desc *d;
        uint64_t avail;
        uint8_t *p;

        if (heads[i] >= size) {
            continue;
        }
        d = &desc[heads[i]];
        p = vhost_mem_gpa_to_hva(mem, &cursor, LOAD_RELAXED(&d->addr),
                                 &avail);
        if (p) {
            uint32_t len = LOAD_RELAXED(&d->len);
            uint32_t to = len < 128 + from ? len : 128 + from;

            if (to <= from) {
                continue;
            }
            bool two = ((uintptr_t) (p + from) ^ (uintptr_t) (p + to - 1)) >> 6;
            /* (Not PREFETCHW for the RX buffers: taking the lines away
             * from the guest's core early measured slower.) */
            __builtin_prefetch(p + from);
            if (two) {
                __builtin_prefetch(p + to - 1);
            }
        }
    }
    vq->cursor = cursor;
}

/* After a dequeue burst: entries already seen beyond it are the next
 * burst's; starts loading them now, while the switch works on this one. */
static void
prefetch_ahead(struct virtq *vq)
{
    uint16_t ahead = vq->avail_seen - vq->last_avail_idx;

    if (ahead) {
        prefetch_entries(vq, ahead, false);
    }
}

void
virtq_prefetch_rx(struct virtq *vq, int n)
{
    if (UNLIKELY(vq->packed)) {
        virtq_packed_prefetch_rx(vq, n);
        return;
    }
    int have = virtq_is_broken(vq) ? 0 : avail_at_least(vq, n);

    if (have > 0) {
        prefetch_entries(vq, n < have ? n : have, true);
    }
}

/* The dequeue's fast path: the next entries up to number 'n' (the guest
 * made them available), from number 'i' on, each a chain of one readable
 * descriptor holding the header and the frame, all in one region.  Each
 * frame goes to 'cb' or, if 'frames' is nonnull, into frames[i] (and a
 * copy of its header, if the guest sends headers, into hdrs[i]); its chain
 * goes back used (with IN_ORDER only counted, its head stored in '*last').
 * Returns the number reached: it stops at the first chain it cannot take
 * so.  (Inlined in both callers: the test of 'frames' goes.) */
static inline __attribute__((always_inline)) int
split_dequeue_fast(struct virtq *vq, int i, int n, virtq_packet_cb *cb,
                   void *aux, struct virtq_frame *frames,
                   struct virtio_net_hdr *hdrs, uint32_t *last)
{
    /* The ring's state in locals, which neither 'cb' nor the stores into
     * guest memory can change. */
    struct vhost_mem_cursor cursor = vq->cursor;
    const struct vhost_mem *mem = vq->mem;
    const struct vring_desc *desc = vq->desc;
    const uint16_t *avail_ring = vq->avail->ring;
    struct vring_used_elem *used_ring = vq->used->ring;
    uint16_t last_avail = vq->last_avail_idx;
    uint16_t used = vq->used_idx;
    uint16_t mask = vq->mask;
    uint32_t size = vq->size;
    uint32_t hdr_len = vq->hdr_len;
    bool with_hdrs = vq->features & VIRTQ_HDR_FEATURES;
    bool in_order = vq->in_order;
    uint32_t last_head = *last;
    struct virtq_stats_acc acc;

    int first = i;

    memset(&acc, 0, sizeof acc);
    for (; i < n; i++) {
        uint16_t head = LOAD_RELAXED(&avail_ring[last_avail & mask]);
        struct vring_desc d;
        uint8_t *p;

        if (head >= size) {
            break;
        }
        memcpy(&d, &desc[head], sizeof d);
        p = single_buffer(mem, &cursor, d.flags, d.len, d.addr, false,
                          hdr_len + 1, VIRTQ_MAX_PACKET + hdr_len);
        if (!p) {
            break;
        }
        hand_out_frame(p, d.len, hdr_len, with_hdrs, &acc, i, frames, hdrs,
                       cb, aux);

        last_avail++;
        if (in_order) {
            last_head = head;
        } else {
            struct vring_used_elem *e = &used_ring[used & mask];

            STORE_RELAXED(&e->id, head);
            STORE_RELAXED(&e->len, 0);
        }
        used++;
    }
    vq->cursor = cursor;
    vq->last_avail_idx = last_avail;
    vq->used_idx = used;
    acc.packets = i - first;
    acc_merge(&vq->pending, &acc);
    *last = last_head;
    return i;
}

int
virtq_split_dequeue_burst(struct virtq *vq, int max, virtq_packet_cb *cb,
                          void *aux)
{
    struct virtq_piece pieces[VIRTQ_MAX_PIECES];
    uint32_t burst_visits = 0;
    uint16_t first_used = vq->used_idx;
    uint32_t last = 0;
    int n_avail;
    int i;

    n_avail = avail_burst(vq, max);
    if (!n_avail) {
        return 0;
    }

    prefetch_entries(vq, n_avail, false);
    for (i = 0; i < n_avail; i++) {
        /* Most frames: one readable descriptor holding the header and the
         * frame. */
        i = split_dequeue_fast(vq, i, n_avail, cb, aux, NULL, NULL, &last);
        if (i == n_avail) {
            break;
        }

        /* The general walk: at most VIRTQ_MAX_VISITS descriptors for this
         * frame, and the burst stops once its frames off the fast path
         * have visited VIRTQ_BURST_VISITS (the rest wait for the next
         * poll, so that a ring of long chains delays the thread's other
         * ports by a bounded time). */
        if (burst_visits >= VIRTQ_BURST_VISITS) {
            break;
        }
        uint16_t head = avail_entry(vq, vq->last_avail_idx++);
        enum virtq_error status;
        uint32_t visits = 0;
        uint64_t len = 0;
        int n = 0;

        status = walk_chain(vq, head, false, pieces, &n, &len, UINT64_MAX,
                            VIRTQ_MAX_PACKET + vq->hdr_len, &visits);
        burst_visits += visits;
        deliver_chain(vq, status, pieces, n, len, cb, aux, head);
        /* Every chain goes back to the guest, good or not, so that a bad
         * one does not leak its buffers or stall the ring. */
        put_tx_used(vq, head, &last);
    }
    put_tx_used_last(vq, first_used, last);
    virtq_split_flush(vq);
    prefetch_ahead(vq);
    return i;
}

int
virtq_split_dequeue_frames(struct virtq *vq, int max,
                           struct virtq_frame *frames,
                           struct virtio_net_hdr *hdrs, bool *more)
{
    uint16_t first_used = vq->used_idx;
    uint32_t last = 0;
    int n_avail, n;

    n_avail = avail_burst(vq, max);
    if (!n_avail) {
        *more = false;
        return 0;
    }
    prefetch_entries(vq, n_avail, false);
    n = split_dequeue_fast(vq, 0, n_avail, NULL, NULL, frames, hdrs, &last);
    put_tx_used_last(vq, first_used, last);
    *more = n < n_avail;
    if (!*more) {
        prefetch_ahead(vq);
    }
    return n;
}

int
virtq_discard_burst(struct virtq *vq, int max)
{
    int n_avail;

    if (vq->packed) {
        return virtq_packed_discard_burst(vq, max);
    }
    n_avail = avail_burst(vq, max);
    if (!n_avail) {
        return 0;
    }
    for (int i = 0; i < n_avail; i++) {
        put_used(vq, avail_entry(vq, vq->last_avail_idx++), 0);
    }
    STAT_ADD(vq->stats, disabled_discards, n_avail);
    virtq_split_flush(vq);
    return n_avail;
}

/* The guest-physical address of 'p', a buffer single_desc() translated
 * (in one region).  Found from the local address, not the descriptor
 * again, which the guest may have changed meanwhile: the page marked is the
 * page written. */
uint64_t
virtq_hva_to_gpa(const struct vhost_mem *mem, const uint8_t *p)
{
    for (unsigned int i = 0; i < mem->n_regions; i++) {
        const struct vhost_mem_region *r = &mem->regions[i];

        if ((uintptr_t) p - (uintptr_t) r->hva < r->size) {
            return r->gpa + (p - r->hva);
        }
    }
    return UINT64_MAX;          /* Not reached. */
}

/* virtq_enqueue()'s fast path while logging: the same, and the buffer
 * marked (after it was written: see vhost-log.h).  (Out of line, so that
 * the fast path keeps nothing more in registers for it.) */
static int __attribute__((noinline))
enqueue_one_logged(struct virtq *vq, uint16_t head, uint8_t *p,
                   const struct virtio_net_hdr *hdr_, const void *data,
                   uint32_t len)
{
    struct virtio_net_hdr hdr = hdr_ ? *hdr_ : (struct virtio_net_hdr) { 0 };
    uint32_t need = vq->hdr_len + len;
    uint64_t gpa = virtq_hva_to_gpa(vq->mem, p);

    hdr.num_buffers = 1;
    memcpy(p, &hdr, vq->hdr_len);
    memcpy(p + vq->hdr_len, data, len);
    vhost_log_mark(vq->log, gpa, need);
    put_used(vq, head, need);
    vq->last_avail_idx++;
    acc_count(&vq->pending, len, data);
    return 0;
}

/* virtq_enqueue() found the chains at the front of the ring too small for
 * a frame and took none: 'error' says why (VIRTQ_ERR_NONE: not enough
 * chains yet).  Counts it and returns its errno. */
static int
no_fit(struct virtq *vq, enum virtq_error error)
{
    if (error == VIRTQ_ERR_NONE) {
        return EAGAIN;
    }
    STAT_ADD(vq->stats, too_long, 1);
    record_error(vq, error, avail_entry(vq, vq->last_avail_idx));
    return EMSGSIZE;
}

/* The same, after walking chains that held 'room' bytes: remembered, so
 * that the next frames that need more fail alike without a walk. */
static int __attribute__((noinline))
no_fit_walked(struct virtq *vq, enum virtq_error error, uint64_t room)
{
    vq->nofit_valid = true;
    vq->nofit_error = error;
    vq->nofit_last = vq->last_avail_idx;
    vq->nofit_avail = vq->avail_seen;
    vq->nofit_room = room;
    return no_fit(vq, error);
}

/* virtq_enqueue() and virtq_enqueue_hdr(): 'hdr' null writes a header of
 * zeros (the compiler drops what the plain one does not need). */
static inline __attribute__((always_inline)) int
enqueue(struct virtq *vq, const struct virtio_net_hdr *hdr_in,
        const void *data, uint32_t len)
{
    struct virtq_piece pieces[VIRTQ_MAX_PIECES];
    struct {
        uint16_t head;
        uint64_t cap;           /* Bytes this chain contributes. */
    } chains[VIRTQ_MAX_PIECES];
    struct virtio_net_hdr hdr;
    uint64_t need = (uint64_t) vq->hdr_len + len;
    uint64_t have = 0;
    uint16_t taken = 0;
    int n_pieces = 0;
    int n_avail;

    if (virtq_is_broken(vq)) {
        return EIO;
    }
    n_avail = avail_at_least(vq, 1);
    if (n_avail < 0) {
        return EIO;
    }

    /* Most frames: the next buffer is one writable descriptor big enough
     * for the header and the frame. */
    if (LIKELY(n_avail > 0)) {
        uint16_t head = avail_entry(vq, vq->last_avail_idx);
        uint32_t d_len;
        uint8_t *p = single_desc(vq, head, true, need, UINT32_MAX, &d_len);

        if (LIKELY(p != NULL)) {
            static const struct virtio_net_hdr one_buffer = {
                .num_buffers = 1,
            };

            /* (Two constant sizes: both copies inlined.  Logging takes
             * neither: see 'rx_fast_hdr'.) */
            if (hdr_in) {
                if (vq->log) {
                    return enqueue_one_logged(vq, head, p, hdr_in, data,
                                              len);
                }
                memcpy(p, hdr_in, VIRTQ_HDR_READ);
                if (vq->hdr_len == 12) {
                    memcpy(p + VIRTQ_HDR_READ, &one_buffer.num_buffers, 2);
                }
            } else if (LIKELY(vq->rx_fast_hdr == 12)) {
                memcpy(p, &one_buffer, 12);
            } else if (vq->log) {
                return enqueue_one_logged(vq, head, p, NULL, data, len);
            } else {
                memcpy(p, &one_buffer, 10);
            }
            virtq_copy(p + vq->hdr_len, data, len);
            put_used(vq, head, need);
            vq->last_avail_idx++;
            acc_count(&vq->pending, len, data);
            return 0;
        }
    }

    /* The chains at the front of the ring were found too small for a
     * frame of this size before, and nothing changed since: fail the same
     * way without walking them again (a guest cannot make every frame
     * sent to it walk the same descriptors). */
    if (vq->nofit_valid && need > vq->nofit_room
        && vq->nofit_last == vq->last_avail_idx
        && LOAD_RELAXED(&vq->avail->idx) == vq->nofit_avail) {
        return no_fit(vq, vq->nofit_error);
    }

    uint32_t visits = 0;
    do {                        /* (need > 0 = have.) */
        enum virtq_error status;
        uint64_t before = have;

        if (taken == n_avail) {
            /* Maybe the guest has posted more since. */
            n_avail = avail_count(vq);
            if (n_avail < 0) {
                return EIO;
            }
        }
        if (taken == n_avail || taken == VIRTQ_MAX_PIECES
            || (taken && !vq->mrg_rxbuf)) {
            /* Not enough room: take nothing.  Without MRG_RXBUF, one chain
             * too small for the frame: drop the frame, keep the buffer for
             * the next one.  With it, more chains than a frame may have:
             * drop it.  Otherwise wait for more buffers. */
            return no_fit_walked(vq, (taken && !vq->mrg_rxbuf
                                      ? VIRTQ_ERR_NO_ROOM
                                      : taken == VIRTQ_MAX_PIECES
                                      ? VIRTQ_ERR_TOO_LONG
                                      : VIRTQ_ERR_NONE), have);
        }

        chains[taken].head = avail_entry(vq, vq->last_avail_idx + taken);
        status = walk_chain(vq, chains[taken].head, true, pieces, &n_pieces,
                            &have, need, UINT64_MAX, &visits);
        chains[taken].cap = have - before;
        taken++;
        if (status == VIRTQ_ERR_NONE && have < need
            && have - before < vq->hdr_len) {
            /* A whole chain with less room than the header: no frame ever
             * fits it (virtio 1.x, 5.1.6.3.1: with MRG_RXBUF each buffer
             * must hold at least the header; without, the whole frame).
             * Given back, not left to be walked by every frame. */
            status = VIRTQ_ERR_RX_SHORT;
        }
        if (status != VIRTQ_ERR_NONE) {
            /* A bad chain (or one with too many pieces or descriptors):
             * give back every chain taken for this frame, empty, and drop
             * the frame. */
            for (uint16_t i = 0; i < taken; i++) {
                put_used(vq, chains[i].head, 0);
            }
            vq->last_avail_idx += taken;
            STAT_ADD(vq->stats, bad_chain, 1);
            record_error(vq, status, chains[taken - 1].head);
            return EINVAL;
        }
    } while (have < need);

    if (hdr_in) {
        hdr = *hdr_in;
    } else {
        memset(&hdr, 0, sizeof hdr);
    }
    hdr.num_buffers = taken;
    scatter(pieces, n_pieces, 0, (const uint8_t *) &hdr, vq->hdr_len);
    scatter(pieces, n_pieces, vq->hdr_len, data, len);
    if (vq->log) {
        log_pieces(vq->log, pieces, n_pieces, need);
    }

    /* Each chain is used for what it holds, the last one partly. */
    for (uint16_t i = 0; i < taken; i++) {
        uint64_t used_len = chains[i].cap < need ? chains[i].cap : need;

        put_used(vq, chains[i].head, used_len);
        need -= used_len;
    }
    vq->last_avail_idx += taken;
    acc_count(&vq->pending, len, data);
    return 0;
}

int
virtq_split_enqueue(struct virtq *vq, const void *data, uint32_t len)
{
    return enqueue(vq, NULL, data, len);
}

int
virtq_split_enqueue_hdr(struct virtq *vq, const struct virtio_net_hdr *hdr,
                        const void *data, uint32_t len)
{
    return enqueue(vq, hdr, data, len);
}

int
virtq_split_enqueue_burst(struct virtq *vq, const struct virtq_frame *frames,
                          int n)
{
    static const struct virtio_net_hdr one_buffer = { .num_buffers = 1 };
    /* Locals, not the ring's fields: every store into guest memory could
     * alias those, and the compiler would load them again per frame. */
    struct vhost_mem_cursor cursor = vq->cursor;
    const struct vhost_mem *mem = vq->mem;
    const struct vring_desc *desc = vq->desc;
    struct vring_used_elem *used_ring = vq->used->ring;
    const uint16_t *avail_ring = vq->avail->ring;
    uint16_t last = vq->last_avail_idx;
    uint16_t used = vq->used_idx;
    uint16_t mask = vq->mask;
    uint16_t size = vq->size;
    struct virtq_stats_acc acc;
    int n_avail, i;

    /* (rx_fast_hdr: a 12-byte header and no dirty log.) */
    if (virtq_is_broken(vq) || vq->rx_fast_hdr != sizeof one_buffer) {
        return 0;
    }
    n_avail = avail_at_least(vq, n);
    if (n_avail <= 0) {
        return 0;
    }
    if (n > n_avail) {
        n = n_avail;
    }
    memset(&acc, 0, sizeof acc);
    for (i = 0; i < n; i++) {
        uint32_t len = frames[i].len;
        uint32_t need = sizeof one_buffer + len;
        uint16_t head = LOAD_RELAXED(&avail_ring[last & mask]);
        struct vring_desc d;
        uint8_t *p;

        if (head >= size) {
            break;
        }
        memcpy(&d, &desc[head], sizeof d);
        p = single_buffer(mem, &cursor, d.flags, d.len, d.addr, true, need,
                          UINT32_MAX);
        if (!p) {
            break;
        }
        put_frame_one_buffer(p, frames[i].data, len);

        struct vring_used_elem *e = &used_ring[used & mask];
        STORE_RELAXED(&e->id, head);
        STORE_RELAXED(&e->len, need);
        used++;
        last++;
        acc_frame(&acc, len, frames[i].data);
    }
    vq->cursor = cursor;
    vq->last_avail_idx = last;
    vq->used_idx = used;
    acc.packets = i;
    acc_merge(&vq->pending, &acc);
    return i;
}
