/*
 * tallyctl import-log: counts an nginx/Apache access log ("combined" or
 * "common"), plain or gzip, into a site's history.
 *
 * A line counts as a view the way tallyd counts one: a GET answered
 * 2xx or 304, not from a bot (tallyd's list, and the configured extra
 * patterns), not for a static asset, under its normalized path, on the
 * day of its own timestamp in the configured zone, into the page and
 * into the whole site. Past the site's max_pages, a new path counts under
 * /(other) until three addresses view it on one day, by tallyd's rule
 * (pages.h).
 *
 * Visitors are distinct address + User-Agent per day, per site and per
 * page, told apart by a SipHash under a key made at random for this
 * import and forgotten after it: no address or User-Agent is stored,
 * and nothing links the import's visitors to tallyd's. A "common" log
 * has no User-Agent: visitors are then distinct addresses, and bots
 * cannot be told from people.
 *
 * Everything is added up in memory first; the store sees one write
 * transaction of one row per page and day, which tallyd waits for only
 * briefly.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include "tally/arena.h"
#include "tally/bots.h"
#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/hash.h"
#include "tally/logline.h"
#include "tally/net.h"
#include "tally/pages.h"
#include "tally/path.h"

#include "ctl.h"

#define READ_SIZE	(1 << 20)	/* bytes per read */
#define SHOW_MALFORMED	5	/* malformed lines named on stderr */
#define TARGET_CACHE_MAX (1u << 20)	/* raw request targets remembered */
#define UA_CACHE_MAX	(1u << 20)	/* User-Agents judged */
#define WAIT_ADDRESS	(1u << 31)	/* series bit: seen set of addresses */
#define WAIT_ADMITTED	UINT32_MAX	/* waits: paths admitted a day */

/* What became of a line. */
enum outcome {
	OUT_VIEW,
	OUT_METHOD,	/* not a GET */
	OUT_STATUS,	/* not 2xx or 304 */
	OUT_ASSET,
	OUT_BOT,
	OUT_PATH,	/* a path that cannot be normalized */
	OUT_MALFORMED,
	OUT_N
};

static const char *const outcome_name[OUT_N] = {
	"views", "method", "status", "asset", "bot", "path", "malformed"
};

/* Hash tables are open-addressed arrays of 32-bit indexes (0: empty)
 * into an array of entries that keep their own hash. */
struct index {
	uint32_t	*slot;
	size_t		 mask;	/* capacity (a power of 2) - 1 */
	size_t		 n;
};

/* A normalized path, and its series (past max_pages, maybe waiting). */
struct path_entry {
	uint64_t	 hash;
	const char	*path;
	uint32_t	 series;
};

/* A raw request target already seen, and what it came to. */
struct target_entry {
	uint64_t	 hash;
	const char	*target;
	uint32_t	 len;
	int32_t		 series;	/* not a view: -1 - outcome */
};

struct ua_entry {
	uint64_t	 hash;
	const char	*ua;
	uint32_t	 len;
	bool		 bot;
};

struct row {
	uint64_t	 key;		/* series << 32 | day */
	uint64_t	 views, visitors;
};


struct importlog {
	struct ctl	*ctl;
	const char	*site;
	struct logline_parser parser;	/* the format, the last date */
	struct botlist	*bots;
	unsigned char	 key[crypto_shorthash_KEYBYTES];
	long		 max_pages;

	struct store_view *view;	/* what pages the store has */
	uint32_t	 store_npages, new_pages;

	/* series[0] is the site's own (path "") */
	const char	**series;
	size_t		 nseries, capseries;
	/* Past max_pages: whether a series still counts under /(other),
	 * and, as the views of a row of waits, the distinct addresses it
	 * had a day (WAIT_ADMITTED: the paths admitted that day). */
	bool		*waiting;
	size_t		 capwaiting;
	struct row	*waits;
	size_t		 nwaits, capwaits;
	struct index	 wait_idx;

	struct path_entry *paths;
	size_t		 npaths, cappaths;
	struct index	 path_idx;

	struct target_entry *targets;
	size_t		 ntargets, captargets;
	struct index	 target_idx;

	struct ua_entry	*uas;
	size_t		 nuas, capuas;
	struct index	 ua_idx;

	struct row	*rows;
	size_t		 nrows, caprows;
	struct index	 row_idx;

	uint64_t	*seen;		/* visitor+series+day; 0: empty */
	size_t		 seen_mask, nseen;

	struct arena	 strings;

	/* the day of a time, for the last day looked up */
	time_t		 day_lo, day_hi;
	int		 day_cached;

	/* counts */
	uint64_t	 lines, outcome[OUT_N];
	unsigned	 files_read, files_failed;
	int		 min_day, max_day;

	/* progress */
	bool		 progress;
	uint64_t	 total_bytes, done_bytes;
	struct timespec	 started, last_shown;
};

static void *
xcalloc(size_t n, size_t sz)
{
	void *p;

	if ((p = calloc(n, sz)) == NULL)
		fatal("import-log");
	return p;
}

static void *
grow_array(void *p, size_t *cap, size_t sz)
{
	*cap = *cap ? *cap * 2 : 1024;
	if ((p = reallocarray(p, *cap, sz)) == NULL)
		fatal("import-log");
	return p;
}


/* For table slots only: what must not be guessed (visitor ids) goes
 * through SipHash under the import's key. */
static uint64_t
fnv1a(const char *s, size_t len)
{
	return hash_fnv1a(HASH_FNV1A_INIT, s, len);
}

/* MurmurHash3's finalizer: spreads the bits of a key over the slots. */
static uint64_t
mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb3fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static void
index_init(struct index *x, size_t cap)
{
	x->slot = xcalloc(cap, sizeof(*x->slot));
	x->mask = cap - 1;
	x->n = 0;
}

/*
 * Finds the slot of hash h: the one whose entry eq() accepts, or the
 * empty one where it belongs. hash_of() gives an entry's hash back when
 * the table grows.
 */
typedef bool (*entry_eq)(const void *entries, uint32_t i, const void *key);

static uint32_t *
index_find(struct index *x, uint64_t h, const void *entries, entry_eq eq,
    const void *key)
{
	size_t i = (size_t)mix64(h) & x->mask;

	while (x->slot[i] != 0) {
		if (eq(entries, x->slot[i] - 1, key))
			return &x->slot[i];
		i = (i + 1) & x->mask;
	}
	return &x->slot[i];
}

typedef uint64_t (*entry_hash)(const void *entries, uint32_t i);

/* Keeps the table at most half full. */
static void
index_grow(struct index *x, const void *entries, entry_hash hash_of)
{
	struct index nx;
	size_t i, j;

	if ((x->n + 1) * 2 <= x->mask + 1)
		return;
	index_init(&nx, (x->mask + 1) * 2);
	for (i = 0; i <= x->mask; i++) {
		if (x->slot[i] == 0)
			continue;
		j = (size_t)mix64(hash_of(entries, x->slot[i] - 1)) & nx.mask;
		while (nx.slot[j] != 0)
			j = (j + 1) & nx.mask;
		nx.slot[j] = x->slot[i];
	}
	nx.n = x->n;
	free(x->slot);
	*x = nx;
}

/*
 * Series and paths.
 */

struct str_key {
	uint64_t	 hash;
	const char	*s;
	size_t		 len;
};

static bool
path_eq(const void *entries, uint32_t i, const void *key)
{
	const struct path_entry *e = (const struct path_entry *)entries + i;
	const struct str_key *k = key;

	return e->hash == k->hash && strcmp(e->path, k->s) == 0;
}

static uint64_t
path_hash(const void *entries, uint32_t i)
{
	return ((const struct path_entry *)entries)[i].hash;
}

static uint32_t
series_add(struct importlog *il, const char *path)
{
	if (il->nseries == il->capseries)
		il->series = grow_array(il->series, &il->capseries,
		    sizeof(*il->series));
	if (il->nseries == il->capwaiting)
		il->waiting = grow_array(il->waiting, &il->capwaiting,
		    sizeof(*il->waiting));
	il->series[il->nseries] = path;
	il->waiting[il->nseries] = false;
	return (uint32_t)il->nseries++;
}

/* The store's view of a page: does it exist already? */
static int
store_has_page(struct importlog *il, const char *path, bool *exists)
{
	struct series_counts sc;
	int rc;

	if ((rc = store_view_begin(il->view)) != STORE_OK)
		return rc;
	rc = store_get(il->view, il->site, path, 0, &sc);
	store_view_end(il->view);
	*exists = sc.exists;
	return rc;
}

/* Adds a path new to this import, and finds its series. */
static int
path_new(struct importlog *il, const struct str_key *k, uint32_t *series)
{
	struct path_entry *e;
	struct page_cap cap;
	uint32_t *slot;
	bool exists;
	int rc;

	if ((rc = store_has_page(il, k->s, &exists)) != STORE_OK)
		return ctl_fail(il->ctl, "reading %s %s: %s", il->site, k->s,
		    store_error(il->ctl->store));
	*series = series_add(il, arena_strdup(&il->strings, k->s, k->len));
	/* A path the site has no room for waits (waiting_series). */
	memset(&cap, 0, sizeof(cap));
	cap.max_pages = il->max_pages;
	cap.npages = (long)il->store_npages + (long)il->new_pages;
	if (!exists && page_gets_series(&cap, k->s))
		il->new_pages++;
	else if (!exists)
		il->waiting[*series] = true;
	index_grow(&il->path_idx, il->paths, path_hash);
	slot = index_find(&il->path_idx, k->hash, il->paths, path_eq, k);
	if (il->npaths == il->cappaths)
		il->paths = grow_array(il->paths, &il->cappaths,
		    sizeof(*il->paths));
	e = &il->paths[il->npaths];
	e->hash = k->hash;
	e->path = il->series[*series];
	e->series = *series;
	*slot = (uint32_t)++il->npaths;
	il->path_idx.n++;
	return 0;
}

/* The series a normalized path counts under. */
static int
path_series(struct importlog *il, const char *path, uint32_t *series)
{
	struct str_key k;
	uint32_t *slot;

	k.s = path;
	k.len = strlen(path);
	k.hash = fnv1a(path, k.len);
	index_grow(&il->path_idx, il->paths, path_hash);
	slot = index_find(&il->path_idx, k.hash, il->paths, path_eq, &k);
	if (*slot != 0) {
		*series = il->paths[*slot - 1].series;
		return 0;
	}
	return path_new(il, &k, series);
}

/*
 * Static assets: what a page loads, not a page. By the extension of
 * the last segment, and /.well-known/ (certificates, security.txt).
 */
static bool
is_asset(const char *path)
{
	static const char *const ext[] = {
		"css", "js", "mjs", "map", "json", "xml", "txt", "ico", "png",
		"jpg", "jpeg", "gif", "webp", "avif", "svg", "svgz", "bmp",
		"tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp3",
		"mp4", "m4a", "m4v", "ogg", "oga", "ogv", "opus", "wav",
		"flac", "webm", "mov", "avi", "mkv", "pdf", "zip", "gz",
		"tgz", "bz2", "xz", "zst", "7z", "rar", "tar", "exe", "dmg",
		"iso", "apk", "deb", "rpm", "msi", "wasm", "swf", "flv",
		"csv", "rss", "atom", "webmanifest", "doc", "docx", "xls",
		"xlsx", "ppt", "pptx", "odt", "ods", "epub",
	};
	const char *seg, *dot;
	char low[16];
	size_t i, n;

	if (strncmp(path, "/.well-known/", 13) == 0)
		return true;
	seg = strrchr(path, '/');
	seg = seg ? seg + 1 : path;
	if ((dot = strrchr(seg, '.')) == NULL)
		return false;
	dot++;
	n = strlen(dot);
	if (n == 0 || n >= sizeof(low))
		return false;
	for (i = 0; i < n; i++)
		low[i] = (dot[i] >= 'A' && dot[i] <= 'Z') ?
		    (char)(dot[i] + 32) : dot[i];
	low[n] = '\0';
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (strcmp(low, ext[i]) == 0)
			return true;
	return false;
}

static bool
target_eq(const void *entries, uint32_t i, const void *key)
{
	const struct target_entry *e = (const struct target_entry *)entries + i;
	const struct str_key *k = key;

	return e->hash == k->hash && e->len == k->len &&
	    memcmp(e->target, k->s, k->len) == 0;
}

static uint64_t
target_hash(const void *entries, uint32_t i)
{
	return ((const struct target_entry *)entries)[i].hash;
}

/*
 * What a request target comes to: a series, or OUT_ASSET / OUT_PATH.
 * Targets repeat a lot in a log; each is normalized once.
 */
static int
target_series(struct importlog *il, const char *target, size_t len,
    int32_t *res)
{
	char path[PATH_MAX_LEN + 1];
	struct target_entry *e;
	struct str_key k;
	enum path_error pe;
	const char *raw;
	char *unesc = NULL;
	size_t rawlen;
	uint32_t *slot, series;
	int rc;

	k.s = target;
	k.len = len;
	k.hash = fnv1a(target, len);
	index_grow(&il->target_idx, il->targets, target_hash);
	slot = index_find(&il->target_idx, k.hash, il->targets, target_eq, &k);
	if (*slot != 0) {
		*res = il->targets[*slot - 1].series;
		return 0;
	}
	raw = target;
	rawlen = len;
	if (memchr(target, '\\', len) != NULL) {
		if ((unesc = malloc(len)) == NULL)
			fatal("import-log");
		rawlen = logline_unescape(target, len, unesc);
		raw = unesc;
	}
	pe = path_normalize(raw, rawlen, path);
	free(unesc);
	if (pe != PATH_OK)
		*res = -1 - OUT_PATH;
	else if (is_asset(path))
		*res = -1 - OUT_ASSET;
	else {
		if ((rc = path_series(il, path, &series)) != 0)
			return rc;
		*res = (int32_t)series;
	}
	/* Queries that differ on every line would fill memory: past a
	 * limit targets are normalized each time instead. */
	if (il->ntargets >= TARGET_CACHE_MAX)
		return 0;
	if (il->ntargets == il->captargets)
		il->targets = grow_array(il->targets, &il->captargets,
		    sizeof(*il->targets));
	e = &il->targets[il->ntargets];
	e->hash = k.hash;
	e->target = arena_strdup(&il->strings, target, len);
	e->len = (uint32_t)len;
	e->series = *res;
	*slot = (uint32_t)++il->ntargets;
	il->target_idx.n++;
	return 0;
}

static bool
ua_eq(const void *entries, uint32_t i, const void *key)
{
	const struct ua_entry *e = (const struct ua_entry *)entries + i;
	const struct str_key *k = key;

	return e->hash == k->hash && e->len == k->len &&
	    memcmp(e->ua, k->s, k->len) == 0;
}

static uint64_t
ua_hash(const void *entries, uint32_t i)
{
	return ((const struct ua_entry *)entries)[i].hash;
}

/* The bot list is a hundred substring searches; a log has few distinct
 * User-Agents, so each is judged once. ua[0..len) is as the line has
 * it: the list is matched on a NUL-terminated copy. */
static bool
is_bot(struct importlog *il, const char *ua, size_t len)
{
	struct ua_entry *e;
	struct str_key k;
	uint32_t *slot;
	char *tmp;
	bool bot;

	k.s = ua;
	k.len = len;
	k.hash = fnv1a(ua, len);
	index_grow(&il->ua_idx, il->uas, ua_hash);
	slot = index_find(&il->ua_idx, k.hash, il->uas, ua_eq, &k);
	if (*slot != 0)
		return il->uas[*slot - 1].bot;
	if (il->nuas >= UA_CACHE_MAX) {
		if ((tmp = malloc(len + 1)) == NULL)
			fatal("import-log");
		memcpy(tmp, ua, len);
		tmp[len] = '\0';
		bot = botlist_match(il->bots, tmp);
		free(tmp);
		return bot;
	}
	if (il->nuas == il->capuas)
		il->uas = grow_array(il->uas, &il->capuas, sizeof(*il->uas));
	e = &il->uas[il->nuas];
	e->hash = k.hash;
	e->ua = arena_strdup(&il->strings, ua, len);
	e->len = (uint32_t)len;
	e->bot = bot = botlist_match(il->bots, e->ua);
	*slot = (uint32_t)++il->nuas;
	il->ua_idx.n++;
	return bot;
}

/*
 * Counting.
 */

static bool
row_eq(const void *entries, uint32_t i, const void *key)
{
	return ((const struct row *)entries)[i].key == *(const uint64_t *)key;
}

static uint64_t
row_hash(const void *entries, uint32_t i)
{
	return ((const struct row *)entries)[i].key;
}

/* The row of series and day in a table of rows, made when new. */
static struct row *
row_in(struct row **rows, size_t *n, size_t *cap, struct index *idx,
    uint32_t series, int day)
{
	uint64_t key = (uint64_t)series << 32 | (uint32_t)day;
	uint32_t *slot;
	struct row *r;

	index_grow(idx, *rows, row_hash);
	slot = index_find(idx, key, *rows, row_eq, &key);
	if (*slot != 0)
		return &(*rows)[*slot - 1];
	if (*n == *cap)
		*rows = grow_array(*rows, cap, sizeof(**rows));
	r = &(*rows)[*n];
	r->key = key;
	r->views = r->visitors = 0;
	*slot = (uint32_t)++*n;
	idx->n++;
	return r;
}

static struct row *
row_get(struct importlog *il, uint32_t series, int day)
{
	return row_in(&il->rows, &il->nrows, &il->caprows, &il->row_idx,
	    series, day);
}

static struct row *
wait_get(struct importlog *il, uint32_t series, int day)
{
	return row_in(&il->waits, &il->nwaits, &il->capwaits, &il->wait_idx,
	    series, day);
}

/* True when visitor vid is new to the series on day. The key is the
 * visitor id mixed with series and day: 64 bits, so that a million
 * visitors collide with odds of one in ten million. */
static bool
visit(struct importlog *il, uint64_t vid, uint32_t series, int day)
{
	uint64_t k, *old;
	size_t i, j, oldmask;

	k = vid ^ mix64((uint64_t)series << 32 | (uint32_t)day);
	if (k == 0)
		k = 1;
	if ((il->nseen + 1) * 2 > il->seen_mask + 1) {
		old = il->seen;
		oldmask = il->seen_mask;
		il->seen_mask = (oldmask + 1) * 2 - 1;
		il->seen = xcalloc(il->seen_mask + 1, sizeof(*il->seen));
		for (i = 0; i <= oldmask; i++) {
			if (old[i] == 0)
				continue;
			j = (size_t)mix64(old[i]) & il->seen_mask;
			while (il->seen[j] != 0)
				j = (j + 1) & il->seen_mask;
			il->seen[j] = old[i];
		}
		free(old);
	}
	i = (size_t)mix64(k) & il->seen_mask;
	while (il->seen[i] != 0) {
		if (il->seen[i] == k)
			return false;
		i = (i + 1) & il->seen_mask;
	}
	il->seen[i] = k;
	il->nseen++;
	return true;
}

static void
count_view(struct importlog *il, uint32_t series, int day, uint64_t vid)
{
	struct row *r;

	r = row_get(il, 0, day);
	r->views++;
	if (visit(il, vid, 0, day))
		r->visitors++;
	r = row_get(il, series, day);
	r->views++;
	if (visit(il, vid, series, day))
		r->visitors++;
	if (day < il->min_day)
		il->min_day = day;
	if (day > il->max_day)
		il->max_day = day;
}

/*
 * Counting a line.
 */

/* The client of a log line as tallyd would key it: an IPv4 address, an
 * IPv6 /64, or a host name as it is; hashed under the import's key. */
static uint64_t
host_key(struct importlog *il, const char *host, size_t len)
{
	unsigned char addr[16], out[crypto_shorthash_BYTES];
	char text[INET6_ADDRSTRLEN];
	struct in_addr a4;
	uint64_t key;

	if (len < sizeof(text)) {
		memcpy(text, host, len);
		text[len] = '\0';
		if (inet_pton(AF_INET, text, &a4) == 1) {
			memset(addr, 0, 10);
			addr[10] = addr[11] = 0xff;
			memcpy(addr + 12, &a4, 4);
			host = (const char *)addr;
			len = sizeof(addr);
		} else if (inet_pton(AF_INET6, text, addr) == 1) {
			addr_client_net(addr);
			host = (const char *)addr;
			len = sizeof(addr);
		}
	}
	crypto_shorthash(out, (const unsigned char *)host, len, il->key);
	memcpy(&key, out, sizeof(key));
	return key;
}

/* A view of a path that waits past max_pages: it gets its series when
 * the site's rule says so, else it counts under /(other). */
static int
waiting_series(struct importlog *il, const struct logline *ll, int day,
    uint32_t *series)
{
	struct page_cap cap;
	struct row *w, *a;

	w = wait_get(il, *series, day);
	if (visit(il, host_key(il, ll->host, ll->hostlen),
	    *series | WAIT_ADDRESS, day))
		w->views++;
	a = wait_get(il, WAIT_ADMITTED, day);
	memset(&cap, 0, sizeof(cap));
	cap.max_pages = il->max_pages;
	cap.npages = (long)il->store_npages + (long)il->new_pages;
	cap.admitted = (long)a->views;
	cap.addresses = (long)w->views;
	if (page_gets_series(&cap, il->series[*series])) {
		il->waiting[*series] = false;
		il->new_pages++;
		a->views++;
		return 0;
	}
	return path_series(il, PATH_OTHER, series);
}

/* The local day of t. Logs come in time order, so the day's bounds are
 * remembered and most lines need no time zone arithmetic at all. */
static int
day_of_time(struct importlog *il, time_t t)
{
	if (t >= il->day_lo && t < il->day_hi)
		return il->day_cached;
	il->day_cached = day_of(t);
	il->day_lo = t;
	il->day_hi = t + day_seconds_to_midnight(t);
	return il->day_cached;
}

/* What a line comes to: a view counted, or why not. */
static int
count_line(struct importlog *il, const char *line, size_t len,
    enum outcome *out)
{
	unsigned char hashin[1024], vidbuf[crypto_shorthash_BYTES];
	struct logline ll;
	uint64_t vid;
	size_t hl, ualen;
	int day, rc;
	int32_t series;
	uint32_t s;

	*out = OUT_MALFORMED;
	if (!logline_parse(&il->parser, line, len, &ll))
		return 0;
	if (ll.target == NULL || ll.methodlen != 3 ||
	    memcmp(ll.method, "GET", 3) != 0) {
		*out = OUT_METHOD;
		return 0;
	}
	if (!((ll.status >= 200 && ll.status <= 299) || ll.status == 304)) {
		*out = OUT_STATUS;
		return 0;
	}
	if ((rc = target_series(il, ll.target, ll.targetlen, &series)) != 0)
		return rc;
	if (series < 0) {
		*out = (enum outcome)(-1 - series);
		return 0;
	}
	if (il->parser.format == LOGLINE_COMBINED &&
	    is_bot(il, ll.ua, ll.ualen)) {
		*out = OUT_BOT;
		return 0;
	}

	/* The visitor: address and User-Agent, as tallyd takes them. */
	hl = ll.hostlen;
	if (hl > 255)
		hl = 255;
	memcpy(hashin, ll.host, hl);
	hashin[hl++] = '\0';
	ualen = ll.ualen;
	if (ualen > sizeof(hashin) - hl)
		ualen = sizeof(hashin) - hl;
	if (ualen)
		memcpy(hashin + hl, ll.ua, ualen);
	crypto_shorthash(vidbuf, hashin, hl + ualen, il->key);
	memcpy(&vid, vidbuf, sizeof(vid));

	day = day_of_time(il, ll.when);
	if (day < 0) {
		/* Before 1970: the store has no such day. */
		*out = OUT_MALFORMED;
		return 0;
	}
	s = (uint32_t)series;
	if (il->waiting[s] && (rc = waiting_series(il, &ll, day, &s)) != 0)
		return rc;
	count_view(il, s, day, vid);
	*out = OUT_VIEW;
	return 0;
}

/*
 * Reading.
 */

static double
elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void
show_progress(struct importlog *il, bool last)
{
	static const char *const eighths[] = {
		"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"
	};
	struct timespec now;
	char n1[NUM_STRLEN];
	double frac;
	int units, i, width = 30;

	if (!il->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!last && elapsed(&il->last_shown, &now) < 0.1)
		return;
	il->last_shown = now;
	if (last) {
		fputs("\r\033[K", stderr);
		return;
	}
	fputs("\r", stderr);
	if (il->total_bytes > 0) {
		frac = (double)il->done_bytes / (double)il->total_bytes;
		if (frac > 1)
			frac = 1;
		units = (int)(frac * width * 8);
		fprintf(stderr, "%3d%% ", (int)(frac * 100));
		for (i = 0; i < units / 8; i++)
			fputs("█", stderr);
		fputs(eighths[units % 8], stderr);
		for (i = units / 8 + (units % 8 ? 1 : 0); i < width; i++)
			fputc(' ', stderr);
		fputs("▏", stderr);
	}
	fprintf(stderr, " %s lines\033[K", ctl_thousands(n1, il->lines));
	fflush(stderr);
}

static void
report_malformed(struct importlog *il, const char *name, uint64_t lineno,
    const char *why)
{
	if (il->outcome[OUT_MALFORMED] > SHOW_MALFORMED)
		return;
	if (il->progress)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "%s:%" PRIu64 ": %s\n", name, lineno,
	    il->outcome[OUT_MALFORMED] == SHOW_MALFORMED ?
	    "malformed line (further ones are only counted)" : why);
}

/* Reads one file: returns 0, or an exit code after a failure that
 * stops the import (the store), not one of the file. */
static int
read_log(struct importlog *il, const char *file)
{
	const char *name = strcmp(file, "-") == 0 ? "(stdin)" : file;
	char *buf, *line, *line0, *nl, *end, *e, shown[4 * 1024 + 1];
	size_t have = 0;
	uint64_t lineno = 0, base_bytes = il->done_bytes;
	enum outcome out;
	bool skipping = false;
	const char *msg;
	gzFile gz;
	int fd, n, zerr, rc = 0;

	/* The name is only shown, and a file may be named anything. */
	text_escape(shown, sizeof(shown), name, strlen(name));
	name = shown;
	if (strcmp(file, "-") == 0)
		fd = dup(STDIN_FILENO);
	else
		fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		fprintf(stderr, "tallyctl: import-log: %s: %s\n", name,
		    strerror(errno));
		il->files_failed++;
		return 0;
	}
	/* zlib reads a file that is not gzip as it is. */
	if ((gz = gzdopen(fd, "rb")) == NULL) {
		close(fd);
		fprintf(stderr, "tallyctl: import-log: %s: gzdopen failed\n",
		    name);
		il->files_failed++;
		return 0;
	}
	gzbuffer(gz, 1 << 17);
	buf = xcalloc(1, READ_SIZE + 1);

	for (;;) {
		n = gzread(gz, buf + have, (unsigned)(READ_SIZE - have));
		if (n < 0) {
			msg = gzerror(gz, &zerr);
			fprintf(stderr, "tallyctl: import-log: %s: %s; the "
			    "lines before are counted\n", name,
			    zerr == Z_ERRNO ? strerror(errno) : msg);
			il->files_failed++;
			break;
		}
		end = buf + have + n;
		if (n == 0) {
			if (have == 0)
				break;
			*end++ = '\n';	/* the last line had none */
		}
		line = buf;
		while ((nl = memchr(line, '\n', (size_t)(end - line))) !=
		    NULL) {
			lineno++;
			e = nl;
			line0 = line;
			line = nl + 1;
			if (skipping) {
				/* The end of a line too long to hold. */
				skipping = false;
				continue;
			}
			if (e > line0 && e[-1] == '\r')
				e--;
			if (e == line0)
				continue;	/* blank lines are nothing */
			il->lines++;
			if ((rc = count_line(il, line0, (size_t)(e - line0),
			    &out)) != 0)
				goto done;
			il->outcome[out]++;
			if (out == OUT_MALFORMED)
				report_malformed(il, name, lineno,
				    "not a log line in this format");
		}
		have = (size_t)(end - line);
		if (have == READ_SIZE) {
			/* A megabyte without a newline is no log line. */
			il->lines++;
			il->outcome[OUT_MALFORMED]++;
			report_malformed(il, name, lineno + 1, "line too long");
			skipping = true;
			have = 0;
		} else if (have > 0)
			memmove(buf, line, have);
		if (n == 0)
			break;
		il->done_bytes = base_bytes + (uint64_t)gzoffset(gz);
		show_progress(il, false);
	}
	il->files_read++;
done:
	gzclose(gz);
	free(buf);
	return rc;
}

/*
 * Writing.
 */

static int
row_cmp(const void *a, const void *b, void *arg)
{
	const struct row *x = a, *y = b;
	struct importlog *il = arg;
	uint32_t sx = (uint32_t)(x->key >> 32), sy = (uint32_t)(y->key >> 32);
	int c;

	/* Path order, then day order: the store's own, so that the
	 * write walks its B-trees forwards. */
	if (sx != sy && (c = strcmp(il->series[sx], il->series[sy])) != 0)
		return c;
	return (int32_t)(uint32_t)x->key < (int32_t)(uint32_t)y->key ? -1 :
	    (int32_t)(uint32_t)x->key > (int32_t)(uint32_t)y->key;
}

struct rows_write {
	struct importlog *il;
	uint64_t	 already;	/* days that had counts before */
};

/* Every row, in one transaction (a store_write_fn). */
static int
add_rows(struct store_txn *txn, void *arg)
{
	struct rows_write *w = arg;
	struct importlog *il = w->il;
	struct series_counts sc;
	const struct row *r;
	size_t i;
	int rc = STORE_OK;

	w->already = 0;
	for (i = 0; i < il->nrows && rc == STORE_OK; i++) {
		r = &il->rows[i];
		if ((r->key >> 32) == 0) {
			/* Days with counts before: a log imported twice, or
			 * days tallyd counted too. */
			rc = store_txn_get(txn, il->site, SITE_SERIES,
			    (int)(uint32_t)r->key, &sc);
			if (rc == STORE_OK && sc.day.views > 0)
				w->already++;
		}
		if (rc == STORE_OK)
			rc = store_add(txn, il->site, il->series[r->key >> 32],
			    (int)(uint32_t)r->key, r->views, r->visitors);
	}
	return rc;
}

static int
write_rows(struct importlog *il, uint64_t *already)
{
	struct store *st = il->ctl->store;
	struct rows_write w = { il, 0 };

	qsort_r(il->rows, il->nrows, sizeof(*il->rows), row_cmp, il);
	store_reader_check(st);
	if (store_write(st, add_rows, &w) != STORE_OK)
		return ctl_fail(il->ctl, "writing: %s; nothing was imported",
		    store_error(st));
	*already = w.already;
	return 0;
}

static void
report(struct importlog *il, double secs, uint64_t already)
{
	char n[OUT_N][NUM_STRLEN], nl[NUM_STRLEN], rate[NUM_STRLEN],
	    np[NUM_STRLEN], d1[DAY_STRLEN], d2[DAY_STRLEN];
	uint64_t skipped = 0;
	struct buf b;
	int i;

	for (i = 0; i < OUT_N; i++) {
		ctl_thousands(n[i], il->outcome[i]);
		if (i != OUT_VIEW && i != OUT_MALFORMED)
			skipped += il->outcome[i];
	}
	if (il->ctl->json) {
		buf_init(&b);
		buf_puts(&b, "{\"site\":");
		json_string(&b, il->site);
		buf_printf(&b, ",\"lines\":%" PRIu64 ",\"views\":%" PRIu64
		    ",\"pages\":%zu,\"skipped\":{", il->lines,
		    il->outcome[OUT_VIEW], il->nseries - 1);
		for (i = OUT_METHOD; i < OUT_MALFORMED; i++)
			buf_printf(&b, "%s\"%s\":%" PRIu64, i == OUT_METHOD ?
			    "" : ",", outcome_name[i], il->outcome[i]);
		buf_printf(&b, "},\"malformed\":%" PRIu64
		    ",\"seconds\":%.3f}\n", il->outcome[OUT_MALFORMED], secs);
		fputs(b.data, stdout);
		buf_free(&b);
	}
	fprintf(stderr, "tallyctl: import-log: %s lines in %.1f s (%s "
	    "lines/s)\n", ctl_thousands(nl, il->lines), secs,
	    ctl_thousands(rate, secs > 0 ? (uint64_t)(il->lines / secs) : 0));
	if (il->outcome[OUT_VIEW] > 0) {
		day_format(il->min_day, d1);
		day_format(il->max_day, d2);
		fprintf(stderr, "  counted %s views of %s pages of site %s, "
		    "%s to %s\n", n[OUT_VIEW],
		    ctl_thousands(np, il->nseries - 1), il->site, d1, d2);
	} else
		fprintf(stderr, "  counted no views\n");
	fprintf(stderr, "  skipped %s: %s not GET, %s not 2xx/304, %s static "
	    "assets, %s bots, %s bad paths\n", ctl_thousands(nl, skipped),
	    n[OUT_METHOD], n[OUT_STATUS], n[OUT_ASSET], n[OUT_BOT],
	    n[OUT_PATH]);
	fprintf(stderr, "  malformed %s\n", n[OUT_MALFORMED]);
	if (already > 0)
		fprintf(stderr, "tallyctl: import-log: warning: %s of the days "
		    "imported had counts already (the log imported before, or "
		    "counted by tallyd too?)\n", ctl_thousands(nl, already));
}

int
cmd_import_log(struct ctl *ctl, int argc, char **argv)
{
	const char *format_opt = NULL, *site_opt = NULL;
	bool create = false;
	struct ctl_opt opts[] = {
		{ "format", &format_opt, NULL },
		{ "site", &site_opt, NULL },
		{ "create", NULL, &create },
		{ NULL, NULL, NULL },
	};
	struct importlog il;
	struct series_counts sc;
	struct timespec t0, t1;
	struct stat sb;
	char **args = NULL;
	uint64_t already = 0;
	int rc, nargs, i, nstdin = 0;

	memset(&il, 0, sizeof(il));
	il.ctl = ctl;
	il.min_day = INT32_MAX;
	il.max_day = INT32_MIN;
	il.day_hi = il.day_lo = 0;
	if ((args = calloc((size_t)argc, sizeof(*args))) == NULL)
		fatal("import-log");
	if ((rc = ctl_parse(ctl, argc, argv, opts, args, &nargs, 1, -1)) != 0 ||
	    (rc = ctl_site(ctl, site_opt, &il.site)) != 0)
		goto done;
	if (format_opt == NULL || strcmp(format_opt, "combined") == 0)
		logline_init(&il.parser, LOGLINE_COMBINED);
	else if (strcmp(format_opt, "common") == 0)
		logline_init(&il.parser, LOGLINE_COMMON);
	else {
		rc = ctl_usage(ctl, "--format: combined or common, not \"%s\"",
		    format_opt);
		goto done;
	}
	for (i = 0; i < nargs; i++)
		if (strcmp(args[i], "-") == 0 && ++nstdin > 1) {
			rc = ctl_usage(ctl, "- (stdin) given twice");
			goto done;
		}
	if ((rc = ctl_open(ctl, 0)) != 0)
		goto done;

	if (sodium_init() < 0) {
		rc = ctl_fail(ctl, "sodium_init failed");
		goto done;
	}
	/* The import's own key: visitor ids mean nothing after it. */
	crypto_shorthash_keygen(il.key);
	if ((il.bots = botlist_new(ctl->cfg.bots, ctl->cfg.nbots)) == NULL) {
		rc = ctl_fail(ctl, "botlist_new: out of memory");
		goto done;
	}
	il.max_pages = config_site_max_pages(&ctl->cfg,
	    config_site(&ctl->cfg, il.site));
	if ((il.view = store_view_new(ctl->store)) == NULL) {
		rc = ctl_fail(ctl, "store_view_new: out of memory");
		goto done;
	}
	if (store_view_begin(il.view) != STORE_OK ||
	    store_get(il.view, il.site, SITE_SERIES, 0, &sc) != STORE_OK) {
		rc = ctl_fail(ctl, "reading %s: %s", il.site,
		    store_error(ctl->store));
		goto done;
	}
	/* A mistyped --site would count a log into a site nobody reads. */
	if (!create && (rc = ctl_site_known(ctl, il.view, il.site)) != 0)
		goto done;
	store_view_end(il.view);
	il.store_npages = sc.npages;

	index_init(&il.path_idx, 1024);
	index_init(&il.target_idx, 1024);
	index_init(&il.ua_idx, 1024);
	index_init(&il.row_idx, 1024);
	index_init(&il.wait_idx, 1024);
	il.seen_mask = (1 << 16) - 1;
	il.seen = xcalloc(il.seen_mask + 1, sizeof(*il.seen));
	series_add(&il, SITE_SERIES);

	il.progress = isatty(STDERR_FILENO);
	/* The bar needs the sizes; with stdin it counts lines alone. */
	for (i = 0; i < nargs && il.progress; i++) {
		if (strcmp(args[i], "-") == 0) {
			il.total_bytes = 0;
			break;
		}
		if (stat(args[i], &sb) == 0 && S_ISREG(sb.st_mode))
			il.total_bytes += (uint64_t)sb.st_size;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < nargs; i++)
		if ((rc = read_log(&il, args[i])) != 0)
			goto done;
	show_progress(&il, true);

	/* Nothing that looked like a log line: a wrong file or format. */
	if (il.lines == il.outcome[OUT_MALFORMED]) {
		rc = ctl_fail(ctl, "no log line could be read%s; nothing "
		    "imported", il.lines ? (il.parser.format ==
		    LOGLINE_COMBINED ? " (a common log? try --format common)" :
		    " in the common format") : "");
		if (il.lines)
			fprintf(stderr, "  malformed %" PRIu64 "\n", il.lines);
		goto done;
	}
	if (il.nrows > 0 && (rc = write_rows(&il, &already)) != 0)
		goto done;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	report(&il, elapsed(&t0, &t1), already);
	rc = 0;
done:
	sodium_memzero(il.key, sizeof(il.key));
	store_view_free(il.view);
	botlist_free(il.bots);
	free(il.series);
	free(il.paths);
	free(il.path_idx.slot);
	free(il.targets);
	free(il.target_idx.slot);
	free(il.uas);
	free(il.ua_idx.slot);
	free(il.rows);
	free(il.row_idx.slot);
	free(il.waiting);
	free(il.waits);
	free(il.wait_idx.slot);
	free(il.seen);
	arena_free(&il.strings);
	free(args);
	return rc;
}
