/*
 * tallyd: counts page views and serves the counts.
 *
 * Worker threads serve HTTP, each with its own event loop on the same
 * listening sockets, and a committer thread (counter.c) writes pending
 * hits. The first worker is the main thread: signals arrive as events
 * of its loop, so that a shutdown or a reload happens between two of
 * its requests, and the other workers are told by events of theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "build-config.h"
#include "tally/config.h"
#include "tally/day.h"
#include "tally/exitcodes.h"
#include "tally/escape.h"
#include "tally/location.h"
#include "tally/log.h"
#include "tally/net.h"
#include "tally/store.h"

#include "config_ref.h"
#include "counter.h"
#include "daemon.h"
#include "http.h"
#include "metrics.h"
#include "routes.h"
#include "sdnotify.h"
#include "stats.h"
#include "visitor.h"

#define MAX_WORKERS	64
#define MAX_FLAGS	64
#define MAX_LISTEN_FDS	32	/* as many as a server serves */
#define MAX_KEYS	64
#define OPT_KEY		256	/* + the key's index in config_keys */

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))


/* A flag is a config key given on the command line; flags are applied
 * after the file, and again after every reload. */
struct flag {
	const struct config_key *key;
	const char *value;
};

static struct flag flags[MAX_FLAGS];
static size_t nflags;
static const char *config_file;
static int verbose_flag;
/* Each key of [server], [store] and [count] is a flag, "_" written "-". */
static char flag_names[MAX_KEYS][64];

static struct daemon daemon_state;
static struct worker workers[MAX_WORKERS];
static int nworkers;
static struct event *watchdog_timer;
static struct event *midnight_timer;
static struct event *reader_timer;
static char store_shown[512];	/* the store's location, for messages */
static int exit_status;		/* set by the committer: the store refused */
static int gate_was_open = -1;	/* store_gate: -1 never, 0 shut, 1 open */

/* The options that are not configuration keys. */
static const struct option fixed_options[] = {
	{ "config",		required_argument, NULL, 'c' },
	{ "verbose",		no_argument,	   NULL, 'v' },
	{ "check",		no_argument,	   NULL, 'n' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
};
static struct option longopts[nitems(fixed_options) + MAX_KEYS + 1];

/* What a key's value looks like, for the usage. */
static const char *
value_hint(const struct config_key *k, char *buf, size_t bufsz)
{
	size_t i, len;

	switch (k->type) {
	case CONFIG_NAME:
	case CONFIG_ENUM:
		buf[0] = '\0';
		for (i = 0; k->names[i] != NULL; i++) {
			len = strlen(buf);
			snprintf(buf + len, bufsz - len, "%s%s",
			    i == 0 ? "" : "|", k->names[i]);
		}
		return buf;
	case CONFIG_BOOL: return "yes|no";
	case CONFIG_INT:
	case CONFIG_LONG: return "n";
	case CONFIG_DURATION:
	case CONFIG_SECONDS: return "duration";
	case CONFIG_LISTEN: return "address";
	case CONFIG_CIDRS: return "cidrs";
	case CONFIG_WORDS: return "patterns";
	case CONFIG_ZONE: return "zone";
	case CONFIG_URL: return "url";
	default: return "value";
	}
}

static void
usage(FILE *f)
{
	char hint[128];
	const char *h;
	size_t i, col, len;

	fprintf(f, "usage: tallyd [-hnvV] [-c file] [-l address] [-d dir]");
	col = 54;
	for (i = 0; i < config_nkeys; i++) {
		if (flag_names[i][0] == '\0' || strcmp(flag_names[i],
		    "listen") == 0 || strcmp(flag_names[i], "data") == 0)
			continue;	/* a key of [site NAME], or -l, -d */
		h = value_hint(&config_keys[i], hint, sizeof(hint));
		len = strlen(flag_names[i]) + strlen(h) + 6;
		if (col + len > 78) {
			fprintf(f, "\n             ");
			col = 13;
		}
		fprintf(f, " [--%s %s]", flag_names[i], h);
		col += len;
	}
	fprintf(f, "\n"
	    "\n"
	    "  -c, --config FILE     read FILE (INI); flags override it\n"
	    "  -l, --listen ADDR     host:port or [v6]:port; repeatable (127.0.0.1:8080)\n"
	    "  -d, --data DIR        the store (./tally-data)\n"
	    "  --store URL           a shared PostgreSQL store instead\n"
	    "  -n, --check           check the configuration and exit\n"
	    "  -v, --verbose         log debug messages\n"
	    "  -h, --help            this text\n"
	    "  -V, --version         print the version\n"
	    "  --KEY VALUE           any key of tallyd.conf(5) outside [site NAME]\n");
}

/* Where the counts are: the shared store when url is set, else LMDB in
 * data. */
static const char *
store_location(const struct config *cfg)
{
	return cfg->url != NULL ? cfg->url : cfg->data;
}

/* The long options: the fixed ones, then one per key. */
static void
make_options(void)
{
	size_t i, n = 0;

	for (i = 0; i < nitems(fixed_options); i++)
		longopts[n++] = fixed_options[i];
	for (i = 0; i < config_nkeys; i++) {
		if (strcmp(config_keys[i].section, "site") == 0)
			continue;
		if (i >= MAX_KEYS)
			fatalx("%s: too many keys", __func__);
		config_flag_name(&config_keys[i], flag_names[i],
		    sizeof(flag_names[i]));
		longopts[n].name = flag_names[i];
		longopts[n].has_arg = required_argument;
		longopts[n].flag = NULL;
		longopts[n].val = OPT_KEY + (int)i;
		n++;
	}
	memset(&longopts[n], 0, sizeof(longopts[n]));
}

static void
add_flag(const char *section, const char *key, const char *value)
{
	const struct config_key *k;

	if ((k = config_key_find(section, key)) == NULL)
		fatalx("%s: no key %s", __func__, key);
	if (nflags == MAX_FLAGS) {
		fprintf(stderr, "tallyd: too many flags\n");
		exit(EXIT_USAGE);
	}
	flags[nflags].key = k;
	flags[nflags].value = value;
	nflags++;
}

/* The file, then the flags. A list given by flags replaces the file's. */
static int
load_config(struct config *cfg, char *err, size_t errlen)
{
	char msg[512];
	size_t i, j;
	bool cleared;

	config_init(cfg);
	if (config_file && config_load(cfg, config_file, err, errlen) == -1)
		return -1;
	for (i = 0; i < nflags; i++) {
		cleared = false;
		for (j = 0; j < i; j++)
			if (flags[j].key == flags[i].key)
				cleared = true;
		if (!cleared)
			config_clear(cfg, flags[i].key->name);
		if (config_set_key(cfg, flags[i].key, flags[i].value, msg,
		    sizeof(msg)) == -1) {
			snprintf(err, errlen, "--%s: %s",
			    flag_names[flags[i].key - config_keys], msg);
			return -1;
		}
	}
	return config_finish(cfg, err, errlen);
}

/* Runs on each worker after a reload, between two requests. */
static void
switch_config(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	config_ref_update(&w->ref);
}

static void
heartbeat(evutil_socket_t fd, short what, void *arg)
{
	__atomic_fetch_add((uint64_t *)arg, 1, __ATOMIC_RELAXED);
}

/* Pings only while every event loop has turned since the last ping: a
 * stuck loop stops the pings and the manager restarts tallyd. */
static void
watchdog_ping(evutil_socket_t fd, short what, void *arg)
{
	int i;
	uint64_t hb;

	for (i = 0; i < nworkers; i++) {
		hb = __atomic_load_n(&workers[i].heartbeats, __ATOMIC_RELAXED);
		if (hb == workers[i].heartbeats_seen) {
			log_warnx("event loop %d is stuck", i);
			return;
		}
		workers[i].heartbeats_seen = hb;
	}
	notify("WATCHDOG=1");
}

/* At local midnight the day's salt is made and the day before
 * yesterday's erased, even on a day without visits. A shared store's
 * salt is the committer's to read (store_gate), off the event loops. */
static void
midnight(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 0 };
	time_t now = time(NULL);

	if (what != 0 && !daemon_state.shared &&
	    visitors_rotate(daemon_state.visitors, day_of(now)) != STORE_OK)
		log_warnx("rotating the visitor salt failed; retried at the "
		    "first visit");
	/* A second past midnight, so that the day has surely changed. */
	tv.tv_sec = day_seconds_to_midnight(now) + 1;
	evtimer_add(midnight_timer, &tv);
}

/* A tallyctl killed mid-read leaves its reader slot behind, and the
 * pages it pinned cannot be reused until the slot is cleared. */
static void
clear_stale_readers(evutil_socket_t fd, short what, void *arg)
{
	int n;

	if ((n = store_reader_check(daemon_state.store)) > 0)
		log_info("cleared %d stale reader slot%s", n, n == 1 ? "" : "s");
}

static void
shutdown_daemon(evutil_socket_t sig, short what, void *arg)
{
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	notify("STOPPING=1");
	event_base_loopbreak(workers[0].base);
}

/* Runs on each worker: stop accepting, keep serving open connections. */
static void
stop_accepting(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	http_server_close_listeners(w->server);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	routes_thread_exit();
	return NULL;
}

/* A bad file's errors, one log line each. */
static void
log_lines(const char *text)
{
	const char *p, *nl;

	for (p = text; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL) {
			log_warnx("%s", p);
			return;
		}
		log_warnx("%.*s", (int)(nl - p), p);
	}
}

/*
 * Whether this node may count into a shared store, asked by the
 * committer after each refresh: once it knows the day's visitor salt.
 * That salt is shared (the first node to insert it wins) so that one
 * visitor is one id on every node. A node that counted with a salt of
 * its own while the database was away would, once its salt lost that
 * race, have sent ids that no other node makes: each of those visitors
 * counted twice across the nodes. So a node that has not read the day's
 * salt (started without its database, or past midnight before reaching
 * it) refuses hits, in either durability, and reads answer from its
 * copy. The salt is read here, on the committer's thread, at start and
 * at midnight.
 *
 * A store refused once reached (a newer schema) stops the node, as it
 * would have at start: the loops end, and tallyd exits 1.
 */
static int
store_gate(void *arg, int refresh_rc, char *why, size_t len)
{
	struct daemon *d = arg;
	int day = day_of(time(NULL)), rc = refresh_rc;

	if (rc == STORE_OK && !visitors_knows(d->visitors, day))
		rc = visitors_rotate(d->visitors, day);
	if (visitors_knows(d->visitors, day)) {
		if (gate_was_open != 1) {
			log_info("the database answers: counting");
			notify_status("counting with %d thread%s; store %s",
			    nworkers, nworkers == 1 ? "" : "s", store_shown);
		}
		gate_was_open = 1;
		return 0;
	}
	if (gate_was_open == -1 && refresh_rc == STORE_ERROR &&
	    __atomic_exchange_n(&exit_status, 1, __ATOMIC_RELAXED) == 0) {
		log_warnx("%s: %s; stopping", store_shown,
		    store_error(d->store));
		notify("STOPPING=1");
		event_base_loopbreak(d->base);
	}
	snprintf(why, len, "not counting until the database answers: %s",
	    store_error(d->store));
	if (gate_was_open == 1) {
		log_warnx("%s", why);
		notify_status("%s", why);
		gate_was_open = 0;
	}
	return -1;
}

/* What the counter needs of the configuration for a shared store. */
static void
set_shared(struct counter *c, const struct config *cfg)
{
	counter_set_shared(c, (size_t)cfg->buffer_max,
	    (uint64_t)cfg->count_max_age * 1000);
}

static void
reload(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = &daemon_state;
	struct config *cfg, *old = d->cfg;
	char err[8192];
	size_t i;
	int k;

	notify("RELOADING=1");
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		fatal("reload");
	if (load_config(cfg, err, sizeof(err)) == -1) {
		log_lines(err);
		log_warnx("reload failed; keeping the running configuration");
		config_free(cfg);
		free(cfg);
		notify("READY=1");
		return;
	}
	for (i = 0; i < config_nkeys; i++)
		if ((config_keys[i].flags & CONFIG_RESTART) &&
		    config_key_changed(&config_keys[i], old, cfg))
			log_warnx("%s changed; it takes effect after a restart",
			    config_keys[i].name);
	/* A batch is either all answered (batch) or all waiting (strict):
	 * the mode stays what it was at start. */
	cfg->durability = old->durability;
	config_ref_publish(cfg);
	d->cfg = cfg;
	if (d->shared)
		set_shared(d->counter, cfg);
	for (k = 0; k < nworkers; k++)
		event_active(workers[k].switch_config, EV_TIMEOUT, 0);
	if (!verbose_flag)
		log_setlevel(cfg->log_level);
	log_info("configuration reloaded");
	notify("READY=1");
	notify_status("counting with %d thread%s; configuration reloaded",
	    nworkers, nworkers == 1 ? "" : "s");
}

static void
start_watchdog(struct daemon *d)
{
	struct timeval tv;
	uint64_t usec;
	int i;

	if ((usec = notify_watchdog_usec()) == 0)
		return;
	/* Loops beat four times per ping, the main one pings at half the
	 * interval the manager allows. */
	tv.tv_sec = (time_t)(usec / 8 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 8 % 1000000);
	for (i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		if ((w->heartbeat_timer = event_new(w->base, -1, EV_PERSIST,
		    heartbeat, &w->heartbeats)) == NULL)
			fatalx("heartbeat timer: out of memory");
		event_add(w->heartbeat_timer, &tv);
	}
	if ((watchdog_timer = event_new(workers[0].base, -1, EV_PERSIST,
	    watchdog_ping, NULL)) == NULL)
		fatalx("watchdog timer: out of memory");
	tv.tv_sec = (time_t)(usec / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	event_add(watchdog_timer, &tv);
}

static int
thread_count(const struct config *cfg)
{
	long n = cfg->threads;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	return (int)n;
}

/* The listening sockets: passed by the service manager, or bound here,
 * once per address. */
static size_t
open_listeners(const struct config *cfg, int *fds, size_t max)
{
	char err[512], name[80];
	size_t i, n = 0;
	int k, passed;

	if ((passed = notify_listen_fds()) > 0) {
		for (k = 0; k < passed && n < max; k++)
			fds[n++] = 3 + k;
		log_info("serving %d socket%s from the service manager",
		    passed, passed == 1 ? "" : "s");
		return n;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if ((k = http_listen_open(cfg->listen[i], fds + n, max - n, err,
		    sizeof(err))) == -1)
			fatalx("listen %s", err);
		for (; k > 0; k--, n++) {
			http_listen_name(fds[n], name, sizeof(name));
			log_info("listening on %s", name);
		}
	}
	return n;
}

/* Every worker serves every listening socket: the kernel hands each
 * connection to one of them. */
static void
open_workers(struct daemon *d)
{
	struct http_limits limits;
	int fds[MAX_LISTEN_FDS];
	char err[512];
	size_t i, nfds;
	int k, lfd;

	limits.idle_timeout_ms = d->cfg->idle_timeout_ms;
	limits.max_connections = d->cfg->max_connections;
	limits.max_per_address = d->cfg->max_connections_per_address;
	/* A proxy carries many clients' connections. */
	limits.exempt = d->cfg->trusted_proxies;
	limits.nexempt = d->cfg->ntrusted_proxies;
	limits.access_log = d->cfg->access_log;
	nworkers = thread_count(d->cfg);
	nfds = open_listeners(d->cfg, fds, MAX_LISTEN_FDS);
	for (k = 0; k < nworkers; k++) {
		struct worker *w = &workers[k];

		w->d = d;
		if ((w->base = event_base_new()) == NULL)
			fatalx("event_base_new failed");
		w->server = http_server_new(w->base, &limits, routes_handle, w);
		if ((w->view = store_view_new(d->store)) == NULL)
			fatal("store view");
		w->stop_accepting = event_new(w->base, -1, 0, stop_accepting,
		    w);
		w->switch_config = event_new(w->base, -1, 0, switch_config, w);
		routes_worker_init(w);
		if (w->stop_accepting == NULL || w->switch_config == NULL)
			fatalx("worker %d: out of memory", k);
		w->ref = config_ref_hold_latest();
		for (i = 0; i < nfds; i++) {
			lfd = k == 0 ? fds[i] : fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
			if (lfd == -1)
				fatal("dup of socket %d", fds[i]);
			if (http_server_adopt(w->server, lfd, err,
			    sizeof(err)) == -1)
				fatalx("socket %d: %s", fds[i], err);
		}
	}
}

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_warnx("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

int
main(int argc, char *argv[])
{
	struct daemon *d = &daemon_state;
	struct event *ev_term, *ev_int, *ev_hup;
	struct timeval flush = { 0, 200000 };
	struct commit_stats cs;
	sigset_t sigs, oldsigs;
	char err[8192], shown[4 * sizeof(err)], where[512];
	const char *line, *end;
	bool check_only = false;
	int ch, verbose = 0, tries, k, rc;

	make_options();
	while ((ch = getopt_long(argc, argv, "c:l:d:nvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c': config_file = optarg; break;
		case 'l': add_flag("server", "listen", optarg); break;
		case 'd': add_flag("store", "data", optarg); break;
		case 'v': verbose = verbose_flag = 1; break;
		case 'n': check_only = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tallyd %s\n", TALLY_VERSION); return 0;
		default:
			if (ch >= OPT_KEY && ch < OPT_KEY + (int)config_nkeys) {
				add_flag(config_keys[ch - OPT_KEY].section,
				    config_keys[ch - OPT_KEY].name, optarg);
				break;
			}
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	if ((d->cfg = calloc(1, sizeof(*d->cfg))) == NULL)
		fatal("calloc");
	if (load_config(d->cfg, err, sizeof(err)) == -1) {
		/* One error a line; each quotes the file, which may hold
		 * anything. */
		for (line = err; *line != '\0'; line = end + (*end != '\0')) {
			end = line + strcspn(line, "\n");
			text_escape(shown, sizeof(shown), line,
			    (size_t)(end - line));
			fprintf(stderr, "%s\n", shown);
		}
		return EXIT_CONFIG;
	}
	if (check_only) {
		printf("configuration OK\n");
		return 0;
	}
	log_init("tallyd", verbose ? LOG_LEVEL_DEBUG : d->cfg->log_level);
	event_set_log_callback(libevent_log);
	signal(SIGPIPE, SIG_IGN);

	if (day_set_timezone(d->cfg->timezone) == -1)
		fatalx("unknown time zone %s", d->cfg->timezone);
	location_shown(where, sizeof(where), store_location(d->cfg));
	snprintf(store_shown, sizeof(store_shown), "%s", where);
	/* Requests read a shared store's counts from a copy in memory:
	 * none of them waits on the network. Nor does a node wait for its
	 * database to start: it serves, refusing hits (store_gate), and
	 * the committer connects. */
	d->shared = location_is_url(store_location(d->cfg));
	/* The counter syncs each commit's meta page with the next commit,
	 * or itself once nothing more is pending: one disk wait a commit
	 * under load. */
	rc = store_open(&d->store, store_location(d->cfg),
	    (d->shared ? STORE_CACHED : 0) | STORE_DEFER_SYNC, err,
	    sizeof(err));
	if (rc == STORE_UNAVAILABLE && d->store != NULL)
		log_warnx("%s; hits are refused until it answers", err);
	else if (rc != STORE_OK)
		fatalx("%s", err);
	if (store_lock_daemon(d->store, err, sizeof(err)) != STORE_OK)
		fatalx("%s", err);
	d->counter = counter_new(d->store);
	d->visitors = visitors_new(d->store);
	config_ref_publish(d->cfg);
	counter_observe_commits(d->counter, metrics_observe_commit, d);
	if (d->shared) {
		set_shared(d->counter, d->cfg);
		/* The salt now, while nothing is served yet. */
		if (rc == STORE_OK)
			rc = visitors_rotate(d->visitors, day_of(time(NULL)));
		if (rc != STORE_OK)
			snprintf(err, sizeof(err), "not counting until the "
			    "database answers: %s", store_error(d->store));
		else
			gate_was_open = 1;
		counter_set_gate(d->counter, store_gate, d, rc != STORE_OK,
		    err);
	}
	/* Committers and other workers wake loops across threads. */
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads failed");
	d->started = time(NULL);

	open_workers(d);
	d->base = workers[0].base;
	ev_term = evsignal_new(d->base, SIGTERM, shutdown_daemon, NULL);
	ev_int = evsignal_new(d->base, SIGINT, shutdown_daemon, NULL);
	ev_hup = evsignal_new(d->base, SIGHUP, reload, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	start_watchdog(d);
	if ((midnight_timer = evtimer_new(d->base, midnight, NULL)) == NULL)
		fatalx("out of memory");
	midnight(-1, 0, NULL);
	{
		struct timeval minute = { 60, 0 };

		reader_timer = event_new(d->base, -1, EV_PERSIST,
		    clear_stale_readers, NULL);
		if (reader_timer == NULL)
			fatalx("out of memory");
		event_add(reader_timer, &minute);
	}
	if (counter_start(d->counter, d->cfg->commit_interval_ms) == -1)
		fatalx("cannot start the committer thread");
	stats_renderer_start(d);

	/* Signals are the main loop's: the other threads block them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &oldsigs);
	for (k = 1; k < nworkers; k++)
		if (pthread_create(&workers[k].thread, NULL, worker_main,
		    &workers[k]) != 0)
			fatalx("cannot start worker thread %d", k);
	pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);

	log_info("tallyd %s ready, %d thread%s, store %s", TALLY_VERSION,
	    nworkers, nworkers == 1 ? "" : "s", where);
	/* READY=1 means serving: a node waiting for its database serves
	 * reads and /healthz (503) and says so in its status; a manager
	 * waiting for it would time out while the database is down. */
	notify("READY=1");
	if (counter_refuses(d->counter, false, err, sizeof(err)))
		notify_status("%s", err);
	else
		notify_status("counting with %d thread%s; store %s", nworkers,
		    nworkers == 1 ? "" : "s", where);

	event_base_dispatch(d->base);

	/* Stop taking connections; the last commit answers strict waiters
	 * on loops that still run; then let the loops flush and end. */
	http_server_close_listeners(workers[0].server);
	for (k = 1; k < nworkers; k++)
		event_active(workers[k].stop_accepting, EV_TIMEOUT, 0);
	/* Pages still waiting are answered (503) on loops that still run. */
	stats_renderer_stop(d);
	counter_stop(d->counter);
	for (k = 1; k < nworkers; k++) {
		event_base_loopexit(workers[k].base, &flush);
		pthread_join(workers[k].thread, NULL);
	}
	event_base_loopexit(d->base, &flush);
	event_base_dispatch(d->base);
	for (tries = 0; counter_commit(d->counter) != STORE_OK; tries++) {
		char why[256] = "";

		counter_failure(d->counter, why, sizeof(why));
		if (tries == 50)
			fatalx("could not commit %zu pending hits: %s",
			    counter_pending(d->counter), why);
		usleep(100000);
	}
	routes_thread_exit();
	counter_stats(d->counter, &cs);
	log_debug("counter lock: taken %llu times, %llu contended",
	    (unsigned long long)cs.lock_taken,
	    (unsigned long long)cs.lock_contended);

	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	if (watchdog_timer)
		event_free(watchdog_timer);
	event_free(midnight_timer);
	event_free(reader_timer);
	for (k = 0; k < nworkers; k++) {
		http_server_free(workers[k].server);
		store_view_free(workers[k].view);
		event_free(workers[k].stop_accepting);
		event_free(workers[k].switch_config);
		routes_worker_free(&workers[k]);
		config_ref_release(workers[k].ref);
		if (workers[k].heartbeat_timer)
			event_free(workers[k].heartbeat_timer);
		event_base_free(workers[k].base);
	}
	counter_free(d->counter);
	visitors_free(d->visitors);
	/* Every holder is gone: the newest goes too. */
	config_ref_shutdown();
	store_close(d->store);
	log_info("stopped");
	return __atomic_load_n(&exit_status, __ATOMIC_RELAXED);
}
