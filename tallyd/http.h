/*
 * A small HTTP/1.1 server on libevent bufferevents and http-parser, made
 * for tally's needs: strict limits, JSON errors for everything it
 * rejects, keep-alive and pipelining, and answers that may be given later
 * (strict durability answers once the hit is on disk).
 */
#ifndef TALLYD_HTTP_H
#define TALLYD_HTTP_H

#include <stdbool.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr;
struct event_base;
struct http_server;
struct http_conn;

#define HTTP_MAX_URI		2048
#define HTTP_MAX_HEADER_BYTES	8192
#define HTTP_MAX_HEADERS	64
#define HTTP_MAX_BODY		4096

enum http_verb {
	HTTP_VERB_GET,
	HTTP_VERB_HEAD,
	HTTP_VERB_POST,
	HTTP_VERB_OPTIONS,
	HTTP_VERB_OTHER,
};

struct http_header {
	const char *name;	/* lowercased */
	const char *value;	/* surrounding whitespace trimmed */
	size_t	 name_len;
};

struct http_request {
	struct http_conn *conn;
	enum http_verb verb;
	const char *method;	/* as sent */
	const char *path;	/* target up to '?', still percent-encoded */
	const char *query;	/* after '?', or NULL */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t	 nheaders;
	const char *body;	/* NUL-terminated */
	size_t	 body_len;
	const struct sockaddr *peer;
	void	*server_arg;	/* given to http_server_new */
};

struct http_limits {
	long	idle_timeout_ms;
	long	max_connections;	/* per server; idle ones make room */
	long	max_per_address;	/* of all servers; 0: no limit */
	const struct cidr *exempt;	/* peers spared that limit (copied) */
	size_t	nexempt;
	bool	access_log;	/* a log line per answer: no address, no UA */
};

/* Called once per request. It answers with http_respond, now or later;
 * the connection reads no further request until then. */
typedef void (*http_handler)(struct http_request *);

struct http_server *http_server_new(struct event_base *, const struct http_limits *,
    http_handler, void *arg);
void http_server_free(struct http_server *);
/* Binds and listens on every address of "host:port" ("[v6]:port"),
 * without SO_REUSEPORT: a second daemon on the address fails with
 * "address in use". Port 0 is one port for all of them. Returns how many
 * sockets it put in fds, or -1. */
int http_listen_open(const char *addr, int *fds, size_t max, char *err,
    size_t errlen);
/* "host:port" the listening socket is bound to, for the log. */
void http_listen_name(int fd, char *out, size_t outsz);
/* Serves a listening socket: one made by http_listen_open or passed by
 * the service manager. Several servers may serve one socket, each with
 * a dup of it. */
int http_server_adopt(struct http_server *, int fd, char *err, size_t errlen);
void http_server_close_listeners(struct http_server *);

/* The first line of a header, or NULL. */
const char *http_header_getn(const struct http_request *, const char *,
    size_t);
/* With a literal name the compiler measures it: lookups compare lengths
 * before bytes. */
#define http_header_get(r, lname) \
	http_header_getn((r), (lname), strlen(lname))
/* All lines of a list header joined with ", " in their order: the line
 * itself when there is one, else written to buf, which
 * HTTP_JOINED_MAX bytes always suffice for. NULL when absent (or
 * when buf is too small). */
#define HTTP_JOINED_MAX	(HTTP_MAX_HEADER_BYTES + 2 * HTTP_MAX_HEADERS + 1)
const char *http_header_join(const struct http_request *, const char *lname,
    char *buf, size_t bufsz);

/* headers: extra "Name: value\r\n" lines, or NULL. HEAD answers get the
 * headers alone. */
void http_respond(struct http_request *, int status, const char *content_type,
    const char *headers, const void *body, size_t len);
/*
 * Keeps the next answer to r, made by http_respond as usual, until
 * http_release: then it is sent, or when !ok a 503 with message is
 * instead. Strict durability answers a hit once it is on disk this way,
 * with the answer made when the hit was counted.
 */
void http_hold(struct http_request *);
void http_release(struct http_request *, bool ok, const char *message);
/* {"error":"message"} with the status. */
void http_respond_error(struct http_request *, int status, const char *message);
void http_respond_error_headers(struct http_request *, int status,
    const char *message, const char *headers);

/* Counts of answers by status for /metrics. */
struct http_status_count {
	int	 status;
	uint64_t count;
};
size_t http_status_counts(struct http_status_count *, size_t max);

#endif
