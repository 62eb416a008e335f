/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of lib/vnet-offload.c: the virtio-net header a guest sends,
 * checked against its frame, and the checksums and segments the switch
 * makes in software, verified by an independent implementation
 * (inet-csum.h). */

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "inet-csum.h"
#include "unit.h"
#include "vnet-offload.h"

#define ALL_HOST ((1ull << VIRTIO_NET_F_CSUM)                \
                  | (1ull << VIRTIO_NET_F_HOST_TSO4)         \
                  | (1ull << VIRTIO_NET_F_HOST_TSO6)         \
                  | (1ull << VIRTIO_NET_F_HOST_ECN))

/* How build_frame() lays a frame out. */
struct frame_spec {
    int ipv;                    /* 4 or 6. */
    int proto;                  /* IPPROTO_TCP or IPPROTO_UDP. */
    uint32_t payload;
    int vlans;                  /* 0-2 tags. */
    int ip_opts;                /* IPv4 option bytes (multiple of 4). */
    int tcp_opts;               /* TCP option bytes (multiple of 4). */
    int ext_hdrs;               /* IPv6: hop-by-hop headers of 8 bytes. */
    uint8_t tcp_flags;
    int pad;                    /* Ethernet padding after the IP packet. */
};

/* Builds the frame into 'f' (room enough), checksums left as garbage;
 * returns its length, and the layers' offsets in '*l'. */
static uint32_t
build_frame(uint8_t *f, const struct frame_spec *s, struct vnet_layers *l)
{
    uint32_t ofs = 12, l4_len;

    memset(f, 0, 14);
    memcpy(f, "\x52\x54\x00\x00\x00\x02\x52\x54\x00\x00\x00\x01", 12);
    for (int i = 0; i < s->vlans; i++) {
        inet_put16(f + ofs, i ? 0x8100 : 0x88a8);
        inet_put16(f + ofs + 2, 100 + i);
        ofs += 4;
    }
    inet_put16(f + ofs, s->ipv == 4 ? 0x0800 : 0x86dd);
    ofs += 2;
    l->l3_ofs = ofs;
    l4_len = s->proto == IPPROTO_TCP ? 20 + s->tcp_opts : 8;
    if (s->ipv == 4) {
        uint32_t ihl = 20 + s->ip_opts;

        memset(f + ofs, 0, ihl);
        f[ofs] = 0x40 | ihl / 4;
        inet_put16(f + ofs + 2, ihl + l4_len + s->payload);
        inet_put16(f + ofs + 4, 0x1234);
        inet_put16(f + ofs + 6, 0x4000);     /* DF. */
        f[ofs + 8] = 64;
        f[ofs + 9] = s->proto;
        inet_put16(f + ofs + 10, 0xbeef);    /* Wrong on purpose. */
        inet_put32(f + ofs + 12, 0x0a000001);
        inet_put32(f + ofs + 16, 0x0a000002);
        ofs += ihl;
    } else {
        uint32_t ext = 8 * s->ext_hdrs;

        memset(f + ofs, 0, 40);
        f[ofs] = 0x60;
        inet_put16(f + ofs + 4, ext + l4_len + s->payload);
        f[ofs + 6] = s->ext_hdrs ? IPPROTO_HOPOPTS : s->proto;
        f[ofs + 7] = 64;
        for (int i = 0; i < 16; i++) {
            f[ofs + 8 + i] = 0x20 + i;
            f[ofs + 24 + i] = 0x40 + i;
        }
        ofs += 40;
        for (int i = 0; i < s->ext_hdrs; i++) {
            memset(f + ofs, 0, 8);
            f[ofs] = i + 1 < s->ext_hdrs ? IPPROTO_HOPOPTS : s->proto;
            ofs += 8;
        }
    }
    l->l4_ofs = ofs;
    l->l4_len = l4_len;
    memset(f + ofs, 0, l4_len);
    inet_put16(f + ofs, 40000);
    inet_put16(f + ofs + 2, 5201);
    if (s->proto == IPPROTO_TCP) {
        inet_put32(f + ofs + 4, 0xfffff000);         /* Wraps while cut. */
        inet_put32(f + ofs + 8, 77);
        f[ofs + 12] = (l4_len / 4) << 4;
        f[ofs + 13] = s->tcp_flags;
        inet_put16(f + ofs + 14, 65535);
        inet_put16(f + ofs + 16, 0xdead);
    } else {
        inet_put16(f + ofs + 4, 8 + s->payload);
        inet_put16(f + ofs + 6, 0xdead);
    }
    ofs += l4_len;
    for (uint32_t i = 0; i < s->payload; i++) {
        f[ofs + i] = i * 7 + (i >> 8);
    }
    ofs += s->payload;
    l->l4_end = ofs;
    memset(f + ofs, 0xee, s->pad);
    return ofs + s->pad;
}

static struct virtio_net_hdr
hdr_of(uint8_t flags, uint8_t gso_type, uint16_t gso_size,
       uint16_t csum_start, uint16_t csum_offset)
{
    struct virtio_net_hdr h = {
        .flags = flags, .gso_type = gso_type, .gso_size = gso_size,
        .csum_start = csum_start, .csum_offset = csum_offset,
        .hdr_len = 0xffff,      /* A hint: never used. */
    };
    return h;
}

static uint8_t frame[70000];

static void
test_parse_layers(void)
{
    static const struct frame_spec specs[] = {
        { 4, IPPROTO_TCP, 100, 0, 0, 0, 0, 0, 0 },
        { 4, IPPROTO_UDP, 100, 1, 8, 0, 0, 0, 10 },
        { 4, IPPROTO_TCP, 0, 2, 40, 40, 0, 0, 0 },
        { 6, IPPROTO_TCP, 1000, 0, 0, 12, 0, 0, 0 },
        { 6, IPPROTO_UDP, 10, 1, 0, 0, 3, 0, 4 },
    };

    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct vnet_layers want, got;
        uint32_t len = build_frame(frame, &specs[i], &want);

        CHECK(vnet_parse_layers(frame, len, &got));
        CHECK_EQ(got.l3_ofs, want.l3_ofs);
        CHECK_EQ(got.l4_ofs, want.l4_ofs);
        CHECK_EQ(got.l4_len, want.l4_len);
        CHECK_EQ(got.l4_end, want.l4_end);
        CHECK_EQ(got.ip_version, specs[i].ipv);
        CHECK_EQ(got.l4_proto, specs[i].proto);

        /* Every truncation: refused, or parsed within what is left. */
        for (uint32_t cut = 0; cut < len; cut++) {
            if (vnet_parse_layers(frame, cut, &got)) {
                CHECK(got.l4_end <= cut);
                CHECK(!got.l4_ofs || got.l4_ofs + got.l4_len <= cut);
            }
        }
    }

    /* Not IP; an IPv4 fragment; a TCP header longer than the packet. */
    struct frame_spec s = { 4, IPPROTO_TCP, 100, 0, 0, 0, 0, 0, 0 };
    struct vnet_layers l, got;
    uint32_t len = build_frame(frame, &s, &l);

    inet_put16(frame + 12, 0x0806);
    CHECK(!vnet_parse_layers(frame, len, &got));
    build_frame(frame, &s, &l);
    inet_put16(frame + l.l3_ofs + 6, 0x2000);        /* MF. */
    CHECK(vnet_parse_layers(frame, len, &got));
    CHECK_EQ(got.l4_ofs, 0);
    build_frame(frame, &s, &l);
    frame[l.l4_ofs + 12] = 0xf0;                /* 60 bytes > 20 + 100? */
    inet_put16(frame + l.l3_ofs + 2, 20 + 40);       /* IP says 60 bytes. */
    CHECK(vnet_parse_layers(frame, len, &got));
    CHECK_EQ(got.l4_ofs, 0);
    /* IP longer than the frame. */
    build_frame(frame, &s, &l);
    inet_put16(frame + l.l3_ofs + 2, 60000);
    CHECK(!vnet_parse_layers(frame, len, &got));
}

/* Every offload header, on every kind of frame it may come with. */
static void
test_tso_accepted(void)
{
    static const struct {
        struct frame_spec spec;
        uint8_t gso_type;
    } cases[] = {
        { { 4, IPPROTO_TCP, 60000, 0, 0, 0, 0, 0x18, 0 },
          VIRTIO_NET_HDR_GSO_TCPV4 },
        { { 4, IPPROTO_TCP, 5000, 1, 8, 12, 0, 0x19, 6 },
          VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN },
        { { 6, IPPROTO_TCP, 60000, 0, 0, 12, 0, 0x10, 0 },
          VIRTIO_NET_HDR_GSO_TCPV6 },
        { { 6, IPPROTO_TCP, 3000, 2, 0, 0, 2, 0x80, 0 },
          VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vnet_layers l;
        uint32_t len = build_frame(frame, &cases[i].spec, &l);
        struct virtio_net_hdr h = hdr_of(VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                         cases[i].gso_type, 1448, l.l4_ofs,
                                         16);
        struct vnet_offload off;

        CHECK_EQ(vnet_offload_from_guest(&h, ALL_HOST, frame, len, &off),
                 VNET_HDR_OK);
        CHECK(off.tso && off.csum && !off.sw_csum);
        CHECK_EQ(off.gso_size, 1448);
        CHECK_EQ(off.ecn, !!(cases[i].gso_type & VIRTIO_NET_HDR_GSO_ECN));
        CHECK_EQ(off.layers.l4_ofs, l.l4_ofs);
        CHECK_EQ(off.layers.l4_end, l.l4_end);

        /* Without the feature for that IP version or ECN: refused. */
        uint64_t without = ALL_HOST & ~(1ull << (cases[i].spec.ipv == 4
                                                 ? VIRTIO_NET_F_HOST_TSO4
                                                 : VIRTIO_NET_F_HOST_TSO6));
        CHECK_EQ(vnet_offload_from_guest(&h, without, frame, len, &off),
                 VNET_HDR_GSO_UNNEGOTIATED);
        if (cases[i].gso_type & VIRTIO_NET_HDR_GSO_ECN) {
            without = ALL_HOST & ~(1ull << VIRTIO_NET_F_HOST_ECN);
            CHECK_EQ(vnet_offload_from_guest(&h, without, frame, len, &off),
                     VNET_HDR_GSO_UNNEGOTIATED);
        }
    }
}

/* Headers that lie: each refused with its reason, the frame untouched. */
static void
test_bad_headers(void)
{
    struct frame_spec s4 = { 4, IPPROTO_TCP, 3000, 0, 0, 0, 0, 0, 0 };
    struct frame_spec s6 = { 6, IPPROTO_TCP, 3000, 0, 0, 0, 0, 0, 0 };
    struct frame_spec u4 = { 4, IPPROTO_UDP, 3000, 0, 0, 0, 0, 0, 0 };
    struct frame_spec e4 = { 4, IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 0 };
    const uint8_t NC = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    const uint8_t T4 = VIRTIO_NET_HDR_GSO_TCPV4;
    static uint8_t copy[sizeof frame];
    struct {
        const struct frame_spec *spec;
        struct virtio_net_hdr h;
        uint64_t features;
        enum vnet_hdr_error want;
    } cases[] = {
        { &s4, hdr_of(NC | VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 34, 16),
          ALL_HOST, VNET_HDR_BAD_FLAGS },
        { &s4, hdr_of(0x80, 0, 0, 0, 0), ALL_HOST, VNET_HDR_BAD_FLAGS },
        { &s4, hdr_of(NC, 0, 0, 34, 16), 0, VNET_HDR_CSUM_UNNEGOTIATED },
        { &s4, hdr_of(NC, 0, 0, 34, 65535), ALL_HOST, VNET_HDR_CSUM_RANGE },
        { &s4, hdr_of(NC, 0, 0, 65535, 0), ALL_HOST, VNET_HDR_CSUM_RANGE },
        { &s4, hdr_of(NC, 0, 0, 3000 + 54 - 1, 0), ALL_HOST,
          VNET_HDR_CSUM_RANGE },
        { &s4, hdr_of(NC, 2, 1448, 34, 16), ALL_HOST, VNET_HDR_GSO_TYPE },
        { &s4, hdr_of(NC, 5, 1448, 34, 16), ALL_HOST, VNET_HDR_GSO_TYPE },
        { &s4, hdr_of(NC, VIRTIO_NET_HDR_GSO_ECN, 1448, 34, 16), ALL_HOST,
          VNET_HDR_GSO_TYPE },
        { &u4, hdr_of(NC, VIRTIO_NET_HDR_GSO_UDP, 1448, 34, 6), ALL_HOST,
          VNET_HDR_GSO_UNNEGOTIATED },
        { &s4, hdr_of(0, T4, 1448, 34, 16), ALL_HOST, VNET_HDR_GSO_NO_CSUM },
        { &s4, hdr_of(NC, T4, 0, 34, 16), ALL_HOST, VNET_HDR_GSO_SIZE },
        { &s4, hdr_of(NC, T4, 65535 - 39, 34, 16), ALL_HOST,
          VNET_HDR_GSO_SIZE },
        { &s4, hdr_of(NC, T4, 1448, 30, 16), ALL_HOST,
          VNET_HDR_GSO_MISMATCH },              /* csum_start not TCP. */
        { &s4, hdr_of(NC, T4, 1448, 34, 6), ALL_HOST,
          VNET_HDR_GSO_MISMATCH },              /* UDP's offset. */
        { &s6, hdr_of(NC, T4, 1448, 54, 16), ALL_HOST,
          VNET_HDR_GSO_MISMATCH },              /* TCPV4 on IPv6. */
        { &s4, hdr_of(NC, VIRTIO_NET_HDR_GSO_TCPV6, 1448, 34, 16), ALL_HOST,
          VNET_HDR_GSO_MISMATCH },              /* TCPV6 on IPv4. */
        { &u4, hdr_of(NC, T4, 1448, 34, 6), ALL_HOST,
          VNET_HDR_GSO_MISMATCH },              /* TCPV4 on UDP. */
        { &e4, hdr_of(NC, T4, 1448, 34, 16), ALL_HOST,
          VNET_HDR_GSO_NO_PAYLOAD },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vnet_layers l;
        uint32_t len = build_frame(frame, cases[i].spec, &l);
        struct vnet_offload off;

        memcpy(copy, frame, len);
        CHECK_EQ(vnet_offload_from_guest(&cases[i].h, cases[i].features,
                                         frame, len, &off), cases[i].want);
        CHECK(!memcmp(copy, frame, len));
        CHECK(strcmp(vnet_hdr_error_name(cases[i].want), "unknown error"));
    }

    /* A TSO frame shorter than its IP header says: not parsed, refused. */
    struct vnet_layers l;
    struct vnet_offload off;
    uint32_t len = build_frame(frame, &s4, &l);
    struct virtio_net_hdr h = hdr_of(NC, T4, 1448, 34, 16);

    CHECK_EQ(vnet_offload_from_guest(&h, ALL_HOST, frame, len - 1, &off),
             VNET_HDR_GSO_MISMATCH);
}

/* A partial TCP or UDP checksum is carried as such; one elsewhere is
 * completed on the way in. */
static void
test_csum_from_guest(void)
{
    static const struct frame_spec specs[] = {
        { 4, IPPROTO_TCP, 1000, 0, 0, 0, 0, 0, 0 },
        { 4, IPPROTO_UDP, 1001, 1, 4, 0, 0, 0, 0 },
        { 6, IPPROTO_TCP, 999, 2, 0, 8, 0, 0, 0 },
        { 6, IPPROTO_UDP, 17, 0, 0, 0, 0, 0, 0 },
    };

    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        uint16_t csum_offset = specs[i].proto == IPPROTO_TCP ? 16 : 6;
        struct vnet_layers l, parsed;
        uint32_t len = build_frame(frame, &specs[i], &l);
        struct virtio_net_hdr h;
        struct vnet_offload off;

        /* As a guest sends it: the pseudo-header's sum in the field. */
        CHECK(vnet_parse_layers(frame, len, &parsed));
        vnet_l4_csum_fill(frame, &parsed, true);
        h = hdr_of(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, l.l4_ofs, csum_offset);
        CHECK_EQ(vnet_offload_from_guest(&h, ALL_HOST, frame, len, &off),
                 VNET_HDR_OK);
        CHECK(off.csum && !off.tso && !off.sw_csum);
        CHECK(!inet_csum_check(frame, len).l4_ok);

        /* Filled in full on the way out, it verifies. */
        vnet_l4_csum_fill(frame, &parsed, false);
        CHECK(inet_csum_check(frame, len).l4_ok);
    }

    /* UDP over IPv4 whose checksum offset points at the UDP length field
     * (a driver's own business): completed in software, as virtio says. */
    struct frame_spec s = { 4, IPPROTO_UDP, 200, 0, 0, 0, 0, 0, 0 };
    struct vnet_layers l;
    uint32_t len = build_frame(frame, &s, &l);
    struct virtio_net_hdr h = hdr_of(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0,
                                     l.l4_ofs + 8, 2);
    struct vnet_offload off;
    /* (What the field held, the driver's partial sum, counts: the sum of
     * the bytes with the new value in place, plus the old, is 0.) */
    uint32_t old = frame[l.l4_ofs + 10] << 8 | frame[l.l4_ofs + 11];

    CHECK_EQ(vnet_offload_from_guest(&h, ALL_HOST, frame, len, &off),
             VNET_HDR_OK);
    CHECK(off.sw_csum && !off.csum);
    CHECK(inet_csum_verifies(inet_csum_sum(old, frame + l.l4_ofs + 8,
                                           len - l.l4_ofs - 8)));

    /* No flags: nothing asked, nothing done. */
    h = hdr_of(0, 0, 0, 1, 2);
    CHECK_EQ(vnet_offload_from_guest(&h, 0, frame, len, &off), VNET_HDR_OK);
    CHECK(!off.csum && !off.tso && !off.sw_csum);
}

/* The header the switch writes for a guest, and the partial checksum in
 * the frame, are what a guest completes into a right checksum. */
static void
test_hdr_for_guest(void)
{
    struct frame_spec s = { 6, IPPROTO_TCP, 30000, 1, 0, 12, 0, 0, 0 };
    struct vnet_layers l, parsed;
    uint32_t len = build_frame(frame, &s, &l);
    struct virtio_net_hdr h;

    CHECK(vnet_parse_layers(frame, len, &parsed));
    vnet_hdr_for_guest(&h, &parsed, 1400, true);
    CHECK_EQ(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CHECK_EQ(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN);
    CHECK_EQ(h.gso_size, 1400);
    CHECK_EQ(h.hdr_len, l.l4_ofs + l.l4_len);
    CHECK_EQ(h.csum_start, l.l4_ofs);
    CHECK_EQ(h.csum_offset, 16);

    vnet_l4_csum_fill(frame, &parsed, true);
    /* Completed as the guest would. */
    inet_csum_complete(frame, h.csum_start, h.csum_offset, len);
    CHECK(inet_csum_check(frame, len).l4_ok);
}

/* Software segmentation: sizes, sequence numbers, flags, IPv4 ids and
 * checksums of every segment, the payload whole and in order. */
static void
test_tso_segments(void)
{
    static const struct frame_spec specs[] = {
        { 4, IPPROTO_TCP, 65000, 0, 0, 12, 0, 0x80 | 0x18 | 0x01, 4 },
        { 4, IPPROTO_TCP, 1448, 1, 4, 0, 0, 0x18, 0 },  /* One segment. */
        { 6, IPPROTO_TCP, 10001, 2, 0, 0, 0, 0x10, 0 },
    };
    static uint8_t seg[70000];

    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct vnet_layers l;
        uint32_t len = build_frame(frame, &specs[i], &l);
        uint32_t hdrs = l.l4_ofs + l.l4_len;
        uint32_t n, count = 0, payload = 0;
        struct vnet_layers parsed;
        struct vnet_tso tso;

        CHECK(vnet_parse_layers(frame, len, &parsed));
        CHECK(vnet_tso_start(&tso, frame, &parsed, 1448));
        CHECK_EQ(vnet_tso_count(&tso), (specs[i].payload + 1447) / 1448);
        while ((n = vnet_tso_next(&tso, seg))) {
            struct inet_csum_result r = inet_csum_check(seg, n);
            bool last = payload + (n - hdrs) == specs[i].payload;
            uint8_t flags = seg[l.l4_ofs + 13];

            CHECK(n <= hdrs + 1448 && n > hdrs);
            CHECK(n <= vnet_tso_max_segment(&tso));
            CHECK(r.ipv4_ok && r.l4_ok && r.l4_proto == IPPROTO_TCP);
            CHECK_EQ(r.l4_end, n);
            CHECK(!memcmp(seg, frame, l.l3_ofs));
            CHECK_EQ(inet_get32(seg + l.l4_ofs + 4),
                     (uint32_t) (0xfffff000 + payload));
            CHECK_EQ(!!(flags & 0x01), last && (specs[i].tcp_flags & 0x01));
            CHECK_EQ(!!(flags & 0x08), last && (specs[i].tcp_flags & 0x08));
            CHECK_EQ(!!(flags & 0x80),
                     !count && (specs[i].tcp_flags & 0x80));
            CHECK(flags & 0x10 || !(specs[i].tcp_flags & 0x10));
            if (specs[i].ipv == 4) {
                CHECK_EQ(seg[l.l3_ofs + 4] << 8 | seg[l.l3_ofs + 5],
                         0x1234 + count);
            }
            CHECK(!memcmp(seg + hdrs, frame + hdrs + payload, n - hdrs));
            payload += n - hdrs;
            count++;
        }
        CHECK_EQ(payload, specs[i].payload);
        CHECK_EQ(count, vnet_tso_count(&tso));
    }

    /* Not TCP, or no segment size: nothing to do. */
    struct frame_spec u = { 4, IPPROTO_UDP, 3000, 0, 0, 0, 0, 0, 0 };
    struct vnet_layers l, parsed;
    struct vnet_tso tso;
    uint32_t len = build_frame(frame, &u, &l);

    CHECK(vnet_parse_layers(frame, len, &parsed));
    CHECK(!vnet_tso_start(&tso, frame, &parsed, 1448));
    u.proto = IPPROTO_TCP;
    len = build_frame(frame, &u, &l);
    CHECK(vnet_parse_layers(frame, len, &parsed));
    CHECK(!vnet_tso_start(&tso, frame, &parsed, 0));
}

/* The software checksum against the independent one, on every length
 * (odd ones included) and every start offset parity. */
static void
test_csum_lengths(void)
{
    for (uint32_t len = 0; len < 300; len++) {
        for (uint32_t start = 0; start < 2; start++) {
            uint8_t buf[302];
            uint64_t a, b;

            for (uint32_t i = 0; i < sizeof buf; i++) {
                buf[i] = i * 31 + len;
            }
            a = vnet_csum_fold(vnet_csum_add(0, buf + start, len));
            b = inet_csum_sum(0, buf + start, len);
            while (b >> 16) {
                b = (b & 0xffff) + (b >> 16);
            }
            /* Ours sums in memory order, the other big-endian: equal up
             * to a byte swap. */
            CHECK_EQ(a, (uint16_t) (b >> 8 | b << 8));
        }
    }
}

static const struct unit_test tests[] = {
    { "parse_layers", test_parse_layers },
    { "tso_accepted", test_tso_accepted },
    { "bad_headers", test_bad_headers },
    { "csum_from_guest", test_csum_from_guest },
    { "hdr_for_guest", test_hdr_for_guest },
    { "tso_segments", test_tso_segments },
    { "csum_lengths", test_csum_lengths },
};

UNIT_SUITE(offload_suite, tests);
