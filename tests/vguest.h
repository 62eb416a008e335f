/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest: the scripted guest that the test tools share. */

#ifndef VGUEST_H
#define VGUEST_H 1

/* vguest: a scripted guest and its vhost-user front-end, for test tools
 * that drive a switch port message by message and ring entry by ring entry
 * (tests/vhost-hostile.c, tests/vhost-swarm.c).
 *
 * One 'struct vguest' is one front-end connection with its guest memory: a
 * memfd shared with the switch as two regions with a hole between them in
 * guest-physical space, and up to VG_MAX_PAIRS queue pairs of split rings,
 * or of packed rings if VIRTIO_F_RING_PACKED is among the features
 * vg_set_up() asks for (probes, used entries and ring restarts then go
 * through 'pvq'; the split-only calls below say so).
 * The guest writes its memory only through vg_write(), which keeps a
 * shadow copy, so that vg_check_memory() can tell whether the switch wrote
 * anything it was not given to write.
 *
 * Every call that meets something unexpected prints "FAIL: NAME: ..." and
 * exits 1: these are test tools. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vguest-conn.h"
#include "vguest-packed.h"
#include "vguest-ring.h"
#include "vhost-user-wire.h"
#include "virtq.h"

/* Guest memory layout. */
#define VG_MEM_SIZE       (1 << 20)     /* The memfd. */
#define VG_REGION_A_SIZE  0x80000       /* GPA 0, memfd offset 0. */
#define VG_REGION_B_GPA   0x100000
#define VG_REGION_B_OFF   0x80000
#define VG_REGION_B_SIZE  0x40000
#define VG_RING_GPA(I)    ((uint64_t) (I) * 0x4000)    /* Rings 0 to 7. */
#define VG_RX_BUF(SLOT)   (0x20000 + (uint64_t) (SLOT) * 2048)
#define VG_TX_BUF(SLOT)   (0x40000 + (uint64_t) (SLOT) * 2048)
#define VG_FREE_GPA       0x60000       /* To 0x80000: the caller's. */
#define VG_SLOTS          64            /* Buffers of each kind, 16 a
                                         * pair. */
#define VG_SLOT_DESC      16            /* Descriptor of slot 0; 0 to 15
                                         * are the caller's. */

#define VG_MAX_PAIRS      4
#define VG_RING_SIZE      256
#define VG_HDR_LEN        12            /* VERSION_1. */
#define VG_PROBE_LEN      64

#define VG_ASK (VHOST_USER_VERSION | VHOST_USER_NEED_REPLY)

struct vg_ring {
    unsigned int index;
    struct vg_vq vq;            /* Its layout and indexes: 'avail_idx', the
                                 * guest's next avail index, and
                                 * 'last_used', the used entries the guest
                                 * has looked at. */
    struct vgp_vq pvq;          /* The same for a packed ring: its
                                 * descriptors at VG_RING_GPA, the driver's
                                 * event area 0x1000 after, the device's
                                 * 0x2000 after. */
    int kick;
    int call;
    bool set_up;
    unsigned int next_slot;     /* Of this ring's (pair's) 16 slots. */
    int outstanding;            /* Good receive buffers posted, unused. */
};

struct vguest {
    const char *name;           /* For messages. */
    struct vg_conn conn;        /* Its requests: vg_conn_*(&g->conn). */
    int memfd;
    uint8_t *mem;
    struct vg_mem layout;       /* The two regions, views of 'mem'. */
    uint8_t *shadow;            /* What guest memory must hold... */
    uint8_t *may_write;         /* ...except where these are non-zero. */
    int n_pairs;
    bool packed;                /* VIRTIO_F_RING_PACKED negotiated. */
    bool like_qemu;             /* vg_set_up() brings the rings up as QEMU
                                 * does: every ring set up, without asking
                                 * for replies, then all enabled; not each
                                 * ring set up and enabled, every message
                                 * acknowledged. */
    struct vg_ring rings[2 * VG_MAX_PAIRS];
    unsigned int probe_seq;
    uint8_t probe_mac[6];       /* Probes go to this MAC... */
    uint8_t own_mac[6];         /* ...from this one. */
};

void vg_fail(const struct vguest *, const char *format, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

void vg_init(struct vguest *, const char *name, bool shadow);
void vg_destroy(struct vguest *);

/* Negotiation and memory. */
void vg_negotiate(struct vguest *, uint64_t extra_features);
struct vhost_user_mem_region vg_region(const struct vguest *, uint64_t gpa,
                                       uint64_t size, uint64_t offset);
void vg_send_mem_table(struct vguest *, uint32_t flags,
                       const struct vhost_user_mem_region *, int n,
                       int n_fds);
void vg_set_up_memory(struct vguest *);
void vg_set_up_ring(struct vguest *, unsigned int index);
void vg_set_up(struct vguest *, int n_pairs, uint64_t extra_features);
void vg_restart_ring(struct vguest *, unsigned int index);

/* Guest memory. */
void *vg_ptr(const struct vguest *, uint64_t gpa, uint64_t len);
void vg_write(struct vguest *, uint64_t gpa, const void *data, size_t len);
void vg_switch_may_write(struct vguest *, uint64_t gpa, size_t len);
void vg_check_memory(const struct vguest *, const char *when);

/* Rings.  vg_set_desc() to vg_used_idx() are for split rings only. */
void vg_set_desc(struct vguest *, unsigned int ring, uint16_t i,
                 uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
void vg_set_table_desc(struct vguest *, uint64_t table, uint16_t i,
                       uint64_t addr, uint32_t len, uint16_t flags,
                       uint16_t next);
void vg_set_avail_idx(struct vguest *, unsigned int ring, uint16_t idx);
void vg_post_avail(struct vguest *, unsigned int ring, uint16_t head);
void vg_publish_avail(struct vguest *, unsigned int ring);
void vg_make_avail(struct vguest *, unsigned int ring, uint16_t head);
void vg_kick(struct vguest *, unsigned int ring);
uint16_t vg_used_idx(const struct vguest *, unsigned int ring);
bool vg_wait_used(struct vguest *, unsigned int ring, int ms,
                  struct vring_used_elem *);

/* Probe frames: sent on a pair's TX ring to 'probe_mac', which the test's
 * flows send back to the same port. */
void vg_post_rx_buffer(struct vguest *, unsigned int pair);
void vg_send_probe(struct vguest *, unsigned int pair, unsigned int seq);
bool vg_wait_probe_taken(struct vguest *, unsigned int pair, int ms);
void vg_probe_round_trip(struct vguest *, unsigned int pair, int ms,
                         const char *when);

#endif /* vguest.h */
