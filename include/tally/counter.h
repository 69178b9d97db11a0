/*
 * Counting: hits gather in memory as deltas and reach the store in one
 * write transaction per commit interval. Answers add the pending deltas
 * to what the store holds, so a visitor sees their own visit at once.
 */
#ifndef TALLY_COUNTER_H
#define TALLY_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/store.h"

struct counter;

struct page_counts {
	struct counts page;		/* the page, all time */
	struct counts page_today;
	struct counts today;		/* the site */
	struct counts total;
};

/* What a counting request adds. */
struct hit {
	const char *site;
	const char *path;	/* normalized; may become PATH_OTHER */
	int	 day;
	long	 max_pages;	/* the site's cap on distinct paths */
	bool	 has_visitor;	/* false: a view without a visitor (DNT) */
	uint64_t visitor;	/* the day's visitor id */
};

struct counter *counter_new(struct store *);
void counter_free(struct counter *);

/* Adds one view. *path_out is the path it was counted under. */
int counter_add(struct counter *, const struct hit *, const char **path_out);
/* The committed counts plus everything pending. */
int counter_read(struct counter *, const char *site, const char *path, int day,
    struct page_counts *);

/* Commits everything pending in one transaction. On failure the deltas
 * stay pending for the next try. Returns a store status. */
int counter_commit(struct counter *);
/* Writes nothing but still goes through a commit: proves the store is
 * writable. */
int counter_probe(struct counter *);
size_t counter_pending(const struct counter *);
/* Why the last commit failed, or NULL when it worked. */
const char *counter_failure(const struct counter *);

struct commit_stats {
	uint64_t commits;
	uint64_t failures;
	double	 last_seconds;
};
const struct commit_stats *counter_commit_stats(const struct counter *);
typedef void (*commit_observer)(double seconds, void *arg);
void counter_observe_commits(struct counter *, commit_observer, void *arg);

#endif
