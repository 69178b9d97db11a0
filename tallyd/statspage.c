/*
 * The stats page: a period's views and visitors per day as a chart, its
 * totals against the period before, its top pages and its referrers.
 *
 * Everything is read in ranges: the site's daily rows for the chart and
 * the previous period in one walk; the top pages of the last 30 days
 * from the store's sums of that window, most viewed first, reading only
 * the pages shown; those of another recent window from the day-first
 * rows (one range however many pages, see store.h), naming only the
 * pages shown; those of all time from the series walk.
 * A window older than the day-first rows ranks pages by their all-time
 * counts, which no window exceeds, and sums the days of pages in that
 * order until no page left can reach the list: a few hundred pages
 * rather than all of them.
 *
 * The HTML needs no script and loads nothing: charts are inline SVG with
 * a <title> per bar (the browser's tooltip) and a table beside them for
 * screen readers and for copying.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/log.h"
#include "tally/render.h"

#include "statspage.h"

#define CHART_W		600
#define CHART_H		150
#define SPARK_H		20
#define SPARK_STEP	4	/* pixels a day */

static const char *const period_names[] = {
	[PERIOD_TODAY] = "today",
	[PERIOD_YESTERDAY] = "yesterday",
	[PERIOD_7D] = "7d",
	[PERIOD_30D] = "30d",
	[PERIOD_12M] = "12m",
	[PERIOD_ALL] = "all",
	[PERIOD_CUSTOM] = "custom",
};

static const char *const period_titles[] = {
	[PERIOD_TODAY] = "Today",
	[PERIOD_YESTERDAY] = "Yesterday",
	[PERIOD_7D] = "7 days",
	[PERIOD_30D] = "30 days",
	[PERIOD_12M] = "12 months",
	[PERIOD_ALL] = "All time",
	[PERIOD_CUSTOM] = "Range",
};

int
stats_period_parse(const char *s, enum stats_period *p)
{
	int i;

	for (i = PERIOD_TODAY; i < PERIOD_CUSTOM; i++)
		if (strcmp(s, period_names[i]) == 0) {
			*p = (enum stats_period)i;
			return 0;
		}
	return -1;
}

void
stats_period_days(enum stats_period p, int today, int *from, int *to)
{
	*to = today;
	switch (p) {
	case PERIOD_TODAY:
		*from = today;
		break;
	case PERIOD_YESTERDAY:
		*from = *to = today - 1;
		break;
	case PERIOD_7D:
		*from = today - 6;
		break;
	case PERIOD_12M:
		*from = today - 364;
		break;
	case PERIOD_ALL:
		*from = 0;	/* found in the store */
		break;
	default:
		*from = today - 29;
		break;
	}
}

/*
 * What the page shows.
 */

struct page_data {
	const struct stats_query *q;
	const char	*series;	/* the page, or SITE_SERIES */
	int		 from, to;	/* of the chart */
	struct counts	*days;		/* to - from + 1 */
	struct counts	 total, previous;
	int		 prev_from, prev_to;
	bool		 has_previous;
	struct top_entry *top;
	size_t		 ntop, captop;
	bool		 more;		/* pages after this page of them */
	struct referrer_totals refs;	/* the first STATS_REFERRERS_SHOWN */
	uint64_t	 refs_rest;	/* views of the hosts not shown */
};

struct day_walk {
	struct page_data *pd;
	int		 first;		/* the first day with a row, or -1 */
};

static int
first_day(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct day_walk *dw = arg;

	dw->first = day;
	return 1;	/* enough */
}

static int
day_row(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct page_data *pd = arg;

	if (day >= pd->from && day <= pd->to) {
		pd->days[day - pd->from] = *c;
		store_counts_add(&pd->total, c);
	} else if (day >= pd->prev_from && day <= pd->prev_to)
		store_counts_add(&pd->previous, c);
	return 0;
}

/* The chart's days and the totals, with the previous period of the
 * same length, in one walk of the series' rows. */
static int
read_days(struct store_view *v, struct page_data *pd)
{
	const struct stats_query *q = pd->q;
	struct series_counts sc;
	struct day_walk dw = { pd, -1 };
	int rc, len;

	pd->from = q->from;
	pd->to = q->to;
	if (q->period == PERIOD_ALL) {
		rc = store_each_day(v, q->site, pd->series, 0, q->to, false,
		    first_day, &dw);
		if (rc != STORE_OK && rc != 1)
			return rc;
		pd->from = dw.first >= 0 ? dw.first : q->to;
	}
	len = pd->to - pd->from + 1;
	if ((pd->days = calloc((size_t)len, sizeof(*pd->days))) == NULL)
		fatal("stats days");
	pd->has_previous = q->period != PERIOD_ALL;
	pd->prev_to = pd->from - 1;
	pd->prev_from = pd->has_previous ? pd->from - len : pd->from;
	if (pd->prev_from < 0)
		pd->prev_from = 0;
	rc = store_each_day(v, q->site, pd->series, pd->prev_from, pd->to,
	    false, day_row, pd);
	if (rc != STORE_OK)
		return rc;
	/* All time includes what tallyctl set adjusted, as tallyctl
	 * stats shows it. */
	if (q->period == PERIOD_ALL) {
		rc = store_get(v, q->site, pd->series, q->to, &sc);
		if (rc == STORE_OK)
			pd->total = sc.total;
		else if (rc != STORE_NOTFOUND)
			return rc;
	}
	return STORE_OK;
}

static void
top_push(struct page_data *pd, const char *path, uint32_t id,
    const struct counts *c)
{
	if (pd->ntop == pd->captop) {
		pd->captop = pd->captop ? pd->captop * 2 : 64;
		if ((pd->top = reallocarray(pd->top, pd->captop,
		    sizeof(*pd->top))) == NULL)
			fatal("stats top");
	}
	if ((pd->top[pd->ntop].path = strdup(path)) == NULL)
		fatal("stats top");
	pd->top[pd->ntop].id = id;
	pd->top[pd->ntop++].c = *c;
}

static bool
has_prefix(const char *path, const char *prefix)
{
	return strncmp(path, prefix, strlen(prefix)) == 0;
}

/*
 * Candidates for the list: a series id and its counts (the window's, or
 * a bound of them), kept without their paths, which only the pages
 * shown need: a page of 100,000 candidates allocates no string.
 */
struct cand {
	uint32_t	 id;
	struct counts	 c;
};

struct cands {
	struct cand	*v;
	size_t		 n, cap;
};

static void
cand_push(struct cands *cs, uint32_t id, const struct counts *c)
{
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 1024;
		if ((cs->v = reallocarray(cs->v, cs->cap, sizeof(*cs->v))) ==
		    NULL)
			fatal("stats candidates");
	}
	cs->v[cs->n].id = id;
	cs->v[cs->n++].c = *c;
}

/* Most views first; ties by id, the order pages were first counted, so
 * that the list pages stably. */
static bool
cand_before(const struct cand *x, const struct cand *y)
{
	if (x->c.views != y->c.views)
		return x->c.views > y->c.views;
	return x->id < y->id;
}

static int
cand_cmp(const void *a, const void *b)
{
	return cand_before(a, b) ? -1 : cand_before(b, a);
}

static void
cand_swap(struct cand *a, struct cand *b)
{
	struct cand t = *a;

	*a = *b;
	*b = t;
}

/* Puts the k first candidates at the front, sorted, in time linear in
 * n (quickselect) plus k log k: the list needs a few dozen of them. The
 * pivot is drawn at random (xorshift): pages come in the order of their
 * paths, which may follow their views, and a fixed pick can make every
 * round a long one. */
static void
cands_select(struct cands *cs, size_t k)
{
	static uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t lo = 0, hi = cs->n, i, store;
	struct cand pivot;

	if (k >= cs->n) {
		if (cs->n > 0)
			qsort(cs->v, cs->n, sizeof(*cs->v), cand_cmp);
		return;
	}
	while (hi - lo > 1) {
		/* Partition [lo, hi) around a random one of it. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		cand_swap(&cs->v[lo + (size_t)(x % (hi - lo))], &cs->v[hi - 1]);
		pivot = cs->v[hi - 1];
		for (store = lo, i = lo; i < hi - 1; i++)
			if (cand_before(&cs->v[i], &pivot))
				cand_swap(&cs->v[i], &cs->v[store++]);
		cand_swap(&cs->v[store], &cs->v[hi - 1]);
		if (store == k)
			break;
		if (store < k)
			lo = store + 1;
		else
			hi = store;
	}
	qsort(cs->v, k, sizeof(*cs->v), cand_cmp);
}

/* The window's sums per series id, from the day-first rows. */
struct sums {
	struct counts	*by_id;
	size_t		 n;
};

static int
sum_recent(void *arg, uint32_t id, int day, const struct counts *c)
{
	struct sums *s = arg;

	/* Rows of reset series may remain: their ids are skipped later. */
	if (id < s->n)
		store_counts_add(&s->by_id[id], c);
	return 0;
}

struct series_walk {
	const struct stats_query *q;
	const struct sums *sums;	/* NULL: all-time counts */
	struct cands	*cs;
};

/* Every page of the site matching the prefix, with its window from
 * sums, or its all-time count: the window itself, or a bound of it. */
static int
walk_page(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct series_walk *sw = arg;
	const struct counts *c = &sc->total;

	if (path[0] == '\0' || !has_prefix(path, sw->q->prefix))
		return 0;
	if (sw->sums != NULL) {
		if (sc->id >= sw->sums->n)
			return 0;
		c = &sw->sums->by_id[sc->id];
	}
	if (c->views > 0)
		cand_push(sw->cs, sc->id, c);
	return 0;
}

/* Names the candidates in order until want pages of the site are in
 * the list; candidates of other sites, or reset since, are skipped.
 * *used says how many were looked at. */
static int
name_cands(struct store_view *v, struct page_data *pd,
    const struct cands *cs, size_t from, size_t to, size_t want,
    size_t *used)
{
	char site[SITE_NAME_MAX + 2], path[PATH_MAX_LEN + 1024];
	size_t i;
	int rc;

	for (i = from; i < to && pd->ntop < want; i++) {
		rc = store_series_name(v, cs->v[i].id, site, sizeof(site),
		    path, sizeof(path));
		if (rc == STORE_NOTFOUND)
			continue;
		if (rc != STORE_OK)
			return rc;
		if (strcmp(site, pd->q->site) != 0 || path[0] == '\0')
			continue;
		top_push(pd, path, cs->v[i].id, &cs->v[i].c);
	}
	*used = i;
	return STORE_OK;
}

/* The list from candidates that hold their window: the first of them,
 * taking more when other sites' pages were among them. */
static int
top_exact(struct store_view *v, struct page_data *pd, struct cands *cs,
    size_t want)
{
	size_t k = want + 32, done = 0, used;
	int rc;

	for (;;) {
		cands_select(cs, k < cs->n ? k : cs->n);
		if ((rc = name_cands(v, pd, cs, done, k < cs->n ? k : cs->n,
		    want, &used)) != STORE_OK)
			return rc;
		done = used;
		if (pd->ntop >= want || k >= cs->n)
			return STORE_OK;
		k *= 4;
	}
}

struct one_sum {
	struct counts	 c;
};

static int
sum_day(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct one_sum *s = arg;

	store_counts_add(&s->c, c);
	return 0;
}

/*
 * The list of a window older than the recent rows, from candidates
 * holding their all-time counts, which bound their window: the window
 * of each is summed in the order of the bounds until the next bound is
 * below the list's least, when no page left can enter it. Ties at the
 * bound are taken, so the list is that of summing every page. (A page
 * whose all-time count was set below its days, tallyctl set, has a
 * bound too low and may be missed.)
 */
static int
top_by_bound(struct store_view *v, struct page_data *pd, struct cands *cs,
    size_t want)
{
	const struct stats_query *q = pd->q;
	char site[SITE_NAME_MAX + 2], path[PATH_MAX_LEN + 1024];
	size_t k = 4 * want, i, n = 0;
	uint64_t least = 0;	/* of the want best windows, once known */
	struct one_sum s;
	int rc;

	cands_select(cs, k < cs->n ? k : cs->n);
	for (i = 0; i < cs->n; i++) {
		if (n >= want && cs->v[i].c.views < least)
			break;
		if (i == k)	/* past the sorted part: sort the rest */
			qsort(cs->v + k, cs->n - k, sizeof(*cs->v), cand_cmp);
		rc = store_series_name(v, cs->v[i].id, site, sizeof(site),
		    path, sizeof(path));
		if (rc == STORE_NOTFOUND)
			continue;
		if (rc != STORE_OK)
			return rc;
		memset(&s, 0, sizeof(s));
		rc = store_each_day(v, q->site, path, q->from, q->to, false,
		    sum_day, &s);
		if (rc != STORE_OK)
			return rc;
		if (s.c.views == 0)
			continue;
		top_push(pd, path, cs->v[i].id, &s.c);
		/* The want-th best window so far: the list's least. */
		if (++n >= want) {
			qsort(pd->top, pd->ntop, sizeof(*pd->top), top_entry_cmp);
			least = pd->top[want - 1].c.views;
		}
	}
	if (pd->ntop > 0)
		qsort(pd->top, pd->ntop, sizeof(*pd->top), top_entry_cmp);
	return STORE_OK;
}

/*
 * The sums of a window's ended days, kept between renders. A day that
 * has ended changes only by an import, an import-log or the hits of the
 * last commit before midnight, and each of those changes the site's own
 * row of that day too. So an entry serves while the site's rows of its
 * days are what they were when it was made (read_days has just read
 * them) and no series was made since, and for CLOSED_TTL seconds at
 * most; today's rows are read each time. Only the render thread uses
 * it.
 */
#define CLOSED_SLOTS	4
#define CLOSED_TTL	300

struct closed_sums {
	char		 site[SITE_NAME_MAX + 1];
	int		 from, to;	/* to is the day before today */
	time_t		 made;
	uint64_t	 used;		/* the least recently used goes */
	struct counts	*site_days;	/* to - from + 1 */
	struct sums	 sums;
};

static struct closed_sums closed[CLOSED_SLOTS];
static uint64_t closed_clock;

static bool
closed_valid(const struct closed_sums *c, const struct page_data *pd,
    size_t n, int to, time_t now)
{
	return c->sums.by_id != NULL && c->sums.n == n &&
	    strcmp(c->site, pd->q->site) == 0 &&
	    c->from == pd->from && c->to == to && now - c->made < CLOSED_TTL &&
	    now >= c->made && memcmp(c->site_days, pd->days,
	    (size_t)(to - pd->from + 1) * sizeof(*pd->days)) == 0;
}

/* The entry for the page's ended days, made now when there is none. */
static int
closed_get(struct store_view *v, const struct page_data *pd, size_t n,
    struct closed_sums **out)
{
	struct closed_sums *c, *victim = &closed[0];
	int to = pd->q->today - 1, rc;
	size_t days = (size_t)(to - pd->from + 1);
	time_t now = time(NULL);
	int i;

	for (i = 0; i < CLOSED_SLOTS; i++) {
		c = &closed[i];
		if (closed_valid(c, pd, n, to, now)) {
			c->used = ++closed_clock;
			*out = c;
			return STORE_OK;
		}
		if (c->used < victim->used)
			victim = c;
	}
	c = victim;
	free(c->site_days);
	free(c->sums.by_id);
	memset(c, 0, sizeof(*c));
	c->sums.n = n;
	if ((c->sums.by_id = calloc(n, sizeof(*c->sums.by_id))) == NULL ||
	    (c->site_days = calloc(days, sizeof(*c->site_days))) == NULL)
		fatal("stats sums");
	if ((rc = store_each_recent(v, pd->from, to, sum_recent, &c->sums)) !=
	    STORE_OK) {
		free(c->sums.by_id);
		c->sums.by_id = NULL;
		return rc;
	}
	memcpy(c->site_days, pd->days, days * sizeof(*pd->days));
	snprintf(c->site, sizeof(c->site), "%s", pd->q->site);
	c->from = pd->from;
	c->to = to;
	c->made = now;
	c->used = ++closed_clock;
	*out = c;
	return STORE_OK;
}

/* The window's sums per series id into s: a window that ends today is
 * its ended days' sums, kept, and today's rows. */
static int
window_sums(struct store_view *v, const struct page_data *pd,
    struct sums *s)
{
	const struct stats_query *q = pd->q;
	struct closed_sums *c;
	int rc;

	if (q->to != q->today || q->from >= q->today || q->path[0] != '\0')
		return store_each_recent(v, q->from, q->to, sum_recent, s);
	if ((rc = closed_get(v, pd, s->n, &c)) != STORE_OK)
		return rc;
	memcpy(s->by_id, c->sums.by_id, s->n * sizeof(*s->by_id));
	return store_each_recent(v, q->today, q->today, sum_recent, s);
}

/* Most views first, ties by id: the order of cand_before. */
static int
top_id_cmp(const void *a, const void *b)
{
	const struct top_entry *x = a, *y = b;

	if (x->c.views != y->c.views)
		return x->c.views > y->c.views ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * The list of a window of the last STORE_WINDOW_DAYS days from the sums
 * the store keeps of each page (store_window_top): only the pages shown,
 * and those tied with them, are read, where summing the day-first rows
 * reads every row of the window and walks an array of every page.
 * *used is false when the store keeps no sums of this window.
 */
static int
top_by_window(struct store_view *v, struct page_data *pd, size_t want,
    bool *used)
{
	const struct stats_query *q = pd->q;
	size_t i;
	int rc;

	*used = false;
	rc = store_window_top(v, q->site, q->from, q->to, want, &pd->top,
	    &pd->ntop);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	*used = true;
	pd->captop = pd->ntop;
	if (pd->ntop > 0)
		qsort(pd->top, pd->ntop, sizeof(*pd->top), top_id_cmp);
	/* Those past the want-th are ties of it: the list is the first
	 * want. */
	for (i = want; i < pd->ntop; i++)
		free(pd->top[i].path);
	if (pd->ntop > want)
		pd->ntop = want;
	return STORE_OK;
}

/* The arrays of read_top, kept for the next page: made afresh, a few
 * megabytes of them would be mapped and faulted in on every load. Only
 * the render thread uses them. */
static struct cands keep_cands;
static struct counts *keep_sums;
static size_t keep_sums_cap;

static struct counts *
sums_array(size_t n)
{
	if (n > keep_sums_cap) {
		free(keep_sums);
		keep_sums_cap = n + n / 4;
		if ((keep_sums = calloc(keep_sums_cap, sizeof(*keep_sums))) ==
		    NULL)
			fatal("stats sums");
	}
	memset(keep_sums, 0, n * sizeof(*keep_sums));
	return keep_sums;
}

static int
read_top(struct store_view *v, struct page_data *pd)
{
	const struct stats_query *q = pd->q;
	struct cands cs = keep_cands;
	struct series_walk sw = { q, NULL, &cs };
	struct sums s = { NULL, 0 };
	size_t first, want, i;
	uint32_t max_id;
	bool by_window;
	int rc = STORE_OK, floor;

	/* This page of the list, and one more to know that more follow. */
	first = (size_t)(q->page - 1) * STATS_TOP_PER_PAGE;
	want = first + STATS_TOP_PER_PAGE + 1;
	if (q->period != PERIOD_ALL && q->prefix[0] == '\0') {
		if ((rc = top_by_window(v, pd, want, &by_window)) != STORE_OK)
			goto done;
		if (by_window)
			goto listed;
	}
	if (q->period != PERIOD_ALL) {
		if ((rc = store_recent_floor(v, &floor)) != STORE_OK)
			return rc;
		if (q->from >= floor) {
			if ((rc = store_max_id(v, &max_id)) != STORE_OK)
				return rc;
			s.n = (size_t)max_id + 1;
			s.by_id = sums_array(s.n);
			if ((rc = window_sums(v, pd, &s)) != STORE_OK)
				goto done;
			sw.sums = &s;
		}
	}
	if (sw.sums != NULL && q->prefix[0] == '\0') {
		/* Every series of the window is a candidate: no walk. */
		for (i = 0; i < s.n; i++)
			if (s.by_id[i].views > 0)
				cand_push(&cs, (uint32_t)i, &s.by_id[i]);
	} else if ((rc = store_each_series(v, q->site, walk_page, &sw)) !=
	    STORE_OK)
		goto done;
	if (sw.sums == NULL && q->period != PERIOD_ALL)
		rc = top_by_bound(v, pd, &cs, want);
	else
		rc = top_exact(v, pd, &cs, want);
	if (rc != STORE_OK)
		goto done;
listed:
	pd->more = pd->ntop >= want;
	for (i = 0; i < pd->ntop; i++)
		if (i < first || i >= first + STATS_TOP_PER_PAGE) {
			free(pd->top[i].path);
			pd->top[i].path = NULL;
		}
	if (first > 0 && first < pd->ntop) {
		memmove(pd->top, pd->top + first, (pd->ntop - first) *
		    sizeof(*pd->top));
		pd->ntop -= first;
	} else if (first > 0)
		pd->ntop = 0;
	if (pd->ntop > STATS_TOP_PER_PAGE)
		pd->ntop = STATS_TOP_PER_PAGE;
done:
	keep_cands = cs;
	keep_cands.n = 0;
	return rc;
}

/* The window's referring hosts, most views first, the days summed. */
static int
read_referrers(struct store_view *v, struct page_data *pd)
{
	const struct stats_query *q = pd->q;
	size_t i;
	int rc;

	rc = store_referrer_totals(v, q->site, pd->from, pd->to, &pd->refs);
	if (rc != STORE_OK)
		return rc;
	for (i = STATS_REFERRERS_SHOWN; i < pd->refs.n; i++) {
		store_count_add(&pd->refs_rest, pd->refs.e[i].views);
		free(pd->refs.e[i].host);
	}
	if (pd->refs.n > STATS_REFERRERS_SHOWN)
		pd->refs.n = STATS_REFERRERS_SHOWN;
	return STORE_OK;
}

static void
page_data_free(struct page_data *pd)
{
	size_t i;

	for (i = 0; i < pd->ntop; i++)
		free(pd->top[i].path);
	free(pd->top);
	store_referrer_totals_free(&pd->refs);
	free(pd->days);
}

static int
read_page(struct store_view *v, const struct stats_query *q,
    struct page_data *pd)
{
	int rc;

	memset(pd, 0, sizeof(*pd));
	pd->q = q;
	pd->series = q->path[0] ? q->path : SITE_SERIES;
	if ((rc = read_days(v, pd)) != STORE_OK)
		return rc;
	if (q->path[0] != '\0')
		return STORE_OK;	/* one page: its history alone */
	if ((rc = read_top(v, pd)) != STORE_OK)
		return rc;
	return read_referrers(v, pd);
}

/*
 * Writing it.
 */

static void
put_day(struct buf *b, int day)
{
	char s[DAY_STRLEN];

	day_format(day, s);
	buf_puts(b, s);
}

static void
put_num(struct buf *b, uint64_t v)
{
	char s[32];

	format_thousands(s, sizeof(s), v);
	buf_puts(b, s);
}

static void
put_escaped(struct buf *b, const char *s)
{
	xml_escape(b, s, strlen(s));
}

/* A path in a query string: what is not unreserved or '/' is
 * percent-encoded. */
static void
put_query_value(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL)
			buf_putc(b, (char)*p);
		else {
			buf_putc(b, '%');
			buf_putc(b, hex[*p >> 4]);
			buf_putc(b, hex[*p & 15]);
		}
	}
}

/* The link to this site's page with some of the query changed; written
 * escaped for an attribute. page 0 leaves page= out. */
struct link {
	const char	*path;		/* NULL: the site */
	enum stats_period period;
	int		 from, to;	/* PERIOD_CUSTOM */
	const char	*prefix;
	unsigned	 page;
};

static void
put_link(struct buf *b, const struct stats_query *q, const struct link *l)
{
	buf_puts(b, "/stats/");
	buf_puts(b, q->site);
	if (l->period == PERIOD_CUSTOM) {
		buf_puts(b, "?from=");
		put_day(b, l->from);
		buf_puts(b, "&amp;to=");
		put_day(b, l->to);
	} else {
		buf_puts(b, "?period=");
		buf_puts(b, period_names[l->period]);
	}
	if (l->path && *l->path) {
		buf_puts(b, "&amp;path=");
		put_query_value(b, l->path);
	}
	if (l->prefix && *l->prefix) {
		buf_puts(b, "&amp;prefix=");
		put_query_value(b, l->prefix);
	}
	if (l->page > 1)
		buf_printf(b, "&amp;page=%u", l->page);
	if (q->share[0] != '\0') {
		buf_puts(b, "&amp;share=");
		buf_puts(b, q->share);	/* URL-safe letters only */
	}
}

static struct link
link_here(const struct stats_query *q)
{
	struct link l = { q->path, q->period, q->from, q->to, q->prefix,
	    q->page };

	return l;
}

static const char page_css[] =
	":root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--mut:#59636e;"
	"--line:#d1d9e0;--v:#0969da;--u:#54aeff;--up:#1a7f37;--down:#cf222e}"
	"@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;"
	"--mut:#9198a1;--line:#3d444d;--v:#4493f8;--u:#a5d6ff;--up:#3fb950;"
	"--down:#f85149}}"
	"*{box-sizing:border-box}"
	"body{margin:0 auto;max-width:62rem;padding:1rem;"
	"font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
	"color:var(--fg);background:var(--bg)}"
	"a{color:var(--v)}h1{font-size:1.4rem;margin:.2rem 0 .6rem;"
	"overflow-wrap:anywhere}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}"
	"nav{display:flex;flex-wrap:wrap;gap:.2rem .9rem;margin:.4rem 0}"
	"nav a[aria-current]{color:var(--fg);font-weight:600;"
	"text-decoration:none}"
	".tot{display:flex;flex-wrap:wrap;gap:.6rem 2.5rem;margin:.8rem 0}"
	".big{font-size:1.7rem;font-weight:600;display:block}"
	".mut,small{color:var(--mut)}.up{color:var(--up)}.down{color:var(--down)}"
	"svg.chart{display:block;width:100%;height:9rem}"
	".axis{display:flex;flex-wrap:wrap;justify-content:space-between;"
	"gap:0 .5rem;font-size:.8rem;color:var(--mut)}"
	".chart .v{fill:var(--v)}.chart .u{fill:var(--u)}"
	".chart line{stroke:var(--line)}"
	".key i{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em}"
	".key .v{background:var(--v)}.key .u{background:var(--u)}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{padding:.3rem .4rem;border-bottom:1px solid var(--line);"
	"text-align:right;vertical-align:top;font-variant-numeric:tabular-nums}"
	"th{font-weight:600}.l{text-align:left;overflow-wrap:anywhere;"
	"word-break:break-word;width:100%}"
	"svg.bar{display:block;width:100%;height:4px;margin-top:2px}"
	".bar rect{fill:var(--v)}"
	"form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;"
	"margin:.5rem 0}label{display:flex;flex-direction:column;"
	"font-size:.85rem;color:var(--mut)}"
	"input,button{font:inherit;max-width:100%}"
	"details{margin:.6rem 0}summary{cursor:pointer;color:var(--mut)}"
	".pager{display:flex;gap:1rem;margin:.5rem 0}";

static void
html_head(struct buf *b, const char *title_a, const char *title_b)
{
	buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width,"
	    "initial-scale=1\">"
	    "<meta name=\"referrer\" content=\"no-referrer\">"
	    "<meta name=\"color-scheme\" content=\"light dark\">"
	    "<link rel=\"icon\" href=\"/favicon.ico\"><title>");
	put_escaped(b, title_a);
	if (title_b) {
		buf_puts(b, " · ");
		put_escaped(b, title_b);
	}
	buf_puts(b, " · tally</title><style>");
	buf_puts(b, page_css);
	buf_puts(b, "</style></head><body>\n");
}

static void
put_period_nav(struct buf *b, const struct stats_query *q)
{
	struct link l = link_here(q);
	int p;

	buf_puts(b, "<nav aria-label=\"Period\">");
	l.page = 1;
	for (p = PERIOD_TODAY; p < PERIOD_CUSTOM; p++) {
		l.period = (enum stats_period)p;
		buf_puts(b, "<a href=\"");
		put_link(b, q, &l);
		buf_puts(b, "\"");
		if (q->period == (enum stats_period)p)
			buf_puts(b, " aria-current=\"page\"");
		buf_printf(b, ">%s</a>", period_titles[p]);
	}
	buf_puts(b, "</nav>\n");
}

/* The hidden fields that keep the rest of the query in a form. */
static void
put_hidden(struct buf *b, const char *name, const char *value)
{
	if (value == NULL || *value == '\0')
		return;
	buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
	put_escaped(b, value);
	buf_puts(b, "\">");
}

static void
put_range_form(struct buf *b, const struct stats_query *q,
    const struct page_data *pd)
{
	buf_puts(b, "<form method=\"get\" action=\"/stats/");
	buf_puts(b, q->site);
	buf_puts(b, "\" aria-label=\"Custom range\">"
	    "<label>From<input type=\"date\" name=\"from\" required value=\"");
	put_day(b, pd->from);
	buf_puts(b, "\"></label><label>To<input type=\"date\" name=\"to\" "
	    "required value=\"");
	put_day(b, pd->to);
	buf_puts(b, "\"></label>");
	put_hidden(b, "path", q->path);
	put_hidden(b, "share", q->share);
	buf_puts(b, "<button>Show</button></form>\n");
}

/* "+12%", "−4%", "new" */
static void
put_change(struct buf *b, uint64_t now, uint64_t before)
{
	double pct;

	if (before == 0) {
		buf_puts(b, now ? "<span class=\"up\">new</span>" :
		    "<span class=\"mut\">–</span>");
		return;
	}
	pct = ((double)now - (double)before) * 100.0 / (double)before;
	if (pct >= 0.5)
		buf_printf(b, "<span class=\"up\">+%.0f%%</span>", pct);
	else if (pct <= -0.5)
		buf_printf(b, "<span class=\"down\">−%.0f%%</span>", -pct);
	else
		buf_puts(b, "<span class=\"mut\">±0%</span>");
}

static void
put_totals(struct buf *b, const struct page_data *pd)
{
	buf_puts(b, "<div class=\"tot\"><div><small>Views</small>"
	    "<span class=\"big\" id=\"views\">");
	put_num(b, pd->total.views);
	buf_puts(b, "</span>");
	if (pd->has_previous) {
		put_change(b, pd->total.views, pd->previous.views);
		buf_puts(b, " <small>vs ");
		put_num(b, pd->previous.views);
		buf_puts(b, "</small>");
	}
	buf_puts(b, "</div><div><small>Visitors</small>"
	    "<span class=\"big\" id=\"visitors\">");
	put_num(b, pd->total.visitors);
	buf_puts(b, "</span>");
	if (pd->has_previous) {
		put_change(b, pd->total.visitors, pd->previous.visitors);
		buf_puts(b, " <small>vs ");
		put_num(b, pd->previous.visitors);
		buf_puts(b, "</small>");
	}
	buf_puts(b, "</div></div>\n");
}

static uint64_t
max_views(const struct counts *days, int n)
{
	uint64_t m = 0;
	int i;

	for (i = 0; i < n; i++)
		if (days[i].views > m)
			m = days[i].views;
	return m;
}

/* A bar's height in tenths of a pixel of h pixels. */
static unsigned
scaled(uint64_t v, uint64_t max, unsigned h)
{
	if (max == 0)
		return 0;
	return (unsigned)((double)v * h * 10 / (double)max + 0.5);
}

static void
put_tenths(struct buf *b, unsigned v)
{
	if (v % 10)
		buf_printf(b, "%u.%u", v / 10, v % 10);
	else
		buf_printf(b, "%u", v / 10);
}

/* Views as bars, visitors as narrower bars inside them; each day's
 * <title> is its tooltip. */
static void
put_chart(struct buf *b, const struct page_data *pd)
{
	int n = pd->to - pd->from + 1, i;
	uint64_t max = max_views(pd->days, n);
	unsigned top = 0, h = CHART_H, x, w, vw, hv, hu;

	/* The labels are HTML beside the SVG, which stretches to the width
	 * of the screen and would stretch its text with it. */
	buf_puts(b, "<div class=\"axis\" aria-hidden=\"true\"><span>");
	put_num(b, max);
	buf_puts(b, "</span></div>");
	buf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %u %u\" "
	    "role=\"img\" aria-labelledby=\"ct\" "
	    "preserveAspectRatio=\"none\">", CHART_W, CHART_H);
	buf_puts(b, "<title id=\"ct\">Views and visitors per day, ");
	put_day(b, pd->from);
	buf_puts(b, " to ");
	put_day(b, pd->to);
	buf_puts(b, ": ");
	put_num(b, pd->total.views);
	buf_puts(b, " views; the table below has each day</title>");
	buf_printf(b, "<line x1=\"0\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>",
	    CHART_W, top + h, top + h);
	for (i = 0; i < n; i++) {
		x = (unsigned)((long)i * CHART_W * 10 / n);
		w = (unsigned)((long)(i + 1) * CHART_W * 10 / n) - x;
		hv = scaled(pd->days[i].views, max, h);
		hu = scaled(pd->days[i].visitors, max, h);
		buf_puts(b, "<g><title>");
		put_day(b, pd->from + i);
		buf_puts(b, ": ");
		put_num(b, pd->days[i].views);
		buf_puts(b, " views, ");
		put_num(b, pd->days[i].visitors);
		/* A gap between days when there is room for one. */
		vw = w > 40 ? w - w / 6 : w;
		buf_puts(b, " visitors</title><rect class=\"v\" x=\"");
		put_tenths(b, x);
		buf_puts(b, "\" y=\"");
		put_tenths(b, (top + h) * 10 - hv);
		buf_puts(b, "\" width=\"");
		put_tenths(b, vw);
		buf_puts(b, "\" height=\"");
		put_tenths(b, hv);
		buf_puts(b, "\"/><rect class=\"u\" x=\"");
		put_tenths(b, x + vw / 4);
		buf_puts(b, "\" y=\"");
		put_tenths(b, (top + h) * 10 - hu);
		buf_puts(b, "\" width=\"");
		put_tenths(b, vw / 2);
		buf_puts(b, "\" height=\"");
		put_tenths(b, hu);
		buf_puts(b, "\"/></g>");
	}
	buf_puts(b, "</svg>\n<div class=\"axis\" aria-hidden=\"true\"><span>");
	put_day(b, pd->from);
	buf_puts(b, "</span><span class=\"key\"><i class=\"v\"></i>views"
	    "<i class=\"u\"></i>visitors</span><span>");
	put_day(b, pd->to);
	buf_puts(b, "</span></div>\n");
}

static void
put_day_table(struct buf *b, const struct page_data *pd)
{
	int n = pd->to - pd->from + 1, i;

	buf_puts(b, "<details><summary>The chart as a table</summary>"
	    "<table id=\"days\"><thead><tr><th class=\"l\" scope=\"col\">Day"
	    "</th><th scope=\"col\">Views</th><th scope=\"col\">Visitors</th>"
	    "</tr></thead><tbody>");
	for (i = n - 1; i >= 0; i--) {
		buf_puts(b, "<tr><td class=\"l\">");
		put_day(b, pd->from + i);
		buf_puts(b, "</td><td>");
		put_num(b, pd->days[i].views);
		buf_puts(b, "</td><td>");
		put_num(b, pd->days[i].visitors);
		buf_puts(b, "</td></tr>");
	}
	buf_puts(b, "</tbody></table></details>\n");
}

/* A bar of v against max, as SVG: no inline style is needed. */
static void
put_bar(struct buf *b, uint64_t v, uint64_t max)
{
	buf_puts(b, "<svg class=\"bar\" viewBox=\"0 0 1000 4\" "
	    "preserveAspectRatio=\"none\" aria-hidden=\"true\">"
	    "<rect height=\"4\" width=\"");
	put_tenths(b, max ? (unsigned)((double)v * 10000 / (double)max) : 0);
	buf_puts(b, "\"/></svg>");
}

static void
put_top(struct buf *b, const struct stats_query *q,
    const struct page_data *pd)
{
	struct link l = link_here(q);
	uint64_t max = pd->ntop ? pd->top[0].c.views : 0;
	size_t i;

	buf_puts(b, "<h2 id=\"pages\">Top pages</h2>\n");
	buf_puts(b, "<form method=\"get\" action=\"/stats/");
	buf_puts(b, q->site);
	buf_puts(b, "\" role=\"search\"><label>Paths starting with"
	    "<input type=\"text\" name=\"prefix\" placeholder=\"/blog/\" "
	    "value=\"");
	put_escaped(b, q->prefix);
	buf_puts(b, "\"></label>");
	if (q->period == PERIOD_CUSTOM) {
		buf_puts(b, "<input type=\"hidden\" name=\"from\" value=\"");
		put_day(b, q->from);
		buf_puts(b, "\"><input type=\"hidden\" name=\"to\" value=\"");
		put_day(b, q->to);
		buf_puts(b, "\">");
	} else
		put_hidden(b, "period", period_names[q->period]);
	put_hidden(b, "share", q->share);
	buf_puts(b, "<button>Filter</button></form>\n");
	if (pd->ntop == 0) {
		buf_puts(b, "<p class=\"mut\">No views in this period.</p>\n");
		return;
	}
	buf_puts(b, "<table id=\"top\"><thead><tr><th class=\"l\" scope=\"col\">"
	    "Page</th><th scope=\"col\">Views</th><th scope=\"col\">Visitors"
	    "</th></tr></thead><tbody>");
	l.page = 1;
	l.prefix = NULL;
	for (i = 0; i < pd->ntop; i++) {
		l.path = pd->top[i].path;
		buf_puts(b, "<tr><td class=\"l\"><a href=\"");
		put_link(b, q, &l);
		buf_puts(b, "\">");
		put_escaped(b, pd->top[i].path);
		buf_puts(b, "</a>");
		put_bar(b, pd->top[i].c.views, max);
		buf_puts(b, "</td><td>");
		put_num(b, pd->top[i].c.views);
		buf_puts(b, "</td><td>");
		put_num(b, pd->top[i].c.visitors);
		buf_puts(b, "</td></tr>");
	}
	buf_puts(b, "</tbody></table>\n");
	if (q->page > 1 || pd->more) {
		l = link_here(q);
		buf_puts(b, "<nav class=\"pager\" aria-label=\"Pages\">");
		if (q->page > 1) {
			l.page = q->page - 1;
			buf_puts(b, "<a rel=\"prev\" href=\"");
			put_link(b, q, &l);
			buf_puts(b, "\">← previous</a>");
		}
		if (pd->more) {
			l.page = q->page + 1;
			buf_puts(b, "<a rel=\"next\" href=\"");
			put_link(b, q, &l);
			buf_puts(b, "\">next →</a>");
		}
		buf_puts(b, "</nav>\n");
	}
}

static void
put_referrers(struct buf *b, const struct page_data *pd)
{
	size_t i;

	buf_puts(b, "<h2>Referrers</h2>\n");
	if (pd->refs.n == 0) {
		buf_puts(b, "<p class=\"mut\">No views came from other sites in "
		    "this period.</p>\n");
		return;
	}
	buf_puts(b, "<table id=\"referrers\"><thead><tr><th class=\"l\" "
	    "scope=\"col\">Site</th><th scope=\"col\">Views</th></tr></thead>"
	    "<tbody>");
	for (i = 0; i < pd->refs.n; i++) {
		buf_puts(b, "<tr><td class=\"l\">");
		put_escaped(b, pd->refs.e[i].host);
		put_bar(b, pd->refs.e[i].views, pd->refs.e[0].views);
		buf_puts(b, "</td><td>");
		put_num(b, pd->refs.e[i].views);
		buf_puts(b, "</td></tr>");
	}
	if (pd->refs_rest > 0) {
		buf_puts(b, "<tr><td class=\"l mut\">others</td><td>");
		put_num(b, pd->refs_rest);
		buf_puts(b, "</td></tr>");
	}
	buf_puts(b, "</tbody></table>\n");
}

static void
render_page_html(struct buf *b, const struct stats_query *q,
    const struct page_data *pd)
{
	struct link l = link_here(q);

	html_head(b, q->site, q->path[0] ? q->path : NULL);
	if (q->share[0] == '\0')
		buf_puts(b, "<p><small><a href=\"/stats\">All sites</a>"
		    "</small></p>");
	buf_puts(b, "<h1>");
	put_escaped(b, q->site);
	if (q->path[0] != '\0') {
		l.path = NULL;
		l.page = 1;
		buf_puts(b, " <a href=\"");
		put_link(b, q, &l);
		buf_puts(b, "\"><small>(the whole site)</small></a><br>");
		put_escaped(b, q->path);
	}
	buf_puts(b, "</h1>\n");
	put_period_nav(b, q);
	put_range_form(b, q, pd);
	buf_puts(b, "<p class=\"mut\" id=\"range\">");
	put_day(b, pd->from);
	buf_puts(b, " to ");
	put_day(b, pd->to);
	if (pd->has_previous) {
		buf_puts(b, "; compared with ");
		put_day(b, pd->prev_from);
		buf_puts(b, " to ");
		put_day(b, pd->prev_to);
	}
	buf_puts(b, "</p>\n");
	put_totals(b, pd);
	put_chart(b, pd);
	put_day_table(b, pd);
	if (q->path[0] == '\0') {
		put_top(b, q, pd);
		put_referrers(b, pd);
	}
	buf_puts(b, "</body></html>\n");
}

static void
json_counts(struct buf *b, const char *key, const struct counts *c)
{
	buf_printf(b, "\"%s\":{\"views\":%" PRIu64 ",\"visitors\":%" PRIu64
	    "}", key, c->views, c->visitors);
}

static void
json_day(struct buf *b, const char *key, int day)
{
	buf_printf(b, "\"%s\":\"", key);
	put_day(b, day);
	buf_putc(b, '"');
}

static void
render_page_json(struct buf *b, const struct stats_query *q,
    const struct page_data *pd)
{
	int i, n = pd->to - pd->from + 1;
	size_t k;

	buf_puts(b, "{\"site\":");
	json_string(b, q->site);
	buf_puts(b, ",\"path\":");
	if (q->path[0])
		json_string(b, q->path);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"period\":\"%s\",", period_names[q->period]);
	json_day(b, "from", pd->from);
	buf_putc(b, ',');
	json_day(b, "to", pd->to);
	buf_putc(b, ',');
	json_counts(b, "total", &pd->total);
	buf_puts(b, ",\"previous\":");
	if (pd->has_previous) {
		buf_putc(b, '{');
		json_day(b, "from", pd->prev_from);
		buf_putc(b, ',');
		json_day(b, "to", pd->prev_to);
		buf_printf(b, ",\"views\":%" PRIu64 ",\"visitors\":%" PRIu64
		    "}", pd->previous.views, pd->previous.visitors);
	} else
		buf_puts(b, "null");
	buf_puts(b, ",\"days\":[");
	for (i = 0; i < n; i++) {
		buf_puts(b, i ? ",\n{" : "\n{");
		json_day(b, "day", pd->from + i);
		buf_printf(b, ",\"views\":%" PRIu64 ",\"visitors\":%" PRIu64
		    "}", pd->days[i].views, pd->days[i].visitors);
	}
	buf_puts(b, "]");
	if (q->path[0] == '\0') {
		buf_puts(b, ",\"prefix\":");
		json_string(b, q->prefix);
		buf_printf(b, ",\"page\":%u,\"more\":%s,\"pages\":[", q->page,
		    pd->more ? "true" : "false");
		for (k = 0; k < pd->ntop; k++) {
			buf_puts(b, k ? ",\n{\"path\":" : "\n{\"path\":");
			json_string(b, pd->top[k].path);
			buf_printf(b, ",\"views\":%" PRIu64 ",\"visitors\":%"
			    PRIu64 "}", pd->top[k].c.views,
			    pd->top[k].c.visitors);
		}
		buf_puts(b, "],\"referrers\":[");
		for (k = 0; k < pd->refs.n; k++) {
			buf_puts(b, k ? ",\n{\"host\":" : "\n{\"host\":");
			json_string(b, pd->refs.e[k].host);
			buf_printf(b, ",\"views\":%" PRIu64 "}",
			    pd->refs.e[k].views);
		}
		buf_printf(b, "],\"referrers_other\":%" PRIu64, pd->refs_rest);
	}
	buf_puts(b, "}\n");
}

/*
 * The list of sites: today, the last 30 days and all time of each.
 */

struct site_line {
	struct counts	 today, last30, total;
};

static int
site_day(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct site_line *sl = arg;

	store_counts_add(&sl->last30, c);
	return 0;
}

static int
read_site_line(struct store_view *v, const char *site, int today,
    struct site_line *sl)
{
	struct series_counts sc;
	int rc;

	memset(sl, 0, sizeof(*sl));
	rc = store_get(v, site, SITE_SERIES, today, &sc);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	sl->today = sc.day;
	sl->total = sc.total;
	return store_each_day(v, site, SITE_SERIES, today - 29, today, false,
	    site_day, sl);
}

static bool
site_listed(const struct stats_query *q, const struct site_config *s)
{
	return q->admin || s->public;
}

static int
render_list(struct store_view *v, const struct config *cfg,
    const struct stats_query *q, struct buf *b)
{
	struct site_line sl;
	size_t i, n = 0;
	int rc;

	if (q->json)
		buf_puts(b, "{\"sites\":[");
	else {
		html_head(b, "Sites", NULL);
		buf_puts(b, "<h1>Sites</h1>\n<table id=\"sites\"><thead><tr>"
		    "<th class=\"l\" scope=\"col\">Site</th>"
		    "<th scope=\"col\">Today</th>"
		    "<th scope=\"col\">30 days</th>"
		    "<th scope=\"col\">Visitors, 30 days</th>"
		    "<th scope=\"col\">Total</th></tr></thead><tbody>");
	}
	for (i = 0; i < cfg->nsites; i++) {
		const struct site_config *s = &cfg->sites[i];

		if (!site_listed(q, s))
			continue;
		if ((rc = read_site_line(v, s->name, q->today, &sl)) !=
		    STORE_OK)
			return rc;
		if (q->json) {
			buf_puts(b, n ? ",\n{\"site\":" : "\n{\"site\":");
			json_string(b, s->name);
			buf_putc(b, ',');
			json_counts(b, "today", &sl.today);
			buf_putc(b, ',');
			json_counts(b, "last30", &sl.last30);
			buf_putc(b, ',');
			json_counts(b, "total", &sl.total);
			buf_putc(b, '}');
		} else {
			buf_puts(b, "<tr><td class=\"l\"><a href=\"/stats/");
			buf_puts(b, s->name);	/* [a-z0-9.-] */
			buf_puts(b, "\">");
			buf_puts(b, s->name);
			buf_puts(b, "</a></td><td>");
			put_num(b, sl.today.views);
			buf_puts(b, "</td><td>");
			put_num(b, sl.last30.views);
			buf_puts(b, "</td><td>");
			put_num(b, sl.last30.visitors);
			buf_puts(b, "</td><td>");
			put_num(b, sl.total.views);
			buf_puts(b, "</td></tr>");
		}
		n++;
	}
	buf_puts(b, q->json ? "]}\n" : "</tbody></table></body></html>\n");
	return STORE_OK;
}

int
stats_page_render(struct store_view *v, const struct config *cfg,
    const struct stats_query *q, struct buf *out)
{
	struct page_data pd;
	int rc;

	if (q->site[0] == '\0')
		return render_list(v, cfg, q, out);
	if ((rc = read_page(v, q, &pd)) == STORE_OK) {
		if (q->json)
			render_page_json(out, q, &pd);
		else
			render_page_html(out, q, &pd);
	}
	page_data_free(&pd);
	return rc;
}

/*
 * The sparkline: a line of the daily views, SPARK_STEP pixels a day,
 * the area under it lightly filled.
 */

struct spark {
	int		 from;
	uint64_t	*views;
};

static int
spark_day(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct spark *s = arg;

	s->views[day - s->from] = c->views;
	return 0;
}

/* "/news/1: views per day, last 30 days, 1,234 in all; the most 90 on a
 * day" */
static void
put_spark_summary(struct buf *b, const char *site, const char *path,
    int days, uint64_t sum, uint64_t max)
{
	put_escaped(b, *path ? path : site);
	buf_printf(b, ": views per day, last %d day%s, ", days,
	    days == 1 ? "" : "s");
	put_num(b, sum);
	buf_puts(b, " in all; the most ");
	put_num(b, max);
	buf_puts(b, " on a day");
}

int
stats_chart_render(struct store_view *v, const char *site, const char *path,
    int days, int today, struct buf *b)
{
	struct spark s;
	uint64_t max = 0, sum = 0;
	unsigned w = (unsigned)(days > 1 ? (days - 1) * SPARK_STEP : 1);
	unsigned y;
	int i, rc;

	s.from = today - days + 1;
	if ((s.views = calloc((size_t)days, sizeof(*s.views))) == NULL)
		fatal("sparkline");
	rc = store_each_day(v, site, *path ? path : SITE_SERIES, s.from, today,
	    false, spark_day, &s);
	if (rc != STORE_OK) {
		free(s.views);
		return rc;
	}
	for (i = 0; i < days; i++) {
		if (s.views[i] > max)
			max = s.views[i];
		store_count_add(&sum, s.views[i]);
	}
	buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
	    "height=\"%u\" viewBox=\"-1 -1 %u %u\" role=\"img\" "
	    "aria-label=\"", w + 2, SPARK_H + 2, w + 2, SPARK_H + 2);
	/* The same words for screen readers and as a tooltip. */
	put_spark_summary(b, site, path, days, sum, max);
	buf_puts(b, "\"><title>");
	put_spark_summary(b, site, path, days, sum, max);
	buf_puts(b, "</title><path fill=\"#007ec6\" "
	    "fill-opacity=\".15\" d=\"M0 ");
	buf_printf(b, "%u", SPARK_H);
	for (i = 0; i < days; i++) {
		y = SPARK_H * 10 - scaled(s.views[i], max, SPARK_H);
		buf_printf(b, "L%u ", (unsigned)(days > 1 ? i * SPARK_STEP :
		    0));
		put_tenths(b, y);
	}
	buf_printf(b, "L%u %uZ\"/><polyline fill=\"none\" stroke=\"#007ec6\" "
	    "stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"", w,
	    SPARK_H);
	for (i = 0; i < days; i++) {
		y = SPARK_H * 10 - scaled(s.views[i], max, SPARK_H);
		buf_printf(b, "%s%u,", i ? " " : "",
		    (unsigned)(days > 1 ? i * SPARK_STEP : 0));
		put_tenths(b, y);
	}
	buf_puts(b, "\"/></svg>\n");
	free(s.views);
	return STORE_OK;
}
