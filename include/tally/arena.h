/* Strings kept in big blocks and freed at once: an import holds
 * millions of them, mostly short. Allocation failure is fatal. */
#ifndef TALLY_ARENA_H
#define TALLY_ARENA_H

#include <stddef.h>

struct arena {
	char	**blocks;
	size_t	  nblocks;
	char	 *cur;
	size_t	  left;
};

/* A NUL-terminated copy of s[0..len). */
const char *arena_strdup(struct arena *, const char *s, size_t len);
void arena_free(struct arena *);

#endif
