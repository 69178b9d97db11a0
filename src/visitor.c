/*
 * Visitor ids are SipHash-2-4 (libsodium's crypto_shorthash) of site,
 * address and User-Agent under the day's random salt. The salts live in
 * the store so that a restart does not count today's visitors again;
 * only today's and yesterday's exist, and with them the ids can no
 * longer be recomputed once a salt is gone.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <sodium.h>

#include "tally/log.h"
#include "tally/net.h"
#include "tally/visitor.h"

#define SALT_BYTES	crypto_shorthash_KEYBYTES
#define HASH_INPUT_MAX	(SITE_NAME_MAX + 1 + 16 + 1 + HTTP_MAX_HEADER_BYTES)

struct salt_rec {
	int32_t	 day;
	unsigned char salt[SALT_BYTES];
};

struct rate_slot {
	uint64_t key;
	uint32_t minute;
	uint32_t count;
};

struct visitors {
	struct store	*store;
	struct store_view *view;
	pthread_mutex_t	 salt_lock;
	struct salt_rec	 salts[2];	/* today's and yesterday's */
	unsigned char	 rate_key[crypto_shorthash_KEYBYTES];
	struct rate_slot *rate;
};

/* Parses one address of a forwarding header: "1.2.3.4", "1.2.3.4:80",
 * "[2001:db8::1]:80", "2001:db8::1", quoted or not. */
static bool
parse_forwarded_addr(const char *s, size_t len, unsigned char addr[16])
{
	char tmp[64], *p = tmp, *e;
	struct in_addr a4;

	while (len && (*s == ' ' || *s == '\t' || *s == '"')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '"'))
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (*p == '[') {
		if ((e = strchr(p, ']')) == NULL)
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

/* Splits a forwarding header into its addresses, left to right: the
 * comma-separated elements, or for Forwarded their for= parameters. */
static size_t
header_addresses(const char *h, bool forwarded, const char **start,
    size_t *len, size_t max)
{
	const char *p = h, *e, *f, *v;
	size_t n = 0;

	while (*p && n < max) {
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		if (!forwarded) {
			start[n] = p;
			len[n++] = (size_t)(e - p);
		} else {
			for (f = p; f + 4 <= e; f++) {
				if (strncasecmp(f, "for=", 4) != 0 ||
				    (f != p && f[-1] != ';' && f[-1] != ' '))
					continue;
				v = f + 4;
				for (f = v; f < e && *f != ';'; f++)
					;
				start[n] = v;
				len[n++] = (size_t)(f - v);
				break;
			}
		}
		p = *e ? e + 1 : e;
	}
	return n;
}

void
client_address(const struct config *cfg, const struct http_request *r,
    unsigned char addr[16])
{
	const struct sockaddr *sa = r->peer;
	const char *h, *el[64];
	unsigned char cand[16];
	char lower[64];
	bool forwarded, list;
	size_t i, n, len[64];

	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return;
	}
	/* Only a trusted proxy's word is taken. */
	if (cfg->ntrusted_proxies == 0 || !addr_trusted(cfg, addr))
		return;
	if (cfg->client_ip_header == NULL)
		return;
	for (i = 0; cfg->client_ip_header[i] && i < sizeof(lower) - 1; i++) {
		char ch = cfg->client_ip_header[i];
		lower[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
	}
	lower[i] = '\0';
	if ((h = http_header_get(r, lower)) == NULL)
		return;
	forwarded = strcasecmp(cfg->client_ip_header, "Forwarded") == 0;
	list = forwarded || strcasecmp(cfg->client_ip_header,
	    "X-Forwarded-For") == 0;
	if (!list) {
		if (parse_forwarded_addr(h, strlen(h), cand))
			memcpy(addr, cand, 16);
		return;
	}
	/* Right to left: each trusted hop vouches for the one before it. */
	n = header_addresses(h, forwarded, el, len, 64);
	while (n-- > 0) {
		if (!parse_forwarded_addr(el[n], len[n], cand))
			return;	/* garbage: keep the last address vouched for */
		memcpy(addr, cand, 16);
		if (!addr_trusted(cfg, cand))
			return;
	}
}

struct visitors *
visitors_new(struct store *store)
{
	struct visitors *v;

	if (sodium_init() < 0)
		return NULL;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->store = store;
	pthread_mutex_init(&v->salt_lock, NULL);
	v->salts[0].day = v->salts[1].day = -1;
	v->view = store_view_new(store);
	v->rate = calloc(RATE_SLOTS, sizeof(*v->rate));
	if (v->view == NULL || v->rate == NULL) {
		visitors_free(v);
		return NULL;
	}
	/* The rate table's key lives in memory only. */
	crypto_shorthash_keygen(v->rate_key);
	return v;
}

void
visitors_free(struct visitors *v)
{
	if (v == NULL)
		return;
	store_view_free(v->view);
	free(v->rate);
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

/* Loads the salts of day and day - 1, making day's when it is new and
 * dropping every older one. */
static int
load_salts(struct visitors *v, int day)
{
	struct salt_rec stored[2], keep[2];
	struct salts_write sw;
	size_t len = sizeof(stored), n, i, k = 0;
	int rc;

	memset(stored, 0, sizeof(stored));
	if ((rc = store_view_begin(v->view)) != STORE_OK)
		return rc;
	rc = store_meta_get(v->view, STORE_META_SALTS, stored, &len);
	store_view_end(v->view);
	if (rc == STORE_NOTFOUND)
		len = 0;
	else if (rc != STORE_OK)
		return rc;
	n = len / sizeof(stored[0]);
	for (i = 0; i < n; i++)
		if (stored[i].day == day || stored[i].day == day - 1)
			keep[k++] = stored[i];
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
	}
	memset(v->salts, 0, sizeof(v->salts));
	v->salts[0].day = v->salts[1].day = -1;
	for (i = 0; i < k; i++)
		v->salts[i] = keep[i];
	sodium_memzero(stored, sizeof(stored));
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

int
visitor_id(struct visitors *v, int day, const char *site,
    const unsigned char addr[16], const char *ua, uint64_t *id)
{
	unsigned char in[HASH_INPUT_MAX], out[crypto_shorthash_BYTES];
	unsigned char salt[SALT_BYTES];
	bool found = false;
	size_t n;
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
	pthread_mutex_unlock(&v->salt_lock);
	if (rc != STORE_OK)
		return rc;
	if (!found)
		return STORE_ERROR;
	n = hash_input(in, site, addr, ua);
	crypto_shorthash(out, in, n, salt);
	sodium_memzero(salt, sizeof(salt));
	memcpy(id, out, sizeof(*id));
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
rate_allow(struct visitors *v, const char *site, const unsigned char addr[16],
    const char *ua, long limit, time_t now)
{
	unsigned char in[HASH_INPUT_MAX], out[crypto_shorthash_BYTES];
	struct rate_slot *s;
	uint32_t minute = (uint32_t)(now / 60);
	uint64_t key;

	if (limit <= 0)
		return true;
	crypto_shorthash(out, in, hash_input(in, site, addr, ua), v->rate_key);
	memcpy(&key, out, sizeof(key));
	s = &v->rate[key % RATE_SLOTS];
	/* Threads race on a slot only when two requests of one visitor
	 * arrive at once; the worst outcome is a view more or less. */
	if (__atomic_load_n(&s->key, __ATOMIC_RELAXED) != key ||
	    __atomic_load_n(&s->minute, __ATOMIC_RELAXED) != minute) {
		__atomic_store_n(&s->key, key, __ATOMIC_RELAXED);
		__atomic_store_n(&s->minute, minute, __ATOMIC_RELAXED);
		__atomic_store_n(&s->count, 0, __ATOMIC_RELAXED);
	}
	return __atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED) <
	    (uint64_t)limit;
}
