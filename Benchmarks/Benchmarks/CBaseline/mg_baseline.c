#include "mg_baseline.h"
#include <stddef.h>
#include <string.h>

static inline uint16_t be16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return __builtin_bswap16(v); }
static inline uint32_t be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
static inline void set_be16(uint8_t *p, uint16_t v) { v = __builtin_bswap16(v); memcpy(p, &v, 2); }
static inline void set_be32(uint8_t *p, uint32_t v) { v = __builtin_bswap32(v); memcpy(p, &v, 4); }

/* Returns the egress port, or -1 with *drop set: the same checks, in the same order, as Swift's pipeline on the
 * swap path (length, MAC, one 802.1Q tag, role guard, special labels, ILM, TTL, headroom, next hop, MTU). */
static inline int swap_frame(const struct mg_c_fib *fib, struct mg_c_frame *f, const struct mg_c_counters *c,
                             uint8_t *drop)
{
    uint8_t *b = f->buffer;
    int start = f->offset, end = start + f->length;
    if (end - start < 14) { *drop = fib->reason[MG_C_TOO_SHORT]; return -1; }
    const struct mg_c_port *port = &fib->ports[f->ingress];
    uint64_t mac = (uint64_t)be16(b + start) << 32 | be32(b + start + 2);
    if (mac != port->mac) { *drop = fib->reason[MG_C_NOT_FOR_US]; return -1; }
    uint16_t type = be16(b + start + 12);
    int l3 = start + 14;
    if (type == 0x8100) {
        if (end - start < 18) { *drop = fib->reason[MG_C_TOO_SHORT]; return -1; }
        type = be16(b + l3 + 2);
        l3 += 4;
    }
    if (type != 0x8847) { *drop = fib->reason[MG_C_UNSUPPORTED]; return -1; }
    if (port->role != 0) { *drop = fib->reason[MG_C_MPLS_NOT_ENABLED]; return -1; }
    if (l3 + 4 > end) { *drop = fib->reason[MG_C_TOO_SHORT]; return -1; }
    uint32_t lse = be32(b + l3);
    uint32_t label = lse >> 12;
    uint8_t ttl = (uint8_t)lse;
    if (label < 16) { *drop = fib->reason[MG_C_RESERVED_LABEL]; return -1; }
    struct mg_c_ilm e = fib->directory[label >> 12][label & 4095];
    if (e.op != 1) { *drop = fib->reason[e.op == 0 ? MG_C_UNKNOWN_LABEL : MG_C_UNSUPPORTED]; return -1; }
    if (ttl <= 1) { *drop = fib->reason[MG_C_TTL_EXPIRED]; return -1; }
    const struct mg_c_action *a = &fib->actions[e.action];
    c->entries[e.action].packets += 1;
    c->entries[e.action].bytes += (uint64_t)f->length;
    int n = a->label_count;
    uint32_t target = a->target;
    if (n == 0 || (target & 0x80000000u)) { *drop = fib->reason[MG_C_UNSUPPORTED]; return -1; }
    int payload = l3 + 4;
    int labels = payload - 4 * n;
    if (labels < 18) { *drop = fib->reason[MG_C_NO_HEADROOM]; return -1; }
    uint32_t dynamic = ((lse >> 9) & 7) << 9 | (uint32_t)(uint8_t)(ttl - 1);
    const uint8_t *templates = a->area;
    for (int i = 0; i < n; i++) {
        uint32_t t;
        memcpy(&t, templates + 4 * i, 4);
        set_be32(b + labels + 4 * i, t | dynamic);
    }
    if (lse & 0x100) b[payload - 2] |= 1;
    const struct mg_c_nexthop *nh = &fib->next_hops[target];
    if (end - labels > nh->mtu) { *drop = fib->reason[MG_C_MTU_EXCEEDED]; return -1; }
    int s = labels - nh->l2_size - 2;
    memcpy(b + s, &nh->l2[0], 8);
    if (nh->l2_size == 16) memcpy(b + s + 8, &nh->l2[1], 8);
    else memcpy(b + s + 8, &nh->l2[1], 4);
    set_be16(b + labels - 2, 0x8847);
    f->offset = s;
    f->length = end - s;
    return nh->port;
}

void mg_c_process(const struct mg_c_fib *fib, struct mg_c_frame *frames, int n, const struct mg_c_counters *c)
{
    for (int i = 0; i < n; i++) {
        struct mg_c_frame *f = &frames[i];
        int in = f->ingress;
        if (in >= fib->port_count) {
            c->drops[fib->reason[MG_C_UNKNOWN_PORT]] += 1;
            f->egress = 0xFFFF;
            f->drop = fib->reason[MG_C_UNKNOWN_PORT];
            continue;
        }
        uint64_t rx = (uint64_t)f->length;
        c->ports[in].rx_packets += 1;
        c->ports[in].rx_bytes += rx;
        uint8_t drop = 0;
        int out = swap_frame(fib, f, c, &drop);
        if (out >= 0) {
            f->egress = (uint16_t)out;
            f->drop = 0;
            c->ports[out].tx_packets += 1;
            c->ports[out].tx_bytes += (uint64_t)f->length;
        } else {
            f->egress = 0xFFFF;
            f->drop = drop;
            c->drops[drop] += 1;
            c->ports[in].drop_packets += 1;
        }
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
    default: return -1;
    }
}
