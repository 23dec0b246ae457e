#define _GNU_SOURCE
#include "CRawSocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int mg_raw_open(const char *ifname, int promiscuous)
{
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex)
        return -ENODEV;
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    /* The kernel may have moved a VLAN tag out of the frame (rx VLAN offload); auxdata gives it back. */
    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one));
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (promiscuous) {
        struct packet_mreq mr;
        memset(&mr, 0, sizeof(mr));
        mr.mr_ifindex = (int)ifindex;
        mr.mr_type = PACKET_MR_PROMISC;
        setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr));
    }
    return fd;
}

int mg_raw_send(int fd, void *const *frames, const uint32_t *lengths, uint32_t count)
{
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    uint32_t done = 0;
    while (done < count) {
        uint32_t n = count - done > 64 ? 64 : count - done;
        for (uint32_t i = 0; i < n; i++) {
            iov[i].iov_base = frames[done + i];
            iov[i].iov_len = lengths[done + i];
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int rc = sendmmsg(fd, msgs, n, 0);
        if (rc < 0)
            return done ? (int)done : -errno;
        done += (uint32_t)rc;
        if ((uint32_t)rc < n)
            break;
    }
    return (int)done;
}

int mg_raw_recv(int fd, void *const *buffers, uint32_t capacity, uint32_t *lengths, uint32_t count, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (r == 0)
        return 0;
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
    } control[64];
    if (count > 64)
        count = 64;
    /* Room for a VLAN tag to be put back: receive 4 bytes into the buffer. */
    for (uint32_t i = 0; i < count; i++) {
        iov[i].iov_base = (char *)buffers[i] + 4;
        iov[i].iov_len = capacity - 4;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof(control[i].buf);
    }
    int n = recvmmsg(fd, msgs, count, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t len = msgs[i].msg_len > capacity - 4 ? capacity - 4 : msgs[i].msg_len;
        unsigned char *b = buffers[i];
        int tagged = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
                continue;
            struct tpacket_auxdata aux;
            memcpy(&aux, CMSG_DATA(c), sizeof(aux));
            if ((aux.tp_status & TP_STATUS_VLAN_VALID) && len >= 12) {
                uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : 0x8100;
                memmove(b, b + 4, 12);
                b[12] = (unsigned char)(tpid >> 8);
                b[13] = (unsigned char)tpid;
                b[14] = (unsigned char)(aux.tp_vlan_tci >> 8);
                b[15] = (unsigned char)aux.tp_vlan_tci;
                len += 4;
                tagged = 1;
            }
        }
        if (!tagged)
            memmove(b, b + 4, len);
        lengths[i] = len;
    }
    return n;
}

int64_t mg_raw_drops(int fd)
{
    struct tpacket_stats st;
    socklen_t len = sizeof(st);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len))
        return -errno;
    return st.tp_drops;
}

uint64_t mg_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

void mg_sleep_until_ns(uint64_t ns)
{
    struct timespec t = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}
