/* MPLSGate's fast tier: frames it redirected that never left (issue 19, "the devices' XDP xmit errors are counted
 * as drops"). XDP_REDIRECT only queues a frame; the egress device takes or refuses it after the program returned
 * (a veth refuses all while its peer has neither an XDP program nor GRO on; any device refuses a frame longer than
 * its MTU, or while it is down). Two kernel tracepoints say so, with the device the frame arrived on: these
 * programs count their drops per ingress port, for the core ports' programs only, into "mg_fast_xmit_errors",
 * which the agent adds to its drop counters (xdpTransmitError). They run per refused redirect or per flushed batch,
 * never per forwarded frame.
 *
 * Loaded and attached with the fast tier's tables (the owner program's object) when the kernel has BTF; included
 * by steer.bpf.c. */
#ifndef MPLSGATE_XMIT_ERRORS_H
#define MPLSGATE_XMIT_ERRORS_H

/* The one field read, relocated against the running kernel's BTF (CO-RE). */
struct net_device {
    int ifindex;
} __attribute__((preserve_access_index));

/* ifindex -> port index, for every port of the agent (the agent writes it). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MG_FAST_MAX_PORTS);
    __type(key, __u32);
    __type(value, __u32);
} mg_fast_ifindex SEC(".maps");

/* Refused frames by ingress port index. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MG_FAST_MAX_PORTS);
    __type(key, __u32);
    __type(value, __u64);
} mg_fast_xmit_errors SEC(".maps");

static __always_inline void count_refused(const struct net_device *from, int frames)
{
    if (frames <= 0)
        return;
    __u32 ifindex = from->ifindex;
    __u32 *port = bpf_map_lookup_elem(&mg_fast_ifindex, &ifindex);
    if (!port)
        return;
    __u32 key = *port;
    __u64 *c = bpf_map_lookup_elem(&mg_fast_xmit_errors, &key);
    if (c)
        *c += frames;
}

/* A batch flushed to the egress device (xdp_devmap_xmit: from_dev, to_dev, sent, drops, err): `drops` frames were
 * refused and freed. */
SEC("tp_btf/xdp_devmap_xmit")
int mg_fast_devmap_xmit(unsigned long long *ctx)
{
    count_refused((const struct net_device *)ctx[0], (int)ctx[3]);
    return 0;
}

/* A redirect refused before it was queued (xdp_redirect_err: dev, prog, target, err, map type, map id, index): the
 * egress device is down or the frame longer than its MTU; one frame. Only the fast tier's devmap redirects. */
SEC("tp_btf/xdp_redirect_err")
int mg_fast_redirect_err(unsigned long long *ctx)
{
    if ((int)ctx[4] == BPF_MAP_TYPE_DEVMAP)
        count_refused((const struct net_device *)ctx[0], 1);
    return 0;
}

#endif
