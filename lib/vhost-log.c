/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The dirty-page log of live migration: mapping and marking. */

#include "vhost-log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost-mem.h"

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_SHRINK
#define F_SEAL_SHRINK 0x0002
#endif

const char *
vhost_log_map_error_name(enum vhost_log_map_error error)
{
    switch (error) {
    case VHOST_LOG_MAP_OK: return "ok";
    case VHOST_LOG_MAP_NO_FD: return "no file descriptor";
    case VHOST_LOG_MAP_ZERO_SIZE: return "log of size 0";
    case VHOST_LOG_MAP_TOO_BIG: return "log bigger than 1 GiB";
    case VHOST_LOG_MAP_OVERFLOW: return "offset + size overflows";
    case VHOST_LOG_MAP_BAD_FD: return "not a file that can be mapped";
    case VHOST_LOG_MAP_FD_TOO_SMALL: return "file shorter than offset + size";
    case VHOST_LOG_MAP_UNSEALED:
        return "file not sealed against shrinking (F_SEAL_SHRINK)";
    case VHOST_LOG_MAP_TOO_SMALL:
        return "log too small for guest memory";
    case VHOST_LOG_MAP_MMAP_FAILED: return "mmap failed";
    case VHOST_LOG_MAP_NO_MEMORY: return "out of memory";
    }
    return "unknown error";
}

uint64_t
vhost_log_size_for(const struct vhost_mem *mem)
{
    uint64_t end = 0;           /* Highest guest-physical address + 1. */

    for (unsigned int i = 0; mem && i < mem->n_regions; i++) {
        uint64_t e = mem->regions[i].gpa + mem->regions[i].size;

        if (e > end) {
            end = e;
        }
    }
    if (!end) {
        return 0;
    }
    uint64_t pages = (end - 1) / VHOST_LOG_PAGE + 1;
    return (pages + 7) / 8;
}

enum vhost_log_map_error
vhost_log_map(int fd, uint64_t size, uint64_t offset,
              const struct vhost_mem *mem, struct vhost_log **logp)
{
    uint64_t page = sysconf(_SC_PAGESIZE);
    uint64_t map_offset, map_len;
    struct vhost_log *log;
    struct stat st;
    void *p;

    *logp = NULL;
    if (fd < 0) {
        return VHOST_LOG_MAP_NO_FD;
    }
    if (!size) {
        return VHOST_LOG_MAP_ZERO_SIZE;
    }
    if (size > VHOST_LOG_MAX_SIZE) {
        return VHOST_LOG_MAP_TOO_BIG;
    }
    if (offset + size < offset) {
        return VHOST_LOG_MAP_OVERFLOW;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        return VHOST_LOG_MAP_BAD_FD;
    }
    if ((uint64_t) st.st_size < offset + size) {
        /* A mapping past the end of the file would fault on the first
         * mark there. */
        return VHOST_LOG_MAP_FD_TOO_SMALL;
    }
    /* The data path writes the log without the SIGBUS containment guest
     * memory has (vhost-mem.c): a file the front-end could shrink under
     * it would crash the switch.  QEMU seals its log's memfd. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        return VHOST_LOG_MAP_UNSEALED;
    }
    if (size < vhost_log_size_for(mem)) {
        return VHOST_LOG_MAP_TOO_SMALL;
    }

    /* mmap() takes a page-aligned offset. */
    map_offset = offset & ~(page - 1);
    map_len = offset - map_offset + size;
    log = calloc(1, sizeof *log);
    if (!log) {
        return VHOST_LOG_MAP_NO_MEMORY;
    }
    p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             map_offset);
    if (p == MAP_FAILED) {
        free(log);
        return VHOST_LOG_MAP_MMAP_FAILED;
    }
    log->map = p;
    log->map_len = map_len;
    log->bits = (uint8_t *) p + (offset - map_offset);
    log->size = size;
    log->n_pages = size * 8;
    *logp = log;
    return VHOST_LOG_MAP_OK;
}

void
vhost_log_free(struct vhost_log *log)
{
    if (log) {
        munmap(log->map, log->map_len);
        free(log);
    }
}

void
vhost_log_mark__(struct vhost_log *log, uint64_t gpa, uint64_t len)
{
    uint64_t first, last;

    if (!len) {
        return;
    }
    first = gpa >> VHOST_LOG_PAGE_SHIFT;
    last = (gpa + len - 1 < gpa ? UINT64_MAX
            : gpa + len - 1) >> VHOST_LOG_PAGE_SHIFT;
    if (last >= log->n_pages) {
        __atomic_fetch_add(&log->beyond, 1, __ATOMIC_RELAXED);
        if (first >= log->n_pages) {
            return;
        }
        last = log->n_pages - 1;
    }

    /* A byte of the bitmap at a time: bits 'first' to 'last' of it. */
    while (first <= last) {
        uint64_t byte = first / 8;
        unsigned int lo = first % 8;
        unsigned int hi = last / 8 == byte ? last % 8 : 7;
        uint8_t mask = (uint8_t) ((0xffu >> (7 - hi)) & (0xffu << lo));

        __atomic_fetch_or(&log->bits[byte], mask, __ATOMIC_RELEASE);
        first = (byte + 1) * 8;
    }
}
