/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest-packed: the driver side of a packed virtqueue (virtio 1.1), in
 * guest memory laid out by vguest-ring.h. */

#ifndef VGUEST_PACKED_H
#define VGUEST_PACKED_H 1

/* A driver's view of one packed virtqueue, as Linux's virtio_ring drives
 * one: descriptors made available in ring order, a chain's buffer id in its
 * last descriptor, its first descriptor's flags written last; used
 * descriptors read in ring order, each skipping its chain's length, every
 * id checked to be one the driver has out.  Buffer ids are 0 to size - 1. */

#include <stdbool.h>
#include <stdint.h>

#include "vguest-ring.h"
#include "virtio.h"

#define VGP_MAX_SIZE 1024

struct vgp_vq {
    uint16_t size;              /* Any, up to VGP_MAX_SIZE. */
    uint64_t ring_gpa, driver_gpa, device_gpa;
    struct vring_packed_desc *ring;
    struct vring_packed_event *driver_event;    /* Written here. */
    struct vring_packed_event *device_event;    /* Read here. */
    uint16_t next_avail;        /* Where the next chain goes. */
    bool avail_wrap;
    uint16_t next_used;         /* Where the next used descriptor is. */
    bool used_wrap;
    uint16_t n_free;            /* Descriptors not out with the device. */
    uint16_t chain_len[VGP_MAX_SIZE];   /* Per id out: its descriptors. */
    bool out[VGP_MAX_SIZE];             /* Per id: out with the device. */
};

bool vgp_init(struct vgp_vq *, const struct vg_mem *, uint16_t size,
              uint64_t ring_gpa, uint64_t driver_gpa, uint64_t device_gpa);

/* Makes a chain of 'n' descriptors available, descriptor i the buffer of
 * 'lens[i]' bytes at 'gpas[i]' with 'flags[i]' (VRING_DESC_F_WRITE or 0;
 * NEXT is added here; any other bit given is written as is, for tests of
 * what the device refuses).  With 'table_gpa', instead, one descriptor
 * with VRING_DESC_F_INDIRECT names a table of them written there.  Returns
 * the chain's buffer id, or -1 if the ring has no room or no free id. */
int vgp_add(struct vgp_vq *, const struct vg_mem *, const uint64_t *gpas,
            const uint32_t *lens, const uint16_t *flags, int n,
            uint64_t table_gpa);

/* The same with buffer id 'id' (which the driver must not have out), for
 * a driver that keeps each id's buffer for good; returns false if the ring
 * has no room or 'id' is out. */
bool vgp_add_id(struct vgp_vq *, const struct vg_mem *, uint16_t id,
                const uint64_t *gpas, const uint32_t *lens,
                const uint16_t *flags, int n, uint64_t table_gpa);

/* vgp_add() for one buffer. */
int vgp_add1(struct vgp_vq *, const struct vg_mem *, uint64_t gpa,
             uint32_t len, uint16_t flags);

/* Reads the next used descriptor: returns false if there is none yet;
 * else stores its buffer id, length and flags and moves past its chain.
 * A used id the driver does not have out ends the run (a Linux guest
 * marks the device broken: "id N is not a head!"). */
bool vgp_used(struct vgp_vq *, uint16_t *id, uint32_t *len,
              uint16_t *flags);

/* Sets the driver's event suppression: 'flags' (VRING_PACKED_EVENT_*)
 * and, with VRING_PACKED_EVENT_DESC, the ring position and wrap counter
 * whose use it wants an interrupt for. */
void vgp_set_event(struct vgp_vq *, uint16_t flags, uint16_t off, bool wrap);

#endif /* vguest-packed.h */
