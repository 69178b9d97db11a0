/*
 * Who is visiting, without keeping who they are: the client's address
 * (behind trusted proxies), the day's visitor id (a keyed hash under a
 * salt that rotates at midnight), and the per-visitor rate limit.
 */
#ifndef TALLY_VISITOR_H
#define TALLY_VISITOR_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tally/config.h"
#include "tally/http.h"
#include "tally/store.h"

/* Slots of each rate-limit table (one per visitor, one per address):
 * 16 bytes each. A client whose slot is taken over by another is
 * forgotten, which can only let views through, never refuse them
 * wrongly. */
#define RATE_SLOTS	32768

struct visitors;

/* The client: the socket peer, or, when the peer is a trusted proxy, the
 * rightmost address of the forwarding header that is not itself a
 * trusted proxy. Written as 16 bytes (IPv4 mapped into IPv6). */
void client_address(const struct config *, const struct http_request *,
    unsigned char addr[16]);

struct visitors *visitors_new(struct store *);
void visitors_free(struct visitors *);

/* The visitor id of this client on site for day. The day's salt is made
 * (and salts older than yesterday erased) on first use. */
int visitor_id(struct visitors *, int day, const char *site,
    const unsigned char addr[16], const char *user_agent, uint64_t *id);

/* Makes day's salt and erases those older than yesterday now, rather
 * than at the first hit of the day. */
int visitors_rotate(struct visitors *, int day);

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
