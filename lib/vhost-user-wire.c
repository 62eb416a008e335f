/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The vhost-user wire codec: message layouts, one table of per-request
 * rules, and validation of a message on its own. */

#include "vhost-user-wire.h"

#include <string.h>
#include <unistd.h>

#include "virtio.h"

/* How many descriptors a request carries. */
enum fd_rule {
    FDS_NONE,           /* None; any that come are closed. */
    FDS_ONE,            /* Exactly one. */
    FDS_OPTIONAL,       /* Zero or one (REM_MEM_REG: older QEMU sends one). */
    FDS_VRING_FD,       /* One, unless the payload's "no fd" bit is set. */
    FDS_PER_REGION,     /* One per memory region (SET_MEM_TABLE). */
};

/* What payload a request carries. */
enum payload_rule {
    PAYLOAD_NONE,       /* Size 0. */
    PAYLOAD_U64,        /* Size 8. */
    PAYLOAD_NONE_OR_U64,/* Size 0 or 8 (fd-only messages; senders differ). */
    PAYLOAD_STATE,      /* struct vhost_user_vring_state. */
    PAYLOAD_ADDR,       /* struct vhost_user_vring_addr. */
    PAYLOAD_MEM_TABLE,  /* struct vhost_user_mem_table, 'nregions' long. */
    PAYLOAD_MEM_SINGLE, /* struct vhost_user_mem_single. */
    PAYLOAD_LOG,        /* struct vhost_user_log. */
    PAYLOAD_CONFIG,     /* struct vhost_user_config, 'size' long. */
    PAYLOAD_INFLIGHT,   /* struct vhost_user_inflight. */
};

/* One row per request: the wire rules, what the request needs negotiated
 * and what it is answered with.  The device's handlers rely on it. */
struct request_info {
    const char *name;           /* NULL: not a request a net device meets. */
    enum payload_rule payload;
    enum fd_rule fds;
    enum vhost_user_reply reply;
    bool per_vring;             /* Addresses one vring. */
    int8_t protocol_feature;    /* Protocol feature it needs, or -1. */
    int8_t virtio_feature;      /* Acked virtio feature it needs, or -1. */
};

#define NO_FEATURE -1
#define P(FEATURE) VHOST_USER_PROTOCOL_F_##FEATURE
#define V(FEATURE) FEATURE

static const struct request_info requests[VHOST_USER_N_REQUESTS] = {
#define R(NAME, PAYLOAD, FDS, REPLY, VRING, PROTOCOL, VIRTIO)           \
    [VHOST_USER_##NAME] = { #NAME, PAYLOAD_##PAYLOAD, FDS_##FDS,        \
                            VHOST_USER_REPLY_##REPLY, VRING,            \
                            PROTOCOL, VIRTIO }
#define NONE_ NO_FEATURE
    /*                       payload      fds         reply  vring
     *                       protocol feature         acked virtio feature */
    R(GET_FEATURES,          NONE,        NONE,       U64,   false,
      NONE_,                 NONE_),
    R(SET_FEATURES,          U64,         NONE,       NONE,  false,
      NONE_,                 NONE_),
    R(SET_OWNER,             NONE,        NONE,       NONE,  false,
      NONE_,                 NONE_),
    R(RESET_OWNER,           NONE,        NONE,       NONE,  false,
      NONE_,                 NONE_),
    R(SET_MEM_TABLE,         MEM_TABLE,   PER_REGION, NONE,  false,
      NONE_,                 NONE_),
    /* (The log comes before LOG_ALL is acked: QEMU sends SET_LOG_BASE
     * first when migration starts, and SET_FEATURES with LOG_ALL after.) */
    R(SET_LOG_BASE,          LOG,         ONE,        U64,   false,
      P(LOG_SHMFD),          NONE_),
    R(SET_LOG_FD,            NONE_OR_U64, ONE,        NONE,  false,
      P(LOG_SHMFD),          NONE_),
    R(SET_VRING_NUM,         STATE,       NONE,       NONE,  true,
      NONE_,                 NONE_),
    R(SET_VRING_ADDR,        ADDR,        NONE,       NONE,  true,
      NONE_,                 NONE_),
    R(SET_VRING_BASE,        STATE,       NONE,       NONE,  true,
      NONE_,                 NONE_),
    R(GET_VRING_BASE,        STATE,       NONE,       STATE, true,
      NONE_,                 NONE_),
    R(SET_VRING_KICK,        U64,         VRING_FD,   NONE,  true,
      NONE_,                 NONE_),
    R(SET_VRING_CALL,        U64,         VRING_FD,   NONE,  true,
      NONE_,                 NONE_),
    R(SET_VRING_ERR,         U64,         VRING_FD,   NONE,  true,
      NONE_,                 NONE_),
    R(GET_PROTOCOL_FEATURES, NONE,        NONE,       U64,   false,
      NONE_,                 NONE_),
    R(SET_PROTOCOL_FEATURES, U64,         NONE,       NONE,  false,
      NONE_,                 NONE_),
    R(GET_QUEUE_NUM,         NONE,        NONE,       U64,   false,
      P(MQ),                 NONE_),
    R(SET_VRING_ENABLE,      STATE,       NONE,       NONE,  true,
      NONE_,                 V(VHOST_USER_F_PROTOCOL_FEATURES)),
    R(SEND_RARP,             U64,         NONE,       NONE,  false,
      P(RARP),               NONE_),
    R(NET_SET_MTU,           U64,         NONE,       NONE,  false,
      P(NET_MTU),            V(VIRTIO_NET_F_MTU)),
    R(SET_BACKEND_REQ_FD,    NONE_OR_U64, ONE,        NONE,  false,
      P(BACKEND_REQ),        NONE_),
    R(GET_CONFIG,            CONFIG,      NONE,       CONFIG, false,
      P(CONFIG),             NONE_),
    R(SET_CONFIG,            CONFIG,      NONE,       NONE,  false,
      P(CONFIG),             NONE_),
    R(GET_INFLIGHT_FD,       INFLIGHT,    NONE,       INFLIGHT, false,
      P(INFLIGHT_SHMFD),     NONE_),
    R(SET_INFLIGHT_FD,       INFLIGHT,    ONE,        NONE,  false,
      P(INFLIGHT_SHMFD),     NONE_),
    R(RESET_DEVICE,          NONE,        NONE,       NONE,  false,
      P(RESET_DEVICE),       NONE_),
    R(GET_MAX_MEM_SLOTS,     NONE,        NONE,       U64,   false,
      P(CONFIGURE_MEM_SLOTS), NONE_),
    R(ADD_MEM_REG,           MEM_SINGLE,  ONE,        NONE,  false,
      P(CONFIGURE_MEM_SLOTS), NONE_),
    R(REM_MEM_REG,           MEM_SINGLE,  OPTIONAL,   NONE,  false,
      P(CONFIGURE_MEM_SLOTS), NONE_),
    R(SET_STATUS,            U64,         NONE,       NONE,  false,
      P(STATUS),             NONE_),
    R(GET_STATUS,            NONE,        NONE,       U64,   false,
      P(STATUS),             NONE_),
#undef NONE_
#undef R
};
#undef P
#undef V

static const struct request_info *
lookup(uint32_t request)
{
    if (request < VHOST_USER_N_REQUESTS && requests[request].name) {
        return &requests[request];
    }
    return NULL;
}

const char *
vhost_user_request_name(uint32_t request)
{
    const struct request_info *info = lookup(request);

    return info ? info->name : "UNKNOWN";
}

const char *
vhost_user_wire_error_name(enum vhost_user_wire_error error)
{
    static const char *const names[VHOST_USER_WIRE_N_ERRORS] = {
        [VHOST_USER_WIRE_OK] = "ok",
        [VHOST_USER_WIRE_BAD_VERSION] = "bad_version",
        [VHOST_USER_WIRE_BAD_FLAGS] = "bad_flags",
        [VHOST_USER_WIRE_UNKNOWN_REQUEST] = "unknown_request",
        [VHOST_USER_WIRE_BAD_SIZE] = "bad_size",
        [VHOST_USER_WIRE_TOO_BIG] = "too_big",
        [VHOST_USER_WIRE_BAD_FD_COUNT] = "bad_fd_count",
        [VHOST_USER_WIRE_BAD_VRING_INDEX] = "bad_vring_index",
        [VHOST_USER_WIRE_BAD_MEM_TABLE] = "bad_mem_table",
        [VHOST_USER_WIRE_BAD_CONFIG] = "bad_config",
    };

    return error < VHOST_USER_WIRE_N_ERRORS ? names[error] : "invalid";
}

enum vhost_user_reply
vhost_user_request_reply(uint32_t request)
{
    const struct request_info *info = lookup(request);

    return info ? info->reply : VHOST_USER_REPLY_NONE;
}

bool
vhost_user_request_has_reply(uint32_t request)
{
    return vhost_user_request_reply(request) != VHOST_USER_REPLY_NONE;
}

int
vhost_user_request_protocol_feature(uint32_t request)
{
    const struct request_info *info = lookup(request);

    return info ? info->protocol_feature : NO_FEATURE;
}

int
vhost_user_request_virtio_feature(uint32_t request)
{
    const struct request_info *info = lookup(request);

    return info ? info->virtio_feature : NO_FEATURE;
}

static uint32_t
get_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

enum vhost_user_wire_error
vhost_user_decode_header(const uint8_t buf[VHOST_USER_HDR_SIZE],
                         struct vhost_user_msg *msg)
{
    msg->request = get_u32(buf);
    msg->flags = get_u32(buf + 4);
    msg->size = get_u32(buf + 8);
    msg->n_fds = 0;

    if ((msg->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
        return VHOST_USER_WIRE_BAD_VERSION;
    }
    if (msg->flags & VHOST_USER_REPLY_FLAG) {
        /* Replies flow from the back-end only. */
        return VHOST_USER_WIRE_BAD_FLAGS;
    }
    if (msg->size > VHOST_USER_MAX_PAYLOAD) {
        return VHOST_USER_WIRE_TOO_BIG;
    }
    return VHOST_USER_WIRE_OK;
}

void
vhost_user_msg_close_fds(struct vhost_user_msg *msg)
{
    for (int i = 0; i < msg->n_fds; i++) {
        if (msg->fds[i] >= 0) {
            close(msg->fds[i]);
        }
    }
    msg->n_fds = 0;
}

/* Keeps the first 'n' of the fds of 'msg' and closes the rest. */
static void
keep_fds(struct vhost_user_msg *msg, int n)
{
    for (int i = n; i < msg->n_fds; i++) {
        if (msg->fds[i] >= 0) {
            close(msg->fds[i]);
        }
    }
    if (msg->n_fds > n) {
        msg->n_fds = n;
    }
}

static bool
region_is_valid(const struct vhost_user_mem_region *r, const char **detail)
{
    if (!r->memory_size) {
        *detail = "memory region of size zero";
        return false;
    }
    if (r->guest_phys_addr + r->memory_size - 1 < r->guest_phys_addr
        || r->userspace_addr + r->memory_size - 1 < r->userspace_addr
        || r->mmap_offset + r->memory_size - 1 < r->mmap_offset) {
        *detail = "memory region wraps around the address space";
        return false;
    }
    return true;
}

/* Checks SET_MEM_TABLE's table: the count, each region, and that no two
 * regions overlap in guest-physical or front-end virtual addresses. */
static enum vhost_user_wire_error
check_mem_table(const struct vhost_user_msg *msg, const char **detail)
{
    const struct vhost_user_mem_table *mem = &msg->payload.mem;

    if (msg->size < offsetof(struct vhost_user_mem_table, regions)) {
        *detail = "memory table shorter than its header";
        return VHOST_USER_WIRE_BAD_SIZE;
    }
    if (mem->nregions == 0 || mem->nregions > VHOST_USER_MAX_MEM_REGIONS) {
        *detail = "memory table region count not between 1 and 8";
        return VHOST_USER_WIRE_BAD_MEM_TABLE;
    }
    if (msg->size != offsetof(struct vhost_user_mem_table, regions)
                     + mem->nregions * sizeof mem->regions[0]) {
        *detail = "memory table size does not match its region count";
        return VHOST_USER_WIRE_BAD_SIZE;
    }
    for (uint32_t i = 0; i < mem->nregions; i++) {
        const struct vhost_user_mem_region *a = &mem->regions[i];

        if (!region_is_valid(a, detail)) {
            return VHOST_USER_WIRE_BAD_MEM_TABLE;
        }
        for (uint32_t j = 0; j < i; j++) {
            const struct vhost_user_mem_region *b = &mem->regions[j];

            if (vhost_user_ranges_overlap(a->guest_phys_addr,
                                          a->memory_size,
                                          b->guest_phys_addr,
                                          b->memory_size)) {
                *detail = "memory regions overlap in guest-physical space";
                return VHOST_USER_WIRE_BAD_MEM_TABLE;
            }
            if (vhost_user_ranges_overlap(a->userspace_addr,
                                          a->memory_size,
                                          b->userspace_addr,
                                          b->memory_size)) {
                *detail = "memory regions overlap in front-end addresses";
                return VHOST_USER_WIRE_BAD_MEM_TABLE;
            }
        }
    }
    return VHOST_USER_WIRE_OK;
}

static enum vhost_user_wire_error
check_payload(const struct request_info *info,
              const struct vhost_user_msg *msg, const char **detail)
{
    size_t want;

    switch (info->payload) {
    case PAYLOAD_NONE:
        want = 0;
        break;
    case PAYLOAD_U64:
        want = sizeof msg->payload.u64;
        break;
    case PAYLOAD_NONE_OR_U64:
        if (msg->size == 0 || msg->size == sizeof msg->payload.u64) {
            return VHOST_USER_WIRE_OK;
        }
        *detail = "payload must be empty or 8 bytes";
        return VHOST_USER_WIRE_BAD_SIZE;
    case PAYLOAD_STATE:
        want = sizeof msg->payload.state;
        break;
    case PAYLOAD_ADDR:
        want = sizeof msg->payload.addr;
        break;
    case PAYLOAD_MEM_TABLE:
        return check_mem_table(msg, detail);
    case PAYLOAD_MEM_SINGLE:
        if (msg->size != sizeof msg->payload.mem_single) {
            *detail = "memory region message must be 40 bytes";
            return VHOST_USER_WIRE_BAD_SIZE;
        }
        if (!region_is_valid(&msg->payload.mem_single.region, detail)) {
            return VHOST_USER_WIRE_BAD_MEM_TABLE;
        }
        return VHOST_USER_WIRE_OK;
    case PAYLOAD_LOG:
        want = sizeof msg->payload.log;
        break;
    case PAYLOAD_CONFIG:
        if (msg->size < VHOST_USER_CONFIG_HDR_SIZE) {
            *detail = "config message shorter than its header";
            return VHOST_USER_WIRE_BAD_SIZE;
        }
        if (msg->payload.config.size > VHOST_USER_MAX_CONFIG_SIZE
            || msg->size != VHOST_USER_CONFIG_HDR_SIZE
                            + msg->payload.config.size) {
            *detail = "config size does not match the message size";
            return VHOST_USER_WIRE_BAD_CONFIG;
        }
        if (msg->payload.config.offset > VHOST_USER_MAX_CONFIG_SIZE
            - msg->payload.config.size) {
            *detail = "config offset and size go past 256 bytes";
            return VHOST_USER_WIRE_BAD_CONFIG;
        }
        return VHOST_USER_WIRE_OK;
    case PAYLOAD_INFLIGHT:
        want = sizeof msg->payload.inflight;
        break;
    default:
        *detail = "internal error: unknown payload rule";
        return VHOST_USER_WIRE_BAD_SIZE;
    }

    if (msg->size != want) {
        *detail = "payload size wrong for this request";
        return VHOST_USER_WIRE_BAD_SIZE;
    }
    return VHOST_USER_WIRE_OK;
}

static enum vhost_user_wire_error
check_fds(const struct request_info *info, struct vhost_user_msg *msg,
          const char **detail)
{
    int need;

    switch (info->fds) {
    case FDS_NONE:
        need = 0;
        break;
    case FDS_ONE:
        need = 1;
        break;
    case FDS_OPTIONAL:
        /* Accepted, never used. */
        need = 0;
        break;
    case FDS_VRING_FD:
        need = msg->payload.u64 & VHOST_USER_VRING_NOFD_MASK ? 0 : 1;
        break;
    case FDS_PER_REGION:
        need = msg->payload.mem.nregions;
        break;
    default:
        need = 0;
        break;
    }

    if (msg->n_fds < need) {
        *detail = need == 1 ? "request needs a file descriptor"
                            : "fewer file descriptors than memory regions";
        vhost_user_msg_close_fds(msg);
        return VHOST_USER_WIRE_BAD_FD_COUNT;
    }
    keep_fds(msg, need);
    return VHOST_USER_WIRE_OK;
}

int
vhost_user_msg_vring_index(const struct vhost_user_msg *msg)
{
    const struct request_info *info = lookup(msg->request);

    if (!info || !info->per_vring) {
        return -1;
    }
    switch (msg->request) {
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        return msg->payload.u64 & VHOST_USER_VRING_IDX_MASK;
    case VHOST_USER_SET_VRING_ADDR:
        return msg->payload.addr.index;
    default:
        return msg->payload.state.index;
    }
}

enum vhost_user_wire_error
vhost_user_validate(struct vhost_user_msg *msg, unsigned int max_vrings,
                    const char **detail)
{
    const struct request_info *info = lookup(msg->request);
    const char *dummy;
    enum vhost_user_wire_error error;

    if (!detail) {
        detail = &dummy;
    }
    *detail = "";

    if ((msg->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
        error = VHOST_USER_WIRE_BAD_VERSION;
        goto refuse;
    }
    if (msg->flags & VHOST_USER_REPLY_FLAG) {
        error = VHOST_USER_WIRE_BAD_FLAGS;
        goto refuse;
    }
    if (msg->size > VHOST_USER_MAX_PAYLOAD) {
        error = VHOST_USER_WIRE_TOO_BIG;
        goto refuse;
    }
    if (!info) {
        *detail = "request not supported by a net back-end";
        error = VHOST_USER_WIRE_UNKNOWN_REQUEST;
        goto refuse;
    }

    error = check_payload(info, msg, detail);
    if (error) {
        goto refuse;
    }
    if (info->per_vring) {
        /* Kick, call and err carry the index in 8 bits of a u64 whose other
         * bits, but the "no fd" bit, must be zero. */
        if ((msg->request == VHOST_USER_SET_VRING_KICK
             || msg->request == VHOST_USER_SET_VRING_CALL
             || msg->request == VHOST_USER_SET_VRING_ERR)
            && msg->payload.u64 & ~(uint64_t) (VHOST_USER_VRING_IDX_MASK
                                               | VHOST_USER_VRING_NOFD_MASK)) {
            *detail = "unknown bits set beside the vring index";
            error = VHOST_USER_WIRE_BAD_VRING_INDEX;
            goto refuse;
        }
        if (vhost_user_msg_vring_index(msg) >= max_vrings
            || vhost_user_msg_vring_index(msg) < 0) {
            *detail = "vring index beyond the port's queue pairs";
            error = VHOST_USER_WIRE_BAD_VRING_INDEX;
            goto refuse;
        }
    }
    return check_fds(info, msg, detail);

refuse:
    vhost_user_msg_close_fds(msg);
    return error;
}

void
vhost_user_msg_make_reply_u64(struct vhost_user_msg *msg, uint64_t value)
{
    vhost_user_msg_close_fds(msg);
    msg->flags = VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG;
    msg->size = sizeof msg->payload.u64;
    msg->payload.u64 = value;
}

void
vhost_user_msg_make_reply_state(struct vhost_user_msg *msg, uint32_t index,
                                uint32_t num)
{
    vhost_user_msg_close_fds(msg);
    msg->flags = VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG;
    msg->size = sizeof msg->payload.state;
    msg->payload.state.index = index;
    msg->payload.state.num = num;
}

size_t
vhost_user_encode(const struct vhost_user_msg *msg, uint8_t *buf, size_t len)
{
    size_t total = VHOST_USER_HDR_SIZE + msg->size;

    if (msg->size > VHOST_USER_MAX_PAYLOAD || len < total) {
        return 0;
    }
    memcpy(buf, &msg->request, 4);
    memcpy(buf + 4, &msg->flags, 4);
    memcpy(buf + 8, &msg->size, 4);
    memcpy(buf + VHOST_USER_HDR_SIZE, &msg->payload, msg->size);
    return total;
}
