/* The counts JSON. Every number is an integer; strings are escaped. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tally/day.h"
#include "tally/escape.h"
#include "tally/render.h"

/* Built by hand: printf was a fifth of the cost of a hit. */
static void
counts_object(struct buf *b, const char *name, const struct counts *c)
{
	buf_putc(b, '"');
	buf_puts(b, name);
	buf_puts(b, "\":{\"views\":");
	buf_put_u64(b, c->views);
	buf_puts(b, ",\"visitors\":");
	buf_put_u64(b, c->visitors);
	buf_putc(b, '}');
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
	buf_puts(b, ",\"day\":\"");
	buf_puts(b, d);
	buf_puts(b, "\",");
	counts_object(b, "page", &pc->page);
	buf_putc(b, ',');
	counts_object(b, "page_today", &pc->page_today);
	buf_putc(b, ',');
	counts_object(b, "today", &pc->today);
	buf_putc(b, ',');
	counts_object(b, "total", &pc->total);
	buf_puts(b, counted ? ",\"counted\":true" : ",\"counted\":false");
	if (!counted && reason) {
		buf_puts(b, ",\"reason\":\"");
		buf_puts(b, reason);
		buf_putc(b, '"');
	}
	buf_puts(b, "}\n");
}

void
format_thousands(char *out, size_t outsz, uint64_t v)
{
	char	 digits[24];
	size_t	 n, i, o = 0;

	if (outsz == 0)
		return;
	n = (size_t)snprintf(digits, sizeof(digits), "%llu",
	    (unsigned long long)v);
	for (i = 0; i < n && o + 1 < outsz; i++) {
		/* A separator before every group of three from the right. */
		if (i > 0 && (n - i) % 3 == 0) {
			if (o + 2 >= outsz)
				break;
			out[o++] = ',';
		}
		out[o++] = digits[i];
	}
	out[o] = '\0';
}
