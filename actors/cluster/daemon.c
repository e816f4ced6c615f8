/*
 * actors/cluster/daemon.c - the registry actor of a node (see reg.h).
 *
 * It learns the members from the membership's events, finds each member's
 * registry actor through the name it publishes on its node (skald_publish,
 * asked of that node's remote registry over the connection the membership
 * keeps), and then:
 *   - sends its own part whole (FULL, in chunks) to each member it finds;
 *   - sends every later change of its part to them, coalesced per loop
 *     turn into one versioned DELTA;
 *   - applies the DELTAs and FULLs of the others; a DELTA whose version
 *     does not follow the last one applied means messages were lost (a
 *     connection dropped meanwhile): it asks the origin for its part
 *     (WANT);
 *   - tells one member a second its version (VER), and every member whose
 *     connection comes back, so that a loss with no change after it is
 *     repaired too;
 *   - watches every actor registered here, and ends its registrations
 *     when it stops;
 *   - withdraws a name of its own that an older member holds too, and
 *     tells the actor (SKALD_TYPE_NAME_LOST);
 *   - serves remote spawns, and relays those asked here for another
 *     member (waiting, if need be, until it has found that member's
 *     registry actor).
 * A member that is down or removed has its part dropped at once by every
 * member (table.c), with every registration whose actor lived on it.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/reg.h"
#include "actors/remote/remote_int.h"

#define DAEMON_NAME   "skald.cluster.registry"
#define TICK_MS       1000u
#define LOOKUP_MS     3000u
#define WANT_AGAIN_MS 3000u
#define FULL_CHUNK    1024u
#define MAX_RELAYS    256u

/* A spawn asked of this node for another member, waiting for that
 * member's registry actor to be found. */
typedef struct relay_s {
	uint64_t node;
	skald__reg_spawn_t *req;
	skald_msg_t asked; /* its sender and ask id, to answer */
	uint64_t deadline;
} relay_t;

typedef struct daemon_s {
	skald__reg_t *reg;
	uint64_t ver;            /* this node's part: version of the last DELTA */
	skald__reg_batch_t *out; /* changes of this node's part not sent yet */
	int flush_armed;
	size_t rr; /* the next peer told our version */
	relay_t relays[MAX_RELAYS];
	size_t nrelays;
} daemon_t;

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */

static int send_batch(skald_actor_t *self, skald_ref_t to, skald__reg_batch_t *b)
{
	skald__reg_batch_hold(b);
	int rc = skald_tell(self, to, skald__t_reg_batch, b);
	if (rc < 0) {
		skald__reg_batch_free(b);
		SKALD_LOG(SKALD_LOG_WARN, "registry: a message to %016llx was not sent: %s",
		          (unsigned long long)to.node, skald_strerror(rc));
	}
	return rc;
}

/* Sends the pending changes of this node's part to every member that has
 * its whole part. */
static void flush(skald_actor_t *self, daemon_t *d)
{
	skald__reg_batch_t *b = d->out;
	if (b == NULL)
		return;
	d->out = NULL;
	b->what = REG_MSG_DELTA;
	b->ver = ++d->ver;
	skald__reg_t *reg = d->reg;
	uv_mutex_lock(&reg->lock);
	size_t n = reg->npeers;
	skald_ref_t *to = malloc((n ? n : 1) * sizeof *to);
	uint64_t *nodes = malloc((n ? n : 1) * sizeof *nodes);
	size_t k = 0;
	for (size_t i = 0; to != NULL && nodes != NULL && i < n; i++) {
		skald__reg_peer_t *p = &reg->peers[i];
		if (p->status != PEER_DEAD && p->sent_full && !skald_ref_is_null(p->daemon)) {
			nodes[k] = p->node;
			to[k++] = p->daemon;
		}
	}
	if (to == NULL || nodes == NULL) {
		/* No memory for the list: make every member ask again. */
		for (size_t i = 0; i < n; i++)
			reg->peers[i].sent_full = 0;
	}
	uv_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < k; i++) {
		if (send_batch(self, to[i], b) < 0) {
			/* The member will miss this version: send it the whole
			 * part again at the next tick. */
			uv_mutex_lock(&reg->lock);
			skald__reg_peer_t *p = skald__reg_peer(reg, nodes[i], 0);
			if (p != NULL)
				p->sent_full = 0;
			uv_mutex_unlock(&reg->lock);
		}
	}
	free(to);
	free(nodes);
	skald__reg_batch_free(b);
}

static void flush_cb(skald_actor_t *self, void *state, void *arg)
{
	daemon_t *d = state;
	d->flush_armed = 0;
	flush(self, d);
}

/* Queues the present state of (kind, key, ref) in this node's part; the
 * caller holds the lock. Items are states, not operations, so that what
 * the members apply in order always ends at the table's state. */
static void queue(skald_actor_t *self, daemon_t *d, uint8_t kind, const char *key, skald_ref_t ref,
                  int reason)
{
	skald__reg_t *reg = d->reg;
	uint8_t add = skald__reg_find(reg, kind, key, ref, reg->self) != NULL;
	if (d->out == NULL && (d->out = skald__reg_batch_new(REG_MSG_DELTA, reg->self, 0)) == NULL)
		return;
	if (skald__reg_batch_add(d->out, kind, add, reason, key, ref) < 0) {
		for (size_t i = 0; i < reg->npeers; i++)
			reg->peers[i].sent_full = 0; /* resent whole at the next tick */
		return;
	}
	if (!d->flush_armed && skald_timer_start(self, 0, 0, flush_cb, NULL, NULL) == 0)
		d->flush_armed = 1;
}

/* Sends this node's whole part to the member node, at its daemon. */
static void send_full(skald_actor_t *self, daemon_t *d, uint64_t node)
{
	flush(self, d);
	skald__reg_t *reg = d->reg;
	uv_mutex_lock(&reg->lock);
	skald__reg_peer_t *p = skald__reg_peer(reg, node, 0);
	if (p == NULL || p->status == PEER_DEAD || skald_ref_is_null(p->daemon)) {
		uv_mutex_unlock(&reg->lock);
		return;
	}
	skald_ref_t to = p->daemon;
	p->sent_full = 1;
	/* Chunks, so that no message outgrows a frame. */
	size_t nb = 0, capb = 0;
	skald__reg_batch_t **bs = NULL;
	int failed = 0;
	for (size_t i = 0; i <= reg->cap && !failed; i++) {
		skald__reg_entry_t *e = i < reg->cap ? &reg->v[i] : NULL;
		if (e != NULL && (e->key == NULL || e->origin != reg->self))
			continue;
		if (nb == 0 || (e != NULL && bs[nb - 1]->n == FULL_CHUNK)) {
			if (nb == capb) {
				capb = capb ? capb * 2 : 4;
				skald__reg_batch_t **v = realloc(bs, capb * sizeof *v);
				if (v == NULL) {
					failed = 1;
					break;
				}
				bs = v;
			}
			if ((bs[nb] = skald__reg_batch_new(REG_MSG_FULL, reg->self, d->ver)) ==
			    NULL) {
				failed = 1;
				break;
			}
			bs[nb]->flags = nb == 0 ? REG_FULL_FIRST : 0;
			nb++;
		}
		if (e != NULL &&
		    skald__reg_batch_add(bs[nb - 1], e->kind, 1, 0, e->key, e->ref) < 0)
			failed = 1;
	}
	if (failed)
		p->sent_full = 0;
	uv_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < nb; i++) {
		if (!failed) {
			bs[i]->flags |= i == nb - 1 ? REG_FULL_LAST : 0;
			failed = send_batch(self, to, bs[i]) < 0;
		}
		skald__reg_batch_free(bs[i]);
	}
	free(bs);
	if (failed) {
		uv_mutex_lock(&reg->lock);
		if ((p = skald__reg_peer(reg, node, 0)) != NULL)
			p->sent_full = 0;
		uv_mutex_unlock(&reg->lock);
	}
}

static void send_small(skald_actor_t *self, daemon_t *d, skald_ref_t to, uint8_t what)
{
	skald__reg_batch_t *b = skald__reg_batch_new(what, d->reg->self, d->ver);
	if (b != NULL)
		send_batch(self, to, b);
	skald__reg_batch_free(b);
}

/* ------------------------------------------------------------------------ */
/* Remote spawns, relayed to the chosen member                               */

static void answer_spawn(skald_actor_t *self, const skald_msg_t *asked, int status, skald_ref_t ref)
{
	skald__reg_result_t *res = skald__reg_result_new(status, ref);
	if (res != NULL && skald_reply(self, asked, skald__t_reg_result, res) < 0)
		free(res);
}

static void relayed(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	skald_msg_t asked = *(skald_msg_t *)arg;
	free(arg);
	if (status == 0 && reply->type == skald__t_reg_result) {
		void *res = skald_msg_take(reply);
		if (skald_reply(self, &asked, skald__t_reg_result, res) < 0)
			free(res);
		return;
	}
	answer_spawn(self, &asked, status == 0 ? SKALD_EPROTO : status, SKALD_REF_NULL);
}

/* Sends req (taken) to the daemon `to` and relays its answer. */
static void forward(skald_actor_t *self, skald_ref_t to, skald__reg_spawn_t *req,
                    const skald_msg_t *asked)
{
	skald_msg_t *arg = malloc(sizeof *arg);
	int rc = SKALD_ENOMEM;
	req->node = 0; /* "here", over there */
	if (arg != NULL) {
		*arg = *asked;
		arg->payload = NULL;
		rc = skald_ask(self, to, skald__t_reg_spawn, req, req->timeout_ms, relayed, arg);
	}
	if (rc < 0) {
		free(arg);
		skald__reg_spawn_free(req);
		answer_spawn(self, asked, rc, SKALD_REF_NULL);
	}
}

/* Forwards (to != null) or fails with status the relays waiting for node,
 * and the expired ones (node 0). */
static void relays_end(skald_actor_t *self, daemon_t *d, uint64_t node, skald_ref_t to, int status)
{
	uint64_t now = skald__mono_ms();
	for (size_t i = 0; i < d->nrelays;) {
		relay_t r = d->relays[i];
		int expired = node == 0 && r.deadline <= now;
		if (r.node != node && !expired) {
			i++;
			continue;
		}
		d->relays[i] = d->relays[--d->nrelays];
		if (!expired && !skald_ref_is_null(to)) {
			forward(self, to, r.req, &r.asked);
		} else {
			skald__reg_spawn_free(r.req);
			answer_spawn(self, &r.asked, expired ? SKALD_ETIMEDOUT : status,
			             SKALD_REF_NULL);
		}
	}
}

static void discover(skald_actor_t *self, skald__reg_peer_t *p);

static void on_spawn(skald_actor_t *self, daemon_t *d, skald_msg_t *msg)
{
	skald__reg_t *reg = d->reg;
	skald__reg_spawn_t *req = msg->payload;
	if (req->node == 0 || req->node == reg->self) {
		skald_ref_t ref = SKALD_REF_NULL;
		int rc = skald__reg_serve_spawn(skald_actor_system(self), req, &ref);
		answer_spawn(self, msg, rc, ref);
		return;
	}
	uv_mutex_lock(&reg->lock);
	skald__reg_peer_t *p = skald__reg_peer(reg, req->node, 0);
	int dead = p != NULL && p->status == PEER_DEAD;
	skald_ref_t to = p != NULL && !dead ? p->daemon : SKALD_REF_NULL;
	if (p != NULL && p->status == PEER_UP && skald_ref_is_null(to) && !p->looking)
		discover(self, p);
	uv_mutex_unlock(&reg->lock);
	if (dead) {
		answer_spawn(self, msg, SKALD_ENODEDOWN, SKALD_REF_NULL);
	} else if (!skald_ref_is_null(to)) {
		forward(self, to, skald_msg_take(msg), msg);
	} else if (d->nrelays == MAX_RELAYS) {
		answer_spawn(self, msg, SKALD_ETOOMANY, SKALD_REF_NULL);
	} else {
		/* The member's registry actor is not found yet (it came up a
		 * moment ago): the spawn waits for it. */
		relay_t *r = &d->relays[d->nrelays++];
		*r = (relay_t){req->node, skald_msg_take(msg), *msg,
		               skald__mono_ms() + req->timeout_ms};
		r->asked.payload = NULL;
	}
}

/* ------------------------------------------------------------------------ */
/* Finding the other members' registry actors                               */

/* The outcome of asking a member's remote registry (actors/remote/
 * registry.c) for DAEMON_NAME. */
static void found(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	daemon_t *d = state;
	uint64_t node = (uint64_t)(uintptr_t)arg;
	skald_ref_t ref = SKALD_REF_NULL;
	if (status == 0 && reply->type == skald__t_lookup_reply && reply->payload != NULL)
		ref = *(const skald_ref_t *)reply->payload;
	skald__reg_t *reg = d->reg;
	int full = 0;
	uv_mutex_lock(&reg->lock);
	skald__reg_peer_t *p = skald__reg_peer(reg, node, 0);
	if (p != NULL) {
		p->looking = 0;
		if (ref.node == node && p->status != PEER_DEAD) {
			if (skald_ref_is_null(p->daemon))
				p->daemon = ref;
			full = !p->sent_full;
		}
	}
	skald_ref_t to = p != NULL && p->status != PEER_DEAD ? p->daemon : SKALD_REF_NULL;
	uv_mutex_unlock(&reg->lock);
	if (full)
		send_full(self, d, node);
	if (!skald_ref_is_null(to))
		relays_end(self, d, node, to, 0);
}

typedef struct ask_registry_s {
	uint64_t node, corr;
	skald_ref_t from;
} ask_registry_t;

/* On the network thread, which owns the peer's registry reference (its
 * HELLO brought it): sends the lookup there. A member not connected now
 * is asked again at a later tick (the ask times out). */
static void ask_registry(skald__net_t *net, void *arg)
{
	ask_registry_t *a = arg;
	skald__peer_t *p = net->stopping ? NULL : skald__peer_find(net, a->node);
	char *name = p != NULL && atomic_load(&p->up) ? strdup(DAEMON_NAME) : NULL;
	skald__env_t *e =
	        name != NULL ? skald__env_new(ENV_USER, skald__t_lookup, a->from, name) : NULL;
	if (e != NULL) {
		e->corr = a->corr;
		skald__send(net->sys, p->registry, e);
	} else {
		free(name);
	}
	free(a);
}

/* Starts looking up p's daemon; the caller holds the lock. */
static void discover(skald_actor_t *self, skald__reg_peer_t *p)
{
	skald__net_t *net = skald__net_of(skald_actor_system(self));
	ask_registry_t *a = malloc(sizeof *a);
	if (net == NULL || a == NULL) {
		free(a);
		return;
	}
	*a = (ask_registry_t){.node = p->node, .from = skald_self(self)};
	if (skald__ask_pending(self, LOOKUP_MS, found, (void *)(uintptr_t)p->node, &a->corr) < 0) {
		free(a);
		return; /* again at the next tick */
	}
	if (skald__net_call(net, ask_registry, a) < 0) {
		free(a); /* the pending ask times out */
		return;
	}
	p->looking = 1;
}

/* ------------------------------------------------------------------------ */
/* Names that lost                                                           */

/* An own registration of any actor? (lock held) */
static int own_uses(skald__reg_t *reg, skald_ref_t ref)
{
	for (size_t i = 0; i < reg->cap; i++)
		if (reg->v[i].key != NULL && reg->v[i].origin == reg->self &&
		    skald_ref_eq(reg->v[i].ref, ref))
			return 1;
	for (size_t i = 0; i < reg->nsubs; i++)
		if (skald_ref_eq(reg->subs[i].sub, ref))
			return 1;
	return 0;
}

/* If this node's registration of name lost to an older member's, withdraws
 * it and tells its actor. */
static void settle(skald_actor_t *self, daemon_t *d, const char *name)
{
	skald__reg_t *reg = d->reg;
	uv_mutex_lock(&reg->lock);
	skald__reg_entry_t *own = skald__reg_own_name(reg, name);
	skald__reg_entry_t *w = own != NULL ? skald__reg_winner(reg, name) : NULL;
	skald__reg_peer_t *wp = w != NULL ? skald__reg_peer(reg, w->origin, 0) : NULL;
	/* Decided only once both ages are known: until then the order of
	 * the two may still change. */
	if (w == NULL || w == own || reg->self_up == 0 || wp == NULL || wp->up_number == 0) {
		uv_mutex_unlock(&reg->lock);
		return;
	}
	skald_ref_t lost = own->ref, winner = w->ref;
	skald__reg_del(reg, own, 0);
	queue(self, d, REG_NAME, name, lost, 0);
	int still = own_uses(reg, lost);
	uv_mutex_unlock(&reg->lock);
	char buf[48];
	SKALD_LOG(SKALD_LOG_INFO,
	          "registry: name \"%s\" was also registered by an older member; withdrawn "
	          "here, %s holds it",
	          name, skald_ref_str(winner, buf, sizeof buf));
	skald_name_lost_t *l = calloc(1, sizeof *l);
	if (l != NULL) {
		memcpy(l->name, name, strlen(name) + 1);
		l->winner = winner;
		if (skald_tell(self, lost, SKALD_TYPE_NAME_LOST, l) < 0)
			free(l);
	}
	if (!still)
		skald_unwatch(self, lost);
}

static void settle_all(skald_actor_t *self, daemon_t *d)
{
	skald__reg_t *reg = d->reg;
	uv_mutex_lock(&reg->lock);
	size_t n = 0;
	char **names = malloc((reg->nnames ? reg->nnames : 1) * sizeof *names);
	for (size_t i = 0; names != NULL && i < reg->cap; i++) {
		skald__reg_entry_t *e = &reg->v[i];
		if (e->key != NULL && e->kind == REG_NAME && e->origin == reg->self &&
		    (names[n] = strdup(e->key)) != NULL)
			n++;
	}
	uv_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < n; i++) {
		settle(self, d, names[i]);
		free(names[i]);
	}
	free(names);
}

/* ------------------------------------------------------------------------ */
/* Member events                                                             */

static void member_seen(skald_actor_t *self, daemon_t *d, const skald_member_t *m, int alive)
{
	skald__reg_t *reg = d->reg;
	uv_mutex_lock(&reg->lock);
	if (m->node == reg->self) {
		if (alive && reg->self_up == 0 && m->up_number != 0) {
			reg->self_up = m->up_number;
			uv_cond_broadcast(&reg->cond);
		}
	} else {
		/* A tombstone too, for a member never seen up: what it sent is
		 * dropped and what it sends later ignored. */
		skald__reg_peer_t *p = skald__reg_peer(reg, m->node, 1);
		if (p != NULL && p->status != PEER_DEAD) {
			snprintf(p->addr, sizeof p->addr, "%s", m->addr);
			skald__reg_peer_status(reg, p, alive ? PEER_UP : PEER_DEAD, m->up_number);
			if (alive && skald_ref_is_null(p->daemon) && !p->looking)
				discover(self, p);
		} else if (p == NULL && alive) {
			SKALD_LOG(SKALD_LOG_WARN,
			          "registry: no room for member %016llx (max_members); its "
			          "registrations are not seen here",
			          (unsigned long long)m->node);
		}
	}
	uv_mutex_unlock(&reg->lock);
	/* A member's age learnt (or this node's own) may settle a name. */
	if (alive)
		settle_all(self, d);
	else
		relays_end(self, d, m->node, SKALD_REF_NULL, SKALD_ENODEDOWN);
}

/* Takes the ages (up numbers) of the published view: a merge may change
 * one without an event. */
static void refresh_ages(skald_actor_t *self, daemon_t *d)
{
	skald__reg_t *reg = d->reg;
	skald_member_t *v;
	size_t n;
	if (skald__cluster_view(skald_actor_system(self), &v, &n) < 0)
		return;
	int changed = 0;
	uv_mutex_lock(&reg->lock);
	for (size_t i = 0; i < n; i++) {
		uint32_t up = v[i].up_number;
		if (v[i].node == reg->self) {
			changed |= up != 0 && up != reg->self_up;
			reg->self_up = up != 0 ? up : reg->self_up;
			continue;
		}
		skald__reg_peer_t *p = skald__reg_peer(reg, v[i].node, 0);
		if (p != NULL && p->status == PEER_UP && up != 0 && up != p->up_number) {
			p->up_number = up;
			changed = 1;
		}
	}
	if (changed)
		uv_cond_broadcast(&reg->cond);
	uv_mutex_unlock(&reg->lock);
	free(v);
	if (changed)
		settle_all(self, d);
}

static void on_member(skald_actor_t *self, daemon_t *d, const skald_member_event_t *ev)
{
	switch (ev->kind) {
	case SKALD_MEMBER_EV_CURRENT:
		for (size_t i = 0; i < ev->nmembers; i++)
			if (ev->members[i].status == SKALD_MEMBER_UP ||
			    ev->members[i].status == SKALD_MEMBER_LEAVING)
				member_seen(self, d, &ev->members[i], 1);
		break;
	case SKALD_MEMBER_EV_UP:
	case SKALD_MEMBER_EV_LEFT:
		member_seen(self, d, &ev->member, 1);
		break;
	case SKALD_MEMBER_EV_DOWN:
	case SKALD_MEMBER_EV_REMOVED:
		if (!ev->self)
			member_seen(self, d, &ev->member, 0);
		break;
	default:
		break;
	}
	refresh_ages(self, d);
}

/* A connection to node came back: messages may have been lost while it
 * was gone. */
static void on_node(skald_actor_t *self, daemon_t *d, const skald_node_event_t *ev)
{
	if (!ev->up)
		return;
	skald__reg_t *reg = d->reg;
	uv_mutex_lock(&reg->lock);
	skald__reg_peer_t *p = skald__reg_peer(reg, ev->node, 0);
	skald_ref_t to = p != NULL && p->status != PEER_DEAD ? p->daemon : SKALD_REF_NULL;
	uv_mutex_unlock(&reg->lock);
	if (!skald_ref_is_null(to)) {
		flush(self, d);
		send_small(self, d, to, REG_MSG_VER);
	}
}

/* ------------------------------------------------------------------------ */
/* Changes                                                                   */

/* An actor registered here, or a subscriber, stopped. */
static void on_down(skald_actor_t *self, daemon_t *d, const skald_down_t *down)
{
	skald__reg_t *reg = d->reg;
	int reason = down->reason == SKALD_ENODEDOWN ? SKALD_ENODEDOWN : SKALD_ENOACTOR;
	uv_mutex_lock(&reg->lock);
	for (size_t i = 0; i < reg->cap; i++) {
		skald__reg_entry_t *e = &reg->v[i];
		if (e->key == NULL || e->origin != reg->self || !skald_ref_eq(e->ref, down->ref))
			continue;
		char *key = strdup(e->key);
		uint8_t kind = e->kind;
		skald__reg_del(reg, e, reason);
		if (key != NULL)
			queue(self, d, kind, key, down->ref, reason);
		free(key);
	}
	for (size_t i = 0; i < reg->nsubs;) {
		if (skald_ref_eq(reg->subs[i].sub, down->ref)) {
			free(reg->subs[i].key);
			reg->subs[i] = reg->subs[--reg->nsubs];
		} else {
			i++;
		}
	}
	uv_mutex_unlock(&reg->lock);
}

/* A change the API made on this node. */
static void on_local(skald_actor_t *self, daemon_t *d, const skald__reg_item_t *it)
{
	skald__reg_t *reg = d->reg;
	if (it->add) {
		skald_watch(self, it->ref);
	}
	uv_mutex_lock(&reg->lock);
	if (it->kind != REG_WATCH)
		queue(self, d, it->kind, it->key, it->ref, it->reason);
	int used = own_uses(reg, it->ref);
	uv_mutex_unlock(&reg->lock);
	if (!used)
		skald_unwatch(self, it->ref);
}

static int ref_on_dead(skald__reg_t *reg, skald_ref_t ref)
{
	skald__reg_peer_t *p = skald__reg_peer(reg, ref.node, 0);
	return p != NULL && p->status == PEER_DEAD;
}

static void apply_add(skald__reg_t *reg, uint64_t origin, const skald__reg_item_t *it)
{
	if (ref_on_dead(reg, it->ref) || skald__reg_find(reg, it->kind, it->key, it->ref, origin))
		return;
	int rc = skald__reg_add(reg, it->kind, it->key, it->ref, origin);
	if (rc < 0)
		SKALD_LOG(SKALD_LOG_WARN,
		          "registry: %s \"%s\" of member %016llx not kept here: %s (give every "
		          "member the same max_names and max_group_entries)",
		          it->kind == REG_NAME ? "name" : "group entry", it->key,
		          (unsigned long long)origin, skald_strerror(rc));
}

/* Replaces p's part with its staged FULL. */
static void replace_part(skald__reg_t *reg, skald__reg_peer_t *p)
{
	for (size_t i = 0; i < reg->cap; i++)
		reg->v[i].mark = reg->v[i].key != NULL && reg->v[i].origin == p->node;
	for (size_t i = 0; i < p->nstage; i++) {
		skald__reg_item_t *it = &p->stage[i];
		skald__reg_entry_t *e = skald__reg_find(reg, it->kind, it->key, it->ref, p->node);
		if (e != NULL)
			e->mark = 0;
		else
			apply_add(reg, p->node, it);
	}
	for (size_t i = 0; i < reg->cap; i++)
		if (reg->v[i].key != NULL && reg->v[i].mark)
			skald__reg_del(reg, &reg->v[i], 0);
	skald__reg_items_free(p->stage, p->nstage);
	p->stage = NULL;
	p->nstage = p->capstage = 0;
}

/* Moves the items of b to the end of p's stage. */
static int stage(skald__reg_t *reg, skald__reg_peer_t *p, skald__reg_batch_t *b)
{
	size_t max = (size_t)reg->max_names + reg->max_group_entries;
	if (p->nstage + b->n > max)
		return SKALD_EFULL;
	if (p->nstage + b->n > p->capstage) {
		size_t cap = p->capstage ? p->capstage : 64;
		while (cap < p->nstage + b->n)
			cap *= 2;
		skald__reg_item_t *v = realloc(p->stage, cap * sizeof *v);
		if (v == NULL)
			return SKALD_ENOMEM;
		p->stage = v;
		p->capstage = cap;
	}
	for (uint32_t i = 0; i < b->n; i++) {
		p->stage[p->nstage++] = b->items[i];
		b->items[i].key = NULL; /* moved */
	}
	return 0;
}

/* A message of another member's daemon. */
static void on_remote(skald_actor_t *self, daemon_t *d, skald_ref_t from, skald__reg_batch_t *b)
{
	skald__reg_t *reg = d->reg;
	if (b->origin == reg->self || from.node != b->origin)
		return;                           /* only an origin speaks for its part */
	int want = 0, full = 0, settle_names = 0; /* 1: the names of b; 2: all */
	uint64_t now = skald__mono_ms();
	uv_mutex_lock(&reg->lock);
	skald__reg_peer_t *p = skald__reg_peer(reg, b->origin, 1);
	if (p == NULL || p->status == PEER_DEAD) {
		uv_mutex_unlock(&reg->lock);
		return;
	}
	if (skald_ref_is_null(p->daemon))
		p->daemon = from;
	full = !p->sent_full;
	switch (b->what) {
	case REG_MSG_DELTA:
		if (b->ver == p->ver + 1) {
			for (uint32_t i = 0; i < b->n; i++) {
				skald__reg_item_t *it = &b->items[i];
				skald__reg_entry_t *e;
				if (it->add)
					apply_add(reg, p->node, it);
				else if ((e = skald__reg_find(reg, it->kind, it->key, it->ref,
				                              p->node)) != NULL)
					skald__reg_del(reg, e, it->reason);
			}
			p->ver = b->ver;
			settle_names = 1;
		} else if (b->ver > p->ver + 1) {
			want = 1;
		}
		break;
	case REG_MSG_FULL:
		if (b->flags & REG_FULL_FIRST) {
			skald__reg_items_free(p->stage, p->nstage);
			p->stage = NULL;
			p->nstage = p->capstage = 0;
		}
		if (stage(reg, p, b) < 0) {
			SKALD_LOG(SKALD_LOG_WARN,
			          "registry: the part of member %016llx does not fit here",
			          (unsigned long long)p->node);
			skald__reg_items_free(p->stage, p->nstage);
			p->stage = NULL;
			p->nstage = p->capstage = 0;
		} else if (b->flags & REG_FULL_LAST) {
			replace_part(reg, p);
			p->ver = b->ver;
			p->synced = 1;
			p->wanted = 0;
			settle_names = 2;
		}
		break;
	case REG_MSG_WANT:
		full = 1;
		break;
	case REG_MSG_VER:
		want = b->ver > p->ver;
		break;
	}
	/* Ask once, and again only if the answer seems lost. */
	if (want && p->wanted != 0 && now - p->wanted < WANT_AGAIN_MS)
		want = 0;
	if (want)
		p->wanted = now;
	uv_mutex_unlock(&reg->lock);
	if (full)
		send_full(self, d, b->origin);
	if (want)
		send_small(self, d, from, REG_MSG_WANT);
	if (settle_names == 2)
		settle_all(self, d);
	for (uint32_t i = 0; settle_names == 1 && i < b->n; i++)
		if (b->items[i].kind == REG_NAME && b->items[i].add)
			settle(self, d, b->items[i].key);
}

/* ------------------------------------------------------------------------ */
/* The actor                                                                 */

static void tick(skald_actor_t *self, void *state, void *arg)
{
	daemon_t *d = state;
	skald__reg_t *reg = d->reg;
	uint64_t now = skald__mono_ms();
	uv_mutex_lock(&reg->lock);
	skald__reg_peers_expire(reg, now);
	skald__reg_wake(reg, NULL, SKALD_REF_NULL); /* expired lookups */
	size_t n = reg->npeers, nfull = 0;
	uint64_t *fulls = malloc((n ? n : 1) * sizeof *fulls);
	skald_ref_t ver_to = SKALD_REF_NULL;
	for (size_t i = 0; i < n; i++) {
		skald__reg_peer_t *p = &reg->peers[i];
		if (p->status != PEER_UP)
			continue;
		if (skald_ref_is_null(p->daemon)) {
			if (!p->looking)
				discover(self, p);
		} else if (!p->sent_full && fulls != NULL) {
			fulls[nfull++] = p->node;
		}
	}
	/* One member a tick hears our version. */
	for (size_t k = 0; k < n && skald_ref_is_null(ver_to); k++) {
		skald__reg_peer_t *p = &reg->peers[(d->rr + k) % n];
		if (p->status == PEER_UP && p->sent_full && !skald_ref_is_null(p->daemon)) {
			ver_to = p->daemon;
			d->rr = (d->rr + k + 1) % n;
		}
	}
	uv_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < nfull; i++)
		send_full(self, d, fulls[i]);
	free(fulls);
	relays_end(self, d, 0, SKALD_REF_NULL, 0);
	refresh_ages(self, d);
	if (!skald_ref_is_null(ver_to)) {
		flush(self, d);
		send_small(self, d, ver_to, REG_MSG_VER);
	}
}

static int daemon_init(skald_actor_t *self, void *state, void *arg)
{
	daemon_t *d = state;
	d->reg = arg;
	skald__reg_t *reg = d->reg;
	skald_system_t *sys = skald_actor_system(self);
	int rc;
	if ((rc = skald_cluster_subscribe(self)) < 0 || (rc = skald_monitor_nodes(self)) < 0 ||
	    (rc = skald_publish(sys, DAEMON_NAME, skald_self(self))) < 0 ||
	    (rc = skald_timer_start(self, TICK_MS, TICK_MS, tick, NULL, NULL)) < 0)
		return rc;
	/* What was registered before this actor ran. */
	uv_mutex_lock(&reg->lock);
	reg->daemon = skald_self(self);
	for (size_t i = 0; i < reg->cap; i++)
		if (reg->v[i].key != NULL && reg->v[i].origin == reg->self)
			skald_watch(self, reg->v[i].ref);
	for (size_t i = 0; i < reg->nsubs; i++)
		skald_watch(self, reg->subs[i].sub);
	uv_mutex_unlock(&reg->lock);
	return 0;
}

static int daemon_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	daemon_t *d = state;
	if (msg->type == SKALD_TYPE_MEMBER) {
		on_member(self, d, msg->payload);
	} else if (msg->type == SKALD_TYPE_NODE) {
		on_node(self, d, msg->payload);
	} else if (msg->type == SKALD_TYPE_DOWN) {
		on_down(self, d, msg->payload);
	} else if (msg->type == skald__t_reg_batch) {
		skald__reg_batch_t *b = msg->payload;
		if (b->what == REG_MSG_LOCAL) {
			for (uint32_t i = 0; i < b->n; i++)
				on_local(self, d, &b->items[i]);
		} else {
			on_remote(self, d, msg->sender, b);
		}
	} else if (msg->type == skald__t_reg_spawn) {
		on_spawn(self, d, msg);
	}
	return 0;
}

static void daemon_stop(skald_actor_t *self, void *state, int reason)
{
	daemon_t *d = state;
	skald__reg_t *reg = d->reg;
	if (reg == NULL)
		return;
	uv_mutex_lock(&reg->lock);
	reg->closed = 1;
	reg->daemon = SKALD_REF_NULL;
	uv_cond_broadcast(&reg->cond);
	uv_mutex_unlock(&reg->lock);
	skald__reg_batch_free(d->out);
	d->out = NULL;
	for (size_t i = 0; i < d->nrelays; i++)
		skald__reg_spawn_free(d->relays[i].req);
	d->nrelays = 0;
}

static const skald_behavior_t daemon_behavior = {
        .state_size = sizeof(daemon_t),
        .init = daemon_init,
        .receive = daemon_receive,
        .stop = daemon_stop,
};

int skald__reg_start(skald__reg_t *reg)
{
	skald_ref_t ref;
	int rc = skald_spawn(reg->sys, &daemon_behavior, reg, NULL, &ref);
	if (rc < 0)
		return rc;
	/* Known at once, so that a spawn on this node works before the
	 * actor ran its init: messages wait for it. */
	uv_mutex_lock(&reg->lock);
	if (!reg->closed)
		reg->daemon = ref;
	uv_mutex_unlock(&reg->lock);
	return 0;
}
