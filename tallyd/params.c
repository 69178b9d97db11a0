/*
 * Parameters are decoded into one scratch buffer sized for the largest
 * request tally accepts, so parsing allocates nothing. A decoded NUL is
 * an error: every value is used as a C string.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tally/escape.h"

#include "params.h"

#define JSON_MAX_DEPTH	16

static const char *const param_names[P_COUNT_KEYS] = {
	[P_SITE] = "site",
	[P_PATH] = "path",
	[P_REFERRER] = "referrer",
	[P_SHOW] = "show",
	[P_LABEL_TODAY] = "label.today",
	[P_LABEL_TOTAL] = "label.total",
	[P_LABEL_PAGE] = "label.page",
	[P_COUNT] = "count",
	[P_LOCALE] = "locale",
	[P_STYLE] = "style",
	[P_COLOR] = "color",
	[P_LABEL_COLOR] = "labelColor",
	[P_DAYS] = "days",
	[P_FROM] = "from",
	[P_TO] = "to",
	[P_SHARE] = "share",
	[P_PREFIX] = "prefix",
	[P_PAGE] = "page",
	[P_PERIOD] = "period",
};

void
params_init(struct params *p)
{
	memset(p->v, 0, sizeof(p->v));
	p->used = 0;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static bool
escapes_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '%' && (i + 2 >= len || !is_hex(s[i + 1]) ||
		    !is_hex(s[i + 2])))
			return false;
	return true;
}

static int
key_index(const char *k, size_t len)
{
	int i;

	for (i = 0; i < P_COUNT_KEYS; i++)
		if (strlen(param_names[i]) == len &&
		    memcmp(param_names[i], k, len) == 0)
			return i;
	return -1;
}

int
params_parse_form(struct params *p, const char *s, size_t len,
    const char **err)
{
	const char *end = s + len, *amp, *eq;
	char key[32];
	long klen, vlen;
	int idx;

	while (s < end) {
		if ((amp = memchr(s, '&', (size_t)(end - s))) == NULL)
			amp = end;
		if (amp == s) {
			s++;
			continue;
		}
		if ((eq = memchr(s, '=', (size_t)(amp - s))) == NULL)
			eq = amp;
		idx = -1;
		if (eq - s < (long)sizeof(key)) {
			klen = percent_decode(s, (size_t)(eq - s), key, true);
			if (klen < 0) {
				*err = "malformed percent-encoding";
				return -1;
			}
			idx = key_index(key, (size_t)klen);
		}
		if (idx >= 0) {
			const char *val = eq < amp ? eq + 1 : amp;
			size_t raw = (size_t)(amp - val);
			char *out = p->scratch + p->used;

			if (p->used + raw + 1 > sizeof(p->scratch)) {
				*err = "too many parameters";
				return -1;
			}
			vlen = percent_decode(val, raw, out, true);
			if (vlen < 0) {
				*err = "malformed percent-encoding";
				return -1;
			}
			if (memchr(out, '\0', (size_t)vlen) != NULL) {
				*err = "NUL in a parameter";
				return -1;
			}
			out[vlen] = '\0';
			p->v[idx] = out;
			p->used += (size_t)vlen + 1;
		} else if (!escapes_valid(s, (size_t)(amp - s))) {
			/* Unknown keys are ignored, but a malformed escape
			 * anywhere makes a malformed request. */
			*err = "malformed percent-encoding";
			return -1;
		}
		s = amp + 1;
	}
	return 0;
}

struct json {
	const char *s;
	const char *end;
	const char *err;
};

static void
skip_ws(struct json *j)
{
	while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' ||
	    *j->s == '\n' || *j->s == '\r'))
		j->s++;
}

/* Reads a string; with out, decodes it there (it needs at most as many
 * bytes as the escaped form). */
static int
json_string_at(struct json *j, char *out, size_t *outlen)
{
	long	 n;

	n = json_string_read(j->s, j->end, out, out != NULL ?
	    (size_t)(j->end - j->s) : 0, outlen);
	if (n < 0)
		return -1;
	j->s += n;
	return 0;
}

static int json_skip_value(struct json *, int depth);

static int
json_skip_container(struct json *j, char close, int depth)
{
	size_t len;

	if (depth > JSON_MAX_DEPTH) {
		j->err = "JSON nested too deeply";
		return -1;
	}
	j->s++;
	skip_ws(j);
	if (j->s < j->end && *j->s == close) {
		j->s++;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			skip_ws(j);
			if (json_string_at(j, NULL, &len) == -1)
				return -1;
			skip_ws(j);
			if (j->s >= j->end || *j->s != ':')
				return -1;
			j->s++;
		}
		if (json_skip_value(j, depth + 1) == -1)
			return -1;
		skip_ws(j);
		if (j->s >= j->end)
			return -1;
		if (*j->s == close) {
			j->s++;
			return 0;
		}
		if (*j->s != ',')
			return -1;
		j->s++;
	}
}

static int
json_skip_value(struct json *j, int depth)
{
	size_t len;

	skip_ws(j);
	if (j->s >= j->end)
		return -1;
	switch (*j->s) {
	case '"':
		return json_string_at(j, NULL, &len);
	case '{':
		return json_skip_container(j, '}', depth);
	case '[':
		return json_skip_container(j, ']', depth);
	default:
		if (*j->s == '-' || (*j->s >= '0' && *j->s <= '9')) {
			while (j->s < j->end && strchr("+-.eE0123456789", *j->s))
				j->s++;
			return 0;
		}
		if (j->end - j->s >= 4 && memcmp(j->s, "true", 4) == 0) {
			j->s += 4;
			return 0;
		}
		if (j->end - j->s >= 5 && memcmp(j->s, "false", 5) == 0) {
			j->s += 5;
			return 0;
		}
		if (j->end - j->s >= 4 && memcmp(j->s, "null", 4) == 0) {
			j->s += 4;
			return 0;
		}
		return -1;
	}
}

int
params_parse_json(struct params *p, const char *s, size_t len, const char **err)
{
	struct json j = { s, s + len, NULL };
	char key[32];
	size_t klen, vlen;
	const char *kstart;
	int idx;

	skip_ws(&j);
	if (j.s >= j.end || *j.s != '{')
		goto bad;
	j.s++;
	skip_ws(&j);
	if (j.s < j.end && *j.s == '}') {
		j.s++;
		goto done;
	}
	for (;;) {
		skip_ws(&j);
		kstart = j.s;
		if (json_string_at(&j, NULL, &klen) == -1)
			goto bad;
		idx = -1;
		if (klen < sizeof(key)) {
			j.s = kstart;
			json_string_at(&j, key, &klen);
			idx = key_index(key, klen);
		}
		skip_ws(&j);
		if (j.s >= j.end || *j.s != ':')
			goto bad;
		j.s++;
		skip_ws(&j);
		if (idx < 0) {
			if (json_skip_value(&j, 1) == -1)
				goto bad;
		} else if (j.end - j.s >= 4 && memcmp(j.s, "null", 4) == 0) {
			j.s += 4;
			p->v[idx] = NULL;
		} else if (j.s < j.end && *j.s == '"') {
			char *out = p->scratch + p->used;
			if (p->used + (size_t)(j.end - j.s) + 1 > sizeof(p->scratch))
				goto bad;
			if (json_string_at(&j, out, &vlen) == -1)
				goto bad;
			if (memchr(out, '\0', vlen) != NULL) {
				*err = "NUL in a parameter";
				return -1;
			}
			if (!utf8_valid(out, vlen)) {
				*err = "invalid UTF-8 in a parameter";
				return -1;
			}
			out[vlen] = '\0';
			p->v[idx] = out;
			p->used += vlen + 1;
		} else {
			*err = "parameters must be strings";
			return -1;
		}
		skip_ws(&j);
		if (j.s >= j.end)
			goto bad;
		if (*j.s == '}') {
			j.s++;
			break;
		}
		if (*j.s != ',')
			goto bad;
		j.s++;
	}
done:
	skip_ws(&j);
	if (j.s != j.end)
		goto bad;
	return 0;
bad:
	*err = j.err ? j.err : "malformed JSON body";
	return -1;
}
