/*
 * actors/slots.c - the table that turns references into actors, safely.
 *
 * A reference names a slot and an incarnation. Each slot holds one 64-bit
 * word: the incarnation (high 32 bits), a count of senders currently using
 * the actor (pins), and an alive bit. A sender pins the slot with one CAS
 * that succeeds only if the incarnation matches and the actor is alive, pushes
 * into the mailbox, and unpins. The owner kills the slot (clears alive) and
 * waits for the pins to drain before it frees the actor, so a stale reference
 * can never reach freed memory or a later actor of the same slot: the slot's
 * incarnation moves on when it is reused.
 *
 * Slots live in pages of 4,096 that are allocated once and never move, so
 * readers need no lock. Free slot numbers are kept on a stack under a mutex.
 */
#include <sched.h>
#include <stdlib.h>

#include "actors/internal.h"

#define ALIVE     1ull
#define PIN       2ull
#define PINS_MASK 0xfffffffeull

int skald__slots_init(skald__slots_t *s)
{
	for (unsigned i = 0; i < SKALD__SLOT_PAGES; i++)
		atomic_store_explicit(&s->pages[i], NULL, memory_order_relaxed);
	s->free = NULL;
	s->nfree = s->capfree = 0;
	s->next = 1; /* slot 0 is never used: the null reference names it */
	return uv_mutex_init(&s->lock);
}

void skald__slots_fini(skald__slots_t *s)
{
	for (unsigned i = 0; i < SKALD__SLOT_PAGES; i++)
		free(atomic_load(&s->pages[i]));
	free(s->free);
	uv_mutex_destroy(&s->lock);
}

static skald__slot_t *slot_at(skald__slots_t *s, uint32_t index)
{
	skald__slot_t *page = atomic_load_explicit(&s->pages[index >> SKALD__SLOT_PAGE_BITS],
	                                           memory_order_acquire);
	if (page == NULL)
		return NULL;
	return &page[index & (SKALD__SLOT_PAGE_SIZE - 1)];
}

int skald__slot_alloc(skald__slots_t *s, skald_actor_t *a, uint32_t *index, uint32_t *inc)
{
	uint32_t i;
	uv_mutex_lock(&s->lock);
	if (s->nfree > 0) {
		i = s->free[--s->nfree];
	} else {
		i = s->next;
		uint32_t p = i >> SKALD__SLOT_PAGE_BITS;
		if (p >= SKALD__SLOT_PAGES) {
			uv_mutex_unlock(&s->lock);
			return SKALD_ETOOMANY;
		}
		if (atomic_load_explicit(&s->pages[p], memory_order_relaxed) == NULL) {
			skald__slot_t *page = calloc(SKALD__SLOT_PAGE_SIZE, sizeof *page);
			if (page == NULL) {
				uv_mutex_unlock(&s->lock);
				return SKALD_ENOMEM;
			}
			/* Incarnations start at 1 so that no live reference is
			 * ever all zeros. */
			for (unsigned k = 0; k < SKALD__SLOT_PAGE_SIZE; k++)
				atomic_init(&page[k].word, 1ull << 32);
			atomic_store_explicit(&s->pages[p], page, memory_order_release);
		}
		s->next++;
	}
	uv_mutex_unlock(&s->lock);

	skald__slot_t *slot = slot_at(s, i);
	atomic_store_explicit(&slot->actor, a, memory_order_relaxed);
	uint64_t w = atomic_load(&slot->word);
	/* Publishing the alive bit (release) makes the actor visible. */
	atomic_store(&slot->word, (w & ~(PINS_MASK | ALIVE)) | ALIVE);
	*index = i;
	*inc = (uint32_t)(w >> 32);
	return 0;
}

skald_actor_t *skald__slot_pin(skald_system_t *sys, skald_ref_t ref, skald__slot_t **slotp)
{
	if (ref.node != sys->node || ref.actor == 0)
		return NULL;
	if ((ref.actor >> SKALD__SLOT_PAGE_BITS) >= SKALD__SLOT_PAGES)
		return NULL;
	skald__slot_t *slot = slot_at(&sys->slots, ref.actor);
	if (slot == NULL)
		return NULL;
	uint64_t w = atomic_load(&slot->word);
	for (;;) {
		if ((uint32_t)(w >> 32) != ref.incarnation || !(w & ALIVE))
			return NULL;
		if (atomic_compare_exchange_weak(&slot->word, &w, w + PIN))
			break;
	}
	*slotp = slot;
	return atomic_load_explicit(&slot->actor, memory_order_relaxed);
}

int skald__slot_reason(skald_system_t *sys, skald_ref_t ref)
{
	if (ref.node != sys->node || ref.actor == 0 ||
	    (ref.actor >> SKALD__SLOT_PAGE_BITS) >= SKALD__SLOT_PAGES)
		return SKALD_ENOACTOR;
	skald__slot_t *slot = slot_at(&sys->slots, ref.actor);
	if (slot == NULL)
		return SKALD_ENOACTOR;
	uint64_t last = atomic_load(&slot->last_stop);
	int reason = (int)(int32_t)(uint32_t)last;
	return (uint32_t)(last >> 32) == ref.incarnation && reason < 0 ? reason : SKALD_ENOACTOR;
}

void skald__slot_unpin(skald__slot_t *slot)
{
	atomic_fetch_sub(&slot->word, PIN);
}

void skald__slot_kill(skald__slots_t *s, uint32_t index, int reason)
{
	skald__slot_t *slot = slot_at(s, index);
	/* Before alive is cleared: a sender that finds the slot dead finds
	 * the reason too. */
	uint64_t inc = atomic_load(&slot->word) >> 32;
	atomic_store(&slot->last_stop, inc << 32 | (uint32_t)reason);
	atomic_fetch_and(&slot->word, ~ALIVE);
	/* Senders hold a pin only across one push: a few dozen instructions. */
	unsigned spins = 0;
	while (atomic_load(&slot->word) & PINS_MASK) {
		if (++spins > 64)
			sched_yield();
	}
}

void skald__slot_free(skald__slots_t *s, uint32_t index)
{
	skald__slot_t *slot = slot_at(s, index);
	uint64_t w = atomic_load(&slot->word);
	uint32_t inc = (uint32_t)(w >> 32) + 1;
	if (inc == 0)
		inc = 1;
	atomic_store(&slot->word, (uint64_t)inc << 32);
	atomic_store_explicit(&slot->actor, NULL, memory_order_relaxed);

	uv_mutex_lock(&s->lock);
	if (s->nfree == s->capfree) {
		uint32_t cap = s->capfree ? s->capfree * 2 : 1024;
		uint32_t *v = realloc(s->free, cap * sizeof *v);
		if (v == NULL) {
			/* Leak the slot number rather than fail a stop. */
			uv_mutex_unlock(&s->lock);
			return;
		}
		s->free = v;
		s->capfree = cap;
	}
	s->free[s->nfree++] = index;
	uv_mutex_unlock(&s->lock);
}
