/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Ingress policing and egress QoS of vhostmq ports. */

#ifndef NETDEV_VHOSTMQ_QOS_H
#define NETDEV_VHOSTMQ_QOS_H 1

/* What netdev-dpdk offers on vhost ports, so that Neutron's bandwidth
 * limits and an operator's OVSDB settings hold on a vhostmq port too:
 *
 *   - Ingress policing (Interface columns ingress_policing_rate and _burst
 *     in kbit, ingress_policing_kpkts_rate and _burst in thousands of
 *     packets): frames from the guest above the rate are dropped before
 *     the switch sees them.  Both limits may be set; a frame then passes
 *     only if both allow it.  A burst of 0 is the documented default,
 *     8000 kbit and 16 kpkts.  (netdev-dpdk ignores the packet rate;
 *     Linux ports enforce it, and so does vhostmq.)
 *
 *   - Egress QoS type "egress-policer" (QoS other_config:cir in bytes a
 *     second and :cbs in bytes): frames to the guest above the rate are
 *     dropped.  Both must be set, 1 to VHOST_METER_MAX; otherwise the
 *     port has no QoS and set_qos fails with EINVAL, as in netdev-dpdk.
 *
 *   - Egress QoS type "trtcm-policer": RFC 4115's two-rate three-color
 *     marker, a committed bucket (cir, cbs) and an excess one (eir, ebs)
 *     for the port and for each of its queues (Queue other_config, the
 *     same keys; queue 0 without settings takes the port's).  A frame goes
 *     to the queue its skb_priority names (OpenFlow set_queue), or queue
 *     0; the queue marks it color-blind (green from the committed bucket,
 *     else yellow from the excess one, else red), then the port
 *     color-aware (a yellow frame may take only from its excess bucket);
 *     red frames are dropped.  At least one rate must be set, and each
 *     rate set needs its burst, or the settings are refused (EINVAL).
 *     Each queue counts the frames it passed and dropped (queue stats).
 *
 * Both count bytes of a frame less its Ethernet header, as netdev-dpdk's
 * meters do (vswitch.xml defines cir that way).  Drops are counted
 * (ovs_rx_qos_drops, ovs_tx_qos_drops) and in rx_dropped and tx_dropped.
 *
 * A policer is one token bucket per limit (lib/vhost-meter.h) that every
 * PMD thread polling or sending to the port shares, under a mutex taken
 * once per batch.  A port without policing pays one pointer load per
 * batch.  Changing a setting replaces the policer (full again, as
 * netdev-dpdk's); the old one is freed after an RCU grace period. */

#include <stdint.h>

#include "dp-packet.h"
#include "ovs-atomic.h"
#include "ovs-rcu.h"

struct netdev_queue_stats;
struct smap;
struct sset;
struct vhostmq_policer;
struct vhostmq_qos_type;

/* A policer as PMD threads find it (NULL: none). */
typedef OVSRCU_TYPE(struct vhostmq_policer *) vhostmq_policer_rcu;

struct vhostmq_qos {
    /* Read by PMD threads. */
    vhostmq_policer_rcu ingress;
    vhostmq_policer_rcu egress;

    /* Counters, added to once per batch that dropped. */
    atomic_uint64_t rx_drops;
    atomic_uint64_t rx_drop_bytes;
    atomic_uint64_t tx_drops;

    /* The settings in effect, for the main thread (under the port's
     * mutex). */
    uint32_t kbits_rate, kbits_burst;
    uint32_t kpkts_rate, kpkts_burst;
    const struct vhostmq_qos_type *type;        /* NULL: no egress QoS. */
    struct vhostmq_qos_params {
        uint64_t cir, cbs, eir, ebs;
    } params;
};

void vhostmq_qos_init(struct vhostmq_qos *);
void vhostmq_qos_destroy(struct vhostmq_qos *);

/* netdev_class functions, for port 'name' (under the port's mutex). */
int vhostmq_qos_set_policing(struct vhostmq_qos *, const char *name,
                             uint32_t kbits_rate, uint32_t kbits_burst,
                             uint32_t kpkts_rate, uint32_t kpkts_burst);
int vhostmq_qos_get_types(struct sset *types);
int vhostmq_qos_get(const struct vhostmq_qos *, const char **typep,
                    struct smap *details);
int vhostmq_qos_set(struct vhostmq_qos *, const char *name, const char *type,
                    const struct smap *details);
int vhostmq_qos_get_queue(const struct vhostmq_qos *, unsigned int queue_id,
                          struct smap *details);
int vhostmq_qos_set_queue(struct vhostmq_qos *, const char *name,
                          unsigned int queue_id, const struct smap *details);
int vhostmq_qos_delete_queue(struct vhostmq_qos *, unsigned int queue_id);
int vhostmq_qos_get_queue_stats(const struct vhostmq_qos *,
                                unsigned int queue_id,
                                struct netdev_queue_stats *);
/* The ids of the egress QoS's queues, in order (to free()); returns how
 * many. */
size_t vhostmq_qos_queue_ids(const struct vhostmq_qos *, unsigned int **idsp);

/* Polices 'batch': the frames that pass stay in it, in order; each other
 * one goes to 'drop'.  Returns how many were dropped and adds their bytes
 * to '*bytes'. */
size_t vhostmq_policer_run(struct vhostmq_policer *,
                           struct dp_packet_batch *batch,
                           void (*drop)(void *aux, struct dp_packet *),
                           void *aux, uint64_t *bytes);

#endif /* netdev-vhostmq-qos.h */
