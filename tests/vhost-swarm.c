/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* vhost-swarm: many scripted guests in one process, for soak and scale
 * tests (tests/soak.at).
 *
 *   vhost-swarm [OPTIONS] SOCKET...
 *
 * Connects a guest to every server socket given, each with --pairs queue
 * pairs, and sends each a probe frame that the test's flows return to the
 * same port ("up" once every port forwarded).  Then:
 *
 *   --cycles N      N times: close one guest's connection (round robin over
 *                   the ports), connect a fresh guest in its place, bring it
 *                   up and check that it forwards, and that another port
 *                   still does;
 *   --watch PID     reads process PID's open fds, memory mappings and
 *                   resident memory after --warmup cycles, at every eighth
 *                   of the rest and at the end, and prints them, with the
 *                   steady growth over the second half (the median eighth's
 *                   growth, times four: a leak grows every eighth, while
 *                   an allocator or table settling in one step grows one)
 *                   and the mappings that grew most;
 *   --hold FILE     then, while FILE exists, keeps every guest connected
 *                   and sends probes through every --sample'th port.
 *
 * A guest sets up each ring and enables it, asking for a reply to every
 * message, unless --like-qemu: then it sets up every ring without asking
 * for replies and enables them all after, as QEMU does (a switch that
 * sizes a port by the rings it knows when the first pair is ready, as
 * OVS-DPDK does, sees them all).
 *
 * Prints progress lines; any failure prints "FAIL: ..." and exits 1. */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vguest.h"

struct port {
    const char *path;
    const char *name;
    struct vguest g;
};

static struct port *ports;
static int n_ports;
static int n_pairs = 2;
static bool like_qemu;

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void
port_connect(struct port *p)
{
    int error;

    vg_init(&p->g, p->name, false);
    p->g.like_qemu = like_qemu;
    error = vg_conn_connect(&p->g.conn, p->path, 10000);
    if (error) {
        vg_fail(&p->g, "connect to %s: %s", p->path, strerror(error));
    }
    vg_set_up(&p->g, n_pairs, 0);
}

/* A probe through port 'p' on each of its pairs in turn. */
static void
port_probe(struct port *p, int ms, const char *when)
{
    vg_probe_round_trip(&p->g, p->g.probe_seq % n_pairs, ms, when);
}

struct usage {
    int fds;
    int maps;
    long rss_kb;
};

static struct usage
read_usage(int pid)
{
    struct usage u = { 0, 0, -1 };
    char path[64], line[512];
    struct dirent *de;
    FILE *f;
    DIR *d;

    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    d = opendir(path);
    if (!d) {
        printf("FAIL: swarm: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    while ((de = readdir(d))) {
        u.fds += de->d_name[0] != '.';
    }
    closedir(d);

    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        u.maps++;
    }
    if (f) {
        fclose(f);
    }

    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &u.rss_kb);
    }
    if (f) {
        fclose(f);
    }
    return u;
}

/* read_usage() once the switch's fds and mappings hold still: a
 * connection the swarm just closed is torn down on the switch's next pass,
 * and its fds and mappings go only after an RCU grace period, so a sample
 * taken at that moment counts them (seen: 8 fds and 4 mappings more at the
 * warm-up than at the end).  A sanitized switch on a loaded machine can
 * take longer than 100 ms over that grace period: the sample is taken once
 * both held still for a second (10 samples in a row), up to 30 s. */
static struct usage
read_settled_usage(int pid)
{
    struct usage u = read_usage(pid);
    int same = 0;

    for (int i = 0; i < 300 && same < 10; i++) {
        struct usage v;

        usleep(100 * 1000);
        v = read_usage(pid);
        same = v.fds == u.fds && v.maps == u.maps ? same + 1 : 0;
        u = v;
    }
    return u;
}

/* One mapping of the watched process and its resident size, from
 * /proc/PID/smaps. */
struct mapping {
    unsigned long start;
    long rss_kb;
    char name[96];
};

struct mappings {
    struct mapping *m;
    int n;
};

static struct mappings
read_mappings(int pid)
{
    struct mappings ms = { NULL, 0 };
    int allocated = 0;
    char path[64], line[512];
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/smaps", pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start, end;
        long kb;
        int name_at = 0;

        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end,
                   &name_at) == 2 && name_at) {
            if (ms.n == allocated) {
                allocated = allocated ? 2 * allocated : 64;
                ms.m = realloc(ms.m, allocated * sizeof *ms.m);
            }
            struct mapping *m = &ms.m[ms.n++];
            m->start = start;
            m->rss_kb = 0;
            snprintf(m->name, sizeof m->name, "%s", line + name_at);
            m->name[strcspn(m->name, "\n")] = '\0';
        } else if (ms.n && sscanf(line, "Rss: %ld", &kb) == 1) {
            ms.m[ms.n - 1].rss_kb = kb;
        }
    }
    if (f) {
        fclose(f);
    }
    return ms;
}

/* Prints the mappings in 'after' whose resident size grew by 64 kB or more
 * since 'before' (a mapping new since then counts from zero). */
static void
print_mapping_growth(const struct mappings *before,
                     const struct mappings *after)
{
    for (int i = 0; i < after->n; i++) {
        const struct mapping *a = &after->m[i];
        long was = 0;

        for (int j = 0; j < before->n; j++) {
            if (before->m[j].start == a->start) {
                was = before->m[j].rss_kb;
                break;
            }
        }
        if (a->rss_kb - was >= 64) {
            printf("watch: grew: mapping %lx %s: rss %ld -> %ld kB\n",
                   a->start, a->name[0] ? a->name : "[anonymous]", was,
                   a->rss_kb);
        }
    }
}

static int
compare_long(const void *a_, const void *b_)
{
    long a = *(const long *) a_, b = *(const long *) b_;

    return a < b ? -1 : a > b;
}

static void
print_usage(const char *when, struct usage u)
{
    printf("watch: %s: fds %d maps %d rss %ld kB\n", when, u.fds, u.maps,
           u.rss_kb);
}

int
main(int argc, char *argv[])
{
    static const struct option options[] = {
        { "pairs", required_argument, NULL, 'p' },
        { "cycles", required_argument, NULL, 'c' },
        { "warmup", required_argument, NULL, 'w' },
        { "watch", required_argument, NULL, 'W' },
        { "hold", required_argument, NULL, 'h' },
        { "sample", required_argument, NULL, 's' },
        { "like-qemu", no_argument, NULL, 'q' },
        { NULL, 0, NULL, 0 },
    };
    const char *hold = NULL;
    int cycles = 0, warmup = -1, watch = 0, sample = 16;
    long long t0;
    int opt;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': n_pairs = atoi(optarg); break;
        case 'c': cycles = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'W': watch = atoi(optarg); break;
        case 'h': hold = optarg; break;
        case 's': sample = atoi(optarg); break;
        case 'q': like_qemu = true; break;
        default:
            fprintf(stderr, "usage: vhost-swarm [--pairs N] [--cycles N] "
                    "[--warmup N] [--watch PID] [--hold FILE] [--sample K] "
                    "[--like-qemu] SOCKET...\n");
            return 2;
        }
    }
    n_ports = argc - optind;
    if (n_ports < 1 || n_pairs < 1 || n_pairs > VG_MAX_PAIRS || sample < 1
        || cycles < 0) {
        fprintf(stderr, "vhost-swarm: bad arguments (--help)\n");
        return 2;
    }
    if (warmup < 0) {
        warmup = cycles / 10 < 100 ? cycles / 10 : 100;
    }
    ports = calloc(n_ports, sizeof *ports);
    for (int i = 0; i < n_ports; i++) {
        const char *slash = strrchr(argv[optind + i], '/');

        ports[i].path = argv[optind + i];
        ports[i].name = slash ? slash + 1 : ports[i].path;
    }

    /* Every port up and forwarding. */
    t0 = now_ms();
    for (int i = 0; i < n_ports; i++) {
        port_connect(&ports[i]);
    }
    printf("connected: %d ports, %d queue pairs each, in %lld ms\n",
           n_ports, n_pairs, now_ms() - t0);
    for (int i = 0; i < n_ports; i++) {
        /* The first probe of a port waits for the switch to poll its
         * queues. */
        for (int q = 0; q < n_pairs; q++) {
            vg_probe_round_trip(&ports[i].g, q, 20000, "first probe");
        }
    }
    printf("up: %d ports forwarding on every queue pair, %lld ms after "
           "the first connect\n", n_ports, now_ms() - t0);

    /* Reconnect cycles.  With --watch, usage is sampled at the warm-up and
     * at every eighth of the cycles after it: eighth[k] is the sample at
     * the start of eighth k, eighth[8] the one at the end. */
    enum { EIGHTHS = 8 };
    struct usage eighth[EIGHTHS + 1];
    struct mappings warm_maps = { NULL, 0 };
    int n_samples = 0;
    long long sampling_ms = 0;  /* Not counted in the cycles' time. */

    t0 = now_ms();
    for (int c = 0; c < cycles; c++) {
        struct port *p = &ports[c % n_ports];
        struct port *other = &ports[(c + n_ports / 2 + 1) % n_ports];

        if (watch && n_samples < EIGHTHS && cycles - warmup >= EIGHTHS
            && c == warmup + n_samples * (cycles - warmup) / EIGHTHS) {
            long long s0 = now_ms();

            eighth[n_samples] = read_settled_usage(watch);
            if (!n_samples) {
                warm_maps = read_mappings(watch);
                print_usage("after warm-up", eighth[0]);
            } else if (n_samples == EIGHTHS / 2) {
                print_usage("halfway", eighth[n_samples]);
            }
            sampling_ms += now_ms() - s0;
            n_samples++;
        }
        vg_destroy(&p->g);
        port_connect(p);
        port_probe(p, 10000, "after reconnecting");
        if (other != p) {
            port_probe(other, 10000, "while another port reconnected");
        }
        if ((c + 1) % 100 == 0) {
            printf("cycles: %d done\n", c + 1);
        }
    }
    if (cycles) {
        long long ms = now_ms() - t0 - sampling_ms;

        printf("cycles: %d reconnects in %lld ms, %.1f ms each from "
               "disconnect to forwarding again\n", cycles, ms,
               (double) ms / cycles);
    }
    if (watch) {
        struct usage end = read_settled_usage(watch);
        struct mappings end_maps = read_mappings(watch);

        print_usage("at the end", end);
        if (n_samples < EIGHTHS) {
            /* Too few cycles to sample: the change is from the start. */
            eighth[0] = end;
            n_samples = 0;
        }

        long growth[EIGHTHS / 2], steady = 0;
        const struct usage *warm = &eighth[0];

        eighth[EIGHTHS] = end;
        if (n_samples) {
            printf("watch: rss growth per eighth:");
            for (int k = 0; k < EIGHTHS; k++) {
                printf(" %+ld", eighth[k + 1].rss_kb - eighth[k].rss_kb);
            }
            printf(" kB\n");
            for (int k = 0; k < EIGHTHS / 2; k++) {
                int at = EIGHTHS / 2 + k;

                growth[k] = eighth[at + 1].rss_kb - eighth[at].rss_kb;
            }
            qsort(growth, EIGHTHS / 2, sizeof *growth, compare_long);
            steady = (growth[EIGHTHS / 4 - 1] + growth[EIGHTHS / 4]) * 2;
            print_mapping_growth(&warm_maps, &end_maps);
        }
        printf("watch: change: fds %+d maps %+d rss %+ld kB (steady growth "
               "over the second half %+ld kB)\n", end.fds - warm->fds,
               end.maps - warm->maps, end.rss_kb - warm->rss_kb, steady);
        free(warm_maps.m);
        free(end_maps.m);
    }

    if (hold) {
        unsigned long n = 0;

        printf("holding while %s exists\n", hold);
        while (!access(hold, F_OK)) {
            for (int i = 0; i < n_ports; i += sample) {
                port_probe(&ports[i], 10000, "while holding");
                n++;
            }
            usleep(20 * 1000);
        }
        printf("held: %lu probes through every %d%s port\n", n, sample,
               sample == 1 ? "" : "th");
    }
    for (int i = 0; i < n_ports; i++) {
        vg_destroy(&ports[i].g);
    }
    free(ports);
    printf("done\n");
    return 0;
}
