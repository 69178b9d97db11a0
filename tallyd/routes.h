/* Shared steps of tallyd's routes: parameters, site, path, counting. */
#ifndef TALLYD_ROUTES_H
#define TALLYD_ROUTES_H

#include <stdbool.h>

#include "tally/path.h"
#include "visitor.h"

#include "counter.h"
#include "daemon.h"
#include "http.h"
#include "params.h"

struct route_ctx {
	struct daemon	*d;
	struct worker	*w;
	const struct config *cfg;	/* the configuration of this request */
	struct http_request *r;
	struct client	 client;	/* who is asking */
	struct params	 params;
	const struct site_config *site;
	char		 path[PATH_MAX_LEN + 1];
	int		 day;
	enum { ORIGIN_UNKNOWN, ORIGIN_NONE, ORIGIN_KNOWN } origin_state;
	char		 origin[300];	/* normalized, when ORIGIN_KNOWN */
	char		 headers[1024];	/* CORS and cache headers to send */
	size_t		 headers_len;
};

/* The one entry point of every request. */
void routes_handle(struct http_request *);
/* Frees what routes keep per thread. */
void routes_thread_exit(void);
/* What a worker needs to answer strict hits once they are on disk: made
 * before its loop runs, freed after it has stopped. */
void routes_worker_init(struct worker *);
void routes_worker_free(struct worker *);

/* Parses parameters (query, and a POST body when with_body) and finds
 * the site and path. On bad input it answers and returns -1. */
int route_prepare(struct route_ctx *, bool with_body);
/* The two steps of route_prepare: the parameters, then site and path
 * from them. */
int route_parse(struct route_ctx *, bool with_body);
int route_resolve(struct route_ctx *);
/* Counts the view when want is true and no filter declines it, then
 * reads the counts. On a store failure it answers 503 and returns -1.
 * With durability = strict the route's answer, made as usual, is kept
 * until the hit is on disk (or answered 503 if its commit fails). */
int route_count(struct route_ctx *, bool want, struct page_counts *,
    bool *counted, const char **reason);
/* Whether the client (behind trusted proxies) is in admin_allow. */
bool route_is_admin(const struct route_ctx *);
void route_add_header(struct route_ctx *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Headers of what a page on any origin may load as an image or script,
 * also under Cross-Origin-Embedder-Policy; and of every SVG answer. */
#define ROUTE_EMBEDDABLE \
	"Cross-Origin-Resource-Policy: cross-origin\r\n" \
	"X-Content-Type-Options: nosniff\r\n"
#define ROUTE_SVG_CSP \
	"Content-Security-Policy: default-src 'none'; " \
	"style-src 'unsafe-inline'\r\n"

/* Routes of what a web page embeds: the snippet (snippet.c). */
void route_counter_svg(struct route_ctx *);
void route_pixel(struct route_ctx *);
void route_tally_js(struct route_ctx *);
void route_favicon(struct route_ctx *);
void route_front_page(struct route_ctx *);

#endif
