/*
 * actors/watch.c - watch and down notices.
 *
 * The watcher records whom it watches; the target records its watchers. When
 * the target stops it sends each watcher a down envelope, which the watcher
 * turns into a SKALD_TYPE_DOWN message only if it still watches the target,
 * so an unwatch is honoured even when a notice was already on its way and a
 * notice is delivered at most once per watch.
 */
#include <stdlib.h>

#include "actors/internal.h"

void skald__down_send(skald_system_t *sys, skald_ref_t watcher, skald_ref_t target, int reason)
{
	skald__send_sys(sys, watcher, ENV_DOWN, target, reason);
}

void skald__watch_add(skald_actor_t *a, skald_ref_t watcher)
{
	skald__actor_ext_t *x = skald__ext(a);
	if (x == NULL || skald__refset_add(&x->watchers, watcher) < 0) {
		SKALD_LOG(SKALD_LOG_ERROR, "out of memory recording a watch");
		return;
	}
}

void skald__watch_notify(skald_actor_t *a, int reason)
{
	skald__actor_ext_t *x = a->ext;
	if (x == NULL)
		return;
	for (uint32_t i = 0; i < x->watchers.n; i++)
		skald__down_send(a->thread->sys, x->watchers.v[i], a->ref, reason);
}

void skald__down_deliver(skald_actor_t *a, skald__env_t *e)
{
	if (a->ext == NULL || !skald__refset_del(&a->ext->watching, e->sender))
		return;
	skald_down_t *d = malloc(sizeof *d);
	if (d == NULL) {
		SKALD_LOG(SKALD_LOG_ERROR, "out of memory delivering a down notice");
		return;
	}
	d->ref = e->sender;
	d->reason = (int)e->arg;
	/* Re-dress the envelope as a user message; the dispatcher frees it. */
	e->kind = ENV_USER;
	e->type = SKALD_TYPE_DOWN;
	e->payload = d;
	skald_msg_t msg = {SKALD_TYPE_DOWN, d, e->sender, 0};
	int rc = a->behavior->receive(a, a->state, &msg);
	e->payload = msg.payload;
	skald__bump(&a->thread->delivered);
	if (rc < 0)
		skald__actor_fail(a, rc);
}

int skald_watch(skald_actor_t *self, skald_ref_t target)
{
	if (self == NULL || skald_ref_is_null(target) || skald_ref_eq(target, self->ref))
		return SKALD_EINVAL;
	skald__actor_ext_t *x = skald__ext(self);
	if (x == NULL)
		return SKALD_ENOMEM;
	if (skald__refset_has(&x->watching, target))
		return 0;
	int rc = skald__refset_add(&x->watching, target);
	if (rc < 0)
		return rc;
	skald__env_t *e = skald__env_new(ENV_WATCH, 0, self->ref, NULL);
	if (e == NULL) {
		skald__refset_del(&x->watching, target);
		return SKALD_ENOMEM;
	}
	skald__send(self->thread->sys, target, e);
	return 0;
}

int skald_unwatch(skald_actor_t *self, skald_ref_t target)
{
	if (self == NULL || skald_ref_is_null(target))
		return SKALD_EINVAL;
	if (self->ext == NULL || !skald__refset_del(&self->ext->watching, target))
		return 0;
	skald__send_sys(self->thread->sys, target, ENV_UNWATCH, self->ref, 0);
	return 0;
}
