/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* libFuzzer target: the virtio-net header and frame a guest transmits, as
 * lib/vnet-offload.c reads them, and the software offloads the switch does
 * on the frames it accepts.  The input:
 *
 *   byte 0      negotiated features (bits: CSUM, HOST_TSO4, HOST_TSO6,
 *               HOST_ECN, HOST_UFO)
 *   bytes 1-2   a segment size for the send side's segmentation
 *   bytes 3-12  the virtio-net header
 *   the rest    the frame (a heap block of exactly its size: ASAN sees a
 *               read past its end)
 *
 * Checks, besides ASAN and UBSAN: a refused frame is left unchanged; an
 * accepted offload's layers lie inside the frame; a checksum the switch
 * fills (partial, then completed as a guest would, or full) verifies by an
 * independent implementation (tests/inet-csum.h); every segment of a TSO
 * frame is no longer than its headers and segment size, has right IP and
 * TCP checksums, and the segments carry the whole payload in order. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../inet-csum.h"
#include "vnet-offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether tests/inet-csum.h can check 'layers' (it knows no IPv6
 * extension headers). */
static bool
checkable(const struct vnet_layers *layers)
{
    return layers->ip_version == 4 || layers->l3_ofs + 40 == layers->l4_ofs;
}

/* Segments 'frame' by 'mss' and checks every segment. */
static void
check_segments(const uint8_t *frame, const struct vnet_layers *layers,
               uint16_t mss)
{
    static uint8_t seg[65536 + 128];
    struct vnet_tso tso;
    uint32_t n, count = 0, payload = 0;
    uint32_t hdrs = layers->l4_ofs + layers->l4_len;

    if (!vnet_tso_start(&tso, frame, layers, mss)) {
        return;
    }
    if (vnet_tso_max_segment(&tso) > sizeof seg) {
        abort();
    }
    while ((n = vnet_tso_next(&tso, seg))) {
        struct inet_csum_result r = inet_csum_check(seg, n);

        if (n > hdrs + mss
            || memcmp(seg + hdrs, frame + hdrs + payload, n - hdrs)
            || (checkable(layers)
                && (!r.ipv4_ok || r.l4_proto != 6 || !r.l4_ok
                    || r.l4_end != n))) {
            abort();
        }
        payload += n - hdrs;
        count++;
    }
    if (payload != layers->l4_end - hdrs || count != vnet_tso_count(&tso)) {
        abort();
    }
}

/* Fills the L4 checksum of a copy of 'frame' partially, completes it as a
 * guest would from NEEDS_CSUM, then fully, and checks both. */
static void
check_csum(const uint8_t *frame, uint32_t len,
           const struct vnet_layers *layers)
{
    uint8_t *copy = malloc(len);
    struct virtio_net_hdr hdr;
    struct vnet_offload off;

    memcpy(copy, frame, len);
    vnet_l4_csum_fill(copy, layers, true);
    vnet_hdr_for_guest(&hdr, layers, 0, false);
    /* The header the switch would give a guest is one it accepts back
     * (up to the end of the IP packet: Linux trims padding first). */
    if (vnet_offload_from_guest(&hdr, 1ull << VIRTIO_NET_F_CSUM, copy,
                                layers->l4_end, &off) != VNET_HDR_OK
        || !off.csum || off.layers.l4_ofs != layers->l4_ofs) {
        abort();
    }
    if (checkable(layers)) {
        /* Completed as the guest would: the sum from csum_start on. */
        inet_csum_complete(copy, hdr.csum_start, hdr.csum_offset,
                           layers->l4_end);
        if (!inet_csum_check(copy, len).l4_ok) {
            abort();
        }
    }
    vnet_l4_csum_fill(copy, layers, false);
    if (checkable(layers) && !inet_csum_check(copy, len).l4_ok) {
        abort();
    }
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t feature_bits[5] = {
        1ull << VIRTIO_NET_F_CSUM, 1ull << VIRTIO_NET_F_HOST_TSO4,
        1ull << VIRTIO_NET_F_HOST_TSO6, 1ull << VIRTIO_NET_F_HOST_ECN,
        1ull << VIRTIO_NET_F_HOST_UFO,
    };
    struct virtio_net_hdr hdr;
    struct vnet_layers layers;
    struct vnet_offload off;
    uint64_t features = 0;
    enum vnet_hdr_error error;
    uint8_t *frame, *orig;
    uint16_t mss;
    uint32_t len;

    if (size < 13 || size - 13 > 65535 + 26) {
        return 0;
    }
    for (int i = 0; i < 5; i++) {
        if (data[0] & (1 << i)) {
            features |= feature_bits[i];
        }
    }
    mss = data[1] | data[2] << 8;
    memset(&hdr, 0, sizeof hdr);
    memcpy(&hdr, data + 3, 10);
    len = size - 13;
    frame = malloc(len ? len : 1);
    orig = malloc(len ? len : 1);
    memcpy(frame, data + 13, len);
    memcpy(orig, data + 13, len);

    error = vnet_offload_from_guest(&hdr, features, frame, len, &off);
    if (error != VNET_HDR_OK) {
        if (memcmp(frame, orig, len) || !vnet_hdr_error_name(error)) {
            abort();
        }
    } else if (off.csum) {
        const struct vnet_layers *l = &off.layers;

        if (!l->l4_ofs || l->l4_ofs + l->l4_len > l->l4_end
            || l->l4_end > len || (off.tso && !off.gso_size)) {
            abort();
        }
        check_csum(frame, len, l);
        if (off.tso) {
            check_segments(frame, l, off.gso_size);
        }
    }

    /* The send side, on any frame OVS may hand over. */
    if (vnet_parse_layers(orig, len, &layers) && layers.l4_ofs) {
        if (layers.l4_end > len) {
            abort();
        }
        check_csum(orig, len, &layers);
        if (mss) {
            check_segments(orig, &layers, mss);
        }
    }
    free(frame);
    free(orig);
    return 0;
}
