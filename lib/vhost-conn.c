/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Connection framing: whole vhost-user messages, with their fds, in and out
 * of a non-blocking socket. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE            /* O_PATH. */
#endif
#include "vhost-conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void
vhost_conn_reader_init(struct vhost_conn_reader *r)
{
    memset(r, 0, sizeof *r);
}

void
vhost_conn_reader_reset(struct vhost_conn_reader *r)
{
    uint64_t dropped = r->fds_dropped;

    vhost_user_msg_close_fds(&r->msg);
    vhost_conn_reader_init(r);
    r->fds_dropped = dropped;
}

/* Takes the descriptors of control message 'cmsg' into the message being
 * read; closes those beyond the limit. */
static void
take_fds(struct vhost_conn_reader *r, struct msghdr *mh)
{
    struct cmsghdr *cmsg;

    for (cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
        size_t n;

        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS
            || cmsg->cmsg_len < CMSG_LEN(0)) {
            continue;
        }
        n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof fd, sizeof fd);
            if (r->msg.n_fds < VHOST_USER_MAX_FDS) {
                r->msg.fds[r->msg.n_fds++] = fd;
            } else {
                close(fd);
                r->fds_dropped++;
            }
        }
    }
}

/* Reads at most 'len' bytes into 'buf'.  Returns bytes read, 0 at EOF, or
 * -errno. */
static ssize_t
read_piece(int fd, struct vhost_conn_reader *r, void *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr mh;
    ssize_t n;

    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.buf;
    mh.msg_controllen = sizeof control.buf;

    do {
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    take_fds(r, &mh);
    if (mh.msg_flags & MSG_CTRUNC) {
        /* The kernel closed descriptors that did not fit. */
        r->fds_dropped++;
    }
    return n;
}

int
vhost_conn_recv(int fd, struct vhost_conn_reader *r,
                struct vhost_user_msg *msg,
                enum vhost_user_wire_error *wire_error)
{
    ssize_t n;

    *wire_error = VHOST_USER_WIRE_OK;
    while (r->hdr_have < VHOST_USER_HDR_SIZE) {
        n = read_piece(fd, r, r->hdr + r->hdr_have,
                       VHOST_USER_HDR_SIZE - r->hdr_have);
        if (n <= 0) {
            return n == 0 ? EOF : -n;
        }
        r->hdr_have += n;
        if (r->hdr_have == VHOST_USER_HDR_SIZE) {
            int n_fds = r->msg.n_fds;

            *wire_error = vhost_user_decode_header(r->hdr, &r->msg);
            r->msg.n_fds = n_fds;
            if (*wire_error) {
                vhost_conn_reader_reset(r);
                return EPROTO;
            }
        }
    }
    while (r->payload_have < r->msg.size) {
        n = read_piece(fd, r, (uint8_t *) &r->msg.payload + r->payload_have,
                       r->msg.size - r->payload_have);
        if (n <= 0) {
            return n == 0 ? EOF : -n;
        }
        r->payload_have += n;
    }

    *msg = r->msg;
    /* The fds now belong to 'msg'. */
    r->msg.n_fds = 0;
    vhost_conn_reader_reset(r);
    return 0;
}

int
vhost_conn_send(int fd, const struct vhost_user_msg *msg)
{
    uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD];
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov;
    struct msghdr mh;
    size_t len;
    ssize_t n;

    len = vhost_user_encode(msg, buf, sizeof buf);
    if (!len) {
        return EINVAL;
    }
    iov.iov_base = buf;
    iov.iov_len = len;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (msg->n_fds > 0 && msg->n_fds <= VHOST_USER_MAX_FDS) {
        struct cmsghdr *cmsg;

        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE(msg->n_fds * sizeof(int));
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(msg->n_fds * sizeof(int));
        memcpy(CMSG_DATA(cmsg), msg->fds, msg->n_fds * sizeof(int));
    }
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno;
    }
    return (size_t) n == len ? 0 : EAGAIN;
}

int
vhost_conn_sockaddr(const char *path, struct sockaddr_un *sun, int *dirfd)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int n;

    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    *dirfd = -1;
    if (strlen(path) < sizeof sun->sun_path) {
        memcpy(sun->sun_path, path, strlen(path));
        return 0;
    }
    if (!slash || !slash[1]) {
        return ENAMETOOLONG;
    }
    dir = slash == path ? strdup("/") : strndup(path, slash - path);
    if (!dir) {
        return ENOMEM;
    }
    *dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (*dirfd < 0) {
        return errno;
    }
    n = snprintf(sun->sun_path, sizeof sun->sun_path, "/proc/self/fd/%d/%s",
                 *dirfd, slash + 1);
    if (n < 0 || (size_t) n >= sizeof sun->sun_path) {
        close(*dirfd);
        *dirfd = -1;
        return ENAMETOOLONG;
    }
    return 0;
}
