/*
 * Where the store is: a directory (LMDB) or a PostgreSQL URL. A URL may
 * carry a password, which is never shown: logs and messages print the
 * location through location_shown().
 */
#ifndef TALLY_LOCATION_H
#define TALLY_LOCATION_H

#include <stdbool.h>
#include <stddef.h>

/* Whether loc is a postgresql:// or postgres:// URL. */
bool location_is_url(const char *loc);
/* loc as it may be shown: a URL's password (in "user:password@" or a
 * "password=" parameter) replaced by "***"; a directory as it is.
 * Returns buf, which a location too long for ends in "...". */
const char *location_shown(char *buf, size_t len, const char *loc);

#endif
