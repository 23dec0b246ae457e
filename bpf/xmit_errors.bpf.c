// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* MPLSGate's fast tier: frames it redirected that never left (issue 19, "the devices' XDP xmit errors are counted
 * as drops"). XDP_REDIRECT only queues a frame; the egress device takes or refuses it after the program returned
 * (a veth refuses all while its peer has neither an XDP program nor GRO on; any device refuses a frame longer than
 * its MTU, or while it is down). Two kernel tracepoints say so, with the devices: these programs count the refused
 * frames of the agent's namespace per ingress port (a drop there) and per egress port (the fast tier counted them
 * as sent) into "mg_fast_refused". They run per refused redirect or per flushed batch, never per forwarded frame.
 *
 * A separate object from the steering program: it needs the kernel's BTF (tp_btf, CO-RE), and a kernel without it
 * must still load the steering program. The agent loads it with the fast tier's tables and reuses their maps. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mplsgate_xdp.h"
#include "xmit_maps.h"

/* The fields read, relocated against the running kernel's BTF (CO-RE). */
struct ns_common {
    unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
    struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
    struct net *net;
} __attribute__((preserve_access_index)) possible_net_t;

struct net_device {
    int ifindex;
    possible_net_t nd_net;
} __attribute__((preserve_access_index));

/* The device's port index, or -1 when it is not one of the agent's (another namespace, another device). */
static __always_inline long port_of(const struct net_device *dev)
{
    __u32 zero = 0;
    __u32 *ours = bpf_map_lookup_elem(&mg_fast_netns, &zero);
    if (!ours || !dev || dev->nd_net.net->ns.inum != *ours)
        return -1;
    __u32 ifindex = dev->ifindex;
    __u32 *port = bpf_map_lookup_elem(&mg_fast_ifindex, &ifindex);
    return port ? (long)*port : -1;
}

static __always_inline void count_refused(long in, long out, int frames)
{
    __u32 key;
    struct mg_fast_refused *c;
    if (in >= 0) {
        key = (__u32)in;
        c = bpf_map_lookup_elem(&mg_fast_refused, &key);
        if (c)
            c->dropped += frames;
    }
    if (out >= 0) {
        key = (__u32)out;
        c = bpf_map_lookup_elem(&mg_fast_refused, &key);
        if (c)
            c->not_sent += frames;
    }
}

/* A batch flushed to the egress device (xdp_devmap_xmit: from_dev, to_dev, sent, drops, err): `drops` frames were
 * refused and freed. */
SEC("tp_btf/xdp_devmap_xmit")
int mg_fast_devmap_xmit(unsigned long long *ctx)
{
    int drops = (int)ctx[3];
    if (drops <= 0)
        return 0;
    long in = port_of((const struct net_device *)ctx[0]);
    if (in < 0)
        return 0;
    count_refused(in, port_of((const struct net_device *)ctx[1]), drops);
    return 0;
}

/* A redirect refused before it was queued (xdp_redirect_err: dev, prog, target, err, map type, map id, index): the
 * egress device is down or the frame longer than its MTU; one frame. Only the fast tier's devmap redirects: its key
 * is the egress port's index. */
SEC("tp_btf/xdp_redirect_err")
int mg_fast_redirect_err(unsigned long long *ctx)
{
    if ((int)ctx[4] != BPF_MAP_TYPE_DEVMAP)
        return 0;
    long in = port_of((const struct net_device *)ctx[0]);
    if (in < 0)
        return 0;
    __u32 index = (__u32)ctx[6];
    count_refused(in, index < MG_FAST_MAX_PORTS ? (long)index : -1, 1);
    return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
