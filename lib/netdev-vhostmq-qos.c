/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Ingress policing and egress QoS of vhostmq ports. */

#include <config.h>

#include "netdev-vhostmq-qos.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "openvswitch/vlog.h"
#include "ovs-thread.h"
#include "packets.h"
#include "smap.h"
#include "sset.h"
#include "timeval.h"
#include "vhost-meter.h"

VLOG_DEFINE_THIS_MODULE(vhostmq_qos);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* The documented defaults of a burst of 0 (vswitch.xml). */
#define DEFAULT_KBITS_BURST 8000
#define DEFAULT_KPKTS_BURST 16

struct vhostmq_policer {
    struct ovs_mutex mutex;
    bool by_bytes;                              /* 'bytes' applies. */
    bool by_packets;                            /* 'packets' applies. */
    struct vhost_meter bytes OVS_GUARDED;
    struct vhost_meter packets OVS_GUARDED;
};

/* An egress QoS type: how its settings read. */
struct vhostmq_qos_type {
    const char *name;
    /* Reads 'details' into 'cir' and 'cbs'; returns false (and says why in
     * 'why') if they cannot work. */
    bool (*parse)(const struct smap *details, uint64_t *cir, uint64_t *cbs,
                  const char **why);
};

static bool
egress_policer_parse(const struct smap *details, uint64_t *cir,
                     uint64_t *cbs, const char **why)
{
    *cir = smap_get_ullong(details, "cir", 0);
    *cbs = smap_get_ullong(details, "cbs", 0);
    if (!*cir || !*cbs) {
        *why = "other_config:cir and other_config:cbs must both be set";
        return false;
    }
    if (*cir > VHOST_METER_MAX || *cbs > VHOST_METER_MAX) {
        *why = "other_config:cir or other_config:cbs is too large";
        return false;
    }
    return true;
}

static const struct vhostmq_qos_type qos_types[] = {
    { "egress-policer", egress_policer_parse },
};

static const struct vhostmq_qos_type *
qos_type_lookup(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(qos_types); i++) {
        if (!strcmp(qos_types[i].name, name)) {
            return &qos_types[i];
        }
    }
    return NULL;
}

/* A policer of 'byte_rate' bytes a second with a bucket of 'byte_burst'
 * and of 'pkt_rate' frames a second with a bucket of 'pkt_burst' (a rate
 * of 0: no such limit); all at most VHOST_METER_MAX. */
static struct vhostmq_policer *
policer_create(uint64_t byte_rate, uint64_t byte_burst,
               uint64_t pkt_rate, uint64_t pkt_burst)
{
    struct vhostmq_policer *p = xzalloc(sizeof *p);
    long long int now = time_usec();

    ovs_mutex_init(&p->mutex);
    ovs_mutex_lock(&p->mutex);
    p->by_bytes = byte_rate != 0;
    p->by_packets = pkt_rate != 0;
    if (p->by_bytes) {
        ovs_assert(!vhost_meter_init(&p->bytes, byte_rate, byte_burst, now));
    }
    if (p->by_packets) {
        ovs_assert(!vhost_meter_init(&p->packets, pkt_rate, pkt_burst, now));
    }
    ovs_mutex_unlock(&p->mutex);
    return p;
}

static void
policer_free(struct vhostmq_policer *p)
{
    if (p) {
        ovs_mutex_destroy(&p->mutex);
        free(p);
    }
}

/* Makes 'p' the policer in '*slot', the old one freed once no PMD thread
 * can be using it. */
static void
policer_replace(vhostmq_policer_rcu *slot, struct vhostmq_policer *p)
{
    struct vhostmq_policer *old
        = ovsrcu_get_protected(struct vhostmq_policer *, slot);

    ovsrcu_set(slot, p);
    if (old) {
        ovsrcu_postpone(policer_free, old);
    }
}

void
vhostmq_qos_init(struct vhostmq_qos *qos)
{
    memset(qos, 0, sizeof *qos);
    ovsrcu_init(&qos->ingress, NULL);
    ovsrcu_init(&qos->egress, NULL);
    atomic_init(&qos->rx_drops, 0);
    atomic_init(&qos->rx_drop_bytes, 0);
    atomic_init(&qos->tx_drops, 0);
}

void
vhostmq_qos_destroy(struct vhostmq_qos *qos)
{
    policer_replace(&qos->ingress, NULL);
    policer_replace(&qos->egress, NULL);
}

int
vhostmq_qos_set_policing(struct vhostmq_qos *qos, const char *name,
                         uint32_t kbits_rate, uint32_t kbits_burst,
                         uint32_t kpkts_rate, uint32_t kpkts_burst)
{
    kbits_burst = (!kbits_rate ? 0
                   : kbits_burst ? kbits_burst : DEFAULT_KBITS_BURST);
    kpkts_burst = (!kpkts_rate ? 0
                   : kpkts_burst ? kpkts_burst : DEFAULT_KPKTS_BURST);
    if (qos->kbits_rate == kbits_rate && qos->kbits_burst == kbits_burst
        && qos->kpkts_rate == kpkts_rate && qos->kpkts_burst == kpkts_burst) {
        return 0;
    }
    qos->kbits_rate = kbits_rate;
    qos->kbits_burst = kbits_burst;
    qos->kpkts_rate = kpkts_rate;
    qos->kpkts_burst = kpkts_burst;

    if (!kbits_rate && !kpkts_rate) {
        policer_replace(&qos->ingress, NULL);
        VLOG_INFO("%s: ingress policing off", name);
        return 0;
    }
    /* (A kbit is 125 bytes.  The largest 32-bit values stay well below
     * VHOST_METER_MAX.) */
    policer_replace(&qos->ingress,
                    policer_create(kbits_rate * UINT64_C(125),
                                   kbits_burst * UINT64_C(125),
                                   kpkts_rate * UINT64_C(1000),
                                   kpkts_burst * UINT64_C(1000)));
    VLOG_INFO("%s: ingress policing at %"PRIu32" kbit/s (burst %"PRIu32
              " kbit), %"PRIu32" kpkt/s (burst %"PRIu32" kpkt); 0: none",
              name, kbits_rate, kbits_burst, kpkts_rate, kpkts_burst);
    return 0;
}

int
vhostmq_qos_get_types(struct sset *types)
{
    for (size_t i = 0; i < ARRAY_SIZE(qos_types); i++) {
        sset_add(types, qos_types[i].name);
    }
    return 0;
}

int
vhostmq_qos_get(const struct vhostmq_qos *qos, const char **typep,
                struct smap *details)
{
    if (!qos->type) {
        *typep = "";
        return 0;
    }
    *typep = qos->type->name;
    smap_add_format(details, "cir", "%"PRIu64, qos->cir);
    smap_add_format(details, "cbs", "%"PRIu64, qos->cbs);
    return 0;
}

int
vhostmq_qos_set(struct vhostmq_qos *qos, const char *name, const char *type,
                const struct smap *details)
{
    const struct vhostmq_qos_type *t = NULL;
    const char *why = NULL;
    uint64_t cir = 0, cbs = 0;
    int error = 0;

    if (type && type[0]) {
        t = qos_type_lookup(type);
        if (!t) {
            VLOG_WARN_RL(&rl, "%s: QoS type %s is not supported on vhostmq "
                         "ports (egress-policer is): port has no QoS",
                         name, type);
            error = EOPNOTSUPP;
        } else if (!t->parse(details, &cir, &cbs, &why)) {
            VLOG_WARN_RL(&rl, "%s: QoS type %s not applied, %s: port has no "
                         "QoS", name, type, why);
            error = EINVAL;
            t = NULL;
        }
    }

    if (t == qos->type && cir == qos->cir && cbs == qos->cbs) {
        return error;           /* Unchanged: the bucket keeps its level. */
    }
    qos->type = t;
    qos->cir = cir;
    qos->cbs = cbs;
    policer_replace(&qos->egress, t ? policer_create(cir, cbs, 0, 0) : NULL);
    if (t) {
        VLOG_INFO("%s: QoS %s at %"PRIu64" bytes/s (burst %"PRIu64" bytes)",
                  name, t->name, cir, cbs);
    } else if (!error) {
        VLOG_INFO("%s: QoS off", name);
    }
    return error;
}

size_t
vhostmq_policer_run(struct vhostmq_policer *p, struct dp_packet_batch *batch,
                    void (*drop)(void *aux, struct dp_packet *), void *aux,
                    uint64_t *bytes)
{
    const size_t n = dp_packet_batch_size(batch);
    long long int now = time_usec();
    struct dp_packet *packet;
    size_t dropped = 0;
    size_t i;

    ovs_mutex_lock(&p->mutex);
    if (p->by_bytes) {
        vhost_meter_refill(&p->bytes, now);
    }
    if (p->by_packets) {
        vhost_meter_refill(&p->packets, now);
    }
    DP_PACKET_BATCH_REFILL_FOR_EACH (i, n, packet, batch) {
        uint32_t size = dp_packet_size(packet);
        uint32_t cost = size > ETH_HEADER_LEN ? size - ETH_HEADER_LEN : 0;

        if ((!p->by_bytes || vhost_meter_has(&p->bytes, cost))
            && (!p->by_packets || vhost_meter_has(&p->packets, 1))) {
            if (p->by_bytes) {
                vhost_meter_take(&p->bytes, cost);
            }
            if (p->by_packets) {
                vhost_meter_take(&p->packets, 1);
            }
            dp_packet_batch_refill(batch, packet, i);
        } else {
            *bytes += size;
            dropped++;
            drop(aux, packet);
        }
    }
    ovs_mutex_unlock(&p->mutex);
    return dropped;
}
