/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Connection framing: whole vhost-user messages, with their fds, in and out
 * of a non-blocking socket. */

#ifndef VHOST_CONN_H
#define VHOST_CONN_H 1

/* Message framing on a vhost-user stream socket, non-blocking.
 *
 * A stream socket may deliver a message in pieces, and the descriptors that
 * travel with it arrive with whichever piece the kernel chooses.  A
 * 'struct vhost_conn_reader' accumulates pieces until a whole message (and
 * its fds) is in, so that a slow or silent front-end never blocks the loop
 * that serves every port.
 *
 * No Open vSwitch dependency. */

#include <stddef.h>
#include <stdint.h>

#include "vhost-user-wire.h"

struct vhost_conn_reader {
    uint8_t hdr[VHOST_USER_HDR_SIZE];
    size_t hdr_have;            /* Header bytes in. */
    size_t payload_have;        /* Payload bytes in. */
    struct vhost_user_msg msg;  /* Being assembled. */
    uint64_t fds_dropped;       /* Descriptors beyond VHOST_USER_MAX_FDS. */
};

void vhost_conn_reader_init(struct vhost_conn_reader *);

/* Closes any fds of a partly read message. */
void vhost_conn_reader_reset(struct vhost_conn_reader *);

/* Reads from 'fd' what is there.  Returns:
 *   0        a whole message is in '*msg' (its fds now belong to the caller)
 *   EAGAIN   nothing more to read now
 *   EPROTO   the header is invalid ('*wire_error' says how): the stream has
 *            lost its framing and must be closed
 *   EOF      the peer closed the connection
 *   other    a socket error (errno value). */
int vhost_conn_recv(int fd, struct vhost_conn_reader *,
                    struct vhost_user_msg *msg,
                    enum vhost_user_wire_error *wire_error);

/* Sends 'msg' (header and payload, and 'n_fds' of its fds if any) on 'fd'.
 * Returns 0 or an errno value; a message that does not fit in the socket
 * buffer at once (a front-end that does not read its replies) is an error
 * (EAGAIN). */
int vhost_conn_send(int fd, const struct vhost_user_msg *msg);

struct sockaddr_un;

/* Fills 'sun' with the address of the Unix socket at 'path', for connect()
 * or bind().  A path too long for 'sun_path' is reached through an fd on
 * its directory, as "/proc/self/fd/N/NAME": that fd is stored in '*dirfd'
 * (-1 if none), which the caller closes once the socket is connected or
 * bound.  Returns 0, or ENAMETOOLONG if even the name alone does not fit,
 * or the errno of opening the directory. */
int vhost_conn_sockaddr(const char *path, struct sockaddr_un *sun,
                        int *dirfd);

#endif /* vhost-conn.h */
