/* Escaping of text placed in JSON, XML/SVG, HTML and on a terminal, and
 * UTF-8 checks. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tally/escape.h"

size_t
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

/*
 * What a reader cannot see for what it is. Controls move the cursor,
 * ring, retitle the window (ESC ] ... BEL) or end a line; the bidi
 * controls reorder what follows them, so that "/admin\u202e/txt.exe"
 * reads differently than it sorts; zero-width characters and the
 * invisible operators make two paths that look the same differ.
 */
bool
utf8_hidden(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return true;			/* C0, DEL, C1 */
	if (cp < 0xad)
		return false;			/* the common case, quickly */
	return cp == 0xad ||			/* soft hyphen */
	    cp == 0x34f ||			/* combining grapheme joiner */
	    cp == 0x61c ||			/* Arabic letter mark */
	    cp == 0x115f || cp == 0x1160 ||	/* Hangul fillers */
	    (cp >= 0x200b && cp <= 0x200f) ||	/* zero width, LRM, RLM */
	    (cp >= 0x202a && cp <= 0x202e) ||	/* embeddings, overrides */
	    (cp >= 0x2060 && cp <= 0x2064) ||	/* word joiner, operators */
	    (cp >= 0x2066 && cp <= 0x2069) ||	/* isolates */
	    cp == 0x3164 || cp == 0xffa0 ||	/* Hangul fillers */
	    cp == 0xfeff ||			/* zero-width no-break space */
	    (cp >= 0xfff9 && cp <= 0xfffb) ||	/* interlinear annotation */
	    cp == 0xfffe || cp == 0xffff ||	/* noncharacters */
	    (cp >= 0xe0000 && cp <= 0xe007f);	/* tags */
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

/* Printable ASCII but " \\ < > &: copied as it is. */
static inline bool
plain(unsigned char ch)
{
	return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' &&
	    ch != '<' && ch != '>' && ch != '&';
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
		for (run = i; run < len && plain(p[run]); run++)
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
		} else if (utf8_hidden(cp) || cp == 0x2028 || cp == 0x2029)
			/* C1 controls, bidi and zero-width characters stay
			 * out of a terminal or an editor that shows the
			 * JSON; U+2028 and U+2029 end lines in JavaScript. */
			buf_printf(b, "\\u%04x", (unsigned)cp);
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

size_t
utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Four hexadecimal digits, or -1. */
static long
hex4(const char *s)
{
	long v = 0;
	int i, d;

	for (i = 0; i < 4; i++) {
		if ((d = hex_value((unsigned char)s[i])) == -1)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

int
json_unescape(const char *s, size_t avail, uint32_t *cp)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *p;
	long hi, lo;

	if (avail == 0)
		return JSON_ESCAPE_BAD;
	if (*s != 'u') {
		if (*s == '\0' || (p = strchr(from, *s)) == NULL)
			return JSON_ESCAPE_BAD;
		*cp = (unsigned char)to[p - from];
		return 1;
	}
	if (avail < 5 || (hi = hex4(s + 1)) == -1)
		return JSON_ESCAPE_BAD_U;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return JSON_ESCAPE_SURROGATE;
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = (uint32_t)hi;
		return 5;
	}
	/* A high surrogate: its low half must follow. */
	if (avail < 11 || s[5] != '\\' || s[6] != 'u' ||
	    (lo = hex4(s + 7)) == -1 || lo < 0xdc00 || lo > 0xdfff)
		return JSON_ESCAPE_SURROGATE;
	*cp = 0x10000 + (uint32_t)((hi - 0xd800) << 10) + (uint32_t)(lo - 0xdc00);
	return 11;
}

/*
 * The one JSON string lexer: tallyd's JSON bodies and tallyctl's JSON
 * imports both read their strings here, so that both take and refuse
 * the same strings.
 */
long
json_string_read(const char *s, const char *end, char *out, size_t cap,
    size_t *len)
{
	const char	*p = s;
	uint32_t	 cp;
	size_t		 n = 0, i, u;
	char		 enc[4];
	int		 used;

	if (p >= end || *p != '"')
		return JSON_NOT_STRING;
	for (p++;; p++) {
		if (p >= end)
			return JSON_UNTERMINATED;
		if (*p == '"')
			break;
		if ((unsigned char)*p < 0x20)
			return JSON_CONTROL;
		if (*p != '\\') {
			if (n < cap)
				out[n] = *p;
			n++;
			continue;
		}
		if (++p >= end)
			return JSON_UNTERMINATED;
		if ((used = json_unescape(p, (size_t)(end - p), &cp)) < 0)
			return used;
		p += used - 1;
		u = utf8_encode(cp, enc);
		for (i = 0; i < u; i++, n++)
			if (n < cap)
				out[n] = enc[i];
	}
	*len = n;
	return p + 1 - s;
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

/*
 * For a terminal or a log: what the reader cannot see is spelled out,
 * in the notation of C and JSON, so that a hostile path or argument
 * shows as "\x1b]0;..." instead of retitling the window. Bytes that are
 * not UTF-8 become "\xNN" too. The rest, including the backslash, is
 * copied: the output is for reading, not for parsing back.
 */
size_t
text_escape(char *out, size_t outsz, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			 esc[8];
	uint32_t		 cp;
	size_t			 i, n, o = 0, elen;

	if (outsz == 0)
		return 0;
	for (i = 0; i < len; i += n) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			n = 1;
			if (o + 1 >= outsz)
				break;
			out[o++] = (char)p[i];
			continue;
		}
		if ((n = utf8_decode(p + i, len - i, &cp)) <= 1) {
			n = 1;	/* a control below U+0080, or not UTF-8 */
			elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x",
			    p[i]);
		}
		else if (utf8_hidden(cp))
			elen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x",
			    (unsigned)cp);
		else {
			memcpy(esc, p + i, n);
			elen = n;
		}
		if (o + elen >= outsz)
			break;	/* never half an escape or a character */
		memcpy(out + o, esc, elen);
		o += elen;
	}
	out[o] = '\0';
	return o;
}
