/*
 * sharding/region.c - the region actor: one per sharded type (or
 * singleton) on each member. It subscribes to member events, takes the
 * envelopes of clients and other regions, hears from its entities, and
 * runs a timer for what waits on time (lookups, backoffs, handoffs,
 * passivation).
 */
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "base/log.h"
#include "sharding/region.h"

#define TICK_MS       100
#define FIRST_BUCKETS 256
#define STOP_WAIT_MS  30000

static void tick(skald_actor_t *self, void *state, void *arg)
{
	region_t *r = state;
	if (r->stopping)
		return;
	uint64_t now = skald__rg_now();
	skald__rg_peers_tick(self, r, now);
	skald__rg_hosted_tick(self, r, now);
	skald__rg_handoff_tick(self, r, now);
	skald__rg_rem_tick(self, r, now);
	skald__rg_leave_check(r);
	if (r->viewwait.head != NULL && now - r->viewwait_since >= r->sh->cfg.handoff_timeout_ms) {
		/* This member's view did not change: route by it. */
		msgq_t q = r->viewwait;
		r->viewwait = (msgq_t){0};
		skald__rg_unhold(r, q.n);
		shard_env_t *env;
		while ((env = skald__q_pop(&q)) != NULL) {
			env->view = r->digest;
			skald__rg_route(self, r, env);
		}
	}
}

static int region_init(skald_actor_t *self, void *state, void *arg)
{
	region_t *r = state;
	r->sh = arg;
	r->sys = skald_actor_system(self);
	r->me = skald_system_node(r->sys);
	r->nshards = r->sh->cfg.shards;
	r->shards = calloc(r->nshards, sizeof *r->shards);
	r->nbuckets = FIRST_BUCKETS;
	r->by_id = calloc(r->nbuckets, sizeof *r->by_id);
	r->by_ref = calloc(r->nbuckets, sizeof *r->by_ref);
	if (r->shards == NULL || r->by_id == NULL || r->by_ref == NULL)
		return SKALD_ENOMEM;
	int rc = skald_timer_start(self, TICK_MS, TICK_MS, tick, NULL, &r->timer);
	if (rc < 0)
		return rc;
	return skald_cluster_subscribe(self);
}

/* A region that sent this one something: it is known from now on. */
static void heard_from(skald_actor_t *self, region_t *r, skald_ref_t from)
{
	if (skald_ref_is_null(from) || from.node == r->me)
		return;
	peer_t *p = skald__rg_peer(r, from.node);
	if (p == NULL)
		return;
	p->heard = true;
	if (skald_ref_is_null(p->region))
		skald__rg_peer_found(self, r, from.node, from);
}

static void stop_region(skald_actor_t *self, region_t *r, const skald_msg_t *msg)
{
	if (r->stopping) {
		skald_reply(self, msg, SKALD__TYPE_SHARD_STOP, NULL);
		return;
	}
	r->stopping = true;
	r->stop_asker = msg->sender;
	r->stop_ask = msg->ask_id;
	atomic_store(&r->sh->stopped, true);
	for (uint32_t s = 0; s < r->nshards; s++) {
		shard_t *sh = &r->shards[s];
		skald__rg_stop_shard(self, r, s, WHY_REGION, NULL, SKALD_ESTOPPING);
		skald__rg_rem_stop(self, r, s, sh->state == SH_SERVING);
		skald__rg_reject_all(r, &sh->held, SKALD_ESTOPPING);
		skald__rg_reject_all(r, &sh->handed, SKALD_ESTOPPING);
	}
	skald__rg_reject_all(r, &r->noview, SKALD_ESTOPPING);
	skald__rg_reject_all(r, &r->viewwait, SKALD_ESTOPPING);
	for (size_t i = 0; i < r->npeers; i++)
		skald__rg_reject_all(r, &r->peers[i].waiting, SKALD_ESTOPPING);
	skald__rg_leave_check(r);
	skald__rg_stop_check(self, r);
}

void skald__rg_stop_check(skald_actor_t *self, region_t *r)
{
	if (!r->stopping || r->live > 0)
		return;
	for (uint32_t s = 0; s < r->nshards; s++)
		if (!skald_ref_is_null(r->shards[s].rem))
			return;
	if (r->stop_ask != 0) {
		skald_msg_t req = {SKALD__TYPE_SHARD_STOP, NULL, r->stop_asker, r->stop_ask};
		r->stop_ask = 0;
		skald_reply(self, &req, SKALD__TYPE_SHARD_STOP, NULL);
	}
	skald_stop_self(self);
}

static int region_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	region_t *r = state;
	switch (msg->type) {
	case SKALD_TYPE_MEMBER:
		if (!r->stopping)
			skald__rg_member_event(self, r, msg->payload);
		break;
	case SKALD__TYPE_SHARD_ENV: {
		shard_env_t *env = skald_msg_take(msg);
		if (env->kind == SK_MSG && env->hops == 0 && msg->sender.node != 0 &&
		    msg->sender.node != r->me) {
			/* hops 0 comes only from this member's clients. */
			skald__shard_env_free(env);
			break;
		}
		if (env->kind == SK_MSG && env->hops == 0) {
			env->sender = msg->sender;
			env->ask_id = msg->ask_id;
			skald__rg_route(self, r, env);
			break;
		}
		heard_from(self, r, msg->sender);
		env->via = msg->sender.node;
		if (env->kind == SK_MSG) {
			skald__rg_route(self, r, env);
		} else {
			env->sender = msg->sender;
			skald__rg_control(self, r, env);
		}
		break;
	}
	case SKALD__TYPE_SHARD_READY:
		skald__rg_ready(self, r, msg->sender);
		break;
	case SKALD__TYPE_SHARD_REM_ACK:
		skald__rg_rem_ack(self, r, msg->sender);
		break;
	case SKALD__TYPE_SHARD_REM_LIST:
		skald__rg_rem_list(self, r, msg->sender, msg->payload);
		break;
	case SKALD__TYPE_SHARD_STOP:
		stop_region(self, r, msg);
		break;
	case SKALD_TYPE_DOWN: {
		const skald_down_t *d = msg->payload;
		if (d->ref.node != r->me)
			skald__rg_peer_down(r, d->ref);
		else if (!skald__rg_rem_down(self, r, d->ref, d->reason))
			skald__rg_ent_down(self, r, d->ref, d->reason);
		break;
	}
	default:
		break;
	}
	return 0;
}

static void region_stop(skald_actor_t *self, void *state, int reason)
{
	region_t *r = state;
	if (r->sh == NULL)
		return;
	atomic_store(&r->sh->stopped, true);
	r->stopping = true;
	skald__rg_leave_check(r);
	skald__rg_ents_fini(r);
	for (uint32_t s = 0; r->shards != NULL && s < r->nshards; s++) {
		shard_t *sh = &r->shards[s];
		skald__rg_reject_all(r, &sh->held, SKALD_ESTOPPING);
		skald__rg_reject_all(r, &sh->handed, SKALD_ESTOPPING);
		json_decref(sh->rem_pending);
		json_decref(sh->rem_sent);
	}
	skald__rg_reject_all(r, &r->noview, SKALD_ESTOPPING);
	skald__rg_reject_all(r, &r->viewwait, SKALD_ESTOPPING);
	skald__rg_peers_fini(r);
	free(r->shards);
	free(r->members);
	free(r->up);
	atomic_store(&r->sh->live, 0);
	atomic_store(&r->sh->recovering, 0);
	atomic_store(&r->sh->shards_owned, 0);
	memset(r, 0, sizeof *r);
}

/* The region's reference to its handle ends with the actor, whether or not
 * it ever ran. */
static void region_free_arg(void *arg)
{
	skald__sharding_release(arg);
}

/* Entities that fail are not restarted by supervision: the region restarts
 * them itself after a backoff, once their watch fires. */
static skald_directive_t region_child_failure(skald_actor_t *self, void *state, skald_ref_t child,
                                              int err)
{
	return SKALD_STOP;
}

static const skald_behavior_t region_behavior = {
        .state_size = sizeof(region_t),
        .init = region_init,
        .receive = region_receive,
        .stop = region_stop,
        .free_arg = region_free_arg,
        .on_child_failure = region_child_failure,
};

int skald__region_start(skald_system_t *sys, skald_sharding_t *sh)
{
	skald_ref_t ref;
	atomic_store(&sh->refs, 2);
	int rc = skald_spawn(sys, &region_behavior, sh, NULL, &ref);
	if (rc < 0) {
		atomic_store(&sh->refs, 1);
		return rc;
	}
	sh->region = ref;
	rc = skald_publish(sys, sh->name, ref);
	if (rc < 0) {
		/* free_arg releases the region's reference. */
		skald_stop(sys, ref);
		return rc;
	}
	return 0;
}

void skald__region_stop(skald_sharding_t *sh)
{
	uint32_t type;
	void *reply = NULL;
	int rc = skald_system_ask(sh->sys, sh->region, SKALD__TYPE_SHARD_STOP, NULL, STOP_WAIT_MS,
	                          &type, &reply);
	if (rc < 0 && rc != SKALD_ENOACTOR && rc != SKALD_ESTOPPING)
		SKALD_LOG(SKALD_LOG_WARN, "sharding %s: the region did not stop cleanly: %s",
		          sh->name, skald_strerror(rc));
	skald__sharding_release(sh);
}
