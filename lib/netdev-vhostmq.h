/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The vhostmq netdev provider: registers its port types with Open vSwitch. */

#ifndef NETDEV_VHOSTMQ_H
#define NETDEV_VHOSTMQ_H 1

/* vhostmq's netdev provider: vhost-user ports for the userspace datapath.
 *
 * netdev_vhostmq_register() registers the port types with OVS's netdev
 * layer.  It must run before the bridge opens any port, which in practice
 * means first thing in main(); it may run before netdev_initialize().
 *
 * Types registered:
 *
 *   vhostmq         the switch is the vhost-user server: it listens on a
 *                   socket named after the port.
 *   vhostmqclient   the switch is the vhost-user client: it connects to
 *                   options:vhost-server-path.
 *   dpdkvhostuser, dpdkvhostuserclient
 *                   aliases of the two above, so that configurations written
 *                   for OVS-DPDK work unchanged.  Registered only when the
 *                   Open vSwitch vhostmq is linked with was built without
 *                   DPDK: in a DPDK build, OVS's own DPDK provider owns those
 *                   names (it registers them when other_config:dpdk-init is
 *                   true), and vhostmq ports use the vhostmq* names. */
void netdev_vhostmq_register(void);

#endif /* netdev-vhostmq.h */
