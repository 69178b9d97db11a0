/*
 * The store: all-time and daily counts of series. A series is one page
 * of a site (path "/...") or the whole site (path ""). This interface is
 * all that the rest of tally knows of a store: store_open picks the
 * backend by the location (lib/store_backend.h), and each call goes to
 * it. LMDB (lib/store_lmdb.c) is the embedded default; a postgresql://
 * or postgres:// URL (libpq's URI form) opens the shared PostgreSQL
 * store (lib/store_pg.c), which several tallyd nodes write at once.
 */
#ifndef TALLY_STORE_H
#define TALLY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION	3	/* 2 added referrers, 3 the window */
#define STORE_SCHEMA_OLDEST	1	/* opened, and migrated when writable */
#define SITE_SERIES		""	/* path of a site's own series */
#define DAY_ADJUST		(-1)	/* day of an all-time adjustment row */
#define STORE_META_SALTS	"salts"	/* the visitor salts: never backed up */
/* The salts are records of STORE_SALT_REC bytes: the day (int32_t, in
 * the host's order), then the salt. A shared store keeps one salt per
 * day, the first written winning: read them back after writing. */
#define STORE_SALT_BYTES	16
#define STORE_SALT_REC		(4 + STORE_SALT_BYTES)
/* The largest count. Adjustments are signed 64-bit numbers, so every
 * count, all-time or daily, stays within them: counts never wrap. */
#define STORE_COUNT_MAX		INT64_MAX

/* Adds n to a count the way the store does: saturating at
 * STORE_COUNT_MAX, so that what is shown never wraps either. */
static inline void
store_count_add(uint64_t *to, uint64_t n)
{
	if (*to >= STORE_COUNT_MAX || n >= STORE_COUNT_MAX - *to)
		*to = STORE_COUNT_MAX;
	else
		*to += n;
}

struct store;
struct store_view;
struct store_txn;

struct counts {
	uint64_t views;
	uint64_t visitors;
};

/* Adds c to a sum of counts, both saturating as store_count_add. */
static inline void
store_counts_add(struct counts *to, const struct counts *c)
{
	store_count_add(&to->views, c->views);
	store_count_add(&to->visitors, c->visitors);
}

/* What an answer shows of a page: its own counts and its site's. */
struct page_counts {
	struct counts page;		/* the page, all time */
	struct counts page_today;
	struct counts today;		/* the site */
	struct counts total;
};

struct series_counts {
	struct counts total;	/* all time, adjustments included */
	struct counts day;	/* the day asked for */
	uint32_t npages;	/* site series: distinct pages */
	uint32_t id;		/* names the series in store_each_recent */
	bool	 exists;
};

enum store_flags {
	STORE_READONLY	= 1 << 0,	/* never creates, never writes */
	STORE_NOLOCK	= 1 << 1,	/* do not take the daemon lock */
	/*
	 * The daemon's mode of a shared store: views never wait on the
	 * network. They read a node-local copy of the counts, which each
	 * commit and store_refresh bring up to date; a write transaction
	 * only gathers its changes, and its commit sends them in one round
	 * trip, where the database decides which visitor ids are new (the
	 * visitors argument of store_add is then ignored). A store without
	 * a network (LMDB) ignores the flag.
	 */
	STORE_CACHED	= 1 << 2,
	/*
	 * The daemon's commits, back to back under strict durability: a
	 * commit returns once its changes are on disk, but the last step
	 * that makes them the store's (LMDB's meta page) only reaches the
	 * disk with the next commit's sync, or with store_sync. Until then
	 * a power failure or crash of the machine may undo that last commit
	 * (never an older one, never half of one); a crash of the process
	 * cannot, the kernel holds the write. store_close syncs. A store
	 * whose commits are durable when they return (PostgreSQL) ignores
	 * the flag.
	 */
	STORE_DEFER_SYNC = 1 << 3,
};

enum store_status {
	STORE_OK = 0,
	STORE_ERROR,		/* see store_error() */
	STORE_NOSPACE,		/* the disk is full; nothing was written */
	STORE_NOTFOUND,
	STORE_MAPFULL,		/* the map must grow: abort, store_grow, retry */
	STORE_UNAVAILABLE,	/* the database cannot be reached: nothing was
				 * written; the next call tries to reconnect */
};

/* Opens (creating unless STORE_READONLY) the store in dir. On failure,
 * err says which step failed and why. With STORE_CACHED, a database
 * that cannot be reached yet is no failure: the store opens, not
 * connected, with an empty copy, and answers STORE_UNAVAILABLE with
 * *out set (err saying why); its first refresh or commit that reaches
 * the database checks the schema as store_open would, and fails with
 * STORE_ERROR where store_open would have. */
int store_open(struct store **, const char *dir, int flags, char *err, size_t errlen);
void store_close(struct store *);
/* Why this thread's last call on the store failed. */
const char *store_error(struct store *);
/* The daemon holds this while it runs, so a second one refuses to start. */
int store_lock_daemon(struct store *, char *err, size_t errlen);

struct store_stat {
	uint64_t map_bytes;
	uint64_t used_bytes;
};
int store_stat(struct store *, struct store_stat *);
/* Doubles the map. No transaction of this process may be open. */
int store_grow(struct store *);
/* Hot, compacted copy to the directory dest, which must not exist or be
 * empty, without the visitor salts and the visitor ids seen, with the
 * store's own file and directory modes. */
int store_backup(struct store *, const char *dest, char *err, size_t errlen);
/* Clears reader slots left by dead processes; returns how many. */
int store_reader_check(struct store *);
/* How often the store has connected again after losing its database
 * (0 for a store that has none). */
uint64_t store_reconnects(struct store *);
/* STORE_CACHED: reads the counts of the sites in the node-local copy
 * (and of the sites its commits touched) again from the database, when
 * the copy is older than max_age_ms. Call it from the thread that
 * commits, never from one that answers requests: it may wait on the
 * network. Does nothing for a store without a copy. */
int store_refresh(struct store *, uint64_t max_age_ms);
/* STORE_DEFER_SYNC: puts every commit so far on disk, the last one
 * included. A commit that wrote something does the same for the commit
 * before it. Nothing to do for other stores. */
int store_sync(struct store *);

/* A read-only snapshot. One view per thread; reuse it across requests. */
struct store_view *store_view_new(struct store *);
void store_view_free(struct store_view *);
int store_view_begin(struct store_view *);
void store_view_end(struct store_view *);
/* Versions grow with every commit: a view of version V holds every
 * commit whose write transaction had a version <= V. */
uint64_t store_view_version(struct store_view *);
uint64_t store_txn_version(struct store_txn *);

int store_get(struct store_view *, const char *site, const char *path, int day,
    struct series_counts *out);
int store_meta_get(struct store_view *, const char *key, void *val, size_t *len);

/* Visits every series of site (NULL: all sites), sorted by site then
 * path; the site's own series comes first with path "". */
typedef int (*store_series_cb)(void *arg, const char *site, const char *path,
    const struct series_counts *);
int store_each_series(struct store_view *, const char *site, store_series_cb, void *);

/* Visits the daily rows of one series with from <= day <= to, in order.
 * With with_adjust, the series' all-time adjustment (if any) comes first
 * with day DAY_ADJUST. */
typedef int (*store_row_cb)(void *arg, const char *site, const char *path,
    int day, const struct counts *);
int store_each_day(struct store_view *, const char *site, const char *path,
    int from, int to, bool with_adjust, store_row_cb, void *);

/* The recent days are also kept day by day, so that a window over every
 * page ("top --days 30") is one contiguous range instead of a seek per
 * page. *floor is the first day they cover: every row of a day >= floor
 * is there. Rows of series that were reset may remain; skip unknown ids. */
#define STORE_RECENT_DAYS	40
int store_recent_floor(struct store_view *, int *floor);
typedef int (*store_recent_cb)(void *arg, uint32_t id, int day,
    const struct counts *);
int store_each_recent(struct store_view *, int from, int to, store_recent_cb,
    void *);

/*
 * The last STORE_WINDOW_DAYS days of each page are also kept summed, in
 * an order of most views first per site, so that "top --days 30" reads
 * the few pages it shows instead of every row of 30 days. The sums are
 * moved forward by the writers: when a new day begins, the rows of the
 * day that leaves are taken out a few hundred per commit. So at any
 * moment a page's sum holds its recent rows (see store_each_recent) from
 * (out_day, out_id) on, in (day, series id) order, up to high, the
 * latest day with a row: the window [high - STORE_WINDOW_DAYS + 1,
 * high] plus the rows before it not yet taken out. A reader subtracts
 * those (out_day >= the recent floor, so they are there).
 * store_window_state answers STORE_NOTFOUND where there are no sums
 * (the PostgreSQL store; an LMDB store of schema 2 opened read-only).
 */
#define STORE_WINDOW_DAYS	30
struct store_window {
	int	 high;
	int	 out_day;
	uint32_t out_id;
};
int store_window_state(struct store_view *, struct store_window *);
/* One page's sum (zero when it has none). */
int store_window_get(struct store_view *, uint32_t id, struct counts *);
/* The pages of site with a sum, most views first (then by id). A
 * non-zero answer of the callback stops the walk and is returned. */
typedef int (*store_window_cb)(void *arg, uint32_t id, const struct counts *);
int store_each_window(struct store_view *, const char *site, store_window_cb,
    void *);

/* The site and path of a series id; STORE_NOTFOUND once it is reset.
 * store_max_id is the largest id ever handed out. */
int store_series_name(struct store_view *, uint32_t id, char *site,
    size_t sitesz, char *path, size_t pathsz);
int store_max_id(struct store_view *, uint32_t *max);

/* Counts daily rows whose series no longer exists, and rows a store
 * keeps beside them that disagree with them (PostgreSQL: the running
 * totals, the day's referring hosts): a check, tally never leaves any. */
int store_orphan_rows(struct store_view *, uint64_t *orphans);

/* Write transactions. One at a time per store; LMDB serialises writers
 * across processes. */
int store_write_begin(struct store *, struct store_txn **);
/* Runs fn in a write transaction and commits it, or aborts when fn
 * fails. When the map is full, it is grown and the whole transaction is
 * run again: fn must only write through txn. No view of this process
 * may be open. Returns fn's status or the commit's. */
typedef int (*store_write_fn)(struct store_txn *, void *arg);
int store_write(struct store *, store_write_fn, void *arg);
/* Adds to a series' day row and all-time count, creating the series.
 * A count at STORE_COUNT_MAX stays there (hits saturate). store_add_exact
 * refuses a day row past it, and lets the total wrap on its way like
 * store_add_adjust: an import checks the totals once complete. */
int store_add(struct store_txn *, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors);
int store_add_exact(struct store_txn *, const char *site, const char *path,
    int day, uint64_t views, uint64_t visitors);
/* Adds to the all-time adjustment (an imported "-" row). Refuses an
 * adjustment outside int64_t; the all-time count may pass through
 * values out of range on its way, so the caller checks the result
 * (ctl_verify). */
int store_add_adjust(struct store_txn *, const char *site, const char *path,
    int64_t views, int64_t visitors);
/* Makes the all-time count equal views/visitors (<= STORE_COUNT_MAX)
 * now; refuses when the difference to the daily rows leaves int64_t. */
int store_set_total(struct store_txn *, const char *site, const char *path,
    uint64_t views, uint64_t visitors);
/* Deletes a series with its rows, its recent rows and the visitor ids
 * seen on it; path NULL deletes the whole site, its referrers too. */
int store_reset(struct store_txn *, const char *site, const char *path);
int store_meta_put(struct store_txn *, const char *key, const void *val, size_t len);
/* The uncommitted state as a view, for the readers that take one; it
 * lives as long as the transaction. */
struct store_view *store_txn_view(struct store_txn *);
/* A read of the uncommitted state, inside the write transaction. */
int store_txn_get(struct store_txn *, const char *site, const char *path, int day,
    struct series_counts *out);
/* Visitor ids already seen on a day, per series (keyed by
 * store_series_hash of site and path). Only today's and yesterday's are
 * kept; a reset forgets those of the series it deletes. */
uint64_t store_series_hash(const char *site, const char *path);
int store_seen_get(struct store_view *, int day, uint64_t series, uint64_t visitor,
    bool *seen);
/* The same, inside a write transaction: what it has written included. */
int store_txn_seen_get(struct store_txn *, int day, uint64_t series,
    uint64_t visitor, bool *seen);
int store_seen_put(struct store_txn *, int day, uint64_t series, uint64_t visitor);
/* Erases the seen ids of every day before day. */
int store_seen_prune(struct store_txn *, int day);
int store_commit(struct store_txn *);
void store_abort(struct store_txn *);

/*
 * Referrers: how many of a site's views a day came from each referring
 * host (a host only, or a group name: see referrer.h). A day keeps at
 * most max hosts; the views of any further host count under
 * STORE_REFERRER_OTHER, so a day has at most max + 1 rows. They belong
 * to the site, not to a page: only the reset of the whole site deletes
 * them.
 */
#define STORE_REFERRER_OTHER	"(other)"
#define STORE_REFERRER_MAX	253	/* the longest host kept */
/* Visits site's rows with from <= day <= to, ordered by day, then host
 * (bytewise). */
typedef int (*store_referrer_cb)(void *arg, int day, const char *host,
    uint64_t views);
int store_each_referrer(struct store_view *, const char *site, int from,
    int to, store_referrer_cb, void *);
/* Every row of site (NULL: of every site), by site, day and host. */
typedef int (*store_referrer_row_cb)(void *arg, const char *site, int day,
    const char *host, uint64_t views);
int store_each_referrer_row(struct store_view *, const char *site,
    store_referrer_row_cb, void *);
/* The views of one row; 0 when there is none. */
int store_referrer_get(struct store_view *, const char *site, int day,
    const char *host, uint64_t *views);
/* Adds a hit's views, saturating at STORE_COUNT_MAX; a host new to a day
 * that has max hosts already counts as STORE_REFERRER_OTHER. */
int store_referrer_add(struct store_txn *, const char *site, int day,
    const char *host, uint64_t views, uint32_t max);
/* Adds an imported row as it is: no cap; refuses a row past
 * STORE_COUNT_MAX. */
int store_referrer_add_exact(struct store_txn *, const char *site, int day,
    const char *host, uint64_t views);
/* Deletes every row of site. */
int store_referrer_reset(struct store_txn *, const char *site);

/* A site's referring hosts over a window of days: one entry a host, its
 * days' views summed (saturating, as counts do), most views first, then
 * by host. What tallyctl referrers and the stats page show. */
struct referrer_total {
	char		*host;
	uint64_t	 views;
};
struct referrer_totals {
	struct referrer_total *e;
	size_t		 n, cap;
};
int store_referrer_totals(struct store_view *, const char *site, int from,
    int to, struct referrer_totals *);
void store_referrer_totals_free(struct referrer_totals *);

/* A page of a top list, as tallyctl top and the stats page rank them:
 * most views first, ties in path order, so that a list is the same
 * every time (a qsort comparator of struct top_entry). */
struct top_entry {
	char		*path;
	uint32_t	 id;
	struct counts	 c;
};
int top_entry_cmp(const void *, const void *);

/*
 * The pages of site most viewed over [from, to], a window of
 * STORE_WINDOW_DAYS days, from the window sums: only the pages kept are
 * read. *out holds the limit most viewed (every page with views, limit
 * 0) and each page tied with the last of them, in no order, paths
 * allocated; the caller frees them. STORE_NOTFOUND: the store keeps no
 * sums of that window, and the caller sums its days.
 */
int store_window_top(struct store_view *, const char *site, int from,
    int to, size_t limit, struct top_entry **out, size_t *n);

#endif
