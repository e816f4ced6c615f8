/*
 * sharding/view.c - the region's view of the members, kept from member
 * events, and what a change of view does.
 *
 * The region keeps its own table rather than reading skald_cluster_members:
 * events arrive in the order the member saw them, so the table and the
 * region's reaction to each change stay in step, whatever other threads
 * read meanwhile. The up list is the cluster's converged view (up members,
 * oldest first: ascending up number, then node id); owners are a function
 * of it alone, so members with the same view agree.
 *
 * On a change, every shard whose owner changed is handed to handoff.c, and
 * the region tells every live member's region which view it now routes by
 * (SK_VIEW): an old owner hands a shard over only once every member routes
 * by the new view, so that nothing sent the old way can still arrive after
 * the new owner has begun.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "sharding/region.h"

/* Gone members are forgotten beyond this many. */
#define MAX_GONE 1024
/* How long admissions may take to arrive together. */
#define SETTLE_MS 20

const member_t *skald__rg_member(const region_t *r, uint64_t node)
{
	for (size_t i = 0; i < r->nmembers; i++)
		if (r->members[i].node == node)
			return &r->members[i];
	return NULL;
}

bool skald__rg_alive(const region_t *r, uint64_t node)
{
	const member_t *m = skald__rg_member(r, node);
	return m != NULL && m->status != SKALD_MEMBER_DOWN && m->status != SKALD_MEMBER_REMOVED;
}

uint64_t skald__rg_owner(const region_t *r, uint32_t shard, uint64_t without)
{
	if (r->sh->mode == REGION_SINGLETON) {
		for (size_t i = 0; i < r->nup; i++)
			if (r->up[i] != without)
				return r->up[i];
		return 0;
	}
	return skald__rendezvous(shard, r->up, r->nup, without);
}

static void forget_gone(region_t *r)
{
	size_t gone = 0;
	for (size_t i = 0; i < r->nmembers; i++)
		gone += !skald__rg_alive(r, r->members[i].node);
	if (gone <= MAX_GONE)
		return;
	size_t k = 0;
	for (size_t i = 0; i < r->nmembers; i++)
		if (skald__rg_alive(r, r->members[i].node))
			r->members[k++] = r->members[i];
	r->nmembers = k;
}

static member_t *upsert(region_t *r, const skald_member_t *m)
{
	member_t *x = (member_t *)skald__rg_member(r, m->node);
	if (x == NULL) {
		if (r->nmembers == r->capmembers) {
			size_t cap = r->capmembers ? r->capmembers * 2 : 16;
			member_t *v = realloc(r->members, cap * sizeof *v);
			if (v == NULL)
				return NULL;
			r->members = v;
			r->capmembers = cap;
		}
		x = &r->members[r->nmembers++];
		memset(x, 0, sizeof *x);
		x->node = m->node;
	}
	/* A final status stays final, whatever order news came in. */
	if (x->status != SKALD_MEMBER_DOWN && x->status != SKALD_MEMBER_REMOVED)
		x->status = m->status;
	if (m->up_number != 0)
		x->up_number = m->up_number;
	if (m->addr[0] != '\0')
		snprintf(x->addr, sizeof x->addr, "%s", m->addr);
	return x;
}

static int age_cmp(const void *a, const void *b)
{
	const member_t *x = a, *y = b;
	if (x->up_number != y->up_number)
		return x->up_number < y->up_number ? -1 : 1;
	return x->node < y->node ? -1 : x->node > y->node;
}

/* The up list and its digest, from the table. */
static int build_up(region_t *r, uint64_t **up, size_t *nup, uint64_t *digest)
{
	member_t *tmp = malloc((r->nmembers ? r->nmembers : 1) * sizeof *tmp);
	uint64_t *list = malloc((r->nmembers ? r->nmembers : 1) * sizeof *list);
	if (tmp == NULL || list == NULL) {
		free(tmp);
		free(list);
		return SKALD_ENOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < r->nmembers; i++)
		if (r->members[i].status == SKALD_MEMBER_UP && r->members[i].up_number != 0)
			tmp[n++] = r->members[i];
	qsort(tmp, n, sizeof *tmp, age_cmp);
	uint64_t h = 0x6a09e667f3bcc908ull;
	for (size_t i = 0; i < n; i++) {
		list[i] = tmp[i].node;
		h = skald__mix64(h ^ tmp[i].node);
		h = skald__mix64(h ^ tmp[i].up_number);
	}
	free(tmp);
	*up = list;
	*nup = n;
	*digest = n ? h : 0;
	return 0;
}

static void tell_view(skald_actor_t *self, region_t *r)
{
	for (size_t i = 0; i < r->nmembers; i++) {
		const member_t *m = &r->members[i];
		if (m->node == r->me || !skald__rg_alive(r, m->node) ||
		    m->status == SKALD_MEMBER_JOINING)
			continue;
		shard_env_t *env = skald__env_alloc(SK_VIEW, NULL);
		if (env == NULL)
			continue;
		env->view = r->digest;
		skald__rg_send(self, r, m->node, env);
	}
}

/* Routes again what q holds (the queue is emptied first: routing may hold
 * some of it again). */
static void reroute(skald_actor_t *self, region_t *r, msgq_t *q)
{
	msgq_t again = *q;
	*q = (msgq_t){0};
	skald__rg_unhold(r, again.n);
	shard_env_t *env;
	while ((env = skald__q_pop(&again)) != NULL)
		skald__rg_route(self, r, env);
}

static void recompute(skald_actor_t *self, region_t *r)
{
	uint64_t *up, digest;
	size_t nup;
	if (build_up(r, &up, &nup, &digest) < 0) {
		RG_LOG(r, SKALD_LOG_ERROR, "out of memory for the view");
		return;
	}
	const member_t *me = skald__rg_member(r, r->me);
	bool have = !r->down && me != NULL &&
	            (me->status == SKALD_MEMBER_UP || me->status == SKALD_MEMBER_LEAVING) &&
	            nup > 0;
	if (digest == r->digest && have == r->have_view) {
		free(up);
		return;
	}
	free(r->up);
	r->up = up;
	r->nup = nup;
	r->digest = digest;
	bool was = r->have_view;
	r->have_view = have;
	RG_LOG(r, SKALD_LOG_DEBUG, "view of %zu up members (%016llx)", nup,
	       (unsigned long long)digest);
	if (have) {
		for (uint32_t s = 0; s < r->nshards; s++) {
			uint64_t old = r->shards[s].owner;
			uint64_t now = skald__rg_owner(r, s, 0);
			if (now == old)
				continue;
			r->shards[s].owner = now;
			atomic_store(&r->sh->owners[s], now);
			skald__rg_shard_moved(self, r, s, old);
		}
		tell_view(self, r);
		skald__rg_begins(self, r);
	}
	if (have && !was)
		reroute(self, r, &r->noview);
	reroute(self, r, &r->viewwait);
}

/* This member was downed or removed: it owns nothing any more, and what
 * waits here can never be delivered. */
static void this_member_gone(skald_actor_t *self, region_t *r, int why)
{
	if (r->down)
		return;
	r->down = true;
	r->have_view = false;
	RG_LOG(r, SKALD_LOG_WARN,
	       "this member is out of the cluster; stopping its "
	       "entities");
	for (uint32_t s = 0; s < r->nshards; s++) {
		shard_t *sh = &r->shards[s];
		skald__rg_stop_shard(self, r, s, WHY_REGION, NULL, why);
		skald__rg_reject_all(r, &sh->held, why);
		skald__rg_reject_all(r, &sh->handed, why);
		if (sh->state != SH_REMOTE)
			atomic_fetch_sub(&r->sh->shards_owned, 1);
		sh->state = SH_REMOTE;
		sh->owner = 0;
		atomic_store(&r->sh->owners[s], 0);
	}
	skald__rg_reject_all(r, &r->noview, why);
	skald__rg_reject_all(r, &r->viewwait, why);
	for (size_t i = 0; i < r->npeers; i++)
		skald__rg_reject_all(r, &r->peers[i].waiting, why);
}

static void settled(skald_actor_t *self, void *state, void *arg)
{
	region_t *r = state;
	r->settle_timer = 0;
	if (!r->stopping && !r->down)
		recompute(self, r);
}

void skald__rg_member_event(skald_actor_t *self, region_t *r, const skald_member_event_t *ev)
{
	switch (ev->kind) {
	case SKALD_MEMBER_EV_CURRENT:
		for (size_t i = 0; i < ev->nmembers; i++)
			upsert(r, &ev->members[i]);
		break;
	case SKALD_MEMBER_EV_UP:
	case SKALD_MEMBER_EV_LEFT:
	case SKALD_MEMBER_EV_DOWN:
	case SKALD_MEMBER_EV_REMOVED: {
		skald_member_t m = ev->member;
		m.status = ev->kind == SKALD_MEMBER_EV_UP     ? SKALD_MEMBER_UP
		           : ev->kind == SKALD_MEMBER_EV_LEFT ? SKALD_MEMBER_LEAVING
		           : ev->kind == SKALD_MEMBER_EV_DOWN ? SKALD_MEMBER_DOWN
		                                              : SKALD_MEMBER_REMOVED;
		if (upsert(r, &m) == NULL) {
			RG_LOG(r, SKALD_LOG_ERROR, "out of memory for a member");
			return;
		}
		break;
	}
	default:
		return; /* reachability is local and transient: placement ignores it */
	}
	if ((ev->kind == SKALD_MEMBER_EV_DOWN || ev->kind == SKALD_MEMBER_EV_REMOVED) && ev->self) {
		this_member_gone(self, r, SKALD_ENODEDOWN);
		skald__rg_leave_check(r);
		return;
	}
	if (ev->kind == SKALD_MEMBER_EV_LEFT && ev->self)
		skald__rg_leave_hold(r);
	if (ev->kind == SKALD_MEMBER_EV_CURRENT || ev->kind == SKALD_MEMBER_EV_UP) {
		/* Admissions come in bursts (a joiner hears it is up before it
		 * hears of the members that admitted it): wait for the burst to
		 * end rather than act on a view that is only half known. */
		if (r->settle_timer != 0 ||
		    skald_timer_start(self, SETTLE_MS, 0, settled, NULL, &r->settle_timer) == 0)
			return;
	}
	/* A member that goes is acted on at once: its shards have no owner. */
	if (r->settle_timer != 0) {
		skald_timer_cancel(self, r->settle_timer);
		r->settle_timer = 0;
	}
	recompute(self, r);
	if (ev->kind == SKALD_MEMBER_EV_DOWN || ev->kind == SKALD_MEMBER_EV_REMOVED) {
		skald__rg_peer_gone(self, r, ev->member.node);
		forget_gone(r);
		/* A shard waiting for that member's handoff is taken now. */
		skald__rg_handoff_tick(self, r, skald__rg_now());
	}
	skald__rg_leave_check(r);
}
