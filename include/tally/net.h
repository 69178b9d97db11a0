/* Addresses and CIDR lists, for trusted proxies and admin_allow. */
#ifndef TALLY_NET_H
#define TALLY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int	 family;	/* AF_INET or AF_INET6 */
	uint8_t	 addr[16];
	int	 bits;
};

/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address. */
int cidr_parse(const char *s, struct cidr *out);
/* IPv4-mapped IPv6 addresses match IPv4 entries. */
bool cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *sa);

/* Reduces an address (16 bytes, IPv4 mapped) to the part that names one
 * client: an IPv4 address whole, an IPv6 address its /64, since one host
 * is given a whole /64. */
void addr_client_net(uint8_t addr[16]);

/* A letter, digit, '-', '.' or '_': what a host name is made of. */
bool host_name_char(unsigned char c);
/* Splits "host:port", "[v6]:port" or ":port" for listen addresses. */
int listen_parse(const char *s, char *host, size_t hostsz, char *port, size_t portsz);

#endif
