/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * What the split and packed rings' data paths (virtq.c, virtq-packed.c)
 * share, and nothing else includes. */

#ifndef VIRTQ_PRIVATE_H
#define VIRTQ_PRIVATE_H 1

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vhost-log.h"
#include "virtq.h"

#define LIKELY(X) __builtin_expect(!!(X), 1)
#define UNLIKELY(X) __builtin_expect(!!(X), 0)

/* Guest memory is shared with a guest that runs concurrently.  Indexes are
 * read and written with explicit atomics and fences; descriptors and ring
 * entries are copied out once and only the copies are used. */
#define LOAD_ACQUIRE(P) __atomic_load_n(P, __ATOMIC_ACQUIRE)
#define LOAD_RELAXED(P) __atomic_load_n(P, __ATOMIC_RELAXED)
#define STORE_RELEASE(P, V) __atomic_store_n(P, V, __ATOMIC_RELEASE)
#define STORE_RELAXED(P, V) __atomic_store_n(P, V, __ATOMIC_RELAXED)

/* Counters have one writer: a relaxed load and store, no locked add. */
#define STAT_ADD(S, FIELD, N) \
    STORE_RELAXED(&(S)->FIELD, LOAD_RELAXED(&(S)->FIELD) + (N))

/* The bin of struct virtq_stats_acc a frame of 'len' bytes goes in: up to
 * 64 bytes, len / 64 (under 64, or 64); up to 1518, its highest bit set
 * less 4 (65-127: bit 6, bin 2; ... 1024-1518: bit 10, bin 6); 7 past
 * that.  (A compare and a bit scan, not a compare per bin.) */
static inline unsigned int
size_bin(uint32_t len)
{
    if (len <= 64) {
        return len >> 6;
    }
    return len <= 1518 ? 27 - __builtin_clz(len) : 7;
}

/* Counts a multicast destination address, the 6 bytes at 'dst'. */
static inline void
acc_group(struct virtq_stats_acc *a, const uint8_t *dst)
{
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    if (!memcmp(dst, bcast, sizeof bcast)) {
        a->broadcast++;
    } else {
        a->multicast++;
    }
}

/* Counts a frame of 'len' bytes whose destination address is at 'dst'
 * (read only if 'len' is at least 6), but for the frame itself: a burst
 * adds the number of its frames once, after its loop. */
static inline void
acc_frame(struct virtq_stats_acc *a, uint32_t len, const uint8_t *dst)
{
    a->bytes += len;
    if (len >= 6 && dst[0] & 1) {
        acc_group(a, dst);
    }
    a->bins[size_bin(len)]++;
}

/* acc_frame(), and the frame itself.  (Its own body, not packets++ and a
 * call of acc_frame(): with that, GCC 12 compiled split_dequeue_fast() 4
 * instructions a packet longer, by core-bench-callgrind.) */
static inline void
acc_count(struct virtq_stats_acc *a, uint32_t len, const uint8_t *dst)
{
    a->packets++;
    a->bytes += len;
    if (len >= 6 && dst[0] & 1) {
        acc_group(a, dst);
    }
    a->bins[size_bin(len)]++;
}

/* Adds the counts of 'from' (a burst's, kept in a local so that they
 * stay in registers while guest memory is written) to 'to'. */
static inline void
acc_merge(struct virtq_stats_acc *to, const struct virtq_stats_acc *from)
{
    to->packets += from->packets;
    to->bytes += from->bytes;
    to->multicast += from->multicast;
    to->broadcast += from->broadcast;
    for (int i = 0; i < 8; i++) {
        to->bins[i] += from->bins[i];
    }
}

static inline void
acc_flush(struct virtq_stats *s, const struct virtq_stats_acc *a)
{
    if (!a->packets) {
        return;
    }
    STAT_ADD(s, packets, a->packets);
    STAT_ADD(s, bytes, a->bytes);
    if (a->multicast) {
        STAT_ADD(s, multicast, a->multicast);
    }
    if (a->broadcast) {
        STAT_ADD(s, broadcast, a->broadcast);
    }
    uint64_t *bins[8] = {
        &s->undersize, &s->size_64, &s->size_65_127, &s->size_128_255,
        &s->size_256_511, &s->size_512_1023, &s->size_1024_1518,
        &s->size_1519_max,
    };
    for (int i = 0; i < 8; i++) {
        if (a->bins[i]) {
            STORE_RELAXED(bins[i], LOAD_RELAXED(bins[i]) + a->bins[i]);
        }
    }
}

static inline void
record_error(struct virtq *vq, enum virtq_error error, uint16_t head)
{
    vq->error = error;
    vq->error_head = head;
}

/* Drops the first 'skip' bytes (the virtio-net header) of 'pieces'.
 * Returns the number of pieces left, from '*first'. */
static inline int
skip_header(struct virtq_piece *pieces, int n, uint32_t skip, int *first)
{
    int i = 0;

    while (i < n && skip >= pieces[i].len) {
        skip -= pieces[i].len;
        i++;
    }
    if (i < n && skip) {
        pieces[i].base += skip;
        pieces[i].len -= skip;
    }
    *first = i;
    return n - i;
}

/* Copies the first 'len' bytes of 'pieces' (which hold at least that
 * many) to 'dst'. */
static inline void
gather(const struct virtq_piece *pieces, int n, uint8_t *dst, uint32_t len)
{
    for (int i = 0; i < n && len; i++) {
        uint32_t chunk = pieces[i].len < len ? pieces[i].len : len;

        memcpy(dst, pieces[i].base, chunk);
        dst += chunk;
        len -= chunk;
    }
}

/* The fields of a guest's virtio-net header the switch reads (all but
 * 'num_buffers', which means nothing in a transmitted frame). */
#define VIRTQ_HDR_READ offsetof(struct virtio_net_hdr, num_buffers)

/* Copies the header at 'raw' into '*hdr' and returns 'hdr'. */
static inline const struct virtio_net_hdr *
read_hdr(struct virtio_net_hdr *hdr, const uint8_t *raw)
{
    memcpy(hdr, raw, VIRTQ_HDR_READ);
    hdr->num_buffers = 0;
    return hdr;
}

/* Copies 'len' bytes of 'src' into 'pieces' from byte 'offset' on. */
static inline void
scatter(const struct virtq_piece *pieces, int n, uint64_t offset,
        const uint8_t *src, uint64_t len)
{
    for (int i = 0; i < n && len; i++) {
        uint64_t chunk;

        if (offset >= pieces[i].len) {
            offset -= pieces[i].len;
            continue;
        }
        chunk = pieces[i].len - offset;
        if (chunk > len) {
            chunk = len;
        }
        memcpy(pieces[i].base + offset, src, chunk);
        src += chunk;
        len -= chunk;
        offset = 0;
    }
}

/* Marks in the log the first 'len' bytes of 'pieces'. */
static inline void
log_pieces(struct vhost_log *log, const struct virtq_piece *pieces, int n,
           uint64_t len)
{
    for (int i = 0; i < n && len; i++) {
        uint64_t chunk = pieces[i].len < len ? pieces[i].len : len;

        vhost_log_mark(log, pieces[i].gpa, chunk);
        len -= chunk;
    }
}

/* Appends the buffer of 'dlen' bytes at guest-physical 'addr' to 'pieces'
 * (at most VIRTQ_MAX_PIECES in all, '*n' in use), one piece per memory
 * region it is in, and adds 'dlen' to '*len'.  Fails with
 * VIRTQ_ERR_TOO_LONG past 'limit' bytes or VIRTQ_MAX_PIECES pieces, with
 * VIRTQ_ERR_ADDR if any of it is outside guest memory. */
static inline enum virtq_error
add_buffer(struct virtq *vq, uint64_t addr, uint32_t dlen,
           struct virtq_piece *pieces, int *n, uint64_t *len, uint64_t limit)
{
    if (*len + dlen > limit) {
        return VIRTQ_ERR_TOO_LONG;
    }
    *len += dlen;
    for (uint64_t left = dlen; left; ) {
        uint64_t avail, chunk;
        uint8_t *p;

        p = vhost_mem_gpa_to_hva(vq->mem, &vq->cursor, addr, &avail);
        if (!p) {
            return VIRTQ_ERR_ADDR;
        }
        if (*n >= VIRTQ_MAX_PIECES) {
            return VIRTQ_ERR_TOO_LONG;
        }
        chunk = left < avail ? left : avail;
        pieces[*n].base = p;
        pieces[*n].len = chunk;
        pieces[*n].gpa = addr;
        (*n)++;
        addr += chunk;
        left -= chunk;
    }
    return VIRTQ_ERR_NONE;
}

/* The end of a TX chain's general walk, for both ring layouts: a chain
 * walked without error ('status') into the 'n' 'pieces' of 'len' bytes goes
 * to 'cb' without its virtio-net header (a copy of which it gets if one was
 * negotiated); a bad one, or one shorter than the header, is counted and
 * recorded at 'where'. */
static inline void
deliver_chain(struct virtq *vq, enum virtq_error status,
              struct virtq_piece *pieces, int n, uint64_t len,
              virtq_packet_cb *cb, void *aux, uint16_t where)
{
    if (status == VIRTQ_ERR_NONE && len < vq->hdr_len) {
        status = VIRTQ_ERR_SHORT;
    }
    if (status == VIRTQ_ERR_NONE) {
        struct virtio_net_hdr hdr_copy;
        const struct virtio_net_hdr *hdr = NULL;
        uint8_t dst_copy[6];
        int first;

        if (vq->features & VIRTQ_HDR_FEATURES) {
            uint8_t raw[sizeof hdr_copy];

            gather(pieces, n, raw, VIRTQ_HDR_READ);
            hdr = read_hdr(&hdr_copy, raw);
        }

        int left = skip_header(pieces, n, vq->hdr_len, &first);
        uint32_t frame_len = len - vq->hdr_len;
        const uint8_t *dst = dst_copy;

        /* The destination address, if the frame has one, may be split
         * over pieces. */
        if (left && pieces[first].len >= 6) {
            dst = pieces[first].base;
        } else if (frame_len >= 6) {
            gather(&pieces[first], left, dst_copy, sizeof dst_copy);
        }
        acc_count(&vq->pending, frame_len, dst);
        cb(aux, &pieces[first], left, frame_len, hdr);
    } else {
        if (status == VIRTQ_ERR_TOO_LONG) {
            STAT_ADD(vq->stats, too_long, 1);
        } else {
            STAT_ADD(vq->stats, bad_chain, 1);
        }
        record_error(vq, status, where);
    }
}

/* The fast paths' test of a descriptor (the fields of its copy): whether
 * it is a chain of its own, neither chained nor indirect, device-writable
 * exactly if 'write', of 'min_len' to 'max_len' bytes, all in one region
 * of 'mem'.  If so, returns where its buffer is, else NULL (and the
 * general walk decides: it makes the same checks and more).  One test for
 * both ring layouts, per-frame and per-burst paths alike. */
static inline uint8_t *
single_buffer(const struct vhost_mem *mem, struct vhost_mem_cursor *cursor,
              uint16_t flags, uint32_t len, uint64_t addr, bool write,
              uint64_t min_len, uint64_t max_len)
{
    if ((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT
                  | VRING_DESC_F_WRITE)) != (write ? VRING_DESC_F_WRITE : 0)
        || len < min_len || len > max_len) {
        return NULL;
    }
    return vhost_mem_gpa_range_to_hva(mem, cursor, addr, len);
}

/* The dequeue fast paths' hand-out of a frame whose buffer, header first,
 * of 'buf_len' bytes, is at 'p': counted in 'acc' (but for the frame
 * itself: see acc_frame()), then stored in
 * frames[i] (and a copy of its header, if 'with_hdrs', in hdrs[i]) or, if
 * 'frames' is null, given to 'cb'. */
static inline void
hand_out_frame(uint8_t *p, uint32_t buf_len, uint32_t hdr_len,
               bool with_hdrs, struct virtq_stats_acc *acc, int i,
               struct virtq_frame *frames, struct virtio_net_hdr *hdrs,
               virtq_packet_cb *cb, void *aux)
{
    uint32_t len = buf_len - hdr_len;

    acc_frame(acc, len, p + hdr_len);
    if (frames) {
        if (with_hdrs) {
            read_hdr(&hdrs[i], p);
        }
        frames[i].data = p + hdr_len;
        frames[i].len = len;
    } else {
        struct virtio_net_hdr hdr_copy;
        const struct virtio_net_hdr *hdr = NULL;
        struct virtq_piece piece = { .base = p + hdr_len, .len = len };

        if (with_hdrs) {
            /* Copied out once: the guest may change it meanwhile. */
            hdr = read_hdr(&hdr_copy, p);
        }
        cb(aux, &piece, 1, len, hdr);
    }
}

/* The enqueue fast paths' write of the frame 'data' of 'len' bytes into
 * the one buffer at 'p', after a 12-byte header of zeros but for
 * num_buffers (1). */
static inline void
put_frame_one_buffer(uint8_t *p, const void *data, uint32_t len)
{
    static const struct virtio_net_hdr one_buffer = { .num_buffers = 1 };

    memcpy(p, &one_buffer, sizeof one_buffer);
    virtq_copy(p + sizeof one_buffer, data, len);
}

/* The guest-physical address of 'p', a pointer into one of the regions
 * of 'mem'. */
uint64_t virtq_hva_to_gpa(const struct vhost_mem *mem, const uint8_t *p);

/* Counts a failed notification through 'call_fd' (see vhost_notify()) and
 * leaves it for the caller to log; stops notifying through that fd if the
 * write blocked. */
void virtq_notify_failed(struct virtq *vq, int call_fd, int error);

#endif /* virtq-private.h */
