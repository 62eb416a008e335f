/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of the packed virtqueue data path (virtq-packed.c) through
 * virtq.h's interface: a guest driver (vguest-packed.h, this test) lays out
 * a packed ring in memfd memory that the core maps itself. */

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "group-frames.h"
#include "unit.h"
#include "vguest-packed.h"
#include "vguest-ring.h"
#include "vhost-mem.h"
#include "virtq.h"

#define REGION_SIZE (1 << 20)
#define GPA0 0x40000000ull
#define RING_GPA (GPA0 + 0xc0000)
#define DRIVER_GPA (GPA0 + 0xd0000)
#define DEVICE_GPA (GPA0 + 0xd0010)
#define BUF_GPA (GPA0 + 0x10000)        /* Buffers from here, 2 kB each. */
#define BUF(I) (BUF_GPA + (uint64_t) (I) * 2048)

#define PACKED ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_PACKED))
#define PACKED_MRG (PACKED | (1ull << VIRTIO_NET_F_MRG_RXBUF))
#define PACKED_IND (PACKED | (1ull << VIRTIO_RING_F_INDIRECT_DESC))
#define PACKED_EVIDX (PACKED | (1ull << VIRTIO_RING_F_EVENT_IDX))

struct pguest {
    struct vg_mem gm;
    struct vhost_mem *mem;
    struct vgp_vq q;
    struct virtq vq;
    struct virtq_stats stats;
    int call_fd;
};

static uintptr_t
qva(struct pguest *g, uint64_t gpa)
{
    return (uintptr_t) vg_mem_ptr(&g->gm, gpa);
}

/* A packed ring of 'size' entries, resuming at 'base' (position and wrap
 * counter in bit 15; the guest's side starts from there too). */
static void
pg_start(struct pguest *g, uint64_t features, uint16_t size, uint16_t base)
{
    CHECK(vgp_init(&g->q, &g->gm, size, RING_GPA, DRIVER_GPA, DEVICE_GPA));
    g->q.next_avail = g->q.next_used = base & 0x7fff;
    g->q.avail_wrap = g->q.used_wrap = base >> 15;
    if (!g->q.avail_wrap) {
        /* Descriptors of zeros look used in a lap whose wrap counter is
         * 0: make them look as the previous lap left them. */
        for (int i = 0; i < size; i++) {
            g->q.ring[i].flags = (VRING_PACKED_DESC_F_AVAIL
                                  | VRING_PACKED_DESC_F_USED);
        }
    }
    memset(&g->stats, 0, sizeof g->stats);
    CHECK_EQ(virtq_init(&g->vq, g->mem, size, qva(g, RING_GPA),
                        qva(g, DRIVER_GPA), qva(g, DEVICE_GPA), base,
                        features, g->call_fd, &g->stats), VIRTQ_INIT_OK);
}

static void
pg_setup(struct pguest *g, uint64_t features, uint16_t size)
{
    struct vhost_user_msg msg;
    int fds[VG_MEM_MAX_REGIONS];

    memset(g, 0, sizeof *g);
    memset(&msg, 0, sizeof msg);
    CHECK_EQ(vg_mem_init(&g->gm, "test-packed", 2, GPA0, REGION_SIZE), 0);
    msg.request = VHOST_USER_SET_MEM_TABLE;
    msg.flags = VHOST_USER_VERSION;
    msg.size = vg_mem_table(&g->gm, &msg.payload.mem, fds);
    for (int i = 0; i < 2; i++) {
        msg.fds[i] = dup(fds[i]);
    }
    msg.n_fds = 2;
    CHECK_EQ(vhost_user_validate(&msg, 8, NULL), VHOST_USER_WIRE_OK);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &g->mem),
             VHOST_MEM_OK);
    g->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pg_start(g, features, size, 0x8000);
}

static void
pg_teardown(struct pguest *g)
{
    vhost_mem_free(g->mem);
    vg_mem_destroy(&g->gm);
    close(g->call_fd);
}

static uint64_t
pg_notifications(struct pguest *g)
{
    uint64_t n = 0;

    if (read(g->call_fd, &n, sizeof n) != sizeof n) {
        n = 0;
    }
    return n;
}

/* A 12-byte header of zeros and 'len' bytes of pattern at 'gpa'. */
static void
pg_put_frame(struct pguest *g, uint64_t gpa, uint32_t len, uint8_t seed)
{
    uint8_t *p = vg_mem_ptr(&g->gm, gpa);

    memset(p, 0, 12);
    for (uint32_t i = 0; i < len; i++) {
        p[12 + i] = seed + i;
    }
}

static bool
pattern_ok(const uint8_t *data, uint32_t len, uint8_t seed)
{
    for (uint32_t i = 0; i < len; i++) {
        if (data[i] != (uint8_t) (seed + i)) {
            return false;
        }
    }
    return true;
}

/* What virtq_dequeue_burst() hands out. */
struct psink {
    int n;
    uint32_t len[16];
    uint8_t data[16][4096];
};

static void
psink_cb(void *aux, const struct virtq_piece *pieces, int n, uint32_t len,
         const struct virtio_net_hdr *hdr)
{
    struct psink *s = aux;
    uint32_t off = 0;

    (void) hdr;
    CHECK(s->n < 16);
    if (s->n >= 16) {
        return;
    }
    for (int i = 0; i < n; i++) {
        if (off + pieces[i].len <= sizeof s->data[0]) {
            memcpy(s->data[s->n] + off, pieces[i].base, pieces[i].len);
        }
        off += pieces[i].len;
    }
    CHECK_EQ(off, len);
    s->len[s->n++] = len;
}

static void
test_init_errors(void)
{
    struct pguest g;
    struct virtq vq;

    pg_setup(&g, PACKED, 16);
    /* Any size up to 32768: not only powers of 2. */
    CHECK_EQ(virtq_init(&vq, g.mem, 10, qva(&g, RING_GPA),
                        qva(&g, DRIVER_GPA), qva(&g, DEVICE_GPA), 0x8000,
                        PACKED, -1, &g.stats), VIRTQ_INIT_OK);
    CHECK_EQ(virtq_init(&vq, g.mem, 0, qva(&g, RING_GPA),
                        qva(&g, DRIVER_GPA), qva(&g, DEVICE_GPA), 0x8000,
                        PACKED, -1, &g.stats), VIRTQ_INIT_BAD_SIZE);
    CHECK_EQ(virtq_init(&vq, g.mem, 32769, qva(&g, RING_GPA),
                        qva(&g, DRIVER_GPA), qva(&g, DEVICE_GPA), 0x8000,
                        PACKED, -1, &g.stats), VIRTQ_INIT_BAD_SIZE);
    /* The ring must be in guest memory, all of it. */
    CHECK_EQ(virtq_init(&vq, g.mem, 16, qva(&g, GPA0 + REGION_SIZE)
                        + REGION_SIZE - 8 * 16, qva(&g, DRIVER_GPA),
                        qva(&g, DEVICE_GPA), 0x8000, PACKED, -1, &g.stats),
             VIRTQ_INIT_BAD_ADDR);
    CHECK_EQ(virtq_init(&vq, g.mem, 16, qva(&g, RING_GPA), 12345,
                        qva(&g, DEVICE_GPA), 0x8000, PACKED, -1, &g.stats),
             VIRTQ_INIT_BAD_ADDR);
    /* Aligned: the ring to 16, the event structures to 4. */
    CHECK_EQ(virtq_init(&vq, g.mem, 16, qva(&g, RING_GPA) + 8,
                        qva(&g, DRIVER_GPA), qva(&g, DEVICE_GPA), 0x8000,
                        PACKED, -1, &g.stats), VIRTQ_INIT_MISALIGNED);
    CHECK_EQ(virtq_init(&vq, g.mem, 16, qva(&g, RING_GPA),
                        qva(&g, DRIVER_GPA) + 2, qva(&g, DEVICE_GPA), 0x8000,
                        PACKED, -1, &g.stats), VIRTQ_INIT_MISALIGNED);
    /* A base position beyond the ring. */
    CHECK_EQ(virtq_init(&vq, g.mem, 16, qva(&g, RING_GPA),
                        qva(&g, DRIVER_GPA), qva(&g, DEVICE_GPA), 0x8000 | 16,
                        PACKED, -1, &g.stats), VIRTQ_INIT_BAD_BASE);
    CHECK(strcmp(virtq_init_error_name(VIRTQ_INIT_BAD_BASE), "unknown"));
    /* Packed without VERSION_1 (no real driver does that): still virtio
     * 1.x's 12-byte header, which the packed data path writes. */
    CHECK_EQ(virtq_init(&vq, g.mem, 16, qva(&g, RING_GPA),
                        qva(&g, DRIVER_GPA), qva(&g, DEVICE_GPA), 0x8000,
                        1ull << VIRTIO_F_RING_PACKED, -1, &g.stats),
             VIRTQ_INIT_OK);
    CHECK_EQ(vq.hdr_len, 12);
    /* The switch asks for no kicks: it polls. */
    CHECK_EQ(g.q.device_event->flags, VRING_PACKED_EVENT_DISABLE);
    pg_teardown(&g);
}

static void
test_dequeue_simple(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED, 16);
    CHECK(virtq_never_filled(&g.vq));
    pg_put_frame(&g, BUF(0), 100, 7);
    CHECK_EQ(vgp_add1(&g.q, &g.gm, BUF(0), 112, 0), 0);
    CHECK(!virtq_never_filled(&g.vq));
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.len[0], 100);
    CHECK(pattern_ok(s.data[0], 100, 7));
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, 0);
    CHECK_EQ(len, 0);
    CHECK(!(flags & VRING_DESC_F_WRITE));
    CHECK(!vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(g.stats.packets, 1);
    CHECK_EQ(g.stats.bytes, 100);
    CHECK_EQ(pg_notifications(&g), 1);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 0);
    /* Positions carry the wrap counter in bit 15. */
    CHECK_EQ(virtq_last_avail(&g.vq), 0x8000 | 1);
    CHECK_EQ(virtq_guest_used_idx(&g.vq), 0x8000 | 1);
    pg_teardown(&g);
}

/* IN_ORDER: a burst (one chain of two descriptors among its frames) goes
 * back as one used descriptor, at the burst's first position, with its
 * last chain's buffer id; the descriptors after it stay as the driver made
 * them.  The next burst's used descriptor is where its chain was. */
static void
test_dequeue_in_order(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint16_t fl[2] = { 0, 0 };
    uint16_t used = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
    int ids[4];

    pg_setup(&g, PACKED | (1ull << VIRTIO_F_IN_ORDER), 16);
    CHECK(g.vq.in_order);
    pg_put_frame(&g, BUF(0), 100, 1);
    ids[0] = vgp_add1(&g.q, &g.gm, BUF(0), 112, 0);
    pg_put_frame(&g, BUF(1), 100, 2);
    uint64_t gpas[2] = { BUF(1), BUF(1) + 12 };
    uint32_t lens[2] = { 12, 100 };
    ids[1] = vgp_add(&g.q, &g.gm, gpas, lens, fl, 2, 0);
    pg_put_frame(&g, BUF(2), 100, 3);
    ids[2] = vgp_add1(&g.q, &g.gm, BUF(2), 112, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 3);
    CHECK_EQ(s.n, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(s.len[i], 100);
        CHECK(pattern_ok(s.data[i], 100, i + 1));
    }
    /* Position 0: used, the last chain's id; 1 to 3 still available. */
    CHECK_EQ(g.q.ring[0].flags & used, used);
    CHECK_EQ(g.q.ring[0].id, ids[2]);
    CHECK_EQ(g.q.ring[0].len, 0);
    for (int i = 1; i < 4; i++) {
        CHECK_EQ(g.q.ring[i].flags & used, VRING_PACKED_DESC_F_AVAIL);
    }
    CHECK_EQ(virtq_last_avail(&g.vq), 0x8000 | 4);
    CHECK_EQ(virtq_guest_used_idx(&g.vq), 0x8000 | 4);
    CHECK_EQ(pg_notifications(&g), 1);

    /* The next burst: its used descriptor at position 4. */
    pg_put_frame(&g, BUF(3), 100, 4);
    ids[3] = vgp_add1(&g.q, &g.gm, BUF(3), 112, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
    CHECK_EQ(g.q.ring[4].flags & used, used);
    CHECK_EQ(g.q.ring[4].id, ids[3]);
    CHECK_EQ(virtq_guest_used_idx(&g.vq), 0x8000 | 5);
    CHECK_EQ(g.stats.packets, 4);
    pg_teardown(&g);
}

/* Chains of several descriptors, the buffer id in the last; indirect
 * tables; and the used descriptor of each chain where its first was, the
 * next one a chain's length further on. */
static void
test_dequeue_chains_and_indirect(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED_IND, 16);
    pg_put_frame(&g, BUF(0), 300, 1);
    /* Header alone, then the frame in two pieces, one in each region. */
    uint64_t gpas[3] = { BUF(0), BUF(0) + 12, GPA0 + REGION_SIZE };
    uint32_t lens[3] = { 12, 200, 100 };
    uint16_t fl[3] = { 0, 0, 0 };
    memcpy(vg_mem_ptr(&g.gm, GPA0 + REGION_SIZE),
           vg_mem_ptr(&g.gm, BUF(0) + 12 + 200), 100);
    int a = vgp_add(&g.q, &g.gm, gpas, lens, fl, 3, 0);
    pg_put_frame(&g, BUF(2), 500, 2);
    uint64_t tg[2] = { BUF(2), BUF(2) + 112 };
    uint32_t tl[2] = { 112, 400 };
    int b = vgp_add(&g.q, &g.gm, tg, tl, fl, 2, GPA0 + 0xe0000);
    pg_put_frame(&g, BUF(4), 60, 3);
    int c = vgp_add1(&g.q, &g.gm, BUF(4), 72, 0);

    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 3);
    CHECK_EQ(s.n, 3);
    CHECK_EQ(s.len[0], 300);
    CHECK(pattern_ok(s.data[0], 300, 1));
    CHECK_EQ(s.len[1], 500);
    CHECK(pattern_ok(s.data[1], 500, 2));
    CHECK_EQ(s.len[2], 60);
    CHECK(pattern_ok(s.data[2], 60, 3));
    /* Used at positions 0, 3 and 4 (vgp_used() checks the skips). */
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, a);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, b);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, c);
    CHECK_EQ(g.q.next_used, 5);
    CHECK_EQ(virtq_last_avail(&g.vq), 0x8000 | 5);
    CHECK_EQ(g.stats.bad_chain, 0);
    pg_teardown(&g);
}

/* Many laps of a ring whose size is not a power of 2, frames both ways in
 * chains of 1 to 3 descriptors: positions and wrap counters stay in step
 * with the driver's. */
static void
test_wrap_laps(void)
{
    struct pguest tx, rx;
    uint8_t frame[3000];
    unsigned int seed = 7;

    pg_setup(&tx, PACKED, 10);
    pg_setup(&rx, PACKED_MRG, 10);
    for (int round = 0; round < 200; round++) {
        struct psink s = { 0 };
        int n_descs = 1 + rand_r(&seed) % 3;
        uint32_t flen = 60 + rand_r(&seed) % 1400;
        uint64_t gpas[3];
        uint32_t lens[3];
        uint16_t fl[3] = { 0, 0, 0 };
        uint16_t id, flags;
        uint32_t len;

        /* TX: the frame split over n_descs descriptors. */
        pg_put_frame(&tx, BUF(0), flen, round);
        uint32_t total = flen + 12, off = 0;
        for (int i = 0; i < n_descs; i++) {
            uint32_t piece = i < n_descs - 1 ? total / n_descs
                                             : total - off;
            gpas[i] = BUF(0) + off;
            lens[i] = piece;
            off += piece;
        }
        CHECK(vgp_add(&tx.q, &tx.gm, gpas, lens, fl, n_descs, 0) >= 0);
        CHECK_EQ(virtq_dequeue_burst(&tx.vq, 32, psink_cb, &s), 1);
        CHECK_EQ(s.len[0], flen);
        CHECK(pattern_ok(s.data[0], flen, round));
        CHECK(vgp_used(&tx.q, &id, &len, &flags));

        /* RX: buffers of 1 to 3 descriptors of 512 bytes, as many as the
         * frame needs; it arrives in one or more of them. */
        for (int i = 0; i < n_descs; i++) {
            gpas[i] = BUF(4) + i * 512;
            lens[i] = 512;
            fl[i] = VRING_DESC_F_WRITE;
        }
        int bufs = 0;
        while (bufs * n_descs * 512 < flen + 12) {
            for (int i = 0; i < n_descs; i++) {
                gpas[i] = BUF(4 + bufs * 2) + i * 512;
            }
            CHECK(vgp_add(&rx.q, &rx.gm, gpas, lens, fl, n_descs, 0) >= 0);
            bufs++;
        }
        memcpy(frame, s.data[0], flen);
        CHECK_EQ(virtq_enqueue(&rx.vq, frame, flen), 0);
        virtq_flush(&rx.vq);
        for (int b = 0; b < bufs; b++) {
            CHECK(vgp_used(&rx.q, &id, &len, &flags));
            CHECK(flags & VRING_DESC_F_WRITE);
            if (b == 0) {
                const struct virtio_net_hdr *h = (const void *)
                    vg_mem_ptr(&rx.gm, BUF(4));
                CHECK_EQ(h->num_buffers, bufs);
            }
        }
        CHECK(!vgp_used(&rx.q, &id, &len, &flags));
        CHECK_EQ(rx.q.n_free, 10);
        CHECK_EQ(tx.q.n_free, 10);
        CHECK_EQ(virtq_last_avail(&tx.vq),
                 tx.q.next_avail | (tx.q.avail_wrap ? 0x8000 : 0));
        CHECK_EQ(virtq_last_avail(&rx.vq),
                 rx.q.next_avail | (rx.q.avail_wrap ? 0x8000 : 0));
    }
    CHECK_EQ(tx.stats.packets, 200);
    CHECK_EQ(rx.stats.packets, 200);
    CHECK_EQ(tx.stats.bad_chain + rx.stats.bad_chain, 0);
    pg_teardown(&tx);
    pg_teardown(&rx);
}

/* A frame in several receive buffers: the guest sees none of them used
 * before the flush, and then all at once, the first one last written. */
static void
test_enqueue_mergeable(void)
{
    struct pguest g;
    uint8_t frame[3000];
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED_MRG, 16);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(vgp_add1(&g.q, &g.gm, BUF(i), 1024, VRING_DESC_F_WRITE),
                 i);
    }
    for (uint32_t i = 0; i < sizeof frame; i++) {
        frame[i] = 9 + i;
    }
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    CHECK(!vgp_used(&g.q, &id, &len, &flags));
    virtq_flush(&g.vq);
    uint32_t want[3] = { 1024, 1024, 3012 - 2048 };
    for (int i = 0; i < 3; i++) {
        CHECK(vgp_used(&g.q, &id, &len, &flags));
        CHECK_EQ(id, i);
        CHECK_EQ(len, want[i]);
    }
    CHECK(!vgp_used(&g.q, &id, &len, &flags));
    const struct virtio_net_hdr *h = (const void *) vg_mem_ptr(&g.gm, BUF(0));
    CHECK_EQ(h->num_buffers, 3);
    CHECK(pattern_ok(vg_mem_ptr(&g.gm, BUF(0)) + 12, 1012, 9));
    CHECK(pattern_ok(vg_mem_ptr(&g.gm, BUF(1)), 1024, (uint8_t) (9 + 1012)));
    CHECK(pattern_ok(vg_mem_ptr(&g.gm, BUF(2)), 964, (uint8_t) (9 + 2036)));
    CHECK_EQ(g.stats.packets, 1);
    pg_teardown(&g);
}

/* Too little room: without MRG_RXBUF a buffer too small drops the frame
 * and keeps the buffer; with it, too few buffers take nothing until the
 * guest posts more. */
static void
test_enqueue_no_room(void)
{
    struct pguest g;
    uint8_t frame[1500] = { 0 };
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED, 16);
    CHECK_EQ(vgp_add1(&g.q, &g.gm, BUF(0), 1000, VRING_DESC_F_WRITE), 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 1500), EMSGSIZE);
    CHECK_EQ(g.stats.too_long, 1);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 1500), EMSGSIZE);
    CHECK_EQ(g.stats.too_long, 2);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 900), 0);
    virtq_flush(&g.vq);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(len, 912);
    pg_teardown(&g);

    pg_setup(&g, PACKED_MRG, 16);
    CHECK_EQ(vgp_add1(&g.q, &g.gm, BUF(0), 1000, VRING_DESC_F_WRITE), 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 1500), EAGAIN);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 1500), EAGAIN);
    virtq_flush(&g.vq);
    CHECK(!vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(g.stats.too_long, 0);
    CHECK_EQ(vgp_add1(&g.q, &g.gm, BUF(1), 1000, VRING_DESC_F_WRITE), 1);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 1500), 0);
    virtq_flush(&g.vq);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(len, 1000);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(len, 512);
    pg_teardown(&g);
}

/* Chains that lie: each is dropped, counted, and given back (the guest
 * gets its id, at the right place), and the good frame after it goes
 * through. */
static void
test_dequeue_bad_chains(void)
{
    static const struct {
        const char *name;
        uint64_t features;
        int n;
        uint64_t gpa[3];
        uint32_t len[3];
        uint16_t flags[3];
        bool indirect;
        enum virtq_error error;
    } cases[] = {
        { "outside memory", PACKED, 1, { GPA0 + 2 * REGION_SIZE },
          { 100 }, { 0 }, false, VIRTQ_ERR_ADDR },
        { "crosses the end of memory", PACKED, 1,
          { GPA0 + 2 * REGION_SIZE - 50 }, { 100 }, { 0 }, false,
          VIRTQ_ERR_ADDR },
        { "writable buffer in a TX chain", PACKED, 2, { BUF(0), BUF(1) },
          { 12, 100 }, { 0, VRING_DESC_F_WRITE }, false,
          VIRTQ_ERR_DIRECTION },
        { "indirect not negotiated", PACKED, 1, { BUF(0) }, { 112 }, { 0 },
          true, VIRTQ_ERR_INDIRECT_UNNEGOTIATED },
        { "indirect in a chain", PACKED_IND, 2, { BUF(0), BUF(1) },
          { 16, 100 }, { VRING_DESC_F_INDIRECT, 0 }, false,
          VIRTQ_ERR_INDIRECT_CHAINED },
        { "indirect table of 0 bytes", PACKED_IND, 1, { BUF(0) }, { 0 },
          { VRING_DESC_F_INDIRECT }, false, VIRTQ_ERR_INDIRECT_SIZE },
        { "indirect table not whole descriptors", PACKED_IND, 1,
          { BUF(0) }, { 24 }, { VRING_DESC_F_INDIRECT }, false,
          VIRTQ_ERR_INDIRECT_SIZE },
        { "indirect table outside memory", PACKED_IND, 1,
          { GPA0 + 2 * REGION_SIZE - 16 }, { 32 },
          { VRING_DESC_F_INDIRECT }, false, VIRTQ_ERR_INDIRECT_ADDR },
        { "shorter than the header", PACKED, 1, { BUF(0) }, { 8 }, { 0 },
          false, VIRTQ_ERR_SHORT },
        { "longer than a frame may be", PACKED, 2, { BUF(0), BUF(0) },
          { 65535, 65535 }, { 0, 0 }, false, VIRTQ_ERR_TOO_LONG },
    };

    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct pguest g;
        struct psink s = { 0 };
        uint16_t id, flags;
        uint32_t len;

        pg_setup(&g, cases[k].features, 16);
        int bad = vgp_add(&g.q, &g.gm, cases[k].gpa, cases[k].len,
                          cases[k].flags, cases[k].n,
                          cases[k].indirect ? GPA0 + 0xe0000 : 0);
        pg_put_frame(&g, BUF(4), 80, 5);
        int good = vgp_add1(&g.q, &g.gm, BUF(4), 92, 0);

        CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 2);
        if (s.n != 1 || g.vq.error != cases[k].error) {
            fprintf(stderr, "case '%s': %d frames, error %s\n",
                    cases[k].name, s.n, virtq_error_name(g.vq.error));
        }
        CHECK_EQ(s.n, 1);
        CHECK_EQ(s.len[0], 80);
        CHECK_EQ(g.vq.error, cases[k].error);
        CHECK_EQ(g.stats.bad_chain + g.stats.too_long, 1);
        CHECK(vgp_used(&g.q, &id, &len, &flags));
        CHECK_EQ(id, bad);
        CHECK(vgp_used(&g.q, &id, &len, &flags));
        CHECK_EQ(id, good);
        CHECK(!virtq_is_broken(&g.vq));
        pg_teardown(&g);
    }
}

/* A chain with NEXT on every descriptor of the ring never ends: nothing
 * says where the next chain starts, so the ring stops (broken) until the
 * front-end restarts it; nothing was handed out. */
static void
test_chain_without_end(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint64_t gpas[8];
    uint32_t lens[8];
    uint16_t fl[8];

    pg_setup(&g, PACKED, 8);
    for (int i = 0; i < 8; i++) {
        gpas[i] = BUF(i);
        lens[i] = 100;
        fl[i] = VRING_DESC_F_NEXT;
    }
    CHECK(vgp_add(&g.q, &g.gm, gpas, lens, fl, 8, 0) >= 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 0);
    CHECK_EQ(s.n, 0);
    CHECK(virtq_is_broken(&g.vq));
    CHECK_EQ(g.stats.broken, 1);
    CHECK_EQ(virtq_enqueue(&g.vq, "x", 1), EIO);
    pg_teardown(&g);
}

/* One frame's chain of more descriptors than VIRTQ_MAX_VISITS is dropped,
 * given back whole. */
static void
test_too_many_descriptors(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint64_t gpas[VIRTQ_MAX_VISITS + 1];
    uint32_t lens[VIRTQ_MAX_VISITS + 1];
    uint16_t fl[VIRTQ_MAX_VISITS + 1];
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED, 512);
    for (int i = 0; i <= VIRTQ_MAX_VISITS; i++) {
        gpas[i] = BUF(0);
        lens[i] = 0;
        fl[i] = 0;
    }
    lens[0] = 12;
    int bad = vgp_add(&g.q, &g.gm, gpas, lens, fl, VIRTQ_MAX_VISITS + 1, 0);
    pg_put_frame(&g, BUF(4), 64, 1);
    int good = vgp_add1(&g.q, &g.gm, BUF(4), 76, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 2);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_TOO_MANY_DESCS);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, bad);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, good);
    pg_teardown(&g);
}

/* A receive chain given back empty when one of its buffers is bad, the
 * frame dropped. */
static void
test_enqueue_bad_chain(void)
{
    struct pguest g;
    uint16_t id, flags;
    uint32_t len;
    uint64_t gpas[2] = { BUF(0), GPA0 + 2 * REGION_SIZE };
    uint32_t lens[2] = { 12, 1000 };
    uint16_t fl[2] = { VRING_DESC_F_WRITE, VRING_DESC_F_WRITE };

    pg_setup(&g, PACKED_MRG, 16);
    int bad = vgp_add(&g.q, &g.gm, gpas, lens, fl, 2, 0);
    CHECK_EQ(virtq_enqueue(&g.vq, "0123456789abcdef", 16), EINVAL);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_ADDR);
    CHECK_EQ(g.stats.bad_chain, 1);
    virtq_flush(&g.vq);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, bad);
    CHECK_EQ(len, 0);
    pg_teardown(&g);
}

/* The driver's event suppression: disabled, enabled, and (EVENT_IDX) at
 * one descriptor, across a wrap. */
static void
test_notification_suppression(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED, 8);
    pg_put_frame(&g, BUF(0), 60, 1);
    vgp_set_event(&g.q, VRING_PACKED_EVENT_DISABLE, 0, false);
    vgp_add1(&g.q, &g.gm, BUF(0), 72, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
    CHECK_EQ(pg_notifications(&g), 0);
    vgp_set_event(&g.q, VRING_PACKED_EVENT_ENABLE, 0, false);
    vgp_add1(&g.q, &g.gm, BUF(0), 72, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
    CHECK_EQ(pg_notifications(&g), 1);
    /* Without EVENT_IDX, DESC means nothing more than enabled. */
    vgp_set_event(&g.q, VRING_PACKED_EVENT_DESC, 7, false);
    vgp_add1(&g.q, &g.gm, BUF(0), 72, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
    CHECK_EQ(pg_notifications(&g), 1);
    pg_teardown(&g);

    /* With EVENT_IDX: an interrupt only once the descriptor at (5, wrap
     * 1) is used, then at (1, wrap 0), in the next lap. */
    pg_setup(&g, PACKED_EVIDX, 8);
    vgp_set_event(&g.q, VRING_PACKED_EVENT_DESC, 5, true);
    int seen = 0;
    for (int i = 0; i < 12; i++) {
        s.n = 0;
        vgp_add1(&g.q, &g.gm, BUF(0), 72, 0);
        CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
        CHECK(vgp_used(&g.q, &id, &len, &flags));
        uint64_t n = pg_notifications(&g);
        /* Descriptor i of the sequence is at position i % 8. */
        CHECK_EQ(n, i == 5 || i == 9 ? 1 : 0);
        seen += n;
        if (i == 5) {
            vgp_set_event(&g.q, VRING_PACKED_EVENT_DESC, 1, false);
        }
    }
    CHECK_EQ(seen, 2);
    /* A burst that passes the event position notifies once. */
    vgp_set_event(&g.q, VRING_PACKED_EVENT_DESC, 6, false);
    for (int i = 0; i < 4; i++) {
        vgp_add1(&g.q, &g.gm, BUF(0), 72, 0);
    }
    s.n = 0;
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 4);
    CHECK_EQ(pg_notifications(&g), 1);
    pg_teardown(&g);
}

/* A disabled TX ring's chains go back unread, counted. */
static void
test_discard(void)
{
    struct pguest g;
    uint64_t gpas[2] = { BUF(0), BUF(1) };
    uint32_t lens[2] = { 12, 100 };
    uint16_t fl[2] = { 0, 0 };
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED, 8);
    int a = vgp_add(&g.q, &g.gm, gpas, lens, fl, 2, 0);
    int b = vgp_add1(&g.q, &g.gm, BUF(2), 100, 0);
    CHECK_EQ(virtq_discard_burst(&g.vq, 32), 2);
    CHECK_EQ(g.stats.disabled_discards, 2);
    CHECK_EQ(g.stats.packets, 0);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, a);
    CHECK(vgp_used(&g.q, &id, &len, &flags));
    CHECK_EQ(id, b);
    CHECK_EQ(virtq_discard_burst(&g.vq, 32), 0);
    pg_teardown(&g);
}

/* A ring restarted at a base in the middle of a lap with wrap counter 0
 * (after a reconnect): the next chain is taken from there. */
static void
test_resume_from_base(void)
{
    struct pguest g;
    struct psink s = { 0 };
    uint16_t id, flags;
    uint32_t len;

    pg_setup(&g, PACKED, 8);
    pg_start(&g, PACKED, 8, 5);
    CHECK_EQ(virtq_last_avail(&g.vq), 5);
    CHECK(virtq_never_filled(&g.vq));
    for (int i = 0; i < 6; i++) {
        pg_put_frame(&g, BUF(i), 70 + i, i);
        CHECK(vgp_add1(&g.q, &g.gm, BUF(i), 82 + i, 0) >= 0);
        CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, psink_cb, &s), 1);
        CHECK(vgp_used(&g.q, &id, &len, &flags));
    }
    CHECK_EQ(s.n, 6);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(s.len[i], 70 + i);
    }
    /* Three in the lap of wrap 0 (5, 6, 7), three in the next (0-2). */
    CHECK_EQ(virtq_last_avail(&g.vq), 0x8000 | 3);
    pg_teardown(&g);
}


/* The driver takes back, with IN_ORDER, the chains 'ids[0..n-1]' through
 * one used descriptor, which names the last of them. */
static void
pg_used_in_order(struct pguest *g, const int *ids, int n)
{
    struct vring_packed_desc *d = &g->q.ring[g->q.next_used];
    uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
    bool w = g->q.used_wrap;

    CHECK_EQ(!!(f & VRING_PACKED_DESC_F_USED), w);
    CHECK_EQ(!!(f & VRING_PACKED_DESC_F_AVAIL), w);
    CHECK_EQ(d->id, ids[n - 1]);
    for (int i = 0; i < n; i++) {
        CHECK(g->q.out[ids[i]]);
        g->q.out[ids[i]] = false;
        g->q.n_free += g->q.chain_len[ids[i]];
        g->q.next_used += g->q.chain_len[ids[i]];
        if (g->q.next_used >= g->q.size) {
            g->q.next_used -= g->q.size;
            g->q.used_wrap = !g->q.used_wrap;
        }
    }
}

/* virtq_dequeue_frames() and virtq_enqueue_burst(), the fast paths the
 * provider calls, against the general ones, over many laps of a ring whose
 * size is not a power of 2, with IN_ORDER off and on (see the split ring's
 * test of the same name). */
static void
burst_apis_round(struct pguest *tx, struct pguest *rx, int round,
                 unsigned int *seed)
{
    int k = 1 + rand_r(seed) % 4;
    int chained = rand_r(seed) % 3 ? -1 : (int) (rand_r(seed) % k);
    int small = rand_r(seed) % 3 ? -1 : (int) (rand_r(seed) % k);
    uint8_t copies[4][1600];
    struct virtq_frame frames[32];
    uint32_t lens[4];
    int ids[5];
    bool more;
    int n;

    /* TX: k frames, one of them maybe in two descriptors. */
    for (int j = 0; j < k; j++) {
        uint64_t gpas[2] = { BUF(j), BUF(j) + 12 };
        uint16_t fl[2] = { 0, 0 };
        uint32_t dl[2];

        lens[j] = 60 + rand_r(seed) % 1400;
        pg_put_frame(tx, BUF(j), lens[j], round * 8 + j);
        if (j == chained) {
            dl[0] = 12;
            dl[1] = lens[j];
            ids[j] = vgp_add(&tx->q, &tx->gm, gpas, dl, fl, 2, 0);
        } else {
            ids[j] = vgp_add1(&tx->q, &tx->gm, BUF(j), 12 + lens[j], 0);
        }
        CHECK(ids[j] >= 0);
    }
    uint16_t id, flags;
    uint32_t len;

    n = virtq_dequeue_frames(&tx->vq, 32, frames, NULL, &more);
    CHECK_EQ(n, chained < 0 ? k : chained);
    CHECK_EQ(more, chained >= 0);
    CHECK(!vgp_used(&tx->q, &id, &len, &flags));        /* Nothing back. */
    for (int j = 0; j < n; j++) {
        CHECK_EQ(frames[j].len, lens[j]);
        CHECK(pattern_ok(frames[j].data, lens[j], round * 8 + j));
        memcpy(copies[j], frames[j].data, lens[j]);
    }
    if (more) {
        struct psink s = { 0 };

        CHECK_EQ(virtq_dequeue_burst(&tx->vq, 32 - n, psink_cb, &s), k - n);
        for (int j = n; j < k; j++) {
            CHECK_EQ(s.len[j - n], lens[j]);
            memcpy(copies[j], s.data[j - n], lens[j]);
        }
    } else {
        virtq_flush(&tx->vq);
    }
    if (tx->vq.in_order) {
        /* One used descriptor per call. */
        if (n) {
            pg_used_in_order(tx, ids, n);
        }
        if (n < k) {
            pg_used_in_order(tx, ids + n, k - n);
        }
    } else {
        for (int j = 0; j < k; j++) {
            CHECK(vgp_used(&tx->q, &id, &len, &flags));
            CHECK_EQ(id, ids[j]);
            CHECK_EQ(len, 0);
        }
    }
    CHECK(!vgp_used(&tx->q, &id, &len, &flags));

    /* RX: a 2 kB buffer per frame, one of them maybe too small for its
     * frame (which then needs the next buffer too: mergeable). */
    int n_bufs = small < 0 ? k : k + 1;
    for (int b = 0; b < n_bufs; b++) {
        ids[b] = vgp_add1(&rx->q, &rx->gm, BUF(4 + b), b == small ? 40 : 2048,
                          VRING_DESC_F_WRITE);
        CHECK(ids[b] >= 0);
    }
    for (int j = 0; j < k; j++) {
        frames[j].data = copies[j];
        frames[j].len = lens[j];
    }
    n = virtq_enqueue_burst(&rx->vq, frames, k);
    CHECK_EQ(n, small < 0 ? k : small);
    CHECK(!vgp_used(&rx->q, &id, &len, &flags));
    for (int j = n; j < k; j++) {
        CHECK_EQ(virtq_enqueue(&rx->vq, copies[j], lens[j]), 0);
    }
    virtq_flush(&rx->vq);

    /* The guest reads each frame back, from one buffer or two. */
    for (int j = 0, b = 0; j < k; j++, b++) {
        const uint8_t *p = vg_mem_ptr(&rx->gm, BUF(4 + b));
        struct virtio_net_hdr hdr;
        uint8_t got[1600];

        memcpy(&hdr, p, sizeof hdr);
        CHECK(vgp_used(&rx->q, &id, &len, &flags));
        CHECK_EQ(id, ids[b]);
        CHECK(flags & VRING_DESC_F_WRITE);
        if (b == small) {
            CHECK_EQ(hdr.num_buffers, 2);
            CHECK_EQ(len, 40);
            memcpy(got, p + 12, 28);
            b++;
            CHECK(vgp_used(&rx->q, &id, &len, &flags));
            CHECK_EQ(id, ids[b]);
            CHECK_EQ(len, lens[j] - 28);
            memcpy(got + 28, vg_mem_ptr(&rx->gm, BUF(4 + b)), lens[j] - 28);
        } else {
            CHECK_EQ(hdr.num_buffers, 1);
            CHECK_EQ(len, 12 + lens[j]);
            memcpy(got, p + 12, lens[j]);
        }
        CHECK(pattern_ok(got, lens[j], round * 8 + j));
    }
    CHECK(!vgp_used(&rx->q, &id, &len, &flags));
    CHECK_EQ(virtq_last_avail(&tx->vq),
             tx->q.next_avail | (tx->q.avail_wrap ? 0x8000 : 0));
    CHECK_EQ(virtq_last_avail(&rx->vq),
             rx->q.next_avail | (rx->q.avail_wrap ? 0x8000 : 0));
}

static void
test_burst_apis(void)
{
    for (int in_order = 0; in_order < 2; in_order++) {
        struct pguest tx, rx;
        unsigned int seed = 5;
        uint64_t packets = 0;

        pg_setup(&tx, PACKED | (in_order ? 1ull << VIRTIO_F_IN_ORDER : 0),
                 10);
        pg_setup(&rx, PACKED_MRG, 10);
        for (int round = 0; round < 300; round++) {
            uint64_t before = rx.stats.packets;

            burst_apis_round(&tx, &rx, round, &seed);
            packets += rx.stats.packets - before;
        }
        CHECK_EQ(tx.stats.packets, packets);
        CHECK_EQ(tx.stats.bad_chain + rx.stats.bad_chain, 0);
        CHECK_EQ(tx.q.n_free, 10);
        CHECK_EQ(rx.q.n_free, 10);

        /* The fast paths take nothing with no buffer, or from a broken
         * ring. */
        struct virtq_frame f = { "0123456789abcdef0123456789abcdef", 32 };
        bool more = true;

        CHECK_EQ(virtq_enqueue_burst(&rx.vq, &f, 1), 0);
        CHECK_EQ(virtq_dequeue_frames(&tx.vq, 32, &f, NULL, &more), 0);
        CHECK(!more);
        CHECK(vgp_add1(&rx.q, &rx.gm, BUF(4), 2048, VRING_DESC_F_WRITE) >= 0);
        rx.vq.broken = true;
        CHECK_EQ(virtq_enqueue_burst(&rx.vq, &f, 1), 0);
        pg_teardown(&tx);
        pg_teardown(&rx);
    }
}

/* The multicast and broadcast counts on the packed ring, as
 * virtq/group_counts has them on the split ring: the fast paths, the
 * general walk with the destination split over two descriptors (2 bytes,
 * then the rest), and the single-frame and mergeable enqueues. */
static void
test_group_counts(void)
{
    for (int way = 0; way < 3; way++) {
        struct pguest tx, rx;
        uint16_t id, flags;
        uint32_t len;
        int n;

        pg_setup(&tx, PACKED_MRG, 64);
        pg_setup(&rx, PACKED_MRG, 64);
        for (int j = 0; j < N_GROUP_FRAMES; j++) {
            uint32_t flen = group_frames[j].len;
            uint8_t *p = vg_mem_ptr(&tx.gm, BUF(j));

            memset(p, 0, 12 + flen);
            memcpy(p + 12, group_frames[j].dst, flen < 6 ? flen : 6);
            if (way == 0) {
                CHECK(vgp_add1(&tx.q, &tx.gm, BUF(j), 12 + flen, 0) >= 0);
            } else {
                uint64_t gpas[3] = { BUF(j), BUF(j) + 12, BUF(j) + 14 };
                uint32_t lens[3] = { 12, 2, flen - 2 };
                uint16_t fl[3] = { 0, 0, 0 };

                CHECK(vgp_add(&tx.q, &tx.gm, gpas, lens, fl, 3, 0) >= 0);
            }
            /* Way 2 gives 256-byte buffers: the 1000-byte frame takes
             * several (mergeable enqueue). */
            for (int k = 0; k < (way == 2 ? 5 : 1); k++) {
                int d = way == 2 ? 5 * j + k : j;

                CHECK(vgp_add1(&rx.q, &rx.gm, BUF(d), way == 2 ? 256 : 2048,
                               VRING_DESC_F_WRITE) >= 0);
            }
        }
        group_switch(&tx.vq, &rx.vq, way);
        for (n = 0; vgp_used(&tx.q, &id, &len, &flags); n++) {
            continue;
        }
        CHECK_EQ(n, N_GROUP_FRAMES);
        /* One buffer a frame, but in way 2 the 1000-byte frame's four (the
         * mergeable enqueue did run). */
        for (n = 0; vgp_used(&rx.q, &id, &len, &flags); n++) {
            continue;
        }
        CHECK_EQ(n, N_GROUP_FRAMES + (way == 2 ? GROUP_EXTRA_BUFFERS : 0));
        check_group_counts(&tx.stats);
        check_group_counts(&rx.stats);
        pg_teardown(&tx);
        pg_teardown(&rx);
    }
}

static const struct unit_test tests[] = {
    { "init_errors", test_init_errors },
    { "dequeue_simple", test_dequeue_simple },
    { "dequeue_in_order", test_dequeue_in_order },
    { "dequeue_chains_and_indirect", test_dequeue_chains_and_indirect },
    { "wrap_laps", test_wrap_laps },
    { "enqueue_mergeable", test_enqueue_mergeable },
    { "enqueue_no_room", test_enqueue_no_room },
    { "dequeue_bad_chains", test_dequeue_bad_chains },
    { "chain_without_end", test_chain_without_end },
    { "too_many_descriptors", test_too_many_descriptors },
    { "enqueue_bad_chain", test_enqueue_bad_chain },
    { "notification_suppression", test_notification_suppression },
    { "discard", test_discard },
    { "resume_from_base", test_resume_from_base },
    { "burst_apis", test_burst_apis },
    { "group_counts", test_group_counts },
};

UNIT_SUITE(virtq_packed_suite, tests);
