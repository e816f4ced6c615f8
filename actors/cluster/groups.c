/*
 * actors/cluster/groups.c - groups of the cluster registry: actors checked
 * in under a key, listings, and subscriptions to a key's changes.
 *
 * A subscription is kept in the table, and every change of a listing is
 * sent to the key's subscribers under the table's lock, the listing itself
 * (CURRENT) included: so a subscriber gets the listing first and then
 * every change after it, none twice and none missed. The registry actor
 * watches each subscriber, to forget its subscriptions when it stops.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/reg.h"
#include "actors/internal.h"

#define MAX_SUBS 1024

int skald_group_join(skald_system_t *sys, const char *key, skald_ref_t ref)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, key, &reg);
	if (rc < 0)
		return rc;
	if (skald_ref_is_null(ref))
		return SKALD_EINVAL;
	uv_mutex_lock(&reg->lock);
	if (skald__reg_find(reg, REG_GROUP, key, ref, reg->self) == NULL &&
	    (rc = skald__reg_add(reg, REG_GROUP, key, ref, reg->self)) == 0 &&
	    (rc = skald__reg_tell(reg, REG_GROUP, 1, key, ref)) < 0)
		skald__reg_del(reg, skald__reg_find(reg, REG_GROUP, key, ref, reg->self), 0);
	uv_mutex_unlock(&reg->lock);
	return rc;
}

int skald_group_leave(skald_system_t *sys, const char *key, skald_ref_t ref)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, key, &reg);
	if (rc < 0)
		return rc;
	uv_mutex_lock(&reg->lock);
	skald__reg_entry_t *e = skald__reg_find(reg, REG_GROUP, key, ref, reg->self);
	if (e == NULL) {
		rc = SKALD_ENOTFOUND;
	} else {
		skald__reg_del(reg, e, 0);
		rc = skald__reg_tell(reg, REG_GROUP, 0, key, ref);
	}
	uv_mutex_unlock(&reg->lock);
	return rc;
}

int skald_group_members(skald_system_t *sys, const char *key, skald_ref_t *out, size_t cap,
                        size_t *n)
{
	skald__reg_t *reg;
	int rc = skald__reg_args(sys, key, &reg);
	if (rc < 0)
		return rc;
	if (n == NULL || (out == NULL && cap > 0))
		return SKALD_EINVAL;
	skald_ref_t *v;
	uv_mutex_lock(&reg->lock);
	rc = skald__reg_listing(reg, key, &v, n);
	uv_mutex_unlock(&reg->lock);
	if (rc < 0)
		return rc;
	if (cap > 0 && *n > 0)
		memcpy(out, v, (*n < cap ? *n : cap) * sizeof *out);
	free(v);
	return 0;
}

static skald__reg_sub_t *sub_find(skald__reg_t *reg, const char *key, skald_ref_t sub)
{
	for (size_t i = 0; i < reg->nsubs; i++)
		if (skald_ref_eq(reg->subs[i].sub, sub) && strcmp(reg->subs[i].key, key) == 0)
			return &reg->subs[i];
	return NULL;
}

/* The checks of (un)subscribe; the registry of self in *out. */
static int sub_check(skald_actor_t *self, const char *key, skald__reg_t **out)
{
	int rc = skald__reg_args(self != NULL ? self->thread->sys : NULL, key, out);
	if (rc < 0)
		return rc;
	return skald__current != self->thread ? SKALD_ENOTOWNER : 0;
}

int skald_group_subscribe(skald_actor_t *self, const char *key)
{
	skald__reg_t *reg;
	int rc = sub_check(self, key, &reg);
	if (rc < 0)
		return rc;
	uv_mutex_lock(&reg->lock);
	if (sub_find(reg, key, self->ref) != NULL) {
		uv_mutex_unlock(&reg->lock);
		return 0;
	}
	if (reg->nsubs == MAX_SUBS) {
		rc = SKALD_ETOOMANY;
	} else if (reg->nsubs == reg->capsubs) {
		size_t cap = reg->capsubs ? reg->capsubs * 2 : 8;
		skald__reg_sub_t *v = realloc(reg->subs, cap * sizeof *v);
		if (v == NULL) {
			rc = SKALD_ENOMEM;
		} else {
			reg->subs = v;
			reg->capsubs = cap;
		}
	}
	char *k = rc == 0 ? strdup(key) : NULL;
	if (rc == 0 && k == NULL)
		rc = SKALD_ENOMEM;
	if (rc == 0)
		rc = skald__reg_tell(reg, REG_WATCH, 1, key, self->ref);
	if (rc == 0) {
		reg->subs[reg->nsubs++] = (skald__reg_sub_t){k, self->ref};
		skald__reg_send_current(reg, key, self->ref);
	} else {
		free(k);
	}
	uv_mutex_unlock(&reg->lock);
	return rc;
}

int skald_group_unsubscribe(skald_actor_t *self, const char *key)
{
	skald__reg_t *reg;
	int rc = sub_check(self, key, &reg);
	if (rc < 0)
		return rc;
	uv_mutex_lock(&reg->lock);
	skald__reg_sub_t *s = sub_find(reg, key, self->ref);
	if (s == NULL) {
		rc = SKALD_ENOTFOUND;
	} else {
		free(s->key);
		*s = reg->subs[--reg->nsubs];
		rc = skald__reg_tell(reg, REG_WATCH, 0, key, self->ref);
	}
	uv_mutex_unlock(&reg->lock);
	return rc;
}
