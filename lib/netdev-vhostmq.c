/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* The only file of vhostmq that speaks Open vSwitch's netdev provider API.
 *
 * A port is a multiqueue netdev polled by the userspace datapath's PMD
 * threads ('is_pmd').  Guest queue pair q is OVS rx queue q (the guest's TX
 * vring 2q+1) and OVS tx queue q (the guest's RX vring 2q).  The number of
 * queues follows the vrings the front-end sets up; rxq_enabled() follows
 * SET_VRING_ENABLE, so PMDs skip queues the guest has not enabled without a
 * reconfiguration; OVS tx queue ids are spread over the enabled guest RX
 * queues.
 *
 * Threads: the vhost-user control path (connection manager, device state
 * machine) runs in the connection manager's thread (vhost-endpoint.h),
 * under 'vhost_endpoints_mutex', which OVS's main thread takes too to read
 * or change a port's vhost-user side.  What a front-end changes reaches OVS
 * through the main thread: the control thread asks it to bump the netdev's
 * change_seq (not thread-safe) and requests reconfigurations (which are).
 * PMD threads touch only what the device publishes for them (see
 * vhost-device.h) and the tx queue map below. */

#include <config.h>

#include "netdev-vhostmq.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "coverage.h"
#include "dirs.h"
#include "dp-packet.h"
#include "dpif-netdev.h"
#include "netdev-provider.h"
#include "netdev-vhostmq-numa.h"
#include "netdev-vhostmq-offload.h"
#include "netdev-vhostmq-qos.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "ovs-atomic.h"
#include "ovs-rcu.h"
#include "ovs-thread.h"
#include "packets.h"
#include "seq.h"
#include "smap.h"
#include "timeval.h"
#include "unixctl.h"
#include "userspace-tso.h"
#include "util.h"
#include "vhost-device.h"
#include "vhost-endpoint.h"
#include "vhost-user-wire.h"
#include "vhostmq-settings.h"
#include "virtq.h"

VLOG_DEFINE_THIS_MODULE(netdev_vhostmq);

COVERAGE_DEFINE(vhostmq_tx_dropped_link_down);
COVERAGE_DEFINE(vhostmq_tx_dropped_unfilled);
COVERAGE_DEFINE(vhostmq_tx_dropped_admin_down);
COVERAGE_DEFINE(vhostmq_rx_bad_offload);
COVERAGE_DEFINE(vhostmq_tx_failure_drops);
COVERAGE_DEFINE(vhostmq_tx_mtu_exceeded_drops);
COVERAGE_DEFINE(vhostmq_rx_qos_drops);
COVERAGE_DEFINE(vhostmq_tx_qos_drops);
COVERAGE_DEFINE(vhostmq_control_errors);
COVERAGE_DEFINE(vhostmq_reconfigure_deferred);
COVERAGE_DEFINE(vhostmq_pkt_new);
COVERAGE_DEFINE(vhostmq_pkt_big_new);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);
static struct vlog_rate_limit info_rl = VLOG_RATE_LIMIT_INIT(60, 600);

#define VHOSTMQ_DEFAULT_QUEUE_PAIRS VHOST_USER_MAX_QUEUE_PAIRS
#define VHOSTMQ_DEFAULT_TX_RETRIES 8
#define VHOSTMQ_MAX_TX_RETRIES 32

/* A guest changes its port's queue count (and so costs a PMD
 * reconfiguration) at most this often; changes in between wait. */
#define VHOSTMQ_RECONFIGURE_MSEC 1000

/* How often OVS's main thread drains started but disabled guest TX
 * rings. */
#define VHOSTMQ_DISCARD_MSEC 100

/* options:max-guest-memory, in MiB: at most a 47-bit address space. */
#define VHOSTMQ_MAX_GUEST_MEMORY_MB (128 << 20)

/* mtu_request: netdev-dpdk's range on every port (its frames are at most
 * 9728 bytes with the CRC), so that a configuration moves between the two
 * either way.  (A guest's own MTU, NET_SET_MTU, may go up to 65535.) */
#define VHOSTMQ_MIN_MTU 68
#define VHOSTMQ_MAX_MTU 9710

/* options:reconnect-interval of client ports, in milliseconds. */
#define VHOSTMQ_DEFAULT_RECONNECT_MSEC 1000

/* Software counters, updated by PMD threads on the drop paths only. */
struct vhostmq_sw_stats {
    atomic_uint64_t tx_retries;
    atomic_uint64_t tx_failure_drops;
    atomic_uint64_t tx_unfilled_drops;  /* Before the guest's first RX
                                         * buffers: counted apart from
                                         * 'tx_failure_drops'. */
    atomic_uint64_t tx_mtu_exceeded_drops;
    atomic_uint64_t tx_link_down_drops;
    atomic_uint64_t tx_admin_down_drops;
};

/* One guest RX queue as OVS transmits into it.
 *
 * Every send batch takes the lock of the guest queue it writes, whatever
 * the map says: the map moves OVS tx queue ids from one guest queue to
 * another while PMD threads send (the guest enables and disables queues
 * without a PMD reconfiguration), so a thread that read the map before a
 * change and one that read it after may pick the same ring.  The lock, not
 * the map, keeps them apart.  Uncontended (one thread per guest queue, the
 * usual case) an ovs_mutex lock and unlock cost about 100 instructions
 * (callgrind), two of them atomic read-modify-writes, per batch of up to
 * 32 frames. */
struct vhostmq_txq {
    PADDED_MEMBERS(CACHE_LINE_SIZE,
        struct ovs_mutex lock;  /* Held while a thread writes the ring. */
    );
};

/* One guest TX queue as OVS receives from it.
 *
 * The one PMD that polls the queue holds its lock for each burst, so that
 * the control path, stopping or disabling the ring (a guest stopping for
 * live migration asks for where each ring stopped), waits out the burst in
 * progress (vhostmq_quiesce_vring()) instead of an RCU grace period.
 *
 * Only two threads ever meet on it, and the PMD never waits: it tries the
 * lock, and a poll that finds it taken (by the control path, for as long as
 * a quiesce or a drain of a disabled ring takes) finds nothing to receive.
 * (The control path is the connection manager's thread, or OVS's main
 * thread draining a disabled ring, both under 'vhost_endpoints_mutex': one
 * at a time.)
 * So a flag does: one atomic exchange and one release store per poll, where
 * an ovs_mutex costs about 100 instructions, which a PMD polling idle
 * queues pays on every empty poll. */
struct OVS_LOCKABLE vhostmq_rxq_lock {
    PADDED_MEMBERS(CACHE_LINE_SIZE,
        atomic_flag busy;
    );
};

static inline bool
rxq_trylock(struct vhostmq_rxq_lock *l)
    OVS_TRY_LOCK(true, l) OVS_NO_THREAD_SAFETY_ANALYSIS
{
    return !atomic_flag_test_and_set_explicit(&l->busy, memory_order_acquire);
}

static inline void
rxq_unlock(struct vhostmq_rxq_lock *l)
    OVS_RELEASES(l) OVS_NO_THREAD_SAFETY_ANALYSIS
{
    atomic_flag_clear_explicit(&l->busy, memory_order_release);
}

/* For the control path: waits for the PMD's burst in progress, if any. */
static void
rxq_lock(struct vhostmq_rxq_lock *l)
    OVS_ACQUIRES(l) OVS_NO_THREAD_SAFETY_ANALYSIS
{
    while (!rxq_trylock(l)) {
        sched_yield();
    }
}

struct netdev_vhostmq {
    struct netdev up;
    struct ovs_list list_node;  /* In 'vhostmq_ports'. */

    /* Fixed at construction. */
    bool client;                /* Switch connects (true) or listens. */
    bool offloads;              /* Checksum and TSO offloads offered
                                 * (other_config:userspace-tso-enable). */

    struct ovs_mutex mutex;
    char *socket_path OVS_GUARDED;      /* vhost-user socket. */
    int max_queue_pairs OVS_GUARDED;    /* options:max-queue-pairs. */
    struct eth_addr hwaddr OVS_GUARDED;
    int mtu OVS_GUARDED;
    enum netdev_flags flags OVS_GUARDED;
    int requested_n_queues OVS_GUARDED; /* For the next reconfigure. */
    int reconnect_msec OVS_GUARDED;     /* options:reconnect-interval. */
    char *ignored_options OVS_GUARDED;  /* What set_config ignored, and
                                         * why (status:ignored_options),
                                         * or NULL. */
    struct vhostmq_qos qos;             /* Policing and egress QoS (its
                                         * settings under 'mutex'). */
    int numa_id OVS_GUARDED;            /* NUMA node OVS polls it from. */
    int requested_numa_id OVS_GUARDED;  /* The guest's, for the next
                                         * reconfigure. */

    /* Read by PMD threads. */
    atomic_int tx_retries_max;
    atomic_int max_frame_len;   /* Largest frame sent to the guest. */
    atomic_bool ready;          /* Link up: guest can take traffic. */
    atomic_bool admin_up;       /* NETDEV_UP: off, the port neither sends
                                 * nor receives (as netdev-dpdk). */
    atomic_int tx_map[VHOST_USER_MAX_QUEUE_PAIRS];  /* txq -> guest q. */
    struct vhostmq_txq txqs[VHOST_USER_MAX_QUEUE_PAIRS];
    struct vhostmq_rxq_lock rxq_locks[VHOST_USER_MAX_QUEUE_PAIRS];
    struct vhostmq_sw_stats sw;
    struct vhostmq_offload_stats ol;

    /* The vhost-user side, under 'vhost_endpoints_mutex' (taken before
     * 'mutex'): the connection manager's thread changes it as the
     * front-end asks. */
    struct vhost_device vdev;
    struct vhost_endpoint *endpoint OVS_GUARDED_BY(vhost_endpoints_mutex);
    atomic_llong link_resets;   /* Written under 'vhost_endpoints_mutex',
                                 * read by OVS's main thread without it. */
    long long int next_reconfigure      /* Earliest next queue change. */
        OVS_GUARDED_BY(vhost_endpoints_mutex);
    long long int fewer_since           /* Since when the guest has had */
        OVS_GUARDED_BY(vhost_endpoints_mutex); /* fewer pairs than the
                                         * port has queues (LLONG_MIN: it
                                         * has not). */
    long long int reconfigure_at        /* When to look again... */
        OVS_GUARDED_BY(vhost_endpoints_mutex);
    bool reconfigure_pending            /* ...at a queue change waiting. */
        OVS_GUARDED_BY(vhost_endpoints_mutex);
    bool disabled_tx_live               /* A started guest TX ring is */
        OVS_GUARDED_BY(vhost_endpoints_mutex); /* disabled: drain it. */
    const struct vhost_mem *numa_mem    /* The memory table whose node was */
        OVS_GUARDED_BY(vhost_endpoints_mutex); /* last looked up. */

    /* Set by the control thread for the main thread: bump the netdev's
     * change_seq (see vhostmq_changes). */
    atomic_bool change_pending;
};

struct netdev_rxq_vhostmq {
    struct netdev_rxq up;
};

/* Every vhostmq port, for switch-wide settings changes. */
static struct ovs_mutex vhostmq_ports_mutex = OVS_MUTEX_INITIALIZER;
static struct ovs_list vhostmq_ports OVS_GUARDED_BY(vhostmq_ports_mutex)
    = OVS_LIST_INITIALIZER(&vhostmq_ports);

/* Changed by the control thread when it set a port's 'change_pending':
 * wakes OVS's main thread, which bumps those ports' change_seq.  (A netdev's
 * change_seq is a plain counter that OVS's main thread and PMD threads read
 * unlocked: only the main thread writes it.) */
static struct seq *vhostmq_changes;
static uint64_t vhostmq_changes_seen;   /* Main thread only. */

static int netdev_vhostmq_construct(struct netdev *);

/* Has OVS's main thread bump 'dev''s change_seq: the PMDs re-read
 * rxq_enabled() and the bridge the link state.  From any thread. */
static void
netdev_changed_later(struct netdev_vhostmq *dev)
{
    atomic_store_explicit(&dev->change_pending, true, memory_order_release);
    seq_change(vhostmq_changes);
}

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

/* Where a server port listens: in other_config:vhost-sock-dir (by default
 * OVS's run directory), named after the port. */
static char *
server_socket_path(const char *name)
{
    return xasprintf("%s/%s", vhostmq_sock_dir(), name);
}

static int
frame_len_for_mtu(int mtu)
{
    /* As netdev-dpdk: MTU plus Ethernet header and one VLAN tag. */
    return mtu + ETH_HEADER_LEN + VLAN_HEADER_LEN;
}

/* Device callbacks. */

/* A device's deferred call, typed for ovsrcu_postpone(). */
struct vhostmq_deferred {
    void (*cb)(void *);
    void *arg;
};

static void
vhostmq_run_deferred(struct vhostmq_deferred *d)
{
    d->cb(d->arg);
    free(d);
}

static void
vhostmq_defer(void *aux OVS_UNUSED, void (*cb)(void *), void *arg)
{
    struct vhostmq_deferred *d = xmalloc(sizeof *d);

    d->cb = cb;
    d->arg = arg;
    ovsrcu_postpone(vhostmq_run_deferred, d);
}

/* Spreads OVS tx queue ids over the guest's enabled RX queues.  Only a
 * hint for the send path: any entry may be stale or change under a sender
 * (each is a valid guest queue or -1), which locks the guest queue it
 * picks and checks it is still enabled (see struct vhostmq_txq). */
static void
update_tx_map(struct netdev_vhostmq *dev)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    int enabled[VHOST_USER_MAX_QUEUE_PAIRS];
    int n_enabled = 0;

    unsigned int n_pairs = vhost_device_max_queue_pairs(&dev->vdev);

    for (unsigned int q = 0; q < n_pairs; q++) {
        const struct vhost_vring *vr
            = vhost_device_vring(&dev->vdev, vhost_guest_rx_vring(q));

        if (vhost_vring_enabled(vr) && vhost_vring_live(vr)) {
            enabled[n_enabled++] = q;
        }
    }
    for (int qid = 0; qid < VHOST_USER_MAX_QUEUE_PAIRS; qid++) {
        int q = n_enabled ? enabled[qid % n_enabled] : -1;

        atomic_store_relaxed(&dev->tx_map[qid], q);
    }
}

/* The port's queue count follows the vrings the front-end set up, taken
 * once the device is ready (not vring by vring as they are configured).
 *
 * A PMD reconfiguration pauses every port the PMDs poll, so a port changes
 * its queue count at most once per VHOSTMQ_RECONFIGURE_MSEC, however its
 * guest behaves.  More pairs than the port has queues: the port grows as
 * soon as that allows.  Fewer: it shrinks only if the guest still has
 * fewer VHOSTMQ_RECONFIGURE_MSEC later.  A guest brings its pairs up one
 * after another, and the device is ready with the first, so a guest that
 * reconnects (a VM restart, a front-end crash) passes through fewer pairs
 * than it had: that costs no reconfiguration.  A front-end that went away
 * leaves the queues as they are. */
static void
update_queue_count(struct netdev_vhostmq *dev)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    unsigned int n_qp = vhost_device_n_queue_pairs(&dev->vdev);
    long long int now = time_msec();

    dev->reconfigure_pending = false;
    if (!vhost_device_is_ready(&dev->vdev) || !n_qp) {
        dev->fewer_since = LLONG_MIN;
        return;
    }
    ovs_mutex_lock(&dev->mutex);
    if (n_qp != dev->requested_n_queues) {
        long long int when = dev->next_reconfigure;

        if (n_qp < dev->requested_n_queues) {
            if (dev->fewer_since == LLONG_MIN) {
                dev->fewer_since = now;
            }
            when = MAX(when, dev->fewer_since + VHOSTMQ_RECONFIGURE_MSEC);
        }
        if (now >= when) {
            VLOG_INFO("%s: guest set up %u queue pair(s); reconfiguring",
                      netdev_get_name(&dev->up), n_qp);
            dev->requested_n_queues = n_qp;
            dev->next_reconfigure = now + VHOSTMQ_RECONFIGURE_MSEC;
            dev->fewer_since = LLONG_MIN;
            netdev_request_reconfigure(&dev->up);
        } else {
            COVERAGE_INC(vhostmq_reconfigure_deferred);
            dev->reconfigure_pending = true;
            dev->reconfigure_at = when;
        }
    } else {
        dev->fewer_since = LLONG_MIN;
    }
    ovs_mutex_unlock(&dev->mutex);
}

/* Has OVS poll the port from the NUMA node of the guest's memory (see
 * netdev-vhostmq-numa.h), once its rings run. */
static void
update_numa(struct netdev_vhostmq *dev)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    int node = vhostmq_numa_of_guest(&dev->vdev);

    dev->numa_mem = dev->vdev.mem;
    if (node < 0) {
        return;
    }
    ovs_mutex_lock(&dev->mutex);
    if (node != dev->requested_numa_id) {
        VLOG_INFO("%s: guest memory on NUMA node %d (was %d): polling the "
                  "port from there", netdev_get_name(&dev->up), node,
                  dev->requested_numa_id);
        dev->requested_numa_id = node;
        netdev_request_reconfigure(&dev->up);
    }
    ovs_mutex_unlock(&dev->mutex);
}

static void
vhostmq_changed(void *aux)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct netdev_vhostmq *dev = aux;
    bool ready = vhost_device_is_ready(&dev->vdev);
    bool was_ready;

    atomic_read_relaxed(&dev->ready, &was_ready);
    update_tx_map(dev);
    atomic_store_relaxed(&dev->ready, ready);
    if (ready != was_ready) {
        long long int orig;

        atomic_add_relaxed(&dev->link_resets, 1, &orig);
        VLOG_INFO("%s: link %s", netdev_get_name(&dev->up),
                  !ready ? "down"
                  : dev->vdev.features & (1ull << VIRTIO_F_RING_PACKED)
                  ? "up (packed rings)" : "up (split rings)");
    }
    if (ready && (!was_ready || dev->numa_mem != dev->vdev.mem)) {
        update_numa(dev);
    }

    update_queue_count(dev);

    /* PMDs re-read rxq_enabled() and the bridge the link state. */
    netdev_changed_later(dev);
}

static void
vhostmq_log(void *aux OVS_UNUSED, enum vhost_log_level level,
            const char *msg)
{
    switch (level) {
    case VHOST_LOG_DBG:
        VLOG_DBG("%s", msg);
        break;
    case VHOST_LOG_INFO:
        /* A front-end decides how often these happen. */
        VLOG_INFO_RL(&info_rl, "%s", msg);
        break;
    case VHOST_LOG_WARN:
        COVERAGE_INC(vhostmq_control_errors);
        VLOG_WARN_RL(&rl, "%s", msg);
        break;
    case VHOST_LOG_ERR:
    default:
        COVERAGE_INC(vhostmq_control_errors);
        VLOG_ERR_RL(&rl, "%s", msg);
        break;
    }
}

/* Waits out any thread in vring 'i' of 'aux''s device: the data path reads
 * a ring's live virtq and enabled flag only under the lock of its queue
 * (the send batch's, the receive burst's), and holds it while it uses
 * them. */
static void
vhostmq_quiesce_vring(void *aux, unsigned int i)
{
    struct netdev_vhostmq *dev = aux;
    unsigned int q = vhost_vring_queue_pair(i);

    ovs_assert(q < VHOST_USER_MAX_QUEUE_PAIRS);
    if (vhost_vring_is_guest_tx(i)) {
        rxq_lock(&dev->rxq_locks[q]);
        rxq_unlock(&dev->rxq_locks[q]);
    } else {
        ovs_mutex_lock(&dev->txqs[q].lock);
        ovs_mutex_unlock(&dev->txqs[q].lock);
    }
}

static const struct vhost_device_ops vhostmq_device_ops = {
    /* No .synchronize: the control thread holds 'vhost_endpoints_mutex',
     * which the main thread may be waiting for, so it must never wait for a
     * grace period (with .defer and .quiesce_vring it need not). */
    .defer = vhostmq_defer,
    .changed = vhostmq_changed,
    .log = vhostmq_log,
    .quiesce_vring = vhostmq_quiesce_vring,
};

/* Connection callbacks. */

static enum vhost_endpoint_verdict
vhostmq_message(void *aux, struct vhost_user_msg *msg,
                struct vhost_user_msg *reply, bool *has_reply)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct netdev_vhostmq *dev = aux;

    return (vhost_device_handle(&dev->vdev, msg, reply, has_reply)
            == VHOST_DEVICE_OK ? VHOST_MSG_DONE : VHOST_MSG_DROP);
}

static void
vhostmq_connected(void *aux)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct netdev_vhostmq *dev = aux;

    netdev_changed_later(dev);
}

static void
vhostmq_disconnected(void *aux)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct netdev_vhostmq *dev = aux;

    vhost_device_disconnect(&dev->vdev);
}

static const struct vhost_endpoint_cbs vhostmq_endpoint_cbs = {
    .message = vhostmq_message,
    .connected = vhostmq_connected,
    .disconnected = vhostmq_disconnected,
};

/* Provider. */

/* other_config:vhost-sock-dir, -owner or -mode changed: server ports
 * without a front-end move their socket to the new directory now (one with
 * a front-end keeps its socket until the port is added again); sockets that
 * stay get the new owner and mode. */
static void
move_server_sockets(void)
{
    struct netdev_vhostmq *dev;

    ovs_mutex_lock(&vhostmq_ports_mutex);
    vhost_endpoints_lock();
    LIST_FOR_EACH (dev, list_node, &vhostmq_ports) {
        const char *name = netdev_get_name(&dev->up);
        char *path, *error = NULL;

        if (dev->client || !dev->endpoint) {
            continue;
        }
        if (vhost_endpoint_is_connected(dev->endpoint)) {
            VLOG_INFO("%s: front-end connected; the socket stays at %s",
                      name, vhost_endpoint_path(dev->endpoint));
            vhost_endpoint_apply_perms(dev->endpoint);
            continue;
        }
        path = server_socket_path(name);
        ovs_mutex_lock(&dev->mutex);
        if (!strcmp(path, dev->socket_path)) {
            vhost_endpoint_apply_perms(dev->endpoint);
        } else {
            vhost_endpoint_destroy(dev->endpoint);
            free(dev->socket_path);
            dev->socket_path = path;
            path = NULL;
            dev->endpoint = vhost_endpoint_create(name, dev->socket_path,
                                                  false, 0,
                                                  &vhostmq_endpoint_cbs, dev,
                                                  &error);
            if (!dev->endpoint) {
                VLOG_ERR("%s: %s", name, error);
                free(error);
            }
            netdev_change_seq_changed(&dev->up);
        }
        ovs_mutex_unlock(&dev->mutex);
        free(path);
    }
    vhost_endpoints_unlock();
    ovs_mutex_unlock(&vhostmq_ports_mutex);
}

/* A counter of the core's (struct virtq_stats), which the thread that
 * owns its ring adds to: a relaxed atomic read. */
static uint64_t
read_stat(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Logs, rate-limited, the last thing the guest got wrong on 'vq' (already
 * counted by the virtq layer) and clears it.  Called by whichever thread
 * owns 'vq', after a burst in which 'vq->error' was set. */
static void __attribute__((noinline, cold))
report_ring_error(struct netdev_vhostmq *dev, struct virtq *vq)
{
    static struct vlog_rate_limit ring_rl = VLOG_RATE_LIMIT_INIT(5, 20);
    enum virtq_error error = vq->error;

    vq->error = VIRTQ_ERR_NONE;
    if (!VLOG_DROP_WARN(&ring_rl)) {
        const struct virtq_stats *st = vq->stats;
        unsigned int i = vq->vring;
        if (error >= VIRTQ_ERR_CALL_FULL) {
            VLOG_WARN("%s: guest %s vring %u: %s (used index %"PRIu16"); "
                      "notification dropped%s (this vring: %"PRIu64
                      " failed notifications)",
                      netdev_get_name(&dev->up),
                      vhost_vring_is_guest_tx(i) ? "TX" : "RX", i,
                      virtq_error_name(error), vq->error_head,
                      error == VIRTQ_ERR_CALL_BLOCKED
                      ? ", no more through this fd" : "",
                      read_stat(&st->notify_errors));
            return;
        }
        VLOG_WARN("%s: guest %s vring %u: %s (%s %"PRIu16"); %s "
                  "(this vring: %"PRIu64" bad chains, %"PRIu64" oversize, "
                  "%"PRIu64" ring errors)",
                  netdev_get_name(&dev->up),
                  vhost_vring_is_guest_tx(i) ? "TX" : "RX", i,
                  virtq_error_name(error),
                  error == VIRTQ_ERR_AVAIL_JUMP ? "avail index" : "chain",
                  vq->error_head,
                  error == VIRTQ_ERR_AVAIL_JUMP
                  ? "vring stopped until the front-end restarts it"
                  : i & 1 ? "chain returned, frame dropped"
                  : "chain returned empty, frame dropped",
                  read_stat(&st->bad_chain), read_stat(&st->too_long),
                  read_stat(&st->broken));
    }
}

/* A guest TX ring that is started but disabled is, as the spec asks,
 * consumed and its packets dropped (counted).  PMDs do not poll it (and
 * SET_VRING_ENABLE 0 waited for any PMD still inside it), so the main
 * thread does, every VHOSTMQ_DISCARD_MSEC while such a ring exists, under
 * the ring's lock as a PMD would (a PMD that read the flag just before the
 * disable may still be finishing its burst). */
static void
discard_disabled_tx(struct netdev_vhostmq *dev)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    unsigned int n_vrings = 2 * netdev_n_rxq(&dev->up);
    struct vhost_vring *vr;
    bool found = false;
    for (unsigned int i = 1;
         i < n_vrings && (vr = vhost_device_vring(&dev->vdev, i)); i += 2) {
        unsigned int q = vhost_vring_queue_pair(i);
        struct vhostmq_rxq_lock *lock = &dev->rxq_locks[q];
        struct virtq *vq;

        /* (Under the ring's lock, as every use of a ring.) */
        rxq_lock(lock);
        vq = vhost_vring_live(vr);
        if (vq && !vhost_vring_enabled(vr)) {
            virtq_discard_burst(vq, vq->size);
            if (OVS_UNLIKELY(vq->error)) {
                report_ring_error(dev, vq);
            }
            found = true;
        }
        rxq_unlock(lock);
    }
    dev->disabled_tx_live = found;
}

static void
netdev_vhostmq_run(const struct netdev_class *class OVS_UNUSED)
{
    struct netdev_vhostmq *dev;
    bool faults;

    if (vhostmq_settings_run()) {
        move_server_sockets();
    }
    faults = vhost_mem_take_faults();
    vhostmq_changes_seen = seq_read(vhostmq_changes);

    ovs_mutex_lock(&vhostmq_ports_mutex);
    LIST_FOR_EACH (dev, list_node, &vhostmq_ports) {
        bool changed;

        vhost_endpoints_lock();
        if (faults && vhost_device_memory_faulted(&dev->vdev)
            && dev->endpoint) {
            vhost_endpoint_drop(dev->endpoint, "guest memory shrank");
        }
        if (dev->reconfigure_pending
            && time_msec() >= dev->reconfigure_at) {
            update_queue_count(dev);
        }
        discard_disabled_tx(dev);
        vhost_endpoints_unlock();

        /* (Read after the lock: what the control thread did before it set
         * the flag is done.) */
        changed = atomic_exchange_explicit(&dev->change_pending, false,
                                           memory_order_acquire);
        if (changed) {
            netdev_change_seq_changed(&dev->up);
        }
    }
    ovs_mutex_unlock(&vhostmq_ports_mutex);
}

static void
netdev_vhostmq_wait(const struct netdev_class *class OVS_UNUSED)
{
    struct netdev_vhostmq *dev;

    vhostmq_settings_wait();
    seq_wait(vhostmq_changes, vhostmq_changes_seen);
    if (vhost_mem_fault_fd() >= 0) {
        poll_fd_wait(vhost_mem_fault_fd(), POLLIN);
    }

    ovs_mutex_lock(&vhostmq_ports_mutex);
    vhost_endpoints_lock();
    LIST_FOR_EACH (dev, list_node, &vhostmq_ports) {
        if (dev->reconfigure_pending) {
            poll_timer_wait_until(dev->reconfigure_at);
        }
        if (dev->disabled_tx_live) {
            poll_timer_wait(VHOSTMQ_DISCARD_MSEC);
        }
    }
    vhost_endpoints_unlock();
    ovs_mutex_unlock(&vhostmq_ports_mutex);
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
    eth_addr_random(&dev->hwaddr);
    dev->mtu = ETH_PAYLOAD_MAX;
    dev->flags = NETDEV_UP | NETDEV_PROMISC;
    atomic_init(&dev->admin_up, true);
    dev->requested_n_queues = 1;
    dev->reconnect_msec = VHOSTMQ_DEFAULT_RECONNECT_MSEC;
    vhostmq_qos_init(&dev->qos);
    ovs_mutex_unlock(&dev->mutex);

    atomic_init(&dev->tx_retries_max, VHOSTMQ_DEFAULT_TX_RETRIES);
    atomic_init(&dev->max_frame_len, frame_len_for_mtu(ETH_PAYLOAD_MAX));
    atomic_init(&dev->ready, false);
    atomic_init(&dev->link_resets, 0);
    atomic_init(&dev->change_pending, false);
    for (int i = 0; i < VHOST_USER_MAX_QUEUE_PAIRS; i++) {
        atomic_init(&dev->tx_map[i], -1);
        /* Adaptive: a PMD that finds the queue taken (two OVS tx queues
         * on one guest queue) spins a little before it sleeps. */
        ovs_mutex_init_adaptive(&dev->txqs[i].lock);
        atomic_flag_clear(&dev->rxq_locks[i].busy);
    }

    vhost_endpoints_lock();
    dev->fewer_since = LLONG_MIN;
    vhost_device_init(&dev->vdev, netdev_get_name(netdev),
                      VHOSTMQ_DEFAULT_QUEUE_PAIRS, &vhostmq_device_ops, dev);
    vhost_endpoints_unlock();

    /* As netdev-dpdk's vhost ports: offloads follow the switch-wide
     * setting as it was when the port was made. */
    dev->offloads = userspace_tso_enabled();
    vhost_device_offer_offloads(&dev->vdev, dev->offloads);
    if (dev->offloads) {
        netdev->ol_flags |= (NETDEV_TX_OFFLOAD_TCP_TSO
                             | NETDEV_TX_OFFLOAD_TCP_CKSUM
                             | NETDEV_TX_OFFLOAD_UDP_CKSUM
                             | NETDEV_TX_OFFLOAD_IPV4_CKSUM);
        VLOG_INFO("%s: userspace TSO enabled: offering the guest checksum "
                  "and TCP segmentation offloads", name);
    }

    netdev->n_rxq = 1;
    netdev->n_txq = 1;

    ovs_mutex_lock(&vhostmq_ports_mutex);
    ovs_list_push_back(&vhostmq_ports, &dev->list_node);
    ovs_mutex_unlock(&vhostmq_ports_mutex);
    return 0;
}

static void
netdev_vhostmq_destruct(struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&vhostmq_ports_mutex);
    ovs_list_remove(&dev->list_node);
    ovs_mutex_unlock(&vhostmq_ports_mutex);

    vhost_endpoints_lock();
    vhost_endpoint_destroy(dev->endpoint);
    dev->endpoint = NULL;
    vhost_device_destroy(&dev->vdev);
    vhost_endpoints_unlock();
    for (int i = 0; i < VHOST_USER_MAX_QUEUE_PAIRS; i++) {
        ovs_mutex_destroy(&dev->txqs[i].lock);
    }
    ovs_mutex_lock(&dev->mutex);
    free(dev->socket_path);
    dev->socket_path = NULL;
    free(dev->ignored_options);
    dev->ignored_options = NULL;
    vhostmq_qos_destroy(&dev->qos);
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

/* Options netdev-dpdk's vhost-user ports accept or once accepted, which
 * mean nothing to a vhostmq port: a configuration written for OVS-DPDK
 * brings a vhostmq port up with them ignored (as netdev-dpdk ignores them,
 * or every option of a dpdkvhostuser port), each named in a warning and in
 * status:ignored_options.  Any other unknown key is ignored the same way:
 * OVSDB takes any key, and netdev-dpdk refuses none. */
static const char *const dpdk_only_options[] = {
    "n_rxq", "n_txq", "n_rxq_desc", "n_txq_desc", "dq-zero-copy",
    "dpdk-devargs", "dpdk-lsc-interrupt", "rx-flow-ctrl", "tx-flow-ctrl",
    "flow-ctrl-autoneg", "rx-steering", "tx-steering", "rx-checksum-offload",
    "vhost-postcopy-support",
};

/* Adds 'key' to the list of ignored options 'ds', with 'why'. */
static void
ignore_option(struct ds *ds, const char *key, const char *why)
{
    ds_put_format(ds, "%s%s (%s)", ds->length ? ", " : "", key, why);
}

static int
netdev_vhostmq_set_config(struct netdev *netdev, const struct smap *args,
                          char **errp)
{
    static const char *const known[] = {
        "vhost-server-path", "max-queue-pairs", "tx-retries-max",
        "reconnect-interval", "max-guest-memory",
    };
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    const char *name = netdev_get_name(netdev);
    const char *type = netdev_get_type(netdev);
    int max_queue_pairs = VHOSTMQ_DEFAULT_QUEUE_PAIRS;
    int tx_retries_max = VHOSTMQ_DEFAULT_TX_RETRIES;
    int reconnect_msec = VHOSTMQ_DEFAULT_RECONNECT_MSEC;
    int max_mem_mb = VHOST_DEVICE_DEFAULT_MAX_MEM >> 20;
    const char *path = smap_get(args, "vhost-server-path");
    const struct smap_node **nodes;
    struct ds ignored = DS_EMPTY_INITIALIZER;
    char *tx_retries_error = NULL;
    bool new_endpoint, failed;
    char *error = NULL;

    /* (Sorted, so that the list says the same whatever OVSDB's order.) */
    nodes = smap_sort(args);
    for (size_t n = 0; n < smap_count(args); n++) {
        const char *key = nodes[n]->key;
        size_t i;

        for (i = 0; i < ARRAY_SIZE(known); i++) {
            if (!strcmp(key, known[i])) {
                break;
            }
        }
        if (i < ARRAY_SIZE(known)) {
            continue;
        }
        for (i = 0; i < ARRAY_SIZE(dpdk_only_options); i++) {
            if (!strcmp(key, dpdk_only_options[i])) {
                break;
            }
        }
        ignore_option(&ignored, key, i < ARRAY_SIZE(dpdk_only_options)
                      ? "an OVS-DPDK option that does not apply"
                      : "unknown option");
    }
    free(nodes);

    if (!dev->client) {
        /* A server port names its own socket, and does not reconnect:
         * netdev-dpdk's dpdkvhostuser ports ignore every option. */
        if (path) {
            ignore_option(&ignored, "vhost-server-path", "for client ports");
            path = NULL;
        }
        if (smap_get(args, "reconnect-interval")) {
            ignore_option(&ignored, "reconnect-interval", "for client ports");
        }
    }
    if (dev->client) {
        if (!path || !path[0]) {
            *errp = xasprintf("%s: a %s port needs "
                              "options:vhost-server-path, the front-end's "
                              "vhost-user socket", name, type);
            return EINVAL;
        }
    }

    /* tx-retries-max out of range falls back to the default, as with
     * netdev-dpdk. */
    if (!parse_int_option(name, args, "tx-retries-max", 0,
                          VHOSTMQ_MAX_TX_RETRIES, &tx_retries_max,
                          &tx_retries_error)) {
        ignore_option(&ignored, "tx-retries-max", "not an integer between 0 "
                      "and " OVS_STRINGIZE(VHOSTMQ_MAX_TX_RETRIES)
                      "; the default, " OVS_STRINGIZE(
                          VHOSTMQ_DEFAULT_TX_RETRIES) ", applies");
        free(tx_retries_error);
        tx_retries_max = VHOSTMQ_DEFAULT_TX_RETRIES;
    }
    if (!parse_int_option(name, args, "max-queue-pairs", 1,
                          VHOST_USER_MAX_QUEUE_PAIRS, &max_queue_pairs, errp)
        || (dev->client
            && !parse_int_option(name, args, "reconnect-interval", 10,
                                 3600000, &reconnect_msec, errp))
        || !parse_int_option(name, args, "max-guest-memory", 1,
                             VHOSTMQ_MAX_GUEST_MEMORY_MB, &max_mem_mb,
                             errp)) {
        ds_destroy(&ignored);
        return EINVAL;
    }

    vhost_endpoints_lock();
    ovs_mutex_lock(&dev->mutex);
    if (!nullable_string_is_equal(dev->ignored_options,
                                  ignored.length ? ds_cstr(&ignored) : NULL)) {
        /* Once per change, not on every reconfiguration. */
        free(dev->ignored_options);
        dev->ignored_options = (ignored.length ? ds_steal_cstr(&ignored)
                                : NULL);
        if (dev->ignored_options) {
            VLOG_WARN("%s: ignoring options of this %s port: %s", name, type,
                      dev->ignored_options);
        }
    }
    ds_destroy(&ignored);
    new_endpoint = !dev->endpoint;
    if (dev->client && (!dev->socket_path || strcmp(dev->socket_path, path))) {
        free(dev->socket_path);
        dev->socket_path = xstrdup(path);
        new_endpoint = true;
    }
    if (dev->max_queue_pairs != max_queue_pairs) {
        dev->max_queue_pairs = max_queue_pairs;
        /* The limit is part of what the front-end negotiated: make it
         * connect again. */
        if (dev->endpoint) {
            vhost_endpoint_drop(dev->endpoint, "max-queue-pairs changed");
        }
    }
    atomic_store_relaxed(&dev->tx_retries_max, tx_retries_max);
    vhost_device_set_limits(&dev->vdev, max_queue_pairs,
                            (uint64_t) max_mem_mb << 20);
    if (vhost_device_mapped_bytes(&dev->vdev)
        > vhost_device_max_mem_bytes(&dev->vdev)
        && dev->endpoint) {
        vhost_endpoint_drop(dev->endpoint, "max-guest-memory lowered below "
                            "the guest's memory");
    }

    dev->reconnect_msec = reconnect_msec;
    if (new_endpoint) {
        vhost_endpoint_destroy(dev->endpoint);
        dev->endpoint = vhost_endpoint_create(name, dev->socket_path,
                                              dev->client, reconnect_msec,
                                              &vhostmq_endpoint_cbs, dev,
                                              &error);
    }
    if (dev->endpoint && dev->client) {
        vhost_endpoint_set_reconnect_interval(dev->endpoint, reconnect_msec);
    }
    failed = new_endpoint && !dev->endpoint;
    ovs_mutex_unlock(&dev->mutex);
    vhost_endpoints_unlock();

    if (failed) {
        *errp = xasprintf("%s: %s", name, error);
        free(error);
        return EINVAL;
    }
    return 0;
}

static int
netdev_vhostmq_get_config(const struct netdev *netdev, struct smap *args)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int tx_retries_max;

    ovs_mutex_lock(&dev->mutex);
    /* What netdev-dpdk reports for a vhost port (dpctl/show prints it). */
    smap_add_format(args, "requested_rx_queues", "%d",
                    dev->requested_n_queues);
    smap_add_format(args, "configured_rx_queues", "%d", netdev_n_rxq(netdev));
    smap_add_format(args, "requested_tx_queues", "%d",
                    dev->requested_n_queues);
    smap_add_format(args, "configured_tx_queues", "%d", netdev_n_txq(netdev));
    smap_add_format(args, "mtu", "%d", dev->mtu);
    if (dev->client) {
        smap_add(args, "vhost-server-path", dev->socket_path);
    }
    if (dev->max_queue_pairs != VHOSTMQ_DEFAULT_QUEUE_PAIRS) {
        smap_add_format(args, "max-queue-pairs", "%d", dev->max_queue_pairs);
    }
    atomic_read_relaxed(&dev->tx_retries_max, &tx_retries_max);
    if (tx_retries_max != VHOSTMQ_DEFAULT_TX_RETRIES) {
        smap_add_format(args, "tx-retries-max", "%d", tx_retries_max);
    }
    uint64_t max_mem = vhost_device_max_mem_bytes(&dev->vdev);
    if (max_mem != VHOST_DEVICE_DEFAULT_MAX_MEM) {
        smap_add_format(args, "max-guest-memory", "%"PRIu64, max_mem >> 20);
    }
    if (dev->client && dev->reconnect_msec != VHOSTMQ_DEFAULT_RECONNECT_MSEC) {
        smap_add_format(args, "reconnect-interval", "%d",
                        dev->reconnect_msec);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_get_numa_id(const struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int numa_id;

    ovs_mutex_lock(&dev->mutex);
    numa_id = dev->numa_id;
    ovs_mutex_unlock(&dev->mutex);
    return numa_id;
}

static int
netdev_vhostmq_reconfigure(struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    if (netdev->n_rxq != dev->requested_n_queues) {
        VLOG_INFO("%s: %d queue pair(s)", netdev_get_name(netdev),
                  dev->requested_n_queues);
    }
    netdev->n_rxq = dev->requested_n_queues;
    netdev->n_txq = dev->requested_n_queues;
    dev->numa_id = dev->requested_numa_id;
    ovs_mutex_unlock(&dev->mutex);
    vhost_endpoints_lock();
    update_tx_map(dev);
    vhost_endpoints_unlock();
    netdev_change_seq_changed(netdev);
    return 0;
}

/* Locks guest RX queue 'q' and returns its virtq if it is running and
 * enabled; otherwise returns null, unlocked.  Which lock depends on 'q',
 * which clang's analysis cannot name: the rule (a guest RX ring is written
 * only under its queue's lock) is kept by these two and their callers. */
static struct virtq *
lock_guest_rxq__(struct netdev_vhostmq *dev, int q)
    OVS_NO_THREAD_SAFETY_ANALYSIS
{
    struct vhost_vring *vr = vhost_device_vring(&dev->vdev,
                                                vhost_guest_rx_vring(q));
    struct virtq *vq;

    ovs_mutex_lock(&dev->txqs[q].lock);
    vq = vr ? vhost_vring_live(vr) : NULL;
    if (OVS_LIKELY(vq && vhost_vring_enabled(vr))) {
        return vq;
    }
    ovs_mutex_unlock(&dev->txqs[q].lock);
    return NULL;
}

static void
unlock_guest_rxq(struct vhostmq_txq *txq)
    OVS_NO_THREAD_SAFETY_ANALYSIS
{
    ovs_mutex_unlock(&txq->lock);
}

/* The slow path of lock_guest_rxq(): guest RX queue 'q', which the map
 * gave, is disabled or stopped ('vq' null), or running but never filled by
 * the guest ('vq', locked).  Another enabled queue that the guest has
 * filled takes the batch; failing that, 'q' itself if it runs, or the first
 * enabled queue (whose drops then count as "for want of guest buffers":
 * the guest has none anywhere).  Returns null if no queue is enabled. */
static struct virtq *
lock_other_guest_rxq(struct netdev_vhostmq *dev, int q, struct virtq *vq,
                     struct vhostmq_txq **txqp)
{
    int fallback = vq ? q : -1;

    if (vq) {
        unlock_guest_rxq(&dev->txqs[q]);
    }
    /* Not the device's current limit, which the main thread may change
     * meanwhile: lock_guest_rxq__() checks that the queue runs and is
     * enabled, and one beyond a lowered limit only does until the
     * front-end, which the change disconnects, is gone. */
    int n_pairs = vhost_device_queue_pairs_allocated(&dev->vdev);

    for (int p = 0; p < n_pairs; p++) {
        struct virtq *other = p != q ? lock_guest_rxq__(dev, p) : NULL;

        if (other) {
            if (!virtq_never_filled(other)) {
                *txqp = &dev->txqs[p];
                return other;
            }
            unlock_guest_rxq(&dev->txqs[p]);
            if (fallback < 0) {
                fallback = p;
            }
        }
    }
    vq = fallback >= 0 ? lock_guest_rxq__(dev, fallback) : NULL;
    if (vq) {
        *txqp = &dev->txqs[fallback];
    }
    return vq;
}

/* Locks the guest RX queue that OVS tx queue 'qid' maps to and returns its
 * virtq, or null if the guest has no queue to take traffic.  A queue the
 * guest just disabled, before the map caught up, is replaced by another
 * one: nothing goes into a disabled queue.  So is a queue the guest has
 * enabled but not yet filled, while another one has buffers: a packet
 * there would be dropped for want of buffers the guest is about to give.
 *
 * The lock is taken even when dpif-netdev promises that no other thread
 * uses 'qid' (!concurrent_txq): while the map changes, another 'qid' may
 * lead another thread to the same guest queue. */
static struct virtq *
lock_guest_rxq(struct netdev_vhostmq *dev, int qid,
               struct vhostmq_txq **txqp)
{
    struct virtq *vq;
    int q;

    atomic_read_relaxed(&dev->tx_map[qid % VHOST_USER_MAX_QUEUE_PAIRS], &q);
    if (OVS_UNLIKELY(q < 0)) {
        return NULL;
    }
    vq = lock_guest_rxq__(dev, q);
    if (OVS_UNLIKELY(!vq || virtq_never_filled(vq))) {
        return lock_other_guest_rxq(dev, q, vq, txqp);
    }
    *txqp = &dev->txqs[q];
    return vq;
}

/* Packets from guests.
 *
 * Each packet that fits VHOSTMQ_PKT_ROOM is one heap block: the struct
 * dp_packet, then its buffer (DP_NETDEV_HEADROOM and the frame), then a
 * tag.  The buffer is a "stub" of the struct, so that dp_packet_delete()
 * anywhere in OVS frees the whole block with one free(), and OVS may still
 * grow the packet (it then moves the data to a buffer of its own).
 *
 * The send path, which owns the packets it sends, keeps such blocks in a
 * cache of its thread instead of freeing them, and the receive path takes
 * from it: a packet going from one guest to another through a PMD thread
 * costs no malloc() or free() at all.  Bigger frames (jumbo frames, TCP
 * frames of up to 64 KiB with TSO) get blocks of the biggest size, cached
 * apart and fewer: freeing and allocating 64 KiB blocks anew makes the
 * heap give its pages back and fault them in again, which measured ten
 * times the copy's cost (and each give-back flushes the TLBs of every core
 * the switch's threads ran on, the guests' included, by interrupt).
 *
 * A dp_packet records its buffer's size in 16 bits: a buffer is at most
 * UINT16_MAX bytes, or OVS computes its tailroom from a truncated size (a
 * later push of headers then copies the wrong bytes into a buffer of the
 * wrong size).  The few frames too long for the usual headroom get less. */
#define VHOSTMQ_PKT_ROOM 2048   /* Frame bytes of a cached block. */
#define VHOSTMQ_PKT_BUF (DP_NETDEV_HEADROOM + VHOSTMQ_PKT_ROOM)
#define VHOSTMQ_PKT_TAG UINT64_C(0x7668716d706b7421)
#define VHOSTMQ_PKT_CACHE 512   /* Blocks per thread at most. */
#define VHOSTMQ_PKT_BIG_BUF UINT16_MAX
#define VHOSTMQ_PKT_BIG_CACHE 32        /* Big blocks per thread at most
                                         * (2 MiB). */
BUILD_ASSERT_DECL(VIRTQ_MAX_PACKET <= VHOSTMQ_PKT_BIG_BUF);
BUILD_ASSERT_DECL(VHOSTMQ_PKT_BUF < VHOSTMQ_PKT_BIG_BUF);

struct vhostmq_pkt_cache {
    int n;
    struct dp_packet *pkts[VHOSTMQ_PKT_CACHE];
    int n_big;
    struct dp_packet *big[VHOSTMQ_PKT_BIG_CACHE];
    uint8_t *scratch;           /* VHOSTMQ_OFFLOAD_SCRATCH bytes for the
                                 * segments of software TSO, or null until
                                 * this thread needs it. */
};

static pthread_key_t pkt_cache_key;
static __thread struct vhostmq_pkt_cache *pkt_cache_this_thread;

/* Runs in the exiting thread whose cache it is. */
static void
pkt_cache_destroy(void *cache_)
{
    struct vhostmq_pkt_cache *cache = cache_;

    pkt_cache_this_thread = NULL;
    for (int i = 0; i < cache->n; i++) {
        free(cache->pkts[i]);
    }
    for (int i = 0; i < cache->n_big; i++) {
        free(cache->big[i]);
    }
    free(cache->scratch);
    free(cache);
}

/* This thread's cache is in 'pkt_cache_this_thread' (a thread-local read
 * per burst, not a call) and under 'pkt_cache_key' (whose destructor frees
 * it when the thread exits). */
static struct vhostmq_pkt_cache * __attribute__((noinline))
pkt_cache_create(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;
    struct vhostmq_pkt_cache *cache;

    if (ovsthread_once_start(&once)) {
        xpthread_key_create(&pkt_cache_key, pkt_cache_destroy);
        ovsthread_once_done(&once);
    }
    cache = xmalloc(sizeof *cache);
    cache->n = 0;
    cache->n_big = 0;
    cache->scratch = NULL;
    xpthread_setspecific(pkt_cache_key, cache);
    pkt_cache_this_thread = cache;
    return cache;
}

static inline struct vhostmq_pkt_cache *
pkt_cache_get(void)
{
    struct vhostmq_pkt_cache *cache = pkt_cache_this_thread;

    return OVS_LIKELY(cache) ? cache : pkt_cache_create();
}

/* The tag after the buffer of a cached block of 'buf' bytes (not
 * necessarily 8-byte aligned: read and written with memcpy()). */
static void *
pkt_tag(struct dp_packet *packet, size_t buf)
{
    return (char *) (packet + 1) + buf;
}

static bool
pkt_has_tag(struct dp_packet *packet, size_t buf)
{
    uint64_t tag;

    memcpy(&tag, pkt_tag(packet, buf), sizeof tag);
    return tag == VHOSTMQ_PKT_TAG;
}

/* A new block of 'buf' bytes of buffer, tagged. */
static struct dp_packet *
pkt_new_tagged(size_t buf)
{
    uint64_t tag = VHOSTMQ_PKT_TAG;
    struct dp_packet *packet = xmalloc(sizeof *packet + buf + sizeof tag);

    memcpy(pkt_tag(packet, buf), &tag, sizeof tag);
    return packet;
}

#ifndef DPDK_NETDEV
/* A block this thread sent before, ready to take a frame: its source, base
 * and size are as pkt_free() checked them, and the rest is reset here as
 * dp_packet_use_stub() would, but for the packet metadata, which the
 * datapath initializes for every packet a port receives (and which is most
 * of that function's work). */
static inline struct dp_packet *
pkt_reuse(struct dp_packet *packet)
{
    __packet_set_data(packet, DP_NETDEV_HEADROOM);  /* (Base: packet + 1.) */
    dp_packet_set_size(packet, 0);
    dp_packet_reset_offsets(packet);
    dp_packet_reset_cutlen(packet);
    vhostmq_ol_reset(packet);
    packet->packet_type = htonl(PT_ETH);
    return packet;
}
#endif

/* Makes block 'packet' a packet whose buffer of 'buf' bytes follows it. */
static struct dp_packet *
pkt_init(struct dp_packet *packet, size_t buf)
{
    dp_packet_use_stub(packet, packet + 1, buf);
    dp_packet_set_data(packet, (char *) (packet + 1) + DP_NETDEV_HEADROOM);
    return packet;
}

/* A packet from 'pool' ('*n' blocks of 'buf' bytes of buffer), or a new
 * block of that size if it is empty. */
static inline struct dp_packet *
pkt_from_pool(struct dp_packet **pool, int *n, size_t buf)
{
    struct dp_packet *packet;

    if (OVS_LIKELY(*n)) {
        packet = pool[--*n];
#ifndef DPDK_NETDEV
        return pkt_reuse(packet);
#endif
    } else {
        /* (Counted: a thread that keeps allocating does not get its blocks
         * back.) */
        if (buf == VHOSTMQ_PKT_BIG_BUF) {
            COVERAGE_INC(vhostmq_pkt_big_new);
        } else {
            COVERAGE_INC(vhostmq_pkt_new);
        }
        packet = pkt_new_tagged(buf);
    }
    return pkt_init(packet, buf);
}

/* pkt_alloc() but for its fast path. */
static struct dp_packet * __attribute__((noinline))
pkt_alloc__(struct vhostmq_pkt_cache *cache, uint32_t len)
{
    struct dp_packet *packet;

    if (OVS_LIKELY(len <= VHOSTMQ_PKT_ROOM)) {
        return pkt_from_pool(cache->pkts, &cache->n, VHOSTMQ_PKT_BUF);
    }
    packet = pkt_from_pool(cache->big, &cache->n_big, VHOSTMQ_PKT_BIG_BUF);
    if (OVS_UNLIKELY(len > VHOSTMQ_PKT_BIG_BUF - DP_NETDEV_HEADROOM)) {
        dp_packet_set_data(packet, (char *) (packet + 1)
                                   + VHOSTMQ_PKT_BIG_BUF - len);
    }
    return packet;
}

/* A packet with room for 'len' bytes (at most VIRTQ_MAX_PACKET) after the
 * usual headroom, or after less where that would not fit a buffer; its
 * data start in '*data' (known without reading the packet back). */
static inline struct dp_packet *
pkt_alloc(struct vhostmq_pkt_cache *cache, uint32_t len, char **data)
{
    struct dp_packet *packet;

#ifndef DPDK_NETDEV
    if (OVS_LIKELY(len <= VHOSTMQ_PKT_ROOM && cache->n)) {
        packet = pkt_reuse(cache->pkts[--cache->n]);
        *data = (char *) (packet + 1) + DP_NETDEV_HEADROOM;
        return packet;
    }
#endif
    packet = pkt_alloc__(cache, len);
    *data = dp_packet_data(packet);
    return packet;
}

/* pkt_free() but for its fast path. */
static void __attribute__((noinline))
pkt_free__(struct vhostmq_pkt_cache *cache, struct dp_packet *packet)
{
    if (packet->source == DPBUF_STUB
        && dp_packet_base(packet) == (void *) (packet + 1)) {
        size_t buf = dp_packet_get_allocated(packet);
        bool small = buf == VHOSTMQ_PKT_BUF;
        int *n = small ? &cache->n : &cache->n_big;

        if ((small || buf == VHOSTMQ_PKT_BIG_BUF)
            && *n < (small ? VHOSTMQ_PKT_CACHE : VHOSTMQ_PKT_BIG_CACHE)
            && pkt_has_tag(packet, buf)) {
            (small ? cache->pkts : cache->big)[(*n)++] = packet;
            return;
        }
    }
    dp_packet_delete(packet);
}

/* Whether 'packet' is one of our small blocks that OVS did not
 * reallocate. */
static inline bool
pkt_is_small_block(struct dp_packet *packet)
{
    return (packet->source == DPBUF_STUB
            && dp_packet_base(packet) == (void *) (packet + 1)
            && dp_packet_get_allocated(packet) == VHOSTMQ_PKT_BUF
            && pkt_has_tag(packet, VHOSTMQ_PKT_BUF));
}

/* Frees 'packet', or keeps it in 'cache' if it is one of ours that OVS
 * did not reallocate. */
static inline void
pkt_free(struct vhostmq_pkt_cache *cache, struct dp_packet *packet)
{
    if (OVS_LIKELY(cache->n < VHOSTMQ_PKT_CACHE
                   && pkt_is_small_block(packet))) {
        cache->pkts[cache->n++] = packet;
    } else {
        pkt_free__(cache, packet);
    }
}

/* pkt_free() of each packet of 'batch', with the cache's count in a local
 * (each store into the cache would otherwise read it again). */
static inline void
pkt_free_batch(struct vhostmq_pkt_cache *cache, struct dp_packet_batch *batch)
{
    struct dp_packet *packet;
    int n = cache->n;

    DP_PACKET_BATCH_FOR_EACH (i, packet, batch) {
        if (OVS_LIKELY(n < VHOSTMQ_PKT_CACHE && pkt_is_small_block(packet))) {
            cache->pkts[n++] = packet;
        } else {
            cache->n = n;
            pkt_free__(cache, packet);
            n = cache->n;
        }
    }
    cache->n = n;
}

/* pkt_free() for a policer's drops. */
static void
pkt_drop(void *cache, struct dp_packet *packet)
{
    pkt_free(cache, packet);
}

/* Puts the frame of 'len' bytes at 'data' into 'vq', with the virtio-net
 * header 'hdr' if it is nonnull, retrying (after publishing what was sent
 * so far) while the guest has no buffers, up to 'retries_max' times per
 * batch ('*retries' so far).  Returns 0 or an errno value (the frame is
 * then dropped). */
static int
send_one(struct virtq *vq, const struct virtio_net_hdr *hdr,
         const void *data, uint32_t len, size_t *retries, int retries_max)
{
    for (;;) {
        int error = (hdr ? virtq_enqueue_hdr(vq, hdr, data, len)
                     : virtq_enqueue(vq, data, len));

        if (error != EAGAIN || *retries >= retries_max) {
            return error;
        }
        virtq_flush(vq);
        (*retries)++;
    }
}

/* send_one() for vhostmq_offload_to_guest(). */
struct send_ctx {
    struct virtq *vq;
    size_t *retries;
    int retries_max;
    bool bad_chain;             /* The guest's ring gave a bad chain. */
};

static int
enqueue_retrying(void *ctx_, const struct virtio_net_hdr *hdr,
                 const void *data, uint32_t len)
{
    struct send_ctx *ctx = ctx_;
    int error = send_one(ctx->vq, hdr, data, len, ctx->retries,
                         ctx->retries_max);

    ctx->bad_chain |= error == EINVAL;
    return error;
}

/* Sends 'packet', which has offload flags, to 'vq'.  Returns 0 or the
 * errno value of its drop; EINVAL: flags that do not fit the packet or,
 * with '*bad_chain' set, a bad chain in the guest's ring (counted
 * there). */
static int __attribute__((noinline))
send_offloaded(struct netdev_vhostmq *dev, struct virtq *vq,
               struct vhostmq_pkt_cache *cache, struct dp_packet *packet,
               int max_frame_len, size_t *retries, int retries_max,
               struct vhostmq_offload_acc *acc, bool *bad_chain)
{
    struct send_ctx ctx = { vq, retries, retries_max, false };
    int error;

    if (OVS_UNLIKELY(!cache->scratch)) {
        cache->scratch = xmalloc(VHOSTMQ_OFFLOAD_SCRATCH);
    }
    error = vhostmq_offload_to_guest(packet, vq->features, max_frame_len,
                                     cache->scratch, enqueue_retrying, &ctx,
                                     acc);
    *bad_chain |= ctx.bad_chain;
    if (OVS_UNLIKELY(error == EINVAL && !ctx.bad_chain)) {
        VLOG_WARN_RL(&rl, "%s: packet dropped: offload flags 0x%"PRIx64
                     " that do not fit it", netdev_get_name(&dev->up),
                     vhostmq_ol_flags(packet));
    }
    return error;
}

static int
netdev_vhostmq_send(struct netdev *netdev, int qid,
                    struct dp_packet_batch *batch,
                    bool concurrent_txq OVS_UNUSED)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    size_t n = dp_packet_batch_size(batch);
    size_t mtu_drops = 0, failed = 0, unfilled = 0, retries = 0;
    struct vhostmq_pkt_cache *cache = pkt_cache_get();
    struct vhostmq_offload_acc acc = { .tx_bad = 0 };
    struct vhostmq_txq *txq = NULL;
    int max_frame_len, retries_max;
    struct dp_packet *packet;
    bool ready, admin_up;
    struct virtq *vq;

    atomic_read_relaxed(&dev->ready, &ready);
    atomic_read_relaxed(&dev->admin_up, &admin_up);
    vq = (OVS_LIKELY(ready && admin_up)
          ? lock_guest_rxq(dev, qid, &txq)
          : NULL);
    if (OVS_UNLIKELY(!vq)) {
        if (!admin_up) {
            COVERAGE_ADD(vhostmq_tx_dropped_admin_down, n);
            vhostmq_counter_add(&dev->sw.tx_admin_down_drops, n);
        } else {
            COVERAGE_ADD(vhostmq_tx_dropped_link_down, n);
            vhostmq_counter_add(&dev->sw.tx_link_down_drops, n);
        }
        dp_packet_delete_batch(batch, true);
        return 0;
    }

    struct vhostmq_policer *policer
        = ovsrcu_get(struct vhostmq_policer *, &dev->qos.egress);
    if (OVS_UNLIKELY(policer)) {
        uint64_t bytes = 0;
        size_t dropped = vhostmq_policer_run(policer, batch, pkt_drop, cache,
                                             &bytes);

        vhostmq_counter_add(&dev->qos.tx_drops, dropped);
        COVERAGE_ADD(vhostmq_tx_qos_drops, dropped);
        n = dp_packet_batch_size(batch);
    }

    atomic_read_relaxed(&dev->max_frame_len, &max_frame_len);
    atomic_read_relaxed(&dev->tx_retries_max, &retries_max);
    virtq_prefetch_rx(vq, n);

    /* Runs of plain frames go to the ring in one call each (usually the
     * whole batch); what that call does not take, and frames with offloads
     * or too long, one at a time below. */
    struct virtq_frame frames[NETDEV_MAX_BURST];
    bool bad_chain = false;
    size_t next = 0;

    while (next < n) {
        size_t k = 0;

        for (; next < n; next++) {
            packet = batch->packets[next];
            if (OVS_UNLIKELY(vhostmq_offload_pending(packet)
                             || dp_packet_size(packet) > max_frame_len)) {
                break;
            }
            frames[k].data = dp_packet_data(packet);
            frames[k].len = dp_packet_size(packet);
            k++;
        }
        size_t done = (k && !bad_chain
                       ? virtq_enqueue_burst(vq, frames, k) : 0);
        for (size_t j = done; j < k; j++) {
            int error = (bad_chain ? EINVAL
                         : send_one(vq, NULL, frames[j].data, frames[j].len,
                                    &retries, retries_max));

            if (error) {
                failed++;
                /* A chain the guest got back as bad (counted there): the
                 * rest of the batch is dropped, not given each its own
                 * bad chain to walk.  Each walk is bounded, but a guest
                 * that posts nothing else would otherwise cost the PMD a
                 * walk per frame sent to it, taken from every other port
                 * the PMD serves. */
                bad_chain |= error == EINVAL;
            }
        }
        if (next == n) {
            break;
        }

        /* A frame with offloads, or too long. */
        packet = batch->packets[next++];
        if (!vhostmq_offload_pending(packet)) {
            mtu_drops++;
        } else if (bad_chain) {
            failed++;
        } else {
            int error = send_offloaded(dev, vq, cache, packet,
                                       max_frame_len, &retries, retries_max,
                                       &acc, &bad_chain);
            if (error == EMSGSIZE) {
                mtu_drops++;
            } else if (error && (error != EINVAL || bad_chain)) {
                failed++;
            }
        }
    }
    virtq_flush(vq);
    if (OVS_UNLIKELY(failed) && virtq_never_filled(vq)) {
        /* The guest has enabled the queue but given it no buffer yet, as
         * Linux does between probing the device and bringing the interface
         * up: not a guest that cannot keep up. */
        unfilled = failed;
        failed = 0;
    }
    /* The next batch's buffers, while the switch does other work. */
    virtq_prefetch_rx(vq, NETDEV_MAX_BURST);
    if (OVS_UNLIKELY(vq->error)) {
        report_ring_error(dev, vq);
    }
    unlock_guest_rxq(txq);

    if (OVS_UNLIKELY(acc.tx_csum | acc.tx_sw_csum | acc.tx_sw_tso
                     | acc.tx_bad)) {
        vhostmq_offload_acc_flush(&acc, &dev->ol);
    }
    if (OVS_UNLIKELY(mtu_drops || failed || unfilled || retries)) {
        vhostmq_counter_add(&dev->sw.tx_mtu_exceeded_drops, mtu_drops);
        vhostmq_counter_add(&dev->sw.tx_failure_drops, failed);
        vhostmq_counter_add(&dev->sw.tx_unfilled_drops, unfilled);
        vhostmq_counter_add(&dev->sw.tx_retries, retries);
        COVERAGE_ADD(vhostmq_tx_mtu_exceeded_drops, mtu_drops);
        COVERAGE_ADD(vhostmq_tx_failure_drops, failed);
        COVERAGE_ADD(vhostmq_tx_dropped_unfilled, unfilled);
    }

    pkt_free_batch(cache, batch);
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

    if (mtu < VHOSTMQ_MIN_MTU || mtu > VHOSTMQ_MAX_MTU) {
        VLOG_WARN_RL(&rl, "%s: unsupported MTU %d (%d to %d)",
                     netdev_get_name(netdev), mtu, VHOSTMQ_MIN_MTU,
                     VHOSTMQ_MAX_MTU);
        return EINVAL;
    }
    ovs_mutex_lock(&dev->mutex);
    if (dev->mtu != mtu) {
        dev->mtu = mtu;
        atomic_store_relaxed(&dev->max_frame_len, frame_len_for_mtu(mtu));
        netdev_change_seq_changed(netdev);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_vhostmq_set_policing(struct netdev *netdev, unsigned int kbits_rate,
                            unsigned int kbits_burst, unsigned int kpkts_rate,
                            unsigned int kpkts_burst)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_set_policing(&dev->qos, netdev_get_name(netdev),
                                     kbits_rate, kbits_burst, kpkts_rate,
                                     kpkts_burst);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

static int
netdev_vhostmq_get_qos_types(const struct netdev *netdev OVS_UNUSED,
                             struct sset *types)
{
    return vhostmq_qos_get_types(types);
}

static int
netdev_vhostmq_get_qos(const struct netdev *netdev, const char **typep,
                       struct smap *details)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_get(&dev->qos, typep, details);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

static int
netdev_vhostmq_set_qos(struct netdev *netdev, const char *type,
                       const struct smap *details)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_set(&dev->qos, netdev_get_name(netdev), type,
                            details);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

static int
netdev_vhostmq_get_queue(const struct netdev *netdev, unsigned int queue_id,
                         struct smap *details)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_get_queue(&dev->qos, queue_id, details);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

static int
netdev_vhostmq_set_queue(struct netdev *netdev, unsigned int queue_id,
                         const struct smap *details)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_set_queue(&dev->qos, netdev_get_name(netdev),
                                  queue_id, details);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

static int
netdev_vhostmq_delete_queue(struct netdev *netdev, unsigned int queue_id)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_delete_queue(&dev->qos, queue_id);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

static int
netdev_vhostmq_get_queue_stats(const struct netdev *netdev,
                               unsigned int queue_id,
                               struct netdev_queue_stats *stats)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int error;

    ovs_mutex_lock(&dev->mutex);
    error = vhostmq_qos_get_queue_stats(&dev->qos, queue_id, stats);
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

/* A dump of a port's queues: their ids when it started. */
struct vhostmq_queue_dump {
    unsigned int *ids;
    size_t n, next;
};

static int
netdev_vhostmq_queue_dump_start(const struct netdev *netdev, void **statep)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    struct vhostmq_queue_dump *dump = xzalloc(sizeof *dump);

    ovs_mutex_lock(&dev->mutex);
    dump->n = vhostmq_qos_queue_ids(&dev->qos, &dump->ids);
    ovs_mutex_unlock(&dev->mutex);
    *statep = dump;
    return 0;
}

static int
netdev_vhostmq_queue_dump_next(const struct netdev *netdev, void *state,
                               unsigned int *queue_id, struct smap *details)
{
    struct vhostmq_queue_dump *dump = state;

    while (dump->next < dump->n) {
        *queue_id = dump->ids[dump->next++];
        smap_clear(details);
        if (!netdev_vhostmq_get_queue(netdev, *queue_id, details)) {
            return 0;
        }
    }
    return EOF;
}

static int
netdev_vhostmq_queue_dump_done(const struct netdev *netdev OVS_UNUSED,
                               void *state)
{
    struct vhostmq_queue_dump *dump = state;

    free(dump->ids);
    free(dump);
    return 0;
}

static int
netdev_vhostmq_dump_queue_stats(const struct netdev *netdev,
                                void (*cb)(unsigned int queue_id,
                                           struct netdev_queue_stats *,
                                           void *aux),
                                void *aux)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    unsigned int *ids;
    size_t n;

    ovs_mutex_lock(&dev->mutex);
    n = vhostmq_qos_queue_ids(&dev->qos, &ids);
    ovs_mutex_unlock(&dev->mutex);
    for (size_t i = 0; i < n; i++) {
        struct netdev_queue_stats stats;

        if (!netdev_vhostmq_get_queue_stats(netdev, ids[i], &stats)) {
            cb(ids[i], &stats, aux);
        }
    }
    free(ids);
    return 0;
}

static int
netdev_vhostmq_get_carrier(const struct netdev *netdev, bool *carrier)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);

    atomic_read_relaxed(&dev->ready, carrier);
    return 0;
}

static long long int
netdev_vhostmq_get_carrier_resets(const struct netdev *netdev)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    long long int resets;

    /* Without the mutex: OVS asks every port each few seconds, and must not
     * wait behind a busy connection manager for one counter. */
    atomic_read_relaxed(&dev->link_resets, &resets);
    return resets;
}

static uint64_t
read_sw(atomic_uint64_t *p)
{
    uint64_t v;

    atomic_read_relaxed(p, &v);
    return v;
}

static int
netdev_vhostmq_get_stats(const struct netdev *netdev,
                         struct netdev_stats *stats)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    uint64_t mtu_drops = read_sw(&dev->sw.tx_mtu_exceeded_drops);
    /* (Read before the rings' counters, which count a policed frame
     * first.) */
    uint64_t rx_qos_drops = read_sw(&dev->qos.rx_drops);
    uint64_t rx_qos_bytes = read_sw(&dev->qos.rx_drop_bytes);

    memset(stats, 0, sizeof *stats);
    const struct virtq_stats *s;

    for (unsigned int i = 0;
         (s = vhost_device_vring_stats(&dev->vdev, i)); i++) {
        if (i & 1) {
            /* Guest TX: what the switch receives. */
            stats->rx_packets += read_stat(&s->packets);
            stats->rx_bytes += read_stat(&s->bytes);
            stats->rx_errors += read_stat(&s->bad_chain)
                                + read_stat(&s->too_long)
                                + read_stat(&s->broken);
            /* (Frames dropped for a bad virtio-net header are added
             * below, once.) */
            stats->multicast += read_stat(&s->multicast);
            stats->rx_dropped += read_stat(&s->disabled_discards);
            stats->rx_broadcast_packets += read_stat(&s->broadcast);
        } else {
            stats->tx_packets += read_stat(&s->packets);
            stats->tx_bytes += read_stat(&s->bytes);
            stats->tx_errors += read_stat(&s->bad_chain)
                                + read_stat(&s->too_long)
                                + read_stat(&s->broken);
            stats->tx_broadcast_packets += read_stat(&s->broadcast);
            stats->tx_multicast_packets += read_stat(&s->multicast);
        }
    }
    stats->tx_dropped = read_sw(&dev->sw.tx_failure_drops)
                        + read_sw(&dev->sw.tx_unfilled_drops)
                        + read_sw(&dev->sw.tx_link_down_drops)
                        + read_sw(&dev->sw.tx_admin_down_drops) + mtu_drops
                        + read_sw(&dev->ol.tx_bad)
                        + read_sw(&dev->qos.tx_drops);
    /* Policed frames are dropped, not received (as netdev-dpdk counts
     * them; the per-queue counters count them as the ring gave them). */
    stats->rx_packets -= MIN(stats->rx_packets, rx_qos_drops);
    stats->rx_bytes -= MIN(stats->rx_bytes, rx_qos_bytes);
    stats->rx_dropped += rx_qos_drops;
    stats->rx_errors += read_sw(&dev->ol.rx_bad);
    stats->rx_length_errors = 0;
    return 0;
}

/* Per-queue counters, named as OVS-DPDK users know them from rte_vhost:
 * rx_q<N>_<name> for the guest's TX vring 2N+1, tx_q<N>_<name> for its RX
 * vring 2N. */
#define VHOSTMQ_QUEUE_STATS                                     \
    VHOSTMQ_QUEUE_STAT(packets, "good_packets")                 \
    VHOSTMQ_QUEUE_STAT(bytes, "good_bytes")                     \
    VHOSTMQ_QUEUE_STAT(multicast, "multicast_packets")          \
    VHOSTMQ_QUEUE_STAT(broadcast, "broadcast_packets")          \
    VHOSTMQ_QUEUE_STAT(undersize, "undersize_packets")          \
    VHOSTMQ_QUEUE_STAT(size_64, "size_64_packets")              \
    VHOSTMQ_QUEUE_STAT(size_65_127, "size_65_127_packets")      \
    VHOSTMQ_QUEUE_STAT(size_128_255, "size_128_255_packets")    \
    VHOSTMQ_QUEUE_STAT(size_256_511, "size_256_511_packets")    \
    VHOSTMQ_QUEUE_STAT(size_512_1023, "size_512_1023_packets")  \
    VHOSTMQ_QUEUE_STAT(size_1024_1518, "size_1024_1518_packets") \
    VHOSTMQ_QUEUE_STAT(size_1519_max, "size_1519_max_packets")  \
    VHOSTMQ_QUEUE_STAT(notifications, "guest_notifications")    \
    VHOSTMQ_QUEUE_STAT(notify_errors, "guest_notification_errors") \
    VHOSTMQ_QUEUE_STAT(bad_chain, "bad_descriptor_chains")      \
    VHOSTMQ_QUEUE_STAT(too_long, "oversize_drops")              \
    VHOSTMQ_QUEUE_STAT(broken, "ring_index_errors")             \
    VHOSTMQ_QUEUE_STAT(disabled_discards, "disabled_queue_drops")

static int
netdev_vhostmq_get_custom_stats(const struct netdev *netdev,
                                struct netdev_custom_stats *custom)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    int n_queues = netdev_n_rxq(netdev);
    size_t per_queue = 0, n = 0;

#define VHOSTMQ_QUEUE_STAT(FIELD, NAME) per_queue++;
    VHOSTMQ_QUEUE_STATS
#undef VHOSTMQ_QUEUE_STAT

    custom->size = 2 * n_queues * per_queue + 16;
    custom->counters = xcalloc(custom->size, sizeof *custom->counters);

    for (int q = 0; q < n_queues; q++) {
        for (int dir = 0; dir < 2; dir++) {
            /* dir 0: rx (the guest's TX vring); dir 1: tx (its RX). */
            const struct virtq_stats *s = vhost_device_vring_stats(
                &dev->vdev, dir ? vhost_guest_rx_vring(q)
                                : vhost_guest_tx_vring(q));

#define VHOSTMQ_QUEUE_STAT(FIELD, NAME)                                 \
            snprintf(custom->counters[n].name,                          \
                     NETDEV_CUSTOM_STATS_NAME_SIZE, "%s_q%d_%s",        \
                     dir ? "tx" : "rx", q, NAME);                       \
            custom->counters[n++].value = read_stat(&s->FIELD);
            VHOSTMQ_QUEUE_STATS
#undef VHOSTMQ_QUEUE_STAT
        }
    }

#define VHOSTMQ_SW_STAT(NAME, VALUE)                                    \
    ovs_strlcpy(custom->counters[n].name, NAME,                         \
                NETDEV_CUSTOM_STATS_NAME_SIZE);                         \
    custom->counters[n++].value = VALUE;
    VHOSTMQ_SW_STAT("ovs_tx_retries", read_sw(&dev->sw.tx_retries));
    /* (As netdev-dpdk counts them: every frame the guest had no buffer
     * for.) */
    VHOSTMQ_SW_STAT("ovs_tx_failure_drops",
                    read_sw(&dev->sw.tx_failure_drops)
                    + read_sw(&dev->sw.tx_unfilled_drops));
    VHOSTMQ_SW_STAT("ovs_tx_mtu_exceeded_drops",
                    read_sw(&dev->sw.tx_mtu_exceeded_drops));
    VHOSTMQ_SW_STAT("ovs_tx_qos_drops", read_sw(&dev->qos.tx_drops));
    VHOSTMQ_SW_STAT("ovs_rx_qos_drops", read_sw(&dev->qos.rx_drops));
    VHOSTMQ_SW_STAT("ovs_tx_invalid_hwol_drops", read_sw(&dev->ol.tx_bad));
    if (dev->offloads) {
        /* Offloads (other_config:userspace-tso-enable=true). */
        VHOSTMQ_SW_STAT("rx_csum_offload_packets", read_sw(&dev->ol.rx_csum));
        VHOSTMQ_SW_STAT("rx_tso_packets", read_sw(&dev->ol.rx_tso));
        VHOSTMQ_SW_STAT("rx_sw_csum_packets", read_sw(&dev->ol.rx_sw_csum));
        VHOSTMQ_SW_STAT("rx_bad_offload_header_drops",
                        read_sw(&dev->ol.rx_bad));
        VHOSTMQ_SW_STAT("tx_csum_offload_packets", read_sw(&dev->ol.tx_csum));
        VHOSTMQ_SW_STAT("tx_tso_packets", read_sw(&dev->ol.tx_tso));
        VHOSTMQ_SW_STAT("tx_sw_csum_packets", read_sw(&dev->ol.tx_sw_csum));
        VHOSTMQ_SW_STAT("tx_sw_tso_packets", read_sw(&dev->ol.tx_sw_tso));
        VHOSTMQ_SW_STAT("tx_sw_tso_segments",
                        read_sw(&dev->ol.tx_sw_segments));
    }
#undef VHOSTMQ_SW_STAT

    custom->size = n;
    return 0;
}

/* Everything the front-end got wrong: refused messages, and connections
 * dropped for a header that made no sense (which the device never saw). */
static uint64_t
port_protocol_errors(const struct netdev_vhostmq *dev)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    return (vhost_device_n_errors(&dev->vdev)
            + vhost_endpoint_n_bad_headers(dev->endpoint));
}

/* Status "offloads": what the guest negotiated of those offered, as
 * "tx_csum tso4 tso6 rx_csum rx_tso4 rx_tso6" (guest tx: frames it sends
 * with; guest rx: frames it takes with), or "none". */
static void
format_offloads(struct smap *args, uint64_t features)
{
    static const struct {
        int bit;
        const char *name;
    } names[] = {
        { VIRTIO_NET_F_CSUM, "tx_csum" },
        { VIRTIO_NET_F_HOST_TSO4, "tx_tso4" },
        { VIRTIO_NET_F_HOST_TSO6, "tx_tso6" },
        { VIRTIO_NET_F_GUEST_CSUM, "rx_csum" },
        { VIRTIO_NET_F_GUEST_TSO4, "rx_tso4" },
        { VIRTIO_NET_F_GUEST_TSO6, "rx_tso6" },
    };
    struct ds s = DS_EMPTY_INITIALIZER;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (features & (1ull << names[i].bit)) {
            ds_put_format(&s, "%s%s", s.length ? " " : "", names[i].name);
        }
    }
    smap_add(args, "offloads", s.length ? ds_cstr(&s) : "none");
    ds_destroy(&s);
}

static int
netdev_vhostmq_get_status(const struct netdev *netdev, struct smap *args)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(netdev);
    const struct vhost_device *vdev = &dev->vdev;
    bool connected;
    int numa_id;

    vhost_endpoints_lock();
    connected = vhost_endpoint_is_connected(dev->endpoint);
    ovs_mutex_lock(&dev->mutex);
    numa_id = dev->numa_id;
    smap_add(args, "mode", dev->client ? "client" : "server");
    smap_add(args, "status", connected ? "connected" : "disconnected");
    smap_add(args, "socket", dev->socket_path);
    smap_add_format(args, "max_queue_pairs", "%d", dev->max_queue_pairs);
    if (dev->ignored_options) {
        smap_add(args, "ignored_options", dev->ignored_options);
    }
    ovs_mutex_unlock(&dev->mutex);

    if (connected) {
        unsigned int n_vrings = 0;

        smap_add_format(args, "features", "0x%016"PRIx64, vdev->features);
        smap_add_format(args, "protocol_features", "0x%016"PRIx64,
                        vdev->protocol_features);
        if (vdev->mtu) {
            smap_add_format(args, "mtu", "%d", vdev->mtu);
        }
        smap_add_format(args, "numa", "%d", numa_id);
        if (dev->offloads) {
            format_offloads(args, vdev->features);
        }
        for (unsigned int i = 0; i < vdev->max_vrings; i++) {
            if (vdev->vrings[i].configured) {
                n_vrings = i + 1;
            }
        }
        smap_add_format(args, "num_of_vrings", "%u", n_vrings);
        for (unsigned int i = 0; i < n_vrings; i++) {
            smap_add_nocopy(args, xasprintf("vring_%u_size", i),
                            xasprintf("%"PRIu32, vdev->vrings[i].num));
        }
    }
    smap_add_format(args, "n_rxq", "%d", netdev_n_rxq(netdev));
    smap_add_format(args, "n_txq", "%d", netdev_n_txq(netdev));
    if (dev->endpoint) {
        vhost_endpoint_get_status(dev->endpoint, args);
    }
    smap_add_format(args, "protocol_errors", "%"PRIu64,
                    port_protocol_errors(dev));
    smap_add_format(args, "guest_memory_faults", "%"PRIu64,
                    vdev->errors.memory_faults);
    if (vdev->last_error[0]) {
        smap_add(args, "last_protocol_error", vdev->last_error);
    }
    vhost_endpoints_unlock();
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
        if ((dev->flags ^ *old_flags) & NETDEV_UP) {
            VLOG_INFO("%s: administratively %s", netdev_get_name(netdev),
                      dev->flags & NETDEV_UP ? "up" : "down");
        }
        atomic_store_relaxed(&dev->admin_up, !!(dev->flags & NETDEV_UP));
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

static struct vhost_vring *
rxq_vring(struct netdev_rxq *rxq)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(rxq->netdev);

    return vhost_device_vring(&dev->vdev,
                              vhost_guest_tx_vring(rxq->queue_id));
}

static bool
netdev_vhostmq_rxq_enabled(struct netdev_rxq *rxq)
{
    struct vhost_vring *vr = rxq_vring(rxq);

    return vr && vhost_vring_enabled(vr);
}

/* Builds a dp_packet from the pieces of a guest frame. */
struct recv_ctx {
    struct dp_packet_batch *batch;
    struct vhostmq_pkt_cache *cache;
    uint64_t features;                  /* The guest's. */
    struct vhostmq_offload_acc acc;     /* Offloads in this burst. */
};

/* Sets the offloads that the virtio-net header 'hdr' of the guest's frame
 * in 'packet' asks for.  Returns false, and frees the packet, if that
 * header is bad. */
static inline bool
packet_from_guest_hdr(struct recv_ctx *ctx, struct dp_packet *packet,
                      const struct virtio_net_hdr *hdr)
{
    if ((hdr->flags | hdr->gso_type)
        && !vhostmq_offload_from_guest(packet, hdr, ctx->features,
                                       &ctx->acc)) {
        pkt_free(ctx->cache, packet);
        return false;
    }
    return true;
}

/* virtq_packet_cb for the dequeue's general walk. */
static void
packet_from_guest(void *ctx_, const struct virtq_piece *pieces, int n,
                  uint32_t len, const struct virtio_net_hdr *hdr)
{
    struct recv_ctx *ctx = ctx_;
    char *dst;
    struct dp_packet *packet = pkt_alloc(ctx->cache, len, &dst);

    for (int i = 0; i < n; i++) {
        memcpy(dst, pieces[i].base, pieces[i].len);
        dst += pieces[i].len;
    }
    dp_packet_set_size(packet, len);
    if (!hdr || packet_from_guest_hdr(ctx, packet, hdr)) {
        dp_packet_batch_add(ctx->batch, packet);
    }
}

/* Counts the offloads of a receive burst, and logs a bad header. */
static void __attribute__((noinline))
rx_offload_done(struct netdev_vhostmq *dev, struct netdev_rxq *rxq,
                struct vhostmq_offload_acc *acc)
{
    if (acc->rx_bad) {
        COVERAGE_ADD(vhostmq_rx_bad_offload, acc->rx_bad);
        VLOG_WARN_RL(&rl, "%s: rx queue %d: %"PRIu32" frame(s) dropped for a "
                     "bad virtio-net header: %s", netdev_get_name(&dev->up),
                     rxq->queue_id, acc->rx_bad,
                     vnet_hdr_error_name(acc->rx_error));
    }
    vhostmq_offload_acc_flush(acc, &dev->ol);
}

/* netdev_vhostmq_rxq_recv() once the ring may hold frames (or 'batch'
 * holds an announcement): takes up to a burst from 'vq' into 'batch', and
 * unlocks 'lock'.  (Out of line: its arrays and the work they mean are no
 * part of a poll of an idle queue.) */
static int __attribute__((noinline))
rxq_recv_frames(struct netdev_vhostmq *dev, struct netdev_rxq *rxq,
                struct virtq *vq, struct dp_packet_batch *batch,
                struct vhostmq_rxq_lock *lock)
    OVS_RELEASES(lock)
{
    /* The frames of the dequeue's fast path copied out in one loop, then
     * given back; any other chain through the general walk. */
    struct recv_ctx ctx = { .batch = batch, .cache = pkt_cache_get(),
                            .features = vq->features };
    struct virtq_frame frames[NETDEV_MAX_BURST];
    struct virtio_net_hdr hdrs[NETDEV_MAX_BURST];
    bool with_hdrs = virtq_hands_hdrs(vq);
    int max = NETDEV_MAX_BURST - dp_packet_batch_size(batch);
    bool more;
    int n = virtq_dequeue_frames(vq, max, frames, hdrs, &more);

    /* The copies first (a loop that keeps what it needs in registers),
     * then the headers' offloads, if the guest sends headers. */
    struct dp_packet **out = &batch->packets[dp_packet_batch_size(batch)];
    int k = n;

    for (int i = 0; i < n; i++) {
        uint32_t len = frames[i].len;
        char *data;
        struct dp_packet *packet = pkt_alloc(ctx.cache, len, &data);

        virtq_copy(data, frames[i].data, len);
        dp_packet_set_size(packet, len);
        out[i] = packet;
    }
    if (with_hdrs) {
        k = 0;
        for (int i = 0; i < n; i++) {
            if (packet_from_guest_hdr(&ctx, out[i], &hdrs[i])) {
                out[k++] = out[i];
            }
        }
    }
    batch->count += k;          /* (At most NETDEV_MAX_BURST: see 'max'.) */
    if (OVS_UNLIKELY(more)) {
        virtq_dequeue_burst(vq, max - n, packet_from_guest, &ctx);
    } else {
        virtq_flush(vq);
    }
    if (OVS_UNLIKELY(ctx.acc.rx_csum | ctx.acc.rx_sw_csum | ctx.acc.rx_bad)) {
        rx_offload_done(dev, rxq, &ctx.acc);
    }
    struct vhostmq_policer *policer
        = ovsrcu_get(struct vhostmq_policer *, &dev->qos.ingress);
    if (OVS_UNLIKELY(policer) && !dp_packet_batch_is_empty(batch)) {
        uint64_t bytes = 0;
        size_t dropped = vhostmq_policer_run(policer, batch, pkt_drop,
                                             ctx.cache, &bytes);

        vhostmq_counter_add(&dev->qos.rx_drops, dropped);
        vhostmq_counter_add(&dev->qos.rx_drop_bytes, bytes);
        COVERAGE_ADD(vhostmq_rx_qos_drops, dropped);
    }
    if (OVS_UNLIKELY(vq->error)) {
        report_ring_error(dev, vq);
    }
    rxq_unlock(lock);
    return dp_packet_batch_is_empty(batch) ? EAGAIN : 0;
}

/* Announces the guest's MAC in 'batch', after a migration, if the
 * front-end asked for it. */
static void __attribute__((noinline))
rxq_add_rarp(struct netdev_vhostmq *dev, struct dp_packet_batch *batch)
{
    struct eth_addr mac;

    if (vhost_device_take_rarp(&dev->vdev, mac.ea)) {
        /* So that the network learns where the guest moved. */
        struct dp_packet *rarp = dp_packet_new(0);

        compose_rarp(rarp, mac);
        dp_packet_batch_add(batch, rarp);
        VLOG_INFO_RL(&info_rl, "%s: announced the guest's MAC "ETH_ADDR_FMT
                     " (RARP), as its front-end asked",
                     netdev_get_name(&dev->up), ETH_ADDR_ARGS(mac));
    }
}

/* A PMD polls every queue of every port it serves, most of them idle at
 * any moment: what it costs when there is nothing to take is all here. */
static int
netdev_vhostmq_rxq_recv(struct netdev_rxq *rxq, struct dp_packet_batch *batch,
                        int *qfill)
{
    struct netdev_vhostmq *dev = netdev_vhostmq_cast(rxq->netdev);
    struct vhostmq_rxq_lock *lock = &dev->rxq_locks[rxq->queue_id];
    struct vhost_vring *vr
        = vhost_device_vring(&dev->vdev, vhost_guest_tx_vring(rxq->queue_id));
    struct virtq *vq;
    bool admin_up;

    if (qfill) {
        *qfill = 0;
    }
    if (OVS_UNLIKELY(!rxq_trylock(lock))) {
        return EAGAIN;          /* The control path has the ring a moment. */
    }
    vq = vr ? vhost_vring_live(vr) : NULL;
    atomic_read_relaxed(&dev->admin_up, &admin_up);
    if (OVS_UNLIKELY(!vq || !vhost_vring_enabled(vr) || !admin_up)) {
        /* Administratively down, the guest's frames stay in its ring, as
         * with netdev-dpdk (which counts nothing either). */
        rxq_unlock(lock);
        return EAGAIN;
    }

    dp_packet_batch_init(batch);
    if (OVS_UNLIKELY(rxq->queue_id == 0)
        && OVS_UNLIKELY(vhost_device_rarp_pending(&dev->vdev))) {
        rxq_add_rarp(dev, batch);
    }
    if (OVS_LIKELY(virtq_maybe_avail(vq))
        || !dp_packet_batch_is_empty(batch)) {
        return rxq_recv_frames(dev, rxq, vq, batch, lock);
    }
    rxq_unlock(lock);
    return EAGAIN;
}

/* ovs-appctl vhostmq/show [PORT]. */

static void
format_bits(struct ds *ds, uint64_t bits, const char *const names[],
            size_t n_names)
{
    ds_put_format(ds, "0x%"PRIx64, bits);
    if (bits) {
        ds_put_cstr(ds, " (");
        for (size_t i = 0; i < 64; i++) {
            if (bits & (1ull << i)) {
                if (i < n_names && names[i]) {
                    ds_put_cstr(ds, names[i]);
                } else {
                    ds_put_format(ds, "bit%"PRIuSIZE, i);
                }
                if (bits >> i > 1) {
                    ds_put_char(ds, ' ');
                }
            }
        }
        ds_put_char(ds, ')');
    }
}

static void
format_vring(struct ds *ds, const struct vhost_vring *vr, unsigned int i)
{
    const struct virtq *vq = vhost_vring_live(vr);
    const struct virtq_stats *st = &vr->stats;

    ds_put_format(ds, "  vring %u (guest %s, OVS %s queue %u): %s, %s, "
                  "size %"PRIu32, i, vhost_vring_is_guest_tx(i) ? "TX" : "RX",
                  vhost_vring_is_guest_tx(i) ? "rx" : "tx",
                  vhost_vring_queue_pair(i),
                  vq ? "started" : "stopped",
                  vhost_vring_enabled(vr) ? "enabled" : "disabled", vr->num);
    if (vq) {
        /* (The switch's own indexes belong to the PMD polling the ring:
         * what is in guest memory instead.) */
        ds_put_format(ds, ", guest avail index %"PRIu16", used index %"
                      PRIu16, virtq_guest_avail_idx(vq),
                      virtq_guest_used_idx(vq));
        if (virtq_is_broken(vq)) {
            ds_put_cstr(ds, ", BROKEN");
        }
    }
    ds_put_format(ds, "\n    packets %"PRIu64", bytes %"PRIu64
                  ", guest notifications %"PRIu64", failed notifications %"
                  PRIu64", bad chains %"PRIu64
                  ", oversize %"PRIu64", ring index errors %"PRIu64"\n",
                  read_stat(&st->packets), read_stat(&st->bytes),
                  read_stat(&st->notifications),
                  read_stat(&st->notify_errors), read_stat(&st->bad_chain),
                  read_stat(&st->too_long), read_stat(&st->broken));
    if (i & 1) {
        ds_put_format(ds, "    dropped while disabled %"PRIu64"\n",
                      read_stat(&st->disabled_discards));
    }
}

static void
format_port(struct ds *ds, struct netdev_vhostmq *dev)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    static const char *const feature_names[64] = {
        [VIRTIO_NET_F_CSUM] = "CSUM", [VIRTIO_NET_F_MTU] = "MTU",
        [VIRTIO_NET_F_GUEST_CSUM] = "GUEST_CSUM",
        [VIRTIO_NET_F_GUEST_TSO4] = "GUEST_TSO4",
        [VIRTIO_NET_F_GUEST_TSO6] = "GUEST_TSO6",
        [VIRTIO_NET_F_GUEST_ECN] = "GUEST_ECN",
        [VIRTIO_NET_F_GUEST_UFO] = "GUEST_UFO",
        [VIRTIO_NET_F_HOST_TSO4] = "HOST_TSO4",
        [VIRTIO_NET_F_HOST_TSO6] = "HOST_TSO6",
        [VIRTIO_NET_F_HOST_ECN] = "HOST_ECN",
        [VIRTIO_NET_F_HOST_UFO] = "HOST_UFO",
        [VIRTIO_NET_F_MAC] = "MAC", [VIRTIO_NET_F_MRG_RXBUF] = "MRG_RXBUF",
        [VIRTIO_NET_F_STATUS] = "STATUS", [VIRTIO_NET_F_CTRL_VQ] = "CTRL_VQ",
        [VIRTIO_NET_F_GUEST_ANNOUNCE] = "GUEST_ANNOUNCE",
        [VIRTIO_NET_F_MQ] = "MQ",
        [VIRTIO_F_NOTIFY_ON_EMPTY] = "NOTIFY_ON_EMPTY",
        [VHOST_F_LOG_ALL] = "LOG_ALL", [VIRTIO_F_ANY_LAYOUT] = "ANY_LAYOUT",
        [VIRTIO_RING_F_INDIRECT_DESC] = "INDIRECT_DESC",
        [VIRTIO_RING_F_EVENT_IDX] = "EVENT_IDX",
        [VHOST_USER_F_PROTOCOL_FEATURES] = "PROTOCOL_FEATURES",
        [VIRTIO_F_VERSION_1] = "VERSION_1",
        [VIRTIO_F_IOMMU_PLATFORM] = "IOMMU_PLATFORM",
        [VIRTIO_F_RING_PACKED] = "RING_PACKED",
        [VIRTIO_F_IN_ORDER] = "IN_ORDER",
    };
    static const char *const protocol_names[64] = {
        "MQ", "LOG_SHMFD", "RARP", "REPLY_ACK", "NET_MTU", "BACKEND_REQ",
        "CROSS_ENDIAN", "CRYPTO_SESSION", "PAGEFAULT", "CONFIG",
        "BACKEND_SEND_FD", "HOST_NOTIFIER", "INFLIGHT_SHMFD", "RESET_DEVICE",
        "INBAND_NOTIFICATIONS", "CONFIGURE_MEM_SLOTS", "STATUS",
    };
    const struct vhost_device *vdev = &dev->vdev;
    bool connected = vhost_endpoint_is_connected(dev->endpoint);
    bool ready;
    struct smap status = SMAP_INITIALIZER(&status);
    const char *last_error;

    atomic_read_relaxed(&dev->ready, &ready);
    ovs_mutex_lock(&dev->mutex);
    ds_put_format(ds, "%s: vhost-user %s, socket %s\n",
                  netdev_get_name(&dev->up),
                  dev->client ? "client" : "server",
                  dev->socket_path ? dev->socket_path : "(none)");
    ovs_mutex_unlock(&dev->mutex);
    if (dev->endpoint) {
        vhost_endpoint_get_status(dev->endpoint, &status);
    }
    ds_put_format(ds, "  front-end %s, link %s, connects %s, "
                  "disconnects %s\n",
                  connected ? "connected" : "disconnected",
                  ready ? "up" : "down",
                  smap_get_def(&status, "n_connects", "0"),
                  smap_get_def(&status, "n_disconnects", "0"));
    last_error = smap_get(&status, "last_error");
    if (last_error) {
        ds_put_format(ds, "  last connection error: %s\n", last_error);
    }
    smap_destroy(&status);

    ds_put_format(ds, "  queue pairs: %u set up by the front-end, %d offered;"
                  " n_rxq %d, n_txq %d\n", vhost_device_n_queue_pairs(vdev),
                  vdev->max_queue_pairs, netdev_n_rxq(&dev->up),
                  netdev_n_txq(&dev->up));
    if (connected) {
        ds_put_cstr(ds, "  features: ");
        format_bits(ds, vdev->features, feature_names,
                    ARRAY_SIZE(feature_names));
        ds_put_cstr(ds, "\n  protocol features: ");
        format_bits(ds, vdev->protocol_features, protocol_names,
                    ARRAY_SIZE(protocol_names));
        ds_put_format(ds, "\n  device status 0x%"PRIx8", guest MTU %"PRIu16
                      ", memory %u region(s), %"PRIu64" MiB\n",
                      vdev->status, vdev->mtu,
                      vdev->mem ? vdev->mem->n_regions : 0,
                      vhost_mem_mapped_bytes(vdev->mem) >> 20);
    }
    for (unsigned int i = 0; i < vdev->max_vrings; i++) {
        const struct vhost_vring *vr = &vdev->vrings[i];

        if (vr->configured || read_stat(&vr->stats.packets)) {
            format_vring(ds, vr, i);
        }
    }
    ds_put_format(ds, "  switch to guest: dropped for want of guest buffers "
                  "%"PRIu64", over the MTU %"PRIu64", link down %"PRIu64
                  ", admin down %"PRIu64", before the guest's first buffers "
                  "%"PRIu64"; retries %"PRIu64"\n",
                  read_sw(&dev->sw.tx_failure_drops),
                  read_sw(&dev->sw.tx_mtu_exceeded_drops),
                  read_sw(&dev->sw.tx_link_down_drops),
                  read_sw(&dev->sw.tx_admin_down_drops),
                  read_sw(&dev->sw.tx_unfilled_drops),
                  read_sw(&dev->sw.tx_retries));
    ds_put_format(ds, "  policed: guest to switch %"PRIu64", switch to "
                  "guest %"PRIu64"\n", read_sw(&dev->qos.rx_drops),
                  read_sw(&dev->qos.tx_drops));
    ds_put_format(ds, "  protocol errors %"PRIu64,
                  port_protocol_errors(dev));
    if (vdev->last_error[0]) {
        ds_put_format(ds, ", last: %s", vdev->last_error);
    }
    ds_put_char(ds, '\n');
}

static void
vhostmq_unixctl_show(struct unixctl_conn *conn, int argc,
                     const char *argv[], void *aux OVS_UNUSED)
{
    struct ds ds = DS_EMPTY_INITIALIZER;
    struct netdev_vhostmq *dev;
    bool found = false;

    ovs_mutex_lock(&vhostmq_ports_mutex);
    LIST_FOR_EACH (dev, list_node, &vhostmq_ports) {
        if (argc > 1 && strcmp(argv[1], netdev_get_name(&dev->up))) {
            continue;
        }
        vhost_endpoints_lock();
        format_port(&ds, dev);
        vhost_endpoints_unlock();
        found = true;
    }
    ovs_mutex_unlock(&vhostmq_ports_mutex);

    if (argc > 1 && !found) {
        unixctl_command_reply_error(conn, "no such vhostmq port");
    } else {
        unixctl_command_reply(conn, ds_cstr(&ds));
    }
    ds_destroy(&ds);
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
    .send = netdev_vhostmq_send,
    .set_etheraddr = netdev_vhostmq_set_etheraddr,
    .get_etheraddr = netdev_vhostmq_get_etheraddr,
    .get_mtu = netdev_vhostmq_get_mtu,
    .set_mtu = netdev_vhostmq_set_mtu,
    .set_policing = netdev_vhostmq_set_policing,
    .get_qos_types = netdev_vhostmq_get_qos_types,
    .get_qos = netdev_vhostmq_get_qos,
    .set_qos = netdev_vhostmq_set_qos,
    .get_queue = netdev_vhostmq_get_queue,
    .set_queue = netdev_vhostmq_set_queue,
    .delete_queue = netdev_vhostmq_delete_queue,
    .get_queue_stats = netdev_vhostmq_get_queue_stats,
    .queue_dump_start = netdev_vhostmq_queue_dump_start,
    .queue_dump_next = netdev_vhostmq_queue_dump_next,
    .queue_dump_done = netdev_vhostmq_queue_dump_done,
    .dump_queue_stats = netdev_vhostmq_dump_queue_stats,
    .get_carrier = netdev_vhostmq_get_carrier,
    .get_carrier_resets = netdev_vhostmq_get_carrier_resets,
    .get_stats = netdev_vhostmq_get_stats,
    .get_custom_stats = netdev_vhostmq_get_custom_stats,
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
        vhostmq_changes = seq_create();
        for (size_t i = 0; i < ARRAY_SIZE(vhostmq_types); i++) {
            vhostmq_classes[i] = netdev_vhostmq_template;
            vhostmq_classes[i].type = vhostmq_types[i];
            if (i == 0) {
                /* These hooks serve every class's ports: only the first
                 * class has them. */
                vhostmq_classes[i].run = netdev_vhostmq_run;
                vhostmq_classes[i].wait = netdev_vhostmq_wait;
            }
            netdev_register_provider(&vhostmq_classes[i]);
        }
        unixctl_command_register("vhostmq/show", "[port]", 0, 1,
                                 vhostmq_unixctl_show, NULL);
        ovsthread_once_done(&once);
    }
}
