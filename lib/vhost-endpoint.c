/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Endpoints, the connection manager: every port's vhost-user socket,
 * server or client, served by a thread of its own, with reconnect. */

#include <config.h>

#include "vhost-endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "openvswitch/list.h"
#include "openvswitch/vlog.h"
#include "ovs-atomic.h"
#include "ovs-thread.h"
#include "openvswitch/poll-loop.h"
#include "seq.h"
#include "smap.h"
#include "timeval.h"
#include "util.h"
#include "vhost-conn.h"
#include "vhostmq-settings.h"

VLOG_DEFINE_THIS_MODULE(vhost_endpoint);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* Messages handled per connection per run, so that one busy front-end
 * cannot starve the others. */
#define MAX_MESSAGES_PER_RUN 64

#define DEFAULT_RECONNECT_MSEC 1000

/* A client port also watches its socket's directory (inotify): when the
 * front-end creates the socket, the port connects at once instead of at the
 * next retry.  A front-end binds before it listens, so a connect that the
 * watch triggered and that was refused is tried again this soon, this many
 * times. */
#define FAST_RETRY_MSEC 10
#define FAST_RETRIES 50

/* sun_path holds 107 bytes of a socket's name.  A longer path is bound or
 * connected to as "/proc/self/fd/N/NAME", N an fd open on the socket's
 * directory: then NAME, the path's last component, must fit with the
 * longest N, in this many bytes. */
#define SUN_PATH_SIZE (sizeof ((struct sockaddr_un *) 0)->sun_path)
#define PROC_FD_PREFIX "/proc/self/fd/"
#define MAX_SOCK_NAME_LEN \
    (SUN_PATH_SIZE - 1 - (sizeof PROC_FD_PREFIX - 1) - 10 - 1)

struct vhost_endpoint {
    struct ovs_list node;       /* In 'endpoints'. */
    char *name;
    char *path;
    bool client;
    const struct vhost_endpoint_cbs *cbs;
    void *aux;

    int listen_fd;              /* Server: listening socket. */
    dev_t sock_dev;             /* Server: the socket file it made, to tell */
    ino_t sock_ino;             /* it from whatever else takes its place. */
    uint64_t perms_seq;         /* Server: vhostmq_sock_perms_seq() when the
                                 * owner and mode were last applied. */
    int conn_fd;                /* Connected front-end, or -1. */
    int next_fd;                /* Server: a front-end accepted while
                                 * 'conn_fd' was still open, waiting for
                                 * 'conn_fd' to be read to its end, or -1
                                 * (see accept_frontend()). */
    struct vhost_conn_reader reader;

    /* Client: when to try connecting next. */
    long long int next_connect;
    int reconnect_msec;
    bool connect_failed_logged;
    int watch;                  /* inotify watch of the socket's directory,
                                 * or -1. */
    const char *base;           /* The socket's name in it (in 'path'). */
    int fast_retries;           /* Left after the watch saw the socket. */

    /* Passes (see endpoint_pass()). */
    uint64_t pass_seq;          /* 'run_seq' of its last pass. */
    bool again;                 /* Needs a pass whatever its sockets say. */
    bool polled;                /* A socket of it is not in 'epoll_fd': its
                                 * sockets are polled, and it gets a pass,
                                 * on every run. */

    /* Counters. */
    uint64_t n_connects;
    uint64_t n_disconnects;
    uint64_t n_rejected;        /* Extra front-ends turned away. */
    uint64_t n_bad_headers;     /* Connections dropped for a bad header. */
    char *last_error;
};

struct ovs_mutex vhost_endpoints_mutex = OVS_MUTEX_INITIALIZER;

static struct ovs_list endpoints OVS_GUARDED_BY(vhost_endpoints_mutex)
    = OVS_LIST_INITIALIZER(&endpoints);

/* Changed by another thread when it did something the connection manager's
 * thread must look at (a new endpoint, a connection dropped, a new retry
 * interval): wakes that thread. */
static struct seq *wake_seq;

/* Every endpoint's listening socket and connection, in one epoll instance:
 * the thread polls that one fd, and a run serves only the endpoints whose
 * sockets have something to read.  Polling every socket and trying every
 * one each run cost each wakeup a poll() slot, an accept() and a recvmsg()
 * per port: with 256 ports (and the endpoints still run from OVS's main
 * loop), each message of a front-end's handshake waited a few
 * milliseconds, and 256 guests took 22 s to connect one after another.
 * -1 if not made yet, or if it cannot be (then every endpoint is
 * 'polled'). */
static int epoll_fd OVS_GUARDED_BY(vhost_endpoints_mutex) = -1;
static bool epoll_failed OVS_GUARDED_BY(vhost_endpoints_mutex);

/* Counts runs, to give an endpoint at most one pass in each. */
static uint64_t run_seq OVS_GUARDED_BY(vhost_endpoints_mutex);

/* One inotify instance for every client port's directory, or -1. */
static int inotify_fd OVS_GUARDED_BY(vhost_endpoints_mutex) = -1;

static void *endpoints_thread_main(void *);

/* Threads waiting in vhost_endpoints_lock(). */
static atomic_uint n_waiting = ATOMIC_VAR_INIT(0);

void
vhost_endpoints_lock(void)
{
    unsigned int orig;

    atomic_add_relaxed(&n_waiting, 1, &orig);
    ovs_mutex_lock(&vhost_endpoints_mutex);
    atomic_sub_relaxed(&n_waiting, 1, &orig);
}

void
vhost_endpoints_unlock(void)
{
    ovs_mutex_unlock(&vhost_endpoints_mutex);
}

/* Starts the connection manager's thread, once. */
static void
start_thread(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

    if (ovsthread_once_start(&once)) {
        wake_seq = seq_create();
        ovs_thread_create("vhost_ctl", endpoints_thread_main, NULL);
        ovsthread_once_done(&once);
    }
}

/* Wakes the connection manager's thread. */
static void
wake_thread(void)
{
    seq_change(wake_seq);
}

/* Starts watching the directory of client 'ep''s socket, if not yet.  Best
 * effort: without a watch the port still retries on its timer. */
static void
watch_socket_dir(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    const char *slash;
    char *dir;

    if (ep->watch >= 0) {
        return;
    }
    if (inotify_fd < 0) {
        inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inotify_fd < 0) {
            VLOG_WARN_RL(&rl, "inotify: %s (client ports retry on their "
                         "timers only)", ovs_strerror(errno));
            return;
        }
    }
    slash = strrchr(ep->path, '/');
    dir = slash ? xmemdup0(ep->path, MAX(slash - ep->path, 1))
                : xstrdup(".");
    ep->base = slash ? slash + 1 : ep->path;
    ep->watch = inotify_add_watch(inotify_fd, dir,
                                  IN_CREATE | IN_MOVED_TO | IN_ATTRIB
                                  | IN_ONLYDIR);
    free(dir);
}

/* Stops 'ep''s watch, unless another client shares the directory (inotify
 * gives one watch per directory). */
static void
unwatch_socket_dir(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct vhost_endpoint *other;

    if (ep->watch < 0) {
        return;
    }
    LIST_FOR_EACH (other, node, &endpoints) {
        if (other != ep && other->watch == ep->watch) {
            ep->watch = -1;
            return;
        }
    }
    inotify_rm_watch(inotify_fd, ep->watch);
    ep->watch = -1;
}

/* Reads what the watches saw: a client waiting for a socket that just
 * appeared connects now. */
static void
read_socket_dir_events(void)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    long long int now = time_msec();
    ssize_t n;

    if (inotify_fd < 0) {
        return;
    }
    while ((n = read(inotify_fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n; ) {
            const struct inotify_event *ev = (const struct inotify_event *) p;
            struct vhost_endpoint *ep;

            LIST_FOR_EACH (ep, node, &endpoints) {
                if (ep->watch != ev->wd) {
                    continue;
                }
                if (ev->mask & IN_IGNORED) {
                    ep->watch = -1;     /* The directory went away. */
                } else if (ev->len && ep->conn_fd < 0
                           && !strcmp(ev->name, ep->base)) {
                    ep->next_connect = now;
                    ep->fast_retries = FAST_RETRIES;
                }
            }
            p += sizeof *ev + ev->len;
        }
    }
}

static void
set_error(struct vhost_endpoint *ep, const char *format, ...)
    OVS_PRINTF_FORMAT(2, 3);

static void
set_error(struct vhost_endpoint *ep, const char *format, ...)
{
    va_list args;

    free(ep->last_error);
    va_start(args, format);
    ep->last_error = xvasprintf(format, args);
    va_end(args);
}

/* Adds 'fd', a socket of 'ep', to the epoll instance (making it on first
 * use).  If that fails, 'ep' is polled the old way, every run. */
static void
watch_fd(struct vhost_endpoint *ep, int fd)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ep };

    if (epoll_fd < 0 && !epoll_failed) {
        /* The test seam VHOSTMQ_TEST_NO_EPOLL makes the tests take the
         * fallback. */
        if (getenv("VHOSTMQ_TEST_NO_EPOLL")) {
            errno = EMFILE;
        } else {
            epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        }
        if (epoll_fd < 0) {
            epoll_failed = true;
            VLOG_WARN("epoll: %s (every vhost-user socket is polled on "
                      "every wakeup instead)", ovs_strerror(errno));
        }
    }
    if (epoll_fd < 0) {
        ep->polled = true;
    } else if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
        VLOG_WARN_RL(&rl, "%s: epoll_ctl: %s (its sockets are polled on "
                     "every wakeup instead)", ep->name, ovs_strerror(errno));
        ep->polled = true;
    }
}

/* Closes 'fd', a socket of an endpoint, first taking it out of the epoll
 * instance (where it may be missing: see watch_fd()). */
static void
close_watched_fd(int fd)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    if (epoll_fd >= 0) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    }
    close(fd);
}

/* Opens the directory that socket 'path' is in (O_PATH: only for the *at()
 * calls and for naming the socket through /proc) and points '*name' at the
 * socket's name in 'path'.  Returns the fd, or -1 with errno set. */
static int
open_socket_dir(const char *path, const char **name)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd;

    *name = slash ? slash + 1 : path;
    dir = slash ? xmemdup0(path, MAX(slash - path, 1)) : xstrdup(".");
    fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    return fd;
}

/* Returns true if bind() or connect() can reach socket 'path', else false
 * with a message in '*errp'. */
static bool
check_socket_path(const char *path, char **errp)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;

    if (!name[0]) {
        *errp = xasprintf("socket path \"%s\" ends in \"/\": no socket name",
                          path);
        return false;
    }
    if (strlen(path) >= SUN_PATH_SIZE && strlen(name) > MAX_SOCK_NAME_LEN) {
        *errp = xasprintf("socket path \"%s\": a socket path longer than "
                          "%"PRIuSIZE" bytes is reached through its "
                          "directory, but its name \"%s\" is longer than "
                          "%"PRIuSIZE" bytes", path, SUN_PATH_SIZE - 1, name,
                          MAX_SOCK_NAME_LEN);
        return false;
    }
    return true;
}

/* Fills 'sun' with socket 'path' (checked by check_socket_path()), or if it
 * does not fit, with the name 'name' in the directory open as 'dirfd'. */
static void
fill_sockaddr(const char *path, int dirfd, const char *name,
              struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strlen(path) < sizeof sun->sun_path) {
        strcpy(sun->sun_path, path);
    } else {
        ovs_assert(dirfd >= 0);
        snprintf(sun->sun_path, sizeof sun->sun_path,
                 PROC_FD_PREFIX "%d/%s", dirfd, name);
    }
}

/* Why the file at server 'ep''s socket path is not the socket that 'ep'
 * made, or null if it is. */
static const char *
not_our_socket(const struct vhost_endpoint *ep, const struct stat *st)
{
    return (S_ISLNK(st->st_mode) ? "a symbolic link"
            : !S_ISSOCK(st->st_mode) ? "not a socket"
            : st->st_dev != ep->sock_dev || st->st_ino != ep->sock_ino
            ? "another socket"
            : NULL);
}

/* Gives server 'ep''s socket file, 'name' in the directory open as 'dirfd',
 * the configured owner and mode.  Never through a symbolic link, and only
 * to the socket 'ep' made: whoever can write the socket directory could
 * otherwise have another file's owner or mode changed.  The file is opened
 * (O_PATH, not following a link), checked, and changed through that fd, so
 * nothing can be put in its place in between. */
static void
apply_perms(struct vhost_endpoint *ep, int dirfd, const char *name)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct stat st;
    const char *why;
    int fd;

    ep->perms_seq = vhostmq_sock_perms_seq();
    if (!vhostmq_sock_perms_wanted()) {
        return;
    }
    fd = dirfd < 0 ? -1 : openat(dirfd, name,
                                 O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st)) {
        VLOG_WARN_RL(&rl, "%s: cannot set the owner and mode of %s: %s",
                     ep->name, ep->path, ovs_strerror(errno));
    } else if ((why = not_our_socket(ep, &st)) != NULL) {
        VLOG_WARN_RL(&rl, "%s: %s is not the port's socket any more (%s); "
                     "its owner and mode are left alone",
                     ep->name, ep->path, why);
    } else {
        vhostmq_apply_sock_perms(fd, ep->path);
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* Makes server 'ep''s listening socket at 'ep->path': replaces a stale
 * socket file there (nothing else), binds, listens, and applies the owner
 * and mode.  Returns the socket, or -1 with a message in '*errp'. */
static int
listen_on(struct vhost_endpoint *ep, char **errp)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct sockaddr_un sun;
    const char *name;
    struct stat st;
    int dirfd, fd;

    dirfd = open_socket_dir(ep->path, &name);
    if (dirfd < 0) {
        *errp = xasprintf("cannot listen on %s: %s", ep->path,
                          ovs_strerror(errno));
        return -1;
    }
    if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        if (!S_ISSOCK(st.st_mode)) {
            *errp = xasprintf("%s exists and is not a socket", ep->path);
            close(dirfd);
            return -1;
        }
        /* A socket file left by a switch that died: replace it. */
        unlinkat(dirfd, name, 0);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *errp = xasprintf("socket: %s", ovs_strerror(errno));
        close(dirfd);
        return -1;
    }
    fill_sockaddr(ep->path, dirfd, name, &sun);
    if (bind(fd, (struct sockaddr *) &sun, sizeof sun) < 0
        || listen(fd, 8) < 0) {
        *errp = xasprintf("cannot listen on %s: %s", ep->path,
                          ovs_strerror(errno));
        close(fd);
        close(dirfd);
        return -1;
    }
    /* Which file is the port's socket, for apply_perms() and for
     * vhost_endpoint_destroy(). */
    if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        ep->sock_dev = st.st_dev;
        ep->sock_ino = st.st_ino;
    }
    apply_perms(ep, dirfd, name);
    close(dirfd);
    return fd;
}

/* Removes server 'ep''s socket file, if it is still the one 'ep' made. */
static void
remove_socket(const struct vhost_endpoint *ep)
{
    const char *name, *why;
    struct stat st;
    int dirfd;

    dirfd = open_socket_dir(ep->path, &name);
    if (dirfd < 0) {
        return;
    }
    if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        why = not_our_socket(ep, &st);
        if (why) {
            VLOG_WARN_RL(&rl, "%s: %s is not the port's socket any more "
                         "(%s); left in place", ep->name, ep->path, why);
        } else {
            unlinkat(dirfd, name, 0);
        }
    }
    close(dirfd);
}

static void
endpoint_connected(struct vhost_endpoint *ep, int fd)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    ep->conn_fd = fd;
    watch_fd(ep, fd);
    ep->n_connects++;
    ep->connect_failed_logged = false;
    /* Why the port was not connected no longer holds. */
    free(ep->last_error);
    ep->last_error = NULL;
    vhost_conn_reader_init(&ep->reader);
    VLOG_INFO("%s: vhost-user front-end connected (%s %s)", ep->name,
              ep->client ? "client of" : "server on", ep->path);
    if (ep->cbs->connected) {
        ep->cbs->connected(ep->aux);
    }
}

static void
endpoint_disconnect(struct vhost_endpoint *ep, const char *why)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    if (ep->conn_fd < 0) {
        return;
    }
    close_watched_fd(ep->conn_fd);
    ep->conn_fd = -1;
    vhost_conn_reader_reset(&ep->reader);
    ep->n_disconnects++;
    VLOG_INFO("%s: vhost-user front-end disconnected (%s)", ep->name, why);
    if (ep->client) {
        /* Try again at once: a front-end that restarts comes back fast. */
        ep->next_connect = time_msec();
    }
    if (ep->cbs->disconnected) {
        ep->cbs->disconnected(ep->aux);
    }
}

static void
try_connect(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct sockaddr_un sun;
    const char *name = NULL;
    int dirfd = -1;
    int fd, err;

    ep->next_connect = time_msec() + ep->reconnect_msec;
    if (ep->fast_retries > 0) {
        ep->fast_retries--;
        ep->next_connect = time_msec() + FAST_RETRY_MSEC;
    }
    watch_socket_dir(ep);
    if (strlen(ep->path) >= sizeof sun.sun_path) {
        dirfd = open_socket_dir(ep->path, &name);
        if (dirfd < 0) {
            err = errno;
            goto failed;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_error(ep, "socket: %s", ovs_strerror(errno));
        if (dirfd >= 0) {
            close(dirfd);
        }
        return;
    }
    fill_sockaddr(ep->path, dirfd, name, &sun);
    err = connect(fd, (struct sockaddr *) &sun, sizeof sun) < 0 ? errno : 0;
    if (dirfd >= 0) {
        close(dirfd);
    }
    if (err) {
        close(fd);
        goto failed;
    }
    ep->fast_retries = 0;
    endpoint_connected(ep, fd);
    return;

failed:
    set_error(ep, "connect to %s: %s", ep->path, ovs_strerror(err));
    if (!ep->connect_failed_logged) {
        VLOG_INFO("%s: cannot connect to %s (%s); retrying every %d ms",
                  ep->name, ep->path, ovs_strerror(err), ep->reconnect_msec);
        ep->connect_failed_logged = true;
    }
}

struct vhost_endpoint *
vhost_endpoint_create(const char *name, const char *path, bool client,
                      int reconnect_msec,
                      const struct vhost_endpoint_cbs *cbs, void *aux,
                      char **errp)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct vhost_endpoint *ep;

    if (!check_socket_path(path, errp)) {
        return NULL;
    }

    ep = xzalloc(sizeof *ep);
    ep->name = xstrdup(name);
    ep->path = xstrdup(path);
    ep->client = client;
    ep->cbs = cbs;
    ep->aux = aux;
    ep->listen_fd = -1;
    ep->conn_fd = -1;
    ep->next_fd = -1;
    ep->watch = -1;
    ep->reconnect_msec = reconnect_msec > 0 ? reconnect_msec
                                            : DEFAULT_RECONNECT_MSEC;
    ep->next_connect = time_msec();
    vhost_conn_reader_init(&ep->reader);

    if (!client) {
        ep->listen_fd = listen_on(ep, errp);
        if (ep->listen_fd < 0) {
            free(ep->name);
            free(ep->path);
            free(ep);
            return NULL;
        }
        watch_fd(ep, ep->listen_fd);
    }
    ovs_list_push_back(&endpoints, &ep->node);

    if (client) {
        VLOG_INFO("%s: vhost-user client of %s", name, path);
        try_connect(ep);
    } else {
        VLOG_INFO("%s: vhost-user server listening on %s", name, path);
    }
    start_thread();
    wake_thread();
    return ep;
}

void
vhost_endpoint_destroy(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    if (!ep) {
        return;
    }
    endpoint_disconnect(ep, "port removed");
    if (ep->next_fd >= 0) {
        close(ep->next_fd);
    }
    unwatch_socket_dir(ep);
    if (ep->listen_fd >= 0) {
        close_watched_fd(ep->listen_fd);
        remove_socket(ep);
    }
    ovs_list_remove(&ep->node);
    free(ep->name);
    free(ep->path);
    free(ep->last_error);
    free(ep);
}

void
vhost_endpoint_apply_perms(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    const char *name;
    int dirfd;

    if (ep->listen_fd < 0 || ep->perms_seq == vhostmq_sock_perms_seq()) {
        return;
    }
    dirfd = open_socket_dir(ep->path, &name);
    apply_perms(ep, dirfd, name);
    if (dirfd >= 0) {
        close(dirfd);
    }
}

void
vhost_endpoint_drop(struct vhost_endpoint *ep, const char *why)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    endpoint_disconnect(ep, why);
    wake_thread();
}

bool
vhost_endpoint_is_connected(const struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    return ep && ep->conn_fd >= 0;
}

const char *
vhost_endpoint_path(const struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    return ep->path;
}

void
vhost_endpoint_set_reconnect_interval(struct vhost_endpoint *ep, int msec)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    if (ep->reconnect_msec != msec) {
        long long int sooner = time_msec() + msec;

        ep->reconnect_msec = msec;
        /* A shorter interval applies to the attempt already planned (a
         * user who shortens it does not want to wait out the old one); a
         * longer one applies from the next attempt. */
        if (ep->client && ep->conn_fd < 0 && ep->next_connect > sooner) {
            ep->next_connect = sooner;
            wake_thread();
        }
    }
}

uint64_t
vhost_endpoint_n_bad_headers(const struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    return ep ? ep->n_bad_headers : 0;
}

void
vhost_endpoint_get_status(const struct vhost_endpoint *ep, struct smap *smap)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    smap_add_format(smap, "n_connects", "%"PRIu64, ep->n_connects);
    smap_add_format(smap, "n_disconnects", "%"PRIu64, ep->n_disconnects);
    smap_add_format(smap, "bad_headers", "%"PRIu64, ep->n_bad_headers);
    smap_add_format(smap, "rejected_frontends", "%"PRIu64, ep->n_rejected);
    if (ep->last_error) {
        smap_add(smap, "last_error", ep->last_error);
    }
}

/* Sends the reply to a message the owner handled, or drops the connection
 * as it says.  Returns false if the connection was dropped. */
static bool
answer(struct vhost_endpoint *ep, enum vhost_endpoint_verdict verdict,
       uint32_t request, const struct vhost_user_msg *reply, bool has_reply)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    int error;

    if (verdict == VHOST_MSG_DROP) {
        set_error(ep, "%s refused", vhost_user_request_name(request));
        endpoint_disconnect(ep, "message refused");
        return false;
    }
    if (has_reply) {
        error = vhost_conn_send(ep->conn_fd, reply);
        if (error) {
            set_error(ep, "reply: %s", ovs_strerror(error));
            endpoint_disconnect(ep, "cannot send reply");
            return false;
        }
    }
    return true;
}

/* Serves the front-end's messages, up to MAX_MESSAGES_PER_RUN.  Returns
 * true if it read all there was (the connection is idle or gone), false if
 * more may be waiting. */
static bool
serve_connection(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    for (int i = 0; i < MAX_MESSAGES_PER_RUN && ep->conn_fd >= 0; i++) {
        enum vhost_user_wire_error wire_error;
        enum vhost_endpoint_verdict verdict;
        struct vhost_user_msg msg, reply;
        bool has_reply = false;
        int error;

        error = vhost_conn_recv(ep->conn_fd, &ep->reader, &msg, &wire_error);
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return true;
        } else if (error == EOF) {
            endpoint_disconnect(ep, "connection closed by front-end");
            return true;
        } else if (error == EPROTO) {
            ep->n_bad_headers++;
            set_error(ep, "invalid message header: %s",
                      vhost_user_wire_error_name(wire_error));
            VLOG_WARN_RL(&rl, "%s: invalid message header (%s); dropping "
                         "the connection", ep->name,
                         vhost_user_wire_error_name(wire_error));
            endpoint_disconnect(ep, "invalid message header");
            return true;
        } else if (error) {
            set_error(ep, "receive: %s", ovs_strerror(error));
            endpoint_disconnect(ep, ovs_strerror(error));
            return true;
        }

        verdict = ep->cbs->message(ep->aux, &msg, &reply, &has_reply);
        if (!answer(ep, verdict, msg.request, &reply, has_reply)) {
            return true;
        }
    }
    if (ep->conn_fd < 0) {
        return true;
    }
    /* More may be waiting. */
    ep->again = true;
    poll_immediate_wake();
    return false;
}

/* Takes a front-end that connected to server 'ep'.
 *
 * One front-end per port, but one that closes its connection and connects
 * again at once (a restart) is no second front-end.  Its end of file lies
 * behind whatever it sent last, and it may arrive just after this pass
 * read the old connection: a front-end that closes and reconnects between
 * that read and the accept() here looks connected twice (seen once in a
 * thousand reconnect cycles of the soak test, in CI).  So the newcomer waits
 * in 'next_fd' while the old connection is read to its end: it is taken
 * when that ends, and turned away only if the old one is still open with
 * nothing more to read, which holds for certain once the newcomer has
 * connected. */
static void
accept_frontend(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    if (ep->next_fd < 0) {
        ep->next_fd = accept4(ep->listen_fd, NULL, NULL,
                              SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (ep->next_fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                VLOG_WARN_RL(&rl, "%s: accept: %s", ep->name,
                             ovs_strerror(errno));
            }
            return;
        }
    }
    if (ep->conn_fd >= 0) {
        if (!serve_connection(ep)) {
            /* Messages still queued before its end, if it ended: the
             * newcomer waits for the next pass. */
            return;
        }
        if (ep->conn_fd >= 0) {
            ep->n_rejected++;
            VLOG_WARN_RL(&rl, "%s: a second front-end tried to connect "
                         "while one is connected; refused", ep->name);
            close(ep->next_fd);
            ep->next_fd = -1;
            return;
        }
    }
    endpoint_connected(ep, ep->next_fd);
    ep->next_fd = -1;
}

/* Serves 'ep''s sockets: its front-end's messages, and a front-end that
 * connected to it.  Once a run at most. */
static void
endpoint_pass(struct vhost_endpoint *ep)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    if (ep->pass_seq == run_seq) {
        return;
    }
    ep->pass_seq = run_seq;
    ep->again = false;
    if (ep->conn_fd >= 0) {
        serve_connection(ep);
    }
    if (ep->listen_fd >= 0) {
        accept_frontend(ep);
        if (ep->conn_fd >= 0) {
            serve_connection(ep);
        }
    }
}

/* Gives a pass to the endpoints whose sockets are ready.  The message and
 * connection callbacks it calls never destroy an endpoint, so the
 * endpoints in the events are all there. */
static void
run_ready_endpoints(void)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct epoll_event events[64];
    int n;

    if (epoll_fd < 0) {
        return;
    }
    do {
        n = epoll_wait(epoll_fd, events, ARRAY_SIZE(events), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        VLOG_WARN_RL(&rl, "epoll_wait: %s", ovs_strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        endpoint_pass(events[i].data.ptr);
    }
    if (n == ARRAY_SIZE(events)) {
        /* More may be ready (level-triggered: the next call returns the
         * others first). */
        poll_immediate_wake();
    }
}

/* Services every endpoint: accepts, connects, reads and answers messages. */
static void
endpoints_run(void)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct vhost_endpoint *ep;

    run_seq++;
    read_socket_dir_events();
    run_ready_endpoints();
    LIST_FOR_EACH_SAFE (ep, node, &endpoints) {
        if (ep->again || ep->polled) {
            endpoint_pass(ep);
        }
        if (ep->conn_fd < 0 && ep->client
            && time_msec() >= ep->next_connect) {
            try_connect(ep);
        }
    }
}

/* Arranges for the thread to wake when endpoints_run() has work. */
static void
endpoints_wait(void)
    OVS_REQUIRES(vhost_endpoints_mutex)
{
    struct vhost_endpoint *ep;

    if (inotify_fd >= 0) {
        poll_fd_wait(inotify_fd, POLLIN);
    }
    if (epoll_fd >= 0) {
        poll_fd_wait(epoll_fd, POLLIN);
    }
    LIST_FOR_EACH (ep, node, &endpoints) {
        if (ep->again) {
            poll_immediate_wake();
        }
        if (ep->polled && ep->listen_fd >= 0) {
            poll_fd_wait(ep->listen_fd, POLLIN);
        }
        if (ep->polled && ep->conn_fd >= 0) {
            poll_fd_wait(ep->conn_fd, POLLIN);
        } else if (ep->conn_fd < 0 && ep->client) {
            poll_timer_wait_until(ep->next_connect);
        }
    }
}

/* The connection manager's thread.  It holds the mutex while it serves the
 * sockets, and not while it sleeps.  (Created by ovs_thread_create(): it
 * takes part in RCU, and poll_block() is its quiescent state, so the
 * device's deferred frees, ovsrcu_postpone() from this thread, wait for
 * it too.) */
static void *
endpoints_thread_main(void *arg OVS_UNUSED)
{
    for (;;) {
        unsigned int waiting;
        uint64_t seq;

        /* Another thread first, if one is waiting (see
         * vhost_endpoints_lock()). */
        for (;;) {
            atomic_read_relaxed(&n_waiting, &waiting);
            if (!waiting) {
                break;
            }
            sched_yield();
        }
        ovs_mutex_lock(&vhost_endpoints_mutex);
        seq = seq_read(wake_seq);
        endpoints_run();
        endpoints_wait();
        seq_wait(wake_seq, seq);
        ovs_mutex_unlock(&vhost_endpoints_mutex);
        poll_block();
    }
    return NULL;
}
