/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Checksum and TCP segmentation offloads of the virtio-net header: what a
 * guest's header asks of the switch, checked against the frame it comes
 * with, and the work done in software where the other end cannot take it. */

#ifndef VNET_OFFLOAD_H
#define VNET_OFFLOAD_H 1

/* With VIRTIO_NET_F_CSUM a guest may transmit a TCP or UDP frame whose
 * checksum is left partial (NEEDS_CSUM: sum from 'csum_start' to the end of
 * the frame, stored at 'csum_start' + 'csum_offset'), and with HOST_TSO4/6
 * a TCP frame of up to 64 KiB that is to leave as segments of 'gso_size'
 * payload bytes each.  With GUEST_CSUM and GUEST_TSO4/6 the switch may hand
 * such frames to a guest the same way.
 *
 * Nothing in a header is trusted.  The switch parses the frame's own
 * headers (Ethernet, up to two VLAN tags, IPv4 or IPv6 with its extension
 * headers, TCP or UDP) and accepts an offload only where the header's
 * offsets agree with them; 'hdr_len', a hint in the spec, is never used.
 * Every offset is checked against the frame's length before it is used.
 *
 * A partial checksum the switch has no flag for (another protocol, or an
 * offset that is not the L4 checksum's) is completed in software on the
 * way in, as virtio defines it: the frame then needs nothing more.
 *
 * No Open vSwitch dependency: frames are flat buffers. */

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

/* Where a frame's layers are. */
struct vnet_layers {
    uint16_t l3_ofs;            /* IP header. */
    uint16_t l4_ofs;            /* TCP or UDP header, 0 if none. */
    uint16_t l4_len;            /* Its length (TCP: data offset). */
    uint32_t l4_end;            /* End of the IP packet (the IP header's
                                 * length; Ethernet padding excluded). */
    uint8_t ip_version;         /* 4 or 6; 0 if not IP. */
    uint8_t l4_proto;           /* IPPROTO_TCP, IPPROTO_UDP or 0. */
};

/* Parses the Ethernet, VLAN, IP and TCP/UDP headers of 'frame'.  Returns
 * false if it is not IP, or if its IP header does not fit the frame or says
 * it is longer than the frame; then 'layers' says how far it got.  An IP
 * fragment, or L4 other than TCP and UDP, parses with 'l4_ofs' 0. */
bool vnet_parse_layers(const uint8_t *frame, uint32_t len,
                       struct vnet_layers *layers);

/* What a guest's header asks for a frame it transmitted. */
struct vnet_offload {
    struct vnet_layers layers;  /* Valid if 'csum' or 'tso'. */
    bool csum;                  /* The L4 checksum (TCP or UDP, at
                                 * layers.l4_ofs) is partial: the
                                 * pseudo-header's sum only. */
    bool tso;                   /* TCP to be cut in 'gso_size' segments
                                 * (implies 'csum'). */
    bool ecn;                   /* With 'tso': GSO_ECN. */
    bool sw_csum;               /* A partial checksum was completed in
                                 * software (nothing left to do). */
    uint16_t gso_size;
};

/* Why a guest's header was refused. */
enum vnet_hdr_error {
    VNET_HDR_OK = 0,
    VNET_HDR_BAD_FLAGS,         /* Flag bits a driver may not set. */
    VNET_HDR_CSUM_UNNEGOTIATED, /* NEEDS_CSUM without VIRTIO_NET_F_CSUM. */
    VNET_HDR_CSUM_RANGE,        /* csum_start/offset outside the frame. */
    VNET_HDR_GSO_TYPE,          /* Unknown gso_type. */
    VNET_HDR_GSO_UNNEGOTIATED,  /* A GSO type (or ECN) whose HOST_*
                                 * feature was not negotiated. */
    VNET_HDR_GSO_NO_CSUM,       /* GSO without NEEDS_CSUM. */
    VNET_HDR_GSO_SIZE,          /* gso_size 0, or segments over 64 KiB. */
    VNET_HDR_GSO_MISMATCH,      /* The frame is not what gso_type says
                                 * (not TCP over that IP version), or the
                                 * checksum offsets are not TCP's. */
    VNET_HDR_GSO_NO_PAYLOAD,    /* A GSO frame without payload. */
};

const char *vnet_hdr_error_name(enum vnet_hdr_error);

/* Reads the header 'hdr' a guest transmitted frame 'frame' ('len' bytes,
 * writable) with, under the negotiated virtio 'features'.  On success fills
 * 'off'; a partial checksum with no flag in 'off' is completed in 'frame'
 * (off->sw_csum).  On error 'frame' is unchanged and the frame is to be
 * dropped. */
enum vnet_hdr_error vnet_offload_from_guest(const struct virtio_net_hdr *hdr,
                                            uint64_t features,
                                            uint8_t *frame, uint32_t len,
                                            struct vnet_offload *off);

/* The Internet checksum's one's complement sum of 'len' bytes of 'p', added
 * to 'sum' (not folded).  Byte order: as the bytes are in memory. */
uint64_t vnet_csum_add(uint64_t sum, const void *p, uint32_t len);

/* Folds 'sum' to 16 bits (not complemented). */
uint16_t vnet_csum_fold(uint64_t sum);

/* Writes the TCP or UDP checksum of 'frame', whose layers are 'layers' (as
 * vnet_parse_layers() found them, with an L4 header): from the IP header's
 * addresses as they are now, so that whatever rewrote them, the checksum
 * is right.  'partial': only the pseudo-header's sum, as NEEDS_CSUM wants
 * it; otherwise the full checksum. */
void vnet_l4_csum_fill(uint8_t *frame, const struct vnet_layers *layers,
                       bool partial);

/* Writes the IPv4 header checksum of 'frame' (layers.ip_version 4). */
void vnet_ipv4_csum_fill(uint8_t *frame, const struct vnet_layers *layers);

/* The header that hands 'frame' to a guest with its offloads: NEEDS_CSUM
 * at the L4 checksum (then call vnet_l4_csum_fill(..., true)), and, with
 * 'gso_size', TCP segmentation. */
void vnet_hdr_for_guest(struct virtio_net_hdr *hdr,
                        const struct vnet_layers *layers, uint16_t gso_size,
                        bool ecn);

/* TCP segmentation in software: cuts a TCP frame into frames of at most
 * 'mss' payload bytes, each with its own IP length, IPv4 identification,
 * sequence number, flags and checksums (full).  Use:
 *
 *     struct vnet_tso tso;
 *     vnet_tso_start(&tso, frame, len, &layers, mss);
 *     while ((n = vnet_tso_next(&tso, buf))) { ... n bytes in buf ... }
 *
 * 'buf' must hold vnet_tso_max_segment() bytes.  'frame' must stay
 * unchanged meanwhile. */
struct vnet_tso {
    const uint8_t *frame;
    struct vnet_layers layers;
    uint32_t hdrs;              /* Bytes of headers copied in each. */
    uint32_t payload;           /* Next payload byte to send. */
    uint32_t end;               /* End of the payload. */
    uint16_t mss;
    uint16_t index;             /* Segments made so far. */
};

/* Starts segmenting; returns false (nothing to do) if 'layers' is not TCP
 * or 'mss' is 0. */
bool vnet_tso_start(struct vnet_tso *, const uint8_t *frame,
                    const struct vnet_layers *layers, uint16_t mss);
uint32_t vnet_tso_max_segment(const struct vnet_tso *);
uint32_t vnet_tso_next(struct vnet_tso *, uint8_t *buf);

/* The segments vnet_tso_start() will make. */
uint32_t vnet_tso_count(const struct vnet_tso *);

#endif /* vnet-offload.h */
