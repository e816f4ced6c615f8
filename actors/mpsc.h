/*
 * actors/mpsc.h - intrusive multi-producer, single-consumer queue.
 *
 * The lock-free queue behind every mailbox and every thread's inbound queue
 * (Dmitry Vyukov's intrusive MPSC design: producers swap the head with one
 * atomic exchange; the single consumer walks from the tail). A push never
 * fails or allocates. pop() may return NULL while a producer is between its
 * exchange and its link (a window of a few instructions); mpsc_empty() tells
 * that case apart, and the consumer retries later.
 *
 * All operations on head are sequentially consistent: the scheduler relies on
 * "push, then read the actor's state" racing safely with "write the state,
 * then test for emptiness" (a Dekker-style handshake, see sched.c).
 */
#ifndef SKALD_ACTORS_MPSC_H
#define SKALD_ACTORS_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct skald__mpsc_node_s {
	_Atomic(struct skald__mpsc_node_s *) next;
} skald__mpsc_node_t;

typedef struct skald__mpsc_s {
	_Atomic(skald__mpsc_node_t *) head; /* producers' end */
	skald__mpsc_node_t *tail;           /* consumer's end */
	skald__mpsc_node_t stub;
} skald__mpsc_t;

static inline void skald__mpsc_init(skald__mpsc_t *q)
{
	atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
	atomic_store(&q->head, &q->stub);
	q->tail = &q->stub;
}

/* Any thread. */
static inline void skald__mpsc_push(skald__mpsc_t *q, skald__mpsc_node_t *n)
{
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	skald__mpsc_node_t *prev = atomic_exchange(&q->head, n);
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Consumer only. NULL when empty or when a push is half done. */
static inline skald__mpsc_node_t *skald__mpsc_pop(skald__mpsc_t *q)
{
	skald__mpsc_node_t *tail = q->tail;
	skald__mpsc_node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (tail == &q->stub) {
		if (next == NULL)
			return NULL;
		q->tail = next;
		tail = next;
		next = atomic_load_explicit(&next->next, memory_order_acquire);
	}
	if (next != NULL) {
		q->tail = next;
		return tail;
	}
	if (tail != atomic_load(&q->head))
		return NULL; /* a producer is linking: retry later */
	skald__mpsc_push(q, &q->stub);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next != NULL) {
		q->tail = next;
		return tail;
	}
	return NULL;
}

/* Consumer only. True only if nothing is queued and no push is under way. */
static inline int skald__mpsc_empty(skald__mpsc_t *q)
{
	return q->tail == &q->stub && atomic_load(&q->head) == &q->stub;
}

#endif /* SKALD_ACTORS_MPSC_H */
