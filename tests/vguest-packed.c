/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest-packed: the driver side of a packed virtqueue. */

#include "vguest-packed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
vgp_init(struct vgp_vq *q, const struct vg_mem *m, uint16_t size,
         uint64_t ring_gpa, uint64_t driver_gpa, uint64_t device_gpa)
{
    memset(q, 0, sizeof *q);
    if (!size || size > VGP_MAX_SIZE) {
        return false;
    }
    q->size = size;
    q->ring_gpa = ring_gpa;
    q->driver_gpa = driver_gpa;
    q->device_gpa = device_gpa;
    q->ring = (struct vring_packed_desc *) vg_mem_ptr(m, ring_gpa);
    q->driver_event = (struct vring_packed_event *) vg_mem_ptr(m,
                                                               driver_gpa);
    q->device_event = (struct vring_packed_event *) vg_mem_ptr(m,
                                                               device_gpa);
    if (!q->ring || !q->driver_event || !q->device_event) {
        return false;
    }
    /* The ring starts zeroed: nothing available in the first lap, whose
     * wrap counters are 1. */
    memset(q->ring, 0, (size_t) size * sizeof *q->ring);
    memset(q->driver_event, 0, sizeof *q->driver_event);
    memset(q->device_event, 0, sizeof *q->device_event);
    q->avail_wrap = q->used_wrap = true;
    q->n_free = size;
    return true;
}

static uint16_t
avail_bits(bool wrap)
{
    return wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

static int
free_id(const struct vgp_vq *q)
{
    for (int id = 0; id < q->size; id++) {
        if (!q->out[id]) {
            return id;
        }
    }
    return -1;
}

int
vgp_add(struct vgp_vq *q, const struct vg_mem *m, const uint64_t *gpas,
        const uint32_t *lens, const uint16_t *flags, int n,
        uint64_t table_gpa)
{
    int id = free_id(q);

    return (id >= 0 && vgp_add_id(q, m, id, gpas, lens, flags, n, table_gpa)
            ? id : -1);
}

bool
vgp_add_id(struct vgp_vq *q, const struct vg_mem *m, uint16_t id,
           const uint64_t *gpas, const uint32_t *lens, const uint16_t *flags,
           int n, uint64_t table_gpa)
{
    int n_descs = table_gpa ? 1 : n;

    if (id >= q->size || q->out[id] || n < 1 || n_descs > q->n_free) {
        return false;
    }
    if (table_gpa) {
        struct vring_packed_desc *t;

        t = (struct vring_packed_desc *) vg_mem_ptr(m, table_gpa);
        for (int i = 0; i < n; i++) {
            t[i].addr = gpas[i];
            t[i].len = lens[i];
            t[i].id = 0;
            t[i].flags = flags[i];
        }
    }

    uint16_t first = q->next_avail;
    uint16_t first_flags = 0;
    for (int i = 0; i < n_descs; i++) {
        struct vring_packed_desc *d = &q->ring[q->next_avail];
        uint16_t f = avail_bits(q->avail_wrap);

        if (table_gpa) {
            d->addr = table_gpa;
            d->len = n * sizeof *d;
            f |= VRING_DESC_F_INDIRECT;
        } else {
            d->addr = gpas[i];
            d->len = lens[i];
            f |= flags[i];
            if (i < n_descs - 1) {
                f |= VRING_DESC_F_NEXT;
            }
        }
        /* Only the last descriptor's id counts: the others get one the
         * device must not use. */
        d->id = i == n_descs - 1 ? id : 0xdead;
        if (i) {
            __atomic_store_n(&d->flags, f, __ATOMIC_RELAXED);
        } else {
            first_flags = f;
        }
        if (++q->next_avail == q->size) {
            q->next_avail = 0;
            q->avail_wrap = !q->avail_wrap;
        }
    }
    q->out[id] = true;
    q->chain_len[id] = n_descs;
    q->n_free -= n_descs;
    __atomic_store_n(&q->ring[first].flags, first_flags, __ATOMIC_RELEASE);
    return true;
}

int
vgp_add1(struct vgp_vq *q, const struct vg_mem *m, uint64_t gpa,
         uint32_t len, uint16_t flags)
{
    return vgp_add(q, m, &gpa, &len, &flags, 1, 0);
}

bool
vgp_used(struct vgp_vq *q, uint16_t *id, uint32_t *len, uint16_t *flags)
{
    struct vring_packed_desc *d = &q->ring[q->next_used];
    uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
    bool used = f & VRING_PACKED_DESC_F_USED;
    bool avail = f & VRING_PACKED_DESC_F_AVAIL;

    if (used != q->used_wrap || avail != q->used_wrap) {
        return false;
    }
    *id = d->id;
    *len = d->len;
    *flags = f;
    if (*id >= q->size || !q->out[*id]) {
        fprintf(stderr, "vguest-packed: used id %u at %u is not out\n",
                *id, q->next_used);
        exit(1);
    }
    q->out[*id] = false;
    q->n_free += q->chain_len[*id];
    q->next_used += q->chain_len[*id];
    if (q->next_used >= q->size) {
        q->next_used -= q->size;
        q->used_wrap = !q->used_wrap;
    }
    return true;
}

void
vgp_set_event(struct vgp_vq *q, uint16_t flags, uint16_t off, bool wrap)
{
    __atomic_store_n(&q->driver_event->off_wrap,
                     (uint16_t) (off | (wrap ? 0x8000 : 0)),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&q->driver_event->flags, flags, __ATOMIC_RELEASE);
}
