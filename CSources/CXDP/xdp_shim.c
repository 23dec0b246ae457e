/* CXDP implementation: see include/CXDP.h. */
#define _GNU_SOURCE
#include "CXDP.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <numa.h>
#include <numaif.h>

struct mg_prog {
    struct bpf_object *obj;
    struct bpf_program *prog;
    int prog_fd;
    int xskmap_fd;
    int port_fd;
    int stats_fd;
};

static int silent_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
    (void)level; (void)fmt; (void)args;
    return 0;
}

static int size_map(struct bpf_object *obj, const char *name, uint32_t entries)
{
    struct bpf_map *m = bpf_object__find_map_by_name(obj, name);
    if (!m)
        return -ENOENT;
    return bpf_map__set_max_entries(m, entries ? entries : 1);
}

int mg_prog_load(const void *object, size_t size, struct mg_prog **out)
{
    struct mg_fast_sizes none = { 0, 0, 0, 0 };
    return mg_prog_load_sized(object, size, &none, out);
}

int mg_prog_load_sized(const void *object, size_t size, const struct mg_fast_sizes *sizes, struct mg_prog **out)
{
    libbpf_set_print(silent_print);
    struct mg_prog *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->obj = bpf_object__open_mem(object, size, NULL);
    long err = libbpf_get_error(p->obj);
    if (err) {
        free(p);
        return (int)err;
    }
    int rc = size_map(p->obj, "mg_fast_ilm", sizes->ilm);
    if (!rc) rc = size_map(p->obj, "mg_fast_actions", sizes->actions);
    if (!rc) rc = size_map(p->obj, "mg_fast_entries", sizes->actions);
    if (!rc) rc = size_map(p->obj, "mg_fast_next_hops", sizes->next_hops);
    if (!rc) rc = size_map(p->obj, "mg_fast_liveness", sizes->next_hops);
    if (!rc) rc = size_map(p->obj, "mg_fast_buckets", sizes->buckets);
    if (rc) {
        bpf_object__close(p->obj);
        free(p);
        return rc;
    }
    rc = bpf_object__load(p->obj);
    if (rc) {
        bpf_object__close(p->obj);
        free(p);
        return rc < 0 ? rc : -rc;
    }
    p->prog = bpf_object__find_program_by_name(p->obj, MG_PROG_NAME);
    p->prog_fd = p->prog ? bpf_program__fd(p->prog) : -ENOENT;
    p->xskmap_fd = bpf_object__find_map_fd_by_name(p->obj, "mg_xsks");
    p->port_fd = bpf_object__find_map_fd_by_name(p->obj, "mg_port");
    p->stats_fd = bpf_object__find_map_fd_by_name(p->obj, "mg_stats");
    if (p->prog_fd < 0 || p->xskmap_fd < 0 || p->port_fd < 0 || p->stats_fd < 0) {
        bpf_object__close(p->obj);
        free(p);
        return -ENOENT;
    }
    *out = p;
    return 0;
}

void mg_prog_close(struct mg_prog *prog)
{
    if (!prog)
        return;
    bpf_object__close(prog->obj);
    free(prog);
}

int mg_prog_set_config(struct mg_prog *prog, const struct mg_port_config *config)
{
    __u32 zero = 0;
    return bpf_map_update_elem(prog->port_fd, &zero, config, BPF_ANY) ? -errno : 0;
}

int mg_prog_fd(const struct mg_prog *prog) { return prog->prog_fd; }
int mg_prog_xskmap_fd(const struct mg_prog *prog) { return prog->xskmap_fd; }

int mg_prog_set_socket(struct mg_prog *prog, uint32_t queue, int xsk_fd)
{
    __u32 key = queue;
    __u32 value = (__u32)xsk_fd;
    return bpf_map_update_elem(prog->xskmap_fd, &key, &value, BPF_ANY) ? -errno : 0;
}

int mg_prog_stats(const struct mg_prog *prog, uint64_t *out)
{
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return ncpu < 0 ? ncpu : -EINVAL;
    __u64 *values = calloc((size_t)ncpu, sizeof(__u64));
    if (!values)
        return -ENOMEM;
    for (__u32 k = 0; k < MG_STAT_COUNT; k++) {
        out[k] = 0;
        if (bpf_map_lookup_elem(prog->stats_fd, &k, values)) {
            int e = -errno;
            free(values);
            return e;
        }
        for (int c = 0; c < ncpu; c++)
            out[k] += values[c];
    }
    free(values);
    return 0;
}

static __u32 mode_flags(int mode)
{
    return mode == MG_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

int mg_xdp_attached(int ifindex, int mode, uint32_t *id, char *name)
{
    __u32 prog_id = 0;
    int rc = bpf_xdp_query_id(ifindex, (int)mode_flags(mode), &prog_id);
    *id = 0;
    name[0] = 0;
    if (rc)
        return rc;
    *id = prog_id;
    if (!prog_id)
        return 0;
    int fd = bpf_prog_get_fd_by_id(prog_id);
    if (fd < 0)
        return -errno;
    struct bpf_prog_info info;
    __u32 len = sizeof(info);
    memset(&info, 0, sizeof(info));
    rc = bpf_obj_get_info_by_fd(fd, &info, &len);
    close(fd);
    if (rc)
        return -errno;
    memcpy(name, info.name, 16);
    name[15] = 0;
    return 0;
}

int mg_xdp_attach(int ifindex, int mode, const struct mg_prog *prog)
{
    int rc = bpf_xdp_attach(ifindex, prog->prog_fd, mode_flags(mode), NULL);
    return rc < 0 ? rc : (rc > 0 ? -rc : 0);
}

int mg_xdp_detach_id(int ifindex, int mode, uint32_t id)
{
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return -errno;
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = fd);
    int rc = bpf_xdp_detach(ifindex, mode_flags(mode) | XDP_FLAGS_REPLACE, &opts);
    close(fd);
    return rc < 0 ? rc : 0;
}

int mg_prog_test_run(const struct mg_prog *prog, const void *frame, uint32_t size, uint32_t ifindex, uint32_t queue,
                     uint32_t *action)
{
    struct xdp_md ctx_in;
    memset(&ctx_in, 0, sizeof(ctx_in));
    ctx_in.data_end = size;
    ctx_in.ingress_ifindex = ifindex;
    ctx_in.rx_queue_index = queue;
    unsigned char out[4096];
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = size, .data_out = out,
                .data_size_out = sizeof(out), .ctx_in = &ctx_in, .ctx_size_in = sizeof(ctx_in), .repeat = 1);
    int rc = bpf_prog_test_run_opts(prog->prog_fd, &opts);
    if (rc)
        return rc < 0 ? -errno : -rc;
    *action = opts.retval;
    return 0;
}

int mg_prog_test_run_out(const struct mg_prog *prog, const void *frame, uint32_t size, uint32_t ifindex,
                         uint32_t queue, void *out, uint32_t out_cap, uint32_t *out_size, uint32_t *action)
{
    struct xdp_md ctx_in;
    memset(&ctx_in, 0, sizeof(ctx_in));
    ctx_in.data_end = size;
    ctx_in.ingress_ifindex = ifindex;
    ctx_in.rx_queue_index = queue;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = size, .data_out = out,
                .data_size_out = out_cap, .ctx_in = &ctx_in, .ctx_size_in = sizeof(ctx_in), .repeat = 1);
    int rc = bpf_prog_test_run_opts(prog->prog_fd, &opts);
    if (rc)
        return rc < 0 ? -errno : -rc;
    *action = opts.retval;
    *out_size = opts.data_size_out;
    return 0;
}

int mg_prog_map_fd(const struct mg_prog *prog, const char *name)
{
    int fd = bpf_object__find_map_fd_by_name(prog->obj, name);
    return fd < 0 ? -ENOENT : fd;
}

int mg_map_update(int fd, const void *key, const void *value)
{
    return bpf_map_update_elem(fd, key, value, BPF_ANY) ? -errno : 0;
}

int mg_map_lookup(int fd, const void *key, void *value)
{
    return bpf_map_lookup_elem(fd, key, value) ? -errno : 0;
}

int mg_possible_cpus(void) { return libbpf_num_possible_cpus(); }

int mg_prog_id(const struct mg_prog *prog, uint32_t *id)
{
    struct bpf_prog_info info;
    __u32 len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(prog->prog_fd, &info, &len))
        return -errno;
    *id = info.id;
    return 0;
}

int mg_umem_create(struct mg_umem **out, uint32_t frame_count, uint32_t chunk_size, uint32_t fill_size,
                   uint32_t comp_size, int numa_node)
{
    struct mg_umem *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->size = (uint64_t)frame_count * chunk_size;
    u->chunk_size = chunk_size;
    u->frame_count = frame_count;
    u->numa_node = -1;
    u->area = mmap(NULL, u->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (u->area == MAP_FAILED) {
        free(u);
        return -ENOMEM;
    }
    if (numa_node >= 0 && numa_available() >= 0 && numa_node <= numa_max_node()) {
        numa_tonode_memory(u->area, u->size, numa_node);
        u->numa_node = numa_node;
    }
    memset(u->area, 0, u->size); /* fault every page in, on the chosen node */
    struct xsk_umem_config cfg = {
        .fill_size = fill_size,
        .comp_size = comp_size,
        .frame_size = chunk_size,
        .frame_headroom = 0,
        .flags = 0,
    };
    int rc = xsk_umem__create(&u->umem, u->area, u->size, &u->fill0, &u->comp0, &cfg);
    if (rc) {
        munmap(u->area, u->size);
        free(u);
        return rc < 0 ? rc : -rc;
    }
    *out = u;
    return 0;
}

int mg_umem_destroy(struct mg_umem *u)
{
    if (!u)
        return 0;
    int rc = xsk_umem__delete(u->umem);
    if (rc)
        return rc;
    munmap(u->area, u->size);
    free(u);
    return 0;
}

int mg_xsk_create(struct mg_xsk **out, struct mg_umem *umem, const char *ifname, uint32_t queue, uint32_t rx_size,
                  uint32_t tx_size, int bind_mode, int need_wakeup)
{
    struct mg_xsk *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    __u16 bind = 0;
    if (bind_mode == MG_BIND_COPY)
        bind |= XDP_COPY;
    else if (bind_mode == MG_BIND_ZEROCOPY)
        bind |= XDP_ZEROCOPY;
    if (need_wakeup)
        bind |= XDP_USE_NEED_WAKEUP;
    struct xsk_socket_config cfg = {
        .rx_size = rx_size,
        .tx_size = tx_size,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = 0,
        .bind_flags = bind,
    };
    int rc = xsk_socket__create_shared(&s->xsk, ifname, queue, umem->umem, &s->rx, &s->tx, &s->fill, &s->comp, &cfg);
    if (rc) {
        free(s);
        return rc < 0 ? rc : -rc;
    }
    s->fd = xsk_socket__fd(s->xsk);
    struct xdp_options opts;
    socklen_t len = sizeof(opts);
    s->zerocopy = 0;
    if (getsockopt(s->fd, SOL_XDP, XDP_OPTIONS, &opts, &len) == 0)
        s->zerocopy = (opts.flags & XDP_OPTIONS_ZEROCOPY) ? 1 : 0;
    *out = s;
    return 0;
}

void mg_xsk_destroy(struct mg_xsk *s)
{
    if (!s)
        return;
    xsk_socket__delete(s->xsk);
    free(s);
}

int mg_xsk_statistics(const struct mg_xsk *s, struct xdp_statistics *out)
{
    socklen_t len = sizeof(*out);
    memset(out, 0, sizeof(*out));
    return getsockopt(s->fd, SOL_XDP, XDP_STATISTICS, out, &len) ? -errno : 0;
}

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif

int mg_xsk_set_tx_budget(const struct mg_xsk *s, uint32_t frames)
{
    return setsockopt(s->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &frames, sizeof(frames)) ? -errno : 0;
}

int mg_sendto_empty(int fd)
{
    return sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 ? -errno : 0;
}

int mg_recvfrom_empty(int fd)
{
    return recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL) < 0 ? -errno : 0;
}

int mg_pin_current_thread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int mg_cpu_count(void) { return (int)sysconf(_SC_NPROCESSORS_ONLN); }

uint64_t mg_raise_memlock(void)
{
    struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MEMLOCK, &r);
    if (getrlimit(RLIMIT_MEMLOCK, &r))
        return 0;
    return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)r.rlim_cur;
}
