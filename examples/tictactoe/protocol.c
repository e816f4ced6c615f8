/*
 * examples/tictactoe/protocol.c - message types and JSON payload helpers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

ttt_types_t ttt_type;

static void payload_free(void *payload)
{
	json_decref(payload);
}

static int payload_encode(const void *payload, void **out, size_t *len)
{
	char *text = json_dumps(payload, JSON_COMPACT);
	if (text == NULL)
		return SKALD_EENCODE;
	*out = text;
	*len = strlen(text);
	return 0;
}

static int payload_decode(const void *data, size_t len, void **payload)
{
	json_t *obj = json_loadb(data, len, 0, NULL);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return SKALD_EDECODE;
	}
	*payload = obj;
	return 0;
}

/* A codec written out rather than chosen (.codec = &skald_codec_json):
 * sharding (sharding/env.c) encodes a message with its type's own encode
 * and decode, and refuses a type that only names a codec. */
#define TTT_TYPE(name_)                                                                            \
	{                                                                                          \
		.name = name_, .free = payload_free, .encode = payload_encode,                     \
		.decode = payload_decode                                                           \
	}

static const skald_msgtype_t defs[] = {
        TTT_TYPE("ttt.join"),     TTT_TYPE("ttt.leave"),    TTT_TYPE("ttt.update"),
        TTT_TYPE("ttt.matched"),  TTT_TYPE("ttt.start"),    TTT_TYPE("ttt.get"),
        TTT_TYPE("ttt.move"),     TTT_TYPE("ttt.watch"),    TTT_TYPE("ttt.state"),
        TTT_TYPE("ttt.rejected"), TTT_TYPE("ttt.finished"), TTT_TYPE("ttt.status"),
        TTT_TYPE("ttt.lobby"),    TTT_TYPE("ttt.seek"),     TTT_TYPE("ttt.line"),
};

int ttt_protocol_register(void)
{
	/* In the order of defs; registering a definition again yields the same
	 * id, so this is safe to call more than once. */
	uint32_t *ids[] = {
	        &ttt_type.join,  &ttt_type.leave,    &ttt_type.update,   &ttt_type.matched,
	        &ttt_type.start, &ttt_type.get,      &ttt_type.move,     &ttt_type.watch,
	        &ttt_type.state, &ttt_type.rejected, &ttt_type.finished, &ttt_type.status,
	        &ttt_type.lobby, &ttt_type.seek,     &ttt_type.line,
	};
	_Static_assert(sizeof ids / sizeof ids[0] == sizeof defs / sizeof defs[0],
	               "one id per message type");
	for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
		int rc = skald_type_register(&defs[i], ids[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

json_t *ttt_payload(skald_msg_t *msg)
{
	/* Only our types carry JSON: any other payload (a down notice, say) must
	 * not be read as a json_t. All of ours share payload_free. */
	const skald_msgtype_t *t = skald_type_get(msg->type);
	if (t == NULL || t->free != payload_free || !json_is_object((json_t *)msg->payload))
		return NULL;
	return msg->payload;
}

const char *ttt_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int ttt_name(const json_t *obj, const char *key, char *dst)
{
	const char *s = ttt_str(obj, key);
	if (s == NULL || s[0] == '\0' || strlen(s) >= TTT_NAME_MAX)
		return SKALD_EDECODE;
	strcpy(dst, s);
	return 0;
}

int ttt_tell(skald_actor_t *self, skald_ref_t to, uint32_t type, json_t *payload)
{
	int rc = payload != NULL ? skald_tell(self, to, type, payload) : SKALD_ENOMEM;
	if (rc < 0)
		json_decref(payload);
	return rc;
}

int ttt_reply(skald_actor_t *self, const skald_msg_t *request, uint32_t type, json_t *payload)
{
	int rc = payload != NULL ? skald_reply(self, request, type, payload) : SKALD_ENOMEM;
	if (rc < 0)
		json_decref(payload);
	return rc;
}

int ttt_grow(void *vp, size_t *cap, size_t n, size_t size)
{
	void **v = vp;
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *p = realloc(*v, c * size);
	if (p == NULL)
		return SKALD_ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

json_t *ttt_ref_json(skald_ref_t ref)
{
	char buf[48];
	return json_string(skald_ref_is_null(ref) ? "" : skald_ref_str(ref, buf, sizeof buf));
}

int ttt_ref_parse(const char *s, skald_ref_t *out)
{
	unsigned long long node;
	unsigned actor, incarnation;
	int end = 0;
	if (s != NULL && s[0] == '\0') {
		*out = SKALD_REF_NULL;
		return 0;
	}
	if (s == NULL || sscanf(s, "%llx.%u.%u%n", &node, &actor, &incarnation, &end) != 3 ||
	    s[end] != '\0')
		return SKALD_EDECODE;
	*out = (skald_ref_t){(uint64_t)node, actor, incarnation};
	return 0;
}
