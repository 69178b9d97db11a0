/*
 * The stats page (/stats, /stats/SITE, as HTML or JSON) and the
 * embeddable sparkline /chart.svg.
 */
#ifndef TALLYD_STATS_H
#define TALLYD_STATS_H

#include "daemon.h"
#include "routes.h"

void route_stats(struct route_ctx *);
void route_chart_svg(struct route_ctx *);

/* The render thread of the stats page: started once the store is open,
 * stopped while the workers' loops still run, so that what it has left
 * is answered (503). */
void stats_renderer_start(struct daemon *);
void stats_renderer_stop(struct daemon *);
/* What a worker needs to take finished pages back: made before its loop
 * runs, freed after it has stopped. */
void stats_worker_init(struct worker *);
void stats_worker_free(struct worker *);

#endif
