/*
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at:
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

#include "vhost-mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Guest memory is shared with the front-end's process, and ordered
 * through the rings by protocol with it (release/acquire on the avail and
 * used indexes, on both sides).  ThreadSanitizer sees only this process:
 * a buffer the switch writes for the guest on one PMD thread and, after
 * the guest forwarded it, reads on another, looks to it like a race
 * between the two threads.  Its builds are told so for guest memory only.
 * (Accesses to the switch's own memory stay fully checked.) */
#if defined(__SANITIZE_THREAD__)
#define VHOSTMQ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VHOSTMQ_TSAN 1
#endif
#endif

#ifdef VHOSTMQ_TSAN
void AnnotateBenignRaceSized(const char *file, int line,
                             const volatile void *mem, unsigned long size,
                             const char *description);

static void
tsan_guest_memory(void *base, size_t len)
{
    AnnotateBenignRaceSized(__FILE__, __LINE__, base, len,
                            "guest memory, ordered through the rings by the "
                            "front-end's process");
}
#else
static void
tsan_guest_memory(void *base __attribute__((unused)), size_t len
                  __attribute__((unused)))
{
}
#endif

/* One mmap() of a front-end's fd, shared by every table that includes its
 * region. */
struct vhost_mem_mapping {
    void *base;
    size_t len;
    int refcount;               /* Accessed with atomic builtins. */
};

const char *
vhost_mem_error_name(enum vhost_mem_error error)
{
    switch (error) {
    case VHOST_MEM_OK: return "ok";
    case VHOST_MEM_FD_TOO_SMALL: return "fd smaller than the region";
    case VHOST_MEM_MMAP_FAILED: return "mmap failed";
    case VHOST_MEM_TOO_MANY: return "too many memory regions";
    case VHOST_MEM_OVERLAP: return "region overlaps another";
    case VHOST_MEM_NOT_FOUND: return "no such region";
    case VHOST_MEM_BAD_FD: return "bad fd";
    case VHOST_MEM_DUPLICATE: return "region already mapped";
    }
    return "unknown";
}

static void
mapping_unref(struct vhost_mem_mapping *m)
{
    if (m && __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        munmap(m->base, m->len);
        free(m);
    }
}

static void
mapping_ref(struct vhost_mem_mapping *m)
{
    __atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED);
}

/* Maps 'fd' for region 'src' into 'dst'.  Closes 'fd'. */
static enum vhost_mem_error
map_region(const struct vhost_user_mem_region *src, int fd,
           struct vhost_mem_region *dst)
{
    struct vhost_mem_mapping *m;
    struct stat st;
    uint64_t len;
    void *base;

    if (fstat(fd, &st)) {
        close(fd);
        return VHOST_MEM_BAD_FD;
    }
    /* The wire codec made sure offset + size does not wrap.  A file (or
     * memfd) shorter than the region would fault on access; refuse it.
     * Character devices and the like report no size: refuse them too. */
    len = src->mmap_offset + src->memory_size;
    if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size < len
        || len > SIZE_MAX) {
        close(fd);
        return VHOST_MEM_FD_TOO_SMALL;
    }
    /* hugetlbfs needs the length to be a multiple of its page size, which
     * it reports as the block size. */
    if (st.st_blksize > 0 && !(st.st_blksize & (st.st_blksize - 1))) {
        len = (len + st.st_blksize - 1) & ~(uint64_t) (st.st_blksize - 1);
    }

    base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        return VHOST_MEM_MMAP_FAILED;
    }
    tsan_guest_memory(base, len);
    m = malloc(sizeof *m);
    if (!m) {
        munmap(base, len);
        return VHOST_MEM_MMAP_FAILED;
    }
    m->base = base;
    m->len = len;
    m->refcount = 1;

    dst->gpa = src->guest_phys_addr;
    dst->size = src->memory_size;
    dst->qva = src->userspace_addr;
    dst->mmap_offset = src->mmap_offset;
    dst->hva = (uint8_t *) base + src->mmap_offset;
    dst->mapping = m;
    return VHOST_MEM_OK;
}

enum vhost_mem_error
vhost_mem_from_table(struct vhost_user_msg *msg, struct vhost_mem **memp)
{
    const struct vhost_user_mem_table *table = &msg->payload.mem;
    struct vhost_mem *mem = calloc(1, sizeof *mem);
    enum vhost_mem_error error = VHOST_MEM_OK;
    uint32_t i;

    *memp = NULL;
    if (!mem) {
        vhost_user_msg_close_fds(msg);
        return VHOST_MEM_MMAP_FAILED;
    }
    for (i = 0; i < table->nregions && i < (uint32_t) msg->n_fds; i++) {
        error = map_region(&table->regions[i], msg->fds[i],
                           &mem->regions[i]);
        msg->fds[i] = -1;
        if (error) {
            break;
        }
        mem->n_regions++;
    }
    vhost_user_msg_close_fds(msg);
    if (!error && mem->n_regions != table->nregions) {
        error = VHOST_MEM_BAD_FD;
    }
    if (error) {
        vhost_mem_free(mem);
        return error;
    }
    *memp = mem;
    return VHOST_MEM_OK;
}

static bool
overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
    return a <= b + (b_len - 1) && b <= a + (a_len - 1);
}

static struct vhost_mem *
copy_table(const struct vhost_mem *old)
{
    struct vhost_mem *mem = calloc(1, sizeof *mem);

    if (mem && old) {
        *mem = *old;
        for (unsigned int i = 0; i < mem->n_regions; i++) {
            mapping_ref(mem->regions[i].mapping);
        }
    }
    return mem;
}

enum vhost_mem_error
vhost_mem_add_region(const struct vhost_mem *old, struct vhost_user_msg *msg,
                     struct vhost_mem **memp)
{
    const struct vhost_user_mem_region *src = &msg->payload.mem_single.region;
    struct vhost_mem *mem;
    enum vhost_mem_error error;
    int fd;

    *memp = NULL;
    if (msg->n_fds < 1) {
        return VHOST_MEM_BAD_FD;
    }
    fd = msg->fds[0];
    msg->fds[0] = -1;
    vhost_user_msg_close_fds(msg);

    for (unsigned int i = 0; old && i < old->n_regions; i++) {
        const struct vhost_mem_region *r = &old->regions[i];

        if (r->gpa == src->guest_phys_addr && r->size == src->memory_size
            && r->qva == src->userspace_addr
            && r->mmap_offset == src->mmap_offset) {
            close(fd);
            return VHOST_MEM_DUPLICATE;
        }
        if (overlaps(r->gpa, r->size, src->guest_phys_addr, src->memory_size)
            || overlaps(r->qva, r->size, src->userspace_addr,
                        src->memory_size)) {
            close(fd);
            return VHOST_MEM_OVERLAP;
        }
    }
    if (old && old->n_regions >= VHOST_MEM_MAX_SLOTS) {
        close(fd);
        return VHOST_MEM_TOO_MANY;
    }
    mem = copy_table(old);
    if (!mem) {
        close(fd);
        return VHOST_MEM_MMAP_FAILED;
    }
    error = map_region(src, fd, &mem->regions[mem->n_regions]);
    if (error) {
        vhost_mem_free(mem);
        return error;
    }
    mem->n_regions++;
    *memp = mem;
    return VHOST_MEM_OK;
}

enum vhost_mem_error
vhost_mem_remove_region(const struct vhost_mem *old,
                        const struct vhost_user_mem_region *src,
                        struct vhost_mem **memp)
{
    struct vhost_mem *mem;
    unsigned int i;

    *memp = NULL;
    for (i = 0; old && i < old->n_regions; i++) {
        const struct vhost_mem_region *r = &old->regions[i];

        if (r->gpa == src->guest_phys_addr && r->size == src->memory_size
            && r->qva == src->userspace_addr) {
            break;
        }
    }
    if (!old || i == old->n_regions) {
        return VHOST_MEM_NOT_FOUND;
    }
    mem = copy_table(old);
    if (!mem) {
        return VHOST_MEM_MMAP_FAILED;
    }
    mapping_unref(mem->regions[i].mapping);
    memmove(&mem->regions[i], &mem->regions[i + 1],
            (mem->n_regions - i - 1) * sizeof mem->regions[0]);
    mem->n_regions--;
    *memp = mem;
    return VHOST_MEM_OK;
}

bool
vhost_mem_same_table(const struct vhost_mem *mem,
                     const struct vhost_user_msg *msg)
{
    const struct vhost_user_mem_table *table = &msg->payload.mem;

    if (!mem || mem->n_regions != table->nregions) {
        return false;
    }
    for (uint32_t i = 0; i < table->nregions; i++) {
        const struct vhost_user_mem_region *a = &table->regions[i];
        const struct vhost_mem_region *b = &mem->regions[i];

        if (a->guest_phys_addr != b->gpa || a->memory_size != b->size
            || a->userspace_addr != b->qva
            || a->mmap_offset != b->mmap_offset) {
            return false;
        }
    }
    return true;
}

void
vhost_mem_free(struct vhost_mem *mem)
{
    if (mem) {
        for (unsigned int i = 0; i < mem->n_regions; i++) {
            mapping_unref(mem->regions[i].mapping);
        }
        free(mem);
    }
}

uint64_t
vhost_mem_mapped_bytes(const struct vhost_mem *mem)
{
    uint64_t total = 0;

    for (unsigned int i = 0; mem && i < mem->n_regions; i++) {
        total += mem->regions[i].size;
    }
    return total;
}

void *
vhost_mem_qva_to_hva(const struct vhost_mem *mem, uint64_t qva, uint64_t len)
{
    for (unsigned int i = 0; mem && i < mem->n_regions; i++) {
        const struct vhost_mem_region *r = &mem->regions[i];
        uint64_t off = qva - r->qva;

        if (off < r->size && len <= r->size - off) {
            return r->hva + off;
        }
    }
    return NULL;
}
