/*
 * The store on PostgreSQL, through libpq: one set of counts that several
 * tallyd nodes write at once, and that tallyctl reads and edits.
 *
 * Two modes, chosen at open:
 *
 *   direct	(tallyctl) a view is a REPEATABLE READ READ ONLY transaction
 *		and every read a query; a write transaction is a database
 *		transaction, each call a statement in it. One connection,
 *		one thread.
 *   cached	(tallyd, STORE_CACHED) views never touch the network: they
 *		read a node-local copy of the counts of the sites this node
 *		has served (struct cache). A write transaction only gathers
 *		what it adds; its commit sends everything in ONE statement,
 *		whose answer (the new absolute counts of the series touched)
 *		updates the copy. store_refresh reads the copy's sites again,
 *		so that other nodes' hits show.
 *
 * The SQL keeps to what PostgreSQL-compatible distributed engines run
 * too (CockroachDB, YugabyteDB, Citus): no advisory locks, no functions
 * of PostgreSQL's own where a standard form exists. Statements and why:
 *
 * Tables (created at open, in one transaction, with IF NOT EXISTS so
 * that nodes starting together do not fail; versioned by the row
 * 'schema' of tally_meta; a newer version is refused):
 *   tally_meta (key, val bytea)	 what LMDB keeps in "meta"
 *   tally_series (id, site, path, adj_views, adj_visitors)
 *		 a series and its all-time adjustment ("set", an imported
 *		 "-" row). id is an identity column: it names the series in
 *		 the counts and in store_each_recent (tallyctl top --days).
 *		 site and path are COLLATE "C", so that ORDER BY is bytewise
 *		 like LMDB's keys and export is the same file.
 *   tally_counts (series_id, day, node, views, visitors)
 *		 a day's counts: one row PER NODE, summed on read, so that
 *		 concurrent nodes never wait on one site's row. tallyctl
 *		 writes node ''. All-time counts are the sum of a series'
 *		 rows plus its adjustment: nothing to keep in step.
 *   tally_visitors (day, series_hash, visitor)
 *		 the visitor ids of today and yesterday: its primary key
 *		 decides, across every node, whether a visitor is new
 *		 (INSERT ... ON CONFLICT DO NOTHING RETURNING).
 *   tally_referrers (site, day, host, node, views)
 *		 referring hosts, one row per node like the counts.
 *   tally_ledger (node, seq, day)
 *		 the last flush applied of each node: a flush carries its
 *		 sequence number and is applied only when it is above it,
 *		 so that a flush sent again after a lost answer counts once.
 *   tally_salts (day, salt) UNLOGGED
 *		 the day's visitor salt, shared by every node: the first
 *		 inserted wins (ON CONFLICT DO NOTHING, then read). UNLOGGED
 *		 keeps it out of WAL, standbys and backups; a node puts its
 *		 salts back when it reconnects (a failover empties it).
 *
 * Reads sum the per-node rows (sum(...) GROUP BY), as numeric, so that
 * the sum cannot overflow; the text is parsed here.
 *
 * The flush (cached commit) is one statement of data-modifying CTEs over
 * arrays sent in binary (unnest), see FLUSH_SQL below: it claims the
 * node's next sequence number in tally_ledger (the whole statement does
 * nothing when the number was already applied), creates missing series
 * (INSERT ... SELECT ... WHERE NOT EXISTS, so that no identity value is
 * spent on series that exist), inserts the visitor ids (ON CONFLICT DO
 * NOTHING RETURNING: only the new ones come back), upserts the node's
 * count rows, adding the views sent and the visitors actually inserted,
 * in series and day order (rows locked in one order by every node: no
 * deadlock), upserts the referrer rows, and answers the absolute counts
 * of every series it touched.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

#include "tally/store.h"

#include "store_backend.h"

/* The schema of the tables below; tally_meta's 'schema' row. */
#define PG_SCHEMA_VERSION	1
#define REFERRER_SITE_MAX	255	/* as LMDB's: the longest site kept */
#define MAX_PARAMS		8

struct pg_store {
	struct store base;
	PGconn	*conn;
	char	*url;		/* as given: libpq needs it to reconnect */
	char	 where[512];	/* the URL without its password */
	int	 flags;
	bool	 busy;		/* direct: a view or transaction is open */
	uint64_t version;	/* commits seen by this process */
	uint64_t reconnects;
};

struct pg_view {
	struct store_view base;
	struct pg_store *st;
	bool	 active;
	bool	 in_txn;	/* a write transaction's view: no BEGIN/END */
	uint64_t version;
};

struct pg_txn {
	struct store_txn base;
	struct pg_store *st;
	struct pg_view view;	/* of the transaction, for store_txn_view */
};

/* Parameters of one statement: text, or binary where marked. */
struct params {
	int	 n;
	const char *val[MAX_PARAMS];
	int	 len[MAX_PARAMS];
	int	 fmt[MAX_PARAMS];
	char	 num[MAX_PARAMS][24];
};

static void
p_text(struct params *p, const char *s)
{
	p->val[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void
p_i64(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, v);
	p_text(p, p->num[p->n]);
}

static void
p_bytes(struct params *p, const void *b, size_t len)
{
	p->val[p->n] = b;
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

/*
 * The location for messages: user, host, port and database, never the
 * password (nor any other parameter, which might hold one).
 */
static void
safe_location(const char *url, char *out, size_t outsz)
{
	PQconninfoOption *opts, *o;
	const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;

	if ((opts = PQconninfoParse(url, NULL)) == NULL) {
		snprintf(out, outsz, "postgresql://(unreadable URL)");
		return;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(out, outsz, "postgresql://%s%s%s%s%s/%s", user ? user : "",
	    user ? "@" : "", host ? host : "", port ? ":" : "",
	    port ? port : "", db ? db : "");
	PQconninfoFree(opts);
}

/* A failed statement: UNAVAILABLE when the database is out of reach
 * (no connection, the server going away, a standby after failover),
 * ERROR otherwise. */
static int
failed(struct pg_store *st, const char *step, const PGresult *res)
{
	const char *msg, *state;
	size_t len;

	msg = res ? PQresultErrorMessage(res) : "";
	if (msg[0] == '\0')
		msg = PQerrorMessage(st->conn);
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	store_set_error("%s: %.*s", step, (int)len, msg);
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(st->conn) == CONNECTION_BAD || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "25006") == 0)
		return STORE_UNAVAILABLE;
	return STORE_ERROR;
}

/* Runs one statement; *out (when asked for) holds its rows. */
static int
exec_p(struct pg_store *st, const char *step, const char *sql,
    const struct params *p, int binary, PGresult **out)
{
	PGresult *res;
	ExecStatusType s;
	int rc;

	if (out)
		*out = NULL;
	res = PQexecParams(st->conn, sql, p ? p->n : 0, NULL,
	    p ? p->val : NULL, p ? p->len : NULL, p ? p->fmt : NULL, binary);
	s = PQresultStatus(res);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		if (out)
			*out = res;
		else
			PQclear(res);
		return STORE_OK;
	}
	rc = failed(st, step, res);
	PQclear(res);
	return rc;
}

static int
exec0(struct pg_store *st, const char *step, const char *sql)
{
	return exec_p(st, step, sql, NULL, 0, NULL);
}

/* An integer as numeric text, taken modulo 2^64 the way LMDB's unsigned
 * all-time counts wrap on their way through an import. */
static uint64_t
num_wrap(const char *s)
{
	uint64_t v = 0;
	bool neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return neg ? -v : v;
}

/* A count as numeric text, held to 0 ... STORE_COUNT_MAX. */
static uint64_t
num_count(const char *s)
{
	size_t digits;

	if (*s == '-')
		return 0;
	for (digits = 0; s[digits] == '0' && s[digits + 1] != '\0';)
		s++;
	digits = strspn(s, "0123456789");
	if (digits > 19 || (digits == 19 && strncmp(s,
	    "9223372036854775807", 19) > 0))
		return STORE_COUNT_MAX;
	return num_wrap(s);
}

static const char *
val(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col);
}

/*
 * Opening: the schema.
 */

static const char *const schema_sql[] = {
	"CREATE TABLE IF NOT EXISTS tally_meta ("
	" key text PRIMARY KEY, val bytea NOT NULL)",
	"CREATE TABLE IF NOT EXISTS tally_series ("
	" id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" site text COLLATE \"C\" NOT NULL,"
	" path text COLLATE \"C\" NOT NULL,"
	" adj_views bigint NOT NULL DEFAULT 0,"
	" adj_visitors bigint NOT NULL DEFAULT 0,"
	" UNIQUE (site, path))",
	"CREATE TABLE IF NOT EXISTS tally_counts ("
	" series_id bigint NOT NULL, day integer NOT NULL,"
	" node text NOT NULL, views bigint NOT NULL,"
	" visitors bigint NOT NULL,"
	" PRIMARY KEY (series_id, day, node))",
	/* top --days: a window over every page is one range of days. */
	"CREATE INDEX IF NOT EXISTS tally_counts_day ON tally_counts (day)",
	"CREATE TABLE IF NOT EXISTS tally_visitors ("
	" day integer NOT NULL, series_hash bigint NOT NULL,"
	" visitor bigint NOT NULL,"
	" PRIMARY KEY (day, series_hash, visitor))",
	"CREATE TABLE IF NOT EXISTS tally_referrers ("
	" site text COLLATE \"C\" NOT NULL, day integer NOT NULL,"
	" host text COLLATE \"C\" NOT NULL, node text NOT NULL,"
	" views bigint NOT NULL,"
	" PRIMARY KEY (site, day, host, node))",
	"CREATE TABLE IF NOT EXISTS tally_ledger ("
	" node text PRIMARY KEY, seq bigint NOT NULL, day integer NOT NULL)",
	"CREATE UNLOGGED TABLE IF NOT EXISTS tally_salts ("
	" day integer PRIMARY KEY, salt bytea NOT NULL)",
};

/* Checks (and, when writable, creates or migrates) the schema, in one
 * transaction. */
static int
schema_init(struct pg_store *st)
{
	char vbuf[16];
	struct params p = { 0 };
	PGresult *res;
	size_t i;
	long version;
	int rc;

	if ((rc = exec0(st, "starting the schema check", "BEGIN")) != STORE_OK)
		return rc;
	if (!(st->flags & STORE_READONLY))
		for (i = 0; i < sizeof(schema_sql) / sizeof(schema_sql[0]); i++)
			if ((rc = exec0(st, "creating the tables",
			    schema_sql[i])) != STORE_OK)
				goto bad;
	rc = exec_p(st, "reading the schema version",
	    "SELECT convert_from(val, 'UTF8') FROM tally_meta "
	    "WHERE key = 'schema'", NULL, 0, &res);
	if (rc != STORE_OK) {
		if (strstr(store_error(NULL), "does not exist"))
			store_set_error("not a tally store (no schema)");
		goto bad;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		if (st->flags & STORE_READONLY) {
			store_set_error("not a tally store (no schema)");
			rc = STORE_ERROR;
			goto bad;
		}
		snprintf(vbuf, sizeof(vbuf), "%d", PG_SCHEMA_VERSION);
		p_bytes(&p, vbuf, strlen(vbuf));
		if ((rc = exec_p(st, "writing the schema version",
		    "INSERT INTO tally_meta (key, val) VALUES ('schema', $1) "
		    "ON CONFLICT (key) DO NOTHING", &p, 0, NULL)) != STORE_OK)
			goto bad;
	} else {
		version = strtol(val(res, 0, 0), NULL, 10);
		PQclear(res);
		if (version != PG_SCHEMA_VERSION) {
			store_set_error("store schema version %ld is %s than "
			    "this tally's (%d); refusing to use it", version,
			    version > PG_SCHEMA_VERSION ? "newer" : "older",
			    PG_SCHEMA_VERSION);
			rc = STORE_ERROR;
			goto bad;
		}
	}
	return exec0(st, "committing the schema", "COMMIT");
bad:
	PQclear(PQexec(st->conn, "ROLLBACK"));
	return rc;
}

/* The server's notices ("relation ... already exists, skipping") are
 * not tally's to print. */
static void
quiet(void *arg, const char *message)
{
}

static int
pg_open(struct store **out, const char *url, int flags, char *err,
    size_t errlen)
{
	struct pg_store *st;
	int rc, tries;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->url = strdup(url)) == NULL) {
		free(st);
		snprintf(err, errlen, "%s", strerror(errno));
		return STORE_ERROR;
	}
	st->base.ops = &store_pg_ops;
	st->flags = flags;
	safe_location(url, st->where, sizeof(st->where));
	st->conn = PQconnectdb(url);
	PQsetNoticeProcessor(st->conn, quiet, NULL);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		failed(st, "connecting", NULL);
		snprintf(err, errlen, "%s: %s", st->where, store_error(NULL));
		rc = STORE_UNAVAILABLE;
		goto bad;
	}
	/* Nodes starting at once may race to create the same table: the
	 * loser sees a duplicate and finds the tables there next time. */
	for (tries = 0; (rc = schema_init(st)) == STORE_ERROR && tries < 2 &&
	    strstr(store_error(NULL), "duplicate key") != NULL; tries++)
		;
	if (rc != STORE_OK) {
		snprintf(err, errlen, "%s: %s", st->where, store_error(NULL));
		goto bad;
	}
	*out = &st->base;
	return STORE_OK;
bad:
	PQfinish(st->conn);
	free(st->url);
	free(st);
	return rc;
}

static void
pg_close(struct store *base_st)
{
	struct pg_store *st = (struct pg_store *)base_st;

	if (st == NULL)
		return;
	PQfinish(st->conn);
	free(st->url);
	free(st);
}

static uint64_t
pg_reconnects(struct store *base_st)
{
	struct pg_store *st = (struct pg_store *)base_st;

	return __atomic_load_n(&st->reconnects, __ATOMIC_RELAXED);
}

/* A lost connection is made again before the next statement; the
 * statement itself then runs on the new one. */
static int
reconnect(struct pg_store *st)
{
	if (PQstatus(st->conn) == CONNECTION_OK)
		return STORE_OK;
	PQreset(st->conn);
	PQsetNoticeProcessor(st->conn, quiet, NULL);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		failed(st, "connecting again", NULL);
		return STORE_UNAVAILABLE;
	}
	__atomic_add_fetch(&st->reconnects, 1, __ATOMIC_RELAXED);
	return STORE_OK;
}

static int
pg_stat(struct store *base_st, struct store_stat *out)
{
	struct pg_store *st = (struct pg_store *)base_st;
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	/* PostgreSQL's own function: the size is PostgreSQL's notion. */
	rc = exec_p(st, "reading the tables' size",
	    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::text "
	    "FROM pg_class c WHERE c.relname LIKE 'tally\\_%' "
	    "AND c.relkind = 'r'", NULL, 0, &res);
	if (rc != STORE_OK)
		return rc;
	out->used_bytes = out->map_bytes = num_wrap(val(res, 0, 0));
	PQclear(res);
	return STORE_OK;
}

/*
 * Views (direct mode).
 */

static struct store_view *
pg_view_new(struct store *base_st)
{
	struct pg_store *st = (struct pg_store *)base_st;
	struct pg_view *v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->base.ops = &store_pg_ops;
	v->st = st;
	return &v->base;
}

static void pg_view_end(struct store_view *);

static void
pg_view_free(struct store_view *base_v)
{
	struct pg_view *v = (struct pg_view *)base_v;

	if (v == NULL)
		return;
	pg_view_end(&v->base);
	free(v);
}

static int
pg_view_begin(struct store_view *base_v)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct pg_store *st = v->st;
	int rc;

	if (v->active)
		return STORE_OK;
	if (st->busy) {
		store_set_error("a view or transaction of this store is "
		    "already open");
		return STORE_ERROR;
	}
	if ((rc = reconnect(st)) != STORE_OK ||
	    (rc = exec0(st, "starting a read", "BEGIN ISOLATION LEVEL "
	    "REPEATABLE READ READ ONLY")) != STORE_OK)
		return rc;
	st->busy = true;
	v->active = true;
	v->version = st->version;
	return STORE_OK;
}

static void
pg_view_end(struct store_view *base_v)
{
	struct pg_view *v = (struct pg_view *)base_v;

	if (!v->active || v->in_txn)
		return;
	PQclear(PQexec(v->st->conn, "COMMIT"));
	v->st->busy = false;
	v->active = false;
}

static uint64_t
pg_view_version(struct store_view *base_v)
{
	struct pg_view *v = (struct pg_view *)base_v;

	return v->active ? v->version : 0;
}

static uint64_t
pg_txn_version(struct store_txn *base_t)
{
	struct pg_txn *t = (struct pg_txn *)base_t;

	return t->st->version + 1;
}

/*
 * Reads. All-time counts are the sum of the rows plus the adjustment;
 * a site's pages are its series with a path.
 */

#define SERIES_COLUMNS \
	"s.id, s.site, s.path, " \
	"(coalesce(t.v, 0) + s.adj_views)::text, " \
	"(coalesce(t.u, 0) + s.adj_visitors)::text, " \
	"CASE WHEN s.path = '' THEN (SELECT count(*) FROM tally_series p " \
	"WHERE p.site = s.site AND p.path <> '') ELSE 0 END, " \
	"s.adj_views, s.adj_visitors "
#define SERIES_TOTALS \
	"LEFT JOIN (SELECT series_id, sum(views) AS v, sum(visitors) AS u " \
	"FROM tally_counts GROUP BY series_id) t ON t.series_id = s.id "

/* The columns above as a series_counts (day left out). */
static void
series_row(const PGresult *res, int i, struct series_counts *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->exists = true;
	sc->id = (uint32_t)strtoull(val(res, i, 0), NULL, 10);
	sc->total.views = num_wrap(val(res, i, 3));
	sc->total.visitors = num_wrap(val(res, i, 4));
	sc->npages = (uint32_t)strtoul(val(res, i, 5), NULL, 10);
}

/* One series, with its counts of day. */
static int
series_get(struct pg_store *st, const char *site, const char *path, int day,
    struct series_counts *out, int64_t adj[2])
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	p_text(&p, site);
	p_text(&p, path);
	p_i64(&p, day);
	rc = exec_p(st, "reading a series", "SELECT " SERIES_COLUMNS ", "
	    "(SELECT sum(views) FROM tally_counts d WHERE d.series_id = s.id "
	    "AND d.day = $3)::text, "
	    "(SELECT sum(visitors) FROM tally_counts d WHERE d.series_id = s.id "
	    "AND d.day = $3)::text "
	    "FROM (SELECT * FROM tally_series WHERE site = $1 AND path = $2) s "
	    "LEFT JOIN (SELECT series_id, sum(views) AS v, sum(visitors) AS u "
	    "FROM tally_counts WHERE series_id = (SELECT id FROM tally_series "
	    "WHERE site = $1 AND path = $2) GROUP BY series_id) t "
	    "ON t.series_id = s.id", &p, 0, &res);
	if (rc != STORE_OK)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	series_row(res, 0, out);
	out->day.views = num_count(val(res, 0, 8));
	out->day.visitors = num_count(val(res, 0, 9));
	if (adj) {
		adj[0] = strtoll(val(res, 0, 6), NULL, 10);
		adj[1] = strtoll(val(res, 0, 7), NULL, 10);
	}
	PQclear(res);
	return STORE_OK;
}

static int
pg_get(struct store_view *base_v, const char *site, const char *path, int day,
    struct series_counts *out)
{
	struct pg_view *v = (struct pg_view *)base_v;
	int rc;

	rc = series_get(v->st, site, path, day, out, NULL);
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

static struct store_view *
pg_txn_view(struct store_txn *base_t)
{
	struct pg_txn *t = (struct pg_txn *)base_t;

	t->view.base.ops = &store_pg_ops;
	t->view.st = t->st;
	t->view.active = true;
	t->view.in_txn = true;
	return &t->view.base;
}

static int
pg_txn_get(struct store_txn *base_t, const char *site, const char *path,
    int day, struct series_counts *out)
{
	return pg_get(pg_txn_view(base_t), site, path, day, out);
}

/* "schema" and "next_id" are LMDB's records: answered from what this
 * store has, so that tallyctl check reads them the same way. */
static int
pg_meta_get(struct store_view *base_v, const char *key, void *out, size_t *len)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct pg_store *st = v->st;
	struct params p = { 0 };
	PGresult *res;
	uint32_t u32;
	size_t n;
	int rc, i;

	if (strcmp(key, "schema") == 0 || strcmp(key, "next_id") == 0) {
		if (*len < sizeof(u32)) {
			store_set_error("meta %s too large", key);
			return STORE_ERROR;
		}
		u32 = STORE_SCHEMA_VERSION;
		if (strcmp(key, "next_id") == 0) {
			if ((rc = exec_p(st, "reading the series ids",
			    "SELECT coalesce(max(id), 0) + 1 FROM tally_series",
			    NULL, 0, &res)) != STORE_OK)
				return rc;
			u32 = (uint32_t)strtoul(val(res, 0, 0), NULL, 10);
			PQclear(res);
		}
		memcpy(out, &u32, sizeof(u32));
		*len = sizeof(u32);
		return STORE_OK;
	}
	if (strcmp(key, STORE_META_SALTS) == 0) {
		if ((rc = exec_p(st, "reading the salts", "SELECT day, salt "
		    "FROM tally_salts ORDER BY day", NULL, 1, &res)) !=
		    STORE_OK)
			return rc;
		n = 0;
		for (i = 0; i < PQntuples(res); i++) {
			int32_t day;
			uint32_t be;

			if (PQgetlength(res, i, 1) != STORE_SALT_BYTES ||
			    PQgetlength(res, i, 0) != 4)
				continue;
			if (n + STORE_SALT_REC > *len) {
				PQclear(res);
				store_set_error("meta %s too large", key);
				return STORE_ERROR;
			}
			memcpy(&be, PQgetvalue(res, i, 0), 4);
			day = (int32_t)ntohl(be);
			memcpy((char *)out + n, &day, 4);
			memcpy((char *)out + n + 4, PQgetvalue(res, i, 1),
			    STORE_SALT_BYTES);
			n += STORE_SALT_REC;
		}
		PQclear(res);
		*len = n;
		return n > 0 ? STORE_OK : STORE_NOTFOUND;
	}
	p_text(&p, key);
	if ((rc = exec_p(st, "reading meta", "SELECT val FROM tally_meta "
	    "WHERE key = $1", &p, 1, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return STORE_NOTFOUND;
	}
	n = (size_t)PQgetlength(res, 0, 0);
	if (n > *len) {
		PQclear(res);
		store_set_error("meta %s too large", key);
		return STORE_ERROR;
	}
	memcpy(out, PQgetvalue(res, 0, 0), n);
	*len = n;
	PQclear(res);
	return STORE_OK;
}

static int
pg_each_series(struct store_view *base_v, const char *site, store_series_cb cb,
    void *arg)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct series_counts sc;
	struct params p = { 0 };
	PGresult *res;
	int rc, i, n;

	p_text(&p, site);
	if ((rc = exec_p(v->st, "reading the series", "SELECT "
	    SERIES_COLUMNS "FROM tally_series s " SERIES_TOTALS
	    "WHERE $1::text IS NULL OR s.site = $1 ORDER BY s.site, s.path",
	    &p, 0, &res)) != STORE_OK)
		return rc;
	n = PQntuples(res);
	for (i = 0; i < n && rc == STORE_OK; i++) {
		series_row(res, i, &sc);
		rc = cb(arg, val(res, i, 1), val(res, i, 2), &sc);
	}
	PQclear(res);
	return rc;
}

static int
pg_each_day(struct store_view *base_v, const char *site, const char *path,
    int from, int to, bool with_adjust, store_row_cb cb, void *arg)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct series_counts sc;
	struct params p = { 0 };
	struct counts c;
	PGresult *res;
	int64_t adj[2];
	int rc, i, n;

	rc = series_get(v->st, site, path, -1, &sc, adj);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (with_adjust && (adj[0] || adj[1])) {
		c.views = (uint64_t)adj[0];
		c.visitors = (uint64_t)adj[1];
		if ((rc = cb(arg, site, path, DAY_ADJUST, &c)) != 0)
			return rc;
	}
	if (from < 0)
		from = 0;
	if (to < from)
		return STORE_OK;
	p_i64(&p, sc.id);
	p_i64(&p, from);
	p_i64(&p, to);
	if ((rc = exec_p(v->st, "reading days", "SELECT day, "
	    "sum(views)::text, sum(visitors)::text FROM tally_counts "
	    "WHERE series_id = $1 AND day BETWEEN $2 AND $3 "
	    "GROUP BY day ORDER BY day", &p, 0, &res)) != STORE_OK)
		return rc;
	n = PQntuples(res);
	for (i = 0; i < n && rc == STORE_OK; i++) {
		c.views = num_count(val(res, i, 1));
		c.visitors = num_count(val(res, i, 2));
		rc = cb(arg, site, path, atoi(val(res, i, 0)), &c);
	}
	PQclear(res);
	return rc;
}

/* Every day is in the one table of counts, found by day through its
 * index: the "recent" window covers them all. */
static int
pg_recent_floor(struct store_view *base_v, int *floor)
{
	*floor = 0;
	return STORE_OK;
}

static int
pg_each_recent(struct store_view *base_v, int from, int to, store_recent_cb cb,
    void *arg)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct params p = { 0 };
	struct counts c;
	PGresult *res;
	int rc, i, n;

	if (from < 0)
		from = 0;
	if (to < from)
		return STORE_OK;
	p_i64(&p, from);
	p_i64(&p, to);
	if ((rc = exec_p(v->st, "reading recent days", "SELECT series_id, "
	    "day, sum(views)::text, sum(visitors)::text FROM tally_counts "
	    "WHERE day BETWEEN $1 AND $2 GROUP BY day, series_id "
	    "ORDER BY day, series_id", &p, 0, &res)) != STORE_OK)
		return rc;
	n = PQntuples(res);
	for (i = 0; i < n && rc == STORE_OK; i++) {
		c.views = num_count(val(res, i, 2));
		c.visitors = num_count(val(res, i, 3));
		rc = cb(arg, (uint32_t)strtoul(val(res, i, 0), NULL, 10),
		    atoi(val(res, i, 1)), &c);
	}
	PQclear(res);
	return rc;
}

static int
pg_series_name(struct store_view *base_v, uint32_t id, char *site,
    size_t sitesz, char *path, size_t pathsz)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct params p = { 0 };
	PGresult *res;
	int rc;

	p_i64(&p, id);
	if ((rc = exec_p(v->st, "reading a series name", "SELECT site, path "
	    "FROM tally_series WHERE id = $1", &p, 0, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) == 0)
		rc = STORE_NOTFOUND;
	else if ((size_t)PQgetlength(res, 0, 0) >= sitesz ||
	    (size_t)PQgetlength(res, 0, 1) >= pathsz) {
		store_set_error("a series name too long");
		rc = STORE_ERROR;
	} else {
		memcpy(site, val(res, 0, 0), (size_t)PQgetlength(res, 0, 0) + 1);
		memcpy(path, val(res, 0, 1), (size_t)PQgetlength(res, 0, 1) + 1);
	}
	PQclear(res);
	return rc;
}

static int
pg_max_id(struct store_view *base_v, uint32_t *max)
{
	struct pg_view *v = (struct pg_view *)base_v;
	PGresult *res;
	int rc;

	if ((rc = exec_p(v->st, "reading the series ids", "SELECT "
	    "coalesce(max(id), 0) FROM tally_series", NULL, 0, &res)) !=
	    STORE_OK)
		return rc;
	*max = (uint32_t)strtoul(val(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

static int
pg_orphan_rows(struct store_view *base_v, uint64_t *orphans)
{
	struct pg_view *v = (struct pg_view *)base_v;
	PGresult *res;
	int rc;

	if ((rc = exec_p(v->st, "reading the day rows", "SELECT count(*) "
	    "FROM tally_counts c WHERE NOT EXISTS (SELECT 1 FROM tally_series "
	    "s WHERE s.id = c.series_id)", NULL, 0, &res)) != STORE_OK)
		return rc;
	*orphans = num_wrap(val(res, 0, 0));
	PQclear(res);
	return STORE_OK;
}

/*
 * Write transactions (direct mode): a database transaction, each call
 * a statement in it. tallyctl writes its rows as node ''.
 */

static int
pg_write_begin(struct store *base_st, struct store_txn **out)
{
	struct pg_store *st = (struct pg_store *)base_st;
	struct pg_txn *t;
	int rc;

	*out = NULL;
	if (st->flags & STORE_READONLY) {
		store_set_error("store opened read-only");
		return STORE_ERROR;
	}
	if (st->busy) {
		store_set_error("a view or transaction of this store is "
		    "already open");
		return STORE_ERROR;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		store_set_error("%s", strerror(errno));
		return STORE_ERROR;
	}
	if ((rc = reconnect(st)) != STORE_OK ||
	    (rc = exec0(st, "starting a write", "BEGIN")) != STORE_OK) {
		free(t);
		return rc;
	}
	st->busy = true;
	t->base.ops = &store_pg_ops;
	t->st = st;
	*out = &t->base;
	return STORE_OK;
}

static int
pg_commit(struct store_txn *base_t)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct pg_store *st = t->st;
	int rc;

	rc = exec0(st, "committing", "COMMIT");
	if (rc == STORE_OK)
		st->version++;
	st->busy = false;
	free(t);
	return rc;
}

static void
pg_abort(struct store_txn *base_t)
{
	struct pg_txn *t = (struct pg_txn *)base_t;

	if (t == NULL)
		return;
	PQclear(PQexec(t->st->conn, "ROLLBACK"));
	t->st->busy = false;
	free(t);
}

/* The id of a series, creating it, and its site's, when missing. Only a
 * missing series takes an identity value. */
static int
series_id(struct pg_store *st, const char *site, const char *path,
    int64_t *id)
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	if (path[0] != '\0' &&
	    (rc = series_id(st, site, SITE_SERIES, id)) != STORE_OK)
		return rc;
	p_text(&p, site);
	p_text(&p, path);
	if ((rc = exec_p(st, "creating a series", "INSERT INTO tally_series "
	    "(site, path) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM "
	    "tally_series WHERE site = $1 AND path = $2) "
	    "ON CONFLICT (site, path) DO NOTHING", &p, 0, NULL)) != STORE_OK ||
	    (rc = exec_p(st, "reading a series", "SELECT id FROM tally_series "
	    "WHERE site = $1 AND path = $2", &p, 0, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		store_set_error("creating a series: it is not there");
		return STORE_ERROR;
	}
	*id = strtoll(val(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

/* Adds to a row of the node, saturating (a hit) or as it is. */
#define ADD_SQL \
	"INSERT INTO tally_counts AS c (series_id, day, node, views, " \
	"visitors) VALUES ($1, $2, '', $3, $4) " \
	"ON CONFLICT (series_id, day, node) DO UPDATE SET " \
	"views = CASE WHEN c.views > 9223372036854775807 - excluded.views " \
	"THEN 9223372036854775807 ELSE c.views + excluded.views END, " \
	"visitors = CASE WHEN c.visitors > 9223372036854775807 - " \
	"excluded.visitors THEN 9223372036854775807 " \
	"ELSE c.visitors + excluded.visitors END"

static int
add_counts(struct pg_txn *t, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors, bool exact)
{
	struct series_counts sc;
	struct params p = { 0 };
	int64_t id;
	int rc;

	if (day < 0) {
		store_set_error("bad day");
		return STORE_ERROR;
	}
	if ((rc = series_id(t->st, site, path, &id)) != STORE_OK)
		return rc;
	if (views > STORE_COUNT_MAX)
		views = STORE_COUNT_MAX;
	if (visitors > STORE_COUNT_MAX)
		visitors = STORE_COUNT_MAX;
	if (exact) {
		/* An imported row must fit as it is. */
		if ((rc = series_get(t->st, site, path, day, &sc, NULL)) !=
		    STORE_OK)
			return rc;
		if (views > STORE_COUNT_MAX - sc.day.views ||
		    visitors > STORE_COUNT_MAX - sc.day.visitors) {
			store_set_error("the day's %s would pass the largest "
			    "count (%" PRId64 ")", views > STORE_COUNT_MAX -
			    sc.day.views ? "views" : "visitors",
			    (int64_t)STORE_COUNT_MAX);
			return STORE_ERROR;
		}
	}
	p_i64(&p, id);
	p_i64(&p, day);
	p_i64(&p, (int64_t)views);
	p_i64(&p, (int64_t)visitors);
	return exec_p(t->st, "writing a day", ADD_SQL, &p, 0, NULL);
}

static int
pg_add(struct store_txn *base_t, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors)
{
	return add_counts((struct pg_txn *)base_t, site, path, day, views,
	    visitors, false);
}

static int
pg_add_exact(struct store_txn *base_t, const char *site, const char *path,
    int day, uint64_t views, uint64_t visitors)
{
	return add_counts((struct pg_txn *)base_t, site, path, day, views,
	    visitors, true);
}

static int
write_adjust(struct pg_txn *t, int64_t id, int64_t views, int64_t visitors)
{
	struct params p = { 0 };

	p_i64(&p, id);
	p_i64(&p, views);
	p_i64(&p, visitors);
	return exec_p(t->st, "writing an adjustment", "UPDATE tally_series "
	    "SET adj_views = $2, adj_visitors = $3 WHERE id = $1", &p, 0,
	    NULL);
}

static int
pg_add_adjust(struct store_txn *base_t, const char *site, const char *path,
    int64_t views, int64_t visitors)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct series_counts sc;
	int64_t id, adj[2];
	int rc;

	if ((rc = series_id(t->st, site, path, &id)) != STORE_OK ||
	    (rc = series_get(t->st, site, path, -1, &sc, adj)) != STORE_OK)
		return rc;
	if (__builtin_add_overflow(adj[0], views, &adj[0]) ||
	    __builtin_add_overflow(adj[1], visitors, &adj[1])) {
		store_set_error("the all-time "
		    "adjustment would leave the range of counts");
		return STORE_ERROR;
	}
	return write_adjust(t, id, adj[0], adj[1]);
}

/* As LMDB's: the adjustment that makes the rows (total - adj) add up to
 * want; -1 when it is out of int64_t's range. */
static int
adjust_to(uint64_t total, int64_t adj, uint64_t want, int64_t *out)
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

static int
pg_set_total(struct store_txn *base_t, const char *site, const char *path,
    uint64_t views, uint64_t visitors)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct series_counts sc;
	int64_t id, adj[2];
	int rc;

	if (views > STORE_COUNT_MAX || visitors > STORE_COUNT_MAX) {
		store_set_error("more than the "
		    "largest count (%" PRId64 ")", (int64_t)STORE_COUNT_MAX);
		return STORE_ERROR;
	}
	if ((rc = series_id(t->st, site, path, &id)) != STORE_OK ||
	    (rc = series_get(t->st, site, path, -1, &sc, adj)) != STORE_OK)
		return rc;
	if (adjust_to(sc.total.views, adj[0], views, &adj[0]) == -1 ||
	    adjust_to(sc.total.visitors, adj[1], visitors, &adj[1]) == -1) {
		store_set_error("too far from what "
		    "the daily rows add up to");
		return STORE_ERROR;
	}
	return write_adjust(t, id, adj[0], adj[1]);
}

/* Deletes the series of site matching path ($2 NULL: every one), their
 * rows and the visitor ids seen on them. */
static int
delete_series(struct pg_txn *t, const char *site, const char *path)
{
	struct params p = { 0 };
	PGresult *res;
	char *list = NULL, *np;
	size_t len = 0, cap = 0;
	int rc, i, n;

	p_text(&p, site);
	p_text(&p, path);
	if ((rc = exec_p(t->st, "reading the series to delete", "SELECT path "
	    "FROM tally_series WHERE site = $1 AND ($2::text IS NULL OR "
	    "path = $2)", &p, 0, &res)) != STORE_OK)
		return rc;
	n = PQntuples(res);
	/* The hashes as an array literal: {h,h,...} */
	for (i = 0; i <= n; i++) {
		if (len + 24 > cap) {
			cap = cap ? cap * 2 : 256;
			if ((np = realloc(list, cap)) == NULL) {
				free(list);
				PQclear(res);
				store_set_error("out of memory");
				return STORE_ERROR;
			}
			list = np;
		}
		if (i == n)
			break;
		len += (size_t)snprintf(list + len, cap - len, "%s%" PRId64,
		    i ? "," : "{", (int64_t)store_series_hash(site,
		    val(res, i, 0)));
	}
	snprintf(list + len, cap - len, "%s", n ? "}" : "{}");
	PQclear(res);
	{
		struct params h = { 0 };

		p_text(&h, list);
		rc = exec_p(t->st, "deleting seen visitors", "DELETE FROM "
		    "tally_visitors WHERE series_hash = ANY ($1::bigint[])",
		    &h, 0, NULL);
	}
	free(list);
	if (rc != STORE_OK ||
	    (rc = exec_p(t->st, "deleting days", "DELETE FROM tally_counts "
	    "WHERE series_id IN (SELECT id FROM tally_series WHERE site = $1 "
	    "AND ($2::text IS NULL OR path = $2))", &p, 0, NULL)) != STORE_OK)
		return rc;
	return exec_p(t->st, "deleting a series", "DELETE FROM tally_series "
	    "WHERE site = $1 AND ($2::text IS NULL OR path = $2)", &p, 0, NULL);
}

static int pg_referrer_reset(struct store_txn *, const char *);

static int
pg_reset(struct store_txn *base_t, const char *site, const char *path)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	int rc;

	/* A referrer is the site's: it goes with the whole site. */
	if (path == NULL && (rc = pg_referrer_reset(base_t, site)) != STORE_OK)
		return rc;
	return delete_series(t, site, path);
}

/* A shared store's salts: one per day, the first inserted winning. Old
 * days go: a salt lives for today and yesterday. */
static int
salts_put(struct pg_store *st, const unsigned char *recs, size_t len)
{
	struct params p = { 0 };
	int32_t day, newest = INT32_MIN;
	uint32_t be;
	size_t i;
	int rc;

	for (i = 0; i + STORE_SALT_REC <= len; i += STORE_SALT_REC) {
		memcpy(&day, recs + i, 4);
		if (day > newest)
			newest = day;
		be = htonl((uint32_t)day);
		p.n = 0;
		p_bytes(&p, &be, 4);
		p_bytes(&p, recs + i + 4, STORE_SALT_BYTES);
		p.fmt[0] = 1;
		if ((rc = exec_p(st, "writing a salt", "INSERT INTO tally_salts "
		    "(day, salt) VALUES ($1::integer, $2) "
		    "ON CONFLICT (day) DO NOTHING", &p, 0, NULL)) != STORE_OK)
			return rc;
	}
	if (newest == INT32_MIN)
		return STORE_OK;
	p.n = 0;
	p_i64(&p, (int64_t)newest - 1);
	return exec_p(st, "erasing old salts", "DELETE FROM tally_salts "
	    "WHERE day < $1", &p, 0, NULL);
}

static int
pg_meta_put(struct store_txn *base_t, const char *key, const void *v,
    size_t len)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct params p = { 0 };

	if (strcmp(key, STORE_META_SALTS) == 0)
		return salts_put(t->st, v, len);
	p_text(&p, key);
	p_bytes(&p, v, len);
	return exec_p(t->st, "writing meta", "INSERT INTO tally_meta (key, val) "
	    "VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET val = excluded.val",
	    &p, 0, NULL);
}

static int
seen_get(struct pg_store *st, int day, uint64_t series, uint64_t visitor,
    bool *seen)
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	p_i64(&p, day);
	p_i64(&p, (int64_t)series);
	p_i64(&p, (int64_t)visitor);
	if ((rc = exec_p(st, "reading seen visitors", "SELECT 1 FROM "
	    "tally_visitors WHERE day = $1 AND series_hash = $2 AND "
	    "visitor = $3", &p, 0, &res)) != STORE_OK)
		return rc;
	*seen = PQntuples(res) > 0;
	PQclear(res);
	return STORE_OK;
}

static int
pg_seen_get(struct store_view *base_v, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	struct pg_view *v = (struct pg_view *)base_v;

	return seen_get(v->st, day, series, visitor, seen);
}

static int
pg_txn_seen_get(struct store_txn *base_t, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	struct pg_txn *t = (struct pg_txn *)base_t;

	return seen_get(t->st, day, series, visitor, seen);
}

static int
pg_seen_put(struct store_txn *base_t, int day, uint64_t series,
    uint64_t visitor)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct params p = { 0 };

	p_i64(&p, day);
	p_i64(&p, (int64_t)series);
	p_i64(&p, (int64_t)visitor);
	return exec_p(t->st, "writing seen visitors", "INSERT INTO "
	    "tally_visitors (day, series_hash, visitor) VALUES ($1, $2, $3) "
	    "ON CONFLICT DO NOTHING", &p, 0, NULL);
}

static int
pg_seen_prune(struct store_txn *base_t, int day)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct params p = { 0 };

	p_i64(&p, day);
	return exec_p(t->st, "pruning seen visitors", "DELETE FROM "
	    "tally_visitors WHERE day < $1", &p, 0, NULL);
}

/*
 * Referrers: a site's rows per day and host, one per node, summed.
 */

static int
referrer_walk(struct pg_view *v, const char *site, int from, int to,
    store_referrer_cb one, store_referrer_row_cb all, void *arg)
{
	struct params p = { 0 };
	PGresult *res;
	int rc, i, n;

	if (from < 0)
		from = 0;
	if (to < from)
		return STORE_OK;
	p_text(&p, site);
	p_i64(&p, from);
	p_i64(&p, to);
	if ((rc = exec_p(v->st, "reading referrers", "SELECT site, day, host, "
	    "sum(views)::text FROM tally_referrers WHERE ($1::text IS NULL OR "
	    "site = $1) AND day BETWEEN $2 AND $3 GROUP BY site, day, host "
	    "ORDER BY site, day, host", &p, 0, &res)) != STORE_OK)
		return rc;
	n = PQntuples(res);
	for (i = 0; i < n && rc == STORE_OK; i++) {
		if (one != NULL)
			rc = one(arg, atoi(val(res, i, 1)), val(res, i, 2),
			    num_count(val(res, i, 3)));
		else
			rc = all(arg, val(res, i, 0), atoi(val(res, i, 1)),
			    val(res, i, 2), num_count(val(res, i, 3)));
	}
	PQclear(res);
	return rc;
}

static int
pg_each_referrer(struct store_view *base_v, const char *site, int from, int to,
    store_referrer_cb cb, void *arg)
{
	return referrer_walk((struct pg_view *)base_v, site, from, to, cb,
	    NULL, arg);
}

static int
pg_each_referrer_row(struct store_view *base_v, const char *site,
    store_referrer_row_cb cb, void *arg)
{
	return referrer_walk((struct pg_view *)base_v, site, 0, INT_MAX,
	    NULL, cb, arg);
}

/* A day's views from host, and its number of hosts. */
static int
referrer_day(struct pg_store *st, const char *site, int day, const char *host,
    uint64_t *views, uint64_t *nhosts, bool *has_other)
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	p_text(&p, site);
	p_i64(&p, day);
	p_text(&p, host);
	p_text(&p, STORE_REFERRER_OTHER);
	if ((rc = exec_p(st, "reading a referrer", "SELECT "
	    "coalesce(sum(CASE WHEN host = $3 THEN views END), 0)::text, "
	    "count(DISTINCT host), "
	    "count(CASE WHEN host = $3 THEN 1 END), "
	    "count(CASE WHEN host = $4 THEN 1 END) "
	    "FROM tally_referrers WHERE site = $1 AND day = $2", &p, 0,
	    &res)) != STORE_OK)
		return rc;
	*views = num_count(val(res, 0, 0));
	if (nhosts) {
		*nhosts = num_wrap(val(res, 0, 1));
		*has_other = atoi(val(res, 0, 3)) > 0;
	}
	rc = atoi(val(res, 0, 2)) > 0 ? STORE_OK : STORE_NOTFOUND;
	PQclear(res);
	return rc;
}

static int
pg_referrer_get(struct store_view *base_v, const char *site, int day,
    const char *host, uint64_t *views)
{
	struct pg_view *v = (struct pg_view *)base_v;
	int rc;

	*views = 0;
	if (day < 0 || strlen(site) > REFERRER_SITE_MAX ||
	    strlen(host) == 0 || strlen(host) > STORE_REFERRER_MAX)
		return STORE_OK;
	rc = referrer_day(v->st, site, day, host, views, NULL, NULL);
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

#define REFERRER_ADD_SQL \
	"INSERT INTO tally_referrers AS r (site, day, host, node, views) " \
	"VALUES ($1, $2, $3, '', $4) " \
	"ON CONFLICT (site, day, host, node) DO UPDATE SET " \
	"views = CASE WHEN r.views > 9223372036854775807 - excluded.views " \
	"THEN 9223372036854775807 ELSE r.views + excluded.views END"

static int
referrer_put(struct pg_txn *t, const char *site, int day, const char *host,
    uint64_t views, uint32_t max, bool exact)
{
	struct params p = { 0 };
	uint64_t have, nhosts;
	bool has_other;
	int rc;

	if (day < 0 || strlen(site) > REFERRER_SITE_MAX || host[0] == '\0' ||
	    strlen(host) > STORE_REFERRER_MAX) {
		store_set_error("bad referrer row");
		return STORE_ERROR;
	}
	rc = referrer_day(t->st, site, day, host, &have, &nhosts, &has_other);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc;
	/* A new host past the day's max: its views go to "(other)". */
	if (rc == STORE_NOTFOUND && !exact &&
	    strcmp(host, STORE_REFERRER_OTHER) != 0 &&
	    nhosts - has_other >= max)
		host = STORE_REFERRER_OTHER;
	if (views > STORE_COUNT_MAX)
		views = STORE_COUNT_MAX;
	if (exact && views > STORE_COUNT_MAX - have) {
		store_set_error("the day's views from %s would pass the "
		    "largest count (%" PRId64 ")", host,
		    (int64_t)STORE_COUNT_MAX);
		return STORE_ERROR;
	}
	p_text(&p, site);
	p_i64(&p, day);
	p_text(&p, host);
	p_i64(&p, (int64_t)views);
	return exec_p(t->st, "writing a referrer", REFERRER_ADD_SQL, &p, 0,
	    NULL);
}

static int
pg_referrer_add(struct store_txn *base_t, const char *site, int day,
    const char *host, uint64_t views, uint32_t max)
{
	return referrer_put((struct pg_txn *)base_t, site, day, host, views,
	    max, false);
}

static int
pg_referrer_add_exact(struct store_txn *base_t, const char *site, int day,
    const char *host, uint64_t views)
{
	return referrer_put((struct pg_txn *)base_t, site, day, host, views, 0,
	    true);
}

static int
pg_referrer_reset(struct store_txn *base_t, const char *site)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	struct params p = { 0 };

	p_text(&p, site);
	return exec_p(t->st, "deleting referrers", "DELETE FROM "
	    "tally_referrers WHERE site = $1", &p, 0, NULL);
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.stat = pg_stat,
	.reconnects = pg_reconnects,
	.view_new = pg_view_new,
	.view_free = pg_view_free,
	.view_begin = pg_view_begin,
	.view_end = pg_view_end,
	.view_version = pg_view_version,
	.txn_version = pg_txn_version,
	.get = pg_get,
	.meta_get = pg_meta_get,
	.each_series = pg_each_series,
	.each_day = pg_each_day,
	.recent_floor = pg_recent_floor,
	.each_recent = pg_each_recent,
	.series_name = pg_series_name,
	.max_id = pg_max_id,
	.orphan_rows = pg_orphan_rows,
	.write_begin = pg_write_begin,
	.add = pg_add,
	.add_exact = pg_add_exact,
	.add_adjust = pg_add_adjust,
	.set_total = pg_set_total,
	.reset = pg_reset,
	.meta_put = pg_meta_put,
	.txn_view = pg_txn_view,
	.txn_get = pg_txn_get,
	.seen_get = pg_seen_get,
	.txn_seen_get = pg_txn_seen_get,
	.seen_put = pg_seen_put,
	.seen_prune = pg_seen_prune,
	.commit = pg_commit,
	.abort = pg_abort,
	.each_referrer = pg_each_referrer,
	.each_referrer_row = pg_each_referrer_row,
	.referrer_get = pg_referrer_get,
	.referrer_add = pg_referrer_add,
	.referrer_add_exact = pg_referrer_add_exact,
	.referrer_reset = pg_referrer_reset,
};
