/* Answers rendered for clients of both programs: the counts JSON, and
 * numbers with thousands separators, per locale. */
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
/* The same for a language tag, as browsers write it: "de" gives
 * "254.014", "fr" "254 014"; an unknown tag its language's, else en's.
 * A separator may take 3 bytes: 64 bytes hold any number. */
void format_number(char *out, size_t outsz, uint64_t v, const char *locale);
/* Whether tag has the form of a language tag (de, de-CH, sr-Latn-RS):
 * [A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})* */
bool locale_valid(const char *tag);

#endif
