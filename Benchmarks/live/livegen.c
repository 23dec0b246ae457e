/* Traffic for the live benchmark, from the kernel itself (no pktgen on these VMs):
 *
 *   livegen send IFNAME HEXFRAME SECONDS   transmit HEXFRAME on IFNAME as fast as one core can, for SECONDS;
 *                                          prints "sent N frames in S s (R Mpps)"
 *   livegen sink IFNAME                    attach an XDP program that drops every frame (the sink); count with
 *                                          `ethtool -S IFNAME` (veth: rx_queue_0_xdp_packets)
 *   livegen redirect IFIN IFOUT            attach a bare XDP_REDIRECT program to IFIN: every frame out of IFOUT,
 *                                          unchanged (the ceiling the fast tier is measured against)
 *   livegen redirect-rw IFIN IFOUT         the same after copying the frame's first 4 bytes over bytes 6-9 (it reads
 *                                          and writes the frame's first cache line, as any header rewrite does)
 *
 * `send` runs a small XDP program through BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: the kernel builds
 * real frames from HEXFRAME and transmits them out of IFNAME in batches (~12 Mpps from one core here, platform
 * notes), far above what a copy-mode AF_XDP forwarder can take, so the device under test is always saturated.
 * The kernel reuses the frames' pages, and a device under test that rewrites in place (an XDP program behind a
 * veth: MPLSGate's fast tier, not AF_XDP, which copies) writes into them; so the program writes the frame's first
 * 64 bytes back from HEXFRAME before each XDP_TX. Run it inside the namespace that holds IFNAME. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int load_return(int action)
{
    struct bpf_insn prog[] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = action },
        { .code = BPF_JMP | BPF_EXIT },
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "livegen", "GPL", prog, 2, NULL);
    if (fd < 0) {
        fprintf(stderr, "livegen: loading an XDP program failed: %s (root or CAP_BPF needed)\n", strerror(errno));
        exit(1);
    }
    return fd;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int parse_hex(const char *hex, unsigned char *out, int max)
{
    int n = 0;
    for (; hex[0] && hex[1] && n < max; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1) return -1;
        out[n++] = (unsigned char)v;
    }
    return *hex ? -1 : n;
}

/* XDP_REDIRECT to ifindex; with `touch`, first write the frame's first word (the frame's cache line is then read
 * and written, as by any forwarder that rewrites a header). */
static int load_redirect(int ifindex, int touch)
{
    struct bpf_insn prog[] = {
        { .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1, .off = 0 },
        { .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_3, .src_reg = BPF_REG_1, .off = 4 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_4, .src_reg = BPF_REG_2 },
        { .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_4, .imm = 14 },
        { .code = BPF_JMP | BPF_JGT | BPF_X, .dst_reg = BPF_REG_4, .src_reg = BPF_REG_3, .off = 2 },
        { .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_5, .src_reg = BPF_REG_2, .off = 0 },
        { .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_5, .off = 6 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = ifindex },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = 0 },
        { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect },
        { .code = BPF_JMP | BPF_EXIT },
    };
    int skip = touch ? 0 : 7;
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, touch ? "livegen_redir_rw" : "livegen_redir", "GPL", prog + skip,
                           11 - skip, NULL);
    if (fd < 0) {
        fprintf(stderr, "livegen: loading the redirect program failed: %s\n", strerror(errno));
        exit(1);
    }
    return fd;
}

/* XDP_TX after writing the first min(len, 64) bytes (whole words) of `frame` back into the packet. */
static int load_restoring_tx(const unsigned char *frame, int len)
{
    int words = (len < 64 ? len : 64) / 4;
    struct bpf_insn prog[8 + 16];
    int n = 0;
    prog[n++] = (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1, .off = 0 };
    prog[n++] = (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_3, .src_reg = BPF_REG_1, .off = 4 };
    prog[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_4, .src_reg = BPF_REG_2 };
    prog[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_4, .imm = 4 * words };
    prog[n++] = (struct bpf_insn){ .code = BPF_JMP | BPF_JGT | BPF_X, .dst_reg = BPF_REG_4, .src_reg = BPF_REG_3,
                                   .off = (short)words };
    for (int i = 0; i < words; i++) {
        int v;
        memcpy(&v, frame + 4 * i, 4);
        prog[n++] = (struct bpf_insn){ .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .off = (short)(4 * i), .imm = v };
    }
    prog[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_TX };
    prog[n++] = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "livegen_tx", "GPL", prog, n, NULL);
    if (fd < 0) {
        fprintf(stderr, "livegen: loading the generator program failed: %s (root or CAP_BPF needed)\n", strerror(errno));
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc == 4 && (!strcmp(argv[1], "redirect") || !strcmp(argv[1], "redirect-rw"))) {
        int in = if_nametoindex(argv[2]), out = if_nametoindex(argv[3]);
        if (!in || !out) { fprintf(stderr, "livegen: no interface %s or %s\n", argv[2], argv[3]); return 1; }
        int err = bpf_xdp_attach(in, load_redirect(out, !strcmp(argv[1], "redirect-rw")), XDP_FLAGS_DRV_MODE, NULL);
        if (err) { fprintf(stderr, "livegen: attaching to %s failed: %s\n", argv[2], strerror(-err)); return 1; }
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "sink")) {
        int ifindex = if_nametoindex(argv[2]);
        if (!ifindex) { fprintf(stderr, "livegen: no interface %s\n", argv[2]); return 1; }
        int fd = load_return(XDP_DROP);
        int err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);
        if (err) { fprintf(stderr, "livegen: attaching to %s failed: %s\n", argv[2], strerror(-err)); return 1; }
        return 0;
    }
    if (argc != 5 || strcmp(argv[1], "send")) {
        fprintf(stderr, "usage: livegen send IFNAME HEXFRAME SECONDS | livegen sink IFNAME | livegen redirect[-rw] IFIN IFOUT\n");
        return 2;
    }
    int ifindex = if_nametoindex(argv[2]);
    if (!ifindex) { fprintf(stderr, "livegen: no interface %s\n", argv[2]); return 1; }
    static unsigned char frame[4096];
    int len = parse_hex(argv[3], frame, sizeof frame);
    if (len < 14) { fprintf(stderr, "livegen: HEXFRAME must be an Ethernet frame in hex\n"); return 2; }
    double seconds = atof(argv[4]);
    int fd = load_restoring_tx(frame, len);
    struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex, .rx_queue_index = 0 };
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len, .ctx_in = &ctx,
                .ctx_size_in = sizeof ctx, .repeat = 1 << 18, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                .batch_size = 64);
    unsigned long long sent = 0;
    double start = now(), elapsed = 0;
    while (elapsed < seconds) {
        int err = bpf_prog_test_run_opts(fd, &opts);
        if (err) { fprintf(stderr, "livegen: BPF_PROG_TEST_RUN failed: %s\n", strerror(errno)); return 1; }
        sent += opts.repeat;
        elapsed = now() - start;
    }
    printf("sent %llu frames in %.3f s (%.3f Mpps)\n", sent, elapsed, sent / elapsed / 1e6);
    return 0;
}
