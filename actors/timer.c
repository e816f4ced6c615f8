/*
 * actors/timer.c - timers owned by an actor, on its loop.
 *
 * Each timer is a uv_timer_t linked into its actor's one list of timers,
 * which holds the user's timers and the timeouts of pending asks (ask.c)
 * alike. Cancelling (explicitly, or because the actor stops or restarts)
 * unlinks it and closes the handle; the memory goes in the close callback,
 * as libuv requires.
 */
#include <stdlib.h>

#include "actors/internal.h"

static void unlink_timer(skald__timer_t *t)
{
	skald__actor_ext_t *x = t->owner->ext;
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		x->timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

static void close_cb(uv_handle_t *h)
{
	free(h->data);
}

void skald__timer_close(skald__timer_t *t)
{
	unlink_timer(t);
	uv_close((uv_handle_t *)&t->h, close_cb);
}

static void on_timer(uv_timer_t *h)
{
	skald__timer_t *t = h->data;
	t->expire(t);
}

skald__timer_t *skald__timer_new(skald_actor_t *a, int kind, uint64_t id, uint64_t after_ms,
                                 uint64_t repeat_ms, void (*expire)(skald__timer_t *t), int *err)
{
	skald__actor_ext_t *x = skald__ext(a);
	skald__timer_t *t = x != NULL ? calloc(1, sizeof *t) : NULL;
	if (t == NULL) {
		*err = SKALD_ENOMEM;
		return NULL;
	}
	int rc = uv_timer_init(&a->thread->loop, &t->h);
	if (rc < 0) {
		free(t);
		*err = rc;
		return NULL;
	}
	t->h.data = t;
	t->owner = a;
	t->kind = kind;
	t->id = id;
	t->expire = expire;
	t->repeat = repeat_ms > 0;
	t->next = x->timers;
	if (x->timers != NULL)
		x->timers->prev = t;
	x->timers = t;
	uv_timer_start(&t->h, on_timer, after_ms, repeat_ms);
	return t;
}

skald__timer_t *skald__timer_find(skald_actor_t *a, int kind, uint64_t id)
{
	skald__timer_t *t = a->ext != NULL ? a->ext->timers : NULL;
	while (t != NULL && (t->id != id || t->kind != kind))
		t = t->next;
	return t;
}

void skald__timers_cancel(skald_actor_t *a)
{
	/* An ask's callback may start other timers or asks: they are taken
	 * from the head again until none is left. */
	skald__timer_t *t;
	while (a->ext != NULL && (t = a->ext->timers) != NULL) {
		if (t->kind == SKALD__TIMER_ASK)
			skald__ask_finish(t, SKALD_ECANCELED, NULL);
		else
			skald__timer_close(t);
	}
}

/* ------------------------------------------------------------------------ */
/* The user's timers                                                        */

static void fire(skald__timer_t *t)
{
	skald_actor_t *a = t->owner;
	/* A suspended actor handles nothing until its parent decides; its
	 * timers are cancelled on restart or stop anyway. */
	if (a->flags & (AF_SUSPENDED | AF_TERMINATED))
		return;
	skald_timer_fn fn = t->fn.timer;
	void *arg = t->arg;
	if (!t->repeat)
		skald__timer_close(t);
	fn(a, a->state, arg);
	skald__actor_after_callback(a);
}

int skald_timer_start(skald_actor_t *self, uint64_t after_ms, uint64_t repeat_ms, skald_timer_fn fn,
                      void *arg, uint64_t *id)
{
	if (self == NULL || fn == NULL)
		return SKALD_EINVAL;
	if (skald__current != self->thread)
		return SKALD_ENOTOWNER;
	skald__actor_ext_t *x = skald__ext(self);
	if (x == NULL)
		return SKALD_ENOMEM;
	int rc = 0;
	skald__timer_t *t = skald__timer_new(self, SKALD__TIMER_USER, x->next_timer_id + 1,
	                                     after_ms, repeat_ms, fire, &rc);
	if (t == NULL)
		return rc;
	x->next_timer_id++;
	t->fn.timer = fn;
	t->arg = arg;
	if (id != NULL)
		*id = t->id;
	return 0;
}

int skald_timer_cancel(skald_actor_t *self, uint64_t id)
{
	if (self == NULL)
		return SKALD_EINVAL;
	skald__timer_t *t = skald__timer_find(self, SKALD__TIMER_USER, id);
	if (t == NULL)
		return SKALD_ENOTFOUND;
	skald__timer_close(t);
	return 0;
}
