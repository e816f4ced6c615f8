/*
 * sharding/handoff.c - a shard changes owner.
 *
 * Between two live members (a member joined, or the owner is leaving):
 *
 *   new owner B                               old owner A
 *   state TAKING: holds what it gets          state HANDING: holds what it gets,
 *   sends BEGIN(shard, view) to A  ------->   stops the shard's entities (each
 *                                             after its writes in flight) and
 *                                             its remember entity, and waits
 *                                             until every member that ever
 *                                             sent it something says it routes
 *                                             by the new view (SK_VIEW)
 *                                  <-------   then sends what it held, flagged
 *                                             SF_HANDED, in order, and HANDOFF
 *   delivers what A handed first,
 *   then what it held, and serves
 *
 * Every member sends SK_VIEW to every other after a change of view, on the
 * same connection as its messages, so once A has them all, nothing routed
 * the old way can still be on its way to A: whatever any sender sent to the
 * entity before it switched is in A's queue, and goes to B ahead of what
 * that sender sent B directly. That is the order guarantee of
 * skald/sharding.h. A handoff that waits longer than handoff_timeout_ms
 * (a member that never answered) goes on without it, and so does a new
 * owner whose old owner never handed over; the journal still keeps a
 * single writer, only the order across that handoff is not promised.
 *
 * When the old owner is down or removed there is nobody to wait for: the
 * new owner takes the shard at once (a takeover) and its entities recover
 * from the journal.
 */
#include <stdlib.h>

#include "actors/cluster/leave.h"
#include "base/log.h"
#include "sharding/region.h"

static void send_control(skald_actor_t *self, region_t *r, uint64_t node, int kind, uint32_t s)
{
	shard_env_t *env = skald__env_alloc((uint8_t)kind, NULL);
	if (env == NULL)
		return; /* the other side's timeout covers it */
	env->shard = s;
	env->view = r->digest;
	skald__rg_send(self, r, node, env);
}

static void set_owned(region_t *r, shard_t *sh, int state)
{
	bool was = sh->state == SH_SERVING || sh->state == SH_TAKING;
	bool is = state == SH_SERVING || state == SH_TAKING;
	if (was != is) {
		if (is)
			atomic_fetch_add(&r->sh->shards_owned, 1);
		else
			atomic_fetch_sub(&r->sh->shards_owned, 1);
	}
	sh->state = state;
}

void skald__rg_serve(skald_actor_t *self, region_t *r, uint32_t s)
{
	shard_t *sh = &r->shards[s];
	RG_LOG(r, SKALD_LOG_DEBUG, "serving shard %u", s);
	set_owned(r, sh, SH_SERVING);
	sh->peer = 0;
	sh->begin_from = 0;
	skald__rg_rem_start(self, r, s);
	if (r->sh->single_id != NULL)
		skald__rg_ensure(self, r, s, r->sh->single_id);
	/* What the old owner handed over was sent before what came here
	 * directly. */
	msgq_t q = {0};
	skald__q_move(&q, &sh->handed);
	skald__q_move(&q, &sh->held);
	skald__rg_unhold(r, q.n);
	shard_env_t *env;
	while ((env = skald__q_pop(&q)) != NULL) {
		env->flags &= (uint8_t)~SF_HANDED;
		skald__rg_route(self, r, env);
	}
}

/* Whether the new owner `to`, and every member this one has heard from,
 * route by this member's view: then nothing sent the old way can still be
 * on its way here, and `to` takes the handoff (it accepts one made under
 * its own view only). */
static bool views_agree(region_t *r, uint64_t to)
{
	const peer_t *t = skald__rg_peer_find(r, to);
	if (t == NULL || t->view_seen != r->digest)
		return false;
	for (size_t i = 0; i < r->nup; i++) {
		if (r->up[i] == r->me)
			continue;
		const peer_t *p = skald__rg_peer_find(r, r->up[i]);
		if (p != NULL && p->heard && p->view_seen != r->digest)
			return false;
	}
	return true;
}

/* Whether a handoff to `to` begun at `since` may go now: the views agree,
 * or it has waited as long as it may. */
static bool may_hand_over(region_t *r, uint32_t s, uint64_t to, uint64_t since)
{
	if (views_agree(r, to))
		return true;
	uint64_t now = skald__rg_now();
	if (now - since < r->sh->cfg.handoff_timeout_ms)
		return false;
	RG_LOG(r, SKALD_LOG_WARN,
	       "handing shard %u over to %016llx after %llu ms without every member "
	       "routing by the new view; order across this handoff is not guaranteed",
	       s, (unsigned long long)to, (unsigned long long)(now - since));
	return true;
}

static void handed(region_t *r, shard_t *sh, uint64_t to)
{
	sh->handed_to = to;
	sh->handed_view = r->digest;
	atomic_fetch_add(&r->sh->handoffs_out, 1);
}

void skald__rg_handoff_check(skald_actor_t *self, region_t *r, uint32_t s)
{
	shard_t *sh = &r->shards[s];
	if (sh->state == SH_REMOTE && sh->answer_to != 0) {
		/* An empty handoff, to a new owner that asked this member. */
		uint64_t to = sh->answer_to;
		if (sh->owner != to) {
			sh->answer_to = 0;
		} else if (may_hand_over(r, s, to, sh->answer_since)) {
			sh->answer_to = 0;
			send_control(self, r, to, SK_HANDOFF, s);
			handed(r, sh, to);
		}
		skald__rg_leave_check(r);
		return;
	}
	if (sh->state != SH_HANDING || sh->live > 0 || !skald_ref_is_null(sh->rem) ||
	    !may_hand_over(r, s, sh->peer, sh->since))
		return;
	uint64_t to = sh->peer;
	msgq_t q = sh->held;
	sh->held = (msgq_t){0};
	skald__rg_unhold(r, q.n);
	sh->state = SH_REMOTE;
	sh->peer = 0;
	shard_env_t *env;
	while ((env = skald__q_pop(&q)) != NULL) {
		env->flags |= SF_HANDED;
		skald__rg_send(self, r, to, env);
	}
	send_control(self, r, to, SK_HANDOFF, s);
	handed(r, sh, to);
	RG_LOG(r, SKALD_LOG_DEBUG, "shard %u handed over to %016llx", s, (unsigned long long)to);
	skald__rg_leave_check(r);
}

static void begin_handoff(skald_actor_t *self, region_t *r, uint32_t s, uint64_t to)
{
	shard_t *sh = &r->shards[s];
	if (sh->state == SH_TAKING) {
		/* It never got here: what it held goes on, the old owner's
		 * first. */
		msgq_t q = {0};
		skald__q_move(&q, &sh->handed);
		skald__q_move(&q, &sh->held);
		sh->held = q;
	} else if (sh->state == SH_SERVING) {
		skald__rg_stop_shard(self, r, s, WHY_HANDOFF, &sh->held, 0);
		skald__rg_rem_stop(self, r, s, true);
	}
	if (sh->state != SH_HANDING)
		sh->since = skald__rg_now();
	set_owned(r, sh, SH_HANDING);
	sh->peer = to;
	skald__rg_handoff_check(self, r, s);
}

void skald__rg_shard_moved(skald_actor_t *self, region_t *r, uint32_t s, uint64_t old)
{
	shard_t *sh = &r->shards[s];
	uint64_t now_owner = sh->owner;
	if (now_owner != r->me) {
		if (sh->state != SH_REMOTE)
			begin_handoff(self, r, s, now_owner);
		return;
	}
	if (sh->state == SH_HANDING) {
		/* Back here before the handoff finished: serve again. Entities
		 * still stopping start again when messages wait for them. */
		skald__rg_serve(self, r, s);
		return;
	}
	/* Who served it before this member: the previous owner, or, on this
	 * member's first view, the owner the view would have without it. */
	uint64_t prev = old != 0 ? old : skald__rg_owner(r, s, r->me);
	if (prev != 0 && prev != r->me && skald__rg_alive(r, prev)) {
		RG_LOG(r, SKALD_LOG_DEBUG, "taking shard %u from %016llx", s,
		       (unsigned long long)prev);
		set_owned(r, sh, SH_TAKING);
		sh->peer = prev;
		sh->since = skald__rg_now();
		sh->asked_view = r->digest;
		send_control(self, r, prev, SK_BEGIN, s);
		return;
	}
	if (old != 0 && old != r->me)
		atomic_fetch_add(&r->sh->takeovers, 1);
	skald__rg_serve(self, r, s);
}

/* A new owner asked for shard s; this member's view is the asker's. */
static void begin(skald_actor_t *self, region_t *r, uint32_t s, uint64_t from)
{
	shard_t *sh = &r->shards[s];
	sh->begin_from = 0;
	if (sh->owner != from)
		return;
	if (sh->state == SH_REMOTE && sh->handed_to == from && sh->handed_view == r->digest)
		return; /* the handoff crossed the BEGIN: it is on its way */
	if (sh->state == SH_REMOTE && sh->answer_to != from) {
		/* Nothing of it is here. It still waits until what others
		 * sent here the old way has gone on; what comes meanwhile is
		 * routed as usual, by the new view. */
		sh->answer_to = from;
		sh->answer_since = skald__rg_now();
	}
	skald__rg_handoff_check(self, r, s);
}

void skald__rg_begins(skald_actor_t *self, region_t *r)
{
	for (uint32_t s = 0; s < r->nshards; s++) {
		shard_t *sh = &r->shards[s];
		if (sh->begin_from != 0 && sh->begin_view == r->digest)
			begin(self, r, s, sh->begin_from);
		/* The old owner takes a BEGIN only under its own view, and
		 * hands over only under it: ask again under this one. */
		if (sh->state == SH_TAKING && sh->asked_view != r->digest &&
		    skald__rg_alive(r, sh->peer)) {
			sh->asked_view = r->digest;
			send_control(self, r, sh->peer, SK_BEGIN, s);
		}
	}
}

void skald__rg_control(skald_actor_t *self, region_t *r, shard_env_t *env)
{
	uint64_t from = env->sender.node;
	peer_t *p = skald__rg_peer_find(r, from);
	if (env->kind == SK_VIEW) {
		if (p != NULL)
			p->view_seen = env->view;
		for (uint32_t s = 0; s < r->nshards; s++)
			skald__rg_handoff_check(self, r, s);
	} else if (env->shard < r->nshards && !r->down && !r->stopping) {
		shard_t *sh = &r->shards[env->shard];
		if (env->kind == SK_BEGIN) {
			if (env->view == r->digest) {
				begin(self, r, env->shard, from);
			} else {
				sh->begin_from = from;
				sh->begin_view = env->view;
			}
		} else if (env->kind == SK_HANDOFF && sh->state == SH_TAKING && sh->peer == from &&
		           env->view == r->digest) {
			/* Only from the member this one takes the shard from, under
			 * this view: another is an earlier move's, crossed by this
			 * one. */
			atomic_fetch_add(&r->sh->handoffs_in, 1);
			skald__rg_serve(self, r, env->shard);
		}
	}
	skald__shard_env_free(env);
}

void skald__rg_handoff_tick(skald_actor_t *self, region_t *r, uint64_t now)
{
	for (uint32_t s = 0; s < r->nshards; s++) {
		shard_t *sh = &r->shards[s];
		if (sh->state == SH_HANDING || sh->answer_to != 0) {
			skald__rg_handoff_check(self, r, s);
		} else if (sh->state == SH_TAKING) {
			bool gone = !skald__rg_alive(r, sh->peer);
			if (!gone && now - sh->since < r->sh->cfg.handoff_timeout_ms)
				continue;
			if (!gone)
				RG_LOG(r, SKALD_LOG_WARN,
				       "no handoff of shard %u from %016llx after "
				       "%llu ms; taking it",
				       s, (unsigned long long)sh->peer,
				       (unsigned long long)(now - sh->since));
			atomic_fetch_add(&r->sh->takeovers, 1);
			skald__rg_serve(self, r, s);
		}
	}
}

void skald__rg_leave_hold(region_t *r)
{
	if (!r->leave_held && !r->stopping && !r->down &&
	    skald__cluster_hold_leave(r->sys, +1) == 0)
		r->leave_held = true;
}

void skald__rg_leave_check(region_t *r)
{
	if (!r->leave_held)
		return;
	if (!r->stopping && !r->down) {
		for (uint32_t s = 0; s < r->nshards; s++)
			if (r->shards[s].state != SH_REMOTE || r->shards[s].answer_to != 0)
				return;
	}
	if (skald__cluster_hold_leave(r->sys, -1) == 0)
		r->leave_held = false;
}
