/*
 * actors/cluster/names.c - the names of the cluster registry: register,
 * unregister, whereis, and lookups that wait for a name to appear.
 *
 * Every call applies its change to the table at once, under its lock, and
 * tells the registry actor, which sends it to the other members (reg.h).
 * A waiting lookup is an ask of the caller's that the table answers when
 * the name appears (table.c skald__reg_wake); its own timer ends it.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/reg.h"
#include "actors/internal.h"

#define MAX_WAITERS 1024

int skald_cluster_register(skald_system_t *sys, const char *name, skald_ref_t ref)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, name, &reg);
	if (rc < 0)
		return rc;
	if (skald_ref_is_null(ref))
		return SKALD_EINVAL;
	uv_mutex_lock(&reg->lock);
	skald__reg_entry_t *w = skald__reg_winner(reg, name);
	if (w != NULL) {
		rc = skald_ref_eq(w->ref, ref) ? 0 : SKALD_EEXISTS;
	} else if ((rc = skald__reg_add(reg, REG_NAME, name, ref, reg->self)) == 0 &&
	           (rc = skald__reg_tell(reg, REG_NAME, 1, name, ref)) < 0) {
		skald__reg_del(reg, skald__reg_own_name(reg, name), 0);
	}
	uv_mutex_unlock(&reg->lock);
	return rc;
}

int skald_cluster_unregister(skald_system_t *sys, const char *name)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, name, &reg);
	if (rc < 0)
		return rc;
	uv_mutex_lock(&reg->lock);
	skald__reg_entry_t *own = skald__reg_own_name(reg, name);
	if (own == NULL) {
		rc = SKALD_ENOTFOUND;
	} else {
		skald_ref_t ref = own->ref;
		skald__reg_del(reg, own, 0);
		rc = skald__reg_tell(reg, REG_NAME, 0, name, ref);
	}
	uv_mutex_unlock(&reg->lock);
	return rc;
}

int skald_cluster_whereis(skald_system_t *sys, const char *name, skald_ref_t *ref)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, name, &reg);
	if (rc < 0)
		return rc;
	if (ref == NULL)
		return SKALD_EINVAL;
	uv_mutex_lock(&reg->lock);
	skald__reg_entry_t *w = skald__reg_winner(reg, name);
	if (w != NULL)
		*ref = w->ref;
	uv_mutex_unlock(&reg->lock);
	return w != NULL ? 0 : SKALD_ENOTFOUND;
}

typedef struct lookup_ctx_s {
	skald_lookup_fn cb;
	void *arg;
} lookup_ctx_t;

static void looked_up(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	lookup_ctx_t ctx = *(lookup_ctx_t *)arg;
	free(arg);
	skald_ref_t ref = SKALD_REF_NULL;
	if (status == 0) {
		if (reply->type != skald__t_reg_result || reply->payload == NULL)
			status = SKALD_EPROTO;
		else
			ref = ((const skald__reg_result_t *)reply->payload)->ref;
	}
	ctx.cb(self, state, status, ref, ctx.arg);
}

/* Time the answer of a name already known (or of a timeout 0) has to
 * arrive before the ask's own timer would end it: it is already queued. */
#define ANSWER_SLACK_MS 1000

int skald_cluster_lookup(skald_actor_t *self, const char *name, uint64_t timeout_ms,
                         skald_lookup_fn cb, void *arg)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(self != NULL ? self->thread->sys : NULL, name, &reg);
	if (rc < 0)
		return rc;
	if (cb == NULL)
		return SKALD_EINVAL;
	if (skald__current != self->thread)
		return SKALD_ENOTOWNER;
	lookup_ctx_t *ctx = malloc(sizeof *ctx);
	char *copy = strdup(name);
	if (ctx == NULL || copy == NULL) {
		free(ctx);
		free(copy);
		return SKALD_ENOMEM;
	}
	*ctx = (lookup_ctx_t){cb, arg};
	uv_mutex_lock(&reg->lock);
	skald__reg_entry_t *w = skald__reg_winner(reg, name);
	int wait = w == NULL && timeout_ms > 0;
	if (wait && reg->nwaiters == MAX_WAITERS)
		skald__reg_wake(reg, NULL, SKALD_REF_NULL); /* forget the expired */
	if (wait && reg->nwaiters == MAX_WAITERS) {
		rc = SKALD_ETOOMANY;
	} else if (wait && reg->nwaiters == reg->capwaiters) {
		size_t cap = reg->capwaiters ? reg->capwaiters * 2 : 16;
		skald__reg_waiter_t *v = realloc(reg->waiters, cap * sizeof *v);
		if (v == NULL) {
			rc = SKALD_ENOMEM;
		} else {
			reg->waiters = v;
			reg->capwaiters = cap;
		}
	}
	uint64_t corr = 0;
	if (rc == 0)
		rc = skald__ask_pending(self, wait ? timeout_ms : timeout_ms + ANSWER_SLACK_MS,
		                        looked_up, ctx, &corr);
	if (rc < 0) {
		uv_mutex_unlock(&reg->lock);
		free(ctx);
		free(copy);
		return rc;
	}
	if (wait) {
		reg->waiters[reg->nwaiters++] =
		        (skald__reg_waiter_t){copy, self->ref, corr, skald__mono_ms() + timeout_ms};
		copy = NULL;
	} else {
		skald__reg_answer(reg->sys, self->ref, corr, w != NULL ? 0 : SKALD_ETIMEDOUT,
		                  w != NULL ? w->ref : SKALD_REF_NULL);
	}
	uv_mutex_unlock(&reg->lock);
	free(copy);
	return 0;
}

int skald_cluster_system_lookup(skald_system_t *sys, const char *name, uint64_t timeout_ms,
                                skald_ref_t *ref)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, name, &reg);
	if (rc < 0)
		return rc;
	if (ref == NULL)
		return SKALD_EINVAL;
	if (skald__current != NULL)
		return SKALD_ENOTOWNER;
	uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ull;
	uv_mutex_lock(&reg->lock);
	for (;;) {
		skald__reg_entry_t *w = skald__reg_winner(reg, name);
		if (w != NULL) {
			*ref = w->ref;
			rc = 0;
			break;
		}
		uint64_t now = uv_hrtime();
		if (reg->closed || now >= deadline) {
			rc = reg->closed ? SKALD_ESTOPPING : SKALD_ETIMEDOUT;
			break;
		}
		uv_cond_timedwait(&reg->cond, &reg->lock, deadline - now);
	}
	uv_mutex_unlock(&reg->lock);
	return rc;
}
