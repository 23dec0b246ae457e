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
};

/* Indices of the program's per-CPU "mg_stats" array. */
#define MG_STAT_REDIRECTED 0   /* sent to the queue's AF_XDP socket */
#define MG_STAT_PASSED 1       /* not ours: XDP_PASS to the host stack */
#define MG_STAT_NO_SOCKET 2    /* ours, but no socket bound on this queue: passed */
#define MG_STAT_COUNT 3

/* Name of the program in the object, used to recognise (and replace) our own stale attachments. */
#define MG_PROG_NAME "mplsgate_steer"

#endif
