// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* MPLSGate XDP steering program: sends the frames MPLSGate forwards to the AF_XDP socket of the receive queue and
 * passes everything else to the host stack (ARP/ND, the host's own traffic, routing and label protocols).
 *
 *   every port: MPLS unicast (0x8847), also under one 802.1Q tag (on dc and vrf ports MPLSGate drops it as
 *               mplsNotEnabled: the guard is counted). 0x8848 (upstream-assigned) is never steered.
 *   dc ports:   IPv4/IPv6 UDP to the configured VXLAN port, addressed to one of our VTEP addresses.
 *   vrf ports:  unicast IPv4/IPv6 not addressed to the host (its addresses are in the config map).
 *   core ports: BFD control (RFC 5881: UDP to 3784) addressed to one of the port's addresses, for the agent's BFD
 *               sessions in the forwarding path; the TTL-255 check is the agent's (counted there).
 *
 * One copy of the program is loaded per port; its "mg_port" map holds that port's config. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "mplsgate_xdp.h"

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, MG_MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} mg_xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mg_port_config);
} mg_port SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MG_STAT_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} mg_stats SEC(".maps");

struct vlan_tag {
    __be16 tci;
    __be16 proto;
};

static __always_inline int count(__u32 which, int verdict)
{
    __u64 *c = bpf_map_lookup_elem(&mg_stats, &which);
    if (c)
        *c += 1;
    return verdict;
}

#include "fast_tier.h"

static __always_inline int pass(void) { return count(MG_STAT_PASSED, XDP_PASS); }

static __always_inline int steer(struct xdp_md *ctx)
{
    __u32 q = ctx->rx_queue_index;
    if (!bpf_map_lookup_elem(&mg_xsks, &q))
        return count(MG_STAT_NO_SOCKET, XDP_PASS);
    int r = bpf_redirect_map(&mg_xsks, q, XDP_PASS);
    return count(r == XDP_REDIRECT ? MG_STAT_REDIRECTED : MG_STAT_NO_SOCKET, r);
}

static __always_inline int v4_is_ours(const struct mg_port_config *cfg, __u32 addr)
{
#pragma unroll
    for (int i = 0; i < MG_MAX_PORT_V4; i++) {
        if (i >= cfg->v4_count)
            break;
        if (cfg->v4[i] == addr)
            return 1;
    }
    return 0;
}

static __always_inline int v6_is_ours(const struct mg_port_config *cfg, const struct in6_addr *addr)
{
    for (int i = 0; i < MG_MAX_PORT_V6; i++) {
        if (i >= cfg->v6_count)
            break;
        const __u32 *a = (const __u32 *)cfg->v6[i];
        if (a[0] == addr->in6_u.u6_addr32[0] && a[1] == addr->in6_u.u6_addr32[1] &&
            a[2] == addr->in6_u.u6_addr32[2] && a[3] == addr->in6_u.u6_addr32[3])
            return 1;
    }
    return 0;
}

/* Core ports: BFD control packets to one of the port's addresses; everything else (ARP, ND, the host's IP) passes. */
static __always_inline int core_ip(struct xdp_md *ctx, const struct mg_port_config *cfg, __be16 proto, void *l3,
                                   void *end)
{
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > end)
            return pass();
        if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3FFF)) || ip->ihl < 5)
            return pass();
        struct udphdr *udp = (void *)ip + ip->ihl * 4;
        if ((void *)(udp + 1) > end)
            return pass();
        if (udp->dest != bpf_htons(MG_BFD_PORT) || !v4_is_ours(cfg, ip->daddr))
            return pass();
        return steer(ctx);
    }
    if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > end)
            return pass();
        if (ip6->nexthdr != IPPROTO_UDP)
            return pass();
        struct udphdr *udp = (void *)(ip6 + 1);
        if ((void *)(udp + 1) > end)
            return pass();
        if (udp->dest != bpf_htons(MG_BFD_PORT) || !v6_is_ours(cfg, &ip6->daddr))
            return pass();
        return steer(ctx);
    }
    return pass();
}

SEC("xdp")
int mplsgate_steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    const struct mg_port_config *cfg = bpf_map_lookup_elem(&mg_port, &zero);
    if (!cfg)
        return pass();

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return pass();
    __be16 proto = eth->h_proto;
    void *l3 = eth + 1;
    if (proto == bpf_htons(ETH_P_8021Q)) {
        struct vlan_tag *tag = l3;
        if ((void *)(tag + 1) > end)
            return pass();
        proto = tag->proto;
        l3 = tag + 1;
    }

    /* MPLS is steered on every port: core ports forward it, dc and vrf ports count it as a guard drop
     * (mplsNotEnabled), so a tenant's attempt to inject labels is visible instead of silently passed. */
    if (proto == bpf_htons(ETH_P_MPLS_UC)) {
        if (cfg->role == MG_ROLE_CORE && cfg->fast) {
            int r = fast_tier(ctx, cfg, (__u32)((__u8 *)l3 - (__u8 *)data));
            if (r >= 0)
                return r;   /* counted in the fast tier's own per-CPU block */
        }
        return steer(ctx);
    }

    /* IP only. Multicast and broadcast frames are the host's (ND, DHCP, routing protocols). */
    if (eth->h_dest[0] & 1)
        return pass();
    if (cfg->role == MG_ROLE_CORE)
        return core_ip(ctx, cfg, proto, l3, end);
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > end)
            return pass();
        if (cfg->role == MG_ROLE_VRF)
            return v4_is_ours(cfg, ip->daddr) ? pass() : steer(ctx);
        /* dc: VXLAN to one of our VTEPs; the first fragment is steered (and dropped, counted, by MPLSGate). */
        if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1FFF)) || ip->ihl < 5)
            return pass();
        struct udphdr *udp = (void *)ip + ip->ihl * 4;
        if ((void *)(udp + 1) > end)
            return pass();
        if (udp->dest != cfg->vxlan_port_be || !v4_is_ours(cfg, ip->daddr))
            return pass();
        return steer(ctx);
    }
    if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > end)
            return pass();
        if (ip6->daddr.in6_u.u6_addr8[0] == 0xff)
            return pass();
        if (cfg->role == MG_ROLE_VRF) {
            /* link-local destinations are the host's (fe80::/10) */
            if (ip6->daddr.in6_u.u6_addr8[0] == 0xfe && (ip6->daddr.in6_u.u6_addr8[1] & 0xc0) == 0x80)
                return pass();
            return v6_is_ours(cfg, &ip6->daddr) ? pass() : steer(ctx);
        }
        if (ip6->nexthdr != IPPROTO_UDP)
            return pass();
        struct udphdr *udp = (void *)(ip6 + 1);
        if ((void *)(udp + 1) > end)
            return pass();
        if (udp->dest != cfg->vxlan_port_be || !v6_is_ours(cfg, &ip6->daddr))
            return pass();
        return steer(ctx);
    }
    return pass();
}

#include "xmit_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
