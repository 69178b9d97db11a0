/* Answers rendered for clients of both programs: the counts JSON, and
 * numbers with thousands separators. */
#ifndef TALLY_RENDER_H
#define TALLY_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/buf.h"
#include "tally/store.h"

/* The counts JSON of doc/http.md; reason is NULL when counted. */
void render_counts_json(struct buf *, const char *site, const char *path,
    int day, const struct page_counts *, bool counted, const char *reason);

/* Thousands separators: 254014 -> "254,014". */
void format_thousands(char *out, size_t outsz, uint64_t v);

#endif
