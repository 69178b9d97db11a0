/*
 * What a store backend provides: one table of operations per backend,
 * chosen by store_open from the location (a directory: LMDB; a
 * postgresql:// URL: PostgreSQL). The store_* functions of store.h
 * call through it. Each backend's store, view and transaction begin
 * with the generic one below, so that a pointer to either is a pointer
 * to both. Private to lib/: nothing else sees a backend.
 */
#ifndef TALLY_STORE_BACKEND_H
#define TALLY_STORE_BACKEND_H

#include "tally/store.h"

/* The start of the FNV-1a hashes of series (seen ids, long LMDB keys).
 * Not FNV's own offset basis, which has one digit more: stores were made
 * with this one, so it stays. */
#define STORE_HASH_BASIS	1469598103934665603ULL

struct store_ops;

struct store {
	const struct store_ops *ops;
};

struct store_view {
	const struct store_ops *ops;
};

struct store_txn {
	const struct store_ops *ops;
};

/*
 * The operations, as documented in store.h. Those marked optional may
 * be NULL where a backend has no such thing: store.c then answers for
 * it (no daemon lock to take, no map to grow, no reader table, no file
 * to copy).
 */
struct store_ops {
	const char *name;
	int (*open)(struct store **, const char *location, int flags,
	    char *err, size_t errlen);
	void (*close)(struct store *);
	/* optional: lock_daemon, stat, grow, backup, reader_check,
	 * reconnects, refresh, window_state, window_get, each_window,
	 * sync */
	int (*lock_daemon)(struct store *, char *err, size_t errlen);
	int (*stat)(struct store *, struct store_stat *);
	int (*grow)(struct store *);
	int (*backup)(struct store *, const char *dest, char *err, size_t errlen);
	int (*reader_check)(struct store *);
	uint64_t (*reconnects)(struct store *);
	int (*refresh)(struct store *, uint64_t max_age_ms);
	int (*sync)(struct store *);
	struct store_view * (*view_new)(struct store *);
	void (*view_free)(struct store_view *);
	int (*view_begin)(struct store_view *);
	void (*view_end)(struct store_view *);
	uint64_t (*view_version)(struct store_view *);
	uint64_t (*txn_version)(struct store_txn *);
	int (*get)(struct store_view *, const char *site, const char *path, int day, struct series_counts *out);
	int (*meta_get)(struct store_view *, const char *key, void *val, size_t *len);
	int (*each_series)(struct store_view *, const char *site, store_series_cb, void *);
	int (*each_day)(struct store_view *, const char *site, const char *path, int from, int to, bool with_adjust, store_row_cb, void *);
	int (*recent_floor)(struct store_view *, int *floor);
	int (*each_recent)(struct store_view *, int from, int to, store_recent_cb, void *);
	int (*window_state)(struct store_view *, struct store_window *);
	int (*window_get)(struct store_view *, uint32_t id, struct counts *);
	int (*each_window)(struct store_view *, const char *site, store_window_cb, void *);
	int (*series_name)(struct store_view *, uint32_t id, char *site, size_t sitesz, char *path, size_t pathsz);
	int (*max_id)(struct store_view *, uint32_t *max);
	int (*orphan_rows)(struct store_view *, uint64_t *orphans);
	int (*write_begin)(struct store *, struct store_txn **);
	int (*add)(struct store_txn *, const char *site, const char *path, int day, uint64_t views, uint64_t visitors);
	int (*add_exact)(struct store_txn *, const char *site, const char *path, int day, uint64_t views, uint64_t visitors);
	int (*add_adjust)(struct store_txn *, const char *site, const char *path, int64_t views, int64_t visitors);
	int (*set_total)(struct store_txn *, const char *site, const char *path, uint64_t views, uint64_t visitors);
	int (*reset)(struct store_txn *, const char *site, const char *path);
	int (*meta_put)(struct store_txn *, const char *key, const void *val, size_t len);
	struct store_view * (*txn_view)(struct store_txn *);
	int (*txn_get)(struct store_txn *, const char *site, const char *path, int day, struct series_counts *out);
	int (*seen_get)(struct store_view *, int day, uint64_t series, uint64_t visitor, bool *seen);
	int (*txn_seen_get)(struct store_txn *, int day, uint64_t series, uint64_t visitor, bool *seen);
	int (*seen_put)(struct store_txn *, int day, uint64_t series, uint64_t visitor);
	int (*seen_prune)(struct store_txn *, int day);
	int (*commit)(struct store_txn *);
	void (*abort)(struct store_txn *);
	int (*each_referrer)(struct store_view *, const char *site, int from, int to, store_referrer_cb, void *);
	int (*each_referrer_row)(struct store_view *, const char *site, store_referrer_row_cb, void *);
	int (*referrer_get)(struct store_view *, const char *site, int day, const char *host, uint64_t *views);
	int (*referrer_add)(struct store_txn *, const char *site, int day, const char *host, uint64_t views, uint32_t max);
	int (*referrer_add_exact)(struct store_txn *, const char *site, int day, const char *host, uint64_t views);
	int (*referrer_reset)(struct store_txn *, const char *site);
};

extern const struct store_ops store_lmdb_ops;
extern const struct store_ops store_pg_ops;	/* built with libpq only */

/* What "set" adds to a series' all-time adjustment (adj, with the
 * all-time count total) so that it shows want; -1 out of int64_t. */
int store_adjust_to(uint64_t total, int64_t adj, uint64_t want, int64_t *out);

/* Sets what store_error() answers on this thread. */
void store_set_error(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
