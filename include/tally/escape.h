/* Escaping of text placed in JSON, XML/SVG, HTML and on a terminal, and
 * UTF-8 checks. */
#ifndef TALLY_ESCAPE_H
#define TALLY_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tally/buf.h"

/* Decodes the UTF-8 sequence at s (len > 0 bytes available). Returns its
 * length and stores the code point, or returns 0 when the sequence is
 * malformed: truncated, overlong, a surrogate or above U+10FFFF. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t len);
/* True for a code point that is not seen for what it is: C0 and C1
 * controls and DEL, bidi marks, overrides and isolates (U+061C,
 * U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), zero-width characters
 * and invisible operators (U+200B-U+200D, U+2060-U+2064, U+FEFF). */
bool utf8_hidden(uint32_t cp);
/* Number of code points; s must be valid UTF-8. */
size_t utf8_length(const char *s, size_t len);

/* Appends s as the inside of a JSON string (no quotes). Controls (C0,
 * DEL, C1) and what utf8_hidden() names become \uXXXX; '<', '>' and '&'
 * too, so that JSON is safe inside HTML. */
void json_escape(struct buf *, const char *s, size_t len);
/* Appends s with quotes around it. */
void json_string(struct buf *, const char *s);
/* Appends s escaped for XML/HTML text and attribute values. */
void xml_escape(struct buf *, const char *s, size_t len);

/* Copies s[0..len) into out (outsz bytes, NUL-terminated) for a terminal
 * or a log: what utf8_hidden() says, and bytes that are not UTF-8,
 * become "\x1b" (below U+0080, and invalid bytes) or "\u202e". Stops
 * before a character or escape that would not fit. Returns the length
 * written. */
size_t text_escape(char *out, size_t outsz, const char *s, size_t len);

/* The value of a hexadecimal digit, or -1. */
int hex_value(int c);

/* Writes cp (at most U+10FFFF, no surrogate) as UTF-8; returns 1 to 4. */
size_t utf8_encode(uint32_t cp, char out[4]);

/* What is wrong with a JSON string or one of its escapes. */
enum json_string_error {
	JSON_ESCAPE_BAD = -1,		/* not an escape JSON has */
	JSON_ESCAPE_BAD_U = -2,		/* \u without four hex digits */
	JSON_ESCAPE_SURROGATE = -3,	/* half a surrogate pair */
	JSON_NOT_STRING = -4,		/* no '"' where a string must start */
	JSON_UNTERMINATED = -5,
	JSON_CONTROL = -6,		/* a raw control character (< 0x20) */
};
/* s points just after a backslash in a JSON string, with avail bytes
 * left. Decodes the escape (a \u escape with its low surrogate) into
 * *cp; returns the bytes it took, or a json_string_error. */
int json_unescape(const char *s, size_t avail, uint32_t *cp);
/* Reads the JSON string at s (its opening '"'), which must end before
 * end. Its decoded text goes to out, at most cap bytes of it (the rest
 * is counted, not stored: the decoded text is never longer than the
 * string), and its decoded length to *len. Returns how many bytes the
 * string takes, quotes included, or a json_string_error. */
long json_string_read(const char *s, const char *end, char *out, size_t cap,
    size_t *len);

/* Percent-decodes in[0..len) into out (which holds len + 1 bytes).
 * '+' is a space only when plus_is_space. Returns the decoded length, or
 * -1 on a malformed escape. */
long percent_decode(const char *in, size_t len, char *out, bool plus_is_space);

#endif
