/*
 * stores/postgres/buf.c - a growing byte buffer for statement parameters
 * and JSON text.
 */
#include <stdlib.h>
#include <string.h>

#include "stores/postgres/pg.h"

void skald__pg_buf_reserve(skald__pg_buf_t *b, size_t more)
{
	if (b->failed || b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->failed = 1;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void skald__pg_buf_put(skald__pg_buf_t *b, const void *data, size_t len)
{
	skald__pg_buf_reserve(b, len);
	if (b->failed)
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}
