/*
 * The front page of tallyd: what it is, the snippet to paste with this
 * daemon's own address, and the default site's counts. The page itself
 * is tallyd/www/index.html, compiled in; its {{name}} fields are filled
 * here, every value escaped for HTML.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "build-config.h"
#include "embedded.h"
#include "tally/buf.h"
#include "tally/escape.h"
#include "tally/render.h"
#include "frontpage.h"

/* The value of one {{name}} field, or NULL for an unknown name. */
static const char *
field(const struct front_page *fp, const char *name, size_t len,
    char *tmp, size_t tmpsz)
{
	static const struct {
		const char	*name;
		size_t		 off;	/* in struct page_counts */
	} numbers[] = {
		{ "today", offsetof(struct page_counts, today.views) },
		{ "today_visitors", offsetof(struct page_counts, today.visitors) },
		{ "total", offsetof(struct page_counts, total.views) },
		{ "total_visitors", offsetof(struct page_counts, total.visitors) },
		{ "page", offsetof(struct page_counts, page.views) },
		{ "page_visitors", offsetof(struct page_counts, page.visitors) },
	};
	const char	*strings[][2] = {
		{ "base", fp->base_url },
		{ "site", fp->site },
		{ "day", fp->day },
		{ "version", TALLY_VERSION },
	};
	uint64_t	 v;
	size_t		 i;

	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (strlen(strings[i][0]) == len &&
		    memcmp(strings[i][0], name, len) == 0)
			return strings[i][1] ? strings[i][1] : "";
	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		if (strlen(numbers[i].name) == len &&
		    memcmp(numbers[i].name, name, len) == 0) {
			memcpy(&v, (const char *)fp->counts + numbers[i].off,
			    sizeof(v));
			format_thousands(tmp, tmpsz, v);
			return tmp;
		}
	return NULL;
}

void
render_front_page(struct buf *b, const struct front_page *fp)
{
	const char	*s = (const char *)embed_index_html;
	const char	*end = s + embed_index_html_len;
	const char	*open, *close, *v;
	char		 tmp[32];

	while (s < end) {
		open = memmem(s, (size_t)(end - s), "{{", 2);
		if (open == NULL) {
			buf_append(b, s, (size_t)(end - s));
			break;
		}
		buf_append(b, s, (size_t)(open - s));
		close = memmem(open + 2, (size_t)(end - open - 2), "}}", 2);
		if (close == NULL) {
			buf_append(b, open, (size_t)(end - open));
			break;
		}
		v = field(fp, open + 2, (size_t)(close - open - 2), tmp,
		    sizeof(tmp));
		if (v != NULL)
			xml_escape(b, v, strlen(v));
		else	/* not ours: leave it as it was written */
			buf_append(b, open, (size_t)(close + 2 - open));
		s = close + 2;
	}
}
