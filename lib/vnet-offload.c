/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Checksum and TCP segmentation offloads of the virtio-net header. */

#include "vnet-offload.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_IPV6 0x86dd
#define ETH_TYPE_VLAN 0x8100
#define ETH_TYPE_QINQ 0x88a8
#define ETH_HDR_LEN 14
#define VLAN_HDR_LEN 4
#define IPV4_MIN_HDR_LEN 20
#define IPV6_HDR_LEN 40
#define TCP_MIN_HDR_LEN 20
#define UDP_HDR_LEN 8
#define TCP_CSUM_OFFSET 16
#define UDP_CSUM_OFFSET 6

/* IPv6 extension headers walked over to find TCP or UDP, at most. */
#define IPV6_MAX_EXT_HDRS 8

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

/* Network-order fields, read and written a byte at a time (frames carry no
 * alignment promise). */
static uint16_t
get_be16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}

static void
put_be16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static uint32_t
get_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    put_be16(p, v >> 16);
    put_be16(p + 2, v);
}

/* Finds TCP or UDP from 'l4' on (protocol 'proto'), inside the IP packet
 * that ends at layers->l4_end. */
static void
parse_l4(const uint8_t *frame, uint32_t l4, uint8_t proto,
         struct vnet_layers *layers)
{
    if (proto == IPPROTO_TCP && l4 + TCP_MIN_HDR_LEN <= layers->l4_end) {
        uint32_t doff = (frame[l4 + 12] >> 4) * 4;

        if (doff >= TCP_MIN_HDR_LEN && l4 + doff <= layers->l4_end) {
            layers->l4_ofs = l4;
            layers->l4_len = doff;
            layers->l4_proto = IPPROTO_TCP;
        }
    } else if (proto == IPPROTO_UDP && l4 + UDP_HDR_LEN <= layers->l4_end) {
        layers->l4_ofs = l4;
        layers->l4_len = UDP_HDR_LEN;
        layers->l4_proto = IPPROTO_UDP;
    }
}

bool
vnet_parse_layers(const uint8_t *frame, uint32_t len,
                  struct vnet_layers *layers)
{
    uint32_t ofs = ETH_HDR_LEN;
    uint16_t type;

    memset(layers, 0, sizeof *layers);
    if (len < ETH_HDR_LEN) {
        return false;
    }
    type = get_be16(frame + 12);
    for (int i = 0; i < 2 && (type == ETH_TYPE_VLAN || type == ETH_TYPE_QINQ);
         i++) {
        if (len < ofs + VLAN_HDR_LEN) {
            return false;
        }
        type = get_be16(frame + ofs + 2);
        ofs += VLAN_HDR_LEN;
    }
    layers->l3_ofs = ofs;

    const uint8_t *ip = frame + ofs;
    if (type == ETH_TYPE_IPV4) {
        uint32_t ihl, tot;

        if (len < ofs + IPV4_MIN_HDR_LEN || ip[0] >> 4 != 4) {
            return false;
        }
        ihl = (ip[0] & 15) * 4;
        tot = get_be16(ip + 2);
        if (ihl < IPV4_MIN_HDR_LEN || tot < ihl || ofs + tot > len) {
            return false;
        }
        layers->ip_version = 4;
        layers->l4_end = ofs + tot;
        if (!(get_be16(ip + 6) & 0x3fff)) {
            /* Not a fragment. */
            parse_l4(frame, ofs + ihl, ip[9], layers);
        }
        return true;
    } else if (type == ETH_TYPE_IPV6) {
        uint32_t l4 = ofs + IPV6_HDR_LEN;
        uint8_t next;

        if (len < l4 || ip[0] >> 4 != 6) {
            return false;
        }
        /* (A payload length of 0, a jumbogram, does not fit a frame.) */
        layers->l4_end = l4 + get_be16(ip + 4);
        if (layers->l4_end == l4 || layers->l4_end > len) {
            return false;
        }
        layers->ip_version = 6;
        next = ip[6];
        for (int i = 0; i < IPV6_MAX_EXT_HDRS; i++) {
            if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING
                && next != IPPROTO_DSTOPTS) {
                break;
            }
            if (l4 + 8 > layers->l4_end) {
                return true;
            }
            next = frame[l4];
            l4 += (frame[l4 + 1] + 1) * 8;
        }
        /* A fragment header, or too many headers, leave no L4. */
        if (l4 <= layers->l4_end) {
            parse_l4(frame, l4, next, layers);
        }
        return true;
    }
    return false;
}

const char *
vnet_hdr_error_name(enum vnet_hdr_error error)
{
    switch (error) {
    case VNET_HDR_OK: return "ok";
    case VNET_HDR_BAD_FLAGS: return "flags a driver may not set";
    case VNET_HDR_CSUM_UNNEGOTIATED:
        return "partial checksum without VIRTIO_NET_F_CSUM";
    case VNET_HDR_CSUM_RANGE: return "checksum offsets beyond the frame";
    case VNET_HDR_GSO_TYPE: return "unknown gso_type";
    case VNET_HDR_GSO_UNNEGOTIATED:
        return "segmentation offload not negotiated";
    case VNET_HDR_GSO_NO_CSUM: return "segmentation without NEEDS_CSUM";
    case VNET_HDR_GSO_SIZE: return "gso_size 0 or segments over 64 KiB";
    case VNET_HDR_GSO_MISMATCH:
        return "gso_type or checksum offsets do not match the frame";
    case VNET_HDR_GSO_NO_PAYLOAD: return "segmentation of a frame without "
                                         "payload";
    }
    return "unknown error";
}

uint64_t
vnet_csum_add(uint64_t sum, const void *p_, uint32_t len)
{
    const uint8_t *p = p_;

    /* 32-bit words: 2^16 = 1 modulo 0xffff, so each adds its two 16-bit
     * halves, and a 64-bit sum cannot overflow on any frame. */
    for (; len >= 4; p += 4, len -= 4) {
        uint32_t w;

        memcpy(&w, p, 4);
        sum += w;
    }
    if (len >= 2) {
        uint16_t w;

        memcpy(&w, p, 2);
        sum += w;
        p += 2;
        len -= 2;
    }
    if (len) {
        /* The last byte, padded with a zero byte after it. */
        uint8_t last[2] = { p[0], 0 };
        uint16_t w;

        memcpy(&w, last, 2);
        sum += w;
    }
    return sum;
}

uint16_t
vnet_csum_fold(uint64_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

/* The sum of the TCP/UDP pseudo-header of 'frame'. */
static uint64_t
pseudo_header_sum(const uint8_t *frame, const struct vnet_layers *layers)
{
    const uint8_t *ip = frame + layers->l3_ofs;
    uint32_t l4_bytes = htonl(layers->l4_end - layers->l4_ofs);
    uint64_t sum;

    sum = (layers->ip_version == 4
           ? vnet_csum_add(0, ip + 12, 8)       /* Source, destination. */
           : vnet_csum_add(0, ip + 8, 32));
    sum += htons(layers->l4_proto);
    sum += (l4_bytes & 0xffff) + (l4_bytes >> 16);
    return sum;
}

static uint16_t
l4_csum_offset(const struct vnet_layers *layers)
{
    return layers->l4_proto == IPPROTO_TCP ? TCP_CSUM_OFFSET
                                           : UDP_CSUM_OFFSET;
}

void
vnet_l4_csum_fill(uint8_t *frame, const struct vnet_layers *layers,
                  bool partial)
{
    uint8_t *field = frame + layers->l4_ofs + l4_csum_offset(layers);
    uint64_t sum = pseudo_header_sum(frame, layers);
    uint16_t csum;

    if (partial) {
        csum = vnet_csum_fold(sum);
    } else {
        memset(field, 0, 2);
        sum = vnet_csum_add(sum, frame + layers->l4_ofs,
                            layers->l4_end - layers->l4_ofs);
        csum = ~vnet_csum_fold(sum);
        if (!csum && layers->l4_proto == IPPROTO_UDP) {
            csum = 0xffff;      /* 0 says "no checksum" in UDP. */
        }
    }
    memcpy(field, &csum, 2);
}

void
vnet_ipv4_csum_fill(uint8_t *frame, const struct vnet_layers *layers)
{
    uint8_t *ip = frame + layers->l3_ofs;
    uint16_t csum;

    memset(ip + 10, 0, 2);
    csum = ~vnet_csum_fold(vnet_csum_add(0, ip, (ip[0] & 15) * 4));
    memcpy(ip + 10, &csum, 2);
}

/* Completes the partial checksum of 'frame' as virtio defines it: the sum
 * from 'start' to the end of the frame, at 'start' + 'offset'. */
static void
complete_csum(uint8_t *frame, uint32_t len, uint16_t start, uint16_t offset)
{
    uint16_t csum = ~vnet_csum_fold(vnet_csum_add(0, frame + start,
                                                  len - start));

    if (!csum) {
        csum = 0xffff;          /* As Linux does: never 0. */
    }
    memcpy(frame + start + offset, &csum, 2);
}

enum vnet_hdr_error
vnet_offload_from_guest(const struct virtio_net_hdr *hdr, uint64_t features,
                        uint8_t *frame, uint32_t len,
                        struct vnet_offload *off)
{
    uint8_t gso = hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
    bool needs_csum = hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
    struct vnet_layers layers;
    bool l4_match;

    memset(off, 0, sizeof *off);
    if (hdr->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        return VNET_HDR_BAD_FLAGS;
    }
    if (needs_csum && !(features & (1ull << VIRTIO_NET_F_CSUM))) {
        return VNET_HDR_CSUM_UNNEGOTIATED;
    }
    if (hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        uint64_t need;

        if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
            need = 1ull << VIRTIO_NET_F_HOST_TSO4;
        } else if (gso == VIRTIO_NET_HDR_GSO_TCPV6) {
            need = 1ull << VIRTIO_NET_F_HOST_TSO6;
        } else if (gso == VIRTIO_NET_HDR_GSO_UDP) {
            need = 1ull << VIRTIO_NET_F_HOST_UFO;
        } else {
            return VNET_HDR_GSO_TYPE;
        }
        if (hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) {
            need |= 1ull << VIRTIO_NET_F_HOST_ECN;
        }
        if ((features & need) != need) {
            return VNET_HDR_GSO_UNNEGOTIATED;
        }
        if (!needs_csum) {
            return VNET_HDR_GSO_NO_CSUM;
        }
    }
    if (!needs_csum) {
        return VNET_HDR_OK;     /* (DATA_VALID or nothing.) */
    }
    if ((uint32_t) hdr->csum_start + hdr->csum_offset + 2 > len) {
        return VNET_HDR_CSUM_RANGE;
    }

    l4_match = (vnet_parse_layers(frame, len, &layers)
                && layers.l4_ofs
                && layers.l4_ofs == hdr->csum_start
                && hdr->csum_offset == l4_csum_offset(&layers));
    if (hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        uint32_t hdrs = layers.l4_ofs + layers.l4_len;

        if (!l4_match || layers.l4_proto != IPPROTO_TCP
            || (gso == VIRTIO_NET_HDR_GSO_TCPV4) != (layers.ip_version == 4)) {
            return VNET_HDR_GSO_MISMATCH;
        }
        if (!hdr->gso_size
            || hdrs - layers.l3_ofs + hdr->gso_size > UINT16_MAX) {
            return VNET_HDR_GSO_SIZE;
        }
        if (layers.l4_end <= hdrs) {
            return VNET_HDR_GSO_NO_PAYLOAD;
        }
        off->tso = true;
        off->ecn = hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN;
        off->gso_size = hdr->gso_size;
    }
    if (l4_match) {
        off->layers = layers;
        off->csum = true;
    } else {
        /* A partial checksum the switch cannot carry as such: done now. */
        complete_csum(frame, len, hdr->csum_start, hdr->csum_offset);
        off->sw_csum = true;
    }
    return VNET_HDR_OK;
}

void
vnet_hdr_for_guest(struct virtio_net_hdr *hdr,
                   const struct vnet_layers *layers, uint16_t gso_size,
                   bool ecn)
{
    memset(hdr, 0, sizeof *hdr);
    hdr->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    hdr->csum_start = layers->l4_ofs;
    hdr->csum_offset = l4_csum_offset(layers);
    if (gso_size) {
        hdr->gso_type = ((layers->ip_version == 4
                          ? VIRTIO_NET_HDR_GSO_TCPV4
                          : VIRTIO_NET_HDR_GSO_TCPV6)
                         | (ecn ? VIRTIO_NET_HDR_GSO_ECN : 0));
        hdr->gso_size = gso_size;
        hdr->hdr_len = layers->l4_ofs + layers->l4_len;
    }
}

bool
vnet_tso_start(struct vnet_tso *tso, const uint8_t *frame,
               const struct vnet_layers *layers, uint16_t mss)
{
    memset(tso, 0, sizeof *tso);
    if (layers->l4_proto != IPPROTO_TCP || !layers->l4_ofs || !mss) {
        return false;
    }
    tso->frame = frame;
    tso->layers = *layers;
    tso->hdrs = layers->l4_ofs + layers->l4_len;
    tso->payload = tso->hdrs;
    tso->end = layers->l4_end;
    tso->mss = mss;
    return true;
}

uint32_t
vnet_tso_max_segment(const struct vnet_tso *tso)
{
    uint32_t max = tso->hdrs + tso->mss;

    return max < tso->end ? max : tso->end;
}

uint32_t
vnet_tso_count(const struct vnet_tso *tso)
{
    uint32_t payload = tso->end - tso->hdrs;

    return payload ? (payload + tso->mss - 1) / tso->mss : 1;
}

uint32_t
vnet_tso_next(struct vnet_tso *tso, uint8_t *buf)
{
    const struct vnet_layers *in = &tso->layers;
    struct vnet_layers out = *in;
    uint32_t chunk, seg_len;
    uint8_t *ip, *tcp;

    if (tso->payload >= tso->end && tso->index) {
        return 0;
    }
    chunk = tso->end - tso->payload;
    if (chunk > tso->mss) {
        chunk = tso->mss;
    }
    seg_len = tso->hdrs + chunk;
    memcpy(buf, tso->frame, tso->hdrs);
    memcpy(buf + tso->hdrs, tso->frame + tso->payload, chunk);
    out.l4_end = seg_len;

    ip = buf + in->l3_ofs;
    if (in->ip_version == 4) {
        put_be16(ip + 2, seg_len - in->l3_ofs);
        put_be16(ip + 4, get_be16(tso->frame + in->l3_ofs + 4) + tso->index);
        vnet_ipv4_csum_fill(buf, &out);
    } else {
        put_be16(ip + 4, seg_len - in->l3_ofs - IPV6_HDR_LEN);
    }

    tcp = buf + in->l4_ofs;
    put_be32(tcp + 4, get_be32(tso->frame + in->l4_ofs + 4)
                      + (tso->payload - tso->hdrs));
    if (tso->payload + chunk < tso->end) {
        tcp[13] &= ~(TCP_FIN | TCP_PSH);    /* Only the last has them. */
    }
    if (tso->index) {
        tcp[13] &= ~TCP_CWR;                /* Only the first has it. */
    }
    vnet_l4_csum_fill(buf, &out, false);

    tso->payload += chunk;
    tso->index++;
    return seg_len;
}
