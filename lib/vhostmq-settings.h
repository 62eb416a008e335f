/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Switch-wide settings from the Open_vSwitch table: where server sockets
 * go, and their owner and mode. */

#ifndef VHOSTMQ_SETTINGS_H
#define VHOSTMQ_SETTINGS_H 1

/* Switch-wide vhostmq settings from the Open_vSwitch table's other_config,
 * as OVS-DPDK users set them:
 *
 *   other_config:vhost-sock-dir   where server ports' sockets go: an
 *                                 absolute directory, or one relative to
 *                                 OVS's run directory (default: the run
 *                                 directory itself).
 *   other_config:vhost-sock-owner USER[:GROUP] (names or numbers) that
 *                                 server sockets belong to, so that a QEMU
 *                                 not running as root can connect.
 *   other_config:vhost-sock-mode  their permissions, in octal (e.g. 0660).
 *
 * OVS gives netdev providers no access to that column, so vhostmq reads it
 * through a small database connection of its own, opened by
 * vhostmq_settings_init() with the database remote ovs-vswitchd was given
 * and serviced from the provider's run and wait hooks. */

#include <stdbool.h>
#include <stdint.h>

/* Finds the database remote in ovs-vswitchd's command line (the first
 * argument that is not an option, as ovs-vswitchd itself takes it; default
 * unix:<rundir>/db.sock) and starts reading the settings. */
void vhostmq_settings_init(int argc, char *argv[]);

/* Reads updates.  Returns true if a setting changed since the last call. */
bool vhostmq_settings_run(void);
void vhostmq_settings_wait(void);

/* The directory for server ports' sockets.  Never null. */
const char *vhostmq_sock_dir(void);

/* vhost-sock-owner and vhost-sock-mode: whether either is set, and a number
 * that changes whenever either changes (to apply them once per change). */
bool vhostmq_sock_perms_wanted(void);
uint64_t vhostmq_sock_perms_seq(void);

/* Applies vhost-sock-owner and vhost-sock-mode, if set, to the file that
 * 'fd' refers to: a socket file opened with O_PATH | O_NOFOLLOW, which the
 * caller checked is the socket it means ('path' only names it in logs).
 * Returns 0 or an errno value. */
int vhostmq_apply_sock_perms(int fd, const char *path);

#endif /* vhostmq-settings.h */
