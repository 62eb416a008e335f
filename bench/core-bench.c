/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* core-bench: what the core's data path costs per packet, without Open
 * vSwitch.
 *
 * One process plays both sides.  The "guest" lays out a TX and an RX split
 * ring (or, with --packed, packed rings) in memfd memory that the core maps for itself through vhost_mem, as
 * it maps a QEMU guest's memory; it keeps its TX ring full of frames and its
 * RX ring stocked with buffers.  The "switch" does per burst what
 * lib/netdev-vhostmq.c does for a PMD thread forwarding from one vhost-user
 * port to another: virtq_dequeue_frames() from the guest's TX ring, copying
 * each frame out of guest memory into a packet buffer, then virtq_flush()
 * (or virtq_dequeue_burst() for chains off the fast path) (rxq_recv); then
 * virtq_enqueue_burst() of the packets into the guest's RX ring,
 * virtq_enqueue() of any it did not take, with the same retry loop, and
 * virtq_flush() (send).
 *
 * Only the switch's part is timed, and only it is counted under callgrind
 * (bench/core-bench-callgrind runs it with --toggle-collect on
 * bench_switch_burst()): the guest's bookkeeping and checks run between
 * bursts.  Both sides run on one core, so the figures are the instructions
 * and cycles of the data path with warm caches.  They leave out what a real
 * deployment adds: cache lines moving between a guest's vCPU and the PMD
 * core, OVS's dp_packet allocation and its flow lookup.
 *
 * The guest checks everything it gets back: every returned TX chain, every
 * received frame's header, buffer count, lengths and sequence number, all
 * bytes of a sample of frames (of every frame during the warm-up), and at
 * the end the counts on both sides and the core's own counters.  Any
 * mismatch ends the program with a nonzero status before a figure is
 * printed, so a broken data path cannot produce a nice number. */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vguest-packed.h"
#include "vguest-ring.h"
#include "vhost-mem.h"
#include "vhost-user-wire.h"
#include "virtq.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#endif

/* Callgrind's client requests, if its header is there.  Without them the
 * benchmark still runs, but bench/core-bench-callgrind, which starts
 * valgrind with instrumentation off, would count nothing. */
#if defined(HAVE_VALGRIND_CALLGRIND_H)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#elif defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#endif
#endif

#ifdef BENCH_HAVE_CALLGRIND
#define BENCH_START_INSTRUMENTATION() CALLGRIND_START_INSTRUMENTATION
#define BENCH_STOP_INSTRUMENTATION() CALLGRIND_STOP_INSTRUMENTATION
#else
#define BENCH_START_INSTRUMENTATION() ((void) 0)
#define BENCH_STOP_INSTRUMENTATION() ((void) 0)
#endif

#define RING_SIZE 256           /* QEMU's default for virtio-net queues. */
#define RING_MASK (RING_SIZE - 1)
#define HDR_LEN 12              /* struct virtio_net_hdr with VERSION_1. */

/* What a Linux guest's virtio-net negotiates that matters to these rings:
 * no offloads, so every header the switch writes must be all zeros but for
 * num_buffers. */
#define GUEST_FEATURES ((1ull << VIRTIO_F_VERSION_1)           \
                        | (1ull << VIRTIO_NET_F_MRG_RXBUF)     \
                        | (1ull << VIRTIO_RING_F_EVENT_IDX))

/* The guest's memory: one region, at a guest-physical address unlike the
 * local one, so that every buffer really goes through translation.  The
 * rings sit at its start, each part on its own page; the TX buffers and
 * then the RX buffers follow. */
#define GPA_BASE 0x100000000ull
#define TX_DESC_OFS 0x0000
#define TX_AVAIL_OFS 0x1000
#define TX_USED_OFS 0x2000
#define RX_DESC_OFS 0x3000
#define RX_AVAIL_OFS 0x4000
#define RX_USED_OFS 0x5000
#define BUFFERS_OFS 0x10000

#define MIN_FRAME 64
#define MAX_FRAME 9000
#define RX_BUF_DEFAULT 2048     /* A Linux guest's mergeable buffers are
                                 * about this size. */
#define MIN_RX_BUF 128
#define MAX_RX_BUF 65536

/* Where a frame carries its sequence number: right after the Ethernet
 * header.  Every frame is checked for it, so that a frame lost, repeated,
 * reordered or left stale in a buffer shows even when its other bytes are
 * not compared. */
#define SEQ_OFS 14

/* After the warm-up, one RX buffer in this many, picked at random each
 * time it is made available, is poisoned, and the frame that lands in it
 * compared byte for byte: the frame must then overwrite every byte of the
 * buffer it claims to fill.  A fixed choice (every 16th buffer id) could
 * miss faults that recur with a period that divides the ring's. */
#define VERIFY_EVERY 16
#define POISON 0xa5

/* As in OVS: packets get DP_NETDEV_HEADROOM (2 + VLAN_HEADER_LEN) bytes in
 * front, and the provider retries a full RX ring 8 times by default. */
#define PACKET_HEADROOM 6
#define TX_RETRIES 8

#define ROUND_UP(X, Y) (((X) + (Y) - 1) / (Y) * (Y))

static void bench_fatal(const char *format, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
bench_fatal(const char *format, ...)
{
    va_list args;

    fflush(stdout);
    fputs("core-bench: FAILED: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

/* Ticks of the clock the measurements use: the TSC where there is one,
 * nanoseconds otherwise.  The fences keep the timed code from overlapping
 * the untimed code around it; they cost a few tens of cycles per burst. */
static inline uint64_t
bench_ticks(void)
{
#ifdef BENCH_HAVE_TSC
    uint64_t t;

    _mm_lfence();
    t = __rdtsc();
    _mm_lfence();
    return t;
#else
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

static uint64_t
bench_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One of the guest's rings, as the guest sees it (tests/vguest-ring.h, or
 * tests/vguest-packed.h with --packed): each buffer id keeps one buffer for
 * good (a split ring: its descriptor; a packed ring: written into the next
 * descriptor each time it is posted), and the guest passes ids around. */
struct guest_ring {
    struct vg_vq vq;
    struct vgp_vq pq;           /* With --packed. */
    int call_fd;
};

static bool packed;             /* --packed. */

struct guest {
    struct vg_mem mem;          /* One region, at GPA_BASE. */
    uint8_t *hva;               /* Its start, the guest's own view. */
    struct guest_ring tx, rx;

    uint32_t frame_len;         /* Without the virtio-net header. */
    uint32_t tx_stride;         /* Bytes between TX buffers. */
    uint32_t rx_buf_len;        /* Bytes of each RX buffer. */
    uint32_t rx_bufs_per_frame;
    uint64_t tx_buf_ofs, rx_buf_ofs;

    bool watched[RING_SIZE];    /* RX buffer poisoned, to be compared. */
    uint64_t random;            /* xorshift64 state. */

    uint8_t *expect;            /* The frame expected next. */
    uint64_t tx_seq;            /* Sequence number of the next frame. */
    uint64_t rx_seq;            /* Sequence number expected next. */
    uint64_t tx_returned;       /* TX chains back from the switch. */
    uint64_t rx_frames;         /* Frames received. */
    uint64_t rx_compared;       /* Frames compared byte for byte. */
    bool compare_all;           /* Watch every RX buffer made available. */
};

/* A packet of the switch's, with the frame copied out of guest memory. */
struct bench_packet {
    uint8_t *data;
    uint32_t len;
};

struct bench_switch {
    struct vhost_mem *mem;      /* The core's view of guest memory. */
    struct virtq txq;           /* The guest's TX ring: the switch's RX. */
    struct virtq rxq;           /* The guest's RX ring: the switch's TX. */
    struct virtq_stats tx_stats, rx_stats;

    uint8_t *packet_mem;        /* Preallocated packets, one per slot. */
    struct bench_packet *batch;
    int batch_size;             /* Slots in 'batch'. */
    int n_batch;                /* Slots in use. */
    uint32_t packet_room;       /* Frame bytes a slot can take. */

    uint64_t dequeued;          /* Chains virtq_dequeue_burst() took. */
    uint64_t copied;            /* Frames copied into packets. */
    uint64_t enqueued;          /* Frames virtq_enqueue() took. */
    uint64_t failed;            /* Frames virtq_enqueue() refused. */
    uint64_t retries;           /* Retries after EAGAIN. */
    uint64_t overflows;         /* Frames that did not fit a slot. */
};

static uint8_t *
tx_buf(const struct guest *g, uint16_t id)
{
    return g->hva + g->tx_buf_ofs + (uint64_t) id * g->tx_stride;
}

static uint8_t *
rx_buf(const struct guest *g, uint16_t id)
{
    return g->hva + g->rx_buf_ofs + (uint64_t) id * g->rx_buf_len;
}

/* The frame the guest sends, sequence number 0: addresses of two QEMU
 * NICs, the IEEE local experimental EtherType, then a pattern that differs
 * from byte to byte, so that bytes copied to the wrong place show. */
static void
make_frame(uint8_t *frame, uint32_t len)
{
    static const uint8_t eth[14] = {
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02,     /* Destination. */
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01,     /* Source. */
        0x88, 0xb5,
    };

    memcpy(frame, eth, sizeof eth);
    memset(frame + SEQ_OFS, 0, sizeof(uint64_t));
    for (uint32_t i = SEQ_OFS + sizeof(uint64_t); i < len; i++) {
        frame[i] = i * 31 + (i >> 8);
    }
}

/* Makes what the guest has changed in 'r' since the last call visible to
 * the switch. */
static void
guest_publish(struct guest_ring *r)
{
    if (packed) {
        /* Descriptors are the guest's as soon as their flags are; and it
         * asked for no interrupts at all (see guest_ring_init()). */
        return;
    }
    /* A guest busy in NAPI polling keeps its interrupts off.  With
     * EVENT_IDX that is a used_event behind the used index: the device
     * only interrupts when the used index moves past used_event.  Moving
     * it along with what the guest has read keeps it behind across 16-bit
     * wraps, so that no eventfd write ever lands in the measurements. */
    __atomic_store_n(&r->vq.avail->ring[RING_SIZE],
                     (uint16_t) (r->vq.last_used - 1), __ATOMIC_RELAXED);
    vg_vq_publish(&r->vq);
}

/* Sends frame 'tx_seq' again from TX buffer 'id': a real guest writes each
 * frame anew; this one only renews the sequence number. */
static void
guest_post_tx(struct guest *g, uint16_t id)
{
    struct guest_ring *r = &g->tx;

    memcpy(tx_buf(g, id) + HDR_LEN + SEQ_OFS, &g->tx_seq, sizeof g->tx_seq);
    g->tx_seq++;
    if (packed) {
        uint64_t gpa = GPA_BASE + (tx_buf(g, id) - g->hva);
        uint32_t len = HDR_LEN + g->frame_len;
        uint16_t flags = 0;

        if (!vgp_add_id(&r->pq, &g->mem, id, &gpa, &len, &flags, 1, 0)) {
            bench_fatal("TX buffer %"PRIu16" could not be posted", id);
        }
        return;
    }
    vg_vq_post(&r->vq, id);
}

static uint64_t
guest_random(struct guest *g)
{
    g->random ^= g->random << 13;
    g->random ^= g->random >> 7;
    g->random ^= g->random << 17;
    return g->random;
}

static void
guest_post_rx(struct guest *g, uint16_t id)
{
    struct guest_ring *r = &g->rx;

    g->watched[id] = g->compare_all || !(guest_random(g) % VERIFY_EVERY);
    if (g->watched[id]) {
        memset(rx_buf(g, id), POISON, g->rx_buf_len);
    }
    if (packed) {
        uint64_t gpa = GPA_BASE + (rx_buf(g, id) - g->hva);
        uint32_t len = g->rx_buf_len;
        uint16_t flags = VRING_DESC_F_WRITE;

        if (!vgp_add_id(&r->pq, &g->mem, id, &gpa, &len, &flags, 1, 0)) {
            bench_fatal("RX buffer %"PRIu16" could not be posted", id);
        }
        return;
    }
    vg_vq_post(&r->vq, id);
}

/* Reads the used entry at 'idx' of 'r' and checks that it returns a chain
 * the guest made available and has not had back yet. */
static struct vring_used_elem
guest_take_used(struct guest_ring *r, uint16_t idx, const char *ring)
{
    struct vring_used_elem e;

    memcpy(&e, &r->vq.used->ring[idx & RING_MASK], sizeof e);
    if (!vg_vq_take_head(&r->vq, e.id)) {
        bench_fatal("%s used entry %"PRIu16" returns id %"PRIu32", which "
                    "the guest had not made available", ring, idx, e.id);
    }
    return e;
}

/* A packed ring's next used descriptor (vgp_used() checks its id), or
 * false if there is none. */
static bool
guest_take_packed(struct guest_ring *r, struct vring_used_elem *e)
{
    uint16_t id, flags;
    uint32_t len;

    if (!vgp_used(&r->pq, &id, &len, &flags)) {
        return false;
    }
    e->id = id;
    e->len = len;
    return true;
}

static uint16_t
guest_used_idx(const struct guest_ring *r, const char *ring)
{
    uint16_t used_idx = vg_vq_used_idx(&r->vq);

    if ((uint16_t) (used_idx - r->vq.last_used) > RING_SIZE) {
        bench_fatal("%s used index jumped from %"PRIu16" to %"PRIu16,
                    ring, r->vq.last_used, used_idx);
    }
    return used_idx;
}

/* Takes back the TX chains the switch is done with and sends new frames
 * in them, so that the ring is full again. */
static void
guest_poll_tx(struct guest *g)
{
    struct guest_ring *r = &g->tx;
    struct vring_used_elem pe;

    while (packed && guest_take_packed(r, &pe)) {
        if (pe.len) {
            bench_fatal("TX used descriptor has length %"PRIu32", not 0",
                        pe.len);
        }
        g->tx_returned++;
        guest_post_tx(g, pe.id);
    }

    uint16_t used_idx = packed ? 0 : guest_used_idx(r, "TX");
    while (!packed && r->vq.last_used != used_idx) {
        struct vring_used_elem e = guest_take_used(r, r->vq.last_used, "TX");

        /* The device wrote nothing into a TX buffer. */
        if (e.len) {
            bench_fatal("TX used entry %"PRIu16" has length %"PRIu32", "
                        "not 0", r->vq.last_used, e.len);
        }
        r->vq.last_used++;
        g->tx_returned++;
        guest_post_tx(g, e.id);
    }
    guest_publish(r);
}

/* Compares the frame in the 'n' RX buffers of 'ids', holding 'lens' bytes
 * each, with the one expected. */
static void
guest_compare_rx(struct guest *g, const uint16_t ids[], const uint32_t lens[],
                 int n)
{
    uint32_t ofs = 0;

    for (int i = 0; i < n; i++) {
        const uint8_t *p = rx_buf(g, ids[i]);
        uint32_t len = lens[i];

        if (!i) {
            p += HDR_LEN;
            len -= HDR_LEN;
        }
        if (memcmp(p, g->expect + ofs, len)) {
            uint32_t j = 0;

            while (p[j] == g->expect[ofs + j]) {
                j++;
            }
            bench_fatal("RX frame %"PRIu64" differs from what was sent at "
                        "byte %"PRIu32" (buffer %d of %d): 0x%02x, not "
                        "0x%02x", g->rx_seq, ofs + j, i + 1, n, p[j],
                        g->expect[ofs + j]);
        }
        ofs += len;
    }
    g->rx_compared++;
}

/* Receives the frames the switch delivered, checks them and gives their
 * buffers back. */
static void
guest_poll_rx(struct guest *g)
{
    struct guest_ring *r = &g->rx;
    uint16_t used_idx = packed ? 0 : guest_used_idx(r, "RX");
    struct vring_used_elem first;

    while (packed ? guest_take_packed(r, &first)
                  : r->vq.last_used != used_idx) {
        uint16_t ids[RING_SIZE];
        uint32_t lens[RING_SIZE];
        /* (A packed ring shows a burst's used descriptors all at once.) */
        uint16_t left = packed ? RING_SIZE : used_idx - r->vq.last_used;
        uint32_t frame_left = HDR_LEN + g->frame_len;
        struct vring_used_elem e;
        struct virtio_net_hdr hdr;
        uint64_t seq;
        int n;

        /* The first buffer starts with the header, which says how many
         * used entries the frame has.  With no offloads negotiated, all of
         * it must be zero but num_buffers. */
        e = packed ? first : guest_take_used(r, r->vq.last_used, "RX");
        if (e.len < HDR_LEN + SEQ_OFS + sizeof seq) {
            bench_fatal("RX frame %"PRIu64": first buffer holds %"PRIu32" "
                        "bytes", g->rx_seq, e.len);
        }
        memcpy(&hdr, rx_buf(g, e.id), sizeof hdr);
        if (hdr.flags || hdr.gso_type || hdr.hdr_len || hdr.gso_size
            || hdr.csum_start || hdr.csum_offset) {
            bench_fatal("RX frame %"PRIu64": header has offload fields set",
                        g->rx_seq);
        }
        n = hdr.num_buffers;
        if (n != g->rx_bufs_per_frame || n > left) {
            bench_fatal("RX frame %"PRIu64": num_buffers is %d, expected "
                        "%"PRIu32" (%"PRIu16" used entries published)",
                        g->rx_seq, n, g->rx_bufs_per_frame, left);
        }

        /* Each buffer but the last is full. */
        for (int i = 0; i < n; i++) {
            uint32_t want = (frame_left < g->rx_buf_len
                             ? frame_left : g->rx_buf_len);

            if (i && packed) {
                if (!guest_take_packed(r, &e)) {
                    bench_fatal("RX frame %"PRIu64": buffer %d of %d not "
                                "used", g->rx_seq, i + 1, n);
                }
            } else if (i) {
                e = guest_take_used(r, r->vq.last_used + i, "RX");
            }
            if (e.len != want) {
                bench_fatal("RX frame %"PRIu64": buffer %d of %d holds "
                            "%"PRIu32" bytes, expected %"PRIu32,
                            g->rx_seq, i + 1, n, e.len, want);
            }
            ids[i] = e.id;
            lens[i] = e.len;
            frame_left -= want;
        }

        memcpy(&seq, rx_buf(g, ids[0]) + HDR_LEN + SEQ_OFS, sizeof seq);
        if (seq != g->rx_seq) {
            bench_fatal("RX frame %"PRIu64" carries sequence number "
                        "%"PRIu64, g->rx_seq, seq);
        }
        if (g->watched[ids[0]]) {
            memcpy(g->expect + SEQ_OFS, &seq, sizeof seq);
            guest_compare_rx(g, ids, lens, n);
        }

        for (int i = 0; i < n; i++) {
            guest_post_rx(g, ids[i]);
        }
        r->vq.last_used += n;
        g->rx_seq++;
        g->rx_frames++;
    }
    guest_publish(r);
}

static void
guest_ring_init(struct guest *g, struct guest_ring *r, uint64_t desc_ofs,
                uint64_t avail_ofs, uint64_t used_ofs)
{
    if (packed) {
        if (!vgp_init(&r->pq, &g->mem, RING_SIZE, GPA_BASE + desc_ofs,
                      GPA_BASE + avail_ofs, GPA_BASE + used_ofs)) {
            bench_fatal("packed ring outside guest memory");
        }
        /* A guest busy in NAPI polling: no interrupts. */
        vgp_set_event(&r->pq, VRING_PACKED_EVENT_DISABLE, 0, false);
    } else if (!vg_vq_init(&r->vq, &g->mem, RING_SIZE, GPA_BASE + desc_ofs,
                           GPA_BASE + avail_ofs, GPA_BASE + used_ofs)) {
        bench_fatal("out of memory");
    }
    r->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->call_fd < 0) {
        bench_fatal("eventfd: %s", strerror(errno));
    }
}

/* Builds guest memory and the guest's view of both rings, fills the TX
 * ring and stocks the RX ring.  Each descriptor keeps its buffer for good,
 * so that the guest only has to pass ids around. */
static void
guest_init(struct guest *g, uint32_t frame_len, uint32_t rx_buf_len)
{
    int error;

    memset(g, 0, sizeof *g);
    g->random = 0x9e3779b97f4a7c15ull;  /* Any nonzero seed. */
    g->compare_all = true;
    g->frame_len = frame_len;
    g->tx_stride = ROUND_UP(HDR_LEN + frame_len, 64);
    g->rx_buf_len = rx_buf_len;
    g->rx_bufs_per_frame = (HDR_LEN + frame_len + rx_buf_len - 1)
                           / rx_buf_len;
    g->tx_buf_ofs = BUFFERS_OFS;
    g->rx_buf_ofs = ROUND_UP(g->tx_buf_ofs
                             + (uint64_t) RING_SIZE * g->tx_stride, 4096);
    error = vg_mem_init(&g->mem, "core-bench-guest", 1, GPA_BASE,
                        ROUND_UP(g->rx_buf_ofs
                                 + (uint64_t) RING_SIZE * rx_buf_len,
                                 2 << 20));
    if (error) {
        bench_fatal("guest memory: %s", strerror(error));
    }
    g->hva = g->mem.regions[0].hva;

    guest_ring_init(g, &g->tx, TX_DESC_OFS, TX_AVAIL_OFS, TX_USED_OFS);
    guest_ring_init(g, &g->rx, RX_DESC_OFS, RX_AVAIL_OFS, RX_USED_OFS);

    g->expect = malloc(frame_len);
    if (!g->expect) {
        bench_fatal("out of memory");
    }
    make_frame(g->expect, frame_len);

    /* TX: the header (all zeros: no offloads) and the frame in one
     * descriptor, as Linux sends when it can push the header in front of
     * the data. */
    for (int id = 0; id < RING_SIZE; id++) {
        uint8_t *p = tx_buf(g, id);

        memset(p, 0, HDR_LEN);
        make_frame(p + HDR_LEN, frame_len);
        if (!packed) {
            vg_vq_set_desc(&g->tx.vq, id, GPA_BASE + (p - g->hva),
                           HDR_LEN + frame_len, 0, 0);
        }
        guest_post_tx(g, id);
    }
    guest_publish(&g->tx);

    /* RX: one device-writable buffer per descriptor. */
    for (int id = 0; id < RING_SIZE; id++) {
        uint8_t *p = rx_buf(g, id);

        if (!packed) {
            vg_vq_set_desc(&g->rx.vq, id, GPA_BASE + (p - g->hva),
                           rx_buf_len, VRING_DESC_F_WRITE, 0);
        }
        guest_post_rx(g, id);
    }
    guest_publish(&g->rx);
}

/* Copies a frame into the next preallocated packet, as
 * netdev_vhostmq_rxq_recv() copies it into a new dp_packet: for each frame
 * of virtq_dequeue_frames(), and as virtq_dequeue_burst()'s callback. */
static void
bench_packet_from_guest(void *sw_, const struct virtq_piece *pieces, int n,
                        uint32_t len, const struct virtio_net_hdr *hdr)
{
    (void) hdr;
    struct bench_switch *sw = sw_;
    struct bench_packet *packet;
    uint8_t *dst;

    if (sw->n_batch >= sw->batch_size || len > sw->packet_room) {
        sw->overflows++;
        return;
    }
    packet = &sw->batch[sw->n_batch++];
    dst = packet->data;
    if (n == 1) {
        virtq_copy(dst, pieces[0].base, len);
    } else {
        for (int i = 0; i < n; i++) {
            memcpy(dst, pieces[i].base, pieces[i].len);
            dst += pieces[i].len;
        }
    }
    packet->len = len;
    sw->copied++;
}

/* One burst of the switch: receive up to 'max' frames from the guest's TX
 * ring and send them to its RX ring, as netdev_vhostmq_rxq_recv() and
 * netdev_vhostmq_send() do.  Returns the number of chains dequeued.
 *
 * Not inlined: bench/core-bench-callgrind counts the instructions executed
 * inside this function only. */
static int __attribute__((noinline))
bench_switch_burst(struct bench_switch *sw, int max)
{
    int retries = 0;
    int n;

    /* The frames the fast path takes, copied out, then published; any
     * other chain through the general walk. */
    struct virtq_frame in[RING_SIZE];
    bool more;

    sw->n_batch = 0;
    n = virtq_dequeue_frames(&sw->txq, max, in, NULL, &more);
    for (int i = 0; i < n; i++) {
        struct virtq_piece piece = { .base = (uint8_t *) in[i].data,
                                     .len = in[i].len };

        bench_packet_from_guest(sw, &piece, 1, in[i].len, NULL);
    }
    if (more) {
        n += virtq_dequeue_burst(&sw->txq, max - n, bench_packet_from_guest,
                                 sw);
    } else {
        virtq_flush(&sw->txq);
    }
    sw->dequeued += n;

    /* What the frames fit in one call, then the rest one at a time. */
    struct virtq_frame frames[RING_SIZE];
    int done;

    for (int i = 0; i < sw->n_batch; i++) {
        frames[i].data = sw->batch[i].data;
        frames[i].len = sw->batch[i].len;
    }
    done = virtq_enqueue_burst(&sw->rxq, frames, sw->n_batch);
    sw->enqueued += done;
    for (int i = done; i < sw->n_batch; i++) {
        const struct bench_packet *packet = &sw->batch[i];
        int error;

        error = virtq_enqueue(&sw->rxq, packet->data, packet->len);
        while (error == EAGAIN && retries < TX_RETRIES) {
            virtq_flush(&sw->rxq);
            retries++;
            error = virtq_enqueue(&sw->rxq, packet->data, packet->len);
        }
        if (error) {
            sw->failed++;
        } else {
            sw->enqueued++;
        }
    }
    virtq_flush(&sw->rxq);
    sw->retries += retries;
    return n;
}

/* Maps guest memory into the core through a SET_MEM_TABLE message, as a
 * front-end would send it, and starts both rings on it. */
static void
switch_init(struct bench_switch *sw, const struct guest *g, int burst)
{
    enum vhost_user_wire_error wire_error;
    enum vhost_mem_error mem_error;
    enum virtq_init_error vq_error;
    struct vhost_user_msg msg;
    const char *detail = NULL;
    int fds[VG_MEM_MAX_REGIONS];
    uint32_t stride;

    memset(sw, 0, sizeof *sw);
    memset(&msg, 0, sizeof msg);
    msg.request = VHOST_USER_SET_MEM_TABLE;
    msg.flags = VHOST_USER_VERSION;
    msg.size = vg_mem_table(&g->mem, &msg.payload.mem, fds);
    msg.fds[0] = dup(fds[0]);
    msg.n_fds = 1;
    if (msg.fds[0] < 0) {
        bench_fatal("dup: %s", strerror(errno));
    }
    wire_error = vhost_user_validate(&msg, 2, &detail);
    if (wire_error != VHOST_USER_WIRE_OK) {
        bench_fatal("SET_MEM_TABLE refused: %s (%s)",
                    vhost_user_wire_error_name(wire_error),
                    detail ? detail : "");
    }
    mem_error = vhost_mem_from_table(&msg, UINT64_MAX, &sw->mem);
    if (mem_error != VHOST_MEM_OK) {
        bench_fatal("guest memory not mapped: %s",
                    vhost_mem_error_name(mem_error));
    }

    /* Vring 0 is the guest's RX, vring 1 its TX. */
    if (packed) {
        uint64_t features = GUEST_FEATURES | (1ull << VIRTIO_F_RING_PACKED);

        vq_error = virtq_init(&sw->rxq, sw->mem, RING_SIZE,
                              (uintptr_t) g->rx.pq.ring,
                              (uintptr_t) g->rx.pq.driver_event,
                              (uintptr_t) g->rx.pq.device_event,
                              VIRTQ_PACKED_WRAP, features, g->rx.call_fd,
                              &sw->rx_stats);
        if (vq_error == VIRTQ_INIT_OK) {
            vq_error = virtq_init(&sw->txq, sw->mem, RING_SIZE,
                                  (uintptr_t) g->tx.pq.ring,
                                  (uintptr_t) g->tx.pq.driver_event,
                                  (uintptr_t) g->tx.pq.device_event,
                                  VIRTQ_PACKED_WRAP, features,
                                  g->tx.call_fd, &sw->tx_stats);
        }
    } else {
        vq_error = virtq_init(&sw->rxq, sw->mem, RING_SIZE,
                              (uintptr_t) g->rx.vq.desc,
                              (uintptr_t) g->rx.vq.avail,
                              (uintptr_t) g->rx.vq.used, 0, GUEST_FEATURES,
                              g->rx.call_fd, &sw->rx_stats);
        if (vq_error == VIRTQ_INIT_OK) {
            vq_error = virtq_init(&sw->txq, sw->mem, RING_SIZE,
                                  (uintptr_t) g->tx.vq.desc,
                                  (uintptr_t) g->tx.vq.avail,
                                  (uintptr_t) g->tx.vq.used, 0,
                                  GUEST_FEATURES, g->tx.call_fd,
                                  &sw->tx_stats);
        }
    }
    if (vq_error != VIRTQ_INIT_OK) {
        bench_fatal("virtq_init: %s", virtq_init_error_name(vq_error));
    }

    /* Packets as OVS lays them out: headroom, then the frame, in a buffer
     * just big enough.  One allocation, touched now, so that page faults
     * stay out of the measurements. */
    sw->batch_size = burst;
    sw->packet_room = g->frame_len;
    stride = ROUND_UP(PACKET_HEADROOM + g->frame_len, 64);
    sw->batch = calloc(burst, sizeof *sw->batch);
    if (!sw->batch
        || posix_memalign((void **) &sw->packet_mem, 64,
                          (size_t) burst * stride)) {
        bench_fatal("out of memory");
    }
    memset(sw->packet_mem, 0, (size_t) burst * stride);
    for (int i = 0; i < burst; i++) {
        sw->batch[i].data = sw->packet_mem + (size_t) i * stride
                            + PACKET_HEADROOM;
    }
}

/* Per-packet cost of each burst, in 1/HIST_SCALE ticks, weighted by the
 * burst's packets.  The machines this runs on are often shared: a burst
 * during which the thread was preempted costs thousands of times the
 * others and moves the mean, not the median. */
#define HIST_SCALE 4
#define HIST_BINS 65536         /* Up to 16384 ticks per packet. */

struct bench_timing {
    uint64_t switch_ticks;      /* In bench_switch_burst() only. */
    uint64_t loop_ticks;        /* The whole loop, guest included. */
    uint64_t loop_ns;
    uint64_t hist[HIST_BINS];   /* Last bin: that much or more. */
};

/* The median of 't''s per-packet costs, in ticks. */
static double
bench_median(const struct bench_timing *t)
{
    uint64_t total = 0, sum = 0;
    int i;

    for (i = 0; i < HIST_BINS; i++) {
        total += t->hist[i];
    }
    for (i = 0; i < HIST_BINS - 1; i++) {
        sum += t->hist[i];
        if (2 * sum >= total) {
            break;
        }
    }
    return (i + 0.5) / HIST_SCALE;
}

/* Forwards 'packets' frames, 'burst' at a time, guest and switch taking
 * turns, and adds the time taken to 't'. */
static void
bench_run(struct guest *g, struct bench_switch *sw, uint64_t packets,
          int burst, struct bench_timing *t)
{
    uint64_t start_ns = bench_ns();
    uint64_t start = bench_ticks();
    uint64_t switch_ticks = 0;
    uint64_t done = 0;

    while (done < packets) {
        int max = packets - done < burst ? packets - done : burst;
        uint64_t t0, t1;
        int n;

        guest_poll_tx(g);
        guest_poll_rx(g);

        t0 = bench_ticks();
        n = bench_switch_burst(sw, max);
        t1 = bench_ticks();
        switch_ticks += t1 - t0;
        if (n > 0) {
            uint64_t bin = (t1 - t0) * HIST_SCALE / n;

            t->hist[bin < HIST_BINS ? bin : HIST_BINS - 1] += n;
        }

        /* The guest keeps its TX ring full: a short burst means the data
         * path lost track of the ring. */
        if (n != max) {
            bench_fatal("burst took %d frames of the %d available", n, max);
        }
        done += n;
    }
    t->loop_ticks += bench_ticks() - start;
    t->loop_ns += bench_ns() - start_ns;
    t->switch_ticks += switch_ticks;

    /* Take back what the last burst left. */
    guest_poll_tx(g);
    guest_poll_rx(g);
}

static void
check_stats(const struct virtq_stats *s, const char *ring, uint64_t packets,
            uint64_t bytes)
{
    if (s->packets != packets || s->bytes != bytes) {
        bench_fatal("%s ring counters: %"PRIu64" packets, %"PRIu64" bytes; "
                    "expected %"PRIu64", %"PRIu64, ring, s->packets,
                    s->bytes, packets, bytes);
    }
    if (s->bad_chain || s->too_long || s->broken || s->disabled_discards) {
        bench_fatal("%s ring counters: %"PRIu64" bad chains, %"PRIu64" too "
                    "long, %"PRIu64" broken, %"PRIu64" discarded", ring,
                    s->bad_chain, s->too_long, s->broken,
                    s->disabled_discards);
    }
    if (s->notifications) {
        bench_fatal("%s ring: %"PRIu64" interrupts, though the guest "
                    "asked for none", ring, s->notifications);
    }
}

static void
check_ring_full(const struct guest_ring *r, const char *ring)
{
    for (int id = 0; id < RING_SIZE; id++) {
        if (packed ? !r->pq.out[id] : !r->vq.posted[id]) {
            bench_fatal("%s buffer %d never came back", ring, id);
        }
    }
}

/* Checks that every frame sent went through once, in order, and that both
 * sides agree on it. */
static void
check_counts(const struct guest *g, const struct bench_switch *sw,
             uint64_t total)
{
    uint64_t n_bufs = total * g->rx_bufs_per_frame;
    uint64_t events;

    if (sw->dequeued != total || sw->copied != total
        || sw->enqueued != total || sw->failed || sw->retries
        || sw->overflows) {
        bench_fatal("switch: %"PRIu64" dequeued, %"PRIu64" copied, "
                    "%"PRIu64" enqueued, %"PRIu64" failed, %"PRIu64" "
                    "retries, %"PRIu64" too big; %"PRIu64" sent",
                    sw->dequeued, sw->copied, sw->enqueued, sw->failed,
                    sw->retries, sw->overflows, total);
    }
    if (g->tx_returned != total || g->rx_frames != total
        || g->rx_seq != total) {
        bench_fatal("guest: %"PRIu64" TX chains returned, %"PRIu64" frames "
                    "received; %"PRIu64" sent", g->tx_returned,
                    g->rx_frames, total);
    }
    if (packed) {
        /* Positions, with the lap's wrap counter in bit 15 (the first lap
         * has 1). */
        uint16_t rx_pos = n_bufs % RING_SIZE
                          | (n_bufs / RING_SIZE % 2 ? 0 : VIRTQ_PACKED_WRAP);
        uint16_t tx_pos = total % RING_SIZE
                          | (total / RING_SIZE % 2 ? 0 : VIRTQ_PACKED_WRAP);

        if (virtq_last_avail(&sw->rxq) != rx_pos
            || virtq_last_avail(&sw->txq) != tx_pos
            || g->rx.pq.next_used != n_bufs % RING_SIZE
            || g->tx.pq.next_used != total % RING_SIZE) {
            bench_fatal("ring positions out of step");
        }
    } else if ((uint16_t) (g->rx.vq.last_used) != (uint16_t) n_bufs
               || virtq_last_avail(&sw->rxq) != (uint16_t) n_bufs
               || virtq_last_avail(&sw->txq) != (uint16_t) total) {
        bench_fatal("ring indexes out of step");
    }
    check_stats(&sw->tx_stats, "TX", total, total * g->frame_len);
    check_stats(&sw->rx_stats, "RX", total, total * g->frame_len);
    check_ring_full(&g->tx, "TX");
    check_ring_full(&g->rx, "RX");

    /* Nothing written to the call fds either. */
    if (read(g->tx.call_fd, &events, sizeof events) == sizeof events
        || read(g->rx.call_fd, &events, sizeof events) == sizeof events) {
        bench_fatal("the guest was interrupted, though it asked not to be");
    }
}

static void
usage(void)
{
    printf("usage: core-bench [OPTION]...\n"
           "Forwards frames from a guest's TX ring to its RX ring through\n"
           "the core's virtq data path and prints its cost per packet.\n"
           "\n"
           "  --packets N   frames to time (default 2000000)\n"
           "  --size N      frame size in bytes, %d..%d (default 64)\n"
           "  --burst N     frames per burst, 1..%d (default 32)\n"
           "  --warmup N    frames forwarded untimed first (default 16384)\n"
           "  --rx-buf N    bytes of each guest RX buffer, %d..%d (default\n"
           "                %d, or enough for one frame if that is more)\n"
           "  --packed      packed rings (VIRTIO_F_RING_PACKED) instead of\n"
           "                split ones\n"
           "  --help        print this and exit\n",
           MIN_FRAME, MAX_FRAME, RING_SIZE, MIN_RX_BUF, MAX_RX_BUF,
           RX_BUF_DEFAULT);
}

static uint64_t
parse_number(const char *option, const char *s, uint64_t min, uint64_t max)
{
    unsigned long long int value;
    char *end;

    errno = 0;
    value = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || value < min
        || value > max) {
        fprintf(stderr, "core-bench: --%s wants a number from %"PRIu64" to "
                "%"PRIu64", not \"%s\"\n", option, min, max, s);
        exit(EXIT_FAILURE);
    }
    return value;
}

int
main(int argc, char *argv[])
{
    enum { OPT_PACKETS = 256, OPT_SIZE, OPT_BURST, OPT_WARMUP, OPT_RX_BUF,
           OPT_PACKED, OPT_HELP };
    static const struct option options[] = {
        { "packets", required_argument, NULL, OPT_PACKETS },
        { "size", required_argument, NULL, OPT_SIZE },
        { "burst", required_argument, NULL, OPT_BURST },
        { "warmup", required_argument, NULL, OPT_WARMUP },
        { "rx-buf", required_argument, NULL, OPT_RX_BUF },
        { "packed", no_argument, NULL, OPT_PACKED },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    uint64_t packets = 2000000;
    uint64_t warmup = 16384;
    uint32_t size = 64;
    uint32_t rx_buf_len = 0;
    int burst = 32;
    static struct bench_timing t;
    struct bench_switch sw;
    struct guest g;
    double ns_per_tick;
    int c;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_PACKETS:
            packets = parse_number("packets", optarg, 1, UINT64_MAX / 2);
            break;
        case OPT_SIZE:
            size = parse_number("size", optarg, MIN_FRAME, MAX_FRAME);
            break;
        case OPT_BURST:
            burst = parse_number("burst", optarg, 1, RING_SIZE);
            break;
        case OPT_WARMUP:
            warmup = parse_number("warmup", optarg, 0, UINT64_MAX / 2);
            break;
        case OPT_RX_BUF:
            rx_buf_len = parse_number("rx-buf", optarg, MIN_RX_BUF,
                                      MAX_RX_BUF);
            break;
        case OPT_PACKED:
            packed = true;
            break;
        case OPT_HELP:
            usage();
            return EXIT_SUCCESS;
        default:
            fprintf(stderr, "core-bench: try --help\n");
            return EXIT_FAILURE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "core-bench: unexpected argument \"%s\"\n",
                argv[optind]);
        return EXIT_FAILURE;
    }

    /* By default every frame fits one RX buffer, as with a guest whose
     * buffers are sized for its MTU; a smaller --rx-buf spreads frames over
     * several (mergeable RX buffers). */
    if (!rx_buf_len) {
        rx_buf_len = (HDR_LEN + size <= RX_BUF_DEFAULT
                      ? RX_BUF_DEFAULT : ROUND_UP(HDR_LEN + size, 1024));
    }
    /* The guest restocks between bursts only, so a burst must fit what
     * the ring holds. */
    if ((uint64_t) burst * ((HDR_LEN + size + rx_buf_len - 1) / rx_buf_len)
        > RING_SIZE) {
        fprintf(stderr, "core-bench: %d frames of %"PRIu32" bytes need more "
                "than the %d RX buffers of %"PRIu32" bytes\n", burst, size,
                RING_SIZE, rx_buf_len);
        return EXIT_FAILURE;
    }

    guest_init(&g, size, rx_buf_len);
    switch_init(&sw, &g, burst);
    memset(&t, 0, sizeof t);

    /* Warm-up: caches, branch predictors and every buffer touched once,
     * each frame compared in full (guest_init() set compare_all). */
    bench_run(&g, &sw, warmup, burst, &t);
    g.compare_all = false;

    memset(&t, 0, sizeof t);
    BENCH_START_INSTRUMENTATION();
    bench_run(&g, &sw, packets, burst, &t);
    BENCH_STOP_INSTRUMENTATION();

    check_counts(&g, &sw, warmup + packets);
    if (!g.rx_compared) {
        bench_fatal("no frame was compared");
    }

#ifdef BENCH_HAVE_TSC
    ns_per_tick = t.loop_ticks ? (double) t.loop_ns / t.loop_ticks : 0;
#else
    ns_per_tick = 1.0;
#endif
    printf("core-bench: size=%"PRIu32" burst=%d packets=%"PRIu64" "
           "cycles_per_packet=%.1f ns_per_packet=%.1f "
           "median_cycles_per_packet=%.1f loop_cycles_per_packet=%.1f "
           "rx_buf=%"PRIu32" clock=%s compared=%"PRIu64" rings=%s\n",
           size, burst, packets, (double) t.switch_ticks / packets,
           t.switch_ticks * ns_per_tick / packets, bench_median(&t),
           (double) t.loop_ticks / packets, rx_buf_len,
#ifdef BENCH_HAVE_TSC
           "tsc",
#else
           "ns",
#endif
           g.rx_compared, packed ? "packed" : "split");

    vhost_mem_free(sw.mem);
    vg_vq_destroy(&g.tx.vq);
    vg_vq_destroy(&g.rx.vq);
    vg_mem_destroy(&g.mem);
    close(g.tx.call_fd);
    close(g.rx.call_fd);
    free(g.expect);
    free(sw.packet_mem);
    free(sw.batch);
    return EXIT_SUCCESS;
}
