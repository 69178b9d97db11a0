/*
 * The routes a web page embeds: the script, the SVG badge, the pixel for
 * <noscript>, and the front page that shows how to paste them.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "embedded.h"
#include "tally/buf.h"
#include "tally/config.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/hash.h"
#include "tally/render.h"

#include "badge.h"
#include "frontpage.h"
#include "http.h"
#include "params.h"
#include "routes.h"

#define LABEL_MAX_CHARS	64

/* The script changes only with the binary: browsers may keep it an hour
 * and then revalidate with the ETag, which costs a 304. */
#define SCRIPT_CACHE	"Cache-Control: public, max-age=3600\r\n"

/* The icon never changes under its name: browsers keep it a week. */
#define FAVICON_CACHE	"Cache-Control: public, max-age=604800\r\n"

#define EMBEDDABLE	ROUTE_EMBEDDABLE

/* GIF89a, 1x1, one transparent colour: the smallest valid image. */
static const unsigned char pixel_gif[43] = {
	'G', 'I', 'F', '8', '9', 'a',
	0x01, 0x00, 0x01, 0x00,		/* 1x1 */
	0x80, 0x00, 0x00,		/* a global table of 2 colours */
	0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
	0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, /* colour 0 is clear */
	0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
	0x02, 0x02, 0x44, 0x01, 0x00,	/* one pixel of colour 0 */
	0x3b,
};

/*
 * Files compiled into tallyd and served as they are. Each has an ETag
 * made from its bytes; one with a gzipped copy (made at build time by
 * tools/embed.py) sends that to clients that accept gzip, under its own
 * ETag, since the two are different bytes.
 */
struct asset {
	const unsigned char	*data;
	const size_t		*len;
	const unsigned char	*gz;		/* NULL: no gzipped copy */
	const size_t		*gz_len;
	const char		*type;
	char			 etag[24];	/* "\"" 16 hex digits "\"" */
	char			 etag_gz[28];	/* the same with -gz */
};

static struct asset script = {
	embed_tally_js, &embed_tally_js_len,
	embed_tally_js_gz, &embed_tally_js_gz_len,
	"text/javascript; charset=utf-8", "", "",
};
static struct asset favicon = {
	embed_favicon_svg, &embed_favicon_svg_len, NULL, NULL,
	"image/svg+xml", "", "",
};
static pthread_once_t assets_once = PTHREAD_ONCE_INIT;

/* FNV-1a: the ETag only has to change when the file does. */
static void
asset_etag(struct asset *a)
{
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, a->data, *a->len);

	snprintf(a->etag, sizeof(a->etag), "\"%016llx\"",
	    (unsigned long long)h);
	snprintf(a->etag_gz, sizeof(a->etag_gz), "\"%016llx-gz\"",
	    (unsigned long long)h);
}

static void
assets_init(void)
{
	asset_etag(&script);
	asset_etag(&favicon);
}

/* If-None-Match holds "*" or a list of entity tags; W/ tags match too,
 * as the weak comparison of RFC 9110 asks for GET. */
static bool
etag_matches(const char *header, const char *etag)
{
	const char *p = header, *start;
	size_t len, elen = strlen(etag);

	while (*p != '\0') {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		start = p;
		if (*p == '"') {
			/* A quoted tag may hold commas. */
			const char *q = strchr(p + 1, '"');
			p = q ? q + 1 : p + strlen(p);
		} else
			p += strcspn(p, ", \t");
		len = (size_t)(p - start);
		if (len == elen && memcmp(start, etag, len) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* The q= of one Accept-Encoding element (RFC 9110 12.4.2): 0 only when
 * it is written as zero ("0", "0.0", "0.000"); a missing or malformed
 * q counts as 1, as the element was meant to be accepted. */
static bool
q_is_zero(const char *params, size_t len)
{
	const char *p = params, *end = params + len;
	size_t n;

	while (p < end) {
		p += strspn(p, " \t;");
		if (p >= end)
			break;
		n = strcspn(p, ";");
		if (p + n > end)
			n = (size_t)(end - p);
		if (n >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
			const char *v = p + 2, *ve = p + n;

			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (v == ve || *v != '0')
				return false;
			if (++v < ve && *v++ != '.')
				return false;
			while (v < ve && *v == '0')
				v++;
			return v == ve;
		}
		p += n;
	}
	return false;
}

/* Whether Accept-Encoding allows gzip: "gzip" or "x-gzip" with q not
 * 0, or else "*" with q not 0. "gzip;q=0" refuses it even after "*". */
static bool
accepts_gzip(const char *header)
{
	const char *p = header;
	size_t len, tok;
	int gzip = -1, star = -1;	/* -1 absent, 0 refused, 1 accepted */

	if (header == NULL)
		return false;
	while (*p != '\0') {
		p += strspn(p, " \t,");
		if ((len = strcspn(p, ",")) == 0)
			break;
		tok = strcspn(p, "; \t,");
		if ((tok == 4 && strncasecmp(p, "gzip", 4) == 0) ||
		    (tok == 6 && strncasecmp(p, "x-gzip", 6) == 0))
			gzip = !q_is_zero(p + tok, len - tok);
		else if (tok == 1 && *p == '*')
			star = !q_is_zero(p + tok, len - tok);
		p += len;
	}
	return gzip != -1 ? gzip == 1 : star == 1;
}

/* Answers a compiled-in file; cache_headers say how long to keep it. */
static void
serve_asset(struct route_ctx *ctx, const struct asset *a,
    const char *cache_headers)
{
	const char *inm, *etag = a->etag;
	bool gz;

	gz = a->gz != NULL &&
	    accepts_gzip(http_header_get(ctx->r, "accept-encoding"));
	if (gz)
		etag = a->etag_gz;
	/* Nothing in these answers depends on the request but the
	 * encoding: the same for every origin, whatever site or path. */
	route_add_header(ctx, "Access-Control-Allow-Origin: *\r\n%s"
	    EMBEDDABLE "%sETag: %s\r\n",
	    a->gz ? "Vary: Origin, Accept-Encoding\r\n" : "Vary: Origin\r\n",
	    cache_headers, etag);
	if (gz)
		route_add_header(ctx, "Content-Encoding: gzip\r\n");
	if ((inm = http_header_get(ctx->r, "if-none-match")) != NULL &&
	    etag_matches(inm, etag)) {
		http_respond(ctx->r, 304, NULL, ctx->headers, NULL, 0);
		return;
	}
	http_respond(ctx->r, 200, a->type, ctx->headers,
	    gz ? a->gz : a->data, gz ? *a->gz_len : *a->len);
}

void
route_tally_js(struct route_ctx *ctx)
{
	pthread_once(&assets_once, assets_init);
	serve_asset(ctx, &script, SCRIPT_CACHE);
}

void
route_favicon(struct route_ctx *ctx)
{
	pthread_once(&assets_once, assets_init);
	serve_asset(ctx, &favicon, FAVICON_CACHE);
}

void
route_pixel(struct route_ctx *ctx)
{
	struct page_counts pc;
	const char *reason;
	bool counted;

	if (route_prepare(ctx, false) == -1)
		return;
	if (route_count(ctx, true, &pc, &counted, &reason) == -1)
		return;
	route_add_header(ctx, "Cache-Control: no-store\r\n" EMBEDDABLE);
	http_respond(ctx->r, 200, "image/gif", ctx->headers, pixel_gif,
	    sizeof(pixel_gif));
}

enum badge_kind { B_TODAY, B_TOTAL, B_PAGE, B_KINDS };

static const struct {
	const char	*name;
	enum param_key	 label;
} badge_kinds[B_KINDS] = {
	{ "today", P_LABEL_TODAY },
	{ "total", P_LABEL_TOTAL },
	{ "page", P_LABEL_PAGE },
};

/* show=: names from badge_kinds in any order, commas between. Returns
 * how many, or -1 with a reason. A name given twice is shown once. */
static int
parse_show(const char *show, enum badge_kind kinds[B_KINDS], const char **err)
{
	const char *p = show;
	size_t len, i;
	int n = 0, k;

	while (*p != '\0') {
		p += strspn(p, " ,");
		if ((len = strcspn(p, " ,")) == 0)
			break;
		for (k = 0; k < B_KINDS; k++)
			if (strlen(badge_kinds[k].name) == len &&
			    strncmp(badge_kinds[k].name, p, len) == 0)
				break;
		if (k == B_KINDS) {
			*err = "show: use today, total and page";
			return -1;
		}
		for (i = 0; i < (size_t)n; i++)
			if (kinds[i] == (enum badge_kind)k)
				break;
		if (i == (size_t)n)
			kinds[n++] = (enum badge_kind)k;
		p += len;
	}
	if (n == 0)
		*err = "show: nothing to show";
	return n == 0 ? -1 : n;
}

/* A label from the query, checked, or the site's own. */
static const char *
badge_label(struct route_ctx *ctx, enum badge_kind k, const char **err)
{
	static const char *const messages[B_KINDS][2] = {
		{ "label.today is not valid UTF-8",
		    "label.today is longer than 64 characters" },
		{ "label.total is not valid UTF-8",
		    "label.total is longer than 64 characters" },
		{ "label.page is not valid UTF-8",
		    "label.page is longer than 64 characters" },
	};
	const char *v = ctx->params.v[badge_kinds[k].label];
	size_t len;

	if (v == NULL) {
		switch (k) {
		case B_TODAY:
			v = ctx->site->label_today;
			break;
		case B_TOTAL:
			v = ctx->site->label_total;
			break;
		default:
			v = ctx->site->label_page;
			break;
		}
		return v ? v : "";
	}
	len = strlen(v);
	if (!utf8_valid(v, len)) {
		*err = messages[k][0];
		return NULL;
	}
	if (utf8_length(v, len) > LABEL_MAX_CHARS) {
		*err = messages[k][1];
		return NULL;
	}
	return v;
}

/* style=, color= and labelColor=; a bad one is answered 400, before
 * anything is counted. */
static int
badge_look_parse(struct route_ctx *ctx, struct badge_look *look)
{
	const char *v;

	badge_look_default(look);
	if ((v = ctx->params.v[P_STYLE]) != NULL && *v != '\0' &&
	    badge_style_parse(v, &look->style) == -1) {
		http_respond_error(ctx->r, 400, "style: use flat, "
		    "flat-square, plastic or for-the-badge");
		return -1;
	}
	if ((v = ctx->params.v[P_COLOR]) != NULL && *v != '\0' &&
	    badge_color_parse(v, look->color) == -1) {
		http_respond_error(ctx->r, 400, "color: a colour name such "
		    "as green, or hex such as 4c1 or #44cc11");
		return -1;
	}
	if ((v = ctx->params.v[P_LABEL_COLOR]) != NULL && *v != '\0' &&
	    badge_color_parse(v, look->label_color) == -1) {
		http_respond_error(ctx->r, 400, "labelColor: a colour name "
		    "such as grey, or hex such as 555 or #555555");
		return -1;
	}
	return 0;
}

void
route_counter_svg(struct route_ctx *ctx)
{
	enum badge_kind kinds[B_KINDS];
	struct badge_item items[B_KINDS];
	const char *labels[B_KINDS];
	const char *err = NULL, *reason, *count, *locale;
	struct badge_look look;
	struct page_counts pc;
	struct buf b;
	bool counted, want;
	int n, i, k;

	if (route_prepare(ctx, false) == -1)
		return;
	n = parse_show(ctx->params.v[P_SHOW] ? ctx->params.v[P_SHOW] :
	    "today,total", kinds, &err);
	if (n == -1) {
		http_respond_error(ctx->r, 400, err);
		return;
	}
	/* Every label given is checked, shown or not: a bad one is a bug
	 * in the page that its author should hear of. */
	for (k = 0; k < B_KINDS; k++)
		if ((labels[k] = badge_label(ctx, (enum badge_kind)k,
		    &err)) == NULL) {
			http_respond_error(ctx->r, 400, err);
			return;
		}
	if ((locale = ctx->params.v[P_LOCALE]) == NULL || *locale == '\0')
		locale = ctx->site->locale;
	else if (!locale_valid(locale)) {
		http_respond_error(ctx->r, 400,
		    "locale: not a language tag such as de or de-CH");
		return;
	}
	if (badge_look_parse(ctx, &look) == -1)
		return;
	count = ctx->params.v[P_COUNT];
	want = !(count && (strcmp(count, "0") == 0 ||
	    strcasecmp(count, "false") == 0 || strcasecmp(count, "no") == 0));
	if (route_count(ctx, want, &pc, &counted, &reason) == -1)
		return;

	for (i = 0; i < n; i++) {
		items[i].label = labels[kinds[i]];
		switch (kinds[i]) {
		case B_TODAY:
			items[i].value = pc.today.views;
			break;
		case B_TOTAL:
			items[i].value = pc.total.views;
			break;
		default:
			items[i].value = pc.page.views;
			break;
		}
	}
	buf_init(&b);
	render_badge_svg(&b, items, (size_t)n, locale, &look);
	route_add_header(ctx, "Cache-Control: no-store\r\n" EMBEDDABLE
	    ROUTE_SVG_CSP);
	http_respond(ctx->r, 200, "image/svg+xml; charset=utf-8", ctx->headers,
	    b.data, b.len);
	buf_free(&b);
}

/* The address the visitor used to reach this daemon, to put in the
 * snippet: what a trusted proxy says it was, else Host. Host is the
 * client's own word, so only a plain host[:port] is taken; the page
 * escapes it in any case. */
static void
base_url(const struct route_ctx *ctx, char *out, size_t outsz)
{
	const char *host = ctx->client.host;
	const char *proto = ctx->client.proto;
	size_t len;

	if (*host == '\0')
		host = http_header_get(ctx->r, "host");
	if (host == NULL || (len = strlen(host)) == 0 || len > 255 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_") != len)
		host = "127.0.0.1";
	/* Behind a TLS proxy the page is https, and so must the snippet be
	 * or browsers block it as mixed content. */
	snprintf(out, outsz, "%s://%s", *proto ? proto : "http", host);
}

void
route_front_page(struct route_ctx *ctx)
{
	struct front_page fp;
	struct page_counts pc;
	struct buf b;
	const char *reason;
	char base[300], day[DAY_STRLEN];
	bool counted;

	/* The page shows the default site's counts, whatever the query or
	 * Referer say: route_prepare is not for this route. */
	params_init(&ctx->params);
	ctx->site = config_site(ctx->cfg, DEFAULT_SITE);
	strcpy(ctx->path, "/");
	ctx->day = day_today();
	memset(&pc, 0, sizeof(pc));
	if (ctx->site != NULL &&
	    route_count(ctx, false, &pc, &counted, &reason) == -1)
		return;

	base_url(ctx, base, sizeof(base));
	day_format(ctx->day, day);
	fp.base_url = base;
	fp.site = DEFAULT_SITE;
	fp.day = day;
	fp.counts = &pc;
	buf_init(&b);
	render_front_page(&b, &fp);
	route_add_header(ctx, "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Content-Security-Policy: default-src 'none'; script-src 'self'; "
	    "connect-src 'self'; img-src 'self'; style-src 'unsafe-inline'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n");
	http_respond(ctx->r, 200, "text/html; charset=utf-8", ctx->headers,
	    b.data, b.len);
	buf_free(&b);
}
