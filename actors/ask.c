/*
 * actors/ask.c - request/response with a timeout.
 *
 * An ask sends an ordinary message that carries a correlation id, unique per
 * thread and never reused, and records a pending entry on the asker: a timer
 * of the actor's (timer.c) whose id is the correlation id. The reply (or an "ask failed" envelope
 * from the dead-letter path) carries the id back; the asker completes the entry on its own thread.
 * A reply whose entry is gone (timed out, cancelled) finds no match, is counted as late and freed:
 * it can never complete a later ask.
 */
#include <stdlib.h>

#include "actors/internal.h"

void skald__ask_finish(skald__timer_t *k, int status, skald_msg_t *reply)
{
	skald_actor_t *a = k->owner;
	skald_reply_fn cb = k->fn.reply;
	void *arg = k->arg;
	skald__timer_close(k);
	cb(a, a->state, status, reply, arg);
}

static void timeout_cb(skald__timer_t *k)
{
	skald_actor_t *a = k->owner;
	skald__ask_finish(k, SKALD_ETIMEDOUT, NULL);
	skald__actor_after_callback(a);
}

void skald__ask_complete(skald_actor_t *a, skald__env_t *e)
{
	skald__timer_t *k = skald__timer_find(a, SKALD__TIMER_ASK, e->corr);
	if (k == NULL) {
		skald__bump(&a->thread->late_replies);
		return;
	}
	if (e->kind == ENV_ASK_FAIL) {
		skald__ask_finish(k, (int)e->arg, NULL);
		return;
	}
	skald_msg_t msg = {e->type, e->payload, e->sender, 0};
	skald__ask_finish(k, 0, &msg);
	e->payload = msg.payload; /* NULL if taken */
	skald__bump(&a->thread->delivered);
}

int skald_ask(skald_actor_t *self, skald_ref_t to, uint32_t type, void *payload,
              uint64_t timeout_ms, skald_reply_fn cb, void *arg)
{
	if (self == NULL || cb == NULL || skald_ref_is_null(to))
		return SKALD_EINVAL;
	if (skald__current != self->thread)
		return SKALD_ENOTOWNER;
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	skald__env_t *e = skald__env_new(ENV_USER, type, self->ref, payload);
	if (e == NULL)
		return SKALD_ENOMEM;
	uint64_t corr;
	int rc = skald__ask_pending(self, timeout_ms, cb, arg, &corr);
	if (rc < 0) {
		skald__env_release(e);
		return rc;
	}
	e->corr = corr;
	rc = skald__deliver(self->thread->sys, to, e);
	if (rc < 0) {
		/* Not sent, so not pending: drop the entry without calling back;
		 * the caller keeps the payload. */
		skald__env_release(e);
		skald__timer_close(skald__timer_find(self, SKALD__TIMER_ASK, corr));
	}
	return rc;
}

int skald__ask_pending(skald_actor_t *self, uint64_t timeout_ms, skald_reply_fn cb, void *arg,
                       uint64_t *corr)
{
	if (self == NULL || cb == NULL || corr == NULL)
		return SKALD_EINVAL;
	if (skald__current != self->thread)
		return SKALD_ENOTOWNER;
	int rc = 0;
	skald__timer_t *k = skald__timer_new(self, SKALD__TIMER_ASK, self->thread->next_ask_id + 1,
	                                     timeout_ms, 0, timeout_cb, &rc);
	if (k == NULL)
		return rc;
	self->thread->next_ask_id++;
	k->fn.reply = cb;
	k->arg = arg;
	*corr = k->id;
	return 0;
}

int skald_reply(skald_actor_t *self, const skald_msg_t *request, uint32_t type, void *payload)
{
	if (self == NULL || request == NULL)
		return SKALD_EINVAL;
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	skald__env_t *e =
	        skald__env_new(request->ask_id ? ENV_REPLY : ENV_USER, type, self->ref, payload);
	if (e == NULL)
		return SKALD_ENOMEM;
	e->corr = request->ask_id;
	int rc = skald__deliver(self->thread->sys, request->sender, e);
	if (rc < 0)
		skald__env_release(e);
	return rc;
}

int skald__forward(skald_system_t *sys, skald_ref_t to, uint32_t type, void *payload,
                   skald_ref_t sender, uint64_t ask_id)
{
	if (sys == NULL || to.node != sys->node)
		return SKALD_EINVAL;
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	skald__env_t *e = skald__env_new(ENV_USER, type, sender, payload);
	if (e == NULL)
		return SKALD_ENOMEM;
	e->corr = ask_id;
	/* Local: delivered or disposed of, never refused. */
	return skald__deliver(sys, to, e);
}

int skald__ask_fail(skald_system_t *sys, skald_ref_t asker, uint64_t ask_id, int reason)
{
	if (sys == NULL || skald_ref_is_null(asker) || ask_id == 0 || reason >= 0)
		return SKALD_EINVAL;
	skald__env_t *f = skald__env_new(ENV_ASK_FAIL, 0, SKALD_REF_NULL, NULL);
	if (f == NULL)
		return SKALD_ENOMEM;
	f->corr = ask_id;
	f->arg = reason;
	skald__send(sys, asker, f);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The blocking ask of outside threads: a short-lived actor asks on the
 * caller's behalf and hands the outcome over under a mutex. The record is
 * shared by the caller and that actor and freed by whichever lets go last. */

typedef struct sync_ask_s {
	skald_ref_t to;
	uint32_t type;
	void *payload;
	uint64_t timeout_ms;
	uv_mutex_t m;
	uv_cond_t c;
	bool done;
	int status;
	uint32_t rtype;
	void *rpayload;
	_Atomic int refs;
} sync_ask_t;

static void sync_release(sync_ask_t *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	skald__type_free(skald_type_get(s->rtype), s->rpayload);
	uv_cond_destroy(&s->c);
	uv_mutex_destroy(&s->m);
	free(s);
}

/* Hands the outcome over, once; the actor forgets the record. */
static void sync_finish(void *state, int status, uint32_t rtype, void *rpayload)
{
	sync_ask_t *s = *(sync_ask_t **)state;
	if (s == NULL)
		return;
	*(sync_ask_t **)state = NULL;
	uv_mutex_lock(&s->m);
	s->done = true;
	s->status = status;
	s->rtype = rtype;
	s->rpayload = rpayload;
	uv_cond_signal(&s->c);
	uv_mutex_unlock(&s->m);
	sync_release(s);
}

static void sync_reply(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	if (status == 0)
		sync_finish(state, 0, reply->type, skald_msg_take(reply));
	else
		sync_finish(state, status, 0, NULL);
	skald_stop_self(self);
}

static int sync_init(skald_actor_t *self, void *state, void *arg)
{
	sync_ask_t *s = arg;
	*(sync_ask_t **)state = s;
	int rc = skald_ask(self, s->to, s->type, s->payload, s->timeout_ms, sync_reply, NULL);
	if (rc < 0) {
		skald__type_free(skald_type_get(s->type), s->payload);
		sync_finish(state, rc, 0, NULL);
		skald_stop_self(self);
	}
	return 0;
}

static int sync_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static void sync_stop(skald_actor_t *self, void *state, int reason)
{
	sync_finish(state, reason < 0 ? reason : SKALD_ECANCELED, 0, NULL);
}

static const skald_behavior_t sync_behavior = {
        .state_size = sizeof(sync_ask_t *),
        .init = sync_init,
        .receive = sync_receive,
        .stop = sync_stop,
};

int skald_system_ask(skald_system_t *sys, skald_ref_t to, uint32_t type, void *payload,
                     uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload)
{
	if (sys == NULL || skald_ref_is_null(to) || reply_type == NULL || reply_payload == NULL)
		return SKALD_EINVAL;
	if (skald__current != NULL)
		return SKALD_ENOTOWNER; /* it would block a scheduler thread */
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	sync_ask_t *s = calloc(1, sizeof *s);
	if (s == NULL)
		return SKALD_ENOMEM;
	s->to = to;
	s->type = type;
	s->payload = payload;
	s->timeout_ms = timeout_ms;
	atomic_init(&s->refs, 2);
	if (uv_mutex_init(&s->m) != 0 || uv_cond_init(&s->c) != 0) {
		free(s);
		return SKALD_ENOMEM;
	}
	skald_ref_t tmp;
	int rc = skald_spawn(sys, &sync_behavior, s, NULL, &tmp);
	if (rc < 0) {
		uv_cond_destroy(&s->c);
		uv_mutex_destroy(&s->m);
		free(s);
		return rc;
	}
	/* The ask's own timer ends the wait; the extra second only guards
	 * against a system stopped under our feet. */
	uint64_t deadline = uv_hrtime() + (timeout_ms + 1000) * 1000000ull;
	uv_mutex_lock(&s->m);
	while (!s->done) {
		uint64_t now = uv_hrtime();
		if (now >= deadline ||
		    uv_cond_timedwait(&s->c, &s->m, deadline - now) == UV_ETIMEDOUT) {
			if (!s->done)
				break;
		}
	}
	if (s->done) {
		rc = s->status;
		*reply_type = s->rtype;
		*reply_payload = s->rpayload;
		s->rpayload = NULL;
	} else {
		rc = atomic_load(&sys->stopping) ? SKALD_ESTOPPING : SKALD_ETIMEDOUT;
	}
	uv_mutex_unlock(&s->m);
	sync_release(s);
	return rc;
}
