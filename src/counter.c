/*
 * Pending deltas live in a chained hash table keyed by site, path and
 * day. A commit writes them all in one transaction and empties the table;
 * a failed commit leaves them in place, so nothing answered is dropped
 * while the disk is full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/counter.h"
#include "tally/log.h"
#include "tally/path.h"

#define INITIAL_BUCKETS	1024
#define MAX_GROW_TRIES	16

struct pending {
	struct pending *next;
	uint64_t hash;
	int	 day;
	uint64_t views;
	uint64_t visitors;
	uint32_t new_pages;	/* site entry: pages first seen while pending */
	size_t	 site_len;	/* key is site '\0' path '\0' */
	size_t	 key_len;
	char	 key[];
};

/* Visitor ids seen since the last commit; the store has the rest. */
struct seen {
	uint64_t series;
	uint64_t visitor;
	int32_t	 day;
	bool	 used;
};

struct counter {
	struct store	*store;
	struct seen	*seen;
	size_t		 seen_cap;	/* a power of two */
	size_t		 nseen;
	struct store_view *view;
	struct pending	**buckets;
	size_t		 nbuckets;
	size_t		 n;
	size_t		 hits;		/* views pending */
	bool		 failed;
	char		 failure[256];
	struct commit_stats stats;
	commit_observer	 observer;
	void		*observer_arg;
};

/* Names a series in the seen set: site and path, hashed. */
static uint64_t
series_hash(const char *site, const char *path)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)site; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static struct seen *
seen_slot(struct seen *tab, size_t cap, int day, uint64_t series,
    uint64_t visitor)
{
	size_t i = (size_t)((series ^ visitor ^ (uint64_t)day) & (cap - 1));

	while (tab[i].used && !(tab[i].series == series &&
	    tab[i].visitor == visitor && tab[i].day == day))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static void
seen_grow(struct counter *c)
{
	struct seen *old = c->seen, *nt, *s;
	size_t i, oldcap = c->seen_cap, cap = oldcap ? oldcap * 2 : 1024;

	if ((nt = calloc(cap, sizeof(*nt))) == NULL)
		fatal("seen visitors");
	for (i = 0; i < oldcap; i++) {
		if (!old[i].used)
			continue;
		s = seen_slot(nt, cap, old[i].day, old[i].series, old[i].visitor);
		*s = old[i];
	}
	free(old);
	c->seen = nt;
	c->seen_cap = cap;
}

/* Marks the visitor seen on the series that day; true when new. */
static int
visit(struct counter *c, int day, uint64_t series, uint64_t visitor,
    bool *is_new)
{
	struct seen *s;
	bool in_store;
	int rc;

	if ((c->nseen + 1) * 2 > c->seen_cap)
		seen_grow(c);
	s = seen_slot(c->seen, c->seen_cap, day, series, visitor);
	if (s->used) {
		*is_new = false;
		return STORE_OK;
	}
	rc = store_seen_get(c->view, day, series, visitor, &in_store);
	if (rc != STORE_OK)
		return rc;
	*is_new = !in_store;
	if (in_store)
		return STORE_OK;
	s->used = true;
	s->day = day;
	s->series = series;
	s->visitor = visitor;
	c->nseen++;
	return STORE_OK;
}

static uint64_t
key_hash(const char *site, const char *path, int day)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)site; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h ^= (uint64_t)(unsigned int)day * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

struct counter *
counter_new(struct store *store)
{
	struct counter *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->store = store;
	c->nbuckets = INITIAL_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->view = store_view_new(store);
	if (c->buckets == NULL || c->view == NULL) {
		counter_free(c);
		return NULL;
	}
	return c;
}

static void
pending_clear(struct counter *c)
{
	struct pending *p, *next;
	size_t i;

	for (i = 0; i < c->nbuckets; i++) {
		for (p = c->buckets[i]; p; p = next) {
			next = p->next;
			free(p);
		}
		c->buckets[i] = NULL;
	}
	c->n = 0;
	c->hits = 0;
	if (c->seen)
		memset(c->seen, 0, c->seen_cap * sizeof(*c->seen));
	c->nseen = 0;
}

void
counter_free(struct counter *c)
{
	if (c == NULL)
		return;
	if (c->buckets)
		pending_clear(c);
	free(c->buckets);
	free(c->seen);
	store_view_free(c->view);
	free(c);
}

static struct pending *
pending_find(struct counter *c, const char *site, const char *path, int day,
    uint64_t h)
{
	struct pending *p;
	size_t sl = strlen(site);

	for (p = c->buckets[h & (c->nbuckets - 1)]; p; p = p->next)
		if (p->hash == h && p->day == day && p->site_len == sl &&
		    memcmp(p->key, site, sl) == 0 &&
		    strcmp(p->key + sl + 1, path) == 0)
			return p;
	return NULL;
}

static void
grow(struct counter *c)
{
	struct pending **nb, *p, *next;
	size_t i, n = c->nbuckets * 2;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains; still correct */
	for (i = 0; i < c->nbuckets; i++) {
		for (p = c->buckets[i]; p; p = next) {
			next = p->next;
			p->next = nb[p->hash & (n - 1)];
			nb[p->hash & (n - 1)] = p;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

static struct pending *
pending_get(struct counter *c, const char *site, const char *path, int day,
    bool *created)
{
	uint64_t h = key_hash(site, path, day);
	struct pending *p;
	size_t sl = strlen(site), pl = strlen(path);

	*created = false;
	if ((p = pending_find(c, site, path, day, h)) != NULL)
		return p;
	if ((p = calloc(1, sizeof(*p) + sl + pl + 2)) == NULL)
		fatal("pending hit");
	p->hash = h;
	p->day = day;
	p->site_len = sl;
	p->key_len = sl + pl + 1;
	memcpy(p->key, site, sl + 1);
	memcpy(p->key + sl + 1, path, pl + 1);
	p->next = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = p;
	c->n++;
	*created = true;
	if (c->n > c->nbuckets)
		grow(c);
	return p;
}

int
counter_add(struct counter *c, const struct hit *hit, const char **path_out)
{
	struct series_counts page, site;
	struct pending *pp, *sp;
	const char *path = hit->path;
	bool known, created, new_site = false, new_page = false;
	int rc;

	if ((rc = store_view_begin(c->view)) != STORE_OK)
		return rc;
	rc = store_get(c->view, hit->site, path, hit->day, &page);
	if (rc == STORE_OK)
		rc = store_get(c->view, hit->site, SITE_SERIES, hit->day, &site);
	if (rc != STORE_OK)
		goto done;

	sp = pending_get(c, hit->site, SITE_SERIES, hit->day, &created);
	known = page.exists || pending_find(c, hit->site, path, hit->day,
	    key_hash(hit->site, path, hit->day)) != NULL;
	/* Past the cap, new paths pile up under one name. */
	if (!known && hit->max_pages > 0 &&
	    (long)site.npages + (long)sp->new_pages >= hit->max_pages &&
	    strcmp(path, PATH_OTHER) != 0) {
		path = PATH_OTHER;
		rc = store_get(c->view, hit->site, path, hit->day, &page);
		if (rc != STORE_OK)
			goto done;
	}
	if (hit->has_visitor) {
		rc = visit(c, hit->day, series_hash(hit->site, SITE_SERIES),
		    hit->visitor, &new_site);
		if (rc == STORE_OK)
			rc = visit(c, hit->day, series_hash(hit->site, path),
			    hit->visitor, &new_page);
		if (rc != STORE_OK)
			goto done;
	}

	pp = pending_get(c, hit->site, path, hit->day, &created);
	if (created && !page.exists)
		sp->new_pages++;
	c->hits++;
	pp->views++;
	pp->visitors += new_page;
	sp->views++;
	sp->visitors += new_site;
	*path_out = path;
done:
	store_view_end(c->view);
	return rc;
}

/* Adds what is pending for a series: all of it to the total, the given
 * day's to the day. Hits of yesterday can still be pending just after
 * midnight. */
static void
add_pending(struct counter *c, const char *site, const char *path, int day,
    struct counts *total, struct counts *today)
{
	struct pending *p;
	int d;

	for (d = day - 1; d <= day; d++) {
		p = pending_find(c, site, path, d, key_hash(site, path, d));
		if (p == NULL)
			continue;
		total->views += p->views;
		total->visitors += p->visitors;
		if (d == day) {
			today->views += p->views;
			today->visitors += p->visitors;
		}
	}
}

int
counter_read(struct counter *c, const char *site, const char *path, int day,
    struct page_counts *out)
{
	struct series_counts page, whole;
	int rc;

	if ((rc = store_view_begin(c->view)) != STORE_OK)
		return rc;
	rc = store_get(c->view, site, path, day, &page);
	if (rc == STORE_OK)
		rc = store_get(c->view, site, SITE_SERIES, day, &whole);
	store_view_end(c->view);
	if (rc != STORE_OK)
		return rc;
	out->page = page.total;
	out->page_today = page.day;
	out->total = whole.total;
	out->today = whole.day;
	add_pending(c, site, path, day, &out->page, &out->page_today);
	add_pending(c, site, SITE_SERIES, day, &out->total, &out->today);
	return STORE_OK;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One attempt: every pending delta in one transaction. */
static int
commit_once(struct counter *c)
{
	struct store_txn *txn;
	struct pending *p;
	size_t i;
	int rc;

	if ((rc = store_write_begin(c->store, &txn)) != STORE_OK)
		return rc;
	for (i = 0; i < c->nbuckets; i++) {
		for (p = c->buckets[i]; p; p = p->next) {
			rc = store_add(txn, p->key, p->key + p->site_len + 1,
			    p->day, p->views, p->visitors);
			if (rc != STORE_OK) {
				store_abort(txn);
				return rc;
			}
		}
	}
	for (i = 0; i < c->seen_cap; i++) {
		if (!c->seen[i].used)
			continue;
		rc = store_seen_put(txn, c->seen[i].day, c->seen[i].series,
		    c->seen[i].visitor);
		if (rc != STORE_OK) {
			store_abort(txn);
			return rc;
		}
	}
	return store_commit(txn);
}

static int
commit_with_growth(struct counter *c, int (*fn)(struct counter *))
{
	double start = now_seconds(), took;
	int rc, tries;

	for (tries = 0; tries < MAX_GROW_TRIES; tries++) {
		rc = fn(c);
		if (rc != STORE_MAPFULL)
			break;
		if (store_grow(c->store) != STORE_OK) {
			rc = STORE_ERROR;
			break;
		}
		log_info("store map grown");
	}
	took = now_seconds() - start;
	if (rc == STORE_MAPFULL)
		snprintf(c->failure, sizeof(c->failure), "store map is full");
	else if (rc != STORE_OK)
		snprintf(c->failure, sizeof(c->failure), "%s",
		    store_error(c->store));
	if (rc != STORE_OK) {
		if (!c->failed)
			log_warnx("commit failed: %s", c->failure);
		c->failed = true;
		c->stats.failures++;
		return rc;
	}
	if (c->failed)
		log_info("commits work again");
	c->failed = false;
	c->stats.commits++;
	c->stats.last_seconds = took;
	if (c->observer)
		c->observer(took, c->observer_arg);
	return STORE_OK;
}

int
counter_commit(struct counter *c)
{
	int rc;

	if (c->n == 0 && c->nseen == 0)
		return STORE_OK;
	if ((rc = commit_with_growth(c, commit_once)) == STORE_OK)
		pending_clear(c);
	return rc;
}

static int
probe_once(struct counter *c)
{
	struct store_txn *txn;
	int64_t now = (int64_t)time(NULL);
	int rc;

	if ((rc = store_write_begin(c->store, &txn)) != STORE_OK)
		return rc;
	if ((rc = store_meta_put(txn, "probe", &now, sizeof(now))) != STORE_OK) {
		store_abort(txn);
		return rc;
	}
	return store_commit(txn);
}

int
counter_probe(struct counter *c)
{
	if (c->n > 0)
		return counter_commit(c);
	return commit_with_growth(c, probe_once);
}

size_t
counter_pending(const struct counter *c)
{
	return c->hits;
}

const char *
counter_failure(const struct counter *c)
{
	return c->failed ? c->failure : NULL;
}

const struct commit_stats *
counter_commit_stats(const struct counter *c)
{
	return &c->stats;
}

void
counter_observe_commits(struct counter *c, commit_observer fn, void *arg)
{
	c->observer = fn;
	c->observer_arg = arg;
}
