/*
 * Lines of an nginx or Apache access log, in the "combined" format
 *
 *	host ident user [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1"
 *	    200 2326 "referer" "user-agent"
 *
 * (one line), or "common", which ends after the byte count.
 */
#ifndef TALLY_LOGLINE_H
#define TALLY_LOGLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum logline_format { LOGLINE_COMBINED, LOGLINE_COMMON };

/*
 * What a line says. The strings point into the line and are not
 * NUL-terminated; quoted ones are as logged, with the server's escapes
 * (logline_unescape undoes them).
 */
struct logline {
	const char	*host;		/* the client's address */
	size_t		 hostlen;
	time_t		 when;
	int		 utcoff;	/* the line's zone, seconds east */
	const char	*request;	/* "GET /a HTTP/1.1" */
	size_t		 requestlen;
	const char	*method;	/* to the request's first space */
	size_t		 methodlen;
	const char	*target;	/* NULL: a request without a space */
	size_t		 targetlen;
	int		 status;	/* three digits */
	const char	*referer;	/* combined only; else, or "-": "" */
	size_t		 refererlen;
	const char	*ua;		/* combined only; else, or "-": "" */
	size_t		 ualen;
};

/* Remembers the date of the line before: most lines of a log share
 * it, and each date is then parsed once. */
struct logline_parser {
	enum logline_format	 format;
	char			 last_date[11];	/* "10/Oct/2000" */
	int			 last_day;	/* days since 1970-01-01 */
};

void logline_init(struct logline_parser *, enum logline_format);
/* Parses line[0..len) (no line end). False for a line that is not one
 * of the parser's format. */
bool logline_parse(struct logline_parser *, const char *line, size_t len,
    struct logline *);
/*
 * Undoes the server's escaping of a quoted field: nginx writes '"',
 * '\' and bytes outside printable ASCII (UTF-8 paths too) as \xHH,
 * Apache writes \" and \\ and \xHH and \n-style controls. out holds
 * len bytes; returns the length written.
 */
size_t logline_unescape(const char *in, size_t len, char *out);

#endif
