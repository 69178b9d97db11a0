/* String arena: blocks of 1 MiB, or one block for a longer string. */
#include <stdlib.h>
#include <string.h>

#include "tally/arena.h"
#include "tally/log.h"

#define ARENA_BLOCK	(1 << 20)

const char *
arena_strdup(struct arena *a, const char *s, size_t len)
{
	size_t need = len + 1, sz;
	char *p;

	if (need > a->left) {
		sz = need > ARENA_BLOCK ? need : ARENA_BLOCK;
		if ((a->blocks = reallocarray(a->blocks, a->nblocks + 1,
		    sizeof(*a->blocks))) == NULL ||
		    (a->cur = malloc(sz)) == NULL)
			fatal("arena");
		a->blocks[a->nblocks++] = a->cur;
		a->left = sz;
	}
	p = a->cur;
	memcpy(p, s, len);
	p[len] = '\0';
	a->cur += need;
	a->left -= need;
	return p;
}

void
arena_free(struct arena *a)
{
	size_t i;

	for (i = 0; i < a->nblocks; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}
