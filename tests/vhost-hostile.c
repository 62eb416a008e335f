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

/* vhost-hostile: a front-end that breaks the vhost-user protocol on
 * purpose, one way per run, to check that the switch refuses it.
 *
 *   vhost-hostile SOCKET CASE      run one case (see 'cases' below)
 *   vhost-hostile --list           print the case names
 *
 * Each case connects to a server port, negotiates as QEMU does up to the
 * point the case needs (with REPLY_ACK, so that the switch can answer every
 * request), then sends one bad message and reads the switch's answer.  The
 * case passes if the switch refuses it the way the case expects: a
 * non-zero REPLY_ACK ("nack"), or the connection closed ("dropped": where
 * the spec leaves no way to report, or the stream's framing is lost).  It
 * fails if the switch accepts the message or answers otherwise.  Prints
 * "ok: CASE: OUTCOME" and exits 0, or "FAIL: ..." and exits 1.
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

/* QEMU's start: features, protocol features with REPLY_ACK, owner. */
static void
negotiate(void)
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
                        | (1ull << VHOST_USER_F_PROTOCOL_FEATURES)));
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

int
main(int argc, char *argv[])
{
    const struct hostile_case *c = NULL;
    struct vhost_user_msg reply;
    int answer;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            printf("%s\n", cases[i].name);
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
    if (!c) {
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
    negotiate();
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
