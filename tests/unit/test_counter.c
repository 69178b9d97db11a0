/*
 * The counter on a real store in a temporary directory: hits batch in
 * memory, answers include what is pending or being committed, and a
 * commit that fails loses nothing and doubles nothing.
 *
 * counter.c is built with COUNTER_TEST_HOOK: counter_test_hook runs in
 * every commit's write transaction, after the batch's series are
 * written, and can hold the commit there or make it fail.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tally/path.h"
#include "tally/store.h"

#include "counter.h"

#define DAY	20000

extern int (*counter_test_hook)(size_t nseries);

static char dir[256];
static struct store *st;
static struct store_view *view;

/* What the hook saw and does. */
static size_t hook_nseries, hook_max_nseries;
static int hook_commits;
static int hook_status = STORE_OK;
static bool hook_hold;		/* wait in the commit until released */
static bool hook_waiting, hook_released;
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hook_cond = PTHREAD_COND_INITIALIZER;

static int
hook(size_t nseries)
{
	pthread_mutex_lock(&hook_lock);
	hook_nseries = nseries;
	if (nseries > hook_max_nseries)
		hook_max_nseries = nseries;
	hook_commits++;
	if (hook_hold) {
		hook_waiting = true;
		pthread_cond_broadcast(&hook_cond);
		while (!hook_released)
			pthread_cond_wait(&hook_cond, &hook_lock);
	}
	pthread_mutex_unlock(&hook_lock);
	return hook_status;
}

static void
cleanup(const char *d)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", d);
}

static struct hit
make_hit(const char *site, const char *path, uint64_t visitor)
{
	struct hit h;

	memset(&h, 0, sizeof(h));
	h.site = site;
	h.path = path;
	h.day = DAY;
	h.has_visitor = true;
	h.visitor = visitor;
	h.address = visitor;
	return h;
}

static void
add(struct counter *c, const char *site, const char *path, uint64_t visitor,
    struct page_counts *out)
{
	struct hit h = make_hit(site, path, visitor);
	const char *counted;

	CHECK(counter_add(c, view, &h, NULL, &counted, out) == STORE_OK);
	CHECK_STR(counted, path);
}

static struct page_counts
read_counts(struct counter *c, const char *site, const char *path)
{
	struct page_counts pc;

	memset(&pc, 0xff, sizeof(pc));
	CHECK(counter_read(c, view, site, path, DAY, &pc) == STORE_OK);
	return pc;
}

/* Several hits to one series are one pending entry, and answers count
 * them before they are committed. */
static void
test_batching(void)
{
	struct counter *c = counter_new(st);
	struct page_counts pc;

	add(c, "s1", "/a", 1, &pc);
	CHECK_INT(pc.page.views, 1);
	add(c, "s1", "/a", 1, &pc);
	add(c, "s1", "/a", 2, &pc);
	/* The answer to a hit includes the hit itself. */
	CHECK_INT(pc.page.views, 3);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.page_today.views, 3);
	add(c, "s1", "/b", 1, &pc);
	CHECK_INT(pc.page.views, 1);
	CHECK_INT(pc.page.visitors, 1);
	CHECK_INT(pc.total.views, 4);
	CHECK_INT(pc.total.visitors, 2);
	CHECK_INT(pc.today.views, 4);
	CHECK_INT(counter_pending(c), 4);

	pc = read_counts(c, "s1", "/a");
	CHECK_INT(pc.page.views, 3);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.total.views, 4);
	CHECK_INT(pc.total.visitors, 2);

	/* Four hits, three series: /a, /b and the site's own. */
	hook_commits = 0;
	CHECK(counter_commit(c) == STORE_OK);
	CHECK_INT(hook_commits, 1);
	CHECK_INT(hook_nseries, 3);
	CHECK_INT(counter_pending(c), 0);

	/* Read back from the store alone: the same. */
	pc = read_counts(c, "s1", "/a");
	CHECK_INT(pc.page.views, 3);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.total.views, 4);
	CHECK_INT(pc.total.visitors, 2);
	/* A visitor seen before the commit is not new after it. */
	add(c, "s1", "/a", 2, &pc);
	CHECK_INT(pc.page.views, 4);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.total.visitors, 2);
	CHECK(counter_commit(c) == STORE_OK);
	counter_free(c);
}

static void *
commit_thread(void *arg)
{
	return (void *)(intptr_t)counter_commit(arg);
}

/* While a commit is in flight, answers still include it, and hits go
 * on into the next batch. */
static void
test_inflight(void)
{
	struct counter *c = counter_new(st);
	struct page_counts pc;
	pthread_t t;
	void *rc;
	int i;

	for (i = 0; i < 5; i++)
		add(c, "s2", "/x", 7, &pc);
	hook_hold = true;
	hook_waiting = hook_released = false;
	CHECK(pthread_create(&t, NULL, commit_thread, c) == 0);
	pthread_mutex_lock(&hook_lock);
	while (!hook_waiting)
		pthread_cond_wait(&hook_cond, &hook_lock);
	pthread_mutex_unlock(&hook_lock);

	/* The batch is written but not committed: the store shows none
	 * of it, the answers all of it. */
	pc = read_counts(c, "s2", "/x");
	CHECK_INT(pc.page.views, 5);
	CHECK_INT(pc.page.visitors, 1);
	CHECK_INT(pc.total.views, 5);
	CHECK_INT(counter_pending(c), 5);
	add(c, "s2", "/x", 7, &pc);
	CHECK_INT(pc.page.views, 6);
	/* Seen in the in-flight batch: not a new visitor. */
	CHECK_INT(pc.page.visitors, 1);
	add(c, "s2", "/y", 8, &pc);
	CHECK_INT(pc.total.views, 7);
	CHECK_INT(pc.total.visitors, 2);

	pthread_mutex_lock(&hook_lock);
	hook_hold = false;
	hook_released = true;
	pthread_cond_broadcast(&hook_cond);
	pthread_mutex_unlock(&hook_lock);
	pthread_join(t, &rc);
	CHECK_INT((intptr_t)rc, STORE_OK);

	/* Committed: the store holds it once, the new hits are pending. */
	CHECK_INT(counter_pending(c), 2);
	pc = read_counts(c, "s2", "/x");
	CHECK_INT(pc.page.views, 6);
	CHECK_INT(pc.page.visitors, 1);
	CHECK_INT(pc.total.views, 7);
	CHECK_INT(pc.total.visitors, 2);
	CHECK(counter_commit(c) == STORE_OK);
	CHECK_INT(counter_pending(c), 0);
	pc = read_counts(c, "s2", "/x");
	CHECK_INT(pc.page.views, 6);
	CHECK_INT(pc.total.views, 7);
	CHECK_INT(pc.total.visitors, 2);
	counter_free(c);
}

/* A commit that fails after writing part of its batch puts the batch
 * back: the next commit writes it once. */
static void
test_failed_commit(void)
{
	struct counter *c = counter_new(st);
	struct page_counts pc;
	char why[256];

	add(c, "s3", "/p", 1, &pc);
	add(c, "s3", "/p", 2, &pc);
	add(c, "s3", "/q", 1, &pc);
	hook_status = STORE_NOSPACE;
	CHECK(counter_commit(c) != STORE_OK);
	hook_status = STORE_OK;
	CHECK(counter_failure(c, why, sizeof(why)));
	CHECK_INT(counter_pending(c), 3);
	pc = read_counts(c, "s3", "/p");
	CHECK_INT(pc.page.views, 2);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.total.views, 3);
	CHECK_INT(pc.total.visitors, 2);

	/* Visitors of the failed batch are still known. */
	add(c, "s3", "/p", 2, &pc);
	CHECK_INT(pc.page.views, 3);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.total.visitors, 2);

	CHECK(counter_commit(c) == STORE_OK);
	CHECK(!counter_failure(c, why, sizeof(why)));
	CHECK_INT(counter_pending(c), 0);
	pc = read_counts(c, "s3", "/p");
	CHECK_INT(pc.page.views, 3);
	CHECK_INT(pc.page.visitors, 2);
	CHECK_INT(pc.total.views, 4);
	CHECK_INT(pc.total.visitors, 2);
	pc = read_counts(c, "s3", "/q");
	CHECK_INT(pc.page.views, 1);
	CHECK_INT(pc.page.visitors, 1);
	counter_free(c);
}

/* A burst of new paths is committed in transactions of about a
 * thousand series each, not one as large as the burst; answers count
 * every queued batch once, and its visitors as seen. */
static void
test_burst(void)
{
	struct counter *c = counter_new(st);
	struct page_counts pc;
	char path[64], why[256];
	int i, n = 3000;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/burst/%d", i);
		add(c, "s5", path, 9, &pc);
		CHECK_INT(pc.page.views, 1);
		CHECK_INT(pc.page.visitors, 1);
		CHECK_INT(pc.total.views, (uint64_t)i + 1);
		CHECK_INT(pc.total.visitors, 1);
	}
	CHECK_INT(counter_pending(c), n);
	pc = read_counts(c, "s5", "/burst/0");
	CHECK_INT(pc.page.views, 1);
	CHECK_INT(pc.total.views, n);

	/* The oldest batch fails: it goes back, nothing is lost. */
	hook_status = STORE_NOSPACE;
	CHECK(counter_commit(c) != STORE_OK);
	hook_status = STORE_OK;
	CHECK(counter_failure(c, why, sizeof(why)));
	CHECK_INT(counter_pending(c), n);
	pc = read_counts(c, "s5", "/burst/1");
	CHECK_INT(pc.page.views, 1);
	CHECK_INT(pc.total.views, n);
	CHECK_INT(pc.total.visitors, 1);

	hook_commits = 0;
	hook_max_nseries = 0;
	CHECK(counter_commit(c) == STORE_OK);
	CHECK_INT(counter_pending(c), 0);
	CHECK(hook_commits >= 3);
	CHECK(hook_max_nseries <= 1024 + 3);
	for (i = 0; i < n; i += 997) {
		snprintf(path, sizeof(path), "/burst/%d", i);
		pc = read_counts(c, "s5", path);
		CHECK_INT(pc.page.views, 1);
		CHECK_INT(pc.page.visitors, 1);
		CHECK_INT(pc.total.views, n);
		CHECK_INT(pc.total.visitors, 1);
	}
	counter_free(c);
}

static int
ref_row(void *arg, int day, const char *host, uint64_t views)
{
	char *out = arg;
	size_t len = strlen(out);

	snprintf(out + len, 256 - len, "%d %s %llu;", day, host,
	    (unsigned long long)views);
	return STORE_OK;
}

/* The views in the rows of ref_row's text, and the rows (*n). */
static uint64_t
ref_sum(const char *text, size_t *n)
{
	unsigned long long v;
	uint64_t sum = 0;
	const char *p;

	*n = 0;
	for (p = text; (p = strchr(p, ';')) != NULL; p++) {
		const char *sp = p;

		while (sp > text && sp[-1] != ' ')
			sp--;
		if (sscanf(sp, "%llu", &v) == 1)
			sum += v;
		(*n)++;
	}
	return sum;
}

/* Referrers ride in the batch with the counts of their hits: written in
 * the same commit, put back by a failed one and written once, capped by
 * the hit's max_referrers; they are no page. */
static void
test_referrers(void)
{
	struct counter *c = counter_new(st);
	struct page_counts pc;
	struct hit h;
	const char *counted;
	char got[256] = "";
	const char *hosts[] = { "a.example", "Google", "a.example",
	    "b.example", NULL, "c.example" };
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		h = make_hit("s4", "/p", i + 1);
		h.referrer = hosts[i];
		h.max_referrers = 2;
		CHECK(counter_add(c, view, &h, NULL, &counted, &pc) ==
		    STORE_OK);
	}
	CHECK_INT(counter_pending(c), 6);
	hook_status = STORE_NOSPACE;
	CHECK(counter_commit(c) != STORE_OK);
	hook_status = STORE_OK;
	CHECK(store_view_begin(view) == STORE_OK);
	CHECK(store_each_referrer(view, "s4", 0, DAY, ref_row, got) ==
	    STORE_OK);
	store_view_end(view);
	CHECK_STR(got, "");
	CHECK(counter_commit(c) == STORE_OK);
	CHECK(store_view_begin(view) == STORE_OK);
	CHECK(store_each_referrer(view, "s4", 0, DAY, ref_row, got) ==
	    STORE_OK);
	store_view_end(view);
	/* Two hosts kept, those the batch came to first; the views of the
	 * others are "(other)"'s: 5 in all, the hit without one aside. */
	CHECK_INT(ref_sum(got, &i), 5);
	CHECK_INT(i, 3);
	CHECK(strstr(got, " (other) ") != NULL);
	pc = read_counts(c, "s4", "/p");
	CHECK_INT(pc.page.views, 6);
	CHECK_INT(pc.total.views, 6);
	CHECK_INT(pc.total.visitors, 6);
	pc = read_counts(c, "s4", "a.example");
	CHECK_INT(pc.page.views, 0);
	counter_free(c);
}

int
main(void)
{
	char err[512];

	snprintf(dir, sizeof(dir), "/tmp/tally-counter-test-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (store_open(&st, dir, 0, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		cleanup(dir);
		return 1;
	}
	view = store_view_new(st);
	counter_test_hook = hook;
	test_batching();
	test_inflight();
	test_failed_commit();
	test_burst();
	test_referrers();
	store_view_free(view);
	store_close(st);
	cleanup(dir);
	return check_done();
}
