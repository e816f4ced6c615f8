/*
 * actors/timer.c - timers owned by an actor, on its loop.
 *
 * Each timer is a uv_timer_t linked to its actor. Cancelling (explicitly, or
 * because the actor stops or restarts) unlinks it and closes the handle; the
 * memory goes in the close callback, as libuv requires.
 */
#include <stdlib.h>

#include "actors/internal.h"

typedef struct skald__timer_s {
	uv_timer_t h;
	skald_actor_t *owner;
	struct skald__timer_s *next, *prev;
	uint64_t id;
	skald_timer_fn fn;
	void *arg;
	bool repeat;
} skald__timer_t;

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

static void timer_close(skald__timer_t *t)
{
	unlink_timer(t);
	uv_close((uv_handle_t *)&t->h, close_cb);
}

static void fire(uv_timer_t *h)
{
	skald__timer_t *t = h->data;
	skald_actor_t *a = t->owner;
	/* A suspended actor handles nothing until its parent decides; its
	 * timers are cancelled on restart or stop anyway. */
	if (a->flags & (AF_SUSPENDED | AF_TERMINATED))
		return;
	skald_timer_fn fn = t->fn;
	void *arg = t->arg;
	if (!t->repeat)
		timer_close(t);
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
	skald__timer_t *t = calloc(1, sizeof *t);
	if (t == NULL)
		return SKALD_ENOMEM;
	int rc = uv_timer_init(&self->thread->loop, &t->h);
	if (rc < 0) {
		free(t);
		return rc;
	}
	t->h.data = t;
	t->owner = self;
	t->id = ++x->next_timer_id;
	t->fn = fn;
	t->arg = arg;
	t->repeat = repeat_ms > 0;
	t->next = x->timers;
	if (x->timers != NULL)
		x->timers->prev = t;
	x->timers = t;
	uv_timer_start(&t->h, fire, after_ms, repeat_ms);
	if (id != NULL)
		*id = t->id;
	return 0;
}

int skald_timer_cancel(skald_actor_t *self, uint64_t id)
{
	if (self == NULL)
		return SKALD_EINVAL;
	if (self->ext == NULL)
		return SKALD_ENOTFOUND;
	for (skald__timer_t *t = self->ext->timers; t != NULL; t = t->next) {
		if (t->id == id) {
			timer_close(t);
			return 0;
		}
	}
	return SKALD_ENOTFOUND;
}

void skald__timers_cancel(skald_actor_t *a)
{
	if (a->ext == NULL)
		return;
	while (a->ext->timers != NULL)
		timer_close(a->ext->timers);
}
