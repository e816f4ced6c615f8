/*
 * actors/codec_fixed.c - skald_codec_fixed: a payload of plain data of the
 * type's size crosses as its bytes (see skald_msgtype_t.codec).
 */
#include <stdlib.h>
#include <string.h>

#include "skald/actor.h"

static int fixed_encode(const skald_msgtype_t *t, const void *payload, void **out, size_t *len)
{
	if (payload == NULL)
		return SKALD_EENCODE;
	if ((*out = malloc(t->size)) == NULL)
		return SKALD_ENOMEM;
	memcpy(*out, payload, t->size);
	*len = t->size;
	return 0;
}

static int fixed_decode(const skald_msgtype_t *t, const void *data, size_t len, void **payload)
{
	/* Another size means another layout: never guess. */
	if (len != t->size)
		return SKALD_EDECODE;
	if ((*payload = malloc(len)) == NULL)
		return SKALD_ENOMEM;
	memcpy(*payload, data, len);
	return 0;
}

const skald_codec_t skald_codec_fixed = {
        .name = "fixed",
        .sized = 1,
        .encode = fixed_encode,
        .decode = fixed_decode,
        .free = free,
};
