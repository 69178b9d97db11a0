/*
 * Visitor ids are SipHash-2-4 (libsodium's crypto_shorthash) of site,
 * address and User-Agent under the day's random salt. The salts live in
 * the store so that a restart does not count today's visitors again;
 * only today's and yesterday's exist, and with them the ids can no
 * longer be recomputed once a salt is gone.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/un.h>

#include <sodium.h>

#include "tally/config.h"
#include "tally/log.h"
#include "tally/net.h"

#include "visitor.h"

#define SALT_BYTES	crypto_shorthash_KEYBYTES
#define HASH_INPUT_MAX	(SITE_NAME_MAX + 1 + 16 + 1 + HTTP_MAX_HEADER_BYTES)

struct salt_rec {
	int32_t	 day;
	unsigned char salt[SALT_BYTES];
};

#define RATE_WINDOW_US	(60 * (uint64_t)1000000)

struct rate_slot {
	uint64_t key;
	uint64_t tat;	/* when the bucket is full again, in now_us() */
};

struct visitors {
	struct store	*store;
	struct store_view *view;
	pthread_mutex_t	 salt_lock;
	struct salt_rec	 salts[2];	/* today's and yesterday's */
	uint64_t	 salts_loaded;	/* how often salts was filled */
	unsigned char	 rate_key[crypto_shorthash_KEYBYTES];
	uint64_t	 serial;	/* which visitors_new made it */
	struct rate_slot *rate;		/* per visitor */
	struct rate_slot *rate_address;	/* per address (/32, /64) */
};

/* The one address every client that a proxy could not name shares: the
 * discard prefix of RFC 6666, which no real client has. */
static const unsigned char unknown_addr[16] = { 0x01, 0x00 };

/* A span of the header being read. */
struct span {
	const char *s;
	size_t	 len;
};

static struct span
span_trim(const char *s, size_t len)
{
	struct span sp;

	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	sp.s = s;
	sp.len = len;
	return sp;
}

/* Parses one address of a forwarding header: "1.2.3.4", "1.2.3.4:80",
 * "[2001:db8::1]:80", "2001:db8::1", quoted or not. "unknown" and
 * obfuscated names ("_hidden") are not addresses. */
static bool
parse_forwarded_addr(struct span sp, unsigned char addr[16])
{
	char tmp[64], *p = tmp, *e;
	struct in_addr a4;

	if (sp.len >= 2 && sp.s[0] == '"' && sp.s[sp.len - 1] == '"') {
		sp.s++;
		sp.len -= 2;
	}
	if (sp.len == 0 || sp.len >= sizeof(tmp))
		return false;
	memcpy(tmp, sp.s, sp.len);
	tmp[sp.len] = '\0';
	if (*p == '[') {
		if ((e = strchr(p, ']')) == NULL ||
		    (e[1] != '\0' && e[1] != ':'))
			return false;
		*e = '\0';
		p++;
		return inet_pton(AF_INET6, p, addr) == 1;
	}
	if (inet_pton(AF_INET6, p, addr) == 1)
		return true;
	if ((e = strchr(p, ':')) != NULL)
		*e = '\0';	/* IPv4 with a port */
	if (inet_pton(AF_INET, p, &a4) != 1)
		return false;
	memset(addr, 0, 10);
	addr[10] = addr[11] = 0xff;
	memcpy(addr + 12, &a4, 4);
	return true;
}

static bool
addr_trusted(const struct config *cfg, const unsigned char addr[16])
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	memcpy(&sin6.sin6_addr, addr, 16);
	return cidr_list_match(cfg->trusted_proxies, cfg->ntrusted_proxies,
	    (struct sockaddr *)&sin6);
}

/* Splits s at sep outside quoted strings into trimmed, non-empty parts
 * (RFC 9110 5.6.1: empty list elements are ignored). Returns how many
 * there are, even beyond max, of which the first max are stored. */
static size_t
split_list(const char *s, size_t len, char sep, struct span *out, size_t max)
{
	const char *end = s + len, *p = s, *start = s;
	struct span sp;
	bool quoted = false;
	size_t n = 0;

	for (;; p++) {
		if (p < end && quoted && *p == '\\' && p + 1 < end) {
			p++;
			continue;
		}
		if (p < end && *p == '"')
			quoted = !quoted;
		if (p < end && (quoted || *p != sep))
			continue;
		sp = span_trim(start, (size_t)(p - start));
		if (sp.len > 0) {
			if (n < max)
				out[n] = sp;
			n++;
		}
		if (p >= end)
			break;
		start = p + 1;
	}
	return n;
}

/* The value of parameter name ("for") of one Forwarded element, or an
 * empty span. */
static struct span
forwarded_param(struct span el, const char *name)
{
	struct span pairs[16], none = { "", 0 };
	size_t i, n, nl = strlen(name);

	n = split_list(el.s, el.len, ';', pairs, 16);
	for (i = 0; i < n && i < 16; i++)
		if (pairs[i].len > nl && pairs[i].s[nl] == '=' &&
		    strncasecmp(pairs[i].s, name, nl) == 0)
			return span_trim(pairs[i].s + nl + 1,
			    pairs[i].len - nl - 1);
	return none;
}

/* host[:port] as the client asked for it, and only that: the page that
 * shows it escapes it anyway. */
static void
copy_host(char *dst, size_t dstsz, struct span sp)
{
	if (sp.len >= 2 && sp.s[0] == '"' && sp.s[sp.len - 1] == '"') {
		sp.s++;
		sp.len -= 2;
	}
	if (sp.len == 0 || sp.len >= dstsz || strspn(sp.s,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-:[]_") < sp.len)
		return;
	memcpy(dst, sp.s, sp.len);
	dst[sp.len] = '\0';
}

static void
copy_proto(char *dst, size_t dstsz, struct span sp)
{
	if (sp.len >= 2 && sp.s[0] == '"' && sp.s[sp.len - 1] == '"') {
		sp.s++;
		sp.len -= 2;
	}
	if (sp.len == 5 && strncasecmp(sp.s, "https", 5) == 0)
		snprintf(dst, dstsz, "https");
	else if (sp.len == 4 && strncasecmp(sp.s, "http", 4) == 0)
		snprintf(dst, dstsz, "http");
}

/* The last element of a trusted proxy's X-Forwarded-Host or -Proto: the
 * one the proxy nearest to tallyd wrote. */
static struct span
last_element(const struct http_request *r, const char *lname, char *buf)
{
	struct span none = { "", 0 };
	const char *h, *p;
	size_t len;

	if ((h = http_header_join(r, lname, buf, HTTP_JOINED_MAX)) == NULL)
		return none;
	/* Hosts and schemes hold no quoted commas: the last comma ends it. */
	len = strlen(h);
	if ((p = memrchr(h, ',', len)) == NULL)
		return span_trim(h, len);
	return span_trim(p + 1, len - (size_t)(p + 1 - h));
}

/* Untrusted peers' forwarding headers are their own word; an operator
 * who forgot trusted_proxies is told once, not once per request. */
static void
warn_untrusted(const struct http_request *r)
{
	static const char *const names[] = {
		"x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip",
	};
	static int warned;
	const char *name;
	size_t h, i;

	if (__atomic_load_n(&warned, __ATOMIC_RELAXED))
		return;
	/* One pass over the request's headers: this runs for every request
	 * of a daemon that no proxy talks to. */
	for (h = 0; h < r->nheaders; h++) {
		name = r->headers[h].name;
		if (*name != 'x' && *name != 'f' && *name != 'c')
			continue;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(name, names[i]) == 0)
				break;
		if (i < sizeof(names) / sizeof(names[0]))
			break;
	}
	if (h == r->nheaders ||
	    __atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		return;
	log_warnx("ignoring forwarding headers from a peer that is not in "
	    "trusted_proxies (warned once)");
}

static void
unknown_client(struct client *cl)
{
	memcpy(cl->addr, unknown_addr, 16);
	cl->known = false;
}

/* Right to left: each trusted hop vouches for the one before it; the
 * first hop that is not trusted is the client. An element that names no
 * address where the client should be makes the client unknown. */
static int
walk_chain(const struct config *cfg, const char *h, bool forwarded,
    struct client *cl, const char **err)
{
	struct span el[FORWARDED_MAX_HOPS];
	unsigned char cand[16];
	size_t n, i;

	n = split_list(h, strlen(h), ',', el, FORWARDED_MAX_HOPS);
	if (n > FORWARDED_MAX_HOPS) {
		*err = "forwarding header names too many hops";
		return -1;
	}
	/* A header that names no hop at all names no client either: never
	 * the proxy itself. */
	if (n == 0)
		unknown_client(cl);
	for (i = n; i-- > 0;) {
		if (!parse_forwarded_addr(forwarded ?
		    forwarded_param(el[i], "for") : el[i], cand)) {
			unknown_client(cl);
			break;
		}
		memcpy(cl->addr, cand, 16);
		if (!addr_trusted(cfg, cand))
			break;
	}
	/* The client's own hop says how the client reached us. */
	if (forwarded && n > 0) {
		if (i == (size_t)-1)
			i = 0;
		copy_host(cl->host, sizeof(cl->host),
		    forwarded_param(el[i], "host"));
		copy_proto(cl->proto, sizeof(cl->proto),
		    forwarded_param(el[i], "proto"));
	}
	return 0;
}

int
client_identify(const struct config *cfg, const struct http_request *r,
    struct client *cl, const char **err)
{
	const struct sockaddr *sa = r->peer;
	const char *name = cfg->client_ip_header, *h;
	char lower[32], buf[HTTP_JOINED_MAX];
	unsigned char cand[16];
	bool forwarded;
	size_t i;

	memset(cl, 0, sizeof(*cl));
	cl->known = true;
	if (sa->sa_family == AF_INET) {
		cl->addr[10] = cl->addr[11] = 0xff;
		memcpy(cl->addr + 12,
		    &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(cl->addr,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return 0;
	}
	/* Only a trusted proxy's word is taken. */
	if (cfg->ntrusted_proxies == 0 || !addr_trusted(cfg, cl->addr)) {
		warn_untrusted(r);
		return 0;
	}
	if (name == NULL)
		return 0;
	for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[i] = '\0';
	forwarded = strcmp(lower, "forwarded") == 0;
	if (!forwarded) {
		copy_host(cl->host, sizeof(cl->host),
		    last_element(r, "x-forwarded-host", buf));
		copy_proto(cl->proto, sizeof(cl->proto),
		    last_element(r, "x-forwarded-proto", buf));
	}
	if ((h = http_header_join(r, lower, buf, sizeof(buf))) == NULL)
		return 0;	/* the proxy's own request */
	if (forwarded || strcmp(lower, "x-forwarded-for") == 0)
		return walk_chain(cfg, h, forwarded, cl, err);
	/* X-Real-IP, CF-Connecting-IP: one address, set by the proxy. */
	if (parse_forwarded_addr(span_trim(h, strlen(h)), cand))
		memcpy(cl->addr, cand, 16);
	else
		unknown_client(cl);
	return 0;
}

/* Numbers each struct visitors, so that a key kept from one is never
 * taken for another's. */
static uint64_t visitors_made;

/* Here, as this file is tallyd's one user of libsodium. Both are copied
 * into buffers of one size, so that neither the length nor the place of
 * the first difference shows in the time taken. */
bool
token_equal(const char *a, const char *b)
{
	unsigned char x[TOKEN_MAX + 1], y[TOKEN_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > TOKEN_MAX || lb > TOKEN_MAX)
		return false;
	memset(x, 0, sizeof(x));
	memset(y, 0, sizeof(y));
	memcpy(x, a, la);
	memcpy(y, b, lb);
	return sodium_memcmp(x, y, sizeof(x)) == 0;
}

struct visitors *
visitors_new(struct store *store)
{
	struct visitors *v;

	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	if ((v = calloc(1, sizeof(*v))) == NULL)
		fatal("visitors");
	v->store = store;
	pthread_mutex_init(&v->salt_lock, NULL);
	v->salts[0].day = v->salts[1].day = -1;
	v->view = store_view_new(store);
	v->rate = calloc(RATE_SLOTS, sizeof(*v->rate));
	v->rate_address = calloc(RATE_SLOTS, sizeof(*v->rate_address));
	if (v->view == NULL || v->rate == NULL || v->rate_address == NULL)
		fatal("visitors");
	/* The rate table's key lives in memory only. */
	crypto_shorthash_keygen(v->rate_key);
	v->serial = __atomic_add_fetch(&visitors_made, 1, __ATOMIC_RELAXED);
	return v;
}

void
visitors_free(struct visitors *v)
{
	if (v == NULL)
		return;
	store_view_free(v->view);
	free(v->rate);
	free(v->rate_address);
	sodium_memzero(v->salts, sizeof(v->salts));
	pthread_mutex_destroy(&v->salt_lock);
	free(v);
}

struct salts_write {
	const struct salt_rec *salts;
	size_t	 n;
	int	 day;
};

static int
write_salts(struct store_txn *txn, void *arg)
{
	struct salts_write *w = arg;
	int rc;

	if ((rc = store_meta_put(txn, STORE_META_SALTS, w->salts,
	    w->n * sizeof(w->salts[0]))) != STORE_OK)
		return rc;
	/* Visitor ids of days whose salt is gone go too. */
	return store_seen_prune(txn, w->day - 1);
}

/* The stored salts of day and day - 1, into keep; how many. */
static int
read_salts(struct visitors *v, int day, struct salt_rec keep[2], size_t *k,
    size_t *n)
{
	struct salt_rec stored[2];
	size_t len = sizeof(stored), i;
	int rc;

	memset(stored, 0, sizeof(stored));
	*k = 0;
	if ((rc = store_view_begin(v->view)) != STORE_OK)
		return rc;
	rc = store_meta_get(v->view, STORE_META_SALTS, stored, &len);
	store_view_end(v->view);
	if (rc == STORE_NOTFOUND)
		len = 0;
	else if (rc != STORE_OK)
		return rc;
	*n = len / sizeof(stored[0]);
	for (i = 0; i < *n; i++)
		if (stored[i].day == day || stored[i].day == day - 1)
			keep[(*k)++] = stored[i];
	sodium_memzero(stored, sizeof(stored));
	return STORE_OK;
}

/*
 * Loads the salts of day and day - 1, making day's when it is new and
 * dropping every older one. They are read again after writing: a shared
 * store keeps the salt another node wrote first, and every node must
 * use that one.
 */
static int
load_salts(struct visitors *v, int day)
{
	struct salt_rec keep[2];
	struct salts_write sw;
	size_t n, i, k;
	int rc;

	if ((rc = read_salts(v, day, keep, &k, &n)) != STORE_OK)
		return rc;
	for (i = 0; i < k; i++)
		if (keep[i].day == day)
			break;
	if (i == k || k != n) {
		if (i == k) {
			if (k == 2)
				k = 1;	/* cannot happen: two of day - 1 */
			keep[k].day = day;
			randombytes_buf(keep[k].salt, SALT_BYTES);
			k++;
		}
		sw.salts = keep;
		sw.n = k;
		sw.day = day;
		if ((rc = store_write(v->store, write_salts, &sw)) != STORE_OK)
			return rc;
		log_info("visitor salt rotated");
		if ((rc = read_salts(v, day, keep, &k, &n)) != STORE_OK)
			return rc;
	}
	memset(v->salts, 0, sizeof(v->salts));
	v->salts[0].day = v->salts[1].day = -1;
	for (i = 0; i < k; i++)
		v->salts[i] = keep[i];
	v->salts_loaded++;
	sodium_memzero(keep, sizeof(keep));
	return STORE_OK;
}

static size_t
hash_input(unsigned char *buf, const char *site, const unsigned char addr[16],
    const char *ua)
{
	size_t sl = strlen(site), ul = ua ? strlen(ua) : 0, n = 0;

	if (sl > SITE_NAME_MAX)
		sl = SITE_NAME_MAX;
	if (ul > HTTP_MAX_HEADER_BYTES)
		ul = HTTP_MAX_HEADER_BYTES;
	memcpy(buf, site, sl);
	n = sl;
	buf[n++] = '\0';
	memcpy(buf + n, addr, 16);
	n += 16;
	buf[n++] = '\0';
	if (ul)
		memcpy(buf + n, ua, ul);
	return n + ul;
}

/*
 * The last visitor id of this thread, with what it was made of: a
 * keep-alive connection sends the same User-Agent from the same address
 * hit after hit, and the hash of it all is most of what an id costs. An
 * id is a function of the salt, the site, the address and the
 * User-Agent; the salt is named by the day and by how often the salts
 * were loaded, and the rest is compared whole. What it holds, the
 * process holds anyway for as long as the connection is open.
 */
#define LAST_UA_MAX	512

static __thread struct {
	uint64_t	 serial;	/* of the visitors; 0: empty */
	uint64_t	 salts_loaded;
	int		 day;
	unsigned char	 addr[16];
	size_t		 ul;
	char		 site[SITE_NAME_MAX + 1];
	char		 ua[LAST_UA_MAX];
	uint64_t	 id;
} last_id;

int
visitor_id(struct visitors *v, int day, const char *site,
    const unsigned char addr[16], const char *ua, uint64_t *id)
{
	unsigned char in[HASH_INPUT_MAX], out[crypto_shorthash_BYTES];
	unsigned char salt[SALT_BYTES];
	uint64_t loaded = 0;
	bool found = false;
	size_t n, sl = strlen(site), ul = ua ? strlen(ua) : 0;
	int rc = STORE_OK, i, pass;

	pthread_mutex_lock(&v->salt_lock);
	for (pass = 0; pass < 2 && !found && rc == STORE_OK; pass++) {
		if (pass == 1)
			rc = load_salts(v, day);
		for (i = 0; i < 2 && rc == STORE_OK; i++) {
			if (v->salts[i].day == day) {
				memcpy(salt, v->salts[i].salt, SALT_BYTES);
				found = true;
			}
		}
	}
	loaded = v->salts_loaded;
	pthread_mutex_unlock(&v->salt_lock);
	if (rc != STORE_OK)
		return rc;
	if (!found)
		return STORE_ERROR;
	if (last_id.serial == v->serial && last_id.salts_loaded == loaded &&
	    last_id.day == day && last_id.ul == ul &&
	    memcmp(last_id.addr, addr, 16) == 0 &&
	    strcmp(last_id.site, site) == 0 &&
	    memcmp(last_id.ua, ua ? ua : "", ul) == 0) {
		sodium_memzero(salt, sizeof(salt));
		*id = last_id.id;
		return STORE_OK;
	}
	n = hash_input(in, site, addr, ua);
	crypto_shorthash(out, in, n, salt);
	sodium_memzero(salt, sizeof(salt));
	memcpy(id, out, sizeof(*id));
	if (sl <= SITE_NAME_MAX && ul < LAST_UA_MAX) {
		last_id.serial = v->serial;
		last_id.salts_loaded = loaded;
		last_id.day = day;
		memcpy(last_id.addr, addr, 16);
		memcpy(last_id.site, site, sl + 1);
		last_id.ul = ul;
		memcpy(last_id.ua, ua ? ua : "", ul);
		last_id.id = *id;
	}
	return STORE_OK;
}

int
visitors_rotate(struct visitors *v, int day)
{
	int rc;

	pthread_mutex_lock(&v->salt_lock);
	rc = load_salts(v, day);
	pthread_mutex_unlock(&v->salt_lock);
	return rc;
}

bool
visitors_knows(struct visitors *v, int day)
{
	bool known;

	pthread_mutex_lock(&v->salt_lock);
	known = v->salts[0].day == day || v->salts[1].day == day;
	pthread_mutex_unlock(&v->salt_lock);
	return known;
}

/* Microseconds on the monotonic clock: allowances must not jump with
 * the wall clock. Never 0, which is an unused slot's time. */
static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + 1;
}

/*
 * A token bucket of limit views that refills at limit per minute, kept
 * as the time at which it would be full again (the "theoretical arrival
 * time" of GCRA): one 64-bit number per slot instead of a count and a
 * clock. A view is allowed when taking it leaves that time at most a
 * minute ahead; *tat is then what the slot is to hold.
 */
static bool
bucket_take(struct rate_slot *tab, uint64_t key, long limit, uint64_t now,
    struct rate_slot **slot, uint64_t *tat)
{
	uint64_t step = RATE_WINDOW_US / (uint64_t)limit, t;

	*slot = &tab[key % RATE_SLOTS];
	t = __atomic_load_n(&(*slot)->tat, __ATOMIC_RELAXED);
	/* A slot that holds another key starts full. */
	if (__atomic_load_n(&(*slot)->key, __ATOMIC_RELAXED) != key || t < now)
		t = now;
	*tat = t + (step > 0 ? step : 1);
	return *tat - now <= RATE_WINDOW_US;
}

static void
bucket_store(struct rate_slot *s, uint64_t key, uint64_t tat)
{
	/* Threads race on a slot only when two requests of one client
	 * arrive at once; the worst outcome is a view more or less. */
	__atomic_store_n(&s->key, key, __ATOMIC_RELAXED);
	__atomic_store_n(&s->tat, tat, __ATOMIC_RELAXED);
}

uint64_t
address_key(struct visitors *v, const char *site, const unsigned char addr[16])
{
	/* A keep-alive connection asks for the same key hit after hit:
	 * the last one of this thread is kept, with what it was made of
	 * (the rate key never changes while tallyd runs). */
	static __thread struct {
		uint64_t	 serial;
		unsigned char	 net[16];
		char		 site[SITE_NAME_MAX + 1];
		uint64_t	 key;
	} last;
	unsigned char in[HASH_INPUT_MAX], net[16], out[crypto_shorthash_BYTES];
	uint64_t key;
	size_t n, sl = strlen(site);

	memcpy(net, addr, 16);
	addr_client_net(net);
	if (last.serial == v->serial && memcmp(last.net, net, 16) == 0 &&
	    strcmp(last.site, site) == 0)
		return last.key;
	/* No User-Agent, unlike a visitor: the two never share a key. */
	n = hash_input(in, site, net, NULL);
	in[n++] = 'A';
	crypto_shorthash(out, in, n, v->rate_key);
	memcpy(&key, out, sizeof(key));
	if (sl <= SITE_NAME_MAX) {
		last.serial = v->serial;
		memcpy(last.net, net, 16);
		memcpy(last.site, site, sl + 1);
		last.key = key;
	}
	return key;
}

bool
rate_allow(struct visitors *v, const char *site, const unsigned char addr[16],
    const char *ua, long limit, uint64_t akey, long address_limit)
{
	unsigned char in[HASH_INPUT_MAX], out[crypto_shorthash_BYTES];
	struct rate_slot *vs = NULL, *as = NULL;
	uint64_t now = now_us(), vkey = 0, vtat = 0, atat = 0;

	if (limit > 0) {
		crypto_shorthash(out, in, hash_input(in, site, addr, ua),
		    v->rate_key);
		memcpy(&vkey, out, sizeof(vkey));
		if (!bucket_take(v->rate, vkey, limit, now, &vs, &vtat))
			return false;
	}
	if (address_limit > 0) {
		if (!bucket_take(v->rate_address, akey, address_limit, now,
		    &as, &atat))
			return false;
	}
	/* Only a view that both allow uses up an allowance. */
	if (vs != NULL)
		bucket_store(vs, vkey, vtat);
	if (as != NULL)
		bucket_store(as, akey, atat);
	return true;
}
