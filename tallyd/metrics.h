/* GET /metrics, and the commit-time histogram it reports. */
#ifndef TALLYD_METRICS_H
#define TALLYD_METRICS_H

#include "routes.h"

void metrics_route(struct route_ctx *);
/* One more view counted on site, for tally_views_total. */
void metrics_count_view(const char *site);
/* A commit_observer (counter.h): adds a commit's duration. */
void metrics_observe_commit(double seconds, void *arg);

#endif
