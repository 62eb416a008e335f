/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* vhostmq's ovs-vswitchd: upstream Open vSwitch's daemon, unchanged, with
 * the vhostmq netdev provider registered before it starts.
 *
 * Open vSwitch has no plugin loader, so the daemon is rebuilt here: the
 * upstream source file is compiled in place from the Open vSwitch source
 * tree (never copied), with its main() renamed, and the main() below runs it
 * after registering the provider. */

#include <config.h>

#define main upstream_ovs_vswitchd_main
#include "vswitchd/ovs-vswitchd.c"
#undef main

#include "netdev-vhostmq.h"
#include "vhostmq-settings.h"

int main(int argc, char *argv[]);

int
main(int argc, char *argv[])
{
    netdev_vhostmq_register();
    vhostmq_settings_init(argc, argv);
    return upstream_ovs_vswitchd_main(argc, argv);
}
