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
