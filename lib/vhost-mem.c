/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Guest memory: the front-end's regions mapped, guest addresses
 * translated, and a region whose file shrinks contained. */

#include "vhost-mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_SHRINK
#define F_SEAL_SHRINK 0x0002
#endif

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
    int slot;                   /* In the SIGBUS registry, or -1. */
};

/* The SIGBUS registry.
 *
 * A slot describes one live mapping, [start, end) with its page size
 * 'align'.  Control threads claim, fill and empty slots under
 * 'guard_mutex'; the signal handler only reads them, without a lock: each
 * slot is a sequence lock ('seq' odd while a writer changes it), and the
 * handler uses a slot only if 'seq' was even and unchanged around its
 * reads.  A mapping leaves the registry before it is unmapped.  Slots at
 * 'guard_hwm' and beyond were never used. */
struct guard_slot {
    unsigned int seq;
    bool faulted;               /* Set by the handler. */
    uintptr_t start;            /* 'end' 0: empty. */
    uintptr_t end;
    uintptr_t align;
};

static struct guard_slot guard_slots[VHOST_MEM_GUARD_SLOTS];
static unsigned int guard_hwm;
static pthread_mutex_t guard_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static struct sigaction guard_old_action;   /* What the handler replaced. */
static int guard_fault_fd = -1;

/* Hands a SIGBUS the registry does not explain to whatever handled it
 * before; with none, to the default action (the process dies as it would
 * have without the registry). */
static void
guard_chain(int sig, siginfo_t *si, void *ctx)
{
    const struct sigaction *old = &guard_old_action;

    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, ctx);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* A fault repeats once the handler returns, now with the default
     * action; a SIGBUS sent by kill() is raised again (pending until the
     * handler returns). */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
guard_handler(int sig, siginfo_t *si, void *ctx)
{
    uintptr_t addr = (uintptr_t) si->si_addr;
    int saved_errno = errno;
    unsigned int n;

    if (si->si_code <= 0) {
        /* Sent, not a fault: not ours. */
        guard_chain(sig, si, ctx);
        return;
    }
    n = __atomic_load_n(&guard_hwm, __ATOMIC_ACQUIRE);
    for (unsigned int i = 0; i < n; i++) {
        struct guard_slot *s = &guard_slots[i];
        unsigned int seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        uintptr_t start, end, align, page, len;

        if (seq & 1) {
            continue;
        }
        start = __atomic_load_n(&s->start, __ATOMIC_RELAXED);
        end = __atomic_load_n(&s->end, __ATOMIC_RELAXED);
        align = __atomic_load_n(&s->align, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq
            || addr < start || addr >= end) {
            continue;
        }
        /* Zero pages in place of the page that is gone: the access is
         * retried and completes.  (mmap() is async-signal-safe in
         * practice: a system call.) */
        page = addr & ~(align - 1);
        len = end - page < align ? end - page : align;
        if (mmap((void *) page, len, PROT_READ | PROT_WRITE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            == MAP_FAILED) {
            break;
        }
        __atomic_store_n(&s->faulted, true, __ATOMIC_RELEASE);
        if (guard_fault_fd >= 0) {
            uint64_t one = 1;

            if (write(guard_fault_fd, &one, sizeof one) < 0) {
                /* Nothing to do: the flag is set. */
            }
        }
        errno = saved_errno;
        return;
    }
    errno = saved_errno;
    guard_chain(sig, si, ctx);
}

static void
guard_init(void)
{
    struct sigaction sa;

    guard_fault_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, NULL, &guard_old_action);
    sigaction(SIGBUS, &sa, NULL);
}

/* Registers [base, base + len) with page size 'align': returns its slot,
 * or -1 if the registry is full. */
static int
guard_register(void *base, size_t len, uint64_t align)
{
    struct guard_slot *s = NULL;
    unsigned int i;

    pthread_once(&guard_once, guard_init);
    pthread_mutex_lock(&guard_mutex);
    for (i = 0; i < guard_hwm; i++) {
        if (!guard_slots[i].end) {
            s = &guard_slots[i];
            break;
        }
    }
    if (!s && guard_hwm < VHOST_MEM_GUARD_SLOTS) {
        s = &guard_slots[guard_hwm];
        i = guard_hwm;
    }
    if (s) {
        __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(&s->faulted, false, __ATOMIC_RELAXED);
        __atomic_store_n(&s->start, (uintptr_t) base, __ATOMIC_RELAXED);
        __atomic_store_n(&s->end, (uintptr_t) base + len, __ATOMIC_RELAXED);
        __atomic_store_n(&s->align, (uintptr_t) align, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
        if (i == guard_hwm) {
            __atomic_store_n(&guard_hwm, guard_hwm + 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&guard_mutex);
    return s ? (int) i : -1;
}

static void
guard_unregister(int slot)
{
    struct guard_slot *s;

    if (slot < 0) {
        return;
    }
    s = &guard_slots[slot];
    pthread_mutex_lock(&guard_mutex);
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&s->start, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->end, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&guard_mutex);
}

int
vhost_mem_fault_fd(void)
{
    pthread_once(&guard_once, guard_init);
    return guard_fault_fd;
}

bool
vhost_mem_take_faults(void)
{
    uint64_t n;

    return (vhost_mem_fault_fd() >= 0
            && read(guard_fault_fd, &n, sizeof n) == sizeof n && n > 0);
}

bool
vhost_mem_faulted(const struct vhost_mem *mem, unsigned int *region)
{
    for (unsigned int i = 0; mem && i < mem->n_regions; i++) {
        int slot = mem->regions[i].mapping->slot;

        if (slot >= 0
            && __atomic_load_n(&guard_slots[slot].faulted, __ATOMIC_ACQUIRE)) {
            *region = i;
            return true;
        }
    }
    return false;
}

const char *
vhost_mem_error_name(enum vhost_mem_error error)
{
    switch (error) {
    case VHOST_MEM_OK: return "ok";
    case VHOST_MEM_FD_TOO_SMALL: return "fd smaller than the region";
    case VHOST_MEM_MMAP_FAILED: return "mmap failed";
    case VHOST_MEM_NO_MEMORY: return "out of memory";
    case VHOST_MEM_TOO_MANY: return "too many memory regions";
    case VHOST_MEM_OVERLAP: return "region overlaps another";
    case VHOST_MEM_NOT_FOUND: return "no such region";
    case VHOST_MEM_BAD_FD: return "bad fd";
    case VHOST_MEM_DUPLICATE: return "region already mapped";
    case VHOST_MEM_BAD_FILE: return "fd is not a file on tmpfs or hugetlbfs";
    case VHOST_MEM_OVER_LIMIT:
        return "guest memory larger than the port's limit";
    case VHOST_MEM_NO_GUARD_SLOT:
        return "too many unsealed guest memory regions in the switch";
    }
    return "unknown";
}

static void
mapping_unref(struct vhost_mem_mapping *m)
{
    if (m && __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        guard_unregister(m->slot);
        munmap(m->base, m->len);
        free(m);
    }
}

static void
mapping_ref(struct vhost_mem_mapping *m)
{
    __atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED);
}

/* The page size of mappings of the file 'st' describes: the system's, or
 * on hugetlbfs the huge page size, which it reports as the block size. */
static uint64_t
file_page_size(const struct stat *st)
{
    uint64_t page = sysconf(_SC_PAGESIZE);

    if (st->st_blksize > 0 && !(st->st_blksize & (st->st_blksize - 1))
        && (uint64_t) st->st_blksize > page) {
        page = st->st_blksize;
    }
    return page;
}

/* Where and how much of its file region 'src' maps: from its mmap_offset
 * rounded down to a page, to its end rounded up.  Checks the file and
 * stores its page size in '*align'. */
static enum vhost_mem_error
plan_region(const struct vhost_user_mem_region *src, int fd,
            uint64_t *offset, uint64_t *len, uint64_t *align, bool *sealed)
{
    struct statfs sfs;
    struct stat st;
    uint64_t end;
    int seals;

    if (fstat(fd, &st) || fstatfs(fd, &sfs)) {
        return VHOST_MEM_BAD_FD;
    }
    /* Character devices and the like report no size, files on disk would
     * make the data path wait for I/O. */
    if (!S_ISREG(st.st_mode)
        || (sfs.f_type != TMPFS_MAGIC && sfs.f_type != HUGETLBFS_MAGIC)) {
        return VHOST_MEM_BAD_FILE;
    }
    /* The wire codec made sure offset + size does not wrap.  A file (or
     * memfd) shorter than the region would fault on access; refuse it. */
    end = src->mmap_offset + src->memory_size;
    if ((uint64_t) st.st_size < end) {
        return VHOST_MEM_FD_TOO_SMALL;
    }
    *align = file_page_size(&st);
    *offset = src->mmap_offset & ~(*align - 1);
    /* hugetlbfs needs the length to be a multiple of its page size. */
    *len = (end - *offset + *align - 1) & ~(*align - 1);
    if (*len > SIZE_MAX) {
        return VHOST_MEM_OVER_LIMIT;
    }
    seals = fcntl(fd, F_GET_SEALS);
    *sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
    return VHOST_MEM_OK;
}

/* Maps 'fd' for region 'src' into 'dst', if that maps at most 'budget'
 * bytes.  Closes 'fd'. */
static enum vhost_mem_error
map_region(const struct vhost_user_mem_region *src, int fd, uint64_t budget,
           struct vhost_mem_region *dst)
{
    uint64_t offset, len, align;
    enum vhost_mem_error error;
    struct vhost_mem_mapping *m;
    bool sealed;
    void *base;
    int slot;

    error = plan_region(src, fd, &offset, &len, &align, &sealed);
    if (!error && len > budget) {
        error = VHOST_MEM_OVER_LIMIT;
    }
    if (error) {
        close(fd);
        return error;
    }

    base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
    close(fd);
    if (base == MAP_FAILED) {
        return VHOST_MEM_MMAP_FAILED;
    }
    slot = guard_register(base, len, align);
    if (slot < 0 && !sealed) {
        munmap(base, len);
        return VHOST_MEM_NO_GUARD_SLOT;
    }
    tsan_guest_memory(base, len);
    m = malloc(sizeof *m);
    if (!m) {
        guard_unregister(slot);
        munmap(base, len);
        return VHOST_MEM_NO_MEMORY;
    }
    m->base = base;
    m->len = len;
    m->refcount = 1;
    m->slot = slot;

    dst->gpa = src->guest_phys_addr;
    dst->size = src->memory_size;
    dst->qva = src->userspace_addr;
    dst->mmap_offset = src->mmap_offset;
    dst->hva = (uint8_t *) base + (src->mmap_offset - offset);
    dst->mapping = m;
    return VHOST_MEM_OK;
}

enum vhost_mem_error
vhost_mem_from_table(struct vhost_user_msg *msg, uint64_t max_bytes,
                     struct vhost_mem **memp)
{
    const struct vhost_user_mem_table *table = &msg->payload.mem;
    struct vhost_mem *mem = calloc(1, sizeof *mem);
    enum vhost_mem_error error = VHOST_MEM_OK;
    uint32_t i;

    *memp = NULL;
    if (!mem) {
        return VHOST_MEM_NO_MEMORY;
    }
    for (i = 0; i < table->nregions && i < (uint32_t) msg->n_fds; i++) {
        error = map_region(&table->regions[i], msg->fds[i],
                           max_bytes - vhost_mem_mapped_bytes(mem),
                           &mem->regions[i]);
        msg->fds[i] = -1;
        if (error) {
            break;
        }
        mem->n_regions++;
    }
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

int
vhost_mem_find_region(const struct vhost_mem *mem,
                      const struct vhost_user_mem_region *src,
                      bool match_offset)
{
    for (unsigned int i = 0; mem && i < mem->n_regions; i++) {
        const struct vhost_mem_region *r = &mem->regions[i];

        if (r->gpa == src->guest_phys_addr && r->size == src->memory_size
            && r->qva == src->userspace_addr
            && (!match_offset || r->mmap_offset == src->mmap_offset)) {
            return i;
        }
    }
    return -1;
}

enum vhost_mem_error
vhost_mem_add_region(const struct vhost_mem *old, struct vhost_user_msg *msg,
                     uint64_t max_bytes, struct vhost_mem **memp)
{
    uint64_t mapped = vhost_mem_mapped_bytes(old);
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

    if (vhost_mem_find_region(old, src, true) >= 0) {
        close(fd);
        return VHOST_MEM_DUPLICATE;
    }
    for (unsigned int i = 0; old && i < old->n_regions; i++) {
        const struct vhost_mem_region *r = &old->regions[i];

        if (vhost_user_ranges_overlap(r->gpa, r->size, src->guest_phys_addr,
                                      src->memory_size)
            || vhost_user_ranges_overlap(r->qva, r->size,
                                         src->userspace_addr,
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
        return VHOST_MEM_NO_MEMORY;
    }
    error = map_region(src, fd, mapped < max_bytes ? max_bytes - mapped : 0,
                       &mem->regions[mem->n_regions]);
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
    int i = vhost_mem_find_region(old, src, false);
    struct vhost_mem *mem;

    *memp = NULL;
    if (i < 0) {
        return VHOST_MEM_NOT_FOUND;
    }
    mem = copy_table(old);
    if (!mem) {
        return VHOST_MEM_NO_MEMORY;
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
        total += mem->regions[i].mapping->len;
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

/* vhost_mem_gpa_range_to_hva() when its cursor missed. */
uint8_t *
vhost_mem_gpa_range_to_hva__(const struct vhost_mem *mem,
                             struct vhost_mem_cursor *cursor, uint64_t gpa,
                             uint64_t len)
{
    uint64_t avail;
    uint8_t *p = vhost_mem_gpa_to_hva(mem, cursor, gpa, &avail);

    return p && len <= avail ? p : NULL;
}
