/* The SVG badge of /counter.svg. */
#ifndef TALLYD_BADGE_H
#define TALLYD_BADGE_H

#include <stddef.h>
#include <stdint.h>

#include "tally/buf.h"

struct badge_item {
	const char *label;	/* valid UTF-8, at most 64 characters */
	uint64_t value;
};
/* A flat SVG badge, one label/value pair per item, sized to its text,
 * its numbers grouped as locale (a valid language tag) writes them. */
void render_badge_svg(struct buf *, const struct badge_item *, size_t n,
    const char *locale);

#endif
