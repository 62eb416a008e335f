/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The vhost-user device state machine: one handler per request, and rings
 * taken from and given back to the data path. */

#include "vhost-device.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost-notify.h"

#define UNUSED __attribute__((unused))

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
    dev->max_vrings_allocated = dev->max_vrings;
    dev->max_mem_bytes = VHOST_DEVICE_DEFAULT_MAX_MEM;
    dev->offered = VHOST_DEVICE_FEATURES;
    dev->log_fd = -1;
    dev->vrings = calloc(dev->max_vrings_allocated, sizeof *dev->vrings);
    if (!dev->vrings) {
        abort();
    }
    for (unsigned int i = 0; i < dev->max_vrings_allocated; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        vr->kick_fd = vr->call_fd = vr->err_fd = -1;
    }
}

void
vhost_device_offer_offloads(struct vhost_device *dev, bool offloads)
{
    dev->offered = (offloads
                    ? VHOST_DEVICE_FEATURES | VHOST_DEVICE_OFFLOAD_FEATURES
                    : VHOST_DEVICE_FEATURES);
}

void
vhost_device_set_limits(struct vhost_device *dev,
                        unsigned int max_queue_pairs, uint64_t max_mem_bytes)
{
    /* 'vrings' was sized at creation. */
    unsigned int created = dev->max_vrings_allocated / 2;

    if (!max_queue_pairs || max_queue_pairs > created) {
        max_queue_pairs = created;
    }
    dev->max_queue_pairs = max_queue_pairs;
    dev->max_vrings = 2 * max_queue_pairs;
    dev->max_mem_bytes = max_mem_bytes;
}

bool
vhost_device_take_rarp(struct vhost_device *dev, uint8_t mac[6])
{
    uint64_t rarp = __atomic_load_n(&dev->rarp, __ATOMIC_RELAXED);

    if (rarp) {
        rarp = __atomic_exchange_n(&dev->rarp, 0, __ATOMIC_RELAXED);
    }
    if (!rarp) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = rarp >> (8 * i);
    }
    return true;
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
    if (dev->ops && dev->ops->defer) {
        p = malloc(sizeof *p);
        if (!p) {
            abort();
        }
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

/* Whether the guest's rings are packed. */
static bool
packed(const struct vhost_device *dev)
{
    return dev->features & (1ull << VIRTIO_F_RING_PACKED);
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
    /* A packed ring resumes where the guest's used descriptors end, as a
     * split ring does (see virtq_init()): what the front-end says it is,
     * if it says (QEMU does, in the high half of the base). */
    uint16_t base = (packed(dev) && vr->used_base ? vr->used_base
                     : vr->base);
    error = virtq_init(vq, dev->mem, vr->num, vr->addr.desc_user_addr,
                       vr->addr.avail_user_addr, vr->addr.used_user_addr,
                       base, dev->features, vr->call_fd, &vr->stats);
    if (error) {
        free(vq);
        dev->errors.vring++;
        dev_log(dev, VHOST_LOG_WARN, "vring %u cannot start: %s", i,
                virtq_init_error_name(error));
        return false;
    }
    vq->vring = i;
    if (dev->features & (1ull << VHOST_F_LOG_ALL) && dev->log) {
        /* Live migration: the ring marks what it writes. */
        virtq_set_log(vq, dev->log, vr->addr.flags & VHOST_VRING_F_LOG,
                      vr->addr.log_guest_addr);
    }
    if (virtq_last_avail(vq) != vr->base) {
        dev_log(dev, VHOST_LOG_INFO, "vring %u resumes at used %s %u, "
                "not base %u: in-flight buffers are taken again", i,
                packed(dev) ? "position" : "index",
                virtq_last_avail(vq), vr->base);
    }
    __atomic_store_n(&vr->live, vq, __ATOMIC_RELEASE);
    return true;
}

/* Waits for the data path to let go of what it read of vrings 'first' to
 * 'last' (excluded) before they were unpublished or disabled: with
 * ops->quiesce_vring, waits out the lock of each such ring that 'parked'
 * or ('disabled') was just disabled; else synchronizes. */
static void
data_path_let_go(struct vhost_device *dev, unsigned int first,
                 unsigned int last, bool disabled)
{
    if (dev->ops && dev->ops->quiesce_vring) {
        for (unsigned int i = first; i < last; i++) {
            const struct vhost_vring *vr = &dev->vrings[i];

            /* (A ring neither running nor parked is no data path's.) */
            if (vr->parked || (disabled && vr->live)) {
                dev->ops->quiesce_vring(dev->aux, i);
            }
        }
    } else {
        synchronize(dev);
    }
}

/* Rings stop and start in two steps:
 *
 *   - park_rings() takes the running rings of a range from the data path
 *     ('live' to 'parked'), waits until no data-path thread can use them
 *     (see data_path_let_go(): one wait covers them all), saves where each
 *     stopped in its 'base' and frees them.  'started' stays as it was.
 *   - resume_rings() publishes again those still 'started', on the memory,
 *     features and fds the device has now; one that no longer fits stays
 *     stopped.
 *
 * A change to what running rings use (features, ring addresses, the memory
 * table) is park, change, resume; GET_VRING_BASE and a reset are park and
 * clear 'started'. */
static void
park_rings(struct vhost_device *dev, unsigned int first, unsigned int last)
{
    bool any = false;

    for (unsigned int i = first; i < last; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        if (vr->live) {
            vr->parked = vr->live;
            __atomic_store_n(&vr->live, NULL, __ATOMIC_RELEASE);
            any = true;
        }
    }
    if (!any) {
        return;
    }
    data_path_let_go(dev, first, last, false);
    for (unsigned int i = first; i < last; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        if (vr->parked) {
            vr->base = virtq_last_avail(vr->parked);
            vr->used_base = 0;
            free(vr->parked);
            vr->parked = NULL;
        }
    }
}

static void
resume_rings(struct vhost_device *dev, unsigned int first, unsigned int last)
{
    for (unsigned int i = first; i < last; i++) {
        if (dev->vrings[i].started && !publish(dev, i)) {
            dev->vrings[i].started = false;
        }
    }
}

static void
stop_rings(struct vhost_device *dev, unsigned int first, unsigned int last)
{
    park_rings(dev, first, last);
    for (unsigned int i = first; i < last; i++) {
        dev->vrings[i].started = false;
    }
}

/* What a disconnected front-end's device leaves for the data path to let
 * go of, one entry per vring (NULL or -1 where none): freed by ops->defer's
 * callback. */
struct retired {
    unsigned int n;
    struct virtq **vqs;
    int *call_fds;
    struct vhost_mem *mem;
    struct vhost_log *log;
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
    vhost_log_free(r->log);
    free(r->vqs);
    free(r->call_fds);
    free(r);
}

/* Stops every vring, like stop_rings(), but without waiting for the data
 * path: the live virtqs, the call fds (the data path notifies through them)
 * and the memory table go to ops->defer.  A host whose front-ends all go
 * at once (a crash, a reboot) then costs the switch's control thread no
 * grace period per port. */
static void
retire_all(struct vhost_device *dev)
{
    struct retired *r = calloc(1, sizeof *r);

    if (r) {
        r->n = dev->max_vrings_allocated;
        r->vqs = calloc(r->n, sizeof *r->vqs);
        r->call_fds = calloc(r->n, sizeof *r->call_fds);
    }
    if (!r || !r->vqs || !r->call_fds) {
        abort();
    }
    for (unsigned int i = 0; i < r->n; i++) {
        /* Running: the data path may still use it. */
        r->vqs[i] = dev->vrings[i].live;
        __atomic_store_n(&dev->vrings[i].live, NULL, __ATOMIC_RELEASE);
        dev->vrings[i].started = false;
        r->call_fds[i] = dev->vrings[i].call_fd;
        dev->vrings[i].call_fd = -1;
    }
    r->mem = dev->mem;
    dev->mem = NULL;
    r->log = dev->log;
    dev->log = NULL;
    dev->ops->defer(dev->aux, retired_free, r);
}

/* Back to the state of a new connection; counters stay.  Every vring the
 * device was created with, not only those of the current limit (which may
 * have shrunk since the front-end set rings up).  'may_defer': the device
 * stays (its vrings' counters, which a late data-path thread
 * may still add to, live on), so the data path need not be waited for. */
static void
reset_device(struct vhost_device *dev, bool may_defer)
{
    if (may_defer && dev->ops && dev->ops->defer) {
        retire_all(dev);
    } else {
        stop_rings(dev, 0, dev->max_vrings_allocated);
    }
    for (unsigned int i = 0; i < dev->max_vrings_allocated; i++) {
        struct vhost_vring *vr = &dev->vrings[i];

        close_fd(&vr->kick_fd);
        close_fd(&vr->call_fd);
        close_fd(&vr->err_fd);
        vr->num = 0;
        vr->addr_set = false;
        vr->base = 0;
        vr->used_base = 0;
        vr->configured = false;
        __atomic_store_n(&vr->enabled, false, __ATOMIC_RELAXED);
    }
    vhost_mem_free(dev->mem);
    dev->mem = NULL;
    vhost_log_free(dev->log);   /* (Null if retired above.) */
    dev->log = NULL;
    close_fd(&dev->log_fd);
    dev->owner = false;
    dev->features_set = false;
    dev->features = 0;
    dev->protocol_features = 0;
    dev->status = 0;
    dev->mtu = 0;
    __atomic_store_n(&dev->rarp, 0, __ATOMIC_RELAXED);
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
    uint64_t n = (dev->errors.state + dev->errors.memory + dev->errors.vring
                  + dev->errors.log);

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

/* Request handlers.
 *
 * One function per request, found through 'handlers' below.  Before a
 * handler runs, the message has passed the wire codec's checks (sizes, fd
 * counts, vring index) and the device has checked that the features the
 * codec's request table says it needs were negotiated; after it, the
 * dispatcher builds the reply the request table names (from 'reply') or the
 * REPLY_ACK ack, and closes every fd left in the message: a handler that
 * keeps an fd takes it with take_fd().
 *
 * A handler returns what became of the message (enum outcome). */

/* What a handler made of its message. */
enum outcome {
    DONE,               /* Took effect. */
    IGNORED,            /* Refused, counted and logged; the device is as
                         * it was, so without REPLY_ACK the front-end may
                         * go on. */
    FATAL,              /* Refused, and the front-end must learn of it:
                         * without REPLY_ACK (or for a request owed a
                         * reply) the connection closes. */
};

typedef enum outcome handler_fn(struct vhost_device *,
                                struct vhost_user_msg *,
                                union vhost_user_payload *reply);

/* Takes the message's fd 'i' (or -1) from the message. */
static int
take_fd(struct vhost_user_msg *msg, int i)
{
    int fd = i < msg->n_fds ? msg->fds[i] : -1;

    if (i < msg->n_fds) {
        msg->fds[i] = -1;
    }
    return fd;
}

static struct vhost_vring *
msg_vring(struct vhost_device *dev, const struct vhost_user_msg *msg)
{
    return &dev->vrings[vhost_user_msg_vring_index(msg)];
}

/* Counts and logs 'msg' as wrong for the device's state. */
static enum outcome
refuse(struct vhost_device *dev, const struct vhost_user_msg *msg,
       enum outcome outcome, const char *why)
{
    dev->errors.state++;
    dev_log(dev, VHOST_LOG_WARN, "%s refused: %s",
            vhost_user_request_name(msg->request), why);
    return outcome;
}

static enum outcome
get_features(struct vhost_device *dev,
             struct vhost_user_msg *msg UNUSED,
             union vhost_user_payload *reply)
{
    reply->u64 = dev->offered;
    return DONE;
}

static enum outcome
set_features(struct vhost_device *dev, struct vhost_user_msg *msg,
             union vhost_user_payload *reply UNUSED)
{
    uint64_t features = msg->payload.u64;

    if (features & ~dev->offered) {
        /* The front-end would use what the switch does not do. */
        return refuse(dev, msg, FATAL, "features not offered");
    }
    if (dev->features_set && dev->features == features) {
        return DONE;            /* Repeated by an old front-end. */
    }
    park_rings(dev, 0, dev->max_vrings);
    if ((dev->features ^ features) & (1ull << VHOST_F_LOG_ALL)) {
        /* QEMU turns it on when a migration starts, off when it ends or
         * fails: the rings resume below marking the log, or not. */
        dev_log(dev, VHOST_LOG_INFO, "dirty-page logging %s%s",
                features & (1ull << VHOST_F_LOG_ALL) ? "on" : "off",
                (features & (1ull << VHOST_F_LOG_ALL) && !dev->log
                 ? " (no log yet)" : ""));
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
    resume_rings(dev, 0, dev->max_vrings);
    changed(dev);
    return DONE;
}

static enum outcome
set_owner(struct vhost_device *dev, struct vhost_user_msg *msg UNUSED,
          union vhost_user_payload *reply UNUSED)
{
    dev->owner = true;
    return DONE;
}

static enum outcome
reset_owner(struct vhost_device *dev, struct vhost_user_msg *msg UNUSED,
            union vhost_user_payload *reply UNUSED)
{
    reset_device(dev, true);
    changed(dev);
    return DONE;
}

/* Memory messages park every running ring (no data-path thread may hold a
 * pointer into the old table when it goes), build the new table, install
 * it or count and log why not, and start the rings again.  Memory the
 * switch cannot map is no state to go on in: the front-end must hear of
 * it. */
static enum outcome
finish_mem_change(struct vhost_device *dev, enum vhost_mem_error error,
                  struct vhost_mem *mem, const struct vhost_user_msg *msg)
{
    struct vhost_mem *old_mem = dev->mem;

    if (error) {
        resume_rings(dev, 0, dev->max_vrings);
        dev->errors.memory++;
        if (error == VHOST_MEM_OVER_LIMIT) {
            dev_log(dev, VHOST_LOG_WARN, "%s refused: guest memory would "
                    "take more than the port's limit of %"PRIu64" MiB",
                    vhost_user_request_name(msg->request),
                    dev->max_mem_bytes >> 20);
            return FATAL;
        }
        dev_log(dev, VHOST_LOG_WARN, "%s refused: %s",
                vhost_user_request_name(msg->request),
                vhost_mem_error_name(error));
        return FATAL;
    }
    dev->mem = mem;
    resume_rings(dev, 0, dev->max_vrings);
    vhost_mem_free(old_mem);
    dev_log(dev, VHOST_LOG_INFO, "guest memory: %u region(s), %llu MiB",
            mem ? mem->n_regions : 0,
            (unsigned long long) (vhost_mem_mapped_bytes(mem) >> 20));
    changed(dev);
    return DONE;
}

static enum outcome
set_mem_table(struct vhost_device *dev, struct vhost_user_msg *msg,
              union vhost_user_payload *reply UNUSED)
{
    enum vhost_mem_error error;
    struct vhost_mem *mem;

    if (vhost_mem_same_table(dev->mem, msg)) {
        /* An old front-end repeats the table per queue pair. */
        return DONE;
    }
    park_rings(dev, 0, dev->max_vrings);
    error = vhost_mem_from_table(msg, dev->max_mem_bytes, &mem);
    return finish_mem_change(dev, error, mem, msg);
}

static enum outcome
add_mem_reg(struct vhost_device *dev, struct vhost_user_msg *msg,
            union vhost_user_payload *reply UNUSED)
{
    enum vhost_mem_error error;
    struct vhost_mem *mem;

    if (vhost_mem_find_region(dev->mem, &msg->payload.mem_single.region,
                              true) >= 0) {
        /* QEMU adds each region once per queue pair. */
        dev_log(dev, VHOST_LOG_DBG, "ADD_MEM_REG: region already mapped");
        return DONE;
    }
    park_rings(dev, 0, dev->max_vrings);
    error = vhost_mem_add_region(dev->mem, msg, dev->max_mem_bytes, &mem);
    return finish_mem_change(dev, error, mem, msg);
}

static enum outcome
rem_mem_reg(struct vhost_device *dev, struct vhost_user_msg *msg,
            union vhost_user_payload *reply UNUSED)
{
    enum vhost_mem_error error;
    struct vhost_mem *mem;

    if (vhost_mem_find_region(dev->mem, &msg->payload.mem_single.region,
                              false) < 0) {
        /* QEMU removes each region once per queue pair (one vhost device
         * per pair on one connection): a region already gone is the
         * expected case, and acknowledged. */
        dev_log(dev, VHOST_LOG_DBG, "REM_MEM_REG: no such region");
        return DONE;
    }
    park_rings(dev, 0, dev->max_vrings);
    error = vhost_mem_remove_region(dev->mem,
                                    &msg->payload.mem_single.region, &mem);
    return finish_mem_change(dev, error, mem, msg);
}

/* Live migration's dirty log.  The rings that mark the old log (those of a
 * device with LOG_ALL acked) are parked first: once they resume on the new
 * one, the old one is no thread's and goes.  A log that cannot be mapped is
 * no state to migrate in (the front-end would copy pages the switch wrote
 * without hearing of them): the front-end, owed a reply, is dropped. */
static enum outcome
set_log_base(struct vhost_device *dev, struct vhost_user_msg *msg,
             union vhost_user_payload *reply)
{
    const struct vhost_user_log *l = &msg->payload.log;
    bool logging = dev->features & (1ull << VHOST_F_LOG_ALL);
    enum vhost_log_map_error error;
    struct vhost_log *log, *old;

    /* (Without LOG_ALL no ring holds the log: the rings keep running.) */
    if (logging) {
        park_rings(dev, 0, dev->max_vrings);
    }
    error = vhost_log_map(msg->n_fds ? msg->fds[0] : -1, l->mmap_size,
                          l->mmap_offset, dev->mem, &log);
    if (error) {
        if (logging) {
            resume_rings(dev, 0, dev->max_vrings);
        }
        dev->errors.log++;
        dev_log(dev, VHOST_LOG_WARN, "SET_LOG_BASE refused: %s (size %"
                PRIu64", offset %"PRIu64", guest memory needs %"PRIu64")",
                vhost_log_map_error_name(error), l->mmap_size,
                l->mmap_offset, vhost_log_size_for(dev->mem));
        return FATAL;
    }
    old = dev->log;
    dev->log = log;
    if (logging) {
        resume_rings(dev, 0, dev->max_vrings);
    }
    vhost_log_free(old);
    dev_log(dev, VHOST_LOG_INFO, "dirty log: %"PRIu64" bytes (%"PRIu64
            " MiB of guest-physical memory)", log->size,
            log->n_pages >> (20 - VHOST_LOG_PAGE_SHIFT));
    reply->u64 = 0;
    return DONE;
}

/* The front-end's eventfd for "log synced" notices, which this back-end
 * never sends (it marks the shared log as it goes): kept only to be
 * closed. */
static enum outcome
set_log_fd(struct vhost_device *dev, struct vhost_user_msg *msg,
           union vhost_user_payload *reply UNUSED)
{
    close_fd(&dev->log_fd);
    dev->log_fd = take_fd(msg, 0);
    return DONE;
}

static enum outcome
get_protocol_features(struct vhost_device *dev UNUSED,
                      struct vhost_user_msg *msg UNUSED,
                      union vhost_user_payload *reply)
{
    reply->u64 = VHOST_DEVICE_PROTOCOL_FEATURES;
    return DONE;
}

static enum outcome
set_protocol_features(struct vhost_device *dev, struct vhost_user_msg *msg,
                      union vhost_user_payload *reply UNUSED)
{
    if (msg->payload.u64 & ~VHOST_DEVICE_PROTOCOL_FEATURES) {
        return refuse(dev, msg, FATAL, "protocol features not offered");
    }
    dev->protocol_features = msg->payload.u64;
    return DONE;
}

static enum outcome
get_queue_num(struct vhost_device *dev, struct vhost_user_msg *msg UNUSED,
              union vhost_user_payload *reply)
{
    reply->u64 = dev->max_queue_pairs;
    return DONE;
}

static enum outcome
set_vring_num(struct vhost_device *dev, struct vhost_user_msg *msg,
              union vhost_user_payload *reply UNUSED)
{
    struct vhost_vring *vr = msg_vring(dev, msg);
    uint32_t num = msg->payload.state.num;

    if (vr->started) {
        return refuse(dev, msg, IGNORED, "ring is running");
    }
    if (!num || num > VIRTQ_MAX_SIZE || (num & (num - 1) && !packed(dev))) {
        /* (A packed ring may have any size.) */
        return refuse(dev, msg, IGNORED,
                      packed(dev) ? "ring size 0 or beyond 32768"
                      : "ring size not a power of 2 up to 32768");
    }
    vr->num = num;
    vr->configured = true;
    changed(dev);
    return DONE;
}

static enum outcome
set_vring_addr(struct vhost_device *dev, struct vhost_user_msg *msg,
               union vhost_user_payload *reply UNUSED)
{
    unsigned int i = vhost_user_msg_vring_index(msg);
    struct vhost_vring *vr = &dev->vrings[i];

    if (msg->payload.addr.flags & VHOST_VRING_F_LOG
        && !(dev->features & (1ull << VHOST_F_LOG_ALL))) {
        return refuse(dev, msg, IGNORED, "log flag without LOG_ALL");
    }
    if (msg->payload.addr.flags & ~VHOST_VRING_F_LOG) {
        return refuse(dev, msg, IGNORED, "unknown vring address flags");
    }
    park_rings(dev, i, i + 1);
    vr->addr = msg->payload.addr;
    vr->addr_set = true;
    vr->configured = true;
    resume_rings(dev, i, i + 1);
    return DONE;
}

static enum outcome
set_vring_base(struct vhost_device *dev, struct vhost_user_msg *msg,
               union vhost_user_payload *reply UNUSED)
{
    struct vhost_vring *vr = msg_vring(dev, msg);

    if (vr->started) {
        return refuse(dev, msg, IGNORED, "ring is running");
    }
    if (msg->payload.state.num > UINT16_MAX && !packed(dev)) {
        return refuse(dev, msg, IGNORED, "base beyond 16 bits");
    }
    /* A packed ring's base: the avail position and its wrap counter in
     * bits 0-15, the used position alike in bits 16-31 (QEMU sends both,
     * DPDK's virtio-user the first only). */
    vr->base = msg->payload.state.num & UINT16_MAX;
    vr->used_base = msg->payload.state.num >> 16;
    return DONE;
}

static enum outcome
get_vring_base(struct vhost_device *dev, struct vhost_user_msg *msg,
               union vhost_user_payload *reply)
{
    unsigned int i = vhost_user_msg_vring_index(msg);
    bool was_ready = vhost_device_is_ready(dev);

    stop_rings(dev, i, i + 1);
    reply->state.index = i;
    reply->state.num = dev->vrings[i].base;
    if (packed(dev)) {
        /* Every buffer went back before the ring stopped: the used
         * position is the avail one. */
        reply->state.num |= (uint32_t) dev->vrings[i].base << 16;
    }
    if (was_ready != vhost_device_is_ready(dev)) {
        changed(dev);
    }
    return DONE;
}

static enum outcome
set_vring_kick(struct vhost_device *dev, struct vhost_user_msg *msg,
               union vhost_user_payload *reply UNUSED)
{
    unsigned int i = vhost_user_msg_vring_index(msg);
    struct vhost_vring *vr = &dev->vrings[i];

    /* The kick starts the ring.  The data path polls, so the fd is kept
     * only to be closed later. */
    close_fd(&vr->kick_fd);
    vr->kick_fd = take_fd(msg, 0);
    vr->configured = true;
    if (vr->started) {
        return DONE;
    }
    if (!publish(dev, i)) {
        /* Counted and logged by publish(); the ring stays stopped, where
         * the front-end believes it runs. */
        return FATAL;
    }
    vr->started = true;
    changed(dev);
    return DONE;
}

static enum outcome
set_vring_call(struct vhost_device *dev, struct vhost_user_msg *msg,
               union vhost_user_payload *reply UNUSED)
{
    struct vhost_vring *vr = msg_vring(dev, msg);
    int old = vr->call_fd;
    int fd = take_fd(msg, 0);
    char why[128];

    if (fd >= 0 && vhost_call_fd_prepare(fd, why, sizeof why)) {
        /* Only an eventfd, made non-blocking.  Without notifications the
         * guest would wait for ever: the front-end must hear of it. */
        close(fd);
        return refuse(dev, msg, FATAL, why);
    }
    vr->call_fd = fd;
    vr->configured = true;
    if (vr->live) {
        /* Front-ends send this right after the kick that started the
         * ring: swap the fd under the running ring instead of restarting
         * it (which waits for the data path).  The data path may still be
         * writing to the old fd a little while.  (Release: the fd, which
         * this thread received, is whole before the data path writes to
         * it; a plain store on x86.) */
        __atomic_store_n(&vr->live->call_fd, vr->call_fd, __ATOMIC_RELEASE);
        close_after_data_path(dev, old);
    } else if (old >= 0) {
        close(old);
    }
    return DONE;
}

static enum outcome
set_vring_err(struct vhost_device *dev, struct vhost_user_msg *msg,
              union vhost_user_payload *reply UNUSED)
{
    struct vhost_vring *vr = msg_vring(dev, msg);

    close_fd(&vr->err_fd);
    vr->err_fd = take_fd(msg, 0);
    vr->configured = true;
    return DONE;
}

static enum outcome
set_vring_enable(struct vhost_device *dev, struct vhost_user_msg *msg,
                 union vhost_user_payload *reply UNUSED)
{
    struct vhost_vring *vr = msg_vring(dev, msg);
    uint32_t enable = msg->payload.state.num;

    if (enable > 1) {
        return refuse(dev, msg, IGNORED, "enable must be 0 or 1");
    }
    vr->configured = true;
    if (vr->enabled != !!enable) {
        /* Release: a data path that sees the ring enabled sees what the
         * control path did to the ring before (discarding a disabled guest
         * TX ring moves its indexes). */
        __atomic_store_n(&vr->enabled, !!enable, __ATOMIC_RELEASE);
        dev_log(dev, VHOST_LOG_DBG, "vring %d %s",
                vhost_user_msg_vring_index(msg),
                enable ? "enabled" : "disabled");
        changed(dev);
        if (!enable && vr->live) {
            /* Once the front-end hears back, nothing more goes into the
             * ring: wait out a data path that read the flag before. */
            data_path_let_go(dev, vhost_user_msg_vring_index(msg),
                             vhost_user_msg_vring_index(msg) + 1, true);
        }
    }
    return DONE;
}

static enum outcome
send_rarp(struct vhost_device *dev, struct vhost_user_msg *msg,
          union vhost_user_payload *reply UNUSED)
{
    uint8_t mac[8];
    uint64_t rarp = VHOST_RARP_PENDING;

    /* The MAC is the payload's first 6 bytes, whatever the byte order. */
    memcpy(mac, &msg->payload.u64, sizeof mac);
    for (int i = 0; i < 6; i++) {
        rarp |= (uint64_t) mac[i] << (8 * i);
    }
    __atomic_store_n(&dev->rarp, rarp, __ATOMIC_RELAXED);
    return DONE;
}

static enum outcome
net_set_mtu(struct vhost_device *dev, struct vhost_user_msg *msg,
            union vhost_user_payload *reply UNUSED)
{
    if (msg->payload.u64 < VHOST_USER_MIN_MTU
        || msg->payload.u64 > VHOST_USER_MAX_MTU) {
        return refuse(dev, msg, IGNORED, "MTU out of range");
    }
    dev->mtu = msg->payload.u64;
    changed(dev);
    return DONE;
}

static enum outcome
get_max_mem_slots(struct vhost_device *dev UNUSED,
                  struct vhost_user_msg *msg UNUSED,
                  union vhost_user_payload *reply)
{
    reply->u64 = VHOST_MEM_MAX_SLOTS;
    return DONE;
}

static enum outcome
set_status(struct vhost_device *dev, struct vhost_user_msg *msg,
           union vhost_user_payload *reply UNUSED)
{
    if (msg->payload.u64 > UINT8_MAX) {
        return refuse(dev, msg, IGNORED, "status beyond 8 bits");
    }
    if (dev->status != msg->payload.u64) {
        dev->status = msg->payload.u64;
        changed(dev);
    }
    return DONE;
}

static enum outcome
get_status(struct vhost_device *dev, struct vhost_user_msg *msg UNUSED,
           union vhost_user_payload *reply)
{
    reply->u64 = dev->status;
    return DONE;
}

/* Requests without a handler need features this port never offers
 * (the back-end channel, config space, inflight tracking, device
 * reset): the feature check refuses them first. */
static handler_fn *const handlers[VHOST_USER_N_REQUESTS] = {
    [VHOST_USER_GET_FEATURES] = get_features,
    [VHOST_USER_SET_FEATURES] = set_features,
    [VHOST_USER_SET_OWNER] = set_owner,
    [VHOST_USER_RESET_OWNER] = reset_owner,
    [VHOST_USER_SET_MEM_TABLE] = set_mem_table,
    [VHOST_USER_SET_LOG_BASE] = set_log_base,
    [VHOST_USER_SET_LOG_FD] = set_log_fd,
    [VHOST_USER_SET_VRING_NUM] = set_vring_num,
    [VHOST_USER_SET_VRING_ADDR] = set_vring_addr,
    [VHOST_USER_SET_VRING_BASE] = set_vring_base,
    [VHOST_USER_GET_VRING_BASE] = get_vring_base,
    [VHOST_USER_SET_VRING_KICK] = set_vring_kick,
    [VHOST_USER_SET_VRING_CALL] = set_vring_call,
    [VHOST_USER_SET_VRING_ERR] = set_vring_err,
    [VHOST_USER_GET_PROTOCOL_FEATURES] = get_protocol_features,
    [VHOST_USER_SET_PROTOCOL_FEATURES] = set_protocol_features,
    [VHOST_USER_GET_QUEUE_NUM] = get_queue_num,
    [VHOST_USER_SET_VRING_ENABLE] = set_vring_enable,
    [VHOST_USER_SEND_RARP] = send_rarp,
    [VHOST_USER_NET_SET_MTU] = net_set_mtu,
    [VHOST_USER_GET_MAX_MEM_SLOTS] = get_max_mem_slots,
    [VHOST_USER_ADD_MEM_REG] = add_mem_reg,
    [VHOST_USER_REM_MEM_REG] = rem_mem_reg,
    [VHOST_USER_SET_STATUS] = set_status,
    [VHOST_USER_GET_STATUS] = get_status,
};

/* The name of a feature bit, for a refusal's log line. */
static const char *
feature_name(int bit, bool protocol)
{
    static const char *const protocol_names[] = {
        [VHOST_USER_PROTOCOL_F_MQ] = "MQ",
        [VHOST_USER_PROTOCOL_F_LOG_SHMFD] = "LOG_SHMFD",
        [VHOST_USER_PROTOCOL_F_RARP] = "RARP",
        [VHOST_USER_PROTOCOL_F_REPLY_ACK] = "REPLY_ACK",
        [VHOST_USER_PROTOCOL_F_NET_MTU] = "NET_MTU",
        [VHOST_USER_PROTOCOL_F_BACKEND_REQ] = "BACKEND_REQ",
        [VHOST_USER_PROTOCOL_F_CONFIG] = "CONFIG",
        [VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD] = "INFLIGHT_SHMFD",
        [VHOST_USER_PROTOCOL_F_RESET_DEVICE] = "RESET_DEVICE",
        [VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS] = "CONFIGURE_MEM_SLOTS",
        [VHOST_USER_PROTOCOL_F_STATUS] = "STATUS",
    };
    int n = sizeof protocol_names / sizeof *protocol_names;

    if (!protocol) {
        return (bit == VHOST_F_LOG_ALL ? "LOG_ALL"
                : bit == VIRTIO_NET_F_MTU ? "MTU"
                : bit == VHOST_USER_F_PROTOCOL_FEATURES ? "PROTOCOL_FEATURES"
                : "a virtio feature");
    }
    return (bit >= 0 && bit < n && protocol_names[bit]
            ? protocol_names[bit] : "a feature");
}

/* Checks that what 'msg' needs was negotiated; refuses it if not. */
static enum outcome
check_features(struct vhost_device *dev, const struct vhost_user_msg *msg)
{
    int protocol = vhost_user_request_protocol_feature(msg->request);
    int virtio = vhost_user_request_virtio_feature(msg->request);
    char why[64];

    if (protocol >= 0 && !has_protocol_feature(dev, protocol)) {
        snprintf(why, sizeof why, "%s not negotiated",
                 feature_name(protocol, true));
        return refuse(dev, msg, IGNORED, why);
    }
    /* Front-ends send some of these before SET_FEATURES (QEMU the MTU when
     * a guest first starts, DPDK's virtio-user the enables when it
     * reconnects), as QEMU itself allows when the feature was offered: the
     * acked features decide once there are some. */
    if (virtio >= 0 && dev->features_set
        && !(dev->features & (1ull << virtio))) {
        snprintf(why, sizeof why, "%s not acked",
                 feature_name(virtio, false));
        return refuse(dev, msg, IGNORED, why);
    }
    if (!handlers[msg->request]) {
        return refuse(dev, msg, IGNORED,
                      "needs a feature this port does not offer");
    }
    return DONE;
}

/* Fills in 'reply' to 'msg' from the handler's 'payload'. */
static void
make_reply(struct vhost_user_msg *reply, const struct vhost_user_msg *msg,
           const union vhost_user_payload *payload)
{
    switch (vhost_user_request_reply(msg->request)) {
    case VHOST_USER_REPLY_U64:
        vhost_user_msg_make_reply_u64(reply, payload->u64);
        break;
    case VHOST_USER_REPLY_STATE:
        vhost_user_msg_make_reply_state(reply, payload->state.index,
                                        payload->state.num);
        break;
    case VHOST_USER_REPLY_NONE:
    case VHOST_USER_REPLY_CONFIG:
    case VHOST_USER_REPLY_INFLIGHT:
    default:
        /* No handler answers these (their features are never offered). */
        abort();
    }
}

/* Runs the handler of validated 'msg' and answers it. */
static enum vhost_device_result
dispatch(struct vhost_device *dev, struct vhost_user_msg *msg,
         enum outcome outcome, struct vhost_user_msg *reply, bool *has_reply)
{
    union vhost_user_payload payload;

    memset(&payload, 0, sizeof payload);
    if (outcome == DONE) {
        outcome = check_features(dev, msg);
    }
    if (outcome == DONE) {
        outcome = handlers[msg->request](dev, msg, &payload);
    }
    vhost_user_msg_close_fds(msg);

    if (vhost_user_request_has_reply(msg->request)) {
        if (outcome != DONE) {
            /* The front-end waits for an answer there is none of. */
            return VHOST_DEVICE_DISCONNECT;
        }
        make_reply(reply, msg, &payload);
        *has_reply = true;
        return VHOST_DEVICE_OK;
    }
    if (msg->flags & VHOST_USER_NEED_REPLY
        && has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
        vhost_user_msg_make_reply_u64(reply, outcome != DONE);
        *has_reply = true;
        return VHOST_DEVICE_OK;
    }
    /* Without an ack the front-end cannot learn of a refusal: one that
     * leaves the device as it was is only counted and logged, one it must
     * learn of closes the connection. */
    return outcome == FATAL ? VHOST_DEVICE_DISCONNECT : VHOST_DEVICE_OK;
}

enum vhost_device_result
vhost_device_handle(struct vhost_device *dev, struct vhost_user_msg *msg,
                    struct vhost_user_msg *reply, bool *has_reply)
{
    enum vhost_user_wire_error error;
    const char *detail;

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
        /* A message that breaks the protocol's rules says the front-end
         * and the switch no longer agree on the protocol. */
        return dispatch(dev, msg, FATAL, reply, has_reply);
    }
    return dispatch(dev, msg, DONE, reply, has_reply);
}
