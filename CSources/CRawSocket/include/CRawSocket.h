/* CRawSocket: AF_PACKET helpers for the project's traffic generator and sink (mplsgate-traffic). */
#ifndef CRAWSOCKET_H
#define CRAWSOCKET_H

#include <stddef.h>
#include <stdint.h>

/* Opens a raw packet socket bound to `ifname` that sees every incoming frame (promiscuous) and none of its own
 * outgoing ones. Returns the fd or -errno. */
int mg_raw_open(const char *ifname, int promiscuous);
/* Sends `count` frames (pointers and lengths) with sendmmsg; returns frames sent or -errno. */
int mg_raw_send(int fd, void *const *frames, const uint32_t *lengths, uint32_t count);
/* Receives up to `count` frames into `buffers` (each `capacity` bytes) within `timeout_ms`; lengths are the
 * frame lengths (frames are cut at capacity - 4). A VLAN tag the kernel took out of the frame (rx VLAN offload)
 * is put back, as it was on the wire. Returns frames received, 0 on timeout, or -errno. */
int mg_raw_recv(int fd, void *const *buffers, uint32_t capacity, uint32_t *lengths, uint32_t count, int timeout_ms);
/* Frames the kernel dropped because this socket's buffer was full, since the last call (PACKET_STATISTICS). */
int64_t mg_raw_drops(int fd);
/* Monotonic time in nanoseconds. */
uint64_t mg_now_ns(void);
/* Sleeps until the monotonic time `ns`. */
void mg_sleep_until_ns(uint64_t ns);

#endif
