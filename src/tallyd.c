/*
 * tallyd: counts page views and serves the counts.
 *
 * One event loop serves HTTP and commits pending hits on a timer;
 * signals arrive as events of that loop, so that a shutdown or a reload
 * happens between requests, never inside one.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "build-config.h"
#include "tally/bots.h"
#include "tally/config.h"
#include "tally/counter.h"
#include "tally/daemon.h"
#include "tally/day.h"
#include "tally/http.h"
#include "tally/log.h"
#include "tally/net.h"
#include "tally/sdnotify.h"
#include "tally/store.h"
#include "tally/visitor.h"

#define EXIT_USAGE	2
#define EXIT_CONFIG	78
#define MAX_SERVERS	1
#define MAX_FLAGS	64

bool daemon_is_admin(struct daemon *, const struct http_request *);
struct botlist *daemon_bots(struct daemon *);
void metrics_observe_commit(double seconds, void *arg);

/* A flag is a config key given on the command line; flags are applied
 * after the file, and again after every reload. */
struct flag {
	const char *section;
	const char *key;
	const char *value;
};

static struct flag flags[MAX_FLAGS];
static size_t nflags;
static const char *config_file;

static struct daemon daemon_state;
static struct botlist *bots;
static struct http_server *servers[MAX_SERVERS];
static size_t nservers;
static struct event *commit_timer;
static struct event *watchdog_timer;

enum {
	OPT_TIMEZONE = 256, OPT_COMMIT_INTERVAL, OPT_DURABILITY, OPT_THREADS,
	OPT_TRUSTED, OPT_IPHEADER, OPT_ADMIN, OPT_IDLE, OPT_MAXCONN,
	OPT_RATE, OPT_MAXPAGES, OPT_BOTS, OPT_DNT, OPT_MAXAGE, OPT_ACCESSLOG,
	OPT_LOGLEVEL,
};

static const struct option longopts[] = {
	{ "config",		required_argument, NULL, 'c' },
	{ "listen",		required_argument, NULL, 'l' },
	{ "data",		required_argument, NULL, 'd' },
	{ "timezone",		required_argument, NULL, OPT_TIMEZONE },
	{ "commit-interval",	required_argument, NULL, OPT_COMMIT_INTERVAL },
	{ "durability",		required_argument, NULL, OPT_DURABILITY },
	{ "threads",		required_argument, NULL, OPT_THREADS },
	{ "trusted-proxies",	required_argument, NULL, OPT_TRUSTED },
	{ "client-ip-header",	required_argument, NULL, OPT_IPHEADER },
	{ "admin-allow",	required_argument, NULL, OPT_ADMIN },
	{ "idle-timeout",	required_argument, NULL, OPT_IDLE },
	{ "max-connections",	required_argument, NULL, OPT_MAXCONN },
	{ "rate-limit",		required_argument, NULL, OPT_RATE },
	{ "max-pages",		required_argument, NULL, OPT_MAXPAGES },
	{ "bots",		required_argument, NULL, OPT_BOTS },
	{ "dnt",		required_argument, NULL, OPT_DNT },
	{ "count-max-age",	required_argument, NULL, OPT_MAXAGE },
	{ "access-log",		required_argument, NULL, OPT_ACCESSLOG },
	{ "log-level",		required_argument, NULL, OPT_LOGLEVEL },
	{ "verbose",		no_argument,	   NULL, 'v' },
	{ "check",		no_argument,	   NULL, 'n' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyd [-hnvV] [-c file] [-l address] [-d dir] [--timezone zone]\n"
	    "              [--commit-interval duration] [--durability batch|strict]\n"
	    "              [--threads n] [--trusted-proxies cidrs] [--client-ip-header name]\n"
	    "              [--admin-allow cidrs] [--idle-timeout duration]\n"
	    "              [--max-connections n] [--rate-limit n] [--max-pages n]\n"
	    "              [--bots patterns] [--dnt views-only|ignore]\n"
	    "              [--count-max-age duration] [--access-log yes|no]\n"
	    "              [--log-level error|warn|info|debug]\n"
	    "\n"
	    "  -c, --config FILE     read FILE (INI); flags override it\n"
	    "  -l, --listen ADDR     host:port or [v6]:port; repeatable (127.0.0.1:8080)\n"
	    "  -d, --data DIR        the store (./tally-data)\n"
	    "  -n, --check           check the configuration and exit\n"
	    "  -v, --verbose         log debug messages\n"
	    "  -h, --help            this text\n"
	    "  -V, --version         print the version\n");
}

static void
add_flag(const char *section, const char *key, const char *value)
{
	if (nflags == MAX_FLAGS) {
		fprintf(stderr, "tallyd: too many flags\n");
		exit(EXIT_USAGE);
	}
	flags[nflags].section = section;
	flags[nflags].key = key;
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
			if (strcmp(flags[j].key, flags[i].key) == 0)
				cleared = true;
		if (!cleared)
			config_clear(cfg, flags[i].key);
		if (config_set(cfg, flags[i].section, flags[i].key,
		    flags[i].value, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "--%s: %s", flags[i].key, msg);
			return -1;
		}
	}
	return config_finish(cfg, err, errlen);
}

bool
daemon_is_admin(struct daemon *d, const struct http_request *r)
{
	return cidr_list_match(d->cfg->admin_allow, d->cfg->nadmin_allow, r->peer);
}

struct botlist *
daemon_bots(struct daemon *d)
{
	return bots;
}

static void
commit_pending(evutil_socket_t fd, short what, void *arg)
{
	counter_commit(daemon_state.counter);
}

static void
watchdog_ping(evutil_socket_t fd, short what, void *arg)
{
	notify("WATCHDOG=1");
}

static void
shutdown_daemon(evutil_socket_t sig, short what, void *arg)
{
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	notify("STOPPING=1");
	event_base_loopbreak(daemon_state.base);
}

static void
reload(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = &daemon_state;
	struct config *cfg, *old = d->cfg;
	struct botlist *nb;
	char err[1024];
	size_t i;

	notify("RELOADING=1");
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		log_warn("reload");
		notify("READY=1");
		return;
	}
	if (load_config(cfg, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		log_warnx("reload failed; keeping the running configuration");
		config_free(cfg);
		free(cfg);
		notify("READY=1");
		return;
	}
	if (cfg->nlisten != old->nlisten)
		log_warnx("listen changed: takes effect after a restart");
	else
		for (i = 0; i < cfg->nlisten; i++)
			if (strcmp(cfg->listen[i], old->listen[i]) != 0) {
				log_warnx("listen changed: takes effect after "
				    "a restart");
				break;
			}
	if (strcmp(cfg->data, old->data) != 0)
		log_warnx("data changed: takes effect after a restart");
	if (cfg->threads != old->threads)
		log_warnx("threads changed: takes effect after a restart");
	if ((nb = botlist_new(cfg->bots, cfg->nbots)) == NULL) {
		log_warnx("reload: out of memory; keeping the running "
		    "configuration");
		config_free(cfg);
		free(cfg);
		notify("READY=1");
		return;
	}
	if (cfg->timezone == NULL || old->timezone == NULL ||
	    strcmp(cfg->timezone, old->timezone) != 0)
		day_set_timezone(cfg->timezone);
	botlist_free(bots);
	bots = nb;
	d->cfg = cfg;
	config_free(old);
	free(old);
	log_info("configuration reloaded");
	notify("READY=1");
}

static void
start_timers(struct daemon *d)
{
	struct timeval tv;
	uint64_t usec;

	commit_timer = event_new(d->base, -1, EV_PERSIST, commit_pending, NULL);
	tv.tv_sec = d->cfg->commit_interval_ms / 1000;
	tv.tv_usec = (d->cfg->commit_interval_ms % 1000) * 1000;
	event_add(commit_timer, &tv);

	/* Pinging from the loop itself: a stuck loop stops the pings. */
	if ((usec = notify_watchdog_usec()) > 0) {
		usec /= 2;
		watchdog_timer = event_new(d->base, -1, EV_PERSIST,
		    watchdog_ping, NULL);
		tv.tv_sec = (time_t)(usec / 1000000);
		tv.tv_usec = (suseconds_t)(usec % 1000000);
		event_add(watchdog_timer, &tv);
	}
}

static void
open_listeners(struct daemon *d)
{
	struct http_limits limits;
	char err[512];
	size_t i;
	int n, fd;

	limits.idle_timeout_ms = d->cfg->idle_timeout_ms;
	limits.max_connections = d->cfg->max_connections;
	servers[0] = http_server_new(d->base, &limits, routes_handle, d);
	if (servers[0] == NULL)
		fatalx("http_server_new failed");
	nservers = 1;

	if ((n = notify_listen_fds()) > 0) {
		for (fd = 3; fd < 3 + n; fd++)
			if (http_server_adopt(servers[0], fd, err,
			    sizeof(err)) == -1)
				fatalx("socket %d: %s", fd, err);
		log_info("serving %d socket%s from the service manager", n,
		    n == 1 ? "" : "s");
		return;
	}
	for (i = 0; i < d->cfg->nlisten; i++) {
		err[0] = '\0';
		if (http_server_listen(servers[0], d->cfg->listen[i], err,
		    sizeof(err)) == -1)
			fatalx("listen %s", err);
		log_info("listening on %s", d->cfg->listen[i]);
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
	char err[1024];
	bool check_only = false;
	int ch, verbose = 0, tries;

	while ((ch = getopt_long(argc, argv, "c:l:d:nvhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c': config_file = optarg; break;
		case 'l': add_flag("server", "listen", optarg); break;
		case 'd': add_flag("store", "data", optarg); break;
		case OPT_TIMEZONE: add_flag("count", "timezone", optarg); break;
		case OPT_COMMIT_INTERVAL:
			add_flag("store", "commit_interval", optarg);
			break;
		case OPT_DURABILITY: add_flag("store", "durability", optarg); break;
		case OPT_THREADS: add_flag("server", "threads", optarg); break;
		case OPT_TRUSTED:
			add_flag("server", "trusted_proxies", optarg);
			break;
		case OPT_IPHEADER:
			add_flag("server", "client_ip_header", optarg);
			break;
		case OPT_ADMIN: add_flag("server", "admin_allow", optarg); break;
		case OPT_IDLE: add_flag("server", "idle_timeout", optarg); break;
		case OPT_MAXCONN:
			add_flag("server", "max_connections", optarg);
			break;
		case OPT_RATE: add_flag("count", "rate_limit", optarg); break;
		case OPT_MAXPAGES: add_flag("count", "max_pages", optarg); break;
		case OPT_BOTS: add_flag("count", "bots", optarg); break;
		case OPT_DNT: add_flag("count", "dnt", optarg); break;
		case OPT_MAXAGE: add_flag("count", "count_max_age", optarg); break;
		case OPT_ACCESSLOG: add_flag("server", "access_log", optarg); break;
		case OPT_LOGLEVEL: add_flag("server", "log_level", optarg); break;
		case 'v': verbose = 1; break;
		case 'n': check_only = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tallyd %s\n", TALLY_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	if ((d->cfg = calloc(1, sizeof(*d->cfg))) == NULL)
		fatal("calloc");
	if (load_config(d->cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
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
	if (store_open(&d->store, d->cfg->data, 0, err, sizeof(err)) != STORE_OK)
		fatalx("%s", err);
	if (store_lock_daemon(d->store, err, sizeof(err)) != STORE_OK)
		fatalx("%s", err);
	if ((d->counter = counter_new(d->store)) == NULL ||
	    (d->visitors = visitors_new(d->store)) == NULL ||
	    (bots = botlist_new(d->cfg->bots, d->cfg->nbots)) == NULL)
		fatalx("out of memory");
	counter_observe_commits(d->counter, metrics_observe_commit, NULL);
	if ((d->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	d->started = time(NULL);

	open_listeners(d);
	ev_term = evsignal_new(d->base, SIGTERM, shutdown_daemon, NULL);
	ev_int = evsignal_new(d->base, SIGINT, shutdown_daemon, NULL);
	ev_hup = evsignal_new(d->base, SIGHUP, reload, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	start_timers(d);

	log_info("tallyd %s ready, store %s", TALLY_VERSION, d->cfg->data);
	notify("READY=1");
	notify_status("counting; store %s", d->cfg->data);

	event_base_dispatch(d->base);

	/* Stop taking hits, then make sure every answered one is stored. */
	for (size_t i = 0; i < nservers; i++)
		http_server_close_listeners(servers[i]);
	for (tries = 0; counter_commit(d->counter) != STORE_OK; tries++) {
		if (tries == 50)
			fatalx("could not commit %zu pending hits: %s",
			    counter_pending(d->counter),
			    counter_failure(d->counter));
		usleep(100000);
	}
	for (size_t i = 0; i < nservers; i++)
		http_server_free(servers[i]);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(commit_timer);
	if (watchdog_timer)
		event_free(watchdog_timer);
	counter_free(d->counter);
	visitors_free(d->visitors);
	botlist_free(bots);
	store_close(d->store);
	event_base_free(d->base);
	config_free(d->cfg);
	free(d->cfg);
	log_info("stopped");
	return 0;
}
