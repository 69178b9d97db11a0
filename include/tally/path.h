/* Page path normalization. */
#ifndef TALLY_PATH_H
#define TALLY_PATH_H

#include <stdbool.h>
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

#define ORIGIN_HOST_MAX		253	/* a DNS name's longest text */
#define ORIGIN_LABEL_MAX	63
/* "https://" + a host or "[v6]" + ":65535" + NUL */
#define ORIGIN_MAX		(8 + ORIGIN_HOST_MAX + 6 + 1)

/* The origin at the start of an http(s) URL, in normal form. */
struct origin {
	bool		 https;
	bool		 userinfo;	/* "user[:password]@" preceded the host */
	char		 host[ORIGIN_HOST_MAX + 1];	/* lowercased; "[v6]" */
	unsigned	 port;		/* 0: the scheme's default */
	const char	*rest;		/* after the port: "", "/...", "?...", "#..." */
};
/* Reads scheme, host and port. Returns NULL, or what is wrong. */
const char *origin_parse(const char *url, struct origin *);
/* Writes "scheme://host[:port]"; -1 when it does not fit in outsz. */
int origin_format(const struct origin *, char *out, size_t outsz);
/* Writes the origin of an absolute http(s) URL into out, the userinfo
 * and what follows the authority dropped. Returns 0, or -1 when url has
 * none. */
int url_origin(const char *url, char *out, size_t outsz);

#endif
