/* CXDP implementation: see include/CXDP.h. */
#define _GNU_SOURCE
#include "CXDP.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/if_link.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/time.h>
#include <sys/timerfd.h>
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
    /* The fast tier's refused-redirect counters (bpf/xmit_errors.bpf.c): loaded for the owner of its tables. */
    struct bpf_object *xmit_obj;
    struct bpf_link *xmit_links[2];
};

static const char *const xmit_programs[] = { "mg_fast_devmap_xmit", "mg_fast_redirect_err" };
static const char *const xmit_maps[] = { "mg_fast_ifindex", "mg_fast_netns", "mg_fast_refused" };

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
    struct mg_fast_sizes none = { 0, 0, 0 };
    return mg_prog_load_sized(object, size, &none, out);
}

static const char *const shared_maps[] = {
    "mg_fast_ilm", "mg_fast_table", "mg_fast_entries", "mg_fast_next_hops", "mg_fast_liveness",
    "mg_fast_buckets", "mg_fast_config", "mg_fast_tx", "mg_fast_egress", "mg_fast_cpu", "mg_fast_gen0",
    "mg_fast_gen1", "mg_fast_generation", "mg_fast_ifindex", "mg_fast_netns", "mg_fast_refused",
};

static int load(const void *object, size_t size, const struct mg_fast_sizes *sizes, const struct mg_prog *share,
                struct mg_prog **out);

int mg_prog_load_shared(const void *object, size_t size, const struct mg_prog *share, struct mg_prog **out)
{
    return load(object, size, NULL, share, out);
}

int mg_prog_load_sized(const void *object, size_t size, const struct mg_fast_sizes *sizes, struct mg_prog **out)
{
    return load(object, size, sizes, NULL, out);
}

static void close_xmit(struct mg_prog *prog)
{
    for (size_t i = 0; i < 2; i++) {
        if (prog->xmit_links[i])
            bpf_link__destroy(prog->xmit_links[i]);
        prog->xmit_links[i] = NULL;
    }
    if (prog->xmit_obj)
        bpf_object__close(prog->xmit_obj);
    prog->xmit_obj = NULL;
}

int mg_prog_count_refused(struct mg_prog *owner, const void *object, size_t size)
{
    if (owner->xmit_obj)
        return 0;
    struct bpf_object *obj = bpf_object__open_mem(object, size, NULL);
    long err = libbpf_get_error(obj);
    if (err)
        return (int)err;
    owner->xmit_obj = obj;
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof(xmit_maps) / sizeof(xmit_maps[0]); i++) {
        struct bpf_map *m = bpf_object__find_map_by_name(obj, xmit_maps[i]);
        int fd = bpf_object__find_map_fd_by_name(owner->obj, xmit_maps[i]);
        rc = (!m || fd < 0) ? -ENOENT : bpf_map__reuse_fd(m, fd);
    }
    if (!rc)
        rc = bpf_object__load(obj);
    for (size_t i = 0; !rc && i < 2; i++) {
        struct bpf_program *t = bpf_object__find_program_by_name(obj, xmit_programs[i]);
        struct bpf_link *link = t ? bpf_program__attach(t) : NULL;
        if (!link || libbpf_get_error(link))
            rc = errno ? -errno : -EOPNOTSUPP;
        else
            owner->xmit_links[i] = link;
    }
    if (rc)
        close_xmit(owner);
    return rc < 0 ? rc : -rc;
}

static int load(const void *object, size_t size, const struct mg_fast_sizes *sizes, const struct mg_prog *share,
                struct mg_prog **out)
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
    int rc = 0;
    if (share) {
        for (size_t i = 0; !rc && i < sizeof(shared_maps) / sizeof(shared_maps[0]); i++) {
            struct bpf_map *m = bpf_object__find_map_by_name(p->obj, shared_maps[i]);
            int fd = bpf_object__find_map_fd_by_name(share->obj, shared_maps[i]);
            rc = (!m || fd < 0) ? -ENOENT : bpf_map__reuse_fd(m, fd);
        }
    } else {
        rc = size_map(p->obj, "mg_fast_ilm", sizes->entries ? MG_FAST_ILM_SIZE : 1);
        if (!rc) rc = size_map(p->obj, "mg_fast_table", sizes->entries);
        if (!rc) rc = size_map(p->obj, "mg_fast_entries", sizes->entries);
        if (!rc) rc = size_map(p->obj, "mg_fast_next_hops", 2 * sizes->next_hops);   /* two halves */
        if (!rc) rc = size_map(p->obj, "mg_fast_liveness", sizes->next_hops);
        if (!rc) rc = size_map(p->obj, "mg_fast_buckets", sizes->buckets);
    }
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
    close_xmit(prog);
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

int mg_prog_test_run(const struct mg_prog *prog, const void *frame, uint32_t size, uint32_t ifindex, uint32_t queue,
                     uint32_t *action)
{
    unsigned char out[4096];
    uint32_t out_size;
    return mg_prog_test_run_out(prog, frame, size, ifindex, queue, out, sizeof(out), &out_size, action);
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

void *mg_map_mmap(int fd, size_t *bytes, uint32_t *stride, uint32_t *entries)
{
    struct bpf_map_info info;
    __u32 len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fd, &info, &len))
        return NULL;
    if (!(info.map_flags & BPF_F_MMAPABLE) || info.type != BPF_MAP_TYPE_ARRAY) {
        errno = EINVAL;
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t step = ((size_t)info.value_size + 7) & ~(size_t)7;
    size_t size = (step * info.max_entries + page - 1) & ~(page - 1);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    *bytes = size;
    *stride = (uint32_t)step;
    *entries = info.max_entries;
    return p;
}

int mg_map_set_inner(int outer_fd, int inner_fd)
{
    __u32 zero = 0;
    return bpf_map_update_elem(outer_fd, &zero, &inner_fd, BPF_ANY) ? -errno : 0;
}

/* ---- XDP features through the netdev generic netlink family (Linux >= 6.3; Debian 12's headers predate it) ---- */

#define MG_NETDEV_CMD_DEV_GET 1
#define MG_NETDEV_A_DEV_IFINDEX 1
#define MG_NETDEV_A_DEV_XDP_FEATURES 3

struct mg_nlmsg {
    struct nlmsghdr nh;
    struct genlmsghdr gh;
    char attrs[256];
};

static void put_attr(struct mg_nlmsg *m, uint16_t type, const void *data, uint16_t len)
{
    struct nlattr *a = (struct nlattr *)((char *)m + NLMSG_ALIGN(m->nh.nlmsg_len));
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    memcpy((char *)a + NLA_HDRLEN, data, len);
    m->nh.nlmsg_len = NLMSG_ALIGN(m->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* An empty generic netlink request of `type` (a family id) and `cmd`. */
static void genl_start(struct mg_nlmsg *m, uint16_t type, uint8_t cmd, uint32_t seq)
{
    memset(m, 0, sizeof(*m));
    m->nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
    m->nh.nlmsg_type = type;
    m->nh.nlmsg_flags = NLM_F_REQUEST;
    m->nh.nlmsg_seq = seq;
    m->gh.cmd = cmd;
    m->gh.version = 1;
}

/* Sends one request and returns the first reply in buf (its length), or -errno. */
static int genl_request(int fd, struct mg_nlmsg *req, char *buf, size_t cap)
{
    struct sockaddr_nl to = { .nl_family = AF_NETLINK };
    if (sendto(fd, req, req->nh.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
        return -errno;
    ssize_t n = recv(fd, buf, cap, 0);
    if (n < 0)
        return -errno;
    struct nlmsghdr *nh = (struct nlmsghdr *)buf;
    if (n < (ssize_t)sizeof(*nh) || !NLMSG_OK(nh, (unsigned)n))
        return -EIO;
    if (nh->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(nh);
        return e->error ? e->error : -EIO;
    }
    return (int)n;
}

/* The attribute `type` among the attributes in [p, end), or NULL; `type` -1: the first one. */
static const struct nlattr *attr_in(const char *p, const char *end, int type)
{
    while (p + NLA_HDRLEN <= end) {
        const struct nlattr *a = (const struct nlattr *)p;
        if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
            break;
        if (type < 0 || (a->nla_type & NLA_TYPE_MASK) == type)
            return a;
        p += NLA_ALIGN(a->nla_len);
    }
    return NULL;
}

/* The attribute `type` of a generic netlink reply, or NULL. */
static const struct nlattr *find_attr(const char *buf, int n, uint16_t type)
{
    const struct nlmsghdr *nh = (const struct nlmsghdr *)buf;
    const char *end = buf + (nh->nlmsg_len < (unsigned)n ? nh->nlmsg_len : (unsigned)n);
    return attr_in((const char *)NLMSG_DATA(nh) + GENL_HDRLEN, end, type);
}

/* A generic netlink socket (1-s receive timeout) in *fd and the netdev family's CTRL_CMD_GETFAMILY reply in buf:
 * its length, or -errno (the socket closed). */
static int netdev_family(int *fd, char *buf, size_t cap)
{
    *fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
    if (*fd < 0)
        return -errno;
    struct timeval tv = { .tv_sec = 1 };
    setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct mg_nlmsg req;
    genl_start(&req, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
    put_attr(&req, CTRL_ATTR_FAMILY_NAME, "netdev", 7);
    int n = genl_request(*fd, &req, buf, cap);
    if (n < 0)
        close(*fd);
    return n;
}

int mg_xdp_features(int ifindex, uint64_t *features)
{
    int fd;
    char buf[4096];
    struct mg_nlmsg req;
    int n = netdev_family(&fd, buf, sizeof(buf));
    if (n < 0)
        return n;
    const struct nlattr *id = find_attr(buf, n, CTRL_ATTR_FAMILY_ID);
    if (!id) {
        close(fd);
        return -ENOENT;
    }
    uint16_t family;
    memcpy(&family, (const char *)id + NLA_HDRLEN, 2);
    genl_start(&req, family, MG_NETDEV_CMD_DEV_GET, 2);
    uint32_t index = (uint32_t)ifindex;
    put_attr(&req, MG_NETDEV_A_DEV_IFINDEX, &index, 4);
    n = genl_request(fd, &req, buf, sizeof(buf));
    close(fd);
    if (n < 0)
        return n;
    const struct nlattr *f = find_attr(buf, n, MG_NETDEV_A_DEV_XDP_FEATURES);
    if (!f || f->nla_len < NLA_HDRLEN + 8)
        return -EOPNOTSUPP;
    memcpy(features, (const char *)f + NLA_HDRLEN, 8);
    return 0;
}

/* The id of the multicast group `name` in a CTRL_CMD_GETFAMILY reply, or -ENOENT. */
static int mcast_group(const char *buf, int n, const char *name)
{
    const struct nlattr *groups = find_attr(buf, n, CTRL_ATTR_MCAST_GROUPS);
    if (!groups)
        return -ENOENT;
    const char *end = (const char *)groups + groups->nla_len;
    size_t want = strlen(name) + 1;
    /* One nested attribute per group, each holding its name and id. */
    for (const struct nlattr *g = attr_in((const char *)groups + NLA_HDRLEN, end, -1); g;
         g = attr_in((const char *)g + NLA_ALIGN(g->nla_len), end, -1)) {
        const char *gend = (const char *)g + g->nla_len;
        const struct nlattr *gname = attr_in((const char *)g + NLA_HDRLEN, gend, CTRL_ATTR_MCAST_GRP_NAME);
        const struct nlattr *gid = attr_in((const char *)g + NLA_HDRLEN, gend, CTRL_ATTR_MCAST_GRP_ID);
        if (gname && gid && gname->nla_len == NLA_HDRLEN + want && gid->nla_len >= NLA_HDRLEN + 4
            && memcmp((const char *)gname + NLA_HDRLEN, name, want) == 0) {
            uint32_t id;
            memcpy(&id, (const char *)gid + NLA_HDRLEN, 4);
            return (int)id;
        }
    }
    return -ENOENT;
}

int mg_xdp_features_subscribe(void)
{
    int fd;
    char buf[4096];
    int n = netdev_family(&fd, buf, sizeof(buf));
    if (n < 0)
        return n;
    int group = mcast_group(buf, n, "mgmt");
    if (group < 0) {
        close(fd);
        return group;
    }
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int mg_netlink_drain(int fd)
{
    char buf[8192];
    int count = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return count;
            if (errno == ENOBUFS)   /* notifications were lost: the caller re-reads everything anyway */
                count++;
            else if (errno != EINTR)
                return -errno;
            continue;
        }
        if (n == 0)
            return count;
        count++;
    }
}

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

int mg_timerfd_periodic(long ms)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct itimerspec spec;
    spec.it_interval.tv_sec = ms / 1000;
    spec.it_interval.tv_nsec = (ms % 1000) * 1000000L;
    spec.it_value = spec.it_interval;
    if (timerfd_settime(fd, 0, &spec, NULL)) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}
