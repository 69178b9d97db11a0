/* A growable byte buffer, always NUL-terminated. Allocation failure is
 * fatal: every caller would do the same. */
#ifndef TALLY_BUF_H
#define TALLY_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tally/log.h"

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void buf_init(struct buf *);
void buf_free(struct buf *);
void buf_reset(struct buf *);
void buf_reserve(struct buf *, size_t extra);
void buf_printf(struct buf *, const char *fmt, ...) TALLY_PRINTF(2, 3);
void buf_put_u64(struct buf *, uint64_t);
/* Writes v in decimal, without a NUL; returns the length (at most 20). */
size_t u64_text(char out[20], uint64_t v);

/*
 * Appending is most of what building an answer costs: inline, it is a
 * length test and a copy, and only a buffer that must grow calls out.
 */
static inline void
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n >= b->cap - b->len)	/* also when cap is 0 */
		buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static inline void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

static inline void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

#endif
