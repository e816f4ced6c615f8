/*
 * journal/data.c - the rules of event and snapshot data that every store
 * applies (skald__data_check, docs/EVENT-DATA.md), so that a history moves
 * between stores unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "journal/journal_int.h"

typedef struct walk_s {
	int depth_over; /* nested deeper than SKALD_DATA_MAX_DEPTH */
	int nul;        /* a string or key holds U+0000 */
	size_t bound;   /* at least the length of the compact JSON text */
} walk_t;

/* The longest a string of len bytes can print as JSON: every byte a \u00XX
 * escape, and the quotes. */
static size_t string_bound(size_t len)
{
	return 6 * len + 2;
}

static void walk(const json_t *v, int depth, walk_t *w)
{
	if (depth > SKALD_DATA_MAX_DEPTH) {
		w->depth_over = 1;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		w->bound += 2;
		for (void *it = json_object_iter((json_t *)v); it != NULL && !w->depth_over;
		     it = json_object_iter_next((json_t *)v, it)) {
			const char *key = json_object_iter_key(it);
			size_t len = json_object_iter_key_len(it);
			if (memchr(key, '\0', len) != NULL)
				w->nul = 1;
			w->bound += string_bound(len) + 2;
			walk(json_object_iter_value(it), depth + 1, w);
		}
		return;
	case JSON_ARRAY:
		w->bound += 2;
		for (size_t i = 0; i < json_array_size(v) && !w->depth_over; i++) {
			w->bound += 1;
			walk(json_array_get(v, i), depth + 1, w);
		}
		return;
	case JSON_STRING: {
		size_t len = json_string_length(v);
		if (memchr(json_string_value(v), '\0', len) != NULL)
			w->nul = 1;
		w->bound += string_bound(len);
		return;
	}
	case JSON_INTEGER:
	case JSON_REAL:
		/* "-9223372036854775808", or %.17g with an exponent and ".0" */
		w->bound += 32;
		return;
	default:
		w->bound += 5;
		return;
	}
}

/* Counts the bytes jansson writes, and stops it past the limit. */
static int count_bytes(const char *buf, size_t size, void *arg)
{
	size_t *n = arg;
	*n += size;
	return *n > SKALD_DATA_MAX_BYTES ? -1 : 0;
}

int skald__data_check(const json_t *data, char *why, size_t whylen)
{
	if (!json_is_object(data)) {
		snprintf(why, whylen, "is not a JSON object");
		return SKALD_EREJECTED;
	}
	walk_t w = {0};
	walk(data, 1, &w);
	if (w.depth_over) {
		snprintf(why, whylen, "is nested deeper than SKALD_DATA_MAX_DEPTH (%d) levels",
		         SKALD_DATA_MAX_DEPTH);
		return SKALD_EREJECTED;
	}
	if (w.nul) {
		snprintf(why, whylen,
		         "holds U+0000 (\\u0000) in a string or key: PostgreSQL cannot keep it, "
		         "so no store accepts it");
		return SKALD_EREJECTED;
	}
	/* Most data is far below the limit: measure the text only when the
	 * bound does not settle it. */
	if (w.bound <= SKALD_DATA_MAX_BYTES)
		return 0;
	size_t n = 0;
	if (json_dump_callback(data, count_bytes, &n, JSON_COMPACT) != 0 ||
	    n > SKALD_DATA_MAX_BYTES) {
		if (n > SKALD_DATA_MAX_BYTES)
			snprintf(why, whylen,
			         "takes more than SKALD_DATA_MAX_BYTES (%u) bytes as JSON text",
			         SKALD_DATA_MAX_BYTES);
		else
			snprintf(why, whylen, "cannot be written as JSON text");
		return SKALD_EREJECTED;
	}
	return 0;
}
