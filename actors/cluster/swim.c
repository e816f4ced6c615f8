/*
 * actors/cluster/swim.c - failure detection: SWIM probes with Lifeguard's
 * local health, suspicion timers that shrink with confirmations, the fast
 * path of a refused connection, and the downing decision.
 *
 * Each period a member probes two others: its successor on the ring of live
 * members in node id order (so every member is probed at least once per
 * period, which bounds the time to notice a silent one), and the next in a
 * shuffled round-robin order (SWIM's random probing, which keeps working
 * while views differ). A probe is a PING; without an ACK after
 * ack_timeout, PING_REQ asks up to indirect_probes helpers to ping the
 * target and relay its ACK, or answer NACK when they could not reach it.
 * Without any ACK by the end of the period, the target is suspected.
 *
 * Lifeguard: missed NACKs and refuted suspicions about itself tell a member
 * that it may be the slow one; its health multiplier (0..lhm_max) then
 * stretches its period, ACK timeout and suspicion timers, and successful
 * probes bring it back down.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "actors/cluster/state.h"

static uint64_t scaled(const skald__cl_t *cl, uint64_t ms)
{
	return ms * (1 + cl->lhm);
}

static void health(skald__cl_t *cl, int delta)
{
	long v = (long)cl->lhm + delta;
	if (v < 0)
		v = 0;
	if (v > cl->cfg.lhm_max)
		v = cl->cfg.lhm_max;
	cl->lhm = (unsigned)v;
}

uint64_t skald__cl_suspicion_ms(const skald__cl_t *cl, const skald__cl_member_t *m)
{
	double lo = cl->cfg.suspicion_min_ms, hi = cl->cfg.suspicion_max_ms;
	size_t live = skald__cl_live(cl);
	double k = cl->cfg.indirect_probes;
	if (live >= 2 && k > (double)(live - 2))
		k = (double)(live - 2);
	double c = m->nconfirm > 0 ? m->nconfirm - 1 : 0;
	double t = hi;
	if (k >= 1)
		t = c >= k ? lo : hi - (hi - lo) * log(c + 1) / log(k + 1);
	if (t < lo)
		t = lo;
	return scaled(cl, (uint64_t)t);
}

static skald__cl_probe_t *probe_of(skald__cl_t *cl, uint64_t target)
{
	for (unsigned i = 0; i < CL_PROBES; i++)
		if (cl->probes[i].phase && cl->probes[i].target == target)
			return &cl->probes[i];
	return NULL;
}

static skald__cl_probe_t *probe_by_seq(skald__cl_t *cl, uint32_t seq)
{
	for (unsigned i = 0; i < CL_PROBES; i++)
		if (cl->probes[i].phase && cl->probes[i].seq == seq)
			return &cl->probes[i];
	return NULL;
}

static skald__cl_probe_t *probe_new(skald__cl_t *cl, uint64_t target, uint64_t now)
{
	for (unsigned i = 0; i < CL_PROBES; i++) {
		skald__cl_probe_t *p = &cl->probes[i];
		if (p->phase)
			continue;
		memset(p, 0, sizeof *p);
		p->target = target;
		p->seq = ++cl->seq;
		p->phase = 1;
		p->ack_at = now + scaled(cl, cl->cfg.ack_timeout_ms);
		p->end = now + scaled(cl, cl->cfg.probe_interval_ms);
		return p;
	}
	return NULL;
}

static void send_ping(skald__cl_t *cl, uint32_t seq, uint64_t node, const char *addr)
{
	skald__cl_msg_t m = {.type = SKALD__CL_PING, .seq = seq};
	skald__cl_send(cl, &m, node, addr);
}

/* Sends m its own record as this node sees it: a suspicion, to refute, or
 * its down, so that a node that was only silent (stopped, cut off) learns
 * it when it wakes, and stops. */
static void tell(skald__cl_t *cl, skald__cl_member_t *m)
{
	skald__cl_msg_t msg = {.type = SKALD__CL_GOSSIP, .recs = cl->scratch, .nrecs = 1};
	cl->scratch[0] = m->rec;
	skald__cl_send(cl, &msg, m->rec.node, m->rec.addr);
}

/*
 * The downing rule applied to this view. Members downed within the last
 * timeout, during the episode still being decided, count as unreachable:
 * downs are decided one by one, and without this a side that made one
 * early decision would measure the next against a smaller cluster and keep
 * finding itself a majority. The episode began when the oldest suspicion
 * still open here was raised; a down before that belongs to an episode
 * already settled. Without that limit, a member that crashes again and
 * again (a crash loop) would pile up recent downs until the healthy
 * members found themselves a minority and downed themselves.
 */
static int may_stay(const skald__cl_t *cl, uint64_t now)
{
	size_t total = 0, reachable = 0;
	uint64_t episode = CL_NEVER;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_member_t *m = &cl->members[i];
		if (!(m->rec.state & SKALD__CL_TERMINAL) && (m->rec.state & SKALD__CL_SUSPECT) &&
		    m->since < episode)
			episode = m->since;
	}
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_member_t *m = &cl->members[i];
		if (m->rec.state & SKALD__CL_REMOVED)
			continue;
		if (m->rec.state & SKALD__CL_DOWN) {
			total += now - m->since < cl->cfg.timeout_ms && m->since >= episode;
			continue;
		}
		total++;
		reachable += !(m->rec.state & SKALD__CL_SUSPECT);
	}
	const skald__cl_member_t *oldest = skald__cl_oldest_live(cl);
	int oldest_ok = oldest && !(oldest->rec.state & SKALD__CL_SUSPECT);
	return skald__cl_keep_majority(total, reachable, oldest_ok);
}

/* Suspects m here, and tells m at once so that it can refute without
 * waiting for the gossip to reach it (Lifeguard). */
static void suspect_and_tell(skald__cl_t *cl, skald__cl_member_t *m, uint64_t now)
{
	skald__cl_suspect(cl, m, cl->self, now);
	tell(cl, m);
}

static void down(skald__cl_t *cl, skald__cl_member_t *m, uint64_t now)
{
	skald__cl_terminate(cl, m, SKALD__CL_DOWN, now);
	tell(cl, m);
}

/* PING_REQ to helpers: live members other than the target, not suspected
 * themselves (a suspect helper proves nothing either way). */
static void go_indirect(skald__cl_t *cl, skald__cl_probe_t *p)
{
	skald__cl_member_t *t = skald__cl_find(cl, p->target);
	p->phase = 2;
	if (!t)
		return;
	size_t k = 0;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_rec_t *r = &cl->members[i].rec;
		if (!(r->state & (SKALD__CL_TERMINAL | SKALD__CL_SUSPECT)) && r->node != cl->self &&
		    r->node != p->target)
			cl->tmp[k++] = i;
	}
	skald__cl_msg_t m = {.type = SKALD__CL_PING_REQ, .seq = p->seq, .target = p->target};
	memcpy(m.target_addr, t->rec.addr, sizeof m.target_addr);
	for (size_t j = 0; j < cl->cfg.indirect_probes && j < k; j++) {
		size_t pick = j + (size_t)skald__cl_rand(cl, k - j);
		size_t idx = cl->tmp[pick];
		cl->tmp[pick] = cl->tmp[j];
		cl->tmp[j] = idx;
		m.recs = NULL;
		skald__cl_send(cl, &m, cl->members[idx].rec.node, cl->members[idx].rec.addr);
		p->asked++;
	}
}

/* The fast path: a refused connection here, and every helper refused too.
 * The kernel of a live host refuses only when no process listens, so this
 * is a dead process, not a slow link; no suspicion timer is waited for. The
 * downing rule still applies. */
static void check_refused(skald__cl_t *cl, skald__cl_probe_t *p, uint64_t now)
{
	if (p->phase != 2 || !p->local_refused || p->refused < p->asked)
		return;
	skald__cl_member_t *m = skald__cl_find(cl, p->target);
	p->phase = 0;
	if (m && !(m->rec.state & SKALD__CL_TERMINAL) && may_stay(cl, now))
		down(cl, m, now);
}

/* The member after self on the ring of live, unsuspected members. */
static skald__cl_member_t *ring_successor(skald__cl_t *cl)
{
	size_t n = cl->n, me = 0;
	for (size_t i = 0; i < n; i++)
		if (cl->members[i].rec.node == cl->self)
			me = i;
	for (size_t d = 1; d < n; d++) {
		skald__cl_member_t *m = &cl->members[(me + d) % n];
		if (!(m->rec.state & (SKALD__CL_TERMINAL | SKALD__CL_SUSPECT)))
			return m;
	}
	return NULL;
}

static skald__cl_member_t *round_robin(skald__cl_t *cl, uint64_t except)
{
	for (int pass = 0; pass < 2; pass++) {
		while (cl->rr_pos < cl->rr_n) {
			skald__cl_member_t *m = skald__cl_find(cl, cl->rr[cl->rr_pos++]);
			if (m && !(m->rec.state & SKALD__CL_TERMINAL) && m->rec.node != except)
				return m;
		}
		/* A new round: every live member once, in a fresh random order. */
		cl->rr_n = cl->rr_pos = 0;
		for (size_t i = 0; i < cl->n; i++) {
			const skald__cl_rec_t *r = &cl->members[i].rec;
			if (!(r->state & SKALD__CL_TERMINAL) && r->node != cl->self)
				cl->rr[cl->rr_n++] = r->node;
		}
		for (size_t i = cl->rr_n; i > 1; i--) {
			size_t j = (size_t)skald__cl_rand(cl, i);
			uint64_t v = cl->rr[i - 1];
			cl->rr[i - 1] = cl->rr[j];
			cl->rr[j] = v;
		}
	}
	return NULL;
}

static void start_probe(skald__cl_t *cl, skald__cl_member_t *m, uint64_t now)
{
	if (!m || probe_of(cl, m->rec.node))
		return;
	skald__cl_probe_t *p = probe_new(cl, m->rec.node, now);
	if (p)
		send_ping(cl, p->seq, m->rec.node, m->rec.addr);
}

void skald__cl_probe_tick(skald__cl_t *cl, uint64_t now)
{
	for (unsigned i = 0; i < CL_RELAYS; i++) {
		skald__cl_relay_t *r = &cl->relays[i];
		if (r->used && now >= r->deadline) {
			skald__cl_msg_t m = {.type = SKALD__CL_NACK, .seq = r->origin_seq};
			r->used = 0;
			skald__cl_send(cl, &m, r->origin, r->origin_addr);
		}
	}
	for (unsigned i = 0; i < CL_PROBES; i++) {
		skald__cl_probe_t *p = &cl->probes[i];
		if (p->phase == 1 && now >= p->ack_at)
			go_indirect(cl, p);
		if (p->phase && now >= p->end) {
			p->phase = 0;
			skald__cl_member_t *m = skald__cl_find(cl, p->target);
			if (m && !(m->rec.state & SKALD__CL_TERMINAL))
				suspect_and_tell(cl, m, now);
			/* Helpers that did not even NACK: the loss is more
			 * likely on this side. */
			health(cl, (int)p->asked - (int)p->nacks - (int)p->refused);
		}
	}
	if (now >= cl->next_probe_at) {
		cl->next_probe_at = now + scaled(cl, cl->cfg.probe_interval_ms);
		skald__cl_member_t *succ = ring_successor(cl);
		start_probe(cl, succ, now);
		start_probe(cl, round_robin(cl, succ ? succ->rec.node : 0), now);
	}
}

/*
 * When the set of unreachable members will have been stable long enough
 * for the downing rule to act. While members keep turning unreachable, this
 * side may not yet see how large a partition is, and could wrongly find
 * itself a majority. The wait grows with the number of members unreachable
 * at once (one is a crash: decided quickly; many are likely a partition
 * still being discovered) and with this member's Lifeguard health (a
 * member that probes slowly discovers slowly), up to ten windows.
 */
static uint64_t stable_at(const skald__cl_t *cl)
{
	uint64_t factor = 0;
	for (size_t i = 0; i < cl->n; i++)
		factor += (cl->members[i].rec.state & SKALD__CL_SUSPECT) != 0;
	factor = (factor ? factor : 1) * (1 + cl->lhm);
	return cl->last_unreach_add + cl->cfg.stable_ms * (factor < 10 ? factor : 10);
}

void skald__cl_suspicion_tick(skald__cl_t *cl, uint64_t now)
{
	int expired = 0;
	for (size_t i = 0; i < cl->n && !expired; i++) {
		const skald__cl_member_t *m = &cl->members[i];
		if ((m->rec.state & SKALD__CL_SUSPECT) &&
		    now >= m->since + skald__cl_suspicion_ms(cl, m))
			expired = 1;
	}
	if (!expired || now < stable_at(cl))
		return;
	if (!may_stay(cl, now)) {
		skald__cl_terminate(cl, skald__cl_me(cl), SKALD__CL_DOWN, now);
		return;
	}
	for (size_t i = 0; i < cl->n; i++) {
		skald__cl_member_t *m = &cl->members[i];
		if ((m->rec.state & SKALD__CL_SUSPECT) &&
		    now >= m->since + skald__cl_suspicion_ms(cl, m))
			down(cl, m, now);
	}
}

uint64_t skald__cl_swim_deadline(const skald__cl_t *cl)
{
	uint64_t t = cl->next_probe_at;
	for (unsigned i = 0; i < CL_RELAYS; i++)
		if (cl->relays[i].used && cl->relays[i].deadline < t)
			t = cl->relays[i].deadline;
	for (unsigned i = 0; i < CL_PROBES; i++) {
		const skald__cl_probe_t *p = &cl->probes[i];
		if (p->phase == 1 && p->ack_at < t)
			t = p->ack_at;
		if (p->phase && p->end < t)
			t = p->end;
	}
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_member_t *m = &cl->members[i];
		if (!(m->rec.state & SKALD__CL_SUSPECT))
			continue;
		uint64_t at = m->since + skald__cl_suspicion_ms(cl, m);
		uint64_t stable = stable_at(cl);
		if (at < stable)
			at = stable;
		if (at < t)
			t = at;
	}
	return t;
}

void skald__cl_on_ping(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr)
{
	skald__cl_msg_t ack = {.type = SKALD__CL_ACK, .seq = m->seq};
	skald__cl_send(cl, &ack, m->from, addr);
}

void skald__cl_on_ack(skald__cl_t *cl, const skald__cl_msg_t *m)
{
	skald__cl_probe_t *p = probe_by_seq(cl, m->seq);
	if (p) {
		p->phase = 0;
		health(cl, -1);
		return;
	}
	for (unsigned i = 0; i < CL_RELAYS; i++) {
		skald__cl_relay_t *r = &cl->relays[i];
		if (r->used && r->seq == m->seq && r->target == m->from) {
			skald__cl_msg_t ack = {.type = SKALD__CL_ACK, .seq = r->origin_seq};
			r->used = 0;
			skald__cl_send(cl, &ack, r->origin, r->origin_addr);
			return;
		}
	}
}

void skald__cl_on_ping_req(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr,
                           uint64_t now)
{
	skald__cl_relay_t *r = NULL;
	for (unsigned i = 0; i < CL_RELAYS && !r; i++)
		if (!cl->relays[i].used)
			r = &cl->relays[i];
	/* Busy: no answer at all, which the origin's Lifeguard reads as a
	 * hint that something is slow. */
	if (!r || !addr)
		return;
	memset(r, 0, sizeof *r);
	r->used = 1;
	r->origin = m->from;
	r->origin_seq = m->seq;
	r->target = m->target;
	r->seq = ++cl->seq;
	/* The NACK must reach the origin before its period ends. */
	r->deadline = now + cl->cfg.ack_timeout_ms * 4 / 5;
	snprintf(r->origin_addr, sizeof r->origin_addr, "%s", addr);
	const skald__cl_member_t *t = skald__cl_find(cl, m->target);
	send_ping(cl, r->seq, m->target, t ? t->rec.addr : m->target_addr);
}

void skald__cl_on_nack(skald__cl_t *cl, const skald__cl_msg_t *m, uint64_t now)
{
	skald__cl_probe_t *p = probe_by_seq(cl, m->seq);
	if (!p)
		return;
	if (m->flags & SKALD__CL_NACK_REFUSED) {
		p->refused++;
		check_refused(cl, p, now);
	} else {
		p->nacks++;
	}
}

void skald__cl_conn_reset(skald__cl_t *cl, uint64_t node, uint64_t now)
{
	if (cl->stopped)
		return;
	/* Relays for that target answer at once: refused. */
	for (unsigned i = 0; i < CL_RELAYS; i++) {
		skald__cl_relay_t *r = &cl->relays[i];
		if (r->used && r->target == node) {
			skald__cl_msg_t m = {.type = SKALD__CL_NACK, .seq = r->origin_seq};
			m.flags = SKALD__CL_NACK_REFUSED;
			r->used = 0;
			skald__cl_send(cl, &m, r->origin, r->origin_addr);
		}
	}
	skald__cl_member_t *m = skald__cl_find(cl, node);
	if (cl->joining || !m || node == cl->self || (m->rec.state & SKALD__CL_TERMINAL))
		return;
	suspect_and_tell(cl, m, now);
	skald__cl_probe_t *p = probe_of(cl, node);
	if (!p)
		p = probe_new(cl, node, now);
	if (!p)
		return;
	if (p->phase == 1)
		go_indirect(cl, p);
	p->local_refused = 1;
	check_refused(cl, p, now);
}
