/* Escaping of text placed in JSON, XML/SVG and HTML, and UTF-8 checks. */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tally/escape.h"

/* Decodes the UTF-8 sequence at s (len > 0 bytes available). Returns its
 * length and stores the code point, or returns 0 when the sequence is
 * malformed: truncated, overlong, a surrogate or above U+10FFFF. */
static size_t
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t	 c, min;
	size_t		 n, i;

	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;	/* continuation byte, 0xc0, 0xc1 or 0xf5.. */
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 i, n;

	for (i = 0; i < len; i += n) {
		if (p[i] < 0x80) {
			n = 1;
			continue;
		}
		if ((n = utf8_decode(p + i, len - i, &cp)) == 0)
			return false;
	}
	return true;
}

size_t
utf8_length(const char *s, size_t len)
{
	size_t	 i, count = 0;

	/* Every code point has exactly one byte that is not 10xxxxxx. */
	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			count++;
	return count;
}

void
json_escape(struct buf *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	char			 u[6] = { '\\', 'u', '0', '0', 0, 0 };
	uint32_t		 cp;
	size_t			 i, n, run;

	buf_reserve(b, len);
	for (i = 0; i < len; i += n) {
		/* Copy plain ASCII in one go: it is nearly all of it. */
		for (run = i; run < len && p[run] >= 0x20 && p[run] < 0x7f &&
		    strchr("\"\\<>&", p[run]) == NULL; run++)
			;
		if (run > i) {
			buf_append(b, p + i, run - i);
			n = run - i;
			continue;
		}

		n = 1;
		switch (p[i]) {
		case '"':
			buf_puts(b, "\\\"");
			continue;
		case '\\':
			buf_puts(b, "\\\\");
			continue;
		case '\b':
			buf_puts(b, "\\b");
			continue;
		case '\f':
			buf_puts(b, "\\f");
			continue;
		case '\n':
			buf_puts(b, "\\n");
			continue;
		case '\r':
			buf_puts(b, "\\r");
			continue;
		case '\t':
			buf_puts(b, "\\t");
			continue;
		default:
			break;
		}
		if (p[i] < 0x80) {
			/* Other controls, DEL, and the HTML specials '<',
			 * '>' and '&' so that "</script>" cannot appear. */
			u[4] = hex[p[i] >> 4];
			u[5] = hex[p[i] & 0xf];
			buf_append(b, u, sizeof(u));
			continue;
		}
		if ((n = utf8_decode(p + i, len - i, &cp)) == 0) {
			/* Invalid input still makes valid JSON. */
			buf_puts(b, "\\ufffd");
			n = 1;
		} else if (cp == 0x2028)
			buf_puts(b, "\\u2028");	/* line ends in JavaScript */
		else if (cp == 0x2029)
			buf_puts(b, "\\u2029");
		else
			buf_append(b, p + i, n);
	}
}

void
json_string(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	if (s != NULL)
		json_escape(b, s, strlen(s));
	buf_putc(b, '"');
}

void
xml_escape(struct buf *b, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 i, n;

	buf_reserve(b, len);
	for (i = 0; i < len; i += n) {
		n = 1;
		switch (p[i]) {
		case '&':
			buf_puts(b, "&amp;");
			continue;
		case '<':
			buf_puts(b, "&lt;");
			continue;
		case '>':
			buf_puts(b, "&gt;");
			continue;
		case '"':
			buf_puts(b, "&quot;");
			continue;
		case '\'':
			buf_puts(b, "&#39;");	/* &apos; is not HTML 4 */
			continue;
		case '\t':
		case '\n':
			buf_putc(b, (char)p[i]);
			continue;
		default:
			break;
		}
		if (p[i] < 0x20 || p[i] == 0x7f)
			continue;	/* not allowed in XML 1.0 */
		if (p[i] < 0x80) {
			buf_putc(b, (char)p[i]);
			continue;
		}
		if ((n = utf8_decode(p + i, len - i, &cp)) == 0) {
			/* A document with invalid UTF-8 is not XML. */
			buf_puts(b, "\xef\xbf\xbd");
			n = 1;
			continue;
		}
		/* C1 controls are discouraged, U+FFFE and U+FFFF not
		 * characters at all. */
		if ((cp >= 0x80 && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff)
			continue;
		buf_append(b, p + i, n);
	}
}

int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
percent_decode(const char *in, size_t len, char *out, bool plus_is_space)
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 i, o = 0;
	int			 hi, lo;

	for (i = 0; i < len; i++) {
		if (p[i] == '%') {
			if (len - i < 3 || (hi = hex_value(p[i + 1])) < 0 ||
			    (lo = hex_value(p[i + 2])) < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (p[i] == '+' && plus_is_space)
			out[o++] = ' ';
		else
			out[o++] = (char)p[i];
	}
	out[o] = '\0';
	return (long)o;
}
