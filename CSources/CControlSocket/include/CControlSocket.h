/* CControlSocket: the few Linux calls the control server needs that Swift's Glibc module hides behind
 * _GNU_SOURCE (accept4, SO_PEERCRED's struct ucred, signalfd, eventfd). */
#ifndef CCONTROLSOCKET_H
#define CCONTROLSOCKET_H

#include <stdint.h>

/* Accepts one connection (non-blocking, close-on-exec) and reads its peer credentials. Returns the fd or -errno. */
int mg_accept_peer(int listen_fd, uint32_t *uid, uint32_t *gid, int32_t *pid);
/* A signalfd for SIGINT, SIGTERM, SIGUSR1, SIGHUP (blocked in the calling thread first; threads created after
 * inherit the mask). Returns the fd or -errno. */
int mg_signalfd_standard(void);
/* Reads one signal from a signalfd; returns the signal number, 0 if none, or -errno. */
int mg_signalfd_read(int fd);
/* An eventfd (non-blocking, close-on-exec), to wake a poll() loop from another thread. */
int mg_eventfd(void);

/* Returns memory freed by the calling thread's allocations to the system (glibc malloc_trim(0)). */
int mg_malloc_trim(void);
/* Makes every thread allocate from one glibc malloc arena (mallopt M_ARENA_MAX 1); call before starting threads.
 * Returns mallopt's result (1 on success). */
int mg_single_malloc_arena(void);
void mg_eventfd_signal(int fd);
void mg_eventfd_drain(int fd);
/* Sends `message` (e.g. "READY=1") to systemd's $NOTIFY_SOCKET; 0 when sent, 1 when not under systemd, -errno. */
int mg_sd_notify(const char *message);

#endif
