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

/* vhost-hostile: a front-end that breaks the vhost-user protocol, or a
 * guest that breaks the virtio ring rules, on purpose, one way per run, to
 * check that the switch refuses it.
 *
 *   vhost-hostile SOCKET CASE      run one case (see 'cases' and
 *                                  'ring_cases' below)
 *   vhost-hostile --list           print the case names, each with the
 *                                  counter it must move
 *
 * Protocol cases: each connects to a server port, negotiates as QEMU does up to the
 * point the case needs (with REPLY_ACK, so that the switch can answer every
 * request), then sends one bad message and reads the switch's answer.  The
 * case passes if the switch refuses it the way the case expects: a
 * non-zero REPLY_ACK ("nack"), or the connection closed ("dropped": where
 * the spec leaves no way to report, or the stream's framing is lost).  It
 * fails if the switch accepts the message or answers otherwise.  Prints
 * "ok: CASE: OUTCOME" and exits 0, or "FAIL: ..." and exits 1.
 *
 * Ring cases (see "Hostile guests: rings" below) check from the guest's
 * side what the switch did with the bad ring.
 *
 * What the switch does after (the port works again for a clean front-end,
 * other ports carry traffic throughout, counters and log lines) is for the
 * test that runs this (tests/hostile.at) to check. */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include "vhost-conn.h"
#include "vhost-user-wire.h"
#include "virtq.h"

#define MEM_SIZE (1 << 20)
#define UNUSED __attribute__((unused))

static int sock = -1;
static int memfd = -1;
static uint8_t *mem;
static const char *case_name;

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *format, ...)
{
    va_list args;

    printf("FAIL: %s: ", case_name);
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    printf("\n");
    exit(1);
}

static void
connect_to(const char *path)
{
    struct sockaddr_un sun;

    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        fail("socket path too long");
    }
    strcpy(sun.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    for (int i = 0; i < 100; i++) {
        if (!connect(sock, (struct sockaddr *) &sun, sizeof sun)) {
            return;
        }
        usleep(100 * 1000);
    }
    fail("connect to %s: %s", path, strerror(errno));
}

/* Sends raw bytes, as they are (for framing cases). */
static void
send_raw(const void *buf, size_t len)
{
    if (write(sock, buf, len) != (ssize_t) len) {
        fail("write: %s", strerror(errno));
    }
}

static void
send_msg(uint32_t request, uint32_t flags, const void *payload,
         uint32_t size, const int *fds, int n_fds)
{
    struct vhost_user_msg msg;
    int error;

    memset(&msg, 0, sizeof msg);
    msg.request = request;
    msg.flags = flags;
    msg.size = size;
    if (size) {
        memcpy(&msg.payload, payload, size);
    }
    for (int i = 0; i < n_fds; i++) {
        msg.fds[i] = fds[i];
    }
    msg.n_fds = n_fds;
    error = vhost_conn_send(sock, &msg);
    if (error) {
        fail("send %s: %s", vhost_user_request_name(request),
             strerror(error));
    }
}

/* Reads the switch's answer within 5 s: 0 and the reply, or -1 if the
 * switch closed the connection. */
static int
read_answer(struct vhost_user_msg *reply)
{
    uint8_t buf[VHOST_USER_HDR_SIZE + sizeof reply->payload];
    struct pollfd pfd = { .fd = sock, .events = POLLIN };
    size_t have = 0, need = VHOST_USER_HDR_SIZE;

    memset(reply, 0, sizeof *reply);
    while (have < need) {
        ssize_t n;

        if (poll(&pfd, 1, 5000) != 1) {
            fail("no answer from the switch in 5 s");
        }
        n = read(sock, buf + have, need - have);
        if (n <= 0) {
            return -1;
        }
        have += n;
        if (have == VHOST_USER_HDR_SIZE) {
            memcpy(&reply->request, buf, 4);
            memcpy(&reply->flags, buf + 4, 4);
            memcpy(&reply->size, buf + 8, 4);
            if (reply->size > sizeof reply->payload) {
                fail("reply of %"PRIu32" bytes", reply->size);
            }
            need += reply->size;
        }
    }
    memcpy(&reply->payload, buf + VHOST_USER_HDR_SIZE, reply->size);
    return 0;
}

/* A request the switch answers (GET_*): its u64. */
static uint64_t
get_u64(uint32_t request)
{
    struct vhost_user_msg reply;

    send_msg(request, VHOST_USER_VERSION, NULL, 0, NULL, 0);
    if (read_answer(&reply) || reply.size != 8) {
        fail("no answer to %s", vhost_user_request_name(request));
    }
    return reply.payload.u64;
}

/* A request with REPLY_ACK that must succeed. */
static void
must_ack(uint32_t request, const void *payload, uint32_t size,
         const int *fds, int n_fds)
{
    struct vhost_user_msg reply;

    send_msg(request, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY, payload,
             size, fds, n_fds);
    if (read_answer(&reply) || reply.payload.u64) {
        fail("set-up step %s refused", vhost_user_request_name(request));
    }
}

static void
ack_u64(uint32_t request, uint64_t value)
{
    must_ack(request, &value, 8, NULL, 0);
}

static void
ack_state(uint32_t request, uint32_t index, uint32_t num)
{
    struct vhost_user_vring_state st = { .index = index, .num = num };

    must_ack(request, &st, sizeof st, NULL, 0);
}

/* QEMU's start: features, protocol features with REPLY_ACK, owner.  The
 * virtio features taken are VERSION_1, MRG_RXBUF, MQ and 'extra'. */
static void
negotiate(uint64_t extra)
{
    uint64_t features = get_u64(VHOST_USER_GET_FEATURES);
    uint64_t protocol = get_u64(VHOST_USER_GET_PROTOCOL_FEATURES);

    protocol &= (1ull << VHOST_USER_PROTOCOL_F_MQ)
                | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)
                | (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
    if (!(protocol & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))) {
        fail("no REPLY_ACK offered");
    }
    send_msg(VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_VERSION,
             &protocol, 8, NULL, 0);
    must_ack(VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
    ack_u64(VHOST_USER_SET_FEATURES,
            features & ((1ull << VIRTIO_F_VERSION_1)
                        | (1ull << VIRTIO_NET_F_MRG_RXBUF)
                        | (1ull << VIRTIO_NET_F_MQ)
                        | (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
                        | extra));
}

static struct vhost_user_mem_region
region(uint64_t gpa, uint64_t size, uint64_t offset)
{
    struct vhost_user_mem_region r = {
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t) mem + offset,
        .mmap_offset = offset,
    };
    return r;
}

/* A memory table of 'n' regions (all from the same memfd) and 'n_fds'
 * fds. */
static void
send_mem_table(uint32_t flags, const struct vhost_user_mem_region *r,
               int n, int n_fds)
{
    struct vhost_user_mem_table table;
    int fds[VHOST_USER_MAX_FDS] = { -1 };

    memset(&table, 0, sizeof table);
    table.nregions = n;
    for (int i = 0; i < n && i < VHOST_USER_MAX_MEM_REGIONS; i++) {
        table.regions[i] = r[i];
    }
    for (int i = 0; i < n_fds; i++) {
        fds[i] = memfd;
    }
    send_msg(VHOST_USER_SET_MEM_TABLE, flags, &table,
             8 + (uint32_t) (n < VHOST_USER_MAX_MEM_REGIONS ? n
                             : VHOST_USER_MAX_MEM_REGIONS) * sizeof *r,
             fds, n_fds);
}

static void
good_mem_table(void)
{
    struct vhost_user_mem_region r = region(0, MEM_SIZE, 0);

    send_mem_table(VHOST_USER_VERSION | VHOST_USER_NEED_REPLY, &r, 1, 1);
    struct vhost_user_msg reply;
    if (read_answer(&reply) || reply.payload.u64) {
        fail("set-up memory table refused");
    }
}

static const uint32_t ASK = VHOST_USER_VERSION | VHOST_USER_NEED_REPLY;

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
    send_msg(99, ASK, NULL, 0, NULL, 0);
}

static void
c_request_zero(void)
{
    send_msg(0, ASK, NULL, 0, NULL, 0);
}

static void
c_bad_version(void)
{
    uint8_t hdr[12];
    uint32_t req = VHOST_USER_GET_FEATURES, flags = 2, size = 0;

    memcpy(hdr, &req, 4);
    memcpy(hdr + 4, &flags, 4);
    memcpy(hdr + 8, &size, 4);
    send_raw(hdr, sizeof hdr);
}

static void
c_oversized(void)
{
    uint8_t hdr[12];
    uint32_t req = VHOST_USER_SET_FEATURES, flags = ASK, size = 1 << 20;

    memcpy(hdr, &req, 4);
    memcpy(hdr + 4, &flags, 4);
    memcpy(hdr + 8, &size, 4);
    send_raw(hdr, sizeof hdr);
}

static void
c_short_payload(void)
{
    uint32_t v = 0;

    send_msg(VHOST_USER_SET_FEATURES, ASK, &v, 4, NULL, 0);
}

static void
c_long_payload(void)
{
    uint64_t v[2] = { 0, 0 };

    send_msg(VHOST_USER_SET_FEATURES, ASK, v, 16, NULL, 0);
}

static void
c_features_not_offered(void)
{
    uint64_t v = 1ull << 63 | 1ull << VIRTIO_F_VERSION_1;

    send_msg(VHOST_USER_SET_FEATURES, ASK, &v, 8, NULL, 0);
}

static void
c_mem_table_no_fd(void)
{
    struct vhost_user_mem_region r = region(0, MEM_SIZE, 0);

    send_mem_table(ASK, &r, 1, 0);
}

static void
c_mem_table_extra_fds(void)
{
    struct vhost_user_mem_region r = region(0, MEM_SIZE, 0);

    send_mem_table(ASK, &r, 1, 3);
}

static void
c_mem_table_no_regions(void)
{
    send_mem_table(ASK, NULL, 0, 0);
}

static void
c_mem_table_too_many(void)
{
    struct vhost_user_mem_region r[VHOST_USER_MAX_MEM_REGIONS];
    struct vhost_user_mem_table table;
    int fds[VHOST_USER_MAX_FDS];

    for (int i = 0; i < VHOST_USER_MAX_MEM_REGIONS; i++) {
        r[i] = region(i * 4096ull, 4096, i * 4096ull);
        fds[i] = memfd;
    }
    memset(&table, 0, sizeof table);
    memcpy(table.regions, r, sizeof r);
    table.nregions = VHOST_USER_MAX_MEM_REGIONS + 1;     /* Says 9, has 8. */
    send_msg(VHOST_USER_SET_MEM_TABLE, ASK, &table, 8 + sizeof r, fds,
             VHOST_USER_MAX_MEM_REGIONS);
}

static void
c_mem_table_overlap(void)
{
    struct vhost_user_mem_region r[2] = {
        region(0, 65536, 0), region(32768, 65536, 65536),
    };

    send_mem_table(ASK, r, 2, 2);
}

static void
c_mem_table_zero_size(void)
{
    struct vhost_user_mem_region r = region(0, 0, 0);

    send_mem_table(ASK, &r, 1, 1);
}

static void
c_mem_table_fd_too_small(void)
{
    struct vhost_user_mem_region r = region(0, 4 * MEM_SIZE, 0);

    send_mem_table(ASK, &r, 1, 1);
}

static void
c_mem_table_wraps(void)
{
    struct vhost_user_mem_region r = region(UINT64_MAX - 4095, 8192, 0);

    send_mem_table(ASK, &r, 1, 1);
}

static void
c_vring_index_out_of_range(void)
{
    struct vhost_user_vring_state st = { .index = 1000, .num = 256 };

    send_msg(VHOST_USER_SET_VRING_NUM, ASK, &st, sizeof st, NULL, 0);
}

static void
c_ring_size(uint32_t num)
{
    struct vhost_user_vring_state st = { .index = 0, .num = num };

    send_msg(VHOST_USER_SET_VRING_NUM, ASK, &st, sizeof st, NULL, 0);
}

static void c_ring_size_zero(void) { c_ring_size(0); }
static void c_ring_size_too_big(void) { c_ring_size(65536); }
static void c_ring_size_not_pow2(void) { c_ring_size(100); }

static void
c_kick_two_fds(void)
{
    uint64_t idx = 0;
    int fds[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };

    send_msg(VHOST_USER_SET_VRING_KICK, ASK, &idx, 8, fds, 2);
}

static void
c_kick_before_mem_table(void)
{
    uint64_t idx = 0;
    int fd = eventfd(0, EFD_CLOEXEC);

    ack_state(VHOST_USER_SET_VRING_NUM, 0, 256);
    send_msg(VHOST_USER_SET_VRING_KICK, ASK, &idx, 8, &fd, 1);
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

    ack_state(VHOST_USER_SET_VRING_NUM, 0, 256);
    ack_state(VHOST_USER_SET_VRING_BASE, 0, 0);
    must_ack(VHOST_USER_SET_VRING_ADDR, &addr, sizeof addr, NULL, 0);
    send_msg(VHOST_USER_SET_VRING_KICK, ASK, &idx, 8, &fd, 1);
}

static void
c_ring_outside_memory(void)
{
    uint64_t base = (uintptr_t) mem + 2 * MEM_SIZE;

    start_ring_at(base, base + 4096, base + 8192);
}

static void
c_ring_misaligned(void)
{
    uint64_t base = (uintptr_t) mem;

    start_ring_at(base + 8, base + 8192 + 1, base + 16384 + 2);
}

static void
c_enable_bad_value(void)
{
    struct vhost_user_vring_state st = { .index = 0, .num = 7 };

    send_msg(VHOST_USER_SET_VRING_ENABLE, ASK, &st, sizeof st, NULL, 0);
}

static void
c_protocol_not_offered(void)
{
    uint64_t v = 1ull << 62;

    send_msg(VHOST_USER_SET_PROTOCOL_FEATURES, ASK, &v, 8, NULL, 0);
}

static void
c_log_base(void)
{
    uint64_t v[2] = { 4096, 0 };
    int fd = memfd;

    send_msg(VHOST_USER_SET_LOG_BASE, ASK, v, 16, &fd, 1);
}

static void
c_add_mem_reg_overlap(void)
{
    struct vhost_user_mem_single p = {
        .region = region(4096, 65536, 4096),
    };
    int fd = memfd;

    send_msg(VHOST_USER_ADD_MEM_REG, ASK, &p, sizeof p, &fd, 1);
}

static void
c_reply_flag_on_request(void)
{
    send_msg(VHOST_USER_GET_FEATURES, VHOST_USER_VERSION
             | VHOST_USER_REPLY_FLAG, NULL, 0, NULL, 0);
}

static void
c_call_with_stray_bits(void)
{
    uint64_t idx = 0x12340000;
    int fd = eventfd(0, EFD_CLOEXEC);

    send_msg(VHOST_USER_SET_VRING_CALL, ASK, &idx, 8, &fd, 1);
}

static void
c_truncated_then_close(void)
{
    uint8_t hdr[6] = { VHOST_USER_GET_FEATURES, 0, 0, 0, 1, 0 };

    send_raw(hdr, sizeof hdr);
    close(sock);
    sock = -1;
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
};

/* Hostile guests: rings.
 *
 * A ring case sets up a well-behaved guest on pair 0 (vring 0: the guest's
 * RX, vring 1: its TX), proves that the port forwards, then puts one bad
 * thing on a ring and checks, from the guest's side, that the switch deals
 * with it: a bad chain comes back used (empty) and the next good frame goes
 * through; an avail index that jumps past the ring stops that ring, and
 * restarting the ring (GET_VRING_BASE, SET_VRING_BASE, a new kick, as a
 * front-end does) gets it going again.  The test runs with a flow that
 * sends the guest's probe frames (to PROBE_MAC) straight back to it.
 *
 * Throughout, every byte of guest memory the switch was not given to write
 * (used rings, receive buffers in good chains) must keep its value: a
 * switch that wrote a byte of a bad chain's buffer, or anywhere else,
 * fails the case. */

/* Guest memory: two regions of the same memfd, with a hole between them in
 * guest-physical space, so that buffers can run off a region's end. */
#define REGION_A_SIZE   0x80000         /* GPA 0, memfd offset 0. */
#define REGION_B_GPA    0x100000
#define REGION_B_OFFSET 0x80000
#define REGION_B_SIZE   0x40000
#define RING_SIZE       256
#define HDR_LEN         12              /* VERSION_1. */
#define PROBE_LEN       64

static uint8_t *shadow;         /* What guest memory must hold... */
static uint8_t *may_write;      /* ...except where these are non-zero. */

struct hring {
    unsigned int index;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t avail_idx;         /* The guest's next avail index. */
    uint16_t used_seen;         /* Used entries the guest has looked at. */
    int kick;
};

static struct hring rx = { .index = 0, .desc_gpa = 0x0000,
                           .avail_gpa = 0x1000, .used_gpa = 0x2000 };
static struct hring tx = { .index = 1, .desc_gpa = 0x4000,
                           .avail_gpa = 0x5000, .used_gpa = 0x6000 };
static unsigned int probe_seq;
static unsigned int next_slot;  /* Good descriptors: 16 to 47. */

static const uint8_t probe_dst[6] = { 0x02, 0, 0, 0, 0, 0xee };
static const uint8_t probe_src[6] = { 0x02, 0, 0, 0, 0, 0x01 };

/* The memfd offset of guest-physical 'gpa' (whole 'len' in one region), or
 * -1. */
static int64_t
gpa_offset(uint64_t gpa, uint64_t len)
{
    if (gpa < REGION_A_SIZE && len <= REGION_A_SIZE - gpa) {
        return gpa;
    }
    if (gpa >= REGION_B_GPA && gpa - REGION_B_GPA < REGION_B_SIZE
        && len <= REGION_B_SIZE - (gpa - REGION_B_GPA)) {
        return REGION_B_OFFSET + gpa - REGION_B_GPA;
    }
    fail("test bug: GPA 0x%"PRIx64" not in guest memory", gpa);
}

static void *
gpa_ptr(uint64_t gpa, uint64_t len)
{
    return mem + gpa_offset(gpa, len);
}

/* The guest writes guest memory only through this, so that 'shadow' knows
 * what every byte must hold. */
static void
guest_write(uint64_t gpa, const void *data, size_t len)
{
    int64_t off = gpa_offset(gpa, len);

    memcpy(shadow + off, data, len);
    memcpy(mem + off, data, len);
}

static void
switch_may_write(uint64_t gpa, size_t len)
{
    memset(may_write + gpa_offset(gpa, len), 1, len);
}

static void
check_memory(const char *when)
{
    for (size_t i = 0; i < MEM_SIZE; i++) {
        if (!may_write[i] && mem[i] != shadow[i]) {
            fail("%s: the switch wrote guest memory it was not given "
                 "(memfd offset 0x%zx: 0x%02x, was 0x%02x)", when, i,
                 mem[i], shadow[i]);
        }
    }
}

static void
set_desc(struct hring *r, uint16_t i, uint64_t addr, uint32_t len,
         uint16_t flags, uint16_t next)
{
    struct vring_desc d = { .addr = addr, .len = len, .flags = flags,
                            .next = next };

    guest_write(r->desc_gpa + i * sizeof d, &d, sizeof d);
}

static void
set_table_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
               uint16_t flags, uint16_t next)
{
    struct vring_desc d = { .addr = addr, .len = len, .flags = flags,
                            .next = next };

    guest_write(table + i * sizeof d, &d, sizeof d);
}

static void
kick(struct hring *r)
{
    uint64_t one = 1;

    if (write(r->kick, &one, sizeof one) != sizeof one) {
        fail("kick: %s", strerror(errno));
    }
}

/* Stores the guest's avail index of 'r' as 'idx' (no matter what it
 * was). */
static void
set_avail_idx(struct hring *r, uint16_t idx)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
    guest_write(r->avail_gpa + 2, &idx, 2);
}

/* Makes chain 'head' available on 'r'. */
static void
make_avail(struct hring *r, uint16_t head)
{
    guest_write(r->avail_gpa + 4 + (r->avail_idx % RING_SIZE) * 2, &head, 2);
    r->avail_idx++;
    set_avail_idx(r, r->avail_idx);
    kick(r);
}

static uint16_t
used_idx(const struct hring *r)
{
    const struct vring_used *u = gpa_ptr(r->used_gpa, 4);

    return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

/* Waits up to 'ms' for the switch to return one more chain on 'r'.  Returns
 * its used entry, or false. */
static bool
wait_used(struct hring *r, int ms, struct vring_used_elem *e)
{
    for (int i = 0; i <= ms; i++) {
        if (used_idx(r) != r->used_seen) {
            const struct vring_used *u = gpa_ptr(r->used_gpa, 4);

            memcpy(e, &u->ring[r->used_seen % RING_SIZE], sizeof *e);
            r->used_seen++;
            return true;
        }
        usleep(1000);
    }
    return false;
}

static unsigned int
good_slot(void)
{
    return 16 + next_slot++ % 32;
}

/* A receive buffer the switch may fill. */
static void
post_rx_buffer(void)
{
    unsigned int slot = good_slot();
    uint64_t buf = 0x10000 + slot * 2048;

    set_desc(&rx, slot, buf, 2048, VRING_DESC_F_WRITE, 0);
    switch_may_write(buf, 2048);
    make_avail(&rx, slot);
}

static void
make_probe(uint8_t *frame, unsigned int seq)
{
    memset(frame, 0, HDR_LEN + PROBE_LEN);
    memcpy(frame + HDR_LEN, probe_dst, 6);
    memcpy(frame + HDR_LEN + 6, probe_src, 6);
    frame[HDR_LEN + 12] = 0x88;         /* Local experimental ethertype. */
    frame[HDR_LEN + 13] = 0xb5;
    memcpy(frame + HDR_LEN + 14, "vhost-hostile", 13);
    memcpy(frame + HDR_LEN + 28, &seq, sizeof seq);
}

/* Transmits probe frame 'seq'. */
static void
send_probe(unsigned int seq)
{
    uint8_t frame[HDR_LEN + PROBE_LEN];
    unsigned int slot = good_slot();
    uint64_t buf = 0x20000 + slot * 2048;

    make_probe(frame, seq);
    guest_write(buf, frame, sizeof frame);
    set_desc(&tx, slot, buf, sizeof frame, 0, 0);
    make_avail(&tx, slot);
}

/* Sends a probe with a receive buffer posted for it, and waits for it to
 * come back. */
static void
probe_round_trip(const char *when, int ms)
{
    struct vring_used_elem e;
    uint8_t want[HDR_LEN + PROBE_LEN];
    unsigned int seq = ++probe_seq;
    const uint8_t *got;

    post_rx_buffer();
    send_probe(seq);
    if (!wait_used(&tx, ms, &e)) {
        fail("%s: the switch did not take the probe frame", when);
    }
    if (!wait_used(&rx, ms, &e)) {
        fail("%s: the probe frame did not come back", when);
    }
    make_probe(want, seq);
    got = gpa_ptr(0x10000 + e.id * 2048, 2048);
    if (e.id < 16 || e.id >= 48 || e.len != sizeof want
        || memcmp(got + HDR_LEN, want + HDR_LEN, PROBE_LEN)) {
        fail("%s: wrong frame back (id %"PRIu32", %"PRIu32" bytes)",
             when, e.id, e.len);
    }
    check_memory(when);
}

/* Stops ring 'r' and starts it again where it stopped, as a front-end
 * does after a reset of the queue. */
static void
restart_ring(struct hring *r)
{
    struct vhost_user_vring_state st = { .index = r->index };
    struct vhost_user_msg reply;
    uint64_t idx = r->index;
    int fd = eventfd(0, EFD_CLOEXEC);

    send_msg(VHOST_USER_GET_VRING_BASE, VHOST_USER_VERSION, &st, sizeof st,
             NULL, 0);
    if (read_answer(&reply) || reply.size != sizeof st) {
        fail("no answer to GET_VRING_BASE");
    }
    memcpy(&st, &reply.payload, sizeof st);
    if (st.num != r->avail_idx) {
        fail("GET_VRING_BASE says %"PRIu32", the guest made %"PRIu16
             " available", st.num, r->avail_idx);
    }
    set_avail_idx(r, r->avail_idx);
    ack_state(VHOST_USER_SET_VRING_BASE, r->index, st.num);
    close(r->kick);
    r->kick = fd;
    send_msg(VHOST_USER_SET_VRING_KICK, ASK, &idx, 8, &fd, 1);
    if (read_answer(&reply) || reply.payload.u64) {
        fail("restarting the ring: kick refused");
    }
}

static void
set_up_ring(struct hring *r)
{
    struct vhost_user_vring_addr addr = {
        .index = r->index,
        .desc_user_addr = (uintptr_t) gpa_ptr(r->desc_gpa, 16 * RING_SIZE),
        .avail_user_addr = (uintptr_t) gpa_ptr(r->avail_gpa, 6),
        .used_user_addr = (uintptr_t) gpa_ptr(r->used_gpa, 6),
    };
    uint64_t idx = r->index;
    int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    uint8_t zero[4096] = { 0 };

    guest_write(r->desc_gpa, zero, sizeof zero);
    guest_write(r->avail_gpa, zero, sizeof zero);
    guest_write(r->used_gpa, zero, sizeof zero);
    switch_may_write(r->used_gpa, sizeof zero);

    r->kick = eventfd(0, EFD_CLOEXEC);
    ack_state(VHOST_USER_SET_VRING_NUM, r->index, RING_SIZE);
    ack_state(VHOST_USER_SET_VRING_BASE, r->index, 0);
    must_ack(VHOST_USER_SET_VRING_ADDR, &addr, sizeof addr, NULL, 0);
    must_ack(VHOST_USER_SET_VRING_CALL, &idx, 8, &call, 1);
    must_ack(VHOST_USER_SET_VRING_KICK, &idx, 8, &r->kick, 1);
    ack_state(VHOST_USER_SET_VRING_ENABLE, r->index, 1);
}

/* The guest's side up to a forwarding port. */
static void
set_up_guest(bool indirect)
{
    struct vhost_user_mem_region r[2] = {
        region(0, REGION_A_SIZE, 0),
        region(REGION_B_GPA, REGION_B_SIZE, REGION_B_OFFSET),
    };
    struct vhost_user_msg reply;

    shadow = malloc(MEM_SIZE);
    may_write = calloc(1, MEM_SIZE);
    if (!shadow || !may_write) {
        fail("out of memory");
    }
    /* Everything the switch has no business writing: a pattern. */
    memset(mem, 0xa5, MEM_SIZE);
    memset(shadow, 0xa5, MEM_SIZE);

    negotiate(indirect ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);
    send_mem_table(ASK, r, 2, 2);
    if (read_answer(&reply) || reply.payload.u64) {
        fail("set-up memory table refused");
    }
    set_up_ring(&rx);
    set_up_ring(&tx);
    /* The first packets wait for the switch to take the port's queues
     * into its PMD threads. */
    probe_round_trip("before the bad chain", 10000);
}

/* Where bad chains point when they point at memory: a frame-like buffer
 * and indirect tables, none the switch may write. */
#define BAD_BUF   0x30000
#define TABLE_A   0x8000
#define TABLE_B   0x9000

/* Each returns the head of the bad chain it wrote on 'r'. */
static uint16_t
b_desc_loop(struct hring *r, uint16_t write)
{
    /* The switch stops walking a receive chain once it has room for the
     * frame, so there the loop is of empty buffers, to be walked for
     * good. */
    uint32_t len = write ? 0 : 100;

    set_desc(r, 0, BAD_BUF, len, VRING_DESC_F_NEXT | write, 1);
    set_desc(r, 1, BAD_BUF + 100, len, VRING_DESC_F_NEXT | write, 0);
    return 0;
}

static uint16_t
b_desc_self_loop(struct hring *r, uint16_t write)
{
    set_desc(r, 3, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 3);
    return 3;
}

static uint16_t
b_chain_longer_than_ring(struct hring *r, uint16_t write)
{
    /* Every descriptor of the ring, each pointing to the next, the last
     * back to the first. */
    for (int i = 0; i < RING_SIZE; i++) {
        set_desc(r, i, BAD_BUF + i, 1, VRING_DESC_F_NEXT | write,
                 (i + 1) % RING_SIZE);
    }
    return 0;
}

static uint16_t
b_head_beyond_ring(struct hring *r UNUSED, uint16_t write UNUSED)
{
    return RING_SIZE + 44;
}

static uint16_t
b_next_beyond_ring(struct hring *r, uint16_t write)
{
    set_desc(r, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 4000);
    return 0;
}

static uint16_t
b_addr_outside_memory(struct hring *r, uint16_t write)
{
    /* In the hole between the regions. */
    set_desc(r, 0, REGION_A_SIZE + 0x1000, 100, write, 0);
    return 0;
}

static uint16_t
b_addr_overflows(struct hring *r, uint16_t write)
{
    set_desc(r, 0, UINT64_MAX - 10, 100, write, 0);
    return 0;
}

static uint16_t
b_len_past_region(struct hring *r, uint16_t write)
{
    /* Starts 20 bytes before region A's end. */
    set_desc(r, 0, REGION_A_SIZE - 20, 200, write, 0);
    return 0;
}

static uint16_t
b_len_past_memory(struct hring *r, uint16_t write)
{
    /* Starts in region B, runs past the end of all memory. */
    set_desc(r, 0, REGION_B_GPA + REGION_B_SIZE - 64, 0x10000, write, 0);
    return 0;
}

static uint16_t
b_len_huge(struct hring *r, uint16_t write)
{
    set_desc(r, 0, BAD_BUF, UINT32_MAX, write, 0);
    return 0;
}

static uint16_t
b_shorter_than_header(struct hring *r, uint16_t write)
{
    set_desc(r, 0, BAD_BUF, HDR_LEN - 6, write, 0);
    return 0;
}

static uint16_t
b_wrong_direction(struct hring *r, uint16_t write)
{
    /* Writable for TX, read-only for RX. */
    set_desc(r, 0, BAD_BUF, 200, write ^ VRING_DESC_F_WRITE, 0);
    return 0;
}

static uint16_t
b_indirect_self(struct hring *r, uint16_t write)
{
    /* The table's only entry is an indirect descriptor pointing at the
     * table itself. */
    set_table_desc(TABLE_A, 0, TABLE_A, 16, VRING_DESC_F_INDIRECT, 0);
    set_desc(r, 0, TABLE_A, 16, VRING_DESC_F_INDIRECT | write, 0);
    return 0;
}

static uint16_t
b_indirect_nested(struct hring *r, uint16_t write)
{
    set_table_desc(TABLE_A, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 1);
    set_table_desc(TABLE_A, 1, TABLE_B, 32, VRING_DESC_F_INDIRECT, 0);
    set_table_desc(TABLE_B, 0, BAD_BUF, 100, write, 0);
    set_desc(r, 0, TABLE_A, 32, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_loop(struct hring *r, uint16_t write)
{
    set_table_desc(TABLE_A, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 1);
    set_table_desc(TABLE_A, 1, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 0);
    set_desc(r, 0, TABLE_A, 32, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_next_beyond(struct hring *r, uint16_t write)
{
    set_table_desc(TABLE_A, 0, BAD_BUF, 100, VRING_DESC_F_NEXT | write, 2);
    set_table_desc(TABLE_A, 1, BAD_BUF, 100, write, 0);
    set_desc(r, 0, TABLE_A, 32, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_with_next(struct hring *r, uint16_t write)
{
    set_table_desc(TABLE_A, 0, BAD_BUF, 100, write, 0);
    set_desc(r, 0, TABLE_A, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
             1);
    set_desc(r, 1, BAD_BUF, 100, write, 0);
    return 0;
}

static uint16_t
b_indirect_bad_size(struct hring *r, uint16_t write)
{
    set_table_desc(TABLE_A, 0, BAD_BUF, 100, write, 0);
    set_desc(r, 0, TABLE_A, 20, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

static uint16_t
b_indirect_outside_memory(struct hring *r, uint16_t write UNUSED)
{
    /* The table's last 8 bytes are past region A's end. */
    set_desc(r, 0, REGION_A_SIZE - 8, 16, VRING_DESC_F_INDIRECT, 0);
    return 0;
}

enum ring_expect {
    CHAIN_RETURNED,             /* Given back used; the next frame flows. */
    RING_STOPPED,               /* Nothing more taken until a restart. */
};

struct ring_case {
    const char *name;
    bool on_rx;                 /* The guest's RX ring (switch writes). */
    enum ring_expect expect;
    bool no_indirect;           /* Negotiate without INDIRECT_DESC. */
    uint16_t (*bad)(struct hring *, uint16_t write);
};

static const struct ring_case ring_cases[] = {
    { "tx-desc-loop", false, CHAIN_RETURNED, false, b_desc_loop },
    { "tx-desc-self-loop", false, CHAIN_RETURNED, false, b_desc_self_loop },
    { "tx-chain-longer-than-ring", false, CHAIN_RETURNED, false,
      b_chain_longer_than_ring },
    { "tx-head-beyond-ring", false, CHAIN_RETURNED, false,
      b_head_beyond_ring },
    { "tx-next-beyond-ring", false, CHAIN_RETURNED, false,
      b_next_beyond_ring },
    { "tx-addr-outside-memory", false, CHAIN_RETURNED, false,
      b_addr_outside_memory },
    { "tx-addr-overflows", false, CHAIN_RETURNED, false, b_addr_overflows },
    { "tx-len-past-region", false, CHAIN_RETURNED, false,
      b_len_past_region },
    { "tx-len-past-memory", false, CHAIN_RETURNED, false,
      b_len_past_memory },
    { "tx-len-4GiB", false, CHAIN_RETURNED, false, b_len_huge },
    { "tx-shorter-than-header", false, CHAIN_RETURNED, false,
      b_shorter_than_header },
    { "tx-writable-buffer", false, CHAIN_RETURNED, false, b_wrong_direction },
    { "tx-indirect-self", false, CHAIN_RETURNED, false, b_indirect_self },
    { "tx-indirect-nested", false, CHAIN_RETURNED, false,
      b_indirect_nested },
    { "tx-indirect-loop", false, CHAIN_RETURNED, false, b_indirect_loop },
    { "tx-indirect-next-beyond-table", false, CHAIN_RETURNED, false,
      b_indirect_next_beyond },
    { "tx-indirect-with-next", false, CHAIN_RETURNED, false,
      b_indirect_with_next },
    { "tx-indirect-bad-size", false, CHAIN_RETURNED, false,
      b_indirect_bad_size },
    { "tx-indirect-outside-memory", false, CHAIN_RETURNED, false,
      b_indirect_outside_memory },
    { "tx-indirect-not-negotiated", false, CHAIN_RETURNED, true,
      b_indirect_loop },
    { "tx-avail-index-jump", false, RING_STOPPED, false, NULL },
    { "rx-readonly-buffer", true, CHAIN_RETURNED, false, b_wrong_direction },
    { "rx-desc-loop", true, CHAIN_RETURNED, false, b_desc_loop },
    { "rx-head-beyond-ring", true, CHAIN_RETURNED, false,
      b_head_beyond_ring },
    { "rx-addr-outside-memory", true, CHAIN_RETURNED, false,
      b_addr_outside_memory },
    { "rx-addr-overflows", true, CHAIN_RETURNED, false, b_addr_overflows },
    { "rx-len-past-region", true, CHAIN_RETURNED, false, b_len_past_region },
    { "rx-len-past-memory", true, CHAIN_RETURNED, false, b_len_past_memory },
    { "rx-indirect-self", true, CHAIN_RETURNED, false, b_indirect_self },
    { "rx-indirect-outside-memory", true, CHAIN_RETURNED, false,
      b_indirect_outside_memory },
    { "rx-avail-index-jump", true, RING_STOPPED, false, NULL },
};

static void
run_ring_case(const struct ring_case *c)
{
    struct hring *r = c->on_rx ? &rx : &tx;
    struct vring_used_elem e;
    uint16_t head;

    set_up_guest(!c->no_indirect);

    if (c->expect == RING_STOPPED) {
        /* The guest's index runs a ring and more ahead of what it made
         * available. */
        set_avail_idx(r, r->avail_idx + RING_SIZE + 100);
        kick(r);
        if (c->on_rx) {
            /* A frame for the guest makes the switch look at its RX
             * ring. */
            send_probe(++probe_seq);
            if (!wait_used(&tx, 2000, &e)) {
                fail("the switch did not take the probe frame");
            }
        }
        usleep(200 * 1000);
        if (used_idx(r) != r->used_seen) {
            fail("the switch used entries of a ring whose avail index "
                 "jumped");
        }
        check_memory("after the avail index jump");
        restart_ring(r);
        probe_round_trip("after restarting the ring", 5000);
        printf("ok: %s: ring stopped; restarted, it forwards\n", c->name);
        return;
    }

    head = c->bad(r, c->on_rx ? VRING_DESC_F_WRITE : 0);
    make_avail(r, head);
    if (c->on_rx) {
        send_probe(++probe_seq);
        if (!wait_used(&tx, 2000, &e)) {
            fail("the switch did not take the probe frame");
        }
    }
    if (!wait_used(r, 2000, &e)) {
        fail("the bad chain was not given back to the guest");
    }
    if (e.id != head) {
        fail("chain %"PRIu32" given back, the bad one was %"PRIu16, e.id,
             head);
    }
    if (c->on_rx && e.len) {
        fail("a bad receive chain given back with %"PRIu32" bytes", e.len);
    }
    check_memory("after the bad chain");
    probe_round_trip("after the bad chain", 5000);
    printf("ok: %s: chain given back; the next frame forwards\n", c->name);
}

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
            printf("%s ring\n", ring_cases[i].name);
        }
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: vhost-hostile SOCKET CASE | --list\n");
        return 2;
    }
    case_name = argv[2];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!strcmp(cases[i].name, case_name)) {
            c = &cases[i];
        }
    }
    for (size_t i = 0; i < sizeof ring_cases / sizeof *ring_cases; i++) {
        if (!strcmp(ring_cases[i].name, case_name)) {
            rc = &ring_cases[i];
        }
    }
    if (!c && !rc) {
        fail("no such case");
    }

    memfd = memfd_create("vhost-hostile", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, MEM_SIZE)) {
        fail("memfd: %s", strerror(errno));
    }
    mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (mem == MAP_FAILED) {
        fail("mmap: %s", strerror(errno));
    }

    connect_to(argv[1]);
    if (rc) {
        run_ring_case(rc);
        return 0;
    }
    negotiate(0);
    if (c->mem) {
        good_mem_table();
    }
    c->run();
    if (sock < 0) {
        printf("ok: %s: sent, connection closed\n", c->name);
        return 0;
    }
    answer = read_answer(&reply);
    if (answer < 0) {
        if (c->expect != DROP) {
            fail("switch dropped the connection; it should have answered");
        }
        printf("ok: %s: dropped\n", c->name);
        return 0;
    }
    if (!(reply.flags & VHOST_USER_REPLY_FLAG) || reply.size != 8) {
        fail("odd answer: request %"PRIu32", flags 0x%"PRIx32", size %"
             PRIu32, reply.request, reply.flags, reply.size);
    }
    if (!reply.payload.u64) {
        if (c->expect != ACCEPT) {
            fail("switch accepted it");
        }
        printf("ok: %s: accepted\n", c->name);
        return 0;
    }
    if (c->expect == ACCEPT) {
        fail("switch refused it");
    }
    if (c->expect == DROP) {
        fail("switch nacked; a dropped connection was expected");
    }
    printf("ok: %s: nack\n", c->name);
    return 0;
}
