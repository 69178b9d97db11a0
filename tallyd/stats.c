/*
 * The routes of the stats page, /stats and /stats/SITE, and of the
 * sparkline, /chart.svg.
 *
 * Who may see a site's page: clients in admin_allow (judged behind
 * trusted proxies, as for /metrics), anyone with the site's share token,
 * anyone when the site is public. Everyone else gets the very answer of
 * a route that does not exist, so that nobody learns which sites there
 * are, or that a token was nearly right.
 *
 * A page reads thousands of rows where a hit reads a few. So that
 * loading the page never holds up counting, the worker that takes the
 * request only decides who asks and for what; one render thread, with a
 * store view of its own, reads and writes the page, and hands the answer
 * back to the worker's loop, which alone writes to the connection (as
 * strict hits are answered, routes.c).
 *
 * The render thread runs under SCHED_IDLE: it gets a core only when no
 * thread of normal priority wants it. A nice value is not enough: at
 * nice 10 the scheduler still gives the page about a tenth of the core a
 * worker is saturating, and counting slows by as much. Idle, a page made
 * while hits keep a core busy waits for the gaps between them (a page
 * takes a few milliseconds of CPU), and counting loses nothing; on a
 * machine with a core to spare it makes no difference at all.
 *
 * A page made is kept for the same request while the store has
 * committed nothing since (a second at most): it is the very answer the
 * render thread would make again. Its body is shared, never copied:
 * each worker writes it from the one buffer.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/log.h"
#include "tally/path.h"
#include "tally/store.h"

#include "config_ref.h"
#include "http.h"
#include "params.h"
#include "routes.h"
#include "stats.h"
#include "statspage.h"
#include "visitor.h"

#define QUEUE_MAX	64	/* pages waiting to be made; then 503 */
#define KEPT_MAX	8	/* answers kept for the same request */
#define KEPT_SECONDS	1.0	/* the oldest one given again */
#define RENDER_NICE	19	/* should SCHED_IDLE be refused */
#define CHART_DAYS_MAX	366

/* Every answer of the page: it loads nothing from elsewhere and runs no
 * script; it is nobody else's to frame, and its links (which may carry a
 * share token) send no Referer. */
#define PAGE_HEADERS \
	"Cache-Control: private, no-cache\r\n" \
	"Vary: Accept\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"X-Frame-Options: DENY\r\n" \
	"Content-Security-Policy: default-src 'none'; style-src " \
	"'unsafe-inline'; img-src 'self'; form-action 'self'; " \
	"base-uri 'none'; frame-ancestors 'none'\r\n"

/* A page made, shared by the jobs that answer with it; the last one
 * frees it. */
struct stats_body {
	struct buf	 b;
	int		 users;
};

struct stats_job {
	struct stats_job *next;
	struct worker	*w;		/* whose loop answers */
	struct http_request *r;
	struct config_ref *ref;		/* the configuration it began with */
	struct stats_query q;
	bool		 fresh;		/* the client asked for no kept page */
	int		 status;
	struct stats_body *body;
	char		 headers[sizeof(((struct route_ctx *)0)->headers)];
};

/* An answer kept for the same request of the same configuration, while
 * the store's version is the one it was read at. Only the render
 * thread uses them. */
struct kept {
	struct stats_query q;
	struct config_ref *ref;
	uint64_t	 version;
	double		 made;		/* monotonic seconds */
	struct stats_body *body;
};

struct stats_renderer {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	struct stats_job *head, **tail;
	size_t		 queued;
	bool		 stopping;
	struct store	*store;
};

/* A worker's finished pages, oldest first: the render thread appends
 * and wakes the worker with one event. */
struct stats_answers {
	pthread_mutex_t	 lock;
	struct stats_job *head, **tail;
	struct event	*ev;
};

static struct stats_renderer *renderer;
static struct kept kept[KEPT_MAX];

static struct stats_body *
body_hold(struct stats_body *b)
{
	__atomic_fetch_add(&b->users, 1, __ATOMIC_RELAXED);
	return b;
}

static void
body_release(struct stats_body *b)
{
	if (b == NULL || __atomic_sub_fetch(&b->users, 1, __ATOMIC_ACQ_REL) >
	    0)
		return;
	buf_free(&b->b);
	free(b);
}

static void
job_free(struct stats_job *job)
{
	config_ref_release(job->ref);
	body_release(job->body);
	free(job);
}

/* Runs on the worker: answers every finished page, in order. */
static void
answer_pages(evutil_socket_t fd, short what, void *arg)
{
	struct stats_answers *sa = arg;
	struct stats_job *job, *next;

	pthread_mutex_lock(&sa->lock);
	job = sa->head;
	sa->head = NULL;
	sa->tail = &sa->head;
	pthread_mutex_unlock(&sa->lock);
	for (; job; job = next) {
		next = job->next;
		if (job->status == 200)
			http_respond(job->r, 200, job->q.json ?
			    "application/json" : "text/html; charset=utf-8",
			    job->headers, job->body->b.data, job->body->b.len);
		else
			http_respond_error(job->r, job->status,
			    job->status == 503 ? "store unavailable" :
			    "stats page unavailable");
		job_free(job);
	}
}

/* On the render thread: back to the worker that took the request. */
static void
post_answer(struct stats_job *job)
{
	struct stats_answers *sa = job->w->stats;
	bool wake;

	job->next = NULL;
	pthread_mutex_lock(&sa->lock);
	wake = sa->head == NULL;
	*sa->tail = job;
	sa->tail = &job->next;
	pthread_mutex_unlock(&sa->lock);
	if (wake)
		event_active(sa->ev, EV_TIMEOUT, 0);
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
same_query(const struct stats_query *a, const struct stats_query *b)
{
	return strcmp(a->site, b->site) == 0 && strcmp(a->path, b->path) ==
	    0 && strcmp(a->prefix, b->prefix) == 0 && strcmp(a->share,
	    b->share) == 0 && a->period == b->period && a->from == b->from &&
	    a->to == b->to && a->today == b->today && a->page == b->page &&
	    a->json == b->json && a->admin == b->admin;
}

static void
kept_clear(struct kept *k)
{
	if (k->ref != NULL)
		config_ref_release(k->ref);
	body_release(k->body);
	memset(k, 0, sizeof(*k));
}

/* The answer kept for job's request, made at version, or NULL. */
static struct kept *
kept_find(const struct stats_job *job, uint64_t version, double now)
{
	int i;

	for (i = 0; i < KEPT_MAX; i++)
		if (kept[i].body != NULL && kept[i].ref == job->ref &&
		    kept[i].version == version &&
		    now - kept[i].made < KEPT_SECONDS &&
		    same_query(&kept[i].q, &job->q))
			return &kept[i];
	return NULL;
}

/* Keeps job's answer in place of the one of the same request, else of
 * the oldest. */
static void
kept_put(const struct stats_job *job, uint64_t version, double made)
{
	struct kept *k = &kept[0];
	int i;

	for (i = 0; i < KEPT_MAX; i++) {
		/* Those of a configuration since replaced go. */
		if (kept[i].ref != NULL && kept[i].ref != job->ref)
			kept_clear(&kept[i]);
		if (kept[i].body != NULL && same_query(&kept[i].q, &job->q)) {
			k = &kept[i];
			break;
		}
		if (kept[i].made < k->made)
			k = &kept[i];
	}
	kept_clear(k);
	k->q = job->q;
	k->ref = config_ref_hold(job->ref);
	k->version = version;
	k->made = made;
	k->body = body_hold(job->body);
}

/* The time taken goes out as Server-Timing, so that it can be measured
 * (bench/stats_page.py) without the network or the queue; a kept
 * answer says so instead. */
static void
render(struct store_view *v, struct stats_job *job)
{
	double t0 = seconds();
	uint64_t version = 0;
	struct kept *k = NULL;
	size_t len;
	int rc;

	if ((job->body = calloc(1, sizeof(*job->body))) == NULL)
		fatal("stats page");
	job->body->users = 1;
	buf_init(&job->body->b);
	if ((rc = store_view_begin(v)) == STORE_OK) {
		version = store_view_version(v);
		if (!job->fresh && version != 0)
			k = kept_find(job, version, t0);
		if (k == NULL)
			rc = stats_page_render(v, job->ref->cfg, &job->q,
			    &job->body->b);
		store_view_end(v);
	}
	len = strlen(job->headers);
	if (k != NULL) {
		body_release(job->body);
		job->body = body_hold(k->body);
		snprintf(job->headers + len, sizeof(job->headers) - len,
		    "Server-Timing: kept\r\n");
		job->status = 200;
		return;
	}
	snprintf(job->headers + len, sizeof(job->headers) - len,
	    "Server-Timing: render;dur=%.3f\r\n", (seconds() - t0) * 1000);
	if (rc == STORE_OK && version != 0)
		kept_put(job, version, t0);
	if (rc != STORE_OK) {
		log_warnx("stats page of %s: %s", *job->q.site ? job->q.site :
		    "the sites", store_error(renderer->store));
		job->status = 503;
	} else
		job->status = 200;
}

/* Below every thread that counts; see the comment at the top. */
static void
lower_priority(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	int rc;

	pthread_setname_np(pthread_self(), "tallyd-stats");
	if ((rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp)) == 0)
		return;
	log_debug("stats render thread: SCHED_IDLE: %s", strerror(rc));
	/* Linux gives each thread its own nice value. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    RENDER_NICE) == -1)
		log_debug("stats render thread: setpriority: %s",
		    strerror(errno));
}

static void *
render_main(void *arg)
{
	struct stats_renderer *sr = arg;
	struct store_view *v;
	struct stats_job *job;
	int i;

	lower_priority();
	if ((v = store_view_new(sr->store)) == NULL)
		fatal("stats store view");
	pthread_mutex_lock(&sr->lock);
	for (;;) {
		while (sr->head == NULL && !sr->stopping)
			pthread_cond_wait(&sr->wake, &sr->lock);
		if ((job = sr->head) == NULL)
			break;	/* stopping, and nothing left */
		if ((sr->head = job->next) == NULL)
			sr->tail = &sr->head;
		sr->queued--;
		pthread_mutex_unlock(&sr->lock);
		if (sr->stopping)
			job->status = 503;
		else
			render(v, job);
		post_answer(job);
		pthread_mutex_lock(&sr->lock);
	}
	pthread_mutex_unlock(&sr->lock);
	for (i = 0; i < KEPT_MAX; i++)
		kept_clear(&kept[i]);
	store_view_free(v);
	routes_thread_exit();
	return NULL;
}

void
stats_renderer_start(struct daemon *d)
{
	struct stats_renderer *sr;

	if ((sr = calloc(1, sizeof(*sr))) == NULL)
		fatal("stats renderer");
	pthread_mutex_init(&sr->lock, NULL);
	pthread_cond_init(&sr->wake, NULL);
	sr->tail = &sr->head;
	sr->store = d->store;
	if (pthread_create(&sr->thread, NULL, render_main, sr) != 0)
		fatalx("cannot start the stats render thread");
	renderer = sr;
}

void
stats_renderer_stop(struct daemon *d)
{
	struct stats_renderer *sr = renderer;

	if (sr == NULL)
		return;
	pthread_mutex_lock(&sr->lock);
	sr->stopping = true;
	pthread_cond_signal(&sr->wake);
	pthread_mutex_unlock(&sr->lock);
	pthread_join(sr->thread, NULL);
	/* Kept: workers still running may ask it for a page, which it
	 * refuses (503) now that it is stopping. */
}

void
stats_worker_init(struct worker *w)
{
	struct stats_answers *sa;

	if ((sa = calloc(1, sizeof(*sa))) == NULL)
		fatal("stats answers");
	pthread_mutex_init(&sa->lock, NULL);
	sa->tail = &sa->head;
	if ((sa->ev = event_new(w->base, -1, 0, answer_pages, sa)) == NULL)
		fatalx("stats answers: out of memory");
	w->stats = sa;
}

/* After the loop: pages left unanswered have no connection any more. */
void
stats_worker_free(struct worker *w)
{
	struct stats_answers *sa = w->stats;
	struct stats_job *job, *next;

	if (sa == NULL)
		return;
	for (job = sa->head; job; job = next) {
		next = job->next;
		job_free(job);
	}
	event_free(sa->ev);
	pthread_mutex_destroy(&sa->lock);
	free(sa);
	w->stats = NULL;
}

/* Hands the job over; false when the queue is full or stopping. */
static bool
enqueue(struct stats_job *job)
{
	struct stats_renderer *sr = renderer;
	bool ok;

	if (sr == NULL)
		return false;
	pthread_mutex_lock(&sr->lock);
	if ((ok = !sr->stopping && sr->queued < QUEUE_MAX)) {
		job->next = NULL;
		*sr->tail = job;
		sr->tail = &job->next;
		sr->queued++;
		pthread_cond_signal(&sr->wake);
	}
	pthread_mutex_unlock(&sr->lock);
	return ok;
}

/*
 * Who asks, and for what.
 */

/* The answer of a route that does not exist (routes.c), word for word:
 * a site that is not there, or not for this client, looks the same. */
static void
not_found(struct route_ctx *ctx)
{
	http_respond_error(ctx->r, 404, "no such route");
}

/* JSON when the client asks for it before HTML. */
static bool
wants_json(const struct http_request *r)
{
	const char *accept = http_header_get(r, "accept");
	const char *json, *html;

	if (accept == NULL || (json = strstr(accept, "application/json")) ==
	    NULL)
		return false;
	html = strstr(accept, "text/html");
	return html == NULL || json < html;
}

/* Cache-Control: no-cache (a browser's forced reload) or Pragma:
 * no-cache: a page made now, not one kept. */
static bool
asks_fresh(const struct http_request *r)
{
	const char *cc = http_header_get(r, "cache-control");
	const char *pragma = http_header_get(r, "pragma");

	return (cc != NULL && strstr(cc, "no-cache") != NULL) ||
	    (pragma != NULL && strstr(pragma, "no-cache") != NULL);
}

static bool
may_see(struct route_ctx *ctx, const struct site_config *site,
    const char *share, bool *by_token)
{
	*by_token = false;
	if (share != NULL && *share != '\0' && site->share != NULL &&
	    token_equal(site->share, share)) {
		*by_token = true;
		return true;
	}
	return route_is_admin(ctx) || site->public;
}

/* from= and to=, or period=; default the last 30 days. */
static int
parse_period(struct route_ctx *ctx, struct stats_query *q, const char **err)
{
	const char *p = ctx->params.v[P_PERIOD];
	const char *from = ctx->params.v[P_FROM], *to = ctx->params.v[P_TO];

	q->period = PERIOD_30D;
	if ((from && *from) || (to && *to)) {
		q->period = PERIOD_CUSTOM;
		if (from == NULL || day_parse(from, &q->from) == -1) {
			*err = "from: a day such as 2026-01-31";
			return -1;
		}
		if (to == NULL || *to == '\0')
			q->to = q->today;
		else if (day_parse(to, &q->to) == -1) {
			*err = "to: a day such as 2026-01-31";
			return -1;
		}
		if (q->to < q->from) {
			*err = "from: after to";
			return -1;
		}
		if (q->to - q->from >= STATS_SPAN_MAX) {
			*err = "from, to: at most 3660 days apart";
			return -1;
		}
		return 0;
	}
	if (p && *p && stats_period_parse(p, &q->period) == -1) {
		*err = "period: use today, yesterday, 7d, 30d, 12m or all";
		return -1;
	}
	stats_period_days(q->period, q->today, &q->from, &q->to);
	return 0;
}

/* path= (one page's history), prefix= and page= of the top pages. */
static int
parse_page_params(struct route_ctx *ctx, struct stats_query *q,
    const char **err)
{
	const char *v;
	char *end;
	unsigned long n;

	if ((v = ctx->params.v[P_PATH]) != NULL && *v != '\0' &&
	    path_normalize(v, strlen(v), q->path) != PATH_OK) {
		*err = "path: not a valid path";
		return -1;
	}
	if ((v = ctx->params.v[P_PREFIX]) != NULL && *v != '\0') {
		if (*v != '/' || strlen(v) > PATH_MAX_LEN ||
		    !utf8_valid(v, strlen(v))) {
			*err = "prefix: a path such as /blog/";
			return -1;
		}
		snprintf(q->prefix, sizeof(q->prefix), "%s", v);
	}
	q->page = 1;
	if ((v = ctx->params.v[P_PAGE]) != NULL && *v != '\0') {
		n = strtoul(v, &end, 10);
		if (*v < '1' || *v > '9' || *end != '\0' || n > STATS_PAGES_MAX) {
			*err = "page: a number from 1 to 10000";
			return -1;
		}
		q->page = (unsigned)n;
	}
	return 0;
}

void
route_stats(struct route_ctx *ctx)
{
	struct http_request *r = ctx->r;
	const char *name = r->path + strlen("/stats"), *err = NULL;
	const struct site_config *site = NULL;
	struct stats_job *job;
	bool by_token = false;
	size_t i;

	if (*name == '/')
		name++;
	if (route_parse(ctx, false) == -1)
		return;
	if ((job = calloc(1, sizeof(*job))) == NULL)
		fatal("stats job");
	job->q.today = day_today();
	job->q.json = wants_json(r);
	job->fresh = asks_fresh(r);
	job->q.admin = route_is_admin(ctx);
	if (*name != '\0') {
		/* Only a configured site has a page; the check is the same
		 * for all, so no answer tells them apart. */
		if (!site_name_valid(name) ||
		    (site = config_site(ctx->cfg, name)) == NULL ||
		    !may_see(ctx, site, ctx->params.v[P_SHARE], &by_token)) {
			free(job);
			not_found(ctx);
			return;
		}
		snprintf(job->q.site, sizeof(job->q.site), "%s", site->name);
		if (by_token)
			snprintf(job->q.share, sizeof(job->q.share), "%s",
			    ctx->params.v[P_SHARE]);
		if (parse_period(ctx, &job->q, &err) == -1 ||
		    parse_page_params(ctx, &job->q, &err) == -1) {
			free(job);
			http_respond_error(r, 400, err);
			return;
		}
	} else {
		/* The list: every site for admins, the public ones for
		 * anyone; none to show looks like no route at all. */
		for (i = 0; i < ctx->cfg->nsites; i++)
			if (job->q.admin || ctx->cfg->sites[i].public)
				break;
		if (i == ctx->cfg->nsites) {
			free(job);
			not_found(ctx);
			return;
		}
	}
	route_add_header(ctx, PAGE_HEADERS);
	job->w = ctx->w;
	job->r = r;
	job->ref = config_ref_hold(ctx->w->ref);
	memcpy(job->headers, ctx->headers, ctx->headers_len + 1);
	if (!enqueue(job)) {
		job_free(job);
		http_respond_error(r, 503, "busy: too many stats pages at once");
	}
}

void
route_chart_svg(struct route_ctx *ctx)
{
	const char *v, *path;
	char *end;
	struct buf b;
	long days = 30;
	bool whole_site = false;
	int rc;

	if (route_parse(ctx, false) == -1)
		return;
	/* path=* is the whole site, as in an export. */
	if ((v = ctx->params.v[P_PATH]) != NULL && strcmp(v, "*") == 0) {
		whole_site = true;
		ctx->params.v[P_PATH] = "/";
	}
	if (route_resolve(ctx) == -1)
		return;
	if ((v = ctx->params.v[P_DAYS]) != NULL && *v != '\0') {
		days = strtol(v, &end, 10);
		if (*v < '1' || *v > '9' || *end != '\0' || days < 2 ||
		    days > CHART_DAYS_MAX) {
			http_respond_error(ctx->r, 400,
			    "days: a number from 2 to 366");
			return;
		}
	}
	path = whole_site ? "" : ctx->path;
	buf_init(&b);
	if ((rc = store_view_begin(ctx->w->view)) == STORE_OK) {
		rc = stats_chart_render(ctx->w->view, ctx->site->name, path,
		    (int)days, ctx->day, &b);
		store_view_end(ctx->w->view);
	}
	if (rc != STORE_OK) {
		buf_free(&b);
		http_respond_error(ctx->r, 503, "store unavailable");
		return;
	}
	/* As the badge: embeddable anywhere, never cached, no script. */
	route_add_header(ctx, "Cache-Control: no-store\r\n" ROUTE_EMBEDDABLE
	    ROUTE_SVG_CSP);
	http_respond(ctx->r, 200, "image/svg+xml; charset=utf-8", ctx->headers,
	    b.data, b.len);
	buf_free(&b);
}
