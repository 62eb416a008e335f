/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest: the scripted guest that the test tools share (connection,
 * negotiation, guest memory, rings, probe frames). */

#define _GNU_SOURCE
#include "vguest.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost-conn.h"

static uint64_t
avail_gpa(unsigned int ring)
{
    return VG_RING_GPA(ring) + 0x1000;
}

static uint64_t
used_gpa(unsigned int ring)
{
    return VG_RING_GPA(ring) + 0x2000;
}

/* Points vring 'i''s vg_vq at its place in the layout, indexes at 0. */
static void
attach_ring(struct vguest *g, unsigned int i)
{
    vg_vq_attach(&g->rings[i].vq, &g->layout, VG_RING_SIZE, VG_RING_GPA(i),
                 avail_gpa(i), used_gpa(i));
}

void
vg_fail(const struct vguest *g, const char *format, ...)
{
    va_list args;

    printf("FAIL: %s: ", g->name);
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    printf("\n");
    fflush(stdout);
    exit(1);
}

/* Sets up 'g' with fresh guest memory, not connected.  With 'shadow', the
 * memory is filled with a pattern and every guest write is recorded, for
 * vg_check_memory(). */
void
vg_init(struct vguest *g, const char *name, bool shadow)
{
    memset(g, 0, sizeof *g);
    g->name = name;
    vg_conn_init(&g->conn, name);
    for (int i = 0; i < 2 * VG_MAX_PAIRS; i++) {
        g->rings[i].index = i;
        g->rings[i].kick = g->rings[i].call = -1;
    }
    memcpy(g->probe_mac, (uint8_t[6]) { 0x02, 0, 0, 0, 0, 0xee }, 6);
    memcpy(g->own_mac, (uint8_t[6]) { 0x02, 0, 0, 0, 0, 0x01 }, 6);

    g->memfd = memfd_create("vguest", MFD_CLOEXEC);
    if (g->memfd < 0 || ftruncate(g->memfd, VG_MEM_SIZE)) {
        vg_fail(g, "memfd: %s", strerror(errno));
    }
    g->mem = mmap(NULL, VG_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  g->memfd, 0);
    if (g->mem == MAP_FAILED) {
        vg_fail(g, "mmap: %s", strerror(errno));
    }
    vg_mem_add_view(&g->layout, g->memfd, g->mem, 0, VG_REGION_A_SIZE);
    vg_mem_add_view(&g->layout, g->memfd, g->mem + VG_REGION_B_OFF,
                    VG_REGION_B_GPA, VG_REGION_B_SIZE);
    for (int i = 0; i < 2 * VG_MAX_PAIRS; i++) {
        attach_ring(g, i);
    }
    if (shadow) {
        g->shadow = malloc(VG_MEM_SIZE);
        g->may_write = calloc(1, VG_MEM_SIZE);
        if (!g->shadow || !g->may_write) {
            vg_fail(g, "out of memory");
        }
        /* Everything the switch has no business writing: a pattern. */
        memset(g->mem, 0xa5, VG_MEM_SIZE);
        memset(g->shadow, 0xa5, VG_MEM_SIZE);
    }
}

/* Closes the connection (if any) and frees everything. */
void
vg_destroy(struct vguest *g)
{
    for (int i = 0; i < 2 * VG_MAX_PAIRS; i++) {
        if (g->rings[i].kick >= 0) {
            close(g->rings[i].kick);
        }
        if (g->rings[i].call >= 0) {
            close(g->rings[i].call);
        }
    }
    vg_conn_close(&g->conn);
    munmap(g->mem, VG_MEM_SIZE);
    close(g->memfd);
    free(g->shadow);
    free(g->may_write);
    memset(g, 0, sizeof *g);
    g->conn.sock = g->memfd = -1;
}

/* QEMU's start: features, protocol features with REPLY_ACK, owner.  The
 * virtio features taken are VERSION_1, MRG_RXBUF, MQ and 'extra'. */
void
vg_negotiate(struct vguest *g, uint64_t extra)
{
    uint64_t protocol = (
        (1ull << VHOST_USER_PROTOCOL_F_MQ)
        | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)
        | (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
    unsigned int max_pairs;
    uint64_t features;

    features = vg_conn_start(&g->conn, protocol, &max_pairs);
    if (!(g->conn.protocol_features
          & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))) {
        vg_fail(g, "no REPLY_ACK offered");
    }
    if (extra & ~features) {
        vg_fail(g, "features 0x%"PRIx64" asked for, not offered",
                extra & ~features);
    }
    vg_conn_must_ack(&g->conn, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
    vg_conn_ack_u64(&g->conn, VHOST_USER_SET_FEATURES,
                    features & ((1ull << VIRTIO_F_VERSION_1)
                                | (1ull << VIRTIO_NET_F_MRG_RXBUF)
                                | (1ull << VIRTIO_NET_F_MQ)
                                | (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
                                | extra));
}

struct vhost_user_mem_region
vg_region(const struct vguest *g, uint64_t gpa, uint64_t size,
          uint64_t offset)
{
    struct vhost_user_mem_region r = {
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t) g->mem + offset,
        .mmap_offset = offset,
    };
    return r;
}

/* A memory table of 'n' regions (all from the guest's memfd; more than
 * VHOST_USER_MAX_MEM_REGIONS are claimed but not sent) with 'n_fds'
 * fds. */
void
vg_send_mem_table(struct vguest *g, uint32_t flags,
                  const struct vhost_user_mem_region *r, int n, int n_fds)
{
    struct vhost_user_mem_table table;
    int fds[VHOST_USER_MAX_FDS] = { -1 };
    int sent = n < VHOST_USER_MAX_MEM_REGIONS ? n : VHOST_USER_MAX_MEM_REGIONS;

    memset(&table, 0, sizeof table);
    table.nregions = n;
    for (int i = 0; i < sent; i++) {
        table.regions[i] = r[i];
    }
    for (int i = 0; i < n_fds; i++) {
        fds[i] = g->memfd;
    }
    vg_conn_send(&g->conn, VHOST_USER_SET_MEM_TABLE, flags, &table,
                 8 + (uint32_t) sent * sizeof *r, fds, n_fds);
}

/* The two regions of the layout in vguest.h. */
void
vg_set_up_memory(struct vguest *g)
{
    struct vhost_user_mem_region r[2] = {
        vg_region(g, 0, VG_REGION_A_SIZE, 0),
        vg_region(g, VG_REGION_B_GPA, VG_REGION_B_SIZE, VG_REGION_B_OFF),
    };
    struct vhost_user_msg reply;

    vg_send_mem_table(g, VG_ASK, r, 2, 2);
    if (vg_conn_read_answer(&g->conn, &reply) || reply.payload.u64) {
        vg_fail(g, "memory table refused");
    }
}

/* The memfd offset of guest-physical 'gpa' (the whole 'len' in one
 * region). */
static size_t
gpa_offset(const struct vguest *g, uint64_t gpa, uint64_t len)
{
    const struct vg_mem_region *r = vg_mem_find(&g->layout, gpa);

    if (!r || len > r->size - (gpa - r->gpa)) {
        vg_fail(g, "test bug: GPA 0x%"PRIx64" not in guest memory", gpa);
    }
    return (r->hva - g->mem) + (gpa - r->gpa);
}

void *
vg_ptr(const struct vguest *g, uint64_t gpa, uint64_t len)
{
    return g->mem + gpa_offset(g, gpa, len);
}

/* The guest writes its memory only through this, so that the shadow knows
 * what every byte must hold. */
void
vg_write(struct vguest *g, uint64_t gpa, const void *data, size_t len)
{
    size_t off = gpa_offset(g, gpa, len);

    if (g->shadow) {
        memcpy(g->shadow + off, data, len);
    }
    memcpy(g->mem + off, data, len);
}

void
vg_switch_may_write(struct vguest *g, uint64_t gpa, size_t len)
{
    if (g->may_write) {
        memset(g->may_write + gpa_offset(g, gpa, len), 1, len);
    }
}

/* Fails unless every byte of guest memory the switch was not given to
 * write holds what the guest put there. */
void
vg_check_memory(const struct vguest *g, const char *when)
{
    if (!g->shadow) {
        return;
    }
    for (size_t i = 0; i < VG_MEM_SIZE; i++) {
        if (!g->may_write[i] && g->mem[i] != g->shadow[i]) {
            vg_fail(g, "%s: the switch wrote guest memory it was not given "
                    "(memfd offset 0x%zx: 0x%02x, was 0x%02x)", when, i,
                    g->mem[i], g->shadow[i]);
        }
    }
}

/* The guest wrote 'len' bytes at 'p', in its memory, through a vg_vq:
 * the shadow learns of them. */
static void
wrote(struct vguest *g, const void *p, size_t len)
{
    if (g->shadow) {
        memcpy(g->shadow + ((const uint8_t *) p - g->mem), p, len);
    }
}

/* Makes buffer id 'id', one buffer, available on packed ring 'ring' and
 * kicks. */
static void
packed_add1(struct vguest *g, unsigned int ring, uint16_t id, uint64_t gpa,
            uint32_t len, uint16_t flags)
{
    if (!vgp_add_id(&g->rings[ring].pvq, &g->layout, id, &gpa, &len, &flags,
                    1, 0)) {
        vg_fail(g, "packed ring %u: no room for buffer %"PRIu16, ring, id);
    }
    vg_kick(g, ring);
}

static void
set_table_entry(struct vguest *g, uint64_t table, uint16_t i, uint64_t addr,
                uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc d = { .addr = addr, .len = len, .flags = flags,
                            .next = next };

    vg_write(g, table + i * sizeof d, &d, sizeof d);
}

void
vg_set_desc(struct vguest *g, unsigned int ring, uint16_t i, uint64_t addr,
            uint32_t len, uint16_t flags, uint16_t next)
{
    struct vg_vq *vq = &g->rings[ring].vq;

    vg_vq_set_desc(vq, i, addr, len, flags, next);
    wrote(g, &vq->desc[i], sizeof vq->desc[i]);
}

void
vg_set_table_desc(struct vguest *g, uint64_t table, uint16_t i,
                  uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    set_table_entry(g, table, i, addr, len, flags, next);
}

void
vg_kick(struct vguest *g, unsigned int ring)
{
    uint64_t one = 1;

    if (write(g->rings[ring].kick, &one, sizeof one) != sizeof one) {
        vg_fail(g, "kick: %s", strerror(errno));
    }
}

/* Stores the guest's avail index of 'ring' as 'idx', whatever it made
 * available. */
void
vg_set_avail_idx(struct vguest *g, unsigned int ring, uint16_t idx)
{
    struct vg_vq *vq = &g->rings[ring].vq;

    __atomic_store_n(&vq->avail->idx, idx, __ATOMIC_RELEASE);
    wrote(g, &vq->avail->idx, sizeof vq->avail->idx);
}

/* Puts chain 'head' into the next avail entry of 'ring', not yet visible
 * to the switch. */
void
vg_post_avail(struct vguest *g, unsigned int ring, uint16_t head)
{
    struct vg_vq *vq = &g->rings[ring].vq;

    vg_vq_post(vq, head);
    wrote(g, &vq->avail->ring[(uint16_t) (vq->avail_idx - 1) % vq->size],
          sizeof vq->avail->ring[0]);
}

/* Makes what vg_post_avail() put into 'ring' visible to the switch. */
void
vg_publish_avail(struct vguest *g, unsigned int ring)
{
    struct vg_vq *vq = &g->rings[ring].vq;

    vg_vq_publish(vq);
    wrote(g, &vq->avail->idx, sizeof vq->avail->idx);
}

/* Makes chain 'head' available on 'ring' and kicks. */
void
vg_make_avail(struct vguest *g, unsigned int ring, uint16_t head)
{
    vg_post_avail(g, ring, head);
    vg_publish_avail(g, ring);
    vg_kick(g, ring);
}

uint16_t
vg_used_idx(const struct vguest *g, unsigned int ring)
{
    return vg_vq_used_idx(&g->rings[ring].vq);
}

/* Takes the next used entry of 'ring' into '*e', if there is one. */
static bool
take_used(struct vguest *g, unsigned int ring, struct vring_used_elem *e)
{
    struct vg_vq *vq = &g->rings[ring].vq;

    if (g->packed) {
        uint16_t id, flags;

        if (!vgp_used(&g->rings[ring].pvq, &id, &e->len, &flags)) {
            return false;
        }
        e->id = id;
        return true;
    }
    if (vg_vq_used_idx(vq) == vq->last_used) {
        return false;
    }
    memcpy(e, vg_vq_next_used(vq), sizeof *e);
    vq->last_used++;
    return true;
}

/* Waits up to 'ms' for the switch to give back one more chain on 'ring':
 * true and its used entry, or false. */
bool
vg_wait_used(struct vguest *g, unsigned int ring, int ms,
             struct vring_used_elem *e)
{
    for (int i = 0; ; i++) {
        if (take_used(g, ring, e)) {
            return true;
        }
        if (i >= ms) {
            return false;
        }
        usleep(1000);
    }
}

/* A message that sets up a ring, with 'fd' if nonnull: acknowledged, or,
 * like QEMU, sent without asking for a reply. */
static void
ring_message(struct vguest *g, uint32_t request, const void *payload,
             uint32_t size, const int *fd)
{
    if (g->like_qemu) {
        vg_conn_send(&g->conn, request, VHOST_USER_VERSION, payload, size, fd,
                     fd ? 1 : 0);
    } else {
        vg_conn_must_ack(&g->conn, request, payload, size, fd, fd ? 1 : 0);
    }
}

/* Sets up vring 'index' at its place in the layout, started, and enabled
 * unless 'g->like_qemu' (then vg_set_up() enables every ring after). */
void
vg_set_up_ring(struct vguest *g, unsigned int index)
{
    struct vg_ring *r = &g->rings[index];
    struct vhost_user_vring_addr addr = {
        .index = index,
        .desc_user_addr = (uintptr_t) vg_ptr(g, VG_RING_GPA(index),
                                             16 * VG_RING_SIZE),
        .avail_user_addr = (uintptr_t) vg_ptr(g, avail_gpa(index), 6),
        .used_user_addr = (uintptr_t) vg_ptr(g, used_gpa(index), 6),
    };
    uint64_t idx = index;
    static const uint8_t zero[0x3000];
    uint32_t base = 0;

    vg_write(g, VG_RING_GPA(index), zero, sizeof zero);
    if (g->packed) {
        /* Used descriptors go into the ring itself; the device's event
         * area is the switch's too. */
        vg_switch_may_write(g, VG_RING_GPA(index), 16 * VG_RING_SIZE);
        vg_switch_may_write(g, used_gpa(index),
                            sizeof(struct vring_packed_event));
        if (!vgp_init(&r->pvq, &g->layout, VG_RING_SIZE, VG_RING_GPA(index),
                      avail_gpa(index), used_gpa(index))) {
            vg_fail(g, "test bug: packed ring %u", index);
        }
        /* Position 0 of the lap whose wrap counters are 1, both halves. */
        base = VIRTQ_PACKED_WRAP | (uint32_t) VIRTQ_PACKED_WRAP << 16;
    } else {
        vg_switch_may_write(g, used_gpa(index), 0x1000);
        attach_ring(g, index);
    }

    r->kick = eventfd(0, EFD_CLOEXEC);
    r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->kick < 0 || r->call < 0) {
        vg_fail(g, "eventfd: %s", strerror(errno));
    }
    ring_message(g, VHOST_USER_SET_VRING_NUM,
                 &(struct vhost_user_vring_state) { index, VG_RING_SIZE },
                 sizeof(struct vhost_user_vring_state), NULL);
    ring_message(g, VHOST_USER_SET_VRING_BASE,
                 &(struct vhost_user_vring_state) { index, base },
                 sizeof(struct vhost_user_vring_state), NULL);
    ring_message(g, VHOST_USER_SET_VRING_ADDR, &addr, sizeof addr, NULL);
    ring_message(g, VHOST_USER_SET_VRING_CALL, &idx, 8, &r->call);
    ring_message(g, VHOST_USER_SET_VRING_KICK, &idx, 8, &r->kick);
    if (!g->like_qemu) {
        vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, index, 1);
    }
    r->set_up = true;
}

/* Negotiation, memory and 'n_pairs' queue pairs, as a guest driver brings
 * a port up. */
void
vg_set_up(struct vguest *g, int n_pairs, uint64_t extra_features)
{
    if (n_pairs < 1 || n_pairs > VG_MAX_PAIRS) {
        vg_fail(g, "test bug: %d queue pairs", n_pairs);
    }
    g->n_pairs = n_pairs;
    g->packed = extra_features & (1ull << VIRTIO_F_RING_PACKED);
    vg_negotiate(g, extra_features);
    vg_set_up_memory(g);
    for (int i = 0; i < 2 * n_pairs; i++) {
        vg_set_up_ring(g, i);
    }
    for (int i = 0; g->like_qemu && i < 2 * n_pairs; i++) {
        vg_conn_send(&g->conn, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_VERSION,
                     &(struct vhost_user_vring_state) { i, 1 },
                     sizeof(struct vhost_user_vring_state), NULL, 0);
    }
}

/* Stops vring 'index' and starts it again where it stopped, as a front-end
 * does when it resets a queue. */
void
vg_restart_ring(struct vguest *g, unsigned int index)
{
    struct vg_ring *r = &g->rings[index];
    struct vhost_user_vring_state st = { .index = index };
    struct vhost_user_msg reply;
    uint64_t idx = index;
    int fd = eventfd(0, EFD_CLOEXEC);

    vg_conn_send(&g->conn, VHOST_USER_GET_VRING_BASE, VHOST_USER_VERSION, &st,
                 sizeof st, NULL, 0);
    if (vg_conn_read_answer(&g->conn, &reply) || reply.size != sizeof st) {
        vg_fail(g, "no answer to GET_VRING_BASE");
    }
    memcpy(&st, &reply.payload, sizeof st);
    if (g->packed) {
        uint32_t pos = r->pvq.next_avail | (r->pvq.avail_wrap
                                            ? VIRTQ_PACKED_WRAP : 0);

        /* Every descriptor made available is used by now (the switch
         * gives each back before it stops the ring), so both halves say
         * where the next one goes. */
        if (st.num != (pos | pos << 16)) {
            vg_fail(g, "GET_VRING_BASE says 0x%"PRIx32", the guest's next "
                    "position is 0x%"PRIx32, st.num, pos);
        }
    } else if (st.num != r->vq.avail_idx) {
        vg_fail(g, "GET_VRING_BASE says %"PRIu32", the guest made %"PRIu16
                " available", st.num, r->vq.avail_idx);
    }
    if (!g->packed) {
        vg_set_avail_idx(g, index, r->vq.avail_idx);
    }
    vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_BASE, index, st.num);
    close(r->kick);
    r->kick = fd;
    vg_conn_must_ack(&g->conn, VHOST_USER_SET_VRING_KICK, &idx, 8, &fd, 1);
}

/* The slot (0 to VG_SLOTS - 1) for the next buffer of 'ring', a ring of
 * pair 'pair': each pair has 16 of each kind. */
static unsigned int
next_slot(struct vguest *g, unsigned int ring)
{
    return (ring / 2) * 16 + g->rings[ring].next_slot++ % 16;
}

/* Posts a receive buffer on pair 'pair''s RX ring. */
void
vg_post_rx_buffer(struct vguest *g, unsigned int pair)
{
    unsigned int ring = 2 * pair;
    unsigned int slot = next_slot(g, ring);

    vg_switch_may_write(g, VG_RX_BUF(slot), 2048);
    g->rings[ring].outstanding++;
    if (g->packed) {
        packed_add1(g, ring, VG_SLOT_DESC + slot, VG_RX_BUF(slot), 2048,
                    VRING_DESC_F_WRITE);
        return;
    }
    vg_set_desc(g, ring, VG_SLOT_DESC + slot, VG_RX_BUF(slot), 2048,
                VRING_DESC_F_WRITE, 0);
    vg_make_avail(g, ring, VG_SLOT_DESC + slot);
}

static void
make_probe(const struct vguest *g, uint8_t *frame, unsigned int seq)
{
    memset(frame, 0, VG_HDR_LEN + VG_PROBE_LEN);
    memcpy(frame + VG_HDR_LEN, g->probe_mac, 6);
    memcpy(frame + VG_HDR_LEN + 6, g->own_mac, 6);
    frame[VG_HDR_LEN + 12] = 0x88;      /* Local experimental ethertype. */
    frame[VG_HDR_LEN + 13] = 0xb5;
    memcpy(frame + VG_HDR_LEN + 14, "vhostmq probe", 13);
    memcpy(frame + VG_HDR_LEN + 28, &seq, sizeof seq);
}

/* Transmits probe frame 'seq' on pair 'pair'. */
void
vg_send_probe(struct vguest *g, unsigned int pair, unsigned int seq)
{
    uint8_t frame[VG_HDR_LEN + VG_PROBE_LEN];
    unsigned int ring = 2 * pair + 1;
    unsigned int slot = next_slot(g, ring);

    make_probe(g, frame, seq);
    vg_write(g, VG_TX_BUF(slot), frame, sizeof frame);
    if (g->packed) {
        packed_add1(g, ring, VG_SLOT_DESC + slot, VG_TX_BUF(slot),
                    sizeof frame, 0);
        return;
    }
    vg_set_desc(g, ring, VG_SLOT_DESC + slot, VG_TX_BUF(slot), sizeof frame,
                0, 0);
    vg_make_avail(g, ring, VG_SLOT_DESC + slot);
}

/* Waits up to 'ms' for the switch to take the frame last sent on
 * 'pair'. */
bool
vg_wait_probe_taken(struct vguest *g, unsigned int pair, int ms)
{
    struct vring_used_elem e;

    return vg_wait_used(g, 2 * pair + 1, ms, &e);
}

/* Sends a probe on pair 'pair', with a receive buffer posted on every RX
 * ring (the switch picks the queue it sends on), and waits up to 'ms' for
 * it to come back. */
void
vg_probe_round_trip(struct vguest *g, unsigned int pair, int ms,
                    const char *when)
{
    uint8_t want[VG_HDR_LEN + VG_PROBE_LEN];
    unsigned int seq = ++g->probe_seq;
    struct vring_used_elem e;

    for (int p = 0; p < g->n_pairs; p++) {
        if (!g->rings[2 * p].outstanding) {
            vg_post_rx_buffer(g, p);
        }
    }
    vg_send_probe(g, pair, seq);
    if (!vg_wait_probe_taken(g, pair, ms)) {
        vg_fail(g, "%s: the switch did not take the probe frame", when);
    }
    make_probe(g, want, seq);
    for (int waited = 0; waited <= ms; waited++) {
        for (int p = 0; p < g->n_pairs; p++) {
            unsigned int slot;
            const uint8_t *got;

            if (!take_used(g, 2 * p, &e)) {
                continue;
            }
            g->rings[2 * p].outstanding--;
            slot = e.id - VG_SLOT_DESC;
            if (e.id < VG_SLOT_DESC || slot >= VG_SLOTS
                || e.len != sizeof want) {
                vg_fail(g, "%s: odd used entry back (id %"PRIu32", %"PRIu32
                        " bytes)", when, e.id, e.len);
            }
            got = vg_ptr(g, VG_RX_BUF(slot), 2048);
            if (memcmp(got + VG_HDR_LEN, want + VG_HDR_LEN, VG_PROBE_LEN)) {
                vg_fail(g, "%s: wrong frame back", when);
            }
            vg_check_memory(g, when);
            return;
        }
        usleep(1000);
    }
    vg_fail(g, "%s: the probe frame did not come back", when);
}
