/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The NUMA node of a guest's memory. */

#ifndef NETDEV_VHOSTMQ_NUMA_H
#define NETDEV_VHOSTMQ_NUMA_H 1

/* OVS polls a port's queues from PMD threads on the NUMA node its netdev
 * names (netdev_get_numa_id()); a guest whose memory is on another node is
 * polled across the interconnect.  A vhostmq port names the node of the
 * guest's memory that its rings lie in, as netdev-dpdk does: when the
 * guest's rings start (and again after a new memory table), the kernel
 * says (get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)) on which node the pages
 * of every running ring's descriptor table, available and used rings lie,
 * and the node most of them lie on is the port's.  Those pages are the
 * guest's own, written by it before it started the rings: asking faults
 * nothing new in.
 *
 * Test seam: the environment variable VHOSTMQ_TEST_NUMA_MAP, read once,
 * "FROM:TO[,FROM:TO...]", reports node TO where the kernel says FROM, so
 * that a machine with one node (and OVS's --dummy-numa) can show a port
 * moving to another node's PMD thread.  Nothing else reads it. */

struct vhost_device;

/* The node of the memory of 'dev''s running rings, or -1 if it has none
 * or the kernel cannot tell.  Main thread. */
int vhostmq_numa_of_guest(const struct vhost_device *dev);

/* The node most of 'n' entries of 'nodes' name (the lowest of those that
 * tie), ignoring negative ones; -1 if none is. */
int vhostmq_numa_majority(const int nodes[], int n);

#endif /* netdev-vhostmq-numa.h */
