/*
 * gen_store: fills a tally store with PAGES pages of the site "default",
 * each with a daily row for each of the last DAYS days (today included),
 * plus the site's own series for each day, through the store API that
 * tallyd and tallyctl use. bench/run times tallyctl on it.
 *
 *   gen_store DIR PAGES DAYS [sparse]
 *
 * Paths are about 40 bytes long (/articles/2026/11/a-slug-of-a-post-NNNNNN).
 * The numbers are deterministic: a few pages are popular, most are not.
 * Rows go in key order (page after page, day after day), committed every
 * ~100,000 rows. DIR must not hold a store yet.
 *
 * By default every page has a row every day. With "sparse", a page has a
 * row only on the days it was viewed, as on a real site: page N is viewed
 * SPARSE_TOP / (N + 1) times a day on average, so the first pages have a
 * row every day and the last of 1,000,000 one day in a hundred.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tally/day.h"
#include "tally/store.h"

#define ROWS_PER_COMMIT	100000
#define SPARSE_TOP	10000	/* page 0's views a day in a sparse store */

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static int sparse;

/* A page's counts for a day: 0 when it has no row that day. */
static int
row(long page, int d, uint64_t *views, uint64_t *visitors)
{
	uint64_t h = mix((uint64_t)page << 20 ^ (uint64_t)d);
	uint64_t rank = (uint64_t)page + 1, top;

	if (!sparse) {
		/* Zipf-like: page 0 ~20,000 views a day, page 19,999 ~one. */
		top = 1 + 20000 / rank;
		*views = 1 + h % top;
	} else if (rank <= SPARSE_TOP) {
		/* SPARSE_TOP / rank views on average, at least one. */
		top = 2 * SPARSE_TOP / rank;
		*views = 1 + h % top;
	} else if (h % rank < SPARSE_TOP) {
		/* Viewed once, SPARSE_TOP / rank of the days. */
		*views = 1;
	} else
		return 0;
	*visitors = 1 + (*views * 2) / 3;
	if (*visitors > *views)
		*visitors = *views;
	return 1;
}

/* The number of rows row() gives, to size the map once. */
static uint64_t
count_rows(long npages, int first, int ndays)
{
	uint64_t n = 0, v, u;
	long p;
	int d;

	for (p = 0; p < npages; p++)
		for (d = first; d < first + ndays; d++)
			n += (uint64_t)row(p, d, &v, &u);
	return n;
}

static void
page_path(char *buf, size_t len, long page)
{
	snprintf(buf, len, "/articles/%04ld/%02ld/a-slug-of-a-post-%06ld",
	    2020 + page % 7, 1 + page % 12, page);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die_store(struct store *st, const char *what, int rc)
{
	fprintf(stderr, "gen_store: %s: %s (status %d)\n", what,
	    st ? store_error(st) : "", rc);
	exit(1);
}

/* Adds the pages from *from on, in one transaction of about
 * ROWS_PER_COMMIT rows, and moves *from past them. Returns STORE_MAPFULL
 * when the map must grow first; nothing is kept then. */
static int
add_pages(struct store *st, long *from, long npages, int first, int ndays)
{
	struct store_txn *t;
	char path[64];
	uint64_t v, u, rows = 0;
	long p;
	int d, rc;

	if ((rc = store_write_begin(st, &t)) != STORE_OK)
		die_store(st, "store_write_begin", rc);
	for (p = *from; p < npages && rows < ROWS_PER_COMMIT; p++) {
		page_path(path, sizeof(path), p);
		for (d = first; d < first + ndays; d++) {
			if (!row(p, d, &v, &u))
				continue;
			rows++;
			rc = store_add(t, "default", path, d, v, u);
			if (rc == STORE_MAPFULL) {
				store_abort(t);
				return rc;
			}
			if (rc != STORE_OK)
				die_store(st, "store_add", rc);
		}
	}
	rc = store_commit(t);
	if (rc != STORE_OK && rc != STORE_MAPFULL)
		die_store(st, "store_commit", rc);
	if (rc == STORE_OK)
		*from = p;
	return rc;
}

static int
add_site(struct store *st, long npages, int first, int ndays)
{
	struct store_txn *t;
	uint64_t v, u, sv, su;
	long p;
	int d, rc;

	if ((rc = store_write_begin(st, &t)) != STORE_OK)
		die_store(st, "store_write_begin", rc);
	for (d = first; d < first + ndays; d++) {
		sv = su = 0;
		for (p = 0; p < npages; p++) {
			if (!row(p, d, &v, &u))
				continue;
			sv += v;
			su += u;
		}
		/* A site's visitors are fewer than the sum of its pages'. */
		rc = store_add(t, "default", SITE_SERIES, d, sv, su - su / 4);
		if (rc == STORE_MAPFULL) {
			store_abort(t);
			return rc;
		}
		if (rc != STORE_OK)
			die_store(st, "store_add (site)", rc);
	}
	rc = store_commit(t);
	if (rc != STORE_OK && rc != STORE_MAPFULL)
		die_store(st, "store_commit", rc);
	return rc;
}

int
main(int argc, char **argv)
{
	struct store *st;
	char err[512], map[32], file[4096];
	struct stat sb;
	long npages, p, next_report;
	uint64_t nrows;
	int ndays, first, rc;
	double t0;

	if (argc < 4 || argc > 5 || (npages = atol(argv[2])) <= 0 ||
	    (ndays = atoi(argv[3])) <= 0 ||
	    (argc == 5 && strcmp(argv[4], "sparse") != 0)) {
		fprintf(stderr, "usage: gen_store DIR PAGES DAYS [sparse]\n");
		return 2;
	}
	sparse = argc == 5;
	first = day_today() - ndays + 1;
	t0 = now();
	nrows = sparse ? count_rows(npages, first, ndays) :
	    (uint64_t)npages * (uint64_t)ndays;
	snprintf(file, sizeof(file), "%s/data.mdb", argv[1]);
	if (stat(file, &sb) == 0) {
		fprintf(stderr, "gen_store: %s already exists\n", file);
		return 1;
	}
	/* Start with a map big enough for everything (~70 bytes a row), so
	 * that it seldom has to grow; it grows if it must. */
	snprintf(map, sizeof(map), "%llu",
	    (unsigned long long)nrows * 72ULL +
	    (unsigned long long)npages * 256ULL + (64ULL << 20));
	setenv("TALLY_INITIAL_MAP_SIZE", map, 1);
	if (store_open(&st, argv[1], 0, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "gen_store: %s\n", err);
		return 1;
	}

	next_report = npages / 10;
	for (p = 0; p < npages; ) {
		rc = add_pages(st, &p, npages, first, ndays);
		if (rc == STORE_MAPFULL) {
			if ((rc = store_grow(st)) != STORE_OK)
				die_store(st, "store_grow", rc);
			continue;
		}
		if (p >= next_report && p < npages) {
			fprintf(stderr, "gen_store: %ld of %ld pages, %.0f s\n",
			    p, npages, now() - t0);
			next_report += npages / 10;
		}
	}
	while ((rc = add_site(st, npages, first, ndays)) == STORE_MAPFULL)
		if ((rc = store_grow(st)) != STORE_OK)
			die_store(st, "store_grow", rc);
	store_close(st);
	fprintf(stderr, "gen_store: %ld pages x %d days: %" PRIu64 " daily "
	    "rows (+%d site rows) in %.1f s\n", npages, ndays, nrows, ndays,
	    now() - t0);
	return 0;
}
