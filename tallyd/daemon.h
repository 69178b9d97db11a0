/* What tallyd's modules share: the running configuration and state. */
#ifndef TALLYD_DAEMON_H
#define TALLYD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tally/config.h"

struct event_base;
struct store;
struct counter;
struct http_request;
struct visitors;

enum decline_reason {
	DECLINE_NONE,
	DECLINE_READONLY,
	DECLINE_BOT,
	DECLINE_RATE,
	DECLINE_ORIGIN,
	DECLINE_COUNT
};

/* A configuration and the bot list made from it, shared by the workers
 * that use it and by requests waiting for a commit; freed by the last
 * of them once a reload has replaced it. */
struct config_ref {
	struct config	*cfg;
	struct botlist	*bots;
	int		 users;
};

/* A serving thread: its own event loop, listeners and store view. */
struct worker {
	struct daemon	*d;
	struct event_base *base;
	struct http_server *server;
	struct store_view *view;
	struct config_ref *ref;		/* changed only by this thread */
	struct event	*switch_config;
	int		 index;
};

/* Another holder of the worker's configuration (a request that waits),
 * and its release. */
struct config_ref *config_ref_hold(struct worker *);
void config_ref_release(struct config_ref *);

struct daemon {
	struct config	*cfg;		/* replaced whole on SIGHUP; read it
					 * with daemon_config() */
	struct store	*store;
	struct counter	*counter;
	struct visitors	*visitors;
	struct event_base *base;
	time_t		 started;
	uint64_t	 declined[DECLINE_COUNT];
};

const char *decline_reason_name(enum decline_reason);


/* The one entry point of every request. */
void routes_handle(struct http_request *);
/* Frees what routes keep per thread. */
void routes_thread_exit(void);

#endif
