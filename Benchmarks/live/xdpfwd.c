/* The live benchmark's baseline: a minimal C AF_XDP forwarder (libxdp), the I/O ceiling MPLSGate is measured
 * against on the same namespaces and CPU.
 *
 *   xdpfwd IN_IF OUT_IF STRIP PREPEND_HEX
 *
 * Every frame received on IN_IF loses its first STRIP bytes, gets PREPEND_HEX in front and is sent on OUT_IF: the
 * rewrite MPLSGate makes for the benchmark's one input frame (the runner derives STRIP and PREPEND from
 * `mplsgate replay`), without parsing, lookups, checks or counters. The same structure as MPLSGate's worker: one
 * UMEM shared by both sockets (frames forwarded by address, no copy), copy-mode bind, need_wakeup, batches of 64,
 * busy polling (`--wait busy`). SIGINT/SIGTERM print "forwarded N" and exit.
 *
 * Like the agent, it loads its own XDP program with libbpf (a five-instruction redirect into an XSKMAP, detached at
 * exit) instead of letting libxdp load its default one: libxdp's needs a bpffs for its dispatcher and, without
 * one, falls back to a program that passed every frame to the stack on a fresh machine (docs/agent.md,
 * "Environment"). Errors name the limit that caused them (memlock, capabilities). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <sys/resource.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <xdp/xsk.h>

#define FRAMES 4096
#define FRAME_SIZE 4096
#define RING 2048
#define BATCH 64

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int attached_ifindex;

static void die(const char *what, int err)
{
    fprintf(stderr, "xdpfwd: %s: %s\n", what, strerror(err < 0 ? -err : err));
    if (attached_ifindex) bpf_xdp_detach(attached_ifindex, XDP_FLAGS_DRV_MODE, NULL);
    exit(1);
}

/* A failed UMEM registration or BPF load: say which limit is the likely cause. */
static void die_privileged(const char *what, int err, unsigned long long bytes)
{
    err = err < 0 ? -err : err;
    struct rlimit r = { 0 };
    getrlimit(RLIMIT_MEMLOCK, &r);
    if (err == ENOBUFS || err == ENOMEM)
        fprintf(stderr, "xdpfwd: %s: %s: %llu KiB must be locked but the memlock limit (RLIMIT_MEMLOCK) is %s%llu KiB "
                "and CAP_IPC_LOCK is missing; raise it (ulimit -l, prlimit --memlock) or run with CAP_IPC_LOCK\n",
                what, strerror(err), bytes / 1024, r.rlim_cur == RLIM_INFINITY ? "unlimited, " : "",
                r.rlim_cur == RLIM_INFINITY ? 0ULL : (unsigned long long)r.rlim_cur / 1024);
    else if (err == EPERM || err == EACCES)
        fprintf(stderr, "xdpfwd: %s: %s: needs root or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF\n", what, strerror(err));
    else
        fprintf(stderr, "xdpfwd: %s: %s\n", what, strerror(err));
    if (attached_ifindex) bpf_xdp_detach(attached_ifindex, XDP_FLAGS_DRV_MODE, NULL);
    exit(1);
}

/* The XDP program: return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS), i.e. every frame of a queue with
 * a socket goes to it, the rest to the stack. */
static int load_redirect(int xsks_fd)
{
    struct bpf_insn prog[] = {
        { .code = BPF_LDX | BPF_W | BPF_MEM, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
          .off = offsetof(struct xdp_md, rx_queue_index) },
        { .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = xsks_fd },
        { 0 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = XDP_PASS },
        { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map },
        { .code = BPF_JMP | BPF_EXIT },
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdpfwd", "GPL", prog, sizeof prog / sizeof prog[0], NULL);
    if (fd < 0) die_privileged("loading the XDP redirect program", errno, 0);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: xdpfwd IN_IF OUT_IF STRIP PREPEND_HEX\n");
        return 2;
    }
    int strip = atoi(argv[3]);
    unsigned char prepend[256];
    int plen = 0;
    for (const char *h = argv[4]; h[0] && h[1] && plen < (int)sizeof prepend; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) { fprintf(stderr, "xdpfwd: bad PREPEND_HEX\n"); return 2; }
        prepend[plen++] = (unsigned char)v;
    }
    int shift = plen - strip; /* bytes the frame start moves back (the chunk's 256-byte headroom covers it) */
    if (shift > 200) { fprintf(stderr, "xdpfwd: the rewrite grows the frame by more than the headroom\n"); return 2; }

    void *area = mmap(NULL, (size_t)FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) die("mmap", errno);
    struct xsk_ring_prod fill_in, fill_out, tx;
    struct xsk_ring_cons comp_in, comp_out, rx;
    struct xsk_umem *umem;
    struct xsk_umem_config ucfg = { .fill_size = RING, .comp_size = RING, .frame_size = FRAME_SIZE,
                                    .frame_headroom = 0, .flags = 0 };
    int in_ifindex = if_nametoindex(argv[1]);
    if (!in_ifindex) die(argv[1], errno);
    int err = xsk_umem__create(&umem, area, (size_t)FRAMES * FRAME_SIZE, &fill_in, &comp_in, &ucfg);
    if (err) die_privileged("registering the UMEM", err, (unsigned long long)FRAMES * FRAME_SIZE);
    /* Our own program on IN_IF only; libxdp loads none (OUT_IF is TX only and needs none). */
    struct xsk_socket_config in_cfg = { .rx_size = RING, .tx_size = RING,
                                        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                                        .xdp_flags = XDP_FLAGS_DRV_MODE, .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP };
    struct xsk_socket *in_xsk, *out_xsk;
    err = xsk_socket__create_shared(&in_xsk, argv[1], 0, umem, &rx, NULL, &fill_in, &comp_in, &in_cfg);
    if (err) die_privileged("AF_XDP socket on IN_IF", err, 0);
    struct xsk_socket_config out_cfg = in_cfg;
    err = xsk_socket__create_shared(&out_xsk, argv[2], 0, umem, NULL, &tx, &fill_out, &comp_out, &out_cfg);
    if (err) die_privileged("AF_XDP socket on OUT_IF", err, 0);
    int xsks = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "xdpfwd_xsks", 4, 4, 1, NULL);
    if (xsks < 0) die_privileged("creating the XSKMAP", errno, 0);
    int key = 0, in_fd0 = xsk_socket__fd(in_xsk);
    if (bpf_map_update_elem(xsks, &key, &in_fd0, 0)) die("inserting the socket into the XSKMAP", errno);
    int prog = load_redirect(xsks);
    err = bpf_xdp_attach(in_ifindex, prog, XDP_FLAGS_DRV_MODE, NULL);
    if (err) die_privileged("attaching the XDP program to IN_IF", err, 0);
    attached_ifindex = in_ifindex;

    /* Half the frames go to the fill ring; the rest wait in a free stack for completions to come back. */
    static unsigned long long free_addr[FRAMES];
    int free_count = 0;
    unsigned idx = 0;
    xsk_ring_prod__reserve(&fill_in, FRAMES / 2, &idx);
    for (int i = 0; i < FRAMES / 2; i++) *xsk_ring_prod__fill_addr(&fill_in, idx + i) = (unsigned long long)i * FRAME_SIZE;
    xsk_ring_prod__submit(&fill_in, FRAMES / 2);
    for (int i = FRAMES / 2; i < FRAMES; i++) free_addr[free_count++] = (unsigned long long)i * FRAME_SIZE;

    fprintf(stderr, "ready\n");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int in_fd = xsk_socket__fd(in_xsk), out_fd = xsk_socket__fd(out_xsk);
    unsigned long long forwarded = 0, dropped = 0, in_flight = 0;
    while (!stop) {
        /* Completions of earlier sends: their frames are free again. */
        unsigned n = xsk_ring_cons__peek(&comp_out, RING, &idx);
        for (unsigned i = 0; i < n; i++) {
            unsigned long long a = *xsk_ring_cons__comp_addr(&comp_out, idx + i);
            /* A completion is a frame we sent: anything else means the rings are not what we set up. */
            if (a >= (unsigned long long)FRAMES * FRAME_SIZE || free_count >= FRAMES || in_flight == 0) {
                fprintf(stderr, "xdpfwd: the completion ring returned %llu (in flight %llu, free %d): not a frame we sent\n",
                        a, in_flight, free_count);
                bpf_xdp_detach(in_ifindex, XDP_FLAGS_DRV_MODE, NULL);
                return 1;
            }
            free_addr[free_count++] = a & ~(unsigned long long)(FRAME_SIZE - 1);
            in_flight--;
        }
        if (n) xsk_ring_cons__release(&comp_out, n);
        /* Copy mode sends a bounded number of frames per kick: keep kicking while any wait. */
        if (in_flight && xsk_ring_prod__needs_wakeup(&tx)) sendto(out_fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
        /* Refill the receive side in whole batches. */
        if (free_count >= BATCH && xsk_ring_prod__reserve(&fill_in, BATCH, &idx) == BATCH) {
            for (int i = 0; i < BATCH; i++) *xsk_ring_prod__fill_addr(&fill_in, idx + i) = free_addr[--free_count];
            xsk_ring_prod__submit(&fill_in, BATCH);
        }
        if (xsk_ring_prod__needs_wakeup(&fill_in)) recvfrom(in_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        unsigned rx_idx, tx_idx;
        /* Take no more than TX can carry: the rest waits in the RX ring (or the kernel drops it there). */
        unsigned want = xsk_prod_nb_free(&tx, BATCH);
        if (want > BATCH) want = BATCH;
        unsigned got = want ? xsk_ring_cons__peek(&rx, want, &rx_idx) : 0;
        if (!got) continue;
        unsigned room = xsk_ring_prod__reserve(&tx, got, &tx_idx);
        for (unsigned i = 0; i < got; i++) {
            const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, rx_idx + i);
            if (i >= room) { free_addr[free_count++] = d->addr & ~(unsigned long long)(FRAME_SIZE - 1); dropped++; continue; }
            struct xdp_desc *t = xsk_ring_prod__tx_desc(&tx, tx_idx + i);
            int s = 0;
            if ((int)d->len >= strip) { /* a frame shorter than STRIP goes out unchanged */
                s = shift;
                memcpy((unsigned char *)xsk_umem__get_data(area, d->addr) - s, prepend, plen);
            }
            t->addr = d->addr - s;
            t->len = d->len + s;
        }
        xsk_ring_cons__release(&rx, got);
        if (room) {
            xsk_ring_prod__submit(&tx, room);
            forwarded += room;
            in_flight += room;
        }
    }
    printf("forwarded %llu dropped %llu\n", forwarded, dropped);
    bpf_xdp_detach(in_ifindex, XDP_FLAGS_DRV_MODE, NULL);
    xsk_socket__delete(in_xsk);
    xsk_socket__delete(out_xsk);
    xsk_umem__delete(umem);
    return 0;
}
