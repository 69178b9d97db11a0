/*
 * Referrers, privately: of the URL a visitor came from, tally keeps the
 * host only (no scheme, port, user, path or query), and the hosts of
 * search engines and of the large social sites under one name each.
 */
#ifndef TALLY_REFERRER_H
#define TALLY_REFERRER_H

#include <stdbool.h>
#include <stddef.h>

#include "tally/path.h"
#include "tally/store.h"

#define REFERRER_NAME_MAX	STORE_REFERRER_MAX

/*
 * The name the referrer whose origin is o is kept under: the name of
 * its group ("Google"), else its host without a leading "www.". NULL
 * when it is not kept: an address (it could be a visitor's own
 * machine) or a name without a dot (localhost, an intranet's names).
 * out must hold REFERRER_NAME_MAX + 1 bytes.
 */
const char *referrer_name(const struct origin *o, char *out);
/* Whether the hosts a and b are one site's: the same once a leading
 * "www." is dropped. */
bool referrer_same_site(const char *a, const char *b);
/* Whether name is one referrer_name can give, or STORE_REFERRER_OTHER:
 * what check and import hold a stored or imported name to. */
bool referrer_name_valid(const char *name);

#endif
