/*
 * Every request comes through routes_handle: the route table decides
 * what a method may do on a path, and everything else gets a JSON error.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tally/bots.h"
#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/log.h"
#include "tally/path.h"
#include "tally/referrer.h"
#include "tally/render.h"
#include "tally/store.h"

#include "config_ref.h"
#include "counter.h"
#include "daemon.h"
#include "http.h"
#include "metrics.h"
#include "routes.h"
#include "stats.h"
#include "visitor.h"

#include <event2/event.h>


static void route_hit(struct route_ctx *);
static void route_count_only(struct route_ctx *);
static void route_healthz(struct route_ctx *);

/* Every route takes GET, HEAD and OPTIONS (a CORS preflight); /hit also
 * takes POST. */
static const struct route {
	const char *path;
	bool	 post;
	void	(*fn)(struct route_ctx *);
	bool	 subtree;	/* also path + "/..." */
} routes[] = {
	{ "/hit",		true,	route_hit,		false },
	{ "/count",		false,	route_count_only,	false },
	{ "/counter.svg",	false,	route_counter_svg,	false },
	{ "/pixel.gif",		false,	route_pixel,		false },
	{ "/tally.js",		false,	route_tally_js,		false },
	{ "/favicon.ico",	false,	route_favicon,		false },
	{ "/healthz",		false,	route_healthz,		false },
	{ "/metrics",		false,	metrics_route,		false },
	{ "/chart.svg",		false,	route_chart_svg,	false },
	{ "/stats",		false,	route_stats,		true },
	{ "/",			false,	route_front_page,	false },
};

static const char *
route_allow(const struct route *rt)
{
	return rt->post ? "GET, HEAD, POST, OPTIONS" : "GET, HEAD, OPTIONS";
}

const char *
decline_reason_name(enum decline_reason r)
{
	switch (r) {
	case DECLINE_READONLY: return "readonly";
	case DECLINE_BOT: return "bot";
	case DECLINE_RATE: return "rate";
	case DECLINE_ORIGIN: return "origin";
	default: return NULL;
	}
}

/* Every header tallyd sends is its own, each bounded (an origin is
 * validated first): a set that does not fit is a bug to see at once,
 * not an answer to send without its CORS or cache headers. */
static void headers_full(const char *) TALLY_NORETURN;

static void
headers_full(const char *fmt)
{
	fatalx("%s: no room for header %.*s", __func__,
	    (int)strcspn(fmt, ":"), fmt);
}

void
route_add_header(struct route_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	size_t len;
	int n;

	/* Most headers are constant: no formatting for them. */
	if (strchr(fmt, '%') == NULL) {
		len = strlen(fmt);
		if (ctx->headers_len + len >= sizeof(ctx->headers))
			headers_full(fmt);
		memcpy(ctx->headers + ctx->headers_len, fmt, len + 1);
		ctx->headers_len += len;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(ctx->headers + ctx->headers_len,
	    sizeof(ctx->headers) - ctx->headers_len, fmt, ap);
	va_end(ap);
	if (n < 0 || ctx->headers_len + (size_t)n >= sizeof(ctx->headers))
		headers_full(fmt);
	ctx->headers_len += (size_t)n;
}

/* The origin a request comes from: Origin, else the Referer's; NULL
 * when neither gives one. Worked out once per request, when needed. */
static const char *
request_origin(struct route_ctx *ctx)
{
	const char *o;
	int rc = -1;

	if (ctx->origin_state == ORIGIN_UNKNOWN) {
		if ((o = http_header_get(ctx->r, "origin")) != NULL &&
		    strcmp(o, "null") != 0)
			rc = url_origin(o, ctx->origin, sizeof(ctx->origin));
		else if ((o = http_header_get(ctx->r, "referer")) != NULL)
			rc = url_origin(o, ctx->origin, sizeof(ctx->origin));
		ctx->origin_state = rc == 0 ? ORIGIN_KNOWN : ORIGIN_NONE;
	}
	return ctx->origin_state == ORIGIN_KNOWN ? ctx->origin : NULL;
}

static bool
site_allows_origin(const struct site_config *site, const char *origin)
{
	size_t i;

	for (i = 0; i < site->norigins; i++)
		if (strcmp(site->origins[i], origin) == 0)
			return true;
	return false;
}

static void
add_cors(struct route_ctx *ctx)
{
	const char *origin;

	route_add_header(ctx, "Vary: Origin\r\n");
	if (ctx->site == NULL || ctx->site->norigins == 0) {
		route_add_header(ctx, "Access-Control-Allow-Origin: *\r\n");
		return;
	}
	/* Only a listed origin is echoed; the origin is already validated
	 * and normalized, so it is safe in a header. */
	if (http_header_get(ctx->r, "origin") &&
	    (origin = request_origin(ctx)) != NULL &&
	    site_allows_origin(ctx->site, origin))
		route_add_header(ctx, "Access-Control-Allow-Origin: %s\r\n",
		    origin);
}

static int
parse_body(struct route_ctx *ctx, const char **err)
{
	struct http_request *r = ctx->r;
	const char *ct = http_header_get(r, "content-type");
	size_t len;

	if (r->body_len == 0)
		return 0;
	if (ct == NULL) {
		*err = "Content-Type required";
		return 415;
	}
	len = strcspn(ct, "; \t");
	if ((len == 16 && strncasecmp(ct, "application/json", len) == 0) ||
	    (len == 10 && strncasecmp(ct, "text/plain", len) == 0)) {
		if (!utf8_valid(r->body, r->body_len)) {
			*err = "body is not valid UTF-8";
			return 400;
		}
		return params_parse_json(&ctx->params, r->body, r->body_len,
		    err) == 0 ? 0 : 400;
	}
	if (len == 33 &&
	    strncasecmp(ct, "application/x-www-form-urlencoded", len) == 0)
		return params_parse_form(&ctx->params, r->body, r->body_len,
		    err) == 0 ? 0 : 400;
	*err = "unsupported Content-Type";
	return 415;
}

int
route_parse(struct route_ctx *ctx, bool with_body)
{
	struct http_request *r = ctx->r;
	const char *err = NULL;
	int status;

	params_init(&ctx->params);
	if (r->query && params_parse_form(&ctx->params, r->query,
	    strlen(r->query), &err) == -1) {
		http_respond_error(r, 400, err);
		return -1;
	}
	if (with_body && (status = parse_body(ctx, &err)) != 0) {
		http_respond_error(r, status, err);
		return -1;
	}
	return 0;
}

int
route_prepare(struct route_ctx *ctx, bool with_body)
{
	if (route_parse(ctx, with_body) == -1)
		return -1;
	return route_resolve(ctx);
}

int
route_resolve(struct route_ctx *ctx)
{
	struct http_request *r = ctx->r;
	const char *name, *src, *origin;
	enum path_error pe;

	if ((name = ctx->params.v[P_SITE]) != NULL && *name) {
		if (!site_name_valid(name)) {
			http_respond_error(r, 400, "invalid site id");
			return -1;
		}
		if ((ctx->site = config_site(ctx->cfg, name)) == NULL) {
			http_respond_error(r, 404, "unknown site");
			return -1;
		}
	} else {
		ctx->site = NULL;
		if ((origin = request_origin(ctx)) != NULL)
			ctx->site = config_site_by_origin(ctx->cfg, origin);
		if (ctx->site == NULL)
			ctx->site = config_site(ctx->cfg, DEFAULT_SITE);
		if (ctx->site == NULL) {
			http_respond_error(r, 404, "unknown site");
			return -1;
		}
	}

	if ((src = ctx->params.v[P_PATH]) != NULL && *src) {
		pe = path_normalize(src, strlen(src), ctx->path);
		if (pe != PATH_OK) {
			http_respond_error(r, 400, path_strerror(pe));
			return -1;
		}
	} else if ((src = http_header_get(r, "referer")) == NULL) {
		/* Not the referrer parameter: that names the page the
		 * visitor came from, not the one counted. */
		strcpy(ctx->path, "/");
	} else if (path_normalize(src, strlen(src), ctx->path) != PATH_OK) {
		/* A broken Referer is the browser's doing, not the page's. */
		strcpy(ctx->path, "/");
	}
	ctx->day = day_today();
	add_cors(ctx);
	return 0;
}

/*
 * The name a counted view's referrer is kept under (referrer.h), or NULL:
 * none given, not an http(s) URL, not kept, or a page of the site itself:
 * a host of one of the site's origins, or of the page that sent the hit
 * (its Origin, else its Referer), which is all there is to go by when the
 * site takes any origin.
 */
static const char *
hit_referrer(struct route_ctx *ctx, char *out)
{
	const char *src = ctx->params.v[P_REFERRER], *own;
	struct origin ref, o;
	size_t i;

	if (src == NULL || *src == '\0' || origin_parse(src, &ref) != NULL)
		return NULL;
	for (i = 0; i < ctx->site->norigins; i++)
		if (origin_parse(ctx->site->origins[i], &o) == NULL &&
		    referrer_same_site(ref.host, o.host))
			return NULL;
	if ((own = request_origin(ctx)) != NULL &&
	    origin_parse(own, &o) == NULL &&
	    referrer_same_site(ref.host, o.host))
		return NULL;
	return referrer_name(&ref, out);
}

/* The client as the rest of tally sees it: behind a trusted proxy, the
 * address it forwards for, so that a public proxy does not make every
 * visitor an admin; one the proxy could not name is never admin. */
bool
route_is_admin(const struct route_ctx *ctx)
{
	struct sockaddr_in6 sin6;

	if (!ctx->client.known)
		return false;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	memcpy(&sin6.sin6_addr, ctx->client.addr, 16);
	return cidr_list_match(ctx->cfg->admin_allow, ctx->cfg->nadmin_allow,
	    (struct sockaddr *)&sin6);
}

static bool
header_is_one(const struct http_request *r, const char *name)
{
	const char *v = http_header_get(r, name);

	return v != NULL && strcmp(v, "1") == 0;
}

static enum decline_reason
should_count(struct route_ctx *ctx, const unsigned char addr[16],
    uint64_t akey)
{
	struct http_request *r = ctx->r;
	const char *purpose, *ua = http_header_get(r, "user-agent");
	const char *origin;

	if (r->verb == HTTP_VERB_HEAD)
		return DECLINE_READONLY;
	if (ctx->site->norigins > 0 &&
	    ((origin = request_origin(ctx)) == NULL ||
	    !site_allows_origin(ctx->site, origin)))
		return DECLINE_ORIGIN;
	if (((purpose = http_header_get(r, "sec-purpose")) != NULL ||
	    (purpose = http_header_get(r, "purpose")) != NULL ||
	    (purpose = http_header_get(r, "x-purpose")) != NULL) &&
	    strcasestr(purpose, "prefetch") != NULL)
		return DECLINE_BOT;
	if (botlist_match(ctx->w->ref->bots, ua))
		return DECLINE_BOT;
	/* Last, so that declined requests use up no allowance. */
	if (!rate_allow(ctx->d->visitors, ctx->site->name, addr, ua,
	    ctx->cfg->rate_limit, akey, ctx->cfg->rate_limit_address))
		return DECLINE_RATE;
	return DECLINE_NONE;
}

/*
 * A strict-mode hit waiting for its commit. Its answer is made when it
 * is counted and kept by the connection (http_hold), which reads no
 * further request meanwhile; this is only what the commit's end needs.
 * Each worker reuses its own.
 */
struct deferred {
	struct counter_waiter waiter;
	struct deferred	*next;		/* finished, or spare */
	struct strict_answers *sa;	/* its worker's */
	struct http_request *r;
	int		 status;
	char		 site[SITE_NAME_MAX + 1];	/* for the metrics */
};

/*
 * The strict hits of one worker whose commit has ended, oldest first.
 * The committer appends a whole commit's worth and wakes the worker with
 * one event, which answers them all: no event is made per hit.
 */
struct strict_answers {
	pthread_mutex_t	 lock;
	struct deferred	*head;
	struct deferred	**tail;
	struct event	*ev;
	struct deferred	*spare;		/* the worker's own: no lock */
};

static void commit_done(struct counter_waiter *, int);

static struct deferred *
deferred_get(struct strict_answers *sa)
{
	struct deferred *def;

	if ((def = sa->spare) != NULL)
		sa->spare = def->next;
	else if ((def = malloc(sizeof(*def))) == NULL)
		fatal("strict hit");
	def->waiter.next = NULL;
	def->waiter.done = commit_done;
	def->sa = sa;
	def->next = NULL;
	def->status = STORE_OK;
	return def;
}

static void
deferred_put(struct strict_answers *sa, struct deferred *def)
{
	def->next = sa->spare;
	sa->spare = def;
}

/* Runs on the worker: answers every finished hit, in order. */
static void
answer_finished(evutil_socket_t fd, short what, void *arg)
{
	struct strict_answers *sa = arg;
	struct deferred *def, *next;

	pthread_mutex_lock(&sa->lock);
	def = sa->head;
	sa->head = NULL;
	sa->tail = &sa->head;
	pthread_mutex_unlock(&sa->lock);
	for (; def; def = next) {
		next = def->next;
		/* The view counts once it is on disk, as the answer says. */
		if (def->status == STORE_OK)
			metrics_count_view(def->site);
		http_release(def->r, def->status == STORE_OK,
		    "store unavailable");
		deferred_put(sa, def);
	}
}

/* Runs on the committer thread: the answer is sent on the worker's. */
static void
commit_done(struct counter_waiter *w, int status)
{
	struct deferred *def = (struct deferred *)w;
	struct strict_answers *sa = def->sa;
	bool wake;

	def->status = status;
	def->next = NULL;
	pthread_mutex_lock(&sa->lock);
	wake = sa->head == NULL;
	*sa->tail = def;
	sa->tail = &def->next;
	pthread_mutex_unlock(&sa->lock);
	if (wake)
		event_active(sa->ev, EV_TIMEOUT, 0);
}

void
routes_worker_init(struct worker *w)
{
	struct strict_answers *sa;

	if ((sa = calloc(1, sizeof(*sa))) == NULL)
		fatal("strict answers");
	pthread_mutex_init(&sa->lock, NULL);
	sa->tail = &sa->head;
	if ((sa->ev = event_new(w->base, -1, 0, answer_finished, sa)) ==
	    NULL)
		fatalx("strict answers: out of memory");
	w->strict = sa;
	stats_worker_init(w);
}

static void
deferred_free_list(struct deferred *def)
{
	struct deferred *next;

	for (; def; def = next) {
		next = def->next;
		free(def);
	}
}

/* After the loop: hits left unanswered have no connection any more. */
void
routes_worker_free(struct worker *w)
{
	struct strict_answers *sa = w->strict;

	stats_worker_free(w);
	if (sa == NULL)
		return;
	deferred_free_list(sa->head);
	deferred_free_list(sa->spare);
	event_free(sa->ev);
	pthread_mutex_destroy(&sa->lock);
	free(sa);
	w->strict = NULL;
}

int
route_count(struct route_ctx *ctx, bool want, struct page_counts *out,
    bool *counted, const char **reason)
{
	struct daemon *d = ctx->d;
	const struct config *cfg = ctx->cfg;
	enum decline_reason why = DECLINE_READONLY;
	struct deferred *def = NULL;
	const char *path = ctx->path;
	char failure[256], referrer[REFERRER_NAME_MAX + 1];
	unsigned char addr[16];
	uint64_t akey = 0;
	struct hit hit, *hp = NULL;
	int rc;

	*counted = false;
	*reason = NULL;
	if (want) {
		memcpy(addr, ctx->client.addr, sizeof(addr));
		akey = address_key(d->visitors, ctx->site->name, addr);
		why = should_count(ctx, addr, akey);
	}
	if (why == DECLINE_NONE) {
		/* A store that cannot commit must not take hits it may lose. */
		if (counter_refuses(d->counter, cfg->durability ==
		    DURABILITY_STRICT, failure, sizeof(failure))) {
			http_respond_error(ctx->r, 503, failure);
			return -1;
		}
		memset(&hit, 0, sizeof(hit));
		hit.site = ctx->site->name;
		hit.path = ctx->path;
		hit.day = ctx->day;
		hit.max_pages = config_site_max_pages(cfg, ctx->site);
		/* Do Not Track: the view counts, the visitor is not made. */
		hit.has_visitor = cfg->dnt == DNT_IGNORE ||
		    !(header_is_one(ctx->r, "dnt") ||
		    header_is_one(ctx->r, "sec-gpc"));
		if (hit.has_visitor &&
		    visitor_id(d->visitors, ctx->day, ctx->site->name, addr,
		    http_header_get(ctx->r, "user-agent"), &hit.visitor) !=
		    STORE_OK) {
			http_respond_error(ctx->r, 503, "store unavailable");
			return -1;
		}
		hit.new_visitors_max = cfg->new_visitors_per_address;
		hit.address = akey;
		hit.referrer = hit_referrer(ctx, referrer);
		hit.max_referrers = (uint32_t)cfg->max_referrers;
		hp = &hit;
		if (cfg->durability == DURABILITY_STRICT) {
			def = deferred_get(ctx->w->strict);
			def->r = ctx->r;
			snprintf(def->site, sizeof(def->site), "%s",
			    ctx->site->name);
		}
	} else if (why != DECLINE_READONLY) {
		__atomic_fetch_add(&d->declined[why], 1, __ATOMIC_RELAXED);
		/* Why a page shows numbers but counts nothing; never the
		 * client's address or User-Agent. */
		log_debug("site %s: hit on %s not counted, reason: %s",
		    ctx->site->name, ctx->path, decline_reason_name(why));
	}
	*reason = decline_reason_name(why);
	if (hp != NULL)
		rc = counter_add(d->counter, ctx->w->view, hp,
		    def ? &def->waiter : NULL, &path, out);
	else
		rc = counter_read(d->counter, ctx->w->view, ctx->site->name,
		    ctx->path, ctx->day, out);
	if (rc != STORE_OK) {
		if (def)
			deferred_put(ctx->w->strict, def);
		http_respond_error(ctx->r, 503, "store unavailable");
		return -1;
	}
	if (path != ctx->path)
		snprintf(ctx->path, sizeof(ctx->path), "%s", path);
	*counted = hp != NULL;
	if (def) {
		/* The answer is made now, from the counts read as the hit
		 * was counted, as a batch answer is, and sent once the hit
		 * is on disk: the commit's end runs answer_finished on this
		 * thread, so only after the route has made it. */
		http_hold(ctx->r);
	} else if (*counted)
		metrics_count_view(ctx->site->name);
	return 0;
}

/* One buffer per thread, reused: no allocation per answer. */
static __thread struct buf answer;

void
routes_thread_exit(void)
{
	buf_free(&answer);
}

static void
respond_counts(struct route_ctx *ctx, bool want)
{
	struct buf *b = &answer;
	struct page_counts pc;
	const char *reason;
	bool counted;

	if (route_count(ctx, want, &pc, &counted, &reason) == -1)
		return;
	buf_reset(b);
	render_counts_json(b, ctx->site->name, ctx->path, ctx->day, &pc,
	    counted, reason);
	http_respond(ctx->r, 200, "application/json", ctx->headers, b->data,
	    b->len);
}

static void
route_hit(struct route_ctx *ctx)
{
	route_add_header(ctx, "Cache-Control: no-store\r\n");
	if (route_prepare(ctx, ctx->r->verb == HTTP_VERB_POST) == -1)
		return;
	respond_counts(ctx, true);
}

static void
route_count_only(struct route_ctx *ctx)
{
	route_add_header(ctx, "Cache-Control: max-age=%ld\r\n",
	    ctx->cfg->count_max_age);
	if (route_prepare(ctx, false) == -1)
		return;
	respond_counts(ctx, false);
}

static void
route_healthz(struct route_ctx *ctx)
{
	struct daemon *d = ctx->d;
	char failure[256];

	route_add_header(ctx, "Cache-Control: no-store\r\n");
	/* A failed probe is a failure that refuses hits; a shared store
	 * that cannot be reached refuses them only when this node cannot
	 * keep them, so that a load balancer does not drain every node at
	 * once when the database goes. */
	(void)counter_probe(d->counter);
	if (counter_refuses(d->counter, ctx->cfg->durability ==
	    DURABILITY_STRICT, failure, sizeof(failure))) {
		http_respond_error(ctx->r, 503, failure);
		return;
	}
	http_respond(ctx->r, 200, "text/plain; charset=utf-8", ctx->headers,
	    "ok\n", 3);
}

static void
route_preflight(struct route_ctx *ctx, const struct route *rt)
{
	/* The answer only says what the real request may do, and never
	 * with credentials, so "*" is enough; the real request is checked
	 * against the site's origins. */
	route_add_header(ctx, "Vary: Origin\r\n"
	    "Access-Control-Allow-Origin: *\r\n");
	route_add_header(ctx,
	    "Access-Control-Allow-Methods: %s\r\n"
	    "Access-Control-Allow-Headers: Content-Type\r\n"
	    "Access-Control-Max-Age: 86400\r\n", route_allow(rt));
	http_respond(ctx->r, 204, NULL, ctx->headers, NULL, 0);
}

/* Whether path is below base: "/stats/blog" is below "/stats". */
static bool
route_under(const char *path, const char *base)
{
	size_t len = strlen(base);

	return strncmp(path, base, len) == 0 && path[len] == '/';
}

void
routes_handle(struct http_request *r)
{
	struct route_ctx ctx;
	const struct route *rt = NULL;
	const char *err;
	size_t i;

	ctx.w = r->server_arg;
	ctx.d = ctx.w->d;
	ctx.cfg = ctx.w->ref->cfg;
	ctx.origin_state = ORIGIN_UNKNOWN;
	ctx.r = r;
	ctx.site = NULL;
	ctx.headers[0] = '\0';
	ctx.headers_len = 0;
	ctx.path[0] = '\0';

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(r->path, routes[i].path) == 0 ||
		    (routes[i].subtree && route_under(r->path,
		    routes[i].path))) {
			rt = &routes[i];
			break;
		}
	}
	if (rt == NULL) {
		http_respond_error(r, 404, "no such route");
		return;
	}
	if (r->verb == HTTP_VERB_OTHER ||
	    (r->verb == HTTP_VERB_POST && !rt->post)) {
		route_add_header(&ctx, "Allow: %s\r\n", route_allow(rt));
		http_respond_error_headers(r, 405, "method not allowed",
		    ctx.headers);
		return;
	}
	/* A forged chain too long to walk is refused rather than cut. */
	if (client_identify(ctx.cfg, r, &ctx.client, &err) == -1) {
		http_respond_error(r, 400, err);
		return;
	}
	if (r->verb == HTTP_VERB_OPTIONS) {
		route_preflight(&ctx, rt);
		return;
	}
	rt->fn(&ctx);
}
