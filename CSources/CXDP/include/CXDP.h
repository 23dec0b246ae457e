/* CXDP: a thin C shim over libbpf, libxdp and libnuma for MPLSGate's IO module. Mechanism only: no policy, no
 * logging. Every function returns 0 or a negative errno; Swift turns those into operator-facing errors. */
#ifndef CXDP_H
#define CXDP_H

#include <stddef.h>
#include <stdint.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>
#include "mplsgate_xdp.h"

/* ---- XDP steering program (one loaded copy per port) ---- */

struct mg_prog;

/* Opens and loads an ELF object held in memory; the program is not attached yet. */
int mg_prog_load(const void *object, size_t size, struct mg_prog **out);

/* Entries of the fast tier's tables (bpf/fast_tier.h); 0 = one entry (fast tier off: nothing allocated). */
struct mg_fast_sizes {
    uint32_t entries;      /* fast-tier entries (labels the fast tier switches at once, with their counters) */
    uint32_t next_hops;    /* next-hop slots (the records map holds two halves of them) */
    uint32_t buckets;      /* two halves x groups x 4096 */
};
/* mg_prog_load with the fast tier's tables sized before the load. */
int mg_prog_load_sized(const void *object, size_t size, const struct mg_fast_sizes *sizes, struct mg_prog **out);
/* Loads and attaches the tracing programs that count the frames the fast tier redirected and the egress device
 * refused (bpf/xmit_errors.bpf.c: needs the kernel's BTF and CAP_PERFMON), on the maps of `owner` (the owner of the
 * fast tier's tables), which keeps them until it is closed. 0, or -errno. */
int mg_prog_count_refused(struct mg_prog *owner, const void *object, size_t size);
/* The fd of one of the program's maps by name, or -ENOENT. */
int mg_prog_map_fd(const struct mg_prog *prog, const char *name);
int mg_map_update(int fd, const void *key, const void *value);
/* Looks up one key; a per-CPU map's value is one (8-byte aligned) value per possible CPU. */
int mg_map_lookup(int fd, const void *key, void *value);
/* Maps an mmapable array map (BPF_F_MMAPABLE) shared and writable: its values at `*stride` bytes apart (the value
 * size rounded up to 8), `*entries` of them, `*bytes` mapped. NULL with errno set when it cannot. */
void *mg_map_mmap(int fd, size_t *bytes, uint32_t *stride, uint32_t *entries);
/* A 32-bit store the XDP program reads whole (tables written in place). */
static inline void mg_store_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/* Points slot 0 of an ARRAY_OF_MAPS map at map `inner_fd`; returns after an RCU grace period (no program still
 * reads the slot's previous map). */
int mg_map_set_inner(int outer_fd, int inner_fd);
/* Number of possible CPUs (per-CPU map values hold this many). */
int mg_possible_cpus(void);
/* Loads a second program whose fast-tier tables are `share`'s (one FIB for every core port). */
int mg_prog_load_shared(const void *object, size_t size, const struct mg_prog *share, struct mg_prog **out);

/* The device's XDP features (netdev generic netlink, NETDEV_A_DEV_XDP_FEATURES): MG_XDP_ACT_* bits. -ENOENT when
 * the kernel has no netdev family (before 6.3), -EOPNOTSUPP when it does not report features for the device. */
#define MG_XDP_ACT_NDO_XMIT 4
int mg_xdp_features(int ifindex, uint64_t *features);
/* A non-blocking netlink socket that becomes readable when a device of this namespace changes (the netdev family's
 * "mgmt" group: added, removed, xdp-features changed), or -errno. */
int mg_xdp_features_subscribe(void);
/* Reads every pending message of a netlink socket: how many (lost ones, ENOBUFS, count as one), or -errno. */
int mg_netlink_drain(int fd);
void mg_prog_close(struct mg_prog *prog);
int mg_prog_set_config(struct mg_prog *prog, const struct mg_port_config *config);
int mg_prog_fd(const struct mg_prog *prog);
int mg_prog_xskmap_fd(const struct mg_prog *prog);
/* Puts an AF_XDP socket into the program's XSKMAP at `queue`. */
int mg_prog_set_socket(struct mg_prog *prog, uint32_t queue, int xsk_fd);
/* Sums the per-CPU counters into out[MG_STAT_COUNT]. */
int mg_prog_stats(const struct mg_prog *prog, uint64_t *out);

/* XDP attach modes (XDP_FLAGS_DRV_MODE / XDP_FLAGS_SKB_MODE). */
#define MG_XDP_NATIVE 0
#define MG_XDP_GENERIC 1

/* The id and name (16 bytes with NUL) of the program attached to `ifindex` in `mode`; id 0 when none. */
int mg_xdp_attached(int ifindex, int mode, uint32_t *id, char *name);
/* Attaches `prog` to `ifindex`, replacing whatever is attached there (the caller has checked what that is). */
int mg_xdp_attach(int ifindex, int mode, const struct mg_prog *prog);
/* Detaches the program with id `id` from `ifindex`; a program attached since is left alone (-EEXIST). */
int mg_xdp_detach_id(int ifindex, int mode, uint32_t id);
/* Runs the loaded program once on `frame` (BPF_PROG_TEST_RUN) with the given rx queue; returns the XDP action. */
int mg_prog_test_run(const struct mg_prog *prog, const void *frame, uint32_t size, uint32_t ifindex, uint32_t queue,
                     uint32_t *action);
/* mg_prog_test_run that also returns the frame as the program left it (out_size bytes in out). */
int mg_prog_test_run_out(const struct mg_prog *prog, const void *frame, uint32_t size, uint32_t ifindex,
                         uint32_t queue, void *out, uint32_t out_cap, uint32_t *out_size, uint32_t *action);
/* Id of a loaded program. */
int mg_prog_id(const struct mg_prog *prog, uint32_t *id);

/* ---- UMEM and sockets ---- */

struct mg_umem {
    struct xsk_umem *umem;
    void *area;
    uint64_t size;
    uint32_t chunk_size;
    uint32_t frame_count;
    int numa_node;        /* node the area was bound to, or -1 */
    struct xsk_ring_prod fill0;  /* the rings made with the UMEM; handed to its first socket */
    struct xsk_ring_cons comp0;
};

/* Allocates `frame_count` chunks of `chunk_size` bytes (on `numa_node` when >= 0 and libnuma works), registers
 * them as one UMEM. */
int mg_umem_create(struct mg_umem **out, uint32_t frame_count, uint32_t chunk_size, uint32_t fill_size,
                   uint32_t comp_size, int numa_node);
/* Returns -EBUSY while sockets still use it. */
int mg_umem_destroy(struct mg_umem *umem);

#define MG_BIND_AUTO 0
#define MG_BIND_COPY 1
#define MG_BIND_ZEROCOPY 2

/* One AF_XDP socket: a (device, queue) of a worker, with its own fill and completion rings. */
struct mg_xsk {
    struct xsk_socket *xsk;
    int fd;
    int zerocopy;         /* 1 when the kernel bound it zero-copy */
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
};

int mg_xsk_create(struct mg_xsk **out, struct mg_umem *umem, const char *ifname, uint32_t queue, uint32_t rx_size,
                  uint32_t tx_size, int bind_mode, int need_wakeup);
void mg_xsk_destroy(struct mg_xsk *s);
/* Raises how many frames one copy-mode sendto may send (XDP_MAX_TX_SKB_BUDGET, Linux >= 6.17); -ENOPROTOOPT on
 * older kernels, which send at most 32 per call. */
int mg_xsk_set_tx_budget(const struct mg_xsk *s, uint32_t frames);
/* The kernel's XDP_STATISTICS for the socket. */
int mg_xsk_statistics(const struct mg_xsk *s, struct xdp_statistics *out);
/* Kicks TX (copy mode sends here). Returns 0, or -errno (EAGAIN/EBUSY/ENOBUFS mean "try again later"). */
int mg_sendto_empty(int fd);
/* Wakes RX when the fill ring asks for it. */
int mg_recvfrom_empty(int fd);

/* ---- inline ring helpers (batched; Swift calls them inlined) ---- */

static inline uint32_t mg_rx_peek(struct mg_xsk *s, uint32_t n, uint32_t *idx) { return xsk_ring_cons__peek(&s->rx, n, idx); }
static inline void mg_rx_release(struct mg_xsk *s, uint32_t n) { xsk_ring_cons__release(&s->rx, n); }
static inline uint32_t mg_tx_reserve(struct mg_xsk *s, uint32_t n, uint32_t *idx) { return xsk_ring_prod__reserve(&s->tx, n, idx); }
static inline void mg_tx_submit(struct mg_xsk *s, uint32_t n) { xsk_ring_prod__submit(&s->tx, n); }
static inline int mg_tx_needs_wakeup(const struct mg_xsk *s) { return xsk_ring_prod__needs_wakeup(&s->tx); }
/* Free slots in the fill ring (at most `n` are looked for). */
static inline uint32_t mg_fill_free(struct mg_xsk *s, uint32_t n) { return xsk_prod_nb_free(&s->fill, n); }
static inline uint32_t mg_fill_reserve(struct mg_xsk *s, uint32_t n, uint32_t *idx) { return xsk_ring_prod__reserve(&s->fill, n, idx); }
static inline void mg_fill_submit(struct mg_xsk *s, uint32_t n) { xsk_ring_prod__submit(&s->fill, n); }
static inline int mg_fill_needs_wakeup(const struct mg_xsk *s) { return xsk_ring_prod__needs_wakeup(&s->fill); }
static inline uint32_t mg_comp_peek(struct mg_xsk *s, uint32_t n, uint32_t *idx) { return xsk_ring_cons__peek(&s->comp, n, idx); }
static inline void mg_comp_release(struct mg_xsk *s, uint32_t n) { xsk_ring_cons__release(&s->comp, n); }

static inline uint64_t mg_rx_addr(const struct mg_xsk *s, uint32_t idx, uint32_t *len)
{
    const struct xdp_desc *d = xsk_ring_cons__rx_desc(&s->rx, idx);
    *len = d->len;
    return d->addr;
}

static inline void mg_tx_set(struct mg_xsk *s, uint32_t idx, uint64_t addr, uint32_t len)
{
    struct xdp_desc *d = xsk_ring_prod__tx_desc(&s->tx, idx);
    d->addr = addr;
    d->len = len;
    d->options = 0;
}

static inline void mg_fill_set(struct mg_xsk *s, uint32_t idx, uint64_t addr)
{
    *xsk_ring_prod__fill_addr(&s->fill, idx) = addr;
}

static inline uint64_t mg_comp_addr(const struct mg_xsk *s, uint32_t idx)
{
    return *xsk_ring_cons__comp_addr(&s->comp, idx);
}

/* ---- threads and system ---- */

/* Pins the calling thread to `cpu`. */
int mg_pin_current_thread(int cpu);
/* A non-blocking timerfd firing every `ms` milliseconds; the fd or -errno. */
int mg_timerfd_periodic(long ms);
/* Number of CPUs online. */
int mg_cpu_count(void);
/* Raises RLIMIT_MEMLOCK to infinity when allowed; returns the limit in bytes after the attempt (UINT64_MAX = none). */
uint64_t mg_raise_memlock(void);

#endif
