/*
 * The PostgreSQL store, on a throwaway cluster this test starts: initdb
 * and pg_ctl in a temporary directory, on a free loopback port. As root
 * (CI), the cluster runs as "nobody": initdb refuses root. Skipped (77)
 * only when PostgreSQL's programs are not installed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "tally/day.h"
#include "tally/store.h"

#define PG_BIN	"/usr/lib/postgresql/15/bin"

static char dir[256];
static char url[512];
static int port;
static const char *as_user = "";	/* "runuser -u nobody -- " as root */

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd, p;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		p = -1;
	else
		p = ntohs(sa.sin_port);
	close(fd);
	return p;
}

static int
pg_start(void)
{
	return sh("%s" PG_BIN "/pg_ctl -D '%s/data' -l '%s/log' -w -o \"-p %d "
	    "-k %s -c listen_addresses=127.0.0.1 -c fsync=off\" start "
	    ">/dev/null", as_user, dir, dir, port, dir);
}

static int
cluster_start(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tally-pg-XXXXXX");
	if (mkdtemp(dir) == NULL || (port = free_port()) == -1)
		return -1;
	if (geteuid() == 0) {
		as_user = "runuser -u nobody -- ";
		if (sh("chown nobody '%s'", dir) != 0)
			return -1;
	}
	if (sh("%s" PG_BIN "/initdb -D '%s/data' -A trust -U tally -E UTF8 "
	    "--no-sync >'%s/initdb.log' 2>&1", as_user, dir, dir) != 0 ||
	    pg_start() != 0 ||
	    sh("%s" PG_BIN "/createdb -h 127.0.0.1 -p %d -U tally tally",
	    as_user, port) != 0)
		return -1;
	snprintf(url, sizeof(url), "postgresql://tally@127.0.0.1:%d/tally",
	    port);
	return 0;
}

static void
cluster_stop(void)
{
	sh("%s" PG_BIN "/pg_ctl -D '%s/data' -m immediate stop >/dev/null "
	    "2>&1", as_user, dir);
	sh("rm -rf '%s'", dir);
}

/* Runs SQL with psql; its output in out (one line). */
static int
psql(char *out, size_t outsz, const char *sql)
{
	char cmd[2048];
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s" PG_BIN "/psql -X -q -A -t -h 127.0.0.1 "
	    "-p %d -U tally tally -c \"%s\"", as_user, port, sql);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (out != NULL) {
		out[0] = '\0';
		if (fgets(out, (int)outsz, p) != NULL)
			out[strcspn(out, "\n")] = '\0';
	}
	while (fgetc(p) != EOF)
		;
	rc = pclose(p);
	return rc == 0 ? 0 : -1;
}

static struct store *
open_at(const char *u, int flags)
{
	struct store *st = NULL;
	char err[512];

	if (store_open(&st, u, flags, err, sizeof(err)) != STORE_OK)
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

struct rows {
	char	 names[16][64];
	struct series_counts sc[16];
	int	 n;
};

static int
collect(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct rows *r = arg;

	if (r->n < 16) {
		snprintf(r->names[r->n], sizeof(r->names[0]), "%s|%s", site,
		    path);
		r->sc[r->n++] = *sc;
	}
	return 0;
}

/* tallyctl's way: reads in a snapshot, writes in a transaction. */
static void
test_direct(void)
{
	struct store *st = open_at(url, 0);
	struct store_txn *t;
	struct store_view *v;
	struct series_counts sc;
	struct rows r = { 0 };
	uint64_t views;
	bool seen;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_add(t, "default", "/a", 20000, 3, 2) == STORE_OK);
	CHECK(store_add(t, "default", SITE_SERIES, 20000, 3, 2) == STORE_OK);
	CHECK(store_add(t, "default", "/a", 20001, 1, 1) == STORE_OK);
	CHECK(store_add(t, "a.b", "/z", 20001, 5, 1) == STORE_OK);
	CHECK(store_seen_put(t, 20001, 42, 7) == STORE_OK);
	CHECK(store_referrer_add(t, "default", 20000, "x.example", 2, 1) ==
	    STORE_OK);
	/* Past the day's one host: "(other)". */
	CHECK(store_referrer_add(t, "default", 20000, "y.example", 3, 1) ==
	    STORE_OK);
	CHECK(store_commit(t) == STORE_OK);

	get(st, "default", "/a", 20000, &sc);
	CHECK(sc.exists);
	CHECK_INT(sc.total.views, 4);
	CHECK_INT(sc.total.visitors, 3);
	CHECK_INT(sc.day.views, 3);
	get(st, "default", SITE_SERIES, 20001, &sc);
	CHECK(sc.exists);
	CHECK_INT(sc.npages, 1);
	CHECK_INT(sc.day.views, 0);
	get(st, "nowhere", "/", 20000, &sc);
	CHECK(!sc.exists);

	v = store_view_new(st);
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_each_series(v, NULL, collect, &r) == STORE_OK);
	CHECK_INT(r.n, 4);
	/* Bytewise order: "a.b" before "default", a site before its pages. */
	CHECK_STR(r.names[0], "a.b|");
	CHECK_STR(r.names[1], "a.b|/z");
	CHECK_STR(r.names[2], "default|");
	CHECK_STR(r.names[3], "default|/a");
	CHECK(store_seen_get(v, 20001, 42, 7, &seen) == STORE_OK && seen);
	CHECK(store_seen_get(v, 20001, 42, 8, &seen) == STORE_OK && !seen);
	CHECK(store_referrer_get(v, "default", 20000, STORE_REFERRER_OTHER,
	    &views) == STORE_OK);
	CHECK_INT(views, 3);
	store_view_end(v);

	/* set: the adjustment makes the total; reset: gone, with its ids. */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_set_total(t, "default", "/a", 100, 10) == STORE_OK);
	CHECK(store_add_adjust(t, "a.b", "/z", INT64_MAX, 0) == STORE_OK);
	CHECK(store_add_adjust(t, "a.b", "/z", 1, 0) == STORE_ERROR);
	store_abort(t);
	get(st, "a.b", "/z", 20001, &sc);
	CHECK_INT(sc.total.views, 5);	/* the aborted write left nothing */
	CHECK(store_write_begin(st, &t) == STORE_OK);
	CHECK(store_set_total(t, "default", "/a", 100, 10) == STORE_OK);
	CHECK(store_reset(t, "a.b", NULL) == STORE_OK);
	CHECK(store_commit(t) == STORE_OK);
	get(st, "default", "/a", 20000, &sc);
	CHECK_INT(sc.total.views, 100);
	CHECK_INT(sc.total.visitors, 10);
	CHECK_INT(sc.day.views, 3);
	get(st, "a.b", "/z", 20001, &sc);
	CHECK(!sc.exists);
	store_view_free(v);
	store_close(st);
}

static void
test_schema(void)
{
	struct store *st;
	char err[512], u[600];

	/* A read-only open never creates. */
	CHECK(psql(NULL, 0, "CREATE DATABASE empty") == 0);
	snprintf(u, sizeof(u), "postgresql://tally@127.0.0.1:%d/empty", port);
	CHECK(store_open(&st, u, STORE_READONLY, err, sizeof(err)) ==
	    STORE_ERROR);
	CHECK(strstr(err, "not a tally store") != NULL);
	/* No password in messages, and an unreachable server says so. */
	snprintf(u, sizeof(u), "postgresql://tally:sekrit@127.0.0.1:1/x");
	CHECK(store_open(&st, u, 0, err, sizeof(err)) == STORE_UNAVAILABLE);
	CHECK(strstr(err, "sekrit") == NULL);
	CHECK(strstr(err, "postgresql://tally@127.0.0.1:1/x") != NULL);
	/* A newer schema is refused. */
	CHECK(psql(NULL, 0, "UPDATE tally_meta SET val = convert_to('99', "
	    "'UTF8') WHERE key = 'schema'") == 0);
	CHECK(store_open(&st, url, 0, err, sizeof(err)) == STORE_ERROR);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(psql(NULL, 0, "UPDATE tally_meta SET val = convert_to('1', "
	    "'UTF8') WHERE key = 'schema'") == 0);
	CHECK((st = open_at(url, 0)) != NULL);
	store_close(st);
}

/* One hit on a node: views, the visitor id, a referrer. */
static int
hit(struct store *st, const char *path, int day, uint64_t visitor)
{
	struct store_txn *t;
	int rc;

	if ((rc = store_write_begin(st, &t)) != STORE_OK)
		return rc;
	if ((rc = store_add(t, "multi", path, day, 1, 1)) != STORE_OK ||
	    (rc = store_add(t, "multi", SITE_SERIES, day, 1, 1)) != STORE_OK ||
	    (rc = store_seen_put(t, day, store_series_hash("multi", path),
	    visitor)) != STORE_OK ||
	    (rc = store_seen_put(t, day, store_series_hash("multi",
	    SITE_SERIES), visitor)) != STORE_OK ||
	    (rc = store_referrer_add(t, "multi", day, "r.example", 1, 10)) !=
	    STORE_OK) {
		store_abort(t);
		return rc;
	}
	return store_commit(t);
}

/* Two daemons on one database: exact visitors, a copy each. */
static void
test_cached_nodes(void)
{
	struct store *a, *b, *d;
	struct store_view *va, *vb, *vd;
	struct series_counts sc;
	char ua[600], ub[600], out[64];
	uint64_t views, va0;
	bool seen;
	int day = day_today();

	snprintf(ua, sizeof(ua), "%s?application_name=node-a", url);
	snprintf(ub, sizeof(ub), "%s?application_name=node-b", url);
	a = open_at(ua, STORE_CACHED);
	b = open_at(ub, STORE_CACHED);
	CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL)
		return;
	va = store_view_new(a);
	vb = store_view_new(b);

	/* The same visitor on both nodes, twice on a: one visitor. */
	CHECK(hit(a, "/p", day, 1001) == STORE_OK);
	CHECK(hit(b, "/p", day, 1001) == STORE_OK);
	CHECK(hit(b, "/q", day, 1001) == STORE_OK);
	CHECK(hit(a, "/p", day, 1002) == STORE_OK);

	CHECK(store_view_begin(va) == STORE_OK);
	va0 = store_view_version(va);
	CHECK(store_get(va, "multi", "/p", day, &sc) == STORE_OK);
	CHECK(sc.exists);
	CHECK_INT(sc.day.views, 3);	/* b's hit came with a's commit */
	CHECK_INT(sc.day.visitors, 2);
	CHECK(store_seen_get(va, day, store_series_hash("multi", "/p"), 1002,
	    &seen) == STORE_OK && seen);
	store_view_end(va);

	/* b's copy lacks a's last hit until it refreshes. */
	CHECK(store_view_begin(vb) == STORE_OK);
	CHECK(store_get(vb, "multi", SITE_SERIES, day, &sc) == STORE_OK);
	CHECK_INT(sc.day.views, 3);
	store_view_end(vb);
	CHECK(store_refresh(b, 0) == STORE_OK);
	CHECK(store_view_begin(vb) == STORE_OK);
	CHECK(store_get(vb, "multi", SITE_SERIES, day, &sc) == STORE_OK);
	CHECK_INT(sc.day.views, 4);
	CHECK_INT(sc.day.visitors, 2);
	CHECK_INT(sc.total.views, 4);
	CHECK_INT(sc.npages, 2);
	store_view_end(vb);

	/* What tallyctl sees: the same, summed over the nodes' rows. */
	d = open_at(url, STORE_READONLY);
	CHECK(d != NULL);
	if (d != NULL) {
		vd = store_view_new(d);
		CHECK(store_view_begin(vd) == STORE_OK);
		CHECK(store_get(vd, "multi", "/p", day, &sc) == STORE_OK);
		CHECK_INT(sc.day.views, 3);
		CHECK_INT(sc.day.visitors, 2);
		CHECK(store_get(vd, "multi", "/q", day, &sc) == STORE_OK);
		CHECK_INT(sc.day.visitors, 1);
		CHECK(store_referrer_get(vd, "multi", day, "r.example",
		    &views) == STORE_OK);
		CHECK_INT(views, 4);
		store_view_end(vd);
		store_view_free(vd);
		store_close(d);
	}
	CHECK(psql(out, sizeof(out), "SELECT count(DISTINCT node) FROM "
	    "tally_counts c JOIN tally_series s ON s.id = c.series_id "
	    "WHERE s.site = 'multi'") == 0);
	CHECK_STR(out, "2");	/* a row per node: no shared hot row */

	/* The connection dropped under a: the flush fails, nothing is
	 * counted twice when the batch is sent again, and a reconnects. */
	CHECK(psql(NULL, 0, "SELECT pg_terminate_backend(pid) FROM "
	    "pg_stat_activity WHERE application_name = 'node-a'") == 0);
	CHECK(hit(a, "/p", day, 1003) == STORE_UNAVAILABLE);
	CHECK(hit(a, "/p", day, 1003) == STORE_OK);
	CHECK_INT(store_reconnects(a), 1);
	CHECK(store_view_begin(va) == STORE_OK);
	CHECK(store_view_version(va) > va0);
	CHECK(store_get(va, "multi", "/p", day, &sc) == STORE_OK);
	CHECK_INT(sc.day.views, 4);
	CHECK_INT(sc.day.visitors, 3);
	store_view_end(va);

	/* The salt: the first written wins, for every node. */
	{
		unsigned char rec[STORE_SALT_REC], got[4 * STORE_SALT_REC];
		char sql[128];
		struct store_txn *t;
		size_t len = sizeof(got);
		int32_t d32 = day;

		memcpy(rec, &d32, 4);
		memset(rec + 4, 'a', STORE_SALT_BYTES);
		CHECK(store_write_begin(a, &t) == STORE_OK);
		CHECK(store_meta_put(t, STORE_META_SALTS, rec, sizeof(rec)) ==
		    STORE_OK);
		CHECK(store_commit(t) == STORE_OK);
		memset(rec + 4, 'b', STORE_SALT_BYTES);
		CHECK(store_write_begin(b, &t) == STORE_OK);
		CHECK(store_meta_put(t, STORE_META_SALTS, rec, sizeof(rec)) ==
		    STORE_OK);
		CHECK(store_commit(t) == STORE_OK);
		CHECK(store_view_begin(vb) == STORE_OK);
		CHECK(store_meta_get(vb, STORE_META_SALTS, got, &len) ==
		    STORE_OK);
		store_view_end(vb);
		CHECK_INT(len, STORE_SALT_REC);
		CHECK(got[4] == 'a' && got[4 + STORE_SALT_BYTES - 1] == 'a');
		CHECK(psql(out, sizeof(out), "SELECT relpersistence FROM "
		    "pg_class WHERE relname = 'tally_salts'") == 0);
		CHECK_STR(out, "u");
		/* Only today's and yesterday's exist: a node's old copy (put
		 * back after a failover) brings no older one back. */
		{
			unsigned char old[2 * STORE_SALT_REC];

			d32 = day - 3;
			memcpy(old, &d32, 4);
			memset(old + 4, 'c', STORE_SALT_BYTES);
			d32 = day - 2;
			memcpy(old + STORE_SALT_REC, &d32, 4);
			memset(old + STORE_SALT_REC + 4, 'd', STORE_SALT_BYTES);
			CHECK(store_write_begin(a, &t) == STORE_OK);
			CHECK(store_meta_put(t, STORE_META_SALTS, old,
			    sizeof(old)) == STORE_OK);
			CHECK(store_commit(t) == STORE_OK);
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM "
			    "tally_salts WHERE day < %d", day - 1);
			CHECK(psql(out, sizeof(out), sql) == 0);
			CHECK_STR(out, "0");
			CHECK(psql(out, sizeof(out), "SELECT count(*) FROM "
			    "tally_salts") == 0);
			CHECK_STR(out, "1");
		}
	}

	/* tallyctl resets a page b has in its copy: b's next flush finds
	 * a reset it has not read, does nothing, and b sends it again once
	 * it has read its copy again, to the series made anew: no row of a
	 * series gone, no hit lost. */
	d = open_at(url, 0);
	CHECK(d != NULL);
	if (d != NULL) {
		struct store_txn *t;
		uint64_t orphans = 1;

		CHECK(store_write_begin(d, &t) == STORE_OK);
		CHECK(store_reset(t, "multi", "/q") == STORE_OK);
		CHECK(store_commit(t) == STORE_OK);
		CHECK(hit(b, "/q", day, 2001) == STORE_OK);
		CHECK(hit(b, "/q", day, 2002) == STORE_OK);
		vd = store_view_new(d);
		CHECK(store_view_begin(vd) == STORE_OK);
		CHECK(store_orphan_rows(vd, &orphans) == STORE_OK);
		CHECK_INT(orphans, 0);
		CHECK(store_get(vd, "multi", "/q", day, &sc) == STORE_OK);
		CHECK(sc.exists);
		CHECK_INT(sc.day.views, 2);
		store_view_end(vd);
		store_view_free(vd);
		store_close(d);
	}

	store_view_free(va);
	store_view_free(vb);
	store_close(a);
	store_close(b);
}

/* Stops or starts the cluster again, as cluster_start started it. */
static void
cluster_ctl(const char *what)
{
	if (strcmp(what, "stop") == 0)
		CHECK(sh("%s" PG_BIN "/pg_ctl -D '%s/data' -w -m fast stop "
		    ">/dev/null", as_user, dir) == 0);
	else
		CHECK(pg_start() == 0);
}

/* The daemon's mode opens without its database, and connects later. */
static void
test_connect_later(void)
{
	struct store *st;
	struct store_view *v;
	struct series_counts sc;
	unsigned char salts[4 * STORE_SALT_REC];
	size_t len = sizeof(salts);
	char err[512], u[600];

	/* A URL libpq cannot read is no outage. */
	snprintf(u, sizeof(u), "%s?nosuchparameter=1", url);
	CHECK(store_open(&st, u, STORE_CACHED, err, sizeof(err)) ==
	    STORE_ERROR);
	CHECK(st == NULL);
	CHECK(strstr(err, "nosuchparameter") != NULL);

	cluster_ctl("stop");
	CHECK(store_open(&st, url, STORE_CACHED, err, sizeof(err)) ==
	    STORE_UNAVAILABLE);
	CHECK(st != NULL);
	if (st == NULL) {
		cluster_ctl("start");
		return;
	}
	CHECK(strstr(err, "onnect") != NULL);
	v = store_view_new(st);
	/* The empty copy answers; the salts do not wait. */
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_get(v, "multi", "/p", day_today(), &sc) == STORE_OK);
	CHECK(!sc.exists);
	CHECK(store_meta_get(v, STORE_META_SALTS, salts, &len) ==
	    STORE_UNAVAILABLE);
	store_view_end(v);
	CHECK(store_refresh(st, 60000) == STORE_UNAVAILABLE);
	cluster_ctl("start");
	CHECK(store_refresh(st, 60000) == STORE_OK);
	CHECK_INT(store_reconnects(st), 0);	/* the first connection */
	CHECK(store_view_begin(v) == STORE_OK);
	CHECK(store_get(v, "multi", "/p", day_today(), &sc) == STORE_OK);
	CHECK(sc.exists);
	CHECK_INT(sc.day.views, 4);
	len = sizeof(salts);
	CHECK(store_meta_get(v, STORE_META_SALTS, salts, &len) == STORE_OK);
	store_view_end(v);
	store_view_free(v);
	store_close(st);

	/* A schema found newer once the database answers is refused as at
	 * open, and again at every try. */
	CHECK(psql(NULL, 0, "UPDATE tally_meta SET val = convert_to('99', "
	    "'UTF8') WHERE key = 'schema'") == 0);
	cluster_ctl("stop");
	CHECK(store_open(&st, url, STORE_CACHED, err, sizeof(err)) ==
	    STORE_UNAVAILABLE);
	cluster_ctl("start");
	if (st != NULL) {
		CHECK(store_refresh(st, 0) == STORE_ERROR);
		CHECK(strstr(store_error(st), "newer") != NULL);
		CHECK(store_refresh(st, 0) == STORE_ERROR);
		store_close(st);
	}
	CHECK(psql(NULL, 0, "UPDATE tally_meta SET val = convert_to('1', "
	    "'UTF8') WHERE key = 'schema'") == 0);
}

int
main(void)
{
	if (access(PG_BIN "/initdb", X_OK) != 0) {
		printf("SKIP: PostgreSQL 15 is not installed (" PG_BIN
		    "/initdb); apt-get install postgresql-15\n");
		return 77;
	}
	if (cluster_start() != 0) {
		fprintf(stderr, "cannot start a PostgreSQL cluster in %s\n",
		    dir);
		sh("cat '%s/initdb.log' '%s/log' >&2 2>/dev/null", dir, dir);
		cluster_stop();
		return 1;
	}
	test_direct();
	test_schema();
	test_cached_nodes();
	test_connect_later();
	cluster_stop();
	return check_done();
}
