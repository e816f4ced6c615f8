/*
 * actors/codec_json.c - skald_codec_json: a json_t * payload crosses as
 * compact JSON text (see skald_msgtype_t.codec). In a file of its own, so
 * that a program that never names it does not link jansson for it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "skald/actor.h"

static int json_encode(const skald_msgtype_t *t, const void *payload, void **out, size_t *len)
{
	/* JSON_ENCODE_ANY: a message may be any JSON value, not only an
	 * object or array. Borrows payload. */
	char *s = payload != NULL ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	if (s == NULL)
		return SKALD_EENCODE;
	*out = s;
	*len = strlen(s);
	return 0;
}

static int json_decode(const skald_msgtype_t *t, const void *data, size_t len, void **payload)
{
	json_error_t err;
	json_t *v = json_loadb(data, len, JSON_DECODE_ANY, &err);
	if (v == NULL)
		return SKALD_EDECODE;
	*payload = v; /* the new reference goes to the receiver */
	return 0;
}

static void json_free(void *payload)
{
	json_decref(payload);
}

const skald_codec_t skald_codec_json = {
        .name = "json",
        .encode = json_encode,
        .decode = json_decode,
        .free = json_free,
};
