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

/* Slots of the rate-limit table: 16 bytes each. A visitor whose slot is
 * taken over by another is forgotten, which can only let views through,
 * never refuse them wrongly. */
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

/* Takes one view from the client's allowance for this minute; false
 * when none is left. limit 0 allows everything. */
bool rate_allow(struct visitors *, const char *site, const unsigned char addr[16],
    const char *user_agent, long limit, time_t now);

#endif
