/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * What differs between the Open vSwitch releases vhostmq builds against
 * (3.1, 3.3, 3.7), in one place.  configure finds out which API the OVS
 * tree has by looking at its headers (m4/vhostmq.m4, VHOSTMQ_CHECK_OVS_API),
 * never by its version number.
 *
 * Packet offload flags.  Three models:
 *   - OVS 3.1: TX flags in dp_packet's ol_flags (DP_PACKET_OL_TX_TCP_SEG,
 *     _TCP_CKSUM, _UDP_CKSUM, _IPV4/_IPV6); a packet does not carry its
 *     segment size.
 *   - OVS 3.3 (HAVE_DP_PACKET_SET_TSO_SEGSZ): the same flags, plus the
 *     segment size (OVS segments in software for ports without TSO), and
 *     DP_PACKET_OL_TX_IP_CKSUM, an IPv4 header checksum left to the port
 *     (set for packets whose IP checksum a port found good, when OVS then
 *     rewrites addresses without updating it).
 *   - OVS 3.5 and later (HAVE_DP_PACKET_L4_CHECKSUM_PARTIAL): checksum
 *     states (good, bad, partial: "good integrity but not complete") with
 *     the L4 protocol beside them; a packet is a TSO packet when it has a
 *     segment size.
 * The provider only asks and says what follows. */

#ifndef NETDEV_VHOSTMQ_OVS_H
#define NETDEV_VHOSTMQ_OVS_H 1

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "dp-packet.h"
#include "vhostmq-ovs-api.h"

#if HAVE_DP_PACKET_L4_CHECKSUM_PARTIAL

/* Whether 'p' has anything left for the port to do: a checksum to complete
 * or segments to cut.  Asked of every packet sent, so one or two loads. */
static inline bool
vhostmq_ol_pending(const struct dp_packet *p)
{
    return dp_packet_get_tso_segsz(p)
           || dp_packet_l4_checksum_partial(p)
           || dp_packet_ip_checksum_partial(p);
}

static inline bool
vhostmq_ol_tso(const struct dp_packet *p)
{
    return dp_packet_get_tso_segsz(p) != 0;
}

/* The L4 protocol whose checksum is left to the port (IPPROTO_TCP or
 * IPPROTO_UDP), IPPROTO_TCP for a TSO packet, 0 if none, -1 for one the
 * port does not take. */
static inline int
vhostmq_ol_l4_proto(const struct dp_packet *p)
{
    if (vhostmq_ol_tso(p)) {
        return IPPROTO_TCP;
    }
    if (!dp_packet_l4_checksum_partial(p)) {
        return 0;
    }
    return (dp_packet_l4_proto_tcp(p) ? IPPROTO_TCP
            : dp_packet_l4_proto_udp(p) ? IPPROTO_UDP
            : -1);
}

/* Whether the IPv4 header checksum is left to the port. */
static inline bool
vhostmq_ol_ip_csum(const struct dp_packet *p)
{
    return dp_packet_ip_checksum_partial(p);
}

/* The flags, for a log line. */
static inline uint64_t
vhostmq_ol_flags(const struct dp_packet *p)
{
    return p->offloads;
}

/* Marks 'p', a frame from a guest, as carrying a partial checksum of
 * 'l4_proto' (IPPROTO_TCP or IPPROTO_UDP) over IP version 'ip_version',
 * and, if 'segsz' is not 0, as a TCP packet to cut in segments of 'segsz'
 * payload bytes. */
static inline void
vhostmq_ol_set_partial(struct dp_packet *p, int l4_proto,
                       int ip_version OVS_UNUSED, uint16_t segsz)
{
    if (l4_proto == IPPROTO_TCP) {
        dp_packet_l4_proto_set_tcp(p);
    } else {
        dp_packet_l4_proto_set_udp(p);
    }
    dp_packet_l4_checksum_set_partial(p);
    if (segsz) {
        dp_packet_set_tso_segsz(p, segsz);
    }
}

#else  /* OVS 3.1 to 3.4: TX flags. */

#ifndef DP_PACKET_OL_TX_IP_CKSUM
#define DP_PACKET_OL_TX_IP_CKSUM 0
#endif

static inline bool
vhostmq_ol_pending(const struct dp_packet *p)
{
    return (*dp_packet_ol_flags_ptr(p)
            & (DP_PACKET_OL_TX_TCP_SEG | DP_PACKET_OL_TX_L4_MASK
               | DP_PACKET_OL_TX_IP_CKSUM)) != 0;
}

static inline bool
vhostmq_ol_tso(const struct dp_packet *p)
{
    return (*dp_packet_ol_flags_ptr(p) & DP_PACKET_OL_TX_TCP_SEG) != 0;
}

static inline int
vhostmq_ol_l4_proto(const struct dp_packet *p)
{
    uint64_t l4 = *dp_packet_ol_flags_ptr(p) & DP_PACKET_OL_TX_L4_MASK;

    return (vhostmq_ol_tso(p) || l4 == DP_PACKET_OL_TX_TCP_CKSUM ? IPPROTO_TCP
            : l4 == DP_PACKET_OL_TX_UDP_CKSUM ? IPPROTO_UDP
            : l4 ? -1
            : 0);
}

static inline bool
vhostmq_ol_ip_csum(const struct dp_packet *p)
{
    return (*dp_packet_ol_flags_ptr(p) & DP_PACKET_OL_TX_IP_CKSUM) != 0;
}

static inline uint64_t
vhostmq_ol_flags(const struct dp_packet *p)
{
    return *dp_packet_ol_flags_ptr(p);
}

static inline void
vhostmq_ol_set_partial(struct dp_packet *p, int l4_proto, int ip_version,
                       uint16_t segsz)
{
    if (l4_proto == IPPROTO_TCP) {
        dp_packet_hwol_set_csum_tcp(p);
    } else {
        dp_packet_hwol_set_csum_udp(p);
    }
    if (ip_version == 4) {
        dp_packet_hwol_set_tx_ipv4(p);
    } else {
        dp_packet_hwol_set_tx_ipv6(p);
    }
    if (segsz) {
        dp_packet_hwol_set_tcp_seg(p);
#if HAVE_DP_PACKET_SET_TSO_SEGSZ
        dp_packet_set_tso_segsz(p, segsz);
#endif
    }
}

#endif

/* The segment size 'p' was sent with, 0 where OVS does not keep it. */
static inline uint16_t
vhostmq_ol_tso_segsz(const struct dp_packet *p OVS_UNUSED)
{
#if HAVE_DP_PACKET_SET_TSO_SEGSZ
    return dp_packet_get_tso_segsz(p);
#else
    return 0;
#endif
}

/* Clears what a packet's earlier life left in its offload state, as
 * dp_packet_init() would (from 3.3 the segment size is a field of its own,
 * which dp_packet_reset_offload() leaves alone, and from 3.5 it alone says
 * "TSO"). */
static inline void
vhostmq_ol_reset(struct dp_packet *p)
{
    dp_packet_reset_offload(p);
#if HAVE_DP_PACKET_SET_TSO_SEGSZ
    dp_packet_set_tso_segsz(p, 0);
#endif
}

#endif /* netdev-vhostmq-ovs.h */
