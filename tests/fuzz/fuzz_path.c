/* libFuzzer: path normalization and origins. A normalized path must be
 * valid, short, and normalize to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally/escape.h"
#include "tally/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[PATH_MAX_LEN + 1], again[PATH_MAX_LEN + 1], origin[300];
	char *s;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (path_normalize(s, size, out) == PATH_OK) {
		size_t n = strlen(out);

		if (n == 0 || n > PATH_MAX_LEN || out[0] != '/' ||
		    !utf8_valid(out, n))
			abort();
		/* Decoding happens once: only a path without '%' must be a
		 * fixed point. */
		if (strchr(out, '%') == NULL && strchr(out, '?') == NULL &&
		    strchr(out, '#') == NULL &&
		    (path_normalize(out, n, again) != PATH_OK ||
		    strcmp(out, again) != 0))
			abort();
	}
	if (url_origin(s, origin, sizeof(origin)) == 0 &&
	    strlen(origin) >= sizeof(origin))
		abort();
	free(s);
	return 0;
}
