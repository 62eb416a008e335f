/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest-ring: a guest's memory (memfd regions, guest-physical addresses,
 * allocation) and the driver side of its split virtqueues. */

#define _GNU_SOURCE
#include "vguest-ring.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Sets up 'n_regions' memfds of 'region_size' bytes each, named 'name',
 * contiguous in guest-physical space from 'gpa_base'.  The memfds are
 * sparse: only what is touched takes memory.  Returns 0 or an errno
 * value. */
int
vg_mem_init(struct vg_mem *m, const char *name, int n_regions,
            uint64_t gpa_base, uint64_t region_size)
{
    memset(m, 0, sizeof *m);
    if (n_regions < 1 || n_regions > VG_MEM_MAX_REGIONS) {
        return EINVAL;
    }
    for (int i = 0; i < n_regions; i++) {
        struct vg_mem_region *r = &m->regions[i];

        r->fd = memfd_create(name, MFD_CLOEXEC);
        if (r->fd < 0 || ftruncate(r->fd, region_size)) {
            return errno;
        }
        r->hva = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      r->fd, 0);
        if (r->hva == MAP_FAILED) {
            return errno;
        }
        r->gpa = gpa_base + i * region_size;
        r->size = region_size;
        m->n_regions++;
    }
    m->gpa_base = gpa_base;
    m->size = region_size * n_regions;
    m->alloc_next = gpa_base;
    return 0;
}

/* Adds a region of guest memory that the caller mapped, at 'hva', from
 * 'fd' (the caller unmaps and closes them), at guest-physical 'gpa': for a
 * layout of the caller's own, with holes.  'm' starts zeroed. */
void
vg_mem_add_view(struct vg_mem *m, int fd, uint8_t *hva, uint64_t gpa,
                uint64_t size)
{
    struct vg_mem_region *r = &m->regions[m->n_regions++];

    r->fd = fd;
    r->hva = hva;
    r->gpa = gpa;
    r->size = size;
    r->borrowed = true;
    m->size += size;
}

void
vg_mem_destroy(struct vg_mem *m)
{
    for (int i = 0; i < m->n_regions; i++) {
        if (!m->regions[i].borrowed) {
            munmap(m->regions[i].hva, m->regions[i].size);
            close(m->regions[i].fd);
        }
    }
    memset(m, 0, sizeof *m);
}

/* The region that holds 'gpa', or NULL. */
const struct vg_mem_region *
vg_mem_find(const struct vg_mem *m, uint64_t gpa)
{
    for (int i = 0; i < m->n_regions; i++) {
        const struct vg_mem_region *r = &m->regions[i];

        if (gpa >= r->gpa && gpa < r->gpa + r->size) {
            return r;
        }
    }
    return NULL;
}

/* Where 'gpa' is mapped here, or NULL if it is outside guest memory. */
uint8_t *
vg_mem_ptr(const struct vg_mem *m, uint64_t gpa)
{
    const struct vg_mem_region *r = vg_mem_find(m, gpa);

    return r ? r->hva + (gpa - r->gpa) : NULL;
}

/* Copies 'len' bytes between guest memory at 'gpa' and 'buf' (into the
 * guest if 'to_guest'), across region boundaries.  Returns false if part
 * of it is outside guest memory. */
bool
vg_mem_copy(const struct vg_mem *m, uint64_t gpa, void *buf, size_t len,
            bool to_guest)
{
    uint8_t *p = buf;

    while (len) {
        const struct vg_mem_region *r = vg_mem_find(m, gpa);
        uint8_t *h;
        size_t chunk;

        if (!r) {
            return false;
        }
        h = r->hva + (gpa - r->gpa);
        chunk = r->gpa + r->size - gpa;
        if (chunk > len) {
            chunk = len;
        }
        if (to_guest) {
            memcpy(h, p, chunk);
        } else {
            memcpy(p, h, chunk);
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
    return true;
}

/* Allocates 'size' bytes aligned to 'align' (a power of 2) into '*gpa'.
 * With 'contiguous', the block does not cross a region boundary (rings
 * must not: the back-end needs them contiguous); buffers may.  Returns
 * false if guest memory is used up. */
bool
vg_mem_alloc(struct vg_mem *m, uint64_t size, uint64_t align,
             bool contiguous, uint64_t *gpa)
{
    uint64_t p = (m->alloc_next + align - 1) & ~(align - 1);

    if (contiguous) {
        for (int i = 0; i < m->n_regions; i++) {
            const struct vg_mem_region *r = &m->regions[i];

            if (p < r->gpa + r->size && p + size > r->gpa + r->size) {
                p = r->gpa + r->size;
            }
        }
    }
    if (p + size > m->gpa_base + m->size) {
        return false;
    }
    m->alloc_next = p + size;
    *gpa = p;
    return true;
}

/* Fills 'table' with every region of 'm' and 'fds' with their memfds, as
 * SET_MEM_TABLE sends them.  Returns the payload's size. */
uint32_t
vg_mem_table(const struct vg_mem *m, struct vhost_user_mem_table *table,
             int *fds)
{
    memset(table, 0, sizeof *table);
    table->nregions = m->n_regions;
    for (int i = 0; i < m->n_regions; i++) {
        table->regions[i].guest_phys_addr = m->regions[i].gpa;
        table->regions[i].memory_size = m->regions[i].size;
        table->regions[i].userspace_addr = (uintptr_t) m->regions[i].hva;
        table->regions[i].mmap_offset = 0;
        fds[i] = m->regions[i].fd;
    }
    return 8 + m->n_regions * sizeof table->regions[0];
}

/* Sets up 'vq' for a ring of 'size' entries (up to VG_VQ_MAX_SIZE) at the
 * given places of 'm' (each part within one region), without writing guest
 * memory, and with no descriptor on the free list: a guest that keeps each
 * descriptor for one buffer for good uses them by index; one that chains
 * them as it goes calls vg_vq_init_free_list().  Returns false if 'size' is
 * too big or a part is outside guest memory. */
bool
vg_vq_attach(struct vg_vq *vq, const struct vg_mem *m, uint16_t size,
             uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa)
{
    memset(vq, 0, sizeof *vq);
    if (size > VG_VQ_MAX_SIZE) {
        return false;
    }
    vq->size = size;
    vq->desc_gpa = desc_gpa;
    vq->avail_gpa = avail_gpa;
    vq->used_gpa = used_gpa;
    vq->desc = (void *) vg_mem_ptr(m, desc_gpa);
    vq->avail = (void *) vg_mem_ptr(m, avail_gpa);
    vq->used = (void *) vg_mem_ptr(m, used_gpa);
    return vq->desc && vq->avail && vq->used;
}

/* vg_vq_attach(), and the ring's memory cleared: an empty ring. */
bool
vg_vq_init(struct vg_vq *vq, const struct vg_mem *m, uint16_t size,
           uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa)
{
    if (!vg_vq_attach(vq, m, size, desc_gpa, avail_gpa, used_gpa)) {
        return false;
    }
    memset(vq->desc, 0, 16 * size);
    memset(vq->avail, 0, 6 + 2 * size);
    memset(vq->used, 0, 6 + 8 * size);
    return true;
}

/* Puts every descriptor of 'vq' on its free list, chained by 'next' as a
 * Linux driver chains them. */
void
vg_vq_init_free_list(struct vg_vq *vq)
{
    for (int i = 0; i < vq->size; i++) {
        vq->desc[i].next = i + 1;
    }
    vq->free_head = 0;
    vq->n_free = vq->size;
}

void
vg_vq_destroy(struct vg_vq *vq)
{
    free(vq->ind_gpa);
    memset(vq, 0, sizeof *vq);
}

/* Takes 'n' (at least 1) descriptors off the free list, chained, into
 * 'ids'; returns the head, or -1 if fewer are free. */
int
vg_vq_get_descs(struct vg_vq *vq, int n, uint16_t *ids)
{
    if (n < 1 || vq->n_free < n) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        ids[i] = vq->free_head;
        vq->free_head = vq->desc[vq->free_head].next;
    }
    vq->n_free -= n;
    return ids[0];
}

/* Puts the chain that starts at 'head' back on the free list. */
void
vg_vq_put_chain(struct vg_vq *vq, uint16_t head)
{
    uint16_t id = head;
    int n = 1;

    while (vq->desc[id].flags & VRING_DESC_F_NEXT) {
        id = vq->desc[id].next;
        n++;
    }
    vq->desc[id].next = vq->free_head;
    vq->free_head = head;
    vq->n_free += n;
}

/* Writes descriptor 'i' of 'vq'. */
void
vg_vq_set_desc(struct vg_vq *vq, uint16_t i, uint64_t addr, uint32_t len,
               uint16_t flags, uint16_t next)
{
    vq->desc[i].addr = addr;
    vq->desc[i].len = len;
    vq->desc[i].flags = flags;
    vq->desc[i].next = next;
}

/* Puts chain 'head' into the next avail entry of 'vq', without making it
 * visible to the device yet: vg_vq_publish() does, for all entries put so
 * far.  A head out of range goes into the ring as it is, for tests of how
 * the device takes it. */
void
vg_vq_post(struct vg_vq *vq, uint16_t head)
{
    if (head < vq->size) {
        vq->posted[head] = true;
    }
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    vq->avail_idx++;
}

/* Makes what vg_vq_post() put into the avail ring visible to the
 * device. */
void
vg_vq_publish(struct vg_vq *vq)
{
    __atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
}

/* Makes chain 'head' available (no kick: that is the caller's). */
void
vg_vq_make_avail(struct vg_vq *vq, uint16_t head)
{
    vg_vq_post(vq, head);
    vg_vq_publish(vq);
}

/* Adds a buffer made of the 'n' pieces (gpas[i], lens[i]), each with
 * 'flags', as one chain, and makes it available (only posts it if 'vq' has
 * 'hold'): with 'indirect' and more than one piece through an indirect
 * table (one per head, allocated from 'm' the first time the head is
 * used), otherwise directly.  Returns the head, or VG_VQ_FULL,
 * VG_VQ_NO_MEMORY or VG_VQ_POSTED. */
int
vg_vq_add(struct vg_vq *vq, struct vg_mem *m, const uint64_t *gpas,
          const uint32_t *lens, int n, uint16_t flags, bool indirect)
{
    uint16_t ids[VG_VQ_MAX_INDIRECT];
    int head;

    if (n < 1 || n > VG_VQ_MAX_INDIRECT) {
        return VG_VQ_FULL;
    }
    if (indirect && n > 1) {
        struct vring_desc table[VG_VQ_MAX_INDIRECT];
        uint64_t table_gpa;

        head = vg_vq_get_descs(vq, 1, ids);
        if (head < 0) {
            return VG_VQ_FULL;
        }
        if (!vq->ind_gpa) {
            vq->ind_gpa = calloc(vq->size, sizeof *vq->ind_gpa);
            if (!vq->ind_gpa) {
                return VG_VQ_NO_MEMORY;
            }
        }
        if (!vq->ind_gpa[head]
            && !vg_mem_alloc(m, VG_VQ_MAX_INDIRECT * 16, 16, true,
                             &vq->ind_gpa[head])) {
            return VG_VQ_NO_MEMORY;
        }
        table_gpa = vq->ind_gpa[head];
        for (int i = 0; i < n; i++) {
            table[i].addr = gpas[i];
            table[i].len = lens[i];
            table[i].flags = flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0);
            table[i].next = i + 1;
        }
        if (!vg_mem_copy(m, table_gpa, table, n * sizeof table[0], true)) {
            return VG_VQ_NO_MEMORY;
        }
        vq->desc[head].addr = table_gpa;
        vq->desc[head].len = n * sizeof table[0];
        vq->desc[head].flags = VRING_DESC_F_INDIRECT;
    } else {
        head = vg_vq_get_descs(vq, n, ids);
        if (head < 0) {
            return VG_VQ_FULL;
        }
        for (int i = 0; i < n; i++) {
            struct vring_desc *d = &vq->desc[ids[i]];

            d->addr = gpas[i];
            d->len = lens[i];
            d->flags = flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0);
            if (i + 1 < n) {
                d->next = ids[i + 1];
            }
        }
    }
    if (vq->posted[head]) {
        return VG_VQ_POSTED;
    }
    if (vq->hold) {
        vg_vq_post(vq, head);
    } else {
        vg_vq_make_avail(vq, head);
    }
    return head;
}

/* The device's used index, read as a driver reads it. */
uint16_t
vg_vq_used_idx(const struct vg_vq *vq)
{
    return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
}

/* The used entry the driver reads next (valid once the used index has
 * gone past 'last_used'). */
struct vring_used_elem *
vg_vq_next_used(const struct vg_vq *vq)
{
    return &vq->used->ring[vq->last_used & (vq->size - 1)];
}

/* Whether 'id', from a used entry, names a head that is out with the
 * device, as a guest driver checks before it trusts the entry; if so, the
 * head is no longer out. */
bool
vg_vq_take_head(struct vg_vq *vq, uint32_t id)
{
    if (id >= vq->size || !vq->posted[id]) {
        return false;
    }
    vq->posted[id] = false;
    return true;
}

/* Checks a used ring entry as a guest driver does before it trusts it:
 * its id must be a head that is out with the device.  Anything else (an
 * id used twice, as two threads writing one ring at once would produce, or
 * out of range) ends the run: the ring's state cannot be trusted after.
 * 'name' and 'index' say which guest and vring, for the message. */
void
vg_vq_check_used(const char *name, int index, struct vg_vq *vq, uint32_t id)
{
    if (!vg_vq_take_head(vq, id)) {
        printf("FAIL: %s vring %d: used entry %u has id %u, %s: a Linux "
               "guest would mark the device broken\n", name, index,
               (unsigned int) vq->last_used, id,
               id >= vq->size ? "out of range"
               : "not a head out with the device (used twice?)");
        printf("FAIL: 1 check(s) failed\n");
        fflush(stdout);
        exit(1);
    }
}
