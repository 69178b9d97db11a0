/* Page path normalization, and the origin of a URL. */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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
 * The origin of an http(s) URL as a browser serializes it in an Origin
 * header: scheme and host in lower case, an IPv6 address in its
 * canonical form, the port only when it is not the scheme's default (an
 * Origin header never carries ":443" for https). One reader for the
 * origins of hits (Origin, Referer) and of the configuration, which
 * differ only in what they let follow the host (origin_parse's callers
 * judge o->userinfo and o->rest).
 */
const char *
origin_parse(const char *url, struct origin *o)
{
	char		 v6[INET6_ADDRSTRLEN];
	struct in6_addr	 a6;
	const char	*p, *end, *at;
	size_t		 hlen, label, slen;
	unsigned long	 port = 0;

	memset(o, 0, sizeof(*o));
	if ((slen = http_scheme_len(url, strlen(url))) == 0)
		return "it must start with http:// or https://";
	o->https = slen == 8;
	p = url + slen;
	/* The host follows the last '@' of the authority. */
	end = p + authority_len(p, strlen(p));
	for (at = p; at < end; at++)
		if (*at == '@') {
			o->userinfo = true;
			p = at + 1;
		}

	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return "the IPv6 address lacks its \"]\"";
		hlen = (size_t)(end - p - 1);
		if (hlen >= sizeof(v6))
			return "bad IPv6 address";
		memcpy(v6, p + 1, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1 ||
		    inet_ntop(AF_INET6, &a6, v6, sizeof(v6)) == NULL)
			return "bad IPv6 address";
		snprintf(o->host, sizeof(o->host), "[%s]", v6);
		p = end + 1;
	} else {
		hlen = label = 0;
		for (; host_name_char((unsigned char)*p); p++) {
			if (*p == '.') {
				if (label == 0)
					return "empty label in the host name";
				label = 0;
			} else if (++label > ORIGIN_LABEL_MAX)
				return "the host name has a label over 63 "
				    "characters";
			if (hlen == ORIGIN_HOST_MAX)
				return "the host name is too long";
			o->host[hlen++] = (char)tolower((unsigned char)*p);
		}
		o->host[hlen] = '\0';
		if (hlen == 0)
			return "it has no host";
		if (label == 0)
			return "empty label in the host name";
	}

	/* "host:" is "host" (RFC 3986: the port may be empty). */
	if (*p == ':') {
		for (p++; isdigit((unsigned char)*p); p++)
			if (port <= 65535)	/* no overflow, still too big */
				port = port * 10 + (unsigned long)(*p - '0');
		if (port > 65535 || (port == 0 && isdigit((unsigned char)p[-1])) ||
		    (*p != '\0' && strchr("/?#", *p) == NULL))
			return "bad port";
		if (port == (o->https ? 443UL : 80UL))
			port = 0;
	}
	o->port = (unsigned)port;
	if (*p != '\0' && *p != '/' && *p != '?' && *p != '#') {
		if ((unsigned char)*p >= 0x80)
			return "write an international host name in its "
			    "xn-- form";
		return "bad character in the host name";
	}
	o->rest = p;
	return NULL;
}

/* Writes "scheme://host[:port]"; -1 when it does not fit. */
int
origin_format(const struct origin *o, char *out, size_t outsz)
{
	const char	*scheme = o->https ? "https" : "http";
	int		 w;

	if (o->port != 0)
		w = snprintf(out, outsz, "%s://%s:%u", scheme, o->host,
		    o->port);
	else
		w = snprintf(out, outsz, "%s://%s", scheme, o->host);
	return w < 0 || (size_t)w >= outsz ? -1 : 0;
}

int
url_origin(const char *url, char *out, size_t outsz)
{
	struct origin	 o;

	if (url == NULL || origin_parse(url, &o) != NULL)
		return -1;
	return origin_format(&o, out, outsz);
}
