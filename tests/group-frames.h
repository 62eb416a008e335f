/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Frames for the tests of the multicast and broadcast counts, the same for
 * the split ring (test-virtq.c) and the packed ring (test-virtq-packed.c):
 * unicast, multicast, broadcast, 5 bytes of 0xff (too short to have a
 * destination), a broadcast destination alone, and a multicast one all but
 * its last byte 0xff (1000 bytes: more than one 256-byte buffer). */

#ifndef GROUP_FRAMES_H
#define GROUP_FRAMES_H 1

#include <stdint.h>

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

static inline void
check_group_counts(const struct virtq_stats *st)
{
    CHECK_EQ(st->packets, N_GROUP_FRAMES);
    CHECK_EQ(st->multicast, 2);
    CHECK_EQ(st->broadcast, 2);
}

#endif /* group-frames.h */
