/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Guest memory: the front-end's regions mapped, guest addresses
 * translated, and a region whose file shrinks contained. */

#ifndef VHOST_MEM_H
#define VHOST_MEM_H 1

/* Guest memory: the front-end's memory regions mapped into the switch, and
 * translation of guest-physical addresses (in descriptors) and front-end
 * virtual addresses (of the rings) to local pointers.
 *
 * A 'struct vhost_mem' is immutable once built.  A change (SET_MEM_TABLE,
 * ADD_MEM_REG, REM_MEM_REG) builds a new table that shares the mappings of
 * regions that did not change; each mapping is reference counted and
 * unmapped when the last table using it is freed.  Freeing a table that data
 * path threads may still read is the caller's business: it must wait until
 * none of them can hold a pointer into it (RCU or equivalent).
 *
 * Which files are taken: a region's fd must be a regular file on tmpfs or
 * hugetlbfs (a memfd, a file in /dev/shm or /dev/hugepages: what QEMU,
 * DPDK and other front-ends share guest memory with).  A file on a disk
 * filesystem is refused: a PMD thread touching it would wait for disk I/O.
 * Seals are not required (DPDK's memfds and hugetlbfs files have none).
 *
 * Only what a region needs is mapped: from its mmap_offset rounded down to
 * the file's page size (the huge page size on hugetlbfs) to its end, not
 * the file from offset 0.  A table (or a table with an added region) that
 * would map more than the caller's limit in all is refused.
 *
 * A file that shrinks under its mapping (ftruncate() by the front-end, or
 * hugetlbfs or tmpfs out of pages) makes the next access to the missing
 * pages raise SIGBUS.  Every mapping is registered with a process-wide
 * SIGBUS handler (installed with the first mapping, chaining to the one it
 * replaced for any other address) that maps zero pages over the faulting
 * page, so the access completes, and marks the mapping faulted: the switch
 * polls vhost_mem_fault_fd(), finds the table with vhost_mem_faulted() and
 * drops the front-end.  A front-end's fd sealed against shrinking
 * (F_SEAL_SHRINK, as QEMU's memfds are) can still run out of huge pages,
 * so sealed mappings are registered too, but only unsealed ones need a
 * slot of the registry (VHOST_MEM_GUARD_SLOTS): an unsealed region that
 * finds the registry full is refused.
 *
 * No Open vSwitch dependency. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost-user-wire.h"

/* Regions a device may have through ADD_MEM_REG (GET_MAX_MEM_SLOTS). */
#define VHOST_MEM_MAX_SLOTS 32

struct vhost_mem_mapping;

struct vhost_mem_region {
    uint64_t gpa;               /* Guest-physical start. */
    uint64_t size;              /* Bytes. */
    uint64_t qva;               /* Front-end virtual start. */
    uint8_t *hva;               /* Local address of 'gpa'. */
    uint64_t mmap_offset;       /* As the front-end gave it. */
    struct vhost_mem_mapping *mapping;
};

struct vhost_mem {
    unsigned int n_regions;
    struct vhost_mem_region regions[VHOST_MEM_MAX_SLOTS];
};

/* A cursor for translation: a copy of the region hit last, so that a hit
 * costs one subtraction and one comparison.  One per user (per vring),
 * never shared between threads, for one table only: zero it (all zeros: no
 * region yet) before using it with another. */
struct vhost_mem_cursor {
    uint64_t gpa;               /* The region's guest-physical start, */
    uint64_t size;              /* its size (0: none yet), */
    uint8_t *hva;               /* and its local address. */
};

/* Why a region could not be mapped. */
enum vhost_mem_error {
    VHOST_MEM_OK = 0,
    VHOST_MEM_FD_TOO_SMALL,     /* File shorter than offset + size. */
    VHOST_MEM_MMAP_FAILED,      /* mmap() refused. */
    VHOST_MEM_TOO_MANY,         /* More than VHOST_MEM_MAX_SLOTS. */
    VHOST_MEM_OVERLAP,          /* Overlaps an existing region. */
    VHOST_MEM_NOT_FOUND,        /* REM_MEM_REG of an unknown region. */
    VHOST_MEM_BAD_FD,           /* fstat() failed. */
    VHOST_MEM_DUPLICATE,        /* ADD_MEM_REG of a region already there. */
    VHOST_MEM_BAD_FILE,         /* Not a file on tmpfs or hugetlbfs. */
    VHOST_MEM_OVER_LIMIT,       /* The table would map more than allowed. */
    VHOST_MEM_NO_GUARD_SLOT,    /* Unsealed, and the registry is full. */
    VHOST_MEM_NO_MEMORY,        /* The switch ran out of memory. */
};

/* Mappings the SIGBUS registry can watch at once, all devices together. */
#define VHOST_MEM_GUARD_SLOTS 16384

const char *vhost_mem_error_name(enum vhost_mem_error);

/* Builds a table from a validated SET_MEM_TABLE message, mapping one region
 * per fd of 'msg', at most 'max_bytes' in all (VHOST_MEM_OVER_LIMIT).  Takes
 * (and closes, whatever happens) the fds of its regions: each is set to -1
 * in 'msg'; the caller closes any others.  On success stores the table in
 * '*memp'. */
enum vhost_mem_error vhost_mem_from_table(struct vhost_user_msg *msg,
                                          uint64_t max_bytes,
                                          struct vhost_mem **memp);

/* The index in 'mem' (may be null) of the region that 'r' names, matched
 * on guest-physical address, size and front-end address, and on the file
 * offset too if 'match_offset'; -1 if there is none.  ADD_MEM_REG matches
 * the offset (QEMU sends the same region once per queue pair), REM_MEM_REG
 * does not (the spec names a region by its addresses). */
int vhost_mem_find_region(const struct vhost_mem *mem,
                          const struct vhost_user_mem_region *r,
                          bool match_offset);

/* Returns a new table: 'old' (may be null) plus the region of a validated
 * ADD_MEM_REG message, whose fd it takes (as vhost_mem_from_table()), if
 * all of it maps at most
 * 'max_bytes' (VHOST_MEM_OVER_LIMIT).  A region identical to one 'old' has
 * already (QEMU sends the same region once per queue pair) is
 * VHOST_MEM_DUPLICATE: nothing changes. */
enum vhost_mem_error vhost_mem_add_region(const struct vhost_mem *old,
                                          struct vhost_user_msg *msg,
                                          uint64_t max_bytes,
                                          struct vhost_mem **memp);

/* Returns a new table: 'old' less the region REM_MEM_REG names (matched on
 * guest-physical address, size and front-end address).  A region that is
 * not there is VHOST_MEM_NOT_FOUND (QEMU removes a region once per queue
 * pair: the caller may treat that as done). */
enum vhost_mem_error vhost_mem_remove_region(
    const struct vhost_mem *old, const struct vhost_user_mem_region *,
    struct vhost_mem **memp);

/* Whether 'mem' (may be null) and the table of 'msg', a validated
 * SET_MEM_TABLE, describe the same regions (a repeated SET_MEM_TABLE from an
 * old front-end, which then needs no remapping). */
bool vhost_mem_same_table(const struct vhost_mem *mem,
                          const struct vhost_user_msg *msg);

/* Frees 'mem' and unmaps the mappings no other table uses.  Null is
 * ignored. */
void vhost_mem_free(struct vhost_mem *mem);

/* Total bytes of address space 'mem' maps (its regions' sizes, each
 * rounded out to the file's page size). */
uint64_t vhost_mem_mapped_bytes(const struct vhost_mem *mem);

/* Whether the file behind a region of 'mem' shrank under it (a data-path
 * access to it raised SIGBUS, which was contained): if so, stores the
 * index of the first such region in '*region'.  The table's memory then
 * reads as zeros where the file is gone; the front-end must go. */
bool vhost_mem_faulted(const struct vhost_mem *mem, unsigned int *region);

/* An fd (an eventfd) that becomes readable whenever a mapping faulted, for
 * a control thread to poll; -1 if it could not be made.  Also installs the
 * SIGBUS handler if that is not done yet. */
int vhost_mem_fault_fd(void);

/* Consumes what vhost_mem_fault_fd() signalled: true if a mapping faulted
 * since the last call (then check every table with vhost_mem_faulted()). */
bool vhost_mem_take_faults(void);

/* Translates the front-end virtual range [qva, qva + len) to a local
 * pointer, or returns null if it is not entirely inside one region. */
void *vhost_mem_qva_to_hva(const struct vhost_mem *mem, uint64_t qva,
                           uint64_t len);

/* 'p', a pointer into a mapped region, which is never null (a mapping does
 * not start at address 0): saying so lets a caller's test of a
 * translation's result fold into the path that found it. */
static inline uint8_t *
vhost_mem_nonnull(uint8_t *p)
{
    if (!p) {
        __builtin_unreachable();
    }
    return p;
}

/* Translates the guest-physical range [gpa, gpa + len) to a local pointer
 * if it lies in one region; '*avail' gets the number of bytes from 'gpa' to
 * the end of that region (so a range that crosses into the next region can
 * be walked piecewise).  Returns null if 'gpa' is in no region. */
static inline uint8_t *
vhost_mem_gpa_to_hva(const struct vhost_mem *mem,
                     struct vhost_mem_cursor *cursor, uint64_t gpa,
                     uint64_t *avail)
{
    uint64_t off = gpa - cursor->gpa;

    if (__builtin_expect(off < cursor->size, 1)) {
        *avail = cursor->size - off;
        return vhost_mem_nonnull(cursor->hva + off);
    }
    for (unsigned int i = 0; i < mem->n_regions; i++) {
        const struct vhost_mem_region *r = &mem->regions[i];

        if (gpa - r->gpa < r->size) {
            cursor->gpa = r->gpa;
            cursor->size = r->size;
            cursor->hva = r->hva;
            *avail = r->size - (gpa - r->gpa);
            return r->hva + (gpa - r->gpa);
        }
    }
    return NULL;
}

uint8_t *vhost_mem_gpa_range_to_hva__(const struct vhost_mem *,
                                      struct vhost_mem_cursor *,
                                      uint64_t gpa, uint64_t len);

/* Translates the guest-physical range [gpa, gpa + len) to a local pointer
 * if it lies in one region, else returns null.  A hit of 'cursor' is a
 * subtraction and two comparisons, inline; the rest (the region table,
 * which then becomes the cursor) is out of line. */
static inline uint8_t *
vhost_mem_gpa_range_to_hva(const struct vhost_mem *mem,
                           struct vhost_mem_cursor *cursor, uint64_t gpa,
                           uint64_t len)
{
    uint64_t off = gpa - cursor->gpa;

    if (__builtin_expect(off < cursor->size && len <= cursor->size - off,
                         1)) {
        return vhost_mem_nonnull(cursor->hva + off);
    }
    return vhost_mem_gpa_range_to_hva__(mem, cursor, gpa, len);
}

#endif /* vhost-mem.h */
