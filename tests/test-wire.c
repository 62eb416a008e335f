/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of the wire codec: one test per validation rule. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "vhost-user-wire.h"

/* A port with 4 queue pairs: 8 vrings. */
#define MAX_VRINGS 8

static struct vhost_user_msg
make_msg(uint32_t request, uint32_t size)
{
    struct vhost_user_msg msg;

    memset(&msg, 0, sizeof msg);
    msg.request = request;
    msg.flags = VHOST_USER_VERSION;
    msg.size = size;
    return msg;
}

static int
new_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);

    CHECK(fd >= 0);
    return fd;
}

static bool
fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
add_fds(struct vhost_user_msg *msg, int n, int fds[])
{
    for (int i = 0; i < n; i++) {
        fds[i] = new_fd();
        msg->fds[msg->n_fds++] = fds[i];
    }
}

static enum vhost_user_wire_error
validate(struct vhost_user_msg *msg)
{
    return vhost_user_validate(msg, MAX_VRINGS, NULL);
}

static void
test_header_decode(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    struct vhost_user_msg msg;
    uint32_t words[3] = { VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0 };

    memcpy(buf, words, sizeof buf);
    CHECK_EQ(vhost_user_decode_header(buf, &msg), VHOST_USER_WIRE_OK);
    CHECK_EQ(msg.request, VHOST_USER_GET_FEATURES);
    CHECK_EQ(msg.size, 0);
    CHECK_EQ(msg.n_fds, 0);
}

static void
test_header_version(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    struct vhost_user_msg msg;

    for (uint32_t v = 0; v < 4; v++) {
        uint32_t words[3] = { VHOST_USER_GET_FEATURES, v, 0 };

        memcpy(buf, words, sizeof buf);
        CHECK_EQ(vhost_user_decode_header(buf, &msg),
                 v == VHOST_USER_VERSION ? VHOST_USER_WIRE_OK
                                         : VHOST_USER_WIRE_BAD_VERSION);
    }
}

static void
test_header_reply_flag(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    struct vhost_user_msg msg;
    uint32_t words[3] = { VHOST_USER_GET_FEATURES,
                          VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG, 0 };

    memcpy(buf, words, sizeof buf);
    CHECK_EQ(vhost_user_decode_header(buf, &msg), VHOST_USER_WIRE_BAD_FLAGS);

    /* need_reply is fine. */
    words[1] = VHOST_USER_VERSION | VHOST_USER_NEED_REPLY;
    memcpy(buf, words, sizeof buf);
    CHECK_EQ(vhost_user_decode_header(buf, &msg), VHOST_USER_WIRE_OK);
}

static void
test_header_too_big(void)
{
    uint8_t buf[VHOST_USER_HDR_SIZE];
    struct vhost_user_msg msg;
    uint32_t words[3] = { VHOST_USER_SET_CONFIG, VHOST_USER_VERSION,
                          VHOST_USER_MAX_PAYLOAD };

    memcpy(buf, words, sizeof buf);
    CHECK_EQ(vhost_user_decode_header(buf, &msg), VHOST_USER_WIRE_OK);
    words[2] = VHOST_USER_MAX_PAYLOAD + 1;
    memcpy(buf, words, sizeof buf);
    CHECK_EQ(vhost_user_decode_header(buf, &msg), VHOST_USER_WIRE_TOO_BIG);
    words[2] = UINT32_MAX;
    memcpy(buf, words, sizeof buf);
    CHECK_EQ(vhost_user_decode_header(buf, &msg), VHOST_USER_WIRE_TOO_BIG);
}

static void
test_unknown_request(void)
{
    static const uint32_t unknown[] = {
        0, VHOST_USER_IOTLB_MSG, VHOST_USER_SET_VRING_ENDIAN,
        VHOST_USER_CREATE_CRYPTO_SESSION, VHOST_USER_POSTCOPY_ADVISE,
        VHOST_USER_GPU_SET_SOCKET, VHOST_USER_VRING_KICK,
        VHOST_USER_N_REQUESTS, 1000, UINT32_MAX,
    };

    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        struct vhost_user_msg msg = make_msg(unknown[i], 0);
        int fd;

        add_fds(&msg, 1, &fd);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_UNKNOWN_REQUEST);
        CHECK_EQ(msg.n_fds, 0);
        CHECK(!fd_is_open(fd));
    }
    CHECK(!strcmp(vhost_user_request_name(1000), "UNKNOWN"));
    CHECK(!strcmp(vhost_user_request_name(VHOST_USER_SET_MEM_TABLE),
                  "SET_MEM_TABLE"));
}

/* Every supported request with its one valid size, and a wrong size for
 * each. */
static void
test_payload_sizes(void)
{
    static const struct {
        uint32_t request;
        uint32_t size;
    } cases[] = {
        { VHOST_USER_GET_FEATURES, 0 },
        { VHOST_USER_SET_FEATURES, 8 },
        { VHOST_USER_SET_OWNER, 0 },
        { VHOST_USER_RESET_OWNER, 0 },
        { VHOST_USER_SET_VRING_NUM, 8 },
        { VHOST_USER_SET_VRING_ADDR, 40 },
        { VHOST_USER_SET_VRING_BASE, 8 },
        { VHOST_USER_GET_VRING_BASE, 8 },
        { VHOST_USER_GET_PROTOCOL_FEATURES, 0 },
        { VHOST_USER_SET_PROTOCOL_FEATURES, 8 },
        { VHOST_USER_GET_QUEUE_NUM, 0 },
        { VHOST_USER_SET_VRING_ENABLE, 8 },
        { VHOST_USER_SEND_RARP, 8 },
        { VHOST_USER_NET_SET_MTU, 8 },
        { VHOST_USER_GET_INFLIGHT_FD, 24 },
        { VHOST_USER_RESET_DEVICE, 0 },
        { VHOST_USER_GET_MAX_MEM_SLOTS, 0 },
        { VHOST_USER_SET_STATUS, 8 },
        { VHOST_USER_GET_STATUS, 0 },
    };
    static const uint32_t wrong[] = { 0, 1, 4, 7, 8, 9, 16, 24, 39, 40, 41 };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vhost_user_msg msg = make_msg(cases[i].request, cases[i].size);

        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        for (size_t j = 0; j < sizeof wrong / sizeof wrong[0]; j++) {
            if (wrong[j] != cases[i].size) {
                msg = make_msg(cases[i].request, wrong[j]);
                if (validate(&msg) != VHOST_USER_WIRE_BAD_SIZE) {
                    fprintf(stderr, "%s with %"PRIu32" bytes accepted\n",
                            vhost_user_request_name(cases[i].request),
                            wrong[j]);
                    unit_failed = true;
                }
            }
        }
    }
}

static void
test_fd_only_messages_take_0_or_8_bytes(void)
{
    static const uint32_t requests[] = {
        VHOST_USER_SET_LOG_FD, VHOST_USER_SET_BACKEND_REQ_FD,
    };

    for (size_t i = 0; i < 2; i++) {
        for (uint32_t size = 0; size <= 16; size++) {
            struct vhost_user_msg msg = make_msg(requests[i], size);
            int fd;

            add_fds(&msg, 1, &fd);
            CHECK_EQ(validate(&msg), size == 0 || size == 8
                                     ? VHOST_USER_WIRE_OK
                                     : VHOST_USER_WIRE_BAD_SIZE);
            vhost_user_msg_close_fds(&msg);
        }
    }
}

static void
test_vring_index_limit(void)
{
    static const uint32_t requests[] = {
        VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE,
        VHOST_USER_GET_VRING_BASE, VHOST_USER_SET_VRING_ENABLE,
    };

    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        struct vhost_user_msg msg = make_msg(requests[i], 8);

        msg.payload.state.index = MAX_VRINGS - 1;
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        CHECK_EQ(vhost_user_msg_vring_index(&msg), MAX_VRINGS - 1);
        msg.payload.state.index = MAX_VRINGS;
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_VRING_INDEX);
        msg.payload.state.index = UINT32_MAX;
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_VRING_INDEX);
    }

    struct vhost_user_msg msg = make_msg(VHOST_USER_SET_VRING_ADDR, 40);
    msg.payload.addr.index = MAX_VRINGS - 1;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    msg.payload.addr.index = MAX_VRINGS;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_VRING_INDEX);

    /* The protocol's own limit: 256 vrings. */
    msg = make_msg(VHOST_USER_SET_VRING_NUM, 8);
    msg.payload.state.index = 255;
    CHECK_EQ(vhost_user_validate(&msg, VHOST_USER_MAX_VRINGS, NULL),
             VHOST_USER_WIRE_OK);
    msg.payload.state.index = 256;
    CHECK_EQ(vhost_user_validate(&msg, VHOST_USER_MAX_VRINGS, NULL),
             VHOST_USER_WIRE_BAD_VRING_INDEX);
}

static void
test_vring_fd_messages(void)
{
    static const uint32_t requests[] = {
        VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_CALL,
        VHOST_USER_SET_VRING_ERR,
    };

    for (size_t i = 0; i < 3; i++) {
        struct vhost_user_msg msg;
        int fds[3];

        /* One fd: kept. */
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = 3;
        add_fds(&msg, 1, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        CHECK_EQ(msg.n_fds, 1);
        CHECK_EQ(vhost_user_msg_vring_index(&msg), 3);
        CHECK(fd_is_open(fds[0]));
        vhost_user_msg_close_fds(&msg);
        CHECK(!fd_is_open(fds[0]));

        /* No fd, no "no fd" bit: refused. */
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = 3;
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_FD_COUNT);

        /* "No fd" bit: no fd needed, and extras are closed. */
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = 3 | VHOST_USER_VRING_NOFD_MASK;
        add_fds(&msg, 2, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        CHECK_EQ(msg.n_fds, 0);
        CHECK(!fd_is_open(fds[0]) && !fd_is_open(fds[1]));

        /* Three fds where one is needed: two closed. */
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = 1;
        add_fds(&msg, 3, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        CHECK_EQ(msg.n_fds, 1);
        CHECK_EQ(msg.fds[0], fds[0]);
        CHECK(fd_is_open(fds[0]));
        CHECK(!fd_is_open(fds[1]) && !fd_is_open(fds[2]));
        vhost_user_msg_close_fds(&msg);

        /* Index beyond the port, and stray high bits. */
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = MAX_VRINGS;
        add_fds(&msg, 1, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_VRING_INDEX);
        CHECK(!fd_is_open(fds[0]));
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = 1 | (1ull << 9);
        add_fds(&msg, 1, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_VRING_INDEX);
        msg = make_msg(requests[i], 8);
        msg.payload.u64 = 1 | (1ull << 40);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_VRING_INDEX);
    }
}

static void
test_extra_fds_closed(void)
{
    struct vhost_user_msg msg = make_msg(VHOST_USER_SET_FEATURES, 8);
    int fds[VHOST_USER_MAX_FDS];

    add_fds(&msg, VHOST_USER_MAX_FDS, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    CHECK_EQ(msg.n_fds, 0);
    for (int i = 0; i < VHOST_USER_MAX_FDS; i++) {
        CHECK(!fd_is_open(fds[i]));
    }
}

static void
test_one_fd_requests(void)
{
    static const struct {
        uint32_t request;
        uint32_t size;
    } cases[] = {
        { VHOST_USER_SET_LOG_BASE, 16 },
        { VHOST_USER_SET_LOG_FD, 0 },
        { VHOST_USER_SET_BACKEND_REQ_FD, 0 },
        { VHOST_USER_SET_INFLIGHT_FD, 24 },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vhost_user_msg msg = make_msg(cases[i].request, cases[i].size);
        int fds[2];

        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_FD_COUNT);
        msg = make_msg(cases[i].request, cases[i].size);
        add_fds(&msg, 2, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        CHECK_EQ(msg.n_fds, 1);
        CHECK(!fd_is_open(fds[1]));
        vhost_user_msg_close_fds(&msg);
    }
}

static void
set_region(struct vhost_user_mem_region *r, uint64_t gpa, uint64_t size,
           uint64_t uaddr, uint64_t offset)
{
    r->guest_phys_addr = gpa;
    r->memory_size = size;
    r->userspace_addr = uaddr;
    r->mmap_offset = offset;
}

static struct vhost_user_msg
make_mem_table(uint32_t n)
{
    struct vhost_user_msg msg = make_msg(VHOST_USER_SET_MEM_TABLE,
                                         8 + 32 * n);

    msg.payload.mem.nregions = n;
    for (uint32_t i = 0; i < n && i < VHOST_USER_MAX_MEM_REGIONS; i++) {
        set_region(&msg.payload.mem.regions[i], i * 0x100000, 0x100000,
                   0x7f0000000000 + i * 0x100000, 0);
    }
    return msg;
}

static void
test_mem_table_valid(void)
{
    for (uint32_t n = 1; n <= VHOST_USER_MAX_MEM_REGIONS; n++) {
        struct vhost_user_msg msg = make_mem_table(n);
        int fds[VHOST_USER_MAX_FDS];

        add_fds(&msg, n, fds);
        CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
        CHECK_EQ(msg.n_fds, n);
        vhost_user_msg_close_fds(&msg);
    }
}

static void
test_mem_table_region_count(void)
{
    struct vhost_user_msg msg = make_msg(VHOST_USER_SET_MEM_TABLE, 8);

    msg.payload.mem.nregions = 0;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);

    msg = make_mem_table(VHOST_USER_MAX_MEM_REGIONS);
    msg.payload.mem.nregions = VHOST_USER_MAX_MEM_REGIONS + 1;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);
    msg.payload.mem.nregions = UINT32_MAX;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);

    /* Size must match the count exactly. */
    msg = make_mem_table(2);
    msg.size += 32;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_SIZE);
    msg.size -= 64;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_SIZE);
    msg.size = 4;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_SIZE);
}

static void
test_mem_table_fd_count(void)
{
    struct vhost_user_msg msg = make_mem_table(3);
    int fds[VHOST_USER_MAX_FDS];

    add_fds(&msg, 2, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_FD_COUNT);
    CHECK(!fd_is_open(fds[0]) && !fd_is_open(fds[1]));

    msg = make_mem_table(3);
    add_fds(&msg, 5, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    CHECK_EQ(msg.n_fds, 3);
    CHECK(!fd_is_open(fds[3]) && !fd_is_open(fds[4]));
    vhost_user_msg_close_fds(&msg);
}

static void
test_mem_table_bad_regions(void)
{
    struct vhost_user_msg msg;
    int fds[VHOST_USER_MAX_FDS];

    /* Zero-sized. */
    msg = make_mem_table(2);
    msg.payload.mem.regions[1].memory_size = 0;
    add_fds(&msg, 2, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);
    CHECK(!fd_is_open(fds[0]));

    /* Overlapping guest-physical ranges. */
    msg = make_mem_table(2);
    msg.payload.mem.regions[1].guest_phys_addr = 0x80000;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);

    /* Overlapping front-end addresses. */
    msg = make_mem_table(2);
    msg.payload.mem.regions[1].userspace_addr = 0x7f0000000000 + 0xfffff;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);

    /* Adjacent is fine. */
    msg = make_mem_table(2);
    add_fds(&msg, 2, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    vhost_user_msg_close_fds(&msg);

    /* Wrapping around 2**64 in each address space. */
    msg = make_mem_table(1);
    set_region(&msg.payload.mem.regions[0], UINT64_MAX - 10, 0x1000, 0, 0);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);
    set_region(&msg.payload.mem.regions[0], 0, 0x1000, UINT64_MAX - 10, 0);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);
    set_region(&msg.payload.mem.regions[0], 0, 0x1000, 0, UINT64_MAX - 10);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);

    /* A region that ends exactly at the top of the address space. */
    msg = make_mem_table(1);
    set_region(&msg.payload.mem.regions[0], UINT64_MAX - 0xfff, 0x1000,
               0x1000, 0);
    add_fds(&msg, 1, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    vhost_user_msg_close_fds(&msg);
}

static void
test_single_region_messages(void)
{
    struct vhost_user_msg msg;
    int fds[2];

    msg = make_msg(VHOST_USER_ADD_MEM_REG, 40);
    set_region(&msg.payload.mem_single.region, 0, 0x1000, 0x1000, 0);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_FD_COUNT);
    add_fds(&msg, 1, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    vhost_user_msg_close_fds(&msg);

    msg = make_msg(VHOST_USER_ADD_MEM_REG, 32);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_SIZE);

    msg = make_msg(VHOST_USER_ADD_MEM_REG, 40);
    set_region(&msg.payload.mem_single.region, 0, 0, 0x1000, 0);
    add_fds(&msg, 1, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_MEM_TABLE);

    /* REM_MEM_REG: an fd (older QEMU) is accepted and closed. */
    msg = make_msg(VHOST_USER_REM_MEM_REG, 40);
    set_region(&msg.payload.mem_single.region, 0, 0x1000, 0x1000, 0);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    add_fds(&msg, 1, fds);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    CHECK_EQ(msg.n_fds, 0);
    CHECK(!fd_is_open(fds[0]));
}

static void
test_config_messages(void)
{
    struct vhost_user_msg msg;

    msg = make_msg(VHOST_USER_GET_CONFIG, 12 + 10);
    msg.payload.config.size = 10;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    msg.payload.config.offset = 246;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_OK);
    msg.payload.config.offset = 247;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_CONFIG);
    msg.payload.config.offset = UINT32_MAX;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_CONFIG);

    msg = make_msg(VHOST_USER_SET_CONFIG, 12 + 10);
    msg.payload.config.size = 11;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_CONFIG);
    msg.payload.config.size = 257;
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_CONFIG);
    msg = make_msg(VHOST_USER_SET_CONFIG, 8);
    CHECK_EQ(validate(&msg), VHOST_USER_WIRE_BAD_SIZE);
}

static void
test_request_classes(void)
{
    CHECK(vhost_user_request_has_reply(VHOST_USER_GET_FEATURES));
    CHECK(vhost_user_request_has_reply(VHOST_USER_GET_VRING_BASE));
    CHECK(vhost_user_request_has_reply(VHOST_USER_SET_LOG_BASE));
    CHECK(vhost_user_request_has_reply(VHOST_USER_GET_QUEUE_NUM));
    CHECK(!vhost_user_request_has_reply(VHOST_USER_SET_MEM_TABLE));
    CHECK(!vhost_user_request_has_reply(1000));

    struct vhost_user_msg msg = make_msg(VHOST_USER_SET_FEATURES, 8);
    CHECK_EQ(vhost_user_msg_vring_index(&msg), -1);
}

static void
test_reply_encoding(void)
{
    struct vhost_user_msg msg = make_msg(VHOST_USER_GET_FEATURES, 0);
    uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD];
    uint32_t words[3];
    uint64_t value;
    int fd;

    add_fds(&msg, 1, &fd);
    vhost_user_msg_make_reply_u64(&msg, 0x140008000ull);
    CHECK_EQ(msg.n_fds, 0);
    CHECK(!fd_is_open(fd));
    CHECK_EQ(vhost_user_encode(&msg, buf, sizeof buf), 20);
    memcpy(words, buf, sizeof words);
    memcpy(&value, buf + 12, sizeof value);
    CHECK_EQ(words[0], VHOST_USER_GET_FEATURES);
    CHECK_EQ(words[1], VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG);
    CHECK_EQ(words[2], 8);
    CHECK_EQ(value, 0x140008000ull);
    CHECK_EQ(vhost_user_encode(&msg, buf, 19), 0);

    msg = make_msg(VHOST_USER_GET_VRING_BASE, 8);
    vhost_user_msg_make_reply_state(&msg, 5, 4242);
    CHECK_EQ(vhost_user_encode(&msg, buf, sizeof buf), 20);
    memcpy(words, buf + 12, 8);
    CHECK_EQ(words[0], 5);
    CHECK_EQ(words[1], 4242);
}

static void
test_error_names(void)
{
    for (int e = 0; e < VHOST_USER_WIRE_N_ERRORS; e++) {
        const char *name = vhost_user_wire_error_name(e);

        CHECK(name && name[0] && strcmp(name, "invalid"));
    }
    CHECK(!strcmp(vhost_user_wire_error_name(VHOST_USER_WIRE_N_ERRORS),
                  "invalid"));
}

static const struct unit_test tests[] = {
    { "header_decode", test_header_decode },
    { "header_version", test_header_version },
    { "header_reply_flag", test_header_reply_flag },
    { "header_too_big", test_header_too_big },
    { "unknown_request", test_unknown_request },
    { "payload_sizes", test_payload_sizes },
    { "fd_only_messages", test_fd_only_messages_take_0_or_8_bytes },
    { "vring_index_limit", test_vring_index_limit },
    { "vring_fd_messages", test_vring_fd_messages },
    { "extra_fds_closed", test_extra_fds_closed },
    { "one_fd_requests", test_one_fd_requests },
    { "mem_table_valid", test_mem_table_valid },
    { "mem_table_region_count", test_mem_table_region_count },
    { "mem_table_fd_count", test_mem_table_fd_count },
    { "mem_table_bad_regions", test_mem_table_bad_regions },
    { "single_region_messages", test_single_region_messages },
    { "config_messages", test_config_messages },
    { "request_classes", test_request_classes },
    { "reply_encoding", test_reply_encoding },
    { "error_names", test_error_names },
};

UNIT_SUITE(wire_suite, tests);
