/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Endpoints, the connection manager: every port's vhost-user socket,
 * server or client, served by a thread of its own, with reconnect. */

#ifndef VHOST_ENDPOINT_H
#define VHOST_ENDPOINT_H 1

/* The connection manager: every vhost-user socket of every port, listening
 * (server ports) or connecting (client ports), served by one event loop in
 * a thread of its own ("vhost_ctl", started with the first endpoint), as
 * rte_vhost serves OVS-DPDK's: a front-end's handshake is answered message
 * by message as fast as it asks, whatever Open vSwitch's main loop is doing.
 * All I/O is non-blocking: a slow or silent front-end never holds up
 * another port.
 *
 * One mutex, 'vhost_endpoints_mutex', guards every endpoint and whatever the
 * callbacks below touch: the thread holds it while it serves the sockets
 * (so the callbacks run with it held), and any other thread takes it, with
 * vhost_endpoints_lock(), to call the functions below or to read what the
 * callbacks write.  Whoever holds it must never wait for an RCU grace
 * period (the thread may be waiting for the mutex, and is then not
 * quiescent).
 *
 * An endpoint has at most one front-end connected at a time.  A server
 * endpoint accepts the next front-end after the previous one went away; a
 * client endpoint connects, and after a failure or a disconnect tries again
 * every 'reconnect interval'. */

#include <stdbool.h>
#include <stdint.h>

#include "openvswitch/thread.h"
#include "vhost-user-wire.h"

struct smap;

extern struct ovs_mutex vhost_endpoints_mutex;

/* Take and release 'vhost_endpoints_mutex' from a thread other than the
 * connection manager's.  The manager's thread lets a thread waiting here in
 * before it takes the mutex again: a front-end that keeps it busy would
 * otherwise have it release and retake the mutex, over and over, ahead of
 * a waiter that the release had to wake first. */
void vhost_endpoints_lock(void) OVS_ACQUIRES(vhost_endpoints_mutex);
void vhost_endpoints_unlock(void) OVS_RELEASES(vhost_endpoints_mutex);

/* What became of a message. */
enum vhost_endpoint_verdict {
    VHOST_MSG_DONE,             /* Handled: send the reply, if any. */
    VHOST_MSG_DROP,             /* Drop the connection. */
};

/* Each is called by the connection manager's thread, or by the thread that
 * calls vhost_endpoint_create(), _destroy() or _drop(), always with
 * 'vhost_endpoints_mutex' held. */
struct vhost_endpoint_cbs {
    /* A whole message arrived.  Sets '*has_reply' if 'reply' must be sent
     * back. */
    enum vhost_endpoint_verdict (*message)(void *aux,
                                           struct vhost_user_msg *msg,
                                           struct vhost_user_msg *reply,
                                           bool *has_reply);
    /* A front-end connected. */
    void (*connected)(void *aux);
    /* The front-end went away (or was dropped). */
    void (*disconnected)(void *aux);
};

struct vhost_endpoint;

/* Creates an endpoint named 'name' (for logs) on socket 'path'.  A server
 * endpoint replaces a stale socket file at 'path' and listens; a client
 * endpoint starts connecting, and tries again every 'reconnect_msec' (0:
 * the default, 1 s).  Returns null, with a message in '*errp', if
 * the socket cannot be made. */
struct vhost_endpoint *vhost_endpoint_create(
    const char *name, const char *path, bool client, int reconnect_msec,
    const struct vhost_endpoint_cbs *, void *aux, char **errp)
    OVS_REQUIRES(vhost_endpoints_mutex);

/* Closes the endpoint (calling 'disconnected' if a front-end is there) and
 * removes a server's socket file. */
void vhost_endpoint_destroy(struct vhost_endpoint *)
    OVS_REQUIRES(vhost_endpoints_mutex);

/* Applies the switch's socket owner and mode settings to a server
 * endpoint's socket if they changed since they were last applied to it
 * (the thread that changes those settings calls this for every server
 * endpoint).  Never through a symbolic link, and only to the socket file
 * the endpoint made: anything else in its place is left alone, with a
 * warning. */
void vhost_endpoint_apply_perms(struct vhost_endpoint *)
    OVS_REQUIRES(vhost_endpoints_mutex);

/* Drops the current front-end, if any (a client reconnects later). */
void vhost_endpoint_drop(struct vhost_endpoint *, const char *why)
    OVS_REQUIRES(vhost_endpoints_mutex);

bool vhost_endpoint_is_connected(const struct vhost_endpoint *)
    OVS_REQUIRES(vhost_endpoints_mutex);
const char *vhost_endpoint_path(const struct vhost_endpoint *)
    OVS_REQUIRES(vhost_endpoints_mutex);

/* Connections dropped because a message header made no sense (framing
 * lost): protocol errors the device never saw. */
uint64_t vhost_endpoint_n_bad_headers(const struct vhost_endpoint *)
    OVS_REQUIRES(vhost_endpoints_mutex);

/* Adds the endpoint's state to 'smap': connection counts, last error. */
void vhost_endpoint_get_status(const struct vhost_endpoint *, struct smap *)
    OVS_REQUIRES(vhost_endpoints_mutex);

/* Sets how long a client endpoint waits between connection attempts. */
void vhost_endpoint_set_reconnect_interval(struct vhost_endpoint *,
                                           int msec)
    OVS_REQUIRES(vhost_endpoints_mutex);

#endif /* vhost-endpoint.h */
