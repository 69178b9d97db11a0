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
enum badge_style {
	BADGE_FLAT,
	BADGE_FLAT_SQUARE,
	BADGE_PLASTIC,
	BADGE_FOR_THE_BADGE,
};

#define BADGE_COLOR_LEN	8	/* "#rrggbb" */

/* How a badge looks: its style= and its color= and labelColor=. */
struct badge_look {
	enum badge_style style;
	char	 color[BADGE_COLOR_LEN];	/* of the numbers' boxes */
	char	 label_color[BADGE_COLOR_LEN];
};

/* flat, blue numbers on grey labels */
void badge_look_default(struct badge_look *);
/* "flat", "flat-square", "plastic", "for-the-badge"; -1 otherwise. */
int badge_style_parse(const char *, enum badge_style *);
/* A colour name of shields.io (green, brightgreen, ...) or a few of
 * CSS, or hex (#abc, #aabbcc, with or without #), as "#rrggbb"; -1 for
 * anything else. */
int badge_color_parse(const char *, char out[BADGE_COLOR_LEN]);
/* An SVG badge, one label/value pair per item, sized to its text, its
 * numbers grouped as locale (a valid language tag) writes them. */
void render_badge_svg(struct buf *, const struct badge_item *, size_t n,
    const char *locale, const struct badge_look *);

#endif
