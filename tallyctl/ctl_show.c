/*
 * tallyctl's reading commands: stats, top, page, history, sites,
 * referrers. They open the store read-only (which never creates one) and
 * read it in one snapshot, so a running tallyd's commits never tear what
 * they print.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/path.h"
#include "tally/render.h"

#include "ctl.h"

#define DAYS_MAX	36600	/* a century of history is plenty */
#define SPARK_DAYS	30
#define BAR_WIDTH	40

/* Opens the store and a view on it. */
static int
begin_read(struct ctl *ctl, struct store_view **v)
{
	int rc;

	*v = NULL;
	if ((rc = ctl_open(ctl, STORE_READONLY)) != 0)
		return rc;
	if ((*v = store_view_new(ctl->store)) == NULL)
		return ctl_fail(ctl, "store_view_new: out of memory");
	if (store_view_begin(*v) != STORE_OK)
		return ctl_fail(ctl, "starting a read: %s",
		    store_error(ctl->store));
	return 0;
}

static void
end_read(struct store_view *v)
{
	if (v == NULL)
		return;
	store_view_end(v);
	store_view_free(v);
}

static void
json_counts(struct buf *b, const char *name, const struct counts *c)
{
	buf_printf(b, "\"%s\":{\"views\":%" PRIu64 ",\"visitors\":%" PRIu64
	    "}", name, c->views, c->visitors);
}

static int
parse_days(struct ctl *ctl, const char *given, int def, int *days)
{
	uint64_t n;

	if (given == NULL) {
		*days = def;
		return 0;
	}
	if (ctl_number(given, DAYS_MAX, &n) == -1 || n == 0)
		return ctl_usage(ctl, "--days: not a number of days from 1 to "
		    "%d: %s", DAYS_MAX, given);
	*days = (int)n;
	return 0;
}

/* The daily rows of one series in [from, to], as an array indexed by
 * day - from; days without a row stay zero. */
struct window {
	int		 from, to;
	struct counts	*day;
	struct counts	 sum;
};

static int
window_row(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct window *w = arg;

	if (day < w->from || day > w->to)
		return 0;
	w->day[day - w->from] = *c;
	store_counts_add(&w->sum, c);
	return 0;
}

static int
window_read(struct ctl *ctl, struct store_view *v, const char *site,
    const char *path, int from, int to, struct window *w)
{
	memset(w, 0, sizeof(*w));
	w->from = from;
	w->to = to;
	if ((w->day = calloc((size_t)(to - from + 1), sizeof(*w->day))) ==
	    NULL)
		return ctl_fail(ctl, "out of memory");
	if (store_each_day(v, site, path, from, to, false, window_row, w) !=
	    STORE_OK)
		return ctl_fail(ctl, "reading %s %s: %s", site,
		    path[0] ? path : "(site)", store_error(ctl->store));
	return 0;
}

static struct counts
window_sum(const struct window *w, int from, int to)
{
	struct counts s = { 0, 0 };
	int d;

	for (d = from; d <= to; d++) {
		if (d < w->from || d > w->to)
			continue;
		store_counts_add(&s, &w->day[d - w->from]);
	}
	return s;
}

/*
 * A sparkline: zero days get the lowest block, any other day one of the
 * seven above it, so that a quiet day never looks like an empty one.
 */
static void
sparkline(struct buf *b, const struct counts *days, int n)
{
	static const char *const blocks[] = {
		"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"
	};
	uint64_t max = 0;
	int i, level;

	for (i = 0; i < n; i++)
		if (days[i].views > max)
			max = days[i].views;
	for (i = 0; i < n; i++) {
		if (days[i].views == 0 || max == 0)
			level = 0;
		else
			level = 1 + (int)((days[i].views * 7 - 1) / max);
		if (level > 7)
			level = 7;
		buf_puts(b, blocks[level]);
	}
}

/* A horizontal bar of v / max of width cells, in eighths of a cell. */
static void
bar(struct buf *b, uint64_t v, uint64_t max, int width)
{
	static const char *const eighths[] = {
		"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"
	};
	uint64_t units;
	int i;

	if (max == 0 || v == 0)
		return;
	/* Scaled in long double: views times 320 may not fit 64 bits. */
	units = (uint64_t)((long double)v * width * 8 / max + 0.5L);
	if (units == 0)
		units = 1;	/* something was there */
	for (i = 0; (uint64_t)i < units / 8; i++)
		buf_puts(b, "█");
	buf_puts(b, eighths[units % 8]);
}

/*
 * stats
 */

int
cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *site;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_view *v = NULL;
	struct series_counts sc;
	struct window w = { 0 };
	struct counts today, yesterday, last7, last30;
	struct table t;
	struct buf b;
	char day[DAY_STRLEN], n1[NUM_STRLEN], n2[NUM_STRLEN];
	int rc, nargs, now;

	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0 ||
	    (rc = ctl_site(ctl, site_opt, &site)) != 0)
		return rc;
	if ((rc = begin_read(ctl, &v)) != 0 ||
	    (rc = ctl_site_known(ctl, v, site)) != 0)
		goto done;
	now = day_today();
	day_format(now, day);
	if (store_get(v, site, SITE_SERIES, now, &sc) != STORE_OK) {
		rc = ctl_fail(ctl, "reading %s: %s", site,
		    store_error(ctl->store));
		goto done;
	}
	if ((rc = window_read(ctl, v, site, SITE_SERIES, now - SPARK_DAYS + 1,
	    now, &w)) != 0)
		goto done;
	today = window_sum(&w, now, now);
	yesterday = window_sum(&w, now - 1, now - 1);
	last7 = window_sum(&w, now - 6, now);
	last30 = window_sum(&w, now - 29, now);

	buf_init(&b);
	if (ctl->json) {
		buf_puts(&b, "{\"site\":");
		json_string(&b, site);
		buf_printf(&b, ",\"day\":\"%s\",", day);
		json_counts(&b, "today", &today);
		buf_putc(&b, ',');
		json_counts(&b, "yesterday", &yesterday);
		buf_putc(&b, ',');
		json_counts(&b, "last7", &last7);
		buf_putc(&b, ',');
		json_counts(&b, "last30", &last30);
		buf_putc(&b, ',');
		json_counts(&b, "total", &sc.total);
		buf_puts(&b, "}\n");
		fputs(b.data, stdout);
		buf_free(&b);
		goto done;
	}

	printf("%s%s%s  %s\n\n", ctl_sgr(ctl, "1"), site, ctl_sgr(ctl, "0"),
	    day);
	table_init(&t, "lrr");
	table_row(&t, "", "views", "visitors");
#define ROW(label, c) table_row(&t, label, ctl_thousands(n1, (c).views), \
	    ctl_thousands(n2, (c).visitors))
	ROW("today", today);
	ROW("yesterday", yesterday);
	ROW("last 7 days", last7);
	ROW("last 30 days", last30);
	ROW("total", sc.total);
#undef ROW
	table_print(&t, ctl, stdout, true, 0);
	table_free(&t);

	sparkline(&b, w.day, SPARK_DAYS);
	day_format(now - SPARK_DAYS + 1, day);
	printf("\nviews per day since %s:\n%s%s%s\n", day, ctl_sgr(ctl, "36"),
	    b.data, ctl_sgr(ctl, "0"));
	buf_free(&b);
done:
	free(w.day);
	end_read(v);
	return rc;
}

/*
 * top
 */

struct top_state {
	struct ctl	*ctl;
	struct store_view *v;
	bool		 all;
	int		 from, to;
	uint64_t	 limit;		/* 0: every page */
	struct top_entry *e;
	size_t		 n, cap;
	size_t		 more;		/* pages with views left out of e */
	struct counts	 sum;	/* of one page's window */
	bool		 by_day;	/* the window comes from the recent rows */
	struct counts	*sums;		/* by_day: indexed by series id */
	size_t		 nsums;
	int		 err;
};

static void
top_grow(struct top_state *ts)
{
	if (ts->n < ts->cap)
		return;
	ts->cap = ts->cap ? ts->cap * 2 : 256;
	if ((ts->e = reallocarray(ts->e, ts->cap, sizeof(*ts->e))) == NULL)
		fatal("top");
}

/* The entries as a heap with the one shown last (fewest views, then the
 * last path) on top: a page the walk offers is kept only when it would
 * be shown, and only then is its path copied. */
static void
top_sift_down(struct top_entry *e, size_t n, size_t i)
{
	struct top_entry tmp;
	size_t c;

	for (; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && top_entry_cmp(&e[c + 1], &e[c]) > 0)
			c++;
		if (top_entry_cmp(&e[c], &e[i]) <= 0)
			break;
		tmp = e[i];
		e[i] = e[c];
		e[c] = tmp;
	}
}

static void
top_sift_up(struct top_entry *e, size_t i)
{
	struct top_entry tmp;

	for (; i > 0 && top_entry_cmp(&e[i], &e[(i - 1) / 2]) > 0; i = (i - 1) / 2) {
		tmp = e[i];
		e[i] = e[(i - 1) / 2];
		e[(i - 1) / 2] = tmp;
	}
}

static void
top_offer(struct top_state *ts, const char *path, uint32_t id,
    const struct counts *c)
{
	struct top_entry cand = { (char *)path, id, *c };

	if (ts->limit && ts->n == ts->limit) {
		ts->more++;
		if (top_entry_cmp(&cand, &ts->e[0]) >= 0)
			return;
		free(ts->e[0].path);
		if ((ts->e[0].path = strdup(path)) == NULL)
			fatal("top");
		ts->e[0].id = id;
		ts->e[0].c = *c;
		top_sift_down(ts->e, ts->n, 0);
		return;
	}
	top_grow(ts);
	if ((ts->e[ts->n].path = strdup(path)) == NULL)
		fatal("top");
	ts->e[ts->n].id = id;
	ts->e[ts->n].c = *c;
	if (ts->limit)
		top_sift_up(ts->e, ts->n);
	ts->n++;
}

static int
top_day(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct top_state *ts = arg;

	store_counts_add(&ts->sum, c);
	return 0;
}

static int
top_series(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct top_state *ts = arg;
	struct counts c;
	int rc;

	if (path[0] == '\0')
		return 0;
	if (ts->all)
		c = sc->total;
	else {
		memset(&ts->sum, 0, sizeof(ts->sum));
		rc = store_each_day(ts->v, site, path, ts->from, ts->to, false,
		    top_day, ts);
		if (rc != STORE_OK)
			return rc;
		c = ts->sum;
	}
	if (c.views > 0)
		top_offer(ts, path, sc->id, &c);
	return 0;
}

/* Names a page found by its id and adds it; false when it is not one of
 * site's pages (any more). */
static int
top_add_id(struct top_state *ts, const char *site, uint32_t id,
    const struct counts *c, bool *added)
{
	char s[SITE_NAME_MAX + 2], path[PATH_MAX_LEN + 1024];
	int rc;

	*added = false;
	rc = store_series_name(ts->v, id, s, sizeof(s), path, sizeof(path));
	if (rc == STORE_NOTFOUND)
		return STORE_OK;	/* reset since */
	if (rc != STORE_OK)
		return rc;
	if (strcmp(s, site) != 0 || path[0] == '\0')
		return STORE_OK;
	top_grow(ts);
	if ((ts->e[ts->n].path = strdup(path)) == NULL)
		fatal("top");
	ts->e[ts->n].id = id;
	ts->e[ts->n++].c = *c;
	*added = true;
	return STORE_OK;
}

static int
top_recent(void *arg, uint32_t id, int day, const struct counts *c)
{
	struct top_state *ts = arg;

	/* Rows of other sites and of reset pages have ids past the table or
	 * no entry; they add to sums nobody reads. */
	if (id < ts->nsums) {
		store_counts_add(&ts->sums[id], c);
	}
	return 0;
}

static uint64_t *sort_views;	/* for the qsort of ids below */

static int
id_cmp(const void *a, const void *b)
{
	uint64_t x = sort_views[*(const uint32_t *)a];
	uint64_t y = sort_views[*(const uint32_t *)b];

	return x > y ? -1 : x < y;
}

/* The window from the day-first rows: one range, however many pages.
 * Series ids are small and dense, so the sums are an array indexed by
 * id, which a day's rows (sorted by id) walk in order. Only the pages
 * shown are then named, most viewed first; ties at the limit are all
 * taken, so that the sort by path gives the same list every time. */
static int
top_by_day(struct top_state *ts, const char *site, uint64_t limit)
{
	uint32_t max_id, *ids = NULL;
	uint64_t *views = NULL, last = 0;
	size_t i, nids = 0;
	bool added;
	int rc;

	if ((rc = store_max_id(ts->v, &max_id)) != STORE_OK)
		return rc;
	ts->nsums = (size_t)max_id + 1;
	if ((ts->sums = calloc(ts->nsums, sizeof(*ts->sums))) == NULL)
		fatal("top");
	if ((rc = store_each_recent(ts->v, ts->from, ts->to, top_recent,
	    ts)) != STORE_OK)
		goto done;
	if ((ids = calloc(ts->nsums, sizeof(*ids))) == NULL ||
	    (views = calloc(ts->nsums, sizeof(*views))) == NULL)
		fatal("top");
	for (i = 0; i < ts->nsums; i++) {
		views[i] = ts->sums[i].views;
		if (views[i] > 0)
			ids[nids++] = (uint32_t)i;
	}
	sort_views = views;
	qsort(ids, nids, sizeof(*ids), id_cmp);
	for (i = 0; i < nids; i++) {
		uint32_t id = ids[i];

		if (limit && ts->n >= limit && views[id] < last)
			break;
		if ((rc = top_add_id(ts, site, id, &ts->sums[id], &added)) !=
		    STORE_OK)
			goto done;
		if (added)
			last = views[id];
	}
	rc = STORE_OK;
done:
	free(ids);
	free(views);
	free(ts->sums);
	ts->sums = NULL;
	return rc;
}

int
cmd_top(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *days_opt = NULL, *limit_opt = NULL;
	const char *site;
	bool all = false;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "days", &days_opt, NULL },
		{ "all", NULL, &all },
		{ "limit", &limit_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct top_state ts;
	bool by_window = false;
	struct table t;
	struct buf b;
	char n1[NUM_STRLEN], n2[NUM_STRLEN], rank[24], d1[DAY_STRLEN],
	    d2[DAY_STRLEN], epath[4 * PATH_MAX_LEN + 1];
	uint64_t limit = 10;
	size_t i, shown;
	int rc, nargs, days = 0;

	memset(&ts, 0, sizeof(ts));
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0 ||
	    (rc = ctl_site(ctl, site_opt, &site)) != 0 ||
	    (rc = parse_days(ctl, days_opt, 30, &days)) != 0)
		return rc;
	if (all && days_opt)
		return ctl_usage(ctl, "--days and --all exclude each other");
	if (limit_opt && ctl_number(limit_opt, 1000000000, &limit) == -1)
		return ctl_usage(ctl, "--limit: not a number: %s", limit_opt);

	if ((rc = begin_read(ctl, &ts.v)) != 0 ||
	    (rc = ctl_site_known(ctl, ts.v, site)) != 0)
		goto done;
	ts.ctl = ctl;
	ts.all = all;
	ts.limit = limit;
	ts.to = day_today();
	ts.from = ts.to - days + 1;
	if (!all) {
		rc = store_window_top(ts.v, site, ts.from, ts.to, limit,
		    &ts.e, &ts.n);
		if (rc != STORE_OK && rc != STORE_NOTFOUND) {
			rc = ctl_fail(ctl, "reading %s: %s", site,
			    store_error(ctl->store));
			goto done;
		}
		ts.cap = ts.n;
		by_window = rc == STORE_OK;
		rc = 0;
	}
	if (!all && !by_window) {
		int floor;

		if (store_recent_floor(ts.v, &floor) != STORE_OK) {
			rc = ctl_fail(ctl, "reading %s: %s", site,
			    store_error(ctl->store));
			goto done;
		}
		ts.by_day = ts.from >= floor;
	}
	if (!by_window && (ts.by_day ? top_by_day(&ts, site, limit) :
	    store_each_series(ts.v, site, top_series, &ts)) != STORE_OK) {
		rc = ctl_fail(ctl, "reading %s: %s", site,
		    store_error(ctl->store));
		goto done;
	}
	if (ts.n > 0)
		qsort(ts.e, ts.n, sizeof(*ts.e), top_entry_cmp);
	/* --limit 0: every page */
	shown = (limit == 0 || limit > ts.n) ? ts.n : (size_t)limit;

	if (ctl->json) {
		buf_init(&b);
		buf_putc(&b, '[');
		for (i = 0; i < shown; i++) {
			buf_puts(&b, i ? ",\n{\"path\":" : "\n{\"path\":");
			json_string(&b, ts.e[i].path);
			buf_printf(&b, ",\"views\":%" PRIu64 ",\"visitors\":%"
			    PRIu64 "}", ts.e[i].c.views, ts.e[i].c.visitors);
		}
		buf_puts(&b, shown ? "\n]\n" : "]\n");
		fputs(b.data, stdout);
		buf_free(&b);
		goto done;
	}

	day_format(ts.from, d1);
	day_format(ts.to, d2);
	if (all)
		printf("%s%s%s  most viewed pages of all time\n\n",
		    ctl_sgr(ctl, "1"), site, ctl_sgr(ctl, "0"));
	else
		printf("%s%s%s  most viewed pages, %d day%s (%s to %s)\n\n",
		    ctl_sgr(ctl, "1"), site, ctl_sgr(ctl, "0"), days,
		    days == 1 ? "" : "s", d1, d2);
	if (shown == 0) {
		printf("no views\n");
		goto done;
	}
	table_init(&t, "rrrl");
	table_row(&t, "#", "views", "visitors", "path");
	for (i = 0; i < shown; i++) {
		snprintf(rank, sizeof(rank), "%zu", i + 1);
		/* Paths are checked on the way in, but a store written
		 * before that check may hold controls. */
		text_escape(epath, sizeof(epath), ts.e[i].path,
		    strlen(ts.e[i].path));
		table_row(&t, rank, ctl_thousands(n1, ts.e[i].c.views),
		    ctl_thousands(n2, ts.e[i].c.visitors), epath);
	}
	table_print(&t, ctl, stdout, true, 0);
	table_free(&t);
	if (shown < ts.n + ts.more)
		printf("(%zu more; --limit 0 shows all)\n",
		    ts.n + ts.more - shown);
done:
	for (i = 0; i < ts.n; i++)
		free(ts.e[i].path);
	free(ts.e);
	end_read(ts.v);
	return rc;
}

/*
 * page
 */

int
cmd_page(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *site;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_view *v = NULL;
	struct series_counts page, whole;
	struct page_counts pc;
	struct table t;
	struct buf b;
	char *args[1], path[PATH_MAX_LEN + 1], day[DAY_STRLEN];
	char n1[NUM_STRLEN], n2[NUM_STRLEN];
	int rc, nargs, now;

	if ((rc = ctl_parse(ctl, argc, argv, opts, args, &nargs, 1, 1)) != 0 ||
	    (rc = ctl_site(ctl, site_opt, &site)) != 0 ||
	    (rc = ctl_path(ctl, "PATH", args[0], path)) != 0)
		return rc;
	if ((rc = begin_read(ctl, &v)) != 0 ||
	    (rc = ctl_site_known(ctl, v, site)) != 0)
		goto done;
	now = day_today();
	if (store_get(v, site, path, now, &page) != STORE_OK ||
	    store_get(v, site, SITE_SERIES, now, &whole) != STORE_OK) {
		rc = ctl_fail(ctl, "reading %s %s: %s", site, path,
		    store_error(ctl->store));
		goto done;
	}
	pc.page = page.total;
	pc.page_today = page.day;
	pc.today = whole.day;
	pc.total = whole.total;

	if (ctl->json) {
		/* The very answer of GET /count: one code makes both. */
		buf_init(&b);
		render_counts_json(&b, site, path, now, &pc, false, "readonly");
		fputs(b.data, stdout);
		buf_free(&b);
		goto done;
	}
	day_format(now, day);
	printf("%s%s%s  %s  %s\n\n", ctl_sgr(ctl, "1"), site,
	    ctl_sgr(ctl, "0"), path, day);
	table_init(&t, "lrr");
	table_row(&t, "", "views", "visitors");
	table_row(&t, "page today", ctl_thousands(n1, pc.page_today.views),
	    ctl_thousands(n2, pc.page_today.visitors));
	table_row(&t, "page total", ctl_thousands(n1, pc.page.views),
	    ctl_thousands(n2, pc.page.visitors));
	table_row(&t, "site today", ctl_thousands(n1, pc.today.views),
	    ctl_thousands(n2, pc.today.visitors));
	table_row(&t, "site total", ctl_thousands(n1, pc.total.views),
	    ctl_thousands(n2, pc.total.visitors));
	table_print(&t, ctl, stdout, true, 0);
	table_free(&t);
	if (!page.exists)
		printf("\n(no views of this page yet)\n");
done:
	end_read(v);
	return rc;
}

/*
 * history
 */

int
cmd_history(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *path_opt = NULL, *days_opt = NULL;
	const char *site;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "path", &path_opt, NULL },
		{ "days", &days_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_view *v = NULL;
	struct window w = { 0 };
	struct table t;
	struct buf b, bb;
	char path[PATH_MAX_LEN + 1], day[DAY_STRLEN];
	char n1[NUM_STRLEN], n2[NUM_STRLEN];
	uint64_t max = 0;
	int rc, nargs, days = 0, now, d;

	path[0] = '\0';
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0 ||
	    (rc = ctl_site(ctl, site_opt, &site)) != 0 ||
	    (rc = parse_days(ctl, days_opt, 30, &days)) != 0 ||
	    (path_opt && (rc = ctl_path(ctl, "--path", path_opt, path)) != 0))
		return rc;
	if ((rc = begin_read(ctl, &v)) != 0 ||
	    (rc = ctl_site_known(ctl, v, site)) != 0)
		goto done;
	now = day_today();
	if ((rc = window_read(ctl, v, site, path, now - days + 1, now,
	    &w)) != 0)
		goto done;

	buf_init(&b);
	if (ctl->json) {
		buf_putc(&b, '[');
		for (d = w.from; d <= w.to; d++) {
			day_format(d, day);
			buf_printf(&b, "%s{\"day\":\"%s\",\"views\":%" PRIu64
			    ",\"visitors\":%" PRIu64 "}",
			    d == w.from ? "\n" : ",\n", day,
			    w.day[d - w.from].views,
			    w.day[d - w.from].visitors);
		}
		buf_puts(&b, "\n]\n");
		fputs(b.data, stdout);
		buf_free(&b);
		goto done;
	}

	printf("%s%s%s  %s, %d day%s\n\n", ctl_sgr(ctl, "1"), site,
	    ctl_sgr(ctl, "0"), path[0] ? path : "all pages", days,
	    days == 1 ? "" : "s");
	for (d = w.from; d <= w.to; d++)
		if (w.day[d - w.from].views > max)
			max = w.day[d - w.from].views;
	table_init(&t, "lrrl");
	table_row(&t, "day", "views", "visitors", "");
	buf_init(&bb);
	for (d = w.from; d <= w.to; d++) {
		day_format(d, day);
		buf_reset(&bb);
		if (w.day[d - w.from].views > 0) {
			buf_puts(&bb, ctl_sgr(ctl, "36"));
			bar(&bb, w.day[d - w.from].views, max, BAR_WIDTH);
			buf_puts(&bb, ctl_sgr(ctl, "0"));
		}
		table_row(&t, day, ctl_thousands(n1, w.day[d - w.from].views),
		    ctl_thousands(n2, w.day[d - w.from].visitors), bb.data);
	}
	table_print(&t, ctl, stdout, true, 0);
	table_free(&t);
	buf_free(&bb);
	printf("\n%-10s  %s views, %s visitors\n", "sum",
	    ctl_thousands(n1, w.sum.views), ctl_thousands(n2, w.sum.visitors));
	buf_free(&b);
done:
	free(w.day);
	end_read(v);
	return rc;
}

/*
 * sites
 */

struct site_entry {
	char		 name[SITE_NAME_MAX + 1];
	struct counts	 today, total;
	uint32_t	 npages;
};

struct sites_state {
	struct site_entry *e;
	size_t		 n, cap;
	int		 today;
};

static struct site_entry *
site_add(struct sites_state *ss, const char *name)
{
	size_t i;

	for (i = 0; i < ss->n; i++)
		if (strcmp(ss->e[i].name, name) == 0)
			return &ss->e[i];
	if (ss->n == ss->cap) {
		ss->cap = ss->cap ? ss->cap * 2 : 16;
		if ((ss->e = reallocarray(ss->e, ss->cap, sizeof(*ss->e))) ==
		    NULL)
			fatal("sites");
	}
	memset(&ss->e[ss->n], 0, sizeof(ss->e[0]));
	snprintf(ss->e[ss->n].name, sizeof(ss->e[0].name), "%s", name);
	return &ss->e[ss->n++];
}

static int
sites_series(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct sites_state *ss = arg;
	struct site_entry *e;

	if (path[0] != '\0')
		return 0;
	e = site_add(ss, site);
	e->total = sc->total;
	e->npages = sc->npages;
	return 0;
}

static int
site_cmp(const void *a, const void *b)
{
	return strcmp(((const struct site_entry *)a)->name,
	    ((const struct site_entry *)b)->name);
}

int
cmd_sites(struct ctl *ctl, int argc, char **argv)
{
	struct store_view *v = NULL;
	struct sites_state ss;
	struct series_counts sc;
	struct table t;
	struct buf b;
	char n1[NUM_STRLEN], n2[NUM_STRLEN], n3[NUM_STRLEN], n4[NUM_STRLEN],
	    n5[NUM_STRLEN];
	size_t i;
	int rc, nargs;

	memset(&ss, 0, sizeof(ss));
	if ((rc = ctl_parse(ctl, argc, argv, NULL, NULL, &nargs, 0, 0)) != 0)
		return rc;
	if ((rc = begin_read(ctl, &v)) != 0)
		goto done;
	ss.today = day_today();
	if (store_each_series(v, NULL, sites_series, &ss) != STORE_OK) {
		rc = ctl_fail(ctl, "reading the sites: %s",
		    store_error(ctl->store));
		goto done;
	}
	/* Configured sites without counts yet are sites too. */
	for (i = 0; i < ctl->cfg.nsites; i++)
		site_add(&ss, ctl->cfg.sites[i].name);
	for (i = 0; i < ss.n; i++) {
		if (store_get(v, ss.e[i].name, SITE_SERIES, ss.today, &sc) !=
		    STORE_OK) {
			rc = ctl_fail(ctl, "reading %s: %s", ss.e[i].name,
			    store_error(ctl->store));
			goto done;
		}
		ss.e[i].today = sc.day;
	}
	qsort(ss.e, ss.n, sizeof(*ss.e), site_cmp);

	if (ctl->json) {
		buf_init(&b);
		buf_putc(&b, '[');
		for (i = 0; i < ss.n; i++) {
			buf_puts(&b, i ? ",\n{\"site\":" : "\n{\"site\":");
			json_string(&b, ss.e[i].name);
			buf_printf(&b, ",\"pages\":%" PRIu32 ",",
			    ss.e[i].npages);
			json_counts(&b, "today", &ss.e[i].today);
			buf_putc(&b, ',');
			json_counts(&b, "total", &ss.e[i].total);
			buf_putc(&b, '}');
		}
		buf_puts(&b, ss.n ? "\n]\n" : "]\n");
		fputs(b.data, stdout);
		buf_free(&b);
		goto done;
	}
	table_init(&t, "lrrrrr");
	table_row(&t, "site", "pages", "views today", "visitors today",
	    "views", "visitors");
	for (i = 0; i < ss.n; i++)
		table_row(&t, ss.e[i].name, ctl_thousands(n1, ss.e[i].npages),
		    ctl_thousands(n2, ss.e[i].today.views),
		    ctl_thousands(n3, ss.e[i].today.visitors),
		    ctl_thousands(n4, ss.e[i].total.views),
		    ctl_thousands(n5, ss.e[i].total.visitors));
	table_print(&t, ctl, stdout, true, 0);
	table_free(&t);
done:
	free(ss.e);
	end_read(v);
	return rc;
}

/*
 * referrers
 */

int
cmd_referrers(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *days_opt = NULL, *site;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "days", &days_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct store_view *v = NULL;
	struct referrer_totals rs;
	struct table t;
	struct buf b;
	char n1[NUM_STRLEN], rank[24], d1[DAY_STRLEN], d2[DAY_STRLEN],
	    ehost[4 * STORE_REFERRER_MAX + 1];
	size_t i;
	int rc, nargs, days = 0, from, to;

	memset(&rs, 0, sizeof(rs));
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0 ||
	    (rc = ctl_site(ctl, site_opt, &site)) != 0 ||
	    (rc = parse_days(ctl, days_opt, 30, &days)) != 0)
		return rc;
	if ((rc = begin_read(ctl, &v)) != 0 ||
	    (rc = ctl_site_known(ctl, v, site)) != 0)
		goto done;
	to = day_today();
	from = to - days + 1;
	if (store_referrer_totals(v, site, from, to, &rs) != STORE_OK) {
		rc = ctl_fail(ctl, "reading %s: %s", site,
		    store_error(ctl->store));
		goto done;
	}

	if (ctl->json) {
		buf_init(&b);
		buf_putc(&b, '[');
		for (i = 0; i < rs.n; i++) {
			buf_puts(&b, i ? ",\n{\"host\":" : "\n{\"host\":");
			json_string(&b, rs.e[i].host);
			buf_printf(&b, ",\"views\":%" PRIu64 "}",
			    rs.e[i].views);
		}
		buf_puts(&b, rs.n ? "\n]\n" : "]\n");
		fputs(b.data, stdout);
		buf_free(&b);
		goto done;
	}
	day_format(from, d1);
	day_format(to, d2);
	printf("%s%s%s  referrers, %d day%s (%s to %s)\n\n",
	    ctl_sgr(ctl, "1"), site, ctl_sgr(ctl, "0"), days,
	    days == 1 ? "" : "s", d1, d2);
	if (rs.n == 0) {
		printf("no views from other sites\n");
		goto done;
	}
	table_init(&t, "rrl");
	table_row(&t, "#", "views", "host");
	for (i = 0; i < rs.n; i++) {
		snprintf(rank, sizeof(rank), "%zu", i + 1);
		/* Checked on the way in; a damaged store is no excuse to
		 * drive a terminal. */
		text_escape(ehost, sizeof(ehost), rs.e[i].host,
		    strlen(rs.e[i].host));
		table_row(&t, rank, ctl_thousands(n1, rs.e[i].views), ehost);
	}
	table_print(&t, ctl, stdout, true, 0);
	table_free(&t);
done:
	store_referrer_totals_free(&rs);
	end_read(v);
	return rc;
}
