/* Structs and constants shared by the XDP steering program (bpf/steer.bpf.c), the C shim and Swift.
 * One definition only: Tests/IOTests/SharedLayoutTests.swift pins the sizes and offsets Swift relies on. */
#ifndef MPLSGATE_XDP_H
#define MPLSGATE_XDP_H

#include <linux/types.h>

/* Port roles, equal to FIB.PortRole's raw values. */
#define MG_ROLE_CORE 0
#define MG_ROLE_DC 1
#define MG_ROLE_VRF 2

/* Addresses per port the program matches (dc: our VTEPs; vrf: the host's own addresses). */
#define MG_MAX_PORT_V4 16
#define MG_MAX_PORT_V6 16

/* Queues per device the XSKMAP can hold. */
#define MG_MAX_QUEUES 64
/* BFD control packets (RFC 5881): steered on core ports when addressed to one of the port's addresses. */
#define MG_BFD_PORT 3784

/* The one entry of the program's "mg_port" array map: what this port steers to AF_XDP. */
struct mg_port_config {
    __u8 role;            /* MG_ROLE_* */
    __u8 v4_count;        /* used entries of v4 */
    __u8 v6_count;        /* used entries of v6 */
    __u8 pad0;
    __u16 vxlan_port_be;  /* dc: VXLAN UDP destination port, network order */
    __u16 pad1;
    __u32 v4[MG_MAX_PORT_V4];      /* network order */
    __u8 v6[MG_MAX_PORT_V6][16];   /* network order */
    /* Fast tier (core ports): 1 when this port's program forwards what it can itself (bpf/fast_tier.h). */
    __u8 fast;
    __u8 pad2;
    __u16 port_index;     /* the port's index in the config (FIB.PortID), for its counters */
    __u8 mac[6];          /* the port's MAC: only frames to it are forwarded (the pipeline's notForUs rule) */
    __u16 pad3;
};

/* Indices of the program's per-CPU "mg_stats" array. */
#define MG_STAT_REDIRECTED 0   /* sent to the queue's AF_XDP socket */
#define MG_STAT_PASSED 1       /* not ours: XDP_PASS to the host stack */
#define MG_STAT_NO_SOCKET 2    /* ours, but no socket bound on this queue: passed */
#define MG_STAT_COUNT 3

/* ---- Fast tier (issue 19; bpf/fast_tier.h) ----
 * Transit label switching done in the XDP program itself. The tables mirror the FIBSnapshot's (FIB module): the
 * next-hop record is byte for byte the Swift one, an ILM entry carries the part of its FIB.Action a swap or PHP
 * reads. Anything the fast tier does not do completely goes to AF_XDP untouched, where the pipeline forwards or
 * drops (and counts) it, so the fast tier never drops a frame itself. */
#define MG_FAST_ILM_SIZE (1u << 20)     /* mg_fast_ilm: one slot per 20-bit label */
#define MG_FAST_OUT_LABELS 4            /* labels a fast-tier swap writes (primary or backup) */
#define MG_FAST_POPS 4                  /* pops (pop, explicit null at S=0) before the swap or PHP */
#define MG_FAST_STACK_SCAN 32           /* = Pipeline.maxLabelDepth: the malformed-stack rule's reach */
#define MG_FAST_MAX_PORTS 256
#define MG_FAST_NO_TARGET 0x7FFFFFFFu   /* FIB.ForwardTarget.none */
#define MG_FAST_GROUP_BIT 0x80000000u
#define MG_FAST_BUCKETS 4096            /* FIB.ECMP.bucketCount */
#define MG_FAST_MAX_GROUPS 128          /* groups the bucket table holds (FastTier.maxGroups) */

/* One label the fast tier switches, in "mg_fast_table" at the index "mg_fast_ilm" gives (index + 1; 0: not a fast
 * label). A pop entry needs op and flags; a swap or PHP entry carries the part of its FIB.Action it reads. The
 * same index keeps the entry's per-CPU counters ("mg_fast_entries"), which the agent adds to its action slot's. */
struct mg_fast_entry {
    __u32 index;               /* this entry's index: its counters */
    __u8 op;                   /* OP_SWAP (swap or PHP) or OP_POP */
    __u8 flags;                /* pop: the ILM entry's flags; swap: the action's */
    __u8 label_count;          /* 0: PHP, payload says what follows */
    __u8 payload;
    __u8 backup_label_count;
    __u8 pad[3];
    __u32 target;              /* FIB.ForwardTarget raw value */
    __u32 labels[2 * MG_FAST_OUT_LABELS]; /* label templates (label << 12), host order: primary, then backup */
};

/* FIB.NextHopRecord (32 bytes). */
struct mg_fast_next_hop {
    __u8 l2[16];               /* destination MAC, source MAC, optional 802.1Q tag: wire order */
    __u16 port;
    __u16 l2_size;             /* 12, or 16 with the tag */
    __u16 mtu;
    __u16 reserved;
    __u32 backup;              /* FIB.ForwardTarget raw value */
    __u32 reserved2;
};

/* The one entry of "mg_fast_config": what steps the fast tier aside, whatever the generation. */
struct mg_fast_config {
    __u32 trace_armed;         /* non-zero: every frame goes to AF_XDP (the trace sees it) */
    __u32 paused;              /* non-zero: every frame goes to AF_XDP (a sync failed, or too many groups) */
};

/* One generation of the tables (issue 19: one generation per frame). The generational tables -- label slots,
 * next-hop records, group buckets -- hold two halves; the one entry of the inner map in "mg_fast_generation"'s one
 * slot says which half a frame reads, and the frame looks that slot up once. A commit writes its change into the
 * other half, points the slot at the other inner map (the update returns after an RCU grace period: no frame reads
 * the old half any more), then writes the same change into the old half. */
struct mg_fast_generation {
    __u32 half;                /* 0 or 1: mg_fast_ilm_slot.index[half] */
    __u32 next_hop_base;       /* half x next-hop slots: the half's first record in mg_fast_next_hops */
    __u32 bucket_base;         /* half x groups x 4096: the half's first bucket in mg_fast_buckets */
    __u32 pad;
};

/* A label's slot in "mg_fast_ilm": its entry's index + 1 in each half (0: not a fast-tier label). */
struct mg_fast_ilm_slot { __u32 index[2]; };

/* One bucket of a group in "mg_fast_buckets": its next-hop slot and the second choice (FIBSnapshot.groupBuckets). */
struct mg_fast_bucket { __u32 primary, second; };

struct mg_fast_counter { __u64 packets, bytes; };
/* Frames the fast tier redirected that the egress device refused (bpf/xmit_errors.bpf.c), per port: as the ingress
 * port (a drop: xdpTransmitError) and as the egress port (the fast tier counted them as sent). */
struct mg_fast_refused { __u64 dropped, not_sent; };
struct mg_fast_port_counters { __u64 rx_packets, rx_bytes, tx_packets, tx_bytes; };

/* The record of the last MPLS frame the fast tier looked at (tests read it after BPF_PROG_TEST_RUN). */
struct mg_fast_last {
    __u32 verdict;             /* MG_FAST_FORWARDED or MG_FAST_STEERED */
    __u32 port;                /* forwarded: the egress port (the devmap key) */
    __u32 why;                 /* steered: MG_SLOW_* */
    __u32 pad;
};

/* The one entry of the per-CPU "mg_fast_cpu": everything the fast tier writes per frame but the entry's counters,
 * reached with one lookup. */
struct mg_fast_cpu {
    struct mg_fast_last last;
    struct mg_fast_port_counters ports[MG_FAST_MAX_PORTS];
};
#define MG_FAST_STEERED 0
#define MG_FAST_FORWARDED 1

/* Why a frame went to AF_XDP instead (fast tier on). */
#define MG_SLOW_GUARD 1        /* not to the port's MAC, or a tag the pipeline refuses */
#define MG_SLOW_SPECIAL 2      /* a special label other than explicit null at S=0 */
#define MG_SLOW_OPERATION 3    /* an ILM operation the fast tier does not do */
#define MG_SLOW_TTL 4          /* TTL would expire */
#define MG_SLOW_STACK 5        /* too short, bottom-of-stack mismatch, unterminated, too deep */
#define MG_SLOW_NEXT_HOP 6     /* next hop down with no live choice the fast tier can make */
#define MG_SLOW_MTU 7
#define MG_SLOW_EGRESS 8       /* the egress port does not take redirected frames */
#define MG_SLOW_HEADROOM 9
#define MG_SLOW_TRACE 10
#define MG_SLOW_PAYLOAD 11     /* PHP to an IP header that fails the pipeline's checks */

/* Name of the program in the object, used to recognise (and replace) our own stale attachments. */
#define MG_PROG_NAME "mplsgate_steer"

#endif
