/* tallyd's front page, GET /. */
#ifndef TALLYD_FRONTPAGE_H
#define TALLYD_FRONTPAGE_H

#include "tally/buf.h"
#include "tally/store.h"

struct front_page {
	const char *base_url;	/* "http://host:port", from the request */
	const char *site;
	const char *day;
	const struct page_counts *counts;
};
void render_front_page(struct buf *, const struct front_page *);

#endif
