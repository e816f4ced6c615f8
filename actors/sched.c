/*
 * actors/sched.c - run queues, turns, the send path and dead letters.
 *
 * Each scheduler thread owns a local run queue (touched only by itself) and
 * an inbound queue (lock-free, MPSC) where other threads put actors that they
 * made runnable. An actor's `sched` word is 0 while idle and 1 while it sits
 * in a queue or runs; only the sender that flips it from 0 to 1 enqueues the
 * actor, so an actor is never queued twice and a loop is woken only when an
 * actor becomes runnable, never per message.
 *
 * A thread announces that it is about to sleep in `sleeping`; a sender on
 * another thread calls uv_async_send() only then. Both sides follow the same
 * handshake as the mailbox (write own flag, then read the other's), with
 * sequentially consistent operations, so a wake-up is never lost.
 *
 * A turn handles at most `budget` messages of one actor, then the actor goes
 * to the back of the run queue, so a flooded actor cannot starve the others.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "actors/transport.h"

_Thread_local skald__thread_t *skald__current;

/* Actors handled per runner callback before the loop polls for I/O. */
#define TURNS_PER_POLL 512
/* How long an idle thread watches its inbound queue before sleeping. */
#define SPIN_NS 200000

uint64_t skald__mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

skald__env_t *skald__env_new(uint16_t kind, uint32_t type, skald_ref_t sender, void *payload)
{
	skald__env_t *e = malloc(sizeof *e);
	if (e == NULL)
		return NULL;
	e->type = type;
	e->kind = kind;
	e->pad = 0;
	e->sender = sender;
	e->corr = 0;
	e->payload = payload;
	e->arg = 0;
	e->arg2 = 0;
	return e;
}

void skald__env_free(skald__env_t *e)
{
	skald__type_free(skald_type_get(e->type), e->payload);
	free(e);
}

void skald__env_release(skald__env_t *e)
{
	free(e);
}

void skald__env_dispose(skald_system_t *sys, skald_ref_t to, skald__env_t *e, int reason)
{
	char b1[48], b2[48];
	switch (e->kind) {
	case ENV_USER:
		atomic_fetch_add_explicit(&sys->dead_letters, 1, memory_order_relaxed);
		SKALD_LOG(SKALD_LOG_DEBUG, "dead letter: type %u from %s to %s", e->type,
		          skald_ref_str(e->sender, b1, sizeof b1),
		          skald_ref_str(to, b2, sizeof b2));
		/* An ask to a dead actor fails at once rather than by timeout. */
		if (e->corr != 0 && !skald_ref_is_null(e->sender)) {
			skald__env_t *f = skald__env_new(ENV_ASK_FAIL, 0, to, NULL);
			if (f != NULL) {
				f->corr = e->corr;
				f->arg = reason;
				skald__send(sys, e->sender, f);
			}
		}
		break;
	case ENV_REPLY:
		atomic_fetch_add_explicit(&sys->dead_letters, 1, memory_order_relaxed);
		break;
	case ENV_WATCH:
		skald__down_send(sys, e->sender, to, reason);
		break;
	case ENV_FAILED:
		/* The parent is gone: nobody can decide, so the child stops. */
		skald__send_sys(sys, e->sender, ENV_DIRECTIVE, to, SKALD_STOP);
		break;
	default:
		break;
	}
	skald__env_free(e);
}

static void rq_push(skald__thread_t *t, skald_actor_t *a)
{
	atomic_store_explicit(&a->rq.next, NULL, memory_order_relaxed);
	if (t->rq_tail == NULL)
		t->rq_head = &a->rq;
	else
		atomic_store_explicit(&t->rq_tail->next, &a->rq, memory_order_relaxed);
	t->rq_tail = &a->rq;
}

static skald_actor_t *rq_pop(skald__thread_t *t)
{
	skald__mpsc_node_t *n = t->rq_head;
	if (n == NULL)
		return NULL;
	t->rq_head = atomic_load_explicit(&n->next, memory_order_relaxed);
	if (t->rq_head == NULL)
		t->rq_tail = NULL;
	return (skald_actor_t *)((char *)n - offsetof(skald_actor_t, rq));
}

static void runner_start(skald__thread_t *t)
{
	atomic_store_explicit(&t->sleeping, 0, memory_order_relaxed);
	if (!uv_is_active((uv_handle_t *)&t->runner))
		uv_idle_start(&t->runner, skald__thread_runner_cb);
}

/* Puts an actor whose `sched` the caller flipped to 1 into its thread's
 * queue. */
void skald__schedule(skald_actor_t *a)
{
	skald__thread_t *t = a->thread;
	if (skald__current == t) {
		rq_push(t, a);
		runner_start(t);
		return;
	}
	skald__mpsc_push(&t->inbound, &a->rq);
	if (atomic_load(&t->sleeping))
		uv_async_send(&t->wake);
}

/* The remote half of skald__deliver: to.node is not this system's. */
static int deliver_remote(skald_system_t *sys, skald_ref_t to, skald__env_t *e)
{
	if (to.node == 0) {
		skald__env_dispose(sys, to, e, SKALD_ENOACTOR);
		return 0;
	}
	const skald__transport_t *tr = atomic_load_explicit(&sys->transport, memory_order_acquire);
	if (tr == NULL) {
		skald__env_dispose(sys, to, e, SKALD_ENODEDOWN);
		return 0;
	}
	return tr->send(sys->transport_ctx, to, e);
}

int skald__deliver(skald_system_t *sys, skald_ref_t to, skald__env_t *e)
{
	if (to.node != sys->node)
		return deliver_remote(sys, to, e);
	skald__slot_t *slot;
	skald_actor_t *a = skald__slot_pin(sys, to, &slot);
	if (a == NULL) {
		skald__env_dispose(sys, to, e, skald__slot_reason(sys, to));
		return 0;
	}
	skald__mpsc_push(&a->mailbox, &e->node);
	skald_metric_add(skald__m.mailbox, 1);
	int idle = 0;
	if (atomic_load(&a->sched) == 0 && atomic_compare_exchange_strong(&a->sched, &idle, 1))
		skald__schedule(a);
	skald__slot_unpin(slot);
	return 0;
}

void skald__send(skald_system_t *sys, skald_ref_t to, skald__env_t *e)
{
	int rc = skald__deliver(sys, to, e);
	if (rc < 0) {
		char b[48];
		SKALD_LOG(SKALD_LOG_WARN, "message type %u to %s dropped: %s", e->type,
		          skald_ref_str(to, b, sizeof b), skald_strerror(rc));
		skald__env_dispose(sys, to, e, rc);
	}
}

void skald__send_sys(skald_system_t *sys, skald_ref_t to, uint16_t kind, skald_ref_t sender,
                     int64_t arg)
{
	if (skald_ref_is_null(to))
		return;
	skald__env_t *e = skald__env_new(kind, 0, sender, NULL);
	if (e == NULL) {
		SKALD_LOG(SKALD_LOG_ERROR, "out of memory sending a system message");
		return;
	}
	e->arg = arg;
	skald__send(sys, to, e);
}

/* The next envelope for a turn: stashed ones first, unless suspended, in
 * which case user-level envelopes are stashed and only system ones pass. */
static skald__env_t *next_env(skald_actor_t *a, int *retry)
{
	skald__actor_ext_t *x = a->ext;
	if (x != NULL && x->stash_head != NULL && !(a->flags & AF_SUSPENDED)) {
		skald__env_t *e = x->stash_head;
		x->stash_head =
		        (skald__env_t *)atomic_load_explicit(&e->node.next, memory_order_relaxed);
		if (x->stash_head == NULL)
			x->stash_tail = NULL;
		return e;
	}
	for (;;) {
		skald__env_t *e = (skald__env_t *)skald__mpsc_pop(&a->mailbox);
		if (e == NULL) {
			*retry = !skald__mpsc_empty(&a->mailbox);
			return NULL;
		}
		skald_metric_add(skald__m.mailbox, -1);
		if (!(a->flags & AF_SUSPENDED))
			return e;
		switch (e->kind) {
		case ENV_USER:
		case ENV_REPLY:
		case ENV_ASK_FAIL:
		case ENV_DOWN:
			x = skald__ext(a);
			if (x == NULL) {
				skald__env_dispose(a->thread->sys, a->ref, e, SKALD_ENOACTOR);
				continue;
			}
			atomic_store_explicit(&e->node.next, NULL, memory_order_relaxed);
			if (x->stash_tail == NULL)
				x->stash_head = e;
			else
				atomic_store_explicit(&x->stash_tail->node.next, &e->node,
				                      memory_order_relaxed);
			x->stash_tail = e;
			continue;
		default:
			return e;
		}
	}
}

static void turn(skald__thread_t *t, skald_actor_t *a)
{
	if (a->flags & AF_TERMINATED) {
		skald__actor_free(a);
		return;
	}
	a->flags |= AF_RUNNING;
	skald__log_actor = a;
	if (!(a->flags & AF_INITED)) {
		int rc = skald__actor_init(a);
		if (rc < 0)
			skald__actor_fail(a, rc);
	}
	unsigned budget = t->sys->budget;
	int retry = 0;
	int more = 0;
	while (!(a->flags & (AF_TERMINATED | AF_STOP_REQ | AF_PAUSED))) {
		if (budget-- == 0) {
			more = 1;
			break;
		}
		skald__env_t *e = next_env(a, &retry);
		if (e == NULL)
			break;
		skald__dispatch(a, e);
	}
	a->flags &= ~AF_RUNNING;
	if ((a->flags & AF_STOP_REQ) && !(a->flags & AF_TERMINATED))
		skald__actor_terminate(a, 0);
	skald__log_actor = NULL;
	if (a->flags & AF_TERMINATED) {
		skald__actor_free(a);
		return;
	}
	if (a->flags & AF_PAUSED) {
		/* Held until skald__actor_resume(); sends still flip sched 0->1,
		 * and resume reschedules, so nothing is lost. */
		atomic_store(&a->sched, 0);
		return;
	}
	if (more || retry ||
	    (a->ext != NULL && a->ext->stash_head != NULL && !(a->flags & AF_SUSPENDED))) {
		rq_push(t, a);
		return;
	}
	atomic_store(&a->sched, 0);
	int idle = 0;
	if (!skald__mpsc_empty(&a->mailbox) && atomic_compare_exchange_strong(&a->sched, &idle, 1))
		rq_push(t, a);
}

static void drain_inbound(skald__thread_t *t)
{
	skald__mpsc_node_t *n;
	while ((n = skald__mpsc_pop(&t->inbound)) != NULL)
		rq_push(t, (skald_actor_t *)((char *)n - offsetof(skald_actor_t, rq)));
}

void skald__thread_drain(skald__thread_t *t)
{
	drain_inbound(t);
}

void skald__thread_runner_cb(uv_idle_t *h)
{
	skald__thread_t *t = h->data;
	/* Actors woken by other threads join the back of the queue on every
	 * pass, so a busy local queue cannot starve them. */
	drain_inbound(t);
	unsigned i = 0;
	for (; i < TURNS_PER_POLL; i++) {
		skald_actor_t *a = rq_pop(t);
		if (a == NULL) {
			drain_inbound(t);
			a = rq_pop(t);
			if (a == NULL)
				break;
		}
		turn(t, a);
	}
	uint64_t now = uv_hrtime();
	if (i > 0)
		t->last_work = now;
	if (t->rq_head != NULL)
		return;
	drain_inbound(t);
	if (t->rq_head != NULL)
		return;
	/* Before sleeping, stay awake for a while after the last work: a
	 * conversation with another thread (a reply to what was just sent)
	 * then continues without a wake-up through the kernel, which costs
	 * tens of microseconds on a virtual machine (Erlang's schedulers do
	 * the same). Returning with the runner still active keeps the loop
	 * polling its I/O without blocking, so sockets and timers are served
	 * meanwhile; the yield gives the core away if another thread, maybe
	 * the one that will send us work, needs it. */
	if (now - t->last_work < SPIN_NS) {
		sched_yield();
		return;
	}
	/* Announce sleep, then look once more: a sender that pushed before
	 * seeing the flag is caught here, one that pushed after wakes us. */
	atomic_store(&t->sleeping, 1);
	if (!skald__mpsc_empty(&t->inbound)) {
		atomic_store(&t->sleeping, 0);
		drain_inbound(t);
		return;
	}
	uv_idle_stop(&t->runner);
}

void skald__thread_wake_cb(uv_async_t *h)
{
	skald__thread_t *t = h->data;
	/* Always hand over to the runner: it drains the inbound queue and, if
	 * there is nothing to do, goes back to sleep through the announce-and-
	 * recheck handshake. Deciding here, on an empty drain, would leave
	 * `sleeping` cleared with nobody running, and later senders would
	 * never wake this thread again. */
	runner_start(t);
}

/* At shutdown: frees the actors still queued (all terminated by then). */
void skald__rq_drain_free(skald__thread_t *t)
{
	drain_inbound(t);
	skald_actor_t *a;
	while ((a = rq_pop(t)) != NULL) {
		if (a->flags & AF_TERMINATED)
			skald__actor_free(a);
		else
			SKALD_LOG(SKALD_LOG_ERROR, "live actor queued at shutdown");
	}
}
