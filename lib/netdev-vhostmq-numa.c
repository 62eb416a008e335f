/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The NUMA node of a guest's memory. */

#include <config.h>

#include "netdev-vhostmq-numa.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "openvswitch/vlog.h"
#include "ovs-thread.h"
#include "util.h"
#include "vhost-device.h"
#include "virtq.h"

VLOG_DEFINE_THIS_MODULE(vhostmq_numa);

/* get_mempolicy()'s flags (numaif.h, which libnuma-dev has). */
#define VHOSTMQ_MPOL_F_NODE (1 << 0)
#define VHOSTMQ_MPOL_F_ADDR (1 << 1)

/* Nodes a NUMA node number may have, for counting (Linux allows 1024). */
#define MAX_NODES 1024

/* VHOSTMQ_TEST_NUMA_MAP, parsed. */
#define MAX_TEST_MAP 8
static int test_map[MAX_TEST_MAP][2];
static int n_test_map;

static void
read_test_map(void)
{
    const char *s = getenv("VHOSTMQ_TEST_NUMA_MAP");

    while (s && *s && n_test_map < MAX_TEST_MAP) {
        int from, to, len;

        if (sscanf(s, "%d:%d%n", &from, &to, &len) != 2
            || from < 0 || to < 0 || from >= MAX_NODES || to >= MAX_NODES) {
            VLOG_WARN("VHOSTMQ_TEST_NUMA_MAP: cannot parse \"%s\"", s);
            break;
        }
        test_map[n_test_map][0] = from;
        test_map[n_test_map][1] = to;
        n_test_map++;
        VLOG_INFO("VHOSTMQ_TEST_NUMA_MAP: node %d reported as node %d",
                  from, to);
        s += len;
        s += *s == ',';
    }
}

/* The node of the page at 'addr', or -1. */
static int
node_of(const void *addr)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;
    static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(1, 5);
    int node = -1;

    if (ovsthread_once_start(&once)) {
        read_test_map();
        ovsthread_once_done(&once);
    }
    if (syscall(SYS_get_mempolicy, &node, NULL, 0UL, addr,
                (unsigned long) (VHOSTMQ_MPOL_F_NODE | VHOSTMQ_MPOL_F_ADDR))) {
        /* ENOSYS: a kernel without NUMA support. */
        VLOG_DBG_RL(&rl, "get_mempolicy: %s", ovs_strerror(errno));
        return -1;
    }
    for (int i = 0; i < n_test_map; i++) {
        if (node == test_map[i][0]) {
            return test_map[i][1];
        }
    }
    return node;
}

int
vhostmq_numa_majority(const int nodes[], int n)
{
    int best = -1, best_count = 0;

    for (int i = 0; i < n; i++) {
        int count = 0;

        if (nodes[i] < 0) {
            continue;
        }
        for (int j = 0; j < n; j++) {
            count += nodes[j] == nodes[i];
        }
        if (count > best_count || (count == best_count && nodes[i] < best)) {
            best = nodes[i];
            best_count = count;
        }
    }
    return best;
}

int
vhostmq_numa_of_guest(const struct vhost_device *dev)
{
    int *nodes = xmalloc(3 * dev->max_vrings * sizeof *nodes);
    int n = 0, node;

    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        const struct virtq *vq = vhost_vring_live(&dev->vrings[i]);

        if (vq) {
            nodes[n++] = node_of(vq->desc);
            nodes[n++] = node_of(vq->avail);
            nodes[n++] = node_of(vq->used);
        }
    }
    node = vhostmq_numa_majority(nodes, n);
    free(nodes);
    return node;
}
