/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Checksum and TSO offloads between a guest's virtio-net headers and OVS's
 * packet offload flags. */

#ifndef NETDEV_VHOSTMQ_OFFLOAD_H
#define NETDEV_VHOSTMQ_OFFLOAD_H 1

/* With other_config:userspace-tso-enable=true (read once, at start, as
 * netdev-dpdk reads it) a port offers the guest VHOST_DEVICE_OFFLOAD_FEATURES
 * and tells OVS it takes TSO and TCP/UDP checksum offloaded packets.
 *
 * From a guest: a frame's header becomes OVS's flags (a partial TCP/UDP
 * checksum, TCP segmentation), after vnet-offload.c checked it against the
 * frame; a header that lies drops its frame, counted and logged.
 *
 * To a guest: a packet with flags goes whole, with a header saying what is
 * left to do, if the guest negotiated the matching GUEST_* feature;
 * otherwise the switch does it here (fills the checksum, cuts the TCP
 * segments), so that a guest without offloads gets right frames from one
 * with them.  The checksum is always recomputed from the packet's IP
 * header as it is now: OpenFlow actions may have rewritten addresses after
 * the guest summed its pseudo-header.  Segments are sized to the port's
 * MTU (OVS 3.1's packets do not carry the sender's segment size). */

#include <stdbool.h>
#include <stdint.h>

#include "dp-packet.h"
#include "netdev-vhostmq-ovs.h"
#include "ovs-atomic.h"
#include "vnet-offload.h"


/* Adds 'n' to a port's software counter (any thread; nothing if 'n' is
 * 0).  The provider's files share it. */
static inline void
vhostmq_counter_add(atomic_uint64_t *counter, uint64_t n)
{
    if (n) {
        uint64_t orig;

        atomic_add_relaxed(counter, n, &orig);
    }
}

/* A port's offload counters, updated by PMD threads once per burst that
 * had offloaded packets. */
struct vhostmq_offload_stats {
    atomic_uint64_t rx_csum;            /* From the guest with a partial
                                         * checksum (TSO included). */
    atomic_uint64_t rx_tso;             /* From the guest to segment. */
    atomic_uint64_t rx_sw_csum;         /* Partial checksums completed on
                                         * the way in. */
    atomic_uint64_t rx_bad;             /* Dropped for a bad header. */
    atomic_uint64_t tx_csum;            /* To the guest with a partial
                                         * checksum (TSO included). */
    atomic_uint64_t tx_tso;             /* To the guest whole, to segment. */
    atomic_uint64_t tx_sw_csum;         /* Checksums filled here. */
    atomic_uint64_t tx_sw_tso;          /* TCP packets segmented here. */
    atomic_uint64_t tx_sw_segments;     /* The frames they became. */
    atomic_uint64_t tx_bad;             /* Offload flags that made no sense
                                         * for the packet: dropped. */
};

/* The counts of one burst, and the last bad header's reason. */
struct vhostmq_offload_acc {
    uint32_t rx_csum, rx_tso, rx_sw_csum, rx_bad;
    uint32_t tx_csum, tx_tso, tx_sw_csum, tx_sw_tso, tx_sw_segments, tx_bad;
    enum vnet_hdr_error rx_error;
};

/* Adds 'acc' to 'stats' (if anything is in it) and clears it. */
void vhostmq_offload_acc_flush(struct vhostmq_offload_acc *,
                               struct vhostmq_offload_stats *);

/* Applies the header 'hdr' a guest (with virtio 'features') sent 'packet'
 * with.  Returns false if the packet is to be dropped (counted in 'acc'). */
bool vhostmq_offload_from_guest(struct dp_packet *packet,
                                const struct virtio_net_hdr *hdr,
                                uint64_t features,
                                struct vhostmq_offload_acc *acc);

/* Whether 'packet' carries offload flags: inline, as the send path asks it
 * of every packet. */
static inline bool
vhostmq_offload_pending(const struct dp_packet *packet)
{
    return vhostmq_ol_pending(packet);
}

/* Puts one frame into the guest's ring: 0, or an errno value as
 * virtq_enqueue() gives. */
typedef int vhostmq_enqueue_cb(void *aux, const struct virtio_net_hdr *hdr,
                               const void *data, uint32_t len);

/* Hands 'packet', which carries offload flags, to a guest that negotiated
 * virtio 'features', through 'enqueue', as one frame or (segmented here)
 * several.  'max_frame_len' is the port's largest frame; 'scratch' holds
 * VHOSTMQ_OFFLOAD_SCRATCH bytes.  Returns 0, EMSGSIZE (too big for the
 * port), EINVAL (flags that made no sense: counted in 'acc') or what
 * 'enqueue' returned for the first frame that failed. */
#define VHOSTMQ_OFFLOAD_SCRATCH (65536 + 256)
int vhostmq_offload_to_guest(struct dp_packet *packet, uint64_t features,
                             int max_frame_len, uint8_t *scratch,
                             vhostmq_enqueue_cb *enqueue, void *aux,
                             struct vhostmq_offload_acc *acc);

#endif /* netdev-vhostmq-offload.h */
