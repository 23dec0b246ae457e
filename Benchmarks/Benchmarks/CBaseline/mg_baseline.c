/* A C port of Sources/Dataplane/Pipeline.swift, function for function and check for check, so that the benchmark's
 * ratio measures what Swift costs over C for the same work. Keep it in step with the Swift pipeline: the benchmark
 * refuses to time the two when their output bytes, verdicts or counters differ. */
#include "mg_baseline.h"
#include <stddef.h>
#include <string.h>

enum { OP_NONE, OP_SWAP, OP_POP, OP_POP_TO_IP, OP_POP_TO_VXLAN, OP_DROP, OP_VXLAN_TO_MPLS, OP_PUSH };
enum { PAYLOAD_MPLS, PAYLOAD_IPV4, PAYLOAD_IPV6 };
enum { FLAG_UNIFORM = 1, FLAG_CONTROL_WORD = 2, FLAG_LOOKUP_IN_VRF = 4, FLAG_IPV6_UNDERLAY = 8 };
enum { ROLE_CORE, ROLE_DC, ROLE_VRF };
#define GROUP_BIT 0x80000000u
#define ETH 14
#define VLAN_TAG 4
#define MAX_LABEL_DEPTH 32

typedef const struct mg_c_fib fib_t;
typedef const struct mg_c_counters counters_t;

static inline uint8_t u8(const uint8_t *b, int o) { return b[o]; }
static inline uint16_t be16(const uint8_t *b, int o) { uint16_t v; memcpy(&v, b + o, 2); return __builtin_bswap16(v); }
static inline uint32_t be32(const uint8_t *b, int o) { uint32_t v; memcpy(&v, b + o, 4); return __builtin_bswap32(v); }
static inline void set_u8(uint8_t *b, int o, uint8_t v) { b[o] = v; }
static inline void set_be16(uint8_t *b, int o, uint16_t v) { v = __builtin_bswap16(v); memcpy(b + o, &v, 2); }
static inline void set_be32(uint8_t *b, int o, uint32_t v) { v = __builtin_bswap32(v); memcpy(b + o, &v, 4); }

/* A few template bytes in 8- and 4-byte words (PacketBytes.copySmall). */
static inline void copy_small(uint8_t *to, const uint8_t *from, int count)
{
    int i = 0;
    for (; i + 8 <= count; i += 8) { uint64_t w; memcpy(&w, from + i, 8); memcpy(to + i, &w, 8); }
    if (i + 4 <= count) { uint32_t w; memcpy(&w, from + i, 4); memcpy(to + i, &w, 4); i += 4; }
    for (; i < count; i++) to[i] = from[i];
}

/* A verdict: the egress port (>= 0), or minus the drop reason. */
#define DROP(r) (-(int)(r))

static inline struct mg_c_ipv6 ipv6_at(const uint8_t *b, int o)
{
    struct mg_c_ipv6 a = { (uint64_t)be32(b, o) << 32 | be32(b, o + 4), (uint64_t)be32(b, o + 8) << 32 | be32(b, o + 12) };
    return a;
}
static inline struct mg_c_ipv6 ipv4_mapped(uint32_t v4) { struct mg_c_ipv6 a = { 0, 0xFFFF00000000ull | v4 }; return a; }
static inline int same_address(struct mg_c_ipv6 a, struct mg_c_ipv6 b) { return a.high == b.high && a.low == b.low; }

/* Internet checksum (RFC 1071) and its update (RFC 1624), as Wire/Checksum.swift. */
static inline uint32_t csum_sum(const uint8_t *b, int off, int count, uint32_t initial)
{
    uint64_t acc = initial;
    int i = off, end = off + count;
    while (i + 4 <= end) { acc += be32(b, i); i += 4; }
    if (i + 2 <= end) { acc += be16(b, i); i += 2; }
    if (i < end) acc += (uint64_t)u8(b, i) << 8;
    while (acc >> 32) acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    return (uint32_t)acc;
}
static inline uint16_t csum_finish(uint32_t s)
{
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)~s;
}
static inline uint16_t csum_update(uint16_t c, uint16_t old, uint16_t new_)
{
    uint32_t s = (uint32_t)(uint16_t)~c + (uint16_t)~old + new_;
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)~s;
}
static inline void ipv4_set_ttl(uint8_t *b, int ip, uint8_t ttl)
{
    uint16_t old = be16(b, ip + 8), new_ = (uint16_t)ttl << 8 | (old & 0xFF);
    set_be16(b, ip + 8, new_);
    set_be16(b, ip + 10, csum_update(be16(b, ip + 10), old, new_));
}
static inline int ipv4_checksum_ok(const uint8_t *b, int ip, int hl) { return csum_finish(csum_sum(b, ip, hl, 0)) == 0; }

/* Flow hash (Dataplane/FlowHash.swift). */
#define SEED 0x4D504C53u
static inline uint32_t mix(uint32_t h, uint32_t w)
{
    uint32_t k = w * 0xCC9E2D51u;
    k = (k << 15 | k >> 17) * 0x1B873593u;
    uint32_t x = h ^ k;
    return (x << 13 | x >> 19) * 5 + 0xE6546B64u;
}
static inline uint32_t finish(uint32_t x)
{
    x ^= x >> 16; x *= 0x85EBCA6Bu;
    x ^= x >> 13; x *= 0xC2B2AE35u;
    return x ^ x >> 16;
}
static inline uint32_t hash_ipv4(const uint8_t *b, int ip, int end, uint32_t h)
{
    h = mix(h, be32(b, ip + 12));
    h = mix(h, be32(b, ip + 16));
    uint8_t proto = u8(b, ip + 9);
    h = mix(h, proto);
    int hl = (u8(b, ip) & 0xF) << 2;
    if ((proto == 6 || proto == 17) && (be16(b, ip + 6) & 0x3FFF) == 0 && ip + hl + 4 <= end) h = mix(h, be32(b, ip + hl));
    return h;
}
static inline uint32_t hash_ipv6(const uint8_t *b, int ip, int end, uint32_t h)
{
    for (int i = ip + 8; i < ip + 40; i += 4) h = mix(h, be32(b, i));
    uint8_t nh = u8(b, ip + 6);
    h = mix(h, nh);
    if ((nh == 6 || nh == 17) && ip + 44 <= end) h = mix(h, be32(b, ip + 40));
    return h;
}
static inline uint32_t hash_ethernet(const uint8_t *b, int e, int end)
{
    uint32_t h = mix(SEED, be32(b, e));
    h = mix(h, be32(b, e + 4));
    h = mix(h, be32(b, e + 8));
    uint16_t type = be16(b, e + 12);
    int ip = e + ETH;
    if (type == 0x8100 && ip + 4 <= end) { type = be16(b, ip + 2); ip += 4; }
    h = mix(h, type);
    if (type == 0x0800 && ip + 20 <= end) h = hash_ipv4(b, ip, end, h);
    else if (type == 0x86DD && ip + 40 <= end) h = hash_ipv6(b, ip, end, h);
    return finish(h);
}
static inline uint32_t hash_label_stack(const uint8_t *b, int top, int end)
{
    uint32_t h = SEED;
    for (int i = top; i + 4 <= end; i += 4) {
        uint32_t lse = be32(b, i), label = lse >> 12;
        if (label == 7 && i + 8 <= end) return finish(mix(SEED, be32(b, i + 4) >> 12));
        if (label >= 16) h = mix(h, label);
        if (lse & 0x100) break;
    }
    return finish(h);
}

/* Tables (FIB/FIBSnapshot.swift). */
static inline struct mg_c_ilm ilm(fib_t *fib, uint32_t label) { return fib->directory[label >> 12][label & 4095]; }
static inline int vni_lookup(fib_t *fib, uint32_t vni, uint32_t *action)
{
    uint32_t v = fib->vni_directory[(vni >> 12) & 4095][vni & 4095];
    if (!v) return 0;
    *action = v - 1;
    return 1;
}
static inline uint32_t lookup_v4(fib_t *fib, uint16_t vrf, uint32_t address)
{
    struct mg_c_vrf v = fib->vrfs[vrf];
    uint32_t best = v.v4_default, node = v.v4_root, shift = 24;
    for (;;) {
        struct mg_c_lpm_slot s = fib->lpm_v4[(size_t)node << 8 | ((address >> shift) & 0xFF)];
        if (s.leaf) best = s.leaf;
        if (s.child == 0 || shift == 0) return best;
        node = s.child;
        shift -= 8;
    }
}
static inline uint32_t lookup_v6(fib_t *fib, uint16_t vrf, struct mg_c_ipv6 a)
{
    struct mg_c_vrf v = fib->vrfs[vrf];
    uint32_t best = v.v6_default, node = v.v6_root;
    for (int depth = 0; depth < 16; depth++) {
        uint64_t word = depth < 8 ? a.high : a.low;
        struct mg_c_lpm_slot s = fib->lpm_v6[(size_t)node << 8 | ((word >> (56 - 8 * (depth & 7))) & 0xFF)];
        if (s.leaf) best = s.leaf;
        if (s.child == 0) return best;
        node = s.child;
    }
    return best;
}
#define NO_TARGET 0x7FFFFFFFu
/* FIBSnapshot.resolveBackup: the backup's member (or second choice) when up, else 0. */
static __attribute__((noinline)) const struct mg_c_nexthop *resolve_backup(fib_t *fib, uint32_t backup, uint32_t bucket)
{
    if (backup == NO_TARGET) return 0;
    size_t slot = backup & 0x7FFFFFFF;
    if (backup & GROUP_BIT) {
        size_t b = slot * 4096 + bucket;
        slot = fib->group_buckets[b];
        if (fib->liveness[slot]) slot = fib->group_buckets[(size_t)fib->group_count * 4096 + b];
    }
    return fib->liveness[slot] ? 0 : &fib->next_hops[slot];
}
/* Pipeline.backupFlowHash: a next hop falling back to a group backup hashes the frame as written. */
static __attribute__((noinline)) uint32_t backup_flow_hash(const uint8_t *b, int payload, int end, uint16_t ether_type)
{
    if (ether_type == 0x8847) return hash_label_stack(b, payload, end);
    if (ether_type == 0x0800) return finish(hash_ipv4(b, payload, end, SEED));
    return finish(hash_ipv6(b, payload, end, SEED));
}
/* FIBSnapshot.resolveLive: the target's next hop while up, else a bucket's second choice, else the backup. */
static inline const struct mg_c_nexthop *resolve(fib_t *fib, uint32_t target, uint32_t hash, const uint8_t *frame,
                                                 int payload, int end, uint16_t ether_type)
{
    uint32_t bucket = hash & 4095;
    size_t slot;
    if (target & GROUP_BIT) {
        size_t b = (size_t)(target & 0x7FFFFFFF) * 4096 + bucket;
        slot = fib->group_buckets[b];
        if (!fib->liveness[slot]) return &fib->next_hops[slot];
        size_t second = fib->group_buckets[(size_t)fib->group_count * 4096 + b];
        if (!fib->liveness[second]) return &fib->next_hops[second];
    } else {
        slot = target & 0x7FFFFFFF;
        if (!fib->liveness[slot]) return &fib->next_hops[slot];
        if (fib->next_hops[slot].backup & GROUP_BIT && fib->next_hops[slot].backup != NO_TARGET)
            bucket = backup_flow_hash(frame, payload, end, ether_type) & 4095;
    }
    return resolve_backup(fib, fib->next_hops[slot].backup, bucket);
}
/* Pipeline.labelsFor: the backup labels while the action's next hop is down. */
static inline int labels_for(fib_t *fib, const struct mg_c_action *a, const uint8_t **templates)
{
    if (a->backup_label_count && !(a->target & GROUP_BIT) && fib->liveness[a->target & 0x7FFFFFFF]) {
        *templates = a->area + 4 * a->label_count;
        return (int)a->backup_label_count;
    }
    *templates = a->area;
    return a->label_count;
}
static inline int port_owns(fib_t *fib, const struct mg_c_port *p, struct mg_c_ipv6 a)
{
    for (uint32_t i = p->address_start, e = i + p->address_count; i < e; i++)
        if (same_address(fib->addresses[i], a)) return 1;
    return 0;
}
static inline void count(counters_t *c, uint32_t action, uint64_t bytes)
{
    c->entries[action].packets += 1;
    c->entries[action].bytes += bytes;
}

/* Output: next hop, MTU, Ethernet header. */
static inline int forward(struct mg_c_frame *f, uint8_t *b, int payload, int end, uint16_t ether_type, uint32_t target,
                          uint32_t hash, fib_t *fib)
{
    const struct mg_c_nexthop *nh = resolve(fib, target, hash, b, payload, end, ether_type);
    if (!nh) return DROP(MG_NEXT_HOP_DOWN);
    if (end - payload > nh->mtu) return DROP(MG_MTU_EXCEEDED);
    int start = payload - nh->l2_size - 2;
    memcpy(b + start, &nh->l2[0], 8);
    if (nh->l2_size == 16) memcpy(b + start + 8, &nh->l2[1], 8);
    else { uint32_t w = (uint32_t)nh->l2[1]; memcpy(b + start + 8, &w, 4); }
    set_be16(b, payload - 2, ether_type);
    f->offset = start;
    f->length = end - start;
    return nh->port;
}

static inline int push_labels(uint8_t *b, int payload, const struct mg_c_action *a, uint32_t dynamic, fib_t *fib)
{
    const uint8_t *templates;
    int n = labels_for(fib, a, &templates), start = payload - 4 * n;
    if (start < ETH + VLAN_TAG) return start;
    for (int i = 0; i < n; i++) {
        uint32_t t;
        memcpy(&t, templates + 4 * i, 4);
        set_be32(b, start + 4 * i, t | dynamic);
    }
    return start;
}

static inline int checked_ipv4(const uint8_t *b, int ip, int end)
{
    if (ip + 20 > end) return -1;
    uint8_t vihl = u8(b, ip);
    int hl = (vihl & 0xF) << 2;
    if (vihl >> 4 != 4 || hl < 20 || ip + hl > end) return -1;
    int total = be16(b, ip + 2);
    if (total < hl || ip + total > end) return -1;
    return ip + total;
}

static inline int checked_ipv6(const uint8_t *b, int ip, int end)
{
    if (ip + 40 > end || u8(b, ip) >> 4 != 6) return -1;
    int e = ip + 40 + be16(b, ip + 4);
    return e > end ? -1 : e;
}

/* uniform_ttl < 0: pipe. Returns 0 or a drop reason. */
static inline int set_exposed_ip_ttl(uint8_t *b, int ip, int end, int is_v6, int uniform_ttl)
{
    if (is_v6) {
        if (ip + 40 > end) return MG_TOO_SHORT;
        if (u8(b, ip) >> 4 != 6) return MG_MALFORMED;
        if (uniform_ttl >= 0) set_u8(b, ip + 7, (uint8_t)uniform_ttl);
        else {
            uint8_t hl = u8(b, ip + 7);
            if (hl <= 1) return MG_TTL_EXPIRED;
            set_u8(b, ip + 7, hl - 1);
        }
    } else {
        if (checked_ipv4(b, ip, end) < 0) return ip + 20 > end ? MG_TOO_SHORT : MG_MALFORMED;
        if (uniform_ttl >= 0) ipv4_set_ttl(b, ip, (uint8_t)uniform_ttl);
        else {
            if (u8(b, ip + 8) <= 1) return MG_TTL_EXPIRED;
            ipv4_set_ttl(b, ip, u8(b, ip + 8) - 1);
        }
    }
    return MG_NONE;
}

static inline int route(struct mg_c_frame *f, uint8_t *b, int ip, int end, int is_v6, uint16_t vrf, int decrement,
                        fib_t *fib, counters_t *c)
{
    uint32_t leaf;
    uint8_t ttl, tc;
    if (is_v6) {
        leaf = lookup_v6(fib, vrf, ipv6_at(b, ip + 24));
        ttl = u8(b, ip + 7);
        tc = (uint8_t)(be16(b, ip) >> 4) >> 5;
    } else {
        leaf = lookup_v4(fib, vrf, be32(b, ip + 16));
        ttl = u8(b, ip + 8);
        tc = u8(b, ip + 1) >> 5;
    }
    if (leaf == 0) return DROP(MG_NO_ROUTE);
    uint8_t new_ttl = ttl;
    if (decrement) {
        if (ttl <= 1) return DROP(MG_TTL_EXPIRED);
        new_ttl = ttl - 1;
        if (is_v6) set_u8(b, ip + 7, new_ttl); else ipv4_set_ttl(b, ip, new_ttl);
    }
    uint32_t id = leaf - 1;
    count(c, id, (uint64_t)f->length);
    const struct mg_c_action *a = &fib->actions[id];
    uint32_t hash = (a->target & GROUP_BIT)
        ? finish(is_v6 ? hash_ipv6(b, ip, end, SEED) : hash_ipv4(b, ip, end, SEED)) : 0;
    if (a->label_count == 0)
        return forward(f, b, ip, end, is_v6 ? 0x86DD : 0x0800, a->target, hash, fib);
    uint32_t dynamic = (a->flags & FLAG_UNIFORM) ? (uint32_t)tc << 9 | new_ttl : 0;
    int start = push_labels(b, ip, a, dynamic, fib);
    if (start < ETH + VLAN_TAG) return DROP(MG_NO_HEADROOM);
    return forward(f, b, start, end, 0x8847, a->target, hash, fib);
}

static inline int ip_after_pop(struct mg_c_frame *f, uint8_t *b, int ip, int end, int is_v6, int uniform_ttl,
                               uint16_t vrf, fib_t *fib, counters_t *c)
{
    int r = set_exposed_ip_ttl(b, ip, end, is_v6, uniform_ttl);
    if (r) return DROP(r);
    return route(f, b, ip, end, is_v6, vrf, 0, fib, c);
}

/* Whether the entries from `from` on reach S=1 before the frame's end and within MAX_LABEL_DEPTH of `top`. */
static inline int stack_is_terminated(const uint8_t *b, int from, int top, int end)
{
    int limit = top + 4 * MAX_LABEL_DEPTH;
    if (end < limit) limit = end;
    for (int o = from; o + 4 <= limit; o += 4)
        if (u8(b, o + 2) & 1) return 1;
    return 0;
}

static inline int swap(struct mg_c_frame *f, uint8_t *b, uint32_t lse, int off, int top, int end,
                       const struct mg_c_action *a, fib_t *fib)
{
    uint8_t new_ttl = (uint8_t)lse - 1;
    int payload = off + 4, bottom = (lse & 0x100) != 0;
    int n = a->label_count;
    if (n == 0) {
        uint16_t ether_type;
        if (a->payload == PAYLOAD_MPLS) {
            if (bottom) return DROP(MG_BOS_MISMATCH);
            if (!stack_is_terminated(b, payload, top, end)) return DROP(MG_NO_BOTTOM_OF_STACK);
            if (a->flags & FLAG_UNIFORM) set_u8(b, payload + 3, new_ttl);
            ether_type = 0x8847;
        } else {
            if (!bottom) return DROP(MG_BOS_MISMATCH);
            int is_v6 = a->payload == PAYLOAD_IPV6;
            int r = set_exposed_ip_ttl(b, payload, end, is_v6, (a->flags & FLAG_UNIFORM) ? new_ttl : -1);
            if (r) return DROP(r);
            ether_type = is_v6 ? 0x86DD : 0x0800;
        }
        uint32_t hash = (a->target & GROUP_BIT) ? hash_label_stack(b, top, end) : 0;
        return forward(f, b, payload, end, ether_type, a->target, hash, fib);
    }
    if (!bottom && !stack_is_terminated(b, payload, top, end)) return DROP(MG_NO_BOTTOM_OF_STACK);
    const uint8_t *templates;
    int count = labels_for(fib, a, &templates);
    int labels = payload - 4 * count;
    if (labels < ETH + VLAN_TAG) return DROP(MG_NO_HEADROOM);
    uint32_t hash = (a->target & GROUP_BIT) ? hash_label_stack(b, top, end) : 0;
    uint32_t dynamic = ((lse >> 9) & 7) << 9 | new_ttl;
    for (int i = 0; i < count; i++) {
        uint32_t t;
        memcpy(&t, templates + 4 * i, 4);
        set_be32(b, labels + 4 * i, t | dynamic);
    }
    if (bottom) set_u8(b, payload - 2, u8(b, payload - 2) | 1);
    return forward(f, b, labels, end, 0x8847, a->target, hash, fib);
}

static inline int pop_to_ip(struct mg_c_frame *f, uint8_t *b, uint8_t ttl, int ip, int end, const struct mg_c_action *a,
                            fib_t *fib, counters_t *c)
{
    int is_v6 = a->payload == PAYLOAD_IPV6;
    int uniform_ttl = (a->flags & FLAG_UNIFORM) ? (uint8_t)(ttl - 1) : -1;
    if (a->flags & FLAG_LOOKUP_IN_VRF) return ip_after_pop(f, b, ip, end, is_v6, uniform_ttl, a->vrf, fib, c);
    int r = set_exposed_ip_ttl(b, ip, end, is_v6, uniform_ttl);
    if (r) return DROP(r);
    uint32_t hash = (a->target & GROUP_BIT)
        ? finish(is_v6 ? hash_ipv6(b, ip, end, SEED) : hash_ipv4(b, ip, end, SEED)) : 0;
    return forward(f, b, ip, end, is_v6 ? 0x86DD : 0x0800, a->target, hash, fib);
}

static inline int vxlan_encap(struct mg_c_frame *f, uint8_t *b, int inner, int end, const struct mg_c_action *a,
                              fib_t *fib)
{
    uint32_t hash = hash_ethernet(b, inner, end);
    int v6 = (a->flags & FLAG_IPV6_UNDERLAY) != 0;
    int ip_size = v6 ? 40 : 20;
    int udp = inner - 8 - 8, ip = udp - ip_size;
    if (ip < ETH + VLAN_TAG) return DROP(MG_NO_HEADROOM);
    copy_small(b + inner - 8, a->area + 40, 8);
    copy_small(b + ip, a->area, ip_size);
    int udp_length = end - udp;
    set_be16(b, udp, 49152 | ((uint16_t)hash & 0x3FFF));
    set_be16(b, udp + 2, (uint16_t)a->aux);
    set_be16(b, udp + 4, (uint16_t)udp_length);
    set_be16(b, udp + 6, 0);
    if (v6) {
        set_be16(b, ip + 4, (uint16_t)udp_length);
        uint32_t s = csum_sum(b, ip + 8, 32, 0);
        s = csum_sum(b, udp, udp_length, s + (uint32_t)(udp_length >> 16) + (uint32_t)(udp_length & 0xFFFF) + 17);
        uint16_t cs = csum_finish(s);
        set_be16(b, udp + 6, cs == 0 ? 0xFFFF : cs);
    } else {
        uint16_t total = (uint16_t)(end - ip);
        set_be16(b, ip + 2, total);
        set_be16(b, ip + 10, csum_finish(a->aux_count + total));
    }
    return forward(f, b, ip, end, v6 ? 0x86DD : 0x0800, a->target, hash, fib);
}

static inline int mpls_input(struct mg_c_frame *f, uint8_t *b, int top, int end, uint16_t vrf, fib_t *fib,
                             counters_t *c)
{
    int off = top;
    uint64_t rx = (uint64_t)f->length;
    unsigned inherited = 0x100;
    for (int depth = 0; depth < MAX_LABEL_DEPTH; depth++) {
        if (off + 4 > end) return DROP(MG_TOO_SHORT);
        uint32_t lse = be32(b, off);
        uint32_t label = lse >> 12;
        if (inherited <= 0xFF && label != 7) lse = (lse & ~0xFFu) | inherited;
        uint8_t ttl = (uint8_t)lse;
        int bottom = (lse & 0x100) != 0;
        if (label < 16) {
            switch (label) {
            case 0: case 2:
                if (ttl <= 1) return DROP(MG_TTL_EXPIRED);
                if (!bottom) { off += 4; continue; }
                return ip_after_pop(f, b, off + 4, end, label == 2, (uint8_t)(ttl - 1), vrf, fib, c);
            case 1: case 13: case 14:
                return DROP(MG_OAM);
            case 3:
                return DROP(MG_ILLEGAL_LABEL);
            case 7:
                if (bottom) return DROP(MG_BOS_MISMATCH);
                if (off + 8 > end) return DROP(MG_TOO_SHORT);
                if (be32(b, off + 4) & 0x100) return DROP(MG_BOS_MISMATCH);
                off += 8;
                continue;
            default:
                return DROP(MG_RESERVED_LABEL);
            }
        }
        struct mg_c_ilm e = ilm(fib, label);
        switch (e.op) {
        case OP_DROP:
            count(c, e.action, rx);
            return DROP(MG_FIB_DROP);
        case OP_POP:
            if (ttl <= 1) return DROP(MG_TTL_EXPIRED);
            if (bottom) return DROP(MG_BOS_MISMATCH);
            if (off + 8 > end) return DROP(MG_TOO_SHORT);
            count(c, e.action, rx);
            inherited = (e.flags & FLAG_UNIFORM) ? (uint8_t)(ttl - 1) : 0x100;
            off += 4;
            continue;
        case OP_SWAP:
            if (ttl <= 1) return DROP(MG_TTL_EXPIRED);
            count(c, e.action, rx);
            return swap(f, b, lse, off, top, end, &fib->actions[e.action], fib);
        case OP_POP_TO_IP:
            if (ttl <= 1) return DROP(MG_TTL_EXPIRED);
            if (!bottom) return DROP(MG_BOS_MISMATCH);
            count(c, e.action, rx);
            return pop_to_ip(f, b, ttl, off + 4, end, &fib->actions[e.action], fib, c);
        case OP_POP_TO_VXLAN: {
            if (ttl == 1) return DROP(MG_OAM);
            if (ttl == 0) return DROP(MG_TTL_EXPIRED);
            if (!bottom) return DROP(MG_BOS_MISMATCH);
            const struct mg_c_action *a = &fib->actions[e.action];
            int inner = off + 4;
            if (a->flags & FLAG_CONTROL_WORD) {
                if (inner + 4 > end) return DROP(MG_TOO_SHORT);
                if (u8(b, inner) >> 4) return DROP(MG_BAD_CONTROL_WORD);
                inner += 4;
            }
            if (end - inner < ETH) return DROP(MG_TOO_SHORT);
            count(c, e.action, rx);
            return vxlan_encap(f, b, inner, end, a, fib);
        }
        default:
            return DROP(MG_UNKNOWN_LABEL);
        }
    }
    return DROP(MG_MALFORMED);
}

static inline int ip_input(struct mg_c_frame *f, uint8_t *b, int ip, int end, int is_v6, const struct mg_c_port *port,
                           fib_t *fib, counters_t *c)
{
    int ip_end;
    if (is_v6) {
        ip_end = checked_ipv6(b, ip, end);
        if (ip_end < 0) return DROP(ip + 40 > end ? MG_TOO_SHORT : MG_MALFORMED);
        if (port->address_count && port_owns(fib, port, ipv6_at(b, ip + 24))) return DROP(MG_NOT_FOR_US);
    } else {
        if (ip + 20 > end) return DROP(MG_TOO_SHORT);
        ip_end = checked_ipv4(b, ip, end);
        if (ip_end < 0) return DROP(MG_MALFORMED);
        if (port->address_count && port_owns(fib, port, ipv4_mapped(be32(b, ip + 16)))) return DROP(MG_NOT_FOR_US);
        if (!ipv4_checksum_ok(b, ip, (u8(b, ip) & 0xF) << 2)) return DROP(MG_BAD_IP_CHECKSUM);
    }
    f->length = ip_end - f->offset;
    return route(f, b, ip, ip_end, is_v6, port->vrf, 1, fib, c);
}

static inline int vxlan_input(struct mg_c_frame *f, uint8_t *b, int ip, int end, int is_v6, const struct mg_c_port *port,
                              fib_t *fib, counters_t *c)
{
    int udp, ip_end;
    struct mg_c_ipv6 source;
    if (is_v6) {
        ip_end = checked_ipv6(b, ip, end);
        if (ip_end < 0) return DROP(ip + 40 > end ? MG_TOO_SHORT : MG_MALFORMED);
        if (!port_owns(fib, port, ipv6_at(b, ip + 24))) return DROP(MG_NOT_FOR_US);
        if (u8(b, ip + 6) != 17) return DROP(MG_NOT_FOR_US);
        udp = ip + 40;
        source = ipv6_at(b, ip + 8);
    } else {
        if (ip + 20 > end) return DROP(MG_TOO_SHORT);
        ip_end = checked_ipv4(b, ip, end);
        if (ip_end < 0) return DROP(MG_MALFORMED);
        if (!port_owns(fib, port, ipv4_mapped(be32(b, ip + 16)))) return DROP(MG_NOT_FOR_US);
        if (u8(b, ip + 9) != 17) return DROP(MG_NOT_FOR_US);
        if (be16(b, ip + 6) & 0x3FFF) return DROP(MG_UNDERLAY_FRAGMENT);
        int hl = (u8(b, ip) & 0xF) << 2;
        if (!ipv4_checksum_ok(b, ip, hl)) return DROP(MG_BAD_IP_CHECKSUM);
        udp = ip + hl;
        source = ipv4_mapped(be32(b, ip + 12));
    }
    if (udp + 8 > ip_end) return DROP(MG_TOO_SHORT);
    if (be16(b, udp + 2) != port->vxlan_port) return DROP(MG_NOT_FOR_US);
    int udp_length = be16(b, udp + 4);
    if (udp_length < 8 || udp + udp_length > ip_end) return DROP(MG_MALFORMED);
    int vx = udp + 8, payload_end = udp + udp_length;
    if (vx + 8 > payload_end) return DROP(MG_TOO_SHORT);
    if (!(u8(b, vx) & 0x08)) return DROP(MG_VXLAN_NO_I_FLAG);
    uint32_t id;
    if (!vni_lookup(fib, be32(b, vx + 4) >> 8, &id)) return DROP(MG_UNKNOWN_VNI);
    const struct mg_c_action *a = &fib->actions[id];
    int allowed = 0;
    const struct mg_c_ipv6 *vteps = (const struct mg_c_ipv6 *)(uintptr_t)a->vteps;
    if (vteps)
        for (uint32_t i = 0; i < a->aux_count; i++)
            if (same_address(vteps[i], source)) { allowed = 1; break; }
    if (!allowed) return DROP(MG_VTEP_NOT_ALLOWED);
    int inner = vx + 8;
    if (payload_end - inner < ETH) return DROP(MG_TOO_SHORT);
    count(c, id, (uint64_t)f->length);
    uint32_t hash = (a->target & GROUP_BIT) ? hash_ethernet(b, inner, payload_end) : 0;
    int payload = inner;
    if (a->flags & FLAG_CONTROL_WORD) { payload -= 4; set_be32(b, payload, 0); }
    int start = push_labels(b, payload, a, 0, fib);
    return forward(f, b, start, payload_end, 0x8847, a->target, hash, fib);
}

/* IP on a core port, as Pipeline.controlInput: BFD (UDP to 3784) is control, the rest the host's. */
static int control_input(const uint8_t *b, int ip, int end, int is6)
{
    int udp;
    if (is6) {
        if (end - ip < 48 || u8(b, ip + 6) != 17) return DROP(MG_NOT_FOR_US);
        udp = ip + 40;
    } else {
        if (end - ip < 20) return DROP(MG_NOT_FOR_US);
        int ihl = (u8(b, ip) & 0x0F) << 2;
        if (ihl < 20 || u8(b, ip + 9) != 17 || (be16(b, ip + 6) & 0x3FFF)) return DROP(MG_NOT_FOR_US);
        udp = ip + ihl;
        if (end - udp < 8) return DROP(MG_NOT_FOR_US);
    }
    return be16(b, udp + 2) == 3784 ? DROP(MG_CONTROL) : DROP(MG_NOT_FOR_US);
}

static inline int classify(struct mg_c_frame *f, fib_t *fib, counters_t *c)
{
    uint8_t *b = f->buffer;
    int start = f->offset, end = start + f->length;
    if (end - start < ETH) return DROP(MG_TOO_SHORT);
    const struct mg_c_port *port = &fib->ports[f->ingress];
    uint64_t mac = (uint64_t)be16(b, start) << 32 | be32(b, start + 2);
    if (mac != port->mac) return DROP(MG_NOT_FOR_US);
    uint16_t type = be16(b, start + 12);
    int l3 = start + ETH;
    if (type == 0x8100) {
        if (end - start < ETH + VLAN_TAG) return DROP(MG_TOO_SHORT);
        type = be16(b, l3 + 2);
        l3 += VLAN_TAG;
    }
    switch (type) {
    case 0x8847:
        if (port->role != ROLE_CORE) return DROP(MG_MPLS_NOT_ENABLED);
        return mpls_input(f, b, l3, end, port->vrf, fib, c);
    case 0x0800: case 0x86DD:
        switch (port->role) {
        case ROLE_DC: return vxlan_input(f, b, l3, end, type == 0x86DD, port, fib, c);
        case ROLE_VRF: return ip_input(f, b, l3, end, type == 0x86DD, port, fib, c);
        default: return control_input(b, l3, end, type == 0x86DD);
        }
    default:
        return DROP(MG_NOT_FOR_US);
    }
}

/* One frame, as Pipeline.processFrame. */
static inline void process_frame(fib_t *fib, struct mg_c_frame *f, counters_t *c)
{
    int in = f->ingress;
    if (in >= fib->port_count) {
        c->drops[MG_UNKNOWN_PORT] += 1;
        f->egress = 0xFFFF;
        f->drop = MG_UNKNOWN_PORT;
        return;
    }
    c->ports[in].rx_packets += 1;
    c->ports[in].rx_bytes += (uint64_t)f->length;
    int v = classify(f, fib, c);
    if (v >= 0) {
        f->egress = (uint16_t)v;
        f->drop = MG_NONE;
        c->ports[v].tx_packets += 1;
        c->ports[v].tx_bytes += (uint64_t)f->length;
    } else {
        f->egress = 0xFFFF;
        f->drop = (uint8_t)-v;
        c->drops[-v] += 1;
        c->ports[in].drop_packets += 1;
    }
}

/* Batch prefetch, as Dataplane/Prefetch.swift: frame heads 12 ahead, ILM entries or VNI slots 8 ahead, actions and
 * counters 4 ahead, allowed VTEPs 2 ahead; only with 16,384 actions or more. */
enum { PREFETCH_MINIMUM_ACTIONS = 16384, HEAD_DISTANCE = 12, ENTRY_DISTANCE = 8, ACTION_DISTANCE = 4, VTEP_DISTANCE = 2 };

static inline struct mg_c_ilm *ilm_entry_address(fib_t *fib, const struct mg_c_frame *f)
{
    if (f->length < 18) return 0;
    const uint8_t *head = f->buffer + f->offset;
    if (be16(head, 12) != 0x8847) return 0;
    uint32_t label = be32(head, 14) >> 12;
    return &fib->directory[label >> 12][label & 4095];
}
static inline const uint32_t *vni_entry_address(fib_t *fib, const struct mg_c_frame *f)
{
    if (f->length < 50 || f->ingress >= fib->port_count || fib->ports[f->ingress].role != ROLE_DC) return 0;
    const uint8_t *head = f->buffer + f->offset;
    if (be16(head, 12) != 0x0800) return 0;
    int hl = (head[14] & 0xF) << 2;
    if (f->length < 14 + hl + 16 || head[23] != 17) return 0;
    uint32_t vni = be32(head, 14 + hl + 12) >> 8;
    return &fib->vni_directory[(vni >> 12) & 4095][vni & 4095];
}
static inline int ftn_key(fib_t *fib, const struct mg_c_frame *f, uint16_t *vrf, uint32_t *address)
{
    if (f->length < 34 || f->ingress >= fib->port_count) return 0;
    const struct mg_c_port *port = &fib->ports[f->ingress];
    if (port->role != ROLE_VRF) return 0;
    const uint8_t *head = f->buffer + f->offset;
    if (be16(head, 12) != 0x0800) return 0;
    *vrf = port->vrf;
    *address = be32(head, 30);
    return 1;
}
static inline const struct mg_c_lpm_slot *ftn_deep_slot(fib_t *fib, uint16_t vrf, uint32_t address)
{
    struct mg_c_lpm_slot s0 = fib->lpm_v4[(size_t)fib->vrfs[vrf].v4_root << 8 | address >> 24];
    if (!s0.child) return 0;
    struct mg_c_lpm_slot s1 = fib->lpm_v4[(size_t)s0.child << 8 | ((address >> 16) & 0xFF)];
    if (!s1.child) return 0;
    return &fib->lpm_v4[(size_t)s1.child << 8 | ((address >> 8) & 0xFF)];
}
static inline void prefetch_head(const struct mg_c_frame *f) { __builtin_prefetch(f->buffer + f->offset, 0, 3); }
static inline void prefetch_entry(fib_t *fib, const struct mg_c_frame *f)
{
    uint32_t address;
    uint16_t vrf;
    const void *p = ilm_entry_address(fib, f);
    if (!p && ftn_key(fib, f, &vrf, &address)) p = ftn_deep_slot(fib, vrf, address);
    else if (!p) p = vni_entry_address(fib, f);
    if (p) __builtin_prefetch(p, 0, 3);
}
static inline long action_index(fib_t *fib, const struct mg_c_frame *f)
{
    struct mg_c_ilm *e = ilm_entry_address(fib, f);
    if (e) {
        struct mg_c_ilm entry = *e;
        return entry.op == OP_NONE ? -1 : (long)entry.action;
    }
    uint32_t address;
    uint16_t vrf;
    if (ftn_key(fib, f, &vrf, &address)) {
        uint32_t leaf = lookup_v4(fib, vrf, address);
        return leaf ? (long)leaf - 1 : -1;
    }
    const uint32_t *v = vni_entry_address(fib, f);
    if (v) return *v ? (long)*v - 1 : -1;
    return -1;
}
static inline void prefetch_action(fib_t *fib, const struct mg_c_frame *f, counters_t *c)
{
    long i = action_index(fib, f);
    if (i < 0) return;
    __builtin_prefetch(&fib->actions[i], 0, 3);
    __builtin_prefetch(&c->entries[i], 1, 3);
}
static inline void prefetch_vteps(fib_t *fib, const struct mg_c_frame *f)
{
    const uint32_t *v = vni_entry_address(fib, f);
    if (!v || !*v) return;
    const void *vteps = (const void *)(uintptr_t)fib->actions[*v - 1].vteps;
    if (vteps) __builtin_prefetch(vteps, 0, 3);
}

void mg_c_process(const struct mg_c_fib *fib, struct mg_c_frame *frames, int n, const struct mg_c_counters *c)
{
    if (fib->action_count < PREFETCH_MINIMUM_ACTIONS) {
        for (int i = 0; i < n; i++) process_frame(fib, &frames[i], c);
        return;
    }
    for (int j = 0; j < n && j < HEAD_DISTANCE; j++) prefetch_head(&frames[j]);
    for (int j = 0; j < n && j < ENTRY_DISTANCE; j++) prefetch_entry(fib, &frames[j]);
    for (int j = 0; j < n && j < ACTION_DISTANCE; j++) prefetch_action(fib, &frames[j], c);
    for (int j = 0; j < n && j < VTEP_DISTANCE; j++) prefetch_vteps(fib, &frames[j]);
    for (int i = 0; i < n; i++) {
        if (i + HEAD_DISTANCE < n) prefetch_head(&frames[i + HEAD_DISTANCE]);
        if (i + ENTRY_DISTANCE < n) prefetch_entry(fib, &frames[i + ENTRY_DISTANCE]);
        if (i + ACTION_DISTANCE < n) prefetch_action(fib, &frames[i + ACTION_DISTANCE], c);
        if (i + VTEP_DISTANCE < n) prefetch_vteps(fib, &frames[i + VTEP_DISTANCE]);
        process_frame(fib, &frames[i], c);
    }
}

long mg_c_layout(int which)
{
    switch (which) {
    case 0: return sizeof(struct mg_c_ilm);
    case 1: return sizeof(struct mg_c_action);
    case 2: return offsetof(struct mg_c_action, target);
    case 3: return offsetof(struct mg_c_action, area);
    case 4: return sizeof(struct mg_c_nexthop);
    case 5: return offsetof(struct mg_c_nexthop, port);
    case 6: return offsetof(struct mg_c_nexthop, mtu);
    case 7: return sizeof(struct mg_c_port);
    case 8: return offsetof(struct mg_c_port, role);
    case 9: return sizeof(struct mg_c_frame);
    case 10: return offsetof(struct mg_c_frame, offset);
    case 11: return offsetof(struct mg_c_frame, ingress);
    case 12: return offsetof(struct mg_c_frame, egress);
    case 13: return offsetof(struct mg_c_frame, drop);
    case 14: return sizeof(struct mg_c_port_counters);
    case 15: return sizeof(struct mg_c_entry_counters);
    case 16: return sizeof(struct mg_c_ipv6);
    case 17: return offsetof(struct mg_c_action, vteps);
    case 18: return sizeof(struct mg_c_lpm_slot);
    case 19: return sizeof(struct mg_c_vrf);
    case 20: return offsetof(struct mg_c_port, address_start);
    case 21: return offsetof(struct mg_c_action, aux_count);
    case 22: return offsetof(struct mg_c_action, vrf);
    case 23: return offsetof(struct mg_c_nexthop, backup);
    case 24: return offsetof(struct mg_c_action, backup_label_count);
    default: return -1;
    }
}

const char *mg_c_drop_name(int r)
{
    static const char *const names[MG_REASONS] = {
        "none", "tooShort", "malformed", "notForUs", "mplsNotEnabled", "unknownLabel", "illegalLabel", "reservedLabel",
        "oam", "bosMismatch", "ttlExpired", "badControlWord", "mtuExceeded", "vxlanNoIFlag", "unknownVNI",
        "vtepNotAllowed", "noRoute", "fibDrop", "underlayFragment", "badIPChecksum", "noHeadroom", "frameTooLong",
        "unknownPort", "noBottomOfStack", "nextHopDown", "control", "splitHorizon", "flood", "bumRateLimited", "staticMACMoved",
        "xdpTransmitError",
    };
    return r >= 0 && r < MG_REASONS ? names[r] : 0;
}
