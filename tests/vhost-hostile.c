/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* vhost-hostile: a front-end that breaks the vhost-user protocol, or a
 * guest that breaks the virtio ring rules, on purpose, one way per run, to
 * check that the switch refuses it.
 *
 *   vhost-hostile SOCKET CASE      run one case (see 'cases' and
 *                                  'ring_cases' below)
 *   vhost-hostile --list           print the case names, each with the
 *                                  counter it must move
 *   vhost-hostile SOCKET storm SECONDS
 *                                  stop and start running rings in a loop
 *                                  (see run_storm())
 *   vhost-hostile SOCKET rx-flood SECONDS
 *                                  keep the RX ring full of chains the
 *                                  switch must give back (run_rx_flood())
 *   vhost-hostile SOCKET restarts N
 *                                  N times: connect, send a backlog and
 *                                  close at once (run_restarts())
 *   vhost-hostile SOCKET intruders N
 *                                  N second front-ends connect while one
 *                                  is connected (run_intruders())
 *
 * Protocol cases: each connects to a server port, negotiates as QEMU does
 * up to the point the case needs (with REPLY_ACK, so that the switch can
 * answer every request), then sends one bad message and reads the
 * switch's answer.  The case passes if the switch refuses it the way the
 * case expects: a non-zero REPLY_ACK ("nack"), or the connection closed
 * ("dropped": where the spec leaves no way to report, or the stream's
 * framing is lost).  It fails if the switch accepts the message or answers
 * otherwise.  Prints "ok: CASE: OUTCOME" and exits 0, or "FAIL: ..." and
 * exits 1.
 *
 * Ring cases (see "Hostile guests: rings" below) check from the guest's
 * side what the switch did with the bad ring.
 *
 * What the switch does after (the port works again for a clean front-end,
 * other ports carry traffic throughout, counters and log lines) is for the
 * test that runs this (tests/hostile.at) to check. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vguest.h"
#include "vhost-conn.h"
#include "vhost-user-wire.h"
#include "virtq.h"

#define UNUSED __attribute__((unused))

static struct vguest guest;
static struct vguest *const g = &guest;

/* The cases.  Each sends its bad message; the expectation says how the
 * switch must answer. */
enum expect {
    NACK,                       /* REPLY_ACK with a non-zero value. */
    DROP,                       /* The switch closes the connection. */
    ACCEPT,                     /* Harmless: taken (e.g. extra fds closed). */
};

struct hostile_case {
    const char *name;
    enum expect expect;
    bool mem;                   /* Needs a memory table first. */
    void (*run)(void);
};

static void
c_unknown_request(void)
{
    vg_conn_send(&g->conn, 99, VG_ASK, NULL, 0, NULL, 0);
}

static void
c_request_zero(void)
{
    vg_conn_send(&g->conn, 0, VG_ASK, NULL, 0, NULL, 0);
}

static void
c_bad_version(void)
{
    uint8_t hdr[12];
    uint32_t req = VHOST_USER_GET_FEATURES, flags = 2, size = 0;

    memcpy(hdr, &req, 4);
    memcpy(hdr + 4, &flags, 4);
    memcpy(hdr + 8, &size, 4);
    vg_conn_send_raw(&g->conn, hdr, sizeof hdr);
}

static void
c_oversized(void)
{
    uint8_t hdr[12];
    uint32_t req = VHOST_USER_SET_FEATURES, flags = VG_ASK, size = 1 << 20;

    memcpy(hdr, &req, 4);
    memcpy(hdr + 4, &flags, 4);
    memcpy(hdr + 8, &size, 4);
    vg_conn_send_raw(&g->conn, hdr, sizeof hdr);
}

static void
c_short_payload(void)
{
    uint32_t v = 0;

    vg_conn_send(&g->conn, VHOST_USER_SET_FEATURES, VG_ASK, &v, 4, NULL, 0);
}

static void
c_long_payload(void)
{
    uint64_t v[2] = { 0, 0 };

    vg_conn_send(&g->conn, VHOST_USER_SET_FEATURES, VG_ASK, v, 16, NULL, 0);
}

static void
c_features_not_offered(void)
{
    uint64_t v = 1ull << 63 | 1ull << VIRTIO_F_VERSION_1;

    vg_conn_send(&g->conn, VHOST_USER_SET_FEATURES, VG_ASK, &v, 8, NULL, 0);
}

static void
c_mem_table_no_fd(void)
{
    struct vhost_user_mem_region r = vg_region(g, 0, VG_MEM_SIZE, 0);

    vg_send_mem_table(g, VG_ASK, &r, 1, 0);
}

static void
c_mem_table_extra_fds(void)
{
    struct vhost_user_mem_region r = vg_region(g, 0, VG_MEM_SIZE, 0);

    vg_send_mem_table(g, VG_ASK, &r, 1, 3);
}

static void
c_mem_table_no_regions(void)
{
    vg_send_mem_table(g, VG_ASK, NULL, 0, 0);
}

static void
c_mem_table_too_many(void)
{
    struct vhost_user_mem_region r[VHOST_USER_MAX_MEM_REGIONS];
    struct vhost_user_mem_table table;
    int fds[VHOST_USER_MAX_FDS];

    for (int i = 0; i < VHOST_USER_MAX_MEM_REGIONS; i++) {
        r[i] = vg_region(g, i * 4096ull, 4096, i * 4096ull);
        fds[i] = g->memfd;
    }
    memset(&table, 0, sizeof table);
    memcpy(table.regions, r, sizeof r);
    table.nregions = VHOST_USER_MAX_MEM_REGIONS + 1;     /* Says 9, has 8. */
    vg_conn_send(&g->conn, VHOST_USER_SET_MEM_TABLE, VG_ASK, &table,
                 8 + sizeof r, fds, VHOST_USER_MAX_MEM_REGIONS);
}

static void
c_mem_table_overlap(void)
{
    struct vhost_user_mem_region r[2] = {
        vg_region(g, 0, 65536, 0), vg_region(g, 32768, 65536, 65536),
    };

    vg_send_mem_table(g, VG_ASK, r, 2, 2);
}

static void
c_mem_table_zero_size(void)
{
    struct vhost_user_mem_region r = vg_region(g, 0, 0, 0);

    vg_send_mem_table(g, VG_ASK, &r, 1, 1);
}

static void
c_mem_table_fd_too_small(void)
{
    struct vhost_user_mem_region r = vg_region(g, 0, 4 * VG_MEM_SIZE, 0);

    vg_send_mem_table(g, VG_ASK, &r, 1, 1);
}

static void
c_mem_table_wraps(void)
{
    struct vhost_user_mem_region r = vg_region(g, UINT64_MAX - 4095, 8192, 0);

    vg_send_mem_table(g, VG_ASK, &r, 1, 1);
}

static void
c_vring_index_out_of_range(void)
{
    struct vhost_user_vring_state st = { .index = 1000, .num = 256 };

    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_NUM, VG_ASK, &st, sizeof st,
                 NULL, 0);
}

static void
c_ring_size(uint32_t num)
{
    struct vhost_user_vring_state st = { .index = 0, .num = num };

    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_NUM, VG_ASK, &st, sizeof st,
                 NULL, 0);
}

static void c_ring_size_zero(void) { c_ring_size(0); }
static void c_ring_size_too_big(void) { c_ring_size(65536); }
static void c_ring_size_not_pow2(void) { c_ring_size(100); }

static void
c_kick_two_fds(void)
{
    uint64_t idx = 0;
    int fds[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };

    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_KICK, VG_ASK, &idx, 8, fds, 2);
}

static void
c_kick_before_mem_table(void)
{
    uint64_t idx = 0;
    int fd = eventfd(0, EFD_CLOEXEC);

    vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_NUM, 0, 256);
    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_KICK, VG_ASK, &idx, 8, &fd, 1);
}

/* Sets ring 0 up at the front-end addresses 'desc', 'avail', 'used' (all
 * acked: the switch checks them when the kick starts the ring), then
 * sends the kick. */
static void
start_ring_at(uint64_t desc, uint64_t avail, uint64_t used)
{
    struct vhost_user_vring_addr addr = {
        .index = 0,
        .desc_user_addr = desc,
        .avail_user_addr = avail,
        .used_user_addr = used,
    };
    uint64_t idx = 0;
    int fd = eventfd(0, EFD_CLOEXEC);

    vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_NUM, 0, 256);
    vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_BASE, 0, 0);
    vg_conn_must_ack(&g->conn, VHOST_USER_SET_VRING_ADDR, &addr, sizeof addr,
                     NULL, 0);
    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_KICK, VG_ASK, &idx, 8, &fd, 1);
}

static void
c_ring_outside_memory(void)
{
    uint64_t base = (uintptr_t) g->mem + 2 * VG_MEM_SIZE;

    start_ring_at(base, base + 4096, base + 8192);
}

static void
c_ring_misaligned(void)
{
    uint64_t base = (uintptr_t) g->mem;

    start_ring_at(base + 8, base + 8192 + 1, base + 16384 + 2);
}

static void
c_enable_bad_value(void)
{
    struct vhost_user_vring_state st = { .index = 0, .num = 7 };

    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_ENABLE, VG_ASK, &st, sizeof st,
                 NULL, 0);
}

static void
c_protocol_not_offered(void)
{
    uint64_t v = 1ull << 62;

    vg_conn_send(&g->conn, VHOST_USER_SET_PROTOCOL_FEATURES, VG_ASK, &v, 8,
                 NULL, 0);
}

static void
c_log_base(void)
{
    uint64_t v[2] = { 4096, 0 };
    int fd = g->memfd;

    vg_conn_send(&g->conn, VHOST_USER_SET_LOG_BASE, VG_ASK, v, 16, &fd, 1);
}

/* SET_LOG_BASE with LOG_SHMFD negotiated, a log of 'size' bytes at
 * 'offset' in a file of 'file_size' bytes (no fd if 'file_size' is 0).
 * Owed a reply, the switch can refuse only by dropping the front-end. */
static void
send_log_base(uint64_t size, uint64_t offset, uint64_t file_size)
{
    uint64_t protocol = ((1ull << VHOST_USER_PROTOCOL_F_MQ)
                         | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)
                         | (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
                         | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD));
    uint64_t v[2] = { size, offset };
    int fd = -1;

    vg_conn_must_ack(&g->conn, VHOST_USER_SET_PROTOCOL_FEATURES, &protocol, 8,
                     NULL, 0);
    if (file_size) {
        fd = memfd_create("hostile-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, file_size)
            || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)) {
            vg_fail(g, "memfd: %s", strerror(errno));
        }
    }
    vg_conn_send(&g->conn, VHOST_USER_SET_LOG_BASE, VG_ASK, v, 16, &fd,
                 fd >= 0);
    if (fd >= 0) {
        close(fd);
    }
}

static void
c_log_base_fd_too_small(void)
{
    send_log_base(8192, 0, 4096);
}

static void
c_log_base_huge(void)
{
    send_log_base(1ull << 40, 0, 4096);
}

static void
c_log_base_offset_overflow(void)
{
    send_log_base(4096, UINT64_MAX - 100, 4096);
}

static void
c_log_base_no_fd(void)
{
    send_log_base(4096, 0, 0);
}

static void
c_log_base_unsealed(void)
{
    /* A log file the front-end could shrink under the switch. */
    uint64_t protocol = ((1ull << VHOST_USER_PROTOCOL_F_MQ)
                         | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)
                         | (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
                         | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD));
    uint64_t v[2] = { 4096, 0 };
    int fd = memfd_create("hostile-log", MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, 4096)) {
        vg_fail(g, "memfd: %s", strerror(errno));
    }
    vg_conn_must_ack(&g->conn, VHOST_USER_SET_PROTOCOL_FEATURES, &protocol, 8,
                     NULL, 0);
    vg_conn_send(&g->conn, VHOST_USER_SET_LOG_BASE, VG_ASK, v, 16, &fd, 1);
    close(fd);
}

static void
c_log_base_too_small_for_memory(void)
{
    /* A byte of log covers 32 KiB of guest memory. */
    send_log_base(1, 0, 4096);
}

static void
c_add_mem_reg_overlap(void)
{
    struct vhost_user_mem_single p = {
        .region = vg_region(g, 4096, 65536, 4096),
    };
    int fd = g->memfd;

    vg_conn_send(&g->conn, VHOST_USER_ADD_MEM_REG, VG_ASK, &p, sizeof p, &fd,
                 1);
}

static void
c_reply_flag_on_request(void)
{
    vg_conn_send(&g->conn, VHOST_USER_GET_FEATURES,
                 VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG, NULL, 0, NULL, 0);
}

static void
c_call_with_stray_bits(void)
{
    uint64_t idx = 0x12340000;
    int fd = eventfd(0, EFD_CLOEXEC);

    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_CALL, VG_ASK, &idx, 8, &fd, 1);
}

/* SET_VRING_CALL with a call fd that is no eventfd: the switch would write
 * the guest's notifications into it, and a write into a full pipe or
 * socket, or a file on a slow file system, may block. */
static void
send_call_fd(int fd)
{
    uint64_t idx = 0;

    if (fd < 0) {
        vg_fail(g, "creating the call fd: %s", strerror(errno));
    }
    vg_conn_send(&g->conn, VHOST_USER_SET_VRING_CALL, VG_ASK, &idx, 8, &fd, 1);
    close(fd);
}

static void
c_call_fd_pipe(void)
{
    int p[2];

    if (pipe(p)) {
        vg_fail(g, "pipe: %s", strerror(errno));
    }
    send_call_fd(p[1]);
    close(p[0]);
}

static void
c_call_fd_socket(void)
{
    int s[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s)) {
        vg_fail(g, "socketpair: %s", strerror(errno));
    }
    send_call_fd(s[0]);
    close(s[1]);
}

static void
c_call_fd_regular_file(void)
{
    int fd = open(".", O_TMPFILE | O_RDWR, 0600);

    send_call_fd(fd >= 0 ? fd : dup(g->memfd));
}

/* A sparse memfd of 'size' bytes: costs the guest nothing. */
static int
sparse_memfd(uint64_t size)
{
    int fd = memfd_create("vhost-hostile-sparse", MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, size)) {
        vg_fail(g, "sparse memfd: %s", strerror(errno));
    }
    return fd;
}

/* 2 TiB of guest memory, more than a port maps by default
 * (options:max-guest-memory). */
static void
c_mem_table_2tib(void)
{
    struct vhost_user_mem_region r = vg_region(g, 0, 2ull << 40, 0);
    struct vhost_user_mem_table table;
    int fd = sparse_memfd(2ull << 40);

    memset(&table, 0, sizeof table);
    table.nregions = 1;
    table.regions[0] = r;
    vg_conn_send(&g->conn, VHOST_USER_SET_MEM_TABLE, VG_ASK, &table,
                 8 + sizeof r, &fd, 1);
    close(fd);
}

/* A region of 1 TiB added to the guest's memory: the table would then map
 * more than the limit. */
static void
c_add_mem_reg_over_limit(void)
{
    struct vhost_user_mem_single p = {
        .region = vg_region(g, 1ull << 40, 1ull << 40, 0),
    };
    int fd = sparse_memfd(1ull << 40);

    p.region.userspace_addr = (uintptr_t) g->mem + (1ull << 30);
    vg_conn_send(&g->conn, VHOST_USER_ADD_MEM_REG, VG_ASK, &p, sizeof p, &fd,
                 1);
    close(fd);
}

static void
c_truncated_then_close(void)
{
    uint8_t hdr[6] = { VHOST_USER_GET_FEATURES, 0, 0, 0, 1, 0 };

    vg_conn_send_raw(&g->conn, hdr, sizeof hdr);
    close(g->conn.sock);
    g->conn.sock = -1;
}

static const struct hostile_case cases[] = {
    { "unknown-request", NACK, false, c_unknown_request },
    { "request-zero", NACK, false, c_request_zero },
    { "bad-version", DROP, false, c_bad_version },
    { "oversized-message", DROP, false, c_oversized },
    { "short-payload", NACK, false, c_short_payload },
    { "long-payload", NACK, false, c_long_payload },
    { "reply-flag-on-request", DROP, false, c_reply_flag_on_request },
    { "features-not-offered", NACK, false, c_features_not_offered },
    { "protocol-features-not-offered", NACK, false, c_protocol_not_offered },
    /* SET_LOG_BASE always expects a reply: no way to refuse but to
     * drop. */
    { "log-base-not-offered", DROP, false, c_log_base },
    { "log-base-fd-too-small", DROP, false, c_log_base_fd_too_small },
    { "log-base-huge", DROP, false, c_log_base_huge },
    { "log-base-offset-overflow", DROP, false, c_log_base_offset_overflow },
    { "log-base-no-fd", DROP, false, c_log_base_no_fd },
    { "log-base-unsealed", DROP, false, c_log_base_unsealed },
    { "log-base-too-small-for-memory", DROP, true,
      c_log_base_too_small_for_memory },
    { "mem-table-without-fd", NACK, false, c_mem_table_no_fd },
    /* Descriptors beyond what the request needs are closed. */
    { "mem-table-extra-fds", ACCEPT, false, c_mem_table_extra_fds },
    { "mem-table-no-regions", NACK, false, c_mem_table_no_regions },
    { "mem-table-9-regions", NACK, false, c_mem_table_too_many },
    { "mem-table-overlap", NACK, false, c_mem_table_overlap },
    { "mem-table-zero-size", NACK, false, c_mem_table_zero_size },
    { "mem-table-fd-too-small", NACK, false, c_mem_table_fd_too_small },
    { "mem-table-wraps", NACK, false, c_mem_table_wraps },
    { "add-mem-reg-overlap", NACK, true, c_add_mem_reg_overlap },
    { "mem-table-2TiB-sparse", NACK, false, c_mem_table_2tib },
    { "add-mem-reg-over-limit", NACK, true, c_add_mem_reg_over_limit },
    { "vring-index-out-of-range", NACK, false, c_vring_index_out_of_range },
    { "ring-size-zero", NACK, false, c_ring_size_zero },
    { "ring-size-too-big", NACK, false, c_ring_size_too_big },
    { "ring-size-not-power-of-2", NACK, false, c_ring_size_not_pow2 },
    { "kick-with-two-fds", NACK, false, c_kick_two_fds },
    { "call-with-stray-index-bits", NACK, false, c_call_with_stray_bits },
    { "kick-before-mem-table", NACK, false, c_kick_before_mem_table },
    { "ring-outside-memory", NACK, true, c_ring_outside_memory },
    { "ring-misaligned", NACK, true, c_ring_misaligned },
    { "enable-not-0-or-1", NACK, true, c_enable_bad_value },
    { "truncated-then-close", DROP, false, c_truncated_then_close },
    { "call-fd-pipe", NACK, false, c_call_fd_pipe },
    { "call-fd-socket", NACK, false, c_call_fd_socket },
    { "call-fd-regular-file", NACK, false, c_call_fd_regular_file },
};

/* Hostile guests: rings.
 *
 * A ring case sets up a well-behaved guest with one queue pair (vring 0:
 * the guest's RX, vring 1: its TX), proves that the port forwards, then
 * puts one bad thing on a ring and checks, from the guest's side, that the
 * switch deals with it: a bad chain comes back used (empty) and the next
 * good frame goes through; an avail index that jumps past the ring stops
 * that ring, and restarting the ring (GET_VRING_BASE, SET_VRING_BASE, a new
 * kick, as a front-end does) gets it going again.  The test runs with a
 * flow that sends the guest's probe frames straight back to it.
 *
 * Throughout, every byte of guest memory the switch was not given to write
 * (used rings, receive buffers in good chains) must keep its value: a
 * switch that wrote a byte of a bad chain's buffer, or anywhere else,
 * fails the case (see vguest.h). */

#define RX 0
#define TX 1

/* Where bad chains point when they point at memory: a frame-like buffer
 * and indirect tables, none the switch may write. */
#define BAD_BUF   VG_FREE_GPA
#define TABLE_A   (VG_FREE_GPA + 0x10000)
#define TABLE_B   (VG_FREE_GPA + 0x11000)

/* Each writes a bad chain on 'ring' and returns its head; 'write' is
 * VRING_DESC_F_WRITE for the guest's RX ring, 0 for TX: the flag a good
 * buffer there has. */
static uint16_t
b_desc_loop(unsigned int ring, uint16_t write)
{
    /* The switch stops walking a receive chain once it has room for the
     * frame, so there the loop is of empty buffers, to be walked for
     * good. */
    uint32_t len = write ? 0 : 100;

    vg_set_desc(g, ring, 0, BAD_BUF, len, VRING_DESC_F_NEXT | write, 1);
    vg_set_desc(g, ring, 1, BAD_BUF + 100, len, VRING_DESC_F_NEXT | write, 0);
    return 0;
}

static uint16_t
b_desc_self_loop(unsigned int ring, uint16_t write)
{
    vg_set_desc(g, ring, 3, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 3);
    return 3;
}

static uint16_t
b_chain_longer_than_ring(unsigned int ring, uint16_t write)
{
    /* Every descriptor of the ring, each pointing to the next, the last
     * back to the first. */
    for (int i = 0; i < VG_RING_SIZE; i++) {
        vg_set_desc(g, ring, i, BAD_BUF + i, 1, VRING_DESC_F_NEXT | write,
                    (i + 1) % VG_RING_SIZE);
    }
    return 0;
}

static uint16_t
b_head_beyond_ring(unsigned int ring UNUSED, uint16_t write UNUSED)
{
    return VG_RING_SIZE + 44;
}

static uint16_t
b_next_beyond_ring(unsigned int ring, uint16_t write)
{
    vg_set_desc(g, ring, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 4000);
    return 0;
}

static uint16_t
b_addr_outside_memory(unsigned int ring, uint16_t write)
{
    /* In the hole between the regions. */
    vg_set_desc(g, ring, 0, VG_REGION_A_SIZE + 0x1000, 100, write, 0);
    return 0;
}

static uint16_t
b_addr_overflows(unsigned int ring, uint16_t write)
{
    vg_set_desc(g, ring, 0, UINT64_MAX - 10, 100, write, 0);
    return 0;
}

static uint16_t
b_len_past_region(unsigned int ring, uint16_t write)
{
    /* Starts 20 bytes before region A's end. */
    vg_set_desc(g, ring, 0, VG_REGION_A_SIZE - 20, 200, write, 0);
    return 0;
}

static uint16_t
b_len_past_memory(unsigned int ring, uint16_t write)
{
    /* Starts in region B, runs past the end of all memory. */
    vg_set_desc(g, ring, 0, VG_REGION_B_GPA + VG_REGION_B_SIZE - 64, 0x10000,
                write, 0);
    return 0;
}

static uint16_t
b_len_huge(unsigned int ring, uint16_t write)
{
    vg_set_desc(g, ring, 0, BAD_BUF, UINT32_MAX, write, 0);
    return 0;
}

static uint16_t
b_shorter_than_header(unsigned int ring, uint16_t write)
{
    vg_set_desc(g, ring, 0, BAD_BUF, VG_HDR_LEN - 6, write, 0);
    return 0;
}

static uint16_t
b_wrong_direction(unsigned int ring, uint16_t write)
{
    /* Writable for TX, read-only for RX. */
    vg_set_desc(g, ring, 0, BAD_BUF, 200, write ^ VRING_DESC_F_WRITE, 0);
    return 0;
}

static uint16_t
b_indirect_self(unsigned int ring, uint16_t write)
{
    /* The table's only entry is an indirect descriptor pointing at the
     * table itself. */
    vg_set_table_desc(g, TABLE_A, 0, TABLE_A, 16, VRING_DESC_F_INDIRECT, 0);
    vg_set_desc(g, ring, 0, TABLE_A, 16, VRING_DESC_F_INDIRECT | write, 0);
    return 0;
}

static uint16_t
b_indirect_nested(unsigned int ring, uint16_t write)
{
    vg_set_table_desc(g, TABLE_A, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write,
                      1);
    vg_set_table_desc(g, TABLE_A, 1, TABLE_B, 32, VRING_DESC_F_INDIRECT, 0);
    vg_set_table_desc(g, TABLE_B, 0, BAD_BUF, 100, write, 0);
    vg_set_desc(g, ring, 0, TABLE_A, 32, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_loop(unsigned int ring, uint16_t write)
{
    vg_set_table_desc(g, TABLE_A, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write,
                      1);
    vg_set_table_desc(g, TABLE_A, 1, BAD_BUF, 100, VRING_DESC_F_NEXT | write,
                      0);
    vg_set_desc(g, ring, 0, TABLE_A, 32, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_next_beyond(unsigned int ring, uint16_t write)
{
    vg_set_table_desc(g, TABLE_A, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write,
                      2);
    vg_set_table_desc(g, TABLE_A, 1, BAD_BUF, 100, write, 0);
    vg_set_desc(g, ring, 0, TABLE_A, 32, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_with_next(unsigned int ring, uint16_t write)
{
    vg_set_table_desc(g, TABLE_A, 0, BAD_BUF, 100, write, 0);
    vg_set_desc(g, ring, 0, TABLE_A, 16,
                VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    vg_set_desc(g, ring, 1, BAD_BUF, 100, write, 0);
    return 0;
}

static uint16_t
b_indirect_bad_size(unsigned int ring, uint16_t write)
{
    vg_set_table_desc(g, TABLE_A, 0, BAD_BUF, 100, write, 0);
    vg_set_desc(g, ring, 0, TABLE_A, 20, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_outside_memory(unsigned int ring, uint16_t write UNUSED)
{
    /* The table's last 8 bytes are past region A's end. */
    vg_set_desc(g, ring, 0, VG_REGION_A_SIZE - 8, 16, VRING_DESC_F_INDIRECT,
                0);
    return 0;
}

/* Bounded work (issue 13).  Zero-length descriptors and indirect tables
 * used to count toward no limit: a receive ring of indirect tables of
 * zero-length descriptors was walked, whole, by every frame sent to it
 * (none ever fitted, none was given back). */

/* Extra copies of the bad chain a case made available itself, each to
 * come back empty. */
static int flood_extra;

/* Fills 'n' entries of the indirect table at 'table' with zero-length
 * buffers (device-writable if 'write'), chained; the last one ends the
 * chain unless 'more'. */
static void
zero_length_table(uint64_t table, int n, uint16_t write, bool more)
{
    for (int i = 0; i < n; i++) {
        vg_set_table_desc(g, table, i, BAD_BUF, 0,
                          write | (i + 1 < n || more ? VRING_DESC_F_NEXT : 0),
                          i + 1);
    }
}

static uint16_t
b_rx_indirect_zero_length_flood(unsigned int ring, uint16_t write)
{
    /* 32 entries (this and the caller's), each a table of a ring's worth
     * of empty writable buffers. */
    zero_length_table(TABLE_A, VG_RING_SIZE, write, false);
    vg_set_desc(g, ring, 0, TABLE_A, VG_RING_SIZE * 16,
                VRING_DESC_F_INDIRECT, 0);
    flood_extra = 31;
    for (int i = 0; i < flood_extra; i++) {
        vg_make_avail(g, ring, 0);
    }
    return 0;
}

/* A frame the switch must not forward, made available at 'buf': it would
 * land in a receive buffer posted now, where the next probe must. */
static uint32_t
decoy_frame(uint64_t buf)
{
    uint8_t frame[VG_HDR_LEN + VG_PROBE_LEN];

    memset(frame, 0, sizeof frame);
    memcpy(frame + VG_HDR_LEN, g->probe_mac, 6);
    memcpy(frame + VG_HDR_LEN + 6, g->own_mac, 6);
    frame[VG_HDR_LEN + 12] = 0x88;
    frame[VG_HDR_LEN + 13] = 0xb5;
    memcpy(frame + VG_HDR_LEN + 14, "forwarded in error", 18);
    vg_write(g, buf, frame, sizeof frame);
    vg_post_rx_buffer(g, 0);
    return sizeof frame;
}

static uint16_t
b_indirect_bigger_than_ring(unsigned int ring, uint16_t write)
{
    /* A table of a ring's worth and one more entries, the first a good
     * buffer (for TX, a frame), the rest empty. */
    uint32_t len = write ? 2048 : decoy_frame(BAD_BUF);

    zero_length_table(TABLE_A + 16, VG_RING_SIZE, write, false);
    vg_set_table_desc(g, TABLE_A, 0, BAD_BUF, len, write, 0);
    vg_set_desc(g, ring, 0, TABLE_A, (VG_RING_SIZE + 1) * 16,
                VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_tx_zero_length_chain(unsigned int ring, uint16_t write)
{
    /* A frame after 15 empty descriptors in the ring and 255 in an
     * indirect table (of no more entries than the ring): each part within
     * its table, the whole more descriptors than a frame may have. */
    uint32_t len = decoy_frame(BAD_BUF);

    for (int i = 0; i < 15; i++) {
        vg_set_desc(g, ring, i, BAD_BUF, 0, write | VRING_DESC_F_NEXT, i + 1);
    }
    vg_set_desc(g, ring, 15, TABLE_A, VG_RING_SIZE * 16,
                VRING_DESC_F_INDIRECT, 0);
    zero_length_table(TABLE_A, VG_RING_SIZE - 1, write, true);
    vg_set_table_desc(g, TABLE_A, VG_RING_SIZE - 1, BAD_BUF, len, write, 0);
    return 0;
}

/* Packed rings (virtio 1.1).  A bad chain is written into the ring at the
 * guest's next position with buffer id PK_BAD_ID (one the guest's probes
 * never use), and made available there; the same rules hold as for split
 * rings, but for what has no equivalent (no avail index, no next field)
 * and for a chain that never ends, which stops the ring: nothing says
 * where the next chain would start. */
#define PK_BAD_ID 1

static struct vgp_vq *
pk_ring(unsigned int ring)
{
    return &g->rings[ring].pvq;
}

/* Makes the chain of 'n' descriptors available with PK_BAD_ID, flags as
 * given (NEXT is added between them). */
static uint16_t
pk_add(unsigned int ring, const uint64_t *gpas, const uint32_t *lens,
       const uint16_t *flags, int n)
{
    if (!vgp_add_id(pk_ring(ring), &g->layout, PK_BAD_ID, gpas, lens, flags,
                    n, 0)) {
        vg_fail(g, "test bug: no room in packed ring %u", ring);
    }
    return PK_BAD_ID;
}

static uint16_t
pk_add1(unsigned int ring, uint64_t gpa, uint32_t len, uint16_t flags)
{
    return pk_add(ring, &gpa, &len, &flags, 1);
}

/* Entry 'i' of the packed indirect table at 'table'. */
static void
pk_set_table_desc(uint64_t table, int i, uint64_t addr, uint32_t len,
                  uint16_t flags)
{
    struct vring_packed_desc d = { .addr = addr, .len = len, .id = 0,
                                   .flags = flags };

    vg_write(g, table + i * sizeof d, &d, sizeof d);
}

static uint16_t
b_pk_addr_outside_memory(unsigned int ring, uint16_t write)
{
    return pk_add1(ring, VG_REGION_A_SIZE + 0x1000, 100, write);
}

static uint16_t
b_pk_len_past_memory(unsigned int ring, uint16_t write)
{
    return pk_add1(ring, VG_REGION_B_GPA + VG_REGION_B_SIZE - 64, 0x10000,
                   write);
}

static uint16_t
b_pk_len_huge(unsigned int ring, uint16_t write)
{
    return pk_add1(ring, BAD_BUF, UINT32_MAX, write);
}

static uint16_t
b_pk_shorter_than_header(unsigned int ring, uint16_t write)
{
    return pk_add1(ring, BAD_BUF, VG_HDR_LEN - 6, write);
}

static uint16_t
b_pk_wrong_direction(unsigned int ring, uint16_t write)
{
    return pk_add1(ring, BAD_BUF, 200, write ^ VRING_DESC_F_WRITE);
}

static uint16_t
b_pk_indirect_chained(unsigned int ring, uint16_t write)
{
    /* An indirect descriptor, then another: a packed ring's indirect
     * descriptor must be its chain's only one. */
    uint64_t gpas[2] = { TABLE_A, BAD_BUF + 256 };
    uint32_t lens[2] = { 16, 100 };
    uint16_t flags[2] = { VRING_DESC_F_INDIRECT, write };

    pk_set_table_desc(TABLE_A, 0, BAD_BUF, 100, write);
    return pk_add(ring, gpas, lens, flags, 2);
}

static uint16_t
b_pk_indirect_bad_size(unsigned int ring, uint16_t write)
{
    pk_set_table_desc(TABLE_A, 0, BAD_BUF, 100, write);
    return pk_add1(ring, TABLE_A, 20, VRING_DESC_F_INDIRECT);
}

static uint16_t
b_pk_indirect_outside_memory(unsigned int ring, uint16_t write UNUSED)
{
    /* The table's last 8 bytes are past region A's end. */
    return pk_add1(ring, VG_REGION_A_SIZE - 8, 16, VRING_DESC_F_INDIRECT);
}

static uint16_t
b_pk_indirect_bigger_than_ring(unsigned int ring, uint16_t write)
{
    /* A ring's worth and one more entries, the first a good buffer. */
    uint32_t len = write ? 2048 : decoy_frame(BAD_BUF);

    pk_set_table_desc(TABLE_A, 0, BAD_BUF, len, write);
    for (int i = 1; i <= VG_RING_SIZE; i++) {
        pk_set_table_desc(TABLE_A, i, BAD_BUF, 0, write);
    }
    return pk_add1(ring, TABLE_A, (VG_RING_SIZE + 1) * 16,
                   VRING_DESC_F_INDIRECT);
}

static uint16_t
b_pk_indirect_good(unsigned int ring, uint16_t write)
{
    /* A good table, for a guest that did not negotiate indirect
     * descriptors. */
    uint32_t len = write ? 2048 : decoy_frame(BAD_BUF);

    pk_set_table_desc(TABLE_A, 0, BAD_BUF, len, write);
    return pk_add1(ring, TABLE_A, 16, VRING_DESC_F_INDIRECT);
}

static uint16_t
b_pk_zero_length_table(unsigned int ring, uint16_t write)
{
    /* A frame after 255 empty entries of a ring-sized table: with the
     * indirect descriptor, more descriptors than one frame may cost. */
    uint32_t len = decoy_frame(BAD_BUF);

    for (int i = 0; i < VG_RING_SIZE - 1; i++) {
        pk_set_table_desc(TABLE_A, i, BAD_BUF, 0, write);
    }
    pk_set_table_desc(TABLE_A, VG_RING_SIZE - 1, BAD_BUF, len, write);
    return pk_add1(ring, TABLE_A, VG_RING_SIZE * 16, VRING_DESC_F_INDIRECT);
}

/* The ring as it was before b_pk_chain_without_end() filled it, for the
 * guest to put back before it restarts the ring. */
static struct vring_packed_desc pk_saved[VG_RING_SIZE];

static uint16_t
b_pk_chain_without_end(unsigned int ring, uint16_t write)
{
    /* Every descriptor of the ring made available with NEXT, from the
     * guest's next position round to the one before it (the first one's
     * flags last). */
    struct vgp_vq *q = pk_ring(ring);
    uint16_t avail = q->avail_wrap ? VRING_PACKED_DESC_F_AVAIL
                                   : VRING_PACKED_DESC_F_USED;
    uint16_t first = q->next_avail;

    memcpy(pk_saved, q->ring, sizeof pk_saved);
    for (int k = VG_RING_SIZE - 1; k >= 0; k--) {
        unsigned int i = (first + k) % VG_RING_SIZE;
        /* Past the ring's end, the next lap's flags. */
        uint16_t lap = (first + k >= VG_RING_SIZE
                        ? avail ^ (VRING_PACKED_DESC_F_AVAIL
                                   | VRING_PACKED_DESC_F_USED)
                        : avail);

        q->ring[i].addr = BAD_BUF + 16 * i;
        q->ring[i].len = 16;
        q->ring[i].id = PK_BAD_ID;
        __atomic_store_n(&q->ring[i].flags,
                         (uint16_t) (lap | write | VRING_DESC_F_NEXT),
                         __ATOMIC_RELEASE);
    }
    return PK_BAD_ID;
}

static void
pk_undo_chain_without_end(unsigned int ring)
{
    memcpy(pk_ring(ring)->ring, pk_saved, sizeof pk_saved);
}

/* The guest's memfd shrinks under the switch.  The guest must not touch
 * its memory where the file is gone (it would get SIGBUS itself). */
static uint16_t
b_shrink_to_zero(unsigned int ring UNUSED, uint16_t write UNUSED)
{
    /* The switch polls the rings, in region A: it touches the missing
     * pages at once. */
    if (ftruncate(g->memfd, 0)) {
        vg_fail(g, "ftruncate: %s", strerror(errno));
    }
    return 0;
}

static uint16_t
b_shrink_to_half(unsigned int ring, uint16_t write)
{
    /* Region A (rings and buffers) stays; region B goes, and a frame in it
     * makes the switch read it. */
    if (ftruncate(g->memfd, VG_REGION_B_OFF)) {
        vg_fail(g, "ftruncate: %s", strerror(errno));
    }
    vg_set_desc(g, ring, 0, VG_REGION_B_GPA + 0x100, 100, write, 0);
    return 0;
}

enum ring_expect {
    CHAIN_RETURNED,             /* Given back used; the next frame flows. */
    RING_STOPPED,               /* Nothing more taken until a restart. */
    CALL_JAMMED,                /* The ring's call fd, an eventfd, is made
                                 * blocking with its counter full: the
                                 * switch's next notification through it
                                 * must not hang the thread that sends it
                                 * (a PMD for the RX ring, the main thread
                                 * for a disabled TX ring it drains). */
    DISCONNECTED,               /* Memory shrank: the switch drops the
                                 * front-end, and lives. */
};

struct ring_case {
    const char *name;
    unsigned int ring;          /* RX (the switch writes) or TX. */
    enum ring_expect expect;
    bool no_indirect;           /* Negotiate without INDIRECT_DESC. */
    uint16_t (*bad)(unsigned int ring, uint16_t write);
    bool packed;                /* On packed rings (VIRTIO_F_RING_PACKED). */
};

static const struct ring_case ring_cases[] = {
    { "tx-desc-loop", TX, CHAIN_RETURNED, false, b_desc_loop },
    { "tx-desc-self-loop", TX, CHAIN_RETURNED, false, b_desc_self_loop },
    { "tx-chain-longer-than-ring", TX, CHAIN_RETURNED, false,
      b_chain_longer_than_ring },
    { "tx-head-beyond-ring", TX, CHAIN_RETURNED, false, b_head_beyond_ring },
    { "tx-next-beyond-ring", TX, CHAIN_RETURNED, false, b_next_beyond_ring },
    { "tx-addr-outside-memory", TX, CHAIN_RETURNED, false,
      b_addr_outside_memory },
    { "tx-addr-overflows", TX, CHAIN_RETURNED, false, b_addr_overflows },
    { "tx-len-past-region", TX, CHAIN_RETURNED, false, b_len_past_region },
    { "tx-len-past-memory", TX, CHAIN_RETURNED, false, b_len_past_memory },
    { "tx-len-4GiB", TX, CHAIN_RETURNED, false, b_len_huge },
    { "tx-shorter-than-header", TX, CHAIN_RETURNED, false,
      b_shorter_than_header },
    { "tx-writable-buffer", TX, CHAIN_RETURNED, false, b_wrong_direction },
    { "tx-indirect-self", TX, CHAIN_RETURNED, false, b_indirect_self },
    { "tx-indirect-nested", TX, CHAIN_RETURNED, false, b_indirect_nested },
    { "tx-indirect-loop", TX, CHAIN_RETURNED, false, b_indirect_loop },
    { "tx-indirect-next-beyond-table", TX, CHAIN_RETURNED, false,
      b_indirect_next_beyond },
    { "tx-indirect-with-next", TX, CHAIN_RETURNED, false,
      b_indirect_with_next },
    { "tx-indirect-bad-size", TX, CHAIN_RETURNED, false,
      b_indirect_bad_size },
    { "tx-indirect-outside-memory", TX, CHAIN_RETURNED, false,
      b_indirect_outside_memory },
    { "tx-indirect-not-negotiated", TX, CHAIN_RETURNED, true,
      b_indirect_loop },
    { "tx-avail-index-jump", TX, RING_STOPPED, false, NULL },
    { "rx-readonly-buffer", RX, CHAIN_RETURNED, false, b_wrong_direction },
    { "rx-desc-loop", RX, CHAIN_RETURNED, false, b_desc_loop },
    { "rx-head-beyond-ring", RX, CHAIN_RETURNED, false, b_head_beyond_ring },
    { "rx-addr-outside-memory", RX, CHAIN_RETURNED, false,
      b_addr_outside_memory },
    { "rx-addr-overflows", RX, CHAIN_RETURNED, false, b_addr_overflows },
    { "rx-len-past-region", RX, CHAIN_RETURNED, false, b_len_past_region },
    { "rx-len-past-memory", RX, CHAIN_RETURNED, false, b_len_past_memory },
    { "rx-indirect-self", RX, CHAIN_RETURNED, false, b_indirect_self },
    { "rx-indirect-outside-memory", RX, CHAIN_RETURNED, false,
      b_indirect_outside_memory },
    { "rx-indirect-zero-length-flood", RX, CHAIN_RETURNED, false,
      b_rx_indirect_zero_length_flood },
    { "rx-indirect-table-bigger-than-ring", RX, CHAIN_RETURNED, false,
      b_indirect_bigger_than_ring },
    { "tx-indirect-table-bigger-than-ring", TX, CHAIN_RETURNED, false,
      b_indirect_bigger_than_ring },
    { "tx-zero-length-chain", TX, CHAIN_RETURNED, false,
      b_tx_zero_length_chain },
    { "rx-avail-index-jump", RX, RING_STOPPED, false, NULL },
    { "rx-call-fd-jammed", RX, CALL_JAMMED, false, NULL },
    { "tx-disabled-call-fd-jammed", TX, CALL_JAMMED, false, NULL },
    { "memfd-shrunk-to-0", TX, DISCONNECTED, false, b_shrink_to_zero },
    { "memfd-shrunk-to-half", TX, DISCONNECTED, false, b_shrink_to_half },
    { "tx-packed-chain-without-end", TX, RING_STOPPED, false,
      b_pk_chain_without_end, true },
    { "rx-packed-chain-without-end", RX, RING_STOPPED, false,
      b_pk_chain_without_end, true },
    { "tx-packed-addr-outside-memory", TX, CHAIN_RETURNED, false,
      b_pk_addr_outside_memory, true },
    { "rx-packed-addr-outside-memory", RX, CHAIN_RETURNED, false,
      b_pk_addr_outside_memory, true },
    { "tx-packed-len-past-memory", TX, CHAIN_RETURNED, false,
      b_pk_len_past_memory, true },
    { "tx-packed-len-4GiB", TX, CHAIN_RETURNED, false, b_pk_len_huge, true },
    { "tx-packed-shorter-than-header", TX, CHAIN_RETURNED, false,
      b_pk_shorter_than_header, true },
    { "tx-packed-writable-buffer", TX, CHAIN_RETURNED, false,
      b_pk_wrong_direction, true },
    { "rx-packed-readonly-buffer", RX, CHAIN_RETURNED, false,
      b_pk_wrong_direction, true },
    { "tx-packed-indirect-chained", TX, CHAIN_RETURNED, false,
      b_pk_indirect_chained, true },
    { "tx-packed-indirect-bad-size", TX, CHAIN_RETURNED, false,
      b_pk_indirect_bad_size, true },
    { "rx-packed-indirect-outside-memory", RX, CHAIN_RETURNED, false,
      b_pk_indirect_outside_memory, true },
    { "rx-packed-indirect-table-bigger-than-ring", RX, CHAIN_RETURNED, false,
      b_pk_indirect_bigger_than_ring, true },
    { "tx-packed-indirect-not-negotiated", TX, CHAIN_RETURNED, true,
      b_pk_indirect_good, true },
    { "tx-packed-zero-length-table", TX, CHAIN_RETURNED, false,
      b_pk_zero_length_table, true },
};

static const char *socket_path;

/* For a case on the guest's RX ring: a frame for the guest makes the
 * switch look at that ring. */
static void
send_frame_for_rx(void)
{
    vg_send_probe(g, 0, ++g->probe_seq);
    if (!vg_wait_probe_taken(g, 0, 10000)) {
        vg_fail(g, "the switch did not take the probe frame");
    }
}

/* Fills the eventfd counter of 'ring''s call fd to its maximum,
 * 0xfffffffffffffffe, and clears O_NONBLOCK on it (the switch shares the
 * file's flags): a blocking write() of 1 into it now waits until someone
 * reads, which this guest never does. */
static void
jam_call_fd(unsigned int ring)
{
    int fd = g->rings[ring].call;
    uint64_t v;
    int flags;

    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) {
        vg_fail(g, "draining the call fd: %s", strerror(errno));
    }
    v = UINT64_MAX - 1;
    if (write(fd, &v, sizeof v) != sizeof v) {
        vg_fail(g, "filling the call fd: %s", strerror(errno));
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
        vg_fail(g, "making the call fd blocking: %s", strerror(errno));
    }
}

/* The switch's main thread still answers: a request with a reply. */
static void
check_main_thread(const char *when)
{
    struct vhost_user_msg reply;

    vg_conn_send(&g->conn, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, NULL,
                 0, NULL, 0);
    if (vg_conn_read_answer(&g->conn, &reply) || reply.size != 8) {
        vg_fail(g, "%s: no answer to GET_FEATURES", when);
    }
}

static void
run_call_jammed_case(const struct ring_case *c)
{
    if (c->ring == RX) {
        /* The PMD that sends the probe back notifies the guest's RX ring:
         * the probe arrives (the used index is published first), and the
         * next one must too. */
        jam_call_fd(RX);
        vg_probe_round_trip(g, 0, 20000, "with the RX call fd jammed");
        vg_probe_round_trip(g, 0, 20000, "after a notification into the "
                            "jammed call fd");
    } else {
        /* A disabled TX ring is drained by the main thread, which then
         * notifies the guest. */
        struct vring_used_elem e;

        vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, TX, 0);
        jam_call_fd(TX);
        for (int i = 0; i < 2; i++) {
            vg_send_probe(g, 0, ++g->probe_seq);
            if (!vg_wait_used(g, TX, 10000, &e)) {
                vg_fail(g, "frame %d on the disabled TX ring not drained",
                        i);
            }
            check_main_thread("after draining the disabled TX ring");
        }
        vg_conn_ack_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, TX, 1);
    }
    check_main_thread("at the end");
    vg_check_memory(g, "after the jammed call fd");
    printf("ok: %s: switch kept running\n", c->name);
}

static void
run_ring_case(const struct ring_case *c)
{
    struct vring_used_elem e;
    uint16_t head;

    vg_set_up(g, 1, ((c->no_indirect ? 0 : 1ull << VIRTIO_RING_F_INDIRECT_DESC)
                     | (c->packed ? 1ull << VIRTIO_F_RING_PACKED : 0)));
    /* The first probe waits for the switch to take the port's queues into
     * its PMD threads. */
    vg_probe_round_trip(g, 0, 10000, "before the bad chain");

    if (c->expect == CALL_JAMMED) {
        run_call_jammed_case(c);
        return;
    }
    if (c->expect == DISCONNECTED) {
        struct vhost_user_msg reply;
        struct vguest g2;

        head = c->bad(c->ring, 0);
        if (c->bad == b_shrink_to_half) {
            vg_make_avail(g, c->ring, head);
        }
        /* The switch must drop the connection (and must not crash: a
         * crash closes it too, so a new front-end must get answers). */
        if (!vg_conn_read_answer(&g->conn, &reply)) {
            vg_fail(g, "the switch sent something unasked");
        }
        vg_init(&g2, c->name, false);
        if (vg_conn_connect(&g2.conn, socket_path, 2000)) {
            vg_fail(g, "the switch is gone");
        }
        vg_conn_get_u64(&g2.conn, VHOST_USER_GET_FEATURES);
        vg_destroy(&g2);
        printf("ok: %s: front-end dropped; the switch answers the next\n",
               c->name);
        return;
    }
    if (c->expect == RING_STOPPED) {
        if (c->packed) {
            c->bad(c->ring, c->ring == RX ? VRING_DESC_F_WRITE : 0);
        } else {
            /* The guest's index runs a ring and more ahead of what it
             * made available. */
            vg_set_avail_idx(g, c->ring, (g->rings[c->ring].vq.avail_idx
                                          + VG_RING_SIZE + 100));
        }
        vg_kick(g, c->ring);
        if (c->ring == RX) {
            send_frame_for_rx();
        }
        usleep(200 * 1000);
        if (c->packed ? vg_wait_used(g, c->ring, 0, &e)
            : vg_used_idx(g, c->ring) != g->rings[c->ring].vq.last_used) {
            vg_fail(g, "the switch used entries of a ring it should have "
                    "stopped");
        }
        vg_check_memory(g, "after the ring went bad");
        if (c->packed) {
            /* As a driver resets a queue: the bad chain goes. */
            pk_undo_chain_without_end(c->ring);
        }
        vg_restart_ring(g, c->ring);
        vg_probe_round_trip(g, 0, 20000, "after restarting the ring");
        printf("ok: %s: ring stopped; restarted, it forwards\n", c->name);
        return;
    }

    head = c->bad(c->ring, c->ring == RX ? VRING_DESC_F_WRITE : 0);
    if (c->packed) {
        vg_kick(g, c->ring);
    } else {
        vg_make_avail(g, c->ring, head);
    }
    if (c->ring == RX) {
        send_frame_for_rx();
    }
    if (!vg_wait_used(g, c->ring, 10000, &e)) {
        vg_fail(g, "the bad chain was not given back to the guest");
    }
    if (e.id != head) {
        vg_fail(g, "chain %"PRIu32" given back, the bad one was %"PRIu16,
                e.id, head);
    }
    if (c->ring == RX && e.len) {
        vg_fail(g, "a bad receive chain given back with %"PRIu32" bytes",
                e.len);
    }
    for (int i = 0, tries = 0; i < flood_extra; i++) {
        /* Each frame sent gives back at least one. */
        while (!vg_wait_used(g, c->ring, 20, &e)) {
            if (++tries > 200) {
                vg_fail(g, "%d of %d bad chains given back", i,
                        flood_extra + 1);
            }
            if (c->ring == RX) {
                send_frame_for_rx();
            }
        }
        if (e.id != head || (c->ring == RX && e.len)) {
            vg_fail(g, "chain %"PRIu32" given back with %"PRIu32" bytes",
                    e.id, e.len);
        }
    }
    vg_check_memory(g, "after the bad chain");
    vg_probe_round_trip(g, 0, 20000, "after the bad chain");
    printf("ok: %s: chain given back; the next frame forwards\n", c->name);
}

/* A storm: a front-end that keeps asking the switch to stop and start its
 * running rings.  For 'seconds' it disables and enables each of its vrings
 * and swaps between two memory tables, without asking for acks, so that
 * nothing but the socket paces it; each of these makes the switch take
 * rings from its data path.  The switch must stay responsive meanwhile
 * (the test times ovs-vsctl and ovs-ofctl) and the front-end in step with
 * it: afterwards a request is answered and the rings forward. */
static long long int
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Sends without asking for an answer, as fast as the switch reads: a Unix
 * socket polls writable only with most of its buffer free, so the message
 * then goes whole. */
static void
storm_wait_writable(void)
{
    struct pollfd pfd = { .fd = g->conn.sock, .events = POLLOUT };

    if (poll(&pfd, 1, 10000) != 1) {
        vg_fail(g, "the switch stopped reading for 10 s");
    }
}

static void
storm_send(uint32_t request, const void *payload, uint32_t size)
{
    storm_wait_writable();
    vg_conn_send(&g->conn, request, VHOST_USER_VERSION, payload, size, NULL,
                 0);
}

static void
run_storm(int seconds)
{
    struct vhost_user_mem_region tables[2][2] = {
        { vg_region(g, 0, VG_REGION_A_SIZE, 0),
          vg_region(g, VG_REGION_B_GPA, VG_REGION_B_SIZE,
                    VG_REGION_B_OFF) },
        { vg_region(g, 0, VG_REGION_A_SIZE, 0),
          vg_region(g, VG_REGION_B_GPA, VG_REGION_B_SIZE / 2,
                    VG_REGION_B_OFF) },
    };
    long long int end = now_ms() + seconds * 1000LL;
    long long int rounds = 0;

    vg_set_up(g, 2, 0);
    vg_probe_round_trip(g, 0, 20000, "before the storm");
    while (now_ms() < end) {
        for (uint32_t i = 0; i < 4; i++) {
            struct vhost_user_vring_state off = { i, 0 }, on = { i, 1 };

            storm_send(VHOST_USER_SET_VRING_ENABLE, &off, sizeof off);
            storm_send(VHOST_USER_SET_VRING_ENABLE, &on, sizeof on);
        }
        storm_wait_writable();
        vg_send_mem_table(g, VHOST_USER_VERSION, tables[rounds % 2], 2, 2);
        rounds++;
    }
    /* In step: the answer to this comes after everything sent before. */
    if (!(vg_conn_get_u64(&g->conn, VHOST_USER_GET_FEATURES)
          & (1ull << VIRTIO_F_VERSION_1))) {
        vg_fail(g, "features after the storm");
    }
    vg_probe_round_trip(g, 0, 20000, "after the storm");
    vg_probe_round_trip(g, 1, 20000, "after the storm");
    printf("ok: storm: %lld rounds of 8 enables and a memory table in %d s;"
           " the port forwards\n", rounds, seconds);
}

/* A flood: a guest that keeps its RX ring full of indirect tables of a
 * ring's worth of zero-length writable descriptors, for 'seconds', giving
 * every chain that comes back straight back to the switch (without a
 * kick: the switch polls), looking once a millisecond.  Frames sent to it
 * make the switch walk them; other ports on the same thread must keep
 * forwarding (tests/hostile.at measures one). */
static void
run_rx_flood(int seconds)
{
    long long int end = now_ms() + seconds * 1000LL;
    long long int returned = 0;
    struct vring_used_elem e;

    vg_set_up(g, 1, 1ull << VIRTIO_RING_F_INDIRECT_DESC);
    zero_length_table(TABLE_A, VG_RING_SIZE, VRING_DESC_F_WRITE, false);
    vg_set_desc(g, RX, 0, TABLE_A, VG_RING_SIZE * 16, VRING_DESC_F_INDIRECT,
                0);
    for (int i = 0; i < VG_RING_SIZE; i++) {
        vg_make_avail(g, RX, 0);
    }
    while (now_ms() < end) {
        int n = 0;

        while (vg_wait_used(g, RX, 0, &e)) {
            vg_post_avail(g, RX, 0);
            n++;
        }
        if (n) {
            vg_publish_avail(g, RX);
            returned += n;
        }
        usleep(1000);
    }
    printf("ok: rx-flood: %lld bad chains given back in %d s\n", returned,
           seconds);
}

/* Connects 'g' to the switch's socket. */
static void
hostile_connect(void)
{
    int error = vg_conn_connect(&g->conn, socket_path, 10000);

    if (error) {
        vg_fail(g, "connect to %s: %s", socket_path, strerror(error));
    }
}

/* Restarts: a front-end that closes its connection with hundreds of
 * messages still unread by the switch, and connects again at once, 'n'
 * times: a QEMU killed in the middle of its setup and started again.  The
 * switch reads the old connection to its end before it takes the new one,
 * so every new connection is served (none turned away as a second
 * front-end while the old one's end lies unread). */
#define RESTART_BACKLOG 500

static void
run_restarts(int n)
{
    static uint8_t backlog[RESTART_BACKLOG][VHOST_USER_HDR_SIZE];
    struct vhost_user_msg owner;

    memset(&owner, 0, sizeof owner);
    owner.request = VHOST_USER_SET_OWNER;
    owner.flags = VHOST_USER_VERSION;
    if (vhost_user_encode(&owner, backlog[0], sizeof backlog[0])
        != sizeof backlog[0]) {
        vg_fail(g, "SET_OWNER does not encode to a bare header");
    }
    for (int i = 1; i < RESTART_BACKLOG; i++) {
        memcpy(backlog[i], backlog[0], sizeof backlog[0]);
    }
    for (int i = 0; i < n; i++) {
        if (i) {
            hostile_connect();
        }
        if (!(vg_conn_get_u64(&g->conn, VHOST_USER_GET_FEATURES)
              & (1ull << VIRTIO_F_VERSION_1))) {
            vg_fail(g, "features after restart %d", i);
        }
        /* One write: all of it is in the socket before the close. */
        vg_conn_send_raw(&g->conn, backlog, sizeof backlog);
        vg_conn_close(&g->conn);
    }
    hostile_connect();
    vg_set_up(g, 1, 0);
    vg_probe_round_trip(g, 0, 20000, "after the restarts");
    printf("ok: restarts: %d connections closed with %d messages unread, "
           "each next one served; the port forwards\n", n,
           RESTART_BACKLOG);
}

/* Intruders: while this front-end is connected, 'n' more connect to the
 * same server port, one after another, and ask what a front-end asks
 * first.  The switch must close each without an answer (one front-end
 * per port) and go on serving the first. */
static void
run_intruders(int n)
{
    struct vhost_user_msg ask;

    memset(&ask, 0, sizeof ask);
    ask.request = VHOST_USER_GET_FEATURES;
    ask.flags = VHOST_USER_VERSION;
    vg_set_up(g, 1, 0);
    for (int i = 0; i < n; i++) {
        struct vhost_user_msg reply;
        struct vg_conn intruder;
        int error;

        vg_conn_init(&intruder, "intruder");
        error = vg_conn_connect(&intruder, socket_path, 10000);
        if (error) {
            vg_fail(g, "intruder %d: connect: %s", i, strerror(error));
        }
        /* (The switch may have closed it already: then the ask fails,
         * and the read sees the end all the same.) */
        error = vhost_conn_send(intruder.sock, &ask);
        if (error && error != EPIPE && error != ECONNRESET) {
            vg_fail(g, "intruder %d: send: %s", i, strerror(error));
        }
        /* Closed without a word: the read sees the end, or a reset. */
        if (!vg_conn_read_answer(&intruder, &reply)) {
            vg_fail(g, "intruder %d was served: %s answered", i,
                    vhost_user_request_name(reply.request));
        }
        vg_conn_close(&intruder);
        vg_probe_round_trip(g, 0, 20000, "with an intruder turned away");
    }
    printf("ok: intruders: %d turned away; the first front-end forwards\n",
           n);
}

/* The modes that take a number, each run on a fresh connection. */
struct hostile_mode {
    const char *name;
    void (*run)(int);
    const char *arg;            /* What the number is, for the usage. */
};

static const struct hostile_mode modes[] = {
    { "storm", run_storm, "SECONDS" },
    { "rx-flood", run_rx_flood, "SECONDS" },
    { "restarts", run_restarts, "N" },
    { "intruders", run_intruders, "N" },
};

int
main(int argc, char *argv[])
{
    const struct hostile_case *c = NULL;
    const struct ring_case *rc = NULL;
    struct vhost_user_msg reply;
    int answer;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        /* With the counter each case must move: the port's protocol
         * errors, its ring errors (statistics rx_errors + tx_errors), or
         * none. */
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            printf("%s %s\n", cases[i].name,
                   (cases[i].expect == ACCEPT
                    || cases[i].run == c_truncated_then_close)
                   ? "none" : "protocol");
        }
        for (size_t i = 0; i < sizeof ring_cases / sizeof *ring_cases; i++) {
            printf("%s %s\n", ring_cases[i].name,
                   (ring_cases[i].expect == CALL_JAMMED ? "notify"
                    : ring_cases[i].expect == DISCONNECTED ? "fault"
                    : "ring"));
        }
        return 0;
    }
    socket_path = argv[1];
    for (size_t i = 0; argc == 4 && i < sizeof modes / sizeof *modes; i++) {
        if (!strcmp(modes[i].name, argv[2])) {
            vg_init(g, modes[i].name, false);
            hostile_connect();
            modes[i].run(atoi(argv[3]));
            return 0;
        }
    }
    if (argc != 3) {
        fprintf(stderr, "usage: vhost-hostile SOCKET CASE | --list\n");
        for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
            fprintf(stderr, "       vhost-hostile SOCKET %s %s\n",
                    modes[i].name, modes[i].arg);
        }
        return 2;
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!strcmp(cases[i].name, argv[2])) {
            c = &cases[i];
        }
    }
    for (size_t i = 0; i < sizeof ring_cases / sizeof *ring_cases; i++) {
        if (!strcmp(ring_cases[i].name, argv[2])) {
            rc = &ring_cases[i];
        }
    }
    vg_init(g, argv[2], rc != NULL);
    if (!c && !rc) {
        vg_fail(g, "no such case");
    }
    hostile_connect();
    if (rc) {
        run_ring_case(rc);
        return 0;
    }

    vg_negotiate(g, 0);
    if (c->mem) {
        vg_set_up_memory(g);
    }
    c->run();
    if (g->conn.sock < 0) {
        printf("ok: %s: sent, connection closed\n", c->name);
        return 0;
    }
    answer = vg_conn_read_answer(&g->conn, &reply);
    if (answer < 0) {
        if (c->expect != DROP) {
            vg_fail(g, "switch dropped the connection; it should have "
                    "answered");
        }
        printf("ok: %s: dropped\n", c->name);
        return 0;
    }
    if (!(reply.flags & VHOST_USER_REPLY_FLAG) || reply.size != 8) {
        vg_fail(g, "odd answer: request %"PRIu32", flags 0x%"PRIx32
                ", size %"PRIu32, reply.request, reply.flags, reply.size);
    }
    if (!reply.payload.u64) {
        if (c->expect != ACCEPT) {
            vg_fail(g, "switch accepted it");
        }
        printf("ok: %s: accepted\n", c->name);
        return 0;
    }
    if (c->expect == ACCEPT) {
        vg_fail(g, "switch refused it");
    }
    if (c->expect == DROP) {
        vg_fail(g, "switch nacked; a dropped connection was expected");
    }
    printf("ok: %s: nack\n", c->name);
    return 0;
}
