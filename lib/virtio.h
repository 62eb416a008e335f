/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Virtio's own definitions (virtio 1.x), as a net device's back-end needs
 * them: feature bits, the split and packed rings' layouts and the
 * virtio-net header.
 * vhost-user (lib/vhost-user-wire.h) carries them, but they are virtio's. */

#ifndef VIRTIO_H
#define VIRTIO_H 1

#include <stdint.h>

/* Feature bits a net device deals with. */
#define VIRTIO_NET_F_CSUM             0
#define VIRTIO_NET_F_GUEST_CSUM       1
#define VIRTIO_NET_F_MTU              3
#define VIRTIO_NET_F_MAC              5
#define VIRTIO_NET_F_GUEST_TSO4       7
#define VIRTIO_NET_F_GUEST_TSO6       8
#define VIRTIO_NET_F_GUEST_ECN        9
#define VIRTIO_NET_F_GUEST_UFO       10
#define VIRTIO_NET_F_HOST_TSO4       11
#define VIRTIO_NET_F_HOST_TSO6       12
#define VIRTIO_NET_F_HOST_ECN        13
#define VIRTIO_NET_F_HOST_UFO        14
#define VIRTIO_NET_F_MRG_RXBUF       15
#define VIRTIO_NET_F_STATUS          16
#define VIRTIO_NET_F_CTRL_VQ         17
#define VIRTIO_NET_F_GUEST_ANNOUNCE  21
#define VIRTIO_NET_F_MQ              22
#define VIRTIO_F_NOTIFY_ON_EMPTY     24
#define VIRTIO_F_ANY_LAYOUT          27
#define VIRTIO_RING_F_INDIRECT_DESC  28
#define VIRTIO_RING_F_EVENT_IDX      29
#define VIRTIO_F_VERSION_1           32
#define VIRTIO_F_IOMMU_PLATFORM      33
#define VIRTIO_F_RING_PACKED         34
#define VIRTIO_F_IN_ORDER            35

/* Ring layout (virtio 1.x split virtqueue), all little-endian on the hosts
 * vhostmq runs on. */
struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

#define VRING_DESC_F_NEXT      1
#define VRING_DESC_F_WRITE     2
#define VRING_DESC_F_INDIRECT  4

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];            /* Then used_event, with EVENT_IDX. */
};

#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];  /* Then avail_event, with EVENT_IDX. */
};

#define VRING_USED_F_NO_NOTIFY 1

/* Packed ring layout (virtio 1.1, VIRTIO_F_RING_PACKED): one ring of
 * descriptors that the driver makes available and the device marks used
 * in place, and two event suppression structures, the driver's (read by
 * the device: whether to interrupt) and the device's (written by it:
 * whether to be kicked).  A chain is a run of consecutive descriptors with
 * VRING_DESC_F_NEXT on all but the last, which holds the buffer id. */
struct vring_packed_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;
    uint16_t flags;
};

#define VRING_PACKED_DESC_F_AVAIL (1 << 7)
#define VRING_PACKED_DESC_F_USED  (1 << 15)

struct vring_packed_event {
    uint16_t off_wrap;          /* Descriptor index (bits 0-14) and wrap
                                 * counter (bit 15), with
                                 * VRING_PACKED_EVENT_DESC. */
    uint16_t flags;
};

#define VRING_PACKED_EVENT_ENABLE  0
#define VRING_PACKED_EVENT_DISABLE 1
#define VRING_PACKED_EVENT_DESC    2    /* Only with EVENT_IDX. */

/* The virtio-net header. */
struct virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;       /* Only with MRG_RXBUF or VERSION_1. */
};

/* virtio_net_hdr 'flags'. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM   1 /* Checksum from csum_start to the
                                         * end, stored at csum_start +
                                         * csum_offset, still to do. */
#define VIRTIO_NET_HDR_F_DATA_VALID   2 /* Device to driver only: the
                                         * checksum was verified. */

/* virtio_net_hdr 'gso_type'. */
#define VIRTIO_NET_HDR_GSO_NONE       0
#define VIRTIO_NET_HDR_GSO_TCPV4      1
#define VIRTIO_NET_HDR_GSO_UDP        3
#define VIRTIO_NET_HDR_GSO_TCPV6      4
#define VIRTIO_NET_HDR_GSO_ECN     0x80 /* Or-ed in: the TCP stream uses
                                         * ECN (CWR on the first segment
                                         * only). */

#endif /* virtio.h */
