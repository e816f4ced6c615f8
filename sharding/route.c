/*
 * sharding/route.c - where a message goes next: to an entity of a shard
 * this member serves, into a queue while its shard moves, or to the region
 * of the member that owns it. Other members' regions are found with
 * skald_lookup_node over the connection the membership made, and learned
 * from what they send.
 *
 * Nothing is dropped silently: a message that cannot go on ends with
 * skald__rg_reject, which fails its ask with the reason (the sender's
 * runtime completes the ask wherever it lives) and counts a tell as
 * dropped. An ask forwarded to another member is also remembered here until
 * its asker stops waiting, so that if that member dies first the asker
 * hears SKALD_ENODEDOWN at once instead of a timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "base/log.h"
#include "sharding/region.h"

/* Hops after which a message is refused: views that disagree are held
 * (viewwait), so this is only a guard against a loop. */
#define MAX_HOPS     32
#define LOOKUP_MS    2000
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000
/* Asks remembered per member; beyond, the oldest are forgotten (they end
 * by their timeout instead). */
#define MAX_TRACKED 100000

uint64_t skald__rg_now(void)
{
	return uv_hrtime() / 1000000u;
}

static void count(region_t *r)
{
	atomic_store(&r->sh->buffered, r->held);
}

void skald__rg_unhold(region_t *r, size_t n)
{
	r->held = n < r->held ? r->held - n : 0;
	count(r);
}

void skald__rg_reject(region_t *r, shard_env_t *env, int why)
{
	if (env->kind == SK_MSG) {
		atomic_fetch_add(&r->sh->dropped, 1);
		if (env->ask_id != 0 && !skald_ref_is_null(env->sender))
			skald__ask_fail(r->sys, env->sender, env->ask_id, why);
		else
			RG_LOG(r, SKALD_LOG_DEBUG, "a message to %s dropped: %s", env->id,
			       skald_strerror(why));
	}
	skald__shard_env_free(env);
}

void skald__rg_reject_all(region_t *r, msgq_t *q, int why)
{
	shard_env_t *env;
	size_t n = 0;
	while ((env = skald__q_pop(q)) != NULL) {
		n += env->kind == SK_MSG;
		skald__rg_reject(r, env, why);
	}
	skald__rg_unhold(r, n);
}

void skald__rg_hold(region_t *r, msgq_t *q, shard_env_t *env)
{
	if (env->kind == SK_MSG) {
		if (r->held >= r->sh->cfg.max_buffer) {
			skald__rg_reject(r, env, SKALD_EBUFFERFULL);
			return;
		}
		r->held++;
		count(r);
	}
	skald__q_push(q, env);
}

/* ------------------------------------------------------------------------ */
/* Peers                                                                     */

peer_t *skald__rg_peer_find(region_t *r, uint64_t node)
{
	for (size_t i = 0; i < r->npeers; i++)
		if (r->peers[i].node == node)
			return &r->peers[i];
	return NULL;
}

peer_t *skald__rg_peer(region_t *r, uint64_t node)
{
	peer_t *p = skald__rg_peer_find(r, node);
	if (p != NULL)
		return p;
	if (r->npeers == r->cappeers) {
		size_t cap = r->cappeers ? r->cappeers * 2 : 8;
		peer_t *v = realloc(r->peers, cap * sizeof *v);
		if (v == NULL)
			return NULL;
		r->peers = v;
		r->cappeers = cap;
	}
	p = &r->peers[r->npeers++];
	memset(p, 0, sizeof *p);
	p->node = node;
	return p;
}

/* Forgets the asks whose askers stopped waiting, and the oldest beyond
 * keep. */
static void prune(peer_t *p, uint64_t now, size_t keep)
{
	while (p->asks != NULL && (p->asks->deadline <= now || p->nasks > keep)) {
		track_t *t = p->asks;
		p->asks = t->next;
		p->nasks--;
		free(t);
	}
	if (p->asks == NULL)
		p->asks_tail = NULL;
}

static void track(region_t *r, peer_t *p, const shard_env_t *env, uint64_t now)
{
	prune(p, now, MAX_TRACKED - 1);
	track_t *t = malloc(sizeof *t);
	if (t == NULL)
		return; /* it ends by its timeout instead */
	*t = (track_t){NULL, env->sender, env->ask_id, env->deadline};
	if (p->asks_tail == NULL)
		p->asks = t;
	else
		p->asks_tail->next = t;
	p->asks_tail = t;
	p->nasks++;
}

static void untrack_all(region_t *r, peer_t *p, int why)
{
	uint64_t now = skald__rg_now();
	track_t *t;
	while ((t = p->asks) != NULL) {
		p->asks = t->next;
		if (why != 0 && t->deadline > now)
			skald__ask_fail(r->sys, t->asker, t->ask_id, why);
		free(t);
	}
	p->asks_tail = NULL;
	p->nasks = 0;
}

/* Sends env to p's region, which is known; consumes env. */
static void send_now(skald_actor_t *self, region_t *r, peer_t *p, shard_env_t *env)
{
	if (env->kind == SK_MSG) {
		const skald_msgtype_t *t = skald_type_get(env->type);
		if (t == NULL || t->encode == NULL) {
			skald__rg_reject(r, env, t == NULL ? SKALD_ENOTYPE : SKALD_ENOCODEC);
			return;
		}
		env->hops++;
		env->view = r->digest;
	}
	bool ask = env->kind == SK_MSG && env->ask_id != 0 && !skald_ref_is_null(env->sender);
	shard_env_t copy = *env; /* for the record: env belongs to the runtime after the tell */
	int rc = skald_tell(self, p->region, SKALD__TYPE_SHARD_ENV, env);
	if (rc < 0) {
		if (env->kind == SK_MSG) {
			RG_LOG(r, SKALD_LOG_WARN, "a message to %s cannot reach its owner: %s",
			       env->id, skald_strerror(rc));
			skald__rg_reject(r, env, rc);
		} else {
			skald__shard_env_free(env);
		}
		return;
	}
	if (ask)
		track(r, p, &copy, skald__rg_now());
}

static void lookup_cb(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	region_t *r = state;
	uint64_t node = (uint64_t)(uintptr_t)arg;
	peer_t *p = skald__rg_peer_find(r, node);
	if (p == NULL)
		return;
	p->looking = false;
	if (status == 0 && ref.node == node) {
		skald__rg_peer_found(self, r, node, ref);
		return;
	}
	p->backoff = p->backoff ? p->backoff * 2 : RETRY_MIN_MS;
	if (p->backoff > RETRY_MAX_MS)
		p->backoff = RETRY_MAX_MS;
	p->retry_at = skald__rg_now() + p->backoff;
	RG_LOG(r,
	       status == SKALD_ENOTFOUND || status == SKALD_ENODEDOWN ? SKALD_LOG_DEBUG
	                                                              : SKALD_LOG_INFO,
	       "no region found on member %016llx at %s yet (%s); trying again",
	       (unsigned long long)node, p->addr, skald_strerror(status));
}

static void lookup(skald_actor_t *self, region_t *r, peer_t *p)
{
	if (p->looking || !skald_ref_is_null(p->region) || p->gone)
		return;
	const member_t *m = skald__rg_member(r, p->node);
	if (m == NULL)
		return;
	snprintf(p->addr, sizeof p->addr, "%s", m->addr);
	void *arg = (void *)(uintptr_t)p->node;
	int rc = skald_lookup_node(self, p->node, r->sh->name, LOOKUP_MS, lookup_cb, arg);
	/* Not connected to it yet: the membership's probes connect every
	 * member to every other within a few periods, but this one is needed
	 * now; a lookup by address connects. */
	if (rc == SKALD_ENODEDOWN && p->addr[0] != '\0')
		rc = skald_lookup(self, p->addr, r->sh->name, LOOKUP_MS, lookup_cb, arg);
	if (rc < 0) {
		p->looking = true;
		lookup_cb(self, r, rc, SKALD_REF_NULL, arg);
		return;
	}
	p->looking = true;
}

void skald__rg_peer_found(skald_actor_t *self, region_t *r, uint64_t node, skald_ref_t ref)
{
	peer_t *p = skald__rg_peer(r, node);
	if (p == NULL || p->gone || skald_ref_eq(p->region, ref))
		return;
	p->region = ref;
	p->backoff = 0;
	skald_watch(self, ref);
	shard_env_t *env;
	while ((env = skald__q_pop(&p->waiting)) != NULL) {
		if (env->kind == SK_MSG)
			skald__rg_unhold(r, 1);
		send_now(self, r, p, env);
	}
}

void skald__rg_peer_down(region_t *r, skald_ref_t ref)
{
	for (size_t i = 0; i < r->npeers; i++)
		if (skald_ref_eq(r->peers[i].region, ref))
			r->peers[i].region = SKALD_REF_NULL;
}

void skald__rg_peer_gone(skald_actor_t *self, region_t *r, uint64_t node)
{
	peer_t *p = skald__rg_peer_find(r, node);
	if (p == NULL)
		return;
	untrack_all(r, p, SKALD_ENODEDOWN);
	msgq_t again = p->waiting;
	/* Forget the peer before routing again: the view no longer has it. */
	*p = r->peers[--r->npeers];
	shard_env_t *env;
	while ((env = skald__q_pop(&again)) != NULL) {
		if (env->kind != SK_MSG) {
			skald__shard_env_free(env);
			continue;
		}
		skald__rg_unhold(r, 1);
		skald__rg_route(self, r, env);
	}
}

void skald__rg_peers_fini(region_t *r)
{
	for (size_t i = 0; i < r->npeers; i++) {
		skald__rg_reject_all(r, &r->peers[i].waiting, SKALD_ESTOPPING);
		untrack_all(r, &r->peers[i], 0);
	}
	free(r->peers);
	r->peers = NULL;
	r->npeers = r->cappeers = 0;
}

void skald__rg_peers_tick(skald_actor_t *self, region_t *r, uint64_t now)
{
	for (size_t i = 0; i < r->npeers; i++) {
		peer_t *p = &r->peers[i];
		prune(p, now, MAX_TRACKED);
		if (p->waiting.head != NULL && now >= p->retry_at)
			lookup(self, r, p);
	}
}

void skald__rg_send(skald_actor_t *self, region_t *r, uint64_t node, shard_env_t *env)
{
	peer_t *p = skald__rg_peer(r, node);
	if (p == NULL) {
		skald__rg_reject(r, env, SKALD_ENOMEM);
		return;
	}
	if (skald_ref_is_null(p->region) || p->waiting.head != NULL) {
		skald__rg_hold(r, &p->waiting, env);
		if (skald__rg_now() >= p->retry_at)
			lookup(self, r, p);
		return;
	}
	send_now(self, r, p, env);
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */

void skald__rg_route(skald_actor_t *self, region_t *r, shard_env_t *env)
{
	if (env->err != 0) {
		skald__rg_reject(r, env, env->err);
		return;
	}
	if (r->stopping) {
		skald__rg_reject(r, env, SKALD_ESTOPPING);
		return;
	}
	if (r->down) {
		skald__rg_reject(r, env, SKALD_ENODEDOWN);
		return;
	}
	if (!r->have_view) {
		skald__rg_hold(r, &r->noview, env);
		return;
	}
	if (env->hops > MAX_HOPS) {
		RG_LOG(r, SKALD_LOG_WARN, "a message to %s went through %u regions", env->id,
		       env->hops);
		skald__rg_reject(r, env, SKALD_ETIMEDOUT);
		return;
	}
	if (env->shard >= r->nshards)
		env->shard = skald__shard_of(env->id, r->nshards);
	shard_t *sh = &r->shards[env->shard];
	if (sh->owner == r->me) {
		bool handed = (env->flags & SF_HANDED) && env->via == sh->peer;
		if (sh->state == SH_SERVING)
			skald__rg_deliver(self, r, env);
		else
			skald__rg_hold(r, handed ? &sh->handed : &sh->held, env);
		return;
	}
	if (sh->state == SH_HANDING) {
		/* It goes to the new owner with the handoff, after what came
		 * before it. */
		skald__rg_hold(r, &sh->held, env);
		return;
	}
	if (env->hops > 0 && env->view != r->digest) {
		/* A member with another view sent it here: one of us is behind.
		 * Wait for this member's view to change (or for the time a
		 * handoff may take) rather than bounce it between views. */
		if (r->viewwait.head == NULL)
			r->viewwait_since = skald__rg_now();
		skald__rg_hold(r, &r->viewwait, env);
		return;
	}
	skald__rg_send(self, r, sh->owner, env);
}
