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
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

/* A blocked write is interrupted by a signal: a real-time signal nobody
 * else in the process handles, with a handler that does nothing (all that
 * matters is that the write returns EINTR), installed without SA_RESTART.
 *
 * Who sends it: a watchdog thread, started with the first notification.
 * Each notifying thread has a slot whose sequence number is odd while the
 * thread is inside its write(); every NOTIFY_CHECK_MS the watchdog looks
 * at each slot, and a write it finds still there, with the same number,
 * at its next look has lasted at least NOTIFY_CHECK_MS: the watchdog sends
 * the signal to that thread (again at each look, until the write returns).
 * A notification thus costs its write, two stores and a load, where a
 * timer armed and disarmed around the write cost two more system calls.
 *
 * A host whose guests stopped needs no watchdog: after NOTIFY_IDLE_LOOKS
 * looks in a row that found no notification begun or ended, the watchdog
 * sleeps until a notifying thread wakes it.  The thread's store of an odd
 * 'seq' and its load of 'notify_idle' are sequentially consistent, as are
 * the watchdog's store of 'notify_idle' and its last look at the slots
 * after it: either the thread sees the watchdog idle and wakes it (before
 * its write), or the watchdog sees the write begun and stays awake. */
#define NOTIFY_CHECK_MS (VHOST_NOTIFY_TIMEOUT_MS / 2)
#define NOTIFY_IDLE_LOOKS (1000 / NOTIFY_CHECK_MS)      /* One second. */

struct notify_slot {
    atomic_uint seq;            /* Odd while the thread is in write(). */
    unsigned int seen;          /* The watchdog's last look at 'seq'. */
    pid_t tid;
    struct notify_slot *next;   /* In 'notify_slots'. */
};

static int notify_signo;
static int notify_setup_error;
static pthread_once_t notify_once = PTHREAD_ONCE_INIT;
static pthread_key_t notify_key;

/* The slots of the threads that have notified and not exited.  The
 * watchdog reads them, and a thread's slot is freed, only under
 * 'notify_mutex'; the watchdog waits on 'notify_cond' while there are
 * none. */
static pthread_mutex_t notify_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;
static struct notify_slot *notify_slots;
static bool notify_watchdog_running;
static atomic_bool notify_idle;         /* The watchdog sleeps. */
static atomic_uint notify_idle_periods; /* How many times it went idle. */

static void
notify_handler(int signo)
{
    (void) signo;
}

static void *
notify_watchdog(void *arg)
{
    const struct timespec period = { 0, NOTIFY_CHECK_MS * 1000000L };
    pid_t pid = getpid();

    (void) arg;
    pthread_mutex_lock(&notify_mutex);
    for (int quiet = 0; ; ) {
        while (!notify_slots) {
            pthread_cond_wait(&notify_cond, &notify_mutex);
        }

        bool moved = false;
        for (struct notify_slot *s = notify_slots; s; s = s->next) {
            unsigned int seq = atomic_load_explicit(&s->seq,
                                                    memory_order_seq_cst);

            if (seq & 1 && seq == s->seen) {
                /* The thread is alive: it is inside write(), and its slot
                 * would have left the list before it exited. */
                syscall(SYS_tgkill, pid, s->tid, notify_signo);
            }
            moved |= seq != s->seen || seq & 1;
            s->seen = seq;
        }
        quiet = moved ? 0 : quiet + 1;
        if (quiet >= NOTIFY_IDLE_LOOKS) {
            /* Idle, then one more look (see above). */
            atomic_store_explicit(&notify_idle, true, memory_order_seq_cst);
            for (struct notify_slot *s = notify_slots; s; s = s->next) {
                if (atomic_load_explicit(&s->seq, memory_order_seq_cst)
                    != s->seen) {
                    atomic_store_explicit(&notify_idle, false,
                                          memory_order_relaxed);
                    break;
                }
            }
            if (atomic_load_explicit(&notify_idle, memory_order_relaxed)) {
                atomic_fetch_add_explicit(&notify_idle_periods, 1,
                                          memory_order_relaxed);
            }
            while (atomic_load_explicit(&notify_idle, memory_order_relaxed)) {
                pthread_cond_wait(&notify_cond, &notify_mutex);
            }
            quiet = 0;
            continue;           /* At once: a write may have begun. */
        }
        pthread_mutex_unlock(&notify_mutex);
        nanosleep(&period, NULL);
        pthread_mutex_lock(&notify_mutex);
    }
    return NULL;
}

/* At a notifying thread's exit. */
static void
notify_slot_destroy(void *s_)
{
    struct notify_slot *s = s_;

    pthread_mutex_lock(&notify_mutex);
    for (struct notify_slot **p = &notify_slots; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&notify_mutex);
    free(s);
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
                                            notify_slot_destroy);
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

/* Starts the watchdog, with every signal blocked (none is for it).  Called
 * with 'notify_mutex' held.  Returns 0 or an errno value. */
static int
notify_watchdog_start(void)
{
    sigset_t all, old;
    pthread_t thread;
    int error;

    if (notify_watchdog_running) {
        return 0;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    error = pthread_create(&thread, NULL, notify_watchdog, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!error) {
        pthread_detach(thread);
        notify_watchdog_running = true;
    }
    return error;
}

/* This thread's slot, created on its first notification. */
static struct notify_slot *
notify_slot_get(int *error)
{
    static __thread struct notify_slot *slot;
    static __thread int slot_error;
    struct notify_slot *s;
    sigset_t set;

    if (__builtin_expect(slot != NULL, 1)) {
        return slot;
    }
    if (slot_error) {
        *error = slot_error;
        return NULL;
    }

    pthread_once(&notify_once, notify_setup);
    if (notify_setup_error) {
        *error = slot_error = notify_setup_error;
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        *error = ENOMEM;        /* Maybe next time. */
        return NULL;
    }
    atomic_init(&s->seq, 0);
    s->tid = syscall(SYS_gettid);

    pthread_mutex_lock(&notify_mutex);
    *error = notify_watchdog_start();
    if (!*error) {
        s->next = notify_slots;
        notify_slots = s;
        pthread_cond_signal(&notify_cond);
    }
    pthread_mutex_unlock(&notify_mutex);
    if (*error) {
        free(s);                /* Maybe next time. */
        return NULL;
    }

    /* The thread may have been started with the signal blocked. */
    sigemptyset(&set);
    sigaddset(&set, notify_signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pthread_setspecific(notify_key, s);
    slot = s;
    return s;
}

/* Wakes the idle watchdog (before this thread's write). */
static void __attribute__((noinline))
notify_wake(void)
{
    pthread_mutex_lock(&notify_mutex);
    if (atomic_load_explicit(&notify_idle, memory_order_relaxed)) {
        atomic_store_explicit(&notify_idle, false, memory_order_relaxed);
        pthread_cond_broadcast(&notify_cond);
    }
    pthread_mutex_unlock(&notify_mutex);
}

unsigned int
vhost_notify_idle_periods(void)
{
    return atomic_load_explicit(&notify_idle_periods, memory_order_relaxed);
}

int
vhost_notify(int fd)
{
    struct notify_slot *s;
    unsigned int seq;
    uint64_t one = 1;
    ssize_t n;
    int error = 0;

    s = notify_slot_get(&error);
    if (!s) {
        return error;
    }
    /* Only this thread writes its 'seq'. */
    seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&notify_idle,
                                              memory_order_seq_cst), 0)) {
        notify_wake();
    }
    n = write(fd, &one, sizeof one);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    if (n != sizeof one) {
        error = n < 0 ? errno : EIO;
    }
    return error;
}
