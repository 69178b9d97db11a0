/*
 * The store's front: picks a backend by the store's location and calls
 * through its table of operations (store_backend.h). What is the same
 * for every backend lives here: the last error of a thread, the series
 * hash, and the write loop that grows a full map and tries again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "tally/config.h"
#include "tally/hash.h"
#include "tally/log.h"
#include "tally/location.h"
#include "tally/path.h"
#include "tally/store.h"

#include "store_backend.h"

#define MAX_GROWS	16	/* doublings within one store_write */

/*
 * Why the last call of this thread failed. Every serving thread and the
 * committer use the store at once: a message kept in struct store could
 * be overwritten by another thread's before it is read.
 */
static __thread char last_error[512];

void
store_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *
store_error(struct store *st)
{
	(void)st;
	return last_error;
}

/* The answer of an optional operation a backend does not have. */
static int
unsupported(struct store *st, const char *what)
{
	store_set_error("%s: not supported by the %s store", what,
	    st->ops->name);
	return STORE_ERROR;
}

int
store_open(struct store **out, const char *location, int flags, char *err,
    size_t errlen)
{
	*out = NULL;
	if (location_is_url(location)) {
#if HAVE_POSTGRESQL
		return store_pg_ops.open(out, location, flags, err, errlen);
#else
		snprintf(err, errlen, "this tally was built without "
		    "PostgreSQL (libpq): it cannot open a postgresql:// store");
		return STORE_ERROR;
#endif
	}
	return store_lmdb_ops.open(out, location, flags, err, errlen);
}

uint64_t
store_series_hash(const char *site, const char *path)
{
	uint64_t h;

	/* 0xff, which UTF-8 never holds, parts site from path. */
	h = hash_fnv1a(STORE_HASH_BASIS, site, strlen(site));
	h = hash_fnv1a(h, "\xff", 1);
	return hash_fnv1a(h, path, strlen(path));
}

/* The adjustment that makes the rows (total - adj, exact in uint64_t
 * because total <= STORE_COUNT_MAX) add up to want; -1 when it is out
 * of int64_t's range. */
int
store_adjust_to(uint64_t total, int64_t adj, uint64_t want, int64_t *out)
{
	uint64_t rows = total - (uint64_t)adj, d;

	if (want >= rows) {
		if ((d = want - rows) > INT64_MAX)
			return -1;
		*out = (int64_t)d;
	} else {
		if ((d = rows - want) > (uint64_t)INT64_MAX + 1)
			return -1;
		*out = d == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)d;
	}
	return 0;
}

int
store_write(struct store *st, store_write_fn fn, void *arg)
{
	struct store_txn *txn;
	int rc, grows;

	for (grows = 0; grows <= MAX_GROWS; grows++) {
		if (grows > 0 && (rc = store_grow(st)) != STORE_OK)
			return rc;
		if ((rc = store_write_begin(st, &txn)) != STORE_OK)
			return rc;
		if ((rc = fn(txn, arg)) == STORE_OK)
			rc = store_commit(txn);
		else
			store_abort(txn);
		if (rc != STORE_MAPFULL)
			return rc;
	}
	store_set_error("the store map is still full "
	    "after growing it %d times", MAX_GROWS);
	return STORE_ERROR;
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

int
store_lock_daemon(struct store *st, char *err, size_t errlen)
{
	/* A shared database has no daemon lock: several nodes write it. */
	if (st->ops->lock_daemon == NULL)
		return STORE_OK;
	return st->ops->lock_daemon(st, err, errlen);
}

int
store_stat(struct store *st, struct store_stat *out)
{
	if (st->ops->stat == NULL)
		return unsupported(st, "size");
	return st->ops->stat(st, out);
}

int
store_grow(struct store *st)
{
	if (st->ops->grow == NULL)
		return unsupported(st, "growing a map");
	return st->ops->grow(st);
}

int
store_backup(struct store *st, const char *dest, char *err, size_t errlen)
{
	if (st->ops->backup == NULL) {
		snprintf(err, errlen, "the %s store has no copy of its own: "
		    "use the database's backup tools", st->ops->name);
		return STORE_ERROR;
	}
	return st->ops->backup(st, dest, err, errlen);
}

int
store_reader_check(struct store *st)
{
	if (st->ops->reader_check == NULL)
		return 0;	/* no reader table to clear */
	return st->ops->reader_check(st);
}

uint64_t
store_reconnects(struct store *st)
{
	if (st->ops->reconnects == NULL)
		return 0;	/* no connection to lose */
	return st->ops->reconnects(st);
}

int
store_refresh(struct store *st, uint64_t max_age_ms)
{
	if (st->ops->refresh == NULL)
		return STORE_OK;	/* views read the store itself */
	return st->ops->refresh(st, max_age_ms);
}

int
store_sync(struct store *st)
{
	if (st->ops->sync == NULL)
		return STORE_OK;	/* commits are durable when they return */
	return st->ops->sync(st);
}

struct store_view *
store_view_new(struct store *st)
{
	return st->ops->view_new(st);
}

void
store_view_free(struct store_view *v)
{
	if (v != NULL)
		v->ops->view_free(v);
}

int
store_view_begin(struct store_view *v)
{
	return v->ops->view_begin(v);
}

void
store_view_end(struct store_view *v)
{
	v->ops->view_end(v);
}

uint64_t
store_view_version(struct store_view *v)
{
	return v->ops->view_version(v);
}

uint64_t
store_txn_version(struct store_txn *t)
{
	return t->ops->txn_version(t);
}

int
store_get(struct store_view *v, const char *site, const char *path, int day, struct series_counts *out)
{
	return v->ops->get(v, site, path, day, out);
}

int
store_meta_get(struct store_view *v, const char *key, void *val, size_t *len)
{
	return v->ops->meta_get(v, key, val, len);
}

int
store_each_series(struct store_view *v, const char *site, store_series_cb cb, void *arg)
{
	return v->ops->each_series(v, site, cb, arg);
}

int
store_each_day(struct store_view *v, const char *site, const char *path, int from, int to, bool with_adjust, store_row_cb cb, void *arg)
{
	return v->ops->each_day(v, site, path, from, to, with_adjust, cb, arg);
}

int
store_recent_floor(struct store_view *v, int *floor)
{
	return v->ops->recent_floor(v, floor);
}

int
store_each_recent(struct store_view *v, int from, int to, store_recent_cb cb, void *arg)
{
	return v->ops->each_recent(v, from, to, cb, arg);
}

int
store_window_state(struct store_view *v, struct store_window *w)
{
	if (v->ops->window_state == NULL)
		return STORE_NOTFOUND;
	return v->ops->window_state(v, w);
}

int
store_window_get(struct store_view *v, uint32_t id, struct counts *c)
{
	if (v->ops->window_get == NULL) {
		store_set_error("this store keeps no window");
		return STORE_ERROR;
	}
	return v->ops->window_get(v, id, c);
}

int
store_each_window(struct store_view *v, const char *site, store_window_cb cb, void *arg)
{
	if (v->ops->each_window == NULL) {
		store_set_error("this store keeps no window");
		return STORE_ERROR;
	}
	return v->ops->each_window(v, site, cb, arg);
}

int
store_series_name(struct store_view *v, uint32_t id, char *site, size_t sitesz, char *path, size_t pathsz)
{
	return v->ops->series_name(v, id, site, sitesz, path, pathsz);
}

int
store_max_id(struct store_view *v, uint32_t *max)
{
	return v->ops->max_id(v, max);
}

int
store_orphan_rows(struct store_view *v, uint64_t *orphans)
{
	return v->ops->orphan_rows(v, orphans);
}

int
store_write_begin(struct store *st, struct store_txn **out)
{
	return st->ops->write_begin(st, out);
}

int
store_add(struct store_txn *t, const char *site, const char *path, int day, uint64_t views, uint64_t visitors)
{
	return t->ops->add(t, site, path, day, views, visitors);
}

int
store_add_exact(struct store_txn *t, const char *site, const char *path, int day, uint64_t views, uint64_t visitors)
{
	return t->ops->add_exact(t, site, path, day, views, visitors);
}

int
store_add_adjust(struct store_txn *t, const char *site, const char *path, int64_t views, int64_t visitors)
{
	return t->ops->add_adjust(t, site, path, views, visitors);
}

int
store_set_total(struct store_txn *t, const char *site, const char *path, uint64_t views, uint64_t visitors)
{
	return t->ops->set_total(t, site, path, views, visitors);
}

int
store_reset(struct store_txn *t, const char *site, const char *path)
{
	return t->ops->reset(t, site, path);
}

int
store_meta_put(struct store_txn *t, const char *key, const void *val, size_t len)
{
	return t->ops->meta_put(t, key, val, len);
}

struct store_view *
store_txn_view(struct store_txn *t)
{
	return t->ops->txn_view(t);
}

int
store_txn_get(struct store_txn *t, const char *site, const char *path, int day, struct series_counts *out)
{
	return t->ops->txn_get(t, site, path, day, out);
}

int
store_seen_get(struct store_view *v, int day, uint64_t series, uint64_t visitor, bool *seen)
{
	return v->ops->seen_get(v, day, series, visitor, seen);
}

int
store_txn_seen_get(struct store_txn *t, int day, uint64_t series, uint64_t visitor, bool *seen)
{
	return t->ops->txn_seen_get(t, day, series, visitor, seen);
}

int
store_seen_put(struct store_txn *t, int day, uint64_t series, uint64_t visitor)
{
	return t->ops->seen_put(t, day, series, visitor);
}

int
store_seen_prune(struct store_txn *t, int day)
{
	return t->ops->seen_prune(t, day);
}

int
store_commit(struct store_txn *t)
{
	return t->ops->commit(t);
}

void
store_abort(struct store_txn *t)
{
	if (t != NULL)
		t->ops->abort(t);
}

int
store_each_referrer(struct store_view *v, const char *site, int from, int to, store_referrer_cb cb, void *arg)
{
	return v->ops->each_referrer(v, site, from, to, cb, arg);
}

int
store_each_referrer_row(struct store_view *v, const char *site, store_referrer_row_cb cb, void *arg)
{
	return v->ops->each_referrer_row(v, site, cb, arg);
}

int
store_referrer_get(struct store_view *v, const char *site, int day, const char *host, uint64_t *views)
{
	return v->ops->referrer_get(v, site, day, host, views);
}

int
store_referrer_add(struct store_txn *t, const char *site, int day, const char *host, uint64_t views, uint32_t max)
{
	return t->ops->referrer_add(t, site, day, host, views, max);
}

int
store_referrer_add_exact(struct store_txn *t, const char *site, int day, const char *host, uint64_t views)
{
	return t->ops->referrer_add_exact(t, site, day, host, views);
}

int
store_referrer_reset(struct store_txn *t, const char *site)
{
	return t->ops->referrer_reset(t, site);
}

static int
total_row(void *arg, int day, const char *host, uint64_t views)
{
	struct referrer_totals *t = arg;

	(void)day;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		if ((t->e = reallocarray(t->e, t->cap, sizeof(*t->e))) == NULL)
			fatal("referrers");
	}
	if ((t->e[t->n].host = strdup(host)) == NULL)
		fatal("referrers");
	t->e[t->n++].views = views;
	return STORE_OK;
}

static int
total_host_cmp(const void *a, const void *b)
{
	return strcmp(((const struct referrer_total *)a)->host,
	    ((const struct referrer_total *)b)->host);
}

static int
total_views_cmp(const void *a, const void *b)
{
	const struct referrer_total *x = a, *y = b;

	if (x->views != y->views)
		return x->views > y->views ? -1 : 1;
	return strcmp(x->host, y->host);
}

int
store_referrer_totals(struct store_view *v, const char *site, int from, int to,
    struct referrer_totals *t)
{
	size_t i, n = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((rc = store_each_referrer(v, site, from, to, total_row, t)) !=
	    STORE_OK || t->n == 0)
		return rc;
	qsort(t->e, t->n, sizeof(*t->e), total_host_cmp);
	for (i = 0; i < t->n; i++) {
		if (n > 0 && strcmp(t->e[n - 1].host, t->e[i].host) == 0) {
			store_count_add(&t->e[n - 1].views, t->e[i].views);
			free(t->e[i].host);
		} else
			t->e[n++] = t->e[i];
	}
	t->n = n;
	qsort(t->e, t->n, sizeof(*t->e), total_views_cmp);
	return STORE_OK;
}

void
store_referrer_totals_free(struct referrer_totals *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->e[i].host);
	free(t->e);
	memset(t, 0, sizeof(*t));
}

int
top_entry_cmp(const void *a, const void *b)
{
	const struct top_entry *x = a, *y = b;

	if (x->c.views != y->c.views)
		return x->c.views > y->c.views ? -1 : 1;
	return strcmp(x->path, y->path);
}

/*
 * The top of a window from the sums the store keeps, most views first:
 * only the pages kept are read. The sums may still hold rows of days
 * before the window (see store_window_state); those are read from the
 * recent rows and subtracted. A sum is then never below what it should
 * be, so the walk stops at the first page whose sum is below the views
 * of the limit-th page kept.
 */
struct window_sub {
	uint32_t	 id;
	struct counts	 c;
};

struct window_top {
	struct store_view *v;
	const char	*site;
	struct store_window w;
	struct window_sub *sub;		/* rows to subtract, by id */
	size_t		 nsub, capsub;
	uint64_t	*heap;		/* views kept, fewest on top */
	size_t		 nheap, limit;
	struct top_entry *e;
	size_t		 n, cap;
	int		 rc;
};

static int
window_sub_row(void *arg, uint32_t id, int day, const struct counts *c)
{
	struct window_top *wt = arg;

	if (day == wt->w.out_day && id < wt->w.out_id)
		return 0;	/* taken out already */
	if (wt->nsub == wt->capsub) {
		wt->capsub = wt->capsub ? wt->capsub * 2 : 1024;
		if ((wt->sub = reallocarray(wt->sub, wt->capsub,
		    sizeof(*wt->sub))) == NULL)
			fatal("window top");
	}
	wt->sub[wt->nsub].id = id;
	wt->sub[wt->nsub++].c = *c;
	return 0;
}

static int
window_sub_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct window_sub *)a)->id;
	uint32_t y = ((const struct window_sub *)b)->id;

	return x < y ? -1 : x > y;
}

/* Keeps the limit largest views seen, the least of them on top. */
static void
window_heap_push(struct window_top *wt, uint64_t views)
{
	uint64_t *h = wt->heap, t;
	size_t i, c;

	if (wt->nheap == wt->limit) {
		if (views <= h[0])
			return;
		h[0] = views;
		for (i = 0; (c = 2 * i + 1) < wt->nheap; i = c) {
			if (c + 1 < wt->nheap && h[c + 1] < h[c])
				c++;
			if (h[c] >= h[i])
				break;
			t = h[i], h[i] = h[c], h[c] = t;
		}
		return;
	}
	for (i = wt->nheap++, h[i] = views; i > 0 && h[i] < h[(i - 1) / 2];
	    i = (i - 1) / 2)
		t = h[i], h[i] = h[(i - 1) / 2], h[(i - 1) / 2] = t;
}

static int
window_top_page(void *arg, uint32_t id, const struct counts *sum)
{
	struct window_top *wt = arg;
	char site[SITE_NAME_MAX + 2], path[PATH_MAX_LEN + 1024];
	struct window_sub key = { .id = id }, *p;
	struct counts c = *sum;
	bool full = wt->limit && wt->nheap == wt->limit;

	if (full && sum->views < wt->heap[0])
		return 1;	/* no page further on can enter the list */
	if (wt->nsub > 0 && (p = bsearch(&key, wt->sub, wt->nsub,
	    sizeof(*wt->sub), window_sub_cmp)) != NULL) {
		c.views -= p->c.views;
		c.visitors -= p->c.visitors;
	}
	/* The sums are exact (a series' rows never add up to 2^64, which
	 * import refuses), so that rows can leave them again; what is
	 * shown saturates as every other count does. */
	if (c.views > STORE_COUNT_MAX)
		c.views = STORE_COUNT_MAX;
	if (c.visitors > STORE_COUNT_MAX)
		c.visitors = STORE_COUNT_MAX;
	if (c.views == 0 || (full && c.views < wt->heap[0]))
		return 0;
	wt->rc = store_series_name(wt->v, id, site, sizeof(site), path,
	    sizeof(path));
	if (wt->rc == STORE_NOTFOUND) {
		wt->rc = STORE_OK;
		return 0;	/* reset since */
	}
	if (wt->rc != STORE_OK)
		return 1;
	if (strcmp(site, wt->site) != 0 || path[0] == '\0')
		return 0;
	if (wt->n == wt->cap) {
		wt->cap = wt->cap ? wt->cap * 2 : 64;
		if ((wt->e = reallocarray(wt->e, wt->cap, sizeof(*wt->e))) ==
		    NULL)
			fatal("window top");
	}
	if ((wt->e[wt->n].path = strdup(path)) == NULL)
		fatal("window top");
	wt->e[wt->n].id = id;
	wt->e[wt->n++].c = c;
	if (wt->limit)
		window_heap_push(wt, c.views);
	return 0;
}

int
store_window_top(struct store_view *v, const char *site, int from, int to,
    size_t limit, struct top_entry **out, size_t *n)
{
	struct window_top wt = { .v = v, .site = site, .limit = limit };
	size_t i, j;
	int rc;

	*out = NULL;
	*n = 0;
	if (to - from + 1 != STORE_WINDOW_DAYS)
		return STORE_NOTFOUND;
	if ((rc = store_window_state(v, &wt.w)) != STORE_OK)
		return rc;
	/* The sums hold no day past high, and what they hold before the
	 * window is still in the recent rows. */
	if (to < wt.w.high || from < wt.w.out_day)
		return STORE_NOTFOUND;
	if (wt.w.out_day < from && (rc = store_each_recent(v, wt.w.out_day,
	    from - 1, window_sub_row, &wt)) != STORE_OK)
		goto done;
	if (wt.nsub > 0)
		qsort(wt.sub, wt.nsub, sizeof(*wt.sub), window_sub_cmp);
	for (i = j = 0; i < wt.nsub; i++) {
		/* Exact, as the sums they come out of. */
		if (j > 0 && wt.sub[j - 1].id == wt.sub[i].id) {
			wt.sub[j - 1].c.views += wt.sub[i].c.views;
			wt.sub[j - 1].c.visitors += wt.sub[i].c.visitors;
		} else
			wt.sub[j++] = wt.sub[i];
	}
	wt.nsub = j;
	if (limit && (wt.heap = calloc(limit, sizeof(*wt.heap))) == NULL)
		fatal("window top");
	rc = store_each_window(v, site, window_top_page, &wt);
	if (rc == 1)
		rc = wt.rc;
	if (rc != STORE_OK)
		goto done;
	/* Kept: every page with at least the views of the limit-th, since
	 * later pages may have passed those kept early. */
	if (limit && wt.nheap == limit) {
		for (i = j = 0; i < wt.n; i++) {
			if (wt.e[i].c.views >= wt.heap[0])
				wt.e[j++] = wt.e[i];
			else
				free(wt.e[i].path);
		}
		wt.n = j;
	}
	*out = wt.e;
	*n = wt.n;
	wt.e = NULL;
	wt.n = 0;
done:
	for (i = 0; i < wt.n; i++)
		free(wt.e[i].path);
	free(wt.e);
	free(wt.sub);
	free(wt.heap);
	return rc;
}
