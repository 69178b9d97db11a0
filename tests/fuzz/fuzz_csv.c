/* libFuzzer: export rows, CSV and JSON, as tallyctl import reads them.
 * Every row read must be one the store can take; written in either
 * format and read back, it must be the same row; an error must name a
 * line of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally/config.h"
#include "tally/exportrow.h"
#include "tally/escape.h"
#include "tally/referrer.h"
#include "tally/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What import would store: a valid site, a path or the site's own
 * series, a day from 1970 or an adjustment. */
static void
check_row(const struct exportrow *row)
{
	size_t n, i;

	if (!site_name_valid(row->site))
		abort();
	if (row->day < 0 && row->day != DAY_ADJUST)
		abort();
	/* A referrer row: a day's views from a name tally keeps. */
	if (row->referrer != NULL) {
		if (row->path != NULL || row->day < 0 || row->views == 0 ||
		    row->visitors != 0 || !referrer_name_valid(row->referrer))
			abort();
		return;
	}
	n = strlen(row->path);
	if (n > 0 && (row->path[0] != '/' || n > PATH_MAX_LEN ||
	    !utf8_valid(row->path, n)))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)row->path[i] < 0x20 || row->path[i] == 0x7f)
			abort();
}

static void
same(const struct exportrow *a, const struct exportrow *b)
{
	if ((a->referrer == NULL) != (b->referrer == NULL) ||
	    (a->referrer != NULL && strcmp(a->referrer, b->referrer) != 0))
		abort();
	if (strcmp(a->site, b->site) != 0 ||
	    (a->path != NULL && strcmp(a->path, b->path) != 0) ||
	    a->day != b->day || a->views != b->views ||
	    a->visitors != b->visitors)
		abort();
}

/* Writes row in fmt (a one-row export) and reads it back. */
static void
round_trip(const struct exportrow *row, enum exportrow_format fmt)
{
	struct exportrow_reader *r;
	struct exportrow again;
	struct buf b;

	buf_init(&b);
	buf_puts(&b, fmt == EXPORTROW_JSON ? "[\n" : EXPORTROW_HEADER "\n");
	exportrow_format(&b, fmt, row);
	if (fmt == EXPORTROW_JSON)
		buf_puts(&b, "\n]\n");
	if ((r = malloc(sizeof(*r))) == NULL)
		abort();
	exportrow_reader_init(r, fmt, b.data, b.len);
	if (exportrow_parse(r, &again) != 1)
		abort();
	same(row, &again);
	if (exportrow_parse(r, &again) != 0)
		abort();
	free(r);
	buf_free(&b);
}

static void
read_all(const char *text, size_t size, enum exportrow_format fmt)
{
	struct exportrow_reader *r;
	struct exportrow row;
	unsigned long lines = 1;
	size_t i, rows = 0;
	int rc;

	for (i = 0; i < size; i++)
		if (text[i] == '\n')
			lines++;
	if ((r = malloc(sizeof(*r))) == NULL)
		abort();
	exportrow_reader_init(r, fmt, text, size);
	while ((rc = exportrow_parse(r, &row)) == 1) {
		/* Each row takes at least a byte: the reader moves on. */
		if (++rows > size)
			abort();
		check_row(&row);
		round_trip(&row, EXPORTROW_CSV);
		round_trip(&row, EXPORTROW_JSON);
	}
	if (rc == -1) {
		if (r->errline < 1 || r->errline > lines || r->err[0] == '\0' ||
		    memchr(r->err, '\0', sizeof(r->err)) == NULL)
			abort();
		/* An error is for good. */
		if (exportrow_parse(r, &row) != -1)
			abort();
	} else if (rc != 0 || r->p != r->end || exportrow_parse(r, &row) != 0)
		abort();
	free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_all((const char *)data, size, EXPORTROW_CSV);
	read_all((const char *)data, size, EXPORTROW_JSON);
	return 0;
}
