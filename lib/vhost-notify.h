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
 *   - vhost_notify() writes with a per-thread POSIX timer armed around the
 *     write: if the front-end cleared O_NONBLOCK and filled the counter, the
 *     timer's signal (a real-time signal whose handler does nothing,
 *     installed without SA_RESTART) interrupts the write within
 *     VHOST_NOTIFY_TIMEOUT_MS.  The timer is armed only while the thread is
 *     inside this function, and the only system call made while it is armed
 *     is the write: a late signal is taken on the way out (the handler runs
 *     and returns), never by another system call of the thread.
 *
 * No Open vSwitch dependency. */

#include <stddef.h>

/* How long a notification's write() may block at most, in ms (the timer
 * repeats at this period until disarmed). */
#define VHOST_NOTIFY_TIMEOUT_MS 2

/* Checks that 'fd' is an eventfd and sets O_NONBLOCK on it.  Returns 0, or
 * an errno value (ENOTSUP: not an eventfd) with a description of what 'fd'
 * is, or of what failed, in 'why' ('size' bytes). */
int vhost_call_fd_prepare(int fd, char *why, size_t size);

/* Adds 1 to the eventfd 'fd' without ever blocking for long.  Returns 0, or
 * EAGAIN (the counter is full: the guest has notifications pending that
 * nobody reads), EINTR (the write blocked: the front-end made the file
 * blocking, with its counter full), or another errno value (the write
 * failed, or this thread could not set up its timer: nothing written). */
int vhost_notify(int fd);

#endif /* vhost-notify.h */
