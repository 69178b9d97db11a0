/* What tallyd's modules share: the running configuration and state. */
#ifndef TALLY_DAEMON_H
#define TALLY_DAEMON_H

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

/* A serving thread: its own event loop, listeners and store view. */
struct worker {
	struct daemon	*d;
	struct event_base *base;
	struct http_server *server;
	struct store_view *view;
	int		 index;
};

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
const struct config *daemon_config(struct daemon *);

/* The one entry point of every request. */
void routes_handle(struct http_request *);

#endif
