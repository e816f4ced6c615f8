/*
 * actors/cluster/membership.c - the membership object: its life, join and
 * leave, and the dispatch of inputs to view.c, swim.c and gossip.c.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/state.h"
#include "skald/error.h"

static unsigned or_default(unsigned v, unsigned def)
{
	return v ? v : def;
}

static int addr_ok(const char *a)
{
	size_t len = a ? strlen(a) : 0;
	if (len == 0 || len > SKALD__CL_ADDR_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)a[i] < 0x21 || (unsigned char)a[i] > 0x7e)
			return 0;
	return 1;
}

uint64_t skald__cl_rand(skald__cl_t *cl, uint64_t n)
{
	uint64_t x = cl->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	cl->rng = x;
	return (x * 0x2545f4914f6cdd1dull) % n;
}

int skald__cl_new(const skald__cl_config_t *cfg, skald__cl_t **out)
{
	if (!cfg || !out || cfg->node == 0 || !addr_ok(cfg->addr) || !cfg->send || !cfg->event)
		return SKALD_EINVAL;
	skald__cl_t *cl = calloc(1, sizeof *cl);
	if (!cl)
		return SKALD_ENOMEM;
	skald__cl_config_t *c = &cl->cfg;
	*c = *cfg;
	c->probe_interval_ms = or_default(c->probe_interval_ms, 1000);
	c->ack_timeout_ms = or_default(c->ack_timeout_ms, 400);
	c->timeout_ms = or_default(c->timeout_ms, 5000);
	c->indirect_probes = or_default(c->indirect_probes, 3);
	/* A silent member is first probed within a period and suspected by
	 * the end of the next; what remains of the timeout is suspicion. */
	if (!c->suspicion_max_ms) {
		unsigned two = 2 * c->probe_interval_ms;
		c->suspicion_max_ms = c->timeout_ms > two + c->probe_interval_ms
		                              ? c->timeout_ms - two
		                              : c->probe_interval_ms;
	}
	c->suspicion_min_ms = or_default(c->suspicion_min_ms, c->suspicion_max_ms / 3);
	if (c->suspicion_min_ms > c->suspicion_max_ms)
		c->suspicion_min_ms = c->suspicion_max_ms;
	c->gossip_interval_ms = or_default(c->gossip_interval_ms, 200);
	c->gossip_fanout = or_default(c->gossip_fanout, 3);
	c->pushpull_interval_ms = or_default(c->pushpull_interval_ms, 3000);
	c->retransmit_mult = or_default(c->retransmit_mult, 4);
	c->max_piggyback = or_default(c->max_piggyback, 8);
	c->max_members = or_default(c->max_members, 1024);
	c->tombstone_ms = or_default(c->tombstone_ms, 300000);
	c->stable_ms = or_default(c->stable_ms, c->probe_interval_ms);
	c->join_retry_ms = or_default(c->join_retry_ms, 500);
	c->lhm_max = c->lhm_max == 0 ? 8 : c->lhm_max < 0 ? 0 : c->lhm_max;

	size_t cap = c->max_members;
	cl->members = calloc(cap, sizeof *cl->members);
	cl->rr = calloc(cap, sizeof *cl->rr);
	cl->tmp = calloc(cap, sizeof *cl->tmp);
	cl->scratch = calloc(cap, sizeof *cl->scratch);
	cl->inbox = calloc(cap, sizeof *cl->inbox);
	cl->bufcap = SKALD__CL_HDR + 128 + cap * SKALD__CL_REC_MAX;
	cl->buf = malloc(cl->bufcap);
	if (!cl->members || !cl->rr || !cl->tmp || !cl->scratch || !cl->inbox || !cl->buf) {
		skald__cl_free(cl);
		return SKALD_ENOMEM;
	}
	cl->self = cfg->node;
	cl->rng = cfg->seed ^ 0x9e3779b97f4a7c15ull;
	if (cl->rng == 0)
		cl->rng = 1;
	skald__cl_rec_t me = {.node = cfg->node};
	memcpy(me.addr, cfg->addr, strlen(cfg->addr) + 1);
	skald__cl_insert(cl, &me, 0);
	c->addr = skald__cl_self(cl)->addr;
	*out = cl;
	return 0;
}

void skald__cl_free(skald__cl_t *cl)
{
	if (!cl)
		return;
	for (size_t i = 0; i < cl->nseeds; i++)
		free(cl->seeds[i]);
	free(cl->seeds);
	free(cl->members);
	free(cl->rr);
	free(cl->tmp);
	free(cl->scratch);
	free(cl->inbox);
	free(cl->buf);
	free(cl);
}

int skald__cl_stopped(const skald__cl_t *cl)
{
	return cl->stopped;
}

static void emit_self(skald__cl_t *cl, skald__cl_event_t ev, int reason)
{
	cl->cfg.event(cl->cfg.ctx, ev, skald__cl_self(cl), reason);
}

int skald__cl_join(skald__cl_t *cl, const char *const *seeds, size_t nseeds, uint64_t now)
{
	if (cl->started || (nseeds && !seeds))
		return SKALD_EINVAL;
	for (size_t i = 0; i < nseeds; i++)
		if (!addr_ok(seeds[i]))
			return SKALD_EINVAL;
	cl->seeds = calloc(nseeds ? nseeds : 1, sizeof *cl->seeds);
	if (!cl->seeds)
		return SKALD_ENOMEM;
	for (size_t i = 0; i < nseeds; i++) {
		if (strcmp(seeds[i], cl->cfg.addr) == 0)
			continue;
		cl->seeds[cl->nseeds] = strdup(seeds[i]);
		if (!cl->seeds[cl->nseeds])
			return SKALD_ENOMEM;
		cl->nseeds++;
	}
	cl->started = 1;
	/* Periods start at a random phase, so members do not probe in step. */
	cl->next_probe_at = now + skald__cl_rand(cl, cl->cfg.probe_interval_ms);
	cl->next_gossip_at = now + cl->cfg.gossip_interval_ms;
	cl->next_pp_at = now + skald__cl_rand(cl, cl->cfg.pushpull_interval_ms);
	if (cl->nseeds == 0) {
		skald__cl_me(cl)->rec.up_number = cl->max_up = 1;
		emit_self(cl, SKALD__CL_EV_UP, 0);
		return 0;
	}
	cl->joining = 1;
	cl->join_at = now;
	cl->join_delay = cl->cfg.join_retry_ms;
	return 0;
}

static void finish_leave(skald__cl_t *cl)
{
	skald__cl_me(cl)->rec.state |= SKALD__CL_REMOVED;
	cl->stopped = 1;
	emit_self(cl, SKALD__CL_EV_REMOVED, 0);
}

void skald__cl_leave(skald__cl_t *cl, uint64_t now)
{
	if (!cl->started || cl->stopped)
		return;
	skald__cl_member_t *me = skald__cl_me(cl);
	if (cl->joining || skald__cl_live(cl) == 1) {
		finish_leave(cl);
		return;
	}
	if (me->rec.state & SKALD__CL_LEAVING)
		return;
	me->rec.state |= SKALD__CL_LEAVING;
	skald__cl_queue(cl, me);
	emit_self(cl, SKALD__CL_EV_LEFT, 0);
}

void skald__cl_hold_leave(skald__cl_t *cl, int delta)
{
	if (delta > 0)
		cl->leave_holds++;
	else if (cl->leave_holds > 0)
		cl->leave_holds--;
}

/* Leaving: LEAVING is gossiped until its budget is spent and no layer
 * holds the leave, then REMOVED is, then this node stops. Both are in the
 * others' views by then with high probability; push-pull repairs the
 * rest. */
static void leave_tick(skald__cl_t *cl)
{
	skald__cl_member_t *me = skald__cl_me(cl);
	if (!(me->rec.state & SKALD__CL_LEAVING) || me->tx_left || cl->leave_holds > 0)
		return;
	if (me->rec.state & SKALD__CL_REMOVED) {
		cl->stopped = 1;
		emit_self(cl, SKALD__CL_EV_REMOVED, 0);
		return;
	}
	me->rec.state |= SKALD__CL_REMOVED;
	skald__cl_queue(cl, me);
}

static void on_join(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr, uint64_t now)
{
	const skald__cl_rec_t *r = &m->recs[0];
	if (cl->joining || r->node != m->from || !addr)
		return;
	skald__cl_member_t *known = skald__cl_find(cl, r->node);
	int reason = 0;
	if (known && (known->rec.state & SKALD__CL_TERMINAL))
		reason = SKALD_ENODEDOWN;
	skald__cl_rec_t admit = *r;
	admit.state = 0;
	admit.suspecter = 0;
	admit.up_number = known && known->rec.up_number ? known->rec.up_number : cl->max_up + 1;
	if (!reason) {
		skald__cl_apply(cl, &admit, now);
		if (!skald__cl_find(cl, r->node))
			reason = SKALD_ETOOMANY;
	}
	if (reason) {
		skald__cl_msg_t refuse = {.type = SKALD__CL_REFUSE, .reason = reason};
		skald__cl_send(cl, &refuse, r->node, addr);
		return;
	}
	skald__cl_send_state(cl, r->node, addr, 0);
}

int skald__cl_receive(skald__cl_t *cl, const char *from_addr, const uint8_t *buf, size_t len,
                      uint64_t now, const char **why)
{
	skald__cl_msg_t m = {.recs = cl->inbox, .cap = cl->cfg.max_members};
	int rc = skald__cl_decode(buf, len, &m, why);
	if (rc)
		return rc;
	/* A message for an earlier process at this address, or from this node
	 * itself, changes nothing. */
	if (!cl->started || cl->stopped || (m.to && m.to != cl->self) || m.from == cl->self)
		return 0;
	skald__cl_member_t *sender = skald__cl_find(cl, m.from);
	const char *addr = sender ? sender->rec.addr : from_addr;
	if (sender && (sender->rec.state & SKALD__CL_DOWN)) {
		/* A downed node that woke up: tell it, and hear nothing from it. */
		skald__cl_msg_t g = {.type = SKALD__CL_GOSSIP, .recs = cl->scratch, .nrecs = 1};
		cl->scratch[0] = sender->rec;
		skald__cl_send(cl, &g, m.from, addr);
		return 0;
	}
	if (m.type == SKALD__CL_JOIN) {
		on_join(cl, &m, from_addr, now);
		return 0;
	}
	for (size_t i = 0; i < m.nrecs && !cl->stopped; i++)
		skald__cl_apply(cl, &m.recs[i], now);
	if (cl->stopped)
		return 0;
	switch (m.type) {
	case SKALD__CL_PING:
		skald__cl_on_ping(cl, &m, addr);
		break;
	case SKALD__CL_ACK:
		skald__cl_on_ack(cl, &m);
		break;
	case SKALD__CL_PING_REQ:
		skald__cl_on_ping_req(cl, &m, addr, now);
		break;
	case SKALD__CL_NACK:
		skald__cl_on_nack(cl, &m, now);
		break;
	case SKALD__CL_REFUSE:
		if (cl->joining) {
			cl->stopped = 1;
			emit_self(cl, SKALD__CL_EV_REFUSED, m.reason);
		}
		break;
	case SKALD__CL_DIGEST:
		skald__cl_on_digest(cl, &m, addr);
		break;
	case SKALD__CL_STATE:
		skald__cl_on_state(cl, &m, addr, now);
		break;
	default: /* GOSSIP: the records were all */
		break;
	}
	return 0;
}

void skald__cl_tick(skald__cl_t *cl, uint64_t now)
{
	if (!cl->started || cl->stopped)
		return;
	if (cl->joining) {
		if (now >= cl->join_at) {
			skald__cl_msg_t m = {
			        .type = SKALD__CL_JOIN, .recs = cl->scratch, .nrecs = 1};
			cl->scratch[0] = *skald__cl_self(cl);
			const char *seed = cl->seeds[cl->seed_next++ % cl->nseeds];
			skald__cl_send(cl, &m, 0, seed);
			cl->join_at = now + cl->join_delay;
			cl->join_delay = cl->join_delay * 2 < 5000 ? cl->join_delay * 2 : 5000;
		}
		return;
	}
	skald__cl_probe_tick(cl, now);
	skald__cl_suspicion_tick(cl, now);
	if (cl->stopped)
		return;
	skald__cl_gossip_tick(cl, now);
	leave_tick(cl);
	skald__cl_reap(cl, now);
}

uint64_t skald__cl_next_deadline(const skald__cl_t *cl)
{
	if (!cl->started || cl->stopped)
		return CL_NEVER;
	if (cl->joining)
		return cl->join_at;
	uint64_t t = skald__cl_swim_deadline(cl);
	if (cl->queued && cl->next_gossip_at < t)
		t = cl->next_gossip_at;
	if (cl->next_pp_at < t)
		t = cl->next_pp_at;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_member_t *m = &cl->members[i];
		if ((m->rec.state & SKALD__CL_TERMINAL) && m->rec.node != cl->self &&
		    m->since + cl->cfg.tombstone_ms < t)
			t = m->since + cl->cfg.tombstone_ms;
	}
	return t;
}
