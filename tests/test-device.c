/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of the device state machine: message sequences as a
 * front-end sends them, and what each does to the device. */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit.h"
#include "vhost-device.h"

#define MEM_SIZE (1 << 20)

struct fixture {
    struct vhost_device dev;
    int n_changed;
    int n_sync;
    int n_deferred;             /* Callbacks given to defer, not run. */
    struct {
        void (*cb)(void *);
        void *arg;
    } deferred[8];
    int memfd;
    uint8_t *hva;
    struct vhost_user_msg reply;
    bool has_reply;
    uint64_t quiesced;          /* Vrings ops->quiesce_vring was called
                                 * for (bit i: vring i). */
    int n_quiesce_live;         /* Calls for a ring still live and enabled
                                 * (pointless: nothing was taken away). */
};

static void
f_sync(void *aux)
{
    ((struct fixture *) aux)->n_sync++;
}

static void
f_changed(void *aux)
{
    ((struct fixture *) aux)->n_changed++;
}

static void
f_log(void *aux, enum vhost_log_level level, const char *msg)
{
    (void) aux;
    (void) level;
    (void) msg;
}

static void
f_defer(void *aux, void (*cb)(void *), void *arg)
{
    struct fixture *f = aux;

    CHECK(f->n_deferred < 8);
    f->deferred[f->n_deferred].cb = cb;
    f->deferred[f->n_deferred].arg = arg;
    f->n_deferred++;
}

/* Ends the grace period: runs what was deferred. */
static void
run_deferred(struct fixture *f)
{
    for (int i = 0; i < f->n_deferred; i++) {
        f->deferred[i].cb(f->deferred[i].arg);
    }
    f->n_deferred = 0;
}

static const struct vhost_device_ops ops_defer = {
    .synchronize = f_sync,
    .changed = f_changed,
    .log = f_log,
    .defer = f_defer,
};

static const struct vhost_device_ops ops = {
    .synchronize = f_sync,
    .changed = f_changed,
    .log = f_log,
};

static void
setup(struct fixture *f, unsigned int max_qp)
{
    memset(f, 0, sizeof *f);
    vhost_device_init(&f->dev, "test", max_qp, &ops, f);
    f->memfd = memfd_create("test-device", MFD_CLOEXEC);
    CHECK(!ftruncate(f->memfd, MEM_SIZE));
    f->hva = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  f->memfd, 0);
}

static void
teardown(struct fixture *f)
{
    vhost_device_destroy(&f->dev);
    munmap(f->hva, MEM_SIZE);
    close(f->memfd);
}

/* Sends a request; returns the result. */
static enum vhost_device_result
send_req(struct fixture *f, uint32_t request, uint32_t flags,
         const void *payload, uint32_t size, int fd)
{
    struct vhost_user_msg msg;

    memset(&msg, 0, sizeof msg);
    msg.request = request;
    msg.flags = VHOST_USER_VERSION | flags;
    msg.size = size;
    if (size) {
        memcpy(&msg.payload, payload, size);
    }
    if (fd >= 0) {
        msg.fds[0] = fd;
        msg.n_fds = 1;
    }
    return vhost_device_handle(&f->dev, &msg, &f->reply, &f->has_reply);
}

static enum vhost_device_result
send_u64(struct fixture *f, uint32_t request, uint64_t value)
{
    return send_req(f, request, 0, &value, 8, -1);
}

static enum vhost_device_result
send_state(struct fixture *f, uint32_t request, uint32_t index,
           uint32_t num)
{
    struct vhost_user_vring_state s = { index, num };

    return send_req(f, request, 0, &s, sizeof s, -1);
}

static uint64_t
get_u64(struct fixture *f, uint32_t request)
{
    CHECK_EQ(send_req(f, request, 0, NULL, 0, -1), VHOST_DEVICE_OK);
    CHECK(f->has_reply);
    CHECK_EQ(f->reply.request, request);
    CHECK(f->reply.flags & VHOST_USER_REPLY_FLAG);
    return f->reply.payload.u64;
}

static enum vhost_device_result
send_mem_table(struct fixture *f, uint64_t size)
{
    struct vhost_user_mem_table t;
    struct vhost_user_msg msg;

    memset(&t, 0, sizeof t);
    t.nregions = 1;
    t.regions[0].guest_phys_addr = 0;
    t.regions[0].memory_size = size;
    t.regions[0].userspace_addr = (uintptr_t) f->hva;
    memset(&msg, 0, sizeof msg);
    msg.request = VHOST_USER_SET_MEM_TABLE;
    msg.flags = VHOST_USER_VERSION;
    msg.size = 8 + 32;
    memcpy(&msg.payload, &t, msg.size);
    msg.fds[0] = dup(f->memfd);
    msg.n_fds = 1;
    return vhost_device_handle(&f->dev, &msg, &f->reply, &f->has_reply);
}

/* Sets up vring 'i' (size 256) at a place of its own and kicks it. */
static enum vhost_device_result
start_vring(struct fixture *f, unsigned int i)
{
    struct vhost_user_vring_addr addr;
    uint64_t base = 0x10000 + i * 0x4000;
    enum vhost_device_result r;

    send_state(f, VHOST_USER_SET_VRING_NUM, i, 256);
    send_state(f, VHOST_USER_SET_VRING_BASE, i, 0);
    memset(&addr, 0, sizeof addr);
    addr.index = i;
    addr.desc_user_addr = (uintptr_t) f->hva + base;
    addr.avail_user_addr = (uintptr_t) f->hva + base + 0x1000;
    addr.used_user_addr = (uintptr_t) f->hva + base + 0x2000;
    send_req(f, VHOST_USER_SET_VRING_ADDR, 0, &addr, sizeof addr, -1);
    r = send_req(f, VHOST_USER_SET_VRING_KICK, 0, &(uint64_t) { i }, 8,
                 eventfd(0, EFD_CLOEXEC));
    if (r == VHOST_DEVICE_OK) {
        send_req(f, VHOST_USER_SET_VRING_CALL, 0, &(uint64_t) { i }, 8,
                 eventfd(0, EFD_CLOEXEC));
    }
    return r;
}

/* A refusal that leaves the device as it was: counted and logged, and the
 * connection goes on (without REPLY_ACK the front-end cannot hear of it). */
#define CHECK_IGNORED(F, EXPR)                                          \
    do {                                                                \
        uint64_t state_ = (F)->dev.errors.state;                        \
                                                                        \
        CHECK_EQ(EXPR, VHOST_DEVICE_OK);                                \
        CHECK_EQ((F)->dev.errors.state, state_ + 1);                    \
    } while (0)

static const uint64_t net_features
    = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF)
      | (1ull << VIRTIO_NET_F_MQ) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES);

/* Negotiates as QEMU does, with 'protocol' protocol features. */
static void
negotiate(struct fixture *f, uint64_t protocol)
{
    CHECK_EQ(get_u64(f, VHOST_USER_GET_FEATURES) & net_features,
             net_features);
    CHECK_EQ(get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES) & protocol,
             protocol);
    CHECK_EQ(send_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES, protocol),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_req(f, VHOST_USER_SET_OWNER, 0, NULL, 0, -1),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_u64(f, VHOST_USER_SET_FEATURES, net_features),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_mem_table(f, MEM_SIZE), VHOST_DEVICE_OK);
}

static void
test_offers(void)
{
    struct fixture f;
    uint64_t features, protocol;

    setup(&f, 4);
    features = get_u64(&f, VHOST_USER_GET_FEATURES);
    for (int bit = 0; bit < 64; bit++) {
        static const int wanted[] = {
            VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF,
            VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX,
            VIRTIO_F_ANY_LAYOUT, VIRTIO_NET_F_MQ,
            VHOST_USER_F_PROTOCOL_FEATURES,
        };
        for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
            if (bit == wanted[i]) {
                CHECK(features & (1ull << bit));
            }
        }
    }
    protocol = get_u64(&f, VHOST_USER_GET_PROTOCOL_FEATURES);
    CHECK(protocol & (1ull << VHOST_USER_PROTOCOL_F_MQ));
    CHECK(protocol & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
    CHECK(protocol & (1ull << VHOST_USER_PROTOCOL_F_NET_MTU));
    CHECK(protocol & (1ull << VHOST_USER_PROTOCOL_F_RARP));
    CHECK(protocol & (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
    CHECK(protocol & (1ull << VHOST_USER_PROTOCOL_F_STATUS));
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_PROTOCOL_FEATURES, protocol),
             VHOST_DEVICE_OK);
    CHECK_EQ(get_u64(&f, VHOST_USER_GET_QUEUE_NUM), 4);
    CHECK_EQ(get_u64(&f, VHOST_USER_GET_MAX_MEM_SLOTS), VHOST_MEM_MAX_SLOTS);
    teardown(&f);
}

static void
test_ready_and_queue_pairs(void)
{
    struct fixture f;

    setup(&f, 4);
    negotiate(&f, (1ull << VHOST_USER_PROTOCOL_F_MQ)
                  | (1ull << VHOST_USER_PROTOCOL_F_STATUS));
    CHECK(!vhost_device_is_ready(&f.dev));
    for (unsigned int i = 0; i < 4; i++) {
        CHECK_EQ(start_vring(&f, i), VHOST_DEVICE_OK);
        CHECK(vhost_vring_live(&f.dev.vrings[i]) != NULL);
    }
    CHECK_EQ(vhost_device_n_queue_pairs(&f.dev), 2);
    /* With STATUS, ready waits for DRIVER_OK. */
    CHECK(!vhost_device_is_ready(&f.dev));
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_STATUS, 0xf), VHOST_DEVICE_OK);
    CHECK(vhost_device_is_ready(&f.dev));
    CHECK_EQ(get_u64(&f, VHOST_USER_GET_STATUS), 0xf);
    /* Rings start disabled with protocol features. */
    CHECK(!vhost_vring_enabled(&f.dev.vrings[0]));
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_ENABLE, 0, 1),
             VHOST_DEVICE_OK);
    CHECK(vhost_vring_enabled(&f.dev.vrings[0]));
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_ENABLE, 0, 2));
    teardown(&f);
}

static void
test_enabled_without_protocol_features(void)
{
    struct fixture f;
    uint64_t features = (1ull << VIRTIO_F_VERSION_1);

    setup(&f, 2);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES, features),
             VHOST_DEVICE_OK);
    for (unsigned int i = 0; i < 4; i++) {
        CHECK(vhost_vring_enabled(&f.dev.vrings[i]));
    }
    teardown(&f);
}

static void
test_get_vring_base_stops(void)
{
    struct fixture f;

    setup(&f, 1);
    negotiate(&f, 0);
    CHECK_EQ(start_vring(&f, 1), VHOST_DEVICE_OK);
    /* While running, the size cannot change. */
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_NUM, 1, 128));
    /* Pretend the data path consumed 3 buffers. */
    vhost_vring_live(&f.dev.vrings[1])->last_avail_idx = 3;
    f.n_sync = 0;
    CHECK_EQ(send_state(&f, VHOST_USER_GET_VRING_BASE, 1, 0),
             VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.state.index, 1);
    CHECK_EQ(f.reply.payload.state.num, 3);
    CHECK(!vhost_vring_live(&f.dev.vrings[1]));
    CHECK(!f.dev.vrings[1].started);
    /* The data path was waited for before reading the index. */
    CHECK_EQ(f.n_sync, 1);
    /* Stopped, it can. */
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_NUM, 1, 128),
             VHOST_DEVICE_OK);
    teardown(&f);
}

/* Restarts vring 1 (stopped) from SET_VRING_BASE's 'num', checks that it
 * resumed at position 'expect', and stops it again (GET_VRING_BASE, whose
 * answer is left in f->reply). */
static void
restart_at_base(struct fixture *f, uint32_t num, uint16_t expect)
{
    struct virtq *vq;

    CHECK_EQ(send_state(f, VHOST_USER_SET_VRING_BASE, 1, num),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_req(f, VHOST_USER_SET_VRING_KICK, 0, &(uint64_t) { 1 },
                      8, eventfd(0, EFD_CLOEXEC)), VHOST_DEVICE_OK);
    vq = vhost_vring_live(&f->dev.vrings[1]);
    CHECK(vq != NULL);
    if (vq) {
        CHECK_EQ(virtq_last_avail(vq), expect);
    }
    CHECK_EQ(send_state(f, VHOST_USER_GET_VRING_BASE, 1, 0),
             VHOST_DEVICE_OK);
}

/* A packed ring's base: avail position and wrap counter in the low half,
 * the used position in the high half, as QEMU sends and reads them. */
static void
test_packed_ring_base(void)
{
    struct fixture f;
    uint64_t packed = net_features | (1ull << VIRTIO_F_RING_PACKED);
    struct vhost_user_vring_addr addr;

    setup(&f, 1);
    CHECK(get_u64(&f, VHOST_USER_GET_FEATURES)
          & (1ull << VIRTIO_F_RING_PACKED));
    negotiate(&f, 0);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES, packed), VHOST_DEVICE_OK);

    /* Position 5 of a lap with wrap counter 1, used there too: resumes
     * there; a size that is not a power of 2 is fine. */
    send_state(&f, VHOST_USER_SET_VRING_NUM, 1, 100);
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_BASE, 1,
                        0x8005u | 0x8005u << 16), VHOST_DEVICE_OK);
    CHECK_EQ(f.dev.errors.state, 0);
    memset(&addr, 0, sizeof addr);
    addr.index = 1;
    addr.desc_user_addr = (uintptr_t) f.hva + 0x10000;
    addr.avail_user_addr = (uintptr_t) f.hva + 0x11000;
    addr.used_user_addr = (uintptr_t) f.hva + 0x12000;
    send_req(&f, VHOST_USER_SET_VRING_ADDR, 0, &addr, sizeof addr, -1);
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_KICK, 0, &(uint64_t) { 1 },
                      8, eventfd(0, EFD_CLOEXEC)), VHOST_DEVICE_OK);
    struct virtq *vq = vhost_vring_live(&f.dev.vrings[1]);
    CHECK(vq && vq->packed);
    CHECK_EQ(virtq_last_avail(vq), 0x8005);

    /* Stopped after 98 more descriptors: position 3 of the next lap, wrap
     * counter 0, in both halves. */
    vq->last_avail_idx = 3;
    CHECK_EQ(send_state(&f, VHOST_USER_GET_VRING_BASE, 1, 0),
             VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.state.num, 3u | 3u << 16);

    /* A front-end whose used position is behind its avail one (buffers
     * the last back-end took but never gave back): taken again from the
     * used position. */
    restart_at_base(&f, 0x8009u | 0x8007u << 16, 0x8007);

    /* Only the avail half (DPDK's virtio-user): that. */
    restart_at_base(&f, 0x8002, 0x8002);

    /* Wrap counters 0 (a front-end stopped on an odd lap, as after a
     * reconnect or a migration): resumed on that lap, and answered so. */
    restart_at_base(&f, 4u | 4u << 16, 4);
    CHECK_EQ(f.reply.payload.state.num, 4u | 4u << 16);

    /* A position beyond the ring: the ring does not start. */
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_BASE, 1, 0x8000 | 100),
             VHOST_DEVICE_OK);
    uint64_t vring_errors = f.dev.errors.vring;
    send_req(&f, VHOST_USER_SET_VRING_KICK, 0, &(uint64_t) { 1 }, 8,
             eventfd(0, EFD_CLOEXEC));
    CHECK(!vhost_vring_live(&f.dev.vrings[1]));
    CHECK_EQ(f.dev.errors.vring, vring_errors + 1);
    teardown(&f);
}

static void
test_ring_rules(void)
{
    struct fixture f;

    setup(&f, 2);
    /* Kick before any memory table: refused, and no way to say so. */
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_NUM, 0, 256),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_KICK, 0, &(uint64_t) { 0 }, 8,
                      eventfd(0, EFD_CLOEXEC)), VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(f.dev.errors.vring, 1);
    teardown(&f);

    setup(&f, 2);
    negotiate(&f, 0);
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_NUM, 0, 0));
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_NUM, 0, 100));
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_NUM, 0, 65536));
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_BASE, 0, 70000));
    CHECK_EQ(f.dev.errors.state, 4);
    /* Vring index beyond the port's pairs: refused by the codec. */
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_NUM, 4, 256),
             VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(f.dev.errors.wire[VHOST_USER_WIRE_BAD_VRING_INDEX], 1);
    /* A ring whose addresses are outside memory does not start. */
    struct vhost_user_vring_addr addr = { .index = 1,
                                          .desc_user_addr = 0x10,
                                          .avail_user_addr = 0x10,
                                          .used_user_addr = 0x10 };
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_NUM, 1, 256),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_ADDR, 0, &addr, sizeof addr,
                      -1), VHOST_DEVICE_OK);
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_KICK, 0, &(uint64_t) { 1 }, 8,
                      eventfd(0, EFD_CLOEXEC)), VHOST_DEVICE_DISCONNECT);
    CHECK(!vhost_vring_live(&f.dev.vrings[1]));
    teardown(&f);
}

static void
test_reply_ack(void)
{
    struct fixture f;

    setup(&f, 2);
    negotiate(&f, 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    /* A good message with need_reply gets ack 0. */
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_NUM, VHOST_USER_NEED_REPLY,
                      &(struct vhost_user_vring_state) { 0, 256 }, 8, -1),
             VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.u64, 0);
    /* A bad one gets 1, and the connection goes on. */
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_NUM, VHOST_USER_NEED_REPLY,
                      &(struct vhost_user_vring_state) { 0, 3 }, 8, -1),
             VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.u64, 1);
    /* So does an unknown request. */
    CHECK_EQ(send_req(&f, 99, VHOST_USER_NEED_REPLY, NULL, 0, -1),
             VHOST_DEVICE_OK);
    CHECK_EQ(f.reply.payload.u64, 1);
    CHECK_EQ(f.dev.errors.wire[VHOST_USER_WIRE_UNKNOWN_REQUEST], 1);
    /* Without need_reply an unknown request drops the connection. */
    CHECK_EQ(send_req(&f, 99, 0, NULL, 0, -1), VHOST_DEVICE_DISCONNECT);
    teardown(&f);
}

static void
test_features_not_offered(void)
{
    struct fixture f;

    setup(&f, 2);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES,
                      1ull << VIRTIO_F_IOMMU_PLATFORM), VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_PROTOCOL_FEATURES,
                      1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ),
             VHOST_DEVICE_DISCONNECT);
    /* Requests of features never offered. */
    CHECK_EQ(send_req(&f, VHOST_USER_SET_LOG_BASE, 0,
                      &(struct vhost_user_log) { 4096, 0 }, 16,
                      eventfd(0, EFD_CLOEXEC)), VHOST_DEVICE_DISCONNECT);
    CHECK_IGNORED(&f, send_u64(&f, VHOST_USER_NET_SET_MTU, 9000));
    CHECK_IGNORED(&f, send_u64(&f, VHOST_USER_SEND_RARP, 0x1234));
    teardown(&f);
}

static void
test_repeated_device_wide_messages(void)
{
    struct fixture f;
    struct vhost_mem *mem;
    int n_changed;

    setup(&f, 4);
    negotiate(&f, 0);
    mem = f.dev.mem;
    n_changed = f.n_changed;
    /* An old front-end repeats these per queue pair. */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(send_req(&f, VHOST_USER_SET_OWNER, 0, NULL, 0, -1),
                 VHOST_DEVICE_OK);
        CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES, net_features),
                 VHOST_DEVICE_OK);
        CHECK_EQ(send_mem_table(&f, MEM_SIZE), VHOST_DEVICE_OK);
    }
    /* Not remapped, nothing changed. */
    CHECK(f.dev.mem == mem);
    CHECK_EQ(f.n_changed, n_changed);
    /* A different table is a remap. */
    CHECK_EQ(send_mem_table(&f, MEM_SIZE / 2), VHOST_DEVICE_OK);
    CHECK(f.dev.mem != NULL);
    CHECK_EQ(f.dev.mem->regions[0].size, MEM_SIZE / 2);
    teardown(&f);
}

/* A new call fd for a running ring replaces the old one in place: no
 * restart, no wait for the data path; the old fd is closed only once the
 * data path cannot be using it. */
static void
test_call_fd_swapped_in_place(void)
{
    for (int late = 0; late < 2; late++) {
        struct fixture f;
        struct virtq *vq;
        int fd;

        setup(&f, 1);
        if (late) {
            vhost_device_destroy(&f.dev);
            vhost_device_init(&f.dev, "test", 1, &ops_defer, &f);
        }
        negotiate(&f, 0);
        CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
        vq = vhost_vring_live(&f.dev.vrings[0]);
        CHECK(vq != NULL);
        CHECK(vq->call_fd >= 0);
        f.n_sync = 0;
        fd = eventfd(0, EFD_CLOEXEC);
        CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_CALL, 0, &(uint64_t) { 0 },
                          8, fd), VHOST_DEVICE_OK);
        CHECK(vhost_vring_live(&f.dev.vrings[0]) == vq);
        CHECK_EQ(vq->call_fd, fd);
        CHECK_EQ(f.dev.vrings[0].call_fd, fd);
        /* With defer nothing waits, and the old fd stays open until the
         * grace period ends; without it, one wait. */
        CHECK_EQ(f.n_sync, late ? 0 : 1);
        CHECK_EQ(f.n_deferred, late);
        /* No fd: the ring stops notifying. */
        CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_CALL, 0,
                          &(uint64_t) { VHOST_USER_VRING_NOFD_MASK }, 8, -1),
                 VHOST_DEVICE_OK);
        CHECK_EQ(vq->call_fd, -1);
        if (late) {
            CHECK_EQ(f.n_deferred, 2);
            CHECK(fcntl(fd, F_GETFD) >= 0);
            run_deferred(&f);
            CHECK(fcntl(fd, F_GETFD) < 0);
        }
        teardown(&f);
    }
}

/* With a defer op, a front-end's disconnect waits for no data path: the
 * rings are unpublished at once and freed, with the call fds and the
 * memory, by the deferred callback. */
static void
test_disconnect_defers(void)
{
    struct fixture f;
    struct virtq *vq;
    int fd;

    setup(&f, 1);
    vhost_device_destroy(&f.dev);
    vhost_device_init(&f.dev, "test", 1, &ops_defer, &f);
    negotiate(&f, 0);
    CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
    CHECK_EQ(start_vring(&f, 1), VHOST_DEVICE_OK);
    vq = vhost_vring_live(&f.dev.vrings[0]);
    CHECK(vq != NULL);
    fd = f.dev.vrings[0].call_fd;
    CHECK(fd >= 0);
    f.n_sync = 0;

    vhost_device_disconnect(&f.dev);
    CHECK_EQ(f.n_sync, 0);
    CHECK(vhost_vring_live(&f.dev.vrings[0]) == NULL);
    CHECK(vhost_vring_live(&f.dev.vrings[1]) == NULL);
    CHECK(!vhost_device_is_ready(&f.dev));
    CHECK_EQ(f.n_deferred, 1);
    /* Until the callback runs, what the data path may still use stays:
     * the old virtq's call fd is open. */
    CHECK(fcntl(fd, F_GETFD) >= 0);
    run_deferred(&f);
    CHECK(fcntl(fd, F_GETFD) < 0);

    /* The next front-end starts from scratch. */
    negotiate(&f, 0);
    CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
    CHECK(vhost_vring_live(&f.dev.vrings[0]) != NULL);
    /* Destroying the port waits for the data path (no defer). */
    teardown(&f);
    CHECK_EQ(f.n_deferred, 0);
    CHECK(f.n_sync > 0);
}

/* A device with 'ops', REPLY_ACK negotiated and 2 queue pairs running. */
static void
setup_running(struct fixture *f, const struct vhost_device_ops *dev_ops)
{
    setup(f, 2);
    vhost_device_destroy(&f->dev);
    vhost_device_init(&f->dev, "test", 2, dev_ops, f);
    negotiate(f, 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    for (unsigned int i = 0; i < 4; i++) {
        CHECK_EQ(start_vring(f, i), VHOST_DEVICE_OK);
    }
    f->n_sync = 0;
}

/* Gives running vring 2 new addresses (at 0x40000 in guest memory). */
static enum vhost_device_result
move_ring_2(struct fixture *f)
{
    struct vhost_user_vring_addr addr;

    memset(&addr, 0, sizeof addr);
    addr.index = 2;
    addr.desc_user_addr = (uintptr_t) f->hva + 0x40000;
    addr.avail_user_addr = (uintptr_t) f->hva + 0x41000;
    addr.used_user_addr = (uintptr_t) f->hva + 0x42000;
    return send_req(f, VHOST_USER_SET_VRING_ADDR, 0, &addr, sizeof addr, -1);
}

static void
f_quiesce(void *aux, unsigned int i)
{
    struct fixture *f = aux;
    const struct vhost_vring *vr = &f->dev.vrings[i];

    f->quiesced |= 1ull << i;
    if (vhost_vring_live(vr) && vhost_vring_enabled(vr)) {
        f->n_quiesce_live++;
    }
}

static const struct vhost_device_ops ops_quiesce = {
    .synchronize = f_sync,
    .changed = f_changed,
    .log = f_log,
    .defer = f_defer,
    .quiesce_vring = f_quiesce,
};

/* With a quiesce op (a data path that uses each ring under a lock of its
 * own) no grace period is waited for: a message that
 * stops, disables or restarts rings waits out exactly those rings, once
 * it took them from the data path, and is answered at once. */
static void
test_quiesced_in_place(void)
{
    struct fixture f;

    setup_running(&f, &ops_quiesce);
    f.quiesced = 0;

    /* GET_VRING_BASE: answered at once, with where the ring stopped. */
    vhost_vring_live(&f.dev.vrings[1])->last_avail_idx = 7;
    CHECK_EQ(send_state(&f, VHOST_USER_GET_VRING_BASE, 1, 0),
             VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.state.index, 1);
    CHECK_EQ(f.reply.payload.state.num, 7);
    CHECK_EQ(f.quiesced, 1ull << 1);
    CHECK(!vhost_vring_live(&f.dev.vrings[1]));
    CHECK(!f.dev.vrings[1].started);
    CHECK(vhost_vring_live(&f.dev.vrings[0]));

    /* A disable asked to be acked: acked at once. */
    f.quiesced = 0;
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_ENABLE, 0, 1),
             VHOST_DEVICE_OK);
    CHECK_EQ(f.quiesced, 0);
    CHECK_EQ(send_req(&f, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_NEED_REPLY,
                      &(struct vhost_user_vring_state) { 0, 0 }, 8, -1),
             VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.u64, 0);
    CHECK_EQ(f.quiesced, 1ull << 0);

    /* New ring addresses: that ring restarts on them. */
    f.quiesced = 0;
    CHECK_EQ(move_ring_2(&f), VHOST_DEVICE_OK);
    CHECK_EQ(f.quiesced, 1ull << 2);
    CHECK(vhost_vring_live(&f.dev.vrings[2]));

    /* A new memory table: every running ring (not the stopped one). */
    f.quiesced = 0;
    CHECK_EQ(send_mem_table(&f, MEM_SIZE / 2), VHOST_DEVICE_OK);
    CHECK_EQ(f.quiesced, (1ull << 0) | (1ull << 2) | (1ull << 3));
    CHECK_EQ(f.dev.mem->regions[0].size, MEM_SIZE / 2);
    CHECK(vhost_vring_live(&f.dev.vrings[3]));

    /* Nothing was deferred or synchronized; every ring was taken from the
     * data path (or disabled) before it was waited out. */
    CHECK_EQ(f.n_deferred, 0);
    CHECK_EQ(f.n_sync, 0);
    CHECK_EQ(f.n_quiesce_live, 0);
    teardown(&f);
}

static void
test_mem_table_fd_too_small(void)
{
    struct fixture f;

    setup(&f, 1);
    CHECK_EQ(send_mem_table(&f, 2 * MEM_SIZE), VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(f.dev.errors.memory, 1);
    CHECK(!f.dev.mem);
    teardown(&f);
}

static void
test_mem_table_swap_restarts_rings(void)
{
    struct fixture f;
    struct virtq *before;

    setup(&f, 1);
    negotiate(&f, 0);
    CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
    before = vhost_vring_live(&f.dev.vrings[0]);
    before->last_avail_idx = 9;
    f.n_sync = 0;
    CHECK_EQ(send_mem_table(&f, MEM_SIZE / 2), VHOST_DEVICE_OK);
    CHECK(vhost_vring_live(&f.dev.vrings[0]) != NULL);
    CHECK(vhost_vring_live(&f.dev.vrings[0])->mem == f.dev.mem);
    CHECK_EQ(f.n_sync, 1);
    teardown(&f);
}

static void
test_mem_slots(void)
{
    struct fixture f;
    struct vhost_user_mem_single reg;

    setup(&f, 1);
    memset(&reg, 0, sizeof reg);
    reg.region.guest_phys_addr = 0;
    reg.region.memory_size = MEM_SIZE;
    reg.region.userspace_addr = (uintptr_t) f.hva;
    /* Not negotiated: refused, nothing mapped. */
    CHECK_IGNORED(&f, send_req(&f, VHOST_USER_ADD_MEM_REG, 0, &reg,
                               sizeof reg, dup(f.memfd)));
    CHECK(!f.dev.mem);
    teardown(&f);

    setup(&f, 1);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_PROTOCOL_FEATURES,
                      1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
             VHOST_DEVICE_OK);
    reg.region.userspace_addr = (uintptr_t) f.hva;
    CHECK_EQ(send_req(&f, VHOST_USER_ADD_MEM_REG, 0, &reg, sizeof reg,
                      dup(f.memfd)), VHOST_DEVICE_OK);
    CHECK_EQ(f.dev.mem->n_regions, 1);
    /* QEMU adds (and removes) each region once per queue pair: the same
     * region again is not an overlap, and changes nothing. */
    struct vhost_mem *mem = f.dev.mem;
    CHECK_EQ(send_req(&f, VHOST_USER_ADD_MEM_REG, 0, &reg, sizeof reg,
                      dup(f.memfd)), VHOST_DEVICE_OK);
    CHECK(f.dev.mem == mem);
    /* A different region that overlaps it is refused. */
    reg.region.memory_size = MEM_SIZE / 2;
    reg.region.userspace_addr = (uintptr_t) f.hva + 4096;
    CHECK_EQ(send_req(&f, VHOST_USER_ADD_MEM_REG, 0, &reg, sizeof reg,
                      dup(f.memfd)), VHOST_DEVICE_DISCONNECT);
    reg.region.memory_size = MEM_SIZE;
    reg.region.userspace_addr = (uintptr_t) f.hva;
    /* REM_MEM_REG names a region by its addresses: the file offset it
     * gives does not matter (the region goes, not only an ack). */
    reg.region.mmap_offset = 4096;
    CHECK_EQ(send_req(&f, VHOST_USER_REM_MEM_REG, 0, &reg, sizeof reg, -1),
             VHOST_DEVICE_OK);
    CHECK_EQ(f.dev.mem->n_regions, 0);
    reg.region.mmap_offset = 0;
    CHECK_EQ(send_req(&f, VHOST_USER_REM_MEM_REG, 0, &reg, sizeof reg, -1),
             VHOST_DEVICE_OK);
    teardown(&f);
}

static void
test_disconnect_keeps_counters(void)
{
    struct fixture f;

    setup(&f, 2);
    negotiate(&f, 0);
    CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
    f.dev.vrings[0].stats.packets = 42;
    vhost_device_disconnect(&f.dev);
    CHECK(!f.dev.mem);
    CHECK(!f.dev.features_set);
    CHECK(!vhost_vring_live(&f.dev.vrings[0]));
    CHECK_EQ(f.dev.vrings[0].kick_fd, -1);
    CHECK_EQ(f.dev.vrings[0].stats.packets, 42);
    CHECK_EQ(vhost_device_n_queue_pairs(&f.dev), 0);
    /* And the device takes a new front-end. */
    negotiate(&f, 0);
    CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
    teardown(&f);
}

static void
test_mtu_and_rarp(void)
{
    uint8_t mac[6];
    struct fixture f;

    setup(&f, 1);
    negotiate(&f, (1ull << VHOST_USER_PROTOCOL_F_NET_MTU)
                  | (1ull << VHOST_USER_PROTOCOL_F_RARP));
    /* Features without the MTU: the MTU is not the guest's to set. */
    CHECK_IGNORED(&f, send_u64(&f, VHOST_USER_NET_SET_MTU, 9000));
    CHECK_EQ(f.dev.mtu, 0);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES,
                      net_features | (1ull << VIRTIO_NET_F_MTU)),
             VHOST_DEVICE_OK);
    CHECK_EQ(send_u64(&f, VHOST_USER_NET_SET_MTU, 9000), VHOST_DEVICE_OK);
    CHECK_EQ(f.dev.mtu, 9000);
    CHECK_IGNORED(&f, send_u64(&f, VHOST_USER_NET_SET_MTU, 67));
    CHECK_IGNORED(&f, send_u64(&f, VHOST_USER_NET_SET_MTU, 65536));
    CHECK_EQ(send_u64(&f, VHOST_USER_SEND_RARP, 0x0000665544332211ull),
             VHOST_DEVICE_OK);
    CHECK(vhost_device_rarp_pending(&f.dev));
    CHECK(vhost_device_take_rarp(&f.dev, mac));
    CHECK_EQ(mac[0], 0x11);
    CHECK_EQ(mac[5], 0x66);
    CHECK(!vhost_device_rarp_pending(&f.dev));
    CHECK_EQ(send_u64(&f, VHOST_USER_SEND_RARP, 0x0000665544332211ull),
             VHOST_DEVICE_OK);
    /* A second request before the data path took the first replaces it,
     * whole. */
    CHECK_EQ(send_u64(&f, VHOST_USER_SEND_RARP, 0x0000aabbccddeeffull),
             VHOST_DEVICE_OK);
    CHECK(vhost_device_take_rarp(&f.dev, mac));
    CHECK_EQ(mac[0], 0xff);
    CHECK_EQ(mac[5], 0xaa);
    CHECK(!vhost_device_rarp_pending(&f.dev));
    CHECK(!vhost_device_take_rarp(&f.dev, mac));
    /* An all-zero MAC is still a request. */
    CHECK_EQ(send_u64(&f, VHOST_USER_SEND_RARP, 0), VHOST_DEVICE_OK);
    CHECK(vhost_device_take_rarp(&f.dev, mac));
    CHECK_EQ(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5], 0);
    CHECK(!vhost_device_take_rarp(&f.dev, mac));
    teardown(&f);
}

/* Requests the spec allows only once a feature was negotiated (the
 * codec's request table says which): refused without it.  One owed a
 * reply closes the connection; one that is not leaves the device as it
 * was, and with REPLY_ACK is nacked. */
static void
test_requests_need_their_features(void)
{
    struct fixture f;

    setup(&f, 2);
    CHECK_EQ(send_req(&f, VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, -1),
             VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(send_req(&f, VHOST_USER_GET_MAX_MEM_SLOTS, 0, NULL, 0, -1),
             VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(send_req(&f, VHOST_USER_GET_STATUS, 0, NULL, 0, -1),
             VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(f.dev.errors.state, 3);
    teardown(&f);

    /* Before SET_FEATURES an offered feature is enough (DPDK's virtio-user
     * enables its rings first when it reconnects). */
    setup(&f, 2);
    CHECK_EQ(send_state(&f, VHOST_USER_SET_VRING_ENABLE, 0, 1),
             VHOST_DEVICE_OK);
    CHECK(vhost_vring_enabled(&f.dev.vrings[0]));
    CHECK_EQ(f.dev.errors.state, 0);
    teardown(&f);

    /* Features acked without PROTOCOL_FEATURES: rings are enabled from the
     * start, and SET_VRING_ENABLE is not the front-end's to send. */
    setup(&f, 2);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES,
                      1ull << VIRTIO_F_VERSION_1), VHOST_DEVICE_OK);
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_ENABLE, 0, 0));
    CHECK(vhost_vring_enabled(&f.dev.vrings[0]));
    teardown(&f);

    setup(&f, 2);
    negotiate(&f, 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    /* RESET_DEVICE is never offered: the device is not reset. */
    CHECK_EQ(start_vring(&f, 0), VHOST_DEVICE_OK);
    CHECK_IGNORED(&f, send_req(&f, VHOST_USER_RESET_DEVICE, 0, NULL, 0,
                               -1));
    CHECK(vhost_vring_live(&f.dev.vrings[0]));
    CHECK(f.dev.mem);
    /* With REPLY_ACK, a nack. */
    CHECK_EQ(send_req(&f, VHOST_USER_RESET_DEVICE, VHOST_USER_NEED_REPLY,
                      NULL, 0, -1), VHOST_DEVICE_OK);
    CHECK(f.has_reply);
    CHECK_EQ(f.reply.payload.u64, 1);
    /* A log flag in the ring addresses without LOG_ALL. */
    struct vhost_user_vring_addr addr = { .index = 1,
                                          .flags = VHOST_VRING_F_LOG };
    CHECK_IGNORED(&f, send_req(&f, VHOST_USER_SET_VRING_ADDR, 0, &addr,
                               sizeof addr, -1));
    CHECK(!f.dev.vrings[1].addr_set);
    /* Neither MQ, STATUS nor CONFIGURE_MEM_SLOTS was negotiated. */
    CHECK_IGNORED(&f, send_u64(&f, VHOST_USER_SET_STATUS, 0xf));
    CHECK_EQ(f.dev.status, 0);
    CHECK_EQ(send_req(&f, VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, -1),
             VHOST_DEVICE_DISCONNECT);
    teardown(&f);
}

/* A refused message that leaves the device as it was does not close the
 * connection without REPLY_ACK; one whose refusal the front-end must learn
 * of (memory it cannot map, features it would use, a ring that cannot
 * start, a malformed message) does. */
static void
test_refusals_without_reply_ack(void)
{
    struct fixture f;

    setup(&f, 2);
    negotiate(&f, 0);
    CHECK_IGNORED(&f, send_state(&f, VHOST_USER_SET_VRING_NUM, 0, 3));
    CHECK_EQ(f.dev.vrings[0].num, 0);
    CHECK_EQ(send_mem_table(&f, MEM_SIZE * 2), VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(send_u64(&f, VHOST_USER_SET_FEATURES,
                      1ull << VIRTIO_F_IOMMU_PLATFORM), VHOST_DEVICE_DISCONNECT);
    CHECK_EQ(send_req(&f, VHOST_USER_SET_OWNER, 0, &(uint32_t) { 0 }, 4,
                      -1), VHOST_DEVICE_DISCONNECT);
    teardown(&f);
}

static const struct unit_test tests[] = {
    { "offers", test_offers },
    { "ready_and_queue_pairs", test_ready_and_queue_pairs },
    { "enabled_without_protocol_features",
      test_enabled_without_protocol_features },
    { "get_vring_base_stops", test_get_vring_base_stops },
    { "packed_ring_base", test_packed_ring_base },
    { "ring_rules", test_ring_rules },
    { "reply_ack", test_reply_ack },
    { "features_not_offered", test_features_not_offered },
    { "repeated_device_wide_messages", test_repeated_device_wide_messages },
    { "call_fd_swapped_in_place", test_call_fd_swapped_in_place },
    { "mem_table_fd_too_small", test_mem_table_fd_too_small },
    { "disconnect_defers", test_disconnect_defers },
    { "mem_table_swap_restarts_rings", test_mem_table_swap_restarts_rings },
    { "mem_slots", test_mem_slots },
    { "disconnect_keeps_counters", test_disconnect_keeps_counters },
    { "mtu_and_rarp", test_mtu_and_rarp },
    { "requests_need_their_features", test_requests_need_their_features },
    { "refusals_without_reply_ack", test_refusals_without_reply_ack },
    { "quiesced_in_place", test_quiesced_in_place },
};

UNIT_SUITE(device_suite, tests);
