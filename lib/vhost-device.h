/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The vhost-user device state machine of a net back-end. */

#ifndef VHOST_DEVICE_H
#define VHOST_DEVICE_H 1

/* The vhost-user device state machine of a net back-end: validated messages
 * in, device state (features, guest memory, vrings, queue enables) and
 * replies out.
 *
 * One control thread calls everything here.  Data-path threads see only the
 * 'live' virtq pointer and the 'enabled' flag of each vring, read with
 * acquire/relaxed atomics.  Whenever the control thread changes something a
 * live virtq uses (memory table, ring addresses, call fd) or stops a ring,
 * it first unpublishes the virtq, and changes it only once no data-path
 * thread can still be using it: after ops->quiesce_vring() of each ring
 * (a data path that uses a ring under a lock of its own), or else after
 * ops->synchronize().  Every message is answered before the next is read.
 *
 * No Open vSwitch dependency. */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "vhost-log.h"
#include "vhost-mem.h"
#include "vhost-user-wire.h"
#include "virtq.h"

/* Virtio features a vhostmq port offers. */
#define VHOST_DEVICE_FEATURES                    \
    ((1ull << VIRTIO_F_VERSION_1)                \
     | (1ull << VIRTIO_NET_F_MRG_RXBUF)          \
     | (1ull << VIRTIO_RING_F_INDIRECT_DESC)     \
     | (1ull << VIRTIO_RING_F_EVENT_IDX)         \
     | (1ull << VIRTIO_F_ANY_LAYOUT)             \
     | (1ull << VIRTIO_F_NOTIFY_ON_EMPTY)        \
     | (1ull << VIRTIO_NET_F_MQ)                 \
     | (1ull << VIRTIO_NET_F_CTRL_VQ)            \
     | (1ull << VIRTIO_NET_F_MTU)                \
     | (1ull << VIRTIO_NET_F_GUEST_ANNOUNCE)     \
     | (1ull << VIRTIO_F_RING_PACKED)            \
     | (1ull << VIRTIO_F_IN_ORDER)               \
     | (1ull << VHOST_F_LOG_ALL)                 \
     | (1ull << VHOST_USER_F_PROTOCOL_FEATURES))

/* Offload features a port offers on top when the switch does checksum and
 * TCP segmentation offloads (see vnet-offload.h): a guest may then send
 * frames with partial checksums and TCP frames of up to 64 KiB, and take
 * them.  (Not ECN with GSO, nor UFO.) */
#define VHOST_DEVICE_OFFLOAD_FEATURES            \
    ((1ull << VIRTIO_NET_F_CSUM)                 \
     | (1ull << VIRTIO_NET_F_GUEST_CSUM)         \
     | (1ull << VIRTIO_NET_F_HOST_TSO4)          \
     | (1ull << VIRTIO_NET_F_HOST_TSO6)          \
     | (1ull << VIRTIO_NET_F_GUEST_TSO4)         \
     | (1ull << VIRTIO_NET_F_GUEST_TSO6))

/* Protocol features a vhostmq port offers. */
#define VHOST_DEVICE_PROTOCOL_FEATURES                          \
    ((1ull << VHOST_USER_PROTOCOL_F_MQ)                         \
     | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD)                \
     | (1ull << VHOST_USER_PROTOCOL_F_RARP)                     \
     | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)                \
     | (1ull << VHOST_USER_PROTOCOL_F_NET_MTU)                  \
     | (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)      \
     | (1ull << VHOST_USER_PROTOCOL_F_STATUS))

/* The most guest memory a device maps unless told otherwise
 * ('max_mem_bytes'): 1 TiB.  Guests of several hundred GiB exist and fit;
 * a front-end cannot take more than 1/128 of a 47-bit address space. */
#define VHOST_DEVICE_DEFAULT_MAX_MEM (1ull << 40)

/* Device status bits (SET_STATUS). */
#define VIRTIO_CONFIG_S_DRIVER_OK 4

/* Log levels for ops->log. */
enum vhost_log_level {
    VHOST_LOG_DBG,
    VHOST_LOG_INFO,
    VHOST_LOG_WARN,             /* Bad input from the front-end. */
    VHOST_LOG_ERR,
};

struct vhost_device_ops {
    /* Waits until no data-path thread can use anything unpublished.  Not
     * called if both ops->defer and ops->quiesce_vring are given: a control
     * thread that must never wait for the data path's grace period (the
     * switch's, which holds a lock other threads take) gives those two and
     * may leave this null. */
    void (*synchronize)(void *aux);
    /* Something the switch cares about changed: readiness, the number of
     * vrings, a queue's enable state, the MTU. */
    void (*changed)(void *aux);
    /* Logs 'msg' (the switch rate-limits WARN and above). */
    void (*log)(void *aux, enum vhost_log_level, const char *msg);
    /* Calls 'cb(arg)', from any thread, once no data-path thread can use
     * anything unpublished before this call, without waiting for that (OVS
     * RCU's ovsrcu_postpone() in the switch).  Optional.  With it a
     * replaced call fd is closed, and a disconnect frees rings, call fds and
     * guest memory, later, instead of after ops->synchronize(). */
    void (*defer)(void *aux, void (*cb)(void *), void *arg);
    /* Returns once no data-path thread still uses what it read of vring
     * 'i' before the call (its live virtq, its enabled flag): for a data
     * path that reads them only under a lock of the ring's own, which this
     * takes and releases.  Optional; without it the device calls
     * ops->synchronize().  With it a message that stops, disables or
     * restarts running rings (GET_VRING_BASE, a disable, features, ring
     * addresses, the memory table) waits out at most one data-path burst
     * per ring, not a grace period: live migration's downtime is mostly the
     * GET_VRING_BASEs of a stopping guest. */
    void (*quiesce_vring)(void *aux, unsigned int i);
};

/* One vring. */
struct vhost_vring {
    /* Control thread only. */
    uint32_t num;               /* Ring size; 0 until SET_VRING_NUM. */
    bool addr_set;
    struct vhost_user_vring_addr addr;
    uint16_t base;              /* Avail index to start from (packed
                                 * ring: position, wrap counter in bit
                                 * 15). */
    uint16_t used_base;         /* Packed ring: the used position the
                                 * front-end's SET_VRING_BASE gave in its
                                 * high half, 0 if none. */
    int kick_fd;                /* -1 if none (or polled). */
    int call_fd;                /* -1 if none. */
    int err_fd;
    bool started;               /* Kick received, not stopped since. */
    bool configured;            /* Front-end sent anything for it. */

    /* Shared with the data path. */
    struct virtq *live;         /* Non-null while started and valid. */
    struct virtq *parked;       /* Taken from the data path, which may
                                 * still be using it (control thread only,
                                 * within one message's handling). */
    bool enabled;               /* SET_VRING_ENABLE state. */

    /* Written by the thread that owns the queue, kept across restarts. */
    struct virtq_stats stats;
};

/* Counters of what the front-end got wrong. */
struct vhost_device_errors {
    uint64_t wire[VHOST_USER_WIRE_N_ERRORS];  /* Refused by the codec. */
    uint64_t state;             /* Valid message, wrong for the state. */
    uint64_t memory;            /* Memory region could not be mapped. */
    uint64_t vring;             /* Vring could not start. */
    uint64_t memory_faults;     /* Guest memory shrank under the switch. */
    uint64_t log;               /* Dirty log (SET_LOG_BASE) refused. */
};

struct vhost_device {
    const char *name;           /* For logs. */
    const struct vhost_device_ops *ops;
    void *aux;

    unsigned int max_queue_pairs;
    unsigned int max_vrings;    /* 2 * max_queue_pairs. */
    unsigned int max_vrings_allocated;  /* Of 'vrings' (at creation). */
    struct vhost_vring *vrings; /* 'max_vrings' of them. */

    bool owner;
    bool features_set;
    uint64_t offered;           /* Virtio features offered (GET_FEATURES):
                                 * VHOST_DEVICE_FEATURES, and those of
                                 * vhost_device_offer_offloads(). */
    uint64_t features;          /* Acked virtio features. */
    uint64_t protocol_features; /* Acked protocol features. */
    uint8_t status;             /* SET_STATUS. */
    uint16_t mtu;               /* NET_SET_MTU, 0 if none. */
    struct vhost_mem *mem;
    uint64_t max_mem_bytes;     /* Most guest memory mapped at once. */

    /* Live migration: the dirty log (SET_LOG_BASE), which running rings
     * mark while LOG_ALL is acked, and the fd SET_LOG_FD gave (kept only
     * to be closed). */
    struct vhost_log *log;
    int log_fd;

    /* SEND_RARP: 0, or VHOST_RARP_PENDING with the MAC to announce in the
     * low 48 bits (its first byte lowest), one word so that a request that
     * comes while the data path takes the last one cannot tear it. */
    uint64_t rarp;              /* Shared with the data path. */

    uint64_t n_messages;
    struct vhost_device_errors errors;
    char last_error[160];
};

/* Result of handling one message. */
enum vhost_device_result {
    VHOST_DEVICE_OK,            /* Done; send 'reply' if '*has_reply'. */
    VHOST_DEVICE_DISCONNECT,    /* No way to go on: drop the connection. */
};

void vhost_device_init(struct vhost_device *, const char *name,
                       unsigned int max_queue_pairs,
                       const struct vhost_device_ops *, void *aux);
void vhost_device_destroy(struct vhost_device *);

/* Whether 'dev' offers VHOST_DEVICE_OFFLOAD_FEATURES: for front-ends that
 * ask from now on (one that already acked its features keeps them). */
void vhost_device_offer_offloads(struct vhost_device *, bool);

/* Handles one message that the connection layer has read in whole (header
 * checked by vhost_user_decode_header()).  The message's fds are consumed.
 * If a reply is due, fills in 'reply' and sets '*has_reply'. */
enum vhost_device_result vhost_device_handle(struct vhost_device *,
                                             struct vhost_user_msg *msg,
                                             struct vhost_user_msg *reply,
                                             bool *has_reply);

/* The front-end went away: stops every ring, unmaps guest memory, closes
 * fds and forgets the negotiation.  Counters stay. */
void vhost_device_disconnect(struct vhost_device *);

/* Whether the guest can exchange traffic: negotiated, memory mapped, the
 * first queue pair started, and (with the STATUS protocol feature) the
 * driver said DRIVER_OK. */
bool vhost_device_is_ready(const struct vhost_device *);

/* Whether the file behind a region of the device's guest memory shrank
 * under the switch (see vhost_mem_faulted()): if so, counts and logs it
 * (once per table) and returns true: the caller must drop the
 * connection. */
bool vhost_device_memory_faulted(struct vhost_device *);

/* Messages refused since the device was created, all reasons. */
uint64_t vhost_device_n_errors(const struct vhost_device *);

/* The number of queue pairs the front-end has set up vrings for. */
unsigned int vhost_device_n_queue_pairs(const struct vhost_device *);

/* Queue pairs and vrings.  Queue pair q is the guest's RX vring 2q (the
 * switch sends into it: OVS tx queue q) and its TX vring 2q + 1 (the
 * switch receives from it: OVS rx queue q). */
static inline unsigned int
vhost_guest_rx_vring(unsigned int q)
{
    return 2 * q;
}

static inline unsigned int
vhost_guest_tx_vring(unsigned int q)
{
    return 2 * q + 1;
}

static inline unsigned int
vhost_vring_queue_pair(unsigned int vring)
{
    return vring / 2;
}

static inline bool
vhost_vring_is_guest_tx(unsigned int vring)
{
    return vring & 1;
}

/* Vring 'i' of 'dev', or null if beyond those the device was created
 * with.  Any thread: that number never changes, where the limit
 * vhost_device_set_limits() sets does (a vring beyond it never starts,
 * since the front-end's messages for it are refused). */
static inline struct vhost_vring *
vhost_device_vring(const struct vhost_device *dev, unsigned int i)
{
    return i < dev->max_vrings_allocated ? &dev->vrings[i] : NULL;
}

/* The queue pairs the device offers now (vhost_device_set_limits()).  Only
 * under the lock that serializes the device's configuration and messages:
 * the limit changes with the port's options. */
static inline unsigned int
vhost_device_max_queue_pairs(const struct vhost_device *dev)
{
    return dev->max_queue_pairs;
}

/* The queue pairs the device was created with, the most any limit allows.
 * Any thread: the number never changes. */
static inline unsigned int
vhost_device_queue_pairs_allocated(const struct vhost_device *dev)
{
    return dev->max_vrings_allocated / 2;
}

/* The most guest memory the device maps, and what it maps now. */
static inline uint64_t
vhost_device_max_mem_bytes(const struct vhost_device *dev)
{
    return dev->max_mem_bytes;
}

static inline uint64_t
vhost_device_mapped_bytes(const struct vhost_device *dev)
{
    return vhost_mem_mapped_bytes(dev->mem);
}

/* The counters of vring 'i', or null if the device never had it.  They
 * last as long as the device, also for vrings beyond a limit lowered
 * since (totals never go back).  Any thread. */
static inline const struct virtq_stats *
vhost_device_vring_stats(const struct vhost_device *dev, unsigned int i)
{
    return i < dev->max_vrings_allocated ? &dev->vrings[i].stats : NULL;
}

/* Sets how many queue pairs the device offers (at most the number it was
 * created with) and how much guest memory it maps at most.  The front-end
 * negotiated with the old limits: the caller drops it if they shrank below
 * what it uses. */
void vhost_device_set_limits(struct vhost_device *,
                             unsigned int max_queue_pairs,
                             uint64_t max_mem_bytes);

/* If the front-end asked (SEND_RARP) for the guest's MAC to be announced
 * and nobody did yet, copies it to 'mac' and returns true (once).  Any
 * thread. */
bool vhost_device_take_rarp(struct vhost_device *, uint8_t mac[6]);
#define VHOST_RARP_PENDING (1ull << 48)

/* Whether vhost_device_take_rarp() may have a MAC to give (a hint, for
 * the data path's poll: one relaxed read). */
static inline bool
vhost_device_rarp_pending(const struct vhost_device *dev)
{
    return __atomic_load_n(&dev->rarp, __ATOMIC_RELAXED) != 0;
}

/* The data path's view of 'vr': its running virtq (acquire), or null. */
static inline struct virtq *
vhost_vring_live(const struct vhost_vring *vr)
{
    return __atomic_load_n(&vr->live, __ATOMIC_ACQUIRE);
}

static inline bool
vhost_vring_enabled(const struct vhost_vring *vr)
{
    /* Pairs with the release in set_vring_enable() (a plain load on
     * x86). */
    return __atomic_load_n(&vr->enabled, __ATOMIC_ACQUIRE);
}

#endif /* vhost-device.h */
