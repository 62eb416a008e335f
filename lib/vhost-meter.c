/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * A token bucket, the meter of ingress policing and egress QoS. */

#include "vhost-meter.h"

#include <errno.h>

int
vhost_meter_init(struct vhost_meter *m, uint64_t rate, uint64_t burst,
                 long long int now_us)
{
    if (!rate || !burst || rate > VHOST_METER_MAX || burst > VHOST_METER_MAX) {
        return EINVAL;
    }
    m->rate = rate;
    m->capacity = burst * UINT64_C(1000000);
    m->level = m->capacity;
    /* Bounds 'rate' * elapsed time in vhost_meter_refill() by 'capacity'
     * + 'rate', well within 64 bits. */
    m->fill_us = m->capacity / rate + 1;
    m->last_us = now_us;
    return 0;
}

void
vhost_meter_refill(struct vhost_meter *m, long long int now_us)
{
    if (now_us <= m->last_us) {
        return;
    }

    uint64_t elapsed = now_us - m->last_us;

    m->last_us = now_us;
    if (elapsed >= m->fill_us) {
        m->level = m->capacity;
    } else {
        uint64_t level = m->level + m->rate * elapsed;

        m->level = level < m->capacity ? level : m->capacity;
    }
}
