/*
 * /metrics in the Prometheus text format 0.0.4. Only per-site and
 * per-reason labels: a label per path would let any visitor grow the
 * scrape without bound.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "tally/buf.h"
#include "tally/day.h"
#include "tally/log.h"
#include "tally/store.h"

#include "config_ref.h"
#include "counter.h"
#include "daemon.h"
#include "http.h"
#include "metrics.h"
#include "routes.h"
#include "visitor.h"


static const double commit_buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};
#define NBUCKETS (sizeof(commit_buckets) / sizeof(commit_buckets[0]))

/*
 * Views counted by this process, by site: the counter
 * tally_views_total, which only counted hits move (tallyctl set and
 * import change what is stored, and show in the gauge
 * tally_views_all_time). Sites come from the configuration, so the
 * table stays small; it is filled under a lock, once per site, and read
 * without one.
 */
#define COUNTED_SITES	4096

struct counted_site {
	char	 name[SITE_NAME_MAX + 1];
	uint64_t views;
	bool	 ready;
};

static pthread_mutex_t counted_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counted_site counted[COUNTED_SITES];

/* The slot of site, made when create is set and there is room. */
static struct counted_site *
counted_slot(const char *site, bool create)
{
	struct counted_site *s;
	size_t i, n;

	i = (size_t)store_series_hash(site, SITE_SERIES) % COUNTED_SITES;
	for (n = 0; n < COUNTED_SITES; n++, i = (i + 1) % COUNTED_SITES) {
		s = &counted[i];
		if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
			break;
		if (strcmp(s->name, site) == 0)
			return s;
	}
	if (!create || n == COUNTED_SITES)
		return NULL;
	pthread_mutex_lock(&counted_lock);
	/* Another thread may have made it, or taken the slot, meanwhile. */
	while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) &&
	    strcmp(s->name, site) != 0 && ++n < COUNTED_SITES) {
		i = (i + 1) % COUNTED_SITES;
		s = &counted[i];
	}
	if (n < COUNTED_SITES && !s->ready) {
		snprintf(s->name, sizeof(s->name), "%s", site);
		__atomic_store_n(&s->ready, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&counted_lock);
	return n < COUNTED_SITES ? s : NULL;
}

void
metrics_count_view(const char *site)
{
	/* Hits come mostly for the site of the last one: its slot is found
	 * again without hashing the name. Slots are never freed. */
	static __thread struct counted_site *last;
	struct counted_site *s = last;

	if (s == NULL || strcmp(s->name, site) != 0)
		last = s = counted_slot(site, true);
	if (s != NULL)
		__atomic_fetch_add(&s->views, 1, __ATOMIC_RELAXED);
}

static uint64_t
counted_views(const char *site)
{
	struct counted_site *s = counted_slot(site, false);

	return s ? __atomic_load_n(&s->views, __ATOMIC_RELAXED) : 0;
}

/* Written by the committer thread, read by whichever serves /metrics. */
static pthread_mutex_t histogram_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t bucket_counts[NBUCKETS];
static uint64_t commit_count;
static double commit_sum;

void
metrics_observe_commit(double seconds, void *arg)
{
	size_t i;

	pthread_mutex_lock(&histogram_lock);
	for (i = 0; i < NBUCKETS; i++)
		if (seconds <= commit_buckets[i])
			bucket_counts[i]++;
	commit_count++;
	commit_sum += seconds;
	pthread_mutex_unlock(&histogram_lock);
}

static void
help(struct buf *b, const char *name, const char *type, const char *text)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static uint64_t
resident_bytes(void)
{
	unsigned long size, resident;
	FILE *f;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void
site_metrics(struct buf *b, struct daemon *d, struct worker *w)
{
	const struct config *cfg = w->ref->cfg;
	struct page_counts *pc;
	int day = 0;
	size_t i;

	if ((pc = calloc(cfg->nsites ? cfg->nsites : 1, sizeof(*pc))) == NULL)
		fatal("metrics");
	day = day_today();
	for (i = 0; i < cfg->nsites; i++)
		counter_read(d->counter, w->view, cfg->sites[i].name, "/", day,
		    &pc[i]);

	help(b, "tally_views_total", "counter",
	    "Views counted by this process (tallyctl set and import excluded).");
	for (i = 0; i < cfg->nsites; i++)
		buf_printf(b, "tally_views_total{site=\"%s\"} %" PRIu64 "\n",
		    cfg->sites[i].name, counted_views(cfg->sites[i].name));
	help(b, "tally_views_all_time", "gauge",
	    "All views stored, with tallyctl set and import adjustments.");
	for (i = 0; i < cfg->nsites; i++)
		buf_printf(b, "tally_views_all_time{site=\"%s\"} %" PRIu64
		    "\n", cfg->sites[i].name, pc[i].total.views);
	help(b, "tally_views_today", "gauge", "Views counted today.");
	for (i = 0; i < cfg->nsites; i++)
		buf_printf(b, "tally_views_today{site=\"%s\"} %" PRIu64 "\n",
		    cfg->sites[i].name, pc[i].today.views);
	help(b, "tally_visitors_today", "gauge", "Distinct visitors today.");
	for (i = 0; i < cfg->nsites; i++)
		buf_printf(b, "tally_visitors_today{site=\"%s\"} %" PRIu64 "\n",
		    cfg->sites[i].name, pc[i].today.visitors);
	free(pc);
}

void
metrics_route(struct route_ctx *ctx)
{
	struct daemon *d = ctx->d;
	struct http_status_count codes[64];
	struct store_stat ss;
	struct commit_stats cs;
	struct buf b;
	size_t i, n;
	int r;

	if (!route_is_admin(ctx)) {
		http_respond_error(ctx->r, 403, "metrics are for admin_allow only");
		return;
	}
	buf_init(&b);
	site_metrics(&b, d, ctx->w);

	help(&b, "tally_hits_declined_total", "counter",
	    "Hits answered but not counted, by reason.");
	for (r = DECLINE_BOT; r < DECLINE_COUNT; r++)
		buf_printf(&b, "tally_hits_declined_total{reason=\"%s\"} %" PRIu64
		    "\n", decline_reason_name(r),
		    __atomic_load_n(&d->declined[r], __ATOMIC_RELAXED));

	/* This answer is not counted yet: it is being written. */
	help(&b, "tally_http_requests_total", "counter",
	    "HTTP answers by status code.");
	n = http_status_counts(codes, sizeof(codes) / sizeof(codes[0]));
	for (i = 0; i < n; i++)
		buf_printf(&b, "tally_http_requests_total{code=\"%d\"} %" PRIu64
		    "\n", codes[i].status, codes[i].count);

	help(&b, "tally_store_commits_total", "counter",
	    "Write transactions committed.");
	counter_stats(d->counter, &cs);
	buf_printf(&b, "tally_store_commits_total %" PRIu64 "\n", cs.commits);
	help(&b, "tally_store_commit_seconds", "histogram",
	    "Time taken by a commit, sync included.");
	pthread_mutex_lock(&histogram_lock);
	for (i = 0; i < NBUCKETS; i++)
		buf_printf(&b, "tally_store_commit_seconds_bucket{le=\"%g\"} %"
		    PRIu64 "\n", commit_buckets[i], bucket_counts[i]);
	buf_printf(&b, "tally_store_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64
	    "\n", commit_count);
	buf_printf(&b, "tally_store_commit_seconds_sum %.9f\n", commit_sum);
	buf_printf(&b, "tally_store_commit_seconds_count %" PRIu64 "\n",
	    commit_count);
	pthread_mutex_unlock(&histogram_lock);
	help(&b, "tally_store_pending_hits", "gauge",
	    "Hits answered and not yet committed.");
	buf_printf(&b, "tally_store_pending_hits %zu\n",
	    counter_pending(d->counter));
	if (store_stat(d->store, &ss) == STORE_OK) {
		help(&b, "tally_store_map_bytes", "gauge",
		    "Size of the LMDB map.");
		buf_printf(&b, "tally_store_map_bytes %" PRIu64 "\n", ss.map_bytes);
		help(&b, "tally_store_used_bytes", "gauge",
		    "Bytes of the map in use.");
		buf_printf(&b, "tally_store_used_bytes %" PRIu64 "\n",
		    ss.used_bytes);
	}
	help(&b, "tally_build_info", "gauge", "The running version.");
	buf_printf(&b, "tally_build_info{version=\"%s\"} 1\n", TALLY_VERSION);
	help(&b, "process_start_time_seconds", "gauge",
	    "Start time of the process since the epoch, in seconds.");
	buf_printf(&b, "process_start_time_seconds %lld\n",
	    (long long)d->started);
	help(&b, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.");
	buf_printf(&b, "process_resident_memory_bytes %" PRIu64 "\n",
	    resident_bytes());

	route_add_header(ctx, "Cache-Control: no-store\r\n");
	http_respond(ctx->r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    ctx->headers, b.data, b.len);
	buf_free(&b);
}
