/*
 * Logging to stderr. Under journald (JOURNAL_STREAM set) each line gets a
 * "<N>" priority prefix that journald understands; otherwise the program
 * name. Client addresses and User-Agents are never passed in here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/escape.h"
#include "tally/log.h"

static const char *log_progname = "tally";
static int log_level = LOG_LEVEL_INFO;
static int log_journal;

static void vlog(int, const char *, va_list, const char *) TALLY_PRINTF(2, 0);

void
log_init(const char *progname, int level)
{
	log_progname = progname;
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setlevel(int level)
{
	log_level = level;
}

static void
vlog(int level, const char *fmt, va_list ap, const char *reason)
{
	/* syslog priorities: err 3, warning 4, info 6, debug 7 */
	static const int prio[] = { 3, 4, 6, 7 };
	char raw[1024], msg[4 * sizeof(raw)];

	if (level > log_level)
		return;
	/* A message may quote a value from a file or a request: a control
	 * in it must not end the line (a forged second log line) or drive
	 * the terminal that shows the log. */
	vsnprintf(raw, sizeof(raw), fmt, ap);
	text_escape(msg, sizeof(msg), raw, strlen(raw));
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", prio[level], msg,
		    reason ? ": " : "", reason ? reason : "");
	else
		fprintf(stderr, "%s: %s%s%s\n", log_progname, msg,
		    reason ? ": " : "", reason ? reason : "");
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
