/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest-ring: a guest's memory and the driver side of its split
 * virtqueues, without a socket. */

#ifndef VGUEST_RING_H
#define VGUEST_RING_H 1

/* The part of the scripted guest (vguest.h) that needs no vhost-user
 * connection: test tools that drive the core directly link it alone.
 *
 * 'struct vg_mem' is guest memory as a front-end lays it out: one memfd a
 * region, the regions contiguous in guest-physical space, each mapped here
 * at its own address, with a bump allocator in guest-physical space.
 *
 * 'struct vg_vq' is a driver's view of one split virtqueue in that memory:
 * descriptor table with a free list, avail ring, used ring, and per head
 * whether the chain is out with the device, so that every used entry can
 * be checked as a Linux guest checks it.
 *
 * Functions here report failures by their return value, and the callers
 * decide what a failure means to them; but vg_vq_check_used() ends the
 * run, as a guest driver stops trusting a ring. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost-user-wire.h"
#include "virtq.h"

#define VG_MEM_MAX_REGIONS 8

struct vg_mem_region {
    int fd;
    uint8_t *hva;
    uint64_t gpa;
    uint64_t size;
    bool borrowed;              /* The caller's mapping and fd. */
};

struct vg_mem {
    struct vg_mem_region regions[VG_MEM_MAX_REGIONS];
    int n_regions;
    uint64_t gpa_base;
    uint64_t size;              /* All regions together. */
    uint64_t alloc_next;        /* Bump allocator, guest-physical. */
};

int vg_mem_init(struct vg_mem *, const char *name, int n_regions,
                uint64_t gpa_base, uint64_t region_size);
void vg_mem_add_view(struct vg_mem *, int fd, uint8_t *hva, uint64_t gpa,
                     uint64_t size);
void vg_mem_destroy(struct vg_mem *);
const struct vg_mem_region *vg_mem_find(const struct vg_mem *, uint64_t gpa);
uint8_t *vg_mem_ptr(const struct vg_mem *, uint64_t gpa);
bool vg_mem_copy(const struct vg_mem *, uint64_t gpa, void *buf, size_t len,
                 bool to_guest);
bool vg_mem_alloc(struct vg_mem *, uint64_t size, uint64_t align,
                  bool contiguous, uint64_t *gpa);
uint32_t vg_mem_table(const struct vg_mem *, struct vhost_user_mem_table *,
                      int *fds);

/* Entries a vg_vq has at most. */
#define VG_VQ_MAX_SIZE 4096

/* A driver-side split virtqueue.  It takes nothing from the heap until it
 * first builds an indirect table, so that a benchmark's heap is laid out
 * as it was without it. */
struct vg_vq {
    uint16_t size;              /* A power of 2, up to VG_VQ_MAX_SIZE. */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t avail_idx;         /* Next avail entry. */
    uint16_t last_used;         /* Next used entry to read. */
    uint16_t free_head;         /* Free descriptors, chained by 'next'. */
    uint16_t n_free;
    bool posted[VG_VQ_MAX_SIZE]; /* Per head: available, not used yet. */
    uint64_t *ind_gpa;          /* Per head: its indirect table, if any
                                 * (allocated on first use). */
    bool hold;                  /* vg_vq_add() posts without publishing,
                                 * for a burst the device sees at once
                                 * (vg_vq_publish()). */
};

/* Descriptors an indirect table of vg_vq_add() holds at most. */
#define VG_VQ_MAX_INDIRECT 64

bool vg_vq_init(struct vg_vq *, const struct vg_mem *, uint16_t size,
                uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa);
bool vg_vq_attach(struct vg_vq *, const struct vg_mem *, uint16_t size,
                  uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa);
void vg_vq_init_free_list(struct vg_vq *);
void vg_vq_destroy(struct vg_vq *);
void vg_vq_set_desc(struct vg_vq *, uint16_t i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next);
int vg_vq_get_descs(struct vg_vq *, int n, uint16_t *ids);
void vg_vq_put_chain(struct vg_vq *, uint16_t head);

/* What vg_vq_add() returns when it adds nothing. */
#define VG_VQ_FULL        (-1)  /* Not enough free descriptors. */
#define VG_VQ_NO_MEMORY   (-2)  /* No guest memory for an indirect table. */
#define VG_VQ_POSTED      (-3)  /* The head is out already (a bug). */

int vg_vq_add(struct vg_vq *, struct vg_mem *, const uint64_t *gpas,
              const uint32_t *lens, int n, uint16_t flags, bool indirect);
void vg_vq_post(struct vg_vq *, uint16_t head);
void vg_vq_publish(struct vg_vq *);
void vg_vq_make_avail(struct vg_vq *, uint16_t head);
uint16_t vg_vq_used_idx(const struct vg_vq *);
struct vring_used_elem *vg_vq_next_used(const struct vg_vq *);
bool vg_vq_take_head(struct vg_vq *, uint32_t id);
void vg_vq_check_used(const char *name, int index, struct vg_vq *,
                      uint32_t id);

#endif /* vguest-ring.h */
