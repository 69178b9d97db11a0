/* Page path normalization, and the origin of a URL. */

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tally/escape.h"
#include "tally/net.h"
#include "tally/path.h"

/* The longest encoded path looked at. Every byte of a PATH_MAX_LEN path
 * may be encoded as "%XX", and there may be some "." and ".." and "//"
 * on top; anything longer cannot be a real page's path. */
#define PATH_IN_MAX	(8 * PATH_MAX_LEN)

/* Returns the length of an "http://" or "https://" prefix (any case), or
 * 0. Only these schemes are URLs here: anything else is a path. */
static size_t
http_scheme_len(const char *s, size_t len)
{
	if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
		return 7;
	if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
		return 8;
	return 0;
}

/* Returns the length of the authority (userinfo, host, port) at s. */
static size_t
authority_len(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '?' || s[i] == '#')
			break;
	return i;
}

/*
 * The one rule for the text of a path, wherever it comes from (a hit, an
 * import, an access log): a path is shown to people, in tallyctl's
 * tables and on stats pages, so it must read as what it is. Hence valid
 * UTF-8 and nothing that utf8_hidden() names: no controls, which could
 * drive a terminal, and no bidi or zero-width characters, which make a
 * path look like another one.
 */
enum path_error
path_check(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 i, n;

	for (i = 0; i < len; i += n) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			n = 1;	/* nearly every byte of nearly every path */
			continue;
		}
		if ((n = utf8_decode(p + i, len - i, &cp)) == 0)
			return PATH_BAD_UTF8;
		/* Below U+0080 only the controls get here; then C1. */
		if (cp < 0xa0)
			return PATH_CONTROL;
		if (utf8_hidden(cp))
			return PATH_INVISIBLE;
	}
	return PATH_OK;
}

/*
 * The path is percent-decoded first and the dot segments resolved after,
 * on the decoded text: "%2e%2e" is "..", and a decoded "%2F" is a "/"
 * like any other. So no spelling of a path reaches a page that its plain
 * spelling does not, and "/a%2Fb" counts as "/a/b". Decoding happens once:
 * "%252F" is the three characters "%2F".
 */
enum path_error
path_normalize(const char *in, size_t len, char *out)
{
	char		 dec[PATH_IN_MAX + 1], res[PATH_IN_MAX + 2];
	const char	*seg, *end;
	size_t		 n, i, rlen, seglen;
	long		 dlen;
	enum path_error	 pe;

	if (in == NULL)
		return PATH_EMPTY;

	/* A full URL: skip scheme and authority. "//x/y" is a path, as
	 * location.pathname can give it, not a URL without its scheme. */
	if ((n = http_scheme_len(in, len)) > 0) {
		in += n;
		len -= n;
		n = authority_len(in, len);
		in += n;
		len -= n;
	}

	/* The query and fragment are not part of the page. */
	for (i = 0; i < len; i++)
		if (in[i] == '?' || in[i] == '#')
			break;
	len = i;

	if (len > PATH_IN_MAX)
		return PATH_TOO_LONG;
	if ((dlen = percent_decode(in, len, dec, false)) < 0)
		return PATH_BAD_ESCAPE;
	n = (size_t)dlen;

	if ((pe = path_check(dec, n)) != PATH_OK)
		return pe;

	/* Resolve segment by segment into res, which never ends in '/'.
	 * A missing leading '/' is thereby added. */
	rlen = 0;
	end = dec + n;
	for (seg = dec; seg < end; seg += seglen + 1) {
		seglen = strcspn(seg, "/");	/* dec has no NUL inside */
		if (seglen == 0 || (seglen == 1 && seg[0] == '.'))
			continue;
		if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
			/* Back to the last '/'; at the root, stay. */
			while (rlen > 0 && res[--rlen] != '/')
				;
			continue;
		}
		res[rlen++] = '/';
		memcpy(res + rlen, seg, seglen);
		rlen += seglen;
	}
	if (rlen == 0)
		res[rlen++] = '/';
	if (rlen > PATH_MAX_LEN)
		return PATH_TOO_LONG;
	memcpy(out, res, rlen);
	out[rlen] = '\0';
	return PATH_OK;
}

const char *
path_strerror(enum path_error e)
{
	switch (e) {
	case PATH_OK:
		return "ok";
	case PATH_EMPTY:
		return "empty path";
	case PATH_BAD_ESCAPE:
		return "malformed percent-encoding";
	case PATH_BAD_UTF8:
		return "path is not valid UTF-8";
	case PATH_CONTROL:
		return "control character in path";
	case PATH_INVISIBLE:
		return "invisible or bidi control character in path";
	case PATH_TOO_LONG:
		return "path too long";
	}
	return "invalid path";
}

/*
 * The origin as a browser serializes it in an Origin header: scheme and
 * host in lower case, the port only when it is not the scheme's default
 * (an Origin header never carries ":443" for https), userinfo dropped.
 */
int
url_origin(const char *url, char *out, size_t outsz)
{
	const char	*host, *auth, *port, *p;
	size_t		 slen, alen, hlen, i;
	unsigned long	 portnum = 0;
	bool		 https, v6;
	char		 buf[300];
	int		 w;

	if (url == NULL || (slen = http_scheme_len(url, strlen(url))) == 0)
		return -1;
	https = slen == 8;
	auth = url + slen;
	alen = authority_len(auth, strlen(auth));

	/* Drop userinfo: the host follows the last '@'. */
	host = auth;
	for (i = 0; i < alen; i++)
		if (auth[i] == '@')
			host = auth + i + 1;
	hlen = alen - (size_t)(host - auth);

	v6 = hlen > 0 && host[0] == '[';
	if (v6) {
		for (i = 1; i < hlen && host[i] != ']'; i++)
			if (!isxdigit((unsigned char)host[i]) &&
			    host[i] != ':' && host[i] != '.')
				return -1;
		if (i == hlen || i == 1)
			return -1;
		i++;	/* the ']' belongs to the host */
	} else
		for (i = 0; i < hlen && host[i] != ':'; i++)
			if (!host_name_char((unsigned char)host[i]))
				return -1;
	if (i == 0)
		return -1;

	port = NULL;
	if (i < hlen) {
		if (host[i] != ':')
			return -1;
		port = host + i + 1;
		if (port == host + hlen)
			port = NULL;	/* "host:" is "host" */
		for (p = port; p != NULL && p < host + hlen; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			portnum = portnum * 10 + (unsigned long)(*p - '0');
			if (portnum > 65535)
				return -1;
		}
		hlen = i;
	}
	if (port != NULL && portnum == (https ? 443UL : 80UL))
		port = NULL;

	if (hlen + 1 > sizeof(buf))
		return -1;
	for (i = 0; i < hlen; i++)
		buf[i] = (char)tolower((unsigned char)host[i]);
	buf[hlen] = '\0';

	if (port != NULL)
		w = snprintf(out, outsz, "%s://%s:%lu", https ? "https" :
		    "http", buf, portnum);
	else
		w = snprintf(out, outsz, "%s://%s", https ? "https" : "http",
		    buf);
	if (w < 0 || (size_t)w >= outsz)
		return -1;
	return 0;
}
