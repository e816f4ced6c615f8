/*
 * actors/cluster/codec.c - the membership messages, byte by byte.
 *
 * Pure functions over buffers: no allocation, no I/O. Every read is checked
 * against the end of the buffer first, so a truncated or hostile message is
 * refused with a reason and never read past. docs/CLUSTER.md has the layout.
 */
#include <string.h>

#include "actors/cluster/cluster_int.h"
#include "skald/error.h"

/* A cursor over bytes being read; `why` is set at the first fault and
 * every later read fails. */
typedef struct rd_s {
	const uint8_t *p, *end;
	const char *why;
} rd_t;

static int need(rd_t *r, size_t n, const char *why)
{
	if (r->why)
		return 0;
	if ((size_t)(r->end - r->p) < n) {
		r->why = why;
		return 0;
	}
	return 1;
}

static uint8_t rd8(rd_t *r, const char *why)
{
	if (!need(r, 1, why))
		return 0;
	return *r->p++;
}

static uint32_t rd32(rd_t *r, const char *why)
{
	if (!need(r, 4, why))
		return 0;
	uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
	             r->p[3];
	r->p += 4;
	return v;
}

static uint64_t rd64(rd_t *r, const char *why)
{
	uint64_t hi = rd32(r, why);
	return hi << 32 | rd32(r, why);
}

/* An address: length 1..63, then printable ASCII without spaces. */
static void rd_addr(rd_t *r, char *out, const char *why)
{
	uint8_t len = rd8(r, why);
	out[0] = 0;
	if (r->why)
		return;
	if (len == 0 || len > SKALD__CL_ADDR_MAX) {
		r->why = "address length out of 1..63";
		return;
	}
	if (!need(r, len, why))
		return;
	for (unsigned i = 0; i < len; i++) {
		if (r->p[i] < 0x21 || r->p[i] > 0x7e) {
			r->why = "address has a byte that is not printable ASCII";
			return;
		}
	}
	memcpy(out, r->p, len);
	out[len] = 0;
	r->p += len;
}

static void rd_rec(rd_t *r, skald__cl_rec_t *rec)
{
	const char *trunc = "record truncated";
	memset(rec, 0, sizeof *rec);
	rec->node = rd64(r, trunc);
	rec->inc = rd32(r, trunc);
	rec->up_number = rd32(r, trunc);
	rec->state = rd8(r, trunc);
	if (r->why)
		return;
	if (rec->node == 0) {
		r->why = "record with node id 0";
		return;
	}
	if (rec->state & ~SKALD__CL_STATE_MASK) {
		r->why = "record state has unknown bits";
		return;
	}
	if ((rec->state & SKALD__CL_TERMINAL) == SKALD__CL_TERMINAL) {
		r->why = "record both down and removed";
		return;
	}
	if (rec->state & SKALD__CL_SUSPECT)
		rec->suspecter = rd64(r, trunc);
	rd_addr(r, rec->addr, trunc);
}

int skald__cl_decode(const uint8_t *buf, size_t len, skald__cl_msg_t *m, const char **why)
{
	rd_t r = {buf, buf + len, NULL};
	const char *trunc = "message truncated";
	skald__cl_rec_t *recs = m->recs;
	size_t cap = m->cap;
	memset(m, 0, sizeof *m);
	m->recs = recs;
	m->cap = cap;

	uint8_t version = rd8(&r, "empty message");
	if (!r.why && version != SKALD__CL_VERSION)
		r.why = "unsupported protocol version";
	m->type = rd8(&r, trunc);
	if (!r.why && (m->type == 0 || m->type > SKALD__CL_MSG_MAX))
		r.why = "unknown message type";
	m->from = rd64(&r, trunc);
	m->to = rd64(&r, trunc);
	if (!r.why && m->from == 0)
		r.why = "sender node id 0";
	if (!r.why && m->to == 0 && m->type != SKALD__CL_JOIN)
		r.why = "receiver node id 0 outside JOIN";
	if (r.why)
		goto out;

	switch (m->type) {
	case SKALD__CL_PING:
	case SKALD__CL_ACK:
		m->seq = rd32(&r, trunc);
		break;
	case SKALD__CL_NACK:
		m->seq = rd32(&r, trunc);
		m->flags = rd8(&r, trunc);
		break;
	case SKALD__CL_PING_REQ:
		m->seq = rd32(&r, trunc);
		m->target = rd64(&r, trunc);
		rd_addr(&r, m->target_addr, trunc);
		if (!r.why && m->target == 0)
			r.why = "PING_REQ for node id 0";
		break;
	case SKALD__CL_REFUSE:
		m->reason = (int32_t)rd32(&r, trunc);
		if (!r.why && m->reason >= 0)
			r.why = "REFUSE without a negative reason";
		break;
	case SKALD__CL_DIGEST:
		m->digest = rd64(&r, trunc);
		m->count = rd32(&r, trunc);
		break;
	case SKALD__CL_STATE:
		m->digest = rd64(&r, trunc);
		m->flags = rd8(&r, trunc);
		break;
	default: /* GOSSIP, JOIN: records only */
		break;
	}

	uint32_t n = rd32(&r, trunc);
	if (!r.why && n > m->cap)
		r.why = "more records than this node accepts in one message";
	/* Each record takes at least 19 bytes: a count that the rest of the
	 * buffer cannot hold is refused before any record is read. */
	if (!r.why && (size_t)(r.end - r.p) / 19u < n)
		r.why = "record count larger than the message";
	for (uint32_t i = 0; i < n && !r.why; i++)
		rd_rec(&r, &m->recs[i]);
	if (!r.why && m->type == SKALD__CL_JOIN && n == 0)
		r.why = "JOIN without the joiner's record";
	if (!r.why && r.p != r.end)
		r.why = "trailing bytes after the records";
	m->nrecs = r.why ? 0 : n;
out:
	if (why)
		*why = r.why;
	return r.why ? SKALD_EPROTO : 0;
}

/* ------------------------------------------------------------------------ */

typedef struct wr_s {
	uint8_t *p, *end;
	int full;
} wr_t;

static void wr8(wr_t *w, uint8_t v)
{
	if (w->end - w->p < 1) {
		w->full = 1;
		return;
	}
	*w->p++ = v;
}

static void wr32(wr_t *w, uint32_t v)
{
	wr8(w, (uint8_t)(v >> 24));
	wr8(w, (uint8_t)(v >> 16));
	wr8(w, (uint8_t)(v >> 8));
	wr8(w, (uint8_t)v);
}

static void wr64(wr_t *w, uint64_t v)
{
	wr32(w, (uint32_t)(v >> 32));
	wr32(w, (uint32_t)v);
}

static void wr_addr(wr_t *w, const char *addr)
{
	size_t len = strlen(addr);
	if (len == 0 || len > SKALD__CL_ADDR_MAX) {
		w->full = 1;
		return;
	}
	wr8(w, (uint8_t)len);
	for (size_t i = 0; i < len; i++)
		wr8(w, (uint8_t)addr[i]);
}

size_t skald__cl_rec_size(const skald__cl_rec_t *r)
{
	return 8 + 4 + 4 + 1 + (r->state & SKALD__CL_SUSPECT ? 8 : 0) + 1 + strlen(r->addr);
}

size_t skald__cl_encode(const skald__cl_msg_t *m, uint8_t *buf, size_t cap)
{
	wr_t w = {buf, buf + cap, 0};
	if (m->type == 0 || m->type > SKALD__CL_MSG_MAX)
		return 0;
	wr8(&w, SKALD__CL_VERSION);
	wr8(&w, m->type);
	wr64(&w, m->from);
	wr64(&w, m->to);
	switch (m->type) {
	case SKALD__CL_PING:
	case SKALD__CL_ACK:
		wr32(&w, m->seq);
		break;
	case SKALD__CL_NACK:
		wr32(&w, m->seq);
		wr8(&w, m->flags);
		break;
	case SKALD__CL_PING_REQ:
		wr32(&w, m->seq);
		wr64(&w, m->target);
		wr_addr(&w, m->target_addr);
		break;
	case SKALD__CL_REFUSE:
		wr32(&w, (uint32_t)m->reason);
		break;
	case SKALD__CL_DIGEST:
		wr64(&w, m->digest);
		wr32(&w, m->count);
		break;
	case SKALD__CL_STATE:
		wr64(&w, m->digest);
		wr8(&w, m->flags);
		break;
	default:
		break;
	}
	wr32(&w, (uint32_t)m->nrecs);
	for (size_t i = 0; i < m->nrecs; i++) {
		const skald__cl_rec_t *r = &m->recs[i];
		wr64(&w, r->node);
		wr32(&w, r->inc);
		wr32(&w, r->up_number);
		wr8(&w, r->state);
		if (r->state & SKALD__CL_SUSPECT)
			wr64(&w, r->suspecter);
		wr_addr(&w, r->addr);
	}
	return w.full ? 0 : (size_t)(w.p - buf);
}
