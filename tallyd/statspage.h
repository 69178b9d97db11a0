/*
 * What the stats page shows, read from a store view and written as HTML
 * or JSON; and the sparkline of /chart.svg. Nothing here knows HTTP.
 */
#ifndef TALLYD_STATSPAGE_H
#define TALLYD_STATSPAGE_H

#include <stdbool.h>

#include "tally/buf.h"
#include "tally/config.h"
#include "tally/path.h"
#include "tally/store.h"

#define STATS_TOP_PER_PAGE	25	/* top pages on one page of the list */
#define STATS_REFERRERS_SHOWN	20
#define STATS_SPAN_MAX		3660	/* days of a custom range: 10 years */
#define STATS_PAGES_MAX		10000	/* page= of the top pages */

enum stats_period {
	PERIOD_TODAY,
	PERIOD_YESTERDAY,
	PERIOD_7D,
	PERIOD_30D,
	PERIOD_12M,
	PERIOD_ALL,
	PERIOD_CUSTOM,		/* from= and to= */
};

/* What a page is made of. A field added here also goes into same_query
 * (stats.c): a page kept for one query is given again only to the same
 * one. */
struct stats_query {
	char	 site[SITE_NAME_MAX + 1];	/* "": the list of sites */
	char	 path[PATH_MAX_LEN + 1];	/* "": the whole site */
	char	 prefix[PATH_MAX_LEN + 1];	/* of the top pages; "" */
	char	 share[TOKEN_MAX + 1];	/* carried in links; "" */
	enum stats_period period;
	int	 from, to;		/* PERIOD_ALL: from is found */
	int	 today;
	unsigned page;			/* of the top pages, from 1 */
	bool	 json;
	bool	 admin;			/* the list shows every site */
};

/* A period by its name in URLs ("30d"); -1 when unknown. */
int stats_period_parse(const char *, enum stats_period *);
/* The days of a named period ending today. */
void stats_period_days(enum stats_period, int today, int *from, int *to);

/* Renders the page (or the list of sites) that q asks for into out; a
 * store failure returns its status, with nothing to answer. */
int stats_page_render(struct store_view *, const struct config *,
    const struct stats_query *, struct buf *out);

/* The sparkline of a series' daily views over days days up to today:
 * path "" is the whole site. */
int stats_chart_render(struct store_view *, const char *site,
    const char *path, int days, int today, struct buf *out);

#endif
