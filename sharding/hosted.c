/*
 * sharding/hosted.c - the entities a region hosts.
 *
 * An entity is a child of its region, spawned on the scheduler threads in
 * turn and watched by the region. A message is forwarded to it with its
 * original sender and ask id (skald__forward), so its replies go straight
 * to the asker. While an entity recovers, messages wait in its own mailbox
 * (the journal layer pauses it); while it waits for a recovery slot, is
 * stopping, or waits to be restarted after a failure, they wait here, in
 * its queue, counted against max_buffer.
 *
 * Stopping is always skald_stop: the stop waits in the entity's mailbox
 * behind what was sent before it, and behind a write in flight (the mailbox
 * is paused until the journal confirms), so an entity stops only after its
 * writes have completed.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "base/hash.h"
#include "base/log.h"
#include "sharding/region.h"

/* ------------------------------------------------------------------------ */
/* The table: by id and by reference                                         */

static size_t by_id_slot(const region_t *r, const char *id)
{
	return (size_t)(skald__hash_str(id) & (r->nbuckets - 1));
}

static size_t by_ref_slot(const region_t *r, skald_ref_t ref)
{
	return (size_t)(skald__mix64((uint64_t)ref.actor << 32 | ref.incarnation) &
	                (r->nbuckets - 1));
}

static ent_t *ent_find(region_t *r, const char *id)
{
	for (ent_t *e = r->by_id[by_id_slot(r, id)]; e != NULL; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static ent_t *ent_by_ref(region_t *r, skald_ref_t ref)
{
	for (ent_t *e = r->by_ref[by_ref_slot(r, ref)]; e != NULL; e = e->rnext)
		if (skald_ref_eq(e->ref, ref))
			return e;
	return NULL;
}

static void unlink_ref(region_t *r, ent_t *e)
{
	if (skald_ref_is_null(e->ref))
		return;
	ent_t **pp = &r->by_ref[by_ref_slot(r, e->ref)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->rnext;
	if (*pp == e)
		*pp = e->rnext;
	e->rnext = NULL;
	e->ref = SKALD_REF_NULL;
}

static void link_ref(region_t *r, ent_t *e, skald_ref_t ref)
{
	unlink_ref(r, e);
	e->ref = ref;
	size_t k = by_ref_slot(r, ref);
	e->rnext = r->by_ref[k];
	r->by_ref[k] = e;
}

/* Doubles the tables when they are as full as they are wide. */
static void grow(region_t *r)
{
	size_t n = r->nbuckets * 2;
	ent_t **ids = calloc(n, sizeof *ids), **refs = calloc(n, sizeof *refs);
	if (ids == NULL || refs == NULL) {
		free(ids);
		free(refs);
		return; /* longer chains, still correct */
	}
	size_t old = r->nbuckets;
	ent_t **oid = r->by_id, **oref = r->by_ref;
	r->by_id = ids;
	r->by_ref = refs;
	r->nbuckets = n;
	for (size_t i = 0; i < old; i++) {
		for (ent_t *e = oid[i], *next; e != NULL; e = next) {
			next = e->hnext;
			size_t k = by_id_slot(r, e->id);
			e->hnext = ids[k];
			ids[k] = e;
		}
		for (ent_t *e = oref[i], *next; e != NULL; e = next) {
			next = e->rnext;
			size_t k = by_ref_slot(r, e->ref);
			e->rnext = refs[k];
			refs[k] = e;
		}
	}
	free(oid);
	free(oref);
}

static ent_t *ent_new(region_t *r, uint32_t shard, const char *id)
{
	if (r->nents >= r->nbuckets)
		grow(r);
	size_t len = strlen(id);
	ent_t *e = calloc(1, sizeof *e + len + 1);
	if (e == NULL)
		return NULL;
	memcpy(e->id, id, len);
	e->shard = shard;
	size_t k = by_id_slot(r, id);
	e->hnext = r->by_id[k];
	r->by_id[k] = e;
	shard_t *sh = &r->shards[shard];
	e->snext = sh->ents;
	if (sh->ents != NULL)
		sh->ents->sprev = e;
	sh->ents = e;
	r->nents++;
	return e;
}

/* The lists of E_WAITING (a queue) and E_BACKOFF (a set). */
static void wait_unlink(region_t *r, ent_t *e)
{
	ent_t **head = e->state == E_WAITING ? &r->wait_head : &r->backoff;
	if (e->wprev != NULL)
		e->wprev->wnext = e->wnext;
	else if (*head == e)
		*head = e->wnext;
	if (e->wnext != NULL)
		e->wnext->wprev = e->wprev;
	else if (e->state == E_WAITING && r->wait_tail == e)
		r->wait_tail = e->wprev;
	e->wprev = e->wnext = NULL;
}

static void wait_push(region_t *r, ent_t *e)
{
	e->state = E_WAITING;
	e->wnext = NULL;
	e->wprev = r->wait_tail;
	if (r->wait_tail != NULL)
		r->wait_tail->wnext = e;
	else
		r->wait_head = e;
	r->wait_tail = e;
}

static void backoff_push(region_t *r, ent_t *e)
{
	e->state = E_BACKOFF;
	e->wprev = NULL;
	e->wnext = r->backoff;
	if (r->backoff != NULL)
		r->backoff->wprev = e;
	r->backoff = e;
}

/* Removes e from everything and frees it; its queue must be empty. */
static void ent_free(region_t *r, ent_t *e)
{
	if (e->state == E_WAITING || e->state == E_BACKOFF)
		wait_unlink(r, e);
	unlink_ref(r, e);
	ent_t **pp = &r->by_id[by_id_slot(r, e->id)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
	shard_t *sh = &r->shards[e->shard];
	if (e->sprev != NULL)
		e->sprev->snext = e->snext;
	else
		sh->ents = e->snext;
	if (e->snext != NULL)
		e->snext->sprev = e->sprev;
	r->nents--;
	free(e);
}

/* ------------------------------------------------------------------------ */
/* Starting and delivering                                                   */

uint64_t skald__rg_backoff(const region_t *r, unsigned failures)
{
	uint64_t d = r->sh->cfg.backoff_min_ms;
	for (unsigned i = 1; i < failures && d < r->sh->cfg.backoff_max_ms; i++)
		d *= 2;
	return d < r->sh->cfg.backoff_max_ms ? d : r->sh->cfg.backoff_max_ms;
}

/* Hands env to the live entity e; consumes env. */
static void pass(region_t *r, ent_t *e, shard_env_t *env)
{
	int rc = skald__forward(r->sys, e->ref, env->type, env->payload, env->sender, env->ask_id);
	if (rc < 0) {
		skald__rg_reject(r, env, rc);
		return;
	}
	env->payload = NULL;
	skald__shard_env_free(env);
	e->last = skald__rg_now();
}

static void failed(skald_actor_t *self, region_t *r, ent_t *e, int reason);

/* Starts e (or queues it for a recovery slot, or for a restart after a
 * failure to spawn). Returns false if e is gone: the region stops. */
static bool start(skald_actor_t *self, region_t *r, ent_t *e)
{
	skald_sharding_t *sh = r->sh;
	if (r->stopping || r->down) {
		/* Nothing starts any more (a remembered set that recovered
		 * late, a restart after backoff). */
		skald__rg_reject_all(r, &e->held, r->down ? SKALD_ENODEDOWN : SKALD_ESTOPPING);
		ent_free(r, e);
		return false;
	}
	if (r->recovering >= sh->cfg.max_recoveries && sh->behavior == NULL) {
		wait_push(r, e);
		return true;
	}
	skald_spawn_opts_t opts = {SKALD_SPAWN_PIN, r->next_thread++};
	skald_ref_t ref;
	int rc = sh->behavior != NULL
	                 ? skald_spawn_child(self, sh->behavior, sh->behavior_arg, &opts, &ref)
	                 : skald_entity_spawn_child(self, &sh->type.t, e->id, &opts, &ref);
	if (rc == 0 && (rc = skald_watch(self, ref)) < 0)
		skald_stop(r->sys, ref);
	if (rc < 0) {
		RG_LOG(r, SKALD_LOG_ERROR, "cannot start entity %s: %s", e->id, skald_strerror(rc));
		failed(self, r, e, rc);
		return true;
	}
	link_ref(r, e, ref);
	r->live++;
	r->shards[e->shard].live++;
	atomic_fetch_add(&sh->live, 1);
	atomic_fetch_add(&sh->started, 1);
	e->last = skald__rg_now();
	if (sh->behavior != NULL) {
		e->state = E_READY;
		e->ready_at = e->last;
	} else {
		e->state = E_RECOVERING;
		e->counted = true;
		r->recovering++;
		atomic_fetch_add(&sh->recovering, 1);
	}
	/* What waited here goes to its mailbox now, in order; it waits there
	 * until the recovery is complete. */
	shard_env_t *env;
	size_t n = e->held.n;
	while ((env = skald__q_pop(&e->held)) != NULL)
		pass(r, e, env);
	skald__rg_unhold(r, n);
	return true;
}

static void start_waiting(skald_actor_t *self, region_t *r)
{
	while (r->wait_head != NULL && r->recovering < r->sh->cfg.max_recoveries) {
		ent_t *e = r->wait_head;
		wait_unlink(r, e);
		e->state = 0;
		start(self, r, e);
	}
}

/* The entity failed (or could not start): start it again after a backoff,
 * keeping what waits for it. */
static void failed(skald_actor_t *self, region_t *r, ent_t *e, int reason)
{
	uint64_t now = skald__rg_now();
	/* One that ran well for a while starts again from the shortest
	 * delay. */
	if (e->ready_at != 0 && now - e->ready_at > r->sh->cfg.backoff_max_ms)
		e->failures = 0;
	e->ready_at = 0;
	e->failures++;
	uint64_t delay = skald__rg_backoff(r, e->failures);
	e->retry_at = now + delay;
	backoff_push(r, e);
	RG_LOG(r, SKALD_LOG_WARN, "entity %s stopped (%s); starting it again in %llu ms", e->id,
	       skald_err_name(reason), (unsigned long long)delay);
}

void skald__rg_deliver(skald_actor_t *self, region_t *r, shard_env_t *env)
{
	ent_t *e = ent_find(r, env->id);
	if (e == NULL) {
		if ((e = ent_new(r, env->shard, env->id)) == NULL) {
			skald__rg_reject(r, env, SKALD_ENOMEM);
			return;
		}
		skald__rg_rem_change(self, r, env->shard, env->id, true);
		if (!start(self, r, e)) {
			skald__rg_reject(r, env, SKALD_ESTOPPING);
			return;
		}
	}
	if (e->state == E_RECOVERING || e->state == E_READY)
		pass(r, e, env);
	else
		skald__rg_hold(r, &e->held, env);
}

void skald__rg_ensure(skald_actor_t *self, region_t *r, uint32_t shard, const char *id)
{
	if (ent_find(r, id) != NULL)
		return;
	ent_t *e = ent_new(r, shard, id);
	if (e == NULL) {
		RG_LOG(r, SKALD_LOG_ERROR, "out of memory starting entity %s", id);
		return;
	}
	start(self, r, e);
}

/* ------------------------------------------------------------------------ */
/* Recovered, stopped                                                        */

static void uncount(region_t *r, ent_t *e)
{
	if (!e->counted)
		return;
	e->counted = false;
	r->recovering--;
	atomic_fetch_sub(&r->sh->recovering, 1);
}

void skald__rg_ready(skald_actor_t *self, region_t *r, skald_ref_t ref)
{
	ent_t *e = ent_by_ref(r, ref);
	if (e == NULL)
		return;
	uncount(r, e);
	e->ready_at = skald__rg_now();
	if (e->state == E_RECOVERING)
		e->state = E_READY;
	start_waiting(self, r);
}

void skald__rg_ent_down(skald_actor_t *self, region_t *r, skald_ref_t ref, int reason)
{
	ent_t *e = ent_by_ref(r, ref);
	if (e == NULL)
		return;
	uint32_t s = e->shard;
	shard_t *sh = &r->shards[s];
	uncount(r, e);
	unlink_ref(r, e);
	r->live--;
	sh->live--;
	atomic_fetch_sub(&r->sh->live, 1);
	int state = e->state, why = e->why;
	e->state = 0;
	e->why = WHY_NONE;
	if (reason == SKALD_ECONFLICT)
		atomic_fetch_add(&r->sh->conflicts, 1);
	bool serving = sh->state == SH_SERVING && !r->stopping && !r->down;
	if (serving && (reason < 0 || e->held.head != NULL) && why != WHY_HANDOFF &&
	    why != WHY_REGION) {
		if (reason < 0) {
			/* A failure: a journal write failed (the database may be
			 * gone), recovery failed, or its handler did. */
			failed(self, r, e, reason);
		} else {
			/* Messages came while it stopped: it starts again. */
			start(self, r, e);
		}
	} else if (serving && state == E_STOPPING && why == WHY_HANDOFF) {
		/* The shard came back here before its handoff finished. */
		if (e->held.head != NULL)
			start(self, r, e);
		else
			ent_free(r, e);
	} else {
		if (sh->state == SH_HANDING)
			skald__q_move(&sh->held, &e->held);
		else
			skald__rg_reject_all(r, &e->held,
			                     r->down ? SKALD_ENODEDOWN : SKALD_ESTOPPING);
		/* Stopped for good while its shard is here (idle, or it stopped
		 * itself): not to be started again after a failover. */
		if (serving && why != WHY_HANDOFF && why != WHY_REGION)
			skald__rg_rem_change(self, r, s, e->id, false);
		ent_free(r, e);
	}
	start_waiting(self, r);
	skald__rg_handoff_check(self, r, s);
	skald__rg_stop_check(self, r);
}

void skald__rg_stop_shard(skald_actor_t *self, region_t *r, uint32_t shard, int why, msgq_t *dst,
                          int err)
{
	shard_t *sh = &r->shards[shard];
	for (ent_t *e = sh->ents, *next; e != NULL; e = next) {
		next = e->snext;
		if (dst != NULL)
			skald__q_move(dst, &e->held);
		else
			skald__rg_reject_all(r, &e->held, err);
		switch (e->state) {
		case E_RECOVERING:
		case E_READY:
			e->state = E_STOPPING;
			e->why = why;
			skald_stop(r->sys, e->ref);
			break;
		case E_STOPPING:
			e->why = why;
			break;
		default: /* waiting or backing off: not alive */
			ent_free(r, e);
			break;
		}
	}
}

void skald__rg_hosted_tick(skald_actor_t *self, region_t *r, uint64_t now)
{
	for (ent_t *e = r->backoff, *next; e != NULL; e = next) {
		next = e->wnext;
		if (now < e->retry_at)
			continue;
		wait_unlink(r, e);
		e->state = 0;
		atomic_fetch_add(&r->sh->restarts, 1);
		start(self, r, e);
	}
	uint64_t idle = r->sh->cfg.passivate_ms;
	if (idle == SKALD_SHARDING_NEVER || now < r->next_passivation)
		return;
	r->next_passivation = now + (idle / 4 > 100 ? idle / 4 : 100);
	for (uint32_t s = 0; s < r->nshards; s++) {
		if (r->shards[s].state != SH_SERVING)
			continue;
		for (ent_t *e = r->shards[s].ents; e != NULL; e = e->snext) {
			if (e->state != E_READY || now - e->last < idle)
				continue;
			e->state = E_STOPPING;
			e->why = WHY_PASSIVATE;
			atomic_fetch_add(&r->sh->passivated, 1);
			skald_stop(r->sys, e->ref);
		}
	}
}

void skald__rg_ents_fini(region_t *r)
{
	for (size_t i = 0; r->by_id != NULL && i < r->nbuckets; i++) {
		for (ent_t *e = r->by_id[i], *next; e != NULL; e = next) {
			next = e->hnext;
			skald__rg_reject_all(r, &e->held, SKALD_ESTOPPING);
			free(e);
		}
	}
	free(r->by_id);
	free(r->by_ref);
	r->by_id = r->by_ref = NULL;
	r->nbuckets = r->nents = 0;
}
