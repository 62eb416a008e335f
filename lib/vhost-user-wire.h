/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The vhost-user wire codec. */

#ifndef VHOST_USER_WIRE_H
#define VHOST_USER_WIRE_H 1

/* The vhost-user wire codec: bytes and file descriptors in, validated
 * messages out, and replies back to bytes.
 *
 * This layer knows the message layouts and the rules that can be checked on
 * one message alone: the version bits, the payload size each request must
 * have, the exact number of file descriptors each request carries, vring
 * indexes against the port's limit and the shape of memory tables.  It knows
 * nothing of sockets (the connection manager reads and writes them) nor of
 * device state (the device state machine applies messages in order).
 *
 * It does not depend on Open vSwitch, so that unit tests and fuzzers drive it
 * directly.  All multi-byte fields are in the host's byte order, as the
 * protocol specifies for a front-end and back-end on one host. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Front-end to back-end requests. */
enum vhost_user_request {
    VHOST_USER_NONE = 0,
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_LOG_BASE = 6,
    VHOST_USER_SET_LOG_FD = 7,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_SEND_RARP = 19,
    VHOST_USER_NET_SET_MTU = 20,
    VHOST_USER_SET_BACKEND_REQ_FD = 21,
    VHOST_USER_IOTLB_MSG = 22,
    VHOST_USER_SET_VRING_ENDIAN = 23,
    VHOST_USER_GET_CONFIG = 24,
    VHOST_USER_SET_CONFIG = 25,
    VHOST_USER_CREATE_CRYPTO_SESSION = 26,
    VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
    VHOST_USER_POSTCOPY_ADVISE = 28,
    VHOST_USER_POSTCOPY_LISTEN = 29,
    VHOST_USER_POSTCOPY_END = 30,
    VHOST_USER_GET_INFLIGHT_FD = 31,
    VHOST_USER_SET_INFLIGHT_FD = 32,
    VHOST_USER_GPU_SET_SOCKET = 33,
    VHOST_USER_RESET_DEVICE = 34,
    VHOST_USER_VRING_KICK = 35,
    VHOST_USER_GET_MAX_MEM_SLOTS = 36,
    VHOST_USER_ADD_MEM_REG = 37,
    VHOST_USER_REM_MEM_REG = 38,
    VHOST_USER_SET_STATUS = 39,
    VHOST_USER_GET_STATUS = 40,
    VHOST_USER_N_REQUESTS
};

/* Header flags. */
#define VHOST_USER_VERSION_MASK  0x3u
#define VHOST_USER_VERSION       0x1u
#define VHOST_USER_REPLY_FLAG    (1u << 2)
#define VHOST_USER_NEED_REPLY    (1u << 3)

/* Feature bits of vhost-user itself (the virtio ones are in virtio.h). */
#define VHOST_F_LOG_ALL              26
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ                    0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD             1
#define VHOST_USER_PROTOCOL_F_RARP                  2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK             3
#define VHOST_USER_PROTOCOL_F_NET_MTU               4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ           5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN          6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION        7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT             8
#define VHOST_USER_PROTOCOL_F_CONFIG                9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD      10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER        11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD       12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE         13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS  15
#define VHOST_USER_PROTOCOL_F_STATUS               16

/* Limits of the protocol. */
#define VHOST_USER_HDR_SIZE          12
#define VHOST_USER_MAX_FDS            8   /* Per message (SET_MEM_TABLE). */
#define VHOST_USER_MAX_MEM_REGIONS    8   /* In one SET_MEM_TABLE. */
#define VHOST_USER_MAX_QUEUE_PAIRS  128   /* Vring index is 8 bits. */
#define VHOST_USER_MAX_VRINGS       (2 * VHOST_USER_MAX_QUEUE_PAIRS)
#define VHOST_USER_MAX_CONFIG_SIZE  256
#define VHOST_USER_VRING_IDX_MASK   0xffu
#define VHOST_USER_VRING_NOFD_MASK  (1u << 8)
#define VHOST_USER_MAX_MTU        65535   /* virtio-net config is 16 bits. */
#define VHOST_USER_MIN_MTU           68

/* Payloads. */
struct vhost_user_vring_state {
    uint32_t index;
    uint32_t num;
};

#define VHOST_VRING_F_LOG 0x1u

struct vhost_user_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
};

struct vhost_user_mem_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
};

struct vhost_user_mem_table {
    uint32_t nregions;
    uint32_t padding;
    struct vhost_user_mem_region regions[VHOST_USER_MAX_MEM_REGIONS];
};

/* ADD_MEM_REG and REM_MEM_REG. */
struct vhost_user_mem_single {
    uint64_t padding;
    struct vhost_user_mem_region region;
};

struct vhost_user_log {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};

struct vhost_user_config {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint8_t region[VHOST_USER_MAX_CONFIG_SIZE];
};
#define VHOST_USER_CONFIG_HDR_SIZE 12

struct vhost_user_inflight {
    uint64_t mmap_size;
    uint64_t mmap_offset;
    uint16_t num_queues;
    uint16_t queue_size;
};

struct vhost_user_iotlb {
    uint64_t iova;
    uint64_t size;
    uint64_t uaddr;
    uint8_t perm;
    uint8_t type;
};

union vhost_user_payload {
    uint64_t u64;
    struct vhost_user_vring_state state;
    struct vhost_user_vring_addr addr;
    struct vhost_user_mem_table mem;
    struct vhost_user_mem_single mem_single;
    struct vhost_user_log log;
    struct vhost_user_config config;
    struct vhost_user_inflight inflight;
    struct vhost_user_iotlb iotlb;
    uint8_t raw[VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE];
};

/* The largest payload any request may carry. */
#define VHOST_USER_MAX_PAYLOAD sizeof(union vhost_user_payload)

/* A message, as received from or sent to the socket. */
struct vhost_user_msg {
    uint32_t request;           /* enum vhost_user_request. */
    uint32_t flags;             /* VHOST_USER_VERSION, _REPLY_FLAG, ... */
    uint32_t size;              /* Bytes of 'payload' in use. */
    union vhost_user_payload payload;

    /* File descriptors that came with the message, owned by it. */
    int fds[VHOST_USER_MAX_FDS];
    int n_fds;
};

/* Why a message was refused.  Each has a name for logs and counters. */
enum vhost_user_wire_error {
    VHOST_USER_WIRE_OK = 0,
    VHOST_USER_WIRE_BAD_VERSION,     /* Version bits not 1. */
    VHOST_USER_WIRE_BAD_FLAGS,       /* Reply flag on a request, etc. */
    VHOST_USER_WIRE_UNKNOWN_REQUEST, /* Request number not a net request. */
    VHOST_USER_WIRE_BAD_SIZE,        /* Payload size wrong for request. */
    VHOST_USER_WIRE_TOO_BIG,         /* Payload larger than any request's. */
    VHOST_USER_WIRE_BAD_FD_COUNT,    /* Fewer fds than the request needs. */
    VHOST_USER_WIRE_BAD_VRING_INDEX, /* Vring index >= 2 * max pairs. */
    VHOST_USER_WIRE_BAD_MEM_TABLE,   /* Region count, sizes, overlaps. */
    VHOST_USER_WIRE_BAD_CONFIG,      /* GET/SET_CONFIG size or offset. */
    VHOST_USER_WIRE_N_ERRORS
};

const char *vhost_user_request_name(uint32_t request);
const char *vhost_user_wire_error_name(enum vhost_user_wire_error);

/* Decodes the 12-byte header at 'buf' into 'msg' (request, flags, size) and
 * checks what can be checked on it alone: version, flags and a size that
 * fits VHOST_USER_MAX_PAYLOAD.  A connection that gets a header refused here
 * cannot find the next message boundary and must be dropped. */
enum vhost_user_wire_error vhost_user_decode_header(
    const uint8_t buf[VHOST_USER_HDR_SIZE], struct vhost_user_msg *msg);

/* Checks a whole message, header, payload and fds, for a device of
 * 'max_vrings' vrings.  Descriptors the request does not use are closed and
 * removed from 'msg', so that a valid message holds exactly the fds its
 * request needs.  On success returns VHOST_USER_WIRE_OK.  On failure the
 * message must not take effect; '*detail' (if nonnull) then points to a
 * static string that says more than the error's name. */
enum vhost_user_wire_error vhost_user_validate(struct vhost_user_msg *msg,
                                               unsigned int max_vrings,
                                               const char **detail);

/* The vring index a per-vring request addresses, or -1 for a device-wide
 * request.  Only meaningful for a validated message. */
int vhost_user_msg_vring_index(const struct vhost_user_msg *msg);

/* What a request is answered with, besides a REPLY_ACK ack. */
enum vhost_user_reply {
    VHOST_USER_REPLY_NONE,      /* Nothing (an ack if asked for one). */
    VHOST_USER_REPLY_U64,       /* A u64: features, counts, an ack. */
    VHOST_USER_REPLY_STATE,     /* struct vhost_user_vring_state. */
    VHOST_USER_REPLY_CONFIG,    /* struct vhost_user_config. */
    VHOST_USER_REPLY_INFLIGHT,  /* struct vhost_user_inflight. */
};

/* What the front-end always waits for after 'request'. */
enum vhost_user_reply vhost_user_request_reply(uint32_t request);

/* Whether the front-end always waits for a reply to 'request'. */
bool vhost_user_request_has_reply(uint32_t request);

/* The protocol feature bit 'request' may be sent only with (negotiated by
 * SET_PROTOCOL_FEATURES), or -1 if none. */
int vhost_user_request_protocol_feature(uint32_t request);

/* The virtio feature bit 'request' may be sent only with (acked by
 * SET_FEATURES; some front-ends send such requests before SET_FEATURES,
 * while the feature is only offered), or -1 if none. */
int vhost_user_request_virtio_feature(uint32_t request);

/* Whether [a, a + a_len) and [b, b + b_len) share a byte.  Both ranges are
 * nonempty and do not wrap (as in a region that passed validation). */
static inline bool
vhost_user_ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b,
                          uint64_t b_len)
{
    return a <= b + (b_len - 1) && b <= a + (a_len - 1);
}

/* Closes and forgets every descriptor 'msg' holds. */
void vhost_user_msg_close_fds(struct vhost_user_msg *msg);

/* Turns 'msg' into a reply to itself carrying the 64-bit 'value' (for
 * GET_FEATURES and friends, and REPLY_ACK acks).  Closes its fds. */
void vhost_user_msg_make_reply_u64(struct vhost_user_msg *msg,
                                   uint64_t value);

/* Turns 'msg' into a reply carrying its own (updated) vring state, for
 * GET_VRING_BASE. */
void vhost_user_msg_make_reply_state(struct vhost_user_msg *msg,
                                     uint32_t index, uint32_t num);

/* Encodes 'msg' header and payload into 'buf' of 'len' bytes.  Returns the
 * number of bytes written, or 0 if 'buf' is too small. */
size_t vhost_user_encode(const struct vhost_user_msg *msg, uint8_t *buf,
                         size_t len);

#endif /* vhost-user-wire.h */
