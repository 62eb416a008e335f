/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest-conn: a scripted front-end's vhost-user connection (see
 * vguest-conn.h). */

#define _GNU_SOURCE
#include "vguest-conn.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost-conn.h"
#include "virtio.h"

void
vg_conn_init(struct vg_conn *c, const char *name)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->sock = -1;
    c->answer_ms = 20000;       /* A sanitized switch on a loaded machine. */
}

void
vg_conn_close(struct vg_conn *c)
{
    if (c->sock >= 0) {
        close(c->sock);
        c->sock = -1;
    }
    c->protocol_features = 0;
}

void
vg_conn_fail(const struct vg_conn *c, const char *format, ...)
{
    char msg[512];
    va_list args;

    va_start(args, format);
    vsnprintf(msg, sizeof msg, format, args);
    va_end(args);
    if (c->fail) {
        c->fail(c, msg);
    } else {
        printf("FAIL: %s: %s\n", c->name, msg);
    }
    fflush(stdout);
    fflush(stderr);
    exit(1);
}

int
vg_conn_connect(struct vg_conn *c, const char *path, int timeout_ms)
{
    struct sockaddr_un sun;
    int dirfd, error;

    /* (A path too long for sun_path goes through its directory.) */
    error = vhost_conn_sockaddr(path, &sun, &dirfd);
    if (error) {
        vg_conn_fail(c, "socket path %s: %s", path, strerror(error));
    }
    for (int waited = 0; ; waited += 10) {
        c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->sock < 0) {
            vg_conn_fail(c, "socket: %s", strerror(errno));
        }
        if (!connect(c->sock, (struct sockaddr *) &sun, sizeof sun)) {
            error = 0;
            break;
        }
        error = errno;
        close(c->sock);
        c->sock = -1;
        if (waited >= timeout_ms) {
            break;
        }
        usleep(10 * 1000);
    }
    if (dirfd >= 0) {
        close(dirfd);
    }
    return error;
}

void
vg_conn_send_raw(struct vg_conn *c, const void *buf, size_t len)
{
    if (write(c->sock, buf, len) != (ssize_t) len) {
        vg_conn_fail(c, "write: %s", strerror(errno));
    }
}

void
vg_conn_send(struct vg_conn *c, uint32_t request, uint32_t flags,
             const void *payload, uint32_t size, const int *fds, int n_fds)
{
    struct vhost_user_msg msg;
    int error;

    memset(&msg, 0, sizeof msg);
    msg.request = request;
    msg.flags = flags;
    msg.size = size;
    if (size) {
        memcpy(&msg.payload, payload, size);
    }
    for (int i = 0; i < n_fds; i++) {
        msg.fds[i] = fds[i];
    }
    msg.n_fds = n_fds;
    error = vhost_conn_send(c->sock, &msg);
    if (error) {
        vg_conn_fail(c, "send %s: %s", vhost_user_request_name(request),
                     strerror(error));
    }
}

int
vg_conn_read_answer(struct vg_conn *c, struct vhost_user_msg *reply)
{
    uint8_t buf[VHOST_USER_HDR_SIZE + sizeof reply->payload];
    struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
    size_t have = 0, need = VHOST_USER_HDR_SIZE;

    memset(reply, 0, sizeof *reply);
    while (have < need) {
        ssize_t n;

        if (poll(&pfd, 1, c->answer_ms) != 1) {
            vg_conn_fail(c, "no answer from the switch in %d ms",
                         c->answer_ms);
        }
        n = read(c->sock, buf + have, need - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        have += n;
        if (have == VHOST_USER_HDR_SIZE) {
            memcpy(&reply->request, buf, 4);
            memcpy(&reply->flags, buf + 4, 4);
            memcpy(&reply->size, buf + 8, 4);
            if (reply->size > sizeof reply->payload) {
                vg_conn_fail(c, "reply of %"PRIu32" bytes", reply->size);
            }
            need += reply->size;
        }
    }
    memcpy(&reply->payload, buf + VHOST_USER_HDR_SIZE, reply->size);
    return 0;
}

/* Reads the answer to 'request', which must come. */
static void
read_reply_to(struct vg_conn *c, uint32_t request,
              struct vhost_user_msg *reply)
{
    if (vg_conn_read_answer(c, reply)) {
        vg_conn_fail(c, "switch closed the connection after %s",
                     vhost_user_request_name(request));
    }
    if (reply->request != request
        || !(reply->flags & VHOST_USER_REPLY_FLAG)) {
        vg_conn_fail(c, "bad reply to %s", vhost_user_request_name(request));
    }
}

uint64_t
vg_conn_get_u64(struct vg_conn *c, uint32_t request)
{
    struct vhost_user_msg reply;

    vg_conn_send(c, request, VHOST_USER_VERSION, NULL, 0, NULL, 0);
    read_reply_to(c, request, &reply);
    if (reply.size != 8) {
        vg_conn_fail(c, "reply to %s of %"PRIu32" bytes",
                     vhost_user_request_name(request), reply.size);
    }
    return reply.payload.u64;
}

void
vg_conn_must_ack(struct vg_conn *c, uint32_t request, const void *payload,
                 uint32_t size, const int *fds, int n_fds)
{
    struct vhost_user_msg reply;

    vg_conn_send(c, request, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY,
                 payload, size, fds, n_fds);
    read_reply_to(c, request, &reply);
    if (reply.payload.u64) {
        vg_conn_fail(c, "switch refused %s",
                     vhost_user_request_name(request));
    }
}

void
vg_conn_ack_u64(struct vg_conn *c, uint32_t request, uint64_t value)
{
    vg_conn_must_ack(c, request, &value, sizeof value, NULL, 0);
}

void
vg_conn_ack_state(struct vg_conn *c, uint32_t request, uint32_t index,
                  uint32_t num)
{
    struct vhost_user_vring_state st = { .index = index, .num = num };

    vg_conn_must_ack(c, request, &st, sizeof st, NULL, 0);
}

void
vg_conn_request(struct vg_conn *c, uint32_t request, const void *payload,
                uint32_t size, const int *fds, int n_fds)
{
    if (c->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
        vg_conn_must_ack(c, request, payload, size, fds, n_fds);
    } else {
        vg_conn_send(c, request, VHOST_USER_VERSION, payload, size, fds,
                     n_fds);
    }
}

void
vg_conn_request_u64(struct vg_conn *c, uint32_t request, uint64_t value)
{
    vg_conn_request(c, request, &value, sizeof value, NULL, 0);
}

void
vg_conn_request_state(struct vg_conn *c, uint32_t request, uint32_t index,
                      uint32_t num)
{
    struct vhost_user_vring_state st = { .index = index, .num = num };

    vg_conn_request(c, request, &st, sizeof st, NULL, 0);
}

uint64_t
vg_conn_start(struct vg_conn *c, uint64_t protocol, unsigned int *max_pairs)
{
    uint64_t features = vg_conn_get_u64(c, VHOST_USER_GET_FEATURES);

    if (!(features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
        vg_conn_fail(c, "no protocol features offered");
    }
    protocol &= vg_conn_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES);
    /* SET_PROTOCOL_FEATURES itself goes before REPLY_ACK is on. */
    c->protocol_features = 0;
    vg_conn_send(c, VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_VERSION,
                 &protocol, sizeof protocol, NULL, 0);
    c->protocol_features = protocol;
    *max_pairs = (protocol & (1ull << VHOST_USER_PROTOCOL_F_MQ)
                  ? vg_conn_get_u64(c, VHOST_USER_GET_QUEUE_NUM) : 0);
    return features;
}
