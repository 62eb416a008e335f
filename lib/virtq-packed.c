/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The packed virtqueue data path (virtio 1.1, VIRTIO_F_RING_PACKED): the
 * same work as virtq.c's for a ring of descriptors that the guest makes
 * available and the switch marks used in place.
 *
 * Positions ('last_avail_idx', 'used_idx', ...) are an index into the ring
 * with the wrap counter of that lap in bit 15, so that one 16-bit value
 * says both where and in which lap, as vhost-user's ring base does.
 *
 * A chain is the run of consecutive descriptors from the one at the
 * position on, through VRING_DESC_F_NEXT; its buffer id is in its last
 * descriptor.  One used descriptor goes back for the whole chain, at the
 * used position, which then moves on by the chain's length.  The used
 * descriptors of a burst are written as they come, except the first one's
 * flags: virtq_packed_flush() writes those last, with release semantics,
 * so that the guest, which polls only the next used position, sees the
 * whole burst at once (a frame in several buffers included, as the spec's
 * "multi-buffer requests" ask).
 *
 * As in the split ring, everything read from the ring is read once and
 * checked before use; a bad chain costs its frame (counted) and goes back
 * to the guest empty; a chain that does not end within the ring stops the
 * ring (nothing tells where the next one would start). */

#include "virtq.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vhost-notify.h"
#include "virtq-private.h"

#define PK_IDX(POS) ((uint16_t) ((POS) & (VIRTQ_PACKED_WRAP - 1)))

/* The position 'n' descriptors (at most a ring) after 'pos'. */
static inline uint16_t
pk_advance(const struct virtq *vq, uint16_t pos, uint32_t n)
{
    uint32_t idx = PK_IDX(pos) + n;
    uint16_t wrap = pos & VIRTQ_PACKED_WRAP;

    if (idx >= vq->size) {
        idx -= vq->size;
        wrap ^= VIRTQ_PACKED_WRAP;
    }
    return idx | wrap;
}

/* Whether a descriptor whose flags are 'flags' is available in the lap of
 * 'pos': its AVAIL bit is the lap's wrap counter, its USED bit is not. */
#define PK_AVAIL_USED (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)

/* The AVAIL and USED bits of an available descriptor in the lap of 'pos'
 * (the burst loops keep this in a local, flipped when the lap changes). */
static inline uint16_t
pk_want(uint16_t pos)
{
    return virtq_packed_avail_flags(pos);
}

static inline bool
pk_flags_avail(uint16_t flags, uint16_t pos)
{
    return (flags & PK_AVAIL_USED) == pk_want(pos);
}

/* Whether the descriptor at 'pos' is available.  (The acquire load orders
 * the reads of the chain it heads after it: the guest writes a chain's
 * first flags last.) */
static inline bool
pk_avail(const struct virtq *vq, uint16_t pos)
{
    return pk_flags_avail(LOAD_ACQUIRE(&vq->ring[PK_IDX(pos)].flags), pos);
}

static inline void
pk_read(const struct virtq *vq, uint16_t pos, struct vring_packed_desc *d)
{
    memcpy(d, &vq->ring[PK_IDX(pos)], sizeof *d);
}

enum virtq_init_error
virtq_packed_init(struct virtq *vq, const struct vhost_mem *mem,
                  uint64_t desc, uint64_t driver, uint64_t device,
                  uint16_t base)
{
    vq->packed = true;
    vq->ring = vhost_mem_qva_to_hva(mem, desc, (uint64_t) vq->size
                                               * sizeof *vq->ring);
    vq->driver_event = vhost_mem_qva_to_hva(mem, driver,
                                            sizeof *vq->driver_event);
    vq->device_event = vhost_mem_qva_to_hva(mem, device,
                                            sizeof *vq->device_event);
    if (!vq->ring || !vq->driver_event || !vq->device_event) {
        return VIRTQ_INIT_BAD_ADDR;
    }
    if ((uintptr_t) vq->ring & 15 || (uintptr_t) vq->driver_event & 3
        || (uintptr_t) vq->device_event & 3) {
        return VIRTQ_INIT_MISALIGNED;
    }
    if (PK_IDX(base) >= vq->size) {
        return VIRTQ_INIT_BAD_BASE;
    }

    /* No memory says how far the last back-end got (the split ring's used
     * index): the front-end's base does, and every buffer went back before
     * the ring stopped, so used and avail positions start together. */
    vq->last_avail_idx = base;
    vq->used_idx = base;
    vq->used_published = base;
    vq->start_idx = base;
    vq->avail_seen = base;
    vq->prefetched = base;

    /* The data path polls: the guest need not kick. */
    STORE_RELAXED(&vq->device_event->flags, VRING_PACKED_EVENT_DISABLE);
    return VIRTQ_INIT_OK;
}

void
virtq_packed_set_log(struct virtq *vq)
{
    /* The used descriptors are written into the descriptor ring: that is
     * what the log gets, wherever the front-end said its "used ring" is. */
    if (vq->log_used) {
        vq->log_used_gpa = virtq_hva_to_gpa(vq->mem,
                                            (const uint8_t *) vq->ring);
        vhost_log_mark(vq->log,
                       virtq_hva_to_gpa(vq->mem,
                                        (const uint8_t *) vq->device_event),
                       sizeof *vq->device_event);
    }
}

bool
virtq_packed_never_filled(const struct virtq *vq)
{
    return !pk_avail(vq, vq->start_idx);
}

/* Marks in the log the used descriptors from position 'from' to 'to'. */
static void __attribute__((noinline))
pk_log_used(struct virtq *vq, uint16_t from, uint16_t to)
{
    uint32_t first = PK_IDX(from), last = PK_IDX(to);
    uint64_t d = sizeof *vq->ring;

    if (last > first) {
        vhost_log_mark(vq->log, vq->log_used_gpa + first * d,
                       (last - first) * d);
    } else {
        vhost_log_mark(vq->log, vq->log_used_gpa + first * d,
                       (vq->size - first) * d);
        if (last) {
            vhost_log_mark(vq->log, vq->log_used_gpa, last * d);
        }
    }
}

/* Writes the used descriptor at position 'pos': buffer id 'id', 'len'
 * bytes of it written.  The first of a burst keeps its flags back for
 * virtq_packed_flush(). */
static inline void
pk_write_used(struct virtq *vq, uint16_t pos, uint16_t id, uint32_t len)
{
    struct vring_packed_desc *d = &vq->ring[PK_IDX(pos)];
    /* AVAIL and USED both the lap's wrap counter; WRITE if written. */
    uint16_t flags = ((-(uint16_t) (pos >> 15)
                       & (VRING_PACKED_DESC_F_AVAIL
                          | VRING_PACKED_DESC_F_USED))
                      | (len ? VRING_DESC_F_WRITE : 0));

    STORE_RELAXED(&d->id, id);
    STORE_RELAXED(&d->len, len);
    if (pos == vq->used_published) {
        vq->held_flags = flags;
    } else {
        STORE_RELAXED(&d->flags, flags);
    }
}

/* Gives the chain of 'n_descs' descriptors with buffer id 'id' back to the
 * guest, 'len' bytes of it written. */
static inline void
pk_put_used(struct virtq *vq, uint16_t id, uint32_t len, uint32_t n_descs)
{
    pk_write_used(vq, vq->used_idx, id, len);
    vq->used_idx = pk_advance(vq, vq->used_idx, n_descs);
}

/* With IN_ORDER, a chain the dequeue took goes back without a used
 * descriptor of its own: the burst's one, written at its end, names the
 * last chain ('*last'), and covers this one. */
static inline void
pk_skip_used(struct virtq *vq, uint16_t id, uint32_t n_descs, uint16_t *last)
{
    *last = id;
    vq->used_idx = pk_advance(vq, vq->used_idx, n_descs);
}

/* Whether the guest wants an interrupt for the used descriptors from
 * position 'old' to 'new'. */
static bool
pk_wants_interrupt(const struct virtq *vq, uint16_t old, uint16_t new)
{
    /* Order the used descriptors' flags before reading the guest's wish. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);

    uint16_t flags = LOAD_RELAXED(&vq->driver_event->flags);
    if (flags == VRING_PACKED_EVENT_DISABLE) {
        return false;
    }
    if (flags != VRING_PACKED_EVENT_DESC || !vq->event_idx) {
        return true;
    }

    /* An interrupt once the descriptor at the guest's position is used:
     * whether it is among those from 'old' to 'new', all in one frame of
     * reference, the current lap's indexes (the previous lap's below 0). */
    uint16_t off_wrap = LOAD_RELAXED(&vq->driver_event->off_wrap);
    uint16_t event = PK_IDX(off_wrap);
    uint16_t new_idx = PK_IDX(new);
    uint16_t old_idx = PK_IDX(old);

    if (new_idx <= old_idx) {
        old_idx -= vq->size;
    }
    if ((off_wrap ^ new) & VIRTQ_PACKED_WRAP) {
        event -= vq->size;
    }
    return ((uint16_t) (new_idx - event - 1)
            < (uint16_t) (new_idx - old_idx));
}

void
virtq_packed_flush(struct virtq *vq)
{
    uint16_t old = vq->used_published;

    if (vq->used_idx == old) {
        return;
    }
    if (vq->pending.packets) {
        acc_flush(vq->stats, &vq->pending);
        memset(&vq->pending, 0, sizeof vq->pending);
    }
    vq->nofit_valid = false;
    STORE_RELEASE(&vq->ring[PK_IDX(old)].flags, vq->held_flags);
    STORE_RELAXED(&vq->used_published, vq->used_idx);
    if (UNLIKELY(vq->log_used)) {
        pk_log_used(vq, old, vq->used_idx);
    }

    /* (Acquire: pairs with the release in set_vring_call().) */
    int call_fd = __atomic_load_n(&vq->call_fd, __ATOMIC_ACQUIRE);
    if (call_fd >= 0 && pk_wants_interrupt(vq, old, vq->used_idx)) {
        int error = vhost_notify(call_fd);

        if (LIKELY(!error)) {
            STAT_ADD(vq->stats, notifications, 1);
        } else {
            virtq_notify_failed(vq, call_fd, error);
        }
    }
}

/* The chain at 'pos' (available): returns its number of descriptors and
 * stores its buffer id in '*id', or returns 0 if no descriptor within a
 * ring's length ends it (the ring is then broken). */
static uint32_t
pk_chain(struct virtq *vq, uint16_t pos, uint16_t *id)
{
    for (uint32_t n = 1; n <= vq->size; n++) {
        struct vring_packed_desc d;

        pk_read(vq, pos, &d);
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            *id = d.id;
            return n;
        }
        pos = pk_advance(vq, pos, 1);
    }
    STORE_RELAXED(&vq->broken, true);
    STAT_ADD(vq->stats, broken, 1);
    record_error(vq, VIRTQ_ERR_LOOP, PK_IDX(pos));
    return 0;
}

/* Walks the chain of 'n_descs' descriptors at 'pos', appending its buffers
 * to 'pieces' as virtq.c's walk_chain() does (same limits, same errors,
 * 'enough' and 'limit' alike).  A packed ring's indirect table is read in
 * order, every entry; its descriptor must be the chain's only one. */
static enum virtq_error
pk_walk(struct virtq *vq, uint16_t pos, uint32_t n_descs, bool write,
        struct virtq_piece *pieces, int *n, uint64_t *len, uint64_t enough,
        uint64_t limit, uint32_t *visits)
{
    for (uint32_t k = 0; k < n_descs; k++, pos = pk_advance(vq, pos, 1)) {
        struct vring_packed_desc d;
        enum virtq_error error;

        if (++*visits > VIRTQ_MAX_VISITS) {
            return VIRTQ_ERR_TOO_MANY_DESCS;
        }
        pk_read(vq, pos, &d);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            const struct vring_packed_desc *table;
            uint64_t avail;
            uint32_t entries;

            /* (The checks and their reasons: see walk_chain().) */
            if (!vq->indirect) {
                return VIRTQ_ERR_INDIRECT_UNNEGOTIATED;
            }
            if (n_descs > 1) {
                return VIRTQ_ERR_INDIRECT_CHAINED;
            }
            if (!d.len || d.len % sizeof d || d.len / sizeof d > vq->size) {
                return VIRTQ_ERR_INDIRECT_SIZE;
            }
            table = (const struct vring_packed_desc *)
                    vhost_mem_gpa_to_hva(vq->mem, &vq->cursor, d.addr,
                                         &avail);
            if (!table || avail < d.len) {
                return VIRTQ_ERR_INDIRECT_ADDR;
            }
            entries = d.len / sizeof d;
            for (uint32_t i = 0; i < entries; i++) {
                struct vring_packed_desc t;

                if (++*visits > VIRTQ_MAX_VISITS) {
                    return VIRTQ_ERR_TOO_MANY_DESCS;
                }
                memcpy(&t, &table[i], sizeof t);
                if (!(t.flags & VRING_DESC_F_WRITE) != !write) {
                    return VIRTQ_ERR_DIRECTION;
                }
                error = add_buffer(vq, t.addr, t.len, pieces, n, len, limit);
                if (error != VIRTQ_ERR_NONE || *len >= enough) {
                    return error;
                }
            }
            return VIRTQ_ERR_NONE;
        }
        if (!(d.flags & VRING_DESC_F_WRITE) != !write) {
            return VIRTQ_ERR_DIRECTION;
        }
        error = add_buffer(vq, d.addr, d.len, pieces, n, len, limit);
        if (error != VIRTQ_ERR_NONE || *len >= enough) {
            return error;
        }
    }
    return VIRTQ_ERR_NONE;
}

/* The fast path's test: whether the descriptor 'd' is a chain of its own,
 * neither indirect nor chained, device-writable exactly if 'write', of
 * 'min_len' to 'max_len' bytes, in one memory region; if so, where its
 * buffer is, else NULL (and the general walk decides). */
static inline uint8_t *
pk_single(struct virtq *vq, const struct vring_packed_desc *d, bool write,
          uint64_t min_len, uint64_t max_len)
{
    return single_buffer(vq->mem, &vq->cursor, d->flags, d->len, d->addr,
                         write, min_len, max_len);
}

static inline void
pk_set_avail(struct virtq *vq, uint16_t pos)
{
    STORE_RELAXED(&vq->last_avail_idx, pos);
}

/* Takes the one-descriptor chain at the ring's front, position 'pos', and
 * gives it back used, 'len' bytes of it written.  Chains go back in the
 * order they came, so the used position is usually 'pos' too: both then
 * move on at once. */
static inline void
pk_take1(struct virtq *vq, uint16_t pos, uint16_t id, uint32_t len)
{
    uint16_t next = pk_advance(vq, pos, 1);

    pk_set_avail(vq, next);
    if (LIKELY(vq->used_idx == pos)) {
        pk_write_used(vq, pos, id, len);
        vq->used_idx = next;
    } else {
        pk_put_used(vq, id, len, 1);
    }
}

/* How many descriptors position 'to' is ahead of position 'from', or a
 * negative number if it is behind.  (Within two laps a position and its
 * lap's wrap counter make one number from 0 to twice the ring's size.) */
static inline int
pk_ahead(const struct virtq *vq, uint16_t from, uint16_t to)
{
    uint32_t twice = 2 * (uint32_t) vq->size;
    uint32_t a = PK_IDX(from) + (from & VIRTQ_PACKED_WRAP ? vq->size : 0);
    uint32_t b = PK_IDX(to) + (to & VIRTQ_PACKED_WRAP ? vq->size : 0);
    uint32_t d = (b + twice - a) % twice;

    return d <= vq->size ? (int) d : -1;
}

void
virtq_packed_prefetch_rx(struct virtq *vq, int n)
{
    uint16_t pos = vq->last_avail_idx;
    int i = 0;

    if (virtq_is_broken(vq)) {
        return;
    }
    if (n > VIRTQ_PREFETCH_MAX) {
        n = VIRTQ_PREFETCH_MAX;
    }

    /* Descriptors an earlier call prefetched (the send after a flush looks
     * ahead for the next batch) need nothing more. */
    int done = pk_ahead(vq, pos, vq->prefetched);
    if (done >= n) {
        return;
    } else if (done > 0) {
        i = done;
        pos = vq->prefetched;
    }

    /* (Locals: see virtq_packed_enqueue_burst().) */
    struct vhost_mem_cursor cursor = vq->cursor;
    const struct vhost_mem *mem = vq->mem;
    const struct vring_packed_desc *ring = vq->ring;
    const struct vring_packed_desc *end = ring + vq->size;
    const struct vring_packed_desc *slot = &ring[PK_IDX(pos)];
    uint16_t wrap = pos & VIRTQ_PACKED_WRAP;
    uint16_t want = pk_want(pos);

    for (; i < n; i++) {
        uint64_t room;
        uint8_t *p;

        /* (Only a hint: the enqueue checks everything again.) */
        if ((LOAD_RELAXED(&slot->flags) & PK_AVAIL_USED) != want) {
            break;
        }
        p = vhost_mem_gpa_to_hva(mem, &cursor, LOAD_RELAXED(&slot->addr),
                                 &room);
        if (p) {
            /* The header and the start of the frame (see virtq.c's
             * prefetch_entries()). */
            __builtin_prefetch(p);
        }
        if (UNLIKELY(++slot == end)) {
            slot = ring;
            wrap ^= VIRTQ_PACKED_WRAP;
            want ^= PK_AVAIL_USED;
        }
    }
    vq->cursor = cursor;
    vq->prefetched = (slot - ring) | wrap;
}

/* virtq_packed_dequeue_burst() off its fast path: the chain at the ring's
 * front, position 'pos', is not one plain readable descriptor (or is not
 * whole in one memory region).  Walks it, bounded by '*burst_visits', hands
 * its frame to 'cb' if it is good, and gives it back.  Returns false if
 * the burst must stop here (the visit budget spent, or the ring broken),
 * taking nothing. */
static bool __attribute__((noinline))
pk_dequeue_walk(struct virtq *vq, uint16_t pos, virtq_packet_cb *cb,
                void *aux, uint32_t *burst_visits, uint16_t *last)
{
    struct virtq_piece pieces[VIRTQ_MAX_PIECES];
    uint32_t visits = 0;
    uint64_t len = 0;
    int n = 0;
    uint16_t id;

    /* Bounded per frame and per burst, as in the split ring. */
    if (*burst_visits >= VIRTQ_BURST_VISITS) {
        return false;
    }
    uint32_t n_descs = pk_chain(vq, pos, &id);
    if (!n_descs) {
        return false;
    }
    enum virtq_error status = pk_walk(vq, pos, n_descs, false, pieces, &n,
                                      &len, UINT64_MAX,
                                      VIRTQ_MAX_PACKET + vq->hdr_len,
                                      &visits);
    *burst_visits += visits > n_descs ? visits : n_descs;
    deliver_chain(vq, status, pieces, n, len, cb, aux, PK_IDX(pos));
    /* Every chain goes back to the guest, good or not. */
    pk_set_avail(vq, pk_advance(vq, pos, n_descs));
    if (vq->in_order) {
        pk_skip_used(vq, id, n_descs, last);
    } else {
        pk_put_used(vq, id, 0, n_descs);
    }
    return true;
}

/* The dequeue's fast path, from the ring's front: chains of one readable
 * descriptor holding the header and the frame, given back in their own
 * slots (the used position is the avail one then: every chain goes back
 * whole, in order).  Each frame goes to 'cb' or, if 'frames' is nonnull,
 * into frames[i] (and a copy of its header, if the guest sends headers,
 * into hdrs[i]).  Takes frames number 'i' on, up to 'max', and returns the
 * number reached: it stops at the first chain it cannot take so.  With
 * IN_ORDER, writes no used descriptor but stores the last buffer id in
 * '*last'.  (Inlined in both callers: the test of 'frames' goes.) */
static inline __attribute__((always_inline)) int
pk_dequeue_fast(struct virtq *vq, int i, int max, virtq_packet_cb *cb,
                void *aux, struct virtq_frame *frames,
                struct virtio_net_hdr *hdrs, uint16_t *last)
{
    /* The ring's state in locals, which neither 'cb' nor the stores into
     * guest memory can change. */
    struct vhost_mem_cursor cursor = vq->cursor;
    const struct vhost_mem *mem = vq->mem;
    struct vring_packed_desc *ring = vq->ring;
    struct vring_packed_desc *end = ring + vq->size;
    uint16_t pos = vq->last_avail_idx;
    struct vring_packed_desc *slot = &ring[PK_IDX(pos)];
    uint16_t wrap = pos & VIRTQ_PACKED_WRAP;
    uint16_t want = pk_want(pos);
    /* AVAIL and USED both the lap's wrap counter. */
    uint16_t used_flags = wrap ? PK_AVAIL_USED : 0;
    uint32_t hdr_len = vq->hdr_len;
    bool with_hdrs = vq->features & VIRTQ_HDR_FEATURES;
    bool in_order = vq->in_order;
    bool hold = pos == vq->used_published;
    uint16_t last_id = *last;
    struct virtq_stats_acc acc;

    if (UNLIKELY(vq->used_idx != pos)) {
        return i;
    }
    int first = i;

    memset(&acc, 0, sizeof acc);
    for (; i < max; i++) {
        struct vring_packed_desc d;
        uint8_t *p;

        if ((LOAD_ACQUIRE(&slot->flags) & PK_AVAIL_USED) != want) {
            break;
        }
        memcpy(&d, slot, sizeof d);
        p = single_buffer(mem, &cursor, d.flags, d.len, d.addr, false,
                          hdr_len + 1, VIRTQ_MAX_PACKET + hdr_len);
        if (!p) {
            break;
        }
        hand_out_frame(p, d.len, hdr_len, with_hdrs, &acc, i, frames, hdrs,
                       cb, aux);

        if (in_order) {
            last_id = d.id;
        } else {
            /* Used in place; the burst's first keeps its flags back for
             * virtq_packed_flush(). */
            STORE_RELAXED(&slot->id, d.id);
            STORE_RELAXED(&slot->len, 0);
            if (UNLIKELY(hold)) {
                vq->held_flags = used_flags;
                hold = false;
            } else {
                STORE_RELAXED(&slot->flags, used_flags);
            }
        }
        if (UNLIKELY(++slot == end)) {
            slot = ring;
            wrap ^= VIRTQ_PACKED_WRAP;
            want ^= PK_AVAIL_USED;
            used_flags ^= PK_AVAIL_USED;
        }
    }
    pos = (slot - ring) | wrap;
    vq->cursor = cursor;
    pk_set_avail(vq, pos);
    vq->used_idx = pos;
    acc.packets = i - first;
    acc_merge(&vq->pending, &acc);
    *last = last_id;
    return i;
}

int
virtq_packed_dequeue_burst(struct virtq *vq, int max, virtq_packet_cb *cb,
                           void *aux)
{
    uint32_t burst_visits = 0;
    uint16_t first_used = vq->used_idx;
    uint16_t last = 0;
    int i = 0;

    if (virtq_is_broken(vq)) {
        return 0;
    }
    while (i < max) {
        i = pk_dequeue_fast(vq, i, max, cb, aux, NULL, NULL, &last);

        /* The general walk, for a chain the fast path does not take. */
        uint16_t pos = vq->last_avail_idx;
        if (i == max || !pk_avail(vq, pos)
            || !pk_dequeue_walk(vq, pos, cb, aux, &burst_visits, &last)) {
            break;
        }
        i++;
    }
    /* With IN_ORDER, one used descriptor, at the burst's first position,
     * with its last chain's buffer id, gives the guest back every chain
     * of the burst. */
    if (vq->in_order && vq->used_idx != first_used) {
        pk_write_used(vq, first_used, last, 0);
    }
    virtq_packed_flush(vq);
    return i;
}

int
virtq_packed_dequeue_frames(struct virtq *vq, int max,
                            struct virtq_frame *frames,
                            struct virtio_net_hdr *hdrs, bool *more)
{
    uint16_t first_used = vq->used_idx;
    uint16_t last = 0;
    int n;

    /* (An idle ring, as most are, costs one load.) */
    if (virtq_is_broken(vq) || !pk_avail(vq, vq->last_avail_idx)) {
        *more = false;
        return 0;
    }
    n = pk_dequeue_fast(vq, 0, max, NULL, NULL, frames, hdrs, &last);
    if (vq->in_order && vq->used_idx != first_used) {
        pk_write_used(vq, first_used, last, 0);
    }
    *more = n < max && pk_avail(vq, vq->last_avail_idx);
    return n;
}

int
virtq_packed_discard_burst(struct virtq *vq, int max)
{
    int i;

    if (virtq_is_broken(vq)) {
        return 0;
    }
    for (i = 0; i < max && pk_avail(vq, vq->last_avail_idx); i++) {
        uint16_t pos = vq->last_avail_idx;
        uint16_t id;
        uint32_t n_descs = pk_chain(vq, pos, &id);

        if (!n_descs) {
            break;
        }
        pk_set_avail(vq, pk_advance(vq, pos, n_descs));
        pk_put_used(vq, id, 0, n_descs);
    }
    if (i) {
        STAT_ADD(vq->stats, disabled_discards, i);
        virtq_packed_flush(vq);
    }
    return i;
}

/* virtq_packed_enqueue() found the chains at the ring's front too small
 * for a frame and took none (see virtq.c's no_fit()); 'next' is the
 * position after those it walked, 'room' the bytes they held. */
static int __attribute__((noinline))
pk_no_fit(struct virtq *vq, enum virtq_error error, bool walked,
          uint16_t next, uint64_t room)
{
    if (walked) {
        vq->nofit_valid = true;
        vq->nofit_error = error;
        vq->nofit_last = vq->last_avail_idx;
        vq->nofit_avail = next;
        vq->nofit_room = room;
    }
    if (error == VIRTQ_ERR_NONE) {
        return EAGAIN;
    }
    STAT_ADD(vq->stats, too_long, 1);
    record_error(vq, error, PK_IDX(vq->last_avail_idx));
    return EMSGSIZE;
}

static int pk_enqueue_walk(struct virtq *, const struct virtio_net_hdr *,
                           const void *data, uint32_t len);

int
virtq_packed_enqueue(struct virtq *vq, const struct virtio_net_hdr *hdr_in,
                     const void *data, uint32_t len)
{
    uint32_t need = (uint32_t) vq->hdr_len + len;
    uint16_t pos = vq->last_avail_idx;
    struct vring_packed_desc d;

    if (virtq_is_broken(vq)) {
        return EIO;
    }
    if (!pk_avail(vq, pos)) {
        return EAGAIN;
    }
    pk_read(vq, pos, &d);

    /* Most frames: one writable descriptor big enough for the header and
     * the frame.  (A packed ring means VERSION_1: a 12-byte header.) */
    uint8_t *p = pk_single(vq, &d, true, need, UINT32_MAX);
    if (UNLIKELY(p == NULL)) {
        return pk_enqueue_walk(vq, hdr_in, data, len);
    }

    static const struct virtio_net_hdr one_buffer = { .num_buffers = 1 };
    if (hdr_in) {
        memcpy(p, hdr_in, offsetof(struct virtio_net_hdr, num_buffers));
        memcpy(p + offsetof(struct virtio_net_hdr, num_buffers),
               &one_buffer.num_buffers, sizeof one_buffer.num_buffers);
    } else {
        memcpy(p, &one_buffer, sizeof one_buffer);
    }
    virtq_copy(p + sizeof one_buffer, data, len);
    if (UNLIKELY(vq->log != NULL)) {
        vhost_log_mark(vq->log, virtq_hva_to_gpa(vq->mem, p), need);
    }
    pk_take1(vq, pos, d.id, need);
    acc_count(&vq->pending, len, data);
    return 0;
}

int
virtq_packed_enqueue_burst(struct virtq *vq,
                           const struct virtq_frame *frames, int n)
{
    static const struct virtio_net_hdr one_buffer = { .num_buffers = 1 };
    /* Locals, not the ring's fields: every store into guest memory could
     * alias those, and the compiler would load them again per frame. */
    struct vhost_mem_cursor cursor = vq->cursor;
    const struct vhost_mem *mem = vq->mem;
    struct vring_packed_desc *ring = vq->ring;
    struct vring_packed_desc *end = ring + vq->size;
    uint16_t pos = vq->last_avail_idx;
    struct vring_packed_desc *slot = &ring[PK_IDX(pos)];
    uint16_t wrap = pos & VIRTQ_PACKED_WRAP;
    uint16_t want = pk_want(pos);
    /* AVAIL and USED both the lap's wrap counter. */
    uint16_t used_flags = ((wrap ? PK_AVAIL_USED : 0) | VRING_DESC_F_WRITE);
    bool hold = pos == vq->used_published;
    struct virtq_stats_acc acc;
    int i;

    /* A packed ring means VERSION_1: a 12-byte header.  Each chain taken
     * here is one descriptor and goes back in its own slot: the used
     * position must be the avail one (it always is on a guest RX ring,
     * where every chain goes back whole, in order). */
    if (virtq_is_broken(vq) || vq->log || vq->used_idx != pos || !n) {
        return 0;
    }
    memset(&acc, 0, sizeof acc);
    for (i = 0; i < n; i++) {
        uint32_t len = frames[i].len;
        uint32_t need = sizeof one_buffer + len;
        struct vring_packed_desc d;
        uint8_t *p;

        if ((LOAD_ACQUIRE(&slot->flags) & PK_AVAIL_USED) != want) {
            break;
        }
        memcpy(&d, slot, sizeof d);
        p = single_buffer(mem, &cursor, d.flags, d.len, d.addr, true, need,
                          UINT32_MAX);
        if (!p) {
            break;
        }
        put_frame_one_buffer(p, frames[i].data, len);

        /* Used in place; the burst's first keeps its flags back for
         * virtq_packed_flush(). */
        STORE_RELAXED(&slot->id, d.id);
        STORE_RELAXED(&slot->len, need);
        if (UNLIKELY(hold)) {
            vq->held_flags = used_flags;
            hold = false;
        } else {
            STORE_RELAXED(&slot->flags, used_flags);
        }
        if (UNLIKELY(++slot == end)) {
            slot = ring;
            wrap ^= VIRTQ_PACKED_WRAP;
            want ^= PK_AVAIL_USED;
            used_flags ^= PK_AVAIL_USED;
        }
        acc_frame(&acc, len, frames[i].data);
    }
    pos = (slot - ring) | wrap;
    vq->cursor = cursor;
    pk_set_avail(vq, pos);
    vq->used_idx = pos;
    acc.packets = i;
    acc_merge(&vq->pending, &acc);
    return i;
}

/* virtq_packed_enqueue() off its fast path: the frame needs more than the
 * next descriptor, or that one is not a plain writable buffer.  (Out of
 * line: its arrays stay off the fast path's stack frame.) */
static int __attribute__((noinline))
pk_enqueue_walk(struct virtq *vq, const struct virtio_net_hdr *hdr_in,
                const void *data, uint32_t len)
{
    struct virtq_piece pieces[VIRTQ_MAX_PIECES];
    struct {
        uint16_t id;
        uint16_t n_descs;
        uint64_t cap;           /* Bytes this chain contributes. */
    } chains[VIRTQ_MAX_PIECES];
    uint64_t need = (uint64_t) vq->hdr_len + len;
    uint16_t pos = vq->last_avail_idx;
    struct virtio_net_hdr hdr;
    uint64_t have = 0;
    uint16_t taken = 0;
    int n_pieces = 0;

    /* Known not to fit, and nothing changed since (see virtq.c): fail the
     * same way without walking the same chains. */
    if (vq->nofit_valid && need > vq->nofit_room && vq->nofit_last == pos
        && (vq->nofit_error != VIRTQ_ERR_NONE
            || !pk_avail(vq, vq->nofit_avail))) {
        return pk_no_fit(vq, vq->nofit_error, false, 0, 0);
    }

    if (hdr_in) {
        hdr = *hdr_in;
    } else {
        memset(&hdr, 0, sizeof hdr);
    }

    uint32_t visits = 0;
    uint16_t next = pos;
    do {
        enum virtq_error status;
        uint64_t before = have;
        uint16_t id;

        if ((taken && !pk_avail(vq, next)) || taken == VIRTQ_MAX_PIECES
            || (taken && !vq->mrg_rxbuf)) {
            /* Not enough room: take nothing (see virtq.c's enqueue()). */
            return pk_no_fit(vq, (taken && !vq->mrg_rxbuf
                                  ? VIRTQ_ERR_NO_ROOM
                                  : taken == VIRTQ_MAX_PIECES
                                  ? VIRTQ_ERR_TOO_LONG
                                  : VIRTQ_ERR_NONE), true, next, have);
        }

        uint32_t n_descs = pk_chain(vq, next, &id);
        if (!n_descs) {
            return EIO;
        }
        status = pk_walk(vq, next, n_descs, true, pieces, &n_pieces, &have,
                         need, UINT64_MAX, &visits);
        chains[taken].id = id;
        chains[taken].n_descs = n_descs;
        chains[taken].cap = have - before;
        taken++;
        next = pk_advance(vq, next, n_descs);
        if (status == VIRTQ_ERR_NONE && have < need
            && have - before < vq->hdr_len) {
            status = VIRTQ_ERR_RX_SHORT;
        }
        if (status != VIRTQ_ERR_NONE) {
            /* Every chain taken for this frame goes back empty; the frame
             * is dropped. */
            for (uint16_t i = 0; i < taken; i++) {
                pk_put_used(vq, chains[i].id, 0, chains[i].n_descs);
            }
            pk_set_avail(vq, next);
            STAT_ADD(vq->stats, bad_chain, 1);
            record_error(vq, status, PK_IDX(pos));
            return EINVAL;
        }
    } while (have < need);

    hdr.num_buffers = taken;
    scatter(pieces, n_pieces, 0, (const uint8_t *) &hdr, vq->hdr_len);
    scatter(pieces, n_pieces, vq->hdr_len, data, len);
    if (vq->log) {
        log_pieces(vq->log, pieces, n_pieces, need);
    }
    for (uint16_t i = 0; i < taken; i++) {
        uint64_t used_len = chains[i].cap < need ? chains[i].cap : need;

        pk_put_used(vq, chains[i].id, used_len, chains[i].n_descs);
        need -= used_len;
    }
    pk_set_avail(vq, next);
    acc_count(&vq->pending, len, data);
    return 0;
}
