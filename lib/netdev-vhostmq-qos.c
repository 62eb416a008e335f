/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Ingress policing and egress QoS of vhostmq ports. */

#include <config.h>

#include "netdev-vhostmq-qos.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "hash.h"
#include "netdev.h"
#include "openvswitch/hmap.h"
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

/* RFC 4115's two-rate three-color marker: a committed bucket and an
 * excess one, each off if its rate is 0. */
enum color { GREEN, YELLOW, RED };

struct trtcm {
    bool has_c, has_e;
    struct vhost_meter c;                       /* cir, cbs. */
    struct vhost_meter e;                       /* eir, ebs. */
};

static void
trtcm_init(struct trtcm *t, const struct vhostmq_qos_params *p,
           long long int now)
{
    t->has_c = p->cir != 0;
    t->has_e = p->eir != 0;
    if (t->has_c) {
        ovs_assert(!vhost_meter_init(&t->c, p->cir, p->cbs, now));
    }
    if (t->has_e) {
        ovs_assert(!vhost_meter_init(&t->e, p->eir, p->ebs, now));
    }
}

static void
trtcm_refill(struct trtcm *t, long long int now)
{
    if (t->has_c) {
        vhost_meter_refill(&t->c, now);
    }
    if (t->has_e) {
        vhost_meter_refill(&t->e, now);
    }
}

/* Marks a frame of 'cost' bytes that comes 'in' this color (GREEN for a
 * color-blind marker): green if it is green and the committed bucket holds
 * it, else yellow if it is not red and the excess bucket holds it, else
 * red. */
static enum color
trtcm_mark(struct trtcm *t, uint64_t cost, enum color in)
{
    if (in == GREEN && t->has_c && vhost_meter_has(&t->c, cost)) {
        vhost_meter_take(&t->c, cost);
        return GREEN;
    }
    if (in != RED && t->has_e && vhost_meter_has(&t->e, cost)) {
        vhost_meter_take(&t->e, cost);
        return YELLOW;
    }
    return RED;
}

/* One queue of a trtcm-policer. */
struct trtcm_queue {
    struct hmap_node node;                      /* In 'queues', by id. */
    unsigned int id;
    struct vhostmq_qos_params params;
    struct trtcm meter;
    uint64_t tx_packets, tx_bytes, tx_errors;   /* Passed, dropped here. */
    long long int created;                      /* time_msec(). */
};

enum policer_kind {
    POLICER_METERS,             /* A byte and/or a packet bucket. */
    POLICER_TRTCM,              /* A trtcm-policer. */
};

struct vhostmq_policer {
    struct ovs_mutex mutex;
    enum policer_kind kind;
    /* POLICER_METERS. */
    bool by_bytes;                              /* 'bytes' applies. */
    bool by_packets;                            /* 'packets' applies. */
    struct vhost_meter bytes OVS_GUARDED;
    struct vhost_meter packets OVS_GUARDED;
    /* POLICER_TRTCM. */
    struct trtcm port OVS_GUARDED;
    struct hmap queues OVS_GUARDED;             /* "struct trtcm_queue"s. */
};

/* An egress QoS type: how its settings read. */
struct vhostmq_qos_type {
    const char *name;
    enum policer_kind kind;
    /* Reads 'details' into 'p'; returns false (and says why in 'why') if
     * they cannot work. */
    bool (*parse)(const struct smap *details, struct vhostmq_qos_params *p,
                  const char **why);
};

static bool
egress_policer_parse(const struct smap *details,
                     struct vhostmq_qos_params *p, const char **why)
{
    memset(p, 0, sizeof *p);
    p->cir = smap_get_ullong(details, "cir", 0);
    p->cbs = smap_get_ullong(details, "cbs", 0);
    if (!p->cir || !p->cbs) {
        *why = "other_config:cir and other_config:cbs must both be set";
        return false;
    }
    if (p->cir > VHOST_METER_MAX || p->cbs > VHOST_METER_MAX) {
        *why = "other_config:cir or other_config:cbs is too large";
        return false;
    }
    return true;
}

static bool
trtcm_policer_parse(const struct smap *details, struct vhostmq_qos_params *p,
                    const char **why)
{
    p->cir = smap_get_ullong(details, "cir", 0);
    p->cbs = smap_get_ullong(details, "cbs", 0);
    p->eir = smap_get_ullong(details, "eir", 0);
    p->ebs = smap_get_ullong(details, "ebs", 0);
    if (!p->cir && !p->eir) {
        *why = "other_config:cir or other_config:eir must be set";
        return false;
    }
    if ((p->cir && !p->cbs) || (p->eir && !p->ebs)) {
        *why = "a rate (cir, eir) needs its burst (cbs, ebs)";
        return false;
    }
    if (p->cir > VHOST_METER_MAX || p->cbs > VHOST_METER_MAX
        || p->eir > VHOST_METER_MAX || p->ebs > VHOST_METER_MAX) {
        *why = "a rate or burst is too large";
        return false;
    }
    return true;
}

static const struct vhostmq_qos_type qos_types[] = {
    { "egress-policer", POLICER_METERS, egress_policer_parse },
    { "trtcm-policer", POLICER_TRTCM, trtcm_policer_parse },
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
    p->kind = POLICER_METERS;
    hmap_init(&p->queues);
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

/* A trtcm-policer with the port's 'params' and no queue yet. */
static struct vhostmq_policer *
policer_create_trtcm(const struct vhostmq_qos_params *params)
{
    struct vhostmq_policer *p = xzalloc(sizeof *p);

    ovs_mutex_init(&p->mutex);
    ovs_mutex_lock(&p->mutex);
    p->kind = POLICER_TRTCM;
    hmap_init(&p->queues);
    trtcm_init(&p->port, params, time_usec());
    ovs_mutex_unlock(&p->mutex);
    return p;
}

static void
policer_free(struct vhostmq_policer *p)
{
    if (p) {
        struct trtcm_queue *q;

        ovs_mutex_lock(&p->mutex);
        HMAP_FOR_EACH_POP (q, node, &p->queues) {
            free(q);
        }
        hmap_destroy(&p->queues);
        ovs_mutex_unlock(&p->mutex);
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

static void
add_params(struct smap *details, const struct vhostmq_qos_params *p,
           bool excess)
{
    smap_add_format(details, "cir", "%"PRIu64, p->cir);
    if (excess) {
        smap_add_format(details, "eir", "%"PRIu64, p->eir);
    }
    smap_add_format(details, "cbs", "%"PRIu64, p->cbs);
    if (excess) {
        smap_add_format(details, "ebs", "%"PRIu64, p->ebs);
    }
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
    add_params(details, &qos->params, qos->type->kind == POLICER_TRTCM);
    return 0;
}

int
vhostmq_qos_set(struct vhostmq_qos *qos, const char *name, const char *type,
                const struct smap *details)
{
    const struct vhostmq_qos_type *t = NULL;
    struct vhostmq_qos_params params;
    const char *why = NULL;
    int error = 0;

    memset(&params, 0, sizeof params);
    if (type && type[0]) {
        t = qos_type_lookup(type);
        if (!t) {
            VLOG_WARN_RL(&rl, "%s: QoS type %s is not supported on vhostmq "
                         "ports (egress-policer and trtcm-policer are): port "
                         "has no QoS", name, type);
            error = EOPNOTSUPP;
        } else if (!t->parse(details, &params, &why)) {
            VLOG_WARN_RL(&rl, "%s: QoS type %s not applied, %s: port has no "
                         "QoS", name, type, why);
            error = EINVAL;
            t = NULL;
            memset(&params, 0, sizeof params);
        }
    }

    if (t == qos->type && !memcmp(&params, &qos->params, sizeof params)) {
        return error;           /* Unchanged: buckets and queues stay. */
    }
    qos->type = t;
    qos->params = params;
    policer_replace(&qos->egress,
                    !t ? NULL
                    : t->kind == POLICER_TRTCM ? policer_create_trtcm(&params)
                    : policer_create(params.cir, params.cbs, 0, 0));
    if (!t) {
        if (!error) {
            VLOG_INFO("%s: QoS off", name);
        }
    } else if (t->kind == POLICER_TRTCM) {
        VLOG_INFO("%s: QoS %s at %"PRIu64" bytes/s committed (burst %"PRIu64
                  " bytes), %"PRIu64" bytes/s excess (burst %"PRIu64" bytes)",
                  name, t->name, params.cir, params.cbs, params.eir,
                  params.ebs);
    } else {
        VLOG_INFO("%s: QoS %s at %"PRIu64" bytes/s (burst %"PRIu64" bytes)",
                  name, t->name, params.cir, params.cbs);
    }
    return error;
}

/* The egress policer if it is a trtcm-policer, or NULL. */
static struct vhostmq_policer *
trtcm_policer(const struct vhostmq_qos *qos)
{
    struct vhostmq_policer *p
        = ovsrcu_get_protected(struct vhostmq_policer *, &qos->egress);

    return p && p->kind == POLICER_TRTCM ? p : NULL;
}

static struct trtcm_queue *
trtcm_queue_find(struct vhostmq_policer *p, unsigned int id)
    OVS_REQUIRES(p->mutex)
{
    struct trtcm_queue *q;

    HMAP_FOR_EACH_WITH_HASH (q, node, hash_int(id, 0), &p->queues) {
        if (q->id == id) {
            return q;
        }
    }
    return NULL;
}

int
vhostmq_qos_get_queue(const struct vhostmq_qos *qos, unsigned int queue_id,
                      struct smap *details)
{
    struct vhostmq_policer *p = trtcm_policer(qos);
    struct trtcm_queue *q;
    int error = 0;

    if (!p) {
        return EOPNOTSUPP;
    }
    ovs_mutex_lock(&p->mutex);
    q = trtcm_queue_find(p, queue_id);
    if (q) {
        add_params(details, &q->params, true);
    } else {
        error = ENOENT;
    }
    ovs_mutex_unlock(&p->mutex);
    return error;
}

int
vhostmq_qos_set_queue(struct vhostmq_qos *qos, const char *name,
                      unsigned int queue_id, const struct smap *details)
{
    struct vhostmq_policer *p = trtcm_policer(qos);
    struct vhostmq_qos_params params;
    const char *why = NULL;
    struct trtcm_queue *q;

    if (!p) {
        return EOPNOTSUPP;
    }
    if (queue_id == 0 && smap_is_empty(details)) {
        params = qos->params;   /* The default queue, as the port. */
    } else if (!trtcm_policer_parse(details, &params, &why)) {
        VLOG_WARN_RL(&rl, "%s: trtcm-policer queue %u not applied, %s",
                     name, queue_id, why);
        vhostmq_qos_delete_queue(qos, queue_id);
        return EINVAL;
    }

    ovs_mutex_lock(&p->mutex);
    q = trtcm_queue_find(p, queue_id);
    if (!q) {
        q = xzalloc(sizeof *q);
        q->id = queue_id;
        q->created = time_msec();
        hmap_insert(&p->queues, &q->node, hash_int(queue_id, 0));
    } else if (!memcmp(&params, &q->params, sizeof params)) {
        ovs_mutex_unlock(&p->mutex);
        return 0;
    }
    q->params = params;
    trtcm_init(&q->meter, &params, time_usec());
    ovs_mutex_unlock(&p->mutex);
    return 0;
}

int
vhostmq_qos_delete_queue(struct vhostmq_qos *qos, unsigned int queue_id)
{
    struct vhostmq_policer *p = trtcm_policer(qos);
    struct trtcm_queue *q;
    int error = ENOENT;

    if (!p) {
        return EOPNOTSUPP;
    }
    ovs_mutex_lock(&p->mutex);
    q = trtcm_queue_find(p, queue_id);
    if (q) {
        hmap_remove(&p->queues, &q->node);
        free(q);
        error = 0;
    }
    ovs_mutex_unlock(&p->mutex);
    return error;
}

int
vhostmq_qos_get_queue_stats(const struct vhostmq_qos *qos,
                            unsigned int queue_id,
                            struct netdev_queue_stats *stats)
{
    struct vhostmq_policer *p = trtcm_policer(qos);
    struct trtcm_queue *q;

    if (!p) {
        return EOPNOTSUPP;
    }
    ovs_mutex_lock(&p->mutex);
    q = trtcm_queue_find(p, queue_id);
    if (q) {
        stats->tx_packets = q->tx_packets;
        stats->tx_bytes = q->tx_bytes;
        stats->tx_errors = q->tx_errors;
        stats->created = q->created;
    }
    ovs_mutex_unlock(&p->mutex);
    return q ? 0 : ENOENT;
}

static int
compare_ids(const void *a_, const void *b_)
{
    unsigned int a = *(const unsigned int *) a_;
    unsigned int b = *(const unsigned int *) b_;

    return a < b ? -1 : a > b;
}

size_t
vhostmq_qos_queue_ids(const struct vhostmq_qos *qos, unsigned int **idsp)
{
    struct vhostmq_policer *p = trtcm_policer(qos);
    const struct trtcm_queue *q;
    size_t n = 0;

    *idsp = NULL;
    if (!p) {
        return 0;
    }
    ovs_mutex_lock(&p->mutex);
    *idsp = xmalloc(MAX(1, hmap_count(&p->queues)) * sizeof **idsp);
    HMAP_FOR_EACH (q, node, &p->queues) {
        (*idsp)[n++] = q->id;
    }
    ovs_mutex_unlock(&p->mutex);
    qsort(*idsp, n, sizeof **idsp, compare_ids);
    return n;
}

/* Whether the trtcm-policer 'p' passes 'packet', of 'cost' bytes. */
static bool
trtcm_pass(struct vhostmq_policer *p, struct dp_packet *packet,
           uint32_t cost, long long int now)
    OVS_REQUIRES(p->mutex)
{
    struct trtcm_queue *q = trtcm_queue_find(p, packet->md.skb_priority);
    enum color color;

    if (!q) {
        q = trtcm_queue_find(p, 0);
        if (!q) {
            return false;
        }
    }
    trtcm_refill(&q->meter, now);
    color = trtcm_mark(&q->meter, cost, GREEN);
    if (color == RED) {
        q->tx_errors++;
    } else {
        q->tx_packets++;
        q->tx_bytes += cost;
    }
    return trtcm_mark(&p->port, cost, color) != RED;
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
    if (p->kind == POLICER_TRTCM) {
        trtcm_refill(&p->port, now);
    }
    if (p->by_bytes) {
        vhost_meter_refill(&p->bytes, now);
    }
    if (p->by_packets) {
        vhost_meter_refill(&p->packets, now);
    }
    DP_PACKET_BATCH_REFILL_FOR_EACH (i, n, packet, batch) {
        uint32_t size = dp_packet_size(packet);
        uint32_t cost = size > ETH_HEADER_LEN ? size - ETH_HEADER_LEN : 0;
        bool pass;

        if (p->kind == POLICER_TRTCM) {
            pass = trtcm_pass(p, packet, cost, now);
        } else {
            pass = ((!p->by_bytes || vhost_meter_has(&p->bytes, cost))
                    && (!p->by_packets || vhost_meter_has(&p->packets, 1)));
            if (pass && p->by_bytes) {
                vhost_meter_take(&p->bytes, cost);
            }
            if (pass && p->by_packets) {
                vhost_meter_take(&p->packets, 1);
            }
        }
        if (pass) {
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
