/* Answers rendered for clients: counts JSON, the SVG badge, the front page. */
#ifndef TALLY_RENDER_H
#define TALLY_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/buf.h"
#include "tally/counter.h"

/* The counts JSON of SPEC; reason is NULL when counted. */
void render_counts_json(struct buf *, const char *site, const char *path,
    int day, const struct page_counts *, bool counted, const char *reason);

struct badge_item {
	const char *label;	/* valid UTF-8, at most 64 characters */
	uint64_t value;
};
/* A flat SVG badge, one label/value pair per item, sized to its text. */
void render_badge_svg(struct buf *, const struct badge_item *, size_t n);

struct front_page {
	const char *base_url;	/* "http://host:port", from the request */
	const char *site;
	const char *day;
	const struct page_counts *counts;
};
void render_front_page(struct buf *, const struct front_page *);

/* Thousands separators: 254014 -> "254,014". */
void format_thousands(char *out, size_t outsz, uint64_t v);

#endif
