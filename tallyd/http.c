/*
 * HTTP/1.1 on bufferevents, parsed by http-parser (the parser node.js
 * used for years). evhttp answers limit violations with its own HTML
 * pages and costs a third of the request budget; this layer gives tally
 * JSON errors for everything, exact limits, and nothing it does not use.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>

#include "tally/buf.h"
#include "tally/escape.h"
#include "tally/log.h"
#include "tally/net.h"

#include "http.h"

#define MAX_LISTENERS	32
#define HDR_SPACE	(HTTP_MAX_URI + HTTP_MAX_HEADER_BYTES + 64)
#define ACCEPT_BACKOFF_MS 100
#define REQUEST_TIMEOUT_MS 10000
/* A client that pipelines without reading gets no more answers queued
 * than this; reading resumes once they are sent. */
#define OUTPUT_LIMIT	(64 * 1024)
/* Connections the kernel queues before tallyd accepts them: a burst of
 * new clients waits there rather than being refused. Linux caps it at
 * net.core.somaxconn (4096 since 5.4). */
#define LISTEN_BACKLOG	65535

enum hstate { H_NONE, H_FIELD, H_VALUE };

struct http_conn {
	TAILQ_ENTRY(http_conn) entry;
	TAILQ_ENTRY(http_conn) idle_entry;
	bool		 idle;		/* kept alive, waiting for a request */
	bool		 answered;	/* has answered a request */
	bool		 has_slot;	/* holds one of its address's slots */
	unsigned char	 addr_key[16];
	struct http_server *srv;
	struct bufferevent *bev;
	http_parser	 parser;
	struct sockaddr_storage peer;
	struct http_request req;

	size_t		 hdr_len;
	size_t		 url_len;
	size_t		 header_bytes;
	enum hstate	 hstate;
	size_t		 body_len;
	bool		 saw_length;
	bool		 saw_encoding;
	bool		 bad_encoding;	/* not exactly one "chunked" */
	bool		 url_done;
	bool		 last_was_cr;	/* the last byte scanned was CR */
	size_t		 scanned;	/* input bytes already scanned for CR */
	const char	*chunk_start;	/* of the bytes being parsed */

	int		 error_status;	/* a limit was hit: answer and close */
	const char	*error_message;
	bool		 waiting;	/* handler has not answered yet */
	bool		 processing;
	bool		 closing;
	bool		 dead;		/* the peer went away */
	bool		 eof;		/* the peer has sent all it will */
	/* An answer made but kept until http_release (strict: until the
	 * hit is on disk), with what the log and the metrics need. */
	bool		 hold;		/* the next answer is kept */
	bool		 held;		/* one is kept in held_bytes */
	int		 held_status;
	size_t		 held_body;
	char		*held_bytes;
	size_t		 held_len;
	size_t		 held_cap;
	bool		 keep_alive;
	bool		 in_message;	/* a request has begun, not ended */
	struct timeval	 begun;		/* when it began */
	struct timespec	 started;	/* for the access log */

	/* The rest, most of the struct, is not zeroed at accept: each
	 * request writes what it reads. */
#define CONN_ZEROED	offsetof(struct http_conn, hdr)
	/* The target and header strings of the request being read, NUL
	 * separated; pointers into it stay valid until the answer. */
	char		 hdr[HDR_SPACE];
	size_t		 name_off[HTTP_MAX_HEADERS];
	size_t		 value_off[HTTP_MAX_HEADERS];
	char		 body[HTTP_MAX_BODY + 1];
};

struct http_server {
	struct event_base *base;
	struct http_limits limits;
	http_handler	 handler;
	void		*arg;
	struct evconnlistener *listeners[MAX_LISTENERS];
	size_t		 nlisteners;
	bool		 accepting;
	struct event	*resume;	/* re-enables accepting after EMFILE */
	size_t		 nconns;
	TAILQ_HEAD(, http_conn) conns;
	/* Connections waiting for a request, longest waiting first: at
	 * max_connections the first makes room for a new client. */
	TAILQ_HEAD(, http_conn) idle;
	struct cidr	*exempt;	/* peers the per-address limit spares */
	size_t		 nexempt;
};

/*
 * Open connections per client address, across the servers of all
 * threads: an IPv4 address, or an IPv6 /64, the block one client
 * usually holds. Taken at accept and given back at close, so a lock is
 * cheap enough.
 */
#define ADDR_BUCKETS	1024

struct addr_slots {
	struct addr_slots *next;
	unsigned char	 key[16];
	long		 count;
};

static pthread_mutex_t addr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr_slots *addr_buckets[ADDR_BUCKETS];

static uint64_t status_counts[600];

static int on_message_begin(http_parser *);
static int on_url(http_parser *, const char *, size_t);
static int on_header_field(http_parser *, const char *, size_t);
static int on_header_value(http_parser *, const char *, size_t);
static int on_headers_complete(http_parser *);
static int on_body(http_parser *, const char *, size_t);
static int on_message_complete(http_parser *);

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void conn_process(struct http_conn *);
static void conn_free(struct http_conn *);
static void conn_idle(struct http_conn *, bool);
static void server_accepting(struct http_server *, bool);

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

static size_t
status_line(char *out, int status)
{
	const char *text = status_text(status);
	size_t n, tl = strlen(text);

	memcpy(out, "HTTP/1.1 ", 9);
	n = 9 + u64_text(out + 9, (uint64_t)status);
	out[n++] = ' ';
	memcpy(out + n, text, tl);
	n += tl;
	out[n++] = '\r';
	out[n++] = '\n';
	return n;
}

/* The Date header, formatted once a second; always 37 bytes. */
static const char *
date_header(void)
{
	static __thread time_t last;
	static __thread char line[64];
	time_t now = time(NULL);
	struct tm tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(line, sizeof(line),
		    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		last = now;
	}
	return line;
}

static int
conn_fail(struct http_conn *c, int status, const char *message)
{
	if (c->error_status == 0) {
		c->error_status = status;
		c->error_message = message;
	}
	return -1;	/* stops the parser */
}

static int
hdr_append(struct http_conn *c, const char *at, size_t len, bool lower)
{
	size_t i;

	if (c->hdr_len + len + 1 >= sizeof(c->hdr))
		return -1;
	if (lower) {
		for (i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)at[i];
			c->hdr[c->hdr_len + i] =
			    (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : (char)ch;
		}
	} else {
		memcpy(c->hdr + c->hdr_len, at, len);
	}
	c->hdr_len += len;
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	c->hdr_len = 0;
	c->url_len = 0;
	c->header_bytes = 0;
	c->hstate = H_NONE;
	c->req.nheaders = 0;
	c->body_len = 0;
	c->saw_length = false;
	c->saw_encoding = false;
	c->bad_encoding = false;
	c->url_done = false;
	c->req.path = NULL;
	c->req.query = NULL;
	c->req.method = NULL;
	c->in_message = true;
	conn_idle(c, false);
	event_base_gettimeofday_cached(c->srv->base, &c->begun);
	if (c->srv->limits.access_log)
		clock_gettime(CLOCK_MONOTONIC, &c->started);
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	c->url_len += len;
	if (c->url_len > HTTP_MAX_URI)
		return conn_fail(c, 414, "URI too long");
	return hdr_append(c, at, len, false);
}

/* Ends the header whose value was being read. */
static int
header_end(struct http_conn *c)
{
	const char *name;
	size_t nlen;

	if (c->hstate != H_VALUE)
		return 0;
	c->hdr[c->hdr_len++] = '\0';
	name = c->hdr + c->name_off[c->req.nheaders];
	nlen = c->value_off[c->req.nheaders] - c->name_off[c->req.nheaders] -
	    1;
	if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
		if (c->saw_length)
			return conn_fail(c, 400, "duplicate Content-Length");
		c->saw_length = true;
	} else if (nlen == 17 && memcmp(name, "transfer-encoding", 17) == 0) {
		/* Anything but one plain "chunked" is how a front proxy and
		 * tally could come to frame a request differently. */
		const char *v = c->hdr + c->value_off[c->req.nheaders];
		while (*v == ' ' || *v == '\t')
			v++;
		if (c->saw_encoding || strncasecmp(v, "chunked", 7) != 0 ||
		    v[7 + strspn(v + 7, " \t")] != '\0')
			c->bad_encoding = true;
		c->saw_encoding = true;
	}
	c->req.nheaders++;
	c->hstate = H_NONE;
	return 0;
}

/* RFC 9110 token characters; http-parser, built lenient, lets a space
 * through, and "Bad Name" must not become a header. One lookup a byte:
 * letters, digits and !#$%&'*+-.^_`|~. */
static const unsigned char token_char[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static bool
is_token(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!token_char[(unsigned char)s[i]])
			return false;
	return true;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (!is_token(at, len))
		return conn_fail(c, 400, "malformed header name");
	if (!c->url_done) {
		c->hdr[c->hdr_len++] = '\0';	/* ends the target */
		c->url_done = true;
	}
	if (header_end(c) == -1)
		return -1;
	c->header_bytes += len;
	if (c->header_bytes > HTTP_MAX_HEADER_BYTES)
		return conn_fail(c, 431, "request headers too large");
	if (c->hstate == H_NONE) {
		if (c->req.nheaders == HTTP_MAX_HEADERS)
			return conn_fail(c, 431, "too many request headers");
		c->name_off[c->req.nheaders] = c->hdr_len;
		c->hstate = H_FIELD;
	}
	if (hdr_append(c, at, len, true) == -1)
		return conn_fail(c, 431, "request headers too large");
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	c->header_bytes += len;
	if (c->header_bytes > HTTP_MAX_HEADER_BYTES)
		return conn_fail(c, 431, "request headers too large");
	/* A value that starts a line is a folded line (obs-fold), which
	 * the lenient parser would glue on; proxies may not. */
	if (len > 0) {
		const char *q = at;

		while (q > c->chunk_start && (q[-1] == ' ' || q[-1] == '\t'))
			q--;
		if (q > c->chunk_start && (q[-1] == '\n' || q[-1] == '\r'))
			return conn_fail(c, 400, "folded header line");
	}
	if (c->hstate == H_FIELD) {
		c->hdr[c->hdr_len++] = '\0';
		c->value_off[c->req.nheaders] = c->hdr_len;
		c->hstate = H_VALUE;
	}
	if (hdr_append(c, at, len, false) == -1)
		return conn_fail(c, 431, "request headers too large");
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static enum http_verb
verb_of(unsigned int method)
{
	switch (method) {
	case HTTP_GET: return HTTP_VERB_GET;
	case HTTP_HEAD: return HTTP_VERB_HEAD;
	case HTTP_POST: return HTTP_VERB_POST;
	case HTTP_OPTIONS: return HTTP_VERB_OPTIONS;
	default: return HTTP_VERB_OTHER;
	}
}

static int
on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_request *r = &c->req;
	char *target, *q;
	size_t i;

	if (c->url_len == 0)
		return conn_fail(c, 400, "malformed request");
	/* HTTP/0.9 has no headers to check and no status to answer. */
	if (p->http_major != 1)
		return conn_fail(c, 400, "unsupported HTTP version");
	if (!c->url_done) {
		c->hdr[c->hdr_len++] = '\0';	/* target, no headers */
		c->url_done = true;
	}
	if (header_end(c) == -1)
		return -1;
	if (c->hstate == H_FIELD)
		return conn_fail(c, 400, "malformed header");
	/* Both framings at once is how requests are smuggled. */
	if (c->saw_length && c->saw_encoding)
		return conn_fail(c, 400,
		    "both Content-Length and Transfer-Encoding");
	if (c->bad_encoding)
		return conn_fail(c, 400, "unsupported Transfer-Encoding");
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > HTTP_MAX_BODY)
		return conn_fail(c, 413, "request body too large");

	target = c->hdr;
	target[c->url_len] = '\0';
	for (i = 0; i < c->url_len; i++) {
		unsigned char ch = (unsigned char)target[i];
		if (ch < 0x21 || ch == 0x7f)
			return conn_fail(c, 400, "malformed request target");
	}
	r->path = target;
	r->query = NULL;
	if ((q = strchr(target, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	if ((q = strchr(target, '#')) != NULL)
		*q = '\0';
	for (i = 0; i < r->nheaders; i++) {
		r->headers[i].name = c->hdr + c->name_off[i];
		r->headers[i].name_len = c->value_off[i] - c->name_off[i] - 1;
		r->headers[i].value = trim(c->hdr + c->value_off[i]);
	}
	r->verb = verb_of(p->method);
	r->method = http_method_str(p->method);
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (c->body_len + len > HTTP_MAX_BODY)
		return conn_fail(c, 413, "request body too large");
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	c->body[c->body_len] = '\0';
	c->req.body = c->body;
	c->req.body_len = c->body_len;
	c->keep_alive = http_should_keep_alive(p);
	c->in_message = false;
	/* One request at a time: the rest of a pipeline waits its turn. */
	http_parser_pause(p, 1);
	return 0;
}

const char *
http_header_getn(const struct http_request *r, const char *lname,
    size_t len)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (r->headers[i].name_len == len &&
		    memcmp(r->headers[i].name, lname, len) == 0)
			return r->headers[i].value;
	return NULL;
}

/* RFC 9110 5.3: the lines of a list header are one list, in order. */
const char *
http_header_join(const struct http_request *r, const char *lname,
    char *buf, size_t bufsz)
{
	const char *first = NULL;
	size_t i, n = 0, len;

	for (i = 0; i < r->nheaders; i++) {
		if (strcmp(r->headers[i].name, lname) != 0)
			continue;
		if (first == NULL) {
			first = r->headers[i].value;
			continue;
		}
		if (n == 0) {
			if ((len = strlen(first)) >= bufsz)
				return NULL;
			memcpy(buf, first, len);
			n = len;
		}
		len = strlen(r->headers[i].value);
		if (n + 2 + len >= bufsz)
			return NULL;
		memcpy(buf + n, ", ", 2);
		memcpy(buf + n + 2, r->headers[i].value, len);
		n += 2 + len;
	}
	if (n == 0)
		return first;
	buf[n] = '\0';
	return buf;
}

/* Method, path (no query: it can carry a referrer), status, bytes and
 * time taken. Never the client's address or User-Agent. */
static void
access_log(struct http_request *r, int status, size_t len)
{
	struct http_conn *c = r->conn;
	struct timespec now;
	double ms;

	char path[4 * 200 + 1];
	const unsigned char *p;
	size_t n = 0, seq;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - c->started.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - c->started.tv_nsec) / 1e6;
	/* The log stays UTF-8 text: other bytes are written as \xHH. */
	for (p = (const unsigned char *)(r->path ? r->path : "-");
	    *p && n < sizeof(path) - 5; p += seq) {
		seq = 1;
		if (*p >= 0x80) {
			seq = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
			if (strnlen((const char *)p, seq) < seq ||
			    !utf8_valid((const char *)p, seq))
				seq = 1;
			else {
				memcpy(path + n, p, seq);
				n += seq;
				continue;
			}
		}
		if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			n += (size_t)snprintf(path + n, 5, "\\x%02x", *p);
		else
			path[n++] = (char)*p;
	}
	path[n] = '\0';
	log_info("access: %s %s %d %zu %.3fms",
	    r->method ? r->method : "-", path, status, len, ms);
}

/* Copies len bytes of src to p; returns the end. */
static char *
put(char *p, const void *src, size_t len)
{
	if (len > 0)
		memcpy(p, src, len);
	return p + len;
}

/*
 * Sends what it can of the answer straight to the socket, as nginx does:
 * no write event to add and delete, no callback when it has gone. Only
 * when nothing else is queued before it, and no further request waits
 * in the input (a pipeline's answers go out together, in one write, from
 * the output buffer). Returns the bytes sent; the rest goes through the
 * output buffer, and so does any error, for the bufferevent to find.
 */
static size_t
send_now(struct http_conn *c, const struct iovec *iov, int n)
{
	ssize_t sent;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return 0;
	do
		sent = writev(bufferevent_getfd(c->bev), iov, n);
	while (sent == -1 && errno == EINTR);
	return sent > 0 ? (size_t)sent : 0;
}

/* Copies the answer in iov to where it is kept until http_release. */
static void
keep(struct http_conn *c, const struct iovec *iov, int n, size_t total)
{
	char *p;
	int i;

	if (total > c->held_cap) {
		if ((p = realloc(c->held_bytes, total)) == NULL)
			fatal("answer of %zu bytes", total);
		c->held_bytes = p;
		c->held_cap = total;
	}
	for (p = c->held_bytes, i = 0; i < n; i++)
		p = put(p, iov[i].iov_base, iov[i].iov_len);
	c->held_len = total;
}

/*
 * Sends an answer (total bytes in iov) and goes on with the connection:
 * the next request of a pipeline, or closing it. What cannot be written
 * at once is written into the output in one piece, for the bufferevent
 * to send: each evbuffer_add of a piece costs as much as copying it.
 */
static void
deliver(struct http_conn *c, int status, size_t body_len,
    const struct iovec *iov, int n, size_t total)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;
	size_t sent;
	char *p;
	int i;

	if (status >= 100 && status < 600)
		__atomic_fetch_add(&status_counts[status], 1, __ATOMIC_RELAXED);
	sent = send_now(c, iov, n);
	if (sent < total) {
		if (evbuffer_reserve_space(out, (ev_ssize_t)(total - sent), &v,
		    1) != 1)
			fatalx("answer of %zu bytes: out of memory", total);
		p = v.iov_base;
		for (i = 0; i < n; i++) {
			size_t skip = sent < iov[i].iov_len ? sent :
			    iov[i].iov_len;

			p = put(p, (const char *)iov[i].iov_base + skip,
			    iov[i].iov_len - skip);
			sent -= skip;
		}
		v.iov_len = (size_t)(p - (char *)v.iov_base);
		evbuffer_commit_space(out, &v, 1);
	}

	if (c->srv->limits.access_log)
		access_log(&c->req, status, body_len);
	c->waiting = false;
	if (c->closing) {
		bufferevent_disable(c->bev, EV_READ);
		/* All sent: nothing left for a write event to finish.
		 * Inside conn_process, it frees the connection itself. */
		if (!c->processing && evbuffer_get_length(out) == 0)
			conn_free(c);
		return;	/* else freed once the answer is written */
	}
	/* Inside conn_process reading was never turned off: it goes on
	 * with the next request itself. A connection that waited for its
	 * answer has reading off only if more came in meanwhile. */
	if (!c->processing) {
		if (!(bufferevent_get_enabled(c->bev) & EV_READ) && !c->eof)
			bufferevent_enable(c->bev, EV_READ);
		conn_process(c);
	}
}

void
http_respond(struct http_request *r, int status, const char *content_type,
    const char *headers, const void *body, size_t len)
{
	struct http_conn *c = r->conn;
	struct iovec iov[4];
	char head[512], *p;
	size_t n, ctlen, total;

	if (c->dead) {
		c->waiting = false;
		conn_free(c);
		return;
	}
	if (!c->keep_alive || c->error_status)
		c->closing = true;
	c->answered = true;
	/* Assembled by hand: snprintf cost more than the parser. */
	n = status_line(head, status);
	memcpy(head + n, date_header(), 37);
	n += 37;
	if (status != 204 && status != 304) {
		memcpy(head + n, "Content-Length: ", 16);
		n += 16;
		n += u64_text(head + n, len);
		head[n++] = '\r';
		head[n++] = '\n';
	}
	/* Content types are tally's own, a few dozen bytes. */
	ctlen = content_type ? strlen(content_type) : 0;
	if (ctlen > sizeof(head) - n - 14 - 2 - 19)
		fatalx("%s: content type of %zu bytes", __func__, ctlen);
	if (content_type) {
		p = put(head + n, "Content-Type: ", 14);
		p = put(p, content_type, ctlen);
		p = put(p, "\r\n", 2);
		n = (size_t)(p - head);
	}
	if (c->closing)
		n = (size_t)(put(head + n, "Connection: close\r\n", 19) - head);
	iov[0].iov_base = head;
	iov[0].iov_len = n;
	iov[1].iov_base = (void *)(headers ? headers : "");
	iov[1].iov_len = headers ? strlen(headers) : 0;
	iov[2].iov_base = (void *)"\r\n";
	iov[2].iov_len = 2;
	iov[3].iov_base = (void *)body;
	iov[3].iov_len = r->verb != HTTP_VERB_HEAD ? len : 0;
	total = iov[0].iov_len + iov[1].iov_len + 2 + iov[3].iov_len;
	if (c->hold) {
		/* Still waiting: nothing is read or sent until released. */
		keep(c, iov, 4, total);
		c->hold = false;
		c->held = true;
		c->held_status = status;
		c->held_body = len;
		return;
	}
	deliver(c, status, len, iov, 4, total);
}

void
http_hold(struct http_request *r)
{
	r->conn->hold = true;
}

void
http_release(struct http_request *r, bool ok, const char *message)
{
	struct http_conn *c = r->conn;
	struct iovec iov;

	if (!c->held)
		fatalx("%s: no answer is kept", __func__);
	c->held = false;
	if (c->dead) {
		c->waiting = false;
		conn_free(c);
		return;
	}
	if (!ok) {
		http_respond_error(r, 503, message);
		return;
	}
	iov.iov_base = c->held_bytes;
	iov.iov_len = c->held_len;
	deliver(c, c->held_status, c->held_body, &iov, 1, c->held_len);
}

void
http_respond_error_headers(struct http_request *r, int status,
    const char *message, const char *headers)
{
	struct buf b, h;

	buf_init(&b);
	buf_init(&h);
	buf_puts(&b, "{\"error\":\"");
	json_escape(&b, message, strlen(message));
	buf_puts(&b, "\"}\n");
	buf_puts(&h, "Cache-Control: no-store\r\n");
	if (headers)
		buf_puts(&h, headers);
	http_respond(r, status, "application/json", h.data, b.data, b.len);
	buf_free(&h);
	buf_free(&b);
}

void
http_respond_error(struct http_request *r, int status, const char *message)
{
	http_respond_error_headers(r, status, message, NULL);
}

size_t
http_status_counts(struct http_status_count *out, size_t max)
{
	size_t n = 0;
	int s;

	for (s = 100; s < 600 && n < max; s++) {
		uint64_t v = __atomic_load_n(&status_counts[s], __ATOMIC_RELAXED);
		if (v) {
			out[n].status = s;
			out[n].count = v;
			n++;
		}
	}
	return n;
}

/* A CR must be followed by LF: the lenient parser would take a lone CR
 * as the end of a line, where a proxy in front may not. Bodies tally
 * accepts (JSON, forms) have no raw CR either. */
static bool
has_bare_cr(struct http_conn *c, const char *p, size_t len)
{
	const char *cr, *end = p + len;

	if (c->scanned >= len)
		return false;
	p += c->scanned;
	if (c->last_was_cr && p[0] != '\n')
		return true;
	for (cr = memchr(p, '\r', (size_t)(end - p)); cr;
	    cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1))) {
		if (cr + 1 == end)
			break;
		if (cr[1] != '\n')
			return true;
	}
	c->last_was_cr = end[-1] == '\r';
	c->scanned = len;
	return false;
}

static void
conn_idle(struct http_conn *c, bool idle)
{
	struct http_server *srv = c->srv;
	size_t max = (size_t)srv->limits.max_connections;

	if (idle == c->idle)
		return;
	c->idle = idle;
	if (idle) {
		TAILQ_INSERT_TAIL(&srv->idle, c, idle_entry);
		/* Room for a new client again, at the cost of this one. */
		if (!srv->accepting && !evtimer_pending(srv->resume, NULL))
			server_accepting(srv, true);
		return;
	}
	TAILQ_REMOVE(&srv->idle, c, idle_entry);
	/* Full and all busy: new clients wait in the kernel's backlog. */
	if (srv->nconns >= max && TAILQ_EMPTY(&srv->idle))
		server_accepting(srv, false);
}

/* Idle: kept alive after an answer, with nothing unread and nothing
 * unsent. A connection that has not sent its first request yet is not:
 * closing that one loses a request that the client will not retry. */
static void
conn_check_idle(struct http_conn *c)
{
	conn_idle(c, c->answered && !c->waiting && !c->closing &&
	    !c->dead && !c->in_message &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0);
}

/* Runs the parser over what has arrived, one request at a time. */
static void
conn_process(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v;
	enum http_errno e;
	size_t n;

	c->processing = true;
	while (!c->waiting && !c->closing && evbuffer_get_length(in) > 0) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
		    OUTPUT_LIMIT) {
			bufferevent_disable(c->bev, EV_READ);
			break;	/* conn_write resumes */
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		if (has_bare_cr(c, v.iov_base, v.iov_len)) {
			c->error_status = 400;
			c->req.verb = HTTP_VERB_OTHER;
			http_respond_error(&c->req, 400, "bare CR in request");
			break;
		}
		c->chunk_start = v.iov_base;
		n = http_parser_execute(&c->parser, &parser_settings,
		    v.iov_base, v.iov_len);
		evbuffer_drain(in, n);
		c->scanned = c->scanned > n ? c->scanned - n : 0;
		if (c->error_status) {
			c->req.verb = HTTP_VERB_OTHER;
			http_respond_error(&c->req, c->error_status,
			    c->error_message);
			break;
		}
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			c->waiting = true;
			c->srv->handler(&c->req);
			/* Answered later (strict): nothing more is parsed
			 * until then (the loop stops). Reading stays on for
			 * now: a client that waits for its answer sends
			 * nothing, and turning it off and on again would cost
			 * two system calls per answer. conn_read turns it off
			 * if more comes. */
			continue;
		}
		if (e != HPE_OK) {
			c->error_status = 400;
			c->req.verb = HTTP_VERB_OTHER;
			http_respond_error(&c->req, 400,
			    e == HPE_UNEXPECTED_CONTENT_LENGTH ?
			    "conflicting message length" : "malformed request");
			break;
		}
	}
	c->processing = false;
	/* The peer has sent all it will: close once all is answered. */
	if (c->eof && !c->waiting && evbuffer_get_length(in) == 0)
		c->closing = true;
	if (c->closing &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
	else
		conn_check_idle(c);
}

/* A request trickled in a byte at a time never goes idle: it gets the
 * idle timeout (at most REQUEST_TIMEOUT_MS) to arrive whole. */
static bool
request_too_slow(struct http_conn *c)
{
	struct timeval now;
	long ms, limit = c->srv->limits.idle_timeout_ms;

	if (!c->in_message)
		return false;
	if (limit > REQUEST_TIMEOUT_MS)
		limit = REQUEST_TIMEOUT_MS;
	event_base_gettimeofday_cached(c->srv->base, &now);
	ms = (long)(now.tv_sec - c->begun.tv_sec) * 1000 +
	    (long)(now.tv_usec - c->begun.tv_usec) / 1000;
	return ms > limit;
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	/* More came while the answer is awaited: it waits in the kernel,
	 * where the client's window bounds it, rather than here. */
	if (c->waiting) {
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (request_too_slow(c)) {
		c->error_status = 408;
		c->req.verb = HTTP_VERB_OTHER;
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		http_respond_error(&c->req, 408, "request took too long");
		return;
	}
	conn_process(c);
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->closing && !c->processing) {
		conn_free(c);
		return;
	}
	/* The queue of answers has drained: read the rest of the pipeline. */
	if (!c->waiting && !c->processing && !c->dead) {
		if (!(bufferevent_get_enabled(c->bev) & EV_READ) && !c->eof)
			bufferevent_enable(c->bev, EV_READ);
		conn_process(c);
	}
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	/* A handler that answers later still owns the request. Reading
	 * is on while it waits: a read timeout then (libevent turned
	 * reading off) is no failure, and a client that has shut down its
	 * side of the connection still gets its answers. */
	if (c->waiting) {
		if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING))
			return;
		if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
			c->eof = true;
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		c->dead = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	conn_free(c);
}

static void
addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	const unsigned char *a;

	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
		/* A mapped IPv4 address is whole; IPv6 is its /64. */
		memcpy(key, a, a[10] == 0xff && a[11] == 0xff &&
		    memcmp(a, key, 10) == 0 ? 16 : 8);
	}
}

static struct addr_slots **
addr_bucket(const unsigned char key[16])
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return &addr_buckets[h % ADDR_BUCKETS];
}

/* Takes one of the address's max slots; false when all are taken. */
static bool
addr_take(const unsigned char key[16], long max, bool *taken)
{
	struct addr_slots **b, *s;
	bool ok = true;

	*taken = false;
	pthread_mutex_lock(&addr_lock);
	b = addr_bucket(key);
	for (s = *b; s; s = s->next)
		if (memcmp(s->key, key, 16) == 0)
			break;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			fatal("connection slots");
		memcpy(s->key, key, 16);
		s->next = *b;
		*b = s;
	}
	if (s->count >= max)
		ok = false;
	else {
		s->count++;
		*taken = true;
	}
	pthread_mutex_unlock(&addr_lock);
	return ok;
}

static void
addr_release(const unsigned char key[16])
{
	struct addr_slots **b, *s;

	pthread_mutex_lock(&addr_lock);
	for (b = addr_bucket(key); (s = *b) != NULL; b = &s->next) {
		if (memcmp(s->key, key, 16) != 0)
			continue;
		if (--s->count == 0) {
			*b = s->next;
			free(s);
		}
		break;
	}
	pthread_mutex_unlock(&addr_lock);
}

static void
conn_free(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->waiting)
		return;
	if (c->idle)
		TAILQ_REMOVE(&srv->idle, c, idle_entry);
	if (c->has_slot)
		addr_release(c->addr_key);
	TAILQ_REMOVE(&srv->conns, c, entry);
	bufferevent_free(c->bev);
	free(c->held_bytes);
	free(c);
	srv->nconns--;
	if (!srv->accepting && !evtimer_pending(srv->resume, NULL))
		server_accepting(srv, true);
}

static void
server_accepting(struct http_server *srv, bool on)
{
	size_t i;

	if (on && srv->nconns >= (size_t)srv->limits.max_connections &&
	    TAILQ_EMPTY(&srv->idle))
		return;
	if (on == srv->accepting)
		return;
	for (i = 0; i < srv->nlisteners; i++) {
		if (on)
			evconnlistener_enable(srv->listeners[i]);
		else
			evconnlistener_disable(srv->listeners[i]);
	}
	srv->accepting = on;
}

static void
accept_conn(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct http_server *srv = arg;
	struct http_conn *c, *old;
	unsigned char key[16];
	struct timeval tv;
	bool has_slot = false;

	/* One client may not take every slot. */
	addr_key(sa, key);
	if (srv->limits.max_per_address > 0 &&
	    !cidr_list_match(srv->exempt, srv->nexempt, sa) &&
	    !addr_take(key, srv->limits.max_per_address, &has_slot)) {
		close(fd);
		return;
	}
	/* Full: the connection that has waited longest for a request
	 * makes room, as nginx does with keep-alive connections. */
	if (srv->nconns >= (size_t)srv->limits.max_connections &&
	    (old = TAILQ_FIRST(&srv->idle)) != NULL)
		conn_free(old);
	/* 17 KiB, mostly buffers: zeroing them all cost more than the
	 * rest of a connection's set-up. */
	if ((c = malloc(sizeof(*c))) == NULL)
		fatal("accept");
	memset(c, 0, CONN_ZEROED);
	c->has_slot = has_slot;
	memcpy(c->addr_key, key, 16);
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("bufferevent_socket_new failed");
		if (has_slot)
			addr_release(key);
		close(fd);
		free(c);
		return;
	}
	c->srv = srv;
	if ((size_t)salen > sizeof(c->peer))
		salen = sizeof(c->peer);
	memcpy(&c->peer, sa, (size_t)salen);
	c->req.conn = c;
	c->req.peer = (struct sockaddr *)&c->peer;
	c->req.server_arg = srv->arg;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;

	tv.tv_sec = srv->limits.idle_timeout_ms / 1000;
	tv.tv_usec = (srv->limits.idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_enable(c->bev, EV_READ);
	/* At the limit with none idle, new connections wait in the
	 * kernel's backlog. */
	if (srv->nconns >= (size_t)srv->limits.max_connections &&
	    TAILQ_EMPTY(&srv->idle))
		server_accepting(srv, false);
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	server_accepting(arg, true);
}

/* EMFILE and friends: stop accepting for a moment instead of spinning on
 * a listener that stays readable. */
static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct http_server *srv = arg;
	struct timeval tv = { 0, ACCEPT_BACKOFF_MS * 1000 };
	static time_t last_warned;
	time_t now = time(NULL);

	if (now != last_warned) {
		log_warn("accept");
		last_warned = now;
	}
	server_accepting(srv, false);
	evtimer_add(srv->resume, &tv);
}

struct http_server *
http_server_new(struct event_base *base, const struct http_limits *limits,
    http_handler handler, void *arg)
{
	struct http_server *srv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		fatal("http server");
	srv->base = base;
	srv->limits = *limits;
	if (srv->limits.max_connections < 1)
		srv->limits.max_connections = 1;
	srv->handler = handler;
	srv->arg = arg;
	srv->accepting = true;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->idle);
	if (limits->nexempt > 0) {
		srv->exempt = calloc(limits->nexempt, sizeof(*srv->exempt));
		if (srv->exempt == NULL)
			fatal("http server");
		memcpy(srv->exempt, limits->exempt,
		    limits->nexempt * sizeof(*srv->exempt));
		srv->nexempt = limits->nexempt;
	}
	srv->resume = evtimer_new(base, resume_accepting, srv);
	return srv;
}

void
http_server_close_listeners(struct http_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->nlisteners = 0;
	if (srv->resume)
		evtimer_del(srv->resume);
}

void
http_server_free(struct http_server *srv)
{
	struct http_conn *c;

	if (srv == NULL)
		return;
	http_server_close_listeners(srv);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
		c->waiting = false;
		conn_free(c);
	}
	if (srv->resume)
		event_free(srv->resume);
	free(srv->exempt);
	free(srv);
}

int
http_server_adopt(struct http_server *srv, int fd, char *err, size_t errlen)
{
	struct evconnlistener *l;
	int one = 1;

	if (srv->nlisteners == MAX_LISTENERS) {
		snprintf(err, errlen, "too many listeners");
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	/* Answers go out whole, in one write: no need to wait for the
	 * peer's acknowledgement first. Set once here, on the listener,
	 * for Linux gives it to every connection accepted from it; a
	 * socket that is not TCP refuses it, harmlessly. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Backlog 0: the socket listens already (http_listen_open or
	 * systemd's Backlog=); libevent's -1 would call listen(fd, 128)
	 * again and shrink the queue. */
	l = evconnlistener_new(srv->base, accept_conn, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l == NULL) {
		snprintf(err, errlen, "evconnlistener_new failed");
		return -1;
	}
	evconnlistener_set_error_cb(l, accept_error);
	srv->listeners[srv->nlisteners++] = l;
	if (!srv->accepting)
		evconnlistener_disable(l);
	return 0;
}

/* Port 0 asks the kernel for one; every further address of the same
 * listen entry gets that one too, so that the entry means one port. */
static void
set_port(struct sockaddr *sa, in_port_t port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)(void *)sa)->sin_port = port;
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)sa)->sin6_port = port;
}

static in_port_t
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ((struct sockaddr_in *)(void *)&ss)->sin_port;
	if (ss.ss_family == AF_INET6)
		return ((struct sockaddr_in6 *)(void *)&ss)->sin6_port;
	return 0;
}

/*
 * One socket per address, bound without SO_REUSEPORT: every serving
 * thread shares it (http_server_adopt on a dup), so that a second
 * daemon, even of the same user, cannot bind the address and take half
 * the connections.
 */
int
http_listen_open(const char *addr, int *fds, size_t max, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	char host[256], port[32];
	in_port_t chosen = 0;
	int fd, rc, one = 1;
	size_t n = 0;

	if (listen_parse(addr, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "bad listen address \"%s\"", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	err[0] = '\0';
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1)
			continue;
		/* Restarts need not wait for TIME_WAIT; a live listener on
		 * the address still makes bind fail. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		if (chosen != 0)
			set_port(ai->ai_addr, chosen);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
		    listen(fd, LISTEN_BACKLOG) == -1) {
			if (errno == EADDRINUSE)
				snprintf(err, errlen, "%s: address in use "
				    "(another program listens there)", addr);
			else
				snprintf(err, errlen, "%s: %s", addr,
				    strerror(errno));
			close(fd);
			break;
		}
		chosen = bound_port(fd);
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	/* All of the entry's addresses or none: half a listen is a
	 * surprise. */
	if (err[0] != '\0' || n == 0) {
		while (n > 0)
			close(fds[--n]);
		if (err[0] == '\0')
			snprintf(err, errlen, "%s: no usable address", addr);
		return -1;
	}
	return (int)n;
}

/* "127.0.0.1:8080" or "[::1]:8080": where fd is bound. */
void
http_listen_name(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	const void *a = NULL;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			a = &((struct sockaddr_in *)(void *)&ss)->sin_addr;
		else if (ss.ss_family == AF_INET6)
			a = &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr;
	}
	if (a == NULL || inet_ntop(ss.ss_family, a, host,
	    sizeof(host)) == NULL) {
		snprintf(out, outsz, "socket %d", fd);
		return;
	}
	snprintf(out, outsz, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	    host, (unsigned)ntohs(bound_port(fd)));
}
