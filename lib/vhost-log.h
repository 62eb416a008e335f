/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The dirty-page log of live migration: the front-end's bitmap of guest
 * pages the switch wrote. */

#ifndef VHOST_LOG_H
#define VHOST_LOG_H 1

/* While a guest migrates, its front-end must learn of every guest page the
 * switch writes into (received frames, virtio-net headers, used rings): it
 * shares a bitmap with the back-end (SET_LOG_BASE), one bit per 4 KiB page
 * of guest-physical memory, page p at bit p % 8 of byte p / 8, and copies
 * again every page whose bit is set (clearing it) until the guest stops.
 *
 * A 'struct vhost_log' is one such mapping.  It is immutable once built
 * except for its bits: any number of data-path threads mark pages at once
 * with atomic ORs.  Replacing it (a new SET_LOG_BASE) is the device's
 * business: it takes the rings from the data path first (see
 * vhost-device.c), so a log is freed only once no thread can mark it.
 *
 * Ordering.  A page is marked after the bytes are written into it, and the
 * OR has release semantics: a front-end that clears a bit (an atomic
 * exchange) and then copies the page sees the bytes written before the
 * mark that set it.  Nothing orders the marks against the guest's view of
 * the ring: the front-end syncs the log for the last time only once the
 * rings stopped (GET_VRING_BASE, which returns only after the data path let
 * go of them), and every mark is done by then.  (On x86 the release costs
 * nothing over a relaxed OR: both are one locked instruction.)
 *
 * No Open vSwitch dependency. */

#include <stdbool.h>
#include <stdint.h>

struct vhost_mem;

#define VHOST_LOG_PAGE_SHIFT 12
#define VHOST_LOG_PAGE (1ull << VHOST_LOG_PAGE_SHIFT)

/* The biggest log accepted: it covers 32 TiB of guest-physical space. */
#define VHOST_LOG_MAX_SIZE (1ull << 30)

struct vhost_log {
    uint8_t *bits;              /* The bitmap, 'size' bytes. */
    uint64_t size;
    uint64_t n_pages;           /* 8 * size. */
    void *map;                  /* What munmap() takes. */
    uint64_t map_len;
    uint64_t beyond;            /* Marks of pages past the log (dropped),
                                 * atomic: the log did not cover guest
                                 * memory as it grew. */
};

/* Why a log was refused. */
enum vhost_log_map_error {
    VHOST_LOG_MAP_OK = 0,
    VHOST_LOG_MAP_NO_FD,        /* No fd in the message. */
    VHOST_LOG_MAP_ZERO_SIZE,    /* An empty log. */
    VHOST_LOG_MAP_TOO_BIG,      /* Over VHOST_LOG_MAX_SIZE. */
    VHOST_LOG_MAP_OVERFLOW,     /* offset + size wraps. */
    VHOST_LOG_MAP_BAD_FD,       /* fstat() failed or not a regular file
                                 * or shared memory. */
    VHOST_LOG_MAP_FD_TOO_SMALL, /* The file ends before offset + size. */
    VHOST_LOG_MAP_UNSEALED,     /* The file may shrink (no F_SEAL_SHRINK):
                                 * a mark past its new end would fault. */
    VHOST_LOG_MAP_TOO_SMALL,    /* Too few bits for guest memory. */
    VHOST_LOG_MAP_MMAP_FAILED,  /* mmap() refused. */
    VHOST_LOG_MAP_NO_MEMORY,
};

const char *vhost_log_map_error_name(enum vhost_log_map_error);

/* The bytes of log that guest memory 'mem' (may be null) needs: a bit for
 * each page up to its highest guest-physical address. */
uint64_t vhost_log_size_for(const struct vhost_mem *mem);

/* Maps 'size' bytes of the file 'fd' from 'offset' as a dirty log big
 * enough for 'mem' (may be null: no memory yet).  Does not take 'fd' (the
 * mapping stays once it is closed).  On success stores the log in '*logp'
 * (free with vhost_log_free()). */
enum vhost_log_map_error vhost_log_map(int fd, uint64_t size,
                                       uint64_t offset,
                                       const struct vhost_mem *mem,
                                       struct vhost_log **logp);

void vhost_log_free(struct vhost_log *);

/* Marks every page of guest-physical [gpa, gpa + len) dirty, from any
 * thread.  Pages past the log are counted in 'beyond', not marked. */
void vhost_log_mark__(struct vhost_log *, uint64_t gpa, uint64_t len);

static inline void
vhost_log_mark(struct vhost_log *log, uint64_t gpa, uint64_t len)
{
    /* The common case: one page, in the log. */
    uint64_t page = gpa >> VHOST_LOG_PAGE_SHIFT;

    if (len && ((gpa ^ (gpa + len - 1)) >> VHOST_LOG_PAGE_SHIFT) == 0
        && page < log->n_pages) {
        __atomic_fetch_or(&log->bits[page / 8], 1u << (page % 8),
                          __ATOMIC_RELEASE);
    } else {
        vhost_log_mark__(log, gpa, len);
    }
}

/* Whether the page holding guest-physical 'gpa' is marked (for tests). */
static inline bool
vhost_log_is_marked(const struct vhost_log *log, uint64_t gpa)
{
    uint64_t page = gpa >> VHOST_LOG_PAGE_SHIFT;

    return (page < log->n_pages
            && __atomic_load_n(&log->bits[page / 8], __ATOMIC_RELAXED)
               & (1u << (page % 8)));
}

#endif /* vhost-log.h */
