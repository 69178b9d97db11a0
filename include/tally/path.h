/* Page path normalization. */
#ifndef TALLY_PATH_H
#define TALLY_PATH_H

#include <stddef.h>

#define PATH_MAX_LEN	512
#define PATH_OTHER	"/(other)"

enum path_error {
	PATH_OK = 0,
	PATH_EMPTY,		/* nothing usable */
	PATH_BAD_ESCAPE,	/* malformed percent-encoding */
	PATH_BAD_UTF8,
	PATH_CONTROL,		/* C0 or C1 control or DEL, after decoding */
	PATH_INVISIBLE,		/* bidi control or zero-width character */
	PATH_TOO_LONG,		/* over PATH_MAX_LEN bytes */
};

/* Normalizes a URL path, or a full URL whose path is taken: scheme,
 * host, query and fragment are dropped, the rest is percent-decoded
 * once, "//" collapsed, "." and ".." resolved, a trailing "/" dropped
 * except for "/" itself. out must hold PATH_MAX_LEN + 1 bytes. */
enum path_error path_normalize(const char *in, size_t len, char *out);
const char *path_strerror(enum path_error);
/* Whether s[0..len), a normalized (decoded) path, may be counted: valid
 * UTF-8 without controls (C0, DEL, C1), bidi controls or zero-width
 * characters. PATH_OK, PATH_BAD_UTF8, PATH_CONTROL or PATH_INVISIBLE. */
enum path_error path_check(const char *s, size_t len);

/* Writes the origin ("scheme://host[:port]", lowercased) of an absolute
 * http(s) URL into out. Returns 0, or -1 when url has none. */
int url_origin(const char *url, char *out, size_t outsz);

#endif
