/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The virtqueue data path, split and packed rings. */

#ifndef VIRTQ_H
#define VIRTQ_H 1

/* The virtqueue data path: descriptors to packets and back, for split
 * rings (virtq.c) and packed rings (virtq-packed.c, VIRTIO_F_RING_PACKED)
 * alike: the caller does not care which the guest chose.
 *
 * A 'struct virtq' is a started vring as the data path sees it: ring
 * pointers already translated and bounds-checked, the guest memory table it
 * translates descriptors through, and the indexes only the thread that owns
 * the queue moves.  The control path builds one with virtq_init() when a
 * vring starts and hands it to exactly one data-path thread at a time.
 *
 * Everything read from guest memory is read once and checked before use:
 * descriptors are copied out before they are followed, every buffer is
 * translated through the memory table (a buffer that crosses a region
 * boundary becomes several pieces), chains are bounded by the ring size,
 * indirect tables may not nest or loop.  A bad chain costs its packet (and
 * a counter), never a read or write outside the guest's mapped memory.
 *
 * No Open vSwitch dependency: packets are handed out as lists of pieces
 * of guest memory, and taken in as flat buffers. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vhost-log.h"
#include "vhost-mem.h"
#include "virtio.h"

#define VIRTQ_MAX_SIZE 32768    /* Largest ring. */
#define VIRTQ_MAX_PIECES 128    /* Pieces of one packet's buffers. */
/* Descriptors visited for one frame at most, over all its chains, indirect
 * descriptors and zero-length ones included: however a guest lays out its
 * chains, one frame costs at most this many descriptor reads (a walk that
 * would take more gives its chains back as bad).  Guests' drivers use a
 * few per frame (Linux at most 19 for a 64 kB frame without MRG_RXBUF,
 * one per buffer, ~45, with it). */
#define VIRTQ_MAX_VISITS (2 * VIRTQ_MAX_PIECES)
/* Descriptors one virtq_dequeue_burst() visits in chains off the fast path
 * before it stops early (the rest wait for the next poll). */
#define VIRTQ_BURST_VISITS (4 * VIRTQ_MAX_VISITS)
#define VIRTQ_PREFETCH_MAX 32   /* Entries prefetched ahead at most. */
/* Largest frame taken from a guest: what a 16-bit length holds, as the
 * packet buffers of OVS (a dp_packet records its buffer's size in 16 bits)
 * and DPDK do.  Linux's TCP segmentation offload keeps a frame below it. */
#define VIRTQ_MAX_PACKET 65535

/* Counters of one vring.  Written only by the thread that owns the queue
 * (relaxed stores), read by anyone.  They outlive a 'struct virtq': a vring
 * keeps its counters across stops, restarts and reconnects. */
struct virtq_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t notifications;     /* Guest interrupts through the call fd. */
    uint64_t notify_errors;     /* Guest interrupts that could not be sent
                                 * (see VIRTQ_ERR_CALL_*). */
    uint64_t bad_chain;         /* Chain dropped: loop, bad address, ... */
    uint64_t too_long;          /* Frame bigger than the buffers or limit. */
    uint64_t broken;            /* Ring indexes made no sense: the ring
                                 * stopped. */
    uint64_t disabled_discards; /* Taken from a disabled TX ring, dropped. */
    /* As OVS-DPDK users know them from rte_vhost (rx_qN_..., tx_qN_...). */
    uint64_t multicast;
    uint64_t broadcast;
    uint64_t undersize;         /* Under 64 bytes. */
    uint64_t size_64;
    uint64_t size_65_127;
    uint64_t size_128_255;
    uint64_t size_256_511;
    uint64_t size_512_1023;
    uint64_t size_1024_1518;
    uint64_t size_1519_max;
};

/* Counts of packets not yet added to a 'struct virtq_stats': a burst's,
 * added once at its end. */
struct virtq_stats_acc {
    uint64_t bytes;
    uint32_t packets;
    uint32_t multicast;
    uint32_t broadcast;
    uint32_t bins[8];           /* < 64, 64, 65-127, ..., 1024-1518, more. */
};

/* A piece of a packet in guest memory. */
struct virtq_piece {
    uint8_t *base;
    uint32_t len;
    uint64_t gpa;               /* Guest-physical address of 'base' (only
                                 * in chains the general walk took, for
                                 * the dirty log). */
};

struct virtq {
    /* Fixed at virtq_init(). */
    union {
        struct vring_desc *desc;                /* Split ring. */
        struct vring_packed_desc *ring;         /* Packed ring. */
    };
    union {
        struct vring_avail *avail;
        struct vring_packed_event *driver_event; /* Read: interrupts. */
    };
    union {
        struct vring_used *used;
        struct vring_packed_event *device_event; /* Written: kicks. */
    };
    bool packed;                /* VIRTIO_F_RING_PACKED negotiated.  The
                                 * indexes below are then positions in the
                                 * ring with the wrap counter in bit 15
                                 * (VIRTQ_PACKED_WRAP), as vhost-user's
                                 * ring base has them. */
    uint16_t size;
    uint16_t mask;              /* Split ring: size - 1. */
    uint16_t hdr_len;           /* 10 or 12. */
    bool event_idx;
    bool mrg_rxbuf;
    bool indirect;              /* INDIRECT_DESC negotiated. */
    bool in_order;              /* VIRTIO_F_IN_ORDER negotiated: buffers
                                 * go back in the order they came (as
                                 * they always do here), and the dequeue
                                 * writes one used entry per burst, its
                                 * last chain's, for all its chains. */
    uint64_t features;          /* The negotiated virtio features (with
                                 * any of VIRTQ_HDR_FEATURES, dequeue hands
                                 * the guest's headers out). */
    int call_fd;                /* -1: never notify.  The control thread
                                 * may replace it (atomically) while the
                                 * ring runs; the data path sets it to -1
                                 * (compare-and-swap) if a write to it
                                 * blocked. */
    const struct vhost_mem *mem;
    struct virtq_stats *stats;
    uint16_t vring;             /* Its index in the device (set by the
                                 * device, for logs). */

    /* Dirty-page logging (live migration), set by virtq_set_log() before
     * the ring is handed to the data path and fixed while it runs. */
    struct vhost_log *log;      /* Null: not logging. */
    uint64_t log_used_gpa;      /* Guest-physical address of the used
                                 * ring, if 'log_used'. */
    bool log_used;              /* Mark the used ring's writes (packed
                                 * ring: the used descriptors written into
                                 * the ring, at 'log_used_gpa', the ring's
                                 * guest-physical address). */
    uint8_t rx_fast_hdr;        /* 12 if the enqueue's fast path writes a
                                 * 12-byte header inline and logs nothing,
                                 * else 0 (a 10-byte header, or logging:
                                 * the test the fast path made of the
                                 * header size decides both, so that it
                                 * costs nothing more without logging). */

    /* Owned by the thread that polls the queue. */
    struct vhost_mem_cursor cursor;
    uint16_t last_avail_idx;    /* Next avail entry to take. */
    uint16_t prefetched;        /* Entries before it were prefetched. */
    uint16_t avail_seen;        /* avail->idx as last read: entries up to
                                 * it need no new read of that index (a
                                 * line the guest keeps writing). */
    uint16_t start_idx;         /* 'last_avail_idx' when the ring
                                 * started. */
    uint16_t used_idx;          /* Next used entry to fill. */
    uint16_t used_published;    /* used->idx as last written.  (Packed
                                 * ring: the position up to which used
                                 * descriptors are visible to the guest.) */
    uint16_t held_flags;        /* Packed ring: the flags of the used
                                 * descriptor at 'used_published', written
                                 * last, by virtq_flush(), so that the
                                 * guest sees the whole batch at once. */
    struct virtq_stats_acc pending;     /* Frames taken or given since the
                                         * last virtq_flush(): counted
                                         * there. */
    bool broken;                /* Stop touching the ring (written by
                                 * the owner, read by anyone: atomic). */
    uint8_t error;              /* enum virtq_error: the last thing the
                                 * guest got wrong, for the caller to
                                 * report and clear (see below). */
    uint16_t error_head;        /* The chain it was in (or avail index). */

    /* The last frame that found too little room (virtq_enqueue() returned
     * EAGAIN or EMSGSIZE without taking a chain): with 'last_avail_idx'
     * and the guest's avail index unchanged, a frame that needs more than
     * 'nofit_room' bytes fails the same way without walking the same
     * chains again. */
    bool nofit_valid;
    uint8_t nofit_error;        /* enum virtq_error it had: VIRTQ_ERR_NONE
                                 * (EAGAIN), _NO_ROOM or _TOO_LONG
                                 * (EMSGSIZE). */
    uint16_t nofit_last;        /* 'last_avail_idx' then. */
    uint16_t nofit_avail;       /* The guest's avail index then.  (Packed
                                 * ring: the position after the chains
                                 * walked.) */
    uint64_t nofit_room;        /* Bytes the chains walked held. */
};

/* What a guest got wrong on a running ring.  virtq_dequeue_burst(),
 * virtq_enqueue() and virtq_discard_burst() count every such event (stats
 * 'bad_chain', 'too_long', 'broken') and leave the last one in 'error' and
 * 'error_head', so that the caller can log it: one test of 'error' after a
 * burst, out of the way of the fast path. */
enum virtq_error {
    VIRTQ_ERR_NONE = 0,
    VIRTQ_ERR_HEAD_RANGE,       /* Chain head beyond the ring. */
    VIRTQ_ERR_NEXT_RANGE,       /* 'next' beyond the (indirect) table. */
    VIRTQ_ERR_LOOP,             /* Chain visits more entries than exist. */
    VIRTQ_ERR_DIRECTION,        /* Readable buffer where a writable one
                                 * belongs, or the other way round. */
    VIRTQ_ERR_ADDR,             /* Buffer not (wholly) in guest memory. */
    VIRTQ_ERR_INDIRECT_UNNEGOTIATED, /* INDIRECT without the feature. */
    VIRTQ_ERR_INDIRECT_NESTED,  /* Indirect inside an indirect table. */
    VIRTQ_ERR_INDIRECT_CHAINED, /* INDIRECT together with NEXT. */
    VIRTQ_ERR_INDIRECT_SIZE,    /* Table length 0, not whole descriptors,
                                 * or more entries than the ring has. */
    VIRTQ_ERR_INDIRECT_ADDR,    /* Table not (wholly) in guest memory. */
    VIRTQ_ERR_SHORT,            /* Frame shorter than its virtio header. */
    VIRTQ_ERR_TOO_LONG,         /* Frame over the limit, or in too many
                                 * pieces. */
    VIRTQ_ERR_NO_ROOM,          /* Without MRG_RXBUF, a receive buffer too
                                 * small for the frame. */
    VIRTQ_ERR_AVAIL_JUMP,       /* avail->idx ran more than a ring ahead:
                                 * the ring is stopped (broken) until the
                                 * front-end restarts it. */
    VIRTQ_ERR_TOO_MANY_DESCS,   /* One frame's chains hold more than
                                 * VIRTQ_MAX_VISITS descriptors. */
    VIRTQ_ERR_RX_SHORT,         /* A receive chain with less room than the
                                 * virtio-net header. */
    /* Notifications (counted in 'notify_errors', not as bad chains):
     * 'error_head' is the used index. */
    VIRTQ_ERR_CALL_FULL,        /* The call eventfd's counter is full. */
    VIRTQ_ERR_CALL_BLOCKED,     /* The front-end made the call fd blocking
                                 * (and its counter full): the write was
                                 * interrupted, and the ring notifies no
                                 * more until the front-end sends a new
                                 * call fd or restarts it. */
    VIRTQ_ERR_CALL_FAILED,      /* The write failed otherwise. */
};

const char *virtq_error_name(enum virtq_error);

/* Why virtq_init() refused a vring. */
enum virtq_init_error {
    VIRTQ_INIT_OK = 0,
    VIRTQ_INIT_BAD_SIZE,        /* 0, not a power of 2, or > 32768. */
    VIRTQ_INIT_BAD_ADDR,        /* Ring not inside guest memory. */
    VIRTQ_INIT_MISALIGNED,      /* Ring not aligned as virtio requires. */
    VIRTQ_INIT_BAD_BASE,        /* Packed ring: base position beyond the
                                 * ring. */
};

const char *virtq_init_error_name(enum virtq_init_error);

/* Sets up 'vq' for a vring of 'size' entries whose parts are at the
 * front-end addresses 'desc', 'avail' and 'used', resuming at avail index
 * 'base'.  'features' are the negotiated virtio features.
 *
 * With VIRTIO_F_RING_PACKED among them, a packed ring: 'desc' is its
 * descriptor ring, 'avail' the driver's event suppression structure,
 * 'used' the device's, 'size' need not be a power of 2, and 'base' holds
 * the next descriptor's position and the wrap counter in bit 15 (the low
 * half of vhost-user's packed ring base; the switch returns every buffer
 * before a ring stops, so the used position starts there too). */
enum virtq_init_error virtq_init(struct virtq *vq, const struct vhost_mem *,
                                 uint32_t size, uint64_t desc, uint64_t avail,
                                 uint64_t used, uint16_t base,
                                 uint64_t features, int call_fd,
                                 struct virtq_stats *stats);

/* Makes 'vq', set up by virtq_init() and not yet running, mark in 'log'
 * (null: log nothing) every guest page it writes: frames and headers in
 * receive buffers, and, if 'log_used', the used ring at guest-physical
 * address 'used_gpa' (vhost-user's log_guest_addr). */
void virtq_set_log(struct virtq *vq, struct vhost_log *log,
                   bool log_used, uint64_t used_gpa);

/* memcpy() of a frame: small ones (most of them, in packet rates that
 * matter) as two overlapping fixed-size copies the compiler inlines, instead
 * of a call whose length dispatch costs as much as the copy.  The sizes of
 * the smallest Ethernet frames (60 to 64 bytes) are tested first. */
static inline void
virtq_copy(void *dst_, const void *src_, size_t len)
{
    uint8_t *dst = dst_;
    const uint8_t *src = src_;

    if (len > 32 && len <= 64) {
        __builtin_memcpy(dst, src, 32);
        __builtin_memcpy(dst + len - 32, src + len - 32, 32);
    } else if (len >= 16 && len <= 32) {
        __builtin_memcpy(dst, src, 16);
        __builtin_memcpy(dst + len - 16, src + len - 16, 16);
    } else if (len > 64 && len <= 128) {
        __builtin_memcpy(dst, src, 64);
        __builtin_memcpy(dst + len - 64, src + len - 64, 64);
    } else {
        memcpy(dst, src, len);
    }
}

/* Whether the guest's indexes made no sense and the ring stopped.  Any
 * thread may ask. */
static inline bool
virtq_is_broken(const struct virtq *vq)
{
    return __atomic_load_n(&vq->broken, __ATOMIC_RELAXED);
}

#define VIRTQ_PACKED_WRAP 0x8000

/* The AVAIL and USED flags of a packed-ring descriptor the guest made
 * available in the lap of position 'pos': AVAIL is the lap's wrap counter,
 * USED is not. */
static inline uint16_t
virtq_packed_avail_flags(uint16_t pos)
{
    return (pos & VIRTQ_PACKED_WRAP
            ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED);
}

/* Whether the guest may have made available a chain that the next dequeue
 * from 'vq' would take: false only if it has not, so that a poll of an
 * idle queue can stop here, for one read of a line the guest writes (the
 * dequeue reads it again, with the ordering it needs).  The thread that
 * polls the queue only. */
static inline bool
virtq_maybe_avail(const struct virtq *vq)
{
    uint16_t pos = vq->last_avail_idx;

    if (virtq_is_broken(vq)) {
        return false;
    }
    if (vq->packed) {
        uint16_t flags = __atomic_load_n(
            &vq->ring[pos & (VIRTQ_PACKED_WRAP - 1)].flags, __ATOMIC_RELAXED);

        return ((flags & (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED))
                == virtq_packed_avail_flags(pos));
    }
    return (vq->avail_seen != pos
            || __atomic_load_n(&vq->avail->idx, __ATOMIC_RELAXED) != pos);
}

/* The guest's avail index and the used index the switch last published,
 * as they are in guest memory now.  Any thread may ask.  (A packed ring has
 * neither in memory: the switch's next avail position and its published
 * used position, each with its wrap counter in bit 15.) */
static inline uint16_t
virtq_guest_avail_idx(const struct virtq *vq)
{
    return (vq->packed
            ? __atomic_load_n(&vq->last_avail_idx, __ATOMIC_RELAXED)
            : __atomic_load_n(&vq->avail->idx, __ATOMIC_RELAXED));
}

static inline uint16_t
virtq_guest_used_idx(const struct virtq *vq)
{
    return (vq->packed
            ? __atomic_load_n(&vq->used_published, __ATOMIC_RELAXED)
            : __atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED));
}

/* The avail index to resume from after the ring stops. */
static inline uint16_t
virtq_last_avail(const struct virtq *vq)
{
    return vq->last_avail_idx;
}

/* Whether the guest has made no buffer available on 'vq' since the ring
 * started (or, once every 65536 buffers, has none available now).  A
 * driver may enable a queue before it fills it: Linux's virtio-net fills
 * the queues that "ethtool -L" adds from a work item, after the front-end
 * enabled them.  Only the thread that owns 'vq' may ask. */
bool virtq_packed_never_filled(const struct virtq *);

static inline bool
virtq_never_filled(const struct virtq *vq)
{
    return (__builtin_expect(vq->last_avail_idx == vq->start_idx, 0)
            && (vq->packed
                ? virtq_packed_never_filled(vq)
                : virtq_guest_avail_idx(vq) == vq->start_idx));
}

/* Hints that about 'n' frames are to be enqueued into 'vq' (a guest RX
 * vring) now: starts loading the descriptors and buffers they will use. */
void virtq_prefetch_rx(struct virtq *, int n);

/* Features under which a guest's virtio-net header can ask something of
 * the switch (see vnet-offload.h). */
#define VIRTQ_HDR_FEATURES                      \
    ((1ull << VIRTIO_NET_F_CSUM)                \
     | (1ull << VIRTIO_NET_F_HOST_TSO4)         \
     | (1ull << VIRTIO_NET_F_HOST_TSO6)         \
     | (1ull << VIRTIO_NET_F_HOST_ECN)          \
     | (1ull << VIRTIO_NET_F_HOST_UFO))

/* A frame: 'len' bytes at 'data' (in guest memory for
 * virtq_dequeue_frames(), from the switch for virtq_enqueue_burst()). */
struct virtq_frame {
    const void *data;
    uint32_t len;
};

/* Called once per packet dequeued: 'pieces' (n of them, 'len' bytes in all)
 * hold the frame, the virtio-net header already skipped.  The pieces point
 * into guest memory and are valid only during the call.  'hdr' is a copy of
 * the frame's virtio-net header (its 'num_buffers' 0) if the guest
 * negotiated any of VIRTQ_HDR_FEATURES, else null. */
typedef void virtq_packet_cb(void *aux, const struct virtq_piece *pieces,
                             int n, uint32_t len,
                             const struct virtio_net_hdr *hdr);

/* Takes up to 'max' packets the guest transmitted on 'vq' (a guest TX
 * vring), calling 'cb' for each good one, returns them to the guest and
 * notifies it if it asked.  Returns the number of chains consumed. */
static inline int virtq_dequeue_burst(struct virtq *vq, int max,
                                      virtq_packet_cb *cb, void *aux);

/* virtq_dequeue_burst()'s fast path without a call per frame: takes up to
 * 'max' frames the guest transmitted on 'vq', as long as each is one
 * readable descriptor holding the virtio-net header and the frame, all in
 * one memory region (what almost every frame is).  Stores where each frame
 * is, its header skipped, in frames[i], and a copy of its header in
 * hdrs[i] if the guest negotiated any of VIRTQ_HDR_FEATURES (see
 * virtq_hands_hdrs(); 'hdrs' may be null otherwise).  Returns how many it
 * took, and sets '*more' if it stopped at a chain it cannot take so (pass
 * the rest to virtq_dequeue_burst(), which takes every kind of chain).
 *
 * The frames stay in guest memory, and the guest does not get their
 * buffers back, until the caller publishes them with virtq_flush() (or
 * virtq_dequeue_burst()), which it must do after copying them out: before
 * the next call, and before the ring may stop. */
static inline int virtq_dequeue_frames(struct virtq *vq, int max,
                                       struct virtq_frame *frames,
                                       struct virtio_net_hdr *hdrs,
                                       bool *more);

/* Whether virtq_dequeue_frames() and virtq_dequeue_burst() hand out the
 * guest's virtio-net headers. */
static inline bool
virtq_hands_hdrs(const struct virtq *vq)
{
    return vq->features & VIRTQ_HDR_FEATURES;
}

/* Returns up to 'max' chains the guest made available on 'vq' without
 * looking at them, and counts them as disabled_discards: what the spec asks
 * of a started but disabled guest TX ring.  Returns the number taken. */
int virtq_discard_burst(struct virtq *vq, int max);

/* Copies the frame 'data' of 'len' bytes into the guest's buffers on 'vq'
 * (a guest RX vring).  Returns 0 on success, EAGAIN if the guest has no
 * buffers for it now (nothing was consumed: try again later), or another
 * errno value if the frame was dropped for good (counted): EINVAL if the
 * guest's next chain was bad (given back empty), EMSGSIZE if the frame
 * can never fit, EIO if the ring is broken.  Call virtq_flush() after a
 * burst. */
static inline int virtq_enqueue(struct virtq *vq, const void *data,
                                uint32_t len);


/* Copies frames[0], frames[1], ... (up to 'n' of them) into the guest's
 * buffers on 'vq' as virtq_enqueue() would, as long as each fits whole the
 * next buffer, one descriptor, with no header to write but num_buffers and
 * no dirty log to mark: what almost every frame does.  Returns how many it
 * took, from the first; it counts no error and takes nothing it cannot
 * take that way.  The caller then sends the next frame with
 * virtq_enqueue(), which decides everything else (more buffers or none,
 * bad chains, logging).  Call virtq_flush() after a burst.  One call per
 * burst instead of one per frame: the ring's state stays in registers. */
static inline int virtq_enqueue_burst(struct virtq *vq,
                                      const struct virtq_frame *frames,
                                      int n);

/* The same with the virtio-net header 'hdr' (its 'num_buffers' ignored:
 * set here), for frames with offloads. */
static inline int virtq_enqueue_hdr(struct virtq *vq,
                                    const struct virtio_net_hdr *hdr,
                                    const void *data, uint32_t len);

/* Publishes the used entries of the packets enqueued since the last flush
 * and notifies the guest if it asked (see vhost-notify.h: that never
 * blocks, whatever the front-end does to its call fd). */
static inline void virtq_flush(struct virtq *vq);

/* The split ring's (virtq.c) and the packed ring's (virtq-packed.c)
 * versions of the above, which those call (inline: the test of the layout
 * is all they add). */
int virtq_split_dequeue_burst(struct virtq *, int max, virtq_packet_cb *,
                              void *aux);
int virtq_split_dequeue_frames(struct virtq *, int max, struct virtq_frame *,
                               struct virtio_net_hdr *, bool *more);
int virtq_split_enqueue(struct virtq *, const void *data, uint32_t len);
int virtq_split_enqueue_hdr(struct virtq *, const struct virtio_net_hdr *,
                            const void *data, uint32_t len);
int virtq_split_enqueue_burst(struct virtq *, const struct virtq_frame *,
                              int n);
void virtq_split_flush(struct virtq *);

enum virtq_init_error virtq_packed_init(struct virtq *, const struct vhost_mem *,
                                        uint64_t desc, uint64_t driver,
                                        uint64_t device, uint16_t base);
void virtq_packed_set_log(struct virtq *);
void virtq_packed_prefetch_rx(struct virtq *, int n);
int virtq_packed_dequeue_burst(struct virtq *, int max, virtq_packet_cb *,
                               void *aux);
int virtq_packed_dequeue_frames(struct virtq *, int max,
                                struct virtq_frame *,
                                struct virtio_net_hdr *, bool *more);
int virtq_packed_discard_burst(struct virtq *, int max);
int virtq_packed_enqueue(struct virtq *, const struct virtio_net_hdr *,
                         const void *data, uint32_t len);
int virtq_packed_enqueue_burst(struct virtq *, const struct virtq_frame *,
                               int n);
void virtq_packed_flush(struct virtq *);

static inline int
virtq_dequeue_burst(struct virtq *vq, int max, virtq_packet_cb *cb,
                    void *aux)
{
    return (__builtin_expect(vq->packed, 0)
            ? virtq_packed_dequeue_burst(vq, max, cb, aux)
            : virtq_split_dequeue_burst(vq, max, cb, aux));
}

static inline int
virtq_dequeue_frames(struct virtq *vq, int max, struct virtq_frame *frames,
                     struct virtio_net_hdr *hdrs, bool *more)
{
    return (__builtin_expect(vq->packed, 0)
            ? virtq_packed_dequeue_frames(vq, max, frames, hdrs, more)
            : virtq_split_dequeue_frames(vq, max, frames, hdrs, more));
}

static inline int
virtq_enqueue(struct virtq *vq, const void *data, uint32_t len)
{
    return (__builtin_expect(vq->packed, 0)
            ? virtq_packed_enqueue(vq, NULL, data, len)
            : virtq_split_enqueue(vq, data, len));
}

static inline int
virtq_enqueue_burst(struct virtq *vq, const struct virtq_frame *frames, int n)
{
    return (__builtin_expect(vq->packed, 0)
            ? virtq_packed_enqueue_burst(vq, frames, n)
            : virtq_split_enqueue_burst(vq, frames, n));
}

static inline int
virtq_enqueue_hdr(struct virtq *vq, const struct virtio_net_hdr *hdr,
                  const void *data, uint32_t len)
{
    return (__builtin_expect(vq->packed, 0)
            ? virtq_packed_enqueue(vq, hdr, data, len)
            : virtq_split_enqueue_hdr(vq, hdr, data, len));
}

static inline void
virtq_flush(struct virtq *vq)
{
    if (__builtin_expect(vq->packed, 0)) {
        virtq_packed_flush(vq);
    } else {
        virtq_split_flush(vq);
    }
}

#endif /* virtq.h */
