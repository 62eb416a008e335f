/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Unit tests of live migration's dirty log: mapping, bit math, and that
 * the data path marks every guest page it writes. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit.h"
#include "vguest-packed.h"
#include "vhost-device.h"
#include "vhost-log.h"
#include "vhost-mem.h"
#include "virtq.h"

/* Guest memory: two regions of REGION_SIZE, contiguous in guest-physical
 * space from GPA0, in separate memfds (a buffer may cross from one to the
 * other). */
#define REGION_SIZE (1 << 20)
#define GPA0 0x40000000ull
#define GUEST_SIZE (2 * REGION_SIZE)
#define PAGE VHOST_LOG_PAGE

struct lguest {
    int fds[2];
    uint8_t *hva[2];
    struct vhost_mem *mem;
};

static uint8_t *
lg_ptr(struct lguest *g, uint64_t gpa)
{
    int r = gpa >= GPA0 + REGION_SIZE;

    return g->hva[r] + (gpa - GPA0 - r * REGION_SIZE);
}

static void
lg_setup(struct lguest *g)
{
    struct vhost_user_msg msg;

    memset(g, 0, sizeof *g);
    memset(&msg, 0, sizeof msg);
    msg.request = VHOST_USER_SET_MEM_TABLE;
    msg.flags = VHOST_USER_VERSION;
    msg.size = 8 + 2 * 32;
    msg.payload.mem.nregions = 2;
    for (int i = 0; i < 2; i++) {
        g->fds[i] = memfd_create("test-log-guest", MFD_CLOEXEC);
        CHECK(g->fds[i] >= 0 && !ftruncate(g->fds[i], REGION_SIZE));
        g->hva[i] = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
                         MAP_SHARED, g->fds[i], 0);
        CHECK(g->hva[i] != MAP_FAILED);
        msg.payload.mem.regions[i].guest_phys_addr = GPA0 + i * REGION_SIZE;
        msg.payload.mem.regions[i].memory_size = REGION_SIZE;
        msg.payload.mem.regions[i].userspace_addr = (uintptr_t) g->hva[i];
        msg.fds[i] = dup(g->fds[i]);
    }
    msg.n_fds = 2;
    CHECK_EQ(vhost_user_validate(&msg, 8, NULL), VHOST_USER_WIRE_OK);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &g->mem), VHOST_MEM_OK);
}

static void
lg_teardown(struct lguest *g)
{
    vhost_mem_free(g->mem);
    for (int i = 0; i < 2; i++) {
        munmap(g->hva[i], REGION_SIZE);
        close(g->fds[i]);
    }
}

/* A memfd of 'size' bytes, as a front-end's log. */
static int
log_file(uint64_t size)
{
    int fd = memfd_create("test-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    CHECK(fd >= 0 && !ftruncate(fd, size));
    CHECK(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
    return fd;
}

static uint64_t
n_marked(const struct vhost_log *log)
{
    uint64_t n = 0;

    for (uint64_t i = 0; i < log->size; i++) {
        n += __builtin_popcount(log->bits[i]);
    }
    return n;
}

static void
test_sizing_and_refusals(void)
{
    struct vhost_log *log;
    struct lguest g;
    /* Pages up to GPA0 + 2 MiB, a bit each. */
    uint64_t need = (GPA0 + GUEST_SIZE) / PAGE / 8;
    int fd;

    lg_setup(&g);
    CHECK_EQ(vhost_log_size_for(NULL), 0);
    CHECK_EQ(vhost_log_size_for(g.mem), need);

    fd = log_file(need + 8192);
    /* Too small for guest memory's highest address, by a byte. */
    CHECK_EQ(vhost_log_map(fd, need - 1, 0, g.mem, &log),
             VHOST_LOG_MAP_TOO_SMALL);
    CHECK(!log);
    /* The file ends before offset + size. */
    CHECK_EQ(vhost_log_map(fd, need + 8192, 1, g.mem, &log),
             VHOST_LOG_MAP_FD_TOO_SMALL);
    CHECK_EQ(vhost_log_map(fd, need, 8193, g.mem, &log),
             VHOST_LOG_MAP_FD_TOO_SMALL);
    /* offset + size wraps. */
    CHECK_EQ(vhost_log_map(fd, need, UINT64_MAX - need + 2, g.mem, &log),
             VHOST_LOG_MAP_OVERFLOW);
    CHECK_EQ(vhost_log_map(fd, 0, 0, g.mem, &log), VHOST_LOG_MAP_ZERO_SIZE);
    CHECK_EQ(vhost_log_map(fd, VHOST_LOG_MAX_SIZE + 1, 0, g.mem, &log),
             VHOST_LOG_MAP_TOO_BIG);
    CHECK_EQ(vhost_log_map(-1, need, 0, g.mem, &log), VHOST_LOG_MAP_NO_FD);
    CHECK(!log);

    /* A file the front-end could shrink under the switch. */
    int ufd = memfd_create("test-log-unsealed", MFD_CLOEXEC);
    CHECK(!ftruncate(ufd, need));
    CHECK_EQ(vhost_log_map(ufd, need, 0, g.mem, &log),
             VHOST_LOG_MAP_UNSEALED);
    close(ufd);

    /* Not a file. */
    int efd = eventfd(0, EFD_CLOEXEC);
    CHECK_EQ(vhost_log_map(efd, need, 0, NULL, &log), VHOST_LOG_MAP_BAD_FD);
    close(efd);

    /* Exactly enough, at an offset that is not page-aligned: the bits are
     * where the front-end reads them. */
    CHECK_EQ(vhost_log_map(fd, need, 100, g.mem, &log), VHOST_LOG_MAP_OK);
    CHECK(log != NULL);
    if (log) {
        uint8_t *view = mmap(NULL, need + 8192, PROT_READ, MAP_SHARED, fd, 0);

        CHECK(view != MAP_FAILED);
        vhost_log_mark(log, GPA0 + GUEST_SIZE - 1, 1);
        uint64_t page = (GPA0 + GUEST_SIZE - 1) / PAGE;
        CHECK_EQ(view[100 + page / 8], 1u << (page % 8));
        CHECK_EQ(n_marked(log), 1);
        munmap(view, need + 8192);
        vhost_log_free(log);
    }
    close(fd);
    lg_teardown(&g);
}

static void
test_mark_bits(void)
{
    struct vhost_log *log;
    int fd = log_file(16);      /* 128 pages. */

    CHECK_EQ(vhost_log_map(fd, 16, 0, NULL, &log), VHOST_LOG_MAP_OK);
    if (!log) {
        return;
    }
    /* Nothing for nothing. */
    vhost_log_mark(log, 5 * PAGE, 0);
    CHECK_EQ(n_marked(log), 0);

    /* The last byte of a page, and that byte and the next. */
    vhost_log_mark(log, PAGE - 1, 1);
    CHECK_EQ(log->bits[0], 0x01);
    vhost_log_mark(log, 2 * PAGE - 1, 2);
    CHECK_EQ(log->bits[0], 0x07);
    CHECK_EQ(n_marked(log), 3);

    /* Across a byte of the bitmap: pages 7 and 8. */
    memset(log->bits, 0, 16);
    vhost_log_mark(log, 8 * PAGE - 1, 2);
    CHECK_EQ(log->bits[0], 0x80);
    CHECK_EQ(log->bits[1], 0x01);

    /* A range of whole and partial pages: 3 (from its last byte) to 20
     * (its first byte). */
    memset(log->bits, 0, 16);
    vhost_log_mark(log, 4 * PAGE - 1, 16 * PAGE + 2);
    for (uint64_t p = 0; p < 128; p++) {
        CHECK_EQ(vhost_log_is_marked(log, p * PAGE), p >= 3 && p <= 20);
    }
    CHECK_EQ(n_marked(log), 18);

    /* Beyond the log: counted, never written. */
    memset(log->bits, 0, 16);
    vhost_log_mark(log, 128 * PAGE, 1);
    CHECK_EQ(log->beyond, 1);
    CHECK_EQ(n_marked(log), 0);
    /* Partly beyond: what is in the log is marked. */
    vhost_log_mark(log, 127 * PAGE, 2 * PAGE);
    CHECK_EQ(log->beyond, 2);
    CHECK_EQ(n_marked(log), 1);
    CHECK(vhost_log_is_marked(log, 127 * PAGE));
    /* A range that wraps the address space. */
    vhost_log_mark(log, UINT64_MAX - 10, 100);
    CHECK_EQ(log->beyond, 3);
    CHECK_EQ(n_marked(log), 1);

    vhost_log_free(log);
    close(fd);
}

/* Several threads mark pages of the same bytes at once: no bit is lost
 * (a plain read-modify-write would lose some). */
struct marker {
    struct vhost_log *log;
    int id;
};

static void *
marker_main(void *m_)
{
    struct marker *m = m_;

    for (int round = 0; round < 2000; round++) {
        for (uint64_t p = m->id; p < 1024; p += 4) {
            vhost_log_mark(m->log, p * PAGE + round % PAGE, 1);
        }
        if (m->id == 0 && round % 100 == 0) {
            /* (The front-end's side: nothing here clears.) */
        }
    }
    return NULL;
}

static void
test_mark_concurrent(void)
{
    struct vhost_log *log;
    struct marker m[4];
    pthread_t t[4];
    int fd = log_file(128);     /* 1024 pages. */

    CHECK_EQ(vhost_log_map(fd, 128, 0, NULL, &log), VHOST_LOG_MAP_OK);
    if (!log) {
        return;
    }
    for (int i = 0; i < 4; i++) {
        m[i].log = log;
        m[i].id = i;
        CHECK(!pthread_create(&t[i], NULL, marker_main, &m[i]));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK_EQ(n_marked(log), 1024);
    vhost_log_free(log);
    close(fd);
}

/* The property: random traffic through a guest's RX ring (mergeable
 * chains, indirect tables, buffers across regions) and TX ring, and
 * afterwards every guest page whose bytes changed is marked in the log. */

#define RING 64
#define RX_DESC (GPA0 + 0x0000)
#define RX_AVAIL (GPA0 + 0x1000)
#define RX_USED (GPA0 + 0x2000)
#define TX_DESC (GPA0 + 0x4000)
#define TX_AVAIL (GPA0 + 0x5000)
#define TX_USED (GPA0 + 0x6000)
#define INDIRECT (GPA0 + 0x10000)   /* RING tables of 16 entries each for
                                     * RX, as many after them for TX. */
#define INDIRECT_MAX 16
#define BUFFERS (GPA0 + 0x20000)    /* Buffers from here to the end. */

/* One ring as the guest drives it. */
struct gring {
    bool rx;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t avail_idx, used_seen;
    uint16_t free[RING];        /* Free descriptor indexes. */
    int n_free;
    uint16_t chain[RING][RING]; /* Descriptors of the chain at a head. */
    int chain_len[RING];
    struct virtq vq;
    struct virtq_stats stats;
    /* Packed rings: the driver is vguest-packed's, over a view of the
     * same memory; the descriptors at 'desc_gpa', the driver's and the
     * device's event areas at 'avail_gpa' and 'used_gpa'. */
    bool packed;
    struct vg_mem m;
    struct vgp_vq q;
};

static uint32_t rng_state = 12345;

static uint32_t
rnd(uint32_t n)
{
    rng_state = rng_state * 1103515245 + 12345;
    return (rng_state >> 8) % n;
}

static void
gring_init(struct gring *r, struct lguest *g, bool rx, uint64_t desc,
           uint64_t avail, uint64_t used, uint64_t features)
{
    memset(r, 0, sizeof *r);
    r->rx = rx;
    r->desc_gpa = desc;
    r->avail_gpa = avail;
    r->used_gpa = used;
    r->desc = (void *) lg_ptr(g, desc);
    r->avail = (void *) lg_ptr(g, avail);
    r->used = (void *) lg_ptr(g, used);
    memset(r->desc, 0, RING * sizeof *r->desc);
    memset(r->avail, 0, 6 + 2 * RING);
    memset(r->used, 0, 6 + 8 * RING);
    for (int i = 0; i < RING; i++) {
        r->free[i] = RING - 1 - i;
    }
    r->n_free = RING;
    r->packed = features & (1ull << VIRTIO_F_RING_PACKED);
    if (r->packed) {
        for (int i = 0; i < 2; i++) {
            vg_mem_add_view(&r->m, g->fds[i], g->hva[i], GPA0 + i * REGION_SIZE,
                            REGION_SIZE);
        }
        CHECK(vgp_init(&r->q, &r->m, RING, desc, avail, used));
    }
    CHECK_EQ(virtq_init(&r->vq, g->mem, RING, (uintptr_t) r->desc,
                        (uintptr_t) r->avail, (uintptr_t) r->used,
                        r->packed ? VIRTQ_PACKED_WRAP : 0, features, -1,
                        &r->stats), VIRTQ_INIT_OK);
}

/* A random buffer of 'len' bytes in the buffer area (maybe across the
 * regions' boundary). */
static uint64_t
random_buffer(uint32_t len)
{
    if (rnd(8) == 0) {
        return GPA0 + REGION_SIZE - 1 - rnd(len);
    }
    return BUFFERS + rnd(GUEST_SIZE - (BUFFERS - GPA0) - len);
}

/* gring_post() for a packed ring: the same chains, through vgp_add(). */
static bool
pring_post(struct gring *r, struct lguest *g, int n, bool indirect)
{
    uint64_t gpas[4];
    uint32_t lens[4];
    uint16_t flags[4];
    int id;

    if (r->q.n_free < (indirect ? 1 : n)) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        lens[i] = r->rx ? 12 + rnd(1500) : 1 + rnd(800) + (i ? 0 : 12);
        gpas[i] = random_buffer(lens[i]);
        flags[i] = r->rx ? VRING_DESC_F_WRITE : 0;
        if (!r->rx) {
            for (uint32_t k = 0; k < lens[i]; k++) {
                lg_ptr(g, gpas[i] + k)[0] = rnd(256);
            }
        }
    }
    /* (An id is known only once added: its table goes by a free slot of
     * the chain's first descriptor, which no other chain out holds.) */
    uint64_t table = (INDIRECT + (r->rx ? 0 : RING) * INDIRECT_MAX * 16
                      + r->q.next_avail * INDIRECT_MAX * 16);
    id = vgp_add(&r->q, &r->m, gpas, lens, flags, n, indirect ? table : 0);
    CHECK(id >= 0);
    return true;
}

/* Posts one chain of 1 to 4 buffers (or an indirect table of them), all
 * writable on an RX ring, readable and holding a frame on a TX ring.
 * Returns false if the ring has no room. */
static bool
gring_post(struct gring *r, struct lguest *g)
{
    int n = 1 + rnd(4);
    bool indirect = rnd(4) == 0;
    uint16_t flags = r->rx ? VRING_DESC_F_WRITE : 0;
    struct vring_desc *table;
    uint16_t head;

    if (r->packed) {
        return pring_post(r, g, n, indirect);
    }
    if (r->n_free < (indirect ? 1 : n)) {
        return false;
    }
    head = r->free[--r->n_free];
    r->chain[head][0] = head;
    r->chain_len[head] = 1;
    if (indirect) {
        uint64_t t = (INDIRECT + (r->rx ? 0 : RING) * INDIRECT_MAX * 16
                      + head * INDIRECT_MAX * sizeof *table);

        table = (void *) lg_ptr(g, t);
        r->desc[head].addr = t;
        r->desc[head].len = n * sizeof *table;
        r->desc[head].flags = VRING_DESC_F_INDIRECT;
        r->desc[head].next = 0;
    } else {
        table = r->desc;
    }
    for (int i = 0; i < n; i++) {
        uint16_t d = indirect ? i : r->chain[head][i];
        uint32_t len = r->rx ? 12 + rnd(1500) : 1 + rnd(800);

        if (!r->rx && i == 0) {
            len += 12;          /* The header, and at least a byte. */
        }
        table[d].addr = random_buffer(len);
        table[d].len = len;
        table[d].flags = flags;
        if (!r->rx) {
            for (uint32_t k = 0; k < len; k++) {
                lg_ptr(g, table[d].addr + k)[0] = rnd(256);
            }
        }
        if (i < n - 1) {
            uint16_t next = indirect ? i + 1 : r->free[--r->n_free];

            if (!indirect) {
                r->chain[head][r->chain_len[head]++] = next;
            }
            table[d].flags |= VRING_DESC_F_NEXT;
            table[d].next = next;
        }
    }
    r->avail->ring[r->avail_idx % RING] = head;
    r->avail_idx++;
    __atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
    return true;
}

/* Takes back the chains the switch used. */
static void
gring_reap(struct gring *r)
{
    if (r->packed) {
        uint16_t id, flags;
        uint32_t len;

        while (vgp_used(&r->q, &id, &len, &flags)) {
            continue;
        }
        return;
    }
    uint16_t used_idx = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

    while (r->used_seen != used_idx) {
        uint16_t head = r->used->ring[r->used_seen % RING].id;

        for (int i = 0; i < r->chain_len[head]; i++) {
            r->free[r->n_free++] = r->chain[head][i];
        }
        r->chain_len[head] = 0;
        r->used_seen++;
    }
}

static void
count_cb(void *aux, const struct virtq_piece *pieces, int n, uint32_t len,
         const struct virtio_net_hdr *hdr)
{
    (void) hdr;
    (void) pieces;
    (void) n;
    (void) len;
    ++*(int *) aux;
}

static void
property_run(bool logging, bool packed)
{
    uint64_t features = ((1ull << VIRTIO_F_VERSION_1)
                         | (1ull << VIRTIO_NET_F_MRG_RXBUF)
                         | (1ull << VIRTIO_RING_F_INDIRECT_DESC)
                         | (1ull << VIRTIO_RING_F_EVENT_IDX)
                         | (packed ? 1ull << VIRTIO_F_RING_PACKED : 0));
    uint8_t *shadow = malloc(GUEST_SIZE);
    uint8_t frame[4000];
    struct gring *rx = calloc(1, sizeof *rx), *tx = calloc(1, sizeof *tx);
    struct vhost_log *log;
    struct lguest g;
    int fd, n_rx = 0, n_tx = 0, n_changed_pages = 0;

    lg_setup(&g);
    /* Random bytes everywhere: a write almost always changes them. */
    for (uint64_t a = GPA0; a < GPA0 + GUEST_SIZE; a++) {
        lg_ptr(&g, a)[0] = rnd(256);
    }
    gring_init(rx, &g, true, RX_DESC, RX_AVAIL, RX_USED, features);
    gring_init(tx, &g, false, TX_DESC, TX_AVAIL, TX_USED, features);
    fd = log_file(vhost_log_size_for(g.mem));
    CHECK_EQ(vhost_log_map(fd, vhost_log_size_for(g.mem), 0, g.mem, &log),
             VHOST_LOG_MAP_OK);
    if (logging) {
        virtq_set_log(&rx->vq, log, true, RX_USED);
        virtq_set_log(&tx->vq, log, true, TX_USED);
    }

    for (int round = 0; round < 300; round++) {
        /* The guest: takes back used chains, posts new ones. */
        gring_reap(rx);
        gring_reap(tx);
        for (int i = rnd(8); i > 0 && gring_post(rx, &g); i--) {
            continue;
        }
        for (int i = rnd(6); i > 0 && gring_post(tx, &g); i--) {
            continue;
        }
        /* The front-end syncs: copies the pages marked, clears them. */
        memset(log->bits, 0, log->size);
        for (int r = 0; r < 2; r++) {
            memcpy(shadow + r * REGION_SIZE, g.hva[r], REGION_SIZE);
        }

        /* The switch. */
        n_tx += virtq_dequeue_burst(&tx->vq, 32, count_cb, &(int) { 0 });
        for (int i = rnd(10); i > 0; i--) {
            uint32_t len = 1 + rnd(sizeof frame);

            for (uint32_t k = 0; k < len; k++) {
                frame[k] = rnd(256);
            }
            if (!virtq_enqueue(&rx->vq, frame, len)) {
                n_rx++;
            }
        }
        virtq_flush(&rx->vq);
        for (int q = 0; q < 2; q++) {
            struct virtq *vq = q ? &tx->vq : &rx->vq;

            if (vq->error) {
                fprintf(stderr, "round %d: %s ring: %s\n", round,
                        q ? "tx" : "rx", virtq_error_name(vq->error));
                vq->error = 0;
            }
        }

        /* Every page that changed is marked (if logging). */
        for (uint64_t p = GPA0; p < GPA0 + GUEST_SIZE; p += PAGE) {
            if (memcmp(shadow + (p - GPA0), lg_ptr(&g, p), PAGE)) {
                n_changed_pages++;
                if (logging && !vhost_log_is_marked(log, p)) {
                    fprintf(stderr, "round %d: page 0x%"PRIx64" changed, "
                            "not marked\n", round, p);
                    CHECK(vhost_log_is_marked(log, p));
                }
            }
        }
        if (!logging) {
            CHECK_EQ(n_marked(log), 0);
        }
    }
    /* The traffic did something: frames both ways, mergeable ones and
     * wrapped rings included. */
    CHECK(n_rx > 300);
    CHECK(n_tx > 300);
    CHECK(n_changed_pages > 1000);
    CHECK_EQ(rx->stats.bad_chain + tx->stats.bad_chain, 0);
    CHECK_EQ(log->beyond, 0);

    vhost_log_free(log);
    close(fd);
    free(rx);
    free(tx);
    free(shadow);
    lg_teardown(&g);
}

static void
test_traffic_marks_changed_pages(void)
{
    property_run(true, false);
}

static void
test_traffic_without_logging(void)
{
    property_run(false, false);
}

static void
test_packed_traffic_marks_changed_pages(void)
{
    property_run(true, true);
}

static void
test_packed_traffic_without_logging(void)
{
    property_run(false, true);
}

/* The device: LOG_SHMFD and LOG_ALL offered, SET_LOG_BASE mapped and
 * answered with 0 or refused (and the front-end dropped), SET_LOG_FD
 * kept, and rings mark the log only while LOG_ALL is acked. */
static void
d_log(void *aux, enum vhost_log_level level, const char *msg)
{
    (void) aux;
    (void) level;
    (void) msg;
}

static void
d_nop(void *aux)
{
    (void) aux;
}

static const struct vhost_device_ops d_ops = {
    .synchronize = d_nop,
    .changed = d_nop,
    .log = d_log,
};

static enum vhost_device_result
d_send(struct vhost_device *dev, uint32_t request, const void *payload,
       uint32_t size, int fd, struct vhost_user_msg *reply, bool *has_reply)
{
    struct vhost_user_msg msg;

    memset(&msg, 0, sizeof msg);
    msg.request = request;
    msg.flags = VHOST_USER_VERSION;
    msg.size = size;
    if (size) {
        memcpy(&msg.payload, payload, size);
    }
    if (fd >= 0) {
        msg.fds[0] = fd;
        msg.n_fds = 1;
    }
    return vhost_device_handle(dev, &msg, reply, has_reply);
}

static void
test_device_log_messages(void)
{
    uint64_t base_features = ((1ull << VIRTIO_F_VERSION_1)
                              | (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
    uint64_t log_all = 1ull << VHOST_F_LOG_ALL;
    struct vhost_user_msg reply;
    struct vhost_device dev;
    bool has_reply;
    uint64_t v;
    int memfd = memfd_create("test-log-dev", MFD_CLOEXEC);
    uint8_t *hva;

    CHECK(!ftruncate(memfd, REGION_SIZE));
    hva = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
               0);
    vhost_device_init(&dev, "test", 1, &d_ops, NULL);
    CHECK(VHOST_DEVICE_FEATURES & log_all);
    CHECK(VHOST_DEVICE_PROTOCOL_FEATURES
          & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD));

    v = 1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD;
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_PROTOCOL_FEATURES, &v, 8, -1,
                    &reply, &has_reply), VHOST_DEVICE_OK);
    v = base_features;
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_FEATURES, &v, 8, -1, &reply,
                    &has_reply), VHOST_DEVICE_OK);

    /* Memory: one region of 1 MiB at guest-physical 0: 32 bytes of log. */
    struct vhost_user_mem_table t = { .nregions = 1 };
    t.regions[0].memory_size = REGION_SIZE;
    t.regions[0].userspace_addr = (uintptr_t) hva;
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, dup(memfd),
                    &reply, &has_reply), VHOST_DEVICE_OK);

    /* A ring, running. */
    struct vhost_user_vring_state st = { 0, 16 };
    d_send(&dev, VHOST_USER_SET_VRING_NUM, &st, sizeof st, -1, &reply,
           &has_reply);
    struct vhost_user_vring_addr addr = {
        .index = 0,
        .desc_user_addr = (uintptr_t) hva + 0x10000,
        .avail_user_addr = (uintptr_t) hva + 0x11000,
        .used_user_addr = (uintptr_t) hva + 0x12000,
        .log_guest_addr = 0x12000,
    };
    d_send(&dev, VHOST_USER_SET_VRING_ADDR, &addr, sizeof addr, -1, &reply,
           &has_reply);
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_VRING_KICK, &(uint64_t) { 0 }, 8,
                    eventfd(0, EFD_CLOEXEC), &reply, &has_reply),
             VHOST_DEVICE_OK);
    CHECK(dev.vrings[0].live != NULL);

    /* Logs refused: the front-end, owed a reply, is dropped; counted. */
    struct vhost_user_log l = { 31, 0 };
    int lfd = log_file(4096);
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_LOG_BASE, &l, sizeof l, dup(lfd),
                    &reply, &has_reply), VHOST_DEVICE_DISCONNECT);
    l = (struct vhost_user_log) { 32, 4096 - 31 };
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_LOG_BASE, &l, sizeof l, dup(lfd),
                    &reply, &has_reply), VHOST_DEVICE_DISCONNECT);
    l = (struct vhost_user_log) { 32, UINT64_MAX - 8 };
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_LOG_BASE, &l, sizeof l, dup(lfd),
                    &reply, &has_reply), VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(dev.errors.log, 3);
    CHECK(dev.log == NULL);
    /* The ring still runs, logging nothing. */
    CHECK(dev.vrings[0].live && !dev.vrings[0].live->log);

    /* A good one: answered with 0.  (Without LOG_ALL no ring holds the
     * log: the running ring stays as it is.) */
    struct virtq *running = dev.vrings[0].live;
    l = (struct vhost_user_log) { 4096, 0 };
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_LOG_BASE, &l, sizeof l, dup(lfd),
                    &reply, &has_reply), VHOST_DEVICE_OK);
    CHECK(has_reply);
    CHECK_EQ(reply.request, VHOST_USER_SET_LOG_BASE);
    CHECK_EQ(reply.size, 8);
    CHECK_EQ(reply.payload.u64, 0);
    CHECK(dev.log != NULL);
    CHECK(dev.vrings[0].live == running);
    /* Not marked until LOG_ALL is acked. */
    CHECK(dev.vrings[0].live && !dev.vrings[0].live->log);

    /* Migration starts: LOG_ALL, then the rings' log flag. */
    v = base_features | log_all;
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_FEATURES, &v, 8, -1, &reply,
                    &has_reply), VHOST_DEVICE_OK);
    CHECK(dev.vrings[0].live && dev.vrings[0].live->log == dev.log);
    CHECK(dev.vrings[0].live && !dev.vrings[0].live->log_used);
    addr.flags = VHOST_VRING_F_LOG;
    d_send(&dev, VHOST_USER_SET_VRING_ADDR, &addr, sizeof addr, -1, &reply,
           &has_reply);
    CHECK(dev.vrings[0].live && dev.vrings[0].live->log_used);
    CHECK(dev.vrings[0].live
          && dev.vrings[0].live->log_used_gpa == 0x12000);
    /* The ring's start wrote the used ring's flags: marked. */
    CHECK(vhost_log_is_marked(dev.log, 0x12000));

    /* A new log while logging: the ring moves onto it. */
    int lfd2 = log_file(8192);
    l = (struct vhost_user_log) { 64, 4096 };
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_LOG_BASE, &l, sizeof l, dup(lfd2),
                    &reply, &has_reply), VHOST_DEVICE_OK);
    CHECK(dev.vrings[0].live && dev.vrings[0].live->log == dev.log);
    CHECK_EQ(dev.log->size, 64);

    /* SET_LOG_FD: kept, the old one closed. */
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_LOG_FD, NULL, 0,
                    eventfd(0, EFD_CLOEXEC), &reply, &has_reply),
             VHOST_DEVICE_OK);
    CHECK(dev.log_fd >= 0);

    /* Migration ends (failed, say): logging off. */
    v = base_features;
    CHECK_EQ(d_send(&dev, VHOST_USER_SET_FEATURES, &v, 8, -1, &reply,
                    &has_reply), VHOST_DEVICE_OK);
    CHECK(dev.vrings[0].live && !dev.vrings[0].live->log);

    vhost_device_destroy(&dev);
    close(lfd);
    close(lfd2);
    munmap(hva, REGION_SIZE);
    close(memfd);
}

static const struct unit_test tests[] = {
    { "sizing_and_refusals", test_sizing_and_refusals },
    { "mark_bits", test_mark_bits },
    { "mark_concurrent", test_mark_concurrent },
    { "traffic_marks_changed_pages", test_traffic_marks_changed_pages },
    { "traffic_without_logging", test_traffic_without_logging },
    { "packed_traffic_marks_changed_pages",
      test_packed_traffic_marks_changed_pages },
    { "packed_traffic_without_logging", test_packed_traffic_without_logging },
    { "device_log_messages", test_device_log_messages },
};

UNIT_SUITE(log_suite, tests);
