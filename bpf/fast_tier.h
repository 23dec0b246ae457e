/* MPLSGate's fast tier (issue 19): transit label switching inside the XDP program, on core ports.
 *
 * It does what Pipeline.swift does for swap (1-4 out labels), PHP (to MPLS, IPv4, IPv6), pop to a next label and
 * explicit null at S=0, with ECMP over next-hop groups, the bucket's second choice, a next hop's own backup and an
 * action's backup labels. It reads tables that mirror the FIBSnapshot (mplsgate_xdp.h). Before it writes anything
 * it has made every check the pipeline makes; a frame that would fail one, or that needs anything else, goes to
 * AF_XDP untouched (fast_tier returns -1), where the pipeline forwards or drops and counts it. So the fast tier
 * never drops, and a frame's counters are counted by exactly one tier.
 *
 * Included by steer.bpf.c; the same program steers what the fast tier leaves. */
#ifndef MPLSGATE_FAST_TIER_H
#define MPLSGATE_FAST_TIER_H

/* Operations and flags of FIB.ILMEntry/FIB.Action (Sources/FIB/Action.swift). */
#define OP_SWAP 1
#define OP_POP 2
#define FLAG_UNIFORM 1
#define PAYLOAD_MPLS 0
#define PAYLOAD_IPV4 1
#define PAYLOAD_IPV6 2
#define FLOW_SEED 0x4D504C53u

/* The tables below marked "two halves" hold one generation in each half; the frame reads the half its generation
 * names (mg_fast_generation, looked up once per frame). They are arrays, so the JIT inlines the lookups, and
 * mmapable: the agent writes them in place (the half no frame reads, or one 32-bit word). The loader sizes them
 * (mg_prog_load_sized). */

/* Label -> its entry's index + 1 in mg_fast_table, per half (0: not a fast-tier label). Two halves. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct mg_fast_ilm_slot);
} mg_fast_ilm SEC(".maps");

/* Entries by index. Not generational: an index's entry never changes while a label points at it (an action slot
 * never changes, and indexes follow action slots). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct mg_fast_entry);
} mg_fast_table SEC(".maps");

/* Next-hop records by half x slots + slot. Two halves. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct mg_fast_next_hop);
} mg_fast_next_hops SEC(".maps");

/* Next-hop liveness by slot (0 up). Not generational: a local event, as in the engine's liveness array. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} mg_fast_liveness SEC(".maps");

/* Group buckets by half x groups x 4096 + group x 4096 + bucket. Two halves. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct mg_fast_bucket);
} mg_fast_buckets SEC(".maps");

/* The generation: one slot, pointing at one of two one-entry maps (half 0, half 1). The agent fills the slot
 * (FastTierTables); while it is empty every frame goes to AF_XDP. */
struct mg_fast_generation_map {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mg_fast_generation);
};
struct mg_fast_generation_map mg_fast_gen0 SEC(".maps"), mg_fast_gen1 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, struct mg_fast_generation_map);
} mg_fast_generation SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mg_fast_config);
} mg_fast_config SEC(".maps");

/* Egress ports by port index: the devmap redirects, mg_fast_egress says which ports take redirected frames. */
struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, MG_FAST_MAX_PORTS);
    __type(key, __u32);
    __type(value, __u32);
} mg_fast_tx SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MG_FAST_MAX_PORTS);
    __type(key, __u32);
    __type(value, __u32);
} mg_fast_egress SEC(".maps");

/* Per-entry counters by entry index (the agent adds them to the entry's action slot, as WorkerCounters.entries). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mg_fast_counter);
} mg_fast_entries SEC(".maps");

/* Per port counters and the last frame's record, one lookup per frame. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct mg_fast_cpu);
} mg_fast_cpu SEC(".maps");

static __always_inline __u32 be32_at(const __u8 *p)
{
    return __builtin_bswap32(*(const __u32 *)p);   /* x86 and arm64 load unaligned words */
}

/* FlowHash.mix / finish (MurmurHash3 steps). */
static __always_inline __u32 flow_mix(__u32 h, __u32 w)
{
    __u32 k = w * 0xCC9E2D51u;
    k = ((k << 15) | (k >> 17)) * 0x1B873593u;
    __u32 x = h ^ k;
    return ((x << 13) | (x >> 19)) * 5 + 0xE6546B64u;
}

static __always_inline __u32 flow_finish(__u32 x)
{
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    return x ^ (x >> 16);
}

/* FlowHash.labelStack from the top of the stack: labels >= 16 down to S=1, or the entropy label alone. Returns 0
 * and sets *ok = 0 when the stack runs past what the fast tier scans (the caller then steers). */
static __always_inline __u32 hash_label_stack(const __u8 *data, const __u8 *end, __u32 top, int *ok)
{
    __u32 h = FLOW_SEED;
    __u32 off = top;
    *ok = 1;
    for (int i = 0; i < MG_FAST_STACK_SCAN + MG_FAST_POPS; i++) {
        const __u8 *p = data + (off & 0x3FF);
        if (p + 4 > end)
            return flow_finish(h);
        __u32 lse = be32_at(p);
        __u32 label = lse >> 12;
        if (label == 7 && p + 8 <= end)
            return flow_finish(flow_mix(FLOW_SEED, be32_at(p + 4) >> 12));
        if (label >= 16)
            h = flow_mix(h, label);
        if (lse & 0x100)
            return flow_finish(h);
        off += 4;
    }
    *ok = 0;
    return 0;
}

/* Pipeline.stackIsTerminated: an S=1 label at or after `from`, within maxLabelDepth labels of the top. */
static __always_inline int stack_is_terminated(const __u8 *data, const __u8 *end, __u32 from, __u32 top)
{
    __u32 limit = top + 4 * MG_FAST_STACK_SCAN;
    for (int i = 0; i < MG_FAST_STACK_SCAN; i++) {
        __u32 o = from + 4 * i;
        if (o + 4 > limit)
            return 0;
        const __u8 *p = data + (o & 0x3FF);
        if (p + 4 > end)
            return 0;
        if (p[2] & 1)
            return 1;
    }
    return 0;
}

static __always_inline int is_live(__u32 slot)
{
    __u32 *down = bpf_map_lookup_elem(&mg_fast_liveness, &slot);
    return down && *down == 0;
}

static __always_inline const struct mg_fast_bucket *bucket_at(__u32 index)
{
    return bpf_map_lookup_elem(&mg_fast_buckets, &index);
}

/* FIBSnapshot.resolveLive, except a next hop falling back to a group backup (that hashes the frame as rewritten):
 * the next-hop slot to send through, or -1 (steer). Slots are the FIB's; `g` says where its half starts. */
static __always_inline long resolve(__u32 target, __u32 hash, const struct mg_fast_generation *g)
{
    __u32 bucket = hash & (MG_FAST_BUCKETS - 1);
    __u32 slot;
    if (target & MG_FAST_GROUP_BIT) {
        __u32 group = target & 0x7FFFFFFF;
        if (group >= MG_FAST_MAX_GROUPS)
            return -1;
        const struct mg_fast_bucket *b = bucket_at(g->bucket_base + group * MG_FAST_BUCKETS + bucket);
        if (!b)
            return -1;
        slot = b->primary;
        if (is_live(slot))
            return slot;
        if (is_live(b->second))
            return b->second;
    } else {
        slot = target & 0x7FFFFFFF;
        if (is_live(slot))
            return slot;
    }
    __u32 key = g->next_hop_base + slot;
    const struct mg_fast_next_hop *nh = bpf_map_lookup_elem(&mg_fast_next_hops, &key);
    if (!nh)
        return -1;
    __u32 backup = nh->backup;
    if (backup == MG_FAST_NO_TARGET)
        return -1;
    if (backup & MG_FAST_GROUP_BIT) {
        if (!(target & MG_FAST_GROUP_BIT) || (backup & 0x7FFFFFFF) >= MG_FAST_MAX_GROUPS)
            return -1;  /* backupFlowHash: the pipeline hashes the rewritten frame */
        const struct mg_fast_bucket *b = bucket_at(g->bucket_base + (backup & 0x7FFFFFFF) * MG_FAST_BUCKETS + bucket);
        if (!b)
            return -1;
        __u32 m = is_live(b->primary) ? b->primary : b->second;
        return is_live(m) ? (long)m : -1;
    }
    return is_live(backup) ? (long)backup : -1;
}

/* IPv4.setTTL: the TTL and the checksum's incremental update (RFC 1624 eqn 3), as the pipeline writes them. */
static __always_inline void ipv4_set_ttl(__u8 *ip, __u8 ttl)
{
    __u16 old = (__u16)ip[8] << 8 | ip[9];
    __u16 new_ = (__u16)ttl << 8 | ip[9];
    __u16 c = (__u16)ip[10] << 8 | ip[11];
    __u32 s = (__u32)(__u16)~c + (__u32)(__u16)~old + (__u32)new_;
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    __u16 sum = ~(__u16)s;
    ip[8] = ttl;
    ip[10] = sum >> 8;
    ip[11] = sum & 0xFF;
}

static __always_inline void fast_count(__u32 key, __u64 bytes)
{
    struct mg_fast_counter *c = bpf_map_lookup_elem(&mg_fast_entries, &key);
    if (c) {
        c->packets += 1;
        c->bytes += bytes;
    }
}

static __always_inline int slow(struct mg_fast_cpu *cpu, __u32 why)
{
    if (cpu) {
        cpu->last.verdict = MG_FAST_STEERED;
        cpu->last.why = why;
    }
    return -1;
}

/* The fast tier for an MPLS frame on a core port whose program has it on: an XDP action, or -1 to steer the frame
 * (untouched) to AF_XDP. `top` is the offset of the first label. */
static __always_inline int fast_tier(struct xdp_md *ctx, const struct mg_port_config *cfg, __u32 top)
{
    __u32 zero = 0;
    struct mg_fast_cpu *last = bpf_map_lookup_elem(&mg_fast_cpu, &zero);
    const struct mg_fast_config *fc = bpf_map_lookup_elem(&mg_fast_config, &zero);
    if (!fc)
        return slow(last, MG_SLOW_OPERATION);
    if (fc->trace_armed || fc->paused)
        return slow(last, MG_SLOW_TRACE);
    /* The frame's generation: every table below is read in the half it names. */
    void *generation = bpf_map_lookup_elem(&mg_fast_generation, &zero);
    if (!generation)
        return slow(last, MG_SLOW_OPERATION);
    const struct mg_fast_generation *g = bpf_map_lookup_elem(generation, &zero);
    if (!g)
        return slow(last, MG_SLOW_OPERATION);
    __u32 half = g->half & 1;
    __u8 *data = (void *)(long)ctx->data;
    __u8 *end = (void *)(long)ctx->data_end;
    if (data + 14 > end)
        return slow(last, MG_SLOW_STACK);
    /* Pipeline.classify: the destination must be the port's MAC. */
    if (*(const __u32 *)data != *(const __u32 *)cfg->mac || *(const __u16 *)(data + 4) != *(const __u16 *)(cfg->mac + 4))
        return slow(last, MG_SLOW_GUARD);
    __u64 rx_bytes = end - data;

    /* Pipeline.mplsInput for pop, explicit null at S=0, swap and PHP. */
    __u32 off = top & 0x3F;
    __u32 inherited = 0x100;
    __u32 popped[MG_FAST_POPS];
    __u32 pops = 0;
    __u32 lse = 0;
    const struct mg_fast_entry *e = 0;
    for (int depth = 0; depth <= MG_FAST_POPS; depth++) {
        const __u8 *p = data + off;
        if (p + 4 > end)
            return slow(last, MG_SLOW_STACK);
        lse = be32_at(p);
        __u32 label = lse >> 12;
        if (inherited <= 0xFF && label != 7)
            lse = (lse & ~0xFFu) | inherited;
        __u32 ttl = lse & 0xFF;
        int bottom = (lse & 0x100) != 0;
        if (label < 16) {
            if ((label == 0 || label == 2) && !bottom && ttl > 1 && depth < MG_FAST_POPS) {
                off += 4;
                continue;
            }
            return slow(last, MG_SLOW_SPECIAL);
        }
        const struct mg_fast_ilm_slot *slot = bpf_map_lookup_elem(&mg_fast_ilm, &label);
        __u32 index = slot ? slot->index[half] : 0;
        if (!index)
            return slow(last, MG_SLOW_OPERATION);
        index -= 1;
        e = bpf_map_lookup_elem(&mg_fast_table, &index);
        if (!e)
            return slow(last, MG_SLOW_OPERATION);
        if (e->op == OP_POP) {
            if (ttl <= 1)
                return slow(last, MG_SLOW_TTL);
            if (bottom || p + 8 > end || depth >= MG_FAST_POPS || pops >= MG_FAST_POPS)
                return slow(last, MG_SLOW_STACK);
            popped[pops & (MG_FAST_POPS - 1)] = e->index;
            pops++;
            inherited = (e->flags & FLAG_UNIFORM) ? ttl - 1 : 0x100;
            off += 4;
            continue;
        }
        if (e->op != OP_SWAP)
            return slow(last, MG_SLOW_OPERATION);
        if (ttl <= 1)
            return slow(last, MG_SLOW_TTL);
        break;
    }
    if (!e || e->op != OP_SWAP)
        return slow(last, MG_SLOW_STACK);
    __u32 counter = e->index;
    const struct mg_fast_entry *a = e;

    /* Pipeline.swap: every check first. */
    __u8 new_ttl = (__u8)((lse & 0xFF) - 1);
    int bottom = (lse & 0x100) != 0;
    __u32 payload = off + 4;
    __u32 count = a->label_count;
    __u32 backup_labels = 0;
    __u16 ether_type = 0x8847;
    int uniform = a->flags & FLAG_UNIFORM;
    if (count == 0) {
        if (a->payload == PAYLOAD_MPLS) {
            if (bottom || !stack_is_terminated(data, end, payload, top))
                return slow(last, MG_SLOW_STACK);
        } else {
            if (!bottom)
                return slow(last, MG_SLOW_STACK);
            const __u8 *ip = data + (payload & 0x3F);
            if (a->payload == PAYLOAD_IPV6) {
                if (ip + 40 > end || (ip[0] >> 4) != 6)
                    return slow(last, MG_SLOW_PAYLOAD);
                if (!uniform && ip[7] <= 1)
                    return slow(last, MG_SLOW_TTL);
                ether_type = 0x86DD;
            } else if (a->payload == PAYLOAD_IPV4) {
                if (ip + 20 > end || (ip[0] >> 4) != 4)
                    return slow(last, MG_SLOW_PAYLOAD);
                __u32 hl = (ip[0] & 0xF) << 2;
                __u32 total = (__u32)ip[2] << 8 | ip[3];
                if (hl < 20 || hl > total || (__u64)(end - ip) < total)
                    return slow(last, MG_SLOW_PAYLOAD);
                if (!uniform && ip[8] <= 1)
                    return slow(last, MG_SLOW_TTL);
                ether_type = 0x0800;
            } else {
                return slow(last, MG_SLOW_OPERATION);
            }
        }
    } else {
        if (!bottom && !stack_is_terminated(data, end, payload, top))
            return slow(last, MG_SLOW_STACK);
        /* Pipeline.labelsFor: the backup labels while the action's next hop is down. */
        if (a->backup_label_count && !(a->target & MG_FAST_GROUP_BIT) && !is_live(a->target & 0x7FFFFFFF)) {
            backup_labels = 1;
            count = a->backup_label_count;
        }
        if (count > MG_FAST_OUT_LABELS)
            return slow(last, MG_SLOW_OPERATION);
    }
    __u32 hash = 0;
    if (a->target & MG_FAST_GROUP_BIT) {
        int ok;
        hash = hash_label_stack(data, end, top, &ok);
        if (!ok)
            return slow(last, MG_SLOW_STACK);
    }
    long slot = resolve(a->target, hash, g);
    if (slot < 0)
        return slow(last, MG_SLOW_NEXT_HOP);
    __u32 nh_slot = g->next_hop_base + (__u32)slot;
    const struct mg_fast_next_hop *nh = bpf_map_lookup_elem(&mg_fast_next_hops, &nh_slot);
    if (!nh)
        return slow(last, MG_SLOW_NEXT_HOP);
    int out_payload = (int)payload - 4 * (int)count;  /* where the labels (or the PHP payload) start */
    if ((int)(end - data) - out_payload > (int)nh->mtu)
        return slow(last, MG_SLOW_MTU);
    __u32 port = nh->port;
    __u32 *egress_ok = bpf_map_lookup_elem(&mg_fast_egress, &port);
    if (!egress_ok || !*egress_ok)
        return slow(last, MG_SLOW_EGRESS);
    __u32 l2_size = nh->l2_size == 16 ? 16 : 12;
    int header = (int)l2_size + 2;
    __u32 labels[MG_FAST_OUT_LABELS];
    __u32 dynamic = ((lse >> 9) & 7) << 9 | new_ttl;
    for (int i = 0; i < MG_FAST_OUT_LABELS; i++)
        labels[i] = a->labels[(backup_labels ? a->label_count : 0) + i & (2 * MG_FAST_OUT_LABELS - 1)] | dynamic;
    __u8 l2[16];
    __builtin_memcpy(l2, nh->l2, 16);

    /* Rewrite: the only step that can fail is moving the head, and it changes nothing when it fails. */
    int delta = out_payload - header;  /* negative: the frame grows at the head */
    if (delta && bpf_xdp_adjust_head(ctx, delta))
        return slow(last, MG_SLOW_HEADROOM);
    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    /* The bounds checks below cannot fail (the frame held these bytes before); the verifier needs them. */
    if (data + 16 > end)
        return XDP_ABORTED;
    __builtin_memcpy(data, l2, 12);
    if (l2_size == 16) {
        if (data + 18 > end)
            return XDP_ABORTED;
        __builtin_memcpy(data + 12, l2 + 12, 4);
        data[16] = ether_type >> 8;
        data[17] = ether_type & 0xFF;
    } else {
        data[12] = ether_type >> 8;
        data[13] = ether_type & 0xFF;
    }
    __u8 *out = data + header;
    if (count == 0) {
        if (a->payload == PAYLOAD_MPLS) {
            if (out + 4 > end)
                return XDP_ABORTED;
            if (uniform)
                out[3] = new_ttl;
        } else if (a->payload == PAYLOAD_IPV6) {
            if (out + 40 > end)
                return XDP_ABORTED;
            out[7] = uniform ? new_ttl : out[7] - 1;
        } else {
            if (out + 20 > end)
                return XDP_ABORTED;
            ipv4_set_ttl(out, uniform ? new_ttl : out[8] - 1);
        }
    } else {
        for (int i = 0; i < MG_FAST_OUT_LABELS; i++) {
            if (i >= count)
                break;
            __u8 *w = out + 4 * i;
            if (w + 4 > end)
                return XDP_ABORTED;
            __u32 v = labels[i];
            if (bottom && i == count - 1)
                v |= 0x100;
            *(__u32 *)w = __builtin_bswap32(v);
        }
    }

    /* Counters, as Pipeline.processFrame and mplsInput count them. */
    __u64 tx_bytes = end - data;
    if (last) {
        struct mg_fast_port_counters *pc = &last->ports[cfg->port_index & (MG_FAST_MAX_PORTS - 1)];
        pc->rx_packets += 1;
        pc->rx_bytes += rx_bytes;
        pc = &last->ports[port & (MG_FAST_MAX_PORTS - 1)];
        pc->tx_packets += 1;
        pc->tx_bytes += tx_bytes;
        last->last.verdict = MG_FAST_FORWARDED;
        last->last.port = port;
        last->last.why = 0;
    }
    for (int i = 0; i < MG_FAST_POPS; i++) {
        if (i >= pops)
            break;
        fast_count(popped[i], rx_bytes);
    }
    fast_count(counter, rx_bytes);
    return bpf_redirect_map(&mg_fast_tx, port, 0);
}

#endif
