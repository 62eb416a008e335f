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

#include "vhost-device.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
dev_log(struct vhost_device *dev, enum vhost_log_level level,
        const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void
dev_log(struct vhost_device *dev, enum vhost_log_level level,
        const char *format, ...)
{
    char msg[256];
    va_list args;
    int n;

    n = snprintf(msg, sizeof msg, "%s: ", dev->name);
    va_start(args, format);
    vsnprintf(msg + n, sizeof msg - n, format, args);
    va_end(args);
    if (level >= VHOST_LOG_WARN) {
        snprintf(dev->last_error, sizeof dev->last_error, "%s", msg + n);
    }
    if (dev->ops && dev->ops->log) {
        dev->ops->log(dev->aux, level, msg);
    }
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static bool
has_protocol_feature(const struct vhost_device *dev, int bit)
{
    return dev->protocol_features & (1ull << bit);
}

void
vhost_device_init(struct vhost_device *dev, const char *name,
                  unsigned int max_queue_pairs,
                  const struct vhost_device_ops *ops, void *aux)
{
    memset(dev, 0, sizeof *dev);
    dev->name = name;
    dev->ops = ops;
    dev->aux = aux;
    if (!max_queue_pairs || max_queue_pairs > VHOST_USER_MAX_QUEUE_PAIRS) {
        max_queue_pairs = VHOST_USER_MAX_QUEUE_PAIRS;
    }
    dev->max_queue_pairs = max_queue_pairs;
    dev->max_vrings = 2 * max_queue_pairs;
    dev->max_mem_bytes = VHOST_DEVICE_DEFAULT_MAX_MEM;
    dev->vrings = calloc(dev->max_vrings, sizeof *dev->vrings);
    if (!dev->vrings) {
        abort();
    }
    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        vr->kick_fd = vr->call_fd = vr->err_fd = -1;
    }
}

static void
synchronize(struct vhost_device *dev)
{
    if (dev->ops && dev->ops->synchronize) {
        dev->ops->synchronize(dev->aux);
    }
}

static void
close_fd_cb(void *fd_)
{
    int *fd = fd_;

    close(*fd);
    free(fd);
}

/* Closes 'fd', which the data path may be using, once it no longer can:
 * through ops->defer if there is one, else after a synchronize. */
static void
close_after_data_path(struct vhost_device *dev, int fd)
{
    int *p;

    if (fd < 0) {
        return;
    }
    if (dev->ops && dev->ops->defer && (p = malloc(sizeof *p))) {
        *p = fd;
        dev->ops->defer(dev->aux, close_fd_cb, p);
    } else {
        synchronize(dev);
        close(fd);
    }
}

static void
changed(struct vhost_device *dev)
{
    if (dev->ops && dev->ops->changed) {
        dev->ops->changed(dev->aux);
    }
}

/* Takes the live virtqs of the vrings in [first, last) away from the data
 * path into 'old' and returns how many there were.  With 'wait', waits
 * until no thread uses them and saves their last avail index in 'base'
 * for a restart; without, the caller must free them only after a grace
 * period (ops->defer). */
static int
unpublish_range(struct vhost_device *dev, unsigned int first,
                unsigned int last, struct virtq **old, bool wait)
{
    int n = 0;

    for (unsigned int i = first; i < last; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        old[i] = vr->live;
        if (old[i]) {
            __atomic_store_n(&vr->live, NULL, __ATOMIC_RELEASE);
            n++;
        }
    }
    if (n && wait) {
        synchronize(dev);
        for (unsigned int i = first; i < last; i++) {
            if (old[i]) {
                dev->vrings[i].base = virtq_last_avail(old[i]);
            }
        }
    }
    return n;
}

/* Builds and publishes the live virtq of started vring 'i'.  Returns false,
 * and leaves the ring stopped, if its configuration does not fit guest
 * memory. */
static bool
publish(struct vhost_device *dev, unsigned int i)
{
    struct vhost_vring *vr = &dev->vrings[i];
    enum virtq_init_error error;
    struct virtq *vq;

    if (!dev->mem || !vr->num || !vr->addr_set) {
        dev->errors.vring++;
        dev_log(dev, VHOST_LOG_WARN, "vring %u started without %s", i,
                !dev->mem ? "a memory table"
                : !vr->num ? "a size" : "addresses");
        return false;
    }
    vq = malloc(sizeof *vq);
    if (!vq) {
        return false;
    }
    error = virtq_init(vq, dev->mem, vr->num, vr->addr.desc_user_addr,
                       vr->addr.avail_user_addr, vr->addr.used_user_addr,
                       vr->base, dev->features, vr->call_fd, &vr->stats);
    if (error) {
        free(vq);
        dev->errors.vring++;
        dev_log(dev, VHOST_LOG_WARN, "vring %u cannot start: %s", i,
                virtq_init_error_name(error));
        return false;
    }
    if (virtq_last_avail(vq) != vr->base) {
        dev_log(dev, VHOST_LOG_INFO, "vring %u resumes at used index %u, "
                "not base %u: in-flight buffers are taken again", i,
                virtq_last_avail(vq), vr->base);
    }
    __atomic_store_n(&vr->live, vq, __ATOMIC_RELEASE);
    return true;
}

/* Takes vrings [first, last) from the data path and starts again those
 * that were running, on the device's current memory, features and fds. */
static void
restart_range(struct vhost_device *dev, unsigned int first, unsigned int last)
{
    struct virtq **old = calloc(dev->max_vrings, sizeof *old);

    if (!old) {
        abort();
    }
    unpublish_range(dev, first, last, old, true);
    for (unsigned int i = first; i < last; i++) {
        free(old[i]);
        if (dev->vrings[i].started && !publish(dev, i)) {
            dev->vrings[i].started = false;
        }
    }
    free(old);
}

/* Stops vring 'i' for good (GET_VRING_BASE, reset, disconnect). */
static void
stop_vring(struct vhost_device *dev, unsigned int i)
{
    struct virtq **old = calloc(dev->max_vrings, sizeof *old);

    if (!old) {
        abort();
    }
    unpublish_range(dev, i, i + 1, old, true);
    free(old[i]);
    free(old);
    dev->vrings[i].started = false;
}

static void
stop_all(struct vhost_device *dev)
{
    struct virtq **old = calloc(dev->max_vrings, sizeof *old);

    if (!old) {
        abort();
    }
    unpublish_range(dev, 0, dev->max_vrings, old, true);
    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        free(old[i]);
        dev->vrings[i].started = false;
    }
    free(old);
}

/* What a disconnected front-end's device leaves for the data path to let
 * go of, one entry per vring (NULL or -1 where none): freed by ops->defer's
 * callback. */
struct retired {
    unsigned int n;
    struct virtq **vqs;
    int *call_fds;
    struct vhost_mem *mem;
};

static void
retired_free(void *r_)
{
    struct retired *r = r_;

    for (unsigned int i = 0; i < r->n; i++) {
        free(r->vqs[i]);
        if (r->call_fds[i] >= 0) {
            close(r->call_fds[i]);
        }
    }
    vhost_mem_free(r->mem);
    free(r->vqs);
    free(r->call_fds);
    free(r);
}

/* Stops every vring, like stop_all(), but without waiting for the data
 * path: the live virtqs, the call fds (the data path notifies through them)
 * and the memory table go to ops->defer.  A host whose front-ends all go
 * at once (a crash, a reboot) then costs the switch's control thread no
 * grace period per port. */
static void
retire_all(struct vhost_device *dev)
{
    struct retired *r = calloc(1, sizeof *r);

    if (r) {
        r->n = dev->max_vrings;
        r->vqs = calloc(r->n, sizeof *r->vqs);
        r->call_fds = calloc(r->n, sizeof *r->call_fds);
    }
    if (!r || !r->vqs || !r->call_fds) {
        abort();
    }
    unpublish_range(dev, 0, r->n, r->vqs, false);
    for (unsigned int i = 0; i < r->n; i++) {
        dev->vrings[i].started = false;
        r->call_fds[i] = dev->vrings[i].call_fd;
        dev->vrings[i].call_fd = -1;
    }
    r->mem = dev->mem;
    dev->mem = NULL;
    dev->ops->defer(dev->aux, retired_free, r);
}

/* Back to the state of a new connection; counters stay.  'may_defer':
 * the device stays (its vrings' counters, which a late data-path thread
 * may still add to, live on), so the data path need not be waited for. */
static void
reset_device(struct vhost_device *dev, bool may_defer)
{
    if (may_defer && dev->ops && dev->ops->defer) {
        retire_all(dev);
    } else {
        stop_all(dev);
    }
    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        close_fd(&vr->kick_fd);
        close_fd(&vr->call_fd);
        close_fd(&vr->err_fd);
        vr->num = 0;
        vr->addr_set = false;
        vr->base = 0;
        vr->configured = false;
        __atomic_store_n(&vr->enabled, false, __ATOMIC_RELAXED);
    }
    vhost_mem_free(dev->mem);
    dev->mem = NULL;
    dev->owner = false;
    dev->features_set = false;
    dev->features = 0;
    dev->protocol_features = 0;
    dev->status = 0;
    dev->mtu = 0;
    __atomic_store_n(&dev->rarp_pending, false, __ATOMIC_RELAXED);
}

void
vhost_device_disconnect(struct vhost_device *dev)
{
    reset_device(dev, true);
    changed(dev);
}

void
vhost_device_destroy(struct vhost_device *dev)
{
    reset_device(dev, false);
    free(dev->vrings);
    dev->vrings = NULL;
}

bool
vhost_device_is_ready(const struct vhost_device *dev)
{
    if (!dev->features_set || !dev->mem || dev->max_vrings < 2
        || !dev->vrings[0].live || !dev->vrings[1].live) {
        return false;
    }
    if (has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_STATUS)
        && !(dev->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return false;
    }
    return true;
}

bool
vhost_device_memory_faulted(struct vhost_device *dev)
{
    unsigned int i;

    if (!vhost_mem_faulted(dev->mem, &i)) {
        return false;
    }
    dev->errors.memory_faults++;
    dev_log(dev, VHOST_LOG_WARN, "guest memory region %u (guest-physical "
            "0x%"PRIx64", %"PRIu64" bytes) shrank under the switch: "
            "disconnecting", i, dev->mem->regions[i].gpa,
            dev->mem->regions[i].size);
    return true;
}

uint64_t
vhost_device_n_errors(const struct vhost_device *dev)
{
    uint64_t n = dev->errors.state + dev->errors.memory + dev->errors.vring;

    for (int i = 0; i < VHOST_USER_WIRE_N_ERRORS; i++) {
        n += dev->errors.wire[i];
    }
    return n;
}

unsigned int
vhost_device_n_queue_pairs(const struct vhost_device *dev)
{
    unsigned int n = 0;

    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        if (dev->vrings[i].configured) {
            n = i / 2 + 1;
        }
    }
    return n;
}

/* Installs 'mem' as the device's memory table, restarting live rings on
 * it, and frees the old table. */
static void
swap_mem(struct vhost_device *dev, struct vhost_mem *mem)
{
    struct virtq **old = calloc(dev->max_vrings, sizeof *old);
    struct vhost_mem *old_mem = dev->mem;

    if (!old) {
        abort();
    }
    /* After this, no data-path thread holds a pointer into 'old_mem'. */
    unpublish_range(dev, 0, dev->max_vrings, old, true);
    dev->mem = mem;
    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        free(old[i]);
        if (dev->vrings[i].started && !publish(dev, i)) {
            dev->vrings[i].started = false;
        }
    }
    free(old);
    vhost_mem_free(old_mem);
    dev_log(dev, VHOST_LOG_INFO, "guest memory: %u region(s), %llu MiB",
            mem ? mem->n_regions : 0,
            (unsigned long long) (vhost_mem_mapped_bytes(mem) >> 20));
}

/* Refuses 'msg' as wrong for the device's state. */
static bool
refuse(struct vhost_device *dev, const struct vhost_user_msg *msg,
       const char *why)
{
    dev->errors.state++;
    dev_log(dev, VHOST_LOG_WARN, "%s refused: %s",
            vhost_user_request_name(msg->request), why);
    return false;
}

static bool
set_features(struct vhost_device *dev, struct vhost_user_msg *msg)
{
    uint64_t features = msg->payload.u64;

    if (features & ~VHOST_DEVICE_FEATURES) {
        return refuse(dev, msg, "features not offered");
    }
    if (dev->features_set && dev->features == features) {
        return true;            /* Repeated by an old front-end. */
    }
    dev->features = features;
    dev->features_set = true;
    if (!(features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
        /* Without protocol features rings are enabled from the start. */
        for (unsigned int i = 0; i < dev->max_vrings; i++) {
            __atomic_store_n(&dev->vrings[i].enabled, true,
                             __ATOMIC_RELEASE);
        }
    }
    /* Header size and ring options come from the features. */
    restart_range(dev, 0, dev->max_vrings);
    changed(dev);
    return true;
}

/* Installs the table a memory message built ('error' says whether it
 * could), or counts and logs why not. */
static bool
finish_mem_change(struct vhost_device *dev, enum vhost_mem_error error,
                  struct vhost_mem *mem, const struct vhost_user_msg *msg)
{
    if (error) {
        dev->errors.memory++;
        if (error == VHOST_MEM_OVER_LIMIT) {
            dev_log(dev, VHOST_LOG_WARN, "%s refused: guest memory would "
                    "take more than the port's limit of %"PRIu64" MiB",
                    vhost_user_request_name(msg->request),
                    dev->max_mem_bytes >> 20);
            return false;
        }
        dev_log(dev, VHOST_LOG_WARN, "%s refused: %s",
                vhost_user_request_name(msg->request),
                vhost_mem_error_name(error));
        return false;
    }
    swap_mem(dev, mem);
    changed(dev);
    return true;
}

static bool
set_mem_table(struct vhost_device *dev, struct vhost_user_msg *msg)
{
    enum vhost_mem_error error;
    struct vhost_mem *mem;

    if (vhost_mem_same_table(dev->mem, msg)) {
        /* An old front-end repeats the table per queue pair. */
        vhost_user_msg_close_fds(msg);
        return true;
    }
    error = vhost_mem_from_table(msg, dev->max_mem_bytes, &mem);
    return finish_mem_change(dev, error, mem, msg);
}

static bool
change_mem_slot(struct vhost_device *dev, struct vhost_user_msg *msg)
{
    enum vhost_mem_error error;
    struct vhost_mem *mem;

    if (!has_protocol_feature(dev,
                              VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
        vhost_user_msg_close_fds(msg);
        return refuse(dev, msg, "CONFIGURE_MEM_SLOTS not negotiated");
    }
    if (msg->request == VHOST_USER_ADD_MEM_REG) {
        error = vhost_mem_add_region(dev->mem, msg, dev->max_mem_bytes,
                                     &mem);
    } else {
        error = vhost_mem_remove_region(dev->mem,
                                        &msg->payload.mem_single.region,
                                        &mem);
    }
    if (error == VHOST_MEM_DUPLICATE || error == VHOST_MEM_NOT_FOUND) {
        /* QEMU adds and removes each region once per queue pair: the same
         * region again, or one already gone, changes nothing. */
        dev_log(dev, VHOST_LOG_DBG, "%s: %s; nothing to do",
                vhost_user_request_name(msg->request),
                vhost_mem_error_name(error));
        return true;
    }
    return finish_mem_change(dev, error, mem, msg);
}

/* SET_VRING_KICK, _CALL, _ERR: the fd (if any) replaces the vring's. */
static bool
set_vring_fd(struct vhost_device *dev, struct vhost_user_msg *msg)
{
    unsigned int i = vhost_user_msg_vring_index(msg);
    struct vhost_vring *vr = &dev->vrings[i];
    int fd = msg->n_fds ? msg->fds[0] : -1;

    msg->n_fds = 0;             /* Now owned here. */
    vr->configured = true;

    switch (msg->request) {
    case VHOST_USER_SET_VRING_KICK:
        /* The kick starts the ring.  The data path polls, so the fd is
         * kept only to be closed later. */
        close_fd(&vr->kick_fd);
        vr->kick_fd = fd;
        if (vr->started) {
            return true;
        }
        if (!publish(dev, i)) {
            return false;
        }
        vr->started = true;
        changed(dev);
        return true;

    case VHOST_USER_SET_VRING_CALL: {
        int old = vr->call_fd;

        vr->call_fd = fd;
        if (vr->live) {
            /* Front-ends send this right after the kick that started the
             * ring: swap the fd under the running ring instead of
             * restarting it (which waits for the data path).  The data
             * path may still be writing to the old fd a little while. */
            __atomic_store_n(&vr->live->call_fd, fd, __ATOMIC_RELAXED);
            close_after_data_path(dev, old);
        } else if (old >= 0) {
            close(old);
        }
        return true;
    }

    case VHOST_USER_SET_VRING_ERR:
        close_fd(&vr->err_fd);
        vr->err_fd = fd;
        return true;

    default:
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
}

static bool
set_vring_enable(struct vhost_device *dev, struct vhost_user_msg *msg)
{
    unsigned int i = msg->payload.state.index;
    uint32_t enable = msg->payload.state.num;

    if (enable > 1) {
        return refuse(dev, msg, "enable must be 0 or 1");
    }
    dev->vrings[i].configured = true;
    if (dev->vrings[i].enabled != !!enable) {
        /* Release: a data path that sees the ring enabled sees what the
         * main thread did to the ring before (discarding a disabled guest
         * TX ring moves its indexes). */
        __atomic_store_n(&dev->vrings[i].enabled, !!enable,
                         __ATOMIC_RELEASE);
        if (!enable && dev->vrings[i].live) {
            /* Once the front-end hears back, nothing more goes into the
             * ring: wait out a data path that read the flag before. */
            synchronize(dev);
        }
        dev_log(dev, VHOST_LOG_DBG, "vring %u %s", i,
                enable ? "enabled" : "disabled");
        changed(dev);
    }
    return true;
}

/* Handles a validated message; returns false if it was refused. */
static bool
apply(struct vhost_device *dev, struct vhost_user_msg *msg,
      struct vhost_user_msg *reply, bool *has_reply)
{
    int vring = vhost_user_msg_vring_index(msg);
    struct vhost_vring *vr = vring >= 0 ? &dev->vrings[vring] : NULL;

    switch (msg->request) {
    case VHOST_USER_GET_FEATURES:
        vhost_user_msg_make_reply_u64(reply, VHOST_DEVICE_FEATURES);
        *has_reply = true;
        return true;

    case VHOST_USER_SET_FEATURES:
        return set_features(dev, msg);

    case VHOST_USER_SET_OWNER:
        dev->owner = true;
        return true;

    case VHOST_USER_RESET_OWNER:
    case VHOST_USER_RESET_DEVICE:
        reset_device(dev, true);
        changed(dev);
        return true;

    case VHOST_USER_SET_MEM_TABLE:
        return set_mem_table(dev, msg);

    case VHOST_USER_GET_PROTOCOL_FEATURES:
        vhost_user_msg_make_reply_u64(reply, VHOST_DEVICE_PROTOCOL_FEATURES);
        *has_reply = true;
        return true;

    case VHOST_USER_SET_PROTOCOL_FEATURES:
        if (msg->payload.u64 & ~VHOST_DEVICE_PROTOCOL_FEATURES) {
            return refuse(dev, msg, "protocol features not offered");
        }
        dev->protocol_features = msg->payload.u64;
        return true;

    case VHOST_USER_GET_QUEUE_NUM:
        vhost_user_msg_make_reply_u64(reply, dev->max_queue_pairs);
        *has_reply = true;
        return true;

    case VHOST_USER_SET_VRING_NUM:
        if (vr->started) {
            return refuse(dev, msg, "ring is running");
        }
        if (!msg->payload.state.num || msg->payload.state.num > VIRTQ_MAX_SIZE
            || msg->payload.state.num & (msg->payload.state.num - 1)) {
            return refuse(dev, msg, "ring size not a power of 2 up to 32768");
        }
        vr->num = msg->payload.state.num;
        vr->configured = true;
        changed(dev);
        return true;

    case VHOST_USER_SET_VRING_ADDR:
        vr->addr = msg->payload.addr;
        vr->addr_set = true;
        vr->configured = true;
        if (vr->started) {
            restart_range(dev, vring, vring + 1);
        }
        return true;

    case VHOST_USER_SET_VRING_BASE:
        if (vr->started) {
            return refuse(dev, msg, "ring is running");
        }
        if (msg->payload.state.num > UINT16_MAX) {
            return refuse(dev, msg, "base beyond 16 bits");
        }
        vr->base = msg->payload.state.num;
        return true;

    case VHOST_USER_GET_VRING_BASE: {
        bool was_ready = vhost_device_is_ready(dev);

        stop_vring(dev, vring);
        vhost_user_msg_make_reply_state(reply, vring, vr->base);
        *has_reply = true;
        if (was_ready != vhost_device_is_ready(dev)) {
            changed(dev);
        }
        return true;
    }

    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        return set_vring_fd(dev, msg);

    case VHOST_USER_SET_VRING_ENABLE:
        return set_vring_enable(dev, msg);

    case VHOST_USER_SEND_RARP:
        if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_RARP)) {
            return refuse(dev, msg, "RARP not negotiated");
        }
        memcpy(dev->rarp_mac, &msg->payload.u64, sizeof dev->rarp_mac);
        __atomic_store_n(&dev->rarp_pending, true, __ATOMIC_RELEASE);
        return true;

    case VHOST_USER_NET_SET_MTU:
        if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_NET_MTU)) {
            return refuse(dev, msg, "NET_MTU not negotiated");
        }
        if (msg->payload.u64 < VHOST_USER_MIN_MTU
            || msg->payload.u64 > VHOST_USER_MAX_MTU) {
            return refuse(dev, msg, "MTU out of range");
        }
        dev->mtu = msg->payload.u64;
        changed(dev);
        return true;

    case VHOST_USER_GET_MAX_MEM_SLOTS:
        vhost_user_msg_make_reply_u64(reply, VHOST_MEM_MAX_SLOTS);
        *has_reply = true;
        return true;

    case VHOST_USER_ADD_MEM_REG:
    case VHOST_USER_REM_MEM_REG:
        return change_mem_slot(dev, msg);

    case VHOST_USER_SET_STATUS:
        if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_STATUS)) {
            return refuse(dev, msg, "STATUS not negotiated");
        }
        if (msg->payload.u64 > UINT8_MAX) {
            return refuse(dev, msg, "status beyond 8 bits");
        }
        if (dev->status != msg->payload.u64) {
            dev->status = msg->payload.u64;
            changed(dev);
        }
        return true;

    case VHOST_USER_GET_STATUS:
        if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_STATUS)) {
            return refuse(dev, msg, "STATUS not negotiated");
        }
        vhost_user_msg_make_reply_u64(reply, dev->status);
        *has_reply = true;
        return true;

    default:
        /* Requests of features never offered: logging, back-end channel,
         * config space, inflight tracking. */
        return refuse(dev, msg, "needs a feature this port does not offer");
    }
}

enum vhost_device_result
vhost_device_handle(struct vhost_device *dev, struct vhost_user_msg *msg,
                    struct vhost_user_msg *reply, bool *has_reply)
{
    enum vhost_user_wire_error error;
    const char *detail;
    bool need_ack;
    bool ok;

    *has_reply = false;
    dev->n_messages++;
    memset(reply, 0, sizeof *reply);
    reply->request = msg->request;

    dev_log(dev, VHOST_LOG_DBG, "%s (%"PRIu32"), flags 0x%"PRIx32", %"
            PRIu32" byte(s), %d fd(s)", vhost_user_request_name(msg->request),
            msg->request, msg->flags, msg->size, msg->n_fds);
    error = vhost_user_validate(msg, dev->max_vrings, &detail);
    if (error) {
        dev->errors.wire[error]++;
        dev_log(dev, VHOST_LOG_WARN, "%s (%"PRIu32") refused: %s%s%s",
                vhost_user_request_name(msg->request), msg->request,
                vhost_user_wire_error_name(error), *detail ? ": " : "",
                detail);
        ok = false;
    } else {
        ok = apply(dev, msg, reply, has_reply);
    }
    vhost_user_msg_close_fds(msg);

    need_ack = (msg->flags & VHOST_USER_NEED_REPLY)
               && has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_REPLY_ACK)
               && !vhost_user_request_has_reply(msg->request);
    if (need_ack) {
        vhost_user_msg_make_reply_u64(reply, ok ? 0 : 1);
        *has_reply = true;
        return VHOST_DEVICE_OK;
    }
    if (!ok) {
        /* The front-end cannot learn of the failure, or waits for a reply
         * that cannot be given: the spec leaves no way to go on. */
        *has_reply = false;
        return VHOST_DEVICE_DISCONNECT;
    }
    return VHOST_DEVICE_OK;
}
