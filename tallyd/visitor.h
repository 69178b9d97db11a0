/*
 * Who is visiting, without keeping who they are: the client's address
 * (behind trusted proxies), the day's visitor id (a keyed hash under a
 * salt that rotates at midnight), and the per-visitor rate limit.
 */
#ifndef TALLYD_VISITOR_H
#define TALLYD_VISITOR_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tally/config.h"
#include "tally/store.h"

#include "http.h"

/* Slots of each rate-limit table (one per visitor, one per address):
 * 16 bytes each. A client whose slot is taken over by another is
 * forgotten, which can only let views through, never refuse them
 * wrongly. */
#define RATE_SLOTS	32768

struct visitors;

/* Hops of a forwarding header, at most; a longer chain is refused, as
 * cutting it would drop the hops tallyd's own proxies wrote. */
#define FORWARDED_MAX_HOPS	128

/* The client of a request: the socket peer, or, when the peer is a
 * trusted proxy, the rightmost address of the forwarding header (all its
 * lines) that is not itself a trusted proxy. */
struct client {
	unsigned char addr[16];	/* IPv4 mapped into IPv6 */
	/* false when the hop where the client should be names no address
	 * (for=unknown, _hidden, garbage): addr is then the one address
	 * all such clients share, 100:: (RFC 6666), and never admin. */
	bool	 known;
	/* From a trusted proxy: how the client addressed tallyd, for
	 * links to itself; "" when not said. */
	char	 host[256];	/* host[:port] */
	char	 proto[8];	/* "http" or "https" */
};

/* Fills in the client. -1 with *err when the forwarding header names
 * more than FORWARDED_MAX_HOPS hops (a 400). */
int client_identify(const struct config *, const struct http_request *,
    struct client *, const char **err);

/* Whether two secrets (NUL-terminated, at most TOKEN_MAX bytes) are
 * equal, in a time that tells nothing of where they differ. */
bool token_equal(const char *a, const char *b);

struct visitors *visitors_new(struct store *);
void visitors_free(struct visitors *);

/* The visitor id of this client on site for day. The day's salt is made
 * (and salts older than yesterday erased) on first use. */
int visitor_id(struct visitors *, int day, const char *site,
    const unsigned char addr[16], const char *user_agent, uint64_t *id);

/* Makes day's salt and erases those older than yesterday now, rather
 * than at the first hit of the day. */
int visitors_rotate(struct visitors *, int day);
/* Whether day's salt is in memory: visitor_id needs no store for it. */
bool visitors_knows(struct visitors *, int day);

/* Takes one view from the visitor's allowance (limit a minute) and from
 * that of the address whose address_key() is akey (address_limit a
 * minute); false, taking nothing, when either is used up. Allowances
 * refill evenly over the minute, so no burst fits across a minute's
 * edge. A limit of 0 allows everything. */
bool rate_allow(struct visitors *, const char *site, const unsigned char addr[16],
    const char *user_agent, long limit, uint64_t akey, long address_limit);

/* A key for the client's address on site, the same for every address
 * of an IPv6 /64; meaningful to this process only. */
uint64_t address_key(struct visitors *, const char *site,
    const unsigned char addr[16]);

#endif
