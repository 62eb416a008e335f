/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * An independent check of a frame's IPv4, TCP and UDP checksums, for tests:
 * a plain byte-at-a-time implementation that shares nothing with the
 * switch's own (lib/vnet-offload.c), so that the two check each other. */

#ifndef VHOSTMQ_TESTS_INET_CSUM_H
#define VHOSTMQ_TESTS_INET_CSUM_H 1

#include <stdbool.h>
#include <stdint.h>

/* What inet_csum_check() found. */
struct inet_csum_result {
    bool ip;                    /* IPv4 or IPv6 found. */
    int ip_version;
    bool ipv4_ok;               /* IPv4 header checksum right (or v6). */
    int l4_proto;               /* 6 (TCP), 17 (UDP) or 0. */
    bool l4_ok;                 /* TCP/UDP checksum right. */
    uint32_t l3_ofs, l4_ofs, l4_end;
    uint32_t payload_ofs;       /* After the TCP/UDP header. */
};

static inline uint32_t
inet_csum_be16(const uint8_t *p)
{
    return (uint32_t) p[0] << 8 | p[1];
}

static inline uint32_t
inet_get32(const uint8_t *p)
{
    return inet_csum_be16(p) << 16 | inet_csum_be16(p + 2);
}

/* Network-order stores, a byte at a time (frames promise no alignment). */
static inline void
inet_put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static inline void
inet_put32(uint8_t *p, uint32_t v)
{
    inet_put16(p, v >> 16);
    inet_put16(p + 2, v);
}

/* Big-endian 16-bit words of 'len' bytes, summed (an odd last byte is the
 * high byte of a word). */
static inline uint64_t
inet_csum_sum(uint64_t sum, const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        sum += i & 1 ? p[i] : (uint32_t) p[i] << 8;
    }
    return sum;
}

static inline uint16_t
inet_csum_fold(uint64_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

static inline bool
inet_csum_verifies(uint64_t sum)
{
    return inet_csum_fold(sum) == 0xffff;
}

/* Completes a NEEDS_CSUM checksum as a guest does: the sum of the bytes
 * from 'start' to 'end' (the partial sum in the field included), stored
 * complemented at 'start' + 'offset'. */
static inline void
inet_csum_complete(uint8_t *f, uint32_t start, uint32_t offset, uint32_t end)
{
    inet_put16(f + start + offset,
               ~inet_csum_fold(inet_csum_sum(0, f + start, end - start)));
}

/* Checks the frame's checksums: Ethernet, up to 2 VLAN tags, IPv4 (no
 * fragments) or IPv6 (no extension headers), TCP or UDP. */
static inline struct inet_csum_result
inet_csum_check(const uint8_t *f, uint32_t len)
{
    struct inet_csum_result r = { .ipv4_ok = true };
    uint32_t ofs = 14, type;
    uint64_t sum = 0;
    int proto;

    if (len < 14) {
        return r;
    }
    type = inet_csum_be16(f + 12);
    for (int i = 0; i < 2 && (type == 0x8100 || type == 0x88a8)
         && len >= ofs + 4; i++) {
        type = inet_csum_be16(f + ofs + 2);
        ofs += 4;
    }
    r.l3_ofs = ofs;
    if (type == 0x0800 && len >= ofs + 20) {
        uint32_t ihl = (f[ofs] & 15) * 4;

        r.ip = true;
        r.ip_version = 4;
        r.l4_end = ofs + inet_csum_be16(f + ofs + 2);
        if (ihl < 20 || r.l4_end > len || r.l4_end < ofs + ihl) {
            r.ipv4_ok = false;
            return r;
        }
        r.ipv4_ok = inet_csum_verifies(inet_csum_sum(0, f + ofs, ihl));
        r.l4_ofs = ofs + ihl;
        proto = f[ofs + 9];
        sum = inet_csum_sum(0, f + ofs + 12, 8);
    } else if (type == 0x86dd && len >= ofs + 40) {
        r.ip = true;
        r.ip_version = 6;
        r.l4_ofs = ofs + 40;
        r.l4_end = r.l4_ofs + inet_csum_be16(f + ofs + 4);
        if (r.l4_end > len) {
            return r;
        }
        proto = f[ofs + 6];
        sum = inet_csum_sum(0, f + ofs + 8, 32);
    } else {
        return r;
    }
    if ((proto != 6 && proto != 17)
        || r.l4_ofs + (proto == 6 ? 20 : 8) > r.l4_end) {
        return r;
    }
    r.l4_proto = proto;
    r.payload_ofs = r.l4_ofs + (proto == 6 ? (f[r.l4_ofs + 12] >> 4) * 4 : 8);
    sum += proto + (r.l4_end - r.l4_ofs);
    sum = inet_csum_sum(sum, f + r.l4_ofs, r.l4_end - r.l4_ofs);
    r.l4_ok = inet_csum_verifies(sum);
    return r;
}

#endif /* tests/inet-csum.h */
