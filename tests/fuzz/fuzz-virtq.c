/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* libFuzzer target: the split and packed virtqueue data paths against a
 * guest that controls every byte of its memory.
 *
 * Guest memory is two regions of 64 KiB (memfds, mapped by the core as a
 * front-end's table would have them mapped), far apart in guest-physical
 * space.  The input:
 *
 *   byte 0      negotiated features (bits: EVENT_IDX, MRG_RXBUF,
 *               INDIRECT_DESC, VERSION_1) and the ring size (2^(bits 4-7),
 *               sizes past 32768 and 0 included)
 *   bytes 1-2   the avail index to start from (SET_VRING_BASE)
 *   bytes 3-4   where the rings sit (low bits steer them into the regions,
 *               across their ends or outside; bit 1 negotiates
 *               VIRTIO_NET_F_CSUM, so that frames come with their header;
 *               bit 2 VIRTIO_F_RING_PACKED, whose ring is then one less
 *               than a power of 2 if bit 3 is set, and the base a position
 *               and a wrap counter)
 *   then        an operation script, and the rest fills region 0, then
 *               region 1: descriptor tables, rings, buffers, indirect
 *               tables, all as the fuzzer wants them.
 *
 * Operations: dequeue a burst (the callback checks that every piece lies
 * in guest memory and reads it all), enqueue a frame of a chosen length,
 * discard a burst, flush, prefetch, move the guest's avail index (packed:
 * make a descriptor available in one lap or the other).  ASAN and
 * UBSAN watch the core; the explicit checks catch what they cannot see (a
 * piece pointing into other mapped memory). */

#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost-mem.h"
#include "virtq.h"

#define REGION_SIZE 65536
#define GPA0 0x100000ull
#define GPA1 0x40000000ull

static struct vhost_mem *mem;
static uint8_t *view[2];        /* Our own writable view of each region. */
static const uint8_t *core_base[2];     /* The core's mapping. */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct vhost_user_msg msg;

    (void) argc;
    (void) argv;
    memset(&msg, 0, sizeof msg);
    msg.request = VHOST_USER_SET_MEM_TABLE;
    msg.flags = VHOST_USER_VERSION;
    msg.size = 8 + 2 * 32;
    msg.payload.mem.nregions = 2;
    for (int i = 0; i < 2; i++) {
        int fd = memfd_create("fuzz-virtq", MFD_CLOEXEC);

        if (fd < 0 || ftruncate(fd, REGION_SIZE)) {
            abort();
        }
        view[i] = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                       fd, 0);
        if (view[i] == MAP_FAILED) {
            abort();
        }
        msg.payload.mem.regions[i].guest_phys_addr = i ? GPA1 : GPA0;
        msg.payload.mem.regions[i].memory_size = REGION_SIZE;
        /* The front-end's addresses: our view's. */
        msg.payload.mem.regions[i].userspace_addr = (uintptr_t) view[i];
        msg.fds[i] = fd;
    }
    msg.n_fds = 2;
    if (vhost_user_validate(&msg, 8, NULL)
        || vhost_mem_from_table(&msg, UINT64_MAX, &mem)) {
        abort();
    }
    for (int i = 0; i < 2; i++) {
        uint64_t avail;
        struct vhost_mem_cursor c = { 0 };

        core_base[i] = vhost_mem_gpa_to_hva(mem, &c, i ? GPA1 : GPA0, &avail);
        if (!core_base[i] || avail != REGION_SIZE) {
            abort();
        }
    }
    return 0;
}

static bool
in_guest(const uint8_t *p, size_t len)
{
    for (int i = 0; i < 2; i++) {
        if (p >= core_base[i] && len <= REGION_SIZE
            && (size_t) (p - core_base[i]) <= REGION_SIZE - len) {
            return true;
        }
    }
    return false;
}

static void
check_packet(void *aux, const struct virtq_piece *pieces, int n, uint32_t len,
             const struct virtio_net_hdr *hdr)
{
    const uint64_t *features = aux;
    volatile uint8_t sink = 0;
    uint64_t total = 0;

    /* A header exactly when offloads were negotiated, a copy. */
    if (!hdr != !(*features & VIRTQ_HDR_FEATURES)
        || (hdr && (hdr->num_buffers || in_guest((const void *) hdr, 1)))) {
        abort();
    }
    if (n < 0 || n > VIRTQ_MAX_PIECES) {
        abort();
    }
    for (int i = 0; i < n; i++) {
        if (!in_guest(pieces[i].base, pieces[i].len)) {
            abort();
        }
        for (size_t j = 0; j < pieces[i].len; j++) {
            sink ^= pieces[i].base[j];
        }
        total += pieces[i].len;
    }
    if (total != len || len > VIRTQ_MAX_PACKET) {
        abort();
    }
    (void) sink;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t frame[VIRTQ_MAX_PACKET];
    static const uint64_t feature_bits[4] = {
        1ull << VIRTIO_RING_F_EVENT_IDX, 1ull << VIRTIO_NET_F_MRG_RXBUF,
        1ull << VIRTIO_RING_F_INDIRECT_DESC, 1ull << VIRTIO_F_VERSION_1,
    };
    struct virtq_stats stats;
    uint64_t features = 0;
    uint64_t desc, avail, used;
    const uint8_t *script;
    size_t script_len, fill;
    struct virtq vq;
    uint32_t ring_size;
    uint16_t base, where;

    if (size < 6) {
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (data[0] & (1 << i)) {
            features |= feature_bits[i];
        }
    }
    ring_size = (data[0] >> 4) == 15 ? 0 : 1u << (data[0] >> 4);
    base = data[1] | data[2] << 8;
    where = data[3] | data[4] << 8;
    if (where & 2) {
        features |= 1ull << VIRTIO_NET_F_CSUM;
    }
    bool packed = where & 4;
    if (packed) {
        features |= 1ull << VIRTIO_F_RING_PACKED;
        if (where & 8 && ring_size > 1) {
            ring_size--;
        }
    }
    script_len = data[5] % 32;
    data += 6;
    size -= 6;
    if (script_len > size) {
        script_len = size;
    }
    script = data;
    data += script_len;
    size -= script_len;

    /* Guest memory from the rest of the input, zeros after it. */
    for (int i = 0; i < 2; i++) {
        fill = size < REGION_SIZE ? size : REGION_SIZE;
        memcpy(view[i], data, fill);
        memset(view[i] + fill, 0, REGION_SIZE - fill);
        data += fill;
        size -= fill;
    }

    /* The rings: usually where a driver puts them, in region 0; some
     * inputs push them to region 1, to a region's end or outside. */
    uint64_t ring_base = (where & 0x8000 ? GPA1 : GPA0)
                         + (where & 0x7ff0) * ((where & 0x4000) ? 4 : 1);
    desc = ring_base;
    avail = desc + 16 * (uint64_t) (ring_size ? ring_size : 1);
    if (packed) {
        /* The driver's and the device's event suppression structures. */
        used = avail + 4;
        if (where & 1) {
            avail += 2;                                 /* Misaligned. */
        }
    } else {
        used = (avail + 6 + 2 * (uint64_t) ring_size + 4095) & ~4095ull;
        if (where & 1) {
            used = avail + 6 + 2 * (uint64_t) ring_size; /* Misaligned. */
        }
    }
    memset(&stats, 0, sizeof stats);
    /* virtq_init() takes the front-end's addresses (QVAs): ours. */
    uint64_t shift = ring_base >= GPA1 ? (uintptr_t) view[1] - GPA1
                                       : (uintptr_t) view[0] - GPA0;
    if (virtq_init(&vq, mem, ring_size, desc + shift, avail + shift,
                   used + shift, base, features, -1, &stats)) {
        return 0;
    }

    for (size_t i = 0; i < script_len; i++) {
        uint8_t op = script[i];
        uint16_t arg = (uint16_t) (op >> 3) * 521;

        switch (op & 7) {
        case 0:
            virtq_dequeue_burst(&vq, 1 + (op >> 3), check_packet,
                                &features);
            break;
        case 1: {
            /* The provider's way: the fast path's frames, then the general
             * walk for the rest. */
            struct virtq_frame frames[32];
            struct virtio_net_hdr hdrs[32];
            int max = 1 + (op >> 3);
            bool more;
            int n = virtq_dequeue_frames(&vq, max, frames, hdrs, &more);

            if (n < 0 || n > max || (more && n == max)) {
                abort();
            }
            for (int j = 0; j < n; j++) {
                struct virtq_piece piece = {
                    .base = (uint8_t *) frames[j].data, .len = frames[j].len,
                };

                check_packet(&features, &piece, 1, frames[j].len,
                             virtq_hands_hdrs(&vq) ? &hdrs[j] : NULL);
            }
            if (more) {
                virtq_dequeue_burst(&vq, max - n, check_packet, &features);
            } else {
                virtq_flush(&vq);
            }
            break;
        }
        case 2:
            if (op & 0x80) {
                static const struct virtio_net_hdr hdr = {
                    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                    .hdr_len = 54, .gso_size = 1448,
                    .csum_start = 34, .csum_offset = 16,
                };

                virtq_enqueue_hdr(&vq, &hdr, frame, 60 + arg % 1460);
            } else {
                virtq_enqueue(&vq, frame, 60 + arg % 1460);
            }
            break;
        case 3:
            if (op & 0x80) {
                /* The provider's way: a burst through the fast path, the
                 * rest one by one. */
                struct virtq_frame frames[16];
                int n = 1 + (op >> 3) % 16;

                for (int j = 0; j < n; j++) {
                    frames[j].data = frame;
                    frames[j].len = 60 + (arg + j * 997) % 1900;
                }
                int done = virtq_enqueue_burst(&vq, frames, n);
                if (done < 0 || done > n) {
                    abort();
                }
                for (int j = done; j < n; j++) {
                    virtq_enqueue(&vq, frames[j].data, frames[j].len);
                }
            } else {
                virtq_enqueue(&vq, frame, arg * 7 % VIRTQ_MAX_PACKET);
            }
            break;
        case 4:
            virtq_discard_burst(&vq, 1 + (op >> 3));
            break;
        case 5:
            virtq_flush(&vq);
            break;
        case 6:
            virtq_prefetch_rx(&vq, op >> 3);
            break;
        case 7: {
            /* The guest moves its avail index (if the ring is in guest
             * memory at all); in a packed ring, marks a descriptor
             * available in the first lap or the second. */
            int r = ring_base >= GPA1;
            uint64_t off = avail - (r ? GPA1 : GPA0);

            if (packed) {
                uint64_t d = desc - (r ? GPA1 : GPA0)
                             + 16 * ((op >> 4) % ring_size) + 14;
                uint16_t flags = (op & 8 ? VRING_PACKED_DESC_F_AVAIL
                                  : VRING_PACKED_DESC_F_USED);

                if (d <= REGION_SIZE - 2) {
                    memcpy(view[r] + d, &flags, 2);
                }
            } else if (off <= REGION_SIZE - 4) {
                uint16_t idx;

                memcpy(&idx, view[r] + off + 2, 2);
                idx += 1 + (op >> 3);
                memcpy(view[r] + off + 2, &idx, 2);
            }
            break;
        }
        }
    }
    virtq_flush(&vq);
    return 0;
}
