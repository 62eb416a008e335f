/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Frames for the tests of the multicast and broadcast counts, the same for
 * the split ring (test-virtq.c) and the packed ring (test-virtq-packed.c):
 * unicast, multicast, broadcast, 5 bytes of 0xff (too short to have a
 * destination), a broadcast destination alone, and a multicast one all but
 * its last byte 0xff (1000 bytes: more than one 256-byte buffer). */

#ifndef GROUP_FRAMES_H
#define GROUP_FRAMES_H 1

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "virtq.h"

static const struct {
    uint32_t len;
    uint8_t dst[6];
} group_frames[] = {
    { 60, { 0x02, 0, 0, 0, 0, 1 } },
    { 60, { 0x01, 0x00, 0x5e, 0, 0, 1 } },
    { 60, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
    { 5, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
    { 6, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
    { 1000, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe } },
};
enum { N_GROUP_FRAMES = sizeof group_frames / sizeof group_frames[0] };

/* The 1000-byte frame (and its 12-byte header) in 256-byte buffers. */
enum { GROUP_EXTRA_BUFFERS = 3 };

/* virtq_packet_cb: keeps the one frame handed out in 'aux', a struct
 * group_sink. */
struct group_sink {
    uint32_t len;
    uint8_t data[2048];
};

static inline void
group_sink_cb(void *aux, const struct virtq_piece *pieces, int n,
              uint32_t len, const struct virtio_net_hdr *hdr)
{
    struct group_sink *s = aux;
    uint32_t off = 0;

    (void) hdr;
    for (int i = 0; i < n; i++) {
        if (off + pieces[i].len <= sizeof s->data) {
            memcpy(s->data + off, pieces[i].base, pieces[i].len);
        }
        off += pieces[i].len;
    }
    s->len = len;
}

/* The switch's side, through virtq.h alone (either ring layout): the
 * frames from 'tx' to 'rx' by the fast paths (way 0) or one at a time
 * through the general dequeue and the single-frame enqueue. */
static inline void
group_switch(struct virtq *tx, struct virtq *rx, int way)
{
    if (way == 0) {
        struct virtq_frame frames[N_GROUP_FRAMES];
        bool more;

        CHECK_EQ(virtq_dequeue_frames(tx, 32, frames, NULL, &more),
                 N_GROUP_FRAMES);
        CHECK(!more);
        CHECK_EQ(virtq_enqueue_burst(rx, frames, N_GROUP_FRAMES),
                 N_GROUP_FRAMES);
        virtq_flush(tx);
    } else {
        for (int j = 0; j < N_GROUP_FRAMES; j++) {
            static struct group_sink s;

            CHECK_EQ(virtq_dequeue_burst(tx, 1, group_sink_cb, &s), 1);
            CHECK_EQ(s.len, group_frames[j].len);
            CHECK_EQ(virtq_enqueue(rx, s.data, s.len), 0);
        }
    }
    virtq_flush(rx);
}

static inline void
check_group_counts(const struct virtq_stats *st)
{
    CHECK_EQ(st->packets, N_GROUP_FRAMES);
    CHECK_EQ(st->multicast, 2);
    CHECK_EQ(st->broadcast, 2);
}

#endif /* group-frames.h */
