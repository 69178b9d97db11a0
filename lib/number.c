/*
 * One strict decimal reader for the configuration, request parameters,
 * import rows, listen addresses and tallyctl's arguments: what one of
 * them takes as a number, all of them do.
 */
#include "tally/number.h"

int
number_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0, d;
	size_t i;

	if (s == NULL || len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (uint64_t)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;	/* past max, or past 2^64 - 1 */
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}
