/*
 * Pending deltas live in a batch: a chained hash table keyed by site,
 * path and day, the visitor ids first seen in it, and the requests that
 * wait for it to reach the disk. A commit swaps the pending batch for an
 * empty one under the lock and writes it outside the lock; while it is
 * being written it is "in flight", and answers add it to what the store
 * shows until a view holds the commit. A failed commit puts its deltas
 * back, so nothing answered is dropped while the disk is full.
 *
 * A batch holds at most about KICK_AFTER entries. A burst of new paths
 * fills one after another; the full ones queue behind the pending one
 * and are committed oldest first, each in its own transaction. LMDB
 * keeps the pages a transaction dirtied for the transactions after it,
 * for the life of the store, so the largest transaction sets tallyd's
 * memory for good: it must not grow with the burst.
 *
 * A shared store (PostgreSQL) may also be unreachable. Then the batch
 * goes back the same way and batch-mode hits go on being answered, kept
 * in memory up to buffer_max, until a commit reaches the database: the
 * store learns from its ledger whether the flush cut off had counted,
 * and sends only what it had not. The committer also refreshes the
 * store's copy of other nodes' counts, so that no request waits on the
 * network.
 *
 * A commit is on disk only once the store has synced the commit after
 * it, or been synced itself (STORE_DEFER_SYNC): strict hits wait for
 * that. Under load commits follow each other and each waits on the
 * disk once; when nothing more is pending, the committer syncs at once.
 *
 * One mutex guards the batches. Each request takes it once, for a few
 * lookups; the committer takes it twice per commit.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/log.h"
#include "tally/pages.h"
#include "tally/path.h"

#include "counter.h"

#define INITIAL_BUCKETS	1024
#define PROBE_MAX	(8 << 20)
#define ADDRESS_SLOTS	65536	/* counters per row of the new-visitor sketch */
#define CANDIDATE_SLOTS	16384	/* paths waiting past max_pages */
#define KICK_AFTER	1024	/* pending entries that start a commit */
#define TRIM_AFTER	KICK_AFTER	/* entries worth a malloc_trim */
/* Slots of a batch's table of visitor ids: its first size, and the
 * most it keeps for the next batch. A commit walks every slot, and
 * most commits under load carry a few ids, or none. */
#define SEEN_FIRST	16
#define SEEN_KEEP	1024

/*
 * The deltas of a series and day. An entry whose "path" neither starts
 * with '/' nor is the site's own "" is a referring host instead: it
 * holds the site's views of the day that came from it (store_referrer_add).
 */
struct pending {
	struct pending *next;		/* in its bucket */
	struct pending *entry;		/* the batch's next entry */
	uint64_t hash;
	int	 day;
	uint64_t views;
	uint64_t visitors;
	uint32_t new_pages;	/* site entry: pages first seen here */
	uint32_t max_referrers;	/* referrer entry: the day's cap */
	size_t	 site_len;	/* key is site '\0' path '\0' */
	char	 key[];
};

static bool
is_referrer(const struct pending *p)
{
	char c = p->key[p->site_len + 1];

	return c != '/' && c != '\0';
}

/*
 * A visitor id of a day on a series: new in this batch, to be written;
 * or, with site set, one the store already held for the site when the
 * visitor was counted on a page of it as new. tallyctl reset may delete
 * that id between the hit and the commit: then the commit counts the
 * visitor on the site again, so that no page of a day has a visitor its
 * site lacks.
 */
struct seen {
	uint64_t series;
	uint64_t visitor;
	struct pending *site;	/* assumed seen: the site's entry */
	int32_t	 day;
	bool	 used;
};

/* A path the site has no room for, and the addresses that viewed it on
 * day: once PAGE_ADMIT_ADDRESSES have, it may get a series of its own. */
struct candidate {
	uint64_t series;	/* store_series_hash() of site and path */
	int32_t	 day;
	uint32_t n;		/* distinct addresses; 0: a free slot */
	uint64_t address[PAGE_ADMIT_ADDRESSES - 1];
};

/* Paths a site was given past max_pages on day. */
struct admissions {
	uint64_t site;		/* store_series_hash() of the site */
	int	 day;
	long	 n;
};

struct batch {
	struct batch	*older;		/* queued before this one, or NULL */
	struct pending	**buckets;
	size_t		 nbuckets;	/* a power of two */
	/* Every entry, newest first: a commit of a few entries walks
	 * those, not every bucket. */
	struct pending	*entries;
	size_t		 n;
	size_t		 hits;
	struct seen	*seen;
	size_t		 seen_cap;	/* a power of two, or 0 */
	size_t		 nseen;
	struct counter_waiter *waiters;
	struct counter_waiter **waiters_tail;
};

#ifdef COUNTER_TEST_HOOK
/* The unit test's hand in a commit, compiled only into the test: run in
 * the write transaction once the batch's nseries series are written;
 * what it returns, the write returns. */
int (*counter_test_hook)(size_t nseries);
#define TEST_HOOK(n)	(counter_test_hook ? counter_test_hook(n) : STORE_OK)
#else
#define TEST_HOOK(n)	STORE_OK
#endif

struct counter {
	struct store	*store;
	pthread_mutex_t	 lock;
	struct batch	*pending;	/* the newest; full ones queue behind */
	struct batch	*inflight;	/* being committed, or NULL */
	uint64_t	 inflight_version; /* its transaction, 0 before */
	struct batch	*spare;
	pthread_mutex_t	 commit_lock;	/* one commit at a time */

	/* New visitors per address today: a count-min sketch of two rows,
	 * so that memory stays fixed however many addresses come. */
	int		 address_day;
	uint32_t	*address_new;	/* 2 * ADDRESS_SLOTS */

	struct candidate *candidates;	/* CANDIDATE_SLOTS */
	struct admissions *admissions;	/* one per site that hit the cap */
	size_t		 nadmissions;

	bool		 failed;
	bool		 unavailable;	/* failed: the database is unreachable */
	size_t		 failed_bytes;	/* a strict batch that did not fit */
	bool		 shared;	/* a store on the network */
	size_t		 buffer_max;	/* hits kept while it is unreachable */
	uint64_t	 refresh_ms;	/* the copy of its counts, at most this old */
	bool		 sync_due;	/* the last commit is not on disk yet */
	struct counter_waiter *unsynced; /* its strict hits, and older ones */
	counter_gate_fn	 gate;		/* may this node count? */
	void		*gate_arg;
	bool		 gate_shut;	/* no: every counting request refused */
	char		 gate_why[256];
	double		 last_commit;	/* monotonic seconds of the last success */
	char		 failure[256];
	struct commit_stats stats;
	commit_observer	 observer;
	void		*observer_arg;

	pthread_t	 thread;
	bool		 running;
	bool		 stopping;
	bool		 kicked;
	bool		 idle;		/* the committer waits for work */
	long		 interval_ms;
	pthread_cond_t	 wake;
};

static void
lock(struct counter *c)
{
	/* Counting contention is what tells whether threads scale. */
	if (pthread_mutex_trylock(&c->lock) != 0) {
		pthread_mutex_lock(&c->lock);
		c->stats.lock_contended++;
	}
	c->stats.lock_taken++;
}

static void
unlock(struct counter *c)
{
	pthread_mutex_unlock(&c->lock);
}

/* A pending entry's hash: its series' and its day's. */
static uint64_t
key_hash_day(uint64_t series, int day)
{
	uint64_t h = series;

	h ^= (uint64_t)(unsigned int)day * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static struct batch *
batch_new(void)
{
	struct batch *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		fatal("batch");
	b->nbuckets = INITIAL_BUCKETS;
	if ((b->buckets = calloc(b->nbuckets, sizeof(*b->buckets))) == NULL)
		fatal("batch");
	b->waiters_tail = &b->waiters;
	return b;
}

static void
batch_clear(struct batch *b)
{
	struct pending *p, *next;

	if (b->n > 0) {
		for (p = b->entries; p; p = next) {
			next = p->entry;
			free(p);
		}
		memset(b->buckets, 0, b->nbuckets * sizeof(*b->buckets));
	}
	b->entries = NULL;
	b->n = 0;
	b->hits = 0;
	/* A burst's worth of seen ids is not kept for ever. */
	if (b->seen_cap > SEEN_KEEP) {
		free(b->seen);
		b->seen = NULL;
		b->seen_cap = 0;
	} else if (b->nseen > 0) {
		memset(b->seen, 0, b->seen_cap * sizeof(*b->seen));
	}
	b->nseen = 0;
	b->waiters = NULL;
	b->waiters_tail = &b->waiters;
}

static void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	batch_clear(b);
	free(b->buckets);
	free(b->seen);
	free(b);
}

/* The batches whose hits a view does not hold: from the pending one
 * through those queued behind it, then the one in flight unless the
 * view holds its commit (inflight NULL). */
static struct batch *
unstored_next(const struct batch *b, struct batch *inflight)
{
	if (b->older != NULL)
		return b->older;
	return b == inflight ? NULL : inflight;
}

#define FOR_UNSTORED(b, c, inflight) \
	for ((b) = (c)->pending; (b) != NULL; \
	    (b) = unstored_next((b), (inflight)))

static void
queue_pending(struct counter *c)
{
	struct batch *b = c->spare != NULL ? c->spare : batch_new();

	c->spare = NULL;
	b->older = c->pending;
	c->pending = b;
}

static struct pending *
pending_find(struct batch *b, const char *site, const char *path, int day,
    uint64_t h)
{
	struct pending *p;
	size_t sl = strlen(site);

	for (p = b->buckets[h & (b->nbuckets - 1)]; p; p = p->next)
		if (p->hash == h && p->day == day && p->site_len == sl &&
		    memcmp(p->key, site, sl) == 0 &&
		    strcmp(p->key + sl + 1, path) == 0)
			return p;
	return NULL;
}

static void
buckets_grow(struct batch *b)
{
	struct pending **nb, *p, *next;
	size_t i, n = b->nbuckets * 2;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		fatal("pending hits");
	for (i = 0; i < b->nbuckets; i++) {
		for (p = b->buckets[i]; p; p = next) {
			next = p->next;
			p->next = nb[p->hash & (n - 1)];
			nb[p->hash & (n - 1)] = p;
		}
	}
	free(b->buckets);
	b->buckets = nb;
	b->nbuckets = n;
}

/* The entry of a series (site, path, its store_series_hash()) and day,
 * made if need be. */
static struct pending *
pending_get(struct batch *b, const char *site, const char *path,
    uint64_t series, int day, bool *created)
{
	uint64_t h = key_hash_day(series, day);
	struct pending *p;
	size_t sl = strlen(site), pl = strlen(path);

	*created = false;
	if ((p = pending_find(b, site, path, day, h)) != NULL)
		return p;
	if ((p = calloc(1, sizeof(*p) + sl + pl + 2)) == NULL)
		fatal("pending hit");
	p->hash = h;
	p->day = day;
	p->site_len = sl;
	memcpy(p->key, site, sl + 1);
	memcpy(p->key + sl + 1, path, pl + 1);
	p->next = b->buckets[h & (b->nbuckets - 1)];
	b->buckets[h & (b->nbuckets - 1)] = p;
	p->entry = b->entries;
	b->entries = p;
	b->n++;
	*created = true;
	if (b->n > b->nbuckets)
		buckets_grow(b);
	return p;
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

static bool
seen_has(const struct batch *b, int day, uint64_t series, uint64_t visitor)
{
	if (b == NULL || b->nseen == 0)
		return false;
	return seen_slot(b->seen, b->seen_cap, day, series, visitor)->used;
}

/* Adds a new visitor id (site NULL), or one assumed seen on site. */
static void
seen_add(struct batch *b, int day, uint64_t series, uint64_t visitor,
    struct pending *site)
{
	struct seen *old = b->seen, *nt, *s;
	size_t i, oldcap = b->seen_cap, cap;

	if ((b->nseen + 1) * 2 > b->seen_cap) {
		cap = oldcap ? oldcap * 2 : SEEN_FIRST;
		if ((nt = calloc(cap, sizeof(*nt))) == NULL)
			fatal("seen visitors");
		for (i = 0; i < oldcap; i++) {
			if (!old[i].used)
				continue;
			*seen_slot(nt, cap, old[i].day, old[i].series,
			    old[i].visitor) = old[i];
		}
		free(old);
		b->seen = nt;
		b->seen_cap = cap;
	}
	s = seen_slot(b->seen, b->seen_cap, day, series, visitor);
	if (s->used) {
		if (site == NULL)
			s->site = NULL;	/* new after all: it is written */
		return;
	}
	s->used = true;
	s->day = day;
	s->series = series;
	s->visitor = visitor;
	s->site = site;
	b->nseen++;
}

struct counter *
counter_new(struct store *store)
{
	struct counter *c;
	pthread_condattr_t ca;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("counter");
	c->store = store;
	c->address_new = calloc(2 * ADDRESS_SLOTS, sizeof(*c->address_new));
	c->candidates = calloc(CANDIDATE_SLOTS, sizeof(*c->candidates));
	if (c->address_new == NULL || c->candidates == NULL)
		fatal("counter");
	c->address_day = -1;
	c->pending = batch_new();
	c->spare = batch_new();
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->commit_lock, NULL);
	/* Intervals are measured on the monotonic clock: a wall clock that
	 * jumps must not stall or rush commits. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca);
	pthread_condattr_destroy(&ca);
	return c;
}

void
counter_free(struct counter *c)
{
	if (c == NULL)
		return;
	while (c->pending != NULL) {
		struct batch *older = c->pending->older;

		batch_free(c->pending);
		c->pending = older;
	}
	batch_free(c->inflight);
	batch_free(c->spare);
	free(c->address_new);
	free(c->candidates);
	free(c->admissions);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->commit_lock);
	pthread_cond_destroy(&c->wake);
	free(c);
}

/* The in-flight batch counts for an answer until its commit is visible
 * in the answer's view. */
static struct batch *
inflight_for(struct counter *c, struct store_view *view)
{
	if (c->inflight == NULL)
		return NULL;
	if (c->inflight_version != 0 &&
	    store_view_version(view) >= c->inflight_version)
		return NULL;
	return c->inflight;
}

/* Whether the visitor was seen on a series that day. */
static int
was_seen(struct counter *c, struct store_view *view, struct batch *inflight,
    int day, uint64_t series, uint64_t visitor, bool *seen)
{
	struct batch *b;

	*seen = true;
	FOR_UNSTORED(b, c, inflight)
		if (seen_has(b, day, series, visitor))
			return STORE_OK;
	return store_seen_get(view, day, series, visitor, seen);
}

/* Marks the visitor seen on a series that day; true when new. */
static int
visit(struct counter *c, struct store_view *view, struct batch *inflight,
    int day, uint64_t series, uint64_t visitor, bool *is_new)
{
	bool seen;
	int rc;

	*is_new = false;
	if ((rc = was_seen(c, view, inflight, day, series, visitor, &seen)) !=
	    STORE_OK || seen)
		return rc;
	*is_new = true;
	seen_add(c->pending, day, series, visitor, NULL);
	return STORE_OK;
}

/*
 * Takes a new visitor from the day's allowance of the hit's address;
 * false when it is used up. Each address adds to one counter of each
 * row and is judged by the smaller: addresses that share both counters
 * share an allowance, which errs towards fewer visitors, never more.
 */
static bool
address_admits(struct counter *c, const struct hit *hit)
{
	uint32_t *a, *b, least;

	if (hit->new_visitors_max <= 0)
		return true;
	if (hit->day > c->address_day) {
		memset(c->address_new, 0,
		    2 * ADDRESS_SLOTS * sizeof(*c->address_new));
		c->address_day = hit->day;
	}
	a = &c->address_new[hit->address & (ADDRESS_SLOTS - 1)];
	b = &c->address_new[ADDRESS_SLOTS +
	    ((hit->address >> 32) & (ADDRESS_SLOTS - 1))];
	least = *a < *b ? *a : *b;
	if ((long long)least >= (long long)hit->new_visitors_max ||
	    least == UINT32_MAX)
		return false;
	/* Only the smaller grows: the estimate of others stays tight. */
	if (*a == least)
		(*a)++;
	if (*b == least)
		(*b)++;
	return true;
}

static bool
known_page(struct counter *c, struct batch *inflight, const char *site,
    const char *path, uint64_t series, int day,
    const struct series_counts *page)
{
	uint64_t h = key_hash_day(series, day);
	struct batch *b;

	if (page->exists)
		return true;
	FOR_UNSTORED(b, c, inflight)
		if (pending_find(b, site, path, day, h) != NULL)
			return true;
	return false;
}

/*
 * Notes the address on a path waiting for room; returns how many
 * distinct addresses viewed it that day, this one included. A path may
 * sit in one of two slots; a newcomer takes a free or stale one, else
 * the one with fewer addresses, so that the paths of one client never
 * push out those that several have viewed.
 */
static long
candidate_note(struct counter *c, uint64_t series, int day, uint64_t address)
{
	struct candidate *s[2], *e = NULL;
	uint32_t i;
	int k;

	s[0] = &c->candidates[series & (CANDIDATE_SLOTS - 1)];
	s[1] = &c->candidates[(series >> 32) & (CANDIDATE_SLOTS - 1)];
	for (k = 0; k < 2 && e == NULL; k++)
		if (s[k]->n > 0 && s[k]->series == series && s[k]->day == day)
			e = s[k];
	for (k = 0; k < 2 && e == NULL; k++)
		if (s[k]->n == 0 || s[k]->day != day)
			e = s[k];
	if (e == NULL)
		e = s[0]->n <= s[1]->n ? s[0] : s[1];
	if (e->series != series || e->day != day || e->n == 0) {
		e->series = series;
		e->day = day;
		e->n = 0;
	}
	for (i = 0; i < e->n && i < PAGE_ADMIT_ADDRESSES - 1; i++)
		if (e->address[i] == address)
			return e->n;
	if (e->n < PAGE_ADMIT_ADDRESSES - 1)
		e->address[e->n] = address;
	if (e->n < PAGE_ADMIT_ADDRESSES)
		e->n++;
	return e->n;
}

static struct admissions *
admissions_of(struct counter *c, const char *site, int day)
{
	struct admissions *a;
	uint64_t h = store_series_hash(site, SITE_SERIES);
	size_t i;

	for (i = 0; i < c->nadmissions; i++)
		if (c->admissions[i].site == h)
			break;
	if (i == c->nadmissions) {
		/* One per configured site at most: hits of others are
		 * refused before they get here. */
		a = realloc(c->admissions, (i + 1) * sizeof(*a));
		if (a == NULL)
			fatal("admissions");
		c->admissions = a;
		c->nadmissions++;
		a[i].site = h;
		a[i].day = day;
		a[i].n = 0;
	}
	a = &c->admissions[i];
	if (a->day != day) {
		a->day = day;
		a->n = 0;
	}
	return a;
}

/* Whether a path the site does not hold gets a series of its own: the
 * max_pages rule of pages.h, with what only the counter knows. */
static bool
admit_page(struct counter *c, struct batch *inflight, const struct hit *hit,
    uint64_t series, const struct series_counts *site,
    const struct pending *sp)
{
	struct page_cap cap;
	struct admissions *a;
	struct pending *fs;
	struct batch *b;

	memset(&cap, 0, sizeof(cap));
	cap.max_pages = hit->max_pages;
	cap.npages = (long)site->npages + (long)sp->new_pages;
	/* sp is the pending batch's; the others' come on top (the same
	 * key, so the same hash). */
	for (b = unstored_next(c->pending, inflight); b != NULL;
	    b = unstored_next(b, inflight))
		if ((fs = pending_find(b, hit->site, SITE_SERIES, hit->day,
		    sp->hash)) != NULL)
			cap.npages += (long)fs->new_pages;
	if (page_gets_series(&cap, hit->path))
		return true;	/* room enough */
	a = admissions_of(c, hit->site, hit->day);
	cap.admitted = a->n;
	cap.addresses = candidate_note(c, series, hit->day, hit->address);
	if (!page_gets_series(&cap, hit->path))
		return false;
	a->n++;
	return true;
}

static int
add_hit(struct counter *c, struct store_view *view, struct batch *inflight,
    const struct hit *hit, const char **path_out, uint64_t *series_out,
    uint64_t ss, struct series_counts *pagep, struct series_counts *sitep)
{
	struct series_counts page, site;
	struct pending *pp, *sp;
	const char *path = hit->path;
	uint64_t ps = store_series_hash(hit->site, path);
	bool created, was_known, new_site = false, new_page = false;
	int rc;

	if ((rc = store_get(view, hit->site, path, hit->day, &page)) != STORE_OK ||
	    (rc = store_get(view, hit->site, SITE_SERIES, hit->day, &site)) !=
	    STORE_OK)
		return rc;
	sp = pending_get(c->pending, hit->site, SITE_SERIES, ss, hit->day,
	    &created);
	/* Past the cap, new paths pile up under one name. */
	if (!known_page(c, inflight, hit->site, path, ps, hit->day, &page) &&
	    !admit_page(c, inflight, hit, ps, &site, sp)) {
		path = PATH_OTHER;
		ps = store_series_hash(hit->site, path);
		rc = store_get(view, hit->site, path, hit->day, &page);
		if (rc != STORE_OK)
			return rc;
	}
	if (hit->has_visitor) {
		bool seen;

		if ((rc = was_seen(c, view, inflight, hit->day, ss, hit->visitor,
		    &seen)) != STORE_OK)
			return rc;
		/* Past its address's allowance, a new visitor is made no
		 * more than under Do Not Track. */
		if (seen || address_admits(c, hit)) {
			if (!seen) {
				new_site = true;
				seen_add(c->pending, hit->day, ss,
				    hit->visitor, NULL);
			}
			rc = visit(c, view, inflight, hit->day, ps,
			    hit->visitor, &new_page);
			if (rc != STORE_OK)
				return rc;
			if (seen && new_page)
				seen_add(c->pending, hit->day, ss,
				    hit->visitor, sp);
		}
	}
	was_known = known_page(c, inflight, hit->site, path, ps, hit->day,
	    &page);
	pp = pending_get(c->pending, hit->site, path, ps, hit->day, &created);
	if (!was_known)
		sp->new_pages++;
	c->pending->hits++;
	pp->views++;
	pp->visitors += new_page;
	sp->views++;
	sp->visitors += new_site;
	if (hit->referrer != NULL) {
		pp = pending_get(c->pending, hit->site, hit->referrer,
		    store_series_hash(hit->site, hit->referrer), hit->day,
		    &created);
		pp->views++;
		pp->max_referrers = hit->max_referrers;
	}
	*path_out = path;
	*series_out = ps;
	/* What was read is what the answer needs: no second lookup. */
	*pagep = page;
	*sitep = site;
	return STORE_OK;
}

/* Adds what a batch holds for a series: all of it to the total, the
 * day's to the day. Yesterday's hits can be pending after midnight. */
static void
add_batch(struct batch *b, const char *site, const char *path,
    uint64_t series, int day, struct counts *total, struct counts *today)
{
	struct pending *p;
	int d;

	if (b == NULL || b->n == 0)
		return;
	for (d = day - 1; d <= day; d++) {
		p = pending_find(b, site, path, d, key_hash_day(series, d));
		if (p == NULL)
			continue;
		store_count_add(&total->views, p->views);
		store_count_add(&total->visitors, p->visitors);
		if (d == day) {
			store_count_add(&today->views, p->views);
			store_count_add(&today->visitors, p->visitors);
		}
	}
}

/* The answer: what the store holds for a page and its site, and what
 * the pending and in-flight batches add. Called under the lock. */
static inline void
fill_counts(struct counter *c, struct batch *inflight, const char *site,
    const char *path, uint64_t ps, uint64_t ss, int day,
    const struct series_counts *page, const struct series_counts *whole,
    struct page_counts *out)
{
	struct batch *b;

	out->page = page->total;
	out->page_today = page->day;
	out->total = whole->total;
	out->today = whole->day;
	FOR_UNSTORED(b, c, inflight) {
		add_batch(b, site, path, ps, day, &out->page,
		    &out->page_today);
		add_batch(b, site, SITE_SERIES, ss, day, &out->total,
		    &out->today);
	}
}

int
counter_add(struct counter *c, struct store_view *view, const struct hit *hit,
    struct counter_waiter *waiter, const char **path_out,
    struct page_counts *out)
{
	struct series_counts page, whole;
	struct batch *inflight;
	/* Each series' hash once, for all of the hit's lookups. */
	uint64_t ps, ss = store_series_hash(hit->site, SITE_SERIES);
	int rc;

	*path_out = hit->path;
	lock(c);
	/* A full batch queues for its own commit, and hits go on into a
	 * new one. Before the hit, so that a strict hit and its waiter
	 * share a batch; a hit adds at most three entries. */
	if (c->pending->n >= KICK_AFTER)
		queue_pending(c);
	/* The view begins under the lock, so that the in-flight batch is
	 * either in it or still in memory, never neither nor both. */
	if ((rc = store_view_begin(view)) != STORE_OK)
		goto done;
	inflight = inflight_for(c, view);
	/* The hit's own lookups are the answer's: no second one. */
	if ((rc = add_hit(c, view, inflight, hit, path_out, &ps, ss, &page,
	    &whole)) != STORE_OK)
		goto done;
	fill_counts(c, inflight, hit->site, *path_out, ps, ss, hit->day, &page,
	    &whole, out);
	if (waiter) {
		waiter->next = NULL;
		*c->pending->waiters_tail = waiter;
		c->pending->waiters_tail = &waiter->next;
	}
	/* Full batches and strict hits commit as soon as the committer
	 * is free: an idle one is woken here, a busy one looks for them
	 * when its commit or sync ends. */
	if (!c->kicked && (c->pending->older != NULL ||
	    c->pending->n >= KICK_AFTER || (waiter != NULL && c->idle))) {
		c->kicked = true;
		pthread_cond_signal(&c->wake);
	}
done:
	store_view_end(view);
	unlock(c);
	return rc;
}

int
counter_read(struct counter *c, struct store_view *view, const char *site,
    const char *path, int day, struct page_counts *out)
{
	struct series_counts page, whole;
	int rc;

	lock(c);
	/* As in counter_add: the view and the in-flight batch agree. */
	if ((rc = store_view_begin(view)) == STORE_OK &&
	    (rc = store_get(view, site, path, day, &page)) == STORE_OK &&
	    (rc = store_get(view, site, SITE_SERIES, day, &whole)) == STORE_OK)
		fill_counts(c, inflight_for(c, view), site, path,
		    store_series_hash(site, path),
		    store_series_hash(site, SITE_SERIES), day, &page, &whole,
		    out);
	store_view_end(view);
	unlock(c);
	return rc;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct batch_write {
	struct counter	*c;
	struct batch	*b;
	size_t		 probe;		/* bytes of meta "probe" to write; 0: none */
};

/* Writes a batch in one transaction (a store_write_fn). */
/* The visitors counted on a page as new while their site had seen them:
 * where a reset has deleted the site's id since, the site counts them
 * again. */
static int
confirm_seen(struct store_txn *txn, struct batch *b)
{
	const struct seen *s;
	bool seen;
	size_t i;
	int rc;

	for (i = 0; i < b->seen_cap && b->nseen > 0; i++) {
		s = &b->seen[i];
		if (!s->used || s->site == NULL)
			continue;
		if ((rc = store_txn_seen_get(txn, s->day, s->series,
		    s->visitor, &seen)) != STORE_OK)
			return rc;
		if (seen)
			continue;
		if ((rc = store_add(txn, s->site->key, SITE_SERIES, s->day,
		    0, 1)) != STORE_OK ||
		    (rc = store_seen_put(txn, s->day, s->series,
		    s->visitor)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static int
write_batch(struct store_txn *txn, void *arg)
{
	struct batch_write *w = arg;
	struct counter *c = w->c;
	struct batch *b = w->b;
	struct pending *p;
	int64_t now = (int64_t)time(NULL);
	unsigned char *buf;
	size_t i;
	int rc;

	lock(c);
	if (b == c->inflight)
		c->inflight_version = store_txn_version(txn);
	unlock(c);
	for (p = b->entries; p; p = p->entry) {
		if (is_referrer(p))
			rc = store_referrer_add(txn, p->key, p->day,
			    p->key + p->site_len + 1, p->views,
			    p->max_referrers);
		else
			rc = store_add(txn, p->key, p->key + p->site_len + 1,
			    p->day, p->views, p->visitors);
		if (rc != STORE_OK)
			return rc;
	}
	if ((rc = TEST_HOOK(b->n)) != STORE_OK)
		return rc;
	for (i = 0; i < b->seen_cap && b->nseen > 0; i++) {
		if (!b->seen[i].used || b->seen[i].site != NULL)
			continue;
		rc = store_seen_put(txn, b->seen[i].day, b->seen[i].series,
		    b->seen[i].visitor);
		if (rc != STORE_OK)
			return rc;
	}
	if ((rc = confirm_seen(txn, b)) != STORE_OK)
		return rc;
	if (w->probe == 0)
		return STORE_OK;
	if ((buf = calloc(1, w->probe)) == NULL)
		fatal("store probe");
	memcpy(buf, &now, sizeof(now));
	rc = store_meta_put(txn, "probe", buf, w->probe);
	free(buf);
	return rc;
}

/* About what a batch takes of the store: every series copies a path of
 * pages in four databases. A probe that large, in one piece, shows that
 * the store has room for the batch again. */
static size_t
batch_bytes(const struct batch *b)
{
	size_t n = (b->n * 12 + b->nseen / 64 + 4) * 4096;

	return n < PROBE_MAX ? n : PROBE_MAX;
}

/* Puts a failed batch back where it was, the oldest, to be tried again
 * first: the batches after it may count its visitors as seen already,
 * so they must not reach the store before it. */
static void
requeue(struct counter *c, struct batch *b)
{
	struct batch *t;

	for (t = c->pending; t->older != NULL; t = t->older)
		;
	b->older = NULL;
	t->older = b;
}

/* Notes a failure of the store. Called under the lock. */
static void
failed(struct counter *c, int rc)
{
	snprintf(c->failure, sizeof(c->failure), "%s", store_error(c->store));
	if (!c->failed)
		log_warnx("commit failed: %s", c->failure);
	c->failed = true;
	c->unavailable = rc == STORE_UNAVAILABLE;
	c->stats.failures++;
}

/* The store works again. Called under the lock. */
static void
recovered(struct counter *c)
{
	if (c->failed)
		log_info("commits work again");
	c->failed = false;
	c->unavailable = false;
}

static void
tell_waiters(struct counter_waiter *w, int status)
{
	struct counter_waiter *next;

	for (; w; w = next) {
		next = w->next;
		w->done(w, status);
	}
}

static void
append_waiters(struct counter_waiter **list, struct counter_waiter *w)
{
	while (*list != NULL)
		list = &(*list)->next;
	*list = w;
}

/*
 * After a commit of b, whose waiters are those: what is on disk now, to
 * be answered. A commit that wrote synced its pages after the meta page
 * of the commit before it was written, so the waiters of that one are;
 * its own wait for the next commit or a sync. A commit that wrote
 * nothing synced nothing. Called under the lock.
 */
static struct counter_waiter *
on_disk(struct counter *c, struct batch *b, struct counter_waiter *waiters)
{
	struct counter_waiter *ready = NULL;

	/* A shared store's commit is durable when it returns. */
	if (c->shared)
		return waiters;
	if (b->n > 0) {
		ready = c->unsynced;
		c->unsynced = waiters;
	} else
		append_waiters(&c->unsynced, waiters);
	c->sync_due = true;
	/* The committer syncs as soon as nothing else is pending. */
	pthread_cond_signal(&c->wake);
	return ready;
}

/* Puts the last commit on disk and answers the strict hits that wait
 * for it. A failed sync answers them 503: their hits are in the store,
 * but the disk may not hold them. */
static int
sync_commits(struct counter *c)
{
	struct counter_waiter *waiters;
	bool due;
	int rc = STORE_OK;

	pthread_mutex_lock(&c->commit_lock);
	lock(c);
	due = c->sync_due;
	unlock(c);
	if (due)
		rc = store_sync(c->store);
	lock(c);
	waiters = c->unsynced;
	c->unsynced = NULL;
	c->sync_due = false;
	if (rc != STORE_OK)
		failed(c, rc);
	unlock(c);
	pthread_mutex_unlock(&c->commit_lock);
	tell_waiters(waiters, rc);
	return rc;
}

static int
commit(struct counter *c, bool probe)
{
	struct counter_waiter *waiters;
	struct batch_write w;
	struct batch *b, *newer;
	double start, took;
	int rc = STORE_OK;
	bool large, kept;

	pthread_mutex_lock(&c->commit_lock);
	lock(c);
	/* The oldest batch: a queued one, else the pending one. */
	for (newer = NULL, b = c->pending; b->older != NULL; b = b->older)
		newer = b;
	if (b->n == 0 && b->nseen == 0 && b->waiters == NULL && !probe) {
		unlock(c);
		pthread_mutex_unlock(&c->commit_lock);
		return STORE_OK;
	}
	if (newer != NULL)
		newer->older = NULL;
	else {
		c->pending = c->spare != NULL ? c->spare : batch_new();
		c->spare = NULL;
	}
	c->inflight = b;
	c->inflight_version = 0;
	/* What is left that cannot wait for the timer. */
	c->kicked = c->pending->older != NULL || c->pending->waiters != NULL ||
	    c->pending->n >= KICK_AFTER;
	unlock(c);

	start = now_seconds();
	/* After a strict batch failed, the probe is as large as it was:
	 * the store must have room for that again. */
	w.c = c;
	w.b = b;
	w.probe = !probe ? 0 : c->failed_bytes > sizeof(int64_t) ?
	    c->failed_bytes : sizeof(int64_t);
	rc = store_write(c->store, write_batch, &w);
	if (rc == STORE_OK && w.probe > sizeof(int64_t)) {
		/* and the space goes back at once */
		struct batch none = { .nbuckets = 0 };

		w.b = &none;
		w.probe = sizeof(int64_t);
		rc = store_write(c->store, write_batch, &w);
	}
	took = now_seconds() - start;

	lock(c);
	waiters = b->waiters;
	kept = false;
	if (rc != STORE_OK) {
		failed(c, rc);
		/* Answered hits (batch) are kept for the next try. Hits
		 * that wait for their commit (strict) are answered 503 now
		 * and dropped: no hit refused is counted later. Until the
		 * store takes a write that large again, it is failing.
		 * But a flush to an unreachable database may have counted
		 * before the connection broke, and the store takes what it
		 * sent off the next one: so the batch is tried again as it
		 * is, and a strict hit answered 503 then may count after
		 * all. */
		if (waiters == NULL || rc == STORE_UNAVAILABLE)
			kept = b->n > 0 || b->nseen > 0;
		else if (!probe)
			c->failed_bytes = batch_bytes(b);
	} else {
		recovered(c);
		c->failed_bytes = 0;
		c->stats.commits++;
		c->last_commit = now_seconds();
		waiters = on_disk(c, b, waiters);
	}
	c->inflight = NULL;
	c->inflight_version = 0;
	/* The last full batch of a burst. */
	large = b->n >= TRIM_AFTER && c->pending->older == NULL;
	if (kept) {
		/* its waiters are answered below, once */
		b->waiters = NULL;
		b->waiters_tail = &b->waiters;
		requeue(c, b);
	}
	else if (c->spare == NULL) {
		batch_clear(b);
		c->spare = b;
	} else
		batch_free(b);
	unlock(c);
	/* A burst of new paths leaves the heap full of freed entries:
	 * give those pages back rather than keep the burst's peak. */
	if (large)
		malloc_trim(0);

	if (rc == STORE_OK && c->observer)
		c->observer(took, c->observer_arg);
	pthread_mutex_unlock(&c->commit_lock);
	tell_waiters(waiters, rc);
	return rc;
}

/*
 * Brings the shared store's copy of the counts up to date when it is
 * older than count_max_age: other nodes' hits show. While the database
 * is unreachable with nothing to write (strict hits are refused), this
 * read is what tells that it is back. Then the gate says whether this
 * node may count.
 */
static void
refresh(struct counter *c)
{
	char why[sizeof(c->gate_why)] = "";
	uint64_t max_age;
	bool idle, shut;
	int rc;

	pthread_mutex_lock(&c->commit_lock);
	lock(c);
	idle = c->failed && c->pending->n == 0 && c->pending->older == NULL;
	/* A shut gate waits for the database: try it every interval. */
	max_age = idle || c->gate_shut ? 0 : c->refresh_ms;
	shut = c->gate_shut;
	unlock(c);
	rc = store_refresh(c->store, max_age);
	lock(c);
	/* Behind a shut gate nothing is counted: the gate says why. */
	if (shut)
		;
	else if (rc == STORE_UNAVAILABLE || (rc != STORE_OK && idle))
		failed(c, rc);
	else if (rc == STORE_OK && idle)
		recovered(c);
	unlock(c);
	if (c->gate != NULL) {
		shut = c->gate(c->gate_arg, rc, why, sizeof(why)) != 0;
		lock(c);
		c->gate_shut = shut;
		if (shut)
			snprintf(c->gate_why, sizeof(c->gate_why), "%s", why);
		unlock(c);
	}
	pthread_mutex_unlock(&c->commit_lock);
}

int
counter_commit(struct counter *c)
{
	bool queued;
	int rc;

	/* Everything: the queued batches first, then the pending one. */
	do {
		lock(c);
		queued = c->pending->older != NULL;
		unlock(c);
		if ((rc = commit(c, false)) != STORE_OK)
			return rc;
	} while (queued);
	return sync_commits(c);
}

/* A commit that worked within the last second is proof enough: probing
 * at every /healthz would let any client force a disk flush. */
int
counter_probe(struct counter *c)
{
	bool recent;

	lock(c);
	recent = !c->failed && c->stats.commits > 0 &&
	    now_seconds() - c->last_commit < 1.0;
	/* Nor may it wait on the network: the committer's reads of a
	 * shared store tell whether it answers. */
	if (c->shared)
		recent = true;
	unlock(c);
	if (recent)
		return STORE_OK;
	return commit(c, true);
}

static void *
committer(void *arg)
{
	struct counter *c = arg;
	struct timespec deadline;
	bool stopping, probe, sync;
	int rc;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += c->interval_ms / 1000;
		deadline.tv_nsec += (c->interval_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&c->lock);
		c->idle = true;
		while (!c->kicked && !c->stopping && !c->sync_due &&
		    c->pending->waiters == NULL &&
		    pthread_cond_timedwait(&c->wake, &c->lock, &deadline) !=
		    ETIMEDOUT)
			;
		c->idle = false;
		stopping = c->stopping;
		/*
		 * Hits that wait come first: their commit syncs the last
		 * one's meta page, so that each commit waits on the disk
		 * once. Committing them at once, rather than gathering
		 * more, lets the worker count the next hits while the disk
		 * syncs these: with many clients, some are always being
		 * answered while others wait.
		 */
		sync = c->sync_due && !c->kicked && c->pending->waiters == NULL;
		pthread_mutex_unlock(&c->lock);
		if (stopping || sync)
			(void)sync_commits(c);
		if (stopping)
			break;
		if (sync)
			continue;
		/* A failing store is retried every interval, not in a spin;
		 * with nothing pending, a probe tells when it works again. */
		pthread_mutex_lock(&c->lock);
		/* A shared store is probed by reading it (refresh). */
		probe = c->failed && c->pending->n == 0 &&
		    c->pending->older == NULL && !c->shared;
		pthread_mutex_unlock(&c->lock);
		rc = commit(c, probe);
		if (c->shared)
			refresh(c);
		if (rc != STORE_OK) {
			struct timespec ts = { c->interval_ms / 1000,
			    (c->interval_ms % 1000) * 1000000L };

			/* The commit before may be waiting on this one. */
			(void)sync_commits(c);
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int
counter_start(struct counter *c, long interval_ms)
{
	c->interval_ms = interval_ms > 0 ? interval_ms : 100;
	if (pthread_create(&c->thread, NULL, committer, c) != 0)
		return -1;
	c->running = true;
	return 0;
}

void
counter_stop(struct counter *c)
{
	if (!c->running)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->running = false;
}

size_t
counter_pending(struct counter *c)
{
	struct batch *b;
	size_t n = 0;

	lock(c);
	FOR_UNSTORED(b, c, c->inflight)
		n += b->hits;
	unlock(c);
	return n;
}

void
counter_set_shared(struct counter *c, size_t buffer_max, uint64_t refresh_ms)
{
	lock(c);
	c->shared = true;
	c->buffer_max = buffer_max;
	c->refresh_ms = refresh_ms;
	unlock(c);
}

void
counter_set_gate(struct counter *c, counter_gate_fn gate, void *arg,
    bool shut, const char *why)
{
	lock(c);
	c->gate = gate;
	c->gate_arg = arg;
	c->gate_shut = shut;
	snprintf(c->gate_why, sizeof(c->gate_why), "%s", why);
	unlock(c);
}

bool
counter_refuses(struct counter *c, bool strict, char *buf, size_t len)
{
	struct batch *b;
	size_t hits = 0;
	bool refuses;

	lock(c);
	if (c->gate_shut) {
		snprintf(buf, len, "%s", c->gate_why);
		unlock(c);
		return true;
	}
	FOR_UNSTORED(b, c, c->inflight)
		hits += b->hits;
	refuses = c->failed;
	if (refuses && c->unavailable && !strict && hits < c->buffer_max)
		refuses = false;
	if (refuses && c->unavailable && !strict)
		snprintf(buf, len, "store unavailable, and %zu hits wait for "
		    "it (buffer_max): %s", hits, c->failure);
	else if (refuses)
		snprintf(buf, len, "%s", c->failure);
	unlock(c);
	return refuses;
}

bool
counter_failure(struct counter *c, char *buf, size_t len)
{
	bool failed;

	lock(c);
	failed = c->failed;
	if (failed)
		snprintf(buf, len, "%s", c->failure);
	unlock(c);
	return failed;
}

void
counter_stats(struct counter *c, struct commit_stats *out)
{
	lock(c);
	*out = c->stats;
	unlock(c);
}

void
counter_observe_commits(struct counter *c, commit_observer fn, void *arg)
{
	c->observer = fn;
	c->observer_arg = arg;
}
