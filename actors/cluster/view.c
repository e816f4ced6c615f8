/*
 * actors/cluster/view.c - the member table and the rule that merges what
 * others say into it.
 *
 * The merge is a join over a lattice, so that every member reaches the same
 * table whatever order the news arrives in:
 *   - DOWN and REMOVED are terminal: once a node id is terminal it stays so
 *     (REMOVED wins over DOWN: a node that said goodbye left cleanly);
 *   - LEAVING, once set, stays set;
 *   - otherwise the higher incarnation wins, and at equal incarnation a
 *     suspicion wins over "alive". Only the member itself raises its
 *     incarnation, which is how it refutes a suspicion;
 *   - up_number: the smallest non-zero one seen.
 * A terminal record about a node this member never knew is ignored, so a
 * forgotten tombstone is not brought back by a late message.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/state.h"

skald__cl_status_t skald__cl_rec_status(const skald__cl_rec_t *r)
{
	if (r->state & SKALD__CL_DOWN)
		return SKALD__CL_ST_DOWN;
	if (r->state & SKALD__CL_REMOVED)
		return SKALD__CL_ST_REMOVED;
	if (r->state & SKALD__CL_LEAVING)
		return SKALD__CL_ST_LEAVING;
	if (r->up_number == 0)
		return SKALD__CL_ST_JOINING;
	return SKALD__CL_ST_UP;
}

static int is_live(const skald__cl_member_t *m)
{
	return !(m->rec.state & SKALD__CL_TERMINAL);
}

static void emit(skald__cl_t *cl, skald__cl_event_t ev, const skald__cl_member_t *m)
{
	cl->cfg.event(cl->cfg.ctx, ev, &m->rec, 0);
}

/* Binary search: the index of node, or where it would be inserted. */
static size_t position(const skald__cl_t *cl, uint64_t node)
{
	size_t lo = 0, hi = cl->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cl->members[mid].rec.node < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

skald__cl_member_t *skald__cl_find(const skald__cl_t *cl, uint64_t node)
{
	size_t i = position(cl, node);
	return i < cl->n && cl->members[i].rec.node == node ? &cl->members[i] : NULL;
}

skald__cl_member_t *skald__cl_me(const skald__cl_t *cl)
{
	return skald__cl_find(cl, cl->self);
}

const skald__cl_rec_t *skald__cl_self(const skald__cl_t *cl)
{
	return &skald__cl_me(cl)->rec;
}

const skald__cl_rec_t *skald__cl_lookup(const skald__cl_t *cl, uint64_t node)
{
	const skald__cl_member_t *m = skald__cl_find(cl, node);
	return m ? &m->rec : NULL;
}

size_t skald__cl_size(const skald__cl_t *cl)
{
	return cl->n;
}

const skald__cl_rec_t *skald__cl_at(const skald__cl_t *cl, size_t i)
{
	return i < cl->n ? &cl->members[i].rec : NULL;
}

size_t skald__cl_live(const skald__cl_t *cl)
{
	size_t live = 0;
	for (size_t i = 0; i < cl->n; i++)
		live += is_live(&cl->members[i]);
	return live;
}

/* Retransmissions per record: mult * ceil(log10(live + 1)), so news reaches
 * everyone with high probability while the cost grows only with log n. */
static uint32_t retransmit_limit(const skald__cl_t *cl)
{
	uint32_t digits = 0;
	for (size_t v = skald__cl_live(cl) + 1; v > 1; v = (v + 9) / 10)
		digits++;
	return cl->cfg.retransmit_mult * (digits ? digits : 1);
}

void skald__cl_queue(skald__cl_t *cl, skald__cl_member_t *m)
{
	if (m->tx_left == 0)
		cl->queued++;
	m->tx_left = retransmit_limit(cl);
}

static void remove_at(skald__cl_t *cl, size_t i)
{
	if (cl->members[i].tx_left)
		cl->queued--;
	memmove(&cl->members[i], &cl->members[i + 1], (cl->n - i - 1) * sizeof cl->members[0]);
	cl->n--;
}

void skald__cl_reap(skald__cl_t *cl, uint64_t now)
{
	for (size_t i = 0; i < cl->n;) {
		skald__cl_member_t *m = &cl->members[i];
		if (!is_live(m) && m->rec.node != cl->self &&
		    now - m->since >= cl->cfg.tombstone_ms)
			remove_at(cl, i);
		else
			i++;
	}
}

skald__cl_member_t *skald__cl_insert(skald__cl_t *cl, const skald__cl_rec_t *r, uint64_t now)
{
	if (cl->n == cl->cfg.max_members) {
		/* Full: the oldest tombstone makes room, never a live member. */
		size_t victim = cl->n;
		for (size_t i = 0; i < cl->n; i++) {
			const skald__cl_member_t *m = &cl->members[i];
			if (!is_live(m) && m->rec.node != cl->self &&
			    (victim == cl->n || m->since < cl->members[victim].since))
				victim = i;
		}
		if (victim == cl->n)
			return NULL;
		remove_at(cl, victim);
	}
	size_t i = position(cl, r->node);
	memmove(&cl->members[i + 1], &cl->members[i], (cl->n - i) * sizeof cl->members[0]);
	cl->n++;
	skald__cl_member_t *m = &cl->members[i];
	memset(m, 0, sizeof *m);
	m->rec = *r;
	m->since = now;
	if (r->up_number > cl->max_up)
		cl->max_up = r->up_number;
	/* A new member is probed within this round, at a random place in the
	 * order (SWIM's round-robin keeps detection time bounded). */
	if (r->node != cl->self && cl->rr_n < cl->cfg.max_members) {
		size_t left = cl->rr_n - cl->rr_pos;
		size_t at = cl->rr_pos + (size_t)skald__cl_rand(cl, left + 1);
		memmove(&cl->rr[at + 1], &cl->rr[at], (cl->rr_n - at) * sizeof cl->rr[0]);
		cl->rr[at] = r->node;
		cl->rr_n++;
	}
	return m;
}

void skald__cl_suspect(skald__cl_t *cl, skald__cl_member_t *m, uint64_t who, uint64_t now)
{
	if (!(m->rec.state & SKALD__CL_SUSPECT)) {
		m->rec.state |= SKALD__CL_SUSPECT;
		m->rec.suspecter = who;
		m->since = now;
		m->confirmers[0] = who;
		m->nconfirm = 1;
		cl->last_unreach_add = now;
		skald__cl_queue(cl, m);
		emit(cl, SKALD__CL_EV_UNREACHABLE, m);
		return;
	}
	for (unsigned i = 0; i < m->nconfirm; i++)
		if (m->confirmers[i] == who)
			return;
	if (m->nconfirm < SKALD__CL_CONFIRM_MAX) {
		m->confirmers[m->nconfirm++] = who;
		/* Re-gossiped with the new suspecter, so that others count the
		 * confirmation too and their timers shrink as well. */
		m->rec.suspecter = who;
		skald__cl_queue(cl, m);
	}
}

void skald__cl_terminate(skald__cl_t *cl, skald__cl_member_t *m, uint8_t how, uint64_t now)
{
	m->rec.state = (uint8_t)((m->rec.state & ~SKALD__CL_SUSPECT) | how);
	m->since = now;
	skald__cl_queue(cl, m);
	emit(cl, how == SKALD__CL_DOWN ? SKALD__CL_EV_DOWN : SKALD__CL_EV_REMOVED, m);
	if (m->rec.node != cl->self)
		return;
	/* A last word to every member still reachable: on the minority side
	 * of a partition this tells the others at once, instead of leaving
	 * them to discover one silence after another. */
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_rec_t *r = &cl->members[i].rec;
		if (r->node == cl->self || (r->state & (SKALD__CL_TERMINAL | SKALD__CL_SUSPECT)))
			continue;
		skald__cl_msg_t msg = {.type = SKALD__CL_GOSSIP, .recs = cl->scratch, .nrecs = 1};
		cl->scratch[0] = m->rec;
		skald__cl_send(cl, &msg, r->node, r->addr);
	}
	cl->stopped = 1;
}

/* News about this node itself: admission, refutation, or its own down. */
static void apply_self(skald__cl_t *cl, const skald__cl_rec_t *r, uint64_t now)
{
	skald__cl_member_t *me = skald__cl_me(cl);
	if (r->state & SKALD__CL_DOWN) {
		/* Final: the cluster has moved on without this node id. */
		skald__cl_terminate(cl, me, SKALD__CL_DOWN, now);
		return;
	}
	if (r->up_number && (me->rec.up_number == 0 || r->up_number < me->rec.up_number)) {
		me->rec.up_number = r->up_number;
		if (r->up_number > cl->max_up)
			cl->max_up = r->up_number;
		if (cl->joining) {
			cl->joining = 0;
			emit(cl, SKALD__CL_EV_UP, me);
		}
	}
	if (r->inc > me->rec.inc || (r->inc == me->rec.inc && (r->state & SKALD__CL_SUSPECT))) {
		me->rec.inc = r->inc + 1;
		skald__cl_queue(cl, me);
		if (!(r->state & SKALD__CL_SUSPECT))
			return;
		/* Being suspected is a sign that this node may be the slow one
		 * (Lifeguard): probe more gently for a while. */
		if (cl->lhm < (unsigned)cl->cfg.lhm_max)
			cl->lhm++;
		/* The suspecter's timer runs first: it hears the refutation
		 * directly, the others through gossip. */
		const skald__cl_member_t *s = skald__cl_find(cl, r->suspecter);
		if (s && !(s->rec.state & SKALD__CL_TERMINAL)) {
			skald__cl_msg_t m = {
			        .type = SKALD__CL_GOSSIP, .recs = cl->scratch, .nrecs = 1};
			cl->scratch[0] = me->rec;
			skald__cl_send(cl, &m, s->rec.node, s->rec.addr);
		}
	}
}

void skald__cl_apply(skald__cl_t *cl, const skald__cl_rec_t *r, uint64_t now)
{
	if (cl->stopped)
		return;
	if (r->node == cl->self) {
		apply_self(cl, r, now);
		return;
	}
	skald__cl_member_t *m = skald__cl_find(cl, r->node);
	if (!m) {
		if (r->state & SKALD__CL_TERMINAL)
			return;
		m = skald__cl_insert(cl, r, now);
		if (!m)
			return;
		m->rec.state &= (uint8_t)~SKALD__CL_SUSPECT;
		skald__cl_queue(cl, m);
		if (!(r->state & SKALD__CL_LEAVING))
			emit(cl, SKALD__CL_EV_UP, m);
		if (r->state & SKALD__CL_SUSPECT)
			skald__cl_suspect(cl, m, r->suspecter, now);
		return;
	}
	if (r->up_number && (m->rec.up_number == 0 || r->up_number < m->rec.up_number)) {
		m->rec.up_number = r->up_number;
		if (r->up_number > cl->max_up)
			cl->max_up = r->up_number;
		skald__cl_queue(cl, m);
	}
	if (m->rec.state & SKALD__CL_TERMINAL) {
		if ((r->state & SKALD__CL_REMOVED) && (m->rec.state & SKALD__CL_DOWN)) {
			m->rec.state =
			        (uint8_t)((m->rec.state & ~SKALD__CL_DOWN) | SKALD__CL_REMOVED);
			skald__cl_queue(cl, m);
			emit(cl, SKALD__CL_EV_REMOVED, m);
		}
		return;
	}
	if (r->state & SKALD__CL_TERMINAL) {
		skald__cl_terminate(cl, m, r->state & SKALD__CL_TERMINAL, now);
		return;
	}
	if ((r->state & SKALD__CL_LEAVING) && !(m->rec.state & SKALD__CL_LEAVING)) {
		m->rec.state |= SKALD__CL_LEAVING;
		skald__cl_queue(cl, m);
		emit(cl, SKALD__CL_EV_LEFT, m);
	}
	if (r->inc > m->rec.inc) {
		int was = m->rec.state & SKALD__CL_SUSPECT;
		m->rec.inc = r->inc;
		m->rec.state &= (uint8_t)~SKALD__CL_SUSPECT;
		skald__cl_queue(cl, m);
		if (r->state & SKALD__CL_SUSPECT) {
			/* A newer suspicion: its timer and confirmers start over. */
			m->nconfirm = 0;
			if (was) {
				m->rec.state |= SKALD__CL_SUSPECT;
				m->since = now;
				m->confirmers[m->nconfirm++] = r->suspecter;
				m->rec.suspecter = r->suspecter;
			} else {
				skald__cl_suspect(cl, m, r->suspecter, now);
			}
		} else if (was) {
			emit(cl, SKALD__CL_EV_REACHABLE, m);
		}
	} else if (r->inc == m->rec.inc && (r->state & SKALD__CL_SUSPECT)) {
		skald__cl_suspect(cl, m, r->suspecter, now);
	}
}

/* Age order: admitted members by up_number, then node id; members not yet
 * admitted (up_number 0) after all of them. */
static int older(const skald__cl_rec_t *a, const skald__cl_rec_t *b)
{
	uint64_t ua = a->up_number ? a->up_number : UINT64_MAX;
	uint64_t ub = b->up_number ? b->up_number : UINT64_MAX;
	return ua != ub ? ua < ub : a->node < b->node;
}

const skald__cl_member_t *skald__cl_oldest_live(const skald__cl_t *cl)
{
	const skald__cl_member_t *best = NULL;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_member_t *m = &cl->members[i];
		if (is_live(m) && (!best || older(&m->rec, &best->rec)))
			best = m;
	}
	return best;
}

size_t skald__cl_up_members(const skald__cl_t *cl, skald__cl_rec_t *out, size_t cap)
{
	size_t count = 0, kept = 0;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_rec_t *r = &cl->members[i].rec;
		if (skald__cl_rec_status(r) != SKALD__CL_ST_UP)
			continue;
		count++;
		/* Insertion into the cap oldest seen so far. */
		size_t at = kept;
		while (at > 0 && older(r, &out[at - 1]))
			at--;
		if (at == cap)
			continue;
		size_t move = kept < cap ? kept - at : cap - 1 - at;
		memmove(&out[at + 1], &out[at], move * sizeof *out);
		out[at] = *r;
		if (kept < cap)
			kept++;
	}
	return count;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	/* FNV-1a over the eight bytes of v. */
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (i * 8)) & 0xff;
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t skald__cl_digest(const skald__cl_t *cl)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_rec_t *r = &cl->members[i].rec;
		if (r->state & SKALD__CL_TERMINAL)
			continue;
		h = mix(h, r->node);
		h = mix(h, (uint64_t)r->inc << 32 | r->up_number);
		h = mix(h, r->state & SKALD__CL_LEAVING);
	}
	return h;
}

unsigned skald__cl_health(const skald__cl_t *cl)
{
	return cl->lhm;
}
