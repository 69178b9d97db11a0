/* CIDR parsing and matching, listen addresses. */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "tally/net.h"
#include "check.h"

/* cidr_list_match for an address given as text; false when it does not
 * parse. */
static bool
cidr_list_match_text(const struct cidr *list, size_t n, const char *addr)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	if (addr == NULL)
		return false;
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return cidr_list_match(list, n, (struct sockaddr *)&sin);
	}
	if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		return cidr_list_match(list, n, (struct sockaddr *)&sin6);
	}
	return false;
}

struct parse_case {
	const char	*in;
	int		 rc;
	int		 family;
	const char	*addr;	/* as inet_ntop writes it, host bits cleared */
	int		 bits;
};

static const struct parse_case parse_cases[] = {
	{ "192.0.2.0/24", 0, AF_INET, "192.0.2.0", 24 },
	{ "192.0.2.77/24", 0, AF_INET, "192.0.2.0", 24 },
	{ "192.0.2.255/25", 0, AF_INET, "192.0.2.128", 25 },
	{ "10.0.0.1", 0, AF_INET, "10.0.0.1", 32 },
	{ "10.0.0.1/32", 0, AF_INET, "10.0.0.1", 32 },
	{ "0.0.0.0/0", 0, AF_INET, "0.0.0.0", 0 },
	{ "172.31.1.2/12", 0, AF_INET, "172.16.0.0", 12 },
	{ "2001:db8::/32", 0, AF_INET6, "2001:db8::", 32 },
	{ "2001:DB8:1:2::5/48", 0, AF_INET6, "2001:db8:1::", 48 },
	{ "::1", 0, AF_INET6, "::1", 128 },
	{ "::/0", 0, AF_INET6, "::", 0 },
	{ "fe80::1/10", 0, AF_INET6, "fe80::", 10 },
	/* An IPv4-mapped network is the IPv4 network. */
	{ "::ffff:10.0.0.0/104", 0, AF_INET, "10.0.0.0", 8 },
	{ "::ffff:192.0.2.1", 0, AF_INET, "192.0.2.1", 32 },
	{ "", -1, 0, NULL, 0 },
	{ "/24", -1, 0, NULL, 0 },
	{ "192.0.2.0/", -1, 0, NULL, 0 },
	{ "192.0.2.0/33", -1, 0, NULL, 0 },
	{ "2001:db8::/129", -1, 0, NULL, 0 },
	{ "192.0.2.0/-1", -1, 0, NULL, 0 },
	{ "192.0.2.0/+8", -1, 0, NULL, 0 },
	{ "192.0.2.0/ 8", -1, 0, NULL, 0 },
	{ "192.0.2.0/8x", -1, 0, NULL, 0 },
	{ "192.0.2.0/24/1", -1, 0, NULL, 0 },
	{ "192.0.2.0/99999999999", -1, 0, NULL, 0 },
	{ "300.1.1.1", -1, 0, NULL, 0 },
	{ "192.0.2", -1, 0, NULL, 0 },
	{ " 192.0.2.0", -1, 0, NULL, 0 },
	{ "192.0.2.0 ", -1, 0, NULL, 0 },
	{ "localhost", -1, 0, NULL, 0 },
	{ "[::1]", -1, 0, NULL, 0 },
	{ "2001:db8:::1", -1, 0, NULL, 0 },
};

static void
test_parse(void)
{
	struct cidr	 c;
	char		 text[INET6_ADDRSTRLEN];
	size_t		 i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case	*pc = &parse_cases[i];

		memset(&c, 0xaa, sizeof(c));
		if (cidr_parse(pc->in, &c) != pc->rc)
			fprintf(stderr, "cidr case \"%s\"\n", pc->in);
		CHECK_INT(cidr_parse(pc->in, &c), pc->rc);
		if (pc->rc != 0)
			continue;
		CHECK_INT(c.family, pc->family);
		CHECK_INT(c.bits, pc->bits);
		CHECK(inet_ntop(c.family, c.addr, text, sizeof(text)) != NULL);
		CHECK_STR(text, pc->addr);
	}
}

static const char *const list_text[] = {
	"127.0.0.0/8",
	"::1",
	"10.0.0.0/8",
	"192.168.1.0/24",
	"192.0.2.128/25",
	"172.16.0.0/12",
	"2001:db8::/32",
	"::ffff:100.64.0.0/106",	/* 100.64.0.0/10 */
};

struct match_case {
	const char	*addr;
	bool		 want;
};

static const struct match_case match_cases[] = {
	{ "127.0.0.1", true },
	{ "127.255.255.255", true },
	{ "128.0.0.1", false },
	{ "126.255.255.255", false },
	{ "::1", true },
	{ "::2", false },
	{ "::ffff:127.0.0.1", true },
	{ "::FFFF:127.0.0.1", true },
	{ "::ffff:11.0.0.1", false },
	{ "::7f00:1", false },		/* IPv4-compatible is not mapped */
	{ "10.1.2.3", true },
	{ "11.0.0.0", false },
	{ "192.168.1.255", true },
	{ "192.168.2.1", false },
	{ "192.0.2.200", true },
	{ "192.0.2.128", true },
	{ "192.0.2.127", false },
	{ "172.31.255.255", true },
	{ "172.32.0.0", false },
	{ "172.15.255.255", false },
	{ "2001:db8:1::5", true },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true },
	{ "2001:db9::1", false },
	{ "100.100.1.1", true },
	{ "100.128.0.1", false },
	{ "::ffff:100.127.255.255", true },
	{ "garbage", false },
	{ "", false },
	{ "[::1]", false },
	{ "127.0.0.1:80", false },
	{ " 127.0.0.1", false },
};

static void
test_match(void)
{
	struct cidr		 list[sizeof(list_text) / sizeof(list_text[0])];
	struct cidr		 any4;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr_un	 sun;
	size_t			 i, n = sizeof(list) / sizeof(list[0]);

	for (i = 0; i < n; i++)
		CHECK_INT(cidr_parse(list_text[i], &list[i]), 0);

	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case	*mc = &match_cases[i];

		if (cidr_list_match_text(list, n, mc->addr) != mc->want)
			fprintf(stderr, "match case \"%s\"\n", mc->addr);
		CHECK(cidr_list_match_text(list, n, mc->addr) == mc->want);
	}
	CHECK(!cidr_list_match_text(list, n, NULL));
	CHECK(!cidr_list_match_text(list, 0, "127.0.0.1"));

	/* Socket addresses as accept() gives them. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	inet_pton(AF_INET, "10.0.0.5", &sin.sin_addr);
	CHECK(cidr_list_match(list, n, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr);
	CHECK(!cidr_list_match(list, n, (struct sockaddr *)&sin));

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.0.0.5", &sin6.sin6_addr);
	CHECK(cidr_list_match(list, n, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "::ffff:8.8.8.8", &sin6.sin6_addr);
	CHECK(!cidr_list_match(list, n, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	CHECK(cidr_list_match(list, n, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	CHECK(cidr_list_match(list, n, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "2001:db7::1", &sin6.sin6_addr);
	CHECK(!cidr_list_match(list, n, (struct sockaddr *)&sin6));

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK(!cidr_list_match(list, n, (struct sockaddr *)&sun));
	CHECK(!cidr_list_match(list, n, NULL));

	/* /0 is every address of its family, and only of it. */
	CHECK_INT(cidr_parse("0.0.0.0/0", &any4), 0);
	CHECK(cidr_list_match_text(&any4, 1, "203.0.113.9"));
	CHECK(cidr_list_match_text(&any4, 1, "::ffff:203.0.113.9"));
	CHECK(!cidr_list_match_text(&any4, 1, "2001:db8::1"));
}

struct listen_case {
	const char	*in;
	int		 rc;
	const char	*host;
	const char	*port;
};

static const struct listen_case listen_cases[] = {
	{ "127.0.0.1:8080", 0, "127.0.0.1", "8080" },
	{ "[::1]:8080", 0, "::1", "8080" },
	{ "[::]:443", 0, "::", "443" },
	{ "[2001:db8::1]:80", 0, "2001:db8::1", "80" },
	{ "[::ffff:127.0.0.1]:80", 0, "::ffff:127.0.0.1", "80" },
	{ ":8080", 0, "", "8080" },
	{ "*:8080", 0, "", "8080" },
	{ "localhost:80", 0, "localhost", "80" },
	{ "stats.example.org:65535", 0, "stats.example.org", "65535" },
	{ "0.0.0.0:0", 0, "0.0.0.0", "0" },
	{ "127.0.0.1", -1, NULL, NULL },
	{ "127.0.0.1:", -1, NULL, NULL },
	{ "localhost", -1, NULL, NULL },
	{ "8080", -1, NULL, NULL },
	{ "[::1]", -1, NULL, NULL },
	{ "[::1]:", -1, NULL, NULL },
	{ "[::1]8080", -1, NULL, NULL },
	{ "[::1:8080", -1, NULL, NULL },
	{ "::1:8080", -1, NULL, NULL },
	{ "[]:80", -1, NULL, NULL },
	{ "[host]:80", -1, NULL, NULL },
	{ "127.0.0.1:65536", -1, NULL, NULL },
	{ "127.0.0.1:99999999999", -1, NULL, NULL },
	{ "127.0.0.1:http", -1, NULL, NULL },
	{ "127.0.0.1:-1", -1, NULL, NULL },
	{ "127.0.0.1:+80", -1, NULL, NULL },
	{ "127.0.0.1:80x", -1, NULL, NULL },
	{ "127.0.0.1: 80", -1, NULL, NULL },
	{ "host name:80", -1, NULL, NULL },
	{ "a/b:80", -1, NULL, NULL },
	{ "a:b:80", -1, NULL, NULL },
	{ "", -1, NULL, NULL },
	{ ":", -1, NULL, NULL },
};

static void
test_listen(void)
{
	char	 host[64], port[8];
	size_t	 i;

	for (i = 0; i < sizeof(listen_cases) / sizeof(listen_cases[0]); i++) {
		const struct listen_case	*lc = &listen_cases[i];
		int				 rc;

		strcpy(host, "(unset)");
		strcpy(port, "(unset)");
		rc = listen_parse(lc->in, host, sizeof(host), port,
		    sizeof(port));
		if (rc != lc->rc)
			fprintf(stderr, "listen case \"%s\"\n", lc->in);
		CHECK_INT(rc, lc->rc);
		if (lc->rc == 0 && rc == 0) {
			CHECK_STR(host, lc->host);
			CHECK_STR(port, lc->port);
		}
	}
	CHECK_INT(listen_parse(NULL, host, sizeof(host), port, sizeof(port)),
	    -1);
	/* Too small for the host or the port: an error, never cut. */
	CHECK_INT(listen_parse("localhost:80", host, 9, port, sizeof(port)),
	    -1);
	CHECK_INT(listen_parse("localhost:80", host, 10, port, sizeof(port)),
	    0);
	CHECK_INT(listen_parse("localhost:8080", host, 10, port, 4), -1);
}

int
main(void)
{
	test_parse();
	test_match();
	test_listen();
	return check_done();
}
