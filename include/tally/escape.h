/* Escaping of text placed in JSON, XML/SVG and HTML, and UTF-8 checks. */
#ifndef TALLY_ESCAPE_H
#define TALLY_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t len);
/* Number of code points; s must be valid UTF-8. */
size_t utf8_length(const char *s, size_t len);

/* Appends s as the inside of a JSON string (no quotes). Control
 * characters become \uXXXX; '<', '>' and '&' too, so that JSON is safe
 * inside HTML. */
void json_escape(struct buf *, const char *s, size_t len);
/* Appends s with quotes around it. */
void json_string(struct buf *, const char *s);
/* Appends s escaped for XML/HTML text and attribute values. */
void xml_escape(struct buf *, const char *s, size_t len);

/* The value of a hexadecimal digit, or -1. */
int hex_value(int c);

/* Percent-decodes in[0..len) into out (which holds len + 1 bytes).
 * '+' is a space only when plus_is_space. Returns the decoded length, or
 * -1 on a malformed escape. */
long percent_decode(const char *in, size_t len, char *out, bool plus_is_space);

#endif
