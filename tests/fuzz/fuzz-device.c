/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* libFuzzer target: a front-end's message stream, as the connection layer
 * hands it to the device state machine.
 *
 * The input is a sequence of records, each:
 *
 *   1 byte    fds to attach (low 4 bits, 0 to 8 kept) and which kind
 *             (high bits: memfds of 4 KiB (sealed, so that it may serve as
 *             a dirty log), 64 KiB or 1 MiB, or an eventfd)
 *   12 bytes  a vhost-user header (request, flags, size)
 *   N bytes   its payload, N as the header says (the record is cut short,
 *             and the stream ends, if the input has less)
 *
 * Each header goes through vhost_user_decode_header() (a refused one ends
 * the stream, as the connection is dropped), each message through
 * vhost_device_handle(), replies through vhost_user_encode(); a result that
 * asks for a disconnect resets the device as a new connection would.
 * Whenever a vring is live its ring is polled both ways over the memfd
 * memory the fuzzer's memory tables describe (all zero unless the fuzzer
 * sent descriptors through it: the point is every ring state the control
 * path can produce).  After each input the device is destroyed, and as
 * many descriptors must be open as before it: no leaks. */

#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost-device.h"
#include "virtq.h"

static int memfds[3];
static uint8_t *memfd_views[3];
static const size_t memfd_sizes[3] = { 4096, 65536, 1 << 20 };

static void
f_sync(void *aux)
{
    (void) aux;
}

static void
f_changed(void *aux)
{
    (void) aux;
}

static void
f_log(void *aux, enum vhost_log_level level, const char *msg)
{
    (void) aux;
    (void) level;
    (void) msg;
}

/* Deferred frees (a disconnect's rings, call fds and memory), run after
 * the next message, as a grace period would end: the leak check at the
 * end of each input covers them. */
static struct {
    void (*cb)(void *);
    void *arg;
} deferred[64];
static int n_deferred;

static void
run_deferred(void)
{
    for (int i = 0; i < n_deferred; i++) {
        deferred[i].cb(deferred[i].arg);
    }
    n_deferred = 0;
}

static void
f_defer(void *aux, void (*cb)(void *), void *arg)
{
    (void) aux;
    if (n_deferred >= (int) (sizeof deferred / sizeof *deferred)) {
        run_deferred();
    }
    deferred[n_deferred].cb = cb;
    deferred[n_deferred].arg = arg;
    n_deferred++;
}

/* As the switch's: the data path uses each ring under a lock of its own,
 * which the device waits out only for a ring it took from the data path
 * or disabled first. */
static void
f_quiesce(void *dev_, unsigned int i)
{
    const struct vhost_device *dev = dev_;
    const struct vhost_vring *vr = &dev->vrings[i];

    if (i >= dev->max_vrings_allocated
        || (vhost_vring_live(vr) && vhost_vring_enabled(vr))) {
        abort();
    }
}

static const struct vhost_device_ops ops = {
    .synchronize = f_sync,
    .changed = f_changed,
    .log = f_log,
    .defer = f_defer,
    .quiesce_vring = f_quiesce,
};

/* Open descriptors, counted at the start and at the end of each input
 * (libFuzzer's own come and go between inputs, never during one). */
static int
count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    if (!dir) {
        abort();
    }
    while ((de = readdir(dir)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(dir);
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    /* The fault registry's eventfd is made once, with the first mapping:
     * make it now, so that the per-input fd count does not take it for a
     * leak. */
    if (vhost_mem_fault_fd() < 0) {
        abort();
    }
    for (int i = 0; i < 3; i++) {
        /* The 4 KiB one is sealed against resizing, as QEMU's dirty log
         * is (the switch maps no other as a log): SET_LOG_BASE's stream
         * gets past the log checks. */
        memfds[i] = memfd_create("fuzz-device",
                                 MFD_CLOEXEC | (i ? 0 : MFD_ALLOW_SEALING));
        if (memfds[i] < 0 || ftruncate(memfds[i], memfd_sizes[i])
            || (!i && fcntl(memfds[i], F_ADD_SEALS,
                            F_SEAL_SHRINK | F_SEAL_GROW))) {
            abort();
        }
        memfd_views[i] = mmap(NULL, memfd_sizes[i], PROT_READ | PROT_WRITE,
                              MAP_SHARED, memfds[i], 0);
        if (memfd_views[i] == MAP_FAILED) {
            abort();
        }
    }
    return 0;
}

static int
make_fd(unsigned int kind)
{
    return kind < 3 ? dup(memfds[kind])
                    : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static void
noop_packet(void *aux, const struct virtq_piece *pieces, int n, uint32_t len,
            const struct virtio_net_hdr *hdr)
{
    (void) hdr;
    volatile uint8_t sink = 0;

    (void) aux;
    /* Touch every byte the data path claims is a frame: out-of-bounds
     * pieces would show under ASAN or fault. */
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < pieces[i].len; j++) {
            sink ^= pieces[i].base[j];
        }
    }
    (void) len;
    (void) sink;
}

static void
poll_rings(struct vhost_device *dev)
{
    static const uint8_t frame[1514];

    for (unsigned int i = 0; i < dev->max_vrings; i++) {
        struct virtq *vq = vhost_vring_live(&dev->vrings[i]);

        if (!vq) {
            continue;
        }
        if (i & 1) {
            virtq_dequeue_burst(vq, 32, noop_packet, NULL);
        } else {
            virtq_enqueue(vq, frame, 60);
            virtq_enqueue(vq, frame, sizeof frame);
            virtq_flush(vq);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vhost_device dev;
    size_t ofs = 0;

    int fds_before = count_fds();

    /* The data path writes guest memory: start every input from zeros,
     * so that a crash reproduces from its input alone. */
    for (int i = 0; i < 3; i++) {
        memset(memfd_views[i], 0, memfd_sizes[i]);
    }
    vhost_device_init(&dev, "fuzz", 4, &ops, &dev);
    while (size - ofs >= 1 + VHOST_USER_HDR_SIZE) {
        struct vhost_user_msg msg, reply;
        unsigned int n_fds = data[ofs] & 0xf;
        unsigned int kind = (data[ofs] >> 4) & 3;
        enum vhost_device_result result;
        uint8_t out[VHOST_USER_HDR_SIZE + sizeof msg.payload];
        bool has_reply;

        ofs++;
        memset(&msg, 0, sizeof msg);
        if (vhost_user_decode_header(data + ofs, &msg)) {
            break;
        }
        ofs += VHOST_USER_HDR_SIZE;
        if (size - ofs < msg.size) {
            break;
        }
        memcpy(&msg.payload, data + ofs, msg.size);
        ofs += msg.size;
        if (n_fds > VHOST_USER_MAX_FDS) {
            n_fds = VHOST_USER_MAX_FDS;
        }
        for (unsigned int i = 0; i < n_fds; i++) {
            msg.fds[msg.n_fds] = make_fd((kind + i) & 3);
            if (msg.fds[msg.n_fds] >= 0) {
                msg.n_fds++;
            }
        }

        result = vhost_device_handle(&dev, &msg, &reply, &has_reply);
        if (has_reply && !vhost_user_encode(&reply, out, sizeof out)) {
            abort();            /* A reply that cannot be sent. */
        }
        run_deferred();
        if (result == VHOST_DEVICE_DISCONNECT) {
            vhost_device_disconnect(&dev);
        } else {
            poll_rings(&dev);
        }
    }
    vhost_device_destroy(&dev);
    run_deferred();

    if (count_fds() != fds_before) {
        abort();                /* A descriptor leaked. */
    }
    return 0;
}
