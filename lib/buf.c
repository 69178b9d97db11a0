/* A growable byte buffer, always NUL-terminated. */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/buf.h"

#define BUF_MIN_CAP	64

/* An empty buffer points here instead of allocating, so that data is a
 * valid string from buf_init on and unused buffers cost nothing. It is
 * never written: cap stays 0 until the first real allocation. */
static char buf_empty[1];

void
buf_init(struct buf *b)
{
	b->data = buf_empty;
	b->len = 0;
	b->cap = 0;
}

void
buf_free(struct buf *b)
{
	if (b->cap > 0)
		free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap > 0)
		b->data[0] = '\0';
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t	 need, newcap;
	char	*p;

	/* The + 1 is for the terminating NUL. */
	if (extra > SIZE_MAX - 1 - b->len)
		fatalx("buffer size overflow");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;

	newcap = b->cap > 0 ? b->cap : BUF_MIN_CAP;
	while (newcap < need) {
		if (newcap > SIZE_MAX / 2) {
			newcap = need;
			break;
		}
		newcap *= 2;
	}

	/* A zeroed struct buf (data NULL) works as well as buf_init's. */
	p = realloc(b->cap > 0 ? b->data : NULL, newcap);
	if (p == NULL)
		fatal("buffer of %zu bytes", newcap);
	if (b->cap == 0)
		p[0] = '\0';
	b->data = p;
	b->cap = newcap;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 room;
	int	 n;

	/* Try in the room there is; grow and format again only when it
	 * did not fit. */
	buf_reserve(b, BUF_MIN_CAP / 2);
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("buf_printf");
	if ((size_t)n >= room) {
		buf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatal("buf_printf");
	}
	b->len += (size_t)n;
}

/* Decimal without printf: answers are mostly numbers. Two digits at a
 * time, from a table. */
size_t
u64_text(char out[20], uint64_t v)
{
	static const char pairs[] =
	    "00010203040506070809101112131415161718192021222324"
	    "25262728293031323334353637383940414243444546474849"
	    "50515253545556575859606162636465666768697071727374"
	    "75767778798081828384858687888990919293949596979899";
	uint64_t p10 = 10;
	size_t n = 1;
	char *p;

	/* The length first, to write straight into out from its end. */
	while (n < 20 && v >= p10) {
		n++;
		p10 *= 10;
	}
	p = out + n;
	while (v >= 100) {
		p -= 2;
		memcpy(p, pairs + (v % 100) * 2, 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, pairs + v * 2, 2);
	} else
		*--p = (char)('0' + v);
	return n;
}

void
buf_put_u64(struct buf *b, uint64_t v)
{
	char tmp[20];

	buf_append(b, tmp, u64_text(tmp, v));
}
