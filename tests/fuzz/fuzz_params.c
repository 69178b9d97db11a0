/* libFuzzer: query strings, form bodies and JSON bodies. Every value a
 * parser returns must be a NUL-free C string inside its scratch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally/escape.h"
#include "params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct params *p)
{
	int i;

	for (i = 0; i < P_COUNT_KEYS; i++) {
		if (p->v[i] == NULL)
			continue;
		if (p->v[i] < p->scratch ||
		    p->v[i] + strlen(p->v[i]) >= p->scratch + sizeof(p->scratch))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct params *p;
	const char *err;

	if (size > HTTP_MAX_URI + HTTP_MAX_BODY)
		return 0;
	if ((p = malloc(sizeof(*p))) == NULL)
		return 0;
	params_init(p);
	if (params_parse_form(p, (const char *)data, size, &err) == 0)
		check(p);
	params_init(p);
	if (params_parse_json(p, (const char *)data, size, &err) == 0) {
		check(p);
		for (int i = 0; i < P_COUNT_KEYS; i++)
			if (p->v[i] && !utf8_valid(p->v[i], strlen(p->v[i])))
				abort();
	}
	free(p);
	return 0;
}
