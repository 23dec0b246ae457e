/* The same-work C baseline of MPLSGate's swap path (performance issue): it reads the very tables the Swift
 * FIBSnapshot points at and the Swift Frame and WorkerCounters memory, through these mirrors of their layouts.
 * The benchmark checks every size and offset against Swift's MemoryLayout before it runs (mg_c_layout). */
#ifndef MG_BASELINE_H
#define MG_BASELINE_H
#include <stdint.h>

struct mg_c_ilm { uint32_t action; uint8_t op, flags, payload, reserved; };
struct mg_c_action {
    uint8_t op, flags, label_count, payload, tc, ttl;
    uint16_t vrf;
    uint32_t target, aux, aux_count, reserved;
    uint64_t reserved2;
    uint8_t area[96];
};
struct mg_c_nexthop { uint64_t l2[2]; uint16_t port, l2_size, mtu, reserved; uint64_t reserved2; };
struct mg_c_port { uint64_t mac; uint8_t role, reserved; uint16_t vrf, vxlan_port, address_count; uint32_t address_start; };
struct mg_c_frame { uint8_t *buffer; int32_t offset, length; uint16_t ingress, egress; uint8_t drop; };
struct mg_c_port_counters { uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, drop_packets; };
struct mg_c_entry_counters { uint64_t packets, bytes; };

/* Drop reasons, as Swift's DropReason raw values (filled in by the benchmark). */
enum { MG_C_TOO_SHORT, MG_C_NOT_FOR_US, MG_C_MPLS_NOT_ENABLED, MG_C_UNKNOWN_LABEL, MG_C_RESERVED_LABEL,
       MG_C_TTL_EXPIRED, MG_C_NO_HEADROOM, MG_C_MTU_EXCEEDED, MG_C_UNKNOWN_PORT, MG_C_UNSUPPORTED, MG_C_REASONS };

struct mg_c_fib {
    struct mg_c_ilm *const *directory;
    const struct mg_c_action *actions;
    const struct mg_c_nexthop *next_hops;
    const struct mg_c_port *ports;
    int port_count;
    uint8_t reason[MG_C_REASONS];
};
struct mg_c_counters { uint64_t *drops; struct mg_c_port_counters *ports; struct mg_c_entry_counters *entries; };

/* Processes a batch: MPLS on core ports with the swap operation (what the swap benchmark's frames take); any other
 * case is dropped as "unsupported" (the baseline is for the swap path only). */
void mg_c_process(const struct mg_c_fib *fib, struct mg_c_frame *frames, int n, const struct mg_c_counters *c);

/* Sizes and offsets of the mirrors, for the layout check: which = 0.. (see mg_baseline.c). */
long mg_c_layout(int which);

#endif
