/* The service manager: readiness, status, watchdog, passed sockets.
 * Every function is a no-op outside systemd or without libsystemd. */
#ifndef TALLYD_SDNOTIFY_H
#define TALLYD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

void notify(const char *state);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval the manager asked for, in microseconds, or 0. */
uint64_t notify_watchdog_usec(void);
/* How many listening sockets were passed (from fd 3 on). */
int notify_listen_fds(void);

#endif
