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
 *		updates the copy. store_refresh reads what changed since
 *		its last read, so that other nodes' hits show.
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
 *		 rows plus its adjustment.
 *   tally_totals (series_id, node, views, visitors, seq, mark)
 *		 a node's running all-time total of a series: the sum of
 *		 its day rows, written by the same statements, stamped
 *		 with the node's ledger number (seq) of the write and its
 *		 block of 32 numbers (mark). The daemons' refresh reads
 *		 the rows stamped since its last read (index on node,
 *		 mark; see TOTAL_MARK); tallyctl check holds them to the
 *		 day rows.
 *   tally_visitors (day, series_hash, visitor)
 *		 the visitor ids of today and yesterday: its primary key
 *		 decides, across every node, whether a visitor is new
 *		 (INSERT ... RETURNING, see FLUSH_FAST).
 *   tally_referrers (site, day, host, node, views)
 *		 referring hosts, one row per node like the counts.
 *   tally_referrer_days (site, day, hosts text[])
 *		 the hosts a site keeps on a day, at most max_referrers:
 *		 the one row that makes the cap exact across nodes (see
 *		 FLUSH_SQL), taken only by flushes that bring a new host.
 *   tally_ledger (node, seq, day)
 *		 the last flush applied of each node: a flush carries its
 *		 sequence number and is applied only when it is above it,
 *		 so that a flush sent again after a lost answer counts once.
 *		 Node '' numbers tallyctl's write transactions. Entries of
 *		 nodes gone for good are pruned (ledger_prune).
 *   tally_salts (day, salt) UNLOGGED
 *		 the day's visitor salt, shared by every node: the first
 *		 inserted wins (ON CONFLICT DO NOTHING, then read). UNLOGGED
 *		 keeps it out of WAL, standbys and backups; a node puts its
 *		 salts back when it reconnects (a failover empties it).
 *
 * Reads sum the per-node rows (sum(...) GROUP BY), as numeric, so that
 * the sum cannot overflow; the text is parsed here.
 *
 * The flush (cached commit) is ONE statement of data-modifying CTEs over
 * arrays sent in binary (unnest), see FLUSH_SQL below: it holds
 * tallyctl's reset number FOR SHARE (and does nothing when it is not
 * the one the node's copy was read at), claims the
 * node's next sequence number in tally_ledger (the whole statement does
 * nothing when the number was already applied), creates the series the
 * copy lacks (INSERT ... SELECT ... WHERE NOT EXISTS, so that no
 * identity value is spent on series that exist, ON CONFLICT (site,
 * path) DO UPDATE for one another node creates at the same moment),
 * inserts the visitor ids (RETURNING: only the new ones come back),
 * writes the node's count rows and running totals, adding the views
 * sent and the visitors actually inserted (both without ON CONFLICT
 * where they can, see FLUSH_FAST),
 * upserts the referrer rows (and, for a host new to the day, the day's
 * row of hosts), and answers the absolute counts of every series it
 * touched, new series with their ids. Rows other nodes may write are
 * locked in one order by every node: no deadlock.
 *
 * A node is named by libpq's application_name when the URL gives one,
 * else by host name and process id: names must differ between nodes
 * running at once. A node starts its sequence after its ledger entry.
 *
 * A flush whose answer is lost (the connection broke) may have counted
 * or not. The commit answers STORE_UNAVAILABLE and keeps it; the counter
 * puts the batch back. Before the next flush, SELECT ... FOR UPDATE of
 * the node's ledger entry (waiting for the lost statement, should it
 * still run) tells: if it counted, its counts are taken off what is
 * sent, until a flush is known to have counted. Visitor ids need
 * nothing: one inserted again counts none.
 *
 * Reads in cached mode: the copy is read whole (REFRESH_ALL_SQL) at
 * open; store_refresh, which the committer calls at most every
 * count_max_age, reads only the series whose running totals changed
 * since the last read (cache_update), and each flush's answer updates
 * the series it touched. Another node's hits, and tallyctl's writes,
 * therefore show within about count_max_age. The salts are the one read
 * that waits on the database (at start and once a day, from tallyd's
 * committer); it never connects, and fails at once while the connection
 * is down.
 *
 * A daemon starts without its database: pg_open then answers
 * STORE_UNAVAILABLE with the store open, not connected, its copy empty.
 * The first c_connect that reaches the database (a refresh, from the
 * committer) checks the schema as pg_open would, reads the ledger entry
 * and the copy (cached_connected); a newer schema is then STORE_ERROR.
 *
 * tallyctl reset records its number in tally_meta, then deletes a
 * series and its visitor ids; nodes read their copy whole when they
 * find the number changed: a node forgets the ids it sent for a series
 * that the whole read finds gone or under a new id (seen_forget_reset),
 * or that a flush finds gone. A reset and the flushes are kept apart by
 * that number's row (reset_mark, FLUSH_SQL_GEN).
 *
 * Schema version 2 added tally_totals and tally_referrer_days, version
 * 3 the totals' mark; an older database is migrated at a writable open
 * (migrate_all).
 * A site's pages (for max_pages) are counted by the whole read only;
 * the copy then counts the new ones it learns (cache_apply).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dlfcn.h>

#include <libpq-fe.h>

#include "tally/day.h"
#include "tally/location.h"
#include "tally/log.h"
#include "tally/store.h"

#include "store_backend.h"

/*
 * libpq is loaded when a postgresql:// store is first opened, not when
 * the program starts: it brings 21 other libraries (OpenSSL, Kerberos,
 * LDAP...) that the dynamic loader would otherwise map and relocate at
 * every start of tallyd and tallyctl, LMDB store or not, for most of
 * tallyctl's CPU time. The build links no libpq (only its header, for
 * the types); the functions below are looked up once into pq, and the
 * macros after pq_load make every PQfoo() of this file a call through
 * it, so that the code reads as libpq's API. A function used here and
 * missing from PQ_FUNCS has no definition: the link fails.
 */
#define PQ_LIBRARY	"libpq.so.5"
#define PQ_FUNCS(X)							\
	X(PQclear) X(PQconnectdb) X(PQconninfoFree) X(PQconninfoParse)	\
	X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQfinish)		\
	X(PQfreemem) X(PQgetisnull) X(PQgetlength) X(PQgetvalue)	\
	X(PQnfields) X(PQntuples) X(PQparameterStatus) X(PQreset)	\
	X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus)	\
	X(PQsetNoticeProcessor) X(PQstatus)

static struct pq_funcs {
#define PQ_FIELD(f)	__typeof__(f) *f;
	PQ_FUNCS(PQ_FIELD)
#undef PQ_FIELD
} pq;

/*
 * Loads libpq and fills pq, once per process (later calls only answer);
 * a failure is told again at each call. The library stays loaded: libpq
 * and OpenSSL are not made to be unloaded.
 */
static int
pq_load(char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t	 off;
	} syms[] = {
#define PQ_SYM(f)	{ #f, offsetof(struct pq_funcs, f) },
		PQ_FUNCS(PQ_SYM)
#undef PQ_SYM
	};
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static bool loaded;
	struct pq_funcs funcs;
	const char *why;
	void *lib, *fn;
	size_t i;
	int rc = STORE_OK;

	pthread_mutex_lock(&lock);
	if (loaded)
		goto out;
	/* RTLD_NOW: a library that cannot be bound fails here, not at
	 * the first statement. */
	if ((lib = dlopen(PQ_LIBRARY, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		snprintf(err, errlen, "cannot load %s: %s; install libpq5 "
		    "(PostgreSQL's client library)", PQ_LIBRARY,
		    why ? why : "unknown error");
		rc = STORE_ERROR;
		goto out;
	}
	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if ((fn = dlsym(lib, syms[i].name)) == NULL) {
			snprintf(err, errlen, "cannot load %s: it has no "
			    "%s; install libpq5 (PostgreSQL's client "
			    "library)", PQ_LIBRARY, syms[i].name);
			dlclose(lib);
			rc = STORE_ERROR;
			goto out;
		}
		/* POSIX: a function's address fits a void *. */
		memcpy((char *)&funcs + syms[i].off, &fn, sizeof(fn));
	}
	pq = funcs;
	loaded = true;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

#define PQclear			pq.PQclear
#define PQconnectdb		pq.PQconnectdb
#define PQconninfoFree		pq.PQconninfoFree
#define PQconninfoParse		pq.PQconninfoParse
#define PQerrorMessage		pq.PQerrorMessage
#define PQexec			pq.PQexec
#define PQexecParams		pq.PQexecParams
#define PQfinish		pq.PQfinish
#define PQfreemem		pq.PQfreemem
#define PQgetisnull		pq.PQgetisnull
#define PQgetlength		pq.PQgetlength
#define PQgetvalue		pq.PQgetvalue
#define PQnfields		pq.PQnfields
#define PQntuples		pq.PQntuples
#define PQparameterStatus	pq.PQparameterStatus
#define PQreset			pq.PQreset
#define PQresultErrorField	pq.PQresultErrorField
#define PQresultErrorMessage	pq.PQresultErrorMessage
#define PQresultStatus		pq.PQresultStatus
#define PQsetNoticeProcessor	pq.PQsetNoticeProcessor
#define PQstatus		pq.PQstatus

/* The schema of the tables below; tally_meta's 'schema' row. */
#define PG_SCHEMA_VERSION	3
#define REFERRER_SITE_MAX	255	/* as LMDB's: the longest site kept */
#define MAX_PARAMS		8

struct cache;
struct seen_set;
struct flush;

/* How far a node's rows were read: its ledger number. */
struct mark {
	char	*node;
	int64_t	 seq;
};

struct pg_store {
	struct store base;
	PGconn	*conn;
	char	*url;		/* as given: libpq needs it to reconnect */
	char	 where[512];	/* the URL without its password */
	int	 flags;
	bool	 ready;		/* the database was reached and its schema
				 * checked (cached: ledger and copy read) */
	bool	 up;		/* cached: the connection answered last
				 * (atomic: read without conn_lock) */
	bool	 busy;		/* direct: a view or transaction is open */
	uint64_t version;	/* commits seen by this process */
	uint64_t reconnects;
	/* cached mode */
	pthread_mutex_t conn_lock;	/* the connection: one statement at
					 * a time, whichever thread */
	pthread_mutex_t cache_lock;	/* the copy and the seen set */
	struct cache *cache;
	struct seen_set *seen;
	char	 node[128];	/* this node's name in the rows and ledger */
	int64_t	 seq;		/* its last flush's sequence number */
	unsigned safe_left;	/* flushes to send in FLUSH_SAFE form */
	struct flush *in_doubt;	/* sent, answer lost, since the last
				 * flush known to have counted */
	uint64_t refreshed_ms;	/* when the copy was last read */
	struct mark *marks;	/* each node's ledger number at that read */
	size_t	 nmarks;
	char	 reset[24];	/* tally_meta 'reset' at that read */
	unsigned char salts[2 * STORE_SALT_REC];	/* put back after a */
	size_t	 salts_len;				/* failover */
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
	int64_t	 stamp;		/* number in the ledger of node '', or 0 */
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
	char line[400];
	size_t n = 0;

	msg = res ? PQresultErrorMessage(res) : "";
	if (msg[0] == '\0')
		msg = PQerrorMessage(st->conn);
	/* libpq's messages run over lines, indented: one line here. */
	for (; *msg != '\0' && n < sizeof(line) - 1; msg++) {
		if (*msg == '\n' || *msg == '\t' || *msg == ' ') {
			if (n > 0 && line[n - 1] != ' ')
				line[n++] = ' ';
		} else
			line[n++] = *msg;
	}
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = '\0';
	store_set_error("%s: %s", step, line);
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(st->conn) == CONNECTION_BAD || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "25006") == 0) {
		__atomic_store_n(&st->up, false, __ATOMIC_RELAXED);
		return STORE_UNAVAILABLE;
	}
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

/*
 * The block of ledger numbers that a running total's last write falls
 * in (its column mark): the number rounded down to a multiple of 32.
 * The refresh looks a node's changed totals up by it (index on node,
 * mark), reading again those of the block the node is in; a write
 * within the same block leaves mark, and so every indexed column, as
 * it was, so that PostgreSQL updates the row in place (a HOT update:
 * no new index entries, a third of the WAL).
 */
#define TOTAL_MARK(seq)	"(" seq " - mod(" seq ", 32))"

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
	/* Version 2: */
	"CREATE TABLE IF NOT EXISTS tally_totals ("
	" series_id bigint NOT NULL, node text NOT NULL,"
	" views bigint NOT NULL, visitors bigint NOT NULL,"
	" seq bigint NOT NULL, mark bigint NOT NULL DEFAULT 0,"
	" PRIMARY KEY (series_id, node))",
	"CREATE TABLE IF NOT EXISTS tally_referrer_days ("
	" site text COLLATE \"C\" NOT NULL, day integer NOT NULL,"
	" hosts text[] NOT NULL,"
	" PRIMARY KEY (site, day))",
};

/*
 * From version 1 to 2: the running totals of each series and node,
 * stamped with the node's ledger number, and the hosts each site and
 * day keeps. The nodes of version 1 must all be stopped first: they
 * would not keep the totals.
 */
static const char *const migrate_v1_sql[] = {
	"INSERT INTO tally_totals (series_id, node, views, visitors, seq) "
	"SELECT c.series_id, c.node, "
	"least(sum(c.views), 9223372036854775807), "
	"least(sum(c.visitors), 9223372036854775807), "
	"coalesce(max(l.seq), 0) FROM tally_counts c "
	"LEFT JOIN tally_ledger l ON l.node = c.node "
	"GROUP BY c.series_id, c.node ON CONFLICT DO NOTHING",
	"INSERT INTO tally_referrer_days (site, day, hosts) "
	"SELECT site, day, array_agg(DISTINCT host) FROM tally_referrers "
	"WHERE host <> '" STORE_REFERRER_OTHER "' GROUP BY site, day "
	"ON CONFLICT DO NOTHING",
};

/*
 * Version 3: a refresh finds a node's changed totals by their block of
 * ledger numbers (mark, see TOTAL_MARK) instead of by the number itself
 * (seq, index dropped), so that most updates of a total change no
 * indexed column and stay HOT. Also the last step of a database of
 * version 1 (whose totals the step before made with mark 0), and of a
 * new one: the statements are idempotent.
 */
static const char *const migrate_v2_sql[] = {
	"ALTER TABLE tally_totals ADD COLUMN IF NOT EXISTS "
	"mark bigint NOT NULL DEFAULT 0",
	"UPDATE tally_totals SET mark = " TOTAL_MARK("seq") " "
	"WHERE mark <> " TOTAL_MARK("seq"),
	"DROP INDEX IF EXISTS tally_totals_seq",
	"CREATE INDEX IF NOT EXISTS tally_totals_mark ON tally_totals "
	"(node, mark)",
};

/* Runs the statements of a step of the schema from version 'from'. */
static int
migrate(struct pg_store *st, long from, const char *const *sql, size_t n)
{
	char step[64];
	size_t i;
	int rc;

	if (from == 0)
		snprintf(step, sizeof(step), "creating the indexes");
	else
		snprintf(step, sizeof(step), "migrating the schema from "
		    "version %ld", from);
	for (i = 0; i < n; i++)
		if ((rc = exec0(st, step, sql[i])) != STORE_OK)
			return rc;
	return STORE_OK;
}

#define NSQL(a)	(sizeof(a) / sizeof((a)[0]))

/* From 'version' to PG_SCHEMA_VERSION (a new database: from 0), the
 * version written last. */
static int
migrate_all(struct pg_store *st, long version)
{
	struct params p = { 0 };
	char vbuf[16];
	int rc;

	if (version == 1 && (rc = migrate(st, 1, migrate_v1_sql,
	    NSQL(migrate_v1_sql))) != STORE_OK)
		return rc;
	if ((rc = migrate(st, version, migrate_v2_sql,
	    NSQL(migrate_v2_sql))) != STORE_OK)
		return rc;
	snprintf(vbuf, sizeof(vbuf), "%d", PG_SCHEMA_VERSION);
	p_bytes(&p, vbuf, strlen(vbuf));
	return exec_p(st, "writing the schema version", version == 0 ?
	    "INSERT INTO tally_meta (key, val) VALUES ('schema', $1) "
	    "ON CONFLICT (key) DO NOTHING" :
	    "UPDATE tally_meta SET val = $1 WHERE key = 'schema'",
	    &p, 0, NULL);
}

/* Checks (and, when writable, creates or migrates) the schema, in one
 * transaction. */
static int
schema_init(struct pg_store *st)
{
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
	/* FOR UPDATE: one node migrates, the others wait and see it
	 * done. */
	rc = exec_p(st, "reading the schema version",
	    st->flags & STORE_READONLY ?
	    "SELECT convert_from(val, 'UTF8') FROM tally_meta "
	    "WHERE key = 'schema'" :
	    "SELECT convert_from(val, 'UTF8') FROM tally_meta "
	    "WHERE key = 'schema' FOR UPDATE", NULL, 0, &res);
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
		if ((rc = migrate_all(st, 0)) != STORE_OK)
			goto bad;
	} else {
		version = strtol(val(res, 0, 0), NULL, 10);
		PQclear(res);
		if (version >= 1 && version < PG_SCHEMA_VERSION &&
		    !(st->flags & STORE_READONLY)) {
			if ((rc = migrate_all(st, version)) != STORE_OK)
				goto bad;
			version = PG_SCHEMA_VERSION;
		}
		if (version < PG_SCHEMA_VERSION) {
			store_set_error("store schema version %ld is older "
			    "than this tally's (%d): tallyd, or a tallyctl "
			    "command that writes, migrates it", version,
			    PG_SCHEMA_VERSION);
			rc = STORE_ERROR;
			goto bad;
		}
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

static const struct store_ops pg_cached_ops;
static int cached_init(struct pg_store *);
static int cached_connected(struct pg_store *);
static void cached_free(struct pg_store *);

/* The server's notices ("relation ... already exists, skipping") are
 * not tally's to print. */
static void
quiet(void *arg, const char *message)
{
}

/* The schema, checked or made. Nodes starting at once may race to
 * create the same table: the loser sees a duplicate and finds the
 * tables there next time. */
static int
schema_check(struct pg_store *st)
{
	int rc, tries;

	for (tries = 0; (rc = schema_init(st)) == STORE_ERROR && tries < 2 &&
	    strstr(store_error(NULL), "duplicate key") != NULL; tries++)
		;
	return rc;
}

/* A URL libpq cannot read is a mistake of the configuration, not an
 * outage: it fails at once, whatever the mode. libpq's message names
 * the part it could not read. */
static int
url_check(const char *url, const char *where, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *msg = NULL;

	if ((opts = PQconninfoParse(url, &msg)) != NULL) {
		PQconninfoFree(opts);
		return STORE_OK;
	}
	snprintf(err, errlen, "%s: bad URL: %.*s", where,
	    msg ? (int)strcspn(msg, "\n") : 14, msg ? msg : "out of memory");
	PQfreemem(msg);
	return STORE_ERROR;
}

/*
 * Opens the store. In the daemon's mode (STORE_CACHED) a database that
 * cannot be reached is no reason not to start: the store opens empty,
 * not connected, answers STORE_UNAVAILABLE (with *out set and err
 * saying why), and connects at the first refresh or commit that finds
 * the database, where the schema is checked as here; views read the
 * empty copy meanwhile. Anything else that fails is fatal.
 */
static int
pg_open(struct store **out, const char *url, int flags, char *err,
    size_t errlen)
{
	struct pg_store *st;
	char why[512], shown[512];
	int rc;

	*out = NULL;
	if ((rc = pq_load(why, sizeof(why))) != STORE_OK) {
		/* libpq cannot say where, without the password: tally can. */
		snprintf(err, errlen, "%s: %s",
		    location_shown(shown, sizeof(shown), url), why);
		return rc;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->url = strdup(url)) == NULL) {
		free(st);
		snprintf(err, errlen, "%s", strerror(errno));
		return STORE_ERROR;
	}
	st->base.ops = &store_pg_ops;
	st->flags = flags;
	safe_location(url, st->where, sizeof(st->where));
	if ((rc = url_check(url, st->where, err, errlen)) != STORE_OK)
		goto bad;
	st->conn = PQconnectdb(url);
	PQsetNoticeProcessor(st->conn, quiet, NULL);
	if (flags & STORE_CACHED) {
		st->base.ops = &pg_cached_ops;
		if ((rc = cached_init(st)) != STORE_OK)
			goto failed;
	}
	if (PQstatus(st->conn) != CONNECTION_OK) {
		rc = failed(st, "connecting", NULL);
		if (flags & STORE_CACHED) {
			snprintf(err, errlen, "%s: %s", st->where,
			    store_error(NULL));
			*out = &st->base;
			return STORE_UNAVAILABLE;
		}
		goto failed;
	}
	if (flags & STORE_CACHED)
		rc = cached_connected(st);
	else if ((rc = schema_check(st)) == STORE_OK)
		st->ready = true;
	if (rc == STORE_OK) {
		*out = &st->base;
		return STORE_OK;
	}
failed:
	snprintf(err, errlen, "%s: %s", st->where, store_error(NULL));
bad:
	if (st->base.ops == &pg_cached_ops)
		cached_free(st);
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
	if (st->base.ops == &pg_cached_ops)
		cached_free(st);
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
 * statement itself then runs on the new one. The first connection of a
 * daemon that started without its database is no reconnection. */
static int
reconnect(struct pg_store *st)
{
	if (PQstatus(st->conn) == CONNECTION_OK)
		return STORE_OK;
	PQreset(st->conn);
	PQsetNoticeProcessor(st->conn, quiet, NULL);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		failed(st, st->ready ? "connecting again" : "connecting", NULL);
		return STORE_UNAVAILABLE;
	}
	if (st->ready)
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
	v->base.ops = st->base.ops;
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

	/* Rows of no series; running totals that are not the sum of their
	 * node's day rows (or of no series); days whose hosts are not
	 * those of their referrer rows. */
	if ((rc = exec_p(v->st, "reading the day rows", "SELECT "
	    "(SELECT count(*) FROM tally_counts c WHERE NOT EXISTS (SELECT 1 "
	    "FROM tally_series s WHERE s.id = c.series_id)) + "
	    "(SELECT count(*) FROM (SELECT series_id, node, "
	    "least(sum(views), 9223372036854775807) AS v, "
	    "least(sum(visitors), 9223372036854775807) AS u "
	    "FROM tally_counts GROUP BY series_id, node) c "
	    "FULL JOIN tally_totals t ON t.series_id = c.series_id "
	    "AND t.node = c.node WHERE coalesce(c.v, 0) <> coalesce(t.views, 0) "
	    "OR coalesce(c.u, 0) <> coalesce(t.visitors, 0) "
	    "OR NOT EXISTS (SELECT 1 FROM tally_series s "
	    "WHERE s.id = coalesce(t.series_id, c.series_id))) + "
	    "(SELECT count(*) FROM (SELECT DISTINCT site, day, host "
	    "FROM tally_referrers WHERE host <> '" STORE_REFERRER_OTHER "') r "
	    "FULL JOIN (SELECT d.site, d.day, h.host FROM tally_referrer_days d "
	    "CROSS JOIN LATERAL unnest(d.hosts) AS h(host)) d "
	    "ON d.site = r.site AND d.day = r.day AND d.host = r.host "
	    "WHERE r.host IS NULL OR d.host IS NULL)", NULL, 0, &res)) !=
	    STORE_OK)
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

/*
 * tallyctl writes as node '': a write transaction takes the next number
 * of that node's ledger entry (waiting for another tallyctl's write to
 * end) and stamps the running totals it changes with it, so that the
 * daemons' refresh finds them. Every write takes it first, before any
 * row another tallyctl may write: one tallyctl writes at a time.
 */
static int
ctl_stamp(struct pg_txn *t)
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	if (t->stamp > 0)
		return STORE_OK;
	p_i64(&p, day_today());
	if ((rc = exec_p(t->st, "numbering the write", "INSERT INTO "
	    "tally_ledger AS l (node, seq, day) VALUES ('', 1, $1) "
	    "ON CONFLICT (node) DO UPDATE SET seq = l.seq + 1, "
	    "day = excluded.day RETURNING seq", &p, 0, &res)) != STORE_OK)
		return rc;
	t->stamp = strtoll(val(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

/* Adds, saturating at the largest count. */
#define SAT_ADD(t, col) \
	"CASE WHEN " t "." col " > 9223372036854775807 - excluded." col \
	" THEN 9223372036854775807 ELSE " t "." col " + excluded." col " END"

/* Adds to a day row of node '' and to its running total; $5 the
 * write's stamp. */
#define ADD_SQL \
	"WITH c AS (INSERT INTO tally_counts AS c (series_id, day, node, " \
	"views, visitors) VALUES ($1, $2, '', $3, $4) " \
	"ON CONFLICT (series_id, day, node) DO UPDATE SET " \
	"views = " SAT_ADD("c", "views") ", " \
	"visitors = " SAT_ADD("c", "visitors") " RETURNING 1) " \
	"INSERT INTO tally_totals AS t (series_id, node, views, visitors, " \
	"seq, mark) VALUES ($1, '', $3, $4, $5, " TOTAL_MARK("$5::bigint") \
	") ON CONFLICT (series_id, node) DO UPDATE SET " \
	"views = " SAT_ADD("t", "views") ", " \
	"visitors = " SAT_ADD("t", "visitors") ", seq = excluded.seq, " \
	"mark = excluded.mark"

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
	if ((rc = ctl_stamp(t)) != STORE_OK ||
	    (rc = series_id(t->st, site, path, &id)) != STORE_OK)
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
	p_i64(&p, t->stamp);
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

/* The adjustment, and the series stamped (its total row of node '')
 * so that the daemons read it again. */
static int
write_adjust(struct pg_txn *t, int64_t id, int64_t views, int64_t visitors)
{
	struct params p = { 0 };
	int rc;

	if ((rc = ctl_stamp(t)) != STORE_OK)
		return rc;
	p_i64(&p, id);
	p_i64(&p, views);
	p_i64(&p, visitors);
	p_i64(&p, t->stamp);
	return exec_p(t->st, "writing an adjustment", "WITH a AS (UPDATE "
	    "tally_series SET adj_views = $2, adj_visitors = $3 WHERE id = $1 "
	    "RETURNING 1) INSERT INTO tally_totals (series_id, node, views, "
	    "visitors, seq, mark) VALUES ($1, '', 0, 0, $4, "
	    TOTAL_MARK("$4::bigint") ") ON CONFLICT (series_id, node) DO "
	    "UPDATE SET seq = excluded.seq, mark = excluded.mark", &p, 0,
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

	if ((rc = ctl_stamp(t)) != STORE_OK ||
	    (rc = series_id(t->st, site, path, &id)) != STORE_OK ||
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
	if ((rc = ctl_stamp(t)) != STORE_OK ||
	    (rc = series_id(t->st, site, path, &id)) != STORE_OK ||
	    (rc = series_get(t->st, site, path, -1, &sc, adj)) != STORE_OK)
		return rc;
	if (store_adjust_to(sc.total.views, adj[0], views, &adj[0]) == -1 ||
	    store_adjust_to(sc.total.visitors, adj[1], visitors, &adj[1]) == -1) {
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
	    "AND ($2::text IS NULL OR path = $2))", &p, 0, NULL)) != STORE_OK ||
	    (rc = exec_p(t->st, "deleting totals", "DELETE FROM tally_totals "
	    "WHERE series_id IN (SELECT id FROM tally_series WHERE site = $1 "
	    "AND ($2::text IS NULL OR path = $2))", &p, 0, NULL)) != STORE_OK)
		return rc;
	return exec_p(t->st, "deleting a series", "DELETE FROM tally_series "
	    "WHERE site = $1 AND ($2::text IS NULL OR path = $2)", &p, 0, NULL);
}

static int pg_referrer_reset(struct store_txn *, const char *);

/*
 * A deletion leaves no row to stamp: tally_meta's 'reset' takes the
 * write's number, and a daemon that finds it changed reads its copy
 * again whole.
 *
 * The row is also what keeps a reset and the nodes' flushes apart.
 * Every flush takes it FOR SHARE first, and applies only if it holds
 * the number the node last read (FLUSH_SQL's "gen"). A reset updates
 * it before it deletes anything: that waits for the flushes holding
 * it, so the deletions below, each a statement of its own snapshot,
 * see and delete what they wrote (visitor ids included); a flush
 * started since waits for the reset to end, then finds a number it
 * did not read and writes nothing. Its node reads its copy again and
 * sends the batch anew, to the series as they are now. Without this, a
 * flush whose snapshot predates the reset could insert visitor ids of a
 * series the reset drops: visitors of the page after the reset would
 * not count.
 */
static int
reset_mark(struct pg_txn *t)
{
	struct params p = { 0 };
	char buf[24];
	int rc;

	if ((rc = ctl_stamp(t)) != STORE_OK)
		return rc;
	snprintf(buf, sizeof(buf), "%" PRId64, t->stamp);
	p_bytes(&p, buf, strlen(buf));
	return exec_p(t->st, "marking the reset", "INSERT INTO tally_meta "
	    "(key, val) VALUES ('reset', $1) ON CONFLICT (key) DO UPDATE "
	    "SET val = excluded.val", &p, 0, NULL);
}

static int
pg_reset(struct store_txn *base_t, const char *site, const char *path)
{
	struct pg_txn *t = (struct pg_txn *)base_t;
	int rc;

	/* First: the flushes under way end before anything is deleted. */
	if ((rc = reset_mark(t)) != STORE_OK)
		return rc;
	/* A referrer is the site's: it goes with the whole site. */
	if (path == NULL && (rc = pg_referrer_reset(base_t, site)) != STORE_OK)
		return rc;
	return delete_series(t, site, path);
}

/*
 * A shared store's salts: one per day, the first inserted winning. As
 * with LMDB, only today's and yesterday's exist: older records are not
 * written (a node puts its copy back after a failover, and that copy
 * may date from before a midnight another node rotated), and older rows
 * are erased. Today is the newer of the records' newest day and this
 * host's.
 */
static int
salts_put(struct pg_store *st, const unsigned char *recs, size_t len)
{
	struct params p = { 0 };
	int32_t day, floor = day_today() - 1;
	uint32_t be;
	size_t i;
	int rc;

	for (i = 0; i + STORE_SALT_REC <= len; i += STORE_SALT_REC) {
		memcpy(&day, recs + i, 4);
		if (day > INT32_MIN && day - 1 > floor)
			floor = day - 1;
	}
	for (i = 0; i + STORE_SALT_REC <= len; i += STORE_SALT_REC) {
		memcpy(&day, recs + i, 4);
		if (day < floor)
			continue;
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
	p.n = 0;
	p_i64(&p, floor);
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

/* A row of node '', and the host among the day's hosts unless it is
 * "(other)". */
#define REFERRER_ADD_SQL \
	"WITH d AS (INSERT INTO tally_referrer_days AS d (site, day, hosts) " \
	"SELECT $1, $2, ARRAY[$3::text] WHERE $3 <> '" \
	STORE_REFERRER_OTHER "' ON CONFLICT (site, day) DO UPDATE SET " \
	"hosts = CASE WHEN excluded.hosts[1] = ANY (d.hosts) THEN d.hosts " \
	"ELSE d.hosts || excluded.hosts END RETURNING 1) " \
	"INSERT INTO tally_referrers AS r (site, day, host, node, views) " \
	"VALUES ($1, $2, $3, '', $4) " \
	"ON CONFLICT (site, day, host, node) DO UPDATE SET " \
	"views = " SAT_ADD("r", "views")

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
	if ((rc = ctl_stamp(t)) != STORE_OK)
		return rc;
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
	return exec_p(t->st, "deleting referrers", "WITH d AS (DELETE FROM "
	    "tally_referrer_days WHERE site = $1 RETURNING 1) DELETE FROM "
	    "tally_referrers WHERE site = $1", &p, 0, NULL);
}

/*
 * The statements of cached mode.
 *
 * FLUSH_SQL: a whole batch. $1 node, $2 its sequence number, $3 today;
 * the counts: $4 series ids (-k: the k-th series of $8 and $9), $5
 * days, $6 views, $7 series hashes; the series the copy lacks: $8
 * sites, $9 paths; the visitor ids: $10 days, $11 series hashes, $12
 * ids; the referrers: $13 sites, $14 days, $15 hosts, $16 views, $17
 * the day's cap of hosts.
 *
 * Nothing is written unless "gen" holds the reset number the node
 * read (FLUSH_SQL_GEN), and every write after "ledger" does nothing
 * unless the ledger took the sequence number. Rows that other nodes
 * may write too are taken in one order by every node, each kind after
 * the one before is done (a CTE waits for the previous through a count
 * of it): the reset number (shared), series (by site and path),
 * visitor ids (by day, series, id), the referrer days (by site and
 * day). Count, total and referrer rows are the node's own.
 *
 * "made" creates the series missing from the snapshot: those that
 * exist take no identity value; one that another node creates at the
 * same moment is not in this statement's snapshot, so ON CONFLICT DO
 * UPDATE (waiting for that node, then locking its row) hands back its
 * id, at the price of an identity value. Counts of a series deleted
 * since the copy had it (tallyctl reset) are dropped, not left as rows
 * of no series. Visitors of a series and day are the ids of it that
 * "seen" actually inserted. The running totals of the node ("totals")
 * get the same additions, stamped with the sequence number.
 *
 * Referrers: a site and day keeps its first max_referrers hosts in the
 * array of its tally_referrer_days row; any other host counts as
 * "(other)". A host in the row as this statement sees it, or with the
 * row full, needs no lock. Only a batch bringing a host new to a row
 * with room upserts it ("rlock"): ON CONFLICT DO UPDATE works on the
 * latest row, after any other node's upsert has committed, so that
 * the cap holds exactly across nodes; ordinary hits never wait.
 *
 * The answer: the absolute counts of each series and day of the batch,
 * as the statement leaves them (its snapshot plus what it added, since
 * a statement does not see its own changes), new series with their id.
 *
 * Two forms, alike but for how they write rows (see "What a hit costs
 * the database" in doc/scale-out.md). FLUSH_FAST is sent first: it
 * inserts the visitor ids that its snapshot lacks with a plain INSERT,
 * and updates the node's count and total rows that its snapshot has
 * (UPDATE ... FROM), inserting the others. That spares the WAL record
 * of each speculative insert (ON CONFLICT) and the row lock that ON
 * CONFLICT DO UPDATE takes before updating. The node's own rows are
 * written by no one else, so their snapshot is right; a visitor id
 * that another node inserts at the same moment is not in the snapshot:
 * the unique index then waits for that node and fails the statement
 * (unique_violation, which undoes all of it, the ledger included), and
 * FLUSH_SAFE, with ON CONFLICT everywhere, sends the batch again at
 * once. Conflicts are rare, since each node sends an id once a day, but
 * less so when flushes are slow (they overlap longer) and batches big:
 * after one, the next FLUSH_SAFE_RUN flushes go in FLUSH_SAFE form
 * straight away, so that a busy database does not do flushes twice.
 */
#define FLUSH_SAFE_RUN	8
enum { FLUSH_FAST, FLUSH_SAFE };
#define ANY_LEDGER "EXISTS (SELECT 1 FROM ledger)"
/* Before anything: tallyctl's reset number ($18 the node's), held FOR
 * SHARE until the flush commits, so that a reset waits for the flush
 * or the flush for the reset (reset_mark). A number the node has not
 * read (a reset it does not know of) makes the whole flush write
 * nothing, and its answer carry a row that says so (FLUSH_SQL_STALE).
 * The row is made by every node at its first connection
 * (cached_connected): a missing row ('') could not be held. */
#define FLUSH_SQL_GEN \
	"WITH gen AS (SELECT 1 AS ok WHERE coalesce((SELECT " \
	"convert_from(m.val, 'UTF8') FROM tally_meta m " \
	"WHERE m.key = 'reset' FOR SHARE), '') = $18::text), "
/* The answer's pages column of FLUSH_SQL_STALE's row. */
#define FLUSH_STALE	(-2)
#define FLUSH_SQL_STALE \
	" UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, -2, NULL, NULL, " \
	"NULL WHERE NOT EXISTS (SELECT 1 FROM gen)"
#define FLUSH_SQL_SERIES \
	FLUSH_SQL_GEN \
	"ledger AS (INSERT INTO tally_ledger AS l (node, seq, day) " \
	"SELECT $1, $2::bigint, $3::integer WHERE EXISTS (SELECT 1 FROM gen) " \
	"ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, " \
	"day = excluded.day WHERE l.seq < excluded.seq RETURNING seq), " \
	"want AS (SELECT w.site, w.path, w.k FROM unnest($8::text[], " \
	"$9::text[]) WITH ORDINALITY AS w(site, path, k) " \
	"WHERE " ANY_LEDGER "), " \
	"made AS (INSERT INTO tally_series AS s (site, path) " \
	"SELECT w.site, w.path FROM want w WHERE NOT EXISTS (SELECT 1 " \
	"FROM tally_series x WHERE x.site = w.site AND x.path = w.path) " \
	"ORDER BY w.site, w.path " \
	"ON CONFLICT (site, path) DO UPDATE SET site = excluded.site " \
	"RETURNING id, site, path), " \
	"named AS (SELECT w.k, coalesce(m.id, x.id) AS id FROM want w " \
	"LEFT JOIN made m ON m.site = w.site AND m.path = w.path " \
	"LEFT JOIN tally_series x ON x.site = w.site AND x.path = w.path), " \
	"adds AS (SELECT CASE WHEN a.id > 0 THEN a.id ELSE n.id END AS id, " \
	"a.day, a.views, a.hash FROM unnest($4::bigint[], $5::integer[], " \
	"$6::bigint[], $7::bigint[]) AS a(id, day, views, hash) " \
	"LEFT JOIN named n ON a.id < 0 AND n.k = -a.id " \
	"WHERE a.id < 0 OR EXISTS (SELECT 1 FROM tally_series s " \
	"WHERE s.id = a.id)), "
#define FLUSH_SEEN_IN \
	"seen AS (INSERT INTO tally_visitors (day, series_hash, visitor) " \
	"SELECT v.day, v.hash, v.visitor FROM " \
	"unnest($10::integer[], $11::bigint[], $12::bigint[]) " \
	"AS v(day, hash, visitor) WHERE " ANY_LEDGER " " \
	"AND (SELECT count(*) FROM made) >= 0 "
#define FLUSH_SEEN_SAFE \
	FLUSH_SEEN_IN "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING " \
	"RETURNING day, series_hash), "
#define FLUSH_SEEN_FAST \
	FLUSH_SEEN_IN "AND NOT EXISTS (SELECT 1 FROM tally_visitors x " \
	"WHERE x.day = v.day AND x.series_hash = v.hash " \
	"AND x.visitor = v.visitor) ORDER BY 1, 2, 3 " \
	"RETURNING day, series_hash), "
#define FLUSH_SQL_DELTA \
	"fresh AS (SELECT day, series_hash, count(*) AS n FROM seen " \
	"GROUP BY day, series_hash), " \
	"delta AS (SELECT a.id, a.day, a.views, coalesce(f.n, 0) AS visitors " \
	"FROM adds a LEFT JOIN fresh f " \
	"ON f.day = a.day AND f.series_hash = a.hash " \
	"WHERE a.id IS NOT NULL AND " ANY_LEDGER "), " \
	"dsum AS (SELECT id, sum(views) AS v, sum(visitors) AS u " \
	"FROM delta GROUP BY id), "
#define FLUSH_ROWS_SAFE \
	"counts AS (INSERT INTO tally_counts AS c " \
	"(series_id, day, node, views, visitors) " \
	"SELECT id, day, $1, views, visitors FROM delta ORDER BY id, day " \
	"ON CONFLICT (series_id, day, node) DO UPDATE SET " \
	"views = " SAT_ADD("c", "views") ", " \
	"visitors = " SAT_ADD("c", "visitors") " RETURNING series_id), " \
	"totals AS (INSERT INTO tally_totals AS t " \
	"(series_id, node, views, visitors, seq, mark) " \
	"SELECT id, $1, least(v, 9223372036854775807), " \
	"least(u, 9223372036854775807), $2::bigint, " \
	TOTAL_MARK("$2::bigint") " FROM dsum ORDER BY id " \
	"ON CONFLICT (series_id, node) DO UPDATE SET " \
	"views = " SAT_ADD("t", "views") ", " \
	"visitors = " SAT_ADD("t", "visitors") ", seq = excluded.seq, " \
	"mark = excluded.mark RETURNING series_id), "
/* The node's own rows, updated where this statement's snapshot has
 * them and inserted where not: no other transaction writes them, so
 * neither takes a row lock before its update nor a speculative insert. */
#define SAT_SUM(t, col, d) \
	"CASE WHEN " t "." col " > 9223372036854775807 - " d \
	" THEN 9223372036854775807 ELSE " t "." col " + " d " END"
#define FLUSH_ROWS_FAST \
	"cup AS (UPDATE tally_counts AS c SET " \
	"views = " SAT_SUM("c", "views", "d.views") ", " \
	"visitors = " SAT_SUM("c", "visitors", "d.visitors") " " \
	"FROM delta d WHERE c.series_id = d.id AND c.day = d.day " \
	"AND c.node = $1 RETURNING 1), " \
	"counts AS (INSERT INTO tally_counts " \
	"(series_id, day, node, views, visitors) " \
	"SELECT d.id, d.day, $1, d.views, d.visitors FROM delta d " \
	"WHERE NOT EXISTS (SELECT 1 FROM tally_counts x " \
	"WHERE x.series_id = d.id AND x.day = d.day AND x.node = $1) " \
	"ORDER BY 1, 2 RETURNING series_id), " \
	"tup AS (UPDATE tally_totals AS t SET " \
	"views = " SAT_SUM("t", "views", "least(d.v, 9223372036854775807)") \
	", visitors = " SAT_SUM("t", "visitors", \
	"least(d.u, 9223372036854775807)") ", seq = $2::bigint, " \
	"mark = " TOTAL_MARK("$2::bigint") " " \
	"FROM dsum d WHERE t.series_id = d.id AND t.node = $1 RETURNING 1), " \
	"totals AS (INSERT INTO tally_totals " \
	"(series_id, node, views, visitors, seq, mark) " \
	"SELECT d.id, $1, least(d.v, 9223372036854775807), " \
	"least(d.u, 9223372036854775807), $2::bigint, " \
	TOTAL_MARK("$2::bigint") " FROM dsum d " \
	"WHERE NOT EXISTS (SELECT 1 FROM tally_totals x " \
	"WHERE x.series_id = d.id AND x.node = $1) " \
	"ORDER BY 1 RETURNING series_id), "
#define FLUSH_SQL_REFS \
	"refs_in AS (SELECT x.site, x.day, x.host, x.views, x.cap " \
	"FROM unnest($13::text[], $14::integer[], $15::text[], " \
	"$16::bigint[], $17::integer[]) AS x(site, day, host, views, cap) " \
	"WHERE " ANY_LEDGER "), " \
	"rknown AS (SELECT d.site, d.day, d.hosts FROM (SELECT DISTINCT " \
	"site, day FROM refs_in) i JOIN tally_referrer_days d " \
	"ON d.site = i.site AND d.day = i.day), " \
	"cand AS (SELECT i.site, i.day, i.host, i.cap FROM refs_in i " \
	"LEFT JOIN rknown k ON k.site = i.site AND k.day = i.day " \
	"WHERE i.host <> '" STORE_REFERRER_OTHER "' " \
	"AND NOT coalesce(i.host = ANY (k.hosts), false) " \
	"AND coalesce(cardinality(k.hosts), 0) < i.cap), " \
	"rlock AS (INSERT INTO tally_referrer_days AS d (site, day, hosts) " \
	"SELECT c.site, c.day, ARRAY(SELECT c2.host FROM cand c2 " \
	"WHERE c2.site = c.site AND c2.day = c.day ORDER BY c2.host " \
	"LIMIT c.cap) FROM (SELECT site, day, max(cap) AS cap FROM cand " \
	"GROUP BY site, day) c WHERE (SELECT count(*) FROM fresh) >= 0 " \
	"ORDER BY c.site, c.day " \
	"ON CONFLICT (site, day) DO UPDATE SET hosts = d.hosts || " \
	"ARRAY(SELECT u.h FROM unnest(excluded.hosts) AS u(h) " \
	"WHERE NOT u.h = ANY (d.hosts) ORDER BY u.h " \
	"LIMIT greatest(0, (SELECT max(c.cap) FROM cand c " \
	"WHERE c.site = excluded.site AND c.day = excluded.day) - " \
	"cardinality(d.hosts))) RETURNING site, day, hosts), " \
	"refs AS (INSERT INTO tally_referrers AS r " \
	"(site, day, host, node, views) " \
	"SELECT site, day, host, $1, least(sum(views), 9223372036854775807) " \
	"FROM (SELECT i.site, i.day, CASE WHEN i.host = '" \
	STORE_REFERRER_OTHER "' OR coalesce(i.host = ANY (k.hosts), false) " \
	"OR coalesce(i.host = ANY (l.hosts), false) THEN i.host " \
	"ELSE '" STORE_REFERRER_OTHER "' END AS host, i.views " \
	"FROM refs_in i LEFT JOIN rknown k ON k.site = i.site " \
	"AND k.day = i.day LEFT JOIN rlock l ON l.site = i.site " \
	"AND l.day = i.day) z GROUP BY site, day, host " \
	"ORDER BY site, day, host " \
	"ON CONFLICT (site, day, host, node) DO UPDATE SET " \
	"views = " SAT_ADD("r", "views") " RETURNING 1), "
#define FLUSH_SQL_ANSWER \
	"ser AS (SELECT s.id, s.site, s.path, s.adj_views, s.adj_visitors " \
	"FROM tally_series s WHERE s.id IN (SELECT id FROM adds) " \
	"UNION ALL SELECT id, site, path, 0, 0 FROM made), " \
	"tsum AS (SELECT t.series_id AS id, sum(t.views) AS v, " \
	"sum(t.visitors) AS u FROM tally_totals t " \
	"WHERE t.series_id IN (SELECT id FROM adds) GROUP BY t.series_id), " \
	"csum AS (SELECT c.series_id AS id, c.day, sum(c.views) AS v, " \
	"sum(c.visitors) AS u FROM tally_counts c WHERE (c.series_id, c.day) " \
	"IN (SELECT id, day FROM adds) GROUP BY c.series_id, c.day) " \
	"SELECT s.id, s.site, s.path, " \
	"(coalesce(ts.v, 0) + s.adj_views + coalesce(ds.v, 0))::text, " \
	"(coalesce(ts.u, 0) + s.adj_visitors + coalesce(ds.u, 0))::text, " \
	"-1, t.day, (coalesce(cs.v, 0) + coalesce(dd.views, 0))::text, " \
	"(coalesce(cs.u, 0) + coalesce(dd.visitors, 0))::text " \
	"FROM (SELECT DISTINCT id, day FROM adds WHERE id IS NOT NULL) t " \
	"JOIN ser s ON s.id = t.id LEFT JOIN tsum ts ON ts.id = t.id " \
	"LEFT JOIN dsum ds ON ds.id = t.id " \
	"LEFT JOIN csum cs ON cs.id = t.id AND cs.day = t.day " \
	"LEFT JOIN delta dd ON dd.id = t.id AND dd.day = t.day"

/* The statement whole, in its two forms: longer than C compilers must
 * take in one literal, so put together once. */
static char flush_sql[2][10240];
static pthread_once_t flush_sql_once = PTHREAD_ONCE_INIT;

static void
flush_sql_make(void)
{
	int fast, safe;

	fast = snprintf(flush_sql[FLUSH_FAST], sizeof(flush_sql[0]),
	    "%s%s%s%s%s%s%s", FLUSH_SQL_SERIES, FLUSH_SEEN_FAST,
	    FLUSH_SQL_DELTA, FLUSH_ROWS_FAST, FLUSH_SQL_REFS, FLUSH_SQL_ANSWER,
	    FLUSH_SQL_STALE);
	safe = snprintf(flush_sql[FLUSH_SAFE], sizeof(flush_sql[0]),
	    "%s%s%s%s%s%s%s", FLUSH_SQL_SERIES, FLUSH_SEEN_SAFE,
	    FLUSH_SQL_DELTA, FLUSH_ROWS_SAFE, FLUSH_SQL_REFS, FLUSH_SQL_ANSWER,
	    FLUSH_SQL_STALE);
	/* A statement cut short would fail at every flush. */
	if (fast < 0 || (size_t)fast >= sizeof(flush_sql[0]) || safe < 0 ||
	    (size_t)safe >= sizeof(flush_sql[0]))
		fatalx("the flush statement is longer than its buffer");
}

/*
 * The copy's reads. Rows of kind 0 (last column): a series with its
 * all-time counts (running totals plus adjustment), pages, and the
 * counts of the days $1 to $2 (a row per day; the day NULL for a
 * series without any). Kind 1: each node's ledger number (id) and name
 * (site), the watermarks of the next read; kind 2: the number of
 * tallyctl's last reset (site); kind 3: how many series changed (id).
 *
 * REFRESH_ALL_SQL reads every series (at open, after a reset).
 * REFRESH_HEAD and REFRESH_TAIL, around one branch per node known
 * (REFRESH_NODE, its name and watermark) and one for the nodes not
 * known (REFRESH_NEW), read only the series whose running total a node
 * stamped with a number above its watermark, 0 for a node new to the
 * ledger: those whose mark is at least the watermark's (TOTAL_MARK;
 * the ones of the watermark's block that did not change since are read
 * again), and none of a known node whose ledger number did not move.
 * Each node's numbers only grow, and a node's rows and ledger entry
 * change in one transaction: what a read sees of a node is exactly its
 * flushes up to its ledger number. Every step is an index lookup: the
 * branches by (node, mark) (ORDER BY and LIMIT keep the planner on the
 * index; a branch that reaches the limit makes the next read whole),
 * the rest by series id through an array (= ANY).
 */
#define REFRESH_KINDS \
	"UNION ALL SELECT l.seq, l.node, NULL, NULL, NULL, 0, NULL, NULL, " \
	"NULL, 1 FROM tally_ledger l " \
	"UNION ALL SELECT 0, convert_from(m.val, 'UTF8'), NULL, NULL, NULL, " \
	"0, NULL, NULL, NULL, 2 FROM tally_meta m WHERE m.key = 'reset'"
#define REFRESH_ALL_SQL \
	"SELECT s.id, s.site, s.path, " \
	"(coalesce(t.v, 0) + s.adj_views)::text, " \
	"(coalesce(t.u, 0) + s.adj_visitors)::text, " \
	"CASE WHEN s.path = '' THEN coalesce(pc.n, 0) ELSE 0 END, " \
	"d.day, d.v::text, d.u::text, 0 " \
	"FROM tally_series s " \
	"LEFT JOIN (SELECT series_id, sum(views) AS v, sum(visitors) AS u " \
	"FROM tally_totals GROUP BY series_id) t ON t.series_id = s.id " \
	"LEFT JOIN (SELECT site, count(*) AS n FROM tally_series " \
	"WHERE path <> '' GROUP BY site) pc ON pc.site = s.site " \
	"LEFT JOIN (SELECT series_id, day, sum(views) AS v, " \
	"sum(visitors) AS u FROM tally_counts WHERE day BETWEEN $1 AND $2 " \
	"GROUP BY series_id, day) d ON d.series_id = s.id " REFRESH_KINDS
#define REFRESH_MAX	20000	/* changed series of one node, at most */
#define REFRESH_HEAD \
	"WITH ch AS (SELECT DISTINCT series_id AS id FROM ("
#define REFRESH_NODE \
	"(SELECT series_id FROM tally_totals WHERE node = $%d " \
	"AND mark >= " TOTAL_MARK("$%d::bigint") " " \
	"AND EXISTS (SELECT 1 FROM tally_ledger l WHERE l.node = $%d " \
	"AND l.seq > $%d::bigint) ORDER BY mark LIMIT %d)"
/* The nodes that appeared since the last read (a node started): all
 * their rows, as from a watermark of 0, each node through the same
 * index; the names known follow as "WHERE l.node NOT IN (...)". */
#define REFRESH_NEW \
	"SELECT n.series_id FROM tally_ledger l CROSS JOIN LATERAL " \
	"(SELECT series_id FROM tally_totals t WHERE t.node = l.node " \
	"ORDER BY t.mark LIMIT %d) n"
#define REFRESH_TAIL \
	") x), ids AS (SELECT ARRAY(SELECT id FROM ch) AS a), " \
	"ts AS (SELECT series_id AS id, sum(views) AS v, " \
	"sum(visitors) AS u FROM tally_totals WHERE series_id = ANY " \
	"((SELECT a FROM ids)::bigint[]) GROUP BY series_id), " \
	"ds AS (SELECT series_id AS id, day, sum(views) AS v, " \
	"sum(visitors) AS u FROM tally_counts WHERE series_id = ANY " \
	"((SELECT a FROM ids)::bigint[]) AND day BETWEEN $1 AND $2 " \
	"GROUP BY series_id, day) " \
	"SELECT s.id, s.site, s.path, " \
	"(coalesce(ts.v, 0) + s.adj_views)::text, " \
	"(coalesce(ts.u, 0) + s.adj_visitors)::text, -1, " \
	"ds.day, ds.v::text, ds.u::text, 0 " \
	"FROM tally_series s LEFT JOIN ts ON ts.id = s.id " \
	"LEFT JOIN ds ON ds.id = s.id WHERE s.id = ANY ((SELECT a FROM ids)::bigint[]) " \
	"UNION ALL SELECT count(*), NULL, NULL, NULL, NULL, 0, NULL, NULL, " \
	"NULL, 3 FROM ch " REFRESH_KINDS

/*
 * Cached mode (the daemon): the node-local copy of the counts.
 *
 * struct cache holds every series of the database: its id, all-time
 * counts, pages (site series) and the counts of its two latest days.
 * Views read it under cache_lock and never wait on the network; a
 * series it lacks reads as zero and not existing until the next commit
 * or refresh brings it. Another node's hits show after the next
 * store_refresh, within about count_max_age.
 */

struct centry {
	struct centry *next;
	uint64_t hash;		/* store_series_hash of site and path */
	int64_t	 id;
	uint32_t npages;
	struct counts total;
	int32_t	 day[2];	/* the two latest days known, or -1 */
	struct counts on[2];
	size_t	 site_len;
	char	 key[];		/* site '\0' path '\0' */
};

struct cache {
	struct centry **buckets;
	size_t	 nbuckets;
	size_t	 n;
};

static struct cache *
cache_new(size_t hint)
{
	struct cache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	for (c->nbuckets = 1024; c->nbuckets < hint; c->nbuckets *= 2)
		;
	if ((c->buckets = calloc(c->nbuckets, sizeof(*c->buckets))) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

static void
cache_free(struct cache *c)
{
	struct centry *e, *next;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = next) {
			next = e->next;
			free(e);
		}
	free(c->buckets);
	free(c);
}

static struct centry *
cache_find(const struct cache *c, const char *site, const char *path,
    uint64_t h)
{
	struct centry *e;

	for (e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, site) == 0 &&
		    strcmp(e->key + e->site_len + 1, path) == 0)
			return e;
	return NULL;
}

/* The entry of a series, made (empty) when missing; NULL: no memory. */
static struct centry *
cache_entry(struct cache *c, const char *site, const char *path)
{
	uint64_t h = store_series_hash(site, path);
	size_t sl = strlen(site), pl = strlen(path);
	struct centry *e;

	if ((e = cache_find(c, site, path, h)) != NULL)
		return e;
	if ((e = calloc(1, sizeof(*e) + sl + pl + 2)) == NULL)
		return NULL;
	e->hash = h;
	e->day[0] = e->day[1] = -1;
	e->site_len = sl;
	memcpy(e->key, site, sl + 1);
	memcpy(e->key + sl + 1, path, pl + 1);
	e->next = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	c->n++;
	return e;
}

/* Sets the counts of a day, keeping the two latest days. */
static void
centry_day(struct centry *e, int day, const struct counts *cnt)
{
	int i = e->day[0] == day ? 0 : e->day[1] == day ? 1 : -1;

	if (i == -1) {
		i = e->day[0] < e->day[1] ? 0 : 1;	/* the older goes */
		if (e->day[i] > day)
			return;
	}
	e->day[i] = day;
	e->on[i] = *cnt;
}

/*
 * The visitor ids this node has sent, per day and series: a visitor
 * seen again costs no insert. Open addressing; a key of zeros marks a
 * free slot (a visitor id of 0 is then never remembered: it is sent
 * each time, which is only slower).
 */
struct seen_key {
	uint64_t series;
	uint64_t visitor;
	int32_t	 day;
};

struct seen_set {
	struct seen_key *slots;
	size_t	 cap;		/* a power of two */
	size_t	 n;
};

static size_t
seen_slot(const struct seen_set *s, const struct seen_key *k)
{
	uint64_t h = k->series * 0x9e3779b97f4a7c15ULL ^ k->visitor ^
	    (uint64_t)(uint32_t)k->day << 32;

	h ^= h >> 29;
	return (size_t)(h * 0xbf58476d1ce4e5b9ULL >> 17) & (s->cap - 1);
}

static bool
seen_has(const struct seen_set *s, const struct seen_key *k)
{
	size_t i;

	if (k->visitor == 0 || s->cap == 0)
		return false;
	for (i = seen_slot(s, k); s->slots[i].visitor != 0;
	    i = (i + 1) & (s->cap - 1))
		if (s->slots[i].visitor == k->visitor &&
		    s->slots[i].series == k->series &&
		    s->slots[i].day == k->day)
			return true;
	return false;
}

static void seen_rebuild(struct seen_set *, size_t cap, int min_day);
static void *grow(void *, size_t *, size_t, size_t);

static void
seen_add(struct seen_set *s, const struct seen_key *k)
{
	size_t i;

	if (k->visitor == 0)
		return;
	if ((s->n + 1) * 2 > s->cap) {
		seen_rebuild(s, s->cap ? s->cap * 2 : 4096, INT32_MIN);
		if ((s->n + 1) * 2 > s->cap)
			return;	/* no memory: only slower */
	}
	for (i = seen_slot(s, k); s->slots[i].visitor != 0;
	    i = (i + 1) & (s->cap - 1))
		if (s->slots[i].visitor == k->visitor &&
		    s->slots[i].series == k->series &&
		    s->slots[i].day == k->day)
			return;
	s->slots[i] = *k;
	s->n++;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Copies the keys of days >= min_day, and of no series in the sorted
 * drop[ndrop], into a table of cap slots. */
static void
seen_copy(struct seen_set *s, size_t cap, int min_day, const uint64_t *drop,
    size_t ndrop)
{
	struct seen_set n = { 0 };
	size_t i;

	if ((n.slots = calloc(cap, sizeof(*n.slots))) == NULL)
		return;
	n.cap = cap;
	for (i = 0; i < s->cap; i++)
		if (s->slots[i].visitor != 0 && s->slots[i].day >= min_day &&
		    (ndrop == 0 || bsearch(&s->slots[i].series, drop, ndrop,
		    sizeof(*drop), cmp_u64) == NULL))
			seen_add(&n, &s->slots[i]);
	free(s->slots);
	*s = n;
}

static void
seen_rebuild(struct seen_set *s, size_t cap, int min_day)
{
	seen_copy(s, cap, min_day, NULL, 0);
}

/* Forgets the visitor ids sent for the series of hashes series[n]. */
static void
seen_forget(struct seen_set *s, uint64_t *series, size_t n)
{
	if (n == 0 || s->n == 0)
		return;
	qsort(series, n, sizeof(*series), cmp_u64);
	seen_copy(s, s->cap, INT32_MIN, series, n);
}

/*
 * tallyctl reset deletes a series with its visitor ids: a visitor of it
 * is new again, as with LMDB, where the ids go with the counts. This
 * node must then send that visitor's id again, so it forgets what it
 * sent for every series of the copy old that the copy new (read whole
 * since) lacks or has under another id (identity ids are never reused:
 * a series reset and made again has a new one).
 */
static void
seen_forget_reset(struct seen_set *s, const struct cache *old,
    const struct cache *new)
{
	const struct centry *e, *ne;
	uint64_t *gone = NULL, *np;
	size_t i, n = 0, cap = 0;

	if (old == NULL || s->n == 0)
		return;
	for (i = 0; i < old->nbuckets; i++)
		for (e = old->buckets[i]; e; e = e->next) {
			if (e->id <= 0)
				continue;
			ne = cache_find(new, e->key,
			    e->key + e->site_len + 1, e->hash);
			if (ne != NULL && ne->id == e->id)
				continue;
			if ((np = grow(gone, &cap, n, sizeof(*gone))) == NULL)
				break;
			gone = np;
			gone[n++] = e->hash;
		}
	seen_forget(s, gone, n);
	free(gone);
}

/*
 * What a write transaction gathers in cached mode, and what a flush
 * sends: counts per series and day, visitor ids, referrer views.
 */
struct add_row {
	char	*site;
	char	*path;
	int32_t	 day;
	uint64_t views;
	int64_t	 id;		/* filled at commit */
};

struct ref_row {
	char	*site;
	char	*host;
	int32_t	 day;
	uint32_t max;
	uint64_t views;
};

struct flush {
	struct add_row *adds;
	size_t	 nadds, capadds;
	struct seen_key *seen;
	size_t	 nseen, capseen;
	struct ref_row *refs;
	size_t	 nrefs, caprefs;
	int64_t	 seq;
	struct flush *next;	/* in doubt: the one before */
	bool	 applied;	/* in doubt: the ledger says it counted */
};

struct pg_ctxn {
	struct store_txn base;
	struct pg_store *st;
	struct flush f;
	unsigned char *salts;
	size_t	 salts_len;
	int	 prune_before;	/* seen_prune's day, or INT_MIN */
};

static void
flush_free(struct flush *f)
{
	size_t i;

	for (i = 0; i < f->nadds; i++)
		free(f->adds[i].site);	/* path shares its allocation */
	for (i = 0; i < f->nrefs; i++)
		free(f->refs[i].site);
	free(f->adds);
	free(f->seen);
	free(f->refs);
	memset(f, 0, sizeof(*f));
}

static void *
grow(void *p, size_t *cap, size_t n, size_t size)
{
	void *np;

	if (n < *cap)
		return p;
	if ((np = reallocarray(p, *cap ? *cap * 2 : 64, size)) == NULL)
		return NULL;
	*cap = *cap ? *cap * 2 : 64;
	return np;
}

/* Two strings in one allocation: a, then b. */
static char *
strdup_pair(const char *a, const char *b, char **bcopy)
{
	size_t al = strlen(a), bl = strlen(b);
	char *p;

	if ((p = malloc(al + bl + 2)) == NULL)
		return NULL;
	memcpy(p, a, al + 1);
	memcpy(p + al + 1, b, bl + 1);
	*bcopy = p + al + 1;
	return p;
}

static int
oom(void)
{
	store_set_error("out of memory");
	return STORE_ERROR;
}

static int
c_add(struct store_txn *base_t, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;
	struct flush *f = &t->f;
	struct add_row *r, *np;

	(void)visitors;	/* the database counts the ids it inserts */
	if (day < 0) {
		store_set_error("bad day");
		return STORE_ERROR;
	}
	if ((np = grow(f->adds, &f->capadds, f->nadds, sizeof(*r))) == NULL)
		return oom();
	f->adds = np;
	r = &f->adds[f->nadds];
	memset(r, 0, sizeof(*r));
	if ((r->site = strdup_pair(site, path, &r->path)) == NULL)
		return oom();
	r->day = day;
	r->views = views;
	f->nadds++;
	return STORE_OK;
}

static int
c_seen_put(struct store_txn *base_t, int day, uint64_t series,
    uint64_t visitor)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;
	struct flush *f = &t->f;
	struct seen_key *np;

	if ((np = grow(f->seen, &f->capseen, f->nseen, sizeof(*np))) == NULL)
		return oom();
	f->seen = np;
	f->seen[f->nseen].day = day;
	f->seen[f->nseen].series = series;
	f->seen[f->nseen++].visitor = visitor;
	return STORE_OK;
}

static int
c_referrer_add(struct store_txn *base_t, const char *site, int day,
    const char *host, uint64_t views, uint32_t max)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;
	struct flush *f = &t->f;
	struct ref_row *r, *np;

	if (day < 0 || strlen(site) > REFERRER_SITE_MAX || host[0] == '\0' ||
	    strlen(host) > STORE_REFERRER_MAX) {
		store_set_error("bad referrer row");
		return STORE_ERROR;
	}
	if ((np = grow(f->refs, &f->caprefs, f->nrefs, sizeof(*r))) == NULL)
		return oom();
	f->refs = np;
	r = &f->refs[f->nrefs];
	if ((r->site = strdup_pair(site, host, &r->host)) == NULL)
		return oom();
	r->day = day;
	r->views = views;
	r->max = max;
	f->nrefs++;
	return STORE_OK;
}

/* The database decides at commit: nothing is "seen" before. */
static int
c_txn_seen_get(struct store_txn *base_t, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	*seen = false;
	return STORE_OK;
}

static int
c_seen_prune(struct store_txn *base_t, int day)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;

	if (day > t->prune_before)
		t->prune_before = day;
	return STORE_OK;
}

/* The salts go to the database at commit; any other record (LMDB's
 * disk probe) has no meaning here. */
static int
c_meta_put(struct store_txn *base_t, const char *key, const void *v,
    size_t len)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;

	if (strcmp(key, STORE_META_SALTS) != 0)
		return STORE_OK;
	free(t->salts);
	t->salts_len = 0;
	if ((t->salts = malloc(len ? len : 1)) == NULL)
		return oom();
	memcpy(t->salts, v, len);
	t->salts_len = len;
	return STORE_OK;
}

static int
c_unsupported(void)
{
	store_set_error("not available in the daemon's mode of the "
	    "PostgreSQL store");
	return STORE_ERROR;
}

static int
c_write_begin(struct store *base_st, struct store_txn **out)
{
	struct pg_store *st = (struct pg_store *)base_st;
	struct pg_ctxn *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return oom();
	t->base.ops = st->base.ops;
	t->st = st;
	t->prune_before = INT_MIN;
	*out = &t->base;
	return STORE_OK;
}

static void
c_abort(struct store_txn *base_t)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;

	if (t == NULL)
		return;
	flush_free(&t->f);
	free(t->salts);
	free(t);
}

static uint64_t
c_txn_version(struct store_txn *base_t)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;
	uint64_t v;

	pthread_mutex_lock(&t->st->cache_lock);
	v = t->st->version + 1;
	pthread_mutex_unlock(&t->st->cache_lock);
	return v;
}

static int
add_cmp(const void *a, const void *b)
{
	const struct add_row *x = a, *y = b;
	int c;

	if ((c = strcmp(x->site, y->site)) != 0 ||
	    (c = strcmp(x->path, y->path)) != 0)
		return c;
	return x->day < y->day ? -1 : x->day > y->day;
}

static int
seen_cmp(const void *a, const void *b)
{
	const struct seen_key *x = a, *y = b;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	if (x->series != y->series)
		return x->series < y->series ? -1 : 1;
	return x->visitor < y->visitor ? -1 : x->visitor > y->visitor;
}

static int
ref_cmp(const void *a, const void *b)
{
	const struct ref_row *x = a, *y = b;
	int c;

	if ((c = strcmp(x->site, y->site)) != 0)
		return c;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return strcmp(x->host, y->host);
}

/* Sorts the rows (the order rows are locked in) and merges those of
 * one key. */
static void
flush_sort(struct flush *f)
{
	size_t i, n;

	if (f->nadds > 1)
		qsort(f->adds, f->nadds, sizeof(*f->adds), add_cmp);
	for (i = n = 0; i < f->nadds; i++) {
		if (n > 0 && add_cmp(&f->adds[n - 1], &f->adds[i]) == 0) {
			store_count_add(&f->adds[n - 1].views,
			    f->adds[i].views);
			free(f->adds[i].site);
		} else
			f->adds[n++] = f->adds[i];
	}
	f->nadds = n;
	if (f->nseen > 1)
		qsort(f->seen, f->nseen, sizeof(*f->seen), seen_cmp);
	for (i = n = 0; i < f->nseen; i++)
		if (n == 0 || seen_cmp(&f->seen[n - 1], &f->seen[i]) != 0)
			f->seen[n++] = f->seen[i];
	f->nseen = n;
	if (f->nrefs > 1)
		qsort(f->refs, f->nrefs, sizeof(*f->refs), ref_cmp);
	for (i = n = 0; i < f->nrefs; i++) {
		if (n > 0 && ref_cmp(&f->refs[n - 1], &f->refs[i]) == 0) {
			store_count_add(&f->refs[n - 1].views,
			    f->refs[i].views);
			free(f->refs[i].site);
		} else
			f->refs[n++] = f->refs[i];
	}
	f->nrefs = n;
}

/* The flush whose answer was lost was applied after all: what it sent
 * comes off this one (the counter has put its hits back into this
 * batch). Visitor ids need nothing: inserting one again adds none. */
static void
flush_subtract(struct flush *f, const struct flush *sent)
{
	struct add_row *a;
	struct ref_row *r;
	size_t i;

	for (i = 0; i < sent->nadds && f->nadds > 0; i++) {
		a = bsearch(&sent->adds[i], f->adds, f->nadds,
		    sizeof(*f->adds), add_cmp);
		if (a != NULL)
			a->views -= a->views < sent->adds[i].views ?
			    a->views : sent->adds[i].views;
	}
	for (i = 0; i < sent->nrefs && f->nrefs > 0; i++) {
		r = bsearch(&sent->refs[i], f->refs, f->nrefs,
		    sizeof(*f->refs), ref_cmp);
		if (r != NULL)
			r->views -= r->views < sent->refs[i].views ?
			    r->views : sent->refs[i].views;
	}
}

/*
 * Binary arrays (PostgreSQL's array_send format): a header of five
 * 32-bit numbers, then each element as its length and its bytes, all
 * big-endian.
 */
struct arr {
	unsigned char *buf;
	size_t	 len, cap;
	uint32_t n;
	uint32_t oid;
	bool	 failed;
};

#define OID_INT4	23
#define OID_INT8	20
#define OID_TEXT	25

static void
arr_put(struct arr *a, const void *p, size_t len)
{
	unsigned char *nb;
	size_t cap;

	if (a->failed)
		return;
	if (a->len + len > a->cap) {
		for (cap = a->cap ? a->cap : 256; cap < a->len + len; cap *= 2)
			;
		if ((nb = realloc(a->buf, cap)) == NULL) {
			a->failed = true;
			return;
		}
		a->buf = nb;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, len);
	a->len += len;
}

static void
arr_u32(struct arr *a, uint32_t v)
{
	v = htonl(v);
	arr_put(a, &v, 4);
}

static void
arr_init(struct arr *a, uint32_t oid)
{
	memset(a, 0, sizeof(*a));
	a->oid = oid;
	/* ndim, has nulls, element type, length, lower bound */
	arr_u32(a, 1);
	arr_u32(a, 0);
	arr_u32(a, oid);
	arr_u32(a, 0);
	arr_u32(a, 1);
}

static void
arr_i32(struct arr *a, int32_t v)
{
	arr_u32(a, 4);
	arr_u32(a, (uint32_t)v);
	a->n++;
}

static void
arr_i64(struct arr *a, int64_t v)
{
	arr_u32(a, 8);
	arr_u32(a, (uint32_t)((uint64_t)v >> 32));
	arr_u32(a, (uint32_t)v);
	a->n++;
}

static void
arr_text(struct arr *a, const char *s)
{
	size_t len = strlen(s);

	arr_u32(a, (uint32_t)len);
	arr_put(a, s, len);
	a->n++;
}

/* Fills in the length; false when memory ran out. */
static bool
arr_done(struct arr *a)
{
	uint32_t n = htonl(a->n);

	if (a->failed)
		return false;
	memcpy(a->buf + 12, &n, 4);
	return true;
}

/*
 * The ids of the series a flush adds to, from the copy. Those it lacks
 * (a new page, a new site, with the site of a page) go into sites and
 * paths, each once, and take the id -k (the k-th): the flush creates
 * them and answers their ids.
 */
static void
flush_ids(struct pg_store *st, struct flush *f, struct arr *sites,
    struct arr *paths)
{
	const struct add_row *last = NULL;
	const char *site_wanted = NULL;
	struct centry *e;
	int64_t k = 0;
	size_t i;

	pthread_mutex_lock(&st->cache_lock);
	for (i = 0; i < f->nadds; i++) {
		struct add_row *a = &f->adds[i];

		e = cache_find(st->cache, a->site, a->path,
		    store_series_hash(a->site, a->path));
		if (e != NULL && e->id > 0) {
			a->id = e->id;
			continue;
		}
		/* The rows are sorted: another day of the last one. */
		if (last != NULL && strcmp(last->site, a->site) == 0 &&
		    strcmp(last->path, a->path) == 0) {
			a->id = last->id;
			continue;
		}
		/* A page's site is made with it, first ('' sorts first). */
		if (site_wanted == NULL || strcmp(site_wanted, a->site) != 0) {
			site_wanted = a->site;
			if (a->path[0] != '\0' && ((e = cache_find(st->cache,
			    a->site, SITE_SERIES, store_series_hash(a->site,
			    SITE_SERIES))) == NULL || e->id <= 0)) {
				arr_text(sites, a->site);
				arr_text(paths, SITE_SERIES);
				k++;
			}
		}
		arr_text(sites, a->site);
		arr_text(paths, a->path);
		a->id = -++k;
		last = a;
	}
	pthread_mutex_unlock(&st->cache_lock);
}

/*
 * The absolute counts a flush or a refresh answers, into the copy:
 * id, site, path, total views, total visitors, pages, day, views and
 * visitors of the day (the day columns NULL: none).
 *
 * Pages -1: not counted. Only the whole read counts a site's pages (a
 * range over all of them); after it, the copy counts them itself: every
 * new series reaches the copy through a flush's answer or a refresh (its
 * running total is stamped when it is made), and a deletion (reset)
 * makes the next read whole.
 */
static void
cache_apply(struct cache *c, const PGresult *res)
{
	struct centry *e, *site;
	struct counts cnt;
	const char *pages;
	bool fresh;
	int i, kinds = PQnfields(res) > 9;

	for (i = 0; i < PQntuples(res); i++) {
		if (kinds && atoi(val(res, i, 9)) != 0)
			continue;
		if ((e = cache_entry(c, val(res, i, 1), val(res, i, 2))) ==
		    NULL)
			continue;
		fresh = e->id <= 0;
		e->id = strtoll(val(res, i, 0), NULL, 10);
		e->total.views = num_count(val(res, i, 3));
		e->total.visitors = num_count(val(res, i, 4));
		pages = val(res, i, 5);
		if (pages[0] != '-')
			e->npages = (uint32_t)strtoul(pages, NULL, 10);
		else if (fresh && val(res, i, 2)[0] != '\0' && (site =
		    cache_entry(c, val(res, i, 1), SITE_SERIES)) != NULL)
			site->npages++;
		if (PQgetisnull(res, i, 6))
			continue;
		cnt.views = num_count(val(res, i, 7));
		cnt.visitors = num_count(val(res, i, 8));
		centry_day(e, atoi(val(res, i, 6)), &cnt);
	}
}

/* A series of the batch that the flush did not answer for was deleted
 * (tallyctl reset): the copy forgets its id, and the next flush makes
 * it again. */
static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
cache_forget_gone(struct cache *c, struct seen_set *seen,
    const struct flush *f, const PGresult *res)
{
	struct centry *e;
	int64_t *ids;
	uint64_t *gone;
	size_t i, ngone = 0, n = (size_t)PQntuples(res);

	if (f->nadds == 0 || (ids = calloc(n + 1, sizeof(*ids))) == NULL)
		return;
	if ((gone = calloc(f->nadds, sizeof(*gone))) == NULL) {
		free(ids);
		return;
	}
	for (i = 0; i < n; i++)
		ids[i] = strtoll(val(res, (int)i, 0), NULL, 10);
	qsort(ids, n, sizeof(*ids), cmp_i64);
	for (i = 0; i < f->nadds; i++) {
		if (bsearch(&f->adds[i].id, ids, n, sizeof(*ids), cmp_i64))
			continue;
		if ((e = cache_find(c, f->adds[i].site, f->adds[i].path,
		    store_series_hash(f->adds[i].site, f->adds[i].path))) !=
		    NULL && e->id != 0) {
			e->id = 0;
			e->total.views = e->total.visitors = 0;
			e->day[0] = e->day[1] = -1;
			gone[ngone++] = e->hash;
		}
	}
	/* and its visitors are new again (seen_forget_reset) */
	seen_forget(seen, gone, ngone);
	free(gone);
	free(ids);
}

/* Reconnects when the connection is lost, and puts this node's salts
 * back: a failover empties the UNLOGGED table. A daemon that started
 * without its database checks the schema and reads its ledger entry and
 * the copy at the first connection. Under conn_lock. */
static int
c_connect(struct pg_store *st)
{
	bool was_down = PQstatus(st->conn) != CONNECTION_OK;
	int rc;

	if ((rc = reconnect(st)) != STORE_OK)
		return rc;
	if (!st->ready)
		rc = cached_connected(st);
	else if (was_down && st->salts_len > 0)
		rc = salts_put(st, st->salts, st->salts_len);
	if (rc == STORE_OK)
		__atomic_store_n(&st->up, true, __ATOMIC_RELAXED);
	return rc;
}

/* The node's last number in its running totals: its ledger entry,
 * should it have been pruned. It is in the rows of the latest block
 * (mark), which the index finds. */
static int
node_last_seq(struct pg_store *st, int64_t *seq)
{
	struct params p = { 0 };
	PGresult *res;
	int rc;

	p_text(&p, st->node);
	if ((rc = exec_p(st, "reading the totals' numbers", "SELECT "
	    "coalesce(max(seq), 0) FROM tally_totals WHERE node = $1 AND "
	    "mark = (SELECT max(mark) FROM tally_totals WHERE node = $1)", &p,
	    0, &res)) != STORE_OK)
		return rc;
	*seq = strtoll(val(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

static void
doubts_free(struct pg_store *st)
{
	struct flush *d, *next;

	for (d = st->in_doubt; d != NULL; d = next) {
		next = d->next;
		flush_free(d);
		free(d);
	}
	st->in_doubt = NULL;
}

/*
 * Settles the flushes whose answer was lost: the ledger says which
 * counted (its number is theirs or later). FOR UPDATE waits for a flush
 * still running on the server (its connection gone, it may not know
 * yet) to end, so that none counts after this look. Those that did not
 * count are forgotten; those that did stay, to be taken off every flush
 * until one is known to have counted, since the counter keeps putting
 * their hits back until then.
 */
static int
doubts_settle(struct pg_store *st)
{
	struct flush *d, **pd;
	struct params p = { 0 };
	PGresult *res;
	int64_t seq;
	int rc;

	if (st->in_doubt == NULL)
		return STORE_OK;
	p_text(&p, st->node);
	if ((rc = exec_p(st, "reading the ledger", "SELECT seq FROM "
	    "tally_ledger WHERE node = $1 FOR UPDATE", &p, 0, &res)) !=
	    STORE_OK)
		return rc;
	seq = PQntuples(res) > 0 ? strtoll(val(res, 0, 0), NULL, 10) : -1;
	PQclear(res);
	if (seq == -1 && (rc = node_last_seq(st, &seq)) != STORE_OK)
		return rc;
	for (pd = &st->in_doubt; (d = *pd) != NULL;) {
		if (!d->applied && seq < d->seq) {
			*pd = d->next;
			flush_free(d);
			free(d);
			continue;
		}
		d->applied = true;
		pd = &d->next;
	}
	return STORE_OK;
}

/* FLUSH_FAST met a row that another transaction inserted after its
 * snapshot was taken: nothing of it was applied. */
static bool
flush_conflict(const PGresult *res)
{
	const char *state;

	if (PQresultStatus(res) != PGRES_FATAL_ERROR)
		return false;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return state != NULL && strcmp(state, "23505") == 0;
}

static int
flush_send(struct pg_store *st, struct flush *f, PGresult **out)
{
	struct arr ids, days, views, hashes, nsite, npath, sday, shash, svis,
	    rsite, rday, rhost, rviews, rmax;
	struct arr *all[] = { &ids, &days, &views, &hashes, &nsite, &npath,
	    &sday, &shash, &svis, &rsite, &rday, &rhost, &rviews, &rmax };
	struct params p = { 0 };
	const char *pv[20];
	int pl[20], pf[20];
	size_t i;
	bool ok = true;
	PGresult *res;
	char seqbuf[24], daybuf[16];
	int rc, np;

	arr_init(&ids, OID_INT8);
	arr_init(&days, OID_INT4);
	arr_init(&views, OID_INT8);
	arr_init(&hashes, OID_INT8);
	arr_init(&nsite, OID_TEXT);
	arr_init(&npath, OID_TEXT);
	arr_init(&sday, OID_INT4);
	arr_init(&shash, OID_INT8);
	arr_init(&svis, OID_INT8);
	arr_init(&rsite, OID_TEXT);
	arr_init(&rday, OID_INT4);
	arr_init(&rhost, OID_TEXT);
	arr_init(&rviews, OID_INT8);
	arr_init(&rmax, OID_INT4);
	flush_ids(st, f, &nsite, &npath);
	for (i = 0; i < f->nadds; i++) {
		arr_i64(&ids, f->adds[i].id);
		arr_i32(&days, f->adds[i].day);
		arr_i64(&views, (int64_t)(f->adds[i].views > STORE_COUNT_MAX ?
		    STORE_COUNT_MAX : f->adds[i].views));
		arr_i64(&hashes, (int64_t)store_series_hash(f->adds[i].site,
		    f->adds[i].path));
	}
	for (i = 0; i < f->nseen; i++) {
		arr_i32(&sday, f->seen[i].day);
		arr_i64(&shash, (int64_t)f->seen[i].series);
		arr_i64(&svis, (int64_t)f->seen[i].visitor);
	}
	for (i = 0; i < f->nrefs; i++) {
		arr_text(&rsite, f->refs[i].site);
		arr_i32(&rday, f->refs[i].day);
		arr_text(&rhost, f->refs[i].host);
		arr_i64(&rviews, (int64_t)(f->refs[i].views > STORE_COUNT_MAX ?
		    STORE_COUNT_MAX : f->refs[i].views));
		arr_i32(&rmax, (int32_t)(f->refs[i].max > INT32_MAX ?
		    INT32_MAX : f->refs[i].max));
	}
	snprintf(seqbuf, sizeof(seqbuf), "%" PRId64, f->seq);
	snprintf(daybuf, sizeof(daybuf), "%d", day_today());
	p_text(&p, st->node);
	p_text(&p, seqbuf);
	p_text(&p, daybuf);
	for (np = 0; np < p.n; np++) {
		pv[np] = p.val[np];
		pl[np] = 0;
		pf[np] = 0;
	}
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		ok = arr_done(all[i]) && ok;
		pv[np] = (const char *)all[i]->buf;
		pl[np] = (int)all[i]->len;
		pf[np++] = 1;
	}
	/* $18: the reset number this node's copy is of (FLUSH_SQL_GEN). */
	pv[np] = st->reset;
	pl[np] = 0;
	pf[np++] = 0;
	rc = STORE_OK;
	if (!ok)
		rc = oom();
	else {
		pthread_once(&flush_sql_once, flush_sql_make);
		res = NULL;
		if (st->safe_left > 0)
			st->safe_left--;
		else {
			res = PQexecParams(st->conn, flush_sql[FLUSH_FAST], np,
			    NULL, pv, pl, pf, 0);
			if (flush_conflict(res)) {
				PQclear(res);
				res = NULL;
				st->safe_left = FLUSH_SAFE_RUN;
			}
		}
		if (res == NULL)
			res = PQexecParams(st->conn, flush_sql[FLUSH_SAFE], np,
			    NULL, pv, pl, pf, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			*out = res;
		else {
			rc = failed(st, "flushing", res);
			/* No answer from the server: in doubt. */
			if (res == NULL || PQresultErrorField(res,
			    PG_DIAG_SQLSTATE) == NULL ||
			    PQstatus(st->conn) != CONNECTION_OK)
				rc = -rc;
			PQclear(res);
		}
	}
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		free(all[i]->buf);
	return rc;
}

static void
c_forget(struct pg_ctxn *t)
{
	flush_free(&t->f);
	free(t->salts);
	free(t);
}

/*
 * The ledger entries of nodes gone for good: those whose last flush is
 * LEDGER_KEEP_DAYS old. An entry serves its own node only, to tell
 * whether a flush whose answer was lost counted: the node asks at its
 * next flush, as soon as it reaches the database again, and a
 * statement cut from its node ends long before (the server notices at
 * its answer at the latest). Past the window, a node cut off for that
 * long with a flush in doubt still finds its number in its running
 * totals (doubts_settle), and a node starting again continues after
 * them (cached_init), so that the other nodes' watermarks stay right.
 * Any node does it, at its day rollover; the entry of tallyctl (node
 * '') and the node's own stay.
 */
#define LEDGER_KEEP_DAYS	7

static int cache_load(struct pg_store *);

/* Whether a flush's answer says that it did nothing: the store was
 * reset since this node's copy was read (FLUSH_SQL_GEN). */
static bool
answer_stale(const PGresult *res)
{
	int i;

	for (i = PQntuples(res) - 1; i >= 0; i--)
		if (PQgetisnull(res, i, 0) &&
		    atoi(val(res, i, 5)) == FLUSH_STALE)
			return true;
	return false;
}

/*
 * Sends a batch under the node's next number. A flush that finds a
 * reset its node has not read writes nothing: the copy is read again
 * (its series as they are now, the visitor ids sent for deleted ones
 * forgotten) and the batch sent again, so that the hits count, once,
 * in the series the reset left or made anew. A reset each time the
 * copy is read again would keep the batch for a later flush.
 */
static int
flush_stale_send(struct pg_store *st, struct flush *f, PGresult **res)
{
	int rc, tries;

	for (tries = 0;; tries++) {
		f->seq = ++st->seq;
		if ((rc = flush_send(st, f, res)) != STORE_OK ||
		    !answer_stale(*res))
			return rc;
		PQclear(*res);
		*res = NULL;
		if (tries == 2) {
			store_set_error("flushing: the store was reset at "
			    "each try");
			return STORE_UNAVAILABLE;
		}
		if ((rc = cache_load(st)) != STORE_OK)
			return rc;
	}
}

static int
ledger_prune(struct pg_store *st, int today)
{
	struct params p = { 0 };

	p_text(&p, st->node);
	p_i64(&p, (int64_t)today - LEDGER_KEEP_DAYS);
	return exec_p(st, "pruning the ledger", "DELETE FROM tally_ledger "
	    "WHERE node <> '' AND node <> $1 AND day < $2", &p, 0, NULL);
}

static int
c_commit(struct store_txn *base_t)
{
	struct pg_ctxn *t = (struct pg_ctxn *)base_t;
	struct pg_store *st = t->st;
	struct flush *f = &t->f;
	struct params p = { 0 };
	struct flush *d;
	PGresult *res = NULL;
	size_t i;
	int rc;

	flush_sort(f);
	pthread_mutex_lock(&st->conn_lock);
	if ((rc = c_connect(st)) != STORE_OK)
		goto done;
	if ((rc = doubts_settle(st)) != STORE_OK)
		goto done;
	if (t->salts_len > 0) {
		if ((rc = salts_put(st, t->salts, t->salts_len)) != STORE_OK)
			goto done;
		if (t->salts_len <= sizeof(st->salts)) {
			memcpy(st->salts, t->salts, t->salts_len);
			st->salts_len = t->salts_len;
		}
	}
	if (t->prune_before != INT_MIN) {
		p_i64(&p, t->prune_before);
		if ((rc = exec_p(st, "pruning seen visitors", "DELETE FROM "
		    "tally_visitors WHERE day < $1", &p, 0, NULL)) != STORE_OK ||
		    (rc = ledger_prune(st, t->prune_before + 1)) != STORE_OK)
			goto done;
		pthread_mutex_lock(&st->cache_lock);
		seen_rebuild(st->seen, st->seen->cap ? st->seen->cap : 4096,
		    t->prune_before);
		pthread_mutex_unlock(&st->cache_lock);
	}
	if (f->nadds + f->nseen + f->nrefs > 0) {
		for (d = st->in_doubt; d != NULL; d = d->next)
			flush_subtract(f, d);
		rc = flush_stale_send(st, f, &res);
		if (rc < 0) {
			/* Kept, to learn from the ledger whether it
			 * counted before the next flush is sent. */
			if ((d = malloc(sizeof(*d))) != NULL) {
				*d = *f;
				memset(f, 0, sizeof(*f));
				d->applied = false;
				d->next = st->in_doubt;
				st->in_doubt = d;
			}
			rc = -rc;
		}
		if (rc != STORE_OK)
			goto done;
		/* This one counted: the counter has let go of the hits of
		 * those before. */
		doubts_free(st);
	}
	pthread_mutex_lock(&st->cache_lock);
	if (res != NULL) {
		cache_forget_gone(st->cache, st->seen, f, res);
		cache_apply(st->cache, res);
	}
	for (i = 0; i < f->nseen; i++)
		seen_add(st->seen, &f->seen[i]);
	st->version++;
	pthread_mutex_unlock(&st->cache_lock);
done:
	pthread_mutex_unlock(&st->conn_lock);
	PQclear(res);
	c_forget(t);
	return rc;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
marks_free(struct pg_store *st)
{
	size_t i;

	for (i = 0; i < st->nmarks; i++)
		free(st->marks[i].node);
	free(st->marks);
	st->marks = NULL;
	st->nmarks = 0;
}

/* The watermarks and the reset number a read answered (rows of kind 1
 * and 2); false when memory ran out (the next read is then whole). */
static bool
marks_take(struct pg_store *st, const PGresult *res)
{
	struct mark *m;
	size_t n = 0;
	int i;

	marks_free(st);
	st->reset[0] = '\0';
	if ((m = calloc((size_t)PQntuples(res) + 1, sizeof(*m))) == NULL)
		return false;
	for (i = 0; i < PQntuples(res); i++) {
		switch (atoi(val(res, i, 9))) {
		case 1:
			if ((m[n].node = strdup(val(res, i, 1))) == NULL)
				goto oom;
			m[n++].seq = strtoll(val(res, i, 0), NULL, 10);
			break;
		case 2:
			snprintf(st->reset, sizeof(st->reset), "%s",
			    val(res, i, 1));
			break;
		}
	}
	st->marks = m;
	st->nmarks = n;
	return true;
oom:
	while (n > 0)
		free(m[--n].node);
	free(m);
	return false;
}

/* The reset number of a read's answer ("" when none). */
static const char *
answer_reset(const PGresult *res)
{
	int i;

	for (i = PQntuples(res) - 1; i >= 0; i--)
		if (atoi(val(res, i, 9)) == 2)
			return val(res, i, 1);
	return "";
}

/* Reads the whole copy again: every series, with today's and
 * yesterday's counts. */
static int
cache_load(struct pg_store *st)
{
	struct params p = { 0 };
	struct cache *c, *old;
	PGresult *res;
	int rc, today = day_today();

	p_i64(&p, today - 1);
	p_i64(&p, today);
	if ((rc = exec_p(st, "reading the counts", REFRESH_ALL_SQL, &p, 0,
	    &res)) != STORE_OK)
		return rc;
	if ((c = cache_new((size_t)PQntuples(res))) == NULL) {
		PQclear(res);
		return oom();
	}
	cache_apply(c, res);
	if (!marks_take(st, res)) {
		PQclear(res);
		cache_free(c);
		return oom();
	}
	PQclear(res);
	pthread_mutex_lock(&st->cache_lock);
	old = st->cache;
	st->cache = c;
	seen_forget_reset(st->seen, old, c);
	st->version++;
	pthread_mutex_unlock(&st->cache_lock);
	cache_free(old);
	st->refreshed_ms = now_ms();
	return STORE_OK;
}

/* The statement of cache_update for the nodes known, and its
 * parameters: today - 1, today, then each node's name and watermark. */
static char *
refresh_sql(struct pg_store *st, int today, const char ***pv, char **nums)
{
	size_t i, len = 0, cap;
	char *sql, *n;
	int w;

	cap = sizeof(REFRESH_HEAD) + sizeof(REFRESH_TAIL) +
	    sizeof(REFRESH_NEW) + 40 + st->nmarks * (sizeof(REFRESH_NODE) +
	    120);
	*pv = calloc(2 + 2 * st->nmarks, sizeof(**pv));
	*nums = calloc(2 + st->nmarks, 24);
	if ((sql = malloc(cap)) == NULL || *pv == NULL || *nums == NULL) {
		free(sql);
		free(*pv);
		free(*nums);
		return NULL;
	}
	n = *nums;
	snprintf(n, 24, "%d", today - 1);
	snprintf(n + 24, 24, "%d", today);
	(*pv)[0] = n;
	(*pv)[1] = n + 24;
	len = (size_t)snprintf(sql, cap, "%s", REFRESH_HEAD);
	for (i = 0; i < st->nmarks; i++) {
		snprintf(n + 24 * (i + 2), 24, "%" PRId64, st->marks[i].seq);
		(*pv)[2 + 2 * i] = st->marks[i].node;
		(*pv)[3 + 2 * i] = n + 24 * (i + 2);
		w = snprintf(sql + len, cap - len, REFRESH_NODE " UNION ALL ",
		    (int)(3 + 2 * i), (int)(4 + 2 * i), (int)(4 + 2 * i),
		    (int)(3 + 2 * i), (int)(4 + 2 * i), REFRESH_MAX);
		len += (size_t)w;
	}
	w = snprintf(sql + len, cap - len, REFRESH_NEW, REFRESH_MAX);
	len += (size_t)w;
	for (i = 0; i < st->nmarks; i++) {
		w = snprintf(sql + len, cap - len, "%s$%d",
		    i ? ", " : " WHERE l.node NOT IN (", (int)(3 + 2 * i));
		len += (size_t)w;
	}
	snprintf(sql + len, cap - len, "%s%s", st->nmarks ? ")" : "",
	    REFRESH_TAIL);
	return sql;
}

/* How many series the read found changed (kind 3). */
static long
answer_changed(const PGresult *res)
{
	int i;

	for (i = PQntuples(res) - 1; i >= 0; i--)
		if (atoi(val(res, i, 9)) == 3)
			return atol(val(res, i, 0));
	return 0;
}

/*
 * Reads what changed since the last read: the series whose running
 * total a node (or tallyctl) stamped with a number above that node's
 * watermark, and every series of a node that appeared since (a node
 * that started: its watermark is 0, and it has written little). The
 * copy is read whole instead when that cannot tell: tallyctl's reset
 * number moved (a deletion leaves no row to find), or a node changed
 * more series than one read takes.
 */
static int
cache_update(struct pg_store *st)
{
	const char **pv = NULL;
	char *nums = NULL, *sql;
	PGresult *res;
	int rc;

	if ((sql = refresh_sql(st, day_today(), &pv, &nums)) == NULL)
		return oom();
	res = PQexecParams(st->conn, sql, (int)(2 + 2 * st->nmarks), NULL,
	    pv, NULL, NULL, 0);
	free(sql);
	free(pv);
	free(nums);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = failed(st, "reading the counts", res);
		PQclear(res);
		return rc;
	}
	if (strcmp(answer_reset(res), st->reset) != 0 ||
	    answer_changed(res) >= REFRESH_MAX) {
		PQclear(res);
		return cache_load(st);
	}
	pthread_mutex_lock(&st->cache_lock);
	cache_apply(st->cache, res);
	st->version++;
	pthread_mutex_unlock(&st->cache_lock);
	if (!marks_take(st, res))
		st->reset[0] = '\1';	/* matches no answer: whole next time */
	PQclear(res);
	st->refreshed_ms = now_ms();
	return STORE_OK;
}

static int
c_refresh(struct store *base_st, uint64_t max_age_ms)
{
	struct pg_store *st = (struct pg_store *)base_st;
	bool ready;
	int rc;

	if (__atomic_load_n(&st->ready, __ATOMIC_ACQUIRE) &&
	    now_ms() - st->refreshed_ms < max_age_ms)
		return STORE_OK;
	pthread_mutex_lock(&st->conn_lock);
	/* A first connection reads the copy itself. */
	ready = st->ready;
	if ((rc = c_connect(st)) == STORE_OK && ready)
		rc = cache_update(st);
	pthread_mutex_unlock(&st->conn_lock);
	return rc;
}

/* Views: the copy, under its lock for each read. */
static int
c_view_begin(struct store_view *base_v)
{
	struct pg_view *v = (struct pg_view *)base_v;

	pthread_mutex_lock(&v->st->cache_lock);
	v->version = v->st->version;
	pthread_mutex_unlock(&v->st->cache_lock);
	v->active = true;
	return STORE_OK;
}

static void
c_view_end(struct store_view *base_v)
{
	struct pg_view *v = (struct pg_view *)base_v;

	v->active = false;
}

static void
c_view_free(struct store_view *base_v)
{
	free(base_v);
}

static int
c_get(struct store_view *base_v, const char *site, const char *path, int day,
    struct series_counts *out)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct centry *e;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&v->st->cache_lock);
	e = cache_find(v->st->cache, site, path,
	    store_series_hash(site, path));
	if (e != NULL && e->id > 0) {
		out->exists = true;
		out->id = (uint32_t)e->id;
		out->total = e->total;
		out->npages = e->npages;
		if (e->day[0] == day)
			out->day = e->on[0];
		else if (e->day[1] == day)
			out->day = e->on[1];
	}
	pthread_mutex_unlock(&v->st->cache_lock);
	return STORE_OK;
}

static int
c_seen_get(struct store_view *base_v, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct seen_key k = { series, visitor, day };

	pthread_mutex_lock(&v->st->cache_lock);
	*seen = seen_has(v->st->seen, &k);
	pthread_mutex_unlock(&v->st->cache_lock);
	return STORE_OK;
}

/* The salts (once a day, and at start) are read from the database
 * itself, the only read of a view that waits on it: every node must
 * use the one that won. It never connects: while the connection is
 * down (or was never made) it fails at once, and the committer's
 * refresh connects. Other records are LMDB's. */
static int
c_meta_get(struct store_view *base_v, const char *key, void *out, size_t *len)
{
	struct pg_view *v = (struct pg_view *)base_v;
	struct pg_store *st = v->st;
	int rc;

	if (strcmp(key, STORE_META_SALTS) != 0)
		return STORE_NOTFOUND;
	if (!__atomic_load_n(&st->up, __ATOMIC_RELAXED)) {
		store_set_error("reading the salts: not connected to the "
		    "database");
		return STORE_UNAVAILABLE;
	}
	pthread_mutex_lock(&st->conn_lock);
	if ((rc = c_connect(st)) == STORE_OK)
		rc = pg_meta_get(base_v, key, out, len);
	pthread_mutex_unlock(&st->conn_lock);
	return rc;
}

static int
c_view_unsupported(struct store_view *base_v)
{
	return c_unsupported();
}

static int
c_each_series(struct store_view *v, const char *site, store_series_cb cb,
    void *arg)
{
	return c_view_unsupported(v);
}

static int
c_each_day(struct store_view *v, const char *site, const char *path, int from,
    int to, bool with_adjust, store_row_cb cb, void *arg)
{
	return c_view_unsupported(v);
}

static int
c_each_recent(struct store_view *v, int from, int to, store_recent_cb cb,
    void *arg)
{
	return c_view_unsupported(v);
}

static int
c_series_name(struct store_view *v, uint32_t id, char *site, size_t sitesz,
    char *path, size_t pathsz)
{
	return c_view_unsupported(v);
}

static int
c_max_id(struct store_view *v, uint32_t *max)
{
	return c_view_unsupported(v);
}

static int
c_orphan_rows(struct store_view *v, uint64_t *orphans)
{
	return c_view_unsupported(v);
}

static int
c_each_referrer(struct store_view *v, const char *site, int from, int to,
    store_referrer_cb cb, void *arg)
{
	return c_view_unsupported(v);
}

static int
c_each_referrer_row(struct store_view *v, const char *site,
    store_referrer_row_cb cb, void *arg)
{
	return c_view_unsupported(v);
}

static int
c_referrer_get(struct store_view *v, const char *site, int day,
    const char *host, uint64_t *views)
{
	*views = 0;
	return c_view_unsupported(v);
}

static int
c_add_exact(struct store_txn *t, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors)
{
	return c_unsupported();
}

static int
c_add_adjust(struct store_txn *t, const char *site, const char *path,
    int64_t views, int64_t visitors)
{
	return c_unsupported();
}

static int
c_set_total(struct store_txn *t, const char *site, const char *path,
    uint64_t views, uint64_t visitors)
{
	return c_unsupported();
}

static int
c_reset(struct store_txn *t, const char *site, const char *path)
{
	return c_unsupported();
}

static struct store_view *
c_txn_view(struct store_txn *t)
{
	return NULL;
}

static int
c_txn_get(struct store_txn *t, const char *site, const char *path, int day,
    struct series_counts *out)
{
	memset(out, 0, sizeof(*out));
	return c_unsupported();
}

static int
c_referrer_add_exact(struct store_txn *t, const char *site, int day,
    const char *host, uint64_t views)
{
	return c_unsupported();
}

static int
c_referrer_reset(struct store_txn *t, const char *site)
{
	return c_unsupported();
}

/* This node's name: libpq's application_name when the URL gives one,
 * else host name and process id. Names must differ between the nodes
 * running at once: each has its own count rows and ledger entry. */
static void
node_name(struct pg_store *st)
{
	const char *app = PQparameterStatus(st->conn, "application_name");
	char host[64];

	if (app != NULL && app[0] != '\0') {
		snprintf(st->node, sizeof(st->node), "%s", app);
		return;
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(st->node, sizeof(st->node), "%s:%ld", host, (long)getpid());
}

/* Sets the store up for the daemon, before any connection: an empty
 * copy, nothing sent. */
static int
cached_init(struct pg_store *st)
{
	pthread_mutex_init(&st->conn_lock, NULL);
	pthread_mutex_init(&st->cache_lock, NULL);
	if ((st->seen = calloc(1, sizeof(*st->seen))) == NULL ||
	    (st->cache = cache_new(0)) == NULL)
		return oom();
	return STORE_OK;
}

/* At the daemon's first connection: the schema, its name, where its
 * ledger stands, the copy. */
static int
cached_connected(struct pg_store *st)
{
	struct params p = { 0 };
	PGresult *res;
	int64_t seq;
	int rc;

	if ((rc = schema_check(st)) != STORE_OK)
		return rc;
	node_name(st);
	p_text(&p, st->node);
	if ((rc = exec_p(st, "reading the ledger", "SELECT seq FROM "
	    "tally_ledger WHERE node = $1", &p, 0, &res)) != STORE_OK)
		return rc;
	st->seq = PQntuples(res) ? strtoll(val(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	/* Its entry pruned, a node goes on after its rows' numbers: the
	 * other nodes' watermarks must see its next ones. */
	if ((rc = node_last_seq(st, &seq)) != STORE_OK)
		return rc;
	if (seq > st->seq)
		st->seq = seq;
	/* The reset number the flushes hold (FLUSH_SQL_GEN) exists before
	 * the first reset. */
	if ((rc = exec_p(st, "making the reset number", "INSERT INTO "
	    "tally_meta (key, val) VALUES ('reset', '0') ON CONFLICT (key) "
	    "DO NOTHING", NULL, 0, NULL)) != STORE_OK ||
	    (rc = cache_load(st)) != STORE_OK)
		return rc;
	__atomic_store_n(&st->ready, true, __ATOMIC_RELEASE);
	__atomic_store_n(&st->up, true, __ATOMIC_RELAXED);
	return STORE_OK;
}

static void
cached_free(struct pg_store *st)
{
	cache_free(st->cache);
	if (st->seen)
		free(st->seen->slots);
	free(st->seen);
	doubts_free(st);
	marks_free(st);
	explicit_bzero(st->salts, sizeof(st->salts));
	pthread_mutex_destroy(&st->conn_lock);
	pthread_mutex_destroy(&st->cache_lock);
}

static const struct store_ops pg_cached_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.reconnects = pg_reconnects,
	.refresh = c_refresh,
	.view_new = pg_view_new,
	.view_free = c_view_free,
	.view_begin = c_view_begin,
	.view_end = c_view_end,
	.view_version = pg_view_version,
	.txn_version = c_txn_version,
	.get = c_get,
	.meta_get = c_meta_get,
	.each_series = c_each_series,
	.each_day = c_each_day,
	.recent_floor = pg_recent_floor,
	.each_recent = c_each_recent,
	.series_name = c_series_name,
	.max_id = c_max_id,
	.orphan_rows = c_orphan_rows,
	.write_begin = c_write_begin,
	.add = c_add,
	.add_exact = c_add_exact,
	.add_adjust = c_add_adjust,
	.set_total = c_set_total,
	.reset = c_reset,
	.meta_put = c_meta_put,
	.txn_view = c_txn_view,
	.txn_get = c_txn_get,
	.seen_get = c_seen_get,
	.txn_seen_get = c_txn_seen_get,
	.seen_put = c_seen_put,
	.seen_prune = c_seen_prune,
	.commit = c_commit,
	.abort = c_abort,
	.each_referrer = c_each_referrer,
	.each_referrer_row = c_each_referrer_row,
	.referrer_get = c_referrer_get,
	.referrer_add = c_referrer_add,
	.referrer_add_exact = c_referrer_add_exact,
	.referrer_reset = c_referrer_reset,
};

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
