/* The maps of the fast tier's refused-redirect counters (bpf/xmit_errors.bpf.c), declared in both objects: the
 * steering program's object creates them with the fast tier's tables (so the agent always has them), the tracing
 * object reuses them. */
#ifndef MPLSGATE_XMIT_MAPS_H
#define MPLSGATE_XMIT_MAPS_H

/* ifindex -> port index, for every port of the agent (the agent writes it). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MG_FAST_MAX_PORTS);
    __type(key, __u32);
    __type(value, __u32);
} mg_fast_ifindex SEC(".maps");

/* The agent's network namespace (its inode number): tracepoints fire for every namespace. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} mg_fast_netns SEC(".maps");

/* Refused frames by port index: as the ingress port (a drop) and as the egress port (counted as sent, never left). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MG_FAST_MAX_PORTS);
    __type(key, __u32);
    __type(value, struct mg_fast_refused);
} mg_fast_refused SEC(".maps");

#endif
