/*
 * What tallyd's modules share: the running configuration and state.
 *
 * Allocation failure is fatal in tallyd, as in the rest of tally: a
 * constructor returns what it made or does not return, and callers do
 * not check. Bad input and a failing store are answered, never fatal.
 */
#ifndef TALLYD_DAEMON_H
#define TALLYD_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tally/config.h"

struct event;
struct event_base;
struct store;
struct counter;
struct visitors;

enum decline_reason {
	DECLINE_NONE,
	DECLINE_READONLY,
	DECLINE_BOT,
	DECLINE_RATE,
	DECLINE_ORIGIN,
	DECLINE_COUNT
};

/* A serving thread: its own event loop, listeners, store view and
 * configuration, and what the main thread keeps to watch and stop it. */
struct worker {
	struct daemon	*d;
	struct event_base *base;
	struct http_server *server;
	struct store_view *view;
	struct config_ref *ref;		/* changed only by this thread */
	struct event	*switch_config;	/* move to the newest configuration */
	struct event	*stop_accepting;
	pthread_t	 thread;	/* not started for the first worker */
	uint64_t	 heartbeats;	/* the loop's turns, for the watchdog */
	uint64_t	 heartbeats_seen;
	struct event	*heartbeat_timer;
	struct strict_answers *strict;	/* routes.c: hits now on disk */
	struct stats_answers *stats;	/* stats.c: pages made */
};

struct daemon {
	struct config	*cfg;		/* the newest; replaced whole on
					 * SIGHUP. Requests read their
					 * worker's (config_ref.h). */
	struct store	*store;
	struct counter	*counter;
	struct visitors	*visitors;
	struct event_base *base;
	time_t		 started;
	bool		 shared;	/* the store is PostgreSQL's */
	uint64_t	 declined[DECLINE_COUNT];
};

const char *decline_reason_name(enum decline_reason);

#endif
