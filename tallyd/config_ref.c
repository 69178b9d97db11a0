/*
 * One lock guards the users of every configuration and which one is the
 * newest. Workers take it when they move to a new configuration, never
 * per request: a worker reads its own reference without it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tally/bots.h"
#include "tally/config.h"
#include "tally/log.h"

#include "config_ref.h"

static pthread_mutex_t ref_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config_ref *latest;

static void
config_ref_free(struct config_ref *ref)
{
	config_free(ref->cfg);
	free(ref->cfg);
	botlist_free(ref->bots);
	free(ref);
}

void
config_ref_publish(struct config *cfg)
{
	struct config_ref *ref, *old;
	bool free_old;

	if ((ref = calloc(1, sizeof(*ref))) == NULL)
		fatal("configuration");
	ref->cfg = cfg;
	if ((ref->bots = botlist_new(cfg->bots, cfg->nbots)) == NULL)
		fatal("bot list");
	pthread_mutex_lock(&ref_lock);
	old = latest;
	latest = ref;
	free_old = old != NULL && old->users == 0;
	pthread_mutex_unlock(&ref_lock);
	if (free_old)
		config_ref_free(old);
}

struct config_ref *
config_ref_hold_latest(void)
{
	struct config_ref *ref;

	pthread_mutex_lock(&ref_lock);
	ref = latest;
	ref->users++;
	pthread_mutex_unlock(&ref_lock);
	return ref;
}

struct config_ref *
config_ref_hold(struct config_ref *ref)
{
	pthread_mutex_lock(&ref_lock);
	ref->users++;
	pthread_mutex_unlock(&ref_lock);
	return ref;
}

void
config_ref_release(struct config_ref *ref)
{
	bool last;

	pthread_mutex_lock(&ref_lock);
	last = --ref->users == 0 && ref != latest;
	pthread_mutex_unlock(&ref_lock);
	if (last)
		config_ref_free(ref);
}

void
config_ref_update(struct config_ref **ref)
{
	struct config_ref *old = *ref;

	pthread_mutex_lock(&ref_lock);
	if (latest == old) {
		pthread_mutex_unlock(&ref_lock);
		return;
	}
	*ref = latest;
	latest->users++;
	pthread_mutex_unlock(&ref_lock);
	config_ref_release(old);
}

void
config_ref_shutdown(void)
{
	if (latest != NULL)
		config_ref_free(latest);
	latest = NULL;
}
