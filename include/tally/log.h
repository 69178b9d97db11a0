/* Logging for tallyd and tallyctl: six functions, in the OpenBSD manner. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdarg.h>

#if defined(__GNUC__)
#define TALLY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TALLY_NORETURN __attribute__((noreturn))
#else
#define TALLY_PRINTF(a, b)
#define TALLY_NORETURN
#endif

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* progname prefixes every line unless stderr goes to journald, where
 * "<N>" priority prefixes are written instead. */
void log_init(const char *progname, int level);
void log_setlevel(int level);

void log_warn(const char *fmt, ...) TALLY_PRINTF(1, 2);	/* with strerror(errno) */
void log_warnx(const char *fmt, ...) TALLY_PRINTF(1, 2);
void log_info(const char *fmt, ...) TALLY_PRINTF(1, 2);
void log_debug(const char *fmt, ...) TALLY_PRINTF(1, 2);
void fatal(const char *fmt, ...) TALLY_PRINTF(1, 2) TALLY_NORETURN;
void fatalx(const char *fmt, ...) TALLY_PRINTF(1, 2) TALLY_NORETURN;

#endif
