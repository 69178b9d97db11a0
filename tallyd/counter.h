/*
 * Counting: hits gather in memory as deltas and reach the store in one
 * write transaction per commit, made by a committer thread so that no
 * request waits behind a disk flush. Answers add the pending deltas to
 * what the store holds, so a visitor sees their own visit at once.
 */
#ifndef TALLYD_COUNTER_H
#define TALLYD_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/store.h"

struct counter;

/* What a counting request adds. */
struct hit {
	const char *site;
	const char *path;	/* normalized; may become PATH_OTHER */
	int	 day;
	long	 max_pages;	/* the site's cap on distinct paths */
	bool	 has_visitor;	/* false: a view without a visitor (DNT) */
	uint64_t visitor;	/* the day's visitor id */
	uint64_t address;	/* address_key() of the client */
	long	 new_visitors_max; /* new visitors per address a day; 0: any */
	const char *referrer;	/* referrer_name() of another site, or NULL */
	uint32_t max_referrers;	/* referring hosts the site keeps a day */
};

/* Told, from the committer thread, once the commit holding a hit is on
 * disk (status STORE_OK) or has failed. */
struct counter_waiter {
	struct counter_waiter *next;
	void	(*done)(struct counter_waiter *, int status);
};

struct counter *counter_new(struct store *);
void counter_free(struct counter *);

/*
 * Counts hit and reads the counts of the page it was counted under,
 * *path_out (the hit's path, or PATH_OTHER past the site's cap), into
 * out, pending hits included. view is the calling thread's own. With
 * waiter, the waiter is told once the hit is on disk (or its commit
 * failed); that commit starts as soon as the committer is free.
 */
int counter_add(struct counter *, struct store_view *view,
    const struct hit *hit, struct counter_waiter *waiter,
    const char **path_out, struct page_counts *out);
/* Reads the counts of site/path on day into out, pending hits
 * included, counting nothing. */
int counter_read(struct counter *, struct store_view *view,
    const char *site, const char *path, int day, struct page_counts *out);

/* Commits everything pending in one transaction, from any thread. On
 * failure the deltas stay pending for the next try. */
int counter_commit(struct counter *);
/* A commit even with nothing pending: proves the store is writable. */
int counter_probe(struct counter *);
/* The committer thread: a commit every interval_ms, or at once when a
 * waiter asks. counter_stop makes the last commit and joins it. */
int counter_start(struct counter *, long interval_ms);
void counter_stop(struct counter *);

/*
 * The store is shared and on the network: the committer also keeps the
 * store's copy of the counts at most refresh_ms old, and while the
 * database is unreachable batch-mode hits are kept, up to buffer_max.
 */
void counter_set_shared(struct counter *, size_t buffer_max,
    uint64_t refresh_ms);
/*
 * A shared store's gate: after each refresh of the store (every commit
 * interval) the committer asks gate whether this node may count, with
 * how the refresh went (refresh_rc, a store status; store_error() on
 * that thread says why). While gate answers -1, and why, every counting
 * request is refused, in either durability. shut and why: how it starts.
 */
typedef int (*counter_gate_fn)(void *arg, int refresh_rc, char *why,
    size_t len);
void counter_set_gate(struct counter *, counter_gate_fn, void *arg,
    bool shut, const char *why);
/* Whether this node cannot take a hit now (strict: one that waits for
 * its commit), and why, into buf: the gate is shut, the store fails, or
 * it is unreachable and strict or buffer_max hits wait already. */
bool counter_refuses(struct counter *, bool strict, char *buf, size_t len);

size_t counter_pending(struct counter *);
/* Copies why the last commit failed; false when it worked. */
bool counter_failure(struct counter *, char *buf, size_t len);

struct commit_stats {
	uint64_t commits;
	uint64_t failures;
	uint64_t lock_taken;
	uint64_t lock_contended;
};
void counter_stats(struct counter *, struct commit_stats *);
typedef void (*commit_observer)(double seconds, void *arg);
void counter_observe_commits(struct counter *, commit_observer, void *arg);

#endif
