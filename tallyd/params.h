/* Request parameters from a query string, a form body or a JSON body. */
#ifndef TALLYD_PARAMS_H
#define TALLYD_PARAMS_H

#include <stddef.h>

#include "http.h"

enum param_key {
	P_SITE,
	P_PATH,
	P_REFERRER,
	P_SHOW,
	P_LABEL_TODAY,
	P_LABEL_TOTAL,
	P_LABEL_PAGE,
	P_COUNT,
	P_LOCALE,
	P_STYLE,
	P_COLOR,
	P_LABEL_COLOR,
	P_DAYS,
	P_FROM,
	P_TO,
	P_SHARE,
	P_PREFIX,
	P_PAGE,
	P_PERIOD,
	P_COUNT_KEYS
};

struct params {
	const char *v[P_COUNT_KEYS];	/* decoded, NUL-free; NULL: absent */
	size_t	 used;
	char	 scratch[HTTP_MAX_URI + HTTP_MAX_BODY + 64];
};

void params_init(struct params *);
/* application/x-www-form-urlencoded, as in a query string. Returns -1
 * with *err set on malformed input. Later values of a key win. */
int params_parse_form(struct params *, const char *s, size_t len, const char **err);
/* A JSON object whose known keys hold strings (or null). */
int params_parse_json(struct params *, const char *s, size_t len, const char **err);

#endif
