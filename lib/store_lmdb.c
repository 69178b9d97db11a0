/*
 * The store on LMDB.
 *
 * Three databases in one environment:
 *   meta	 "schema" -> u32, "next_id" -> u32, and whatever else tally keeps
 *		 (visitor salts)
 *   series	 site '\0' path -> struct series_rec: the series' id and its
 *		 all-time count, kept up to date so that it is one lookup
 *   days	 id (u32 big-endian) day (u32 big-endian) -> struct day_rec
 *   recent	 day (u32 BE) -> sorted duplicates of 20 bytes: id (u32 BE),
 *		 views, visitors (u64): the same rows as "days" for the last
 *		 STORE_RECENT_DAYS days, day first, so that a window over all
 *		 pages is read a page of rows at a time (MDB_DUPFIXED)
 *   names	 id (u32 BE) -> site '\0' path: so that a page found by its
 *		 id (in "recent") is named without walking "series"
 *   seen	 day (u32 BE) series hash (u64) visitor id (u64) -> empty: the
 *		 visitors of today and yesterday, so that a restart does not
 *		 count them again; older days are pruned
 *   referrers	 site '\0' day (u32 BE) -> sorted duplicates, one per
 *		 referring host: host '\0' views (u64), ordered and found by
 *		 the host alone, so that a row is updated in place and a
 *		 day's number of hosts is one mdb_cursor_count (schema 2;
 *		 a store of schema 1 gets it when first opened writable)
 *   window	 id (u32 BE) -> struct window_rec: a page's views and visitors
 *		 of its recent rows from meta "window_out" (day, id) on, up
 *		 to "recent_high" (see store.h), and its site's id (schema 3)
 *   winrank	 site id (u32 BE), ~views (u64 BE), id (u32 BE) -> visitors
 *		 (u64): the same sums, a site's most viewed pages first, so
 *		 that its top pages are the first rows of one range
 *
 * A page's all-time count, a site's all-time count and a day's count are
 * each one B-tree lookup. A series' daily history is one range, in day
 * order. Daily rows are 8-byte keys with 16-byte values, whatever the
 * length of the path, because the path is stored once in "series".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "tally/hash.h"
#include "tally/store.h"

#include "store_backend.h"

#define INITIAL_MAP_SIZE	(64UL << 20)
#define KEY_MAX			(64 + 1 + 1024)
/* LMDB's key limit as Debian builds it. A longer site '\0' path is cut
 * and ends in '\1' and a hash of the whole; the path then also rides in
 * the value, after the record. */
#define SERIES_KEY_MAX		511
#define LONG_KEY_MARK		'\1'

struct lmdb_store {
	struct store base;
	MDB_env	*env;
	MDB_dbi	 meta;
	MDB_dbi	 series;
	MDB_dbi	 days;
	MDB_dbi	 seen;
	MDB_dbi	 recent;
	MDB_dbi	 names;
	MDB_dbi	 referrers;
	MDB_dbi	 window;
	MDB_dbi	 winrank;
	bool	 has_referrers;	/* false: a schema 1 store opened read-only */
	bool	 has_window;	/* false: a schema < 3 store opened read-only */
	int	 flags;
	int	 lockfd;
	/* Views hold it shared; growing the map holds it alone, because
	 * LMDB resizes only when no transaction of the process is open. */
	pthread_rwlock_t quiesce;
};

/*
 * A read view's memo of what it looked up, for as long as it reads the
 * same snapshot. LMDB numbers each committed state (mdb_txn_id) and a
 * snapshot never changes, so a lookup made again in it has the same
 * answer; between two commits the hits of a page look up the same
 * series, days and visitors over and over, each a search of a B-tree
 * from its root. A key may take one of two entries; keys up to
 * MEMO_KEY_MAX bytes; about 50 KiB a view. Only read views have one: a
 * write transaction's data change under one number.
 */
#define MEMO_SLOTS	256
#define MEMO_KEY_MAX	128

struct memo {
	uint64_t snapshot;	/* 0: empty */
	size_t	 klen;
	struct series_counts counts;	/* a series: what lmdb_get gave */
	bool	 seen;			/* a visitor: whether seen */
	unsigned char key[MEMO_KEY_MAX];
};

struct lmdb_view {
	struct store_view base;
	struct lmdb_store *st;
	MDB_txn	*txn;
	int	 active;
	uint64_t snapshot;	/* mdb_txn_id of txn while active */
	struct memo *memo;	/* MEMO_SLOTS, in pairs; or NULL */
	unsigned int turn;	/* which of a full pair goes next */
};

struct lmdb_txn {
	struct store_txn base;
	struct lmdb_store *st;
	MDB_txn	*txn;
	struct lmdb_view view;	/* of txn, for store_txn_view */
	uint32_t next_id;	/* 0 until read from meta */
	int	 next_id_dirty;
	bool	 recent_read;	/* recent_floor and _high read from meta */
	int32_t	 recent_floor;
	int32_t	 recent_high;	/* the latest day added */
	bool	 win_on;	/* read with the recent bounds: the store has sums */
	int32_t	 win_out_day;	/* the sums hold rows from (day, id) on */
	uint32_t win_out_id;
	bool	 win_dirty;
	uint32_t nadds;		/* rows added: the window takes as many out */
};

struct series_rec {
	uint32_t id;
	uint32_t npages;	/* site series: distinct pages */
	uint64_t views;		/* all time: sum of the days plus adj */
	uint64_t visitors;
	int64_t	 adj_views;	/* set by "set", carried by export */
	int64_t	 adj_visitors;
};

struct day_rec {
	uint64_t views;
	uint64_t visitors;
};

/* A page's sum of its window. The counts wrap as unsigned numbers do,
 * so that taking a row out always undoes adding it. */
struct window_rec {
	uint64_t views;
	uint64_t visitors;
	uint32_t site;		/* its site series' id */
	uint32_t pad;
};

#define WINRANK_KEY	16
/* Rows taken out of the window per commit, besides one for each row the
 * commit added (so that an import keeps up): a new day never makes one
 * commit much larger than the others. */
#define WINDOW_STEP	256

static int
fail(struct lmdb_store *st, int rc, const char *step)
{
	if (rc == MDB_MAP_FULL)
		return STORE_MAPFULL;
	if (rc == ENOSPC || rc == EDQUOT) {
		store_set_error("%s: %s", step, mdb_strerror(rc));
		return STORE_NOSPACE;
	}
	store_set_error("%s: %s", step, mdb_strerror(rc));
	return STORE_ERROR;
}


static size_t
series_key(char *key, const char *site, const char *path)
{
	size_t sl = strlen(site), pl = strlen(path), cut;
	uint64_t h;

	if (sl + 1 + pl > KEY_MAX)
		return 0;
	memcpy(key, site, sl);
	key[sl] = '\0';
	memcpy(key + sl + 1, path, pl);
	if (sl + 1 + pl <= SERIES_KEY_MAX)
		return sl + 1 + pl;
	h = hash_fnv1a(STORE_HASH_BASIS, key, sl + 1 + pl);
	cut = SERIES_KEY_MAX - 1 - sizeof(h);
	key[cut] = LONG_KEY_MARK;
	memcpy(key + cut + 1, &h, sizeof(h));
	return SERIES_KEY_MAX;
}

/* Keys hold numbers big-endian, so that LMDB's byte order is theirs. */
static void
be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
day_key(unsigned char key[8], uint32_t id, uint32_t day)
{
	be32_put(key, id);
	be32_put(key + 4, day);
}

/* Rows of a day in "recent" are ordered, and found, by series id alone,
 * so that a row is updated in place (MDB_CURRENT) as its counts grow. */
static int
recent_cmp(const MDB_val *a, const MDB_val *b)
{
	return memcmp(a->mv_data, b->mv_data, 4);
}

#define RECENT_REC	20

/* A referrer row: host, NUL, views. Rows of a day are ordered, and found,
 * by the host alone (bytewise), so that a row is updated in place
 * (MDB_CURRENT) as its views grow. */
#define REFERRER_TAIL	(1 + sizeof(uint64_t))
#define REFERRER_SITE_MAX	255	/* keys stay far below LMDB's limit */

static int
referrer_cmp(const MDB_val *a, const MDB_val *b)
{
	size_t la = a->mv_size > REFERRER_TAIL ? a->mv_size - REFERRER_TAIL : 0;
	size_t lb = b->mv_size > REFERRER_TAIL ? b->mv_size - REFERRER_TAIL : 0;
	int c;

	if ((c = memcmp(a->mv_data, b->mv_data, la < lb ? la : lb)) != 0)
		return c;
	return la < lb ? -1 : la > lb;
}

/* Of the schema versions this tally opens, 1 lacks "referrers", which
 * is added (and the version raised) by the first writable open. */

static int referrers_open(struct lmdb_store *, MDB_txn *, unsigned int dbflags);
static int window_open(struct lmdb_store *, MDB_txn *, unsigned int dbflags);
static int window_build(struct lmdb_store *, MDB_txn *);
static void lmdb_view_end(struct store_view *);
static int lmdb_referrer_reset(struct store_txn *, const char *);

/* Opens the databases and checks the schema version, creating both when
 * the store is new and writable. */
static int
store_init(struct lmdb_store *st)
{
	MDB_txn *txn;
	MDB_val k, v;
	uint32_t version;
	unsigned int dbflags = (st->flags & STORE_READONLY) ? 0 : MDB_CREATE;
	int rc;

	rc = mdb_txn_begin(st->env, NULL,
	    (st->flags & STORE_READONLY) ? MDB_RDONLY : 0, &txn);
	if (rc)
		return fail(st, rc, "mdb_txn_begin");
	/* Tally's databases are made only in an empty environment: another
	 * program's LMDB is not adopted. */
	if (dbflags & MDB_CREATE) {
		MDB_dbi main_db;
		MDB_stat ms;

		if ((rc = mdb_dbi_open(txn, NULL, 0, &main_db)) != 0 ||
		    (rc = mdb_stat(txn, main_db, &ms)) != 0) {
			mdb_txn_abort(txn);
			return fail(st, rc, "reading the main database");
		}
		if (ms.ms_entries > 0 &&
		    mdb_dbi_open(txn, "meta", 0, &st->meta) == MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			store_set_error("not a tally store (another program's LMDB); "
			    "refusing to use it");
			return STORE_ERROR;
		}
	}
	if ((rc = mdb_dbi_open(txn, "meta", dbflags, &st->meta)) != 0) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND) {
			store_set_error("not a tally store (no schema)");
			return STORE_ERROR;
		}
		return fail(st, rc, "mdb_dbi_open meta");
	}
	if ((rc = mdb_dbi_open(txn, "series", dbflags, &st->series)) != 0 ||
	    (rc = mdb_dbi_open(txn, "days", dbflags, &st->days)) != 0 ||
	    (rc = mdb_dbi_open(txn, "seen", dbflags, &st->seen)) != 0 ||
	    (rc = mdb_dbi_open(txn, "recent", dbflags | MDB_DUPSORT |
	    MDB_DUPFIXED, &st->recent)) != 0 ||
	    (rc = mdb_set_dupsort(txn, st->recent, recent_cmp)) != 0 ||
	    (rc = mdb_dbi_open(txn, "names", dbflags, &st->names)) != 0 ||
	    (rc = referrers_open(st, txn, dbflags)) != 0 ||
	    (rc = window_open(st, txn, dbflags)) != 0) {
		mdb_txn_abort(txn);
		return fail(st, rc, "mdb_dbi_open");
	}

	k.mv_data = "schema";
	k.mv_size = 6;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !(st->flags & STORE_READONLY)) {
		version = STORE_SCHEMA_VERSION;
		v.mv_data = &version;
		v.mv_size = sizeof(version);
		if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0 ||
		    (rc = window_build(st, txn)) != 0) {
			mdb_txn_abort(txn);
			return fail(st, rc, "writing the schema version");
		}
	} else if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		store_set_error("not a tally store (no schema)");
		return STORE_ERROR;
	} else if (rc) {
		mdb_txn_abort(txn);
		return fail(st, rc, "reading the schema version");
	} else {
		if (v.mv_size != sizeof(version)) {
			mdb_txn_abort(txn);
			store_set_error("corrupt store: bad schema record");
			return STORE_ERROR;
		}
		memcpy(&version, v.mv_data, sizeof(version));
		if (version >= STORE_SCHEMA_OLDEST &&
		    version < STORE_SCHEMA_VERSION &&
		    !(st->flags & STORE_READONLY)) {
			/* What is missing was created above; the window's
			 * sums are made from the recent rows. */
			if ((rc = window_build(st, txn)) != 0) {
				mdb_txn_abort(txn);
				return fail(st, rc, "summing the window");
			}
			version = STORE_SCHEMA_VERSION;
			v.mv_data = &version;
			v.mv_size = sizeof(version);
			if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0) {
				mdb_txn_abort(txn);
				return fail(st, rc, "raising the schema version");
			}
		} else if (version < STORE_SCHEMA_OLDEST ||
		    version > STORE_SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			store_set_error("store schema version %" PRIu32 " is %s than this "
			    "tally's (%d); refusing to use it", version,
			    version > STORE_SCHEMA_VERSION ? "newer" : "older",
			    STORE_SCHEMA_VERSION);
			return STORE_ERROR;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return fail(st, rc, "mdb_txn_commit");
	return STORE_OK;
}

/*
 * tallyd and tallyctl often run as root: a data.mdb or lock.mdb planted
 * as a symbolic link would have LMDB write through it, to any file. So
 * the directory and the files already in it must be what they seem, and
 * the directory must be one that only its owner and group may change
 * (the documented layout: 0770 or 0750, files 0660). LMDB opens the
 * files by name after this check; the window between is closed by the
 * directory itself, which no one else may write.
 */
static int
check_not_link(const char *file, bool must_exist, char *err, size_t errlen)
{
	struct stat sb;

	if (lstat(file, &sb) == -1) {
		if (errno == ENOENT && !must_exist)
			return STORE_OK;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return STORE_ERROR;
	}
	if (S_ISLNK(sb.st_mode)) {
		snprintf(err, errlen, "%s is a symbolic link; refusing to use "
		    "it", file);
		return STORE_ERROR;
	}
	if (must_exist ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s is not a %s; refusing to use it",
		    file, must_exist ? "directory" : "regular file");
		return STORE_ERROR;
	}
	if (must_exist && (sb.st_mode & S_IWOTH)) {
		snprintf(err, errlen, "%s is writable by others (mode %04o); "
		    "refusing to use it", file, (unsigned)sb.st_mode & 07777);
		return STORE_ERROR;
	}
	return STORE_OK;
}

static int
check_store_files(const char *dir, char *err, size_t errlen)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	char path[PATH_MAX];
	size_t len;
	int rc;

	/* "data/" would name the directory a link points to. */
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len >= sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return STORE_ERROR;
	}
	memcpy(path, dir, len);
	path[len] = '\0';
	if ((rc = check_not_link(path, true, err, errlen)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%.*s/%s", (int)len, dir, files[i]);
		if ((rc = check_not_link(path, false, err, errlen)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static int
lmdb_open(struct store **out, const char *dir, int flags, char *err,
    size_t errlen)
{
	struct lmdb_store *st;
	struct stat sb;
	char file[PATH_MAX];
	size_t mapsize = INITIAL_MAP_SIZE;
	const char *env;
	int rc;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return STORE_ERROR;
	}
	st->flags = flags;
	st->lockfd = -1;
	{
		pthread_rwlockattr_t attr;

		pthread_rwlockattr_init(&attr);
		/* Readers never stop; a grow must still get its turn. */
		pthread_rwlockattr_setkind_np(&attr,
		    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&st->quiesce, &attr);
		pthread_rwlockattr_destroy(&attr);
	}

	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	if (flags & STORE_READONLY) {
		/* Reading must never create a store. */
		if (stat(file, &sb) == -1) {
			snprintf(err, errlen, "no store in %s: %s", dir,
			    strerror(errno));
			free(st);
			return STORE_ERROR;
		}
	} else {
		if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", dir,
			    strerror(errno));
			free(st);
			return STORE_ERROR;
		}
		if (stat(file, &sb) == 0 && (size_t)sb.st_size > mapsize)
			mapsize = sb.st_size;
	}
	if (check_store_files(dir, err, errlen) != STORE_OK) {
		pthread_rwlock_destroy(&st->quiesce);
		free(st);
		return STORE_ERROR;
	}
	/* Lets tests start with a tiny map to see it grow. */
	if ((env = getenv("TALLY_INITIAL_MAP_SIZE")) != NULL && atol(env) > 0 &&
	    (size_t)atol(env) > mapsize / 1024)
		mapsize = (size_t)atol(env);

	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, 10)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, 254)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, mapsize)) != 0) {
		snprintf(err, errlen, "mdb_env_create: %s", mdb_strerror(rc));
		goto bad;
	}
	/* Group-writable: admins in tallyd's group run tallyctl, and even a
	 * read-only LMDB reader writes its slot in lock.mdb. The umask (the
	 * unit's UMask=0007) has the last word. */
	/*
	 * A commit writes the pages, syncs them, then writes the meta page
	 * that makes them the store's, and by default syncs it too: two
	 * waits on the disk. MDB_NOMETASYNC leaves the second to the next
	 * commit, whose sync of its pages comes after that meta page was
	 * written, or to mdb_env_sync (store_sync). The older meta page
	 * stays valid on disk until then, so the store is whole whatever
	 * the disk loses; only that last commit may be undone.
	 */
	rc = mdb_env_open(st->env, dir, MDB_NOTLS |
	    ((flags & STORE_READONLY) ? MDB_RDONLY : 0) |
	    ((flags & STORE_DEFER_SYNC) && !(flags & STORE_READONLY) ?
	    MDB_NOMETASYNC : 0), 0660);
	if (rc) {
		if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
		    rc == MDB_CORRUPTED)
			snprintf(err, errlen, "%s is not a valid store (%s); "
			    "refusing to use it", file, mdb_strerror(rc));
		else
			snprintf(err, errlen, "opening %s: %s", dir,
			    mdb_strerror(rc));
		goto bad;
	}
	/* A file shorter than the pages LMDB says are in use would fault
	 * (SIGBUS) on the first read of a missing page. */
	{
		MDB_envinfo info;
		MDB_stat ms;

		if (mdb_env_info(st->env, &info) == 0 &&
		    mdb_env_stat(st->env, &ms) == 0 && stat(file, &sb) == 0 &&
		    (uint64_t)sb.st_size <
		    (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize) {
			snprintf(err, errlen, "%s is truncated (%lld bytes, "
			    "%llu in use); refusing to use it", file,
			    (long long)sb.st_size, (unsigned long long)
			    (info.me_last_pgno + 1) * ms.ms_psize);
			goto bad;
		}
	}
	/* Readers left by killed processes would pin old pages forever. */
	mdb_reader_check(st->env, NULL);
	/* Migrating a large store may need a larger map. */
	while ((rc = store_init(st)) == STORE_MAPFULL) {
		MDB_envinfo info;

		if (mdb_env_info(st->env, &info) != 0 ||
		    mdb_env_set_mapsize(st->env, info.me_mapsize * 2) != 0)
			break;
	}
	if (rc != STORE_OK) {
		snprintf(err, errlen, "%s: %s", dir, rc == STORE_MAPFULL ?
		    "the map cannot grow" : store_error(NULL));
		goto bad;
	}
	st->base.ops = &store_lmdb_ops;
	*out = &st->base;
	return STORE_OK;
bad:
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->quiesce);
	free(st);
	return STORE_ERROR;
}

static void
lmdb_close(struct store *base_st)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;

	if (st == NULL)
		return;
	/* mdb_env_close does not sync: a deferred meta page would be left
	 * to the kernel. */
	if ((st->flags & STORE_DEFER_SYNC) && !(st->flags & STORE_READONLY))
		(void)mdb_env_sync(st->env, 1);
	mdb_env_close(st->env);
	if (st->lockfd != -1)
		close(st->lockfd);
	pthread_rwlock_destroy(&st->quiesce);
	free(st);
}

static int
lmdb_lock_daemon(struct store *base_st, char *err, size_t errlen)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	const char *dir;
	char file[PATH_MAX];

	if (mdb_env_get_path(st->env, &dir) != 0)
		dir = ".";
	snprintf(file, sizeof(file), "%s/tallyd.lock", dir);
	st->lockfd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (st->lockfd == -1) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return STORE_ERROR;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another tallyd is using %s", dir);
		else
			snprintf(err, errlen, "locking %s: %s", file,
			    strerror(errno));
		close(st->lockfd);
		st->lockfd = -1;
		return STORE_ERROR;
	}
	return STORE_OK;
}

static int
lmdb_stat(struct store *base_st, struct store_stat *out)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	MDB_envinfo info;
	MDB_stat ms;
	int rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &ms)) != 0)
		return fail(st, rc, "mdb_env_info");
	out->map_bytes = info.me_mapsize;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	return STORE_OK;
}

static int
lmdb_grow(struct store *base_st)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	MDB_envinfo info;
	int rc;

	pthread_rwlock_wrlock(&st->quiesce);
	if ((rc = mdb_env_info(st->env, &info)) != 0) {
		pthread_rwlock_unlock(&st->quiesce);
		return fail(st, rc, "mdb_env_info");
	}
	rc = mdb_env_set_mapsize(st->env, info.me_mapsize * 2);
	pthread_rwlock_unlock(&st->quiesce);
	if (rc)
		return fail(st, rc, "growing the map");
	return STORE_OK;
}

/* Takes the salts and the seen ids out of a private copy. Their pages
 * become free pages of that copy, which a compacting copy leaves out. */
static int
strip_copy(const char *dir, char *err, size_t errlen)
{
	char file[PATH_MAX + 16];
	struct stat sb;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k;
	const char *step = "mdb_env_create";
	int rc;

	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	if (stat(file, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return STORE_ERROR;
	}
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, (size_t)sb.st_size * 2 +
	    INITIAL_MAP_SIZE)) != 0)
		goto bad;
	/* No one else knows of this copy: no lock file, no sync. */
	step = "opening the copy";
	if ((rc = mdb_env_open(env, dir, MDB_NOLOCK | MDB_NOSYNC, 0600)) != 0)
		goto bad;
	step = "mdb_txn_begin";
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
		goto bad;
	step = "deleting the salts";
	k.mv_data = STORE_META_SALTS;
	k.mv_size = strlen(STORE_META_SALTS);
	if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) != 0 ||
	    ((rc = mdb_del(txn, dbi, &k, NULL)) != 0 && rc != MDB_NOTFOUND))
		goto bad;
	step = "deleting the seen visitors";
	if ((rc = mdb_dbi_open(txn, "seen", 0, &dbi)) != 0 ||
	    (rc = mdb_drop(txn, dbi, 0)) != 0)
		goto bad;
	step = "mdb_txn_commit";
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto bad;
	mdb_env_close(env);
	return STORE_OK;
bad:
	snprintf(err, errlen, "%s %s: %s", step, dir, mdb_strerror(rc));
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
	return STORE_ERROR;
}

/*
 * A backup holds no salt and no visitor id: whoever reads one could
 * otherwise test whether an address and User-Agent visited that day,
 * and a salt kept in daily backups outlives its midnight. So the store
 * is copied (compacted, in one read transaction: tallyd goes on
 * writing) into a private directory inside dest, stripped there, and
 * copied compacted again into dest, leaving the stripped pages behind.
 */
static int
lmdb_backup(struct store *base_st, const char *dest, char *err, size_t errlen)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	char tmp[PATH_MAX], file[PATH_MAX + 16];
	const char *dir;
	struct stat dsb, fsb;
	bool made;
	int rc, ret = STORE_ERROR;

	if (mdb_env_get_path(st->env, &dir) != 0)
		dir = ".";
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	if (stat(dir, &dsb) == -1 || stat(file, &fsb) == -1) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return STORE_ERROR;
	}
	made = mkdir(dest, 0700) == 0;
	if (!made && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dest, strerror(errno));
		return STORE_ERROR;
	}
	snprintf(tmp, sizeof(tmp), "%s/.backup-XXXXXX", dest);
	if (mkdtemp(tmp) == NULL) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    strerror(errno));
		return STORE_ERROR;
	}
	if ((rc = mdb_env_copy2(st->env, tmp, MDB_CP_COMPACT)) != 0) {
		snprintf(err, errlen, "mdb_env_copy2 %s: %s", tmp,
		    mdb_strerror(rc));
		goto done;
	}
	if (strip_copy(tmp, err, errlen) != STORE_OK)
		goto done;
	{
		MDB_env *env;

		if ((rc = mdb_env_create(&env)) == 0) {
			mdb_env_set_maxdbs(env, 8);
			mdb_env_set_mapsize(env, (size_t)fsb.st_size * 2 +
			    INITIAL_MAP_SIZE);
			if ((rc = mdb_env_open(env, tmp, MDB_NOLOCK |
			    MDB_RDONLY, 0600)) == 0)
				rc = mdb_env_copy2(env, dest, MDB_CP_COMPACT);
			mdb_env_close(env);
		}
		if (rc) {
			snprintf(err, errlen, "mdb_env_copy2 %s: %s", dest,
			    mdb_strerror(rc));
			goto done;
		}
	}
	/* The store's own modes: 0660 files in a 0770 directory let admins
	 * in tallyd's group use the copy as they use the store. */
	snprintf(file, sizeof(file), "%s/data.mdb", dest);
	if (chmod(file, fsb.st_mode & 0777) == -1 ||
	    (made && chmod(dest, dsb.st_mode & 0777) == -1)) {
		snprintf(err, errlen, "chmod %s: %s", made ? dest : file,
		    strerror(errno));
		goto done;
	}
	ret = STORE_OK;
done:
	snprintf(file, sizeof(file), "%s/data.mdb", tmp);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", tmp);
	unlink(file);
	rmdir(tmp);
	return ret;
}

static int
lmdb_reader_check(struct store *base_st)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	int dead = 0;

	mdb_reader_check(st->env, &dead);
	return dead;
}

static int
lmdb_sync(struct store *base_st)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	int rc;

	if (!(st->flags & STORE_DEFER_SYNC))
		return STORE_OK;	/* each commit synced its meta page */
	if ((rc = mdb_env_sync(st->env, 1)) != 0)
		return fail(st, rc, "mdb_env_sync");
	return STORE_OK;
}

/* Another process grew the map: adopt its size and try again. Adopting
 * needs every transaction of this process closed, hence the lock. */
static int
txn_begin(struct lmdb_store *st, MDB_txn *parent, unsigned int flags, MDB_txn **txn,
    bool holding_view_lock)
{
	int rc;

	rc = mdb_txn_begin(st->env, parent, flags, txn);
	if (rc == MDB_MAP_RESIZED) {
		if (holding_view_lock)
			pthread_rwlock_unlock(&st->quiesce);
		pthread_rwlock_wrlock(&st->quiesce);
		mdb_env_set_mapsize(st->env, 0);
		pthread_rwlock_unlock(&st->quiesce);
		if (holding_view_lock)
			pthread_rwlock_rdlock(&st->quiesce);
		rc = mdb_txn_begin(st->env, parent, flags, txn);
	}
	return rc;
}

static struct store_view *
lmdb_view_new(struct store *base_st)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	struct lmdb_view *v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	/* Without a memo the view is slower, no less right. */
	v->memo = calloc(MEMO_SLOTS, sizeof(*v->memo));
	v->base.ops = &store_lmdb_ops;
	v->st = st;
	return &v->base;
}

static void
lmdb_view_free(struct store_view *base_v)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;

	if (v == NULL)
		return;
	if (v->active)
		lmdb_view_end(&v->base);
	if (v->txn)
		mdb_txn_abort(v->txn);
	free(v->memo);
	free(v);
}

static int
lmdb_view_begin(struct store_view *base_v)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	int rc;

	if (v->active)
		return STORE_OK;
	pthread_rwlock_rdlock(&v->st->quiesce);
	/* Renewing a reset transaction skips most of the set-up. */
	if (v->txn) {
		rc = mdb_txn_renew(v->txn);
		if (rc == MDB_MAP_RESIZED) {
			mdb_txn_abort(v->txn);
			v->txn = NULL;
		} else if (rc) {
			pthread_rwlock_unlock(&v->st->quiesce);
			return fail(v->st, rc, "mdb_txn_renew");
		}
	}
	if (v->txn == NULL &&
	    (rc = txn_begin(v->st, NULL, MDB_RDONLY, &v->txn, true)) != 0) {
		v->txn = NULL;
		pthread_rwlock_unlock(&v->st->quiesce);
		return fail(v->st, rc, "mdb_txn_begin (read)");
	}
	v->active = 1;
	v->snapshot = (uint64_t)mdb_txn_id(v->txn);
	return STORE_OK;
}

static void
lmdb_view_end(struct store_view *base_v)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;

	if (!v->active)
		return;
	mdb_txn_reset(v->txn);
	v->active = 0;
	v->snapshot = 0;
	pthread_rwlock_unlock(&v->st->quiesce);
}

static uint64_t
lmdb_view_version(struct store_view *base_v)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;

	return v->active ? (uint64_t)mdb_txn_id(v->txn) : 0;
}

static uint64_t
lmdb_txn_version(struct store_txn *base_t)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return (uint64_t)mdb_txn_id(t->txn);
}

static int
get_series(struct lmdb_store *st, MDB_txn *txn, const char *site, const char *path,
    struct series_rec *rec)
{
	char key[KEY_MAX];
	MDB_val k, v;
	int rc;

	if ((k.mv_size = series_key(key, site, path)) == 0)
		return STORE_NOTFOUND;
	k.mv_data = key;
	rc = mdb_get(txn, st->series, &k, &v);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc)
		return fail(st, rc, "reading a series");
	if (v.mv_size < sizeof(*rec)) {
		store_set_error("corrupt series record");
		return STORE_ERROR;
	}
	memcpy(rec, v.mv_data, sizeof(*rec));
	return STORE_OK;
}

static int
get_day(struct lmdb_store *st, MDB_txn *txn, uint32_t id, int day,
    struct day_rec *rec)
{
	unsigned char key[8];
	MDB_val k, v;
	int rc;

	memset(rec, 0, sizeof(*rec));
	if (day < 0)
		return STORE_NOTFOUND;
	day_key(key, id, (uint32_t)day);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_get(txn, st->days, &k, &v);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc)
		return fail(st, rc, "reading a day");
	if (v.mv_size != sizeof(*rec)) {
		store_set_error("corrupt day record");
		return STORE_ERROR;
	}
	memcpy(rec, v.mv_data, sizeof(*rec));
	return STORE_OK;
}

static int
txn_get(struct lmdb_store *st, MDB_txn *txn, const char *site, const char *path,
    int day, struct series_counts *out)
{
	struct series_rec rec;
	struct day_rec dr;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = get_series(st, txn, site, path, &rec);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc)
		return rc;
	out->exists = true;
	out->total.views = rec.views;
	out->total.visitors = rec.visitors;
	out->npages = rec.npages;
	out->id = rec.id;
	rc = get_day(st, txn, rec.id, day, &dr);
	if (rc && rc != STORE_NOTFOUND)
		return rc;
	out->day.views = dr.views;
	out->day.visitors = dr.visitors;
	return STORE_OK;
}

/* The entry of a key in the view's memo: the one that holds it for the
 * view's snapshot (*held), else the one to fill, of the key's two. The
 * key is read eight bytes at a time: up to 7 zeros follow it. */
static struct memo *
memo_slot(struct lmdb_view *v, const unsigned char *key, size_t n, bool *held)
{
	uint64_t h = n, w;
	struct memo *m;
	size_t i;
	int k;

	for (i = 0; i < n; i += sizeof(w)) {
		memcpy(&w, key + i, sizeof(w));
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	m = &v->memo[(h % (MEMO_SLOTS / 2)) * 2];
	for (k = 0; k < 2; k++) {
		if (m[k].snapshot == v->snapshot && m[k].klen == n &&
		    memcmp(m[k].key, key, n) == 0) {
			*held = true;
			return &m[k];
		}
	}
	*held = false;
	/* A stale one, else each in turn. */
	for (k = 0; k < 2; k++)
		if (m[k].snapshot != v->snapshot)
			return &m[k];
	return &m[v->turn++ & 1];
}

static void
memo_keep(struct lmdb_view *v, struct memo *m, const unsigned char *key,
    size_t n)
{
	m->snapshot = v->snapshot;
	m->klen = n;
	memcpy(m->key, key, n);
}

static int
lmdb_get(struct store_view *base_v, const char *site, const char *path, int day,
    struct series_counts *out)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	unsigned char key[MEMO_KEY_MAX + 8];
	size_t sl, pl, n;
	struct memo *m;
	bool held;
	int rc;

	if (v->memo == NULL || v->snapshot == 0 ||
	    (sl = strlen(site)) + (pl = strlen(path)) + 6 > MEMO_KEY_MAX)
		return txn_get(v->st, v->txn, site, path, day, out);
	key[0] = 'c';
	be32_put(key + 1, (uint32_t)day);
	memcpy(key + 5, site, sl + 1);
	memcpy(key + 5 + sl + 1, path, pl);
	n = 5 + sl + 1 + pl;
	memset(key + n, 0, 8);
	m = memo_slot(v, key, n, &held);
	if (held) {
		*out = m->counts;
		return STORE_OK;
	}
	if ((rc = txn_get(v->st, v->txn, site, path, day, out)) == STORE_OK) {
		memo_keep(v, m, key, n);
		m->counts = *out;
	}
	return rc;
}

static struct store_view *
lmdb_txn_view(struct store_txn *base_t)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	t->view.base.ops = &store_lmdb_ops;
	t->view.st = t->st;
	t->view.txn = t->txn;
	t->view.active = 1;
	return &t->view.base;
}

static int
lmdb_txn_get(struct store_txn *base_t, const char *site, const char *path, int day,
    struct series_counts *out)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return txn_get(t->st, t->txn, site, path, day, out);
}

static int
lmdb_meta_get(struct store_view *base_v, const char *key, void *val, size_t *len)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	MDB_val k, d;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	rc = mdb_get(v->txn, v->st->meta, &k, &d);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc)
		return fail(v->st, rc, "reading meta");
	if (d.mv_size > *len) {
		store_set_error("meta %s too large", key);
		return STORE_ERROR;
	}
	memcpy(val, d.mv_data, d.mv_size);
	*len = d.mv_size;
	return STORE_OK;
}

static int
lmdb_each_series(struct store_view *base_v, const char *site, store_series_cb cb,
    void *arg)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	struct lmdb_store *st = v->st;
	MDB_cursor *cur;
	MDB_val k, d;
	MDB_cursor_op op;
	struct series_rec rec;
	struct series_counts sc;
	char keybuf[KEY_MAX + 2], prefix[KEY_MAX];
	size_t plen = 0;
	int rc, ret = STORE_OK;

	if ((rc = mdb_cursor_open(v->txn, st->series, &cur)) != 0)
		return fail(st, rc, "mdb_cursor_open");
	if (site) {
		plen = series_key(prefix, site, "");
		k.mv_data = prefix;
		k.mv_size = plen;
		op = MDB_SET_RANGE;
	} else {
		op = MDB_FIRST;
	}
	for (;;) {
		rc = mdb_cursor_get(cur, &k, &d, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND)
			break;
		if (rc) {
			ret = fail(st, rc, "mdb_cursor_get");
			break;
		}
		if (site && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)))
			break;
		if (k.mv_size > KEY_MAX || d.mv_size < sizeof(rec) ||
		    d.mv_size > sizeof(rec) + KEY_MAX ||
		    memchr(k.mv_data, '\0', k.mv_size) == NULL) {
			store_set_error("corrupt series key");
			ret = STORE_ERROR;
			break;
		}
		memcpy(keybuf, k.mv_data, k.mv_size);
		keybuf[k.mv_size] = '\0';
		if (d.mv_size > sizeof(rec)) {
			/* A long key: the whole path is in the value. */
			size_t sl = strlen(keybuf), pl = d.mv_size - sizeof(rec);
			if (sl + 1 + pl > KEY_MAX) {
				store_set_error("corrupt series record");
				ret = STORE_ERROR;
				break;
			}
			memcpy(keybuf + sl + 1,
			    (char *)d.mv_data + sizeof(rec), pl);
			keybuf[sl + 1 + pl] = '\0';
		}
		memcpy(&rec, d.mv_data, sizeof(rec));
		memset(&sc, 0, sizeof(sc));
		sc.exists = true;
		sc.total.views = rec.views;
		sc.total.visitors = rec.visitors;
		sc.npages = rec.npages;
		sc.id = rec.id;
		if ((ret = cb(arg, keybuf, keybuf + strlen(keybuf) + 1, &sc)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return ret;
}

static int
lmdb_each_day(struct store_view *base_v, const char *site, const char *path,
    int from, int to, bool with_adjust, store_row_cb cb, void *arg)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	struct lmdb_store *st = v->st;
	struct series_rec rec;
	struct day_rec dr;
	struct counts c;
	MDB_cursor *cur;
	MDB_val k, d;
	MDB_cursor_op op = MDB_SET_RANGE;
	unsigned char key[8];
	int rc, ret = STORE_OK, day;

	rc = get_series(st, v->txn, site, path, &rec);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc)
		return rc;
	if (with_adjust && (rec.adj_views || rec.adj_visitors)) {
		c.views = (uint64_t)rec.adj_views;
		c.visitors = (uint64_t)rec.adj_visitors;
		if ((ret = cb(arg, site, path, DAY_ADJUST, &c)) != 0)
			return ret;
	}
	if (from < 0)
		from = 0;
	if (to < from)
		return STORE_OK;
	if ((rc = mdb_cursor_open(v->txn, st->days, &cur)) != 0)
		return fail(st, rc, "mdb_cursor_open");
	day_key(key, rec.id, (uint32_t)from);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	for (;;) {
		rc = mdb_cursor_get(cur, &k, &d, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND)
			break;
		if (rc) {
			ret = fail(st, rc, "mdb_cursor_get");
			break;
		}
		if (k.mv_size != 8 || be32(k.mv_data) != rec.id)
			break;
		day = (int)be32((unsigned char *)k.mv_data + 4);
		if (day > to)
			break;
		if (d.mv_size != sizeof(dr)) {
			store_set_error("corrupt day record");
			ret = STORE_ERROR;
			break;
		}
		memcpy(&dr, d.mv_data, sizeof(dr));
		c.views = dr.views;
		c.visitors = dr.visitors;
		if ((ret = cb(arg, site, path, day, &c)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return ret;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
lmdb_orphan_rows(struct store_view *base_v, uint64_t *orphans)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	struct lmdb_store *st = v->st;
	struct series_rec rec;
	MDB_cursor *cur;
	MDB_val k, d;
	MDB_stat ms;
	uint32_t *ids = NULL, id;
	size_t n = 0, cap;
	int rc, ret = STORE_OK;

	*orphans = 0;
	if ((rc = mdb_stat(v->txn, st->series, &ms)) != 0)
		return fail(st, rc, "mdb_stat");
	cap = ms.ms_entries + 1;
	if ((ids = malloc(cap * sizeof(*ids))) == NULL) {
		store_set_error("out of memory");
		return STORE_ERROR;
	}
	if ((rc = mdb_cursor_open(v->txn, st->series, &cur)) != 0) {
		free(ids);
		return fail(st, rc, "mdb_cursor_open");
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && n < cap;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (d.mv_size < sizeof(rec))
			continue;
		memcpy(&rec, d.mv_data, sizeof(rec));
		ids[n++] = rec.id;
	}
	mdb_cursor_close(cur);
	qsort(ids, n, sizeof(*ids), cmp_u32);
	/* Rows are in id order: one lookup per run of one id. */
	if ((rc = mdb_cursor_open(v->txn, st->days, &cur)) != 0) {
		free(ids);
		return fail(st, rc, "mdb_cursor_open");
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != 8) {
			(*orphans)++;
			continue;
		}
		id = be32(k.mv_data);
		if (bsearch(&id, ids, n, sizeof(*ids), cmp_u32) == NULL)
			(*orphans)++;
	}
	if (rc != MDB_NOTFOUND)
		ret = fail(st, rc, "reading days");
	mdb_cursor_close(cur);
	free(ids);
	return ret;
}

static int
lmdb_write_begin(struct store *base_st, struct store_txn **out)
{
	struct lmdb_store *st = (struct lmdb_store *)base_st;
	struct lmdb_txn *t;
	int rc;

	*out = NULL;
	if (st->flags & STORE_READONLY) {
		store_set_error("store opened read-only");
		return STORE_ERROR;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		store_set_error("%s", strerror(errno));
		return STORE_ERROR;
	}
	t->st = st;
	if ((rc = txn_begin(st, NULL, 0, &t->txn, false)) != 0) {
		free(t);
		return fail(st, rc, "mdb_txn_begin (write)");
	}
	t->base.ops = &store_lmdb_ops;
	*out = &t->base;
	return STORE_OK;
}

static int
put_series(struct lmdb_txn *t, const char *site, const char *path,
    const struct series_rec *rec)
{
	char key[KEY_MAX], val[sizeof(*rec) + KEY_MAX];
	size_t pl = strlen(path);
	MDB_val k, v;
	int rc;

	if ((k.mv_size = series_key(key, site, path)) == 0) {
		store_set_error("path too long");
		return STORE_ERROR;
	}
	k.mv_data = key;
	memcpy(val, rec, sizeof(*rec));
	v.mv_data = val;
	v.mv_size = sizeof(*rec);
	if (k.mv_size == SERIES_KEY_MAX && key[k.mv_size - 9] == LONG_KEY_MARK) {
		memcpy(val + sizeof(*rec), path, pl);
		v.mv_size += pl;
	}
	if ((rc = mdb_put(t->txn, t->st->series, &k, &v, 0)) != 0)
		return fail(t->st, rc, "writing a series");
	return STORE_OK;
}

static int
new_id(struct lmdb_txn *t, uint32_t *id)
{
	MDB_val k, v;
	int rc;

	if (t->next_id == 0) {
		k.mv_data = "next_id";
		k.mv_size = 7;
		rc = mdb_get(t->txn, t->st->meta, &k, &v);
		if (rc == MDB_NOTFOUND)
			t->next_id = 1;
		else if (rc)
			return fail(t->st, rc, "reading next_id");
		else if (v.mv_size != sizeof(uint32_t)) {
			store_set_error("corrupt next_id");
			return STORE_ERROR;
		} else
			memcpy(&t->next_id, v.mv_data, sizeof(uint32_t));
	}
	if (t->next_id == UINT32_MAX) {
		store_set_error("out of series ids");
		return STORE_ERROR;
	}
	*id = t->next_id++;
	t->next_id_dirty = 1;
	return STORE_OK;
}

static void
id_key(unsigned char key[4], uint32_t id)
{
	be32_put(key, id);
}

static int
name_put(struct lmdb_txn *t, uint32_t id, const char *site, const char *path)
{
	unsigned char key[4];
	char name[KEY_MAX];
	size_t sl = strlen(site), pl = strlen(path);
	MDB_val k, v;
	int rc;

	if (sl + 1 + pl > sizeof(name)) {
		store_set_error("path too long");
		return STORE_ERROR;
	}
	memcpy(name, site, sl + 1);
	memcpy(name + sl + 1, path, pl);
	id_key(key, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = name;
	v.mv_size = sl + 1 + pl;
	if ((rc = mdb_put(t->txn, t->st->names, &k, &v, 0)) != 0)
		return fail(t->st, rc, "writing a series name");
	return STORE_OK;
}

static int
lmdb_series_name(struct store_view *base_v, uint32_t id, char *site,
    size_t sitesz, char *path, size_t pathsz)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	unsigned char key[4];
	const char *name, *nul;
	MDB_val k, d;
	size_t pl;
	int rc;

	id_key(key, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_get(v->txn, v->st->names, &k, &d);
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc)
		return fail(v->st, rc, "reading a series name");
	name = d.mv_data;
	if ((nul = memchr(name, '\0', d.mv_size)) == NULL ||
	    (size_t)(nul - name) >= sitesz ||
	    (pl = d.mv_size - (size_t)(nul - name) - 1) >= pathsz) {
		store_set_error("corrupt series name");
		return STORE_ERROR;
	}
	memcpy(site, name, (size_t)(nul - name) + 1);
	memcpy(path, nul + 1, pl);
	path[pl] = '\0';
	return STORE_OK;
}

static int
lmdb_max_id(struct store_view *base_v, uint32_t *max)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	uint32_t next = 1;
	size_t len = sizeof(next);
	int rc;

	rc = lmdb_meta_get(&v->base, "next_id", &next, &len);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc;
	*max = next > 0 ? next - 1 : 0;
	return STORE_OK;
}

/* Finds a series, creating it (and its site) when missing. */
static int
series_for_write(struct lmdb_txn *t, const char *site, const char *path,
    struct series_rec *rec)
{
	struct series_rec srec;
	int rc;

	rc = get_series(t->st, t->txn, site, path, rec);
	if (rc != STORE_NOTFOUND)
		return rc;
	memset(rec, 0, sizeof(*rec));
	if ((rc = new_id(t, &rec->id)) != STORE_OK ||
	    (rc = name_put(t, rec->id, site, path)) != STORE_OK)
		return rc;
	if (path[0] == '\0')
		return STORE_OK;
	/* A new page: the site counts its pages for max_pages. */
	if ((rc = series_for_write(t, site, SITE_SERIES, &srec)) != STORE_OK)
		return rc;
	srec.npages++;
	return put_series(t, site, SITE_SERIES, &srec);
}

static int
meta_i32(MDB_txn *txn, MDB_dbi dbi, const char *key, int32_t *out, bool *found)
{
	MDB_val k, v;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	rc = mdb_get(txn, dbi, &k, &v);
	*found = rc == 0 && v.mv_size == sizeof(*out);
	if (*found)
		memcpy(out, v.mv_data, sizeof(*out));
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Where the window's sums begin: meta "window_out", the day (int32_t)
 * and the id (uint32_t) of the first row they still hold. */
static int
window_out_read(struct lmdb_store *st, MDB_txn *txn, bool *on, int32_t *day,
    uint32_t *id)
{
	MDB_val k, v;
	int rc;

	*on = false;
	if (!st->has_window)
		return 0;
	k.mv_data = "window_out";
	k.mv_size = 10;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	memcpy(day, v.mv_data, 4);
	memcpy(id, (char *)v.mv_data + 4, 4);
	*on = true;
	return 0;
}

static int
window_out_write(struct lmdb_store *st, MDB_txn *txn, int32_t day,
    uint32_t id)
{
	unsigned char val[8];
	MDB_val k, v;

	memcpy(val, &day, 4);
	memcpy(val + 4, &id, 4);
	k.mv_data = "window_out";
	k.mv_size = 10;
	v.mv_data = val;
	v.mv_size = sizeof(val);
	return mdb_put(txn, st->meta, &k, &v, 0);
}

static int
recent_bounds(struct lmdb_txn *t)
{
	bool found;
	int rc;

	if (t->recent_read)
		return STORE_OK;
	t->recent_floor = 0;	/* a new store indexes every day */
	t->recent_high = -1;
	if ((rc = meta_i32(t->txn, t->st->meta, "recent_floor",
	    &t->recent_floor, &found)) != 0 ||
	    (rc = meta_i32(t->txn, t->st->meta, "recent_high",
	    &t->recent_high, &found)) != 0 ||
	    (rc = window_out_read(t->st, t->txn, &t->win_on, &t->win_out_day,
	    &t->win_out_id)) != 0)
		return fail(t->st, rc, "reading the recent bounds");
	t->recent_read = true;
	return STORE_OK;
}

/* Deletes the rows of a day-first database (key: day, big-endian, then
 * keylen - 4 bytes) for days before day: one range at its start. */
static int
prune_days_before(struct lmdb_txn *t, MDB_dbi dbi, size_t keylen, int day,
    const char *what)
{
	MDB_cursor *cur;
	MDB_val k, d;
	bool dupsort = dbi == t->st->recent;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, dbi, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0 && k.mv_size == keylen && (int)be32(k.mv_data) < day) {
		/* In "recent", a day's rows go at once, and the next day
		 * is then the first. */
		if ((rc = mdb_cursor_del(cur, dupsort ? MDB_NODUPDATA :
		    0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &d, dupsort ? MDB_FIRST :
		    MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return fail(t->st, rc, what);
	return STORE_OK;
}

static int
recent_write(struct lmdb_txn *t, uint32_t id, int day, const struct day_rec *dr)
{
	unsigned char key[4], rec[RECENT_REC];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	be32_put(key, (uint32_t)day);
	be32_put(rec, id);
	memcpy(rec + 4, &dr->views, 8);
	memcpy(rec + 12, &dr->visitors, 8);
	if ((rc = mdb_cursor_open(t->txn, t->st->recent, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = rec;
	v.mv_size = sizeof(rec);
	rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
	v.mv_data = rec;
	v.mv_size = sizeof(rec);
	if (rc == 0)
		rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_put(cur, &k, &v, 0);
	mdb_cursor_close(cur);
	if (rc)
		return fail(t->st, rc, "writing a recent day");
	return STORE_OK;
}

/* The recent bounds are written as they move, so that a reader of the
 * transaction (an import's check) sees the rows and sums they bound. */
static int
recent_bounds_write(struct lmdb_txn *t)
{
	int32_t vals[2] = { t->recent_floor, t->recent_high };
	const char *names[2] = { "recent_floor", "recent_high" };
	MDB_val k, v;
	int rc;

	for (int i = 0; i < 2; i++) {
		k.mv_data = (void *)names[i];
		k.mv_size = strlen(names[i]);
		v.mv_data = &vals[i];
		v.mv_size = sizeof(vals[i]);
		if ((rc = mdb_put(t->txn, t->st->meta, &k, &v, 0)) != 0)
			return fail(t->st, rc, "writing the recent bounds");
	}
	return STORE_OK;
}

/* Drops the recent days before the last STORE_RECENT_DAYS, except those
 * the window's sums still hold: they are taken out later, and read until
 * then. */
static int
recent_prune(struct lmdb_txn *t)
{
	int floor = t->recent_high - STORE_RECENT_DAYS + 1, rc;

	if (t->win_on && floor > t->win_out_day)
		floor = t->win_out_day;
	if (floor <= t->recent_floor)
		return STORE_OK;
	if ((rc = prune_days_before(t, t->st->recent, 4, floor,
	    "pruning recent days")) != STORE_OK)
		return rc;
	t->recent_floor = floor;
	return recent_bounds_write(t);
}

/* Keeps the recent copy of a day row, and the window moving forward. */
static int
recent_put(struct lmdb_txn *t, uint32_t id, int day, const struct day_rec *dr)
{
	int rc;

	if ((rc = recent_bounds(t)) != STORE_OK)
		return rc;
	if (day > t->recent_high) {
		t->recent_high = day;
		if ((rc = recent_bounds_write(t)) != STORE_OK ||
		    (rc = recent_prune(t)) != STORE_OK)
			return rc;
	}
	if (day < t->recent_floor)
		return STORE_OK;
	return recent_write(t, id, day, dr);
}

static int
lmdb_recent_floor(struct store_view *base_v, int *floor)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	int32_t f = 0;
	bool found;
	int rc;

	if ((rc = meta_i32(v->txn, v->st->meta, "recent_floor", &f,
	    &found)) != 0)
		return fail(v->st, rc, "reading the recent floor");
	/* A store written before the index existed covers no day. */
	*floor = found ? f : INT32_MAX;
	return STORE_OK;
}

static int
lmdb_each_recent(struct store_view *base_v, int from, int to, store_recent_cb cb,
    void *arg)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	struct lmdb_store *st = v->st;
	struct counts c;
	MDB_cursor *cur;
	MDB_val k, d;
	unsigned char key[4];
	const unsigned char *p;
	size_t i;
	int rc, ret = STORE_OK, day;

	if (from < 0)
		from = 0;
	if (to < from)
		return STORE_OK;
	if ((rc = mdb_cursor_open(v->txn, st->recent, &cur)) != 0)
		return fail(st, rc, "mdb_cursor_open");
	be32_put(key, (uint32_t)from);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && ret == STORE_OK) {
		if (k.mv_size != 4) {
			store_set_error("corrupt recent row");
			ret = STORE_ERROR;
			break;
		}
		if ((day = (int)be32(k.mv_data)) > to)
			break;
		/* A day's rows come a page at a time. */
		rc = mdb_cursor_get(cur, &k, &d, MDB_GET_MULTIPLE);
		while (rc == 0 && ret == STORE_OK) {
			if (d.mv_size % RECENT_REC) {
				store_set_error("corrupt recent row");
				ret = STORE_ERROR;
				break;
			}
			for (i = 0, p = d.mv_data; i < d.mv_size / RECENT_REC &&
			    ret == STORE_OK; i++, p += RECENT_REC) {
				memcpy(&c.views, p + 4, 8);
				memcpy(&c.visitors, p + 12, 8);
				ret = cb(arg, be32(p), day, &c);
			}
			rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_MULTIPLE);
		}
		if (ret != STORE_OK || (rc && rc != MDB_NOTFOUND))
			break;
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_NODUP);
	}
	if (ret == STORE_OK && rc && rc != MDB_NOTFOUND)
		ret = fail(st, rc, "reading recent days");
	mdb_cursor_close(cur);
	return ret;
}

/*
 * The window: each page's sum of its recent rows over the last
 * STORE_WINDOW_DAYS days (see store.h), by id in "window" and by site
 * and views in "winrank".
 */

static void
be64_put(unsigned char *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Most views first: the views are stored inverted. */
static void
winrank_key(unsigned char key[WINRANK_KEY], uint32_t site, uint64_t views,
    uint32_t id)
{
	be32_put(key, site);
	be64_put(key + 4, ~views);
	be32_put(key + 12, id);
}

static int
window_open(struct lmdb_store *st, MDB_txn *txn, unsigned int dbflags)
{
	int rc;

	rc = mdb_dbi_open(txn, "window", dbflags, &st->window);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "winrank", dbflags, &st->winrank);
	/* A store of schema < 3 read before any writable open. */
	if (rc == MDB_NOTFOUND && (st->flags & STORE_READONLY))
		return 0;
	if (rc == 0)
		st->has_window = true;
	return rc;
}

static int
winrank_put(struct lmdb_txn *t, uint32_t id, const struct window_rec *w)
{
	unsigned char key[WINRANK_KEY];
	MDB_val k, v;

	winrank_key(key, w->site, w->views, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = (void *)&w->visitors;
	v.mv_size = sizeof(w->visitors);
	return mdb_put(t->txn, t->st->winrank, &k, &v, 0);
}

static int
winrank_del(struct lmdb_txn *t, uint32_t id, const struct window_rec *w)
{
	unsigned char key[WINRANK_KEY];
	MDB_val k;
	int rc;

	winrank_key(key, w->site, w->views, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_del(t->txn, t->st->winrank, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
window_read(struct lmdb_store *st, MDB_txn *txn, uint32_t id,
    struct window_rec *w)
{
	unsigned char key[4];
	MDB_val k, v;
	int rc;

	be32_put(key, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	if ((rc = mdb_get(txn, st->window, &k, &v)) == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc)
		return fail(st, rc, "reading a window sum");
	if (v.mv_size != sizeof(*w)) {
		store_set_error("corrupt window sum");
		return STORE_ERROR;
	}
	memcpy(w, v.mv_data, sizeof(*w));
	return STORE_OK;
}

/* Adds a row's counts to a page's sum (of site, when it has none yet),
 * or takes them out (sub): a sum back at zero goes. */
static int
window_move(struct lmdb_txn *t, uint32_t id, const char *site, uint64_t views,
    uint64_t visitors, bool sub)
{
	struct lmdb_store *st = t->st;
	struct window_rec w;
	struct series_rec srec;
	unsigned char key[4];
	MDB_val k, v;
	int rc;

	if (views == 0 && visitors == 0)
		return STORE_OK;
	rc = window_read(st, t->txn, id, &w);
	if (rc == STORE_NOTFOUND) {
		/* Taking out: the page was reset since. */
		if (sub || site == NULL)
			return STORE_OK;
		memset(&w, 0, sizeof(w));
		if ((rc = get_series(st, t->txn, site, SITE_SERIES,
		    &srec)) != STORE_OK)
			return rc == STORE_NOTFOUND ? STORE_OK : rc;
		w.site = srec.id;
	} else if (rc)
		return rc;
	else if ((rc = winrank_del(t, id, &w)) != 0)
		return fail(st, rc, "moving a window sum");
	if (sub) {
		w.views -= views;
		w.visitors -= visitors;
	} else {
		w.views += views;
		w.visitors += visitors;
	}
	be32_put(key, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	if (w.views == 0 && w.visitors == 0)
		rc = mdb_del(t->txn, st->window, &k, NULL);
	else {
		v.mv_data = &w;
		v.mv_size = sizeof(w);
		if ((rc = mdb_put(t->txn, st->window, &k, &v, 0)) == 0)
			rc = winrank_put(t, id, &w);
	}
	if (rc)
		return fail(st, rc, "writing a window sum");
	return STORE_OK;
}

static int
window_forget(struct lmdb_txn *t, uint32_t id)
{
	struct window_rec w;
	unsigned char key[4];
	MDB_val k;
	int rc;

	if (!t->st->has_window)
		return STORE_OK;
	if ((rc = window_read(t->st, t->txn, id, &w)) == STORE_NOTFOUND)
		return STORE_OK;
	if (rc)
		return rc;
	be32_put(key, id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	if ((rc = winrank_del(t, id, &w)) != 0 ||
	    (rc = mdb_del(t->txn, t->st->window, &k, NULL)) != 0)
		return fail(t->st, rc, "deleting a window sum");
	return STORE_OK;
}

/*
 * Takes up to WINDOW_STEP rows of the days that left the window out of
 * the sums, from (out_day, out_id) on, and moves that mark past them.
 * Each writing transaction does it once, so a new day's work is spread
 * over the commits that follow it.
 */
static int
window_advance(struct lmdb_txn *t)
{
	struct lmdb_store *st = t->st;
	unsigned char key[4], rec[RECENT_REC];
	uint64_t views, visitors;
	int32_t last = t->recent_high - STORE_WINDOW_DAYS, day;
	MDB_cursor *cur;
	MDB_val k, d;
	int64_t n = 0;
	int rc, ret = STORE_OK;

	if (t->win_out_day > last)
		return STORE_OK;
	if ((rc = mdb_cursor_open(t->txn, st->recent, &cur)) != 0)
		return fail(st, rc, "mdb_cursor_open");
	be32_put(key, (uint32_t)t->win_out_day);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = MDB_NOTFOUND;
	if (t->win_out_id > 0) {
		memset(rec, 0, sizeof(rec));
		be32_put(rec, t->win_out_id);
		d.mv_data = rec;
		d.mv_size = sizeof(rec);
		rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH_RANGE);
		if (rc == MDB_NOTFOUND)
			be32_put(key, (uint32_t)t->win_out_day + 1);
	}
	if (rc == MDB_NOTFOUND) {
		k.mv_data = key;
		k.mv_size = sizeof(key);
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != 4 || d.mv_size != RECENT_REC) {
			store_set_error("corrupt recent row");
			ret = STORE_ERROR;
			break;
		}
		if ((day = (int32_t)be32(k.mv_data)) > last)
			break;
		if (n++ == WINDOW_STEP + t->nadds) {
			/* The rest is for the next commits. */
			t->win_out_day = day;
			t->win_out_id = be32(d.mv_data);
			t->win_dirty = true;
			mdb_cursor_close(cur);
			return recent_prune(t);
		}
		memcpy(&views, (unsigned char *)d.mv_data + 4, 8);
		memcpy(&visitors, (unsigned char *)d.mv_data + 12, 8);
		if ((ret = window_move(t, be32(d.mv_data), NULL, views,
		    visitors, true)) != STORE_OK)
			break;
	}
	mdb_cursor_close(cur);
	if (ret != STORE_OK)
		return ret;
	if (rc && rc != MDB_NOTFOUND)
		return fail(st, rc, "reading recent days");
	t->win_out_day = last + 1;
	t->win_out_id = 0;
	t->win_dirty = true;
	return recent_prune(t);
}

struct window_entry {
	unsigned char key[WINRANK_KEY];
	uint64_t visitors;
};

static int
window_entry_cmp(const void *a, const void *b)
{
	return memcmp(((const struct window_entry *)a)->key,
	    ((const struct window_entry *)b)->key, WINRANK_KEY);
}

/*
 * Makes the sums from the recent rows of the window's days, in the
 * transaction that raises a store to schema 3 (or creates one): every
 * page's series is found in "series" with its site's id, the rows are
 * summed by id, and both databases are written in key order.
 */
static int
window_build(struct lmdb_store *st, MDB_txn *txn)
{
	struct window_rec *sums = NULL;
	struct window_entry *e = NULL;
	struct series_rec rec;
	MDB_cursor *cur = NULL;
	MDB_val k, d, key, val;
	unsigned char kb[4];
	const unsigned char *p;
	uint32_t next_id = 1, site_id = 0, id;
	int32_t floor = 0, high = -1, out;
	size_t i, n = 0, sl, cursite_len = 0;
	char cursite[KEY_MAX];
	bool found;
	int rc;

	if ((rc = mdb_drop(txn, st->window, 0)) != 0 ||
	    (rc = mdb_drop(txn, st->winrank, 0)) != 0 ||
	    (rc = meta_i32(txn, st->meta, "recent_floor", &floor,
	    &found)) != 0 ||
	    (rc = meta_i32(txn, st->meta, "recent_high", &high, &found)) != 0 ||
	    (rc = meta_i32(txn, st->meta, "next_id", (int32_t *)&next_id,
	    &found)) != 0)
		return rc;
	out = high - STORE_WINDOW_DAYS + 1 > floor ?
	    high - STORE_WINDOW_DAYS + 1 : floor;
	if ((sums = calloc((size_t)next_id + 1, sizeof(*sums))) == NULL)
		return ENOMEM;
	/* The site of each page: a site's own series comes first. */
	if ((rc = mdb_cursor_open(txn, st->series, &cur)) != 0)
		goto done;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (d.mv_size < sizeof(rec) ||
		    (p = memchr(k.mv_data, '\0', k.mv_size)) == NULL)
			continue;
		memcpy(&rec, d.mv_data, sizeof(rec));
		sl = (size_t)(p - (const unsigned char *)k.mv_data);
		if (sl + 1 == k.mv_size) {
			memcpy(cursite, k.mv_data, sl);
			cursite_len = sl;
			site_id = rec.id;
		} else if (sl == cursite_len && site_id != 0 &&
		    memcmp(k.mv_data, cursite, sl) == 0 && rec.id < next_id)
			sums[rec.id].site = site_id;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (rc != MDB_NOTFOUND)
		goto done;
	/* The rows of the window's days. */
	if ((rc = mdb_cursor_open(txn, st->recent, &cur)) != 0)
		goto done;
	be32_put(kb, (uint32_t)(out < 0 ? 0 : out));
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		uint64_t views, visitors;

		if (k.mv_size != 4 || d.mv_size != RECENT_REC ||
		    (int32_t)be32(k.mv_data) > high)
			continue;
		id = be32(d.mv_data);
		if (id >= next_id || sums[id].site == 0)
			continue;
		memcpy(&views, (unsigned char *)d.mv_data + 4, 8);
		memcpy(&visitors, (unsigned char *)d.mv_data + 12, 8);
		sums[id].views += views;
		sums[id].visitors += visitors;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (rc != MDB_NOTFOUND)
		goto done;
	/* "window" in id order, "winrank" sorted. */
	for (id = 1; id < next_id; id++)
		if (sums[id].views || sums[id].visitors)
			n++;
	if ((e = calloc(n + 1, sizeof(*e))) == NULL) {
		rc = ENOMEM;
		goto done;
	}
	for (id = 1, i = 0, rc = 0; id < next_id && rc == 0; id++) {
		if (!sums[id].views && !sums[id].visitors)
			continue;
		be32_put(kb, id);
		key.mv_data = kb;
		key.mv_size = sizeof(kb);
		val.mv_data = &sums[id];
		val.mv_size = sizeof(sums[id]);
		rc = mdb_put(txn, st->window, &key, &val, MDB_APPEND);
		winrank_key(e[i].key, sums[id].site, sums[id].views, id);
		e[i++].visitors = sums[id].visitors;
	}
	qsort(e, n, sizeof(*e), window_entry_cmp);
	for (i = 0; i < n && rc == 0; i++) {
		key.mv_data = e[i].key;
		key.mv_size = WINRANK_KEY;
		val.mv_data = &e[i].visitors;
		val.mv_size = sizeof(e[i].visitors);
		rc = mdb_put(txn, st->winrank, &key, &val, MDB_APPEND);
	}
	if (rc == 0)
		rc = window_out_write(st, txn, out, 0);
done:
	if (cur)
		mdb_cursor_close(cur);
	free(e);
	free(sums);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
lmdb_window_state(struct store_view *base_v, struct store_window *w)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	int32_t high = -1;
	bool on, found;
	int rc;

	if ((rc = window_out_read(v->st, v->txn, &on, &w->out_day,
	    &w->out_id)) != 0 ||
	    (rc = meta_i32(v->txn, v->st->meta, "recent_high", &high,
	    &found)) != 0)
		return fail(v->st, rc, "reading the window");
	if (!on)
		return STORE_NOTFOUND;
	w->high = high;
	return STORE_OK;
}

static int
lmdb_window_get(struct store_view *base_v, uint32_t id, struct counts *c)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	struct window_rec w;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!v->st->has_window)
		return STORE_OK;
	if ((rc = window_read(v->st, v->txn, id, &w)) == STORE_NOTFOUND)
		return STORE_OK;
	if (rc)
		return rc;
	c->views = w.views;
	c->visitors = w.visitors;
	return STORE_OK;
}

static int
lmdb_each_window(struct store_view *base_v, const char *site,
    store_window_cb cb, void *arg)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	struct lmdb_store *st = v->st;
	struct series_rec srec;
	unsigned char key[WINRANK_KEY];
	struct counts c;
	MDB_cursor *cur;
	MDB_val k, d;
	int rc, ret = STORE_OK;

	if (!st->has_window)
		return STORE_OK;
	if ((rc = get_series(st, v->txn, site, SITE_SERIES, &srec)) ==
	    STORE_NOTFOUND)
		return STORE_OK;
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(v->txn, st->winrank, &cur)) != 0)
		return fail(st, rc, "mdb_cursor_open");
	memset(key, 0, sizeof(key));
	be32_put(key, srec.id);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != WINRANK_KEY || d.mv_size != sizeof(uint64_t)) {
			store_set_error("corrupt window rank");
			ret = STORE_ERROR;
			break;
		}
		if (be32(k.mv_data) != srec.id)
			break;
		c.views = ~be64((unsigned char *)k.mv_data + 4);
		memcpy(&c.visitors, d.mv_data, sizeof(c.visitors));
		if ((ret = cb(arg, be32((unsigned char *)k.mv_data + 12),
		    &c)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (ret == STORE_OK && rc && rc != MDB_NOTFOUND)
		ret = fail(st, rc, "reading the window");
	return ret;
}

/* How much of n can be added to both a and b with neither passing
 * STORE_COUNT_MAX. */
static uint64_t
room(uint64_t a, uint64_t b, uint64_t n)
{
	uint64_t hi = a > b ? a : b;

	if (hi >= STORE_COUNT_MAX)
		return 0;
	return n < STORE_COUNT_MAX - hi ? n : STORE_COUNT_MAX - hi;
}

static int
add_counts(struct lmdb_txn *t, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors, bool exact)
{
	struct series_rec rec;
	struct day_rec dr;
	unsigned char key[8];
	MDB_val k, v;
	uint64_t addv, addu, totv, totu;
	int rc;

	if (day < 0) {
		store_set_error("bad day");
		return STORE_ERROR;
	}
	if ((rc = series_for_write(t, site, path, &rec)) != STORE_OK)
		return rc;
	rc = get_day(t->st, t->txn, rec.id, day, &dr);
	if (rc && rc != STORE_NOTFOUND)
		return rc;
	/* The day row and the all-time count grow by the same amount, so
	 * that the total stays the sum of the rows and the adjustment. An
	 * import's total may be on its way back from an adjustment below
	 * zero (wrapped, as unsigned numbers do): only its day row is held
	 * to the limit here, and the caller checks the totals at the end. */
	if (exact) {
		addv = room(dr.views, dr.views, views);
		addu = room(dr.visitors, dr.visitors, visitors);
		if (addv != views || addu != visitors) {
			store_set_error("the day's %s "
			    "would pass the largest count (%" PRId64 ")",
			    addv != views ? "views" : "visitors",
			    (int64_t)STORE_COUNT_MAX);
			return STORE_ERROR;
		}
		totv = addv;
		totu = addu;
	} else {
		/* A hit: the day row takes it while it has room. An all-time
		 * count at the largest stays there, and what it could not
		 * take comes off its adjustment, so that the total is still
		 * the rows plus the adjustment, and the site's day still holds
		 * every page's hit of the day. */
		addv = room(dr.views, dr.views, views);
		addu = room(dr.visitors, dr.visitors, visitors);
		totv = room(rec.views, rec.views, addv);
		totu = room(rec.visitors, rec.visitors, addu);
		rec.adj_views -= (int64_t)(addv - totv);
		rec.adj_visitors -= (int64_t)(addu - totu);
	}
	rec.views += totv;
	rec.visitors += totu;
	if ((rc = put_series(t, site, path, &rec)) != STORE_OK)
		return rc;
	dr.views += addv;
	dr.visitors += addu;
	day_key(key, rec.id, (uint32_t)day);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = &dr;
	v.mv_size = sizeof(dr);
	if ((rc = mdb_put(t->txn, t->st->days, &k, &v, 0)) != 0)
		return fail(t->st, rc, "writing a day");
	if ((rc = recent_put(t, rec.id, day, &dr)) != STORE_OK)
		return rc;
	t->nadds++;
	/* A page's row that the sums hold (day <= recent_high now). */
	if (path[0] != '\0' && t->win_on && (day > t->win_out_day ||
	    (day == t->win_out_day && rec.id >= t->win_out_id)))
		return window_move(t, rec.id, site, addv, addu, false);
	return STORE_OK;
}

static int
lmdb_add(struct store_txn *base_t, const char *site, const char *path, int day,
    uint64_t views, uint64_t visitors)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return add_counts(t, site, path, day, views, visitors, false);
}

static int
lmdb_add_exact(struct store_txn *base_t, const char *site, const char *path,
    int day, uint64_t views, uint64_t visitors)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return add_counts(t, site, path, day, views, visitors, true);
}

static int
lmdb_add_adjust(struct store_txn *base_t, const char *site, const char *path,
    int64_t views, int64_t visitors)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	struct series_rec rec;
	int rc;

	if ((rc = series_for_write(t, site, path, &rec)) != STORE_OK)
		return rc;
	if (__builtin_add_overflow(rec.adj_views, views, &rec.adj_views) ||
	    __builtin_add_overflow(rec.adj_visitors, visitors,
	    &rec.adj_visitors)) {
		store_set_error("the all-time "
		    "adjustment would leave the range of counts");
		return STORE_ERROR;
	}
	/* Unsigned wrap-around is defined, so the order of rows does not
	 * matter: the sum comes out right, and is checked once complete. */
	rec.views += (uint64_t)views;
	rec.visitors += (uint64_t)visitors;
	return put_series(t, site, path, &rec);
}

static int
lmdb_set_total(struct store_txn *base_t, const char *site, const char *path,
    uint64_t views, uint64_t visitors)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	struct series_rec rec;
	int rc;

	if (views > STORE_COUNT_MAX || visitors > STORE_COUNT_MAX) {
		store_set_error("more than the "
		    "largest count (%" PRId64 ")", (int64_t)STORE_COUNT_MAX);
		return STORE_ERROR;
	}
	if ((rc = series_for_write(t, site, path, &rec)) != STORE_OK)
		return rc;
	if (store_adjust_to(rec.views, rec.adj_views, views,
	    &rec.adj_views) == -1 ||
	    store_adjust_to(rec.visitors, rec.adj_visitors, visitors,
	    &rec.adj_visitors) == -1) {
		store_set_error("too far from what "
		    "the daily rows add up to");
		return STORE_ERROR;
	}
	rec.views = views;
	rec.visitors = visitors;
	return put_series(t, site, path, &rec);
}

static int
delete_days(struct lmdb_txn *t, uint32_t id)
{
	MDB_cursor *cur;
	MDB_val k, d;
	unsigned char key[8];
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->days, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	day_key(key, id, 0);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 8 && be32(k.mv_data) == id) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		/* After a delete, MDB_NEXT yields the row that moved up. */
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return fail(t->st, rc, "deleting days");
	return STORE_OK;
}

/* The rows of a series in "recent": one per day, found by the id. */
static int
delete_recent(struct lmdb_txn *t, uint32_t id)
{
	unsigned char rec[RECENT_REC], days[STORE_RECENT_DAYS * 2][4];
	MDB_cursor *cur;
	MDB_val k, d;
	size_t n = 0, i;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->recent, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	    rc == 0 && n < sizeof(days) / sizeof(days[0]);
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_NODUP))
		if (k.mv_size == 4)
			memcpy(days[n++], k.mv_data, 4);
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return fail(t->st, rc, "reading recent days");
	memset(rec, 0, sizeof(rec));
	id_key(rec, id);
	for (i = 0; i < n; i++) {
		k.mv_data = days[i];
		k.mv_size = 4;
		d.mv_data = rec;
		d.mv_size = sizeof(rec);
		rc = mdb_del(t->txn, t->st->recent, &k, &d);
		if (rc && rc != MDB_NOTFOUND)
			return fail(t->st, rc, "deleting recent rows");
	}
	return STORE_OK;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Forgets the visitors seen on the series hashed in h (sorted): a
 * visitor who comes back after a reset is a visitor of the new count.
 * Only today's and yesterday's ids are kept, so this walk is short. */
static int
delete_seen(struct lmdb_txn *t, const uint64_t *h, size_t n)
{
	MDB_cursor *cur;
	MDB_val k, d;
	uint64_t series;
	int rc;

	if (n == 0)
		return STORE_OK;
	if ((rc = mdb_cursor_open(t->txn, t->st->seen, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size == 20) {
			memcpy(&series, (unsigned char *)k.mv_data + 4, 8);
			/* After a delete, MDB_NEXT yields the row that
			 * moved up. */
			if (bsearch(&series, h, n, sizeof(*h), cmp_u64) &&
			    (rc = mdb_cursor_del(cur, 0)) != 0)
				break;
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return fail(t->st, rc, "deleting seen visitors");
	return STORE_OK;
}

static int
delete_series(struct lmdb_txn *t, const char *site, const char *path)
{
	struct series_rec rec;
	char key[KEY_MAX];
	MDB_val k;
	int rc;

	rc = get_series(t->st, t->txn, site, path, &rec);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc)
		return rc;
	if ((rc = delete_days(t, rec.id)) != STORE_OK ||
	    (rc = delete_recent(t, rec.id)) != STORE_OK ||
	    (rc = window_forget(t, rec.id)) != STORE_OK)
		return rc;
	{
		unsigned char nk[4];
		MDB_val n;

		id_key(nk, rec.id);
		n.mv_data = nk;
		n.mv_size = sizeof(nk);
		rc = mdb_del(t->txn, t->st->names, &n, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return fail(t->st, rc, "deleting a series name");
	}
	k.mv_size = series_key(key, site, path);
	k.mv_data = key;
	if ((rc = mdb_del(t->txn, t->st->series, &k, NULL)) != 0)
		return fail(t->st, rc, "deleting a series");
	return STORE_OK;
}

struct path_list {
	char	**paths;
	size_t	  n, cap;
};

static int
collect_path(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct path_list *l = arg;
	char **np;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if ((np = realloc(l->paths, l->cap * sizeof(*np))) == NULL)
			return STORE_ERROR;
		l->paths = np;
	}
	if ((l->paths[l->n] = strdup(path)) == NULL)
		return STORE_ERROR;
	l->n++;
	return STORE_OK;
}

static int
lmdb_reset(struct store_txn *base_t, const char *site, const char *path)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	struct lmdb_view v = { .st = t->st, .txn = t->txn, .active = 1 };
	struct path_list l = { 0 };
	struct series_rec srec;
	uint64_t h, *hashes;
	size_t i;
	int rc;

	if (path) {
		if ((rc = get_series(t->st, t->txn, site, path, &srec)) ==
		    STORE_NOTFOUND)
			return STORE_OK;
		h = store_series_hash(site, path);
		if ((rc = delete_series(t, site, path)) != STORE_OK ||
		    (rc = delete_seen(t, &h, 1)) != STORE_OK)
			return rc;
		if (path[0] == '\0')
			return STORE_OK;
		rc = get_series(t->st, t->txn, site, SITE_SERIES, &srec);
		if (rc == STORE_NOTFOUND)
			return STORE_OK;
		if (rc)
			return rc;
		if (srec.npages > 0)
			srec.npages--;
		return put_series(t, site, SITE_SERIES, &srec);
	}
	/* A referrer is the site's: it goes with the whole site. */
	if ((rc = lmdb_referrer_reset(&t->base, site)) != STORE_OK)
		return rc;
	/* Collect first: deleting under a cursor's feet is not worth it. */
	rc = lmdb_each_series(&v.base, site, collect_path, &l);
	if ((hashes = calloc(l.n + 1, sizeof(*hashes))) == NULL)
		rc = STORE_ERROR;
	for (i = 0; rc == STORE_OK && i < l.n; i++) {
		hashes[i] = store_series_hash(site, l.paths[i]);
		rc = delete_series(t, site, l.paths[i]);
	}
	if (rc == STORE_OK) {
		qsort(hashes, l.n, sizeof(*hashes), cmp_u64);
		rc = delete_seen(t, hashes, l.n);
	}
	for (i = 0; i < l.n; i++)
		free(l.paths[i]);
	free(l.paths);
	free(hashes);
	return rc;
}

static int
lmdb_meta_put(struct store_txn *base_t, const char *key, const void *val,
    size_t len)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	MDB_val k, v;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	v.mv_data = (void *)val;
	v.mv_size = len;
	if ((rc = mdb_put(t->txn, t->st->meta, &k, &v, 0)) != 0)
		return fail(t->st, rc, "writing meta");
	return STORE_OK;
}

static void
seen_key(unsigned char key[20], int day, uint64_t series, uint64_t visitor)
{
	be32_put(key, (uint32_t)day);
	memcpy(key + 4, &series, 8);
	memcpy(key + 12, &visitor, 8);
}

static int
seen_get(struct lmdb_store *st, MDB_txn *txn, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	unsigned char key[20];
	MDB_val k, d;
	int rc;

	seen_key(key, day, series, visitor);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	rc = mdb_get(txn, st->seen, &k, &d);
	if (rc && rc != MDB_NOTFOUND)
		return fail(st, rc, "reading seen visitors");
	*seen = rc == 0;
	return STORE_OK;
}

static int
lmdb_seen_get(struct store_view *base_v, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	unsigned char key[1 + 20 + 8];
	struct memo *m;
	bool held;
	int rc;

	if (v->memo == NULL || v->snapshot == 0)
		return seen_get(v->st, v->txn, day, series, visitor, seen);
	key[0] = 's';
	seen_key(key + 1, day, series, visitor);
	memset(key + 21, 0, 8);
	m = memo_slot(v, key, 21, &held);
	if (held) {
		*seen = m->seen;
		return STORE_OK;
	}
	if ((rc = seen_get(v->st, v->txn, day, series, visitor, seen)) ==
	    STORE_OK) {
		memo_keep(v, m, key, 21);
		m->seen = *seen;
	}
	return rc;
}

static int
lmdb_txn_seen_get(struct store_txn *base_t, int day, uint64_t series,
    uint64_t visitor, bool *seen)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return seen_get(t->st, t->txn, day, series, visitor, seen);
}

static int
lmdb_seen_put(struct store_txn *base_t, int day, uint64_t series,
    uint64_t visitor)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	unsigned char key[20];
	MDB_val k, d;
	int rc;

	seen_key(key, day, series, visitor);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	d.mv_data = NULL;
	d.mv_size = 0;
	rc = mdb_put(t->txn, t->st->seen, &k, &d, 0);
	if (rc)
		return fail(t->st, rc, "writing seen visitors");
	return STORE_OK;
}

static int
lmdb_seen_prune(struct store_txn *base_t, int day)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return prune_days_before(t, t->st->seen, 20, day,
	    "pruning seen visitors");
}

static int
lmdb_commit(struct store_txn *base_t)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	struct lmdb_store *st = t->st;
	MDB_val k, v;
	int rc;

	if (t->recent_read && t->win_on &&
	    (rc = window_advance(t)) != STORE_OK) {
		mdb_txn_abort(t->txn);
		free(t);
		return rc;
	}
	if (t->win_dirty && (rc = window_out_write(st, t->txn, t->win_out_day,
	    t->win_out_id)) != 0) {
		mdb_txn_abort(t->txn);
		free(t);
		return fail(st, rc, "writing the window's start");
	}
	if (t->next_id_dirty) {
		k.mv_data = "next_id";
		k.mv_size = 7;
		v.mv_data = &t->next_id;
		v.mv_size = sizeof(t->next_id);
		if ((rc = mdb_put(t->txn, st->meta, &k, &v, 0)) != 0) {
			mdb_txn_abort(t->txn);
			free(t);
			return fail(st, rc, "writing next_id");
		}
	}
	rc = mdb_txn_commit(t->txn);
	free(t);
	if (rc)
		return fail(st, rc, "mdb_txn_commit");
	return STORE_OK;
}

static void
lmdb_abort(struct store_txn *base_t)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

/*
 * Referrers: the hosts that sent a site its views, per day. Kept apart
 * from the series: a row is a site's, not a page's.
 */

static int
referrers_open(struct lmdb_store *st, MDB_txn *txn, unsigned int dbflags)
{
	int rc;

	rc = mdb_dbi_open(txn, "referrers", dbflags | MDB_DUPSORT,
	    &st->referrers);
	/* A schema 1 store read before any writable open: it has none. */
	if (rc == MDB_NOTFOUND && (st->flags & STORE_READONLY))
		return 0;
	if (rc == 0 && (rc = mdb_set_dupsort(txn, st->referrers,
	    referrer_cmp)) == 0)
		st->has_referrers = true;
	return rc;
}

static size_t
referrer_key(unsigned char *key, const char *site, int day)
{
	size_t sl = strlen(site);

	memcpy(key, site, sl + 1);
	be32_put(key + sl + 1, (uint32_t)day);
	return sl + 1 + 4;
}

/* Makes a row of host and views in rec; 0 when host is no valid name. */
static size_t
referrer_rec(unsigned char *rec, const char *host, uint64_t views)
{
	size_t hl = strlen(host);

	if (hl == 0 || hl > STORE_REFERRER_MAX)
		return 0;
	memcpy(rec, host, hl + 1);
	memcpy(rec + hl + 1, &views, sizeof(views));
	return hl + REFERRER_TAIL;
}

/* Reads a row; -1 when it is not one. */
static int
referrer_unrec(const MDB_val *d, char *host, uint64_t *views)
{
	size_t hl;

	if (d->mv_size <= REFERRER_TAIL ||
	    (hl = d->mv_size - REFERRER_TAIL) > STORE_REFERRER_MAX ||
	    memchr(d->mv_data, '\0', hl + 1) != (char *)d->mv_data + hl)
		return -1;
	memcpy(host, d->mv_data, hl + 1);
	memcpy(views, (char *)d->mv_data + hl + 1, sizeof(*views));
	return 0;
}

static int
referrer_walk(struct lmdb_view *v, const char *site, int from, int to,
    store_referrer_cb one, store_referrer_row_cb all, void *arg)
{
	struct lmdb_store *st = v->st;
	unsigned char key[REFERRER_SITE_MAX + 5];
	char host[STORE_REFERRER_MAX + 1], ksite[REFERRER_SITE_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, d;
	uint64_t views;
	size_t plen = 0, sl;
	int rc, ret = STORE_OK, day;

	if (!st->has_referrers)
		return STORE_OK;
	if (from < 0)
		from = 0;
	if (to < from)
		return STORE_OK;
	if (site != NULL && strlen(site) > REFERRER_SITE_MAX)
		return STORE_OK;
	if ((rc = mdb_cursor_open(v->txn, st->referrers, &cur)) != 0)
		return fail(st, rc, "mdb_cursor_open");
	if (site != NULL) {
		k.mv_size = referrer_key(key, site, from);
		plen = k.mv_size - 4;
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	} else
		rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	for (; rc == 0 && ret == STORE_OK;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (site != NULL && (k.mv_size != plen + 4 ||
		    memcmp(k.mv_data, key, plen) != 0))
			break;
		if (k.mv_size < 6 || k.mv_size > sizeof(key) ||
		    (sl = strnlen(k.mv_data, k.mv_size)) != k.mv_size - 5 ||
		    referrer_unrec(&d, host, &views) == -1) {
			store_set_error("corrupt referrer row");
			ret = STORE_ERROR;
			break;
		}
		if ((day = (int)be32((unsigned char *)k.mv_data + sl + 1)) >
		    to) {
			if (site != NULL)
				break;
			continue;
		}
		if (one != NULL)
			ret = one(arg, day, host, views);
		else {
			memcpy(ksite, k.mv_data, sl + 1);
			ret = all(arg, ksite, day, host, views);
		}
	}
	if (ret == STORE_OK && rc && rc != MDB_NOTFOUND)
		ret = fail(st, rc, "reading referrers");
	mdb_cursor_close(cur);
	return ret;
}

static int
lmdb_each_referrer(struct store_view *base_v, const char *site, int from, int to,
    store_referrer_cb cb, void *arg)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;

	return referrer_walk(v, site, from, to, cb, NULL, arg);
}

static int
lmdb_each_referrer_row(struct store_view *base_v, const char *site,
    store_referrer_row_cb cb, void *arg)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;

	return referrer_walk(v, site, 0, INT_MAX, NULL, cb, arg);
}

/* Puts the cursor on host's row of the day of key and reads its views;
 * MDB_NOTFOUND when there is none, MDB_CORRUPTED when the row is not
 * one. */
static int
referrer_lookup(MDB_cursor *cur, MDB_val *k, const char *host,
    uint64_t *views)
{
	unsigned char rec[STORE_REFERRER_MAX + REFERRER_TAIL];
	char found[STORE_REFERRER_MAX + 1];
	MDB_val d;
	int rc;

	*views = 0;
	d.mv_size = referrer_rec(rec, host, 0);
	d.mv_data = rec;
	if ((rc = mdb_cursor_get(cur, k, &d, MDB_GET_BOTH)) != 0)
		return rc;
	return referrer_unrec(&d, found, views) == -1 ? MDB_CORRUPTED : 0;
}

/* referrer_lookup, and *nhosts: the day's rows. */
static int
referrer_find(MDB_cursor *cur, MDB_val *k, const char *host,
    uint64_t *views, size_t *nhosts)
{
	MDB_val d;
	size_t n;
	int rc;

	*nhosts = 0;
	*views = 0;
	if ((rc = mdb_cursor_get(cur, k, &d, MDB_SET)) != 0 ||
	    (rc = mdb_cursor_count(cur, &n)) != 0)
		return rc;
	*nhosts = n;
	return referrer_lookup(cur, k, host, views);
}

static int
referrer_put(struct lmdb_txn *t, const char *site, int day, const char *host,
    uint64_t views, uint32_t max, bool exact)
{
	unsigned char key[REFERRER_SITE_MAX + 5];
	unsigned char rec[STORE_REFERRER_MAX + REFERRER_TAIL];
	MDB_cursor *cur;
	MDB_val k, d;
	uint64_t have, other;
	size_t nhosts, n;
	unsigned int flags;
	int rc;

	if (!t->st->has_referrers || day < 0 || strlen(site) > REFERRER_SITE_MAX ||
	    referrer_rec(rec, host, 0) == 0) {
		store_set_error("bad referrer row");
		return STORE_ERROR;
	}
	if ((rc = mdb_cursor_open(t->txn, t->st->referrers, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	k.mv_size = referrer_key(key, site, day);
	k.mv_data = key;
	rc = referrer_find(cur, &k, host, &have, &nhosts);
	/* A new host past the day's max: its views go to "(other)". */
	if (rc == MDB_NOTFOUND && !exact &&
	    strcmp(host, STORE_REFERRER_OTHER) != 0) {
		rc = referrer_find(cur, &k, STORE_REFERRER_OTHER, &other, &n);
		if (nhosts - (rc == 0) >= max) {
			host = STORE_REFERRER_OTHER;
			have = other;
		} else
			rc = MDB_NOTFOUND;
	}
	flags = 0;
	if (rc == 0)
		flags = MDB_CURRENT;
	else if (rc != MDB_NOTFOUND) {
		mdb_cursor_close(cur);
		return fail(t->st, rc, "reading a referrer");
	}
	if (exact) {
		if (views > STORE_COUNT_MAX - have) {
			mdb_cursor_close(cur);
			store_set_error("the day's views from %s would pass the "
			    "largest count (%" PRId64 ")", host,
			    (int64_t)STORE_COUNT_MAX);
			return STORE_ERROR;
		}
		have += views;
	} else
		have += room(have, have, views);
	d.mv_size = referrer_rec(rec, host, have);
	d.mv_data = rec;
	rc = mdb_cursor_put(cur, &k, &d, flags);
	mdb_cursor_close(cur);
	if (rc)
		return fail(t->st, rc, "writing a referrer");
	return STORE_OK;
}

static int
lmdb_referrer_add(struct store_txn *base_t, const char *site, int day,
    const char *host, uint64_t views, uint32_t max)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return referrer_put(t, site, day, host, views, max, false);
}

static int
lmdb_referrer_add_exact(struct store_txn *base_t, const char *site, int day,
    const char *host, uint64_t views)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;

	return referrer_put(t, site, day, host, views, 0, true);
}

static int
lmdb_referrer_get(struct store_view *base_v, const char *site, int day,
    const char *host, uint64_t *views)
{
	struct lmdb_view *v = (struct lmdb_view *)base_v;
	unsigned char key[REFERRER_SITE_MAX + 5];
	MDB_cursor *cur;
	MDB_val k;
	int rc;

	*views = 0;
	if (!v->st->has_referrers || day < 0 || strlen(site) > REFERRER_SITE_MAX ||
	    strlen(host) == 0 || strlen(host) > STORE_REFERRER_MAX)
		return STORE_OK;
	if ((rc = mdb_cursor_open(v->txn, v->st->referrers, &cur)) != 0)
		return fail(v->st, rc, "mdb_cursor_open");
	k.mv_size = referrer_key(key, site, day);
	k.mv_data = key;
	rc = referrer_lookup(cur, &k, host, views);
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return fail(v->st, rc, "reading a referrer");
	return STORE_OK;
}

static int
lmdb_referrer_reset(struct store_txn *base_t, const char *site)
{
	struct lmdb_txn *t = (struct lmdb_txn *)base_t;
	unsigned char key[REFERRER_SITE_MAX + 5];
	MDB_cursor *cur;
	MDB_val k, d;
	size_t plen;
	int rc;

	if (!t->st->has_referrers || strlen(site) > REFERRER_SITE_MAX)
		return STORE_OK;
	if ((rc = mdb_cursor_open(t->txn, t->st->referrers, &cur)) != 0)
		return fail(t->st, rc, "mdb_cursor_open");
	plen = referrer_key(key, site, 0) - 4;
	for (;;) {
		/* Sought again after each delete: a day at a time. */
		k.mv_size = plen + 4;
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
		if (rc || k.mv_size != plen + 4 ||
		    memcmp(k.mv_data, key, plen) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, MDB_NODUPDATA)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return fail(t->st, rc, "deleting referrers");
	return STORE_OK;
}

const struct store_ops store_lmdb_ops = {
	.name = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.lock_daemon = lmdb_lock_daemon,
	.stat = lmdb_stat,
	.grow = lmdb_grow,
	.backup = lmdb_backup,
	.reader_check = lmdb_reader_check,
	.sync = lmdb_sync,
	.view_new = lmdb_view_new,
	.view_free = lmdb_view_free,
	.view_begin = lmdb_view_begin,
	.view_end = lmdb_view_end,
	.view_version = lmdb_view_version,
	.txn_version = lmdb_txn_version,
	.get = lmdb_get,
	.meta_get = lmdb_meta_get,
	.each_series = lmdb_each_series,
	.each_day = lmdb_each_day,
	.recent_floor = lmdb_recent_floor,
	.each_recent = lmdb_each_recent,
	.window_state = lmdb_window_state,
	.window_get = lmdb_window_get,
	.each_window = lmdb_each_window,
	.series_name = lmdb_series_name,
	.max_id = lmdb_max_id,
	.orphan_rows = lmdb_orphan_rows,
	.write_begin = lmdb_write_begin,
	.add = lmdb_add,
	.add_exact = lmdb_add_exact,
	.add_adjust = lmdb_add_adjust,
	.set_total = lmdb_set_total,
	.reset = lmdb_reset,
	.meta_put = lmdb_meta_put,
	.txn_view = lmdb_txn_view,
	.txn_get = lmdb_txn_get,
	.seen_get = lmdb_seen_get,
	.txn_seen_get = lmdb_txn_seen_get,
	.seen_put = lmdb_seen_put,
	.seen_prune = lmdb_seen_prune,
	.commit = lmdb_commit,
	.abort = lmdb_abort,
	.each_referrer = lmdb_each_referrer,
	.each_referrer_row = lmdb_each_referrer_row,
	.referrer_get = lmdb_referrer_get,
	.referrer_add = lmdb_referrer_add,
	.referrer_add_exact = lmdb_referrer_add_exact,
	.referrer_reset = lmdb_referrer_reset,
};
