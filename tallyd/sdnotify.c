/* The one place that talks to systemd, in the manner of redis' own
 * wrapper: callers never need to know whether it is there. */
#include <stdarg.h>
#include <stdio.h>

#include "build-config.h"

#include "sdnotify.h"

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void
notify(const char *state)
{
#if HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

void
notify_status(const char *fmt, ...)
{
#if HAVE_SYSTEMD
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", msg);
#else
	(void)fmt;
#endif
}

uint64_t
notify_watchdog_usec(void)
{
#if HAVE_SYSTEMD
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) > 0)
		return usec;
#endif
	return 0;
}

int
notify_listen_fds(void)
{
#if HAVE_SYSTEMD
	int n = sd_listen_fds(1);

	return n > 0 ? n : 0;
#else
	return 0;
#endif
}
