/* A growable byte buffer, always NUL-terminated. Allocation failure is
 * fatal: every caller would do the same. */
#ifndef TALLY_BUF_H
#define TALLY_BUF_H

#include <stddef.h>
#include <stdint.h>
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
void buf_append(struct buf *, const void *, size_t);
void buf_puts(struct buf *, const char *);
void buf_putc(struct buf *, char);
void buf_printf(struct buf *, const char *fmt, ...) TALLY_PRINTF(2, 3);
void buf_put_u64(struct buf *, uint64_t);
/* Writes v in decimal, without a NUL; returns the length (at most 20). */
size_t u64_text(char out[20], uint64_t v);

#endif
