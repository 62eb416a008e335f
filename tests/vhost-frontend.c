/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* vhost-frontend: a scripted vhost-user front-end for exact protocol
 * scenarios, playing QEMU's part (and a guest driver's) against the switch.
 *
 * It lays out guest memory itself (memfds, optionally split into regions so
 * that buffers cross region boundaries), builds split virtqueues, negotiates
 * as QEMU does since multiqueue support (device-wide messages once, per-vring
 * messages with the queue pair's vring offset, GET_QUEUE_NUM checked,
 * SET_VRING_ENABLE per pair) or as a front-end older than that (device-wide
 * messages repeated per pair), then sends frames on every TX queue of one
 * port and checks that each arrives, byte for byte, on the other port.
 *
 * Usage: vhost-frontend [OPTION]... SOCKET_A SOCKET_B
 *   --pairs N          queue pairs to set up (default 1)
 *   --enable N         queue pairs to enable (default: all set up)
 *   --sizes LIST       frame sizes, comma separated (default 60,1514)
 *   --count N          frames per size per queue per direction (default 32)
 *   --ring N           ring size (default 256)
 *   --no-mrg           do not negotiate MRG_RXBUF (and not VERSION_1: the
 *                      legacy 10-byte header; big chained RX buffers)
 *   --indirect         post buffers through indirect descriptor tables
 *   --chain N          split each TX frame over descriptors of N bytes
 *   --regions N        guest memory in N regions (default 1); buffers are
 *                      placed across region boundaries
 *   --legacy           repeat device-wide messages per queue pair
 *   --no-reply-ack     do not negotiate REPLY_ACK
 *   --no-status        do not negotiate STATUS: the device is ready as soon
 *                      as the first pair runs, and later pairs come after
 *   --one-way          only A to B
 *   --toggle Q         after a first round, disable queue pair Q on B (and
 *                      A) while traffic runs, check nothing lands in it,
 *                      then enable it again
 *   --mac-a MAC, --mac-b MAC   source MACs (defaults 02:00:00:00:00:0a/0b)
 *   --expect-refused   expect the switch to refuse the queue count
 *   --hold MS          with --toggle, keep the pair disabled MS ms, or
 *                      until SIGUSR1, whichever comes first (for the test
 *                      to look at the switch meanwhile)
 *   --churn MS         after a first round, B enables and disables its
 *                      queue pairs (a random non-empty set each time, as
 *                      `ethtool -L` would, but faster) for MS ms while A
 *                      keeps sending; then all pairs are enabled again and
 *                      every frame must have arrived intact
 *   --fill-only Q      B posts receive buffers on queue pair Q only: its
 *                      other RX rings are enabled but empty, as the queues
 *                      that `ethtool -L` adds to a Linux guest are until
 *                      its refill work runs; A's frames must all arrive
 *                      (on pair Q) in the warm-up and round 1; then B
 *                      fills every RX ring and another round runs
 *   --unfilled-first N B gives no receive buffer at first (a Linux guest
 *                      between its driver's probe and its interface coming
 *                      up): A sends N frames, which the switch must drop,
 *                      waits until the switch took them all from its ring,
 *                      then B fills every RX ring and the rounds run
 *   --unfilled-wait F  with --unfilled-first, steps a test drives: print
 *                      "unfilled: waiting for F-send" and send A's frames
 *                      once F-send exists, then (once the switch took
 *                      them) "unfilled: waiting for F-fill" and fill B's
 *                      rings once F-fill exists; the test checks the
 *                      switch meanwhile (its reconfiguration done, the
 *                      frames counted), so no time is guessed
 *   --ignore-queue-num set up more pairs than GET_QUEUE_NUM allows (a
 *                      broken front-end: the switch must refuse)
 *   --rarp             once warmed up, with A's TX rings empty, A asks the
 *                      switch to announce its MAC (SEND_RARP, as QEMU does
 *                      after a migration): B must get exactly one RARP
 *                      frame for A's MAC, although A's rings hold nothing
 *   --switch-ports A,B the switch's names for the ports of SOCKET_A and
 *                      SOCKET_B: once both are set up, before any frame,
 *                      wait until `ovs-appctl dpctl/show` shows both
 *                      configured for the pairs set up (the switch asks
 *                      its datapath for the new queue count when a guest
 *                      is ready, and frames sent to a port while the
 *                      datapath reconfigures it are dropped)
 *   --timeout SECONDS  (default 20)
 *
 * Offloads (checksum and TCP segmentation, the switch started with
 * other_config:userspace-tso-enable=true):
 *   --offloads-a LIST, --offloads-b LIST
 *                      features A (B) negotiates, comma separated: csum
 *                      (VIRTIO_NET_F_CSUM), tso (HOST_TSO4 and HOST_TSO6,
 *                      with csum), rx-csum (GUEST_CSUM), rx-tso (GUEST_TSO4
 *                      and GUEST_TSO6, with rx-csum); each must be offered
 *   --offload-test     instead of the rounds: A sends B TCP and UDP frames
 *                      over IPv4 and IPv6 as a Linux guest does with what
 *                      it negotiated: 64 KiB TSO frames, partial checksums,
 *                      a TSO frame with a lying hdr_len (a hint only), and
 *                      full checksums; B checks every frame it gets
 *                      against what it negotiated (one whole frame with the
 *                      right header, or segments of at most the port's MTU),
 *                      every checksum (a partial one completed as a guest
 *                      would), and that each frame's payload arrived
 *                      whole, once, in order of sequence
 *   --port-mtu N       the switch port's MTU that segments must fit
 *                      (default 1500)
 *   --gso-mtu N        A's TSO frames ask for segments that fit an MTU of
 *                      N (default: the port's), and B expects segments of
 *                      that size where the switch's OVS keeps a packet's
 *                      segment size (with --gso-kept), else of the port's
 *   --gso-kept         (see --gso-mtu)
 *   --bad-headers      then A sends frames whose virtio-net headers lie
 *                      (each kind once); none may reach B; then the same
 *                      in one burst between good frames, which must all
 *                      reach B, once each, in order
 *   (--hold MS         at the end, keep the connections MS ms, or until
 *                      SIGUSR1, whichever comes first.)
 *
 * Every used ring entry the switch returns, on every queue, must name a
 * head the front-end made available and has not had back yet (a Linux
 * guest marks its device broken otherwise: "id N is not a head!"); the
 * first one that does not ends the run with a failure.
 *
 * Prints one line per check and exits 0 if all passed. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vhost-conn.h"
#include "vhost-user-wire.h"
#include "inet-csum.h"
#include "vguest-conn.h"
#include "vguest-ring.h"
#include "virtq.h"
#include "vnet-offload.h"

#define MAX_PAIRS 16
#define MAX_REGIONS 4
#define RX_BUF_MRG 2048         /* Mergeable RX buffer, like a guest's. */
#define RX_BUF_BIG 4096         /* Pieces of a non-mergeable RX chain. */
#define MAX_FRAME 9216
#define MAX_RX_FRAME (65535 + 64)   /* Biggest frame B gathers. */
#define ETHERTYPE_TEST 0x88b5
#define MAGIC 0x76686d71        /* "vhmq" */
#define PROBE_MAGIC 0x70726f62  /* "prob": warm-up, may be lost */
#define DISCARD_MAGIC 0x64697363 /* "disc": sent on a disabled queue */

static int n_pairs = 1;
static int n_enable = -1;
static int sizes[32] = { 60, 1514 };
static int n_sizes = 2;
static int count = 32;
static int ring_size = 256;
static bool mrg = true;
static bool use_indirect;
static int chain_len;
static int n_regions = 1;
static bool legacy;
static bool reply_ack = true;
static bool one_way;
static int toggle_q = -1;
static bool expect_refused;
static bool ignore_queue_num;
static bool use_status = true;
static int timeout_s = 20;
static bool rarp_test;
static int hold_ms;
static volatile sig_atomic_t hold_end;

static void
hold_ended(int sig)
{
    (void) sig;
    hold_end = 1;
}
static int churn_ms;
static int fill_only = -1;
static int unfilled_first;              /* --unfilled-first N. */
static const char *unfilled_wait;       /* --unfilled-wait FILE. */
static struct guest *unfilled_guest;    /* B, with --fill-only. */
static uint8_t mac_a[6] = { 2, 0, 0, 0, 0, 0x0a };
static uint8_t mac_b[6] = { 2, 0, 0, 0, 0, 0x0b };

static int n_failures;

static void
fail(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    printf("FAIL: ");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    fflush(stdout);
    n_failures++;
}

static void __attribute__((noreturn))
die(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    fprintf(stderr, "vhost-frontend: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(2);
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Guest memory: 'n_regions' memfds, contiguous in guest-physical space
 * from GPA_BASE, each mapped here at its own address (vguest-ring.h). */
#define GPA_BASE 0x100000ull

struct guest {
    const char *name;
    struct vg_conn conn;
    struct vg_mem mem;
    uint64_t features;
    int hdr_len;
    const uint8_t *mac;
    const uint8_t *peer_mac;
    uint64_t offloads;          /* --offloads-a/-b: features to ack. */
    struct vq *vqs[2 * MAX_PAIRS];
};

static void
guest_write(struct guest *g, uint64_t gpa, const void *buf, size_t len)
{
    if (!vg_mem_copy(&g->mem, gpa, (void *) buf, len, true)) {
        die("%s: gpa 0x%"PRIx64" outside guest memory", g->name, gpa);
    }
}

static void
guest_read(struct guest *g, uint64_t gpa, void *buf, size_t len)
{
    if (!vg_mem_copy(&g->mem, gpa, buf, len, false)) {
        die("%s: gpa 0x%"PRIx64" outside guest memory", g->name, gpa);
    }
}

/* Allocates 'size' bytes aligned to 'align'.  Rings must not cross a
 * region boundary (the back-end needs them contiguous); buffers may. */
static uint64_t
guest_alloc(struct guest *g, uint64_t size, uint64_t align, bool contiguous)
{
    uint64_t gpa;

    if (!vg_mem_alloc(&g->mem, size, align, contiguous, &gpa)) {
        die("%s: out of guest memory", g->name);
    }
    return gpa;
}

/* A driver-side split virtqueue, and what this front-end keeps with it. */
struct vq {
    struct vg_vq ring;
    int index;
    bool rx;                    /* Guest RX (device writes). */
    int kick_fd, call_fd;
    bool enabled;
    bool unfilled;              /* RX: post no buffers (--fill-only). */
    uint16_t disabled_at;       /* used->idx when the switch acked the
                                 * disable: nothing may come after. */
    uint64_t *buf_gpa;          /* Per head: its buffer block... */
    uint32_t *buf_size;         /* ...of this many bytes... */
    bool *buf_contiguous;       /* ...in one region? */
    /* Counters. */
    uint64_t frames;
};

static void
vq_init(struct guest *g, struct vq *vq, int index)
{
    uint64_t desc_gpa = guest_alloc(g, 16 * ring_size, 16, true);
    uint64_t avail_gpa = guest_alloc(g, 6 + 2 * ring_size, 2, true);
    uint64_t used_gpa = guest_alloc(g, 6 + 8 * ring_size, 4, true);

    vq->index = index;
    vq->rx = !(index & 1);
    if (!vg_vq_init(&vq->ring, &g->mem, ring_size, desc_gpa, avail_gpa,
                    used_gpa)) {
        die("%s: vring %d: out of memory", g->name, index);
    }
    vg_vq_init_free_list(&vq->ring);
    vq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    vq->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    vq->buf_gpa = calloc(ring_size, sizeof *vq->buf_gpa);
    vq->buf_size = calloc(ring_size, sizeof *vq->buf_size);
    vq->buf_contiguous = calloc(ring_size, sizeof *vq->buf_contiguous);
}

/* The buffer block of head slot 'head' of 'vq', at least 'size' bytes (in
 * one region if 'contiguous'): the one the slot has if it is big enough,
 * else a new one.  (A slot that carried small frames may next carry a
 * 64 KiB one: writing that into the small block would overwrite the
 * blocks after it, which other frames in flight may be using.) */
static uint64_t
vq_block(struct guest *g, struct vq *vq, uint16_t head, uint32_t size,
         uint64_t align, bool contiguous)
{
    if (!vq->buf_gpa[head] || vq->buf_size[head] < size
        || (contiguous && !vq->buf_contiguous[head])) {
        vq->buf_gpa[head] = guest_alloc(g, size, align, contiguous);
        vq->buf_size[head] = size;
        vq->buf_contiguous[head] = contiguous;
    }
    return vq->buf_gpa[head];
}

/* Adds a buffer made of the pieces (gpa, len) as one chain, directly or
 * through an indirect table. */
static bool
vq_add(struct guest *g, struct vq *vq, const uint64_t *gpas,
       const uint32_t *lens, int n, uint16_t flags)
{
    int head = vg_vq_add(&vq->ring, &g->mem, gpas, lens, n, flags,
                         use_indirect);

    if (head == VG_VQ_NO_MEMORY) {
        die("%s: out of guest memory", g->name);
    } else if (head == VG_VQ_POSTED) {
        die("%s: posted a head twice (front-end bug)", g->name);
    }
    return head >= 0;
}

/* What the connection cannot go on from ends the run as die() does. */
static void
conn_fail(const struct vg_conn *c, const char *msg)
{
    die("%s: %s", c->name, msg);
}

static void
guest_memory_init(struct guest *g)
{
    /* Sparse: only what is touched takes memory. */
    int error = vg_mem_init(&g->mem, "vhost-frontend-guest", n_regions,
                            GPA_BASE, (256ull << 20) / n_regions);

    if (error) {
        die("memfd: %s", strerror(error));
    }
}

static void
send_mem_table(struct guest *g)
{
    struct vhost_user_mem_table table;
    int fds[MAX_REGIONS];
    uint32_t size = vg_mem_table(&g->mem, &table, fds);

    vg_conn_request(&g->conn, VHOST_USER_SET_MEM_TABLE, &table, size, fds,
                    g->mem.n_regions);
}

/* Posts RX buffers until the ring is full.  Each head slot owns one
 * buffer block, allocated the first time the slot is used. */
static void
fill_rx(struct guest *g, struct vq *vq)
{
    int pieces = mrg ? 1 : 3;
    uint32_t piece_len = mrg ? RX_BUF_MRG : RX_BUF_BIG;

    while (!vq->unfilled && vq->ring.n_free >= (use_indirect ? 1 : pieces)) {
        uint16_t head = vq->ring.free_head;
        uint64_t gpas[3];
        uint32_t lens[3];

        uint64_t block = vq_block(g, vq, head, pieces * piece_len, 64,
                                  n_regions == 1);
        for (int i = 0; i < pieces; i++) {
            gpas[i] = block + i * piece_len;
            lens[i] = piece_len;
        }
        if (!vq_add(g, vq, gpas, lens, pieces, VRING_DESC_F_WRITE)) {
            return;
        }
    }
}

/* A test frame: Ethernet header, then magic, sequence, queue, size, and a
 * pattern derived from the sequence number. */
static void
make_frame(uint8_t *frame, int size, const uint8_t *src, const uint8_t *dst,
           uint32_t seq, uint16_t q)
{
    memcpy(frame, dst, 6);
    memcpy(frame + 6, src, 6);
    frame[12] = ETHERTYPE_TEST >> 8;
    frame[13] = ETHERTYPE_TEST & 0xff;
    uint32_t magic = MAGIC;
    memcpy(frame + 14, &magic, 4);
    memcpy(frame + 18, &seq, 4);
    memcpy(frame + 22, &q, 2);
    uint16_t s = size;
    memcpy(frame + 24, &s, 2);
    for (int i = 26; i < size; i++) {
        frame[i] = (uint8_t) (seq * 7 + i * 13);
    }
}

struct flow {
    struct guest *from, *to;
    uint32_t next_seq;
    uint64_t expected;          /* Frames sent, not yet seen. */
    uint64_t received;
    uint64_t bad;
    uint64_t per_rxq[MAX_PAIRS];
    uint8_t *seen;              /* Per sequence number. */
    uint64_t probes_seen_txq[MAX_PAIRS];  /* Per TX queue they were sent on. */
    uint64_t probes_sent_txq[MAX_PAIRS];
    uint64_t discards_seen;     /* DISCARD_MAGIC frames that got through. */
    uint64_t rarps_seen;        /* RARP announcements of 'from''s MAC. */
    uint32_t max_seq;
};

static void poll_rx(struct flow *);
static void reclaim_tx(struct guest *);

/* --unfilled-wait: waits until the file named after it and 'step' exists.
 * The test creates it after waits of its own (OVS reconfiguring, an upcall
 * installing a flow), each bounded by OVS_CTL_TIMEOUT (30 s): a step gets
 * twice --timeout from when it starts, not what is left of a deadline
 * shared with the steps before it, which a loaded or sanitized switch can
 * use up. */
static void
wait_for_step(const char *step)
{
    long long deadline = now_ms() + timeout_s * 2000LL;
    char name[4096];

    snprintf(name, sizeof name, "%s-%s", unfilled_wait, step);
    printf("unfilled: waiting for %s\n", name);
    fflush(stdout);
    while (access(name, F_OK) && now_ms() < deadline) {
        usleep(10 * 1000);
    }
    if (access(name, F_OK)) {
        fail("%s did not appear in %lld s", name, timeout_s * 2LL);
    }
}
static bool offload_test;
static const char *switch_ports; /* --switch-ports. */
static void check_offload_frame(struct flow *, int q,
                                const struct virtio_net_hdr *,
                                const uint8_t *frame, uint32_t len);

static int max_size;
static int window;              /* Frames in flight at most. */

/* Sends one frame on TX queue pair q of 'f->from'.  Each head slot owns a
 * buffer block big enough for the largest frame; with --regions > 1 blocks
 * may straddle a region boundary. */
static bool
send_frame__(struct flow *f, int q, int size, uint32_t special_magic)
{
    bool probe = special_magic != 0;
    struct guest *g = f->from;
    struct vq *vq = g->vqs[2 * q + 1];
    static uint8_t frame[MAX_FRAME];
    uint8_t hdr[12];
    uint64_t gpas[64];
    uint32_t lens[64];
    uint64_t block;
    int n = 0;
    uint32_t seq = f->next_seq;
    int need = chain_len ? 1 + (size + chain_len - 1) / chain_len : 1;
    uint16_t head = vq->ring.free_head;

    if (vq->ring.n_free < (use_indirect ? 1 : need) || need > 64) {
        return false;
    }
    block = vq_block(g, vq, head, 12 + max_size, 16, false);
    make_frame(frame, size, g->mac, g->peer_mac, seq, q);
    if (probe) {
        memcpy(frame + 14, &special_magic, 4);
    }
    memset(hdr, 0, sizeof hdr);
    guest_write(g, block, hdr, g->hdr_len);
    guest_write(g, block + g->hdr_len, frame, size);

    if (chain_len) {
        gpas[n] = block;
        lens[n++] = g->hdr_len;
        for (int off = 0; off < size; off += chain_len) {
            gpas[n] = block + g->hdr_len + off;
            lens[n++] = size - off < chain_len ? size - off : chain_len;
        }
    } else {
        gpas[n] = block;
        lens[n++] = g->hdr_len + size;
    }
    if (!vq_add(g, vq, gpas, lens, n, 0)) {
        return false;
    }
    if (!probe) {
        f->next_seq++;
        f->expected++;
        vq->frames++;
    }
    return true;
}

static bool
send_frame(struct flow *f, int q, int size)
{
    return send_frame__(f, q, size, 0);
}

/* Sends probe frames on queue pair 'q' until one gets through. */
static void
warm_up_pair(struct flow *f, int q, long long deadline)
{
    while (!f->probes_seen_txq[q] && now_ms() < deadline) {
        long long next = now_ms() + 100;

        if (send_frame__(f, q, 60, PROBE_MAGIC)) {
            f->probes_sent_txq[q]++;
        }
        while (!f->probes_seen_txq[q] && now_ms() < next) {
            poll_rx(f);
            reclaim_tx(f->from);
            usleep(500);
        }
    }
    if (!f->probes_seen_txq[q]) {
        fail("%s -> %s: no probe frame sent on txq %d got through in %d s",
             f->from->name, f->to->name, q, timeout_s);
    }
}

/* Sends probe frames until they get through: the switch may still be
 * setting up the port's queues after the front-end is done (a PMD
 * reconfiguration), and frames sent meanwhile may be lost.
 *
 * With STATUS, the device is ready once every pair is set up, so the
 * switch sets the ports' queues up in one go: one probe through pair 0
 * shows it done.  Without, the device is ready with its first pair and the
 * ports grow in steps as the others come (at most one step per
 * reconfiguration interval): a probe must get through each enabled pair,
 * which shows that the sender's port polls that many queues.  (The two
 * directions together cover both ports.)  The probes sent per pair are
 * printed, as the switch counts them in its per-queue statistics. */
static void
warm_up(struct flow *f)
{
    long long deadline = now_ms() + timeout_s * 1000LL;

    if (use_status) {
        warm_up_pair(f, 0, deadline);
        return;
    }
    for (int q = 0; q < n_pairs; q++) {
        if (f->from->vqs[2 * q + 1]->enabled) {
            warm_up_pair(f, q, deadline);
            printf("warm-up: %s txq %d sent %"PRIu64" probe(s)\n",
                   f->from->name, q, f->probes_sent_txq[q]);
        }
    }
    fflush(stdout);
}

static void reclaim_tx(struct guest *);

/* --switch-ports: whether 'show' (ovs-appctl dpctl/show) has 'port'
 * configured, and asked, for 'n' queues.  Its line reads
 * "  port N: NAME (TYPE: configured_rx_queues=Q, ..., requested_rx_queues=Q,
 * ...)". */
static bool
switch_port_ready(const char *show, const char *port, int n)
{
    char name[256], want[64];
    const char *line, *end;

    snprintf(name, sizeof name, ": %s (", port);
    line = strstr(show, name);
    if (!line) {
        return false;
    }
    end = strchr(line, '\n');
    if (!end) {
        end = line + strlen(line);
    }
    for (int i = 0; i < 2; i++) {
        const char *p;

        snprintf(want, sizeof want, "%s_rx_queues=%d,",
                 i ? "requested" : "configured", n);
        p = strstr(line, want);
        if (!p || p > end) {
            return false;
        }
    }
    return true;
}

static void
wait_for_switch_ports(void)
{
    long long deadline = now_ms() + timeout_s * 1000LL;
    static char show[65536];

    for (;;) {
        FILE *p = popen("ovs-appctl dpctl/show 2>/dev/null", "r");
        size_t n = 0;
        bool ready = true;
        char *ports, *tok, *save;

        show[0] = '\0';
        if (p) {
            n = fread(show, 1, sizeof show - 1, p);
            show[n] = '\0';
            pclose(p);
        }
        ports = strdup(switch_ports);
        for (tok = strtok_r(ports, ",", &save); tok && ready;
             tok = strtok_r(NULL, ",", &save)) {
            ready = switch_port_ready(show, tok, n_pairs);
        }
        free(ports);
        if (ready) {
            return;
        }
        if (now_ms() >= deadline) {
            fail("the switch did not configure %s for %d queue pair(s) in "
                 "%d s; dpctl/show said:\n%s", switch_ports, n_pairs,
                 timeout_s, show);
            return;
        }
        usleep(20 * 1000);
    }
}

/* --unfilled-first: 'f->from' sends frames while 'f->to' has no receive
 * buffer on any ring; once the switch has taken every one of them from the
 * sender's ring (and had time to pass them on), the receiver fills its
 * rings. */
static void
send_unfilled_first(struct flow *f)
{
    struct vq *tx = f->from->vqs[1];
    long long deadline;

    if (unfilled_wait) {
        wait_for_step("send");
    }
    for (int i = 0; i < unfilled_first; i++) {
        send_frame__(f, 0, 60, PROBE_MAGIC);
    }
    deadline = now_ms() + timeout_s * 1000LL;
    while (vg_vq_used_idx(&tx->ring) != tx->ring.avail_idx
           && now_ms() < deadline) {
        usleep(1000);
    }
    reclaim_tx(f->from);
    if (tx->ring.last_used != tx->ring.avail_idx) {
        fail("%s: the switch did not take the %d frames sent before %s "
             "had buffers", f->from->name, unfilled_first, f->to->name);
    }
    if (unfilled_wait) {
        wait_for_step("fill");
    } else {
        usleep(200 * 1000);
    }
    for (int q = 0; q < n_pairs; q++) {
        f->to->vqs[2 * q]->unfilled = false;
        fill_rx(f->to, f->to->vqs[2 * q]);
    }
    printf("ok: %s: %d frames sent before %s had buffers\n", f->from->name,
           unfilled_first, f->to->name);
}

/* Recycles sent buffers. */
static void
reclaim_tx(struct guest *g)
{
    for (int q = 0; q < n_pairs; q++) {
        struct vq *vq = g->vqs[2 * q + 1];
        uint16_t used_idx = vg_vq_used_idx(&vq->ring);

        while (vq->ring.last_used != used_idx) {
            struct vring_used_elem *e = vg_vq_next_used(&vq->ring);

            vg_vq_check_used(g->name, vq->index, &vq->ring, e->id);
            vg_vq_put_chain(&vq->ring, e->id);
            vq->ring.last_used++;
        }
    }
}

/* A RARP frame (RFC 903), as the switch composes for SEND_RARP: broadcast,
 * from 'f->from''s MAC, a "request reverse" for that MAC. */
static void
check_rarp(struct flow *f, int q, const uint8_t *frame, uint32_t len)
{
    static const uint8_t head[] = {
        0x80, 0x35,             /* Ethertype RARP. */
        0x00, 0x01,             /* Hardware: Ethernet. */
        0x08, 0x00,             /* Protocol: IPv4. */
        6, 4,                   /* Address lengths. */
        0x00, 0x03,             /* Request reverse. */
    };
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    const uint8_t *mac = f->from->mac;

    if (len < 42 || memcmp(frame, bcast, 6) || memcmp(frame + 6, mac, 6)
        || memcmp(frame + 12, head, sizeof head)
        || memcmp(frame + 22, mac, 6) || memcmp(frame + 32, mac, 6)) {
        f->bad++;
        fail("%s rxq %d: a RARP frame of %u bytes that does not announce "
             "%s's MAC", f->to->name, q, len, f->from->name);
        return;
    }
    f->rarps_seen++;
}

static void
check_frame(struct flow *f, int q, const uint8_t *frame, uint32_t len)
{
    static uint8_t expect[MAX_FRAME];
    uint32_t seq, magic;
    uint16_t txq, size;

    if (len < 26) {
        f->bad++;
        fail("%s rxq %d: runt frame of %u bytes", f->to->name, q, len);
        return;
    }
    if (frame[12] == 0x80 && frame[13] == 0x35) {
        check_rarp(f, q, frame, len);
        return;
    }
    memcpy(&magic, frame + 14, 4);
    memcpy(&seq, frame + 18, 4);
    memcpy(&txq, frame + 22, 2);
    memcpy(&size, frame + 24, 2);
    if (magic == PROBE_MAGIC && frame[12] == (ETHERTYPE_TEST >> 8)) {
        if (txq < MAX_PAIRS) {
            f->probes_seen_txq[txq]++;
        }
        return;
    }
    if (magic == DISCARD_MAGIC && frame[12] == (ETHERTYPE_TEST >> 8)) {
        f->discards_seen++;
        fail("%s rxq %d: a frame sent on a disabled queue was forwarded",
             f->to->name, q);
        return;
    }
    if (magic != MAGIC || frame[12] != (ETHERTYPE_TEST >> 8)) {
        /* Not ours (the bridge's own traffic, e.g. IPv6 from br0). */
        return;
    }
    if (size != len || seq >= f->max_seq) {
        f->bad++;
        fail("%s rxq %d: frame seq %u: length %u, expected %u", f->to->name,
             q, seq, len, size);
        return;
    }
    make_frame(expect, size, f->from->mac, f->from->peer_mac, seq, txq);
    if (memcmp(expect, frame, len)) {
        f->bad++;
        fail("%s rxq %d: frame seq %u differs from what was sent",
             f->to->name, q, seq);
        return;
    }
    if (f->seen[seq]) {
        f->bad++;
        fail("%s rxq %d: frame seq %u received twice", f->to->name, q, seq);
        return;
    }
    f->seen[seq] = 1;
    f->received++;
    f->per_rxq[q]++;
}

/* Reads frames from the RX queues of 'f->to', reposting buffers. */
static void
poll_rx(struct flow *f)
{
    struct guest *g = f->to;
    static uint8_t frame[MAX_RX_FRAME];

    for (int q = 0; q < n_pairs; q++) {
        struct vq *vq = g->vqs[2 * q];
        uint16_t used_idx = vg_vq_used_idx(&vq->ring);

        if ((uint16_t) (used_idx - vq->ring.last_used) > vq->ring.size) {
            printf("FAIL: %s vring %d: used index %u runs %u entries past "
                   "the %u the guest has read: more than the ring holds\n",
                   g->name, vq->index, used_idx,
                   (uint16_t) (used_idx - vq->ring.last_used),
                   vq->ring.last_used);
            printf("FAIL: 1 check(s) failed\n");
            fflush(stdout);
            exit(1);
        }
        while ((uint16_t) (used_idx - vq->ring.last_used) > 0) {
            struct vring_used_elem e = *vg_vq_next_used(&vq->ring);
            uint32_t total = 0, n_bufs = 1;
            static uint8_t pkt[MAX_RX_FRAME];

            /* Gather the frame: one chain, or num_buffers chains. */
            for (uint32_t b = 0; b < n_bufs; b++) {
                struct vring_desc *d;
                uint32_t left;
                uint16_t id;

                if (b > 0) {
                    if ((uint16_t) (used_idx - vq->ring.last_used) == 0) {
                        /* The rest is not published yet. */
                        used_idx = vg_vq_used_idx(&vq->ring);
                        b--;
                        continue;
                    }
                    e = *vg_vq_next_used(&vq->ring);
                }
                vg_vq_check_used(g->name, vq->index, &vq->ring, e.id);
                vq->ring.last_used++;
                id = e.id;
                left = e.len;
                if (vq->ring.desc[id].flags & VRING_DESC_F_INDIRECT) {
                    struct vring_desc table[64];
                    int i = 0;

                    guest_read(g, vq->ring.desc[id].addr, table,
                               vq->ring.desc[id].len);
                    while (left) {
                        uint32_t chunk = left < table[i].len ? left
                                                             : table[i].len;

                        if (total + chunk > sizeof pkt) {
                            die("frame too big");
                        }
                        guest_read(g, table[i].addr, pkt + total, chunk);
                        total += chunk;
                        left -= chunk;
                        i++;
                    }
                } else {
                    for (uint16_t i = id; left; i = vq->ring.desc[i].next) {
                        uint32_t chunk;

                        d = &vq->ring.desc[i];
                        chunk = left < d->len ? left : d->len;
                        if (total + chunk > sizeof pkt) {
                            die("frame too big");
                        }
                        guest_read(g, d->addr, pkt + total, chunk);
                        total += chunk;
                        left -= chunk;
                    }
                }
                if (b == 0 && g->hdr_len == 12) {
                    uint16_t nb;

                    memcpy(&nb, pkt + 10, 2);
                    n_bufs = mrg ? nb : 1;
                    if (!n_bufs || n_bufs > 64) {
                        die("bad num_buffers %u", nb);
                    }
                }
                vg_vq_put_chain(&vq->ring, id);
            }
            if (!vq->enabled
                && (uint16_t) (vq->ring.last_used - vq->disabled_at) <= 0x8000
                && vq->ring.last_used != vq->disabled_at) {
                f->bad++;
                fail("%s: frame delivered into disabled rxq %d", g->name, q);
            }
            vq->frames++;
            memcpy(frame, pkt + g->hdr_len, total - g->hdr_len);
            if (offload_test) {
                struct virtio_net_hdr hdr;

                memcpy(&hdr, pkt, sizeof hdr);
                check_offload_frame(f, q, &hdr, frame, total - g->hdr_len);
            } else {
                check_frame(f, q, frame, total - g->hdr_len);
            }
        }
        fill_rx(g, vq);
    }
}

static void
set_up(struct guest *g, const char *path)
{
    uint64_t features = 0;
    int error;
    int pairs_enabled = n_enable < 0 ? n_pairs : n_enable;

    vg_conn_init(&g->conn, g->name);
    g->conn.fail = conn_fail;
    g->conn.answer_ms = timeout_s * 1000;
    error = vg_conn_connect(&g->conn, path, timeout_s * 1000);
    if (error) {
        die("cannot connect to %s: %s", path, strerror(error));
    }
    guest_memory_init(g);

    /* Negotiation, as QEMU's vhost-user back-end init does it. */
    for (int rep = 0; rep < (legacy ? n_pairs : 1); rep++) {
        uint64_t protocol = (
            (1ull << VHOST_USER_PROTOCOL_F_MQ)
            | (1ull << VHOST_USER_PROTOCOL_F_NET_MTU)
            | (use_status ? 1ull << VHOST_USER_PROTOCOL_F_STATUS : 0)
            | (reply_ack ? 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK : 0)
            | (rarp_test ? 1ull << VHOST_USER_PROTOCOL_F_RARP : 0));
        unsigned int max;

        features = vg_conn_start(&g->conn, protocol, &max);
        if (max && n_pairs > (int) max && !ignore_queue_num) {
            if (expect_refused) {
                printf("ok: %s offers %u queue pairs, fewer than the %d "
                       "asked: refused as QEMU does\n", g->name, max,
                       n_pairs);
                exit(n_failures ? 1 : 0);
            }
            die("%s: you are asking more queues than supported (%d > %u)",
                g->name, n_pairs, max);
        }
        vg_conn_request(&g->conn, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
    }
    if (expect_refused && !ignore_queue_num) {
        fail("%s: switch accepted %d queue pairs", g->name, n_pairs);
    }

    g->features = features & ((1ull << VIRTIO_RING_F_EVENT_IDX)
                              | (1ull << VIRTIO_NET_F_MTU)
                              | (1ull << VIRTIO_NET_F_MQ)
                              | (1ull << VIRTIO_F_ANY_LAYOUT)
                              | (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
                              | (use_indirect
                                 ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0)
                              | (mrg ? (1ull << VIRTIO_NET_F_MRG_RXBUF)
                                       | (1ull << VIRTIO_F_VERSION_1) : 0));
    if (g->offloads & ~features) {
        die("%s: offloads 0x%"PRIx64" asked, not offered (features 0x%"
            PRIx64")", g->name, g->offloads, features);
    }
    g->features |= g->offloads;
    g->hdr_len = mrg ? 12 : 10;

    for (int rep = 0; rep < (legacy ? n_pairs : 1); rep++) {
        vg_conn_request_u64(&g->conn, VHOST_USER_SET_FEATURES, g->features);
        send_mem_table(g);
    }
    if (g->conn.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_NET_MTU)) {
        vg_conn_request_u64(&g->conn, VHOST_USER_NET_SET_MTU, 9000);
    }

    for (int i = 0; i < 2 * n_pairs; i++) {
        struct vq *vq = calloc(1, sizeof *vq);
        struct vhost_user_vring_addr addr;
        uint64_t u;

        vq_init(g, vq, i);
        g->vqs[i] = vq;
        vg_conn_request_state(&g->conn, VHOST_USER_SET_VRING_NUM, i,
                              ring_size);
        vg_conn_request_state(&g->conn, VHOST_USER_SET_VRING_BASE, i, 0);
        memset(&addr, 0, sizeof addr);
        addr.index = i;
        addr.desc_user_addr = (uintptr_t) vq->ring.desc;
        addr.avail_user_addr = (uintptr_t) vq->ring.avail;
        addr.used_user_addr = (uintptr_t) vq->ring.used;
        vg_conn_request(&g->conn, VHOST_USER_SET_VRING_ADDR, &addr,
                        sizeof addr, NULL, 0);
        u = i;
        vg_conn_request(&g->conn, VHOST_USER_SET_VRING_KICK, &u, 8,
                        &vq->kick_fd, 1);
        vg_conn_request(&g->conn, VHOST_USER_SET_VRING_CALL, &u, 8,
                        &vq->call_fd, 1);
        vq->unfilled = (vq->rx && g == unfilled_guest
                        && (unfilled_first > 0 || i / 2 != fill_only));
        if (vq->rx) {
            fill_rx(g, vq);
        }
    }
    for (int q = 0; q < n_pairs; q++) {
        bool on = q < pairs_enabled;

        vg_conn_request_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, 2 * q,
                              on);
        vg_conn_request_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, 2 * q + 1,
                              on);
        g->vqs[2 * q]->enabled = g->vqs[2 * q + 1]->enabled = on;
    }
    if (g->conn.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_STATUS)) {
        /* ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK. */
        vg_conn_request_u64(&g->conn, VHOST_USER_SET_STATUS, 0xf);
    }
    printf("ok: %s set up: %d queue pair(s), %d enabled, features 0x%"PRIx64
           ", protocol features 0x%"PRIx64"%s\n", g->name, n_pairs,
           pairs_enabled, g->features, g->conn.protocol_features,
           legacy ? ", device-wide messages per pair" : "");
}

static void
set_pair_enabled(struct guest *g, int q, bool on)
{
    vg_conn_request_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, 2 * q, on);
    vg_conn_request_state(&g->conn, VHOST_USER_SET_VRING_ENABLE, 2 * q + 1,
                          on);
    g->vqs[2 * q]->enabled = g->vqs[2 * q + 1]->enabled = on;
    /* With REPLY_ACK the switch has taken the change when it answered:
     * whatever its used index says now is all it may have delivered. */
    g->vqs[2 * q]->disabled_at = vg_vq_used_idx(&g->vqs[2 * q]->ring);
}

/* --offload-test. */


#define OL_SPORT 41000          /* Source port of good instance 0. */
#define OL_BAD_SPORT 42000      /* Source port of bad header kind 0. */
#define OL_DPORT 5201
#define OL_TCP_HDR 32           /* With a timestamp option, as Linux. */
#define OL_ROUNDS 3

static int port_mtu = 1500;
static int gso_mtu;             /* What A's segment sizes are for. */
static int seg_mtu;             /* What B's segments must be sized for. */
static bool gso_kept;
static bool bad_headers;

/* What A sends: one case per kind of frame a guest sends. */
struct ol_case {
    const char *name;
    int ipv;                    /* 4 or 6. */
    int proto;                  /* 6 (TCP) or 17 (UDP). */
    uint32_t payload;
    bool partial;               /* NEEDS_CSUM: pseudo-header sum only. */
    bool tso;                   /* HOST_TSO: one frame of many segments. */
    uint16_t hdr_len;           /* What the header says (a hint). */
};

static const struct ol_case ol_cases[] = {
    /* The longest frame a switch port takes (VIRTQ_MAX_PACKET). */
    { "tso4 64 KiB", 4, 6, 65535 - 14 - 20 - OL_TCP_HDR, true, true, 66 },
    { "tso6", 6, 6, 60000, true, true, 10 },    /* hdr_len lies. */
    { "tso4 of one segment", 4, 6, 1000, true, true, 66 },
    { "tcp4 partial checksum", 4, 6, 1400, true, false, 0 },
    { "udp6 partial checksum", 6, 17, 700, true, false, 0 },
    { "udp4 partial checksum", 4, 17, 1200, true, false, 0 },
    { "tcp4 full checksum", 4, 6, 500, false, false, 0 },
};
#define OL_N_CASES (sizeof ol_cases / sizeof ol_cases[0])
#define OL_INSTANCES (OL_N_CASES * OL_ROUNDS)

/* What B saw of each instance (case, round). */
struct ol_result {
    uint8_t *seen;              /* Per payload byte. */
    uint32_t bytes;             /* Payload bytes seen (once each). */
    uint32_t frames;
    uint32_t gso_frames;        /* Frames with a GSO type. */
    uint32_t partial_frames;    /* Frames with NEEDS_CSUM. */
    uint32_t valid_frames;      /* Frames with DATA_VALID. */
    bool failed;
};

static struct ol_result ol_results[OL_INSTANCES];
static uint32_t ol_bad_seen;    /* Bad-header frames that reached B. */

/* The instances B received, in order, while 'ol_order_on'. */
static bool ol_order_on;
static uint32_t ol_order[OL_INSTANCES];
static uint32_t ol_n_order;

/* The payload byte of sequence number (or UDP offset) 's'. */
static uint8_t
ol_byte(uint32_t s)
{
    return (s * 2654435761u) >> 24;
}

static uint32_t
ol_isn(int instance)
{
    return 0xfff00000u + instance * 0x20000u;   /* Wraps for some. */
}

/* Builds instance 'instance' of case 'c' (source port 'sport') from 'g'
 * into 'frame' with the header a guest gives it; returns its length. */
static uint32_t
ol_build(const struct guest *g, const struct ol_case *c, int instance,
         uint16_t sport, uint8_t *frame, struct virtio_net_hdr *hdr)
{
    uint32_t l3 = 14, l4, l4_len = c->proto == 6 ? OL_TCP_HDR : 8, end;
    struct vnet_layers layers;

    memcpy(frame, g->peer_mac, 6);
    memcpy(frame + 6, g->mac, 6);
    inet_put16(frame + 12, c->ipv == 4 ? 0x0800 : 0x86dd);
    if (c->ipv == 4) {
        l4 = l3 + 20;
        memset(frame + l3, 0, 20);
        frame[l3] = 0x45;
        inet_put16(frame + l3 + 2, 20 + l4_len + c->payload);
        inet_put16(frame + l3 + 4, instance * 100);
        inet_put16(frame + l3 + 6, 0x4000);
        frame[l3 + 8] = 64;
        frame[l3 + 9] = c->proto;
        inet_put32(frame + l3 + 12, 0x0a000001);
        inet_put32(frame + l3 + 16, 0x0a000002);
    } else {
        l4 = l3 + 40;
        memset(frame + l3, 0, 40);
        frame[l3] = 0x60;
        inet_put16(frame + l3 + 4, l4_len + c->payload);
        frame[l3 + 6] = c->proto;
        frame[l3 + 7] = 64;
        frame[l3 + 8] = 0xfd;
        frame[l3 + 23] = 1;
        frame[l3 + 24] = 0xfd;
        frame[l3 + 39] = 2;
    }
    memset(frame + l4, 0, l4_len);
    inet_put16(frame + l4, sport);
    inet_put16(frame + l4 + 2, OL_DPORT);
    if (c->proto == 6) {
        inet_put32(frame + l4 + 4, ol_isn(instance));
        inet_put32(frame + l4 + 8, 1);
        frame[l4 + 12] = (OL_TCP_HDR / 4) << 4;
        frame[l4 + 13] = 0x18;                  /* ACK, PSH. */
        inet_put16(frame + l4 + 14, 65535);
        /* NOP, NOP, timestamp. */
        frame[l4 + 20] = 1;
        frame[l4 + 21] = 1;
        frame[l4 + 22] = 8;
        frame[l4 + 23] = 10;
        inet_put32(frame + l4 + 24, 12345);
        for (uint32_t i = 0; i < c->payload; i++) {
            frame[l4 + l4_len + i] = ol_byte(ol_isn(instance) + i);
        }
    } else {
        inet_put16(frame + l4 + 4, 8 + c->payload);
        for (uint32_t i = 0; i < c->payload; i++) {
            frame[l4 + l4_len + i] = ol_byte(ol_isn(instance) + i);
        }
    }
    end = l4 + l4_len + c->payload;
    if (c->ipv == 4) {
        inet_put16(frame + l3 + 10,
                   ~inet_csum_fold(inet_csum_sum(0, frame + l3, 20)));
    }

    memset(hdr, 0, sizeof *hdr);
    if (!vnet_parse_layers(frame, end, &layers) || layers.l4_ofs != l4) {
        die("offload test: frame of case %s does not parse", c->name);
    }
    vnet_l4_csum_fill(frame, &layers, c->partial);
    if (c->partial) {
        hdr->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        hdr->csum_start = l4;
        hdr->csum_offset = c->proto == 6 ? 16 : 6;
    }
    if (c->tso) {
        hdr->gso_type = (c->ipv == 4 ? VIRTIO_NET_HDR_GSO_TCPV4
                         : VIRTIO_NET_HDR_GSO_TCPV6);
        hdr->gso_size = gso_mtu - (l4 - l3) - l4_len;
        hdr->hdr_len = c->hdr_len;
    }
    return end;
}

/* Puts 'frame' with 'hdr' on A's TX queue 0, in one descriptor. */
static void
ol_send(struct flow *f, const struct virtio_net_hdr *hdr,
        const uint8_t *frame, uint32_t len)
{
    struct guest *g = f->from;
    struct vq *vq = g->vqs[1];
    long long deadline = now_ms() + timeout_s * 1000LL;
    uint64_t gpa;
    uint32_t n;

    while (!vq->ring.n_free && now_ms() < deadline) {
        reclaim_tx(g);
        poll_rx(f);
        usleep(200);
    }
    gpa = vq_block(g, vq, vq->ring.free_head, MAX_RX_FRAME + 16, 16, true);
    guest_write(g, gpa, hdr, g->hdr_len);
    guest_write(g, gpa + g->hdr_len, frame, len);
    n = g->hdr_len + len;
    if (!vq_add(g, vq, &gpa, &n, 1, 0)) {
        die("offload test: A's TX ring is full");
    }
}

/* Checks a frame B received in the offload test. */
static void
check_offload_frame(struct flow *f, int q, const struct virtio_net_hdr *hdr,
                    const uint8_t *frame_, uint32_t len)
{
    uint64_t features = f->to->features;
    bool rx_csum = features & (1ull << VIRTIO_NET_F_GUEST_CSUM);
    static uint8_t frame[MAX_RX_FRAME];
    struct inet_csum_result r;
    struct ol_result *res;
    const struct ol_case *c;
    uint32_t instance, payload, seq_ofs;
    uint16_t sport;

    if (len >= 14 && frame_[12] == (ETHERTYPE_TEST >> 8)
        && frame_[13] == (ETHERTYPE_TEST & 0xff)) {
        check_frame(f, q, frame_, len);         /* Warm-up probes. */
        return;
    }
    memcpy(frame, frame_, len);
    r = inet_csum_check(frame, len);
    if (!r.ip || !r.l4_proto) {
        return;                 /* Not ours (the bridge's own traffic). */
    }
    sport = inet_csum_be16(frame + r.l4_ofs);
    if (sport >= OL_BAD_SPORT && sport < OL_BAD_SPORT + 100) {
        ol_bad_seen++;
        fail("B: a frame with a bad virtio-net header (kind %d) was "
             "forwarded", sport - OL_BAD_SPORT);
        return;
    }
    if (sport < OL_SPORT || sport >= OL_SPORT + OL_INSTANCES) {
        return;
    }
    instance = sport - OL_SPORT;
    c = &ol_cases[instance % OL_N_CASES];
    res = &ol_results[instance];
    res->frames++;
    if (ol_order_on && ol_n_order < OL_INSTANCES) {
        ol_order[ol_n_order++] = instance;
    }

#define OL_FAIL(...)                                    \
    do {                                                \
        res->failed = true;                             \
        fail("B: %s (instance %u): ", c->name, instance);   \
        printf("  " __VA_ARGS__);                       \
        printf("\n");                                   \
        return;                                         \
    } while (0)

    if (!r.ipv4_ok) {
        OL_FAIL("IPv4 header checksum wrong");
    }
    if (hdr->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM
                       | VIRTIO_NET_HDR_F_DATA_VALID)) {
        OL_FAIL("header flags 0x%x", hdr->flags);
    }
    if (hdr->flags && !rx_csum) {
        OL_FAIL("header flags 0x%x without GUEST_CSUM", hdr->flags);
    }
    if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        /* Complete it as a guest would, from csum_start on. */
        if (hdr->csum_start != r.l4_ofs
            || hdr->csum_offset != (r.l4_proto == 6 ? 16 : 6)) {
            OL_FAIL("NEEDS_CSUM at %u+%u, the L4 header is at %u",
                    hdr->csum_start, hdr->csum_offset, r.l4_ofs);
        }
        inet_csum_complete(frame, hdr->csum_start, hdr->csum_offset,
                           r.l4_end);
        r = inet_csum_check(frame, len);
        res->partial_frames++;
    }
    if (!r.l4_ok) {
        OL_FAIL("%s checksum wrong (%s)", r.l4_proto == 6 ? "TCP" : "UDP",
                hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM
                ? "partial, completed as a guest would" : "full");
    }
    if (hdr->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
        res->valid_frames++;
    }
    if (hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        uint32_t mss = seg_mtu - (r.l4_ofs - r.l3_ofs)
                       - (r.payload_ofs - r.l4_ofs);
        int need = (hdr->gso_type == VIRTIO_NET_HDR_GSO_TCPV4
                    ? VIRTIO_NET_F_GUEST_TSO4 : VIRTIO_NET_F_GUEST_TSO6);

        if ((hdr->gso_type != VIRTIO_NET_HDR_GSO_TCPV4
             && hdr->gso_type != VIRTIO_NET_HDR_GSO_TCPV6)
            || !(features & (1ull << need))
            || (hdr->gso_type == VIRTIO_NET_HDR_GSO_TCPV4)
               != (r.ip_version == 4)
            || r.l4_proto != 6) {
            OL_FAIL("gso_type %u on a %s frame (features 0x%"PRIx64")",
                    hdr->gso_type, r.ip_version == 4 ? "IPv4" : "IPv6",
                    features);
        }
        if (!(hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            || hdr->gso_size != mss || hdr->hdr_len != r.payload_ofs) {
            OL_FAIL("GSO header flags 0x%x gso_size %u hdr_len %u, expected"
                    " NEEDS_CSUM, %u, %u", hdr->flags, hdr->gso_size,
                    hdr->hdr_len, mss, r.payload_ofs);
        }
        res->gso_frames++;
    } else if (r.l4_end - r.l3_ofs > (uint32_t) port_mtu) {
        OL_FAIL("a frame of %u IP bytes, over the MTU %d, without GSO",
                r.l4_end - r.l3_ofs, port_mtu);
    }

    /* The payload: where it belongs, right, and seen once. */
    payload = r.l4_end - r.payload_ofs;
    seq_ofs = (r.l4_proto == 6
               ? inet_get32(frame + r.l4_ofs + 4) - ol_isn(instance)
               : 0);
    if ((uint64_t) seq_ofs + payload > c->payload) {
        OL_FAIL("payload %u bytes at offset %u: beyond the %u sent",
                payload, seq_ofs, c->payload);
    }
    for (uint32_t i = 0; i < payload; i++) {
        if (frame[r.payload_ofs + i] != ol_byte(ol_isn(instance) + seq_ofs
                                                + i)) {
            OL_FAIL("payload byte %u differs", seq_ofs + i);
        }
        if (res->seen[seq_ofs + i]++) {
            OL_FAIL("payload byte %u received twice", seq_ofs + i);
        }
    }
    res->bytes += payload;
#undef OL_FAIL
}

/* The frames of bad headers A sends with --bad-headers, one per kind. */
static int
ol_bad_frame(const struct guest *g, int kind, uint8_t *frame,
             struct virtio_net_hdr *hdr, uint32_t *len)
{
    static const struct ol_case tcp4 = { "bad", 4, 6, 3000, true, true, 66 };
    static const struct ol_case udp4 = { "bad", 4, 17, 3000, true, false,
                                         0 };
    uint16_t sport = OL_BAD_SPORT + kind;

    switch (kind) {
    case 0:     /* TCPV4 on a UDP frame. */
        *len = ol_build(g, &udp4, 0, sport, frame, hdr);
        hdr->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
        hdr->gso_size = 1448;
        return 1;
    case 1:     /* csum_start beyond the frame. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr);
        hdr->gso_type = 0;
        hdr->csum_start = *len;
        return 1;
    case 2:     /* gso_size 0. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr);
        hdr->gso_size = 0;
        return 1;
    case 3:     /* TCPV6 on IPv4. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr);
        hdr->gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
        return 1;
    case 4:     /* GSO without NEEDS_CSUM. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr);
        hdr->flags = 0;
        return 1;
    case 5:     /* UDP fragmentation offload: never offered. */
        *len = ol_build(g, &udp4, 0, sport, frame, hdr);
        hdr->gso_type = VIRTIO_NET_HDR_GSO_UDP;
        hdr->gso_size = 1000;
        return 1;
    case 6:     /* DATA_VALID, which only a device may set. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr);
        hdr->flags |= VIRTIO_NET_HDR_F_DATA_VALID;
        return 1;
    case 7:     /* A frame shorter than its IP header says. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr) - 100;
        return 1;
    case 8:     /* csum_offset past the L4 header's checksum. */
        *len = ol_build(g, &tcp4, 0, sport, frame, hdr);
        hdr->csum_offset = 18;
        return 1;
    }
    return 0;
}

/* --bad-headers, last: one burst, made available to the switch at once,
 * in which a good frame comes before and after each of the 'n_bad' bad
 * ones (the switch drops those from the middle of the burst it took): every
 * good frame must arrive, once, whole and in order. */
static void
run_mixed_burst(struct flow *f, int n_bad)
{
    struct vq *vq = f->from->vqs[1];
    long long deadline = now_ms() + timeout_s * 1000LL;
    static uint8_t frame[MAX_RX_FRAME];
    uint32_t good[OL_INSTANCES];
    struct virtio_net_hdr hdr;
    uint32_t n_good = 0, len;
    bool ok = true;

    /* Instances of the cases of one plain frame (no TSO), results reset. */
    for (uint32_t i = 0; i < OL_INSTANCES && n_good < (uint32_t) n_bad + 1;
         i++) {
        struct ol_result *res = &ol_results[i];

        if (ol_cases[i % OL_N_CASES].tso) {
            continue;
        }
        memset(res->seen, 0, 65536);
        res->bytes = res->frames = res->gso_frames = 0;
        res->partial_frames = res->valid_frames = 0;
        res->failed = false;
        good[n_good++] = i;
    }
    if (n_good != (uint32_t) n_bad + 1) {
        fail("mixed burst: %u good instances for %d bad frames", n_good,
             n_bad);
        return;
    }
    while (vq->ring.n_free < 2 * n_bad + 1 && now_ms() < deadline) {
        reclaim_tx(f->from);
        poll_rx(f);
        usleep(200);
    }
    ol_bad_seen = 0;
    ol_n_order = 0;
    ol_order_on = true;
    vq->ring.hold = true;
    for (int j = 0; j <= n_bad; j++) {
        uint32_t i = good[j];

        len = ol_build(f->from, &ol_cases[i % OL_N_CASES], i, OL_SPORT + i,
                       frame, &hdr);
        ol_send(f, &hdr, frame, len);
        if (j < n_bad) {
            ol_bad_frame(f->from, j, frame, &hdr, &len);
            ol_send(f, &hdr, frame, len);
        }
    }
    vq->ring.hold = false;
    vg_vq_publish(&vq->ring);
    while (ol_n_order < n_good && !ol_bad_seen && now_ms() < deadline) {
        poll_rx(f);
        reclaim_tx(f->from);
        usleep(200);
    }
    /* (Anything late or doubled would show by now.) */
    for (long long end = now_ms() + 100; now_ms() < end; usleep(200)) {
        poll_rx(f);
        reclaim_tx(f->from);
    }
    ol_order_on = false;
    for (uint32_t j = 0; j < n_good; j++) {
        const struct ol_result *res = &ol_results[good[j]];
        const struct ol_case *c = &ol_cases[good[j] % OL_N_CASES];

        if (res->failed || res->frames != 1 || res->bytes != c->payload) {
            ok = false;
            fail("mixed burst: %s (instance %u): %u frame(s), %u of %u "
                 "payload bytes", c->name, good[j], res->frames, res->bytes,
                 c->payload);
        }
    }
    /* In the order sent, within each flow: OVS's datapath sends a burst's
     * frames flow by flow (here IPv4 and IPv6 match two datapath flows). */
    bool in_order = ol_n_order == n_good;
    for (int ipv = 4; in_order && ipv <= 6; ipv += 2) {
        uint32_t a = 0, b = 0;

        for (;;) {
            while (a < n_good && ol_cases[good[a] % OL_N_CASES].ipv != ipv) {
                a++;
            }
            while (b < ol_n_order
                   && ol_cases[ol_order[b] % OL_N_CASES].ipv != ipv) {
                b++;
            }
            if (a == n_good || b == ol_n_order) {
                in_order = a == n_good && b == ol_n_order;
                break;
            } else if (good[a++] != ol_order[b++]) {
                in_order = false;
                break;
            }
        }
    }
    if (!in_order) {
        ok = false;
        fail("mixed burst: B got %u good frame(s), %s:", ol_n_order,
             ol_n_order == n_good ? "out of order" : "not one each");
        for (uint32_t j = 0; j < ol_n_order; j++) {
            printf(" %u", ol_order[j]);
        }
        printf("\n");
    }
    if (ok && !ol_bad_seen) {
        printf("ok: one burst of %u good frames, each before or after one "
               "of %d with bad headers: the good ones forwarded once, in "
               "order within each flow\n", n_good, n_bad);
    }
}

static void
run_offload_test(struct flow *f)
{
    static uint8_t frame[MAX_RX_FRAME];
    struct virtio_net_hdr hdr;
    uint32_t len;

    for (uint32_t i = 0; i < OL_INSTANCES; i++) {
        ol_results[i].seen = calloc(65536, 1);
    }
    for (uint32_t i = 0; i < OL_INSTANCES; i++) {
        const struct ol_case *c = &ol_cases[i % OL_N_CASES];
        struct ol_result *res = &ol_results[i];
        long long deadline = now_ms() + timeout_s * 1000LL;

        len = ol_build(f->from, c, i, OL_SPORT + i, frame, &hdr);
        ol_send(f, &hdr, frame, len);
        while (res->bytes < c->payload && !res->failed
               && now_ms() < deadline) {
            poll_rx(f);
            reclaim_tx(f->from);
            usleep(200);
        }
        if (res->bytes != c->payload && !res->failed) {
            res->failed = true;
            fail("B: %s (instance %u): %u of %u payload bytes arrived",
                 c->name, i, res->bytes, c->payload);
        }
    }

    /* What each case became, by what B negotiated. */
    uint64_t features = f->to->features;
    bool rx_csum = features & (1ull << VIRTIO_NET_F_GUEST_CSUM);
    for (uint32_t k = 0; k < OL_N_CASES; k++) {
        const struct ol_case *c = &ol_cases[k];
        uint32_t mss = seg_mtu - (c->ipv == 4 ? 20 : 40)
                       - (c->proto == 6 ? OL_TCP_HDR : 8);
        bool rx_tso = features & (1ull << (c->ipv == 4
                                           ? VIRTIO_NET_F_GUEST_TSO4
                                           : VIRTIO_NET_F_GUEST_TSO6));
        bool whole = !c->tso || c->payload <= mss || (rx_tso && rx_csum);
        uint32_t want_frames = whole ? 1 : (c->payload + mss - 1) / mss;
        bool ok = true;

        for (uint32_t round = 0; round < OL_ROUNDS; round++) {
            struct ol_result *res = &ol_results[k + round * OL_N_CASES];
            bool want_partial = c->partial && rx_csum;
            bool want_gso = c->tso && c->payload > mss && rx_tso && rx_csum;

            if (res->failed) {
                ok = false;
                continue;
            }
            if (res->frames != want_frames
                || res->gso_frames != (want_gso ? 1 : 0)
                || res->partial_frames != (want_partial && whole ? 1 : 0)
                || res->valid_frames != (!whole && rx_csum
                                         ? want_frames : 0)) {
                ok = false;
                fail("B: %s: %u frame(s), %u with GSO, %u with NEEDS_CSUM, "
                     "%u with DATA_VALID; expected %u, %u, %u, %u", c->name,
                     res->frames, res->gso_frames, res->partial_frames,
                     res->valid_frames, want_frames, want_gso ? 1 : 0,
                     want_partial && whole ? 1 : 0,
                     !whole && rx_csum ? want_frames : 0);
            }
        }
        if (ok) {
            printf("ok: %s x%d: %u payload bytes each, arrived as %u "
                   "frame(s)%s%s, checksums right\n", c->name, OL_ROUNDS,
                   c->payload, want_frames,
                   whole && c->tso && c->payload > mss
                   ? " with GSO" : !whole ? " (segmented)" : "",
                   c->partial && rx_csum && whole
                   ? ", partial checksum" : "");
        }
    }

    if (bad_headers) {
        int n = 0;

        for (int kind = 0; ol_bad_frame(f->from, kind, frame, &hdr, &len);
             kind++) {
            ol_send(f, &hdr, frame, len);
            n++;
        }
        /* Then a good frame: once it is in, so would the bad ones be. */
        struct ol_result *res = &ol_results[OL_N_CASES - 1];
        const struct ol_case *c = &ol_cases[OL_N_CASES - 1];
        long long deadline = now_ms() + timeout_s * 1000LL;

        memset(res->seen, 0, 65536);
        res->bytes = res->frames = 0;
        len = ol_build(f->from, c, OL_N_CASES - 1, OL_SPORT + OL_N_CASES - 1,
                       frame, &hdr);
        ol_send(f, &hdr, frame, len);
        while (res->bytes < c->payload && now_ms() < deadline) {
            poll_rx(f);
            reclaim_tx(f->from);
            usleep(200);
        }
        if (res->bytes != c->payload) {
            fail("B: the good frame after the bad ones did not arrive");
        } else if (!ol_bad_seen) {
            printf("ok: %d frames with bad virtio-net headers: none "
                   "forwarded\n", n);
        }
        run_mixed_burst(f, n);
    }
}

/* --rarp: with every TX ring of 'f->from' empty (the switch has taken all
 * it was given), 'f->from' asks the switch to announce its MAC; the
 * announcement comes on the port's first queue, which a poll that finds
 * the guest's ring empty must not skip.  'f->to' must get it once. */
static void
run_rarp_test(struct flow *f)
{
    struct guest *g = f->from;
    long long deadline = now_ms() + timeout_s * 1000LL;
    bool empty = false;
    uint64_t payload = 0;

    if (!(g->conn.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_RARP))) {
        fail("%s: the switch did not offer the RARP protocol feature",
             g->name);
        return;
    }
    while (!empty && now_ms() < deadline) {
        reclaim_tx(g);
        empty = true;
        for (int q = 0; q < n_pairs; q++) {
            struct vq *vq = g->vqs[2 * q + 1];

            if (vq->ring.last_used != vq->ring.avail_idx) {
                empty = false;
            }
        }
        poll_rx(f);
        usleep(1000);
    }
    if (!empty) {
        fail("%s: the switch did not empty its TX rings", g->name);
        return;
    }

    uint64_t before = f->rarps_seen;
    memcpy(&payload, g->mac, 6);
    vg_conn_request(&g->conn, VHOST_USER_SEND_RARP, &payload, sizeof payload,
                    NULL, 0);
    deadline = now_ms() + timeout_s * 1000LL;
    while (f->rarps_seen == before && now_ms() < deadline) {
        poll_rx(f);
        usleep(500);
    }
    /* Time for a second announcement, which there must not be. */
    for (int i = 0; i < 200; i++) {
        poll_rx(f);
        usleep(1000);
    }
    if (f->rarps_seen - before != 1) {
        fail("%s: %"PRIu64" RARP announcement(s) of %s's MAC arrived, "
             "expected 1", f->to->name, f->rarps_seen - before, g->name);
        return;
    }
    printf("ok: %s: %s's RARP announcement arrived, sent while %s's TX "
           "rings were empty\n", f->to->name, g->name, g->name);
    fflush(stdout);
}

/* Called once half of a round's frames are sent. */
typedef void round_hook(void);

/* Sends 'count' frames of every size on every enabled TX queue of
 * 'f->from' and waits until all arrived at 'f->to'. */
static void
run_round(struct flow *f, const char *label, round_hook *hook)
{
    long long deadline = now_ms() + timeout_s * 1000LL;
    uint64_t start_received = f->received;
    uint64_t start_expected = f->expected;
    uint64_t start_rxq[MAX_PAIRS];
    uint64_t start_txq[MAX_PAIRS];
    int q = 0, s = 0, c = 0;
    bool all_sent = false;

    for (int i = 0; i < n_pairs; i++) {
        start_rxq[i] = f->per_rxq[i];
        start_txq[i] = f->from->vqs[2 * i + 1]->frames;
    }
    while (now_ms() < deadline) {
        /* Send what fits, round robin over the enabled queues. */
        for (int burst = 0; !all_sent && burst < 64; burst++) {
            if (f->expected - f->received >= (uint64_t) window) {
                /* As a guest's stack would, do not run far ahead of the
                 * receiver: its RX ring is all the buffering there is. */
                break;
            }
            if (f->from->vqs[2 * q + 1]->enabled) {
                if (!send_frame(f, q, sizes[s])) {
                    break;
                }
            }
            q = (q + 1) % n_pairs;
            if (q == 0 && ++c == count) {
                c = 0;
                if (hook && s == n_sizes / 2) {
                    hook();
                    hook = NULL;
                }
                if (++s == n_sizes) {
                    all_sent = true;
                }
            }
        }
        poll_rx(f);
        reclaim_tx(f->from);
        if (all_sent && f->received == f->expected) {
            break;
        }
        usleep(200);
    }

    printf("%s: %s: %s -> %s: %"PRIu64" of %"PRIu64" frames received "
           "intact\n",
           f->received - start_received == f->expected - start_expected
           ? "ok" : "FAIL", label, f->from->name, f->to->name,
           f->received - start_received, f->expected - start_expected);
    if (f->received - start_received != f->expected - start_expected) {
        n_failures++;
    }
    for (int i = 0; i < n_pairs; i++) {
        printf("  %s: %s txq %d sent %"PRIu64", %s rxq %d got %"PRIu64"\n",
               label, f->from->name, i,
               f->from->vqs[2 * i + 1]->frames - start_txq[i], f->to->name,
               i, f->per_rxq[i] - start_rxq[i]);
    }
    fflush(stdout);
}

/* A guest that transmits on a disabled queue anyway: the switch consumes
 * and drops those frames (the ring stays usable), and forwards none. */
static void
check_disabled_tx_discarded(struct flow *f, int q)
{
    struct vq *vq = f->from->vqs[2 * q + 1];
    long long deadline = now_ms() + timeout_s * 1000LL;
    int n = 0;

    for (int i = 0; i < 16; i++) {
        n += send_frame__(f, q, 100, DISCARD_MAGIC);
    }
    while (now_ms() < deadline
           && vg_vq_used_idx(&vq->ring) != vq->ring.avail_idx) {
        poll_rx(f);
        usleep(1000);
    }
    reclaim_tx(f->from);
    /* Give a wrongly forwarded frame time to show up. */
    for (int i = 0; i < 300; i++) {
        poll_rx(f);
        usleep(1000);
    }
    if (vq->ring.used->idx != vq->ring.avail_idx) {
        fail("%s: frames on disabled txq %d were not consumed",
             f->from->name, q);
    } else if (!f->discards_seen) {
        printf("ok: %d frames sent on disabled %s txq %d were consumed and "
               "dropped\n", n, f->from->name, q);
    }
}

/* --churn: 'f->to' enables and disables its queue pairs, a random
 * non-empty set each time, for 'ms' milliseconds while 'f->from' keeps
 * its window of frames in flight on all its queues, so that the switch's
 * threads send into the rings while it moves them from one guest queue to
 * another.  Then every pair is enabled again and every frame must arrive
 * intact; poll_rx() checks every used entry meanwhile. */
static void
run_churn(struct flow *f, int ms)
{
    struct guest *g = f->to;
    uint32_t all = (1u << n_pairs) - 1, mask = all;
    uint64_t start_received = f->received;
    uint64_t start_expected = f->expected;
    long long deadline = now_ms() + ms;
    unsigned int seed = 12345;
    int q = 0, s = 0, changes = 0;

    while (now_ms() < deadline && f->next_seq < f->max_seq - 1) {
        uint32_t next;

        /* Fill the window: the PMDs then have frames to send to 'g' while
         * its queues change. */
        while (f->expected - f->received < (uint64_t) window
               && f->next_seq < f->max_seq - 1) {
            if (!send_frame(f, q, sizes[s])) {
                break;
            }
            q = (q + 1) % n_pairs;
            s = (s + 1) % n_sizes;
        }
        poll_rx(f);
        reclaim_tx(f->from);

        do {
            next = rand_r(&seed) & all;
        } while (!next || next == mask);
        /* Enable first, then disable, as a driver changing its queue
         * count keeps at least one pair on. */
        for (int i = 0; i < n_pairs; i++) {
            if (next & ~mask & (1u << i)) {
                set_pair_enabled(g, i, true);
            }
        }
        for (int i = 0; i < n_pairs; i++) {
            if (mask & ~next & (1u << i)) {
                set_pair_enabled(g, i, false);
                poll_rx(f);
            }
        }
        mask = next;
        changes++;
    }
    for (int i = 0; i < n_pairs; i++) {
        if (!(mask & (1u << i))) {
            set_pair_enabled(g, i, true);
        }
    }

    deadline = now_ms() + timeout_s * 1000LL;
    while (f->received != f->expected && now_ms() < deadline) {
        poll_rx(f);
        reclaim_tx(f->from);
        usleep(200);
    }
    printf("%s: churn: %s changed its enabled queue pairs %d times in %d "
           "ms; %s -> %s: %"PRIu64" of %"PRIu64" frames received intact\n",
           f->received == f->expected ? "ok" : "FAIL", g->name, changes, ms,
           f->from->name, g->name, f->received - start_received,
           f->expected - start_expected);
    if (f->received != f->expected) {
        n_failures++;
    }
    for (int i = 0; i < n_pairs; i++) {
        printf("  churn: %s rxq %d got %"PRIu64" in all\n", g->name, i,
               f->per_rxq[i]);
    }
    fflush(stdout);
}

static struct guest *toggle_guest;

static void
disable_toggle_pair(void)
{
    set_pair_enabled(toggle_guest, toggle_q, false);
    printf("ok: %s: queue pair %d disabled while traffic runs\n",
           toggle_guest->name, toggle_q);
}

static void
parse_mac(const char *s, uint8_t *mac)
{
    unsigned int b[6];

    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4],
               &b[5]) != 6) {
        die("bad MAC %s", s);
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = b[i];
    }
}

/* --offloads-a/-b LIST: the features each name stands for. */
static uint64_t
parse_offloads(const char *list_)
{
    char *save, *tok, *list = strdup(list_);
    uint64_t features = 0;

    for (tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "csum")) {
            features |= 1ull << VIRTIO_NET_F_CSUM;
        } else if (!strcmp(tok, "tso")) {
            features |= ((1ull << VIRTIO_NET_F_CSUM)
                         | (1ull << VIRTIO_NET_F_HOST_TSO4)
                         | (1ull << VIRTIO_NET_F_HOST_TSO6));
        } else if (!strcmp(tok, "rx-csum")) {
            features |= 1ull << VIRTIO_NET_F_GUEST_CSUM;
        } else if (!strcmp(tok, "rx-tso")) {
            features |= ((1ull << VIRTIO_NET_F_GUEST_CSUM)
                         | (1ull << VIRTIO_NET_F_GUEST_TSO4)
                         | (1ull << VIRTIO_NET_F_GUEST_TSO6));
        } else if (strcmp(tok, "none")) {
            die("unknown offload %s", tok);
        }
    }
    free(list);
    return features;
}

int
main(int argc, char *argv[])
{
    static const struct option options[] = {
        { "pairs", required_argument, NULL, 'p' },
        { "enable", required_argument, NULL, 'e' },
        { "sizes", required_argument, NULL, 's' },
        { "count", required_argument, NULL, 'c' },
        { "ring", required_argument, NULL, 'r' },
        { "no-mrg", no_argument, NULL, 'M' },
        { "indirect", no_argument, NULL, 'I' },
        { "chain", required_argument, NULL, 'C' },
        { "regions", required_argument, NULL, 'R' },
        { "legacy", no_argument, NULL, 'L' },
        { "no-reply-ack", no_argument, NULL, 'A' },
        { "one-way", no_argument, NULL, 'O' },
        { "toggle", required_argument, NULL, 'T' },
        { "mac-a", required_argument, NULL, 'a' },
        { "mac-b", required_argument, NULL, 'b' },
        { "expect-refused", no_argument, NULL, 'X' },
        { "timeout", required_argument, NULL, 't' },
        { "hold", required_argument, NULL, 'H' },
        { "churn", required_argument, NULL, 'K' },
        { "fill-only", required_argument, NULL, 'F' },
        { "unfilled-first", required_argument, NULL, 'U' },
        { "unfilled-wait", required_argument, NULL, 'W' },
        { "ignore-queue-num", no_argument, NULL, 'G' },
        { "no-status", no_argument, NULL, 'S' },
        { "offloads-a", required_argument, NULL, 'o' },
        { "offloads-b", required_argument, NULL, 'P' },
        { "offload-test", no_argument, NULL, 'Z' },
        { "port-mtu", required_argument, NULL, 'm' },
        { "gso-mtu", required_argument, NULL, 'g' },
        { "gso-kept", no_argument, NULL, 'k' },
        { "bad-headers", no_argument, NULL, 'B' },
        { "rarp", no_argument, NULL, 'N' },
        { "switch-ports", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    struct guest a = { .name = "A" }, b = { .name = "B" };
    struct flow ab, ba;
    int opt;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': n_pairs = atoi(optarg); break;
        case 'e': n_enable = atoi(optarg); break;
        case 's': {
            char *save, *tok, *list = strdup(optarg);

            n_sizes = 0;
            for (tok = strtok_r(list, ",", &save); tok && n_sizes < 32;
                 tok = strtok_r(NULL, ",", &save)) {
                sizes[n_sizes++] = atoi(tok);
            }
            free(list);
            break;
        }
        case 'c': count = atoi(optarg); break;
        case 'r': ring_size = atoi(optarg); break;
        case 'M': mrg = false; break;
        case 'I': use_indirect = true; break;
        case 'C': chain_len = atoi(optarg); break;
        case 'R': n_regions = atoi(optarg); break;
        case 'L': legacy = true; break;
        case 'A': reply_ack = false; break;
        case 'O': one_way = true; break;
        case 'T': toggle_q = atoi(optarg); break;
        case 'a': parse_mac(optarg, mac_a); break;
        case 'b': parse_mac(optarg, mac_b); break;
        case 'X': expect_refused = true; break;
        case 't': timeout_s = atoi(optarg); break;
        case 'H': hold_ms = atoi(optarg); break;
        case 'K': churn_ms = atoi(optarg); break;
        case 'F': fill_only = atoi(optarg); break;
        case 'U': unfilled_first = atoi(optarg); break;
        case 'W': unfilled_wait = optarg; break;
        case 'G': ignore_queue_num = true; break;
        case 'S': use_status = false; break;
        case 'o': a.offloads = parse_offloads(optarg); break;
        case 'P': b.offloads = parse_offloads(optarg); break;
        case 'Z': offload_test = true; one_way = true; break;
        case 'm': port_mtu = atoi(optarg); break;
        case 'g': gso_mtu = atoi(optarg); break;
        case 'k': gso_kept = true; break;
        case 'B': bad_headers = true; break;
        case 'N': rarp_test = true; break;
        case 'w': switch_ports = optarg; break;
        default: die("bad option (see the comment at the top of the file)");
        }
    }
    if (!gso_mtu || gso_mtu > port_mtu) {
        gso_mtu = port_mtu;
    }
    seg_mtu = gso_kept ? gso_mtu : port_mtu;
    if (hold_ms) {
        /* Ends a hold early; anywhere else it is ignored. */
        struct sigaction sa = { .sa_handler = hold_ended,
                                .sa_flags = SA_RESTART };

        sigaction(SIGUSR1, &sa, NULL);
    }
    if (argc - optind != 2 && !(expect_refused && argc - optind == 1)) {
        die("usage: vhost-frontend [OPTION]... SOCKET_A SOCKET_B");
    }
    if (n_pairs < 1 || n_pairs > MAX_PAIRS || n_regions < 1
        || n_regions > MAX_REGIONS || ring_size < 2 || ring_size > 4096
        || ring_size & (ring_size - 1) || count < 1) {
        die("bad pairs, regions, ring or count");
    }
    for (int i = 0; i < n_sizes; i++) {
        if (sizes[i] < 26 || sizes[i] > MAX_FRAME) {
            die("frame sizes go from 26 to %d", MAX_FRAME);
        }
        if (sizes[i] > max_size) {
            max_size = sizes[i];
        }
    }
    /* Half the RX ring's worth of the largest frame. */
    window = ring_size / 2 / (mrg ? (max_size + 12) / RX_BUF_MRG + 1 : 1);
    if (window < 1) {
        window = 1;
    }

    a.mac = mac_a;
    a.peer_mac = mac_b;
    b.mac = mac_b;
    b.peer_mac = mac_a;
    set_up(&a, argv[optind]);
    if (expect_refused) {
        return n_failures ? 1 : 0;
    }
    if (fill_only >= 0) {
        if (fill_only >= n_pairs) {
            die("--fill-only %d: there are %d queue pairs", fill_only,
                n_pairs);
        }
        unfilled_guest = &b;
    }
    if (unfilled_first > 0) {
        if (fill_only >= 0) {
            die("--unfilled-first and --fill-only do not go together");
        }
        unfilled_guest = &b;
    }
    set_up(&b, argv[optind + 1]);
    if (switch_ports) {
        wait_for_switch_ports();
    }

    memset(&ab, 0, sizeof ab);
    memset(&ba, 0, sizeof ba);
    ab.from = &a;
    ab.to = &b;
    ba.from = &b;
    ba.to = &a;
    ab.max_seq = ba.max_seq = 1 << 22;
    ab.seen = calloc(ab.max_seq, 1);
    ba.seen = calloc(ba.max_seq, 1);

    if (unfilled_first > 0) {
        send_unfilled_first(&ab);
    }
    warm_up(&ab);
    if (!one_way) {
        warm_up(&ba);
    }
    if (rarp_test) {
        run_rarp_test(&ab);
    }
    if (offload_test) {
        run_offload_test(&ab);
        if (hold_ms) {
            /* For the test to look at the ports while connected: it says
             * when it is done with SIGUSR1, so a slow machine does not
             * make the hold too short. */
            long long until = now_ms() + hold_ms;

            printf("holding for %d ms\n", hold_ms);
            fflush(stdout);
            /* Polled, not waited for in pselect(): ThreadSanitizer's
             * runtime delivers a signal only at its next interceptor. */
            while (!hold_end && now_ms() < until) {
                usleep(10000);
            }
            if (hold_end) {
                printf("hold ended by SIGUSR1\n");
            }
        }
        printf("%s: %d check(s) failed\n", n_failures ? "FAIL" : "ok",
               n_failures);
        return n_failures ? 1 : 0;
    }
    run_round(&ab, "round 1", NULL);
    if (!one_way) {
        run_round(&ba, "round 1", NULL);
    }

    if (fill_only >= 0) {
        /* Everything went into the one ring B filled (poll_rx fails a
         * frame that lands in a ring without buffers: there is none). */
        for (int q = 0; q < n_pairs; q++) {
            if (q != fill_only && ab.per_rxq[q]) {
                fail("B: %"PRIu64" frames in unfilled rxq %d",
                     ab.per_rxq[q], q);
            }
        }
        for (int q = 0; q < n_pairs; q++) {
            b.vqs[2 * q]->unfilled = false;
            fill_rx(&b, b.vqs[2 * q]);
        }
        printf("ok: B: every RX ring filled\n");
        run_round(&ab, "all filled", NULL);
    }

    if (toggle_q >= 0 && toggle_q < n_pairs) {
        /* B turns pair 'toggle_q' off while A sends to it: the switch must
         * move A's traffic to B's other queues and put nothing into the
         * disabled one (poll_rx fails any frame that lands there). */
        toggle_guest = &b;
        run_round(&ab, "disabling", disable_toggle_pair);
        set_pair_enabled(&a, toggle_q, false);
        printf("ok: A: queue pair %d disabled\n", toggle_q);
        if (!one_way) {
            run_round(&ba, "disabled", NULL);
        }
        check_disabled_tx_discarded(&ab, toggle_q);
        if (hold_ms) {
            long long until = now_ms() + hold_ms;

            printf("holding with queue pair %d disabled for %d ms\n",
                   toggle_q, hold_ms);
            fflush(stdout);
            while (!hold_end && now_ms() < until) {
                poll_rx(&ab);
                poll_rx(&ba);
                usleep(1000);
            }
            if (hold_end) {
                printf("hold ended by SIGUSR1\n");
            }
        }
        set_pair_enabled(&b, toggle_q, true);
        set_pair_enabled(&a, toggle_q, true);
        printf("ok: queue pair %d enabled again on both ports\n", toggle_q);
        run_round(&ab, "re-enabled", NULL);
        if (!one_way) {
            run_round(&ba, "re-enabled", NULL);
        }
    }

    if (churn_ms > 0) {
        run_churn(&ab, churn_ms);
        run_round(&ab, "after churn", NULL);
        if (!one_way) {
            run_round(&ba, "after churn", NULL);
        }
    }

    printf("%s: %d check(s) failed\n", n_failures ? "FAIL" : "ok",
           n_failures);
    vg_conn_close(&a.conn);
    vg_conn_close(&b.conn);
    return n_failures ? 1 : 0;
}
