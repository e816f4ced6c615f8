/*
 * actors/cluster/gossip.c - how news travels: piggybacked on every message,
 * in gossip rounds while there is news, and by push-pull anti-entropy.
 *
 * A changed record is queued with a retransmit budget (see view.c). Every
 * message leaves with up to max_piggyback queued records, those sent the
 * fewest times first. Piggybacking alone spreads news only as fast as
 * probes go (one or two per period), so while anything is queued a gossip
 * round every gossip_interval sends it to gossip_fanout random members:
 * news reaches a hundred members in about four rounds. An idle cluster
 * sends no gossip at all.
 *
 * Push-pull repairs what the epidemic missed (lost messages, a member that
 * was partitioned): each interval a member sends the digest of its view to
 * one random member; only if the digests differ does the whole view travel,
 * and back again if the merge did not make the two equal.
 */
#include <string.h>

#include "actors/cluster/state.h"

skald__cl_member_t *skald__cl_random_peer(skald__cl_t *cl, uint64_t except)
{
	size_t k = 0;
	for (size_t i = 0; i < cl->n; i++) {
		const skald__cl_rec_t *r = &cl->members[i].rec;
		if (!(r->state & SKALD__CL_TERMINAL) && r->node != cl->self && r->node != except)
			cl->tmp[k++] = i;
	}
	return k ? &cl->members[cl->tmp[skald__cl_rand(cl, k)]] : NULL;
}

/* Appends to m the queued records sent the fewest times, as many as fit in
 * room bytes and max_piggyback. */
static void piggyback(skald__cl_t *cl, skald__cl_msg_t *m, size_t room)
{
	enum { MAXP = 64 };
	size_t pick[MAXP], npick = 0, want = cl->cfg.max_piggyback;
	if (cl->queued == 0)
		return;
	if (want > MAXP)
		want = MAXP;
	for (size_t i = 0; i < cl->n; i++) {
		uint32_t tx = cl->members[i].tx_left;
		if (tx == 0)
			continue;
		size_t at = npick;
		while (at > 0 && cl->members[pick[at - 1]].tx_left < tx)
			at--;
		if (at == want)
			continue;
		size_t move = npick < want ? npick - at : want - 1 - at;
		memmove(&pick[at + 1], &pick[at], move * sizeof pick[0]);
		pick[at] = i;
		if (npick < want)
			npick++;
	}
	for (size_t j = 0; j < npick; j++) {
		skald__cl_member_t *mb = &cl->members[pick[j]];
		size_t size = skald__cl_rec_size(&mb->rec);
		if (size > room)
			break;
		room -= size;
		m->recs[m->nrecs++] = mb->rec;
		if (--mb->tx_left == 0)
			cl->queued--;
	}
}

static void encode_and_send(skald__cl_t *cl, const skald__cl_msg_t *m, uint64_t node,
                            const char *addr)
{
	size_t len = skald__cl_encode(m, cl->buf, cl->bufcap);
	if (len > 0 && addr && addr[0])
		cl->cfg.send(cl->cfg.ctx, node, addr, cl->buf, len);
}

void skald__cl_send(skald__cl_t *cl, skald__cl_msg_t *m, uint64_t node, const char *addr)
{
	m->from = cl->self;
	m->to = node;
	if (!m->recs) {
		m->recs = cl->scratch;
		m->nrecs = 0;
	}
	/* A suspect learns it from any message sent to it, not only from
	 * the gossip that happens to reach it: it refutes sooner. */
	const skald__cl_member_t *dst = skald__cl_find(cl, node);
	if (dst && (dst->rec.state & SKALD__CL_SUSPECT) && m->recs == cl->scratch &&
	    (m->nrecs == 0 || m->recs[0].node != node))
		m->recs[m->nrecs++] = dst->rec;
	/* The fixed part of any message is at most this (PING_REQ). */
	size_t used = SKALD__CL_HDR + 4 + 8 + 1 + SKALD__CL_ADDR_MAX + 4;
	for (size_t i = 0; i < m->nrecs; i++)
		used += skald__cl_rec_size(&m->recs[i]);
	piggyback(cl, m, cl->bufcap > used ? cl->bufcap - used : 0);
	encode_and_send(cl, m, node, addr);
}

void skald__cl_send_state(skald__cl_t *cl, uint64_t node, const char *addr, int want_reply)
{
	skald__cl_msg_t m = {.type = SKALD__CL_STATE, .from = cl->self, .to = node};
	m.digest = skald__cl_digest(cl);
	m.flags = want_reply ? SKALD__CL_STATE_REPLY : 0;
	m.recs = cl->scratch;
	for (size_t i = 0; i < cl->n; i++)
		m.recs[m.nrecs++] = cl->members[i].rec;
	encode_and_send(cl, &m, node, addr);
}

void skald__cl_gossip_tick(skald__cl_t *cl, uint64_t now)
{
	if (now >= cl->next_gossip_at) {
		cl->next_gossip_at = now + cl->cfg.gossip_interval_ms;
		/* Distinct random peers: a partial Fisher-Yates over the live,
		 * suspects included: gossip is how a suspect whose direct
		 * notice was lost learns that it must refute. */
		size_t k = 0;
		for (size_t i = 0; i < cl->n && cl->queued; i++) {
			const skald__cl_rec_t *r = &cl->members[i].rec;
			if (!(r->state & SKALD__CL_TERMINAL) && r->node != cl->self)
				cl->tmp[k++] = i;
		}
		for (size_t j = 0; j < cl->cfg.gossip_fanout && j < k && cl->queued; j++) {
			size_t pick = j + (size_t)skald__cl_rand(cl, k - j);
			size_t idx = cl->tmp[pick];
			cl->tmp[pick] = cl->tmp[j];
			cl->tmp[j] = idx;
			skald__cl_msg_t m = {.type = SKALD__CL_GOSSIP};
			skald__cl_send(cl, &m, cl->members[idx].rec.node,
			               cl->members[idx].rec.addr);
		}
	}
	if (now >= cl->next_pp_at) {
		cl->next_pp_at = now + cl->cfg.pushpull_interval_ms;
		skald__cl_member_t *peer = skald__cl_random_peer(cl, 0);
		if (peer) {
			skald__cl_msg_t m = {.type = SKALD__CL_DIGEST};
			m.digest = skald__cl_digest(cl);
			m.count = (uint32_t)skald__cl_live(cl);
			skald__cl_send(cl, &m, peer->rec.node, peer->rec.addr);
		}
	}
}

void skald__cl_on_digest(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr)
{
	if (m->digest != skald__cl_digest(cl))
		skald__cl_send_state(cl, m->from, addr, 1);
}

void skald__cl_on_state(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr, uint64_t now)
{
	/* The records were merged by the caller; if the sender still lacks
	 * something of this view, it gets the view back. */
	if ((m->flags & SKALD__CL_STATE_REPLY) && m->digest != skald__cl_digest(cl))
		skald__cl_send_state(cl, m->from, addr, 0);
}
