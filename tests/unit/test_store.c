/* The LMDB store, in a temporary directory. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "check.h"
#include "tally/store.h"

static char dir[256];

static void
cleanup(const char *d)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", d);
}

static struct store *
open_rw(void)
{
	struct store *st = NULL;
	char err[512];

	if (store_open(&st, dir, 0, err, sizeof(err)) != STORE_OK)
		fprintf(stderr, "store_open: %s\n", err);
	return st;
}

static void
get(struct store *st, const char *site, const char *path, int day,
    struct series_counts *sc)
{
	struct store_view *v = store_view_new(st);

	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_get(v, site, path, day, sc) == STORE_OK);
	store_view_end(v);
	store_view_free(v);
}

static void
test_add_and_get(void)
{
	struct store *st = open_rw();
	struct store_txn *t;
	struct series_counts sc;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "default", "/a", 20000, 3, 2) == STORE_OK);
	CHECK(store_add(t, "default", "/a", 20001, 5, 1) == STORE_OK);
	CHECK(store_add(t, "default", "/b", 20001, 1, 1) == STORE_OK);
	CHECK(store_add(t, "default", "", 20001, 6, 2) == STORE_OK);
	CHECK(store_add(t, "blog", "/a", 20001, 7, 7) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);

	get(st, "default", "/a", 20001, &sc);
	CHECK(sc.exists);
	CHECK_INT(sc.total.views, 8);
	CHECK_INT(sc.total.visitors, 3);
	CHECK_INT(sc.day.views, 5);
	CHECK_INT(sc.day.visitors, 1);
	get(st, "default", "/a", 20000, &sc);
	CHECK_INT(sc.day.views, 3);
	get(st, "default", "/a", 19999, &sc);
	CHECK_INT(sc.day.views, 0);
	get(st, "default", "", 20001, &sc);
	CHECK_INT(sc.total.views, 6);
	CHECK_INT(sc.npages, 2);
	get(st, "blog", "/a", 20001, &sc);
	CHECK_INT(sc.total.views, 7);
	get(st, "nosuch", "/a", 20001, &sc);
	CHECK(!sc.exists);
	CHECK_INT(sc.total.views, 0);
	store_close(st);
}

/* A view remembers its lookups only while it reads the same snapshot:
 * each commit shows, a write transaction sees its own writes at once. */
static void
test_view_sees_commits(void)
{
	char own[300], err[512];
	struct store *st = NULL;
	struct store_view *v, *tv;
	struct store_txn *t;
	struct series_counts sc;
	uint64_t h = store_series_hash("memo", "/m");
	bool seen = true;
	int i;

	snprintf(own, sizeof(own), "%s/memo", dir);
	if (store_open(&st, own, 0, err, sizeof(err)) != STORE_OK)
		fprintf(stderr, "store_open: %s\n", err);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "memo", "/m", 20001, 1, 1) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	v = store_view_new(st);
	for (i = 0; i < 3; i++) {
		CHECK(store_view_begin(v) == STORE_OK);
		CHECK(store_get(v, "memo", "/m", 20001, &sc) == STORE_OK);
		CHECK_INT(sc.day.views, 1 + 2 * i);
		CHECK(store_get(v, "memo", "/m", 20001, &sc) == STORE_OK);
		CHECK_INT(sc.total.views, 1 + 2 * i);
		CHECK(store_seen_get(v, 20001, h, 7, &seen) == STORE_OK);
		CHECK(seen == (i > 0));
		store_view_end(v);

		CHECK(store_write_begin(st, &t) == STORE_OK);
		tv = store_txn_view(t);
		CHECK(store_get(tv, "memo", "/m", 20001, &sc) == STORE_OK);
		CHECK_INT(sc.day.views, 1 + 2 * i);
		CHECK(store_add(t, "memo", "/m", 20001, 2, 0) == STORE_OK);
		CHECK(store_seen_put(t, 20001, h, 7) == STORE_OK);
		CHECK(store_get(tv, "memo", "/m", 20001, &sc) == STORE_OK);
		CHECK_INT(sc.day.views, 3 + 2 * i);
		CHECK(store_seen_get(tv, 20001, h, 7, &seen) == STORE_OK);
		CHECK(seen);
		CHECK(store_commit(t) == STORE_OK);
	}
	store_view_free(v);
	store_close(st);
}

struct rows {
	int	 n;
	int	 days[16];
	uint64_t views[16];
};

static int
collect(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct rows *r = arg;

	if (r->n < 16) {
		r->days[r->n] = day;
		r->views[r->n] = c->views;
	}
	r->n++;
	return 0;
}

static int
count_series(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_set_adjust_reset(void)
{
	struct store *st = open_rw();
	struct store_txn *t;
	struct store_view *v;
	struct series_counts sc;
	struct rows rows = { 0 };
	int n = 0;

	if (st == NULL)
		return;
	/* set makes the all-time count equal N, whatever the days hold */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_set_total(t, "default", "/a", 1000, 100) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	get(st, "default", "/a", 20001, &sc);
	CHECK_INT(sc.total.views, 1000);
	CHECK_INT(sc.total.visitors, 100);
	CHECK_INT(sc.day.views, 5);

	/* later hits add to it */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "default", "/a", 20002, 1, 1) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	get(st, "default", "/a", 20002, &sc);
	CHECK_INT(sc.total.views, 1001);

	/* the adjustment comes first, then the days in order */
	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_each_day(v, "default", "/a", 0, 100000, true, collect,
	    &rows) == STORE_OK);
	CHECK_INT(rows.n, 4);
	CHECK_INT(rows.days[0], DAY_ADJUST);
	CHECK_INT(rows.views[0], 1000 - 8);
	CHECK_INT(rows.days[1], 20000);
	CHECK_INT(rows.days[2], 20001);
	CHECK_INT(rows.days[3], 20002);
	rows.n = 0;
	CHECK(store_each_day(v, "default", "/a", 20001, 20001, false, collect,
	    &rows) == STORE_OK);
	CHECK_INT(rows.n, 1);
	CHECK(store_each_series(v, "default", count_series, &n) == STORE_OK);
	CHECK_INT(n, 3);	/* "", "/a", "/b" */
	n = 0;
	CHECK(store_each_series(v, NULL, count_series, &n) == STORE_OK);
	CHECK_INT(n, 5);	/* and blog's "" and "/a" */
	store_view_end(v);

	/* reset of a page keeps the others */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_reset(t, "default", "/a") == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	get(st, "default", "/a", 20001, &sc);
	CHECK(!sc.exists);
	get(st, "default", "", 20001, &sc);
	CHECK_INT(sc.npages, 1);
	get(st, "default", "/b", 20001, &sc);
	CHECK_INT(sc.total.views, 1);

	/* reset of a site leaves other sites alone */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_reset(t, "default", NULL) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	n = 0;
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_each_series(v, NULL, count_series, &n) == STORE_OK);
	CHECK_INT(n, 2);
	store_view_end(v);
	store_view_free(v);
	get(st, "blog", "/a", 20001, &sc);
	CHECK_INT(sc.total.views, 7);
	store_close(st);
}

struct found {
	const char *want;
	int	 hits;
};

static int
find_path(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct found *f = arg;

	if (strcmp(path, f->want) == 0 && sc->total.views == 2)
		f->hits++;
	return 0;
}

/* Paths of 512 bytes with a long site name pass LMDB's key limit. */
static void
test_long_paths(void)
{
	struct store *st = open_rw();
	struct store_txn *t;
	struct store_view *v;
	struct series_counts sc;
	char a[513], b[513];
	const char *site = "a-rather-long-site-name-that-is-exactly-sixty-three-chars-long0";
	struct found f = { a, 0 };

	if (st == NULL)
		return;
	CHECK_INT(strlen(site), 63);
	memset(a, 'x', 512);
	a[0] = '/';
	a[512] = '\0';
	memcpy(b, a, sizeof(b));
	b[511] = 'y';	/* differs only past the cut */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, site, a, 20000, 2, 1) == STORE_OK);
	CHECK(store_add(t, site, b, 20000, 5, 1) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	get(st, site, a, 20000, &sc);
	CHECK_INT(sc.total.views, 2);
	get(st, site, b, 20000, &sc);
	CHECK_INT(sc.total.views, 5);
	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_each_series(v, site, find_path, &f) == STORE_OK);
	CHECK_INT(f.hits, 1);
	store_view_end(v);
	store_view_free(v);
	store_close(st);
}

static void
test_readonly_never_creates(void)
{
	struct store *st = NULL;
	struct stat sb;
	char missing[300], err[512];

	snprintf(missing, sizeof(missing), "%s/missing", dir);
	CHECK(store_open(&st, missing, STORE_READONLY, err, sizeof(err)) ==
	    STORE_ERROR);
	CHECK(st == NULL);
	CHECK(stat(missing, &sb) == -1 && errno == ENOENT);
	CHECK(strstr(err, "no store") != NULL);
}

static void
test_newer_schema_refused(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint32_t version = STORE_SCHEMA_VERSION + 1;
	struct store *st = NULL;
	char err[512];

	CHECK(mdb_env_create(&env) == 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK(mdb_env_open(env, dir, 0, 0640) == 0);
	CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
	k.mv_data = "schema";
	k.mv_size = 6;
	v.mv_data = &version;
	v.mv_size = sizeof(version);
	CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);

	CHECK(store_open(&st, dir, 0, err, sizeof(err)) == STORE_ERROR);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(store_open(&st, dir, STORE_READONLY, err, sizeof(err)) ==
	    STORE_ERROR);
}

static void
test_corrupt_refused(void)
{
	struct store *st = NULL;
	char d2[300], file[400], err[512];
	FILE *f;

	snprintf(d2, sizeof(d2), "%s/corrupt", dir);
	mkdir(d2, 0700);
	snprintf(file, sizeof(file), "%s/data.mdb", d2);
	f = fopen(file, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	for (int i = 0; i < 8192; i++)
		fputc('x', f);
	fclose(f);
	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_ERROR);
	CHECK(strstr(err, "not a valid store") != NULL);
}

struct recent_rows {
	uint32_t id;
	int	 n, first, last;
	uint64_t views;
};

static int
collect_recent(void *arg, uint32_t id, int day, const struct counts *c)
{
	struct recent_rows *r = arg;

	if (id != r->id)
		return 0;
	if (r->n == 0)
		r->first = day;
	r->last = day;
	r->n++;
	r->views += c->views;
	return 0;
}

/* The day-first copy of the last STORE_RECENT_DAYS days. */
static void
test_recent(void)
{
	struct store *st = open_rw();
	struct store_txn *t;
	struct store_view *v;
	struct series_counts sc;
	struct recent_rows r = { 0 };
	int day, floor = -1;

	if (st == NULL)
		return;
	/* Days out of order, as an import may bring them. */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	for (day = 30100; day >= 30000; day--)
		CHECK(store_add(t, "rec", "/r", day, 2, 1) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "rec", "/r", 30100, 1, 0) == STORE_OK);
	CHECK(store_add(t, "rec", "/r", 29000, 5, 0) == STORE_OK); /* too old */
	CHECK(store_commit(t) == STORE_OK);

	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_recent_floor(v, &floor) == STORE_OK);
	CHECK_INT(floor, 30100 - STORE_RECENT_DAYS + 1);
	CHECK(store_get(v, "rec", "/r", 30100, &sc) == STORE_OK);
	r.id = sc.id;
	CHECK(store_each_recent(v, 0, 40000, collect_recent, &r) == STORE_OK);
	CHECK_INT(r.n, STORE_RECENT_DAYS);
	CHECK_INT(r.first, floor);
	CHECK_INT(r.last, 30100);
	CHECK_INT(r.views, 2 * STORE_RECENT_DAYS + 1);
	/* the same as the page's own rows over that window */
	memset(&r, 0, sizeof(r));
	r.id = sc.id;
	CHECK(store_each_recent(v, 30091, 30100, collect_recent, &r) == STORE_OK);
	CHECK_INT(r.n, 10);
	CHECK_INT(r.views, 21);
	{
		char site[64], path[600];
		uint32_t max = 0;

		CHECK(store_series_name(v, sc.id, site, sizeof(site), path,
		    sizeof(path)) == STORE_OK);
		CHECK_STR(site, "rec");
		CHECK_STR(path, "/r");
		CHECK(store_max_id(v, &max) == STORE_OK);
		CHECK(max >= sc.id);
		CHECK(store_series_name(v, max + 1, site, sizeof(site), path,
		    sizeof(path)) == STORE_NOTFOUND);
	}
	store_view_end(v);
	/* a reset series has no name any more */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_reset(t, "rec", "/r") == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	CHECK(store_view_begin(v) == STORE_OK);
	{
		char site[64], path[600];

		CHECK(store_series_name(v, r.id, site, sizeof(site), path,
		    sizeof(path)) == STORE_NOTFOUND);
	}
	store_view_end(v);
	store_view_free(v);
	store_close(st);
}

/* A day row whose series was deleted behind the store's back. */
static void
test_orphans(void)
{
	struct store *st = open_rw();
	struct store_txn *t;
	struct store_view *v;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k;
	uint64_t orphans = 99;

	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "orph", "/o", 20000, 1, 1) == STORE_OK);
	CHECK(store_add(t, "orph", "/o", 20001, 1, 1) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_orphan_rows(v, &orphans) == STORE_OK);
	CHECK_INT(orphans, 0);
	store_view_end(v);
	store_view_free(v);
	store_close(st);

	CHECK(mdb_env_create(&env) == 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK(mdb_env_open(env, dir, 0, 0640) == 0);
	CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	CHECK(mdb_dbi_open(txn, "series", 0, &dbi) == 0);
	k.mv_data = "orph\0/o";
	k.mv_size = 7;
	CHECK(mdb_del(txn, dbi, &k, NULL) == 0);
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);

	st = open_rw();
	if (st == NULL)
		return;
	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_orphan_rows(v, &orphans) == STORE_OK);
	CHECK_INT(orphans, 2);
	store_view_end(v);
	store_view_free(v);
	store_close(st);
}

static int
fill(struct store_txn *t, void *arg)
{
	char path[64];
	int i, rc = STORE_OK, *calls = arg;

	(*calls)++;
	for (i = 0; i < 400000 && rc == STORE_OK; i++) {
		snprintf(path, sizeof(path), "/page/%d/with-a-longer-name", i);
		rc = store_add(t, "default", path, 20000, 1, 1);
	}
	return rc;
}

/* A write larger than the map: store_write grows the map and runs the
 * whole transaction again. */
static void
test_grow(void)
{
	struct store *st;
	struct store_stat ss;
	struct series_counts sc;
	uint64_t before;
	int calls = 0;

	cleanup(dir);
	st = open_rw();
	if (st == NULL)
		return;
	CHECK(store_stat(st, &ss) == STORE_OK);
	before = ss.map_bytes;
	CHECK(store_write(st, fill, &calls) == STORE_OK);
	CHECK(calls > 1);
	CHECK(store_stat(st, &ss) == STORE_OK);
	CHECK(ss.map_bytes > before);
	get(st, "default", "/page/399999/with-a-longer-name", 20000, &sc);
	CHECK_INT(sc.total.views, 1);
	get(st, "default", "", 20000, &sc);
	CHECK_INT(sc.npages, 400000);
	store_close(st);
}

/* A referrer walk's rows, as "day host views;" text. */
struct ref_text {
	char	 s[4096];
	size_t	 len;
};

static int
ref_text_row(void *arg, int day, const char *host, uint64_t views)
{
	struct ref_text *rt = arg;
	int n;

	n = snprintf(rt->s + rt->len, sizeof(rt->s) - rt->len, "%d %s %llu;",
	    day, host, (unsigned long long)views);
	if (n > 0 && (size_t)n < sizeof(rt->s) - rt->len)
		rt->len += (size_t)n;
	return STORE_OK;
}

static const char *
referrers_of(struct store *st, const char *site, int from, int to,
    struct ref_text *rt)
{
	struct store_view *v = store_view_new(st);

	rt->len = 0;
	rt->s[0] = '\0';
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_each_referrer(v, site, from, to, ref_text_row, rt) ==
	    STORE_OK);
	store_view_free(v);
	return rt->s;
}

static void
test_referrers(void)
{
	struct store *st = NULL;
	struct store_txn *t;
	struct store_view *v;
	struct ref_text rt;
	char d2[300], err[512];
	uint64_t n;

	snprintf(d2, sizeof(d2), "%s/referrers", dir);
	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_OK);
	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20001, "Google", 2, 3) == STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20001, "a.example", 1, 3) ==
	    STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20000, "z.example", 4, 3) ==
	    STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20001, "Google", 1, 3) == STORE_OK);
	/* the third host of the day, then the cap */
	CHECK(store_referrer_add(t, "blog", 20001, "b.example", 1, 3) ==
	    STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20001, "c.example", 5, 3) ==
	    STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20001, "d.example", 1, 3) ==
	    STORE_OK);
	/* a host the day has keeps counting past the cap */
	CHECK(store_referrer_add(t, "blog", 20001, "a.example", 1, 3) ==
	    STORE_OK);
	/* another site, and a site whose name is a prefix */
	CHECK(store_referrer_add(t, "blo", 20001, "x.example", 9, 3) ==
	    STORE_OK);
	CHECK(store_referrer_add(t, "blog.b", 20001, "y.example", 8, 0) ==
	    STORE_OK);
	/* saturation, and what an import may not pass */
	CHECK(store_referrer_add(t, "sat", 20001, "s.example", STORE_COUNT_MAX,
	    3) == STORE_OK);
	CHECK(store_referrer_add(t, "sat", 20001, "s.example", 5, 3) ==
	    STORE_OK);
	CHECK(store_referrer_add_exact(t, "sat", 20001, "s.example", 1) ==
	    STORE_ERROR);
	CHECK(store_referrer_add(t, "blog", 20001, "", 1, 3) == STORE_ERROR);
	CHECK(store_commit(t) == STORE_OK);

	CHECK_STR(referrers_of(st, "blog", 0, 30000, &rt),
	    "20000 z.example 4;20001 (other) 6;20001 Google 3;"
	    "20001 a.example 2;20001 b.example 1;");
	CHECK_STR(referrers_of(st, "blog", 20001, 20001, &rt),
	    "20001 (other) 6;20001 Google 3;20001 a.example 2;"
	    "20001 b.example 1;");
	CHECK_STR(referrers_of(st, "blog", 0, 20000, &rt), "20000 z.example 4;");
	CHECK_STR(referrers_of(st, "blo", 0, 30000, &rt), "20001 x.example 9;");
	CHECK_STR(referrers_of(st, "blog.b", 0, 30000, &rt),
	    "20001 (other) 8;");
	CHECK_STR(referrers_of(st, "nosuch", 0, 30000, &rt), "");
	CHECK_STR(referrers_of(st, "sat", 0, 30000, &rt),
	    "20001 s.example 9223372036854775807;");

	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_referrer_get(v, "blog", 20001, "a.example", &n) == STORE_OK);
	CHECK_INT(n, 2);
	CHECK(store_referrer_get(v, "blog", 20001, "d.example", &n) == STORE_OK);
	CHECK_INT(n, 0);
	store_view_free(v);

	/* A page's reset leaves them; the site's takes them all. */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "blog", "/a", 20001, 1, 1) == STORE_OK);
	CHECK(store_add(t, "blog", "", 20001, 1, 1) == STORE_OK);
	CHECK(store_reset(t, "blog", "/a") == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	CHECK(strstr(referrers_of(st, "blog", 0, 30000, &rt), "Google") !=
	    NULL);
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_reset(t, "blog", NULL) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	CHECK_STR(referrers_of(st, "blog", 0, 30000, &rt), "");
	CHECK_STR(referrers_of(st, "blo", 0, 30000, &rt), "20001 x.example 9;");
	CHECK_STR(referrers_of(st, "blog.b", 0, 30000, &rt),
	    "20001 (other) 8;");
	store_close(st);
	cleanup(d2);
}

/* Turns the store in d back into the layout of an older schema: drops
 * the databases it did not have and the meta keys it did not write,
 * then records its version. */
static void
make_old_schema(const char *d, uint32_t version, const char *const *dbs,
    const char *const *keys)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;

	CHECK(mdb_env_create(&env) == 0);
	mdb_env_set_maxdbs(env, 10);
	CHECK(mdb_env_open(env, d, 0, 0640) == 0);
	CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	for (; *dbs != NULL; dbs++) {
		CHECK(mdb_dbi_open(txn, *dbs, 0, &dbi) == 0);
		CHECK(mdb_drop(txn, dbi, 1) == 0);
	}
	CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
	for (; *keys != NULL; keys++) {
		k.mv_data = (void *)*keys;
		k.mv_size = strlen(*keys);
		CHECK(mdb_del(txn, dbi, &k, NULL) == 0);
	}
	k.mv_data = "schema";
	k.mv_size = 6;
	v.mv_data = &version;
	v.mv_size = sizeof(version);
	CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);
}

/* Schema 1: no referrers. */
static void
make_schema1(const char *d)
{
	static const char *const dbs[] = { "referrers", NULL };
	static const char *const keys[] = { NULL };

	make_old_schema(d, 1, dbs, keys);
}

static uint32_t
schema_of(const char *d)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint32_t version = 0;

	CHECK(mdb_env_create(&env) == 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK(mdb_env_open(env, d, MDB_RDONLY, 0640) == 0);
	CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
	CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
	k.mv_data = "schema";
	k.mv_size = 6;
	if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof(version))
		memcpy(&version, v.mv_data, sizeof(version));
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return version;
}

/* A store of schema 1 is read as it is, and migrated by a writable
 * open: never refused. */
static void
test_schema1_migrated(void)
{
	struct store *st = NULL;
	struct store_txn *t;
	struct series_counts sc;
	struct ref_text rt;
	char d2[300], err[512];

	snprintf(d2, sizeof(d2), "%s/schema1", dir);
	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_OK);
	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "blog", "/a", 20001, 3, 2) == STORE_OK);
	CHECK(store_add(t, "blog", "", 20001, 3, 2) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	store_close(st);
	make_schema1(d2);
	CHECK_INT(schema_of(d2), 1);

	/* read-only: it stays as it is, with no referrers */
	CHECK(store_open(&st, d2, STORE_READONLY, err, sizeof(err)) ==
	    STORE_OK);
	if (st == NULL)
		return;
	get(st, "blog", "/a", 20001, &sc);
	CHECK_INT(sc.total.views, 3);
	CHECK_STR(referrers_of(st, "blog", 0, 30000, &rt), "");
	store_close(st);
	CHECK_INT(schema_of(d2), 1);

	/* writable: migrated, counts kept, referrers taken */
	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_OK);
	if (st == NULL)
		return;
	CHECK_INT(schema_of(d2), STORE_SCHEMA_VERSION);
	get(st, "blog", "/a", 20001, &sc);
	CHECK_INT(sc.total.views, 3);
	CHECK_INT(sc.total.visitors, 2);
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_referrer_add(t, "blog", 20001, "Google", 1, 10) ==
	    STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	CHECK_STR(referrers_of(st, "blog", 0, 30000, &rt), "20001 Google 1;");
	store_close(st);
	cleanup(d2);
}

/*
 * The window's sums: each page's sum is that of its rows from (out_day,
 * out_id) on, up to high; the ranking holds exactly the pages with a sum,
 * most views first; and a sum less the rows before the window is the
 * window itself.
 */
struct win_rows {
	struct store_window w;
	uint32_t id;
	struct counts held, in_window;
};

static int
win_row(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct win_rows *r = arg;

	if (day > r->w.high)
		return 0;
	if (day > r->w.out_day || (day == r->w.out_day && r->id >= r->w.out_id)) {
		r->held.views += c->views;
		r->held.visitors += c->visitors;
	}
	if (day > r->w.high - STORE_WINDOW_DAYS) {
		r->in_window.views += c->views;
		r->in_window.visitors += c->visitors;
	}
	return 0;
}

struct win_rank {
	struct store_view *v;
	uint64_t n, last;
	int bad;
};

static int
win_rank(void *arg, uint32_t id, const struct counts *c)
{
	struct win_rank *r = arg;
	struct counts sum;

	if (store_window_get(r->v, id, &sum) != STORE_OK ||
	    sum.views != c->views || sum.visitors != c->visitors ||
	    (r->n > 0 && c->views > r->last))
		r->bad++;
	r->last = c->views;
	r->n++;
	return 0;
}

/* Checks site's pages /w0 .. /w(npages - 1); how many differ. */
static int
window_checked(struct store *st, const char *site, int npages, bool *pending)
{
	struct store_view *v = store_view_new(st);
	struct series_counts sc;
	struct win_rows r;
	struct win_rank rk = { 0 };
	struct counts sum;
	char path[32];
	uint64_t with = 0;
	int i, bad = 0;

	CHECK(store_view_begin(v) == STORE_OK);
	memset(&r, 0, sizeof(r));
	CHECK(store_window_state(v, &r.w) == STORE_OK);
	CHECK(r.w.out_day <= r.w.high - STORE_WINDOW_DAYS + 1);
	*pending = r.w.out_day < r.w.high - STORE_WINDOW_DAYS + 1;
	for (i = 0; i < npages; i++) {
		snprintf(path, sizeof(path), "/w%d", i);
		CHECK(store_get(v, site, path, 0, &sc) == STORE_OK);
		if (!sc.exists)
			continue;
		memset(&r.held, 0, sizeof(r.held));
		memset(&r.in_window, 0, sizeof(r.in_window));
		r.id = sc.id;
		CHECK(store_each_day(v, site, path, 0, INT32_MAX, false, win_row,
		    &r) == STORE_OK);
		CHECK(store_window_get(v, sc.id, &sum) == STORE_OK);
		if (sum.views != r.held.views ||
		    sum.visitors != r.held.visitors)
			bad++;
		if (r.held.views || r.held.visitors)
			with++;
	}
	rk.v = v;
	CHECK(store_each_window(v, site, win_rank, &rk) == STORE_OK);
	CHECK_INT(rk.bad, 0);
	CHECK_INT(rk.n, with);
	store_view_end(v);
	store_view_free(v);
	return bad;
}

static uint32_t lcg = 12345;

static uint32_t
rnd(uint32_t n)
{
	lcg = lcg * 1103515245 + 12345;
	return (lcg >> 8) % n;
}

static void
test_window(void)
{
	struct store *st = NULL;
	struct store_txn *t;
	char d2[300], err[512], path[32];
	int day = 21000, round, i, bad = 0, pending_seen = 0;
	bool pending;

	snprintf(d2, sizeof(d2), "%s/window", dir);
	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_OK);
	if (st == NULL)
		return;
	/* Many pages a day, so that a new day leaves more rows to take out
	 * than a commit takes. */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	for (i = 0; i < 600; i++) {
		snprintf(path, sizeof(path), "/w%d", i);
		for (int d = day - 40; d <= day; d++) {
			CHECK(store_add(t, "win", path, d, 1 + i % 5, 1) ==
			    STORE_OK);
			CHECK(store_add(t, "win", "", d, 1 + i % 5, 1) ==
			    STORE_OK);
		}
	}
	CHECK(store_commit(t) == STORE_OK);
	bad += window_checked(st, "win", 600, &pending);
	for (round = 0; round < 60; round++) {
		/* Mostly the next day; sometimes a jump, or none. */
		day += round % 17 == 16 ? 45 : round % 3 != 0;
		CHECK(store_write_begin(st, &t) == STORE_OK);
		for (i = 0; i < 5; i++) {
			int p = (int)rnd(600), d = day - (int)rnd(50);

			snprintf(path, sizeof(path), "/w%d", p);
			CHECK(store_add(t, "win", path, d, 1 + rnd(9),
			    rnd(2)) == STORE_OK);
			CHECK(store_add(t, "win", "", d, 10, 2) == STORE_OK);
			CHECK(store_add(t, "other", path, d, 1, 1) ==
			    STORE_OK);
		}
		if (round % 7 == 3) {
			snprintf(path, sizeof(path), "/w%u", rnd(600));
			CHECK(store_reset(t, "win", path) == STORE_OK);
		}
		if (round == 30)
			CHECK(store_reset(t, "other", NULL) == STORE_OK);
		CHECK(store_commit(t) == STORE_OK);
		bad += window_checked(st, "win", 600, &pending);
		bad += window_checked(st, "other", 600, &pending);
		pending_seen += pending;
	}
	CHECK_INT(bad, 0);
	/* Some of it ran while old days were still being taken out. */
	CHECK(pending_seen > 0);
	store_close(st);
	cleanup(d2);
}

/* Schema 2: no window. */
static void
make_schema2(const char *d)
{
	static const char *const dbs[] = { "window", "winrank", NULL };
	static const char *const keys[] = { "window_out", NULL };

	make_old_schema(d, 2, dbs, keys);
}

/* A store of schema 2 is read as it is (top then reads the recent
 * rows), and a writable open sums its window. */
static void
test_schema2_migrated(void)
{
	struct store *st = NULL;
	struct store_txn *t;
	struct store_view *v;
	struct store_window w;
	char d2[300], err[512], path[32];
	bool pending;
	int i, d;

	snprintf(d2, sizeof(d2), "%s/schema2", dir);
	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_OK);
	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	for (i = 0; i < 50; i++) {
		snprintf(path, sizeof(path), "/w%d", i);
		for (d = 22000 - 45; d <= 22000; d += 1 + i % 3) {
			CHECK(store_add(t, "blog", path, d, 1 + i, 1) ==
			    STORE_OK);
			CHECK(store_add(t, "blog", "", d, 1 + i, 1) ==
			    STORE_OK);
		}
	}
	CHECK(store_commit(t) == STORE_OK);
	store_close(st);
	make_schema2(d2);
	CHECK_INT(schema_of(d2), 2);

	CHECK(store_open(&st, d2, STORE_READONLY, err, sizeof(err)) ==
	    STORE_OK);
	if (st == NULL)
		return;
	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_window_state(v, &w) == STORE_NOTFOUND);
	store_view_end(v);
	store_view_free(v);
	store_close(st);
	CHECK_INT(schema_of(d2), 2);

	CHECK(store_open(&st, d2, 0, err, sizeof(err)) == STORE_OK);
	if (st == NULL)
		return;
	CHECK_INT(schema_of(d2), STORE_SCHEMA_VERSION);
	CHECK_INT(window_checked(st, "blog", 50, &pending), 0);
	CHECK(!pending);
	/* and it moves on from there */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "blog", "/w3", 22001, 2, 1) == STORE_OK);
	CHECK(store_add(t, "blog", "", 22001, 2, 1) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	CHECK_INT(window_checked(st, "blog", 50, &pending), 0);
	store_close(st);
	cleanup(d2);
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tally-store-test-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_add_and_get();
	test_set_adjust_reset();
	test_long_paths();
	test_orphans();
	test_recent();
	test_readonly_never_creates();
	test_referrers();
	test_schema1_migrated();
	test_window();
	test_schema2_migrated();
	test_corrupt_refused();
	test_newer_schema_refused();
	test_grow();
	test_view_sees_commits();
	cleanup(dir);
	return check_done();
}
