/*
 * actors/cluster/spawn.c - remote spawn: the process-wide table of
 * behaviours by name, and the spawn itself, an ask to the registry actor
 * of the chosen member, which decodes the argument with the type of that
 * name it knows and spawns a top-level actor there.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/reg.h"
#include "actors/internal.h"

#define MAX_BEHAVIORS 256

typedef struct named_s {
	const char *name;
	const skald_behavior_t *b;
} named_t;

static named_t behaviors[MAX_BEHAVIORS];
static size_t nbehaviors;
static uv_mutex_t lock;
static uv_once_t once = UV_ONCE_INIT;

static void init_once(void)
{
	if (uv_mutex_init(&lock) != 0)
		abort();
}

int skald_cluster_behavior_register(const char *name, const skald_behavior_t *b)
{
	int rc = skald__reg_check_name(name);
	if (rc < 0)
		return rc;
	if (b == NULL || b->receive == NULL)
		return SKALD_EINVAL;
	uv_once(&once, init_once);
	uv_mutex_lock(&lock);
	rc = 0;
	size_t i;
	for (i = 0; i < nbehaviors && strcmp(behaviors[i].name, name) != 0; i++)
		;
	if (i < nbehaviors)
		rc = behaviors[i].b == b ? 0 : SKALD_EEXISTS;
	else if (nbehaviors == MAX_BEHAVIORS)
		rc = SKALD_ETOOMANY;
	else
		behaviors[nbehaviors++] = (named_t){name, b};
	uv_mutex_unlock(&lock);
	return rc;
}

static const skald_behavior_t *behavior_find(const char *name)
{
	uv_once(&once, init_once);
	const skald_behavior_t *b = NULL;
	uv_mutex_lock(&lock);
	for (size_t i = 0; i < nbehaviors && b == NULL; i++)
		if (strcmp(behaviors[i].name, name) == 0)
			b = behaviors[i].b;
	uv_mutex_unlock(&lock);
	return b;
}

int skald__reg_serve_spawn(skald_system_t *sys, const skald__reg_spawn_t *req, skald_ref_t *out)
{
	const skald_behavior_t *b = behavior_find(req->behavior);
	if (b == NULL)
		return SKALD_ENOTFOUND;
	void *arg = NULL;
	const skald_msgtype_t *t = NULL;
	if (req->type[0] != '\0') {
		uint32_t id;
		if (skald_type_lookup(req->type, &id) < 0)
			return SKALD_ENOTYPE;
		t = skald_type_get(id);
		int rc = skald__type_decode(t, req->data, req->len, &arg);
		if (rc < 0)
			return rc;
	}
	int rc = skald_spawn(sys, b, arg, NULL, out);
	if (rc < 0)
		skald__type_free(t, arg);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The spawner's side                                                        */

/* The request for behavior with payload of type, encoded now. */
static int request(const char *behavior, uint32_t type, const void *payload, uint64_t node,
                   uint64_t timeout_ms, skald__reg_spawn_t **out)
{
	int rc = skald__reg_check_name(behavior);
	if (rc < 0)
		return rc;
	if (type == 0 && payload != NULL)
		return SKALD_EINVAL;
	const skald_msgtype_t *t = type != 0 ? skald_type_get(type) : NULL;
	if (type != 0 && t == NULL)
		return SKALD_ENOTYPE;
	skald__reg_spawn_t *s = calloc(1, sizeof *s);
	if (s == NULL)
		return SKALD_ENOMEM;
	s->behavior = strdup(behavior);
	s->type = strdup(t != NULL ? t->name : "");
	if (s->behavior == NULL || s->type == NULL) {
		skald__reg_spawn_free(s);
		return SKALD_ENOMEM;
	}
	if (t != NULL && (rc = skald__type_encode(t, payload, (void **)&s->data, &s->len)) < 0) {
		skald__reg_spawn_free(s);
		return rc; /* SKALD_ENOCODEC, SKALD_EENCODE */
	}
	s->node = node;
	s->timeout_ms = timeout_ms;
	*out = s;
	return 0;
}

/* The daemon of this node, which relays the request, if node is this one
 * or an up member. */
static int relay_of(skald_system_t *sys, skald__reg_t *reg, uint64_t node, skald_ref_t *out)
{
	skald_member_t *v;
	size_t n;
	int rc = skald__cluster_view(sys, &v, &n);
	if (rc < 0)
		return rc;
	int up = node == reg->self;
	for (size_t i = 0; i < n; i++)
		up |= v[i].node == node;
	free(v);
	if (!up)
		return SKALD_ENODEDOWN;
	uv_mutex_lock(&reg->lock);
	*out = reg->daemon;
	uv_mutex_unlock(&reg->lock);
	return skald_ref_is_null(*out) ? SKALD_ESTOPPING : 0;
}

typedef struct spawn_ctx_s {
	skald_spawned_fn cb;
	void *arg;
} spawn_ctx_t;

/* The outcome of the ask, turned into the spawn's. */
static int outcome(int status, const skald_msg_t *reply, skald_ref_t *ref)
{
	*ref = SKALD_REF_NULL;
	if (status < 0)
		return status;
	if (reply == NULL || reply->type != skald__t_reg_result || reply->payload == NULL)
		return SKALD_EPROTO;
	const skald__reg_result_t *res = reply->payload;
	if (res->status == 0)
		*ref = res->ref;
	return res->status;
}

static void spawned(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	spawn_ctx_t ctx = *(spawn_ctx_t *)arg;
	free(arg);
	skald_ref_t ref;
	status = outcome(status, reply, &ref);
	ctx.cb(self, state, status, ref, ctx.arg);
}

int skald_cluster_spawn(skald_actor_t *self, uint64_t node, const char *behavior, uint32_t type,
                        const void *payload, uint64_t timeout_ms, skald_spawned_fn cb, void *arg)
{
	skald__reg_t *reg = self != NULL ? skald__reg_of(self->thread->sys) : NULL;
	if (reg == NULL || cb == NULL || behavior == NULL)
		return SKALD_EINVAL;
	if (skald__current != self->thread)
		return SKALD_ENOTOWNER;
	skald_ref_t to;
	int rc = relay_of(self->thread->sys, reg, node, &to);
	if (rc < 0)
		return rc;
	skald__reg_spawn_t *req;
	if ((rc = request(behavior, type, payload, node, timeout_ms, &req)) < 0)
		return rc;
	spawn_ctx_t *ctx = malloc(sizeof *ctx);
	if (ctx == NULL) {
		skald__reg_spawn_free(req);
		return SKALD_ENOMEM;
	}
	*ctx = (spawn_ctx_t){cb, arg};
	rc = skald_ask(self, to, skald__t_reg_spawn, req, timeout_ms, spawned, ctx);
	if (rc < 0) {
		skald__reg_spawn_free(req);
		free(ctx);
	}
	return rc;
}

int skald_cluster_system_spawn(skald_system_t *sys, uint64_t node, const char *behavior,
                               uint32_t type, const void *payload, uint64_t timeout_ms,
                               skald_ref_t *ref)
{
	skald__reg_t *reg = skald__reg_of(sys);
	if (reg == NULL || behavior == NULL || ref == NULL)
		return SKALD_EINVAL;
	if (skald__current != NULL)
		return SKALD_ENOTOWNER;
	skald_ref_t to;
	int rc = relay_of(sys, reg, node, &to);
	if (rc < 0)
		return rc;
	skald__reg_spawn_t *req;
	if ((rc = request(behavior, type, payload, node, timeout_ms, &req)) < 0)
		return rc;
	uint32_t rtype;
	void *rpayload = NULL;
	rc = skald_system_ask(sys, to, skald__t_reg_spawn, req, timeout_ms, &rtype, &rpayload);
	/* Failures found before sending leave the request ours. */
	if (rc == SKALD_EINVAL || rc == SKALD_ENOTYPE || rc == SKALD_ENOTOWNER ||
	    rc == SKALD_ENOMEM)
		skald__reg_spawn_free(req);
	skald_msg_t reply = {rtype, rpayload, SKALD_REF_NULL, 0};
	rc = outcome(rc, &reply, ref);
	skald_payload_free(rtype, rpayload);
	return rc;
}
