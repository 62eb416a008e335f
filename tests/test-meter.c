/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Unit tests of the token bucket behind policing and egress QoS, on a
 * clock the test moves. */

#include <errno.h>

#include "unit.h"
#include "vhost-meter.h"

static void
test_init_refusals(void)
{
    struct vhost_meter m;

    CHECK_EQ(vhost_meter_init(&m, 0, 100, 0), EINVAL);
    CHECK_EQ(vhost_meter_init(&m, 100, 0, 0), EINVAL);
    CHECK_EQ(vhost_meter_init(&m, VHOST_METER_MAX + 1, 100, 0), EINVAL);
    CHECK_EQ(vhost_meter_init(&m, 100, VHOST_METER_MAX + 1, 0), EINVAL);
    CHECK_EQ(vhost_meter_init(&m, VHOST_METER_MAX, VHOST_METER_MAX, 0), 0);
    CHECK_EQ(vhost_meter_tokens(&m), VHOST_METER_MAX);
}

/* Full at the start; empty, it earns 'rate' tokens a second, and never
 * more than 'burst'. */
static void
test_starts_full_and_refills(void)
{
    struct vhost_meter m;
    long long int t = 5000000;

    CHECK_EQ(vhost_meter_init(&m, 1000, 100, t), 0);
    CHECK(vhost_meter_has(&m, 100));
    CHECK(!vhost_meter_has(&m, 101));
    vhost_meter_take(&m, 100);
    CHECK(!vhost_meter_has(&m, 1));

    /* One token a millisecond. */
    vhost_meter_refill(&m, t + 999);
    CHECK(!vhost_meter_has(&m, 1));
    vhost_meter_refill(&m, t + 1000);
    CHECK(vhost_meter_has(&m, 1));
    CHECK(!vhost_meter_has(&m, 2));
    vhost_meter_refill(&m, t + 50000);
    CHECK_EQ(vhost_meter_tokens(&m), 50);

    /* A long idle time fills it to 'burst', no more. */
    vhost_meter_refill(&m, t + 3600LL * 1000000);
    CHECK_EQ(vhost_meter_tokens(&m), 100);
    CHECK(!vhost_meter_has(&m, 101));

    /* A clock that goes back earns nothing, and costs nothing later. */
    vhost_meter_take(&m, 100);
    vhost_meter_refill(&m, t);
    CHECK(!vhost_meter_has(&m, 1));
    vhost_meter_refill(&m, t + 3600LL * 1000000 + 2000);
    CHECK_EQ(vhost_meter_tokens(&m), 2);

    /* A cost above any bucket never passes. */
    CHECK(!vhost_meter_has(&m, UINT64_MAX));
}

/* Refills every microsecond lose nothing to rounding: 3 tokens a second
 * are 3 tokens after a million refills one microsecond apart. */
static void
test_no_rounding_loss(void)
{
    struct vhost_meter m;

    CHECK_EQ(vhost_meter_init(&m, 3, 10, 0), 0);
    vhost_meter_take(&m, 10);
    for (long long int us = 1; us <= 1000000; us++) {
        vhost_meter_refill(&m, us);
    }
    CHECK_EQ(vhost_meter_tokens(&m), 3);
    CHECK_EQ(m.level, 3000000);
}

/* The largest rate and burst: no sum wraps, whatever the time between
 * refills. */
static void
test_largest_values(void)
{
    static const long long int steps[] = { 1, 999, 1000000, 999999999,
                                           (1LL << 62) };
    struct vhost_meter m;

    CHECK_EQ(vhost_meter_init(&m, VHOST_METER_MAX, VHOST_METER_MAX, 0), 0);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        m.level = 0;
        vhost_meter_refill(&m, m.last_us + steps[i]);
        CHECK(m.level <= m.capacity);
        CHECK_EQ(vhost_meter_tokens(&m),
                 (steps[i] >= 1000000 ? VHOST_METER_MAX
                  : VHOST_METER_MAX * steps[i] / 1000000));
    }
    /* A slow rate with the largest burst. */
    CHECK_EQ(vhost_meter_init(&m, 1, VHOST_METER_MAX, 0), 0);
    vhost_meter_take(&m, VHOST_METER_MAX);
    vhost_meter_refill(&m, 2000000);
    CHECK_EQ(vhost_meter_tokens(&m), 2);
    vhost_meter_refill(&m, 1LL << 62);
    CHECK_EQ(vhost_meter_tokens(&m), VHOST_METER_MAX);
}

/* Frames offered far above the rate: what passes in T seconds is the
 * burst plus T times the rate, to within a frame. */
static void
test_offered_above_rate(void)
{
    const uint64_t rate = 1250000;      /* 10 Mbit/s, in bytes. */
    const uint64_t burst = 125000;      /* 1000 kbit. */
    const uint64_t frame = 986;         /* 1000 bytes less Ethernet. */
    uint64_t passed = 0, dropped = 0;
    struct vhost_meter m;

    CHECK_EQ(vhost_meter_init(&m, rate, burst, 0), 0);
    /* 10 seconds of a frame every 10 us (about 790 Mbit/s). */
    for (long long int us = 0; us < 10000000; us += 10) {
        vhost_meter_refill(&m, us);
        if (vhost_meter_has(&m, frame)) {
            vhost_meter_take(&m, frame);
            passed += frame;
        } else {
            dropped++;
        }
    }
    CHECK(passed <= burst + 10 * rate);
    CHECK(passed + frame > burst + 10 * rate - frame);
    CHECK(dropped > 900000);
}

static const struct unit_test tests[] = {
    { "init_refusals", test_init_refusals },
    { "starts_full_and_refills", test_starts_full_and_refills },
    { "no_rounding_loss", test_no_rounding_loss },
    { "largest_values", test_largest_values },
    { "offered_above_rate", test_offered_above_rate },
};

UNIT_SUITE(meter_suite, tests);
