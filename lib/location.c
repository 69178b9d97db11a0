/*
 * Store locations. The password rules are libpq's URI syntax: the
 * password is what follows the first ':' of the user information, up to
 * the '@' that ends it (an '@' inside a password is written %40), or
 * the value of a "password" parameter after '?'. Nothing of a password
 * is kept, not even its length.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tally/buf.h"
#include "tally/location.h"

#define HIDDEN	"***"

static size_t
scheme_len(const char *loc)
{
	static const char *const schemes[] = {
		"postgresql://", "postgres://",
	};
	size_t i, n;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i]);
		if (strncasecmp(loc, schemes[i], n) == 0)
			return n;
	}
	return 0;
}

bool
location_is_url(const char *loc)
{
	return loc != NULL && scheme_len(loc) > 0;
}

/* The user information "user:password@" of the authority at s: its
 * password's start and end, or false when it has none. */
static bool
userinfo_password(const char *s, const char **from, const char **to)
{
	size_t alen = strcspn(s, "/?#");
	const char *at = NULL, *p, *colon;

	for (p = s; p < s + alen; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return false;
	if ((colon = memchr(s, ':', (size_t)(at - s))) == NULL)
		return false;
	*from = colon + 1;
	*to = at;
	return true;
}

/* Appends the query string q with each password's value hidden. */
static void
query_shown(struct buf *b, const char *q)
{
	size_t n;

	while (*q != '\0') {
		n = strcspn(q, "&");
		if (n >= 9 && strncasecmp(q, "password=", 9) == 0) {
			buf_puts(b, "password=" HIDDEN);
		} else {
			buf_append(b, q, n);
		}
		q += n;
		if (*q == '&')
			buf_append(b, q++, 1);
	}
}

const char *
location_shown(char *buf, size_t len, const char *loc)
{
	const char *auth, *from, *to, *q;
	struct buf b;
	size_t n;

	if (len == 0)
		return buf;
	if (!location_is_url(loc)) {
		snprintf(buf, len, "%s", loc ? loc : "");
		return buf;
	}
	buf_init(&b);
	auth = loc + scheme_len(loc);
	buf_append(&b, loc, (size_t)(auth - loc));
	if (userinfo_password(auth, &from, &to)) {
		buf_append(&b, auth, (size_t)(from - auth));
		buf_puts(&b, HIDDEN);
		auth = to;
	}
	if ((q = strchr(auth, '?')) != NULL) {
		buf_append(&b, auth, (size_t)(q + 1 - auth));
		query_shown(&b, q + 1);
	} else {
		buf_puts(&b, auth);
	}
	n = b.len < len ? b.len : len - 1;
	memcpy(buf, b.data, n);
	buf[n] = '\0';
	if (b.len >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	buf_free(&b);
	return buf;
}
