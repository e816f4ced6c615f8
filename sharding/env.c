/*
 * sharding/env.c - the envelope of a message on its way to an entity, its
 * bytes between members, the built-in types, and queues of envelopes.
 *
 * Wire format of an envelope (the payload of a TELL of type
 * SKALD__TYPE_SHARD_ENV; integers big-endian):
 *
 *   0   1  version, 1
 *   1   1  kind (SK_*)
 *   2   1  flags (SF_*)
 *   3   1  0
 *   4   2  hops
 *   6   2  id length I (0..1024)
 *   8   4  shard
 *   12  8  view digest of the sending region
 *   20  8  original sender: node, 28 4 actor, 32 4 incarnation (0: none)
 *   36  8  the sender's ask id (0: a tell)
 *   44  4  ms the asker still waits (0: a tell)
 *   48  1  type name length T (0 for control messages)
 *   49  T  type name, then I bytes of id, then the payload: the rest, as
 *          the type's encode wrote it
 *
 * A receiver that does not know the type, or cannot decode the payload,
 * still gets the envelope, with `err` set, so that its region can fail the
 * sender's ask with the reason instead of leaving it to time out.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "sharding/region.h"

#define ENV_HEAD 49u
#define ID_MAX   1024u
#define WIRE_V1  1u

shard_env_t *skald__env_alloc(uint8_t kind, const char *id)
{
	size_t len = id != NULL ? strlen(id) : 0;
	shard_env_t *env = calloc(1, sizeof *env + len + 1);
	if (env == NULL)
		return NULL;
	env->kind = kind;
	if (len > 0)
		memcpy(env->id, id, len);
	return env;
}

void skald__shard_env_free(shard_env_t *env)
{
	if (env == NULL)
		return;
	if (env->payload != NULL) {
		const skald_msgtype_t *t = skald_type_get(env->type);
		if (t != NULL && t->free != NULL)
			t->free(env->payload);
	}
	free(env);
}

static void env_free(void *payload)
{
	skald__shard_env_free(payload);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int env_encode(const void *payload, void **out, size_t *len)
{
	const shard_env_t *env = payload;
	const skald_msgtype_t *t = NULL;
	void *body = NULL;
	size_t blen = 0;
	if (env->kind == SK_MSG) {
		t = skald_type_get(env->type);
		if (t == NULL)
			return SKALD_ENOTYPE;
		if (t->encode == NULL)
			return SKALD_ENOCODEC;
		if (t->encode(env->payload, &body, &blen) < 0)
			return SKALD_EENCODE;
	}
	size_t il = strlen(env->id), tl = t != NULL ? strlen(t->name) : 0;
	if (il > ID_MAX || tl > 255) {
		free(body);
		return SKALD_EENCODE;
	}
	uint8_t *b = malloc(ENV_HEAD + tl + il + blen);
	if (b == NULL) {
		free(body);
		return SKALD_ENOMEM;
	}
	uint64_t now = skald__rg_now();
	uint64_t left = env->deadline > now ? env->deadline - now : (env->deadline ? 1 : 0);
	b[0] = WIRE_V1;
	b[1] = env->kind;
	b[2] = env->flags;
	b[3] = 0;
	put16(b + 4, env->hops);
	put16(b + 6, (uint16_t)il);
	put32(b + 8, env->shard);
	put64(b + 12, env->view);
	put64(b + 20, env->sender.node);
	put32(b + 28, env->sender.actor);
	put32(b + 32, env->sender.incarnation);
	put64(b + 36, env->ask_id);
	put32(b + 44, left > UINT32_MAX ? UINT32_MAX : (uint32_t)left);
	b[48] = (uint8_t)tl;
	if (tl > 0)
		memcpy(b + ENV_HEAD, t->name, tl);
	memcpy(b + ENV_HEAD + tl, env->id, il);
	if (blen > 0)
		memcpy(b + ENV_HEAD + tl + il, body, blen);
	free(body);
	*out = b;
	*len = ENV_HEAD + tl + il + blen;
	return 0;
}

static int env_decode(const void *data, size_t len, void **payload)
{
	const uint8_t *b = data;
	if (len < ENV_HEAD || b[0] != WIRE_V1 || b[1] > SK_KIND_MAX)
		return SKALD_EDECODE;
	size_t il = get16(b + 6), tl = b[48];
	if (il > ID_MAX || len < ENV_HEAD + tl + il)
		return SKALD_EDECODE;
	if (memchr(b + ENV_HEAD + tl, '\0', il) != NULL)
		return SKALD_EDECODE;
	shard_env_t *env = calloc(1, sizeof *env + il + 1);
	if (env == NULL)
		return SKALD_ENOMEM;
	env->kind = b[1];
	env->flags = b[2];
	env->hops = get16(b + 4);
	env->shard = get32(b + 8);
	env->view = get64(b + 12);
	env->sender = (skald_ref_t){get64(b + 20), get32(b + 28), get32(b + 32)};
	env->ask_id = get64(b + 36);
	uint32_t left = get32(b + 44);
	env->deadline = left ? skald__rg_now() + left : 0;
	memcpy(env->id, b + ENV_HEAD + tl, il);
	if (env->kind == SK_MSG) {
		char name[256];
		memcpy(name, b + ENV_HEAD, tl);
		name[tl] = '\0';
		const skald_msgtype_t *t = NULL;
		if (tl == 0 || skald_type_lookup(name, &env->type) < 0 ||
		    (t = skald_type_get(env->type)) == NULL)
			env->err = SKALD_ENOTYPE;
		else if (t->decode == NULL)
			env->err = SKALD_ENOCODEC;
		else if (t->decode(b + ENV_HEAD + tl + il, len - ENV_HEAD - tl - il,
		                   &env->payload) < 0)
			env->err = SKALD_EDECODE;
		if (env->err != 0)
			env->payload = NULL;
	}
	*payload = env;
	return 0;
}

static const skald_msgtype_t env_type = {
        .name = "skald.shard.env",
        .free = env_free,
        .encode = env_encode,
        .decode = env_decode,
};

static void json_free(void *payload)
{
	json_decref(payload);
}

/* Local only: no codec. */
static const skald_msgtype_t ready_type = {.name = "skald.shard.ready"};
static const skald_msgtype_t stop_type = {.name = "skald.shard.stop"};
static const skald_msgtype_t rem_type = {.name = "skald.shard.remember", .free = json_free};
static const skald_msgtype_t rem_ack_type = {.name = "skald.shard.remembered"};
static const skald_msgtype_t rem_list_type = {.name = "skald.shard.remembered-list",
                                              .free = json_free};

int skald__sharding_types(void)
{
	static const struct {
		uint32_t id;
		const skald_msgtype_t *def;
	} all[] = {
	        {SKALD__TYPE_SHARD_ENV, &env_type},
	        {SKALD__TYPE_SHARD_READY, &ready_type},
	        {SKALD__TYPE_SHARD_STOP, &stop_type},
	        {SKALD__TYPE_SHARD_REM, &rem_type},
	        {SKALD__TYPE_SHARD_REM_ACK, &rem_ack_type},
	        {SKALD__TYPE_SHARD_REM_LIST, &rem_list_type},
	};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		int rc = skald__type_install(all[i].id, all[i].def);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void skald__q_push(msgq_t *q, shard_env_t *env)
{
	env->next = NULL;
	if (q->tail == NULL)
		q->head = env;
	else
		q->tail->next = env;
	q->tail = env;
	q->n++;
}

shard_env_t *skald__q_pop(msgq_t *q)
{
	shard_env_t *env = q->head;
	if (env == NULL)
		return NULL;
	q->head = env->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	env->next = NULL;
	return env;
}

void skald__q_move(msgq_t *dst, msgq_t *src)
{
	if (src->head == NULL)
		return;
	if (dst->tail == NULL)
		dst->head = src->head;
	else
		dst->tail->next = src->head;
	dst->tail = src->tail;
	dst->n += src->n;
	*src = (msgq_t){0};
}
