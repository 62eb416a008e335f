/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Guest notifications through a call eventfd, which never block a thread
 * of the switch. */

#ifndef VHOST_NOTIFY_H
#define VHOST_NOTIFY_H 1

/* Guest notifications through a front-end's call fd, which must never
 * block a thread of the switch.
 *
 * The call fd belongs to the front-end as much as to the switch: it can
 * fill the eventfd's counter (a write then waits for a read that never
 * comes) and clear O_NONBLOCK on its own copy of the file at any time (the
 * flags are the file's, shared).  So:
 *
 *   - vhost_call_fd_prepare(), at SET_VRING_CALL, accepts only an eventfd
 *     (a pipe, socket or file could block a write in ways no signal
 *     interrupts) and sets O_NONBLOCK on it;
 *
 *   - vhost_notify() writes, and a watchdog thread interrupts a write that
 *     blocks: if the front-end cleared O_NONBLOCK and filled the counter,
 *     the watchdog, which looks at every notifying thread each
 *     VHOST_NOTIFY_TIMEOUT_MS / 2, sees the same write at two looks and
 *     sends the thread a real-time signal whose handler does nothing,
 *     installed without SA_RESTART: the write returns EINTR within
 *     VHOST_NOTIFY_TIMEOUT_MS (and scheduling delays).  A notification
 *     costs one system call, the write.  The watchdog sleeps while no
 *     notification begins or ends for a second.
 *
 *     The signal is sent only to a thread the watchdog found in one write
 *     for a whole period; should that write end just before the signal
 *     arrives, the thread takes it where it is, and a system call it is
 *     sleeping in returns EINTR (Open vSwitch's code retries those).
 *
 * No Open vSwitch dependency. */

#include <stddef.h>

/* How long a notification's write() may block at most, in ms (then the
 * watchdog's signal interrupts it, and again each half of this period
 * until it returns). */
#define VHOST_NOTIFY_TIMEOUT_MS 2

/* Checks that 'fd' is an eventfd and sets O_NONBLOCK on it.  Returns 0, or
 * an errno value (ENOTSUP: not an eventfd) with a description of what 'fd'
 * is, or of what failed, in 'why' ('size' bytes). */
int vhost_call_fd_prepare(int fd, char *why, size_t size);

/* Adds 1 to the eventfd 'fd' without ever blocking for long.  Returns 0, or
 * EAGAIN (the counter is full: the guest has notifications pending that
 * nobody reads), EINTR (the write blocked: the front-end made the file
 * blocking, with its counter full), or another errno value (the write
 * failed, or the watchdog or this thread's slot could not be set up:
 * nothing written). */
int vhost_notify(int fd);

/* How many times the watchdog went idle: it sleeps once no notification
 * has begun or ended for a second, until the next one.  (For tests.) */
unsigned int vhost_notify_idle_periods(void);

#endif /* vhost-notify.h */
