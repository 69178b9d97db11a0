/* The counts JSON. Every number is an integer; strings are escaped. */
#include <inttypes.h>
#include <string.h>

#include "tally/day.h"
#include "tally/escape.h"
#include "tally/render.h"

static void
counts_object(struct buf *b, const char *name, const struct counts *c)
{
	buf_printf(b, "\"%s\":{\"views\":%" PRIu64 ",\"visitors\":%" PRIu64 "}",
	    name, c->views, c->visitors);
}

void
render_counts_json(struct buf *b, const char *site, const char *path, int day,
    const struct page_counts *pc, bool counted, const char *reason)
{
	char d[DAY_STRLEN];

	day_format(day, d);
	buf_puts(b, "{\"site\":");
	json_string(b, site);
	buf_puts(b, ",\"path\":");
	json_string(b, path);
	buf_printf(b, ",\"day\":\"%s\",", d);
	counts_object(b, "page", &pc->page);
	buf_putc(b, ',');
	counts_object(b, "page_today", &pc->page_today);
	buf_putc(b, ',');
	counts_object(b, "today", &pc->today);
	buf_putc(b, ',');
	counts_object(b, "total", &pc->total);
	buf_printf(b, ",\"counted\":%s", counted ? "true" : "false");
	if (!counted && reason)
		buf_printf(b, ",\"reason\":\"%s\"", reason);
	buf_puts(b, "}\n");
}
