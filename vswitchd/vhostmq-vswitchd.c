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
