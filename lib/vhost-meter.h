/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * A token bucket, the meter of ingress policing and egress QoS. */

#ifndef VHOST_METER_H
#define VHOST_METER_H 1

/* A meter holds up to 'burst' tokens, starts full, and gains 'rate' tokens
 * a second up to that limit.  What a token stands for is the caller's: a
 * byte (a rate in bytes a second) or a packet.  A frame passes if the
 * bucket holds the tokens it costs, which it then takes; otherwise it
 * takes nothing and the frame is dropped.
 *
 * The bucket is kept in millionths of a token, so that refilling after
 * any number of microseconds loses nothing to rounding and needs no
 * division: 'rate' tokens a second are 'rate' millionths a microsecond.
 * Rates and bursts are at most VHOST_METER_MAX (4.4e12: over 35 Tbit/s in
 * bytes), so that every sum stays within 64 bits.
 *
 * Not thread-safe: its user serializes calls.  No Open vSwitch
 * dependency. */

#include <stdbool.h>
#include <stdint.h>

#define VHOST_METER_MAX (UINT64_C(1) << 42)

struct vhost_meter {
    uint64_t rate;              /* Tokens a second. */
    uint64_t capacity;          /* 'burst' tokens, in millionths. */
    uint64_t level;             /* Millionths of a token in the bucket. */
    uint64_t fill_us;           /* An empty bucket is full after this. */
    long long int last_us;      /* Time of the last refill. */
};

/* Sets up 'm', full, at time 'now_us' (microseconds, any monotonic
 * origin).  Returns EINVAL (and leaves 'm' alone) unless 1 <= 'rate' and
 * 'burst' <= VHOST_METER_MAX. */
int vhost_meter_init(struct vhost_meter *m, uint64_t rate, uint64_t burst,
                     long long int now_us);

/* Adds the tokens earned since the last refill (none if the clock went
 * back). */
void vhost_meter_refill(struct vhost_meter *m, long long int now_us);

/* Whether the bucket holds 'tokens' now. */
static inline bool
vhost_meter_has(const struct vhost_meter *m, uint64_t tokens)
{
    return tokens <= VHOST_METER_MAX
           && tokens * UINT64_C(1000000) <= m->level;
}

/* Takes 'tokens', which the bucket holds (vhost_meter_has()). */
static inline void
vhost_meter_take(struct vhost_meter *m, uint64_t tokens)
{
    m->level -= tokens * UINT64_C(1000000);
}

/* Tokens in the bucket now (rounded down). */
static inline uint64_t
vhost_meter_tokens(const struct vhost_meter *m)
{
    return m->level / UINT64_C(1000000);
}

#endif /* lib/vhost-meter.h */
