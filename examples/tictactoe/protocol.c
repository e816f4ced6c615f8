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

#define TTT_TYPE(name_)                                                                            \
	{                                                                                          \
		.name = name_, .free = payload_free, .encode = payload_encode,                     \
		.decode = payload_decode                                                           \
	}

static const skald_msgtype_t defs[] = {
        TTT_TYPE("ttt.join"),     TTT_TYPE("ttt.assigned"),  TTT_TYPE("ttt.retry"),
        TTT_TYPE("ttt.done"),     TTT_TYPE("ttt.start"),     TTT_TYPE("ttt.get"),
        TTT_TYPE("ttt.move"),     TTT_TYPE("ttt.state"),     TTT_TYPE("ttt.rejected"),
        TTT_TYPE("ttt.finished"), TTT_TYPE("ttt.configure"), TTT_TYPE("ttt.status"),
        TTT_TYPE("ttt.lobby"),
};

int ttt_protocol_register(void)
{
	/* In the order of defs; registering a definition again yields the same
	 * id, so this is safe to call more than once. */
	uint32_t *ids[] = {
	        &ttt_type.join,     &ttt_type.assigned, &ttt_type.retry,     &ttt_type.done,
	        &ttt_type.start,    &ttt_type.get,      &ttt_type.move,      &ttt_type.state,
	        &ttt_type.rejected, &ttt_type.finished, &ttt_type.configure, &ttt_type.status,
	        &ttt_type.lobby,
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

void ttt_pending_keep(ttt_pending_t *p, const skald_msg_t *request)
{
	p->msg = *request;
	p->msg.payload = NULL;
}

int ttt_pending_reply(skald_actor_t *self, const ttt_pending_t *p, uint32_t type, json_t *payload)
{
	/* skald_reply reads only the sender and the ask id of the request, so a
	 * copy answers it as well as the original would. actor.h does not
	 * promise this yet ("a message being handled by self"), but an entity
	 * cannot answer after its events are stored in any other way. */
	return ttt_reply(self, &p->msg, type, payload);
}

json_t *ttt_ref_json(skald_ref_t ref)
{
	char buf[48];
	return json_string(skald_ref_str(ref, buf, sizeof buf));
}

int ttt_ref_parse(const char *s, skald_ref_t *out)
{
	unsigned long long node;
	unsigned actor, incarnation;
	int end = 0;
	if (s == NULL || sscanf(s, "%llx.%u.%u%n", &node, &actor, &incarnation, &end) != 3 ||
	    s[end] != '\0')
		return SKALD_EDECODE;
	*out = (skald_ref_t){(uint64_t)node, actor, incarnation};
	return 0;
}
