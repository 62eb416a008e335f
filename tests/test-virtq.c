/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of guest memory and the split virtqueue data path: a guest
 * (this test) lays out rings in memfd memory that the core maps itself. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "group-frames.h"
#include "unit.h"
#include "vguest-ring.h"
#include "vhost-mem.h"
#include "vhost-notify.h"
#include "virtq.h"

#define REGION_SIZE (1 << 20)
#define GPA0 0x40000000ull      /* Region 0's guest-physical start. */
#define RING 16

/* Two regions, contiguous in guest-physical space, separate memfds
 * (vguest-ring.h). */
struct test_guest {
    struct vg_mem gm;           /* The guest's own view. */
    struct vhost_mem *mem;      /* The core's view. */
    struct vg_vq ring;          /* In region 0; RING entries unless set up
                                 * bigger. */
    struct virtq vq;
    struct virtq_stats stats;
    int call_fd;
};

static uint8_t *
g_ptr(struct test_guest *g, uint64_t gpa)
{
    return vg_mem_ptr(&g->gm, gpa);
}

/* Starts the guest's ring of 'size' entries at 'desc' (avail and used
 * follow at the given offsets) and the core's virtqueue on it. */
static void
guest_start_ring(struct test_guest *g, uint64_t features, uint32_t size,
                 uint64_t desc, uint64_t avail, uint64_t used)
{
    vg_vq_destroy(&g->ring);
    CHECK(vg_vq_init(&g->ring, &g->gm, size, desc, avail, used));
    CHECK_EQ(virtq_init(&g->vq, g->mem, size, (uintptr_t) g->ring.desc,
                        (uintptr_t) g->ring.avail, (uintptr_t) g->ring.used,
                        0, features, g->call_fd, &g->stats), VIRTQ_INIT_OK);
}

static void
guest_setup(struct test_guest *g, uint64_t features)
{
    struct vhost_user_msg msg;
    int fds[VG_MEM_MAX_REGIONS];

    memset(g, 0, sizeof *g);
    memset(&msg, 0, sizeof msg);
    CHECK_EQ(vg_mem_init(&g->gm, "test-guest", 2, GPA0, REGION_SIZE), 0);
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
    guest_start_ring(g, features, RING, GPA0, GPA0 + 0x1000, GPA0 + 0x2000);
}

/* The same with a ring of 'size' entries (up to 1024), at GPA0 + 0xc0000,
 * clear of the buffers the tests use. */
static void
guest_setup_size(struct test_guest *g, uint64_t features, uint32_t size)
{
    guest_setup(g, features);
    guest_start_ring(g, features, size, GPA0 + 0xc0000, GPA0 + 0xc8000,
                     GPA0 + 0xca000);
}

static void
guest_teardown(struct test_guest *g)
{
    vhost_mem_free(g->mem);
    vg_vq_destroy(&g->ring);
    vg_mem_destroy(&g->gm);
    close(g->call_fd);
}

static void
set_desc(struct test_guest *g, int i, uint64_t addr, uint32_t len,
         uint16_t flags, uint16_t next)
{
    vg_vq_set_desc(&g->ring, i, addr, len, flags, next);
}

static void
make_avail(struct test_guest *g, uint16_t head)
{
    vg_vq_make_avail(&g->ring, head);
}

static uint64_t
notifications(struct test_guest *g)
{
    uint64_t n = 0;

    if (read(g->call_fd, &n, sizeof n) != sizeof n) {
        n = 0;
    }
    return n;
}

/* Collects what virtq_dequeue_burst() hands out. */
struct sink {
    int n;
    uint32_t len[8];
    uint8_t data[8][2048];
    bool has_hdr[8];
    struct virtio_net_hdr hdr[8];
};

static void
sink_cb(void *aux, const struct virtq_piece *pieces, int n, uint32_t len,
        const struct virtio_net_hdr *hdr)
{
    struct sink *s = aux;
    uint32_t off = 0;

    CHECK(s->n < 8);
    if (s->n < 8) {
        s->has_hdr[s->n] = hdr != NULL;
        if (hdr) {
            s->hdr[s->n] = *hdr;
        }
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

/* Puts a 12-byte header and 'len' bytes of pattern at 'gpa'. */
static void
put_frame(struct test_guest *g, uint64_t gpa, uint32_t len, uint8_t seed)
{
    uint8_t *p = g_ptr(g, gpa);

    memset(p, 0, 12);
    for (uint32_t i = 0; i < len; i++) {
        p[12 + i] = seed + i;
    }
}

static bool
frame_ok(const uint8_t *data, uint32_t len, uint8_t seed)
{
    for (uint32_t i = 0; i < len; i++) {
        if (data[i] != (uint8_t) (seed + i)) {
            return false;
        }
    }
    return true;
}

#define FEATURES_MRG ((1ull << VIRTIO_F_VERSION_1) \
                      | (1ull << VIRTIO_NET_F_MRG_RXBUF))

static void
test_init_errors(void)
{
    struct test_guest g;
    struct virtq vq;

    guest_setup(&g, FEATURES_MRG);
    CHECK_EQ(virtq_init(&vq, g.mem, 0, (uintptr_t) g.ring.desc,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used,
                        0, 0, -1, &g.stats),
             VIRTQ_INIT_BAD_SIZE);
    CHECK_EQ(virtq_init(&vq, g.mem, 12, (uintptr_t) g.ring.desc,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used,
                        0, 0, -1, &g.stats),
             VIRTQ_INIT_BAD_SIZE);
    CHECK_EQ(virtq_init(&vq, g.mem, 65536, (uintptr_t) g.ring.desc,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used,
                        0, 0, -1, &g.stats),
             VIRTQ_INIT_BAD_SIZE);
    /* Ring outside memory, or running off its region's end. */
    CHECK_EQ(virtq_init(&vq, g.mem, RING, 0x1000, (uintptr_t) g.ring.avail,
                        (uintptr_t) g.ring.used, 0, 0, -1, &g.stats),
             VIRTQ_INIT_BAD_ADDR);
    CHECK_EQ(virtq_init(&vq, g.mem, RING,
                        (uintptr_t) g.gm.regions[0].hva + REGION_SIZE - 16,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used,
                        0, 0, -1, &g.stats), VIRTQ_INIT_BAD_ADDR);
    CHECK_EQ(virtq_init(&vq, g.mem, RING, (uintptr_t) g.ring.desc + 8,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used,
                        0, 0, -1, &g.stats), VIRTQ_INIT_MISALIGNED);
    CHECK_EQ(virtq_init(&vq, g.mem, RING, (uintptr_t) g.ring.desc,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used + 2,
                        0, 0, -1, &g.stats),
             VIRTQ_INIT_MISALIGNED);
    guest_teardown(&g);
}

static void
test_dequeue_simple(void)
{
    struct test_guest g;
    struct sink s = { 0 };

    guest_setup(&g, FEATURES_MRG);
    put_frame(&g, GPA0 + 0x10000, 100, 7);
    set_desc(&g, 0, GPA0 + 0x10000, 112, 0, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.len[0], 100);
    CHECK(frame_ok(s.data[0], 100, 7));
    CHECK_EQ(g.ring.used->idx, 1);
    CHECK_EQ(g.ring.used->ring[0].id, 0);
    CHECK_EQ(g.ring.used->ring[0].len, 0);
    CHECK_EQ(g.stats.packets, 1);
    CHECK_EQ(g.stats.bytes, 100);
    /* The guest asked for interrupts (no NO_INTERRUPT flag). */
    CHECK_EQ(notifications(&g), 1);
    /* Nothing more. */
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 0);
    guest_teardown(&g);
}

/* IN_ORDER: a burst of frames, among them a chain of two descriptors,
 * goes back as one used entry at the burst's first position with the last
 * chain's head, and the used index moves on by every chain; the entries
 * after it are not written.  The next burst's entry follows. */
static void
test_dequeue_in_order(void)
{
    struct test_guest g;
    struct sink s = { 0 };

    guest_setup(&g, FEATURES_MRG | (1ull << VIRTIO_F_IN_ORDER));
    CHECK(g.vq.in_order);
    for (int i = 0; i < 8; i++) {
        g.ring.used->ring[i].id = 0xdead;
        g.ring.used->ring[i].len = 0xbeef;
    }
    /* Chains 0, 1, 2-3 (two descriptors), 4. */
    put_frame(&g, GPA0 + 0x10000, 100, 1);
    set_desc(&g, 0, GPA0 + 0x10000, 112, 0, 0);
    put_frame(&g, GPA0 + 0x11000, 100, 2);
    set_desc(&g, 1, GPA0 + 0x11000, 112, 0, 0);
    put_frame(&g, GPA0 + 0x12000, 100, 3);
    set_desc(&g, 2, GPA0 + 0x12000, 12, VRING_DESC_F_NEXT, 3);
    set_desc(&g, 3, GPA0 + 0x1200c, 100, 0, 0);
    put_frame(&g, GPA0 + 0x13000, 100, 4);
    set_desc(&g, 4, GPA0 + 0x13000, 112, 0, 0);
    make_avail(&g, 0);
    make_avail(&g, 1);
    make_avail(&g, 2);
    make_avail(&g, 4);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 4);
    CHECK_EQ(s.n, 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(s.len[i], 100);
        CHECK(frame_ok(s.data[i], 100, i + 1));
    }
    CHECK_EQ(g.ring.used->idx, 4);
    CHECK_EQ(g.ring.used->ring[0].id, 4);
    CHECK_EQ(g.ring.used->ring[0].len, 0);
    for (int i = 1; i < 4; i++) {
        CHECK_EQ(g.ring.used->ring[i].id, 0xdead);
        CHECK_EQ(g.ring.used->ring[i].len, 0xbeef);
    }
    CHECK_EQ(g.stats.packets, 4);

    /* One more frame: its own entry, at position 4. */
    put_frame(&g, GPA0 + 0x14000, 100, 5);
    set_desc(&g, 5, GPA0 + 0x14000, 112, 0, 0);
    make_avail(&g, 5);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK_EQ(g.ring.used->idx, 5);
    CHECK_EQ(g.ring.used->ring[4].id, 5);
    CHECK_EQ(g.ring.used->ring[4].len, 0);
    CHECK_EQ(g.ring.used->ring[5].id, 0xdead);
    guest_teardown(&g);
}

static void
test_dequeue_chain_across_regions(void)
{
    struct test_guest g;
    struct sink s = { 0 };
    uint64_t hdr = GPA0 + 0x20000;
    uint64_t data = GPA0 + REGION_SIZE - 50;   /* 50 + 150 across. */
    uint8_t *p;

    guest_setup(&g, FEATURES_MRG);
    memset(g_ptr(&g, hdr), 0, 12);
    for (int i = 0; i < 200; i++) {
        p = g_ptr(&g, data + i);
        *p = 3 + i;
    }
    set_desc(&g, 0, hdr, 12, VRING_DESC_F_NEXT, 1);
    set_desc(&g, 1, data, 200, 0, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.len[0], 200);
    CHECK(frame_ok(s.data[0], 200, 3));
    guest_teardown(&g);
}

static void
test_dequeue_header_split_any_layout(void)
{
    struct test_guest g;
    struct sink s = { 0 };

    /* The 12-byte header spread over two descriptors, with data after it
     * in the second. */
    guest_setup(&g, FEATURES_MRG);
    put_frame(&g, GPA0 + 0x30000, 64, 9);
    set_desc(&g, 0, GPA0 + 0x30000, 5, VRING_DESC_F_NEXT, 1);
    set_desc(&g, 1, GPA0 + 0x30005, 12 - 5 + 64, 0, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK_EQ(s.len[0], 64);
    CHECK(frame_ok(s.data[0], 64, 9));
    guest_teardown(&g);
}

/* A bad chain is dropped and counted, its buffer returned, and the next
 * good one goes through. */
static void
check_bad_chain_then_good(struct test_guest *g, uint64_t *counter,
                          enum virtq_error error)
{
    struct sink s = { 0 };

    put_frame(g, GPA0 + 0x40000, 80, 1);
    set_desc(g, 5, GPA0 + 0x40000, 92, 0, 0);
    make_avail(g, 5);
    CHECK_EQ(virtq_dequeue_burst(&g->vq, 32, sink_cb, &s), 2);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.len[0], 80);
    CHECK_EQ(*counter, 1);
    CHECK_EQ(g->ring.used->idx, 2);
    CHECK_EQ(g->ring.used->ring[0].len, 0);
    CHECK(!g->vq.broken);
    /* The reason is left for the caller to log. */
    CHECK_EQ(g->vq.error, error);
    CHECK(strcmp(virtq_error_name(error), "unknown error"));
}

/* A frame of VIRTQ_MAX_PACKET bytes (what OVS's packet buffers hold) is
 * taken, in one descriptor or two; one byte more is dropped as too long
 * and its chain given back. */
static void
test_dequeue_length_limit(void)
{
    for (int extra = 0; extra < 2; extra++) {
        for (int split = 0; split < 2; split++) {
            uint32_t len = VIRTQ_MAX_PACKET + extra;
            uint64_t gpa = GPA0 + 0x50000;
            struct test_guest g;
            struct sink s = { 0 };

            guest_setup(&g, FEATURES_MRG);
            put_frame(&g, gpa, len, 5);
            if (split) {
                set_desc(&g, 0, gpa, 12 + 1000, VRING_DESC_F_NEXT, 1);
                set_desc(&g, 1, gpa + 12 + 1000, len - 1000, 0, 0);
            } else {
                set_desc(&g, 0, gpa, 12 + len, 0, 0);
            }
            make_avail(&g, 0);
            if (extra) {
                check_bad_chain_then_good(&g, &g.stats.too_long,
                                          VIRTQ_ERR_TOO_LONG);
            } else {
                CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
                CHECK_EQ(s.n, 1);
                CHECK_EQ(s.len[0], len);
                CHECK_EQ(g.stats.too_long, 0);
            }
            guest_teardown(&g);
        }
    }
}

static void
test_dequeue_loop(void)
{
    struct test_guest g;

    guest_setup(&g, FEATURES_MRG);
    set_desc(&g, 0, GPA0 + 0x10000, 100, VRING_DESC_F_NEXT, 1);
    set_desc(&g, 1, GPA0 + 0x10000, 100, VRING_DESC_F_NEXT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_LOOP);
    guest_teardown(&g);
}

static void
test_dequeue_self_loop(void)
{
    struct test_guest g;

    guest_setup(&g, FEATURES_MRG);
    set_desc(&g, 3, GPA0 + 0x10000, 12, VRING_DESC_F_NEXT, 3);
    make_avail(&g, 3);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_LOOP);
    guest_teardown(&g);
}

static void
test_dequeue_bad_addresses(void)
{
    static const struct {
        uint64_t addr;
        uint32_t len;
    } cases[] = {
        { 0x1000, 100 },                        /* Below memory. */
        { GPA0 + 2 * REGION_SIZE, 100 },        /* Above memory. */
        { GPA0 + 2 * REGION_SIZE - 10, 100 },   /* Runs off the end. */
        { UINT64_MAX - 10, 100 },               /* Wraps around. */
        { GPA0, UINT32_MAX },                   /* Longer than memory. */
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct test_guest g;

        guest_setup(&g, FEATURES_MRG);
        set_desc(&g, 0, cases[i].addr, cases[i].len, 0, 0);
        make_avail(&g, 0);
        if (cases[i].len == UINT32_MAX) {
            check_bad_chain_then_good(&g, &g.stats.too_long,
                              VIRTQ_ERR_TOO_LONG);
        } else {
            check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_ADDR);
        }
        guest_teardown(&g);
    }
}

static void
test_dequeue_bad_flags_and_index(void)
{
    struct test_guest g;

    /* A device-writable buffer in a TX chain. */
    guest_setup(&g, FEATURES_MRG);
    set_desc(&g, 0, GPA0 + 0x10000, 100, VRING_DESC_F_WRITE, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_DIRECTION);
    guest_teardown(&g);

    /* A head beyond the ring. */
    guest_setup(&g, FEATURES_MRG);
    make_avail(&g, RING + 3);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_HEAD_RANGE);
    guest_teardown(&g);

    /* A next beyond the ring. */
    guest_setup(&g, FEATURES_MRG);
    set_desc(&g, 0, GPA0 + 0x10000, 12, VRING_DESC_F_NEXT, 999);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_NEXT_RANGE);
    guest_teardown(&g);

    /* Shorter than the header. */
    guest_setup(&g, FEATURES_MRG);
    set_desc(&g, 0, GPA0 + 0x10000, 11, 0, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_SHORT);
    guest_teardown(&g);
}

static void
test_dequeue_indirect(void)
{
    uint64_t features = FEATURES_MRG | (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    struct test_guest g;
    struct sink s = { 0 };
    struct vring_desc *table;

    guest_setup(&g, features);
    table = (void *) g_ptr(&g, GPA0 + 0x50000);
    put_frame(&g, GPA0 + 0x60000, 300, 5);
    table[0] = (struct vring_desc) { GPA0 + 0x60000, 12, VRING_DESC_F_NEXT,
                                     1 };
    table[1] = (struct vring_desc) { GPA0 + 0x6000c, 300, 0, 0 };
    set_desc(&g, 0, GPA0 + 0x50000, 32, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK_EQ(s.len[0], 300);
    CHECK(frame_ok(s.data[0], 300, 5));
    guest_teardown(&g);

    /* Not negotiated: refused. */
    guest_setup(&g, FEATURES_MRG);
    table = (void *) g_ptr(&g, GPA0 + 0x50000);
    table[0] = (struct vring_desc) { GPA0 + 0x60000, 112, 0, 0 };
    set_desc(&g, 0, GPA0 + 0x50000, 16, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_INDIRECT_UNNEGOTIATED);
    guest_teardown(&g);

    /* Nested: a table entry that is itself indirect (to itself). */
    guest_setup(&g, features);
    table = (void *) g_ptr(&g, GPA0 + 0x50000);
    table[0] = (struct vring_desc) { GPA0 + 0x50000, 16,
                                     VRING_DESC_F_INDIRECT, 0 };
    set_desc(&g, 0, GPA0 + 0x50000, 16, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_INDIRECT_NESTED);
    guest_teardown(&g);

    /* Indirect and next together; a length not a multiple of 16; a table
     * looping on itself; a table outside memory. */
    guest_setup(&g, features);
    set_desc(&g, 0, GPA0 + 0x50000, 16,
             VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_INDIRECT_CHAINED);
    guest_teardown(&g);

    guest_setup(&g, features);
    set_desc(&g, 0, GPA0 + 0x50000, 20, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_INDIRECT_SIZE);
    guest_teardown(&g);

    guest_setup(&g, features);
    table = (void *) g_ptr(&g, GPA0 + 0x50000);
    table[0] = (struct vring_desc) { GPA0 + 0x60000, 12, VRING_DESC_F_NEXT,
                                     1 };
    table[1] = (struct vring_desc) { GPA0 + 0x60000, 12, VRING_DESC_F_NEXT,
                                     0 };
    set_desc(&g, 0, GPA0 + 0x50000, 32, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_LOOP);
    guest_teardown(&g);

    guest_setup(&g, features);
    set_desc(&g, 0, GPA0 + 2 * REGION_SIZE - 8, 16, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_INDIRECT_ADDR);
    guest_teardown(&g);
}

static void
test_avail_index_jump(void)
{
    struct test_guest g;
    struct sink s = { 0 };

    guest_setup(&g, FEATURES_MRG);
    __atomic_store_n(&g.ring.avail->idx, RING + 1, __ATOMIC_RELEASE);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 0);
    CHECK(g.vq.broken);
    CHECK_EQ(g.stats.broken, 1);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_AVAIL_JUMP);
    CHECK_EQ(g.vq.error_head, RING + 1);
    CHECK_EQ(g.ring.used->idx, 0);
    /* A broken ring is left alone from then on. */
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 0);
    CHECK_EQ(virtq_enqueue(&g.vq, "x", 1), EIO);
    guest_teardown(&g);
}

static void
test_dequeue_too_many_pieces(void)
{
    struct test_guest g;

    /* More pieces than one packet may have: an indirect table of 200
     * one-byte buffers (in a ring of 256: a table may not have more
     * entries than the ring). */
    guest_setup_size(&g, FEATURES_MRG | (1ull << VIRTIO_RING_F_INDIRECT_DESC),
                     256);
    struct vring_desc *table = (void *) g_ptr(&g, GPA0 + 0x50000);
    for (int i = 0; i < 200; i++) {
        table[i] = (struct vring_desc) { GPA0 + 0x60000 + i, i ? 1 : 12,
                                         i < 199 ? VRING_DESC_F_NEXT : 0,
                                         i + 1 };
    }
    set_desc(&g, 0, GPA0 + 0x50000, 200 * 16, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.too_long,
                              VIRTQ_ERR_TOO_LONG);
    guest_teardown(&g);
    /* The same table with its last entry leading back to entry 150: a loop
     * (found once the piece limit stops the walk). */
    guest_setup_size(&g, FEATURES_MRG | (1ull << VIRTIO_RING_F_INDIRECT_DESC),
                     256);
    table = (void *) g_ptr(&g, GPA0 + 0x50000);
    for (int i = 0; i < 200; i++) {
        table[i] = (struct vring_desc) { GPA0 + 0x60000 + i, i ? 1 : 12,
                                         VRING_DESC_F_NEXT,
                                         i < 199 ? i + 1 : 150 };
    }
    set_desc(&g, 0, GPA0 + 0x50000, 200 * 16, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain, VIRTQ_ERR_LOOP);
    guest_teardown(&g);
}

/* Posts 'n' receive buffers of 'size' bytes, one descriptor each. */
static void
post_rx(struct test_guest *g, int first, int n, uint32_t size)
{
    for (int i = first; i < first + n; i++) {
        set_desc(g, i, GPA0 + 0x80000 + i * 0x1000, size,
                 VRING_DESC_F_WRITE, 0);
        make_avail(g, i);
    }
}

static void
test_enqueue_mergeable(void)
{
    struct test_guest g;
    uint8_t frame[3000];
    struct virtio_net_hdr hdr;

    for (size_t i = 0; i < sizeof frame; i++) {
        frame[i] = i * 3;
    }
    guest_setup(&g, FEATURES_MRG);
    post_rx(&g, 0, 4, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    /* Not visible before the flush, nor counted. */
    CHECK_EQ(g.ring.used->idx, 0);
    CHECK_EQ(g.stats.packets, 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 3);
    CHECK_EQ(g.ring.used->ring[0].len, 1024);
    CHECK_EQ(g.ring.used->ring[1].len, 1024);
    CHECK_EQ(g.ring.used->ring[2].len, 3000 + 12 - 2048);
    memcpy(&hdr, g_ptr(&g, GPA0 + 0x80000), sizeof hdr);
    CHECK_EQ(hdr.num_buffers, 3);
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x80000 + 12), frame, 1012));
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x81000), frame + 1012, 1024));
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x82000), frame + 2036, 964));
    CHECK_EQ(g.stats.packets, 1);
    CHECK_EQ(g.stats.size_1519_max, 1);
    CHECK_EQ(notifications(&g), 1);

    /* One buffer left, not enough: nothing taken. */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EAGAIN);
    CHECK_EQ(virtq_last_avail(&g.vq), 3);
    /* A small frame fits. */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 60), 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 60), EAGAIN);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 4);
    guest_teardown(&g);
}

static void
test_enqueue_chained_no_mrg(void)
{
    struct test_guest g;
    uint8_t frame[5000];

    memset(frame, 0xab, sizeof frame);
    guest_setup(&g, 0);         /* Legacy: 10-byte header. */
    /* A chain of 2 x 4096 takes a 5000-byte frame. */
    set_desc(&g, 0, GPA0 + 0x80000, 4096,
             VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(&g, 1, GPA0 + 0x90000, 4096, VRING_DESC_F_WRITE, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->ring[0].len, 5010);
    CHECK_EQ(*g_ptr(&g, GPA0 + 0x80000 + 10), 0xab);
    CHECK_EQ(*g_ptr(&g, GPA0 + 0x90000 + 5010 - 4096 - 1), 0xab);

    /* A single 1024-byte buffer cannot take it: dropped, buffer kept. */
    set_desc(&g, 2, GPA0 + 0xa0000, 1024, VRING_DESC_F_WRITE, 0);
    make_avail(&g, 2);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EMSGSIZE);
    CHECK_EQ(g.stats.too_long, 1);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 100), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 2);
    CHECK_EQ(g.ring.used->ring[1].id, 2);
    guest_teardown(&g);
}

static void
test_enqueue_bad_chain(void)
{
    struct test_guest g;
    uint8_t frame[100] = { 0 };

    /* A read-only buffer in an RX chain: the frame is dropped, the chain
     * given back empty. */
    guest_setup(&g, FEATURES_MRG);
    set_desc(&g, 0, GPA0 + 0x80000, 1024, 0, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EINVAL);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 1);
    CHECK_EQ(g.ring.used->ring[0].len, 0);
    CHECK_EQ(g.stats.bad_chain, 1);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_DIRECTION);
    /* Outside memory. */
    set_desc(&g, 1, 0x10, 1024, VRING_DESC_F_WRITE, 0);
    make_avail(&g, 1);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EINVAL);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_ADDR);
    CHECK_EQ(g.vq.error_head, 1);
    post_rx(&g, 2, 1, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 3);
    guest_teardown(&g);
}

static void
test_notification_suppression(void)
{
    uint64_t event_idx = FEATURES_MRG | (1ull << VIRTIO_RING_F_EVENT_IDX);
    struct test_guest g;
    uint8_t frame[60] = { 0 };

    /* NO_INTERRUPT: never notified. */
    guest_setup(&g, FEATURES_MRG);
    g.ring.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    post_rx(&g, 0, 2, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(notifications(&g), 0);
    guest_teardown(&g);

    /* EVENT_IDX: notified when used crosses used_event only. */
    guest_setup(&g, event_idx);
    g.ring.avail->ring[RING] = 1;   /* used_event: wake me after entry 1. */
    post_rx(&g, 0, 4, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);         /* used 0 -> 1: not past 1. */
    CHECK_EQ(notifications(&g), 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);         /* 1 -> 2: crosses. */
    CHECK_EQ(notifications(&g), 1);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);         /* 2 -> 3: event still 1. */
    CHECK_EQ(notifications(&g), 0);
    CHECK_EQ(g.stats.notifications, 1);
    guest_teardown(&g);
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Only an eventfd is taken as a call fd, and it is made non-blocking. */
static void
test_call_fd_prepare(void)
{
    char why[128];
    int fds[2], efd;

    efd = eventfd(0, EFD_CLOEXEC);
    CHECK(!(fcntl(efd, F_GETFL) & O_NONBLOCK));
    CHECK_EQ(vhost_call_fd_prepare(efd, why, sizeof why), 0);
    CHECK(fcntl(efd, F_GETFL) & O_NONBLOCK);
    close(efd);

    CHECK(!pipe(fds));
    CHECK_EQ(vhost_call_fd_prepare(fds[1], why, sizeof why), ENOTSUP);
    CHECK(strstr(why, "pipe:") != NULL);
    CHECK(!(fcntl(fds[1], F_GETFL) & O_NONBLOCK));
    close(fds[0]);
    close(fds[1]);

    CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
    CHECK_EQ(vhost_call_fd_prepare(fds[0], why, sizeof why), ENOTSUP);
    close(fds[0]);
    close(fds[1]);

    efd = memfd_create("test", MFD_CLOEXEC);
    CHECK_EQ(vhost_call_fd_prepare(efd, why, sizeof why), ENOTSUP);
    close(efd);
}

/* A guest whose call eventfd is full: with O_NONBLOCK, the notification
 * fails at once (counted, the fd kept); made blocking, the write is
 * interrupted within VHOST_NOTIFY_TIMEOUT_MS and the ring stops notifying
 * through that fd. */
static void
test_notify_jammed(void)
{
    uint64_t full = UINT64_MAX - 1;
    uint8_t frame[60] = { 0 };
    struct test_guest g;
    long long start;
    int fd;

    guest_setup(&g, FEATURES_MRG);
    fd = g.call_fd;
    CHECK_EQ(write(fd, &full, sizeof full), sizeof full);
    post_rx(&g, 0, 4, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.stats.notifications, 0);
    CHECK_EQ(g.stats.notify_errors, 1);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_CALL_FULL);
    CHECK_EQ(g.vq.call_fd, fd);

    CHECK(!fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK));
    start = now_ms();
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK(now_ms() - start < 1000);
    CHECK_EQ(g.stats.notify_errors, 2);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_CALL_BLOCKED);
    CHECK_EQ(g.vq.call_fd, -1);

    /* No more tries. */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.stats.notify_errors, 2);

    /* The thread's other blocking calls are not interrupted later. */
    start = now_ms();
    usleep(20 * 1000);
    CHECK(now_ms() - start >= 20);
    guest_teardown(&g);
}

/* A thread whose notification blocks on a jammed, blocking eventfd. */
static void *
notify_jammed_thread(void *result_)
{
    uint64_t full = UINT64_MAX - 1;
    long long *result = result_;
    long long start;
    int fd = eventfd(0, EFD_CLOEXEC);

    if (fd < 0 || write(fd, &full, sizeof full) != sizeof full) {
        *result = -1;
    } else {
        start = now_ms();
        *result = vhost_notify(fd) == EINTR ? now_ms() - start : -2;
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

/* Several threads blocked at once are each interrupted; threads that
 * exit leave the watchdog nothing to signal; and the many notifications of
 * a busy thread that do not block are never interrupted. */
static void
test_notify_threads(void)
{
    enum { N_THREADS = 4, N_NOTIFY = 200000 };
    pthread_t threads[N_THREADS];
    long long results[N_THREADS];
    uint64_t count;
    int fd;

    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N_THREADS; i++) {
            CHECK_EQ(pthread_create(&threads[i], NULL, notify_jammed_thread,
                                    &results[i]), 0);
        }
        for (int i = 0; i < N_THREADS; i++) {
            CHECK_EQ(pthread_join(threads[i], NULL), 0);
            CHECK(results[i] >= 0 && results[i] < 1000);
        }
    }

    fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(fd >= 0);
    for (int i = 0; i < N_NOTIFY; i++) {
        int error = vhost_notify(fd);

        if (error) {
            CHECK_EQ(error, 0);
            break;
        }
    }
    CHECK_EQ(read(fd, &count, sizeof count), sizeof count);
    CHECK_EQ(count, N_NOTIFY);
    close(fd);
}

/* Waits up to 'ms' for the notification watchdog to have gone idle more
 * than 'periods' times; returns whether it did. */
static bool
notify_wait_idle(unsigned int periods, int ms)
{
    long long deadline = now_ms() + ms;

    while (vhost_notify_idle_periods() <= periods) {
        if (now_ms() > deadline) {
            return false;
        }
        usleep(10 * 1000);
    }
    return true;
}

/* The watchdog sleeps once notifications stop for a second, not while
 * they go on, and a write that blocks while it sleeps is interrupted all
 * the same. */
static void
test_notify_idle(void)
{
    long long results[1];
    pthread_t thread;
    unsigned int periods;
    uint64_t count;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    CHECK(fd >= 0);
    CHECK_EQ(vhost_notify(fd), 0);
    periods = vhost_notify_idle_periods();
    CHECK(notify_wait_idle(periods, 5000));

    /* Busy for 1.5 s: no idle period. */
    periods = vhost_notify_idle_periods();
    for (long long end = now_ms() + 1500; now_ms() < end; ) {
        CHECK_EQ(vhost_notify(fd), 0);
        CHECK_EQ(read(fd, &count, sizeof count), sizeof count);
        usleep(100);
    }
    CHECK_EQ(vhost_notify_idle_periods(), periods);

    /* Idle again; then a jammed write, the first notification since. */
    CHECK(notify_wait_idle(periods, 5000));
    CHECK_EQ(pthread_create(&thread, NULL, notify_jammed_thread, &results[0]),
             0);
    CHECK_EQ(pthread_join(thread, NULL), 0);
    CHECK(results[0] >= 0 && results[0] < 1000);
    close(fd);
}

static void
test_resume_from_used_index(void)
{
    struct test_guest g;
    struct virtq vq;

    /* A front-end that lost its back-end restores the base from the used
     * index: in-flight buffers are taken again. */
    guest_setup(&g, FEATURES_MRG);
    g.ring.used->idx = 5;
    CHECK_EQ(virtq_init(&vq, g.mem, RING, (uintptr_t) g.ring.desc,
                        (uintptr_t) g.ring.avail, (uintptr_t) g.ring.used,
                        7, FEATURES_MRG, -1, &g.stats),
             VIRTQ_INIT_OK);
    CHECK_EQ(virtq_last_avail(&vq), 5);
    CHECK_EQ(vq.used_idx, 5);
    CHECK_EQ(g.ring.used->flags, VRING_USED_F_NO_NOTIFY);
    guest_teardown(&g);
}

static void
test_mem_regions(void)
{
    struct test_guest g;
    struct vhost_mem_cursor cursor = { 0 };
    struct vhost_user_msg msg;
    struct vhost_mem *mem2, *mem3;
    uint64_t avail = 0;
    int fd;

    guest_setup(&g, FEATURES_MRG);
    CHECK(vhost_mem_gpa_to_hva(g.mem, &cursor, GPA0 + 5, &avail) != NULL);
    CHECK_EQ(avail, REGION_SIZE - 5);
    CHECK(vhost_mem_gpa_to_hva(g.mem, &cursor, GPA0 + REGION_SIZE, &avail));
    CHECK_EQ(cursor.gpa, GPA0 + REGION_SIZE);  /* Now region 1's. */
    CHECK(!vhost_mem_gpa_to_hva(g.mem, &cursor, GPA0 - 1, &avail));
    CHECK(!vhost_mem_gpa_to_hva(g.mem, &cursor, GPA0 + 2 * REGION_SIZE,
                                &avail));
    CHECK(vhost_mem_qva_to_hva(g.mem, (uintptr_t) g.gm.regions[1].hva, 16));
    CHECK(!vhost_mem_qva_to_hva(g.mem, (uintptr_t) g.gm.regions[1].hva
                                + REGION_SIZE - 8, 16));
    CHECK_EQ(vhost_mem_mapped_bytes(g.mem), 2 * REGION_SIZE);

    /* ADD_MEM_REG: overlap refused, a new region accepted and shared. */
    memset(&msg, 0, sizeof msg);
    msg.request = VHOST_USER_ADD_MEM_REG;
    msg.size = 40;
    msg.payload.mem_single.region.guest_phys_addr = GPA0 + 100;
    msg.payload.mem_single.region.memory_size = 4096;
    msg.payload.mem_single.region.userspace_addr = 0x10000000;
    msg.fds[0] = dup(g.gm.regions[0].fd);
    msg.n_fds = 1;
    CHECK_EQ(vhost_mem_add_region(g.mem, &msg, UINT64_MAX, &mem2),
             VHOST_MEM_OVERLAP);
    CHECK_EQ(msg.fds[0], -1);   /* Taken (and closed). */

    fd = memfd_create("test-small", MFD_CLOEXEC);
    CHECK(!ftruncate(fd, 4096));
    msg.payload.mem_single.region.guest_phys_addr = 0x1000;
    msg.payload.mem_single.region.memory_size = 8192;  /* > the file. */
    msg.fds[0] = dup(fd);
    msg.n_fds = 1;
    CHECK_EQ(vhost_mem_add_region(g.mem, &msg, UINT64_MAX, &mem2),
             VHOST_MEM_FD_TOO_SMALL);
    msg.payload.mem_single.region.memory_size = 4096;
    msg.fds[0] = dup(fd);
    msg.n_fds = 1;
    CHECK_EQ(vhost_mem_add_region(g.mem, &msg, UINT64_MAX, &mem2),
             VHOST_MEM_OK);
    CHECK_EQ(mem2->n_regions, 3);
    close(fd);

    /* The old table can go; the new one still maps the shared regions. */
    vhost_mem_free(g.mem);
    g.mem = mem2;
    memset(&cursor, 0, sizeof cursor);         /* Another table. */
    *g_ptr(&g, GPA0 + 7) = 0x5a;
    CHECK_EQ(*(uint8_t *) vhost_mem_gpa_to_hva(mem2, &cursor, GPA0 + 7,
                                               &avail), 0x5a);

    CHECK_EQ(vhost_mem_remove_region(mem2, &msg.payload.mem_single.region,
                                     &mem3), VHOST_MEM_OK);
    CHECK_EQ(mem3->n_regions, 2);
    msg.payload.mem_single.region.guest_phys_addr = 0x999000;
    CHECK_EQ(vhost_mem_remove_region(mem3, &msg.payload.mem_single.region,
                                     &mem2), VHOST_MEM_NOT_FOUND);
    vhost_mem_free(mem3);
    guest_teardown(&g);
}

static void
test_discard_disabled(void)
{
    struct test_guest g;

    guest_setup(&g, FEATURES_MRG);
    /* Even garbage heads: a discard never looks at the descriptors. */
    make_avail(&g, 0);
    make_avail(&g, RING + 5);
    make_avail(&g, 3);
    CHECK_EQ(virtq_discard_burst(&g.vq, 2), 2);
    CHECK_EQ(virtq_discard_burst(&g.vq, 32), 1);
    CHECK_EQ(virtq_discard_burst(&g.vq, 32), 0);
    CHECK_EQ(g.ring.used->idx, 3);
    CHECK_EQ(g.ring.used->ring[2].id, 3);
    CHECK_EQ(g.stats.disabled_discards, 3);
    CHECK_EQ(g.stats.packets, 0);
    guest_teardown(&g);
}

/* Bounded work for bad guests (issue 13): a guest's chains cannot make
 * the thread that serves it visit more than VIRTQ_MAX_VISITS descriptors
 * for one frame, nor walk the same ones again for every frame. */

#define FEATURES_IND (FEATURES_MRG | (1ull << VIRTIO_RING_F_INDIRECT_DESC))

/* Fills 'n' entries of the indirect table at 'gpa': zero-length, writable
 * if 'write', chained; then, if 'last_len', one more of that length at
 * 'buf'.  Returns the table's length in bytes. */
static uint32_t
put_table(struct test_guest *g, uint64_t gpa, int n, uint16_t write,
          uint32_t last_len, uint64_t buf)
{
    struct vring_desc *table = (void *) g_ptr(g, gpa);

    for (int i = 0; i < n; i++) {
        table[i] = (struct vring_desc) {
            buf, 0, write | (i + 1 < n || last_len ? VRING_DESC_F_NEXT : 0),
            i + 1 };
    }
    if (last_len) {
        table[n] = (struct vring_desc) { buf, last_len, write, 0 };
        n++;
    }
    return n * sizeof *table;
}

/* A receive ring whose every entry but the last is an indirect table of
 * RING zero-length writable descriptors: each frame sent gives one such
 * chain back, empty and counted, and the frame after them all lands in
 * the good buffer at the end.  (Before: none was ever given back; every
 * frame walked them all.) */
static void
test_rx_indirect_zero_length_flood(void)
{
    uint8_t frame[64];
    struct test_guest g;
    uint32_t table_len;

    memset(frame, 0x5c, sizeof frame);
    guest_setup(&g, FEATURES_IND);
    table_len = put_table(&g, GPA0 + 0x50000, RING, VRING_DESC_F_WRITE, 0,
                          GPA0 + 0x60000);
    for (int i = 0; i < RING - 1; i++) {
        set_desc(&g, i, GPA0 + 0x50000, table_len, VRING_DESC_F_INDIRECT, 0);
        make_avail(&g, i);
    }
    post_rx(&g, RING - 1, 1, 1024);
    for (int i = 0; i < RING - 1; i++) {
        CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EINVAL);
        CHECK_EQ(g.vq.error, VIRTQ_ERR_RX_SHORT);
        CHECK_EQ(g.vq.error_head, i);
        virtq_flush(&g.vq);
        CHECK_EQ(g.ring.used->idx, i + 1);
        CHECK_EQ(g.ring.used->ring[i].id, i);
        CHECK_EQ(g.ring.used->ring[i].len, 0);
    }
    CHECK_EQ(g.stats.bad_chain, RING - 1);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, RING);
    CHECK_EQ(g.ring.used->ring[RING - 1].id, RING - 1);
    CHECK_EQ(g.ring.used->ring[RING - 1].len, 12 + sizeof frame);
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x80000 + (RING - 1) * 0x1000 + 12),
                  frame, sizeof frame));
    CHECK_EQ(g.stats.packets, 1);
    guest_teardown(&g);

    /* A ring of nothing but such chains: each frame takes one. */
    guest_setup(&g, FEATURES_IND);
    for (int i = 0; i < RING; i++) {
        set_desc(&g, i, GPA0 + 0x50000, table_len, VRING_DESC_F_INDIRECT, 0);
        make_avail(&g, i);
    }
    for (int i = 0; i < RING; i++) {
        CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EINVAL);
    }
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EAGAIN);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, RING);
    CHECK_EQ(g.stats.bad_chain, RING);
    guest_teardown(&g);
}

/* Indirect tables of more entries than the ring, good buffers or not, are
 * refused without a walk, both ways. */
static void
test_indirect_table_bigger_than_ring(void)
{
    uint8_t frame[64] = { 0 };
    struct test_guest g;
    uint32_t table_len;

    /* RX: RING + 1 entries, the first a good 2 kB buffer. */
    guest_setup(&g, FEATURES_IND);
    table_len = put_table(&g, GPA0 + 0x50000, 0, VRING_DESC_F_WRITE, 2048,
                          GPA0 + 0x60000);
    CHECK_EQ(table_len, 16);
    memset(g_ptr(&g, GPA0 + 0x50000 + 16), 0, RING * 16);
    set_desc(&g, 0, GPA0 + 0x50000, (RING + 1) * 16, VRING_DESC_F_INDIRECT,
             0);
    make_avail(&g, 0);
    post_rx(&g, 1, 1, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EINVAL);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_INDIRECT_SIZE);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 2);
    CHECK_EQ(g.ring.used->ring[0].len, 0);
    CHECK_EQ(g.ring.used->ring[1].id, 1);
    CHECK_EQ(*g_ptr(&g, GPA0 + 0x60000 + 12), 0);
    guest_teardown(&g);

    /* TX: a good frame in the first of RING + 1 entries.  A table of
     * exactly RING entries is fine. */
    guest_setup(&g, FEATURES_IND);
    put_frame(&g, GPA0 + 0x60000, 100, 3);
    put_table(&g, GPA0 + 0x50000, 0, 0, 112, GPA0 + 0x60000);
    memset(g_ptr(&g, GPA0 + 0x50000 + 16), 0, RING * 16);
    set_desc(&g, 0, GPA0 + 0x50000, (RING + 1) * 16, VRING_DESC_F_INDIRECT,
             0);
    make_avail(&g, 0);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_INDIRECT_SIZE);
    struct sink s = { 0 };
    set_desc(&g, 0, GPA0 + 0x50000, RING * 16, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK_EQ(s.n, 1);
    CHECK(frame_ok(s.data[0], 100, 3));
    guest_teardown(&g);
}

/* Receive chains that are each fine (an indirect table of 19 zero-length
 * descriptors and one of 12 bytes) but that a frame would need too many
 * of: the frame stops at VIRTQ_MAX_VISITS descriptors, the chains it
 * walked go back; a frame that needs fewer goes through.  And tables of
 * zero-length descriptors longer than VIRTQ_MAX_VISITS (but not than the
 * ring) go back one a frame. */
static void
test_rx_visit_limit(void)
{
    uint8_t frame[1000];
    struct test_guest g;
    uint32_t table_len;
    int per_chain = 20 + 1;     /* Table entries and the ring's entry. */
    int expect = (VIRTQ_MAX_VISITS + per_chain) / per_chain;

    memset(frame, 0x11, sizeof frame);
    guest_setup_size(&g, FEATURES_IND, 1024);
    table_len = put_table(&g, GPA0 + 0x50000, 19, VRING_DESC_F_WRITE, 12,
                          GPA0 + 0x60000);
    for (int i = 0; i < 200; i++) {
        set_desc(&g, i, GPA0 + 0x50000, table_len, VRING_DESC_F_INDIRECT, 0);
        make_avail(&g, i);
    }
    /* 1012 bytes would take 85 of them: 1785 descriptors. */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EINVAL);
    CHECK_EQ(g.vq.error, VIRTQ_ERR_TOO_MANY_DESCS);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, expect);
    CHECK_EQ(g.stats.bad_chain, 1);
    /* 76 bytes take 7: 147 descriptors. */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 64), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, expect + 7);
    CHECK_EQ(g.stats.packets, 1);
    guest_teardown(&g);

    /* Tables of 1000 zero-length descriptors in a ring of 1024. */
    guest_setup_size(&g, FEATURES_IND, 1024);
    table_len = put_table(&g, GPA0 + 0x50000, 1000, VRING_DESC_F_WRITE, 0,
                          GPA0 + 0x60000);
    for (int i = 0; i < 200; i++) {
        set_desc(&g, i, GPA0 + 0x50000, table_len, VRING_DESC_F_INDIRECT, 0);
        make_avail(&g, i);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(virtq_enqueue(&g.vq, frame, 64), EINVAL);
        CHECK_EQ(g.vq.error, VIRTQ_ERR_TOO_MANY_DESCS);
    }
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 3);
    CHECK_EQ(g.stats.bad_chain, 3);
    guest_teardown(&g);
}

/* A TX chain of 200 zero-length descriptors in the ring, then an indirect
 * table of 99 more and the frame: more descriptors than a frame may have
 * (and than the ring has), refused.  A burst of such chains stops at
 * VIRTQ_BURST_VISITS; the next burst takes the next ones. */
static void
test_tx_visit_limit(void)
{
    struct test_guest g;
    struct sink s = { 0 };
    uint32_t table_len;
    int n;

    guest_setup_size(&g, FEATURES_IND, 1024);
    put_frame(&g, GPA0 + 0x60000, 64, 9);
    table_len = put_table(&g, GPA0 + 0x50000, 99, 0, 76, GPA0 + 0x60000);
    for (int i = 300; i < 500; i++) {
        set_desc(&g, i, GPA0 + 0x60000, 0, VRING_DESC_F_NEXT, i + 1);
    }
    set_desc(&g, 500, GPA0 + 0x50000, table_len, VRING_DESC_F_INDIRECT, 0);
    make_avail(&g, 300);
    check_bad_chain_then_good(&g, &g.stats.bad_chain,
                              VIRTQ_ERR_TOO_MANY_DESCS);

    for (int i = 0; i < 32; i++) {
        make_avail(&g, 300);
    }
    n = virtq_dequeue_burst(&g.vq, 32, sink_cb, &s);
    CHECK_EQ(n, (VIRTQ_BURST_VISITS + VIRTQ_MAX_VISITS)
             / (VIRTQ_MAX_VISITS + 1));
    CHECK_EQ(s.n, 0);
    CHECK_EQ(g.ring.used->idx, 2 + n);
    while (n < 32) {
        int got = virtq_dequeue_burst(&g.vq, 32, sink_cb, &s);

        CHECK(got > 0);
        n += got;
    }
    CHECK_EQ(g.stats.bad_chain, 33);
    guest_teardown(&g);
}

/* A frame that found too little room: the next frames as big fail without
 * walking the same chains (here seen by a guest that breaks the rules and
 * grows a posted buffer: not looked at again), until the guest posts
 * more. */
static void
test_enqueue_nofit_remembered(void)
{
    uint8_t frame[3000] = { 0 };
    struct test_guest g;

    guest_setup(&g, FEATURES_MRG);
    post_rx(&g, 0, 2, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EAGAIN);
    g.ring.desc[1].len = 4096;     /* (The first chain takes the fast path.) */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, sizeof frame), EAGAIN);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 2500), EAGAIN);
    /* A frame that fits what was seen is walked. */
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 1500), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 2);
    post_rx(&g, 2, 2, 1024);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 2000), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 4);
    guest_teardown(&g);
}

/* With offloads negotiated, each frame's header is handed out (a copy),
 * whether it sits in the frame's descriptor or is split over two; without,
 * none is. */
static void
test_dequeue_offload_header(void)
{
    const struct virtio_net_hdr want = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
        .gso_size = 1448, .csum_start = 34, .csum_offset = 16,
        .num_buffers = 0x5555,
    };
    struct test_guest g;
    struct sink s = { 0 };

    guest_setup(&g, FEATURES_MRG | (1ull << VIRTIO_NET_F_CSUM));
    for (int i = 0; i < 2; i++) {
        uint64_t gpa = GPA0 + 0x30000 + i * 0x1000;

        put_frame(&g, gpa, 64, 3 + i);
        memcpy(g_ptr(&g, gpa), &want, 12);
    }
    set_desc(&g, 0, GPA0 + 0x30000, 12 + 64, 0, 0);
    set_desc(&g, 1, GPA0 + 0x31000, 7, VRING_DESC_F_NEXT, 2);
    set_desc(&g, 2, GPA0 + 0x31007, 12 - 7 + 64, 0, 0);
    make_avail(&g, 0);
    make_avail(&g, 1);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 2);
    CHECK_EQ(s.n, 2);
    for (int i = 0; i < 2; i++) {
        CHECK(s.has_hdr[i]);
        CHECK_EQ(s.hdr[i].flags, want.flags);
        CHECK_EQ(s.hdr[i].gso_type, want.gso_type);
        CHECK_EQ(s.hdr[i].hdr_len, want.hdr_len);
        CHECK_EQ(s.hdr[i].gso_size, want.gso_size);
        CHECK_EQ(s.hdr[i].csum_start, want.csum_start);
        CHECK_EQ(s.hdr[i].csum_offset, want.csum_offset);
        CHECK_EQ(s.hdr[i].num_buffers, 0);
        CHECK_EQ(s.len[i], 64);
        CHECK(frame_ok(s.data[i], 64, 3 + i));
    }
    guest_teardown(&g);

    guest_setup(&g, FEATURES_MRG);
    memset(&s, 0, sizeof s);
    put_frame(&g, GPA0 + 0x30000, 64, 3);
    set_desc(&g, 0, GPA0 + 0x30000, 12 + 64, 0, 0);
    make_avail(&g, 0);
    CHECK_EQ(virtq_dequeue_burst(&g.vq, 32, sink_cb, &s), 1);
    CHECK(!s.has_hdr[0]);
    guest_teardown(&g);
}

/* virtq_enqueue_hdr() writes the given header, with the buffer count, on
 * the one-buffer path and the mergeable one. */
static void
test_enqueue_with_header(void)
{
    const struct virtio_net_hdr hdr = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV6, .hdr_len = 74,
        .gso_size = 1428, .csum_start = 54, .csum_offset = 16,
        .num_buffers = 99,
    };
    struct virtio_net_hdr got;
    struct test_guest g;
    uint8_t frame[3000];

    for (size_t i = 0; i < sizeof frame; i++) {
        frame[i] = i * 5;
    }
    guest_setup(&g, FEATURES_MRG);
    post_rx(&g, 0, 4, 2048);
    CHECK_EQ(virtq_enqueue_hdr(&g.vq, &hdr, frame, 100), 0);
    CHECK_EQ(virtq_enqueue_hdr(&g.vq, &hdr, frame, sizeof frame), 0);
    CHECK_EQ(virtq_enqueue(&g.vq, frame, 60), 0);
    virtq_flush(&g.vq);
    CHECK_EQ(g.ring.used->idx, 4);

    memcpy(&got, g_ptr(&g, GPA0 + 0x80000), sizeof got);
    CHECK(!memcmp(&got, &hdr, 10));
    CHECK_EQ(got.num_buffers, 1);
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x80000 + 12), frame, 100));

    memcpy(&got, g_ptr(&g, GPA0 + 0x81000), sizeof got);
    CHECK(!memcmp(&got, &hdr, 10));
    CHECK_EQ(got.num_buffers, 2);
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x81000 + 12), frame, 2036));
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x82000), frame + 2036, 964));

    /* The plain one after it: a header of zeros. */
    static const uint8_t zeros[10];
    CHECK(!memcmp(g_ptr(&g, GPA0 + 0x83000), zeros, 10));
    guest_teardown(&g);
}


/* Every frame is counted in one size bin, the same on the fast and the
 * general paths both ways: the bins' edges, one frame on each side. */
static const uint32_t bin_lens[] = {
    1, 63, 64, 65, 127, 128, 255, 256, 511, 512, 1023, 1024, 1518, 1519,
    2000,
};

static void
check_size_bins(const struct virtq_stats *st)
{
    uint64_t bytes = 0;

    for (size_t i = 0; i < (sizeof bin_lens / sizeof bin_lens[0]); i++) {
        bytes += bin_lens[i];
    }
    CHECK_EQ(st->packets, (sizeof bin_lens / sizeof bin_lens[0]));
    CHECK_EQ(st->bytes, bytes);
    CHECK_EQ(st->undersize, 2);
    CHECK_EQ(st->size_64, 1);
    CHECK_EQ(st->size_65_127, 2);
    CHECK_EQ(st->size_128_255, 2);
    CHECK_EQ(st->size_256_511, 2);
    CHECK_EQ(st->size_512_1023, 2);
    CHECK_EQ(st->size_1024_1518, 2);
    CHECK_EQ(st->size_1519_max, 2);
}

static void
test_size_bins(void)
{
    enum { N = (sizeof bin_lens / sizeof bin_lens[0]) };

    for (int general = 0; general < 2; general++) {
        struct virtq_frame frames[N];
        struct test_guest tx, rx;
        bool more;

        guest_setup_size(&tx, FEATURES_MRG, 64);
        guest_setup_size(&rx, FEATURES_MRG, 64);
        for (int j = 0; j < N; j++) {
            uint64_t gpa = GPA0 + 0x10000 + j * 0x1000;

            put_frame(&tx, gpa, bin_lens[j], j);
            if (general) {
                /* Header and frame apart: the general walk. */
                set_desc(&tx, 2 * j, gpa, 12, VRING_DESC_F_NEXT, 2 * j + 1);
                set_desc(&tx, 2 * j + 1, gpa + 12, bin_lens[j], 0, 0);
                make_avail(&tx, 2 * j);
            } else {
                set_desc(&tx, j, gpa, 12 + bin_lens[j], 0, 0);
                make_avail(&tx, j);
            }
            set_desc(&rx, j, GPA0 + 0x40000 + j * 0x1000, 0x1000,
                     VRING_DESC_F_WRITE, 0);
            make_avail(&rx, j);
        }
        if (general) {
            struct sink s = { 0 };

            for (int j = 0; j < N; j++) {
                s.n = 0;
                CHECK_EQ(virtq_dequeue_burst(&tx.vq, 1, sink_cb, &s), 1);
                CHECK_EQ(s.len[0], bin_lens[j]);
                CHECK_EQ(virtq_enqueue(&rx.vq, s.data[0], bin_lens[j]), 0);
            }
        } else {
            CHECK_EQ(virtq_dequeue_frames(&tx.vq, 32, frames, NULL, &more),
                     N);
            CHECK(!more);
            virtq_flush(&tx.vq);
            CHECK_EQ(virtq_enqueue_burst(&rx.vq, frames, N), N);
        }
        virtq_flush(&rx.vq);
        check_size_bins(&tx.stats);
        check_size_bins(&rx.stats);
        guest_teardown(&tx);
        guest_teardown(&rx);
    }
}

/* The multicast and broadcast counts, on both sides of every path: the
 * fast paths, the general walk with the destination address split over
 * two descriptors (2 bytes, then the rest), and the single-frame and
 * mergeable enqueues. */
static void
test_group_counts(void)
{
    for (int way = 0; way < 3; way++) {
        struct test_guest tx, rx;

        guest_setup_size(&tx, FEATURES_MRG, 64);
        guest_setup_size(&rx, FEATURES_MRG, 64);
        for (int j = 0; j < N_GROUP_FRAMES; j++) {
            uint32_t len = group_frames[j].len;
            uint64_t gpa = GPA0 + 0x10000 + j * 0x1000;
            uint8_t *p = g_ptr(&tx, gpa);

            memset(p, 0, 12 + len);
            memcpy(p + 12, group_frames[j].dst, len < 6 ? len : 6);
            if (way == 0) {
                set_desc(&tx, j, gpa, 12 + len, 0, 0);
            } else {
                set_desc(&tx, 3 * j, gpa, 12, VRING_DESC_F_NEXT, 3 * j + 1);
                set_desc(&tx, 3 * j + 1, gpa + 12, 2, VRING_DESC_F_NEXT,
                         3 * j + 2);
                set_desc(&tx, 3 * j + 2, gpa + 14, len - 2, 0, 0);
            }
            make_avail(&tx, way == 0 ? j : 3 * j);
            /* Way 2 gives 256-byte buffers: the 1000-byte frame takes
             * several (mergeable enqueue). */
            for (int k = 0; k < (way == 2 ? 5 : 1); k++) {
                int d = way == 2 ? 5 * j + k : j;

                set_desc(&rx, d, GPA0 + 0x40000 + d * 0x1000,
                         way == 2 ? 256 : 0x1000, VRING_DESC_F_WRITE, 0);
                make_avail(&rx, d);
            }
        }
        group_switch(&tx.vq, &rx.vq, way);
        /* One buffer a frame, but in way 2 the 1000-byte frame's four
         * (the mergeable enqueue did run). */
        CHECK_EQ(vg_vq_used_idx(&rx.ring),
                 N_GROUP_FRAMES + (way == 2 ? GROUP_EXTRA_BUFFERS : 0));
        check_group_counts(&tx.stats);
        check_group_counts(&rx.stats);
        guest_teardown(&tx);
        guest_teardown(&rx);
    }
}

/* virtq_dequeue_frames() and virtq_enqueue_burst(), the fast paths the
 * provider calls, against the general ones, over many laps of the ring
 * with IN_ORDER off and on: each takes frames from the front as long as
 * they are single descriptors in one region, stops at the first chain it
 * cannot take so (which the general call then takes), gives nothing back
 * before the flush, and leaves the ring where the general calls go on. */
static void
burst_apis_round(struct test_guest *tx, struct test_guest *rx, int round,
                 unsigned int *seed)
{
    uint64_t tx_buf = GPA0 + 0x10000, rx_buf = GPA0 + 0x40000;
    int k = 1 + rand_r(seed) % 8;
    int chained = rand_r(seed) % 3 ? -1 : (int) (rand_r(seed) % k);
    int small = rand_r(seed) % 3 ? -1 : (int) (rand_r(seed) % k);
    uint8_t copies[8][1600];
    struct virtq_frame frames[32];
    uint32_t lens[8];
    int heads[9];
    bool more;
    int n;

    /* TX: k frames, one of them maybe in two descriptors. */
    for (int j = 0; j < k; j++) {
        uint64_t gpa = tx_buf + j * 2048;
        uint64_t gpas[2] = { gpa, gpa + 12 };
        uint32_t dl[2];

        lens[j] = 60 + rand_r(seed) % 1400;
        put_frame(tx, gpa, lens[j], round * 8 + j);
        if (j == chained) {
            dl[0] = 12;
            dl[1] = lens[j];
            heads[j] = vg_vq_add(&tx->ring, &tx->gm, gpas, dl, 2, 0, false);
        } else {
            dl[0] = 12 + lens[j];
            heads[j] = vg_vq_add(&tx->ring, &tx->gm, gpas, dl, 1, 0, false);
        }
        CHECK(heads[j] >= 0);
    }
    uint16_t tx_used = tx->ring.used->idx;
    n = virtq_dequeue_frames(&tx->vq, 32, frames, NULL, &more);
    CHECK_EQ(n, chained < 0 ? k : chained);
    CHECK_EQ(more, chained >= 0);
    CHECK_EQ(tx->ring.used->idx, tx_used);      /* Nothing back yet. */
    for (int j = 0; j < n; j++) {
        CHECK_EQ(frames[j].len, lens[j]);
        CHECK(frame_ok(frames[j].data, lens[j], round * 8 + j));
        memcpy(copies[j], frames[j].data, lens[j]);
    }
    if (more) {
        struct sink s = { 0 };

        CHECK_EQ(virtq_dequeue_burst(&tx->vq, 32 - n, sink_cb, &s), k - n);
        for (int j = n; j < k; j++) {
            CHECK_EQ(s.len[j - n], lens[j]);
            memcpy(copies[j], s.data[j - n], lens[j]);
        }
    } else {
        virtq_flush(&tx->vq);
    }
    CHECK_EQ((uint16_t) (tx->ring.used->idx - tx_used), k);
    if (tx->vq.in_order) {
        /* One used entry per call, at its first chain's position, with
         * its last chain's head: the driver takes back every chain up to
         * that one. */
        int last = n ? n - 1 : k - 1;

        CHECK_EQ(vg_vq_next_used(&tx->ring)->id, heads[last]);
        if (n && more) {
            tx->ring.last_used += n;
            CHECK_EQ(vg_vq_next_used(&tx->ring)->id, heads[k - 1]);
            tx->ring.last_used -= n;
        }
    }
    for (int j = 0; j < k; j++) {
        if (tx->vq.in_order) {
            CHECK(vg_vq_take_head(&tx->ring, heads[j]));
        } else {
            vg_vq_check_used("tx", 1, &tx->ring,
                             vg_vq_next_used(&tx->ring)->id);
            CHECK_EQ(vg_vq_next_used(&tx->ring)->id, heads[j]);
        }
        tx->ring.last_used++;
        vg_vq_put_chain(&tx->ring, heads[j]);
    }

    /* RX: a 2 kB buffer per frame, one of them maybe too small for its
     * frame (which then needs the next buffer too: mergeable). */
    int n_bufs = small < 0 ? k : k + 1;
    for (int b = 0; b < n_bufs; b++) {
        uint64_t gpa = rx_buf + b * 2048;
        uint32_t len = b == small ? 40 : 2048;

        heads[b] = vg_vq_add(&rx->ring, &rx->gm, &gpa, &len, 1,
                             VRING_DESC_F_WRITE, false);
        CHECK(heads[b] >= 0);
    }
    for (int j = 0; j < k; j++) {
        frames[j].data = copies[j];
        frames[j].len = lens[j];
    }
    uint16_t rx_used = rx->ring.used->idx;
    n = virtq_enqueue_burst(&rx->vq, frames, k);
    CHECK_EQ(n, small < 0 ? k : small);
    CHECK_EQ(rx->ring.used->idx, rx_used);
    for (int j = n; j < k; j++) {
        CHECK_EQ(virtq_enqueue(&rx->vq, copies[j], lens[j]), 0);
    }
    virtq_flush(&rx->vq);
    CHECK_EQ((uint16_t) (rx->ring.used->idx - rx_used), n_bufs);

    /* The guest reads each frame back, from one buffer or two. */
    for (int j = 0, b = 0; j < k; j++) {
        struct vring_used_elem *e = vg_vq_next_used(&rx->ring);
        const uint8_t *p = g_ptr(rx, rx_buf + b * 2048);
        struct virtio_net_hdr hdr;
        uint8_t got[1600];

        memcpy(&hdr, p, sizeof hdr);
        vg_vq_check_used("rx", 0, &rx->ring, e->id);
        CHECK_EQ(e->id, heads[b]);
        if (b == small) {
            CHECK_EQ(hdr.num_buffers, 2);
            CHECK_EQ(e->len, 40);
            memcpy(got, p + 12, 28);
            rx->ring.last_used++;
            vg_vq_put_chain(&rx->ring, heads[b]);
            b++;
            e = vg_vq_next_used(&rx->ring);
            vg_vq_check_used("rx", 0, &rx->ring, e->id);
            CHECK_EQ(e->len, lens[j] - 28);
            memcpy(got + 28, g_ptr(rx, rx_buf + b * 2048), lens[j] - 28);
        } else {
            CHECK_EQ(hdr.num_buffers, 1);
            CHECK_EQ(e->len, 12 + lens[j]);
            memcpy(got, p + 12, lens[j]);
        }
        CHECK(frame_ok(got, lens[j], round * 8 + j));
        rx->ring.last_used++;
        vg_vq_put_chain(&rx->ring, heads[b]);
        b++;
    }
}

static void
test_burst_apis(void)
{
    for (int in_order = 0; in_order < 2; in_order++) {
        uint64_t features = FEATURES_MRG
                            | (in_order ? 1ull << VIRTIO_F_IN_ORDER : 0);
        struct test_guest tx, rx;
        unsigned int seed = 11;
        uint64_t packets = 0;

        guest_setup(&tx, features);
        guest_setup(&rx, FEATURES_MRG);
        vg_vq_init_free_list(&tx.ring);
        vg_vq_init_free_list(&rx.ring);
        for (int round = 0; round < 300; round++) {
            uint64_t before = rx.stats.packets;

            burst_apis_round(&tx, &rx, round, &seed);
            packets += rx.stats.packets - before;
        }
        CHECK_EQ(tx.stats.packets, packets);
        CHECK_EQ(tx.stats.bad_chain + rx.stats.bad_chain, 0);
        CHECK_EQ(tx.ring.n_free, RING);
        CHECK_EQ(rx.ring.n_free, RING);

        /* The fast paths take nothing with no buffer, or from a broken
         * ring. */
        struct virtq_frame f = { "0123456789abcdef0123456789abcdef", 32 };
        bool more = true;
        uint64_t gpa = GPA0 + 0x40000;
        uint32_t len = 2048;

        CHECK_EQ(virtq_enqueue_burst(&rx.vq, &f, 1), 0);
        CHECK_EQ(virtq_dequeue_frames(&tx.vq, 32, &f, NULL, &more), 0);
        CHECK(!more);
        CHECK(vg_vq_add(&rx.ring, &rx.gm, &gpa, &len, 1, VRING_DESC_F_WRITE,
                        false) >= 0);
        rx.vq.broken = true;
        CHECK_EQ(virtq_enqueue_burst(&rx.vq, &f, 1), 0);
        guest_teardown(&tx);
        guest_teardown(&rx);
    }
}

static const struct unit_test tests[] = {
    { "init_errors", test_init_errors },
    { "dequeue_offload_header", test_dequeue_offload_header },
    { "enqueue_with_header", test_enqueue_with_header },
    { "dequeue_simple", test_dequeue_simple },
    { "dequeue_in_order", test_dequeue_in_order },
    { "dequeue_chain_across_regions", test_dequeue_chain_across_regions },
    { "dequeue_header_split", test_dequeue_header_split_any_layout },
    { "dequeue_loop", test_dequeue_loop },
    { "dequeue_self_loop", test_dequeue_self_loop },
    { "dequeue_bad_addresses", test_dequeue_bad_addresses },
    { "dequeue_length_limit", test_dequeue_length_limit },
    { "dequeue_bad_flags_and_index", test_dequeue_bad_flags_and_index },
    { "dequeue_indirect", test_dequeue_indirect },
    { "dequeue_too_many_pieces", test_dequeue_too_many_pieces },
    { "avail_index_jump", test_avail_index_jump },
    { "enqueue_mergeable", test_enqueue_mergeable },
    { "enqueue_chained_no_mrg", test_enqueue_chained_no_mrg },
    { "enqueue_bad_chain", test_enqueue_bad_chain },
    { "notification_suppression", test_notification_suppression },
    { "call_fd_prepare", test_call_fd_prepare },
    { "notify_jammed", test_notify_jammed },
    { "notify_threads", test_notify_threads },
    { "notify_idle", test_notify_idle },
    { "resume_from_used_index", test_resume_from_used_index },
    { "mem_regions", test_mem_regions },
    { "discard_disabled", test_discard_disabled },
    { "rx_indirect_zero_length_flood", test_rx_indirect_zero_length_flood },
    { "indirect_table_bigger_than_ring",
      test_indirect_table_bigger_than_ring },
    { "rx_visit_limit", test_rx_visit_limit },
    { "tx_visit_limit", test_tx_visit_limit },
    { "enqueue_nofit_remembered", test_enqueue_nofit_remembered },
    { "burst_apis", test_burst_apis },
    { "size_bins", test_size_bins },
    { "group_counts", test_group_counts },
};

UNIT_SUITE(virtq_suite, tests);
