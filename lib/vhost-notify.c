/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Guest notifications through a call eventfd, which never block a thread
 * of the switch. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "vhost-notify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

int
vhost_call_fd_prepare(int fd, char *why, size_t size)
{
    static const char eventfd_link[] = "anon_inode:[eventfd]";
    char path[64], link[64];
    ssize_t n;
    int flags;

    /* An eventfd's only trace of what it is: its link in /proc (fstat()
     * says the same of every anonymous inode, and an eventfd cannot be
     * reopened through that link to get flags of the switch's own). */
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof link - 1);
    if (n < 0) {
        int error = errno;

        snprintf(why, size, "cannot tell what the call fd is (%s: %s)",
                 path, strerror(error));
        return error;
    }
    link[n] = '\0';
    if (strcmp(link, eventfd_link)) {
        snprintf(why, size, "call fd is not an eventfd but %s", link);
        return ENOTSUP;
    }

    flags = fcntl(fd, F_GETFL);
    if (flags < 0
        || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK))) {
        int error = errno;

        snprintf(why, size, "cannot make the call fd non-blocking (%s)",
                 strerror(error));
        return error;
    }
    return 0;
}

/* The signal that interrupts a blocked write: a real-time signal nobody
 * else in the process handles, with a handler that does nothing (all that
 * matters is that the write returns EINTR), without SA_RESTART. */
static int notify_signo;
static int notify_setup_error;
static pthread_once_t notify_once = PTHREAD_ONCE_INIT;
static pthread_key_t notify_key;

static void
notify_handler(int signo)
{
    (void) signo;
}

struct notify_timer {
    timer_t timer;
};

static void
notify_timer_destroy(void *t_)
{
    struct notify_timer *t = t_;

    timer_delete(t->timer);
    free(t);
}

static void
notify_setup(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = notify_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* No SA_RESTART: the write returns EINTR. */

    notify_setup_error = pthread_key_create(&notify_key,
                                            notify_timer_destroy);
    if (notify_setup_error) {
        return;
    }
    /* The first real-time signal, from SIGRTMIN + 8 on (libraries that
     * use one tend to take the first few), that nobody handles. */
    for (int i = 0; i <= SIGRTMAX - SIGRTMIN; i++) {
        int signo = SIGRTMIN + (i + 8) % (SIGRTMAX - SIGRTMIN + 1);
        struct sigaction old;

        if (!sigaction(signo, NULL, &old) && old.sa_handler == SIG_DFL
            && !(old.sa_flags & SA_SIGINFO)
            && !sigaction(signo, &sa, NULL)) {
            notify_signo = signo;
            return;
        }
    }
    notify_setup_error = EBUSY;
}

/* This thread's timer, created on its first notification. */
static struct notify_timer *
notify_timer_get(int *error)
{
    static __thread struct notify_timer *timer;
    static __thread int timer_error;
    struct notify_timer *t;
    struct sigevent sev;
    sigset_t set;

    if (__builtin_expect(timer != NULL, 1)) {
        return timer;
    }
    if (timer_error) {
        *error = timer_error;
        return NULL;
    }

    pthread_once(&notify_once, notify_setup);
    if (notify_setup_error) {
        *error = timer_error = notify_setup_error;
        return NULL;
    }
    t = malloc(sizeof *t);
    if (!t) {
        *error = ENOMEM;        /* Maybe next time. */
        return NULL;
    }
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = notify_signo;
    sev.sigev_notify_thread_id = syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &t->timer)) {
        *error = errno;
        free(t);
        return NULL;
    }
    /* The thread may have been started with the signal blocked. */
    sigemptyset(&set);
    sigaddset(&set, notify_signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pthread_setspecific(notify_key, t);
    timer = t;
    return t;
}

int
vhost_notify(int fd)
{
    /* Repeating: a thread preempted between arming and the write, past the
     * first expiry, still gets the next one while it waits in the write. */
    static const struct itimerspec arm = {
        .it_value = { 0, VHOST_NOTIFY_TIMEOUT_MS * 1000000L },
        .it_interval = { 0, VHOST_NOTIFY_TIMEOUT_MS * 1000000L },
    };
    static const struct itimerspec disarm;
    struct notify_timer *t;
    uint64_t one = 1;
    ssize_t n;
    int error = 0;

    t = notify_timer_get(&error);
    if (!t) {
        return error;
    }
    if (timer_settime(t->timer, 0, &arm, NULL)) {
        return errno;
    }
    n = write(fd, &one, sizeof one);
    if (n != sizeof one) {
        error = n < 0 ? errno : EIO;
    }
    /* A signal that comes now is taken on the way out of this call (or of
     * the write), by the handler: no other system call sees it. */
    timer_settime(t->timer, 0, &disarm, NULL);
    return error;
}
