/*
 * The rows of an export, "site,day,path,views,visitors", in CSV
 * (RFC 4180) or JSON (a list of flat objects with those keys): read
 * from text one at a time and checked, and written.
 *
 * Path "*" is a site's own series (SITE_SERIES in a row); day "-" is a
 * series' all-time adjustment (DAY_ADJUST), whose counts are signed. A
 * path "referrer:HOST" makes a referrer row instead: the site's views of
 * the day that came from HOST (a name referrer.h keeps), visitors 0.
 */
#ifndef TALLY_EXPORTROW_H
#define TALLY_EXPORTROW_H

#include <stddef.h>
#include <stdint.h>

#include "tally/buf.h"
#include "tally/path.h"

#define EXPORTROW_HEADER	"site,day,path,views,visitors"
#define EXPORTROW_NFIELDS	5
#define EXPORTROW_REFERRER	"referrer:"
/* Field text kept: the longest valid field, a path, and one byte to
 * tell that it is too long. */
#define EXPORTROW_TEXT_MAX	(PATH_MAX_LEN + 1)

enum exportrow_format { EXPORTROW_CSV, EXPORTROW_JSON };

struct exportrow {
	const char	*site;
	const char	*path;		/* "/...", SITE_SERIES, or NULL in a
					 * referrer row */
	int		 day;		/* or DAY_ADJUST */
	uint64_t	 views;		/* an adjustment's: int64_t deltas */
	uint64_t	 visitors;
	unsigned long	 line;		/* where the row starts, from 1 */
	const char	*referrer;	/* a referrer row's host, else NULL */
};

/*
 * Reads the rows of text held in memory. The reader is all it needs:
 * nothing is allocated.
 */
struct exportrow_reader {
	enum exportrow_format format;
	const char	*p, *end;
	unsigned long	 line;		/* of p, from 1 */
	int		 state;
	/* The fields of the row read last, cut at EXPORTROW_TEXT_MAX bytes,
	 * with their whole lengths. */
	char		 text[EXPORTROW_NFIELDS][EXPORTROW_TEXT_MAX + 1];
	size_t		 len[EXPORTROW_NFIELDS];
	/* After an error: its line, and what is wrong. */
	unsigned long	 errline;
	char		 err[256];
};

void exportrow_reader_init(struct exportrow_reader *, enum exportrow_format,
    const char *text, size_t len);
/*
 * Reads and checks the next row. Returns 1 with *row (its strings are
 * the reader's, until the next call), 0 at the end of the text, or -1
 * for text that is no row (then errline and err; every later call
 * returns -1 too). CSV may start with the header line and may have
 * empty lines.
 */
int exportrow_parse(struct exportrow_reader *, struct exportrow *row);

/* Appends row as a CSV record, line end included, or a JSON object. */
void exportrow_format(struct buf *, enum exportrow_format, const struct exportrow *);

#endif
