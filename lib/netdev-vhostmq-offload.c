/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Checksum and TSO offloads between a guest's virtio-net headers and OVS's
 * packet offload flags. */

#include <config.h>

#include "netdev-vhostmq-offload.h"

#include <errno.h>
#include <netinet/in.h>

#include "dp-packet.h"
#include "packets.h"

void
vhostmq_offload_acc_flush(struct vhostmq_offload_acc *acc,
                          struct vhostmq_offload_stats *stats)
{
    vhostmq_counter_add(&stats->rx_csum, acc->rx_csum);
    vhostmq_counter_add(&stats->rx_tso, acc->rx_tso);
    vhostmq_counter_add(&stats->rx_sw_csum, acc->rx_sw_csum);
    vhostmq_counter_add(&stats->rx_bad, acc->rx_bad);
    vhostmq_counter_add(&stats->tx_csum, acc->tx_csum);
    vhostmq_counter_add(&stats->tx_tso, acc->tx_tso);
    vhostmq_counter_add(&stats->tx_sw_csum, acc->tx_sw_csum);
    vhostmq_counter_add(&stats->tx_sw_tso, acc->tx_sw_tso);
    vhostmq_counter_add(&stats->tx_sw_segments, acc->tx_sw_segments);
    vhostmq_counter_add(&stats->tx_bad, acc->tx_bad);
    memset(acc, 0, sizeof *acc);
}

bool
vhostmq_offload_from_guest(struct dp_packet *packet,
                           const struct virtio_net_hdr *hdr,
                           uint64_t features, struct vhostmq_offload_acc *acc)
{
    struct vnet_offload off;
    enum vnet_hdr_error error;

    error = vnet_offload_from_guest(hdr, features, dp_packet_data(packet),
                                    dp_packet_size(packet), &off);
    if (error) {
        acc->rx_bad++;
        acc->rx_error = error;
        return false;
    }
    if (off.sw_csum) {
        acc->rx_sw_csum++;
    }
    if (off.csum) {
        acc->rx_csum++;
        vhostmq_ol_set_partial(packet, off.layers.l4_proto,
                               off.layers.ip_version,
                               off.tso ? off.gso_size : 0);
        if (off.tso) {
            acc->rx_tso++;
        }
    }
    return true;
}

/* Cuts 'data' (layers 'l') into segments of 'mss' payload bytes in
 * 'scratch' and hands each to 'enqueue'. */
static int
segment(const uint8_t *data, const struct vnet_layers *l, uint16_t mss,
        bool guest_csum, uint8_t *scratch, vhostmq_enqueue_cb *enqueue,
        void *aux, struct vhostmq_offload_acc *acc)
{
    /* A guest that checks checksums itself is told these are good. */
    static const struct virtio_net_hdr valid = {
        .flags = VIRTIO_NET_HDR_F_DATA_VALID,
    };
    struct vnet_tso tso;
    uint32_t n;

    if (!vnet_tso_start(&tso, data, l, mss)
        || vnet_tso_max_segment(&tso) > VHOSTMQ_OFFLOAD_SCRATCH) {
        acc->tx_bad++;
        return EINVAL;
    }
    acc->tx_sw_tso++;
    while ((n = vnet_tso_next(&tso, scratch))) {
        int error = enqueue(aux, guest_csum ? &valid : NULL, scratch, n);

        if (error) {
            return error;
        }
        acc->tx_sw_segments++;
    }
    return 0;
}

int
vhostmq_offload_to_guest(struct dp_packet *packet, uint64_t features,
                         int max_frame_len, uint8_t *scratch,
                         vhostmq_enqueue_cb *enqueue, void *aux,
                         struct vhostmq_offload_acc *acc)
{
    bool guest_csum = features & (1ull << VIRTIO_NET_F_GUEST_CSUM);
    uint8_t *data = dp_packet_data(packet);
    uint32_t size = dp_packet_size(packet);
    bool tso = vhostmq_ol_tso(packet);
    int want_proto = vhostmq_ol_l4_proto(packet);
    struct virtio_net_hdr hdr;
    struct vnet_layers l;

    if (!vnet_parse_layers(data, size, &l)
        || (want_proto && (!l.l4_ofs || l.l4_proto != want_proto))) {
        /* Flags for a layer the packet does not have (SCTP, which the
         * port does not take, included). */
        acc->tx_bad++;
        return EINVAL;
    }
    if (vhostmq_ol_ip_csum(packet) && l.ip_version == 4) {
        /* Virtio has no offload for it: always done here. */
        vnet_ipv4_csum_fill(data, &l);
    }
    if (!want_proto) {
        /* Nothing else was left to do. */
        if (size > max_frame_len) {
            return EMSGSIZE;
        }
        acc->tx_sw_csum++;
        return enqueue(aux, NULL, data, size);
    }

    if (tso) {
        uint32_t hdrs = l.l4_ofs + l.l4_len;
        int ip_mtu = max_frame_len - ETH_HEADER_LEN - VLAN_HEADER_LEN;
        int mss = ip_mtu - (int) (hdrs - l.l3_ofs);
        int segsz = vhostmq_ol_tso_segsz(packet);

        /* The sender's segment size where OVS keeps it (3.3 and later),
         * unless the port's MTU asks for smaller. */
        if (segsz > 0 && segsz < mss) {
            mss = segsz;
        }
        if (mss < 1) {
            return EMSGSIZE;
        }
        if (l.l4_end - hdrs > (uint32_t) mss) {
            bool cwr = data[l.l4_ofs + 13] & TCP_CWR;
            uint64_t need = ((1ull << VIRTIO_NET_F_GUEST_CSUM)
                             | (1ull << (l.ip_version == 4
                                         ? VIRTIO_NET_F_GUEST_TSO4
                                         : VIRTIO_NET_F_GUEST_TSO6))
                             | (cwr ? 1ull << VIRTIO_NET_F_GUEST_ECN : 0));

            if ((features & need) != need) {
                return segment(data, &l, mss, guest_csum, scratch, enqueue,
                               aux, acc);
            }
            vnet_l4_csum_fill(data, &l, true);
            vnet_hdr_for_guest(&hdr, &l, mss, cwr);
            acc->tx_tso++;
            acc->tx_csum++;
            return enqueue(aux, &hdr, data, size);
        }
        /* No more than one segment's payload: only its checksum to do. */
    } else if (size > max_frame_len) {
        return EMSGSIZE;
    }

    if (guest_csum) {
        vnet_l4_csum_fill(data, &l, true);
        vnet_hdr_for_guest(&hdr, &l, 0, false);
        acc->tx_csum++;
        return enqueue(aux, &hdr, data, size);
    }
    vnet_l4_csum_fill(data, &l, false);
    acc->tx_sw_csum++;
    return enqueue(aux, NULL, data, size);
}
