/* Addresses and CIDR lists, for trusted proxies and admin_allow. */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tally/net.h"
#include "tally/number.h"

/* Parses 0..max as plain decimal: no sign, no space, no leading zeros
 * beyond a lone "0". Returns -1 when s is anything else. */
static long
parse_decimal(const char *s, size_t len, long max)
{
	uint64_t v;

	if (len > 1 && s[0] == '0')
		return -1;
	if (number_parse(s, len, (uint64_t)max, &v) == -1)
		return -1;
	return (long)v;
}

/* Zeroes the bits of addr after the first bits. */
static void
mask_host_bits(uint8_t *addr, size_t addrlen, int bits)
{
	size_t	 i;

	for (i = 0; i < addrlen; i++) {
		if (bits >= 8)
			bits -= 8;
		else if (bits > 0) {
			addr[i] &= (uint8_t)(0xff << (8 - bits));
			bits = 0;
		} else
			addr[i] = 0;
	}
}

static bool
is_v4mapped(const uint8_t a[16])
{
	static const uint8_t	 prefix[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

int
cidr_parse(const char *s, struct cidr *out)
{
	char		 addr[INET6_ADDRSTRLEN];
	const char	*slash;
	size_t		 alen;
	long		 bits;
	struct cidr	 c;

	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';

	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		c.bits = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		c.bits = 128;
	} else
		return -1;

	if (slash != NULL) {
		if ((bits = parse_decimal(slash + 1, strlen(slash + 1),
		    c.bits)) < 0)
			return -1;
		c.bits = (int)bits;
	}

	/* "::ffff:10.0.0.0/104" is the IPv4 network 10.0.0.0/8: store it
	 * so, then it matches both ways like any IPv4 entry. */
	if (c.family == AF_INET6 && c.bits >= 96 && is_v4mapped(c.addr)) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.bits -= 96;
	}

	mask_host_bits(c.addr, c.family == AF_INET ? 4 : 16, c.bits);
	*out = c;
	return 0;
}

static bool
prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
	size_t	 whole = (size_t)bits / 8;
	int	 rest = bits % 8;
	uint8_t	 mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static bool
match_addr(const struct cidr *list, size_t n, int family, const uint8_t *a)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (list[i].family == family &&
		    prefix_match(list[i].addr, a, list[i].bits))
			return true;
	return false;
}

bool
cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const uint8_t			*a;

	if (sa == NULL)
		return false;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		return match_addr(list, n, AF_INET,
		    (const uint8_t *)&sin->sin_addr);
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		a = sin6->sin6_addr.s6_addr;
		/* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d. */
		if (is_v4mapped(a))
			return match_addr(list, n, AF_INET, a + 12);
		return match_addr(list, n, AF_INET6, a);
	default:
		return false;	/* AF_UNIX and others: never listed */
	}
}


/* ASCII only, whatever the locale: a host name is ASCII (IDNs are in
 * punycode by now). */
bool
host_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static bool
copy_out(char *dst, size_t dstsz, const char *src, size_t len)
{
	if (len >= dstsz)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/*
 * "host:port", "[v6]:port", or ":port" and "*:port" for every address
 * (host is then ""). The port is a number, 0..65535: service names are
 * not looked up. The host is only checked for characters that cannot be
 * in a name or address; resolving it is the caller's business.
 */
int
listen_parse(const char *s, char *host, size_t hostsz, char *port,
    size_t portsz)
{
	const char	*colon, *h, *p;
	size_t		 hlen, i;

	if (s == NULL)
		return -1;
	if (s[0] == '[') {
		h = s + 1;
		if ((p = strchr(h, ']')) == NULL || p[1] != ':')
			return -1;
		hlen = (size_t)(p - h);
		if (hlen == 0)
			return -1;
		for (i = 0; i < hlen; i++)
			if (!isxdigit((unsigned char)h[i]) && h[i] != ':' &&
			    h[i] != '.')
				return -1;
		colon = p + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		h = s;
		hlen = (size_t)(colon - s);
		if (hlen == 1 && h[0] == '*')
			hlen = 0;
		for (i = 0; i < hlen; i++)
			if (!host_name_char((unsigned char)h[i]))
				return -1;	/* including a bare IPv6 ':' */
	}

	p = colon + 1;
	if (parse_decimal(p, strlen(p), 65535) < 0)
		return -1;
	if (!copy_out(host, hostsz, h, hlen) ||
	    !copy_out(port, portsz, p, strlen(p)))
		return -1;
	return 0;
}

void
addr_client_net(uint8_t addr[16])
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(addr, v4mapped, sizeof(v4mapped)) != 0)
		memset(addr + 8, 0, 8);
}
