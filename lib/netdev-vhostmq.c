/*
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at:
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

/* The only file of vhostmq that speaks Open vSwitch's netdev provider API.
 *
 * A port is a multiqueue netdev whose queues are polled by the userspace
 * datapath's PMD threads ('is_pmd').  Until a vhost-user front-end has
 * connected and made the device ready, the port has one rx and one tx queue,
 * reports no carrier, receives nothing and drops (and counts) everything
 * sent to it. */

#include <config.h>

#include "netdev-vhostmq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coverage.h"
#include "dp-packet.h"
#include "dirs.h"
#include "netdev-provider.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/vlog.h"
#include "ovs-thread.h"
#include "packets.h"
#include "smap.h"
#include "util.h"
#include "vhost-user-wire.h"

VLOG_DEFINE_THIS_MODULE(netdev_vhostmq);
COVERAGE_DEFINE(vhostmq_tx_dropped_link_down);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* Limits on options:max-queue-pairs.  The vring index travels in 8 bits of
 * a vhost-user message, so a device cannot have more than 128 pairs. */
#define VHOSTMQ_DEFAULT_QUEUE_PAIRS VHOST_USER_MAX_QUEUE_PAIRS
#define VHOSTMQ_DEFAULT_TX_RETRIES 8
#define VHOSTMQ_MAX_TX_RETRIES 32

struct netdev_vhostmq {
    struct netdev up;

    /* Fixed at construction. */
    bool client;                /* Switch connects (true) or listens. */

    struct ovs_mutex mutex;
    char *socket_path OVS_GUARDED;      /* vhost-user socket. */
    int max_queue_pairs OVS_GUARDED;    /* options:max-queue-pairs. */
    int tx_retries_max OVS_GUARDED;     /* options:tx-retries-max. */
    struct eth_addr hwaddr OVS_GUARDED;
    int mtu OVS_GUARDED;
    enum netdev_flags flags OVS_GUARDED;
    int requested_n_txq OVS_GUARDED;    /* From set_tx_multiq(). */
    struct netdev_stats stats OVS_GUARDED;
};

struct netdev_rxq_vhostmq {
    struct netdev_rxq up;
};

static int netdev_vhostmq_construct(struct netdev *);

static bool
is_vhostmq_class(const struct netdev_class *class)
{
    return class->construct == netdev_vhostmq_construct;
}

static struct netdev_vhostmq *
netdev_vhostmq_cast(const struct netdev *netdev)
{
    ovs_assert(is_vhostmq_class(netdev_get_class(netdev)));
    return CONTAINER_OF(netdev, struct netdev_vhostmq, up);
}

static struct netdev_rxq_vhostmq *
netdev_rxq_vhostmq_cast(const struct netdev_rxq *rxq)
{
    return CONTAINER_OF(rxq, struct netdev_rxq_vhostmq, up);
}

static bool
type_is_client(const char *type)
{
    size_t len = strlen(type);

    return len > 6 && !strcmp(type + len - 6, "client");
}

/* Where a server port listens: in OVS's run directory, named after the
 * port.  (A configurable directory comes with the connection manager.) */
static char *
server_socket_path(const char *name)
{
    return xasprintf("%s/%s", ovs_rundir(), name);
}

static struct netdev *
netdev_vhostmq_alloc(void)
{
    struct netdev_vhostmq *dev = xzalloc(sizeof *dev);

    return &dev->up;
}

static int
netdev_vhostmq_construct(struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    const char *name = netdev_get_name(netdev);

    if (strchr(name, '/')) {
        VLOG_ERR("%s: port name must not contain '/': it names the "
                 "vhost-user socket", name);
        return EINVAL;
    }

    ovs_mutex_init(&dev->mutex);
    dev->client = type_is_client(netdev_get_type(netdev));
    ovs_mutex_lock(&dev->mutex);
    dev->socket_path = dev->client ? NULL : server_socket_path(name);
    dev->max_queue_pairs = VHOSTMQ_DEFAULT_QUEUE_PAIRS;
    dev->tx_retries_max = VHOSTMQ_DEFAULT_TX_RETRIES;
    eth_addr_random(&dev->hwaddr);
    dev->mtu = ETH_PAYLOAD_MAX;
    dev->flags = 0;
    dev->requested_n_txq = 1;
    memset(&dev->stats, 0, sizeof dev->stats);
    ovs_mutex_unlock(&dev->mutex);

    netdev->n_rxq = 1;
    netdev->n_txq = 1;

    VLOG_INFO("%s: vhost-user %s port created", name,
              dev->client ? "client" : "server");
    return 0;
}

static void
netdev_vhostmq_destruct(struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    free(dev->socket_path);
    dev->socket_path = NULL;
    ovs_mutex_unlock(&dev->mutex);
    ovs_mutex_destroy(&dev->mutex);
}

static void
netdev_vhostmq_dealloc(struct netdev *netdev)
{
    free(netdev_vhostmq_cast(netdev));
}

/* Parses the integer option 'key' of 'args' into '*value', which keeps its
 * value if the option is absent.  Returns false, with an explanation in
 * 'errp', if the option is not an integer in [min, max]. */
static bool
parse_int_option(const char *name, const struct smap *args, const char *key,
                 int min, int max, int *value, char **errp)
{
    const char *s = smap_get(args, key);
    char *end;
    long long int v;

    if (!s) {
        return true;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        *errp = xasprintf("%s: options:%s=\"%s\" is not an integer between "
                          "%d and %d", name, key, s, min, max);
        return false;
    }
    *value = v;
    return true;
}

static int
netdev_vhostmq_set_config(struct netdev *netdev, const struct smap *args,
                          char **errp)
{
    static const char *const known[] = {
        "vhost-server-path", "max-queue-pairs", "tx-retries-max",
    };
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    const char *name = netdev_get_name(netdev);
    const char *type = netdev_get_type(netdev);
    int max_queue_pairs = VHOSTMQ_DEFAULT_QUEUE_PAIRS;
    int tx_retries_max = VHOSTMQ_DEFAULT_TX_RETRIES;
    const char *path = smap_get(args, "vhost-server-path");
    struct smap_node *node;

    SMAP_FOR_EACH (node, args) {
        size_t i;

        for (i = 0; i < ARRAY_SIZE(known); i++) {
            if (!strcmp(node->key, known[i])) {
                break;
            }
        }
        if (i == ARRAY_SIZE(known)) {
            *errp = xasprintf("%s: unknown option \"%s\" for a %s port",
                              name, node->key, type);
            return EINVAL;
        }
    }

    if (dev->client) {
        if (!path || !path[0]) {
            *errp = xasprintf("%s: a %s port needs "
                              "options:vhost-server-path, the front-end's "
                              "vhost-user socket", name, type);
            return EINVAL;
        }
    } else if (path) {
        *errp = xasprintf("%s: options:vhost-server-path is for client "
                          "ports; a %s port listens on its own socket",
                          name, type);
        return EINVAL;
    }

    if (!parse_int_option(name, args, "max-queue-pairs", 1,
                          VHOST_USER_MAX_QUEUE_PAIRS, &max_queue_pairs, errp)
        || !parse_int_option(name, args, "tx-retries-max", 0,
                             VHOSTMQ_MAX_TX_RETRIES, &tx_retries_max, errp)) {
        return EINVAL;
    }

    ovs_mutex_lock(&dev->mutex);
    if (dev->client && (!dev->socket_path || strcmp(dev->socket_path, path))) {
        free(dev->socket_path);
        dev->socket_path = xstrdup(path);
    }
    dev->max_queue_pairs = max_queue_pairs;
    dev->tx_retries_max = tx_retries_max;
    ovs_mutex_unlock(&dev->mutex);

    return 0;
}

static int
netdev_vhostmq_get_config(const struct netdev *netdev, struct smap *args)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    if (dev->client) {
        smap_add(args, "vhost-server-path", dev->socket_path);
    }
    if (dev->max_queue_pairs != VHOSTMQ_DEFAULT_QUEUE_PAIRS) {
        smap_add_format(args, "max-queue-pairs", "%d", dev->max_queue_pairs);
    }
    if (dev->tx_retries_max != VHOSTMQ_DEFAULT_TX_RETRIES) {
        smap_add_format(args, "tx-retries-max", "%d", dev->tx_retries_max);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_get_numa_id(const struct netdev *netdev OVS_UNUSED)
{
    return 0;
}

static int
netdev_vhostmq_set_tx_multiq(struct netdev *netdev, unsigned int n_txq)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    if (dev->requested_n_txq != n_txq) {
        dev->requested_n_txq = n_txq;
        netdev_request_reconfigure(netdev);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_reconfigure(struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    netdev->n_txq = dev->requested_n_txq;
    netdev->n_rxq = 1;
    netdev_change_seq_changed(netdev);
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_send(struct netdev *netdev, int qid OVS_UNUSED,
                    struct dp_packet_batch *batch,
                    bool concurrent_txq OVS_UNUSED)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    size_t n = dp_packet_batch_size(batch);

    /* No front-end: the link is down and everything sent is dropped. */
    COVERAGE_ADD(vhostmq_tx_dropped_link_down, n);
    ovs_mutex_lock(&dev->mutex);
    dev->stats.tx_dropped += n;
    ovs_mutex_unlock(&dev->mutex);
    dp_packet_delete_batch(batch, true);
    return 0;
}

static int
netdev_vhostmq_set_etheraddr(struct netdev *netdev, const struct eth_addr mac)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    if (!eth_addr_equals(dev->hwaddr, mac)) {
        dev->hwaddr = mac;
        netdev_change_seq_changed(netdev);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_get_etheraddr(const struct netdev *netdev, struct eth_addr *mac)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    *mac = dev->hwaddr;
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_get_mtu(const struct netdev *netdev, int *mtup)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    *mtup = dev->mtu;
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_set_mtu(struct netdev *netdev, int mtu)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    if (mtu < ETH_PAYLOAD_MIN || mtu > VHOST_USER_MAX_MTU) {
        VLOG_WARN_RL(&rl, "%s: unsupported MTU %d (%d to %d)",
                     netdev_get_name(netdev), mtu, ETH_PAYLOAD_MIN,
                     VHOST_USER_MAX_MTU);
        return EINVAL;
    }
    ovs_mutex_lock(&dev->mutex);
    if (dev->mtu != mtu) {
        dev->mtu = mtu;
        netdev_change_seq_changed(netdev);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_get_carrier(const struct netdev *netdev OVS_UNUSED,
                           bool *carrier)
{
    *carrier = false;
    return 0;
}

static int
netdev_vhostmq_get_stats(const struct netdev *netdev,
                         struct netdev_stats *stats)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    *stats = dev->stats;
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_get_status(const struct netdev *netdev, struct smap *args)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    smap_add(args, "mode", dev->client ? "client" : "server");
    smap_add(args, "status", "disconnected");
    smap_add(args, "socket", dev->socket_path);
    smap_add_format(args, "max_queue_pairs", "%d", dev->max_queue_pairs);
    smap_add_format(args, "n_rxq", "%d", netdev_n_rxq(netdev));
    smap_add_format(args, "n_txq", "%d", netdev_n_txq(netdev));
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_update_flags(struct netdev *netdev, enum netdev_flags off,
                            enum netdev_flags on, enum netdev_flags *old_flags)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    if ((off | on) & ~(NETDEV_UP | NETDEV_PROMISC)) {
        return EINVAL;
    }
    ovs_mutex_lock(&dev->mutex);
    *old_flags = dev->flags;
    dev->flags = (dev->flags & ~off) | on;
    if (dev->flags != *old_flags) {
        netdev_change_seq_changed(netdev);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static struct netdev_rxq *
netdev_vhostmq_rxq_alloc(void)
{
    struct netdev_rxq_vhostmq *rx = xzalloc(sizeof *rx);

    return &rx->up;
}

static int
netdev_vhostmq_rxq_construct(struct netdev_rxq *rxq OVS_UNUSED)
{
    return 0;
}

static void
netdev_vhostmq_rxq_destruct(struct netdev_rxq *rxq OVS_UNUSED)
{
}

static void
netdev_vhostmq_rxq_dealloc(struct netdev_rxq *rxq)
{
    free(netdev_rxq_vhostmq_cast(rxq));
}

static bool
netdev_vhostmq_rxq_enabled(struct netdev_rxq *rxq OVS_UNUSED)
{
    /* No guest has enabled any queue. */
    return false;
}

static int
netdev_vhostmq_rxq_recv(struct netdev_rxq *rxq OVS_UNUSED,
                        struct dp_packet_batch *batch OVS_UNUSED,
                        int *qfill)
{
    if (qfill) {
        *qfill = 0;
    }
    return EAGAIN;
}

static const struct netdev_class netdev_vhostmq_template = {
    .is_pmd = true,
    .alloc = netdev_vhostmq_alloc,
    .construct = netdev_vhostmq_construct,
    .destruct = netdev_vhostmq_destruct,
    .dealloc = netdev_vhostmq_dealloc,
    .get_config = netdev_vhostmq_get_config,
    .set_config = netdev_vhostmq_set_config,
    .get_numa_id = netdev_vhostmq_get_numa_id,
    .set_tx_multiq = netdev_vhostmq_set_tx_multiq,
    .send = netdev_vhostmq_send,
    .set_etheraddr = netdev_vhostmq_set_etheraddr,
    .get_etheraddr = netdev_vhostmq_get_etheraddr,
    .get_mtu = netdev_vhostmq_get_mtu,
    .set_mtu = netdev_vhostmq_set_mtu,
    .get_carrier = netdev_vhostmq_get_carrier,
    .get_stats = netdev_vhostmq_get_stats,
    .get_status = netdev_vhostmq_get_status,
    .update_flags = netdev_vhostmq_update_flags,
    .reconfigure = netdev_vhostmq_reconfigure,
    .rxq_alloc = netdev_vhostmq_rxq_alloc,
    .rxq_construct = netdev_vhostmq_rxq_construct,
    .rxq_destruct = netdev_vhostmq_rxq_destruct,
    .rxq_dealloc = netdev_vhostmq_rxq_dealloc,
    .rxq_enabled = netdev_vhostmq_rxq_enabled,
    .rxq_recv = netdev_vhostmq_rxq_recv,
};

/* The type names registered.  In an Open vSwitch built with DPDK, OVS's own
 * DPDK provider registers the dpdkvhostuser* names when DPDK is initialised;
 * registering them here too would make one of the two registrations fail
 * with a warning, so there vhostmq keeps to its own names. */
static const char *const vhostmq_types[] = {
    "vhostmq", "vhostmqclient",
#ifndef DPDK_NETDEV
    "dpdkvhostuser", "dpdkvhostuserclient",
#endif
};

static struct netdev_class vhostmq_classes[ARRAY_SIZE(vhostmq_types)];

void
netdev_vhostmq_register(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

    if (ovsthread_once_start(&once)) {
        for (size_t i = 0; i < ARRAY_SIZE(vhostmq_types); i++) {
            vhostmq_classes[i] = netdev_vhostmq_template;
            vhostmq_classes[i].type = vhostmq_types[i];
            netdev_register_provider(&vhostmq_classes[i]);
        }
        ovsthread_once_done(&once);
    }
}
