/*
 * The running configuration, shared by threads: a reload publishes a
 * new one, and each worker moves to it between two requests. A request
 * that waits for its commit holds the configuration it began with, so
 * that its site and limits stay valid until it is answered.
 */
#ifndef TALLYD_CONFIG_REF_H
#define TALLYD_CONFIG_REF_H

#include "tally/config.h"

/* A configuration and the bot list made from it; freed by the last of
 * its users once a newer one is published. */
struct config_ref {
	struct config	*cfg;
	struct botlist	*bots;
	int		 users;
};

/* Makes cfg the newest configuration, and frees the one it replaces if
 * nobody holds it. */
void config_ref_publish(struct config *cfg);
/* Another user of the newest configuration. */
struct config_ref *config_ref_hold_latest(void);
/* Another user of ref, and the end of a use. */
struct config_ref *config_ref_hold(struct config_ref *ref);
void config_ref_release(struct config_ref *ref);
/* Moves *ref to the newest configuration, releasing the one it held. */
void config_ref_update(struct config_ref **ref);
/* At exit, once every user is gone: frees the newest. */
void config_ref_shutdown(void);

#endif
