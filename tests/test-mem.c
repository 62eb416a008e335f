/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of guest memory mapping: what is mapped, the per-device
 * limit, which files are taken, and the SIGBUS registry that contains a
 * file shrinking under its mapping. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "vhost-mem.h"
#include "vhost-user-wire.h"

#define MiB (1ull << 20)
#define QVA0 0x7f0000000000ull  /* Front-end addresses: never touched. */

static int
make_memfd(uint64_t size, unsigned int flags)
{
    int fd = memfd_create("test-mem", MFD_CLOEXEC | flags);

    CHECK(fd >= 0);
    CHECK(!ftruncate(fd, size));
    return fd;
}

/* A SET_MEM_TABLE of 'n' regions, region i from fds[i] (dup'ed) at
 * guest-physical i * 1 GiB. */
static void
make_table(struct vhost_user_msg *msg, int n, const int fds[],
           const uint64_t sizes[], const uint64_t offsets[])
{
    memset(msg, 0, sizeof *msg);
    msg->request = VHOST_USER_SET_MEM_TABLE;
    msg->flags = VHOST_USER_VERSION;
    msg->size = 8 + n * sizeof msg->payload.mem.regions[0];
    msg->payload.mem.nregions = n;
    for (int i = 0; i < n; i++) {
        struct vhost_user_mem_region *r = &msg->payload.mem.regions[i];

        r->guest_phys_addr = i * (1ull << 30);
        r->memory_size = sizes[i];
        r->userspace_addr = QVA0 + i * (1ull << 30);
        r->mmap_offset = offsets ? offsets[i] : 0;
        msg->fds[i] = dup(fds[i]);
    }
    msg->n_fds = n;
    CHECK_EQ(vhost_user_validate(msg, 8, NULL), VHOST_USER_WIRE_OK);
}

static void
make_add(struct vhost_user_msg *msg, int fd, uint64_t gpa, uint64_t size)
{
    memset(msg, 0, sizeof *msg);
    msg->request = VHOST_USER_ADD_MEM_REG;
    msg->flags = VHOST_USER_VERSION;
    msg->size = sizeof msg->payload.mem_single;
    msg->payload.mem_single.region.guest_phys_addr = gpa;
    msg->payload.mem_single.region.memory_size = size;
    msg->payload.mem_single.region.userspace_addr = QVA0 + gpa;
    msg->fds[0] = dup(fd);
    msg->n_fds = 1;
}

/* The size of the mapping (VMA) of this process that contains 'p', from
 * /proc/self/maps, or 0. */
static uint64_t
vma_size(const void *p)
{
    uintptr_t addr = (uintptr_t) p;
    unsigned long long start, end;
    uint64_t size = 0;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");

    CHECK(f != NULL);
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%llx-%llx", &start, &end) == 2
            && addr >= start && addr < end) {
            size = end - start;
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return size;
}

/* A region at a large offset of a sparse file maps only the region, from
 * its offset rounded down to a page. */
static void
test_maps_only_the_region(void)
{
    uint64_t size = 2 * 4096, offset = (1ull << 40) + 100;
    int fd = make_memfd(offset + size, 0);
    struct vhost_mem_cursor cursor = { 0 };
    struct vhost_user_msg msg;
    struct vhost_mem *mem;
    uint64_t avail = 0;
    uint8_t *view, *hva;

    make_table(&msg, 1, &fd, &size, &offset);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem), VHOST_MEM_OK);
    if (!mem) {
        close(fd);
        return;
    }
    /* [1 TiB, 1 TiB + 100 + 8192) rounded out: 3 pages. */
    CHECK_EQ(vhost_mem_mapped_bytes(mem), 3 * 4096);
    hva = vhost_mem_gpa_to_hva(mem, &cursor, 0, &avail);
    CHECK(hva != NULL);
    CHECK_EQ(avail, size);
    CHECK_EQ(vma_size(hva), 3 * 4096);

    /* The right bytes of the file. */
    view = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                1ull << 40);
    CHECK(view != MAP_FAILED);
    view[100] = 0x42;
    view[101] = 0x43;
    CHECK_EQ(hva[0], 0x42);
    CHECK_EQ(hva[1], 0x43);
    munmap(view, 4096);
    vhost_mem_free(mem);
    close(fd);
}

/* The limit counts everything a table maps, across SET_MEM_TABLE and
 * ADD_MEM_REG; a region over it is refused before it is mapped. */
static void
test_limit(void)
{
    int fds[2] = { make_memfd(MiB, 0), make_memfd(MiB, 0) };
    uint64_t sizes[2] = { MiB, MiB };
    struct vhost_user_msg msg;
    struct vhost_mem *mem, *mem2;

    make_table(&msg, 2, fds, sizes, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, 2 * MiB - 4096, &mem),
             VHOST_MEM_OVER_LIMIT);
    CHECK(mem == NULL);
    /* The fds of the regions it tried are taken (and closed). */
    CHECK_EQ(msg.fds[0], -1);
    CHECK_EQ(msg.fds[1], -1);
    vhost_user_msg_close_fds(&msg);

    make_table(&msg, 1, fds, sizes, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, MiB, &mem), VHOST_MEM_OK);
    CHECK_EQ(vhost_mem_mapped_bytes(mem), MiB);

    make_add(&msg, fds[1], 1ull << 30, MiB);
    CHECK_EQ(vhost_mem_add_region(mem, &msg, 2 * MiB - 1, &mem2),
             VHOST_MEM_OVER_LIMIT);
    CHECK(mem2 == NULL);
    make_add(&msg, fds[1], 1ull << 30, MiB);
    CHECK_EQ(vhost_mem_add_region(mem, &msg, 2 * MiB, &mem2), VHOST_MEM_OK);
    CHECK_EQ(vhost_mem_mapped_bytes(mem2), 2 * MiB);
    vhost_mem_free(mem2);

    /* A table already over a lowered limit takes no more. */
    make_add(&msg, fds[1], 1ull << 30, 4096);
    CHECK_EQ(vhost_mem_add_region(mem, &msg, MiB / 2, &mem2),
             VHOST_MEM_OVER_LIMIT);
    vhost_mem_free(mem);

    /* 2 TiB of a sparse memfd, against the default limit of the switch. */
    close(fds[1]);
    fds[1] = make_memfd(2ull << 40, 0);
    sizes[0] = 2ull << 40;
    make_table(&msg, 1, &fds[1], sizes, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, 1ull << 40, &mem),
             VHOST_MEM_OVER_LIMIT);
    close(fds[0]);
    close(fds[1]);
}

/* Files on tmpfs and hugetlbfs only; sealed memfds too. */
static void
test_file_kinds(void)
{
    uint64_t size = 4096;
    struct vhost_user_msg msg;
    struct vhost_mem *mem;
    struct statfs sfs;
    char path[] = "test-mem-XXXXXX";
    int fd;

    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    make_table(&msg, 1, &fd, &size, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem),
             VHOST_MEM_BAD_FILE);
    close(fd);

    /* A file in the current directory, unless that is on tmpfs. */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK(!ftruncate(fd, size));
    CHECK(!fstatfs(fd, &sfs));
    if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != HUGETLBFS_MAGIC) {
        make_table(&msg, 1, &fd, &size, NULL);
        CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem),
                 VHOST_MEM_BAD_FILE);
    }
    close(fd);

    /* A memfd sealed as QEMU seals them. */
    fd = make_memfd(size, MFD_ALLOW_SEALING);
    CHECK(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW
                 | F_SEAL_SEAL));
    make_table(&msg, 1, &fd, &size, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem), VHOST_MEM_OK);
    CHECK(ftruncate(fd, 0) && errno == EPERM);
    vhost_mem_free(mem);
    close(fd);
}

/* Valgrind (3.19) cannot resume an access whose SIGBUS handler mapped the
 * page again: it kills the program with SIGSEGV.  The tests of the
 * registry skip there (they run natively and under ASAN). */
static bool
under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");

    if (preload && strstr(preload, "vgpreload")) {
        printf("(skipped under valgrind) ");
        return true;
    }
    return false;
}

/* Reads and writes every page of region 'i' of 'mem' from byte 'from'. */
static uint64_t
touch(struct vhost_mem *mem, unsigned int i, uint64_t from)
{
    volatile uint8_t *p = mem->regions[i].hva;
    uint64_t sum = 0;

    for (uint64_t off = from; off < mem->regions[i].size; off += 4096) {
        sum += p[off];
        p[off] = 7;
        sum += p[off];
    }
    return sum;
}

/* A front-end's memfd shrinks to nothing under a mapping: touching it
 * raises SIGBUS, which the registry turns into zero pages and a flag. */
static void
test_shrink_to_zero(void)
{
    uint64_t size = 64 * 1024;
    int fd = make_memfd(size, 0);
    struct vhost_user_msg msg;
    struct vhost_mem *mem;
    unsigned int region = 99;

    if (under_valgrind()) {
        close(fd);
        return;
    }
    make_table(&msg, 1, &fd, &size, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem), VHOST_MEM_OK);
    CHECK(vhost_mem_fault_fd() >= 0);
    while (vhost_mem_take_faults()) {
        continue;
    }
    CHECK(!vhost_mem_faulted(mem, &region));
    touch(mem, 0, 0);
    CHECK(!vhost_mem_faulted(mem, &region));
    CHECK(!vhost_mem_take_faults());

    CHECK(!ftruncate(fd, 0));
    /* Zeros where the file went, then what this process wrote. */
    CHECK_EQ(touch(mem, 0, 0), 7 * (size / 4096));
    CHECK(vhost_mem_faulted(mem, &region));
    CHECK_EQ(region, 0);
    CHECK(vhost_mem_take_faults());
    CHECK(!vhost_mem_take_faults());
    vhost_mem_free(mem);
    close(fd);
}

/* The second of two regions loses its second half: only that region is
 * flagged, and what is left of the file still reads through. */
static void
test_shrink_to_half(void)
{
    uint64_t sizes[2] = { 64 * 1024, 64 * 1024 };
    int fds[2] = { make_memfd(sizes[0], 0), make_memfd(sizes[1], 0) };
    struct vhost_user_msg msg;
    struct vhost_mem *mem;
    unsigned int region = 99;
    uint8_t *view;

    if (under_valgrind()) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    make_table(&msg, 2, fds, sizes, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem), VHOST_MEM_OK);
    while (vhost_mem_take_faults()) {
        continue;
    }
    view = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
    CHECK(view != MAP_FAILED);
    view[5] = 0x99;

    CHECK(!ftruncate(fds[1], sizes[1] / 2));
    touch(mem, 0, 0);
    CHECK_EQ(mem->regions[1].hva[5], 0x99);
    CHECK(!vhost_mem_faulted(mem, &region));
    touch(mem, 1, sizes[1] / 2);
    CHECK(vhost_mem_faulted(mem, &region));
    CHECK_EQ(region, 1);
    CHECK(vhost_mem_take_faults());
    /* The half that is still there is still shared. */
    mem->regions[1].hva[6] = 0x77;
    CHECK_EQ(view[6], 0x77);
    munmap(view, 4096);
    vhost_mem_free(mem);
    close(fds[0]);
    close(fds[1]);
}

/* A SIGBUS anywhere else still kills the process. */
static void
test_other_sigbus_still_crashes(void)
{
    uint64_t size = 4096;
    int fd = make_memfd(size, 0);
    struct vhost_user_msg msg;
    struct vhost_mem *mem;
    int status = 0;
    pid_t pid;

    /* The handler is in place once a table was mapped. */
    make_table(&msg, 1, &fd, &size, NULL);
    CHECK_EQ(vhost_mem_from_table(&msg, UINT64_MAX, &mem), VHOST_MEM_OK);
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (!pid) {
        int other = memfd_create("not-guest", MFD_CLOEXEC);
        volatile uint8_t *p;

        if (other < 0 || ftruncate(other, 4096)) {
            _exit(0);
        }
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
        if (p == MAP_FAILED || ftruncate(other, 0)) {
            _exit(0);
        }
        p[0] = 1;
        _exit(0);               /* Survived: wrong. */
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    /* Killed by SIGBUS, or (under a sanitizer, whose handler the registry
     * chains to) a non-zero exit. */
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
          || (WIFEXITED(status) && WEXITSTATUS(status)));
    vhost_mem_free(mem);
    close(fd);
}

static const struct unit_test tests[] = {
    { "maps_only_the_region", test_maps_only_the_region },
    { "limit", test_limit },
    { "file_kinds", test_file_kinds },
    { "shrink_to_zero", test_shrink_to_zero },
    { "shrink_to_half", test_shrink_to_half },
    { "other_sigbus_still_crashes", test_other_sigbus_still_crashes },
};

UNIT_SUITE(mem_suite, tests);
