/* The same-work C baseline of MPLSGate's pipeline (performance issue): a C port of Sources/Dataplane/Pipeline.swift
 * that reads the very tables a Swift FIBSnapshot points at, and the Swift Frame and WorkerCounters memory, through
 * these mirrors of their layouts. The benchmark checks every size and offset against Swift's MemoryLayout
 * (mg_c_layout) and every drop reason's number (mg_c_drop_name) before it runs, and compares the two pipelines'
 * output bytes, verdicts and counters before it times them. */
#ifndef MG_BASELINE_H
#define MG_BASELINE_H
#include <stdint.h>

struct mg_c_ilm { uint32_t action; uint8_t op, flags, payload, reserved; };
struct mg_c_action {
    uint8_t op, flags, label_count, payload, tc, ttl;
    uint16_t vrf;
    uint32_t target, aux, aux_count, backup_label_count;
    uint64_t vteps;  /* vxlanToMPLS: address of aux_count allowed remote VTEPs */
    uint8_t area[96];
};
struct mg_c_nexthop { uint64_t l2[2]; uint16_t port, l2_size, mtu, reserved; uint32_t backup, reserved2; };
struct mg_c_port { uint64_t mac; uint8_t role, reserved; uint16_t vrf, vxlan_port, address_count; uint32_t address_start; };
struct mg_c_ipv6 { uint64_t high, low; };
struct mg_c_lpm_slot { uint32_t leaf, child; };
struct mg_c_vrf { uint32_t v4_root, v6_root, v4_default, v6_default; };
struct mg_c_frame { uint8_t *buffer; int32_t offset, length; uint16_t ingress, egress; uint8_t drop; uint32_t flood; };
struct mg_c_port_counters { uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, drop_packets; };
struct mg_c_entry_counters { uint64_t packets, bytes; };

/* Drop reasons in Swift's DropReason order (checked by name). */
enum {
    MG_NONE, MG_TOO_SHORT, MG_MALFORMED, MG_NOT_FOR_US, MG_MPLS_NOT_ENABLED, MG_UNKNOWN_LABEL, MG_ILLEGAL_LABEL,
    MG_RESERVED_LABEL, MG_OAM, MG_BOS_MISMATCH, MG_TTL_EXPIRED, MG_BAD_CONTROL_WORD, MG_MTU_EXCEEDED,
    MG_VXLAN_NO_I_FLAG, MG_UNKNOWN_VNI, MG_VTEP_NOT_ALLOWED, MG_NO_ROUTE, MG_FIB_DROP, MG_UNDERLAY_FRAGMENT,
    MG_BAD_IP_CHECKSUM, MG_NO_HEADROOM, MG_FRAME_TOO_LONG, MG_UNKNOWN_PORT, MG_NO_BOTTOM_OF_STACK, MG_NEXT_HOP_DOWN, MG_CONTROL,
    MG_SPLIT_HORIZON, MG_FLOOD, MG_BUM_RATE_LIMITED, MG_STATIC_MAC_MOVED, MG_XDP_TRANSMIT_ERROR, MG_REASONS
};

struct mg_c_fib {
    struct mg_c_ilm *const *directory;
    const struct mg_c_action *actions;
    long action_count;
    const struct mg_c_nexthop *next_hops;
    const uint32_t *group_buckets;  /* group_count x 4096 members, then as many second choices */
    long group_count;
    const uint8_t *liveness;        /* per next-hop slot: 0 up */
    uint32_t *const *vni_directory; /* 4096 pages of 4096 entries: action + 1, 0 none */
    const struct mg_c_lpm_slot *lpm_v4, *lpm_v6;
    const struct mg_c_vrf *vrfs;
    const struct mg_c_port *ports;
    int port_count;
    const struct mg_c_ipv6 *addresses; /* the ports' addresses */
};
struct mg_c_counters { uint64_t *drops; struct mg_c_port_counters *ports; struct mg_c_entry_counters *entries; };

/* Processes a batch in place, as Pipeline.process does. */
void mg_c_process(const struct mg_c_fib *fib, struct mg_c_frame *frames, int n, const struct mg_c_counters *c);

/* Sizes and offsets of the mirrors, for the layout check: which = 0.. (see mg_baseline.c); -1 past the last. */
long mg_c_layout(int which);

/* The name of drop reason `r` (Swift's spelling), or 0 past the last. */
const char *mg_c_drop_name(int r);

#endif
