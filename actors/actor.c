/*
 * actors/actor.c - spawn, dispatch, failure, supervision and termination.
 *
 * Life of an actor: spawned (slot published, queued for its first turn) ->
 * init on its thread -> messages -> terminated (stop callback, children
 * stopped, watchers and parent told, mailbox drained as dead letters) ->
 * freed when no queue holds it any more.
 *
 * Supervision follows Akka's protocol, made asynchronous so that parent and
 * child may live on different threads: a failing child suspends (it keeps
 * handling system messages and stashes the rest), tells its parent, and
 * waits for the directive. The restart window is counted by the child, with
 * the limits the parent sent along with its directive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/internal.h"

#define DEFAULT_MAX_RESTARTS      10
#define DEFAULT_RESTART_WINDOW_MS 10000

int skald_ref_eq(skald_ref_t a, skald_ref_t b)
{
	return a.node == b.node && a.actor == b.actor && a.incarnation == b.incarnation;
}

int skald_ref_is_null(skald_ref_t r)
{
	return r.node == 0 && r.actor == 0 && r.incarnation == 0;
}

char *skald_ref_str(skald_ref_t r, char *buf, size_t len)
{
	if (buf != NULL && len > 0)
		snprintf(buf, len, "%016llx.%u.%u", (unsigned long long)r.node, r.actor,
		         r.incarnation);
	return buf;
}

/* ------------------------------------------------------------------------ */

int skald__refset_has(const skald__refset_t *s, skald_ref_t r)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (skald_ref_eq(s->v[i], r))
			return 1;
	return 0;
}

int skald__refset_add(skald__refset_t *s, skald_ref_t r)
{
	if (skald__refset_has(s, r))
		return 0;
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		skald_ref_t *v = realloc(s->v, cap * sizeof *v);
		if (v == NULL)
			return SKALD_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = r;
	return 0;
}

int skald__refset_del(skald__refset_t *s, skald_ref_t r)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (skald_ref_eq(s->v[i], r)) {
			s->v[i] = s->v[--s->n];
			return 1;
		}
	}
	return 0;
}

void skald__refset_fini(skald__refset_t *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

skald__actor_ext_t *skald__ext(skald_actor_t *a)
{
	if (a->ext == NULL)
		a->ext = calloc(1, sizeof *a->ext);
	return a->ext;
}

/* ------------------------------------------------------------------------ */
/* Spawning                                                                  */

static size_t state_offset(void)
{
	return (sizeof(skald_actor_t) + 15) & ~(size_t)15;
}

void *skald__actor_block_of(const skald_actor_t *a, const skald_behavior_t *b)
{
	return a->behavior == b ? (char *)a + state_offset() : NULL;
}

static int spawn_on(skald_system_t *sys, skald__thread_t *t, const skald_behavior_t *b, void *arg,
                    skald_ref_t parent, skald_ref_t *out)
{
	if (b == NULL || b->receive == NULL)
		return SKALD_EINVAL;
	/* Counting the spawn before testing `stopping` lets the graceful stop
	 * wait for spawns that passed the test (see system.c). */
	atomic_fetch_add(&sys->spawning, 1);
	if (atomic_load(&sys->stopping)) {
		atomic_fetch_sub(&sys->spawning, 1);
		return SKALD_ESTOPPING;
	}
	skald_actor_t *a = malloc(state_offset() + b->state_size);
	if (a == NULL) {
		atomic_fetch_sub(&sys->spawning, 1);
		return SKALD_ENOMEM;
	}
	skald__mpsc_init(&a->mailbox);
	atomic_store_explicit(&a->rq.next, NULL, memory_order_relaxed);
	a->flags = 0;
	a->behavior = b;
	a->state = b->state_size ? (char *)a + state_offset() : NULL;
	if (a->state != NULL)
		memset(a->state, 0, b->state_size);
	a->arg = arg;
	a->thread = t;
	a->parent = parent;
	a->prev = a->next = NULL;
	a->ext = NULL;
	uint32_t index, inc;
	int rc = skald__slot_alloc(&sys->slots, a, &index, &inc);
	if (rc < 0) {
		free(a);
		atomic_fetch_sub(&sys->spawning, 1);
		return rc;
	}
	a->ref = (skald_ref_t){sys->node, index, inc};
	atomic_fetch_add_explicit(&sys->live_actors, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sys->spawned, 1, memory_order_relaxed);
	/* The first turn runs init; queue it like any runnable actor. The
	 * thread links it into its list of actors then. */
	/* Once scheduled the actor may run, stop and be freed on its thread
	 * before this call returns: take the reference first. */
	*out = a->ref;
	atomic_store(&a->sched, 1);
	skald__schedule(a);
	atomic_fetch_sub(&sys->spawning, 1);
	return 0;
}

static skald__thread_t *place(skald_system_t *sys, const skald_spawn_opts_t *opts,
                              skald__thread_t *dflt)
{
	if (opts != NULL && (opts->flags & SKALD_SPAWN_PIN))
		return &sys->threads[opts->thread % sys->nthreads];
	if (dflt != NULL)
		return dflt;
	unsigned i = atomic_fetch_add_explicit(&sys->next_thread, 1, memory_order_relaxed);
	return &sys->threads[i % sys->nthreads];
}

int skald_spawn(skald_system_t *sys, const skald_behavior_t *b, void *arg,
                const skald_spawn_opts_t *opts, skald_ref_t *out)
{
	if (sys == NULL || out == NULL)
		return SKALD_EINVAL;
	return spawn_on(sys, place(sys, opts, NULL), b, arg, SKALD_REF_NULL, out);
}

int skald_spawn_child(skald_actor_t *self, const skald_behavior_t *b, void *arg,
                      const skald_spawn_opts_t *opts, skald_ref_t *out)
{
	if (self == NULL || out == NULL)
		return SKALD_EINVAL;
	skald_system_t *sys = self->thread->sys;
	skald__actor_ext_t *x = skald__ext(self);
	if (x == NULL)
		return SKALD_ENOMEM;
	if (x->children.n == x->children.cap) {
		/* Reserve first, so that a spawned child is always recorded. */
		int rc = skald__refset_add(&x->children, SKALD_REF_NULL);
		if (rc < 0)
			return rc;
		skald__refset_del(&x->children, SKALD_REF_NULL);
	}
	int rc = spawn_on(sys, place(sys, opts, self->thread), b, arg, self->ref, out);
	if (rc == 0)
		skald__refset_add(&x->children, *out);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Running                                                                   */

void skald__actor_link(skald_actor_t *a)
{
	skald__thread_t *t = a->thread;
	if (a->prev == NULL && a->next == NULL && t->actors != a) {
		a->next = t->actors;
		if (t->actors != NULL)
			t->actors->prev = a;
		t->actors = a;
	}
}

int skald__actor_init(skald_actor_t *a)
{
	skald__actor_link(a);
	a->flags |= AF_INITED;
	if (a->behavior->init == NULL)
		return 0;
	return a->behavior->init(a, a->state, a->arg);
}

static void deliver_user(skald_actor_t *a, skald__env_t *e)
{
	skald_msg_t msg = {e->type, e->payload, e->sender, e->corr};
	int rc = a->behavior->receive(a, a->state, &msg);
	/* The payload was either taken (msg.payload cleared) or is ours. */
	e->payload = msg.payload;
	skald__bump(&a->thread->delivered);
	if (rc < 0)
		skald__actor_fail(a, rc);
}

static void child_failed(skald_actor_t *a, skald_ref_t child, int err)
{
	skald_system_t *sys = a->thread->sys;
	if (a->ext == NULL || !skald__refset_has(&a->ext->children, child)) {
		skald__send_sys(sys, child, ENV_DIRECTIVE, a->ref, SKALD_STOP);
		return;
	}
	skald_directive_t d = SKALD_RESTART;
	if (a->behavior->on_child_failure != NULL)
		d = a->behavior->on_child_failure(a, a->state, child, err);
	if (d != SKALD_RESTART && d != SKALD_STOP && d != SKALD_ESCALATE)
		d = SKALD_STOP;
	skald__env_t *e = skald__env_new(ENV_DIRECTIVE, 0, a->ref, NULL);
	if (e == NULL) {
		SKALD_LOG(SKALD_LOG_ERROR, "out of memory in supervision");
		return;
	}
	e->arg = d == SKALD_ESCALATE ? SKALD_STOP : d;
	unsigned max = a->behavior->max_restarts;
	unsigned win = a->behavior->restart_window_ms;
	if (max == 0 && win == 0) {
		max = DEFAULT_MAX_RESTARTS;
		win = DEFAULT_RESTART_WINDOW_MS;
	}
	e->arg2 = (uint64_t)max << 32 | win;
	skald__send(sys, child, e);
	if (d == SKALD_ESCALATE)
		skald__actor_fail(a, SKALD_ECHILDFAILED);
}

static void restart(skald_actor_t *a, unsigned max, unsigned window_ms)
{
	skald__actor_ext_t *x = a->ext;
	uint64_t now = skald__mono_ms();
	if (now - x->window_start_ms > window_ms) {
		x->window_start_ms = now;
		x->restarts = 0;
	}
	if (++x->restarts > max) {
		char b[48];
		SKALD_LOG(SKALD_LOG_WARN, "actor %s: more than %u restarts within %u ms, stopping",
		          skald_ref_str(a->ref, b, sizeof b), max, window_ms);
		skald__actor_terminate(a, SKALD_ERESTARTLIMIT);
		return;
	}
	skald__timers_cancel(a);
	/* A restarted actor starts afresh: its children go too, as in Akka. */
	for (uint32_t i = 0; i < x->children.n; i++)
		skald__send_sys(a->thread->sys, x->children.v[i], ENV_STOP, a->ref, 0);
	if (a->behavior->stop != NULL)
		a->behavior->stop(a, a->state, x->fail_reason);
	/* The state is the block allocated with the actor, even if a layer
	 * (entities) pointed a->state at another one for its callbacks. */
	a->state = a->behavior->state_size ? (char *)a + state_offset() : NULL;
	if (a->state != NULL)
		memset(a->state, 0, a->behavior->state_size);
	a->flags &= ~AF_SUSPENDED;
	x->fail_reason = 0;
	int rc = a->behavior->init != NULL ? a->behavior->init(a, a->state, a->arg) : 0;
	if (rc < 0)
		skald__actor_fail(a, rc);
}

void skald__dispatch(skald_actor_t *a, skald__env_t *e)
{
	switch (e->kind) {
	case ENV_USER:
		deliver_user(a, e);
		break;
	case ENV_REPLY:
	case ENV_ASK_FAIL:
		skald__ask_complete(a, e);
		break;
	case ENV_DOWN:
		skald__down_deliver(a, e);
		break;
	case ENV_STOP:
		skald__actor_terminate(a, (int)e->arg);
		break;
	case ENV_WATCH:
		skald__watch_add(a, e->sender);
		break;
	case ENV_UNWATCH:
		if (a->ext != NULL)
			skald__refset_del(&a->ext->watchers, e->sender);
		break;
	case ENV_FAILED:
		child_failed(a, e->sender, (int)e->arg);
		break;
	case ENV_DIRECTIVE:
		if (!(a->flags & AF_SUSPENDED) || !skald_ref_eq(e->sender, a->parent))
			break;
		if (e->arg == SKALD_RESTART)
			restart(a, (unsigned)(e->arg2 >> 32), (unsigned)e->arg2);
		else
			skald__actor_terminate(a, a->ext->fail_reason);
		break;
	case ENV_CHILD_DONE:
		if (a->ext != NULL)
			skald__refset_del(&a->ext->children, e->sender);
		break;
	default:
		break;
	}
	skald__env_free(e);
}

void skald__actor_fail(skald_actor_t *a, int err)
{
	char b[48];
	if (a->flags & (AF_TERMINATED | AF_SUSPENDED))
		return;
	skald_ref_str(a->ref, b, sizeof b);
	if (skald_ref_is_null(a->parent)) {
		SKALD_LOG(SKALD_LOG_ERROR, "actor %s failed (%s) and has no parent: stopping", b,
		          skald_err_name(err));
		skald__actor_terminate(a, err);
		return;
	}
	skald__actor_ext_t *x = skald__ext(a);
	if (x == NULL) {
		skald__actor_terminate(a, err);
		return;
	}
	SKALD_LOG(SKALD_LOG_INFO, "actor %s failed (%s); asking its parent", b,
	          skald_err_name(err));
	a->flags |= AF_SUSPENDED;
	x->fail_reason = err;
	skald__send_sys(a->thread->sys, a->parent, ENV_FAILED, a->ref, err);
}

/* ------------------------------------------------------------------------ */
/* Stopping                                                                  */

void skald__actor_terminate(skald_actor_t *a, int reason)
{
	if (a->flags & AF_TERMINATED)
		return;
	skald_system_t *sys = a->thread->sys;
	skald__actor_ext_t *x = a->ext;

	if (x != NULL) {
		skald__timers_cancel(a);
	}
	if ((a->flags & AF_INITED) && a->behavior->stop != NULL)
		a->behavior->stop(a, a->state, reason);
	if (a->behavior->free_arg != NULL)
		a->behavior->free_arg(a->arg);
	a->flags |= AF_TERMINATED;
	a->flags &= ~AF_STOP_REQ;
	x = a->ext; /* the stop callback may have created it */

	/* From here no sender can reach the actor: what is queued is drained
	 * below, and the memory is freed when no run queue holds it. */
	skald__slot_kill(&sys->slots, a->ref.actor, reason);
	/* What was sent to the actor fails with the reason it failed with. */
	int gone = reason < 0 ? reason : SKALD_ENOACTOR;

	if (x != NULL) {
		for (uint32_t i = 0; i < x->children.n; i++)
			skald__send_sys(sys, x->children.v[i], ENV_STOP, a->ref, 0);
		skald__watch_notify(a, reason);
		for (uint32_t i = 0; i < x->watching.n; i++)
			skald__send_sys(sys, x->watching.v[i], ENV_UNWATCH, a->ref, 0);
		skald__env_t *e;
		while ((e = x->stash_head) != NULL) {
			x->stash_head = (skald__env_t *)atomic_load_explicit(&e->node.next,
			                                                     memory_order_relaxed);
			skald__env_dispose(sys, a->ref, e, gone);
		}
		x->stash_tail = NULL;
	}
	if (!skald_ref_is_null(a->parent))
		skald__send_sys(sys, a->parent, ENV_CHILD_DONE, a->ref, 0);

	skald__mpsc_node_t *n;
	for (;;) {
		n = skald__mpsc_pop(&a->mailbox);
		if (n != NULL) {
			skald_metric_add(skald__m.mailbox, -1);
			skald__env_t *e = (skald__env_t *)n;
			if (e->kind == ENV_WATCH) {
				skald__down_send(sys, e->sender, a->ref, reason);
				skald__env_free(e);
			} else {
				skald__env_dispose(sys, a->ref, e, gone);
			}
			continue;
		}
		/* Pins are drained, so a half-done push finishes at once. */
		if (skald__mpsc_empty(&a->mailbox))
			break;
	}

	skald__thread_t *t = a->thread;
	if (a->prev != NULL)
		a->prev->next = a->next;
	else if (t->actors == a)
		t->actors = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
	atomic_fetch_sub_explicit(&sys->live_actors, 1, memory_order_relaxed);

	/* Not inside a turn and in no queue: nobody else will see it. */
	if (!(a->flags & AF_RUNNING) && atomic_load(&a->sched) == 0)
		skald__actor_free(a);
}

void skald__actor_free(skald_actor_t *a)
{
	skald__actor_ext_t *x = a->ext;
	if (x != NULL) {
		skald__refset_fini(&x->children);
		skald__refset_fini(&x->watchers);
		skald__refset_fini(&x->watching);
		free(x);
	}
	skald__slot_free(&a->thread->sys->slots, a->ref.actor);
	free(a);
}

void skald__actor_pause(skald_actor_t *a)
{
	a->flags |= AF_PAUSED;
}

void skald__actor_resume(skald_actor_t *a)
{
	if (!(a->flags & AF_PAUSED))
		return;
	a->flags &= ~AF_PAUSED;
	if (a->flags & (AF_RUNNING | AF_TERMINATED))
		return; /* the turn under way goes on by itself */
	/* Messages that arrived while paused are still queued: look again. */
	int idle = 0;
	if (atomic_compare_exchange_strong(&a->sched, &idle, 1))
		skald__schedule(a);
}

skald_actor_t *skald__actor_local(skald_system_t *sys, skald_ref_t ref)
{
	skald__slot_t *slot;
	skald_actor_t *a = skald__slot_pin(sys, ref, &slot);
	if (a == NULL)
		return NULL;
	skald__slot_unpin(slot);
	/* Only the owning thread frees an actor, so on that thread the pointer
	 * outlives the pin. */
	return a->thread == skald__current ? a : NULL;
}

void skald__actor_set_state(skald_actor_t *a, void *state)
{
	a->state = state;
}

bool skald__actor_terminated(const skald_actor_t *a)
{
	return (a->flags & AF_TERMINATED) != 0;
}

uv_loop_t *skald__actor_loop(skald_actor_t *a)
{
	return &a->thread->loop;
}

void *skald__layer_ctx(skald_actor_t *a, int layer)
{
	return a->thread->layer[layer].ctx;
}

void skald__layer_set(skald_actor_t *a, int layer, void *ctx, void (*fini)(void *ctx))
{
	a->thread->layer[layer].ctx = ctx;
	a->thread->layer[layer].fini = fini;
}

void skald__actor_after_callback(skald_actor_t *a)
{
	if ((a->flags & AF_STOP_REQ) && !(a->flags & (AF_RUNNING | AF_TERMINATED)))
		skald__actor_terminate(a, 0);
}

void skald_stop_self(skald_actor_t *self)
{
	if (self != NULL && !(self->flags & AF_TERMINATED))
		self->flags |= AF_STOP_REQ;
}

int skald_stop(skald_system_t *sys, skald_ref_t ref)
{
	if (sys == NULL || skald_ref_is_null(ref))
		return SKALD_EINVAL;
	skald__env_t *e = skald__env_new(ENV_STOP, 0, SKALD_REF_NULL, NULL);
	if (e == NULL)
		return SKALD_ENOMEM;
	skald__send(sys, ref, e);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */

skald_ref_t skald_self(const skald_actor_t *self)
{
	return self != NULL ? self->ref : SKALD_REF_NULL;
}

skald_system_t *skald_actor_system(const skald_actor_t *self)
{
	return self != NULL ? self->thread->sys : NULL;
}

skald_ref_t skald_parent(const skald_actor_t *self)
{
	return self != NULL ? self->parent : SKALD_REF_NULL;
}

void *skald_actor_state(const skald_actor_t *self)
{
	return self != NULL ? self->state : NULL;
}
