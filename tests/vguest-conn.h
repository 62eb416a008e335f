/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * vguest-conn: a scripted front-end's vhost-user connection: connecting,
 * requests and their answers, and the start of a negotiation. */

#ifndef VGUEST_CONN_H
#define VGUEST_CONN_H 1

/* The connection part of the scripted guest, shared by every test tool that
 * plays QEMU's part (tests/vhost-frontend.c, and through tests/vguest.h
 * tests/vhost-hostile.c and tests/vhost-swarm.c).
 *
 * Every call that meets something it cannot go on from (a write that fails,
 * a refusal of what must be accepted, no answer in time) ends the run
 * through vg_conn_fail(): by default "FAIL: NAME: ..." on stdout and exit
 * status 1; a tool may set its own 'fail'. */

#include <stdbool.h>
#include <stdint.h>

#include "vhost-user-wire.h"

struct vg_conn {
    const char *name;           /* For messages. */
    int sock;                   /* -1 if not connected. */
    uint64_t protocol_features; /* Acked (vg_conn_start()). */
    int answer_ms;              /* How long an answer may take (5000). */
    /* Prints 'msg' (without the name) and ends the run.  NULL: the
     * default. */
    void (*fail)(const struct vg_conn *, const char *msg);
};

void vg_conn_init(struct vg_conn *, const char *name);
void vg_conn_close(struct vg_conn *);
void vg_conn_fail(const struct vg_conn *, const char *format, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/* Connects to the server socket 'path', trying for up to 'timeout_ms'.
 * Returns 0 or an errno value. */
int vg_conn_connect(struct vg_conn *, const char *path, int timeout_ms);

/* Sends a message as it is (flags as given: no version is added). */
void vg_conn_send(struct vg_conn *, uint32_t request, uint32_t flags,
                  const void *payload, uint32_t size, const int *fds,
                  int n_fds);
void vg_conn_send_raw(struct vg_conn *, const void *buf, size_t len);

/* Reads the switch's next answer: 0 and the reply, or -1 if the switch
 * closed the connection. */
int vg_conn_read_answer(struct vg_conn *, struct vhost_user_msg *reply);

/* A request the switch answers (GET_*): its u64. */
uint64_t vg_conn_get_u64(struct vg_conn *, uint32_t request);

/* A request sent with NEED_REPLY, which the switch must ack with 0. */
void vg_conn_must_ack(struct vg_conn *, uint32_t request,
                      const void *payload, uint32_t size, const int *fds,
                      int n_fds);
void vg_conn_ack_u64(struct vg_conn *, uint32_t request, uint64_t value);
void vg_conn_ack_state(struct vg_conn *, uint32_t request, uint32_t index,
                       uint32_t num);

/* A request as QEMU sends it: with REPLY_ACK acked, as vg_conn_must_ack();
 * without, sent and not answered. */
void vg_conn_request(struct vg_conn *, uint32_t request, const void *payload,
                     uint32_t size, const int *fds, int n_fds);
void vg_conn_request_u64(struct vg_conn *, uint32_t request, uint64_t value);
void vg_conn_request_state(struct vg_conn *, uint32_t request,
                           uint32_t index, uint32_t num);

/* QEMU's start of a negotiation: GET_FEATURES, GET_PROTOCOL_FEATURES,
 * SET_PROTOCOL_FEATURES with those of 'protocol' the switch offers (acked
 * from then on), and GET_QUEUE_NUM if MQ is among them ('*max_pairs', else
 * 0).  Returns the virtio features offered, which must include
 * PROTOCOL_FEATURES.  SET_OWNER and SET_FEATURES are the caller's. */
uint64_t vg_conn_start(struct vg_conn *, uint64_t protocol,
                       unsigned int *max_pairs);

#endif /* vguest-conn.h */
